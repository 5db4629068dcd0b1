//! The speak and check steps: the narration synthesised and measured, then every input checked
//! as the provider will fetch it (and a narration over its limit handled by the source's policy)
//! before anything is paid.

use serde_json::json;

use super::plan_steps::{chain, skipped};
use super::steps::{advance, fail, input_urls, plugin_failed, stored_plan, Outcome};
use super::{Category, State};
use crate::app::App;
use crate::checks::{self, CheckError};
use crate::config::TooLongPolicy;
use crate::generation::{Resolution, SubmitRequest};
use crate::plugins::{Decision, Plan};
use crate::store::{RenderRow, Transition};
use crate::tts::{narration, Lexicon};

/// Synthesises the narration with the source's engine for the plan's language (chunked, joined,
/// measured by decoding) and keeps its caption cues beside the audio.
pub(super) async fn speak(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let plan = stored_plan(render)?;
    let source = app.store.event_content(&render.event_id).await?.source;
    let Spoken {
        engine: engine_name,
        pronounced,
        narration: spoken,
    } = narrate(app, &source, &plan).await?;
    let narration = match spoken {
        Ok(narration) => narration,
        Err(err) if err.is_transient() => {
            return Ok(Outcome::Retry {
                to: State::Speak,
                category: Category::TtsError,
                error: err.to_string(),
                delay: None,
            })
        }
        Err(err) => return Ok(fail(Category::TtsError, err)),
    };
    let key = format!("audio/{}.wav", render.id);
    app.media.put(&key, &narration.wav).await?;
    crate::tts::captions::save_cues(&app.media, &render.id, &narration.cues).await?;
    let mut provenance: serde_json::Value =
        serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))?;
    provenance["voice"] = json!(narration.voice_id);
    provenance["speech"] = json!({
        "engine": engine_name, "chunks": narration.chunks, "cues": narration.cues.len(),
        "retries": narration.retries,
        "lexicon": pronounced,
    });
    let set = Transition {
        audio_key: Some(key),
        audio_seconds: Some(narration.seconds),
        provenance_json: Some(provenance.to_string()),
        ..Default::default()
    };
    Ok(advance(
        State::Check,
        set,
        format!(
            "{:.2} s of audio in {} chunk(s), {} caption cues ({}, {} retried)",
            narration.seconds,
            narration.chunks,
            narration.cues.len(),
            narration.voice_id,
            narration.retries
        ),
    ))
}

/// A plan's narration as `source` says it.
pub struct Spoken {
    /// The engine that spoke (or was to speak) it.
    pub engine: String,
    /// The lexicon's replacements, for provenance.
    pub pronounced: serde_json::Value,
    pub narration: Result<narration::Narration, crate::tts::TtsError>,
}

/// Synthesises `plan`'s speech with `source`'s engine for its language (or the one the plan
/// names), in its voice, through the source's lexicon: the speak step and the workspace's
/// preview hear the same thing.
pub async fn narrate(app: &App, source: &str, plan: &Plan) -> anyhow::Result<Spoken> {
    let engine_name = engine_for(app, source, plan);
    let lexicon = Lexicon::for_language(&app.store.lexicon(source).await?, &plan.language);
    let (_, pronounced) = lexicon.apply(&plan.speech_text);
    let narration = match app.tts.pick(&engine_name, &plan.voice, &plan.language) {
        Ok((engine, voice)) => {
            let options = narration::Options::from(&app.config.tts);
            // Hosted engines bill per character: their chunks are kept so a retry pays only
            // for the chunks that failed. The local engine costs nothing to ask again.
            let cache = (engine_name != crate::tts::ESPEAK).then_some(&app.media);
            narration::narrate(
                engine.as_ref(),
                &voice,
                &plan.language,
                &plan.speech_text,
                &lexicon,
                options,
                cache,
            )
            .await
        }
        Err(err) => Err(err),
    };
    Ok(Spoken {
        engine: engine_name,
        pronounced: serde_json::to_value(pronounced)?,
        narration,
    })
}

/// The engine `plan` is spoken with: the one it names, else `source`'s for its language.
fn engine_for(app: &App, source: &str, plan: &Plan) -> String {
    match (plan.tts_provider.as_str(), app.config.sources.get(source)) {
        ("", Some(source)) => source.settings.tts_engine(&plan.language).to_string(),
        ("", None) => crate::tts::ESPEAK.to_string(),
        (named, _) => named.to_string(),
    }
}

/// What [`narrate`] would cost: the engine, and the characters it would be sent (the lexicon
/// applied), priced. Told to an editor before a preview's narration is synthesised.
pub async fn speech_cost(
    app: &App,
    source: &str,
    plan: &Plan,
) -> anyhow::Result<crate::tts::SpeechCost> {
    let engine_name = engine_for(app, source, plan);
    let lexicon = Lexicon::for_language(&app.store.lexicon(source).await?, &plan.language);
    let options = narration::Options::from(&app.config.tts);
    let characters = match app.tts.pick(&engine_name, &plan.voice, &plan.language) {
        Ok((engine, _)) => {
            narration::characters_sent(engine.as_ref(), &plan.speech_text, &lexicon, options)
        }
        // An engine that is not configured is never sent anything.
        Err(_) => 0,
    };
    Ok(app.tts.cost(&engine_name, characters))
}

/// Over the limit, with the source's policy "shorten": the last plugin of the chain that exports
/// `shorten` (WIT 0.1.2) is asked, once per render, for a shorter plan with the limit and the
/// measured duration; the new plan is then spoken (and measured) again. Asked before, or no
/// plugin can: the render fails with the measured and allowed seconds.
async fn shorten(
    app: &App,
    render: &RenderRow,
    plan: &Plan,
    limit: f64,
    measured: f64,
) -> anyhow::Result<Outcome> {
    let too_long = |why: &str| {
        fail(
            Category::InputInvalid,
            format!(
                "the narration is {measured:.1} s; at {} the provider accepts at most {limit:.0} s \
                 ({why})",
                plan.resolution.as_str()
            ),
        )
    };
    let mut provenance: serde_json::Value =
        serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))?;
    if provenance.get("shortened").is_some() {
        return Ok(too_long("still, after the plugin shortened it once"));
    }
    let content = app.store.event_content(&render.event_id).await?;
    let Some(source) = app.config.sources.get(&content.source) else {
        return Ok(too_long("its source is no longer configured"));
    };
    let templates = std::sync::Arc::new(crate::templates::TemplateSet::load(&app.store).await?);
    for (reference, config) in chain(render, source)?.into_iter().rev() {
        let plugin = match app.plugins.resolve_for(&content.source, &reference).await {
            Ok(plugin) => plugin,
            Err(err) => return Ok(fail(Category::PluginError, err)),
        };
        if !plugin.can_shorten() {
            continue;
        }
        let asked = (limit, measured);
        let run = match app
            .plugins
            .shorten(&plugin, &content, plan, asked, templates.clone(), &config)
            .await
        {
            Ok(run) => run,
            Err(err) => return Ok(plugin_failed(&templates, err)),
        };
        provenance["shortened"] = json!({
            "plugin": plugin.id(), "measured_seconds": measured, "limit_seconds": limit,
            "usage": run.usage, "logs": run.logs,
        });
        let shorter = match run.decision {
            Decision::Skip(reason) => {
                let detail = format!("{} skipped while shortening: {reason}", plugin.id());
                return Ok(skipped(provenance, detail));
            }
            Decision::Generate(plans) => plans.into_iter().next(),
        };
        let Some(mut shorter) = shorter else {
            return Ok(too_long("the plugin returned no plan"));
        };
        shorter.key = plan.key.clone();
        shorter.note_shortening(&content);
        let detail = format!(
            "{measured:.1} s is over the {limit:.0} s limit: {} shortened the script to {} words; \
             speaking it again",
            plugin.id(),
            shorter.speech_text.split_whitespace().count()
        );
        let set = Transition {
            plan_json: Some(serde_json::to_string(&shorter)?),
            provenance_json: Some(provenance.to_string()),
            ..Default::default()
        };
        return Ok(advance(State::Speak, set, detail));
    }
    Ok(too_long("no plugin of the chain exports `shorten`"))
}

/// The inputs exactly as the provider will fetch them: costs nothing, catches what would be a
/// wasted credit.
pub(super) async fn check(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let mut plan = stored_plan(render)?;
    // Too long for 1080p but fine at 720p: the source's policy decides.
    let seconds = render.audio_seconds.unwrap_or_default();
    let source = app.store.event_content(&render.event_id).await?.source;
    let source_config = app.config.sources.get(&source);
    let policy = source_config
        .map(|s| s.settings.too_long_for_1080p)
        .unwrap_or_default();
    // The longest narration a host this render may go to accepts: its own, or with routing by
    // limits, the longest of its source's hosts.
    let current = app.hosts.for_render(render.provider.as_deref(), &source);
    let limit = app
        .hosts
        .longest_accepted(&source, current, plan.resolution);
    if seconds > limit && policy == TooLongPolicy::Shorten {
        return shorten(app, render, &plan, limit, seconds).await;
    }
    let mut fell_back = None;
    if plan.resolution == Resolution::P1080
        && seconds > limit
        && seconds
            <= app
                .hosts
                .longest_accepted(&source, current, Resolution::P720)
        && policy == TooLongPolicy::Fallback720p
    {
        plan.resolution = Resolution::P720;
        fell_back = Some(serde_json::to_string(&plan)?);
    }
    let routed = app.hosts.routed(&source, current, seconds, plan.resolution);
    let host = routed.unwrap_or(current);
    let (image_url, audio_url) = input_urls(app, render, &plan).await?;
    let inputs = checks::Inputs {
        image_url,
        audio_url,
        prompt: plan.prompt.clone(),
        resolution: plan.resolution,
        max_audio_seconds: host.provider.max_audio_seconds(plan.resolution),
    };
    let report = match checks::check(&app.inputs, &inputs).await {
        Ok(report) => report,
        Err(CheckError::Invalid(message)) => return Ok(fail(Category::InputInvalid, message)),
        Err(CheckError::Unreachable(message)) => {
            let category = Category::InputInvalid;
            return Ok(Outcome::Retry {
                to: State::Check,
                category,
                error: message,
                delay: None,
            });
        }
    };
    let mut detail = match &fell_back {
        Some(_) => format!(
            "{seconds:.1} s is too long for 1080p: falling back to 720p (source policy); {report}"
        ),
        None => report,
    };
    if let Some(host) = routed {
        detail = format!(
            "{seconds:.1} s is over {}'s {:.0} s limit at {}: routed to {}, which accepts {:.0} s \
             (the source routes by limits); {detail}",
            current.name,
            current.provider.max_audio_seconds(plan.resolution),
            plan.resolution.as_str(),
            host.name,
            host.provider.max_audio_seconds(plan.resolution),
        );
    }
    let mut set = Transition {
        plan_json: fell_back,
        provider: routed.map(|host| host.name.clone()),
        ..Default::default()
    };
    if source_config.is_some_and(|s| s.settings.approval) && render.approved_at.is_none() {
        // The approval gate: a $0 local preview from the very same inputs, for an editor.
        let request = SubmitRequest {
            render_id: render.id.clone(),
            image_url: inputs.image_url.clone(),
            audio_url: inputs.audio_url.clone(),
            audio_seconds: seconds,
            prompt: inputs.prompt.clone(),
            resolution: inputs.resolution,
            turbo: plan.turbo,
            webhook_url: None,
            idempotency_key: String::new(),
        };
        let key = match app.preview.approval_preview(&request).await {
            Ok(key) => key,
            Err(err) => {
                let error = format!("preview: {err}");
                return Ok(Outcome::Retry {
                    to: State::Check,
                    category: Category::Internal,
                    error,
                    delay: None,
                });
            }
        };
        // The key, not a link: links are signed for editors when they ask (the API), and
        // nothing a viewer reads names the file.
        set.preview_url = Some(key);
        return Ok(advance(
            State::AwaitingApproval,
            set,
            format!("{detail}; a $0 preview is ready for approval"),
        ));
    }
    Ok(advance(State::Submit, set, detail))
}
