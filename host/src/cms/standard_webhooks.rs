//! Standard Webhooks (https://www.standardwebhooks.com, spec/standard-webhooks.md in
//! github.com/standard-webhooks/standard-webhooks): the generic source for any system that signs
//! this way (Svix, Replicate, our Payload CMS snippet).
//!
//! Signature: `webhook-signature` is a space-separated list of `v1,<base64 HMAC-SHA256>` over
//! `{webhook-id}.{webhook-timestamp}.{raw body}`, keyed with the base64 part of `whsec_…`.
//! Timestamps outside ±tolerance are refused (replay window). Comparison is constant-time and
//! length-checked (one version of the reference Rust library accepted truncated signatures).
//!
//! Payload we accept: `{"type": "content.published", "data": {"id", "title", "body_html" or
//! "body_text", "locale"?, "kind"?, "revision"?, "url"?, "image_url"?, "locales"?: {…}}}`.
//! Other `type`s are acknowledged and ignored. Write-back: a signed POST of `{"type":
//! "video.ready", "data": {"id", "locale", "field", "video_url"}}` to `writeback_url`.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::mapping::{html_to_text, scalar};
use super::{CmsAdapter, Inbound, InboundError, WriteBackError};
use crate::content::Content;

type HmacSha256 = Hmac<Sha256>;

/// A Standard Webhooks signing key.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Parses `whsec_<base64>` (the prefix is optional).
    pub fn parse(secret: &str) -> anyhow::Result<Secret> {
        let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
        let key = BASE64
            .decode(b64.trim())
            .map_err(|e| anyhow::anyhow!("webhook secret is not whsec_<base64>: {e}"))?;
        anyhow::ensure!(
            key.len() >= 16,
            "webhook secret is too short ({} bytes)",
            key.len()
        );
        Ok(Secret(key))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key size");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value for a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self
            .mac(id, &timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("v1,{}", BASE64.encode(tag))
    }

    /// Verifies the three headers against the raw body; `now` in unix seconds.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        tolerance_secs: u64,
        now: i64,
    ) -> Result<String, InboundError> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| InboundError::Unauthorized(format!("missing {name} header")))
        };
        let id = header("webhook-id")?;
        let timestamp = header("webhook-timestamp")?;
        let signatures = header("webhook-signature")?;
        let ts: i64 = timestamp
            .parse()
            .map_err(|_| InboundError::Unauthorized("webhook-timestamp is not a number".into()))?;
        if (now - ts).unsigned_abs() > tolerance_secs {
            return Err(InboundError::Unauthorized(format!(
                "webhook-timestamp {ts} is outside the {tolerance_secs} s tolerance (now {now})"
            )));
        }
        let valid = signatures.split_whitespace().any(|candidate| {
            let Some(b64) = candidate.strip_prefix("v1,") else {
                return false;
            };
            let Ok(sig) = BASE64.decode(b64) else {
                return false;
            };
            self.mac(id, timestamp, body).verify_slice(&sig).is_ok()
        });
        if !valid {
            return Err(InboundError::Unauthorized("no valid v1 signature".into()));
        }
        Ok(id.to_string())
    }
}

/// `[sources.NAME]` with `cms = "standard-webhooks"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `whsec_<base64>` as the sender shows it.
    pub secret: String,
    /// Where the video URL is POSTed back, signed the same way; none (and no `writeback`) = no
    /// write-back.
    pub writeback_url: Option<String>,
    /// Or: any HTTP request, from templates (see [`RequestTemplate`]).
    pub writeback: Option<RequestTemplate>,
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
}

fn default_tolerance() -> u64 {
    300
}

/// A write-back described as an HTTP request whose URL, headers and body are Handlebars
/// templates over `id`, `locale`, `kind`, `title`, `field` and `video_url`. Values are escaped
/// for where they land: percent-encoded in the URL, JSON-string-escaped in headers and body (so
/// `{"url": "{{video_url}}"}` stays valid JSON whatever the value).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestTemplate {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

fn default_method() -> String {
    "POST".into()
}

impl RequestTemplate {
    /// Checks the method and compiles the templates once, when the source is built (a template
    /// that does not compile is a start-up error, not a failed write-back).
    fn compile(&self) -> anyhow::Result<CompiledRequest> {
        let method = reqwest::Method::from_bytes(self.method.to_uppercase().as_bytes())
            .map_err(|e| anyhow::anyhow!("write-back method {:?}: {e}", self.method))?;
        let mut url = handlebars::Handlebars::new();
        url.set_strict_mode(true);
        url.register_escape_fn(percent_encode);
        url.register_template_string("url", &self.url)?;
        let mut json = handlebars::Handlebars::new();
        json.set_strict_mode(true);
        json.register_escape_fn(|s| {
            let quoted = serde_json::Value::String(s.to_string()).to_string();
            quoted[1..quoted.len() - 1].to_string()
        });
        json.register_template_string("body", &self.body)?;
        for (name, value) in &self.headers {
            json.register_template_string(&format!("header:{name}"), value)?;
        }
        Ok(CompiledRequest {
            method,
            url,
            json,
            headers: self.headers.keys().cloned().collect(),
        })
    }
}

/// A [`RequestTemplate`] ready to render: the URL engine percent-encodes values, the JSON engine
/// (headers and body) string-escapes them.
struct CompiledRequest {
    method: reqwest::Method,
    url: handlebars::Handlebars<'static>,
    json: handlebars::Handlebars<'static>,
    headers: Vec<String>,
}

impl CompiledRequest {
    /// The request for one write-back.
    fn render(
        &self,
        http: &reqwest::Client,
        values: &serde_json::Value,
    ) -> Result<reqwest::RequestBuilder, WriteBackError> {
        let fail = |e: handlebars::RenderError| {
            WriteBackError::Permanent(format!("write-back template: {e}"))
        };
        let url = self.url.render("url", values).map_err(fail)?;
        let mut request = http.request(self.method.clone(), url);
        for name in &self.headers {
            let value = self
                .json
                .render(&format!("header:{name}"), values)
                .map_err(fail)?;
            request = request.header(name, value);
        }
        let body = self.json.render("body", values).map_err(fail)?;
        Ok(request.body(body))
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

pub struct StandardWebhooks {
    source: String,
    secret: Secret,
    config: Config,
    /// `config.writeback`, compiled.
    writeback: Option<CompiledRequest>,
    http: reqwest::Client,
}

impl StandardWebhooks {
    pub fn new(source: String, config: &Config) -> anyhow::Result<Self> {
        let writeback = config
            .writeback
            .as_ref()
            .map(RequestTemplate::compile)
            .transpose()
            .map_err(|e| anyhow::anyhow!("source {source:?}: [writeback]: {e}"))?;
        Ok(StandardWebhooks {
            source,
            secret: Secret::parse(&config.secret)?,
            writeback,
            config: config.clone(),
            http: super::http::client(),
        })
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    data: serde_json::Value,
}

#[derive(Deserialize)]
struct Entry {
    id: serde_json::Value,
    title: String,
    #[serde(default)]
    body_html: Option<String>,
    #[serde(default)]
    body_text: Option<String>,
    #[serde(default = "default_locale")]
    locale: String,
    #[serde(default = "default_kind")]
    kind: String,
    #[serde(default)]
    revision: Option<serde_json::Value>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
}

fn default_locale() -> String {
    "en-US".into()
}

fn default_kind() -> String {
    "article".into()
}

/// Verifies a Standard Webhooks delivery and parses our `content.published` payload: what this
/// adapter does, and the WordPress adapter too (its companion plugin sends this shape).
pub fn receive_signed(
    secret: &Secret,
    tolerance_secs: u64,
    source: &str,
    cms: &'static str,
    delivery: &super::Delivery<'_>,
) -> Result<Inbound, InboundError> {
    let now = crate::store::now_ms() / 1000;
    let delivery_id = secret.verify(delivery.headers, delivery.body, tolerance_secs, now)?;
    Ok(match parse(source, cms, delivery.body)? {
        Some(content) => Inbound::Publish {
            delivery_id: Some(delivery_id),
            contents: vec![content],
        },
        None => Inbound::Ignored {
            reason: "event type is not content.published".into(),
        },
    })
}

fn parse(source: &str, cms: &'static str, body: &[u8]) -> Result<Option<Content>, InboundError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        InboundError::Malformed(format!("not a Standard Webhooks JSON payload: {e}"))
    })?;
    if envelope.kind != "content.published" {
        return Ok(None);
    }
    content_from_data(source, cms, envelope.data).map(Some)
}

/// The `data` of a `content.published` message as content (the WordPress adapter's listing
/// builds the same `data` from the REST API, so that both paths make the same content).
pub fn content_from_data(
    source: &str,
    cms: &'static str,
    data: serde_json::Value,
) -> Result<Content, InboundError> {
    let entry: Entry = serde_json::from_value(data.clone())
        .map_err(|e| InboundError::Malformed(format!("data: {e}")))?;
    let id = super::mapping::id(&entry.id, "data.id")?;
    let body_html = entry.body_html.unwrap_or_default();
    let body_text = match entry.body_text {
        Some(text) => text,
        None => html_to_text(&body_html),
    };
    Ok(Content {
        source: source.to_string(),
        cms: cms.into(),
        id,
        revision: entry.revision.as_ref().map(scalar).unwrap_or_default(),
        kind: entry.kind,
        locale: entry.locale,
        title: entry.title,
        body_html,
        body_text,
        url: entry.url,
        image: entry.image_url,
        fields: data,
    })
}

#[async_trait::async_trait]
impl CmsAdapter for StandardWebhooks {
    fn kind(&self) -> &'static str {
        "standard-webhooks"
    }

    fn names_plan_locale(&self) -> bool {
        true
    }

    fn write_back_targets(&self) -> Vec<(&'static str, String)> {
        super::target("writeback_url", self.config.writeback_url.as_deref())
    }

    async fn receive(&self, delivery: &super::Delivery<'_>) -> Result<Inbound, InboundError> {
        receive_signed(
            &self.secret,
            self.config.tolerance_secs,
            &self.source,
            self.kind(),
            delivery,
        )
    }

    async fn write_back(
        &self,
        content: &Content,
        field: &str,
        video_url: &str,
    ) -> Result<(), WriteBackError> {
        if let Some(template) = &self.writeback {
            let values = serde_json::json!({"id": content.id, "locale": content.locale,
                "kind": content.kind, "title": content.title, "field": field, "video_url": video_url});
            let request = template.render(&self.http, &values)?;
            return super::http::send(request, "write-back").await.map(drop);
        }
        let Some(url) = &self.config.writeback_url else {
            return Ok(());
        };
        let body = serde_json::to_vec(&serde_json::json!({
            "type": "video.ready",
            "data": {"id": content.id, "locale": content.locale, "field": field, "video_url": video_url},
        }))
        .map_err(|e| WriteBackError::Permanent(e.to_string()))?;
        // One message per video: the content and the field (each locale of a multilingual
        // entry has its own), so a receiver's dedup by id keeps every locale's.
        let id = {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(format!("{}\n{field}", content.fingerprint()));
            format!("vidhook_{}", &hex::encode(digest)[..24])
        };
        let request = signed_message(&self.http, url, &self.secret, &id, body);
        super::http::send(request, &format!("POST {url}"))
            .await
            .map(drop)
    }
}

/// A Standard Webhooks message: JSON `body` POSTed to `url` with its id, the time now and the
/// signature over both (what vidhook sends: write-backs, delivered digests).
pub fn signed_message(
    http: &reqwest::Client,
    url: &str,
    secret: &Secret,
    id: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    let ts = crate::store::now_ms() / 1000;
    http.post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", secret.sign(id, ts, &body))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: i64 = 1649367553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("webhook-id", id.parse().unwrap());
        h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        h.insert("webhook-signature", sig.parse().unwrap());
        h
    }

    #[test]
    fn matches_the_published_test_vector() {
        let secret = Secret::parse(SECRET).unwrap();
        assert_eq!(
            secret.sign(ID, TS, BODY),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
        let h = headers(
            ID,
            TS,
            "v1,bad v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        );
        assert_eq!(secret.verify(&h, BODY, 300, TS + 10).unwrap(), ID);
    }

    #[test]
    fn refuses_tampering_truncation_staleness_and_missing_headers() {
        let secret = Secret::parse(SECRET).unwrap();
        let good = secret.sign(ID, TS, BODY);
        let reject =
            |h: &HeaderMap, body: &[u8], now: i64| secret.verify(h, body, 300, now).is_err();
        assert!(reject(&headers(ID, TS, &good), b"{}", TS), "tampered body");
        assert!(
            reject(&headers(ID, TS, &good[..good.len() - 8]), BODY, TS),
            "truncated"
        );
        assert!(reject(&headers(ID, TS, "v1,"), BODY, TS), "empty signature");
        assert!(reject(&headers(ID, TS, &good), BODY, TS + 301), "stale");
        assert!(reject(&headers(ID, TS, &good), BODY, TS - 301), "future");
        assert!(reject(&headers("other", TS, &good), BODY, TS), "other id");
        let other = Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert!(
            other
                .verify(&headers(ID, TS, &good), BODY, 300, TS)
                .is_err(),
            "wrong secret"
        );
        let mut missing = headers(ID, TS, &good);
        missing.remove("webhook-signature");
        assert!(reject(&missing, BODY, TS));
    }

    #[test]
    fn a_write_back_template_that_does_not_compile_is_refused_at_start_up() {
        let config = |url: &str| Config {
            secret: SECRET.into(),
            writeback_url: None,
            writeback: Some(RequestTemplate {
                method: "PATCH".into(),
                url: url.into(),
                headers: Default::default(),
                body: "{}".into(),
            }),
            tolerance_secs: 300,
        };
        assert!(StandardWebhooks::new("blog".into(), &config("https://cms/{{id}}")).is_ok());
        let error = StandardWebhooks::new("blog".into(), &config("https://cms/{{#if id}}"))
            .err()
            .unwrap();
        assert!(error.to_string().contains("[writeback]"), "{error}");
    }

    #[test]
    fn parses_published_content_and_ignores_other_types() {
        let parse = |body: &[u8]| super::parse("blog", "standard-webhooks", body);
        let body = br#"{"type":"content.published","data":{"id":42,"title":"Hi","body_html":"<p>One &amp; two.</p><p>Three.</p>"}}"#;
        let content = parse(body).unwrap().unwrap();
        assert_eq!(
            (content.id.as_str(), content.locale.as_str()),
            ("42", "en-US")
        );
        assert_eq!(content.body_text, "One & two.\n\nThree.");
        assert!(parse(br#"{"type":"content.deleted","data":{}}"#)
            .unwrap()
            .is_none());
        assert!(matches!(
            parse(b"{not json"),
            Err(InboundError::Malformed(_))
        ));
        assert!(matches!(
            parse(br#"{"type":"content.published","data":{"id":"x"}}"#),
            Err(InboundError::Malformed(_))
        ));
    }
}
