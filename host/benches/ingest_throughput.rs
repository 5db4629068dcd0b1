//! Webhook ingestion throughput: a signed Standard Webhooks publish → verified → parsed →
//! committed (event + render, one transaction) → 202, at 64 concurrent connections, on SQLite and
//! on PostgreSQL, against a bare axum handler that answers 202 without doing anything, all in the
//! same run and driven by the same client code (each request signed with a fresh id, so every one
//! is new work). Reported: requests/s and p50/p99 latency, and each as a ratio of the bare handler.
//!
//! `cargo bench -p vidhook --bench ingest_throughput [-- SECONDS]` (default 10 s per run, after a
//! 2 s warm-up). PostgreSQL is `VIDHOOK_TEST_POSTGRES` or 127.0.0.1:5432; skipped (and said so)
//! when it does not answer. The router under test is vidhook's own (`ingress::router`), without
//! workers, so the figure is ingestion alone; the load generator shares the machine's cores.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use sqlx::Connection;
use vidhook::app::App;
use vidhook::cms::standard_webhooks::Secret;
use vidhook::config::Config;

const CONNECTIONS: usize = 64;
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

struct Run {
    requests_per_sec: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let measure = Duration::from_secs(seconds);
        let dir = tempfile::tempdir().unwrap();
        println!("ingest throughput: {CONNECTIONS} connections, {seconds} s per run");

        let bare = serve(axum::Router::new().route(
            "/hooks/{source}",
            axum::routing::post(|| async { StatusCode::ACCEPTED }),
        ))
        .await;
        let baseline_before = load(&bare, measure).await;
        report("bare axum 202", &baseline_before, None);

        let sqlite = vidhook_router(&dir.path().join("sqlite"), None).await;
        let sqlite_run = load(&sqlite, measure).await;

        let server = std::env::var("VIDHOOK_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let postgres_run = match fresh_postgres(&server).await {
            Some(database) => {
                let url = vidhook_router(&dir.path().join("pg"), Some(&database)).await;
                Some(load(&url, measure).await)
            }
            None => None,
        };
        let baseline_after = load(&bare, measure).await;
        report("bare axum 202 (again)", &baseline_after, None);
        // The baseline is the mean of the runs before and after, so drift shows in neither ratio.
        let baseline = Run {
            requests_per_sec: (baseline_before.requests_per_sec + baseline_after.requests_per_sec)
                / 2.0,
            p50: (baseline_before.p50 + baseline_after.p50) / 2,
            p99: (baseline_before.p99 + baseline_after.p99) / 2,
            errors: 0,
        };
        report("vidhook SQLite", &sqlite_run, Some(&baseline));
        match &postgres_run {
            Some(run) => report("vidhook PostgreSQL", run, Some(&baseline)),
            None => println!("vidhook PostgreSQL: skipped, no server at {server}"),
        }
    });
}

fn report(name: &str, run: &Run, baseline: Option<&Run>) {
    let ratio = baseline.map_or(String::new(), |b| {
        format!(
            "  = {:.1} % of the bare handler's throughput (p50 {:.1}×, p99 {:.1}×)",
            100.0 * run.requests_per_sec / b.requests_per_sec,
            run.p50.as_secs_f64() / b.p50.as_secs_f64(),
            run.p99.as_secs_f64() / b.p99.as_secs_f64()
        )
    });
    println!(
        "{name:<24} {:>8.0} req/s  p50 {:>7.2?}  p99 {:>7.2?}  errors {}{ratio}",
        run.requests_per_sec, run.p50, run.p99, run.errors
    );
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// vidhook's HTTP surface over a fresh database, with a Standard Webhooks source `blog`.
async fn vidhook_router(dir: &std::path::Path, database: Option<&str>) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let database = database.map_or(String::new(), |url| format!("database_url = \"{url}\"\n"));
    let config_path = dir.join("vidhook.toml");
    std::fs::write(
        &config_path,
        format!(
            "{database}data_dir = \"{data}\"\n\n[sources.blog]\ncms = \"standard-webhooks\"\n\
             secret = \"{SECRET}\"\npresenter_image = \"{image}\"\n\n\
             # The benchmark measures ingestion, not the per-source rate limit.\n\
             [listener]\ndeliveries_per_source_per_second = 0\n",
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

async fn fresh_postgres(server: &str) -> Option<String> {
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .ok()?;
    let name = format!("vidhook_bench_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut admin)
        .await
        .ok()?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .ok()?;
    Some(format!("{server}/{name}"))
}

/// 64 connections, each sending signed publish events back to back: a warm-up, then `measure`.
async fn load(base: &str, measure: Duration) -> Run {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let secret = Arc::new(Secret::parse(SECRET).unwrap());
    let url = Arc::new(format!("{base}/hooks/blog"));
    let warm_up = Duration::from_secs(2);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let (secret, url) = (secret.clone(), url.clone());
        tasks.spawn(async move {
            // One client per task: one keep-alive connection each.
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while started.elapsed() < warm_up + measure {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let id = format!("msg_bench_{n}");
                let body = format!(
                    r#"{{"type":"content.published","timestamp":"2026-11-25T10:00:00Z","data":{{"id":"post-{n}","title":"Note {n}","body_html":"<p>Prices moved today, note {n}.</p>","locale":"en-US","revision":1}}}}"#
                );
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs() as i64;
                let sent = Instant::now();
                let answer = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", secret.sign(&id, ts, body.as_bytes()))
                    .body(body)
                    .send()
                    .await;
                let ok = answer.is_ok_and(|r| r.status() == StatusCode::ACCEPTED);
                if started.elapsed() > warm_up {
                    if ok {
                        latencies.push(sent.elapsed());
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (mut l, e) = done.unwrap();
        latencies.append(&mut l);
        errors += e;
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    Run {
        requests_per_sec: latencies.len() as f64 / measure.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        errors,
    }
}
