//! Runs of many renders (a backfill, a batch file): one row per run, and the `run_id` its renders
//! carry. A run's state gates only the work before the paid call: pausing or cancelling a run
//! stops it submitting, while whatever it already paid for is followed to the end by the same
//! workers as any render (see [`PREPAID_STATES`] and [`Store::claim`]).

use sqlx::Row;

use super::{new_id, now_ms, Result, Store};
use crate::content::Content;

/// Render states before the paid call: the only ones a paused or cancelled run holds back.
pub const PREPAID_STATES: [&str; 4] = ["plan", "speak", "check", "submit"];

/// [`PREPAID_STATES`] as an SQL list: `'plan', 'speak', …`.
pub(super) fn prepaid_sql_list() -> String {
    PREPAID_STATES.map(|s| format!("'{s}'")).join(", ")
}

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Active,
    /// Submits nothing new; its paid work is followed.
    Paused,
    /// Its unpaid renders ended `skipped` (category `cancelled`); its paid work is followed.
    Cancelled,
    /// Shown for an active run whose every render has settled (done, skipped, failed, parked,
    /// dry run, write-back failed); never stored: a run re-opened by the same command is
    /// active again.
    Finished,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Active => "active",
            RunState::Paused => "paused",
            RunState::Cancelled => "cancelled",
            RunState::Finished => "finished",
        }
    }

    fn parse(text: &str) -> RunState {
        match text {
            "paused" => RunState::Paused,
            "cancelled" => RunState::Cancelled,
            "finished" => RunState::Finished,
            _ => RunState::Active,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RunRow {
    pub id: String,
    /// What was asked (`backfill blog type=post …`, `batch blog /path/rows.csv`): the same
    /// command finds the same run.
    pub label: String,
    pub kind: String,
    pub source: String,
    pub state: RunState,
    /// Videos and credits the last confirmation covered.
    pub videos: i64,
    pub credits: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

const RUN_COLUMNS: &str = "id, label, kind, source, state, videos, credits, created_at, updated_at";

/// [`RUN_COLUMNS`] as listings show a run: an active run whose renders have all settled is
/// `finished`.
const LISTED_RUN_COLUMNS: &str = "id, label, kind, source,
    CASE WHEN state = 'active'
          AND EXISTS (SELECT 1 FROM renders r WHERE r.run_id = runs.id)
          AND NOT EXISTS (SELECT 1 FROM renders r WHERE r.run_id = runs.id AND r.state NOT IN
              ('done', 'skipped', 'failed', 'needs_attention', 'dry_run', 'writeback_failed'))
         THEN 'finished' ELSE state END AS state,
    videos, credits, created_at, updated_at";

impl RunRow {
    fn from_row(row: &sqlx::any::AnyRow) -> std::result::Result<RunRow, sqlx::Error> {
        Ok(RunRow {
            id: row.try_get("id")?,
            label: row.try_get("label")?,
            kind: row.try_get("kind")?,
            source: row.try_get("source")?,
            state: RunState::parse(&row.try_get::<String, _>("state")?),
            videos: row.try_get("videos")?,
            credits: row.try_get("credits")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// One render of a run, as its progress and output files show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunItem {
    pub render_id: String,
    pub entry_id: String,
    pub locale: String,
    pub state: String,
    pub video_url: Option<String>,
    pub error: Option<String>,
    pub submitted_at: Option<i64>,
    pub finished_at: Option<i64>,
    /// How much of the row's text the narration keeps, when not all of it.
    pub shortened: Option<crate::content::WordsKept>,
}

/// Where a run stands: rows (items of the file or listing), their renders per state (a
/// multilingual row makes several) and credits counted so far.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct RunProgress {
    /// Rows (contents) the run accepted.
    pub rows: i64,
    /// Renders per state.
    pub states: std::collections::BTreeMap<String, i64>,
    /// Of the `skipped` ones, those its cancellation ended (resuming queues them again).
    pub cancelled: i64,
    pub credits: i64,
}

impl Store {
    /// The run `label` names, made active with this confirmation's figures: created on first
    /// use; resumed (from paused, or from cancelled, its cancelled renders queued again) after.
    pub async fn open_run(
        &self,
        label: &str,
        kind: &str,
        source: &str,
        videos: i64,
        credits: i64,
    ) -> Result<RunRow> {
        let now = now_ms();
        let created = sqlx::query(
            "INSERT INTO runs (id, label, kind, source, state, videos, credits, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $7) ON CONFLICT (label) DO NOTHING",
        )
        .bind(new_id())
        .bind(label)
        .bind(kind)
        .bind(source)
        .bind(videos)
        .bind(credits)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE label = $1");
        let run = RunRow::from_row(&sqlx::query(&sql).bind(label).fetch_one(&self.pool).await?)?;
        if !created {
            // Resumed: the run now covers this confirmation too.
            sqlx::query(
                "UPDATE runs SET videos = videos + $1, credits = credits + $2 WHERE id = $3",
            )
            .bind(videos)
            .bind(credits)
            .bind(&run.id)
            .execute(&self.pool)
            .await?;
            self.set_run_state(&run.id, RunState::Active).await?;
        }
        self.run(&run.id).await.map(|r| r.expect("just written"))
    }

    pub async fn run(&self, id: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {LISTED_RUN_COLUMNS} FROM runs WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| RunRow::from_row(&r)).transpose()?)
    }

    /// The run `label` names, if it was ever opened.
    pub async fn run_labelled(&self, label: &str) -> Result<Option<RunRow>> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE label = $1");
        let row = sqlx::query(&sql)
            .bind(label)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| RunRow::from_row(&r)).transpose()?)
    }

    /// Every run, newest first.
    pub async fn runs(&self) -> Result<Vec<RunRow>> {
        let sql = format!("SELECT {LISTED_RUN_COLUMNS} FROM runs ORDER BY created_at DESC");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok(RunRow::from_row(r)?))
            .collect::<Result<_>>()
    }

    /// Pauses, resumes or cancels a run, in one transaction with its renders: cancelling ends
    /// every unpaid render `skipped` (category `cancelled`); leaving `cancelled` queues them
    /// again from their last completed step. False if there is no such run.
    pub async fn set_run_state(&self, id: &str, state: RunState) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // The write comes first: on SQLite it takes the write lock for the whole transaction (a
        // read first would make the later write fail at once with `database is locked` when a
        // worker commits in between).
        let touched = sqlx::query("UPDATE runs SET updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if touched == 0 {
            return Ok(false);
        }
        let before: String = sqlx::query("SELECT state FROM runs WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let before = RunState::parse(&before);
        sqlx::query("UPDATE runs SET state = $1, updated_at = $2 WHERE id = $3")
            .bind(state.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let prepaid = prepaid_sql_list();
        if state == RunState::Cancelled {
            // Fenced by the lease: a render a worker holds right now finishes its step first and
            // is ended `skipped` at its next claim (`jobs::steps::run`); the reservation refuses
            // a cancelled run's paid call in any case.
            let sql = format!(
                "UPDATE renders SET state = 'skipped', error_category = 'cancelled',
                        error = 'its run was cancelled before its paid call', finished_at = $1, updated_at = $1
                 WHERE run_id = $2 AND state IN ({prepaid}) AND (lease_until IS NULL OR lease_until < $1)"
            );
            sqlx::query(&sql)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        } else if before == RunState::Cancelled && state != RunState::Cancelled {
            // Back to the first step whose input is missing: plan without a plan, speak with one
            // (the audio is made again; nothing before the paid call costs anything).
            sqlx::query(
                "UPDATE renders SET state = CASE WHEN plan_json IS NULL THEN 'plan' ELSE 'speak' END,
                        error_category = NULL, error = NULL, finished_at = NULL, attempts = 0,
                        run_after = $1, updated_at = $1
                 WHERE run_id = $2 AND state = 'skipped' AND error_category = 'cancelled'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Renders per state, and the credits the run's renders count (the same rule as the budgets:
    /// the provider's actual figure where known, else the reservation).
    pub async fn run_progress(&self, id: &str) -> Result<RunProgress> {
        let mut progress = RunProgress::default();
        let rows = sqlx::query(
            "SELECT state, COALESCE(error_category, '') AS category, COUNT(*) AS n FROM renders
             WHERE run_id = $1 GROUP BY state, COALESCE(error_category, '')",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let (state, category, n): (String, String, i64) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            if state == "skipped" && category == "cancelled" {
                progress.cancelled += n;
            }
            *progress.states.entry(state).or_default() += n;
        }
        progress.rows =
            sqlx::query("SELECT COUNT(DISTINCT event_id) FROM renders WHERE run_id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
        progress.credits = sqlx::query(&super::ledger::counted_credits_sql("r.run_id = $1"))
            .bind(id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(progress)
    }

    /// The run's renders with their entries, oldest first.
    pub async fn run_items(&self, id: &str) -> Result<Vec<RunItem>> {
        let rows = sqlx::query(
            "SELECT r.id, e.entry_id, e.locale, r.state, r.video_url, r.error, r.submitted_at, r.finished_at,
                    r.plan_json
             FROM renders r JOIN events e ON e.id = r.event_id
             WHERE r.run_id = $1 ORDER BY r.created_at, r.id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RunItem {
                    render_id: r.try_get(0)?,
                    entry_id: r.try_get(1)?,
                    locale: r.try_get(2)?,
                    state: r.try_get(3)?,
                    video_url: r.try_get(4)?,
                    error: r.try_get(5)?,
                    submitted_at: r.try_get(6)?,
                    finished_at: r.try_get(7)?,
                    shortened: crate::content::WordsKept::in_plan(
                        r.try_get::<Option<String>, _>(8)?.as_deref(),
                    ),
                })
            })
            .collect()
    }

    /// True when `content` (as it is now) is already its entry's accepted head: it has, or is
    /// getting, its video, and offering it again would be a duplicate.
    pub async fn is_current(&self, source: &str, content: &Content) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM entry_heads WHERE source = $1 AND entry_id = $2 AND locale = $3
               AND (fingerprint = $4 OR written_fingerprint = $4)",
        )
        .bind(source)
        .bind(&content.id)
        .bind(&content.locale)
        .bind(content.fingerprint())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(id: &str) -> Content {
        Content {
            source: "blog".into(),
            cms: "markdown".into(),
            id: id.into(),
            revision: "1".into(),
            kind: "article".into(),
            locale: "en-US".into(),
            title: format!("Title of {id}"),
            body_html: String::new(),
            body_text: "Body.".into(),
            url: None,
            image: None,
            fields: serde_json::json!({}),
        }
    }

    /// Cancelling ends the unpaid renders as `cancelled`; a render a plugin skipped stays a plain
    /// skip, and only the cancelled ones count as what resuming would queue again.
    #[tokio::test]
    async fn cancel_counts_apart_from_plugin_skips_and_resume_queues_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, std::time::Duration::from_secs(10))
            .await
            .unwrap();
        let run = store
            .open_run("backfill blog", "backfill", "blog", 2, 0)
            .await
            .unwrap();
        let contents = [content("a"), content("b")];
        store
            .ingest("blog", None, &contents, "plan", "[]", Some(&run.id))
            .await
            .unwrap();
        let items = store.run_items(&run.id).await.unwrap();
        sqlx::query("UPDATE renders SET state = 'skipped' WHERE id = $1")
            .bind(&items[0].render_id)
            .execute(&store.pool)
            .await
            .unwrap();

        assert!(store
            .set_run_state(&run.id, RunState::Cancelled)
            .await
            .unwrap());
        let progress = store.run_progress(&run.id).await.unwrap();
        assert_eq!(progress.states.get("skipped"), Some(&2));
        assert_eq!(progress.cancelled, 1);

        assert!(store
            .set_run_state(&run.id, RunState::Active)
            .await
            .unwrap());
        let progress = store.run_progress(&run.id).await.unwrap();
        assert_eq!(
            progress.states.get("skipped"),
            Some(&1),
            "the plugin's skip stays"
        );
        assert_eq!(progress.states.get("plan"), Some(&1));
        assert_eq!(progress.cancelled, 0);
    }
}
