//! Logging. Every line about a render carries its `render` id and, once submitted, its provider
//! `job` id (tracing span fields), so one render's story can be grepped out of the logs.

use std::num::NonZeroU32;
use std::sync::LazyLock;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tracing_subscriber::EnvFilter;

/// Lines about refused requests: 10 a second, bursts of 20, for the whole process. A flood of
/// bad requests is counted in metrics (by reason, as always), not written line by line.
static REJECTION_LINES: LazyLock<DefaultDirectRateLimiter> = LazyLock::new(|| {
    let per_second = NonZeroU32::new(10).expect("non-zero");
    RateLimiter::direct(
        Quota::per_second(per_second).allow_burst(NonZeroU32::new(20).expect("non-zero")),
    )
});

/// Whether a line about a refused request may be written now (else it is counted as suppressed).
pub fn may_log_rejection() -> bool {
    let allowed = REJECTION_LINES.check().is_ok();
    if !allowed {
        crate::metrics::log_line_suppressed();
    }
    allowed
}

/// `tracing::warn!` for a refused request, rate-limited by [`may_log_rejection`].
macro_rules! warn_rejected {
    ($($arg:tt)*) => {
        if $crate::telemetry::may_log_rejection() {
            tracing::warn!($($arg)*);
        }
    };
}
pub(crate) use warn_rejected;

/// Logs to stderr at `default_level` (`RUST_LOG` overrides it). `VIDHOOK_LOG_FORMAT=json`
/// writes one JSON object per line (span fields included) for log pipelines.
pub fn init(default_level: &str) {
    // PostgreSQL's notices ("relation … already exists, skipping" from idempotent migrations)
    // are not news at every start of every command.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default_level},sqlx::postgres::notice=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json_logs() {
        builder.json().with_current_span(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// Whether JSON log lines were asked for (`VIDHOOK_LOG_FORMAT=json`): then every line vidhook
/// writes for a log pipeline is JSON, the "listening" line on stdout included.
pub fn json_logs() -> bool {
    std::env::var("VIDHOOK_LOG_FORMAT").is_ok_and(|f| f == "json")
}
