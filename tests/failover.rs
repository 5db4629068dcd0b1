//! Several hosts of the same model for one source (`[providers.NAME]`, `providers = [...]`):
//! the first host goes down mid-run and renders move to the next only when the first provably
//! took nothing (a refused connection); one cut mid-call stays with the first host and is
//! reconciled there. Every render ends done exactly once and none is paid on two hosts (the
//! contract servers' own ledgers say so); the failovers are counted in `/metrics` and in each
//! render's provenance. A narration longer than the first host takes is routed to a host that
//! takes it. Payment assertions are the contract servers' ledgers.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use support::fal::Fal;
use support::outage::Outage;
use support::replicate::Replicate;
use support::{
    cms::Cms, now_secs, omnihuman_config, publish_short, published, render_of, seedance::Seedance,
    Host,
};

/// The standard test config with its `[provider]` table replaced by `hosts` (`[providers.*]`
/// tables) and `blog` using `order`.
fn with_hosts(base: &str, hosts: &str, order: &[&str]) -> String {
    let start = base.find("[provider]").unwrap();
    let end = base[start..].find("\n\n").unwrap() + start;
    let order = order
        .iter()
        .map(|name| format!("{name:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{}{hosts}{}providers = [{order}]\n",
        &base[..start],
        &base[end..]
    )
}

fn seedance_host(url: &str) -> String {
    format!(
        "[providers.seedance]\nkind = \"omnihuman\"\nbase_url = \"{url}\"\n\
         api_key = \"${{SEEDANCE_TEST_KEY}}\"\npoll_interval_secs = 1\nrequest_timeout_secs = 5\n\n"
    )
}

fn fal_host(fal: &Fal) -> String {
    format!(
        "[providers.fal]\nkind = \"fal\"\nbase_url = \"{url}\"\napi_key = \"{key}\"\n\
         jwks_url = \"{url}/.well-known/jwks.json\"\npoll_interval_secs = 1\n\
         request_timeout_secs = 5\n\n",
        url = fal.url,
        key = support::fal::API_KEY,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_host_down_mid_run_moves_renders_to_the_next_without_paying_twice() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    // The seed API behind a relay that goes down; its video links stay reachable (a CDN).
    let api = Outage::start(&seedance.url).await;
    let fal = Fal::start().await;
    let cms = Cms::start().await;
    let base = omnihuman_config(dir.path(), &seedance, &cms, true, 1, 5);
    let hosts = seedance_host(&format!("{}/v1", api.url)) + &fal_host(&fal);
    let config = with_hosts(&base, &hosts, &["seedance", "fal"]);
    let host = Host::start(dir.path(), &config).await;
    // The first paid call is billed, then its connection dropped: that render's outcome is
    // unknown, so it must stay with the seed API however the API answers afterwards.
    seedance.push_fault(support::seedance::Fault::AcceptThenDrop);

    let n = 12;
    for i in 0..n / 2 {
        publish_short(&host, &format!("before-{i}")).await;
    }
    // Down once the seed API has taken some: whatever is in flight then is cut.
    let started = Instant::now();
    while seedance.jobs().len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            host.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.down();
    for i in 0..n / 2 {
        publish_short(&host, &format!("during-{i}")).await;
    }
    // Everything new goes to fal while the seed API is down (its breaker opens on the way).
    let started = Instant::now();
    while fal.billed().len() < n / 2 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "fal took {} renders:\n{}",
            fal.billed().len(),
            host.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Back up: the jobs it accepted before are read to their end there.
    api.up().await;
    let written = cms.wait_for_write_backs(n, Duration::from_secs(120)).await;
    assert_eq!(written.len(), n, "{}", host.logs());
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Paid exactly once each, on one host: the contract servers' ledgers.
    let on_seedance: Vec<String> = seedance
        .jobs()
        .iter()
        .map(|job| render_of(job.webhook_url.as_deref().unwrap_or("?")))
        .collect();
    let on_fal: Vec<String> = fal
        .billed()
        .iter()
        .map(|request| render_of(request.webhook.as_deref().unwrap_or("?")))
        .collect();
    let seedance_set: BTreeSet<_> = on_seedance.iter().cloned().collect();
    let fal_set: BTreeSet<_> = on_fal.iter().cloned().collect();
    assert_eq!(
        seedance_set.len(),
        on_seedance.len(),
        "paid twice on seedance"
    );
    assert_eq!(fal_set.len(), on_fal.len(), "paid twice on fal");
    assert!(
        seedance_set.is_disjoint(&fal_set),
        "paid on two hosts: {:?}",
        seedance_set.intersection(&fal_set).collect::<Vec<_>>()
    );
    assert_eq!(on_seedance.len() + on_fal.len(), n, "one paid job a render");
    assert!(on_fal.len() >= n / 2);

    // Every render done once, written back once, with its host and failovers in its provenance.
    assert_eq!(cms.received().len(), n, "one write-back each");
    let mut failed_over = 0;
    let mut in_doubt = 0;
    let mut by_host = BTreeMap::new();
    for entry in host.renders().await {
        let render = &entry["render"];
        assert_eq!(render["state"], "done", "{render}");
        let id = render["id"].as_str().unwrap().to_string();
        let provenance: serde_json::Value =
            serde_json::from_str(render["provenance_json"].as_str().unwrap()).unwrap();
        let made_by = provenance["provider"]["name"].as_str().unwrap().to_string();
        assert_eq!(render["provider"], made_by.as_str(), "{render}");
        let paid_there = if made_by == "fal" {
            &fal_set
        } else {
            &seedance_set
        };
        assert!(
            paid_there.contains(&id),
            "{id} made by {made_by}, paid there"
        );
        let failovers = provenance["failovers"].as_array().map_or(0, Vec::len);
        assert_eq!(provenance["provider"]["failovers"], failovers);
        if failovers > 0 {
            failed_over += 1;
            assert_eq!(made_by, "fal", "{provenance}");
            assert_eq!(provenance["failovers"][0]["from"], "seedance");
        }
        let steps = host.render(&id).await["steps"].to_string();
        if steps.contains("\"ambiguous\"") {
            in_doubt += 1;
            assert_eq!(
                made_by, "seedance",
                "stayed with the host that held its job"
            );
            assert_eq!(failovers, 0, "{provenance}");
        }
        *by_host.entry(made_by).or_insert(0) += 1;
    }
    assert_eq!(in_doubt, 1, "the dropped call");
    assert!(failed_over >= 1, "{by_host:?}");
    let metric = host
        .metric(r#"vidhook_provider_failovers_total{from="seedance",to="fal"}"#)
        .await;
    assert_eq!(metric, failed_over as f64, "{}", host.metrics().await);
    // A webhook for a render that moved, from the host it left: refused, not adopted.
    let moved = fal.billed()[0].webhook.clone().unwrap();
    let from_seed = moved.replace("/provider-hooks/fal/", "/provider-hooks/seedance/");
    let answer = reqwest::Client::new()
        .post(&from_seed)
        .json(&serde_json::json!({"job_id": "job_from_elsewhere", "status": "completed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 409, "{}", answer.text().await.unwrap());
    println!(
        "failover run: {n} renders, made by {by_host:?}, {failed_over} failed over, {in_doubt} \
         in doubt kept with its host; paid twice: 0, on two hosts: 0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_narration_longer_than_the_first_host_takes_is_routed_to_one_that_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let replicate = Replicate::start().await;
    let cms = Cms::start().await;
    let base = omnihuman_config(dir.path(), &seedance, &cms, true, 1, 5);
    // fal is configured too, though this source does not use it: the estimate prices it beside.
    let fal = Fal::start().await;
    let hosts = format!(
        "[providers.replicate]\nkind = \"replicate\"\nbase_url = \"{url}\"\n\
         api_token = \"{token}\"\nwebhook_secret = \"{secret}\"\npoll_interval_secs = 1\n\n{seed}{fal}",
        url = replicate.url,
        token = support::replicate::API_TOKEN,
        secret = support::replicate::WEBHOOK_SECRET,
        seed = seedance_host(&seedance.url),
        fal = fal_host(&fal),
    );
    let config = with_hosts(&base, &hosts, &["replicate", "seedance"]);
    let host = Host::start(dir.path(), &config).await;
    // A short one stays with Replicate; ~45 s (over Replicate's 35 s) goes to the seed API,
    // which takes 60 s at 720p.
    publish_short(&host, "short-1").await;
    let long =
        "<p>Prices fell again this week across every market we follow closely. </p>".repeat(12);
    let event = published("long-1", "Weekly prices", &long);
    let status = host
        .post_signed("blog", "msg_long_1", now_secs(), &event)
        .await
        .status();
    assert_eq!(status, 202);
    let written = cms.wait_for_write_backs(2, Duration::from_secs(90)).await;
    assert_eq!(written.len(), 2, "{}", host.logs());

    assert_eq!(replicate.billed().len(), 1, "the short one");
    let jobs = seedance.jobs();
    assert_eq!(jobs.len(), 1, "the long one");
    assert_eq!(jobs[0].resolution, "720p");
    assert!(jobs[0].audio_seconds > 35.0, "{}", jobs[0].audio_seconds);
    let long = host
        .renders()
        .await
        .into_iter()
        .find(|e| e["entry"] == "long-1")
        .unwrap();
    let render = &long["render"];
    assert_eq!(render["provider"], "seedance", "{render}");
    let id = render["id"].as_str().unwrap();
    let steps = host.render(id).await;
    assert!(
        steps.to_string().contains("routed to seedance"),
        "the choice is shown: {steps:#}"
    );

    // `vidhook estimate` prices every configured host side by side for the same videos (the
    // per-second hosts at this source's measured narrations), with the seed's list price beside
    // the credit packs; the API gives the same figures.
    let (ok, printed) =
        support::runs::cli(&host, &["estimate", "--events", "1000", "--source", "blog"]).await;
    assert!(ok, "{printed}");
    println!("{printed}");
    let api = host.api("/api/v1/estimate?source=blog&events=1000").await;
    let estimate = &api["estimate"];
    assert_eq!(estimate["provider"], "replicate", "{api:#}");
    let hosts = estimate["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3, "{api:#}");
    for row in hosts {
        let name = row["name"].as_str().unwrap();
        let line = printed
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{printed}"));
        assert!(line.contains(&row["credits"].to_string()), "{line}\n{row}");
        assert_eq!(
            line.contains("not in this source's providers"),
            name == "fal",
            "{line}"
        );
    }
    let seed = hosts.iter().find(|h| h["name"] == "seedance").unwrap();
    assert_eq!(
        seed["credits"], 960_000,
        "a video is 960 credits whatever its length"
    );
    assert_eq!(seed["price"], "960 credits a video");
    let fal_row = hosts.iter().find(|h| h["name"] == "fal").unwrap();
    let seconds = estimate["seconds_per_video"].as_f64().unwrap();
    assert_eq!(
        fal_row["credits"],
        1000 * 16 * seconds.ceil() as i64,
        "{api:#}"
    );
    assert!(
        printed.contains(
            "OmniHuman list price: 960 credits = $9.60 a video (1,000 videos → $9600.00)"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("Starter") && printed.contains("Max"),
        "{printed}"
    );
}

/// The other provable refusals move a render too: a 429 asking to wait longer than the source's
/// `failover_wait_secs`, and a documented not-billed 4xx; a short 429 is waited out on the same
/// host. Each move says why, and nothing is paid where it was refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_rate_limit_and_a_refusal_move_a_render_a_short_rate_limit_does_not() {
    use support::seedance::Fault;
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let fal = Fal::start().await;
    let cms = Cms::start().await;
    let base = omnihuman_config(dir.path(), &seedance, &cms, true, 1, 5);
    let hosts = seedance_host(&seedance.url) + &fal_host(&fal);
    let config = with_hosts(&base, &hosts, &["seedance", "fal"]) + "failover_wait_secs = 30\n";
    let host = Host::start(dir.path(), &config).await;
    let reasons = [
        (
            Fault::RateLimited {
                retry_after_secs: 120,
            },
            "fal",
            "rate limited (429) for 120s",
        ),
        (Fault::Invalid, "fal", "provider rejected the request (400)"),
        (
            Fault::RateLimited {
                retry_after_secs: 1,
            },
            "seedance",
            "",
        ),
    ];
    for (i, (fault, made_by, reason)) in reasons.into_iter().enumerate() {
        seedance.push_fault(fault);
        publish_short(&host, &format!("refused-{i}")).await;
        let written = cms
            .wait_for_write_backs(i + 1, Duration::from_secs(60))
            .await;
        assert_eq!(written.len(), i + 1, "{}", host.logs());
        let entry = host
            .renders()
            .await
            .into_iter()
            .find(|e| e["entry"] == format!("refused-{i}").as_str())
            .unwrap();
        let render = &entry["render"];
        assert_eq!(render["state"], "done", "{render}");
        assert_eq!(render["provider"], made_by, "{render}");
        let provenance: serde_json::Value =
            serde_json::from_str(render["provenance_json"].as_str().unwrap()).unwrap();
        let failovers = provenance["failovers"].as_array().map_or(0, Vec::len);
        if made_by == "fal" {
            let why = provenance["failovers"][0]["reason"].as_str().unwrap();
            assert!(why.contains(reason), "{why}");
        } else {
            assert_eq!(failovers, 0, "a short wait is waited out: {provenance}");
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        seedance.jobs().len(),
        1,
        "paid on the seed API once: the third"
    );
    assert_eq!(fal.billed().len(), 2, "and on fal for the two it refused");
}
