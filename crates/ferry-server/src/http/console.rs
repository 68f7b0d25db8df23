//! The web console (`/console`): the operator's pages, built into the server binary so
//! `ferry serve` serves them with no build step and nothing to install. The page signs an
//! administrator in with the same credentials as every device and speaks only the public API
//! (`/v1/overview`, `/v1/failures`, `/v1/users`, `/v1/history`, `/v1/devices`).

use axum::extract::Path;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiError;

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLES: &str = include_str!("../../console/console.css");

/// Answers are the page's own code: nothing of another origin runs in it, nothing frames it,
/// and a browser takes each file for what it says it is.
const HEADERS: [(header::HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::CACHE_CONTROL, "no-cache"),
];

pub(super) async fn page() -> impl IntoResponse {
    (HEADERS, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX)
}

pub(super) async fn asset(Path(file): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let (body, kind) = match file.as_str() {
        "console.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "console.css" => (STYLES, "text/css; charset=utf-8"),
        _ => return Err(ApiError::NotFound(format!("the console has no `{file}`"))),
    };
    Ok((HEADERS, [(header::CONTENT_TYPE, kind)], body))
}
