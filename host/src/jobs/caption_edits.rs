//! An editor's correction of a render's captions: checked against the caption standard for the
//! narration's language (`tts::caption_standard`), kept as a version, and made what the render's
//! caption files say: the cues the keep step turns into VTT and SRT and, once the video is kept,
//! those files themselves (the links the CMS holds keep working and say the corrected words).
//! For a render awaiting approval, the corrected cues are what ships with the paid video, and its
//! $0 preview is made again so that the captions burned into it follow.

use serde_json::Value;

use super::steps::{stored_plan, submit_request};
use crate::app::App;
use crate::store::{Authored, RenderRow};
use crate::tts::caption_standard::Standard;
use crate::tts::captions::{self, Cue};

/// A render's captions as they stand, with the standard they are held to.
pub struct Captions {
    pub language: String,
    pub standard: Standard,
    pub cues: Vec<Cue>,
    /// The narration's length: no cue may run past it (beyond a cue's linger).
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("this render has no captions yet: its narration has not been synthesised")]
    NoCaptions,
    #[error("the captions do not meet the standard: {}", .0.join("; "))]
    Invalid(Vec<String>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The render's current captions (none before its narration is synthesised).
pub async fn captions_of(app: &App, render: &RenderRow) -> anyhow::Result<Option<Captions>> {
    let Some(cues) = captions::load_cues(&app.media, &render.id).await? else {
        return Ok(None);
    };
    let language = stored_plan(render)?.language;
    Ok(Some(Captions {
        standard: Standard::for_language(&language),
        language,
        cues,
        seconds: render.audio_seconds.unwrap_or_default(),
    }))
}

/// Replaces the render's captions with `cues` (checked first); returns the version saved and
/// the cues still faster than the standard's reading speed.
pub async fn edit(
    app: &App,
    render: &RenderRow,
    cues: Vec<Cue>,
    by: Authored<'_>,
) -> Result<(i64, Vec<String>), EditError> {
    let current = captions_of(app, render)
        .await?
        .ok_or(EditError::NoCaptions)?;
    let mut problems = shape_problems(&cues, current.seconds);
    problems.extend(current.standard.problems(&cues));
    if !problems.is_empty() {
        return Err(EditError::Invalid(problems));
    }
    let json = serde_json::to_string(&cues).map_err(anyhow::Error::from)?;
    let version = app
        .store
        .save_caption_edit(&render.id, &json, by)
        .await
        .map_err(anyhow::Error::from)?;
    captions::save_cues(&app.media, &render.id, &cues)
        .await
        .map_err(anyhow::Error::from)?;
    let provenance: Value = serde_json::from_str(render.provenance_json.as_deref().unwrap_or("{}"))
        .map_err(anyhow::Error::from)?;
    let bundle = &provenance["bundle"];
    if let Some(key) = bundle["captions_vtt"].as_str() {
        app.media
            .put(key, captions::to_vtt(&cues).as_bytes())
            .await
            .map_err(anyhow::Error::from)?;
    }
    if let Some(key) = bundle["captions_srt"].as_str() {
        app.media
            .put(key, captions::to_srt(&cues).as_bytes())
            .await
            .map_err(anyhow::Error::from)?;
    }
    if render.state == "awaiting_approval" && render.preview_url.is_some() {
        remake_preview(app, render).await?;
        tracing::info!(render = %render.id, "approval preview made again with the corrected captions");
    }
    Ok((version, current.standard.too_fast(&cues)))
}

/// A render awaiting approval: its $0 preview made again from the same inputs, so the captions
/// burned into it say the correction.
async fn remake_preview(app: &App, render: &RenderRow) -> anyhow::Result<()> {
    let request = submit_request(app, render, &stored_plan(render)?).await?;
    app.preview
        .approval_preview(&request)
        .await
        .map_err(|e| anyhow::anyhow!("the preview could not be made again: {e}"))?;
    Ok(())
}

/// What makes `cues` no captions at all for a narration of `seconds`: none, an empty cue, one
/// that ends before it starts, out of order, or past the narration's end (a second of slack).
fn shape_problems(cues: &[Cue], seconds: f64) -> Vec<String> {
    if cues.is_empty() {
        return vec!["there are no cues".into()];
    }
    let mut out = Vec::new();
    for (i, cue) in cues.iter().enumerate() {
        let n = i + 1;
        if cue.text.trim().is_empty() {
            out.push(format!("cue {n} has no text"));
        }
        if !(cue.start.is_finite() && cue.end.is_finite())
            || cue.start < 0.0
            || cue.end <= cue.start
        {
            out.push(format!(
                "cue {n} must start at 0 s or later and end after it starts"
            ));
        }
        if cue.end > seconds + 1.0 {
            out.push(format!(
                "cue {n} ends at {:.2} s, after the narration ({seconds:.2} s)",
                cue.end
            ));
        }
        if i > 0 && cue.start < cues[i - 1].start {
            out.push(format!("cue {n} starts before cue {i}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_that_are_not_captions_are_refused_in_words() {
        let cue = |start: f64, end: f64, text: &str| Cue {
            start,
            end,
            text: text.into(),
        };
        assert_eq!(shape_problems(&[], 10.0), ["there are no cues"]);
        let problems = shape_problems(
            &[cue(2.0, 3.0, "A"), cue(1.0, 0.5, " "), cue(4.0, 20.0, "B")],
            10.0,
        );
        assert_eq!(
            problems,
            [
                "cue 2 has no text",
                "cue 2 must start at 0 s or later and end after it starts",
                "cue 2 starts before cue 1",
                "cue 3 ends at 20.00 s, after the narration (10.00 s)",
            ]
        );
    }
}
