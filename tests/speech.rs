//! Speech: hosted engines (OpenAI-compatible, ElevenLabs) against loopback contract servers that
//! answer as the real ones do, faults included; long scripts chunked and retried chunk by chunk;
//! the joined narration decoded and checked for gaps and clicks; captions timed from it; five
//! locales from one event, each in its own voice. All with the real binary, espeak-ng and ffmpeg.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::cms::Cms;
use support::tts::{Fault, TtsServer, ELEVEN_VOICES};
use support::{now_secs, presenter_png, Host, SECRET};
use vidhook::media::probe::decode_mono;
use vidhook::tts::narration::gaps_and_steps;

const ARTICLE: &str = "<p>Our spring collection is here. Every piece is made from recycled \
    fibres, spun and dyed within two hundred kilometres of the shop.</p>\
    <p>The jackets come in four colours. The trousers come in three cuts, and every cut has a \
    tall and a short length.</p><p>Visit a store near you this weekend. Bring an old coat and we \
    will recycle it for you, whatever brand it is.</p><p>Opening hours are longer on Saturday. \
    Coffee is on us.</p>";

/// A host on the local preview provider with source `blog` (Standard Webhooks) writing back to
/// `cms`; `tts` and `source` are appended to the `[tts]` table and the source's table.
fn config(dir: &std::path::Path, cms: &Cms, tts: &str, source: &str, plugins: &str) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
data_dir = "{data}"
workers = 2

[outbound]
# Loopback contract servers: the development allowlist, turned on explicitly.
allow_private = ["127.0.0.0/8"]

[retry]
base_delay_ms = 50
max_delay_ms = 500

[tts]
chunk_chars = 120
{tts}

[sources.blog]
cms = "standard-webhooks"
secret = "{secret}"
writeback_url = "{cms}"
presenter_image = "{image}"
{source}

{plugins}
"#,
        data = dir.join("data").display(),
        secret = SECRET,
        cms = cms.url,
        image = presenter_png().display(),
    )
}

const PRESENTER_720P: &str = r#"
[[sources.blog.plugins]]
name = "presenter"
config = { resolution = "720p" }
"#;

fn publish_body(id: &str, title: &str, locale: &str, extra: serde_json::Value) -> String {
    let mut data = serde_json::json!({"id": id, "title": title, "body_html": ARTICLE,
                                      "locale": locale, "revision": 1});
    if let serde_json::Value::Object(extra) = extra {
        data.as_object_mut().unwrap().extend(extra);
    }
    serde_json::json!({"type": "content.published", "timestamp": "2026-11-25T10:00:00Z", "data": data})
        .to_string()
}

fn provenance(render: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(render["provenance_json"].as_str().unwrap()).unwrap()
}

/// The render's narration as the store holds it, decoded.
fn narration(host: &Host, render: &serde_json::Value) -> vidhook::media::probe::Pcm {
    let key = render["audio_key"].as_str().unwrap();
    let bytes = std::fs::read(host.dir.join("data/media").join(key)).unwrap();
    decode_mono(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hosted_engine_narrates_in_chunks_retrying_only_the_chunks_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let openai = TtsServer::openai().await;
    // Three chunks meet a fault each: a 429 with Retry-After, a 503, and a body cut short.
    openai.push_fault(Fault::RateLimited {
        retry_after_secs: 1,
    });
    openai.push_fault(Fault::ServerError(503));
    openai.push_fault(Fault::Truncated);
    let cms = Cms::start().await;
    let tts = format!(
        r#"parallel = 3

[tts.providers.openai]
kind = "openai"
base_url = "{}"
api_key = "${{TEST_OPENAI_KEY}}"
voice = "alloy""#,
        openai.url
    );
    let source = "tts = \"openai\"\n\n[sources.blog.fields]\ncaptions = \"captions_url\"\ncaptions_language = \"captions_language\"\nposter = \"poster_url\"";
    let host = Host::start(
        dir.path(),
        &config(dir.path(), &cms, &tts, source, PRESENTER_720P),
    )
    .await;
    let body = publish_body(
        "post-1",
        "Spring collection",
        "en-US",
        serde_json::json!({}),
    );
    let response = host.post_signed("blog", "msg_1", now_secs(), &body).await;
    assert_eq!(response.status(), 202);
    let render = host.wait_for_state("done", Duration::from_secs(120)).await;

    // Each chunk was paid for once: the faults were retried chunk by chunk, not per article.
    let provenance = provenance(&render);
    let chunks = provenance["speech"]["chunks"].as_u64().unwrap() as usize;
    assert!(
        chunks >= 5,
        "a 60 s script in 120-character chunks: {chunks}"
    );
    assert_eq!(provenance["speech"]["engine"], "openai");
    assert_eq!(provenance["speech"]["retries"], 3);
    assert!(provenance["voice"].as_str().unwrap().ends_with(":alloy"));
    let calls = openai.calls();
    assert_eq!(calls.len(), chunks + 3, "{calls:#?}");
    let answered: Vec<&str> = calls
        .iter()
        .filter(|c| c.status == 200)
        .map(|c| c.text.as_str())
        .collect();
    // The truncated answer was a 200 the client could not use: one chunk twice, no more.
    assert_eq!(answered.len(), chunks + 1);
    assert_eq!(
        answered.iter().collect::<BTreeSet<_>>().len(),
        chunks,
        "every chunk text asked for"
    );
    assert!(calls.iter().all(|c| c.text.chars().count() <= 120));
    let in_flight = openai.max_in_flight();
    assert!(
        (2..=3).contains(&in_flight),
        "parallel, bounded: {in_flight}"
    );

    // The joined narration: measured by decoding, no gap longer than a paragraph pause, no click.
    let pcm = narration(&host, &render);
    let seconds = pcm.samples.len() as f64 / f64::from(pcm.rate);
    assert!((seconds - render["audio_seconds"].as_f64().unwrap()).abs() < 0.01);
    assert!(seconds <= 60.0, "{seconds}");
    let (longest_silence, largest_step) = gaps_and_steps(&pcm);
    assert!(longest_silence < 1.0, "a gap of {longest_silence:.2} s");
    assert!(largest_step < 1.0, "a click: step {largest_step}");

    // The CMS got the captions and poster beside the video, the video last.
    let written = cms.wait_for_write_backs(4, Duration::from_secs(10)).await;
    let fields: Vec<&str> = written
        .iter()
        .map(|w| w["data"]["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "captions_url",
            "captions_language",
            "poster_url",
            "video_url"
        ]
    );
    // The captions' language is the narration's.
    assert_eq!(written[1]["data"]["video_url"], "en-US");
    let url = |i: usize| {
        written[i]["data"]["video_url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let vtt = reqwest::get(url(0)).await.unwrap().text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT\n"), "{vtt}");
    // The cues are cut and timed to the caption standard (not one per chunk).
    let cues = parse_vtt(&vtt);
    assert!(
        cues.len() >= chunks,
        "{} cues of {chunks} chunks",
        cues.len()
    );
    let standard = vidhook::tts::caption_standard::Standard::for_language("en-US");
    let problems = standard.problems(&cues);
    assert!(problems.is_empty(), "{problems:?}\n{vtt}");
    let last_end = vtt
        .lines()
        .filter_map(|l| l.split_once(" --> "))
        .next_back()
        .map(|(_, end)| end.to_string())
        .unwrap();
    let (minutes_and_seconds, millis) = last_end.rsplit_once('.').unwrap();
    let secs: f64 = minutes_and_seconds
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<f64>()
        .unwrap()
        + minutes_and_seconds
            .split(':')
            .nth(1)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            * 60.0
        + millis.parse::<f64>().unwrap() / 1000.0;
    assert!(
        (secs - seconds).abs() < 0.01,
        "captions end with the audio: {secs} vs {seconds}"
    );
    let poster = reqwest::get(url(2)).await.unwrap().bytes().await.unwrap();
    assert!(poster.starts_with(&[0xFF, 0xD8, 0xFF]), "a JPEG poster");
    assert!(url(3).starts_with(&format!("{}/media/videos/", host.url)));
}

#[tokio::test(flavor = "multi_thread")]
async fn elevenlabs_by_locale_keeps_intonation_and_its_concurrency_limit_and_a_bad_key_fails_once()
{
    let dir = tempfile::tempdir().unwrap();
    let eleven = TtsServer::elevenlabs().await;
    // The plan allows one request at a time; vidhook sends up to three.
    eleven.limit_concurrency(1);
    let cms = Cms::start().await;
    let tts = format!(
        r#"parallel = 3

[tts.providers.eleven]
kind = "elevenlabs"
base_url = "{url}"
api_key = "${{TEST_ELEVENLABS_KEY}}"
voices = {{ en = "{voice}" }}

[tts.providers.eleven-wrong-key]
kind = "elevenlabs"
base_url = "{url}"
api_key = "not-the-key"
voice = "{voice}""#,
        url = eleven.url,
        voice = ELEVEN_VOICES[0]
    );
    // English goes to ElevenLabs, German to the wrong key.
    let source = "tts_locales = { en = \"eleven\", de = \"eleven-wrong-key\" }";
    let host = Host::start(
        dir.path(),
        &config(dir.path(), &cms, &tts, source, PRESENTER_720P),
    )
    .await;
    let body = publish_body(
        "post-en",
        "Spring collection",
        "en-GB",
        serde_json::json!({}),
    );
    assert_eq!(
        host.post_signed("blog", "msg_en", now_secs(), &body)
            .await
            .status(),
        202
    );
    let render = host.wait_for_state("done", Duration::from_secs(120)).await;
    let chunks = provenance(&render)["speech"]["chunks"].as_u64().unwrap() as usize;
    let calls = eleven.calls();
    let ok: Vec<_> = calls.iter().filter(|c| c.status == 200).collect();
    assert_eq!(ok.len(), chunks, "each chunk synthesised once");
    assert!(calls.iter().any(|c| c.status == 429), "the limit was met");
    assert_eq!(eleven.max_in_flight(), 1);
    // Neighbouring text went with each chunk (ElevenLabs' continuity), the voice by locale.
    let cues = ok.iter().filter(|c| c.previous_text.is_some()).count();
    assert_eq!(cues, chunks - 1);
    assert!(ok.iter().all(|c| c.voice == ELEVEN_VOICES[0]));
    let pcm = narration(&host, &render);
    let (longest_silence, _) = gaps_and_steps(&pcm);
    assert!(longest_silence < 1.0, "{longest_silence}");

    // A wrong key is a 401: the render fails at once, saying so, after one request.
    let before = eleven.calls().len();
    let body = publish_body(
        "post-de",
        "Frühjahrskollektion",
        "de-DE",
        serde_json::json!({}),
    );
    host.post_signed("blog", "msg_de", now_secs(), &body).await;
    let failed = host.wait_for_state("failed", Duration::from_secs(60)).await;
    assert_eq!(failed["error_category"], "tts_error");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("401") && error.contains("Invalid API key"),
        "{error}"
    );
    assert_eq!(
        eleven.calls().len() - before,
        1,
        "a refused key is not retried"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn five_locales_make_five_renders_each_in_its_own_voice_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    let plugins = r#"
[[sources.blog.plugins]]
name = "presenter"
config = { resolution = "720p" }

[[sources.blog.plugins]]
name = "multilingual"
"#;
    let host = Host::start(dir.path(), &config(dir.path(), &cms, "", "", plugins)).await;
    let translations = serde_json::json!({"translations": {
        "de-DE": {"title": "Frühjahrskollektion", "body": "Unsere Frühjahrskollektion ist da. Jedes Stück ist aus recycelten Fasern."},
        "fr-FR": {"title": "Collection de printemps", "body": "Notre collection de printemps est arrivée. Chaque pièce est faite de fibres recyclées."},
        "es-ES": {"title": "Colección de primavera", "body": "Nuestra colección de primavera ya está aquí. Cada prenda está hecha de fibras recicladas."},
        "it-IT": {"title": "Collezione primavera", "body": "La nostra collezione primavera è arrivata. Ogni capo è fatto di fibre riciclate."},
    }});
    let body = publish_body("post-ml", "Spring collection", "en-US", translations);
    assert_eq!(
        host.post_signed("blog", "msg_ml", now_secs(), &body)
            .await
            .status(),
        202
    );
    let written = cms.wait_for_write_backs(5, Duration::from_secs(180)).await;
    assert_eq!(written.len(), 5, "{}", host.logs());
    let fields: BTreeSet<&str> = written
        .iter()
        .map(|w| w["data"]["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "video_url",
            "video_url_de_de",
            "video_url_fr_fr",
            "video_url_es_es",
            "video_url_it_it"
        ])
    );
    // Each `video.ready` names its own locale, as a receiver keyed on locale needs: one message
    // per locale, the field and the locale agreeing.
    let by_locale: std::collections::BTreeMap<&str, &str> = written
        .iter()
        .map(|w| {
            (
                w["data"]["locale"].as_str().unwrap(),
                w["data"]["field"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_locale,
        std::collections::BTreeMap::from([
            ("en-US", "video_url"),
            ("de-DE", "video_url_de_de"),
            ("fr-FR", "video_url_fr_fr"),
            ("es-ES", "video_url_es_es"),
            ("it-IT", "video_url_it_it"),
        ]),
        "{written:#?}"
    );
    let renders = host.renders().await;
    assert_eq!(renders.len(), 5);
    let mut voices = BTreeSet::new();
    let mut images = BTreeSet::new();
    let mut narrations: Vec<Vec<i16>> = Vec::new();
    for listed in &renders {
        let render = &listed["render"];
        assert_eq!(render["state"], "done");
        let provenance = provenance(render);
        voices.insert(provenance["voice"].as_str().unwrap().to_string());
        let plan: serde_json::Value =
            serde_json::from_str(render["plan_json"].as_str().unwrap()).unwrap();
        images.insert(
            plan["image_url"]
                .as_str()
                .unwrap()
                .split('?')
                .next()
                .unwrap()
                .to_string(),
        );
        let pcm = narration(&host, render);
        let seconds = pcm.samples.len() as f64 / f64::from(pcm.rate);
        assert!(seconds > 1.0 && seconds <= 60.0, "{seconds}");
        narrations.push(pcm.samples.iter().map(|s| (s * 32767.0) as i16).collect());
    }
    assert_eq!(voices.len(), 5, "one voice per locale: {voices:?}");
    assert_eq!(images.len(), 1, "the same photo");
    for (i, a) in narrations.iter().enumerate() {
        for b in &narrations[i + 1..] {
            assert_ne!(a, b, "two locales sound the same");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_lexicon_says_brand_names_as_editors_set_them_and_captions_keep_the_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let openai = TtsServer::openai().await;
    let cms = Cms::start().await;
    let tts = format!(
        "[tts.providers.openai]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"${{TEST_OPENAI_KEY}}\"\nvoice = \"alloy\"",
        openai.url
    );
    let source = "tts = \"openai\"\n\n[sources.blog.fields]\ncaptions = \"captions_url\"";
    let host = Host::start(
        dir.path(),
        &config(dir.path(), &cms, &tts, source, PRESENTER_720P),
    )
    .await;
    let config_path = dir.path().join("vidhook.toml");
    let config_arg = config_path.to_str().unwrap();
    // An editor sets one term through the API, an operator another with the CLI.
    let client = reqwest::Client::new();
    let set = |token: String, body: serde_json::Value| {
        client
            .put(format!("{}/api/v1/sources/blog/lexicon", host.url))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let editor = support::vidhook(&[
        "--config", config_arg, "tokens", "create", "--role", "editor", "--name", "ed",
    ])
    .await;
    let viewer = support::vidhook(&[
        "--config", config_arg, "tokens", "create", "--role", "viewer", "--name", "vi",
    ])
    .await;
    let term = serde_json::json!({"term": "Vidhook", "spoken": "vid hook"});
    let refused = set(viewer.trim().to_string(), term.clone()).await.unwrap();
    assert_eq!(refused.status(), 403);
    let saved = set(editor.trim().to_string(), term).await.unwrap();
    assert_eq!(saved.status(), 200);
    let invalid = set(
        editor.trim().to_string(),
        serde_json::json!({"term": "", "spoken": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(invalid.status(), 422);
    support::vidhook(&[
        "--config",
        config_arg,
        "lexicon",
        "set",
        "--source",
        "blog",
        "--locale",
        "en",
        "SQLite",
        "S Q L ite",
    ])
    .await;
    let listed = support::vidhook(&[
        "--config", config_arg, "lexicon", "list", "--source", "blog",
    ])
    .await;
    assert!(
        listed.contains("Vidhook") && listed.contains("S Q L ite"),
        "{listed}"
    );
    let audit = support::vidhook(&["--config", config_arg, "audit"]).await;
    assert!(
        audit.contains("lexicon-set") && audit.contains("ed"),
        "{audit}"
    );

    let body = serde_json::json!({"type": "content.published", "timestamp": "2026-11-25T10:00:00Z",
        "data": {"id": "post-lex", "title": "Vidhook now on SQLite", "locale": "en-US", "revision": 1,
                 "body_html": "<p>Vidhook keeps every render in SQLite. Ask vidhook how.</p>"}})
    .to_string();
    host.post_signed("blog", "msg_lex", now_secs(), &body).await;
    let render = host.wait_for_state("done", Duration::from_secs(120)).await;
    let said: String = openai
        .calls()
        .iter()
        .map(|c| c.text.clone() + " ")
        .collect();
    assert!(
        said.contains("vid hook") && said.contains("S Q L ite"),
        "{said}"
    );
    assert!(
        !said.to_lowercase().contains("vidhook") && !said.contains("SQLite"),
        "{said}"
    );
    let lexicon = &provenance(&render)["speech"]["lexicon"];
    assert_eq!(lexicon["Vidhook"]["spoken"], "vid hook");
    assert!(
        lexicon["Vidhook"]["times"].as_u64().unwrap() >= 2,
        "{lexicon}"
    );
    let written = cms.wait_for_write_backs(2, Duration::from_secs(10)).await;
    let captions = written
        .iter()
        .find(|w| w["data"]["field"] == "captions_url")
        .unwrap();
    let vtt = reqwest::get(captions["data"]["video_url"].as_str().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        vtt.contains("SQLite") && !vtt.contains("S Q L ite"),
        "{vtt}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_narration_over_the_limit_is_shortened_once_by_the_plugin_or_fails_with_its_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let cms = Cms::start().await;
    // The plugin believes espeak-ng speaks 400 words a minute; it speaks 175: the script it
    // plans for 1080p's 30 s comes out longer, which only decoding the audio shows.
    let fast =
        "config = { resolution = \"1080p\", words_per_minute = \"400\", safety_margin = \"0.9\" }";
    let plugins = format!(
        r#"
[[sources.blog.plugins]]
name = "presenter"
{fast}

[sources.strict]
cms = "standard-webhooks"
secret = "{SECRET}"
writeback_url = "{cms}"
presenter_image = "{image}"

[[sources.strict.plugins]]
name = "presenter"
{fast}
"#,
        cms = cms.url,
        image = presenter_png().display()
    );
    let source = "too_long_for_1080p = \"shorten\"";
    let host = Host::start(dir.path(), &config(dir.path(), &cms, "", source, &plugins)).await;
    // Three times the article: more than the plugin's 30 s at the pace it believes in.
    let long = serde_json::json!({"body_html": ARTICLE.repeat(3)});
    let body = publish_body("post-long", "Spring collection", "en-US", long);
    host.post_signed("blog", "msg_long", now_secs(), &body)
        .await;
    let render = host.wait_for_state("done", Duration::from_secs(120)).await;
    let shortened = &provenance(&render)["shortened"];
    let measured = shortened["measured_seconds"].as_f64().unwrap();
    assert!(
        measured > 30.0,
        "the first narration was over the limit: {shortened}"
    );
    assert_eq!(shortened["limit_seconds"], 30.0);
    assert!(shortened["plugin"]
        .as_str()
        .unwrap()
        .starts_with("presenter@"));
    let seconds = render["audio_seconds"].as_f64().unwrap();
    assert!(seconds <= 30.0, "the second narration fits: {seconds}");
    let pcm = narration(&host, &render);
    assert!((pcm.samples.len() as f64 / f64::from(pcm.rate) - seconds).abs() < 0.01);
    let steps: Vec<String> = host.render(render["id"].as_str().unwrap()).await["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        steps[..5],
        ["plan", "speak", "check", "speak", "check"],
        "spoken, measured, shortened, spoken again: {steps:?}"
    );

    // The default policy fails the render, saying the measured and the allowed seconds.
    let long = serde_json::json!({"body_html": ARTICLE.repeat(3)});
    let body = publish_body("post-strict", "Spring collection", "en-US", long);
    host.post_signed("strict", "msg_strict", now_secs(), &body)
        .await;
    let failed = host.wait_for_state("failed", Duration::from_secs(60)).await;
    assert_eq!(failed["error_category"], "input_invalid");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains(" s; at 1080p") && error.contains("at most 30 s"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_step_pays_only_for_the_chunks_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let openai = TtsServer::openai().await;
    // One try per chunk: the third request's 500 fails the whole step, which is retried.
    openai.push_fault(Fault::Pass);
    openai.push_fault(Fault::Pass);
    openai.push_fault(Fault::ServerError(500));
    let cms = Cms::start().await;
    let tts = format!(
        "parallel = 2\nchunk_attempts = 1\n\n[tts.providers.openai]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"${{TEST_OPENAI_KEY}}\"\nvoice = \"alloy\"",
        openai.url
    );
    let host = Host::start(
        dir.path(),
        &config(dir.path(), &cms, &tts, "tts = \"openai\"", PRESENTER_720P),
    )
    .await;
    let body = publish_body(
        "post-cache",
        "Spring collection",
        "en-US",
        serde_json::json!({}),
    );
    host.post_signed("blog", "msg_cache", now_secs(), &body)
        .await;
    let render = host.wait_for_state("done", Duration::from_secs(120)).await;
    let chunks = provenance(&render)["speech"]["chunks"].as_u64().unwrap() as usize;
    let calls = openai.calls();
    let answered = calls.iter().filter(|c| c.status == 200).count();
    assert_eq!(answered, chunks, "every chunk paid for once: {calls:#?}");
    assert_eq!(calls.len(), chunks + 1);
    let steps = host.render(render["id"].as_str().unwrap()).await["steps"].clone();
    let speak_failures = steps
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "speak" && s["outcome"] != "ok")
        .count();
    assert_eq!(speak_failures, 1, "{steps:#}");
}

/// The engines' answers as the contract servers give them, classified: a refusal is final, a
/// rate limit carries its Retry-After, a 5xx and a body cut short are worth another try.
#[tokio::test(flavor = "multi_thread")]
async fn engine_errors_are_classified_as_their_documentation_says() {
    use vidhook::tts::{SpeechRequest, TtsError};
    let openai = TtsServer::openai().await;
    let eleven = TtsServer::elevenlabs().await;
    let config: vidhook::tts::TtsConfig = toml::from_str(&format!(
        r#"
[providers.good]
kind = "openai"
base_url = "{o}"
api_key = "{key}"
[providers.wrong-key]
kind = "openai"
base_url = "{o}"
api_key = "sk-wrong"
[providers.eleven]
kind = "elevenlabs"
base_url = "{e}"
api_key = "{ekey}"
"#,
        o = openai.url,
        e = eleven.url,
        key = support::tts::OPENAI_KEY,
        ekey = support::tts::ELEVENLABS_KEY,
    ))
    .unwrap();
    let dev = vidhook::outbound::Config {
        allow_private: vec!["127.0.0.0/8".into()],
    };
    let guard = vidhook::outbound::Guard::new(&dev, true).unwrap();
    let speakers = vidhook::tts::Speakers::build(&config, &guard).unwrap();
    let say = |engine: &str, voice: &str| {
        let (engine, _) = speakers.pick(engine, voice, "en").unwrap();
        let request = SpeechRequest {
            text: "Hello there.".into(),
            voice: voice.into(),
            language: "en".into(),
            ..Default::default()
        };
        async move { engine.synthesize(&request).await }
    };
    let refused = say("wrong-key", "alloy").await.unwrap_err();
    assert!(
        matches!(&refused, TtsError::Rejected { status: 401, message, .. } if message.contains("Incorrect API key")),
        "{refused:?}"
    );
    assert!(!refused.is_transient());
    openai.push_fault(Fault::RateLimited {
        retry_after_secs: 7,
    });
    let limited = say("good", "alloy").await.unwrap_err();
    assert!(
        matches!(limited, TtsError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 7),
        "{limited:?}"
    );
    openai.push_fault(Fault::ServerError(503));
    let unavailable = say("good", "alloy").await.unwrap_err();
    assert!(unavailable.is_transient(), "{unavailable:?}");
    let audio = say("good", "alloy").await.unwrap();
    assert_eq!(audio.extension, "wav");
    let no_voice = say("eleven", "NoSuchVoice").await.unwrap_err();
    assert!(
        matches!(&no_voice, TtsError::Rejected { status: 404, message, .. } if message.contains("voice_id")),
        "{no_voice:?}"
    );
    eleven.push_fault(Fault::Truncated);
    let cut = say("eleven", ELEVEN_VOICES[1]).await;
    // A body cut short is a transport error (or, read whole but short, audio that will not
    // decode: the narration retries both).
    match cut {
        Err(err) => assert!(err.is_transient(), "{err:?}"),
        Ok(audio) => assert!(vidhook::media::probe::decode_mono(audio.bytes).is_err()),
    }
}

/// A WebVTT file's cues (as vidhook writes them: a timing line, then the text's lines).
fn parse_vtt(vtt: &str) -> Vec<vidhook::tts::captions::Cue> {
    let seconds = |stamp: &str| -> f64 {
        let parts: Vec<f64> = stamp.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    vtt.split("\n\n")
        .filter_map(|block| {
            let mut lines = block.lines();
            let (start, end) = lines.next()?.split_once(" --> ")?;
            Some(vidhook::tts::captions::Cue {
                start: seconds(start),
                end: seconds(end),
                text: lines.collect::<Vec<_>>().join("\n"),
            })
        })
        .collect()
}
