//! The pieces every CMS signature scheme is made of: reading a header, HMAC verification in
//! constant time with a length check, static tokens compared in constant time, replay windows.

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::InboundError;

/// A header's value, or 401 naming the missing header.
pub fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<&'h str, InboundError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| InboundError::Unauthorized(format!("missing {name} header")))
}

/// HMAC-SHA256 of the concatenated `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key size");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of `body` (Storyblok's scheme).
pub fn hmac_sha1(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes any key size");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Equal in constant time; different lengths are simply unequal (an empty or truncated
/// signature never matches).
pub fn same(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len() && bool::from(expected.ct_eq(given))
}

/// 401 unless `expected` (a hex or base64 digest already decoded) equals `given`.
pub fn check(expected: &[u8], given: &[u8], what: &str) -> Result<(), InboundError> {
    if same(expected, given) {
        Ok(())
    } else {
        Err(InboundError::Unauthorized(format!("{what} does not match")))
    }
}

/// A static header a CMS sends instead of a signature (Strapi, Directus; Contentful without
/// request verification), e.g. `Authorization: Bearer s3cret`. The adapters' configs hold
/// `token` and `token_header` as their own keys (so that their tables deny unknown keys).
#[derive(Debug, Clone)]
pub struct StaticToken<'a> {
    /// The header's value.
    pub token: &'a str,
    /// Which header carries it.
    pub token_header: &'a str,
}

/// `token_header`'s default.
pub fn default_token_header() -> String {
    "authorization".into()
}

impl StaticToken<'_> {
    /// 401 unless the request carries exactly the token (compared in constant time).
    pub fn check(&self, headers: &HeaderMap) -> Result<(), InboundError> {
        let given = header(headers, self.token_header)?;
        check(self.token.as_bytes(), given.as_bytes(), self.token_header)
    }
}

/// The values of `a` and `b` in a `a=…, b=…` signature header (Ghost, Sanity), or 401.
pub fn pair<'h>(
    value: &'h str,
    name: &str,
    a: &str,
    b: &str,
) -> Result<(&'h str, &'h str), InboundError> {
    let field = |key: &str| {
        value.split(',').find_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            (k == key).then_some(v)
        })
    };
    match (field(a), field(b)) {
        (Some(x), Some(y)) => Ok((x, y)),
        _ => Err(InboundError::Unauthorized(format!(
            "{name} lacks {a}= or {b}="
        ))),
    }
}

/// 401 if `timestamp` is further than `tolerance` from `now` (same unit for all three).
pub fn check_window(
    timestamp: i64,
    now: i64,
    tolerance: i64,
    unit: &str,
) -> Result<(), InboundError> {
    if (now - timestamp).abs() > tolerance {
        return Err(InboundError::Unauthorized(format!(
            "timestamp {timestamp} is outside the {tolerance} {unit} window (now {now})"
        )));
    }
    Ok(())
}

/// Parses a number from a signature header field, or 401.
pub fn number(value: &str, what: &str) -> Result<i64, InboundError> {
    value
        .trim()
        .parse()
        .map_err(|_| InboundError::Unauthorized(format!("{what} is not a number")))
}

/// Decodes hex, or 401.
pub fn unhex(value: &str, what: &str) -> Result<Vec<u8>, InboundError> {
    hex::decode(value.trim()).map_err(|_| InboundError::Unauthorized(format!("{what} is not hex")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_and_empty_signatures_never_match() {
        let tag = hmac_sha256(b"key", &[b"body"]);
        assert!(same(&tag, &tag));
        assert!(!same(&tag, &tag[..16]));
        assert!(!same(&tag, b""));
        assert!(!same(b"", &tag));
    }
}
