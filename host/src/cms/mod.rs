//! CMS adapters: one file per CMS, behind [`CmsAdapter`]. Inbound, an adapter authenticates a
//! delivery exactly as that CMS signs it and parses it into [`Content`]; outbound, it writes the
//! video URL back the way that CMS expects. Adding a CMS touches its file, one line in [`build`],
//! and its tests.

pub mod contentful;
pub mod directus;
pub mod ghost;
pub(crate) mod http;
pub mod mapping;
pub mod markdown;
pub mod pager;
pub mod sanity;
pub mod signing;
pub mod standard_webhooks;
pub mod storyblok;
pub mod strapi;
pub mod wordpress;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::Value;

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

/// One page of a CMS's listing of published items (the catch-up sweep's and backfill's input).
#[derive(Debug, Default)]
pub struct Page {
    /// Published items, oldest change first.
    pub items: Vec<Listed>,
    /// Where the next page starts; none on the last page.
    pub next: Option<String>,
}

/// One published item as listed: its contents (one per locale, built by the same code as the
/// webhook's, so that deduplication recognises an item a webhook already delivered) and when
/// the CMS last changed it. An item that cannot be read as content carries why: the sweep skips
/// it, so one malformed entry never stops the items after it.
#[derive(Debug)]
pub struct Listed {
    pub changed_ms: i64,
    pub contents: Result<Vec<Content>, String>,
}

impl Listed {
    pub fn new(changed_ms: i64, contents: Result<Vec<Content>, InboundError>) -> Listed {
        Listed {
            changed_ms,
            contents: contents.map_err(|e| e.to_string()),
        }
    }

    /// For an item that may not count at all (`Ok(Err(why))`: its type makes no videos): `None`
    /// then, else the item as [`Listed::new`] makes it.
    pub fn counted(
        changed_ms: i64,
        contents: Result<Result<Vec<Content>, String>, InboundError>,
    ) -> Option<Listed> {
        match contents {
            Ok(Err(_not_counted)) => None,
            Ok(Ok(contents)) => Some(Listed::new(changed_ms, Ok(contents))),
            Err(malformed) => Some(Listed::new(changed_ms, Err(malformed))),
        }
    }
}

/// Why a listing failed (the CMS is down, refuses, or answered something else).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ListError(pub String);

impl From<WriteBackError> for ListError {
    fn from(err: WriteBackError) -> Self {
        ListError(err.to_string())
    }
}

impl From<InboundError> for ListError {
    fn from(err: InboundError) -> Self {
        ListError(err.to_string())
    }
}

/// A kept video with what plays beside it: what [`CmsAdapter::write_player`] writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Player {
    pub video_url: String,
    pub poster_url: Option<String>,
    /// The WebVTT captions and their language (BCP 47).
    pub captions: Option<(String, String)>,
}

#[async_trait::async_trait]
pub trait CmsAdapter: Send + Sync {
    /// The CMS kind, as written in `Content::cms`.
    fn kind(&self) -> &'static str;
    /// Authenticates and parses one webhook delivery. Async because a thin payload (Storyblok,
    /// Directus updates) names an entry that must be fetched.
    async fn receive(&self, delivery: &Delivery<'_>) -> Result<Inbound, InboundError>;
    /// Writes `video_url` (or a companion's URL: captions, poster) into `field` of the entry
    /// `content` came from; the field is already mapped (`FieldMap::video_field`).
    async fn write_back(
        &self,
        content: &Content,
        field: &str,
        video_url: &str,
    ) -> Result<(), WriteBackError>;
    /// Writes the video into `field` as a player where the adapter writes markup rather than a
    /// URL (Ghost's code-injection block: a `<video>` with its poster and a captions `<track>` in
    /// the narration's language); elsewhere the video's URL, as [`CmsAdapter::write_back`].
    async fn write_player(
        &self,
        content: &Content,
        field: &str,
        player: &Player,
    ) -> Result<(), WriteBackError> {
        self.write_back(content, field, &player.video_url).await
    }
    /// Whether a write-back names the video's own locale (a multilingual plan's language) as
    /// its entry's locale: true where the write-back is a message a receiver keys on `locale`
    /// (Standard Webhooks). Adapters that write a field of the CMS entry itself keep the entry's
    /// locale: the plan's own field (`video_url_de_de`) already says which video it is.
    fn names_plan_locale(&self) -> bool {
        false
    }
    /// The URLs this source writes back to, each with the config key that names it: checked
    /// against the outbound guard at start-up and again before each paid call, so that no
    /// video is paid for that could never be written back.
    fn write_back_targets(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// One page of the items published (or changed while published) at or after `since_ms`
    /// (unix ms), oldest first, using the CMS's own filters and paging; `cursor` is the previous
    /// page's `next`. Drafts are never listed. `Ok(None)`: this source cannot be listed (the
    /// CMS has no listing, or the config lacks the API credentials it needs).
    async fn list_published(
        &self,
        _since_ms: i64,
        _cursor: Option<&str>,
    ) -> Result<Option<Page>, ListError> {
        Ok(None)
    }
}

/// A source's write-back target, if it has one: the config key that names it and its URL.
pub(crate) fn target(key: &'static str, url: Option<&str>) -> Vec<(&'static str, String)> {
    url.map(|url| (key, url.to_string())).into_iter().collect()
}

/// Checks every source's write-back targets against the outbound guard (start-up): a target
/// the guard refuses is an error naming the source, the key and the setting that would allow
/// it, since every video rendered for that source would be paid for and never arrive.
pub async fn check_write_back_targets(
    sources: &std::collections::BTreeMap<String, std::sync::Arc<dyn CmsAdapter>>,
    guard: &crate::outbound::Guard,
) -> Result<(), String> {
    for (name, adapter) in sources {
        for (key, url) in adapter.write_back_targets() {
            if let Err(err) = guard.check_target(&url).await {
                return Err(refused_target(name, key, &url, &err));
            }
        }
    }
    Ok(())
}

/// What to say of a write-back target the guard refuses: which setting names it, why, and how
/// to allow a CMS on the operator's own network.
pub fn refused_target(
    source: &str,
    key: &str,
    url: &str,
    err: &crate::outbound::GuardError,
) -> String {
    let range = match err {
        crate::outbound::GuardError::Forbidden { addr, .. } => match addr {
            std::net::IpAddr::V4(v4) => format!("{v4}/32"),
            std::net::IpAddr::V6(v6) => format!("{v6}/128"),
        },
        _ => "the CMS's address range, e.g. 10.0.0.0/8".to_string(),
    };
    format!(
        "sources.{source}.{key} = {url:?} is refused by the outbound guard: {err}. Every video \
         rendered for this source would be paid for and never written back. If this CMS is on \
         your own network, allow its address: [outbound] allow_private = [\"{range}\"]"
    )
}

/// One page from several listings that are each in time order (a CMS listed per collection):
/// the items of all, in time order, cut where a stream that has more pages ends, so that no
/// item before the cut is still unseen; `next` is set when a stream has more pages. The sweep then
/// lists again from the newest item it got.
pub fn merge_streams(streams: Vec<(Vec<Listed>, bool)>) -> Page {
    let cut = streams
        .iter()
        .filter(|(items, more)| *more && !items.is_empty())
        .filter_map(|(items, _)| items.last().map(|i| i.changed_ms))
        .min();
    let mut items: Vec<Listed> = streams.into_iter().flat_map(|(items, _)| items).collect();
    items.sort_by_key(|i| i.changed_ms);
    if let Some(cut) = cut {
        items.retain(|i| i.changed_ms <= cut);
    }
    Page {
        items,
        next: cut.map(|_| "more".to_string()),
    }
}

/// A timestamp as CMS APIs write it (RFC 3339) in unix ms.
pub fn parse_time(value: &Value) -> Option<i64> {
    let text = value.as_str()?;
    text.parse::<jiff::Timestamp>()
        .ok()
        .or_else(|| {
            // WordPress's `modified_gmt` has no offset: it is UTC.
            format!("{text}Z").parse::<jiff::Timestamp>().ok()
        })
        .map(|t| t.as_millisecond())
}

/// Unix ms as an RFC 3339 UTC timestamp with milliseconds (what most CMS filters take).
pub fn format_time(ms: i64) -> String {
    format_time_in(ms, "%Y-%m-%dT%H:%M:%S%.3fZ")
}

/// Unix ms in UTC as `strftime` `format` says: for the CMSs whose filters document another
/// form (Ghost's `YYYY-MM-DD HH:mm:ss`, Storyblok's `YYYY-MM-DD HH:MM`), since a filter in the
/// wrong form is compared as text by some and silently finds nothing.
pub fn format_time_in(ms: i64, format: &str) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime(format)
        .to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(changed_ms: i64) -> Listed {
        Listed::new(changed_ms, Ok(Vec::new()))
    }

    #[test]
    fn merged_streams_stop_where_a_stream_with_more_pages_ends() {
        // Collection A has more pages after 30; B is complete. Items after 30 wait for the next
        // listing (from 30), so A's unseen items between 30 and 50 cannot be skipped.
        let page = merge_streams(vec![
            (vec![listed(10), listed(30)], true),
            (vec![listed(20), listed(50)], false),
        ]);
        let times: Vec<i64> = page.items.iter().map(|i| i.changed_ms).collect();
        assert_eq!(times, [10, 20, 30]);
        assert!(page.next.is_some());
        let last = merge_streams(vec![(vec![listed(5)], false), (vec![], false)]);
        assert_eq!(last.items.len(), 1);
        assert!(last.next.is_none());
    }

    #[test]
    fn cms_timestamps_round_trip_in_milliseconds() {
        let ms = parse_time(&Value::from("2026-11-25T10:00:01.250Z")).unwrap();
        assert_eq!(format_time(ms), "2026-11-25T10:00:01.250Z");
        assert_eq!(
            parse_time(&Value::from("2026-11-25T11:00:01.250+01:00")),
            Some(ms)
        );
        // WordPress's `modified_gmt` carries no offset.
        assert_eq!(
            parse_time(&Value::from("2026-11-25T10:00:01")),
            Some(ms - 250)
        );
        assert_eq!(parse_time(&Value::from("yesterday")), None);
        assert_eq!(parse_time(&Value::Null), None);
    }
}
