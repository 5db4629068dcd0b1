//! fal's webhook signatures, as its documentation describes them: headers
//! `X-Fal-Webhook-Request-Id`, `-User-Id`, `-Timestamp` (unix seconds) and `-Signature` (hex
//! Ed25519); the signed message is `request_id \n user_id \n timestamp \n hex(sha256(body))`; the
//! public keys come from fal's JWKS (`kty` OKP, `crv` Ed25519, `x` base64url), which fal rotates.
//! Deliveries name no key, so each cached key is tried. Keys are cached for a day and fetched
//! again when none verifies a delivery (a rotation), at most once every 10 s, so forged
//! deliveries cannot make us hammer the JWKS (a genuine one refused meanwhile is retried by fal). Keys are never taken from the request itself. A timestamp
//! more than five minutes off is stale; a signature already accepted is a replay.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use ring::signature::{UnparsedPublicKey, ED25519};
use sha2::Digest;

/// How far a delivery's timestamp may be from now, either way.
const WINDOW_SECS: i64 = 300;
/// How long fetched keys are used before they are fetched again.
const KEYS_TTL: Duration = Duration::from_secs(24 * 3600);
/// The least time between two fetches caused by an unknown key.
const REFETCH_AFTER: Duration = Duration::from_secs(10);
/// Signatures remembered for replay detection (each for the window).
const MAX_SEEN: usize = 100_000;
/// The largest JWKS read.
const MAX_JWKS_BYTES: usize = 64 << 10;

pub struct WebhookKeys {
    url: String,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    keys: Vec<[u8; 32]>,
    fetched: Option<Instant>,
    /// Accepted signatures and their delivery timestamps.
    seen: HashMap<Vec<u8>, i64>,
}

impl WebhookKeys {
    pub fn new(url: String, http: reqwest::Client) -> WebhookKeys {
        WebhookKeys {
            url,
            http,
            state: tokio::sync::Mutex::default(),
        }
    }

    /// `Ok` when the delivery is signed by one of fal's keys, fresh and not seen before.
    pub async fn verify(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("missing {name}"))
        };
        let request_id = header("x-fal-webhook-request-id")?;
        let user_id = header("x-fal-webhook-user-id")?;
        let timestamp = header("x-fal-webhook-timestamp")?;
        let signature = hex::decode(header("x-fal-webhook-signature")?)
            .map_err(|_| "the signature is not hex".to_string())?;
        let t: i64 = timestamp
            .parse()
            .map_err(|_| "the timestamp is not a number".to_string())?;
        let now = crate::store::now_ms() / 1000;
        if (now - t).abs() > WINDOW_SECS {
            return Err(format!(
                "the timestamp {t} is outside the {WINDOW_SECS} s window"
            ));
        }
        let message = format!(
            "{request_id}\n{user_id}\n{timestamp}\n{}",
            hex::encode(sha2::Sha256::digest(body))
        );
        let mut state = self.state.lock().await;
        if state.seen.contains_key(&signature) {
            return Err("this delivery was already received (a replay)".into());
        }
        let stale = state.fetched.is_none_or(|at| at.elapsed() >= KEYS_TTL);
        if stale {
            self.fetch(&mut state).await?;
        }
        if !verifies(&state.keys, message.as_bytes(), &signature) {
            let may_refetch = state.fetched.is_none_or(|at| at.elapsed() >= REFETCH_AFTER);
            if stale || !may_refetch {
                return Err("no key of fal's verifies the signature".into());
            }
            self.fetch(&mut state).await?;
            if !verifies(&state.keys, message.as_bytes(), &signature) {
                return Err("no key of fal's verifies the signature".into());
            }
        }
        state.seen.retain(|_, at| (now - *at).abs() <= WINDOW_SECS);
        if state.seen.len() < MAX_SEEN {
            state.seen.insert(signature, t);
        }
        Ok(())
    }

    async fn fetch(&self, state: &mut State) -> Result<(), String> {
        state.fetched = Some(Instant::now());
        let fail = |e: String| format!("cannot read fal's webhook keys from {}: {e}", self.url);
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| fail(crate::outbound::describe(&e)))?;
        if !response.status().is_success() {
            return Err(fail(format!("answered {}", response.status())));
        }
        let bytes = crate::outbound::read_capped(response, MAX_JWKS_BYTES)
            .await
            .map_err(|e| fail(e.to_string()))?;
        state.keys = parse_jwks(&bytes).map_err(fail)?;
        tracing::info!(keys = state.keys.len(), "fal webhook keys fetched");
        Ok(())
    }
}

fn verifies(keys: &[[u8; 32]], message: &[u8], signature: &[u8]) -> bool {
    keys.iter().any(|key| {
        UnparsedPublicKey::new(&ED25519, key)
            .verify(message, signature)
            .is_ok()
    })
}

/// The Ed25519 keys of a JWKS (others are ignored); none is an error.
fn parse_jwks(bytes: &[u8]) -> Result<Vec<[u8; 32]>, String> {
    #[derive(serde::Deserialize)]
    struct Jwks {
        keys: Vec<Jwk>,
    }
    #[derive(serde::Deserialize)]
    struct Jwk {
        kty: Option<String>,
        crv: Option<String>,
        x: Option<String>,
    }
    let jwks: Jwks = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS: {e}"))?;
    let keys: Vec<[u8; 32]> = jwks
        .keys
        .iter()
        .filter(|k| k.kty.as_deref() == Some("OKP") && k.crv.as_deref() == Some("Ed25519"))
        .filter_map(|k| {
            let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(k.x.as_deref()?.trim_end_matches('='))
                .ok()?;
            x.try_into().ok()
        })
        .collect();
    if keys.is_empty() {
        return Err("no Ed25519 key in it".into());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jwks_gives_its_ed25519_keys_only() {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
        let jwks = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{x}","kid":"a"}},{{"kty":"RSA","n":"AQAB","e":"AQAB"}}]}}"#
        );
        assert_eq!(parse_jwks(jwks.as_bytes()).unwrap(), vec![[7u8; 32]]);
        assert!(parse_jwks(br#"{"keys":[]}"#).is_err());
        assert!(parse_jwks(b"<html>").is_err());
    }
}
