//! Runs of many renders (backfills, batches) with their progress; viewers read, admins pause,
//! resume and cancel (audited). A run's renders are listed by `GET /renders?run=ID`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::{problem, store_down};
use crate::app::App;
use crate::auth::Caller;
use crate::ingress::problem::Problem;
use crate::store::{RunProgress, RunRow, RunState};

#[derive(Serialize, ToSchema)]
pub struct RunView {
    run: RunRow,
    progress: RunProgress,
}

/// Every run with its progress.
#[utoipa::path(
    get, path = "/runs", tag = "runs",
    responses((status = 200, body = Vec<RunView>))
)]
pub async fn list(State(app): State<Arc<App>>) -> Response {
    let runs = match app.store.runs().await {
        Ok(runs) => runs,
        Err(err) => return store_down(err),
    };
    let mut listed = Vec::with_capacity(runs.len());
    for run in runs {
        match app.store.run_progress(&run.id).await {
            Ok(progress) => listed.push(RunView { run, progress }),
            Err(err) => return store_down(err),
        }
    }
    Json(listed).into_response()
}

/// One run with its progress.
#[utoipa::path(
    get, path = "/runs/{id}", tag = "runs", params(("id" = String, Path)),
    responses(
        (status = 200, body = RunView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    let store = &app.store;
    match (store.run(&id).await, store.run_progress(&id).await) {
        (Ok(Some(run)), Ok(progress)) => Json(RunView { run, progress }).into_response(),
        (Ok(None), _) => problem(StatusCode::NOT_FOUND, "no such run"),
        (Err(err), _) | (_, Err(err)) => store_down(err),
    }
}

#[derive(Serialize, ToSchema)]
pub struct RunMoved {
    run: String,
    state: RunState,
}

/// Pause, resume or cancel a run (nothing of it is paid while paused or cancelled).
#[utoipa::path(
    post, path = "/runs/{id}/{action}", tag = "runs",
    params(("id" = String, Path), ("action" = String, Path, description = "pause, resume or cancel")),
    responses(
        (status = 200, body = RunMoved),
        (status = 404, description = "No such run or action", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn act(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let state = match action.as_str() {
        "pause" => RunState::Paused,
        "resume" => RunState::Active,
        "cancel" => RunState::Cancelled,
        other => return problem(StatusCode::NOT_FOUND, format!("no action {other:?}")),
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
            Json(RunMoved { run: id, state }).into_response()
        }
        Ok(false) => problem(StatusCode::NOT_FOUND, "no such run"),
        Err(err) => store_down(err),
    }
}
