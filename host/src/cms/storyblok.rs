//! Storyblok (storyblok.com/docs: "Webhooks" — signature and payloads — and the Management API
//! for stories). The payload is thin: `{"text", "action", "space_id", "story_id", "full_slug"}`;
//! only `action: "published"` counts, and the story is then read from the Management API (if it
//! does not answer, the delivery is not acknowledged: 503, and Storyblok retries).
//!
//! Signature: `webhook-signature` = hex HMAC-SHA1 of the raw body, compared in constant time.
//! There is no timestamp, so no replay window: a replay only re-offers content whose fingerprint
//! is already stored.
//!
//! What is rendered is the *published* story. The Management API answers the working version,
//! which may hold an editor's saved-but-unpublished changes (`unpublished_changes: true`); with a
//! `delivery_token` the story is read from the Content Delivery API with `version=published`
//! instead, and without one a story with unpublished changes is not rendered (ignored, with the
//! reason logged: its published content cannot be read).
//!
//! Write-back: `PUT /v1/spaces/{space}/stories/{id}` with the story's content plus the video
//! field and `publish: 1`, which fires `story.published` again; the story read back has the same
//! title/body/image, so it is a duplicate and makes no render. When the story has unpublished
//! changes, `publish` is left out: publishing would publish the editor's draft; the video then
//! goes live with the editor's next publish.

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
    /// The webhook secret.
    pub secret: String,
    /// Management API; `https://mapi.storyblok.com` unless testing (or another region).
    #[serde(default = "default_api")]
    pub api_url: String,
    /// A personal access token / OAuth token for the Management API.
    pub management_token: String,
    /// A public access token for the Content Delivery API, to read the published version.
    pub delivery_token: Option<String>,
    /// Content Delivery API; `https://api.storyblok.com` unless testing (or another region).
    #[serde(default = "default_delivery")]
    pub delivery_url: String,
    /// The space's id: with `delivery_token`, lets the catch-up sweep list published stories
    /// (webhooks name their space; a listing does not).
    pub space_id: Option<u64>,
}

fn default_api() -> String {
    "https://mapi.storyblok.com".into()
}

fn default_delivery() -> String {
    "https://api.storyblok.com".into()
}

/// Stories per listing page (the Delivery API's `per_page`, at most 100).
const LIST_LIMIT: &str = "100";
/// Write-back attempts while an editor keeps saving the story between our reads.
const COLLISION_RETRIES: usize = 3;

const DEFAULTS: Defaults = Defaults {
    title: "title",
    body: "body",
    image: "image.filename",
    locale: "lang",
};

/// The Storyblok adapter: its source name, [`Config`], field map and HTTP client.
pub type Storyblok = super::Adapter<Config>;

impl Storyblok {
    pub fn verify(&self, delivery: &Delivery<'_>) -> Result<(), InboundError> {
        let given = signing::unhex(
            signing::header(delivery.headers, "webhook-signature")?,
            "webhook-signature",
        )?;
        let expected = signing::hmac_sha1(self.config.secret.as_bytes(), delivery.body);
        signing::check(&expected, &given, "webhook-signature")
    }

    /// Both ids were checked to be numbers; escaped all the same.
    fn story_url(&self, space: &str, story: &str) -> String {
        format!(
            "{}/v1/spaces/{}/stories/{}",
            self.config.api_url.trim_end_matches('/'),
            super::http::segment(space),
            super::http::segment(story)
        )
    }

    /// The published version of a story: from the Content Delivery API when a token is
    /// configured, else the Management API's version if it has no unpublished changes.
    /// `Ok(None)`: only a draft can be read.
    async fn published_story(
        &self,
        space: &str,
        story_id: &str,
    ) -> Result<Option<Value>, WriteBackError> {
        let working = self.story(&self.story_url(space, story_id)).await?;
        let Some(token) = &self.config.delivery_token else {
            return Ok((working["unpublished_changes"] != json!(true)).then_some(working));
        };
        let url = format!(
            "{}/v2/cdn/stories/{}",
            self.config.delivery_url.trim_end_matches('/'),
            super::http::segment(story_id)
        );
        let request = self
            .http
            .get(&url)
            .query(&[("version", "published"), ("token", token.as_str())]);
        let published = super::http::send(request, &format!("GET {url}")).await?["story"].clone();
        Ok(Some(published))
    }

    /// A published story (as the Delivery API writes it) as content, or why it makes no video.
    fn story_content(
        &self,
        space: &str,
        story_id: &str,
        story: &Value,
    ) -> Result<Result<Content, String>, InboundError> {
        let document = &story["content"];
        let kind = document["component"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !self.fields.counts(&kind) {
            return Ok(Err(format!("component {kind:?} does not make videos")));
        }
        let mut content = self.fields.content(
            &DEFAULTS,
            Entry {
                source: &self.source,
                cms: "storyblok",
                id: format!("{space}/{story_id}"),
                revision: story["published_at"].as_str().unwrap_or_default().into(),
                kind,
                locale: story["lang"]
                    .as_str()
                    .filter(|l| *l != "default")
                    .map(str::to_owned),
                url: story["full_slug"].as_str().map(str::to_owned),
            },
            document,
        )?;
        // An asset field is `{filename: "https://a.storyblok.com/f/…"}`.
        content.image = content
            .image
            .map(|raw| super::mapping::absolute_image(&raw, "https", None));
        Ok(Ok(content))
    }

    async fn story(&self, url: &str) -> Result<Value, WriteBackError> {
        let request = self
            .http
            .get(url)
            .header("authorization", &self.config.management_token);
        Ok(super::http::send(request, &format!("GET {url}")).await?["story"].clone())
    }
}

#[async_trait::async_trait]
impl CmsAdapter for Storyblok {
    fn kind(&self) -> &'static str {
        "storyblok"
    }

    fn write_back_targets(&self) -> Vec<(&'static str, String)> {
        super::target("api_url", Some(self.config.api_url.as_str()))
    }

    async fn receive(&self, delivery: &Delivery<'_>) -> Result<Inbound, InboundError> {
        self.verify(delivery)?;
        let event: Value = serde_json::from_slice(delivery.body)
            .map_err(|e| InboundError::Malformed(format!("not a Storyblok webhook: {e}")))?;
        let action = event["action"].as_str().unwrap_or_default();
        if action != "published" {
            return Ok(Inbound::Ignored {
                reason: format!("action {action:?} is not published"),
            });
        }
        let space = super::mapping::numeric_id(&event["space_id"], "space_id")?;
        let story_id = super::mapping::numeric_id(&event["story_id"], "story_id")?;
        let story = match self.published_story(&space, &story_id).await {
            Ok(Some(story)) => story,
            Ok(None) => {
                return Ok(Inbound::Ignored {
                    reason: format!(
                        "story {story_id} has unpublished changes and no delivery_token is \
                         configured to read its published version"
                    ),
                })
            }
            Err(e) => return Err(InboundError::Unavailable(e.to_string())),
        };
        Ok(match self.story_content(&space, &story_id, &story)? {
            Ok(content) => Inbound::Publish {
                delivery_id: None,
                contents: vec![content],
            },
            Err(reason) => Inbound::Ignored { reason },
        })
    }

    /// `GET {delivery}/v2/cdn/stories?version=published&published_at_gt=…&sort_by=published_at:asc`
    /// (the Content Delivery API: published versions only), paged by `page`.
    async fn list_published(
        &self,
        since_ms: i64,
        cursor: Option<&str>,
    ) -> Result<Option<Page>, ListError> {
        let (Some(token), Some(space)) = (&self.config.delivery_token, self.config.space_id) else {
            return Ok(None);
        };
        let page: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(1);
        let url = format!(
            "{}/v2/cdn/stories",
            self.config.delivery_url.trim_end_matches('/')
        );
        // Storyblok's date filters take minutes ("2026-11-25 10:00"): floor, so nothing in the
        // minute is missed.
        let since = super::format_time_in(since_ms - 60_000, "%Y-%m-%d %H:%M");
        let request = self.http.get(&url).query(&[
            ("version", "published"),
            ("token", token.as_str()),
            ("published_at_gt", since.as_str()),
            ("sort_by", "published_at:asc"),
            ("per_page", LIST_LIMIT),
            ("page", &page.to_string()),
        ]);
        let answer = super::http::send(request, &format!("GET {url}")).await?;
        let stories = answer["stories"]
            .as_array()
            .ok_or_else(|| ListError(format!("GET {url}: no \"stories\" list")))?;
        let mut items = Vec::with_capacity(stories.len());
        for story in stories {
            let changed = super::parse_time(&story["published_at"]).unwrap_or(since_ms);
            let contents = super::mapping::numeric_id(&story["id"], "id")
                .and_then(|id| self.story_content(&space.to_string(), &id, story))
                .map(|counted| counted.map(|c| vec![c]));
            items.extend(Listed::counted(changed, contents));
        }
        let full = stories.len().to_string() == LIST_LIMIT;
        Ok(Some(Page {
            items,
            next: full.then(|| (page + 1).to_string()),
        }))
    }

    async fn write_back(
        &self,
        content: &Content,
        field: &str,
        video_url: &str,
    ) -> Result<(), WriteBackError> {
        let (space, story) = content.id.split_once('/').ok_or_else(|| {
            WriteBackError::Permanent(format!("{} is not space/story", content.id))
        })?;
        let url = self.story_url(space, story);
        for _ in 0..COLLISION_RETRIES {
            let working = self.story(&url).await?;
            let mut document = working["content"].clone();
            document[field] = json!(video_url);
            // Publishing now would publish an editor's unsaved draft along with our field.
            let mut body = json!({"story": {"content": document}});
            if working["unpublished_changes"] != json!(true) {
                body["publish"] = json!(1);
            }
            // The story PUT replaces the whole content and takes no version to check: read the
            // story again just before writing, and if an editor saved in between, start over
            // from their version so that their change is kept.
            let again = self.story(&url).await?;
            if again["updated_at"] != working["updated_at"]
                || again["content"] != working["content"]
            {
                continue;
            }
            let request = self
                .http
                .put(&url)
                .header("authorization", &self.config.management_token)
                .json(&body);
            return super::http::send(request, &format!("PUT {url}"))
                .await
                .map(drop);
        }
        Err(WriteBackError::Transient(format!(
            "the story kept changing between reads ({COLLISION_RETRIES} attempts)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cms::mapping::FieldMap;
    use axum::http::HeaderMap;

    const BODY: &[u8] = br#"{"text":"The user x published the Story y","action":"published","space_id":123,"story_id":456,"full_slug":"blog/x"}"#;
    /// hex(HMAC-SHA1("storyblok-secret", BODY)), computed with Python's hmac.
    const SIG: &str = "70bd5154d2dce359607ecd5229e24d7d3ec84e38";

    fn storyblok(secret: &str) -> Storyblok {
        let config = Config {
            secret: secret.into(),
            api_url: "http://127.0.0.1:9".into(),
            management_token: "t".into(),
            delivery_token: None,
            delivery_url: default_delivery(),
            space_id: None,
        };
        Storyblok::new("sb".into(), &config, &FieldMap::default())
    }

    fn check(secret: &str, signature: Option<&str>, body: &[u8]) -> Result<(), InboundError> {
        let mut headers = HeaderMap::new();
        if let Some(signature) = signature {
            headers.insert("webhook-signature", signature.parse().unwrap());
        }
        storyblok(secret).verify(&Delivery::post(&headers, body))
    }

    #[test]
    fn verifies_the_hex_sha1_signature_and_refuses_the_rest() {
        check("storyblok-secret", Some(SIG), BODY).unwrap();
        assert!(
            check("storyblok-secret", Some(SIG), b"{}").is_err(),
            "tampered body"
        );
        assert!(check("other", Some(SIG), BODY).is_err(), "wrong secret");
        assert!(
            check("storyblok-secret", Some(&SIG[..20]), BODY).is_err(),
            "truncated"
        );
        assert!(check("storyblok-secret", Some(""), BODY).is_err(), "empty");
        assert!(check("storyblok-secret", None, BODY).is_err(), "missing");
    }

    #[tokio::test]
    async fn a_story_that_cannot_be_fetched_is_not_acknowledged() {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-signature", SIG.parse().unwrap());
        let delivery = Delivery::post(&headers, BODY);
        assert!(matches!(
            storyblok("storyblok-secret").receive(&delivery).await,
            Err(InboundError::Unavailable(_))
        ));
    }

    /// Ids go into the Management API's path: anything but a number is refused before a request
    /// is made (no `1/../../admin/x?y=` reaching another endpoint with the management token).
    #[tokio::test]
    async fn ids_that_are_not_numbers_are_malformed() {
        let secret = "storyblok-secret";
        for (space, story) in [
            (json!(123), json!("1/../../admin/x?y=")),
            (json!({"id": 1}), json!(456)),
            (json!(123), json!([456])),
            (json!(123), json!(null)),
            (json!(true), json!(456)),
        ] {
            let body =
                json!({"action": "published", "space_id": space, "story_id": story}).to_string();
            let signature = hex::encode(signing::hmac_sha1(secret.as_bytes(), body.as_bytes()));
            let mut headers = HeaderMap::new();
            headers.insert("webhook-signature", signature.parse().unwrap());
            let answer = storyblok(secret)
                .receive(&Delivery::post(&headers, body.as_bytes()))
                .await;
            assert!(matches!(answer, Err(InboundError::Malformed(_))), "{body}");
        }
    }
}
