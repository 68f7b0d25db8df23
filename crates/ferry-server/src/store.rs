//! The server's database: embedded SQLite (one file) or PostgreSQL (a URL), with the same
//! behaviour. Entity tables come from `ferry-sql`; the store owns only its fixed tables
//! (the change sequence, users and tokens, tombstones, uploads, failures, history, the model).
//!
//! Both backends are driven through [`Tx`]: statements are written once, PostgreSQL style
//! (`$1`), and rows come back as [`Param`]s. SQLite runs inline on the calling task.

mod hints;
mod postgres;
mod sqlite;

use ferry_model::{Model, Value};
use ferry_sql::{Dialect, Param, Side, create_schema, plan_migration};

pub use hints::{HINT_LISTENER_RETRY_MS, HINTS_QUEUED_MAX};
pub(crate) use hints::{Hint, Hints};
pub use postgres::POSTGRES_CONNECTIONS_MAX;
pub(crate) use postgres::PostgresStore;
pub(crate) use sqlite::SqliteStore;

/// A row as the drivers return it.
pub(crate) type Row = Vec<Param>;

/// Where the server keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file, created if missing.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL URL, e.g. `postgres://ferry@127.0.0.1:5432/ferry`.
    Postgres(String),
}

impl Database {
    /// Parses `sqlite:PATH` or `postgres://…`.
    pub fn parse(text: &str) -> Result<Database, String> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(
                    "sqlite: needs a file path, as in sqlite:./ferry-data/ferry.db".to_owned()
                );
            }
            Ok(Database::Sqlite(path.into()))
        } else if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Ok(Database::Postgres(text.to_owned()))
        } else {
            Err(format!("unknown database `{text}`: use sqlite:PATH or postgres://…"))
        }
    }

    /// Where file contents go unless told otherwise: `files` beside an SQLite file, or
    /// `ferry-data/files` for PostgreSQL.
    pub fn default_files(&self) -> std::path::PathBuf {
        match self {
            Database::Sqlite(path) => {
                path.parent().unwrap_or(std::path::Path::new(".")).join("files")
            }
            Database::Postgres(_) => std::path::PathBuf::from("ferry-data/files"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the stored model cannot be migrated to this one:\n{plan}")]
    BreakingMigration { plan: String },
    #[error("the stored model is invalid: {0}")]
    StoredModel(String),
    #[error("the database holds a value Ferry did not write: {0}")]
    Corrupt(String),
    #[error("the file store: {0}")]
    Files(#[from] std::io::Error),
    /// PostgreSQL could not be reached, or refused the connection.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(String),
    /// The database URL cannot be used as given.
    #[error("the database URL: {0}")]
    Config(String),
}

pub(crate) enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// The fixed tables, in PostgreSQL form; `{id}` and `{serial}` differ per backend.
const FIXED_TABLES: [&str; 15] = [
    "CREATE TABLE IF NOT EXISTS ferry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ferry_sequence (id BIGINT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO ferry_sequence (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS ferry_credentials (user_id {id} PRIMARY KEY, name TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, roles TEXT NOT NULL, disabled BIGINT NOT NULL DEFAULT 0, issuer TEXT NOT NULL DEFAULT '')",
    "CREATE TABLE IF NOT EXISTS ferry_tokens (token_hash TEXT PRIMARY KEY, user_id {id} NOT NULL, expires_at BIGINT NOT NULL, session TEXT NOT NULL DEFAULT '')",
    // One row per session: the hash of its refresh token, and of the one spent for it (good
    // again until the current one is spent), so a replay of any earlier token is seen.
    "CREATE TABLE IF NOT EXISTS ferry_sessions (session TEXT PRIMARY KEY, user_id {id} NOT NULL, refresh_hash TEXT NOT NULL, previous_hash TEXT NOT NULL, expires_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ferry_tombstones (entity TEXT NOT NULL, object_id {id} NOT NULL, seq BIGINT NOT NULL, at BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (entity, object_id))",
    "CREATE INDEX IF NOT EXISTS ferry_tombstones_seq ON ferry_tombstones (entity, seq)",
    "CREATE TABLE IF NOT EXISTS ferry_uploads (upload_id TEXT PRIMARY KEY, user_id {id} NOT NULL, response TEXT NOT NULL, at BIGINT NOT NULL, request_digest TEXT)",
    // Only answers still kept are looked up by time (to drop them past the retention): the
    // records kept after that grow without end and must not slow every upload.
    "DROP INDEX IF EXISTS ferry_uploads_at",
    "CREATE INDEX IF NOT EXISTS ferry_uploads_answered_at ON ferry_uploads (at) WHERE response <> ''",
    // Who sent each file content: only they learn that the server holds it, or may name it.
    "CREATE TABLE IF NOT EXISTS ferry_content_senders (hash TEXT NOT NULL, user_id {id} NOT NULL, at BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (hash, user_id))",
    "CREATE TABLE IF NOT EXISTS ferry_failures (id {serial}, entity TEXT NOT NULL, object_id {id} NOT NULL, kind TEXT NOT NULL, attempted TEXT NOT NULL, reason TEXT NOT NULL, user_id {id} NOT NULL, user_name TEXT NOT NULL, upload_id TEXT NOT NULL, at BIGINT NOT NULL, replayed_at BIGINT, rejection TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ferry_history (id {serial}, user_name TEXT NOT NULL, device TEXT NOT NULL, upload_id TEXT NOT NULL, duration_ms BIGINT NOT NULL, objects_up BIGINT NOT NULL, errors BIGINT NOT NULL, at BIGINT NOT NULL)",
    // The syncs devices report when they complete one.
    "CREATE TABLE IF NOT EXISTS ferry_sync_history (id {serial}, user_name TEXT NOT NULL, device TEXT NOT NULL, mode TEXT NOT NULL, upload_id TEXT NOT NULL, duration_ms BIGINT NOT NULL, objects_up BIGINT NOT NULL, objects_down BIGINT NOT NULL, errors BIGINT NOT NULL, at BIGINT NOT NULL)",
];

/// True when the fixed table `table` has the column `column`.
async fn has_column(tx: &mut Tx<'_>, table: &str, column: &str) -> Result<bool, StoreError> {
    let find = match tx.dialect() {
        Dialect::Postgres => {
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2"
        }
        Dialect::Sqlite => "SELECT name FROM pragma_table_info($1) WHERE name = $2",
    };
    let params = [Param::Text(table.to_owned()), Param::Text(column.to_owned())];
    Ok(!tx.query(find, &params).await?.is_empty())
}

/// Databases made before upload records kept the digest of their request gain the column.
async fn add_upload_digest_column(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    if !has_column(tx, "ferry_uploads", "request_digest").await? {
        tx.execute("ALTER TABLE ferry_uploads ADD COLUMN request_digest TEXT", &[]).await?;
    }
    Ok(())
}

/// Databases made before users could be disabled, sign in through an identity provider, or
/// hold sessions with refresh tokens gain the columns (0: enabled; '': a built-in user).
async fn add_credentials_columns(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    if !has_column(tx, "ferry_credentials", "disabled").await? {
        let add = "ALTER TABLE ferry_credentials ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0";
        tx.execute(add, &[]).await?;
    }
    if !has_column(tx, "ferry_credentials", "issuer").await? {
        let add = "ALTER TABLE ferry_credentials ADD COLUMN issuer TEXT NOT NULL DEFAULT ''";
        tx.execute(add, &[]).await?;
    }
    // Tokens issued before sessions had refresh tokens belong to none.
    if !has_column(tx, "ferry_tokens", "session").await? {
        let add = "ALTER TABLE ferry_tokens ADD COLUMN session TEXT NOT NULL DEFAULT ''";
        tx.execute(add, &[]).await?;
    }
    tx.execute("CREATE INDEX IF NOT EXISTS ferry_tokens_session ON ferry_tokens (session)", &[])
        .await?;
    Ok(())
}

/// Databases made before failures named their replay's administrator and corrections gain the
/// columns (empty: replayed as attempted, by someone unrecorded); before contents' senders and
/// deletion records had a time, they gain it (0: long ago, so the lifecycle's grace period and
/// deletion horizon are over for them).
async fn add_later_columns(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    for (column, kind) in [("replayed_by", "TEXT"), ("replayed_values", "TEXT")] {
        if !has_column(tx, "ferry_failures", column).await? {
            let add = format!("ALTER TABLE ferry_failures ADD COLUMN {column} {kind}");
            tx.execute(&add, &[]).await?;
        }
    }
    for table in ["ferry_content_senders", "ferry_tombstones"] {
        if !has_column(tx, table, "at").await? {
            let add = format!("ALTER TABLE {table} ADD COLUMN at BIGINT NOT NULL DEFAULT 0");
            tx.execute(&add, &[]).await?;
        }
    }
    Ok(())
}

/// Databases made before failures kept the kind of their rejection gain the column; the kind
/// of a failure recorded before is read from its reason, as the server worded it.
async fn add_rejection_column(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    if has_column(tx, "ferry_failures", "rejection").await? {
        return Ok(());
    }
    tx.execute(
        "ALTER TABLE ferry_failures ADD COLUMN rejection TEXT NOT NULL DEFAULT 'conflict'",
        &[],
    )
    .await?;
    let worded = [
        ("access", "access:%"),
        ("dangling-reference", "dangling reference:%"),
        ("handler", "rejected by a before-apply handler:%"),
        ("validation", "validation:%"),
    ];
    for (kind, pattern) in worded {
        tx.execute(
            "UPDATE ferry_failures SET rejection = $1 WHERE reason LIKE $2",
            &[Param::Text(kind.to_owned()), Param::Text(pattern.to_owned())],
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// Opens the database, creates the fixed tables, and brings the entity tables to `model`:
    /// created on first start, migrated when the model changed additively, refused otherwise.
    pub(crate) async fn open(
        database: &Database,
        model: &Model,
        model_text: &str,
    ) -> Result<Store, StoreError> {
        let store = match database {
            Database::Sqlite(path) => Store::Sqlite(SqliteStore::open(path)?),
            Database::Postgres(url) => Store::Postgres(PostgresStore::open(url).await?),
        };
        let mut tx = store.begin().await?;
        for statement in FIXED_TABLES {
            let (id, serial) = match store.dialect() {
                Dialect::Sqlite => ("BLOB", "INTEGER PRIMARY KEY"),
                Dialect::Postgres => ("TEXT", "BIGSERIAL PRIMARY KEY"),
            };
            tx.execute(&statement.replace("{id}", id).replace("{serial}", serial), &[]).await?;
        }
        add_upload_digest_column(&mut tx).await?;
        add_rejection_column(&mut tx).await?;
        add_later_columns(&mut tx).await?;
        add_credentials_columns(&mut tx).await?;
        if store.dialect() == Dialect::Postgres {
            // Upload responses are written once and read back rarely: skip compressing them.
            tx.execute("ALTER TABLE ferry_uploads ALTER COLUMN response SET STORAGE EXTERNAL", &[])
                .await?;
        }
        let stored = tx.query("SELECT value FROM ferry_meta WHERE key = 'model'", &[]).await?;
        let statements = match stored.into_iter().next() {
            None => create_schema(model, store.dialect(), Side::Server),
            Some(row) => {
                let Param::Text(text) = &row[0] else {
                    return Err(StoreError::Corrupt("the stored model is not text".to_owned()));
                };
                let old = Model::parse(text)
                    .map_err(|errors| StoreError::StoredModel(format!("{errors:?}")))?;
                let plan = plan_migration(&old, model);
                if plan.is_breaking() {
                    return Err(StoreError::BreakingMigration { plan: plan.to_string() });
                }
                plan.statements(model, store.dialect(), Side::Server)
            }
        };
        for statement in &statements {
            tx.execute(statement, &[]).await?;
        }
        let upsert = "INSERT INTO ferry_meta (key, value) VALUES ('model', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        tx.execute(upsert, &[Param::Text(model_text.to_owned())]).await?;
        tx.commit().await?;
        Ok(store)
    }

    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Store::Sqlite(_) => Dialect::Sqlite,
            Store::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Starts a read-write transaction. Writers serialise on the change sequence row.
    pub(crate) async fn begin(&self) -> Result<Tx<'_>, StoreError> {
        match self {
            Store::Sqlite(store) => Ok(Tx::Sqlite(store.begin().await?)),
            Store::Postgres(store) => Ok(Tx::Postgres(store.begin("BEGIN").await?)),
        }
    }

    /// Starts a read-only transaction that sees one snapshot throughout.
    pub(crate) async fn begin_snapshot(&self) -> Result<Tx<'_>, StoreError> {
        match self {
            Store::Sqlite(store) => Ok(Tx::Sqlite(store.begin().await?)),
            Store::Postgres(store) => Ok(Tx::Postgres(
                store.begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
            )),
        }
    }

    /// Hints of the entities each commit changed, this process's and (on PostgreSQL) every
    /// other's on the database.
    pub(crate) fn hints(&self) -> &Hints {
        match self {
            Store::Sqlite(store) => &store.hints,
            Store::Postgres(store) => &store.hints,
        }
    }

    /// The stored form of an id for this backend.
    pub(crate) fn id_param(&self, id: ferry_model::ObjectId) -> Param {
        ferry_sql::param(&Value::Reference(id), self.dialect())
    }
}

/// One transaction on either backend. Dropped without `commit`, it rolls back.
pub(crate) enum Tx<'a> {
    Sqlite(sqlite::SqliteTx<'a>),
    Postgres(postgres::PostgresTx<'a>),
}

impl Tx<'_> {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Tx::Sqlite(_) => Dialect::Sqlite,
            Tx::Postgres(_) => Dialect::Postgres,
        }
    }

    pub(crate) async fn query(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Row>, StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.query(sql, params),
            Tx::Postgres(tx) => tx.query(sql, params).await,
        }
    }

    pub(crate) async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.execute(sql, params),
            Tx::Postgres(tx) => tx.execute(sql, params).await,
        }
    }

    /// Bulk-loads lines of PostgreSQL's `COPY` text format; `None` on SQLite, which has no COPY.
    pub(crate) async fn copy_in(
        &mut self,
        sql: &str,
        data: String,
    ) -> Option<Result<u64, StoreError>> {
        match self {
            Tx::Sqlite(_) => None,
            Tx::Postgres(tx) => Some(tx.copy_in(sql, data).await),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit(),
            Tx::Postgres(tx) => tx.commit().await,
        }
    }

    /// Ends a transaction whose changes, if any, are discarded, keeping the connection for
    /// the next one (dropping a transaction rolls back too, but closes a PostgreSQL connection).
    pub(crate) async fn finish(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.rollback(),
            Tx::Postgres(tx) => tx.rollback().await,
        }
    }

    /// Marks a point that `rollback_to` can return to, for one object of an upload.
    pub(crate) async fn savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("SAVEPOINT ferry_object", &[]).await.map(drop)
    }

    pub(crate) async fn rollback_to_savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("ROLLBACK TO SAVEPOINT ferry_object", &[]).await?;
        self.release_savepoint().await
    }

    pub(crate) async fn release_savepoint(&mut self) -> Result<(), StoreError> {
        self.execute("RELEASE SAVEPOINT ferry_object", &[]).await.map(drop)
    }

    /// Notes that this transaction changes objects of `entity`: listeners are told once it
    /// commits.
    pub(crate) fn changed(&mut self, entity: &str) {
        let changed = match self {
            Tx::Sqlite(tx) => &mut tx.changed,
            Tx::Postgres(tx) => &mut tx.changed,
        };
        if !changed.contains(entity) {
            changed.insert(entity.to_owned());
        }
    }

    /// Takes `count` consecutive positions in the change sequence; returns the first.
    /// The row lock it takes is held until commit, so positions become visible in order.
    pub(crate) async fn take_sequence(&mut self, count: i64) -> Result<i64, StoreError> {
        let rows = self
            .query(
                "UPDATE ferry_sequence SET value = value + $1 WHERE id = 1 RETURNING value",
                &[Param::Int(count)],
            )
            .await?;
        let last = int(&rows[0][0])?;
        Ok(last - count + 1)
    }

    /// The last position of the change sequence this transaction sees.
    pub(crate) async fn sequence_now(&mut self) -> Result<i64, StoreError> {
        let rows = self.query("SELECT value FROM ferry_sequence WHERE id = 1", &[]).await?;
        int(&rows[0][0])
    }
}

pub(crate) fn int(param: &Param) -> Result<i64, StoreError> {
    match param {
        Param::Int(value) => Ok(*value),
        other => Err(StoreError::Corrupt(format!("expected an integer, found {other:?}"))),
    }
}

pub(crate) fn text(param: &Param) -> Result<String, StoreError> {
    match param {
        Param::Text(value) => Ok(value.clone()),
        other => Err(StoreError::Corrupt(format!("expected text, found {other:?}"))),
    }
}

/// Rewrites `$1`-style placeholders to SQLite's `?1`.
pub(crate) fn sqlite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}
