//! Every hosted CMS adapter against a loopback contract server of that CMS's API: the publish
//! webhook (signed as that CMS signs) makes one video, the video URL is written back the way the
//! CMS expects, and the webhook the CMS fires again after that write makes no second render.
//! Write-back robustness: version conflicts re-read and retry (Contentful, Ghost), a CMS that is
//! down is retried with backoff, and a CMS that refuses leaves the render `writeback_failed`
//! with its video URL, which `vidhook jobs retry-writeback` finishes later.

mod support;

use std::time::{Duration, Instant};

use support::cms_apis::{host_config, CmsApi, Kind, GHOST_EDITOR_FOOTER};
use support::{presenter_png, vidhook, Host};

const BODY: &str = "The council will fit solar panels to every school roof by next spring.";

/// A host with one source `cms` of `api`'s kind (local $0 preview videos).
async fn host(dir: &std::path::Path, api: &CmsApi) -> Host {
    host_with(dir, &api.source_config()).await
}

/// A host whose source `cms` is configured by `source` (the lines after `[sources.cms]`).
async fn host_with(dir: &std::path::Path, source: &str) -> Host {
    Host::start(dir, &host_config(dir, "127.0.0.1:0", source, "")).await
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
    // The entry's own image, as the CMS references it, resolved to the URL the CMS serves it at.
    let plan: serde_json::Value =
        serde_json::from_str(render["plan_json"].as_str().unwrap()).unwrap();
    assert_eq!(plan["image_url"], api.expected_image(), "{kind:?}");
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
    // Published at version 2; PATCH (→ 3) then publish (→ 4).
    assert_eq!(entry["sys"]["version"], 4);
}

/// A hook URL with a query string (e.g. to tell sources apart): Contentful signs the query with
/// the path, and the delivery verifies.
#[tokio::test(flavor = "multi_thread")]
async fn contentful_verifies_a_hook_url_with_a_query_string() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Contentful).await;
    let host = host(dir.path(), &api).await;
    let hook = format!("{}/hooks/cms?team=news&note=a%20b", host.url);
    let status = api
        .publish(&hook, "Solar panels on every school", BODY)
        .await;
    assert_eq!(status, 202, "{}", host.logs());
    host.wait_for_state("done", Duration::from_secs(60)).await;
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
    let (api, host, render, _dir) = publish_write_back_and_echo(Kind::Ghost).await;
    let foot = api.entry()["codeinjection_foot"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        foot.contains(render["video_url"].as_str().unwrap()),
        "{foot}"
    );
    // The editor's footer is kept byte for byte, our block after it.
    assert!(foot.starts_with(GHOST_EDITOR_FOOTER), "{foot}");
    assert_eq!(foot.matches("<!-- vidhook:video -->").count(), 1, "{foot}");
    // The player has the kept poster and a captions track in the narration's language.
    assert!(
        foot.contains(" poster=\"") && foot.contains(".jpg\""),
        "{foot}"
    );
    assert!(
        foot.contains("<track kind=\"captions\" src=\"") && foot.contains(".vtt\" srclang=\""),
        "{foot}"
    );

    // A second render (the body edited): our block is replaced, the editor's script untouched.
    assert_eq!(
        api.edit_body("Wind turbines too.").await,
        202,
        "{}",
        host.logs()
    );
    let second = loop {
        let renders = host.renders().await;
        let done: Vec<_> = renders
            .iter()
            .filter(|r| r["render"]["state"] == "done")
            .collect();
        if done.len() == 2 {
            break done[0]["render"]["video_url"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let foot = api.entry()["codeinjection_foot"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(foot.starts_with(GHOST_EDITOR_FOOTER), "{foot}");
    assert_eq!(foot.matches("<!-- vidhook:video -->").count(), 1, "{foot}");
    assert!(foot.contains(&second), "{foot}");
    assert!(
        !foot.contains(render["video_url"].as_str().unwrap()),
        "{foot}"
    );
}

/// An editor saves the footer between our read and our write: Ghost answers 409 to our stale
/// `updated_at`, we re-read, and both the editor's change and our block survive.
#[tokio::test(flavor = "multi_thread")]
async fn ghost_keeps_an_editors_save_made_between_our_read_and_our_write() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Ghost).await;
    api.editor_saves_footer_before_next_write("\n<script>lateEdit()</script>");
    let host = host(dir.path(), &api).await;
    api.publish(&format!("{}/hooks/cms", host.url), "Solar", BODY)
        .await;
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    let foot = api.entry()["codeinjection_foot"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        foot.starts_with(&format!(
            "{GHOST_EDITOR_FOOTER}\n<script>lateEdit()</script>"
        )),
        "{foot}"
    );
    assert!(
        foot.contains(render["video_url"].as_str().unwrap()),
        "{foot}"
    );
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

/// The story PUT replaces the whole content and Storyblok checks no version: an editor saves a
/// field right after vidhook's read for its write-back; vidhook reads again before writing, sees
/// the change, and writes from the editor's version, so both the edit and the video survive.
#[tokio::test(flavor = "multi_thread")]
async fn storyblok_keeps_an_editors_save_made_between_our_read_and_our_write() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Storyblok).await;
    // Read 1: the webhook's fetch of the working story; read 2: the write-back's.
    api.editor_saves_after_read(2, "subtitle", "Added by an editor meanwhile");
    let host = host(dir.path(), &api).await;
    let status = api
        .publish(&format!("{}/hooks/cms", host.url), "Solar", BODY)
        .await;
    assert_eq!(status, 202, "{}", host.logs());
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    let content = &api.entry()["content"];
    assert_eq!(
        content["subtitle"], "Added by an editor meanwhile",
        "{content}"
    );
    assert_eq!(content["video_url"], render["video_url"], "{content}");
    assert_eq!(
        api.writes().len(),
        1,
        "one write, from the editor's version"
    );
}

/// An editor saved changes without publishing them: the published story is rendered (read from
/// the Content Delivery API), and the write-back saves our field without publishing the draft.
#[tokio::test(flavor = "multi_thread")]
async fn storyblok_renders_the_published_story_and_never_publishes_an_editors_draft() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Storyblok).await;
    api.save_draft_title_after_publish("Draft headline nobody approved");
    let host = host(dir.path(), &api).await;
    let status = api
        .publish(
            &format!("{}/hooks/cms", host.url),
            "Solar panels on every school",
            BODY,
        )
        .await;
    assert_eq!(status, 202, "{}", host.logs());
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    let plan: serde_json::Value =
        serde_json::from_str(render["plan_json"].as_str().unwrap()).unwrap();
    let script = plan["script"].as_str().unwrap();
    assert!(!script.contains("Draft headline"), "{script}");
    let write = api.writes().last().cloned().unwrap();
    assert!(
        write.get("publish").is_none(),
        "the draft was not published: {write}"
    );
    assert_eq!(
        write["story"]["content"]["title"], "Draft headline nobody approved",
        "the editor's draft is kept, with our field added"
    );
    assert!(api.entry()["content"].get("video_url").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thin_webhook_whose_entry_cannot_be_read_is_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Storyblok).await;
    // The Management API is unreachable: the story behind the thin payload cannot be read.
    let source = api.source_config().replace(
        &api.url,
        &format!("http://127.0.0.1:{}", support::free_port()),
    );
    let host = host_with(dir.path(), &source).await;
    let status = api
        .publish(&format!("{}/hooks/cms", host.url), "Solar", BODY)
        .await;
    assert_eq!(status, 503, "not acknowledged, so Storyblok retries it");
    assert!(host.renders().await.is_empty());
    assert!(host.logs().contains("CMS unavailable"), "{}", host.logs());
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

#[tokio::test(flavor = "multi_thread")]
async fn markdown_front_matter_is_written_and_publishing_the_file_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("content");
    std::fs::create_dir_all(&folder).unwrap();
    let file = folder.join("solar.md");
    std::fs::write(
        &file,
        format!("---\ntitle: Solar panels on every school\n---\n{BODY}\n"),
    )
    .unwrap();
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\n\n[sources.docs]\ncms = \"markdown\"\n\
         folder = \"{folder}\"\npresenter_image = \"{image}\"\n",
        data = dir.path().join("data").display(),
        folder = folder.display(),
        image = presenter_png().display(),
    );
    let host = Host::start(dir.path(), &config).await;
    let config_path = dir.path().join("vidhook.toml");
    let args = [
        "publish",
        "--config",
        config_path.to_str().unwrap(),
        file.to_str().unwrap(),
    ];
    assert!(vidhook(&args).await.contains("accepted"));
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    let text = std::fs::read_to_string(&file).unwrap();
    let url = render["video_url"].as_str().unwrap();
    assert!(text.contains(&format!("video_url: \"{url}\"")), "{text}");
    // The file now differs (front matter), but not in what drives the video.
    assert!(vidhook(&args).await.contains("nothing to do"));
    assert_eq!(host.renders().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn standard_webhooks_write_back_follows_the_configured_request_template() {
    use std::sync::{Arc, Mutex};
    /// (method, URI, Authorization, body) of each request the CMS received.
    type Requests = Arc<Mutex<Vec<(String, String, String, String)>>>;
    let seen: Requests = Arc::default();
    let record = seen.clone();
    let cms = support::serve(axum::Router::new().fallback(
        move |method: axum::http::Method,
              uri: axum::http::Uri,
              headers: axum::http::HeaderMap,
              body: String| {
            let record = record.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                record
                    .lock()
                    .unwrap()
                    .push((method.to_string(), uri.to_string(), auth, body));
                axum::http::StatusCode::NO_CONTENT
            }
        },
    ))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"listen = "127.0.0.1:0"
data_dir = "{data}"

[sources.blog]
cms = "standard-webhooks"
secret = "{secret}"
presenter_image = "{image}"

[sources.blog.writeback]
method = "PATCH"
url = "{cms}/api/items/{{{{id}}}}"
headers = {{ authorization = "Bearer cms-token" }}
body = '{{"data": {{"{{{{field}}}}": "{{{{video_url}}}}", "title": "{{{{title}}}}"}}}}'

[outbound]
# Loopback test servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]
"#,
        data = dir.path().join("data").display(),
        secret = support::SECRET,
        image = presenter_png().display(),
    );
    let host = Host::start(dir.path(), &config).await;
    let body = support::published("a b/1", "Quotes \"and\" slashes", "<p>Body text here.</p>");
    assert_eq!(
        host.post_signed("blog", "msg_t1", support::now_secs(), &body)
            .await
            .status(),
        202
    );
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (method, uri, auth, sent) = &seen[0];
    assert_eq!(
        (method.as_str(), uri.as_str(), auth.as_str()),
        ("PATCH", "/api/items/a%20b%2F1", "Bearer cms-token")
    );
    let sent: serde_json::Value =
        serde_json::from_str(sent).expect("valid JSON whatever the values");
    assert_eq!(sent["data"]["video_url"], render["video_url"]);
    assert_eq!(sent["data"]["title"], "Quotes \"and\" slashes");
}

/// Revision order: publish A, publish B (a newer revision), then the CMS's first delivery
/// arrives again — late (a retry after a timeout, signed afresh) and byte for byte (a replay
/// within the signature window). Both are answered 200 and change nothing: no render, no
/// write-back, the entry keeps B's video. Where the adapter reads the entry's current version
/// from the CMS's API (Storyblok's thin webhook, Directus's item), a late delivery is simply
/// the current content again.
async fn a_late_delivery_never_moves_the_entry_backwards(kind: Kind) {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(kind).await;
    let host = host(dir.path(), &api).await;
    let hook = format!("{}/hooks/cms", host.url);
    assert_eq!(
        api.publish(&hook, "Solar panels", BODY).await,
        202,
        "{kind:?}"
    );
    host.wait_for_state("done", Duration::from_secs(60)).await;
    let first_writes = api.writes().len();
    wait_for_answers(&api, 2).await;
    let edited = "The council will now fit solar panels to every school by next winter.";
    assert_eq!(
        api.publish(&hook, "Solar panels", edited).await,
        202,
        "{kind:?}"
    );
    let started = Instant::now();
    while host
        .renders()
        .await
        .iter()
        .filter(|r| r["render"]["state"] == "done")
        .count()
        < 2
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{kind:?}: {}",
            host.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = api.writes();
    assert!(writes.len() > first_writes, "{kind:?}: B was written back");
    let entry = api.entry();

    let late = api.retry_late(0).await;
    let replayed = api.replay(0).await;
    assert_eq!((late, replayed), (200, 200), "{kind:?}: {}", host.logs());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(host.renders().await.len(), 2, "{kind:?}: {}", host.logs());
    assert_eq!(
        api.writes().len(),
        writes.len(),
        "{kind:?}: nothing written"
    );
    assert_eq!(api.entry(), entry, "{kind:?}: the entry keeps B's video");
    if !matches!(kind, Kind::Storyblok | Kind::Directus) {
        assert!(
            host.logs().contains("stale delivery"),
            "{kind:?}: {}",
            host.logs()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn contentful_late_delivery_is_stale() {
    a_late_delivery_never_moves_the_entry_backwards(Kind::Contentful).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ghost_late_delivery_is_stale() {
    a_late_delivery_never_moves_the_entry_backwards(Kind::Ghost).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sanity_late_delivery_is_stale() {
    a_late_delivery_never_moves_the_entry_backwards(Kind::Sanity).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strapi_late_delivery_is_stale() {
    a_late_delivery_never_moves_the_entry_backwards(Kind::Strapi).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn directus_late_delivery_reads_the_current_item() {
    a_late_delivery_never_moves_the_entry_backwards(Kind::Directus).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn storyblok_late_delivery_reads_the_current_story() {
    a_late_delivery_never_moves_the_entry_backwards(Kind::Storyblok).await;
}
