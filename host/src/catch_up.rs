//! The catch-up sweep: publishes whose webhook never arrived still get their video.
//!
//! Ghost never retries a webhook, Strapi's runner makes one attempt, WordPress's plugin fires and
//! forgets: a publish made while vidhook is down (a deploy, a crash) is otherwise lost. So, per
//! source whose CMS can be listed, at start-up and every `catch_up_secs`, the sweep asks the CMS
//! for the items published or changed since the source's watermark (less [`OVERLAP_MS`], for
//! clock skew and for CMS transactions that commit after their timestamp, but never before the
//! source's first sweep) and hands each to
//! [`crate::jobs::accept`], the webhook's own accept path. Deduplication there makes the sweep
//! idempotent: an item a webhook already delivered, or an earlier sweep accepted, is a duplicate
//! and costs nothing. Drafts are never listed (each adapter uses its CMS's published filter).
//!
//! The watermark moves only after the items up to it are committed, and only forward; a sweep
//! that meets the CMS down keeps it and tries again with backoff. With several instances on one
//! database a lease (`catch_up` table) lets one sweep run per source at a time. On a source's
//! first sweep the watermark starts at "now": what was published before vidhook knew the source
//! is backfill's business (an explicit, estimated, confirmed run), not an automatic spend.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::cms::pager::{Paged, Pager};
use crate::store::{now_ms, Ingested, StoreError, SweepCounts};

/// How far before the watermark each listing starts.
pub const OVERLAP_MS: i64 = 120_000;
/// How long a sweep may hold its source before another instance may take over.
const LEASE: Duration = Duration::from_secs(600);
/// The first retry after a failed sweep; doubled per failure up to `catch_up_secs`.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// What one sweep did.
#[derive(Debug, PartialEq, Eq)]
pub enum Swept {
    /// Listed everything since the watermark; `found` items were new (no webhook had delivered
    /// them), `listed` in all.
    Done { listed: u64, found: u64 },
    /// Another instance is sweeping this source now.
    Busy,
    /// This source's CMS (or its config) cannot list.
    Unlisted,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The CMS's listing failed: the watermark stays, the sweep is tried again.
    #[error("listing failed: {0}")]
    Cms(#[from] crate::cms::ListError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Starts a sweep loop for every source with `catch_up_secs` > 0.
pub fn spawn(app: &Arc<App>, loops: &mut crate::background::Loops) {
    for (source, config) in &app.config.sources {
        let period = Duration::from_secs(config.settings.catch_up_secs);
        if !period.is_zero() {
            let (app, source) = (app.clone(), source.clone());
            loops.spawn(move |stopped| run(app, source, period, stopped));
        }
    }
}

async fn run(app: Arc<App>, source: String, period: Duration, mut stopped: watch::Receiver<bool>) {
    let owner = format!("{}/catch-up", crate::store::new_id());
    let mut failures = 0u32;
    loop {
        let wait = match sweep(&app, &source, &owner).await {
            Ok(Swept::Unlisted) => {
                tracing::info!(
                    source,
                    "this source's CMS cannot be listed (or its API is not configured): no catch-up sweep"
                );
                return;
            }
            Ok(_) => {
                failures = 0;
                period
            }
            Err(err) => {
                failures += 1;
                let wait = FIRST_BACKOFF
                    .saturating_mul(2u32.saturating_pow(failures - 1))
                    .min(period);
                crate::telemetry::warn_rejected!(source, error = %err, retry_in = ?wait, "catch-up sweep failed; watermark kept");
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
    }
}

/// Sweeps `source` once as `owner`: lists since its watermark, accepts each item, advances the
/// watermark page by page after each page's items are committed.
pub async fn sweep(app: &App, source: &str, owner: &str) -> Result<Swept, SweepError> {
    let Some(adapter) = app.sources.get(source) else {
        return Ok(Swept::Unlisted);
    };
    let until = now_ms() + LEASE.as_millis() as i64;
    let since = match app
        .store
        .claim_catch_up(source, owner, now_ms(), until)
        .await?
    {
        None => return Ok(Swept::Busy),
        Some(None) => {
            // First sight: the watermark starts now; there is nothing before it to catch up (and
            // no lease was taken).
            crate::metrics::catch_up_sweep(source, "ok");
            return Ok(Swept::Done {
                listed: 0,
                found: 0,
            });
        }
        // The overlap never reaches back before the source's first sweep.
        Some(Some((watermark, started_at))) => (watermark - OVERLAP_MS).max(started_at),
    };
    let refused_before = take_refused(source);
    let result = sweep_pages(app, adapter.as_ref(), source, owner, since).await;
    let recorded = match &result {
        Ok(Swept::Done { listed, found }) => {
            report(source, since, (*listed, *found), refused_before);
            Ok(SweepCounts {
                listed: *listed,
                found: *found,
                refused_before,
            })
        }
        Ok(_) => Ok(SweepCounts::default()),
        Err(err) => Err(err.to_string()),
    };
    app.store
        .finish_catch_up(
            source,
            owner,
            recorded.as_ref().map(|c| *c).map_err(String::as_str),
        )
        .await?;
    let outcome = if result.is_ok() { "ok" } else { "failed" };
    if !matches!(result, Ok(Swept::Unlisted)) {
        crate::metrics::catch_up_sweep(source, outcome);
    }
    result
}

/// Logs what a finished sweep did: new items at INFO; a sweep that listed nothing although the
/// source refused deliveries since the last sweep at WARN with a metric — the publishes those
/// deliveries carried are exactly what the sweep is there to find, so an empty listing then
/// points at a filter the CMS reads differently (a date format, a time zone) or a clock.
fn report(source: &str, since: i64, (listed, found): (u64, u64), refused_before: u64) {
    let since = crate::cms::format_time(since);
    if listed == 0 && refused_before > 0 {
        crate::metrics::catch_up_empty_after_refusals(source);
        tracing::warn!(
            source,
            since,
            refused_before,
            "catch-up sweep listed nothing although the source refused deliveries since the last \
             sweep: check that the CMS's listing finds recent publishes (its filter, time zone \
             and clock)"
        );
    } else if found > 0 {
        tracing::info!(
            source,
            since,
            listed,
            found,
            "catch-up sweep found publishes no webhook delivered"
        );
    } else {
        tracing::debug!(source, since, listed, found, "catch-up sweep done");
    }
}

/// Deliveries refused per source since its last sweep began.
static REFUSED: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Counts a delivery `source` refused (a bad signature, a malformed or oversized body…), for its
/// next sweep's report.
pub fn delivery_refused(source: &str) {
    let mut refused = REFUSED.lock().unwrap_or_else(|p| p.into_inner());
    *refused.entry(source.to_string()).or_default() += 1;
}

fn take_refused(source: &str) -> u64 {
    REFUSED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(source)
        .unwrap_or(0)
}

/// Lists by time (see [`Pager`]), accepting each page's items, then moving the watermark to the
/// newest change the page held.
async fn sweep_pages(
    app: &App,
    adapter: &dyn crate::cms::CmsAdapter,
    source: &str,
    owner: &str,
    since: i64,
) -> Result<Swept, SweepError> {
    let (mut listed, mut found) = (0u64, 0u64);
    let mut pager = Pager::new(adapter, since);
    loop {
        let (items, newest) = match pager.next().await? {
            Paged::Unlisted => return Ok(Swept::Unlisted),
            Paged::End => return Ok(Swept::Done { listed, found }),
            Paged::Items { items, newest } => (items, newest),
        };
        for item in &items {
            listed += 1;
            match &item.contents {
                Ok(contents) => found += accept_listed(app, source, contents).await?,
                Err(reason) => {
                    crate::telemetry::warn_rejected!(
                        source,
                        reason,
                        "catch-up: a listed item is not valid content; skipped"
                    );
                }
            }
        }
        // Every item changed before `newest` (and after the window's start) was listed, and
        // is committed now.
        if !app.store.advance_catch_up(source, owner, newest).await? {
            // Another instance took the lease over (ours ran out): it continues from the
            // watermark; everything accepted here is committed and deduplicated.
            return Ok(Swept::Busy);
        }
    }
}

/// Hands one listed item to the webhook's accept path; returns how many of its contents were new.
async fn accept_listed(
    app: &App,
    source: &str,
    contents: &[crate::content::Content],
) -> Result<u64, SweepError> {
    if let Some(reason) = contents.iter().find_map(|c| c.validate().err()) {
        crate::telemetry::warn_rejected!(
            source,
            reason,
            "catch-up: a listed item is not valid content; skipped"
        );
        return Ok(0);
    }
    let outcomes = crate::jobs::accept(
        &app.store,
        app.config.chain(source),
        source,
        None,
        None,
        contents,
    )
    .await?;
    let mut new = 0;
    for outcome in &outcomes {
        if let Ingested::Accepted {
            event_id,
            render_id,
        } = outcome
        {
            new += 1;
            tracing::info!(source, event = %event_id, render = %render_id, "catch-up: accepted a publish no webhook had delivered");
        }
    }
    if new > 0 {
        crate::metrics::catch_up_found(source, new);
        app.wake.notify_waiters();
    }
    Ok(new)
}
