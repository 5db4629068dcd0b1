//! Templates editors can trust, through `/api/v1`: a draft stays off renders until it is
//! published; a preview lists the fields the plugins gave the template; listening to the
//! narration says a hosted engine's price first, and bills exactly the characters it said. The
//! real binary on a random port, a fresh database, espeak-ng, and OpenAI's contract server.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::tts::TtsServer;
use support::workspace::{audit_actions, call, config, hosted_speech};
use support::{cms::Cms, now_secs, published, Host};

#[tokio::test(flavor = "multi_thread")]
async fn a_draft_stays_off_renders_until_it_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &config(dir.path(), &cms)).await;
    let editor = host.token_for("editor").await;
    let viewer = host.token_for("viewer").await;
    let draft = |text: &str| Some(json!({"body": text, "note": "a new opening"}));
    let path = "/api/v1/templates/script/draft";

    // Only editors keep drafts; an unknown template has none; a draft is bounded like a version.
    let (status, _, _) = call(&host, Method::PUT, path, Some(&viewer), draft("x")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(
        &host,
        Method::PUT,
        "/api/v1/templates/nosuch/draft",
        Some(&editor),
        draft("x"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let huge = "x".repeat(70_000);
    let (status, _, _) = call(&host, Method::PUT, path, Some(&editor), draft(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // A draft (it need not compile yet) is kept, listed with its author, and is not a version.
    let text = "DRAFT OPENING. {{title}}. {{body}}";
    let (status, _, kept) = call(&host, Method::PUT, path, Some(&editor), draft(text)).await;
    assert_eq!(status, StatusCode::OK, "{kept}");
    assert_eq!(
        (kept["based_on"].as_i64(), kept["body"].as_str()),
        (Some(1), Some(text))
    );
    let drafts = host.api("/api/v1/templates/drafts").await;
    assert_eq!(
        drafts[0]["author"].as_str().unwrap(),
        kept["author"].as_str().unwrap()
    );
    assert!(
        drafts[0]["author"].as_str().unwrap().starts_with("editor-"),
        "{drafts}"
    );
    let versions = host.api("/api/v1/templates/script/versions").await;
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");

    // A publish now renders with the live version: the draft's words are not spoken.
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
    let done = host.wait_for_state("done", Duration::from_secs(90)).await;
    let provenance: Value =
        serde_json::from_str(done["provenance_json"].as_str().unwrap()).unwrap();
    assert_eq!(provenance["templates"]["script"], 1, "{provenance}");
    let detail = host.render(done["id"].as_str().unwrap()).await;
    let narration = detail["summary"]["narration"].as_str().unwrap();
    assert!(!narration.contains("DRAFT OPENING"), "{narration}");

    // Publishing another text leaves the draft (someone else's work); publishing its text
    // removes it; a removed draft cannot be removed again.
    let publish = |text: &str| Some(json!({"body": text}));
    let versions_path = "/api/v1/templates/script/versions";
    let (status, _, _) = call(
        &host,
        Method::POST,
        versions_path,
        Some(&editor),
        publish("{{title}}. {{body}}"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let drafts = host.api("/api/v1/templates/drafts").await;
    assert_eq!(drafts.as_array().unwrap().len(), 1, "{drafts}");
    let (status, _, saved) = call(
        &host,
        Method::POST,
        versions_path,
        Some(&editor),
        publish(text),
    )
    .await;
    assert_eq!(
        (status, saved["version"].as_i64()),
        (StatusCode::CREATED, Some(3))
    );
    let drafts = host.api("/api/v1/templates/drafts").await;
    assert_eq!(drafts, json!([]));

    // Discarding: the live version is untouched; twice is a 404.
    let (status, _, _) = call(&host, Method::PUT, path, Some(&editor), draft("{{title}}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = call(&host, Method::DELETE, path, Some(&viewer), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(&host, Method::DELETE, path, Some(&editor), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&host, Method::DELETE, path, Some(&editor), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let versions = host.api("/api/v1/templates/script/versions").await;
    assert_eq!(versions[0]["body"], text);
    let actions = audit_actions(&host).await;
    for action in ["template-draft", "template-draft-discard", "template-save"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listening_says_a_hosted_engines_price_first_and_bills_what_it_said() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let openai = TtsServer::openai().await;
    let config = config(dir.path(), &cms) + &hosted_speech(&openai.url);
    let host = Host::start(dir.path(), &config).await;
    let editor = host.token_for("editor").await;
    let viewer = host.token_for("viewer").await;
    // The lexicon changes what is sent (and billed): "vidhook" is said "vid hook".
    let (status, _, _) = call(
        &host,
        Method::PUT,
        "/api/v1/sources/hosted/lexicon",
        Some(&editor),
        Some(json!({"term": "vidhook", "spoken": "vid hook"})),
    )
    .await;
    assert!(status.is_success(), "{status}");
    let request = |source: &str| {
        json!({"source": source, "template": "script", "body": "{{title}}. {{body}}",
               "content": {"title": "Hello from vidhook", "locale": "en",
                           "body": "vidhook reads this aloud. It has two sentences, and a third one here."}})
    };

    // The preview (a viewer's) prices the narration without sending anything.
    let (status, _, preview) = call(
        &host,
        Method::POST,
        "/api/v1/preview",
        Some(&viewer),
        Some(request("hosted")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let speech = &preview["videos"][0]["speech"];
    let characters = speech["characters"].as_u64().unwrap();
    assert_eq!(
        (speech["engine"].as_str(), speech["hosted"].as_bool()),
        (Some("openai"), Some(true))
    );
    assert!(characters > 60, "{speech}");
    let cents = speech["cents"].as_f64().unwrap();
    assert!(
        (cents - 1500.0 * characters as f64 / 1e6).abs() < 1e-9,
        "{speech}"
    );
    assert!(openai.calls().is_empty(), "a preview sends nothing");
    // The fields the presenter gave the template, with this content's values.
    let fields = preview["fields"].as_array().unwrap();
    let title = fields.iter().find(|f| f["path"] == "title").unwrap();
    assert_eq!(title["example"], "Hello from vidhook");
    assert!(fields.iter().any(|f| f["path"] == "body"), "{fields:?}");

    // Listening needs an editor; it returns the narration and bills exactly what was said.
    let listen = |token: &str, source: &str| {
        reqwest::Client::new()
            .post(format!("{}/api/v1/preview/narration", host.url))
            .bearer_auth(token)
            .json(&request(source))
            .send()
    };
    assert_eq!(
        listen(&viewer, "hosted").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert!(openai.calls().is_empty());
    let heard = listen(&editor, "hosted").await.unwrap();
    assert_eq!(heard.status(), StatusCode::OK);
    assert_eq!(heard.headers()["content-type"], "audio/wav");
    let seconds: f64 = heard.headers()["x-narration-seconds"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(seconds > 0.5, "{seconds}");
    assert!(heard.bytes().await.unwrap().starts_with(b"RIFF"));
    assert_eq!(openai.billed_chars() as u64, characters, "billed as quoted");
    assert!(
        openai.calls().iter().all(|c| !c.text.contains("vidhook")),
        "the lexicon applied"
    );

    // The local engine is free, and says so.
    let (_, _, local) = call(
        &host,
        Method::POST,
        "/api/v1/preview",
        Some(&viewer),
        Some(request("blog")),
    )
    .await;
    let speech = &local["videos"][0]["speech"];
    assert_eq!(
        (speech["hosted"].as_bool(), speech["cents"].as_f64()),
        (Some(false), Some(0.0))
    );
    let heard = listen(&editor, "blog").await.unwrap();
    assert_eq!(heard.status(), StatusCode::OK);
    assert!(heard.bytes().await.unwrap().starts_with(b"RIFF"));
    // A video the preview does not make is a 404, not someone else's audio.
    let mut other = request("blog");
    other["video"] = json!("xx-XX");
    let (status, _, problem) = call(
        &host,
        Method::POST,
        "/api/v1/preview/narration",
        Some(&editor),
        Some(other),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
}

/// The bytes of a render's $0 approval preview, by the signed link an editor is given.
async fn preview_video(host: &Host, editor: &str, id: &str) -> Vec<u8> {
    let (_, _, detail) = call(
        host,
        Method::GET,
        &format!("/api/v1/renders/{id}"),
        Some(editor),
        None,
    )
    .await;
    let link = detail["render"]["preview_url"].as_str().unwrap();
    let url = if link.starts_with('/') {
        format!("{}{link}", host.url)
    } else {
        link.to_string()
    };
    let answer = reqwest::get(&url).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{url}");
    answer.bytes().await.unwrap().to_vec()
}

/// A render's cues as the API shows them, and the same with `from` replaced by `to` in the first.
async fn corrected(host: &Host, id: &str, from: &str, to: &str) -> (Value, Value) {
    let captions = host.api(&format!("/api/v1/renders/{id}/captions")).await;
    let mut cues = captions["cues"].clone();
    let text = cues[0]["text"].as_str().unwrap().to_string();
    assert!(text.contains(from), "{text}");
    cues[0]["text"] = json!(text.replace(from, to));
    (captions, cues)
}

#[tokio::test(flavor = "multi_thread")]
async fn editors_correct_captions_to_the_standard_and_the_paid_video_ships_them() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let host = Host::start(dir.path(), &config(dir.path(), &cms)).await;
    let editor = host.token_for("editor").await;
    let viewer = host.token_for("viewer").await;

    // A render awaiting approval: its captions are corrected before anything is paid.
    let body = published(
        "post-1",
        "Spring collection",
        "<p>Our spring collection is here. It has twelve new pieces, and every one is linen.</p>",
    );
    assert_eq!(
        host.post_signed("gated", "msg_1", now_secs(), &body)
            .await
            .status(),
        202
    );
    let waiting = host
        .wait_for_state("awaiting_approval", Duration::from_secs(90))
        .await;
    let id = waiting["id"].as_str().unwrap().to_string();
    let (captions, cues) = corrected(&host, &id, "Spring collection.", "Spring Collection.").await;
    assert_eq!(captions["language"], "en-US");
    assert_eq!(captions["standard"]["line_chars"], 42);
    assert_eq!(captions["versions"], json!([]));
    let path = format!("/api/v1/renders/{id}/captions");
    let edit = |cues: &Value| Some(json!({"cues": cues, "note": "brand style"}));

    // Viewers read them; only editors change them; what breaks the standard is refused, in words.
    let (status, _, _) = call(&host, Method::PUT, &path, Some(&viewer), edit(&cues)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut bad = cues.clone();
    bad[0]["text"] = json!("one\ntwo\nthree");
    bad[0]["end"] = json!(bad[0]["start"].as_f64().unwrap() + 9.0);
    let (status, _, problem) = call(&host, Method::PUT, &path, Some(&editor), edit(&bad)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("cue 1 has 3 lines") && detail.contains("cue 1 lasts 9.00 s"),
        "{detail}"
    );
    let preview_before = preview_video(&host, &editor, &id).await;
    let (status, _, saved) = call(&host, Method::PUT, &path, Some(&editor), edit(&cues)).await;
    assert_eq!(
        (status, saved["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{saved}"
    );
    // The $0 preview is made again: its burned-in captions follow the correction.
    assert!(
        preview_video(&host, &editor, &id).await != preview_before,
        "the preview did not change"
    );
    let versions = host.api(&path).await["versions"].clone();
    assert!(versions[0]["author"]
        .as_str()
        .unwrap()
        .starts_with("editor-"));
    assert_eq!(versions[0]["note"], "brand style");

    // Approved and paid: the video's captions are the corrected ones.
    let approve = format!("/api/v1/renders/{id}/approve");
    let (status, _, _) = call(&host, Method::POST, &approve, Some(&editor), None).await;
    assert_eq!(status, StatusCode::OK);
    host.wait_for_state("done", Duration::from_secs(90)).await;
    let vtt_url = host.render(&id).await["summary"]["captions_url"]
        .as_str()
        .unwrap()
        .to_string();
    let vtt = reqwest::get(&vtt_url).await.unwrap().text().await.unwrap();
    assert!(vtt.contains("Spring Collection."), "{vtt}");

    // After the video is kept, a correction rewrites the files the CMS links to.
    let (_, cues) = corrected(&host, &id, "Spring Collection.", "Spring Collection!").await;
    let (status, _, saved) = call(&host, Method::PUT, &path, Some(&editor), edit(&cues)).await;
    assert_eq!(
        (status, saved["version"].as_i64()),
        (StatusCode::OK, Some(2))
    );
    let vtt = reqwest::get(&vtt_url).await.unwrap().text().await.unwrap();
    assert!(vtt.contains("Spring Collection!"), "{vtt}");
    let srt = reqwest::get(vtt_url.replace(".vtt", ".srt"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(srt.contains("Spring Collection!"), "{srt}");
    assert!(audit_actions(&host)
        .await
        .iter()
        .any(|a| a == "captions-edit"));
}
