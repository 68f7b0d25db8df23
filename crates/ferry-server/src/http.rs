//! Routes, extractors and the serve loop. Handlers stay thin: authenticate, decode, call the
//! operation, encode. Rejections of malformed requests become `ApiError`s like any other.

mod console;
mod error;
mod serve;
mod trace;

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, State as AxumState};
use axum::http::request::Parts;
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use ferry_protocol::endpoint::{self, Endpoint};
use ferry_protocol::{
    ActionRequest, ActionResponse, DeviceList, DownloadQuery, FailureList, FailureQuery, FileQuery,
    FileStored, FilesMissingRequest, FilesMissingResponse, HistoryList, ModelResponse, NewUser,
    ObjectsRequest, ObjectsResponse, PROTOCOL_VERSION, PasswordChange, RefreshRequest,
    ReplayResponse, RolesUpdate, SignInRequest, SignInResponse, SyncRecord, TokenSignInRequest,
    UploadRequest, UserDisabled, UserInfo, UserList,
};
use tower_http::services::ServeDir;

pub(crate) use error::ApiError;
pub use serve::{REQUEST_HEAD_BYTES_MAX, Tls, serve, serve_with};

use crate::auth::{self, User};
use crate::sessions::{self, Session};
use crate::{State, actions, download, failures, files, operators, upload};

type Shared = Arc<State>;

pub(crate) fn router(state: Shared) -> Router {
    let body_limit = state.limits.body_bytes_max;
    let router = Router::new()
        .route("/health", get(health))
        .route("/health/live", get(health_live))
        .route("/health/ready", get(health_ready))
        .route("/metrics", get(metrics))
        .route(endpoint::SignIn::ROUTE.pattern, post(sign_in))
        .route(endpoint::TokenSignIn::ROUTE.pattern, post(sign_in_with_token))
        .route(endpoint::Refresh::ROUTE.pattern, post(refresh))
        .route(endpoint::Model::ROUTE.pattern, get(model))
        .route(endpoint::Upload::ROUTE.pattern, post(upload_route))
        .route(endpoint::Download::ROUTE.pattern, get(download_route))
        .route(endpoint::Objects::ROUTE.pattern, post(objects_route))
        .route(endpoint::FAILURES.pattern, get(failure_list))
        .route(endpoint::FAILURE.pattern, get(failure_get))
        .route(endpoint::FAILURE_REPLAY.pattern, post(failure_replay))
        .route(endpoint::FAILURE_FILE.pattern, get(failure_file))
        .route(endpoint::Action::ROUTE.pattern, post(action_route))
        .route(endpoint::FilesMissing::ROUTE.pattern, post(files_missing))
        // A content is streamed to disk under its own limit, `Limits::file_bytes_max`.
        .route(endpoint::FILE_PUT.pattern, put(file_store).layer(DefaultBodyLimit::disable()))
        .route(endpoint::FILE_GET.pattern, get(file_get))
        .route(endpoint::HISTORY.pattern, get(history))
        .route(endpoint::USERS.pattern, get(user_list).post(user_create))
        .route(endpoint::USER_ROLES.pattern, put(user_roles))
        .route(endpoint::USER_DISABLED.pattern, put(user_disabled))
        .route(endpoint::USER_PASSWORD.pattern, put(user_password))
        .route(endpoint::DEVICES.pattern, get(device_list))
        .route(endpoint::OVERVIEW.pattern, get(overview))
        .route("/console", get(console::page))
        .route("/console/", get(console::page))
        .route("/console/{file}", get(console::asset))
        .route(endpoint::SyncReport::ROUTE.pattern, post(sync_report))
        .route(endpoint::LIVE.pattern, get(live_route))
        .route("/v1/{*rest}", any(not_found));
    let router = match &state.app {
        // The API's unknown paths stay the API's (a JSON error); every other path is the app's.
        Some(app) => {
            router.fallback_service(ServeDir::new(app).append_index_html_on_directories(true))
        }
        None => router.fallback(not_found),
    };
    router
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("this endpoint does not take that method".to_owned())
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), guard))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), trace::traced))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".to_owned())
}

/// Every request holds one of `Limits::requests_in_flight_max` places while it runs (none free:
/// 503 at once), and must be answered within `Limits::handler_timeout_ms`, except a file
/// content's upload, which may take as long as the content keeps coming
/// (`Limits::request_body_idle_timeout_ms` between pieces).
async fn guard(
    AxumState(state): AxumState<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let Ok(_place) = state.requests_in_flight.try_acquire() else {
        let max = state.limits.requests_in_flight_max;
        let message = format!("the server is handling {max} requests; try again in a moment");
        return ApiError::Unavailable(message).into_response();
    };
    // A file content's upload: `PUT` of the content route's prefix.
    let content_prefix = endpoint::FILE_PUT.pattern.trim_end_matches("{hash}");
    let streamed = request.method() == axum::http::Method::PUT
        && request.uri().path().starts_with(content_prefix);
    if streamed {
        return next.run(request).await;
    }
    let timeout = std::time::Duration::from_millis(state.limits.handler_timeout_ms);
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable(format!(
            "the server took longer than {} ms to answer and stopped handling the request; try again (an upload is applied once, whatever happened to this attempt)",
            state.limits.handler_timeout_ms
        ))
        .into_response(),
    }
}

/// The signed-in user of a request, from `Authorization: Bearer <token>`.
struct Authenticated(User);

impl FromRequestParts<Shared> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let header =
            parts.headers.get(axum::http::header::AUTHORIZATION).and_then(|h| h.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return Err(ApiError::Unauthorized(
                "missing `Authorization: Bearer <token>`: sign in first".to_owned(),
            ));
        };
        let user = auth::authenticate(state, token.trim()).await?;
        trace::record_user(&user.name);
        Ok(Authenticated(user))
    }
}

/// An authenticated administrator.
struct Admin(User);

impl FromRequestParts<Shared> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(user) = Authenticated::from_request_parts(parts, state).await?;
        if !user.is_admin(state) {
            return Err(ApiError::Forbidden("only administrators may do this".to_owned()));
        }
        Ok(Admin(user))
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge(format!(
            "the request body is larger than the server accepts: {}",
            rejection.body_text()
        ));
    }
    ApiError::BadRequest { message: rejection.body_text(), details: serde_json::Value::Null }
}

fn query_error(rejection: QueryRejection) -> ApiError {
    ApiError::BadRequest { message: rejection.body_text(), details: serde_json::Value::Null }
}

fn path_error(rejection: PathRejection) -> ApiError {
    ApiError::BadRequest { message: rejection.body_text(), details: serde_json::Value::Null }
}

async fn health(AxumState(state): AxumState<Shared>) -> Result<&'static str, ApiError> {
    let mut tx = state.store.begin_snapshot().await?;
    tx.sequence_now().await?;
    tx.finish().await?;
    Ok("ok\n")
}

/// The process serves requests (a liveness probe: no database needed).
async fn health_live() -> &'static str {
    "ok\n"
}

/// The server takes syncs: its database answers and the model is applied (as it is once the
/// server opened), and it is not stopping (a readiness probe: 503 drains it).
async fn health_ready(state: AxumState<Shared>) -> Result<&'static str, ApiError> {
    if *state.closing.borrow() {
        return Err(ApiError::Unavailable("the server is stopping".to_owned()));
    }
    health(state).await.map(|_| "ready\n")
}

async fn metrics(AxumState(state): AxumState<Shared>) -> String {
    let waiting = failures::waiting(&state).await.ok();
    state.metrics.render(state.store.hints().listeners(), waiting)
}

async fn sign_in(
    AxumState(state): AxumState<Shared>,
    connection: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: Result<Json<SignInRequest>, JsonRejection>,
) -> Result<Json<SignInResponse>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let address = connection.map(|axum::Extension(connected)| connected.0.ip());
    let session = auth::sign_in(&state, &request.user, &request.password, address).await?;
    // Named only once signed in: a name typed wrong may be someone's password.
    trace::record_user(&request.user);
    state.metrics.sign_ins.increment(1);
    Ok(Json(answer_session(session)))
}

/// A sign-in with the identity provider's token: a session as after a password sign-in.
async fn sign_in_with_token(
    AxumState(state): AxumState<Shared>,
    body: Result<Json<TokenSignInRequest>, JsonRejection>,
) -> Result<Json<SignInResponse>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let session = auth::sign_in_with_identity(&state, request.token.trim()).await?;
    state.metrics.sign_ins.increment(1);
    Ok(Json(answer_session(session)))
}

/// A session's next access token, for its refresh token.
async fn refresh(
    AxumState(state): AxumState<Shared>,
    body: Result<Json<RefreshRequest>, JsonRejection>,
) -> Result<Json<SignInResponse>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    let session = sessions::refresh(&state, &request.refresh_token).await?;
    state.metrics.refreshes.increment(1);
    Ok(Json(answer_session(session)))
}

fn answer_session(session: Session) -> SignInResponse {
    SignInResponse {
        token: session.token,
        user_id: session.user.id.to_string(),
        roles: session.user.roles,
        expires_at: session.expires.to_string(),
        refresh_token: Some(session.refresh_token),
        refresh_expires_at: Some(session.refresh_expires.to_string()),
    }
}

async fn model(
    AxumState(state): AxumState<Shared>,
    Authenticated(_): Authenticated,
) -> Json<ModelResponse> {
    Json(ModelResponse {
        version: state.model.version().to_string(),
        text: state.model_text.clone(),
        protocol_version: PROTOCOL_VERSION,
        epoch: state.lineage.epoch.clone(),
        restored: state.lineage.restored.clone(),
    })
}

async fn upload_route(
    AxumState(state): AxumState<Shared>,
    Authenticated(user): Authenticated,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let body = body.map_err(|r| {
        ApiError::PayloadTooLarge(format!(
            "the request body is larger than the server accepts: {}",
            r.body_text()
        ))
    })?;
    let request: UploadRequest =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
            message: format!("the body is not an upload: {e}"),
            details: serde_json::Value::Null,
        })?;
    trace::record_device(&request.device);
    let response = upload::upload(&state, &user, request).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], response))
}

async fn download_route(
    AxumState(state): AxumState<Shared>,
    Authenticated(user): Authenticated,
    entity: Result<Path<String>, PathRejection>,
    query: Result<Query<DownloadQuery>, QueryRejection>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let Path(entity) = entity.map_err(path_error)?;
    let Query(query) = query.map_err(query_error)?;
    let request = download::PageRequest {
        after: query.after.as_deref(),
        limit: query.limit,
        index: query.index.unwrap_or(false),
        count: query.count.unwrap_or(false),
    };
    let started = tokio::time::Instant::now();
    let page = download::download(&state, &user, &entity, request).await?;
    state.metrics.download_page_seconds.record(started.elapsed().as_secs_f64());
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], page.json))
}

async fn live_route(
    AxumState(state): AxumState<Shared>,
    Authenticated(user): Authenticated,
) -> impl axum::response::IntoResponse {
    crate::live::stream(&state, &user)
}

async fn sync_report(
    AxumState(state): AxumState<Shared>,
    Authenticated(user): Authenticated,
    body: Result<Json<SyncRecord>, JsonRejection>,
) -> Result<axum::http::StatusCode, ApiError> {
    let Json(record) = body.map_err(json_error)?;
    let (mode, seconds) = (record.mode.clone(), record.duration_ms as f64 / 1000.0);
    let objects = (record.objects_up + record.objects_down).max(0) as u64;
    failures::record_sync(&state, &user, record).await?;
    state.metrics.sync(&mode, seconds, objects);
    Ok(axum::http::StatusCode::NO_CONTENT)
}

async fn objects_route(
    AxumState(state): AxumState<Shared>,
    Authenticated(user): Authenticated,
    entity: Result<Path<String>, PathRejection>,
    body: Result<Json<ObjectsRequest>, JsonRejection>,
) -> Result<Json<ObjectsResponse>, ApiError> {
    let Path(entity) = entity.map_err(path_error)?;
    let Json(request) = body.map_err(json_error)?;
    Ok(Json(download::objects(&state, &user, &entity, &request.ids).await?))
}

async fn failure_list(
    AxumState(state): AxumState<Shared>,
    _: Admin,
    query: Result<Query<FailureQuery>, QueryRejection>,
) -> Result<Json<FailureList>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    Ok(Json(failures::list(&state, query.entity.as_deref(), query.user.as_deref()).await?))
}

async fn failure_get(
    AxumState(state): AxumState<Shared>,
    _: Admin,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ferry_protocol::Failure>, ApiError> {
    let Path(id) = id.map_err(path_error)?;
    Ok(Json(failures::get_with_current(&state, id).await?))
}

async fn failure_replay(
    AxumState(state): AxumState<Shared>,
    Admin(admin): Admin,
    id: Result<Path<i64>, PathRejection>,
    body: axum::body::Bytes,
) -> Result<Json<ReplayResponse>, ApiError> {
    let Path(id) = id.map_err(path_error)?;
    // No body replays the change as it was; a body corrects some of its values.
    let request: ferry_protocol::ReplayRequest = match body.is_empty() {
        true => Default::default(),
        false => serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest {
            message: format!("the body is not a replay request: {e}"),
            details: serde_json::Value::Null,
        })?,
    };
    Ok(Json(failures::replay(&state, id, &admin, request.values).await?))
}

async fn history(
    AxumState(state): AxumState<Shared>,
    _: Admin,
) -> Result<Json<HistoryList>, ApiError> {
    Ok(Json(failures::history(&state).await?))
}

async fn files_missing(
    AxumState(state): AxumState<Shared>,
    Authenticated(user): Authenticated,
    body: Result<Json<FilesMissingRequest>, JsonRejection>,
) -> Result<Json<FilesMissingResponse>, ApiError> {
    let Json(request) = body.map_err(json_error)?;
    Ok(Json(files::missing(&state, &user, request).await?))
}

async fn file_store(
    AxumState(state): AxumState<Shared>,
    Authenticated(user): Authenticated,
    hash: Result<Path<String>, PathRejection>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Json<FileStored>, ApiError> {
    let Path(hash) = hash.map_err(path_error)?;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok())
        .and_then(|length| length.parse::<u64>().ok());
    Ok(Json(files::store(&state, &user, &hash, declared, body).await?))
}

async fn file_get(
    AxumState(state): AxumState<Shared>,
    Authenticated(user): Authenticated,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<FileQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Path((entity, id)) = path.map_err(path_error)?;
    let Query(query) = query.map_err(query_error)?;
    let content = files::object_content(&state, &user, &entity, &id, query.hash.as_deref()).await?;
    Ok(content_response(content))
}

async fn failure_file(
    AxumState(state): AxumState<Shared>,
    _: Admin,
    id: Result<Path<i64>, PathRejection>,
) -> Result<axum::response::Response, ApiError> {
    let Path(id) = id.map_err(path_error)?;
    Ok(content_response(files::failure_content(&state, id).await?))
}

/// A file content as the answer, streamed, with its length and hash in the headers.
fn content_response(content: files::Content) -> axum::response::Response {
    use axum::http::header;
    let mut response = axum::response::Response::new(axum::body::Body::from_stream(
        files::content_stream(content.file),
    ));
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_LENGTH, header::HeaderValue::from(content.size));
    if let Ok(hash) = header::HeaderValue::from_str(&content.hash) {
        headers.insert(ferry_protocol::CONTENT_HASH_HEADER, hash);
    }
    response
}

async fn action_route(
    AxumState(state): AxumState<Shared>,
    Authenticated(user): Authenticated,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<ActionRequest>, JsonRejection>,
) -> Result<Json<ActionResponse>, ApiError> {
    let Path(name) = name.map_err(path_error)?;
    let Json(request) = body.map_err(json_error)?;
    Ok(Json(actions::call(&state, &user, &name, request).await?))
}

async fn user_list(
    AxumState(state): AxumState<Shared>,
    _: Admin,
) -> Result<Json<UserList>, ApiError> {
    Ok(Json(operators::users(&state).await?))
}

async fn user_create(
    AxumState(state): AxumState<Shared>,
    _: Admin,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<Json<UserInfo>, ApiError> {
    let Json(new) = body.map_err(json_error)?;
    Ok(Json(operators::create(&state, new).await?))
}

async fn user_roles(
    AxumState(state): AxumState<Shared>,
    _: Admin,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<RolesUpdate>, JsonRejection>,
) -> Result<Json<UserInfo>, ApiError> {
    let Path(name) = name.map_err(path_error)?;
    let Json(update) = body.map_err(json_error)?;
    Ok(Json(operators::set_roles(&state, &name, update.roles).await?))
}

async fn user_disabled(
    AxumState(state): AxumState<Shared>,
    _: Admin,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<UserDisabled>, JsonRejection>,
) -> Result<Json<UserInfo>, ApiError> {
    let Path(name) = name.map_err(path_error)?;
    let Json(update) = body.map_err(json_error)?;
    Ok(Json(operators::set_disabled(&state, &name, update.disabled).await?))
}

async fn user_password(
    AxumState(state): AxumState<Shared>,
    _: Admin,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<PasswordChange>, JsonRejection>,
) -> Result<Json<UserInfo>, ApiError> {
    let Path(name) = name.map_err(path_error)?;
    let Json(change) = body.map_err(json_error)?;
    Ok(Json(operators::set_password(&state, &name, &change.password).await?))
}

async fn overview(
    AxumState(state): AxumState<Shared>,
    _: Admin,
) -> Result<Json<ferry_protocol::Overview>, ApiError> {
    Ok(Json(operators::overview(&state).await?))
}

async fn device_list(
    AxumState(state): AxumState<Shared>,
    _: Admin,
) -> Result<Json<DeviceList>, ApiError> {
    Ok(Json(operators::devices(&state).await?))
}
