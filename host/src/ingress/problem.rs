//! Every error the HTTP surface answers is an RFC 9457 problem detail
//! (`application/problem+json`): `type` (here `about:blank`, so `title` is the status's own
//! phrase), `status`, and `detail`, the sentence that says what was wrong and what to do. Extra
//! members carry what a client can act on (a template's line and column, say).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An RFC 9457 problem detail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank`: the HTTP status says it all.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: String,
    /// The status's phrase ("Not Found").
    pub title: String,
    pub status: u16,
    /// What went wrong in this request, and what to do about it.
    pub detail: String,
    /// Where in an editor's template the problem is (strict-mode and syntax errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<TemplateLocation>,
}

/// A line and column (both from 1) in a template's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TemplateLocation {
    /// The template the line and column are in (the one edited, or a template it includes).
    pub template: String,
    pub line: usize,
    pub column: usize,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
            location: None,
        }
    }

    pub fn at(mut self, location: Option<TemplateLocation>) -> Problem {
        self.location = location;
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(&self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}
