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

/// Each narration spoken by espeak-ng in its language, then its captions checked against the
/// standard (`tts::caption_standard`): lines, line length, durations, gaps; the cues that read
/// faster than its speed are printed (the README quotes the count).
#[tokio::test]
async fn every_narration_of_the_corpus_is_captioned_to_the_standard() {
    use crate::tts::{caption_standard::Standard, narration, Espeak, Lexicon};
    let espeak = Espeak::new("espeak-ng".into(), 175, Duration::from_secs(60));
    let options = narration::Options {
        chunk_chars: 180,
        parallel: 2,
        attempts: 2,
    };
    let mut problems = Vec::new();
    let (mut cues, mut too_fast) = (0, Vec::new());
    for (name, _, plan) in planned().await {
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
        cues += spoken.cues.len();
        too_fast.extend(
            standard
                .too_fast(&spoken.cues)
                .into_iter()
                .map(|c| format!("{name}: {c}")),
        );
        let found = standard.problems(&spoken.cues);
        if !found.is_empty() {
            problems.push(format!("{name}: {}\n{:#?}", found.join("; "), spoken.cues));
        }
        let words: String = spoken
            .cues
            .iter()
            .map(|c| c.text.replace('\n', " "))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            words.split_whitespace().collect::<String>(),
            plan.speech_text.split_whitespace().collect::<String>(),
            "{name}: the captions say every word, once, in order"
        );
    }
    println!(
        "{cues} cues checked; {} read faster than the standard's speed: {too_fast:?}",
        too_fast.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
