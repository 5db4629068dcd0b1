//! The credit ledger and the budget check that guards every paid submit.

use sqlx::{FromRow, Row};

use super::{now_ms, Backend, Result, Store};

const DAY_MS: i64 = 86_400_000;

/// Today's UTC day number.
pub fn today() -> i64 {
    now_ms() / DAY_MS
}

/// Unix ms at which UTC day `day` starts.
pub fn day_start_ms(day: i64) -> i64 {
    day * DAY_MS
}

/// Daily limits in credits; `None` = unlimited.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budgets {
    pub all_sources: Option<i64>,
    pub this_source: Option<i64>,
}

impl Budgets {
    /// What is left under the tighter of the two limits after `spent_all` (every source, today)
    /// and `spent_source` (this source, today), never below 0; none when neither limit is set.
    pub fn left(self, spent_all: i64, spent_source: i64) -> Option<i64> {
        let all = self.all_sources.map(|limit| limit - spent_all);
        let this = self.this_source.map(|limit| limit - spent_source);
        let left = match (all, this) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        left.map(|l| l.max(0))
    }
}

/// The outcome of asking to submit.
#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    /// `submitting` is committed with the key, and `credits` are reserved for today.
    Reserved,
    /// Nothing changed: the budget named would be exceeded.
    OverBudget {
        scope: String,
        spent: i64,
        limit: i64,
        asked: i64,
    },
    /// Another worker owns the render now.
    LeaseLost,
    /// Nothing changed: the render's run was paused or cancelled (checked in the same statement
    /// that marks it `submitting`, so a pause committed before it is never paid through).
    RunNotActive,
}

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct LedgerRow {
    pub render_id: String,
    pub source: String,
    pub provider: String,
    pub kind: String,
    pub credits: i64,
    pub day: i64,
    pub at: i64,
}

/// The credits of the ledger rows `l` (joined to their renders `r`) that count: a render's actual
/// figure once known, else its estimate; nothing for a render that failed (or was a dry run)
/// without the provider ever taking a job. The budgets and a run's progress both count this way.
pub(super) fn counted_credits_sql(filter: &str) -> String {
    counted_sql("", filter, "")
}

/// [`counted_credits_sql`] with `keys` (columns of `l`) selected before the sum and grouped by.
fn counted_sql(keys: &str, filter: &str, order: &str) -> String {
    let (select, group) = if keys.is_empty() {
        (String::new(), String::new())
    } else {
        (format!("{keys}, "), format!(" GROUP BY {keys}{order}"))
    };
    format!(
        "SELECT {select}CAST(COALESCE(SUM(l.credits), 0) AS BIGINT) FROM credit_ledger l
         JOIN renders r ON r.id = l.render_id
         WHERE {filter}
           AND NOT (r.state = 'failed' AND r.provider_job_id IS NULL)
           AND (l.kind = 'actual' OR NOT EXISTS (
                SELECT 1 FROM credit_ledger a WHERE a.render_id = l.render_id AND a.kind = 'actual')){group}"
    )
}

/// Credits counted against a budget today ($1: the day, $2: the source or '' for all).
fn spent_sql() -> String {
    counted_credits_sql("l.day = $1 AND ($2 = '' OR l.source = $2)")
}

impl Store {
    /// Atomically: mark the render `submitting` with its idempotency key and its host `provider`
    /// (fenced by the lease), check today's spend against the budgets, and reserve the estimated
    /// credits. A retry of the same render on the same host reuses its reservation; a render that
    /// failed over (the previous host provably took nothing) gives up the previous host's.
    #[allow(clippy::too_many_arguments)]
    pub async fn reserve_and_mark_submitting(
        &self,
        render_id: &str,
        owner: &str,
        lease_until: i64,
        submit_key: &str,
        source: &str,
        provider: &str,
        credits: i64,
        budgets: Budgets,
    ) -> Result<Reservation> {
        let now = now_ms();
        let day = today();
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // One reservation at a time across instances, so two cannot both fit under a limit.
            sqlx::query("SELECT pg_advisory_xact_lock(8640)")
                .execute(&mut *tx)
                .await?;
        }
        // The write comes first: on SQLite it takes the database's write lock for the whole check.
        let marked = sqlx::query(
            "UPDATE renders SET state = 'submitting', submit_key = $1, submitted_at = $2, updated_at = $2,
                 lease_until = $5, provider = $6
             WHERE id = $3 AND lease_owner = $4
               AND (run_id IS NULL OR run_id IN (SELECT id FROM runs WHERE state = 'active'))",
        )
        .bind(submit_key)
        .bind(now)
        .bind(render_id)
        .bind(owner)
        .bind(lease_until)
        .bind(provider)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked != 1 {
            let ours = sqlx::query("SELECT 1 FROM renders WHERE id = $1 AND lease_owner = $2")
                .bind(render_id)
                .bind(owner)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            tx.rollback().await?;
            return Ok(if ours {
                Reservation::RunNotActive
            } else {
                Reservation::LeaseLost
            });
        }
        sqlx::query(
            "DELETE FROM credit_ledger WHERE render_id = $1 AND kind = 'estimate' AND provider <> $2",
        )
        .bind(render_id)
        .bind(provider)
        .execute(&mut *tx)
        .await?;
        let already: i64 = sqlx::query(
            "SELECT COUNT(*) FROM credit_ledger WHERE render_id = $1 AND kind = 'estimate'",
        )
        .bind(render_id)
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
        if already == 0 && credits > 0 {
            for (scope, filter, limit) in [
                ("all sources".to_string(), "", budgets.all_sources),
                (format!("source {source}"), source, budgets.this_source),
            ] {
                let Some(limit) = limit else { continue };
                let spent: i64 = sqlx::query(&spent_sql())
                    .bind(day)
                    .bind(filter)
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get(0)?;
                if spent + credits > limit {
                    tx.rollback().await?;
                    return Ok(Reservation::OverBudget {
                        scope,
                        spent,
                        limit,
                        asked: credits,
                    });
                }
            }
        }
        if already == 0 {
            self.insert_ledger(
                &mut tx, render_id, source, provider, "estimate", credits, day, now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Reservation::Reserved)
    }

    /// Records what the provider says a finished job cost.
    pub async fn record_actual_credits(
        &self,
        render_id: &str,
        source: &str,
        provider: &str,
        credits: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        self.insert_ledger(
            &mut tx,
            render_id,
            source,
            provider,
            "actual",
            credits,
            today(),
            now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_ledger(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        render_id: &str,
        source: &str,
        provider: &str,
        kind: &str,
        credits: i64,
        day: i64,
        at: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO credit_ledger (render_id, source, provider, kind, credits, day, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(render_id)
        .bind(source)
        .bind(provider)
        .bind(kind)
        .bind(credits)
        .bind(day)
        .bind(at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Credits counted against today's budget (`source` = "" for all sources).
    pub async fn spent_today(&self, source: &str) -> Result<i64> {
        Ok(sqlx::query(&spent_sql())
            .bind(today())
            .bind(source)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// Credits left today under `budgets` for `source` (the tighter of the two limits, never
    /// below 0); none when neither limit is set.
    pub async fn credits_left_today(&self, source: &str, budgets: Budgets) -> Result<Option<i64>> {
        let spent_all = match budgets.all_sources {
            Some(_) => self.spent_today("").await?,
            None => 0,
        };
        let spent_source = match budgets.this_source {
            Some(_) => self.spent_today(source).await?,
            None => 0,
        };
        Ok(budgets.left(spent_all, spent_source))
    }

    /// Credits counted per day (days since the epoch, UTC) and source, from `since_day` on.
    pub async fn credits_by_day(&self, since_day: i64) -> Result<Vec<(i64, String, i64)>> {
        let sql = counted_sql(
            "l.day, l.source",
            "l.day >= $1",
            " ORDER BY l.day, l.source",
        );
        let rows = sqlx::query(&sql)
            .bind(since_day)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// Credits counted for each of `render_ids` that has any (one query).
    pub async fn credits_of_renders(
        &self,
        render_ids: &[&str],
    ) -> Result<std::collections::HashMap<String, i64>> {
        if render_ids.is_empty() {
            return Ok(Default::default());
        }
        let placeholders: Vec<String> = (1..=render_ids.len()).map(|i| format!("${i}")).collect();
        let filter = format!("l.render_id IN ({})", placeholders.join(", "));
        let sql = counted_sql("l.render_id", &filter, "");
        let mut query = sqlx::query(&sql);
        for id in render_ids {
            query = query.bind(*id);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Today's submits (their `estimate` rows), oldest first: what a budget rehearsal replays.
    pub async fn submits_today(&self) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            "SELECT render_id, source, provider, kind, credits, day, at FROM credit_ledger
             WHERE day = $1 AND kind = 'estimate' ORDER BY at, render_id",
        )
        .bind(today())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(LedgerRow::from_row(r)?)).collect()
    }

    /// Ledger rows, newest first.
    pub async fn ledger(&self, limit: i64) -> Result<Vec<LedgerRow>> {
        let rows = sqlx::query(
            "SELECT render_id, source, provider, kind, credits, day, at FROM credit_ledger ORDER BY at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(LedgerRow::from_row(r)?)).collect()
    }
}

/// What today's budgets would have done to today's submits had each cost what a paid video
/// costs: the rehearsal an operator runs on the free preview provider or a dry run before
/// paying (`vidhook credits --what-if`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WhatIf {
    /// Submits replayed, and the credits those let through would have counted.
    pub submits: usize,
    pub credits: i64,
    /// The submits the budgets would have held back: (render, source, the scope that ran out).
    pub held_back: Vec<(String, String, String)>,
}

/// Replays `submits` (oldest first) against `budgets_of` each source, each priced at its own
/// credits or, when it cost nothing, at `price`; a held-back submit counts nothing, as the real
/// check reserves nothing for it.
pub fn what_if(submits: &[LedgerRow], price: i64, budgets_of: impl Fn(&str) -> Budgets) -> WhatIf {
    let mut spent_all = 0;
    let mut spent_by_source = std::collections::HashMap::<&str, i64>::new();
    let mut outcome = WhatIf::default();
    for submit in submits {
        let credits = if submit.credits > 0 {
            submit.credits
        } else {
            price
        };
        let budgets = budgets_of(&submit.source);
        let spent_source = spent_by_source.entry(&submit.source).or_default();
        let over = |limit: Option<i64>, spent: i64| limit.is_some_and(|l| spent + credits > l);
        let scope = if over(budgets.all_sources, spent_all) {
            Some("all sources")
        } else if over(budgets.this_source, *spent_source) {
            Some("this source")
        } else {
            None
        };
        outcome.submits += 1;
        match scope {
            Some(scope) => outcome.held_back.push((
                submit.render_id.clone(),
                submit.source.clone(),
                scope.to_string(),
            )),
            None => {
                spent_all += credits;
                *spent_source += credits;
                outcome.credits += credits;
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::Budgets;

    #[test]
    fn a_rehearsal_holds_back_what_the_budgets_would_have() {
        let submit = |id: &str, source: &str, credits: i64| super::LedgerRow {
            render_id: id.into(),
            source: source.into(),
            provider: "preview".into(),
            kind: "estimate".into(),
            credits,
            day: 0,
            at: 0,
        };
        let submits = [
            submit("a", "news", 0),
            submit("b", "news", 0),
            submit("c", "blog", 0),
            submit("d", "news", 0),
        ];
        let outcome = super::what_if(&submits, 960, |source| Budgets {
            all_sources: Some(2880),
            this_source: (source == "news").then_some(1920),
        });
        assert_eq!(outcome.submits, 4);
        assert_eq!(outcome.credits, 2880);
        assert_eq!(
            outcome.held_back,
            vec![(
                "d".to_string(),
                "news".to_string(),
                "all sources".to_string()
            )]
        );
    }

    #[test]
    fn the_tighter_limit_decides_what_is_left_and_nothing_is_below_zero() {
        let both = Budgets {
            all_sources: Some(2000),
            this_source: Some(1000),
        };
        assert_eq!(both.left(500, 400), Some(600));
        assert_eq!(both.left(1800, 0), Some(200));
        assert_eq!(both.left(0, 1500), Some(0));
        assert_eq!(
            Budgets {
                all_sources: None,
                this_source: Some(960)
            }
            .left(9999, 0),
            Some(960)
        );
        assert_eq!(Budgets::default().left(5, 5), None);
    }
}
