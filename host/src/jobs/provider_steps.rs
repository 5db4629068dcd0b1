//! The steps that talk to the video provider: the paid submit, reconciling a submit whose
//! outcome is unknown, and following a job to its end. The rule they keep: a job that may have
//! been paid for is never submitted again automatically (unless the provider honours
//! `Idempotency-Key`), and never abandoned because a status read failed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::lease::Lease;
use super::steps::{advance, fail, stored_plan, Outcome};
use super::{Category, State};
use crate::app::App;
use crate::config::AmbiguousSubmitPolicy;
use crate::generation::{Host, JobStatus, ProviderError, SubmitRequest};
use crate::store::ledger::{self, Reservation};
use crate::store::{now_ms, RenderRow, Transition};

/// Why the video could not be written back to the entry `content` came from, if it could not:
/// its source's write-back target is checked against the outbound guard again right before the
/// paid call (an address can change since start-up), so nothing is paid for a video that could
/// never arrive.
async fn unreachable_write_back(app: &App, content: &crate::content::Content) -> Option<String> {
    if !content.has_cms_entry() {
        return None;
    }
    let adapter = app.sources.get(&content.source)?;
    for (key, url) in adapter.write_back_targets() {
        if let Err(err) = app.guard.check_target(&url).await {
            let why = crate::cms::refused_target(&content.source, key, &url, &err);
            tracing::warn!(source = %content.source, entry = %content.id, "not submitted, nothing paid: {why}");
            return Some(format!("not submitted, nothing paid: {why}"));
        }
    }
    None
}

/// The host `render` is with: the one recorded on it, else its source's first (the event is
/// read only then, to learn its source).
pub(super) async fn host_of(
    store: &crate::store::Store,
    hosts: &crate::generation::Hosts,
    render: &RenderRow,
) -> Result<Arc<Host>, crate::store::StoreError> {
    if let Some(host) = render.provider.as_deref().and_then(|name| hosts.get(name)) {
        return Ok(host.clone());
    }
    let source = store.event_content(&render.event_id).await?.source;
    Ok(hosts
        .for_render(render.provider.as_deref(), &source)
        .clone())
}

/// The paid call. `submitting` (with the idempotency key and a fresh lease) is committed first;
/// the answer's job id is committed after (and kept even if that commit is refused).
pub async fn submit(app: &App, lease: &Lease, render: &RenderRow) -> anyhow::Result<Outcome> {
    let plan = stored_plan(render)?;
    let submit_key = render
        .submit_key
        .clone()
        .unwrap_or_else(crate::store::new_id);
    let content = app.store.event_content(&render.event_id).await?;
    if let Some(refused) = unreachable_write_back(app, &content).await {
        return Ok(fail(Category::WritebackError, refused));
    }
    let source = content.source;
    let host = app
        .hosts
        .for_render(render.provider.as_deref(), &source)
        .clone();
    let provider = &host.provider;
    let request = SubmitRequest {
        webhook_url: provider
            .wants_webhook()
            .then(|| app.provider_webhook_url(&host.name, &render.id)),
        idempotency_key: submit_key.clone(),
        ..super::steps::submit_request(app, render, &plan).await?
    };
    if app.config.is_dry_run(&source) {
        let detail = format!(
            "dry run: would submit to {} ({}): {} at {}{}, image {}, audio {} ({:.1} s), prompt {:?}",
            host.name,
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
    // A host whose breaker is open is passed over before anything is sent to it.
    if host.breaker.is_open() {
        let reason = "its circuit breaker is open after consecutive refusals";
        if let Some(moved) = failover(app, render, &source, &host, &request, reason).await? {
            return Ok(moved);
        }
    }
    let budgets = app.config.budgets_for(&source);
    let credits = provider.estimated_credits(&request);
    let reservation = app
        .store
        .reserve_and_mark_submitting(
            &render.id,
            lease.owner(),
            super::worker::lease_until(),
            &submit_key,
            &source,
            &host.name,
            credits,
            budgets,
        )
        .await?;
    match reservation {
        Reservation::Reserved => {}
        Reservation::LeaseLost => return Ok(Outcome::LeaseLost),
        Reservation::RunNotActive => {
            // Claimed again as soon as its run is active again (the claim skips it till then).
            return Ok(Outcome::Held {
                until: now_ms(),
                category: Category::RunPaused,
                reason: "its run is paused or cancelled: not submitted".into(),
            });
        }
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
    // `submitting` is committed. If the lease was lost or could not be renewed since the claim,
    // stop here: whoever owns the render now finds it in `submitting` and reconciles it (nothing
    // was sent, so nothing can have been paid).
    if !lease.begin_paid_call() {
        return Ok(Outcome::LeaseLost);
    }
    let result = provider.submit(&request).await;
    // Provably not taken (nothing was created, nothing billed): another host of the source may
    // take it instead. With why, and whether it says something about the host's health (an
    // input refusal, 400 or 422, does not).
    let refused = match &result {
        Ok(_) => {
            host.breaker.succeeded();
            None
        }
        Err(ProviderError::RateLimited {
            retry_after: Some(wait),
        }) if *wait > app.hosts.route(&source).failover_wait => Some((
            format!("rate limited (429) for {wait:?}, longer than the source's failover_wait_secs"),
            true,
        )),
        Err(err @ ProviderError::Unavailable(_)) => Some((err.to_string(), true)),
        Err(err @ ProviderError::Rejected { status, .. }) => {
            Some((err.to_string(), !matches!(status, 400 | 422)))
        }
        Err(_) => None,
    };
    if let Some((reason, host_at_fault)) = refused {
        if host_at_fault && host.breaker.refused() {
            crate::metrics::circuit_opened(&host.name);
            tracing::warn!(host = %host.name, "circuit breaker open: the host is passed over for a while");
        }
        if let Some(moved) = failover(app, render, &source, &host, &request, &reason).await? {
            return Ok(moved);
        }
    }
    let retry = |error: String, delay| Outcome::Retry {
        to: State::Submit,
        category: Category::ProviderFailed,
        error,
        delay,
    };
    Ok(match result {
        Ok(submitted) => {
            let detail = format!(
                "{} job {} (estimated credits: {})",
                host.name,
                submitted.job_id,
                submitted
                    .estimated_credits
                    .map_or("?".into(), |c| c.to_string())
            );
            follow(&host, render, &submit_key, &submitted.job_id, detail)?
        }
        // Provably not created: safe to try again, or pointless to.
        Err(ProviderError::RateLimited { retry_after }) => {
            retry("rate limited (429)".into(), retry_after)
        }
        Err(err @ ProviderError::Unavailable(_)) => retry(err.to_string(), None),
        Err(err @ ProviderError::Rejected { .. }) => fail(Category::ProviderRejected, err),
        // Maybe created and billed.
        Err(ProviderError::Ambiguous(message)) if provider.honours_idempotency_key() => retry(
            format!(
                "{message}; the provider honours Idempotency-Key {submit_key}, so it is sent again"
            ),
            None,
        ),
        Err(ProviderError::Ambiguous(message)) => ambiguous(&host, &submit_key, &message),
    })
}

/// Moves `render` from `from` (which provably did not take it) to the next host of its source
/// that accepts its narration, if there is one and the render was never in doubt: a render
/// whose submit had an unknown outcome (even once) stays with the host that may hold its job,
/// whatever that host answers later.
async fn failover(
    app: &App,
    render: &RenderRow,
    source: &str,
    from: &Host,
    request: &SubmitRequest,
    reason: &str,
) -> anyhow::Result<Option<Outcome>> {
    let Some(to) = app.hosts.next_after(
        source,
        &from.name,
        request.audio_seconds,
        request.resolution,
    ) else {
        return Ok(None);
    };
    if app.store.count_steps(&render.id, "ambiguous").await? > 0 {
        return Ok(None);
    }
    let mut provenance: serde_json::Value =
        serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))?;
    let entry = json!({"from": from.name, "to": to.name, "reason": reason, "at": now_ms()});
    match provenance["failovers"].as_array_mut() {
        Some(list) => list.push(entry),
        None => provenance["failovers"] = json!([entry]),
    }
    crate::metrics::provider_failover(&from.name, &to.name);
    tracing::warn!(render = %render.id, from = %from.name, to = %to.name, reason, "failover: the host did not take the render");
    let set = Transition {
        provider: Some(to.name.clone()),
        provenance_json: Some(provenance.to_string()),
        ..Default::default()
    };
    let detail = format!(
        "failover: {} did not take it ({reason}); nothing was paid there, moving to {}",
        from.name, to.name
    );
    Ok(Some(Outcome::Advance {
        to: State::Submit,
        set: Box::new(set),
        run_after: Some(now_ms()),
        detail,
        siblings: Vec::new(),
    }))
}

/// The render's provenance naming the host that makes its video (and how often it failed over
/// to get there).
fn made_by(host: &Host, render: &RenderRow) -> anyhow::Result<String> {
    let provider = &host.provider;
    let mut provenance: serde_json::Value =
        serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))?;
    let failovers = provenance["failovers"].as_array().map_or(0, Vec::len);
    provenance["provider"] = json!({
        "name": host.name,
        "kind": provider.name(),
        "model": provider.model(),
        "failovers": failovers,
    });
    Ok(provenance.to_string())
}

/// Follows the provider's job `job_id` from now on (`await`), recorded in the provenance.
fn follow(
    host: &Host,
    render: &RenderRow,
    submit_key: &str,
    job_id: &str,
    detail: String,
) -> anyhow::Result<Outcome> {
    let set = Transition {
        submit_key: Some(submit_key.to_string()),
        provider_job_id: Some(job_id.to_string()),
        provenance_json: Some(made_by(host, render)?),
        ..Default::default()
    };
    Ok(Outcome::Advance {
        to: State::Await,
        set: Box::new(set),
        run_after: Some(now_ms()),
        detail,
        siblings: Vec::new(),
    })
}

/// A provider that lists its recent jobs may show the one a lost submit created (its input is
/// this render's narration): then that job is followed, and nothing is sent again.
async fn find_lost_job(host: &Host, render: &RenderRow, submit_key: &str) -> Option<Outcome> {
    let audio_key = render.audio_key.as_deref()?;
    let since = render.submitted_at.unwrap_or(render.updated_at);
    match host.provider.find_job(audio_key, since).await {
        Ok(Some(job)) => {
            let detail = format!(
                "the submit's answer was lost; {} lists job {job} with this render's narration: \
                 following it, not submitting again",
                host.name
            );
            follow(host, render, submit_key, &job, detail).ok()
        }
        Ok(None) => None,
        Err(err) => {
            tracing::warn!(render = %render.id, error = %err, "could not list the provider's recent jobs");
            None
        }
    }
}

/// A paid call whose outcome is unknown: wait in `reconciling` for the job to announce itself
/// through the per-render webhook (until the window ends), or, without webhooks, apply the
/// source's policy at once.
fn ambiguous(host: &Host, submit_key: &str, message: &str) -> Outcome {
    let provider = &host.provider;
    let window = provider.reconcile_window();
    let reason = format!(
        "the paid submit's outcome is unknown ({message}); Idempotency-Key {submit_key}. \
         Not resubmitted, to avoid paying twice"
    );
    // Looked at again every poll interval (a provider that lists its jobs may show it), and at
    // the end of the window.
    let until = if provider.wants_webhook() {
        now_ms() + window.min(provider.poll_interval()).as_millis() as i64
    } else {
        now_ms()
    };
    Outcome::Reconcile {
        until,
        reason: if provider.wants_webhook() {
            format!(
                "{reason}: waiting up to {}s for the provider's webhook to announce the job",
                window.as_secs()
            )
        } else {
            reason
        },
    }
}

/// A render in `submitting` (a submit was interrupted between recording the attempt and its
/// answer: a crash, a kill, a lost lease) or in `reconciling` (its window may be over).
pub async fn reconcile(app: &App, lease: &Lease, render: &RenderRow) -> anyhow::Result<Outcome> {
    let host = host_of(&app.store, &app.hosts, render).await?;
    let provider = &host.provider;
    let submit_key = render.submit_key.as_deref().unwrap_or("?");
    if let Some(found) = find_lost_job(&host, render, submit_key).await {
        return Ok(found);
    }
    if render.state == State::Submitting.as_str() {
        if provider.honours_idempotency_key() {
            return submit(app, lease, render).await;
        }
        let message = "interrupted during the paid submit; vidhook cannot tell whether the \
                       provider accepted it";
        return Ok(ambiguous(&host, submit_key, message));
    }
    // Measured from the attempt itself, so waiting (which commits) does not move it.
    let deadline = render.submitted_at.unwrap_or(render.updated_at)
        + provider.reconcile_window().as_millis() as i64;
    let reason = render.error.clone().unwrap_or_else(|| {
        format!("the paid submit's outcome is unknown; Idempotency-Key {submit_key}")
    });
    if provider.wants_webhook() && now_ms() < deadline {
        return Ok(Outcome::Held {
            until: deadline.min(now_ms() + provider.poll_interval().as_millis() as i64),
            category: Category::AmbiguousSubmit,
            reason,
        });
    }
    let source = app.store.event_content(&render.event_id).await?.source;
    let policy = app
        .config
        .sources
        .get(&source)
        .map(|s| s.settings.ambiguous_submit)
        .unwrap_or_default();
    let announced = if provider.wants_webhook() {
        "no job announced itself through the webhook in time"
    } else {
        "webhooks are off, so no job can announce itself"
    };
    Ok(match policy {
        AmbiguousSubmitPolicy::Park => Outcome::Park {
            category: Category::AmbiguousSubmit,
            error: format!(
                "{reason}; {announced}. Check the provider's dashboard for a job with this \
                 render's webhook, then `vidhook jobs adopt {id} --job JOB_ID`, or `vidhook jobs \
                 resubmit {id} --accept-double-charge`",
                id = render.id
            ),
        },
        AmbiguousSubmitPolicy::Resubmit => advance(
            State::Submit,
            Transition::default(),
            format!(
                "{announced}; source policy ambiguous_submit = \"resubmit\": submitting again \
                 with the same Idempotency-Key {submit_key}"
            ),
        ),
    })
}

/// Asks the provider how the job is doing (after a webhook nudge, or as the polling fallback).
/// Only the provider's own `failed` status, or the wait running out, ends the render: a failed
/// status read (404 right after creation, 401/403/5xx, a reset) is asked again with backoff.
pub async fn await_job(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let job_id = render
        .provider_job_id
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no job id"))?;
    let host = host_of(&app.store, &app.hosts, render).await?;
    let provider = &host.provider;
    let now = now_ms();
    let since = render.adopted_at.or(render.submitted_at).unwrap_or(now);
    let waited = Duration::from_millis((now - since).max(0) as u64);
    let too_long = waited > provider.max_wait();
    // Polling backs off as the wait grows (the webhook is the fast path): the base interval for
    // the first ten intervals, then proportionally longer, up to 8×; never past the deadline.
    let base = provider.poll_interval();
    let factor = (waited.as_secs_f64() / (10.0 * base.as_secs_f64().max(0.001))).clamp(1.0, 8.0);
    let deadline = since + provider.max_wait().as_millis() as i64 + 1;
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
                    .record_actual_credits(&render.id, &source, &host.name, credits)
                    .await?;
                crate::metrics::credits_consumed(&host.name, &source, credits);
            }
            crate::metrics::generation_seconds(&host.name, waited.as_secs_f64());
            // Named again here: a job adopted from a webhook or by an operator was never followed.
            let set = Transition {
                video_url: Some(video_url.clone()),
                provenance_json: Some(made_by(&host, render)?),
                ..Default::default()
            };
            let credits = credits_used.map_or("?".into(), |c| c.to_string());
            advance(
                State::Keep,
                set,
                format!("video ready after {waited:?}: {video_url} (credits used: {credits})"),
            )
        }
        Ok(JobStatus::Failed(error)) => fail(
            Category::ProviderFailed,
            format!("job {job_id} failed: {error}"),
        ),
        Ok(JobStatus::Pending(_)) | Err(_) if too_long => fail(
            Category::Timeout,
            format!(
                "job {job_id} unfinished after {waited:?}; a late webhook from the provider, or \
                 `vidhook jobs retry {}`, still adopts its video without paying again",
                render.id
            ),
        ),
        Ok(JobStatus::Pending(status)) => Outcome::Wait {
            until: next_poll,
            detail: format!("job {job_id} {status}"),
        },
        Err(ProviderError::RateLimited { retry_after }) => Outcome::Wait {
            until: now + retry_after.unwrap_or(base).as_millis() as i64,
            detail: "status poll rate limited".into(),
        },
        Err(err) => Outcome::Wait {
            until: next_poll,
            detail: format!("status of job {job_id} unavailable, asking again: {err}"),
        },
    })
}
