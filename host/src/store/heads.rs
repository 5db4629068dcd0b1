//! What each entry is now in its CMS. The newest accepted content's fingerprint is the entry's
//! head; the fingerprint whose video we last wrote into it tells the echo of our own write-back
//! apart from an editor's revert. A revert (A → B → A) is accepted as a new generation of A's
//! event: written back at $0 with A's existing video when one is `done`, rendered otherwise.

use sqlx::Row;

use super::events::Ingested;
use super::{new_id, Result, Store};
use crate::content::Content;

type Tx<'c> = sqlx::Transaction<'c, sqlx::Any>;

/// An entry's newest accepted content: its fingerprint and, where the CMS gives one, its
/// revision order ([`Content::revision_order`]).
pub(super) struct Head<'a> {
    pub source: &'a str,
    pub entry: &'a str,
    pub locale: &'a str,
    pub fingerprint: &'a str,
    pub revision: Option<i64>,
}

/// Makes these the heads of their entries; the last one of an entry wins (a stale one never gets
/// here), and a head's revision never moves back. One statement for the whole batch.
pub(super) async fn advance(tx: &mut Tx<'_>, heads: &[Head<'_>], now: i64) -> Result<()> {
    let mut last = std::collections::BTreeMap::new();
    for head in heads {
        last.insert((head.source, head.entry, head.locale), head);
    }
    if last.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO entry_heads (source, entry_id, locale, fingerprint, revision, updated_at)
         VALUES {}
         ON CONFLICT (source, entry_id, locale)
         DO UPDATE SET fingerprint = excluded.fingerprint, updated_at = excluded.updated_at,
             revision = CASE WHEN entry_heads.revision IS NULL OR excluded.revision IS NULL
                               OR excluded.revision > entry_heads.revision
                             THEN COALESCE(excluded.revision, entry_heads.revision)
                             ELSE entry_heads.revision END",
        super::events::placeholders(last.len(), 6)
    );
    let mut query = sqlx::query(&sql);
    for head in last.values() {
        query = query
            .bind(head.source)
            .bind(head.entry)
            .bind(head.locale)
            .bind(head.fingerprint)
            .bind(head.revision)
            .bind(now);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Which of `contents` (by position) are older revisions than the newest accepted for their
/// entry — counting the newer ones earlier in the same list — each with the entry's newest
/// event id. Content without an orderable revision is never stale.
pub(super) async fn stale_rows<'c>(
    pool: &sqlx::AnyPool,
    contents: impl Iterator<Item = (&'c str, &'c Content)>,
) -> Result<std::collections::HashMap<usize, String>> {
    type Key = (String, String, String);
    let ordered: Vec<(usize, Key, i64)> = contents
        .enumerate()
        .filter_map(|(at, (source, content))| {
            let key = (
                source.to_string(),
                content.id.clone(),
                content.locale.clone(),
            );
            Some((at, key, content.revision_order()?))
        })
        .collect();
    let mut stale = std::collections::HashMap::new();
    if ordered.is_empty() {
        return Ok(stale);
    }
    // The newest revision accepted so far per entry: the stored heads, read in one query for
    // the whole batch (this runs on the group commit's path), then the batch's own in order.
    let keys: std::collections::BTreeSet<&Key> = ordered.iter().map(|(_, key, _)| key).collect();
    let sql = format!(
        "SELECT source, entry_id, locale, revision FROM entry_heads
         WHERE revision IS NOT NULL AND (source, entry_id, locale) IN (VALUES {})",
        super::events::placeholders(keys.len(), 3)
    );
    let mut query = sqlx::query(&sql);
    for (source, entry, locale) in &keys {
        query = query.bind(source).bind(entry).bind(locale);
    }
    let mut newest: std::collections::HashMap<Key, i64> = std::collections::HashMap::new();
    for row in query.fetch_all(pool).await? {
        newest.insert(
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?),
            row.try_get(3)?,
        );
    }
    for (at, key, revision) in ordered {
        match newest.get(&key) {
            Some(&head) if revision < head => {
                let (source, entry, locale) = &key;
                let event: String = sqlx::query(
                    "SELECT id FROM events WHERE source = $1 AND entry_id = $2 AND locale = $3
                     ORDER BY received_at DESC, generation DESC LIMIT 1",
                )
                .bind(source)
                .bind(entry)
                .bind(locale)
                .fetch_one(pool)
                .await?
                .try_get(0)?;
                stale.insert(at, event);
            }
            Some(&head) => {
                newest.insert(key, revision.max(head));
            }
            None => {
                newest.insert(key, revision);
            }
        }
    }
    Ok(stale)
}

/// A content whose insert conflicted: a redelivery, a re-publish of the current content (or the
/// echo of our write-back), or a revert to an earlier content.
#[allow(clippy::too_many_arguments)]
pub(super) async fn resolve_duplicate(
    tx: &mut Tx<'_>,
    source: &str,
    delivery_id: Option<&str>,
    content: &Content,
    fingerprint: &str,
    json: &str,
    first_state: &str,
    plugins_json: &str,
    run_id: Option<&str>,
    now: i64,
) -> Result<Ingested> {
    if let Some(delivery_id) = delivery_id {
        let redelivered = sqlx::query(
            "SELECT id FROM events WHERE source = $1 AND delivery_id = $2 AND entry_id = $3 AND locale = $4",
        )
        .bind(source)
        .bind(delivery_id)
        .bind(&content.id)
        .bind(&content.locale)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = redelivered {
            return Ok(Ingested::Duplicate {
                event_id: row.try_get(0)?,
            });
        }
    }
    let newest = sqlx::query(
        "SELECT id, generation FROM events WHERE source = $1 AND entry_id = $2 AND locale = $3
           AND fingerprint = $4 ORDER BY generation DESC LIMIT 1",
    )
    .bind(source)
    .bind(&content.id)
    .bind(&content.locale)
    .bind(fingerprint)
    .fetch_one(&mut **tx)
    .await?;
    let (event_id, generation): (String, i64) = (newest.try_get(0)?, newest.try_get(1)?);
    let head = sqlx::query(
        "SELECT fingerprint, written_fingerprint FROM entry_heads
         WHERE source = $1 AND entry_id = $2 AND locale = $3",
    )
    .bind(source)
    .bind(&content.id)
    .bind(&content.locale)
    .fetch_optional(&mut **tx)
    .await?;
    let is_revert = match head {
        Some(head) => {
            let current: String = head.try_get(0)?;
            let written: Option<String> = head.try_get(1)?;
            current != fingerprint && written.as_deref() != Some(fingerprint)
        }
        None => false,
    };
    if !is_revert {
        return Ok(Ingested::Duplicate { event_id });
    }
    let new_event = new_id();
    sqlx::query(
        "INSERT INTO events (id, source, delivery_id, entry_id, locale, fingerprint, content_json,
                             received_at, generation)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&new_event)
    .bind(source)
    .bind(delivery_id)
    .bind(&content.id)
    .bind(&content.locale)
    .bind(fingerprint)
    .bind(json)
    .bind(now)
    .bind(generation + 1)
    .execute(&mut **tx)
    .await?;
    let head = Head {
        source,
        entry: &content.id,
        locale: &content.locale,
        fingerprint,
        revision: content.revision_order(),
    };
    advance(tx, &[head], now).await?;
    // The videos this content already has (its newest done renders), written back at $0.
    let reused = sqlx::query(
        "INSERT INTO renders (id, event_id, plan_key, state, run_after, plan_json, provenance_json,
                              plugins_json, video_url, created_at, updated_at)
         SELECT $1 || '-' || r.plan_key, $2, r.plan_key, 'write_back', $3, r.plan_json,
                r.provenance_json, r.plugins_json, r.video_url, $3, $3
         FROM renders r WHERE r.event_id = (
             SELECT e.id FROM events e JOIN renders d ON d.event_id = e.id
             WHERE e.source = $4 AND e.entry_id = $5 AND e.locale = $6 AND e.fingerprint = $7
               AND d.state = 'done' AND d.video_url IS NOT NULL
             ORDER BY e.generation DESC LIMIT 1)
           AND r.state = 'done' AND r.video_url IS NOT NULL",
    )
    .bind(new_id())
    .bind(&new_event)
    .bind(now)
    .bind(source)
    .bind(&content.id)
    .bind(&content.locale)
    .bind(fingerprint)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let render_id = if reused > 0 {
        sqlx::query("SELECT id FROM renders WHERE event_id = $1 ORDER BY id LIMIT 1")
            .bind(&new_event)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?
    } else {
        let render_id = new_id();
        sqlx::query(
            "INSERT INTO renders (id, event_id, plan_key, state, run_after, plugins_json, created_at, updated_at, run_id)
             VALUES ($1, $2, '', $3, $4, $5, $4, $4, $6)",
        )
        .bind(&render_id)
        .bind(&new_event)
        .bind(first_state)
        .bind(now)
        .bind(plugins_json)
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
        render_id
    };
    tracing::info!(
        source,
        entry = %content.id,
        reused_videos = reused,
        "content reverted to an earlier version: {}",
        if reused > 0 { "its existing video is written back at $0" } else { "rendering it" }
    );
    Ok(Ingested::Accepted {
        event_id: new_event,
        render_id,
    })
}

/// Whether a render's video should still be written into its entry.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteBackGate {
    /// The entry still shows this content: write (recorded first, so that the CMS's echo of our
    /// write is recognised as ours even if it arrives before we hear back).
    Current,
    /// A newer publish with other content came since: writing this video would be wrong.
    Superseded,
}

impl Store {
    pub async fn write_back_gate(&self, content: &Content) -> Result<WriteBackGate> {
        let fingerprint = content.fingerprint();
        let head = sqlx::query(
            "SELECT fingerprint FROM entry_heads WHERE source = $1 AND entry_id = $2 AND locale = $3",
        )
        .bind(&content.source)
        .bind(&content.id)
        .bind(&content.locale)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(head) = head {
            if head.try_get::<String, _>(0)? != fingerprint {
                return Ok(WriteBackGate::Superseded);
            }
        }
        sqlx::query(
            "UPDATE entry_heads SET written_fingerprint = $1
             WHERE source = $2 AND entry_id = $3 AND locale = $4 AND fingerprint = $1",
        )
        .bind(&fingerprint)
        .bind(&content.source)
        .bind(&content.id)
        .bind(&content.locale)
        .execute(&self.pool)
        .await?;
        Ok(WriteBackGate::Current)
    }
}

impl Store {
    /// (render id, video URL, shown by an entry?) of every video retention must keep: what
    /// entries show now (done renders whose content is what the entry was last written with),
    /// and every batch row's and digest's video made since `linked_since_ms` (a results file or
    /// a delivered digest links to it; no entry replaces it).
    pub async fn kept_videos(&self, linked_since_ms: i64) -> Result<Vec<(String, String, bool)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.id, r.video_url, CAST(1 AS BIGINT) AS shown FROM renders r
             JOIN events e ON e.id = r.event_id
             JOIN entry_heads h ON h.source = e.source AND h.entry_id = e.entry_id
                               AND h.locale = e.locale
             WHERE r.state = 'done' AND r.video_url IS NOT NULL
               AND h.written_fingerprint = e.fingerprint
             UNION
             SELECT r.id, r.video_url, CAST(0 AS BIGINT) AS shown FROM renders r
             JOIN events e ON e.id = r.event_id
             LEFT JOIN runs u ON u.id = r.run_id
             WHERE r.state = 'done' AND r.video_url IS NOT NULL
               AND (u.kind = 'batch' OR e.delivery_id LIKE 'digest:%')
               AND COALESCE(r.finished_at, r.updated_at) >= $1",
        )
        .bind(linked_since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<i64, _>(2)? == 1)))
            .collect::<Result<_>>()
    }
}
