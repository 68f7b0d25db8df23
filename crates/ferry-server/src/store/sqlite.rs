//! The embedded SQLite backend: one connection, in WAL mode, used by one transaction at a time.
//! Statements run inline on the calling task; SQLite's work is short and local.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use ferry_sql::Param;
use rusqlite::types::Value as SqlValue;
use tokio::sync::{Mutex, MutexGuard};

use super::hints::{Hint, Hints};
use super::{Row, StoreError, sqlite_placeholders};

/// SQLite's page cache, in KiB: large tables stay in memory between requests.
const PAGE_CACHE_KIB: i64 = 64 * 1024;
/// Prepared statements kept per connection.
const STATEMENT_CACHE_MAX: usize = 512;
/// How long a statement waits for a lock held by another process on the same file, in ms.
const BUSY_TIMEOUT_MS: u64 = 5_000;

pub(crate) struct SqliteStore {
    connection: Mutex<rusqlite::Connection>,
    pub(crate) hints: Hints,
}

impl SqliteStore {
    pub(crate) fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Sqlite(rusqlite::Error::InvalidPath(
                    format!("{}: {e}", parent.display()).into(),
                ))
            })?;
        }
        let connection = rusqlite::Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_MAX);
        connection.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
        Ok(SqliteStore { connection: Mutex::new(connection), hints: Hints::new() })
    }

    pub(crate) async fn begin(&self) -> Result<SqliteTx<'_>, StoreError> {
        let connection = self.connection.lock().await;
        connection.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteTx { connection, open: true, changed: BTreeSet::new(), hints: &self.hints })
    }
}

pub(crate) struct SqliteTx<'a> {
    connection: MutexGuard<'a, rusqlite::Connection>,
    open: bool,
    /// Entities this transaction changed: hinted once it commits.
    pub(crate) changed: BTreeSet<String>,
    hints: &'a Hints,
}

impl SqliteTx<'_> {
    pub(crate) fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.connection.prepare_cached(&sqlite_placeholders(sql))?;
        let columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(params.iter().map(to_sql)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for index in 0..columns {
                values.push(from_sql(row.get::<_, SqlValue>(index)?));
            }
            out.push(values);
        }
        Ok(out)
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let sql = sqlite_placeholders(sql);
        let mut statement = self.connection.prepare_cached(&sql)?;
        if statement.readonly() || sql.contains("RETURNING") {
            let mut rows =
                statement.query(rusqlite::params_from_iter(params.iter().map(to_sql)))?;
            let mut count = 0;
            while rows.next()?.is_some() {
                count += 1;
            }
            return Ok(count);
        }
        Ok(statement.execute(rusqlite::params_from_iter(params.iter().map(to_sql)))? as u64)
    }

    pub(crate) fn commit(mut self) -> Result<(), StoreError> {
        self.connection.execute_batch("COMMIT")?;
        self.open = false;
        if !self.changed.is_empty() {
            self.hints.publish(Hint::Entities(Arc::new(std::mem::take(&mut self.changed))));
        }
        Ok(())
    }

    pub(crate) fn rollback(mut self) -> Result<(), StoreError> {
        self.connection.execute_batch("ROLLBACK")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // Invariant: a transaction not committed leaves nothing behind.
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

fn to_sql(param: &Param) -> SqlValue {
    match param {
        Param::Null => SqlValue::Null,
        Param::Bool(flag) => SqlValue::Integer(i64::from(*flag)),
        Param::Int(integer) => SqlValue::Integer(*integer),
        Param::Text(text) => SqlValue::Text(text.clone()),
        Param::Blob(bytes) => SqlValue::Blob(bytes.clone()),
    }
}

fn from_sql(value: SqlValue) -> Param {
    match value {
        SqlValue::Null => Param::Null,
        SqlValue::Integer(integer) => Param::Int(integer),
        SqlValue::Text(text) => Param::Text(text),
        SqlValue::Blob(bytes) => Param::Blob(bytes),
        // Ferry writes no floats; one read back is text so the caller reports it.
        SqlValue::Real(real) => Param::Text(real.to_string()),
    }
}
