//! Plugins in three languages, one contract (#27). The presenter and the digest re-implemented in
//! TypeScript (jco / componentize-js) and Python (componentize-py), built from `plugins/` by
//! `vidhook plugin build` (the command plugin authors run), plan exactly as the bundled Rust ones:
//! on the narration corpus (30 articles from every CMS shape, in eight locales among them Arabic
//! and Hebrew, Japanese, Chinese and Korean, with tables, lists, code, entities and emoji) plus a
//! one-sentence and a 2,000-word article; shortening a too-long plan; and a digest of many items.
//! The hostile programs written in TypeScript and Python fail their own runs with the right
//! category (the exception and its stack or traceback in the run's logs, under the plugin's
//! name@version) while the same host goes on planning. And a team with Node or Python and the
//! vidhook binary goes from `plugin new --lang ts|python` to an installed plugin serving a source.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vidhook::content::Content;
use vidhook::plugins::{Decision, Limits, LoadedPlugin, Manifest, Plan, PluginHost, Policy};
use vidhook::templates::TemplateSet;

fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

/// `vidhook plugin build plugins/<dir>`, once per test binary: the component and its manifest.
fn built(dir: &str) -> (Vec<u8>, Manifest) {
    static BUILT: Mutex<BTreeMap<String, (Vec<u8>, Manifest)>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry(dir.to_string())
        .or_insert_with(|| {
            let folder = plugins_dir().join(dir);
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_vidhook"))
                .args(["plugin", "build"])
                .arg(&folder)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "plugin build {dir}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            let manifest = Manifest::parse(
                &std::fs::read_to_string(folder.join("vidhook-plugin.toml")).unwrap(),
            )
            .unwrap();
            let wasm = folder.join("dist").join(format!("{}.wasm", manifest.name));
            (std::fs::read(wasm).unwrap(), manifest)
        })
        .clone()
}

/// A plugin host on a fresh database with the default templates.
async fn host(policy: Policy) -> (tempfile::TempDir, PluginHost, Arc<TemplateSet>) {
    let dir = tempfile::tempdir().unwrap();
    let db = vidhook::store::Store::connect(
        &format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    vidhook::templates::seed_defaults(&db).await.unwrap();
    let set = Arc::new(TemplateSet::load(&db).await.unwrap());
    let host = PluginHost::new(db, dir.path().join("plugins"), policy)
        .await
        .unwrap();
    (dir, host, set)
}

async fn load(host: &PluginHost, dir: &str) -> Arc<LoadedPlugin> {
    let (bytes, manifest) = tokio::task::spawn_blocking({
        let dir = dir.to_string();
        move || built(&dir)
    })
    .await
    .unwrap();
    host.load_uninstalled(&bytes, manifest).await.unwrap()
}

#[derive(serde::Deserialize)]
struct Article {
    title: String,
    #[serde(default)]
    locale: Option<String>,
    shape: String,
    body: String,
}

/// The narration corpus (tests/narration), converted as each CMS adapter converts it, plus a
/// one-sentence and a 2,000-word article.
fn corpus() -> Vec<Content> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/narration");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut contents: Vec<Content> = files
        .iter()
        .map(|file| {
            let article: Article = toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
            let body_text = match article.shape.as_str() {
                "html" => vidhook::cms::mapping::html_to_text(&article.body),
                "markdown" => vidhook::content::markdown_to_html_and_text(&article.body).1,
                "rich" => {
                    vidhook::cms::mapping::rich_text(&serde_json::from_str(&article.body).unwrap())
                }
                other => panic!("unknown shape {other:?}"),
            };
            content(
                &file.file_name().unwrap().to_string_lossy(),
                &article.title,
                article.locale.as_deref().unwrap_or("en-US"),
                &body_text,
            )
        })
        .collect();
    assert!(contents.len() >= 30, "{} articles", contents.len());
    contents.push(content(
        "one-sentence",
        "Short",
        "en-GB",
        "Prices fell this week.",
    ));
    let long: String = (0..100)
        .map(|i| {
            format!(
                "Paragraph {i} says what changed this week and why. It has two sentences, twenty words in all, counted.\n\n"
            )
        })
        .collect();
    contents.push(content("2000-words", "A long read", "en-US", &long));
    contents
}

fn content(id: &str, title: &str, locale: &str, body_text: &str) -> Content {
    Content {
        source: "corpus".into(),
        cms: "markdown".into(),
        id: id.into(),
        revision: "1".into(),
        kind: "article".into(),
        locale: locale.into(),
        title: title.into(),
        body_html: String::new(),
        body_text: body_text.into(),
        url: Some(format!("https://blog.example/{id}")),
        image: Some("https://cdn.example/p.png".into()),
        fields: serde_json::json!({"author": "Ana", "score": 1.0, "tags": ["a", "b"]}),
    }
}

fn plans(decision: Decision) -> Vec<Plan> {
    match decision {
        Decision::Generate(plans) => plans,
        Decision::Skip(reason) => panic!("skipped: {reason}"),
    }
}

/// The presenter in Rust, TypeScript and Python: the same plan for every article (script,
/// prompt, voice, language, resolution, target), at both resolutions, and the same shortening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_presenter_plans_the_same_in_rust_typescript_and_python() {
    let (_dir, host, set) = host(Policy::default()).await;
    let rust = host.resolve("presenter").await.unwrap();
    let others = [
        load(&host, "presenter-ts").await,
        load(&host, "presenter-py").await,
    ];
    let corpus = corpus();
    let mut compared = 0;
    let mut differences = Vec::new();
    for content in &corpus {
        for resolution in ["720p", "1080p"] {
            let settings = BTreeMap::from([("resolution".to_string(), resolution.to_string())]);
            let expected = host
                .plan(&rust, content, &[], set.clone(), &settings)
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", content.id));
            let expected_plan = plans(expected.decision.clone()).remove(0);
            for other in &others {
                let run = host
                    .plan(other, content, &[], set.clone(), &settings)
                    .await
                    .unwrap_or_else(|e| panic!("{} {}: {e}", other.id(), content.id));
                compared += 1;
                if run.decision != expected.decision {
                    differences.push(format!(
                        "{} on {} at {resolution}:\n  rust: {:?}\n  it:   {:?}",
                        other.id(),
                        content.id,
                        expected.decision,
                        run.decision
                    ));
                }
            }
            // Shortening: the narration measured at 1.6 times its estimate, over a limit of a
            // third of it; every language keeps the same sentences.
            let words = expected_plan.speech_text.split_whitespace().count() as f64;
            let measured = (words * 60.0 / 175.0 * 1.6).max(1.0);
            let limits = (measured / 3.0, measured);
            let shortened = host
                .shorten(
                    &rust,
                    content,
                    &expected_plan,
                    limits,
                    set.clone(),
                    &settings,
                )
                .await;
            for other in &others {
                let theirs = host
                    .shorten(
                        other,
                        content,
                        &expected_plan,
                        limits,
                        set.clone(),
                        &settings,
                    )
                    .await;
                compared += 1;
                let same = match (&shortened, &theirs) {
                    (Ok(a), Ok(b)) => a.decision == b.decision,
                    (Err(a), Err(b)) => {
                        let reason = |e: &vidhook::plugins::PluginFailure| {
                            e.to_string()
                                .split_once("returned an error: ")
                                .map(|(_, r)| r.lines().next().unwrap_or_default().to_string())
                        };
                        reason(a) == reason(b)
                    }
                    _ => false,
                };
                if !same {
                    differences.push(format!(
                        "{} shortening {} at {resolution}:\n  rust: {:?}\n  it:   {:?}",
                        other.id(),
                        content.id,
                        shortened
                            .as_ref()
                            .map(|r| &r.decision)
                            .map_err(|e| e.to_string()),
                        theirs
                            .as_ref()
                            .map(|r| &r.decision)
                            .map_err(|e| e.to_string()),
                    ));
                }
            }
        }
    }
    println!(
        "parity: {} articles, {compared} plans and shortenings compared across Rust, TypeScript and Python, {} differ",
        corpus.len(),
        differences.len()
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// The digest in Rust, TypeScript and Python: the same video of the same items, including when
/// items must be dropped to fit the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_plans_the_same_in_rust_typescript_and_python() {
    let (_dir, host, set) = host(Policy::default()).await;
    let rust = host.resolve("digest").await.unwrap();
    let others = [
        load(&host, "digest-ts").await,
        load(&host, "digest-py").await,
    ];
    let corpus = corpus();
    let mut batches: Vec<&[Content]> = corpus.chunks(4).collect();
    batches.push(&corpus[..]);
    batches.push(&corpus[..0]);
    let mut differences = Vec::new();
    for items in &batches {
        for resolution in ["720p", "1080p"] {
            let settings = BTreeMap::from([("resolution".to_string(), resolution.to_string())]);
            let expected = host
                .digest(&rust, items, set.clone(), &settings)
                .await
                .unwrap();
            for other in &others {
                let run = host
                    .digest(other, items, set.clone(), &settings)
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", other.id()));
                if run.decision != expected.decision {
                    differences.push(format!(
                        "{} on {} items at {resolution}:\n  rust: {:?}\n  it:   {:?}",
                        other.id(),
                        items.len(),
                        expected.decision,
                        run.decision
                    ));
                }
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Each hostile behaviour, written in TypeScript and in Python, fails its own run with the right
/// category, and the same host then plans with the presenter as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_typescript_and_python_fail_their_own_runs() {
    let max = Limits {
        fuel: 20_000_000_000,
        deadline: Duration::from_millis(1500),
        memory_bytes: 128 << 20,
        output_bytes: 256 << 10,
        http_calls: 4,
    };
    let (_dir, host, set) = host(Policy {
        max,
        ..Policy::default()
    })
    .await;
    let presenter = host.resolve("presenter").await.unwrap();
    let article = content(
        "a",
        "A title",
        "en-US",
        "One sentence here. Another one there.",
    );
    // (behaviour, the failure is one of these, the logs hold these)
    let cases: [(&str, &[&str], &[&str]); 4] = [
        ("loop", &["CPU (fuel) limit", "wall-clock limit"], &[]),
        ("alloc", &["memory limit"], &[]),
        ("output", &["output size limit"], &[]),
        (
            "throw",
            &["trapped"],
            &["uncaught exception in plan", "on purpose"],
        ),
    ];
    for dir in ["test-programs/hostile-ts", "test-programs/hostile-py"] {
        let hostile = load(&host, dir).await;
        for (behaviour, category, logged) in cases {
            let settings = BTreeMap::from([("behaviour".to_string(), behaviour.to_string())]);
            let started = Instant::now();
            let result = host
                .plan(&hostile, &article, &[], set.clone(), &settings)
                .await;
            let err = result.expect_err(behaviour).to_string();
            assert!(
                category.iter().any(|c| err.contains(c)),
                "{dir} {behaviour}: {err}"
            );
            assert!(err.contains(&hostile.id()), "{dir} {behaviour}: {err}");
            for line in logged {
                assert!(err.contains(line), "{dir} {behaviour}: {err}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{dir} {behaviour} took {:?}",
                started.elapsed()
            );
            let ok = host
                .plan(&presenter, &article, &[], set.clone(), &BTreeMap::new())
                .await;
            assert!(ok.is_ok(), "after {dir} {behaviour}: {:?}", ok.err());
        }
        // A host the manifest does not name (it names allowed.example only) is refused.
        let settings = BTreeMap::from([("behaviour".to_string(), "http".to_string())]);
        let run = host
            .plan(&hostile, &article, &[], set.clone(), &settings)
            .await
            .unwrap();
        match &run.decision {
            Decision::Skip(reason) => assert!(reason.starts_with("http: "), "{dir}: {reason}"),
            other => panic!("{dir}: {other:?}"),
        }
        // Nothing of the host's environment is there to read.
        let settings = BTreeMap::from([("behaviour".to_string(), "env".to_string())]);
        let run = host
            .plan(&hostile, &article, &[], set.clone(), &settings)
            .await
            .unwrap();
        let expected = if dir.ends_with("-py") {
            "env: []"
        } else {
            "env: "
        };
        assert_eq!(run.decision, Decision::Skip(expected.into()), "{dir}");
    }
    // Nor any file (Python has a file API to try; the JavaScript engine has none).
    let hostile = load(&host, "test-programs/hostile-py").await;
    let settings = BTreeMap::from([("behaviour".to_string(), "file".to_string())]);
    let err = host
        .plan(&hostile, &article, &[], set.clone(), &settings)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("internal: file:"), "{err}");
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
    let parent_str = parent.to_str().unwrap();
    for (name, lang) in [("team-ts", "ts"), ("team-py", "python")] {
        let created =
            support::vidhook(&["plugin", "new", name, "--lang", lang, "--dir", parent_str]).await;
        assert!(
            created.contains(&format!("created plugin {name}")),
            "{created}"
        );
    }
    // The Python toolchain as `plugin build` would install it (a .venv from requirements.txt).
    std::os::unix::fs::symlink(plugins_dir().join(".venv"), parent.join("team-py/.venv")).unwrap();

    let llm = support::llm::Llm::start("sk-test-123").await;
    let docs = |source: &str| dir.path().join("docs").join(source);
    for source in ["ts", "py"] {
        std::fs::create_dir_all(docs(source)).unwrap();
    }
    let config = format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"

[outbound]
# Loopback test servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]

[plugins]
allow_loopback_hosts = true
secrets = {{ OPENAI_API_KEY = "sk-test-123" }}

[sources.ts]
cms = "markdown"
folder = "{ts}"
presenter_image = "{image}"
plugins = [{{ name = "team-ts", config = {{ summary_url = "{base}/chat/completions" }} }}]

[sources.py]
cms = "markdown"
folder = "{py}"
presenter_image = "{image}"
plugins = [{{ name = "team-py" }}]
"#,
        data = dir.path().join("data").display(),
        ts = docs("ts").display(),
        py = docs("py").display(),
        image = support::presenter_png().display(),
        base = llm.base_url,
    );
    let config = support::database_line(dir.path()).await + &config;
    let cfg = dir.path().join("vidhook.toml");
    std::fs::write(&cfg, &config).unwrap();
    let cfg = cfg.to_str().unwrap();

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
        let article = docs(source).join("news.md");
        std::fs::write(
            &article,
            "---\ntitle: Weekly prices\n---\nPrices fell this week. Bread costs less.\n",
        )
        .unwrap();
        support::vidhook(&[
            "publish",
            "--config",
            cfg,
            "--source",
            source,
            article.to_str().unwrap(),
        ])
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
    let article = docs("ts").join("summary.md");
    std::fs::write(
        &article,
        "---\ntitle: Energy\n---\nFive ways to cut your energy bill, one by one.\n",
    )
    .unwrap();
    support::vidhook(&[
        "publish",
        "--config",
        cfg,
        "--source",
        "ts",
        article.to_str().unwrap(),
    ])
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

/// The first render that is done and matches, as `Host::renders` shows it (waits up to a minute).
async fn done_render(
    host: &support::Host,
    what: &str,
    matches: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..600 {
        let found = host
            .renders()
            .await
            .into_iter()
            .find(|r| r["render"]["state"] == "done" && matches(r));
        if let Some(render) = found {
            return render["render"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{what} never done: {:#?}\n{}",
        host.renders().await,
        host.logs()
    )
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
    support::vidhook(&[
        "plugin",
        "new",
        "team-py",
        "--lang",
        "python",
        "--dir",
        parent.to_str().unwrap(),
    ])
    .await;
    let folder = parent.join("team-py");
    std::os::unix::fs::symlink(plugins_dir().join(".venv"), folder.join(".venv")).unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let config = support::database_line(dir.path()).await
        + &format!(
            r#"
listen = "127.0.0.1:0"
data_dir = "{data}"

[outbound]
# Loopback test servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]

[sources.docs]
cms = "markdown"
folder = "{docs}"
presenter_image = "{image}"
plugins = [{{ name = "team-py" }}]
"#,
            data = dir.path().join("data").display(),
            docs = docs.display(),
            image = support::presenter_png().display(),
        );
    let cfg_path = dir.path().join("vidhook.toml");
    std::fs::write(&cfg_path, &config).unwrap();
    let cfg = cfg_path.to_str().unwrap();
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
    let publish = |name: &str| {
        let article = docs.join(name);
        std::fs::write(
            &article,
            format!("---\ntitle: {name}\n---\nPrices fell this week. Bread costs less.\n"),
        )
        .unwrap();
        async move {
            support::vidhook(&[
                "publish",
                "--config",
                cfg,
                "--source",
                "docs",
                article.to_str().unwrap(),
            ])
            .await
        }
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

/// The TypeScript SDK's types are what `jco guest-types` makes of `wit/` now (the scaffold
/// vendors them): a change to the WIT without regenerating them fails here.
#[test]
fn the_typescript_types_are_generated_from_the_wit() {
    let sdk = plugins_dir().join("sdk-ts");
    let out = tempfile::tempdir().unwrap();
    for world in ["plugin", "shortening-plugin", "digest"] {
        let generated = std::process::Command::new("node")
            .arg("jco.mjs")
            .args(["guest-types", "../../wit", "-q", "-n", world, "-o"])
            .arg(out.path())
            .current_dir(&sdk)
            .output()
            .unwrap();
        assert!(
            generated.status.success(),
            "{}",
            String::from_utf8_lossy(&generated.stderr)
        );
    }
    let mut files = Vec::new();
    let mut folders = vec![out.path().to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                folders.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    assert_eq!(files.len(), 5, "{files:?}");
    for file in files {
        let relative = file.strip_prefix(out.path()).unwrap();
        let committed = std::fs::read_to_string(sdk.join("types").join(relative))
            .unwrap_or_else(|_| panic!("plugins/sdk-ts/types/{} is missing", relative.display()));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            committed,
            "plugins/sdk-ts/types/{} differs from what jco makes of wit/: regenerate it \
             (cd plugins/sdk-ts && node jco.mjs guest-types ../../wit -n WORLD -o types)",
            relative.display()
        );
    }
}
