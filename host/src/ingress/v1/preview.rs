//! `POST /preview`: a template (a draft as typed, or a stored version) through a source's real
//! plugin chain against a stored event or pasted content. Nothing is saved or paid; synthesising
//! the narration (which a hosted engine bills) needs an editor.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
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
use crate::preview::{self, Draft, Preview, PreviewError};

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
    if !app.config.sources.contains_key(&request.source) {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no source named {:?}", request.source),
        );
    }
    let content = match (request.event_id, request.content) {
        (Some(event), None) => match app.store.find_event_content(&event).await {
            Ok(Some(content)) if content.source == request.source => content,
            Ok(_) => {
                return problem(
                    StatusCode::NOT_FOUND,
                    format!("no event {event:?} of this source"),
                )
            }
            Err(err) => return store_down(err),
        },
        (None, Some(pasted)) => {
            let content = pasted.into_content(&request.source);
            if let Err(why) = content.validate() {
                return problem(StatusCode::UNPROCESSABLE_ENTITY, format!("content: {why}"));
            }
            content
        }
        _ => {
            return problem(
                StatusCode::BAD_REQUEST,
                "give exactly one of event_id and content",
            )
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
                Ok(None) => return problem(StatusCode::NOT_FOUND, "no such template version"),
                Err(err) => return store_down(err),
            }
        }
    };
    if body.len() > MAX_TEMPLATE_BYTES {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a template is at most {MAX_TEMPLATE_BYTES} bytes"),
        );
    }
    let draft = Draft {
        name: &request.template,
        version,
        body: &body,
    };
    match preview::preview(&app, &request.source, content, draft, request.synthesize).await {
        Ok(preview) => Json(preview).into_response(),
        Err(PreviewError::Template(failure)) => {
            let at = failure.at.map(|(line, column)| TemplateLocation {
                template: failure.name.clone(),
                line,
                column,
            });
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, failure.to_string())
                .at(at)
                .into_response()
        }
        Err(err @ PreviewError::UnknownSource(_)) => {
            problem(StatusCode::NOT_FOUND, err.to_string())
        }
        Err(err @ (PreviewError::Plugin(_) | PreviewError::Speech(_))) => {
            problem(StatusCode::UNPROCESSABLE_ENTITY, err.to_string())
        }
        Err(PreviewError::Busy) => {
            let mut response = problem(
                StatusCode::SERVICE_UNAVAILABLE,
                PreviewError::Busy.to_string(),
            );
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            response
        }
        Err(PreviewError::Internal(err)) => {
            tracing::error!(error = %err, "preview failed");
            store_down(err)
        }
    }
}
