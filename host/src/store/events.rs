//! Accepting content: the event and its first render are committed in one transaction, before
//! the CMS gets its 2xx. That is what "no lost event" rests on.

use sqlx::Row;

use super::{new_id, now_ms, Result, Store, StoreError};
use crate::content::Content;

/// What happened to one piece of content offered to [`Store::ingest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// New: stored, with a render queued at its first step.
    Accepted { event_id: String, render_id: String },
    /// Seen before (same delivery, or same driving fields): nothing new was queued.
    Duplicate { event_id: String },
}

impl Ingested {
    pub fn event_id(&self) -> &str {
        match self {
            Ingested::Accepted { event_id, .. } | Ingested::Duplicate { event_id } => event_id,
        }
    }
}

impl Store {
    /// Stores each content of one delivery and queues a render for each new one, atomically.
    /// `first_state` is the render's first step; `plugins_json` the plugin versions it keeps.
    pub async fn ingest(
        &self,
        source: &str,
        delivery_id: Option<&str>,
        contents: &[Content],
        first_state: &str,
        plugins_json: &str,
    ) -> Result<Vec<Ingested>> {
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(contents.len());
        for content in contents {
            let fingerprint = content.fingerprint();
            let event_id = new_id();
            let now = now_ms();
            let json = serde_json::to_string(content)
                .map_err(|e| StoreError::Corrupt(format!("content not serialisable: {e}")))?;
            let inserted = sqlx::query(
                "INSERT INTO events (id, source, delivery_id, entry_id, locale, fingerprint, content_json, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(&event_id)
            .bind(source)
            .bind(delivery_id)
            .bind(&content.id)
            .bind(&content.locale)
            .bind(&fingerprint)
            .bind(&json)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                let render_id = new_id();
                sqlx::query(
                    "INSERT INTO renders (id, event_id, plan_key, state, run_after, plugins_json, created_at, updated_at)
                     VALUES ($1, $2, '', $3, $4, $5, $4, $4)",
                )
                .bind(&render_id)
                .bind(&event_id)
                .bind(first_state)
                .bind(now)
                .bind(plugins_json)
                .execute(&mut *tx)
                .await?;
                outcomes.push(Ingested::Accepted {
                    event_id,
                    render_id,
                });
            } else {
                let existing: String = sqlx::query(
                    "SELECT id FROM events WHERE source = $1 AND entry_id = $2 AND locale = $3
                       AND (fingerprint = $4 OR delivery_id = $5)
                     ORDER BY received_at LIMIT 1",
                )
                .bind(source)
                .bind(&content.id)
                .bind(&content.locale)
                .bind(&fingerprint)
                .bind(delivery_id)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
                outcomes.push(Ingested::Duplicate { event_id: existing });
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    /// The content an event carried.
    pub async fn event_content(&self, event_id: &str) -> Result<Content> {
        let json: String = sqlx::query("SELECT content_json FROM events WHERE id = $1")
            .bind(event_id)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("event {event_id}: {e}")))
    }
}
