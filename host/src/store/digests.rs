//! Scheduled digests' state per source: the last tick one was queued for, and how far the
//! source's events are covered. Both only move forward, so instances that run the same tick
//! (the queueing itself is deduplicated by the tick's delivery id) leave the same state.

use sqlx::Row;

use super::{Result, Store};
use crate::content::Content;

/// A digest as `vidhook digests show` lists it.
#[derive(Debug, Clone)]
pub struct DigestRow {
    /// The tick, as the schedule's time zone reads it.
    pub tick: String,
    pub items: usize,
    pub render_id: String,
    pub state: String,
    pub video_url: Option<String>,
    pub error: Option<String>,
}

impl Store {
    /// (last tick, events covered up to), if the source has had a tick.
    pub async fn digest_state(&self, source: &str) -> Result<Option<(i64, i64)>> {
        let row = sqlx::query("SELECT last_tick, covered_to FROM digests WHERE source = $1")
            .bind(source)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?)
    }

    /// Moves the source's tick and coverage forward (never back).
    pub async fn record_digest(&self, source: &str, tick: i64, covered_to: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO digests (source, last_tick, covered_to) VALUES ($1, $2, $3)
             ON CONFLICT (source) DO UPDATE SET
               last_tick = CASE WHEN excluded.last_tick > digests.last_tick
                                THEN excluded.last_tick ELSE digests.last_tick END,
               covered_to = CASE WHEN excluded.covered_to > digests.covered_to
                                 THEN excluded.covered_to ELSE digests.covered_to END",
        )
        .bind(source)
        .bind(tick)
        .bind(covered_to)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The source's accepted contents received after `after` (unix ms), oldest first, at most
    /// `limit`, each with when it was received; digests themselves are left out.
    pub async fn received_since(
        &self,
        source: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Content)>> {
        let rows = sqlx::query(
            "SELECT received_at, content_json FROM events
             WHERE source = $1 AND received_at > $2 ORDER BY received_at, id LIMIT $3",
        )
        .bind(source)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut received = Vec::with_capacity(rows.len());
        for row in &rows {
            let content = stored_content(&row.try_get::<String, _>(1)?)?;
            // A digest's own event is not an item (told by its kind of content, not its id: a
            // CMS entry may well be called `digest-…`).
            if content.cms != crate::content::DIGEST_CMS {
                received.push((row.try_get(0)?, content));
            }
        }
        Ok(received)
    }

    /// The source's digests, newest first, at most `limit`, each with its render.
    pub async fn digests_of(&self, source: &str, limit: i64) -> Result<Vec<DigestRow>> {
        let rows = sqlx::query(
            "SELECT e.content_json, r.id, r.state, r.video_url, r.error
             FROM events e JOIN renders r ON r.event_id = e.id
             WHERE e.source = $1 AND e.delivery_id LIKE 'digest:%'
             ORDER BY e.received_at DESC, r.id LIMIT $2",
        )
        .bind(source)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut digests = Vec::with_capacity(rows.len());
        for row in &rows {
            let content = stored_content(&row.try_get::<String, _>(0)?)?;
            // The kind of content tells a digest, not its delivery id alone.
            if content.cms != crate::content::DIGEST_CMS {
                continue;
            }
            digests.push(DigestRow {
                tick: content.revision.clone(),
                items: content.fields["items"].as_array().map_or(0, Vec::len),
                render_id: row.try_get(1)?,
                state: row.try_get(2)?,
                video_url: row.try_get(3)?,
                error: row.try_get(4)?,
            });
        }
        Ok(digests)
    }
}

/// An event's stored content.
fn stored_content(json: &str) -> Result<Content> {
    serde_json::from_str(json)
        .map_err(|e| super::StoreError::Corrupt(format!("event content: {e}")))
}
