//! Shared test harness: the real `vidhook` binary as a child process on a random loopback port
//! with a fresh database, plus loopback servers that stand in for paid or hosted systems.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod cms;
pub mod cms_apis;
pub mod fal;
pub mod llm;
pub mod outage;
pub mod replicate;
pub mod runs;
pub mod s3;
pub mod seedance;
pub mod tts;
pub mod wordpress;
pub mod workspace;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// The presenter photo shipped with the examples (768×768 PNG).
pub fn presenter_png() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/content/presenter.png")
}

/// With `VIDHOOK_TEST_POSTGRES=postgres://user@host:port` the suites run on PostgreSQL: each test
/// folder gets its own fresh database (the same one across a restart), else SQLite in the folder.
/// Returns the `database_url = …` line to put first in a config.
pub async fn database_line(dir: &Path) -> String {
    let Ok(server) = std::env::var("VIDHOOK_TEST_POSTGRES") else {
        return String::new();
    };
    use sha2::Digest;
    let name = format!(
        "vidhook_t_{}",
        &hex::encode(sha2::Sha256::digest(dir.to_string_lossy().as_bytes()))[..20]
    );
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL reachable");
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut admin)
        .await
        .unwrap();
    if exists.is_none() {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    format!("database_url = \"{server}/{name}\"\n")
}

/// The URL of the database a host started in `dir` uses (PostgreSQL or the default SQLite file).
pub async fn database_url(dir: &Path) -> String {
    let line = database_line(dir).await;
    match line.split('"').nth(1) {
        Some(url) => url.to_string(),
        None => format!("sqlite://{}", dir.join("data/vidhook.db").display()),
    }
}

/// A running `vidhook serve`.
pub struct Host {
    child: Child,
    pub url: String,
    pub dir: PathBuf,
    stderr: Arc<Mutex<String>>,
    /// An admin API token made with `vidhook tokens create` before the host started.
    pub token: String,
}

impl Host {
    /// Writes `config` to `<dir>/vidhook.toml` and starts the binary on it.
    pub async fn start(dir: &Path, config: &str) -> Host {
        Host::start_with_env(dir, config, &[]).await
    }

    /// [`Host::start`] with extra environment variables.
    pub async fn start_with_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> Host {
        Host::launch(dir, config, env, false).await
    }

    /// [`Host::start`] as the leader of its own process group, as a supervisor runs a service:
    /// [`Host::terminate_group`] then signals the whole group.
    pub async fn start_grouped(dir: &Path, config: &str) -> Host {
        Host::launch(dir, config, &[], true).await
    }

    async fn launch(dir: &Path, config: &str, env: &[(&str, &str)], grouped: bool) -> Host {
        std::fs::create_dir_all(dir).unwrap();
        let config_path = dir.join("vidhook.toml");
        let config = if config.contains("database_url") {
            config.to_string()
        } else {
            database_line(dir).await + config
        };
        std::fs::write(&config_path, config).unwrap();
        let name = format!("harness-{}", uuid_like());
        let token = vidhook(&[
            "--config",
            config_path.to_str().unwrap(),
            "tokens",
            "create",
            "--role",
            "admin",
            "--name",
            &name,
        ])
        .await
        .trim()
        .to_string();
        let mut command = Command::new(env!("CARGO_BIN_EXE_vidhook"));
        if grouped {
            command.process_group(0);
        }
        let mut child = command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "info")
            .env("SEEDANCE_TEST_KEY", seedance::API_KEY)
            .env("TEST_OPENAI_KEY", "sk-test-123")
            .env("TEST_ELEVENLABS_KEY", tts::ELEVENLABS_KEY)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the vidhook binary starts");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err_lines = BufReader::new(child.stderr.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = err_lines.next_line().await {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut out_lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = out_lines.next_line().await {
                if let Some(url) = line.strip_prefix("vidhook listening on ") {
                    return Some(url.to_string());
                }
                // With JSON logs the line is JSON too.
                if let Ok(said) = serde_json::from_str::<serde_json::Value>(&line) {
                    if said["message"] == "vidhook listening" {
                        return said["url"].as_str().map(str::to_owned);
                    }
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(url) = url else {
            let _ = child.kill().await;
            panic!("vidhook did not start:\n{}", stderr.lock().unwrap());
        };
        tokio::spawn(async move { while let Ok(Some(_)) = out_lines.next_line().await {} });
        Host {
            child,
            url,
            dir: dir.to_path_buf(),
            stderr,
            token,
        }
    }

    /// A new API token with `role` (viewer, editor, admin), made by `vidhook tokens create`.
    pub async fn token_for(&self, role: &str) -> String {
        self.named_token(role, &format!("{role}-{}", uuid_like()))
            .await
    }

    /// A token of `role` named `name` (`vidhook tokens revoke NAME` ends it).
    pub async fn named_token(&self, role: &str, name: &str) -> String {
        let config = self.dir.join("vidhook.toml");
        vidhook(&[
            "--config",
            config.to_str().unwrap(),
            "tokens",
            "create",
            "--role",
            role,
            "--name",
            name,
        ])
        .await
        .trim()
        .to_string()
    }

    /// The command line that revokes token `name` of this host (for a program the test runs).
    pub fn revoke_command(&self, name: &str) -> Vec<String> {
        let config = self.dir.join("vidhook.toml");
        [
            env!("CARGO_BIN_EXE_vidhook"),
            "--config",
            config.to_str().unwrap(),
            "tokens",
            "revoke",
            name,
        ]
        .map(String::from)
        .to_vec()
    }

    /// The process id of the running host (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Whether the process is still running (not exited, not killed).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the host logged so far.
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL: no graceful shutdown, no chance to commit anything more.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then waits (up to `timeout`) for the process to exit; returns its exit code and
    /// everything it logged.
    pub async fn terminate(self, timeout: Duration) -> (Option<i32>, String) {
        let pid = self.child.id().expect("running").to_string();
        self.signal_and_wait(&pid, timeout).await
    }

    /// SIGTERM to the host's whole process group (started by [`Host::start_grouped`]), as
    /// systemd or a terminal's Ctrl-C sends it, then [`Host::terminate`]'s wait.
    pub async fn terminate_group(self, timeout: Duration) -> (Option<i32>, String) {
        let group = format!("-{}", self.child.id().expect("running"));
        self.signal_and_wait(&group, timeout).await
    }

    async fn signal_and_wait(mut self, target: &str, timeout: Duration) -> (Option<i32>, String) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", "--", target])
            .status()
            .unwrap();
        assert!(sent.success());
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => {
                let code = status.unwrap().code();
                // Let the log reader drain what the process wrote last.
                tokio::time::sleep(Duration::from_millis(200)).await;
                (code, self.logs())
            }
            Err(_) => panic!(
                "vidhook did not exit within {timeout:?} of SIGTERM:\n{}",
                self.logs()
            ),
        }
    }

    /// Posts a Standard Webhooks-signed body to `/hooks/{source}`.
    pub async fn post_signed(
        &self,
        source: &str,
        id: &str,
        timestamp: i64,
        body: &str,
    ) -> reqwest::Response {
        sign_and_post(&self.url, source, id, timestamp, body).await
    }

    /// `GET {path}` on the API with this host's admin token.
    pub async fn api(&self, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of the first `/metrics` line that starts with `prefix` (0 when absent).
    pub async fn metric(&self, prefix: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (up to a minute) until `prefix`'s metric reaches `at_least`.
    pub async fn wait_for_metric(&self, prefix: &str, at_least: f64) {
        let started = Instant::now();
        while self.metric(prefix).await < at_least {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{prefix} stayed below {at_least}:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// All renders, newest first, as the API shows them: `{source, entry, render}`, the render
    /// as `GET /api/v1/renders/{id}` shows it (every stored column).
    pub async fn renders(&self) -> Vec<serde_json::Value> {
        let page = self.api("/api/v1/renders?limit=200").await;
        let items = page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{page:#}"));
        let mut renders = Vec::with_capacity(items.len());
        for item in items {
            let id = item["id"].as_str().unwrap();
            let detail = self.render(id).await;
            renders.push(serde_json::json!({
                "source": item["source"], "entry": item["entry"], "render": detail["render"],
            }));
        }
        renders
    }

    /// One render with its steps.
    pub async fn render(&self, id: &str) -> serde_json::Value {
        self.api(&format!("/api/v1/renders/{id}")).await
    }

    /// The first render (as [`Host::renders`] shows it) that `matches`; waits up to a minute,
    /// then panics naming `what` with the renders and the logs.
    pub async fn wait_for_render(
        &self,
        what: &str,
        matches: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..600 {
            if let Some(found) = self.renders().await.into_iter().find(|r| matches(r)) {
                return found["render"].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{what} never came: {:#?}\n{}",
            self.renders().await,
            self.logs()
        )
    }

    /// Waits until the (only) render reaches `state`; panics with the logs after `timeout`.
    pub async fn wait_for_state(&self, state: &str, timeout: Duration) -> serde_json::Value {
        let started = Instant::now();
        loop {
            let renders = self.renders().await;
            if let Some(r) = renders.iter().find(|r| r["render"]["state"] == state) {
                return r["render"].clone();
            }
            if started.elapsed() > timeout {
                panic!(
                    "no render reached {state} in {timeout:?}: {renders:#?}\nlogs:\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Posts a Standard Webhooks-signed body to `{host}/hooks/{source}` (what [`Host::post_signed`]
/// does, for a task that does not hold the host).
pub async fn sign_and_post(
    host: &str,
    source: &str,
    id: &str,
    timestamp: i64,
    body: &str,
) -> reqwest::Response {
    let secret = vidhook::cms::standard_webhooks::Secret::parse(SECRET).unwrap();
    let signature = secret.sign(id, timestamp, body.as_bytes());
    reqwest::Client::new()
        .post(format!("{host}/hooks/{source}"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

/// The render ends `done` with one write-back, one paid job and one generate call.
pub async fn assert_done_once(host: &Host, cms: &cms::Cms, seedance: &seedance::Seedance) {
    let written = cms.wait_for_write_backs(1, Duration::from_secs(60)).await;
    assert_eq!(written.len(), 1, "{}", host.logs());
    host.wait_for_state("done", Duration::from_secs(10)).await;
    assert_eq!(seedance.jobs().len(), 1, "paid once");
    assert_eq!(seedance.attempts().len(), 1, "submitted once");
}

async fn run_vidhook(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vidhook"))
        .args(args)
        .env("TEST_OPENAI_KEY", "sk-test-123")
        .env("TEST_ELEVENLABS_KEY", tts::ELEVENLABS_KEY)
        .env("SEEDANCE_TEST_KEY", seedance::API_KEY)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

/// Runs `vidhook ARGS` to completion: (succeeded, stdout + stderr).
pub async fn vidhook_result(args: &[&str]) -> (bool, String) {
    let output = run_vidhook(args).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// Runs `vidhook ARGS` to completion and returns its stdout; panics with its output if it fails.
pub async fn vidhook(args: &[&str]) -> String {
    let output = run_vidhook(args).await;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "vidhook {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Installs the hostile test program (`plugins/test-programs/hostile`) as plugin `hostile` 1.0.0
/// into the host configured by `config`.
pub async fn install_hostile(config: &Path) {
    let manifest = config.with_file_name("hostile.toml");
    std::fs::write(&manifest, "name = \"hostile\"\nversion = \"1.0.0\"\n").unwrap();
    vidhook(&[
        "plugin",
        "install",
        wasm("hostile").to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ])
    .await;
}

/// A test program or plugin component built from plugins/.
/// The guest plugins' folder (`plugins/`), where the TypeScript and Python plugins and their
/// locked toolchains live.
pub fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

pub fn wasm(name: &str) -> PathBuf {
    Path::new(env!("VIDHOOK_TEST_WASM_DIR")).join(format!("{name}.wasm"))
}

/// A loopback port that was free a moment ago (for a host that must keep its URL across a
/// restart, as a real deployment's `public_url` does).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh random name part.
fn uuid_like() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A `content.published` Standard Webhooks payload.
pub fn published(id: &str, title: &str, body_html: &str) -> String {
    serde_json::json!({
        "type": "content.published",
        "timestamp": "2026-11-25T10:00:00Z",
        "data": {"id": id, "title": title, "body_html": body_html, "locale": "en-US", "revision": 1}
    })
    .to_string()
}

/// A host config: Standard Webhooks source `blog` writing back to `cms`, OmniHuman provider at the
/// contract server.
pub fn omnihuman_config(
    dir: &std::path::Path,
    seedance: &seedance::Seedance,
    cms: &cms::Cms,
    webhooks: bool,
    poll_secs: u64,
    request_timeout_secs: u64,
) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"
workers = 2

[provider]
kind = "omnihuman"
base_url = "{base}"
api_key = "${{SEEDANCE_TEST_KEY}}"
webhooks = {webhooks}
poll_interval_secs = {poll_secs}
request_timeout_secs = {request_timeout_secs}

[checks]
allow_plain_http = true

[outbound]
# Loopback test servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]

[retry]
base_delay_ms = 50
max_delay_ms = 500

[sources.blog]
cms = "standard-webhooks"
secret = "{secret}"
writeback_url = "{cms}"
presenter_image = "{image}"
"#,
        data = dir.join("data").display(),
        base = seedance.url,
        secret = SECRET,
        cms = cms.url,
        image = presenter_png().display(),
    )
}

/// Ends a child started with `.process_group(0)` and everything it forked (its group), so a
/// test leaves nothing running.
pub fn end_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .status();
    }
    let _ = child.start_kill();
}

/// Fetches an input a contract server was given (the image, the audio), as the real service
/// does; an error says what could not be fetched.
pub async fn fetch_input(url: &str) -> Result<Vec<u8>, String> {
    let response = reqwest::get(url)
        .await
        .map_err(|e| format!("cannot fetch {url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    Ok(response.bytes().await.map_err(|e| e.to_string())?.to_vec())
}

/// Waits until `url` answers 404 (a provider's output deleted on its schedule), up to
/// `within`; panics if it still answers otherwise then.
pub async fn wait_until_gone(url: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let status = reqwest::get(url).await.map(|r| r.status().as_u16());
        if let Ok(404) = status {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} still answers {status:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A webhook a contract server delivered: where to, its body, its signature headers, and the
/// status it was answered (0 when none came).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub url: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub status: u16,
}

/// POSTs a JSON webhook body with `headers`, as a provider does.
pub async fn deliver_webhook(url: &str, body: &str, headers: Vec<(String, String)>) -> Delivery {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json");
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let status = match request.body(body.to_string()).send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    };
    Delivery {
        url: url.to_string(),
        body: body.to_string(),
        headers,
        status,
    }
}

/// Binds a router on a random loopback port and returns its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// Publishes the short article `id` to source `blog`, signed as its CMS would, expecting 202.
pub async fn publish_short(host: &Host, id: &str) {
    let body = published(
        id,
        "Weekly prices",
        "<p>Prices fell this week. Here is what changed.</p>",
    );
    let status = host
        .post_signed("blog", &format!("msg_{id}"), now_secs(), &body)
        .await
        .status();
    assert_eq!(status, 202);
}

/// The render id in a per-render callback URL (`…/provider-hooks/{host}/{render}?token=…`).
pub fn render_of(webhook: &str) -> String {
    webhook
        .split('?')
        .next()
        .and_then(|path| path.rsplit('/').next())
        .unwrap_or("?")
        .to_string()
}
