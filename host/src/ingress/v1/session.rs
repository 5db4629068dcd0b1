//! Signing the web workspace in and out. Sign-in takes a token once and answers with the session
//! cookie that carries it from then on (HttpOnly: page scripts never hold it; SameSite=Strict:
//! other sites' pages never send it; Secure when the host is served over https). Signing out
//! clears it. Revoking the token (`vidhook tokens revoke`) ends its sessions too.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{json_body, problem, store_down};
use crate::app::App;
use crate::auth::{AuthError, Caller, SESSION_COOKIE};
use crate::ingress::problem::Problem;

/// How long a sign-in lasts.
const SESSION_SECS: u64 = 12 * 3600;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// A token made by `vidhook tokens create`.
    token: String,
}

/// Who is signed in.
#[derive(Serialize, ToSchema)]
pub struct Session {
    name: String,
    /// `viewer`, `editor` or `admin`.
    role: String,
}

impl Session {
    fn of(caller: &Caller) -> Session {
        Session {
            name: caller.name.clone(),
            role: caller.role.as_str().into(),
        }
    }
}

/// Whether a token can travel in a cookie as it is (`vht_…` tokens always can; a configured
/// `admin_token` might hold spaces, `;` or non-ASCII characters).
fn cookie_safe(token: &str) -> bool {
    !token.is_empty()
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.~+/=".contains(c))
}

fn cookie(app: &App, value: &str, max_age: u64) -> HeaderValue {
    let secure = if app.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let text =
        format!("{SESSION_COOKIE}={value}; Path=/api/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).expect("cookie_safe values are visible ASCII")
}

/// Sign in: the token is checked and kept in the session cookie.
#[utoipa::path(
    post, path = "/session", tag = "session", security(()),
    request_body = SignIn,
    responses(
        (status = 200, description = "Signed in; the cookie is set", body = Session),
        (status = 400, description = "Not a sign-in body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown or revoked token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not sent by the workspace (no CSRF header)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A configured admin token with characters a cookie cannot carry", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many sign-in attempts from this address (see Retry-After)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sign_in(
    State(app): State<Arc<App>>,
    peer: Option<Extension<crate::listener::Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Tokens are not to be guessed at speed: every attempt counts against its address.
    if let (Some(limiter), Some(Extension(peer))) = (&app.sign_in_rate, peer) {
        if let Some(wait) = crate::ingress::over_limit(limiter, &peer.0.ip()) {
            crate::telemetry::warn_rejected!(address = %peer.0.ip(), "workspace sign-in throttled");
            return crate::ingress::too_many(
                "too many sign-in attempts from this address; wait and try again",
                wait,
            );
        }
    }
    // A page elsewhere must not sign a browser in to an account of its choosing either.
    if !crate::auth::same_site_write(&Method::POST, &headers) {
        return problem(StatusCode::FORBIDDEN, AuthError::CrossSite.to_string());
    }
    let request: SignIn = match json_body(&headers, body, 4 << 10).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let admin_token = app.config.plugins.admin_token.as_deref();
    match crate::auth::identify(&app.store, admin_token, request.token.trim()).await {
        Ok(_) if !cookie_safe(request.token.trim()) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "this token cannot be kept in a browser cookie; sign in with a token made by \
             `vidhook tokens create`",
        ),
        Ok(caller) => {
            tracing::info!(name = %caller.name, role = caller.role.as_str(), "workspace sign-in");
            let mut response = Json(Session::of(&caller)).into_response();
            response.headers_mut().insert(
                header::SET_COOKIE,
                cookie(&app, request.token.trim(), SESSION_SECS),
            );
            response
        }
        Err(AuthError::Store(err)) => store_down(err),
        Err(_) => {
            crate::telemetry::warn_rejected!("workspace sign-in refused: unknown token");
            problem(StatusCode::UNAUTHORIZED, "unknown or revoked token")
        }
    }
}

/// Sign out: the session cookie is cleared.
#[utoipa::path(
    delete, path = "/session", tag = "session", security(()),
    responses((status = 204, description = "Signed out"))
)]
pub async fn sign_out(State(app): State<Arc<App>>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&app, "", 0));
    response
}

/// Who the credential belongs to.
#[utoipa::path(
    get, path = "/session", tag = "session",
    responses((status = 200, description = "The caller", body = Session))
)]
pub async fn who(Extension(caller): Extension<Caller>) -> Json<Session> {
    Json(Session::of(&caller))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_tokens_a_cookie_can_carry_as_they_are_sign_in() {
        assert!(super::cookie_safe(&format!(
            "vht_{}_{}",
            "a".repeat(32),
            "0".repeat(64)
        )));
        for unsafe_token in ["", "has space", "semi;colon", "quote\"", "naïve", "comma,"] {
            assert!(!super::cookie_safe(unsafe_token), "{unsafe_token:?}");
        }
    }
}
