//! ElevenLabs: `POST {base_url}/v1/text-to-speech/{voice_id}?output_format=…` with the key in
//! `xi-api-key` and `{text, model_id, previous_text, next_text}`; the answer is the audio. The
//! neighbouring chunks' text keeps the intonation continuous across requests. 10,000 characters
//! a request for the multilingual v2 model; a plan's concurrency limit answers 429
//! (`too_many_concurrent_requests`), as does `system_busy`.

use serde::Deserialize;
use serde_json::json;

use super::registry::Hosted;
use super::{http, Audio, SpeechRequest, Tts, TtsError};

const ENGINE: &str = "elevenlabs";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Write `api_key = "${ELEVENLABS_API_KEY}"`.
    pub api_key: String,
    #[serde(default = "default_model")]
    pub model: String,
    /// The model's character limit per request.
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
}

fn default_base_url() -> String {
    "https://api.elevenlabs.io".into()
}

fn default_model() -> String {
    "eleven_multilingual_v2".into()
}

fn default_max_chars() -> usize {
    10_000
}

pub struct ElevenLabs {
    settings: Settings,
    http: reqwest::Client,
}

impl Hosted for ElevenLabs {
    type Settings = Settings;

    fn new(settings: Settings, http: reqwest::Client) -> Self {
        ElevenLabs { settings, http }
    }

    fn api_key(settings: &Settings) -> &str {
        &settings.api_key
    }

    fn base_url(settings: &Settings) -> &str {
        &settings.base_url
    }
}

#[async_trait::async_trait]
impl Tts for ElevenLabs {
    fn max_chars(&self) -> usize {
        self.settings.max_chars
    }

    fn identity(&self) -> String {
        format!(
            "{ENGINE}|{}|{}",
            self.settings.base_url, self.settings.model
        )
    }

    async fn synthesize(&self, request: &SpeechRequest) -> Result<Audio, TtsError> {
        if request.text.trim().is_empty() {
            return Err(TtsError::EmptyText);
        }
        let voice = &request.voice;
        if voice.is_empty() || !voice.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(TtsError::InvalidVoice(voice.clone()));
        }
        let mut url =
            reqwest::Url::parse(self.settings.base_url.trim_end_matches('/')).map_err(|e| {
                TtsError::Rejected {
                    engine: ENGINE,
                    status: 0,
                    message: format!("base_url: {e}"),
                }
            })?;
        url.path_segments_mut()
            .map_err(|()| TtsError::Rejected {
                engine: ENGINE,
                status: 0,
                message: "base_url cannot take a path".into(),
            })?
            .extend(["v1", "text-to-speech", voice]);
        url.query_pairs_mut()
            .append_pair("output_format", "mp3_44100_128");
        let mut body = json!({"text": request.text, "model_id": self.settings.model});
        if let Some(previous) = &request.previous_text {
            body["previous_text"] = json!(previous);
        }
        if let Some(next) = &request.next_text {
            body["next_text"] = json!(next);
        }
        let request_builder = self
            .http
            .post(url)
            .header("xi-api-key", &self.settings.api_key)
            .json(&body);
        let bytes = http::fetch_audio(ENGINE, request_builder).await?;
        Ok(Audio {
            bytes,
            extension: "mp3",
            voice_id: format!("{ENGINE}:{}:{voice}", self.settings.model),
        })
    }
}
