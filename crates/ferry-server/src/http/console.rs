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

/// Answers are the page's own code: no other origin may frame it.
const HEADERS: [(header::HeaderName, &str); 2] =
    [(header::X_FRAME_OPTIONS, "DENY"), (header::CACHE_CONTROL, "no-cache")];

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
