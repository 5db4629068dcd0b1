//! The editors' workspace tests' shared parts: a host with two sources on the $0 preview provider,
//! one API call answered as (status, content type, JSON), and a bounded child process.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::cms::Cms;
use super::Host;

/// Two Standard Webhooks sources on the $0 preview provider: `blog` (renders go straight
/// through) and `gated` (an editor approves each render's preview first).
pub fn config(dir: &std::path::Path, cms: &Cms) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"
workers = 2

[provider]
kind = "preview"

[outbound]
# Loopback test servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]

[budgets]
daily_credits = 9600

[sources.blog]
cms = "standard-webhooks"
secret = "{secret}"
writeback_url = "{cms}"
presenter_image = "{image}"

[sources.gated]
cms = "standard-webhooks"
secret = "{secret}"
writeback_url = "{cms}"
presenter_image = "{image}"
approval = true

# A chain that assumes a faster speaker than the engine's 175 words a minute: its scripts fit on
# paper and run long when spoken, which the preview's duration bar shows.
[sources.paced]
cms = "standard-webhooks"
secret = "{secret}"
presenter_image = "{image}"

[[sources.paced.plugins]]
name = "presenter"
config = {{ words_per_minute = "400" }}
"#,
        data = dir.join("data").display(),
        secret = super::SECRET,
        cms = cms.url,
        image = super::presenter_png().display(),
    )
}

/// A fourth source, `hosted`, spoken by a hosted engine (OpenAI's contract server at `openai`,
/// priced as its tts-1 lists: $15 per million characters), to append to [`config`].
pub fn hosted_speech(openai: &str) -> String {
    format!(
        r#"
[tts.providers.openai]
kind = "openai"
base_url = "{openai}"
api_key = "${{TEST_OPENAI_KEY}}"
voice = "alloy"
cents_per_million_chars = 1500

[sources.hosted]
cms = "standard-webhooks"
secret = "{secret}"
presenter_image = "{image}"
tts = "openai"
"#,
        secret = super::SECRET,
        image = super::presenter_png().display(),
    )
}

pub async fn call(
    host: &Host,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", host.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    (
        status,
        kind,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Runs `program` with `args` and `env` in `cwd`, in its own process group, ended (with anything
/// it started) when done or after `limit`; returns whether it succeeded and what it printed.
pub async fn run_bounded(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    cwd: &std::path::Path,
    limit: Duration,
) -> (bool, String) {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} starts (scripts/setup-tests.sh installs it): {e}"));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = async {
        use tokio::io::AsyncReadExt;
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let _ = tokio::join!(
            out.read_to_string(&mut stdout),
            err.read_to_string(&mut stderr)
        );
        (
            child.wait().await.map(|s| s.success()).unwrap_or(false),
            stdout + &stderr,
        )
    };
    let outcome = tokio::time::timeout(limit, read).await;
    super::end_group(&mut child);
    outcome.unwrap_or_else(|_| (false, format!("{program} ran over {limit:?}")))
}

/// The actions of the audit log, newest first (read with the admin token).
pub async fn audit_actions(host: &Host) -> Vec<String> {
    let (_, _, audit) = call(host, Method::GET, "/api/v1/audit", Some(&host.token), None).await;
    audit
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_string())
        .collect()
}
