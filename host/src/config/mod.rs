//! `vidhook.toml`: sources, provider, TTS, media and limits. Read once at start-up; nobody writes
//! it. String values may reference environment variables as `${NAME}` (how secrets get in without
//! being committed); a reference to an unset variable is an error, never an empty secret.
//! Relative paths are relative to the config file's folder.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

mod secrets;
mod source;
mod unknown_keys;

pub use source::{AmbiguousSubmitPolicy, CmsConfig, SourceConfig, SourceSettings, TooLongPolicy};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{path}: {explained}")]
    UnknownKey { path: PathBuf, explained: String },
    #[error("{path}: environment variable {name} is referenced but not set")]
    MissingEnv { path: PathBuf, name: String },
    #[error("{path}: {key} is `${{{name}}}`, which is set but empty")]
    EmptyEnv {
        path: PathBuf,
        key: String,
        name: String,
    },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP server listens. Port 0 picks a free port.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The base URL at which providers and browsers reach this host; default: the bound address.
    pub public_url: Option<String>,
    /// Database, media and component cache live here unless set otherwise.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `sqlite://…` (default: `<data_dir>/vidhook.db`) or `postgres://…`.
    pub database_url: Option<String>,
    /// How long an operation waits for a database connection or lock before it fails.
    #[serde(default = "default_database_timeout")]
    pub database_timeout_secs: u64,
    /// Concurrent render steps in this process.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// Largest accepted webhook body.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Webhook requests handled at once; more are answered 503 + Retry-After at once rather than
    /// queued in memory (the sender retries; nothing was acknowledged).
    #[serde(default = "default_max_inflight")]
    pub max_inflight_webhooks: usize,
    /// Put `/metrics` behind a (viewer) API token.
    #[serde(default)]
    pub metrics_need_token: bool,
    /// On SIGTERM: how long in-flight steps get to commit before their leases are released.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub tts: TtsConfig,
    #[serde(default)]
    pub provider: ProviderConfig,
    #[serde(default)]
    pub checks: ChecksConfig,
    /// Connection limits (`crate::listener`).
    #[serde(default)]
    pub listener: crate::listener::Config,
    /// The outbound guard's development allowlist (`crate::outbound`).
    #[serde(default)]
    pub outbound: crate::outbound::Config,
    #[serde(default)]
    pub retry: RetryConfig,
    #[serde(default)]
    pub plugins: PluginsConfig,
    #[serde(default)]
    pub budgets: BudgetsConfig,
    /// Run everything except the paid call (every source).
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Key for signed media URLs; default: a random key kept in `<data_dir>/media.key`.
    pub signing_secret: Option<String>,
    /// How long a signed URL (audio, photo) stays valid.
    pub url_ttl_secs: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            signing_secret: None,
            url_ttl_secs: 6 * 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TtsConfig {
    /// The espeak-ng executable.
    pub espeak_binary: String,
    /// Speaking rate; keep it equal to the plugins' `words_per_minute`.
    pub words_per_minute: u32,
    /// Longest a synthesis may take.
    pub timeout_secs: u64,
}

impl Default for TtsConfig {
    fn default() -> Self {
        Self {
            espeak_binary: "espeak-ng".into(),
            words_per_minute: 175,
            timeout_secs: 60,
        }
    }
}

/// Which video provider makes the videos.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ProviderConfig {
    /// Local, free: ffmpeg renders the photo with the narration into an MP4.
    Preview {
        #[serde(default = "default_ffmpeg")]
        ffmpeg_binary: String,
    },
    /// The OmniHuman v1.5 API (Seedance REST API).
    Omnihuman(OmniHumanConfig),
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig::Preview {
            ffmpeg_binary: default_ffmpeg(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OmniHumanConfig {
    #[serde(default = "default_omnihuman_url")]
    pub base_url: String,
    /// Bearer key; write `api_key = "${SEEDANCE_API_KEY}"`.
    pub api_key: String,
    /// Ask the provider to call us back (recommended); polling still runs as the fallback.
    #[serde(default = "yes")]
    pub webhooks: bool,
    #[serde(default = "default_poll_secs")]
    pub poll_interval_secs: u64,
    /// A job still unfinished after this long fails with category `timeout`.
    #[serde(default = "default_max_wait")]
    pub max_wait_secs: u64,
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// How long a paid submit whose outcome is unknown waits in `reconciling` for its job to
    /// announce itself (webhook) before the source's `ambiguous_submit` policy applies; default
    /// `max_wait_secs`.
    pub reconcile_window_secs: Option<u64>,
    /// If the provider signs its webhooks: the shared secret. Scheme (the one resellers of this
    /// model use): `<header>: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`,
    /// 300 s window. Checked in addition to the per-render token.
    pub webhook_secret: Option<String>,
    #[serde(default = "default_signature_header")]
    pub webhook_signature_header: String,
    /// Calls a minute to the API (submits and status reads), for all workers of this process.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// Calls in flight at once.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent: usize,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// Accept plain-http image/audio URLs (loopback development). Default: only with the local
    /// preview provider.
    pub allow_plain_http: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
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

/// Spending limits, in provider credits per UTC day.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetsConfig {
    /// All sources together; none = unlimited.
    pub daily_credits: Option<i64>,
}

/// The plugin host's maxima and grants. A plugin's manifest asks; these bound what it gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    pub max_fuel: u64,
    pub max_deadline_ms: u64,
    pub max_memory_mb: u64,
    pub max_output_kb: u64,
    pub max_http_calls: u32,
    /// Let manifests allow loopback hosts (127.0.0.0/8, ::1, localhost): development and tests.
    pub allow_loopback_hosts: bool,
    /// Secrets a plugin may read if its manifest names them: `OPENAI_API_KEY = "${OPENAI_API_KEY}"`.
    pub secrets: BTreeMap<String, String>,
    /// Bearer token for the admin API (`POST /api/plugins`); none = admin API disabled.
    pub admin_token: Option<String>,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        PluginsConfig {
            max_fuel: 5_000_000_000,
            max_deadline_ms: 30_000,
            max_memory_mb: 128,
            max_output_kb: 1024,
            max_http_calls: 16,
            allow_loopback_hosts: false,
            secrets: BTreeMap::new(),
            admin_token: None,
        }
    }
}

impl PluginsConfig {
    /// The host maxima as run limits.
    pub fn max_limits(&self) -> crate::plugins::Limits {
        crate::plugins::Limits {
            fuel: self.max_fuel,
            deadline: std::time::Duration::from_millis(self.max_deadline_ms),
            memory_bytes: (self.max_memory_mb as usize) << 20,
            output_bytes: (self.max_output_kb as usize) << 10,
            http_calls: self.max_http_calls,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// `name` (the latest installed version) or `name@version`.
    pub name: String,
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

fn default_listen() -> SocketAddr {
    ([127, 0, 0, 1], 8640).into()
}
fn default_data_dir() -> PathBuf {
    ".vidhook".into()
}
fn default_workers() -> usize {
    4
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_max_inflight() -> usize {
    512
}
fn default_grace() -> u64 {
    30
}
fn default_database_timeout() -> u64 {
    10
}
fn default_ffmpeg() -> String {
    "ffmpeg".into()
}
fn default_omnihuman_url() -> String {
    "https://api.seedance.it.com/v1".into()
}
fn yes() -> bool {
    true
}
fn default_poll_secs() -> u64 {
    15
}
fn default_max_wait() -> u64 {
    30 * 60
}
fn default_request_timeout() -> u64 {
    30
}
fn default_signature_header() -> String {
    "x-seedance-signature".into()
}
fn default_requests_per_minute() -> u32 {
    120
}
fn default_max_concurrent() -> usize {
    4
}

impl Config {
    /// The embedded defaults: SQLite, local media, espeak-ng, the preview provider, the bundled
    /// presenter, and a Markdown folder `content/` (presenter photo `content/presenter.png`).
    pub fn embedded_defaults(data_dir: PathBuf, content_folder: PathBuf) -> Config {
        let mut sources = BTreeMap::new();
        sources.insert(
            "content".to_string(),
            SourceConfig {
                cms: CmsConfig::Markdown {
                    folder: content_folder.clone(),
                },
                settings: SourceSettings {
                    presenter_image: Some(
                        content_folder.join("presenter.png").display().to_string(),
                    ),
                    ..SourceSettings::default()
                },
            },
        );
        Config {
            listen: default_listen(),
            public_url: None,
            data_dir,
            database_url: None,
            database_timeout_secs: default_database_timeout(),
            workers: default_workers(),
            max_body_bytes: default_max_body(),
            max_inflight_webhooks: default_max_inflight(),
            metrics_need_token: false,
            shutdown_grace_secs: default_grace(),
            media: MediaConfig::default(),
            tts: TtsConfig::default(),
            provider: ProviderConfig::default(),
            checks: ChecksConfig::default(),
            outbound: crate::outbound::Config::default(),
            listener: crate::listener::Config::default(),
            retry: RetryConfig::default(),
            plugins: PluginsConfig::default(),
            budgets: BudgetsConfig::default(),
            dry_run: false,
            sources,
        }
    }

    /// Reads a config file, expanding `${VAR}` references and resolving relative paths.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses a config file's text; `path` names it in errors and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut value: toml::Value = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        expand_env(&mut value, "").map_err(|err| match err {
            EnvError::Missing(name) => ConfigError::MissingEnv {
                path: path.into(),
                name,
            },
            EnvError::Empty(key, name) => ConfigError::EmptyEnv {
                path: path.into(),
                key,
                name,
            },
        })?;
        let mut config: Config = value
            .clone()
            .try_into()
            .map_err(|source: toml::de::Error| {
                let extra = unknown_keys::field_names::<SourceSettings>();
                match unknown_keys::explain(source.message(), &value, &extra) {
                    Some(explained) => ConfigError::UnknownKey {
                        path: path.into(),
                        explained,
                    },
                    None => ConfigError::Parse {
                        path: path.into(),
                        source,
                    },
                }
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.data_dir);
        for source in self.sources.values_mut() {
            if let CmsConfig::Markdown { folder } = &mut source.cms {
                resolve(folder);
            }
            if let Some(image) = &mut source.settings.presenter_image {
                if !image.starts_with("http://") && !image.starts_with("https://") {
                    let mut p = PathBuf::from(&*image);
                    resolve(&mut p);
                    *image = p.display().to_string();
                }
            }
        }
    }

    /// Catches mistakes at start-up instead of on the first event.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sources.is_empty() {
            return Err(ConfigError::Invalid("no [sources.*] configured".into()));
        }
        for (name, source) in &self.sources {
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::Invalid(format!(
                    "source name {name:?}: use letters, digits, '-' and '_' only"
                )));
            }
            if source.settings.plugins.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "source {name}: empty plugin chain"
                )));
            }
        }
        secrets::check(self)?;
        if self.workers == 0 {
            return Err(ConfigError::Invalid("workers must be at least 1".into()));
        }
        if self.max_inflight_webhooks == 0 {
            return Err(ConfigError::Invalid(
                "max_inflight_webhooks must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("vidhook.db").display()
            )
        })
    }

    /// How long an operation waits for a database connection or write lock.
    pub fn database_timeout(&self) -> Duration {
        Duration::from_secs(self.database_timeout_secs.max(1))
    }

    /// Whether image/audio URLs may be plain http.
    pub fn allow_plain_http(&self) -> bool {
        self.checks
            .allow_plain_http
            .unwrap_or(matches!(self.provider, ProviderConfig::Preview { .. }))
    }
}

/// Replaces `${NAME}` in every string with the environment variable's value.
/// Returns the name of the first unset variable.
/// Why a `${VAR}` reference could not be used.
enum EnvError {
    Missing(String),
    /// The key (dotted path) and the variable whose value is empty.
    Empty(String, String),
}

/// Expands `${VAR}` in every string. A value that names a variable and expands to nothing is
/// refused: such values are secrets, and an empty secret is an open door.
fn expand_env(value: &mut toml::Value, key: &str) -> Result<(), EnvError> {
    match value {
        toml::Value::String(s) => {
            let expanded = expand_str(s).map_err(EnvError::Missing)?;
            if s.contains("${") && expanded.trim().is_empty() {
                let name = s
                    .split("${")
                    .nth(1)
                    .and_then(|rest| rest.split('}').next())
                    .unwrap_or_default();
                return Err(EnvError::Empty(key.to_string(), name.to_string()));
            }
            *s = expanded;
        }
        toml::Value::Array(items) => items
            .iter_mut()
            .enumerate()
            .try_for_each(|(n, v)| expand_env(v, &format!("{key}[{n}]")))?,
        toml::Value::Table(table) => table.iter_mut().try_for_each(|(name, v)| {
            let inner = if key.is_empty() {
                name.clone()
            } else {
                format!("{key}.{name}")
            };
            expand_env(v, &inner)
        })?,
        _ => {}
    }
    Ok(())
}

fn expand_str(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(&std::env::var(name).map_err(|_| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_environment_references() {
        std::env::set_var("VIDHOOK_TEST_SECRET", "s3cret");
        assert_eq!(
            expand_str("a-${VIDHOOK_TEST_SECRET}-b").unwrap(),
            "a-s3cret-b"
        );
        assert_eq!(
            expand_str("${VIDHOOK_TEST_UNSET_XYZ}").unwrap_err(),
            "VIDHOOK_TEST_UNSET_XYZ"
        );
        assert_eq!(expand_str("no refs").unwrap(), "no refs");
    }

    #[test]
    fn the_example_config_parses() {
        std::env::set_var("SEEDANCE_API_KEY", "test-key");
        std::env::set_var(
            "BLOG_WEBHOOK_SECRET",
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        );
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/vidhook.toml");
        let config = Config::load(&path).unwrap();
        assert!(config.sources.contains_key("blog"));
        assert!(config.sources.contains_key("docs"));
    }

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vidhook.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    const SOURCE: &str = "[sources.blog]\ncms = \"standard-webhooks\"\n\
                          secret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\n";

    /// A typo in a money setting is a start-up error naming the key, its table and the fix.
    #[test]
    fn misspelt_keys_name_their_table_and_the_closest_valid_key() {
        let cases = [
            (
                format!("{SOURCE}daily_credit = 960\n"),
                "unknown key `daily_credit` in [sources.blog]; did you mean `daily_credits`?",
            ),
            (
                format!("{SOURCE}[budgets]\ndaily_credit = 960\n"),
                "unknown key `daily_credit` in [budgets]; did you mean `daily_credits`?",
            ),
            (
                format!("{SOURCE}[provider]\nkind = \"omnihuman\"\napi_key = \"k\"\nmax_wait_sec = 60\n"),
                "unknown key `max_wait_sec` in [provider]; did you mean `max_wait_secs`?",
            ),
            (
                format!("{SOURCE}ambigous_submit = \"park\"\n"),
                "did you mean `ambiguous_submit`?",
            ),
            (
                format!("{SOURCE}sekret = \"x\"\n"),
                "did you mean `secret`?",
            ),
        ];
        for (text, expected) in cases {
            let err = load_text(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
        // A CMS key on a source of another CMS is unknown too (no silent acceptance).
        let err = load_text(&format!("{SOURCE}space_id = \"s\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown key `space_id` in [sources.blog]"),
            "{err}"
        );
        let ok = load_text(&format!(
            "{SOURCE}daily_credits = 960\nambiguous_submit = \"resubmit\"\n"
        ))
        .unwrap();
        assert_eq!(ok.sources["blog"].settings.daily_credits, Some(960));
        assert_eq!(
            ok.sources["blog"].settings.ambiguous_submit,
            AmbiguousSubmitPolicy::Resubmit
        );
    }

    /// Empty or weak secrets refuse to start, naming the key.
    #[test]
    fn empty_and_weak_secrets_are_start_up_errors() {
        std::env::set_var("VIDHOOK_TEST_EMPTY", "");
        let err = load_text(&format!(
            "{SOURCE}[plugins]\nadmin_token = \"${{VIDHOOK_TEST_EMPTY}}\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("plugins.admin_token is `${VIDHOOK_TEST_EMPTY}`, which is set but empty"),
            "{err}"
        );
        let cases = [
            (
                format!("{SOURCE}[plugins]\nadmin_token = \"\"\n"),
                "plugins.admin_token is empty",
            ),
            (
                format!("{SOURCE}[plugins]\nadmin_token = \"short\"\n"),
                "plugins.admin_token is 5 bytes; it must be at least 16",
            ),
            (
                "[sources.cms]\ncms = \"sanity\"\nsecret = \"abc\"\n".to_string(),
                "sources.cms.secret is 3 bytes",
            ),
            (
                format!("[sources.cf]\ncms = \"contentful\"\nsigning_secret = \"{}\"\n", "x".repeat(63)),
                "sources.cf.signing_secret is 63 bytes; it must be at least 64",
            ),
            (
                "[sources.s]\ncms = \"strapi\"\ntoken = \" \"\n".to_string(),
                "sources.s.token is empty",
            ),
            (
                format!("{SOURCE}[provider]\nkind = \"omnihuman\"\napi_key = \"k\"\nwebhook_secret = \"hook\"\n"),
                "provider.webhook_secret is 4 bytes",
            ),
        ];
        for (text, expected) in cases {
            let err = load_text(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
