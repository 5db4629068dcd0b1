//! Figures an operator acts on (issue #25): one estimate that `vidhook estimate`, backfill and
//! the API compute alike (fan-out included, the free preview provider priced at $0 beside what
//! OmniHuman would charge), budgets rehearsed without spending, runs that count rows and renders
//! apart, failed rows retried only when asked, and rows the plan shortened saying so.

mod support;

use support::runs::{cli, markdown_config, on_contract};
use support::seedance::Fault;
use support::Host;

/// `---` front matter with a German translation: the multilingual chain makes two videos of it.
const TRANSLATED: &str = "---\ntitle: Solar panels on every school\ntranslations:\n  de-DE:\n    title: Solarzellen auf jeder Schule\n    body: Der Rat hat es am Dienstag beschlossen.\n---\nThe council decided it on Tuesday.\n";

/// The line `vidhook estimate` and the runs print, rebuilt from the API's figures.
fn line_from_api(estimate: &serde_json::Value) -> String {
    format!(
        "estimate: {} videos, 0 credits on the {} provider (OmniHuman: {} credits, ${:.2} at the {} pack)",
        estimate["videos"],
        estimate["provider"].as_str().unwrap(),
        estimate["paid_credits"],
        estimate["paid_dollars"].as_f64().unwrap(),
        estimate["pack"].as_str().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn one_estimate_agrees_in_the_cli_the_runs_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::create_dir_all(dir.path().join("other")).unwrap();
    std::fs::write(content.join("a.md"), TRANSLATED).unwrap();
    std::fs::write(
        content.join("b.md"),
        "---\ntitle: A new bridge over the river\n---\nIt opens in May, two years late.\n",
    )
    .unwrap();
    let source = "credit_pack = \"max\"\ndaily_credits = 1920\n\
                  plugins = [{ name = \"presenter\" }, { name = \"multilingual\" }]\n";
    let config = format!(
        "{}\n[sources.other]\ncms = \"markdown\"\nfolder = \"{}\"\ncatch_up_secs = 0\n",
        markdown_config(dir.path(), "", source),
        dir.path().join("other").display()
    );
    let host = Host::start(dir.path(), &config).await;
    let folder = content.to_str().unwrap();

    // A folder: each file through the real chain (the translation is a second video).
    let (ok, estimated) = cli(&host, &["estimate", "--folder", folder, "--source", "docs"]).await;
    assert!(ok, "{estimated}");
    let priced = "estimate: 3 videos, 0 credits on the preview provider (OmniHuman: 2880 credits, $24.00 at the Max pack)";
    let budget =
        "budget left today: 1920 credits; it would hold back 1 of 3 videos at OmniHuman's price";
    assert!(
        estimated.contains(priced) && estimated.contains(budget),
        "{estimated}"
    );
    // The backfill of the same folder says the same before it asks.
    let (ok, asked) = cli(&host, &["backfill", "--source", "docs"]).await;
    assert!(!ok, "no terminal to confirm on: {asked}");
    assert!(
        asked.contains(
            "0 credits on the preview provider (OmniHuman: 2880 credits, $24.00 at the Max pack)"
        ) && asked.contains(budget),
        "{asked}"
    );

    // Rendered on the free provider: the run counts rows and renders apart.
    let (ok, out) = cli(&host, &["backfill", "--source", "docs", "--yes"]).await;
    assert!(ok, "{out}\n{}", host.logs());
    let runs = host.api("/api/v1/runs").await;
    assert_eq!(runs[0]["progress"]["rows"], 2, "{runs:#}");
    assert_eq!(runs[0]["progress"]["states"]["done"], 3, "{runs:#}");
    let (_, listed) = cli(&host, &["runs", "list"]).await;
    assert!(listed.contains("ROWS RENDERS"), "{listed}");

    // The budget rehearsed: today's three free submits at the paid price, one held back.
    let (ok, rehearsal) = cli(&host, &["credits", "--what-if"]).await;
    assert!(ok, "{rehearsal}");
    assert!(
        rehearsal.contains("today's 3 submits at 960 credits each")
            && rehearsal.contains("1920 credits let through, 1 held back by the budgets")
            && rehearsal.contains("this source"),
        "{rehearsal}"
    );

    // Events: the fan-out this source showed (3 videos of 2 events) prices them, in the CLI
    // and the API alike.
    let (ok, events) = cli(&host, &["estimate", "--events", "10", "--source", "docs"]).await;
    assert!(ok, "{events}");
    assert!(
        events.contains(
            "1.50 videos per event (measured on 2 events of the last 30 days) = 15 videos"
        ),
        "{events}"
    );
    let api = host.api("/api/v1/estimate?source=docs&events=10").await;
    let estimate = &api["estimate"];
    assert_eq!(estimate["videos"], 15, "{api:#}");
    assert_eq!(estimate["credits"], 0, "{api:#}");
    assert_eq!(estimate["paid_credits"], 14400, "{api:#}");
    assert_eq!(estimate["held_back_by_budget"], 13, "{api:#}");
    let from_api = line_from_api(estimate);
    assert!(events.contains(&from_api), "{from_api}\n{events}");

    // An unknown source and an ambiguous choice are errors naming the sources.
    let (ok, unknown) = cli(&host, &["estimate", "--events", "5", "--source", "nope"]).await;
    assert!(
        !ok && unknown.contains("no source named \"nope\"") && unknown.contains("docs, other"),
        "{unknown}"
    );
    let (ok, ambiguous) = cli(&host, &["estimate", "--events", "5"]).await;
    assert!(
        !ok && ambiguous.contains("several sources are configured (docs, other)"),
        "{ambiguous}"
    );
    let token = host.token_for("viewer").await;
    let http = reqwest::Client::new();
    for (query, status) in [("source=nope&events=5", 404), ("events=5", 400)] {
        let answer = http
            .get(format!("{}/api/v1/estimate?{query}", host.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{query}");
        let problem: serde_json::Value = answer.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("docs, other"),
            "{problem:#}"
        );
    }
}

/// A batch whose first paid call is refused leaves that row failed; the same command again
/// leaves it failed unless `--retry-failed` is given, and then runs it (and only it) again. A row
/// the plan cut to fit the audio limit says so, in words, in the results file, `jobs show` and
/// the API.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_retries_failed_rows_only_when_asked_and_says_what_it_shortened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    let (seedance, host) = on_contract(dir.path(), false).await;
    let long = "The council met again today. ".repeat(500);
    let rows = dir.path().join("rows.csv");
    std::fs::write(
        &rows,
        format!(
            "id,title,body\nshort,A short row,It has a body to narrate.\nlong,A long row,{long}\n"
        ),
    )
    .unwrap();
    let batch = ["batch", rows.to_str().unwrap(), "--source", "docs", "--yes"];
    // The first generate call is refused as invalid (documented 400: nothing created).
    seedance.push_fault(Fault::Invalid);
    let (ok, out) = cli(&host, &batch).await;
    assert!(ok, "{out}\n{}", host.logs());
    let results_path = dir.path().join("rows.csv.results.csv");
    let results = std::fs::read_to_string(&results_path).unwrap();
    assert_eq!(results.matches(",failed,").count(), 1, "{results}");
    assert_eq!(results.matches(",done,").count(), 1, "{results}");
    assert_eq!(seedance.jobs().len(), 1);

    // The long row: the results file, `jobs show` and the API say how much was kept.
    let long_line = results.lines().find(|l| l.contains(",long,")).unwrap();
    assert!(
        long_line.contains("shortened: the narration keeps")
            && long_line.contains("of the text's 2500 words"),
        "{long_line}"
    );
    let renders = host.api("/api/v1/renders").await;
    let long_render = renders["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["entry"] == "long")
        .unwrap()
        .clone();
    let kept = long_render["shortened"]["kept"].as_u64().unwrap();
    assert!(kept > 10 && kept < 2500, "{long_render:#}");
    assert_eq!(long_render["shortened"]["given"], 2500);
    let (_, shown) = cli(
        &host,
        &["jobs", "show", long_render["id"].as_str().unwrap()],
    )
    .await;
    assert!(
        shown.contains(&format!(
            "narration  shortened: the narration keeps {kept} of the text's 2500 words"
        )),
        "{shown}"
    );
    let short_render = renders["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["entry"] == "short")
        .unwrap()
        .clone();
    assert!(short_render["shortened"].is_null(), "{short_render:#}");

    // Again without --retry-failed: told, not retried, nothing paid.
    let (ok, again) = cli(&host, &batch).await;
    assert!(ok, "{again}");
    assert!(
        again.contains("1 items failed in an earlier run of this command")
            && again.contains("pass --retry-failed"),
        "{again}"
    );
    assert_eq!(seedance.attempts().len(), 2);

    // With it: the failed row runs again and ends done; the done row is not touched.
    let mut retry = batch.to_vec();
    retry.push("--retry-failed");
    let (ok, retried) = cli(&host, &retry).await;
    assert!(ok, "{retried}\n{}", host.logs());
    assert!(retried.contains("retrying "), "{retried}");
    assert!(retried.contains("1 failed and retried"), "{retried}");
    assert_eq!(
        seedance.jobs().len(),
        2,
        "one new job, for the failed row only"
    );
    assert_eq!(seedance.attempts().len(), 3);
    let results = std::fs::read_to_string(&results_path).unwrap();
    assert_eq!(results.matches(",done,").count(), 2, "{results}");
    assert_eq!(
        results.lines().count(),
        4,
        "a retried row gets a second line:\n{results}"
    );
}
