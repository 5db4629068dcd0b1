//! End to end: the real `vidhook` binary, real plugin component, real espeak-ng and SQLite, a
//! loopback OmniHuman contract server and a loopback CMS.

mod support;

use std::time::Duration;

use support::seedance::{Fault, Seedance};
use support::{cms::Cms, now_secs, omnihuman_config, published, Host};

const BODY_HTML: &str = "<p>Our spring collection is here. It is made from recycled fibres.</p>\
    <p>Visit a store near you this weekend.</p>";

#[tokio::test(flavor = "multi_thread")]
async fn signed_publish_becomes_a_video_written_back_once() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    // Two 429s with Retry-After: provably not created, so retried with the same key. (A 5xx may
    // come after the job was billed: tests/paid_once.rs shows it is never resubmitted.)
    for _ in 0..2 {
        seedance.push_fault(Fault::RateLimited {
            retry_after_secs: 1,
        });
    }
    let cms = Cms::start().await;
    // Polling every 10 minutes: within this test, only the provider's webhook can finish the job.
    let host = Host::start(
        dir.path(),
        &omnihuman_config(dir.path(), &seedance, &cms, true, 600, 30),
    )
    .await;

    let body = published("post-1", "Spring collection", BODY_HTML);
    let response = host.post_signed("blog", "msg_1", now_secs(), &body).await;
    assert_eq!(response.status(), 202);
    let accepted: serde_json::Value = response.json().await.unwrap();
    let event_id = accepted["event_id"].as_str().unwrap().to_string();

    let written = cms.wait_for_write_backs(1, Duration::from_secs(90)).await;
    assert_eq!(written.len(), 1, "logs:\n{}", host.logs());
    let jobs = seedance.jobs();
    assert_eq!(jobs.len(), 1, "exactly one paid generation");
    let job = &jobs[0];
    assert_eq!(written[0]["data"]["id"], "post-1");
    assert_eq!(written[0]["data"]["field"], "video_url");
    // The provider's MP4, kept in our media store: the CMS gets a link that does not expire.
    let kept = written[0]["data"]["video_url"].as_str().unwrap();
    assert!(
        kept.starts_with(&format!("{}/media/videos/", host.url)),
        "{kept}"
    );
    let bytes = reqwest::get(kept).await.unwrap().bytes().await.unwrap();
    assert_eq!(
        bytes.as_ref(),
        support::seedance::sample_mp4().await.as_slice()
    );
    assert!(
        job.audio_seconds > 1.0 && job.audio_seconds <= 60.0,
        "{}",
        job.audio_seconds
    );
    assert_eq!(
        seedance.webhook_statuses(),
        vec![200],
        "the per-render webhook was accepted"
    );

    // Three calls (429, 429, accepted), all with the render's one Idempotency-Key.
    let attempts = seedance.attempts();
    assert_eq!(
        attempts.iter().map(|a| a.1).collect::<Vec<_>>(),
        vec![429, 429, 200]
    );
    assert!(attempts
        .iter()
        .all(|a| a.0.is_some() && a.0 == job.idempotency_key));

    let render = host.wait_for_state("done", Duration::from_secs(10)).await;
    assert_eq!(render["provider_job_id"], job.id.as_str());
    // Provenance: content, plugin digest and usage, WIT and template versions, voice, model.
    let provenance: serde_json::Value =
        serde_json::from_str(render["provenance_json"].as_str().unwrap()).unwrap();
    assert_eq!(provenance["content"]["id"], "post-1");
    assert_eq!(provenance["wit"], "vidhook:plugin@0.1.2");
    assert_eq!(provenance["plugins"][0]["plugin"], "presenter@0.1.0");
    assert_eq!(
        provenance["plugins"][0]["digest"].as_str().unwrap().len(),
        64
    );
    assert!(provenance["plugins"][0]["usage"]["fuel"].as_u64().unwrap() > 0);
    assert_eq!(provenance["templates"]["script"], 1);
    assert_eq!(provenance["voice"], "espeak-ng:en-us");
    assert_eq!(provenance["provider"]["model"], "omnihuman-v1.5");

    // The same delivery again: 200, same event, nothing new.
    let again = host.post_signed("blog", "msg_1", now_secs(), &body).await;
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<serde_json::Value>().await.unwrap()["event_id"],
        event_id.as_str()
    );
    // The CMS re-fires publish after our write-back (new delivery id, same content): no new render.
    let echo = host.post_signed("blog", "msg_2", now_secs(), &body).await;
    assert_eq!(echo.status(), 200);
    assert_eq!(
        echo.json::<serde_json::Value>().await.unwrap()["status"],
        "duplicate"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(host.renders().await.len(), 1);
    assert_eq!(seedance.jobs().len(), 1);
    assert_eq!(cms.received().len(), 1);

    // The workspace's figures: the render's credits in the list and detail, today's spend.
    let page = host.api("/api/v1/renders").await;
    assert_eq!(page["items"][0]["credits"], 960, "{page:#}");
    let id = page["items"][0]["id"].as_str().unwrap();
    assert_eq!(host.render(id).await["credits"], 960);
    let costs = host.api("/api/v1/costs?days=1").await;
    assert_eq!(costs["spent_today"], 960, "{costs:#}");
    assert_eq!(costs["days"][0]["by_source"]["blog"], 960, "{costs:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_mid_job_the_host_resumes_without_redoing_steps() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(true).await;
    let cms = Cms::start().await;
    // No webhooks: completion is found by polling (the fallback), every second.
    let config = omnihuman_config(dir.path(), &seedance, &cms, false, 1, 30);
    let host = Host::start(dir.path(), &config).await;
    let body = published("post-2", "Autumn sale", BODY_HTML);
    assert_eq!(
        host.post_signed("blog", "msg_a", now_secs(), &body)
            .await
            .status(),
        202
    );

    let waiting = host.wait_for_state("await", Duration::from_secs(60)).await;
    let render_id = waiting["id"].as_str().unwrap().to_string();
    host.kill().await;
    seedance.release().await;

    let host = Host::start(dir.path(), &config).await;
    let written = cms.wait_for_write_backs(1, Duration::from_secs(60)).await;
    assert_eq!(written.len(), 1, "logs:\n{}", host.logs());
    assert_eq!(
        seedance.jobs().len(),
        1,
        "not submitted again after the restart"
    );

    let detail = host.render(&render_id).await;
    assert_eq!(detail["render"]["state"], "done");
    let ok_steps: Vec<&str> = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["outcome"] == "ok")
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        ok_steps,
        [
            "plan",
            "speak",
            "check",
            "submit",
            "await",
            "keep",
            "write_back"
        ],
        "each step once"
    );

    // `vidhook jobs` lists it with state and timings; `jobs show` has every step.
    let config_path = dir.path().join("vidhook.toml");
    let listing = support::vidhook(&["jobs", "--config", config_path.to_str().unwrap()]).await;
    let line = listing
        .lines()
        .find(|l| l.contains(&render_id))
        .expect("the render is listed");
    assert!(
        line.contains(" done ") && line.contains("post-2"),
        "{listing}"
    );
    let shown = support::vidhook(&[
        "jobs",
        "show",
        &render_id,
        "--config",
        config_path.to_str().unwrap(),
    ])
    .await;
    assert!(
        shown.contains("write_back") && shown.contains("Idempotency-Key"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_writes_a_real_mp4_as_long_as_the_narration() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_vidhook"))
        .args(["demo", "--dir"])
        .arg(&demo_dir)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let article = std::fs::read_to_string(demo_dir.join("content/welcome.md")).unwrap();
    let url_line = article
        .lines()
        .find(|l| l.starts_with("video_url: "))
        .expect("video_url in front matter");
    let video_key = url_line
        .split("/media/")
        .nth(1)
        .unwrap()
        .trim_end_matches('"');
    let video = demo_dir.join("data/media").join(video_key);
    let audio_dir = demo_dir.join("data/media/audio");
    // The narration (its caption cues lie beside it).
    let audio = std::fs::read_dir(&audio_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wav"))
        .unwrap();
    let audio_seconds = vidhook::media::probe::audio_info(std::fs::read(audio).unwrap())
        .unwrap()
        .seconds;

    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_type",
            "-of",
            "json",
        ])
        .arg(&video)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let kinds: Vec<&str> = info["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["codec_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["video", "audio"]);
    let video_seconds: f64 = info["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (video_seconds - audio_seconds).abs() <= 0.2,
        "video {video_seconds} s vs audio {audio_seconds} s"
    );
    assert!(
        stdout.contains("write_back"),
        "progress is shown step by step:\n{stdout}"
    );
}
