//! Installed plugin versions.

use sqlx::{FromRow, Row};

use super::{now_ms, Result, Store};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct PluginRow {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub manifest: String,
    pub installed_at: i64,
}

impl Store {
    /// Records a version; false if `name@version` exists already (nothing changes then).
    pub async fn insert_plugin(
        &self,
        name: &str,
        version: &str,
        digest: &str,
        manifest: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO plugins (name, version, digest, manifest, installed_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(version)
        .bind(digest)
        .bind(manifest)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a bundled version, replacing a previous build of the same version.
    pub async fn upsert_plugin(
        &self,
        name: &str,
        version: &str,
        digest: &str,
        manifest: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugins (name, version, digest, manifest, installed_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name, version) DO UPDATE SET digest = excluded.digest, manifest = excluded.manifest",
        )
        .bind(name)
        .bind(version)
        .bind(digest)
        .bind(manifest)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// `name@version`, or the most recently installed version of `name`.
    pub async fn plugin(&self, name: &str, version: Option<&str>) -> Result<Option<PluginRow>> {
        let row = match version {
            Some(version) => {
                sqlx::query("SELECT name, version, digest, manifest, installed_at FROM plugins WHERE name = $1 AND version = $2")
                    .bind(name)
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                // The highest version (semver order), so a binary upgrade that re-registers its
                // bundled plugin never shadows a newer version a team installed.
                let rows = sqlx::query("SELECT name, version, digest, manifest, installed_at FROM plugins WHERE name = $1")
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await?;
                let semver = |r: &sqlx::any::AnyRow| -> Vec<u64> {
                    let version: String = r.try_get("version").unwrap_or_default();
                    version.split('.').map(|p| p.parse().unwrap_or(0)).collect()
                };
                rows.into_iter().max_by_key(semver)
            }
        };
        Ok(row.map(|r| PluginRow::from_row(&r)).transpose()?)
    }

    pub async fn plugins(&self) -> Result<Vec<PluginRow>> {
        let rows = sqlx::query("SELECT name, version, digest, manifest, installed_at FROM plugins ORDER BY name, installed_at")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(PluginRow::from_row(r)?)).collect()
    }

    /// The most recent events (content JSON), newest first, for replays.
    pub async fn recent_contents(&self, limit: i64) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT content_json FROM events ORDER BY received_at DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
