//! `vidhook plugin dev DIR --source NAME`: the plugin author's inner loop against a running
//! service. It watches the plugin's sources; on each change it builds them (any language), and a
//! build that succeeds serves the source in every `serve` on this database at once (a
//! development build, for that one source; no restart), then the source's last N recorded events
//! are replayed through its chain with the new build and with the previous one, and the plans'
//! differences printed (script, prompt, voice, resolution, decision). A failed build is shown
//! and the previous build keeps serving. Replays run the plugins only: nothing is spoken, nothing
//! is paid. When the loop ends (Ctrl-C), the installed version serves the source again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;

use crate::config::Config;
use crate::plugins::{LoadedPlugin, PluginHost};
use crate::store::Store;

/// How often the sources are looked at.
const POLL: Duration = Duration::from_millis(400);

/// Folders that hold what a build makes or installs, never what it reads.
const NOT_SOURCES: &[&str] = &[
    "target",
    "node_modules",
    ".venv",
    "dist",
    "__pycache__",
    ".git",
];

pub async fn dev(
    config: &Config,
    store: &Store,
    host: &PluginHost,
    dir: &Path,
    source: &str,
    last: i64,
) -> anyhow::Result<()> {
    let settings = &config
        .sources
        .get(source)
        .with_context(|| format!("no source {source} in the configuration"))?
        .settings;
    let name = super::manifest_in(dir)?.name;
    let chain = &settings.plugins;
    let at = chain
        .iter()
        .position(|entry| entry.plugin() == name)
        .with_context(|| {
            let names: Vec<&str> = chain.iter().map(|entry| entry.plugin()).collect();
            format!(
                "{name} is not in source {source}'s chain ({})",
                names.join(", ")
            )
        })?;
    let mut serving: Option<Arc<LoadedPlugin>> =
        host.resolve_for(source, &chain[at].name).await.ok();
    println!(
        "watching {} for source {source} (now served by {}); Ctrl-C ends it",
        dir.display(),
        serving
            .as_ref()
            .map_or("nothing installed".into(), |p| format!(
                "{} (sha256 {}…)",
                p.id(),
                &p.digest[..12]
            ))
    );
    let mut seen = None;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let now = stamp(dir);
        if seen.as_ref() != Some(&now) {
            seen = Some(now);
            match super::build_and_load(host, dir).await {
                Err(err) => println!(
                    "build failed: {err:#}\n{} keeps serving {source}",
                    serving.as_ref().map_or("nothing".into(), |p| p.id())
                ),
                Ok(new) if serving.as_ref().is_some_and(|old| old.digest == new.digest) => {
                    println!("built {} (unchanged)", new.id())
                }
                Ok(new) => {
                    host.serve_dev_build(source, &new).await?;
                    println!(
                        "serving {source} with the development build {} (sha256 {}…)",
                        new.id(),
                        &new.digest[..12]
                    );
                    match &serving {
                        Some(old) => {
                            compare(config, store, host, source, (&new, old), last).await?
                        }
                        None => println!("nothing served {source} before: no plans to compare"),
                    }
                    serving = Some(new);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = &mut interrupted => break,
        }
    }
    host.end_dev_build(source, &name).await?;
    println!("development build ended: {source} is served by the installed {name} again");
    Ok(())
}

/// Replays the source's last `last` events with `new` and with `old` in the plugin's place, and
/// prints how each plan changed.
async fn compare(
    config: &Config,
    store: &Store,
    host: &PluginHost,
    source: &str,
    (new, old): (&LoadedPlugin, &LoadedPlugin),
    last: i64,
) -> anyhow::Result<()> {
    let contents = super::as_planned(config, store.recent_contents_of(source, last).await?);
    let changed = super::replay_and_print(config, store, host, (new, old), &contents).await?;
    println!(
        "{} events of {source} replayed: {changed} changed, {} same (nothing spoken, nothing paid)",
        contents.len(),
        contents.len() - changed
    );
    Ok(())
}

/// What the plugin's sources look like now: each file's path, size and modification time.
fn stamp(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                let name = entry.file_name();
                if !NOT_SOURCES.iter().any(|skip| name == *skip) {
                    folders.push(path);
                }
            } else {
                files.push((
                    path,
                    meta.len(),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                ));
            }
        }
    }
    files.sort();
    files
}
