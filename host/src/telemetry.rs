//! Logging. Every line about a render carries its `render` id and, once submitted, its provider
//! `job` id (tracing span fields), so one render's story can be grepped out of the logs.

use tracing_subscriber::EnvFilter;

/// Logs to stderr; `RUST_LOG` overrides the default `info` level. `VIDHOOK_LOG_FORMAT=json`
/// writes one JSON object per line (span fields included) for log pipelines.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("VIDHOOK_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().with_current_span(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
