//! The plugin sandbox. Plugins are WebAssembly components (built for `wasm32-wasip2`) that
//! implement the `vidhook:plugin` world in `wit/`; wasmtime runs them with:
//! - no ambient capabilities: no files, no environment, no network, stdout/stderr captured;
//! - a CPU budget (fuel), a wall-clock deadline (epochs, plus a host-side timeout for time spent
//!   in host calls), a memory cap (a resource limiter that also records the peak), an output cap;
//! - fresh instance per run from an `InstancePre` and the pooling allocator, so runs share nothing.
//!
//! A misbehaving plugin fails its own run with a categorised [`PluginFailure`]; the host goes on.

mod plan;
mod sandbox;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};

pub use plan::Plan;
use sandbox::PluginState;

use crate::content::Content;
use crate::templates::TemplateSet;

/// Bindings generated from `wit/` (no hand-written ABI glue).
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        exports: { default: async },
    });
}

// The components built from `plugins/` by build.rs: `BUNDLED: &[(&str, &[u8])]`.
include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

/// The WIT package version the host implements.
pub const WIT_VERSION: &str = "vidhook:plugin@0.1.0";

/// One epoch tick; deadlines are whole ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Per-run limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wasm instructions, roughly (wasmtime fuel).
    pub fuel: u64,
    pub deadline: Duration,
    pub memory_bytes: usize,
    /// Largest decision (serialised) a plugin may return.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 2_000_000_000,
            deadline: Duration::from_secs(5),
            memory_bytes: 64 << 20,
            output_bytes: 256 << 10,
        }
    }
}

/// What a run used.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Usage {
    pub wall_ms: f64,
    pub fuel: u64,
    pub peak_memory_bytes: usize,
    pub output_bytes: usize,
}

/// A plugin's decision.
#[derive(Debug, Clone, PartialEq)]
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
    #[error("no plugin named {0:?} is installed")]
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
    #[error("plugin {plugin} returned an error: {message}")]
    Returned { plugin: String, message: String },
    #[error("plugin {plugin} cannot be instantiated: {message}")]
    Instantiate { plugin: String, message: String },
}

/// A compiled plugin, ready to instantiate.
pub struct LoadedPlugin {
    pub name: String,
    pub version: String,
    /// sha256 of the component bytes, hex.
    pub digest: String,
    pre: bindings::PluginPre<PluginState>,
}

/// The engine, the linker and the installed plugins.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<PluginState>,
    plugins: RwLock<HashMap<String, Arc<LoadedPlugin>>>,
    limits: Limits,
}

impl PluginHost {
    /// Builds the engine (pooling allocator, fuel, epochs) and loads the bundled plugins.
    pub fn new(limits: Limits) -> anyhow::Result<PluginHost> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(64)
            .total_core_instances(512)
            .total_memories(128)
            .total_tables(512)
            .max_memory_size(limits.memory_bytes.max(1 << 20));
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
        bindings::Plugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let host = PluginHost {
            engine,
            linker,
            plugins: RwLock::new(HashMap::new()),
            limits,
        };
        for (name, bytes) in BUNDLED {
            host.install(name, env!("CARGO_PKG_VERSION"), bytes)?;
        }
        Ok(host)
    }

    /// Compiles and registers a component under `name`, replacing an older one.
    pub fn install(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> anyhow::Result<Arc<LoadedPlugin>> {
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| anyhow::anyhow!("plugin {name}: not a valid component: {e:#}"))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .and_then(bindings::PluginPre::new)
            .map_err(|e| anyhow::anyhow!("plugin {name}: does not fit {WIT_VERSION}: {e:#}"))?;
        let plugin = Arc::new(LoadedPlugin {
            name: name.to_string(),
            version: version.to_string(),
            digest: hex::encode(Sha256::digest(bytes)),
            pre,
        });
        self.plugins
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), plugin.clone());
        Ok(plugin)
    }

    pub fn get(&self, name: &str) -> Result<Arc<LoadedPlugin>, PluginFailure> {
        self.plugins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| PluginFailure::NotInstalled(name.to_string()))
    }

    /// Runs `plugin.plan(content, draft)` in a fresh sandbox.
    pub async fn plan(
        &self,
        plugin: &LoadedPlugin,
        content: &Content,
        draft: &[Plan],
        templates: Arc<TemplateSet>,
        config: BTreeMap<String, String>,
    ) -> Result<Run, PluginFailure> {
        let limits = self.limits;
        let (state, output) = PluginState::new(templates, config, limits.memory_bytes);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_fuel(limits.fuel).expect("fuel is enabled");
        store.set_epoch_deadline(ticks(limits.deadline));
        store.epoch_deadline_trap();

        let name = plugin.name.clone();
        let started = Instant::now();
        let wit_content = plan::to_wit_content(content);
        let wit_draft: Vec<_> = draft.iter().map(Plan::to_wit).collect();
        let call = async {
            let instance = plugin.pre.instantiate_async(&mut store).await?;
            instance
                .call_plan(&mut store, &wit_content, &wit_draft)
                .await
        };
        // Epochs stop guest code; this also bounds time spent inside host calls (e.g. WASI sleeps).
        let result = tokio::time::timeout(limits.deadline + Duration::from_secs(1), call).await;
        let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        let fuel = limits.fuel - store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        let mut logs = state.logs;
        logs.extend(output.lines());
        let mut usage = Usage {
            wall_ms,
            fuel,
            peak_memory_bytes: state.memory.peak,
            ..Usage::default()
        };
        let log_tail = || {
            logs.iter()
                .rev()
                .take(5)
                .rev()
                .map(|l| format!("\n  {l}"))
                .collect::<String>()
        };

        let answer = match result {
            Err(_) => {
                return Err(PluginFailure::Limit {
                    plugin: name,
                    limit: "wall-clock",
                    logs: log_tail(),
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
                        logs: log_tail(),
                    },
                    None => PluginFailure::Trap {
                        plugin: name,
                        message: format!("{err:#}"),
                        logs: log_tail(),
                    },
                });
            }
            Ok(Ok(answer)) => answer,
        };
        let decision = answer.map_err(|e| PluginFailure::Returned {
            plugin: name.clone(),
            message: plan::describe_error(&e),
        })?;
        let decision =
            plan::from_wit_decision(decision).map_err(|message| PluginFailure::Returned {
                plugin: name.clone(),
                message,
            })?;
        usage.output_bytes = plan::decision_size(&decision);
        if usage.output_bytes > limits.output_bytes {
            return Err(PluginFailure::Limit {
                plugin: name,
                limit: "output size",
                logs: log_tail(),
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
    use crate::store::Store;

    async fn templates(overrides: &[(&str, &str)]) -> (tempfile::TempDir, Arc<TemplateSet>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()))
            .await
            .unwrap();
        crate::templates::seed_defaults(&store).await.unwrap();
        for (name, body) in overrides {
            crate::templates::save(&store, name, body).await.unwrap();
        }
        (dir, Arc::new(TemplateSet::load(&store).await.unwrap()))
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
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[tokio::test]
    async fn presenter_fits_a_long_article_into_the_1080p_audio_limit() {
        let host = PluginHost::new(Limits::default()).unwrap();
        let presenter = host.get("presenter").unwrap();
        let (_dir, set) = templates(&[]).await;
        let run = host
            .plan(&presenter, &article(2000), &[], set.clone(), config(&[("resolution", "1080p")]))
            .await
            .unwrap();
        let Decision::Generate(plans) = run.decision else { panic!("expected a plan") };
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
        assert!(run.logs.iter().any(|l| l.starts_with("[info] script:")), "{:?}", run.logs);
    }

    #[tokio::test]
    async fn presenter_reports_typed_errors() {
        let host = PluginHost::new(Limits::default()).unwrap();
        let presenter = host.get("presenter").unwrap();
        let (_dir, set) = templates(&[("script", "{{title}} {{missing_variable}}")]).await;
        let err = host.plan(&presenter, &article(16), &[], set, config(&[])).await.unwrap_err();
        assert!(err.to_string().contains("template") && err.to_string().contains("missing_variable"), "{err}");

        let (_dir, set) = templates(&[]).await;
        let mut no_image = article(16);
        no_image.image = None;
        let err = host.plan(&presenter, &no_image, &[], set.clone(), config(&[])).await.unwrap_err();
        assert!(err.to_string().contains("configuration: no presenter image"), "{err}");

        let err = host
            .plan(&presenter, &article(16), &[], set, config(&[("resolution", "4k")]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("resolution must be"), "{err}");
    }
}
