//! OmniHuman 1.5 on Replicate (`bytedance/omni-human-1.5`), as Replicate documents it:
//! `POST {api}/models/{owner}/{name}/predictions` with `{input: {image, audio, prompt, fast_mode},
//! webhook, webhook_events_filter}` → 201 with the prediction; `GET {api}/predictions/{id}` →
//! `status` starting | processing | succeeded (`output`, the video URL) | failed (`error`) |
//! canceled; `GET {api}/predictions` lists recent ones, newest first, a page at a time (`next`).
//! Bearer token; 429 past the creation rate, with the wait in its `detail`. The model takes no
//! resolution and fails (billed) on audio of 35 s or more, so that is its limit at every
//! resolution. Outputs are deleted an hour after the prediction: the keep step copies them at once.
//!
//! No idempotency key is documented: a submit whose answer was lost is looked for in the recent
//! predictions (by our narration's URL in its input) before the render waits for its webhook.
//! Webhooks are Standard Webhooks signed with the account's secret; a verified one is still only a
//! hint the worker confirms by reading the prediction.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::config::ReplicateConfig;
use super::outcome::{self, Call};
use super::{
    Following, JobStatus, Price, Provider, ProviderError, Resolution, SubmitRequest, Submitted,
};
use crate::cms::standard_webhooks::Secret;

pub const MODEL: &str = "bytedance/omni-human-1.5";

/// Seconds a webhook's timestamp may be off.
const WEBHOOK_TOLERANCE_SECS: u64 = 300;
/// Pages of recent predictions read when looking for a lost submit, and predictions read in full.
const LIST_PAGES: usize = 3;
const MAX_CANDIDATES: usize = 20;

pub struct Replicate {
    settings: ReplicateConfig,
    http: reqwest::Client,
    secret: Option<Secret>,
    /// Webhook ids accepted (and their timestamps), to refuse replays within the tolerance.
    seen: Mutex<HashMap<String, i64>>,
}

impl Replicate {
    pub fn new(settings: ReplicateConfig) -> anyhow::Result<Self> {
        let secret = settings
            .webhook_secret
            .as_deref()
            .map(Secret::parse)
            .transpose()?;
        anyhow::ensure!(
            secret.is_some() || !settings.webhooks,
            "[provider] kind = \"replicate\" with webhooks needs webhook_secret (the account's \
             signing secret, GET /v1/webhooks/default/secret), or webhooks = false"
        );
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.request_timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Replicate {
            settings,
            http,
            secret,
            seen: Mutex::default(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.base_url.trim_end_matches('/'))
    }

    /// Whether `url` is under the configured API (where the token may be sent).
    fn is_api_url(&self, url: &str) -> bool {
        let base = self.settings.base_url.trim_end_matches('/');
        url.strip_prefix(base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, ProviderError> {
        let request = self.http.get(url).bearer_auth(&self.settings.api_token);
        outcome::send(Call::Status, request).await
    }

    async fn prediction(&self, id: &str) -> Result<Prediction, ProviderError> {
        super::check_job_id(id)?;
        self.get(&self.url(&format!("/predictions/{id}")))
            .await?
            .json()
            .await
            .map_err(|e| outcome::unreadable(Call::Status, "prediction", e))
    }
}

#[derive(Deserialize)]
struct Prediction {
    id: String,
    status: String,
    #[serde(default)]
    output: serde_json::Value,
    #[serde(default)]
    error: serde_json::Value,
    #[serde(default)]
    input: serde_json::Value,
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct Page {
    results: Vec<Prediction>,
    next: Option<String>,
}

#[async_trait::async_trait]
impl Provider for Replicate {
    fn name(&self) -> &'static str {
        "replicate"
    }

    fn model(&self) -> &'static str {
        MODEL
    }

    fn max_audio_seconds(&self, resolution: Resolution) -> f64 {
        self.settings.audio_limit(resolution)
    }

    fn price(&self) -> Price {
        self.settings.price()
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
        let Some(secret) = &self.secret else {
            return Err("webhooks are off for this provider".into());
        };
        let now = crate::store::now_ms() / 1000;
        let id = secret
            .verify(headers, body, WEBHOOK_TOLERANCE_SECS, now)
            .map_err(|e| e.to_string())?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(&id) {
            return Err(format!("webhook {id} was already received (a replay)"));
        }
        seen.retain(|_, at| (now - *at).unsigned_abs() <= WEBHOOK_TOLERANCE_SECS);
        if seen.len() < 100_000 {
            seen.insert(id, now);
        }
        Ok(())
    }

    fn announced_job(&self, body: &[u8]) -> Option<String> {
        #[derive(Deserialize)]
        struct Announced {
            id: Option<String>,
        }
        serde_json::from_slice::<Announced>(body)
            .ok()
            .and_then(|a| a.id)
    }

    async fn submit(&self, request: &SubmitRequest) -> Result<Submitted, ProviderError> {
        let mut body = json!({
            "input": {
                "image": request.image_url,
                "audio": request.audio_url,
                "prompt": request.prompt,
                "fast_mode": request.turbo,
            },
        });
        if let Some(webhook) = &request.webhook_url {
            body["webhook"] = json!(webhook);
            body["webhook_events_filter"] = json!(["completed"]);
        }
        let url = self.url(&format!("/models/{}/predictions", self.settings.model));
        let post = self
            .http
            .post(url)
            .bearer_auth(&self.settings.api_token)
            .json(&body);
        let prediction: Prediction = outcome::call_json(Call::Submit, post, "prediction").await?;
        Ok(Submitted {
            job_id: prediction.id,
            estimated_credits: Some(self.estimated_credits(request)),
        })
    }

    async fn status(&self, job_id: &str) -> Result<JobStatus, ProviderError> {
        let prediction = self.prediction(job_id).await?;
        Ok(match prediction.status.as_str() {
            "succeeded" => {
                let url = match &prediction.output {
                    serde_json::Value::String(url) => Some(url.clone()),
                    serde_json::Value::Array(items) => {
                        items.first().and_then(|u| u.as_str()).map(str::to_owned)
                    }
                    _ => None,
                };
                match url {
                    Some(video_url) => JobStatus::Completed {
                        video_url,
                        credits_used: None,
                    },
                    None => JobStatus::Failed("succeeded without an output URL".into()),
                }
            }
            "failed" => JobStatus::Failed(match prediction.error {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => "failed without an error message".into(),
                other => other.to_string(),
            }),
            "canceled" => JobStatus::Failed("the prediction was canceled".into()),
            other => JobStatus::Pending(other.to_string()),
        })
    }

    async fn find_job(
        &self,
        audio_key: &str,
        since_ms: i64,
    ) -> Result<Option<String>, ProviderError> {
        // A minute of slack for clocks; predictions come newest first.
        let since = since_ms - 60_000;
        let mut url = Some(self.url("/predictions"));
        let mut candidates = Vec::new();
        for _ in 0..LIST_PAGES {
            let Some(next) = url.take() else { break };
            let page: Page = self
                .get(&next)
                .await?
                .json()
                .await
                .map_err(|e| outcome::unreadable(Call::Status, "prediction list", e))?;
            let mut older = false;
            for prediction in page.results {
                match created_ms(prediction.created_at.as_deref()) {
                    Some(at) if at < since => older = true,
                    _ => candidates.push(prediction),
                }
            }
            if older {
                break;
            }
            // The bearer token goes only to the configured API: a `next` elsewhere ends the search.
            url = page.next.filter(|next| self.is_api_url(next));
        }
        for candidate in candidates.into_iter().take(MAX_CANDIDATES) {
            // The list may leave the input out: read the prediction itself then.
            let input = if candidate.input.is_null() {
                self.prediction(&candidate.id).await?.input
            } else {
                candidate.input
            };
            let ours = input["audio"]
                .as_str()
                .and_then(|u| reqwest::Url::parse(u).ok())
                .is_some_and(|u| u.path().ends_with(&format!("/{audio_key}")));
            if ours {
                return Ok(Some(candidate.id));
            }
        }
        Ok(None)
    }
}

fn created_ms(text: Option<&str>) -> Option<i64> {
    let at: jiff::Timestamp = text?.parse().ok()?;
    Some(at.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_follows_only_pages_of_the_configured_api() {
        let settings: ReplicateConfig = toml::from_str(
            "api_token = \"t\"\nwebhooks = false\nbase_url = \"https://api.replicate.com/v1\"",
        )
        .unwrap();
        let replicate = Replicate::new(settings).unwrap();
        assert!(replicate.is_api_url("https://api.replicate.com/v1/predictions?cursor=abc"));
        assert!(!replicate.is_api_url("https://api.replicate.com/v1.evil.example/predictions"));
        assert!(!replicate.is_api_url("https://evil.example/v1/predictions"));
    }
}
