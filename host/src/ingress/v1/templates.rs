//! Editor templates: the latest of each, a template's versions, one version, the line diff
//! between two, a new version (checked to compile first) and a rollback (a new version with an
//! old body: history is never rewritten). Writes need an editor and are audited. Drafts, which
//! are not live, are in `drafts`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{json_body, problem, store_down};
use crate::app::App;
use crate::auth::Caller;
use crate::ingress::problem::{Problem, TemplateLocation};
use crate::store::TemplateRow;
use crate::templates::TemplateError;

/// The longest template body accepted.
pub const MAX_TEMPLATE_BYTES: usize = 64 << 10;
/// The longest note a version keeps.
const MAX_NOTE_CHARS: usize = 500;

/// The latest version of every template.
#[utoipa::path(
    get, path = "/templates", tag = "templates",
    responses((status = 200, body = Vec<TemplateRow>))
)]
pub async fn list(State(app): State<Arc<App>>) -> Response {
    match app.store.latest_templates().await {
        Ok(rows) => Json(rows).into_response(),
        Err(err) => store_down(err),
    }
}

pub(super) async fn versions_of(app: &App, name: &str) -> Result<Vec<TemplateRow>, Response> {
    match app.store.template_versions(name).await {
        Ok(rows) if rows.is_empty() => Err(problem(
            StatusCode::NOT_FOUND,
            format!("no template named {name:?}"),
        )),
        Ok(rows) => Ok(rows),
        Err(err) => Err(store_down(err)),
    }
}

/// Every version of a template, newest first.
#[utoipa::path(
    get, path = "/templates/{name}/versions", tag = "templates",
    params(("name" = String, Path)),
    responses(
        (status = 200, body = Vec<TemplateRow>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn versions(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    match versions_of(&app, &name).await {
        Ok(rows) => Json(rows).into_response(),
        Err(response) => response,
    }
}

async fn version_of(app: &App, name: &str, version: i64) -> Result<TemplateRow, Response> {
    match app.store.template_version(name, version).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(problem(
            StatusCode::NOT_FOUND,
            format!("template {name:?} has no version {version}"),
        )),
        Err(err) => Err(store_down(err)),
    }
}

/// One version of a template.
#[utoipa::path(
    get, path = "/templates/{name}/versions/{version}", tag = "templates",
    params(("name" = String, Path), ("version" = i64, Path)),
    responses(
        (status = 200, body = TemplateRow),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn version(
    State(app): State<Arc<App>>,
    Path((name, version)): Path<(String, i64)>,
) -> Response {
    match version_of(&app, &name, version).await {
        Ok(row) => Json(row).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    from: i64,
    to: i64,
}

/// One line of a diff: `op` is " " (both), "-" (only in `from`) or "+" (only in `to`).
#[derive(Serialize, ToSchema, Debug, PartialEq)]
pub struct DiffLine {
    op: String,
    text: String,
}

/// The line diff between two versions of a template.
#[utoipa::path(
    get, path = "/templates/{name}/diff", tag = "templates",
    params(("name" = String, Path), DiffQuery),
    responses(
        (status = 200, body = Vec<DiffLine>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn diff(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Response {
    let from = match version_of(&app, &name, query.from).await {
        Ok(row) => row,
        Err(response) => return response,
    };
    let to = match version_of(&app, &name, query.to).await {
        Ok(row) => row,
        Err(response) => return response,
    };
    // Off the runtime's threads, and within a time budget: versions are editors' text.
    match tokio::task::spawn_blocking(move || line_diff(&from.body, &to.body)).await {
        Ok(lines) => Json(lines).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "template diff failed");
            problem(StatusCode::INTERNAL_SERVER_ERROR, "the diff failed")
        }
    }
}

/// How long a diff may search for the shortest edit; past it the diff is still correct, only
/// coarser (a run of lines shown as removed and added).
const DIFF_BUDGET: std::time::Duration = std::time::Duration::from_millis(300);

/// A line diff (Myers, linear memory, bounded by [`DIFF_BUDGET`]).
fn line_diff(from: &str, to: &str) -> Vec<DiffLine> {
    // A last line without its newline is the same line as with it.
    let ended = |text: &str| match text.is_empty() || text.ends_with('\n') {
        true => text.to_string(),
        false => format!("{text}\n"),
    };
    let (from, to) = (ended(from), ended(to));
    let diff = similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .deadline(std::time::Instant::now() + DIFF_BUDGET)
        .diff_lines(&from, &to);
    diff.iter_all_changes()
        .map(|change| DiffLine {
            op: match change.tag() {
                similar::ChangeTag::Equal => " ",
                similar::ChangeTag::Delete => "-",
                similar::ChangeTag::Insert => "+",
            }
            .into(),
            text: change
                .value()
                .trim_end_matches('\n')
                .trim_end_matches('\r')
                .into(),
        })
        .collect()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersion {
    /// The template's Handlebars text.
    pub(super) body: String,
    /// Why (shown with the version).
    #[serde(default)]
    pub(super) note: String,
}

#[derive(Serialize, ToSchema)]
pub struct Saved {
    name: String,
    version: i64,
}

/// 422 with the line and column where a template does not compile.
pub(super) fn invalid_template(name: &str, err: TemplateError) -> Response {
    match err {
        TemplateError::Invalid { message, at } => {
            let at = at.map(|(line, column)| TemplateLocation {
                template: name.to_string(),
                line,
                column,
            });
            Problem::new(StatusCode::UNPROCESSABLE_ENTITY, message)
                .at(at)
                .into_response()
        }
        TemplateError::Store(err) => store_down(err),
        other => problem(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
}

/// Why a version or a draft may not have this name, body or note, as the answer (none: it may).
pub(super) fn refusal(name: &str, body: &str, note: &str) -> Option<Response> {
    if !valid_name(name) {
        return Some(problem(
            StatusCode::BAD_REQUEST,
            "a template name is 1-64 letters, digits, - or _",
        ));
    }
    if body.len() > MAX_TEMPLATE_BYTES {
        return Some(problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a template is at most {MAX_TEMPLATE_BYTES} bytes"),
        ));
    }
    if note.chars().count() > MAX_NOTE_CHARS {
        return Some(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("a note is at most {MAX_NOTE_CHARS} characters"),
        ));
    }
    None
}

async fn save_version(
    app: &App,
    caller: &Caller,
    name: &str,
    body: &str,
    (action, note, restored_from): (&str, &str, Option<i64>),
) -> Response {
    if let Some(response) = refusal(name, body, note) {
        return response;
    }
    let by = crate::store::Authored {
        author: &caller.name,
        note,
        restored_from,
    };
    match crate::templates::save(&app.store, name, body, by).await {
        Ok(version) => {
            let audit = crate::store::Audit {
                actor: &caller.name,
                action,
                reason: note,
            };
            if let Err(err) = app.store.audit(&audit, name, &format!("v{version}")).await {
                tracing::error!(template = name, error = %err, "template change not audited");
            }
            tracing::info!(template = name, version, by = %caller.name, action, "template saved");
            // A draft with this text is now live: it is no longer a draft.
            if action == "template-save" {
                if let Err(err) = app.store.discard_template_draft(name, Some(body)).await {
                    tracing::warn!(template = name, error = %err, "published draft not removed");
                }
            }
            (
                StatusCode::CREATED,
                Json(Saved {
                    name: name.into(),
                    version,
                }),
            )
                .into_response()
        }
        Err(err) => invalid_template(name, err),
    }
}

/// Save a new version of a template (it must compile).
#[utoipa::path(
    post, path = "/templates/{name}/versions", tag = "templates",
    params(("name" = String, Path)), request_body = NewVersion,
    responses(
        (status = 201, body = Saved),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Does not compile; `location` says where", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create(
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
    let how = ("template-save", request.note.as_str(), None);
    save_version(&app, &caller, &name, &request.body, how).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The version whose body becomes the new latest version.
    version: i64,
    /// Why (shown with the new version).
    #[serde(default)]
    note: String,
}

/// Roll back: the body of an older version is saved as the newest version.
#[utoipa::path(
    post, path = "/templates/{name}/rollback", tag = "templates",
    params(("name" = String, Path)), request_body = Rollback,
    responses(
        (status = 201, body = Saved),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rollback(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request: Rollback = match json_body(&headers, body, 1024).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let old = match version_of(&app, &name, request.version).await {
        Ok(row) => row,
        Err(response) => return response,
    };
    let how = (
        "template-rollback",
        request.note.as_str(),
        Some(old.version),
    );
    save_version(&app, &caller, &name, &old.body, how).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_diff_marks_kept_removed_and_added_lines() {
        let ops: Vec<String> = line_diff("a\nb\nc", "a\nc\nd")
            .into_iter()
            .map(|l| format!("{}{}", l.op, l.text))
            .collect();
        assert_eq!(ops, [" a", "-b", " c", "+d"]);
        assert!(line_diff("", "").is_empty());
    }

    #[test]
    fn a_diff_of_large_versions_stays_in_linear_memory() {
        // Two 12,000-line versions with nothing in common: an n×m table would be 144 M cells.
        let a: String = (0..12_000).map(|i| format!("a{i}\n")).collect();
        let b: String = (0..12_000).map(|i| format!("b{i}\n")).collect();
        let lines = line_diff(&a, &b);
        assert_eq!(lines.len(), 24_000);
        assert_eq!(lines.iter().filter(|l| l.op == "-").count(), 12_000);
    }
}
