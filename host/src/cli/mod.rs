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
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// What publishing would cost: a content folder run through the real plugin chain, or N events.
    Estimate {
        #[arg(long)]
        folder: Option<PathBuf>,
        /// The source whose plugin chain counts the videos (default: the only Markdown source).
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        events: Option<i64>,
    },
    /// The credit ledger: today's spend against the budgets, and the latest entries.
    Credits {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Plugins: new, build, test, install, list, replay.
    Plugin {
        #[command(subcommand)]
        action: plugin::PluginAction,
    },
    /// Media retention: remove media of renders older than N days, except what entries show.
    Prune {
        /// Age in days; default: `[media] retention_days`.
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
        name: String,
        #[arg(long)]
        file: PathBuf,
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
            Command::Credits { limit } => {
                let config = load_config(self.config.as_deref())?;
                credits(&config, limit).await
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
                    TemplatesAction::Set { name, file } => {
                        let body = std::fs::read_to_string(&file)
                            .with_context(|| format!("reading {}", file.display()))?;
                        let version = crate::templates::save(&store, &name, &body).await?;
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
    let days = days.unwrap_or(config.media.retention_days);
    anyhow::ensure!(
        days > 0,
        "give --older-than-days N (or set [media] retention_days)"
    );
    let store = open_store(config).await?;
    let (media, _) = crate::app::media_store(config, "http://127.0.0.1/")?;
    let cutoff = crate::store::now_ms() - (days * 86_400_000) as i64;
    let pruned = crate::media::retention::prune(&store, &media, cutoff, dry_run).await?;
    let verb = if dry_run { "would remove" } else { "removed" };
    for key in &pruned.removed {
        println!("{verb} {key}");
    }
    if dry_run {
        for (key, why) in &pruned.kept {
            println!("would keep {key}: {why}");
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
        outcomes.extend(crate::jobs::accept(store, config, source, None, None, &[content]).await?);
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
