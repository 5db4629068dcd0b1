//! Durability: graceful shutdown on SIGTERM, the database going away and coming back, and the
//! metrics and logs an operator watches. Each runs on SQLite, and on PostgreSQL when
//! `VIDHOOK_TEST_POSTGRES` is set (scripts/test.sh does both).

mod support;

use std::time::{Duration, Instant};

use sqlx::{Connection, Row};
use support::seedance::{Fault, Seedance};
use support::{cms::Cms, database_url, now_secs, omnihuman_config, published, Host};

const BODY: &str = "<p>Prices fell this week. Here is what changed.</p>";

/// Waits until the contract provider has seen `n` generate calls (the submit is in flight).
async fn wait_for_attempts(seedance: &Seedance, n: usize, host: &Host) {
    let started = Instant::now();
    while seedance.attempts().len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no submit reached the provider:\n{}",
            host.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The render's state and lease owner, read from the database itself.
async fn stored_render(dir: &std::path::Path) -> (String, Option<String>) {
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&database_url(dir).await)
        .await
        .unwrap();
    let row = sqlx::query("SELECT state, lease_owner FROM renders")
        .fetch_one(&mut db)
        .await
        .unwrap();
    (row.get("state"), row.get("lease_owner"))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_step_in_flight_commit_then_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    // The provider accepts the job but answers only after 3 s: SIGTERM arrives mid-call.
    seedance.push_fault(Fault::AcceptThenHang { secs: 3 });
    let cms = Cms::start().await;
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 1, 30)
        .replace("workers = 2", "workers = 2\nshutdown_grace_secs = 20");
    let host = Host::start(dir.path(), &config).await;
    let body = published("g-1", "Weekly prices", BODY);
    assert_eq!(
        host.post_signed("blog", "msg_g1", now_secs(), &body)
            .await
            .status(),
        202
    );
    wait_for_attempts(&seedance, 1, &host).await;

    let started = Instant::now();
    let (code, logs) = host.terminate(Duration::from_secs(25)).await;
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "exited before the paid call answered"
    );
    assert!(logs.contains("shutdown complete"), "{logs}");
    assert!(!logs.contains("abandoned"), "{logs}");
    // The submit's answer (the job id) was committed before exit: no ambiguity, no park.
    let (state, lease) = stored_render(dir.path()).await;
    assert_eq!(state, "await", "{logs}");
    assert_eq!(lease, None);

    // Restarted, it follows the job (polling: its webhook came while it was down) to the end.
    let host = Host::start(dir.path(), &config).await;
    support::assert_done_once(&host, &cms, &seedance).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_past_the_grace_period_releases_the_lease_and_never_resubmits() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    seedance.push_fault(Fault::AcceptThenHang { secs: 20 });
    let cms = Cms::start().await;
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 1, 60)
        .replace("workers = 2", "workers = 2\nshutdown_grace_secs = 1");
    let host = Host::start(dir.path(), &config).await;
    let body = published("g-2", "Weekly prices", BODY);
    host.post_signed("blog", "msg_g2", now_secs(), &body).await;
    wait_for_attempts(&seedance, 1, &host).await;

    let started = Instant::now();
    let (code, logs) = host.terminate(Duration::from_secs(10)).await;
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "grace not honoured"
    );
    assert!(logs.contains("leases are released"), "{logs}");
    // Abandoned mid-call: still `submitting` (committed before the call), and free to claim now
    // rather than when the lease would have expired.
    let (state, lease) = stored_render(dir.path()).await;
    assert_eq!(state, "submitting");
    assert_eq!(lease, None, "lease released");

    // Whoever resumes it cannot know whether the provider accepted: it waits in `reconciling`
    // for the job's webhook (this one was sent while vidhook was down), never paid again.
    let host = Host::start(dir.path(), &config).await;
    let parked = host
        .wait_for_state("reconciling", Duration::from_secs(30))
        .await;
    assert!(parked["error"]
        .as_str()
        .unwrap()
        .contains("interrupted during the paid submit"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seedance.attempts().len(), 1, "never submitted twice");
}

/// Takes the database away from the host: an exclusive write lock on SQLite; on PostgreSQL the
/// database refuses connections and the host's are cut. Dropping the guard gives it back.
enum Outage {
    Sqlite(sqlx::SqliteConnection),
    Postgres {
        admin: sqlx::PgConnection,
        name: String,
    },
}

impl Outage {
    async fn begin(dir: &std::path::Path) -> Outage {
        let url = database_url(dir).await;
        if url.starts_with("sqlite:") {
            let mut lock = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query("BEGIN EXCLUSIVE")
                .execute(&mut lock)
                .await
                .unwrap();
            return Outage::Sqlite(lock);
        }
        let (server, name) = url.rsplit_once('/').unwrap();
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
        sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            .execute(&mut admin)
            .await
            .unwrap();
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(name)
            .execute(&mut admin)
            .await
            .unwrap();
        Outage::Postgres {
            admin,
            name: name.to_string(),
        }
    }

    async fn end(self) {
        match self {
            Outage::Sqlite(mut lock) => {
                sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
            }
            Outage::Postgres { mut admin, name } => {
                sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_its_database_ingress_answers_503_and_recovers_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 1, 30)
        .replace("workers = 2", "workers = 2\ndatabase_timeout_secs = 2");
    let host = Host::start(dir.path(), &config).await;
    let body = published("o-1", "Weekly prices", BODY);

    let outage = Outage::begin(dir.path()).await;
    let refused = host.post_signed("blog", "msg_o1", now_secs(), &body).await;
    assert_eq!(refused.status(), 503, "{}", host.logs());
    assert_eq!(refused.headers()["retry-after"], "5");
    // The log reader runs beside the test: give the line a moment to arrive.
    let logged = Instant::now();
    while !host.logs().contains("cannot commit event; answering 503") {
        assert!(logged.elapsed() < Duration::from_secs(5), "{}", host.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let postgres = matches!(outage, Outage::Postgres { .. });
    if postgres {
        let ready = reqwest::get(format!("{}/readyz", host.url)).await.unwrap();
        assert_eq!(ready.status(), 503);
    }
    assert_eq!(seedance.attempts().len(), 0);

    outage.end().await;
    // The CMS retries the same delivery: it was never acknowledged, so it is new now (202).
    let started = Instant::now();
    let accepted = loop {
        let response = host.post_signed("blog", "msg_o1", now_secs(), &body).await;
        if response.status() != 503 || started.elapsed() > Duration::from_secs(20) {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(accepted.status(), 202, "{}", host.logs());
    let ready = reqwest::get(format!("{}/readyz", host.url)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let written = cms.wait_for_write_backs(1, Duration::from_secs(60)).await;
    assert_eq!(written.len(), 1, "{}", host.logs());
    host.wait_for_state("done", Duration::from_secs(10)).await;
    assert_eq!(seedance.jobs().len(), 1);
}

/// The sample value of the first exposition line that starts with `prefix` and holds every label.
fn sample(exposition: &str, name: &str, labels: &[&str]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split(['{', ' ']).next() == Some(name) && labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().unwrap())
        .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{exposition}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_logs_tell_what_happened_to_each_render() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    seedance.push_fault(Fault::RateLimited {
        retry_after_secs: 1,
    });
    let cms = Cms::start().await;
    // Long polling interval: the provider's webhook finishes the job.
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 600, 30);
    let host = Host::start_with_env(dir.path(), &config, &[("VIDHOOK_LOG_FORMAT", "json")]).await;
    let body = published("m-1", "Weekly prices", BODY);
    assert_eq!(
        host.post_signed("blog", "msg_m1", now_secs(), &body)
            .await
            .status(),
        202
    );
    assert_eq!(
        host.post_signed("blog", "msg_m1", now_secs(), &body)
            .await
            .status(),
        200
    );
    let forged = reqwest::Client::new()
        .post(format!("{}/hooks/blog", host.url))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    let render_id = render["id"].as_str().unwrap();
    let job_id = render["provider_job_id"].as_str().unwrap();

    let text = host.metrics().await;
    let webhooks = "vidhook_cms_webhooks_total";
    assert_eq!(
        sample(
            &text,
            webhooks,
            &["outcome=\"accepted\"", "source=\"blog\""]
        ),
        1.0
    );
    assert_eq!(sample(&text, webhooks, &["outcome=\"duplicate\""]), 1.0);
    assert_eq!(
        sample(
            &text,
            webhooks,
            &["outcome=\"rejected\"", "reason=\"unauthorized\""]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "vidhook_provider_webhooks_total",
            &["outcome=\"received\""]
        ),
        1.0
    );
    assert!(
        sample(
            &text,
            "vidhook_provider_polls_total",
            &["result=\"completed\""]
        ) >= 1.0
    );
    assert_eq!(
        sample(&text, "vidhook_renders_finished_total", &["state=\"done\""]),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "vidhook_step_errors_total",
            &["step=\"submit\"", "category=\"provider_failed\""]
        ),
        1.0,
        "the 429"
    );
    assert_eq!(sample(&text, "vidhook_credits_consumed_total", &[]), 960.0);
    assert_eq!(sample(&text, "vidhook_generation_seconds_count", &[]), 1.0);
    assert!(
        sample(
            &text,
            "vidhook_plugin_seconds_count",
            &["plugin=\"presenter"]
        ) >= 1.0
    );
    assert_eq!(sample(&text, "vidhook_renders", &["state=\"done\""]), 1.0);
    assert!(
        text.contains("# TYPE vidhook_generation_seconds histogram"),
        "{text}"
    );

    // Structured logs: every line a worker writes about this render names it, and once the
    // provider has a job, the job id too.
    let logs = host.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let about_render: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["span"]["render"] == render_id || l["fields"]["render"] == render_id)
        .collect();
    assert!(about_render.len() >= 6, "{logs}");
    for line in &about_render {
        let step = line["span"]["step"].as_str().unwrap_or("");
        if matches!(step, "await" | "write_back") {
            assert_eq!(line["span"]["job"], job_id, "{line}");
        }
    }
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "provider webhook received"
                && l["fields"]["render"] == render_id
                && l["fields"]["job"] == job_id),
        "{logs}"
    );
}

/// A stop signal sent to vidhook's whole process group (what a supervisor or a terminal's
/// Ctrl-C sends) mid-speech and mid-preview: ffmpeg and espeak-ng run in their own groups, so
/// the steps in flight finish within the grace; after a restart every render ends `done`, none
/// failed. The slow wrappers hold each child for two seconds, so the signal lands while they
/// run.
#[tokio::test(flavor = "multi_thread")]
async fn a_stop_signal_to_the_process_group_fails_no_render() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let wrap = |name: &str, program: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nsleep 2\nexec {program} \"$@\"\n"),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    };
    let (ffmpeg, espeak) = (
        wrap("slow-ffmpeg", "ffmpeg"),
        wrap("slow-espeak", "espeak-ng"),
    );
    // One port for both runs, as a service keeps its address across restarts (the narration's
    // and photo's URLs name it).
    let port = support::free_port();
    let config = support::workspace::config(dir.path(), &cms)
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace(
            "kind = \"preview\"",
            &format!("kind = \"preview\"\nffmpeg_binary = \"{ffmpeg}\""),
        )
        + &format!("\n[tts]\nespeak_binary = \"{espeak}\"\n");
    let host = Host::start_grouped(dir.path(), &config).await;
    for n in 0..3 {
        let body = published(&format!("stop-{n}"), "Stop", "<p>One short sentence.</p>");
        let sent = host
            .post_signed("blog", &format!("msg_stop_{n}"), now_secs(), &body)
            .await;
        assert_eq!(sent.status(), 202);
    }
    // The first renders are speaking by now, and the next second one is making its preview.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (code, logs) = host.terminate_group(Duration::from_secs(60)).await;
    assert_eq!(code, Some(0), "{logs}");
    // The children were not signalled: the steps in flight finished, none retried for it.
    for killed in ["stopped by signal", "signal: 15"] {
        assert!(
            !logs.contains(killed),
            "a child was killed by the stop:\n{logs}"
        );
    }

    let host = Host::start(dir.path(), &config).await;
    let started = Instant::now();
    loop {
        let renders = host.renders().await;
        let failed: Vec<_> = renders
            .iter()
            .filter(|r| {
                ["failed", "needs_attention", "writeback_failed", "skipped"]
                    .contains(&r["render"]["state"].as_str().unwrap_or_default())
            })
            .collect();
        assert!(failed.is_empty(), "{failed:#?}\n{logs}\n{}", host.logs());
        if renders.len() == 3 && renders.iter().all(|r| r["render"]["state"] == "done") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{renders:#?}\n{}",
            host.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(cms.received().len(), 3, "one write-back each");
}
