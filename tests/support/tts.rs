//! Loopback contract servers for the hosted speech engines, as their documentation describes
//! them and as unkind as a real network: OpenAI's `POST /v1/audio/speech` (bearer key, 4,096
//! characters at most, `response_format`) and ElevenLabs' `POST /v1/text-to-speech/{voice_id}`
//! (`xi-api-key`, 10,000 characters, a plan's concurrency limit answered with 429
//! `too_many_concurrent_requests`). Both speak for real (espeak-ng, and for ElevenLabs an MP3
//! made from it by ffmpeg, as it answers MP3), answer 401 for a wrong key, 422/400 for invalid
//! requests, and take scripted faults: 429 with Retry-After, 500/503, a body cut short. Every
//! request is counted (characters are what these APIs bill), with the most concurrent seen.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The harness passes it to every vidhook it starts as `TEST_OPENAI_KEY`.
pub const OPENAI_KEY: &str = "sk-test-123";
pub const ELEVENLABS_KEY: &str = "test-elevenlabs-key";
/// The voice ids the ElevenLabs stand-in knows (any other is 404 `voice_not_found`).
pub const ELEVEN_VOICES: [&str; 2] = ["21m00Tcm4TlvDq8ikWAM", "pNInz6obpgDQGcFmaJgB"];

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answer this request normally (to place the next fault further on).
    Pass,
    /// 429 with `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// A 5xx from the service or its gateway.
    ServerError(u16),
    /// 200, then half of the audio and the connection ends.
    Truncated,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub text: String,
    pub voice: String,
    pub status: u16,
    /// ElevenLabs: the neighbouring chunks' text the request carried.
    pub previous_text: Option<String>,
    pub next_text: Option<String>,
}

#[derive(Default)]
struct Inner {
    faults: VecDeque<Fault>,
    calls: Vec<Call>,
    in_flight: usize,
    max_in_flight: usize,
    /// ElevenLabs: requests allowed at once, as a plan's concurrency limit.
    concurrency: Option<usize>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    OpenAi,
    ElevenLabs,
}

#[derive(Clone)]
pub struct TtsServer {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Clone)]
struct Shared {
    kind: Kind,
    inner: Arc<Mutex<Inner>>,
}

impl TtsServer {
    pub async fn openai() -> TtsServer {
        Self::start(Kind::OpenAi).await
    }

    pub async fn elevenlabs() -> TtsServer {
        Self::start(Kind::ElevenLabs).await
    }

    async fn start(kind: Kind) -> TtsServer {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let shared = Shared {
            kind,
            inner: inner.clone(),
        };
        let router = Router::new()
            .route("/v1/audio/speech", post(openai_speech))
            .route("/v1/text-to-speech/{voice}", post(eleven_speech))
            .with_state(shared);
        let url = super::serve(router).await;
        TtsServer { url, inner }
    }

    pub fn push_fault(&self, fault: Fault) {
        self.inner.lock().unwrap().faults.push_back(fault);
    }

    /// At most `n` requests at once; more answer 429 as ElevenLabs does.
    pub fn limit_concurrency(&self, n: usize) {
        self.inner.lock().unwrap().concurrency = Some(n);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// Characters in requests answered 200 (what the APIs bill).
    pub fn billed_chars(&self) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.status == 200)
            .map(|c| c.text.chars().count())
            .sum()
    }

    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }
}

fn error(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

fn openai_error(status: StatusCode, message: &str, code: &str) -> Response {
    error(
        status,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}}),
    )
}

fn eleven_error(status: StatusCode, detail_status: &str, message: &str) -> Response {
    error(
        status,
        json!({"detail": {"status": detail_status, "message": message}}),
    )
}

async fn openai_speech(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if shared.kind != Kind::OpenAi {
        return StatusCode::NOT_FOUND.into_response();
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
    if bearer != Some(&format!("Bearer {OPENAI_KEY}")) {
        record_refusal(&shared, &body["input"], "", 401);
        return openai_error(
            StatusCode::UNAUTHORIZED,
            "Incorrect API key provided",
            "invalid_api_key",
        );
    }
    let input = body["input"].as_str().unwrap_or_default().to_string();
    let voice = body["voice"].as_str().unwrap_or_default().to_string();
    if body["model"].as_str().is_none() || input.is_empty() || voice.is_empty() {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "model, input and voice are required",
            "invalid_value",
        );
    }
    if input.chars().count() > 4096 {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "string too long. Expected a string with maximum length 4096",
            "string_above_max_length",
        );
    }
    let format = body["response_format"]
        .as_str()
        .unwrap_or("mp3")
        .to_string();
    let call = Call {
        text: input,
        voice,
        status: 200,
        previous_text: None,
        next_text: None,
    };
    speak(&shared, call, &format, "en-us").await
}

async fn eleven_speech(
    State(shared): State<Shared>,
    Path(voice): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    if shared.kind != Kind::ElevenLabs {
        return StatusCode::NOT_FOUND.into_response();
    }
    let key = headers.get("xi-api-key").and_then(|v| v.to_str().ok());
    if key != Some(ELEVENLABS_KEY) {
        let text = body.as_ref().map_or(Value::Null, |b| b["text"].clone());
        record_refusal(&shared, &text, &voice, 401);
        return eleven_error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "Invalid API key",
        );
    }
    let Some(Json(body)) = body else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"loc": ["body"], "msg": "field required", "type": "value_error.missing"}]}),
        );
    };
    let Some(text) = body["text"].as_str().filter(|t| !t.is_empty()) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"detail": [{"loc": ["body", "text"], "msg": "field required", "type": "value_error.missing"}]}),
        );
    };
    if text.chars().count() > 10_000 {
        return eleven_error(
            StatusCode::BAD_REQUEST,
            "max_character_limit_exceeded",
            "Text is too long",
        );
    }
    if !ELEVEN_VOICES.contains(&voice.as_str()) {
        return eleven_error(
            StatusCode::NOT_FOUND,
            "voice_not_found",
            "A voice with the voice_id was not found.",
        );
    }
    let format = query
        .get("output_format")
        .map(String::as_str)
        .unwrap_or("mp3_44100_128");
    let format = if format.starts_with("mp3") {
        "mp3"
    } else {
        "pcm"
    };
    // Each stand-in voice is an espeak-ng voice, so two voices differ audibly.
    let engine_voice = if voice == ELEVEN_VOICES[0] {
        "en-us+f3"
    } else {
        "en-us+m3"
    };
    let call = Call {
        text: text.to_string(),
        voice,
        status: 200,
        previous_text: body["previous_text"].as_str().map(str::to_string),
        next_text: body["next_text"].as_str().map(str::to_string),
    };
    speak(&shared, call, format, engine_voice).await
}

/// Counts a request refused before any audio was made.
fn record_refusal(shared: &Shared, text: &Value, voice: &str, status: u16) {
    shared.inner.lock().unwrap().calls.push(Call {
        text: text.as_str().unwrap_or_default().to_string(),
        voice: voice.to_string(),
        status,
        previous_text: None,
        next_text: None,
    });
}

/// Counts the call, applies a fault or the concurrency limit, and answers real audio.
async fn speak(shared: &Shared, mut call: Call, format: &str, engine_voice: &str) -> Response {
    let fault = {
        let mut inner = shared.inner.lock().unwrap();
        let busy = inner.concurrency.is_some_and(|n| inner.in_flight >= n);
        if busy {
            call.status = 429;
            inner.calls.push(call.clone());
            drop(inner);
            return eleven_error(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_concurrent_requests",
                "Too many concurrent requests for your plan",
            );
        }
        let fault = inner.faults.pop_front();
        // Admitted: counted in flight in the same critical section as the check, so two
        // requests cannot both pass a limit of one.
        if !matches!(
            fault,
            Some(Fault::RateLimited { .. } | Fault::ServerError(_))
        ) {
            inner.in_flight += 1;
            inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
        }
        fault
    };
    match fault {
        Some(Fault::RateLimited { retry_after_secs }) => {
            call.status = 429;
            shared.inner.lock().unwrap().calls.push(call);
            let mut response = if shared.kind == Kind::OpenAi {
                openai_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Rate limit reached",
                    "rate_limit_exceeded",
                )
            } else {
                eleven_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "system_busy",
                    "The system is busy",
                )
            };
            response
                .headers_mut()
                .insert("retry-after", retry_after_secs.to_string().parse().unwrap());
            return response;
        }
        Some(Fault::ServerError(status)) => {
            call.status = status;
            shared.inner.lock().unwrap().calls.push(call);
            return (StatusCode::from_u16(status).unwrap(), "upstream error").into_response();
        }
        _ => {}
    }
    let audio = synthesise(&call.text, engine_voice, format).await;
    {
        let mut inner = shared.inner.lock().unwrap();
        inner.in_flight -= 1;
        inner.calls.push(call);
    }
    let (content_type, bytes) = match format {
        "mp3" => ("audio/mpeg", audio),
        _ => ("audio/wav", audio),
    };
    if matches!(fault, Some(Fault::Truncated)) {
        // Declares the whole length, sends half: the client sees the body break off.
        let half = bytes[..bytes.len() / 2].to_vec();
        let stream = futures_util::stream::iter([
            Ok::<_, std::io::Error>(half),
            Err(std::io::Error::other("connection reset")),
        ]);
        return Response::builder()
            .header("content-type", content_type)
            .header("content-length", bytes.len())
            .body(axum::body::Body::from_stream(stream))
            .unwrap();
    }
    ([("content-type", content_type)], bytes).into_response()
}

/// Real speech: espeak-ng's WAV, or that WAV as MP3 through ffmpeg.
async fn synthesise(text: &str, voice: &str, format: &str) -> Vec<u8> {
    use tokio::io::AsyncWriteExt;
    let mut espeak = tokio::process::Command::new("espeak-ng")
        .args(["-v", voice, "--stdin", "--stdout"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("espeak-ng");
    let mut stdin = espeak.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let wav = espeak.wait_with_output().await.unwrap().stdout;
    if format != "mp3" {
        return wav;
    }
    let mut ffmpeg = tokio::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "wav",
            "-i",
            "pipe:0",
        ])
        .args(["-ar", "44100", "-b:a", "128k", "-f", "mp3", "pipe:1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg");
    let mut stdin = ffmpeg.stdin.take().unwrap();
    let feed = tokio::spawn(async move {
        stdin.write_all(&wav).await.unwrap();
    });
    let out = ffmpeg.wait_with_output().await.unwrap().stdout;
    feed.await.unwrap();
    out
}
