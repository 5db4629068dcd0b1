//! What running a plugin in the sandbox costs: the default presenter plugin (fresh store,
//! instantiate from `InstancePre` with the pooling allocator, call, drop) against the same logic
//! compiled as native Rust, on the same long article, in the same run, twice: with native
//! Handlebars, and rendering through the host's template sandbox as the plugin does (so the
//! second overhead is what running the plugin as wasm adds). Then the presenter as
//! written in Rust, TypeScript and Python (built by `vidhook plugin build`) side by side: the
//! component's size, its first compile, its load from the compiled cache after a restart (a new
//! host on the same data folder), instantiate + call on the one-sentence and the 2,000-word
//! article, and the peak memory of a run.
//!
//! `cargo bench -p vidhook --bench plugin_overhead` (optional arguments: iterations for the
//! Rust-against-native run, default 3000; iterations per language, default 300).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use std::path::Path;
use vidhook::content::Content;

use vidhook::plugins::{Decision, Manifest, PluginHost, Policy};
use vidhook::store::Store;
use vidhook::templates::TemplateSet;
use vidhook_plugin_sdk::text::{fit_to_seconds, narration_body, speaking_seconds, tidy_stops};

fn article() -> Content {
    let paragraph = "Energy prices rose again this winter, and households are looking for ways to \
        save. Heating is the largest item on most bills. Turning the thermostat down by one degree \
        saves about ten percent. Sealing draughts around windows and doors costs little. ";
    Content {
        source: "blog".into(),
        cms: "markdown".into(),
        id: "energy.md".into(),
        revision: "1".into(),
        kind: "article".into(),
        locale: "en-US".into(),
        title: "Five ways to cut your energy bill".into(),
        body_html: String::new(),
        body_text: paragraph.repeat(50), // ~2,000 words
        url: None,
        image: Some("https://cdn.example.com/presenter.png".into()),
        fields: json!({}),
    }
}

/// The default templates in a native Handlebars registry (strict, no escaping): what the
/// native baseline renders with. vidhook itself renders in the template sandbox.
fn native_templates() -> handlebars::Handlebars<'static> {
    let mut registry = handlebars::Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(handlebars::no_escape);
    for (name, body) in vidhook::templates::DEFAULTS {
        registry.register_template_string(name, body).unwrap();
    }
    registry
}

/// The presenter plugin's logic, natively: the same SDK functions (the narrator's reading of the
/// body, fitting, tidying the stops), the same context and the same templates, rendered by
/// `render` (native Handlebars, or the host's template sandbox as the plugin's renders are).
async fn native_plan(
    content: &Content,
    mut render: impl AsyncFnMut(&str, &serde_json::Value) -> String,
) -> (String, String) {
    let wpm = 175.0;
    let budget = 60.0 * 0.85;
    let mut context = json!({"title": content.title, "body": "", "locale": content.locale,
        "kind": content.kind, "url": content.url, "source": content.source,
        "fields": content.fields});
    let frame = render("script", &context).await;
    let body = narration_body(&content.title, &content.body_text);
    context["body"] = json!(fit_to_seconds(
        &body,
        budget - speaking_seconds(&frame, wpm),
        wpm
    ));
    let script = tidy_stops(&render("script", &context).await);
    let prompt = render("prompt", &context).await;
    let _log = format!(
        "script: {} words, ~{:.1} s",
        script.split_whitespace().count(),
        speaking_seconds(&script, wpm)
    );
    (script, prompt)
}

/// [`native_plan`] rendering through the host's template sandbox, one session per run as a
/// plugin's renders are (handed on to the source's next run, as a plugin's is).
async fn sandboxed_plan(content: &Content, templates: &TemplateSet) -> (String, String) {
    let mut session = vidhook::templates::engine::Session::for_source(&content.source);
    native_plan(content, async |name: &str, context: &serde_json::Value| {
        let deadline = Instant::now() + Duration::from_secs(5);
        let context = context.to_string();
        templates
            .render(&mut session, name, &context, deadline)
            .await
            .unwrap()
    })
    .await
}

/// Where the wasm runs' time went, from their usage (means, so the parts add up to the whole).
#[derive(Default)]
struct Phases {
    runs: u32,
    start: Duration,
    renders: Duration,
    call: Duration,
    whole: Duration,
}

impl Phases {
    fn add(&mut self, usage: &vidhook::plugins::Usage, whole: Duration) {
        let ms = |ms: f64| Duration::from_secs_f64(ms / 1000.0);
        self.runs += 1;
        self.start += ms(usage.start_ms);
        self.renders += ms(usage.render_ms);
        self.call += ms(usage.wall_ms);
        self.whole += whole;
    }

    fn report(&self) {
        let mean = |d: Duration| us(d / self.runs);
        println!(
            "  wasm, where the time goes (means): {:.1} µs starting (store, WASI context, the content record, instantiate), \
             {:.1} µs the plugin's code and host calls, {:.1} µs its 3 template renders, \
             {:.1} µs ending (results read, store and instance dropped); {:.1} µs in all",
            mean(self.start),
            mean(self.call.saturating_sub(self.start + self.renders)),
            mean(self.renders),
            mean(self.whole.saturating_sub(self.call)),
            mean(self.whole)
        );
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(samples, 0.50), percentile(samples, 0.99));
    println!(
        "{name:<34} p50 {:>9.1} µs   p99 {:>9.1} µs   (n = {})",
        us(p50),
        us(p99),
        samples.len()
    );
    (p50, p99)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let iterations = numbers.first().copied().unwrap_or(3000);
    let per_language = numbers.get(1).copied().unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(
            &format!("sqlite://{}?mode=rwc", dir.path().join("b.db").display()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        vidhook::templates::seed_defaults(&store).await.unwrap();
        let templates = Arc::new(TemplateSet::load(&store).await.unwrap());
        let host = PluginHost::new(
            store.clone(),
            dir.path().join("plugins"),
            Policy {
                max: Default::default(),
                ..Policy::default()
            },
        )
        .await
        .unwrap();
        let presenter = host.resolve("presenter").await.unwrap();
        let content = article();
        let config = BTreeMap::new();
        let native = native_templates();
        let native_render =
            async |name: &str, context: &serde_json::Value| native.render(name, context).unwrap();

        // All three produce the same script (so the comparison is of the same work).
        let run = host
            .plan(&presenter, &content, &[], templates.clone(), &config)
            .await
            .unwrap();
        let Decision::Generate(plans) = run.decision else {
            panic!("presenter skipped")
        };
        assert_eq!(
            plans[0].script,
            native_plan(&content, native_render).await.0,
            "same logic, same output"
        );
        assert_eq!(
            plans[0].script,
            sandboxed_plan(&content, &templates).await.0
        );

        for _ in 0..200 {
            host.plan(&presenter, &content, &[], templates.clone(), &config)
                .await
                .unwrap();
            std::hint::black_box(native_plan(&content, native_render).await);
            std::hint::black_box(sandboxed_plan(&content, &templates).await);
        }
        // Interleaved, so all see the same machine state: the plugin in wasm, its logic native
        // with native Handlebars, its logic native rendering in the template sandbox.
        let measure = |content: Content| {
            let (host, presenter, templates, config) = (&host, &presenter, &templates, &config);
            async move {
                let mut series = [(); 3].map(|_| Vec::with_capacity(iterations));
                let mut phases = Phases::default();
                for _ in 0..iterations {
                    let started = Instant::now();
                    let run = host.plan(presenter, &content, &[], templates.clone(), config);
                    let run = std::hint::black_box(run.await.unwrap());
                    let elapsed = started.elapsed();
                    series[0].push(elapsed);
                    phases.add(&run.usage, elapsed);
                    let started = Instant::now();
                    std::hint::black_box(native_plan(&content, native_render).await);
                    series[1].push(started.elapsed());
                    let started = Instant::now();
                    std::hint::black_box(sandboxed_plan(&content, templates).await);
                    series[2].push(started.elapsed());
                }
                (series, phases)
            }
        };
        let ([mut wasm, mut native, mut sandboxed], phases) = measure(content.clone()).await;
        // The fixed cost per run: the same on a one-sentence article.
        let ([mut wasm_tiny, mut native_tiny, mut sandboxed_tiny], phases_tiny) =
            measure(tiny_article(&content)).await;
        let lines = [
            "wasm: instantiate + call + drop",
            "native Rust, native Handlebars",
            "native Rust, the template sandbox",
        ];
        println!("one-sentence article");
        report(lines[0], &mut wasm_tiny);
        report(lines[1], &mut native_tiny);
        report(lines[2], &mut sandboxed_tiny);
        phases_tiny.report();
        println!(
            "presenter plugin on a ~2,000-word article ({} words of script)",
            plans[0].script.split_whitespace().count()
        );
        let wasm = report(lines[0], &mut wasm);
        let native = report(lines[1], &mut native);
        let sandboxed = report(lines[2], &mut sandboxed);
        phases.report();
        let ratio = |(a50, a99): (Duration, Duration), (b50, b99): (Duration, Duration)| {
            format!(
                "overhead p50 {:.1} µs, p99 {:.1} µs; ratio p50 {:.2}x, p99 {:.2}x",
                us(a50) - us(b50),
                us(a99) - us(b99),
                us(a50) / us(b50),
                us(a99) / us(b99)
            )
        };
        println!("wasm against native Handlebars: {}", ratio(wasm, native));
        // Both sides pay for the same three sandboxed renders here, so the overhead is what
        // running the plugin as wasm adds, and the ratio is diluted by the renders' share.
        println!(
            "wasm against the same logic rendering in the template sandbox: {}",
            ratio(wasm, sandboxed)
        );
        languages(
            &store,
            &templates,
            [&tiny_article(&content), &content],
            per_language,
        )
        .await;
    });
}

fn tiny_article(content: &Content) -> Content {
    let mut tiny = content.clone();
    tiny.body_text = "One sentence only.".into();
    tiny
}

/// The presenter in each language: (name, component bytes, manifest).
fn presenters() -> Vec<(&'static str, Vec<u8>, Manifest)> {
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let manifest = |dir: &str| {
        Manifest::parse(
            &std::fs::read_to_string(plugins.join(dir).join("vidhook-plugin.toml")).unwrap(),
        )
        .unwrap()
    };
    // With a custom section appended (ignored by the engine): another digest than the bundled
    // presenter's, which the host compiled when it started, so its first compile is measured.
    let mut rust =
        std::fs::read(Path::new(env!("VIDHOOK_TEST_WASM_DIR")).join("presenter.wasm")).unwrap();
    rust.extend_from_slice(&[0x00, 14, 13]);
    rust.extend_from_slice(b"vidhook-bench");
    let mut out = vec![("Rust", rust, manifest("presenter"))];
    for (language, dir) in [("TypeScript", "presenter-ts"), ("Python", "presenter-py")] {
        let built = std::process::Command::new(env!("CARGO_BIN_EXE_vidhook"))
            .args(["plugin", "build"])
            .arg(plugins.join(dir))
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let manifest = manifest(dir);
        let wasm = plugins
            .join(dir)
            .join("dist")
            .join(format!("{}.wasm", manifest.name));
        out.push((language, std::fs::read(wasm).unwrap(), manifest));
    }
    out
}

/// One row per language, as a Markdown table.
async fn languages(store: &Store, templates: &Arc<TemplateSet>, articles: [&Content; 2], n: usize) {
    println!("\nthe presenter in three languages ({n} runs per article after 20 warm-up)\n");
    println!("| presenter | component | first compile | cached load after a restart | one sentence p50 / p99 | 2,000 words p50 / p99 | peak memory |");
    println!("|---|---|---|---|---|---|---|");
    let config = BTreeMap::new();
    for (language, bytes, manifest) in presenters() {
        // A fresh data folder: the first load compiles; a new host on it (a restart) loads.
        let data = tempfile::tempdir().unwrap();
        let policy = || Policy {
            max: Default::default(),
            ..Policy::default()
        };
        let first = PluginHost::new(store.clone(), data.path().to_path_buf(), policy())
            .await
            .unwrap();
        let started = Instant::now();
        first
            .load_uninstalled(&bytes, manifest.clone())
            .await
            .unwrap();
        let compile = started.elapsed();
        let host = PluginHost::new(store.clone(), data.path().to_path_buf(), policy())
            .await
            .unwrap();
        let started = Instant::now();
        let plugin = host.load_uninstalled(&bytes, manifest).await.unwrap();
        let cached = started.elapsed();
        let mut peak = 0;
        let mut cells = Vec::new();
        for content in articles {
            let mut samples = Vec::with_capacity(n);
            for i in 0..n + 20 {
                let started = Instant::now();
                let run = host
                    .plan(&plugin, content, &[], templates.clone(), &config)
                    .await
                    .unwrap();
                if i >= 20 {
                    samples.push(started.elapsed());
                }
                peak = peak.max(run.usage.peak_memory_bytes);
            }
            samples.sort();
            cells.push(format!(
                "{:.2} / {:.2} ms",
                us(percentile(&samples, 0.50)) / 1000.0,
                us(percentile(&samples, 0.99)) / 1000.0
            ));
        }
        println!(
            "| {language} | {:.1} MB | {:.0} ms | {:.1} ms | {} | {} | {:.1} MiB |",
            bytes.len() as f64 / 1e6,
            compile.as_secs_f64() * 1000.0,
            cached.as_secs_f64() * 1000.0,
            cells[0],
            cells[1],
            peak as f64 / (1 << 20) as f64
        );
    }
}
