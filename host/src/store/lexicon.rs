//! The pronunciation lexicon's rows; each change is committed with its audit entry.

use sqlx::FromRow;

use super::operator::{insert_audit, Audit};
use super::{now_ms, Result, Store};

/// One term of a source's lexicon.
#[derive(
    Debug, Clone, PartialEq, FromRow, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct LexiconEntry {
    pub source: String,
    /// "" for every locale, else a language ("de") or locale ("de-at"), lower case.
    pub locale: String,
    pub term: String,
    pub spoken: String,
    #[serde(default)]
    pub updated_at: i64,
    #[serde(default)]
    pub updated_by: String,
}

impl Store {
    /// A source's terms, by locale then term.
    pub async fn lexicon(&self, source: &str) -> Result<Vec<LexiconEntry>> {
        Ok(sqlx::query_as(
            "SELECT source, locale, term, spoken, updated_at, updated_by FROM lexicon
             WHERE source = $1 ORDER BY locale, term",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Adds or replaces a term.
    pub async fn set_lexicon_entry(
        &self,
        source: &str,
        locale: &str,
        term: &str,
        spoken: &str,
        audit: &Audit<'_>,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO lexicon (source, locale, term, spoken, updated_at, updated_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (source, locale, term) DO UPDATE SET
               spoken = excluded.spoken, updated_at = excluded.updated_at,
               updated_by = excluded.updated_by",
        )
        .bind(source)
        .bind(locale)
        .bind(term)
        .bind(spoken)
        .bind(now)
        .bind(audit.actor)
        .execute(&mut *tx)
        .await?;
        let detail = format!("{locale}: {term} -> {spoken}");
        insert_audit(&mut tx, audit, source, &detail, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a term; false if there was none.
    pub async fn remove_lexicon_entry(
        &self,
        source: &str,
        locale: &str,
        term: &str,
        audit: &Audit<'_>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let removed =
            sqlx::query("DELETE FROM lexicon WHERE source = $1 AND locale = $2 AND term = $3")
                .bind(source)
                .bind(locale)
                .bind(term)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
        if removed {
            insert_audit(
                &mut tx,
                audit,
                source,
                &format!("{locale}: {term}"),
                now_ms(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }
}
