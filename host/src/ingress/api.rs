//! The JSON API under `/api`: renders (read), approval, operator actions, plugins, the audit
//! log. Every route passes the role gate first (`crate::auth`): no token → 401, a role too low →
//! 403, before any body is read. Viewers get signed parameters cut out of what they read.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{error, read_body};
use crate::app::App;
use crate::auth::{AuthError, Caller, Role};
use crate::jobs::operator::{self, Operator, OperatorError};

pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let read = Router::new()
        .route("/api/renders", get(list_renders))
        .route("/api/renders/{id}", get(show_render))
        .route("/api/plugins", get(list_plugins))
        .route_layer(middleware::from_fn_with_state(app.clone(), viewer));
    let decide = Router::new()
        .route("/api/renders/{id}/approve", post(approve_render))
        .route("/api/renders/{id}/reject", post(reject_render))
        .route_layer(middleware::from_fn_with_state(app.clone(), editor));
    let operate = Router::new()
        .route("/api/plugins", post(install_plugin))
        .route("/api/renders/{id}/{action}", post(operator_action))
        .route("/api/audit", get(audit))
        .route_layer(middleware::from_fn_with_state(app, admin));
    read.merge(decide).merge(operate)
}

pub(super) async fn viewer(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    gate(&app, request, next, Role::Viewer).await
}

pub(super) async fn editor(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    gate(&app, request, next, Role::Editor).await
}

pub(super) async fn admin(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    gate(&app, request, next, Role::Admin).await
}

/// Lets the request through (with its [`Caller`]) if its token's role reaches `need`.
pub(super) async fn gate(app: &App, mut request: Request, next: Next, need: Role) -> Response {
    let token = app.config.plugins.admin_token.as_deref();
    match crate::auth::authorize(&app.store, token, request.headers(), need).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(err @ AuthError::Unauthenticated) => {
            crate::metrics::api_refused("unauthenticated");
            let mut response = error(StatusCode::UNAUTHORIZED, err.to_string());
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            response
        }
        Err(err @ AuthError::Forbidden { .. }) => {
            crate::metrics::api_refused("forbidden");
            error(StatusCode::FORBIDDEN, err.to_string())
        }
        Err(AuthError::Store(err)) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

/// A render as a caller may see it: viewers get no unapproved preview and no signed parameters.
fn visible(render: crate::store::RenderRow, caller: &Caller) -> crate::store::RenderRow {
    if caller.role > Role::Viewer {
        return render;
    }
    let redact = |text: Option<String>| text.map(|t| crate::auth::redact_signed(&t));
    crate::store::RenderRow {
        preview_url: render.preview_url.filter(|_| render.approved_at.is_some()),
        plan_json: redact(render.plan_json),
        provenance_json: redact(render.provenance_json),
        error: redact(render.error),
        ..render
    }
}

/// `?run=ID`: only that run's renders.
#[derive(Deserialize)]
struct RenderFilter {
    run: Option<String>,
}

async fn list_renders(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Query(filter): axum::extract::Query<RenderFilter>,
) -> Response {
    match app.store.list_renders(200, filter.run.as_deref()).await {
        Ok(rows) => {
            let rows: Vec<_> = rows
                .into_iter()
                .map(|(render, source, entry)| {
                    json!({"source": source, "entry": entry, "render": visible(render, &caller)})
                })
                .collect();
            Json(rows).into_response()
        }
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

async fn show_render(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match (app.store.render(&id).await, app.store.steps(&id).await) {
        (Ok(Some(render)), Ok(mut steps)) => {
            if caller.role == Role::Viewer {
                for step in &mut steps {
                    step.detail = crate::auth::redact_signed(&step.detail);
                }
            }
            Json(json!({"render": visible(render, &caller), "steps": steps})).into_response()
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

#[derive(Deserialize, Default)]
struct ApprovalNote {
    #[serde(default)]
    note: String,
}

async fn approve_render(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(&app, &caller, &id, &headers, body, true).await
}

async fn reject_render(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(&app, &caller, &id, &headers, body, false).await
}

/// An editor approves (→ the paid generation goes ahead) or rejects a previewed render.
async fn decide(
    app: &App,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    body: Body,
    approved: bool,
) -> Response {
    // The gate checked the token; only now is a (small) body read.
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
                actor: &caller.name,
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

/// A small JSON body with a non-blank reason (the gate checked the token); `Err` is the response.
async fn operator_request(headers: &HeaderMap, body: Body) -> Result<OperatorRequest, Response> {
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
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match operator_request(&headers, body).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let who = Operator {
        actor: &caller.name,
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

async fn audit(State(app): State<Arc<App>>) -> Response {
    match app.store.audit_entries(200).await {
        Ok(entries) => Json(entries).into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}
