//! Editor templates: append-only versions, and one unpublished draft per template.

use sqlx::{FromRow, Row};

use super::{now_ms, Result, Store};

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct TemplateRow {
    pub name: String,
    pub version: i64,
    pub body: String,
    pub created_at: i64,
    /// Who saved it (a token's name, the operator's user); empty for a seeded default.
    pub author: String,
    /// Why, in the author's words (may be empty).
    pub note: String,
    /// For a rollback: the version whose text it restored.
    pub restored_from: Option<i64>,
}

/// Who saves a version, and why.
#[derive(Debug, Clone, Copy, Default)]
pub struct Authored<'a> {
    pub author: &'a str,
    pub note: &'a str,
    /// Set when the version restores an older one's text.
    pub restored_from: Option<i64>,
}

/// A template's draft: saved, not live (renders never read it).
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct DraftRow {
    pub name: String,
    pub body: String,
    /// Who saved it last.
    pub author: String,
    pub note: String,
    /// The live version it was written against (a newer one may have been published since).
    pub based_on: i64,
    pub saved_at: i64,
}

const TEMPLATE_COLUMNS: &str = "name, version, body, created_at, author, note, restored_from";

impl Store {
    /// The latest version of every template.
    pub async fn latest_templates(&self) -> Result<Vec<TemplateRow>> {
        let rows = sqlx::query(
            "SELECT t.name, t.version, t.body, t.created_at, t.author, t.note, t.restored_from
             FROM templates t
             WHERE t.version = (SELECT MAX(version) FROM templates u WHERE u.name = t.name)
             ORDER BY t.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(TemplateRow::from_row(r)?)).collect()
    }

    /// Every version of `name`, newest first (none: no such template).
    pub async fn template_versions(&self, name: &str) -> Result<Vec<TemplateRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE name = $1 ORDER BY version DESC"
        ))
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(TemplateRow::from_row(r)?)).collect()
    }

    /// Version `version` of `name`, if it exists.
    pub async fn template_version(&self, name: &str, version: i64) -> Result<Option<TemplateRow>> {
        let row = sqlx::query(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE name = $1 AND version = $2"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| TemplateRow::from_row(&r)).transpose()?)
    }

    /// Saves a new version of `name` and returns its number. One statement: on SQLite it takes
    /// the write lock at once (a read-then-write transaction would fail with "database is
    /// locked" instead of waiting while a worker writes).
    pub async fn save_template(&self, name: &str, body: &str, by: Authored<'_>) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO templates (name, version, body, created_at, author, note, restored_from)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5, $6 FROM templates WHERE name = $1
             RETURNING version",
        )
        .bind(name)
        .bind(body)
        .bind(now_ms())
        .bind(by.author)
        .bind(by.note)
        .bind(by.restored_from)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Saves version 1 of `name` unless the template exists already.
    pub async fn seed_template(&self, name: &str, body: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO templates (name, version, body, created_at) VALUES ($1, 1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(body)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every saved draft, by template name.
    pub async fn template_drafts(&self) -> Result<Vec<DraftRow>> {
        let rows = sqlx::query(
            "SELECT name, body, author, note, based_on, saved_at FROM template_drafts ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(DraftRow::from_row(r)?)).collect()
    }

    /// Saves (or replaces) the draft of `name`.
    pub async fn save_template_draft(
        &self,
        name: &str,
        body: &str,
        by: Authored<'_>,
        based_on: i64,
    ) -> Result<DraftRow> {
        let row = sqlx::query(
            "INSERT INTO template_drafts (name, body, author, note, based_on, saved_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET body = excluded.body, author = excluded.author,
                 note = excluded.note, based_on = excluded.based_on, saved_at = excluded.saved_at
             RETURNING name, body, author, note, based_on, saved_at",
        )
        .bind(name)
        .bind(body)
        .bind(by.author)
        .bind(by.note)
        .bind(based_on)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(DraftRow::from_row(&row)?)
    }

    /// Removes the draft of `name` — only if its text is `body`, when given (publishing one
    /// editor's text must not drop a draft another editor changed since). True if one was removed.
    pub async fn discard_template_draft(&self, name: &str, body: Option<&str>) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM template_drafts WHERE name = $1 AND ($2 IS NULL OR body = $2)",
        )
        .bind(name)
        .bind(body)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
