//! Renders: the filtered, paged list, one render's step timeline and provenance, and the actions
//! on them — approve or reject a previewed render (editors), retry, adopt, resubmit or cancel
//! (admins, audited, with a reason). Viewers see no unapproved preview and no signed parameters.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{json_body, optional_json_body, problem, store_down};
use crate::app::App;
use crate::auth::{Caller, Role};
use crate::ingress::problem::Problem;
use crate::jobs::operator::{self, Operator, OperatorError};
use crate::store::{ListedRender, RenderQuery, RenderRow, StepRow};

/// A render as lists show it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderSummary {
    pub id: String,
    pub source: String,
    pub entry: String,
    /// The entry's title when it was published.
    pub title: String,
    /// Where the entry is published, when its CMS said.
    pub entry_url: Option<String>,
    /// Which video of the entry (its locale, or a plan's key).
    pub key: String,
    /// The next step to run, or where it ended.
    pub state: String,
    pub error_category: Option<String>,
    pub error: Option<String>,
    /// Credits counted for it (the actual figure once known, else the estimate).
    pub credits: i64,
    pub audio_seconds: Option<f64>,
    pub video_url: Option<String>,
    /// The kept video's poster and WebVTT captions (public links, like the video's).
    pub poster_url: Option<String>,
    pub captions_url: Option<String>,
    /// The $0 preview, for a render that waits for approval.
    pub preview_url: Option<String>,
    pub run_id: Option<String>,
    /// How much of the content's text the narration keeps, when not all of it.
    pub shortened: Option<crate::content::WordsKept>,
    /// What the video will say (once planned).
    pub narration: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When it ended (done, failed, skipped), if it has.
    pub finished_at: Option<i64>,
}

impl RenderSummary {
    /// The summaries of `rows` as `caller` may see them, their credits read in one query.
    pub(super) async fn all(
        app: &App,
        rows: Vec<ListedRender>,
        caller: &Caller,
    ) -> Result<Vec<RenderSummary>, crate::store::StoreError> {
        let ids: Vec<&str> = rows.iter().map(|r| r.render.id.as_str()).collect();
        let credits = app.store.credits_of_renders(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|listed| {
                let render = listed.render;
                let credits = credits.get(&render.id).copied().unwrap_or(0);
                let kept =
                    crate::jobs::Companions::of(&app.media, render.provenance_json.as_deref())
                        .unwrap_or_default();
                // One parse of the plan gives both what it says and how much it kept.
                let plan = render
                    .plan_json
                    .as_deref()
                    .and_then(|p| serde_json::from_str::<crate::plugins::Plan>(p).ok());
                let shortened = plan.as_ref().and_then(|p| p.shortened);
                let narration = plan.map(|p| p.speech_text);
                let render = visible(app, render, caller);
                RenderSummary {
                    credits,
                    shortened,
                    narration,
                    source: listed.source,
                    entry: listed.entry,
                    title: listed.title,
                    entry_url: listed.entry_url,
                    poster_url: kept.poster,
                    captions_url: kept.captions_vtt,
                    finished_at: render.finished_at,
                    id: render.id,
                    key: render.plan_key,
                    state: render.state,
                    error_category: render.error_category,
                    error: render.error,
                    audio_seconds: render.audio_seconds,
                    video_url: render.video_url,
                    preview_url: render.preview_url,
                    run_id: render.run_id,
                    created_at: render.created_at,
                    updated_at: render.updated_at,
                }
            })
            .collect())
    }
}

/// A render as a caller may see it: editors and up get a short-lived signed link to its approval
/// preview; viewers get no preview at all and no signed parameters.
fn visible(app: &App, render: RenderRow, caller: &Caller) -> RenderRow {
    if caller.role > Role::Viewer {
        return RenderRow {
            preview_url: render.preview_url.map(|p| app.media.preview_link(&p)),
            ..render
        };
    }
    let redact = |text: Option<String>| text.map(|t| crate::auth::redact_signed(&t));
    RenderRow {
        preview_url: None,
        plan_json: redact(render.plan_json),
        provenance_json: redact(render.provenance_json),
        error: redact(render.error),
        ..render
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only renders in this state (`done`, `failed`, `awaiting_approval`…).
    state: Option<String>,
    /// Only this source's renders.
    source: Option<String>,
    /// Only this run's renders (a backfill or batch).
    run: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// The `next` of the previous page.
    after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RenderPage {
    items: Vec<RenderSummary>,
    /// Pass as `after` for the next page; none: this was the last.
    next: Option<String>,
}

/// List renders, newest first.
#[utoipa::path(
    get, path = "/renders", tag = "renders", params(ListQuery),
    responses(
        (status = 200, body = RenderPage),
        (status = 400, description = "A filter or cursor is malformed", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<ListQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return problem(StatusCode::BAD_REQUEST, "limit must be 1-200");
    }
    if let Some(state) = query.state.as_deref().filter(|s| !s.is_empty()) {
        if crate::jobs::State::parse(state).is_none() {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("no render state {state:?}"),
            );
        }
    }
    let after = match query.after.as_deref().filter(|a| !a.is_empty()) {
        None => None,
        Some(cursor) => match cursor
            .split_once('.')
            .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)))
        {
            Some(after) => Some(after),
            None => return problem(StatusCode::BAD_REQUEST, "after: not a cursor from `next`"),
        },
    };
    let found = app
        .store
        .find_renders(&RenderQuery {
            state: query.state.as_deref().unwrap_or(""),
            source: query.source.as_deref().unwrap_or(""),
            run: query.run.as_deref().unwrap_or(""),
            limit,
            after,
        })
        .await;
    let rows = match found {
        Ok(rows) => rows,
        Err(err) => return store_down(err),
    };
    let next = (rows.len() as i64 == limit)
        .then(|| {
            rows.last()
                .map(|l| format!("{}.{}", l.render.created_at, l.render.id))
        })
        .flatten();
    match RenderSummary::all(&app, rows, &caller).await {
        Ok(items) => Json(RenderPage { items, next }).into_response(),
        Err(err) => store_down(err),
    }
}

/// A render with its step timeline and provenance.
#[derive(Serialize, ToSchema)]
pub struct RenderDetail {
    render: RenderRow,
    /// The render as lists show it (title, entry link, poster, captions, narration).
    summary: RenderSummary,
    /// Oldest first.
    steps: Vec<StepRow>,
    credits: i64,
}

/// One render: its row, step timeline and provenance.
#[utoipa::path(
    get, path = "/renders/{id}", tag = "renders",
    params(("id" = String, Path, description = "The render's id")),
    responses(
        (status = 200, body = RenderDetail),
        (status = 404, description = "No such render", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn show(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let store = &app.store;
    let found = async {
        let Some(listed) = store.listed_render(&id).await? else {
            return Ok(None);
        };
        let render = listed.render.clone();
        let steps = store.steps(&id).await?;
        let summary = RenderSummary::all(&app, vec![listed], &caller).await?;
        Ok::<_, crate::store::StoreError>(Some((render, steps, summary)))
    };
    match found.await {
        Ok(Some((render, mut steps, mut summary))) => {
            if caller.role == Role::Viewer {
                for step in &mut steps {
                    step.detail = crate::auth::redact_signed(&step.detail);
                }
            }
            let summary = summary.remove(0);
            Json(RenderDetail {
                render: visible(&app, render, &caller),
                credits: summary.credits,
                summary,
                steps,
            })
            .into_response()
        }
        Ok(None) => problem(StatusCode::NOT_FOUND, "no such render"),
        Err(err) => store_down(err),
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why (kept in the audit log).
    #[serde(default)]
    note: String,
}

/// The new state after an action.
#[derive(Serialize, ToSchema)]
pub struct Moved {
    render: String,
    /// What happened, in words.
    result: String,
}

/// Approve a previewed render: its paid generation goes ahead.
#[utoipa::path(
    post, path = "/renders/{id}/approve", tag = "renders",
    params(("id" = String, Path)), request_body(content = Option<Decision>),
    responses(
        (status = 200, body = Moved),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not awaiting approval", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn approve(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(&app, &caller, &id, &headers, body, true).await
}

/// Reject a previewed render: nothing is paid, the render is skipped.
#[utoipa::path(
    post, path = "/renders/{id}/reject", tag = "renders",
    params(("id" = String, Path)), request_body(content = Option<Decision>),
    responses(
        (status = 200, body = Moved),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not awaiting approval", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn reject(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    decide(&app, &caller, &id, &headers, body, false).await
}

async fn decide(
    app: &App,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    body: Body,
    approved: bool,
) -> Response {
    let decision: Decision = match optional_json_body(headers, body, 16 << 10).await {
        Ok(decision) => decision,
        Err(response) => return response,
    };
    // A rejection's note is the render's reason for ending: it says who decided.
    let note = match (approved, decision.note.trim()) {
        (true, note) => note.to_string(),
        (false, "") => format!("rejected by {}", caller.name),
        (false, note) => format!("rejected by {}: {note}", caller.name),
    };
    match app.store.decide_approval(id, approved, &note).await {
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
            let result = if approved {
                "approved: submit"
            } else {
                "rejected: skipped"
            };
            Json(Moved {
                render: id.to_string(),
                result: result.into(),
            })
            .into_response()
        }
        Ok(false) => match app.store.render(id).await {
            Ok(None) => problem(StatusCode::NOT_FOUND, "no such render"),
            Ok(Some(_)) => problem(StatusCode::CONFLICT, "the render is not awaiting approval"),
            Err(err) => store_down(err),
        },
        Err(err) => store_down(err),
    }
}

/// An operator action's body: why (required), and what it needs.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorRequest {
    /// Why (kept in the audit log); must not be blank.
    reason: String,
    /// For `adopt`: the provider's job id.
    #[serde(default)]
    job_id: Option<String>,
    /// For `resubmit`: the previous attempt may have made a job that is billed too.
    #[serde(default)]
    accept_double_charge: bool,
}

/// An operator action: `retry`, `adopt`, `resubmit` or `cancel`.
#[utoipa::path(
    post, path = "/renders/{id}/{action}", tag = "renders",
    params(
        ("id" = String, Path),
        ("action" = String, Path, description = "retry, adopt, resubmit or cancel"),
    ),
    request_body = OperatorRequest,
    responses(
        (status = 200, body = Moved),
        (status = 400, description = "No reason, or no job id for adopt", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such render or action", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The action does not apply, or could pay twice", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn act(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if !["retry", "adopt", "resubmit", "cancel"].contains(&action.as_str()) {
        return problem(StatusCode::NOT_FOUND, format!("no action {action:?}"));
    }
    let request: OperatorRequest = match json_body(&headers, body, 16 << 10).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    if request.reason.trim().is_empty() {
        return problem(StatusCode::BAD_REQUEST, "reason must not be blank");
    }
    let who = Operator {
        actor: &caller.name,
        reason: &request.reason,
    };
    let result = match action.as_str() {
        "retry" => operator::retry(&app.store, &id, &who).await,
        "adopt" => {
            let Some(job_id) = request.job_id.as_deref() else {
                return problem(StatusCode::BAD_REQUEST, "job_id is required");
            };
            operator::adopt(&app.store, &app.hosts, &id, job_id, &who).await
        }
        "resubmit" => operator::resubmit(&app.store, &id, request.accept_double_charge, &who).await,
        _ => operator::cancel(&app.store, &id, &who).await,
    };
    match result {
        Ok(message) => {
            app.wake.notify_waiters();
            Json(Moved {
                render: id,
                result: message,
            })
            .into_response()
        }
        Err(err @ OperatorError::NoSuchRender(_)) => {
            problem(StatusCode::NOT_FOUND, err.to_string())
        }
        Err(err @ OperatorError::Refused(_)) => problem(StatusCode::CONFLICT, err.to_string()),
        Err(OperatorError::Store(err)) => store_down(err),
    }
}
