//! A way out of every parked or failed state, for operators (`vidhook jobs retry|adopt|resubmit`
//! and the admin API). Each action says exactly what it changed, refuses what could pay twice
//! without being told so, and is audited (who, when, why).

use crate::generation::{Hosts, JobStatus};
use crate::store::{Audit, RenderRow, Store, StoreError};

use super::State;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no render {0}")]
    NoSuchRender(String),
    /// The action does not apply, or could pay twice: the message says what would.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who acts and why (both required: they are the audit entry).
pub struct Operator<'a> {
    pub actor: &'a str,
    pub reason: &'a str,
}

impl Operator<'_> {
    fn audit<'a>(&'a self, action: &'a str) -> Audit<'a> {
        Audit {
            actor: self.actor,
            action,
            reason: self.reason,
        }
    }
}

async fn load(store: &Store, id: &str) -> Result<RenderRow, OperatorError> {
    store
        .render(id)
        .await?
        .ok_or_else(|| OperatorError::NoSuchRender(id.to_string()))
}

fn moved(ok: bool, id: &str, to: &str) -> Result<String, OperatorError> {
    if ok {
        Ok(format!("{id}: now in {to}; a running host continues it"))
    } else {
        Err(OperatorError::Refused(format!(
            "{id} changed state meanwhile; look again with `vidhook jobs show {id}`"
        )))
    }
}

/// `failed` (including `timeout`) or `writeback_failed` → runs again from the first step that did
/// not complete. A render that holds a job follows that job (or writes its video back); the paid
/// submit is re-run only when the render holds no job and no submit of it was ambiguous.
pub async fn retry(store: &Store, id: &str, who: &Operator<'_>) -> Result<String, OperatorError> {
    let render = load(store, id).await?;
    let from = render.state.as_str();
    if from != State::Failed.as_str() && from != State::WritebackFailed.as_str() {
        return Err(OperatorError::Refused(format!(
            "{id} is {from}; retry is for failed, timeout and writeback_failed renders \
             (a parked render: `vidhook jobs adopt` or `resubmit`)"
        )));
    }
    let to = if render.video_url.is_some() {
        State::Keep
    } else if let Some(job) = &render.provider_job_id {
        if render.error_category.as_deref() != Some(super::Category::Timeout.as_str()) {
            return Err(OperatorError::Refused(format!(
                "{id} holds job {job}, which the provider reported as failed; running the paid \
                 submit again makes a second job: `vidhook jobs resubmit {id} --accept-double-charge`"
            )));
        }
        State::Await
    } else {
        let step = store.failed_step(id).await?.unwrap_or_default();
        let to = State::parse(&step).unwrap_or(State::Plan);
        if matches!(to, State::Submit | State::Submitting | State::Reconciling) {
            if store.count_steps(id, "ambiguous").await? > 0 {
                return Err(OperatorError::Refused(format!(
                    "a submit of {id} had an unknown outcome, so a job may exist: find it in the \
                     provider's dashboard and `vidhook jobs adopt {id} --job JOB_ID`, or \
                     `vidhook jobs resubmit {id} --accept-double-charge`"
                )));
            }
            State::Submit
        } else {
            to
        }
    };
    let ok = store
        .operator_move(id, from, to.as_str(), None, &who.audit("retry"))
        .await?;
    moved(ok, id, to.as_str())
}

/// A parked (or timed-out) render whose job the operator found: confirmed with the host the
/// render is with (its status read must know the job), then followed from `await` with a fresh
/// wait.
pub async fn adopt(
    store: &Store,
    hosts: &Hosts,
    id: &str,
    job_id: &str,
    who: &Operator<'_>,
) -> Result<String, OperatorError> {
    let render = load(store, id).await?;
    let adoptable = matches!(
        State::parse(&render.state),
        Some(State::NeedsAttention | State::Reconciling | State::Submitting)
    ) || (render.state == State::Failed.as_str()
        && render.error_category.as_deref() == Some(super::Category::Timeout.as_str()));
    if !adoptable {
        return Err(OperatorError::Refused(format!(
            "{id} is {}; only needs_attention, reconciling and timed-out renders adopt a job",
            render.state
        )));
    }
    if let Some(held) = render.provider_job_id.as_deref().filter(|h| *h != job_id) {
        return Err(OperatorError::Refused(format!(
            "{id} already holds job {held}, not {job_id}"
        )));
    }
    let host = super::provider_steps::host_of(store, hosts, &render).await?;
    let status = host.provider.status(job_id).await.map_err(|err| {
        OperatorError::Refused(format!(
            "{} could not confirm job {job_id}: {err}",
            host.name
        ))
    })?;
    let seen = match &status {
        JobStatus::Pending(s) => s.clone(),
        JobStatus::Completed { .. } => "completed".into(),
        JobStatus::Failed(e) => format!("failed: {e}"),
    };
    let detail = format!("operator {} adopted job {job_id} ({seen})", who.actor);
    store.adopt_job(id, job_id, &detail).await?;
    let now = load(store, id).await?;
    if now.state != State::Await.as_str() {
        return Err(OperatorError::Refused(format!(
            "{id} changed state meanwhile (now {})",
            now.state
        )));
    }
    store
        .audit(
            &who.audit("adopt"),
            id,
            &format!("{} → await, job {job_id} ({seen})", render.state),
        )
        .await?;
    Ok(format!(
        "{id}: adopted job {job_id} ({seen}); a running host follows it to the end"
    ))
}

/// Submits again with a new key, knowingly: the previous attempt may have created a job that is
/// (or will be) billed as well. Refused without `accept_double_charge`.
pub async fn resubmit(
    store: &Store,
    id: &str,
    accept_double_charge: bool,
    who: &Operator<'_>,
) -> Result<String, OperatorError> {
    let render = load(store, id).await?;
    let from = render.state.as_str();
    if !matches!(
        State::parse(from),
        Some(State::NeedsAttention | State::Reconciling | State::Failed)
    ) {
        return Err(OperatorError::Refused(format!(
            "{id} is {from}; resubmit is for needs_attention, reconciling and failed renders"
        )));
    }
    if render.audio_key.is_none() {
        return Err(OperatorError::Refused(format!(
            "{id} never reached the submit step; use `vidhook jobs retry {id}`"
        )));
    }
    if !accept_double_charge {
        return Err(OperatorError::Refused(format!(
            "the previous submit of {id} (Idempotency-Key {}) may have created a job that is \
             billed too; pass --accept-double-charge to pay for a new one",
            render.submit_key.as_deref().unwrap_or("-")
        )));
    }
    let key = crate::store::new_id();
    let ok = store
        .operator_move(
            id,
            from,
            State::Submit.as_str(),
            Some(&key),
            &who.audit("resubmit"),
        )
        .await?;
    moved(ok, id, State::Submit.as_str())
}

/// Stops a render before anything is paid: from plan, speak, check, submit (the paid call not
/// yet made: moving to `submitting` is fenced by the worker's lease, which this clears) or
/// awaiting approval, to `skipped`. A render whose job may exist is not cancelled here: the
/// provider has it, and its video is paid for either way.
pub async fn cancel(store: &Store, id: &str, who: &Operator<'_>) -> Result<String, OperatorError> {
    let render = load(store, id).await?;
    let from = render.state.as_str();
    if !matches!(
        State::parse(from),
        Some(State::Plan | State::Speak | State::Check | State::Submit | State::AwaitingApproval)
    ) {
        return Err(OperatorError::Refused(format!(
            "{id} is {from}; only renders before their paid call (plan, speak, check, submit, \
             awaiting_approval) can be cancelled"
        )));
    }
    if render.provider_job_id.is_some() || store.count_steps(id, "ambiguous").await? > 0 {
        return Err(OperatorError::Refused(format!(
            "a submit of {id} may have created a job already; follow it instead"
        )));
    }
    let to = State::Skipped.as_str();
    let ok = store
        .operator_move(id, from, to, None, &who.audit("cancel"))
        .await?;
    moved(ok, id, to)
}
