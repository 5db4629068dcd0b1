//! Never pay twice, for real (issue #10). The contract server bills before it fails — a gateway's
//! 502 after the job was created, a hang past our timeout, a reset connection — and ignores
//! `Idempotency-Key`, as the OmniHuman documentation allows. Every assertion on money is the
//! contract server's own ledger of created (billed) jobs.

mod support;

use std::time::Duration;

use support::seedance::{Fault, Seedance};
use support::{cms::Cms, now_secs, omnihuman_config, published, vidhook_result, Host};

const BODY: &str = "<p>Prices fell this week. Here is what changed.</p>";

async fn publish_body(host: &Host, id: &str, delivery: &str, body_html: &str) {
    assert_eq!(
        post(host, id, delivery, body_html).await,
        202,
        "{}",
        host.logs()
    );
}

async fn post(host: &Host, id: &str, delivery: &str, body_html: &str) -> u16 {
    let body = published(id, "Weekly prices", body_html);
    host.post_signed("blog", delivery, now_secs(), &body)
        .await
        .status()
        .as_u16()
}

/// The three faults that bill and then leave us not knowing. `request_timeout_secs` is 2, so a
/// 6 s hang is past it.
fn billed_faults() -> [(&'static str, Fault); 3] {
    [
        ("bill then 502", Fault::BillThenError { status: 502 }),
        ("bill then hang", Fault::AcceptThenHang { secs: 6 }),
        ("bill then reset", Fault::AcceptThenDrop),
    ]
}

/// A host whose provider answers the first submit with `fault`; one article published.
async fn publish_into(fault: Fault, webhooks: bool) -> (tempfile::TempDir, Seedance, Cms, Host) {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    seedance.push_fault(fault);
    let cms = Cms::start().await;
    let poll_secs = if webhooks { 600 } else { 1 };
    let config = omnihuman_config(dir.path(), &seedance, &cms, webhooks, poll_secs, 2);
    let host = Host::start(dir.path(), &config).await;
    publish_body(&host, "f-1", "msg_f1", BODY).await;
    (dir, seedance, cms, host)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_billed_fault_is_paid_once_and_the_webhook_completes_the_render() {
    for (name, fault) in billed_faults() {
        let (_dir, seedance, cms, host) = publish_into(fault, true).await;

        let written = cms.wait_for_write_backs(1, Duration::from_secs(60)).await;
        assert_eq!(written.len(), 1, "{name}: {}", host.logs());
        let done = host.wait_for_state("done", Duration::from_secs(10)).await;
        assert_eq!(seedance.jobs().len(), 1, "{name}: paid once");
        assert_eq!(seedance.attempts().len(), 1, "{name}: submitted once");
        let steps = host.render(done["id"].as_str().unwrap()).await["steps"].clone();
        let outcomes: Vec<&str> = steps
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["outcome"].as_str().unwrap())
            .collect();
        // Adopted from `reconciling`, or (the hang) from `submitting` while the call still hung.
        assert!(outcomes.contains(&"adopted"), "{name}: {steps:#}");
        // The job's answer may still arrive after adoption (the hang): nothing changes.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(seedance.jobs().len(), 1, "{name}: still paid once");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_webhooks_a_billed_fault_parks_the_render_with_its_key_and_pays_nothing_more() {
    for (name, fault) in billed_faults() {
        let (_dir, seedance, cms, host) = publish_into(fault, false).await;

        let parked = host
            .wait_for_state("needs_attention", Duration::from_secs(60))
            .await;
        let error = parked["error"].as_str().unwrap();
        let key = seedance.jobs()[0].idempotency_key.clone().unwrap();
        assert!(
            error.contains(&key) && error.contains("webhooks are off"),
            "{name}: {error}"
        );
        assert!(error.contains("Not resubmitted"), "{name}: {error}");
        // It keeps the category of what parked it, and `vidhook jobs` says what each way out
        // costs.
        assert_eq!(parked["error_category"], "ambiguous_submit", "{name}");
        let config = host.dir.join("vidhook.toml");
        let jobs = support::vidhook(&["--config", config.to_str().unwrap(), "jobs"]).await;
        let summary = jobs
            .split("parked, waiting for a person")
            .nth(1)
            .unwrap_or_else(|| panic!("{name}: {jobs}"));
        assert!(
            summary.contains("1  ambiguous_submit")
                && summary.contains("jobs adopt")
                && summary.contains("960 credits"),
            "{name}: {jobs}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(seedance.jobs().len(), 1, "{name}: paid once");
        assert_eq!(seedance.jobs_for_key(&key), 1, "{name}");
        assert_eq!(seedance.attempts().len(), 1, "{name}: never resubmitted");
        assert!(cms.received().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_glitch_never_abandons_a_paid_job() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    // Right after creation the job is not found, then the key is refused, then the API is down.
    seedance.push_status_faults(&[404, 404, 401, 403, 503, 500]);
    let cms = Cms::start().await;
    let host = Host::start(
        dir.path(),
        &omnihuman_config(dir.path(), &seedance, &cms, false, 1, 10).replace(
            "poll_interval_secs = 1",
            "poll_interval_secs = 1\nmax_wait_secs = 60",
        ),
    )
    .await;
    publish_body(&host, "g-1", "msg_g1", BODY).await;
    support::assert_done_once(&host, &cms, &seedance).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_late_webhook_for_a_timed_out_render_adopts_its_video_without_paying_again() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(true).await;
    let cms = Cms::start().await;
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 1, 10).replace(
        "poll_interval_secs = 1",
        "poll_interval_secs = 1\nmax_wait_secs = 2",
    );
    let host = Host::start(dir.path(), &config).await;
    publish_body(&host, "late-1", "msg_late1", BODY).await;

    let failed = host.wait_for_state("failed", Duration::from_secs(30)).await;
    assert_eq!(failed["error_category"], "timeout");
    seedance.release().await; // the job finishes late; its webhook arrives
    support::assert_done_once(&host, &cms, &seedance).await;
}

fn admin_config(dir: &std::path::Path, seedance: &Seedance, cms: &Cms, webhooks: bool) -> String {
    omnihuman_config(dir, seedance, cms, webhooks, 1, 2)
        + "\n[plugins]\nadmin_token = \"ops-token-0123456789abcdef\"\n"
}

#[tokio::test(flavor = "multi_thread")]
async fn operators_adopt_a_parked_job_and_resubmit_only_when_they_accept_a_double_charge() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    seedance.push_fault(Fault::BillThenError { status: 502 });
    seedance.push_fault(Fault::BillThenError { status: 504 });
    let cms = Cms::start().await;
    let host = Host::start(
        dir.path(),
        &admin_config(dir.path(), &seedance, &cms, false),
    )
    .await;
    let config = dir.path().join("vidhook.toml");
    let config = config.to_str().unwrap();

    // Render 1: parked; the operator finds its job in the dashboard and adopts it.
    publish_body(&host, "op-1", "msg_op1", BODY).await;
    let parked = host
        .wait_for_state("needs_attention", Duration::from_secs(60))
        .await;
    let first = parked["id"].as_str().unwrap().to_string();
    let (ok, out) = vidhook_result(&[
        "--config",
        config,
        "jobs",
        "retry",
        &first,
        "--reason",
        "try again",
    ])
    .await;
    assert!(!ok && out.contains("retry is for failed"), "{out}");
    let (ok, out) = vidhook_result(&[
        "--config",
        config,
        "jobs",
        "adopt",
        &first,
        "--job",
        "job_not_real",
        "--reason",
        "x",
    ])
    .await;
    assert!(!ok && out.contains("could not confirm job"), "{out}");
    let job = seedance.jobs()[0].id.clone();
    let (ok, out) = vidhook_result(&[
        "--config",
        config,
        "jobs",
        "adopt",
        &first,
        "--job",
        &job,
        "--reason",
        "found in the provider dashboard",
        "--by",
        "alice",
    ])
    .await;
    assert!(ok, "{out}");
    cms.wait_for_write_backs(1, Duration::from_secs(30)).await;
    assert_eq!(seedance.jobs().len(), 1, "adopted, not paid again");

    // Render 2: parked; resubmitting is refused until the double charge is accepted.
    publish_body(&host, "op-2", "msg_op2", "<p>Another article entirely.</p>").await;
    let second = loop {
        let renders = host.renders().await;
        if let Some(r) = renders
            .iter()
            .find(|r| r["render"]["state"] == "needs_attention")
        {
            break r["render"]["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (ok, out) = vidhook_result(&[
        "--config",
        config,
        "jobs",
        "resubmit",
        &second,
        "--reason",
        "customer asked",
    ])
    .await;
    assert!(!ok && out.contains("--accept-double-charge"), "{out}");
    assert_eq!(seedance.jobs().len(), 2);
    // Through the admin API this time: the token first, then the body.
    let url = format!("{}/api/v1/renders/{second}/resubmit", host.url);
    let client = reqwest::Client::new();
    let anonymous = client.post(&url).json(&serde_json::json!({"reason": "x"}));
    assert_eq!(anonymous.send().await.unwrap().status(), 401);
    let accepted = client
        .post(&url)
        .bearer_auth("ops-token-0123456789abcdef")
        .json(&serde_json::json!({"reason": "customer asked", "accept_double_charge": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    cms.wait_for_write_backs(2, Duration::from_secs(30)).await;
    assert_eq!(
        seedance.jobs().len(),
        3,
        "the double charge the operator accepted"
    );

    let audit = support::vidhook(&["--config", config, "audit"]).await;
    assert!(
        audit.contains("alice") && audit.contains("adopt"),
        "{audit}"
    );
    assert!(
        audit.contains("config:admin_token") && audit.contains("resubmit"),
        "{audit}"
    );
    assert!(audit.contains("customer asked"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_runs_a_provably_unsubmitted_render_again_and_follows_a_timed_out_job() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(true).await;
    seedance.push_fault(Fault::Invalid);
    let cms = Cms::start().await;
    let config_text = omnihuman_config(dir.path(), &seedance, &cms, false, 1, 5).replace(
        "poll_interval_secs = 1",
        "poll_interval_secs = 1\nmax_wait_secs = 2",
    );
    let host = Host::start(dir.path(), &config_text).await;
    let config = dir.path().join("vidhook.toml");
    let config = config.to_str().unwrap();
    publish_body(&host, "rt-1", "msg_rt1", BODY).await;

    // A 400 created nothing: retry re-runs the submit.
    let failed = host.wait_for_state("failed", Duration::from_secs(30)).await;
    assert_eq!(failed["error_category"], "provider_rejected");
    let id = failed["id"].as_str().unwrap().to_string();
    assert!(seedance.jobs().is_empty());
    support::vidhook(&[
        "--config",
        config,
        "jobs",
        "retry",
        &id,
        "--reason",
        "policy fixed",
    ])
    .await;

    // The held job times out; retry follows the same job again (no new job), and it completes.
    let timed_out = loop {
        let render = host.render(&id).await["render"].clone();
        if render["error_category"] == "timeout" {
            break render;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(timed_out["state"], "failed");
    assert_eq!(seedance.jobs().len(), 1);
    support::vidhook(&[
        "--config",
        config,
        "jobs",
        "retry",
        &id,
        "--reason",
        "poll again",
    ])
    .await;
    seedance.release().await;
    cms.wait_for_write_backs(1, Duration::from_secs(30)).await;
    host.wait_for_state("done", Duration::from_secs(10)).await;
    assert_eq!(seedance.jobs().len(), 1, "the same job, paid once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revert_to_earlier_content_writes_its_existing_video_back_at_no_cost() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let host = Host::start(
        dir.path(),
        &omnihuman_config(dir.path(), &seedance, &cms, true, 600, 10),
    )
    .await;
    let video = |n: usize, written: &[serde_json::Value]| {
        written[n]["data"]["video_url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    publish_body(&host, "rv-1", "msg_a", BODY).await;
    let written = cms.wait_for_write_backs(1, Duration::from_secs(60)).await;
    let video_a = video(0, &written);
    publish_body(
        &host,
        "rv-1",
        "msg_b",
        "<p>Prices rose this week instead.</p>",
    )
    .await;
    let written = cms.wait_for_write_backs(2, Duration::from_secs(60)).await;
    assert_ne!(video(1, &written), video_a);
    // The echo of our own write-back of B carries B's content: a duplicate, nothing happens.
    let echo = post(
        &host,
        "rv-1",
        "msg_b_echo",
        "<p>Prices rose this week instead.</p>",
    )
    .await;
    assert_eq!(echo, 200);
    // The editor reverts to A.
    publish_body(&host, "rv-1", "msg_a_again", BODY).await;
    let written = cms.wait_for_write_backs(3, Duration::from_secs(60)).await;
    assert_eq!(written.len(), 3, "{}", host.logs());
    assert_eq!(video(2, &written), video_a, "A's video is back");
    assert_eq!(seedance.jobs().len(), 2, "the revert cost nothing");
    // …and its echo is not another revert.
    assert_eq!(post(&host, "rv-1", "msg_a_echo", BODY).await, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(cms.received().len(), 3);
    assert_eq!(seedance.jobs().len(), 2);
}

/// The per-render webhook token: a job's callback URL used for another render, with an empty
/// or a truncated token, is refused and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_provider_webhook_token_works_only_for_its_own_render() {
    let (_dir, seedance, cms, host) = publish_into(
        Fault::RateLimited {
            retry_after_secs: 1,
        },
        true,
    )
    .await;
    cms.wait_for_write_backs(1, Duration::from_secs(60)).await;
    host.wait_for_state("done", Duration::from_secs(10)).await;
    let url = seedance.jobs()[0].webhook_url.clone().unwrap();
    let (path, token) = url.split_once("?token=").unwrap();
    let (base, render) = path.rsplit_once('/').unwrap();
    let client = reqwest::Client::new();
    let body = serde_json::json!({"job_id": seedance.jobs()[0].id}).to_string();
    for forged in [
        format!("{base}/01a00000-0000-7000-8000-000000000000?token={token}"),
        format!("{base}/{render}?token="),
        format!("{base}/{render}?token={}", &token[..token.len() - 2]),
        format!("{base}/{render}"),
    ] {
        let status = client
            .post(&forged)
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401, "{forged}");
    }
    assert_eq!(seedance.jobs().len(), 1);
}
