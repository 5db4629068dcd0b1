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
