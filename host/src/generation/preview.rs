//! The local preview provider: a real MP4 of the presenter photo with the narration, made by
//! ffmpeg, at no cost. It fetches its inputs through the same URLs a hosted provider would, so a
//! preview exercises the whole path. The "job" is done when `submit` returns. The MP4 is H.264
//! (yuv420p, even width and height as players require) + AAC, with its index at the front
//! (faststart) so it plays while it downloads, exactly as long as the narration; optionally with
//! the narration's captions burned in, from the same cues as the `.vtt` file.

use std::time::Duration;

use super::{Following, JobStatus, Provider, ProviderError, SubmitRequest, Submitted};
use crate::checks::{CheckError, Fetcher};
use crate::media::probe::ImageFormat;
use crate::media::MediaStore;

pub struct Preview {
    ffmpeg: String,
    media: MediaStore,
    inputs: Fetcher,
    burn_captions: bool,
}

impl Preview {
    /// `inputs` fetches the image and audio as the input checks do (our own media from the
    /// store, anything else through the outbound guard).
    pub fn new(ffmpeg: String, media: MediaStore, inputs: Fetcher) -> anyhow::Result<Self> {
        Ok(Preview {
            ffmpeg,
            media,
            inputs,
            burn_captions: false,
        })
    }

    /// Burns the narration's captions into the video (when the render has cues).
    pub fn with_captions(mut self, burn: bool) -> Self {
        self.burn_captions = burn;
        self
    }

    /// The video filter: scaled to the resolution's height with an even width, 4:2:0, and the
    /// captions of `srt` burned in when given.
    fn video_filter(height: u32, srt: Option<&std::path::Path>) -> String {
        let mut filter = format!("scale=-2:{height},format=yuv420p");
        if let Some(srt) = srt {
            // The path goes inside a filter argument: quoted, and our temp paths hold no quote.
            filter.push_str(&format!(
                ",subtitles='{}':force_style='FontSize=22,Outline=2'",
                srt.display()
            ));
        }
        filter
    }

    fn video_key(job_id: &str) -> String {
        format!("videos/{job_id}.mp4")
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, ProviderError> {
        self.inputs.get("input", url).await.map_err(rejected)
    }
}

impl Preview {
    /// The $0 preview shown to editors before a render is paid for: made as [`Provider::submit`]
    /// makes a video, but kept under the private [`crate::media::PREVIEW_PREFIX`] (signed links
    /// only). Returns its key.
    pub async fn approval_preview(&self, request: &SubmitRequest) -> Result<String, ProviderError> {
        let key = format!("{}{}.mp4", crate::media::PREVIEW_PREFIX, request.render_id);
        self.make(request, &key).await?;
        Ok(key)
    }

    /// The preview video of `request`, stored at `key`. Each input is fetched once and checked
    /// as the check step checks it; ffmpeg then reads exactly these bytes from a local file,
    /// its container format forced, no protocol but `file` allowed: a "photo" that is really an
    /// HLS playlist naming local files or URLs is refused by the check, and could not be
    /// followed if it were not.
    async fn make(&self, request: &SubmitRequest, key: &str) -> Result<(), ProviderError> {
        let image = self.fetch(&request.image_url).await?;
        let image_format = match crate::checks::image_ok(&image).map_err(rejected)?.format {
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Png => "png",
        };
        let audio = self.fetch(&request.audio_url).await?;
        let (audio_info, _) = crate::checks::audio_ok(
            audio.clone(),
            request.resolution,
            request.resolution.max_audio_seconds(),
        )
        .await
        .map_err(rejected)?;
        let audio_demuxer = match audio_info.format {
            "wav" => "wav",
            "mp3" => "mp3",
            _ => "mov",
        };
        let io = |e: std::io::Error| ProviderError::Unavailable(e.to_string());
        // Removed when dropped, whichever way this returns.
        let work = tempfile::Builder::new()
            .prefix("vidhook-preview-")
            .tempdir()
            .map_err(io)?;
        let image_path = work.path().join(format!("image.{image_format}"));
        let audio_path = work.path().join("audio");
        let out_path = work.path().join("out.mp4");
        tokio::fs::write(&image_path, &image).await.map_err(io)?;
        tokio::fs::write(&audio_path, &audio).await.map_err(io)?;
        let srt = match self.burn_captions {
            true => self.captions(&request.render_id, work.path()).await,
            false => None,
        };
        let scale = Self::video_filter(request.resolution.height(), srt.as_deref());
        let seconds = format!("{:.3}", request.audio_seconds);
        let output = crate::children::command(&self.ffmpeg)
            .args(["-nostdin", "-y", "-loglevel", "error"])
            .args([
                "-protocol_whitelist",
                "file",
                "-f",
                "image2",
                "-pattern_type",
                "none",
            ])
            .args(["-loop", "1", "-framerate", "25", "-i"])
            .arg(&image_path)
            .args(["-protocol_whitelist", "file", "-f", audio_demuxer, "-i"])
            .arg(&audio_path)
            .args([
                "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast",
            ])
            .args([
                "-tune",
                "stillimage",
                "-vf",
                &scale,
                "-c:a",
                "aac",
                "-b:a",
                "128k",
            ])
            .args(["-t", &seconds, "-movflags", "+faststart"])
            .arg(&out_path)
            .output()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("cannot start {}: {e}", self.ffmpeg)));
        match output {
            Ok(out) if out.status.success() => {
                let video = tokio::fs::read(&out_path).await.map_err(io)?;
                self.media
                    .put(key, &video)
                    .await
                    .map_err(|e| ProviderError::Unavailable(e.to_string()))
            }
            Ok(out) => {
                // Its stderr names local paths: the log gets it, the render (which viewers
                // read) only what happened.
                tracing::warn!(
                    render = %request.render_id,
                    status = %out.status,
                    stderr = %String::from_utf8_lossy(&out.stderr).trim(),
                    "ffmpeg failed making a preview"
                );
                Err(ffmpeg_failed(out.status))
            }
            Err(e) => Err(e),
        }
    }

    /// The render's captions as an SRT file in `dir`, if its narration has cues.
    async fn captions(&self, render_id: &str, dir: &std::path::Path) -> Option<std::path::PathBuf> {
        let cues = crate::tts::captions::load_cues(&self.media, render_id)
            .await
            .ok()
            .flatten()?;
        let path = dir.join("captions.srt");
        tokio::fs::write(&path, crate::tts::captions::to_srt(&cues))
            .await
            .ok()?;
        Some(path)
    }
}

/// A check's verdict on bytes the preview fetched, as the provider's answer.
fn rejected(err: CheckError) -> ProviderError {
    match err {
        CheckError::Invalid(message) => ProviderError::Rejected {
            status: 400,
            message,
        },
        CheckError::Unreachable(message) => ProviderError::Unavailable(message),
    }
}

/// ffmpeg's failure, without its stderr: killed by a signal (a stop, the OOM killer) is
/// transient and retried; an exit status means these inputs cannot be made into a video.
fn ffmpeg_failed(status: std::process::ExitStatus) -> ProviderError {
    match crate::children::ended(status) {
        (how, true) => ProviderError::Unavailable(format!(
            "ffmpeg was {how} before the preview was made; it is tried again"
        )),
        (how, false) => ProviderError::Rejected {
            status: 0,
            message: format!(
                "ffmpeg could not make the preview video ({how}); the service log has its output"
            ),
        },
    }
}

#[async_trait::async_trait]
impl Provider for Preview {
    fn name(&self) -> &'static str {
        "preview"
    }

    fn model(&self) -> &'static str {
        "ffmpeg-still-image"
    }

    fn price(&self) -> super::Price {
        super::Price::Free
    }

    /// Local and free: submitting again can never bill, which is the promise the key makes.
    fn honours_idempotency_key(&self) -> bool {
        true
    }

    fn following(&self) -> Following {
        Following {
            webhooks: false,
            poll_interval: Duration::from_millis(200),
            max_wait: Duration::from_secs(300),
            reconcile_window: Duration::from_secs(300),
        }
    }

    async fn submit(&self, request: &SubmitRequest) -> Result<Submitted, ProviderError> {
        let job_id = format!("preview-{}", request.render_id);
        self.make(request, &Self::video_key(&job_id)).await?;
        Ok(Submitted {
            job_id,
            estimated_credits: Some(0),
        })
    }

    async fn status(&self, job_id: &str) -> Result<JobStatus, ProviderError> {
        let key = Self::video_key(job_id);
        let exists = self
            .media
            .exists(&key)
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?;
        Ok(if exists {
            JobStatus::Completed {
                video_url: self.media.url(&key),
                credits_used: Some(0),
            }
        } else {
            JobStatus::Failed(format!("preview {job_id} has no output"))
        })
    }
}
