//! Editors' corrections of a render's captions: append-only versions.

use sqlx::{FromRow, Row};

use super::{now_ms, Authored, Result, Store};

/// One saved correction (its cues are what the render's caption files say from then on).
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct CaptionEditRow {
    pub version: i64,
    pub author: String,
    pub note: String,
    pub created_at: i64,
}

impl Store {
    /// Saves `cues_json` as the next version of `render_id`'s captions; returns its number.
    pub async fn save_caption_edit(
        &self,
        render_id: &str,
        cues_json: &str,
        by: Authored<'_>,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO caption_edits (render_id, version, cues_json, author, note, created_at)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5 FROM caption_edits
             WHERE render_id = $1
             RETURNING version",
        )
        .bind(render_id)
        .bind(cues_json)
        .bind(by.author)
        .bind(by.note)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get(0)?)
    }

    /// Every correction of `render_id`'s captions, newest first.
    pub async fn caption_edits(&self, render_id: &str) -> Result<Vec<CaptionEditRow>> {
        let rows = sqlx::query(
            "SELECT version, author, note, created_at FROM caption_edits
             WHERE render_id = $1 ORDER BY version DESC",
        )
        .bind(render_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(CaptionEditRow::from_row(r)?))
            .collect()
    }
}
