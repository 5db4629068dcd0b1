//! A render's captions, for editors to correct before (or after) the video is paid for: the cues,
//! the standard they are held to, and the corrections saved so far. Writes need an editor, are
//! checked against the standard and audited (`jobs::caption_edits`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{json_body, problem, store_down};
use crate::app::App;
use crate::auth::Caller;
use crate::ingress::problem::Problem;
use crate::jobs::caption_edits::{self, EditError};
use crate::store::{Audit, Authored, CaptionEditRow, RenderRow};
use crate::tts::caption_standard::Standard;
use crate::tts::captions::Cue;

/// The most a caption edit may weigh (a minute of narration is a few dozen cues).
const MAX_BODY_BYTES: usize = 256 << 10;

#[derive(Serialize, ToSchema)]
pub struct CaptionsView {
    /// The narration's language (BCP 47).
    language: String,
    /// The limits the cues are held to (Netflix's Timed Text Style Guide for the language).
    standard: Standard,
    /// The narration's length in seconds.
    seconds: f64,
    cues: Vec<Cue>,
    /// Cues that read faster than the standard's speed (editors may condense their words).
    too_fast: Vec<String>,
    /// Corrections saved, newest first (none: the cues are as the audio made them).
    versions: Vec<CaptionEditRow>,
}

async fn render_of(app: &App, id: &str) -> Result<RenderRow, Response> {
    match app.store.render(id).await {
        Ok(Some(render)) => Ok(render),
        Ok(None) => Err(problem(StatusCode::NOT_FOUND, "no such render")),
        Err(err) => Err(store_down(err)),
    }
}

/// A render's captions: its cues, their standard and the corrections saved so far.
#[utoipa::path(
    get, path = "/renders/{id}/captions", tag = "renders",
    params(("id" = String, Path)),
    responses(
        (status = 200, body = CaptionsView),
        (status = 404, description = "No such render, or no captions yet", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let render = match render_of(&app, &id).await {
        Ok(render) => render,
        Err(response) => return response,
    };
    let captions = match caption_edits::captions_of(&app, &render).await {
        Ok(Some(captions)) => captions,
        Ok(None) => return problem(StatusCode::NOT_FOUND, EditError::NoCaptions.to_string()),
        Err(err) => return store_down(err),
    };
    let versions = match app.store.caption_edits(&id).await {
        Ok(versions) => versions,
        Err(err) => return store_down(err),
    };
    Json(CaptionsView {
        too_fast: captions.standard.too_fast(&captions.cues),
        language: captions.language,
        standard: captions.standard,
        seconds: captions.seconds,
        cues: captions.cues,
        versions,
    })
    .into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptionEdit {
    /// Every cue, in order (text with its line breaks, start and end in seconds).
    cues: Vec<Cue>,
    /// Why (kept with the version).
    #[serde(default)]
    note: String,
}

#[derive(Serialize, ToSchema)]
pub struct CaptionsSaved {
    version: i64,
    /// Cues still faster than the standard's reading speed (saved all the same).
    too_fast: Vec<String>,
}

/// Correct a render's captions: the cues replace the current ones if they meet the standard.
#[utoipa::path(
    put, path = "/renders/{id}/captions", tag = "renders",
    params(("id" = String, Path)), request_body = CaptionEdit,
    responses(
        (status = 200, body = CaptionsSaved),
        (status = 404, description = "No such render", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No captions yet (the narration is not synthesised)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The cues break the standard: `detail` lists each problem", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn edit(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request: CaptionEdit = match json_body(&headers, body, MAX_BODY_BYTES).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    if request.note.chars().count() > 500 {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a note is at most 500 characters",
        );
    }
    let render = match render_of(&app, &id).await {
        Ok(render) => render,
        Err(response) => return response,
    };
    let by = Authored {
        author: &caller.name,
        note: &request.note,
        restored_from: None,
    };
    match caption_edits::edit(&app, &render, request.cues, by).await {
        Ok((version, too_fast)) => {
            let audit = Audit {
                actor: &caller.name,
                action: "captions-edit",
                reason: &request.note,
            };
            if let Err(err) = app.store.audit(&audit, &id, &format!("v{version}")).await {
                tracing::error!(render = %id, error = %err, "caption edit not audited");
            }
            tracing::info!(render = %id, version, by = %caller.name, "captions corrected");
            Json(CaptionsSaved { version, too_fast }).into_response()
        }
        Err(err @ EditError::NoCaptions) => problem(StatusCode::CONFLICT, err.to_string()),
        Err(err @ EditError::Invalid(_)) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, err.to_string())
        }
        Err(EditError::Internal(err)) => {
            tracing::error!(render = %id, error = %err, "caption edit failed");
            store_down(err)
        }
    }
}
