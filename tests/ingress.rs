//! Webhook ingress against the real binary: what is accepted, what is refused, with which status,
//! and that every refusal is logged with its reason and queues nothing.

mod support;

use std::time::Duration;

use support::{now_secs, published, Host};

async fn host(dir: &std::path::Path) -> Host {
    let config = format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"
max_body_bytes = 2048

[sources.blog]
cms = "standard-webhooks"
secret = "{secret}"
presenter_image = "{image}"

[sources.docs]
cms = "markdown"
folder = "{folder}"
"#,
        data = dir.join("data").display(),
        secret = support::SECRET,
        image = support::presenter_png().display(),
        folder = dir.display(),
    );
    Host::start(dir, &config).await
}

/// A host with the Standard Webhooks source `blog`; `top` goes before the source (top-level keys
/// and tables such as `[listener]`).
async fn blog_host(dir: &std::path::Path, top: &str) -> Host {
    let config = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{data}\"\n{top}\n\n\
         [sources.blog]\ncms = \"standard-webhooks\"\nsecret = \"{secret}\"\npresenter_image = \"{image}\"\n",
        data = dir.join("data").display(),
        secret = support::SECRET,
        image = support::presenter_png().display(),
    );
    Host::start(dir, &config).await
}

async fn post_raw(
    host: &Host,
    source: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/hooks/{source}", host.url))
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap()
}

/// Waits until `needle` shows in the host's log.
async fn assert_logged(host: &Host, needle: &str) {
    for _ in 0..50 {
        if host.logs().contains(needle) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("log does not mention {needle:?}:\n{}", host.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn accepts_once_and_answers_redeliveries_with_the_same_event() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let body = published("a-1", "Hello", "<p>World.</p>");
    let first = host.post_signed("blog", "msg_x", now_secs(), &body).await;
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(first["status"], "accepted");
    let second = host.post_signed("blog", "msg_x", now_secs(), &body).await;
    assert_eq!(second.status(), 200);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(second["event_id"], first["event_id"]);
    assert_eq!(second["status"], "duplicate");
    assert_eq!(host.renders().await.len(), 1, "one render for one event");

    // Changed content under the same entry is new work.
    let edited = published("a-1", "Hello", "<p>World, edited.</p>");
    assert_eq!(
        host.post_signed("blog", "msg_y", now_secs(), &edited)
            .await
            .status(),
        202
    );
    assert_eq!(host.renders().await.len(), 2);

    // Other event types are acknowledged and ignored.
    let deleted = r#"{"type":"content.deleted","data":{"id":"a-1"}}"#;
    let ignored = host.post_signed("blog", "msg_z", now_secs(), deleted).await;
    assert_eq!(ignored.status(), 200);
    assert_eq!(
        ignored.json::<serde_json::Value>().await.unwrap()["status"],
        "ignored"
    );
    assert_eq!(host.renders().await.len(), 2);
}

/// Revision order with Standard Webhooks: revision 2 after revision 1, then revision 1 again
/// (a sender's late retry with a new webhook id, and the same signed message replayed): both
/// `200 {"status": "stale"}`, nothing stored or queued.
#[tokio::test(flavor = "multi_thread")]
async fn an_older_revision_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let at = |revision: i64, body: &str| {
        serde_json::json!({"type": "content.published", "timestamp": "2026-11-25T10:00:00Z",
            "data": {"id": "rev-1", "title": "Prices", "body_html": body, "locale": "en-US",
                     "revision": revision}})
        .to_string()
    };
    let first = at(1, "<p>Prices fell.</p>");
    let ts = now_secs();
    assert_eq!(
        host.post_signed("blog", "msg_r1", ts, &first)
            .await
            .status(),
        202
    );
    assert_eq!(
        host.post_signed("blog", "msg_r2", now_secs(), &at(2, "<p>Prices rose.</p>"))
            .await
            .status(),
        202
    );
    for (id, ts) in [("msg_r1_retry", now_secs()), ("msg_r1", ts)] {
        let late = host.post_signed("blog", id, ts, &first).await;
        assert_eq!(late.status(), 200, "{id}");
        let said: serde_json::Value = late.json().await.unwrap();
        assert_eq!(said["status"], "stale", "{id}: {said}");
    }
    assert_eq!(host.renders().await.len(), 2, "nothing queued");
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_bad_signatures_stale_timestamps_and_missing_headers_with_401() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let body = published("a-2", "Hello", "<p>World.</p>");

    // Signed with another secret.
    let other =
        vidhook::cms::standard_webhooks::Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .unwrap();
    let ts = now_secs();
    let forged = vec![
        ("content-type", "application/json".to_string()),
        ("webhook-id", "msg_f".to_string()),
        ("webhook-timestamp", ts.to_string()),
        (
            "webhook-signature",
            other.sign("msg_f", ts, body.as_bytes()),
        ),
    ];
    assert_eq!(
        post_raw(&host, "blog", &forged, body.clone().into_bytes())
            .await
            .status(),
        401
    );
    assert_logged(&host, "no valid v1 signature").await;

    // A body changed after signing.
    let mut tampered = forged.clone();
    let secret = vidhook::cms::standard_webhooks::Secret::parse(support::SECRET).unwrap();
    tampered[3].1 = secret.sign("msg_f", ts, body.as_bytes());
    let changed = body.replace("World", "Tampered");
    assert_eq!(
        post_raw(&host, "blog", &tampered, changed.into_bytes())
            .await
            .status(),
        401
    );

    // Six minutes old: outside the five-minute tolerance.
    let stale = host
        .post_signed("blog", "msg_s", now_secs() - 360, &body)
        .await;
    assert_eq!(stale.status(), 401);
    assert!(stale.text().await.unwrap().contains("tolerance"));
    assert_logged(&host, "outside the 300 s tolerance").await;

    let unsigned = vec![("content-type", "application/json".to_string())];
    assert_eq!(
        post_raw(&host, "blog", &unsigned, body.into_bytes())
            .await
            .status(),
        401
    );
    assert_logged(&host, "missing webhook-id header").await;

    assert!(host.renders().await.is_empty(), "nothing queued");
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_malformed_json_400_oversized_413_unknown_source_404() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;

    let malformed = host
        .post_signed(
            "blog",
            "msg_m",
            now_secs(),
            "{\"type\": \"content.published\", ",
        )
        .await;
    assert_eq!(malformed.status(), 400);
    assert_logged(&host, "not a Standard Webhooks JSON payload").await;

    let missing_title = r#"{"type":"content.published","data":{"id":"x"}}"#;
    assert_eq!(
        host.post_signed("blog", "msg_t", now_secs(), missing_title)
            .await
            .status(),
        400
    );

    let huge = published("a-3", "Big", &"<p>word </p>".repeat(400));
    assert!(huge.len() > 2048);
    let too_large = host.post_signed("blog", "msg_l", now_secs(), &huge).await;
    assert_eq!(too_large.status(), 413);
    assert_logged(&host, "body over the size limit").await;

    assert_eq!(
        host.post_signed("nope", "msg_n", now_secs(), "{}")
            .await
            .status(),
        404
    );
    assert_logged(&host, "unknown source").await;
    // A Markdown folder is published with `vidhook publish`, not by webhook.
    assert_eq!(
        host.post_signed("docs", "msg_d", now_secs(), "{}")
            .await
            .status(),
        404
    );

    assert!(host.renders().await.is_empty(), "nothing queued");
}

/// Precise answers at the edges: a folder under /media is not media; approving a render that
/// does not exist is 404, not 409; an approval without the token is refused before its body is
/// read (a large body does not help).
#[tokio::test(flavor = "multi_thread")]
async fn edges_answer_precisely_and_the_token_comes_before_the_body() {
    let dir = tempfile::tempdir().unwrap();
    let host = blog_host(
        dir.path(),
        "[plugins]\nadmin_token = \"admin-token-0123456789\"",
    )
    .await;
    std::fs::create_dir_all(dir.path().join("data/media/videos")).unwrap();
    let client = reqwest::Client::new();
    let folder = client
        .get(format!("{}/media/videos/", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(folder.status(), 404);
    let unknown = client
        .post(format!(
            "{}/api/v1/renders/no-such-render/approve",
            host.url
        ))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // 8 MiB declared, 1 KiB sent: the 401 comes without the server waiting for the rest.
    let answer = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = host.url.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /api/v1/renders/no-such-render/approve HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            8 << 20
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&[b'x'; 1024]).await.unwrap();
        let mut answer = vec![0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut answer))
            .await
            .expect("answered without the body")
            .unwrap();
        String::from_utf8_lossy(&answer[..read]).to_string()
    };
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let oversized = client
        .post(format!(
            "{}/api/v1/renders/no-such-render/approve",
            host.url
        ))
        .bearer_auth("admin-token-0123456789")
        .body(vec![b'x'; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(oversized.status(), 413, "the approval body is capped");
}

/// Every `/api` route needs a token and its role decides: 401 without one, 403 below the role,
/// viewers never see signed parameters; tokens are made, listed and revoked with the CLI, and
/// `/metrics` can be put behind a token.
#[tokio::test(flavor = "multi_thread")]
async fn api_tokens_have_roles_and_viewers_see_no_signed_urls() {
    let dir = tempfile::tempdir().unwrap();
    let host = blog_host(dir.path(), "metrics_need_token = true").await;
    let cfg = dir.path().join("vidhook.toml");
    let cfg = cfg.to_str().unwrap();
    let create = |role: &'static str, name: &'static str| async move {
        support::vidhook(&[
            "--config", cfg, "tokens", "create", "--role", role, "--name", name,
        ])
        .await
        .trim()
        .to_string()
    };
    let viewer = create("viewer", "wall-screen").await;
    let editor = create("editor", "desk").await;
    let body = published("r-1", "Hello", "<p>World.</p>");
    assert_eq!(
        host.post_signed("blog", "msg_r1", now_secs(), &body)
            .await
            .status(),
        202
    );
    host.wait_for_state("done", Duration::from_secs(60)).await;

    let client = reqwest::Client::new();
    let get = |path: &str, token: Option<&str>| {
        let mut request = client.get(format!("{}{path}", host.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(get("/api/v1/renders", None).await.unwrap().status(), 401);
    assert_eq!(
        get("/api/v1/renders", Some("vht_0_x"))
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(get("/metrics", None).await.unwrap().status(), 401);
    assert_eq!(get("/metrics", Some(&viewer)).await.unwrap().status(), 200);

    // What a viewer reads has no signatures; the admin's has them.
    let id = host.renders().await[0]["render"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let seen = get(&format!("/api/v1/renders/{id}"), Some(&viewer))
        .await
        .unwrap();
    assert_eq!(seen.status(), 200);
    let seen = seen.text().await.unwrap();
    assert!(
        seen.contains("sig=redacted") && !seen.contains("sig=0"),
        "{seen}"
    );
    let full = serde_json::to_string(&host.render(&id).await).unwrap();
    assert!(full.contains("sig=") && !full.contains("sig=redacted"));

    // An operator action takes a reason; an approval a note.
    let post = |path: String, token: &str| {
        let body = if path.ends_with("/approve") {
            serde_json::json!({"note": "test"})
        } else {
            serde_json::json!({"reason": "test"})
        };
        client
            .post(format!("{}{path}", host.url))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let approve = format!("/api/v1/renders/{id}/approve");
    let retry = format!("/api/v1/renders/{id}/retry");
    assert_eq!(post(approve.clone(), &viewer).await.unwrap().status(), 403);
    assert_eq!(
        post(approve, &editor).await.unwrap().status(),
        409,
        "not awaiting approval"
    );
    assert_eq!(post(retry.clone(), &editor).await.unwrap().status(), 403);
    assert_eq!(
        post(retry, &host.token).await.unwrap().status(),
        409,
        "done: nothing to retry"
    );
    assert_eq!(
        get("/api/v1/audit", Some(&editor)).await.unwrap().status(),
        403
    );

    let listed = support::vidhook(&["--config", cfg, "tokens", "list"]).await;
    assert!(
        listed.contains("wall-screen") && listed.contains("viewer"),
        "{listed}"
    );
    assert!(!listed.contains(&viewer), "tokens are never shown again");
    support::vidhook(&["--config", cfg, "tokens", "revoke", "wall-screen"]).await;
    assert_eq!(
        get("/api/v1/renders", Some(&viewer))
            .await
            .unwrap()
            .status(),
        401
    );
}

/// A slowloris attack (bounded, loopback): 1,500 connections that never finish their headers,
/// 300 that send headers and trickle a body to /hooks, 300 that connect and say nothing — past
/// the connection cap. `/healthz` and a signed CMS delivery still answer within a second: idle
/// and header-trickling connections are closed to make room, and the webhook in-flight cap counts
/// only authenticated work.
#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_cannot_lock_out_a_cms() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let host = blog_host(
        dir.path(),
        "max_inflight_webhooks = 100\n\n[listener]\nmax_connections = 600",
    )
    .await;
    let addr = host.url.trim_start_matches("http://").to_string();
    let mut attackers = Vec::new();
    // The attacker is not the CMS: it connects from another address (127.0.0.2) than the
    // deliveries below (127.0.0.1). Each address is capped on its own (`[listener]
    // max_connections_per_address`), so one that floods crowds out only itself.
    let from: std::net::SocketAddr = "127.0.0.2:0".parse().unwrap();
    for n in 0..2100 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(from).unwrap();
        let Ok(mut stream) = socket.connect(addr.parse().unwrap()).await else {
            continue; // refused or reset: the listener is shedding, which is its job
        };
        let bytes: &[u8] = match n % 7 {
            0 => b"",
            1 | 2 => b"POST /hooks/blog HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":",
            _ => b"POST /hooks/blog HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        };
        let _ = stream.write_all(bytes).await;
        attackers.push(stream);
    }
    assert!(
        attackers.len() > 1500,
        "the attack opened {} connections",
        attackers.len()
    );

    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let health = client
        .get(format!("{}/healthz", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "healthz took {:?}",
        started.elapsed()
    );

    let started = std::time::Instant::now();
    let body = published("under-attack", "Hello", "<p>World.</p>");
    let delivered = host
        .post_signed("blog", "msg_attack", now_secs(), &body)
        .await;
    assert_eq!(delivered.status(), 202, "{}", host.logs());
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "delivery took {:?}",
        started.elapsed()
    );
    drop(attackers);
}

/// A flood of forged deliveries: each is refused (401) and counted in the metrics, but the log
/// gets a bounded number of lines, not one per request.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_rejections_is_counted_not_logged_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path()).await;
    let other =
        vidhook::cms::standard_webhooks::Secret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .unwrap();
    let body = published("flood", "Hello", "<p>World.</p>");
    let started = std::time::Instant::now();
    for n in 0..600 {
        let id = format!("msg_flood_{n}");
        let ts = now_secs();
        let headers = vec![
            ("content-type", "application/json".to_string()),
            ("webhook-id", id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", other.sign(&id, ts, body.as_bytes())),
        ];
        let status = post_raw(&host, "blog", &headers, body.clone().into_bytes())
            .await
            .status();
        assert_eq!(status, 401);
    }
    let seconds = started.elapsed().as_secs() + 1;
    let lines = host.logs().matches("webhook rejected").count() as u64;
    assert!(
        lines <= 20 + 10 * seconds + 5,
        "{lines} lines in {seconds} s"
    );
    let metrics = host.metrics().await;
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("vidhook_cms_webhooks_total") && l.contains("unauthorized"))
        .unwrap_or_default();
    assert!(refused.ends_with(" 600"), "{refused}");
    assert!(
        metrics.contains("vidhook_log_lines_suppressed_total"),
        "{metrics}"
    );
}

/// A source over its delivery rate is answered 429 with `Retry-After` (authenticated deliveries
/// only: a forged one is 401 and spends nothing of the source's allowance).
#[tokio::test(flavor = "multi_thread")]
async fn a_source_over_its_rate_gets_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let host = blog_host(
        dir.path(),
        "[listener]\ndeliveries_per_source_per_second = 2",
    )
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for n in 0..10 {
        let body = published(&format!("rate-{n}"), "Hello", "<p>World.</p>");
        let response = host
            .post_signed("blog", &format!("msg_rate_{n}"), now_secs(), &body)
            .await;
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
        }
        statuses.push(response.status().as_u16());
    }
    assert!(
        statuses.iter().filter(|s| **s == 202).count() >= 4,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1));
}
