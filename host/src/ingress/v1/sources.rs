//! Sources as configured (with their plugin chains and which are switched off), a source's
//! recent events (what a preview can run against), and its pronunciation lexicon: viewers read,
//! editors set and remove terms (audited, like `vidhook lexicon`).

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
use crate::ingress::problem::Problem;
use crate::store::LexiconEntry;
use crate::tts::lexicon_entry_problem;

#[derive(Serialize, ToSchema)]
pub struct SourceView {
    name: String,
    /// The CMS kind (`strapi`, `markdown`…).
    cms: String,
    plugins: Vec<ChainEntry>,
    /// Renders wait for an editor's approval of a $0 preview before the paid call.
    approval: bool,
    /// It has a `[digest]` schedule (and so uses the digest template).
    digest: bool,
    dry_run: bool,
    /// This source's daily credit limit, if any.
    daily_credits: Option<i64>,
    /// Its catch-up sweep, for a CMS vidhook lists: the watermark, the last sweep's time,
    /// items listed and found, and deliveries refused before it.
    sweep: Option<crate::store::CatchUpState>,
}

#[derive(Serialize, ToSchema)]
pub struct ChainEntry {
    /// As the config names it (`presenter`, `summariser@1.2.0`).
    name: String,
    /// False when an admin switched it off for this source.
    enabled: bool,
}

/// The configured sources.
#[utoipa::path(
    get, path = "/sources", tag = "sources",
    responses((status = 200, body = Vec<SourceView>))
)]
pub async fn list(State(app): State<Arc<App>>) -> Response {
    let mut sweeps = match app.store.catch_up_states().await {
        Ok(states) => states,
        Err(err) => return store_down(err),
    };
    let mut sources = Vec::with_capacity(app.config.sources.len());
    for (name, config) in &app.config.sources {
        let disabled = match app.store.disabled_plugins(name).await {
            Ok(disabled) => disabled,
            Err(err) => return store_down(err),
        };
        let plugins = config
            .settings
            .plugins
            .iter()
            .map(|p| ChainEntry {
                enabled: !disabled.iter().any(|off| off == p.plugin()),
                name: p.name.clone(),
            })
            .collect();
        sources.push(SourceView {
            name: name.clone(),
            cms: app.sources.get(name).map_or("", |a| a.kind()).to_string(),
            plugins,
            approval: config.settings.approval,
            digest: config.settings.digest.is_some(),
            dry_run: config.settings.dry_run,
            daily_credits: config.settings.daily_credits,
            sweep: sweeps
                .iter()
                .position(|s| &s.source == name)
                .map(|at| sweeps.swap_remove(at)),
        });
    }
    Json(sources).into_response()
}

fn unknown_source(app: &App, source: &str) -> Option<Response> {
    (!app.config.sources.contains_key(source))
        .then(|| problem(StatusCode::NOT_FOUND, format!("no source named {source:?}")))
}

/// A stored event, as a preview picker lists it.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    id: String,
    entry: String,
    locale: String,
    title: String,
}

/// A source's most recent events (at most 50), newest first.
#[utoipa::path(
    get, path = "/sources/{source}/events", tag = "sources", params(("source" = String, Path)),
    responses(
        (status = 200, body = Vec<EventView>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn events(State(app): State<Arc<App>>, Path(source): Path<String>) -> Response {
    if let Some(refused) = unknown_source(&app, &source) {
        return refused;
    }
    match app.store.recent_events(&source, 50).await {
        Ok(events) => Json(
            events
                .into_iter()
                .map(|(id, content)| EventView {
                    id,
                    entry: content.id,
                    locale: content.locale,
                    title: content.title,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(err) => store_down(err),
    }
}

/// A source's lexicon, by locale then term.
#[utoipa::path(
    get, path = "/sources/{source}/lexicon", tag = "sources", params(("source" = String, Path)),
    responses(
        (status = 200, body = Vec<LexiconEntry>),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn lexicon(State(app): State<Arc<App>>, Path(source): Path<String>) -> Response {
    if let Some(refused) = unknown_source(&app, &source) {
        return refused;
    }
    match app.store.lexicon(&source).await {
        Ok(entries) => Json(entries).into_response(),
        Err(err) => store_down(err),
    }
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTerm {
    term: String,
    /// How the narration says it.
    spoken: String,
    /// "" for every locale, else a language ("de") or locale ("de-at").
    #[serde(default)]
    locale: String,
}

/// Add or replace a term.
#[utoipa::path(
    put, path = "/sources/{source}/lexicon", tag = "sources",
    params(("source" = String, Path)), request_body = SetTerm,
    responses(
        (status = 200, body = SetTerm),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid term", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn set_term(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Caller>,
    Path(source): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refused) = unknown_source(&app, &source) {
        return refused;
    }
    let mut entry: SetTerm = match json_body(&headers, body, 16 << 10).await {
        Ok(entry) => entry,
        Err(response) => return response,
    };
    entry.locale = entry.locale.to_ascii_lowercase();
    if let Some(why) = lexicon_entry_problem(&entry.locale, &entry.term, &entry.spoken) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, why);
    }
    let audit = crate::store::Audit {
        actor: &caller.name,
        action: "lexicon-set",
        reason: "",
    };
    match app
        .store
        .set_lexicon_entry(&source, &entry.locale, &entry.term, &entry.spoken, &audit)
        .await
    {
        Ok(()) => Json(entry).into_response(),
        Err(err) => store_down(err),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveTerm {
    term: String,
    #[serde(default)]
    locale: String,
}

/// Remove a term.
#[utoipa::path(
    delete, path = "/sources/{source}/lexicon", tag = "sources",
    params(("source" = String, Path), RemoveTerm),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such source or term", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn remove_term(
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
        Ok(false) => problem(StatusCode::NOT_FOUND, "no such term"),
        Err(err) => store_down(err),
    }
}
