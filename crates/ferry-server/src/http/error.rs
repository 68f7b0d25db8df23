//! Every error answer: one enum, one table from variant to status, JSON `{code, message, details}`.
//! A 5xx body reveals nothing internal; the cause goes to the server's log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ferry_protocol::ErrorBody;

use crate::UserError;
use crate::actions::ActionError;
use crate::auth::AuthError;
use crate::download::DownloadError;
use crate::failures::FailureError;
use crate::files::FileError;
use crate::store::StoreError;
use crate::upload::UploadError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{message}")]
    BadRequest { message: String, details: serde_json::Value },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    TooManyRequests(String),
    /// The client was too slow sending its request.
    #[error("{0}")]
    RequestTimeout(String),
    /// The server cannot take the request now (too busy, or it took too long): try again.
    #[error("{0}")]
    Unavailable(String),
    /// A server action failed; nothing it wrote was applied.
    #[error("{0}")]
    ActionFailed(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad-request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too-many-requests"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request-timeout"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ApiError::ActionFailed(_) => (StatusCode::UNPROCESSABLE_ENTITY, "action-failed"),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> ApiError {
        match error {
            UserError::Store(error) => ApiError::Store(error),
            UserError::Exists(_) => ApiError::Conflict(error.to_string()),
            UserError::NotFound(_) => ApiError::NotFound(error.to_string()),
            UserError::UnknownRole(ref role) => {
                let details = serde_json::json!({ "role": role });
                ApiError::BadRequest { message: error.to_string(), details }
            }
            UserError::BadName | UserError::BadPassword | UserError::ProviderUser(_) => {
                ApiError::BadRequest {
                    message: error.to_string(),
                    details: serde_json::Value::Null,
                }
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        match error {
            AuthError::TooMany(message) => ApiError::TooManyRequests(message),
            AuthError::Store(error) => ApiError::Store(error),
            AuthError::Unavailable(message) => ApiError::Unavailable(message),
            AuthError::Identity(refusal @ crate::identity::TokenRefusal::Unreachable(_)) => {
                ApiError::Unavailable(refusal.to_string())
            }
            other => ApiError::Unauthorized(other.to_string()),
        }
    }
}

impl From<DownloadError> for ApiError {
    fn from(error: DownloadError) -> ApiError {
        match error {
            DownloadError::Bad { message, details } => ApiError::BadRequest { message, details },
            DownloadError::UnknownEntity(_) => ApiError::NotFound(error.to_string()),
            DownloadError::TooLarge(message) => ApiError::PayloadTooLarge(message),
            DownloadError::Store(error) => ApiError::Store(error),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(error: ActionError) -> ApiError {
        match error {
            ActionError::Bad { message, details } => ApiError::BadRequest { message, details },
            ActionError::NotFound(_) => ApiError::NotFound(error.to_string()),
            ActionError::Forbidden(message) => ApiError::Forbidden(message),
            ActionError::Failed(message) => ApiError::ActionFailed(message),
            ActionError::Store(error) => ApiError::Store(error),
        }
    }
}

impl From<FileError> for ApiError {
    fn from(error: FileError) -> ApiError {
        match error {
            FileError::Bad { message, details } => ApiError::BadRequest { message, details },
            FileError::NotFound(message) => ApiError::NotFound(message),
            FileError::Conflict(message) => ApiError::Conflict(message),
            FileError::TooLarge(message) => ApiError::PayloadTooLarge(message),
            FileError::Slow(message) => ApiError::RequestTimeout(message),
            FileError::Store(error) => ApiError::Store(error),
        }
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> ApiError {
        match error {
            UploadError::Bad { message, details } => ApiError::BadRequest { message, details },
            UploadError::TooLarge(message) => ApiError::PayloadTooLarge(message),
            UploadError::Reused(message) => ApiError::Conflict(message),
            UploadError::Store(error) => ApiError::Store(error),
        }
    }
}

impl From<FailureError> for ApiError {
    fn from(error: FailureError) -> ApiError {
        match error {
            FailureError::NotFound(_) | FailureError::NoContent(_) => {
                ApiError::NotFound(error.to_string())
            }
            FailureError::Replayed(_) | FailureError::UserGone { .. } => {
                ApiError::Conflict(error.to_string())
            }
            FailureError::Bad(message) => {
                ApiError::BadRequest { message, details: serde_json::Value::Null }
            }
            FailureError::Upload(error) => error.into(),
            FailureError::Store(error) => ApiError::Store(error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (message, details) = match self {
            ApiError::BadRequest { message, details } => (message, details),
            ApiError::Store(error) => {
                tracing::error!(%error, "database error");
                ("the database is unavailable; try again".to_owned(), serde_json::Value::Null)
            }
            other => (other.to_string(), serde_json::Value::Null),
        };
        let request_id = super::trace::REQUEST_ID.try_with(Clone::clone).ok();
        let body = ErrorBody { code: code.to_owned(), message, details, request_id };
        (status, axum::Json(body)).into_response()
    }
}
