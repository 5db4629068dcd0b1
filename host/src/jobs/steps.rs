//! The steps. Each reads what earlier steps committed, does one side effect, and says what to
//! commit next ([`Outcome`]); none of them writes render state itself, except `submit`, which
//! records `submitting` before the paid call. Here: the dispatcher and the write-back; the plan
//! step lives in `plan_steps`, speak and check in `speech_steps`, the provider's steps in
//! `provider_steps`, keep in `bundle`.

use std::time::Duration;

use super::lease::Lease;
use super::{provider_steps, Category, State};
use crate::app::App;
use crate::cms::WriteBackError;
use crate::plugins::Plan;
use crate::store::{RenderRow, Transition, WriteBackGate};

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
    /// A person must decide (e.g. a paid submit whose outcome is unknown); `category` says what
    /// parked it, kept on the render for `jobs`, the workspace's filters and the metrics.
    Park { category: Category, error: String },
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

/// A plugin run that failed: a template's failure (what the set recorded: which template,
/// version and where) is the render's `template` category, anything else `plugin_error`.
pub(super) fn plugin_failed(
    templates: &crate::templates::TemplateSet,
    error: crate::plugins::PluginFailure,
) -> Outcome {
    match templates.failure() {
        Some(failure) => fail(Category::Template, format!("{error} ({failure})")),
        None => fail(Category::PluginError, error),
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
        State::Plan => super::plan_steps::plan(app, render).await,
        State::Speak => super::speech_steps::speak(app, render).await,
        State::Check => super::speech_steps::check(app, render).await,
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

/// What a provider is asked to make of `render`: its stored plan's prompt and resolution, its
/// narration and photo by their current links; no webhook and no idempotency key (the submit
/// step adds its own).
pub(super) async fn submit_request(
    app: &App,
    render: &RenderRow,
    plan: &Plan,
) -> anyhow::Result<crate::generation::SubmitRequest> {
    let (image_url, audio_url) = input_urls(app, render, plan).await?;
    Ok(crate::generation::SubmitRequest {
        render_id: render.id.clone(),
        image_url,
        audio_url,
        audio_seconds: render.audio_seconds.unwrap_or_default(),
        prompt: plan.prompt.clone(),
        resolution: plan.resolution,
        turbo: plan.turbo,
        webhook_url: None,
        idempotency_key: String::new(),
    })
}

pub(super) fn stored_plan(render: &RenderRow) -> anyhow::Result<Plan> {
    let json = render
        .plan_json
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("render has no plan"))?;
    Ok(serde_json::from_str(json)?)
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
    if content.cms == crate::content::DIGEST_CMS {
        return deliver_digest(app, render, &content, video_url).await;
    }
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
    // A receiver keyed on `locale` is told the video's own (a multilingual plan's language).
    let content = if adapter.names_plan_locale() && crate::content::is_language_tag(&plan.language)
    {
        crate::content::Content {
            locale: plan.language.clone(),
            ..content
        }
    } else {
        content
    };
    // Companions first, the video last: a video URL in the entry means all of it is there.
    let kept = super::Companions::of(&app.media, render.provenance_json.as_deref())?;
    let writes = companion_writes(app, &kept, &plan.language, &content.source);
    let video_field = app
        .config
        .sources
        .get(&content.source)
        .map_or(plan.target_field.as_str(), |s| {
            s.settings.fields.video_field(&plan.target_field)
        });
    for (field, value) in &writes {
        if let Err(err) = adapter.write_back(&content, field, value).await {
            return Ok(not_written(render, video_url, err));
        }
    }
    let player = crate::cms::Player {
        video_url: video_url.to_string(),
        poster_url: kept.poster,
        captions: kept.captions_vtt.map(|url| (url, plan.language.clone())),
    };
    if let Err(err) = adapter.write_player(&content, video_field, &player).await {
        return Ok(not_written(render, video_url, err));
    }
    let written: Vec<String> = writes
        .iter()
        .map(|(field, _)| field.clone())
        .chain([video_field.to_string()])
        .collect();
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

/// A write-back that did not happen: retried later when it may work then; failed (the video
/// kept) when it will not.
fn not_written(render: &RenderRow, video_url: &str, err: WriteBackError) -> Outcome {
    match err {
        WriteBackError::Transient(error) | WriteBackError::Conflict(error) => Outcome::Retry {
            to: State::WriteBack,
            category: Category::WritebackError,
            error,
            delay: None,
        },
        WriteBackError::Permanent(error) => {
            tracing::warn!(
                render = %render.id,
                video = %video_url,
                %error,
                "write-back refused; the video is kept (`vidhook jobs retry-writeback` writes it again)"
            );
            fail(Category::WritebackError, error)
        }
    }
}

/// A digest has no CMS entry: its video goes to the receiver `[digest.deliver]` names, if any.
async fn deliver_digest(
    app: &App,
    render: &RenderRow,
    content: &crate::content::Content,
    video_url: &str,
) -> anyhow::Result<Outcome> {
    let deliver = app
        .config
        .sources
        .get(&content.source)
        .and_then(|s| s.settings.digest.as_ref())
        .and_then(|d| d.deliver.as_ref());
    let Some(to) = deliver else {
        return Ok(advance(
            State::Done,
            Transition::default(),
            format!(
                "digest {}: {video_url} (no [digest.deliver] receiver configured; `vidhook digests show` lists it)",
                content.id
            ),
        ));
    };
    let kept = super::Companions::of(&app.media, render.provenance_json.as_deref())?;
    let files = crate::digests::Files {
        video_url,
        captions_url: kept.captions_vtt,
        poster_url: kept.poster,
    };
    if let Err(err) = crate::digests::deliver(to, content, files).await {
        return Ok(not_written(render, video_url, err));
    }
    Ok(advance(
        State::Done,
        Transition::default(),
        format!("digest {} delivered to {}: {video_url}", content.id, to.url),
    ))
}

/// (field, value) for the kept captions (and their language) and poster the source's field map
/// has fields for.
fn companion_writes(
    app: &App,
    kept: &super::Companions,
    language: &str,
    source: &str,
) -> Vec<(String, String)> {
    let Some(fields) = app.config.sources.get(source).map(|s| &s.settings.fields) else {
        return Vec::new();
    };
    let captioned = kept.captions_vtt.as_ref().map(|_| language.to_string());
    [
        (&fields.captions, kept.captions_vtt.clone()),
        (&fields.captions_language, captioned),
        (&fields.poster, kept.poster.clone()),
    ]
    .into_iter()
    .filter_map(|(field, value)| Some((field.clone()?, value?)))
    .collect()
}
