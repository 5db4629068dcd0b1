//! A loopback contract server for the OmniHuman v1.5 API as Seedance documents it
//! (`POST /omnihuman/generate`, `GET /jobs/{id}`, job webhooks), as unkind as the real thing
//! behind a gateway: 429 with Retry-After, 5xx before any work, and the faults that cost money —
//! the job is created and billed, then the caller gets a 502, a hang past its timeout, or a reset
//! connection. It does NOT deduplicate by `Idempotency-Key` (the documentation does not say the
//! API honours one): every generate call that gets past validation is a new, billed job. Status
//! reads can glitch (404 right after creation, 401, 503). Like the real service it fetches the
//! image and audio it is given and refuses inputs outside the documented limits, and it keeps its
//! own ledger of what it was paid for, which is what the tests assert against. Its video links
//! are real MP4s behind signed links that expire (403 after), as a CDN's do.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub const API_KEY: &str = "test-seedance-key";

/// A fault the next generate call answers with instead of accepting.
#[derive(Debug, Clone)]
pub enum Fault {
    RateLimited {
        retry_after_secs: u64,
    },
    /// 500 before any work (nothing created): a crash in front of the API.
    ServerError,
    /// 400, as the documented validation answer (nothing created).
    Invalid,
    /// The job is created (and paid for), then a gateway answers this status (502, 504…).
    BillThenError {
        status: u16,
    },
    /// The job is created (and paid for), but the answer comes only after this long.
    AcceptThenHang {
        secs: u64,
    },
    /// The job is created (and paid for), then the connection is dropped without an answer.
    AcceptThenDrop,
}

#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub idempotency_key: Option<String>,
    pub webhook_url: Option<String>,
    pub resolution: String,
    pub audio_seconds: f64,
    /// The `audio_url` it was given (and fetched).
    pub audio_url: String,
    pub completed: bool,
    pub polls: u32,
}

/// Faults drawn at random (from a seeded generator) for every call, for chaos runs.
pub struct RandomFaults {
    pub rng: rand::rngs::StdRng,
    /// Probability that a call (generate or status) answers 429 with Retry-After.
    pub rate_limited: f64,
    /// Probability that a call answers 500.
    pub server_error: f64,
    /// Probability that a generate call accepts (and bills) the job, then drops the connection.
    pub accept_then_drop: f64,
    /// Probability that a generate call creates (and bills) the job, then answers 502.
    pub bill_then_502: f64,
}

impl RandomFaults {
    fn draw(&mut self, generate: bool) -> Option<Fault> {
        use rand::Rng;
        let x: f64 = self.rng.gen();
        if x < self.rate_limited {
            Some(Fault::RateLimited {
                retry_after_secs: 1,
            })
        } else if x < self.rate_limited + self.server_error {
            Some(Fault::ServerError)
        } else if generate && x < self.rate_limited + self.server_error + self.accept_then_drop {
            Some(Fault::AcceptThenDrop)
        } else if generate
            && x < self.rate_limited
                + self.server_error
                + self.accept_then_drop
                + self.bill_then_502
        {
            Some(Fault::BillThenError { status: 502 })
        } else {
            None
        }
    }
}

#[derive(Default)]
struct Inner {
    /// Calls (generate and status) admitted in any 60 s, as an account's plan allows; past it
    /// a call answers 429 with the seconds until the window has room.
    per_minute: Option<usize>,
    /// When each call was admitted under `per_minute` (all calls when no limit is set).
    admitted: VecDeque<std::time::Instant>,
    /// Every admission, kept for the report.
    admitted_log: Vec<std::time::Instant>,
    /// Calls answered 429 by the per-minute limit.
    over_limit: usize,
    faults: VecDeque<Fault>,
    /// Statuses the next `GET /jobs/{id}` calls answer instead of the job (404, 401, 503…).
    status_faults: VecDeque<u16>,
    random: Option<RandomFaults>,
    jobs: HashMap<String, Job>,
    /// Every generate call: (Idempotency-Key, HTTP status answered).
    attempts: Vec<(Option<String>, u16)>,
    webhook_statuses: Vec<u16>,
    /// Jobs complete only when released (for crash tests).
    hold: bool,
    base_url: String,
    /// Sign webhooks (`x-seedance-signature: t=…,v1=…`) with this secret.
    signing_secret: Option<String>,
    /// The last webhook delivered: (url, body, signature header).
    last_webhook: Option<(String, String, Option<String>)>,
    /// How long a video link stays valid (a fresh one with every job read and webhook).
    link_ttl_secs: u64,
    /// Every video download: (job id, status).
    downloads: Vec<(String, u16)>,
    /// The next this many links are handed out already expired.
    expired_links: usize,
}

#[derive(Clone)]
pub struct Seedance {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl Seedance {
    /// Starts the server. With `hold`, jobs stay `processing` until [`Seedance::release`].
    pub async fn start(hold: bool) -> Seedance {
        let inner = Arc::new(Mutex::new(Inner {
            hold,
            link_ttl_secs: 3600,
            ..Inner::default()
        }));
        let router = Router::new()
            .route("/v1/omnihuman/generate", post(generate))
            .route("/v1/jobs/{id}", get(job))
            .route("/videos/{file}", get(video))
            .with_state(inner.clone());
        let base = super::serve(router).await;
        inner.lock().unwrap().base_url = base.clone();
        Seedance {
            url: format!("{base}/v1"),
            inner,
        }
    }

    /// From now on at most `n` calls (generate and status reads together) in any 60 s.
    pub fn limit_per_minute(&self, n: usize) {
        self.inner.lock().unwrap().per_minute = Some(n);
    }

    /// When each call was admitted, and how many the per-minute limit refused with 429.
    pub fn admissions(&self) -> (Vec<std::time::Instant>, usize) {
        let inner = self.inner.lock().unwrap();
        (inner.admitted_log.clone(), inner.over_limit)
    }

    /// Video links handed out from now on expire after `secs`.
    pub fn expire_links_after(&self, secs: u64) {
        self.inner.lock().unwrap().link_ttl_secs = secs;
    }

    /// The next `n` video links handed out have already expired when they arrive.
    pub fn expire_next_links(&self, n: usize) {
        self.inner.lock().unwrap().expired_links = n;
    }

    /// Every video download as (job id, status answered).
    pub fn downloads(&self) -> Vec<(String, u16)> {
        self.inner.lock().unwrap().downloads.clone()
    }

    pub fn push_fault(&self, fault: Fault) {
        self.inner.lock().unwrap().faults.push_back(fault);
    }

    /// The next status reads answer these statuses, in order, before the job is shown again.
    pub fn push_status_faults(&self, statuses: &[u16]) {
        self.inner
            .lock()
            .unwrap()
            .status_faults
            .extend(statuses.iter().copied());
    }

    /// Jobs created under one `Idempotency-Key` (more than one = paid twice).
    pub fn jobs_for_key(&self, key: &str) -> usize {
        self.jobs()
            .iter()
            .filter(|j| j.idempotency_key.as_deref() == Some(key))
            .count()
    }

    /// From now on, every call may fail at random as `faults` says (after any queued fault).
    pub fn random_faults(&self, faults: RandomFaults) {
        self.inner.lock().unwrap().random = Some(faults);
    }

    /// Jobs accepted (= paid generations).
    pub fn jobs(&self) -> Vec<Job> {
        self.inner.lock().unwrap().jobs.values().cloned().collect()
    }

    /// Every generate call as (Idempotency-Key, status).
    pub fn attempts(&self) -> Vec<(Option<String>, u16)> {
        self.inner.lock().unwrap().attempts.clone()
    }

    /// Signs webhooks from now on, as a provider with a signing secret would.
    pub fn sign_webhooks_with(&self, secret: &str) {
        self.inner.lock().unwrap().signing_secret = Some(secret.to_string());
    }

    pub fn last_webhook(&self) -> Option<(String, String, Option<String>)> {
        self.inner.lock().unwrap().last_webhook.clone()
    }

    pub fn webhook_statuses(&self) -> Vec<u16> {
        self.inner.lock().unwrap().webhook_statuses.clone()
    }

    /// Completes every held job (and calls its webhook).
    pub async fn release(&self) {
        let ids: Vec<String> = {
            let mut inner = self.inner.lock().unwrap();
            inner.hold = false;
            inner.jobs.keys().cloned().collect()
        };
        for id in ids {
            complete(self.inner.clone(), id).await;
        }
    }
}

/// A download link signed like a CDN's (query `expires`, `sig`), valid for the configured time
/// (or already expired, while `expired_links` lasts).
fn issue_link(state: &mut Inner, job_id: &str) -> String {
    let expires = if state.expired_links > 0 {
        state.expired_links -= 1;
        super::now_secs() - 1
    } else {
        super::now_secs() + state.link_ttl_secs as i64
    };
    let base = &state.base_url;
    format!(
        "{base}/videos/{job_id}.mp4?expires={expires}&sig={}",
        link_sig(job_id, expires)
    )
}

fn link_sig(job_id: &str, expires: i64) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!(
        "cdn-secret/{job_id}/{expires}"
    )))
}

/// A real MP4 (2 s, 320×240, H.264 + AAC), made once per test process by ffmpeg.
pub async fn sample_mp4() -> Vec<u8> {
    static MP4: tokio::sync::OnceCell<Vec<u8>> = tokio::sync::OnceCell::const_new();
    MP4.get_or_init(|| async {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sample.mp4");
        let status = tokio::process::Command::new("ffmpeg")
            .args(["-nostdin", "-y", "-loglevel", "error"])
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x240:rate=25:duration=2",
            ])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:duration=2"])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-c:a", "aac", "-shortest", "-movflags", "+faststart"])
            .arg(&out)
            .status()
            .await
            .unwrap();
        assert!(status.success(), "ffmpeg made the sample video");
        std::fs::read(out).unwrap()
    })
    .await
    .clone()
}

/// `GET /videos/{job}.mp4?expires&sig`: the video while the link is valid; 403 as a CDN
/// answers an expired or altered signed link; 404 for a job that does not exist.
async fn video(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(file): Path<String>,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let job_id = file.trim_end_matches(".mp4").to_string();
    let expires: i64 = query
        .get("expires")
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    {
        let mut state = inner.lock().unwrap();
        if !state.jobs.get(&job_id).is_some_and(|j| j.completed) {
            return reject(StatusCode::NOT_FOUND, "no such video");
        }
        let valid = query.get("sig") == Some(&link_sig(&job_id, expires));
        if !valid || expires < super::now_secs() {
            state.downloads.push((job_id, 403));
            return (
                StatusCode::FORBIDDEN,
                [("content-type", "application/xml")],
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
            )
                .into_response();
        }
        state.downloads.push((job_id, 200));
    }
    ([("content-type", "video/mp4")], sample_mp4().await).into_response()
}

fn reject(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

fn rate_limited(retry_after_secs: u64) -> Response {
    let mut response = reject(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
    response
        .headers_mut()
        .insert("retry-after", retry_after_secs.to_string().parse().unwrap());
    response
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {API_KEY}"))
}

async fn generate(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let record = |status: StatusCode| {
        inner
            .lock()
            .unwrap()
            .attempts
            .push((key.clone(), status.as_u16()))
    };
    if !authorized(&headers) {
        record(StatusCode::UNAUTHORIZED);
        return reject(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    if let Some(retry_after_secs) = admit(&inner) {
        record(StatusCode::TOO_MANY_REQUESTS);
        return rate_limited(retry_after_secs);
    }
    let fault = {
        let mut state = inner.lock().unwrap();
        match state.faults.pop_front() {
            Some(fault) => Some(fault),
            None => state.random.as_mut().and_then(|r| r.draw(true)),
        }
    };
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            record(StatusCode::TOO_MANY_REQUESTS);
            return rate_limited(retry_after_secs);
        }
        Some(Fault::ServerError) => {
            record(StatusCode::INTERNAL_SERVER_ERROR);
            return reject(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
        Some(Fault::Invalid) => {
            record(StatusCode::BAD_REQUEST);
            return reject(
                StatusCode::BAD_REQUEST,
                "prompt violates the content policy",
            );
        }
        Some(
            Fault::AcceptThenHang { .. } | Fault::AcceptThenDrop | Fault::BillThenError { .. },
        )
        | None => {}
    }
    let validated = validate(&body).await;
    let (resolution, audio_seconds, webhook_url) = match validated {
        Ok(v) => v,
        Err(message) => {
            record(StatusCode::BAD_REQUEST);
            return reject(StatusCode::BAD_REQUEST, &message);
        }
    };
    // Billed from here on, whatever the caller is told.
    record(match &fault {
        Some(Fault::BillThenError { status }) => StatusCode::from_u16(*status).unwrap(),
        _ => StatusCode::OK,
    });
    let id = format!("job_{}", uuid::Uuid::now_v7().simple());
    let hold = {
        let mut state = inner.lock().unwrap();
        state.jobs.insert(
            id.clone(),
            Job {
                id: id.clone(),
                idempotency_key: key,
                webhook_url,
                resolution,
                audio_seconds,
                audio_url: serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|b| b["audio_url"].as_str().map(str::to_string))
                    .unwrap_or_default(),
                completed: false,
                polls: 0,
            },
        );
        state.hold
    };
    if !hold {
        let (inner, id) = (inner.clone(), id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            complete(inner, id).await;
        });
    }
    match fault {
        Some(Fault::BillThenError { status }) => {
            let status = StatusCode::from_u16(status).unwrap();
            return (status, "<html><body><h1>Bad Gateway</h1></body></html>").into_response();
        }
        Some(Fault::AcceptThenHang { secs }) => tokio::time::sleep(Duration::from_secs(secs)).await,
        // Ends this connection's task: the client sees the connection close with no answer.
        Some(Fault::AcceptThenDrop) => {
            panic!("contract server: dropping the connection after accepting {id}")
        }
        _ => {}
    }
    Json(json!({"job_id": id, "status": "queued", "created_at": "2026-11-25T10:00:00Z", "estimated_credits": 960}))
        .into_response()
}

/// The documented request, checked as the provider would, inputs fetched and measured.
async fn validate(body: &[u8]) -> Result<(String, f64, Option<String>), String> {
    let request: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let text = |field: &str| {
        request
            .get(field)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    if text("model") != "omnihuman-v1.5" {
        return Err("model must be omnihuman-v1.5".into());
    }
    for required in ["image_url", "audio_url", "prompt"] {
        if text(required).trim().is_empty() {
            return Err(format!("{required} is required"));
        }
    }
    let resolution = request
        .get("resolution")
        .and_then(|v| v.as_str())
        .unwrap_or("720p")
        .to_string();
    let limit = match resolution.as_str() {
        "720p" => 60.0,
        "1080p" => 30.0,
        _ => return Err("resolution must be 720p or 1080p".into()),
    };
    if request.get("turbo_mode").is_some_and(|v| !v.is_boolean()) {
        return Err("turbo_mode must be a boolean".into());
    }
    let image = vidhook::media::probe::image_info(&super::fetch_input(&text("image_url")).await?)
        .map_err(|e| e.to_string())?;
    if image.width < 512 || image.height < 512 {
        return Err("image must be at least 512x512".into());
    }
    let audio = vidhook::media::probe::audio_info(super::fetch_input(&text("audio_url")).await?)
        .map_err(|e| e.to_string())?;
    if audio.seconds > limit {
        return Err(format!("audio longer than {limit} s at {resolution}"));
    }
    let webhook = request
        .get("webhook_url")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    Ok((resolution, audio.seconds, webhook))
}

/// Marks a job completed and delivers its webhook, as the documentation describes.
async fn complete(inner: Arc<Mutex<Inner>>, id: String) {
    let (webhook, payload) = {
        let mut state = inner.lock().unwrap();
        if state.hold {
            return;
        }
        let Some(wants_webhook) = state.jobs.get(&id).map(|j| j.webhook_url.is_some()) else {
            return;
        };
        // A link is handed out only with a webhook that carries it.
        let link = if wants_webhook {
            issue_link(&mut state, &id)
        } else {
            String::new()
        };
        let Some(job) = state.jobs.get_mut(&id) else {
            return;
        };
        if job.completed {
            return;
        }
        job.completed = true;
        let payload = json!({
            "event": "job.completed", "job_id": id, "status": "completed",
            "result": {"video_url": link, "resolution": job.resolution,
                       "duration_seconds": job.audio_seconds},
            "credits_used": 960, "completed_at": "2026-11-25T10:01:00Z",
        });
        (job.webhook_url.clone(), payload)
    };
    if let Some(url) = webhook {
        let body = payload.to_string();
        let secret = inner.lock().unwrap().signing_secret.clone();
        let signature = secret.map(|secret| sign(&secret, super::now_secs(), body.as_bytes()));
        let mut request = reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json");
        if let Some(signature) = &signature {
            request = request.header("x-seedance-signature", signature);
        }
        let status = match request.body(body.clone()).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        let mut state = inner.lock().unwrap();
        state.webhook_statuses.push(status);
        state.last_webhook = Some((url, body, signature));
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Applies the per-minute limit: `None` when the call is admitted, else the seconds to wait.
fn admit(inner: &Mutex<Inner>) -> Option<u64> {
    let mut state = inner.lock().unwrap();
    let now = std::time::Instant::now();
    let window = Duration::from_secs(60);
    while state
        .admitted
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        state.admitted.pop_front();
    }
    if let Some(limit) = state.per_minute {
        if state.admitted.len() >= limit {
            state.over_limit += 1;
            let oldest = *state.admitted.front().expect("the window is full");
            let wait = window.saturating_sub(now.duration_since(oldest));
            return Some(wait.as_secs().max(1));
        }
    }
    state.admitted.push_back(now);
    state.admitted_log.push(now);
    None
}

async fn job(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return reject(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    if let Some(retry_after_secs) = admit(&inner) {
        return rate_limited(retry_after_secs);
    }
    let mut state = inner.lock().unwrap();
    if let Some(status) = state.status_faults.pop_front() {
        return reject(StatusCode::from_u16(status).unwrap(), "status unavailable");
    }
    match state.random.as_mut().and_then(|r| r.draw(false)) {
        Some(Fault::RateLimited { retry_after_secs }) => return rate_limited(retry_after_secs),
        Some(_) => return reject(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        None => {}
    }
    let link = state
        .jobs
        .get(&id)
        .is_some_and(|j| j.completed)
        .then(|| issue_link(&mut state, &id));
    let Some(job) = state.jobs.get_mut(&id) else {
        return reject(StatusCode::NOT_FOUND, "job not found");
    };
    job.polls += 1;
    if job.completed {
        Json(json!({
            "job_id": id, "status": "completed",
            "result": {"video_url": link, "resolution": job.resolution,
                       "duration_seconds": job.audio_seconds},
            "credits_used": 960,
        }))
        .into_response()
    } else {
        let status = if job.polls == 1 {
            "queued"
        } else {
            "processing"
        };
        Json(json!({"job_id": id, "status": status})).into_response()
    }
}
