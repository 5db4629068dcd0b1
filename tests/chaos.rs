//! The chaos run (issue #5): does every event that got a 2xx end in a video written back, or in
//! a visible, categorised failure, when the processes doing the work keep dying?
//!
//! Three `vidhook serve` processes share one PostgreSQL database and one media folder behind a
//! loopback load balancer (the `public_url` every process advertises). A loopback CMS sends
//! publish events (10 % of them delivered twice) and retries whatever is not acknowledged; the
//! loopback provider answers 429s and 500s, bills then answers 502, and bills then drops the
//! connection; every few seconds a random process is killed with SIGKILL and restarted. Then the
//! run waits for the queue to settle and prints what happened, from the database, the provider's
//! ledger and the CMS's records.
//!
//! Not part of `cargo test` (it takes minutes); scripts/test.sh runs it on PostgreSQL:
//!
//! ```text
//! cargo test -p vidhook --test chaos -- --seed 7 --events 1000
//! ```
//!
//! Options: `--seed N` (kill schedule, redeliveries and provider faults; default 1), `--events N`
//! (default 1000), `--timeout-secs N` (bound on the whole run; default 900). The database server
//! is `VIDHOOK_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`). Exit code 0 only
//! if lost = 0, every render was paid for at most once (done ones exactly once) and no entry got
//! two different write-backs.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rand::{Rng, SeedableRng};
use sqlx::{Connection, Row};
use support::cms::Cms;
use support::seedance::{RandomFaults, Seedance};
use support::{free_port, now_secs, presenter_png, published, SECRET};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const PROCESSES: usize = 3;
/// States a render rests in: the run is over when every render is in one of them.
const SETTLED: &[&str] = &[
    "done",
    "failed",
    "skipped",
    "needs_attention",
    "dry_run",
    "awaiting_approval",
];

struct Args {
    seed: u64,
    events: usize,
    timeout: Duration,
}

fn parse_args() -> Args {
    let mut args = Args {
        seed: 1,
        events: 1000,
        timeout: Duration::from_secs(900),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let mut value = || -> u64 {
            given
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--seed" => args.seed = value(),
            "--events" => args.events = value() as usize,
            "--timeout-secs" => args.timeout = Duration::from_secs(value()),
            // What cargo's test runner passes along; this run has no filters.
            _ => {}
        }
    }
    args
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> ExitCode {
    let args = parse_args();
    quiet_dropped_connections();
    let started = Instant::now();
    let server = std::env::var("VIDHOOK_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let database = fresh_database(&server, args.seed).await;
    let dir = tempfile::tempdir().unwrap();
    println!(
        "chaos: seed {}, {} events, {PROCESSES} processes, database {database}, logs in {}",
        args.seed,
        args.events,
        dir.path().display()
    );

    let seedance = Seedance::start(false).await;
    seedance.random_faults(RandomFaults {
        rng: rand::rngs::StdRng::seed_from_u64(args.seed ^ 0x5eed),
        rate_limited: 0.10,
        server_error: 0.05,
        accept_then_drop: 0.03,
        bill_then_502: 0.03,
    });
    let cms = Cms::start().await;
    let ports: Vec<u16> = (0..PROCESSES).map(|_| free_port()).collect();
    let balancer = Balancer::start(&ports).await;
    let configs: Vec<_> = ports
        .iter()
        .enumerate()
        .map(|(n, port)| {
            let path = dir.path().join(format!("vidhook-{n}.toml"));
            std::fs::write(
                &path,
                config(&database, dir.path(), *port, &balancer, &seedance, &cms),
            )
            .unwrap();
            path
        })
        .collect();
    let mut processes = Vec::new();
    for (n, config) in configs.iter().enumerate() {
        processes.push(Some(
            spawn(config, &dir.path().join(format!("vidhook-{n}.log"))).await,
        ));
    }
    let processes = Arc::new(tokio::sync::Mutex::new(processes));

    // The killer: SIGKILL a random process every 2–5 s, restart it 0.3–1.5 s later.
    let stop_killing = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = tokio::spawn({
        let (processes, stop, kills) = (processes.clone(), stop_killing.clone(), kills.clone());
        let (configs, logs) = (configs.clone(), dir.path().to_path_buf());
        let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
        async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(rng.gen_range(2000..5000))).await;
                let n = rng.gen_range(0..PROCESSES);
                if let Some(mut child) = processes.lock().await[n].take() {
                    let _ = child.kill().await;
                    kills.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1500))).await;
                let log = logs.join(format!("vidhook-{n}.log"));
                processes.lock().await[n] = Some(spawn(&configs[n], &log).await);
            }
        }
    });

    let sent = send_events(&balancer, args.events, args.seed).await;
    println!(
        "chaos: events sent in {:.0?}; {} kills so far; waiting for the queue to settle",
        started.elapsed(),
        kills.load(Ordering::SeqCst)
    );
    // Keep killing for a while as the queue drains, then let it finish in peace.
    tokio::time::sleep(Duration::from_secs(20)).await;
    stop_killing.store(true, Ordering::SeqCst);
    killer.await.unwrap();

    let mut db = sqlx::PgConnection::connect(&database).await.unwrap();
    let settled = loop {
        let open: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM renders WHERE state NOT IN ({})",
            SETTLED
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .fetch_one(&mut db)
        .await
        .unwrap()
        .get("n");
        if open == 0 {
            break true;
        }
        if started.elapsed() > args.timeout {
            break false;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    // Provider webhooks for the last jobs may still be on their way.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = Report::gather(
        &mut db,
        &sent,
        &seedance,
        &cms,
        kills.load(Ordering::SeqCst),
    )
    .await;
    for child in processes.lock().await.iter_mut().flatten() {
        let _ = child.kill().await;
    }
    report.print(settled, started.elapsed());
    drop(db);
    drop_database(&server, &database).await;
    if settled && report.ok() {
        ExitCode::SUCCESS
    } else {
        println!("chaos: FAILED (logs kept in {})", dir.keep().display());
        ExitCode::FAILURE
    }
}

/// The contract provider drops a connection by panicking in its handler; hundreds of those would
/// bury the report, so they are not printed (other panics are).
fn quiet_dropped_connections() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or_default();
        if !message.starts_with("contract server: dropping the connection") {
            default(info);
        }
    }));
}

fn config(
    database: &str,
    dir: &Path,
    port: u16,
    balancer: &Balancer,
    seedance: &Seedance,
    cms: &Cms,
) -> String {
    format!(
        r#"
database_url = "{database}"
listen = "127.0.0.1:{port}"
public_url = "{public}"
data_dir = "{data}"
workers = 4
shutdown_grace_secs = 5

[media]
signing_secret = "chaos-shared-media-key"

[provider]
kind = "omnihuman"
base_url = "{base}"
api_key = "${{SEEDANCE_TEST_KEY}}"
webhooks = true
poll_interval_secs = 3
request_timeout_secs = 10
reconcile_window_secs = 60
requests_per_minute = 6000
max_concurrent = 8

[checks]
allow_plain_http = true

[outbound]
# Loopback test servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]

[retry]
base_delay_ms = 200
max_delay_ms = 3000
max_attempts = 12

[sources.blog]
cms = "standard-webhooks"
secret = "{secret}"
writeback_url = "{cms}"
presenter_image = "{image}"
"#,
        public = balancer.url,
        data = dir.join("data").display(),
        base = seedance.url,
        secret = SECRET,
        cms = cms.url,
        image = presenter_png().display(),
    )
}

async fn fresh_database(server: &str, seed: u64) -> String {
    let name = format!("vidhook_chaos_{seed}_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL reachable (set VIDHOOK_TEST_POSTGRES)");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    format!("{server}/{name}")
}

async fn drop_database(server: &str, database: &str) {
    let name = database.rsplit('/').next().unwrap();
    let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await;
}

/// Starts `vidhook serve`, its logs appended to `log`; returns once it listens.
async fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidhook"))
        .args(["serve", "--config"])
        .arg(config)
        .env("SEEDANCE_TEST_KEY", support::seedance::API_KEY)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("the vidhook binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("vidhook listening on") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(listening, Ok(true)),
        "vidhook did not start: see {config:?}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// A loopback load balancer: each request goes to a live process (tried in turn from a random
/// one), as in front of any deployment of several instances.
struct Balancer {
    url: String,
}

#[derive(Clone)]
struct Backends {
    urls: Arc<Vec<String>>,
    http: reqwest::Client,
}

impl Balancer {
    async fn start(ports: &[u16]) -> Balancer {
        let backends = Backends {
            urls: Arc::new(
                ports
                    .iter()
                    .map(|p| format!("http://127.0.0.1:{p}"))
                    .collect(),
            ),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        };
        let router = axum::Router::new().fallback(forward).with_state(backends);
        Balancer {
            url: support::serve(router).await,
        }
    }
}

async fn forward(State(backends): State<Backends>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let first = rand::thread_rng().gen_range(0..backends.urls.len());
    for n in 0..backends.urls.len() {
        let base = &backends.urls[(first + n) % backends.urls.len()];
        match send(
            &backends.http,
            base,
            &parts.method,
            &parts.uri,
            &parts.headers,
            &body,
        )
        .await
        {
            Ok(response) => return response,
            // Refused: that process is down; try the next one.
            Err(err) if err.is_connect() => continue,
            Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}

async fn send(
    http: &reqwest::Client,
    base: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, reqwest::Error> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = http.request(method.clone(), format!("{base}{path}"));
    for (name, value) in headers {
        if name != "host" {
            request = request.header(name, value);
        }
    }
    let response = request.body(body.clone()).send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await?;
    let mut out = (status, bytes).into_response();
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" {
            out.headers_mut().insert(name, value.clone());
        }
    }
    Ok(out)
}

/// What the CMS saw of its deliveries.
#[derive(Default)]
struct Sent {
    /// Entry ids whose publish event got a 2xx (at least once).
    accepted: HashSet<String>,
    redeliveries: usize,
    answers: BTreeMap<String, usize>,
    /// Entry ids never acknowledged within the retry budget.
    given_up: Vec<String>,
}

/// Sends `events` publish events at about 40 a second (16 at most in flight), so that kills land
/// while events arrive; redelivers 10 % of them later; like a CMS, retries a delivery that is not
/// acknowledged (error or 5xx) with backoff, for up to 2 minutes.
async fn send_events(balancer: &Balancer, events: usize, seed: u64) -> Sent {
    let sent = Arc::new(Mutex::new(Sent::default()));
    let slots = Arc::new(tokio::sync::Semaphore::new(16));
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xc3);
    let mut deliveries: Vec<(usize, bool)> = (0..events).map(|i| (i, false)).collect();
    for i in 0..events {
        if rng.gen_bool(0.10) {
            // Redelivered somewhere later in the stream.
            let at = rng.gen_range(i + 1..=deliveries.len());
            deliveries.insert(at, (i, true));
        }
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    let mut pace = tokio::time::interval(Duration::from_millis(25));
    for (i, redelivery) in deliveries {
        pace.tick().await;
        let slot = slots.clone().acquire_owned().await.unwrap();
        let (client, url, sent) = (client.clone(), balancer.url.clone(), sent.clone());
        tasks.spawn(async move {
            let _slot = slot;
            deliver(&client, &url, i, redelivery, &sent).await;
        });
    }
    while tasks.join_next().await.is_some() {}
    Arc::into_inner(sent).unwrap().into_inner().unwrap()
}

async fn deliver(
    client: &reqwest::Client,
    url: &str,
    i: usize,
    redelivery: bool,
    sent: &Mutex<Sent>,
) {
    let entry = format!("post-{i}");
    let id = format!("evt-{i}");
    let body = published(
        &entry,
        &format!("Market note {i}"),
        &format!("<p>Note {i}: prices moved today. Here is the one thing that changed.</p>"),
    );
    let secret = vidhook::cms::standard_webhooks::Secret::parse(SECRET).unwrap();
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        let ts = now_secs();
        let answer = client
            .post(format!("{url}/hooks/blog"))
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", secret.sign(&id, ts, body.as_bytes()))
            .body(body.clone())
            .send()
            .await;
        let label = match &answer {
            Ok(response) => response.status().as_u16().to_string(),
            Err(_) => "connection error".to_string(),
        };
        let acknowledged = answer.as_ref().is_ok_and(|r| r.status().is_success());
        {
            let mut sent = sent.lock().unwrap();
            *sent.answers.entry(label).or_default() += 1;
            if acknowledged {
                sent.accepted.insert(entry.clone());
                if redelivery {
                    sent.redeliveries += 1;
                }
                return;
            }
            if started.elapsed() > Duration::from_secs(120) {
                sent.given_up.push(entry);
                return;
            }
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt.min(10)))).await;
    }
}

struct Report {
    sent_unique: usize,
    redeliveries: usize,
    answers: BTreeMap<String, usize>,
    given_up: usize,
    accepted: usize,
    kills: usize,
    by_state: BTreeMap<(String, String), i64>,
    /// Why renders that are not done are where they are: (state, error's first words) → count.
    not_done_reasons: BTreeMap<(String, String), usize>,
    /// Accepted entries with no render at all, or one not settled.
    lost: Vec<String>,
    /// Paid jobs per render id (renders with none are not listed).
    paid_per_render: HashMap<String, usize>,
    done_not_paid_once: usize,
    paid_more_than_once: usize,
    /// Entries that received two different write-backs (distinct webhook-ids).
    duplicate_write_backs: usize,
    write_back_redeliveries: usize,
    done_without_write_back: usize,
}

impl Report {
    async fn gather(
        db: &mut sqlx::PgConnection,
        sent: &Sent,
        seedance: &Seedance,
        cms: &Cms,
        kills: usize,
    ) -> Report {
        let rows = sqlx::query(
            "SELECT r.id, r.state, COALESCE(r.error_category, '') AS category, e.entry_id,
                    COALESCE(r.error, '') AS error
             FROM renders r JOIN events e ON e.id = r.event_id",
        )
        .fetch_all(&mut *db)
        .await
        .unwrap();
        let mut by_state = BTreeMap::new();
        let mut settled_entries = HashSet::new();
        let mut done = Vec::new();
        let mut not_done_reasons = BTreeMap::new();
        for row in &rows {
            let (id, state, category, entry): (String, String, String, String) = (
                row.get("id"),
                row.get("state"),
                row.get("category"),
                row.get("entry_id"),
            );
            if state != "done" {
                let error: String = row.get("error");
                // The reason without the render's own details (ids in parentheses).
                let gist: String = error
                    .split('(')
                    .next()
                    .unwrap_or("")
                    .chars()
                    .take(90)
                    .collect();
                *not_done_reasons.entry((state.clone(), gist)).or_default() += 1;
            }
            *by_state.entry((state.clone(), category)).or_default() += 1;
            if SETTLED.contains(&state.as_str()) {
                settled_entries.insert(entry.clone());
            }
            if state == "done" {
                done.push((id, entry));
            }
        }
        let mut lost: Vec<String> = sent
            .accepted
            .iter()
            .filter(|entry| !settled_entries.contains(*entry))
            .cloned()
            .collect();
        lost.sort();

        let mut paid_per_render: HashMap<String, usize> = HashMap::new();
        for job in seedance.jobs() {
            let render = job
                .webhook_url
                .as_deref()
                .and_then(|url| url.split('?').next())
                .and_then(|path| path.rsplit('/').next())
                .unwrap_or("?")
                .to_string();
            *paid_per_render.entry(render).or_default() += 1;
        }
        let done_not_paid_once = done
            .iter()
            .filter(|(id, _)| paid_per_render.get(id) != Some(&1))
            .count();
        let paid_more_than_once = paid_per_render.values().filter(|n| **n > 1).count();

        let mut write_back_ids: HashMap<String, HashSet<String>> = HashMap::new();
        let deliveries = cms.deliveries();
        for (id, body) in &deliveries {
            let entry = body["data"]["id"].as_str().unwrap_or("?").to_string();
            write_back_ids.entry(entry).or_default().insert(id.clone());
        }
        let distinct: usize = write_back_ids.values().map(HashSet::len).sum();
        Report {
            sent_unique: sent.accepted.len() + sent.given_up.len(),
            redeliveries: sent.redeliveries,
            answers: sent.answers.clone(),
            given_up: sent.given_up.len(),
            accepted: sent.accepted.len(),
            kills,
            by_state,
            not_done_reasons,
            lost,
            done_not_paid_once,
            paid_more_than_once,
            duplicate_write_backs: write_back_ids.values().map(|ids| ids.len() - 1).sum(),
            write_back_redeliveries: deliveries.len() - distinct,
            done_without_write_back: done
                .iter()
                .filter(|(_, entry)| !write_back_ids.contains_key(entry))
                .count(),
            paid_per_render,
        }
    }

    fn ok(&self) -> bool {
        self.lost.is_empty()
            && self.given_up == 0
            && self.done_not_paid_once == 0
            && self.paid_more_than_once == 0
            && self.duplicate_write_backs == 0
            && self.done_without_write_back == 0
    }

    fn print(&self, settled: bool, elapsed: Duration) {
        println!("== chaos report ({elapsed:.0?}, queue settled: {settled})");
        println!("kills (SIGKILL + restart): {}", self.kills);
        println!(
            "events: {} unique sent, {} redelivered, answers {:?}, given up: {}",
            self.sent_unique, self.redeliveries, self.answers, self.given_up
        );
        println!("accepted: {}", self.accepted);
        for ((state, category), n) in &self.by_state {
            let category = if category.is_empty() {
                String::new()
            } else {
                format!(" ({category})")
            };
            println!("  {state}{category}: {n}");
        }
        let done: i64 = self
            .by_state
            .iter()
            .filter(|((s, _), _)| s == "done")
            .map(|(_, n)| n)
            .sum();
        let failed: i64 = self
            .by_state
            .iter()
            .filter(|((s, _), _)| s != "done")
            .map(|(_, n)| n)
            .sum();
        println!("done: {done}; not done (by category above): {failed}");
        for ((state, gist), n) in &self.not_done_reasons {
            println!("  {n} × {state}: {gist}…");
        }
        println!(
            "lost: {} {:?}",
            self.lost.len(),
            self.lost.iter().take(10).collect::<Vec<_>>()
        );
        let mut histogram: BTreeMap<usize, usize> = BTreeMap::new();
        for n in self.paid_per_render.values() {
            *histogram.entry(*n).or_default() += 1;
        }
        println!(
            "paid submissions per render: {histogram:?} (renders by number of paid jobs); \
             done renders not paid exactly once: {}; paid more than once: {}",
            self.done_not_paid_once, self.paid_more_than_once
        );
        println!(
            "duplicate write-backs: {} (same write-back redelivered: {}); done without write-back: {}",
            self.duplicate_write_backs, self.write_back_redeliveries, self.done_without_write_back
        );
    }
}
