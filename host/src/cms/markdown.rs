//! A folder of Markdown files with YAML front matter (the embedded default source, and how a
//! docs-as-code team works). `vidhook publish FILE` publishes one file; the video URL is written
//! into its front matter (`video_url: "…"` by default), touching no other line.
//!
//! Front matter keys read: `title` (else the first `# heading`), `locale` (en-US), `kind`
//! (article), `id` (the path relative to the folder), `url`, `presenter_image` (an https URL:
//! like any content, a file may not make the host read local files; a photo on disk belongs in
//! the source's `presenter_image` setting). Everything else is passed to plugins in `fields`.

use std::path::{Path, PathBuf};

use super::{CmsAdapter, Inbound, InboundError, ListError, Listed, Page, WriteBackError};
use crate::content::{markdown_to_html_and_text, Content};

pub struct MarkdownFolder {
    source: String,
    folder: PathBuf,
}

impl MarkdownFolder {
    pub fn new(source: String, folder: PathBuf) -> Self {
        MarkdownFolder { source, folder }
    }

    /// Reads one file of the folder as content. Files outside the folder are refused.
    pub fn load(&self, file: &Path) -> Result<Content, InboundError> {
        let (path, id) = self.locate(file)?;
        let text = std::fs::read_to_string(&path)
            .map_err(|e| InboundError::Malformed(format!("{}: {e}", path.display())))?;
        self.parse(
            &text,
            id,
            modified_revision(&path),
            &path.display().to_string(),
        )
    }

    /// Parses a file's text (front matter + Markdown) as content; `origin` names the file in
    /// errors. Separate from [`MarkdownFolder::load`] so that it can be fuzzed without a disk.
    pub fn parse(
        &self,
        text: &str,
        id: String,
        revision: String,
        origin: &str,
    ) -> Result<Content, InboundError> {
        let (front, body) = split_front_matter(text);
        let fields: serde_json::Value = match front {
            Some(yaml) => serde_yaml_ng::from_str(yaml)
                .map_err(|e| InboundError::Malformed(format!("{origin}: front matter: {e}")))?,
            None => serde_json::json!({}),
        };
        let fields = if fields.is_null() {
            serde_json::json!({})
        } else {
            fields
        };
        if !fields.is_object() {
            return Err(InboundError::Malformed(format!(
                "{origin}: front matter is not a mapping"
            )));
        }
        let get = |key: &str| fields.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let (body_html, body_text) = markdown_to_html_and_text(body);
        let title = get("title")
            .or_else(|| {
                body.lines()
                    .find_map(|l| l.strip_prefix("# ").map(|t| t.trim().to_owned()))
            })
            .ok_or_else(|| InboundError::Malformed(format!("{origin}: no title")))?;
        // Passed on as written; the plan step accepts only URLs the outbound guard allows.
        let image = get("presenter_image");
        Ok(Content {
            source: self.source.clone(),
            cms: self.kind().into(),
            id: get("id").unwrap_or(id),
            revision,
            kind: get("kind").unwrap_or_else(|| "article".into()),
            locale: get("locale").unwrap_or_else(|| "en-US".into()),
            title,
            body_html,
            body_text,
            url: get("url"),
            image,
            fields,
        })
    }

    /// The canonical path of `file` and its id (path relative to the folder, `/`-separated).
    fn locate(&self, file: &Path) -> Result<(PathBuf, String), InboundError> {
        let not_found =
            |e: std::io::Error| InboundError::Malformed(format!("{}: {e}", file.display()));
        let folder = self.folder.canonicalize().map_err(not_found)?;
        let candidate = if file.is_absolute() || file.exists() {
            file.to_path_buf()
        } else {
            folder.join(file)
        };
        let path = candidate.canonicalize().map_err(not_found)?;
        let relative = path.strip_prefix(&folder).map_err(|_| {
            InboundError::Malformed(format!(
                "{} is not inside {}",
                file.display(),
                folder.display()
            ))
        })?;
        let id = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        Ok((path, id))
    }
}

/// Splits `---\n<yaml>\n---\n<body>`; no front matter gives `(None, text)`.
fn split_front_matter(text: &str) -> (Option<&str>, &str) {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, text)
}

/// Sets `field: "value"` in the front matter, replacing the key's line if present, else adding
/// it last; every other line stays as it was. A file without front matter gets one.
pub fn set_front_matter_field(text: &str, field: &str, value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("strings serialise"); // JSON strings are YAML
    let (front, body) = split_front_matter(text);
    let Some(front) = front else {
        return format!("---\n{field}: {quoted}\n---\n{text}");
    };
    // Our key goes at the mapping's own indentation (found by fuzzing: a front matter whose keys
    // are indented by a space no longer parsed with ours appended at the margin).
    let indent: String = front
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.chars().take_while(|c| *c == ' ').collect())
        .unwrap_or_default();
    let line = format!("{indent}{field}: {quoted}\n");
    // The old value may span lines (a multi-line scalar, a block): take as many lines after the
    // key's as make the front matter read exactly as before with only `field` changed (found by
    // fuzzing: replacing the key's first line alone left the rest of a two-line value behind,
    // and the file no longer parsed).
    let lines: Vec<&str> = front.split_inclusive('\n').collect();
    let expected = parse_mapping(front).map(|mut mapping| {
        mapping.insert(field.to_string(), serde_json::Value::from(value));
        mapping
    });
    let with = |continuation: usize| {
        let prefix = format!("{indent}{field}:");
        let mut out = String::from("---\n");
        let mut replaced = false;
        let mut skip = 0;
        for existing in &lines {
            if skip > 0 {
                skip -= 1;
            } else if !replaced && existing.starts_with(&prefix) {
                out.push_str(&line);
                replaced = true;
                skip = continuation;
            } else {
                out.push_str(existing);
                if !existing.ends_with('\n') {
                    out.push('\n');
                }
            }
        }
        if !replaced {
            out.push_str(&line);
        }
        out
    };
    let front = expected
        .and_then(|expected| {
            (0..lines.len()).map(&with).find(|candidate| {
                parse_mapping(&candidate["---\n".len()..]) == Some(expected.clone())
            })
        })
        .unwrap_or_else(|| with(0));
    format!("{front}---\n{body}")
}

/// Front matter as a mapping, if it is one.
fn parse_mapping(front: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_yaml_ng::from_str(front).ok()? {
        serde_json::Value::Object(mapping) => Some(mapping),
        _ => None,
    }
}

/// The file's modification time: informational only (dedup uses the fingerprint).
/// Every `.md` file under `dir` (recursively) with its modification time in unix ms.
fn markdown_files(dir: &Path, out: &mut Vec<(PathBuf, i64)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            markdown_files(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "md") {
            let modified = entry
                .metadata()?
                .modified()?
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default();
            out.push((path, modified));
        }
    }
    Ok(())
}

fn modified_revision(path: &Path) -> String {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs().to_string())
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl CmsAdapter for MarkdownFolder {
    fn kind(&self) -> &'static str {
        "markdown"
    }

    async fn receive(&self, _delivery: &super::Delivery<'_>) -> Result<Inbound, InboundError> {
        Err(InboundError::NotAWebhookSource(format!(
            "source {:?} is a Markdown folder: publish with `vidhook publish --source {} FILE`",
            self.source, self.source
        )))
    }

    /// The folder's `.md` files modified since `since_ms`, oldest first, except those whose
    /// front matter says `draft: true`. A file that does not parse is skipped with a log line
    /// (`vidhook publish` shows its error), not a failed sweep.
    async fn list_published(
        &self,
        since_ms: i64,
        _cursor: Option<&str>,
    ) -> Result<Option<Page>, ListError> {
        let mut files = Vec::new();
        markdown_files(&self.folder, &mut files)
            .map_err(|e| ListError(format!("{}: {e}", self.folder.display())))?;
        let mut items = Vec::new();
        for (file, modified_ms) in files {
            if modified_ms < since_ms {
                continue;
            }
            match self.load(&file) {
                Ok(content) if content.fields["draft"] == serde_json::json!(true) => {}
                Ok(content) => items.push(Listed::new(modified_ms, Ok(vec![content]))),
                Err(err) => {
                    tracing::warn!(file = %file.display(), error = %err, "catch-up: skipped a file")
                }
            }
        }
        items.sort_by_key(|i| i.changed_ms);
        Ok(Some(Page { items, next: None }))
    }

    async fn write_back(
        &self,
        content: &Content,
        field: &str,
        video_url: &str,
    ) -> Result<(), WriteBackError> {
        let (path, _) = self
            .locate(Path::new(&content.id))
            .map_err(|e| WriteBackError::Permanent(e.to_string()))?;
        let io = |e: std::io::Error| WriteBackError::Transient(format!("{}: {e}", path.display()));
        let text = tokio::fs::read_to_string(&path).await.map_err(io)?;
        let updated = set_front_matter_field(&text, field, video_url);
        let tmp = path.with_extension("md.vidhook-tmp");
        tokio::fs::write(&tmp, updated).await.map_err(io)?;
        tokio::fs::rename(&tmp, &path).await.map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_spanning_two_lines_is_replaced_whole() {
        // The fuzzer's crash (tests/markdown_front_matter): a double-quoted video_url continued
        // on the next line; replacing its first line alone left `Sld"` behind.
        let text = "---\ntitle: \"Welcome: a start\"\nlocaee-G: 0bB\ntags: [a- b]\nvideo_url: \"httadin\nSld\"\n---\n# Headijg\n\nSome *text*h\n";
        let out = set_front_matter_field(text, "video_url", "https://v/1.mp4");
        assert_eq!(
            out,
            "---\ntitle: \"Welcome: a start\"\nlocaee-G: 0bB\ntags: [a- b]\nvideo_url: \"https://v/1.mp4\"\n---\n# Headijg\n\nSome *text*h\n"
        );
        // The fuzzer's second crash: keys indented by a space; ours is added at their indent.
        let indented = "---\n cW#o---: ps/old\"\n---\n# \n";
        let out = set_front_matter_field(indented, "video_url", "https://v/1.mp4");
        assert_eq!(
            out,
            "---\n cW#o---: ps/old\"\n video_url: \"https://v/1.mp4\"\n---\n# \n"
        );
        let (front, _) = split_front_matter(&out);
        assert_eq!(
            parse_mapping(front.unwrap()).unwrap()["video_url"],
            "https://v/1.mp4"
        );
        // A block value's indented lines go with it; the key after it stays.
        let block = "---\nvideo_url:\n  - old\n  - older\nlocale: de\n---\nBody\n";
        assert_eq!(
            set_front_matter_field(block, "video_url", "v"),
            "---\nvideo_url: \"v\"\nlocale: de\n---\nBody\n"
        );
    }

    #[test]
    fn sets_a_field_without_touching_other_lines() {
        let text = "---\ntitle: Hi\nvideo_url: old\nlocale: de\n---\n# Body\n";
        let out = set_front_matter_field(text, "video_url", "http://x/v.mp4");
        assert_eq!(
            out,
            "---\ntitle: Hi\nvideo_url: \"http://x/v.mp4\"\nlocale: de\n---\n# Body\n"
        );
        let added = set_front_matter_field("---\ntitle: Hi\n---\nbody", "video_url", "u");
        assert_eq!(added, "---\ntitle: Hi\nvideo_url: \"u\"\n---\nbody");
        assert_eq!(
            set_front_matter_field("body", "video_url", "u"),
            "---\nvideo_url: \"u\"\n---\nbody"
        );
    }

    #[test]
    fn loads_content_and_refuses_files_outside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("post.md");
        std::fs::write(
            &file,
            "---\ntitle: Hello\nlocale: de-DE\npresenter_image: https://cdn.example.com/me.png\n---\nFirst.\n\nSecond.",
        )
        .unwrap();
        let folder = MarkdownFolder::new("docs".into(), dir.path().into());
        let content = folder.load(Path::new("post.md")).unwrap();
        assert_eq!(
            (content.id.as_str(), content.title.as_str()),
            ("post.md", "Hello")
        );
        assert_eq!(content.locale, "de-DE");
        assert_eq!(content.body_text, "First.\n\nSecond.");
        assert!(content.image.unwrap().ends_with("me.png"));
        let outside = tempfile::NamedTempFile::new().unwrap();
        assert!(folder.load(outside.path()).is_err());
    }

    #[tokio::test]
    async fn write_back_keeps_the_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.md"), "---\ntitle: A\n---\nBody.").unwrap();
        let folder = MarkdownFolder::new("docs".into(), dir.path().into());
        let before = folder.load(Path::new("a.md")).unwrap();
        folder
            .write_back(&before, "video_url", "http://v")
            .await
            .unwrap();
        let after = folder.load(Path::new("a.md")).unwrap();
        assert_eq!(after.fields["video_url"], "http://v");
        assert_eq!(before.fingerprint(), after.fingerprint());
    }
}
