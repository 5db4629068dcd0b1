//! WordPress (developer.wordpress.org: the Plugin Handbook's post status transitions and
//! `wp_after_insert_post`, `register_post_meta`, and the REST API Handbook's posts endpoint and
//! Application Passwords). Core sends no webhooks: the companion plugin in
//! `integrations/wordpress/` sends, after a post's meta is saved, a Standard Webhooks-signed
//! `content.published` when the post goes to `publish` from another status, and
//! `content.updated` for later edits of a published post — which are acknowledged and ignored:
//! only the publish transition counts.
//!
//! Write-back: `POST {rest_url}/wp/v2/{rest_base}/{id}` with `{"meta": {field: url}}` over HTTP
//! Basic auth with an Application Password (the plugin registers the `video_url` meta for REST).
//! That update is a publish → publish transition: the plugin sends `content.updated`, ignored.
//! `rest_url` is `https://site/wp-json` (pretty permalinks) or `https://site/?rest_route=`.

use serde::Deserialize;
use serde_json::json;

use super::mapping::FieldMap;
use super::standard_webhooks::{content_from_data, receive_signed, Secret};
use super::{CmsAdapter, Delivery, Inbound, InboundError, ListError, Listed, Page, WriteBackError};
use crate::content::Content;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `whsec_…` secret set in the plugin's settings.
    pub secret: String,
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
    /// The REST API root; none = no write-back.
    pub rest_url: Option<String>,
    /// The user an Application Password belongs to, and the password.
    pub username: Option<String>,
    pub application_password: Option<String>,
}

/// Posts per listing page (the REST API allows up to 100).
const LIST_LIMIT: &str = "100";

fn default_tolerance() -> u64 {
    300
}

pub struct WordPress {
    source: String,
    secret: Secret,
    config: Config,
    fields: FieldMap,
    http: reqwest::Client,
}

impl WordPress {
    pub fn new(source: String, config: &Config, fields: &FieldMap) -> anyhow::Result<WordPress> {
        Ok(WordPress {
            source,
            secret: Secret::parse(&config.secret)?,
            config: config.clone(),
            fields: fields.clone(),
            http: super::http::client(),
        })
    }
}

#[async_trait::async_trait]
impl CmsAdapter for WordPress {
    fn kind(&self) -> &'static str {
        "wordpress"
    }

    fn write_back_targets(&self) -> Vec<(&'static str, String)> {
        super::target("rest_url", self.config.rest_url.as_deref())
    }

    async fn receive(&self, delivery: &Delivery<'_>) -> Result<Inbound, InboundError> {
        let inbound = receive_signed(
            &self.secret,
            self.config.tolerance_secs,
            &self.source,
            self.kind(),
            delivery,
        )?;
        Ok(match inbound {
            Inbound::Publish { contents, .. }
                if contents.iter().all(|c| !self.fields.counts(&c.kind)) =>
            {
                Inbound::Ignored {
                    reason: "post type does not make videos".into(),
                }
            }
            other => other,
        })
    }

    /// `GET {rest}/wp/v2/posts?status=publish&modified_after=…&orderby=modified&order=asc`
    /// with the featured image embedded; each post becomes the same `data` the companion plugin
    /// sends, so a post its webhook delivered is recognised as a duplicate.
    async fn list_published(
        &self,
        since_ms: i64,
        cursor: Option<&str>,
    ) -> Result<Option<Page>, ListError> {
        let (Some(rest), Some(user), Some(password)) = (
            &self.config.rest_url,
            &self.config.username,
            &self.config.application_password,
        ) else {
            return Ok(None);
        };
        if !self.fields.counts("post") {
            return Ok(Some(Page::default()));
        }
        let rest = rest.trim_end_matches('/');
        let settings_url = format!("{rest}/wp/v2/settings");
        let settings = super::http::send(
            self.http
                .get(&settings_url)
                .basic_auth(user, Some(password)),
            &format!("GET {settings_url}"),
        )
        .await?;
        let locale = settings["language"]
            .as_str()
            .filter(|l| !l.is_empty())
            .unwrap_or("en_US")
            .replace('_', "-");
        let page: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(1);
        let url = format!("{rest}/wp/v2/posts");
        // `modified_after` is exclusive and in whole seconds: a second earlier misses nothing.
        // The `Z` matters: a date without an offset is read in the site's own time zone.
        let since = format!("{}Z", &super::format_time(since_ms - 1000)[..19]);
        let request = self
            .http
            .get(&url)
            .basic_auth(user, Some(password))
            .query(&[
                ("status", "publish"),
                ("modified_after", since.as_str()),
                ("orderby", "modified"),
                ("order", "asc"),
                ("per_page", LIST_LIMIT),
                ("page", &page.to_string()),
                ("_embed", "wp:featuredmedia"),
            ]);
        let answer = super::http::send(request, &format!("GET {url}")).await?;
        let posts = answer
            .as_array()
            .ok_or_else(|| ListError(format!("GET {url}: not a list of posts")))?;
        let mut items = Vec::with_capacity(posts.len());
        for post in posts {
            let data = json!({
                "id": post["id"],
                "title": super::mapping::html_to_text(post["title"]["rendered"].as_str().unwrap_or_default()),
                "body_html": post["content"]["rendered"],
                "locale": locale,
                "kind": post["type"],
                "revision": post["modified_gmt"],
                "url": post["link"],
                "image_url": post["_embedded"]["wp:featuredmedia"][0]["source_url"],
                "rest_base": "posts",
            });
            items.push(Listed::new(
                super::parse_time(&post["modified_gmt"]).unwrap_or(since_ms),
                content_from_data(&self.source, "wordpress", data).map(|c| vec![c]),
            ));
        }
        let full = posts.len().to_string() == LIST_LIMIT;
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
        let (Some(rest), Some(user), Some(password)) = (
            &self.config.rest_url,
            &self.config.username,
            &self.config.application_password,
        ) else {
            return Ok(());
        };
        let rest_base = content.fields["rest_base"].as_str().unwrap_or("posts");
        let url = format!(
            "{}/wp/v2/{}/{}",
            rest.trim_end_matches('/'),
            super::http::segment(rest_base),
            super::http::segment(&content.id)
        );
        let request = self
            .http
            .post(&url)
            .basic_auth(user, Some(password))
            .json(&json!({"meta": {field: video_url}}));
        super::http::send(request, &format!("POST {url}"))
            .await
            .map(drop)
    }
}
