//! The durable render state machine.
//!
//! ```text
//! plan ──▶ speak ──▶ check ──▶ submit ──▶ (submitting) ──▶ await ──▶ write_back ──▶ done
//!   └─▶ skipped                              │    ▲
//!                         ambiguous outcome  ▼    │ the job announces itself (webhook) or an
//!                                       reconciling    operator adopts it
//!                                            │ window over, no job: the source's policy
//!                                            ▼
//!                          needs_attention (default) / submit again (only if keys are honoured)
//! failed (categorised)
//! ```
//! A render's `state` is the next step to run. A worker claims a due render under a lease,
//! runs that one step, and commits the outcome (fenced by the lease) before anything else
//! happens. A crash therefore resumes at the last committed step; only the paid submit has an
//! intermediate commit (`submitting`, with its idempotency key) so that an interrupted submit is
//! reconciled rather than repeated.

mod bundle;
pub use bundle::Companions;
pub mod caption_edits;
mod lease;
pub mod operator;
mod plan_steps;
pub(crate) use plan_steps::chain as render_chain;
mod provider_steps;
mod speech_steps;
mod steps;
mod worker;

pub use speech_steps::{narrate, speech_cost, Spoken};
pub use worker::{spawn_workers, Workers};

use crate::plugins::config::PluginRef;
use crate::store::{Store, StoreError};

/// The plugin versions a new render keeps: each chain entry resolved to `name@version` when the
/// event is accepted, so a version installed later does not change a job already in flight.
/// A bundled plugin not registered yet (no host has started on this database) pins to the
/// bundled version; an entry that is not installed at all stays as written (the plan step then
/// says so). Plugins an admin switched off for `source` are left out.
pub async fn pin_chain(
    store: &Store,
    source: &str,
    chain: &[PluginRef],
) -> Result<String, StoreError> {
    let mut pinned = Vec::with_capacity(chain.len());
    for entry in enabled_chain(store, source, chain).await? {
        let id = if entry.name.contains('@') {
            entry.name.clone()
        } else {
            match store.plugin(&entry.name, None).await? {
                Some(row) => format!("{}@{}", row.name, row.version),
                None => match crate::plugins::bundled_version(&entry.name) {
                    Some(version) => format!("{}@{version}", entry.name),
                    None => entry.name.clone(),
                },
            }
        };
        pinned.push(id);
    }
    Ok(serde_json::to_string(&pinned).expect("strings serialise"))
}

/// `source`'s chain without the plugins an admin switched off for it: what a new render pins and
/// what a preview runs.
pub async fn enabled_chain<'c>(
    store: &Store,
    source: &str,
    chain: &'c [PluginRef],
) -> Result<Vec<&'c PluginRef>, StoreError> {
    let disabled = store.disabled_plugins(source).await?;
    Ok(chain
        .iter()
        .filter(|entry| !disabled.iter().any(|off| off == entry.plugin()))
        .collect())
}

/// Accepts contents for `source`: pins its plugin chain (`chain`, from its configuration) and
/// commits the event(s) with a render at its first step, in one transaction. Webhooks, the
/// catch-up sweep, `vidhook publish`, digests and runs of many renders (`run_id`: a backfill or
/// a batch) all come through here.
pub async fn accept(
    store: &Store,
    chain: &[PluginRef],
    source: &str,
    delivery_id: Option<&str>,
    run_id: Option<&str>,
    contents: &[crate::content::Content],
) -> Result<Vec<crate::store::Ingested>, StoreError> {
    let pinned = pin_chain(store, source, chain).await?;
    store
        .ingest(
            source,
            delivery_id,
            contents,
            State::Plan.as_str(),
            &pinned,
            run_id,
        )
        .await
}

/// Where a render is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Plan,
    Speak,
    Check,
    Submit,
    Submitting,
    /// The paid call's outcome is unknown (5xx, timeout or reset after sending): waiting for the
    /// job to announce itself through the per-render webhook, until the reconcile window ends.
    Reconciling,
    Await,
    /// The video is ready: copy it into our media store (with poster and captions).
    Keep,
    WriteBack,
    Done,
    Skipped,
    Failed,
    NeedsAttention,
    /// Dry run: everything ran except the paid call.
    DryRun,
    /// A $0 preview is ready; the paid generation waits for an editor's approval.
    AwaitingApproval,
    /// The video exists (its URL is kept) but the CMS refused it for good or kept failing;
    /// `vidhook jobs retry-writeback ID` tries again.
    WritebackFailed,
}

impl State {
    pub const ALL: [State; 16] = [
        State::Plan,
        State::Speak,
        State::Check,
        State::Submit,
        State::Submitting,
        State::Reconciling,
        State::Await,
        State::Keep,
        State::WriteBack,
        State::Done,
        State::Skipped,
        State::Failed,
        State::NeedsAttention,
        State::DryRun,
        State::AwaitingApproval,
        State::WritebackFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Plan => "plan",
            State::Speak => "speak",
            State::Check => "check",
            State::Submit => "submit",
            State::Submitting => "submitting",
            State::Reconciling => "reconciling",
            State::Await => "await",
            State::Keep => "keep",
            State::WriteBack => "write_back",
            State::Done => "done",
            State::Skipped => "skipped",
            State::Failed => "failed",
            State::NeedsAttention => "needs_attention",
            State::DryRun => "dry_run",
            State::AwaitingApproval => "awaiting_approval",
            State::WritebackFailed => "writeback_failed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// States a worker may pick up.
    pub fn is_runnable(self) -> bool {
        !matches!(
            self,
            State::Done
                | State::Skipped
                | State::Failed
                | State::NeedsAttention
                | State::DryRun
                | State::AwaitingApproval
                | State::WritebackFailed
        )
    }
}

/// Why a render failed; shown by `vidhook jobs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    InputInvalid,
    ProviderRejected,
    ProviderFailed,
    Timeout,
    OverBudget,
    /// The paid call may have created a job; not resubmitted (see `generation::outcome`).
    AmbiguousSubmit,
    PluginError,
    /// An editor's template failed to render (strict mode, or past its budget).
    Template,
    TtsError,
    WritebackError,
    /// Keeping the finished video (copy, poster, captions) failed.
    MediaError,
    /// Held before its paid call: the run it belongs to is paused or cancelled.
    RunPaused,
    Internal,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::InputInvalid => "input_invalid",
            Category::ProviderRejected => "provider_rejected",
            Category::ProviderFailed => "provider_failed",
            Category::Timeout => "timeout",
            Category::OverBudget => "over_budget",
            Category::AmbiguousSubmit => "ambiguous_submit",
            Category::PluginError => "plugin_error",
            Category::Template => "template",
            Category::TtsError => "tts_error",
            Category::WritebackError => "writeback_error",
            Category::MediaError => "media_error",
            Category::RunPaused => "run_paused",
            Category::Internal => "internal",
        }
    }
}

/// `[retry]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Attempts per step before a transient failure becomes final.
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay_ms: 500,
            max_delay_ms: 60_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_finals_are_not_runnable() {
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert!(State::Submitting.is_runnable());
        assert!(!State::NeedsAttention.is_runnable());
        assert_eq!(State::parse("bogus"), None);
    }
}
