//! Generation: a paid submit whose outcome is unknown (the provider accepted the job but the
//! answer timed out, the connection dropped, or vidhook was killed mid-call) is never sent again:
//! the render waits in `reconciling` with the Idempotency-Key, and the provider's per-render
//! webhook completes it (more in tests/paid_once.rs). Also: 1080p length policy, budgets, dry
//! run, signed provider webhooks, the approval gate, timeouts. Every assertion on payment is the
//! contract server's own count of accepted jobs.

mod support;

use std::time::Duration;

use support::seedance::{Fault, Seedance};
use support::{cms::Cms, now_secs, omnihuman_config, published, Host};

const BODY: &str = "<p>Prices fell this week. Here is what changed.</p>";

async fn publish(host: &Host, id: &str) {
    let body = published(id, "Weekly prices", BODY);
    assert_eq!(
        host.post_signed("blog", &format!("msg_{id}"), now_secs(), &body)
            .await
            .status(),
        202
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_after_the_provider_accepted_waits_in_reconciling_and_its_webhook_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(true).await;
    seedance.push_fault(Fault::AcceptThenHang { secs: 5 });
    let cms = Cms::start().await;
    // Our timeout (1 s) fires while the provider has already accepted the job.
    let host = Host::start(
        dir.path(),
        &omnihuman_config(dir.path(), &seedance, &cms, true, 600, 1),
    )
    .await;
    publish(&host, "t-1").await;

    let parked = host
        .wait_for_state("reconciling", Duration::from_secs(60))
        .await;
    assert_eq!(parked["error_category"], "ambiguous_submit");
    let error = parked["error"].as_str().unwrap();
    assert!(
        error.contains("Idempotency-Key") && error.contains("Not resubmitted"),
        "{error}"
    );
    assert_eq!(seedance.jobs().len(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        seedance.attempts().len(),
        1,
        "no second generate call while reconciling"
    );

    seedance.release().await; // the job finishes; the provider calls the per-render webhook
    let written = cms.wait_for_write_backs(1, Duration::from_secs(30)).await;
    assert_eq!(written.len(), 1, "{}", host.logs());
    host.wait_for_state("done", Duration::from_secs(10)).await;
    assert_eq!(seedance.jobs().len(), 1, "paid once");
    assert_eq!(seedance.attempts().len(), 1, "submitted once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_after_the_provider_accepted_is_not_paid_twice() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    seedance.push_fault(Fault::AcceptThenDrop);
    let cms = Cms::start().await;
    let host = Host::start(
        dir.path(),
        &omnihuman_config(dir.path(), &seedance, &cms, true, 600, 30),
    )
    .await;
    publish(&host, "d-1").await;

    support::assert_done_once(&host, &cms, &seedance).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_during_the_paid_submit_is_reconciled_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(true).await;
    seedance.push_fault(Fault::AcceptThenHang { secs: 30 });
    let cms = Cms::start().await;
    // The provider calls back the URL it was given: the restarted host must keep it.
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 600, 60).replace(
        "127.0.0.1:0",
        &format!("127.0.0.1:{}", support::free_port()),
    );
    let host = Host::start(dir.path(), &config).await;
    publish(&host, "c-1").await;

    host.wait_for_state("submitting", Duration::from_secs(60))
        .await;
    while seedance.jobs().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    host.kill().await; // mid-call: the provider has the job, we never read its answer

    let host = Host::start(dir.path(), &config).await;
    // On PostgreSQL the dead process's lease (30 s) must expire first; SQLite frees it at start.
    let parked = host
        .wait_for_state("reconciling", Duration::from_secs(90))
        .await;
    assert!(parked["error"]
        .as_str()
        .unwrap()
        .contains("interrupted during the paid submit"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        seedance.attempts().len(),
        1,
        "not resubmitted after the restart"
    );

    seedance.release().await;
    let written = cms.wait_for_write_backs(1, Duration::from_secs(30)).await;
    assert_eq!(written.len(), 1, "{}", host.logs());
    assert_eq!(seedance.jobs().len(), 1, "paid once");
    assert_eq!(seedance.attempts().len(), 1, "submitted once");
}

/// ~130 words: about 45 s of narration, too long for 1080p (30 s), fine for 720p (60 s).
fn long_body() -> String {
    "<p>".to_string()
        + &"This sentence is here to make the narration ten words long. ".repeat(13)
        + "</p>"
}

/// The presenter asked for 1080p and allowed to write up to 57 s (margin 1.9 of 30 s).
fn long_1080p_config(base: String, policy: Option<&str>) -> String {
    let policy = policy
        .map(|p| format!("too_long_for_1080p = \"{p}\"\n"))
        .unwrap_or_default();
    format!("{base}{policy}plugins = [{{ name = \"presenter\", config = {{ resolution = \"1080p\", safety_margin = \"1.9\" }} }}]\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn narration_too_long_for_1080p_falls_back_to_720p_when_the_source_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let base = omnihuman_config(dir.path(), &seedance, &cms, true, 600, 30);
    let host = Host::start(dir.path(), &long_1080p_config(base, Some("fallback_720p"))).await;
    let body = published("long-1", "A long one", &long_body());
    assert_eq!(
        host.post_signed("blog", "msg_long1", now_secs(), &body)
            .await
            .status(),
        202
    );

    let done = host.wait_for_state("done", Duration::from_secs(90)).await;
    let jobs = seedance.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].resolution, "720p", "submitted at 720p");
    assert!(
        jobs[0].audio_seconds > 30.0 && jobs[0].audio_seconds <= 60.0,
        "{}",
        jobs[0].audio_seconds
    );
    assert!(done["plan_json"].as_str().unwrap().contains("\"720p\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn narration_too_long_for_1080p_fails_before_any_paid_call_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let base = omnihuman_config(dir.path(), &seedance, &cms, true, 600, 30);
    let host = Host::start(dir.path(), &long_1080p_config(base, None)).await;
    let body = published("long-2", "A long one", &long_body());
    assert_eq!(
        host.post_signed("blog", "msg_long2", now_secs(), &body)
            .await
            .status(),
        202
    );

    let failed = host.wait_for_state("failed", Duration::from_secs(90)).await;
    assert_eq!(failed["error_category"], "input_invalid");
    let metrics = host.metrics().await;
    assert!(
        metrics.contains(r#"vidhook_renders{state="failed",category="input_invalid"} 1"#),
        "{metrics}"
    );
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("at 1080p the provider accepts at most 30 s"),
        "{failed}"
    );
    assert!(seedance.attempts().is_empty(), "no paid call");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daily_budget_holds_submissions_before_they_happen_and_they_resume_when_raised() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let base = omnihuman_config(dir.path(), &seedance, &cms, true, 600, 30).replace(
        "127.0.0.1:0",
        &format!("127.0.0.1:{}", support::free_port()),
    );
    let config = |credits: i64| format!("{base}\n[budgets]\ndaily_credits = {credits}\n");
    let host = Host::start(dir.path(), &config(960)).await;
    publish(&host, "b-1").await;
    host.wait_for_state("done", Duration::from_secs(60)).await;
    publish(&host, "b-2").await;

    // Held in `submit`, visibly, with nothing sent to the provider.
    let held = loop {
        let renders = host.renders().await;
        if let Some(r) = renders
            .iter()
            .find(|r| r["render"]["error_category"] == "over_budget")
        {
            break r["render"].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(held["state"], "submit");
    assert!(
        held["error"]
            .as_str()
            .unwrap()
            .contains("spent 960 of 960 credits"),
        "{held}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        seedance.attempts().len(),
        1,
        "the second video was never submitted"
    );
    let ledger = support::vidhook(&[
        "credits",
        "--config",
        host.dir.join("vidhook.toml").to_str().unwrap(),
    ])
    .await;
    assert!(
        ledger.contains("today (UTC): 960 credits, budget 960"),
        "{ledger}"
    );
    assert!(
        ledger.contains("estimate") && ledger.contains("actual") && ledger.contains("CREDITS"),
        "{ledger}"
    );

    // Raised: the held render goes ahead (it re-checks every minute; a restart re-checks at once).
    host.kill().await;
    let host = Host::start(dir.path(), &config(1920)).await;
    let written = cms.wait_for_write_backs(2, Duration::from_secs(60)).await;
    assert_eq!(written.len(), 2, "{}", host.logs());
    assert_eq!(seedance.jobs().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_runs_every_step_except_the_paid_call() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 600, 30) + "dry_run = true\n";
    let host = Host::start(dir.path(), &config).await;
    publish(&host, "dry-1").await;

    let render = host
        .wait_for_state("dry_run", Duration::from_secs(60))
        .await;
    let detail = host.render(render["id"].as_str().unwrap()).await;
    let steps: Vec<(&str, &str)> = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("plan", "ok"),
            ("speak", "ok"),
            ("check", "ok"),
            ("submit", "ok")
        ]
    );
    assert!(detail["steps"][3]["detail"]
        .as_str()
        .unwrap()
        .starts_with("dry run: would submit to omnihuman"));
    assert!(seedance.attempts().is_empty(), "no paid call");
    assert!(cms.received().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_provider_webhooks_are_verified_and_a_replay_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    seedance.sign_webhooks_with("hook-secret-0123456789");
    let cms = Cms::start().await;
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 600, 30).replace(
        "webhooks = true",
        "webhooks = true\nwebhook_secret = \"hook-secret-0123456789\"",
    );
    let host = Host::start(dir.path(), &config).await;
    publish(&host, "s-1").await;
    // Polling is every 10 minutes: only an accepted signed webhook finishes it in time.
    assert_eq!(
        cms.wait_for_write_backs(1, Duration::from_secs(60))
            .await
            .len(),
        1,
        "{}",
        host.logs()
    );
    assert_eq!(seedance.webhook_statuses(), vec![200]);

    let (url, body, signature) = seedance.last_webhook().unwrap();
    let client = reqwest::Client::new();
    let send = |signature: Option<String>| {
        let mut request = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("x-seedance-signature", signature);
        }
        request.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401, "unsigned");
    let forged = support::seedance::sign("not-the-secret", now_secs(), body.as_bytes());
    assert_eq!(
        send(Some(forged)).await.unwrap().status(),
        401,
        "wrong secret"
    );
    let stale =
        support::seedance::sign("hook-secret-0123456789", now_secs() - 600, body.as_bytes());
    assert_eq!(
        send(Some(stale)).await.unwrap().status(),
        401,
        "outside the window"
    );
    // The genuine delivery again: accepted, and nothing happens twice.
    assert_eq!(send(signature).await.unwrap().status(), 200);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(cms.received().len(), 1, "written back once");
    assert_eq!(seedance.jobs().len(), 1, "paid once");
    assert!(host.logs().contains("provider webhook rejected: signature"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_approval_gate_shows_a_free_preview_and_pays_only_after_approval() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 600, 30)
        + "approval = true\n\n[plugins]\nadmin_token = \"editor-token-0123456789\"\n";
    let host = Host::start(dir.path(), &config).await;
    publish(&host, "a-1").await;
    publish(&host, "a-2").await;

    // Both wait with a real, playable $0 preview; nothing was sent to the provider.
    let mut waiting = Vec::new();
    for _ in 0..600 {
        waiting = host
            .renders()
            .await
            .into_iter()
            .filter(|r| r["render"]["state"] == "awaiting_approval")
            .collect();
        if waiting.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(waiting.len(), 2, "{}", host.logs());
    let preview = waiting[0]["render"]["preview_url"].as_str().unwrap();
    let video = reqwest::get(preview).await.unwrap();
    assert_eq!(video.status(), 200);
    assert!(
        video
            .bytes()
            .await
            .unwrap()
            .windows(4)
            .any(|w| w == b"ftyp"),
        "an MP4"
    );
    assert!(
        seedance.attempts().is_empty(),
        "nothing paid before approval"
    );

    let id = |i: usize| waiting[i]["render"]["id"].as_str().unwrap().to_string();
    let (approve, reject) = if waiting[0]["entry"] == "a-1" {
        (id(0), id(1))
    } else {
        (id(1), id(0))
    };
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/renders/{approve}/approve", host.url);
    assert_eq!(
        client.post(&url).send().await.unwrap().status(),
        401,
        "editors only"
    );
    let ok = client
        .post(&url)
        .bearer_auth("editor-token-0123456789")
        .json(&serde_json::json!({"note": "looks good"}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let cfg = host.dir.join("vidhook.toml");
    let out = support::vidhook(&[
        "jobs",
        "reject",
        &reject,
        "--note",
        "off-brand",
        "--config",
        cfg.to_str().unwrap(),
    ])
    .await;
    assert!(out.contains("rejected"), "{out}");

    let written = cms.wait_for_write_backs(1, Duration::from_secs(60)).await;
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["data"]["id"], "a-1");
    assert_eq!(seedance.jobs().len(), 1, "only the approved one was paid");
    assert_eq!(host.render(&reject).await["render"]["state"], "skipped");
    assert_eq!(
        client
            .post(&url)
            .bearer_auth("editor-token-0123456789")
            .send()
            .await
            .unwrap()
            .status(),
        409,
        "decided once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_never_finishes_fails_as_timeout_after_the_maximum_wait() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(true).await;
    let cms = Cms::start().await;
    let config = omnihuman_config(dir.path(), &seedance, &cms, false, 1, 30).replace(
        "poll_interval_secs = 1",
        "poll_interval_secs = 1\nmax_wait_secs = 3",
    );
    let host = Host::start(dir.path(), &config).await;
    publish(&host, "slow-1").await;

    let failed = host.wait_for_state("failed", Duration::from_secs(30)).await;
    assert_eq!(failed["error_category"], "timeout");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("unfinished after"),
        "{failed}"
    );
    assert_eq!(seedance.jobs().len(), 1);
    assert!(seedance.jobs()[0].polls >= 2, "polled before giving up");
}
