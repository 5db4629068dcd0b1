//! Every hosted CMS adapter against a loopback contract server of that CMS's API: the publish
//! webhook (signed as that CMS signs) makes one video, the video URL is written back the way the
//! CMS expects, and the webhook the CMS fires again after that write makes no second render.
//! Write-back robustness: version conflicts re-read and retry (Contentful, Ghost), a CMS that is
//! down is retried with backoff, and a CMS that refuses leaves the render `writeback_failed`
//! with its video URL, which `vidhook jobs retry-writeback` finishes later.

mod support;

use std::time::{Duration, Instant};

use support::cms_apis::{CmsApi, Kind};
use support::{presenter_png, vidhook, Host};

const BODY: &str = "The council will fit solar panels to every school roof by next spring.";

/// A host with one source `cms` of `api`'s kind (local $0 preview videos).
async fn host(dir: &std::path::Path, api: &CmsApi) -> Host {
    let source = api.source_config();
    let (source, fields) = match source.split_once("[sources.cms.fields]") {
        Some((source, fields)) => (source.to_string(), format!("[sources.cms.fields]{fields}")),
        None => (source, String::new()),
    };
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\nworkers = 2\n\n[retry]\nbase_delay_ms = 50\nmax_delay_ms = 300\nmax_attempts = 4\n\n\
         [sources.cms]\n{source}presenter_image = \"{image}\"\n{fields}",
        data = dir.join("data").display(),
        image = presenter_png().display(),
    );
    Host::start(dir, &config).await
}

/// Waits until the CMS has sent `n` webhooks (the publish and its echoes) and vidhook answered.
async fn wait_for_answers(api: &CmsApi, n: usize) -> Vec<u16> {
    let started = Instant::now();
    while api.answers().len() < n && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    api.answers()
}

/// Publish → one render → written back → the CMS's echo webhook → still one render.
/// Returns the folder too: it lives as long as the test.
async fn publish_write_back_and_echo(
    kind: Kind,
) -> (CmsApi, Host, serde_json::Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(kind).await;
    let host = host(dir.path(), &api).await;
    let hook = format!("{}/hooks/cms", host.url);
    let status = api
        .publish(&hook, "Solar panels on every school", BODY)
        .await;
    assert_eq!(
        status,
        202,
        "{kind:?}: publish answered {status}\n{}",
        host.logs()
    );
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    let answers = wait_for_answers(&api, 2).await;
    assert_eq!(
        answers.len(),
        2,
        "{kind:?}: no echo webhook: {answers:?}\n{}",
        host.logs()
    );
    assert_eq!(
        answers[1],
        200,
        "{kind:?}: the echo is acknowledged without new work\n{}",
        host.logs()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let renders = host.renders().await;
    assert_eq!(renders.len(), 1, "{kind:?}: {renders:#?}");
    (api, host, render, dir)
}

#[tokio::test(flavor = "multi_thread")]
async fn contentful_patches_the_entry_under_its_version_and_republishes_without_a_loop() {
    let (api, _host, render, _dir) = publish_write_back_and_echo(Kind::Contentful).await;
    let entry = api.entry();
    assert_eq!(entry["fields"]["videoUrl"]["en-US"], render["video_url"]);
    // PATCH (version 1 → 2) then publish (→ 3).
    assert_eq!(entry["sys"]["version"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn contentful_rereads_and_retries_on_a_version_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Contentful).await;
    api.conflict_once();
    let host = host(dir.path(), &api).await;
    api.publish(&format!("{}/hooks/cms", host.url), "Solar", BODY)
        .await;
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    assert_eq!(
        api.entry()["fields"]["videoUrl"]["en-US"],
        render["video_url"]
    );
    assert_eq!(
        api.writes().len(),
        1,
        "one successful PATCH after the conflict"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ghost_writes_a_video_element_checking_updated_at_and_ignores_its_own_edit() {
    let (api, _host, render, _dir) = publish_write_back_and_echo(Kind::Ghost).await;
    let foot = api.entry()["codeinjection_foot"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        foot.contains(render["video_url"].as_str().unwrap()),
        "{foot}"
    );
    assert!(foot.starts_with("<video "), "{foot}");
}

#[tokio::test(flavor = "multi_thread")]
async fn ghost_rereads_and_retries_on_an_update_collision() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Ghost).await;
    api.conflict_once();
    let host = host(dir.path(), &api).await;
    api.publish(&format!("{}/hooks/cms", host.url), "Solar", BODY)
        .await;
    host.wait_for_state("done", Duration::from_secs(60)).await;
    assert_eq!(api.writes().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sanity_patches_the_document_without_a_loop() {
    let (api, _host, render, _dir) = publish_write_back_and_echo(Kind::Sanity).await;
    assert_eq!(api.entry()["video_url"], render["video_url"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn strapi_puts_the_url_and_its_republish_makes_no_render() {
    let (api, _host, render, _dir) = publish_write_back_and_echo(Kind::Strapi).await;
    assert_eq!(api.entry()["video_url"], render["video_url"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn directus_patches_the_item_and_its_update_event_is_ignored() {
    let (api, host, render, _dir) = publish_write_back_and_echo(Kind::Directus).await;
    assert_eq!(api.entry()["video_url"], render["video_url"]);
    assert!(host.logs().contains("webhook ignored"), "{}", host.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn storyblok_fetches_the_story_and_republishes_it_without_a_loop() {
    let (api, _host, render, _dir) = publish_write_back_and_echo(Kind::Storyblok).await;
    assert_eq!(api.entry()["content"]["video_url"], render["video_url"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cms_that_is_down_is_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Strapi).await;
    api.fail_writes(503, 2);
    let host = host(dir.path(), &api).await;
    api.publish(&format!("{}/hooks/cms", host.url), "Solar", BODY)
        .await;
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    assert_eq!(api.entry()["video_url"], render["video_url"]);
    let steps = host.render(render["id"].as_str().unwrap()).await["steps"].clone();
    let retries = steps
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "write_back" && s["outcome"] == "retry")
        .count();
    assert_eq!(retries, 2, "{steps:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_write_back_keeps_the_video_and_retry_writeback_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Strapi).await;
    api.fail_writes(403, 1);
    let host = host(dir.path(), &api).await;
    api.publish(&format!("{}/hooks/cms", host.url), "Solar", BODY)
        .await;
    let failed = host
        .wait_for_state("writeback_failed", Duration::from_secs(60))
        .await;
    assert_eq!(failed["error_category"], "writeback_error");
    assert!(
        failed["video_url"].as_str().is_some_and(|u| !u.is_empty()),
        "video kept"
    );
    assert!(api.writes().is_empty());

    let config = dir.path().join("vidhook.toml");
    let id = failed["id"].as_str().unwrap();
    let out = vidhook(&[
        "jobs",
        "--config",
        config.to_str().unwrap(),
        "retry-writeback",
        id,
    ])
    .await;
    assert!(out.contains("back in write_back"), "{out}");
    let done = host.wait_for_state("done", Duration::from_secs(30)).await;
    assert_eq!(api.entry()["video_url"], done["video_url"]);
    assert_eq!(
        done["video_url"], failed["video_url"],
        "the same video, not a new one"
    );
}
