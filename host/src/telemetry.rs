//! Logging. Every line about a render carries its `render` id (a tracing span field), so one
//! render's story can be grepped out of the logs.

use tracing_subscriber::EnvFilter;

/// Logs to stderr; `RUST_LOG` overrides the default `info` level.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
