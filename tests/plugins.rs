//! The plugin platform through the real binary: the author's loop, installing versions into a
//! running host, pinned versions for jobs in flight, a hostile plugin failing only its own job,
//! and the LLM summariser calling an allowlisted host with a named secret.

mod support;

use std::path::Path;

use support::{llm::Llm, now_secs, published, vidhook, wasm, Host};

fn config(dir: &Path, extra: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"

[outbound]
# Loopback test servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]

[plugins]
admin_token = "admin-secret-0123456789"
allow_loopback_hosts = true
secrets = {{ OPENAI_API_KEY = "${{TEST_OPENAI_KEY}}" }}

[sources.docs]
cms = "markdown"
folder = "{docs}"
presenter_image = "{image}"

[sources.evil]
cms = "standard-webhooks"
secret = "{secret}"
presenter_image = "{image}"
plugins = [{{ name = "hostile", config = {{ behaviour = "loop" }} }}]
{extra}
"#,
        data = dir.join("data").display(),
        docs = dir.join("docs").display(),
        image = support::presenter_png().display(),
        secret = support::SECRET,
    )
}

async fn write_config(dir: &Path, extra: &str) -> String {
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    let path = dir.join("vidhook.toml");
    std::fs::write(
        &path,
        support::database_line(dir).await + &config(dir, extra),
    )
    .unwrap();
    path.display().to_string()
}

fn article(dir: &Path, name: &str, title: &str) -> String {
    let path = dir.join("docs").join(name);
    std::fs::write(
        &path,
        format!("---\ntitle: {title}\n---\nA short article. It has two sentences.\n"),
    )
    .unwrap();
    path.display().to_string()
}

fn manifest(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn render_for(host: &Host, entry: &str, state: &str) -> serde_json::Value {
    host.wait_for_render(&format!("{entry} in {state}"), |r| {
        r["entry"] == entry && r["render"]["state"] == state
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn installs_take_effect_without_restart_and_jobs_keep_their_pinned_version() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "").await;
    // Accepted while no host runs: pinned to the bundled presenter@0.1.0.
    let first = article(dir.path(), "first.md", "First");
    vidhook(&["publish", "--config", &cfg, "--source", "docs", &first]).await;
    // Then version 0.2.0 (same code, 1080p by default) is installed.
    let v2 = manifest(
        dir.path(),
        "v2.toml",
        "name = \"presenter\"\nversion = \"0.2.0\"\n[config]\nresolution = \"1080p\"\n",
    );
    let out = vidhook(&[
        "plugin",
        "install",
        wasm("presenter").to_str().unwrap(),
        "--manifest",
        &v2,
        "--config",
        &cfg,
    ])
    .await;
    assert!(out.contains("installed presenter@0.2.0"), "{out}");

    let host = Host::start(dir.path(), &std::fs::read_to_string(&cfg).unwrap()).await;
    let done = render_for(&host, "first.md", "done").await;
    assert!(
        done["provenance_json"]
            .as_str()
            .unwrap()
            .contains("presenter@0.1.0"),
        "pinned at acceptance: {done}"
    );
    assert!(done["plan_json"].as_str().unwrap().contains("\"720p\""));

    // Published while the host runs: the new version, no restart.
    let second = article(dir.path(), "second.md", "Second");
    vidhook(&["publish", "--config", &cfg, "--source", "docs", &second]).await;
    let done = render_for(&host, "second.md", "done").await;
    assert!(done["provenance_json"]
        .as_str()
        .unwrap()
        .contains("presenter@0.2.0"));
    assert!(done["plan_json"].as_str().unwrap().contains("\"1080p\""));
    assert!(
        host.logs()
            .contains("plugin loaded from the compiled cache"),
        "the restart did not recompile"
    );

    // The admin API: a token is required; a version asking for more needs a grant.
    use base64::Engine;
    let component =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(wasm("presenter")).unwrap());
    let wider = "name = \"presenter\"\nversion = \"0.3.0\"\n[capabilities]\nallowed_hosts = [\"api.example.com\"]\n";
    let client = reqwest::Client::new();
    let post = |token: &'static str, grant: bool| {
        client
            .post(format!("{}/api/v1/plugins", host.url))
            .bearer_auth(token)
            .json(&serde_json::json!({"manifest": wider, "component": component, "grant": grant}))
            .send()
    };
    assert_eq!(post("wrong", true).await.unwrap().status(), 401);
    let refused = post("admin-secret-0123456789", false).await.unwrap();
    assert_eq!(refused.status(), 409);
    assert!(refused
        .text()
        .await
        .unwrap()
        .contains("+ network: api.example.com"));
    let granted = post("admin-secret-0123456789", true).await.unwrap();
    assert_eq!(granted.status(), 201);
    assert_eq!(
        granted.json::<serde_json::Value>().await.unwrap()["granted"][0],
        "network: api.example.com"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_plugin_fails_its_own_job_while_other_jobs_finish() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "").await;
    // 100 ms: the loop burns the default 5e9 fuel in about 300 ms on this machine, so a 300 ms
    // deadline raced the fuel limit; at 100 ms the wall clock always stops it first.
    let hostile = manifest(
        dir.path(),
        "hostile.toml",
        "name = \"hostile\"\nversion = \"1.0.0\"\n[limits]\ndeadline_ms = 100\n",
    );
    vidhook(&[
        "plugin",
        "install",
        wasm("hostile").to_str().unwrap(),
        "--manifest",
        &hostile,
        "--config",
        &cfg,
    ])
    .await;
    let host = Host::start(dir.path(), &std::fs::read_to_string(&cfg).unwrap()).await;

    let body = published("x-1", "Loop forever", "<p>Never finishes.</p>");
    assert_eq!(
        host.post_signed("evil", "msg_1", now_secs(), &body)
            .await
            .status(),
        202
    );
    let doc = article(dir.path(), "fine.md", "Fine");
    vidhook(&["publish", "--config", &cfg, "--source", "docs", &doc]).await;

    let failed = render_for(&host, "x-1", "failed").await;
    assert_eq!(failed["error_category"], "plugin_error");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("wall-clock limit"),
        "{failed}"
    );
    render_for(&host, "fine.md", "done").await;
    assert_eq!(
        reqwest::get(format!("{}/healthz", host.url))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn summariser_calls_only_its_allowlisted_llm_with_the_named_secret() {
    let dir = tempfile::tempdir().unwrap();
    let llm = Llm::start("sk-test-123").await;
    let cfg = write_config(dir.path(), "").await;
    let allowed = format!(
        "name = \"summariser\"\nversion = \"0.1.1\"\n[capabilities]\nallowed_hosts = [\"{}\"]\nsecrets = [\"OPENAI_API_KEY\"]\n[config]\nbase_url = \"{}\"\n",
        llm.authority, llm.base_url
    );
    let allowed = manifest(dir.path(), "summariser.toml", &allowed);
    vidhook(&[
        "plugin",
        "install",
        wasm("summariser").to_str().unwrap(),
        "--manifest",
        &allowed,
        "--config",
        &cfg,
        "--grant",
    ])
    .await;
    let content = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/sample-content.json");
    let content = content.to_str().unwrap();

    // The summariser rewrites the script the presenter drafted.
    let test = [
        "plugin",
        "test",
        "summariser@0.1.1",
        "--after",
        "presenter",
        "--content",
        content,
        "--config",
        &cfg,
    ];
    let out = vidhook(&test).await;
    assert!(out.contains(support::llm::SUMMARY), "{out}");
    assert!(out.contains("1 outbound calls"), "{out}");
    let requests = llm.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0]["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("Five ways to cut your energy bill"));

    // The same component without the host in its manifest: denied, and no request arrives.
    let denied = manifest(dir.path(), "denied.toml", "name = \"summariser\"\nversion = \"0.1.2\"\n[capabilities]\nsecrets = [\"OPENAI_API_KEY\"]\n");
    vidhook(&[
        "plugin",
        "install",
        wasm("summariser").to_str().unwrap(),
        "--manifest",
        &denied,
        "--config",
        &cfg,
    ])
    .await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_vidhook"))
        .args([
            "plugin",
            "test",
            "summariser@0.1.2",
            "--after",
            "presenter",
            "--content",
            content,
            "--config",
            &cfg,
        ])
        .env("TEST_OPENAI_KEY", "sk-test-123")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("HttpRequestDenied"));
    assert_eq!(llm.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_authors_loop_new_build_test_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().to_str().unwrap();
    vidhook(&["plugin", "new", "team-plugin", "--dir", parent]).await;
    let crate_dir = dir.path().join("team-plugin");
    let built = vidhook(&["plugin", "build", crate_dir.to_str().unwrap()]).await;
    assert!(built.contains("team_plugin.wasm"), "{built}");
    let component = crate_dir.join("target/wasm32-wasip2/release/team_plugin.wasm");
    let sample = crate_dir.join("sample-content.json");
    let cfg = write_config(dir.path(), "").await;

    // The scaffold's own cases pass offline against the host double; a case that does not hold
    // fails the command, saying why.
    let tested = vidhook(&[
        "plugin",
        "test",
        crate_dir.to_str().unwrap(),
        "--config",
        &cfg,
    ])
    .await;
    assert!(
        tested.contains("ok     a page gets no video") && tested.contains("2 passed, 0 failed"),
        "{tested}"
    );
    let cases = crate_dir.join("tests/cases.toml");
    let mut text = std::fs::read_to_string(&cases).unwrap();
    text.push_str(
        "\n[[case]]\nname = \"an article is skipped\"\n\
         templates = { script = \"A.\", prompt = \"B.\" }\nexpect = { decision = \"skip\" }\n",
    );
    std::fs::write(&cases, text).unwrap();
    let (ok, failing) = support::vidhook_result(&[
        "plugin",
        "test",
        crate_dir.to_str().unwrap(),
        "--config",
        &cfg,
    ])
    .await;
    assert!(!ok, "a failed case fails the command: {failing}");
    assert!(
        failing.contains("FAILED an article is skipped: expected skip, it planned 1 videos")
            && failing.contains("2 passed, 1 failed"),
        "{failing}"
    );
    let out = vidhook(&[
        "plugin",
        "test",
        component.to_str().unwrap(),
        "--content",
        sample.to_str().unwrap(),
        "--config",
        &cfg,
    ])
    .await;
    assert!(
        out.contains("team-plugin@0.1.0") && out.contains("\"Generate\""),
        "{out}"
    );
    assert!(
        out.contains("fuel") && out.contains("MiB peak memory"),
        "{out}"
    );

    // Replay recorded events through two presenter versions that differ in resolution.
    for (i, title) in ["One", "Two"].iter().enumerate() {
        let file = article(dir.path(), &format!("{i}.md"), title);
        vidhook(&["publish", "--config", &cfg, "--source", "docs", &file]).await;
    }
    let v2 = manifest(
        dir.path(),
        "v2.toml",
        "name = \"presenter\"\nversion = \"0.2.0\"\n[config]\nresolution = \"1080p\"\n",
    );
    vidhook(&[
        "plugin",
        "install",
        wasm("presenter").to_str().unwrap(),
        "--manifest",
        &v2,
        "--config",
        &cfg,
    ])
    .await;
    let out = vidhook(&[
        "plugin",
        "replay",
        "presenter@0.2.0",
        "--against",
        "presenter@0.1.0",
        "--last",
        "50",
        "--config",
        &cfg,
    ])
    .await;
    assert!(out.contains("2 events replayed: 2 changed"), "{out}");

    // A recorded event becomes a case: a crate named like the chain's plugin records render
    // "0.md" (its content, settings and the templates' outputs now), and the case passes offline.
    let jobs = vidhook(&["jobs", "--config", &cfg]).await;
    let render = jobs
        .lines()
        .find(|line| line.contains("0.md"))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("no render of 0.md:\n{jobs}"))
        .to_string();
    let recording = dir.path().join("recording");
    let recording_str = recording.to_str().unwrap();
    vidhook(&["plugin", "new", "presenter", "--dir", recording_str]).await;
    let own = recording.join("presenter");
    let recorded = vidhook(&[
        "plugin",
        "test",
        own.to_str().unwrap(),
        "--record",
        &render,
        "--config",
        &cfg,
    ])
    .await;
    assert!(
        recorded.contains(&format!("recorded render {render}")),
        "{recorded}"
    );
    let cases = std::fs::read_to_string(own.join("tests/cases.toml")).unwrap();
    assert!(cases.contains(&format!("render {render}: One")), "{cases}");
    let replayed = vidhook(&["plugin", "test", own.to_str().unwrap(), "--config", &cfg]).await;
    assert!(replayed.contains("3 passed, 0 failed"), "{replayed}");

    // What publishing the folder would cost, through the same chain (v0.2.0 now), two videos.
    let docs = dir.path().join("docs");
    let estimate = vidhook(&[
        "estimate",
        "--folder",
        docs.to_str().unwrap(),
        "--config",
        &cfg,
    ])
    .await;
    assert!(
        estimate.contains("2 files in") && estimate.contains("2 videos, 0 skipped, 0 errors"),
        "{estimate}"
    );
    assert!(
        estimate.contains("2 videos × 960 credits = 1920 credits"),
        "{estimate}"
    );
    assert!(
        out.contains(r#"Generate[0].resolution: "720p" → "1080p""#),
        "{out}"
    );
}
