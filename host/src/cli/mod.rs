//! The `vidhook` command line.

mod backfill;
mod batch;
mod demo;
mod digests;
mod estimate;
mod jobs;
mod lexicon;
mod plugin;
mod runs;
mod sources;
mod tokens;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::cms::markdown::MarkdownFolder;
use crate::config::{CmsConfig, Config};
use crate::store::{Ingested, Store};

#[derive(Parser)]
#[command(
    name = "vidhook",
    version,
    about = "Turns published CMS content into AI presenter videos"
)]
pub struct Cli {
    /// Configuration file; without one, the embedded defaults (SQLite in .vidhook/, the Markdown
    /// folder ./content, espeak-ng, the local preview provider, the bundled presenter plugin).
    #[arg(long, global = true, env = "VIDHOOK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// `info` for the service (and the demo, which runs it); `warn` for every other command,
    /// whose output is its table or message: its log lines (on stderr) are only what went wrong.
    pub fn default_log_level(&self) -> &'static str {
        match self.command {
            Command::Serve | Command::Demo { .. } => "info",
            _ => "warn",
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: webhooks, workers, media.
    Serve,
    /// Publish the bundled sample article on embedded defaults and follow it to a video.
    Demo {
        /// Where the demo keeps its database, media and content (wiped first).
        #[arg(long, default_value = ".vidhook/demo")]
        dir: PathBuf,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Publish Markdown files of a Markdown-folder source (a running `serve` picks them up).
    Publish {
        /// The source; default: the only Markdown source.
        #[arg(long)]
        source: Option<String>,
        /// The Markdown files to publish (inside the source's folder).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List renders with their state, timings and errors; `jobs show ID` for one render's steps.
    Jobs {
        #[command(subcommand)]
        action: Option<jobs::JobsAction>,
        /// How many renders to list.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only the renders of this run (a backfill or batch).
        #[arg(long)]
        run: Option<String>,
    },
    /// Render every existing item of a source that has no video for its current content.
    Backfill(backfill::BackfillArgs),
    /// One video per row of a CSV or JSON Lines file.
    Batch(batch::BatchArgs),
    /// Configured sources and what each one's catch-up sweep last did (listed, found, refused).
    Sources,
    /// Scheduled digests: list their state, or check a schedule as of a time (`tick --at`).
    Digests {
        #[command(subcommand)]
        action: digests::DigestsAction,
    },
    /// Runs of many renders (backfills, batches): list, follow, pause, resume, cancel.
    Runs {
        #[command(subcommand)]
        action: runs::RunsAction,
    },
    /// API tokens with roles: create (shown once), list, revoke.
    Tokens {
        #[command(subcommand)]
        action: tokens::TokensAction,
    },
    /// Operator actions on renders (retry, adopt, resubmit): who, when, what, why.
    Audit {
        /// How many entries to list, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// What publishing would cost: a content folder run through the real plugin chain, or N events.
    Estimate {
        /// A folder of Markdown files, each run through the source's real plugin chain.
        #[arg(long)]
        folder: Option<PathBuf>,
        /// The source whose plugin chain counts the videos (default: the only Markdown source).
        #[arg(long)]
        source: Option<String>,
        /// A number of events, priced at the source's observed videos per event.
        #[arg(long)]
        events: Option<i64>,
    },
    /// The credit ledger: today's spend against the budgets, and the latest entries.
    Credits {
        /// How many ledger rows to list, newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// A rehearsal: replay today's submits as if each cost a paid video (960 credits) and
        /// say which the daily budgets would have held back; nothing is spent or changed.
        #[arg(long)]
        what_if: bool,
    },
    /// Plugins: new, build, test, install, list, replay.
    Plugin {
        #[command(subcommand)]
        action: plugin::PluginAction,
    },
    /// Media retention: remove media of renders older than N days, except what entries show.
    Prune {
        /// Remove media older than this many days (0: any age); default: `[media] retention_days`.
        #[arg(long)]
        older_than_days: Option<u64>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// The pronunciation lexicon of a source: list, set, remove.
    Lexicon {
        #[command(subcommand)]
        action: lexicon::LexiconAction,
    },
    /// Editor templates (Handlebars, strict mode, versioned).
    Templates {
        #[command(subcommand)]
        action: TemplatesAction,
    },
}

#[derive(Subcommand)]
enum TemplatesAction {
    /// Show the latest version of every template.
    List,
    /// Save a new version of a template from a file.
    Set {
        /// The template's name (`script`, `prompt`, or one a plugin's config names).
        name: String,
        /// The Handlebars file to save as its new version.
        #[arg(long)]
        file: PathBuf,
        /// Why (shown with the version in the workspace).
        #[arg(long, default_value = "")]
        note: String,
    },
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Demo { dir, timeout } => demo::run(&dir, Duration::from_secs(timeout)).await,
            Command::Serve => serve(load_config(self.config.as_deref())?).await,
            Command::Publish { source, files } => {
                publish(
                    &load_config(self.config.as_deref())?,
                    source.as_deref(),
                    &files,
                )
                .await
            }
            Command::Jobs { action, limit, run } => {
                let config = load_config(self.config.as_deref())?;
                let store = open_store(&config).await?;
                jobs::run(&config, &store, action, limit, run.as_deref()).await
            }
            Command::Backfill(args) => {
                backfill::run(&load_config(self.config.as_deref())?, args).await
            }
            Command::Batch(args) => batch::run(&load_config(self.config.as_deref())?, args).await,
            Command::Sources => sources::run(&load_config(self.config.as_deref())?).await,
            Command::Digests { action } => {
                digests::run(&load_config(self.config.as_deref())?, action).await
            }
            Command::Runs { action } => {
                runs::run(&load_config(self.config.as_deref())?, action).await
            }
            Command::Estimate {
                folder,
                source,
                events,
            } => {
                let config = load_config(self.config.as_deref())?;
                estimate::run(&config, folder.as_deref(), source.as_deref(), events).await
            }
            Command::Tokens { action } => {
                let config = load_config(self.config.as_deref())?;
                tokens::run(&open_store(&config).await?, action).await
            }
            Command::Audit { limit } => {
                let config = load_config(self.config.as_deref())?;
                jobs::audit(&open_store(&config).await?, limit).await
            }
            Command::Credits { limit, what_if } => {
                let config = load_config(self.config.as_deref())?;
                if what_if {
                    credits_what_if(&config).await
                } else {
                    credits(&config, limit).await
                }
            }
            Command::Prune {
                older_than_days,
                dry_run,
            } => {
                let config = load_config(self.config.as_deref())?;
                prune(&config, older_than_days, dry_run).await
            }
            Command::Lexicon { action } => {
                let config = load_config(self.config.as_deref())?;
                let store = open_store(&config).await?;
                lexicon::run(&config, &store, action).await
            }
            Command::Plugin { action } => {
                plugin::run(&load_config(self.config.as_deref())?, action).await
            }
            Command::Templates { action } => {
                let store = open_store(&load_config(self.config.as_deref())?).await?;
                crate::templates::seed_defaults(&store).await?;
                match action {
                    TemplatesAction::List => {
                        for t in store.latest_templates().await? {
                            println!("== {} (v{})\n{}\n", t.name, t.version, t.body);
                        }
                    }
                    TemplatesAction::Set { name, file, note } => {
                        let body = std::fs::read_to_string(&file)
                            .with_context(|| format!("reading {}", file.display()))?;
                        let author = std::env::var("USER").unwrap_or_else(|_| "cli".into());
                        let by = crate::store::Authored {
                            author: &author,
                            note: &note,
                            restored_from: None,
                        };
                        let version = crate::templates::save(&store, &name, &body, by).await?;
                        println!("saved template {name} v{version}");
                    }
                }
                Ok(())
            }
        }
    }
}

/// The configuration in effect, with its outbound guard installed for this process (commands
/// such as `plugin test` fetch on a plugin's behalf too).
fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let config = match path {
        Some(path) => Config::load(path)?,
        None => Config::embedded_defaults(".vidhook".into(), "content".into()),
    };
    crate::outbound::Guard::new(&config.outbound, config.allow_plain_http())
        .map_err(anyhow::Error::msg)?
        .install();
    Ok(config)
}

async fn prune(config: &Config, days: Option<u64>, dry_run: bool) -> anyhow::Result<()> {
    let days = match days {
        Some(days) => days,
        None if config.media.retention_days > 0 => config.media.retention_days,
        None => anyhow::bail!(
            "retention is off ([media] retention_days = 0): give --older-than-days N to prune \
             by hand (0: any age), with --dry-run first to see what would go"
        ),
    };
    let store = open_store(config).await?;
    let (media, _) = crate::app::media_store(config, "http://127.0.0.1/")?;
    let cutoffs = crate::media::retention::Cutoffs::days(days, &config.media);
    let pruned = crate::media::retention::prune(&store, &media, cutoffs, dry_run).await?;
    let verb = if dry_run { "would remove" } else { "removed" };
    // One line per bundle: a video's MP4, poster and captions (or a render's inputs).
    let nothing_uses = format!("older than {days} day(s) and nothing uses it");
    let removed = pruned
        .removed
        .iter()
        .map(|key| (key.as_str(), nothing_uses.as_str()));
    for (bundle, why) in crate::media::retention::bundles(removed) {
        println!("{verb} {bundle}: {why}");
    }
    if dry_run {
        let kept = pruned.kept.iter().map(|(key, why)| (key.as_str(), *why));
        for (bundle, why) in crate::media::retention::bundles(kept) {
            println!("would keep {bundle}: {why}");
        }
    }
    println!(
        "{verb} {} file(s) older than {days} day(s); kept {} that entries show, batch rows or \
         digests link to, or unfinished renders need",
        pruned.removed.len(),
        pruned.kept.len()
    );
    Ok(())
}

async fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir)?;
    Ok(Store::connect(&config.database_url(), config.database_timeout()).await?)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = crate::server::Server::start(config).await?;
    // Tests and scripts read this line to find the port; a log pipeline reads it as JSON.
    let url = format!("http://{}", server.addr);
    if crate::telemetry::json_logs() {
        println!(
            "{}",
            serde_json::json!({"message": "vidhook listening", "url": url})
        );
    } else {
        println!("vidhook listening on {url}");
    }
    tracing::info!(%url, "vidhook listening");
    let grace = Duration::from_secs(server.app.config.shutdown_grace_secs);
    shutdown_signal().await;
    tracing::info!(
        ?grace,
        "shutting down: no new work is claimed; in-flight steps finish"
    );
    server.shutdown(grace).await;
    tracing::info!("shutdown complete");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn credits(config: &Config, limit: i64) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let limit_text = |l: Option<i64>| l.map_or("no limit".to_string(), |l| l.to_string());
    println!(
        "today (UTC): {} credits, budget {}",
        store.spent_today("").await?,
        limit_text(config.budgets.daily_credits)
    );
    for (name, source) in &config.sources {
        println!(
            "  {name}: {} credits, budget {}",
            store.spent_today(name).await?,
            limit_text(source.settings.daily_credits)
        );
    }
    let ledger = store.ledger(limit).await?;
    if ledger.is_empty() {
        println!("\nno credits counted yet: nothing was submitted to a paid provider");
        return Ok(());
    }
    println!(
        "\n{:<36} {:<10} {:<10} {:<8} {:>7}",
        "RENDER", "SOURCE", "PROVIDER", "KIND", "CREDITS"
    );
    for row in ledger {
        println!(
            "{:<36} {:<10} {:<10} {:<8} {:>7}",
            row.render_id, row.source, row.provider, row.kind, row.credits
        );
    }
    Ok(())
}

/// `vidhook credits --what-if`: today's submits replayed at the paid price against the budgets.
async fn credits_what_if(config: &Config) -> anyhow::Result<()> {
    let store = open_store(config).await?;
    let submits = store.submits_today().await?;
    if submits.is_empty() {
        println!("nothing was submitted today (UTC): nothing to rehearse");
        return Ok(());
    }
    let outcome =
        crate::store::ledger::what_if(&submits, crate::generation::CREDITS_PER_VIDEO, |source| {
            config.budgets_for(source)
        });
    println!(
        "rehearsal: today's {} submits at {} credits each (or what they did cost): {} credits let through, {} held back by the budgets",
        outcome.submits,
        crate::generation::CREDITS_PER_VIDEO,
        outcome.credits,
        outcome.held_back.len()
    );
    if outcome.held_back.is_empty() {
        return Ok(());
    }
    println!("\n{:<36} {:<12} BUDGET THAT RAN OUT", "RENDER", "SOURCE");
    for (render, source, scope) in &outcome.held_back {
        println!("{render:<36} {source:<12} {scope}");
    }
    Ok(())
}

/// Picks the Markdown source to publish to.
fn markdown_source(config: &Config, name: Option<&str>) -> anyhow::Result<(String, PathBuf)> {
    let markdown: Vec<(&String, &PathBuf)> = config
        .sources
        .iter()
        .filter_map(|(n, s)| match &s.cms {
            CmsConfig::Markdown { folder } if name.is_none_or(|want| want == n) => {
                Some((n, folder))
            }
            _ => None,
        })
        .collect();
    match markdown.as_slice() {
        [(n, folder)] => Ok(((*n).clone(), (*folder).clone())),
        [] => anyhow::bail!(
            "no Markdown source{}",
            name.map(|n| format!(" named {n:?}")).unwrap_or_default()
        ),
        _ => anyhow::bail!("several Markdown sources: choose one with --source"),
    }
}

/// Stores each file as a published event (the same commit as a webhook's).
pub async fn publish_files(
    store: &Store,
    config: &Config,
    source: &str,
    folder: &Path,
    files: &[PathBuf],
) -> anyhow::Result<Vec<Ingested>> {
    let adapter = MarkdownFolder::new(source.to_string(), folder.to_path_buf());
    let mut outcomes = Vec::new();
    for file in files {
        let content = adapter.load(file).map_err(|e| anyhow::anyhow!("{e}"))?;
        outcomes.extend(
            crate::jobs::accept(store, config.chain(source), source, None, None, &[content])
                .await?,
        );
    }
    Ok(outcomes)
}

async fn publish(config: &Config, source: Option<&str>, files: &[PathBuf]) -> anyhow::Result<()> {
    let (source, folder) = markdown_source(config, source)?;
    let store = open_store(config).await?;
    for (file, outcome) in files
        .iter()
        .zip(publish_files(&store, config, &source, &folder, files).await?)
    {
        match outcome {
            Ingested::Accepted {
                event_id,
                render_id,
            } => {
                println!(
                    "{}: accepted (event {event_id}, render {render_id})",
                    file.display()
                )
            }
            Ingested::Duplicate { event_id } => {
                println!(
                    "{}: unchanged since event {event_id}; nothing to do",
                    file.display()
                )
            }
            Ingested::Stale { event_id } => {
                println!(
                    "{}: older than event {event_id} of the same entry; nothing to do",
                    file.display()
                )
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is for in `--help`.
    #[test]
    fn every_argument_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path}: {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {}: no description", sub.get_name()));
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "without help:\n{}", missing.join("\n"));
    }
}
