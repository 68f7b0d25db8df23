//! The Ferry server: the source of truth every device syncs with (DESIGN.md §4).
//!
//! [`Server::open`] loads a model, opens the [`Database`] (SQLite file or PostgreSQL URL) and
//! brings its tables to the model; [`Server::router`] is the HTTP API (see `ferry-protocol`);
//! [`serve`] runs it on a listener until shutdown.
//!
//! An upload is one transaction: each object is checked against the access rules, given to the
//! before-apply [`Handlers`], validated, and applied (only the changed members); an object that
//! fails any step is skipped into `SynchronizationError` and the others commit. A download brings
//! what the user may read, incrementally from a checkpoint on a change sequence that never skips
//! a change, or in full when the filter depends on more than the object itself.

mod access;
mod actions;
mod auth;
mod declared;
mod download;
mod effects;
mod failures;
mod files;
mod handlers;
mod http;
mod identity;
mod lifecycle;
mod live;
mod operators;
mod otlp;
mod referrers;
mod restore;
mod sessions;
mod sign_in_limit;
mod store;
mod telemetry;
mod tls_client;
mod upload;
mod validate;

use std::sync::Arc;
use telemetry::Metrics;

use ferry_constraint::ModelConstraints;
use ferry_model::{Model, ModelError, ObjectId, Timestamp};

pub use actions::{
    ACTION_NAME_BYTES_MAX, ACTION_OBJECTS_MAX, ACTION_QUERY_ROWS_MAX, ActionCall, ServerObject,
};
pub use auth::{PASSWORD_BYTES_MAX, PASSWORD_CHECKS_AT_ONCE_MAX, USER_NAME_BYTES_MAX, UserError};
pub use effects::{Clock, SystemClock};
pub use failures::LISTING_ROWS_MAX;
pub use files::HASHES_PER_CHECK_MAX;
pub use handlers::{AfterApply, BeforeApply, Handlers, ObjectState};
pub use http::{REQUEST_HEAD_BYTES_MAX, Tls, serve, serve_with};
pub use identity::{
    IDENTITY_CLOCK_LEEWAY_SECONDS, IDENTITY_TOKEN_BYTES_MAX, IdentityProvider, JWKS_BYTES_MAX,
    JWKS_FETCH_TIMEOUT_MS, JWKS_REFETCH_MIN_SECONDS, JWKS_REFRESH_SECONDS,
};
pub use lifecycle::{Collected, LIFECYCLE_INTERVAL_SECONDS};
pub use live::{LIVE_KEEPALIVE_SECONDS, LIVE_STREAM_SECONDS_MAX};
pub use operators::OVERVIEW_MINUTES;
pub use otlp::{OTLP_EXPORT_TIMEOUT_MS, OtlpExport};
pub use sign_in_limit::SIGN_IN_TRACKED_MAX;
pub use store::{
    Database, HINT_LISTENER_RETRY_MS, HINTS_QUEUED_MAX, POSTGRES_CONNECTIONS_MAX, StoreError,
};
pub use upload::{DEVICE_BYTES_MAX, UPLOAD_ID_BYTES_MAX, UPLOAD_RETENTION_DAYS};

/// Request bodies larger than this many bytes are refused.
pub const BODY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// At most this many object changes in one upload.
pub const UPLOAD_OBJECTS_MAX: usize = 100_000;
/// The most objects one download page holds.
pub const PAGE_ROWS_MAX: usize = 10_000;
/// How long an access token stays valid, in seconds; a device then spends its refresh token
/// for the next one.
pub const ACCESS_TOKEN_LIFETIME_SECONDS: i64 = 15 * 60;
/// How long a session lasts without its refresh token being spent, in seconds: a device offline
/// longer signs in again. Each refresh starts the period again.
pub const REFRESH_TOKEN_LIFETIME_SECONDS: i64 = 90 * 24 * 3600;
/// Sign-in attempts allowed per user name per minute.
pub const SIGN_IN_ATTEMPTS_PER_MINUTE: usize = 10;
/// Sign-in attempts allowed per client address per minute (loopback addresses excepted).
pub const SIGN_IN_ATTEMPTS_PER_ADDRESS_PER_MINUTE: usize = 30;
/// Connections served at once; one more is answered 503 and closed.
pub const CONNECTIONS_MAX: usize = 1_024;
/// Requests handled at once; one more is answered 503 at once.
pub const REQUESTS_IN_FLIGHT_MAX: usize = 256;
/// How long a client may take to send a request's head, in milliseconds.
pub const REQUEST_HEAD_TIMEOUT_MS: u64 = 30_000;
/// How long a file content being uploaded may pause between two pieces, in milliseconds.
pub const REQUEST_BODY_IDLE_TIMEOUT_MS: u64 = 30_000;
/// How long a request may take to be answered, in milliseconds (reading its body included;
/// file contents excepted, which are limited by their pauses): a request past it is answered
/// 503 and whatever it had begun is rolled back.
pub const HANDLER_TIMEOUT_MS: u64 = 90_000;
/// How long a stopping server lets the requests it is handling finish, in milliseconds; then it
/// closes their connections (their devices retry as after any network failure).
pub const SHUTDOWN_GRACE_MS: u64 = 30_000;
/// Days upload and sync records are kept, by default.
pub const HISTORY_RETENTION_DAYS: i64 = 365;
/// Days a replayed failure is kept, by default.
pub const FAILURE_RETENTION_DAYS: i64 = 365;
/// Hours an unreferenced file content is kept after it was last sent or asked about, by default.
pub const FILE_GRACE_HOURS: i64 = 24;
/// Days deletion records are kept, by default.
pub const DELETION_HORIZON_DAYS: i64 = 90;
/// The largest file content, in bytes.
pub const FILE_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;

/// The server's limits; each exceeded gives a clear 4xx.
#[derive(Clone, Debug)]
pub struct Limits {
    pub body_bytes_max: usize,
    pub upload_objects_max: usize,
    pub page_rows_max: usize,
    pub access_token_lifetime_seconds: i64,
    pub refresh_token_lifetime_seconds: i64,
    pub sign_in_attempts_per_minute: usize,
    pub sign_in_attempts_per_address_per_minute: usize,
    pub file_bytes_max: u64,
    pub connections_max: usize,
    pub requests_in_flight_max: usize,
    pub request_head_timeout_ms: u64,
    pub request_body_idle_timeout_ms: u64,
    pub handler_timeout_ms: u64,
    /// Days an upload's answer is kept for a device that retries it; past them a retry is
    /// answered from what the server holds now, and applies nothing.
    pub upload_retention_days: i64,
    /// How long a stopping server lets running requests finish, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// Days upload and sync records are kept.
    pub history_retention_days: i64,
    /// Days a replayed failure is kept (one not replayed stays).
    pub failure_retention_days: i64,
    /// Hours a content nothing refers to is kept after its last sender sent or asked about it.
    pub file_grace_hours: i64,
    /// Days deletion records are kept: a device whose checkpoint is older gets a full download
    /// (reconciled by its index) instead of the deletions since.
    pub deletion_horizon_days: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes_max: BODY_BYTES_MAX,
            upload_objects_max: UPLOAD_OBJECTS_MAX,
            page_rows_max: PAGE_ROWS_MAX,
            access_token_lifetime_seconds: ACCESS_TOKEN_LIFETIME_SECONDS,
            refresh_token_lifetime_seconds: REFRESH_TOKEN_LIFETIME_SECONDS,
            sign_in_attempts_per_minute: SIGN_IN_ATTEMPTS_PER_MINUTE,
            sign_in_attempts_per_address_per_minute: SIGN_IN_ATTEMPTS_PER_ADDRESS_PER_MINUTE,
            file_bytes_max: FILE_BYTES_MAX,
            connections_max: CONNECTIONS_MAX,
            requests_in_flight_max: REQUESTS_IN_FLIGHT_MAX,
            request_head_timeout_ms: REQUEST_HEAD_TIMEOUT_MS,
            request_body_idle_timeout_ms: REQUEST_BODY_IDLE_TIMEOUT_MS,
            handler_timeout_ms: HANDLER_TIMEOUT_MS,
            upload_retention_days: UPLOAD_RETENTION_DAYS,
            shutdown_grace_ms: SHUTDOWN_GRACE_MS,
            history_retention_days: HISTORY_RETENTION_DAYS,
            failure_retention_days: FAILURE_RETENTION_DAYS,
            file_grace_hours: FILE_GRACE_HOURS,
            deletion_horizon_days: DELETION_HORIZON_DAYS,
        }
    }
}

/// What a server is started with.
pub struct Config {
    /// The model file text.
    pub model_text: String,
    pub database: Database,
    /// The directory of file contents (made when missing).
    pub files: std::path::PathBuf,
    pub limits: Limits,
    pub handlers: Handlers,
    pub clock: Arc<dyn Clock>,
    /// The identity provider whose tokens sign users in, beside the built-in users.
    pub identity: Option<IdentityProvider>,
    /// A directory of static files (a web app) served beside the API: every path outside the
    /// API's answers with the file of that path (`index.html` for a directory).
    pub app: Option<std::path::PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("the model is invalid:\n{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Model(Vec<ModelError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Identity(String),
}

/// A running server's shared state; cheap to clone.
#[derive(Clone)]
pub struct Server {
    state: Arc<State>,
}

pub(crate) struct State {
    model: Model,
    model_text: String,
    constraints: ModelConstraints,
    store: store::Store,
    blobs: files::BlobStore,
    clock: Arc<dyn Clock>,
    limits: Limits,
    handlers: Handlers,
    metrics: Metrics,
    passwords: Arc<auth::Passwords>,
    identity: Option<identity::Identity>,
    /// The web app's directory, served beside the API.
    app: Option<std::path::PathBuf>,
    sign_in_attempts: sign_in_limit::SignInLimiter,
    /// One place per request being handled (`Limits::requests_in_flight_max`).
    requests_in_flight: tokio::sync::Semaphore,
    /// Set when the server stops serving: every live stream ends (each would hold it open).
    closing: tokio::sync::watch::Sender<bool>,
    /// The data's epoch and the restores it came through (read at open; `ferry restore` runs
    /// while no server serves the data).
    lineage: restore::Lineage,
}

impl Server {
    pub async fn open(config: Config) -> Result<Server, OpenError> {
        let model = Model::parse(&config.model_text).map_err(OpenError::Model)?;
        let constraints = ferry_constraint::check_model(&model).map_err(OpenError::Model)?;
        let store = store::Store::open(&config.database, &model, &config.model_text).await?;
        let blobs = files::BlobStore::open(&config.files).map_err(StoreError::Files)?;
        let lineage = restore::Lineage::read(&store).await?;
        let requests_in_flight = tokio::sync::Semaphore::new(config.limits.requests_in_flight_max);
        let identity = config.identity.map(identity::Identity::new).transpose();
        let identity = identity.map_err(OpenError::Identity)?;
        let state = State {
            model,
            model_text: config.model_text,
            constraints,
            store,
            blobs,
            clock: config.clock,
            limits: config.limits,
            handlers: config.handlers,
            metrics: Metrics::new(),
            passwords: Arc::default(),
            identity,
            app: config.app,
            sign_in_attempts: sign_in_limit::SignInLimiter::default(),
            requests_in_flight,
            closing: tokio::sync::watch::channel(false).0,
            lineage,
        };
        Ok(Server { state: Arc::new(state) })
    }

    /// Runs the data lifecycle's jobs once (a serving server runs them every
    /// [`LIFECYCLE_INTERVAL_SECONDS`]): old history, old replayed failures, and file contents
    /// nothing needs any longer go.
    pub async fn collect(&self) -> Result<Collected, StoreError> {
        lifecycle::collect(&self.state).await
    }

    /// Marks the data as restored from a backup (`ferry restore`, while no server serves it):
    /// a new epoch, so every device's next download is full, and the restore of the old epoch
    /// through the last change the data holds, so each device makes the uploads it made after
    /// the backup dirty again. Gives the new epoch and the restores, oldest first.
    pub async fn mark_restored(
        &self,
    ) -> Result<(String, Vec<ferry_protocol::RestorePoint>), StoreError> {
        let lineage = restore::mark_restored(&self.state.store).await?;
        Ok((lineage.epoch, lineage.restored))
    }

    /// The HTTP API.
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// The `SynchronizationHistory`, newest first (at most [`LISTING_ROWS_MAX`] records), as
    /// `GET /v1/history` answers it.
    pub async fn history(&self) -> Result<Vec<ferry_protocol::HistoryEntry>, StoreError> {
        Ok(failures::history(&self.state).await?.entries)
    }

    /// The `SynchronizationError` records, newest first (at most [`LISTING_ROWS_MAX`]), as
    /// `GET /v1/failures` answers them.
    pub async fn failures(&self) -> Result<Vec<ferry_protocol::Failure>, StoreError> {
        Ok(failures::list(&self.state, None, None).await?.failures)
    }

    /// The file content a rejected file object named, kept with its failure; `None` when the
    /// failure does not exist or names no content.
    pub async fn failure_file(&self, id: i64) -> Result<Option<std::fs::File>, StoreError> {
        match files::failure_content(&self.state, id).await {
            Ok(content) => Ok(Some(content.file)),
            Err(failures::FailureError::NotFound(_) | failures::FailureError::NoContent(_)) => {
                Ok(None)
            }
            Err(failures::FailureError::Store(error)) => Err(error),
            Err(other) => unreachable!("reading a failure's content fails only so: {other}"),
        }
    }

    /// Gives the user `name` these roles (as `PUT /v1/users/{name}/roles` does).
    pub async fn set_roles(&self, name: &str, roles: &[String]) -> Result<(), UserError> {
        operators::set_roles(&self.state, name, roles.to_vec()).await.map(|_| ())
    }

    /// True when the server holds the object (not deleted).
    pub async fn holds(&self, entity: &str, id: ObjectId) -> Result<bool, StoreError> {
        let Some(entity) = self.state.model.entity(entity) else { return Ok(false) };
        let rules = access::UserRules { rules: Vec::new() };
        let mut tx = self.state.store.begin_snapshot().await?;
        let found = upload::read_covered(&self.state, &mut tx, entity, &rules, id).await?;
        tx.finish().await?;
        Ok(found.is_some())
    }

    /// Creates a user with the given roles; the password is kept only as an argon2id hash.
    pub async fn add_user(
        &self,
        name: &str,
        roles: &[String],
        password: &str,
    ) -> Result<ObjectId, UserError> {
        auth::add_user(&self.state, name, roles, password).await
    }

    pub fn model(&self) -> &Model {
        &self.state.model
    }
}

impl State {
    /// Counts a sign-in attempt for `name` from `address`; too many in the last minute, for
    /// the name or from the address, is refused.
    fn limit_sign_in(
        &self,
        name: &str,
        address: Option<std::net::IpAddr>,
        now: Timestamp,
    ) -> Result<(), auth::AuthError> {
        self.sign_in_attempts
            .attempt(
                name,
                address,
                now,
                self.limits.sign_in_attempts_per_minute,
                self.limits.sign_in_attempts_per_address_per_minute,
            )
            .map_err(|refusal| auth::AuthError::TooMany(refusal.to_string()))
    }
}
