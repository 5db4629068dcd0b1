//! A loopback contract server for OmniHuman 1.5 on Replicate, following Replicate's HTTP API
//! documentation: `POST /v1/models/bytedance/omni-human-1.5/predictions` (Bearer token) → 201
//! with the prediction; `GET /v1/predictions/{id}`; `GET /v1/predictions` (newest first, a page at
//! a time with `next`, without inputs); `POST /v1/predictions/{id}/cancel`. Unkind as the real
//! one: creations limited per minute, answered 429 with the wait only in the body's `detail`; no
//! idempotency (every accepted creation is billed); the network's faults after accepting (502, a
//! dropped connection); audio of 35 s or more accepted, billed, then failed; webhooks only for the
//! events in `webhook_events_filter`, signed as Standard Webhooks, retried when not answered 2xx
//! and sent once more with the same id; outputs deleted a set time after the prediction.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use super::Delivery;

pub const API_TOKEN: &str = "r8_test_token";
/// The account's webhook signing secret (`GET /v1/webhooks/default/secret`).
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const RUN_TIME: Duration = Duration::from_millis(400);
const PAGE_SIZE: usize = 3;

#[derive(Debug, Clone)]
pub enum Fault {
    /// None: created and answered (a place in a sequence of faults).
    Accept,
    /// Created (and billed), then a gateway answers this status.
    BillThenError(u16),
    /// Created (and billed), then the connection is dropped.
    AcceptThenDrop,
}

struct Inner {
    base: String,
    predictions: Vec<Value>,
    audio_seconds: HashMap<String, f64>,
    faults: VecDeque<Fault>,
    creations_per_minute: Option<usize>,
    created_at: VecDeque<Instant>,
    output_ttl: Duration,
    completed_at: HashMap<String, Instant>,
    deliveries: Vec<Delivery>,
    /// Every creation call's answer.
    creations: Vec<u16>,
}

#[derive(Clone)]
pub struct Replicate {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Replicate {
    pub async fn start() -> Replicate {
        let inner = Arc::new(Mutex::new(Inner {
            base: String::new(),
            predictions: Vec::new(),
            audio_seconds: HashMap::new(),
            faults: VecDeque::new(),
            creations_per_minute: None,
            created_at: VecDeque::new(),
            output_ttl: Duration::from_secs(3600),
            completed_at: HashMap::new(),
            deliveries: Vec::new(),
            creations: Vec::new(),
        }));
        let router = Router::new()
            .route(
                "/v1/models/bytedance/omni-human-1.5/predictions",
                post(create),
            )
            .route("/v1/predictions", get(list))
            .route("/v1/predictions/{id}", get(read))
            .route("/v1/predictions/{id}/cancel", post(cancel))
            .route("/files/{file}", get(file))
            .with_state(inner.clone());
        let base = super::serve(router).await;
        inner.lock().unwrap().base = base.clone();
        Replicate {
            url: format!("{base}/v1"),
            inner,
        }
    }

    pub fn push_fault(&self, fault: Fault) {
        self.inner.lock().unwrap().faults.push_back(fault);
    }

    pub fn limit_creations_per_minute(&self, n: usize) {
        self.inner.lock().unwrap().creations_per_minute = Some(n);
    }

    pub fn delete_outputs_after(&self, ttl: Duration) {
        self.inner.lock().unwrap().output_ttl = ttl;
    }

    /// Predictions created (each one billed).
    pub fn billed(&self) -> Vec<Value> {
        self.inner.lock().unwrap().predictions.clone()
    }

    pub fn creations(&self) -> Vec<u16> {
        self.inner.lock().unwrap().creations.clone()
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().unwrap().deliveries.clone()
    }
}

/// Standard Webhooks: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body` with the secret's
/// base64-decoded key (written here from the specification, apart from the host's verifier).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> Vec<(String, String)> {
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let tag = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), timestamp.to_string()),
        ("webhook-signature".into(), format!("v1,{tag}")),
    ]
}

fn problem(status: StatusCode, title: &str, detail: &str) -> Response {
    (
        status,
        Json(json!({"title": title, "detail": detail, "status": status.as_u16()})),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {API_TOKEN}"))
}

fn unauthenticated() -> Response {
    problem(
        StatusCode::UNAUTHORIZED,
        "Unauthenticated",
        "You did not pass a valid authentication token",
    )
}

/// The wait until the per-minute creation limit has room, if it has none now.
fn throttled(state: &mut Inner) -> Option<u64> {
    let limit = state.creations_per_minute?;
    let now = Instant::now();
    while state
        .created_at
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
    {
        state.created_at.pop_front();
    }
    if state.created_at.len() < limit {
        state.created_at.push_back(now);
        return None;
    }
    let oldest = *state.created_at.front().unwrap();
    Some(
        (Duration::from_secs(60) - now.duration_since(oldest))
            .as_secs()
            .max(1),
    )
}

async fn create(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let answer = |status: u16| inner.lock().unwrap().creations.push(status);
    if !authorized(&headers) {
        answer(401);
        return unauthenticated();
    }
    if let Some(wait) = throttled(&mut inner.lock().unwrap()) {
        answer(429);
        let detail = format!("Request was throttled. Expected available in {wait} seconds.");
        return problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Request was throttled",
            &detail,
        );
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            answer(400);
            return problem(StatusCode::BAD_REQUEST, "Invalid JSON", &e.to_string());
        }
    };
    let input = &request["input"];
    let text = |field: &str| input[field].as_str().unwrap_or("").to_string();
    for required in ["image", "audio"] {
        if text(required).is_empty() {
            answer(422);
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Input validation failed",
                &format!("- input: {required} is required"),
            );
        }
    }
    let filter = request["webhook_events_filter"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| {
            vec![
                json!("start"),
                json!("output"),
                json!("logs"),
                json!("completed"),
            ]
        });
    if filter
        .iter()
        .any(|e| !["start", "output", "logs", "completed"].contains(&e.as_str().unwrap_or("")))
    {
        answer(422);
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid webhook_events_filter",
            "events must be start, output, logs or completed",
        );
    }
    let audio = match super::fetch_input(&text("audio"))
        .await
        .and_then(|bytes| vidhook::media::probe::audio_info(bytes).map_err(|e| e.to_string()))
    {
        Ok(audio) => audio,
        Err(message) => {
            answer(422);
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Input validation failed",
                &message,
            );
        }
    };
    if let Err(message) = super::fetch_input(&text("image")).await {
        answer(422);
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Input validation failed",
            &message,
        );
    }
    // Created and billed from here on, whatever the caller is told.
    let id: String = uuid::Uuid::now_v7()
        .simple()
        .to_string()
        .chars()
        .rev()
        .take(26)
        .collect();
    let fault = {
        let mut state = inner.lock().unwrap();
        let base = state.base.clone();
        let prediction = json!({
            "id": id, "model": "bytedance/omni-human-1.5", "version": "v-test",
            "input": input, "logs": "", "output": null, "error": null, "status": "starting",
            "created_at": jiff::Timestamp::now().to_string(), "data_removed": false,
            "urls": {"get": format!("{base}/v1/predictions/{id}"),
                     "cancel": format!("{base}/v1/predictions/{id}/cancel")},
            "webhook": request["webhook"], "webhook_events_filter": filter,
        });
        state.predictions.push(prediction.clone());
        state.audio_seconds.insert(id.clone(), audio.seconds);
        state.faults.pop_front()
    };
    deliver(&inner, &id, "start").await;
    tokio::spawn(run(inner.clone(), id.clone()));
    match fault {
        Some(Fault::BillThenError(status)) => {
            answer(status);
            return (
                StatusCode::from_u16(status).unwrap(),
                "<html><body>502 Bad Gateway</body></html>",
            )
                .into_response();
        }
        Some(Fault::AcceptThenDrop) => {
            answer(201);
            panic!("contract server: dropping the connection after creating {id}")
        }
        Some(Fault::Accept) | None => {}
    }
    answer(201);
    let prediction = find(&inner, &id).unwrap();
    (StatusCode::CREATED, Json(prediction)).into_response()
}

async fn run(inner: Arc<Mutex<Inner>>, id: String) {
    update(&inner, &id, |p| p["status"] = json!("processing"));
    tokio::time::sleep(RUN_TIME).await;
    let (base, seconds) = {
        let state = inner.lock().unwrap();
        (state.base.clone(), state.audio_seconds[&id])
    };
    if seconds >= 35.0 {
        update(&inner, &id, |p| {
            p["status"] = json!("failed");
            p["error"] = json!("Audio duration must be less than 35 seconds");
            p["metrics"] = json!({"predict_time": 2.1});
        });
    } else {
        update(&inner, &id, |p| {
            p["status"] = json!("succeeded");
            p["output"] = json!(format!("{base}/files/{id}.mp4"));
            p["metrics"] = json!({"predict_time": seconds * 3.0});
        });
        inner
            .lock()
            .unwrap()
            .completed_at
            .insert(id.clone(), Instant::now());
    }
    deliver(&inner, &id, "completed").await;
}

fn find(inner: &Mutex<Inner>, id: &str) -> Option<Value> {
    let state = inner.lock().unwrap();
    state.predictions.iter().find(|p| p["id"] == id).cloned()
}

fn update(inner: &Mutex<Inner>, id: &str, change: impl FnOnce(&mut Value)) {
    let mut state = inner.lock().unwrap();
    if let Some(p) = state.predictions.iter_mut().find(|p| p["id"] == id) {
        change(p);
    }
}

/// Sends the prediction to its webhook if `event` is in its filter: retried (up to 4 times in
/// all) until answered 2xx, then once more with the same message id, as a retrying sender may.
async fn deliver(inner: &Mutex<Inner>, id: &str, event: &str) {
    let Some(prediction) = find(inner, id) else {
        return;
    };
    let Some(url) = prediction["webhook"].as_str().map(str::to_owned) else {
        return;
    };
    let wanted = prediction["webhook_events_filter"]
        .as_array()
        .is_some_and(|f| f.iter().any(|e| e == event));
    if !wanted {
        return;
    }
    let body = prediction.to_string();
    let message_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let mut accepted = false;
    for _ in 0..4 {
        let headers = sign(WEBHOOK_SECRET, &message_id, super::now_secs(), &body);
        let delivery = super::deliver_webhook(&url, &body, headers).await;
        let status = delivery.status;
        inner.lock().unwrap().deliveries.push(delivery);
        if accepted {
            return; // the duplicate has been sent
        }
        accepted = (200..300).contains(&status);
        if !accepted {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn read(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return unauthenticated();
    }
    match find(&inner, &id) {
        Some(p) => Json(p).into_response(),
        None => problem(StatusCode::NOT_FOUND, "Not found", "Not found."),
    }
}

/// Newest first, [`PAGE_SIZE`] a page, `cursor` the offset; without inputs, as a summary.
async fn list(
    State(inner): State<Arc<Mutex<Inner>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return unauthenticated();
    }
    let state = inner.lock().unwrap();
    let offset: usize = query
        .get("cursor")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let newest_first: Vec<&Value> = state.predictions.iter().rev().collect();
    let results: Vec<Value> = newest_first
        .iter()
        .skip(offset)
        .take(PAGE_SIZE)
        .map(|p| {
            let mut summary = (*p).clone();
            summary.as_object_mut().unwrap().remove("input");
            summary.as_object_mut().unwrap().remove("logs");
            summary
        })
        .collect();
    let next = (offset + PAGE_SIZE < newest_first.len()).then(|| {
        format!(
            "{}/v1/predictions?cursor={}",
            state.base,
            offset + PAGE_SIZE
        )
    });
    Json(json!({"previous": null, "next": next, "results": results})).into_response()
}

async fn cancel(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return unauthenticated();
    }
    update(&inner, &id, |p| {
        if p["status"] == "starting" || p["status"] == "processing" {
            p["status"] = json!("canceled");
        }
    });
    match find(&inner, &id) {
        Some(p) => Json(p).into_response(),
        None => problem(StatusCode::NOT_FOUND, "Not found", "Not found."),
    }
}

/// An output until it is deleted (then 404).
async fn file(State(inner): State<Arc<Mutex<Inner>>>, Path(file): Path<String>) -> Response {
    let id = file.trim_end_matches(".mp4");
    let alive = {
        let state = inner.lock().unwrap();
        state
            .completed_at
            .get(id)
            .is_some_and(|at| at.elapsed() < state.output_ttl)
    };
    if !alive {
        return problem(StatusCode::NOT_FOUND, "Not found", "Not found.");
    }
    (
        [("content-type", "video/mp4")],
        super::seedance::sample_mp4().await,
    )
        .into_response()
}
