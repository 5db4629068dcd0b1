//! The same avatar model on another host: fal.ai's queue, against its loopback contract server
//! (tests/support/fal.rs). A render goes through fal's queue (concurrency 2, the rest wait
//! `IN_QUEUE`), is paid once, kept before fal deletes the output; fal's Ed25519 webhooks are
//! verified with keys from its JWKS (forged, stale, replayed and altered deliveries refused; a
//! rotated key fetched again); a submit whose answer is lost is reconciled by the request id its
//! webhook announces, never sent again. The same on Replicate (tests/support/replicate.rs):
//! Standard Webhooks verified, a lost submit found in the recent predictions, a narration the
//! model would fail (35 s or more) refused before it is paid, outputs kept before they are
//! deleted. Every payment assertion is the contract server's ledger.

mod support;

use std::time::Duration;

use support::fal::{Fal, Fault};
use support::replicate::{self as replicate_api, Replicate};
use support::{
    cms::Cms, now_secs, omnihuman_config, publish_short, published, render_of, seedance::Seedance,
    wait_until_gone, Host,
};

/// How long the contract servers keep an output in the keep-before-deletion tests. Real fal
/// keeps outputs per its lifecycle preference, Replicate an hour; a short life shows the copy is
/// made before deletion. 3 s was too short on a loaded 2-core CI (a render's copy came after its
/// output was gone there), so the window allows for the machine, not for a slow host.
const OUTPUT_LIFETIME: Duration = Duration::from_secs(15);

/// The standard test config with `provider` (a `[provider]` table's lines) in its place.
async fn with_provider(dir: &std::path::Path, cms: &Cms, provider: &str) -> String {
    let seedance = Seedance::start(false).await; // only for the shared config's shape
    let config = omnihuman_config(dir, &seedance, cms, true, 600, 5);
    let start = config.find("[provider]").unwrap();
    let end = config[start..].find("\n\n").unwrap() + start;
    format!(
        "{}[provider]\n{provider}{}",
        &config[..start],
        &config[end..]
    )
}

/// `[provider]` on the fal contract server.
async fn fal_config(dir: &std::path::Path, fal: &Fal, cms: &Cms, poll_secs: u64) -> String {
    let provider = format!(
        "kind = \"fal\"\nbase_url = \"{url}\"\napi_key = \"{key}\"\n\
         jwks_url = \"{url}/.well-known/jwks.json\"\npoll_interval_secs = {poll_secs}\n\
         request_timeout_secs = 5",
        url = fal.url,
        key = support::fal::API_KEY,
    );
    with_provider(dir, cms, &provider).await
}

/// `[provider]` on the Replicate contract server.
async fn replicate_config(
    dir: &std::path::Path,
    replicate: &Replicate,
    cms: &Cms,
    webhooks: bool,
    poll_secs: u64,
) -> String {
    let provider = format!(
        "kind = \"replicate\"\nbase_url = \"{url}\"\napi_token = \"{token}\"\n\
         webhooks = {webhooks}\nwebhook_secret = \"{secret}\"\n\
         poll_interval_secs = {poll_secs}\nrequest_timeout_secs = 5",
        url = replicate.url,
        token = support::replicate::API_TOKEN,
        secret = support::replicate::WEBHOOK_SECRET,
    );
    with_provider(dir, cms, &provider).await
}

#[tokio::test(flavor = "multi_thread")]
async fn renders_go_through_fals_queue_paid_once_each_and_kept_before_the_output_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let fal = Fal::start().await;
    fal.delete_outputs_after(OUTPUT_LIFETIME);
    let cms = Cms::start().await;
    // Polling every 10 minutes: only verified webhooks finish these in time.
    let mut host = Host::start(dir.path(), &fal_config(dir.path(), &fal, &cms, 600).await).await;
    for n in 0..4 {
        publish_short(&host, &format!("fal-{n}")).await;
    }
    let written = cms.wait_for_write_backs(4, Duration::from_secs(90)).await;
    assert_eq!(written.len(), 4, "{}", host.logs());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fal.billed().len(), 4, "one paid request a render");
    assert_eq!(
        cms.received().len(),
        4,
        "one write-back each, duplicates changed nothing"
    );
    assert!(fal.peak_in_progress() <= 2, "fal's concurrency held");
    // Each request's webhook was accepted, and delivered again (a second delivery in the same
    // second carries the same signature and is refused as a replay; a later one is accepted):
    // either way the duplicates changed nothing, as the counts above show.
    let deliveries = fal.deliveries();
    for request in fal.billed() {
        let mine: Vec<_> = deliveries
            .iter()
            .filter(|d| d.body.contains(&request.id))
            .collect();
        assert!(mine.iter().any(|d| d.status == 200), "{mine:?}");
        assert!(mine.len() >= 2, "delivered more than once: {mine:?}");
    }
    // Once the outputs are gone at fal, the videos written back are ours and still play.
    let client = reqwest::Client::new();
    for entry in host.renders().await {
        let render = &entry["render"];
        assert_eq!(render["state"], "done", "{render}");
        let provenance: serde_json::Value =
            serde_json::from_str(render["provenance_json"].as_str().unwrap()).unwrap();
        assert_eq!(provenance["provider"]["name"], "fal", "{provenance}");
        let job = render["provider_job_id"].as_str().unwrap();
        wait_until_gone(&format!("{}/files/{job}.mp4", fal.url), 2 * OUTPUT_LIFETIME).await;
        let video = render["video_url"].as_str().unwrap();
        assert!(
            !video.starts_with(&fal.url),
            "kept, not fal's link: {video}"
        );
        let kept = client.get(video).send().await.unwrap();
        assert_eq!(kept.status(), 200, "{video}");
    }
    assert!(host.alive());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_deleted_before_it_is_kept_is_reported_with_its_job_never_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let fal = Fal::start().await;
    fal.delete_outputs_after(Duration::ZERO);
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &fal_config(dir.path(), &fal, &cms, 1).await).await;
    publish_short(&host, "gone-1").await;
    let written = cms.wait_for_write_backs(1, Duration::from_secs(60)).await;
    assert_eq!(written.len(), 1, "{}", host.logs());
    let render = host.wait_for_state("done", Duration::from_secs(10)).await;
    let job = render["provider_job_id"].as_str().unwrap();
    let provenance: serde_json::Value =
        serde_json::from_str(render["provenance_json"].as_str().unwrap()).unwrap();
    let error = provenance["bundle"]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("the video of job {job} on fal is gone"))
            && error.contains("not made again"),
        "{error}"
    );
    let steps = host.render(render["id"].as_str().unwrap()).await["steps"].to_string();
    assert!(steps.contains("is gone"), "reported as a step: {steps}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(fal.billed().len(), 1, "never replaced by a new paid job");
}

#[tokio::test(flavor = "multi_thread")]
async fn fal_webhooks_are_verified_with_its_published_keys() {
    let dir = tempfile::tempdir().unwrap();
    let fal = Fal::start().await;
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &fal_config(dir.path(), &fal, &cms, 600).await).await;
    publish_short(&host, "sig-1").await;
    assert_eq!(
        cms.wait_for_write_backs(1, Duration::from_secs(60))
            .await
            .len(),
        1,
        "{}",
        host.logs()
    );
    let genuine = fal
        .deliveries()
        .into_iter()
        .find(|d| d.status == 200)
        .unwrap();
    let request_id = &genuine.headers[0].1;
    let client = reqwest::Client::new();
    let send = |headers: Vec<(String, String)>, body: String| {
        let mut request = client
            .post(&genuine.url)
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    // fal rotates its key: the first delivery signed with the new one makes us read the JWKS
    // again (once, and at most once every 10 s), and it verifies.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let reads = fal.jwks_reads();
    fal.rotate_key();
    let rotated = fal.sign(request_id, now_secs(), &genuine.body);
    assert_eq!(
        status(send(rotated, genuine.body.clone()).await.unwrap()),
        200
    );
    assert_eq!(
        fal.jwks_reads(),
        reads + 1,
        "fetched again once, on the unknown key"
    );
    assert_eq!(
        status(
            send(genuine.headers.clone(), genuine.body.clone())
                .await
                .unwrap()
        ),
        401,
        "a replay of an accepted delivery"
    );
    assert_eq!(
        status(send(vec![], genuine.body.clone()).await.unwrap()),
        401,
        "unsigned"
    );
    let forged = support::fal::sign(
        &support::fal::stranger_key(),
        request_id,
        now_secs(),
        &genuine.body,
    );
    assert_eq!(
        status(send(forged, genuine.body.clone()).await.unwrap()),
        401,
        "a key that is not fal's"
    );
    let stale = fal.sign(request_id, now_secs() - 600, &genuine.body);
    assert_eq!(
        status(send(stale, genuine.body.clone()).await.unwrap()),
        401,
        "outside the window"
    );
    let fresh = fal.sign(request_id, now_secs(), &genuine.body);
    let altered = genuine.body.replace("\"OK\"", "\"ERROR\"");
    assert_eq!(
        status(send(fresh, altered).await.unwrap()),
        401,
        "a body other than the one signed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(cms.received().len(), 1, "written back once");
    assert_eq!(fal.billed().len(), 1, "paid once");
    assert!(host.logs().contains("provider webhook rejected: signature"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fal_submit_whose_answer_is_lost_is_reconciled_by_its_webhook_not_sent_again() {
    for fault in [Fault::BillThenError(502), Fault::AcceptThenDrop] {
        let dir = tempfile::tempdir().unwrap();
        let fal = Fal::start().await;
        fal.push_fault(fault.clone());
        let cms = Cms::start().await;
        let host = Host::start(dir.path(), &fal_config(dir.path(), &fal, &cms, 600).await).await;
        publish_short(&host, "lost-1").await;
        let written = cms.wait_for_write_backs(1, Duration::from_secs(60)).await;
        assert_eq!(written.len(), 1, "{fault:?}: {}", host.logs());
        let render = host.wait_for_state("done", Duration::from_secs(10)).await;
        assert_eq!(fal.billed().len(), 1, "{fault:?}: paid once");
        assert_eq!(fal.submits().len(), 1, "{fault:?}: submitted once");
        assert_eq!(render["provider_job_id"], fal.billed()[0].id.as_str());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_from_fal_is_waited_out_then_the_request_is_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let fal = Fal::start().await;
    fal.push_fault(Fault::RateLimited);
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &fal_config(dir.path(), &fal, &cms, 1).await).await;
    publish_short(&host, "rl-1").await;
    // A 429 is retried after a wait; then the request is accepted once.
    assert_eq!(
        cms.wait_for_write_backs(1, Duration::from_secs(60))
            .await
            .len(),
        1,
        "{}",
        host.logs()
    );
    assert_eq!(fal.submits(), vec![429, 200]);
    assert_eq!(fal.billed().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn renders_on_replicate_are_paid_once_verified_and_kept_before_outputs_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let replicate = Replicate::start().await;
    replicate.delete_outputs_after(OUTPUT_LIFETIME);
    let cms = Cms::start().await;
    let config = replicate_config(dir.path(), &replicate, &cms, true, 600).await;
    let host = Host::start(dir.path(), &config).await;
    publish_short(&host, "rep-1").await;
    publish_short(&host, "rep-2").await;
    let written = cms.wait_for_write_backs(2, Duration::from_secs(60)).await;
    assert_eq!(written.len(), 2, "{}", host.logs());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(replicate.billed().len(), 2, "one paid prediction a render");
    assert_eq!(replicate.creations(), vec![201, 201]);
    for prediction in replicate.billed() {
        assert_eq!(
            prediction["webhook_events_filter"],
            serde_json::json!(["completed"])
        );
        assert!(
            prediction["input"].get("resolution").is_none(),
            "no input the model lacks"
        );
    }
    // Each webhook: accepted once; its duplicate (the same message id) refused as a replay.
    let deliveries = replicate.deliveries();
    assert_eq!(deliveries.iter().filter(|d| d.status == 200).count(), 2);
    assert_eq!(deliveries.iter().filter(|d| d.status == 401).count(), 2);
    let genuine = &deliveries[0];
    let client = reqwest::Client::new();
    let send = |headers: Vec<(String, String)>| {
        let mut request = client.post(&genuine.url).body(genuine.body.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };
    let forged = replicate_api::sign(
        "whsec_dGhpcyBpcyBub3QgdGhlIHNlY3JldCBhdCBhbGw=",
        "msg_forged",
        now_secs(),
        &genuine.body,
    );
    assert_eq!(send(forged).await.unwrap().status(), 401, "wrong secret");
    let stale = replicate_api::sign(
        replicate_api::WEBHOOK_SECRET,
        "msg_stale",
        now_secs() - 900,
        &genuine.body,
    );
    assert_eq!(send(stale).await.unwrap().status(), 401, "stale");
    // Once the outputs are deleted at Replicate, ours remain.
    for entry in host.renders().await {
        let render = &entry["render"];
        assert_eq!(render["state"], "done");
        let theirs = format!(
            "{}/files/{}.mp4",
            replicate.url.trim_end_matches("/v1"),
            render["provider_job_id"].as_str().unwrap()
        );
        wait_until_gone(&theirs, 2 * OUTPUT_LIFETIME).await;
        let video = render["video_url"].as_str().unwrap();
        assert_eq!(client.get(video).send().await.unwrap().status(), 200);
    }
    assert_eq!(cms.received().len(), 2, "written back once each");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_replicate_submit_is_found_in_its_recent_predictions_not_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let replicate = Replicate::start().await;
    let cms = Cms::start().await;
    // No webhooks: only the listing can tell what the lost submit created.
    let config = replicate_config(dir.path(), &replicate, &cms, false, 1).await;
    let host = Host::start(dir.path(), &config).await;
    // Other predictions of the account, so the render's own is on a later page.
    publish_short(&host, "other-1").await;
    publish_short(&host, "other-2").await;
    assert_eq!(
        cms.wait_for_write_backs(2, Duration::from_secs(60))
            .await
            .len(),
        2
    );
    replicate.push_fault(replicate_api::Fault::AcceptThenDrop);
    publish_short(&host, "lost-1").await;
    publish_short(&host, "after-1").await;
    publish_short(&host, "after-2").await;
    let written = cms.wait_for_write_backs(5, Duration::from_secs(60)).await;
    assert_eq!(written.len(), 5, "{}", host.logs());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        replicate.billed().len(),
        5,
        "paid once each, the lost one included"
    );
    assert_eq!(replicate.creations().len(), 5, "nothing submitted twice");
    assert!(
        host.logs().contains("following it, not submitting again"),
        "{}",
        host.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_narration_replicate_would_fail_is_refused_before_it_is_paid() {
    let dir = tempfile::tempdir().unwrap();
    let replicate = Replicate::start().await;
    let cms = Cms::start().await;
    // A presenter told to overshoot the host's limit (its margin past 1), so the check is what
    // stands between the narration and a billed failure.
    let config = replicate_config(dir.path(), &replicate, &cms, true, 1).await
        + "plugins = [{ name = \"presenter\", config = { safety_margin = \"1.9\" } }]\n";
    let host = Host::start(dir.path(), &config).await;
    let event = published("long-1", "Weekly prices", &long_article());
    let status = host
        .post_signed("blog", "msg_long_1", now_secs(), &event)
        .await
        .status();
    assert_eq!(status, 202);
    let failed = host.wait_for_state("failed", Duration::from_secs(60)).await;
    assert_eq!(failed["error_category"], "input_invalid", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("at most 35 s"), "{error}");
    assert!(replicate.billed().is_empty(), "nothing paid");
    assert!(replicate.creations().is_empty(), "nothing sent");
}

/// ~132 words: about 45 s of narration, fine for the seed's 60 s at 720p, not for Replicate's 35 s.
fn long_article() -> String {
    "<p>Prices fell again this week across every market we follow closely. </p>".repeat(12)
}

/// The plan is fitted to the host the source uses: on Replicate, 35 s, not the model's 60 s at
/// 720p, so a long article becomes a narration Replicate takes, made and paid once.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_article_is_fitted_to_replicates_limit_when_it_is_planned() {
    let dir = tempfile::tempdir().unwrap();
    let replicate = Replicate::start().await;
    let cms = Cms::start().await;
    let config = replicate_config(dir.path(), &replicate, &cms, true, 1).await;
    let host = Host::start(dir.path(), &config).await;
    let event = published("long-2", "Weekly prices", &long_article());
    let status = host
        .post_signed("blog", "msg_long_2", now_secs(), &event)
        .await
        .status();
    assert_eq!(status, 202);
    let done = host.wait_for_state("done", Duration::from_secs(60)).await;
    let seconds = done["audio_seconds"].as_f64().unwrap();
    assert!((15.0..35.0).contains(&seconds), "{seconds} s: {done}");
    assert_eq!(replicate.billed().len(), 1, "paid once");
}

/// `n` events, each delivered twice, against a host whose paid calls meet the faults queued on
/// its contract server; then, once every render has settled: how many were done, parked (with
/// why), paid more than once, done without being paid exactly once, lost, or written back twice.
/// The counts are printed, and the run fails on any but the first two.
async fn chaos(
    name: &str,
    host: &Host,
    cms: &Cms,
    n: usize,
    paid_renders: impl Fn() -> Vec<String>,
) {
    use std::collections::{BTreeMap, HashMap, HashSet};
    for i in 0..n {
        let body = published(
            &format!("c-{i}"),
            "Weekly prices",
            "<p>Prices fell this week.</p>",
        );
        for _ in 0..2 {
            let status = host
                .post_signed("blog", &format!("msg_c_{i}"), now_secs(), &body)
                .await
                .status()
                .as_u16();
            assert!(status == 202 || status == 200, "{status}");
        }
    }
    let settled = ["done", "needs_attention", "failed"];
    let started = std::time::Instant::now();
    let renders = loop {
        let renders = host.renders().await;
        let all_settled = renders.len() == n
            && renders
                .iter()
                .all(|r| settled.contains(&r["render"]["state"].as_str().unwrap_or("")));
        if all_settled || started.elapsed() > Duration::from_secs(120) {
            break renders;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await; // late webhooks and duplicates
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    let mut parked: BTreeMap<String, usize> = BTreeMap::new();
    for entry in &renders {
        let render = &entry["render"];
        let state = render["state"].as_str().unwrap_or("?").to_string();
        if state != "done" {
            let why: String = render["error"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect();
            *parked.entry(format!("{state}: {why}")).or_default() += 1;
        }
        *states.entry(state).or_default() += 1;
    }
    let mut paid: HashMap<String, usize> = HashMap::new();
    for render in paid_renders() {
        *paid.entry(render).or_default() += 1;
    }
    let paid_twice = paid.values().filter(|n| **n > 1).count();
    let done_not_paid_once = renders
        .iter()
        .filter(|r| r["render"]["state"] == "done")
        .filter(|r| paid.get(r["render"]["id"].as_str().unwrap_or("?")) != Some(&1))
        .count();
    let entries: HashSet<String> = renders
        .iter()
        .map(|r| r["entry"].as_str().unwrap_or("?").to_string())
        .collect();
    let lost = (0..n)
        .filter(|i| !entries.contains(&format!("c-{i}")))
        .count()
        + renders
            .iter()
            .filter(|r| !settled.contains(&r["render"]["state"].as_str().unwrap_or("")))
            .count();
    let mut write_backs: HashMap<String, HashSet<String>> = HashMap::new();
    for (id, body) in cms.deliveries() {
        let entry = body["data"]["id"].as_str().unwrap_or("?").to_string();
        write_backs.entry(entry).or_default().insert(id);
    }
    let duplicate_write_backs: usize = write_backs.values().map(|ids| ids.len() - 1).sum();
    println!(
        "{name} chaos: {n} events delivered twice; renders by state {states:?}; paid more than \
         once: {paid_twice}; done but not paid exactly once: {done_not_paid_once}; lost: {lost}; \
         duplicate write-backs: {duplicate_write_backs}; not done: {parked:?}"
    );
    assert_eq!(paid_twice, 0, "{}", host.logs());
    assert_eq!(done_not_paid_once, 0, "{}", host.logs());
    assert_eq!(lost, 0, "{}", host.logs());
    assert_eq!(duplicate_write_backs, 0);
    assert_eq!(write_backs.len(), states.get("done").copied().unwrap_or(0));
}

/// A seeded sequence of what the next paid calls meet: about one in five is billed then
/// answered 502, one in five billed then dropped.
fn fault_sequence(n: usize) -> Vec<u8> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(28);
    (0..n).map(|_| rng.gen_range(0..5u8)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn chaos_on_fal_pays_nothing_twice_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fal = Fal::start().await;
    for draw in fault_sequence(20) {
        fal.push_fault(match draw {
            0 => Fault::BillThenError(502),
            1 => Fault::AcceptThenDrop,
            2 => Fault::RateLimited,
            _ => Fault::Accept,
        });
    }
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &fal_config(dir.path(), &fal, &cms, 2).await).await;
    chaos("fal", &host, &cms, 20, || {
        fal.billed()
            .iter()
            .map(|r| render_of(r.webhook.as_deref().unwrap_or("")))
            .collect()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chaos_on_replicate_pays_nothing_twice_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let replicate = Replicate::start().await;
    for draw in fault_sequence(20) {
        replicate.push_fault(match draw {
            0 => replicate_api::Fault::BillThenError(502),
            1 => replicate_api::Fault::AcceptThenDrop,
            _ => replicate_api::Fault::Accept,
        });
    }
    let cms = Cms::start().await;
    let config = replicate_config(dir.path(), &replicate, &cms, true, 2).await;
    let host = Host::start(dir.path(), &config).await;
    chaos("replicate", &host, &cms, 20, || {
        replicate
            .billed()
            .iter()
            .map(|p| render_of(p["webhook"].as_str().unwrap_or("")))
            .collect()
    })
    .await;
}
