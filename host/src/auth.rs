//! Who may call `/api/v1`, and what they may do. Every API route needs a token; its role
//! decides what it may do — `viewer` reads, `editor` also edits templates, previews with speech,
//! approves and rejects, `admin` does everything (operator actions on paid renders, plugin
//! installs and per-source switches, the audit log). The token is checked before any body is
//! read. Tokens are created with `vidhook tokens create`, shown once, and stored as the SHA-256
//! of their secret part (they are 256 random bits, so a fast hash is enough); the config's
//! `plugins.admin_token`, if set, is an admin token named `config:admin_token`.
//!
//! A token arrives as `Authorization: Bearer …` (scripts) or, for the web workspace, in the
//! session cookie its sign-in set ([`SESSION_COOKIE`]: HttpOnly, so page scripts never hold it;
//! SameSite=Strict, so other sites' pages do not send it). A write by cookie must also carry
//! [`CSRF_HEADER`]: a page on another origin cannot add a custom header without a CORS
//! preflight, which this host never grants, and a form cannot add one at all.

use axum::http::{header, HeaderMap, Method};
use sha2::{Digest, Sha256};

use crate::store::{Store, StoreError};

/// What a token may do; each role may do everything the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        [Role::Viewer, Role::Editor, Role::Admin]
            .into_iter()
            .find(|role| role.as_str() == text)
    }
}

/// An authenticated caller: the token's name (written in the audit log) and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token, or one that is unknown, malformed or revoked: 401.
    #[error("missing or invalid token")]
    Unauthenticated,
    /// A valid token whose role does not allow this: 403.
    #[error("a {have} token may not do this (needs {need})")]
    Forbidden {
        have: &'static str,
        need: &'static str,
    },
    /// A write by session cookie without [`CSRF_HEADER`], or sent from another site: 403.
    #[error(
        "a write by session cookie must come from the workspace itself (header {CSRF_HEADER})"
    )]
    CrossSite,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The cookie that carries a signed-in workspace's token.
pub const SESSION_COOKIE: &str = "vidhook_session";

/// The header every cookie-authenticated write must carry (any value).
pub const CSRF_HEADER: &str = "x-vidhook-csrf";

/// Every token starts with this, so a leaked one is recognisable (e.g. by secret scanners).
const PREFIX: &str = "vht_";

/// Creates a token; returns the token itself (shown once). `None`: the name is taken.
pub async fn create(store: &Store, name: &str, role: Role) -> Result<Option<String>, StoreError> {
    let id = hex::encode(rand::random::<[u8; 16]>());
    let secret = hex::encode(rand::random::<[u8; 32]>());
    let created = store
        .insert_token(&id, name, role.as_str(), &digest(&secret))
        .await?;
    Ok(created.then(|| format!("{PREFIX}{id}_{secret}")))
}

fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// The session cookie's token, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .filter(|token| !token.is_empty())
}

/// Whether a cookie-borne request may change something: safe methods always; writes only with
/// [`CSRF_HEADER`] and, where the browser says where it was sent from, from this origin.
pub fn same_site_write(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    let from_elsewhere = headers
        .get("sec-fetch-site")
        .is_some_and(|site| site != "same-origin");
    headers.contains_key(CSRF_HEADER) && !from_elsewhere
}

/// Who is calling (by bearer token, else by session cookie), and whether their role reaches
/// `need`.
pub async fn authorize(
    store: &Store,
    config_admin_token: Option<&str>,
    method: &Method,
    headers: &HeaderMap,
    need: Role,
) -> Result<Caller, AuthError> {
    let presented = match bearer(headers) {
        Some(token) => token,
        None => {
            let token = session_cookie(headers).ok_or(AuthError::Unauthenticated)?;
            if !same_site_write(method, headers) {
                return Err(AuthError::CrossSite);
            }
            token
        }
    };
    let caller = identify(store, config_admin_token, presented).await?;
    if caller.role < need {
        return Err(AuthError::Forbidden {
            have: caller.role.as_str(),
            need: need.as_str(),
        });
    }
    Ok(caller)
}

pub async fn identify(
    store: &Store,
    config_admin_token: Option<&str>,
    presented: &str,
) -> Result<Caller, AuthError> {
    if let Some(expected) = config_admin_token {
        if crate::cms::signing::same(expected.as_bytes(), presented.as_bytes()) {
            return Ok(Caller {
                name: "config:admin_token".into(),
                role: Role::Admin,
            });
        }
    }
    let (id, secret) = presented
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .ok_or(AuthError::Unauthenticated)?;
    if id.len() != 32 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(AuthError::Unauthenticated);
    }
    let row = store.token(id).await?.ok_or(AuthError::Unauthenticated)?;
    let matches = crate::cms::signing::same(row.secret_hash.as_bytes(), digest(secret).as_bytes());
    if !matches || row.revoked_at.is_some() {
        return Err(AuthError::Unauthenticated);
    }
    let role = Role::parse(&row.role).ok_or(AuthError::Unauthenticated)?;
    Ok(Caller {
        name: row.name,
        role,
    })
}

/// For viewers: signed query parameters (`sig=`, `token=`) are cut out of text that may carry
/// URLs of unapproved media or per-render webhook tokens.
pub fn redact_signed(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["sig=", "token="]
        .iter()
        .filter_map(|key| rest.find(key).map(|i| (i, key.len())))
        .min()
    {
        let (start, key_len) = at;
        out.push_str(&rest[..start + key_len]);
        out.push_str("redacted");
        let value = &rest[start + key_len..];
        // Signatures and tokens are hex or base64url (percent-encoded at most).
        let end = value
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_%.~".contains(c)))
            .unwrap_or(value.len());
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn tokens_carry_roles_are_hashed_and_can_be_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, Duration::from_secs(5)).await.unwrap();
        let token = create(&store, "ed", Role::Editor).await.unwrap().unwrap();
        assert!(
            create(&store, "ed", Role::Admin).await.unwrap().is_none(),
            "names are unique"
        );
        let stored = store.tokens().await.unwrap();
        assert!(!stored[0]
            .secret_hash
            .contains(token.rsplit('_').next().unwrap()));

        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let caller = authorize(&store, None, &Method::GET, &headers, Role::Editor)
            .await
            .unwrap();
        assert_eq!((caller.name.as_str(), caller.role), ("ed", Role::Editor));
        assert!(matches!(
            authorize(&store, None, &Method::GET, &headers, Role::Admin).await,
            Err(AuthError::Forbidden { .. })
        ));
        // The token with its last character changed (to another one: a fixed '0' was the
        // same token one time in sixteen).
        let last = if token.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &token[..token.len() - 1]);
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {forged}").parse().unwrap(),
        );
        assert!(matches!(
            authorize(&store, None, &Method::GET, &headers, Role::Viewer).await,
            Err(AuthError::Unauthenticated)
        ));
        assert!(store.revoke_token("ed").await.unwrap());
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        assert!(matches!(
            authorize(&store, None, &Method::GET, &headers, Role::Viewer).await,
            Err(AuthError::Unauthenticated)
        ));
        assert!(matches!(
            authorize(&store, None, &Method::GET, &HeaderMap::new(), Role::Viewer).await,
            Err(AuthError::Unauthenticated)
        ));
    }

    #[tokio::test]
    async fn a_session_cookie_signs_in_but_writes_need_the_csrf_header() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, Duration::from_secs(5)).await.unwrap();
        let token = create(&store, "ed", Role::Editor).await.unwrap().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("theme=dark; {SESSION_COOKIE}={token}")
                .parse()
                .unwrap(),
        );
        let read = authorize(&store, None, &Method::GET, &headers, Role::Viewer).await;
        assert_eq!(read.unwrap().name, "ed");
        let write = authorize(&store, None, &Method::POST, &headers, Role::Editor).await;
        assert!(matches!(write, Err(AuthError::CrossSite)), "{write:?}");
        headers.insert(CSRF_HEADER, "1".parse().unwrap());
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        let write = authorize(&store, None, &Method::POST, &headers, Role::Editor).await;
        assert!(matches!(write, Err(AuthError::CrossSite)), "{write:?}");
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        let write = authorize(&store, None, &Method::POST, &headers, Role::Editor).await;
        assert_eq!(write.unwrap().role, Role::Editor);
        // A bearer token needs no CSRF header: nothing sends it on its own.
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let write = authorize(&store, None, &Method::POST, &bearer, Role::Editor).await;
        assert!(write.is_ok());
    }

    #[test]
    fn signed_parameters_are_cut_out_for_viewers() {
        assert_eq!(
            redact_signed(
                "image http://h/media/images/a.png?expires=9&sig=abcd, audio x?token=ff&x=1"
            ),
            "image http://h/media/images/a.png?expires=9&sig=redacted, audio x?token=redacted&x=1"
        );
        assert_eq!(redact_signed("nothing signed"), "nothing signed");
    }
}
