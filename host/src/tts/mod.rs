//! Text to speech. The host, not the plugin, makes these calls: a plugin says *what* to say
//! (text, voice, language, which configured provider); the engines and their credentials stay
//! here. espeak-ng is the local default; hosted engines are further implementations of [`Tts`],
//! one file each, listed in [`registry`]. [`narration`] turns a whole script into one audio file
//! and its caption cues, whatever the engine's length limit.

pub mod caption_standard;
pub mod captions;
mod chunk;
mod elevenlabs;
mod espeak;
mod http;
mod lexicon;
pub mod narration;
mod openai;
mod registry;

use std::collections::BTreeMap;
use std::time::Duration;

pub use espeak::Espeak;
pub use lexicon::{entry_problem as lexicon_entry_problem, Lexicon};
pub use registry::{HostedConfig, Speakers, SpeechCost, ESPEAK};

#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("invalid voice {0:?}")]
    InvalidVoice(String),
    #[error("nothing to say: the text is empty")]
    EmptyText,
    #[error("no TTS provider {0:?} is configured ([tts.providers.*], or \"espeak\")")]
    UnknownProvider(String),
    /// The engine refused the request itself (bad key, invalid voice or text): retrying the
    /// same request cannot help.
    #[error("{engine} refused the request ({status}): {message}")]
    Rejected {
        engine: &'static str,
        status: u16,
        message: String,
    },
    #[error("{engine} is rate limiting (retry after {retry_after:?})")]
    RateLimited {
        engine: &'static str,
        retry_after: Option<Duration>,
    },
    /// A local engine's failure, a 5xx or a network fault: worth another try.
    #[error("{engine} failed: {message}")]
    Engine {
        engine: &'static str,
        message: String,
    },
    #[error("{engine} did not finish within {secs} s")]
    Timeout { engine: &'static str, secs: u64 },
    /// The engine answered with something that does not decode (often a truncated body).
    #[error("the synthesised audio is not decodable: {0}")]
    BadAudio(String),
}

impl TtsError {
    /// Whether the same request may succeed later (a chunk is retried only then).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TtsError::RateLimited { .. }
                | TtsError::Engine { .. }
                | TtsError::Timeout { .. }
                | TtsError::BadAudio(_)
        )
    }
}

/// A BCP 47 tag as (locale, language), lower case: "de-AT" → ("de-at", "de").
pub fn locale_and_language(tag: &str) -> (String, String) {
    let locale = tag.to_ascii_lowercase();
    let language = locale
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_string();
    (locale, language)
}

/// The entry of a per-locale table for `tag`: its exact locale's, else its language's.
pub fn by_locale<'m, V>(table: &'m BTreeMap<String, V>, tag: &str) -> Option<&'m V> {
    let (locale, language) = locale_and_language(tag);
    table.get(&locale).or_else(|| table.get(&language))
}

/// What to synthesise: one chunk of a narration.
#[derive(Debug, Clone, Default)]
pub struct SpeechRequest {
    pub text: String,
    pub voice: String,
    /// BCP 47 language of the text ("de-DE"); engines that take a language hint get it.
    pub language: String,
    /// The chunks around this one, for engines that keep intonation across requests
    /// (ElevenLabs `previous_text`/`next_text`).
    pub previous_text: Option<String>,
    pub next_text: Option<String>,
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
    /// The longest text (in characters) one request may carry.
    fn max_chars(&self) -> usize;
    /// What makes this engine sound as it does (engine, model, rate, endpoint): two engines with
    /// the same identity give the same audio for the same request, so a chunk may be reused.
    fn identity(&self) -> String;
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
    /// Longest a synthesis request may take.
    pub timeout_secs: u64,
    /// Chunks of one narration synthesised at once (per render).
    pub parallel: usize,
    /// Longest chunk in characters (under the engine's own limit): a chunk is also one caption
    /// cue, so this is the longest caption too.
    pub chunk_chars: usize,
    /// Tries per chunk on a transient failure (429, 5xx, timeout) before the step is retried.
    pub chunk_attempts: u32,
    /// Hosted engines by name (`[tts.providers.NAME]`); "espeak" is always there.
    pub providers: BTreeMap<String, HostedConfig>,
}

impl Default for TtsConfig {
    fn default() -> Self {
        Self {
            espeak_binary: "espeak-ng".into(),
            words_per_minute: 175,
            timeout_secs: 60,
            parallel: 4,
            chunk_chars: 180,
            chunk_attempts: 4,
            providers: BTreeMap::new(),
        }
    }
}
