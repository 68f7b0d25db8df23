//! The sync engine: one sync at a time, an upload phase then a download phase (DESIGN.md §4).
//!
//! The decisions of a sync are the sync core's (`ferry-sync`, with no IO); this module is its
//! shell for Rust apps: `engine` runs the core's machine over the [`Transport`] and the local
//! store (`store`, every statement a sync runs, apart from the download's writer in `apply`),
//! and this module holds the SDK's public face: the engine, its modes, options and errors.
//!
//! Upload sends every committed change in one request under an upload id that is stored, with
//! the request, before it is sent: a retry after a lost answer resends the same request, and the
//! server answers it once. The answer is applied in one local transaction. Download brings each
//! entity per its download behaviour, all pages of all entities applied in one local transaction,
//! so a download that fails part way changes nothing on the device.

mod action;
mod apply;
mod engine;
mod journal;
mod live;
mod store;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_model::ObjectId;
use ferry_protocol::endpoint::{self, Endpoint, Route};
use ferry_protocol::{ModelResponse, SignInRequest, SignInResponse, TokenSignInRequest};
use ferry_sync::{Answer as CoreAnswer, Job, Retry};

pub use action::ActionOutcome;
pub use apply::{PAGES_IN_FLIGHT, WAL_TRUNCATE_OBJECTS};
pub use ferry_sync::files::FILE_SEND_ATTEMPTS;
pub use ferry_sync::{Phase, Progress, RETRY_DELAY_MS, SEND_ATTEMPTS_MAX, SyncReport};
pub use live::{
    LIVE_DEBOUNCE_MS, LIVE_EVENT_BYTES_MAX, LIVE_RETRY_MS_MAX, LIVE_RETRY_MS_MIN, LiveCallback,
    LiveEvent, LiveOptions,
};
pub use transport::{
    ANSWER_IDLE_TIMEOUT_MS, ANSWER_TIMEOUT_MS, Answer, CONNECT_TIMEOUT_MS,
    FILE_SEND_RATE_MIN_BYTES_PER_S, HttpTransport, Payload, RESPONSE_BYTES_MAX,
    RESPONSE_HEAD_BYTES_MAX, RESPONSE_HEADERS_MAX, Request, Response, Sink, Timeouts, Transport,
};

use crate::ClientError;
use crate::database::{Database, Meta, forget_meta, meta, set_meta};

/// The answer to a second sync while one runs, exactly as DESIGN.md §4 words it.
pub const SIMULTANEOUS_SYNC_MESSAGE: &str = "Performing simultaneous synchronizations is not supported. Please try again after the current synchronization is completed.";

/// What a sync uploads and downloads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Every committed change up; every entity down per its download behaviour.
    All,
    /// Every committed change up; the fresh server state of the uploaded objects down.
    Unsynchronized,
    /// The committed changes of these objects up (deletions cannot be selected); their fresh
    /// server state down. Make it with [`SyncMode::selected`].
    Selected(Vec<(String, ObjectId)>),
}

impl SyncMode {
    /// Selected-objects sync of these objects; objects never committed are skipped (their
    /// uncommitted changes are never sent).
    pub fn selected(objects: &[&crate::Object]) -> SyncMode {
        let chosen = objects
            .iter()
            .filter(|o| o.is_committed())
            .map(|o| (o.entity().to_string(), o.id()))
            .collect();
        SyncMode::Selected(chosen)
    }
}

/// Asks a running sync to stop. The phase under way is finished or rolled back whole: a
/// cancelled download changes nothing on the device, and an upload sent is answered once.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<Cancel>);

#[derive(Debug, Default)]
struct Cancel {
    cancelled: AtomicBool,
    told: tokio::sync::Notify,
}

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks the sync (or live mode) to stop at its next step.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
        self.0.told.notify_waiters();
    }

    /// True once `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// Waits until `cancel` is called.
    pub async fn cancelled(&self) {
        let told = self.0.told.notified();
        let mut told = std::pin::pin!(told);
        told.as_mut().enable();
        if !self.is_cancelled() {
            told.await;
        }
    }
}

/// Called with each [`Progress`] report; it runs on the syncing task, so keep it short.
pub type ProgressCallback = Arc<dyn Fn(&Progress) + Send + Sync>;

/// How to run a sync: a progress callback and a cancel token, both optional.
#[derive(Clone, Default)]
pub struct SyncOptions {
    /// Called at each step with how far the sync has come.
    pub progress: Option<ProgressCallback>,
    /// Checked between steps.
    pub cancel: Option<CancelToken>,
}

impl SyncOptions {
    fn report(&self, progress: Progress) {
        if let Some(callback) = &self.progress {
            callback(&progress);
        }
    }
}

/// Why a sync did not complete. The device keeps every committed change for the next one.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Another sync is running on this device.
    #[error("{SIMULTANEOUS_SYNC_MESSAGE}")]
    AlreadyRunning,
    /// Another user's committed changes are still on the device: sign in as that user and sync
    /// first, so nothing is lost. Nothing changed on the device.
    #[error(
        "{count} changes of the previous user are not uploaded yet: sign in as that user and sync before switching users"
    )]
    AnotherUsersChanges {
        /// How many objects have changes.
        count: usize,
    },
    /// The sync was cancelled; the phase under way finished or was rolled back whole.
    #[error(
        "the synchronization was cancelled; committed changes not yet uploaded are kept for the next one"
    )]
    Cancelled,
    /// The server speaks another version of the protocol than this device: nothing was
    /// exchanged beyond the model; the app (or the server) must be updated.
    #[error(
        "the server speaks protocol version {server}, this device version {device}: update the app or the server so they match"
    )]
    Protocol {
        /// The server's protocol version.
        server: u32,
        /// This device's.
        device: u32,
    },
    /// The server address is not `https://host[:port][/prefix]`, or `http://` to this machine.
    #[error(
        "`{server}` is not a server address such as https://sync.example.com or https://example.com/ferry (plain http:// only to this machine, as http://127.0.0.1:8750)"
    )]
    BadServer {
        /// The address given.
        server: String,
    },
    /// The server's certificate does not verify against the trusted authorities (the
    /// platform's, and any given): nothing was sent, and no plain connection is tried instead.
    #[error(
        "the certificate of {server} cannot be trusted ({reason}); if the server uses a private certificate authority, give its certificate (--ca-cert)"
    )]
    Certificate {
        /// The server.
        server: String,
        /// Why the certificate was refused.
        reason: String,
    },
    /// The server could not be reached (after retries).
    #[error("cannot reach the server at {server}: {reason}; check the connection and sync again")]
    Unreachable {
        /// `host:port`.
        server: String,
        /// What failed.
        reason: String,
    },
    /// Nobody is signed in on this device, or the session ended: its refresh token expired
    /// or was refused (spent elsewhere, the user disabled, a new password).
    #[error("not signed in, or the session expired: sign in again ({message})")]
    NotSignedIn {
        /// The server's explanation.
        message: String,
    },
    /// The server refused the request.
    #[error("the server answered {status} {code}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// The error code of `ErrorBody`.
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// A committed object refers to an object that is neither on the device nor on the server:
    /// a modelling error the app must fix; nothing was sent.
    #[error(
        "`{entity}` {id} refers through `{association}` to {target}, which is neither committed on this device nor known to the server"
    )]
    Integrity {
        /// The referring object's entity.
        entity: String,
        /// The referring object.
        id: ObjectId,
        /// The association.
        association: String,
        /// The missing object.
        target: ObjectId,
    },
    /// In a selected sync, a selected object refers to an object committed on this device but
    /// not yet on the server: it must go in the same upload; nothing was sent.
    #[error(
        "`{entity}` {id} refers through `{association}` to {target}, which is committed on this device but not yet on the server: select it too, or run a full sync"
    )]
    SelectionIntegrity {
        /// The referring object's entity.
        entity: String,
        /// The referring object.
        id: ObjectId,
        /// The association.
        association: String,
        /// The object to select too.
        target: ObjectId,
    },
    /// A file content could not be sent, even on the retry: nothing was uploaded and every
    /// local change is kept for the next sync.
    #[error(
        "the content of `{entity}` {id} could not be sent, twice ({reason}); every local change is kept for the next sync"
    )]
    FileUpload {
        /// The file object's entity.
        entity: String,
        /// The file object.
        id: String,
        /// What failed the second time.
        reason: String,
    },
    /// The device database failed.
    #[error(transparent)]
    Local(#[from] ClientError),
}

impl SyncError {
    /// The sync core's error in the SDK's terms; `server` is the address the network failed
    /// to reach.
    fn from_core(error: ferry_sync::Error, server: String) -> SyncError {
        use ferry_sync::Error as Core;
        match error {
            Core::Cancelled => SyncError::Cancelled,
            Core::Protocol { server, device } => SyncError::Protocol { server, device },
            Core::Unreachable { reason } => SyncError::Unreachable { server, reason },
            Core::NotSignedIn { message } => SyncError::NotSignedIn { message },
            Core::Server { status, code, message } => SyncError::Server { status, code, message },
            Core::Integrity { entity, id, association, target } => {
                SyncError::Integrity { entity, id, association, target }
            }
            Core::SelectionIntegrity { entity, id, association, target } => {
                SyncError::SelectionIntegrity { entity, id, association, target }
            }
            Core::FileUpload { entity, id, reason } => SyncError::FileUpload { entity, id, reason },
            Core::AnotherUsersChanges { count } => SyncError::AnotherUsersChanges { count },
            Core::UnknownEntity { entity } => ClientError::UnknownEntity { entity }.into(),
            Core::Corrupt { what } => ClientError::Corrupt(what).into(),
            Core::Unexpected { event } => {
                unreachable!("the engine fed the sync core `{event}`, which it was not waiting for")
            }
        }
    }
}

impl From<rusqlite::Error> for SyncError {
    fn from(error: rusqlite::Error) -> Self {
        SyncError::Local(ClientError::Database(error))
    }
}

/// Synchronises one device database with one server.
pub struct SyncEngine {
    database: Arc<Database>,
    transport: Arc<dyn Transport>,
    running: AtomicBool,
    /// Downloads are written on the syncing task, not on a thread of their own.
    inline_writer: bool,
    /// The source of retry jitter when a simulation set one; the system's randomness otherwise.
    random: Option<std::sync::Mutex<ferry_model::arbitrary::SplitMix64>>,
}

/// Releases the one-sync-at-a-time flag when a sync ends, however it ends.
/// A sync (or an action call) under way: the engine's flag, and a lock on a file beside the
/// database, so a second process syncing the same database is refused too. Both end when dropped.
pub(crate) struct Running<'a> {
    flag: &'a AtomicBool,
    _lock: std::fs::File,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.flag.store(false, Ordering::Release);
    }
}

impl SyncEngine {
    /// Starts a sync, or refuses with [`SyncError::AlreadyRunning`] while one runs here or in
    /// another process on the same database.
    pub(crate) fn start_running(&self) -> Result<Running<'_>, SyncError> {
        if self.running.swap(true, Ordering::AcqRel) {
            return Err(SyncError::AlreadyRunning);
        }
        let locked = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.database.sync_lock_path())
            .and_then(|file| match file.try_lock() {
                Ok(()) => Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                Err(std::fs::TryLockError::Error(error)) => Err(error),
            });
        match locked {
            Ok(Some(file)) => Ok(Running { flag: &self.running, _lock: file }),
            Ok(None) => {
                self.running.store(false, Ordering::Release);
                Err(SyncError::AlreadyRunning)
            }
            Err(error) => {
                self.running.store(false, Ordering::Release);
                Err(ClientError::Files(error).into())
            }
        }
    }
}

impl SyncEngine {
    /// An engine for `database` and the server at `server` (`http://host:port`).
    pub fn new(database: Arc<Database>, server: &str) -> Result<SyncEngine, SyncError> {
        Ok(SyncEngine {
            database,
            transport: Arc::new(HttpTransport::new(server)?),
            running: AtomicBool::new(false),
            inline_writer: false,
            random: None,
        })
    }

    /// An engine that reaches its server through `transport` (a simulation's in-process one).
    pub fn with_transport(database: Arc<Database>, transport: Arc<dyn Transport>) -> SyncEngine {
        SyncEngine {
            database,
            transport,
            running: AtomicBool::new(false),
            inline_writer: false,
            random: None,
        }
    }

    /// This engine, writing each download on the syncing task instead of a thread of its own:
    /// fetching and writing no longer overlap, and nothing of a sync runs outside the task, as
    /// a deterministic simulation on a paused clock needs. Apps keep the default.
    pub fn writing_downloads_inline(mut self) -> SyncEngine {
        self.inline_writer = true;
        self
    }

    /// This engine, drawing the jitter of its retry waits (a sync's requests, live mode's
    /// reconnections) from `seed` instead of the system's randomness: a deterministic
    /// simulation's runs are then a function of their seed. Apps keep the default.
    pub fn with_random_seed(mut self, seed: u64) -> SyncEngine {
        self.random = Some(std::sync::Mutex::new(ferry_model::arbitrary::SplitMix64::new(seed)));
        self
    }

    /// Whether a sync (the app's, live mode's, or an action call's) runs on this engine now.
    pub fn is_syncing(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// A seed for a retry policy's jitter: from [`SyncEngine::with_random_seed`]'s source when
    /// set, else from the system.
    pub(crate) fn random_seed(&self) -> u64 {
        match &self.random {
            Some(random) => random.lock().unwrap_or_else(|p| p.into_inner()).next_u64(),
            None => crate::effects::random_seed(),
        }
    }

    /// The engine of a database someone signed in on before, with the server they signed in to
    /// (and the certificate authorities trusted for it then).
    pub fn resume(database: Arc<Database>) -> Result<SyncEngine, SyncError> {
        let (server, authorities) = {
            let connection = database.lock();
            (meta(&connection, Meta::Server)?, meta(&connection, Meta::Authorities)?)
        };
        let server = server.ok_or_else(|| SyncError::NotSignedIn {
            message: "no one has signed in on this device".to_owned(),
        })?;
        SyncEngine::trusting(database, &server, authorities.as_deref().map(str::as_bytes))
    }

    /// [`SyncEngine::new`], also trusting the certificate authorities of `authorities` (PEM)
    /// beside the platform's, for a server with a private certificate.
    pub fn trusting(
        database: Arc<Database>,
        server: &str,
        authorities: Option<&[u8]>,
    ) -> Result<SyncEngine, SyncError> {
        let transport = HttpTransport::with_options(server, Timeouts::default(), authorities)?;
        Ok(SyncEngine::with_transport(database, Arc::new(transport)))
    }

    /// Signs in at `server` with one sign-in, and opens (or makes) the device database at
    /// `path` for the server's model: what a device does when a user logs in. The engine keeps
    /// the token, the user and the server, as [`SyncEngine::sign_in`] does.
    pub async fn login(
        path: impl AsRef<std::path::Path>,
        server: &str,
        user: &str,
        password: &str,
    ) -> Result<(SyncEngine, ObjectId), SyncError> {
        SyncEngine::login_trusting(path, server, None, user, password).await
    }

    /// [`SyncEngine::login`], also trusting the certificate authorities of `authorities` (PEM)
    /// for this server; the device keeps them for its later syncs ([`SyncEngine::resume`]).
    pub async fn login_trusting(
        path: impl AsRef<std::path::Path>,
        server: &str,
        authorities: Option<&[u8]>,
        user: &str,
        password: &str,
    ) -> Result<(SyncEngine, ObjectId), SyncError> {
        let credential = Credential::Password { user, password };
        SyncEngine::login_with(path, None, server, authorities, credential).await
    }

    /// [`SyncEngine::login_trusting`] with either kind of [`Credential`]: a user name and
    /// password, or a token of the server's identity provider; with `key`, the device database
    /// is encrypted ([`Database::open_encrypted`]).
    pub async fn login_with(
        path: impl AsRef<std::path::Path>,
        key: Option<&crate::DeviceKey>,
        server: &str,
        authorities: Option<&[u8]>,
        credential: Credential<'_>,
    ) -> Result<(SyncEngine, ObjectId), SyncError> {
        let transport = HttpTransport::with_options(server, Timeouts::default(), authorities)?;
        let transport: Arc<dyn Transport> = Arc::new(transport);
        let response = request_sign_in(transport.as_ref(), credential).await?;
        let route = endpoint::Model::ROUTE;
        let to_model = route.path(&[]);
        let model: ModelResponse =
            exchange_json(transport.as_ref(), (route, &to_model), Some(&response.token), b"")
                .await?;
        ferry_sync::check_protocol(&model)
            .map_err(|e| SyncError::from_core(e, transport.server()))?;
        let database = match key {
            Some(key) => Database::open_encrypted(path, &model.text, key)?,
            None => Database::open(path, &model.text)?,
        };
        let database = Arc::new(database);
        {
            let connection = database.lock();
            match authorities {
                Some(pem) => {
                    set_meta(&connection, Meta::Authorities, &String::from_utf8_lossy(pem))?
                }
                None => forget_meta(&connection, Meta::Authorities)?,
            }
        }
        let engine = SyncEngine::with_transport(database, transport);
        let id = engine.remember_sign_in(&response)?;
        Ok((engine, id))
    }

    /// Signs in; the token and the user are kept in the device database. When another user was
    /// signed in, that user's objects leave the device, which is refused while any of their
    /// changes are not uploaded.
    pub async fn sign_in(&self, user: &str, password: &str) -> Result<ObjectId, SyncError> {
        let job = Job::SignIn { user: user.to_owned(), password: password.to_owned() };
        match engine::drive(self, job, &SyncOptions::default()).await? {
            ferry_sync::Done::SignedIn(id) => Ok(id),
            other => unreachable!("a sign-in ends signed in, not {other:?}"),
        }
    }

    /// Keeps a sign-in's token and user, as [`SyncEngine::sign_in`] does: a new user's sign-in
    /// clears the previous user's data, once none of their changes is left to upload.
    fn remember_sign_in(&self, response: &SignInResponse) -> Result<ObjectId, SyncError> {
        let id = ObjectId::parse(&response.user_id).ok_or_else(|| SyncError::Server {
            status: 200,
            code: "bad-response".to_owned(),
            message: format!("`{}` is not a user id", response.user_id),
        })?;
        let store = store::LocalStore { database: &self.database, server: self.transport.server() };
        let (previous, changes, stored) = {
            let connection = self.database.lock();
            let changes: i64 =
                connection.query_row("SELECT count(*) FROM ferry_dirty", [], |row| row.get(0))?;
            let stored = meta(&connection, Meta::PendingUpload)?.is_some();
            (self.database.current_user(&connection)?, changes as usize, stored)
        };
        let forget_previous = ferry_sync::switching(previous, id, changes, stored)
            .map_err(|e| SyncError::from_core(e, self.transport.server()))?;
        let session = store::Session {
            token: &response.token,
            refresh_token: response.refresh_token.as_deref(),
            roles: &response.roles,
        };
        store.signed_in(&session, id, forget_previous)?;
        Ok(id)
    }

    fn token(&self) -> Result<String, SyncError> {
        meta(&self.database.lock(), Meta::Token)?.ok_or_else(|| SyncError::NotSignedIn {
            message: "no one has signed in on this device".to_owned(),
        })
    }

    /// Runs one sync. Only one runs at a time: a second attempt fails at once with
    /// [`SIMULTANEOUS_SYNC_MESSAGE`].
    pub async fn sync(&self, mode: SyncMode) -> Result<SyncReport, SyncError> {
        self.sync_with(mode, &SyncOptions::default()).await
    }

    /// [`SyncEngine::sync`] with progress reports and a cancel token.
    pub async fn sync_with(
        &self,
        mode: SyncMode,
        options: &SyncOptions,
    ) -> Result<SyncReport, SyncError> {
        let _running = self.start_running()?;
        let mode = match mode {
            SyncMode::All => ferry_sync::Mode::All,
            SyncMode::Unsynchronized => ferry_sync::Mode::Unsynchronized,
            SyncMode::Selected(objects) => ferry_sync::Mode::Selected(objects),
        };
        match engine::drive(self, Job::Sync(mode), options).await? {
            ferry_sync::Done::Synced(report) => {
                // Contents nothing refers to any longer leave the device; a failure to remove
                // one leaves it for the next sync, and does not fail this one.
                let grace = std::time::Duration::from_secs(crate::DEVICE_FILE_GRACE_HOURS * 3600);
                let _ = self.database.collect_files(grace);
                Ok(report)
            }
            other => unreachable!("a sync ends with its report, not {other:?}"),
        }
    }

    /// True when a full sync is due: the device never completed one (a first start, or a new
    /// user), or the server's model changed since the last one. Asks the server for its model.
    pub async fn sync_needed(&self) -> Result<bool, SyncError> {
        engine::drive(self, Job::FollowModel, &SyncOptions::default()).await?;
        Ok(self.database.status()?.full_sync_due.is_some())
    }

    /// Runs a full sync when [`SyncEngine::sync_needed`] says one is due; apps call it when they
    /// start and when the network comes back.
    pub async fn sync_if_needed(&self) -> Result<Option<SyncReport>, SyncError> {
        if self.sync_needed().await? {
            return self.sync(SyncMode::All).await.map(Some);
        }
        Ok(None)
    }
}

/// How a user proves who they are when a device signs in.
///
/// ```no_run
/// # async fn run(identity_token: &str) -> Result<(), ferry_client::SyncError> {
/// use ferry_client::{Credential, SyncEngine};
/// // The app got `identity_token` from its identity provider's sign-in page.
/// let credential = Credential::IdentityToken(identity_token);
/// let (engine, user) =
///     SyncEngine::login_with("field.db", None, "https://sync.example.com", None, credential)
///         .await?;
/// engine.sync(ferry_client::SyncMode::All).await?;
/// # let _ = user; Ok(()) }
/// ```
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// A user of the server's own, by name and password.
    Password {
        /// The user's name.
        user: &'a str,
        /// Their password.
        password: &'a str,
    },
    /// A token (a JWT) of the identity provider the server trusts.
    IdentityToken(&'a str),
}

/// Sends a sign-in and reads its answer.
async fn request_sign_in(
    transport: &dyn Transport,
    credential: Credential<'_>,
) -> Result<SignInResponse, SyncError> {
    let (route, body) = match credential {
        Credential::Password { user, password } => {
            let request = SignInRequest { user: user.to_owned(), password: password.to_owned() };
            (endpoint::SignIn::ROUTE, serde_json::to_vec(&request))
        }
        Credential::IdentityToken(token) => {
            let request = TokenSignInRequest { token: token.to_owned() };
            (endpoint::TokenSignIn::ROUTE, serde_json::to_vec(&request))
        }
    };
    let body = body.expect("requests serialise");
    exchange_json(transport, (route, &route.path(&[])), None, &body).await
}

/// One request of a JSON route through `transport`, retried after network failures and busy
/// answers per the sync core's [`Retry`] policy, and its typed answer.
async fn exchange_json<T: serde::de::DeserializeOwned>(
    transport: &dyn Transport,
    (route, path): (Route, &str),
    token: Option<&str>,
    body: &[u8],
) -> Result<T, SyncError> {
    let method = route.method.as_str();
    let mut retry = Retry::new(crate::effects::random_seed());
    let mut failed = 0;
    let response = loop {
        let payload = Payload::Bytes(body);
        let request = Request { route: Some(route), method, path, token, payload };
        match transport.exchange(request, None).await {
            Ok(response) if response.status == ferry_sync::BUSY_STATUS => {
                failed += 1;
                let Some(ms) = retry.delay_ms(failed) else {
                    break response;
                };
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            Err(SyncError::Unreachable { server, reason }) => {
                failed += 1;
                let Some(ms) = retry.delay_ms(failed) else {
                    return Err(SyncError::Unreachable { server, reason });
                };
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            other => break other?,
        }
    };
    let answer = CoreAnswer { status: response.status, body: response.body };
    ferry_sync::decode(&answer)
        .map(|(value, _)| value)
        .map_err(|e| SyncError::from_core(e, transport.server()))
}
