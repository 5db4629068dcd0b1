//! `vidhook digests`: the scheduled digests' state, and one check of a schedule run by hand at
//! any time (`tick --at`), which is also how the tests drive the schedule's clock.

use clap::Subcommand;

use crate::config::Config;
use crate::digests::Ticked;

#[derive(Subcommand)]
pub enum DigestsAction {
    /// Each source's schedule, its last tick and how far its events are covered.
    List,
    /// A source's digests, newest first: tick, items, render, state and video.
    Show {
        /// The source whose digests to list.
        #[arg(long)]
        source: String,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Check a source's schedule as of `--at` (default: now): says whether a digest is due and
    /// of how many items. A rehearsal unless `--record`: then the tick is recorded and its
    /// digest queued (a running `serve` renders it), as the service's own check does.
    Tick {
        /// The source whose `[digest]` schedule to check.
        #[arg(long)]
        source: String,
        /// An RFC 3339 time (`2030-01-01T07:00:30+01:00`).
        #[arg(long)]
        at: Option<String>,
        /// Record the tick and queue its digest (without it nothing changes: the schedule's
        /// real tick still comes).
        #[arg(long)]
        record: bool,
    },
}

pub async fn run(config: &Config, action: DigestsAction) -> anyhow::Result<()> {
    let store = super::open_store(config).await?;
    match action {
        DigestsAction::List => {
            if config.sources.values().all(|s| s.settings.digest.is_none()) {
                println!(
                    "no source has a [digest] schedule: add [sources.NAME.digest] (see the README)"
                );
            }
            for (name, source) in &config.sources {
                let Some(digest) = &source.settings.digest else {
                    continue;
                };
                let state = match store.digest_state(name).await? {
                    Some((tick, covered)) => format!(
                        "last tick {}, events covered to {}",
                        crate::cms::format_time(tick),
                        crate::cms::format_time(covered)
                    ),
                    None => "not started".into(),
                };
                println!(
                    "{name}: \"{}\" in {} with {}; {state}",
                    digest.schedule, digest.time_zone, digest.plugin
                );
            }
        }
        DigestsAction::Show { source, limit } => {
            if config
                .sources
                .get(&source)
                .is_none_or(|s| s.settings.digest.is_none())
            {
                anyhow::bail!("source {source:?} has no [digest] schedule: `vidhook digests list` shows the ones that do");
            }
            let digests = store.digests_of(&source, limit).await?;
            if digests.is_empty() {
                println!("no digests of {source} yet: the schedule's next tick with new items makes one (`vidhook digests tick --source {source}` says when)");
                return Ok(());
            }
            println!(
                "{:<32} {:>5}  {:<36}  {:<17} VIDEO (OR WHY NOT)",
                "TICK", "ITEMS", "RENDER", "STATE"
            );
            for digest in digests {
                println!(
                    "{:<32} {:>5}  {:<36}  {:<17} {}",
                    digest.tick,
                    digest.items,
                    digest.render_id,
                    digest.state,
                    digest
                        .video_url
                        .or(digest.error)
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        DigestsAction::Tick { source, at, record } => {
            let now = match at {
                Some(at) => at
                    .parse::<jiff::Timestamp>()
                    .map_err(|e| anyhow::anyhow!("--at {at:?}: {e}"))?
                    .as_millisecond(),
                None => crate::store::now_ms(),
            };
            let rehearsal = if record {
                ""
            } else {
                " (rehearsal: nothing recorded; --record to act)"
            };
            let settings = config
                .sources
                .get(&source)
                .map(|s| &s.settings)
                .ok_or_else(|| anyhow::anyhow!("no source named {source:?}"))?;
            match crate::digests::tick(&store, &source, settings, now, record).await? {
                Ticked::NotDue => println!("{source}: no new tick since the last digest"),
                Ticked::Started { tick } => {
                    println!("{source}: schedule started at tick {tick}; the next tick makes the first digest{rehearsal}")
                }
                Ticked::Empty { tick } => {
                    println!(
                        "{source}: tick {tick}: nothing published since the last digest{rehearsal}"
                    )
                }
                Ticked::WouldQueue { tick, items } => {
                    println!("{source}: tick {tick}: a digest of {items} items would be queued{rehearsal}")
                }
                Ticked::Queued {
                    tick,
                    items,
                    event_id,
                    duplicate,
                } => {
                    let how = if duplicate {
                        "already queued by another instance"
                    } else {
                        "queued"
                    };
                    println!(
                        "{source}: tick {tick}: digest of {items} items {how} (event {event_id})"
                    )
                }
            }
        }
    }
    Ok(())
}
