//! What hosted engines share: one POST that returns audio bytes, and the reading of their errors
//! (401/403/422 refuse the request, 429 says when to come back, 5xx and network faults are
//! worth another try). Each engine's file builds its own request.

use super::TtsError;
use crate::outbound::{read_capped, ReadError};

/// The most audio one request may return (a 10,000-character chunk is a few MB of MP3).
const MAX_AUDIO_BYTES: usize = 64 * 1024 * 1024;

/// Sends `request` and returns the audio it answers with.
pub(super) async fn fetch_audio(
    engine: &'static str,
    request: reqwest::RequestBuilder,
) -> Result<Vec<u8>, TtsError> {
    let engine_error = |message: String| TtsError::Engine { engine, message };
    let response = request.send().await.map_err(|err| {
        if err.is_timeout() {
            TtsError::Timeout { engine, secs: 0 }
        } else if crate::outbound::is_refusal(&err) {
            TtsError::Rejected {
                engine,
                status: 0,
                message: crate::outbound::describe(&err),
            }
        } else {
            engine_error(crate::outbound::describe(&err))
        }
    })?;
    let status = response.status();
    if status.is_success() {
        return read_capped(response, MAX_AUDIO_BYTES)
            .await
            .map_err(|err| match err {
                ReadError::Guard(guard) => TtsError::Rejected {
                    engine,
                    status: status.as_u16(),
                    message: guard.to_string(),
                },
                ReadError::Transport(_) => engine_error(err.to_string()),
            });
    }
    let retry_after = crate::outbound::retry_after(&response);
    let body = read_capped(response, 64 * 1024).await.unwrap_or_default();
    let message = error_message(&body);
    Err(match status.as_u16() {
        429 => TtsError::RateLimited {
            engine,
            retry_after,
        },
        // 408 and every 5xx: the engine's trouble, not the request's.
        408 | 500..=599 => engine_error(format!("{status}: {message}")),
        code => TtsError::Rejected {
            engine,
            status: code,
            message,
        },
    })
}

/// The human part of an error body: OpenAI's `error.message`, ElevenLabs' `detail.message` (or
/// its 422 `detail[].msg`), else the first 300 characters.
fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.pointer("/detail/message"))
            .or_else(|| v.pointer("/detail/0/msg"))
            .or_else(|| v.get("detail").filter(|d| d.is_string()))
            .and_then(|m| m.as_str())
            .map(str::to_string)
    });
    found.unwrap_or_else(|| text.chars().take(300).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_are_read_from_each_engines_shape() {
        let openai =
            br#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#;
        assert_eq!(error_message(openai), "Incorrect API key provided");
        let eleven = br#"{"detail":{"status":"too_many_concurrent_requests","message":"busy"}}"#;
        assert_eq!(error_message(eleven), "busy");
        let validation = br#"{"detail":[{"loc":["body","text"],"msg":"field required","type":"value_error.missing"}]}"#;
        assert_eq!(error_message(validation), "field required");
        assert_eq!(error_message(b"Bad Gateway"), "Bad Gateway");
    }
}
