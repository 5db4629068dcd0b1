//! Input checks before any paid call, each failing with a precise message and zero cost. The
//! inputs are fetched from the very URLs the provider will fetch, and judged by their bytes:
//! - image: answers 200, is JPEG or PNG by its magic bytes, at least 512×512;
//! - audio: answers 200, decodes as MP3/WAV/M4A, measured duration within the resolution's limit;
//! - prompt: not empty; URLs: https, or plain http where the configuration allows it.

use std::time::Duration;

use crate::generation::Resolution;
use crate::media::probe;

/// Smallest side the OmniHuman v1.5 API accepts.
pub const MIN_IMAGE_SIDE: usize = 512;
/// Largest input we download to check.
const MAX_INPUT_BYTES: usize = 50 << 20;

pub struct Inputs {
    pub image_url: String,
    pub audio_url: String,
    pub prompt: String,
    pub resolution: Resolution,
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

/// Checks everything; the report says what was measured.
pub async fn check(
    http: &reqwest::Client,
    inputs: &Inputs,
    allow_plain_http: bool,
) -> Result<String, CheckError> {
    if inputs.prompt.trim().is_empty() {
        return Err(CheckError::Invalid("the scene prompt is empty".into()));
    }
    check_scheme("image", &inputs.image_url, allow_plain_http)?;
    check_scheme("audio", &inputs.audio_url, allow_plain_http)?;

    let image = fetch(http, "image", &inputs.image_url).await?;
    let info = probe::image_info(&image).map_err(|e| CheckError::Invalid(format!("image: {e}")))?;
    if info.width < MIN_IMAGE_SIDE || info.height < MIN_IMAGE_SIDE {
        return Err(CheckError::Invalid(format!(
            "image is {}×{}; the provider needs at least {MIN_IMAGE_SIDE}×{MIN_IMAGE_SIDE}",
            info.width, info.height
        )));
    }

    let audio = fetch(http, "audio", &inputs.audio_url).await?;
    let audio = tokio::task::spawn_blocking(move || probe::audio_info(audio))
        .await
        .map_err(|e| CheckError::Unreachable(format!("audio check interrupted: {e}")))?
        .map_err(|e| CheckError::Invalid(format!("audio: {e}")))?;
    let limit = inputs.resolution.max_audio_seconds();
    if audio.seconds > limit {
        return Err(CheckError::Invalid(format!(
            "audio is {:.1} s; at {} the provider accepts at most {limit:.0} s — shorten the script \
             (words_per_minute / safety_margin in the plugin config) or use 720p",
            audio.seconds,
            inputs.resolution.as_str()
        )));
    }
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

fn check_scheme(what: &str, url: &str, allow_plain_http: bool) -> Result<(), CheckError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| CheckError::Invalid(format!("{what} URL {url:?}: {e}")))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_plain_http => Ok(()),
        "http" => Err(CheckError::Invalid(format!(
            "{what} URL must be https (the provider fetches it publicly): {url}"
        ))),
        other => Err(CheckError::Invalid(format!(
            "{what} URL has unsupported scheme {other:?}"
        ))),
    }
}

async fn fetch(http: &reqwest::Client, what: &str, url: &str) -> Result<Vec<u8>, CheckError> {
    let response = http
        .get(url)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .map_err(|e| CheckError::Unreachable(format!("{what} URL unreachable: {e}")))?;
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
    if response
        .content_length()
        .is_some_and(|len| len as usize > MAX_INPUT_BYTES)
    {
        return Err(CheckError::Invalid(format!(
            "{what} is larger than {MAX_INPUT_BYTES} bytes"
        )));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| CheckError::Unreachable(format!("{what} download failed: {e}")))?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(CheckError::Invalid(format!(
            "{what} is larger than {MAX_INPUT_BYTES} bytes"
        )));
    }
    Ok(bytes.to_vec())
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
        };
        check(&reqwest::Client::new(), &inputs, true).await
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

    #[test]
    fn schemes() {
        assert!(check_scheme("image", "https://x/a.png", false).is_ok());
        assert!(matches!(
            check_scheme("image", "http://x/a.png", false),
            Err(CheckError::Invalid(_))
        ));
        assert!(check_scheme("image", "http://127.0.0.1/a.png", true).is_ok());
        assert!(check_scheme("image", "file:///etc/passwd", true).is_err());
        assert!(check_scheme("image", "not a url", true).is_err());
    }
}
