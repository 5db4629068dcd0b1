//! OpenAI's speech endpoint and the many servers that copy it ("OpenAI-compatible": LocalAI,
//! Kokoro-FastAPI, …): `POST {base_url}/v1/audio/speech` with a bearer key and
//! `{model, input, voice, response_format, speed}`; the answer is the audio itself. Input is at
//! most 4,096 characters; we ask for WAV so chunks join without a lossy round trip.

use serde::Deserialize;
use serde_json::json;

use super::registry::Hosted;
use super::{http, Audio, SpeechRequest, Tts, TtsError};

const ENGINE: &str = "openai";
/// The documented input limit.
const MAX_CHARS: usize = 4096;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Write `api_key = "${OPENAI_API_KEY}"`.
    pub api_key: String,
    #[serde(default = "default_model")]
    pub model: String,
    /// 0.25–4.0; 1.0 when unset.
    pub speed: Option<f32>,
}

fn default_base_url() -> String {
    "https://api.openai.com".into()
}

fn default_model() -> String {
    "gpt-4o-mini-tts".into()
}

pub struct OpenAi {
    settings: Settings,
    http: reqwest::Client,
}

impl Hosted for OpenAi {
    type Settings = Settings;

    fn new(settings: Settings, http: reqwest::Client) -> Self {
        OpenAi { settings, http }
    }

    fn api_key(settings: &Settings) -> &str {
        &settings.api_key
    }

    fn base_url(settings: &Settings) -> &str {
        &settings.base_url
    }
}

#[async_trait::async_trait]
impl Tts for OpenAi {
    fn max_chars(&self) -> usize {
        MAX_CHARS
    }

    fn identity(&self) -> String {
        format!(
            "{ENGINE}|{}|{}|{:?}",
            self.settings.base_url, self.settings.model, self.settings.speed
        )
    }

    async fn synthesize(&self, request: &SpeechRequest) -> Result<Audio, TtsError> {
        if request.text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        let mut body = json!({
            "model": self.settings.model,
            "input": request.text,
            "voice": request.voice,
            "response_format": "wav",
        });
        if let Some(speed) = self.settings.speed {
            body["speed"] = json!(speed);
        }
        let url = format!(
            "{}/v1/audio/speech",
            self.settings.base_url.trim_end_matches('/')
        );
        let request_builder = self
            .http
            .post(url)
            .bearer_auth(&self.settings.api_key)
            .json(&body);
        let bytes = http::fetch_audio(ENGINE, request_builder).await?;
        Ok(Audio {
            bytes,
            extension: "wav",
            voice_id: format!("{ENGINE}:{}:{}", self.settings.model, request.voice),
        })
    }
}
