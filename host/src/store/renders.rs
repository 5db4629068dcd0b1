//! Renders: claiming under a lease, committing a step's outcome (fenced by that lease), and
//! reading them back for `vidhook jobs` and the API.

use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use super::{now_ms, Backend, Result, Store};

/// A render as stored.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct RenderRow {
    pub id: String,
    pub event_id: String,
    pub plan_key: String,
    pub state: String,
    pub attempts: i64,
    pub run_after: i64,
    pub plan_json: Option<String>,
    pub provenance_json: Option<String>,
    pub audio_key: Option<String>,
    pub audio_seconds: Option<f64>,
    pub submit_key: Option<String>,
    pub submitted_at: Option<i64>,
    pub provider_job_id: Option<String>,
    pub video_url: Option<String>,
    pub error_category: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub plugins_json: Option<String>,
    pub preview_url: Option<String>,
    pub approved_at: Option<i64>,
    pub adopted_at: Option<i64>,
    /// The run of many renders this one belongs to (none: a live publish).
    pub run_id: Option<String>,
    /// The video host it is with (a `[providers.NAME]`); none: its source's first.
    pub provider: Option<String>,
}

pub(super) const RENDER_COLUMNS: &str = "id, event_id, plan_key, state, attempts, run_after, plan_json, \
    provenance_json, audio_key, audio_seconds, submit_key, submitted_at, provider_job_id, \
    video_url, error_category, error, created_at, updated_at, finished_at, plugins_json, preview_url, approved_at, adopted_at, run_id, provider";

/// The outcome of one step, applied atomically. `None` fields keep their stored value.
#[derive(Debug, Default, Clone)]
pub struct Transition {
    pub state: String,
    pub plan_key: Option<String>,
    pub run_after: i64,
    pub attempts: i64,
    pub plan_json: Option<String>,
    pub provenance_json: Option<String>,
    pub audio_key: Option<String>,
    pub audio_seconds: Option<f64>,
    pub submit_key: Option<String>,
    pub submitted_at: Option<i64>,
    pub provider_job_id: Option<String>,
    pub video_url: Option<String>,
    pub preview_url: Option<String>,
    /// The video host the render moves to (routing by limits, failover).
    pub provider: Option<String>,
    /// Set (or cleared, when `None`) on every transition: the latest problem, if any.
    pub error_category: Option<String>,
    pub error: Option<String>,
    pub finished: bool,
}

/// One line of a render's history.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub step: String,
    pub started_at: i64,
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct StepRow {
    pub render_id: String,
    pub step: String,
    pub started_at: i64,
    pub finished_at: i64,
    pub outcome: String,
    pub detail: String,
}

impl Store {
    /// Takes the next runnable render (state in `runnable`, due, lease free or expired) and leases
    /// it to `owner` until `lease_until`.
    pub async fn claim(
        &self,
        runnable: &[&str],
        owner: &str,
        lease_until: i64,
    ) -> Result<Option<RenderRow>> {
        let states = runnable
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let skip_locked = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // Live publishes first: a run's unpaid work waits behind them (its paid work is not
        // held back); a paused run's unpaid work is not claimed, a cancelled run's only to be
        // ended (see `jobs::steps::run`).
        let prepaid = super::runs::prepaid_sql_list();
        let sql = format!(
            "UPDATE renders SET lease_owner = $1, lease_until = $2
             WHERE id = (SELECT id FROM renders
                         WHERE state IN ({states}) AND run_after <= $3
                           AND (lease_until IS NULL OR lease_until < $3)
                           AND (run_id IS NULL OR state NOT IN ({prepaid})
                                OR run_id IN (SELECT id FROM runs WHERE state IN ('active', 'cancelled')))
                         ORDER BY CASE WHEN run_id IS NOT NULL AND state IN ({prepaid}) THEN 1 ELSE 0 END,
                                  run_after
                         LIMIT 1 {skip_locked})
               AND (lease_until IS NULL OR lease_until < $3)
             RETURNING {RENDER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(lease_until)
            .bind(now_ms())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| RenderRow::from_row(&r)).transpose()?)
    }

    /// Extends a lease the owner still holds; false when it was lost.
    pub async fn renew_lease(&self, id: &str, owner: &str, lease_until: i64) -> Result<bool> {
        let done =
            sqlx::query("UPDATE renders SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
                .bind(lease_until)
                .bind(id)
                .bind(owner)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Render counts by (state, error category): the queue depth and outcome figures.
    pub async fn render_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT state, COALESCE(error_category, '') AS category, COUNT(*) AS n FROM renders
             GROUP BY state, COALESCE(error_category, '') ORDER BY state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("category")?, r.try_get("n")?)))
            .collect()
    }

    /// An editor's decision on a render in `awaiting_approval`: approved → `submit` now;
    /// rejected → `skipped` with the reason. False if the render is not awaiting approval.
    pub async fn decide_approval(&self, id: &str, approved: bool, note: &str) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let sql = if approved {
            "UPDATE renders SET state = 'submit', approved_at = $1, run_after = $1, updated_at = $1
             WHERE id = $2 AND state = 'awaiting_approval'"
        } else {
            "UPDATE renders SET state = 'skipped', error = $3, finished_at = $1, updated_at = $1
             WHERE id = $2 AND state = 'awaiting_approval'"
        };
        let mut query = sqlx::query(sql).bind(now).bind(id);
        if !approved {
            query = query.bind(note);
        }
        if query.execute(&mut *tx).await?.rows_affected() != 1 {
            // Released now, not when the dropped transaction gets round to it.
            tx.rollback().await?;
            return Ok(false);
        }
        let step = StepRecord {
            step: "approval".into(),
            started_at: now,
            outcome: if approved { "approved" } else { "rejected" }.into(),
            detail: note.to_string(),
        };
        insert_step(&mut tx, id, &step, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Sends a `writeback_failed` render back to `write_back` now (fresh attempts). False if the
    /// render is not in `writeback_failed`.
    pub async fn retry_write_back(&self, id: &str) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE renders SET state = 'write_back', attempts = 0, run_after = $1, error = NULL,
                 error_category = NULL, finished_at = NULL, updated_at = $1
             WHERE id = $2 AND state = 'writeback_failed'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            // Released now, not when the dropped transaction gets round to it.
            tx.rollback().await?;
            return Ok(false);
        }
        let step = StepRecord {
            step: "retry_writeback".into(),
            started_at: now,
            outcome: "requested".into(),
            detail: String::new(),
        };
        insert_step(&mut tx, id, &step, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Makes renders held back for `category` due now (a restart may come with new limits).
    pub async fn recheck_held(&self, category: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE renders SET run_after = $1 WHERE error_category = $2 AND state = 'submit'",
        )
        .bind(now_ms())
        .bind(category)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Frees every lease. Only for SQLite at start-up, where one process owns the queue, so any
    /// lease found belongs to a process that died.
    pub async fn release_all_leases(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE renders SET lease_owner = NULL, lease_until = NULL WHERE lease_owner IS NOT NULL",
        )
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Releases the leases held by one process's workers (owners `{instance}/{n}`).
    pub async fn release_leases_of(&self, instance: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE renders SET lease_owner = NULL, lease_until = NULL WHERE lease_owner LIKE $1",
        )
        .bind(format!("{instance}/%"))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Applies a step's outcome if `owner` still holds the lease (else returns false and changes
    /// nothing), records the step, and inserts the `siblings` (further renders of the same event,
    /// as `(plan_key, plan_json, state)`), all in one transaction.
    pub async fn commit(
        &self,
        id: &str,
        owner: &str,
        t: &Transition,
        step: &StepRecord,
        siblings: &[(String, String, String)],
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE renders SET state = $1, run_after = $2, attempts = $3,
                plan_json = COALESCE($4, plan_json), provenance_json = COALESCE($5, provenance_json),
                audio_key = COALESCE($6, audio_key), audio_seconds = COALESCE($7, audio_seconds),
                submit_key = COALESCE($8, submit_key), submitted_at = COALESCE($9, submitted_at),
                provider_job_id = COALESCE($10, provider_job_id), video_url = COALESCE($11, video_url),
                error_category = $12, error = $13, finished_at = $14, updated_at = $15,
                plan_key = COALESCE($18, plan_key), preview_url = COALESCE($19, preview_url),
                provider = COALESCE($20, provider), lease_owner = NULL, lease_until = NULL
             WHERE id = $16 AND lease_owner = $17",
        )
        // Not cached per connection: on PostgreSQL a cached statement keeps the parameter types
        // of its first execution, and a NULL there (e.g. no audio yet) mistypes a later value.
        .persistent(false)
        .bind(&t.state)
        .bind(t.run_after)
        .bind(t.attempts)
        .bind(&t.plan_json)
        .bind(&t.provenance_json)
        .bind(&t.audio_key)
        .bind(t.audio_seconds)
        .bind(&t.submit_key)
        .bind(t.submitted_at)
        .bind(&t.provider_job_id)
        .bind(&t.video_url)
        .bind(&t.error_category)
        .bind(&t.error)
        .bind(t.finished.then_some(now))
        .bind(now)
        .bind(id)
        .bind(owner)
        .bind(&t.plan_key)
        .bind(&t.preview_url)
        .bind(&t.provider)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            // Released now, not when the dropped transaction gets round to it.
            tx.rollback().await?;
            return Ok(false);
        }
        insert_step(&mut tx, id, step, now).await?;
        if !siblings.is_empty() {
            let event_id: String = sqlx::query("SELECT event_id FROM renders WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            for (plan_key, plan_json, state) in siblings {
                sqlx::query(
                    "INSERT INTO renders (id, event_id, plan_key, state, run_after, plan_json, provenance_json, plugins_json, created_at, updated_at, run_id)
                     SELECT $1, $2, $3, $4, $5, $6, $7, plugins_json, $5, $5, run_id FROM renders WHERE id = $8
                     ON CONFLICT DO NOTHING",
                )
                .bind(super::new_id())
                .bind(&event_id)
                .bind(plan_key)
                .bind(state)
                .bind(now)
                .bind(plan_json)
                .bind(&t.provenance_json)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A provider's job belongs to this render: the provider's webhook announced it, the worker
    /// that submitted it lost its lease before recording it, or an operator found it. A render
    /// already following the job is made due now (its status is confirmed with the provider
    /// before anything is believed); one that may own an unrecorded job (`submitting`,
    /// `reconciling`, `needs_attention`) or gave up waiting (`failed` as `timeout`) adopts it and
    /// follows it from `await`, with a fresh wait. A render holding another job id is left alone.
    /// Returns the state found (None: no such render).
    pub async fn adopt_job(&self, id: &str, job_id: &str, detail: &str) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        let Some(state) = state_of(&mut tx, id).await? else {
            return Ok(None);
        };
        let now = now_ms();
        if state == "await" {
            sqlx::query("UPDATE renders SET run_after = $1 WHERE id = $2 AND provider_job_id = $3")
                .bind(now)
                .bind(id)
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
        } else {
            let adopted = sqlx::query(
                "UPDATE renders SET state = 'await', provider_job_id = $1, adopted_at = $2,
                    run_after = $2, attempts = 0, error = NULL, error_category = NULL,
                    finished_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $2
                 WHERE id = $3
                   AND (state IN ('submitting', 'reconciling', 'needs_attention')
                        OR (state = 'failed' AND error_category = 'timeout'))
                   AND (provider_job_id IS NULL OR provider_job_id = $1)",
            )
            .bind(job_id)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if adopted == 1 {
                let step = StepRecord {
                    step: "adopt".into(),
                    started_at: now,
                    outcome: "adopted".into(),
                    detail: format!("{detail} (was {state})"),
                };
                insert_step(&mut tx, id, &step, now).await?;
            }
        }
        tx.commit().await?;
        Ok(Some(state))
    }

    /// A provider event without a job id: a render following a job is made due now.
    pub async fn nudge_awaiting(&self, id: &str) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        let Some(state) = state_of(&mut tx, id).await? else {
            return Ok(None);
        };
        if state == "await" {
            sqlx::query("UPDATE renders SET run_after = $1 WHERE id = $2")
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(state))
    }

    pub async fn render(&self, id: &str) -> Result<Option<RenderRow>> {
        let sql = format!("SELECT {RENDER_COLUMNS} FROM renders WHERE id = $1");
        let row: Option<AnyRow> = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| RenderRow::from_row(&r)).transpose()?)
    }

    /// Renders that may still use their inputs: every state but done, skipped, failed and
    /// dry run (a parked or gated render, a failed write-back, work in progress).
    pub async fn unfinished_render_ids(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM renders WHERE state NOT IN ('done', 'skipped', 'failed', 'dry_run')",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect::<Result<_>>()
    }

    pub async fn render_ids_for_event(&self, event_id: &str) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM renders WHERE event_id = $1 ORDER BY created_at")
            .bind(event_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// A render's history, oldest first.
    pub async fn steps(&self, render_id: &str) -> Result<Vec<StepRow>> {
        let rows = sqlx::query(
            "SELECT render_id, step, started_at, finished_at, outcome, detail FROM render_steps
             WHERE render_id = $1 ORDER BY finished_at, started_at",
        )
        .bind(render_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(StepRow::from_row(r)?)).collect()
    }
}

/// A render's state, read in `tx` (None: no such render), after taking the write lock on it: on
/// SQLite a transaction that reads first and writes later fails at once ("database is locked")
/// if another writer committed in between, instead of waiting its turn.
async fn state_of(tx: &mut sqlx::Transaction<'_, sqlx::Any>, id: &str) -> Result<Option<String>> {
    sqlx::query("UPDATE renders SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let found = sqlx::query("SELECT state FROM renders WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(found.map(|row| row.try_get(0)).transpose()?)
}

pub(super) async fn insert_step(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    render_id: &str,
    step: &StepRecord,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO render_steps (render_id, step, started_at, finished_at, outcome, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(render_id)
    .bind(&step.step)
    .bind(step.started_at)
    .bind(now)
    .bind(&step.outcome)
    .bind(&step.detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ledger::{Budgets, Reservation};
    use std::time::Duration;

    async fn store_with_render() -> (tempfile::TempDir, Store, String) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, Duration::from_secs(10)).await.unwrap();
        let content: crate::content::Content = serde_json::from_value(serde_json::json!({
            "source": "blog", "cms": "standard-webhooks", "id": "p-1", "revision": "1",
            "kind": "article", "locale": "en-US", "title": "T", "body_html": "",
            "body_text": "Body", "url": null, "image": null, "fields": {}
        }))
        .unwrap();
        let ingested = store
            .ingest("blog", Some("m-1"), &[content], "submit", "[]", None)
            .await
            .unwrap();
        let render = store
            .render_ids_for_event(ingested[0].event_id())
            .await
            .unwrap()
            .remove(0);
        (dir, store, render)
    }

    #[tokio::test]
    async fn sqlite_syncs_every_commit() {
        let (_dir, store, _) = store_with_render().await;
        let level: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(&store.pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
        assert_eq!(level, 2, "FULL");
    }

    /// Worker A marks `submitting` and makes the paid call; its lease expires and B claims the
    /// render; A's fenced commit of the answer is refused, yet the job id is kept, not dropped.
    #[tokio::test]
    async fn a_worker_that_lost_its_lease_still_records_the_paid_job() {
        let (_dir, store, id) = store_with_render().await;
        let past = now_ms() - 1;
        assert!(store
            .claim(&["submit"], "a/0", past)
            .await
            .unwrap()
            .is_some());
        let budgets = Budgets {
            all_sources: None,
            this_source: None,
        };
        let reserved = store
            .reserve_and_mark_submitting(&id, "a/0", past, "key-1", "blog", "p", 960, budgets)
            .await
            .unwrap();
        assert!(matches!(reserved, Reservation::Reserved));
        let b = store
            .claim(&["submitting"], "b/0", now_ms() + 30_000)
            .await
            .unwrap();
        assert!(b.is_some(), "A's lease ran out: B owns the render");
        let answer = Transition {
            state: "await".into(),
            provider_job_id: Some("job_1".into()),
            ..Transition::default()
        };
        let step = StepRecord {
            step: "submit".into(),
            started_at: now_ms(),
            outcome: "ok".into(),
            detail: String::new(),
        };
        assert!(!store.commit(&id, "a/0", &answer, &step, &[]).await.unwrap());
        store.adopt_job(&id, "job_1", "kept").await.unwrap();
        let render = store.render(&id).await.unwrap().unwrap();
        assert_eq!(render.state, "await");
        assert_eq!(render.provider_job_id.as_deref(), Some("job_1"));
        // A different job id never replaces the one a render holds.
        store.adopt_job(&id, "job_2", "other").await.unwrap();
        let render = store.render(&id).await.unwrap().unwrap();
        assert_eq!(render.provider_job_id.as_deref(), Some("job_1"));
    }
}
