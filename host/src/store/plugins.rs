//! Installed plugin versions.

use sqlx::{FromRow, Row};

use super::operator::{insert_audit, Audit};
use super::{now_ms, Result, Store};

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct PluginRow {
    pub name: String,
    pub version: String,
    pub digest: String,
    pub manifest: String,
    pub installed_at: i64,
}

impl Store {
    /// Records `name@version`. An existing row is left alone (returns false), unless `replace`
    /// (a bundled plugin rebuilt under the same version), which overwrites its digest and manifest.
    pub async fn put_plugin(
        &self,
        name: &str,
        version: &str,
        digest: &str,
        manifest: &str,
        replace: bool,
    ) -> Result<bool> {
        let on_conflict = if replace {
            "ON CONFLICT (name, version) DO UPDATE SET digest = excluded.digest, manifest = excluded.manifest"
        } else {
            "ON CONFLICT DO NOTHING"
        };
        let sql = format!(
            "INSERT INTO plugins (name, version, digest, manifest, installed_at) VALUES ($1, $2, $3, $4, $5) {on_conflict}"
        );
        let done = sqlx::query(&sql)
            .bind(name)
            .bind(version)
            .bind(digest)
            .bind(manifest)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
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
    /// The content of `source`'s most recent events, newest first.
    pub async fn recent_contents_of(&self, source: &str, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT content_json FROM events WHERE source = $1 ORDER BY received_at DESC LIMIT $2",
        )
        .bind(source)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Makes `digest` (a development build of plugin `name`) serve `source` in place of the
    /// installed versions, until [`Store::end_dev_build`].
    pub async fn put_dev_build(
        &self,
        source: &str,
        name: &str,
        digest: &str,
        manifest: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO plugin_dev_builds (source, name, digest, manifest, built_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (source, name) DO UPDATE SET digest = excluded.digest, manifest = excluded.manifest, built_at = excluded.built_at",
        )
        .bind(source)
        .bind(name)
        .bind(digest)
        .bind(manifest)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The development build serving `source` for plugin `name`: (digest, manifest).
    pub async fn dev_build(&self, source: &str, name: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query(
            "SELECT digest, manifest FROM plugin_dev_builds WHERE source = $1 AND name = $2",
        )
        .bind(source)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?)
    }

    /// `source` is served by the installed versions of plugin `name` again.
    pub async fn end_dev_build(&self, source: &str, name: &str) -> Result<()> {
        sqlx::query("DELETE FROM plugin_dev_builds WHERE source = $1 AND name = $2")
            .bind(source)
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn recent_contents(&self, limit: i64) -> Result<Vec<String>> {
        let rows =
            sqlx::query("SELECT content_json FROM events ORDER BY received_at DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    /// Turns plugin `plugin` of `source`'s chain on or off, with its audit entry.
    pub async fn switch_source_plugin(
        &self,
        source: &str,
        plugin: &str,
        enabled: bool,
        audit: &Audit<'_>,
    ) -> Result<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO source_plugins (source, plugin, enabled, changed_at, changed_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (source, plugin) DO UPDATE SET enabled = excluded.enabled,
                 changed_at = excluded.changed_at, changed_by = excluded.changed_by",
        )
        .bind(source)
        .bind(plugin)
        .bind(i64::from(enabled))
        .bind(now)
        .bind(audit.actor)
        .execute(&mut *tx)
        .await?;
        let detail = format!("{plugin} {}", if enabled { "on" } else { "off" });
        insert_audit(&mut tx, audit, source, &detail, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The plugins of `source`'s chain that an admin switched off.
    pub async fn disabled_plugins(&self, source: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT plugin FROM source_plugins WHERE source = $1 AND enabled = 0 ORDER BY plugin",
        )
        .bind(source)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
