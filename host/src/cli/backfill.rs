//! `vidhook backfill`: a video for each item a source already has. The source's CMS is listed
//! with its own published filter and paging (the catch-up sweep's [`Pager`]), from `--since`
//! (default: the beginning); each item whose current content has no video yet becomes a render
//! of one run (see [`super::runs`]).

use std::collections::BTreeMap;

use crate::cms::pager::{Paged, Pager};
use crate::config::Config;

#[derive(clap::Args)]
pub struct BackfillArgs {
    /// The source whose CMS is listed.
    #[arg(long)]
    source: String,
    /// Only items of this content type (the CMS's type, as the source's field map names it).
    #[arg(long = "type")]
    kind: Option<String>,
    /// Only items published or changed since this date (`2026-01-31` is midnight UTC) or time
    /// (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// At most this many items to render (already rendered items do not count).
    #[arg(long)]
    limit: Option<usize>,
    #[command(flatten)]
    go: super::runs::Go,
}

pub async fn run(config: &Config, args: BackfillArgs) -> anyhow::Result<()> {
    let adapters = crate::cms::build(&config.sources)?;
    let Some(adapter) = adapters.get(&args.source) else {
        anyhow::bail!("no source named {:?}", args.source);
    };
    let since_ms = match &args.since {
        Some(since) => parse_since(since)?,
        None => 0,
    };
    let mut pager = Pager::new(adapter.as_ref(), since_ms);
    // By (entry, locale): an item listed twice (at a page boundary) counts once.
    let mut listed = BTreeMap::new();
    let mut unreadable = 0;
    loop {
        match pager.next().await? {
            Paged::Unlisted => anyhow::bail!(
                "source {:?} cannot be listed: its CMS has no listing, or its API access (token, collections) is not configured",
                args.source
            ),
            Paged::End => break,
            Paged::Items { items, .. } => {
                for item in items {
                    let contents = match item.contents {
                        Ok(contents) => contents,
                        Err(reason) => {
                            unreadable += 1;
                            println!("skipped a listed item: {reason}");
                            continue;
                        }
                    };
                    for content in contents {
                        if args.kind.as_ref().is_some_and(|k| *k != content.kind) {
                            continue;
                        }
                        if let Err(reason) = content.validate() {
                            unreadable += 1;
                            println!("skipped {}: {reason}", content.id);
                            continue;
                        }
                        listed.insert((content.id.clone(), content.locale.clone()), content);
                    }
                }
            }
        }
    }
    if unreadable > 0 {
        println!("{unreadable} listed items could not be read as content");
    }
    let planned = super::runs::Planned {
        label: format!(
            "backfill {} type={} since={}",
            args.source,
            args.kind.as_deref().unwrap_or("*"),
            args.since.as_deref().unwrap_or("-")
        ),
        kind: "backfill",
        source: args.source.clone(),
        items: listed
            .into_iter()
            .map(|((id, locale), content)| (format!("{id} ({locale})"), content))
            .collect(),
        limit: args.limit,
    };
    super::runs::execute(config, planned, &args.go, None).await
}

/// `2026-01-31` (midnight UTC) or an RFC 3339 time, as unix ms.
fn parse_since(text: &str) -> anyhow::Result<i64> {
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        let at = date.to_zoned(jiff::tz::TimeZone::UTC)?;
        return Ok(at.timestamp().as_millisecond());
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            anyhow::anyhow!("--since {text:?}: not a date (2026-01-31) or an RFC 3339 time: {e}")
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn since_takes_a_date_or_a_time() {
        assert_eq!(super::parse_since("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(super::parse_since("1970-01-01T00:00:01Z").unwrap(), 1000);
        assert!(super::parse_since("yesterday").is_err());
    }
}
