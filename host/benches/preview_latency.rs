//! Preview latency as an editor types: `POST /api/v1/preview` (the draft compiled with the other
//! templates, the source's real plugin chain run in its sandbox over the content, the duration
//! estimated), over loopback HTTP with a bearer token, for 1,000 successive edits of a realistic
//! script template; against rendering the same drafts with handlebars directly (compile + render
//! with the context the presenter builds), in the same run. Reported: p50 and p99 of each, and
//! their ratio. Target: p99 < 20 ms end to end.
//!
//! `cargo bench -p vidhook --bench preview_latency [-- EDITS]` (default 1,000, after 50 warm-up
//! edits). No workers run: the figure is the preview alone.

use std::time::{Duration, Instant};

use serde_json::json;
use vidhook::app::App;
use vidhook::config::Config;

const TOKEN: &str = "bench-admin-token-0123456789";

/// A script template of the kind editors write: a greeting, conditionals on fields, the body.
const TEMPLATE: &str =
    "{{#if fields.series}}From our series {{fields.series}}: {{/if}}{{title}}.\n\n\
{{body}}\n\n{{#if fields.author}}Written by {{fields.author}}.{{else}}From the newsroom.{{/if}} \
Thanks for watching. ";

/// What the editor types at the end of the template, one character per edit.
const TYPED: &str =
    "Find the full story and more on our website, and subscribe so you never miss an episode. ";

fn article() -> serde_json::Value {
    let paragraph =
        "The city council approved the new cycling plan on Tuesday evening after a long \
        debate. The plan adds forty kilometres of protected lanes over three years, starting with \
        the routes to the central station and the university. Shop owners on the main street had \
        asked for more delivery zones, and the final plan includes twelve of them. ";
    json!({
        "title": "Council approves the cycling plan",
        "body": paragraph.repeat(5),
        "locale": "en",
        "fields": {"series": "City Desk", "author": "Ana Ruiz"},
    })
}

fn draft(edit: usize) -> String {
    let typed: String = TYPED.chars().take(edit % (TYPED.len() + 1)).collect();
    format!("{TEMPLATE}{typed}")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let edits: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = serve(dir.path()).await;
        let client = reqwest::Client::new();
        let content = article();
        let preview = |edit: usize| {
            let request = client
                .post(format!("{url}/api/v1/preview"))
                .bearer_auth(TOKEN)
                .json(&json!({"source": "blog", "template": "script", "body": draft(edit), "content": content}));
            async move {
                let started = Instant::now();
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
                let shown: serde_json::Value = response.json().await.unwrap();
                assert!(shown["videos"][0]["estimated_seconds"].as_f64().unwrap() > 10.0);
                started.elapsed()
            }
        };
        for edit in 0..50 {
            preview(edit).await;
        }
        let mut api = Vec::with_capacity(edits);
        for edit in 0..edits {
            api.push(preview(edit).await);
        }
        let mut direct = Vec::with_capacity(edits);
        for edit in 0..edits {
            direct.push(render_directly(&draft(edit), &content));
        }
        api.sort();
        direct.sort();
        println!("preview latency: {edits} edits of a {}-character script template", TEMPLATE.len());
        for (label, samples) in [("handlebars directly", &direct), ("POST /api/v1/preview", &api)] {
            println!(
                "{label:>22}: p50 {:>8.3} ms, p99 {:>8.3} ms",
                percentile(samples, 0.50).as_secs_f64() * 1e3,
                percentile(samples, 0.99).as_secs_f64() * 1e3
            );
        }
        let p99 = percentile(&api, 0.99);
        println!(
            "ratio (preview / handlebars): p50 {:.1}x, p99 {:.1}x; target p99 < 20 ms: {}",
            percentile(&api, 0.50).as_secs_f64() / percentile(&direct, 0.50).as_secs_f64(),
            p99.as_secs_f64() / percentile(&direct, 0.99).as_secs_f64(),
            if p99 < Duration::from_millis(20) { "met" } else { "missed" }
        );
    });
}

/// The baseline: the draft compiled and rendered in strict mode with the presenter's context.
fn render_directly(template: &str, content: &serde_json::Value) -> Duration {
    let started = Instant::now();
    let mut registry = handlebars::Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(handlebars::no_escape);
    registry
        .register_template_string("script", template)
        .unwrap();
    let context = json!({
        "title": content["title"], "body": content["body"], "locale": "en", "kind": "post",
        "url": null, "source": "blog", "fields": content["fields"],
    });
    let script = registry.render("script", &context).unwrap();
    assert!(script.split_whitespace().count() > 50);
    started.elapsed()
}

/// vidhook's HTTP surface over a fresh SQLite database, with a Standard Webhooks source `blog`.
async fn serve(dir: &std::path::Path) -> String {
    let config_path = dir.join("vidhook.toml");
    std::fs::write(
        &config_path,
        format!(
            "data_dir = \"{data}\"\n\n[plugins]\nadmin_token = \"{TOKEN}\"\n\n[sources.blog]\n\
             cms = \"standard-webhooks\"\nsecret = \"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"\n\
             presenter_image = \"{image}\"\n",
            data = dir.join("data").display(),
            image = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../examples/content/presenter.png"
            ),
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = App::build(config, url.clone()).await.unwrap();
    let router = vidhook::ingress::router(app);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}
