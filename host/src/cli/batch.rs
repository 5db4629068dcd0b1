//! `vidhook batch FILE.csv|FILE.jsonl --source NAME`: one video per row, the OmniHuman guide's
//! "one video per prospect" pattern. Each row becomes one content item whose columns are template
//! variables (`{{fields.first_name}}`, `{{fields.company}}` …) for the source's plugins; the
//! columns `id`, `title`, `body`, `locale`, `image` and `url`, where present, fill the item's own
//! fields. Each row's outcome is appended to the output file as soon as it settles (one line,
//! flushed), so a crash loses nothing already written, and a second run adds only what is new.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::content::Content;
use crate::store::RunItem;

#[derive(clap::Args)]
pub struct BatchArgs {
    /// The rows: CSV with a header line, or JSON Lines (one object a line).
    file: PathBuf,
    /// The source whose plugins, templates and budget the rows go through.
    #[arg(long)]
    source: String,
    /// Where each row's video URL or failure reason goes (default: FILE.results.csv).
    #[arg(long)]
    output: Option<PathBuf>,
    /// At most this many rows to render (rows already rendered do not count).
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    go: super::runs::Go,
}

pub async fn run(config: &Config, args: BatchArgs) -> anyhow::Result<()> {
    if !config.sources.contains_key(&args.source) {
        anyhow::bail!("no source named {:?}", args.source);
    }
    let rows = read_rows(&args.file)?;
    let mut items = Vec::new();
    let mut row_of = BTreeMap::new();
    for (n, row) in rows.into_iter().enumerate() {
        let line = n + 1;
        let content = content_of(&args.source, line, row)
            .map_err(|e| anyhow::anyhow!("{} row {line}: {e}", args.file.display()))?;
        if row_of.insert(content.id.clone(), line).is_some() {
            anyhow::bail!(
                "{} row {line}: the id {:?} is used by an earlier row",
                args.file.display(),
                content.id
            );
        }
        items.push((format!("row {line}"), content));
    }
    let path = std::fs::canonicalize(&args.file)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.results.csv", args.file.display())));
    let mut sink = Output::open(&output, row_of)?;
    let planned = super::runs::Planned {
        label: format!("batch {} {}", args.source, path.display()),
        kind: "batch",
        source: args.source.clone(),
        items,
        limit: args.limit,
    };
    super::runs::execute(config, planned, &args.go, Some(&mut sink)).await?;
    println!("results: {}", output.display());
    Ok(())
}

/// The rows of a CSV (header line first) or JSON Lines file, as JSON objects.
fn read_rows(file: &Path) -> anyhow::Result<Vec<Map<String, Value>>> {
    let is_jsonl = file
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    if is_jsonl {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        return text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(n, line)| match serde_json::from_str(line) {
                Ok(Value::Object(row)) => Ok(row),
                Ok(_) => anyhow::bail!("{} line {}: not a JSON object", file.display(), n + 1),
                Err(e) => anyhow::bail!("{} line {}: {e}", file.display(), n + 1),
            })
            .collect();
    }
    let mut reader =
        csv::Reader::from_path(file).with_context(|| format!("reading {}", file.display()))?;
    let headers = reader.headers()?.clone();
    reader
        .records()
        .map(|record| {
            let record = record.with_context(|| format!("{}", file.display()))?;
            Ok(headers
                .iter()
                .zip(record.iter())
                .map(|(k, v)| (k.trim().to_string(), Value::String(v.to_string())))
                .collect())
        })
        .collect()
}

/// One row as content: its id (the `id` column, else `row-N`) names it across runs.
fn content_of(source: &str, line: usize, row: Map<String, Value>) -> Result<Content, String> {
    let text = |key: &str| match row.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let optional = |key: &str| Some(text(key)).filter(|s| !s.is_empty());
    let id = optional("id").unwrap_or_else(|| format!("row-{line}"));
    let body = text("body");
    let content = Content {
        source: source.to_string(),
        cms: crate::content::BATCH_CMS.into(),
        title: optional("title").unwrap_or_else(|| id.clone()),
        id,
        revision: String::new(),
        kind: optional("type").unwrap_or_else(|| "row".into()),
        locale: optional("locale").unwrap_or_else(|| "en-US".into()),
        body_html: String::new(),
        body_text: body,
        url: optional("url"),
        image: optional("image"),
        fields: Value::Object(row),
    };
    content.validate()?;
    Ok(content)
}

/// The output file: `row,id,locale,render,state,video_url,reason,narration`, one line per
/// settled render (`narration` says when the plan kept less than the row's text).
struct Output {
    file: std::fs::File,
    row_of: BTreeMap<String, usize>,
    /// (render, state) lines already in the file: a render retried after it failed gets a
    /// second line with its new outcome (the last line of a render is its outcome).
    written: HashSet<(String, String)>,
}

impl Output {
    /// Opens `path` for appending, remembering the renders an earlier run already wrote.
    fn open(path: &Path, row_of: BTreeMap<String, usize>) -> anyhow::Result<Output> {
        let mut written = HashSet::new();
        if path.exists() {
            // Flexible: a file an earlier version wrote has one column fewer.
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_path(path)?;
            for record in reader.records() {
                let record = record?;
                if let (Some(render), Some(state)) = (record.get(3), record.get(4)) {
                    written.insert((render.to_string(), state.to_string()));
                }
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        if written.is_empty() && file.metadata()?.len() == 0 {
            file.write_all(b"row,id,locale,render,state,video_url,reason,narration\n")?;
        }
        Ok(Output {
            file,
            row_of,
            written,
        })
    }
}

impl super::runs::Sink for Output {
    fn settled(&mut self, item: &RunItem) -> anyhow::Result<()> {
        if !self
            .written
            .insert((item.render_id.clone(), item.state.clone()))
        {
            return Ok(());
        }
        let row = self
            .row_of
            .get(&item.entry_id)
            .map(ToString::to_string)
            .unwrap_or_default();
        let mut line = csv::Writer::from_writer(Vec::new());
        line.write_record([
            row.as_str(),
            &item.entry_id,
            &item.locale,
            &item.render_id,
            &item.state,
            item.video_url.as_deref().unwrap_or(""),
            item.error.as_deref().unwrap_or(""),
            &item.shortened.map(|s| s.to_string()).unwrap_or_default(),
        ])?;
        self.file.write_all(&line.into_inner()?)?;
        self.file.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_becomes_content_with_its_columns_as_fields() {
        let row: Map<String, Value> =
            serde_json::from_str(r#"{"first_name":"Ada","company":"Analytical","locale":"de-DE"}"#)
                .unwrap();
        let content = content_of("outreach", 3, row).unwrap();
        assert_eq!(content.id, "row-3");
        assert_eq!(content.locale, "de-DE");
        assert_eq!(content.fields["first_name"], "Ada");
        assert_eq!(content.title, "row-3");
    }

    #[test]
    fn a_row_with_a_control_character_in_its_id_is_refused() {
        let row: Map<String, Value> = serde_json::from_str(r#"{"id":"a\u0007b"}"#).unwrap();
        assert!(content_of("outreach", 1, row).is_err());
    }
}
