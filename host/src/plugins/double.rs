//! `vidhook plugin test DIR`: a plugin's test cases, run offline against a host double. Each case
//! gives the content, the draft, the settings, what the host's templates answer (by template
//! name) and what `wasi:http` answers (by URL), and says what it expects: the decision, log lines,
//! the outbound requests made. The plugin runs in the real sandbox (its manifest's grants and
//! limits hold: a request to a host it was not given is still refused), but nothing reaches the
//! network or the editors' templates, so the cases run anywhere, in the plugin's own CI.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::sandbox::{Answers, Canned, Templates};
use super::{Call, Decision, LoadedPlugin, PluginFailure, PluginHost};
use crate::content::Content;
use crate::templates::TemplateSet;

/// `tests/cases.toml` of a plugin crate.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cases {
    #[serde(rename = "case")]
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    /// The content, over a default article (`title`, `body_text`, `locale`, `kind`, …).
    #[serde(default)]
    pub content: BTreeMap<String, toml::Value>,
    /// Plans of the plugins before this one in the chain, as JSON text (default: none).
    #[serde(default)]
    pub draft_json: Option<String>,
    /// Settings, over the manifest's.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// What `render(name, …)` answers, by template name.
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    /// What `wasi:http` answers, by URL (an unknown URL answers 404).
    #[serde(default)]
    pub http: BTreeMap<String, Canned>,
    pub expect: Expect,
}

/// What a case expects; every field given must hold.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `generate`, `skip` or `error`.
    pub decision: String,
    /// How many plans (with `generate`).
    pub plans: Option<usize>,
    /// The first plan's script contains this.
    pub script_contains: Option<String>,
    /// The first plan's prompt contains this.
    pub prompt_contains: Option<String>,
    /// The skip reason or the error contains this.
    pub reason_contains: Option<String>,
    /// Each of these is contained in some log line.
    #[serde(default)]
    pub logs: Vec<String>,
    /// Exactly these requests, in order (`METHOD URL`); unchecked when absent.
    pub requests: Option<Vec<String>>,
}

/// One case's verdict: `None` passed, else what did not hold.
pub struct Verdict {
    pub name: String,
    pub failure: Option<String>,
}

/// Runs every case of `cases` against `plugin`.
pub async fn run(host: &PluginHost, plugin: &LoadedPlugin, cases: &Cases) -> Vec<Verdict> {
    let mut verdicts = Vec::with_capacity(cases.cases.len());
    for case in &cases.cases {
        let failure = match run_case(host, plugin, case).await {
            Ok(problems) if problems.is_empty() => None,
            Ok(problems) => Some(problems.join("; ")),
            Err(err) => Some(err),
        };
        verdicts.push(Verdict {
            name: case.name.clone(),
            failure,
        });
    }
    verdicts
}

/// What did not hold in one case (empty: it passed), or why it could not run.
async fn run_case(
    host: &PluginHost,
    plugin: &LoadedPlugin,
    case: &Case,
) -> Result<Vec<String>, String> {
    let content = content_of(case)?;
    let draft: Vec<super::Plan> = match &case.draft_json {
        Some(json) => serde_json::from_str(json).map_err(|e| format!("draft_json: {e}"))?,
        None => Vec::new(),
    };
    let result = host
        .run(
            plugin,
            Call::Plan {
                content: &content,
                draft: &draft,
            },
            Templates::Canned(case.templates.clone()),
            Answers::Canned(case.http.clone()),
            &case.config,
        )
        .await;
    let expect = &case.expect;
    let mut problems = Vec::new();
    // What an error or a skip reason (`what`) says against the case's `reason_contains`.
    let reason = |what: &str, said: &str| {
        let part = expect.reason_contains.as_deref()?;
        (!said.contains(part)).then(|| format!("the {what} does not say {part:?}: {said}"))
    };
    let run = match result {
        Err(err) => {
            let message = err.to_string();
            problems.extend(unless(
                expect.decision == "error",
                format!("expected {}, the plugin failed: {message}", expect.decision),
            ));
            problems.extend(reason("error", &message));
            return Ok(problems);
        }
        Ok(run) => run,
    };
    match &run.decision {
        Decision::Skip(said) => {
            problems.extend(unless(
                expect.decision == "skip",
                format!("expected {}, it skipped: {said}", expect.decision),
            ));
            problems.extend(reason("skip reason", said));
        }
        Decision::Generate(plans) => {
            problems.extend(unless(
                expect.decision == "generate",
                format!(
                    "expected {}, it planned {} videos",
                    expect.decision,
                    plans.len()
                ),
            ));
            if let Some(n) = expect.plans {
                problems.extend(unless(
                    plans.len() == n,
                    format!("expected {n} plans, got {}", plans.len()),
                ));
            }
            let first = plans.first();
            for (field, part, value) in [
                ("script", &expect.script_contains, first.map(|p| &p.script)),
                ("prompt", &expect.prompt_contains, first.map(|p| &p.prompt)),
            ] {
                if let Some(part) = part {
                    let value = value.map_or("", String::as_str);
                    problems.extend(unless(
                        value.contains(part.as_str()),
                        format!("the {field} does not contain {part:?}: {value:?}"),
                    ));
                }
            }
        }
    }
    for wanted in &expect.logs {
        problems.extend(unless(
            run.logs.iter().any(|line| line.contains(wanted.as_str())),
            format!("no log line says {wanted:?} (logs: {:?})", run.logs),
        ));
    }
    if let Some(requests) = &expect.requests {
        problems.extend(unless(
            &run.requests == requests,
            format!("expected requests {requests:?}, made {:?}", run.requests),
        ));
    }
    Ok(problems)
}

/// `what`, unless the expectation `holds`.
fn unless(holds: bool, what: String) -> Option<String> {
    (!holds).then_some(what)
}

/// A real event as a case (`plugin test DIR --record RENDER_ID`): `plugin` runs on `content` and
/// `draft` with the editors' templates and its live `wasi:http` (its grants hold), and the case
/// keeps the content, the draft, the settings, each template's output and each answer its
/// requests got (`[case.http."URL"]`, read whole, at most 1 MiB), and expects what the plugin
/// decided and the requests it made.
pub async fn record(
    host: &PluginHost,
    plugin: &LoadedPlugin,
    name: String,
    (content, draft): (&Content, &[super::Plan]),
    templates: Arc<TemplateSet>,
    config: &BTreeMap<String, String>,
) -> Result<Case, PluginFailure> {
    let kept = Arc::new(Mutex::new(BTreeMap::new()));
    let answers = Arc::new(Mutex::new(BTreeMap::new()));
    let call = Call::Plan { content, draft };
    let run = host
        .run(
            plugin,
            call,
            Templates::Recording(templates, kept.clone()),
            Answers::Recording(answers.clone()),
            config,
        )
        .await?;
    let mut expect = Expect {
        requests: Some(run.requests.clone()),
        ..Expect::default()
    };
    match &run.decision {
        Decision::Skip(reason) => {
            expect.decision = "skip".into();
            expect.reason_contains = Some(reason.clone());
        }
        Decision::Generate(plans) => {
            expect.decision = "generate".into();
            expect.plans = Some(plans.len());
            expect.script_contains = plans.first().map(|p| p.script.chars().take(80).collect());
        }
    }
    let content = serde_json::to_value(content).map_err(|e| PluginFailure::Load {
        plugin: plugin.id(),
        message: e.to_string(),
    })?;
    let content = match without_nulls(content) {
        Some(toml::Value::Table(table)) => table.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    let templates = kept.lock().expect("never poisoned").clone();
    let http = answers.lock().expect("never poisoned").clone();
    Ok(Case {
        name,
        content,
        draft_json: (!draft.is_empty()).then(|| serde_json::to_string(draft).unwrap_or_default()),
        config: config.clone(),
        templates,
        http,
        expect,
    })
}

/// JSON as TOML, which has no null: null fields are left out.
fn without_nulls(value: serde_json::Value) -> Option<toml::Value> {
    use serde_json::Value;
    Some(match value {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => toml::Value::String(s),
        Value::Array(items) => {
            toml::Value::Array(items.into_iter().filter_map(without_nulls).collect())
        }
        Value::Object(fields) => toml::Value::Table(
            fields
                .into_iter()
                .filter_map(|(k, v)| Some((k, without_nulls(v)?)))
                .collect(),
        ),
    })
}

/// The case's content over a default article.
fn content_of(case: &Case) -> Result<Content, String> {
    let mut content = serde_json::json!({
        "source": "test", "cms": "test", "id": "case", "revision": "1", "kind": "article",
        "locale": "en-US", "title": "A test article", "body_html": "",
        "body_text": "A first sentence. A second sentence.", "url": null,
        "image": "https://cdn.example.com/presenter.jpg", "fields": {},
    });
    for (key, value) in &case.content {
        content[key] = serde_json::to_value(value).map_err(|e| e.to_string())?;
    }
    serde_json::from_value(content).map_err(|e| format!("content: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The presenter against a double: canned templates stand in for the editors', and an
    /// expectation that does not hold is reported, not passed.
    #[tokio::test]
    async fn cases_pass_and_fail_on_what_the_plugin_does() {
        let (_dir, host, _set) = super::super::tests::fresh(&[]).await;
        let presenter = host.resolve("presenter").await.unwrap();
        let cases: Cases = toml::from_str(
            r#"
[[case]]
name = "an article becomes one plan"
content = { title = "Weekly prices", body_text = "Prices fell." }
templates = { script = "Weekly prices. Prices fell.", prompt = "A bright studio." }
expect = { decision = "generate", plans = 1, script_contains = "Prices fell", prompt_contains = "studio", requests = [] }

[[case]]
name = "a template the case does not give is the plugin's error"
templates = { script = "Hello." }
expect = { decision = "error", reason_contains = "no output for template \"prompt\"" }

[[case]]
name = "an expectation that does not hold"
templates = { script = "Hello.", prompt = "Studio." }
expect = { decision = "skip" }
"#,
        )
        .unwrap();
        let verdicts = run(&host, &presenter, &cases).await;
        assert!(verdicts[0].failure.is_none(), "{:?}", verdicts[0].failure);
        assert!(verdicts[1].failure.is_none(), "{:?}", verdicts[1].failure);
        let failure = verdicts[2].failure.as_deref().unwrap();
        assert!(
            failure.contains("expected skip, it planned 1 videos"),
            "{failure}"
        );
    }

    /// Canned `wasi:http` answers by URL, the requests recorded, and the manifest's grants still
    /// holding: a host it was not given is refused, not answered.
    #[tokio::test]
    async fn http_is_answered_from_the_case_and_the_grants_still_hold() {
        let (_dir, host, set) = super::super::tests::fresh(&[]).await;
        let presenter = host.resolve("presenter").await.unwrap();
        let content = content_of(
            &toml::from_str::<Case>("name = \"x\"\nexpect = { decision = \"generate\" }").unwrap(),
        )
        .unwrap();
        let drafted = host
            .plan(&presenter, &content, &[], set, &BTreeMap::new())
            .await
            .unwrap();
        let Decision::Generate(plans) = drafted.decision else {
            panic!("a draft")
        };
        let draft = serde_json::to_string(&plans).unwrap();
        let summariser = host.resolve("summariser").await.unwrap();
        let answer = r#"{"choices": [{"message": {"content": "Prices fell this week."}}]}"#;
        let cases = Cases {
            cases: vec![
                Case {
                    name: "the summary comes from the canned endpoint".into(),
                    content: BTreeMap::new(),
                    draft_json: Some(draft.clone()),
                    config: BTreeMap::from([("OPENAI_API_KEY".into(), "sk-test".into())]),
                    templates: BTreeMap::from([("script".into(), "Prices fell this week.".into())]),
                    http: BTreeMap::from([(
                        "https://api.openai.com/v1/chat/completions".into(),
                        Canned {
                            status: 200,
                            body: answer.into(),
                        },
                    )]),
                    expect: Expect {
                        decision: "generate".into(),
                        script_contains: Some("Prices fell".into()),
                        requests: Some(vec![
                            "POST https://api.openai.com/v1/chat/completions".into()
                        ]),
                        ..Expect::default()
                    },
                },
                Case {
                    name: "a host the manifest does not name is refused".into(),
                    content: BTreeMap::new(),
                    draft_json: Some(draft),
                    config: BTreeMap::from([
                        ("OPENAI_API_KEY".into(), "sk-test".into()),
                        ("base_url".into(), "https://elsewhere.example/v1".into()),
                    ]),
                    templates: BTreeMap::new(),
                    http: BTreeMap::from([(
                        "https://elsewhere.example/v1/chat/completions".into(),
                        Canned {
                            status: 200,
                            body: answer.into(),
                        },
                    )]),
                    expect: Expect {
                        decision: "error".into(),
                        reason_contains: Some("HttpRequestDenied".into()),
                        ..Expect::default()
                    },
                },
            ],
        };
        let verdicts = run(&host, &summariser, &cases).await;
        for verdict in &verdicts {
            assert!(
                verdict.failure.is_none(),
                "{}: {:?}",
                verdict.name,
                verdict.failure
            );
        }
    }

    /// A recorded run is a case that passes when replayed against the double.
    #[tokio::test]
    async fn a_recorded_run_replays_as_a_passing_case() {
        let (_dir, host, set) = super::super::tests::fresh(&[]).await;
        let presenter = host.resolve("presenter").await.unwrap();
        let mut content = content_of(
            &toml::from_str::<Case>("name = \"x\"\nexpect = { decision = \"generate\" }").unwrap(),
        )
        .unwrap();
        content.title = "Weekly prices".into();
        content.url = None;
        let case = record(
            &host,
            &presenter,
            "recorded".into(),
            (&content, &[]),
            set,
            &BTreeMap::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            case.templates.keys().collect::<Vec<_>>(),
            ["prompt", "script"]
        );
        let text = toml::to_string(&Cases { cases: vec![case] }).unwrap();
        let cases: Cases = toml::from_str(&text).unwrap();
        assert!(
            cases.cases[0]
                .expect
                .script_contains
                .as_deref()
                .unwrap()
                .contains("Weekly prices"),
            "{text}"
        );
        let verdicts = run(&host, &presenter, &cases).await;
        assert!(
            verdicts[0].failure.is_none(),
            "{:?}\n{text}",
            verdicts[0].failure
        );
    }
}
