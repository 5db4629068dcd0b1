//! Plugins: the installed versions (viewers), installing one and switching one off or on for a
//! source (admins, audited), and the audit log (admins).

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
use crate::store::{AuditEntry, PluginRow};

/// Installed plugin versions.
#[utoipa::path(
    get, path = "/plugins", tag = "plugins",
    responses((status = 200, body = Vec<PluginRow>))
)]
pub async fn list(State(app): State<Arc<App>>) -> Response {
    match app.store.plugins().await {
        Ok(rows) => Json(rows).into_response(),
        Err(err) => store_down(err),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallRequest {
    /// The manifest, as TOML text.
    manifest: String,
    /// The component, base64.
    component: String,
    /// Allow capabilities the previous version did not have.
    #[serde(default)]
    grant: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Installed {
    plugin: String,
    digest: String,
    granted: Vec<String>,
    /// The same version with the same digest was installed already.
    unchanged: bool,
}

/// Install a plugin version.
#[utoipa::path(
    post, path = "/plugins", tag = "plugins", request_body = InstallRequest,
    responses(
        (status = 201, body = Installed),
        (status = 200, description = "Already installed", body = Installed),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Needs a grant, or the version exists with another digest", body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid component for its manifest", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn install(State(app): State<Arc<App>>, headers: HeaderMap, body: Body) -> Response {
    let request: InstallRequest = match json_body(&headers, body, 64 << 20).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    use base64::Engine;
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(request.component.trim())
    else {
        return problem(StatusCode::BAD_REQUEST, "component is not base64");
    };
    let manifest = match crate::plugins::Manifest::parse(&request.manifest) {
        Ok(manifest) => manifest,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match app.plugins.install(&bytes, manifest, request.grant).await {
        Ok(installed) => {
            let status = if installed.unchanged {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            let body = Installed {
                plugin: installed.plugin.id(),
                digest: installed.plugin.digest.clone(),
                granted: installed.granted,
                unchanged: installed.unchanged,
            };
            (status, Json(body)).into_response()
        }
        Err(err) => {
            use crate::plugins::InstallError;
            tracing::warn!(error = %err, "plugin install refused");
            match &err {
                InstallError::NeedsGrant { .. } | InstallError::VersionExists { .. } => {
                    problem(StatusCode::CONFLICT, err.to_string())
                }
                InstallError::Store(_) | InstallError::Io(_) => store_down(err),
                _ => problem(StatusCode::UNPROCESSABLE_ENTITY, err.to_string()),
            }
        }
    }
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    /// Whether the source's chain runs this plugin for renders accepted from now on.
    enabled: bool,
}

/// Switch a plugin of a source's chain off or on (renders accepted from now on).
#[utoipa::path(
    put, path = "/sources/{source}/plugins/{plugin}", tag = "sources",
    params(("source" = String, Path), ("plugin" = String, Path, description = "A plugin of the source's chain, by name")),
    request_body = Switch,
    responses(
        (status = 200, body = Switch),
        (status = 404, description = "No such source, or the plugin is not in its chain", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn switch(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((source, plugin)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(config) = app.config.sources.get(&source) else {
        return problem(StatusCode::NOT_FOUND, format!("no source named {source:?}"));
    };
    let in_chain = config.settings.plugins.iter().any(|p| p.plugin() == plugin);
    if !in_chain {
        return problem(
            StatusCode::NOT_FOUND,
            format!("{plugin:?} is not in {source:?}'s plugin chain"),
        );
    }
    let request: Switch = match json_body(&headers, body, 1024).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let action = if request.enabled {
        "plugin-enable"
    } else {
        "plugin-disable"
    };
    let audit = crate::store::Audit {
        actor: &caller.name,
        action,
        reason: "",
    };
    match app
        .store
        .switch_source_plugin(&source, &plugin, request.enabled, &audit)
        .await
    {
        Ok(()) => Json(request).into_response(),
        Err(err) => store_down(err),
    }
}

/// The audit log, newest first (operator actions, template and lexicon changes, switches).
#[utoipa::path(
    get, path = "/audit", tag = "plugins",
    responses((status = 200, body = Vec<AuditEntry>))
)]
pub async fn audit(State(app): State<Arc<App>>) -> Response {
    match app.store.audit_entries(200).await {
        Ok(entries) => Json(entries).into_response(),
        Err(err) => store_down(err),
    }
}
