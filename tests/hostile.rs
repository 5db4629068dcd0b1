//! The hostile suite: each attack an outside probe made on the service, against the real binary,
//! as a test that failed on the code before this suite. Viewers' and editors' templates, CMS
//! HTML, slow clients, large diffs, swapped media, unapproved previews, token guessing and odd
//! content — each must fail its own request or render, never the process, and leave room for
//! the signed deliveries and `/healthz` beside it. The soak at the end runs them all at once.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::cms::Cms;
use support::workspace::call;
use support::{now_secs, published, Host};
use tokio::io::AsyncWriteExt;

/// A self-including inline partial: unbounded recursion.
const RECURSIVE: &str = r#"{{#*inline "a"}}{{> a}}{{/inline}}{{> a}}"#;

/// `levels` nested partials, each including the one below twice: 2^levels expansions from a
/// template of about 60 bytes a level.
fn doubling(levels: usize) -> String {
    let mut body = String::from(r#"{{#*inline "p0"}}x{{/inline}}"#);
    for n in 1..=levels {
        body.push_str(&format!(
            r#"{{{{#*inline "p{n}"}}}}{{{{> p{m}}}}}{{{{> p{m}}}}}{{{{/inline}}}}"#,
            m = n - 1
        ));
    }
    body.push_str(&format!("{{{{> p{levels}}}}}"));
    body
}

/// 14,000 nested list items (112 KB): the CMS author's stall.
fn nested_html() -> String {
    "<ul><li>".repeat(14_000) + "deep"
}

async fn start(dir: &std::path::Path, extra: &str) -> (Host, Cms) {
    let cms = Cms::start().await;
    let config = support::workspace::config(dir, &cms) + extra;
    (Host::start(dir, &config).await, cms)
}

/// `GET /healthz`, with how long it took (a failure counts as forever).
async fn health(client: &reqwest::Client, host: &str) -> Duration {
    let started = Instant::now();
    match client
        .get(format!("{host}/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(r) if r.status() == StatusCode::OK => started.elapsed(),
        other => {
            eprintln!("/healthz failed: {other:?}");
            Duration::MAX
        }
    }
}

/// A client for `/healthz` probes: a new connection for each, so a probe measures whether the
/// server answers, not whether a kept-alive connection it closed as idle (as a flood makes it do)
/// happened to be reused at that moment.
fn probe_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Polls `/healthz` every 100 ms until `stop`; returns the slowest answer.
fn watch_health(host: &str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Duration> {
    let host = host.to_string();
    tokio::spawn(async move {
        let client = probe_client();
        let mut worst = Duration::ZERO;
        while !stop.load(Ordering::SeqCst) {
            worst = worst.max(health(&client, &host).await);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worst
    })
}

/// The host's resident memory now and at its peak, in MB (from `/proc`).
fn rss_mb(host: &Host) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{}/status", host.pid())).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn preview_body(template: &str) -> Value {
    json!({"source": "blog", "template": "script", "body": template,
           "content": {"title": "T", "body": "Body text."}})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recursive_template_fails_its_preview_its_save_and_its_render_never_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, _cms) = start(dir.path(), "").await;
    let viewer = host.token_for("viewer").await;
    let editor = host.token_for("editor").await;

    let (status, _, problem) = call(
        &host,
        Method::POST,
        "/api/v1/preview",
        Some(&viewer),
        Some(preview_body(RECURSIVE)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("nests too deeply"),
        "{problem}"
    );
    assert!(host.alive(), "the process survived:\n{}", host.logs());

    // Saving it is refused: the test render runs before the save.
    let (status, _, problem) = call(
        &host,
        Method::POST,
        "/api/v1/templates/script/versions",
        Some(&editor),
        Some(json!({"body": RECURSIVE})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");

    // One already stored (by an older version of vidhook, say) fails the renders that use it,
    // as a template failure, and a restart does not crash on it.
    let store = vidhook::store::Store::connect(
        &support::database_url(dir.path()).await,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    store
        .save_template("script", RECURSIVE, Default::default())
        .await
        .unwrap();
    let response = host
        .post_signed(
            "blog",
            "msg_rec",
            now_secs(),
            &published("rec-1", "Hi", "<p>Body.</p>"),
        )
        .await;
    assert_eq!(response.status(), 202);
    let failed = host.wait_for_state("failed", Duration::from_secs(60)).await;
    assert_eq!(failed["error_category"], "template", "{failed}");
    assert!(host.alive());
    let (code, logs) = host.terminate(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "{logs}");
    let config = std::fs::read_to_string(dir.path().join("vidhook.toml")).unwrap();
    let mut again = Host::start(dir.path(), &config).await;
    assert!(health(&reqwest::Client::new(), &again.url).await < Duration::from_secs(1));
    assert!(again.alive());
}

#[tokio::test(flavor = "multi_thread")]
async fn doubling_partials_time_out_while_the_service_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, _cms) = start(dir.path(), "").await;
    let viewer = host.token_for("viewer").await;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_health(&host.url, stop.clone());
    let template = doubling(24);
    assert!(template.len() < 2_000);
    let started = Instant::now();
    let previews: Vec<_> = (0..2)
        .map(|_| {
            let (url, viewer, template) = (host.url.clone(), viewer.clone(), template.clone());
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(format!("{url}/api/v1/preview"))
                    .bearer_auth(viewer)
                    .json(&preview_body(&template))
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for preview in previews {
        let response = preview.await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("time budget")
                || problem["detail"].as_str().unwrap().contains("longer than"),
            "{problem}"
        );
    }
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let worst = watcher.await.unwrap();
    assert!(took < Duration::from_secs(10), "the previews took {took:?}");
    assert!(
        worst < Duration::from_secs(1),
        "/healthz took {worst:?} during the previews"
    );
    assert!(host.alive());
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_cms_html_is_read_without_stalling_anyone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, _cms) = start(dir.path(), "").await;
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_health(&host.url, stop.clone());
    let deliveries: Vec<_> = (0..2)
        .map(|n| {
            let body = published(&format!("nested-{n}"), "Nested", &nested_html());
            let id = format!("msg_nested_{n}");
            let url = host.url.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let status = support::sign_and_post(&url, "blog", &id, now_secs(), &body)
                    .await
                    .status();
                (status, started.elapsed())
            })
        })
        .collect();
    for delivery in deliveries {
        let (status, took) = delivery.await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "{}", host.logs());
        assert!(took < Duration::from_secs(1), "the delivery took {took:?}");
    }
    stop.store(true, Ordering::SeqCst);
    let worst = watcher.await.unwrap();
    assert!(worst < Duration::from_secs(1), "/healthz took {worst:?}");
    assert!(host.alive());
}

/// Opens `count` connections from `from` that each send a request head and then trickle a
/// 4,000-byte body, one byte every `every`, until dropped.
async fn slow_bodies(
    addr: &str,
    from: std::net::IpAddr,
    count: usize,
    path: &str,
    every: Duration,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut trickles = Vec::new();
    for _ in 0..count {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        if socket.bind(std::net::SocketAddr::new(from, 0)).is_err() {
            continue;
        }
        let Ok(mut stream) = socket.connect(addr.parse().unwrap()).await else {
            continue; // refused or reset: the listener is shedding, which is its job
        };
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{{"
        );
        trickles.push(tokio::spawn(async move {
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(every).await;
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
            }
        }));
    }
    trickles
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_bodies_from_many_addresses_cannot_lock_out_deliveries_or_healthz() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, _cms) = start(
        dir.path(),
        "\n[listener]\nmax_connections = 600\nmax_connections_per_address = 100\nbody_read_timeout_secs = 4\n",
    )
    .await;
    let addr = host.url.trim_start_matches("http://").to_string();
    let mut attack = Vec::new();
    // 1,200 trickling bodies (twice the cap) from 12 addresses, on a delivery route and sign-in.
    for n in 0..12u8 {
        let from = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, n + 1));
        let path = if n % 2 == 0 {
            "/hooks/blog"
        } else {
            "/api/v1/session"
        };
        attack.extend(slow_bodies(&addr, from, 100, path, Duration::from_secs(1)).await);
    }
    assert!(
        attack.len() > 900,
        "the attack opened {} connections",
        attack.len()
    );
    let client = probe_client();
    for n in 0..10 {
        let took = health(&client, &host.url).await;
        assert!(took < Duration::from_secs(1), "/healthz took {took:?}");
        let started = Instant::now();
        let body = published(&format!("slow-{n}"), "Hello", "<p>World.</p>");
        let status = host
            .post_signed("blog", &format!("msg_slow_{n}"), now_secs(), &body)
            .await
            .status();
        assert_eq!(status, StatusCode::ACCEPTED, "{}", host.logs());
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "delivery took {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for trickle in attack {
        trickle.abort();
    }
    assert!(host.alive());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_has_a_total_deadline_not_an_idle_timer() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _cms) = start(dir.path(), "\n[listener]\nbody_read_timeout_secs = 2\n").await;
    let addr = host.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"POST /hooks/blog HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n{")
        .await
        .unwrap();
    let started = Instant::now();
    // A byte every 500 ms: an idle timer of 2 s would never fire.
    let answer = async {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 4096];
        let mut said = Vec::new();
        loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return said,
                    Ok(n) => {
                        said.extend_from_slice(&buf[..n]);
                        if said.windows(4).any(|w| w == b"\r\n\r\n") {
                            return said;
                        }
                    }
                },
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if stream.write_all(b" ").await.is_err() {
                        return said;
                    }
                }
            }
        }
    };
    let said = tokio::time::timeout(Duration::from_secs(10), answer)
        .await
        .unwrap();
    let took = started.elapsed();
    let said = String::from_utf8_lossy(&said);
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(took < Duration::from_secs(4), "answered after {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_are_limited_per_token() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _cms) = start(dir.path(), "").await;
    let viewer = host.token_for("viewer").await;
    let client = reqwest::Client::new();
    let mut open = Vec::new();
    for _ in 0..4 {
        let response = client
            .get(format!("{}/api/v1/renders/stream", host.url))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        open.push(response);
    }
    let fifth = client
        .get(format!("{}/api/v1/renders/stream", host.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(fifth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(fifth.headers().contains_key("retry-after"));
    // Another token is not held back, and closing one stream frees its slot.
    let other = host.token_for("viewer").await;
    let response = client
        .get(format!("{}/api/v1/renders/stream", host.url))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(open.pop());
    let mut freed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let again = client
            .get(format!("{}/api/v1/renders/stream", host.url))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        if again.status() == StatusCode::OK {
            freed = true;
            break;
        }
    }
    assert!(freed, "a closed stream gave its slot back");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_diff_of_two_large_versions_is_quick_and_small() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _cms) = start(dir.path(), "").await;
    let editor = host.token_for("editor").await;
    let (_, peak_before) = rss_mb(&host);
    // 12,000 one-letter lines each (under the 64 KiB template cap), in two different orders.
    let lines = |step: usize| -> String {
        (0..12_000)
            .map(|i| format!("{}\n", (b'a' + ((i * step) % 26) as u8) as char))
            .collect()
    };
    let (from, to) = (lines(7), lines(11));
    for body in [&from, &to] {
        let (status, _, saved) = call(
            &host,
            Method::POST,
            "/api/v1/templates/outro/versions",
            Some(&editor),
            Some(json!({"body": body})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{saved}");
    }
    let started = Instant::now();
    let (status, _, diff) = call(
        &host,
        Method::GET,
        "/api/v1/templates/outro/diff?from=1&to=2",
        Some(&editor),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{diff}");
    // Correct whatever the budget cut: the kept and removed lines are `from`, the kept and
    // added ones `to`.
    let side = |ops: [&str; 2]| -> String {
        diff.as_array()
            .unwrap()
            .iter()
            .filter(|l| ops.contains(&l["op"].as_str().unwrap()))
            .map(|l| format!("{}\n", l["text"].as_str().unwrap()))
            .collect()
    };
    assert_eq!(side([" ", "-"]), from);
    assert_eq!(side([" ", "+"]), to);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (_, peak_after) = rss_mb(&host);
    assert!(
        peak_after - peak_before < 100.0,
        "the diff raised peak memory by {:.0} MB",
        peak_after - peak_before
    );
}

/// Serves a real PNG on the first request and an HLS playlist naming a local file on every
/// later one: what a check that fetched once and a tool that fetched again would disagree on.
async fn swapping_image_server() -> (String, Arc<AtomicU64>) {
    let served = Arc::new(AtomicU64::new(0));
    let count = served.clone();
    let png = std::fs::read(support::presenter_png()).unwrap();
    let router = axum::Router::new().route(
        "/photo.png",
        axum::routing::get(move || {
            let n = count.fetch_add(1, Ordering::SeqCst);
            let png = png.clone();
            async move {
                if n == 0 {
                    png
                } else {
                    b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
                        .to_vec()
                }
            }
        }),
    );
    (support::serve(router).await, served)
}

#[tokio::test(flavor = "multi_thread")]
async fn media_is_fetched_once_checked_and_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _cms) = start(dir.path(), "\n[checks]\nallow_plain_http = true\n").await;
    let (server, served) = swapping_image_server().await;
    let body = json!({
        "type": "content.published",
        "timestamp": "2026-11-25T10:00:00Z",
        "data": {"id": "swap-1", "title": "Swap", "body_html": "<p>A body.</p>", "locale": "en-US",
                 "revision": 1, "image_url": format!("{server}/photo.png")}
    })
    .to_string();
    let response = host
        .post_signed("blog", "msg_swap", now_secs(), &body)
        .await;
    assert_eq!(response.status(), 202);
    let failed = host.wait_for_state("failed", Duration::from_secs(60)).await;
    let error = failed["error"].as_str().unwrap().to_string();
    assert!(error.contains("image"), "{failed}");
    for leak in ["/tmp", "vidhook-preview", "EXTM3U", "passwd", "ffmpeg:"] {
        assert!(!error.contains(leak), "the error shows {leak:?}: {error}");
    }
    let detail = host.render(failed["id"].as_str().unwrap()).await;
    for step in detail["steps"].as_array().unwrap() {
        let detail = step["detail"].as_str().unwrap_or_default();
        assert!(!detail.contains("/tmp"), "{detail}");
    }
    // Checked once at the check step, and the preview's one fetch is checked again.
    assert_eq!(served.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn previews_awaiting_approval_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _cms) = start(dir.path(), "").await;
    let viewer = host.token_for("viewer").await;
    let editor = host.token_for("editor").await;
    let body = published("gated-1", "Gated", "<p>Waiting for an editor.</p>");
    assert_eq!(
        host.post_signed("gated", "msg_gated", now_secs(), &body)
            .await
            .status(),
        202
    );
    let waiting = host
        .wait_for_state("awaiting_approval", Duration::from_secs(60))
        .await;
    let id = waiting["id"].as_str().unwrap().to_string();

    let (_, _, seen) = call(
        &host,
        Method::GET,
        &format!("/api/v1/renders/{id}"),
        Some(&viewer),
        None,
    )
    .await;
    assert!(seen["render"]["preview_url"].is_null(), "{seen}");
    let text = seen.to_string();
    assert!(
        !text.contains("previews/") && !text.contains("preview-"),
        "a viewer reads {text}"
    );
    let (_, _, listed) = call(&host, Method::GET, "/api/v1/renders", Some(&viewer), None).await;
    assert!(!listed.to_string().contains("previews/"), "{listed}");

    let (_, _, shown) = call(
        &host,
        Method::GET,
        &format!("/api/v1/renders/{id}"),
        Some(&editor),
        None,
    )
    .await;
    let link = shown["render"]["preview_url"].as_str().unwrap().to_string();
    assert!(
        link.contains("/media/previews/") && link.contains("sig="),
        "{link}"
    );
    let expires: i64 = link
        .split("expires=")
        .nth(1)
        .and_then(|e| e.split('&').next())
        .and_then(|e| e.parse().ok())
        .unwrap();
    assert!(
        expires - now_secs() <= 15 * 60,
        "a short-lived link: {link}"
    );
    let video = reqwest::get(&link).await.unwrap();
    assert_eq!(video.status(), 200);
    let unsigned = link.split('?').next().unwrap().to_string();
    let refused = reqwest::get(&unsigned).await.unwrap().status();
    assert!(refused.is_client_error(), "unsigned: {refused}");
    let public = format!("{}/media/videos/preview-{id}.mp4", host.url);
    assert_eq!(reqwest::get(&public).await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_is_throttled_per_address_and_odd_content_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (host, _cms) = start(dir.path(), "").await;
    let client = reqwest::Client::new();
    let mut throttled = None;
    for n in 0..40 {
        let response = client
            .post(format!("{}/api/v1/session", host.url))
            .header("x-vidhook-csrf", "1")
            .json(&json!({"token": format!("guess-{n}")}))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some((n, response.headers().get("retry-after").cloned()));
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let (after, retry) = throttled.expect("guessing was throttled");
    assert!(after <= 21, "throttled only after {after} guesses");
    assert!(retry.is_some());
    // Another address is not held back by this one's guesses.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9)))
        .build()
        .unwrap();
    let response = other
        .post(format!("{}/api/v1/session", host.url))
        .header("x-vidhook-csrf", "1")
        .json(&json!({"token": "guess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    for (locale, kind) in [("<script>", "post"), ("en-US", "k".repeat(65).as_str())] {
        let body = json!({
            "type": "content.published", "timestamp": "2026-11-25T10:00:00Z",
            "data": {"id": "odd", "title": "Odd", "body_html": "<p>x</p>", "locale": locale,
                     "kind": kind, "revision": 1}
        })
        .to_string();
        let response = host
            .post_signed(
                "blog",
                &format!("msg_odd_{}", kind.len()),
                now_secs(),
                &body,
            )
            .await;
        assert_eq!(response.status(), 400, "{locale} {kind}");
    }
}

/// Every attack above at once, for a bounded time, beside a CMS delivering signed posts and a
/// monitor asking `/healthz`: every one answered within 1 s throughout, no exit, peak memory
/// within [`PEAK_RSS_MB`], and back within 2× of the start once the attack stops.
const PEAK_RSS_MB: f64 = 512.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_every_attack_at_once_beside_real_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let (mut host, _cms) = start(
        dir.path(),
        "\n[listener]\nmax_connections = 800\nmax_connections_per_address = 200\nbody_read_timeout_secs = 5\n",
    )
    .await;
    let viewer = host.token_for("viewer").await;
    let editor = host.token_for("editor").await;
    // Warm up (the first render compiles nothing, but the first requests allocate pools).
    let _ = call(
        &host,
        Method::POST,
        "/api/v1/preview",
        Some(&viewer),
        Some(preview_body("{{title}}")),
    )
    .await;
    let (rss_start, _) = rss_mb(&host);
    let stop = Arc::new(AtomicBool::new(false));
    let soak = Duration::from_secs(20);
    let addr = host.url.trim_start_matches("http://").to_string();

    let mut attackers = Vec::new();
    // Slow bodies from 4 addresses.
    for n in 0..4u8 {
        let from = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 2, n + 1));
        let path = if n % 2 == 0 {
            "/hooks/blog"
        } else {
            "/api/v1/session"
        };
        let trickles = slow_bodies(&addr, from, 200, path, Duration::from_secs(2)).await;
        attackers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(trickles);
        }));
    }
    // Template bombs, nested HTML, diffs and sign-in guesses, in loops until `stop`.
    let looping =
        |work: Arc<dyn Fn(u64) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync>| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    work(n).await;
                    n += 1;
                }
            })
        };
    let url = host.url.clone();
    let (v, e) = (viewer.clone(), editor.clone());
    for template in [RECURSIVE.to_string(), doubling(24)] {
        let (url, v) = (url.clone(), v.clone());
        attackers.push(looping(Arc::new(move |_| {
            let (url, v, template) = (url.clone(), v.clone(), template.clone());
            Box::pin(async move {
                let _ = reqwest::Client::new()
                    .post(format!("{url}/api/v1/preview"))
                    .bearer_auth(v)
                    .json(&preview_body(&template))
                    .send()
                    .await;
            })
        })));
    }
    {
        let url = url.clone();
        attackers.push(looping(Arc::new(move |n| {
            let url = url.clone();
            Box::pin(async move {
                let body = published(&format!("bomb-{n}"), "Nested", &nested_html());
                let _ = support::sign_and_post(
                    &url,
                    "blog",
                    &format!("msg_bomb_{n}"),
                    now_secs(),
                    &body,
                )
                .await;
            })
        })));
    }
    {
        let url = url.clone();
        let e = e.clone();
        attackers.push(looping(Arc::new(move |n| {
            let (url, e) = (url.clone(), e.clone());
            Box::pin(async move {
                let body: String = (0..12_000)
                    .map(|i| format!("{}\n", (b'a' + ((i * (n as usize + 3)) % 26) as u8) as char))
                    .collect();
                let client = reqwest::Client::new();
                let _ = client
                    .post(format!("{url}/api/v1/templates/outro/versions"))
                    .bearer_auth(&e)
                    .json(&json!({"body": body}))
                    .send()
                    .await;
                let _ = client
                    .get(format!(
                        "{url}/api/v1/templates/outro/diff?from=1&to={}",
                        n + 1
                    ))
                    .bearer_auth(&e)
                    .send()
                    .await;
            })
        })));
    }
    {
        let url = url.clone();
        attackers.push(looping(Arc::new(move |n| {
            let url = url.clone();
            Box::pin(async move {
                let _ = reqwest::Client::new()
                    .post(format!("{url}/api/v1/session"))
                    .header("x-vidhook-csrf", "1")
                    .json(&json!({"token": format!("guess-{n}")}))
                    .send()
                    .await;
            })
        })));
    }

    // The legitimate traffic: a signed delivery every 250 ms and /healthz every 100 ms.
    let health_watch = watch_health(&host.url, stop.clone());
    let started = Instant::now();
    let mut worst_delivery = Duration::ZERO;
    let mut delivered = 0;
    let mut peak_during: f64 = 0.0;
    while started.elapsed() < soak {
        let sent = Instant::now();
        let body = published(
            &format!("real-{delivered}"),
            "Real post",
            "<p>A real post.</p>",
        );
        let status = tokio::time::timeout(
            Duration::from_secs(5),
            host.post_signed("blog", &format!("msg_real_{delivered}"), now_secs(), &body),
        )
        .await
        .map(|r| r.status());
        assert_eq!(
            status.ok(),
            Some(StatusCode::ACCEPTED),
            "delivery {delivered} during the attack:\n{}",
            host.logs()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
        worst_delivery = worst_delivery.max(sent.elapsed());
        delivered += 1;
        peak_during = peak_during.max(rss_mb(&host).0);
        assert!(host.alive(), "the process exited:\n{}", host.logs());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for attacker in attackers {
        attacker.abort();
    }
    let worst_health = health_watch.await.unwrap();
    // Let in-flight attack work end (previews' deadlines, trickles' body deadline) and settle.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (rss_end, peak) = rss_mb(&host);
    println!(
        "soak: {delivered} signed deliveries, slowest {worst_delivery:?}; slowest /healthz \
         {worst_health:?}; RSS start {rss_start:.0} MB, peak {peak:.0} MB, after {rss_end:.0} MB"
    );
    assert!(
        worst_delivery < Duration::from_secs(1),
        "slowest delivery {worst_delivery:?}"
    );
    assert!(
        worst_health < Duration::from_secs(1),
        "slowest /healthz {worst_health:?}"
    );
    assert!(host.alive());
    assert!(peak < PEAK_RSS_MB, "peak RSS {peak:.0} MB");
    assert!(
        rss_end < rss_start * 2.0,
        "RSS {rss_end:.0} MB after the attack vs {rss_start:.0} MB before"
    );
}
