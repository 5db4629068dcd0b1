//! Renders: claiming under a lease, committing a step's outcome (fenced by that lease), and
//! reading them back for `vidhook jobs` and the API.

use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

use super::{now_ms, Backend, Result, Store};

/// A render as stored.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
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
}

const RENDER_COLUMNS: &str = "id, event_id, plan_key, state, attempts, run_after, plan_json, \
    provenance_json, audio_key, audio_seconds, submit_key, submitted_at, provider_job_id, \
    video_url, error_category, error, created_at, updated_at, finished_at, plugins_json, preview_url, approved_at";

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

#[derive(Debug, Clone, FromRow, serde::Serialize)]
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
        let sql = format!(
            "UPDATE renders SET lease_owner = $1, lease_until = $2
             WHERE id = (SELECT id FROM renders
                         WHERE state IN ({states}) AND run_after <= $3
                           AND (lease_until IS NULL OR lease_until < $3)
                         ORDER BY run_after LIMIT 1 {skip_locked})
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
                lease_owner = NULL, lease_until = NULL
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
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
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
                    "INSERT INTO renders (id, event_id, plan_key, state, run_after, plan_json, provenance_json, plugins_json, created_at, updated_at)
                     SELECT $1, $2, $3, $4, $5, $6, $7, plugins_json, $5, $5 FROM renders WHERE id = $8
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

    /// A provider says a job moved: make the render due now (its state is then confirmed with
    /// the provider before anything is believed). Records the provider's job id if the render is
    /// still `submitting` without one, i.e. we crashed or timed out before reading the answer.
    pub async fn nudge_awaiting(&self, id: &str, job_id: Option<&str>) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        let state: Option<String> = sqlx::query("SELECT state FROM renders WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        let Some(state) = state else { return Ok(None) };
        let now = now_ms();
        match (state.as_str(), job_id) {
            ("await", _) => {
                sqlx::query("UPDATE renders SET run_after = $1 WHERE id = $2")
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            ("submitting" | "needs_attention", Some(job_id)) => {
                sqlx::query(
                    "UPDATE renders SET state = 'await', provider_job_id = COALESCE(provider_job_id, $1),
                        run_after = $2, attempts = 0, error = NULL, error_category = NULL,
                        lease_owner = NULL, lease_until = NULL, updated_at = $2
                     WHERE id = $3",
                )
                .bind(job_id)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let step = StepRecord {
                    step: "submit".into(),
                    started_at: now,
                    outcome: "reconciled".into(),
                    detail: format!("provider webhook reported job {job_id}"),
                };
                insert_step(&mut tx, id, &step, now).await?;
            }
            _ => {}
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

    /// The newest renders first, with the source and entry they belong to.
    pub async fn list_renders(&self, limit: i64) -> Result<Vec<(RenderRow, String, String)>> {
        let columns = RENDER_COLUMNS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {columns}, e.source AS source, e.entry_id AS entry_id
             FROM renders r JOIN events e ON e.id = r.event_id
             ORDER BY r.created_at DESC LIMIT $1"
        );
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    RenderRow::from_row(r)?,
                    r.try_get("source")?,
                    r.try_get("entry_id")?,
                ))
            })
            .collect()
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

async fn insert_step(
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
