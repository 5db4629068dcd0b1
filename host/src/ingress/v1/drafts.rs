//! A template's draft: text an editor keeps without making it live. Saving a draft changes no
//! render; publishing it is saving a version (`POST /templates/{name}/versions`), which removes
//! the draft it came from. Writes need an editor and are audited.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use super::templates::{refusal, versions_of, NewVersion, MAX_TEMPLATE_BYTES};
use super::{json_body, problem, store_down};
use crate::app::App;
use crate::auth::Caller;
use crate::ingress::problem::Problem;
use crate::store::{Audit, Authored, DraftRow};

/// Every template's draft (a template without one is not listed).
#[utoipa::path(
    get, path = "/templates/drafts", tag = "templates",
    responses((status = 200, body = Vec<DraftRow>))
)]
pub async fn list(State(app): State<Arc<App>>) -> Response {
    match app.store.template_drafts().await {
        Ok(drafts) => Json(drafts).into_response(),
        Err(err) => store_down(err),
    }
}

/// Save (or replace) a template's draft; nothing renders with it until it is published. Its text
/// need not compile yet (publishing checks it); its note is offered as the version's.
#[utoipa::path(
    put, path = "/templates/{name}/draft", tag = "templates",
    params(("name" = String, Path)), request_body = NewVersion,
    responses(
        (status = 200, body = DraftRow),
        (status = 404, description = "No such template", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn save(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request: NewVersion = match json_body(&headers, body, MAX_TEMPLATE_BYTES + 1024).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    if let Some(response) = refusal(&name, &request.body, &request.note) {
        return response;
    }
    let live = match versions_of(&app, &name).await {
        Ok(versions) => versions[0].version,
        Err(response) => return response,
    };
    let by = Authored {
        author: &caller.name,
        note: &request.note,
        restored_from: None,
    };
    match app
        .store
        .save_template_draft(&name, &request.body, by, live)
        .await
    {
        Ok(draft) => {
            audited(&app, &caller, "template-draft", &name, &request.note).await;
            Json(draft).into_response()
        }
        Err(err) => store_down(err),
    }
}

/// Discard a template's draft (the live version is unchanged).
#[utoipa::path(
    delete, path = "/templates/{name}/draft", tag = "templates",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "Discarded"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn discard(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Response {
    match app.store.discard_template_draft(&name, None).await {
        Ok(true) => {
            audited(&app, &caller, "template-draft-discard", &name, "").await;
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => problem(
            StatusCode::NOT_FOUND,
            format!("template {name:?} has no draft"),
        ),
        Err(err) => store_down(err),
    }
}

async fn audited(app: &App, caller: &Caller, action: &str, name: &str, note: &str) {
    let audit = Audit {
        actor: &caller.name,
        action,
        reason: note,
    };
    if let Err(err) = app.store.audit(&audit, name, "draft").await {
        tracing::error!(template = name, error = %err, "draft change not audited");
    }
}
