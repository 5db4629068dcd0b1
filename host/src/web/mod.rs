//! The editors' web workspace at `/`: one page, its script and its style sheet, compiled into the
//! binary (no CDN: it works offline and cannot be swapped under us). The page talks only to
//! `/api/v1` (signing in there with a token, kept in an HttpOnly cookie) and plays videos from
//! `/media`. Its Content-Security-Policy allows nothing else: no inline script, no other origin
//! except for media, which an S3 store serves by redirect.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("index.html");
const STYLE: &str = include_str!("app.css");
/// The page's scripts, in the order index.html loads them (each page's script after the core).
const SCRIPTS: [(&str, &str); 8] = [
    ("app.js", include_str!("app.js")),
    ("templates.js", include_str!("templates.js")),
    ("fields.js", include_str!("fields.js")),
    ("renders.js", include_str!("renders.js")),
    ("table.js", include_str!("table.js")),
    ("captions.js", include_str!("captions.js")),
    ("costs.js", include_str!("costs.js")),
    ("start.js", include_str!("start.js")),
];

/// What the page may load: its own script and style, media from here or a bucket (https), and
/// the narration it fetched to listen to (a blob: URL).
const POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self' https: blob:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; \
     base-uri 'none'";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            "/assets/{script}",
            get(
                |axum::extract::Path(name): axum::extract::Path<String>| async move {
                    match SCRIPTS.iter().find(|(file, _)| *file == name) {
                        Some((_, body)) => asset(body, "text/javascript; charset=utf-8"),
                        None => axum::http::StatusCode::NOT_FOUND.into_response(),
                    }
                },
            ),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
