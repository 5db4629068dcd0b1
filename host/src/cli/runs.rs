//! Runs of many renders from the command line: what `vidhook backfill` and `vidhook batch` share.
//!
//! A run is estimated and confirmed once, then queued in the database that `vidhook serve` works
//! from, under one run id, and followed here with a live progress line. Its renders go through
//! the same steps, budgets, rate limits and deduplication as a live publish; the workers claim
//! live publishes first. Ctrl-C pauses the run (nothing new is submitted) and keeps following
//! what it already paid for; the same command run again resumes it, and offers nothing already
//! accepted a second time, so no row or item is paid twice.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use clap::Subcommand;

use crate::config::Config;
use crate::content::Content;
use crate::jobs::State;
use crate::store::{RunItem, RunProgress, RunRow, RunState, Store, PREPAID_STATES};

/// A render state a run stops following: one no worker picks up (final, or waiting for a person).
fn settled(state: &str) -> bool {
    State::parse(state).is_some_and(|s| !s.is_runnable())
}
/// Contents per accept transaction while queueing.
const QUEUE_CHUNK: usize = 200;
/// After this long without any change, the progress line asks whether a host is running.
const STALL_HINT: Duration = Duration::from_secs(30);

/// What a backfill or batch asks for.
pub struct Planned {
    /// Names the run: the same command finds the same run again.
    pub label: String,
    pub kind: &'static str,
    pub source: String,
    /// Each content with a name for messages (a file, a row, an entry).
    pub items: Vec<(String, Content)>,
    /// At most this many items to render (items that already have their video do not count).
    pub limit: Option<usize>,
}

/// How far a backfill or batch goes without a person: `--yes` skips the confirmation,
/// `--detach` queues and returns (the same command run again follows the run, and a batch then
/// completes its results file).
#[derive(clap::Args)]
pub struct Go {
    /// Go ahead without asking after the estimate.
    #[arg(long)]
    yes: bool,
    /// Queue the run and return without following it.
    #[arg(long)]
    detach: bool,
    /// Run again the items whose render failed in an earlier run of the same command (on a
    /// terminal you are asked; without one, failed items are left as they are unless this is
    /// given). Items that are done are never run again.
    #[arg(long)]
    retry_failed: bool,
}

/// Told of each of the run's renders once it settles (the batch's output file).
pub trait Sink {
    fn settled(&mut self, item: &RunItem) -> anyhow::Result<()>;
}

/// Estimates, confirms (unless `yes`), queues and follows `planned`.
pub async fn execute(
    config: &Config,
    planned: Planned,
    go: &Go,
    sink: Option<&mut dyn Sink>,
) -> anyhow::Result<()> {
    let store = super::open_store(config).await?;
    let source = planned.source.as_str();
    let listed = planned.items.len();
    let listed_ids: HashSet<String> = planned.items.iter().map(|(_, c)| c.id.clone()).collect();
    let mut fresh = Vec::new();
    let mut current = 0;
    for (name, content) in planned.items {
        if store.is_current(source, &content).await? {
            current += 1;
        } else {
            fresh.push((name, content));
        }
    }
    fresh.truncate(planned.limit.unwrap_or(usize::MAX));
    println!(
        "{listed} items listed; {} already have their video (or one on its way); {} to render",
        current,
        fresh.len()
    );
    let existing = store.run_labelled(&planned.label).await?;
    let unpaid = match &existing {
        Some(run) => unpaid_renders(&store.run_progress(&run.id).await?, run.state),
        None => 0,
    };
    let failed = match &existing {
        Some(run) => failed_items(&store, &run.id, &listed_ids).await?,
        None => Vec::new(),
    };
    let retry = !failed.is_empty() && retry_failed(&failed, go)?;
    let retried_videos = if retry {
        failed.iter().filter(|i| i.video_url.is_none()).count() as i64
    } else {
        0
    };
    let count = super::estimate::count_videos(
        config,
        &store,
        source,
        fresh.iter().map(|(name, c)| (name.clone(), Ok(c.clone()))),
    )
    .await?;
    if !count.errors.is_empty() {
        // Each would fail at its plan step anyway; refused now, nothing is queued or paid.
        let shown: Vec<&str> = count.errors.iter().take(10).map(String::as_str).collect();
        anyhow::bail!(
            "refused: {} of {} items cannot make a video; fix or remove them, nothing was \
             queued:\n  {}{}",
            count.errors.len(),
            fresh.len(),
            shown.join("\n  "),
            if count.errors.len() > shown.len() {
                "\n  …"
            } else {
                ""
            }
        );
    }
    let videos = count.videos + unpaid + retried_videos;
    let estimate = crate::estimate::price(config, &store, source, videos).await?;
    let credits = estimate.credits;
    println!(
        "estimate: {videos} videos ({} new, {unpaid} queued earlier and unpaid, {retried_videos} failed and retried), {} skipped by plugins, {}",
        count.videos,
        count.skipped,
        estimate.cost()
    );
    if let Some(line) = estimate.budget_line() {
        println!("{line}");
    }
    if let Some(left) = estimate.budget_left.filter(|left| credits > *left) {
        anyhow::bail!(
            "refused: this run needs {credits} credits, {} over the budget left today ({left} credits); raise the budget or use --limit",
            credits - left
        );
    }
    if videos == 0 && existing.is_none() {
        println!("nothing to render");
        return Ok(());
    }
    if videos > 0 && !go.yes && !confirm(videos, estimate.dollars)? {
        anyhow::bail!("not confirmed; nothing queued");
    }
    // Listening before the first word about Ctrl-C is printed.
    let interrupt = Interrupt::listen()?;
    let run = store
        .open_run(&planned.label, planned.kind, source, videos, credits)
        .await?;
    if retry {
        retry_items(&store, &failed).await;
    }
    for chunk in fresh.chunks(QUEUE_CHUNK) {
        let contents: Vec<Content> = chunk.iter().map(|(_, c)| c.clone()).collect();
        crate::jobs::accept(
            &store,
            config.chain(source),
            source,
            None,
            Some(&run.id),
            &contents,
        )
        .await?;
    }
    println!(
        "run {}: {} items queued; `vidhook serve` renders them (live publishes go first)",
        run.id,
        fresh.len()
    );
    if go.detach {
        println!("detached: `vidhook runs follow {}` follows it", run.id);
        return Ok(());
    }
    follow(&store, config, &run, sink, interrupt).await
}

/// Renders of a run still before their paid call (counting, of a cancelled run, the ones its
/// cancellation ended: resuming queues them again; not those a plugin skipped).
fn unpaid_renders(progress: &RunProgress, state: RunState) -> i64 {
    let cancelled = if state == RunState::Cancelled {
        progress.cancelled
    } else {
        0
    };
    PREPAID_STATES
        .iter()
        .filter_map(|s| progress.states.get(*s))
        .sum::<i64>()
        + cancelled
}

/// The renders of run `id` that failed (or whose write-back failed) for items still listed.
async fn failed_items(
    store: &Store,
    id: &str,
    listed: &HashSet<String>,
) -> anyhow::Result<Vec<RunItem>> {
    let failed = [State::Failed.as_str(), State::WritebackFailed.as_str()];
    Ok(store
        .run_items(id)
        .await?
        .into_iter()
        .filter(|i| failed.contains(&i.state.as_str()) && listed.contains(&i.entry_id))
        .collect())
}

/// Whether to run `failed` again: `--retry-failed` says yes; on a terminal the person is asked;
/// otherwise they stay failed and the way to retry them is printed.
fn retry_failed(failed: &[RunItem], go: &Go) -> anyhow::Result<bool> {
    let names: Vec<&str> = failed.iter().take(5).map(|i| i.entry_id.as_str()).collect();
    println!(
        "{} items failed in an earlier run of this command: {}{}",
        failed.len(),
        names.join(", "),
        if failed.len() > names.len() {
            ", …"
        } else {
            ""
        }
    );
    if go.retry_failed {
        return Ok(true);
    }
    if go.yes || !std::io::stdin().is_terminal() {
        println!("  left as they are: pass --retry-failed to run them again");
        return Ok(false);
    }
    print!("run them again? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Retries each of `failed` as `vidhook jobs retry` would (a render that could pay twice is
/// refused and said so; it stays failed).
async fn retry_items(store: &Store, failed: &[RunItem]) {
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let who = crate::jobs::operator::Operator {
        actor: &actor,
        reason: "--retry-failed",
    };
    for item in failed {
        match crate::jobs::operator::retry(store, &item.render_id, &who).await {
            Ok(_) => println!("  retrying {} ({})", item.entry_id, item.render_id),
            Err(err) => println!("  not retried {}: {err}", item.entry_id),
        }
    }
}

/// Asks on the terminal; refuses when there is none to ask (scripts pass `--yes`).
fn confirm(videos: i64, dollars: f64) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("confirmation needed and no terminal to ask: pass --yes to go ahead");
    }
    print!("render {videos} videos for about ${dollars:.2}? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Follows `run` until nothing in it moves without a person: prints a progress line as it
/// changes and hands each settled render to `sink`. The first Ctrl-C pauses the run and keeps
/// following what it paid for; a second stops following.
async fn follow(
    store: &Store,
    config: &Config,
    run: &RunRow,
    mut sink: Option<&mut dyn Sink>,
    mut interrupt: Interrupt,
) -> anyhow::Result<()> {
    let mut reported = HashSet::new();
    let mut last_line = String::new();
    let mut last_change = Instant::now();
    let mut interrupted = false;
    let terminal = std::io::stdout().is_terminal();
    loop {
        let state = store.run(&run.id).await?.map_or(run.state, |r| r.state);
        let progress = store.run_progress(&run.id).await?;
        let items = store.run_items(&run.id).await?;
        if let Some(sink) = &mut sink {
            for item in &items {
                if settled(&item.state) && reported.insert(item.render_id.clone()) {
                    sink.settled(item)?;
                }
            }
        }
        let unsettled: i64 = progress
            .states
            .iter()
            .filter(|(s, _)| !settled(s))
            .map(|(_, n)| n)
            .sum();
        let paid_in_flight = unsettled - unpaid_renders(&progress, RunState::Active);
        let line = progress_line(run, state, &progress, &items, config, unsettled);
        if line != last_line {
            last_change = Instant::now();
            if terminal {
                print!("\r\x1b[2K{line}");
                std::io::stdout().flush()?;
            } else {
                println!("{line}");
            }
            last_line = line;
        } else if last_change.elapsed() > STALL_HINT && unsettled > 0 {
            println!(
                "\nnothing has moved for {} s: is `vidhook serve` running on this database?",
                STALL_HINT.as_secs()
            );
            last_change = Instant::now();
        }
        if unsettled == 0 || (state != RunState::Active && paid_in_flight == 0) {
            if terminal {
                println!();
            }
            if state != RunState::Active && unsettled > 0 {
                println!(
                    "run {} is {}: {unsettled} unpaid renders wait; run the same command again (or `vidhook runs resume {}`) to go on",
                    run.id,
                    state.as_str(),
                    run.id
                );
            }
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = interrupt.recv() => {
                if interrupted {
                    println!("\nstopped following; run {} goes on as it is", run.id);
                    return Ok(());
                }
                interrupted = true;
                store.set_run_state(&run.id, RunState::Paused).await?;
                println!("\npaused: nothing new is submitted; following what is paid (Ctrl-C again to stop following)");
            }
        }
    }
}

/// Ctrl-C, listened for from the moment this is made: a Ctrl-C pressed right after the
/// command says what it does is not missed (tokio's `ctrl_c()` listens only once polled).
struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn listen() -> std::io::Result<Interrupt> {
        Ok(Interrupt {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `run 0192…: 3 done, 1 await, 40 plan | 2880 credits | ETA 12 min`.
fn progress_line(
    run: &RunRow,
    state: RunState,
    progress: &RunProgress,
    items: &[RunItem],
    config: &Config,
    unsettled: i64,
) -> String {
    let counts: Vec<String> = progress
        .states
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let paused = match state {
        RunState::Active => String::new(),
        other => format!(" [{}]", other.as_str()),
    };
    format!(
        "run {}{paused}: {} rows, renders {} | {} credits | {}",
        run.id,
        progress.rows,
        counts.join(", "),
        progress.credits,
        eta(items, config, &run.source, unsettled)
    )
}

/// Time left: the renders not yet settled, at the observed generation time spread over the
/// concurrency of the source's first host, and no faster than its rate limit allows (a submit
/// and a status read a render at least).
fn eta(items: &[RunItem], config: &Config, source: &str, unsettled: i64) -> String {
    if unsettled == 0 {
        return "finished".into();
    }
    let took: Vec<i64> = items
        .iter()
        .filter_map(|i| Some(i.finished_at? - i.submitted_at?))
        .filter(|ms| *ms >= 0)
        .collect();
    if took.is_empty() {
        return "ETA: measuring".into();
    }
    let mean_secs = took.iter().sum::<i64>() as f64 / took.len() as f64 / 1000.0;
    let hosts = config.video_hosts();
    let first = config
        .video_routes()
        .get(source)
        .and_then(|route| route.hosts.first().cloned())
        .and_then(|name| hosts.get(&name).and_then(|host| host.call_limits()));
    let (concurrency, per_minute) = match first {
        Some((concurrent, per_minute)) => (concurrent.max(1) as f64, per_minute.max(1) as f64),
        None => (config.workers.max(1) as f64, f64::MAX),
    };
    let by_time = unsettled as f64 * mean_secs / concurrency;
    let by_rate = unsettled as f64 * 2.0 * 60.0 / per_minute;
    let secs = by_time.max(by_rate).ceil() as u64;
    format!("ETA {}m{:02}s", secs / 60, secs % 60)
}

#[derive(Subcommand)]
pub enum RunsAction {
    /// Every run with its state and progress.
    List,
    /// Follow a run (as the command that started it does).
    Follow {
        /// The run's id (`vidhook runs list` shows them).
        id: String,
    },
    /// Submit nothing new for the run; what it paid for is still followed.
    Pause {
        /// The run's id (`vidhook runs list` shows them).
        id: String,
    },
    /// Let a paused or cancelled run go on.
    Resume {
        /// The run's id (`vidhook runs list` shows them).
        id: String,
    },
    /// End the run's unpaid renders (`skipped`, category `cancelled`); its paid ones finish.
    Cancel {
        /// The run's id (`vidhook runs list` shows them).
        id: String,
    },
}

pub async fn run(config: &Config, action: RunsAction) -> anyhow::Result<()> {
    let store = super::open_store(config).await?;
    let set = |id: String, state: RunState| {
        let store = store.clone();
        async move {
            if !store.set_run_state(&id, state).await? {
                anyhow::bail!("no run {id}");
            }
            let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
            let action = match state {
                RunState::Active | RunState::Finished => "resume",
                RunState::Paused => "pause",
                RunState::Cancelled => "cancel",
            };
            let audit = crate::store::Audit {
                actor: &actor,
                action,
                reason: "",
            };
            store.audit(&audit, &id, "run").await?;
            println!("run {id}: {}", state.as_str());
            Ok(())
        }
    };
    match action {
        RunsAction::List => {
            let runs = store.runs().await?;
            if runs.is_empty() {
                println!("no runs yet: `vidhook backfill` and `vidhook batch` start one");
                return Ok(());
            }
            println!(
                "{:<36}  {:<9} {:<9} {:<12} {:>5} RENDERS | CREDITS COUNTED OF CONFIRMED | WHAT",
                "RUN", "KIND", "STATE", "SOURCE", "ROWS"
            );
            for run in runs {
                let progress = store.run_progress(&run.id).await?;
                let counts: Vec<String> = progress
                    .states
                    .iter()
                    .map(|(s, n)| format!("{n} {s}"))
                    .collect();
                println!(
                    "{}  {:<9} {:<9} {:<12} {:>5} {} | {} of {} credits | {}",
                    run.id,
                    run.kind,
                    run.state.as_str(),
                    run.source,
                    progress.rows,
                    counts.join(", "),
                    progress.credits,
                    run.credits,
                    run.label
                );
            }
            Ok(())
        }
        RunsAction::Follow { id } => {
            let run = store
                .run(&id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no run {id}"))?;
            follow(&store, config, &run, None, Interrupt::listen()?).await
        }
        RunsAction::Pause { id } => set(id, RunState::Paused).await,
        RunsAction::Resume { id } => set(id, RunState::Active).await,
        RunsAction::Cancel { id } => set(id, RunState::Cancelled).await,
    }
}
