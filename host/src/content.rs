//! `Content`: one published entry, normalised from whatever CMS sent it. Plugins receive it
//! through the WIT `content` record; the store keeps it as JSON with the event.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Content {
    pub source: String,
    pub cms: String,
    pub id: String,
    pub revision: String,
    pub kind: String,
    pub locale: String,
    pub title: String,
    pub body_html: String,
    pub body_text: String,
    pub url: Option<String>,
    /// Presenter photo named by the entry: an https URL (checked by the outbound guard before
    /// anything is fetched; a local path or another scheme fails the render). The source's
    /// configured `presenter_image` is used when this is `None`.
    pub image: Option<String>,
    /// Every field the CMS sent.
    pub fields: serde_json::Value,
}

/// The `cms` of a batch file's row (`vidhook batch`): it has no CMS entry to write back to; its
/// video URL goes to the batch's output file.
pub const BATCH_CMS: &str = "batch";

/// The `cms` of a scheduled digest's event (`crate::digests`): its items are in `fields.items`,
/// and it has no CMS entry to write back to.
pub const DIGEST_CMS: &str = "digest";

/// The longest title accepted.
pub const MAX_TITLE_CHARS: usize = 1_000;

impl Content {
    /// What every adapter's output must satisfy before it is stored: an id that can safely name
    /// the entry (non-blank, at most 256 characters, no control characters), a locale that is a
    /// short tag, and something to narrate (a non-blank title or body). `Err` says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let id_ok = |id: &str| {
            !id.trim().is_empty()
                && id.chars().count() <= crate::cms::mapping::MAX_ID_CHARS
                && !id.chars().any(char::is_control)
        };
        if !id_ok(&self.id) {
            return Err(format!(
                "the entry id must be 1-{} characters without control characters",
                crate::cms::mapping::MAX_ID_CHARS
            ));
        }
        if self.locale.chars().count() > 35 || self.locale.chars().any(|c| c.is_control()) {
            return Err("the locale must be a language tag of at most 35 characters".into());
        }
        if self.title.chars().count() > MAX_TITLE_CHARS || self.title.chars().any(char::is_control)
        {
            return Err(format!(
                "the title must be at most {MAX_TITLE_CHARS} characters without control characters"
            ));
        }
        if self.title.trim().is_empty() && self.body_text.trim().is_empty() {
            return Err("the entry has neither a title nor a body: nothing to narrate".into());
        }
        Ok(())
    }

    /// True for content that stands for a CMS entry (a write-back target); false for a batch row
    /// or a digest.
    pub fn has_cms_entry(&self) -> bool {
        self.cms != BATCH_CMS && self.cms != DIGEST_CMS
    }

    /// Hash of the fields that drive the video (title, body, locale, kind, image). Not the CMS
    /// revision: our own write-back bumps that, and must not look like new content.
    pub fn fingerprint(&self) -> String {
        let driving = serde_json::json!([
            self.title,
            self.body_text,
            self.locale,
            self.kind,
            self.image
        ]);
        hex::encode(Sha256::digest(driving.to_string().as_bytes()))
    }
}

/// Markdown to (HTML, plain text). The text keeps paragraph breaks as blank lines, which is what
/// sentence splitting and TTS pauses want.
pub fn markdown_to_html_and_text(markdown: &str) -> (String, String) {
    use pulldown_cmark::{Event, Parser, TagEnd};
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, Parser::new(markdown));
    let mut text = String::new();
    for event in Parser::new(markdown) {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push(' '),
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::Item) => {
                text.push_str("\n\n")
            }
            _ => {}
        }
    }
    (html, text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Content {
        Content {
            source: "blog".into(),
            cms: "markdown".into(),
            id: "a".into(),
            revision: "1".into(),
            kind: "article".into(),
            locale: "en-US".into(),
            title: "T".into(),
            body_html: "<p>B</p>".into(),
            body_text: "B".into(),
            url: None,
            image: None,
            fields: serde_json::json!({}),
        }
    }

    #[test]
    fn fingerprint_ignores_revision_and_other_fields() {
        let a = sample();
        let mut b = sample();
        b.revision = "2".into();
        b.fields = serde_json::json!({"video_url": "x"});
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.body_text = "changed".into();
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn markdown_text_keeps_paragraphs() {
        let (html, text) = markdown_to_html_and_text("# Title\n\nFirst *line*\nwraps.\n\n- item");
        assert!(html.contains("<em>line</em>"));
        assert_eq!(text, "Title\n\nFirst line wraps.\n\nitem");
    }
}
