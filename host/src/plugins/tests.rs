//! The plugin host's tests: real components built from `plugins/` (the bundled ones and the
//! hostile test programs) under the sandbox's limits.

use super::*;
use crate::generation::Resolution;

/// A host on a fresh database, plus the templates (with `overrides` saved as new versions).
async fn host_with(
    policy: Policy,
    overrides: &[(&str, &str)],
) -> (tempfile::TempDir, PluginHost, Arc<TemplateSet>) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(
        &format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    crate::templates::seed_defaults(&db).await.unwrap();
    for (name, body) in overrides {
        crate::templates::save(&db, name, body, Default::default())
            .await
            .unwrap();
    }
    let set = Arc::new(TemplateSet::load(&db).await.unwrap());
    let host = PluginHost::new(db, dir.path().join("plugins"), policy)
        .await
        .unwrap();
    (dir, host, set)
}

pub(super) async fn fresh(
    overrides: &[(&str, &str)],
) -> (tempfile::TempDir, PluginHost, Arc<TemplateSet>) {
    host_with(Policy::default(), overrides).await
}

fn article(words: usize) -> Content {
    let sentence = "This sentence has exactly eight words in it. ";
    Content {
        source: "blog".into(),
        cms: "markdown".into(),
        id: "long.md".into(),
        revision: "1".into(),
        kind: "article".into(),
        locale: "de-DE".into(),
        title: "A long read".into(),
        body_html: String::new(),
        body_text: sentence.repeat(words / 8),
        url: None,
        image: Some("https://cdn.example/p.png".into()),
        fields: serde_json::json!({}),
    }
}

pub(super) fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn test_program(name: &str) -> Vec<u8> {
    std::fs::read(std::path::Path::new(env!("VIDHOOK_TEST_WASM_DIR")).join(format!("{name}.wasm")))
        .unwrap()
}

fn manifest(name: &str, extra: &str) -> Manifest {
    Manifest::parse(&format!("name = \"{name}\"\nversion = \"1.0.0\"\n{extra}")).unwrap()
}

#[tokio::test]
async fn presenter_fits_a_long_article_into_the_1080p_audio_limit() {
    let (_dir, host, set) = fresh(&[]).await;
    let presenter = host.resolve("presenter").await.unwrap();
    let run = host
        .plan(
            &presenter,
            &article(2000),
            &[],
            set.clone(),
            &config(&[("resolution", "1080p")]),
        )
        .await
        .unwrap();
    let Decision::Generate(plans) = run.decision else {
        panic!("expected a plan")
    };
    let plan = &plans[0];
    assert_eq!(plan.resolution, Resolution::P1080);
    assert_eq!((plan.key.as_str(), plan.voice.as_str()), ("de-DE", "de-de"));
    // 30 s × 0.85 margin at 175 wpm = 74 words at most, whole sentences only.
    let words = plan.script.split_whitespace().count();
    assert!((40..=74).contains(&words), "{words} words: {}", plan.script);
    assert!(plan.script.starts_with("A long read.") && plan.script.ends_with("in it."));
    assert!(plan.prompt.contains("A long read"));
    assert_eq!(plan.image_url, "https://cdn.example/p.png");
    assert_eq!(set.used().keys().collect::<Vec<_>>(), ["prompt", "script"]);
    assert!(run.usage.fuel > 0 && run.usage.peak_memory_bytes > 0);
    // The run's time, split: starting, then the call, of which its three renders a part.
    let usage = &run.usage;
    assert!(usage.start_ms > 0.0 && usage.render_ms > 0.0, "{usage:?}");
    assert!(
        usage.start_ms + usage.render_ms < usage.wall_ms,
        "{usage:?}"
    );
    assert!(
        run.logs.iter().any(|l| l.starts_with("[info] script:")),
        "{:?}",
        run.logs
    );
}

/// A source on Replicate (35 s at every resolution): the plan is fitted to the host it goes to,
/// not to the model's 60 s at 720p, and an editor's setting cannot pretend otherwise.
#[tokio::test]
async fn presenter_fits_the_narration_to_the_sources_hosts() {
    let policy = Policy {
        audio_limits: BTreeMap::from([("blog".to_string(), (35.0, 30.0))]),
        ..Policy::default()
    };
    let (_dir, host, set) = host_with(policy, &[]).await;
    let presenter = host.resolve("presenter").await.unwrap();
    let words_at = |pairs: &'static [(&'static str, &'static str)]| {
        let (host, set, presenter) = (&host, set.clone(), presenter.clone());
        async move {
            let run = host
                .plan(&presenter, &article(2000), &[], set, &config(pairs))
                .await
                .unwrap();
            let Decision::Generate(plans) = run.decision else {
                panic!("expected a plan")
            };
            plans[0].script.split_whitespace().count()
        }
    };
    // 35 s × 0.85 margin at 175 wpm = 86 words at most (60 s would allow 148).
    let words = words_at(&[("resolution", "720p")]).await;
    assert!((50..=86).contains(&words), "{words} words");
    let pretended = words_at(&[
        ("resolution", "720p"),
        ("vidhook.max_audio_seconds.720p", "60"),
    ])
    .await;
    assert_eq!(pretended, words, "the host's figure wins");
}

#[tokio::test]
async fn presenter_reports_typed_errors() {
    let (_dir, host, set) = fresh(&[("script", "{{title}} {{missing_variable}}")]).await;
    let presenter = host.resolve("presenter").await.unwrap();
    let err = host
        .plan(&presenter, &article(16), &[], set, &config(&[]))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("template") && err.to_string().contains("missing_variable"),
        "{err}"
    );

    let (_dir, host, set) = fresh(&[]).await;
    let presenter = host.resolve("presenter").await.unwrap();
    let mut no_image = article(16);
    no_image.image = None;
    let err = host
        .plan(&presenter, &no_image, &[], set.clone(), &config(&[]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("configuration: no presenter image"),
        "{err}"
    );
    let err = host
        .plan(
            &presenter,
            &article(16),
            &[],
            set,
            &config(&[("resolution", "4k")]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("resolution must be"), "{err}");
}

#[tokio::test]
async fn multilingual_fans_out_one_plan_per_locale_with_its_voice() {
    let (_dir, host, set) = fresh(&[]).await;
    let presenter = host.resolve("presenter").await.unwrap();
    let multilingual = host.resolve("multilingual").await.unwrap();
    let mut content = article(40);
    content.locale = "en-US".into();
    content.fields = serde_json::json!({"translations": {
        "de_de": {"title": "Ein langer Text", "body": "<p>Erster Satz. Zweiter Satz.</p>"},
        "fr-FR": {"title": "Un long texte", "body": "Première phrase."},
        "en-US": {"title": "ignored: the entry's own locale"}
    }});
    let draft = host
        .plan(&presenter, &content, &[], set.clone(), &config(&[]))
        .await
        .unwrap();
    let Decision::Generate(draft) = draft.decision else {
        panic!()
    };
    let run = host
        .plan(
            &multilingual,
            &content,
            &draft,
            set,
            &config(&[("voice.fr-FR", "fr+f3")]),
        )
        .await
        .unwrap();
    let Decision::Generate(plans) = run.decision else {
        panic!()
    };
    let summary: Vec<(&str, &str, &str)> = plans
        .iter()
        .map(|p| (p.key.as_str(), p.voice.as_str(), p.target_field.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("en-US", "en-us", "video_url"),
            ("de-DE", "de-de", "video_url_de_de"),
            ("fr-FR", "fr+f3", "video_url_fr_fr")
        ]
    );
    assert_eq!(
        plans[1].script,
        "Ein langer Text.\n\nErster Satz. Zweiter Satz."
    );
    assert_eq!(plans[1].image_url, plans[0].image_url);
}

/// Each hostile behaviour fails its own run with the right category; the same host then runs
/// a well-behaved plugin normally.
#[tokio::test]
async fn hostile_plugins_are_stopped_and_the_host_carries_on() {
    let max = Limits {
        fuel: 20_000_000_000,
        deadline: Duration::from_millis(500),
        memory_bytes: 64 << 20,
        output_bytes: 256 << 10,
        http_calls: 4,
    };
    let (_dir, host, set) = host_with(
        Policy {
            max,
            ..Policy::default()
        },
        &[],
    )
    .await;
    let hostile = host
        .install(&test_program("hostile"), manifest("hostile", ""), false)
        .await
        .unwrap()
        .plugin;
    let presenter = host.resolve("presenter").await.unwrap();
    let cases = [
        ("loop", "wall-clock limit"),
        ("alloc", "memory limit"),
        ("panic", "hostile plugin panicked on purpose"),
        ("output", "output size limit"),
        ("http", "HttpRequestDenied"),
        ("file", "file:"),
    ];
    for (behaviour, expected) in cases {
        let started = Instant::now();
        let err = host
            .plan(
                &hostile,
                &article(16),
                &[],
                set.clone(),
                &config(&[("behaviour", behaviour)]),
            )
            .await
            .expect_err(behaviour)
            .to_string();
        assert!(err.contains(expected), "{behaviour}: {err}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{behaviour} took {:?}",
            started.elapsed()
        );
        let ok = host
            .plan(&presenter, &article(16), &[], set.clone(), &config(&[]))
            .await;
        assert!(ok.is_ok(), "after {behaviour}: {:?}", ok.err());
    }
    // No environment leaks in.
    let run = host
        .plan(
            &hostile,
            &article(16),
            &[],
            set.clone(),
            &config(&[("behaviour", "env")]),
        )
        .await
        .unwrap();
    assert_eq!(run.decision, Decision::Skip("env: []".into()));
    // A CPU budget independent of time.
    let tight = manifest("hostile", "[limits]\nfuel = 1000000\ndeadline_ms = 5000");
    let tight = host
        .load_uninstalled(&test_program("hostile"), tight)
        .await
        .unwrap();
    let err = host
        .plan(
            &tight,
            &article(16),
            &[],
            set,
            &config(&[("behaviour", "loop")]),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("CPU (fuel) limit"), "{err}");
}

/// Loopback is refused unless the host policy allows it, even when a manifest lists it; a
/// secret the manifest does not name is invisible even when the host has it.
#[tokio::test]
async fn loopback_and_secrets_need_the_policy_and_the_manifest() {
    let mut secrets = BTreeMap::new();
    secrets.insert("OPENAI_API_KEY".to_string(), "sk-host".to_string());
    let policy = Policy {
        secrets,
        ..Policy::default()
    };
    let (_dir, host, set) = host_with(policy, &[]).await;
    let loopback = manifest(
        "hostile",
        "[capabilities]\nallowed_hosts = [\"127.0.0.1:9\"]",
    );
    let hostile = host
        .load_uninstalled(&test_program("hostile"), loopback)
        .await
        .unwrap();
    let settings = config(&[("behaviour", "http"), ("url", "http://127.0.0.1:9/")]);
    let err = host
        .plan(&hostile, &article(16), &[], set.clone(), &settings)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("HttpRequestDenied"), "{err}");

    let presenter = host.resolve("presenter").await.unwrap();
    let draft = match host
        .plan(&presenter, &article(16), &[], set.clone(), &config(&[]))
        .await
        .unwrap()
        .decision
    {
        Decision::Generate(plans) => plans,
        Decision::Skip(_) => panic!(),
    };
    let unnamed = manifest(
        "summariser",
        "[capabilities]\nallowed_hosts = [\"api.openai.com\"]",
    );
    let summariser = host
        .load_uninstalled(&test_program("summariser"), unnamed)
        .await
        .unwrap();
    let err = host
        .plan(&summariser, &article(16), &draft, set, &config(&[]))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the OPENAI_API_KEY secret is not available"),
        "{err}"
    );
}

#[tokio::test]
async fn refuses_other_wit_versions_and_unasked_capabilities() {
    let (_dir, host, _set) = fresh(&[]).await;
    let err = host
        .install(&test_program("future_wit"), manifest("future", ""), false)
        .await
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(
        message.contains("vidhook:plugin@9.0.0") && message.contains("vidhook:plugin@0.1.2"),
        "{message}"
    );

    let bytes = test_program("hostile");
    host.install(&bytes, manifest("h", ""), false)
        .await
        .unwrap();
    let wider = Manifest::parse("name = \"h\"\nversion = \"1.1.0\"\n[capabilities]\nallowed_hosts = [\"api.example.com\"]\nsecrets = [\"KEY\"]").unwrap();
    let err = host
        .install(&bytes, wider.clone(), false)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("+ network: api.example.com")
            && err.contains("+ secret: KEY")
            && err.contains("--grant"),
        "{err}"
    );
    assert_eq!(
        host.resolve("h").await.unwrap().manifest.version,
        "1.0.0",
        "refused install changed nothing"
    );
    let installed = host.install(&bytes, wider, true).await.unwrap();
    assert_eq!(
        installed.granted,
        ["network: api.example.com", "secret: KEY"]
    );
    assert_eq!(
        host.resolve("h").await.unwrap().manifest.version,
        "1.1.0",
        "takes effect at once"
    );
    assert_eq!(
        host.resolve("h@1.0.0").await.unwrap().manifest.version,
        "1.0.0"
    );
    let other_bytes = test_program("presenter");
    let err = host
        .install(&other_bytes, manifest("h", ""), false)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("already installed with other contents"),
        "{err}"
    );
}

/// A component built against `vidhook:plugin@0.1.0` (before the digest and shortening worlds
/// existed) installs and plans on this 0.1.2 host; it is not one that can shorten, so a too-long
/// narration is never sent to it.
#[tokio::test]
async fn a_plugin_built_for_an_older_minor_version_keeps_working() {
    let (_dir, host, set) = fresh(&[]).await;
    let installed = host
        .install(&test_program("legacy_wit"), manifest("legacy", ""), false)
        .await
        .unwrap();
    assert!(!installed.plugin.can_shorten());
    assert!(host.resolve("presenter").await.unwrap().can_shorten());
    let run = host
        .plan(&installed.plugin, &article(16), &[], set, &config(&[]))
        .await
        .unwrap();
    let Decision::Generate(plans) = run.decision else {
        panic!("expected a plan")
    };
    assert_eq!(plans[0].script, "legacy: A long read");
}

/// The bundled digest plugin reads many items as one video within the audio limit, skips an
/// empty day, and is refused where a chain plugin is expected (and the other way round).
#[tokio::test]
async fn the_digest_plugin_makes_one_plan_of_many_items() {
    let (_dir, host, set) = fresh(&[]).await;
    let digest = host.resolve("digest").await.unwrap();
    let items: Vec<Content> = (1..=30)
        .map(|n| Content {
            id: format!("story-{n}"),
            title: format!("Story number {n}"),
            ..article(40)
        })
        .collect();
    let run = host
        .digest(&digest, &items, set.clone(), &config(&[]))
        .await
        .unwrap();
    let Decision::Generate(plans) = run.decision else {
        panic!("expected a plan")
    };
    assert_eq!(plans.len(), 1);
    let script = &plans[0].script;
    assert!(
        script.starts_with("Good morning.") && script.contains("Story number 1."),
        "{script}"
    );
    assert!(
        !script.contains("Story number 30."),
        "trimmed to the limit: {script}"
    );
    let words = script.split_whitespace().count();
    assert!(words <= 149, "60 s × 0.85 at 175 wpm: {words} words");
    assert_eq!(set.used().get("digest"), Some(&1));

    let run = host
        .digest(&digest, &[], set.clone(), &config(&[]))
        .await
        .unwrap();
    assert!(
        matches!(run.decision, Decision::Skip(_)),
        "{:?}",
        run.decision
    );

    let err = host
        .plan(&digest, &article(16), &[], set.clone(), &config(&[]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("it is a digest plugin"), "{err}");
    let presenter = host.resolve("presenter").await.unwrap();
    let err = host
        .digest(&presenter, &items, set, &config(&[]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("it is a chain plugin"), "{err}");
}
