//! The catch-up sweep's state per source: its watermark (how far the CMS's listing has been
//! committed) and a lease, so that with several instances on one database one sweep runs per
//! source at a time. The watermark is written only by the lease's holder, and only forward.

use sqlx::Row;

use super::{now_ms, Result, Store};

/// What `vidhook sources` and the admin API show of a source's sweep.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CatchUpState {
    pub source: String,
    /// Unix ms: every item the CMS changed before this (less the overlap) has been accepted.
    pub watermark: i64,
    pub last_ok_at: Option<i64>,
    pub last_error: Option<String>,
    /// When the last sweep ended (ok or not).
    pub last_sweep_at: Option<i64>,
    /// Items the last completed sweep listed, and how many of them no webhook had delivered.
    pub last_listed: Option<i64>,
    pub last_found: Option<i64>,
    /// Deliveries the source refused (bad signature, malformed, over a limit) in the time
    /// before the last sweep: with nothing listed, a sign of a filter that finds nothing.
    pub refused_before: Option<i64>,
}

/// How a sweep ended, as [`Store::finish_catch_up`] records it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SweepCounts {
    pub listed: u64,
    pub found: u64,
    pub refused_before: u64,
}

impl Store {
    /// Takes the sweep lease of `source` for `owner` until `until` if nobody holds it (or its
    /// holder's lease ran out). Returns the watermark and the time of the source's first sweep,
    /// or `None` if another instance is sweeping. On a source's first sight its row is created
    /// with both at `start`, and `Some(None)` says there is nothing to sweep yet.
    pub async fn claim_catch_up(
        &self,
        source: &str,
        owner: &str,
        start: i64,
        until: i64,
    ) -> Result<Option<Option<(i64, i64)>>> {
        let now = now_ms();
        let created = sqlx::query(
            "INSERT INTO catch_up (source, watermark, started_at) VALUES ($1, $2, $2)
             ON CONFLICT (source) DO NOTHING",
        )
        .bind(source)
        .bind(start)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if created == 1 {
            return Ok(Some(None));
        }
        let claimed = sqlx::query(
            "UPDATE catch_up SET lease_owner = $1, lease_until = $2
             WHERE source = $3 AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)",
        )
        .bind(owner)
        .bind(until)
        .bind(source)
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if claimed == 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT watermark, started_at FROM catch_up WHERE source = $1")
            .bind(source)
            .fetch_one(&self.pool)
            .await?;
        Ok(Some(Some((row.try_get(0)?, row.try_get(1)?))))
    }

    /// Moves the watermark forward to `watermark` (never back), if `owner` still holds the
    /// lease; false if it lost it (another instance's sweep took over).
    pub async fn advance_catch_up(
        &self,
        source: &str,
        owner: &str,
        watermark: i64,
    ) -> Result<bool> {
        let updated = sqlx::query(
            "UPDATE catch_up SET watermark = CASE WHEN watermark < $1 THEN $1 ELSE watermark END
             WHERE source = $2 AND lease_owner = $3",
        )
        .bind(watermark)
        .bind(source)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(updated == 1)
    }

    /// Ends `owner`'s sweep of `source`, recording how it went (`Ok`: what it listed and found;
    /// `Err`: why it failed); the lease is released.
    pub async fn finish_catch_up(
        &self,
        source: &str,
        owner: &str,
        outcome: std::result::Result<SweepCounts, &str>,
    ) -> Result<()> {
        let now = now_ms();
        let (error, counts) = match outcome {
            Ok(counts) => (None, Some(counts)),
            Err(error) => (Some(error), None),
        };
        let count = |f: fn(&SweepCounts) -> u64| counts.as_ref().map(|c| f(c) as i64);
        sqlx::query(
            "UPDATE catch_up SET lease_owner = NULL, lease_until = 0, last_error = $1,
                 last_ok_at = CASE WHEN $1 IS NULL THEN $2 ELSE last_ok_at END,
                 last_sweep_at = $2,
                 last_listed = COALESCE($5, last_listed), last_found = COALESCE($6, last_found),
                 refused_before = COALESCE($7, refused_before)
             WHERE source = $3 AND lease_owner = $4",
        )
        .bind(error)
        .bind(now)
        .bind(source)
        .bind(owner)
        .bind(count(|c| c.listed))
        .bind(count(|c| c.found))
        .bind(count(|c| c.refused_before))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Releases every sweep lease (SQLite start-up: any holder is a process that died).
    pub async fn release_catch_up_leases(&self) -> Result<()> {
        sqlx::query("UPDATE catch_up SET lease_owner = NULL, lease_until = 0")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every source's sweep state.
    pub async fn catch_up_states(&self) -> Result<Vec<CatchUpState>> {
        let rows = sqlx::query(
            "SELECT source, watermark, last_ok_at, last_error, last_sweep_at, last_listed,
                    last_found, refused_before
             FROM catch_up ORDER BY source",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CatchUpState {
                    source: r.try_get(0)?,
                    watermark: r.try_get(1)?,
                    last_ok_at: r.try_get(2)?,
                    last_error: r.try_get(3)?,
                    last_sweep_at: r.try_get(4)?,
                    last_listed: r.try_get(5)?,
                    last_found: r.try_get(6)?,
                    refused_before: r.try_get(7)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, std::time::Duration::from_secs(10))
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn one_sweeper_per_source_and_the_watermark_only_moves_forward() {
        let (_dir, store) = store().await;
        let later = now_ms() + 60_000;
        let claim = |owner: &'static str, start: i64, until: i64| {
            let store = store.clone();
            async move {
                store
                    .claim_catch_up("blog", owner, start, until)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            claim("a", 1_000, later).await,
            Some(None),
            "first sight: the watermark starts where the caller says; nothing to sweep yet"
        );
        assert_eq!(claim("a", 1_000, later).await, Some(Some((1_000, 1_000))));
        assert_eq!(claim("b", 9_000, later).await, None, "a holds the lease");
        assert!(store.advance_catch_up("blog", "a", 5_000).await.unwrap());
        assert!(!store.advance_catch_up("blog", "b", 7_000).await.unwrap());
        assert!(store.advance_catch_up("blog", "a", 2_000).await.unwrap());
        let counts = SweepCounts {
            listed: 3,
            found: 1,
            refused_before: 2,
        };
        store
            .finish_catch_up("blog", "a", Ok(counts))
            .await
            .unwrap();
        assert_eq!(
            claim("b", 9_000, later).await,
            Some(Some((5_000, 1_000))),
            "released: b continues from a's committed watermark, never backwards"
        );
        store
            .finish_catch_up("blog", "b", Err("GET …: 503"))
            .await
            .unwrap();
        // A lease that ran out can be taken over.
        assert_eq!(claim("a", 0, 0).await, Some(Some((5_000, 1_000))));
        assert_eq!(claim("b", 0, later).await, Some(Some((5_000, 1_000))));
        let states = store.catch_up_states().await.unwrap();
        assert_eq!(states[0].last_error.as_deref(), Some("GET …: 503"));
        // A failed sweep keeps the counts of the last one that listed.
        assert_eq!(
            (
                states[0].last_listed,
                states[0].last_found,
                states[0].refused_before
            ),
            (Some(3), Some(1), Some(2))
        );
        assert!(states[0].last_sweep_at.is_some());
    }
}
