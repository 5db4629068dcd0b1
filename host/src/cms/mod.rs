//! CMS adapters: one file per CMS, behind [`CmsAdapter`]. Inbound, an adapter authenticates a
//! delivery exactly as that CMS signs it and parses it into [`Content`]; outbound, it writes the
//! video URL back the way that CMS expects. Adding a CMS touches its file, one line in [`build`],
//! and its tests.

pub mod contentful;
pub mod directus;
pub mod ghost;
mod http;
pub mod mapping;
pub mod markdown;
pub mod sanity;
pub mod signing;
pub mod standard_webhooks;
pub mod storyblok;
pub mod strapi;
pub mod wordpress;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::HeaderMap;

use crate::config::{CmsConfig, SourceConfig};
use crate::content::Content;

/// A delivery that passed authentication and parsing.
#[derive(Debug)]
pub enum Inbound {
    /// Content was published: one [`Content`] per locale.
    Publish {
        delivery_id: Option<String>,
        contents: Vec<Content>,
    },
    /// A valid event we do not act on (e.g. an update, a delete).
    Ignored { reason: String },
}

/// Why a delivery was refused; each maps to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// 401: missing/invalid signature, stale timestamp.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 400: not the payload this CMS sends.
    #[error("malformed: {0}")]
    Malformed(String),
    /// 404: this source is not fed by webhooks.
    #[error("{0}")]
    NotAWebhookSource(String),
    /// 503: the CMS's own API (to fetch the entry a thin webhook names) did not answer; the
    /// delivery is not acknowledged, so the CMS retries it.
    #[error("CMS unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WriteBackError {
    /// Worth retrying (CMS down, timeout, 5xx).
    #[error("{0}")]
    Transient(String),
    /// The entry changed since it was read (409, version check): re-read and try again.
    #[error("{0}")]
    Conflict(String),
    /// Retrying will not help (4xx, entry gone); the video URL is kept on the render.
    #[error("{0}")]
    Permanent(String),
}

/// One webhook request as received: the raw body (signatures are over the bytes), and the method
/// and path some schemes sign too.
pub struct Delivery<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string as received (Contentful signs it with the path).
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

#[cfg(test)]
impl<'a> Delivery<'a> {
    /// A POST to `/` (for adapters that do not sign the path).
    pub fn post(headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Delivery {
            method: "POST",
            path: "/",
            query: None,
            headers,
            body,
        }
    }
}

#[async_trait::async_trait]
pub trait CmsAdapter: Send + Sync {
    /// The CMS kind, as written in `Content::cms`.
    fn kind(&self) -> &'static str;
    /// Authenticates and parses one webhook delivery. Async because a thin payload (Storyblok,
    /// Directus updates) names an entry that must be fetched.
    async fn receive(&self, delivery: &Delivery<'_>) -> Result<Inbound, InboundError>;
    /// Writes `video_url` into `field` of the entry `content` came from.
    async fn write_back(
        &self,
        content: &Content,
        field: &str,
        video_url: &str,
    ) -> Result<(), WriteBackError>;
}

/// What a hosted-CMS adapter holds: its source's name, its CMS's config (`C`), the source's field
/// map, and an HTTP client for the CMS's API. Each CMS's file names it (`type Strapi =
/// Adapter<strapi::Config>`) and implements its behaviour.
pub struct Adapter<C> {
    source: String,
    config: C,
    fields: mapping::FieldMap,
    http: reqwest::Client,
}

impl<C: Clone> Adapter<C> {
    pub fn new(source: String, config: &C, fields: &mapping::FieldMap) -> Self {
        Adapter {
            source,
            config: config.clone(),
            fields: fields.clone(),
            http: http::client(),
        }
    }
}

/// The adapter of every configured source, by source name.
pub fn build(
    sources: &BTreeMap<String, SourceConfig>,
) -> anyhow::Result<BTreeMap<String, Arc<dyn CmsAdapter>>> {
    let mut adapters: BTreeMap<String, Arc<dyn CmsAdapter>> = BTreeMap::new();
    for (name, source) in sources {
        let (name, fields) = (name.clone(), &source.settings.fields);
        let adapter: Arc<dyn CmsAdapter> = match &source.cms {
            CmsConfig::Markdown { folder } => {
                Arc::new(markdown::MarkdownFolder::new(name.clone(), folder.clone()))
            }
            CmsConfig::StandardWebhooks(c) => {
                Arc::new(standard_webhooks::StandardWebhooks::new(name.clone(), c)?)
            }
            CmsConfig::Wordpress(c) => {
                Arc::new(wordpress::WordPress::new(name.clone(), c, fields)?)
            }
            CmsConfig::Contentful(c) => {
                c.validate(&name)?;
                Arc::new(contentful::Contentful::new(name.clone(), c, fields))
            }
            CmsConfig::Strapi(c) => Arc::new(strapi::Strapi::new(name.clone(), c, fields)),
            CmsConfig::Sanity(c) => Arc::new(sanity::Sanity::new(name.clone(), c, fields)),
            CmsConfig::Ghost(c) => Arc::new(ghost::Ghost::new(name.clone(), c, fields)),
            CmsConfig::Directus(c) => Arc::new(directus::Directus::new(name.clone(), c, fields)),
            CmsConfig::Storyblok(c) => Arc::new(storyblok::Storyblok::new(name.clone(), c, fields)),
        };
        adapters.insert(name, adapter);
    }
    Ok(adapters)
}
