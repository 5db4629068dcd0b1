//! Scheduled digests (issue #14): a source with `[sources.NAME.digest]` gets one video of what
//! it published since the last digest at each tick of its schedule, read in its time zone. The
//! clock is driven from the test with `vidhook digests tick --at`; the host renders what is
//! queued. After downtime the missed ticks make one digest; two instances running the same tick
//! queue it once.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{presenter_png, vidhook_result, Host};

fn config(dir: &Path) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\nworkers = 2\n\n\
         [sources.news]\ncms = \"markdown\"\nfolder = \"{folder}\"\npresenter_image = \"{image}\"\ncatch_up_secs = 0\n\n\
         [sources.news.digest]\nschedule = \"0 7 * * *\"\ntime_zone = \"Europe/Berlin\"\n",
        data = dir.join("data").display(),
        folder = dir.join("content").display(),
        image = presenter_png().display(),
    )
}

async fn cli(host: &Host, args: &[&str]) -> String {
    let config = host.dir.join("vidhook.toml");
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    let (ok, out) = vidhook_result(&all).await;
    assert!(ok, "vidhook {args:?}:\n{out}\n{}", host.logs());
    out
}

/// Writes and publishes one article; waits for its own video.
async fn publish(host: &Host, name: &str, title: &str) {
    let file = host.dir.join("content").join(format!("{name}.md"));
    std::fs::write(
        &file,
        format!("---\ntitle: {title}\n---\n{title} happened today. People were glad.\n"),
    )
    .unwrap();
    cli(
        host,
        &["publish", "--source", "news", file.to_str().unwrap()],
    )
    .await;
}

/// The digest renders (entry `digest-…`), once every render has settled.
async fn settled_digests(host: &Host) -> Vec<serde_json::Value> {
    let started = Instant::now();
    loop {
        let renders = host.renders().await;
        let settled = renders.iter().all(|r| {
            ["done", "skipped", "failed"].contains(&r["render"]["state"].as_str().unwrap_or(""))
        });
        if settled {
            return renders
                .into_iter()
                .filter(|r| r["entry"].as_str().unwrap_or("").starts_with("digest-"))
                .collect();
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "renders did not settle: {renders:#?}\n{}",
            host.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn tick(host: &Host, at: &str) -> String {
    cli(
        host,
        &[
            "digests", "tick", "--source", "news", "--at", at, "--record",
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_digest_reads_what_was_published_since_the_last_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    let host = Host::start(dir.path(), &config(dir.path())).await;
    // The host's own check starts the schedule (nothing before it is a digest's business).
    let started = Instant::now();
    while cli(&host, &["digests", "list"])
        .await
        .contains("not started")
    {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    publish(&host, "bridge", "The new bridge").await;
    publish(&host, "library", "The library on Sundays").await;
    publish(&host, "market", "The winter market").await;
    assert!(settled_digests(&host).await.is_empty());

    // A rehearsal (no --record) says what the tick would do and changes nothing: the real
    // tick below still queues its digest.
    let rehearsal = cli(
        &host,
        &[
            "digests",
            "tick",
            "--source",
            "news",
            "--at",
            "2030-01-01T05:59:00Z",
        ],
    )
    .await;
    assert!(
        rehearsal.contains("a digest of 3 items would be queued (rehearsal"),
        "{rehearsal}"
    );
    assert!(settled_digests(&host).await.is_empty());

    // 05:59Z is 06:59 in Berlin: the latest tick is the day before's 07:00 there. Every tick
    // between the schedule's start and it was missed: one digest.
    let out = tick(&host, "2030-01-01T05:59:00Z").await;
    assert!(
        out.contains("tick 2029-12-31T07:00+01:00[Europe/Berlin]: digest of 3 items queued"),
        "{out}"
    );
    let digests = settled_digests(&host).await;
    assert_eq!(digests.len(), 1, "{digests:#?}");
    assert_eq!(digests[0]["render"]["state"], "done", "{digests:#?}");
    let script = digests[0]["render"]["plan_json"]
        .as_str()
        .unwrap()
        .to_string();
    for title in [
        "The new bridge.",
        "The library on Sundays.",
        "The winter market.",
    ] {
        assert!(script.contains(title), "{script}");
    }

    // The same tick again, and a tick with nothing new: no digest.
    assert!(tick(&host, "2030-01-01T05:59:00Z")
        .await
        .contains("no new tick"));
    let out = tick(&host, "2030-01-01T06:00:30Z").await;
    assert!(
        out.contains("nothing published since the last digest"),
        "{out}"
    );

    // Three days of ticks missed: one digest, of what came after the last one.
    publish(&host, "snow", "Snow in the park").await;
    let out = tick(&host, "2030-01-04T08:00:00Z").await;
    assert!(
        out.contains("tick 2030-01-04T07:00+01:00[Europe/Berlin]: digest of 1 items queued"),
        "{out}"
    );
    let digests = settled_digests(&host).await;
    assert_eq!(digests.len(), 2, "{digests:#?}");

    // Two instances run the same tick at once: one digest.
    publish(&host, "choir", "The choir sings").await;
    let at = "2030-01-05T06:30:00Z";
    let config_path = host.dir.join("vidhook.toml");
    let args = [
        "--config",
        config_path.to_str().unwrap(),
        "digests",
        "tick",
        "--source",
        "news",
        "--at",
        at,
        "--record",
    ];
    let (a, b) = tokio::join!(vidhook_result(&args), vidhook_result(&args));
    assert!(a.0 && b.0, "{}\n{}", a.1, b.1);
    let digests = settled_digests(&host).await;
    assert_eq!(digests.len(), 3, "{}\n{}\n{digests:#?}", a.1, b.1);
    assert!(digests.iter().all(|d| d["render"]["state"] == "done"));
}

/// A digest has no CMS entry to show it: its video (with captions and poster) is announced to the
/// receiver `[digest.deliver]` names, as one signed Standard Webhooks message that survives the
/// receiver failing once, and `vidhook digests show` lists it with its video.
#[tokio::test(flavor = "multi_thread")]
async fn a_finished_digest_is_delivered_to_its_receiver_and_listed() {
    use std::sync::{Arc, Mutex};
    type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;
    let received: Received = Arc::default();
    let receiver = {
        let received = received.clone();
        axum::Router::new().route(
            "/digests",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let received = received.clone();
                    async move {
                        let mut all = received.lock().unwrap();
                        all.push((headers, body.to_vec()));
                        // The first delivery meets a receiver that is down.
                        if all.len() == 1 {
                            axum::http::StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            axum::http::StatusCode::NO_CONTENT
                        }
                    }
                },
            ),
        )
    };
    let url = support::serve(receiver).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    let config = format!(
        "{}\n[sources.news.digest.deliver]\nurl = \"{url}/digests\"\nsecret = \"{}\"\n\n\
         [retry]\nbase_delay_ms = 50\nmax_delay_ms = 300\n\n\
         [outbound]\nallow_private = [\"127.0.0.0/8\"]\n",
        config(dir.path()),
        support::SECRET
    );
    let host = Host::start(dir.path(), &config).await;
    let empty = cli(&host, &["digests", "show", "--source", "news"]).await;
    assert!(empty.contains("no digests of news yet"), "{empty}");
    tick(&host, "2030-01-01T05:00:00Z").await;
    publish(&host, "bridge", "The new bridge").await;
    publish(&host, "market", "The winter market").await;
    tick(&host, "2030-01-02T07:00:00Z").await;
    let digests = settled_digests(&host).await;
    assert_eq!(digests.len(), 1, "{digests:#?}\n{}", host.logs());
    assert_eq!(digests[0]["render"]["state"], "done", "{digests:#?}");
    let video = digests[0]["render"]["video_url"]
        .as_str()
        .unwrap()
        .to_string();

    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 2, "one refused, one delivered");
    let (headers, body) = &received[1];
    let secret = vidhook::cms::standard_webhooks::Secret::parse(support::SECRET).unwrap();
    let id = secret
        .verify(headers, body, 300, support::now_secs())
        .expect("signed with the receiver's secret");
    assert_eq!(
        received[0].0["webhook-id"], headers["webhook-id"],
        "a retry is the same message (a receiver dedupes it)"
    );
    assert!(id.starts_with("vidhook_digest-"), "{id}");
    let message: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(message["type"], "digest.ready", "{message:#}");
    assert_eq!(message["data"]["video_url"], video.as_str(), "{message:#}");
    assert!(
        message["data"]["captions_url"]
            .as_str()
            .is_some_and(|u| u.ends_with(".vtt")),
        "{message:#}"
    );
    let titles: Vec<&str> = message["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["The new bridge", "The winter market"],
        "{message:#}"
    );

    let shown = cli(&host, &["digests", "show", "--source", "news"]).await;
    assert!(shown.starts_with("TICK"), "{shown}");
    assert!(
        shown.contains("2030-01-02T07:00+01:00[Europe/Berlin]") && shown.contains(&video),
        "{shown}"
    );
    assert!(
        shown.lines().nth(1).unwrap().contains("     2  "),
        "two items: {shown}"
    );
}
