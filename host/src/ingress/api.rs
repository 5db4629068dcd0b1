//! The JSON API under `/api`: renders (read), approval, operator actions, plugins. Every write
//! checks the admin token before it reads a body.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{error, read_body};
use crate::app::App;
use crate::jobs::operator::{self, Operator, OperatorError};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/renders", get(list_renders))
        .route("/api/renders/{id}", get(show_render))
        .route("/api/plugins", post(install_plugin).get(list_plugins))
        .route("/api/renders/{id}/approve", post(approve_render))
        .route("/api/renders/{id}/reject", post(reject_render))
        .route("/api/renders/{id}/{action}", post(operator_action))
        .route("/api/audit", get(audit))
}

async fn list_renders(State(app): State<Arc<App>>) -> Response {
    match app.store.list_renders(200).await {
        Ok(rows) => {
            let rows: Vec<_> = rows
                .into_iter()
                .map(|(render, source, entry)| json!({"source": source, "entry": entry, "render": render}))
                .collect();
            Json(rows).into_response()
        }
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

async fn show_render(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match (app.store.render(&id).await, app.store.steps(&id).await) {
        (Ok(Some(render)), Ok(steps)) => {
            Json(json!({"render": render, "steps": steps})).into_response()
        }
        (Ok(None), _) => error(StatusCode::NOT_FOUND, "no such render"),
        (Err(err), _) | (_, Err(err)) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

#[derive(Deserialize)]
struct InstallRequest {
    /// The manifest, as TOML text.
    manifest: String,
    /// The component, base64.
    component: String,
    /// Allow capabilities the previous version did not have.
    #[serde(default)]
    grant: bool,
}

/// The admin API's guard: `Authorization: Bearer <plugins.admin_token>`, compared in constant
/// time; no token configured = the admin API is off. `Some` is the refusal to send.
fn admin_refusal(app: &App, headers: &HeaderMap) -> Option<Response> {
    let Some(expected) = app.config.plugins.admin_token.as_deref() else {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the admin API is disabled (set plugins.admin_token)",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !crate::cms::signing::same(expected.as_bytes(), presented.as_bytes()) {
        tracing::warn!("admin request rejected: bad token");
        return Some(error(StatusCode::UNAUTHORIZED, "invalid admin token"));
    }
    None
}

#[derive(Deserialize, Default)]
struct ApprovalNote {
    #[serde(default)]
    note: String,
}

async fn approve_render(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(&app, &id, &headers, body, true).await
}

async fn reject_render(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(&app, &id, &headers, body, false).await
}

/// An editor approves (→ the paid generation goes ahead) or rejects a previewed render.
async fn decide(app: &App, id: &str, headers: &HeaderMap, body: Body, approved: bool) -> Response {
    // The token first; only then is a (small) body read.
    if let Some(response) = admin_refusal(app, headers) {
        return response;
    }
    let body = match read_body(headers, body, 16 << 10, "admin").await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let decision: ApprovalNote = if body.is_empty() {
        ApprovalNote::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(decision) => decision,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"note\": …}}: {e}"),
                )
            }
        }
    };
    match app
        .store
        .decide_approval(id, approved, &decision.note)
        .await
    {
        Ok(true) => {
            tracing::info!(render = %id, approved, note = %decision.note, "approval decided");
            let audit = crate::store::Audit {
                actor: ADMIN_ACTOR,
                action: if approved { "approve" } else { "reject" },
                reason: &decision.note,
            };
            if let Err(err) = app.store.audit(&audit, id, "").await {
                tracing::error!(render = %id, error = %err, "approval not audited");
            }
            app.wake.notify_waiters();
            let state = if approved { "submit" } else { "skipped" };
            Json(json!({"render": id, "state": state})).into_response()
        }
        Ok(false) => match app.store.render(id).await {
            Ok(None) => error(StatusCode::NOT_FOUND, "no such render"),
            _ => error(StatusCode::CONFLICT, "the render is not awaiting approval"),
        },
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

/// Admin API: install a plugin version.
async fn install_plugin(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(response) = admin_refusal(&app, &headers) {
        return response;
    }
    let body = match read_body(&headers, body, 64 << 20, "admin").await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request: InstallRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("expected {{manifest, component, grant}}: {e}"),
            )
        }
    };
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(request.component.trim())
    else {
        return error(StatusCode::BAD_REQUEST, "component is not base64");
    };
    let manifest = match crate::plugins::Manifest::parse(&request.manifest) {
        Ok(manifest) => manifest,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match app.plugins.install(&bytes, manifest, request.grant).await {
        Ok(installed) => {
            let status = if installed.unchanged {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let body = json!({"plugin": installed.plugin.id(), "digest": installed.plugin.digest,
                              "granted": installed.granted, "unchanged": installed.unchanged});
            (status, Json(body)).into_response()
        }
        Err(err) => {
            use crate::plugins::InstallError;
            let status = match &err {
                InstallError::NeedsGrant { .. } | InstallError::VersionExists { .. } => {
                    StatusCode::CONFLICT
                }
                InstallError::Store(_) | InstallError::Io(_) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            tracing::warn!(error = %err, "plugin install refused");
            error(status, err.to_string())
        }
    }
}

async fn list_plugins(State(app): State<Arc<App>>) -> Response {
    match app.store.plugins().await {
        Ok(rows) => Json(rows).into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

/// An operator action's body: why (required), and what it needs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorRequest {
    reason: String,
    #[serde(default)]
    job_id: Option<String>,
    #[serde(default)]
    accept_double_charge: bool,
}

/// The admin token, then a small JSON body with a non-blank reason; `Err` is the response.
async fn operator_request(
    app: &App,
    headers: &HeaderMap,
    body: Body,
) -> Result<OperatorRequest, Response> {
    if let Some(response) = admin_refusal(app, headers) {
        return Err(response);
    }
    let body = read_body(headers, body, 16 << 10, "admin").await?;
    let request: OperatorRequest = serde_json::from_slice(&body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("expected {{\"reason\": …, \"job_id\"?, \"accept_double_charge\"?}}: {e}"),
        )
    })?;
    if request.reason.trim().is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "reason must not be blank"));
    }
    Ok(request)
}

/// Who the admin API's caller is, for the audit log (one admin token today).
const ADMIN_ACTOR: &str = "admin-token";

fn operator_answer(app: &App, result: Result<String, OperatorError>) -> Response {
    match result {
        Ok(message) => {
            app.wake.notify_waiters();
            Json(json!({"result": message})).into_response()
        }
        Err(err @ OperatorError::NoSuchRender(_)) => error(StatusCode::NOT_FOUND, err.to_string()),
        Err(err @ OperatorError::Refused(_)) => error(StatusCode::CONFLICT, err.to_string()),
        Err(OperatorError::Store(err)) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

/// `POST /api/renders/{id}/{retry|adopt|resubmit}`: the token, then the body, then the action.
async fn operator_action(
    State(app): State<Arc<App>>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match operator_request(&app, &headers, body).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let who = Operator {
        actor: ADMIN_ACTOR,
        reason: &request.reason,
    };
    let result = match action.as_str() {
        "retry" => operator::retry(&app.store, &id, &who).await,
        "adopt" => {
            let Some(job_id) = request.job_id.as_deref() else {
                return error(StatusCode::BAD_REQUEST, "job_id is required");
            };
            operator::adopt(&app.store, app.provider.as_ref(), &id, job_id, &who).await
        }
        "resubmit" => operator::resubmit(&app.store, &id, request.accept_double_charge, &who).await,
        other => return error(StatusCode::NOT_FOUND, format!("no action {other:?}")),
    };
    operator_answer(&app, result)
}

async fn audit(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(response) = admin_refusal(&app, &headers) {
        return response;
    }
    match app.store.audit_entries(200).await {
        Ok(entries) => Json(entries).into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}
