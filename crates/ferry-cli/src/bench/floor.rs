//! The honest floor of an initial sync: the best a hand-written loader does on this machine
//! with the same rows and the device's schema. The server's rows are streamed in id order
//! (PostgreSQL's rows as they arrive through `query_raw`; SQLite's cursor on a thread of its
//! own) and turned
//! into the device's stored form while another thread inserts them, with one prepared
//! statement in one transaction, into a fresh table whose secondary indexes are built after
//! the rows, on a connection with a large page cache and its temporary storage in memory.
//! Durability is the device's: WAL, `synchronous=FULL`.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use ferry_model::{Entity, Model, samples};
use ferry_server::Database;
use ferry_sql::{Dialect, Param, Side, create_schema, read_object, select_columns, table_name};
use futures_util::{StreamExt as _, pin_mut};
use rusqlite::types::Value as Sql;

use super::server::{Databases, pg_connect};

/// Rows handed from the scanning side to the inserting thread at a time.
const FLOOR_BATCH_ROWS: usize = 1_000;
/// Batches the scanning side may be ahead of the inserting thread.
const FLOOR_BATCHES_AHEAD: usize = 8;
/// The loader's page cache, in KiB.
const FLOOR_CACHE_KIB: i64 = 64 * 1024;

/// The time the loader takes to move the entity's `rows` rows from `database` into a fresh
/// device table.
pub(super) async fn honest_floor(
    database: &Database,
    rows: usize,
    databases: &Databases,
) -> anyhow::Result<Duration> {
    let model = samples::field_service();
    let entity = model.entity("Field.WorkOrder").expect("sample entity").clone();
    let path = databases.directory.join(format!("honest-floor-{rows}.db"));
    for end in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{end}", path.display()));
    }
    let dialect = match database {
        Database::Postgres(_) => Dialect::Postgres,
        Database::Sqlite(_) => Dialect::Sqlite,
    };
    // In id order the fresh table (keyed by id) is filled from one end: measured faster than
    // the server's own order at 100k and 1M rows.
    // The database may hold more by now (the device scenarios write to it): the first `rows`.
    let scan = format!(
        "SELECT {} FROM {} \"t0\" ORDER BY \"t0\".id LIMIT {rows}",
        select_columns(&entity, "\"t0\"", dialect),
        table_name(&entity)
    );
    let start = Instant::now();
    let (sender, receiver) = sync_channel(FLOOR_BATCHES_AHEAD);
    let loader = {
        let model = model.clone();
        std::thread::spawn(move || load(&path, &model, receiver))
    };
    match database {
        Database::Postgres(url) => scan_postgres(url, &scan, &entity, sender).await?,
        Database::Sqlite(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || scan_sqlite(&path, &scan, &entity, sender))
                .await??
        }
    }
    let loaded = loader.join().map_err(|_| anyhow::anyhow!("the loader panicked"))??;
    anyhow::ensure!(loaded == rows, "the loader moved {loaded} of {rows} rows");
    Ok(start.elapsed())
}

/// A row as scanned, in the device's stored form: id, members, revision.
fn stored(entity: &Entity, scanned: &[Param], dialect: Dialect) -> anyhow::Result<Vec<Sql>> {
    let object = read_object(entity, scanned, dialect)
        .ok_or_else(|| anyhow::anyhow!("a scanned row does not read back"))?;
    let mut row = Vec::with_capacity(object.values.len() + 2);
    row.push(sql(ferry_sql::param(&ferry_model::Value::Reference(object.id), Dialect::Sqlite)));
    row.extend(object.values.iter().map(|v| sql(ferry_sql::param(v, Dialect::Sqlite))));
    row.push(Sql::Integer(1));
    Ok(row)
}

fn sql(param: Param) -> Sql {
    match param {
        Param::Int(i) => Sql::Integer(i),
        Param::Bool(b) => Sql::Integer(i64::from(b)),
        Param::Text(t) => Sql::Text(t),
        Param::Blob(b) => Sql::Blob(b),
        Param::Null => Sql::Null,
    }
}

async fn scan_postgres(
    url: &str,
    scan: &str,
    entity: &Entity,
    sender: SyncSender<Vec<Vec<Sql>>>,
) -> anyhow::Result<()> {
    use tokio_postgres::types::Type;
    let client = pg_connect(url).await?;
    let stream = client.query_raw(scan, Vec::<String>::new()).await?;
    pin_mut!(stream);
    let mut batch = Batch::new(sender);
    while let Some(row) = stream.next().await {
        let row = row?;
        let scanned: Vec<Param> = (0..row.len())
            .map(|i| match row.columns()[i].type_() {
                t if *t == Type::INT8 => {
                    row.get::<_, Option<i64>>(i).map_or(Param::Null, Param::Int)
                }
                t if *t == Type::BOOL => {
                    row.get::<_, Option<bool>>(i).map_or(Param::Null, Param::Bool)
                }
                _ => row.get::<_, Option<String>>(i).map_or(Param::Null, Param::Text),
            })
            .collect();
        if !batch.push(stored(entity, &scanned, Dialect::Postgres)?) {
            return Ok(());
        }
    }
    batch.finish();
    Ok(())
}

/// Rows on their way to the loader, sent [`FLOOR_BATCH_ROWS`] at a time.
struct Batch {
    rows: Vec<Vec<Sql>>,
    sender: SyncSender<Vec<Vec<Sql>>>,
}

impl Batch {
    fn new(sender: SyncSender<Vec<Vec<Sql>>>) -> Batch {
        Batch { rows: Vec::with_capacity(FLOOR_BATCH_ROWS), sender }
    }

    /// Adds a row; false once the loader is gone (it failed, which its result says).
    fn push(&mut self, row: Vec<Sql>) -> bool {
        self.rows.push(row);
        if self.rows.len() < FLOOR_BATCH_ROWS {
            return true;
        }
        let full = std::mem::replace(&mut self.rows, Vec::with_capacity(FLOOR_BATCH_ROWS));
        self.sender.send(full).is_ok()
    }

    fn finish(self) {
        let _ = self.sender.send(self.rows);
    }
}

fn scan_sqlite(
    path: &std::path::Path,
    scan: &str,
    entity: &Entity,
    sender: SyncSender<Vec<Vec<Sql>>>,
) -> anyhow::Result<()> {
    let connection = rusqlite::Connection::open(path)?;
    let mut statement = connection.prepare(scan)?;
    let width = entity.member_count() + 1;
    let mut rows = statement.query([])?;
    let mut batch = Batch::new(sender);
    while let Some(row) = rows.next()? {
        let mut scanned = Vec::with_capacity(width);
        for i in 0..width {
            scanned.push(match row.get::<_, Sql>(i)? {
                Sql::Integer(i) => Param::Int(i),
                Sql::Text(t) => Param::Text(t),
                Sql::Blob(b) => Param::Blob(b),
                _ => Param::Null,
            });
        }
        if !batch.push(stored(entity, &scanned, Dialect::Sqlite)?) {
            return Ok(());
        }
    }
    batch.finish();
    Ok(())
}

/// Inserts what arrives into a fresh device database at `path`; builds the indexes after the
/// rows; gives the rows inserted.
fn load(
    path: &std::path::Path,
    model: &Model,
    batches: Receiver<Vec<Vec<Sql>>>,
) -> anyhow::Result<usize> {
    let entity = model.entity("Field.WorkOrder").expect("sample entity");
    let mut connection = rusqlite::Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "cache_size", -FLOOR_CACHE_KIB)?;
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    let (tables, indexes): (Vec<String>, Vec<String>) =
        create_schema(model, Dialect::Sqlite, Side::Device)
            .into_iter()
            .partition(|statement| statement.starts_with("CREATE TABLE"));
    for statement in &tables {
        connection.execute(statement, [])?;
    }
    let transaction = connection.transaction()?;
    let mut loaded = 0;
    {
        let mut insert = transaction.prepare(&ferry_sql::replace_statement(
            entity,
            Dialect::Sqlite,
            Side::Device,
        ))?;
        for batch in batches {
            for row in batch {
                insert.execute(rusqlite::params_from_iter(row))?;
                loaded += 1;
            }
        }
    }
    // Only the work orders' table was filled; the others' indexes are built on empty tables.
    for statement in &indexes {
        transaction.execute(statement, [])?;
    }
    transaction.commit()?;
    Ok(loaded)
}
