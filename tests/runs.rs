//! Runs of many renders (issue #14): `vidhook backfill` and `vidhook batch` against a running
//! host — estimated and confirmed first, refused over the budget left, queued under one run id,
//! followed to the end, resumed without paying twice; paused and cancelled runs submit nothing
//! new while live publishes go through.

mod support;

use std::time::Duration;

use support::cms_apis::{CmsApi, Kind};
use support::runs::{cli, markdown_config, omnihuman, on_contract, run_id, write_articles};
use support::seedance::Seedance;
use support::{vidhook, Host};

#[tokio::test(flavor = "multi_thread")]
async fn a_markdown_backfill_renders_what_has_no_video_and_resumes_without_rendering_twice() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(&dir.path().join("content"));
    let host = Host::start(dir.path(), &markdown_config(dir.path(), "", "")).await;
    let a = dir.path().join("content/a.md");
    cli(&host, &["publish", "--source", "docs", a.to_str().unwrap()]).await;
    host.wait_for_state("done", Duration::from_secs(60)).await;

    // Without --yes and without a terminal: the estimate, then a refusal; nothing queued.
    let (ok, out) = cli(&host, &["backfill", "--source", "docs"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("3 items listed; 1 already have their video (or one on its way); 2 to render"),
        "the draft is not listed, the published one is not offered again:\n{out}"
    );
    assert!(out.contains("estimate: 2 videos"), "{out}");
    assert!(out.contains("pass --yes"), "{out}");
    assert_eq!(host.renders().await.len(), 1);

    let (ok, out) = cli(&host, &["backfill", "--source", "docs", "--yes"]).await;
    assert!(ok, "{out}\n{}", host.logs());
    let run = run_id(&out);
    assert!(out.contains("2 done"), "followed to the end:\n{out}");
    let renders = host.renders().await;
    assert_eq!(renders.len(), 3, "{renders:#?}");
    for file in ["b.md", "c.md"] {
        let text = std::fs::read_to_string(dir.path().join("content").join(file)).unwrap();
        assert!(text.contains("video_url:"), "{file} written back:\n{text}");
    }
    let listed = cli(&host, &["jobs", "--run", &run]).await.1;
    assert_eq!(listed.matches(" done ").count(), 2, "{listed}");
    let in_run: Vec<_> = host.api(&format!("/api/v1/renders?run={run}")).await["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(in_run.len(), 2);

    // The same command again: everything has its video; the run is the same, nothing new.
    let (ok, out) = cli(&host, &["backfill", "--source", "docs", "--yes"]).await;
    assert!(ok, "{out}");
    assert!(out.contains("3 already have their video"), "{out}");
    assert_eq!(host.renders().await.len(), 3);
    let runs = host.api("/api/v1/runs").await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs:#}");
    assert_eq!(runs[0]["progress"]["states"]["done"], 2, "{runs:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backfill_over_the_budget_left_is_refused_and_limit_keeps_it_under() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(&dir.path().join("content"));
    let seedance = Seedance::start(false).await;
    let config = markdown_config(
        dir.path(),
        &omnihuman(&seedance),
        "daily_credits = 1920\ncredit_pack = \"max\"\n",
    );
    let host = Host::start(dir.path(), &config).await;

    let (ok, out) = cli(&host, &["backfill", "--source", "docs", "--yes"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("estimate: 3 videos") && out.contains("2880 credits, $24.00 at the Max pack"),
        "{out}"
    );
    assert!(
        out.contains(
            "refused: this run needs 2880 credits, 960 over the budget left today (1920 credits)"
        ),
        "{out}"
    );
    assert!(seedance.attempts().is_empty(), "nothing submitted");

    let (ok, out) = cli(
        &host,
        &["backfill", "--source", "docs", "--limit", "2", "--yes"],
    )
    .await;
    assert!(ok, "{out}\n{}", host.logs());
    assert!(out.contains("1920 credits"), "{out}");
    assert_eq!(seedance.jobs().len(), 2, "two paid videos");

    // What is left needs 960 credits and none are left today.
    let (ok, out) = cli(&host, &["backfill", "--source", "docs", "--yes"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("960 over the budget left today (0 credits)"),
        "{out}"
    );
    assert_eq!(
        seedance.attempts().len(),
        2,
        "never paid twice: {:?}",
        seedance.attempts()
    );
}

/// A paused run submits nothing; a live publish meanwhile goes through at once; resuming
/// finishes the run; cancelling ends the unpaid renders, and resuming a cancelled run queues
/// them again. Every operator action is audited.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_run_waits_while_live_publishes_go_first_and_cancel_pays_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    write_articles(&content);
    let seedance = Seedance::start(false).await;
    let config = markdown_config(dir.path(), &omnihuman(&seedance), "");
    // Queue a run with no host running, then pause it before any worker sees it.
    let host = Host::start(dir.path(), &config).await;
    let config_path = dir.path().join("vidhook.toml");
    host.terminate(Duration::from_secs(20)).await;
    let mut backfill = tokio::process::Command::new(env!("CARGO_BIN_EXE_vidhook"))
        .args([
            "--config",
            config_path.to_str().unwrap(),
            "backfill",
            "--source",
            "docs",
            "--yes",
        ])
        .env("SEEDANCE_TEST_KEY", support::seedance::API_KEY)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        backfill.stdout.take().unwrap(),
    ));
    let mut run = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        if line.contains("items queued") {
            run = Some(run_id(&line));
            break;
        }
    }
    let run = run.expect("the run was queued");
    backfill.kill().await.unwrap();
    let config_arg = config_path.to_str().unwrap();
    vidhook(&["--config", config_arg, "runs", "pause", &run]).await;

    let host = Host::start(dir.path(), &config).await;
    std::fs::write(
        content.join("live.md"),
        "---\ntitle: Breaking news\n---\nThe river bridge opens today.\n",
    )
    .unwrap();
    let live = content.join("live.md");
    cli(
        &host,
        &["publish", "--source", "docs", live.to_str().unwrap()],
    )
    .await;
    host.wait_for_state("done", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(seedance.jobs().len(), 1, "only the live publish was paid");
    let progress = host.api(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(progress["run"]["state"], "paused", "{progress:#}");
    assert_eq!(progress["progress"]["states"]["plan"], 3, "{progress:#}");

    // Cancel: its three unpaid renders end skipped; nothing is paid.
    let cancelled = reqwest::Client::new()
        .post(format!("{}/api/v1/runs/{run}/cancel", host.url))
        .bearer_auth(&host.token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let progress = host.api(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(progress["progress"]["states"]["skipped"], 3, "{progress:#}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(seedance.jobs().len(), 1);

    // The same command again resumes the cancelled run: its renders are queued again and paid
    // once each.
    let (ok, out) = cli(&host, &["backfill", "--source", "docs", "--yes"]).await;
    assert!(ok, "{out}\n{}", host.logs());
    assert!(out.contains("3 queued earlier and unpaid"), "{out}");
    assert!(out.contains("3 done"), "{out}");
    assert_eq!(seedance.jobs().len(), 4, "each paid once");
    let audit = cli(&host, &["audit"]).await.1;
    assert!(
        audit.contains("pause") && audit.contains("cancel"),
        "{audit}"
    );
}

/// One video per CSV row, the columns as template variables; the output file gets a line per
/// row as it settles; running the same command again adds nothing and pays nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_file_makes_one_video_per_row_and_writes_each_outcome_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    let seedance = Seedance::start(false).await;
    let config = markdown_config(
        dir.path(),
        &omnihuman(&seedance),
        "plugins = [{ name = \"presenter\", config = { script_template = \"outreach\" } }]\n",
    );
    let host = Host::start(dir.path(), &config).await;
    let template = dir.path().join("outreach.hbs");
    std::fs::write(
        &template,
        "Hi {{fields.first_name}}! I saw that {{fields.company}} {{fields.trigger}}.",
    )
    .unwrap();
    cli(
        &host,
        &[
            "templates",
            "set",
            "outreach",
            "--file",
            template.to_str().unwrap(),
        ],
    )
    .await;
    let rows = dir.path().join("prospects.csv");
    std::fs::write(
        &rows,
        "id,first_name,company,trigger\n\
         p1,Ada,Analytical Engines,\"opened an office in Paris, France\"\n\
         p2,Grace,Compilers Inc,raised a seed round\n\
         p3,Alan,Enigma Ltd,hired a new CTO\n",
    )
    .unwrap();
    let (ok, out) = cli(
        &host,
        &["batch", rows.to_str().unwrap(), "--source", "docs", "--yes"],
    )
    .await;
    assert!(ok, "{out}\n{}", host.logs());
    assert!(out.contains("estimate: 3 videos"), "{out}");
    let results = std::fs::read_to_string(dir.path().join("prospects.csv.results.csv")).unwrap();
    let lines: Vec<&str> = results.lines().collect();
    assert_eq!(
        lines[0],
        "row,id,locale,render,state,video_url,reason,narration"
    );
    assert_eq!(lines.len(), 4, "{results}");
    for id in ["p1", "p2", "p3"] {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!(",{id},")))
            .unwrap();
        assert!(line.contains(",done,http"), "{line}");
    }
    assert_eq!(seedance.jobs().len(), 3);
    // The row's columns reached the narration.
    let renders = host.renders().await;
    let scripts: String = renders
        .iter()
        .map(|r| r["render"]["plan_json"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        scripts
            .contains("Hi Ada! I saw that Analytical Engines opened an office in Paris, France."),
        "{scripts}"
    );

    let (ok, out) = cli(
        &host,
        &["batch", rows.to_str().unwrap(), "--source", "docs", "--yes"],
    )
    .await;
    assert!(ok, "{out}");
    assert!(out.contains("3 already have their video"), "{out}");
    assert_eq!(seedance.attempts().len(), 3, "nothing paid twice");
    let again = std::fs::read_to_string(dir.path().join("prospects.csv.results.csv")).unwrap();
    assert_eq!(again, results, "no line written twice");
    // Every row settled: the run is finished in the listings, not active.
    let (_, listed) = cli(&host, &["runs", "list"]).await;
    assert!(
        listed.contains("finished") && !listed.contains("active"),
        "{listed}"
    );
    let runs = host.api("/api/v1/runs").await;
    assert!(
        runs.to_string().contains("\"state\":\"finished\""),
        "{runs}"
    );
}

/// Ghost and Strapi hold more existing entries than one page of their API: the backfill lists
/// them all through the CMS's own paging, renders the ones asked for, writes each video into its
/// own entry, and a second run goes on where the first stopped.
#[tokio::test(flavor = "multi_thread")]
async fn ghost_and_strapi_backfills_page_through_every_existing_entry() {
    for (kind, existing) in [(Kind::Ghost, 120), (Kind::Strapi, 130)] {
        let dir = tempfile::tempdir().unwrap();
        let api = CmsApi::start(kind).await;
        let first_ms = vidhook::store::now_ms() - 30 * 86_400_000;
        api.seed_existing(existing, first_ms);
        let listen = format!("127.0.0.1:{}", support::free_port());
        let config = api.host_config(dir.path(), &listen, "catch_up_secs = 0\n");
        let host = Host::start(dir.path(), &config).await;
        api.set_hook(&format!("{}/hooks/cms", host.url));

        let (ok, out) = cli(&host, &["backfill", "--source", "cms"]).await;
        assert!(!ok, "{kind:?}: {out}");
        assert!(
            out.contains(&format!("{existing} items listed; 0 already have their video (or one on its way); {existing} to render")),
            "{kind:?}: every page listed:\n{out}"
        );
        // More entries than a page holds (Ghost 50, Strapi 100): more than one listing.
        assert!(
            api.lists() >= 2,
            "{kind:?}: paged ({} listings)",
            api.lists()
        );

        let (ok, out) = cli(
            &host,
            &["backfill", "--source", "cms", "--limit", "2", "--yes"],
        )
        .await;
        assert!(ok, "{kind:?}: {out}\n{}", host.logs());
        let (ok, out) = cli(
            &host,
            &["backfill", "--source", "cms", "--limit", "1", "--yes"],
        )
        .await;
        assert!(ok, "{kind:?}: {out}\n{}", host.logs());
        assert!(
            out.contains("2 already have their video"),
            "{kind:?}: {out}"
        );
        let renders = host.renders().await;
        assert_eq!(renders.len(), 3, "{kind:?}: {renders:#?}");
        for i in 1..=3 {
            let entry = api.existing(&api.existing_id(i)).to_string();
            assert!(
                entry.contains("/media/videos/"),
                "{kind:?} entry {i} has its video: {entry}"
            );
        }
        let untouched = api.existing(&api.existing_id(4)).to_string();
        assert!(!untouched.contains("/media/videos/"), "{kind:?}");

        // Only what changed since a time: the last ten minutes hold the last ten entries (a
        // second after the eleventh-last: Ghost keeps and compares whole seconds).
        let since = vidhook::cms::format_time(first_ms + (existing as i64 - 10) * 60_000 + 1000);
        // The three entries whose video was written back changed then too, as in the real CMS:
        // listed, and known to have their video.
        let (_, out) = cli(&host, &["backfill", "--source", "cms", "--since", &since]).await;
        assert!(
            out.contains(
                "13 items listed; 3 already have their video (or one on its way); 10 to render"
            ),
            "{kind:?}: {out}"
        );
    }
}

/// A `vidhook ARGS` process with the host's config, its stdout read line by line.
struct Running {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    seen: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Running {
    fn start(host: &Host, args: &[&str]) -> Running {
        let config = host.dir.join("vidhook.toml");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vidhook"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("SEEDANCE_TEST_KEY", support::seedance::API_KEY)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            child.stdout.take().unwrap(),
        ));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut errors = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
            child.stderr.take().unwrap(),
        ));
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Running {
            child,
            lines,
            seen: String::new(),
            stderr,
        }
    }

    /// Reads lines until one contains `text`; returns it.
    async fn wait_for_line(&mut self, text: &str) -> String {
        let found = tokio::time::timeout(Duration::from_secs(90), async {
            while let Some(line) = self.lines.next_line().await.unwrap() {
                self.seen.push_str(&line);
                self.seen.push('\n');
                if line.contains(text) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!(
                "no line with {text:?} in:\n{}\nstderr:\n{}",
                self.seen,
                self.stderr.lock().unwrap()
            ),
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let sent = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits for the process to exit; its success and everything it printed.
    async fn finish(mut self) -> (bool, String) {
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout(Duration::from_secs(90), self.lines.next_line()).await
        {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("it exits")
            .unwrap();
        let stderr = self.stderr.lock().unwrap().clone();
        (status.success(), format!("{}{stderr}", self.seen))
    }
}

/// Ctrl-C pauses the run: nothing is submitted after it, what was paid is followed to the end,
/// and the command says how to go on.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_submitting_and_keeps_following_what_is_paid() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    write_articles(&content);
    for n in 0..5 {
        std::fs::write(
            content.join(format!("more-{n}.md")),
            format!("---\ntitle: Story {n}\n---\nSomething happened, part {n}.\n"),
        )
        .unwrap();
    }
    let (seedance, host) = on_contract(dir.path(), true).await;
    let mut backfill = Running::start(&host, &["backfill", "--source", "docs", "--yes"]);
    let run = run_id(&backfill.wait_for_line("items queued").await);
    while seedance.jobs().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    backfill.signal("-INT");
    backfill
        .wait_for_line("paused: nothing new is submitted")
        .await;
    // Renders marked `submitting` (or further) when the pause committed are paid: their calls
    // may still be waiting on the provider's rate limit. No other render may be submitted.
    let at_pause = host.api(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(at_pause["run"]["state"], "paused");
    let paid = at_pause["progress"]["states"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(state, _)| !["plan", "speak", "check", "submit"].contains(&state.as_str()))
        .map(|(_, n)| n.as_u64().unwrap() as usize)
        .sum::<usize>();
    assert!(paid >= 1, "{at_pause:#}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        seedance.jobs().len(),
        paid,
        "nothing submitted after Ctrl-C: {at_pause:#}"
    );
    seedance.release().await;
    let (ok, out) = backfill.finish().await;
    assert!(ok, "{out}");
    let progress = host.api(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(
        progress["progress"]["states"]["done"], paid as i64,
        "{progress:#}\n{out}"
    );
    assert_eq!(seedance.jobs().len(), paid, "{out}");
    if paid < 8 {
        assert!(out.contains("run the same command again"), "{out}");
    }
}

/// While a run's renders are queued, a live publish is claimed before them: with one worker, it
/// is done while most of the run still waits.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_publish_goes_before_a_queued_run() {
    let dir = tempfile::tempdir().unwrap();
    let content = dir.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    for n in 0..8 {
        std::fs::write(
            content.join(format!("old-{n}.md")),
            format!("---\ntitle: Old story {n}\n---\nSomething happened long ago, part {n}.\n"),
        )
        .unwrap();
    }
    let config = markdown_config(dir.path(), "", "").replace("workers = 2", "workers = 1");
    let host = Host::start(dir.path(), &config).await;
    let mut backfill = Running::start(&host, &["backfill", "--source", "docs", "--yes"]);
    let run = run_id(&backfill.wait_for_line("items queued").await);
    let live = content.join("live.md");
    std::fs::write(
        &live,
        "---\ntitle: Breaking news\n---\nThe bridge opens today.\n",
    )
    .unwrap();
    cli(
        &host,
        &["publish", "--source", "docs", live.to_str().unwrap()],
    )
    .await;
    let live_done = loop {
        let renders = host.renders().await;
        let live = renders
            .iter()
            .find(|r| r["render"]["run_id"].is_null())
            .cloned();
        if let Some(live) = live.filter(|r| r["render"]["state"] == "done") {
            break live;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let progress = host.api(&format!("/api/v1/runs/{run}")).await;
    let run_done = progress["progress"]["states"]["done"].as_i64().unwrap_or(0);
    assert!(
        run_done <= 3,
        "the live publish waited for {run_done} of the run's 8 renders: {progress:#}\n{live_done:#}"
    );
    let (ok, out) = backfill.finish().await;
    assert!(ok, "{out}");
    assert!(out.contains("8 done"), "{out}");
}

/// The batch command is killed after its first result lines: nothing written is lost, and the
/// same command again completes the file with each render's line once.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_killed_midway_loses_no_written_line_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    let config = markdown_config(dir.path(), "", "").replace("workers = 2", "workers = 1");
    let host = Host::start(dir.path(), &config).await;
    let rows = dir.path().join("rows.jsonl");
    let lines: Vec<String> = (0..6)
        .map(|n| {
            format!("{{\"id\":\"r{n}\",\"title\":\"Row {n}\",\"body\":\"Hello number {n}.\"}}")
        })
        .collect();
    std::fs::write(&rows, lines.join("\n")).unwrap();
    let results = dir.path().join("rows.jsonl.results.csv");
    let batch = ["batch", rows.to_str().unwrap(), "--source", "docs", "--yes"];
    let mut first = Running::start(&host, &batch);
    first.wait_for_line("items queued").await;
    let written = loop {
        let text = std::fs::read_to_string(&results).unwrap_or_default();
        if text.lines().count() >= 2 {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.signal("-KILL");
    let _ = first.finish().await;
    let before_kill: Vec<String> = written.lines().map(str::to_owned).collect();

    let (ok, out) = cli(&host, &batch).await;
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&results).unwrap();
    let all: Vec<&str> = text.lines().collect();
    assert_eq!(all.len(), 7, "a header and six rows, each once:\n{text}");
    for line in &before_kill {
        assert!(all.contains(&line.as_str()), "{line} kept:\n{text}");
    }
    let mut renders: Vec<&str> = all[1..]
        .iter()
        .map(|l| l.split(',').nth(3).unwrap())
        .collect();
    renders.sort();
    renders.dedup();
    assert_eq!(renders.len(), 6, "{text}");
}

/// `--detach` queues the run and returns at once; the host renders it; the same command again
/// follows it (nothing new queued) to the end.
#[tokio::test(flavor = "multi_thread")]
async fn a_detached_backfill_returns_at_once_and_the_same_command_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(&dir.path().join("content"));
    let host = Host::start(dir.path(), &markdown_config(dir.path(), "", "")).await;
    let (ok, out) = cli(
        &host,
        &["backfill", "--source", "docs", "--yes", "--detach"],
    )
    .await;
    assert!(ok, "{out}");
    let run = run_id(&out);
    assert!(
        out.contains(&format!("detached: `vidhook runs follow {run}`")),
        "{out}"
    );
    assert!(!out.contains(" done"), "it did not follow: {out}");
    let (ok, out) = cli(&host, &["backfill", "--source", "docs", "--yes"]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("0 to render") && out.contains("3 done"),
        "{out}"
    );
    assert_eq!(host.renders().await.len(), 3);
}

/// On a terminal (a pseudo-terminal from util-linux `script`), the estimate is followed by a
/// question: "n" queues nothing, "y" queues and follows the run.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_estimate_asks_and_only_yes_goes_ahead() {
    let dir = tempfile::tempdir().unwrap();
    write_articles(&dir.path().join("content"));
    let host = Host::start(dir.path(), &markdown_config(dir.path(), "", "")).await;
    let command = format!(
        "{} --config {} backfill --source docs",
        env!("CARGO_BIN_EXE_vidhook"),
        host.dir.join("vidhook.toml").display()
    );
    let answer = |reply: &'static str| {
        let command = command.clone();
        async move {
            let mut child = tokio::process::Command::new("script")
                .args(["-qec", &command, "/dev/null"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("util-linux script");
            let mut stdin = child.stdin.take().unwrap();
            tokio::io::AsyncWriteExt::write_all(&mut stdin, reply.as_bytes())
                .await
                .unwrap();
            let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
                .await
                .expect("it finishes")
                .unwrap();
            drop(stdin);
            String::from_utf8_lossy(&output.stdout).to_string()
        }
    };
    let out = answer("n\n").await;
    assert!(
        out.contains("render 3 videos for about $0.00? [y/N]"),
        "{out}"
    );
    assert!(out.contains("not confirmed; nothing queued"), "{out}");
    assert!(host.renders().await.is_empty());

    let out = answer("y\n").await;
    assert!(out.contains("items queued"), "{out}");
    assert!(out.contains("3 done"), "{out}");
    assert_eq!(host.renders().await.len(), 3);
}

/// A render a worker holds when its run is cancelled is not swept with the others; it is ended
/// `skipped` (cancelled) at its next claim instead of waiting in its unpaid state for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_render_leased_when_its_run_is_cancelled_still_ends_skipped() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    write_articles(&dir.path().join("content"));
    let seedance = Seedance::start(false).await;
    let config = markdown_config(dir.path(), &omnihuman(&seedance), "");
    let host = Host::start(dir.path(), &config).await;
    host.terminate(Duration::from_secs(20)).await;
    let config_path = dir.path().join("vidhook.toml");
    let config_arg = config_path.to_str().unwrap();
    let out = vidhook(&[
        "--config", config_arg, "backfill", "--source", "docs", "--yes", "--detach",
    ])
    .await;
    let run = run_id(&out);

    // One render is held by a worker (of a process that is gone) when the run is cancelled.
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&support::database_url(dir.path()).await)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE renders SET lease_owner = 'elsewhere', lease_until = $1
         WHERE id = (SELECT id FROM renders WHERE run_id = $2 ORDER BY id LIMIT 1)",
    )
    .bind(vidhook::store::now_ms() + 3_000)
    .bind(&run)
    .execute(&mut db)
    .await
    .unwrap();
    vidhook(&["--config", config_arg, "runs", "cancel", &run]).await;

    let host = Host::start(dir.path(), &config).await;
    let started = std::time::Instant::now();
    loop {
        let progress = host.api(&format!("/api/v1/runs/{run}")).await;
        if progress["progress"]["states"]["skipped"] == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{progress:#}\n{}",
            host.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seedance.jobs().is_empty(),
        "nothing of a cancelled run is paid"
    );
}

/// Nothing is paid for content without a narration: a batch file whose rows give the source's
/// plugins nothing to narrate (no title or body column: the row's id read alone) and a row with
/// a title but no body are refused at the batch's start, with their row numbers, before anything
/// is queued; the same content published as an entry fails at its plan step, before any speech
/// or paid call.
#[tokio::test(flavor = "multi_thread")]
async fn content_without_a_narration_is_refused_before_anything_is_paid() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("content")).unwrap();
    let (seedance, host) = on_contract(dir.path(), false).await;

    let nobody = dir.path().join("nobody.csv");
    std::fs::write(&nobody, "name,text\nA,hello there\n").unwrap();
    let (ok, out) = cli(
        &host,
        &[
            "batch",
            nobody.to_str().unwrap(),
            "--source",
            "docs",
            "--yes",
        ],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("row 1:") && out.contains("nothing was queued"),
        "{out}"
    );

    let rows = dir.path().join("rows.csv");
    std::fs::write(
        &rows,
        "id,title,body\nr1,A full row,With a body to narrate.\nr2,Only a title here,\n",
    )
    .unwrap();
    let (ok, out) = cli(
        &host,
        &["batch", rows.to_str().unwrap(), "--source", "docs", "--yes"],
    )
    .await;
    assert!(!ok, "{out}");
    assert!(
        out.contains("1 of 2 items") && out.contains("row 2:") && out.contains("only the title"),
        "{out}"
    );
    assert!(!out.contains("row 1:"), "{out}");

    // The estimate counts it as an error, not a video.
    let post = dir.path().join("content").join("title-only.md");
    std::fs::write(&post, "---\ntitle: Just a headline\n---\n").unwrap();
    let folder = dir.path().join("content");
    let (_, out) = cli(
        &host,
        &[
            "estimate",
            "--folder",
            folder.to_str().unwrap(),
            "--source",
            "docs",
        ],
    )
    .await;
    assert!(
        out.contains("0 videos") && out.contains("only the title"),
        "{out}"
    );
    let (ok, out) = cli(
        &host,
        &[
            "estimate",
            "--folder",
            folder.to_str().unwrap(),
            "--source",
            "nope",
        ],
    )
    .await;
    assert!(
        !ok && out.contains("no source named \"nope\"") && out.contains("docs"),
        "{out}"
    );

    // Published anyway: failed at the plan step, nothing synthesised, nothing paid.
    let (ok, out) = cli(
        &host,
        &["publish", "--source", "docs", post.to_str().unwrap()],
    )
    .await;
    assert!(ok, "{out}");
    let failed = host.wait_for_state("failed", Duration::from_secs(60)).await;
    assert_eq!(failed["error_category"], "input_invalid", "{failed}");
    assert!(failed["audio_key"].is_null(), "{failed}");
    assert!(seedance.attempts().is_empty(), "nothing paid");
    assert!(host.renders().await.len() == 1);

    // The CLI's answers say what is wrong: an unknown render, and one not awaiting approval.
    let (ok, out) = cli(&host, &["jobs", "approve", "nope"]).await;
    assert!(!ok && out.contains("no render nope"), "{out}");
    let id = failed["id"].as_str().unwrap();
    let (ok, out) = cli(&host, &["jobs", "approve", id]).await;
    assert!(
        !ok && out.contains("is failed, not awaiting approval"),
        "{out}"
    );
    let (_, out) = cli(&host, &["audit"]).await;
    assert!(out.contains("no operator actions yet"), "{out}");
}
