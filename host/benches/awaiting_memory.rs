//! Memory with a deep queue: 100,000 renders waiting on the provider (no webhooks, so every one
//! is on the polling fallback, which the provider rate limit throttles), held by one
//! `vidhook serve` process, against the same process over an empty queue, in the same run.
//! Reported: peak resident memory (VmHWM) of each, and the polls made while measured.
//!
//! `cargo bench -p vidhook --bench awaiting_memory [-- SECONDS]` (default 30 s per process).
//! SQLite (the embedded default). The provider is a loopback stand-in answering every
//! `GET /jobs/{id}` with `processing`, as the real API does for a long job.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Json;
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};

const RENDERS: usize = 100_000;

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(30);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let polls = Arc::new(AtomicU64::new(0));
        let provider = provider(polls.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let measure = Duration::from_secs(seconds);

        let empty = dir.path().join("empty");
        seed(&empty, 0).await;
        let (idle_kib, _) = run(&empty, &provider, measure, &polls).await;
        println!("empty queue:               peak RSS {:>6.1} MiB", mib(idle_kib));

        let deep = dir.path().join("deep");
        let seeding = Instant::now();
        seed(&deep, RENDERS).await;
        println!(
            "seeded {RENDERS} renders awaiting the provider in {:.1?}",
            seeding.elapsed()
        );
        let (deep_kib, polled) = run(&deep, &provider, measure, &polls).await;
        println!(
            "{RENDERS} renders awaiting: peak RSS {:>6.1} MiB ({:.2}× the empty queue; {polled} polls \
             in {seconds} s at the configured 600 requests/min)",
            mib(deep_kib),
            deep_kib as f64 / idle_kib as f64
        );
    });
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The provider's status endpoint: every job is still `processing`.
async fn provider(polls: Arc<AtomicU64>) -> String {
    let router = axum::Router::new().route(
        "/v1/jobs/{id}",
        get(
            move |axum::extract::Path(id): axum::extract::Path<String>| {
                polls.fetch_add(1, Ordering::Relaxed);
                async move { Json(serde_json::json!({"job_id": id, "status": "processing"})) }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/v1")
}

/// A data folder whose database holds `renders` renders in `await` with a provider job each.
async fn seed(dir: &Path, renders: usize) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let url = format!("sqlite://{}?mode=rwc", data.join("vidhook.db").display());
    // Creates the schema (migrations), as the server would.
    drop(
        vidhook::store::Store::connect(&url, Duration::from_secs(10))
            .await
            .unwrap(),
    );
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let now = vidhook::store::now_ms();
    let mut tx = db.begin().await.unwrap();
    for n in 0..renders {
        let content = serde_json::json!({
            "source": "blog", "cms": "standard-webhooks", "id": format!("post-{n}"),
            "revision": "1", "kind": "article", "locale": "en-US", "title": format!("Note {n}"),
            "body_html": "", "body_text": "Prices moved today.", "url": null, "image": null,
            "fields": {}
        });
        sqlx::query(
            "INSERT INTO events (id, source, delivery_id, entry_id, locale, fingerprint, content_json, received_at)
             VALUES ($1, 'blog', $2, $3, 'en-US', $4, $5, $6)",
        )
        .bind(format!("evt-{n}"))
        .bind(format!("msg-{n}"))
        .bind(format!("post-{n}"))
        .bind(format!("fp-{n}"))
        .bind(content.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO renders (id, event_id, plan_key, state, run_after, provider_job_id,
                                  submitted_at, created_at, updated_at)
             VALUES ($1, $2, 'main', 'await', $3, $4, $3, $3, $3)",
        )
        .bind(format!("render-{n}"))
        .bind(format!("evt-{n}"))
        .bind(now)
        .bind(format!("job_{n}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// Runs `vidhook serve` on `dir` for `measure`; returns its peak RSS (KiB) and the polls it made.
async fn run(dir: &Path, provider: &str, measure: Duration, polls: &AtomicU64) -> (u64, u64) {
    let config = dir.join("vidhook.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{data}"
workers = 4

[provider]
kind = "omnihuman"
base_url = "{provider}"
api_key = "bench-key"
webhooks = false
poll_interval_secs = 60
max_wait_secs = 86400
requests_per_minute = 600

[sources.blog]
cms = "standard-webhooks"
secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
"#,
            data = dir.join("data").display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vidhook"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.starts_with("vidhook listening on") {
            break;
        }
    }
    let before = polls.load(Ordering::Relaxed);
    tokio::time::sleep(measure).await;
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id().unwrap())).unwrap();
    let peak = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    let polled = polls.load(Ordering::Relaxed) - before;
    child.kill().await.unwrap();
    (peak, polled)
}
