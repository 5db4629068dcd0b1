//! `[providers.NAME]` (or the one `[provider]`) and `[budgets]`: which hosts make the videos,
//! and how much they may spend.

use serde::Deserialize;

/// Which video provider makes the videos.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ProviderConfig {
    /// Local, free: ffmpeg renders the photo with the narration into an MP4.
    Preview {
        #[serde(default = "default_ffmpeg")]
        ffmpeg_binary: String,
        /// Burn the narration's captions into the preview (from the same cues as the `.vtt`).
        #[serde(default)]
        burn_captions: bool,
    },
    /// The OmniHuman v1.5 API (Seedance REST API).
    Omnihuman(OmniHumanConfig),
    /// The same model on fal.ai's queue (`fal-ai/bytedance/omnihuman/v1.5`).
    Fal(FalConfig),
    /// The same model on Replicate (`bytedance/omni-human-1.5`).
    Replicate(ReplicateConfig),
}

impl ProviderConfig {
    /// The `kind` key's value, which also names a lone `[provider]` table's host.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::Preview { .. } => "preview",
            ProviderConfig::Omnihuman(_) => "omnihuman",
            ProviderConfig::Fal(_) => "fal",
            ProviderConfig::Replicate(_) => "replicate",
        }
    }

    /// How the host prices a video (what its provider's `price` says, without building it).
    pub fn price(&self) -> super::Price {
        match self {
            ProviderConfig::Preview { .. } => super::Price::Free,
            ProviderConfig::Omnihuman(_) => super::Price::PerVideo {
                credits: super::CREDITS_PER_VIDEO,
            },
            ProviderConfig::Fal(f) => f.price(),
            ProviderConfig::Replicate(r) => r.price(),
        }
    }

    /// The longest narration the host accepts at `resolution` (its provider's limit).
    pub fn max_audio_seconds(&self, resolution: super::Resolution) -> f64 {
        match self {
            ProviderConfig::Replicate(r) => r.audio_limit(resolution),
            _ => resolution.max_audio_seconds(),
        }
    }

    /// Calls in flight at once and calls a minute this host takes (none: local, unlimited).
    pub fn call_limits(&self) -> Option<(usize, u32)> {
        match self {
            ProviderConfig::Preview { .. } => None,
            ProviderConfig::Omnihuman(o) => Some((o.max_concurrent, o.requests_per_minute)),
            ProviderConfig::Fal(f) => Some((f.max_concurrent, f.requests_per_minute)),
            ProviderConfig::Replicate(r) => Some((r.max_concurrent, r.requests_per_minute)),
        }
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig::Preview {
            ffmpeg_binary: default_ffmpeg(),
            burn_captions: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OmniHumanConfig {
    #[serde(default = "default_omnihuman_url")]
    pub base_url: String,
    /// Bearer key; write `api_key = "${SEEDANCE_API_KEY}"`.
    pub api_key: String,
    /// Ask the provider to call us back (recommended); polling still runs as the fallback.
    #[serde(default = "yes")]
    pub webhooks: bool,
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// A job still unfinished after this long fails with category `timeout`.
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// How long a paid submit whose outcome is unknown waits in `reconciling` for its job to
    /// announce itself (webhook) before the source's `ambiguous_submit` policy applies; default
    /// `max_wait_secs`.
    pub reconcile_window_secs: Option<u64>,
    /// If the provider signs its webhooks: the shared secret. Scheme (the one resellers of this
    /// model use): `<header>: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
    /// 300 s window. Checked in addition to the per-render token.
    pub webhook_secret: Option<String>,
    #[serde(default = "default_signature_header")]
    pub webhook_signature_header: String,
    /// Calls a minute to the API (submits and status reads), for all workers of this process.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// Calls in flight at once.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

/// `[provider] kind = "fal"`: fal.ai's queue. Its facts (from fal's documentation): `Authorization:
/// Key …`; a concurrency limit rather than a rate (2 jobs at once on a new account, the rest wait
/// `IN_QUEUE`); $0.16 a second of output; Ed25519-signed webhooks, keys from its JWKS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FalConfig {
    #[serde(default = "default_fal_url")]
    pub base_url: String,
    /// The model's endpoint id; status and results live under its first two segments.
    #[serde(default = "default_fal_model")]
    pub model: String,
    /// `Authorization: Key …`; write `api_key = "${FAL_KEY}"`.
    pub api_key: String,
    /// Ask fal to call us back (`fal_webhook`); polling still runs as the fallback.
    #[serde(default = "yes")]
    pub webhooks: bool,
    /// fal's public webhook keys (fetched through the outbound guard, cached a day, fetched
    /// again when no cached key verifies a delivery, at most once every 10 s).
    #[serde(default = "default_fal_jwks")]
    pub jwks_url: String,
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// As `[provider] kind = "omnihuman"`'s; default `max_wait_secs`.
    pub reconcile_window_secs: Option<u64>,
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// Calls in flight at once (fal limits jobs, not calls: jobs past the account's concurrency
    /// wait in its queue, so this only spares the API).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Price per second of output video, in cents (the ledger's credits are cents).
    #[serde(default = "default_fal_cents_per_second")]
    pub cents_per_second: i64,
}

/// `[provider] kind = "replicate"`: Replicate's predictions API. Its facts (from Replicate's
/// documentation): `Authorization: Bearer …`; 600 prediction creations a minute, 429 past it;
/// audio under 35 s (no resolution input); outputs deleted an hour after the prediction; Standard
/// Webhooks signatures with the account's `whsec_` signing secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicateConfig {
    #[serde(default = "default_replicate_url")]
    pub base_url: String,
    /// `owner/name` of the model (its latest version runs).
    #[serde(default = "default_replicate_model")]
    pub model: String,
    /// Bearer token; write `api_token = "${REPLICATE_API_TOKEN}"`.
    pub api_token: String,
    /// Ask Replicate to call us back (`webhook`, `completed` events only); polling still runs.
    #[serde(default = "yes")]
    pub webhooks: bool,
    /// The account's webhook signing secret (`GET /v1/webhooks/default/secret`), `whsec_…`;
    /// required with `webhooks`.
    pub webhook_secret: Option<String>,
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// As `[provider] kind = "omnihuman"`'s; default `max_wait_secs`. Before it applies, the
    /// recent predictions are listed for one this render created.
    pub reconcile_window_secs: Option<u64>,
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
    /// Price per second of output video, in cents.
    #[serde(default = "default_fal_cents_per_second")]
    pub cents_per_second: i64,
    /// The longest narration the model accepts, in seconds (longer predictions fail, billed).
    #[serde(default = "default_replicate_max_audio")]
    pub max_audio_seconds: f64,
}

impl FalConfig {
    /// Billed by the second of output, which is the narration's length.
    pub fn price(&self) -> super::Price {
        super::Price::PerSecond {
            cents: self.cents_per_second,
        }
    }
}

impl ReplicateConfig {
    /// Billed by the second of output, which is the narration's length.
    pub fn price(&self) -> super::Price {
        super::Price::PerSecond {
            cents: self.cents_per_second,
        }
    }

    /// The longest narration the model takes here: `max_audio_seconds` at any resolution, and
    /// never more than the model's own limit at that resolution.
    pub fn audio_limit(&self, resolution: super::Resolution) -> f64 {
        self.max_audio_seconds.min(resolution.max_audio_seconds())
    }
}

/// Spending limits, in provider credits per UTC day.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsConfig {
    /// All sources together; none = unlimited.
    pub daily_credits: Option<i64>,
}

fn default_ffmpeg() -> String {
    "ffmpeg".into()
}
fn default_omnihuman_url() -> String {
    "https://api.seedance.it.com/v1".into()
}
fn default_fal_url() -> String {
    "https://queue.fal.run".into()
}
fn default_fal_model() -> String {
    "fal-ai/bytedance/omnihuman/v1.5".into()
}
fn default_fal_jwks() -> String {
    "https://rest.alpha.fal.ai/.well-known/jwks.json".into()
}
fn default_fal_cents_per_second() -> i64 {
    16
}
fn default_replicate_url() -> String {
    "https://api.replicate.com/v1".into()
}
fn default_replicate_model() -> String {
    "bytedance/omni-human-1.5".into()
}
fn default_replicate_max_audio() -> f64 {
    35.0
}
fn yes() -> bool {
    true
}
fn default_poll_secs() -> u64 {
    15
}
fn default_max_wait() -> u64 {
    30 * 60
}
fn default_request_timeout() -> u64 {
    30
}
fn default_signature_header() -> String {
    "x-seedance-signature".into()
}
fn default_requests_per_minute() -> u32 {
    120
}
fn default_max_concurrent() -> usize {
    4
}
