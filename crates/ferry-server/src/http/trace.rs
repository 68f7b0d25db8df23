//! One span per request: its id (taken from a well-formed `x-request-id` the client sent, else
//! made here, and returned in the `x-request-id` header and in every error body), method, route,
//! and, once known, the user and the device; at its end the status and duration are logged at
//! `info`. Nothing of a request's headers or body goes into the log but these: no password,
//! token or attribute value is ever logged.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// The header a request's id travels in, both ways.
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";
/// The longest request id taken from a client, in bytes; a longer one is replaced.
pub(crate) const REQUEST_ID_BYTES_MAX: usize = 64;

tokio::task_local! {
    /// The id of the request being handled, for its error body.
    pub(crate) static REQUEST_ID: String;
}

/// A client's request id, when it is short and made only of letters, digits, `-`, `_` and `.`.
fn taken(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let fine = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    (!text.is_empty() && text.len() <= REQUEST_ID_BYTES_MAX && text.chars().all(fine))
        .then(|| text.to_owned())
}

fn new_id() -> String {
    crate::effects::random_bytes::<8>().iter().map(|b| format!("{b:02x}")).collect()
}

/// The request's span around everything that handles it.
pub(crate) async fn traced(
    axum::extract::State(state): axum::extract::State<std::sync::Arc<crate::State>>,
    request: Request,
    next: Next,
) -> Response {
    let id = request.headers().get(REQUEST_ID_HEADER).and_then(taken).unwrap_or_else(new_id);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(none)".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        route = %route,
        user = tracing::field::Empty,
        device = tracing::field::Empty,
    );
    let started = tokio::time::Instant::now();
    let handled = REQUEST_ID.scope(id.clone(), next.run(request));
    let mut response = handled.instrument(span.clone()).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    state.metrics.request(&route, status, seconds);
    let ms = seconds * 1000.0;
    span.in_scope(|| match status {
        500.. => tracing::warn!(status, ms, "answered"),
        _ => tracing::info!(status, ms, "answered"),
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Names the signed-in user in the current request's span.
pub(crate) fn record_user(name: &str) {
    tracing::Span::current().record("user", name);
}

/// Names the device in the current request's span.
pub(crate) fn record_device(device: &str) {
    tracing::Span::current().record("device", device);
}
