//! Input checks before any paid call, each failing with a precise message and zero cost. The
//! inputs are fetched from the very URLs the provider will fetch, and judged by their bytes:
//! - image: answers 200, is JPEG or PNG by its magic bytes, at least 512×512;
//! - audio: answers 200, decodes as MP3/WAV/M4A, measured duration within the resolution's limit;
//! - prompt: not empty; URLs: https, or plain http where the configuration allows it.
//!
//! Our own media (the narration, the presenter photo) is read from the store after the same
//! signature check the media route makes; everything else passes the outbound guard.

use std::time::Duration;

use crate::generation::Resolution;
use crate::media::{probe, MediaStore};
use crate::outbound::{self, Guard, GuardError, ReadError};

/// Smallest side the OmniHuman v1.5 API accepts.
pub const MIN_IMAGE_SIDE: usize = 512;
/// Largest input we download to check.
const MAX_INPUT_BYTES: usize = 50 << 20;

pub struct Inputs {
    pub image_url: String,
    pub audio_url: String,
    pub prompt: String,
    pub resolution: Resolution,
    /// The longest narration the provider accepts at `resolution`.
    pub max_audio_seconds: f64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CheckError {
    /// The input would be rejected: fix it, do not retry.
    #[error("{0}")]
    Invalid(String),
    /// Could not fetch an input right now; worth retrying.
    #[error("{0}")]
    Unreachable(String),
}

/// Fetches inputs the way a provider will, on someone else's behalf: our own media from the
/// store (signature checked), any other URL through the outbound guard, bodies capped.
#[derive(Clone)]
pub struct Fetcher {
    guard: Guard,
    http: reqwest::Client,
    media: MediaStore,
}

impl Fetcher {
    /// The outbound guard every fetch goes through (also for a provider's public keys).
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    pub fn new(guard: Guard, media: MediaStore) -> Fetcher {
        Fetcher {
            http: guard.client(Duration::from_secs(30)),
            guard,
            media,
        }
    }

    /// The bytes behind `url` (`what` names it in errors).
    pub async fn get(&self, what: &str, url: &str) -> Result<Vec<u8>, CheckError> {
        if let Some(own) = self.media.read_own(url).await {
            return own.map_err(|e| CheckError::Invalid(format!("{what}: {e}")));
        }
        let parsed = self
            .guard
            .parse_url(url)
            .map_err(|e| CheckError::Invalid(format!("{what} URL: {e}")))?;
        let response = self.http.get(parsed).send().await.map_err(|e| {
            let message = format!("{what} URL: {}", outbound::describe(&e));
            if outbound::is_refusal(&e) {
                CheckError::Invalid(message)
            } else {
                CheckError::Unreachable(message)
            }
        })?;
        let status = response.status();
        if status.is_server_error() {
            return Err(CheckError::Unreachable(format!(
                "{what} URL answered {status}"
            )));
        }
        if status.as_u16() != 200 {
            return Err(CheckError::Invalid(format!(
                "{what} URL answered {status}, not 200: {url}"
            )));
        }
        outbound::read_capped(response, MAX_INPUT_BYTES)
            .await
            .map_err(|e| match e {
                ReadError::Guard(GuardError::TooLarge(max)) => {
                    CheckError::Invalid(format!("{what} is larger than {max} bytes"))
                }
                other => CheckError::Unreachable(format!("{what} download failed: {other}")),
            })
    }
}

/// Checks everything; the report says what was measured.
pub async fn check(fetcher: &Fetcher, inputs: &Inputs) -> Result<String, CheckError> {
    if inputs.prompt.trim().is_empty() {
        return Err(CheckError::Invalid("the scene prompt is empty".into()));
    }
    let image = fetcher.get("image", &inputs.image_url).await?;
    let info = image_ok(&image)?;
    let audio = fetcher.get("audio", &inputs.audio_url).await?;
    let (audio, limit) = audio_ok(audio, inputs.resolution, inputs.max_audio_seconds).await?;
    Ok(format!(
        "image {:?} {}×{}, audio {} {:.2} s (≤ {limit:.0} s at {}), prompt {} chars",
        info.format,
        info.width,
        info.height,
        audio.format,
        audio.seconds,
        inputs.resolution.as_str(),
        inputs.prompt.chars().count()
    ))
}

/// The image check on bytes already fetched: JPEG or PNG by its magic bytes, big enough. The
/// local preview runs it on the very bytes it hands ffmpeg.
pub fn image_ok(image: &[u8]) -> Result<probe::ImageInfo, CheckError> {
    let info = probe::image_info(image).map_err(|e| CheckError::Invalid(format!("image: {e}")))?;
    if info.width < MIN_IMAGE_SIDE || info.height < MIN_IMAGE_SIDE {
        return Err(CheckError::Invalid(format!(
            "image is {}×{}; the provider needs at least {MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE}",
            info.width, info.height
        )));
    }
    Ok(info)
}

/// The audio check on bytes already fetched (decoded off the runtime's threads): MP3, WAV or
/// M4A that decodes, within the resolution's limit. Returns what was measured and the limit.
pub async fn audio_ok(
    audio: Vec<u8>,
    resolution: Resolution,
    limit: f64,
) -> Result<(probe::AudioInfo, f64), CheckError> {
    let audio = tokio::task::spawn_blocking(move || probe::audio_info(audio))
        .await
        .map_err(|e| CheckError::Unreachable(format!("audio check interrupted: {e}")))?
        .map_err(|e| CheckError::Invalid(format!("audio: {e}")))?;
    if audio.seconds > limit {
        // 720p allows the longest audio; only a 1080p plan can fall back to it.
        let or_720p = match resolution {
            Resolution::P1080 if limit < Resolution::P720.max_audio_seconds() => " or use 720p",
            _ => "",
        };
        return Err(CheckError::Invalid(format!(
            "audio is {:.1} s; at {} the provider accepts at most {limit:.0} s — shorten the script \
             (words_per_minute / safety_margin in the plugin config, or the source's \
             too_long_for_1080p = \"shorten\"){or_720p}",
            audio.seconds,
            resolution.as_str()
        )));
    }
    Ok((audio, limit))
}

/// `[checks]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksConfig {
    /// Accept plain-http image/audio URLs (loopback development). Default: only with the local
    /// preview provider.
    pub allow_plain_http: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    /// A PNG header claiming `w`×`h` (enough for the dimension check).
    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&w.to_be_bytes());
        png.extend_from_slice(&h.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0]);
        png
    }

    /// Serves fixed inputs on loopback: /big.png, /small.png, /fake.png (a GIF), /missing,
    /// /short.wav, /long.wav, /text.wav.
    async fn inputs_server() -> String {
        let wav = |secs: f64| crate::media::probe::tests::wav(secs, 8000);
        let (short, long) = (wav(2.0), wav(45.0));
        let router = axum::Router::new()
            .route("/big.png", get(|| async { png(1024, 1024) }))
            .route("/small.png", get(|| async { png(400, 800) }))
            .route(
                "/fake.png",
                get(|| async { b"GIF89a\x01\x00\x01\x00".to_vec() }),
            )
            .route(
                "/missing",
                get(|| async { (axum::http::StatusCode::NOT_FOUND, "gone") }),
            )
            .route("/short.wav", get(move || async move { short }))
            .route("/long.wav", get(move || async move { long }))
            .route("/text.wav", get(|| async { "not audio at all" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        base
    }

    async fn run(
        base: &str,
        image: &str,
        audio: &str,
        prompt: &str,
        resolution: Resolution,
    ) -> Result<String, CheckError> {
        let inputs = Inputs {
            image_url: format!("{base}{image}"),
            audio_url: format!("{base}{audio}"),
            prompt: prompt.into(),
            resolution,
            max_audio_seconds: resolution.max_audio_seconds(),
        };
        check(&fetcher(), &inputs).await
    }

    /// A fetcher for loopback test servers: the development allowlist names 127.0.0.0/8.
    fn fetcher() -> Fetcher {
        let dev = crate::outbound::Config {
            allow_private: vec!["127.0.0.0/8".into()],
        };
        let media = MediaStore::local("/nonexistent".into(), "http://h:1".into(), vec![0; 32], 60);
        Fetcher::new(Guard::new(&dev, true).unwrap(), media)
    }

    fn invalid(result: Result<String, CheckError>) -> String {
        match result {
            Err(CheckError::Invalid(message)) => message,
            other => panic!("expected an invalid input, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn each_doomed_input_is_named_precisely() {
        let base = inputs_server().await;
        let p720 = Resolution::P720;
        let ok = run(&base, "/big.png", "/short.wav", "studio", p720)
            .await
            .unwrap();
        assert!(ok.contains("1024×1024") && ok.contains("2.00 s"), "{ok}");
        assert!(
            invalid(run(&base, "/small.png", "/short.wav", "studio", p720).await)
                .contains("400×800")
        );
        assert!(
            invalid(run(&base, "/fake.png", "/short.wav", "studio", p720).await)
                .contains("not a JPEG or PNG")
        );
        assert!(
            invalid(run(&base, "/missing", "/short.wav", "studio", p720).await).contains("404")
        );
        assert!(
            invalid(run(&base, "/big.png", "/text.wav", "studio", p720).await).contains("audio")
        );
        assert!(
            invalid(run(&base, "/big.png", "/short.wav", "  ", p720).await)
                .contains("prompt is empty")
        );
        let long = invalid(run(&base, "/big.png", "/long.wav", "studio", Resolution::P1080).await);
        assert!(
            long.contains("45.0 s") && long.contains("at most 30 s"),
            "{long}"
        );
        assert!(
            run(&base, "/big.png", "/long.wav", "studio", p720)
                .await
                .is_ok(),
            "45 s fits 720p"
        );
        // Nothing listening: worth retrying, not a verdict on the input.
        let unreachable = run(
            "http://127.0.0.1:9",
            "/big.png",
            "/short.wav",
            "studio",
            p720,
        )
        .await;
        assert!(
            matches!(unreachable, Err(CheckError::Unreachable(_))),
            "{unreachable:?}"
        );
    }

    #[tokio::test]
    async fn content_cannot_make_the_host_read_local_files_or_internal_addresses() {
        let strict = Fetcher::new(
            Guard::strict(),
            MediaStore::local("/nonexistent".into(), "http://h:1".into(), vec![0; 32], 60),
        );
        for url in [
            "/etc/passwd",
            "file:///etc/passwd",
            "data:image/png;base64,iVBORw0KGgo=",
            "http://example.org/a.png",
            "https://127.1/a.png",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:127.0.0.1]/a.png",
            "https://localhost./a.png",
        ] {
            let err = strict.get("image", url).await.unwrap_err();
            assert!(matches!(err, CheckError::Invalid(_)), "{url}: {err:?}");
            assert!(!err.to_string().contains("root:"), "{err}");
        }
    }

    /// An endless body is cut off at the cap, not buffered; the error quotes nothing it read.
    #[tokio::test]
    async fn an_endless_body_is_cut_off() {
        let endless = axum::Router::new().route(
            "/endless.png",
            get(|| async {
                let chunk = axum::body::Bytes::from(vec![b'x'; 1 << 20]);
                let stream = futures_util::stream::repeat_with(move || {
                    Ok::<_, std::io::Error>(chunk.clone())
                });
                axum::body::Body::from_stream(stream)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, endless).await.unwrap() });
        let err = fetcher()
            .get("image", &format!("{base}/endless.png"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            CheckError::Invalid(format!("image is larger than {MAX_INPUT_BYTES} bytes"))
        );
    }

    /// A public-looking URL that redirects to an internal one is refused at the hop.
    #[tokio::test]
    async fn a_redirect_to_an_internal_address_is_refused() {
        let redirector = axum::Router::new().route(
            "/a.png",
            get(|| async { axum::response::Redirect::temporary("http://169.254.169.254/latest/") }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, redirector).await.unwrap() });
        let err = fetcher()
            .get("image", &format!("{base}/a.png"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CheckError::Invalid(m) if m.contains("link-local")),
            "{err:?}"
        );
    }
}
