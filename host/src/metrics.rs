//! Prometheus metrics, through the `metrics` facade.
//!
//! Counters and histograms are per process (Prometheus sums them across instances). The queue's
//! depth per state is read from the shared database at scrape time instead, so every instance
//! reports the same truth however many there are. Every metric name is written here once; the
//! rest of the code calls the functions below.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // Generation takes minutes; steps and plugins take milliseconds to seconds.
        let minutes = [10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0];
        let seconds = [0.001, 0.005, 0.02, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("vidhook_generation_seconds".into()), &minutes)
            .and_then(|b| b.set_buckets(&seconds))
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program's); ours still renders.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    describe_counter!("vidhook_cms_webhooks_total", "CMS webhooks by source and outcome (accepted, duplicate, ignored, rejected) and rejection reason.");
    describe_counter!(
        "vidhook_provider_webhooks_total",
        "Provider webhook deliveries, received or rejected by reason."
    );
    describe_counter!(
        "vidhook_provider_polls_total",
        "Provider job status polls (the fallback for missing webhooks) by result."
    );
    describe_counter!(
        "vidhook_provider_failovers_total",
        "Renders moved to the next video host of their source because the previous provably did not take them, by host."
    );
    describe_counter!(
        "vidhook_provider_circuit_opened_total",
        "Times a video host's circuit breaker opened (consecutive refusals), by host."
    );
    describe_counter!(
        "vidhook_renders_finished_total",
        "Renders that reached a final state, by state and error category."
    );
    describe_counter!(
        "vidhook_step_errors_total",
        "Failed step attempts (retried or final) by step and error category."
    );
    describe_counter!(
        "vidhook_credits_consumed_total",
        "Provider credits reported consumed by finished jobs."
    );
    describe_counter!(
        "vidhook_catch_up_found_total",
        "Items the catch-up sweep found that no webhook had delivered (accepted as new), by source."
    );
    describe_counter!(
        "vidhook_catch_up_sweeps_total",
        "Catch-up sweeps by source and result (ok, failed: the CMS did not answer its listing)."
    );
    describe_histogram!("vidhook_step_seconds", "Time one step took in a worker.");
    describe_histogram!(
        "vidhook_generation_seconds",
        "Time from the paid submit to the finished video."
    );
    describe_histogram!("vidhook_plugin_seconds", "Wall time of one plugin call.");
    describe_gauge!(
        "vidhook_renders",
        "Renders per state and error category (the queue's depth), read from the database."
    );
    describe_gauge!(
        "vidhook_credits_today",
        "Credits counted against today's budget (UTC)."
    );
}

/// A CMS webhook's outcome: `accepted`, `duplicate`, `ignored` or `rejected` (with a reason).
pub fn cms_webhook(source: &str, outcome: &'static str, reason: &'static str) {
    counter!("vidhook_cms_webhooks_total", "source" => source.to_string(), "outcome" => outcome, "reason" => reason)
        .increment(1);
}

/// Items a catch-up sweep of `source` accepted as new: no webhook had delivered them.
pub fn catch_up_found(source: &str, items: u64) {
    counter!("vidhook_catch_up_found_total", "source" => source.to_string()).increment(items);
}

/// A sweep of `source` listed nothing although the source refused deliveries since the last one.
pub fn catch_up_empty_after_refusals(source: &str) {
    counter!("vidhook_catch_up_empty_after_refusals_total", "source" => source.to_string())
        .increment(1);
}

/// A catch-up sweep of `source` ended: `ok` or `failed`.
pub fn catch_up_sweep(source: &str, result: &'static str) {
    counter!("vidhook_catch_up_sweeps_total", "source" => source.to_string(), "result" => result)
        .increment(1);
}

/// A provider webhook delivery: `received`, or `rejected` with a reason.
pub fn provider_webhook(outcome: &'static str, reason: &'static str) {
    counter!("vidhook_provider_webhooks_total", "outcome" => outcome, "reason" => reason)
        .increment(1);
}

/// A log line about a refused request left out under a flood (the refusal itself is counted).
pub fn log_line_suppressed() {
    counter!("vidhook_log_lines_suppressed_total").increment(1);
}

/// A connection closed to make room for a new one (it had no request in flight).
pub fn connection_evicted() {
    counter!("vidhook_connections_evicted_total").increment(1);
}

/// A connection refused because every open one had a request in flight.
pub fn connection_refused() {
    counter!("vidhook_connections_refused_total").increment(1);
}

/// An `/api` request refused by the role gate (`unauthenticated` or `forbidden`): counted, not
/// logged line by line.
pub fn api_refused(reason: &'static str) {
    counter!("vidhook_api_refused_total", "reason" => reason).increment(1);
}

/// A status poll of a provider job (the fallback when no webhook has arrived yet).
pub fn provider_poll(result: &'static str) {
    counter!("vidhook_provider_polls_total", "result" => result).increment(1);
}

/// A render moved from host `from` to host `to` (failover).
pub fn provider_failover(from: &str, to: &str) {
    counter!("vidhook_provider_failovers_total", "from" => from.to_string(), "to" => to.to_string())
        .increment(1);
}

/// A host's circuit breaker opened.
pub fn circuit_opened(host: &str) {
    counter!("vidhook_provider_circuit_opened_total", "provider" => host.to_string()).increment(1);
}

/// A render reached a final state (`done`, `failed`, `skipped`, …): success rate = done / all.
pub fn render_finished(state: &str, category: &str) {
    counter!("vidhook_renders_finished_total", "state" => state.to_string(), "category" => category.to_string())
        .increment(1);
}

/// A step failed, for retry or for good, with its error category.
pub fn step_error(step: &str, category: &str) {
    counter!("vidhook_step_errors_total", "step" => step.to_string(), "category" => category.to_string())
        .increment(1);
}

/// How long one step took in a worker, by step and outcome.
pub fn step_seconds(step: &str, outcome: &str, seconds: f64) {
    histogram!("vidhook_step_seconds", "step" => step.to_string(), "outcome" => outcome.to_string())
        .record(seconds);
}

/// From the paid submit to the provider's completed video.
pub fn generation_seconds(provider: &str, seconds: f64) {
    histogram!("vidhook_generation_seconds", "provider" => provider.to_string()).record(seconds);
}

/// Credits the provider reports a finished job consumed.
pub fn credits_consumed(provider: &str, source: &str, credits: i64) {
    counter!("vidhook_credits_consumed_total", "provider" => provider.to_string(), "source" => source.to_string())
        .increment(credits.max(0) as u64);
}

/// One plugin call's wall time, by plugin and whether it succeeded.
pub fn plugin_seconds(plugin: &str, ok: bool, seconds: f64) {
    histogram!("vidhook_plugin_seconds", "plugin" => plugin.to_string(), "ok" => if ok { "true" } else { "false" })
        .record(seconds);
}

/// One template render's wall time in the template sandbox (`crate::templates::engine`).
pub fn template_render_seconds(seconds: f64) {
    histogram!("vidhook_template_render_seconds").record(seconds);
}

/// The queue's depth per state and error category, as read from the database for this scrape.
/// A state that emptied since the last scrape reads 0, not its last count.
pub fn queue_depth(counts: &[(String, String, i64)]) {
    static SEEN: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    for labels in seen.iter() {
        if !counts
            .iter()
            .any(|(s, c, _)| (s, c) == (&labels.0, &labels.1))
        {
            gauge!("vidhook_renders", "state" => labels.0.clone(), "category" => labels.1.clone())
                .set(0.0);
        }
    }
    for (state, category, n) in counts {
        gauge!("vidhook_renders", "state" => state.clone(), "category" => category.clone())
            .set(*n as f64);
        seen.insert((state.clone(), category.clone()));
    }
}

/// Credits counted against today's budget (UTC), from the ledger.
pub fn credits_today(credits: i64) {
    gauge!("vidhook_credits_today").set(credits as f64);
}

/// The text exposition of everything recorded in this process.
pub fn render() -> String {
    install().render()
}
