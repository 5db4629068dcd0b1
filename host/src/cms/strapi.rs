//! Strapi v5 and v4 (docs.strapi.io: "Webhooks" in the CMS configuration guide, and the REST API
//! reference). Strapi does not sign: it sends the static headers configured with the webhook, so
//! we require one (e.g. `Authorization: Bearer …`) and compare it in constant time.
//!
//! Inbound: `X-Strapi-Event` / `{"event", "model", "uid", "entry"}`; only `entry.publish`
//! counts (with Draft & Publish on). v5 entries carry `documentId` and `locale`; v4 only a
//! numeric `id`. A v5 `entry.publish` can arrive with `"entry": null` (a known race): it is
//! acknowledged and ignored with a log line rather than refused. Strapi sends no delivery id and
//! duplicates publishes, so dedupe rests on the content fingerprint.
//!
//! Write-back: `PUT /api/{pluralApiId}/{documentId}` (v4: the numeric id) with
//! `{"data": {field: url}}` and an API token. In v5 that write publishes again and fires
//! `entry.publish`; the fingerprint of title/body/image is unchanged, so it makes no new render.

use std::collections::BTreeMap;

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
    /// The static header's value the webhook is configured to send.
    pub token: String,
    /// Which header carries it.
    #[serde(default = "signing::default_token_header")]
    pub token_header: String,
    /// The Strapi server, e.g. `https://cms.example.com`; none = no write-back.
    pub api_url: Option<String>,
    /// An API token with update rights.
    pub api_token: Option<String>,
    /// Model name → plural API id (default: model + "s").
    #[serde(default)]
    pub collections: BTreeMap<String, String>,
}

/// Entries per listing page.
const LIST_LIMIT: u64 = 100;

const DEFAULTS: Defaults = Defaults {
    title: "title",
    body: "content",
    image: "cover.url",
    locale: "locale",
};

/// The Strapi adapter: its source name, [`Config`], field map and HTTP client.
pub type Strapi = super::Adapter<Config>;

impl Strapi {
    fn parse(&self, body: &[u8]) -> Result<Inbound, InboundError> {
        let event: Value = serde_json::from_slice(body)
            .map_err(|e| InboundError::Malformed(format!("not a Strapi webhook: {e}")))?;
        let name = event["event"]
            .as_str()
            .ok_or_else(|| InboundError::Malformed("no \"event\"".into()))?;
        if name != "entry.publish" {
            return Ok(ignored(format!("{name} is not entry.publish")));
        }
        let model = event["model"].as_str().unwrap_or_default().to_string();
        if !self.fields.counts(&model) {
            return Ok(ignored(format!("model {model:?} does not make videos")));
        }
        let entry = &event["entry"];
        if entry.is_null() {
            return Ok(ignored(
                "entry.publish with \"entry\": null (a Strapi v5 race); nothing to render".into(),
            ));
        }
        Ok(Inbound::Publish {
            delivery_id: None,
            contents: vec![self.entry_content(model, entry)?],
        })
    }

    /// An entry of `model` (as the webhook and the REST API write it) as content.
    fn entry_content(&self, model: String, entry: &Value) -> Result<Content, InboundError> {
        let id = match (&entry["documentId"], &entry["id"]) {
            (Value::String(document), _) => document.clone(),
            (_, Value::Number(n)) => n.to_string(),
            _ => {
                return Err(InboundError::Malformed(
                    "entry has no documentId or id".into(),
                ))
            }
        };
        let content = self.fields.content(
            &DEFAULTS,
            Entry {
                source: &self.source,
                cms: "strapi",
                id,
                // `updatedAt` orders the entry's versions (revision order); `publishedAt` where
                // an older Strapi leaves it out.
                revision: entry["updatedAt"]
                    .as_str()
                    .or_else(|| entry["publishedAt"].as_str())
                    .unwrap_or_default()
                    .into(),
                kind: model,
                locale: None,
                url: None,
            },
            entry,
        )?;
        // Strapi's local upload provider answers `/uploads/…`, relative to the server.
        let api = self.config.api_url.as_deref();
        let image = content.image.as_deref().map(|raw| {
            super::mapping::absolute_image(raw, api.map_or("https", super::mapping::scheme_of), api)
        });
        Ok(Content { image, ..content })
    }
}

fn ignored(reason: String) -> Inbound {
    Inbound::Ignored { reason }
}

#[async_trait::async_trait]
impl CmsAdapter for Strapi {
    fn kind(&self) -> &'static str {
        "strapi"
    }

    fn write_back_targets(&self) -> Vec<(&'static str, String)> {
        super::target("api_url", self.config.api_url.as_deref())
    }

    async fn receive(&self, delivery: &Delivery<'_>) -> Result<Inbound, InboundError> {
        signing::StaticToken {
            token: &self.config.token,
            token_header: &self.config.token_header,
        }
        .check(delivery.headers)?;
        self.parse(delivery.body)
    }

    /// `GET /api/{pluralApiId}?status=published&filters[updatedAt][$gte]=…&sort=updatedAt:asc`
    /// for each model named in `collections`, merged in time order (REST paging by page).
    async fn list_published(
        &self,
        since_ms: i64,
        _cursor: Option<&str>,
    ) -> Result<Option<Page>, ListError> {
        let (Some(api), Some(token)) = (&self.config.api_url, &self.config.api_token) else {
            return Ok(None);
        };
        if self.config.collections.is_empty() {
            return Ok(None);
        }
        let mut streams = Vec::new();
        for (model, plural) in &self.config.collections {
            if !self.fields.counts(model) {
                continue;
            }
            let url = format!(
                "{}/api/{}",
                api.trim_end_matches('/'),
                super::http::segment(plural)
            );
            let request = self.http.get(&url).bearer_auth(token).query(&[
                ("status", "published".to_string()),
                ("filters[updatedAt][$gte]", super::format_time(since_ms)),
                ("sort", "updatedAt:asc".into()),
                ("pagination[pageSize]", LIST_LIMIT.to_string()),
                ("populate", "*".into()),
            ]);
            let answer = super::http::send(request, &format!("GET {url}")).await?;
            let entries = answer["data"]
                .as_array()
                .ok_or_else(|| ListError(format!("GET {url}: no \"data\" list")))?;
            let mut items = Vec::with_capacity(entries.len());
            for entry in entries {
                items.push(Listed::new(
                    super::parse_time(&entry["updatedAt"]).unwrap_or(since_ms),
                    self.entry_content(model.clone(), entry).map(|c| vec![c]),
                ));
            }
            let more = answer["meta"]["pagination"]["pageCount"]
                .as_u64()
                .unwrap_or(1)
                > 1;
            streams.push((items, more));
        }
        Ok(Some(super::merge_streams(streams)))
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
        let plural = self
            .config
            .collections
            .get(&content.kind)
            .cloned()
            .unwrap_or_else(|| format!("{}s", content.kind));
        let url = format!(
            "{}/api/{}/{}",
            api.trim_end_matches('/'),
            super::http::segment(&plural),
            super::http::segment(&content.id)
        );
        let mut request = self
            .http
            .put(&url)
            .bearer_auth(token)
            .json(&json!({"data": {field: video_url}}));
        if content.fields.get("locale").is_some() {
            request = request.query(&[("locale", &content.locale)]);
        }
        super::http::send(request, &format!("PUT {url}"))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::mapping::FieldMap;
    use axum::http::HeaderMap;

    fn adapter(fields: FieldMap) -> Strapi {
        let config = Config {
            token: "Bearer s3cret".into(),
            token_header: "authorization".into(),
            api_url: None,
            api_token: None,
            collections: BTreeMap::new(),
        };
        Strapi::new("strapi".into(), &config, &fields)
    }

    fn delivery<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Delivery<'a> {
        Delivery {
            method: "POST",
            path: "/hooks/strapi",
            query: None,
            headers,
            body,
        }
    }

    const V5: &[u8] = br#"{"event":"entry.publish","createdAt":"2020-01-10T08:59:35.796Z","model":"article","uid":"api::article.article","entry":{"id":1,"documentId":"hp2h4vps4ei4vp0a7fd8ed7g","locale":"en","publishedAt":"2020-08-29T14:20:12.134Z","title":"Paris","content":[{"type":"paragraph","children":[{"type":"text","text":"A city."}]}]}}"#;

    #[tokio::test]
    async fn a_static_token_is_compared_exactly() {
        let strapi = adapter(FieldMap::default());
        let mut headers = HeaderMap::new();
        assert!(matches!(
            strapi.receive(&delivery(&headers, V5)).await,
            Err(InboundError::Unauthorized(_))
        ));
        for wrong in ["Bearer s3cre", "Bearer s3cret2", "bearer s3cret", ""] {
            headers.insert("authorization", wrong.parse().unwrap());
            assert!(
                strapi.receive(&delivery(&headers, V5)).await.is_err(),
                "{wrong:?}"
            );
        }
        headers.insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(strapi.receive(&delivery(&headers, V5)).await.is_ok());
    }

    #[test]
    fn parses_v5_and_v4_entries_and_ignores_the_rest() {
        let strapi = adapter(FieldMap::default());
        let Inbound::Publish { contents, .. } = strapi.parse(V5).unwrap() else {
            panic!("v5 publish")
        };
        let c = &contents[0];
        assert_eq!(
            (
                c.id.as_str(),
                c.locale.as_str(),
                c.kind.as_str(),
                c.title.as_str(),
                c.body_text.as_str()
            ),
            (
                "hp2h4vps4ei4vp0a7fd8ed7g",
                "en",
                "article",
                "Paris",
                "A city."
            )
        );
        let v4 = br#"{"event":"entry.publish","model":"article","entry":{"id":7,"title":"Old","content":"<p>Body</p>"}}"#;
        let Inbound::Publish { contents, .. } = strapi.parse(v4).unwrap() else {
            panic!("v4 publish")
        };
        assert_eq!(
            (contents[0].id.as_str(), contents[0].body_text.as_str()),
            ("7", "Body")
        );
        for ignored in [
            &br#"{"event":"entry.update","model":"article","entry":{"id":1}}"#[..],
            br#"{"event":"entry.publish","model":"article","entry":null}"#,
        ] {
            assert!(matches!(
                strapi.parse(ignored).unwrap(),
                Inbound::Ignored { .. }
            ));
        }
        assert!(matches!(
            strapi.parse(b"[1"),
            Err(InboundError::Malformed(_))
        ));
        let only_pages = adapter(FieldMap {
            content_types: vec!["page".into()],
            ..FieldMap::default()
        });
        assert!(matches!(
            only_pages.parse(V5).unwrap(),
            Inbound::Ignored { .. }
        ));
    }
}
