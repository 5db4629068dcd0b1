//! The editors' workspace API: `/api/v1` documented by the OpenAPI document it serves, errors as
//! RFC 9457 problems, roles, cookie sessions safe from CSRF, templates and their preview through
//! the real chain, the live render stream. The real binary on a random port, a fresh database per
//! test, the local preview provider ($0) and espeak-ng. (The browser and the fuzzer:
//! `tests/workspace_browser.rs`.)

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::workspace::{audit_actions, call, config};
use support::{cms::Cms, now_secs, published, Host};

/// `{param}` → `*`, so a path with values and a documented path compare.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push('*');
            }
            '}' => inside = false,
            _ if !inside => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_route_is_served_and_gated_and_the_page_calls_only_documented_ones() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &config(dir.path(), &cms)).await;

    let (status, _, document) = call(&host, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            documented.insert((method.to_string(), shape(path)));
            let open = operation["security"]
                .as_array()
                .is_some_and(|s| s.iter().all(|r| r.as_object().unwrap().is_empty()));
            let concrete = path
                .replace("{version}", "1")
                .replace('{', "x")
                .replace('}', "");
            let (status, kind, body) = call(&host, method.clone(), &concrete, None, None).await;
            // Routed: never 404/405 for the route itself, never a server error.
            assert!(
                !status.is_server_error() && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {status} {body}"
            );
            if open {
                assert_ne!(status, StatusCode::NOT_FOUND, "{method} {path}");
            } else {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} is gated: {body}"
                );
                assert_eq!(kind, "application/problem+json", "{method} {path}");
                assert_eq!(body["status"], 401);
                assert!(
                    operation["responses"]["401"].is_object(),
                    "{method} {path} documents 401"
                );
            }
            assert!(
                operation["summary"].is_string(),
                "{method} {path} has a summary"
            );
        }
    }
    // What the issue asks the API to cover, each documented (and so served, checked above).
    for (method, path) in [
        ("GET", "/api/v1/sources"),
        ("GET", "/api/v1/templates"),
        ("GET", "/api/v1/templates/*/versions"),
        ("GET", "/api/v1/templates/*/diff"),
        ("POST", "/api/v1/templates/*/versions"),
        ("POST", "/api/v1/templates/*/rollback"),
        ("POST", "/api/v1/preview"),
        ("POST", "/api/v1/preview/narration"),
        ("GET", "/api/v1/templates/drafts"),
        ("PUT", "/api/v1/templates/*/draft"),
        ("DELETE", "/api/v1/templates/*/draft"),
        ("GET", "/api/v1/plugins"),
        ("POST", "/api/v1/plugins"),
        ("PUT", "/api/v1/sources/*/plugins/*"),
        ("GET", "/api/v1/renders"),
        ("GET", "/api/v1/renders/*"),
        ("GET", "/api/v1/renders/stream"),
        ("POST", "/api/v1/renders/*/approve"),
        ("POST", "/api/v1/renders/*/reject"),
        ("POST", "/api/v1/renders/*/*"),
        ("GET", "/api/v1/costs"),
    ] {
        assert!(
            documented.contains(&(method.to_string(), path.to_string())),
            "{method} {path}"
        );
    }

    // Every API call the page makes (in any of the scripts it loads) is to a documented route.
    let page = reqwest::get(&host.url).await.unwrap().text().await.unwrap();
    let mut script = String::new();
    for src in page.split("<script src=\"").skip(1) {
        let path = src.split('"').next().unwrap();
        let answer = reqwest::get(format!("{}{path}", host.url)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        script.push_str(&answer.text().await.unwrap());
    }
    let mut called = 0;
    for (at, _) in script.match_indices("api(") {
        let rest = &script[at + 4..];
        let Some(quote) = rest.chars().next().filter(|c| "`\"".contains(*c)) else {
            continue;
        };
        let literal = &rest[1..rest[1..].find(quote).unwrap() + 1];
        let path = format!(
            "/api/v1{}",
            literal.split('?').next().unwrap().replace("${", "{")
        );
        let wanted = shape(&path);
        assert!(
            documented.iter().any(|(_, p)| *p == wanted),
            "the page calls {literal}, which the OpenAPI document does not list"
        );
        called += 1;
    }
    assert!(
        called >= 10,
        "found {called} API calls in the page's scripts"
    );

    // The pre-v1 routes are gone, with a problem saying where the API went.
    let (status, kind, body) =
        call(&host, Method::GET, "/api/renders", Some(&host.token), None).await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(kind, "application/problem+json");
    assert!(
        body["detail"].as_str().unwrap().contains("/api/v1"),
        "{body}"
    );
    let (status, _, _) = call(
        &host,
        Method::GET,
        "/api/v1/nothing-here",
        Some(&host.token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Webhook errors are problem details too.
    let (status, kind, body) =
        call(&host, Method::POST, "/hooks/nope", None, Some(json!({}))).await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::NOT_FOUND, "application/problem+json")
    );
    assert_eq!(body["title"], "Not Found");
}

/// A host with one finished render (`blog` / `post-1`), and an editor's and a viewer's token.
struct Started {
    _dir: tempfile::TempDir,
    _cms: Cms,
    host: Host,
    editor: String,
    viewer: String,
}

async fn start_with_a_finished_render() -> Started {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &config(dir.path(), &cms)).await;
    let editor = host.token_for("editor").await;
    let viewer = host.token_for("viewer").await;
    let body = published(
        "post-1",
        "Spring collection",
        "<p>Our spring collection is here.</p>",
    );
    let answer = host.post_signed("blog", "msg_1", now_secs(), &body).await;
    assert_eq!(answer.status(), 202);
    host.wait_for_state("done", Duration::from_secs(90)).await;
    Started {
        _dir: dir,
        _cms: cms,
        host,
        editor,
        viewer,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn template_versions_are_saved_by_editors_diffed_and_rolled_back() {
    let started = start_with_a_finished_render().await;
    let Started {
        host,
        editor,
        viewer,
        ..
    } = &started;
    // Templates: a viewer may not write; an editor's draft that does not compile says where.
    let new = |text: &str| Some(json!({"body": text}));
    let path = "/api/v1/templates/script/versions";
    let (status, kind, problem) = call(host, Method::POST, path, Some(viewer), new("x")).await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::FORBIDDEN, "application/problem+json")
    );
    assert_eq!(problem["status"], 403);
    let (status, _, problem) = call(
        host,
        Method::POST,
        path,
        Some(editor),
        new("Hi\n{{#if title}}"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(problem["location"]["line"], 2, "{problem}");
    let (status, _, saved) = call(
        host,
        Method::POST,
        path,
        Some(editor),
        new("News: {{title}}.\n\n{{body}}"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["version"], 2);
    let (_, _, diff) = call(
        host,
        Method::GET,
        "/api/v1/templates/script/diff?from=1&to=2",
        Some(viewer),
        None,
    )
    .await;
    let ops: Vec<String> = diff
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}{}",
                l["op"].as_str().unwrap(),
                l["text"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(ops, ["-{{title}}.", "+News: {{title}}.", " ", " {{body}}"]);
    let (status, _, rolled) = call(
        host,
        Method::POST,
        "/api/v1/templates/script/rollback",
        Some(editor),
        Some(json!({"version": 1, "note": "back to the plain intro"})),
    )
    .await;
    assert_eq!(
        (status, rolled["version"].clone()),
        (StatusCode::CREATED, json!(3))
    );
    let (_, _, v3) = call(
        host,
        Method::GET,
        "/api/v1/templates/script/versions/3",
        Some(viewer),
        None,
    )
    .await;
    let (_, _, v1) = call(
        host,
        Method::GET,
        "/api/v1/templates/script/versions/1",
        Some(viewer),
        None,
    )
    .await;
    assert_eq!(v3["body"], v1["body"]);
    // Each version says who saved it and why; a rollback, which version it restored.
    assert!(
        v3["author"].as_str().unwrap().starts_with("editor-"),
        "{v3}"
    );
    assert_eq!(v3["note"], "back to the plain intro", "{v3}");
    assert_eq!(v3["restored_from"], 1, "{v3}");
    assert!(v1["author"] == "" && v1["restored_from"].is_null(), "{v1}");
    let actions = audit_actions(host).await;
    assert!(
        actions.iter().any(|a| a == "template-save")
            && actions.iter().any(|a| a == "template-rollback"),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preview_runs_a_draft_through_the_real_chain_and_says_where_it_fails() {
    let started = start_with_a_finished_render().await;
    let Started {
        host,
        editor,
        viewer,
        ..
    } = &started;
    // Preview: a draft through the real chain against the stored event, nothing saved.
    let (_, _, events) = call(
        host,
        Method::GET,
        "/api/v1/sources/blog/events",
        Some(viewer),
        None,
    )
    .await;
    let event = events[0]["id"].as_str().unwrap().to_string();
    let preview = |draft: &str, synthesize: bool| {
        Some(
            json!({"source": "blog", "template": "script", "body": draft, "event_id": event, "synthesize": synthesize}),
        )
    };
    let (status, _, shown) = call(
        host,
        Method::POST,
        "/api/v1/preview",
        Some(viewer),
        preview("Hello {{title}}! {{body}}", false),
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    let video = &shown["videos"][0];
    assert_eq!(
        video["script"],
        "Hello Spring collection! Our spring collection is here."
    );
    assert!(video["prompt"]
        .as_str()
        .unwrap()
        .contains("Spring collection"));
    assert_eq!(
        (
            video["resolution"].as_str(),
            video["limit_seconds"].as_f64()
        ),
        (Some("720p"), Some(60.0))
    );
    assert!(video["estimated_seconds"].as_f64().unwrap() > 1.0);
    assert!(video["synthesized_seconds"].is_null());
    assert_eq!(shown["templates"]["script"], 0, "the draft, unsaved");
    // Strict mode: a variable the content lacks is an error at its line and column.
    let (status, _, problem) = call(
        host,
        Method::POST,
        "/api/v1/preview",
        Some(viewer),
        preview("Hi {{title}}\n  {{subtitle}}", false),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    assert_eq!(
        problem["location"],
        json!({"template": "script", "line": 2, "column": 3}),
        "{problem}"
    );
    // In plain words: what is missing and what to do, not the library's types.
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("the draft of \"script\": this content has no field \"subtitle\"")
            && !detail.contains("Some("),
        "{detail}"
    );
    // Speech costs (with a hosted engine): editors only; measured by decoding the audio.
    let (status, _, _) = call(
        host,
        Method::POST,
        "/api/v1/preview",
        Some(viewer),
        preview("{{title}}", true),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, heard) = call(
        host,
        Method::POST,
        "/api/v1/preview",
        Some(editor),
        preview("{{title}}. {{body}}", true),
    )
    .await;
    assert_eq!(status, 200, "{heard}");
    let seconds = heard["videos"][0]["synthesized_seconds"].as_f64().unwrap();
    assert!(seconds > 1.0 && seconds < 10.0, "{seconds}");
    // Pasted content instead of an event.
    let pasted = json!({"source": "blog", "template": "prompt", "body": "Scene for {{title}}",
                        "content": {"title": "Pasted", "body": "Some text."}});
    let (status, _, shown) = call(
        host,
        Method::POST,
        "/api/v1/preview",
        Some(viewer),
        Some(pasted),
    )
    .await;
    assert_eq!(
        (status, shown["videos"][0]["prompt"].as_str()),
        (StatusCode::OK, Some("Scene for Pasted"))
    );
    // Pasted content is checked like any content: a control character in the title is refused.
    let bad = json!({"source": "blog", "template": "script", "body": "{{title}}",
                     "content": {"title": "Bell\u{7}", "body": "Text."}});
    let (status, _, problem) = call(
        host,
        Method::POST,
        "/api/v1/preview",
        Some(viewer),
        Some(bad),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_switches_render_lists_actions_and_costs() {
    let started = start_with_a_finished_render().await;
    let Started {
        host,
        editor,
        viewer,
        ..
    } = &started;
    // A plugin switched off for a source: listed so, and the preview's chain no longer runs it.
    let switch = |on: bool| Some(json!({"enabled": on}));
    let (status, _, _) = call(
        host,
        Method::PUT,
        "/api/v1/sources/blog/plugins/presenter",
        Some(editor),
        switch(false),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "admins switch plugins");
    let (status, _, _) = call(
        host,
        Method::PUT,
        "/api/v1/sources/blog/plugins/presenter",
        Some(&host.token),
        switch(false),
    )
    .await;
    assert_eq!(status, 200);
    let (_, _, sources) = call(host, Method::GET, "/api/v1/sources", Some(viewer), None).await;
    assert_eq!(
        sources[0]["plugins"][0],
        json!({"name": "presenter", "enabled": false})
    );
    let pasted = json!({"source": "blog", "template": "script", "body": "{{title}}",
                        "content": {"title": "Pasted", "body": "Some text."}});
    let (_, _, shown) = call(
        host,
        Method::POST,
        "/api/v1/preview",
        Some(viewer),
        Some(pasted),
    )
    .await;
    assert_eq!(shown["videos"], json!([]), "{shown}");
    call(
        host,
        Method::PUT,
        "/api/v1/sources/blog/plugins/presenter",
        Some(&host.token),
        switch(true),
    )
    .await;

    // Renders: filters, paging, detail with steps, and actions refused where they do not apply.
    let body = published("post-2", "Summer", "<p>Summer is here.</p>");
    assert_eq!(
        host.post_signed("blog", "msg_2", now_secs(), &body)
            .await
            .status(),
        202
    );
    let started = std::time::Instant::now();
    let (first, second) = loop {
        let (_, _, page) = call(
            host,
            Method::GET,
            "/api/v1/renders?limit=1&state=done",
            Some(viewer),
            None,
        )
        .await;
        if let Some(next) = page["next"].as_str() {
            let (_, _, rest) = call(
                host,
                Method::GET,
                &format!("/api/v1/renders?limit=1&state=done&after={next}"),
                Some(viewer),
                None,
            )
            .await;
            if !rest["items"].as_array().unwrap().is_empty() {
                break (page["items"][0].clone(), rest["items"][0].clone());
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{}",
            host.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_ne!(first["id"], second["id"]);
    assert_eq!(first["entry"], "post-2", "newest first");
    let (status, _, _) = call(
        host,
        Method::GET,
        "/api/v1/renders?state=bogus",
        Some(viewer),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let id = first["id"].as_str().unwrap();
    let (_, _, detail) = call(
        host,
        Method::GET,
        &format!("/api/v1/renders/{id}"),
        Some(viewer),
        None,
    )
    .await;
    let steps: Vec<&str> = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(
        steps.starts_with(&["plan", "speak", "check"]) && steps.contains(&"write_back"),
        "{steps:?}"
    );
    assert!(detail["render"]["provenance_json"].is_string());
    let reason = Some(json!({"reason": "changed my mind"}));
    let (status, _, problem) = call(
        host,
        Method::POST,
        &format!("/api/v1/renders/{id}/cancel"),
        Some(&host.token),
        reason.clone(),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a finished render is not cancelled: {problem}"
    );
    let (status, _, _) = call(
        host,
        Method::POST,
        &format!("/api/v1/renders/{id}/cancel"),
        Some(editor),
        reason,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Costs: one bar per day, budget left under the daily limit (the preview provider is $0).
    let (_, _, costs) = call(
        host,
        Method::GET,
        "/api/v1/costs?days=7",
        Some(viewer),
        None,
    )
    .await;
    assert_eq!(costs["days"].as_array().unwrap().len(), 7, "{costs}");
    assert_eq!(
        (
            costs["daily_limit"].as_i64(),
            costs["budget_left_today"].as_i64()
        ),
        (Some(9600), Some(9600))
    );
    let (status, _, _) = call(
        host,
        Method::GET,
        "/api/v1/costs?days=0",
        Some(viewer),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_cookie_is_httponly_strict_and_its_writes_need_the_csrf_header() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &config(dir.path(), &cms)).await;
    let editor = host.token_for("editor").await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}/api/v1{path}", host.url);

    let sign_in = client.post(url("/session")).json(&json!({"token": editor}));
    assert_eq!(
        sign_in.send().await.unwrap().status(),
        403,
        "sign-in needs the CSRF header too"
    );
    let wrong = client
        .post(url("/session"))
        .header("x-vidhook-csrf", "1")
        .json(&json!({"token": "vht_nope"}));
    assert_eq!(wrong.send().await.unwrap().status(), 401);
    let response = client
        .post(url("/session"))
        .header("x-vidhook-csrf", "1")
        .json(&json!({"token": editor}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/api/", "Max-Age="] {
        assert!(cookie.contains(part), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();

    let who: Value = client
        .get(url("/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(who["role"], "editor");
    let save = |csrf: bool, site: Option<&str>| {
        let mut request = client
            .post(url("/templates/prompt/versions"))
            .header("cookie", &session)
            .json(&json!({"body": "A studio. {{title}}"}));
        if csrf {
            request = request.header("x-vidhook-csrf", "1");
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    assert_eq!(
        save(false, None).await.unwrap().status(),
        403,
        "a form post from anywhere"
    );
    assert_eq!(save(true, Some("cross-site")).await.unwrap().status(), 403);
    assert_eq!(save(true, Some("same-origin")).await.unwrap().status(), 201);

    let out = client.delete(url("/session")).send().await.unwrap();
    assert_eq!(out.status(), 204);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    // Revoking the token ends its sessions.
    let config = host.dir.join("vidhook.toml");
    let name = who["name"].as_str().unwrap();
    support::vidhook(&[
        "--config",
        config.to_str().unwrap(),
        "tokens",
        "revoke",
        name,
    ])
    .await;
    let after = client
        .get(url("/session"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_render_stream_sends_each_change_as_it_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &config(dir.path(), &cms)).await;
    let viewer = host.token_for("viewer").await;
    let editor = host.token_for("editor").await;
    let mut stream = reqwest::Client::new()
        .get(format!("{}/api/v1/renders/stream", host.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // A gated source: the render stops at awaiting_approval until the editor approves it, so
    // the stream must carry a change that happens long after it was opened.
    let body = published("post-live", "Live", "<p>Streamed as it happens.</p>");
    assert_eq!(
        host.post_signed("gated", "msg_live", now_secs(), &body)
            .await
            .status(),
        202
    );
    let mut seen: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut approved = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while seen.last().map(String::as_str) != Some("done") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("done in time")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) else {
                continue;
            };
            assert!(event.contains("event: render"), "{event}");
            let render: Value = serde_json::from_str(data).unwrap();
            assert_eq!(render["entry"], "post-live");
            let state = render["state"].as_str().unwrap().to_string();
            if state == "awaiting_approval" && !approved {
                assert!(
                    render["preview_url"].is_null(),
                    "a viewer sees no unapproved preview"
                );
                let id = render["id"].as_str().unwrap();
                let path = format!("/api/v1/renders/{id}/approve");
                let (status, _, _) = call(&host, Method::POST, &path, Some(&editor), None).await;
                assert_eq!(status, 200);
                approved = true;
            }
            if seen.last() != Some(&state) {
                seen.push(state);
            }
        }
    }
    assert!(approved, "{seen:?}");
    let gate = seen.iter().position(|s| s == "awaiting_approval").unwrap();
    assert!(
        gate + 1 < seen.len() - 1 || seen[gate + 1] == "done",
        "{seen:?}"
    );
    assert!(
        seen[..gate]
            .iter()
            .all(|s| ["plan", "speak", "check"].contains(&s.as_str())),
        "{seen:?}"
    );
    // Revoking the viewer's token ends its stream at the next check of its credential.
    let config = host.dir.join("vidhook.toml");
    let who: Value = reqwest::Client::new()
        .get(format!("{}/api/v1/session", host.url))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let name = who["name"].as_str().unwrap();
    support::vidhook(&[
        "--config",
        config.to_str().unwrap(),
        "tokens",
        "revoke",
        name,
    ])
    .await;
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived its token");
}
