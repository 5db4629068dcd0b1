//! What the run tests (`tests/runs.rs`, `tests/operations.rs`) share: a Markdown source's
//! config, the OmniHuman contract server's provider table, and the CLI run against a host.

use std::path::Path;
use std::time::Duration;

use super::seedance::Seedance;
use super::{presenter_png, vidhook_result, Host};

/// Three articles and a draft in `folder`.
pub fn write_articles(folder: &Path) {
    std::fs::create_dir_all(folder).unwrap();
    for (file, title) in [
        ("a.md", "Solar panels on every school"),
        ("b.md", "A new bridge over the river"),
        ("c.md", "Libraries open on Sundays"),
    ] {
        std::fs::write(
            folder.join(file),
            format!("---\ntitle: {title}\n---\nThe council decided it on Tuesday.\n"),
        )
        .unwrap();
    }
    std::fs::write(
        folder.join("d.md"),
        "---\ntitle: Not ready\ndraft: true\n---\nStill writing.\n",
    )
    .unwrap();
}

/// A host with the Markdown source `docs` (no catch-up sweep) and `extra` config lines.
pub fn markdown_config(dir: &Path, provider: &str, source_extra: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\nworkers = 2\n{provider}\n\
         [retry]\nbase_delay_ms = 50\nmax_delay_ms = 300\n\n\
         [sources.docs]\ncms = \"markdown\"\nfolder = \"{folder}\"\npresenter_image = \"{image}\"\ncatch_up_secs = 0\n{source_extra}",
        data = dir.join("data").display(),
        folder = dir.join("content").display(),
        image = presenter_png().display(),
    )
}

/// The OmniHuman provider at `seedance`, with the loopback allowlist turned on explicitly.
pub fn omnihuman(seedance: &Seedance) -> String {
    format!(
        "[provider]\nkind = \"omnihuman\"\nbase_url = \"{}\"\napi_key = \"${{SEEDANCE_TEST_KEY}}\"\n\
         webhooks = false\npoll_interval_secs = 1\n\n[checks]\nallow_plain_http = true\n\n\
         [outbound]\nallow_private = [\"127.0.0.0/8\"]\n",
        seedance.url
    )
}

/// The OmniHuman contract server (holding its jobs when `hold`) and a host on it with the
/// Markdown source `docs` and no other settings.
pub async fn on_contract(dir: &Path, hold: bool) -> (Seedance, Host) {
    let seedance = Seedance::start(hold).await;
    let host = Host::start(dir, &markdown_config(dir, &omnihuman(&seedance), "")).await;
    (seedance, host)
}

/// Runs `vidhook ARGS` with the host's config, for at most two minutes.
pub async fn cli(host: &Host, args: &[&str]) -> (bool, String) {
    let config = host.dir.join("vidhook.toml");
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    tokio::time::timeout(Duration::from_secs(120), vidhook_result(&all))
        .await
        .unwrap_or_else(|_| panic!("vidhook {args:?} did not finish\n{}", host.logs()))
}

/// The run id a backfill or batch printed (`run ID: N items queued`).
pub fn run_id(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next())
        .unwrap_or_else(|| panic!("no run id in:\n{output}"))
        .to_string()
}
