//! The OmniHuman v1.5 API as documented by Seedance (`https://api.seedance.it.com/v1`):
//! `POST /omnihuman/generate` → `{job_id, status, created_at, estimated_credits}`;
//! `GET /jobs/{job_id}` → `status` queued | processing | completed (`result.video_url`) | failed
//! (`error`). Bearer key; rate limits answered with 429. The documentation does not say that the
//! API honours an `Idempotency-Key`, so we assume it does not: we send one (harmless if ignored,
//! and it names the attempt in the provider's logs) but never rely on it. The per-render
//! `webhook_url` is how a job whose answer we lost announces itself.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::config::OmniHumanConfig;
use super::outcome::{self, Call};
use super::{Following, JobStatus, Price, Provider, ProviderError, SubmitRequest, Submitted};

pub const MODEL: &str = "omnihuman-v1.5";

/// 960 credits ($9.60 at list price) per generation, whatever the length or resolution.
pub const CREDITS_PER_VIDEO: i64 = 960;

/// The documented credit packs: (name, dollars, credits).
pub const CREDIT_PACKS: [(&str, f64, i64); 4] = [
    ("Starter", 10.0, 1050),
    ("Popular", 25.0, 2750),
    ("Pro", 50.0, 5750),
    ("Max", 100.0, 12000),
];

/// The credit pack a source buys, which prices its estimates (`credit_pack = "pro"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreditPack {
    #[default]
    Starter,
    Popular,
    Pro,
    Max,
}

impl CreditPack {
    /// (name, dollars per credit) from [`CREDIT_PACKS`].
    pub fn price(self) -> (&'static str, f64) {
        let (name, dollars, credits) = CREDIT_PACKS[self as usize];
        (name, dollars / credits as f64)
    }
}

pub struct OmniHuman {
    settings: OmniHumanConfig,
    http: reqwest::Client,
}

impl OmniHuman {
    pub fn new(settings: OmniHumanConfig) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.request_timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(OmniHuman { settings, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }
}

#[derive(Deserialize)]
struct GenerateAnswer {
    job_id: String,
    estimated_credits: Option<i64>,
}

#[derive(Deserialize)]
struct JobAnswer {
    status: String,
    result: Option<JobResult>,
    error: Option<serde_json::Value>,
    credits_used: Option<i64>,
}

#[derive(Deserialize)]
struct JobResult {
    video_url: String,
}

/// Seconds a signed webhook stays acceptable (replay window).
const SIGNATURE_WINDOW_SECS: i64 = 300;

/// Checks `t=<unix>,v1=<hex>` against HMAC-SHA256(secret, "<t>.<body>"), constant-time.
fn verify_signature(secret: &[u8], value: &str, body: &[u8], now: i64) -> Result<(), String> {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut candidates = Vec::new();
    for part in value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => candidates.push(v.to_string()),
            _ => {}
        }
    }
    let t = t.ok_or("signature has no t=")?;
    if (now - t).abs() > SIGNATURE_WINDOW_SECS {
        return Err(format!(
            "signature timestamp {t} is outside the {SIGNATURE_WINDOW_SECS} s window"
        ));
    }
    let valid = candidates.iter().any(|candidate| {
        let Ok(sig) = hex::decode(candidate) else {
            return false;
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key size");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    });
    if valid {
        Ok(())
    } else {
        Err("no valid v1 signature".into())
    }
}

#[async_trait::async_trait]
impl Provider for OmniHuman {
    fn name(&self) -> &'static str {
        "omnihuman"
    }

    fn model(&self) -> &'static str {
        MODEL
    }

    fn price(&self) -> Price {
        Price::PerVideo {
            credits: CREDITS_PER_VIDEO,
        }
    }

    fn following(&self) -> Following {
        let s = &self.settings;
        Following::from_secs(
            s.webhooks,
            s.poll_interval_secs,
            s.max_wait_secs,
            s.reconcile_window_secs,
        )
    }

    async fn verify_webhook(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
        let Some(secret) = &self.settings.webhook_secret else {
            return Ok(());
        };
        let header = &self.settings.webhook_signature_header;
        let value = headers
            .get(header.as_str())
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("missing {header}"))?;
        verify_signature(
            secret.as_bytes(),
            value,
            body,
            crate::store::now_ms() / 1000,
        )
    }

    async fn submit(&self, request: &SubmitRequest) -> Result<Submitted, ProviderError> {
        let mut body = json!({
            "model": MODEL,
            "image_url": request.image_url,
            "audio_url": request.audio_url,
            "prompt": request.prompt,
            "resolution": request.resolution.as_str(),
            "turbo_mode": request.turbo,
        });
        if let Some(webhook) = &request.webhook_url {
            body["webhook_url"] = json!(webhook);
        }
        let post = self
            .http
            .post(self.url("/omnihuman/generate"))
            .bearer_auth(&self.settings.api_key)
            .header("Idempotency-Key", &request.idempotency_key)
            .json(&body);
        let answer: GenerateAnswer =
            outcome::call_json(Call::Submit, post, "generate answer").await?;
        Ok(Submitted {
            job_id: answer.job_id,
            estimated_credits: answer.estimated_credits,
        })
    }

    async fn status(&self, job_id: &str) -> Result<JobStatus, ProviderError> {
        super::check_job_id(job_id)?;
        let request = self
            .http
            .get(self.url(&format!("/jobs/{job_id}")))
            .bearer_auth(&self.settings.api_key);
        let answer: JobAnswer = outcome::call_json(Call::Status, request, "job answer").await?;
        Ok(match answer.status.as_str() {
            "completed" => match answer.result {
                Some(result) => JobStatus::Completed {
                    video_url: result.video_url,
                    credits_used: answer.credits_used,
                },
                None => JobStatus::Failed("completed without result.video_url".into()),
            },
            "failed" => JobStatus::Failed(match answer.error {
                Some(serde_json::Value::String(s)) => s,
                Some(other) => other.to_string(),
                None => "failed without an error message".into(),
            }),
            other => JobStatus::Pending(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};

    fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn webhook_signatures() {
        let body = br#"{"job_id":"job_1"}"#;
        let good = sign(b"s", 1000, body);
        assert!(verify_signature(b"s", &good, body, 1100).is_ok());
        assert!(
            verify_signature(b"s", &good, b"{}", 1100).is_err(),
            "tampered"
        );
        assert!(
            verify_signature(b"other", &good, body, 1100).is_err(),
            "wrong secret"
        );
        assert!(verify_signature(b"s", &good, body, 1400).is_err(), "stale");
        assert!(
            verify_signature(b"s", &good[..good.len() - 4], body, 1100).is_err(),
            "truncated"
        );
        assert!(
            verify_signature(b"s", "v1=00", body, 1100).is_err(),
            "no timestamp"
        );
    }
}
