//! The bundled digest plugin: the items a source published since its last scheduled tick, read
//! as one video (the OmniHuman guide's daily news digest).
//!
//! The script is the editor template `digest` (default: a greeting, then each item's title) with
//! `items` (each item's `title`, `summary` — its first sentences — `url` and `locale`) and
//! `count`; items are dropped from the end until the script fits the resolution's audio limit.
//! The presenter photo is the first item's. Settings: `resolution` (720p), `voice` (en-us),
//! `words_per_minute` (175), `safety_margin` (0.85), `script_template` (digest),
//! `prompt_template` (prompt).

use serde_json::{json, Value};
use vidhook_plugin_sdk::text::{fit_to_seconds, narration_body, speaking_seconds, tidy_stops};
use vidhook_plugin_sdk::{
    config_number, config_or, info, max_audio_seconds, parse_resolution, render, Content, Decision,
    Digest, PluginError, Speech, VideoPlan,
};

struct Daily;

impl Digest for Daily {
    fn digest(items: Vec<Content>) -> Result<Decision, PluginError> {
        if items.is_empty() {
            return Ok(Decision::Skip(
                "nothing was published since the last digest".into(),
            ));
        }
        let Some(image_url) = items.iter().find_map(|i| i.image_url.clone()) else {
            return Err(PluginError::Config(
                "no presenter image: set `presenter_image` on the source".into(),
            ));
        };
        let resolution = parse_resolution(&config_or("resolution", "720p"))?;
        let wpm = config_number("words_per_minute", 175.0)?;
        let budget = max_audio_seconds(resolution) * config_number("safety_margin", 0.85)?;
        let template = config_or("script_template", "digest");
        let listed: Vec<Value> = items
            .iter()
            .map(|item| {
                json!({
                    "title": item.title,
                    "summary": fit_to_seconds(&narration_body(&item.title, &item.body_text), 6.0, wpm),
                    "url": item.url,
                    "locale": item.locale,
                })
            })
            .collect();
        // The most items whose script fits.
        let mut count = listed.len();
        let script = loop {
            let context = json!({"items": &listed[..count], "count": count});
            let script = tidy_stops(&render(&template, &context)?);
            if speaking_seconds(&script, wpm) <= budget || count == 1 {
                break script;
            }
            count -= 1;
        };
        let context = json!({"title": format!("{count} stories"), "items": &listed[..count]});
        let prompt = render(&config_or("prompt_template", "prompt"), &context)?;
        info(&format!(
            "digest of {count} of {} items, ~{:.1} s",
            items.len(),
            speaking_seconds(&script, wpm)
        ));
        Ok(Decision::Generate(vec![VideoPlan {
            key: "digest".into(),
            speech: Speech {
                text: script.clone(),
                voice: config_or("voice", "en-us"),
                language: items[0].locale.clone(),
                provider: String::new(),
            },
            script,
            prompt,
            image_url,
            resolution,
            turbo: false,
            // A digest has no CMS entry of its own: nothing is written back.
            target_field: String::new(),
        }]))
    }
}

vidhook_plugin_sdk::export_digest!(Daily);
