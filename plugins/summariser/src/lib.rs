//! LLM summariser: asks an OpenAI-compatible `POST {base_url}/chat/completions` for a spoken
//! summary that fits the video's audio limit, then renders it through the script template.
//! Runs after a plugin that drafted the plans (e.g. presenter); replaces their scripts.
//!
//! Config: `base_url`, `model`, `OPENAI_API_KEY` (a secret: only readable because the manifest
//! names it). Network: only the manifest's `allowed_hosts`.

use serde_json::{json, Value};
use vidhook_plugin_sdk::text::{fit_to_seconds, speaking_seconds};
use vidhook_plugin_sdk::{
    config_number, config_or, host, http, info, max_audio_seconds, render, Content, Decision,
    Plugin, PluginError, VideoPlan,
};

struct Summariser;

impl Plugin for Summariser {
    fn plan(content: Content, draft: Vec<VideoPlan>) -> Result<Decision, PluginError> {
        if draft.is_empty() {
            return Err(PluginError::Config(
                "summariser needs a drafted plan: put presenter before it".into(),
            ));
        }
        let key = host::config("OPENAI_API_KEY").ok_or_else(|| {
            PluginError::Config("the OPENAI_API_KEY secret is not available".into())
        })?;
        let wpm = config_number("words_per_minute", 175.0)?;
        let mut plans = draft;
        for plan in &mut plans {
            let seconds =
                max_audio_seconds(plan.resolution) * config_number("safety_margin", 0.85)?;
            let words = (seconds * wpm / 60.0) as usize;
            let summary = summarise(&key, &content, words)?;
            let script_template = config_or("script_template", "script");
            let mut context = json!({"title": content.title, "body": "", "locale": plan.speech.language,
                                     "kind": content.kind, "url": content.url, "source": content.source});
            let frame = render(&script_template, &context)?;
            context["body"] = json!(fit_to_seconds(
                &summary,
                (seconds - speaking_seconds(&frame, wpm)).max(0.0),
                wpm
            ));
            plan.script = render(&script_template, &context)?;
            plan.speech.text = plan.script.clone();
            info(&format!(
                "{}: summary of {} words",
                plan.key,
                plan.script.split_whitespace().count()
            ));
        }
        Ok(Decision::Generate(plans))
    }
}

fn summarise(key: &str, content: &Content, words: usize) -> Result<String, PluginError> {
    let base_url = config_or("base_url", "https://api.openai.com/v1");
    let request = json!({
        "model": config_or("model", "gpt-4o-mini"),
        "messages": [
            {"role": "system", "content": format!(
                "You write narration for a presenter video. Summarise the article in at most {words} \
                 words, in the article's language, as plain sentences to be read aloud.")},
            {"role": "user", "content": format!("{}\n\n{}", content.title, content.body_text)},
        ],
    });
    let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
    let auth = format!("Bearer {key}");
    let response = http::post(
        &url,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
        ],
        request.to_string().as_bytes(),
    )
    .map_err(|e| PluginError::Internal(format!("chat completions: {e}")))?;
    if response.status != 200 {
        return Err(PluginError::Internal(format!(
            "chat completions answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
                .chars()
                .take(300)
                .collect::<String>()
        )));
    }
    let answer: Value = serde_json::from_slice(&response.body)
        .map_err(|e| PluginError::Internal(format!("chat completions answer is not JSON: {e}")))?;
    answer["choices"][0]["message"]["content"]
        .as_str()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            PluginError::Internal(
                "chat completions answer has no choices[0].message.content".into(),
            )
        })
}

vidhook_plugin_sdk::export_plugin!(Summariser);
