//! Provider utilisation (issue #14): a run of many renders against the OmniHuman contract server
//! limited to N calls a minute (generate and status reads together, 429 + Retry-After past it,
//! as an account's plan is). vidhook is configured with the same N. Reports the calls the server
//! admitted per minute over the middle 80 % of the run as a share of N, and the 429s it had to
//! send. The real binary (`vidhook serve`, release build) renders a batch queued with
//! `vidhook batch --detach`; every step runs (plugin, espeak-ng, checks, the paid call, the
//! provider's webhook and status read).
//!
//! `cargo bench -p vidhook --bench provider_utilisation [-- RENDERS PER_MINUTE]` (default 500 300).

#[path = "../../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::seedance::Seedance;

#[tokio::main]
async fn main() {
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let renders = numbers.first().copied().unwrap_or(500);
    let per_minute = numbers.get(1).copied().unwrap_or(300);

    let seedance = Seedance::start(false).await;
    seedance.limit_per_minute(per_minute);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\nworkers = 4\n\n\
         [provider]\nkind = \"omnihuman\"\nbase_url = \"{base}\"\napi_key = \"${{SEEDANCE_TEST_KEY}}\"\n\
         webhooks = true\npoll_interval_secs = 30\nrequests_per_minute = {per_minute}\nmax_concurrent = 4\n\n\
         [checks]\nallow_plain_http = true\n\n\
         # Loopback contract server: the development allowlist, turned on explicitly.\n\
         [outbound]\nallow_private = [\"127.0.0.0/8\"]\n\n\
         [sources.rows]\ncms = \"markdown\"\nfolder = \"{folder}\"\npresenter_image = \"{image}\"\ncatch_up_secs = 0\n",
        data = dir.path().join("data").display(),
        base = seedance.url,
        folder = dir.path().join("content").display(),
        image = support::presenter_png().display(),
    );
    let host = support::Host::start(dir.path(), &config).await;
    let rows = dir.path().join("rows.csv");
    let mut text = String::from("id,title,body\n");
    for n in 0..renders {
        text.push_str(&format!(
            "r{n},Update {n},Short news number {n} for the team.\n"
        ));
    }
    std::fs::write(&rows, text).unwrap();
    let config_path = dir.path().join("vidhook.toml");
    let (ok, out) = support::vidhook_result(&[
        "--config",
        config_path.to_str().unwrap(),
        "batch",
        rows.to_str().unwrap(),
        "--source",
        "rows",
        "--yes",
        "--detach",
    ])
    .await;
    assert!(ok, "{out}");

    let run = out
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next())
        .expect("the batch printed its run id")
        .to_string();

    // Every render settles; the least time the limit allows is two calls a render.
    let least = Duration::from_secs_f64(renders as f64 * 2.0 * 60.0 / per_minute as f64);
    let started = Instant::now();
    loop {
        let progress = host.api(&format!("/api/runs/{run}")).await;
        let states = progress["progress"]["states"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let count = |state: &str| states.get(state).and_then(|n| n.as_u64()).unwrap_or(0);
        let settled: u64 = ["done", "failed", "skipped", "needs_attention"]
            .iter()
            .map(|s| count(s))
            .sum();
        if settled >= renders as u64 {
            println!(
                "{} of {renders} renders done in {:.0} s",
                count("done"),
                started.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            started.elapsed() < least * 3 + Duration::from_secs(120),
            "the run did not settle: {progress:#}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let (admitted, refused) = seedance.admissions();
    let first = admitted[0];
    let last = *admitted.last().unwrap();
    let span = last.duration_since(first);
    let (from, to) = (span.mul_f64(0.1), span.mul_f64(0.9));
    let middle = admitted
        .iter()
        .filter(|t| {
            let at = t.duration_since(first);
            at >= from && at <= to
        })
        .count();
    let per_minute_seen = middle as f64 / (to - from).as_secs_f64() * 60.0;
    println!(
        "provider limit {per_minute}/min: {} calls admitted over {:.0} s; middle 80 %: {:.1} calls/min = {:.1} % of the limit; 429s: {refused}",
        admitted.len(),
        span.as_secs_f64(),
        per_minute_seen,
        per_minute_seen / per_minute as f64 * 100.0
    );
    println!("(targets: at least 95 % of the limit, no 429)");
    drop(host);
}
