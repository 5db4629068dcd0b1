//! Calls to a CMS's own API (write-backs, and fetching the entry behind a thin webhook): one
//! client with timeouts, and one reading of the answers — success, conflict (the entry changed
//! meanwhile: re-read and retry), worth retrying later, or permanent.

use std::time::Duration;

use serde_json::Value;

use super::WriteBackError;

/// The largest CMS answer read (an entry with its fields); more is cut off, not buffered.
const MAX_ANSWER_BYTES: usize = 8 << 20;

/// One path segment of a CMS API URL: an id from a payload, escaped so that `/`, `..`, `?` or
/// `#` in it cannot reach another endpoint.
pub fn segment(id: &str) -> String {
    const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    match id {
        // `.` and `..` are the only unreserved segments that still move along the path.
        "." | ".." => id.replace('.', "%2E"),
        _ => percent_encoding::utf8_percent_encode(id, UNRESERVED).to_string(),
    }
}

/// A client behind the process's outbound guard: a CMS URL that resolves to a private address,
/// or redirects to one, is refused unless `[outbound] allow_private` names its range.
pub fn client() -> reqwest::Client {
    crate::outbound::Guard::installed().client(Duration::from_secs(30))
}

/// Sends `request` and returns the JSON answer (`Null` for an empty body).
pub async fn send(request: reqwest::RequestBuilder, what: &str) -> Result<Value, WriteBackError> {
    let (client, request) = request.build_split();
    let request = request.map_err(|e| WriteBackError::Permanent(format!("{what}: {e}")))?;
    // Names are checked where they resolve; an address written into the URL is checked here.
    crate::outbound::Guard::installed()
        .check_address(request.url())
        .map_err(|e| WriteBackError::Permanent(format!("{what}: {e}")))?;
    let response = client.execute(request).await.map_err(|e| {
        let message = format!("{what}: {}", crate::outbound::describe(&e));
        if crate::outbound::is_refusal(&e) {
            WriteBackError::Permanent(message)
        } else {
            WriteBackError::Transient(message)
        }
    })?;
    let status = response.status();
    let body = crate::outbound::read_capped(response, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| WriteBackError::Transient(format!("{what}: reading the answer: {e}")))?;
    let text = String::from_utf8_lossy(&body);
    if status.is_success() {
        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    // The status says what went wrong; the answer's bytes are not quoted (they may reflect
    // whatever an entry's URL pointed at).
    let message = format!("{what}: {status}");
    Err(match status.as_u16() {
        409 => WriteBackError::Conflict(message),
        408 | 425 | 429 | 500..=599 => WriteBackError::Transient(message),
        _ => WriteBackError::Permanent(message),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_cannot_leave_their_path_segment() {
        assert_eq!(
            super::segment("1/../../admin/x?y="),
            "1%2F..%2F..%2Fadmin%2Fx%3Fy%3D"
        );
        assert_eq!(super::segment(".."), "%2E%2E");
        assert_eq!(super::segment("abc-DEF_1.2~"), "abc-DEF_1.2~");
        assert_eq!(super::segment("a b#c"), "a%20b%23c");
    }
}
