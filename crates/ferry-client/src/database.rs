//! The device database: one SQLite file in WAL mode with `synchronous=FULL`, so a committed
//! change survives a power loss. It holds the model's tables (device side), the record of
//! what is dirty, the checkpoints, and the model itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use ferry_model::{EntityName, Model, ObjectId, Value};
use ferry_sql::{Dialect, Param, Side, create_schema, plan_migration};
use rusqlite::OptionalExtension as _;
use rusqlite::types::Value as SqlValue;

use crate::effects::{Clock, IdSource, RandomIds, SystemClock};
use crate::{ClientError, DeviceKey};

/// How long a write waits for the database's write lock, in milliseconds: an app commit made
/// while a download is being applied waits for it to finish.
pub const LOCK_WAIT_MS: u64 = 60_000;

/// What a device holds, as [`Database::status`] tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceStatus {
    /// Objects with committed changes not uploaded yet.
    pub pending_changes: usize,
    /// Who signed in last.
    pub user: Option<ObjectId>,
    /// Their roles, as the server answered at the sign-in or the last refresh.
    pub roles: Vec<String>,
    /// The server they signed in to.
    pub server: Option<String>,
    /// The version of the model the database holds.
    pub model_version: String,
    /// When the last sync completed, and its mode (`all`, `unsynchronized` or `selected`).
    pub last_sync: Option<(ferry_model::Timestamp, String)>,
    /// Why the next sync must be a full one, when it must (as far as the device knows: a model
    /// the server changed since is found at the next contact).
    pub full_sync_due: Option<FullSyncDue>,
}

pub use ferry_sync::FullSyncDue;

/// A device database. Cheap to share between threads (`&Database` is enough for every call).
pub struct Database {
    path: PathBuf,
    /// The key of an encrypted database, for the connections opened after the first.
    key: Option<DeviceKey>,
    pub(crate) connection: Mutex<rusqlite::Connection>,
    model: RwLock<Arc<Model>>,
    pub(crate) files: crate::files::FileStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<dyn IdSource>,
    /// Each write's entities, for live mode and watched queries.
    changes: tokio::sync::broadcast::Sender<Change>,
    gate: Arc<WriteGate>,
}

/// Turns between the app's writes and a download's transaction. A download writes on a
/// connection of its own while its sync goes on reading through the shared one; an app write
/// that took the shared connection and then waited for the download's write lock would stop
/// that sync, and so the download, until the wait ran out. So an app write waits for the
/// download to end before it takes the connection, and a download begins between writes.
#[derive(Default)]
struct WriteGate {
    state: Mutex<GateState>,
    changed: std::sync::Condvar,
}

#[derive(Default)]
struct GateState {
    downloading: bool,
    writing: usize,
}

/// A write's or a download's turn; the next may go once it is dropped.
pub(crate) struct Turn {
    gate: Arc<WriteGate>,
    download: bool,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut state = self.gate.state.lock().unwrap_or_else(|p| p.into_inner());
        match self.download {
            true => state.downloading = false,
            false => state.writing = state.writing.saturating_sub(1),
        }
        self.gate.changed.notify_all();
    }
}

/// Changes a watcher may fall behind by before it is told that anything may have changed.
pub const CHANGES_QUEUED_MAX: usize = 256;

/// The most object ids a change names per entity, so a watch can re-read only those objects;
/// a write of more says only that the entity changed (and watches read it again in full).
pub const CHANGE_IDS_MAX: usize = 10_000;

/// Which objects of one entity a write touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Touched {
    /// These (at most [`CHANGE_IDS_MAX`]).
    These(Vec<ObjectId>),
    /// Some, not named: more than [`CHANGE_IDS_MAX`], or a write that does not know which.
    Some,
}

impl Touched {
    pub(crate) fn add(&mut self, id: ObjectId) {
        if let Touched::These(ids) = self {
            if ids.len() < CHANGE_IDS_MAX {
                ids.push(id);
            } else {
                *self = Touched::Some;
            }
        }
    }
}

impl Touched {
    /// Adds what another write of the same entity touched.
    pub(crate) fn merge(&mut self, other: Touched) {
        match other {
            Touched::These(ids) => ids.into_iter().for_each(|id| self.add(id)),
            Touched::Some => *self = Touched::Some,
        }
    }
}

impl Default for Touched {
    fn default() -> Touched {
        Touched::These(Vec::new())
    }
}

/// What one committed write on the device changed.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    /// The entities whose objects it wrote or removed, and which objects.
    pub(crate) entities: Arc<BTreeMap<String, Touched>>,
    /// A commit of the app's, which waits for upload (not a download or a sync's answer).
    pub(crate) local: bool,
}

impl Database {
    /// Opens (or creates) the database at `path` for the model in `model_text`.
    /// A database made for an earlier version of the model is migrated when the change is
    /// additive, keeping unsynchronised changes; a breaking change is refused.
    pub fn open(path: impl AsRef<Path>, model_text: &str) -> Result<Database, ClientError> {
        Self::open_with(path, model_text, Arc::new(SystemClock), Arc::new(RandomIds))
    }

    /// [`Database::open`] for a database encrypted with `key` (made encrypted when new): its
    /// pages are unreadable without the key, and it opens with no other. See [`DeviceKey`].
    pub fn open_encrypted(
        path: impl AsRef<Path>,
        model_text: &str,
        key: &DeviceKey,
    ) -> Result<Database, ClientError> {
        Self::open_keyed(
            path.as_ref(),
            model_text,
            Some(key),
            Arc::new(SystemClock),
            Arc::new(RandomIds),
        )
    }

    /// [`Database::open`] with a given clock and id source (for tests and simulations).
    pub fn open_with(
        path: impl AsRef<Path>,
        model_text: &str,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
    ) -> Result<Database, ClientError> {
        Self::open_keyed(path.as_ref(), model_text, None, clock, ids)
    }

    fn open_keyed(
        path: &Path,
        model_text: &str,
        key: Option<&DeviceKey>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdSource>,
    ) -> Result<Database, ClientError> {
        let model = Model::parse(model_text).map_err(ClientError::Model)?;
        ferry_constraint::check_model(&model).map_err(ClientError::Model)?;
        let path = path.to_path_buf();
        let mut connection = connect(&path, key)?;
        let files = crate::files::FileStore::open(&path, key).map_err(ClientError::Files)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        let transaction = connection.transaction()?;
        for statement in ferry_sql::DEVICE_TABLES {
            transaction.execute(statement, [])?;
        }
        let statements = match meta(&transaction, Meta::Model)? {
            None => create_schema(&model, Dialect::Sqlite, Side::Device),
            Some(text) => {
                let old = Model::parse(&text)
                    .map_err(|_| ClientError::Corrupt("the stored model is invalid".to_owned()))?;
                let plan = plan_migration(&old, &model);
                if plan.is_breaking() {
                    return Err(ClientError::BreakingModel { plan: plan.to_string() });
                }
                plan.statements(&model, Dialect::Sqlite, Side::Device)
            }
        };
        install_model(&transaction, &statements, model_text)?;
        transaction.commit()?;
        Ok(Database {
            path,
            key: key.cloned(),
            connection: Mutex::new(connection),
            model: RwLock::new(Arc::new(model)),
            files,
            clock,
            ids,
            changes: tokio::sync::broadcast::channel(CHANGES_QUEUED_MAX).0,
            gate: Arc::default(),
        })
    }

    /// Waits (at most [`LOCK_WAIT_MS`]) until `ready`, then updates the gate with `take`.
    fn turn(&self, download: bool) -> Turn {
        let gate = &self.gate;
        let state = gate.state.lock().unwrap_or_else(|p| p.into_inner());
        let wait = std::time::Duration::from_millis(LOCK_WAIT_MS);
        let blocked = |s: &mut GateState| s.downloading || (download && s.writing > 0);
        let (mut state, _) = gate
            .changed
            .wait_timeout_while(state, wait, blocked)
            .unwrap_or_else(|p| p.into_inner());
        match download {
            true => state.downloading = true,
            false => state.writing += 1,
        }
        Turn { gate: Arc::clone(gate), download }
    }

    /// The turn of an app's write: after any download under way.
    pub(crate) fn write_turn(&self) -> Turn {
        self.turn(false)
    }

    /// The turn of a download's transaction: after the app's writes under way.
    pub(crate) fn download_turn(&self) -> Turn {
        self.turn(true)
    }

    /// Tells watchers and live mode that a committed write changed objects of these entities,
    /// not saying which.
    pub(crate) fn changed<'e>(&self, entities: impl IntoIterator<Item = &'e str>, local: bool) {
        let entities = entities.into_iter().map(|e| (e.to_owned(), Touched::Some)).collect();
        self.tell(entities, local);
    }

    /// Tells watchers and live mode that a committed write changed these objects.
    pub(crate) fn changed_objects<'e>(
        &self,
        objects: impl IntoIterator<Item = (&'e str, ObjectId)>,
        local: bool,
    ) {
        let mut entities: BTreeMap<String, Touched> = BTreeMap::new();
        for (entity, id) in objects {
            entities.entry(entity.to_owned()).or_default().add(id);
        }
        self.tell(entities, local);
    }

    /// Tells watchers and live mode of a committed write.
    pub(crate) fn tell(&self, entities: BTreeMap<String, Touched>, local: bool) {
        if !entities.is_empty() {
            let _ = self.changes.send(Change { entities: Arc::new(entities), local });
        }
    }

    /// Every write's change from now on.
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// Opens a database made before, for the model it holds (the last one a sync brought).
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Database, ClientError> {
        Database::open_existing_keyed(path.as_ref(), None)
    }

    /// [`Database::open_existing`] for a database encrypted with `key` (or, with `None`, one
    /// that is not encrypted).
    pub fn open_existing_keyed(
        path: &Path,
        key: Option<&DeviceKey>,
    ) -> Result<Database, ClientError> {
        let missing = || ClientError::NoDatabase { path: path.display().to_string() };
        if !path.is_file() {
            return Err(missing());
        }
        let model_text = meta(&connect(path, key)?, Meta::Model).map_err(|_| missing())?;
        let model_text = model_text.ok_or_else(missing)?;
        Self::open_keyed(path, &model_text, key, Arc::new(SystemClock), Arc::new(RandomIds))
    }

    /// What the device holds: its pending changes, who is signed in and where, the model, and
    /// its last completed sync.
    pub fn status(&self) -> Result<DeviceStatus, ClientError> {
        let connection = self.lock();
        let meta = |key: Meta| meta(&connection, key);
        let pending: i64 =
            connection.query_row("SELECT count(*) FROM ferry_dirty", [], |row| row.get(0))?;
        let last_sync = meta(Meta::LastSync)?.and_then(|text| {
            let (at, mode) = text.split_once(' ')?;
            Some((ferry_model::Timestamp::parse(at)?, mode.to_owned()))
        });
        let model_changed = meta(Meta::FullSyncNeeded)?.is_some();
        let full_sync_due =
            ferry_sync::full_sync_due(model_changed, Checkpoints::any(&connection)?);
        Ok(DeviceStatus {
            pending_changes: pending as usize,
            user: meta(Meta::User)?.and_then(|text| ObjectId::parse(&text)),
            roles: meta(Meta::Roles)?
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default(),
            server: meta(Meta::Server)?,
            model_version: self.model().version().to_string(),
            last_sync,
            full_sync_due,
        })
    }

    /// The entity of the object `id` when its deletion waits on this device for the next
    /// upload (it is no longer in the entity's table; a selected sync cannot send it).
    ///
    /// ```
    /// # use ferry_client::{Database, Deletion};
    /// # let path = std::env::temp_dir().join(format!("ferry-doc-deleted-{}.db", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let db = Database::open(&path, ferry_model::samples::FIELD_SERVICE)?;
    /// let mut site = db.create("Field.Site")?;
    /// db.set(&mut site, "Name", ferry_model::Value::String("Depot".into()))?;
    /// db.commit(&mut [&mut site])?;
    /// assert_eq!(db.deletion_pending(site.id())?, None);
    /// // Never uploaded: deleting it leaves nothing to tell the server.
    /// assert_eq!(db.delete(&mut site)?, Deletion::Removed);
    /// assert_eq!(db.deletion_pending(site.id())?, None);
    /// # Ok::<(), ferry_client::ClientError>(())
    /// ```
    pub fn deletion_pending(&self, id: ObjectId) -> Result<Option<String>, ClientError> {
        let entity = self
            .lock()
            .query_row(
                "SELECT entity FROM ferry_dirty WHERE object_id = ?1 AND kind = 'delete'",
                [id_param(id)],
                |row| row.get(0),
            )
            .optional()?;
        Ok(entity)
    }

    /// The file whose lock marks a sync under way on this database, across processes.
    pub(crate) fn sync_lock_path(&self) -> PathBuf {
        let mut path = self.path.as_os_str().to_owned();
        path.push(".sync-lock");
        PathBuf::from(path)
    }

    /// The model this database holds now.
    pub fn model(&self) -> Arc<Model> {
        Arc::clone(&self.model.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Moves the database to a newer model (as a sync does when the server's model changed):
    /// the local schema is migrated and unsynchronised changes are kept. Returns whether the
    /// model changed; a breaking change is refused and nothing changes.
    pub fn upgrade_model(&self, model_text: &str) -> Result<bool, ClientError> {
        let model = Model::parse(model_text).map_err(ClientError::Model)?;
        ferry_constraint::check_model(&model).map_err(ClientError::Model)?;
        let current = self.model();
        if current.version() == model.version() {
            return Ok(false);
        }
        let plan = plan_migration(&current, &model);
        if plan.is_breaking() {
            return Err(ClientError::BreakingModel { plan: plan.to_string() });
        }
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        install_model(
            &transaction,
            &plan.statements(&model, Dialect::Sqlite, Side::Device),
            model_text,
        )?;
        transaction.commit()?;
        *self.model.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(model);
        Ok(true)
    }

    /// A second connection to the database, for applying a download while the app goes on
    /// reading through the first.
    pub(crate) fn open_writer(&self) -> Result<rusqlite::Connection, ClientError> {
        connect(&self.path, self.key.as_ref())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock leaves no half-applied state: every write runs in
        // a transaction that rolls back when dropped, so the connection stays usable.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The signed-in user, whose id `[%CurrentUser%]` stands for in local queries.
    pub(crate) fn current_user(
        &self,
        connection: &rusqlite::Connection,
    ) -> Result<Option<ObjectId>, ClientError> {
        Ok(meta(connection, Meta::User)?.and_then(|text| ObjectId::parse(&text)))
    }

    /// Records who is signed in on this device (`[%CurrentUser%]` in local queries).
    pub fn set_current_user(&self, user: ObjectId) -> Result<(), ClientError> {
        Ok(set_meta(&self.lock(), Meta::User, &user.to_string())?)
    }
}

/// The page cache of a connection to an encrypted database, in KiB.
const ENCRYPTED_CACHE_KIB: i64 = 32 * 1024;

/// A connection with the settings every connection to a device database has, keyed when the
/// database is encrypted; a key that does not read it is refused before anything is written.
fn connect(path: &Path, key: Option<&DeviceKey>) -> Result<rusqlite::Connection, ClientError> {
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Err(ClientError::NotAFile { path: path.display().to_string() });
    }
    let connection = rusqlite::Connection::open(path)?;
    if let Some(key) = key {
        // A wrong key is answered as `WrongKey` below, not also printed by SQLCipher.
        connection.execute_batch("PRAGMA cipher_log_level = NONE;")?;
        connection.execute_batch(&key.pragma())?;
    }
    let readable = connection.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()));
    match readable {
        Err(rusqlite::Error::SqliteFailure(failure, _))
            if failure.code == rusqlite::ErrorCode::NotADatabase =>
        {
            return Err(ClientError::WrongKey { path: path.display().to_string() });
        }
        other => other?,
    }
    if key.is_some() {
        // Every page read from disk is decrypted and checked: a larger cache reads fewer.
        connection.pragma_update(None, "cache_size", -ENCRYPTED_CACHE_KIB)?;
    }
    connection.busy_timeout(std::time::Duration::from_millis(LOCK_WAIT_MS))?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(connection)
}

/// Brings the tables to a model (the schema or migration `statements`) and stores its text.
fn install_model(
    transaction: &rusqlite::Transaction<'_>,
    statements: &[String],
    model_text: &str,
) -> Result<(), rusqlite::Error> {
    for statement in statements {
        transaction.execute(statement, [])?;
    }
    set_meta(transaction, Meta::Model, model_text)
}

/// The device's state kept in `ferry_meta`, one value per key; the checkpoints live there too,
/// under keys of their own that only [`Checkpoints`] knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Meta {
    /// The model file the schema was made from.
    Model,
    /// The signed-in user's id.
    User,
    /// The server signed in to.
    Server,
    /// The signed-in user's access token.
    Token,
    /// The session's refresh token, spent for the next access token.
    RefreshToken,
    /// This device's name on the server, made at its first upload.
    Device,
    /// The upload stored before it was sent, until it is answered.
    PendingUpload,
    /// Present while a full sync is due because the model changed.
    FullSyncNeeded,
    /// When the last sync completed, and its mode.
    LastSync,
    /// The certificate authorities (PEM) trusted for the server beside the platform's.
    Authorities,
    /// The signed-in user's roles, as the server last answered them: a JSON array.
    Roles,
    /// The server's epoch as the device last saw it (see `ferry_sync::restore`).
    ServerEpoch,
    /// Present from a restore of the server's data until a full sync completes: downloads are
    /// full and ask no index (the revisions held may be given again to other states).
    DownloadWithoutIndex,
}

impl Meta {
    fn key(self) -> &'static str {
        match self {
            Meta::Model => "model",
            Meta::User => "user",
            Meta::Server => "server",
            Meta::Token => "token",
            Meta::RefreshToken => "refresh_token",
            Meta::Device => "device",
            Meta::PendingUpload => "pending_upload",
            Meta::FullSyncNeeded => "full_sync_needed",
            Meta::LastSync => "last_sync",
            Meta::Authorities => "authorities",
            Meta::Roles => "roles",
            Meta::ServerEpoch => "server_epoch",
            Meta::DownloadWithoutIndex => "download_without_index",
        }
    }
}

/// A value of the device's state.
pub(crate) fn meta(
    connection: &rusqlite::Connection,
    key: Meta,
) -> Result<Option<String>, rusqlite::Error> {
    read_key(connection, key.key())
}

/// Sets a value of the device's state.
pub(crate) fn set_meta(
    connection: &rusqlite::Connection,
    key: Meta,
    value: &str,
) -> Result<(), rusqlite::Error> {
    write_key(connection, key.key(), value)
}

/// Removes a value of the device's state.
pub(crate) fn forget_meta(
    connection: &rusqlite::Connection,
    key: Meta,
) -> Result<(), rusqlite::Error> {
    connection.execute("DELETE FROM ferry_meta WHERE key = ?1", [key.key()])?;
    Ok(())
}

fn read_key(
    connection: &rusqlite::Connection,
    key: &str,
) -> Result<Option<String>, rusqlite::Error> {
    connection
        .query_row("SELECT value FROM ferry_meta WHERE key = ?1", [key], |row| row.get(0))
        .optional()
}

fn write_key(
    connection: &rusqlite::Connection,
    key: &str,
    value: &str,
) -> Result<(), rusqlite::Error> {
    connection.execute(
        "INSERT INTO ferry_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// The per-entity checkpoints (an entity's position in the server's change sequence, as the
/// server wrote it), kept in `ferry_meta` under `checkpoint:<entity>`: the one place that knows
/// where they are stored.
pub(crate) struct Checkpoints;

impl Checkpoints {
    const PREFIX: &str = "checkpoint:";

    fn key(entity: &EntityName) -> String {
        format!("{}{entity}", Self::PREFIX)
    }

    pub(crate) fn read(
        connection: &rusqlite::Connection,
        entity: &EntityName,
    ) -> Result<Option<String>, rusqlite::Error> {
        read_key(connection, &Self::key(entity))
    }

    pub(crate) fn write(
        connection: &rusqlite::Connection,
        entity: &EntityName,
        checkpoint: &str,
    ) -> Result<(), rusqlite::Error> {
        write_key(connection, &Self::key(entity), checkpoint)
    }

    /// Forgets one entity's checkpoint: its next download starts over in full.
    pub(crate) fn forget(
        connection: &rusqlite::Connection,
        entity: &EntityName,
    ) -> Result<(), rusqlite::Error> {
        connection.execute("DELETE FROM ferry_meta WHERE key = ?1", [Self::key(entity)])?;
        Ok(())
    }

    /// Forgets every checkpoint: the next sync downloads everything in full.
    pub(crate) fn forget_all(connection: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
        let pattern = format!("{}%", Self::PREFIX);
        connection.execute("DELETE FROM ferry_meta WHERE key LIKE ?1", [pattern])?;
        Ok(())
    }

    /// True when some entity has a checkpoint: a full sync completed once.
    pub(crate) fn any(connection: &rusqlite::Connection) -> Result<bool, rusqlite::Error> {
        let pattern = format!("{}%", Self::PREFIX);
        let count: i64 = connection.query_row(
            "SELECT count(*) FROM ferry_meta WHERE key LIKE ?1",
            [pattern],
            |row| row.get(0),
        )?;
        Ok(count > 0)
    }
}

/// Objects a download removed from the device, remembered while changes wait for upload: a
/// waiting change that refers to one points at an object the server knew (and deleted, or no
/// longer shows this user), not at nothing, so the upload goes and the server decides (a
/// dangling reference is skipped into `SynchronizationError`, never lost).
pub(crate) struct Removed;

/// How many removed objects the device remembers, the latest (see `Removed`).
pub const REMOVED_REMEMBERED_MAX: usize = 100_000;

impl Removed {
    pub(crate) fn remember(
        connection: &rusqlite::Connection,
        entity: &EntityName,
        id: ObjectId,
    ) -> Result<(), rusqlite::Error> {
        connection
            .prepare_cached(
                "INSERT OR IGNORE INTO ferry_removed (entity, object_id) VALUES (?1, ?2)",
            )?
            .execute(rusqlite::params![entity.as_str(), id_param(id)])?;
        Ok(())
    }

    /// Remembers the objects of `entity` a `clear` is about to remove, but those created here
    /// and never uploaded (the server never knew them); only while changes wait for upload.
    pub(crate) fn remember_cleared(
        connection: &rusqlite::Connection,
        entity: &ferry_model::Entity,
    ) -> Result<(), rusqlite::Error> {
        let table = ferry_sql::table_name(entity);
        connection.execute(
            &format!(
                "INSERT OR IGNORE INTO ferry_removed (entity, object_id) SELECT ?1, id FROM {table} \
                 WHERE EXISTS (SELECT 1 FROM ferry_dirty) \
                 AND id NOT IN (SELECT object_id FROM ferry_dirty WHERE entity = ?1 AND kind = 'create')"
            ),
            [entity.name.as_str()],
        )?;
        Ok(())
    }

    pub(crate) fn contains(
        connection: &rusqlite::Connection,
        entity: &EntityName,
        id: ObjectId,
    ) -> Result<bool, rusqlite::Error> {
        let found: i64 = connection.query_row(
            "SELECT count(*) FROM ferry_removed WHERE entity = ?1 AND object_id = ?2",
            rusqlite::params![entity.as_str(), id_param(id)],
            |row| row.get(0),
        )?;
        Ok(found > 0)
    }

    /// Keeps the [`REMOVED_REMEMBERED_MAX`] removed last (an app may still hold an uncommitted
    /// object that refers to one of them).
    pub(crate) fn forget_oldest(connection: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
        connection.execute(
            "DELETE FROM ferry_removed WHERE rowid <= (SELECT max(rowid) FROM ferry_removed) - ?1",
            [REMOVED_REMEMBERED_MAX as i64],
        )?;
        Ok(())
    }
}

pub(crate) fn to_sql(param: &Param) -> SqlValue {
    match param {
        Param::Null => SqlValue::Null,
        Param::Bool(flag) => SqlValue::Integer(i64::from(*flag)),
        Param::Int(integer) => SqlValue::Integer(*integer),
        Param::Text(text) => SqlValue::Text(text.clone()),
        Param::Blob(bytes) => SqlValue::Blob(bytes.clone()),
    }
}

pub(crate) fn from_sql(value: SqlValue) -> Param {
    match value {
        SqlValue::Null => Param::Null,
        SqlValue::Integer(integer) => Param::Int(integer),
        SqlValue::Text(text) => Param::Text(text),
        SqlValue::Blob(bytes) => Param::Blob(bytes),
        SqlValue::Real(real) => Param::Text(real.to_string()),
    }
}

pub(crate) fn id_param(id: ObjectId) -> SqlValue {
    to_sql(&ferry_sql::param(&Value::Reference(id), Dialect::Sqlite))
}

/// An id as the device tables store it (16 bytes); `None` for anything else.
pub(crate) fn id_from_blob(bytes: Vec<u8>) -> Option<ObjectId> {
    <[u8; 16]>::try_from(bytes).ok().map(ObjectId::from_bytes)
}

/// True when the device holds any object of the entity.
pub(crate) fn holds_objects(
    connection: &rusqlite::Connection,
    entity: &ferry_model::Entity,
) -> Result<bool, rusqlite::Error> {
    connection.query_row(&ferry_sql::any_object(entity), [], |row| row.get(0))
}
