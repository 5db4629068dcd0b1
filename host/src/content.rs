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
    /// Presenter photo: an http(s) URL, or a path the host resolves to one of its media URLs.
    pub image: Option<String>,
    /// Every field the CMS sent.
    pub fields: serde_json::Value,
}

impl Content {
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
