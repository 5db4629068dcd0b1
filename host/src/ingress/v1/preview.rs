//! `POST /preview`: a template (a draft as typed, or a stored version) through a source's real
//! plugin chain against a stored event or pasted content. Nothing is saved or paid; synthesising
//! the narration (which a hosted engine bills) needs an editor, as does listening to it
//! (`/preview/narration`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::ToSchema;

use super::templates::MAX_TEMPLATE_BYTES;
use super::{json_body, problem, store_down};
use crate::app::App;
use crate::auth::{Caller, Role};
use crate::content::Content;
use crate::ingress::problem::{Problem, TemplateLocation};
use crate::preview::{self, Draft, Preview, PreviewError, Speak};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// The source whose chain and settings apply.
    source: String,
    /// The template being previewed (`script`, `prompt`…).
    template: String,
    /// The draft text; none: the stored `version` (or the latest).
    body: Option<String>,
    version: Option<i64>,
    /// A stored event to preview against …
    event_id: Option<String>,
    /// … or pasted content.
    content: Option<PastedContent>,
    /// Also synthesise the narration and measure it (editors; a hosted engine bills this).
    #[serde(default)]
    synthesize: bool,
    /// For `/preview/narration`: the video whose narration to hear (its key; none: the first).
    video: Option<String>,
}

/// Content typed or pasted by an editor.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PastedContent {
    #[serde(default)]
    title: String,
    /// Plain text.
    #[serde(default)]
    body: String,
    #[serde(default)]
    locale: String,
    /// The presenter photo (else the source's).
    image: Option<String>,
    /// Fields the templates read as `{{fields.NAME}}`.
    #[serde(default)]
    fields: serde_json::Value,
}

impl PastedContent {
    fn into_content(self, source: &str) -> Content {
        Content {
            source: source.to_string(),
            cms: "preview".into(),
            id: "preview".into(),
            revision: String::new(),
            kind: "post".into(),
            locale: if self.locale.is_empty() {
                "en".into()
            } else {
                self.locale
            },
            title: self.title,
            body_html: String::new(),
            body_text: self.body,
            url: None,
            image: self.image,
            fields: self.fields,
        }
    }
}

/// Preview a template against real content.
#[utoipa::path(
    post, path = "/preview", tag = "preview", request_body = PreviewRequest,
    responses(
        (status = 200, body = Preview),
        (status = 400, description = "Neither or both of event_id and content", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such source, event or template version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The template does not compile or render (strict mode): `location` says where; or a plugin refused the content", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn preview(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request: PreviewRequest =
        match json_body(&headers, body, MAX_TEMPLATE_BYTES + (64 << 10)).await {
            Ok(request) => request,
            Err(response) => return response,
        };
    if request.synthesize && caller.role < Role::Editor {
        return problem(
            StatusCode::FORBIDDEN,
            "synthesising a preview needs an editor",
        );
    }
    let speak = if request.synthesize {
        Speak::Measure
    } else {
        Speak::No
    };
    match run(&app, request, speak).await {
        Ok(preview) => Json(preview).into_response(),
        Err(response) => response,
    }
}

/// Listen to a preview's narration: one video's (`video`, else the first) synthesised with the
/// source's engine and lexicon, as WAV. A hosted engine bills this; the preview's `speech` says
/// how much before.
#[utoipa::path(
    post, path = "/preview/narration", tag = "preview", request_body = PreviewRequest,
    responses(
        (status = 200, description = "The narration (`x-narration-seconds`: its measured length)", content_type = "audio/wav"),
        (status = 400, description = "Neither or both of event_id and content", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such source, event, template version or video", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The template does not render, a plugin skipped the content, or speech failed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn narration(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let request: PreviewRequest =
        match json_body(&headers, body, MAX_TEMPLATE_BYTES + (64 << 10)).await {
            Ok(request) => request,
            Err(response) => return response,
        };
    let wanted = request.video.clone();
    let preview = match run(&app, request, Speak::Listen(wanted.clone())).await {
        Ok(preview) => preview,
        Err(response) => return response,
    };
    if let Some(reason) = preview.skipped {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a plugin skipped this content, so there is no narration: {reason}"),
        );
    }
    let heard = preview
        .videos
        .into_iter()
        .find_map(|v| Some((v.audio?, v.synthesized_seconds.unwrap_or_default())));
    match heard {
        Some((wav, seconds)) => (
            [
                (header::CONTENT_TYPE, "audio/wav".to_string()),
                (header::CACHE_CONTROL, "no-store".to_string()),
                (
                    HeaderName::from_static("x-narration-seconds"),
                    format!("{seconds:.2}"),
                ),
            ],
            wav,
        )
            .into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            format!(
                "this preview makes no video {:?}",
                wanted.unwrap_or_default()
            ),
        ),
    }
}

/// Runs a parsed preview request: the content, the template text, then the chain.
async fn run(app: &App, request: PreviewRequest, speak: Speak) -> Result<Preview, Response> {
    if !app.config.sources.contains_key(&request.source) {
        return Err(problem(
            StatusCode::NOT_FOUND,
            format!("no source named {:?}", request.source),
        ));
    }
    let content = match (request.event_id, request.content) {
        (Some(event), None) => match app.store.find_event_content(&event).await {
            Ok(Some(content)) if content.source == request.source => content,
            Ok(_) => {
                return Err(problem(
                    StatusCode::NOT_FOUND,
                    format!("no event {event:?} of this source"),
                ))
            }
            Err(err) => return Err(store_down(err)),
        },
        (None, Some(pasted)) => {
            let content = pasted.into_content(&request.source);
            if let Err(why) = content.validate() {
                return Err(problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    format!("content: {why}"),
                ));
            }
            content
        }
        _ => {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "give exactly one of event_id and content",
            ))
        }
    };
    let (version, body) = match request.body {
        Some(body) => (0, body),
        None => {
            let stored = match request.version {
                Some(version) => app.store.template_version(&request.template, version).await,
                None => app
                    .store
                    .template_versions(&request.template)
                    .await
                    .map(|rows| rows.into_iter().next()),
            };
            match stored {
                Ok(Some(row)) => (row.version, row.body),
                Ok(None) => return Err(problem(StatusCode::NOT_FOUND, "no such template version")),
                Err(err) => return Err(store_down(err)),
            }
        }
    };
    if body.len() > MAX_TEMPLATE_BYTES {
        return Err(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a template is at most {MAX_TEMPLATE_BYTES} bytes"),
        ));
    }
    let draft = Draft {
        name: &request.template,
        version,
        body: &body,
    };
    preview::preview(app, &request.source, content, draft, speak)
        .await
        .map_err(failed)
}

/// A preview that failed, as its answer.
fn failed(err: PreviewError) -> Response {
    match err {
        PreviewError::Template(failure) => {
            let at = failure.at.map(|(line, column)| TemplateLocation {
                template: failure.name.clone(),
                line,
                column,
            });
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, failure.to_string())
                .at(at)
                .into_response()
        }
        err @ PreviewError::UnknownSource(_) => problem(StatusCode::NOT_FOUND, err.to_string()),
        err @ (PreviewError::Plugin(_) | PreviewError::Speech(_)) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, err.to_string())
        }
        PreviewError::Busy => {
            let mut response = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                PreviewError::Busy.to_string(),
            );
            response.headers_mut().insert(
                header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            response
        }
        PreviewError::Internal(err) => {
            tracing::error!(error = %err, "preview failed");
            store_down(err)
        }
    }
}
