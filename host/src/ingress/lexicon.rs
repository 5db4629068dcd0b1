//! `/api/sources/{source}/lexicon`: a source's pronunciation lexicon. Viewers read it; editors
//! set and remove terms (audited, like the CLI's `vidhook lexicon`). The next narration of the
//! source uses it.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{error, read_body};
use crate::app::App;
use crate::auth::Caller;
use crate::tts::lexicon_entry_problem;

pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let read = Router::new()
        .route("/api/sources/{source}/lexicon", get(list))
        .route_layer(middleware::from_fn_with_state(
            app.clone(),
            super::api::viewer,
        ));
    let edit = Router::new()
        .route(
            "/api/sources/{source}/lexicon",
            axum::routing::put(set).delete(remove),
        )
        .route_layer(middleware::from_fn_with_state(app, super::api::editor));
    read.merge(edit)
}

fn unknown_source(app: &App, source: &str) -> Option<Response> {
    (!app.config.sources.contains_key(source))
        .then(|| error(StatusCode::NOT_FOUND, format!("no source {source:?}")))
}

async fn list(State(app): State<Arc<App>>, Path(source): Path<String>) -> Response {
    if let Some(refused) = unknown_source(&app, &source) {
        return refused;
    }
    match app.store.lexicon(&source).await {
        Ok(entries) => Json(entries).into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetTerm {
    term: String,
    spoken: String,
    #[serde(default)]
    locale: String,
}

async fn set(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refused) = unknown_source(&app, &source) {
        return refused;
    }
    let body = match read_body(&headers, body, 16 << 10, "lexicon").await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let entry: SetTerm = match serde_json::from_slice(&body) {
        Ok(entry) => entry,
        Err(err) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("body: {err}")),
    };
    let locale = entry.locale.to_ascii_lowercase();
    if let Some(problem) = lexicon_entry_problem(&locale, &entry.term, &entry.spoken) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, problem);
    }
    let audit = crate::store::Audit {
        actor: &caller.name,
        action: "lexicon-set",
        reason: "",
    };
    match app
        .store
        .set_lexicon_entry(&source, &locale, &entry.term, &entry.spoken, &audit)
        .await
    {
        Ok(()) => Json(
            json!({"source": source, "locale": locale, "term": entry.term,
                              "spoken": entry.spoken}),
        )
        .into_response(),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}

#[derive(Deserialize)]
struct RemoveTerm {
    term: String,
    #[serde(default)]
    locale: String,
}

async fn remove(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(source): Path<String>,
    Query(query): Query<RemoveTerm>,
) -> Response {
    if let Some(refused) = unknown_source(&app, &source) {
        return refused;
    }
    let audit = crate::store::Audit {
        actor: &caller.name,
        action: "lexicon-remove",
        reason: "",
    };
    let locale = query.locale.to_ascii_lowercase();
    match app
        .store
        .remove_lexicon_entry(&source, &locale, &query.term, &audit)
        .await
    {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such term"),
        Err(err) => error(StatusCode::SERVICE_UNAVAILABLE, err.to_string()),
    }
}
