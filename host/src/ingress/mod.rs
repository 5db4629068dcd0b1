//! The HTTP surface: CMS webhooks in, provider webhooks in, media out, a small JSON API, health.
//!
//! Every rejection answers a precise status (401 signature, 400 malformed, 404 unknown, 413 too
//! large, 503 database unavailable) with an RFC 9457 problem detail and a log line with the reason.
//! A 2xx to a CMS is sent only after the event is committed.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower::ServiceExt;

use crate::app::App;
use crate::cms::{Inbound, InboundError};
use crate::store::Ingested;

mod problem;
pub mod v1;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/hooks/{source}", post(receive_hook))
        .route("/provider-hooks/{provider}/{render}", post(provider_hook))
        .route("/media/{*key}", get(media))
        .merge(v1::routes(app.clone()))
        .merge(crate::web::routes())
        .route(
            "/metrics",
            get(metrics).route_layer(middleware::from_fn_with_state(app.clone(), metrics_gate)),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        // Bodies are read with our own limit (to log and answer 413 ourselves).
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

/// An RFC 9457 problem detail, as every route answers its errors.
pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    problem::Problem::new(status, message).into_response()
}

/// 503 + `Retry-After`: nothing was acknowledged, so the sender keeps the event and retries.
pub(super) fn unavailable(message: &str) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    response
}

/// A slot for authenticated webhook work (committing it): more than `max_inflight_webhooks` at
/// once are refused ([`overloaded`]) rather than queued in memory. Taken only after the delivery
/// is authenticated, so unauthenticated (or slow) requests cannot use the slots up.
fn webhook_slot(app: &App) -> Option<tokio::sync::SemaphorePermit<'_>> {
    app.webhook_slots.try_acquire().ok()
}

/// How long until `source` may deliver again, if it is over its rate (authenticated deliveries
/// only, so a forged flood cannot spend a CMS's allowance).
fn over_rate(app: &App, source: &str) -> Option<std::time::Duration> {
    over_limit(app.delivery_rate.as_ref()?, &source.to_string())
}

/// How long until `key` may go again, if `limiter` holds it back now (this call counts).
pub(super) fn over_limit<K: Clone + std::hash::Hash + Eq>(
    limiter: &governor::DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Option<std::time::Duration> {
    limiter.check_key(key).err().map(|not_until| {
        not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ))
    })
}

/// 429 with a problem saying `message` and `Retry-After` (whole seconds, at least 1).
pub(super) fn too_many(message: &str, wait: std::time::Duration) -> Response {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, message);
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    response.headers_mut().insert(
        header::RETRY_AFTER,
        header::HeaderValue::from_str(&seconds.to_string()).expect("digits"),
    );
    response
}

/// 503 + `Retry-After` for a webhook that found no free slot.
fn overloaded(provider: bool) -> Response {
    if provider {
        crate::metrics::provider_webhook("rejected", "overloaded");
    } else {
        crate::metrics::cms_webhook("", "rejected", "overloaded");
    }
    crate::telemetry::warn_rejected!(provider, "webhook refused: too many in flight");
    unavailable("too many webhooks in flight, retry later")
}

/// The rejection reason a [`read_body`] refusal stands for, as a metric label.
fn body_reason(response: &Response) -> &'static str {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "unreadable"
    }
}

/// A delivery to a configured source was refused (`reason` as the metrics label it): counted,
/// and remembered for the source's next catch-up sweep, which should then find the publishes
/// those deliveries carried.
fn refused(source: &str, reason: &'static str) {
    crate::metrics::cms_webhook(source, "rejected", reason);
    crate::catch_up::delivery_refused(source);
}

/// Reads the body up to `limit` bytes; `Err` is the response to send.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    source: &str,
) -> Result<axum::body::Bytes, Response> {
    let too_large = || {
        crate::telemetry::warn_rejected!(
            source,
            limit,
            "webhook rejected: body over the size limit"
        );
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let over = std::error::Error::source(&err)
            .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
        if over {
            too_large()
        } else if crate::listener::is_body_timeout(&err) {
            crate::telemetry::warn_rejected!(source, "request refused: body too slow");
            error(StatusCode::REQUEST_TIMEOUT, err.to_string())
        } else {
            crate::telemetry::warn_rejected!(source, error = %err, "webhook rejected: body unreadable");
            error(StatusCode::BAD_REQUEST, format!("body unreadable: {err}"))
        }
    })
}

async fn receive_hook(
    State(app): State<Arc<App>>,
    Path(source): Path<String>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(adapter) = app.sources.get(&source).cloned() else {
        crate::metrics::cms_webhook("", "rejected", "unknown_source");
        crate::telemetry::warn_rejected!(source, "webhook rejected: unknown source");
        return error(StatusCode::NOT_FOUND, format!("no source named {source:?}"));
    };
    let body = match read_body(&headers, body, app.config.max_body_bytes, &source).await {
        Ok(body) => body,
        Err(response) => {
            refused(&source, body_reason(&response));
            return response;
        }
    };
    let (delivery_id, contents) = match receive_off_runtime(adapter, uri, headers, body).await {
        Ok(Inbound::Publish {
            delivery_id,
            contents,
        }) => (delivery_id, contents),
        Ok(Inbound::Ignored { reason }) => {
            crate::metrics::cms_webhook(&source, "ignored", "");
            tracing::info!(source, reason, "webhook ignored");
            return (
                StatusCode::OK,
                Json(json!({"status": "ignored", "reason": reason})),
            )
                .into_response();
        }
        Err(err) => {
            let (status, reason) = match err {
                InboundError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
                InboundError::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
                InboundError::NotAWebhookSource(_) => {
                    (StatusCode::NOT_FOUND, "not_a_webhook_source")
                }
                InboundError::Unavailable(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "cms_unavailable")
                }
            };
            refused(&source, reason);
            crate::telemetry::warn_rejected!(source, status = status.as_u16(), reason = %err, "webhook rejected");
            if status == StatusCode::SERVICE_UNAVAILABLE {
                return unavailable(&err.to_string());
            }
            return error(status, err.to_string());
        }
    };
    if let Some(reason) = invalid_delivery(delivery_id.as_deref(), &contents) {
        refused(&source, "malformed");
        crate::telemetry::warn_rejected!(source, reason, "webhook rejected: invalid content");
        return error(StatusCode::BAD_REQUEST, reason);
    }
    if contents.is_empty() {
        crate::metrics::cms_webhook(&source, "ignored", "");
        tracing::info!(source, "webhook ignored: no content in the delivery");
        return (
            StatusCode::OK,
            Json(json!({"status": "ignored", "reason": "no content"})),
        )
            .into_response();
    }
    if let Some(wait) = over_rate(&app, &source) {
        refused(&source, "rate_limited");
        crate::telemetry::warn_rejected!(source, ?wait, "webhook refused: over the source's rate");
        return too_many("too many deliveries, retry later", wait);
    }
    let Some(_slot) = webhook_slot(&app) else {
        return overloaded(false);
    };
    accept(&app, &source, delivery_id.as_deref(), &contents).await
}

/// The adapter's verification and parsing (JSON, HTML to text, rich text) of one delivery, on
/// the blocking pool: a large or deeply nested body costs its own request a few milliseconds,
/// never a runtime thread that other requests (and `/healthz`) need. The adapter's own awaits
/// (a CMS API call) still run on the runtime's I/O driver.
async fn receive_off_runtime(
    adapter: Arc<dyn crate::cms::CmsAdapter>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Inbound, InboundError> {
    let runtime = tokio::runtime::Handle::current();
    let parse = tokio::task::spawn_blocking(move || {
        let delivery = crate::cms::Delivery {
            method: "POST",
            path: uri.path(),
            query: uri.query(),
            headers: &headers,
            body: &body,
        };
        runtime.block_on(adapter.receive(&delivery))
    });
    parse
        .await
        .unwrap_or_else(|e| Err(InboundError::Unavailable(format!("parsing failed: {e}"))))
}

/// The longest delivery id stored (a sender's `webhook-id` and the like).
const MAX_DELIVERY_ID_BYTES: usize = 256;

/// Why what an adapter parsed may not be stored, if it may not (checked for every CMS alike).
fn invalid_delivery(
    delivery_id: Option<&str>,
    contents: &[crate::content::Content],
) -> Option<String> {
    if delivery_id.is_some_and(|id| id.len() > MAX_DELIVERY_ID_BYTES || id.trim().is_empty()) {
        return Some(format!(
            "the delivery id must be 1-{MAX_DELIVERY_ID_BYTES} bytes"
        ));
    }
    contents.iter().find_map(|c| c.validate().err())
}

/// Commits the contents and answers 202 (something new) or 200 (all seen before).
pub async fn accept(
    app: &App,
    source: &str,
    delivery_id: Option<&str>,
    contents: &[crate::content::Content],
) -> Response {
    match crate::jobs::accept(
        &app.store,
        app.config.chain(source),
        source,
        delivery_id,
        None,
        contents,
    )
    .await
    {
        Ok(outcomes) => {
            let any_new = outcomes
                .iter()
                .any(|o| matches!(o, Ingested::Accepted { .. }));
            if any_new {
                app.wake.notify_waiters();
            }
            let events: Vec<_> = outcomes
                .iter()
                .map(|o| match o {
                    Ingested::Accepted { event_id, render_id } => {
                        crate::metrics::cms_webhook(source, "accepted", "");
                        tracing::info!(source, event = %event_id, render = %render_id, "event accepted");
                        json!({"event_id": event_id, "status": "accepted"})
                    }
                    Ingested::Duplicate { event_id } => {
                        crate::metrics::cms_webhook(source, "duplicate", "");
                        tracing::info!(source, event = %event_id, "duplicate event: nothing queued");
                        json!({"event_id": event_id, "status": "duplicate"})
                    }
                    Ingested::Stale { event_id } => {
                        crate::metrics::cms_webhook(source, "stale", "");
                        tracing::info!(source, newest = %event_id, "stale delivery: an older revision than the entry's newest; nothing changed");
                        json!({"event_id": event_id, "status": "stale"})
                    }
                })
                .collect();
            let all_stale = outcomes.iter().all(|o| matches!(o, Ingested::Stale { .. }));
            let (status, word) = if any_new {
                (StatusCode::ACCEPTED, "accepted")
            } else if all_stale && !outcomes.is_empty() {
                (StatusCode::OK, "stale")
            } else {
                (StatusCode::OK, "duplicate")
            };
            let first = outcomes.first().map(|o| o.event_id().to_string());
            (
                status,
                Json(json!({"status": word, "event_id": first, "events": events})),
            )
                .into_response()
        }
        Err(err) => {
            // Not committed, so not acknowledged: the sender keeps the event and retries.
            refused(source, "storage_unavailable");
            tracing::error!(source, error = %err, "cannot commit event; answering 503");
            unavailable("storage unavailable, retry later")
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// A provider says a job changed. Nothing in the body is believed except the job id: the render
/// is made due and its worker confirms the state with `GET /jobs/{id}`.
async fn provider_hook(
    State(app): State<Arc<App>>,
    Path((provider, render_id)): Path<(String, String)>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(host) = app.hosts.get(&provider).cloned() else {
        crate::metrics::provider_webhook("rejected", "unknown_provider");
        crate::telemetry::warn_rejected!(provider, render = %render_id, "provider webhook rejected: unknown provider");
        return error(
            StatusCode::NOT_FOUND,
            format!("no provider named {provider:?}"),
        );
    };
    if !query
        .token
        .as_deref()
        .is_some_and(|t| app.verify_provider_token(&render_id, t))
    {
        crate::metrics::provider_webhook("rejected", "bad_token");
        crate::telemetry::warn_rejected!(provider, render = %render_id, "provider webhook rejected: bad token");
        return error(StatusCode::UNAUTHORIZED, "invalid token");
    }
    let body = match read_body(&headers, body, 64 << 10, &provider).await {
        Ok(body) => body,
        Err(response) => {
            crate::metrics::provider_webhook("rejected", body_reason(&response));
            return response;
        }
    };
    if let Err(reason) = host.provider.verify_webhook(&headers, &body).await {
        crate::metrics::provider_webhook("rejected", "signature");
        crate::telemetry::warn_rejected!(provider, render = %render_id, reason, "provider webhook rejected: signature");
        return error(StatusCode::UNAUTHORIZED, reason);
    }
    let Some(_slot) = webhook_slot(&app) else {
        return overloaded(true);
    };
    let job_id = host.provider.announced_job(&body);
    // A render moves to another host only when the previous provably took nothing, so a job
    // announced by a host the render is not with is a contradiction for a person to see.
    if let Ok(Some(render)) = app.store.render(&render_id).await {
        if render
            .provider
            .as_deref()
            .is_some_and(|with| with != host.name)
        {
            crate::metrics::provider_webhook("rejected", "other_host");
            tracing::error!(render = %render_id, host = %host.name, with = render.provider.as_deref().unwrap_or(""), job = job_id.as_deref().unwrap_or(""), "a host the render is not with announced a job for it; not adopted");
            return error(
                StatusCode::CONFLICT,
                format!("render {render_id} is not with {}", host.name),
            );
        }
    }
    let recorded = match job_id.as_deref() {
        Some(job) => {
            let detail = format!("the provider's webhook announced job {job}");
            app.store.adopt_job(&render_id, job, &detail).await
        }
        None => app.store.nudge_awaiting(&render_id).await,
    };
    match recorded {
        Ok(Some(state)) => {
            crate::metrics::provider_webhook("received", "");
            tracing::info!(render = %render_id, job = job_id.as_deref().unwrap_or(""), state, "provider webhook received");
            app.wake.notify_waiters();
            (StatusCode::OK, Json(json!({"status": "received"}))).into_response()
        }
        Ok(None) => {
            crate::metrics::provider_webhook("rejected", "unknown_render");
            error(StatusCode::NOT_FOUND, "no such render")
        }
        Err(err) => {
            crate::metrics::provider_webhook("rejected", "storage_unavailable");
            tracing::error!(render = %render_id, error = %err, "provider webhook not recorded");
            unavailable("storage unavailable, retry later")
        }
    }
}

#[derive(Deserialize)]
struct MediaQuery {
    expires: Option<i64>,
    sig: Option<String>,
}

async fn media(
    State(app): State<Arc<App>>,
    Path(key): Path<String>,
    Query(query): Query<MediaQuery>,
    request: Request,
) -> Response {
    if !app
        .media
        .authorize(&key, query.expires, query.sig.as_deref())
    {
        crate::telemetry::warn_rejected!(
            key,
            "media request refused: missing, expired or invalid signature"
        );
        return error(
            StatusCode::FORBIDDEN,
            "missing, expired or invalid signature",
        );
    }
    // Only files are media: a folder (`/media/videos/`) or a missing key is 404.
    match app.media.serve(&key).await {
        Ok(crate::media::Serve::File(path)) => {
            match tower_http::services::ServeFile::new(path)
                .oneshot(request)
                .await
            {
                Ok(response) => response.into_response(),
                Err(err) => error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
            }
        }
        // A bucket serves the bytes (and Range) itself, by a fresh presigned URL.
        Ok(crate::media::Serve::Redirect(url)) => {
            (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
        }
        Ok(crate::media::Serve::Missing) | Err(crate::media::MediaError::InvalidKey(_)) => {
            error(StatusCode::NOT_FOUND, "no such media")
        }
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.store.ping().await {
        "ready".into_response()
    } else {
        unavailable("database unavailable")
    }
}

/// Prometheus text exposition, computed from the database at scrape time (so every instance
/// reports the same, whole-system figures): renders by state and error category, credits today.
/// `/metrics` is open unless `metrics_need_token` puts it behind a viewer token.
async fn metrics_gate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if app.config.metrics_need_token {
        v1::gate(&app, request, next, crate::auth::Role::Viewer).await
    } else {
        next.run(request).await
    }
}

/// Prometheus exposition: this process's counters and histograms, plus the queue's depth and
/// today's credits read from the database now (left out, with a log line, if it is down).
async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.store.render_counts().await {
        Ok(counts) => crate::metrics::queue_depth(&counts),
        Err(err) => tracing::warn!(error = %err, "metrics: queue depth unavailable"),
    }
    if let Ok(spent) = app.store.spent_today("").await {
        crate::metrics::credits_today(spent);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response()
}
