//! Writing a plugin in TypeScript or Python, as its author does (#27), against the real binary:
//! `plugin new --lang ts|python` → `plugin test` → `plugin install` → a source's video, with no
//! Rust toolchain in the path; a TypeScript plugin that calls out, recorded as a case and replayed
//! offline; and the `plugin dev` loop against a running service.

mod support;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `plugin new NAME --lang LANG` under `parent`: the plugin's folder. A Python plugin gets the
/// toolchain as `plugin build` would install it (a `.venv` from requirements.txt), linked from
/// the one scripts/setup-tests.sh installed.
async fn new_plugin(parent: &Path, name: &str, lang: &str) -> PathBuf {
    let created = support::vidhook(&[
        "plugin",
        "new",
        name,
        "--lang",
        lang,
        "--dir",
        parent.to_str().unwrap(),
    ])
    .await;
    assert!(
        created.contains(&format!("created plugin {name}")),
        "{created}"
    );
    let folder = parent.join(name);
    if lang == "python" {
        std::os::unix::fs::symlink(support::plugins_dir().join(".venv"), folder.join(".venv"))
            .unwrap();
    }
    folder
}

/// A Markdown-folder source `name` reading `DIR/docs/NAME` (created), with the sample presenter
/// photo and `plugins` as its chain.
fn markdown_source(dir: &Path, name: &str, plugins: &str) -> String {
    let folder = dir.join("docs").join(name);
    std::fs::create_dir_all(&folder).unwrap();
    format!(
        "\n[sources.{name}]\ncms = \"markdown\"\nfolder = \"{}\"\npresenter_image = \"{}\"\nplugins = {plugins}\n",
        folder.display(),
        support::presenter_png().display(),
    )
}

/// The service on loopback with this run's database, a data folder in `dir` and `rest` (plugin
/// policy, sources), written to `DIR/vidhook.toml`: (the text, the file's path).
async fn write_config(dir: &Path, rest: &str) -> (String, String) {
    let config = support::database_line(dir).await
        + &format!(
            r#"
listen = "127.0.0.1:0"
data_dir = "{data}"

[outbound]
# Loopback test servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]
{rest}"#,
            data = dir.join("data").display(),
        );
    let path = dir.join("vidhook.toml");
    std::fs::write(&path, &config).unwrap();
    (config, path.display().to_string())
}

/// The plugin author's path without Rust: `plugin new --lang ts` and `--lang python`, the
/// scaffold's own cases passing (`plugin test DIR` builds it with the language's tool: the
/// TypeScript one installs its locked toolchain with `npm ci`, from npm's cache that
/// scripts/setup-tests.sh filled; the Python one finds the hash-locked componentize-py in a
/// `.venv`), `plugin install`, then a source whose chain is that plugin makes its video. Then the
/// TypeScript plugin calls out: `plan` turns async and asks a loopback LLM for the script
/// (`fetch` → wasi:http, within the manifest's grants); a render it made is recorded as a case
/// (`plugin test DIR --record`) with the LLM's answer, and the case replays offline.
#[tokio::test(flavor = "multi_thread")]
async fn typescript_and_python_plugins_go_from_new_to_serving_a_source() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("plugins");
    new_plugin(&parent, "team-ts", "ts").await;
    new_plugin(&parent, "team-py", "python").await;
    let llm = support::llm::Llm::start("sk-test-123").await;
    let docs = |source: &str| dir.path().join("docs").join(source);
    let rest = format!(
        "\n[plugins]\nallow_loopback_hosts = true\nsecrets = {{ OPENAI_API_KEY = \"sk-test-123\" }}\n{}{}",
        markdown_source(
            dir.path(),
            "ts",
            &format!(
                "[{{ name = \"team-ts\", config = {{ summary_url = \"{}/chat/completions\" }} }}]",
                llm.base_url
            ),
        ),
        markdown_source(dir.path(), "py", "[{ name = \"team-py\" }]"),
    );
    let (config, cfg) = write_config(dir.path(), &rest).await;
    let cfg = cfg.as_str();

    for (name, source) in [("team-ts", "ts"), ("team-py", "py")] {
        let folder = parent.join(name);
        let folder = folder.to_str().unwrap();
        let tested = support::vidhook(&["plugin", "test", folder, "--config", cfg]).await;
        assert!(
            tested.contains("ok     a page gets no video") && tested.contains("2 passed, 0 failed"),
            "{name}: {tested}"
        );
        let installed = support::vidhook(&[
            "plugin",
            "install",
            &format!("{folder}/dist/{name}.wasm"),
            "--manifest",
            &format!("{folder}/vidhook-plugin.toml"),
            "--config",
            cfg,
        ])
        .await;
        assert!(
            installed.contains(&format!("installed {name}@0.1.0")),
            "{installed}"
        );
        publish_markdown(
            cfg,
            source,
            &docs(source).join("news.md"),
            "Weekly prices",
            "Prices fell this week. Bread costs less.",
        )
        .await;
    }
    assert!(
        parent
            .join("team-ts/node_modules/@bytecodealliance/jco")
            .exists(),
        "the TypeScript toolchain was installed in the plugin's folder"
    );

    let host = support::Host::start(dir.path(), &config).await;
    for name in ["team-ts", "team-py"] {
        let done = done_render(&host, &format!("a render by {name}"), |r| {
            r["render"]["provenance_json"]
                .as_str()
                .is_some_and(|p| p.contains(&format!("{name}@0.1.0")))
        })
        .await;
        let plan = done["plan_json"].as_str().unwrap();
        assert!(plan.contains("Prices fell this week"), "{name}: {plan}");
    }

    let ts = parent.join("team-ts");
    let index = ts.join("src/index.ts");
    let code = std::fs::read_to_string(&index)
        .unwrap()
        .replace("  configNumber,", "  config,\n  configNumber,")
        .replace(
            "exported('plan', (content: Content, draft: VideoPlan[]) => {",
            "exported('plan', async (content: Content, draft: VideoPlan[]) => {",
        )
        .replace(
            "  const script = render('script', context);",
            r#"  const summaryUrl = config('summary_url');
  if (summaryUrl !== undefined) {
    const answer = await fetch(summaryUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${config('OPENAI_API_KEY')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: content.bodyText }] }),
    });
    context.body = (await answer.json()).choices[0].message.content;
  }
  const script = render('script', context);"#,
        );
    std::fs::write(&index, code).unwrap();
    let manifest = ts.join("vidhook-plugin.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("version = \"0.1.0\"", "version = \"0.1.1\"")
        .replace(
            "allowed_hosts = []",
            &format!("allowed_hosts = [\"{}\"]", llm.authority),
        )
        .replace("secrets = []", "secrets = [\"OPENAI_API_KEY\"]");
    std::fs::write(&manifest, text).unwrap();
    let ts_str = ts.to_str().unwrap();
    support::vidhook(&["plugin", "build", ts_str]).await;
    support::vidhook(&[
        "plugin",
        "install",
        &format!("{ts_str}/dist/team-ts.wasm"),
        "--manifest",
        &format!("{ts_str}/vidhook-plugin.toml"),
        "--grant",
        "--config",
        cfg,
    ])
    .await;
    publish_markdown(
        cfg,
        "ts",
        &docs("ts").join("summary.md"),
        "Energy",
        "Five ways to cut your energy bill, one by one.",
    )
    .await;
    let summarised = done_render(&host, "summary.md", |r| r["entry"] == "summary.md").await;
    let plan = summarised["plan_json"].as_str().unwrap();
    assert!(plan.contains(support::llm::SUMMARY), "{plan}");
    assert_eq!(llm.requests().len(), 1);

    let render = summarised["id"].as_str().unwrap();
    let recorded = support::vidhook(&[
        "plugin", "test", ts_str, "--record", render, "--config", cfg,
    ])
    .await;
    assert!(
        recorded.contains(&format!("recorded render {render}")),
        "{recorded}"
    );
    let cases = std::fs::read_to_string(ts.join("tests/cases.toml")).unwrap();
    assert!(
        cases.contains(&format!("{}/chat/completions", llm.base_url))
            && cases.contains("Cut your bill"),
        "the LLM's answer is in the case: {cases}"
    );
    let calls = llm.requests().len();
    let replayed = support::vidhook(&["plugin", "test", ts_str, "--config", cfg]).await;
    assert!(replayed.contains("3 passed, 0 failed"), "{replayed}");
    assert_eq!(llm.requests().len(), calls, "the replay reached no network");
}

/// The first render that is done and matches (waits up to a minute).
async fn done_render(
    host: &support::Host,
    what: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    host.wait_for_render(&format!("{what} (done)"), |r| {
        r["render"]["state"] == "done" && matches(r)
    })
    .await
}

/// Writes a Markdown article (`title`, `body`) to `path` and publishes it to `source`.
async fn publish_markdown(cfg: &str, source: &str, path: &Path, title: &str, body: &str) {
    std::fs::write(path, format!("---\ntitle: {title}\n---\n{body}\n")).unwrap();
    support::vidhook(&[
        "publish",
        "--config",
        cfg,
        "--source",
        source,
        path.to_str().unwrap(),
    ])
    .await;
}

/// Lines a running `vidhook` printed so far.
#[derive(Clone, Default)]
struct Printed(Arc<Mutex<String>>);

impl Printed {
    fn follow(child: &mut tokio::process::Child) -> Printed {
        use tokio::io::AsyncBufReadExt;
        let printed = Printed::default();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let sink = printed.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = sink.0.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        printed
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Waits until what was printed after `from` bytes contains `needle`; the text after `from`.
    async fn wait_for(&self, from: usize, needle: &str) -> String {
        for _ in 0..1200 {
            let text = self.text();
            if text[from..].contains(needle) {
                return text[from..].to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("never printed {needle:?}:\n{}", self.text());
    }
}

/// `plugin dev DIR --source NAME` against a running service: an edit is rebuilt, served for the
/// source without a restart (the next publish is planned by it), the source's recorded events
/// are replayed through the old and new builds with the plans' differences printed; a broken
/// edit is shown while the last good build keeps serving; Ctrl-C hands the source back to the
/// installed version. The replays ran plugins only: no render, no speech, nothing paid.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_dev_rebuilds_serves_and_replays_without_paying() {
    let dir = tempfile::tempdir().unwrap();
    let parent = dir.path().join("plugins");
    let folder = new_plugin(&parent, "team-py", "python").await;
    let docs = dir.path().join("docs/docs");
    let (config, cfg) = write_config(
        dir.path(),
        &markdown_source(dir.path(), "docs", "[{ name = \"team-py\" }]"),
    )
    .await;
    let cfg = cfg.as_str();
    let folder_str = folder.to_str().unwrap();
    support::vidhook(&["plugin", "build", folder_str]).await;
    support::vidhook(&[
        "plugin",
        "install",
        &format!("{folder_str}/dist/team-py.wasm"),
        "--manifest",
        &format!("{folder_str}/vidhook-plugin.toml"),
        "--config",
        cfg,
    ])
    .await;
    let publish = |name: &'static str| {
        let body = "Prices fell this week. Bread costs less.";
        let article = docs.join(name);
        async move { publish_markdown(cfg, "docs", &article, name, body).await }
    };
    publish("one.md").await;
    publish("two.md").await;
    let host = support::Host::start(dir.path(), &config).await;
    let plan_of = |entry: &'static str| done_render(&host, entry, move |r| r["entry"] == entry);
    plan_of("one.md").await;
    plan_of("two.md").await;
    let renders_before = host.renders().await.len();

    let mut dev = tokio::process::Command::new(env!("CARGO_BIN_EXE_vidhook"))
        .args([
            "plugin", "dev", folder_str, "--source", "docs", "--last", "5",
        ])
        .args(["--config", cfg])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let printed = Printed::follow(&mut dev);
    // The first build (componentize-py's output differs from build to build) plans as installed.
    printed
        .wait_for(0, "2 events of docs replayed: 0 changed, 2 same")
        .await;

    // An edit: the voice changes. It serves the source, and the recorded events say how.
    let app = folder.join("app.py");
    let code = std::fs::read_to_string(&app).unwrap();
    let from = printed.text().len();
    std::fs::write(
        &app,
        code.replace("locale.default_voice(content.locale)", "\"en-gb\""),
    )
    .unwrap();
    let replayed = printed
        .wait_for(
            from,
            "2 events of docs replayed: 2 changed, 0 same (nothing spoken, nothing paid)",
        )
        .await;
    assert!(
        replayed.contains("serving docs with the development build team-py@0.1.0")
            && replayed.contains(r#"Generate[0].voice: "en-us" → "en-gb""#),
        "{replayed}"
    );
    assert_eq!(
        host.renders().await.len(),
        renders_before,
        "replays make no render"
    );
    publish("three.md").await;
    let three = plan_of("three.md").await;
    assert!(
        three["plan_json"].as_str().unwrap().contains("en-gb"),
        "the running service planned with the development build: {three}"
    );

    // A broken edit: the error is shown, the last good build keeps serving.
    let from = printed.text().len();
    std::fs::write(&app, "this is not python(\n").unwrap();
    let failed = printed.wait_for(from, "keeps serving docs").await;
    assert!(failed.contains("build failed"), "{failed}");
    publish("four.md").await;
    let four = plan_of("four.md").await;
    assert!(
        four["plan_json"].as_str().unwrap().contains("en-gb"),
        "{four}"
    );

    // Ctrl-C: the installed version serves the source again.
    let sent = std::process::Command::new("kill")
        .args(["-INT", &dev.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(20), dev.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{}", printed.text());
    printed
        .wait_for(
            0,
            "development build ended: docs is served by the installed team-py again",
        )
        .await;
    publish("five.md").await;
    let five = plan_of("five.md").await;
    assert!(
        five["plan_json"].as_str().unwrap().contains("en-us"),
        "{five}"
    );
}
