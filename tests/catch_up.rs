//! The catch-up sweep (issue #16) against senders that never retry: each CMS's contract server
//! delivers a webhook exactly once, so a publish made while vidhook is down reaches it only
//! through the sweep's listing of that CMS's API.
//!
//! For every listed CMS: vidhook runs once (the source's watermark starts), stops, an item is
//! published (its webhook is refused: connection refused), vidhook starts → exactly one render,
//! written back; the draft beside it is never rendered, and later sweeps add nothing. A publish
//! whose webhook arrived is not rendered again by the sweep. A sweep that meets the CMS down
//! backs off and keeps its watermark, and finds the item once the CMS answers again.

mod support;

use std::path::Path;
use std::time::Duration;

use support::cms_apis::{CmsApi, Kind};
use support::{presenter_png, Host};

const BODY: &str = "The council will fit solar panels to every school roof by next spring.";

/// The config of a host with one source `cms` for `api`, sweeping every second, on one port
/// for the folder's life (the CMS's webhook URL stays the same across restarts, as in real use).
fn config(dir: &Path, api: &CmsApi) -> String {
    let port_file = dir.join("port");
    let port = std::fs::read_to_string(&port_file).unwrap_or_else(|_| {
        let port = support::free_port().to_string();
        std::fs::write(&port_file, &port).unwrap();
        port
    });
    api.host_config(dir, &format!("127.0.0.1:{port}"), "catch_up_secs = 1\n")
}

const SWEEPS_OK: &str = "vidhook_catch_up_sweeps_total{source=\"cms\",result=\"ok\"}";
const SWEEPS_FAILED: &str = "vidhook_catch_up_sweeps_total{source=\"cms\",result=\"failed\"}";
const FOUND: &str = "vidhook_catch_up_found_total{source=\"cms\"}";

/// Starts vidhook once so that the source's watermark exists, then stops it.
async fn run_once_and_stop(dir: &Path, api: &CmsApi) -> String {
    let config = config(dir, api);
    let host = Host::start(dir, &config).await;
    host.wait_for_metric(SWEEPS_OK, 1.0).await;
    let hook = format!("{}/hooks/cms", host.url);
    host.terminate(Duration::from_secs(20)).await;
    hook
}

/// vidhook down → publish (its one webhook refused) → vidhook up → one render, written back.
async fn missed_publish_is_caught_up(kind: Kind) {
    missed_publish_is_caught_up_on(CmsApi::start(kind).await).await;
}

async fn missed_publish_is_caught_up_on(api: CmsApi) {
    let dir = tempfile::tempdir().unwrap();
    let hook = run_once_and_stop(dir.path(), &api).await;

    let status = api
        .publish(&hook, "Solar panels on every school", BODY)
        .await;
    assert_eq!(
        status, 0,
        "the webhook met a stopped vidhook and is not sent again"
    );

    let host = Host::start(dir.path(), &config(dir.path(), &api)).await;
    host.wait_for_state("done", Duration::from_secs(60)).await;
    assert!(
        !api.writes().is_empty(),
        "the video was written back: {}",
        host.logs()
    );
    assert_eq!(
        host.metric(FOUND).await,
        1.0,
        "one item no webhook had delivered"
    );
    // Later sweeps list the item again (the overlap) and the write-back's echo: duplicates.
    let sweeps = host.metric(SWEEPS_OK).await;
    host.wait_for_metric(SWEEPS_OK, sweeps + 2.0).await;
    let renders = host.renders().await;
    assert_eq!(
        renders.len(),
        1,
        "one render, never the draft: {renders:#?}"
    );
    assert_ne!(
        renders[0]["render"]["title"], "An unpublished draft",
        "{renders:#?}"
    );
    assert_eq!(host.metric(FOUND).await, 1.0);
    // The CMS's echo of our write-back reached the restarted vidhook and changed nothing.
    assert!(
        api.answers().iter().skip(1).all(|s| *s == 200),
        "{:?}",
        api.answers()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ghost_publish_missed_while_down_is_rendered_once() {
    missed_publish_is_caught_up(Kind::Ghost).await;
}

/// Ghost on MySQL reads the filter's date as a date (on SQLite, above, as text): the listing
/// finds the post on both.
#[tokio::test(flavor = "multi_thread")]
async fn ghost_on_mysql_publish_missed_while_down_is_rendered_once() {
    let api = CmsApi::start(Kind::Ghost).await;
    api.use_ghost_database(support::cms_apis::GhostDatabase::Mysql);
    missed_publish_is_caught_up_on(api).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strapi_publish_missed_while_down_is_rendered_once() {
    missed_publish_is_caught_up(Kind::Strapi).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn contentful_publish_missed_while_down_is_rendered_once() {
    missed_publish_is_caught_up(Kind::Contentful).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sanity_publish_missed_while_down_is_rendered_once() {
    missed_publish_is_caught_up(Kind::Sanity).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn directus_publish_missed_while_down_is_rendered_once() {
    missed_publish_is_caught_up(Kind::Directus).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn storyblok_publish_missed_while_down_is_rendered_once() {
    missed_publish_is_caught_up(Kind::Storyblok).await;
}

/// A publish whose webhook arrived: the sweeps that follow list it and add nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivered_publish_is_not_rendered_again_by_the_sweep() {
    for kind in [Kind::Ghost, Kind::Strapi] {
        let dir = tempfile::tempdir().unwrap();
        let api = CmsApi::start(kind).await;
        let host = Host::start(dir.path(), &config(dir.path(), &api)).await;
        host.wait_for_metric(SWEEPS_OK, 1.0).await;
        let hook = format!("{}/hooks/cms", host.url);
        let status = api
            .publish(&hook, "Solar panels on every school", BODY)
            .await;
        assert_eq!(status, 202, "{kind:?}: {}", host.logs());
        host.wait_for_state("done", Duration::from_secs(60)).await;
        let sweeps = host.metric(SWEEPS_OK).await;
        host.wait_for_metric(SWEEPS_OK, sweeps + 2.0).await;
        assert!(api.lists() >= 3, "{kind:?}: the sweeps listed the CMS");
        assert_eq!(host.renders().await.len(), 1, "{kind:?}: {}", host.logs());
        assert_eq!(
            host.metric(FOUND).await,
            0.0,
            "{kind:?}: the webhook had it"
        );
    }
}

/// The CMS is down when vidhook comes back: the sweep fails, backs off, keeps its watermark,
/// and finds the missed publish once the CMS answers.
#[tokio::test(flavor = "multi_thread")]
async fn a_sweep_that_meets_the_cms_down_backs_off_and_keeps_its_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Ghost).await;
    let hook = run_once_and_stop(dir.path(), &api).await;
    assert_eq!(api.publish(&hook, "Solar panels", BODY).await, 0);
    api.fail_lists(3);

    let host = Host::start(dir.path(), &config(dir.path(), &api)).await;
    host.wait_for_metric(SWEEPS_FAILED, 3.0).await;
    host.wait_for_state("done", Duration::from_secs(60)).await;
    assert_eq!(host.renders().await.len(), 1);
    assert_eq!(host.metric(FOUND).await, 1.0);
    assert!(
        host.logs()
            .contains("catch-up sweep failed; watermark kept"),
        "{}",
        host.logs()
    );
}

/// A sweep that lists nothing although the source refused deliveries since the last sweep is a
/// WARN with a metric, and `vidhook sources` shows what each sweep listed, found and was preceded
/// by.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_sweep_after_refused_deliveries_is_a_warning_and_sources_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Ghost).await;
    let host = Host::start(dir.path(), &config(dir.path(), &api)).await;
    host.wait_for_metric(SWEEPS_OK, 1.0).await;
    // A delivery that fails its signature check (a misconfigured secret, say): refused.
    let refused = reqwest::Client::new()
        .post(format!("{}/hooks/cms", host.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let empty = "vidhook_catch_up_empty_after_refusals_total{source=\"cms\"}";
    host.wait_for_metric(empty, 1.0).await;
    assert!(
        host.logs()
            .contains("listed nothing although the source refused deliveries"),
        "{}",
        host.logs()
    );
    let config = dir.path().join("vidhook.toml");
    let table = support::vidhook(&["--config", config.to_str().unwrap(), "sources"]).await;
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    for column in [
        "SOURCE",
        "SWEEP",
        "LAST SWEEP",
        "LISTED",
        "FOUND",
        "REFUSED",
        "WATERMARK",
    ] {
        assert!(header.contains(column), "{table}");
    }
    let row: Vec<&str> = lines
        .find(|l| l.starts_with("cms "))
        .unwrap_or_else(|| panic!("{table}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], "1s", "{table}");
    // cms, 1s, date, time, listed, found, refused, …
    assert_eq!((row[4], row[5]), ("0", "0"), "{table}");
    let sources = host.api("/api/v1/sources").await;
    let sweep = &sources.as_array().unwrap()[0]["sweep"];
    assert!(sweep["last_sweep_at"].as_i64().is_some(), "{sources}");
    host.terminate(Duration::from_secs(20)).await;
}

/// Two instances on one database sweep one source: the lease lets one sweep at a time, and the
/// missed publish is rendered once.
#[tokio::test(flavor = "multi_thread")]
async fn two_instances_render_a_missed_publish_once() {
    if std::env::var("VIDHOOK_TEST_POSTGRES").is_err() {
        eprintln!(
            "skipped: several instances share a PostgreSQL database (SQLite is one process's)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let api = CmsApi::start(Kind::Strapi).await;
    let hook = run_once_and_stop(dir.path(), &api).await;
    assert_eq!(api.publish(&hook, "Solar panels", BODY).await, 0);
    let config = config(dir.path(), &api);
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir).unwrap();
    let database = support::database_line(dir.path()).await;
    // Its own port, the first one's PostgreSQL database.
    let listen = config.lines().next().unwrap();
    let second_config = format!(
        "{database}{}",
        config.replacen(listen, "listen = \"127.0.0.1:0\"", 1)
    );
    let (first, second) = tokio::join!(
        Host::start(dir.path(), &config),
        Host::start(&second_dir, &second_config)
    );
    first.wait_for_state("done", Duration::from_secs(60)).await;
    for host in [&first, &second] {
        let sweeps = host.metric(SWEEPS_OK).await;
        host.wait_for_metric(SWEEPS_OK, sweeps + 1.0).await;
    }
    assert_eq!(first.renders().await.len(), 1, "{}", first.logs());
    let found = first.metric(FOUND).await + second.metric(FOUND).await;
    assert_eq!(found, 1.0, "one instance found it, once");
}

/// A Markdown folder: a file written while vidhook was down is rendered at start-up and its
/// video URL written into its front matter; a `draft: true` file is not rendered.
#[tokio::test(flavor = "multi_thread")]
async fn markdown_files_written_while_down_are_rendered_once() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("content");
    std::fs::create_dir_all(&folder).unwrap();
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\nworkers = 2\n\n\
         [sources.docs]\ncms = \"markdown\"\nfolder = \"{folder}\"\npresenter_image = \"{image}\"\ncatch_up_secs = 1\n",
        data = dir.path().join("data").display(),
        folder = folder.display(),
        image = presenter_png().display(),
    );
    let host = Host::start(dir.path(), &config).await;
    let ok = "vidhook_catch_up_sweeps_total{source=\"docs\",result=\"ok\"}";
    host.wait_for_metric(ok, 1.0).await;
    host.terminate(Duration::from_secs(20)).await;

    std::fs::write(
        folder.join("solar.md"),
        format!("---\ntitle: Solar panels on every school\n---\n{BODY}\n"),
    )
    .unwrap();
    std::fs::write(
        folder.join("later.md"),
        "---\ntitle: Not ready\ndraft: true\n---\nStill writing.\n",
    )
    .unwrap();
    let host = Host::start(dir.path(), &config).await;
    let render = host.wait_for_state("done", Duration::from_secs(60)).await;
    let written = std::fs::read_to_string(folder.join("solar.md")).unwrap();
    assert!(
        written.contains(render["video_url"].as_str().unwrap()),
        "{written}"
    );
    let sweeps = host.metric(ok).await;
    host.wait_for_metric(ok, sweeps + 2.0).await;
    assert_eq!(host.renders().await.len(), 1, "{}", host.logs());
}

/// A malformed item in the listing (no id) is skipped with a log line; the missed publish listed
/// after it is still rendered, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_listed_item_does_not_stop_the_sweep() {
    for kind in [Kind::Ghost, Kind::Strapi, Kind::Contentful] {
        let dir = tempfile::tempdir().unwrap();
        let api = CmsApi::start(kind).await;
        api.list_a_broken_item();
        let hook = run_once_and_stop(dir.path(), &api).await;
        assert_eq!(api.publish(&hook, "Solar panels", BODY).await, 0);
        let host = Host::start(dir.path(), &config(dir.path(), &api)).await;
        host.wait_for_state("done", Duration::from_secs(60)).await;
        assert_eq!(host.renders().await.len(), 1, "{kind:?}");
        assert_eq!(
            host.metric(SWEEPS_FAILED).await,
            0.0,
            "{kind:?}: {}",
            host.logs()
        );
        assert!(
            host.logs()
                .contains("catch-up: a listed item is not valid content; skipped"),
            "{kind:?}: {}",
            host.logs()
        );
    }
}
