//! The PostgreSQL backend: a small pool of connections; one transaction per connection.
//! A connection dropped inside a transaction is closed, which rolls the transaction back.

use std::collections::BTreeMap;
use std::sync::Mutex;

use ferry_sql::Param;
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::{Row, StoreError};

/// Connections kept open to PostgreSQL by one server process.
pub const POSTGRES_CONNECTIONS_MAX: usize = 8;
/// Prepared statements kept per connection; past it the cache starts over.
const STATEMENT_CACHE_MAX: usize = 512;

/// A connection with the statements prepared on it.
struct Connection {
    client: tokio_postgres::Client,
    statements: BTreeMap<String, tokio_postgres::Statement>,
}

pub(crate) struct PostgresStore {
    url: String,
    idle: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

impl PostgresStore {
    pub(crate) async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let store = PostgresStore {
            url: url.to_owned(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(POSTGRES_CONNECTIONS_MAX),
        };
        // Connect once now so a wrong URL fails at start, not at the first request.
        let connection = store.connect().await?;
        store.idle.lock().expect("pool lock is never poisoned").push(connection);
        Ok(store)
    }

    async fn connect(&self) -> Result<Connection, StoreError> {
        let (client, connection) =
            tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            // The connection ends when its client is dropped; an error then needs no report.
            let _ = connection.await;
        });
        Ok(Connection { client, statements: BTreeMap::new() })
    }

    pub(crate) async fn begin(&self, begin: &str) -> Result<PostgresTx<'_>, StoreError> {
        let permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let reused = self.idle.lock().expect("pool lock is never poisoned").pop();
        let connection = match reused {
            Some(connection) if !connection.client.is_closed() => connection,
            _ => self.connect().await?,
        };
        connection.client.batch_execute(begin).await?;
        Ok(PostgresTx { store: self, connection: Some(connection), _permit: permit })
    }
}

pub(crate) struct PostgresTx<'a> {
    store: &'a PostgresStore,
    connection: Option<Connection>,
    _permit: SemaphorePermit<'a>,
}

/// A parameter bound to PostgreSQL; NULL fits any placeholder type.
#[derive(Debug)]
struct Bind<'a>(&'a Param);

impl ToSql for Bind<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(flag) => flag.to_sql(ty, out),
            Param::Int(integer) => integer.to_sql(ty, out),
            Param::Text(text) => text.to_sql(ty, out),
            Param::Blob(bytes) => bytes.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl PostgresTx<'_> {
    fn connection(&mut self) -> &mut Connection {
        self.connection.as_mut().expect("the connection is present until commit")
    }

    /// The statement prepared for `sql` on this connection, preparing it the first time.
    async fn statement(&mut self, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
        let connection = self.connection();
        if let Some(statement) = connection.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = connection.client.prepare(sql).await?;
        if connection.statements.len() >= STATEMENT_CACHE_MAX {
            connection.statements.clear();
        }
        connection.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(crate) async fn query(
        &mut self,
        sql: &str,
        params: &[Param],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        let binds: Vec<Bind> = params.iter().map(Bind).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        let rows = self.connection().client.query(&statement, &refs).await?;
        rows.iter().map(read_row).collect()
    }

    pub(crate) async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        if params.is_empty() && !sql.contains('$') {
            self.connection().client.batch_execute(sql).await?;
            return Ok(0);
        }
        let statement = self.statement(sql).await?;
        let binds: Vec<Bind> = params.iter().map(Bind).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        Ok(self.connection().client.execute(&statement, &refs).await?)
    }

    /// Streams `data` (PostgreSQL's `COPY` text format) into the `COPY … FROM STDIN` statement.
    pub(crate) async fn copy_in(&mut self, sql: &str, data: String) -> Result<u64, StoreError> {
        use futures_util::SinkExt as _;
        let sink = self.connection().client.copy_in::<_, std::io::Cursor<Vec<u8>>>(sql).await?;
        let mut sink = std::pin::pin!(sink);
        sink.send(std::io::Cursor::new(data.into_bytes())).await?;
        Ok(sink.as_mut().finish().await?)
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.end("COMMIT").await
    }

    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        self.end("ROLLBACK").await
    }

    /// Ends the transaction and returns the connection to the pool.
    async fn end(mut self, statement: &str) -> Result<(), StoreError> {
        let connection = self.connection.take().expect("the connection is present until the end");
        connection.client.batch_execute(statement).await?;
        self.store.idle.lock().expect("pool lock is never poisoned").push(connection);
        Ok(())
    }
}

impl Drop for PostgresTx<'_> {
    fn drop(&mut self) {
        // Not committed: closing the connection makes PostgreSQL roll the transaction back.
        drop(self.connection.take());
    }
}

fn read_row(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    (0..row.len())
        .map(|index| {
            let column_type = row.columns()[index].type_();
            let param = if *column_type == Type::INT8 {
                row.try_get::<_, Option<i64>>(index)?.map(Param::Int)
            } else if *column_type == Type::INT4 {
                row.try_get::<_, Option<i32>>(index)?.map(|v| Param::Int(i64::from(v)))
            } else if *column_type == Type::BOOL {
                row.try_get::<_, Option<bool>>(index)?.map(Param::Bool)
            } else if *column_type == Type::BYTEA {
                row.try_get::<_, Option<Vec<u8>>>(index)?.map(Param::Blob)
            } else {
                row.try_get::<_, Option<String>>(index)?.map(Param::Text)
            };
            Ok(param.unwrap_or(Param::Null))
        })
        .collect()
}
