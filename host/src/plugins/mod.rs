//! The plugin sandbox. Plugins are WebAssembly components (built for `wasm32-wasip2`) that
//! implement the `vidhook:plugin` world in `wit/`; wasmtime runs them with:
//! - no ambient capabilities: no files, no environment, no sockets, stdout/stderr captured;
//!   outbound HTTP (`wasi:http`) only to the hosts the manifest allows; secrets only by name;
//! - a CPU budget (fuel), a wall-clock deadline (epochs, plus a host-side timeout for time spent
//!   in host calls), a memory cap (a resource limiter that also records the peak), an output cap,
//!   each from the manifest and clamped by the host's maxima;
//! - a fresh instance per run from an `InstancePre` with the pooling allocator, so runs share
//!   nothing; components compiled once and cached on disk by digest.
//!
//! A misbehaving plugin fails its own run with a categorised [`PluginFailure`]; the host goes on.

pub mod manifest;
mod plan;
mod registry;
pub mod replay;
mod sandbox;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

pub use manifest::Manifest;
pub use plan::Plan;
pub use registry::{InstallError, Installed};
use sandbox::{Grants, PluginState};

use crate::content::Content;
use crate::store::Store as Db;
use crate::templates::TemplateSet;

/// Bindings generated from `wit/` (no hand-written ABI glue).
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        exports: { default: async },
    });
}

// The plugins built from `plugins/` by build.rs: `BUNDLED: &[(name, component, manifest)]`.
include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

/// The WIT package the host implements; components built for another major (or, below 1.0,
/// minor) version are refused by name.
pub const WIT_PACKAGE: &str = "vidhook:plugin";
pub const WIT_VERSION: &str = "0.1.0";

/// The version of a plugin bundled in this binary, if it is one.
pub fn bundled_version(name: &str) -> Option<String> {
    BUNDLED
        .iter()
        .find(|(bundled, _, _)| *bundled == name)
        .and_then(|(_, _, manifest)| Manifest::parse(manifest).ok())
        .map(|m| m.version)
}

/// One epoch tick; deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-run limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Wasm instructions, roughly (wasmtime fuel).
    pub fuel: u64,
    pub deadline: Duration,
    pub memory_bytes: usize,
    /// Largest decision (serialised) a plugin may return.
    pub output_bytes: usize,
    /// Outbound HTTP requests per run.
    pub http_calls: u32,
}

impl Default for Limits {
    fn default() -> Self {
        crate::config::PluginsConfig::default().max_limits()
    }
}

/// What a run used; stored with the render.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Usage {
    pub wall_ms: f64,
    pub fuel: u64,
    pub peak_memory_bytes: usize,
    pub output_bytes: usize,
    pub outbound_calls: u32,
}

/// A plugin's decision.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Decision {
    Skip(String),
    Generate(Vec<Plan>),
}

/// A successful run.
#[derive(Debug)]
pub struct Run {
    pub decision: Decision,
    /// The plugin's `log` calls and anything it wrote to stdout/stderr.
    pub logs: Vec<String>,
    pub usage: Usage,
}

#[derive(Debug, thiserror::Error)]
pub enum PluginFailure {
    #[error("no plugin {0} is installed")]
    NotInstalled(String),
    #[error("plugin {plugin} exceeded its {limit} limit{logs}")]
    Limit {
        plugin: String,
        limit: &'static str,
        logs: String,
    },
    #[error("plugin {plugin} trapped: {message}{logs}")]
    Trap {
        plugin: String,
        message: String,
        logs: String,
    },
    #[error("plugin {plugin} returned an error: {message}{logs}")]
    Returned {
        plugin: String,
        message: String,
        logs: String,
    },
    #[error("plugin {plugin} cannot be loaded: {message}")]
    Load { plugin: String, message: String },
}

/// A compiled plugin, ready to instantiate.
pub struct LoadedPlugin {
    pub manifest: Manifest,
    /// sha256 of the component bytes, hex.
    pub digest: String,
    pre: bindings::PluginPre<PluginState>,
}

impl LoadedPlugin {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.manifest.name, self.manifest.version)
    }
}

/// What the host allows plugins beyond their manifests' asks.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub max: Limits,
    pub allow_loopback_hosts: bool,
    pub secrets: BTreeMap<String, String>,
}

/// The engine, the linker, the registry of installed plugins and the compiled ones.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<PluginState>,
    /// Compiled plugins by digest.
    loaded: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
    policy: Policy,
    /// `<data_dir>/plugins`: components by digest, and `cache/` of compiled ones.
    dir: PathBuf,
    db: Db,
}

impl PluginHost {
    /// Builds the engine (pooling allocator, fuel, epochs) and registers the bundled plugins.
    pub async fn new(db: Db, dir: PathBuf, policy: Policy) -> anyhow::Result<PluginHost> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(64)
            .total_core_instances(512)
            .total_memories(128)
            .total_tables(512)
            .max_memory_size(policy.max.memory_bytes.max(1 << 20))
            // Reset the first pages of a slot with memset instead of giving them back to the
            // kernel: the next instance then does not page-fault on them.
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(64 << 10);
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let ticker = engine.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            })?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let host = PluginHost {
            engine,
            linker,
            loaded: RwLock::new(HashMap::new()),
            policy,
            dir,
            db,
        };
        for (name, component, manifest) in BUNDLED {
            let manifest = Manifest::parse(manifest)
                .map_err(|e| anyhow::anyhow!("bundled plugin {name}: {e}"))?;
            host.install_bundled(component, manifest).await?;
        }
        Ok(host)
    }

    /// Runs `plugin.plan(content, draft)` in a fresh sandbox. `config` overrides the manifest's
    /// defaults.
    pub async fn plan(
        &self,
        plugin: &LoadedPlugin,
        content: &Content,
        draft: &[Plan],
        templates: Arc<TemplateSet>,
        config: &BTreeMap<String, String>,
    ) -> Result<Run, PluginFailure> {
        let manifest = &plugin.manifest;
        let limits = manifest.limits(&self.policy.max);
        let mut settings = manifest.config.clone();
        settings.extend(config.iter().map(|(k, v)| (k.clone(), v.clone())));
        let grants = Grants {
            allowed_hosts: manifest.capabilities.allowed_hosts.clone(),
            allow_loopback: self.policy.allow_loopback_hosts,
            http_calls: limits.http_calls,
            secrets: manifest
                .capabilities
                .secrets
                .iter()
                .filter_map(|name| Some((name.clone(), self.policy.secrets.get(name)?.clone())))
                .collect(),
        };
        let (state, output) = PluginState::new(templates, settings, grants, limits.memory_bytes);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_fuel(limits.fuel).expect("fuel is enabled");
        store.set_epoch_deadline(ticks(limits.deadline));
        store.epoch_deadline_trap();

        let name = plugin.id();
        let started = Instant::now();
        let wit_content = plan::to_wit_content(content);
        let wit_draft: Vec<_> = draft.iter().map(Plan::to_wit).collect();
        let call = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instance
                .call_plan(&mut store, &wit_content, &wit_draft)
                .await
        };
        // Epochs stop guest code; this also bounds time spent inside host calls (HTTP, sleeps).
        let result = tokio::time::timeout(limits.deadline + Duration::from_secs(1), call).await;
        let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        crate::metrics::plugin_seconds(&name, matches!(result, Ok(Ok(Ok(_)))), wall_ms / 1000.0);
        let fuel = limits.fuel - store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        let mut logs = state.logs;
        logs.extend(output.lines());
        let mut usage = Usage {
            wall_ms,
            fuel,
            peak_memory_bytes: state.memory.peak,
            outbound_calls: state.http.calls,
            ..Usage::default()
        };
        let log_tail = logs
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(|l| format!("\n  {l}"))
            .collect::<String>();

        let answer = match result {
            Err(_) => {
                return Err(PluginFailure::Limit {
                    plugin: name,
                    limit: "wall-clock",
                    logs: log_tail,
                })
            }
            Ok(Err(err)) => {
                let limit = if state.memory.hit {
                    Some("memory")
                } else {
                    match err.downcast_ref::<Trap>() {
                        Some(Trap::OutOfFuel) => Some("CPU (fuel)"),
                        Some(Trap::Interrupt) => Some("wall-clock"),
                        _ => None,
                    }
                };
                return Err(match limit {
                    Some(limit) => PluginFailure::Limit {
                        plugin: name,
                        limit,
                        logs: log_tail,
                    },
                    None => PluginFailure::Trap {
                        plugin: name,
                        message: format!("{err:#}"),
                        logs: log_tail,
                    },
                });
            }
            Ok(Ok(answer)) => answer,
        };
        let decision = answer.map_err(|e| PluginFailure::Returned {
            plugin: name.clone(),
            message: plan::describe_error(&e),
            logs: log_tail.clone(),
        })?;
        let decision =
            plan::from_wit_decision(decision).map_err(|message| PluginFailure::Returned {
                plugin: name.clone(),
                message,
                logs: log_tail.clone(),
            })?;
        usage.output_bytes = plan::decision_size(&decision);
        if usage.output_bytes > limits.output_bytes {
            return Err(PluginFailure::Limit {
                plugin: name,
                limit: "output size",
                logs: log_tail,
            });
        }
        Ok(Run {
            decision,
            logs,
            usage,
        })
    }
}

fn ticks(deadline: Duration) -> u64 {
    (deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::Resolution;

    /// A host on a fresh database, plus the templates (with `overrides` saved as new versions).
    async fn host_with(
        policy: Policy,
        overrides: &[(&str, &str)],
    ) -> (tempfile::TempDir, PluginHost, Arc<TemplateSet>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(
            &format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        crate::templates::seed_defaults(&db).await.unwrap();
        for (name, body) in overrides {
            crate::templates::save(&db, name, body).await.unwrap();
        }
        let set = Arc::new(TemplateSet::load(&db).await.unwrap());
        let host = PluginHost::new(db, dir.path().join("plugins"), policy)
            .await
            .unwrap();
        (dir, host, set)
    }

    async fn fresh(
        overrides: &[(&str, &str)],
    ) -> (tempfile::TempDir, PluginHost, Arc<TemplateSet>) {
        host_with(Policy::default(), overrides).await
    }

    fn article(words: usize) -> Content {
        let sentence = "This sentence has exactly eight words in it. ";
        Content {
            source: "blog".into(),
            cms: "markdown".into(),
            id: "long.md".into(),
            revision: "1".into(),
            kind: "article".into(),
            locale: "de-DE".into(),
            title: "A long read".into(),
            body_html: String::new(),
            body_text: sentence.repeat(words / 8),
            url: None,
            image: Some("https://cdn.example/p.png".into()),
            fields: serde_json::json!({}),
        }
    }

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn test_program(name: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("VIDHOOK_TEST_WASM_DIR")).join(format!("{name}.wasm")),
        )
        .unwrap()
    }

    fn manifest(name: &str, extra: &str) -> Manifest {
        Manifest::parse(&format!("name = \"{name}\"\nversion = \"1.0.0\"\n{extra}")).unwrap()
    }

    #[tokio::test]
    async fn presenter_fits_a_long_article_into_the_1080p_audio_limit() {
        let (_dir, host, set) = fresh(&[]).await;
        let presenter = host.resolve("presenter").await.unwrap();
        let run = host
            .plan(
                &presenter,
                &article(2000),
                &[],
                set.clone(),
                &config(&[("resolution", "1080p")]),
            )
            .await
            .unwrap();
        let Decision::Generate(plans) = run.decision else {
            panic!("expected a plan")
        };
        let plan = &plans[0];
        assert_eq!(plan.resolution, Resolution::P1080);
        assert_eq!((plan.key.as_str(), plan.voice.as_str()), ("de-DE", "de-de"));
        // 30 s × 0.85 margin at 175 wpm = 74 words at most, whole sentences only.
        let words = plan.script.split_whitespace().count();
        assert!((40..=74).contains(&words), "{words} words: {}", plan.script);
        assert!(plan.script.starts_with("A long read.") && plan.script.ends_with("in it."));
        assert!(plan.prompt.contains("A long read"));
        assert_eq!(plan.image_url, "https://cdn.example/p.png");
        assert_eq!(set.used().keys().collect::<Vec<_>>(), ["prompt", "script"]);
        assert!(run.usage.fuel > 0 && run.usage.peak_memory_bytes > 0);
        assert!(
            run.logs.iter().any(|l| l.starts_with("[info] script:")),
            "{:?}",
            run.logs
        );
    }

    #[tokio::test]
    async fn presenter_reports_typed_errors() {
        let (_dir, host, set) = fresh(&[("script", "{{title}} {{missing_variable}}")]).await;
        let presenter = host.resolve("presenter").await.unwrap();
        let err = host
            .plan(&presenter, &article(16), &[], set, &config(&[]))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("template") && err.to_string().contains("missing_variable"),
            "{err}"
        );

        let (_dir, host, set) = fresh(&[]).await;
        let presenter = host.resolve("presenter").await.unwrap();
        let mut no_image = article(16);
        no_image.image = None;
        let err = host
            .plan(&presenter, &no_image, &[], set.clone(), &config(&[]))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("configuration: no presenter image"),
            "{err}"
        );
        let err = host
            .plan(
                &presenter,
                &article(16),
                &[],
                set,
                &config(&[("resolution", "4k")]),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("resolution must be"), "{err}");
    }

    #[tokio::test]
    async fn multilingual_fans_out_one_plan_per_locale_with_its_voice() {
        let (_dir, host, set) = fresh(&[]).await;
        let presenter = host.resolve("presenter").await.unwrap();
        let multilingual = host.resolve("multilingual").await.unwrap();
        let mut content = article(40);
        content.locale = "en-US".into();
        content.fields = serde_json::json!({"translations": {
            "de_de": {"title": "Ein langer Text", "body": "<p>Erster Satz. Zweiter Satz.</p>"},
            "fr-FR": {"title": "Un long texte", "body": "Première phrase."},
            "en-US": {"title": "ignored: the entry's own locale"}
        }});
        let draft = host
            .plan(&presenter, &content, &[], set.clone(), &config(&[]))
            .await
            .unwrap();
        let Decision::Generate(draft) = draft.decision else {
            panic!()
        };
        let run = host
            .plan(
                &multilingual,
                &content,
                &draft,
                set,
                &config(&[("voice.fr-FR", "fr+f3")]),
            )
            .await
            .unwrap();
        let Decision::Generate(plans) = run.decision else {
            panic!()
        };
        let summary: Vec<(&str, &str, &str)> = plans
            .iter()
            .map(|p| (p.key.as_str(), p.voice.as_str(), p.target_field.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("en-US", "en-us", "video_url"),
                ("de-DE", "de-de", "video_url_de_de"),
                ("fr-FR", "fr+f3", "video_url_fr_fr")
            ]
        );
        assert_eq!(
            plans[1].script,
            "Ein langer Text.\n\nErster Satz. Zweiter Satz."
        );
        assert_eq!(plans[1].image_url, plans[0].image_url);
    }

    /// Each hostile behaviour fails its own run with the right category; the same host then runs
    /// a well-behaved plugin normally.
    #[tokio::test]
    async fn hostile_plugins_are_stopped_and_the_host_carries_on() {
        let max = Limits {
            fuel: 20_000_000_000,
            deadline: Duration::from_millis(500),
            memory_bytes: 64 << 20,
            output_bytes: 256 << 10,
            http_calls: 4,
        };
        let (_dir, host, set) = host_with(
            Policy {
                max,
                ..Policy::default()
            },
            &[],
        )
        .await;
        let hostile = host
            .install(&test_program("hostile"), manifest("hostile", ""), false)
            .await
            .unwrap()
            .plugin;
        let presenter = host.resolve("presenter").await.unwrap();
        let cases = [
            ("loop", "wall-clock limit"),
            ("alloc", "memory limit"),
            ("panic", "hostile plugin panicked on purpose"),
            ("output", "output size limit"),
            ("http", "HttpRequestDenied"),
            ("file", "file:"),
        ];
        for (behaviour, expected) in cases {
            let started = Instant::now();
            let err = host
                .plan(
                    &hostile,
                    &article(16),
                    &[],
                    set.clone(),
                    &config(&[("behaviour", behaviour)]),
                )
                .await
                .expect_err(behaviour)
                .to_string();
            assert!(err.contains(expected), "{behaviour}: {err}");
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{behaviour} took {:?}",
                started.elapsed()
            );
            let ok = host
                .plan(&presenter, &article(16), &[], set.clone(), &config(&[]))
                .await;
            assert!(ok.is_ok(), "after {behaviour}: {:?}", ok.err());
        }
        // No environment leaks in.
        let run = host
            .plan(
                &hostile,
                &article(16),
                &[],
                set.clone(),
                &config(&[("behaviour", "env")]),
            )
            .await
            .unwrap();
        assert_eq!(run.decision, Decision::Skip("env: []".into()));
        // A CPU budget independent of time.
        let tight = manifest("hostile", "[limits]\nfuel = 1000000\ndeadline_ms = 5000");
        let tight = host
            .load_uninstalled(&test_program("hostile"), tight)
            .await
            .unwrap();
        let err = host
            .plan(
                &tight,
                &article(16),
                &[],
                set,
                &config(&[("behaviour", "loop")]),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("CPU (fuel) limit"), "{err}");
    }

    /// Loopback is refused unless the host policy allows it, even when a manifest lists it; a
    /// secret the manifest does not name is invisible even when the host has it.
    #[tokio::test]
    async fn loopback_and_secrets_need_the_policy_and_the_manifest() {
        let mut secrets = BTreeMap::new();
        secrets.insert("OPENAI_API_KEY".to_string(), "sk-host".to_string());
        let policy = Policy {
            secrets,
            ..Policy::default()
        };
        let (_dir, host, set) = host_with(policy, &[]).await;
        let loopback = manifest(
            "hostile",
            "[capabilities]\nallowed_hosts = [\"127.0.0.1:9\"]",
        );
        let hostile = host
            .load_uninstalled(&test_program("hostile"), loopback)
            .await
            .unwrap();
        let settings = config(&[("behaviour", "http"), ("url", "http://127.0.0.1:9/")]);
        let err = host
            .plan(&hostile, &article(16), &[], set.clone(), &settings)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("HttpRequestDenied"), "{err}");

        let presenter = host.resolve("presenter").await.unwrap();
        let draft = match host
            .plan(&presenter, &article(16), &[], set.clone(), &config(&[]))
            .await
            .unwrap()
            .decision
        {
            Decision::Generate(plans) => plans,
            Decision::Skip(_) => panic!(),
        };
        let unnamed = manifest(
            "summariser",
            "[capabilities]\nallowed_hosts = [\"api.openai.com\"]",
        );
        let summariser = host
            .load_uninstalled(&test_program("summariser"), unnamed)
            .await
            .unwrap();
        let err = host
            .plan(&summariser, &article(16), &draft, set, &config(&[]))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the OPENAI_API_KEY secret is not available"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refuses_other_wit_versions_and_unasked_capabilities() {
        let (_dir, host, _set) = fresh(&[]).await;
        let err = host
            .install(&test_program("future_wit"), manifest("future", ""), false)
            .await
            .err()
            .unwrap();
        let message = err.to_string();
        assert!(
            message.contains("vidhook:plugin@9.0.0") && message.contains("vidhook:plugin@0.1.0"),
            "{message}"
        );

        let bytes = test_program("hostile");
        host.install(&bytes, manifest("h", ""), false)
            .await
            .unwrap();
        let wider = Manifest::parse("name = \"h\"\nversion = \"1.1.0\"\n[capabilities]\nallowed_hosts = [\"api.example.com\"]\nsecrets = [\"KEY\"]").unwrap();
        let err = host
            .install(&bytes, wider.clone(), false)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("+ network: api.example.com")
                && err.contains("+ secret: KEY")
                && err.contains("--grant"),
            "{err}"
        );
        assert_eq!(
            host.resolve("h").await.unwrap().manifest.version,
            "1.0.0",
            "refused install changed nothing"
        );
        let installed = host.install(&bytes, wider, true).await.unwrap();
        assert_eq!(
            installed.granted,
            ["network: api.example.com", "secret: KEY"]
        );
        assert_eq!(
            host.resolve("h").await.unwrap().manifest.version,
            "1.1.0",
            "takes effect at once"
        );
        assert_eq!(
            host.resolve("h@1.0.0").await.unwrap().manifest.version,
            "1.0.0"
        );
        let other_bytes = test_program("presenter");
        let err = host
            .install(&other_bytes, manifest("h", ""), false)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("already installed with other contents"),
            "{err}"
        );
    }
}
