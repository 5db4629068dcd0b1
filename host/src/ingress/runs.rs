//! `/api/runs`: runs of many renders (backfills, batches) with their progress; viewers read,
//! admins pause, resume and cancel (audited). A run's renders are listed by
//! `GET /api/renders?run=ID`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::json;

use super::error;
use crate::app::App;
use crate::auth::Caller;
use crate::store::RunState;

pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let read = Router::new()
        .route("/api/runs", get(list_runs))
        .route("/api/runs/{id}", get(show_run))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            super::api::viewer,
        ));
    let operate = Router::new()
        .route("/api/runs/{id}/{action}", post(set_state))
        .route_layer(middleware::from_fn_with_state(app, super::api::admin));
    read.merge(operate)
}

async fn list_runs(State(app): State<Arc<App>>) -> Response {
    let runs = match app.store.runs().await {
        Ok(runs) => runs,
        Err(err) => return error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    };
    let mut listed = Vec::new();
    for run in runs {
        match app.store.run_progress(&run.id).await {
            Ok(progress) => listed.push(json!({"run": run, "progress": progress})),
            Err(err) => return error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
        }
    }
    Json(listed).into_response()
}

async fn show_run(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let store = &app.store;
    match (store.run(&id).await, store.run_progress(&id).await) {
        (Ok(Some(run)), Ok(progress)) => {
            Json(json!({"run": run, "progress": progress})).into_response()
        }
        (Ok(None), _) => error(StatusCode::NOT_FOUND, "no such run"),
        (Err(err), _) | (_, Err(err)) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

async fn set_state(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let state = match action.as_str() {
        "pause" => RunState::Paused,
        "resume" => RunState::Active,
        "cancel" => RunState::Cancelled,
        other => return error(StatusCode::NOT_FOUND, format!("no action {other:?}")),
    };
    match app.store.set_run_state(&id, state).await {
        Ok(true) => {
            let audit = crate::store::Audit {
                actor: &caller.name,
                action: &action,
                reason: "",
            };
            if let Err(err) = app.store.audit(&audit, &id, "run").await {
                tracing::error!(run = %id, error = %err, "run action not audited");
            }
            app.wake.notify_waiters();
            Json(json!({"run": id, "state": state})).into_response()
        }
        Ok(false) => error(StatusCode::NOT_FOUND, "no such run"),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}
