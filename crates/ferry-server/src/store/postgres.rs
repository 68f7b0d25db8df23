//! The PostgreSQL backend: a pool of connections (`deadpool-postgres`), each with its prepared
//! statements; one transaction per connection. A connection dropped inside a transaction is
//! taken out of the pool and closed, which rolls the transaction back.
//! With `sslmode=require` or `sslmode=verify-full` in the URL, connections are TLS (rustls),
//! the server's certificate verified against the system's authorities and the URL's
//! `sslrootcert` file: Ferry never accepts a database certificate it cannot verify.

use std::collections::BTreeSet;
use std::marker::PhantomData;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use ferry_sql::Param;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::hints::{HINT_CHANNEL, Hint, Hints, listen};
use super::{Row, StoreError};

/// Connections kept open to PostgreSQL by one server process.
pub const POSTGRES_CONNECTIONS_MAX: usize = 8;
/// Prepared statements kept per connection; past it the cache starts over.
const STATEMENT_CACHE_MAX: usize = 512;

pub(crate) struct PostgresStore {
    pool: Pool,
    pub(crate) hints: Hints,
    /// The connection listening for other processes' commits (and this one's).
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PostgresStore {
    pub(crate) async fn open(url: &str) -> Result<PostgresStore, StoreError> {
        let (config, tls) = connection_config(url)?;
        // Fast recycling: a connection that is still open is reused as it is; a transaction
        // never outlives the object that ran it (see `PostgresTx`'s drop).
        let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let hints = Hints::new();
        let (manager, listener) = match tls {
            None => (
                Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config),
                tokio::spawn(listen(config, tokio_postgres::NoTls, hints.clone())),
            ),
            Some(tls) => (
                Manager::from_config(config.clone(), tls.clone(), manager_config),
                tokio::spawn(listen(config, tls, hints.clone())),
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(POSTGRES_CONNECTIONS_MAX)
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        // Connect once now so a wrong URL fails at start, not at the first request.
        drop(pool.get().await.map_err(unpooled)?);
        Ok(PostgresStore { pool, hints, listener })
    }

    pub(crate) async fn begin(&self, begin: &str) -> Result<PostgresTx<'_>, StoreError> {
        let connection = self.pool.get().await.map_err(unpooled)?;
        connection.batch_execute(begin).await?;
        let connection = Some(Box::new(connection));
        Ok(PostgresTx { connection, changed: BTreeSet::new(), store: PhantomData })
    }
}

/// A connection the pool could not give.
fn unpooled(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => unconnected(error),
        other => StoreError::Connect(other.to_string()),
    }
}

/// A failed connection, with the causes under it (a refused certificate is one of them).
fn unconnected(error: tokio_postgres::Error) -> StoreError {
    StoreError::Connect(crate::effects::error_chain(&error))
}

/// The connection settings of a database URL, and its TLS: `sslmode` `disable`, `prefer` or
/// none connect in the clear; `require` and `verify-full` over TLS with the certificate
/// verified (against the system's authorities and `sslrootcert=FILE`); `verify-ca`, which
/// would skip the host name, is refused.
fn connection_config(
    url: &str,
) -> Result<(tokio_postgres::Config, Option<tokio_postgres_rustls::MakeRustlsConnect>), StoreError>
{
    let bad = |message: String| StoreError::Config(message);
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root, mut kept) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode = Some(value.to_owned()),
            Some(("sslrootcert", value)) => root = Some(value.to_owned()),
            _ => kept.push(pair),
        }
    }
    let tls = match mode.as_deref() {
        None | Some("disable" | "prefer") => false,
        Some("require" | "verify-full") => true,
        Some(other) => {
            return Err(bad(format!(
                "sslmode={other} is not supported: use require or verify-full (the certificate is always verified), or disable"
            )));
        }
    };
    if tls {
        kept.push("sslmode=require");
    }
    let rebuilt = match kept.is_empty() {
        true => base.to_owned(),
        false => format!("{base}?{}", kept.join("&")),
    };
    let config: tokio_postgres::Config =
        rebuilt.parse().map_err(|e: tokio_postgres::Error| bad(e.to_string()))?;
    if !tls {
        return Ok((config, None));
    }
    let authorities = match &root {
        Some(file) => {
            Some(std::fs::read(file).map_err(|e| bad(format!("sslrootcert {file}: {e}")))?)
        }
        None => None,
    };
    let client = crate::tls_client::client_config(authorities.as_deref()).map_err(|reason| {
        bad(format!("sslrootcert {}: {reason}", root.as_deref().unwrap_or("")))
    })?;
    Ok((config, Some(tokio_postgres_rustls::MakeRustlsConnect::new(client))))
}

pub(crate) struct PostgresTx<'a> {
    /// Boxed: a pooled connection carries its statistics, and transactions move often.
    connection: Option<Box<Object>>,
    /// Entities this transaction changed: notified with its commit.
    pub(crate) changed: BTreeSet<String>,
    store: PhantomData<&'a PostgresStore>,
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
    fn connection(&mut self) -> &mut Object {
        self.connection.as_mut().expect("the connection is present until commit")
    }

    /// The statement prepared for `sql` on this connection, preparing it the first time.
    async fn statement(&mut self, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
        let connection = self.connection();
        if connection.statement_cache.size() >= STATEMENT_CACHE_MAX {
            connection.statement_cache.clear();
        }
        Ok(connection.prepare_cached(sql).await?)
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
        let rows = self.connection().query(&statement, &refs).await?;
        rows.iter().map(read_row).collect()
    }

    pub(crate) async fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        if params.is_empty() && !sql.contains('$') {
            self.connection().batch_execute(sql).await?;
            return Ok(0);
        }
        let statement = self.statement(sql).await?;
        let binds: Vec<Bind> = params.iter().map(Bind).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            binds.iter().map(|b| b as &(dyn ToSql + Sync)).collect();
        Ok(self.connection().execute(&statement, &refs).await?)
    }

    /// Streams `data` (PostgreSQL's `COPY` text format) into the `COPY … FROM STDIN` statement.
    pub(crate) async fn copy_in(&mut self, sql: &str, data: String) -> Result<u64, StoreError> {
        use futures_util::SinkExt as _;
        let sink = self.connection().copy_in::<_, std::io::Cursor<Vec<u8>>>(sql).await?;
        let mut sink = std::pin::pin!(sink);
        sink.send(std::io::Cursor::new(data.into_bytes())).await?;
        Ok(sink.as_mut().finish().await?)
    }

    pub(crate) async fn commit(mut self) -> Result<(), StoreError> {
        if !self.changed.is_empty() {
            // Delivered at commit, to every listener on the database, or not at all.
            let payload = Param::Text(Hint::payload(&self.changed));
            self.execute(&format!("SELECT pg_notify('{HINT_CHANNEL}', $1)"), &[payload]).await?;
        }
        self.end("COMMIT").await
    }

    pub(crate) async fn rollback(self) -> Result<(), StoreError> {
        self.end("ROLLBACK").await
    }

    /// Ends the transaction and returns the connection to the pool.
    async fn end(mut self, statement: &str) -> Result<(), StoreError> {
        let connection = self.connection.take().expect("the connection is present until the end");
        // Back to the pool when it drops here.
        connection.batch_execute(statement).await?;
        Ok(())
    }
}

impl Drop for PostgresTx<'_> {
    fn drop(&mut self) {
        // Not committed: closing the connection makes PostgreSQL roll the transaction back.
        if let Some(connection) = self.connection.take() {
            drop(Object::take(*connection));
        }
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
