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
