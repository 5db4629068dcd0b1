//! The database: SQLite (embedded default, WAL) or PostgreSQL (several instances), through one
//! code path (sqlx's `Any` driver and portable SQL). Owns every SQL statement; the rest of the
//! host calls typed functions.

mod caption_edits;
mod catch_up;
mod digests;
pub use digests::DigestRow;
mod events;
mod heads;
pub mod ledger;
mod lexicon;
mod operator;
mod plugins;
mod render_list;
mod renders;
mod runs;
mod templates;
mod tokens;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

pub use caption_edits::CaptionEditRow;
pub use catch_up::{CatchUpState, SweepCounts};
pub use events::Ingested;
pub use heads::WriteBackGate;
pub use lexicon::LexiconEntry;
pub use operator::{Audit, AuditEntry};
pub use plugins::PluginRow;
pub use render_list::{ListedRender, RenderQuery};
pub use renders::{RenderRow, StepRecord, StepRow, Transition};
pub use runs::{RunItem, RunProgress, RunRow, RunState, PREPAID_STATES};
pub use templates::{Authored, DraftRow, TemplateRow};
pub use tokens::TokenRow;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database URL {0:?} (use sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    /// A batched commit failed (the message is the batch's database error).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where [`Store::ingest`] queues deliveries for the group committer.
    committer: tokio::sync::mpsc::Sender<events::Delivery>,
}

impl Store {
    /// Connects and runs the migrations. SQLite files are created if missing and use WAL.
    /// `timeout` bounds waiting for a connection (PostgreSQL) or a write lock (SQLite): past it an
    /// operation fails, and a webhook is answered 503 rather than held in memory.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(url.into()));
        };
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 16 })
            .acquire_timeout(timeout)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    match backend {
                        Backend::Sqlite => {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            let busy = format!("PRAGMA busy_timeout = {}", timeout.as_millis());
                            conn.execute(busy.as_str()).await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // Every commit that precedes a paid call or a 202 must survive power
                            // loss: in WAL mode, NORMAL may lose the last transactions (durable
                            // only at the next checkpoint); FULL syncs the WAL at every commit.
                            conn.execute("PRAGMA synchronous = FULL").await?;
                        }
                        // The server's default, enforced per session so that a server configured
                        // with `synchronous_commit = off` cannot acknowledge what it may lose.
                        Backend::Postgres => {
                            conn.execute("SET synchronous_commit = on").await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let committer = events::spawn_committer(pool.clone());
        Ok(Store {
            pool,
            backend,
            committer,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// True when the database answers; `/readyz` uses it.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// Milliseconds since the Unix epoch: the one clock every stored time uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new time-ordered id (UUID v7), so ids sort by creation.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
