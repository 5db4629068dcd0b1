//! Sanity (sanity.io/docs "GROQ-powered webhooks", the `@sanity/webhook` toolkit for the
//! signature, and the HTTP Mutations API). A webhook is a GROQ filter plus a projection; it has
//! no event names, so a delivery counts when its document is published (its `_id` is not a
//! `drafts.` id) and of a counted `_type`.
//!
//! Signature: `sanity-webhook-signature: t=<unix ms>,v1=<base64url HMAC-SHA256(secret,
//! "<t>.<raw body>")>`, checked in constant time with a replay window. `idempotency-key` is the
//! delivery id (Sanity retries 429/5xx and can deliver late or out of order; dedupe also rests on
//! the fingerprint).
//!
//! Write-back: `POST {api}/{version}/data/mutate/{dataset}` with
//! `{"mutations": [{"patch": {"id", "set": {field: url}}}]}`. The patched document fires the
//! webhook again with the same title/body/image: a duplicate, no new render.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use super::mapping::{Defaults, Entry};
use super::{
    signing, CmsAdapter, Delivery, Inbound, InboundError, ListError, Listed, Page, WriteBackError,
};
use crate::content::Content;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The webhook's secret.
    pub secret: String,
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// `https://<projectId>.api.sanity.io`; none = no write-back.
    pub api_url: Option<String>,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// A token with write access.
    pub api_token: Option<String>,
    /// The project id, for image asset URLs; default: the first label of `api_url`'s host.
    pub project_id: Option<String>,
    /// Sanity's image CDN (image asset references become URLs there).
    #[serde(default = "default_cdn")]
    pub cdn_url: String,
}

fn default_cdn() -> String {
    "https://cdn.sanity.io".into()
}

fn default_tolerance() -> u64 {
    300
}
fn default_api_version() -> String {
    "v2025-02-19".into()
}
fn default_dataset() -> String {
    "production".into()
}

/// Documents per listing page.
const LIST_LIMIT: u64 = 100;

const DEFAULTS: Defaults = Defaults {
    title: "title",
    body: "body",
    image: "image",
    locale: "language",
};

/// The Sanity adapter: its source name, [`Config`], field map and HTTP client.
pub type Sanity = super::Adapter<Config>;

impl Sanity {
    /// Checks `sanity-webhook-signature` against the raw body; `now_ms` in unix milliseconds.
    pub fn verify(&self, delivery: &Delivery<'_>, now_ms: i64) -> Result<(), InboundError> {
        let header = signing::header(delivery.headers, "sanity-webhook-signature")?;
        let (t, v1) = signing::pair(header, "sanity-webhook-signature", "t", "v1")?;
        let timestamp = signing::number(t, "t")?;
        signing::check_window(
            timestamp,
            now_ms,
            self.config.tolerance_secs as i64 * 1000,
            "ms",
        )?;
        let given = URL_SAFE_NO_PAD
            .decode(v1.trim_end_matches('='))
            .map_err(|_| InboundError::Unauthorized("v1 is not base64url".into()))?;
        let expected = signing::hmac_sha256(
            self.config.secret.as_bytes(),
            &[t.as_bytes(), b".", delivery.body],
        );
        signing::check(&expected, &given, "sanity-webhook-signature")
    }

    /// An image asset reference (`image-<id>-<w>x<h>-<format>`) as its CDN URL
    /// (`{cdn}/images/{project}/{dataset}/<id>-<w>x<h>.<format>`); anything else as written.
    fn image_url(&self, raw: &str) -> String {
        let project = self.config.project_id.clone().or_else(|| {
            let api = self.config.api_url.as_deref()?;
            let host = api.split_once("://")?.1.split(['/', ':']).next()?;
            host.ends_with(".api.sanity.io")
                .then(|| host.split('.').next().map(str::to_owned))
                .flatten()
        });
        let parsed = raw.strip_prefix("image-").and_then(|rest| {
            let (rest, format) = rest.rsplit_once('-')?;
            let (id, size) = rest.rsplit_once('-')?;
            let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
            (valid(id) && valid(format) && size.split('x').all(|n| n.parse::<u32>().is_ok()))
                .then_some((id, size, format))
        });
        match (project, parsed) {
            (Some(project), Some((id, size, format))) => format!(
                "{}/images/{}/{}/{id}-{size}.{format}",
                self.config.cdn_url.trim_end_matches('/'),
                super::http::segment(&project),
                super::http::segment(&self.config.dataset)
            ),
            _ => super::mapping::absolute_image(raw, "https", None),
        }
    }

    fn parse(&self, delivery: &Delivery<'_>) -> Result<Inbound, InboundError> {
        let document: Value = serde_json::from_slice(delivery.body)
            .map_err(|e| InboundError::Malformed(format!("not a Sanity document: {e}")))?;
        let delivery_id = delivery
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(match self.document_content(&document)? {
            Ok(content) => Inbound::Publish {
                delivery_id,
                contents: vec![content],
            },
            Err(reason) => Inbound::Ignored { reason },
        })
    }

    /// A document (the webhook's projection, or a query's result) as content, or why it makes
    /// no video.
    fn document_content(&self, document: &Value) -> Result<Result<Content, String>, InboundError> {
        let id = document["_id"]
            .as_str()
            .ok_or_else(|| InboundError::Malformed("the projection has no _id".into()))?;
        if id.starts_with("drafts.") {
            return Ok(Err("a draft, not a published document".into()));
        }
        let kind = document["_type"].as_str().unwrap_or_default().to_string();
        if !self.fields.counts(&kind) {
            return Ok(Err(format!("_type {kind:?} does not make videos")));
        }
        let content = self.fields.content(
            &DEFAULTS,
            Entry {
                source: &self.source,
                cms: "sanity",
                id: id.to_string(),
                // `_rev` is an opaque id; `_updatedAt` orders the document's revisions.
                revision: document["_updatedAt"]
                    .as_str()
                    .or_else(|| document["_rev"].as_str())
                    .unwrap_or_default()
                    .into(),
                kind,
                locale: None,
                url: None,
            },
            document,
        )?;
        let image = content.image.as_deref().map(|raw| self.image_url(raw));
        Ok(Ok(Content { image, ..content }))
    }
}

#[async_trait::async_trait]
impl CmsAdapter for Sanity {
    fn kind(&self) -> &'static str {
        "sanity"
    }

    fn write_back_targets(&self) -> Vec<(&'static str, String)> {
        super::target("api_url", self.config.api_url.as_deref())
    }

    async fn receive(&self, delivery: &Delivery<'_>) -> Result<Inbound, InboundError> {
        self.verify(delivery, crate::store::now_ms())?;
        self.parse(delivery)
    }

    /// `GET {api}/{version}/data/query/{dataset}` with a GROQ query for published documents
    /// (drafts' `drafts.` ids excluded) changed since `since_ms`, ordered by `_updatedAt`, sliced.
    async fn list_published(
        &self,
        since_ms: i64,
        cursor: Option<&str>,
    ) -> Result<Option<Page>, ListError> {
        let (Some(api), Some(token)) = (&self.config.api_url, &self.config.api_token) else {
            return Ok(None);
        };
        let start: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let end = start + LIST_LIMIT;
        let url = format!(
            "{}/{}/data/query/{}",
            api.trim_end_matches('/'),
            self.config.api_version,
            super::http::segment(&self.config.dataset)
        );
        let query = format!(
            "*[!(_id in path(\"drafts.**\")) && dateTime(_updatedAt) >= dateTime($since)] | order(_updatedAt asc) [{start}...{end}]"
        );
        let since = format!("\"{}\"", super::format_time(since_ms));
        let request = self
            .http
            .get(&url)
            .bearer_auth(token)
            .query(&[("query", query.as_str()), ("$since", since.as_str())]);
        let answer = super::http::send(request, &format!("GET {url}")).await?;
        let documents = answer["result"]
            .as_array()
            .ok_or_else(|| ListError(format!("GET {url}: no \"result\" list")))?;
        let mut items = Vec::with_capacity(documents.len());
        for document in documents {
            let changed = super::parse_time(&document["_updatedAt"]).unwrap_or(since_ms);
            let contents = self
                .document_content(document)
                .map(|counted| counted.map(|c| vec![c]));
            items.extend(Listed::counted(changed, contents));
        }
        let full = documents.len() as u64 == LIST_LIMIT;
        Ok(Some(Page {
            items,
            next: full.then(|| end.to_string()),
        }))
    }

    async fn write_back(
        &self,
        content: &Content,
        field: &str,
        video_url: &str,
    ) -> Result<(), WriteBackError> {
        let (Some(api), Some(token)) = (&self.config.api_url, &self.config.api_token) else {
            return Ok(());
        };
        let url = format!(
            "{}/{}/data/mutate/{}",
            api.trim_end_matches('/'),
            self.config.api_version,
            self.config.dataset
        );
        let mutation = json!({"mutations": [{"patch": {
            "id": content.id, "set": {field: video_url}}}]});
        let request = self.http.post(&url).bearer_auth(token).json(&mutation);
        super::http::send(request, &format!("POST {url}"))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::mapping::FieldMap;
    use axum::http::HeaderMap;

    const SECRET: &str = "sanity-test-secret";
    const BODY: &[u8] = br#"{"_id":"post-123","_type":"post","_rev":"r1","title":"Hello","body":[{"_type":"block","children":[{"_type":"span","text":"World."}]}]}"#;
    const T: i64 = 1700000000000;
    /// base64url(HMAC-SHA256("sanity-test-secret", "1700000000000." + BODY)), computed with
    /// Python's hmac/base64 from the documented algorithm.
    const V1: &str = "vcTJ6kljtayR4LLCEjiHyLZstosyZiLD4iQzT4WzyxI";

    fn sanity() -> Sanity {
        let config = Config {
            secret: SECRET.into(),
            tolerance_secs: 300,
            api_url: None,
            api_version: default_api_version(),
            dataset: default_dataset(),
            api_token: None,
            project_id: Some("zp7mbokg".into()),
            cdn_url: default_cdn(),
        };
        Sanity::new("studio".into(), &config, &FieldMap::default())
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("sanity-webhook-signature", value.parse().unwrap());
        h.insert("idempotency-key", "idem-1".parse().unwrap());
        h
    }

    fn check(headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), InboundError> {
        sanity().verify(&Delivery::post(headers, body), now)
    }

    #[test]
    fn verifies_the_documented_signature_and_refuses_the_rest() {
        let good = headers(&format!("t={T},v1={V1}"));
        check(&good, BODY, T + 1000).unwrap();
        assert!(check(&good, b"{}", T).is_err(), "tampered body");
        assert!(check(&good, BODY, T + 301_000).is_err(), "stale");
        assert!(
            check(&headers(&format!("t={T},v1={}", &V1[..20])), BODY, T).is_err(),
            "truncated"
        );
        assert!(
            check(&headers(&format!("t={},v1={V1}", T + 1)), BODY, T).is_err(),
            "other t"
        );
        assert!(check(&headers("v1=abc"), BODY, T).is_err(), "no t");
        assert!(check(&HeaderMap::new(), BODY, T).is_err(), "missing header");
        let mut other = sanity();
        other.config.secret = "another-secret".into();
        assert!(other.verify(&Delivery::post(&good, BODY), T).is_err());
    }

    #[test]
    fn parses_published_documents_and_ignores_drafts() {
        let headers = headers("");
        let parse = |body: &[u8]| sanity().parse(&Delivery::post(&headers, body));
        let Inbound::Publish {
            delivery_id,
            contents,
        } = parse(BODY).unwrap()
        else {
            panic!()
        };
        assert_eq!(delivery_id.as_deref(), Some("idem-1"));
        assert_eq!(
            (contents[0].title.as_str(), contents[0].body_text.as_str()),
            ("Hello", "World.")
        );
        let draft = br#"{"_id":"drafts.post-123","_type":"post","title":"Hello"}"#;
        assert!(matches!(parse(draft).unwrap(), Inbound::Ignored { .. }));
        assert!(matches!(
            parse(br#"{"_type":"post"}"#),
            Err(InboundError::Malformed(_))
        ));
    }

    #[test]
    fn image_asset_references_become_cdn_urls() {
        let sanity = sanity();
        assert_eq!(
            sanity.image_url("image-Tb9Ew8CXIwaY6R1kjMvI0uRR-2000x3000-jpg"),
            "https://cdn.sanity.io/images/zp7mbokg/production/Tb9Ew8CXIwaY6R1kjMvI0uRR-2000x3000.jpg"
        );
        assert_eq!(sanity.image_url("https://x/y.png"), "https://x/y.png");
        assert_eq!(
            sanity.image_url("image-../../x-1x1-png"),
            "image-../../x-1x1-png"
        );
    }
}
