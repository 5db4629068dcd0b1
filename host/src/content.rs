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
/// The longest body text accepted (a long-read is ~100,000 characters).
pub const MAX_BODY_CHARS: usize = 1_000_000;
/// The longest body HTML accepted.
pub const MAX_HTML_BYTES: usize = 4 << 20;
/// The longest content kind (a CMS's content type name) accepted.
pub const MAX_KIND_CHARS: usize = 64;
/// The longest revision marker accepted.
pub const MAX_REVISION_CHARS: usize = 256;
/// The longest URL (the entry's or its image's) accepted.
pub const MAX_URL_CHARS: usize = 2_048;

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
        if self.locale.len() > 35 || !is_language_tag(&self.locale) {
            return Err(format!(
                "the locale {:?} is not a BCP 47 language tag of at most 35 characters (like \"en-US\")",
                self.locale.chars().take(40).collect::<String>()
            ));
        }
        let short = |what: &str, value: &str, max: usize| {
            if value.chars().count() > max || value.chars().any(char::is_control) {
                Err(format!(
                    "the {what} must be at most {max} characters without control characters"
                ))
            } else {
                Ok(())
            }
        };
        short("kind", &self.kind, MAX_KIND_CHARS)?;
        short("revision", &self.revision, MAX_REVISION_CHARS)?;
        short("url", self.url.as_deref().unwrap_or(""), MAX_URL_CHARS)?;
        short(
            "image URL",
            self.image.as_deref().unwrap_or(""),
            MAX_URL_CHARS,
        )?;
        if self.body_text.chars().count() > MAX_BODY_CHARS {
            return Err(format!(
                "the body text is longer than {MAX_BODY_CHARS} characters"
            ));
        }
        if self.body_html.len() > MAX_HTML_BYTES {
            return Err(format!(
                "the body HTML is larger than {MAX_HTML_BYTES} bytes"
            ));
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

    /// The CMS's revision marker as an order: an integer revision (Contentful's `sys.version`,
    /// a Markdown file's modification second) as it is, a time (`updated_at`, `updatedAt`,
    /// `modified_gmt`, `published_at`, `_updatedAt`…) in unix ms. `None` when the CMS gives no
    /// orderable marker: such deliveries are never called stale.
    pub fn revision_order(&self) -> Option<i64> {
        let revision = self.revision.trim();
        if revision.is_empty() {
            return None;
        }
        revision
            .parse::<i64>()
            .ok()
            .or_else(|| crate::cms::parse_time(&serde_json::Value::from(revision)))
    }

    /// True for content that stands for a CMS entry (a write-back target); false for a batch row
    /// or a digest.
    pub fn has_cms_entry(&self) -> bool {
        self.cms != BATCH_CMS && self.cms != DIGEST_CMS
    }

    /// Hash of the fields that drive the video (title, body, locale, kind, image). Not the CMS
    /// revision: our own write-back bumps that, and must not look like new content.
    ///
    /// The digest of the JSON array `[title, body_text, locale, kind, image]`, written straight
    /// into the hash: every plugin call sends it, and copying a long body into a JSON value and
    /// then into a string first cost more than hashing it.
    pub fn fingerprint(&self) -> String {
        let driving = (
            &self.title,
            &self.body_text,
            &self.locale,
            &self.kind,
            &self.image,
        );
        let mut hasher = Sha256::new();
        serde_json::to_writer(&mut hasher, &driving).expect("strings serialise");
        hex::encode(hasher.finalize())
    }
}

/// How much of a content's text a narration kept, when it kept less than all of it: a plan
/// fitted to the provider's audio limit (or summarised) says so, in words, wherever its render
/// is shown (a batch's results file, `jobs show`, the workspace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WordsKept {
    /// Words of the text that the narration says.
    pub kept: usize,
    /// Words of the text.
    pub given: usize,
}

impl WordsKept {
    /// Compares `text` and `narration` as bags of words (lower case, punctuation trimmed), so
    /// words a template adds around the text are not counted as kept; none when all was kept.
    pub fn measure(text: &str, narration: &str) -> Option<WordsKept> {
        let mut said = std::collections::HashMap::<String, usize>::new();
        for word in spoken_words(narration) {
            *said.entry(word).or_default() += 1;
        }
        let text = spoken_words(text);
        let kept = text
            .iter()
            .filter(|w| {
                said.get_mut(w.as_str())
                    .filter(|n| **n > 0)
                    .map(|n| *n -= 1)
                    .is_some()
            })
            .count();
        (kept < text.len()).then_some(WordsKept {
            kept,
            given: text.len(),
        })
    }
}

impl WordsKept {
    /// What a stored plan (a render's `plan_json`) says it kept, if it was shortened.
    pub fn in_plan(plan_json: Option<&str>) -> Option<WordsKept> {
        #[derive(Deserialize)]
        struct Noted {
            shortened: Option<WordsKept>,
        }
        serde_json::from_str::<Noted>(plan_json?).ok()?.shortened
    }
}

/// The words of `text` as they are said: lower case, punctuation around them trimmed.
pub fn spoken_words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

impl std::fmt::Display for WordsKept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "shortened: the narration keeps {} of the text's {} words",
            self.kept, self.given
        )
    }
}

/// Whether `tag` has the syntax of a BCP 47 (RFC 5646) language tag: a 2-3 or 5-8 letter
/// language (or private use `x-…`), then subtags of 1-8 letters and digits, where a script is 4
/// letters, a region 2 letters or 3 digits, and an extension or private-use singleton is
/// followed by at least one subtag. Registry membership is not checked (a new region code must
/// not fail a delivery); `<script>` or `en US` is refused.
pub fn is_language_tag(tag: &str) -> bool {
    let subtags: Vec<&str> = tag.split('-').collect();
    let alnum =
        |s: &str| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !subtags.iter().all(|s| alnum(s)) {
        return false;
    }
    let first = subtags[0];
    let language =
        first.bytes().all(|b| b.is_ascii_alphabetic()) && matches!(first.len(), 2 | 3 | 5..=8);
    let private = first.eq_ignore_ascii_case("x") && subtags.len() > 1;
    if !(language || private) {
        return false;
    }
    // A singleton (extension or private use) must be followed by a subtag.
    let last_is_singleton = subtags.len() > 1 && subtags[subtags.len() - 1].len() == 1;
    !last_is_singleton
}

/// Markdown to (HTML, plain text). The text is the HTML's, by the one set of rules every CMS's
/// HTML follows ([`crate::cms::mapping::html_to_text`]): paragraphs and headings apart by a
/// blank line (which sentence splitting and TTS pauses read), code blocks and tables not read.
pub fn markdown_to_html_and_text(markdown: &str) -> (String, String) {
    let mut html = String::new();
    let options =
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_FOOTNOTES;
    pulldown_cmark::html::push_html(
        &mut html,
        pulldown_cmark::Parser::new_ext(markdown, options),
    );
    let text = crate::cms::mapping::html_to_text(&html);
    (html, text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_narration_that_keeps_part_of_the_text_says_how_much() {
        use super::WordsKept;
        let text = "The council met. It voted for solar panels. Work starts in May.";
        let all = format!("Here is the news. {text} Thanks for watching.");
        assert_eq!(WordsKept::measure(text, &all), None);
        let cut = "Here is the news. The council met. It voted for solar panels.";
        assert_eq!(
            WordsKept::measure(text, cut),
            Some(WordsKept { kept: 8, given: 12 })
        );
        assert_eq!(
            WordsKept { kept: 8, given: 12 }.to_string(),
            "shortened: the narration keeps 8 of the text's 12 words"
        );
    }

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

    /// Stored fingerprints decide whether a publish is new content: the streamed hash must stay
    /// the digest of the JSON text it always was.
    #[test]
    fn fingerprint_is_the_digest_of_the_driving_fields_as_json() {
        let mut content = sample();
        content.title = "Quotes \" and \\ back\u{1}slash, é, 漢字 🎉".into();
        content.body_text = "Line\nbreak\ttab </script>".repeat(300);
        for image in [None, Some("https://cdn.example/p.png".to_string())] {
            content.image = image;
            let json = serde_json::json!([
                content.title,
                content.body_text,
                content.locale,
                content.kind,
                content.image
            ])
            .to_string();
            assert_eq!(
                content.fingerprint(),
                hex::encode(Sha256::digest(json.as_bytes()))
            );
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
    fn locales_must_be_language_tags_and_fields_have_limits() {
        for good in [
            "en",
            "en-US",
            "de-DE",
            "zh-Hant-TW",
            "es-419",
            "sr-Latn-RS",
            "ar",
            "x-klingon",
            "en-US-u-ca-gregory",
        ] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in [
            "", "<script>", "e", "en US", "en_US", "en--US", "en-", "-en", "en-u", "1a-US",
            "enuk-US",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
        let mut content = sample();
        content.locale = "<script>".into();
        assert!(content.validate().unwrap_err().contains("BCP 47"));
        let mut content = sample();
        content.kind = "k".repeat(MAX_KIND_CHARS + 1);
        assert!(content.validate().unwrap_err().contains("kind"));
        let mut content = sample();
        content.body_text = "w ".repeat(MAX_BODY_CHARS);
        assert!(content.validate().unwrap_err().contains("body text"));
        let mut content = sample();
        content.url = Some(format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS)));
        assert!(content.validate().unwrap_err().contains("url"));
        assert!(sample().validate().is_ok());
    }

    #[test]
    fn revisions_order_as_integers_or_times() {
        let at = |revision: &str| {
            let mut content = sample();
            content.revision = revision.into();
            content.revision_order()
        };
        assert_eq!(at("7"), Some(7));
        assert_eq!(at("2026-12-06T03:19:17.000Z"), Some(1_796_527_157_000));
        // WordPress's modified_gmt has no offset: UTC.
        assert_eq!(at("2026-12-06T03:19:17"), Some(1_796_527_157_000));
        assert!(at("2026-12-06T03:19:18Z") > at("2026-12-06T03:19:17.999Z"));
        assert_eq!(at(""), None);
        assert_eq!(
            at("3-abc"),
            None,
            "an opaque marker (Sanity's _rev) has no order"
        );
    }

    #[test]
    fn markdown_text_keeps_paragraphs() {
        let (html, text) = markdown_to_html_and_text(
            "# Title\n\nFirst *line*\nwraps.\n\n- item\n\n```\ncode\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        );
        assert!(html.contains("<em>line</em>") && html.contains("<table>"));
        assert_eq!(text, "Title\n\nFirst line wraps.\n\nitem");
    }
}
