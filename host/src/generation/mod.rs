//! Video providers: submit a generation (the paid call), then follow the job to its end.
//! One file per provider behind the [`Provider`] trait; `build` is the one registry line.

mod breaker;
pub mod config;
mod fal;
pub mod hosts;
mod omnihuman;
pub mod outcome;
mod preview;
mod replicate;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

pub use hosts::{Host, Hosts, Route};
pub use omnihuman::{CreditPack, OmniHuman, CREDITS_PER_VIDEO, CREDIT_PACKS};
pub use preview::Preview;

use crate::media::MediaStore;
use config::ProviderConfig;

/// Output resolution; it also bounds the audio length the model accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Resolution {
    #[serde(rename = "720p")]
    P720,
    #[serde(rename = "1080p")]
    P1080,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::P720 => "720p",
            Resolution::P1080 => "1080p",
        }
    }

    /// The longest audio the model accepts at this resolution (OmniHuman v1.5 documentation).
    pub fn max_audio_seconds(self) -> f64 {
        match self {
            Resolution::P720 => 60.0,
            Resolution::P1080 => 30.0,
        }
    }

    pub fn height(self) -> u32 {
        match self {
            Resolution::P720 => 720,
            Resolution::P1080 => 1080,
        }
    }
}

/// Everything a generation needs; every field was checked before this is built.
#[derive(Debug, Clone)]
pub struct SubmitRequest {
    pub render_id: String,
    pub image_url: String,
    pub audio_url: String,
    pub audio_seconds: f64,
    pub prompt: String,
    pub resolution: Resolution,
    pub turbo: bool,
    pub webhook_url: Option<String>,
    /// Sent as `Idempotency-Key`; the same for every attempt of one render.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub job_id: String,
    pub estimated_credits: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobStatus {
    /// queued / processing: ask again later.
    Pending(String),
    Completed {
        video_url: String,
        credits_used: Option<i64>,
    },
    Failed(String),
}

/// What a failed provider call means for trying again; [`outcome`] decides which applies.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// 429: not accepted; retry after the given delay.
    #[error("rate limited (retry after {retry_after:?})")]
    RateLimited { retry_after: Option<Duration> },
    /// Provably nothing was done (the connection never opened), or a status read failed: retry
    /// with backoff.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// 4xx other than 429 on the paid call: the provider refuses this input and created nothing;
    /// retrying will not help.
    #[error("provider rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// The paid call may or may not have created (and billed) a job: any 5xx, a timeout or reset
    /// after the request was sent, an unreadable answer. Reconciled, never blindly repeated.
    #[error("outcome unknown: {0}")]
    Ambiguous(String),
}

/// How a host prices a video. The ledger and the budgets count credits; a host that prices in
/// money counts one credit per cent, and OmniHuman's list price is one cent a credit too (960
/// credits = $9.60), so every host's figures add up in one unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Price {
    /// Made locally: nothing is paid.
    Free,
    /// A fixed number of credits a video, whatever its length (OmniHuman: 960).
    PerVideo { credits: i64 },
    /// Cents a second of output video (fal, Replicate: 16).
    PerSecond { cents: i64 },
}

impl Price {
    /// Credits a video of `seconds` costs (a started second counts whole).
    pub fn credits(self, seconds: f64) -> i64 {
        match self {
            Price::Free => 0,
            Price::PerVideo { credits } => credits,
            Price::PerSecond { cents } => (seconds.max(0.0).ceil() as i64) * cents,
        }
    }

    /// The price model for a person: `960 credits a video`, `16¢ a second of output`, `free`.
    pub fn describe(self) -> String {
        match self {
            Price::Free => "free (made locally)".into(),
            Price::PerVideo { credits } => format!("{credits} credits a video"),
            Price::PerSecond { cents } => format!("{cents}¢ a second of output"),
        }
    }
}

/// How a provider's jobs are followed: a per-render webhook or not, how often an unfinished job
/// is read, how long it may take, and how long a submit whose answer was lost waits for its job
/// to announce itself.
#[derive(Debug, Clone, Copy)]
pub struct Following {
    pub webhooks: bool,
    pub poll_interval: Duration,
    pub max_wait: Duration,
    pub reconcile_window: Duration,
}

impl Following {
    /// From a `[provider]` table's keys; the window defaults to the whole wait.
    pub fn from_secs(
        webhooks: bool,
        poll_interval_secs: u64,
        max_wait_secs: u64,
        reconcile_window_secs: Option<u64>,
    ) -> Following {
        Following {
            webhooks,
            poll_interval: Duration::from_secs(poll_interval_secs),
            max_wait: Duration::from_secs(max_wait_secs),
            reconcile_window: Duration::from_secs(reconcile_window_secs.unwrap_or(max_wait_secs)),
        }
    }
}

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Short name used in URLs and logs ("omnihuman", "preview").
    fn name(&self) -> &'static str;
    /// The model that makes the video, recorded in each render's provenance.
    fn model(&self) -> &'static str;
    /// The longest narration this provider accepts at `resolution` (the input checks' limit).
    fn max_audio_seconds(&self, resolution: Resolution) -> f64 {
        resolution.max_audio_seconds()
    }
    /// How the host prices a video.
    fn price(&self) -> Price;
    /// What one generation is expected to cost, in credits (reserved before submitting).
    fn estimated_credits(&self, request: &SubmitRequest) -> i64 {
        self.price().credits(request.audio_seconds)
    }
    /// True when submitting the same request again with the same `Idempotency-Key` cannot bill
    /// twice: the provider documents that it honours the key (or generation is free and local).
    /// Only then is an ambiguous submit retried automatically.
    /// None of the paid hosts documents one, so the default is false.
    fn honours_idempotency_key(&self) -> bool {
        false
    }
    /// How its jobs are followed (the `[provider]` table's webhook and timing keys).
    fn following(&self) -> Following;
    /// Whether to pass a per-render webhook URL.
    fn wants_webhook(&self) -> bool {
        self.following().webhooks
    }
    /// How often to poll an unfinished job, and how long to wait in all.
    fn poll_interval(&self) -> Duration {
        self.following().poll_interval
    }
    fn max_wait(&self) -> Duration {
        self.following().max_wait
    }
    /// How long an ambiguous submit waits for its job to announce itself.
    fn reconcile_window(&self) -> Duration {
        self.following().reconcile_window
    }
    /// Authenticates a webhook body when the provider signs them (`Err` says why not).
    async fn verify_webhook(&self, _headers: &http::HeaderMap, _body: &[u8]) -> Result<(), String> {
        Ok(())
    }
    /// The job id a webhook body announces, if it names one. Nothing else in the body is
    /// believed: the worker confirms the job's state with the provider's status read.
    fn announced_job(&self, body: &[u8]) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct ProviderEvent {
            job_id: Option<String>,
        }
        serde_json::from_slice::<ProviderEvent>(body)
            .ok()
            .and_then(|e| e.job_id)
    }
    async fn submit(&self, request: &SubmitRequest) -> Result<Submitted, ProviderError>;
    async fn status(&self, job_id: &str) -> Result<JobStatus, ProviderError>;
    /// For a submit whose answer was lost: the job created since `since_ms` whose narration is
    /// our media key `audio_key`, when the provider lets us list recent jobs (else `None`).
    async fn find_job(
        &self,
        _audio_key: &str,
        _since_ms: i64,
    ) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }
}

/// A job id as a provider hands them out (letters, digits, '-' and '_'), checked before it is
/// put in a URL.
fn check_job_id(job_id: &str) -> Result<(), ProviderError> {
    if job_id.is_empty()
        || job_id.len() > 128
        || !job_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
    {
        return Err(ProviderError::Unavailable(format!(
            "{job_id:?} is not a job id (letters, digits, '-' and '_' only)"
        )));
    }
    Ok(())
}

/// The provider one `[providers.NAME]` (or `[provider]`) table describes, behind its rate
/// limiter and concurrency cap: the one registry line per provider.
fn build(
    config: &ProviderConfig,
    media: MediaStore,
    inputs: crate::checks::Fetcher,
) -> anyhow::Result<Arc<dyn Provider>> {
    Ok(match config {
        ProviderConfig::Preview {
            ffmpeg_binary,
            burn_captions,
        } => Arc::new(
            Preview::new(ffmpeg_binary.clone(), media, inputs)?.with_captions(*burn_captions),
        ),
        ProviderConfig::Omnihuman(settings) => Arc::new(throttle::Throttled::new(
            Arc::new(OmniHuman::new(settings.clone())?),
            settings.requests_per_minute,
            settings.max_concurrent,
        )),
        ProviderConfig::Replicate(settings) => Arc::new(throttle::Throttled::new(
            Arc::new(replicate::Replicate::new(settings.clone())?),
            settings.requests_per_minute,
            settings.max_concurrent,
        )),
        ProviderConfig::Fal(settings) => Arc::new(throttle::Throttled::new(
            Arc::new(fal::Fal::new(settings.clone(), inputs.guard())?),
            settings.requests_per_minute,
            settings.max_concurrent,
        )),
    })
}
