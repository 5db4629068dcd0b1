//! Editor templates: append-only versions.

use sqlx::{FromRow, Row};

use super::{now_ms, Result, Store};

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct TemplateRow {
    pub name: String,
    pub version: i64,
    pub body: String,
    pub created_at: i64,
}

impl Store {
    /// The latest version of every template.
    pub async fn latest_templates(&self) -> Result<Vec<TemplateRow>> {
        let rows = sqlx::query(
            "SELECT t.name, t.version, t.body, t.created_at FROM templates t
             WHERE t.version = (SELECT MAX(version) FROM templates u WHERE u.name = t.name)
             ORDER BY t.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(TemplateRow::from_row(r)?)).collect()
    }

    /// Every version of `name`, newest first (none: no such template).
    pub async fn template_versions(&self, name: &str) -> Result<Vec<TemplateRow>> {
        let rows = sqlx::query(
            "SELECT name, version, body, created_at FROM templates WHERE name = $1
             ORDER BY version DESC",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(TemplateRow::from_row(r)?)).collect()
    }

    /// Version `version` of `name`, if it exists.
    pub async fn template_version(&self, name: &str, version: i64) -> Result<Option<TemplateRow>> {
        let row = sqlx::query(
            "SELECT name, version, body, created_at FROM templates WHERE name = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| TemplateRow::from_row(&r)).transpose()?)
    }

    /// Saves a new version of `name` and returns its number. One statement: on SQLite it takes
    /// the write lock at once (a read-then-write transaction would fail with "database is
    /// locked" instead of waiting while a worker writes).
    pub async fn save_template(&self, name: &str, body: &str) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO templates (name, version, body, created_at)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM templates WHERE name = $1
             RETURNING version",
        )
        .bind(name)
        .bind(body)
        .bind(now_ms())
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
}
