//! Media that lasts: the provider's MP4 is copied into our store before its signed link expires
//! (asking the provider for a fresh link when the first has expired), served with Range support,
//! with a poster and captions beside it; a video that cannot be copied still reaches the CMS by
//! the provider's own link. Real binary, real ffmpeg, the OmniHuman contract server's real MP4.

mod support;

use std::time::Duration;

use support::cms::Cms;
use support::seedance::{sample_mp4, Seedance};
use support::{now_secs, omnihuman_config, published, Host};

const BODY_HTML: &str = "<p>Our spring collection is here. It is made from recycled fibres.</p>\
    <p>Visit a store near you this weekend.</p>";

/// Polling every second, no webhooks: the job read is where the video link comes from.
async fn start(dir: &std::path::Path, seedance: &Seedance, cms: &Cms, fields: &str) -> Host {
    let config = omnihuman_config(dir, seedance, cms, false, 1, 30) + fields;
    Host::start(dir, &config).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_video_is_kept_with_poster_and_captions_even_when_its_first_link_has_expired() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    // The link the job read hands out has already expired, as a CDN's signed link does later.
    seedance.expire_next_links(1);
    let cms = Cms::start().await;
    let fields = "\n[sources.blog.fields]\ncaptions = \"captions\"\nposter = \"poster\"\n";
    let host = start(dir.path(), &seedance, &cms, fields).await;
    let body = published("post-1", "Spring collection", BODY_HTML);
    assert_eq!(
        host.post_signed("blog", "msg_1", now_secs(), &body)
            .await
            .status(),
        202
    );
    let written = cms.wait_for_write_backs(3, Duration::from_secs(90)).await;
    assert_eq!(written.len(), 3, "{}", host.logs());
    let job = &seedance.jobs()[0];
    // 403 for the expired link, then the fresh one from reading the job again.
    assert_eq!(
        seedance.downloads(),
        [(job.id.clone(), 403), (job.id.clone(), 200)]
    );
    let url = |field: &str| {
        written
            .iter()
            .find(|w| w["data"]["field"] == field)
            .map(|w| w["data"]["video_url"].as_str().unwrap().to_string())
            .unwrap()
    };
    let video = url("video_url");
    assert!(
        video.starts_with(&format!("{}/media/videos/", host.url)),
        "{video}"
    );
    let client = reqwest::Client::new();
    let whole = client
        .get(&video)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(whole.as_ref(), sample_mp4().await.as_slice());
    // Players seek with Range requests.
    let part = client
        .get(&video)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &whole[..100]);
    let poster = client.get(url("poster")).send().await.unwrap();
    assert!(poster
        .bytes()
        .await
        .unwrap()
        .starts_with(&[0xFF, 0xD8, 0xFF]));
    let captions = client.get(url("captions")).send().await.unwrap();
    let vtt = captions.text().await.unwrap();
    assert!(
        vtt.starts_with("WEBVTT") && vtt.contains("spring collection"),
        "{vtt}"
    );
    let srt_url = url("captions").replace(".vtt", ".srt");
    let srt = client
        .get(srt_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(srt.starts_with("1\n00:00:00,"), "{srt}");

    let render = host.wait_for_state("done", Duration::from_secs(10)).await;
    let provenance: serde_json::Value =
        serde_json::from_str(render["provenance_json"].as_str().unwrap()).unwrap();
    assert!(provenance["bundle"]["provider_video_url"]
        .as_str()
        .unwrap()
        .starts_with(seedance.url.trim_end_matches("/v1")));
    assert_eq!(seedance.jobs().len(), 1, "paid once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_video_that_cannot_be_kept_still_reaches_the_cms_by_the_providers_link() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    // Every link has expired by the time it arrives: there is nothing to copy.
    seedance.expire_next_links(1000);
    let cms = Cms::start().await;
    let host = start(dir.path(), &seedance, &cms, "").await;
    let body = published("post-2", "Spring collection", BODY_HTML);
    host.post_signed("blog", "msg_2", now_secs(), &body).await;
    let written = cms.wait_for_write_backs(1, Duration::from_secs(90)).await;
    assert_eq!(written.len(), 1, "{}", host.logs());
    let link = written[0]["data"]["video_url"].as_str().unwrap();
    assert!(
        link.starts_with(seedance.url.trim_end_matches("/v1")),
        "{link}"
    );
    let render = host.wait_for_state("done", Duration::from_secs(10)).await;
    let provenance: serde_json::Value =
        serde_json::from_str(render["provenance_json"].as_str().unwrap()).unwrap();
    let error = provenance["bundle"]["error"].as_str().unwrap();
    assert!(error.contains("403"), "{error}");
    assert_eq!(seedance.jobs().len(), 1, "paid once");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_s3_bucket_inputs_go_by_presigned_urls_and_the_lasting_link_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(dir.path()).await;
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let fields = "\n[sources.blog.fields]\nposter = \"poster\"\n".to_string() + &s3.config();
    let host = start(dir.path(), &seedance, &cms, &fields).await;
    let body = published("post-s3", "Spring collection", BODY_HTML);
    host.post_signed("blog", "msg_s3", now_secs(), &body).await;
    let written = cms.wait_for_write_backs(2, Duration::from_secs(90)).await;
    assert_eq!(written.len(), 2, "{}", host.logs());
    let render = host.wait_for_state("done", Duration::from_secs(10)).await;
    let id = render["id"].as_str().unwrap();

    // Everything is in the bucket, nothing in the local folder.
    let keys = s3.keys().await;
    for key in [
        format!("vh/audio/{id}.wav"),
        format!("vh/audio/{id}.cues.json"),
        format!("vh/videos/{id}.mp4"),
        format!("vh/videos/{id}.jpg"),
        format!("vh/videos/{id}.vtt"),
    ] {
        assert!(keys.contains(&key), "{key} not in {keys:?}");
    }
    assert!(!dir.path().join("data/media/audio").exists());
    // The provider fetched the narration from the bucket by a presigned URL, not from us.
    let job = &seedance.jobs()[0];
    assert!(
        job.audio_url
            .starts_with(&format!("{}/{}/vh/audio/", s3.url, support::s3::BUCKET))
            && job.audio_url.contains("X-Amz-Signature="),
        "{}",
        job.audio_url
    );

    // The CMS got our lasting link; it redirects to a fresh presigned URL that serves Range.
    let video = written
        .iter()
        .find(|w| w["data"]["field"] == "video_url")
        .unwrap()["data"]["video_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        video.starts_with(&format!("{}/media/videos/", host.url)),
        "{video}"
    );
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = no_redirects.get(&video).send().await.unwrap();
    assert_eq!(answer.status(), 302);
    let location = answer.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("X-Amz-Expires="), "{location}");
    let whole = reqwest::get(&video).await.unwrap().bytes().await.unwrap();
    assert_eq!(whole.as_ref(), sample_mp4().await.as_slice());
    let part = reqwest::Client::new()
        .get(&location)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.unwrap().as_ref(), &whole[..100]);
}

/// Runs a one-row batch on source `blog` and returns the row's render id.
async fn batch_one_row(dir: &std::path::Path, config: &str) -> String {
    let rows = dir.join("rows.csv");
    std::fs::write(
        &rows,
        "id,title,body\nr1,A row,A body to narrate for the row.\n",
    )
    .unwrap();
    let out = support::vidhook(&[
        "--config",
        config,
        "batch",
        rows.to_str().unwrap(),
        "--source",
        "blog",
        "--yes",
    ])
    .await;
    assert!(out.contains("results:"), "{out}");
    let results = std::fs::read_to_string(dir.join("rows.csv.results.csv")).unwrap();
    let render = results.lines().nth(1).unwrap().split(',').nth(3).unwrap();
    render.to_string()
}

/// `vidhook prune --older-than-days DAYS [--dry-run]` with `config`; what it printed.
async fn prune(config: &str, days: &str, dry: bool) -> String {
    let mut args = vec!["--config", config, "prune", "--older-than-days", days];
    if dry {
        args.push("--dry-run");
    }
    support::vidhook(&args).await
}

/// Sets a file's modification time `days` ago (as if it had been there that long).
fn age(path: &std::path::Path, days: u32) {
    let status = std::process::Command::new("touch")
        .arg("-d")
        .arg(format!("{days} days ago"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_removes_old_media_but_not_what_the_entry_shows() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let host = start(dir.path(), &seedance, &cms, "").await;
    // Two versions of one article: the entry shows the second one's video.
    host.post_signed(
        "blog",
        "msg_v1",
        now_secs(),
        &published("post-r", "Spring", BODY_HTML),
    )
    .await;
    cms.wait_for_write_backs(1, Duration::from_secs(90)).await;
    let second = "<p>Our summer collection is here.</p>";
    host.post_signed(
        "blog",
        "msg_v2",
        now_secs(),
        &published("post-r", "Summer", second),
    )
    .await;
    let written = cms.wait_for_write_backs(2, Duration::from_secs(90)).await;
    assert_eq!(written.len(), 2, "{}", host.logs());
    let first_video = written[0]["data"]["video_url"]
        .as_str()
        .unwrap()
        .to_string();
    let shown_video = written[1]["data"]["video_url"]
        .as_str()
        .unwrap()
        .to_string();
    let media = dir.path().join("data/media");
    let mut files = Vec::new();
    // espeak-ng's chunks are not cached (`speech/` is for hosted engines).
    assert!(!media.join("speech").exists());
    for folder in ["audio", "videos"] {
        for entry in std::fs::read_dir(media.join(folder)).unwrap() {
            let path = entry.unwrap().path();
            age(&path, 40);
            files.push(path);
        }
    }
    let config = dir.path().join("vidhook.toml");
    let config = config.to_str().unwrap();
    let dry = prune(config, "30", true).await;
    // One line per bundle: the superseded video's MP4, poster and captions go together.
    let first_id = first_video
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".mp4");
    assert!(
        dry.contains(&format!("would remove videos/{first_id}.{{"))
            && dry.contains("nothing uses it"),
        "{dry}"
    );
    assert!(
        files.iter().all(|f| f.exists()),
        "a dry run removes nothing"
    );
    let done = prune(config, "30", false).await;
    assert!(
        done.contains("kept 4"),
        "the shown video, poster and captions: {done}"
    );
    let status = |url: String| async move { reqwest::get(url).await.unwrap().status().as_u16() };
    assert_eq!(status(shown_video.clone()).await, 200);
    assert_eq!(status(shown_video.replace(".mp4", ".jpg")).await, 200);
    assert_eq!(status(first_video.clone()).await, 404, "{done}");
    assert_eq!(status(first_video.replace(".mp4", ".vtt")).await, 404);
    let left: Vec<_> = files.iter().filter(|f| f.exists()).collect();
    assert_eq!(left.len(), 4, "{left:?}");
    assert!(left.iter().all(|f| f.starts_with(media.join("videos"))));
    // Young media is left alone.
    let again = prune(config, "50", false).await;
    assert!(again.contains("removed 0 file(s)"), "{again}");
}

/// One frame at `seconds` as 8-bit grey pixels.
fn frame(video: &std::path::Path, seconds: f64) -> Vec<u8> {
    let out = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-loglevel",
            "error",
            "-ss",
            &format!("{seconds:.3}"),
            "-i",
        ])
        .arg(video)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"])
        .output()
        .unwrap();
    assert!(
        !out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Mean absolute difference of two frames.
fn difference(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

#[tokio::test(flavor = "multi_thread")]
async fn the_preview_burns_in_captions_at_even_dimensions_faststart_and_the_audios_length() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    // An odd-sized photo: the video must still have even dimensions.
    let photo = dir.path().join("odd.png");
    let made = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"])
        .args(["color=c=0x336699:size=601x777", "-frames:v", "1"])
        .arg(&photo)
        .status()
        .unwrap();
    assert!(made.success());
    let config = format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"

[provider]
kind = "preview"
burn_captions = true

[outbound]
allow_private = ["127.0.0.0/8"]

[sources.blog]
cms = "standard-webhooks"
secret = "{secret}"
writeback_url = "{cms}"
presenter_image = "{photo}"
"#,
        data = dir.path().join("data").display(),
        secret = support::SECRET,
        cms = cms.url,
        photo = photo.display(),
    );
    let host = Host::start(dir.path(), &config).await;
    let body = published(
        "post-cc",
        "Captions",
        "<p>The first sentence is spoken here.</p><p>A second paragraph follows it.</p>",
    );
    host.post_signed("blog", "msg_cc", now_secs(), &body).await;
    let render = host.wait_for_state("done", Duration::from_secs(90)).await;
    let video_url = render["video_url"].as_str().unwrap();
    let key = video_url.split("/media/").nth(1).unwrap();
    let video = dir.path().join("data/media").join(key);

    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=width,height,pix_fmt:format=duration",
            "-of",
            "json",
        ])
        .arg(&video)
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap();
    let stream = &info["streams"][0];
    assert_eq!(stream["height"], 720);
    assert_eq!(stream["width"].as_u64().unwrap() % 2, 0, "{stream}");
    assert_eq!(stream["pix_fmt"], "yuv420p");
    let duration: f64 = info["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let audio = render["audio_seconds"].as_f64().unwrap();
    assert!(
        (duration - audio).abs() <= 0.2,
        "video {duration} s, audio {audio} s"
    );
    // Faststart: the index (moov) comes before the media data (mdat).
    let bytes = std::fs::read(&video).unwrap();
    let at = |atom: &[u8]| bytes.windows(4).position(|w| w == atom).unwrap();
    assert!(at(b"moov") < at(b"mdat"), "moov after mdat");

    // The captions are in the picture: the picture changes from one cue to the next, far more
    // than between two moments of one cue (encoding noise).
    let vtt = reqwest::get(video_url.replace(".mp4", ".vtt").replace("preview-", ""))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let seconds = |stamp: &str| -> f64 {
        let parts: Vec<f64> = stamp.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    let cues: Vec<(f64, f64)> = vtt
        .lines()
        .filter_map(|l| l.split_once(" --> "))
        .map(|(a, b)| (seconds(a), seconds(b)))
        .collect();
    assert!(cues.len() >= 2, "{vtt}");
    let first = frame(&video, (cues[0].0 + cues[0].1) / 2.0);
    let (from, to) = cues[1];
    let second = frame(&video, from + (to - from) / 3.0);
    let second_later = frame(&video, from + (to - from) * 2.0 / 3.0);
    let noise = difference(&second, &second_later);
    let caption = difference(&first, &second);
    assert!(
        caption > 0.5 && caption > noise * 5.0,
        "caption {caption:.3} vs encoding noise {noise:.3}"
    );
}

/// Retention keeps a video's files as one bundle: with the local preview provider the video is
/// `videos/preview-{render}.mp4` and its poster and captions `videos/{render}.*`; an entry shows
/// it, so none of them goes. A digest's or batch row's video is kept too (no entry shows it, but
/// a results file or a published digest links to it): here, a batch row's.
#[tokio::test(flavor = "multi_thread")]
async fn retention_keeps_every_file_of_a_bundle_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &support::workspace::config(dir.path(), &cms)).await;
    host.post_signed(
        "blog",
        "msg_bundle",
        now_secs(),
        &published("post-b", "Spring", BODY_HTML),
    )
    .await;
    cms.wait_for_write_backs(1, Duration::from_secs(90)).await;
    let config = dir.path().join("vidhook.toml");
    let config = config.to_str().unwrap();
    batch_one_row(dir.path(), config).await;
    let videos = dir.path().join("data/media/videos");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&videos).unwrap() {
        let path = entry.unwrap().path();
        age(&path, 40);
        files.push(path);
    }
    // Two videos, each with a poster and captions.
    assert!(files.len() >= 8, "{files:?}");
    // The dry run says why each stays.
    let dry = prune(config, "30", true).await;
    assert!(
        dry.contains("would keep videos/preview-") && dry.contains("an entry shows"),
        "{dry}"
    );
    assert!(dry.contains("a batch row's or a digest's video"), "{dry}");
    let done = prune(config, "30", false).await;
    let gone: Vec<_> = files.iter().filter(|f| !f.exists()).collect();
    assert!(
        gone.is_empty(),
        "in-use files were pruned: {gone:?}\n{done}"
    );
}

/// The same bundles on an S3 bucket (a real S3-compatible server): a superseded video goes with
/// its poster and captions; the video the entry shows and a batch row's stay, the row's only for
/// `[media] linked_days`.
#[tokio::test(flavor = "multi_thread")]
async fn retention_on_s3_prunes_whole_bundles_and_keeps_those_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::s3::S3Server::start(dir.path()).await;
    let seedance = Seedance::start(false).await;
    let cms = Cms::start().await;
    let host = start(dir.path(), &seedance, &cms, &s3.config()).await;
    for (message, title, body) in [
        ("msg_s3_v1", "Spring", BODY_HTML),
        (
            "msg_s3_v2",
            "Summer",
            "<p>Our summer collection is here.</p>",
        ),
    ] {
        let before = cms.received().len();
        host.post_signed(
            "blog",
            message,
            now_secs(),
            &published("post-s", title, body),
        )
        .await;
        cms.wait_for_write_backs(before + 1, Duration::from_secs(90))
            .await;
    }
    let written = cms.received();
    let render_of = |w: &serde_json::Value| {
        let url = w["data"]["video_url"].as_str().unwrap();
        let file = url.rsplit('/').next().unwrap();
        file.trim_end_matches(".mp4").to_string()
    };
    let (superseded, shown) = (render_of(&written[0]), render_of(&written[1]));
    let config = dir.path().join("vidhook.toml");
    let config = config.to_str().unwrap();
    let row = batch_one_row(dir.path(), config).await;
    let bundle = |id: &str| ["mp4", "jpg", "vtt"].map(|ext| format!("vh/videos/{id}.{ext}"));
    let keys = s3.keys().await;
    for key in [bundle(&superseded), bundle(&shown), bundle(&row)].concat() {
        assert!(keys.contains(&key), "{key} not in {keys:?}");
    }

    let dry = prune(config, "0", true).await;
    assert!(
        dry.contains("an entry shows") && dry.contains("a batch row's or a digest's video"),
        "{dry}"
    );
    assert_eq!(s3.keys().await, keys, "a dry run removes nothing");
    prune(config, "0", false).await;
    let left = s3.keys().await;
    for key in bundle(&superseded) {
        assert!(!left.contains(&key), "{key} was kept: {left:?}");
    }
    for key in [bundle(&shown), bundle(&row)].concat() {
        assert!(left.contains(&key), "{key} was pruned: {left:?}");
    }

    // Past `linked_days`, a batch row's video is no longer in use; the entry's still is.
    let mut text = std::fs::read_to_string(config).unwrap();
    text.push_str("\n[media]\nlinked_days = 0\n");
    std::fs::write(config, text).unwrap();
    prune(config, "0", false).await;
    let left = s3.keys().await;
    for key in bundle(&row) {
        assert!(!left.contains(&key), "{key} outlived linked_days: {left:?}");
    }
    for key in bundle(&shown) {
        assert!(left.contains(&key), "{key} was pruned: {left:?}");
    }
}
