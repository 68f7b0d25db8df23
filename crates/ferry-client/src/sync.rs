//! The sync engine: one sync at a time, an upload phase then a download phase (DESIGN.md §4).
//!
//! Upload sends every committed change in one request under an upload id that is stored, with
//! the request, before it is sent: a retry after a lost answer resends the same request, and the
//! server answers it once. The answer is applied in one local transaction. Download brings each
//! entity per its download behaviour, all pages of all entities applied in one local transaction,
//! so a download that fails part way changes nothing on the device.

mod action;
mod apply;
mod transport;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ferry_model::{Entity, EntityKind, ObjectId, Value};
use ferry_protocol::{
    ChangeKind, DownloadMode, DownloadPage, DownloadedObject, ErrorBody, FilesMissingRequest,
    FilesMissingResponse, Members, ModelResponse, ObjectChange, ObjectsRequest, ObjectsResponse,
    OutcomeResult, SignInRequest, SignInResponse, SyncRecord, UploadRequest, UploadResponse, value,
};
use ferry_sql::{Dialect, param, table_name};
use tokio::sync::mpsc::Sender;

pub use action::ActionOutcome;
pub use apply::{PAGES_IN_FLIGHT, WAL_TRUNCATE_OBJECTS};
pub use transport::{
    ANSWER_IDLE_TIMEOUT_MS, ANSWER_TIMEOUT_MS, Answer, CONNECT_TIMEOUT_MS,
    FILE_SEND_RATE_MIN_BYTES_PER_S, HttpTransport, Payload, RESPONSE_BYTES_MAX,
    RESPONSE_HEAD_BYTES_MAX, RESPONSE_HEADERS_MAX, Request, Response, Sink, Timeouts, Transport,
};

use apply::{Applied, Step, apply_download};

use crate::database::{
    Checkpoints, Database, Removed, holds_objects, id_from_blob, id_param, meta, set_meta, to_sql,
};
use crate::files::named_hash;
use crate::{ClientError, effects};

/// The answer to a second sync while one runs, exactly as DESIGN.md §4 words it.
pub const SIMULTANEOUS_SYNC_MESSAGE: &str = "Performing simultaneous synchronizations is not supported. Please try again after the current synchronization is completed.";

/// Attempts of one request when the network fails, the first included.
pub const SEND_ATTEMPTS_MAX: u32 = 3;
/// The wait before the first retry, in milliseconds; it doubles for each further one.
pub const RETRY_DELAY_MS: u64 = 200;
/// Attempts to send one file content, the first included: a failed send is retried once.
pub const FILE_SEND_ATTEMPTS: u32 = 2;
/// Contents asked about in one `POST /v1/files/missing`.
const HASHES_PER_CHECK: usize = 1_000;

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

/// The phase a sync is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Sending committed changes.
    Upload,
    /// Bringing the server's data.
    Download,
}

/// How far a sync has come, reported as it goes.
///
/// In the upload phase the counts cover the whole upload. In the download phase they cover the
/// entity being downloaded: its objects and removals received, out of the total the server
/// counted when the entity's download began (changes made on the server meanwhile may add a
/// few). The bytes total of a download is estimated from the pages received so far, and equals
/// the bytes received once the entity's last page is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// The entity being downloaded, in the download phase.
    pub entity: Option<String>,
    /// Objects (and, downloading, removals) sent or received so far.
    pub objects_done: usize,
    /// Objects in all, when known (a server that does not count sends none).
    pub objects_total: Option<usize>,
    /// Bytes sent or received so far.
    pub bytes_done: usize,
    /// Bytes in all, when known or estimated.
    pub bytes_total: Option<usize>,
}

impl Progress {
    /// Counts a download page in: its entries and bytes, the total when the page brings it, and
    /// the bytes still to come at the size per entry seen so far. After the last page the totals
    /// are what was received.
    fn advance(&mut self, page: &DownloadPage, bytes: usize) {
        if let Some(total) = page.total {
            self.objects_total = Some(usize::try_from(total).unwrap_or(usize::MAX));
        }
        self.objects_done += page.objects.len() + page.removed.len();
        self.bytes_done += bytes;
        if !page.more {
            self.objects_total = Some(self.objects_done);
            self.bytes_total = Some(self.bytes_done);
            return;
        }
        let total = self.objects_total.map(|total| total.max(self.objects_done));
        self.objects_total = total;
        self.bytes_total = total.filter(|_| self.objects_done > 0).map(|total| {
            let remaining = (total - self.objects_done) as u128;
            let estimate = remaining * self.bytes_done as u128 / self.objects_done as u128;
            self.bytes_done + usize::try_from(estimate).unwrap_or(usize::MAX)
        });
    }
}

/// Asks a running sync to stop. The phase under way is finished or rolled back whole: a
/// cancelled download changes nothing on the device, and an upload sent is answered once.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks the sync to stop at its next step.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// True once `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
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

    fn check(&self) -> Result<(), SyncError> {
        match &self.cancel {
            Some(token) if token.is_cancelled() => Err(SyncError::Cancelled),
            _ => Ok(()),
        }
    }
}

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Objects the server applied (created, changed or deleted).
    pub uploaded: usize,
    /// Objects the server rejected, with the reason (they are in `SynchronizationError`).
    pub rejected: Vec<(String, ObjectId, String)>,
    /// Objects downloaded, per entity.
    pub downloaded: BTreeMap<String, usize>,
    /// Objects removed from the device by the download, per entity.
    pub removed: BTreeMap<String, usize>,
    /// File contents sent to the server (those it held already cost nothing and are not counted).
    pub files_uploaded: usize,
    /// File contents brought to the device (only those it lacked).
    pub files_downloaded: usize,
}

impl SyncReport {
    /// The entity and id of each rejected object.
    fn rejected_objects(&self) -> Vec<(String, ObjectId)> {
        self.rejected.iter().map(|(entity, id, _)| (entity.clone(), *id)).collect()
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
    /// The server address is not `http://host:port`.
    #[error("`{server}` is not a server address such as http://127.0.0.1:8750")]
    BadServer {
        /// The address given.
        server: String,
    },
    /// The server could not be reached (after retries).
    #[error("cannot reach the server at {server}: {reason}; check the connection and sync again")]
    Unreachable {
        /// `host:port`.
        server: String,
        /// What failed.
        reason: String,
    },
    /// Nobody is signed in on this device, or the token expired.
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
        })
    }

    /// An engine that reaches its server through `transport` (a simulation's in-process one).
    pub fn with_transport(database: Arc<Database>, transport: Arc<dyn Transport>) -> SyncEngine {
        SyncEngine { database, transport, running: AtomicBool::new(false) }
    }

    /// The engine of a database someone signed in on before, with the server they signed in to.
    pub fn resume(database: Arc<Database>) -> Result<SyncEngine, SyncError> {
        let server = meta(&database.lock(), "server")?.ok_or_else(|| SyncError::NotSignedIn {
            message: "no one has signed in on this device".to_owned(),
        })?;
        SyncEngine::new(database, &server)
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
        let transport: Arc<dyn Transport> = Arc::new(HttpTransport::new(server)?);
        let response = request_sign_in(transport.as_ref(), user, password).await?;
        let model: ModelResponse =
            exchange_json(transport.as_ref(), "GET", "/v1/model", Some(&response.token), b"")
                .await?;
        check_protocol(&model)?;
        let database = Arc::new(Database::open(path, &model.text)?);
        let engine = SyncEngine::with_transport(database, transport);
        let id = engine.remember_sign_in(&response)?;
        Ok((engine, id))
    }

    /// Signs in; the token and the user are kept in the device database. When another user was
    /// signed in, that user's objects leave the device, which is refused while any of their
    /// changes are not uploaded.
    pub async fn sign_in(&self, user: &str, password: &str) -> Result<ObjectId, SyncError> {
        let response = request_sign_in(self.transport.as_ref(), user, password).await?;
        self.remember_sign_in(&response)
    }

    /// Keeps a sign-in's token and user; a new user's sign-in clears the previous user's data.
    fn remember_sign_in(&self, response: &SignInResponse) -> Result<ObjectId, SyncError> {
        let id = ObjectId::parse(&response.user_id).ok_or_else(|| SyncError::Server {
            status: 200,
            code: "bad-response".to_owned(),
            message: format!("`{}` is not a user id", response.user_id),
        })?;
        let mut connection = self.database.lock();
        let previous = meta(&connection, "user")?.and_then(|text| ObjectId::parse(&text));
        let transaction = connection.transaction()?;
        if previous.is_some_and(|previous| previous != id) {
            // The previous user's data leaves the device, but only once its changes are uploaded.
            let pending: i64 =
                transaction.query_row("SELECT count(*) FROM ferry_dirty", [], |row| row.get(0))?;
            if pending > 0 || meta(&transaction, "pending_upload")?.is_some() {
                return Err(SyncError::AnotherUsersChanges { count: pending as usize });
            }
            for entity in self.database.model().entities().filter(|e| e.kind != EntityKind::System)
            {
                transaction.execute(&format!("DELETE FROM {}", table_name(entity)), [])?;
            }
            Checkpoints::forget_all(&transaction)?;
        }
        set_meta(&transaction, "token", &response.token)?;
        set_meta(&transaction, "user", &id.to_string())?;
        set_meta(&transaction, "server", &self.transport.server())?;
        transaction.commit()?;
        Ok(id)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<T, SyncError> {
        self.call_sized(method, path, token, body).await.map(|(value, _)| value)
    }

    /// [`SyncEngine::call`], also giving the size of the answer in bytes.
    async fn call_sized<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> Result<(T, usize), SyncError> {
        exchange_json_sized(self.transport.as_ref(), method, path, token, body).await
    }

    fn token(&self) -> Result<String, SyncError> {
        meta(&self.database.lock(), "token")?.ok_or_else(|| SyncError::NotSignedIn {
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
        let token = self.token()?;
        let mut report = SyncReport::default();
        let selection: Option<BTreeSet<(String, ObjectId)>> = match &mode {
            SyncMode::Selected(objects) => Some(objects.iter().cloned().collect()),
            _ => None,
        };
        options.check()?;
        // The upload is made and stored before anything is sent, so a failure from here on
        // leaves it to be resent unchanged, under the same id.
        let started = self.database.clock.now();
        let pending = self.pending_upload(selection.as_ref())?;
        let upload_id = pending.as_ref().map(|r| r.upload_id.clone());
        self.follow_model(&token).await?;
        if let Some(request) = pending {
            self.upload(&token, request, options, &mut report).await?;
        }
        options.check()?;
        match &mode {
            SyncMode::All => {
                self.download(&token, options, &mut report).await?;
                self.database
                    .lock()
                    .execute("DELETE FROM ferry_meta WHERE key = 'full_sync_needed'", [])?;
            }
            SyncMode::Unsynchronized if !report.rejected.is_empty() => {
                self.refresh(&token, &report.rejected_objects(), &mut report).await?;
            }
            SyncMode::Unsynchronized => {}
            SyncMode::Selected(objects) => self.refresh(&token, objects, &mut report).await?,
        }
        let duration_ms = (self.database.clock.now().unix_micros() - started.unix_micros()) / 1000;
        let record = SyncRecord {
            device: device_name(&self.database.lock())?,
            mode: match mode {
                SyncMode::All => "all",
                SyncMode::Unsynchronized => "unsynchronized",
                SyncMode::Selected(_) => "selected",
            }
            .to_owned(),
            upload_id: upload_id.unwrap_or_default(),
            duration_ms,
            objects_up: report.uploaded as i64,
            objects_down: report.downloaded.values().sum::<usize>() as i64,
            errors: report.rejected.len() as i64,
        };
        let finished = self.database.clock.now().to_string();
        set_meta(&self.database.lock(), "last_sync", &format!("{finished} {}", record.mode))?;
        // The record is the operator's view of the sync, which is complete: a record the
        // network loses does not fail it.
        let body = serde_json::to_vec(&record).expect("records serialise");
        let _: Result<serde::de::IgnoredAny, _> =
            self.call("POST", "/v1/sync-report", Some(&token), &body).await;
        Ok(report)
    }

    /// Moves the device to the server's model when its version changed (the local schema is
    /// migrated and unsynchronised changes are kept), and marks a full sync as needed.
    async fn follow_model(&self, token: &str) -> Result<(), SyncError> {
        let server: ModelResponse = self.call("GET", "/v1/model", Some(token), b"").await?;
        check_protocol(&server)?;
        if server.version != self.database.model().version().to_string()
            && self.database.upgrade_model(&server.text)?
        {
            set_meta(&self.database.lock(), "full_sync_needed", "1")?;
        }
        Ok(())
    }

    /// True when a full sync is due: the device never completed one (a first start, or a new
    /// user), or the server's model changed since the last one. Asks the server for its model.
    pub async fn sync_needed(&self) -> Result<bool, SyncError> {
        let token = self.token()?;
        self.follow_model(&token).await?;
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

    /// The pending upload: the one stored by an earlier attempt, or a new one of every dirty
    /// object (of the selection's changed objects, when there is one).
    fn pending_upload(
        &self,
        selection: Option<&BTreeSet<(String, ObjectId)>>,
    ) -> Result<Option<UploadRequest>, SyncError> {
        let model = self.database.model();
        let connection = self.database.lock();
        if let Some(body) = meta(&connection, "pending_upload")? {
            let request = serde_json::from_str(&body)
                .map_err(|e| ClientError::Corrupt(format!("the pending upload: {e}")))?;
            return Ok(Some(request));
        }
        let mut statement = connection.prepare("SELECT entity, object_id, kind, members, base_revision FROM ferry_dirty ORDER BY entity, object_id")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        })?;
        let mut changes = Vec::new();
        for row in rows {
            let (entity_name, id, kind, members, base_revision) = row?;
            let entity = model.entity(&entity_name).ok_or_else(|| {
                ClientError::Corrupt(format!("dirty object of unknown entity `{entity_name}`"))
            })?;
            let id =
                id_from_blob(id).ok_or_else(|| ClientError::Corrupt("a dirty id".to_owned()))?;
            let kind = match kind.as_str() {
                "create" => ChangeKind::Create,
                "update" => ChangeKind::Update,
                _ => ChangeKind::Delete,
            };
            if let Some(selection) = selection
                && (kind == ChangeKind::Delete || !selection.contains(&(entity_name.clone(), id)))
            {
                continue;
            }
            let mut values = Members::new();
            if kind != ChangeKind::Delete {
                let object = stored_values(&connection, entity, id)?;
                for member in members.split(',').filter(|m| !m.is_empty()) {
                    let Some(found) = entity.member(member) else { continue };
                    values.insert(member.to_owned(), value::encode(&object[entity.slot(found).0]));
                }
            }
            changes.push(ObjectChange {
                entity: entity_name,
                id: id.to_string(),
                kind,
                base_revision,
                values,
            });
        }
        drop(statement);
        if changes.is_empty() {
            return Ok(None);
        }
        self.check_integrity(&connection, &changes, selection.is_some())?;
        let upload_id = effects::random_token();
        let request = UploadRequest { upload_id, device: device_name(&connection)?, changes };
        // Stored before it is sent: every retry sends exactly this request under this id.
        set_meta(
            &connection,
            "pending_upload",
            &serde_json::to_string(&request).expect("requests serialise"),
        )?;
        Ok(Some(request))
    }

    /// Every reference of an uploaded object must point at an object committed on the device
    /// (all of which a full upload sends) or, for a selection, one in the selection or known to
    /// the server (on the device and not created since the last upload).
    fn check_integrity(
        &self,
        connection: &rusqlite::Connection,
        changes: &[ObjectChange],
        selected: bool,
    ) -> Result<(), SyncError> {
        let model = self.database.model();
        let sent: BTreeSet<(&str, &str)> =
            changes.iter().map(|c| (c.entity.as_str(), c.id.as_str())).collect();
        for change in changes.iter().filter(|c| c.kind != ChangeKind::Delete) {
            let entity = model.entity(&change.entity).expect("checked when read");
            for association in &entity.associations {
                let Some(json) = change.values.get(&association.name) else { continue };
                let Ok(Value::Reference(target)) = value::decode(json, None) else { continue };
                let target_entity =
                    model.entity(association.target.as_str()).expect("validated model");
                if target_entity.kind == EntityKind::System {
                    continue; // users are known to the server
                }
                let target_text = target.to_string();
                if sent.contains(&(target_entity.name.as_str(), target_text.as_str())) {
                    continue;
                }
                let found: i64 = connection.query_row(
                    &format!("SELECT count(*) FROM {} WHERE id = ?1", table_name(target_entity)),
                    [id_param(target)],
                    |row| row.get(0),
                )?;
                let created_here: i64 = connection.query_row(
                    "SELECT count(*) FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2 AND kind = 'create'",
                    rusqlite::params![target_entity.name.as_str(), id_param(target)],
                    |row| row.get(0),
                )?;
                let id = ObjectId::parse(&change.id).expect("written by this engine");
                let (entity, association) = (change.entity.clone(), association.name.clone());
                if found == 0 && !Removed::contains(connection, &target_entity.name, target)? {
                    return Err(SyncError::Integrity { entity, id, association, target });
                }
                if selected && created_here > 0 {
                    return Err(SyncError::SelectionIntegrity { entity, id, association, target });
                }
            }
        }
        Ok(())
    }

    /// Sends the pending upload and applies the answer in one local transaction.
    async fn upload(
        &self,
        token: &str,
        request: UploadRequest,
        options: &SyncOptions,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let model = self.database.model();
        let body = serde_json::to_vec(&request).expect("requests serialise");
        let total = request.changes.len();
        let progress = |objects_done, bytes_done| Progress {
            phase: Phase::Upload,
            entity: None,
            objects_done,
            objects_total: Some(total),
            bytes_done,
            bytes_total: Some(body.len()),
        };
        options.report(progress(0, 0));
        report.files_uploaded += self.send_contents(token, &request).await?;
        options.check()?;
        let response: UploadResponse = self.call("POST", "/v1/upload", Some(token), &body).await?;
        check_outcomes(&request, &response)?;
        options.report(progress(total, body.len()));
        let mut connection = self.database.lock();
        let transaction = connection.transaction()?;
        for (change, outcome) in request.changes.iter().zip(&response.outcomes) {
            let entity = model.entity(&change.entity).expect("checked when read");
            let id = ObjectId::parse(&change.id).expect("written by this engine");
            let sent: BTreeSet<&str> = change.values.keys().map(String::as_str).collect();
            let still_dirty = forget_sent(&transaction, entity, id, &sent)?;
            match &outcome.result {
                OutcomeResult::Applied { revision, values } => {
                    report.uploaded += 1;
                    write_fresh(&transaction, entity, id, *revision, values, &still_dirty)?;
                }
                OutcomeResult::Deleted => report.uploaded += 1,
                OutcomeResult::Failed { reason, .. } => {
                    report.rejected.push((change.entity.clone(), id, reason.clone()))
                }
            }
        }
        transaction.execute("DELETE FROM ferry_meta WHERE key = 'pending_upload'", [])?;
        transaction.commit()?;
        Ok(())
    }

    /// Sends the contents the upload references and the server lacks, one request per file,
    /// before the upload itself. A failed send is retried once; a second failure ends the sync
    /// before the upload, with every local change kept. Gives how many contents were sent.
    async fn send_contents(
        &self,
        token: &str,
        request: &UploadRequest,
    ) -> Result<usize, SyncError> {
        let model = self.database.model();
        let mut named: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        for change in &request.changes {
            let file = model.entity(&change.entity).is_some_and(|e| e.kind == EntityKind::File);
            if let (true, Some(hash)) = (file, named_hash(&change.values)) {
                named.entry(hash).or_insert((&change.entity, &change.id));
            }
        }
        let hashes: Vec<&str> = named.keys().copied().collect();
        let mut sent = 0;
        for chunk in hashes.chunks(HASHES_PER_CHECK) {
            let ask =
                FilesMissingRequest { hashes: chunk.iter().map(|h| (*h).to_owned()).collect() };
            let body = serde_json::to_vec(&ask).expect("requests serialise");
            let answer: FilesMissingResponse =
                self.call("POST", "/v1/files/missing", Some(token), &body).await?;
            for hash in &answer.missing {
                let Some((entity, id)) = named.get(hash.as_str()) else { continue };
                let path = self.database.files.path(hash);
                if !path.is_file() {
                    let id = ObjectId::parse(id).expect("written by this engine");
                    return Err(
                        ClientError::FileMissing { entity: (*entity).to_owned(), id }.into()
                    );
                }
                self.send_content(token, hash, &path, (entity, id)).await?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// One content, tried at most [`FILE_SEND_ATTEMPTS`] times.
    async fn send_content(
        &self,
        token: &str,
        hash: &str,
        path: &std::path::Path,
        (entity, id): (&str, &str),
    ) -> Result<(), SyncError> {
        let target = format!("/v1/files/{hash}");
        for attempt in 1..=FILE_SEND_ATTEMPTS {
            let sent = self
                .transport
                .exchange(
                    Request {
                        method: "PUT",
                        path: &target,
                        token: Some(token),
                        payload: Payload::File(path),
                    },
                    None,
                )
                .await;
            // A gateway that cannot reach the server fails the attempt as the network would.
            let failed = match sent {
                Ok(response) if response.status == 200 => return Ok(()),
                Ok(response) if GATEWAY_FAILURES.contains(&response.status) => {
                    format!("the server's gateway answered {}", response.status)
                }
                Ok(response) => return Err(refusal(&response)),
                Err(SyncError::Unreachable { reason, .. }) => reason,
                Err(other) => return Err(other),
            };
            if attempt == FILE_SEND_ATTEMPTS {
                return Err(SyncError::FileUpload {
                    entity: entity.to_owned(),
                    id: id.to_owned(),
                    reason: failed,
                });
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Brings the contents of downloaded file objects the device lacks into its file store,
    /// streamed. A content that changed on the server since the page was read (409), or whose
    /// object the user can no longer read (404), is left for the next sync, which brings the
    /// object again. Contents fetched by a download that then fails stay in the store, unseen
    /// until an object names them: the next attempt does not fetch them again.
    async fn fetch_contents(
        &self,
        token: &str,
        entity: &Entity,
        objects: &[DownloadedObject],
    ) -> Result<usize, SyncError> {
        if entity.kind != EntityKind::File {
            return Ok(0);
        }
        let mut fetched = 0;
        for object in objects {
            let Some(hash) = named_hash(&object.values) else { continue };
            if self.database.files.holds(hash) {
                continue;
            }
            let target = &format!("/v1/files/{}/{}?hash={hash}", entity.name, object.id);
            let (response, incoming) = with_retries(|| async move {
                let mut incoming = self.database.files.incoming().map_err(ClientError::Files)?;
                let mut sink = |bytes: &[u8]| incoming.write(bytes);
                let request = Request {
                    method: "GET",
                    path: target,
                    token: Some(token),
                    payload: Payload::Bytes(b""),
                };
                let response = self.transport.exchange(request, Some(&mut sink)).await?;
                Ok((response, incoming))
            })
            .await?;
            match response.status {
                200 => {
                    incoming.finish(&self.database.files, Some(hash))?;
                    fetched += 1;
                }
                404 | 409 => {}
                _ => return Err(refusal(&response)),
            }
        }
        Ok(fetched)
    }

    /// The fresh server state of the selected objects, applied in one local transaction.
    async fn refresh(
        &self,
        token: &str,
        objects: &[(String, ObjectId)],
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let mut fetched = 0;
        self.streamed(report, async |steps| {
            fetched = self.send_fresh_state(token, objects, steps).await?;
            Ok(())
        })
        .await?;
        report.files_downloaded += fetched;
        Ok(())
    }

    /// Sends the writer the server's state of these objects (removals for those the user can
    /// no longer read, or that the server does not hold).
    async fn send_fresh_state(
        &self,
        token: &str,
        objects: &[(String, ObjectId)],
        steps: &Sender<Step>,
    ) -> Result<usize, SyncError> {
        let model = self.database.model();
        let mut fetched = 0;
        let mut by_entity: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (entity, id) in objects {
            model
                .entity(entity)
                .ok_or_else(|| ClientError::UnknownEntity { entity: entity.clone() })?;
            by_entity.entry(entity.as_str()).or_default().push(id.to_string());
        }
        for (entity, ids) in by_entity {
            let response = self.fetch_objects(token, entity, ids).await?;
            let described = model.entity(entity).expect("checked above");
            fetched += self.fetch_contents(token, described, &response.objects).await?;
            send(steps, Step::Begin { entity: entity.to_owned(), full: false }).await?;
            let page = Step::Page {
                objects: response.objects,
                removed: response.removed,
                unchanged: Vec::new(),
            };
            send(steps, page).await?;
            send(steps, Step::End { checkpoint: None }).await?;
        }
        Ok(fetched)
    }

    async fn fetch_objects(
        &self,
        token: &str,
        entity: &str,
        ids: Vec<String>,
    ) -> Result<ObjectsResponse, SyncError> {
        let body = serde_json::to_vec(&ObjectsRequest { ids }).expect("requests serialise");
        self.call("POST", &format!("/v1/download/{entity}/objects"), Some(token), &body).await
    }

    /// Runs a download: `produce` sends its [`Step`]s to a writer on a blocking thread, which
    /// writes them as they come in one local transaction; it commits when `produce` succeeds
    /// and rolls everything back when it fails. What was written goes into the report.
    async fn streamed(
        &self,
        report: &mut SyncReport,
        produce: impl AsyncFnOnce(&Sender<Step>) -> Result<(), SyncError>,
    ) -> Result<(), SyncError> {
        let (steps, received) = tokio::sync::mpsc::channel(PAGES_IN_FLIGHT);
        let database = Arc::clone(&self.database);
        let model = database.model();
        let applier =
            tokio::task::spawn_blocking(move || apply_download(&database, &model, received));
        let sent = match produce(&steps).await {
            Ok(()) => send(&steps, Step::Commit).await,
            Err(error) => Err(error),
        };
        drop(steps);
        let applied = finish_applying(applier, sent).await?;
        report.downloaded.extend(applied.downloaded);
        report.removed.extend(applied.removed);
        Ok(())
    }

    /// Every entity per its download behaviour, written page by page as the pages arrive, all
    /// in one local transaction that commits once the last page is in.
    async fn download(
        &self,
        token: &str,
        options: &SyncOptions,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let model = self.database.model();
        let rejected = report.rejected_objects();
        let mut fetched = 0;
        self.streamed(report, async |steps| {
            for entity in model.entities().filter(|e| e.kind != EntityKind::System) {
                fetched += self.download_entity(token, entity, options, steps).await?;
            }
            // Objects the server rejected may hold values it does not: bring them back to the
            // server's state (a rejected new object leaves the device).
            fetched += self.send_fresh_state(token, &rejected, steps).await?;
            // A cancellation up to here rolls everything back; past it the download commits.
            options.check()
        })
        .await?;
        report.files_downloaded += fetched;
        Ok(())
    }

    /// One entity's pages, from its checkpoint. When the server starts over with a full download
    /// and the device holds objects of the entity, the pages are an index of ids and revisions:
    /// only objects the device lacks or holds in another revision are fetched.
    async fn download_entity(
        &self,
        token: &str,
        entity: &Entity,
        options: &SyncOptions,
        steps: &Sender<Step>,
    ) -> Result<usize, SyncError> {
        let mut fetched = 0;
        let (mut after, index) = {
            let connection = self.database.lock();
            let after = Checkpoints::read(&connection, &entity.name)?;
            (after, holds_objects(&connection, entity)?)
        };
        let mut begun = false;
        let mut progress = Progress {
            phase: Phase::Download,
            entity: Some(entity.name.to_string()),
            objects_done: 0,
            objects_total: None,
            bytes_done: 0,
            bytes_total: None,
        };
        loop {
            options.check()?;
            // The first page also brings the count the progress is reported against.
            let mut query = format!("/v1/download/{}?index={index}&count={}", entity.name, !begun);
            if let Some(after) = &after {
                query.push_str(&format!("&after={after}"));
            }
            let (page, size): (DownloadPage, usize) =
                self.call_sized("GET", &query, Some(token), b"").await?;
            progress.advance(&page, size);
            options.report(progress.clone());
            if !begun {
                let full = page.mode == DownloadMode::Full;
                send(steps, Step::Begin { entity: entity.name.to_string(), full }).await?;
                begun = true;
            }
            let more = page.more;
            after = Some(page.checkpoint);
            let step = if page.index {
                self.reconcile(token, entity, page.objects).await?
            } else {
                Step::Page { objects: page.objects, removed: page.removed, unchanged: Vec::new() }
            };
            if let Step::Page { objects, .. } = &step {
                fetched += self.fetch_contents(token, entity, objects).await?;
            }
            send(steps, step).await?;
            if !more {
                break;
            }
        }
        send(steps, Step::End { checkpoint: after }).await?;
        Ok(fetched)
    }

    /// Compares an index page with the revisions on the device; fetches the objects that differ.
    async fn reconcile(
        &self,
        token: &str,
        entity: &Entity,
        index: Vec<DownloadedObject>,
    ) -> Result<Step, SyncError> {
        let held = local_revisions(&self.database.lock(), entity, &index)?;
        let mut unchanged = Vec::new();
        let mut wanted = Vec::new();
        for entry in index {
            let Some(id) = ObjectId::parse(&entry.id) else { continue };
            if held.get(&id) == Some(&entry.revision) {
                unchanged.push(id);
            } else {
                wanted.push(entry.id);
            }
        }
        let (mut objects, mut removed) = (Vec::new(), Vec::new());
        if !wanted.is_empty() {
            let response = self.fetch_objects(token, entity.name.as_str(), wanted).await?;
            objects = response.objects;
            removed = response.removed;
        }
        Ok(Step::Page { objects, removed, unchanged })
    }
}

/// An upload's answer has one outcome per change, of the same object, in the same order; any
/// other answer is refused before anything of it is applied (every change stays for the next
/// sync).
fn check_outcomes(request: &UploadRequest, response: &UploadResponse) -> Result<(), SyncError> {
    let matching =
        response.outcomes.len() == request.changes.len()
            && request.changes.iter().zip(&response.outcomes).all(|(change, outcome)| {
                change.entity == outcome.entity && change.id == outcome.id
            });
    if matching {
        return Ok(());
    }
    Err(SyncError::Server {
        status: 200,
        code: "bad-response".to_owned(),
        message: format!(
            "the upload's answer has {} outcomes for its {} changes, or not for the same objects; nothing of it was applied",
            response.outcomes.len(),
            request.changes.len()
        ),
    })
}

/// Refuses a server that speaks another protocol version than this device.
fn check_protocol(model: &ModelResponse) -> Result<(), SyncError> {
    if model.protocol_version != ferry_protocol::PROTOCOL_VERSION {
        return Err(SyncError::Protocol {
            server: model.protocol_version,
            device: ferry_protocol::PROTOCOL_VERSION,
        });
    }
    Ok(())
}

/// Sends a sign-in and reads its answer.
async fn request_sign_in(
    transport: &dyn Transport,
    user: &str,
    password: &str,
) -> Result<SignInResponse, SyncError> {
    let body =
        serde_json::to_vec(&SignInRequest { user: user.to_owned(), password: password.to_owned() })
            .expect("requests serialise");
    exchange_json(transport, "POST", "/v1/sign-in", None, &body).await
}

/// One JSON request through `transport`, retried after network failures, and its answer.
async fn exchange_json<T: serde::de::DeserializeOwned>(
    transport: &dyn Transport,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<T, SyncError> {
    exchange_json_sized(transport, method, path, token, body).await.map(|(value, _)| value)
}

/// [`exchange_json`], also giving the size of the answer in bytes.
async fn exchange_json_sized<T: serde::de::DeserializeOwned>(
    transport: &dyn Transport,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<(T, usize), SyncError> {
    let response = with_retries(|| async move {
        let request = Request { method, path, token, payload: Payload::Bytes(body) };
        transport.exchange(request, None).await
    })
    .await?;
    if response.status == 204 {
        return serde_json::from_slice(b"null").map(|value| (value, 0)).map_err(|e| {
            SyncError::Server {
                status: 204,
                code: "bad-response".to_owned(),
                message: format!("an empty answer where this device expects one: {e}"),
            }
        });
    }
    if response.status == 200 {
        let size = response.body.len();
        return serde_json::from_slice(&response.body).map(|value| (value, size)).map_err(|e| {
            SyncError::Server {
                status: 200,
                code: "bad-response".to_owned(),
                message: format!("the answer is not what this device expects: {e}"),
            }
        });
    }
    Err(refusal(&response))
}

/// Answers of a gateway in front of the server that says the server could not be reached
/// (bad gateway, unavailable, gateway timeout): for a file's content, a failed attempt.
const GATEWAY_FAILURES: [u16; 3] = [502, 503, 504];

/// Runs `attempt` until it succeeds or fails other than by the network, at most
/// [`SEND_ATTEMPTS_MAX`] times, waiting [`RETRY_DELAY_MS`] before the first retry and twice as
/// long before each further one.
async fn with_retries<T, F: Future<Output = Result<T, SyncError>>>(
    mut attempt: impl FnMut() -> F,
) -> Result<T, SyncError> {
    let mut tried = 0;
    loop {
        match attempt().await {
            Err(SyncError::Unreachable { .. }) if tried + 1 < SEND_ATTEMPTS_MAX => {
                tokio::time::sleep(std::time::Duration::from_millis(RETRY_DELAY_MS << tried)).await;
                tried += 1;
            }
            other => return other,
        }
    }
}

/// The error an answer other than 200 or 204 carries.
fn refusal(response: &Response) -> SyncError {
    let error: ErrorBody = serde_json::from_slice(&response.body).unwrap_or(ErrorBody {
        code: "unknown".to_owned(),
        message: String::from_utf8_lossy(&response.body).into_owned(),
        details: serde_json::Value::Null,
    });
    if response.status == 401 {
        return SyncError::NotSignedIn { message: error.message };
    }
    SyncError::Server { status: response.status, code: error.code, message: error.message }
}

/// The writer of a download, running on a blocking thread.
type Applier = tokio::task::JoinHandle<Result<Option<Applied>, SyncError>>;

/// Hands a step to the writer; fails when the writer stopped (its own error says why).
async fn send(steps: &Sender<Step>, step: Step) -> Result<(), SyncError> {
    steps.send(step).await.map_err(|_| {
        SyncError::Local(ClientError::Corrupt("the download's writer stopped".to_owned()))
    })
}

/// Waits for the writer. Its own failure comes first (it is why sending stopped); then the
/// sending side's (network, cancellation), for which the writer rolled everything back.
async fn finish_applying(
    applier: Applier,
    sent: Result<(), SyncError>,
) -> Result<Applied, SyncError> {
    let applied = applier.await.map_err(|e| {
        SyncError::Local(ClientError::Corrupt(format!("the download's writer failed: {e}")))
    })?;
    match (applied?, sent) {
        (_, Err(error)) => Err(error),
        (Some(applied), Ok(())) => Ok(applied),
        (None, Ok(())) => unreachable!("a download that sent Commit is committed or failed"),
    }
}

/// The revisions the device holds of the objects in an index page.
fn local_revisions(
    connection: &rusqlite::Connection,
    entity: &Entity,
    index: &[DownloadedObject],
) -> Result<BTreeMap<ObjectId, i64>, SyncError> {
    let mut held = BTreeMap::new();
    let ids: Vec<ObjectId> = index.iter().filter_map(|o| ObjectId::parse(&o.id)).collect();
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let marks = (1..=chunk.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let mut statement = connection.prepare_cached(&format!(
            "SELECT id, _rev FROM {} WHERE id IN ({marks})",
            table_name(entity)
        ))?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(chunk.iter().map(|id| id_param(*id))), |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
            })?;
        for row in rows {
            let (bytes, revision) = row?;
            if let Some(id) = id_from_blob(bytes) {
                held.insert(id, revision);
            }
        }
    }
    Ok(held)
}

/// Ids looked up in one local query.
const IDS_PER_QUERY: usize = 500;

fn device_name(connection: &rusqlite::Connection) -> Result<String, SyncError> {
    if let Some(name) = meta(connection, "device")? {
        return Ok(name);
    }
    let name = effects::random_token();
    set_meta(connection, "device", &name)?;
    Ok(name)
}

fn stored_values(
    connection: &rusqlite::Connection,
    entity: &Entity,
    id: ObjectId,
) -> Result<Vec<Value>, SyncError> {
    let sql = format!(
        "SELECT {} FROM {} \"t0\" WHERE \"t0\".id = ?1",
        ferry_sql::select_columns(entity, "\"t0\"", Dialect::Sqlite),
        table_name(entity)
    );
    let width = entity.member_count() + 1;
    let row: Vec<ferry_sql::Param> = connection.query_row(&sql, [id_param(id)], |row| {
        (0..width)
            .map(|i| row.get::<_, rusqlite::types::Value>(i).map(crate::database::from_sql))
            .collect()
    })?;
    let object = ferry_sql::read_object(entity, &row, Dialect::Sqlite)
        .ok_or_else(|| ClientError::Corrupt(format!("a row of `{}`", entity.name)))?;
    Ok(object.values)
}

/// Removes what was sent from the object's dirty record; returns the members still dirty
/// (changed and committed again while the upload was under way).
fn forget_sent(
    transaction: &rusqlite::Transaction<'_>,
    entity: &Entity,
    id: ObjectId,
    sent: &BTreeSet<&str>,
) -> Result<BTreeSet<String>, SyncError> {
    let row = crate::object::dirty_record(transaction, entity, id)?;
    let Some((kind, members)) = row else { return Ok(BTreeSet::new()) };
    let remaining: BTreeSet<String> = members
        .split(',')
        .filter(|m| !m.is_empty() && !sent.contains(m))
        .map(str::to_owned)
        .collect();
    if ferry_model::planted::active("keep-dirty-after-upload") {
        return Ok(BTreeSet::new());
    }
    if remaining.is_empty() || kind == "delete" {
        transaction.execute(
            "DELETE FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2",
            rusqlite::params![entity.name.as_str(), id_param(id)],
        )?;
        return Ok(BTreeSet::new());
    }
    let joined = remaining.iter().map(String::as_str).collect::<Vec<_>>().join(",");
    transaction.execute(
        "UPDATE ferry_dirty SET kind = 'update', members = ?3 WHERE entity = ?1 AND object_id = ?2",
        rusqlite::params![entity.name.as_str(), id_param(id), joined],
    )?;
    Ok(remaining)
}

/// Writes an object's fresh server state, keeping members that are dirty again on the device.
fn write_fresh(
    transaction: &rusqlite::Transaction<'_>,
    entity: &Entity,
    id: ObjectId,
    revision: i64,
    values: &Members,
    keep: &BTreeSet<String>,
) -> Result<(), SyncError> {
    let mut slots = Vec::new();
    let mut params = Vec::new();
    for (name, json) in values {
        if keep.contains(name) {
            continue;
        }
        let Some(member) = entity.member(name) else { continue };
        let attribute_type = entity.attribute_type_of(member);
        let Ok(decoded) = value::decode(json, attribute_type) else { continue };
        slots.push(entity.slot(member));
        params.push(to_sql(&param(&decoded, Dialect::Sqlite)));
    }
    let mut assignments: Vec<String> = slots
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{} = ?{}", ferry_sql::column_name(entity, *s), i + 1))
        .collect();
    assignments.push(format!("_rev = ?{}", slots.len() + 1));
    params.push(rusqlite::types::Value::Integer(revision));
    params.push(id_param(id));
    let sql = format!(
        "UPDATE {} SET {} WHERE id = ?{}",
        table_name(entity),
        assignments.join(", "),
        slots.len() + 2
    );
    transaction.execute(&sql, rusqlite::params_from_iter(params))?;
    Ok(())
}
