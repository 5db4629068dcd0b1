//! The narration corpus (`tests/narration/*.toml`): articles in the shapes CMSs send (HTML from
//! WordPress and Ghost, Markdown, Contentful rich text, Portable Text, Strapi blocks), each with
//! the narration a person reviewed by reading it aloud. Each is converted as its adapter would
//! (`html_to_text`, `markdown_to_html_and_text`, `rich_text`) and planned by the real presenter
//! component with the default templates; the script must be the checked-in text exactly.
//! `VIDHOOK_NARRATION_PRINT=1` prints every script, to review a change.

use super::tests::{config, fresh};
use super::*;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Article {
    title: String,
    #[serde(default = "english")]
    locale: String,
    /// "html", "markdown" or "rich" (a JSON document of structured rich text).
    shape: String,
    body: String,
    /// What the narrator says.
    narration: String,
}

fn english() -> String {
    "en-US".into()
}

fn body_text(article: &Article) -> String {
    match article.shape.as_str() {
        "html" => crate::cms::mapping::html_to_text(&article.body),
        "markdown" => crate::content::markdown_to_html_and_text(&article.body).1,
        "rich" => crate::cms::mapping::rich_text(&serde_json::from_str(&article.body).unwrap()),
        other => panic!("unknown shape {other:?}"),
    }
}

/// Every article of the corpus (file name, article) with the presenter's plan for it.
async fn planned() -> Vec<(String, Article, Plan)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/narration");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let (_dir, host, set) = fresh(&[]).await;
    let presenter = host.resolve("presenter").await.unwrap();
    let mut out = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let article: Article = toml::from_str(&std::fs::read_to_string(file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let content = Content {
            source: "corpus".into(),
            cms: article.shape.clone(),
            id: name.clone(),
            revision: "1".into(),
            kind: "article".into(),
            locale: article.locale.clone(),
            title: article.title.clone(),
            body_html: String::new(),
            body_text: body_text(&article),
            url: None,
            image: Some("https://cdn.example/p.png".into()),
            fields: serde_json::json!({}),
        };
        let run = host
            .plan(&presenter, &content, &[], set.clone(), &config(&[]))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let Decision::Generate(mut plans) = run.decision else {
            panic!("{name}: skipped")
        };
        out.push((name, article, plans.remove(0)));
    }
    out
}

#[tokio::test]
async fn every_article_of_the_corpus_is_narrated_as_reviewed() {
    let planned = planned().await;
    assert!(planned.len() >= 30, "{} articles", planned.len());
    let print = std::env::var_os("VIDHOOK_NARRATION_PRINT").is_some();
    let mut wrong = Vec::new();
    for (name, article, plan) in &planned {
        let script = plan.script.trim();
        if print {
            println!("=== {name}\n{script}\n");
        }
        if script != article.narration.trim() {
            wrong.push(format!(
                "{name}:\n--- reviewed\n{}\n--- now\n{script}",
                article.narration.trim()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// What the captions of one narration showed against the standard (`tts::caption_standard`).
#[derive(Default)]
struct CaptionCheck {
    cues: usize,
    /// Cues that read faster than the standard's speed (reported, not failed: the speed is the
    /// engine's, and the words are the narration's).
    too_fast: Vec<String>,
    /// Lines, line length, durations, gaps; or captions that do not say every word once.
    problems: Vec<String>,
}

impl CaptionCheck {
    /// Speaks `plan`'s narration with espeak-ng in its language and checks the cues its timing
    /// gave.
    async fn add(&mut self, name: &str, plan: &Plan) {
        use crate::tts::{caption_standard::Standard, narration, Espeak, Lexicon};
        let espeak = Espeak::new("espeak-ng".into(), 175, Duration::from_secs(60));
        let options = narration::Options {
            chunk_chars: 180,
            parallel: 2,
            attempts: 2,
        };
        let spoken = narration::narrate(
            &espeak,
            &plan.voice,
            &plan.language,
            &plan.speech_text,
            &Lexicon::default(),
            options,
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let standard = Standard::for_language(&plan.language);
        self.cues += spoken.cues.len();
        self.too_fast.extend(
            standard
                .too_fast(&spoken.cues)
                .into_iter()
                .map(|c| format!("{name}: {c}")),
        );
        let found = standard.problems(&spoken.cues);
        if !found.is_empty() {
            self.problems
                .push(format!("{name}: {}\n{:#?}", found.join("; "), spoken.cues));
        }
        let said: String = spoken
            .cues
            .iter()
            .flat_map(|c| c.text.split_whitespace())
            .collect();
        if said != plan.speech_text.split_whitespace().collect::<String>() {
            self.problems.push(format!(
                "{name}: the captions do not say every word once, in order: {said:?}"
            ));
        }
    }

    fn report(&self) {
        println!(
            "{} cues checked; {} read faster than the standard's speed: {:?}",
            self.cues,
            self.too_fast.len(),
            self.too_fast
        );
        assert!(self.problems.is_empty(), "{}", self.problems.join("\n"));
    }
}

/// Each narration spoken by espeak-ng in its language, then its captions checked against the
/// standard; the cues that read faster than its speed are printed (the README quotes the count).
#[tokio::test]
async fn every_narration_of_the_corpus_is_captioned_to_the_standard() {
    let mut check = CaptionCheck::default();
    for (name, _, plan) in planned().await {
        check.add(&name, &plan).await;
    }
    check.report();
}

/// The multilingual plugin fanned out over the corpus's own translations (Japanese, Arabic,
/// Chinese, Korean, Hebrew, German, French beside the English original): every locale it
/// produces is spoken in its own voice and captioned to the standard, CJK and right-to-left
/// ones included.
#[tokio::test]
async fn every_locale_the_multilingual_plugin_produces_is_captioned_to_the_standard() {
    let corpus = planned().await;
    let (original_name, original, first) = corpus
        .iter()
        .find(|(_, a, _)| a.locale == "en-US")
        .expect("an English article");
    let translations: serde_json::Map<String, serde_json::Value> = corpus
        .iter()
        .filter(|(_, a, _)| a.locale != "en-US")
        .map(|(_, a, _)| {
            let body = match a.shape.as_str() {
                "html" => a.body.clone(),
                _ => body_text(a),
            };
            (
                a.locale.clone(),
                serde_json::json!({"title": a.title, "body": body}),
            )
        })
        .collect();
    let locales: std::collections::BTreeSet<String> = translations.keys().cloned().collect();
    assert!(
        ["ja-JP", "zh-CN", "ko-KR", "ar", "he"]
            .iter()
            .all(|l| locales.contains(*l)),
        "CJK and right-to-left locales: {locales:?}"
    );
    let content = Content {
        source: "corpus".into(),
        cms: original.shape.clone(),
        id: original_name.clone(),
        revision: "1".into(),
        kind: "article".into(),
        locale: original.locale.clone(),
        title: original.title.clone(),
        body_html: String::new(),
        body_text: body_text(original),
        url: None,
        image: Some("https://cdn.example/p.png".into()),
        fields: serde_json::json!({ "translations": translations }),
    };
    let (_dir, host, set) = fresh(&[]).await;
    let multilingual = host.resolve("multilingual").await.unwrap();
    let run = host
        .plan(
            &multilingual,
            &content,
            std::slice::from_ref(first),
            set,
            &config(&[]),
        )
        .await
        .unwrap();
    let Decision::Generate(plans) = run.decision else {
        panic!("skipped")
    };
    let produced: std::collections::BTreeSet<String> =
        plans.iter().skip(1).map(|p| p.language.clone()).collect();
    assert_eq!(produced, locales, "one plan per translation");
    for plan in plans.iter().skip(1) {
        let (name, article, _) = corpus
            .iter()
            .find(|(_, a, _)| a.locale == plan.language)
            .unwrap();
        assert_eq!(
            plan.script.trim(),
            article.narration.trim(),
            "{name}: the multilingual plugin narrates a translation as the presenter does"
        );
    }
    let mut check = CaptionCheck::default();
    for plan in &plans {
        assert!(
            !plan.speech_text.trim().is_empty(),
            "{}: nothing to say",
            plan.language
        );
        check
            .add(&format!("multilingual {}", plan.language), plan)
            .await;
    }
    check.report();
}
