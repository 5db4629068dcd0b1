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
}

impl Ingested {
    pub fn event_id(&self) -> &str {
        match self {
            Ingested::Accepted { event_id, .. } | Ingested::Duplicate { event_id } => event_id,
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

async fn commit_batch(pool: &AnyPool, batch: &[Delivery]) -> Result<Vec<Vec<Ingested>>> {
    let mut tx = pool.begin().await?;
    let mut all = Vec::with_capacity(batch.len());
    for delivery in batch {
        all.push(ingest_one(&mut tx, delivery).await?);
    }
    tx.commit().await?;
    Ok(all)
}

async fn ingest_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    delivery: &Delivery,
) -> Result<Vec<Ingested>> {
    let source = delivery.source.as_str();
    let delivery_id = delivery.delivery_id.as_deref();
    let mut outcomes = Vec::with_capacity(delivery.contents.len());
    for content in &delivery.contents {
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
        .execute(&mut **tx)
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
            .bind(&delivery.first_state)
            .bind(now)
            .bind(&delivery.plugins_json)
            .execute(&mut **tx)
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
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
            outcomes.push(Ingested::Duplicate { event_id: existing });
        }
    }
    Ok(outcomes)
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
    ) -> Result<Vec<Ingested>> {
        let (reply, committed) = oneshot::channel();
        let delivery = Delivery {
            source: source.to_string(),
            delivery_id: delivery_id.map(str::to_owned),
            contents: contents.to_vec(),
            first_state: first_state.to_string(),
            plugins_json: plugins_json.to_string(),
            reply,
        };
        let gone = || StoreError::Unavailable("the event committer has stopped".into());
        self.committer.send(delivery).await.map_err(|_| gone())?;
        committed.await.map_err(|_| gone())?
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
