//! What one plugin run can touch: its WASI context (no files, no env, no network; output
//! captured), the host imports (`log`, `render`, `config`), and a memory limiter.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::vidhook::plugin::{host, types};
use crate::templates::TemplateSet;

/// Largest log kept from one run (log calls plus stdout/stderr).
const LOG_CAP_BYTES: usize = 64 << 10;

pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    templates: Arc<TemplateSet>,
    config: BTreeMap<String, String>,
    pub logs: Vec<String>,
    log_bytes: usize,
    pub memory: MemoryCap,
}

/// The guest's captured stdout/stderr, read after the run (a panic message lands here).
pub struct CapturedOutput {
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl CapturedOutput {
    pub fn lines(&self) -> Vec<String> {
        [("stdout", &self.stdout), ("stderr", &self.stderr)]
            .into_iter()
            .flat_map(|(stream, pipe)| {
                String::from_utf8_lossy(&pipe.contents())
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("[{stream}] {l}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl PluginState {
    pub fn new(
        templates: Arc<TemplateSet>,
        config: BTreeMap<String, String>,
        memory_bytes: usize,
    ) -> (PluginState, CapturedOutput) {
        let stdout = MemoryOutputPipe::new(LOG_CAP_BYTES);
        let stderr = MemoryOutputPipe::new(LOG_CAP_BYTES);
        // Nothing inherited: no args, env, preopened dirs or sockets.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        let state = PluginState {
            wasi,
            table: ResourceTable::new(),
            templates,
            config,
            logs: Vec::new(),
            log_bytes: 0,
            memory: MemoryCap {
                max: memory_bytes,
                peak: 0,
                hit: false,
            },
        };
        (state, CapturedOutput { stdout, stderr })
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for PluginState {}

impl host::Host for PluginState {
    fn log(&mut self, level: host::Level, message: String) {
        if self.log_bytes + message.len() > LOG_CAP_BYTES {
            return;
        }
        self.log_bytes += message.len();
        let level = level_name(level);
        tracing::debug!(target: "plugin", level, "{message}");
        self.logs.push(format!("[{level}] {message}"));
    }

    fn render(&mut self, name: String, context_json: String) -> Result<String, String> {
        self.templates
            .render(&name, &context_json)
            .map_err(|e| e.to_string())
    }

    fn config(&mut self, key: String) -> Option<String> {
        self.config.get(&key).cloned()
    }
}

fn level_name(level: host::Level) -> &'static str {
    match level {
        host::Level::Trace => "trace",
        host::Level::Debug => "debug",
        host::Level::Info => "info",
        host::Level::Warn => "warn",
        host::Level::Error => "error",
    }
}

/// Caps linear memory and records the peak. A refused growth traps the guest (rather than
/// letting its allocator abort with a vaguer message) and sets `hit`, so the failure is reported
/// as the memory limit.
pub struct MemoryCap {
    pub max: usize,
    pub peak: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Err(wasmtime::Error::msg(format!(
                "memory limit: the plugin asked for {desired} bytes, the cap is {}",
                self.max
            )));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}
