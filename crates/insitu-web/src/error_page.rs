//! Failures answered in HTML: the error page, and the answers for unknown
//! routes and methods (JSON under `/api/`, the error page elsewhere).

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use insitu_api::ErrorCode;
use minijinja::context;

use crate::error::ApiFailure;

/// An error page for failures outside a handler (unknown route, refused access).
pub fn error_page(code: ErrorCode, message: &str) -> Response {
    let status = StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let env = crate::templates::environment();
    let body = env.ok().and_then(|env| {
        env.get_template("error.html").ok()?.render(context! {
            status => status.as_u16(), code => code.as_str(), message, version => env!("CARGO_PKG_VERSION")
        }).ok()
    });
    (status, Html(body.unwrap_or_else(|| message.to_owned()))).into_response()
}

/// The error page for a failure (its message is safe to show: internal
/// details were logged, not kept).
pub fn failure_page(f: impl Into<ApiFailure>) -> Response {
    let f = f.into();
    error_page(f.code(), &f.0.message)
}

pub async fn fallback(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiFailure::new(ErrorCode::NotFound, format!("no route {}", uri.path())).into_response()
    } else {
        error_page(ErrorCode::NotFound, "There is no page at this address.")
    }
}

pub async fn method_not_allowed(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiFailure::new(
            ErrorCode::MethodNotAllowed,
            format!("{} does not take this method", uri.path()),
        )
        .into_response()
    } else {
        error_page(
            ErrorCode::MethodNotAllowed,
            "This page does not take this method.",
        )
    }
}
