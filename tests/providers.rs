//! The same avatar model on another host: fal.ai's queue, against its loopback contract server
//! (tests/support/fal.rs). A render goes through fal's queue (concurrency 2, the rest wait
//! `IN_QUEUE`), is paid once, kept before fal deletes the output; fal's Ed25519 webhooks are
//! verified with keys from its JWKS (forged, stale, replayed and altered deliveries refused; a
//! rotated key fetched again); a submit whose answer is lost is reconciled by the request id its
//! webhook announces, never sent again. Every payment assertion is the contract server's ledger.

mod support;

use std::time::Duration;

use support::fal::{Fal, Fault};
use support::{cms::Cms, now_secs, omnihuman_config, published, seedance::Seedance, Host};

/// The standard test config with `[provider]` on the fal contract server.
async fn fal_config(dir: &std::path::Path, fal: &Fal, cms: &Cms, poll_secs: u64) -> String {
    let seedance = Seedance::start(false).await; // only for the shared config's shape
    let config = omnihuman_config(dir, &seedance, cms, true, poll_secs, 5);
    let start = config.find("[provider]").unwrap();
    let end = config[start..].find("\n\n").unwrap() + start;
    format!(
        "{}[provider]\nkind = \"fal\"\nbase_url = \"{url}\"\napi_key = \"{key}\"\n\
         jwks_url = \"{url}/.well-known/jwks.json\"\npoll_interval_secs = {poll_secs}\n\
         request_timeout_secs = 5\n{}",
        &config[..start],
        &config[end..],
        url = fal.url,
        key = support::fal::API_KEY,
    )
}

async fn publish(host: &Host, id: &str) {
    let body = published(
        id,
        "Weekly prices",
        "<p>Prices fell this week. Here is what changed.</p>",
    );
    let status = host
        .post_signed("blog", &format!("msg_{id}"), now_secs(), &body)
        .await
        .status();
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread")]
async fn renders_go_through_fals_queue_paid_once_each_and_kept_before_the_output_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let fal = Fal::start().await;
    fal.delete_outputs_after(Duration::from_secs(3));
    let cms = Cms::start().await;
    // Polling every 10 minutes: only verified webhooks finish these in time.
    let mut host = Host::start(dir.path(), &fal_config(dir.path(), &fal, &cms, 600).await).await;
    for n in 0..4 {
        publish(&host, &format!("fal-{n}")).await;
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
    assert!(
        fal.deliveries().iter().filter(|d| d.status == 200).count() >= 8,
        "each webhook was delivered twice and accepted"
    );
    // The outputs are gone at fal now; the videos written back are ours and still play.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let client = reqwest::Client::new();
    for entry in host.renders().await {
        let render = &entry["render"];
        assert_eq!(render["state"], "done", "{render}");
        let provenance: serde_json::Value =
            serde_json::from_str(render["provenance_json"].as_str().unwrap()).unwrap();
        assert_eq!(provenance["provider"]["name"], "fal", "{provenance}");
        let job = render["provider_job_id"].as_str().unwrap();
        let gone = format!("{}/files/{job}.mp4", fal.url);
        assert_eq!(client.get(&gone).send().await.unwrap().status(), 404);
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
async fn fal_webhooks_are_verified_with_its_published_keys() {
    let dir = tempfile::tempdir().unwrap();
    let fal = Fal::start().await;
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &fal_config(dir.path(), &fal, &cms, 600).await).await;
    publish(&host, "sig-1").await;
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
        publish(&host, "lost-1").await;
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
    publish(&host, "rl-1").await;
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
