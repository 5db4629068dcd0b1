//! Where a finished digest goes: no CMS entry shows a digest, so its video, captions and poster
//! are announced to a receiver the operator names (`[sources.NAME.digest.deliver]`), as one
//! Standard Webhooks message (`digest.ready`, signed with the receiver's `whsec_` secret). The
//! message id names the digest, so a receiver that dedupes by `webhook-id` keeps one however
//! often a retry sends it.

use serde::Deserialize;

use crate::cms::standard_webhooks::{signed_message, Secret};
use crate::cms::WriteBackError;
use crate::content::Content;

/// `[sources.NAME.digest.deliver]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// The receiver's URL (behind the outbound guard, like every CMS call).
    pub url: String,
    /// The receiver's Standard Webhooks secret (`whsec_…`; `${ENV}` or `file:` like every secret).
    pub secret: String,
}

impl DeliveryConfig {
    /// What is wrong with it, checked at start-up.
    pub fn check(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("url {:?}: {e}", self.url))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("url {:?}: only http(s) URLs", self.url));
        }
        Secret::parse(&self.secret)
            .map(drop)
            .map_err(|e| format!("secret: {e}"))
    }
}

/// The files of a finished digest, as the receiver fetches them.
pub struct Files<'a> {
    pub video_url: &'a str,
    pub captions_url: Option<String>,
    pub poster_url: Option<String>,
}

/// Sends `digest.ready` for the digest event `content` to `to`.
pub async fn deliver(
    to: &DeliveryConfig,
    content: &Content,
    files: Files<'_>,
) -> Result<(), WriteBackError> {
    let secret = Secret::parse(&to.secret).map_err(|e| WriteBackError::Permanent(e.to_string()))?;
    let items: Vec<serde_json::Value> = content.fields["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    serde_json::json!({"id": item["id"], "title": item["title"], "url": item["url"],
                                       "locale": item["locale"]})
                })
                .collect()
        })
        .unwrap_or_default();
    let body = serde_json::to_vec(&serde_json::json!({
        "type": "digest.ready",
        "data": {
            "source": content.source, "id": content.id, "title": content.title,
            "tick": content.fields["tick"], "locale": content.locale,
            "video_url": files.video_url, "captions_url": files.captions_url,
            "poster_url": files.poster_url, "items": items,
        },
    }))
    .map_err(|e| WriteBackError::Permanent(e.to_string()))?;
    let id = format!("vidhook_{}", content.id);
    let request = signed_message(&crate::cms::http::client(), &to.url, &secret, &id, body);
    crate::cms::http::send(request, &format!("digest delivery to {}", to.url))
        .await
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_needs_an_http_url_and_a_whsec_secret() {
        let good = DeliveryConfig {
            url: "https://example.com/digests".into(),
            secret: "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into(),
        };
        assert!(good.check().is_ok());
        let bad_url = DeliveryConfig {
            url: "file:///etc/passwd".into(),
            ..good.clone()
        };
        assert!(bad_url.check().unwrap_err().contains("only http(s)"));
        let bad_secret = DeliveryConfig {
            secret: "short".into(),
            ..good
        };
        assert!(bad_secret.check().unwrap_err().starts_with("secret"));
    }
}
