//! `GET /renders/stream`: server-sent events, one `render` event (a [`RenderSummary`]) each time
//! a render changes, so the workspace's list updates without reloading. Changes are read from
//! the database (every instance's workers write there), once a second; a change in the same
//! millisecond as the last one sent is not lost (the cursor is inclusive) nor sent twice. The
//! caller's credential is checked again every [`RECHECK`] polls: a revoked token's stream ends.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::{stream, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;

use super::renders::RenderSummary;
use crate::app::App;
use crate::auth::{AuthError, Caller, Role};

/// How often the database is asked what changed.
const POLL: Duration = Duration::from_secs(1);

/// At most this many changes per poll (the next poll continues from the last).
const BATCH: i64 = 200;

/// Polls between two checks of the caller's credential.
const RECHECK: u32 = 10;

/// Streams one token may hold open at once (a browser tab holds one). A stream is long-lived,
/// so without this one credential could hold connections that other callers need.
pub const MAX_STREAMS_PER_TOKEN: usize = 4;

/// Open streams per token name, process-wide.
static OPEN: std::sync::Mutex<std::collections::BTreeMap<String, usize>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// One open stream of a token; dropping it (the stream ended or its connection closed) frees
/// the token's slot.
struct StreamSlot(String);

impl StreamSlot {
    fn take(token: &str) -> Option<StreamSlot> {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(token.to_string()).or_default();
        if *count >= MAX_STREAMS_PER_TOKEN {
            return None;
        }
        *count += 1;
        Some(StreamSlot(token.to_string()))
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.0) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.0);
            }
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Send changes from this time on (ms since the epoch); default: from now.
    since: Option<i64>,
}

/// Where a stream is: the cursor, and what was sent at exactly that millisecond.
struct Cursor {
    app: Arc<App>,
    caller: Caller,
    /// The request's headers, to check its credential again.
    headers: HeaderMap,
    since: i64,
    sent_at_since: HashSet<String>,
    polls: u32,
    /// Held while the stream is open.
    _slot: StreamSlot,
}

/// Live render changes, as server-sent events named `render`.
#[utoipa::path(
    get, path = "/renders/stream", tag = "renders", params(StreamQuery),
    responses(
        (
            status = 200, content_type = "text/event-stream", body = RenderSummary,
            description = "One `render` event per change, data: the render's summary as JSON"
        ),
        (status = 429, body = super::Problem, content_type = "application/problem+json",
         description = "The token already holds its most streams open at once"),
    )
)]
pub async fn renders(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(slot) = StreamSlot::take(&caller.name) else {
        crate::telemetry::warn_rejected!(token = %caller.name, "render stream refused: too many open");
        return crate::ingress::too_many(
            &format!(
                "this token already has {MAX_STREAMS_PER_TOKEN} render streams open; close one"
            ),
            Duration::from_secs(5),
        );
    };
    let cursor = Cursor {
        _slot: slot,
        app,
        caller,
        headers,
        since: query.since.unwrap_or_else(crate::store::now_ms),
        sent_at_since: HashSet::new(),
        polls: 0,
    };
    let changes = stream::unfold(cursor, |mut cursor| async move {
        if cursor.polls > 0 {
            tokio::time::sleep(POLL).await;
        }
        cursor.polls += 1;
        if cursor.polls % RECHECK == 0 && !still_allowed(&cursor).await {
            return None;
        }
        let events = next_changes(&mut cursor).await;
        Some((stream::iter(events), cursor))
    })
    .flatten();
    Sse::new(changes)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Whether the credential that opened the stream still reaches a viewer (a database error keeps
/// the stream: the next check decides).
async fn still_allowed(cursor: &Cursor) -> bool {
    let admin_token = cursor.app.config.plugins.admin_token.as_deref();
    let checked = crate::auth::authorize(
        &cursor.app.store,
        admin_token,
        &Method::GET,
        &cursor.headers,
        Role::Viewer,
    )
    .await;
    !matches!(
        checked,
        Err(AuthError::Unauthenticated | AuthError::Forbidden { .. } | AuthError::CrossSite)
    )
}

async fn next_changes(cursor: &mut Cursor) -> Vec<Result<Event, Infallible>> {
    let store = &cursor.app.store;
    let changed = match store.renders_changed_since(cursor.since, BATCH).await {
        Ok(changed) => changed,
        Err(err) => {
            tracing::warn!(error = %err, "render stream: database unavailable; trying again");
            return Vec::new();
        }
    };
    // The cursor moves only once the changes are read in full, so a failure repeats the poll.
    let (mut since, mut sent_at_since) = (cursor.since, cursor.sent_at_since.clone());
    let mut fresh = Vec::with_capacity(changed.len());
    for listed in changed {
        let (id, at) = (listed.render.id.clone(), listed.render.updated_at);
        if at == since && sent_at_since.contains(&id) {
            continue;
        }
        if at > since {
            since = at;
            sent_at_since.clear();
        }
        sent_at_since.insert(id);
        fresh.push(listed);
    }
    match RenderSummary::all(&cursor.app, fresh, &cursor.caller).await {
        Ok(summaries) => {
            (cursor.since, cursor.sent_at_since) = (since, sent_at_since);
            summaries
                .iter()
                .filter_map(|summary| Event::default().event("render").json_data(summary).ok())
                .map(Ok)
                .collect()
        }
        Err(err) => {
            tracing::warn!(error = %err, "render stream: credits unavailable; trying again");
            Vec::new()
        }
    }
}
