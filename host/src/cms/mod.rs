//! CMS adapters: one file per CMS, behind [`CmsAdapter`]. Inbound, an adapter authenticates a
//! delivery exactly as that CMS signs it and parses it into [`Content`]; outbound, it writes the
//! video URL back the way that CMS expects. Adding a CMS touches its file, one line in [`build`],
//! and its tests.

pub mod markdown;
pub mod standard_webhooks;

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
}

#[derive(Debug, thiserror::Error)]
pub enum WriteBackError {
    /// Worth retrying (CMS down, timeout, 5xx, version conflict).
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help (4xx, entry gone); the video URL is kept on the render.
    #[error("{0}")]
    Permanent(String),
}

#[async_trait::async_trait]
pub trait CmsAdapter: Send + Sync {
    /// The CMS kind, as written in `Content::cms`.
    fn kind(&self) -> &'static str;
    /// Authenticates and parses one webhook delivery (raw body: signatures are over the bytes).
    fn receive(&self, headers: &HeaderMap, body: &[u8]) -> Result<Inbound, InboundError>;
    /// Writes `video_url` into `field` of the entry `content` came from.
    async fn write_back(
        &self,
        content: &Content,
        field: &str,
        video_url: &str,
    ) -> Result<(), WriteBackError>;
}

/// The adapter of every configured source, by source name.
pub fn build(
    sources: &BTreeMap<String, SourceConfig>,
) -> anyhow::Result<BTreeMap<String, Arc<dyn CmsAdapter>>> {
    let mut adapters: BTreeMap<String, Arc<dyn CmsAdapter>> = BTreeMap::new();
    for (name, source) in sources {
        let adapter: Arc<dyn CmsAdapter> = match &source.cms {
            CmsConfig::Markdown { folder } => {
                Arc::new(markdown::MarkdownFolder::new(name.clone(), folder.clone()))
            }
            CmsConfig::StandardWebhooks {
                secret,
                writeback_url,
                tolerance_secs,
            } => Arc::new(standard_webhooks::StandardWebhooks::new(
                name.clone(),
                secret,
                writeback_url.clone(),
                *tolerance_secs,
            )?),
        };
        adapters.insert(name.clone(), adapter);
    }
    Ok(adapters)
}
