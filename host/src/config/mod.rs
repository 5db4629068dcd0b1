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

// Each module owns its section; this file composes them into the one `Config`.
pub use crate::checks::ChecksConfig;
pub use crate::generation::config::{BudgetsConfig, OmniHumanConfig, ProviderConfig};
pub use crate::jobs::RetryConfig;
pub use crate::media::MediaConfig;
pub use crate::plugins::config::{PluginRef, PluginsConfig};
pub use crate::tts::TtsConfig;

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
    /// The one video host, when no `[providers.NAME]` are configured (named by its kind).
    pub provider: Option<ProviderConfig>,
    /// Video hosts by name; each source names the ones it uses, in order (`providers = [...]`).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
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

impl Config {
    /// The plugin chain of `source` (none for a source that is not configured).
    pub fn chain(&self, source: &str) -> &[PluginRef] {
        self.sources
            .get(source)
            .map(|s| s.settings.plugins.as_slice())
            .unwrap_or_default()
    }

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
            provider: None,
            providers: BTreeMap::new(),
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
            let engines = source
                .settings
                .tts
                .iter()
                .chain(source.settings.tts_locales.values());
            for engine in engines {
                if engine != crate::tts::ESPEAK && !self.tts.providers.contains_key(engine) {
                    return Err(ConfigError::Invalid(format!(
                        "source {name}: no TTS provider {engine:?}; configure [tts.providers.{engine}] or use \"espeak\""
                    )));
                }
            }
            if let Some(digest) = &source.settings.digest {
                digest
                    .schedule()
                    .map_err(|e| ConfigError::Invalid(format!("[sources.{name}.digest] {e}")))?;
                if let Some(deliver) = &digest.deliver {
                    deliver.check().map_err(|e| {
                        ConfigError::Invalid(format!("[sources.{name}.digest.deliver] {e}"))
                    })?;
                }
            }
        }
        self.validate_hosts()?;
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

    /// True when `source`'s renders run every step except the paid call.
    pub fn is_dry_run(&self, source: &str) -> bool {
        self.dry_run || self.sources.get(source).is_some_and(|s| s.settings.dry_run)
    }

    /// The daily credit limits a submit of `source` is held to.
    pub fn budgets_for(&self, source: &str) -> crate::store::ledger::Budgets {
        crate::store::ledger::Budgets {
            all_sources: self.budgets.daily_credits,
            this_source: self
                .sources
                .get(source)
                .and_then(|s| s.settings.daily_credits),
        }
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
        self.checks.allow_plain_http.unwrap_or_else(|| {
            self.video_hosts()
                .values()
                .all(|host| matches!(host, ProviderConfig::Preview { .. }))
        })
    }

    /// The video hosts by name: the `[providers.NAME]` tables, else the one `[provider]` (named
    /// by its kind), else the local preview.
    pub fn video_hosts(&self) -> BTreeMap<String, ProviderConfig> {
        if !self.providers.is_empty() {
            return self.providers.clone();
        }
        let one = self.provider.clone().unwrap_or_default();
        BTreeMap::from([(one.kind().to_string(), one)])
    }

    /// How each source uses the hosts (`generation::Hosts`): the hosts it names, else the only one.
    pub fn video_routes(&self) -> BTreeMap<String, crate::generation::Route> {
        let hosts = self.video_hosts();
        self.sources
            .iter()
            .map(|(name, source)| {
                let settings = &source.settings;
                let route = crate::generation::Route {
                    hosts: if settings.providers.is_empty() {
                        hosts.keys().cloned().collect()
                    } else {
                        settings.providers.clone()
                    },
                    failover_wait: Duration::from_secs(settings.failover_wait_secs),
                    by_limits: settings.route_by_limits,
                };
                (name.clone(), route)
            })
            .collect()
    }

    /// Per source, the longest narration its video hosts take at (720p, 1080p): what its plugins
    /// fit a plan to (`generation::hosts::longest_on_route`).
    pub fn audio_limits(&self) -> BTreeMap<String, (f64, f64)> {
        use crate::generation::{hosts::longest_on_route, Resolution};
        let hosts = self.video_hosts();
        self.video_routes()
            .into_iter()
            .map(|(source, route)| {
                let longest = |resolution: Resolution| {
                    let limit = |name: &str| Some(hosts.get(name)?.max_audio_seconds(resolution));
                    longest_on_route(&route, limit).unwrap_or(resolution.max_audio_seconds())
                };
                let limits = (longest(Resolution::P720), longest(Resolution::P1080));
                (source, limits)
            })
            .collect()
    }

    /// Each `[providers.NAME]` name is usable in a URL, `[provider]` and `[providers]` are not
    /// mixed, and every source names hosts that exist (several hosts: each source names its own).
    fn validate_hosts(&self) -> Result<(), ConfigError> {
        if self.provider.is_some() && !self.providers.is_empty() {
            return Err(ConfigError::Invalid(
                "both [provider] and [providers.*] are configured: move [provider] into \
                 [providers.NAME] and name it in each source's `providers`"
                    .into(),
            ));
        }
        let hosts = self.video_hosts();
        let names = hosts.keys().cloned().collect::<Vec<_>>().join(", ");
        for name in self.providers.keys() {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::Invalid(format!(
                    "[providers.{name}]: use letters, digits, '-' and '_' only in a host's name"
                )));
            }
        }
        for (source, config) in &self.sources {
            let named = &config.settings.providers;
            if named.is_empty() && hosts.len() > 1 {
                return Err(ConfigError::Invalid(format!(
                    "source {source}: several video hosts are configured ({names}); name the ones \
                     it uses, in order: providers = [\"{}\"]",
                    hosts.keys().next().expect("several")
                )));
            }
            for (i, name) in named.iter().enumerate() {
                if !hosts.contains_key(name) {
                    return Err(ConfigError::Invalid(format!(
                        "source {source}: no video host {name:?} (configured: {names})"
                    )));
                }
                if named[..i].contains(name) {
                    return Err(ConfigError::Invalid(format!(
                        "source {source}: video host {name:?} is named twice in `providers`"
                    )));
                }
            }
        }
        Ok(())
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
    /// The README sends editors to the address `vidhook serve` listens on by default.
    #[test]
    fn the_readme_names_the_default_address() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
        let address = format!("http://{}/", super::default_listen());
        assert!(readme.contains(&address), "README lacks {address}");
        for line in readme.lines().filter(|l| l.contains("http://127.0.0.1:")) {
            assert!(
                !line.contains("vidhook serve") || line.contains(&address),
                "{line}"
            );
        }
    }

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

    const TWO_HOSTS: &str = "[providers.seedance]\nkind = \"omnihuman\"\napi_key = \"k\"\n\
                             [providers.fal]\nkind = \"fal\"\napi_key = \"k\"\n";

    /// Several hosts: each source names its own, in order, and only hosts that exist.
    #[test]
    fn sources_name_the_hosts_they_use_in_order() {
        let ok = load_text(&format!(
            "{SOURCE}providers = [\"seedance\", \"fal\"]\n{TWO_HOSTS}"
        ))
        .unwrap();
        let route = &ok.video_routes()["blog"];
        assert_eq!(route.hosts, ["seedance", "fal"]);
        assert_eq!(route.failover_wait, Duration::from_secs(60));
        assert!(route.by_limits);
        let one = load_text(&format!(
            "{SOURCE}[provider]\nkind = \"fal\"\napi_key = \"k\"\n"
        ))
        .unwrap();
        assert_eq!(
            one.video_routes()["blog"].hosts,
            ["fal"],
            "named by its kind"
        );
        let cases = [
            (
                format!("{SOURCE}{TWO_HOSTS}"),
                "source blog: several video hosts are configured (fal, seedance); name the ones it uses",
            ),
            (
                format!("{SOURCE}providers = [\"seedance\", \"replicate\"]\n{TWO_HOSTS}"),
                "source blog: no video host \"replicate\" (configured: fal, seedance)",
            ),
            (
                format!("{SOURCE}providers = [\"fal\", \"fal\"]\n{TWO_HOSTS}"),
                "video host \"fal\" is named twice",
            ),
            (
                format!("{SOURCE}providers = [\"fal\"]\n{TWO_HOSTS}[provider]\nkind = \"preview\"\n"),
                "both [provider] and [providers.*] are configured",
            ),
            (
                format!("{SOURCE}providers = [\"a b\"]\n[providers.\"a b\"]\nkind = \"preview\"\n"),
                "[providers.a b]: use letters, digits, '-' and '_' only",
            ),
        ];
        for (text, expected) in cases {
            let err = load_text(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}\nexpected: {expected}");
        }
    }

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
