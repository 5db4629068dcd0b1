//! What operators do to renders by hand (retry, resubmit), each change committed together with
//! its audit entry: who, when, why. Adopting a job goes through [`Store::adopt_job`] and is
//! audited with [`Store::audit`].

use sqlx::{FromRow, Row};

use super::renders::{insert_step, StepRecord};
use super::{new_id, now_ms, Result, Store};

/// One operator action, as `vidhook audit` shows it.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub reason: String,
    pub detail: String,
}

/// Who did it and why; written with the change it explains.
#[derive(Debug, Clone)]
pub struct Audit<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub reason: &'a str,
}

impl Store {
    /// Records an operator action on its own (when the change itself was committed elsewhere).
    pub async fn audit(&self, audit: &Audit<'_>, target: &str, detail: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        insert_audit(&mut tx, audit, target, detail, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest operator actions first.
    pub async fn audit_entries(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, reason, detail FROM audit_log
             ORDER BY at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(AuditEntry::from_row(r)?)).collect()
    }

    /// Steps of a render that ended with `outcome` (e.g. whether any submit was ambiguous).
    pub async fn count_steps(&self, render_id: &str, outcome: &str) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) FROM render_steps WHERE render_id = $1 AND outcome = $2")
                .bind(render_id)
                .bind(outcome)
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?,
        )
    }

    /// The step a failed render failed at (its last step recorded as `failed`).
    pub async fn failed_step(&self, render_id: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT step FROM render_steps WHERE render_id = $1 AND outcome = 'failed'
             ORDER BY finished_at DESC LIMIT 1",
        )
        .bind(render_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// Moves a render from `from` to `to` with fresh attempts, due now, audited. With
    /// `new_submit_key`, the render forgets its job and gets a new key (an explicit resubmit).
    /// False if the render is no longer in `from` (someone else moved it).
    pub async fn operator_move(
        &self,
        id: &str,
        from: &str,
        to: &str,
        new_submit_key: Option<&str>,
        audit: &Audit<'_>,
    ) -> Result<bool> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE renders SET state = $1, attempts = 0, run_after = $2, error = NULL,
                 error_category = NULL, updated_at = $2,
                 finished_at = CASE WHEN $1 = 'skipped' THEN $2 ELSE NULL END,
                 lease_owner = NULL, lease_until = NULL,
                 adopted_at = CASE WHEN $1 = 'await' THEN $2 ELSE adopted_at END,
                 submit_key = COALESCE($3, submit_key),
                 provider_job_id = CASE WHEN $3 IS NULL THEN provider_job_id ELSE NULL END
             WHERE id = $4 AND state = $5",
        )
        .persistent(false)
        .bind(to)
        .bind(now)
        .bind(new_submit_key)
        .bind(id)
        .bind(from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved != 1 {
            // Released now, not when the dropped transaction gets round to it.
            tx.rollback().await?;
            return Ok(false);
        }
        let detail = format!("{from} → {to}");
        let step = StepRecord {
            step: audit.action.to_string(),
            started_at: now,
            outcome: "requested".into(),
            detail: format!("{detail} by {}: {}", audit.actor, audit.reason),
        };
        insert_step(&mut tx, id, &step, now).await?;
        insert_audit(&mut tx, audit, id, &detail, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

pub(super) async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    audit: &Audit<'_>,
    target: &str,
    detail: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, reason, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(at)
    .bind(audit.actor)
    .bind(audit.action)
    .bind(target)
    .bind(audit.reason)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
