//! Finding renders for people: `vidhook jobs`, the API's filtered, paged list, and the live
//! stream of what changed. Pages are keyed by (created_at, id), so a render created between two
//! pages neither repeats nor hides one.

use sqlx::{FromRow, Row};

use super::renders::RENDER_COLUMNS;
use super::{Backend, RenderRow, Result, Store};

/// A render with the source and entry it belongs to, as people know the entry.
#[derive(Debug, Clone)]
pub struct ListedRender {
    pub render: RenderRow,
    pub source: String,
    pub entry: String,
    /// The entry's title when it was published (the entry id if it had none).
    pub title: String,
    /// Where the entry is published, when the CMS said.
    pub entry_url: Option<String>,
}

/// Which renders a list shows; empty strings match everything.
#[derive(Debug, Default, Clone)]
pub struct RenderQuery<'a> {
    pub state: &'a str,
    pub source: &'a str,
    pub run: &'a str,
    /// At most this many.
    pub limit: i64,
    /// Only renders listed after this one (its `created_at` and id), newest first.
    pub after: Option<(i64, &'a str)>,
}

/// What a listed render reads of its event (`e`): the title and URL are taken out of the stored
/// content by the database, so a list never moves or parses whole article bodies (up to
/// megabytes each) on the async runtime's threads.
fn listed_event_columns(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "e.source AS source, e.entry_id AS entry_id,
             json_extract(e.content_json, '$.title') AS title,
             json_extract(e.content_json, '$.url') AS entry_url"
        }
        Backend::Postgres => {
            "e.source AS source, e.entry_id AS entry_id,
             CAST(e.content_json AS json) ->> 'title' AS title,
             CAST(e.content_json AS json) ->> 'url' AS entry_url"
        }
    }
}

fn columns() -> String {
    RENDER_COLUMNS
        .split(", ")
        .map(|c| format!("r.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn listed(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<ListedRender>> {
    rows.iter()
        .map(|r| {
            let entry: String = r.try_get("entry_id")?;
            let title: Option<String> = r.try_get("title")?;
            Ok(ListedRender {
                render: RenderRow::from_row(r)?,
                source: r.try_get("source")?,
                title: title
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| entry.clone()),
                entry,
                entry_url: r.try_get("entry_url")?,
            })
        })
        .collect()
}

impl Store {
    /// The newest renders first (of one run, or all), with the source and entry they belong to.
    pub async fn list_renders(&self, limit: i64, run: Option<&str>) -> Result<Vec<ListedRender>> {
        self.find_renders(&RenderQuery {
            run: run.unwrap_or(""),
            limit,
            ..RenderQuery::default()
        })
        .await
    }

    /// The renders `query` names, newest first.
    pub async fn find_renders(&self, query: &RenderQuery<'_>) -> Result<Vec<ListedRender>> {
        let (after_at, after_id) = query.after.unwrap_or((i64::MAX, ""));
        let sql = format!(
            "SELECT {}, {}
             FROM renders r JOIN events e ON e.id = r.event_id
             WHERE ($2 = '' OR r.state = $2) AND ($3 = '' OR e.source = $3)
               AND ($4 = '' OR r.run_id = $4)
               AND (r.created_at < $5 OR (r.created_at = $5 AND r.id < $6))
             ORDER BY r.created_at DESC, r.id DESC LIMIT $1",
            columns(),
            listed_event_columns(self.backend)
        );
        let rows = sqlx::query(&sql)
            .bind(query.limit)
            .bind(query.state)
            .bind(query.source)
            .bind(query.run)
            .bind(after_at)
            .bind(if query.after.is_some() {
                after_id
            } else {
                "\u{10FFFF}"
            })
            .fetch_all(&self.pool)
            .await?;
        listed(rows)
    }

    /// One render as lists show it.
    pub async fn listed_render(&self, id: &str) -> Result<Option<ListedRender>> {
        let sql = format!(
            "SELECT {}, {}
             FROM renders r JOIN events e ON e.id = r.event_id WHERE r.id = $1",
            columns(),
            listed_event_columns(self.backend)
        );
        let rows = sqlx::query(&sql).bind(id).fetch_all(&self.pool).await?;
        Ok(listed(rows)?.into_iter().next())
    }

    /// Renders changed at or after `since` (ms), oldest change first: what a live list must
    /// update. A change in the same millisecond as `since` is sent again rather than missed.
    pub async fn renders_changed_since(&self, since: i64, limit: i64) -> Result<Vec<ListedRender>> {
        let sql = format!(
            "SELECT {}, {}
             FROM renders r JOIN events e ON e.id = r.event_id
             WHERE r.updated_at >= $1 ORDER BY r.updated_at, r.id LIMIT $2",
            columns(),
            listed_event_columns(self.backend)
        );
        let rows = sqlx::query(&sql)
            .bind(since)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        listed(rows)
    }
}
