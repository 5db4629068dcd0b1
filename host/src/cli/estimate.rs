//! `vidhook estimate`: what a folder of content (or a number of events) would cost, before any
//! of it is published. For a folder, each file goes through the source's real plugin chain, so
//! skipped entries and multi-locale fan-outs are counted as they would be.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::cms::markdown::MarkdownFolder;
use crate::config::Config;
use crate::content::Content;
use crate::generation::{CREDITS_PER_VIDEO, CREDIT_PACKS};
use crate::plugins::Decision;
use crate::store::Store;

/// What a source's plugin chain makes of some contents, before anything is paid.
pub struct Count {
    /// Videos the contents would produce (a multi-locale plan counts each of its videos).
    pub videos: i64,
    /// Contents a plugin skipped.
    pub skipped: usize,
    /// Contents that failed to plan, each with its reason.
    pub errors: Vec<String>,
}

/// Runs each of `contents` (each named by its label for errors) through `source`'s real plugin chain.
pub async fn count_videos(
    config: &Config,
    store: &Store,
    source: &str,
    contents: impl IntoIterator<Item = (String, Result<Content, String>)>,
) -> anyhow::Result<Count> {
    crate::templates::seed_defaults(store).await?;
    let host = crate::app::plugin_host(config, store.clone()).await?;
    let templates = Arc::new(crate::templates::TemplateSet::load(store).await?);
    let source_config = config.sources.get(source);
    let chain: Vec<_> = config
        .chain(source)
        .iter()
        .map(|p| (p.name.clone(), p.config.clone()))
        .collect();
    let mut count = Count {
        videos: 0,
        skipped: 0,
        errors: Vec::new(),
    };
    for (label, content) in contents {
        let mut content = match content {
            Ok(content) => content,
            Err(e) => {
                count.errors.push(format!("{label}: {e}"));
                continue;
            }
        };
        if let Some(source) = source_config {
            content.image = source.image_for(&content);
        }
        let outcome = match host.run_chain(&chain, &content, templates.clone()).await {
            Ok(Decision::Generate(plans)) => {
                match plans
                    .iter()
                    .find_map(|p| p.narration_problem(&content.title))
                {
                    Some(problem) => Err(problem),
                    None => Ok(Some(plans.len() as i64)),
                }
            }
            Ok(Decision::Skip(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(None) => count.skipped += 1,
            Ok(Some(videos)) => count.videos += videos,
            Err(e) => count.errors.push(format!("{label}: {e}")),
        }
    }
    Ok(count)
}

/// Videos a folder's Markdown files would produce: (count, files).
async fn count_folder(
    config: &Config,
    store: &Store,
    source: &str,
    folder: &Path,
) -> anyhow::Result<(Count, usize)> {
    let adapter = MarkdownFolder::new(source.to_string(), folder.to_path_buf());
    let mut files: Vec<_> = std::fs::read_dir(folder)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    let contents = files.iter().map(|file| {
        let content = adapter.load(file).map_err(|e| e.to_string());
        (file.display().to_string(), content)
    });
    let count = count_videos(config, store, source, contents).await?;
    Ok((count, files.len()))
}

pub async fn run(
    config: &Config,
    folder: Option<&Path>,
    source: Option<&str>,
    events: Option<i64>,
) -> anyhow::Result<()> {
    if let Some(asked) = source {
        crate::estimate::choose_source(config, Some(asked))?;
    }
    let store = super::open_store(config).await?;
    let (source, videos) = match (folder, events) {
        (Some(folder), _) => {
            let source = match source {
                Some(source) => source.to_string(),
                None => super::markdown_source(config, None)
                    .map(|(name, _)| name)
                    .map_err(|e| anyhow::anyhow!("{e}; name one with --source"))?,
            };
            let (count, files) = count_folder(config, &store, &source, folder).await?;
            println!(
                "{files} files in {} (source {source}): {} videos, {} skipped, {} errors",
                folder.display(),
                count.videos,
                count.skipped,
                count.errors.len()
            );
            for error in &count.errors {
                println!("  error: {error}");
            }
            (source, count.videos)
        }
        (None, Some(events)) => {
            let source = crate::estimate::choose_source(config, source)?;
            let fan_out = crate::estimate::FanOut::observed(&store, &source).await?;
            let videos = fan_out.videos(events);
            println!(
                "{events} events of source {source} × {} = {videos} videos",
                fan_out.describe()
            );
            (source, videos)
        }
        (None, None) => anyhow::bail!("give --folder DIR or --events N"),
    };
    let estimate = crate::estimate::price(config, &store, &source, videos).await?;
    println!("estimate: {videos} videos, {}", estimate.cost());
    if let Some(line) = estimate.budget_line() {
        println!("{line}");
    }
    println!(
        "every configured host for the same {videos} videos (paid by the second at {}):",
        estimate.seconds_basis
    );
    print!("{}", estimate.hosts_table());
    print!("{}", table(videos));
    Ok(())
}

/// Credits and dollars for `videos` generations at each documented credit-pack tier.
pub fn table(videos: i64) -> String {
    let credits = videos * CREDITS_PER_VIDEO;
    // The list price: a credit a cent.
    let list = |videos: i64| format!("${:.2}", (videos * CREDITS_PER_VIDEO) as f64 / 100.0);
    let mut out = format!(
        "OmniHuman list price: {CREDITS_PER_VIDEO} credits = {} a video (1,000 videos → {}); \
         {videos} videos × {CREDITS_PER_VIDEO} credits = {credits} credits = {} at list price\n",
        list(1),
        list(1000),
        list(videos)
    );
    out.push_str(&format!(
        "{:<9} {:>12} {:>14} {:>22}\n",
        "pack", "$ per video", "$ at this rate", "packs to buy"
    ));
    let mut by_pack = BTreeMap::new();
    for (name, dollars, pack_credits) in CREDIT_PACKS {
        let per_credit = dollars / pack_credits as f64;
        let packs = (credits + pack_credits - 1) / pack_credits;
        by_pack.insert(name, packs);
        out.push_str(&format!(
            "{name:<9} {:>12} {:>14} {:>22}\n",
            format!("${:.2}", per_credit * CREDITS_PER_VIDEO as f64),
            format!("${:.2}", per_credit * credits as f64),
            format!("{packs} × ${dollars:.0} = ${:.0}", packs as f64 * dollars)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn prices_follow_the_documented_packs() {
        let table = super::table(10);
        assert!(
            table.contains("960 credits = $9.60 a video (1,000 videos → $9600.00)")
                && table.contains("10 videos × 960 credits = 9600 credits = $96.00 at list price"),
            "{table}"
        );
        // Starter: $10 / 1,050 credits → $9.14 a video; 9,600 credits need 10 packs.
        assert!(
            table.contains("$9.14") && table.contains("10 × $10 = $100"),
            "{table}"
        );
        // Max: $100 / 12,000 credits → $8.00 a video, $80.00 at that rate, one pack.
        assert!(
            table.contains("$8.00")
                && table.contains("$80.00")
                && table.contains("1 × $100 = $100"),
            "{table}"
        );
    }
}
