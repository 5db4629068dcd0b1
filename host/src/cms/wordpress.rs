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
use super::standard_webhooks::{receive_signed, Secret};
use super::{CmsAdapter, Delivery, Inbound, InboundError, WriteBackError};
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
            .json(&json!({"meta": {self.fields.video_field(field): video_url}}));
        super::http::send(request, &format!("POST {url}"))
            .await
            .map(drop)
    }
}
