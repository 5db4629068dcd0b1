//! A template draft against real content, before anything is saved or paid: the source's own
//! plugin chain (minus the plugins switched off for it) plans with the draft in place of the
//! stored version, and each planned video's script and prompt come back with a duration estimate
//! (at the engines' pace) against its resolution's limit — and, when asked, the duration of the
//! narration actually synthesised with the source's engine and lexicon (what the speak step
//! would hear), which an editor can listen to. A hosted engine's price is said before that.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::app::App;
use crate::content::Content;
use crate::plugins::Decision;
use crate::templates::{RenderFailure, TemplateError, TemplateSet};

/// Previews run at once across all callers; more wait up to [`WAIT`] for a slot, then are told to
/// retry (503): typing in several tabs must not take the workers' CPU.
pub const MAX_AT_ONCE: usize = 4;

/// How long a preview waits for a slot.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether the preview synthesises the narration (which a hosted engine bills).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Speak {
    /// Estimate the duration only.
    No,
    /// Synthesise every video's narration and measure it.
    Measure,
    /// Synthesise one video's narration (by key; none: the first) and keep its audio to listen to.
    Listen(Option<String>),
}

/// The template being edited: its name, body and version (0: not saved yet).
pub struct Draft<'a> {
    pub name: &'a str,
    pub version: i64,
    pub body: &'a str,
}

/// What the chain made of the content with the draft.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// One per video the content would make (several for a multilingual chain).
    pub videos: Vec<PreviewVideo>,
    /// Set when a plugin skipped the content (no video would be made).
    pub skipped: Option<String>,
    /// The template versions used (0: the draft).
    pub templates: BTreeMap<String, i64>,
    /// The fields the chain gave the draft's template for this content (none: it did not
    /// render the template for it).
    pub fields: Option<Vec<crate::templates::fields::Field>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PreviewVideo {
    pub key: String,
    pub language: String,
    pub script: String,
    pub prompt: String,
    /// "720p" or "1080p".
    pub resolution: String,
    pub words: usize,
    /// Words at the speech engines' pace (`[tts] words_per_minute`): what the narration will
    /// take when spoken, whatever pace the plugins assumed when they fitted the script.
    pub estimated_seconds: f64,
    /// The provider's limit for this resolution (60 s at 720p, 30 s at 1080p).
    pub limit_seconds: f64,
    /// Measured from synthesised audio, when asked for.
    pub synthesized_seconds: Option<f64>,
    /// How much of the content's text the narration keeps, when a plugin cut it to fit.
    pub shortened: Option<crate::content::WordsKept>,
    /// What synthesising this narration costs (shown before an editor asks for it).
    pub speech: crate::tts::SpeechCost,
    /// The narration's WAV, when listened to ([`Speak::Listen`]); sent as audio, not JSON.
    #[serde(skip)]
    pub audio: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The draft (or a template it uses) does not compile or render (strict mode).
    #[error(transparent)]
    Template(RenderFailure),
    #[error("no source named {0:?}")]
    UnknownSource(String),
    /// A plugin failed for another reason (its message says why).
    #[error("the plugin chain failed: {0}")]
    Plugin(String),
    #[error("speech synthesis failed: {0}")]
    Speech(String),
    /// Every preview slot stayed busy for [`WAIT`].
    #[error("too many previews at once; retry in a moment")]
    Busy,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<TemplateError> for PreviewError {
    fn from(err: TemplateError) -> Self {
        match err {
            TemplateError::Render(failure) => PreviewError::Template(failure),
            TemplateError::Invalid { message, at } => PreviewError::Template(RenderFailure {
                name: String::new(),
                version: 0,
                message,
                at,
            }),
            other => PreviewError::Internal(other.into()),
        }
    }
}

/// Runs `source`'s chain over `content` with `draft` in place of its stored template.
pub async fn preview(
    app: &App,
    source: &str,
    mut content: Content,
    draft: Draft<'_>,
    speak: Speak,
) -> Result<Preview, PreviewError> {
    let _slot = tokio::time::timeout(WAIT, app.preview_slots.acquire())
        .await
        .map_err(|_| PreviewError::Busy)?
        .map_err(|_| PreviewError::Busy)?;
    let settings = &app
        .config
        .sources
        .get(source)
        .ok_or_else(|| PreviewError::UnknownSource(source.to_string()))?
        .settings;
    let templates =
        TemplateSet::load_with(&app.store, Some((draft.name, draft.version, draft.body)))
            .await?
            .recording_contexts();
    // Compiles and runs within budget whatever the content (a chain may not render it at all).
    templates.test_render(draft.name).await?;
    let templates = Arc::new(templates);
    content.source = source.to_string();
    if content.image.is_none() {
        content.image = settings.presenter_image.clone();
    }
    let chain: Vec<_> = crate::jobs::enabled_chain(&app.store, source, &settings.plugins)
        .await
        .map_err(anyhow::Error::from)?
        .into_iter()
        .map(|p| (p.name.clone(), p.config.clone()))
        .collect();
    let decision = app
        .plugins
        .run_chain(&chain, &content, templates.clone())
        .await;
    let plans = match decision {
        Ok(Decision::Generate(plans)) => plans,
        Ok(Decision::Skip(reason)) => {
            return Ok(Preview {
                videos: Vec::new(),
                skipped: Some(reason),
                templates: templates.used(),
                fields: templates.fields_of(draft.name),
            })
        }
        // A template failure reaches a plugin as a message; the set knows where it was.
        Err(err) => {
            return Err(match templates.failure() {
                Some(failure) => PreviewError::Template(failure),
                None => PreviewError::Plugin(err.to_string()),
            })
        }
    };
    let pace = f64::from(app.config.tts.words_per_minute.max(1));
    let mut videos = Vec::with_capacity(plans.len());
    for (i, plan) in plans.iter().enumerate() {
        let words = plan.speech_text.split_whitespace().count();
        let listen = match &speak {
            Speak::Listen(None) => i == 0,
            Speak::Listen(Some(key)) => *key == plan.key,
            _ => false,
        };
        let (synthesized_seconds, audio) = if listen || speak == Speak::Measure {
            let spoken = crate::jobs::narrate(app, source, plan).await?;
            let narration = spoken
                .narration
                .map_err(|e| PreviewError::Speech(e.to_string()))?;
            (Some(narration.seconds), listen.then_some(narration.wav))
        } else {
            (None, None)
        };
        videos.push(PreviewVideo {
            key: plan.key.clone(),
            language: plan.language.clone(),
            script: plan.script.clone(),
            prompt: plan.prompt.clone(),
            resolution: plan.resolution.as_str().to_string(),
            words,
            estimated_seconds: words as f64 * 60.0 / pace,
            limit_seconds: plan.resolution.max_audio_seconds(),
            synthesized_seconds,
            shortened: plan.shortening(&content),
            speech: crate::jobs::speech_cost(app, source, plan).await?,
            audio,
        });
    }
    Ok(Preview {
        videos,
        skipped: None,
        templates: templates.used(),
        fields: templates.fields_of(draft.name),
    })
}
