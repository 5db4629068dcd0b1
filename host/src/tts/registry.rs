//! The engines vidhook can speak with, and which one (and which voice) a plan gets.
//!
//! Adding a hosted engine: write its file (a type implementing [`Hosted`]) and add one line to
//! `engines!` below; its `kind = "…"` is the snake-cased variant name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::{Espeak, Tts, TtsConfig, TtsError};

/// A hosted engine: built from its `[tts.providers.NAME]` settings and a guarded HTTP client.
pub trait Hosted: Tts + Sized + 'static {
    type Settings: for<'de> Deserialize<'de> + Clone + std::fmt::Debug;
    fn new(settings: Self::Settings, http: reqwest::Client) -> Self;
    /// The credential, checked non-empty at start-up like every secret.
    fn api_key(settings: &Self::Settings) -> &str;
    /// Where requests go, checked against the outbound guard at start-up.
    fn base_url(settings: &Self::Settings) -> &str;
}

macro_rules! engines {
    ($($kind:ident => $engine:ty),* $(,)?) => {
        /// `[tts.providers.NAME]`'s engine: `kind` picks it, the other keys are its settings.
        #[derive(Debug, Clone, Deserialize)]
        #[serde(tag = "kind", rename_all = "snake_case")]
        pub enum Engine { $($kind(<$engine as Hosted>::Settings)),* }

        impl Engine {
            fn build(&self, http: reqwest::Client) -> Arc<dyn Tts> {
                match self { $(Engine::$kind(s) => Arc::new(<$engine>::new(s.clone(), http))),* }
            }

            pub fn api_key(&self) -> &str {
                match self { $(Engine::$kind(s) => <$engine>::api_key(s)),* }
            }

            fn base_url(&self) -> &str {
                match self { $(Engine::$kind(s) => <$engine>::base_url(s)),* }
            }
        }
    };
}

engines! {
    Openai => super::openai::OpenAi,
    Elevenlabs => super::elevenlabs::ElevenLabs,
}

/// `[tts.providers.NAME]`.
#[derive(Debug, Clone, Deserialize)]
pub struct HostedConfig {
    #[serde(flatten)]
    pub engine: Engine,
    /// The voice when the locale has none in `voices` (else the plan's voice is used).
    pub voice: Option<String>,
    /// Voices by locale ("de" or "de-at"; the exact locale wins over its language).
    #[serde(default)]
    pub voices: BTreeMap<String, String>,
    /// What the engine charges, in US cents per million characters sent (OpenAI's tts-1 lists
    /// $15, so 1500): shown to an editor before a preview is synthesised. Unset: the page says
    /// the engine bills per character at the account's own price.
    pub cents_per_million_chars: Option<u64>,
}

/// What synthesising a text would cost, said before it is spent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct SpeechCost {
    /// The engine's name (`espeak`, or a `[tts.providers.NAME]`).
    pub engine: String,
    /// A hosted engine bills for each request; the local one costs nothing.
    pub hosted: bool,
    /// Characters that would be sent (after the pronunciation lexicon).
    pub characters: usize,
    /// The price in US cents, when the engine's price is configured (0 for the local engine).
    pub cents: Option<f64>,
}

/// The name of the local engine, always available.
pub const ESPEAK: &str = "espeak";

/// Every configured engine by name.
pub struct Speakers {
    engines: BTreeMap<String, (Arc<dyn Tts>, Option<HostedConfig>)>,
}

impl Speakers {
    /// Hosted engines get clients that pass the outbound guard, like every request we make; an
    /// engine whose `base_url` the guard refuses (a private address not allowed) is an error.
    pub fn build(config: &TtsConfig, guard: &crate::outbound::Guard) -> Result<Speakers, String> {
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let espeak: Arc<dyn Tts> = Arc::new(Espeak::new(
            config.espeak_binary.clone(),
            config.words_per_minute,
            timeout,
        ));
        let mut engines = BTreeMap::from([(ESPEAK.to_string(), (espeak, None))]);
        for (name, hosted) in &config.providers {
            guard
                .configured_url(hosted.engine.base_url())
                .map_err(|e| format!("[tts.providers.{name}] base_url: {e}"))?;
            let engine = hosted.engine.build(guard.client(timeout));
            engines.insert(name.clone(), (engine, Some(hosted.clone())));
        }
        Ok(Speakers { engines })
    }

    /// The engine called `name` and the voice it speaks `language` with: the engine's voice for
    /// the locale, else for its language, else its default voice, else `plan_voice`.
    pub fn pick(
        &self,
        name: &str,
        plan_voice: &str,
        language: &str,
    ) -> Result<(Arc<dyn Tts>, String), TtsError> {
        let (engine, hosted) = self
            .engines
            .get(name)
            .ok_or_else(|| TtsError::UnknownProvider(name.to_string()))?;
        let voice = hosted.as_ref().and_then(|h| {
            super::by_locale(&h.voices, language)
                .or(h.voice.as_ref())
                .cloned()
        });
        Ok((
            engine.clone(),
            voice.unwrap_or_else(|| plan_voice.to_string()),
        ))
    }

    /// What sending `characters` to engine `name` costs (an unknown engine is priced as hosted
    /// with no price: it would fail before spending anything, but nothing is promised).
    pub fn cost(&self, name: &str, characters: usize) -> SpeechCost {
        let hosted = self.engines.get(name).map(|(_, hosted)| hosted);
        let cents = match hosted {
            Some(None) => Some(0.0),
            Some(Some(h)) => h
                .cents_per_million_chars
                .map(|price| price as f64 * characters as f64 / 1e6),
            None => None,
        };
        SpeechCost {
            engine: name.to_string(),
            hosted: !matches!(hosted, Some(None)),
            characters,
            cents,
        }
    }

    /// Whether `name` is configured.
    pub fn has(&self, name: &str) -> bool {
        name == ESPEAK || self.engines.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> TtsConfig {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn a_hosted_engine_is_priced_per_character_and_the_local_one_is_free() {
        let speakers = Speakers::build(
            &config(
                r#"
                [providers.openai]
                kind = "openai"
                api_key = "k"
                cents_per_million_chars = 1500
                [providers.eleven]
                kind = "elevenlabs"
                api_key = "k"
                "#,
            ),
            &crate::outbound::Guard::strict(),
        )
        .unwrap();
        let openai = speakers.cost("openai", 2_000);
        assert!(openai.hosted);
        assert_eq!(openai.cents, Some(3.0));
        let eleven = speakers.cost("eleven", 2_000);
        assert!(eleven.hosted && eleven.cents.is_none());
        let local = speakers.cost(ESPEAK, 2_000);
        assert!(!local.hosted && local.cents == Some(0.0));
    }

    #[test]
    fn voices_are_picked_by_locale_then_language_then_default_then_plan() {
        let speakers = Speakers::build(
            &config(
                r#"
                [providers.eleven]
                kind = "elevenlabs"
                api_key = "k"
                voice = "default-voice"
                voices = { de = "german", "de-at" = "austrian" }
                "#,
            ),
            &crate::outbound::Guard::strict(),
        )
        .unwrap();
        let voice = |lang: &str| speakers.pick("eleven", "en-us", lang).unwrap().1;
        assert_eq!(voice("de-AT"), "austrian");
        assert_eq!(voice("de-DE"), "german");
        assert_eq!(voice("fr"), "default-voice");
        assert_eq!(speakers.pick(ESPEAK, "fr-fr", "fr").unwrap().1, "fr-fr");
        assert!(matches!(
            speakers.pick("polly", "x", "en"),
            Err(TtsError::UnknownProvider(_))
        ));
    }

    #[test]
    fn a_private_base_url_is_refused_unless_allowed() {
        let config = config(
            "[providers.local]\nkind = \"openai\"\napi_key = \"k\"\nbase_url = \"http://127.0.0.1:9\"\n",
        );
        let err = Speakers::build(&config, &crate::outbound::Guard::strict())
            .err()
            .unwrap();
        assert!(err.contains("loopback"), "{err}");
        let dev = crate::outbound::Config {
            allow_private: vec!["127.0.0.0/8".into()],
        };
        let guard = crate::outbound::Guard::new(&dev, true).unwrap();
        assert!(Speakers::build(&config, &guard).is_ok());
    }

    #[test]
    fn an_unknown_engine_kind_is_a_config_error() {
        let err = toml::from_str::<TtsConfig>("[providers.x]\nkind = \"polly\"\napi_key = \"k\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("polly"), "{err}");
    }
}
