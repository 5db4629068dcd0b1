//! OmniHuman v1.5 on fal.ai's queue (`fal-ai/bytedance/omnihuman/v1.5`), as fal documents it:
//! `POST {queue}/{model}?fal_webhook=…` → `{request_id, …}`; `GET {queue}/{owner}/{alias}/
//! requests/{id}/status` → IN_QUEUE | IN_PROGRESS | COMPLETED; then `GET …/requests/{id}` gives
//! the result (`video.url`, `duration`) or the error that failed it. `Authorization: Key …`.
//! Status and results live under the app id (the endpoint's first two segments), not the full
//! endpoint path. fal's default resolution is 1080p (the seed's is 720p), so it is always sent.
//!
//! fal documents no idempotency key: an ambiguous submit is reconciled by the request id its
//! webhook announces, or parks, as with the seed's API. Its webhooks are signed with Ed25519
//! ([`webhook_keys`]); a verified one is still only a hint that the worker confirms by reading
//! the request.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;

use super::config::FalConfig;
use super::outcome::{self, Call};
use super::{Following, JobStatus, Price, Provider, ProviderError, SubmitRequest, Submitted};

mod webhook_keys;

pub const MODEL: &str = "fal-ai/bytedance/omnihuman/v1.5";

pub struct Fal {
    settings: FalConfig,
    http: reqwest::Client,
    keys: webhook_keys::WebhookKeys,
}

impl Fal {
    pub fn new(settings: FalConfig, guard: &crate::outbound::Guard) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.request_timeout_secs))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let keys = webhook_keys::WebhookKeys::new(
            guard.configured_url(&settings.jwks_url)?.to_string(),
            guard.client(Duration::from_secs(10)),
        );
        Ok(Fal {
            settings,
            http,
            keys,
        })
    }

    fn base(&self) -> &str {
        self.settings.base_url.trim_end_matches('/')
    }

    /// `{queue}/{owner}/{alias}/requests/{id}{rest}`: where a request's status and result live.
    fn request_url(&self, id: &str, rest: &str) -> String {
        let app: Vec<&str> = self.settings.model.split('/').take(2).collect();
        format!("{}/{}/requests/{id}{rest}", self.base(), app.join("/"))
    }

    fn authorization(&self) -> String {
        format!("Key {}", self.settings.api_key)
    }

    /// The finished request's result: the video, or the error fal answers in its place.
    async fn result(&self, id: &str) -> Result<JobStatus, ProviderError> {
        let response = self
            .http
            .get(self.request_url(id, ""))
            .header("authorization", self.authorization())
            .send()
            .await
            .map_err(|e| outcome::transport(Call::Status, &e))?;
        let status = response.status();
        if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
            // A failed request's result is its error (e.g. 422 with `detail`).
            let detail: String = response
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(500)
                .collect();
            return Ok(JobStatus::Failed(format!("{status}: {detail}")));
        }
        if !status.is_success() {
            return Err(outcome::error_for(Call::Status, response).await);
        }
        let answer: ResultAnswer = response
            .json()
            .await
            .map_err(|e| outcome::unreadable(Call::Status, "request result", e))?;
        Ok(JobStatus::Completed {
            video_url: answer.video.url,
            credits_used: answer.duration.map(|d| self.price().credits(d)),
        })
    }
}

#[derive(Deserialize)]
struct SubmitAnswer {
    request_id: String,
}

#[derive(Deserialize)]
struct StatusAnswer {
    status: String,
}

#[derive(Deserialize)]
struct ResultAnswer {
    video: VideoFile,
    duration: Option<f64>,
}

#[derive(Deserialize)]
struct VideoFile {
    url: String,
}

#[async_trait::async_trait]
impl Provider for Fal {
    fn name(&self) -> &'static str {
        "fal"
    }

    fn model(&self) -> &'static str {
        MODEL
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
        self.keys.verify(headers, body).await
    }

    fn announced_job(&self, body: &[u8]) -> Option<String> {
        #[derive(Deserialize)]
        struct Delivery {
            request_id: Option<String>,
        }
        serde_json::from_slice::<Delivery>(body)
            .ok()
            .and_then(|d| d.request_id)
    }

    async fn submit(&self, request: &SubmitRequest) -> Result<Submitted, ProviderError> {
        let body = json!({
            "image_url": request.image_url,
            "audio_url": request.audio_url,
            "prompt": request.prompt,
            "resolution": request.resolution.as_str(),
            "turbo_mode": request.turbo,
        });
        let mut url = reqwest::Url::parse(&format!("{}/{}", self.base(), self.settings.model))
            .map_err(|e| ProviderError::Rejected {
                status: 0,
                message: format!("the configured fal URL is not a URL: {e}"),
            })?;
        if let Some(webhook) = &request.webhook_url {
            url.query_pairs_mut().append_pair("fal_webhook", webhook);
        }
        let post = self
            .http
            .post(url)
            .header("authorization", self.authorization())
            .json(&body);
        let answer: SubmitAnswer = outcome::call_json(Call::Submit, post, "queue answer").await?;
        Ok(Submitted {
            job_id: answer.request_id,
            estimated_credits: Some(self.estimated_credits(request)),
        })
    }

    async fn status(&self, job_id: &str) -> Result<JobStatus, ProviderError> {
        super::check_job_id(job_id)?;
        let request = self
            .http
            .get(self.request_url(job_id, "/status"))
            .header("authorization", self.authorization());
        let answer: StatusAnswer =
            outcome::call_json(Call::Status, request, "request status").await?;
        match answer.status.as_str() {
            "COMPLETED" => self.result(job_id).await,
            other => Ok(JobStatus::Pending(other.to_string())),
        }
    }
}
