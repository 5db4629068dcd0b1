//! Directus (docs.directus.io: Flows — "Event Hook" trigger and "Webhook / Request URL"
//! operation; the Items REST API). Legacy webhooks are deprecated, so a Flow sends
//! `{{$trigger}}` on `items.create` / `items.update`. Directus does not sign: the Flow sends a
//! static header we compare in constant time.
//!
//! Directus has no publish state of its own: the item counts when its status field (default
//! `status`) becomes the published value (default `published`). An update's payload holds only
//! the fields that changed, so the publish transition is exactly "the payload sets status to
//! published"; the full item is then read with `GET /items/{collection}/{key}`. Our write-back
//! (`PATCH /items/{collection}/{key}` with only the video field) emits `items.update` with a
//! payload without the status field: ignored, so no loop (Directus issues 14086, 17550).

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
    /// The Directus server; needed to read updated items and to write back.
    pub api_url: Option<String>,
    /// A static token with read/update rights on the collections.
    pub api_token: Option<String>,
    #[serde(default = "default_status_field")]
    pub status_field: String,
    #[serde(default = "default_published")]
    pub published_value: String,
    /// The collections the catch-up sweep lists (none: no sweep). Each needs Directus's
    /// `date_created` / `date_updated` fields, which its filter and order use.
    #[serde(default)]
    pub collections: Vec<String>,
}

fn default_status_field() -> String {
    "status".into()
}
fn default_published() -> String {
    "published".into()
}

/// Items per listing page (as Directus's `limit` parameter).
const LIST_LIMIT: &str = "100";

const DEFAULTS: Defaults = Defaults {
    title: "title",
    body: "content",
    image: "image",
    locale: "language",
};

/// The Directus adapter: its source name, [`Config`], field map and HTTP client.
pub type Directus = super::Adapter<Config>;

impl Directus {
    /// A Directus file reference as a URL: an id becomes `{api_url}/assets/{id}`.
    fn asset_url(&self, raw: &str) -> String {
        let api = self.config.api_url.as_deref();
        let scheme = api.map_or("https", super::mapping::scheme_of);
        let absolute = super::mapping::absolute_image(raw, scheme, api);
        match api {
            Some(api) if absolute == raw && !raw.contains("://") => format!(
                "{}/assets/{}",
                api.trim_end_matches('/'),
                super::http::segment(raw)
            ),
            _ => absolute,
        }
    }

    /// A full item of `collection` as content.
    fn item_content(
        &self,
        collection: &str,
        key: &str,
        item: &Value,
    ) -> Result<Content, InboundError> {
        let mut content = self.fields.content(
            &DEFAULTS,
            Entry {
                source: &self.source,
                cms: "directus",
                id: format!("{collection}/{key}"),
                revision: item["date_updated"].as_str().unwrap_or_default().into(),
                kind: collection.to_string(),
                locale: None,
                url: None,
            },
            item,
        )?;
        // A file field holds the file's id; the file is served at `/assets/{id}`.
        content.image = content.image.map(|raw| self.asset_url(&raw));
        Ok(content)
    }

    /// The full item: from the API when configured (an update's payload is partial).
    async fn item(
        &self,
        collection: &str,
        key: &str,
        payload: &Value,
    ) -> Result<Value, InboundError> {
        let (Some(api), Some(token)) = (&self.config.api_url, &self.config.api_token) else {
            return Ok(payload.clone());
        };
        let url = format!(
            "{}/items/{}/{}",
            api.trim_end_matches('/'),
            super::http::segment(collection),
            super::http::segment(key)
        );
        let answer = super::http::send(
            self.http.get(&url).bearer_auth(token),
            &format!("GET {url}"),
        )
        .await
        .map_err(|e| InboundError::Unavailable(e.to_string()))?;
        Ok(answer["data"].clone())
    }
}

#[async_trait::async_trait]
impl CmsAdapter for Directus {
    fn kind(&self) -> &'static str {
        "directus"
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
        let trigger: Value = serde_json::from_slice(delivery.body)
            .map_err(|e| InboundError::Malformed(format!("not a Directus Flow trigger: {e}")))?;
        let event = trigger["event"].as_str().unwrap_or_default();
        let collection = trigger["collection"]
            .as_str()
            .ok_or_else(|| InboundError::Malformed("no \"collection\"".into()))?;
        if !matches!(event, "items.create" | "items.update")
            && !event.ends_with(".items.create")
            && !event.ends_with(".items.update")
        {
            return Ok(Inbound::Ignored {
                reason: format!("{event} is not an item create/update"),
            });
        }
        let payload = &trigger["payload"];
        if !payload.is_object() {
            return Err(InboundError::Malformed(
                "\"payload\" must be an object".into(),
            ));
        }
        let status = &self.config.status_field;
        if payload[status].as_str() != Some(self.config.published_value.as_str()) {
            return Ok(Inbound::Ignored {
                reason: format!(
                    "the payload does not set {status} to {:?}",
                    self.config.published_value
                ),
            });
        }
        if !self.fields.counts(collection) {
            return Ok(Inbound::Ignored {
                reason: format!("collection {collection:?} does not make videos"),
            });
        }
        let keys: Vec<String> = match (&trigger["key"], &trigger["keys"]) {
            (Value::Null, Value::Array(keys)) => keys
                .iter()
                .map(|key| super::mapping::id(key, "keys[]"))
                .collect::<Result<_, _>>()?,
            (key, _) if !key.is_null() => vec![super::mapping::id(key, "key")?],
            _ => return Err(InboundError::Malformed("no \"key\" or \"keys\"".into())),
        };
        let mut contents = Vec::with_capacity(keys.len());
        for key in keys {
            let item = self.item(collection, &key, payload).await?;
            contents.push(self.item_content(collection, &key, &item)?);
        }
        Ok(Inbound::Publish {
            delivery_id: None,
            contents,
        })
    }

    /// `GET /items/{collection}?filter=…&sort=date_updated` for each collection in
    /// `collections`: items whose status field is the published value, created or updated
    /// since `since_ms`; merged in time order.
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
        let since = super::format_time(since_ms);
        let filter = json!({"_and": [
            {self.config.status_field.as_str(): {"_eq": self.config.published_value}},
            {"_or": [{"date_updated": {"_gte": since}}, {"date_created": {"_gte": since}}]},
        ]})
        .to_string();
        let mut streams = Vec::new();
        for collection in &self.config.collections {
            if !self.fields.counts(collection) {
                continue;
            }
            let url = format!(
                "{}/items/{}",
                api.trim_end_matches('/'),
                super::http::segment(collection)
            );
            let request = self.http.get(&url).bearer_auth(token).query(&[
                ("filter", filter.as_str()),
                ("sort", "date_updated,date_created"),
                ("limit", LIST_LIMIT),
            ]);
            let answer = super::http::send(request, &format!("GET {url}")).await?;
            let rows = answer["data"]
                .as_array()
                .ok_or_else(|| ListError(format!("GET {url}: no \"data\" list")))?;
            let mut items = Vec::with_capacity(rows.len());
            for item in rows {
                let changed = [&item["date_updated"], &item["date_created"]]
                    .into_iter()
                    .filter_map(super::parse_time)
                    .max();
                let contents = super::mapping::id(&item["id"], "id")
                    .and_then(|key| self.item_content(collection, &key, item))
                    .map(|c| vec![c]);
                items.push(Listed::new(changed.unwrap_or(since_ms), contents));
            }
            // Items created but never updated sort first (a null date_updated): re-sort by the
            // time that counts.
            items.sort_by_key(|i| i.changed_ms);
            streams.push((items, rows.len().to_string() == LIST_LIMIT));
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
        let (collection, key) = content.id.split_once('/').ok_or_else(|| {
            WriteBackError::Permanent(format!("{} is not collection/key", content.id))
        })?;
        let url = format!(
            "{}/items/{}/{}",
            api.trim_end_matches('/'),
            super::http::segment(collection),
            super::http::segment(key)
        );
        let request = self
            .http
            .patch(&url)
            .bearer_auth(token)
            .json(&json!({field: video_url}));
        super::http::send(request, &format!("PATCH {url}"))
            .await
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::mapping::FieldMap;
    use axum::http::HeaderMap;

    fn directus() -> Directus {
        let config = Config {
            token: "Bearer flow-token".into(),
            token_header: "authorization".into(),
            api_url: None,
            api_token: None,
            status_field: default_status_field(),
            published_value: default_published(),
            collections: Vec::new(),
        };
        Directus::new("docs".into(), &config, &FieldMap::default())
    }

    async fn receive(body: &str) -> Result<Inbound, InboundError> {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer flow-token".parse().unwrap());
        let delivery = Delivery {
            method: "POST",
            path: "/hooks/docs",
            query: None,
            headers: &headers,
            body: body.as_bytes(),
        };
        directus().receive(&delivery).await
    }

    #[tokio::test]
    async fn only_the_transition_to_published_counts() {
        let created = r#"{"event":"items.create","collection":"articles","key":12,"payload":{"title":"Hi","content":"<p>Body.</p>","status":"published"}}"#;
        let Inbound::Publish { contents, .. } = receive(created).await.unwrap() else {
            panic!()
        };
        assert_eq!(
            (contents[0].id.as_str(), contents[0].body_text.as_str()),
            ("articles/12", "Body.")
        );
        let draft = r#"{"event":"items.create","collection":"articles","key":13,"payload":{"title":"Hi","status":"draft"}}"#;
        assert!(matches!(
            receive(draft).await.unwrap(),
            Inbound::Ignored { .. }
        ));
        // What our own write-back emits: only the video field changed.
        let echo = r#"{"event":"items.update","collection":"articles","keys":["12"],"payload":{"video_url":"https://v"}}"#;
        assert!(matches!(
            receive(echo).await.unwrap(),
            Inbound::Ignored { .. }
        ));
        assert!(matches!(
            receive("{").await,
            Err(InboundError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn a_wrong_or_missing_token_is_refused() {
        let headers = HeaderMap::new();
        let delivery = Delivery::post(&headers, b"{}");
        assert!(matches!(
            directus().receive(&delivery).await,
            Err(InboundError::Unauthorized(_))
        ));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "Bearer flow-tokem".parse().unwrap());
        let delivery = Delivery::post(&headers, b"{}");
        assert!(matches!(
            directus().receive(&delivery).await,
            Err(InboundError::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn a_payload_of_the_wrong_shape_is_malformed() {
        for body in [
            r#"{"event": "items.create", "collection": "articles", "key": 1, "payload": []}"#,
            r#"{"event": "items.create", "collection": "articles", "key": 1, "payload": "x"}"#,
            r#"{"event": "items.create", "collection": 5, "key": 1, "payload": {}}"#,
        ] {
            assert!(
                matches!(receive(body).await, Err(InboundError::Malformed(_))),
                "{body}"
            );
        }
    }
}
