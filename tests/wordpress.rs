//! A real WordPress (Debian's package, MariaDB, PHP) with the companion plugin from
//! `integrations/wordpress/`: a post created and published through WordPress's own REST API
//! reaches vidhook through the plugin's signed webhook, gets a video (the local $0 preview
//! provider), and vidhook writes the video's URL into the post's `video_url` meta through the
//! REST API with an Application Password. That write-back is a publish → publish update: the
//! plugin sends it as `content.updated`, which makes no second render.

mod support;

use std::time::{Duration, Instant};

use support::wordpress::WordPress;
use support::{free_port, presenter_png, vidhook_result, Host, SECRET};

#[tokio::test(flavor = "multi_thread")]
async fn a_post_published_in_wordpress_gets_its_video_url_written_back_once() {
    let (dir, wordpress, config) = wordpress_and_config().await;
    let host = Host::start(dir.path(), &config).await;

    let post_id = wordpress
        .create_post(
            "Solar panels on every school",
            "<p>The council will fit solar panels to every school roof by next spring. \
             It expects to save a third of the schools' electricity bills.</p>",
            "publish",
        )
        .await;

    let render = host.wait_for_state("done", Duration::from_secs(120)).await;
    let video_url = render["video_url"].as_str().unwrap().to_string();

    // Read back through WordPress's own REST API.
    let stored = wordpress.post(post_id).await;
    assert_eq!(
        stored["meta"]["video_url"],
        video_url.as_str(),
        "{stored:#}"
    );
    assert_eq!(stored["status"], "publish");
    let meta = &stored["meta"];
    assert_eq!(meta["video_captions_language"], "en-US", "{stored:#}");
    for key in ["video_captions_url", "video_poster_url"] {
        let url = meta[key].as_str().unwrap_or_default();
        let answer = reqwest::get(url).await.unwrap();
        assert_eq!(answer.status(), 200, "{key}: {url}");
    }

    // The write-back's own webhook (publish → publish) arrives and is ignored.
    let started = Instant::now();
    while !host.logs().contains("webhook ignored") && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let logs = host.logs();
    assert!(
        logs.lines()
            .any(|l| l.contains("webhook ignored") && l.contains("wp")),
        "the follow-up webhook did not arrive:\n{logs}"
    );
    // The sweeps that follow list the post (as the REST API shows it) and find the content the
    // plugin's webhook delivered: nothing new.
    let sweeps = "vidhook_catch_up_sweeps_total{source=\"wp\",result=\"ok\"}";
    let done = host.metric(sweeps).await;
    host.wait_for_metric(sweeps, done + 2.0).await;
    assert_eq!(
        host.metric("vidhook_catch_up_found_total{source=\"wp\"}")
            .await,
        0.0,
        "{}",
        host.logs()
    );
    let renders = host.renders().await;
    assert_eq!(renders.len(), 1, "{renders:#?}");
    let events: Vec<_> = logs
        .lines()
        .filter(|l| l.contains("event accepted"))
        .collect();
    assert_eq!(events.len(), 1, "{logs}");

    // Revision order: a late delivery shaped as the plugin sends it, of an older revision
    // (`modified_gmt`) with other text, is stale: nothing stored, queued or written.
    let late = serde_json::json!({
        "type": "content.published", "timestamp": "2000-01-01T00:00:00+00:00",
        "data": {"id": post_id, "title": "Solar panels on every school",
                 "body_html": "<p>An older draft of the text, delivered late.</p>",
                 "locale": "en-US", "kind": "post", "revision": "2000-01-01 00:00:00",
                 "rest_base": "posts"}
    })
    .to_string();
    let answer = host
        .post_signed("wp", "wp_late_delivery", support::now_secs(), &late)
        .await;
    assert_eq!(answer.status(), 200);
    let said: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(said["status"], "stale", "{said}");
    assert_eq!(host.renders().await.len(), 1);
    assert_eq!(
        wordpress.post(post_id).await["meta"]["video_url"],
        video_url.as_str()
    );
}

/// The companion plugin's delivery meets a stopped vidhook (its first retry is a minute away,
/// and only when WordPress's cron runs): the catch-up sweep lists the post through the REST API
/// at start-up, renders it once and writes the video back.
#[tokio::test(flavor = "multi_thread")]
async fn a_post_published_while_vidhook_is_down_is_caught_up_once() {
    let (dir, wordpress, config) = wordpress_and_config().await;
    // A site west of UTC: a date without an offset would be read five hours late.
    let timezone = wordpress
        .authed(reqwest::Method::POST, "/wp/v2/settings")
        .json(&serde_json::json!({"timezone": "America/New_York"}))
        .send()
        .await
        .unwrap();
    assert_eq!(timezone.status(), 200, "{}", timezone.text().await.unwrap());
    // A first run starts the source's watermark.
    let host = Host::start(dir.path(), &config).await;
    let sweeps = "vidhook_catch_up_sweeps_total{source=\"wp\",result=\"ok\"}";
    host.wait_for_metric(sweeps, 1.0).await;
    host.terminate(Duration::from_secs(20)).await;

    let post_id = wordpress
        .create_post(
            "Wind farms off every coast",
            "<p>The government will build wind farms off every coast by 2030.</p>",
            "publish",
        )
        .await;
    // A draft is never rendered.
    wordpress
        .create_post("Not yet", "<p>Draft.</p>", "draft")
        .await;

    let host = Host::start(dir.path(), &config).await;
    let render = host.wait_for_state("done", Duration::from_secs(120)).await;
    let stored = wordpress.post(post_id).await;
    assert_eq!(
        stored["meta"]["video_url"], render["video_url"],
        "{stored:#}"
    );
    let found = "vidhook_catch_up_found_total{source=\"wp\"}";
    host.wait_for_metric(found, 1.0).await;
    // More sweeps (the post again, its write-back's modification): nothing new.
    let done = host.metric(sweeps).await;
    host.wait_for_metric(sweeps, done + 2.0).await;
    let renders = host.renders().await;
    assert_eq!(renders.len(), 1, "{renders:#?}\n{}", host.logs());
    assert_eq!(host.metric(found).await, 1.0);
}

/// Posts that existed before vidhook knew the site: `vidhook backfill` lists them through the
/// REST API (the site's own `page` paging, published posts only), renders each once and writes
/// each video into its own post; the same command again renders nothing.
#[tokio::test(flavor = "multi_thread")]
async fn existing_posts_are_backfilled_once_each() {
    let (dir, wordpress, config) = wordpress_and_config().await;
    let mut posts = Vec::new();
    for title in [
        "Archive: the old bridge",
        "Archive: the first library",
        "Archive: the market",
    ] {
        let html = format!("<p>{title} is remembered by everyone in town.</p>");
        posts.push(wordpress.create_post(title, &html, "publish").await);
    }
    wordpress
        .create_post("Not yet", "<p>Draft.</p>", "draft")
        .await;
    // vidhook starts after them: its catch-up sweep leaves them to backfill.
    let host = Host::start(dir.path(), &config).await;
    let config_path = dir.path().join("vidhook.toml");
    let backfill = [
        "--config",
        config_path.to_str().unwrap(),
        "backfill",
        "--source",
        "wp",
        "--yes",
    ];
    let (ok, out) = tokio::time::timeout(Duration::from_secs(300), vidhook_result(&backfill))
        .await
        .expect("the backfill finishes");
    assert!(ok, "{out}\n{}", host.logs());
    for post in &posts {
        let stored = wordpress.post(*post).await;
        let url = stored["meta"]["video_url"].as_str().unwrap_or_default();
        assert!(url.contains("/media/videos/"), "post {post}: {stored:#}");
    }
    let renders = host.renders().await;
    assert!(
        renders.iter().all(|r| r["render"]["state"] == "done"),
        "{renders:#?}"
    );
    assert!(
        !serde_json::to_string(&renders).unwrap().contains("Not yet"),
        "the draft is not rendered"
    );
    let (ok, again) = vidhook_result(&backfill).await;
    assert!(ok, "{again}");
    assert!(again.contains(" 0 to render"), "{again}");
    assert_eq!(host.renders().await.len(), renders.len());
}

/// A real WordPress whose plugin sends to vidhook's fixed port, and the vidhook config for it
/// (sweeping every second). The folder lives as long as the test.
async fn wordpress_and_config() -> (tempfile::TempDir, WordPress, String) {
    let dir = tempfile::tempdir().unwrap();
    let (wordpress_port, vidhook_port) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{vidhook_port}/hooks/wp");
    let wordpress =
        WordPress::start(&dir.path().join("wp"), wordpress_port, &endpoint, SECRET).await;
    let config = format!(
        r#"
listen = "127.0.0.1:{vidhook_port}"
data_dir = "{data}"
workers = 2

[sources.wp]
cms = "wordpress"
secret = "{SECRET}"
rest_url = "{site}/?rest_route="
username = "admin"
application_password = "{password}"
presenter_image = "{image}"
catch_up_secs = 1

# The plugin's companion meta: the captions (and their language) and the poster beside the video.
[sources.wp.fields]
captions = "video_captions_url"
captions_language = "video_captions_language"
poster = "video_poster_url"

[outbound]
# Loopback test servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]
"#,
        data = dir.path().join("data").display(),
        site = wordpress.url,
        password = wordpress.app_password,
        image = presenter_png().display(),
    );
    (dir, wordpress, config)
}
