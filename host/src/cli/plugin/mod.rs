//! `vidhook plugin …`: the plugin author's loop (new → build → test) and the operator's
//! (install → list → replay).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::content::Content;
use crate::plugins::{replay, LoadedPlugin, Manifest, PluginHost};
use crate::store::Store;

mod build;
mod dev;
mod scaffold;

pub use build::{build, Language};

#[derive(Subcommand)]
pub enum PluginAction {
    /// Install a component (stored by sha256; takes effect for new renders without a restart).
    Install {
        /// The component (`.wasm`) to install.
        component: PathBuf,
        /// Its manifest (`vidhook-plugin.toml`: name, version, capabilities).
        #[arg(long)]
        manifest: PathBuf,
        /// Allow capabilities the previous version did not have.
        #[arg(long)]
        grant: bool,
    },
    /// Installed plugins and versions.
    List,
    /// Scaffold a plugin that builds as is (Rust, TypeScript or Python).
    New {
        /// The plugin's name (lower case, `-` between words).
        name: String,
        /// Its language: rust (cargo), ts (jco/componentize-js) or python (componentize-py).
        #[arg(long, value_enum, default_value = "rust")]
        lang: Language,
        /// Parent folder (default: the current one).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build a plugin into a component with its language's tool (cargo, jco, componentize-py).
    Build {
        /// The plugin's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a plugin's test cases offline (`plugin test DIR`: builds it, then runs
    /// DIR/tests/cases.toml against a host double), or run a plugin (a .wasm file, or an
    /// installed name[@version]) on a sample content event (`--content`).
    Test {
        /// A plugin's folder; or with `--content`, a `.wasm` file or an installed plugin
        /// as name[@version].
        plugin: String,
        /// Content JSON (see examples/sample-content.json): run on it with the live templates.
        #[arg(long)]
        content: Option<PathBuf>,
        /// With a plugin's folder: add render RENDER_ID's event to its tests/cases.toml as a case
        /// (the content, the draft, the settings and the templates' outputs as they are now; the
        /// plugin must be in that render's chain).
        #[arg(long, value_name = "RENDER_ID", conflicts_with = "content")]
        record: Option<String>,
        /// Manifest for a .wasm file (default: vidhook-plugin.toml of its plugin folder, else
        /// none).
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Settings, as key=value.
        #[arg(long = "set", value_parser = parse_setting)]
        settings: Vec<(String, String)>,
        /// Installed plugins to run first (in order) to make the draft this plugin receives.
        #[arg(long)]
        after: Vec<String>,
    },
    /// The development loop: watch a plugin's sources, rebuild on change (any language), serve
    /// the new build for one source in the running service (no restart), replay the source's
    /// recent events through it and print how the plans changed. Nothing is paid.
    Dev {
        /// The plugin's folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// The source whose chain runs the plugin.
        #[arg(long)]
        source: String,
        /// How many of the source's most recent events to replay after each build.
        #[arg(long, default_value_t = 10)]
        last: i64,
    },
    /// Run recorded events through a new version and the current one; print how plans differ.
    Replay {
        /// The candidate, name@version.
        candidate: String,
        /// The version to compare with, name@version.
        #[arg(long)]
        against: String,
        /// How many of the most recent events.
        #[arg(long, default_value_t = 50)]
        last: i64,
    },
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

pub async fn run(config: &Config, action: PluginAction) -> anyhow::Result<()> {
    match action {
        PluginAction::New { name, lang, dir } => scaffold::scaffold(&name, lang, &dir),
        PluginAction::Build { dir } => build(&dir).map(|_| ()),
        PluginAction::Test {
            plugin,
            content: None,
            record: None,
            ..
        } => test_cases(config, Path::new(&plugin)).await,
        action => {
            let store = super::open_store(config).await?;
            crate::templates::seed_defaults(&store).await?;
            let host = crate::app::plugin_host(config, store.clone()).await?;
            operate(config, &store, &host, action).await
        }
    }
}

async fn operate(
    config: &Config,
    store: &Store,
    host: &PluginHost,
    action: PluginAction,
) -> anyhow::Result<()> {
    match action {
        PluginAction::Install {
            component,
            manifest,
            grant,
        } => {
            let bytes = std::fs::read(&component)
                .with_context(|| format!("reading {}", component.display()))?;
            let manifest = Manifest::parse(&std::fs::read_to_string(&manifest)?)?;
            let installed = host.install(&bytes, manifest, grant).await?;
            let plugin = &installed.plugin;
            if installed.unchanged {
                println!(
                    "{} is already installed (sha256 {})",
                    plugin.id(),
                    plugin.digest
                );
            } else {
                println!("installed {} (sha256 {})", plugin.id(), plugin.digest);
                for capability in &installed.granted {
                    println!("  granted {capability}");
                }
            }
        }
        PluginAction::List => {
            let plugins = store.plugins().await?;
            if plugins.is_empty() {
                println!("no plugins installed: `vidhook plugin install COMPONENT --manifest FILE` adds one (the bundled ones install at `serve`)");
                return Ok(());
            }
            println!(
                "{:<14} {:<8} {:<13} CAPABILITIES",
                "NAME", "VERSION", "DIGEST"
            );
            for row in plugins {
                let manifest = Manifest::parse(&row.manifest)?;
                println!(
                    "{:<14} {:<8} {}…  hosts {:?} secrets {:?}",
                    row.name,
                    row.version,
                    &row.digest[..12],
                    manifest.capabilities.allowed_hosts,
                    manifest.capabilities.secrets
                );
            }
        }
        PluginAction::Test {
            plugin,
            content: None,
            record: Some(render),
            ..
        } => record_case(config, store, host, Path::new(&plugin), &render).await?,
        PluginAction::Test {
            plugin,
            content: Some(content),
            manifest,
            settings,
            after,
            ..
        } => {
            let content: Content = serde_json::from_str(&std::fs::read_to_string(&content)?)
                .with_context(|| format!("{} is not content JSON", content.display()))?;
            let loaded = if plugin.ends_with(".wasm") {
                let path = PathBuf::from(&plugin);
                let manifest = match manifest.or_else(|| crate_manifest(&path)) {
                    Some(m) => Manifest::parse(&std::fs::read_to_string(m)?)?,
                    None => Manifest::parse(&format!(
                        "name = \"{}\"\nversion = \"0.0.0\"",
                        stem(&path)
                    ))?,
                };
                host.load_uninstalled(&std::fs::read(&path)?, manifest)
                    .await?
            } else {
                host.resolve(&plugin).await?
            };
            let templates = Arc::new(crate::templates::TemplateSet::load(store).await?);
            let mut draft = Vec::new();
            for earlier in &after {
                let earlier = host.resolve(earlier).await?;
                let run = host
                    .plan(
                        &earlier,
                        &content,
                        &draft,
                        templates.clone(),
                        &BTreeMap::new(),
                    )
                    .await?;
                match run.decision {
                    crate::plugins::Decision::Generate(plans) => draft = plans,
                    crate::plugins::Decision::Skip(reason) => {
                        anyhow::bail!("{} skipped: {reason}", earlier.id())
                    }
                }
            }
            let settings: BTreeMap<String, String> = settings.into_iter().collect();
            let result = host
                .plan(&loaded, &content, &draft, templates, &settings)
                .await;
            println!(
                "plugin   {} (sha256 {}…)",
                loaded.id(),
                &loaded.digest[..12]
            );
            match result {
                Ok(run) => {
                    println!("decision {}", serde_json::to_string_pretty(&run.decision)?);
                    for line in &run.logs {
                        println!("log      {line}");
                    }
                    let u = &run.usage;
                    println!(
                        "usage    {:.2} ms ({:.2} ms starting, {:.2} ms in template renders), {} fuel, {:.1} MiB peak memory, {} output bytes, {} outbound calls",
                        u.wall_ms,
                        u.start_ms,
                        u.render_ms,
                        u.fuel,
                        u.peak_memory_bytes as f64 / (1 << 20) as f64,
                        u.output_bytes,
                        u.outbound_calls
                    );
                }
                Err(err) => anyhow::bail!("{err}"),
            }
        }
        PluginAction::Dev { dir, source, last } => {
            dev::dev(config, store, host, &dir, &source, last).await?
        }
        PluginAction::Replay {
            candidate,
            against,
            last,
        } => {
            let new = host.resolve(&candidate).await?;
            let old = host.resolve(&against).await?;
            anyhow::ensure!(
                new.manifest.name == old.manifest.name,
                "compare two versions of one plugin"
            );
            let contents = as_planned(config, store.recent_contents(last).await?);
            let changed = replay_and_print(config, store, host, (&new, &old), &contents).await?;
            println!(
                "{} events replayed: {changed} changed, {} same ({} vs {})",
                contents.len(),
                contents.len() - changed,
                new.id(),
                old.id()
            );
        }
        PluginAction::New { .. }
        | PluginAction::Build { .. }
        | PluginAction::Test {
            content: None,
            record: None,
            ..
        } => {
            unreachable!("handled without a store")
        }
    }
    Ok(())
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("plugin")
        .replace('_', "-")
}

/// The manifest of the plugin folder a built component sits in, if present:
/// `<crate>/target/wasm32-wasip2/release/x.wasm` (Rust) or `<plugin>/dist/x.wasm` (TypeScript,
/// Python) → `vidhook-plugin.toml` of that folder.
fn crate_manifest(wasm: &Path) -> Option<PathBuf> {
    [4, 2]
        .into_iter()
        .filter_map(|up| Some(wasm.ancestors().nth(up)?.join("vidhook-plugin.toml")))
        .find(|manifest| manifest.exists())
}

/// The manifest of a plugin folder (`DIR/vidhook-plugin.toml`).
fn manifest_in(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join("vidhook-plugin.toml");
    Ok(Manifest::parse(
        &std::fs::read_to_string(&path).with_context(|| format!("no {}", path.display()))?,
    )?)
}

/// Builds a plugin folder (off the runtime: the language's tools take seconds) and loads the
/// component with the folder's manifest.
async fn build_and_load(host: &PluginHost, dir: &Path) -> anyhow::Result<Arc<LoadedPlugin>> {
    let folder = dir.to_path_buf();
    let wasm = tokio::task::spawn_blocking(move || build(&folder)).await??;
    Ok(host
        .load_uninstalled(&tokio::fs::read(&wasm).await?, manifest_in(dir)?)
        .await?)
}

/// Recorded events as the plan step sees them: with their source's presenter image when the
/// entry has none.
fn as_planned(config: &Config, recorded: Vec<String>) -> Vec<Content> {
    recorded
        .iter()
        .filter_map(|json| serde_json::from_str::<Content>(json).ok())
        .map(|mut content| {
            if let Some(source) = config.sources.get(&content.source) {
                content.image = source.image_for(&content);
            }
            content
        })
        .collect()
}

/// Runs each content through its source's chain with `new` and with `old` in the place of their
/// plugin (the plugins before it make the draft both get), prints each event's differences, and
/// returns how many events changed.
async fn replay_and_print(
    config: &Config,
    store: &Store,
    host: &PluginHost,
    (new, old): (&LoadedPlugin, &LoadedPlugin),
    contents: &[Content],
) -> anyhow::Result<usize> {
    let name = &new.manifest.name;
    let templates = Arc::new(crate::templates::TemplateSet::load(store).await?);
    let mut changed = 0;
    for content in contents {
        let chain = config.chain(&content.source);
        let position = chain.iter().position(|p| p.plugin() == name);
        let mut draft_chain = Vec::new();
        for entry in &chain[..position.unwrap_or(0)] {
            draft_chain.push((
                host.resolve_for(&content.source, &entry.name).await?,
                entry.config.clone(),
            ));
        }
        let settings = position
            .map(|i| chain[i].config.clone())
            .unwrap_or_default();
        let diffs = replay::replay(
            host,
            new,
            old,
            &draft_chain,
            &settings,
            std::slice::from_ref(content),
            templates.clone(),
        )
        .await;
        for diff in diffs {
            if diff.changes.is_empty() {
                println!("same     {} {} {}", diff.source, diff.entry, diff.locale);
            } else {
                changed += 1;
                println!("changed  {} {} {}", diff.source, diff.entry, diff.locale);
                for change in diff.changes {
                    println!("    {change}");
                }
            }
        }
    }
    Ok(changed)
}

/// `plugin test DIR`: builds the plugin, then runs `DIR/tests/cases.toml` against a host double
/// (no database, network or editors' templates); one line a case, then `N passed, N failed`,
/// and an error (a non-zero exit) when any failed.
async fn test_cases(config: &Config, dir: &Path) -> anyhow::Result<()> {
    let file = dir.join("tests/cases.toml");
    let cases: crate::plugins::double::Cases = toml::from_str(
        &std::fs::read_to_string(&file).with_context(|| format!("no {}", file.display()))?,
    )
    .with_context(|| format!("{} is not a cases file", file.display()))?;
    // A database of its own, in a temporary folder: nothing the cases record is kept.
    let scratch = tempfile::tempdir()?;
    let store = Store::connect(
        &format!(
            "sqlite://{}?mode=rwc",
            scratch.path().join("test.db").display()
        ),
        config.database_timeout(),
    )
    .await?;
    // The service's maxima and loopback rule (a case's answers are canned, but the grants hold
    // as they would in production); no secrets: a case gives them as settings.
    let policy = crate::plugins::Policy {
        max: config.plugins.max_limits(),
        allow_loopback_hosts: config.plugins.allow_loopback_hosts,
        ..Default::default()
    };
    // Compiled components are kept where the service keeps them (by digest): a second run of a
    // large JavaScript or Python component loads instead of compiling again.
    let host = PluginHost::new(store, config.data_dir.join("plugins"), policy).await?;
    let plugin = build_and_load(&host, dir).await?;
    let verdicts = crate::plugins::double::run(&host, &plugin, &cases).await;
    let failed = verdicts.iter().filter(|v| v.failure.is_some()).count();
    for verdict in &verdicts {
        match &verdict.failure {
            None => println!("ok     {}", verdict.name),
            Some(why) => println!("FAILED {}: {why}", verdict.name),
        }
    }
    println!("{} passed, {failed} failed", verdicts.len() - failed);
    anyhow::ensure!(failed == 0, "{failed} of {} cases failed", verdicts.len());
    Ok(())
}

/// `plugin test DIR --record RENDER_ID`: the render's event, run through its chain up to this
/// folder's plugin (with the render's settings and the templates as they are now), appended to
/// `DIR/tests/cases.toml` as a case expecting what the plugin decides.
async fn record_case(
    config: &Config,
    store: &Store,
    host: &PluginHost,
    dir: &Path,
    render_id: &str,
) -> anyhow::Result<()> {
    let name = manifest_in(dir)?.name;
    let render = store
        .render(render_id)
        .await?
        .with_context(|| format!("no render {render_id}"))?;
    let mut content = store.event_content(&render.event_id).await?;
    let source = config
        .sources
        .get(&content.source)
        .with_context(|| format!("source {} is not configured", content.source))?;
    // As the plan step sees it: with the source's presenter image when the entry has none.
    content.image = source.image_for(&content);
    let chain = crate::jobs::render_chain(&render, source)?;
    let at = chain
        .iter()
        .position(|(reference, _)| crate::plugins::config::plugin_name(reference) == name)
        .with_context(|| format!("{name} is not in render {render_id}'s chain"))?;
    let templates = Arc::new(crate::templates::TemplateSet::load(store).await?);
    let mut draft = Vec::new();
    for (reference, settings) in &chain[..at] {
        let earlier = host.resolve(reference).await?;
        match host
            .plan(&earlier, &content, &draft, templates.clone(), settings)
            .await?
            .decision
        {
            crate::plugins::Decision::Generate(plans) => draft = plans,
            crate::plugins::Decision::Skip(reason) => {
                anyhow::bail!("{} skipped before {name}: {reason}", earlier.id())
            }
        }
    }
    let plugin = build_and_load(host, dir).await?;
    let title: String = content.title.chars().take(60).collect();
    let case = crate::plugins::double::record(
        host,
        &plugin,
        format!("render {render_id}: {title}"),
        (&content, &draft),
        templates,
        &chain[at].1,
    )
    .await?;
    let calls = case.expect.requests.as_ref().map_or(0, Vec::len);
    let cases = crate::plugins::double::Cases { cases: vec![case] };
    let file = dir.join("tests/cases.toml");
    std::fs::create_dir_all(dir.join("tests"))?;
    let mut text = std::fs::read_to_string(&file).unwrap_or_default();
    text.push('\n');
    text.push_str(&toml::to_string(&cases)?);
    std::fs::write(&file, text)?;
    println!(
        "recorded render {render_id} as a case in {}",
        file.display()
    );
    if calls > 0 {
        println!("its {calls} outbound requests are in the case with the answers they got");
    }
    Ok(())
}
