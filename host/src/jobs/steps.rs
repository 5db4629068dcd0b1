//! The steps. Each reads what earlier steps committed, does one side effect, and says what to
//! commit next ([`Outcome`]); none of them writes render state itself, except `submit`, which
//! records `submitting` before the paid call.

use std::time::Duration;

use serde_json::json;

use super::{Category, State};
use crate::app::App;
use crate::checks::{self, CheckError};
use crate::cms::WriteBackError;
use crate::config::TooLongPolicy;
use crate::content::Content;
use crate::generation::{JobStatus, ProviderError, Resolution, SubmitRequest};
use crate::plugins::{Decision, Plan};
use crate::store::ledger::{self, Budgets, Reservation};
use crate::store::{now_ms, RenderRow, Transition};
use crate::tts::{SpeechRequest, TtsError};

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
    /// A person must decide (e.g. a paid submit whose outcome is unknown).
    Park { error: String },
    /// Another worker owns the render now: commit nothing.
    LeaseLost,
}

fn advance(to: State, set: Transition, detail: impl Into<String>) -> Outcome {
    Outcome::Advance {
        to,
        set: Box::new(set),
        run_after: None,
        detail: detail.into(),
        siblings: Vec::new(),
    }
}

fn fail(category: Category, error: impl ToString) -> Outcome {
    Outcome::Fail {
        category,
        error: error.to_string(),
    }
}

/// Runs the step the render is at.
pub async fn run(app: &App, owner: &str, render: &RenderRow) -> Outcome {
    let Some(state) = State::parse(&render.state) else {
        return fail(
            Category::Internal,
            format!("unknown state {:?}", render.state),
        );
    };
    let result = match state {
        State::Plan => plan(app, render).await,
        State::Speak => speak(app, render).await,
        State::Check => check(app, render).await,
        State::Submit => submit(app, owner, render).await,
        State::Submitting => reconcile(app, owner, render).await,
        State::Await => await_job(app, render).await,
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

fn stored_plan(render: &RenderRow) -> anyhow::Result<Plan> {
    let json = render
        .plan_json
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("render has no plan"))?;
    Ok(serde_json::from_str(json)?)
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
    content.image = match source.image_for(&content) {
        Some(image) => match app.media_url_for_image(&image).await {
            Ok(url) => Some(url),
            Err(err) => return Ok(fail(Category::InputInvalid, err)),
        },
        None => None,
    };
    let templates = std::sync::Arc::new(crate::templates::TemplateSet::load(&app.store).await?);
    // The versions pinned when the event was accepted; the source's chain for older renders.
    let chain: Vec<String> = match &render.plugins_json {
        Some(json) => serde_json::from_str(json)?,
        None => source.plugins.iter().map(|p| p.name.clone()).collect(),
    };
    let mut draft: Vec<Plan> = Vec::new();
    let mut runs = Vec::new();
    for reference in &chain {
        let plugin = match app.plugins.resolve(reference).await {
            Ok(plugin) => plugin,
            Err(err) => return Ok(fail(Category::PluginError, err)),
        };
        let name = reference.split('@').next().unwrap_or(reference);
        let config = source
            .plugins
            .iter()
            .find(|p| p.name.split('@').next() == Some(name))
            .map(|p| p.config.clone())
            .unwrap_or_default();
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
                let set = Transition {
                    provenance_json: Some(provenance(&content, &runs, &templates).to_string()),
                    ..Default::default()
                };
                return Ok(advance(
                    State::Skipped,
                    set,
                    format!("{} skipped: {reason}", plugin.id()),
                ));
            }
            Decision::Generate(plans) => draft = plans,
        }
    }
    let provenance = provenance(&content, &runs, &templates).to_string();
    let mut plans = draft.into_iter();
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

/// Synthesises the narration and measures it by decoding.
async fn speak(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let plan = stored_plan(render)?;
    let request = SpeechRequest {
        text: plan.speech_text.clone(),
        voice: plan.voice.clone(),
    };
    let audio = match app.tts.synthesize(&request).await {
        Ok(audio) => audio,
        Err(err @ (TtsError::InvalidVoice(_) | TtsError::EmptyText)) => {
            return Ok(fail(Category::TtsError, err))
        }
        Err(err) => {
            return Ok(Outcome::Retry {
                to: State::Speak,
                category: Category::TtsError,
                error: err.to_string(),
                delay: None,
            })
        }
    };
    let bytes = audio.bytes.clone();
    let info =
        match tokio::task::spawn_blocking(move || crate::media::probe::audio_info(bytes)).await? {
            Ok(info) => info,
            Err(err) => {
                return Ok(fail(
                    Category::TtsError,
                    format!("the TTS output is not playable: {err}"),
                ))
            }
        };
    let key = format!("audio/{}.{}", render.id, audio.extension);
    app.media.put(&key, &audio.bytes).await?;
    let mut provenance: serde_json::Value =
        serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))?;
    provenance["voice"] = json!(audio.voice_id);
    let set = Transition {
        audio_key: Some(key),
        audio_seconds: Some(info.seconds),
        provenance_json: Some(provenance.to_string()),
        ..Default::default()
    };
    Ok(advance(
        State::Check,
        set,
        format!(
            "{:.2} s of {} audio ({})",
            info.seconds, info.format, audio.voice_id
        ),
    ))
}

/// The inputs exactly as the provider will fetch them: costs nothing, catches what would be a
/// wasted credit.
async fn check(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let mut plan = stored_plan(render)?;
    let audio_key = render
        .audio_key
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no audio"))?;
    // Too long for 1080p but fine at 720p: the source's policy decides.
    let seconds = render.audio_seconds.unwrap_or_default();
    let source = app.store.event_content(&render.event_id).await?.source;
    let source_config = app.config.sources.get(&source);
    let policy = source_config
        .map(|s| s.too_long_for_1080p)
        .unwrap_or_default();
    let mut fell_back = None;
    if plan.resolution == Resolution::P1080
        && seconds > Resolution::P1080.max_audio_seconds()
        && seconds <= Resolution::P720.max_audio_seconds()
        && policy == TooLongPolicy::Fallback720p
    {
        plan.resolution = Resolution::P720;
        fell_back = Some(serde_json::to_string(&plan)?);
    }
    let inputs = checks::Inputs {
        image_url: app.media.refresh(&plan.image_url),
        audio_url: app.media.url(audio_key),
        prompt: plan.prompt.clone(),
        resolution: plan.resolution,
    };
    let report = match checks::check(&app.http, &inputs, app.config.allow_plain_http()).await {
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
    if source_config.is_some_and(|s| s.approval) && render.approved_at.is_none() {
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

/// The paid call. `submitting` (with the idempotency key) is committed first; the answer's job id
/// is committed after.
async fn submit(app: &App, owner: &str, render: &RenderRow) -> anyhow::Result<Outcome> {
    let plan = stored_plan(render)?;
    let audio_key = render
        .audio_key
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no audio"))?;
    let submit_key = render
        .submit_key
        .clone()
        .unwrap_or_else(crate::store::new_id);
    let source = app.store.event_content(&render.event_id).await?.source;
    let source_config = app.config.sources.get(&source);
    let provider = &app.provider;
    let request = SubmitRequest {
        render_id: render.id.clone(),
        image_url: app.media.refresh(&plan.image_url),
        audio_url: app.media.url(audio_key),
        audio_seconds: render.audio_seconds.unwrap_or_default(),
        prompt: plan.prompt.clone(),
        resolution: plan.resolution,
        turbo: plan.turbo,
        webhook_url: provider
            .wants_webhook()
            .then(|| app.provider_webhook_url(&render.id)),
        idempotency_key: submit_key.clone(),
    };
    if app.config.dry_run || source_config.is_some_and(|s| s.dry_run) {
        let detail = format!(
            "dry run: would submit to {} ({}): {} at {}{}, image {}, audio {} ({:.1} s), prompt {:?}",
            provider.name(),
            provider.model(),
            plan.key,
            request.resolution.as_str(),
            if request.turbo { " turbo" } else { "" },
            request.image_url,
            request.audio_url,
            request.audio_seconds,
            request.prompt
        );
        return Ok(advance(State::DryRun, Transition::default(), detail));
    }
    let budgets = Budgets {
        all_sources: app.config.budgets.daily_credits,
        this_source: source_config.and_then(|s| s.daily_credits),
    };
    let credits = provider.estimated_credits(&request);
    let reservation = app
        .store
        .reserve_and_mark_submitting(
            &render.id,
            owner,
            &submit_key,
            &source,
            provider.name(),
            credits,
            budgets,
        )
        .await?;
    match reservation {
        Reservation::Reserved => {}
        Reservation::LeaseLost => return Ok(Outcome::LeaseLost),
        Reservation::OverBudget {
            scope,
            spent,
            limit,
            asked,
        } => {
            // Re-checked every minute: a new UTC day or a raised limit lets it go ahead.
            let until = (now_ms() + 60_000).min(ledger::day_start_ms(ledger::today() + 1));
            let reason = format!(
                "over budget: {scope} spent {spent} of {limit} credits today and this video needs {asked}; \
                 it waits and goes ahead when budget is available"
            );
            return Ok(Outcome::Held {
                until,
                category: Category::OverBudget,
                reason,
            });
        }
    }
    let retry = |error: String, delay| Outcome::Retry {
        to: State::Submit,
        category: Category::ProviderFailed,
        error,
        delay,
    };
    Ok(match provider.submit(&request).await {
        Ok(submitted) => {
            let mut provenance: serde_json::Value =
                serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))?;
            provenance["provider"] = json!({"name": provider.name(), "model": provider.model()});
            let set = Transition {
                submit_key: Some(submit_key),
                provider_job_id: Some(submitted.job_id.clone()),
                provenance_json: Some(provenance.to_string()),
                ..Default::default()
            };
            let detail = format!(
                "{} job {} (estimated credits: {})",
                provider.name(),
                submitted.job_id,
                submitted.estimated_credits.map_or("?".into(), |c| c.to_string())
            );
            Outcome::Advance { to: State::Await, set: Box::new(set), run_after: Some(now_ms()), detail, siblings: Vec::new() }
        }
        Err(ProviderError::RateLimited { retry_after }) => retry("rate limited (429)".into(), retry_after),
        Err(err @ ProviderError::Unavailable(_)) => retry(err.to_string(), None),
        Err(err @ ProviderError::Rejected { .. }) => fail(Category::ProviderRejected, err),
        Err(ProviderError::Ambiguous(message)) if provider.resubmit_is_free() => retry(message, None),
        Err(ProviderError::Ambiguous(message)) => Outcome::Park {
            error: format!(
                "the submit's outcome is unknown ({message}); Idempotency-Key {submit_key}. Not resubmitted, \
                 to avoid paying twice: the provider's webhook completes this render if the job exists"
            ),
        },
    })
}

/// Found in `submitting`: a previous attempt was interrupted between recording the submit and
/// recording its answer. Free providers just submit again; paid ones are parked for a person
/// (the per-render webhook still completes the render if the provider did accept it).
async fn reconcile(app: &App, owner: &str, render: &RenderRow) -> anyhow::Result<Outcome> {
    if app.provider.resubmit_is_free() {
        return submit(app, owner, render).await;
    }
    Ok(Outcome::Park {
        error: format!(
            "interrupted during the paid submit (Idempotency-Key {}); vidhook cannot tell whether {} \
             accepted it, so it does not submit again. If the provider's webhook arrives the render \
             completes by itself; otherwise check the provider's dashboard",
            render.submit_key.as_deref().unwrap_or("?"),
            app.provider.name()
        ),
    })
}

/// Asks the provider how the job is doing (after a webhook nudge, or as the polling fallback).
async fn await_job(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let job_id = render
        .provider_job_id
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no job id"))?;
    let provider = &app.provider;
    let now = now_ms();
    let waited = Duration::from_millis((now - render.submitted_at.unwrap_or(now)).max(0) as u64);
    let too_long = waited > provider.max_wait();
    // Polling backs off as the wait grows (the webhook is the fast path): the base interval for
    // the first ten intervals, then proportionally longer, up to 8×; never past the deadline.
    let base = provider.poll_interval();
    let factor = (waited.as_secs_f64() / (10.0 * base.as_secs_f64().max(0.001))).clamp(1.0, 8.0);
    let deadline = render.submitted_at.unwrap_or(now) + provider.max_wait().as_millis() as i64 + 1;
    let next_poll = (now + base.mul_f64(factor).as_millis() as i64).min(deadline.max(now + 1));
    let status = provider.status(job_id).await;
    crate::metrics::provider_poll(match &status {
        Ok(JobStatus::Completed { .. }) => "completed",
        Ok(JobStatus::Failed(_)) => "failed",
        Ok(JobStatus::Pending(_)) => "pending",
        Err(ProviderError::RateLimited { .. }) => "rate_limited",
        Err(_) => "error",
    });
    Ok(match status {
        Ok(JobStatus::Completed {
            video_url,
            credits_used,
        }) => {
            if let Some(credits) = credits_used {
                let source = app.store.event_content(&render.event_id).await?.source;
                app.store
                    .record_actual_credits(&render.id, &source, provider.name(), credits)
                    .await?;
                crate::metrics::credits_consumed(provider.name(), &source, credits);
            }
            crate::metrics::generation_seconds(provider.name(), waited.as_secs_f64());
            let set = Transition {
                video_url: Some(video_url.clone()),
                ..Default::default()
            };
            let credits = credits_used.map_or("?".into(), |c| c.to_string());
            advance(
                State::WriteBack,
                set,
                format!("video ready after {waited:?}: {video_url} (credits used: {credits})"),
            )
        }
        Ok(JobStatus::Failed(error)) => fail(
            Category::ProviderFailed,
            format!("job {job_id} failed: {error}"),
        ),
        Ok(JobStatus::Pending(_))
        | Err(ProviderError::Unavailable(_) | ProviderError::Ambiguous(_))
            if too_long =>
        {
            fail(
                Category::Timeout,
                format!("job {job_id} unfinished after {waited:?}"),
            )
        }
        Ok(JobStatus::Pending(status)) => Outcome::Wait {
            until: next_poll,
            detail: format!("job {job_id} {status}"),
        },
        Err(ProviderError::RateLimited { retry_after }) => Outcome::Wait {
            until: now + retry_after.unwrap_or(provider.poll_interval()).as_millis() as i64,
            detail: "status poll rate limited".into(),
        },
        Err(err @ (ProviderError::Unavailable(_) | ProviderError::Ambiguous(_))) => Outcome::Wait {
            until: next_poll,
            detail: format!("status unavailable: {err}"),
        },
        Err(err @ ProviderError::Rejected { .. }) => fail(Category::ProviderFailed, err),
    })
}

/// Writes the video URL into the CMS entry.
async fn write_back(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let plan = stored_plan(render)?;
    let content = app.store.event_content(&render.event_id).await?;
    let video_url = render
        .video_url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no video url"))?;
    let Some(adapter) = app.sources.get(&content.source) else {
        return Ok(fail(
            Category::WritebackError,
            format!("source {:?} is not configured", content.source),
        ));
    };
    Ok(
        match adapter
            .write_back(&content, &plan.target_field, video_url)
            .await
        {
            Ok(()) => advance(
                State::Done,
                Transition::default(),
                format!(
                    "{} {} ← {}: {video_url}",
                    content.source, content.id, plan.target_field
                ),
            ),
            Err(WriteBackError::Transient(error) | WriteBackError::Conflict(error)) => {
                Outcome::Retry {
                    to: State::WriteBack,
                    category: Category::WritebackError,
                    error,
                    delay: None,
                }
            }
            Err(WriteBackError::Permanent(error)) => fail(Category::WritebackError, error),
        },
    )
}
