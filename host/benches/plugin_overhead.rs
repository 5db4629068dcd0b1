//! What running a plugin in the sandbox costs: the default presenter plugin (fresh store,
//! instantiate from `InstancePre` with the pooling allocator, call, drop) against the same logic
//! compiled as native Rust, on the same long article, in the same run.
//!
//! `cargo bench -p vidhook --bench plugin_overhead` (optional argument: iterations, default 3000).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use vidhook::content::Content;
use vidhook::plugins::{Decision, PluginHost, Policy};
use vidhook::store::Store;
use vidhook::templates::TemplateSet;
use vidhook_plugin_sdk::text::{fit_to_seconds, speaking_seconds};

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

/// The presenter plugin's logic, natively: the same SDK functions and the same templates.
fn native_plan(content: &Content, templates: &handlebars::Handlebars) -> (String, String) {
    let wpm = 175.0;
    let budget = 60.0 * 0.85;
    let mut context = json!({"title": content.title, "body": "", "locale": content.locale,
        "kind": content.kind, "url": content.url, "source": content.source});
    let frame = templates.render("script", &context).unwrap();
    context["body"] = json!(fit_to_seconds(
        &content.body_text,
        budget - speaking_seconds(&frame, wpm),
        wpm
    ));
    let script = templates.render("script", &context).unwrap();
    let prompt = templates.render("prompt", &context).unwrap();
    let _log = format!(
        "script: {} words, ~{:.1} s",
        script.split_whitespace().count(),
        speaking_seconds(&script, wpm)
    );
    (script, prompt)
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
    let iterations: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3000);
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

        // Both produce the same script (so the comparison is of the same work).
        let run = host
            .plan(&presenter, &content, &[], templates.clone(), &config)
            .await
            .unwrap();
        let Decision::Generate(plans) = run.decision else {
            panic!("presenter skipped")
        };
        assert_eq!(
            plans[0].script,
            native_plan(&content, &native).0,
            "same logic, same output"
        );

        for _ in 0..200 {
            host.plan(&presenter, &content, &[], templates.clone(), &config)
                .await
                .unwrap();
            std::hint::black_box(native_plan(&content, &native));
        }
        // Interleaved, so both see the same machine state: (wasm, native) samples.
        let measure = |content: Content| {
            let (host, presenter, templates, config) = (&host, &presenter, &templates, &config);
            let native_templates = &native;
            async move {
                let mut wasm = Vec::with_capacity(iterations);
                let mut native = Vec::with_capacity(iterations);
                for _ in 0..iterations {
                    let started = Instant::now();
                    let run = host.plan(presenter, &content, &[], templates.clone(), config);
                    std::hint::black_box(run.await.unwrap());
                    wasm.push(started.elapsed());
                    let started = Instant::now();
                    std::hint::black_box(native_plan(&content, native_templates));
                    native.push(started.elapsed());
                }
                (wasm, native)
            }
        };
        let (mut wasm, mut native) = measure(content.clone()).await;
        // The fixed cost per run: the same on a one-sentence article.
        let mut tiny = content.clone();
        tiny.body_text = "One sentence only.".into();
        let (mut wasm_tiny, mut native_tiny) = measure(tiny).await;
        println!("one-sentence article");
        report("wasm: instantiate + call + drop", &mut wasm_tiny);
        report("native Rust, same logic", &mut native_tiny);
        println!(
            "presenter plugin on a ~2,000-word article ({} words of script)",
            plans[0].script.split_whitespace().count()
        );
        let (wasm_p50, wasm_p99) = report("wasm: instantiate + call + drop", &mut wasm);
        let (native_p50, native_p99) = report("native Rust, same logic", &mut native);
        println!(
            "overhead p50 {:.1} µs, p99 {:.1} µs; ratio wasm/native p50 {:.2}x, p99 {:.2}x",
            us(wasm_p50) - us(native_p50),
            us(wasm_p99) - us(native_p99),
            us(wasm_p50) / us(native_p50),
            us(wasm_p99) / us(native_p99)
        );
    });
}
