//! Text to speech. The host, not the plugin, makes these calls: a plugin says *what* to say
//! (text, voice, language); the engine and its credentials stay here. espeak-ng is the local
//! default; hosted engines are further implementations of [`Tts`] in their own files.

mod espeak;

pub use espeak::Espeak;

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("invalid voice {0:?}")]
    InvalidVoice(String),
    #[error("nothing to say: the text is empty")]
    EmptyText,
    #[error("{engine} failed: {message}")]
    Engine {
        engine: &'static str,
        message: String,
    },
    #[error("{engine} did not finish within {secs} s")]
    Timeout { engine: &'static str, secs: u64 },
}

/// What to synthesise.
#[derive(Debug, Clone)]
pub struct SpeechRequest {
    pub text: String,
    pub voice: String,
}

/// Synthesised audio.
#[derive(Debug, Clone)]
pub struct Audio {
    pub bytes: Vec<u8>,
    /// File extension of `bytes` ("wav", "mp3").
    pub extension: &'static str,
    /// Engine and voice actually used, for provenance ("espeak-ng:en-us").
    pub voice_id: String,
}

#[async_trait::async_trait]
pub trait Tts: Send + Sync {
    async fn synthesize(&self, request: &SpeechRequest) -> Result<Audio, TtsError>;
}

/// `[tts]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsConfig {
    /// The espeak-ng executable.
    pub espeak_binary: String,
    /// Speaking rate; keep it equal to the plugins' `words_per_minute`.
    pub words_per_minute: u32,
    /// Longest a synthesis may take.
    pub timeout_secs: u64,
}

impl Default for TtsConfig {
    fn default() -> Self {
        Self {
            espeak_binary: "espeak-ng".into(),
            words_per_minute: 175,
            timeout_secs: 60,
        }
    }
}
