//! Keeping a finished video. A provider's video link expires (hours to days), so before the
//! write-back the MP4 is copied into our media store, streamed to disk (never held in memory),
//! and two companions are made beside it: captions (`.vtt`, `.srt`) from the narration's cues,
//! timed by the synthesised audio, and a poster (a frame of the video). The CMS then gets our
//! lasting URLs. A link that has already expired is asked for again (`GET` the job), as a
//! provider hands out a fresh one. This is the `keep` step, between `await` and `write_back`; a
//! video that cannot be kept goes on to the write-back with the provider's link.

use std::path::Path;

use serde_json::json;

use super::steps::{advance, Outcome};
use super::{Category, State};
use crate::app::App;
use crate::generation::JobStatus;
use crate::media::PUBLIC_PREFIX;
use crate::store::{RenderRow, Transition};
use crate::tts::captions;

/// What went wrong fetching the provider's MP4.
enum FetchError {
    /// 401/403/404/410: the link is no longer valid (signed URLs expire this way).
    Expired(u16),
    /// Worth another try later (network, 5xx).
    Transient(String),
    /// Will not get better (refused by the guard, too large, not an MP4).
    Permanent(String),
}

/// The keys of a render's kept video and its companions.
struct Keys {
    video: String,
    poster: String,
    vtt: String,
    srt: String,
}

impl Keys {
    fn of(render_id: &str) -> Keys {
        let base = format!("{PUBLIC_PREFIX}{render_id}");
        Keys {
            video: format!("{base}.mp4"),
            poster: format!("{base}.jpg"),
            vtt: format!("{base}.vtt"),
            srt: format!("{base}.srt"),
        }
    }
}

/// The public links of a kept video's companions, as the `keep` step recorded them in the
/// render's provenance (none before it ran, or when it could not make them).
#[derive(Debug, Default)]
pub struct Companions {
    pub poster: Option<String>,
    pub captions_vtt: Option<String>,
}

impl Companions {
    /// Read from a render's stored provenance; `Err` if that is not JSON.
    pub fn of(
        media: &crate::media::MediaStore,
        provenance_json: Option<&str>,
    ) -> serde_json::Result<Companions> {
        let provenance: serde_json::Value = serde_json::from_str(provenance_json.unwrap_or("{}"))?;
        let url = |key: &str| provenance["bundle"][key].as_str().map(|k| media.url(k));
        Ok(Companions {
            poster: url("poster"),
            captions_vtt: url("captions_vtt"),
        })
    }
}

/// The `keep` step: copies the video and makes its companions, then on to the write-back.
pub(super) async fn keep_video(app: &App, render: &RenderRow) -> anyhow::Result<Outcome> {
    let mut provenance: serde_json::Value =
        serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))?;
    if provenance.get("bundle").is_some() {
        return Ok(advance(
            State::WriteBack,
            Transition::default(),
            "kept already",
        ));
    }
    if !app.config.media.keep_videos {
        let detail = "not kept ([media] keep_videos = false): the provider's link is written back";
        return Ok(advance(State::WriteBack, Transition::default(), detail));
    }
    let provider_url = render
        .video_url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("no video url"))?
        .to_string();
    let keys = Keys::of(&render.id);
    let work = app.media.scratch().await?;
    let mp4 = work.path().join("video.mp4");
    let poster = work.path().join("poster.jpg");
    // The local preview's video is already ours: keep it where it is. Only a public video key
    // counts as ours: a link naming our private inputs is fetched like any other (and refused).
    let own_video = app
        .media
        .own_key(&provider_url)
        .filter(|key| key.starts_with(PUBLIC_PREFIX));
    let (video_key, poster_made) = match own_video {
        Some(own) => {
            let own = own.to_string();
            app.media.get_file(&own, &mp4).await?;
            (own, make_poster(&app.ffmpeg, &mp4, &poster).await)
        }
        None => match fetch_with_fresh_link(app, render, &provider_url, &mp4).await {
            Ok(bytes) => {
                let poster_made = make_poster(&app.ffmpeg, &mp4, &poster).await;
                app.media.put_file(&keys.video, &mp4).await?;
                tracing::info!(render = %render.id, bytes, "kept the provider's video");
                (keys.video.clone(), poster_made)
            }
            // The last attempt does not fail the render: its paid video goes out by its link.
            Err(FetchError::Transient(error))
                if render.attempts + 1 >= i64::from(app.config.retry.max_attempts) =>
            {
                return Ok(not_kept(provenance, error));
            }
            Err(FetchError::Transient(error)) => {
                return Ok(Outcome::Retry {
                    to: State::Keep,
                    category: Category::MediaError,
                    error: format!("copying the provider's video: {error}"),
                    delay: None,
                })
            }
            Err(FetchError::Expired(status)) => {
                // Gone at the host (deleted, or a link that expired with no fresh one). Never
                // made again automatically (that would pay twice): reported with the job, and
                // the host's link is still written back.
                let error = format!(
                    "the video of job {} on {} is gone: its link answers {status} and the job \
                     gives no fresh one; it was paid for once and is not made again",
                    render.provider_job_id.as_deref().unwrap_or("?"),
                    render.provider.as_deref().unwrap_or("the provider"),
                );
                return Ok(not_kept(provenance, error));
            }
            Err(FetchError::Permanent(error)) => {
                return Ok(not_kept(provenance, error));
            }
        },
    };
    let mut kept = json!({"provider_video_url": provider_url, "video": video_key});
    match poster_made {
        Ok(()) => {
            app.media.put_file(&keys.poster, &poster).await?;
            kept["poster"] = json!(keys.poster);
        }
        // A video without a poster still plays; say so and go on.
        Err(error) => kept["poster_error"] = json!(error),
    }
    if let Some(cues) = captions::load_cues(&app.media, &render.id).await? {
        app.media
            .put(&keys.vtt, captions::to_vtt(&cues).as_bytes())
            .await?;
        app.media
            .put(&keys.srt, captions::to_srt(&cues).as_bytes())
            .await?;
        kept["captions_vtt"] = json!(keys.vtt);
        kept["captions_srt"] = json!(keys.srt);
    }
    provenance["bundle"] = kept;
    let url = app.media.url(&video_key);
    let set = Transition {
        video_url: Some(url.clone()),
        provenance_json: Some(provenance.to_string()),
        ..Default::default()
    };
    Ok(advance(
        State::WriteBack,
        set,
        format!("kept the video (poster, captions) at {url}"),
    ))
}

/// The video could not be kept and never will be: write back the provider's link (paid for,
/// and better than nothing), saying why in the render's provenance and history.
fn not_kept(mut provenance: serde_json::Value, error: String) -> Outcome {
    tracing::warn!(%error, "the provider's video was not kept; its own link is written back");
    provenance["bundle"] = json!({"error": error});
    let set = Transition {
        provenance_json: Some(provenance.to_string()),
        ..Default::default()
    };
    advance(
        State::WriteBack,
        set,
        format!("not kept ({error}): the provider's link is written back"),
    )
}

/// Downloads `url` to `dest`; if the link has expired, asks the provider for the job again
/// and downloads the fresh link it gives.
async fn fetch_with_fresh_link(
    app: &App,
    render: &RenderRow,
    url: &str,
    dest: &Path,
) -> Result<u64, FetchError> {
    match download(app, url, dest).await {
        Err(FetchError::Expired(status)) => {
            let Some(job) = render.provider_job_id.as_deref() else {
                return Err(FetchError::Expired(status));
            };
            let host = super::provider_steps::host_of(&app.store, &app.hosts, render)
                .await
                .map_err(|err| FetchError::Transient(err.to_string()))?;
            match host.provider.status(job).await {
                Ok(JobStatus::Completed { video_url, .. }) if video_url != url => {
                    download(app, &video_url, dest).await
                }
                Ok(_) => Err(FetchError::Expired(status)),
                Err(err) => Err(FetchError::Transient(format!(
                    "the link expired ({status}) and asking for a fresh one failed: {err}"
                ))),
            }
        }
        other => other,
    }
}

/// Streams `url` (through the outbound guard) into `dest`, checking size and that it is an MP4.
async fn download(app: &App, url: &str, dest: &Path) -> Result<u64, FetchError> {
    use tokio::io::AsyncWriteExt;
    let max = app.config.media.max_video_bytes;
    // Scheme and (for an address literal) the address; names are checked where they resolve.
    let parsed = app
        .guard
        .parse_url(url)
        .map_err(|e| FetchError::Permanent(e.to_string()))?;
    let client = app.guard.client(std::time::Duration::from_secs(600));
    let mut response = client.get(parsed).send().await.map_err(|e| {
        if crate::outbound::is_refusal(&e) {
            FetchError::Permanent(crate::outbound::describe(&e))
        } else {
            FetchError::Transient(crate::outbound::describe(&e))
        }
    })?;
    let status = response.status().as_u16();
    match status {
        200 => {}
        401 | 403 | 404 | 410 => return Err(FetchError::Expired(status)),
        408 | 429 | 500..=599 => return Err(FetchError::Transient(format!("answered {status}"))),
        _ => return Err(FetchError::Permanent(format!("answered {status}"))),
    }
    if response.content_length().is_some_and(|len| len > max) {
        return Err(FetchError::Permanent(format!("larger than {max} bytes")));
    }
    let io = |e: std::io::Error| FetchError::Transient(e.to_string());
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut written: u64 = 0;
    let mut head = Vec::with_capacity(12);
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        FetchError::Transient(format!(
            "the video broke off: {}",
            crate::outbound::describe(&e)
        ))
    })? {
        written += chunk.len() as u64;
        if written > max {
            return Err(FetchError::Permanent(format!("larger than {max} bytes")));
        }
        if head.len() < 12 {
            head.extend(chunk.iter().take(12 - head.len()));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    if head.get(4..8) != Some(b"ftyp") {
        return Err(FetchError::Permanent(
            "the provider's video is not an MP4 (no ftyp box)".into(),
        ));
    }
    Ok(written)
}

/// A JPEG of the frame one second in (or the first, for a shorter video).
async fn make_poster(ffmpeg: &str, video: &Path, poster: &Path) -> Result<(), String> {
    let mut last_error = String::new();
    for seek in ["1", "0"] {
        let output = crate::children::command(ffmpeg)
            .args(["-nostdin", "-y", "-loglevel", "error", "-ss", seek, "-i"])
            .arg(video)
            .args(["-frames:v", "1", "-q:v", "3"])
            .arg(poster)
            .output()
            .await
            .map_err(|e| format!("cannot start {ffmpeg}: {e}"))?;
        let made = tokio::fs::metadata(poster).await.is_ok_and(|m| m.len() > 0);
        if output.status.success() && made {
            return Ok(());
        }
        last_error = String::from_utf8_lossy(&output.stderr).trim().to_string();
    }
    // ffmpeg's stderr names local paths: the log gets it, the render's error does not.
    tracing::warn!(stderr = %last_error, "ffmpeg made no poster");
    Err("ffmpeg made no poster from the video; the service log has its output".into())
}
