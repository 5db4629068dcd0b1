//! A loopback contract server for OmniHuman v1.5 on fal.ai's queue, following fal's documentation:
//! `POST /fal-ai/bytedance/omnihuman/v1.5[?fal_webhook=URL]` with `Authorization: Key …` answers
//! `{request_id, gateway_request_id, status_url, response_url}`; status and results live under the
//! app id (`/fal-ai/bytedance/requests/{id}/status`, `/fal-ai/bytedance/requests/{id}`; the full
//! endpoint path there is 404); `PUT …/cancel` cancels a queued request. Unkind as the real one:
//! a concurrency limit (2 requests in progress; the rest wait `IN_QUEUE` with their position),
//! validation answered 422 with `detail` (resolution defaults to 1080p; audio under 30 s at 1080p,
//! under 60 s at 720p, measured from the fetched file), no idempotency key (every accepted
//! request is a new, billed one), the network's faults after accepting (502, a hang, a dropped
//! connection), webhooks signed with Ed25519 (`X-Fal-Webhook-*`, keys at
//! `/.well-known/jwks.json`, rotatable), retried until answered 2xx and delivered twice, and
//! outputs deleted a set time after they are made. Its ledger of accepted requests is what tests
//! assert on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use ring::signature::KeyPair;
use serde_json::json;

use super::Delivery;

pub const API_KEY: &str = "test-fal-key";
/// The account's concurrency (fal's new-account limit).
const CONCURRENCY: usize = 2;
/// How long a request runs once in progress.
const RUN_TIME: Duration = Duration::from_millis(400);

/// A fault the next submit answers with instead of a plain acceptance.
#[derive(Debug, Clone)]
pub enum Fault {
    /// None: accepted and answered (a place in a sequence of faults).
    Accept,
    /// The request is accepted (and billed), then a gateway answers this status.
    BillThenError(u16),
    /// Accepted (and billed); the answer comes only after this long.
    AcceptThenHang(u64),
    /// Accepted (and billed); the connection is dropped without an answer.
    AcceptThenDrop,
    /// 429 before anything is queued.
    RateLimited,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    Queued,
    InProgress,
    Completed,
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub id: String,
    pub webhook: Option<String>,
    pub resolution: String,
    pub audio_seconds: f64,
    pub stage: Stage,
    /// When its output is deleted (set on completion).
    pub output_gone_at: Option<std::time::Instant>,
}

struct Inner {
    base: String,
    key: ring::signature::Ed25519KeyPair,
    /// Public keys the JWKS serves (the current one last).
    published: Vec<[u8; 32]>,
    faults: Vec<Fault>,
    requests: Vec<Request>,
    /// The most requests seen in progress at once.
    peak_in_progress: usize,
    deliveries: Vec<Delivery>,
    jwks_reads: usize,
    output_ttl: Duration,
    /// Submits answered (status), in order.
    submits: Vec<u16>,
}

#[derive(Clone)]
pub struct Fal {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

fn new_key() -> ring::signature::Ed25519KeyPair {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
}

fn public(key: &ring::signature::Ed25519KeyPair) -> [u8; 32] {
    key.public_key().as_ref().try_into().unwrap()
}

impl Fal {
    pub async fn start() -> Fal {
        let key = new_key();
        let inner = Arc::new(Mutex::new(Inner {
            base: String::new(),
            published: vec![public(&key)],
            key,
            faults: Vec::new(),
            requests: Vec::new(),
            peak_in_progress: 0,
            deliveries: Vec::new(),
            jwks_reads: 0,
            output_ttl: Duration::from_secs(3600),
            submits: Vec::new(),
        }));
        let router = Router::new()
            .route("/fal-ai/bytedance/omnihuman/v1.5", post(submit))
            .route("/fal-ai/bytedance/requests/{id}/status", get(status))
            .route("/fal-ai/bytedance/requests/{id}", get(result))
            .route("/fal-ai/bytedance/requests/{id}/cancel", put(cancel))
            .route("/.well-known/jwks.json", get(jwks))
            .route("/files/{file}", get(file))
            .with_state(inner.clone());
        let base = super::serve(router).await;
        inner.lock().unwrap().base = base.clone();
        Fal { url: base, inner }
    }

    pub fn push_fault(&self, fault: Fault) {
        self.inner.lock().unwrap().faults.push(fault);
    }

    /// Outputs are deleted this long after they are made.
    pub fn delete_outputs_after(&self, ttl: Duration) {
        self.inner.lock().unwrap().output_ttl = ttl;
    }

    /// A new signing key; the JWKS serves it beside the old one from now on.
    pub fn rotate_key(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.key = new_key();
        let key = public(&inner.key);
        inner.published.push(key);
    }

    /// Accepted requests (each one billed).
    pub fn billed(&self) -> Vec<Request> {
        self.inner.lock().unwrap().requests.clone()
    }

    pub fn submits(&self) -> Vec<u16> {
        self.inner.lock().unwrap().submits.clone()
    }

    pub fn peak_in_progress(&self) -> usize {
        self.inner.lock().unwrap().peak_in_progress
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().unwrap().deliveries.clone()
    }

    pub fn jwks_reads(&self) -> usize {
        self.inner.lock().unwrap().jwks_reads
    }

    /// Signs `body` for `request_id` at `timestamp` with the current key, as fal does.
    pub fn sign(&self, request_id: &str, timestamp: i64, body: &str) -> Vec<(String, String)> {
        sign(&self.inner.lock().unwrap().key, request_id, timestamp, body)
    }
}

/// fal's documented message: `request_id \n user_id \n timestamp \n hex(sha256(body))`, signed
/// with Ed25519, sent hex-encoded beside the fields it covers.
pub fn sign(
    key: &ring::signature::Ed25519KeyPair,
    request_id: &str,
    timestamp: i64,
    body: &str,
) -> Vec<(String, String)> {
    use sha2::Digest;
    let user_id = "user_test";
    let message = format!(
        "{request_id}\n{user_id}\n{timestamp}\n{}",
        hex::encode(sha2::Sha256::digest(body.as_bytes()))
    );
    let signature = hex::encode(key.sign(message.as_bytes()).as_ref());
    vec![
        ("x-fal-webhook-request-id".into(), request_id.into()),
        ("x-fal-webhook-user-id".into(), user_id.into()),
        ("x-fal-webhook-timestamp".into(), timestamp.to_string()),
        ("x-fal-webhook-signature".into(), signature),
    ]
}

/// A key that is not fal's, for forged deliveries.
pub fn stranger_key() -> ring::signature::Ed25519KeyPair {
    new_key()
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"detail": message}))).into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Key {API_KEY}"))
}

/// The documented input, checked as fal's schema does; the audio is fetched and measured.
async fn validate(body: &[u8]) -> Result<(String, f64), String> {
    let input: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let text = |field: &str| input.get(field).and_then(|v| v.as_str()).unwrap_or("");
    for required in ["image_url", "audio_url"] {
        if text(required).is_empty() {
            return Err(format!("{required}: field required"));
        }
    }
    let resolution = input
        .get("resolution")
        .and_then(|v| v.as_str())
        .unwrap_or("1080p")
        .to_string();
    let limit = match resolution.as_str() {
        "1080p" => 30.0,
        "720p" => 60.0,
        _ => return Err("resolution: must be '720p' or '1080p'".into()),
    };
    super::fetch_input(text("image_url")).await?;
    let audio = vidhook::media::probe::audio_info(super::fetch_input(text("audio_url")).await?)
        .map_err(|e| e.to_string())?;
    if audio.seconds >= limit {
        return Err(format!(
            "audio_url: audio must be shorter than {limit} s at {resolution}"
        ));
    }
    Ok((resolution, audio.seconds))
}

async fn submit(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let answer = |status: StatusCode| inner.lock().unwrap().submits.push(status.as_u16());
    if !authorized(&headers) {
        answer(StatusCode::UNAUTHORIZED);
        return detail(StatusCode::UNAUTHORIZED, "invalid key");
    }
    let fault = {
        let mut state = inner.lock().unwrap();
        (!state.faults.is_empty()).then(|| state.faults.remove(0))
    };
    if let Some(Fault::RateLimited) = fault {
        answer(StatusCode::TOO_MANY_REQUESTS);
        return detail(StatusCode::TOO_MANY_REQUESTS, "rate limited");
    }
    let (resolution, audio_seconds) = match validate(&body).await {
        Ok(v) => v,
        Err(message) => {
            answer(StatusCode::UNPROCESSABLE_ENTITY);
            return detail(StatusCode::UNPROCESSABLE_ENTITY, &message);
        }
    };
    // Queued, and billed when it runs, whatever the caller is told from here on.
    let id = uuid::Uuid::now_v7().to_string();
    let base = {
        let mut state = inner.lock().unwrap();
        state.requests.push(Request {
            id: id.clone(),
            webhook: query.get("fal_webhook").cloned(),
            resolution,
            audio_seconds,
            stage: Stage::Queued,
            output_gone_at: None,
        });
        state.base.clone()
    };
    tokio::spawn(run_queue(inner.clone()));
    match fault {
        Some(Fault::BillThenError(status)) => {
            let status = StatusCode::from_u16(status).unwrap();
            answer(status);
            return (status, "<html><body>Bad Gateway</body></html>").into_response();
        }
        Some(Fault::AcceptThenHang(secs)) => tokio::time::sleep(Duration::from_secs(secs)).await,
        Some(Fault::AcceptThenDrop) => {
            answer(StatusCode::OK);
            panic!("contract server: dropping the connection after accepting {id}")
        }
        _ => {}
    }
    answer(StatusCode::OK);
    let app = format!("{base}/fal-ai/bytedance/requests/{id}");
    Json(json!({
        "request_id": id, "gateway_request_id": id,
        "status_url": format!("{app}/status"), "response_url": app,
        "cancel_url": format!("{app}/cancel"),
    }))
    .into_response()
}

/// Starts queued requests while fewer than [`CONCURRENCY`] are in progress; each completes after
/// [`RUN_TIME`] and its webhook is delivered.
fn run_queue(
    inner: Arc<Mutex<Inner>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(start_next(inner))
}

async fn start_next(inner: Arc<Mutex<Inner>>) {
    let started: Vec<String> = {
        let mut state = inner.lock().unwrap();
        let running = |s: &Inner| {
            s.requests
                .iter()
                .filter(|r| r.stage == Stage::InProgress)
                .count()
        };
        let mut started = Vec::new();
        while running(&state) < CONCURRENCY {
            let Some(next) = state.requests.iter_mut().find(|r| r.stage == Stage::Queued) else {
                break;
            };
            next.stage = Stage::InProgress;
            started.push(next.id.clone());
        }
        state.peak_in_progress = state.peak_in_progress.max(running(&state));
        started
    };
    for id in started {
        let inner = inner.clone();
        tokio::spawn(async move {
            tokio::time::sleep(RUN_TIME).await;
            complete(inner.clone(), &id).await;
            run_queue(inner).await;
        });
    }
}

fn output(base: &str, request: &Request) -> serde_json::Value {
    json!({
        "video": {"url": format!("{base}/files/{}.mp4", request.id), "content_type": "video/mp4",
                  "file_name": "output.mp4"},
        "duration": request.audio_seconds,
    })
}

/// Completes a request and delivers its webhook: retried (up to 5 times) until answered 2xx,
/// and delivered a second time after a successful one, as fal's retries can.
async fn complete(inner: Arc<Mutex<Inner>>, id: &str) {
    let (webhook, body) = {
        let mut state = inner.lock().unwrap();
        let ttl = state.output_ttl;
        let base = state.base.clone();
        let Some(request) = state.requests.iter_mut().find(|r| r.id == id) else {
            return;
        };
        request.stage = Stage::Completed;
        request.output_gone_at = Some(std::time::Instant::now() + ttl);
        let body = json!({
            "request_id": id, "gateway_request_id": id, "status": "OK",
            "payload": output(&base, request),
        })
        .to_string();
        (request.webhook.clone(), body)
    };
    let Some(url) = webhook else { return };
    let mut delivered = 0;
    for _ in 0..5 {
        let headers = {
            let state = inner.lock().unwrap();
            sign(&state.key, id, super::now_secs(), &body)
        };
        let delivery = super::deliver_webhook(&url, &body, headers).await;
        let status = delivery.status;
        inner.lock().unwrap().deliveries.push(delivery);
        if (200..300).contains(&status) {
            delivered += 1;
            if delivered == 2 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn find(inner: &Mutex<Inner>, id: &str) -> Option<Request> {
    let state = inner.lock().unwrap();
    state.requests.iter().find(|r| r.id == id).cloned()
}

async fn status(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return detail(StatusCode::UNAUTHORIZED, "invalid key");
    }
    let Some(request) = find(&inner, &id) else {
        return detail(StatusCode::NOT_FOUND, "request not found");
    };
    match request.stage {
        Stage::Queued => {
            let state = inner.lock().unwrap();
            let position = state
                .requests
                .iter()
                .filter(|r| r.stage == Stage::Queued)
                .position(|r| r.id == id)
                .unwrap_or(0);
            Json(json!({"status": "IN_QUEUE", "queue_position": position})).into_response()
        }
        Stage::InProgress => Json(json!({"status": "IN_PROGRESS", "logs": null})).into_response(),
        Stage::Completed | Stage::Cancelled => {
            Json(json!({"status": "COMPLETED", "logs": null})).into_response()
        }
    }
}

async fn result(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return detail(StatusCode::UNAUTHORIZED, "invalid key");
    }
    let Some(request) = find(&inner, &id) else {
        return detail(StatusCode::NOT_FOUND, "request not found");
    };
    match request.stage {
        Stage::Completed => {
            let base = inner.lock().unwrap().base.clone();
            Json(output(&base, &request)).into_response()
        }
        Stage::Cancelled => detail(StatusCode::BAD_REQUEST, "request was cancelled"),
        _ => detail(StatusCode::BAD_REQUEST, "request is still in progress"),
    }
}

async fn cancel(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return detail(StatusCode::UNAUTHORIZED, "invalid key");
    }
    let mut state = inner.lock().unwrap();
    let Some(request) = state.requests.iter_mut().find(|r| r.id == id) else {
        return detail(StatusCode::NOT_FOUND, "request not found");
    };
    if request.stage == Stage::Queued {
        request.stage = Stage::Cancelled;
        (
            StatusCode::ACCEPTED,
            Json(json!({"status": "CANCELLATION_REQUESTED"})),
        )
            .into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "ALREADY_COMPLETED"})),
        )
            .into_response()
    }
}

async fn jwks(State(inner): State<Arc<Mutex<Inner>>>) -> Response {
    let mut state = inner.lock().unwrap();
    state.jwks_reads += 1;
    let keys: Vec<_> = state
        .published
        .iter()
        .enumerate()
        .map(|(n, key)| {
            json!({"kty": "OKP", "crv": "Ed25519", "kid": format!("key-{n}"), "use": "sig",
                   "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)})
        })
        .collect();
    Json(json!({ "keys": keys })).into_response()
}

/// An output while it exists; 404 once deleted.
async fn file(State(inner): State<Arc<Mutex<Inner>>>, Path(file): Path<String>) -> Response {
    let id = file.trim_end_matches(".mp4");
    let alive = find(&inner, id)
        .and_then(|r| r.output_gone_at)
        .is_some_and(|gone| std::time::Instant::now() < gone);
    if !alive {
        return detail(StatusCode::NOT_FOUND, "file not found");
    }
    (
        [("content-type", "video/mp4")],
        super::seedance::sample_mp4().await,
    )
        .into_response()
}
