//! Built against `vidhook:plugin@0.1.0` (a frozen copy in wit/ here): the host, at a later 0.1.y,
//! must still load and run it. It plans one video whose script is the content's title.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use vidhook::plugin::types::{Resolution, Speech};

struct Legacy;

impl Guest for Legacy {
    fn plan(content: Content, _draft: Vec<VideoPlan>) -> Result<Decision, PluginError> {
        let image_url = content
            .image_url
            .ok_or_else(|| PluginError::Config("no image".into()))?;
        Ok(Decision::Generate(vec![VideoPlan {
            key: content.locale.clone(),
            script: format!("legacy: {}", content.title),
            prompt: "A presenter in a studio.".into(),
            speech: Speech {
                text: format!("legacy: {}", content.title),
                voice: "en-us".into(),
                language: content.locale,
                provider: String::new(),
            },
            image_url,
            resolution: Resolution::P720,
            turbo: false,
            target_field: "video_url".into(),
        }]))
    }
}

export!(Legacy);
