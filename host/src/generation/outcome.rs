//! What one call to a provider's HTTP API means for trying again: the one place where every
//! outcome of the paid call (and of a status read) is classified, with the reason next to it.
//!
//! | outcome of `POST …/generate` (the paid call)             | verdict                      | why |
//! |----------------------------------------------------------|------------------------------|-----|
//! | connect refused / DNS failure / TLS failure before send   | [`ProviderError::Unavailable`] | no byte of the request left us: nothing was created |
//! | 429 Too Many Requests                                     | [`ProviderError::RateLimited`] | the API refused the call as a whole before doing any work |
//! | other 4xx (400, 401, 402, 403, 404, 409, 422…)           | [`ProviderError::Rejected`]    | a validation or auth answer: documented as creating no job; retrying will not help |
//! | any 5xx (500, 502 from a gateway, 503, 504)               | [`ProviderError::Ambiguous`]   | a gateway or a crashed handler may answer 5xx *after* the job was created and billed |
//! | timeout or reset after the request was sent               | [`ProviderError::Ambiguous`]   | the request may have been read and acted on |
//! | 2xx whose body cannot be read as the documented answer    | [`ProviderError::Ambiguous`]   | a job may exist whose id we did not learn |
//!
//! An ambiguous paid call is never repeated automatically unless the provider kind declares that
//! it honours `Idempotency-Key` ([`super::Provider::honours_idempotency_key`]); otherwise the
//! render waits in `reconciling` for the job to announce itself through the per-render webhook.
//!
//! A status read (`GET /jobs/{id}`) has no side effect, so every failure of it is only "ask again
//! later": a 404 right after creation (eventual consistency), a 401/403 glitch or a 5xx must not
//! abandon a job that has been paid for. Only the provider's own `failed` status ends a job.

use std::time::Duration;

use reqwest::StatusCode;

use super::ProviderError;
use crate::outbound::describe;

/// Which kind of call failed: the paid submit or a free status read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Submit,
    Status,
}

/// Classifies a transport failure (no HTTP answer at all).
pub fn transport(call: Call, err: &reqwest::Error) -> ProviderError {
    // `is_connect` covers refused connections, DNS and TLS failures: the request never left.
    match call {
        _ if err.is_connect() => ProviderError::Unavailable(describe(err)),
        Call::Submit => {
            ProviderError::Ambiguous(format!("{} after the request was sent", describe(err)))
        }
        Call::Status => ProviderError::Unavailable(describe(err)),
    }
}

/// Classifies a non-2xx answer. `message` is the provider's own error text (already shortened).
pub fn answer(
    call: Call,
    status: StatusCode,
    retry_after: Option<Duration>,
    message: String,
) -> ProviderError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return ProviderError::RateLimited { retry_after };
    }
    match call {
        Call::Submit if status.is_server_error() => ProviderError::Ambiguous(format!(
            "{status} from the provider (a job may have been created before the error): {message}"
        )),
        Call::Submit if status.is_client_error() => ProviderError::Rejected {
            status: status.as_u16(),
            message,
        },
        // 1xx/3xx we did not follow: the request was read, so the outcome is unknown.
        Call::Submit => ProviderError::Ambiguous(format!("unexpected {status}: {message}")),
        Call::Status => ProviderError::Unavailable(format!("{status}: {message}")),
    }
}

/// Turns a non-success answer into the error that says what to do next. A 429's wait is its
/// `Retry-After`, or what its body says ("Expected available in 3 seconds", as Replicate writes).
pub async fn error_for(call: Call, response: reqwest::Response) -> ProviderError {
    let status = response.status();
    let header = crate::outbound::retry_after(&response);
    let body = response.text().await.unwrap_or_default();
    let retry_after = header.or_else(|| expected_available(&body));
    answer(call, status, retry_after, body.chars().take(500).collect())
}

fn expected_available(body: &str) -> Option<Duration> {
    let rest = body.split("Expected available in ").nth(1)?;
    let seconds: f64 = rest.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_secs_f64(seconds.clamp(0.0, 3600.0)))
}

/// Sends `request`; a transport failure or a non-success answer comes back classified for `call`.
pub async fn send(
    call: Call,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, ProviderError> {
    let response = request.send().await.map_err(|e| transport(call, &e))?;
    if !response.status().is_success() {
        return Err(error_for(call, response).await);
    }
    Ok(response)
}

/// Sends `request` and reads its JSON answer (`what` names it in errors), every failure
/// classified for `call`.
pub async fn call_json<T: serde::de::DeserializeOwned>(
    call: Call,
    request: reqwest::RequestBuilder,
    what: &str,
) -> Result<T, ProviderError> {
    send(call, request)
        .await?
        .json()
        .await
        .map_err(|e| unreadable(call, what, e))
}

/// Classifies a 2xx whose body is not the documented answer.
pub fn unreadable(call: Call, what: &str, err: impl std::fmt::Display) -> ProviderError {
    match call {
        Call::Submit => ProviderError::Ambiguous(format!("unreadable {what}: {err}")),
        Call::Status => ProviderError::Unavailable(format!("unreadable {what}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_429s_wait_is_read_from_its_body_without_a_header() {
        let body = r#"{"title":"Request was throttled","detail":"Request was throttled. Expected available in 3 seconds.","status":429}"#;
        assert_eq!(expected_available(body), Some(Duration::from_secs(3)));
        assert_eq!(expected_available("{}"), None);
    }

    #[test]
    fn every_server_error_of_the_paid_call_is_ambiguous_and_of_a_status_read_retryable() {
        for code in [500, 502, 503, 504] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(matches!(
                answer(Call::Submit, status, None, String::new()),
                ProviderError::Ambiguous(_)
            ));
            assert!(matches!(
                answer(Call::Status, status, None, String::new()),
                ProviderError::Unavailable(_)
            ));
        }
    }

    #[test]
    fn client_errors_reject_a_submit_but_never_end_a_status_read() {
        for code in [400, 401, 402, 403, 404, 422] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(matches!(
                answer(Call::Submit, status, None, "bad".into()),
                ProviderError::Rejected { .. }
            ));
            assert!(matches!(
                answer(Call::Status, status, None, String::new()),
                ProviderError::Unavailable(_)
            ));
        }
        let limited = answer(
            Call::Submit,
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(3)),
            String::new(),
        );
        assert!(matches!(
            limited,
            ProviderError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            unreadable(Call::Submit, "answer", "eof"),
            ProviderError::Ambiguous(_)
        ));
    }
}
