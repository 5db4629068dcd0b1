//! The editors' workspace in a real headless Chromium (Debian's, driven by the Node runner in
//! `tests/browser/` with playwright-core), and `/api/v1` fuzzed by schemathesis from its own
//! OpenAPI document. Both are separate programs run under a time limit in their own process
//! group, ended with everything they started.

mod support;

use std::time::Duration;

use support::workspace::{audit_actions, config, hosted_speech, run_bounded};
use support::{cms::Cms, now_secs, published, tts::TtsServer, Host};

#[tokio::test(flavor = "multi_thread")]
async fn editors_work_in_a_real_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    // A source spoken by a hosted engine (OpenAI's contract server, priced as tts-1 lists it):
    // the page must say what listening costs before anything is sent there.
    let openai = TtsServer::openai().await;
    let host = Host::start(
        dir.path(),
        &(config(dir.path(), &cms) + &hosted_speech(&openai.url)),
    )
    .await;
    let editor = host.token_for("editor").await;
    let viewer = host.token_for("viewer").await;
    let revokable = host.named_token("editor", "revoked-mid-session").await;
    let revoke = serde_json::to_string(&host.revoke_command("revoked-mid-session")).unwrap();
    // `scripts/screenshots.sh` points this at docs/workspace/ to refresh the README's pictures.
    let shots = std::env::var("VIDHOOK_SCREENSHOTS").unwrap_or_else(|_| {
        let shots = format!("{}/workspace-screenshots", env!("CARGO_TARGET_TMPDIR"));
        let _ = std::fs::remove_dir_all(&shots);
        shots
    });
    let env = [
        ("BASE", host.url.as_str()),
        ("EDITOR", editor.as_str()),
        ("VIEWER", viewer.as_str()),
        ("SECRET", support::SECRET),
        ("SHOTS", shots.as_str()),
        ("REVOKABLE", revokable.as_str()),
        ("REVOKE", revoke.as_str()),
        // The revoke command reads the same configuration, which names the hosted engine's key.
        ("TEST_OPENAI_KEY", support::tts::OPENAI_KEY),
    ];
    let (ok, output) = run_bounded(
        "node",
        &["tests/browser/workspace.mjs"],
        &env,
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
        Duration::from_secs(300),
    )
    .await;
    assert!(ok, "{output}\n--- host logs ---\n{}", host.logs());
    assert!(output.contains("browser: all steps passed"), "{output}");
    // Listening on the hosted engine's source was asked about and declined: nothing was sent.
    assert!(openai.calls().is_empty(), "{} calls", openai.calls().len());
    for shot in [
        "1-sign-in",
        "2-templates",
        "2b-templates-fields",
        "2c-templates-draft",
        "4c-renders-table",
        "4d-render-captions",
        "4-renders-done",
        "5-renders-awaiting-approval",
        "7-costs",
        "9-viewer-templates",
        "10-phone-templates",
        "10-phone-renders",
        "10-phone-costs",
        "10-phone-renders-table",
        "10-phone-render-page",
        "10-phone-sign-in",
    ] {
        let png = std::fs::read(format!("{shots}/{shot}.png")).unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5_000,
            "{shot}.png"
        );
    }
    // What the browser did happened: a template version by the editor, a render approved.
    let actions = audit_actions(&host).await;
    for action in [
        "template-save",
        "template-draft",
        "approve",
        "captions-edit",
    ] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_in_a_bounded_run() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &config(dir.path(), &cms)).await;
    let body = published(
        "post-1",
        "Spring collection",
        "<p>Our spring collection is here.</p>",
    );
    assert_eq!(
        host.post_signed("blog", "msg_1", now_secs(), &body)
            .await
            .status(),
        202
    );
    let document = format!("{}/api/v1/openapi.json", host.url);
    let auth = format!("Authorization: Bearer {}", host.token);
    let args = [
        "-m",
        "schemathesis.cli",
        "run",
        &document,
        "--header",
        &auth,
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "25",
        "--max-time",
        "120",
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--seed",
        "15",
        // An endless event stream is not a request/response pair to fuzz.
        "--exclude-path",
        "/api/v1/renders/stream",
    ];
    let (ok, output) = run_bounded(
        "python3",
        &args,
        &[("NO_COLOR", "1")],
        // Its example database and cache go to the test's folder, not the checkout.
        dir.path(),
        Duration::from_secs(420),
    )
    .await;
    assert!(ok, "{output}\n--- host logs ---\n{}", host.logs());
    assert!(!output.contains("Server error"), "{output}");
    // Its summary, for `--nocapture` runs (the README quotes one).
    let summary: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
    println!("{}", summary[summary.len().saturating_sub(25)..].join("\n"));
    assert!(!host.logs().contains("panicked"), "{}", host.logs());
}
