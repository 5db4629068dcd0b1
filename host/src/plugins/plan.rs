//! The host's own view of a video plan (stored as JSON with the render) and the conversions
//! to and from the WIT types.

use serde::{Deserialize, Serialize};

use super::bindings::vidhook::plugin::types as wit;
use super::Decision;
use crate::content::{Content, WordsKept};
use crate::generation::Resolution;

/// One video to make, as decided by the plugin chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub key: String,
    pub script: String,
    pub prompt: String,
    pub speech_text: String,
    pub voice: String,
    pub language: String,
    pub tts_provider: String,
    pub image_url: String,
    pub resolution: Resolution,
    pub turbo: bool,
    pub target_field: String,
    /// Set by the host when the narration keeps less than all of the content's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortened: Option<WordsKept>,
}

/// The fewest words a narration may have: a video is paid for ($9.60 at the list price), and a
/// narration of a word or two ("row-1.") is nobody's video.
pub const MIN_NARRATION_WORDS: usize = 2;

impl Plan {
    /// Why this plan must not become a paid video, if it must not: its narration is empty,
    /// shorter than [`MIN_NARRATION_WORDS`], or nothing but `title` read aloud (content without
    /// a body). Checked at the plan step for every source, by the estimate and by batch and
    /// backfill before anything is queued.
    pub fn narration_problem(&self, title: &str) -> Option<String> {
        let words = crate::content::spoken_words;
        let narration = words(&self.speech_text);
        if narration.len() < MIN_NARRATION_WORDS {
            return Some(format!(
                "the narration of {:?} has {} word(s); a video needs at least {MIN_NARRATION_WORDS}: \
                 nothing is paid for it",
                self.key,
                narration.len()
            ));
        }
        if !title.trim().is_empty() && narration == words(title) {
            return Some(format!(
                "the narration of {:?} is only the title read aloud: the content has no body to \
                 narrate, so nothing is paid for it",
                self.key
            ));
        }
        None
    }

    /// How much of `content`'s text the narration keeps, when not all of it. Only a plan in
    /// the content's own language is compared (a translation says other words).
    pub fn shortening(&self, content: &Content) -> Option<WordsKept> {
        let primary = |tag: &str| tag.split(['-', '_']).next().unwrap_or("").to_lowercase();
        (primary(&self.language) == primary(&content.locale))
            .then(|| WordsKept::measure(&content.body_text, &self.speech_text))
            .flatten()
    }

    /// Records [`Plan::shortening`] in the plan (stored with its render).
    pub fn note_shortening(&mut self, content: &Content) {
        self.shortened = self.shortening(content);
    }

    pub(super) fn to_wit(&self) -> wit::VideoPlan {
        wit::VideoPlan {
            key: self.key.clone(),
            script: self.script.clone(),
            prompt: self.prompt.clone(),
            speech: wit::Speech {
                text: self.speech_text.clone(),
                voice: self.voice.clone(),
                language: self.language.clone(),
                provider: self.tts_provider.clone(),
            },
            image_url: self.image_url.clone(),
            resolution: match self.resolution {
                Resolution::P720 => wit::Resolution::P720,
                Resolution::P1080 => wit::Resolution::P1080,
            },
            turbo: self.turbo,
            target_field: self.target_field.clone(),
        }
    }

    fn from_wit(plan: wit::VideoPlan) -> Plan {
        Plan {
            key: plan.key,
            script: plan.script,
            prompt: plan.prompt,
            speech_text: plan.speech.text,
            voice: plan.speech.voice,
            language: plan.speech.language,
            tts_provider: plan.speech.provider,
            image_url: plan.image_url,
            resolution: match plan.resolution {
                wit::Resolution::P720 => Resolution::P720,
                wit::Resolution::P1080 => Resolution::P1080,
            },
            turbo: plan.turbo,
            target_field: plan.target_field,
            shortened: None,
        }
    }
}

pub(super) fn to_wit_content(content: &Content) -> wit::Content {
    wit::Content {
        source: content.source.clone(),
        cms: content.cms.clone(),
        id: content.id.clone(),
        revision: content.revision.clone(),
        fingerprint: content.fingerprint(),
        kind: content.kind.clone(),
        locale: content.locale.clone(),
        title: content.title.clone(),
        body_html: content.body_html.clone(),
        body_text: content.body_text.clone(),
        url: content.url.clone(),
        image_url: content.image.clone(),
        fields_json: content.fields.to_string(),
    }
}

/// Checks what the guest returned: plan keys must be unique and non-empty (one render each).
pub(super) fn from_wit_decision(decision: wit::Decision) -> Result<Decision, String> {
    match decision {
        wit::Decision::Skip(reason) => Ok(Decision::Skip(reason)),
        wit::Decision::Generate(plans) => {
            let plans: Vec<Plan> = plans.into_iter().map(Plan::from_wit).collect();
            let mut keys: Vec<&str> = plans.iter().map(|p| p.key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            if plans.is_empty() {
                return Err("generate with no plans".into());
            }
            if keys.len() != plans.len() || keys.iter().any(|k| k.is_empty()) {
                return Err("plan keys must be unique and non-empty".into());
            }
            Ok(Decision::Generate(plans))
        }
    }
}

pub(super) fn describe_error(error: &wit::PluginError) -> String {
    match error {
        wit::PluginError::InvalidContent(m) => format!("invalid content: {m}"),
        wit::PluginError::Template(m) => format!("template: {m}"),
        wit::PluginError::Config(m) => format!("configuration: {m}"),
        wit::PluginError::Internal(m) => format!("internal: {m}"),
    }
}

/// Bytes of text a decision carries (what the output cap bounds).
pub(super) fn decision_size(decision: &Decision) -> usize {
    match decision {
        Decision::Skip(reason) => reason.len(),
        Decision::Generate(plans) => plans
            .iter()
            .map(|p| {
                [
                    &p.key,
                    &p.script,
                    &p.prompt,
                    &p.speech_text,
                    &p.voice,
                    &p.language,
                ]
                .iter()
                .chain([&p.tts_provider, &p.image_url, &p.target_field].iter())
                .map(|s| s.len())
                .sum::<usize>()
            })
            .sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(narration: &str) -> Plan {
        Plan {
            key: "en-US".into(),
            script: narration.into(),
            prompt: "A presenter".into(),
            speech_text: narration.into(),
            voice: "en-us".into(),
            language: "en-US".into(),
            tts_provider: String::new(),
            image_url: "https://example.com/p.png".into(),
            resolution: Resolution::P720,
            turbo: false,
            target_field: "video_url".into(),
            shortened: None,
        }
    }

    #[test]
    fn a_narration_needs_words_and_more_than_its_title() {
        assert!(plan("row-1.").narration_problem("row-1").is_some());
        assert!(plan("").narration_problem("").is_some());
        let title_only =
            plan("Quarterly results are out.").narration_problem("Quarterly results are out");
        assert!(title_only.unwrap().contains("only the title"));
        assert_eq!(plan("Hello. World.").narration_problem("Hello"), None);
        assert_eq!(plan("Hi Ada! Welcome aboard.").narration_problem(""), None);
    }
}
