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

pub mod config;
pub mod double;
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
pub use plan::{Plan, MIN_NARRATION_WORDS};
pub use registry::{InstallError, Installed};
pub use sandbox::MemoryCap;
use sandbox::{Grants, PluginState, Templates};

use crate::content::Content;
use crate::store::Store as Db;
use crate::templates::TemplateSet;

/// Bindings generated from `wit/` (no hand-written ABI glue).
mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "plugin",
        // Templates render in their own sandbox, awaited without holding a runtime thread.
        imports: { "vidhook:plugin/host.render": async },
        exports: { default: async },
    });
}

/// The `digest` world (since 0.1.1), sharing the `plugin` world's types and host functions.
mod digest_bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "digest",
        exports: { default: async },
        with: {
            "vidhook:plugin/types": super::bindings::vidhook::plugin::types,
            "vidhook:plugin/host": super::bindings::vidhook::plugin::host,
        },
    });
}

/// The `shortening-plugin` world (since 0.1.2): a chain plugin that also exports `shorten`.
mod shortening_bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "shortening-plugin",
        exports: { default: async },
        with: {
            "vidhook:plugin/types": super::bindings::vidhook::plugin::types,
            "vidhook:plugin/host": super::bindings::vidhook::plugin::host,
        },
    });
}

// The plugins built from `plugins/` by build.rs: `BUNDLED: &[(name, component, manifest)]`.
include!(concat!(env!("OUT_DIR"), "/bundled_plugins.rs"));

/// The WIT package the host implements; components built for another major (or, below 1.0,
/// minor) version are refused by name.
pub const WIT_PACKAGE: &str = "vidhook:plugin";
pub const WIT_VERSION: &str = "0.1.2";

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
        config::PluginsConfig::default().max_limits()
    }
}

/// What a run used; stored with the render.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Usage {
    pub wall_ms: f64,
    /// Of `wall_ms`, setting up the sandbox, building the call's arguments (the content record
    /// with its fingerprint) and instantiating the component: what every run pays before the
    /// plugin's own code starts.
    pub start_ms: f64,
    /// Of `wall_ms`, the host's template renders the plugin asked for (in the template
    /// sandbox): the rest of the call is the plugin's own code and its other host calls.
    pub render_ms: f64,
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
    /// The outbound requests it made, as `METHOD URL`.
    pub requests: Vec<String>,
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
    pre: Entry,
}

/// What a component exports: a chain plugin's `plan` (and perhaps `shorten`), or a digest
/// plugin's `digest`.
enum Entry {
    Plan(bindings::PluginPre<PluginState>),
    Shortening(shortening_bindings::ShorteningPluginPre<PluginState>),
    Digest(digest_bindings::DigestPre<PluginState>),
}

/// One call into a plugin.
enum Call<'a> {
    Plan {
        content: &'a Content,
        draft: &'a [Plan],
    },
    Shorten {
        content: &'a Content,
        plan: &'a Plan,
        limit_seconds: f64,
        measured_seconds: f64,
    },
    Digest {
        items: &'a [Content],
    },
}

impl Call<'_> {
    /// The source the call is for ("" for an empty digest).
    fn source(&self) -> &str {
        match self {
            Call::Plan { content, .. } | Call::Shorten { content, .. } => &content.source,
            Call::Digest { items } => items.first().map_or("", |item| item.source.as_str()),
        }
    }
}

impl LoadedPlugin {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.manifest.name, self.manifest.version)
    }

    /// Whether it exports `shorten` (WIT 0.1.2).
    pub fn can_shorten(&self) -> bool {
        matches!(self.pre, Entry::Shortening(_))
    }
}

/// What the host allows plugins beyond their manifests' asks.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub max: Limits,
    pub allow_loopback_hosts: bool,
    pub secrets: BTreeMap<String, String>,
    /// Per source, the longest narration its video hosts take at (720p, 1080p), given to its
    /// plugins as the reserved settings `vidhook.max_audio_seconds.720p` and `….1080p` (the
    /// SDK's `max_audio_seconds` reads them), so a plan is fitted to the hosts it will go to.
    pub audio_limits: BTreeMap<String, (f64, f64)>,
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
    /// Builds the engine (pooling allocator, fuel, epochs) and registers the bundled plugins,
    /// with the template sandbox the plugins render through compiled first (or loaded from the
    /// same cache), so no run pays for that.
    pub async fn new(db: Db, dir: PathBuf, policy: Policy) -> anyhow::Result<PluginHost> {
        let cache = dir.join("cache");
        tokio::task::spawn_blocking(move || crate::templates::engine::init(Some(&cache)))
            .await?
            .map_err(|e| anyhow::anyhow!("the template sandbox: {e}"))?;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(64)
            .total_core_instances(512)
            .total_memories(128)
            .total_tables(512)
            .max_memory_size(policy.max.memory_bytes.max(1 << 20))
            // A slot's pages go back to the kernel when its instance is dropped (no memset of
            // pages kept resident): measured faster per run in the plugin bench (session 15).
            .linear_memory_keep_resident(0)
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
        self.run(
            plugin,
            Call::Plan { content, draft },
            Templates::Live(templates),
            sandbox::Answers::Network,
            config,
        )
        .await
    }

    /// Runs a chain of `(plugin reference, settings)` over `content`, each plugin getting the
    /// draft so far, until one skips: what a source does with content, for estimates and
    /// previews (the plan step also records each run's usage and logs).
    pub async fn run_chain(
        &self,
        chain: &[(String, BTreeMap<String, String>)],
        content: &Content,
        templates: Arc<TemplateSet>,
    ) -> Result<Decision, PluginFailure> {
        let mut draft = Vec::new();
        for (reference, config) in chain {
            let plugin = self.resolve(reference).await?;
            match self
                .plan(&plugin, content, &draft, templates.clone(), config)
                .await?
                .decision
            {
                Decision::Generate(plans) => draft = plans,
                skip @ Decision::Skip(_) => return Ok(skip),
            }
        }
        Ok(Decision::Generate(draft))
    }

    /// Asks a plugin that [`LoadedPlugin::can_shorten`] for a shorter version of `plan`, whose
    /// narration measured `measured_seconds` against `limit_seconds`.
    pub async fn shorten(
        &self,
        plugin: &LoadedPlugin,
        content: &Content,
        plan: &Plan,
        (limit_seconds, measured_seconds): (f64, f64),
        templates: Arc<TemplateSet>,
        config: &BTreeMap<String, String>,
    ) -> Result<Run, PluginFailure> {
        let call = Call::Shorten {
            content,
            plan,
            limit_seconds,
            measured_seconds,
        };
        self.run(
            plugin,
            call,
            Templates::Live(templates),
            sandbox::Answers::Network,
            config,
        )
        .await
    }

    /// Runs a digest plugin's `digest(items)` in a fresh sandbox.
    pub async fn digest(
        &self,
        plugin: &LoadedPlugin,
        items: &[Content],
        templates: Arc<TemplateSet>,
        config: &BTreeMap<String, String>,
    ) -> Result<Run, PluginFailure> {
        self.run(
            plugin,
            Call::Digest { items },
            Templates::Live(templates),
            sandbox::Answers::Network,
            config,
        )
        .await
    }

    async fn run(
        &self,
        plugin: &LoadedPlugin,
        call: Call<'_>,
        templates: Templates,
        answers: sandbox::Answers,
        config: &BTreeMap<String, String>,
    ) -> Result<Run, PluginFailure> {
        let manifest = &plugin.manifest;
        let limits = manifest.limits(&self.policy.max);
        let mut settings = manifest.config.clone();
        settings.extend(config.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some((p720, p1080)) = self.policy.audio_limits.get(call.source()) {
            settings.insert("vidhook.max_audio_seconds.720p".into(), p720.to_string());
            settings.insert("vidhook.max_audio_seconds.1080p".into(), p1080.to_string());
        }
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
        let started = Instant::now();
        let deadline = started + limits.deadline;
        let (state, output) = PluginState::new(
            call.source(),
            templates,
            answers,
            settings,
            grants,
            (limits.memory_bytes, deadline),
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_fuel(limits.fuel).expect("fuel is enabled");
        // Every tick the guest yields to the runtime (so a busy plugin never holds one of its
        // threads for long) and traps once its deadline has passed.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= deadline {
                wasmtime::UpdateDeadline::Interrupt
            } else {
                wasmtime::UpdateDeadline::Yield(1)
            })
        });

        let name = plugin.id();
        let mut start_ms = 0.0;
        let call = async {
            match (&plugin.pre, call) {
                (Entry::Plan(pre), Call::Plan { content, draft }) => {
                    let content = plan::to_wit_content(content);
                    let draft: Vec<_> = draft.iter().map(Plan::to_wit).collect();
                    let instance = pre.instantiate_async(&mut store).await?;
                    start_ms = ms_since(started);
                    instance.call_plan(&mut store, &content, &draft).await
                }
                (Entry::Shortening(pre), Call::Plan { content, draft }) => {
                    let content = plan::to_wit_content(content);
                    let draft: Vec<_> = draft.iter().map(Plan::to_wit).collect();
                    let instance = pre.instantiate_async(&mut store).await?;
                    start_ms = ms_since(started);
                    instance.call_plan(&mut store, &content, &draft).await
                }
                (
                    Entry::Shortening(pre),
                    Call::Shorten {
                        content,
                        plan,
                        limit_seconds,
                        measured_seconds,
                    },
                ) => {
                    let content = plan::to_wit_content(content);
                    let too_long = bindings::vidhook::plugin::types::TooLong {
                        limit_seconds,
                        measured_seconds,
                    };
                    let instance = pre.instantiate_async(&mut store).await?;
                    start_ms = ms_since(started);
                    instance
                        .call_shorten(&mut store, &content, &plan.to_wit(), too_long)
                        .await
                }
                (Entry::Plan(_) | Entry::Digest(_), Call::Shorten { .. }) => Err(
                    wasmtime::Error::msg("it does not export `shorten` (WIT 0.1.2)"),
                ),
                (Entry::Digest(pre), Call::Digest { items }) => {
                    let items: Vec<_> = items.iter().map(plan::to_wit_content).collect();
                    let instance = pre.instantiate_async(&mut store).await?;
                    start_ms = ms_since(started);
                    instance.call_digest(&mut store, &items).await
                }
                (Entry::Plan(_) | Entry::Shortening(_), Call::Digest { .. }) => Err(wasmtime::Error::msg(
                    "it is a chain plugin (it exports `plan`, not `digest`)",
                )),
                (Entry::Digest(_), Call::Plan { .. }) => Err(wasmtime::Error::msg(
                    "it is a digest plugin (it exports `digest`, not `plan`): name it in a source's `digest` table, not its chain",
                )),
            }
        };
        // Epochs stop guest code; this also bounds time spent inside host calls (HTTP, sleeps).
        let result = tokio::time::timeout(limits.deadline + Duration::from_secs(1), call).await;
        let wall_ms = ms_since(started);
        crate::metrics::plugin_seconds(&name, matches!(result, Ok(Ok(Ok(_)))), wall_ms / 1000.0);
        let fuel = limits.fuel - store.get_fuel().unwrap_or(0);
        let state = store.into_data();
        let mut logs = state.logs;
        logs.extend(output.lines());
        let requests = state.http.requests;
        let mut usage = Usage {
            wall_ms,
            start_ms,
            render_ms: state.render_time.as_secs_f64() * 1000.0,
            fuel,
            peak_memory_bytes: state.memory.peak,
            outbound_calls: state.http.calls,
            ..Usage::default()
        };
        let log_tail = log_tail(&logs);

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
            requests,
        })
    }
}

fn ms_since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

/// What a failure quotes of a run's logs: the last five lines and, before them, the last error
/// the plugin logged (the SDKs log an uncaught exception's stack or traceback at error level;
/// the interpreter's own output after it would otherwise push it out of the tail).
fn log_tail(logs: &[String]) -> String {
    let tail = logs.len().saturating_sub(5);
    let last_error = logs[..tail]
        .iter()
        .rposition(|line| line.starts_with("[error]"));
    last_error
        .map(|i| &logs[i])
        .into_iter()
        .chain(&logs[tail..])
        .map(|line| format!("\n  {line}"))
        .collect()
}

#[cfg(test)]
mod narration_corpus;
#[cfg(test)]
mod tests;
