//! `/api/v1`: the admin API the web workspace and scripts use. Every route is registered with
//! its OpenAPI annotation in one call (`utoipa_axum::routes!`), and the document built from them
//! is served at `/api/v1/openapi.json`. The API serves only what that document describes: a
//! request whose route and method it does not list is refused (see [`documented_only`]), so a
//! route added without its documentation fails its own tests.
//!
//! Every route but sign-in passes the role gate first (`crate::auth`): no credential → 401, a
//! role too low → 403, a cookie write without the CSRF header → 403, before any body is read.
//! Errors are RFC 9457 problem details ([`Problem`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::Problem;
use crate::app::App;
use crate::auth::{AuthError, Role};

mod captions;
mod costs;
mod drafts;
mod plugins;
mod preview;
mod renders;
mod runs;
mod session;
mod sources;
mod stream;
mod templates;

/// The API's own prefix; the OpenAPI paths are written under it.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "vidhook admin API",
        description = "Templates, previews, plugins, renders and costs. Authenticate with \
                       `Authorization: Bearer vht_…` or the workspace's session cookie (writes \
                       by cookie also need the `x-vidhook-csrf` header). Errors are RFC 9457 \
                       problem details."
    ),
    modifiers(&Security),
    security(("token" = []), ("session" = [])),
    tags(
        (name = "session", description = "Signing the web workspace in and out"),
        (name = "sources", description = "Configured CMS sources, their plugins and lexicons"),
        (name = "templates", description = "Editor templates: versions, diffs, rollbacks"),
        (name = "preview", description = "A template against real content, before anything is paid"),
        (name = "plugins", description = "Installed WebAssembly plugins"),
        (name = "renders", description = "Videos being made, and the actions on them"),
        (name = "runs", description = "Backfills and batches"),
        (name = "costs", description = "Credits spent and budget left")
    )
)]
struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// The `/api/v1` routes and the OpenAPI document that describes them.
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let (router, document) = documented(app);
    let listed: Arc<BTreeSet<(String, String)>> = Arc::new(operations(&document));
    // Written once: the document does not change while the process runs.
    let text = axum::body::Bytes::from(
        serde_json::to_vec(&document).expect("the OpenAPI document serialises"),
    );
    router
        .layer(middleware::from_fn_with_state(listed, documented_only))
        .route(
            &format!("{PREFIX}/openapi.json"),
            get(move || {
                let text = text.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], text) }
            }),
        )
        // `/api/v1/…` that names no route, and the pre-v1 `/api/…` routes, which are gone.
        .route("/api/{*rest}", axum::routing::any(not_an_api_route))
}

/// The routes, each with its documentation, behind the gate of the role it needs.
fn documented(app: Arc<App>) -> (Router<Arc<App>>, utoipa::openapi::OpenApi) {
    let gate = |role| middleware::from_fn_with_state((app.clone(), role), gate_layer);
    let open = OpenApiRouter::new().routes(routes!(session::sign_in, session::sign_out));
    let viewer = OpenApiRouter::new()
        .routes(routes!(session::who))
        .routes(routes!(sources::list))
        .routes(routes!(sources::events))
        .routes(routes!(sources::lexicon))
        .routes(routes!(templates::list))
        .routes(routes!(templates::versions))
        .routes(routes!(templates::version))
        .routes(routes!(templates::diff))
        .routes(routes!(drafts::list))
        .routes(routes!(preview::preview))
        .routes(routes!(plugins::list))
        .routes(routes!(renders::list))
        .routes(routes!(renders::show))
        .routes(routes!(captions::show))
        .routes(routes!(stream::renders))
        .routes(routes!(runs::list))
        .routes(routes!(runs::show))
        .routes(routes!(costs::costs))
        .routes(routes!(costs::estimate))
        .route_layer(gate(Role::Viewer));
    let editor = OpenApiRouter::new()
        .routes(routes!(sources::set_term, sources::remove_term))
        .routes(routes!(templates::create))
        .routes(routes!(templates::rollback))
        .routes(routes!(drafts::save, drafts::discard))
        .routes(routes!(preview::narration))
        .routes(routes!(renders::approve))
        .routes(routes!(renders::reject))
        .routes(routes!(captions::edit))
        .route_layer(gate(Role::Editor));
    let admin = OpenApiRouter::new()
        .routes(routes!(plugins::install))
        .routes(routes!(plugins::switch))
        .routes(routes!(renders::act))
        .routes(routes!(runs::act))
        .routes(routes!(plugins::audit))
        .route_layer(gate(Role::Admin));
    let api = open.merge(viewer).merge(editor).merge(admin);
    let (router, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest(PREFIX, api)
        .split_for_parts();
    add_refusals(&mut document);
    (router, document)
}

/// Documents the answers every gated operation may give besides its own: 401, 403 and 503, all
/// problem details. An operation with `security(())` is open (sign-in and sign-out).
fn add_refusals(document: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let refusal = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let open = operation
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(|r| r == &Default::default()));
            let responses = &mut operation.responses.responses;
            if !open {
                responses
                    .entry("401".into())
                    .or_insert_with(|| refusal("No valid token or session cookie").into());
                responses.entry("403".into()).or_insert_with(|| {
                    refusal("The caller's role may not do this, or a cookie write lacked the CSRF header").into()
                });
            }
            responses
                .entry("503".into())
                .or_insert_with(|| refusal("The database did not answer; retry").into());
        }
    }
}

/// Every `(METHOD, path)` the document lists.
fn operations(document: &utoipa::openapi::OpenApi) -> BTreeSet<(String, String)> {
    let mut listed = BTreeSet::new();
    for (path, item) in &document.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
            ("PATCH", item.patch.is_some()),
        ];
        for (method, present) in methods {
            if present {
                listed.insert((method.to_string(), path.clone()));
            }
        }
    }
    listed
}

/// Refuses (500, logged) a request whose route the OpenAPI document does not list: a route was
/// added without its `#[utoipa::path]`. Such a route never works, so its tests say so at once.
/// A documented path asked with a method it does not take is a 405 with `Allow`.
async fn documented_only(
    State(listed): State<Arc<BTreeSet<(String, String)>>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_string();
    let path = matched.map(|m| m.as_str().to_string()).unwrap_or_default();
    let documented = |method: &str| listed.contains(&(method.to_string(), path.clone()));
    if documented(&method) || (method == "HEAD" && documented("GET")) {
        return next.run(request).await;
    }
    let allowed: Vec<&str> = listed
        .iter()
        .filter(|(_, p)| *p == path)
        .map(|(m, _)| m.as_str())
        .collect();
    if !allowed.is_empty() {
        let mut response = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} takes {}", allowed.join(", ")),
        );
        if let Ok(allow) = HeaderValue::from_str(&allowed.join(", ")) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        return response;
    }
    tracing::error!(
        method,
        path,
        "API route missing from the OpenAPI document: refused"
    );
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{method} {path} is not in the API's OpenAPI document"),
    )
}

async fn not_an_api_route(uri: axum::http::Uri) -> Response {
    let path = uri.path();
    if path.starts_with(&format!("{PREFIX}/")) {
        return Problem::new(
            StatusCode::NOT_FOUND,
            format!("no API route {path}; see {PREFIX}/openapi.json"),
        )
        .into_response();
    }
    Problem::new(
        StatusCode::GONE,
        format!("the API moved to {PREFIX} (see {PREFIX}/openapi.json); {path} is gone"),
    )
    .into_response()
}

async fn gate_layer(
    State((app, need)): State<(Arc<App>, Role)>,
    request: Request,
    next: Next,
) -> Response {
    gate(&app, request, next, need).await
}

/// Lets the request through (with its [`crate::auth::Caller`]) if its credential's role reaches
/// `need`.
pub async fn gate(app: &App, mut request: Request, next: Next, need: Role) -> Response {
    let token = app.config.plugins.admin_token.as_deref();
    let method = request.method().clone();
    match crate::auth::authorize(&app.store, token, &method, request.headers(), need).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(err @ AuthError::Unauthenticated) => {
            crate::metrics::api_refused("unauthenticated");
            let mut response =
                Problem::new(StatusCode::UNAUTHORIZED, err.to_string()).into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Err(err @ (AuthError::Forbidden { .. } | AuthError::CrossSite)) => {
            crate::metrics::api_refused("forbidden");
            Problem::new(StatusCode::FORBIDDEN, err.to_string()).into_response()
        }
        Err(AuthError::Store(err)) => store_down(err),
    }
}

/// 503 + `Retry-After`: the database did not answer (nothing was changed).
pub(super) fn store_down(err: impl std::fmt::Display) -> Response {
    tracing::warn!(error = %err, "API: database unavailable");
    super::unavailable(&format!("database unavailable: {err}"))
}

/// A problem answer in one call: the same as every other route's errors.
pub(super) use super::error as problem;

/// A JSON body of at most `limit` bytes, parsed as `T`; `Err` is the 400/413 to send.
pub(super) async fn json_body<T: serde::de::DeserializeOwned>(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<T, Response> {
    let bytes = super::read_body(headers, body, limit, "api").await?;
    parse_json(&bytes).map_err(|response| *response)
}

/// [`json_body`], where no body at all means `T::default()`.
pub(super) async fn optional_json_body<T: serde::de::DeserializeOwned + Default>(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    limit: usize,
) -> Result<T, Response> {
    let bytes = super::read_body(headers, body, limit, "api").await?;
    if bytes.is_empty() {
        return Ok(T::default());
    }
    parse_json(&bytes).map_err(|response| *response)
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes).map_err(|e| {
        Box::new(problem(
            StatusCode::BAD_REQUEST,
            format!("the body is not what this route takes: {e}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    /// A route registered without its documentation answers 500 (and so fails its own tests);
    /// a documented path asked with another method answers 405.
    #[tokio::test]
    async fn a_route_missing_from_the_document_is_refused() {
        let listed: BTreeSet<(String, String)> =
            [("GET".to_string(), "/api/v1/documented".to_string())].into();
        let router: Router = Router::new()
            .route(
                "/api/v1/documented",
                get(|| async { "ok" }).post(|| async { "ok" }),
            )
            .route("/api/v1/forgotten", get(|| async { "ok" }))
            .layer(middleware::from_fn_with_state(
                Arc::new(listed),
                documented_only,
            ));
        let status = |method: &str, uri: &str| {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap();
            let router = router.clone();
            async move { router.oneshot(request).await.unwrap().status() }
        };
        assert_eq!(status("GET", "/api/v1/documented").await, StatusCode::OK);
        assert_eq!(status("HEAD", "/api/v1/documented").await, StatusCode::OK);
        assert_eq!(
            status("POST", "/api/v1/documented").await,
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status("GET", "/api/v1/forgotten").await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
