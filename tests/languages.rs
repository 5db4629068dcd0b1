//! Plugins in three languages, one contract (#27). The presenter and the digest re-implemented in
//! TypeScript (jco / componentize-js) and Python (componentize-py), built from `plugins/` by
//! `vidhook plugin build` (the command plugin authors run), plan exactly as the bundled Rust ones:
//! on the narration corpus (30 articles from every CMS shape, in eight locales among them Arabic
//! and Hebrew, Japanese, Chinese and Korean, with tables, lists, code, entities and emoji) plus a
//! one-sentence, a 2,000-word and a stops-and-breaks article; shortening a too-long plan; and a
//! digest of many items.
//! The hostile programs written in TypeScript and Python fail their own runs with the right
//! category (the exception and its stack or traceback in the run's logs, under the plugin's
//! name@version) while the same host goes on planning. (The author's path in those languages,
//! from `plugin new` to a served source and the dev loop, is tests/plugin_authoring.rs.)

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vidhook::content::Content;
use vidhook::plugins::{Decision, Limits, LoadedPlugin, Manifest, Plan, PluginHost, Policy};
use vidhook::templates::TemplateSet;

/// `vidhook plugin build plugins/<dir>`, once per test binary: the component and its manifest.
fn built(dir: &str) -> (Vec<u8>, Manifest) {
    static BUILT: Mutex<BTreeMap<String, (Vec<u8>, Manifest)>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    built
        .entry(dir.to_string())
        .or_insert_with(|| {
            let folder = support::plugins_dir().join(dir);
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
/// one-sentence, a 2,000-word and a stops-and-breaks article.
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
    // Where sentences end and words part: runs of stops, quotes and brackets after a stop, a
    // line that starts with a stop, a line break that is not a paragraph's, white space other
    // than the space (tab, no-break, ideographic, NEL) and a byte-order mark inside a word.
    contents.push(content(
        "stops-and-breaks",
        "Stops?!",
        "en-US",
        "Why now?! Because \"prices rose.\" Then (they fell.) Again... and again.\nA line.\n. Not \
         a stop here\n\nA heading\n\nTabs\tand\u{a0}no-break  spaces. x.y is one word? \"Yes.\")\
         \u{3000}Ideographic space. A\u{feff}BOM word. Next\u{85}line! End.\n\n\n.\n\nLast one",
    ));
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

/// What a run decided, or the reason the plugin returned for failing (without its name@version,
/// which differs by language): what the three languages must agree on.
type Outcome = Result<Decision, String>;

fn outcome(result: Result<vidhook::plugins::Run, vidhook::plugins::PluginFailure>) -> Outcome {
    result.map(|run| run.decision).map_err(|e| {
        let text = e.to_string();
        match text.split_once("returned an error: ") {
            Some((_, reason)) => reason.lines().next().unwrap_or_default().to_string(),
            None => text,
        }
    })
}

/// Notes a difference between the Rust plugin's outcome and another language's.
fn compare(differences: &mut Vec<String>, what: String, rust: &Outcome, theirs: &Outcome) {
    if rust != theirs {
        differences.push(format!("{what}:\n  rust: {rust:?}\n  it:   {theirs:?}"));
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
                let run = host.plan(other, content, &[], set.clone(), &settings).await;
                compared += 1;
                compare(
                    &mut differences,
                    format!("{} on {} at {resolution}", other.id(), content.id),
                    &Ok(expected.decision.clone()),
                    &outcome(run),
                );
            }
            // Shortening: the narration measured at 1.6 times its estimate, over a limit of a
            // third of it; every language keeps the same sentences.
            let words = expected_plan.speech_text.split_whitespace().count() as f64;
            let measured = (words * 60.0 / 175.0 * 1.6).max(1.0);
            let limits = (measured / 3.0, measured);
            let shortened = outcome(
                host.shorten(
                    &rust,
                    content,
                    &expected_plan,
                    limits,
                    set.clone(),
                    &settings,
                )
                .await,
            );
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
                compare(
                    &mut differences,
                    format!("{} shortening {} at {resolution}", other.id(), content.id),
                    &shortened,
                    &outcome(theirs),
                );
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
                let run = host.digest(other, items, set.clone(), &settings).await;
                compare(
                    &mut differences,
                    format!("{} on {} items at {resolution}", other.id(), items.len()),
                    &Ok(expected.decision.clone()),
                    &outcome(run),
                );
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

/// The TypeScript SDK's types are what `jco guest-types` makes of `wit/` now (the scaffold
/// vendors them): a change to the WIT without regenerating them fails here.
#[test]
fn the_typescript_types_are_generated_from_the_wit() {
    let sdk = support::plugins_dir().join("sdk-ts");
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
