//! Workers: claim a due render under a lease, run its step while renewing the lease, commit the
//! outcome. Retries with capped, jittered exponential backoff; a step that keeps failing ends in
//! `failed` with its category.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::lease::Lease;
use super::steps::{self, Outcome};
use super::{Category, State};
use crate::app::App;
use crate::store::{now_ms, RenderRow, StepRecord, Transition};

/// How long a claim lasts without renewal; renewed every third of it while the step runs.
const LEASE: Duration = Duration::from_secs(30);
/// How often an idle worker looks for work (ingest also wakes workers at once).
const IDLE_POLL: Duration = Duration::from_millis(250);

/// Running workers; dropping the sender side of `stop` (or sending true) stops them between steps.
pub struct Workers {
    app: Arc<App>,
    /// This process's lease owner prefix: worker `n` owns its leases as `{instance}/{n}`.
    instance: String,
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Workers {
    /// Stops claiming new work and gives in-flight steps `grace` to commit. Steps still running
    /// then are abandoned and their leases released, so another process (or this one, restarted)
    /// resumes them from their last committed state at once rather than after the lease expires.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let finished = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_ok() {
            return;
        }
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        match self.app.store.release_leases_of(&self.instance).await {
            Ok(released) => tracing::warn!(
                ?grace,
                released,
                "steps still running after the grace period were abandoned; their leases are released"
            ),
            Err(err) => tracing::error!(
                error = %err,
                "cannot release this process's leases; they expire by themselves"
            ),
        }
    }
}

/// When a claim made now, or renewed now, runs out.
pub(super) fn lease_until() -> i64 {
    now_ms() + LEASE.as_millis() as i64
}

pub fn spawn_workers(app: Arc<App>, count: usize) -> Workers {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let instance = crate::store::new_id();
    for n in 0..count {
        let owner = format!("{instance}/{n}");
        tasks.spawn(worker_loop(app.clone(), owner, stopped.clone()));
    }
    Workers {
        app,
        instance,
        stop,
        tasks,
    }
}

async fn worker_loop(app: Arc<App>, owner: String, mut stopped: watch::Receiver<bool>) {
    let runnable: Vec<&str> = State::ALL
        .into_iter()
        .filter(|s| s.is_runnable())
        .map(State::as_str)
        .collect();
    while !*stopped.borrow() {
        match app.store.claim(&runnable, &owner, lease_until()).await {
            Ok(Some(render)) => run_one(&app, &owner, render).await,
            Ok(None) => {
                tokio::select! {
                    _ = app.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = stopped.changed() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "claiming work failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn run_one(app: &App, owner: &str, render: RenderRow) {
    let span = tracing::info_span!(
        "render",
        render = %render.id,
        step = %render.state,
        job = render.provider_job_id.as_deref().unwrap_or("")
    );
    async {
        let started = now_ms();
        let lease = Lease::new(owner);
        // Renews the lease; ends (cancelling the step) only when the lease is lost before the
        // paid call started. During the paid call the step always runs to its end.
        let heartbeat = async {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                match app
                    .store
                    .renew_lease(&render.id, owner, lease_until())
                    .await
                {
                    Ok(true) => lease.renewed(),
                    Ok(false) => {
                        if lease.lose() {
                            return;
                        }
                    }
                    Err(err) => {
                        lease.renewal_failed();
                        tracing::warn!(error = %err, "lease renewal failed");
                    }
                }
            }
        };
        let outcome = tokio::select! {
            outcome = steps::run(app, &lease, &render) => outcome,
            () = heartbeat => {
                tracing::warn!("lease lost while the step ran; its outcome is discarded");
                return;
            }
        };
        if matches!(outcome, Outcome::LeaseLost) {
            tracing::warn!("lease lost; another worker owns this render now");
            return;
        }
        let (transition, record, siblings) = settle(app, &render, outcome, started);
        log_outcome(&transition, &record);
        let committed = app
            .store
            .commit(&render.id, owner, &transition, &record, &siblings)
            .await;
        match committed {
            Ok(true) => {
                record_metrics(&transition, &record, started);
                app.wake.notify_waiters();
                return;
            }
            Ok(false) => tracing::warn!("lease lost before commit; outcome discarded"),
            Err(err) => tracing::error!(error = %err, "commit failed; the step will run again"),
        }
        // The one outcome that must survive a refused commit: a paid job's id.
        if let Some(job_id) = &transition.provider_job_id {
            keep_paid_job(app, &render.id, job_id).await;
        }
    }
    .instrument(span)
    .await
}

/// Records a paid job's id against its render after the step's own commit was refused (the
/// lease was lost, or the database failed): whoever owns the render then follows the job instead
/// of parking it. Tried with backoff for about a minute while the database is unreachable.
async fn keep_paid_job(app: &App, render_id: &str, job_id: &str) {
    let detail = format!("job {job_id} recorded after the submitting worker lost its lease");
    let mut delay = Duration::from_millis(200);
    for _ in 0..10 {
        match app.store.adopt_job(render_id, job_id, &detail).await {
            Ok(state) => {
                tracing::warn!(job = job_id, ?state, "paid job kept after a refused commit");
                app.wake.notify_waiters();
                return;
            }
            Err(err) => {
                tracing::error!(job = job_id, error = %err, "cannot record a paid job yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    tracing::error!(
        job = job_id,
        render = render_id,
        "could not record a paid job; its webhook, or `vidhook jobs adopt`, still can"
    );
}

/// Counted only once the step's outcome is committed, so a discarded outcome is not counted.
fn record_metrics(t: &Transition, record: &StepRecord, started: i64) {
    let seconds = (now_ms() - started).max(0) as f64 / 1000.0;
    crate::metrics::step_seconds(&record.step, &record.outcome, seconds);
    let category = t.error_category.as_deref().unwrap_or("");
    if t.error.is_some() && !category.is_empty() {
        crate::metrics::step_error(&record.step, category);
    }
    if t.finished {
        crate::metrics::render_finished(&t.state, category);
    }
}

fn log_outcome(t: &Transition, record: &StepRecord) {
    match (t.state.as_str(), &t.error) {
        ("failed" | "needs_attention" | "reconciling", Some(error)) => tracing::warn!(
            state = %t.state,
            category = t.error_category.as_deref().unwrap_or(""),
            "{}: {error}", record.step
        ),
        (_, Some(error)) => {
            tracing::info!(next = %t.state, attempt = t.attempts, "{}: retry: {error}", record.step)
        }
        _ => tracing::info!(next = %t.state, "{}: {}", record.step, record.detail),
    }
}

/// Turns a step's outcome into the transition to commit.
fn settle(
    app: &App,
    render: &RenderRow,
    outcome: Outcome,
    started_at: i64,
) -> (Transition, StepRecord, Vec<(String, String, String)>) {
    let now = now_ms();
    let step = render.state.clone();
    let record = |outcome: &str, detail: String| StepRecord {
        step: step.clone(),
        started_at,
        outcome: outcome.to_string(),
        detail,
    };
    // A failed write-back keeps the paid-for video: it ends in `writeback_failed`, retryable.
    let failed = if step == State::WriteBack.as_str() {
        State::WritebackFailed
    } else {
        State::Failed
    };
    let fail = |category: Category, error: String| Transition {
        state: failed.as_str().into(),
        run_after: now,
        attempts: render.attempts,
        error_category: Some(category.as_str().into()),
        error: Some(error),
        finished: true,
        ..Transition::default()
    };
    match outcome {
        Outcome::Advance {
            to,
            set,
            run_after,
            detail,
            siblings,
        } => {
            let t = Transition {
                state: to.as_str().into(),
                run_after: run_after.unwrap_or(now),
                attempts: 0,
                finished: !to.is_runnable(),
                ..*set
            };
            (t, record("ok", detail), siblings)
        }
        Outcome::Held {
            until,
            category,
            reason,
        } => {
            let t = Transition {
                state: render.state.clone(),
                run_after: until,
                attempts: render.attempts,
                error_category: Some(category.as_str().into()),
                error: Some(reason.clone()),
                ..Transition::default()
            };
            (t, record("held", reason), Vec::new())
        }
        Outcome::Wait { until, detail } => {
            let t = Transition {
                state: render.state.clone(),
                run_after: until,
                attempts: render.attempts,
                ..Transition::default()
            };
            (t, record("waiting", detail), Vec::new())
        }
        Outcome::Retry {
            to,
            category,
            error,
            delay,
        } => {
            let attempts = render.attempts + 1;
            if attempts >= i64::from(app.config.retry.max_attempts) {
                let error = format!("{error} (gave up after {attempts} attempts)");
                return (
                    fail(category, error.clone()),
                    record("failed", error),
                    Vec::new(),
                );
            }
            // A delay the provider asked for (Retry-After) is honoured, plus jitter so that renders
            // told the same thing do not all come back at the same instant.
            let delay = match delay {
                Some(asked) => asked + jitter(asked / 4 + Duration::from_millis(100)),
                None => backoff(app, attempts),
            };
            let t = Transition {
                state: to.as_str().into(),
                run_after: now + delay.as_millis() as i64,
                attempts,
                error_category: Some(category.as_str().into()),
                error: Some(error.clone()),
                ..Transition::default()
            };
            (
                t,
                record("retry", format!("{error}; next attempt in {delay:?}")),
                Vec::new(),
            )
        }
        Outcome::Fail { category, error } => (
            fail(category, error.clone()),
            record("failed", error),
            Vec::new(),
        ),
        Outcome::Reconcile { until, reason } => {
            let t = Transition {
                state: State::Reconciling.as_str().into(),
                run_after: until,
                attempts: render.attempts,
                error_category: Some(Category::AmbiguousSubmit.as_str().into()),
                error: Some(reason.clone()),
                ..Transition::default()
            };
            (t, record("ambiguous", reason), Vec::new())
        }
        Outcome::Park { category, error } => {
            let t = Transition {
                state: State::NeedsAttention.as_str().into(),
                run_after: now,
                attempts: render.attempts,
                error_category: Some(category.as_str().into()),
                error: Some(error.clone()),
                ..Transition::default()
            };
            (t, record("parked", error), Vec::new())
        }
        Outcome::LeaseLost => unreachable!("handled by the caller"),
    }
}

/// A random delay in `0..=max`.
fn jitter(max: Duration) -> Duration {
    Duration::from_millis(rand::thread_rng().gen_range(0..=max.as_millis() as u64))
}

/// Capped exponential backoff with jitter (50–100 % of the capped delay), so that many renders
/// failing together do not retry together.
fn backoff(app: &App, attempts: i64) -> Duration {
    let retry = &app.config.retry;
    let exp = retry
        .base_delay_ms
        .saturating_mul(1u64 << attempts.clamp(0, 30));
    let capped = exp.min(retry.max_delay_ms);
    let jittered = rand::thread_rng().gen_range(capped / 2..=capped.max(1));
    Duration::from_millis(jittered)
}
