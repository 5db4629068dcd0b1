//! Secrets never leak (issue #12): full jobs — a success, a provider error, a CMS write-back
//! error, a plugin error and a plugin that reads its environment — run with known secret values
//! configured, then every captured log line, API answer, metric and plugin-visible value is
//! scanned for them.

mod support;

use std::time::Duration;

use support::seedance::{Fault, Seedance};
use support::{cms::Cms, now_secs, omnihuman_config, published, Host, SECRET};

const ADMIN: &str = "admin-secret-value-5b2f0c1e9a7d";
const MEDIA: &str = "media-secret-value-9c4e1a7b3d2f";
const HOOK: &str = "provider-hook-secret-value-7a1c";

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_appears_in_logs_answers_metrics_or_what_plugins_see() {
    let dir = tempfile::tempdir().unwrap();
    let seedance = Seedance::start(false).await;
    seedance.sign_webhooks_with(HOOK);
    seedance.push_fault(Fault::Invalid); // the first submit: a provider error
    let cms = Cms::start().await;
    let closed = format!("http://127.0.0.1:{}/gone", support::free_port());
    let config = omnihuman_config(dir.path(), &seedance, &cms, true, 600, 10).replace(
        "webhooks = true",
        &format!("webhooks = true\nwebhook_secret = \"{HOOK}\""),
    ) + &format!(
        r#"
[media]
signing_secret = "{MEDIA}"

[plugins]
admin_token = "{ADMIN}"

[sources.broken]
cms = "standard-webhooks"
secret = "{SECRET}"
writeback_url = "{closed}"
presenter_image = "{image}"

[sources.nosy]
cms = "standard-webhooks"
secret = "{SECRET}"
presenter_image = "{image}"
plugins = [{{ name = "hostile", config = {{ behaviour = "env" }} }}]

[sources.crashy]
cms = "standard-webhooks"
secret = "{SECRET}"
presenter_image = "{image}"
plugins = [{{ name = "hostile", config = {{ behaviour = "panic" }} }}]
"#,
        image = support::presenter_png().display(),
    );
    let config = config.replace("[retry]\n", "[retry]\nmax_attempts = 2\n");
    // The host writes its config (with the test database); the plugin goes into that database
    // while it runs, and serves the next event.
    let host = Host::start(dir.path(), &config).await;
    let cfg = dir.path().join("vidhook.toml");
    support::install_hostile(&cfg).await;

    let publish = |source: &'static str, id: &'static str| {
        let body = published(id, "Quarterly results", "<p>Revenue rose.</p>");
        let host = &host;
        async move {
            let status = host
                .post_signed(source, &format!("msg_{source}_{id}"), now_secs(), &body)
                .await
                .status();
            assert_eq!(status, 202, "{source}");
        }
    };
    publish("blog", "rejected-by-provider").await; // takes the Fault::Invalid
    wait_for(&host, "rejected-by-provider", "failed").await;
    publish("blog", "fine").await;
    wait_for(&host, "fine", "done").await;
    publish("broken", "write-back-fails").await;
    wait_for(&host, "write-back-fails", "writeback_failed").await;
    publish("nosy", "reads-env").await;
    wait_for(&host, "reads-env", "skipped").await;
    publish("crashy", "panics").await;
    wait_for(&host, "panics", "failed").await;

    let mut seen = vec![host.logs()];
    let renders = host.renders().await;
    seen.push(serde_json::to_string(&renders).unwrap());
    for render in &renders {
        let id = render["render"]["id"].as_str().unwrap();
        seen.push(serde_json::to_string(&host.render(id).await).unwrap());
    }
    seen.push(serde_json::to_string(&host.api("/api/v1/audit").await).unwrap());
    seen.push(serde_json::to_string(&host.api("/api/v1/plugins").await).unwrap());
    seen.push(host.metrics().await);
    let cfg = cfg.to_str().unwrap();
    seen.push(support::vidhook(&["--config", cfg, "jobs"]).await);
    for render in &renders {
        let id = render["render"]["id"].as_str().unwrap();
        seen.push(support::vidhook(&["--config", cfg, "jobs", "show", id]).await);
    }
    let whsec_key = SECRET.trim_start_matches("whsec_");
    for secret in [
        support::seedance::API_KEY,
        SECRET,
        whsec_key,
        ADMIN,
        MEDIA,
        HOOK,
        &host.token,
    ] {
        for text in &seen {
            assert!(!text.contains(secret), "{secret} leaked in:\n{text}");
        }
    }
    // What the nosy plugin saw of its environment is in the render's history: nothing.
    let nosy = renders.iter().find(|r| r["entry"] == "reads-env").unwrap();
    let steps = host.render(nosy["render"]["id"].as_str().unwrap()).await;
    assert!(
        serde_json::to_string(&steps).unwrap().contains("env: []"),
        "{steps}"
    );
}

async fn wait_for(host: &Host, entry: &str, state: &str) {
    for _ in 0..600 {
        let renders = host.renders().await;
        if renders
            .iter()
            .any(|r| r["entry"] == entry && r["render"]["state"] == state)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{entry} did not reach {state}:\n{}", host.logs());
}
