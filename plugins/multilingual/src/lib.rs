//! Multilingual fan-out: one video plan per locale present.
//!
//! The content's own locale keeps the draft plan it arrives with. Every entry of the content's
//! `translations` field (`{"de-DE": {"title": …, "body": …}, …}`, as front matter or JSON) gets a
//! plan of its own: the script template rendered with that locale's title and body (fitted to the
//! audio limit), the voice for that locale (`voice.<locale>` in config, else derived from the tag),
//! and the target field suffixed with the locale (`video_url_de_de`).

use serde_json::{json, Value};
use vidhook_plugin_sdk::text::{
    fit_to_seconds, html_to_text, narration_body, speaking_seconds, tidy_stops,
};
use vidhook_plugin_sdk::{
    config_number, config_or, host, info, locale, max_audio_seconds, render, Content, Decision,
    Plugin, PluginError, Speech, VideoPlan,
};

struct Multilingual;

impl Plugin for Multilingual {
    fn plan(content: Content, draft: Vec<VideoPlan>) -> Result<Decision, PluginError> {
        let Some(base) = draft.first().cloned() else {
            return Err(PluginError::Config(
                "multilingual needs a drafted plan: put a plugin such as presenter before it"
                    .into(),
            ));
        };
        let fields: Value = serde_json::from_str(&content.fields_json)
            .map_err(|e| PluginError::InvalidContent(format!("fields are not JSON: {e}")))?;
        let Some(translations) = fields.get("translations").and_then(Value::as_object) else {
            return Ok(Decision::Generate(draft));
        };
        let wpm = config_number("words_per_minute", 175.0)?;
        let budget = max_audio_seconds(base.resolution) * config_number("safety_margin", 0.85)?;
        let script_template = config_or("script_template", "script");
        let own = locale::normalize(&content.locale);
        let mut plans = draft;
        for (tag, translation) in translations {
            let tag = locale::normalize(tag);
            if tag == own || plans.iter().any(|p| p.key == tag) {
                continue;
            }
            let title = translation
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or(&content.title);
            let body = translation
                .get("body")
                .and_then(Value::as_str)
                .map(|b| {
                    if b.contains('<') {
                        html_to_text(b)
                    } else {
                        b.to_string()
                    }
                })
                .unwrap_or_default();
            let mut context = json!({"title": title, "body": "", "locale": tag, "kind": content.kind,
                                     "url": content.url, "source": content.source});
            let frame = render(&script_template, &context)?;
            let body_budget = (budget - speaking_seconds(&frame, wpm)).max(0.0);
            let body = narration_body(title, &body);
            context["body"] = json!(fit_to_seconds(&body, body_budget, wpm));
            let script = tidy_stops(&render(&script_template, &context)?);
            let voice = host::config(&format!("voice.{tag}"))
                .unwrap_or_else(|| locale::default_voice(&tag));
            info(&format!(
                "{tag}: {} words, voice {voice}",
                script.split_whitespace().count()
            ));
            plans.push(VideoPlan {
                key: tag.clone(),
                speech: Speech {
                    text: script.clone(),
                    voice,
                    language: tag.clone(),
                    provider: base.speech.provider.clone(),
                },
                script,
                prompt: base.prompt.clone(),
                image_url: base.image_url.clone(),
                resolution: base.resolution,
                turbo: base.turbo,
                target_field: format!("{}_{}", base.target_field, locale::slug(&tag)),
            });
        }
        Ok(Decision::Generate(plans))
    }
}

vidhook_plugin_sdk::export_plugin!(Multilingual);
