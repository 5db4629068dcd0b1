//! Accepting content: the event and its first render are committed in one transaction, before
//! the CMS gets its 2xx. That is what "no lost event" rests on.

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::{new_id, now_ms, Result, Store, StoreError};
use crate::content::Content;

/// What happened to one piece of content offered to [`Store::ingest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// New: stored, with a render queued at its first step.
    Accepted { event_id: String, render_id: String },
    /// Seen before (same delivery, or same driving fields): nothing new was queued.
    Duplicate { event_id: String },
    /// An older revision than the newest accepted for its entry (a late retry, a replay): nothing
    /// stored, nothing queued. `event_id` is the entry's newest event.
    Stale { event_id: String },
}

impl Ingested {
    pub fn event_id(&self) -> &str {
        match self {
            Ingested::Accepted { event_id, .. }
            | Ingested::Duplicate { event_id }
            | Ingested::Stale { event_id } => event_id,
        }
    }
}

/// The most deliveries committed in one transaction.
const MAX_BATCH: usize = 128;

/// One delivery waiting for the committer.
pub(super) struct Delivery {
    source: String,
    delivery_id: Option<String>,
    contents: Vec<Content>,
    first_state: String,
    plugins_json: String,
    run_id: Option<String>,
    reply: oneshot::Sender<Result<Vec<Ingested>>>,
}

/// Group commit: deliveries that arrive while a transaction is committing wait in a bounded
/// queue and are committed together in the next one, each answered only once its transaction
/// has committed. Under load this turns one transaction per webhook into one per batch; alone, a
/// delivery is committed at once.
pub(super) fn spawn_committer(pool: AnyPool) -> mpsc::Sender<Delivery> {
    let (queue, mut waiting) = mpsc::channel::<Delivery>(4 * MAX_BATCH);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
            match commit_batch(&pool, &batch).await {
                Ok(outcomes) => {
                    for (delivery, outcome) in batch.drain(..).zip(outcomes) {
                        let _ = delivery.reply.send(Ok(outcome));
                    }
                }
                Err(err) => {
                    let message = err.to_string();
                    for delivery in batch.drain(..) {
                        let _ = delivery
                            .reply
                            .send(Err(StoreError::Unavailable(message.clone())));
                    }
                }
            }
        }
    });
    queue
}

/// Commits a batch in one transaction with one multi-row insert per table (a round trip each,
/// whatever the batch's size), then looks up the existing event for each duplicate.
async fn commit_batch(pool: &AnyPool, batch: &[Delivery]) -> Result<Vec<Vec<Ingested>>> {
    struct Pending<'a> {
        delivery: &'a Delivery,
        content: &'a Content,
        event_id: String,
        fingerprint: String,
        json: String,
    }
    let now = now_ms();
    let mut rows = Vec::new();
    for delivery in batch {
        for content in &delivery.contents {
            rows.push(Pending {
                delivery,
                content,
                event_id: new_id(),
                fingerprint: content.fingerprint(),
                json: serde_json::to_string(content)
                    .map_err(|e| StoreError::Corrupt(format!("content not serialisable: {e}")))?,
            });
        }
    }
    // Older revisions than their entries' newest accepted: answered, never stored. Read before
    // the transaction: SQLite refuses a transaction that reads and then writes while another
    // connection writes ("database is locked"), and this committer is the only writer of
    // revisions in its process (with several instances, the head's revision still never moves
    // back, see `heads::advance`).
    let stale = super::heads::stale_rows(
        pool,
        rows.iter()
            .map(|row| (row.delivery.source.as_str(), row.content)),
    )
    .await?;
    let mut tx = pool.begin().await?;
    let mut inserted = std::collections::HashSet::new();
    let fresh: Vec<&Pending> = rows
        .iter()
        .enumerate()
        .filter(|(n, _)| !stale.contains_key(n))
        .map(|(_, row)| row)
        .collect();
    if !fresh.is_empty() {
        let sql = format!(
            "INSERT INTO events (id, source, delivery_id, entry_id, locale, fingerprint, content_json, received_at)
             VALUES {} ON CONFLICT DO NOTHING RETURNING id",
            placeholders(fresh.len(), 8)
        );
        let mut insert = sqlx::query(&sql);
        for row in &fresh {
            insert = insert
                .bind(&row.event_id)
                .bind(&row.delivery.source)
                .bind(&row.delivery.delivery_id)
                .bind(&row.content.id)
                .bind(&row.content.locale)
                .bind(&row.fingerprint)
                .bind(&row.json)
                .bind(now);
        }
        for returned in insert.fetch_all(&mut *tx).await? {
            inserted.insert(returned.try_get::<String, _>(0)?);
        }
    }
    let new_rows: Vec<(&Pending, String)> = rows
        .iter()
        .filter(|row| inserted.contains(&row.event_id))
        .map(|row| (row, new_id()))
        .collect();
    if !new_rows.is_empty() {
        let sql = format!(
            "INSERT INTO renders (id, event_id, plan_key, state, run_after, plugins_json, created_at, updated_at, run_id)
             VALUES {}",
            placeholders(new_rows.len(), 9)
        );
        let mut insert = sqlx::query(&sql);
        for (row, render_id) in &new_rows {
            insert = insert
                .bind(render_id)
                .bind(&row.event_id)
                .bind("")
                .bind(&row.delivery.first_state)
                .bind(now)
                .bind(&row.delivery.plugins_json)
                .bind(now)
                .bind(now)
                .bind(&row.delivery.run_id);
        }
        insert.execute(&mut *tx).await?;
    }
    let heads: Vec<super::heads::Head> = new_rows
        .iter()
        .map(|(row, _)| super::heads::Head {
            source: row.delivery.source.as_str(),
            entry: row.content.id.as_str(),
            locale: row.content.locale.as_str(),
            fingerprint: row.fingerprint.as_str(),
            revision: row.content.revision_order(),
        })
        .collect();
    super::heads::advance(&mut tx, &heads, now).await?;
    let mut render_of: std::collections::HashMap<&str, String> = new_rows
        .into_iter()
        .map(|(row, render_id)| (row.event_id.as_str(), render_id))
        .collect();
    let mut outcomes: Vec<Vec<Ingested>> = batch.iter().map(|_| Vec::new()).collect();
    let mut rows = rows.iter().enumerate().peekable();
    for (n, delivery) in batch.iter().enumerate() {
        while let Some((at, row)) = rows.next_if(|(_, row)| std::ptr::eq(row.delivery, delivery)) {
            if let Some(newest) = stale.get(&at) {
                outcomes[n].push(Ingested::Stale {
                    event_id: newest.clone(),
                });
                continue;
            }
            let outcome = match render_of.remove(row.event_id.as_str()) {
                Some(render_id) => Ingested::Accepted {
                    event_id: row.event_id.clone(),
                    render_id,
                },
                None => {
                    super::heads::resolve_duplicate(
                        &mut tx,
                        &row.delivery.source,
                        row.delivery.delivery_id.as_deref(),
                        row.content,
                        &row.fingerprint,
                        &row.json,
                        &row.delivery.first_state,
                        &row.delivery.plugins_json,
                        row.delivery.run_id.as_deref(),
                        now,
                    )
                    .await?
                }
            };
            outcomes[n].push(outcome);
        }
    }
    tx.commit().await?;
    Ok(outcomes)
}

/// `($1, …, $k), ($k+1, …), …` for `rows` rows of `columns` values.
pub(super) fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Stores each content of one delivery and queues a render for each new one, atomically,
    /// returning once committed (see [`spawn_committer`]). `first_state` is the render's first
    /// step; `plugins_json` the plugin versions it keeps.
    pub async fn ingest(
        &self,
        source: &str,
        delivery_id: Option<&str>,
        contents: &[Content],
        first_state: &str,
        plugins_json: &str,
        run_id: Option<&str>,
    ) -> Result<Vec<Ingested>> {
        let (reply, committed) = oneshot::channel();
        let delivery = Delivery {
            source: source.to_string(),
            delivery_id: delivery_id.map(str::to_owned),
            contents: contents.to_vec(),
            first_state: first_state.to_string(),
            plugins_json: plugins_json.to_string(),
            run_id: run_id.map(str::to_owned),
            reply,
        };
        let gone = || StoreError::Unavailable("the event committer has stopped".into());
        self.committer.send(delivery).await.map_err(|_| gone())?;
        committed.await.map_err(|_| gone())?
    }

    /// The content an event carried.
    pub async fn event_content(&self, event_id: &str) -> Result<Content> {
        self.find_event_content(event_id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("no event {event_id}")))
    }

    /// The content an event carried, if there is such an event.
    pub async fn find_event_content(&self, event_id: &str) -> Result<Option<Content>> {
        let row = sqlx::query("SELECT content_json FROM events WHERE id = $1")
            .bind(event_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let json: String = row.try_get(0)?;
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("event {event_id}: {e}")))
    }

    /// A source's most recent events (id, content), newest first: what a preview can use.
    pub async fn recent_events(&self, source: &str, limit: i64) -> Result<Vec<(String, Content)>> {
        let rows = sqlx::query(
            "SELECT id, content_json FROM events WHERE source = $1
             ORDER BY received_at DESC LIMIT $2",
        )
        .bind(source)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get(0)?;
                let json: String = r.try_get(1)?;
                let content = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("event {id}: {e}")))?;
                Ok((id, content))
            })
            .collect()
    }

    /// Videos planned (renders not skipped) and events received for `source` since `since_ms`:
    /// the source's observed fan-out, which prices `vidhook estimate --events`.
    pub async fn videos_and_events(&self, source: &str, since_ms: i64) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(CASE WHEN r.state <> 'skipped' THEN 1 ELSE 0 END), 0) AS BIGINT),
                    COUNT(DISTINCT e.id)
             FROM events e JOIN renders r ON r.event_id = e.id
             WHERE e.source = $1 AND e.received_at >= $2",
        )
        .bind(source)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    /// The narrations of `source`'s renders created since `since_ms`: (seconds in all, count).
    pub async fn narration_seconds(&self, source: &str, since_ms: i64) -> Result<(f64, i64)> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(r.audio_seconds), 0) AS DOUBLE PRECISION), COUNT(r.id)
             FROM events e JOIN renders r ON r.event_id = e.id
             WHERE e.source = $1 AND r.created_at >= $2 AND r.audio_seconds IS NOT NULL",
        )
        .bind(source)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn content(n: usize) -> Content {
        Content {
            source: "blog".into(),
            cms: "standard-webhooks".into(),
            id: format!("post-{n}"),
            revision: "1".into(),
            kind: "article".into(),
            locale: "en-US".into(),
            title: format!("Note {n}"),
            body_html: String::new(),
            body_text: format!("Body {n}"),
            url: None,
            image: None,
            fields: serde_json::json!({}),
        }
    }

    /// An older revision than the entry's newest accepted is stale (nothing stored, the newest
    /// event named); a newer revision with older content is a revert; no revision, no order.
    #[tokio::test]
    async fn older_revisions_are_stale_and_newer_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, Duration::from_secs(10)).await.unwrap();
        let at = |revision: &str, body: &str| Content {
            revision: revision.into(),
            body_text: body.into(),
            ..content(1)
        };
        let ingest = |content: Content, delivery: &'static str| {
            let store = store.clone();
            async move {
                store
                    .ingest("blog", Some(delivery), &[content], "plan", "[]", None)
                    .await
                    .unwrap()
                    .remove(0)
            }
        };
        let Ingested::Accepted { event_id: a, .. } = ingest(at("1", "A"), "d1").await else {
            panic!()
        };
        let Ingested::Accepted { event_id: b, .. } = ingest(at("2", "B"), "d2").await else {
            panic!()
        };
        // The first delivery again, late (another delivery id): stale, B's event named.
        assert_eq!(
            ingest(at("1", "A"), "d1-retry").await,
            Ingested::Stale {
                event_id: b.clone()
            }
        );
        // Within one batch too: the newer first, then the older.
        let both = store
            .ingest(
                "blog",
                Some("d3"),
                &[at("4", "D"), at("3", "C")],
                "plan",
                "[]",
                None,
            )
            .await
            .unwrap();
        assert!(matches!(both[0], Ingested::Accepted { .. }));
        assert!(matches!(both[1], Ingested::Stale { .. }), "{both:?}");
        // A newer revision with A's content: a revert, accepted (A's event again).
        let reverted = ingest(at("5", "A"), "d5").await;
        assert!(
            matches!(reverted, Ingested::Accepted { .. }),
            "{reverted:?}"
        );
        assert_ne!(reverted.event_id(), a);
        // Without a revision there is no order: never stale.
        assert!(!matches!(
            ingest(at("", "E"), "d6").await,
            Ingested::Stale { .. }
        ));
    }

    /// Concurrent deliveries land in shared batches; a delivery sent twice at once is still
    /// accepted once, and its twin points at the same event.
    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_deliveries_and_their_redeliveries_are_each_accepted_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, Duration::from_secs(10)).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..400 {
            let store = store.clone();
            let entry = n % 200;
            tasks.spawn(async move {
                let delivery = format!("msg-{entry}");
                let outcome = store
                    .ingest(
                        "blog",
                        Some(&delivery),
                        &[content(entry)],
                        "plan",
                        "[]",
                        None,
                    )
                    .await
                    .unwrap();
                (entry, outcome.into_iter().next().unwrap())
            });
        }
        let mut accepted = std::collections::HashMap::new();
        let mut duplicates = Vec::new();
        while let Some(done) = tasks.join_next().await {
            match done.unwrap() {
                (entry, Ingested::Accepted { event_id, .. }) => {
                    assert!(accepted.insert(entry, event_id).is_none(), "{entry} twice");
                }
                (entry, Ingested::Duplicate { event_id }) => duplicates.push((entry, event_id)),
                (entry, stale @ Ingested::Stale { .. }) => panic!("{entry}: {stale:?}"),
            }
        }
        assert_eq!(accepted.len(), 200);
        assert_eq!(duplicates.len(), 200);
        for (entry, event_id) in duplicates {
            assert_eq!(accepted[&entry], event_id);
        }
        let renders = store.render_counts().await.unwrap();
        assert_eq!(renders, vec![("plan".to_string(), String::new(), 200)]);
    }
}
