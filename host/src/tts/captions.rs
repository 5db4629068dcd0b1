//! Caption cues and their two file formats. Cues are cut and timed to the standard in
//! `caption_standard`, on the synthesised audio; a cue's text holds its line breaks.

use serde::{Deserialize, Serialize};

use crate::media::{MediaError, MediaStore};

/// Longest caption line, the usual broadcast figure.
const LINE_CHARS: usize = 42;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cue {
    /// Seconds from the start of the audio.
    pub start: f64,
    pub end: f64,
    pub text: String,
}

/// Where a render's cues are kept (beside its narration, as private media).
pub fn cues_key(render_id: &str) -> String {
    format!("audio/{render_id}.cues.json")
}

/// Keeps a render's cues for its captions (the keep step, the preview).
pub async fn save_cues(
    media: &MediaStore,
    render_id: &str,
    cues: &[Cue],
) -> Result<(), MediaError> {
    let key = cues_key(render_id);
    let json = serde_json::to_vec(cues).map_err(|e| MediaError::Remote(format!("{key}: {e}")))?;
    media.put(&key, &json).await
}

/// A render's cues, if its narration has any (renders spoken before captions existed do not).
pub async fn load_cues(
    media: &MediaStore,
    render_id: &str,
) -> Result<Option<Vec<Cue>>, MediaError> {
    let Some(json) = media.get(&cues_key(render_id)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&json)
        .map(Some)
        .map_err(|e| MediaError::Remote(format!("{}: {e}", cues_key(render_id))))
}

/// WebVTT (what `<track>` plays).
pub fn to_vtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for cue in cues {
        // A cue's text may not hold "-->", and `<`/`&` start markup.
        let text = wrap(&cue.text)
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace("-->", "->");
        out.push_str(&format!(
            "\n{} --> {}\n{text}\n",
            timestamp(cue.start, '.'),
            timestamp(cue.end, '.')
        ));
    }
    out
}

/// SubRip (what most editors and players import).
pub fn to_srt(cues: &[Cue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        out.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(cue.start, ','),
            timestamp(cue.end, ','),
            wrap(&cue.text)
        ));
    }
    out
}

/// `HH:MM:SS.mmm` (VTT) or `HH:MM:SS,mmm` (SRT).
fn timestamp(seconds: f64, separator: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{separator}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A cue's text as lines: its own breaks, or (a cue kept before cues had lines) broken at spaces
/// into lines of at most [`LINE_CHARS`].
fn wrap(text: &str) -> String {
    if text.contains('\n') {
        return text.to_string();
    }
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= LINE_CHARS => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vtt_and_srt() {
        let cues = [
            Cue {
                start: 0.0,
                end: 1.5,
                text: "Hello & welcome <b>".into(),
            },
            Cue {
                start: 61.25,
                end: 3725.0,
                text: "A line that is a good deal longer than forty-two characters in all.".into(),
            },
        ];
        assert_eq!(
            to_vtt(&cues),
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello &amp; welcome &lt;b>\n\n\
             00:01:01.250 --> 01:02:05.000\nA line that is a good deal longer than\n\
             forty-two characters in all.\n"
        );
        assert!(to_srt(&cues).starts_with(
            "1\n00:00:00,000 --> 00:00:01,500\nHello & welcome <b>\n\n2\n00:01:01,250"
        ));
    }
}
