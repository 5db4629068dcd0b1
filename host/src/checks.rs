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
