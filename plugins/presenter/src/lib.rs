//! The default presenter plugin: one video per content event, narrated in the content's locale.
//!
//! The script and the scene prompt both come from editor templates (`script` and `prompt` by
//! default) through the host's `render` import. The article body is fitted *before* it goes into
//! the script template, so that the whole rendered script (intro and outro included) stays within
//! the video model's audio limit for the chosen resolution.
//!
//! Settings (`config`): `resolution` (720p|1080p, default 720p), `voice` (default: from the
//! locale), `words_per_minute` (175, espeak-ng's default rate), `safety_margin` (0.85 of the limit,
//! because a TTS engine's real pace varies), `turbo` (false), `target_field` (video_url),
//! `script_template` (script), `prompt_template` (prompt).
//!
//! It also exports `shorten` (WIT 0.1.2): when the synthesised narration came out over the limit
//! (the engine speaks slower than `words_per_minute` said), it cuts the plan's script at a
//! sentence to fit, at the pace the host actually measured.

use serde_json::json;
use vidhook_plugin_sdk::text::{fit_to_seconds, narration_body, speaking_seconds, tidy_stops};
use vidhook_plugin_sdk::{
    config_number, config_or, info, max_audio_seconds, parse_resolution, render, Content, Decision,
    PluginError, Shortening, Speech, TooLong, VideoPlan,
};

struct Presenter;

impl Shortening for Presenter {
    /// Keeps whole sentences of the script that fit the limit (with the safety margin) at the
    /// measured pace: words per second = the script's words / the measured seconds.
    fn shorten(
        _content: Content,
        mut plan: VideoPlan,
        too_long: TooLong,
    ) -> Result<Decision, PluginError> {
        let words = plan.speech.text.split_whitespace().count() as f64;
        if words == 0.0 || too_long.measured_seconds <= 0.0 {
            return Err(PluginError::InvalidContent("nothing to shorten".into()));
        }
        let measured_wpm = words * 60.0 / too_long.measured_seconds;
        let margin = config_number("safety_margin", 0.85)?;
        let script = fit_to_seconds(
            &plan.speech.text,
            too_long.limit_seconds * margin,
            measured_wpm,
        );
        if script.trim().is_empty() {
            return Err(PluginError::InvalidContent(
                "not even one sentence fits the limit".into(),
            ));
        }
        info(&format!(
            "shortened: {:.1} s measured, {:.0} s allowed; {} of {words} words kept at {measured_wpm:.0} wpm",
            too_long.measured_seconds,
            too_long.limit_seconds,
            script.split_whitespace().count()
        ));
        plan.speech.text = script.clone();
        plan.script = script;
        Ok(Decision::Generate(vec![plan]))
    }

    fn plan(content: Content, _draft: Vec<VideoPlan>) -> Result<Decision, PluginError> {
        if content.body_text.trim().is_empty() && content.title.trim().is_empty() {
            return Err(PluginError::InvalidContent(
                "the content has neither a title nor a body to narrate".into(),
            ));
        }
        let Some(image_url) = content.image_url.clone() else {
            return Err(PluginError::Config(
                "no presenter image: set `presenter_image` on the source or the entry".into(),
            ));
        };
        let resolution = parse_resolution(&config_or("resolution", "720p"))?;
        let wpm = config_number("words_per_minute", 175.0)?;
        let margin = config_number("safety_margin", 0.85)?;
        let budget = max_audio_seconds(resolution) * margin;
        let script_template = config_or("script_template", "script");

        // Measure what the template adds around the body, then give the body what is left.
        let mut context = json!({
            "title": content.title,
            "body": "",
            "locale": content.locale,
            "kind": content.kind,
            "url": content.url,
            "source": content.source,
            // Every field the CMS (or a batch file's row) sent: `{{fields.first_name}}`.
            "fields": serde_json::from_str::<serde_json::Value>(&content.fields_json)
                .unwrap_or_default(),
        });
        let frame = render(&script_template, &context)?;
        let body_budget = budget - speaking_seconds(&frame, wpm);
        if body_budget <= 0.0 {
            return Err(PluginError::Template(format!(
                "template {script_template:?} alone takes longer than the {budget:.0} s limit"
            )));
        }
        let body = narration_body(&content.title, &content.body_text);
        context["body"] = json!(fit_to_seconds(&body, body_budget, wpm));
        let script = tidy_stops(&render(&script_template, &context)?);
        let prompt = render(&config_or("prompt_template", "prompt"), &context)?;
        info(&format!(
            "script: {} words, ~{:.1} s of {:.0} s allowed",
            script.split_whitespace().count(),
            speaking_seconds(&script, wpm),
            max_audio_seconds(resolution)
        ));

        let voice = config_or("voice", &voice_for(&content.locale));
        Ok(Decision::Generate(vec![VideoPlan {
            key: content.locale.clone(),
            speech: Speech {
                text: script.clone(),
                voice,
                language: content.locale.clone(),
                provider: String::new(),
            },
            script,
            prompt,
            image_url,
            resolution,
            turbo: config_or("turbo", "false") == "true",
            target_field: config_or("target_field", "video_url"),
        }]))
    }
}

/// espeak-ng voice ids are lower-case language tags ("en-us", "de", "pt-br").
fn voice_for(locale: &str) -> String {
    if locale.is_empty() {
        "en-us".into()
    } else {
        locale.to_ascii_lowercase()
    }
}

vidhook_plugin_sdk::export_shortening_plugin!(Presenter);
