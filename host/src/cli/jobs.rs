//! `vidhook jobs`: what every render is doing, how long it took, and what went wrong.

use clap::Subcommand;

use crate::config::Config;
use crate::jobs::operator::{self, Operator};
use crate::store::{now_ms, Store};

#[derive(Subcommand)]
pub enum JobsAction {
    /// Every step one render went through, with timings.
    Show {
        /// The render's id (`vidhook jobs` lists them).
        id: String,
    },
    /// Approve a previewed render: its paid generation goes ahead.
    Approve {
        /// The render's id (`vidhook jobs` lists them).
        id: String,
        /// Why (kept in the audit log and shown with the render).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Reject a previewed render: nothing is paid, it ends as skipped.
    Reject {
        /// The render's id (`vidhook jobs` lists them).
        id: String,
        /// Why (kept in the audit log and shown with the render).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Write a `writeback_failed` render's video URL to its CMS again (a running host does it).
    RetryWriteback {
        /// The render's id (`vidhook jobs` lists them).
        id: String,
    },
    /// Run a failed (or timed-out) render again from the first step that did not complete. The
    /// paid submit is re-run only if the render holds no job and no submit of it was ambiguous.
    Retry {
        /// The render's id (`vidhook jobs` lists them).
        id: String,
        #[command(flatten)]
        why: Why,
    },
    /// Adopt the provider job a parked render made (found in the provider's dashboard): confirmed
    /// with the provider, then followed to the end; nothing is paid again.
    Adopt {
        /// The render's id (`vidhook jobs` lists them).
        id: String,
        /// The provider's job id, as its dashboard shows it.
        #[arg(long = "job")]
        job_id: String,
        #[command(flatten)]
        why: Why,
    },
    /// Submit a parked or failed render again with a new key, knowing that its earlier submit may
    /// have made a job that is billed too.
    Resubmit {
        /// The render's id (`vidhook jobs` lists them).
        id: String,
        /// Required: you accept that the earlier job may be billed as well as the new one.
        #[arg(long)]
        accept_double_charge: bool,
        #[command(flatten)]
        why: Why,
    },
}

/// The audit entry's who and why.
#[derive(clap::Args)]
pub struct Why {
    /// Why (kept in the audit log).
    #[arg(long)]
    reason: String,
    /// Who (default: $USER).
    #[arg(long, env = "USER", default_value = "cli")]
    by: String,
}

impl Why {
    fn operator(&self) -> Operator<'_> {
        Operator {
            actor: &self.by,
            reason: &self.reason,
        }
    }
}

pub async fn run(
    config: &Config,
    store: &Store,
    action: Option<JobsAction>,
    limit: i64,
    run: Option<&str>,
) -> anyhow::Result<()> {
    match action {
        Some(JobsAction::Retry { id, why }) => {
            println!("{}", operator::retry(store, &id, &why.operator()).await?);
            Ok(())
        }
        Some(JobsAction::Adopt { id, job_id, why }) => {
            // Only the provider's status read is used: no media is served from here.
            let (media, _) = crate::app::media_store(config, "http://127.0.0.1/")?;
            let guard = crate::outbound::Guard::new(&config.outbound, config.allow_plain_http())
                .map_err(anyhow::Error::msg)?;
            let inputs = crate::checks::Fetcher::new(guard, media.clone());
            let hosts = crate::generation::Hosts::build(
                &config.video_hosts(),
                config.video_routes(),
                &media,
                &inputs,
            )?;
            let done = operator::adopt(store, &hosts, &id, &job_id, &why.operator()).await?;
            println!("{done}");
            Ok(())
        }
        Some(JobsAction::Resubmit {
            id,
            accept_double_charge,
            why,
        }) => {
            let done =
                operator::resubmit(store, &id, accept_double_charge, &why.operator()).await?;
            println!("{done}");
            Ok(())
        }
        None => list(store, limit, run).await,
        Some(JobsAction::Show { id }) => show(store, &id).await,
        Some(JobsAction::Approve { id, note }) => decide(store, &id, true, &note).await,
        Some(JobsAction::Reject { id, note }) => decide(store, &id, false, &note).await,
        Some(JobsAction::RetryWriteback { id }) => {
            anyhow::ensure!(
                store.retry_write_back(&id).await?,
                "render {id} is not in writeback_failed"
            );
            audit_cli(store, "retry-writeback", &id, "").await?;
            println!("{id}: back in write_back; a running host writes it now");
            Ok(())
        }
    }
}

/// `vidhook audit`: operator actions, newest first.
pub async fn audit(store: &Store, limit: i64) -> anyhow::Result<()> {
    let entries = store.audit_entries(limit).await?;
    if entries.is_empty() {
        println!("no operator actions yet");
        return Ok(());
    }
    println!("WHEN                           ACTOR        ACTION     TARGET  DETAIL  — REASON");
    for e in entries {
        let at = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(e.at.max(0) as u64),
        );
        println!(
            "{at}  {:<12} {:<10} {}  {}  — {}",
            e.actor, e.action, e.target, e.detail, e.reason
        );
    }
    Ok(())
}

/// "1.2s", "3m04s".
pub fn human_ms(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

async fn list(store: &Store, limit: i64, run: Option<&str>) -> anyhow::Result<()> {
    let rows = store.list_renders(limit, run).await?;
    if rows.is_empty() {
        println!("no renders yet");
        return Ok(());
    }
    println!(
        "{:<36}  {:<10} {:<24} {:<6} {:<15} {:>3} {:>8} {:>8}  ERROR",
        "RENDER", "SOURCE", "ENTRY", "KEY", "STATE", "TRY", "AGE", "TOOK"
    );
    let now = now_ms();
    for listed in rows {
        let (r, source, entry) = (listed.render, listed.source, listed.entry);
        let took = r
            .finished_at
            .map(|f| human_ms(f - r.created_at))
            .unwrap_or_else(|| "-".into());
        let error = match (&r.error_category, &r.error) {
            (Some(category), Some(error)) => format!("{category}: {error}"),
            (None, Some(error)) => error.clone(),
            _ => String::new(),
        };
        println!(
            "{:<36}  {:<10} {:<24} {:<6} {:<15} {:>3} {:>8} {:>8}  {}",
            r.id,
            truncate(&source, 10),
            truncate(&entry, 24),
            truncate(&r.plan_key, 6),
            r.state,
            r.attempts,
            human_ms(now - r.created_at),
            took,
            truncate(&error, 120)
        );
    }
    parked_summary(store).await
}

/// Renders parked for a person (`needs_attention`), grouped by what parked them, with the ways
/// out and what each costs.
async fn parked_summary(store: &Store) -> anyhow::Result<()> {
    let parked: Vec<(String, i64)> = store
        .render_counts()
        .await?
        .into_iter()
        .filter(|(state, _, _)| state == "needs_attention")
        .map(|(_, category, n)| (category, n))
        .collect();
    if parked.is_empty() {
        return Ok(());
    }
    println!("\nparked, waiting for a person (vidhook jobs show ID says why):");
    for (category, n) in parked {
        let ways_out = match category.as_str() {
            "ambiguous_submit" => {
                "the paid call may have created a job. Look for it in the provider's dashboard: \
                 `vidhook jobs adopt ID --job JOB_ID` follows it ($0 more); if there is none, \
                 `vidhook jobs resubmit ID --accept-double-charge` pays for a new one (960 \
                 credits, about $9.60, and the first may be billed too); left alone, nothing \
                 more is paid"
            }
            _ => "see `vidhook jobs show ID`; `vidhook jobs retry ID --reason …` runs it again",
        };
        let category = if category.is_empty() {
            "-"
        } else {
            category.as_str()
        };
        println!("  {n:>5}  {category}: {ways_out}");
    }
    Ok(())
}

/// Records a CLI action in the audit log, by the OS user.
async fn audit_cli(store: &Store, action: &str, id: &str, reason: &str) -> anyhow::Result<()> {
    let actor = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let audit = crate::store::Audit {
        actor: &actor,
        action,
        reason,
    };
    Ok(store.audit(&audit, id, "").await?)
}

async fn decide(store: &Store, id: &str, approved: bool, note: &str) -> anyhow::Result<()> {
    let Some(render) = store.render(id).await? else {
        anyhow::bail!("no render {id}: `vidhook jobs` lists them");
    };
    anyhow::ensure!(
        store.decide_approval(id, approved, note).await?,
        "render {id} is {}, not awaiting approval: only a render in awaiting_approval can be \
         approved or rejected",
        render.state
    );
    let action = if approved { "approve" } else { "reject" };
    audit_cli(store, action, id, note).await?;
    println!(
        "{id}: {}",
        if approved {
            "approved; a running host submits it now"
        } else {
            "rejected"
        }
    );
    Ok(())
}

async fn show(store: &Store, id: &str) -> anyhow::Result<()> {
    let Some(render) = store.render(id).await? else {
        anyhow::bail!("no render {id}");
    };
    println!(
        "render {}  state {}  attempts {}",
        render.id, render.state, render.attempts
    );
    if let Some(url) = &render.video_url {
        println!("video  {url}");
    }
    if let Some(preview) = &render.preview_url {
        println!("preview {preview}  (private: editors open it from the workspace)");
    }
    if let Some(host) = &render.provider {
        println!("host   {host}");
    }
    if let Some(job) = &render.provider_job_id {
        println!(
            "job    {job}  (Idempotency-Key {})",
            render.submit_key.as_deref().unwrap_or("-")
        );
    }
    if let Some(shortened) = crate::content::WordsKept::in_plan(render.plan_json.as_deref()) {
        println!("narration  {shortened}");
    }
    if let Some(error) = &render.error {
        println!(
            "error  {}: {error}",
            render.error_category.as_deref().unwrap_or("-")
        );
    }
    for step in store.steps(id).await? {
        println!(
            "  {:<11} {:<10} {:>7}  {}",
            step.step,
            step.outcome,
            human_ms(step.finished_at - step.started_at),
            step.detail
        );
    }
    if let Some(provenance) = &render.provenance_json {
        let value: serde_json::Value = serde_json::from_str(provenance)?;
        println!("provenance {}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{head}…")
    }
}
