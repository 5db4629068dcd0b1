//! The steps. Each reads what earlier steps committed, does one side effect, and says what to
//! commit next ([`Outcome`]); none of them writes render state itself, except `submit`, which
//! records `submitting` before the paid call. The provider's steps live in `provider_steps`.

use std::time::Duration;

use serde_json::json;

use super::lease::Lease;
use super::{provider_steps, Category, State};
use crate::app::App;
use crate::checks::{self, CheckError};
use crate::cms::WriteBackError;
use crate::config::TooLongPolicy;
use crate::content::Content;
use crate::generation::{JobStatus, Resolution, SubmitRequest};
use crate::plugins::{Decision, Plan};
use crate::store::{RenderRow, Transition, WriteBackGate};
use crate::tts::{narration, Lexicon};

/// What a step wants committed.
pub enum Outcome {
    /// Move on to `to`, storing the non-`None` fields of `set`.
    Advance {
        to: State,
        set: Box<Transition>,
        run_after: Option<i64>,
        detail: String,
        /// Further renders of the same event: (plan key, plan JSON, first state).
        siblings: Vec<(String, String, String)>,
    },
    /// Stay in this state until `until` (polling a provider job).
    Wait { until: i64, detail: String },
    /// Stay in this state until `until`, visibly held back for `reason` (e.g. over budget).
    Held {
        until: i64,
        category: Category,
        reason: String,
    },
    /// A transient failure: try again (from `to`) after a delay; gives up after the configured
    /// attempts with `category`.
    Retry {
        to: State,
        category: Category,
        error: String,
        delay: Option<Duration>,
    },
    /// A final failure.
    Fail { category: Category, error: String },
    /// The paid call's outcome is unknown: go to `reconciling` until `until`, with the reason.
    Reconcile { until: i64, reason: String },
    /// A person must decide (e.g. a paid submit whose outcome is unknown).
    Park { error: String },
    /// Another worker owns the render now: commit nothing.
    LeaseLost,
}

pub(super) fn advance(to: State, set: Transition, detail: impl Into<String>) -> Outcome {
    Outcome::Advance {
        to,
        set: Box::new(set),
        run_after: None,
        detail: detail.into(),
        siblings: Vec::new(),
    }
}

pub(super) fn fail(category: Category, error: impl ToString) -> Outcome {
    Outcome::Fail {
        category,
        error: error.to_string(),
    }
}

/// True for an unpaid render of a cancelled run: the cancel found it mid-step (leased), so it
/// ends here instead (the claim picks such renders up for this).
async fn run_cancelled(app: &App, render: &RenderRow) -> anyhow::Result<bool> {
    let Some(run) = &render.run_id else {
        return Ok(false);
    };
    if !crate::store::PREPAID_STATES.contains(&render.state.as_str()) {
        return Ok(false);
    }
    Ok(app
        .store
        .run(run)
        .await?
        .is_some_and(|r| r.state == crate::store::RunState::Cancelled))
}

/// Runs the step the render is at.
pub async fn run(app: &App, lease: &Lease, render: &RenderRow) -> Outcome {
    let Some(state) = State::parse(&render.state) else {
        return fail(
            Category::Internal,
            format!("unknown state {:?}", render.state),
        );
    };
    match run_cancelled(app, render).await {
        Ok(true) => {
            let set = Transition {
                error_category: Some("cancelled".into()),
                error: Some("its run was cancelled before its paid call".into()),
                ..Default::default()
            };
            return advance(State::Skipped, set, "its run was cancelled: nothing paid");
        }
        Ok(false) => {}
        Err(err) => {
            return Outcome::Retry {
                to: state,
                category: Category::Internal,
                error: format!("{err:#}"),
                delay: None,
            }
        }
    }
    let result = match state {
        State::Plan => plan(app, render).await,
        State::Speak => speak(app, render).await,
        State::Check => check(app, render).await,
        State::Submit => provider_steps::submit(app, lease, render).await,
        State::Submitting | State::Reconciling => {
            provider_steps::reconcile(app, lease, render).await
        }
        State::Await => provider_steps::await_job(app, render).await,
        State::Keep => super::bundle::keep_video(app, render).await,
        State::WriteBack => write_back(app, render).await,
        State::Done
        | State::Skipped
        | State::Failed
        | State::NeedsAttention
        | State::DryRun
        | State::AwaitingApproval
        | State::WritebackFailed => Ok(fail(
            Category::Internal,
            "claimed a render in a final state",
        )),
    };
    // Store errors are transient by nature (database restarting, busy): retry the same step.
    result.unwrap_or_else(|err| Outcome::Retry {
        to: state,
        category: Category::Internal,
        error: format!("{err:#}"),
        delay: None,
    })
}

/// The media keys a render's plan may name (and have re-signed): its narration and the presenter
/// photo its source configured. Nothing else of ours.
pub(super) fn own_media_keys(render: &RenderRow) -> Vec<String> {
    let presenter = render
        .provenance_json
        .as_deref()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| p["presenter_image_key"].as_str().map(str::to_owned));
    render
        .audio_key
        .clone()
        .into_iter()
        .chain(presenter)
        .collect()
}

/// The image and audio URLs a provider is given for `plan`: our own re-signed, and with a
/// bucket as the media store, presigned bucket URLs (the provider fetches them there).
pub(super) async fn input_urls(
    app: &App,
    render: &RenderRow,
    plan: &Plan,
) -> anyhow::Result<(String, String)> {
    let audio_key = render
        .audio_key
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no audio"))?;
    let image = app.media.refresh(&plan.image_url, &own_media_keys(render));
    let audio = app.media.url(audio_key);
    Ok((
        app.media.external_url(&image).await?,
        app.media.external_url(&audio).await?,
    ))
}

pub(super) fn stored_plan(render: &RenderRow) -> anyhow::Result<Plan> {
    let json = render
        .plan_json
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("render has no plan"))?;
    Ok(serde_json::from_str(json)?)
}

/// The plugin chain a render runs, each with the source's settings for it: the versions pinned
/// when its event was accepted (the source's chain for older renders).
fn chain(
    render: &RenderRow,
    source: &crate::config::SourceConfig,
) -> anyhow::Result<Vec<(String, std::collections::BTreeMap<String, String>)>> {
    let references: Vec<String> = match &render.plugins_json {
        Some(json) => serde_json::from_str(json)?,
        None => source
            .settings
            .plugins
            .iter()
            .map(|p| p.name.clone())
            .collect(),
    };
    Ok(references
        .into_iter()
        .map(|reference| {
            let name = reference.split('@').next().unwrap_or(&reference);
            let config = source
                .settings
                .plugins
                .iter()
                .find(|p| p.name.split('@').next() == Some(name))
                .map(|p| p.config.clone())
                .unwrap_or_default();
            (reference, config)
        })
        .collect())
}

/// Runs the source's plugin chain over the content; one render per plan it returns.
async fn plan(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let mut content = app.store.event_content(&render.event_id).await?;
    let Some(source) = app.config.sources.get(&content.source) else {
        return Ok(fail(
            Category::Internal,
            format!("source {:?} is no longer configured", content.source),
        ));
    };
    if content.cms == crate::content::DIGEST_CMS {
        return plan_digest(app, content, source).await;
    }
    let presenter_key = match resolve_image(app, source, &mut content).await {
        Ok(key) => key,
        Err(reason) => return Ok(fail(Category::InputInvalid, reason)),
    };
    let templates = std::sync::Arc::new(crate::templates::TemplateSet::load(&app.store).await?);
    let mut draft: Vec<Plan> = Vec::new();
    let mut runs = Vec::new();
    for (reference, config) in chain(render, source)? {
        let plugin = match app.plugins.resolve(&reference).await {
            Ok(plugin) => plugin,
            Err(err) => return Ok(fail(Category::PluginError, err)),
        };
        let run = match app
            .plugins
            .plan(&plugin, &content, &draft, templates.clone(), &config)
            .await
        {
            Ok(run) => run,
            Err(err) => return Ok(fail(Category::PluginError, err)),
        };
        runs.push(json!({
            "plugin": plugin.id(), "digest": plugin.digest, "usage": run.usage, "logs": run.logs,
        }));
        match run.decision {
            Decision::Skip(reason) => {
                let provenance = provenance(&content, &runs, &templates);
                return Ok(skipped(
                    provenance,
                    format!("{} skipped: {reason}", plugin.id()),
                ));
            }
            Decision::Generate(plans) => draft = plans,
        }
    }
    let mut provenance = provenance(&content, &runs, &templates);
    if let Some(key) = presenter_key {
        provenance["presenter_image_key"] = json!(key);
    }
    generate(draft, provenance)
}

/// The photo a content names (an https URL the outbound guard allows), else the source's
/// `presenter_image` (a local file is copied into the media store: its key is returned). Content
/// may never name a local file.
async fn resolve_image(
    app: &App,
    source: &crate::config::SourceConfig,
    content: &mut Content,
) -> Result<Option<String>, String> {
    let mut presenter_key = None;
    content.image = match (&content.image, &source.settings.presenter_image) {
        (Some(named), _) => match app.guard.parse_url(named) {
            Ok(url) => Some(url.to_string()),
            Err(err) => {
                return Err(format!(
                    "the entry's image: {err}; content may name only https URLs"
                ))
            }
        },
        (None, Some(configured)) => {
            let (url, key) = app.presenter_image(configured).await?;
            presenter_key = key;
            Some(url)
        }
        (None, None) => None,
    };
    Ok(presenter_key)
}

/// A scheduled digest: its items (in the event's fields) go to the source's digest plugin.
async fn plan_digest(
    app: &App,
    content: Content,
    source: &crate::config::SourceConfig,
) -> anyhow::Result<Outcome> {
    let Some(digest) = &source.settings.digest else {
        return Ok(fail(
            Category::Internal,
            format!("source {:?} no longer has a [digest] table", content.source),
        ));
    };
    let mut items: Vec<Content> = serde_json::from_value(content.fields["items"].clone())?;
    let mut presenter_key = None;
    for item in &mut items {
        match resolve_image(app, source, item).await {
            Ok(key) => presenter_key = presenter_key.or(key),
            Err(reason) => {
                tracing::warn!(source = %content.source, entry = %item.id, reason, "digest item's image left out");
                item.image = None;
            }
        }
    }
    let templates = std::sync::Arc::new(crate::templates::TemplateSet::load(&app.store).await?);
    let plugin = match app.plugins.resolve(&digest.plugin).await {
        Ok(plugin) => plugin,
        Err(err) => return Ok(fail(Category::PluginError, err)),
    };
    let run = match app
        .plugins
        .digest(&plugin, &items, templates.clone(), &digest.config)
        .await
    {
        Ok(run) => run,
        Err(err) => return Ok(fail(Category::PluginError, err)),
    };
    let runs = [json!({
        "plugin": plugin.id(), "digest": plugin.digest, "usage": run.usage, "logs": run.logs,
    })];
    let mut provenance = provenance(&content, &runs, &templates);
    provenance["items"] = items.iter().map(|i| json!(i.id)).collect();
    if let Some(key) = presenter_key {
        provenance["presenter_image_key"] = json!(key);
    }
    match run.decision {
        Decision::Skip(reason) => Ok(skipped(
            provenance,
            format!("{} skipped: {reason}", plugin.id()),
        )),
        Decision::Generate(plans) => generate(plans, provenance),
    }
}

/// A plugin decided there is no video to make.
fn skipped(provenance: serde_json::Value, detail: String) -> Outcome {
    let set = Transition {
        provenance_json: Some(provenance.to_string()),
        ..Default::default()
    };
    advance(State::Skipped, set, detail)
}

/// The plans the last plugin returned: this render takes the first, a sibling render each other.
fn generate(plans: Vec<Plan>, provenance: serde_json::Value) -> anyhow::Result<Outcome> {
    let provenance = provenance.to_string();
    let mut plans = plans.into_iter();
    let first = plans
        .next()
        .expect("the last plugin returned at least one plan");
    let siblings: Vec<(String, String, String)> = plans
        .map(|p| {
            Ok((
                p.key.clone(),
                serde_json::to_string(&p)?,
                State::Speak.as_str().to_string(),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let detail = format!(
        "{} video(s); this one {:?}: {} words at {}",
        siblings.len() + 1,
        first.key,
        first.script.split_whitespace().count(),
        first.resolution.as_str()
    );
    let set = Transition {
        plan_key: Some(first.key.clone()),
        plan_json: Some(serde_json::to_string(&first)?),
        provenance_json: Some(provenance),
        ..Default::default()
    };
    Ok(Outcome::Advance {
        to: State::Speak,
        set: Box::new(set),
        run_after: None,
        detail,
        siblings,
    })
}

/// What made this render: content, plugins (digest, version, usage), templates, WIT version.
fn provenance(
    content: &Content,
    runs: &[serde_json::Value],
    templates: &crate::templates::TemplateSet,
) -> serde_json::Value {
    json!({
        "content": {"source": content.source, "id": content.id, "revision": content.revision,
                    "fingerprint": content.fingerprint(), "locale": content.locale},
        "wit": format!("{}@{}", crate::plugins::WIT_PACKAGE, crate::plugins::WIT_VERSION),
        "plugins": runs,
        "templates": templates.used(),
    })
}

/// Synthesises the narration with the source's engine for the plan's language (chunked, joined,
/// measured by decoding) and keeps its caption cues beside the audio.
async fn speak(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let plan = stored_plan(render)?;
    let source = app.store.event_content(&render.event_id).await?.source;
    let engine_name = match (plan.tts_provider.as_str(), app.config.sources.get(&source)) {
        ("", Some(source)) => source.settings.tts_engine(&plan.language).to_string(),
        ("", None) => crate::tts::ESPEAK.to_string(),
        (named, _) => named.to_string(),
    };
    let (engine, voice) = match app.tts.pick(&engine_name, &plan.voice, &plan.language) {
        Ok(picked) => picked,
        Err(err) => return Ok(fail(Category::TtsError, err)),
    };
    let lexicon = Lexicon::for_language(&app.store.lexicon(&source).await?, &plan.language);
    let (_, pronounced) = lexicon.apply(&plan.speech_text);
    let options = narration::Options::from(&app.config.tts);
    // Hosted engines bill per character: their chunks are kept so a retry pays only for the
    // chunks that failed. The local engine costs nothing to ask again.
    let cache = (engine_name != crate::tts::ESPEAK).then_some(&app.media);
    let spoken = narration::narrate(
        engine.as_ref(),
        &voice,
        &plan.language,
        &plan.speech_text,
        &lexicon,
        options,
        cache,
    )
    .await;
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
    let cues = serde_json::to_vec(&narration.cues)?;
    app.media.put(&cues_key(&render.id), &cues).await?;
    let mut provenance: serde_json::Value =
        serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))?;
    provenance["voice"] = json!(narration.voice_id);
    provenance["speech"] = json!({
        "engine": engine_name, "chunks": narration.cues.len(), "retries": narration.retries,
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
            "{:.2} s of audio in {} chunk(s) ({}, {} retried)",
            narration.seconds,
            narration.cues.len(),
            narration.voice_id,
            narration.retries
        ),
    ))
}

/// Where a render's caption cues are kept (beside its narration).
pub fn cues_key(render_id: &str) -> String {
    format!("audio/{render_id}.cues.json")
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
        let plugin = match app.plugins.resolve(&reference).await {
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
            Err(err) => return Ok(fail(Category::PluginError, err)),
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
async fn check(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let mut plan = stored_plan(render)?;
    // Too long for 1080p but fine at 720p: the source's policy decides.
    let seconds = render.audio_seconds.unwrap_or_default();
    let source = app.store.event_content(&render.event_id).await?.source;
    let source_config = app.config.sources.get(&source);
    let policy = source_config
        .map(|s| s.settings.too_long_for_1080p)
        .unwrap_or_default();
    let limit = plan.resolution.max_audio_seconds();
    if seconds > limit && policy == TooLongPolicy::Shorten {
        return shorten(app, render, &plan, limit, seconds).await;
    }
    let mut fell_back = None;
    if plan.resolution == Resolution::P1080
        && seconds > Resolution::P1080.max_audio_seconds()
        && seconds <= Resolution::P720.max_audio_seconds()
        && policy == TooLongPolicy::Fallback720p
    {
        plan.resolution = Resolution::P720;
        fell_back = Some(serde_json::to_string(&plan)?);
    }
    let (image_url, audio_url) = input_urls(app, render, &plan).await?;
    let inputs = checks::Inputs {
        image_url,
        audio_url,
        prompt: plan.prompt.clone(),
        resolution: plan.resolution,
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
    let detail = match &fell_back {
        Some(_) => format!(
            "{seconds:.1} s is too long for 1080p: falling back to 720p (source policy); {report}"
        ),
        None => report,
    };
    let mut set = Transition {
        plan_json: fell_back,
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
        let preview = match app.preview.submit(&request).await {
            Ok(job) => app.preview.status(&job.job_id).await,
            Err(err) => Err(err),
        };
        let url = match preview {
            Ok(JobStatus::Completed { video_url, .. }) => video_url,
            Ok(other) => return Ok(fail(Category::Internal, format!("preview: {other:?}"))),
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
        set.preview_url = Some(url.clone());
        return Ok(advance(
            State::AwaitingApproval,
            set,
            format!("{detail}; preview for approval: {url}"),
        ));
    }
    Ok(advance(State::Submit, set, detail))
}

/// Writes the (kept) video's URL into the CMS entry, with the captions' and poster's URLs where
/// the source's field map names fields for them.
async fn write_back(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let plan = stored_plan(render)?;
    let content = app.store.event_content(&render.event_id).await?;
    let video_url = render
        .video_url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no video url"))?;
    if !content.has_cms_entry() {
        return Ok(advance(
            State::Done,
            Transition::default(),
            format!(
                "{} {}: {video_url} (no CMS entry to write to)",
                content.cms, content.id
            ),
        ));
    }
    let Some(adapter) = app.sources.get(&content.source) else {
        return Ok(fail(
            Category::WritebackError,
            format!("source {:?} is not configured", content.source),
        ));
    };
    if app.store.write_back_gate(&content).await? == WriteBackGate::Superseded {
        return Ok(advance(
            State::Done,
            Transition::default(),
            format!(
                "not written back: {} {} was published with other content since; the video is \
                 kept, and written back at $0 if the entry reverts to this content",
                content.source, content.id
            ),
        ));
    }
    // Companions first, the video last: a video URL in the entry means all of it is there.
    let mut writes = companion_writes(app, render, &content.source)?;
    let video_field = app
        .config
        .sources
        .get(&content.source)
        .map_or(plan.target_field.as_str(), |s| {
            s.settings.fields.video_field(&plan.target_field)
        });
    writes.push((video_field.to_string(), video_url.to_string()));
    for (field, url) in &writes {
        match adapter.write_back(&content, field, url).await {
            Ok(()) => {}
            Err(WriteBackError::Transient(error) | WriteBackError::Conflict(error)) => {
                return Ok(Outcome::Retry {
                    to: State::WriteBack,
                    category: Category::WritebackError,
                    error,
                    delay: None,
                })
            }
            Err(WriteBackError::Permanent(error)) => {
                return Ok(fail(Category::WritebackError, error))
            }
        }
    }
    let written: Vec<String> = writes.iter().map(|(field, _)| field.clone()).collect();
    Ok(advance(
        State::Done,
        Transition::default(),
        format!(
            "{} {} ← {}: {video_url}",
            content.source,
            content.id,
            written.join(", ")
        ),
    ))
}

/// (field, URL) for the kept captions and poster the source's field map has fields for.
fn companion_writes(
    app: &App,
    render: &RenderRow,
    source: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let Some(fields) = app.config.sources.get(source).map(|s| &s.settings.fields) else {
        return Ok(Vec::new());
    };
    let provenance: serde_json::Value =
        serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))?;
    let kept = &provenance["bundle"];
    let mut writes = Vec::new();
    for (field, key) in [
        (&fields.captions, "captions_vtt"),
        (&fields.poster, "poster"),
    ] {
        if let (Some(field), Some(key)) = (field, kept[key].as_str()) {
            writes.push((field.clone(), app.media.url(key)));
        }
    }
    Ok(writes)
}
