//! Where editors' templates run: Handlebars compiled to WebAssembly (`plugins/template-engine`)
//! in a sandbox of its own, never on the host's stack or threads. Templates come from editors and
//! drafts from viewers, so a template is untrusted code: a partial that includes itself, 24
//! nested doubling partials or a loop inside a loop would overflow the host's stack or hold a
//! runtime thread for minutes if Handlebars ran natively. Here each render has:
//! - **depth**: the wasm stack ([`MAX_WASM_STACK`]); recursion traps, the host carries on;
//! - **time**: the caller's deadline, checked every epoch tick *while* the template runs, and
//!   the sandbox yields to the async runtime at each tick, so other requests keep being served;
//! - **memory**: [`MEMORY_BYTES`] of linear memory;
//! - **size**: at most [`MAX_OUTPUT_BYTES`] of output and [`MAX_INPUT_BYTES`] of templates and
//!   context passed in;
//! - **count**: at most [`AT_ONCE`] renders run at once; others wait (within their deadline).
//!
//! The component is compiled once per process (or loaded from the data directory's cache, see
//! [`init`]). A [`Session`] instantiates it at its first render and keeps the instance for the
//! renders that follow (one plugin run's: the same content, the same templates). A session made
//! [`for_source`](Session::for_source) gives its instance back when it ends, and the next
//! session of *the same source* takes it up again (instantiating and resetting a sandbox costs
//! more than the renders of a run); an instance never serves two sources, and sessions without
//! a source (template checks) share nothing. An instance that trapped or ran out of time is
//! dropped, never rendered on again; one that grew large or served many renders is retired.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::plugins::MemoryCap;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../plugins/template-engine/wit",
        world: "engine",
        exports: { default: async },
    });
}

/// The engine component, built from `plugins/template-engine` by build.rs.
static COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/template_engine.wasm"));

/// Wasm stack one render may use: deep enough for any template a person writes (hundreds of
/// nested blocks or partials), far below the fiber's own stack.
pub const MAX_WASM_STACK: usize = 512 << 10;
/// Linear memory one render may use.
pub const MEMORY_BYTES: usize = 64 << 20;
/// The longest text a render may produce: a narration is a few KB; 1 MiB leaves room for
/// templates that echo a whole article.
pub const MAX_OUTPUT_BYTES: u32 = 1 << 20;
/// The most template text plus context passed to one render.
pub const MAX_INPUT_BYTES: usize = 4 << 20;
/// Renders running at once in this process.
pub const AT_ONCE: usize = 4;
/// Instances held between renders at once: one per plugin run (the plugin pool holds at most
/// 64 runs), the [`IDLE`] ones kept between runs among them. Beyond this a render falls back to
/// an instance of its own.
const HELD: usize = 64;
/// Instances kept between sessions (each for one source), the oldest retired first.
const IDLE: usize = 8;
/// An instance is retired instead of kept once it has rendered this many times …
const RETIRE_AFTER_RENDERS: u32 = 1000;
/// … or once its memory grew past this (what a large render leaves is not carried on).
const RETIRE_ABOVE_BYTES: usize = MEMORY_BYTES / 4;
/// One epoch tick: how often a running render checks its deadline and yields.
const TICK: Duration = Duration::from_millis(10);

/// How a render is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// The render fails (as over time) once this passes, wherever it is.
    pub deadline: Instant,
    /// A missing variable is an error (renders); off for the test render before a save.
    pub strict: bool,
}

/// Why a render did not produce text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The template itself is wrong (does not compile, a missing variable in strict mode…):
    /// in `template`, at line and column when known.
    #[error("{message}")]
    Template {
        template: String,
        message: String,
        at: Option<(usize, usize)>,
    },
    /// The render ran past one of its limits (the message says which).
    #[error("{0}")]
    Budget(String),
    /// The sandbox could not be set up (a bug or an exhausted machine, not the template).
    #[error("the template engine is unavailable: {0}")]
    Unavailable(String),
}

/// The compiled engine, shared by every render in the process.
pub struct TemplateEngine {
    engine: Engine,
    pre: bindings::EnginePre<Sandbox>,
    slots: tokio::sync::Semaphore,
    held: Arc<tokio::sync::Semaphore>,
    /// Instances whose sessions ended, with their source, oldest first.
    idle: std::sync::Mutex<std::collections::VecDeque<(String, Live)>>,
}

static SHARED: OnceLock<Result<TemplateEngine, String>> = OnceLock::new();

/// Compiles the engine now (a serving process calls this at start-up, off the async threads),
/// using `cache_dir` for the compiled code so a restart does not compile again. Renders
/// before this compile on first use, without a cache.
pub fn init(cache_dir: Option<&Path>) -> Result<(), String> {
    SHARED
        .get_or_init(|| TemplateEngine::build(cache_dir))
        .as_ref()
        .map(|_| ())
        .map_err(Clone::clone)
}

/// The shared engine, built on first use.
async fn shared() -> Result<&'static TemplateEngine, EngineError> {
    if SHARED.get().is_none() {
        // Compiling takes a few hundred milliseconds of CPU: not on a runtime thread.
        tokio::task::spawn_blocking(|| init(None))
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
            .map_err(EngineError::Unavailable)?;
    }
    match SHARED.get() {
        Some(Ok(engine)) => Ok(engine),
        Some(Err(e)) => Err(EngineError::Unavailable(e.clone())),
        None => Err(EngineError::Unavailable("not built".into())),
    }
}

/// Renders `name` from `templates` (name, body) with the JSON object `context`, within `budget`,
/// on an instance of its own.
pub async fn render(
    templates: &[(String, String)],
    name: &str,
    context_json: &str,
    budget: Budget,
) -> Result<String, EngineError> {
    Session::default()
        .render(templates, name, context_json, budget)
        .await
}

/// Renders on one sandbox instance, made at the first render (or taken up from an earlier
/// session of the same source) and kept until the session is dropped or a render traps or runs
/// out of time (an instance is never entered again after that). A plugin renders two or three
/// templates per run; a session saves instantiating and resetting a sandbox for each. What one
/// render leaves in the instance's memory stays there, so an instance only ever serves one
/// source: a render is given its templates and its context and nothing else, but the freed
/// memory behind them held the source's earlier content.
#[derive(Default)]
pub struct Session {
    live: Option<Live>,
    /// The source whose sessions may hand this one's instance on (`None`: nobody's).
    source: Option<String>,
}

/// A session's instance, with its store.
struct Live {
    store: Store<Sandbox>,
    engine: bindings::Engine,
    /// Its place among the [`HELD`] instances kept between renders; `None` when all were taken
    /// (the instance then serves this render only).
    held: Option<tokio::sync::OwnedSemaphorePermit>,
    /// Renders it has served.
    renders: u32,
}

impl Live {
    /// Whether it may serve another session (a session keeps only a held instance that never
    /// trapped).
    fn worth_keeping(&self) -> bool {
        self.renders < RETIRE_AFTER_RENDERS && self.store.data().memory.peak <= RETIRE_ABOVE_BYTES
    }
}

impl Drop for Session {
    /// Hands a healthy instance on to the next session of the same source.
    fn drop(&mut self) {
        let (Some(live), Some(source)) = (self.live.take(), self.source.take()) else {
            return;
        };
        if let (true, Some(Ok(engine))) = (live.worth_keeping(), SHARED.get()) {
            let mut idle = engine.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.push_back((source, live));
            let retired = (idle.len() > IDLE).then(|| idle.pop_front());
            drop(idle);
            drop(retired);
        }
    }
}

impl Session {
    /// A session whose instance is handed on to the next session of `source` when it ends, and
    /// which takes up one a session of `source` handed on.
    pub fn for_source(source: &str) -> Session {
        Session {
            live: None,
            source: Some(source.to_string()),
        }
    }

    /// Renders `name` from `templates` (name, body) with the JSON object `context`, within
    /// `budget`.
    pub async fn render(
        &mut self,
        templates: &[(String, String)],
        name: &str,
        context_json: &str,
        budget: Budget,
    ) -> Result<String, EngineError> {
        let input: usize = templates
            .iter()
            .map(|(n, b)| n.len() + b.len())
            .sum::<usize>()
            + context_json.len();
        if input > MAX_INPUT_BYTES {
            return Err(EngineError::Budget(format!(
                "the templates and content are {input} bytes; at most {MAX_INPUT_BYTES} are rendered"
            )));
        }
        let engine = shared().await?;
        if let (None, Some(source)) = (&self.live, &self.source) {
            self.live = engine.handed_on(source);
        }
        engine
            .render(&mut self.live, templates, name, context_json, budget)
            .await
    }
}

impl TemplateEngine {
    fn build(cache_dir: Option<&Path>) -> Result<TemplateEngine, String> {
        // Instances, memories and fiber stacks from a pool, so an instance does not map and
        // unmap a fresh memory and stack.
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        // Sessions hold their instance (and its store's fiber stack) between renders.
        let instances = (HELD + AT_ONCE * 2) as u32;
        pool.total_component_instances(instances)
            .total_core_instances(instances * 4)
            .total_memories(instances)
            .total_tables(instances * 4)
            .total_stacks(instances)
            .max_memory_size(MEMORY_BYTES)
            .linear_memory_keep_resident(0)
            .table_keep_resident(16 << 10);
        let mut config = wasmtime::Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(MAX_WASM_STACK)
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
        let component = load_component(&engine, cache_dir)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| format!("{e:#}"))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(bindings::EnginePre::new)
            .map_err(|e| format!("{e:#}"))?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("template-epoch".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(TemplateEngine {
            engine,
            pre,
            slots: tokio::sync::Semaphore::new(AT_ONCE),
            held: Arc::new(tokio::sync::Semaphore::new(HELD)),
            idle: Default::default(),
        })
    }

    /// The most recently kept instance of `source`, if one is idle.
    fn handed_on(&self, source: &str) -> Option<Live> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let at = idle.iter().rposition(|(kept_for, _)| kept_for == source)?;
        idle.remove(at).map(|(_, live)| live)
    }

    async fn render(
        &self,
        session: &mut Option<Live>,
        templates: &[(String, String)],
        name: &str,
        context_json: &str,
        budget: Budget,
    ) -> Result<String, EngineError> {
        let remaining = budget.deadline.saturating_duration_since(Instant::now());
        let over_time = || {
            EngineError::Budget(format!(
                "rendering took longer than its time budget ({} ms)",
                remaining.as_millis()
            ))
        };
        let _slot = tokio::time::timeout(remaining, self.slots.acquire())
            .await
            .map_err(|_| over_time())?
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;

        let started = Instant::now();
        let request = bindings::Request {
            templates: needed(templates, name)
                .iter()
                .map(|(name, body)| bindings::Template {
                    name: name.clone(),
                    body: body.clone(),
                })
                .collect(),
            name: name.to_string(),
            context_json: context_json.to_string(),
            strict: budget.strict,
            max_output_bytes: MAX_OUTPUT_BYTES,
        };
        // The instance is taken out for the call and put back only if the call returned.
        let mut live = session.take();
        let call = async {
            // A fresh instance is armed before it starts; a kept one for this render.
            let live = match &mut live {
                Some(live) => {
                    arm_deadline(&mut live.store, budget.deadline);
                    live
                }
                None => live.insert(self.instantiate(budget.deadline).await?),
            };
            live.renders += 1;
            live.engine.call_render(&mut live.store, &request).await
        };
        // Epochs stop the guest; this bounds the rest (instantiation, a host call) as well.
        let answer = tokio::time::timeout(remaining + TICK * 10, call).await;
        crate::metrics::template_render_seconds(started.elapsed().as_secs_f64());
        match answer {
            Err(_) => Err(over_time()),
            Ok(Err(trap)) => {
                let memory_hit = live.is_some_and(|live| live.store.data().memory.hit);
                Err(limit_hit(memory_hit, &trap, budget, started))
            }
            Ok(Ok(answer)) => {
                *session = live.filter(|live| live.held.is_some());
                match answer {
                    Ok(text) => Ok(text),
                    Err(failure) => Err(EngineError::Template {
                        template: failure.template,
                        message: failure.message,
                        at: failure
                            .line
                            .zip(failure.column)
                            .map(|(l, c)| (l as usize, c as usize)),
                    }),
                }
            }
        }
    }

    /// A fresh instance in a store of its own (its start-up within `deadline` too).
    async fn instantiate(&self, deadline: Instant) -> wasmtime::Result<Live> {
        let mut store = Store::new(&self.engine, Sandbox::new());
        store.limiter(|sandbox| &mut sandbox.memory);
        arm_deadline(&mut store, deadline);
        let engine = self.pre.instantiate_async(&mut store).await?;
        let held = self.held.clone().try_acquire_owned().ok();
        Ok(Live {
            store,
            engine,
            held,
            renders: 0,
        })
    }
}

/// Says which limit a trapped render (or its instance's start-up) ran into.
fn limit_hit(
    memory_hit: bool,
    trap: &wasmtime::Error,
    budget: Budget,
    started: Instant,
) -> EngineError {
    let message = if memory_hit {
        format!(
            "the template needs more than {} MiB of memory to render",
            MEMORY_BYTES >> 20
        )
    } else {
        match trap.downcast_ref::<Trap>() {
            Some(Trap::StackOverflow | Trap::MemoryOutOfBounds) => {
                "the template nests too deeply (a partial that \
                includes itself, or blocks and partials nested past the limit)"
                    .to_string()
            }
            Some(Trap::Interrupt) => format!(
                "rendering took longer than its time budget ({} ms)",
                budget
                    .deadline
                    .saturating_duration_since(started)
                    .as_millis()
            ),
            _ => return EngineError::Unavailable(format!("{trap:#}")),
        }
    };
    EngineError::Budget(message)
}

/// Makes the guest yield to the runtime every tick and trap once `deadline` has passed.
fn arm_deadline(store: &mut Store<Sandbox>, deadline: Instant) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(UpdateDeadline::Interrupt)
        } else {
            // Let the runtime's other tasks run between ticks.
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

/// Loads the compiled component from `cache_dir` (keyed by the component's digest and the
/// engine's settings), or compiles it and writes the cache.
fn load_component(engine: &Engine, cache_dir: Option<&Path>) -> Result<Component, String> {
    use sha2::{Digest, Sha256};
    use std::hash::{Hash, Hasher};
    let Some(dir) = cache_dir else {
        return Component::new(engine, COMPONENT).map_err(|e| format!("{e:#}"));
    };
    let mut settings = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut settings);
    let key = format!(
        "template-engine-{}-{:016x}.cwasm",
        &hex::encode(Sha256::digest(COMPONENT))[..16],
        settings.finish()
    );
    let path = dir.join(key);
    if path.exists() {
        // SAFETY: the file is in vidhook's own data directory, written below by `serialize` of
        // an engine with the same settings (they are part of its name).
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, COMPONENT).map_err(|e| format!("{e:#}"))?;
    let written = component.serialize().ok().and_then(|bytes| {
        std::fs::create_dir_all(dir).ok()?;
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, bytes).ok()?;
        std::fs::rename(&tmp, &path).ok()
    });
    if written.is_none() {
        tracing::warn!(dir = %dir.display(), "could not cache the compiled template engine");
    }
    Ok(component)
}

/// The templates a render of `name` can reach: `name` alone when it includes no partial (each
/// template passed in is compiled by the render), else all of them (a partial's name may be
/// computed, `{{> (lookup …)}}`, so which ones cannot be known before it runs).
fn needed<'a>(templates: &'a [(String, String)], name: &str) -> &'a [(String, String)] {
    let Some(at) = templates.iter().position(|(n, _)| n == name) else {
        return templates;
    };
    let includes_partials = templates[at].1.split("{{").skip(1).any(|tag| {
        tag.trim_start_matches(['{', '~', '#', '*'])
            .trim_start()
            .starts_with('>')
    });
    if includes_partials {
        templates
    } else {
        &templates[at..=at]
    }
}

/// One render's store: WASI with nothing in it (the guest's std links against WASI, but there
/// are no files, no environment and no sockets to reach) and the memory cap.
struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
}

impl Sandbox {
    fn new() -> Sandbox {
        Sandbox {
            wasi: WasiCtxBuilder::new().build(),
            table: ResourceTable::new(),
            memory: MemoryCap::new(MEMORY_BYTES),
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(ms: u64, strict: bool) -> Budget {
        Budget {
            deadline: Instant::now() + Duration::from_millis(ms),
            strict,
        }
    }

    fn one(body: &str) -> Vec<(String, String)> {
        vec![("t".to_string(), body.to_string())]
    }

    #[tokio::test]
    async fn renders_strictly_without_escaping() {
        let text = render(
            &one("{{a}} & {{b}}"),
            "t",
            r#"{"a":"x<y","b":1}"#,
            budget(5000, true),
        )
        .await
        .unwrap();
        assert_eq!(text, "x<y & 1");
        let missing = render(&one("line one\n{{nope}}"), "t", "{}", budget(5000, true))
            .await
            .unwrap_err();
        match missing {
            EngineError::Template { at, message, .. } => {
                assert_eq!(at, Some((2, 1)));
                assert!(
                    message.starts_with("this content has no field \"nope\""),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        // Compile errors in words, not the parser's grammar rules.
        for (body, said) in [
            (
                "{{#if a}}x{{/each}}",
                "the block {{#if}} is closed by {{/each}}",
            ),
            ("{{title", "this is not valid Handlebars"),
        ] {
            let err = render(&one(body), "t", "{}", budget(5000, true))
                .await
                .unwrap_err();
            assert!(err.to_string().starts_with(said), "{body}: {err}");
        }
        // Not strict: the same template renders (the save's test render).
        assert!(render(&one("{{nope}}"), "t", "{}", budget(5000, false))
            .await
            .is_ok());
    }

    #[test]
    fn a_render_gets_only_the_templates_it_can_reach() {
        let set: Vec<(String, String)> = [
            ("plain", "{{title}} > {{body}}"),
            ("outer", "Hi {{~> inner}}"),
            ("block", "{{#> inner}}fallback{{/inner}}"),
            ("inner", "there"),
        ]
        .iter()
        .map(|(n, b)| (n.to_string(), b.to_string()))
        .collect();
        let names =
            |name| -> Vec<&str> { needed(&set, name).iter().map(|(n, _)| n.as_str()).collect() };
        assert_eq!(names("plain"), ["plain"]);
        assert_eq!(names("outer").len(), 4);
        assert_eq!(names("block").len(), 4);
        assert_eq!(names("missing").len(), 4, "the engine says what is missing");
    }

    /// The instance keeps what it compiled between a session's renders, but a render sees only
    /// the templates it was given: a partial passed before and not now is not there, a changed
    /// body is compiled again, and strictness is the call's.
    #[tokio::test]
    async fn a_kept_instance_renders_only_the_templates_it_is_given() {
        let set = |partial: Option<&str>| {
            let mut set = vec![("page".to_string(), "[{{> p}}]".to_string())];
            set.extend(partial.map(|body| ("p".to_string(), body.to_string())));
            set
        };
        let mut session = Session::default();
        let mut render = async |templates: Vec<(String, String)>, strict: bool| {
            session
                .render(&templates, "page", r#"{"a":1}"#, budget(5000, strict))
                .await
        };
        assert_eq!(render(set(Some("{{a}}")), true).await.unwrap(), "[1]");
        assert_eq!(render(set(Some("{{a}}{{a}}")), true).await.unwrap(), "[11]");
        match render(set(None), true).await {
            Err(EngineError::Template { message, .. }) => {
                assert!(message.contains("no template \"p\""), "{message}")
            }
            other => panic!("a partial not passed was found: {other:?}"),
        }
        // Passed again, each body it had before renders as that body (kept compiled).
        assert_eq!(render(set(Some("{{a}}")), true).await.unwrap(), "[1]");
        assert_eq!(render(set(Some("{{a}}{{a}}")), true).await.unwrap(), "[11]");
        assert!(
            matches!(
                render(set(Some("{{b}}")), true).await,
                Err(EngineError::Template { .. })
            ),
            "strict: a missing field is the template's error"
        );
        assert_eq!(render(set(Some("{{b}}")), false).await.unwrap(), "[]");
    }

    #[tokio::test]
    async fn a_session_keeps_its_instance_until_a_render_traps() {
        // Which instance a session holds: its store's data stays where it is while it lives.
        let instance = |session: &Session| {
            session
                .live
                .as_ref()
                .map(|live| live.store.data() as *const Sandbox as usize)
        };
        let mut session = Session::default();
        session
            .render(&one("{{a}}"), "t", r#"{"a":1}"#, budget(5000, true))
            .await
            .unwrap();
        let first = instance(&session);
        assert!(first.is_some(), "kept after a render");
        // A template error is the template's: the guest returned, the instance is kept.
        let missing = session
            .render(&one("{{nope}}"), "t", "{}", budget(5000, true))
            .await;
        assert!(matches!(missing, Err(EngineError::Template { .. })));
        assert_eq!(
            session
                .render(&one("{{a}}!"), "t", r#"{"a":2}"#, budget(5000, true))
                .await
                .unwrap(),
            "2!"
        );
        assert_eq!(instance(&session), first, "one instance for three renders");
        // A render that traps takes its instance with it; the next one gets a fresh one.
        let recursive = r#"{{#*inline "a"}}{{> a}}{{/inline}}{{> a}}"#;
        let err = session
            .render(&one(recursive), "t", "{}", budget(5000, true))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nests too deeply"), "{err}");
        assert!(session.live.is_none(), "never entered again after a trap");
        assert_eq!(
            session
                .render(&one("{{a}}"), "t", r#"{"a":3}"#, budget(5000, true))
                .await
                .unwrap(),
            "3"
        );
        assert!(session.live.is_some());
    }

    /// A session of a source takes up the instance the source's last session handed on;
    /// another source's session, or one without a source, never does, nor does anyone take up
    /// an instance whose render trapped.
    #[tokio::test]
    async fn an_instance_is_handed_on_only_within_its_source() {
        // How many renders the session's instance has served, this session's included.
        let served = |session: &Session| session.live.as_ref().map(|live| live.renders);
        let rendered = async |session: &mut Session, body: &str| {
            session
                .render(&one(body), "t", r#"{"a":1}"#, budget(5000, true))
                .await
        };
        let mut first = Session::for_source("handed-on-a");
        assert_eq!(rendered(&mut first, "{{a}}").await.unwrap(), "1");
        assert_eq!(served(&first), Some(1));
        drop(first);

        for mut other in [Session::for_source("handed-on-b"), Session::default()] {
            rendered(&mut other, "{{a}}").await.unwrap();
            assert_eq!(served(&other), Some(1), "a fresh instance, not a's");
        }
        let mut next = Session::for_source("handed-on-a");
        assert_eq!(rendered(&mut next, "{{a}}{{a}}").await.unwrap(), "11");
        assert_eq!(
            served(&next),
            Some(2),
            "the source's own instance, taken up"
        );

        let recursive = r#"{{#*inline "a"}}{{> a}}{{/inline}}{{> a}}"#;
        assert!(rendered(&mut next, recursive).await.is_err());
        drop(next);
        let mut after = Session::for_source("handed-on-a");
        rendered(&mut after, "{{a}}").await.unwrap();
        assert_eq!(
            served(&after),
            Some(1),
            "a trapped instance is never handed on"
        );
    }

    #[tokio::test]
    async fn a_self_including_partial_fails_its_render_not_the_process() {
        let body = r#"{{#*inline "a"}}{{> a}}{{/inline}}{{> a}}"#;
        let err = render(&one(body), "t", "{}", budget(5000, true))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nests too deeply"), "{err}");
    }

    #[tokio::test]
    async fn doubling_partials_stop_at_the_deadline_and_leave_the_runtime_free() {
        // p0 prints nothing, p(n) includes p(n-1) twice: 2^30 expansions.
        let mut body = String::from(r#"{{#*inline "p0"}}{{/inline}}"#);
        for n in 1..=30 {
            body.push_str(&format!(
                r#"{{{{#*inline "p{n}"}}}}{{{{> p{m}}}}}{{{{> p{m}}}}}{{{{/inline}}}}"#,
                m = n - 1
            ));
        }
        body.push_str("{{> p30}}");
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = ticks.clone();
        // A task on the same (current-thread) runtime keeps running while the render does.
        let beside = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let started = Instant::now();
        let err = render(&one(&body), "t", "{}", budget(300, true))
            .await
            .unwrap_err();
        beside.abort();
        assert!(err.to_string().contains("time budget"), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(
            ticks.load(std::sync::atomic::Ordering::SeqCst) > 10,
            "the runtime was starved"
        );
    }

    #[tokio::test]
    async fn output_and_memory_are_capped() {
        // Each level doubles the text: 2^25 copies of 32 bytes.
        let mut body =
            String::from(r#"{{#*inline "p0"}}0123456789abcdef0123456789abcdef{{/inline}}"#);
        for n in 1..=25 {
            body.push_str(&format!(
                r#"{{{{#*inline "p{n}"}}}}{{{{> p{m}}}}}{{{{> p{m}}}}}{{{{/inline}}}}"#,
                m = n - 1
            ));
        }
        body.push_str("{{> p25}}");
        let err = render(&one(&body), "t", "{}", budget(10_000, true))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
