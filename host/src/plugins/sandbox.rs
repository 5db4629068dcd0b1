//! What one plugin run can touch: its WASI context (no files, no env, no sockets; output
//! captured), `wasi:http` behind an allowlist gate, the host imports (`log`, `render`, `config`
//! with granted secrets), and a memory limiter. A run against a host double (`plugin test`)
//! gets canned template outputs and canned HTTP answers instead, behind the same gate.

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::bindings::vidhook::plugin::{host, types};
use crate::templates::TemplateSet;

/// Largest log kept from one run (log calls plus stdout/stderr).
const LOG_CAP_BYTES: usize = 64 << 10;

/// What the manifest (within the host's policy) lets this run reach.
pub struct Grants {
    pub allowed_hosts: Vec<String>,
    pub allow_loopback: bool,
    pub http_calls: u32,
    /// Only the secrets the manifest names.
    pub secrets: BTreeMap<String, String>,
}

/// Where `render` gets its text: the editors' templates, a test case's canned outputs by
/// template name, or the editors' templates with each output kept (to record a case).
pub enum Templates {
    Live(Arc<TemplateSet>),
    Canned(BTreeMap<String, String>),
    Recording(
        Arc<TemplateSet>,
        Arc<std::sync::Mutex<BTreeMap<String, String>>>,
    ),
}

/// A canned answer to one URL (a test case's `wasi:http` response).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Canned {
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub body: String,
}

fn ok_status() -> u16 {
    200
}

/// Where `wasi:http` requests the grants let through are answered: the network (through the
/// outbound guard), a test case's canned answers by URL (nothing reaches the network; an unknown
/// URL is a 404), or the network with each answer kept (to record a case).
pub enum Answers {
    Network,
    Canned(BTreeMap<String, Canned>),
    Recording(Arc<std::sync::Mutex<BTreeMap<String, Canned>>>),
}

/// The most of an answer body a recorded case keeps (a larger body fails the request).
const RECORDED_BODY_BYTES: usize = 1 << 20;

pub struct PluginState {
    wasi: WasiCtx,
    http_ctx: WasiHttpCtx,
    pub http: HttpGate,
    table: ResourceTable,
    templates: Templates,
    /// The run's renders share one template-sandbox instance (handed on to the source's next
    /// run when this one ends).
    session: crate::templates::engine::Session,
    /// When this run's time is up: template renders stop then too.
    deadline: std::time::Instant,
    config: BTreeMap<String, String>,
    secrets: BTreeMap<String, String>,
    pub logs: Vec<String>,
    log_bytes: usize,
    pub memory: MemoryCap,
    /// Time spent in `render` calls (the run's usage reports it apart from the plugin's own).
    pub render_time: std::time::Duration,
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
        source: &str,
        templates: Templates,
        answers: Answers,
        config: BTreeMap<String, String>,
        grants: Grants,
        (memory_bytes, deadline): (usize, std::time::Instant),
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
            http_ctx: WasiHttpCtx::new(),
            http: HttpGate {
                allowed_hosts: grants.allowed_hosts,
                allow_loopback: grants.allow_loopback,
                max_calls: grants.http_calls,
                calls: 0,
                denied: Vec::new(),
                requests: Vec::new(),
                answers,
                guard: crate::outbound::Guard::installed(),
            },
            table: ResourceTable::new(),
            templates,
            session: crate::templates::engine::Session::for_source(source),
            deadline,
            config,
            secrets: grants.secrets,
            logs: Vec::new(),
            log_bytes: 0,
            memory: MemoryCap::new(memory_bytes),
            render_time: std::time::Duration::ZERO,
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

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http_ctx,
            table: &mut self.table,
            hooks: &mut self.http,
        }
    }
}

/// The only way out to the network: a request leaves only if its host is in the manifest's
/// `allowed_hosts` (loopback only where the host configuration allows it), the run has calls
/// left, and the host's addresses pass the outbound guard (resolved here, so a listed name that
/// resolves to a private address is refused too). Everything else fails with `HttpRequestDenied`.
pub struct HttpGate {
    allowed_hosts: Vec<String>,
    allow_loopback: bool,
    max_calls: u32,
    pub calls: u32,
    pub denied: Vec<String>,
    /// Every request let through, as `METHOD URL`.
    pub requests: Vec<String>,
    answers: Answers,
    guard: crate::outbound::Guard,
}

/// A response and the future that drives its connection.
type Sent = (
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
);
type SendFuture = Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<Sent>> + Send>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn std::future::Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let _ = fut;
        let authority = request
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let allowed = super::manifest::host_allowed(&self.allowed_hosts, &authority)
            && (self.allow_loopback || !super::manifest::is_loopback(&authority))
            && self.calls < self.max_calls;
        if !allowed {
            tracing::warn!(target: "plugin", host = %authority, "outbound request denied");
            self.denied.push(authority);
            return Box::new(async move {
                read_out(request.into_body()).await;
                Err(wasmtime_wasi_http::Error::HttpRequestDenied)
            });
        }
        self.calls += 1;
        let url = request.uri().to_string();
        self.requests.push(format!("{} {url}", request.method()));
        let recording = match &self.answers {
            Answers::Network => None,
            Answers::Recording(kept) => Some(kept.clone()),
            Answers::Canned(canned) => {
                let answer = canned.get(&url).cloned().unwrap_or(Canned {
                    status: 404,
                    body: format!("the test case has no response for {url}"),
                });
                return Box::new(async move {
                    read_out(request.into_body()).await;
                    canned_response(answer)
                });
            }
        };
        let guard = self.guard.clone();
        let host = request.uri().host().unwrap_or_default().to_string();
        let port =
            request
                .uri()
                .port_u16()
                .unwrap_or(if request.uri().scheme_str() == Some("http") {
                    80
                } else {
                    443
                });
        Box::new(async move {
            use http_body_util::BodyExt;
            if let Err(err) = guard.check_authority(&host, port).await {
                tracing::warn!(target: "plugin", %err, "outbound request refused by the guard");
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let Some(kept) = recording else {
                return Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
                ));
            };
            // Recording: the whole answer is read (the connection driven meanwhile), kept as the
            // case's answer for this URL, and given to the guest as a canned one.
            let connection = tokio::spawn(io);
            let status = response.status().as_u16();
            let body = http_body_util::Limited::new(response.into_body(), RECORDED_BODY_BYTES)
                .collect()
                .await
                .map_err(|_| wasmtime_wasi_http::Error::HttpResponseBodySize(None))?
                .to_bytes();
            connection.abort();
            let answer = Canned {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            kept.lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(url, answer.clone());
            canned_response(answer)
        })
    }
}

/// Reads a request's body (at most 1 MiB, 1 s) before an answer the host gives itself (a refusal,
/// a test case's canned answer), as a server does: a JavaScript engine aborts when the answer
/// comes while it is still writing the body.
async fn read_out(mut body: wasmtime_wasi_http::WasiBody) {
    use http_body_util::BodyExt;
    let mut read = 0usize;
    let drained = async {
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len());
            if read > 1 << 20 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drained).await;
}

/// A canned answer as the guest's `wasi:http` sees a response.
fn canned_response(answer: Canned) -> wasmtime_wasi_http::Result<Sent> {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::from(answer.body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let response = http::Response::builder()
        .status(answer.status)
        .body(body)
        .map_err(|_| wasmtime_wasi_http::Error::HttpRequestDenied)?;
    Ok((
        response,
        Box::new(async { Ok(()) }) as Box<dyn std::future::Future<Output = _> + Send>,
    ))
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

    /// Renders in the template sandbox within what is left of this run's deadline.
    async fn render(&mut self, name: String, context_json: String) -> Result<String, String> {
        let started = std::time::Instant::now();
        let output = self.render_template(name, context_json).await;
        self.render_time += started.elapsed();
        output
    }

    /// A setting, or a secret the manifest names (secrets win: they cannot be shadowed).
    fn config(&mut self, key: String) -> Option<String> {
        self.secrets
            .get(&key)
            .or_else(|| self.config.get(&key))
            .cloned()
    }
}

impl PluginState {
    /// `render`'s answer from this run's templates: the editors', a test case's canned outputs,
    /// or the editors' with each output kept.
    async fn render_template(
        &mut self,
        name: String,
        context_json: String,
    ) -> Result<String, String> {
        match &self.templates {
            Templates::Live(templates) => templates
                .render(&mut self.session, &name, &context_json, self.deadline)
                .await
                .map_err(|e| e.to_string()),
            Templates::Canned(outputs) => outputs
                .get(&name)
                .cloned()
                .ok_or_else(|| format!("the test case gives no output for template {name:?}")),
            Templates::Recording(templates, kept) => {
                let output = templates
                    .render(&mut self.session, &name, &context_json, self.deadline)
                    .await
                    .map_err(|e| e.to_string())?;
                kept.lock()
                    .expect("never poisoned")
                    .insert(name, output.clone());
                Ok(output)
            }
        }
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
/// as the memory limit. The template sandbox uses it too.
pub struct MemoryCap {
    pub max: usize,
    pub peak: usize,
    pub hit: bool,
}

impl MemoryCap {
    pub fn new(max: usize) -> MemoryCap {
        MemoryCap {
            max,
            peak: 0,
            hit: false,
        }
    }
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
                "memory limit: the guest asked for {desired} bytes, the cap is {}",
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
