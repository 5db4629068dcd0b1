//! Calls to a CMS's own API (write-backs, and fetching the entry behind a thin webhook): one
//! client with timeouts, and one reading of the answers — success, conflict (the entry changed
//! meanwhile: re-read and retry), worth retrying later, or permanent.

use std::time::Duration;

use serde_json::Value;

use super::WriteBackError;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("a TLS backend is compiled in")
}

/// Sends `request` and returns the JSON answer (`Null` for an empty body).
pub async fn send(request: reqwest::RequestBuilder, what: &str) -> Result<Value, WriteBackError> {
    let response = request
        .send()
        .await
        .map_err(|e| WriteBackError::Transient(format!("{what}: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| WriteBackError::Transient(format!("{what}: reading the answer: {e}")))?;
    if status.is_success() {
        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    let snippet: String = text.chars().take(300).collect();
    let message = format!("{what}: {status}: {snippet}");
    Err(match status.as_u16() {
        409 => WriteBackError::Conflict(message),
        408 | 425 | 429 | 500..=599 => WriteBackError::Transient(message),
        _ => WriteBackError::Permanent(message),
    })
}
