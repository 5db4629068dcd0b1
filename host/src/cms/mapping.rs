//! Field mapping: which fields of a CMS document feed the title, body, image and locale, which
//! content types count, and where the video URL goes. Every adapter first turns its payload
//! into one flat JSON document per locale; the mapping then reads fields from it by dotted path
//! (`hero.image.url`), with the adapter's defaults where the source's config says nothing.

use serde::Deserialize;
use serde_json::Value;

use super::InboundError;
use crate::content::Content;

/// `[sources.NAME.fields]` in the config; each unset entry falls back to the adapter's default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMap {
    pub title: Option<String>,
    pub body: Option<String>,
    pub image: Option<String>,
    pub locale: Option<String>,
    /// The field the video URL is written into (default: the plan's `target_field`).
    pub video: Option<String>,
    /// Fields for the kept video's captions (WebVTT URL) and poster image URL; unset: not
    /// written.
    pub captions: Option<String>,
    /// A field for the captions' language (BCP 47, the narration's); unset: not written.
    pub captions_language: Option<String>,
    pub poster: Option<String>,
    /// Content types (models, collections, `_type`s) that make videos; empty = all.
    #[serde(default)]
    pub content_types: Vec<String>,
}

/// An adapter's default field names.
pub struct Defaults {
    pub title: &'static str,
    pub body: &'static str,
    pub image: &'static str,
    pub locale: &'static str,
}

/// What an adapter knows about one entry, beyond its document.
pub struct Entry<'a> {
    pub source: &'a str,
    pub cms: &'static str,
    pub id: String,
    pub revision: String,
    pub kind: String,
    /// The locale when the CMS says it outside the document (Contentful keys fields by locale).
    pub locale: Option<String>,
    pub url: Option<String>,
}

impl FieldMap {
    /// Whether entries of `kind` make videos.
    pub fn counts(&self, kind: &str) -> bool {
        self.content_types.is_empty() || self.content_types.iter().any(|t| t == kind)
    }

    /// Where the video URL goes: the mapped field, else the plan's.
    pub fn video_field<'a>(&'a self, plan_field: &'a str) -> &'a str {
        self.video.as_deref().unwrap_or(plan_field)
    }

    /// The normalised [`Content`] of one document, or 400 when it has no title.
    pub fn content(
        &self,
        defaults: &Defaults,
        entry: Entry<'_>,
        document: &Value,
    ) -> Result<Content, InboundError> {
        let title_path = self.title.as_deref().unwrap_or(defaults.title);
        let title = lookup(document, title_path)
            .map(rich_text)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                InboundError::Malformed(format!("entry {} has no {title_path:?} field", entry.id))
            })?;
        let body = lookup(document, self.body.as_deref().unwrap_or(defaults.body));
        let (body_html, body_text) = match body {
            Some(Value::String(html)) => (html.clone(), html_to_text(html)),
            Some(structured) => (String::new(), rich_text(structured)),
            None => (String::new(), String::new()),
        };
        let image =
            lookup(document, self.image.as_deref().unwrap_or(defaults.image)).and_then(image_url);
        let locale = entry
            .locale
            .or_else(|| {
                lookup(document, self.locale.as_deref().unwrap_or(defaults.locale))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| "en-US".into())
            // POSIX-style "en_US" (WordPress, many CMSs) is the BCP 47 tag "en-US".
            .replace('_', "-");
        Ok(Content {
            source: entry.source.to_string(),
            cms: entry.cms.into(),
            id: entry.id,
            revision: entry.revision,
            kind: entry.kind,
            locale,
            title: title.trim().to_string(),
            body_html,
            body_text,
            url: entry.url,
            image,
            fields: document.clone(),
        })
    }
}

/// The value at a dotted path (`a.b.0.c`).
pub fn lookup<'v>(document: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(document, |value, key| match value {
            Value::Object(map) => map.get(key),
            Value::Array(items) => items.get(key.parse::<usize>().ok()?),
            _ => None,
        })
        .filter(|v| !v.is_null())
}

pub use vidhook_text::html_to_text;

/// The longest id accepted from a CMS.
pub const MAX_ID_CHARS: usize = 256;

/// An id a CMS sends: a non-blank string (at most [`MAX_ID_CHARS`], no control characters) or
/// an integer. Anything else (null, an object, an array, a bool, a float) is malformed.
pub fn id(value: &Value, what: &str) -> Result<String, super::InboundError> {
    let malformed = |why: &str| super::InboundError::Malformed(format!("{what} {why}"));
    let id = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        _ => return Err(malformed("must be a string or an integer")),
    };
    if id.trim().is_empty() {
        return Err(malformed("must not be blank"));
    }
    if id.chars().count() > MAX_ID_CHARS {
        return Err(malformed(&format!(
            "is longer than {MAX_ID_CHARS} characters"
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(malformed("must not contain control characters"));
    }
    Ok(id)
}

/// An id that must be a number (Storyblok's space and story ids).
pub fn numeric_id(value: &Value, what: &str) -> Result<String, super::InboundError> {
    let id = id(value, what)?;
    if !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(super::InboundError::Malformed(format!(
            "{what} must be a number"
        )));
    }
    Ok(id)
}

/// A revision that may arrive as a string or a number (lenient: it only labels the event).
pub fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The narratable text of a field: HTML as text, and structured rich text (Contentful's
/// `nodeType`/`value` tree, Sanity's Portable Text, Strapi's blocks) as its text leaves, one
/// paragraph per block; code blocks and tables are skipped, as in HTML.
pub fn rich_text(value: &Value) -> String {
    /// A node inside a paragraph (a text run, a link): its text joins its neighbours'.
    fn inline(node: &Value) -> bool {
        let kind = ["nodeType", "type", "_type"]
            .iter()
            .find_map(|key| node.get(*key).and_then(Value::as_str));
        matches!(
            kind,
            Some(
                "text"
                    | "span"
                    | "link"
                    | "hyperlink"
                    | "entry-hyperlink"
                    | "asset-hyperlink"
                    | "resource-hyperlink"
                    | "embedded-entry-inline"
            )
        )
    }
    fn leaves(value: &Value, out: &mut String) {
        match value {
            // Code blocks and tables are not read (the rule HTML follows too).
            Value::Object(map)
                if ["nodeType", "type", "_type"].iter().any(|key| {
                    matches!(
                        map.get(*key).and_then(Value::as_str),
                        Some("code" | "table")
                    )
                }) => {}
            Value::Object(map) => {
                for key in ["value", "text"] {
                    if let Some(Value::String(s)) = map.get(key) {
                        out.push_str(s);
                    }
                }
                for key in ["content", "children"] {
                    if let Some(child) = map.get(key) {
                        leaves(child, out);
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    let block = !inline(item)
                        && (item.get("children").is_some() || item.get("nodeType").is_some());
                    leaves(item, out);
                    if block && !out.ends_with("\n\n") {
                        out.push_str("\n\n");
                    }
                }
            }
            _ => {}
        }
    }
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => {
            let mut out = String::new();
            leaves(other, &mut out);
            out.trim().to_string()
        }
    }
}

/// An image field as the CMS wrote it: a string (a URL, a path, an id), or an object with
/// `url` / `filename` / `asset.url` / `data.attributes.url` (Strapi v4), `asset._ref` (a Sanity
/// image asset), `sys.id` (a Contentful asset link) or `id` (a Directus file). Each adapter
/// turns what is not yet a URL into one ([`absolute_image`] and the adapters' own rules).
fn image_url(value: &Value) -> Option<String> {
    match value {
        Value::String(url) if !url.is_empty() => Some(url.clone()),
        Value::Object(_) => [
            "url",
            "filename",
            "asset.url",
            "data.attributes.url",
            "asset._ref",
            "sys.id",
            "id",
        ]
        .iter()
        .find_map(|path| {
            lookup(value, path).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        }),
        _ => None,
    }
}

/// An image reference made absolute the way CMSs mean it: a URL stays; a protocol-relative
/// `//host/…` takes `scheme` (the CMS API's: https in production); a path `/uploads/…` is joined
/// to `base` (the CMS's own server). Anything else is returned as is, and the plan step refuses
/// it with a clear message (content may name only URLs).
pub fn absolute_image(raw: &str, scheme: &str, base: Option<&str>) -> String {
    if raw.starts_with("https://") || raw.starts_with("http://") {
        raw.to_string()
    } else if let Some(rest) = raw.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if let (Some(path), Some(base)) = (raw.strip_prefix('/'), base) {
        format!("{}/{path}", base.trim_end_matches('/'))
    } else {
        raw.to_string()
    }
}

/// The scheme of a configured API URL (`https` unless it says otherwise).
pub fn scheme_of(api_url: &str) -> &str {
    api_url
        .split_once("://")
        .map_or("https", |(scheme, _)| scheme)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rich_text_reads_contentful_sanity_and_strapi_bodies() {
        let contentful = json!({"nodeType": "document", "content": [
            {"nodeType": "paragraph", "content": [{"nodeType": "text", "value": "One."}]},
            {"nodeType": "paragraph", "content": [{"nodeType": "text", "value": "Two."}]}]});
        assert_eq!(rich_text(&contentful), "One.\n\nTwo.");
        let sanity = json!([{"_type": "block", "children": [{"_type": "span", "text": "Hello "},
            {"_type": "span", "text": "world."}]}]);
        assert_eq!(rich_text(&sanity), "Hello world.");
        let strapi = json!([{"type": "paragraph", "children": [{"type": "text", "text": "Hi."}]}]);
        assert_eq!(rich_text(&strapi), "Hi.");
    }

    #[test]
    fn configured_fields_override_the_adapter_defaults() {
        let map = FieldMap {
            title: Some("headline".into()),
            body: Some("story.html".into()),
            image: Some("hero".into()),
            locale: Some("lang".into()),
            video: Some("clip".into()),
            content_types: vec!["news".into()],
            ..FieldMap::default()
        };
        let defaults = Defaults {
            title: "title",
            body: "body",
            image: "image",
            locale: "locale",
        };
        let doc = json!({"title": "ignored", "headline": "Real title", "lang": "fr-FR",
            "story": {"html": "<p>Le texte.</p>"}, "hero": {"url": "https://cdn/x.png"}});
        let entry = Entry {
            source: "s",
            cms: "strapi",
            id: "1".into(),
            revision: String::new(),
            kind: "news".into(),
            locale: None,
            url: None,
        };
        let content = map.content(&defaults, entry, &doc).unwrap();
        assert_eq!(
            (
                content.title.as_str(),
                content.body_text.as_str(),
                content.locale.as_str()
            ),
            ("Real title", "Le texte.", "fr-FR")
        );
        assert_eq!(content.image.as_deref(), Some("https://cdn/x.png"));
        assert_eq!(map.video_field("video_url"), "clip");
        assert!(map.counts("news") && !map.counts("page"));
        let untitled = json!({"title": "x"});
        let entry = Entry {
            source: "s",
            cms: "strapi",
            id: "2".into(),
            revision: String::new(),
            kind: "news".into(),
            locale: None,
            url: None,
        };
        assert!(matches!(
            map.content(&defaults, entry, &untitled),
            Err(InboundError::Malformed(_))
        ));
    }

    #[test]
    fn lookup_follows_dotted_paths() {
        let doc = json!({"hero": {"images": [{"url": "https://x/y.png"}]}});
        assert_eq!(
            lookup(&doc, "hero.images.0.url").unwrap(),
            "https://x/y.png"
        );
        assert!(lookup(&doc, "hero.missing").is_none());
    }
}
