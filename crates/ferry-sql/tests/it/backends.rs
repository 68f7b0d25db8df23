//! The two databases, driven the way the stores will drive them: create the schema from
//! `ferry-sql`, insert objects with bound parameters, select the ids a `WHERE` clause matches.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferry_model::{AttributeType, Entity, Model, Object, ObjectId, Slot, Value};
use ferry_sql::{
    Dialect, Param, Side, Sql, create_schema, insert_statement, param, read_value, select_columns,
    table_name,
};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

pub(crate) struct Sqlite {
    pub(crate) connection: rusqlite::Connection,
}

impl Sqlite {
    pub(crate) fn new(model: &Model) -> Sqlite {
        let connection = rusqlite::Connection::open_in_memory().unwrap();
        for statement in create_schema(model, Dialect::Sqlite, Side::Server) {
            connection.execute(&statement, []).unwrap();
        }
        Sqlite { connection }
    }

    pub(crate) fn insert(&mut self, model: &Model, entity: &str, objects: &[Object]) {
        let entity = model.entity(entity).unwrap();
        let transaction = self.connection.transaction().unwrap();
        {
            let mut statement = transaction
                .prepare(&insert_statement(entity, Dialect::Sqlite, Side::Server))
                .unwrap();
            for object in objects {
                let params = object_params(object, Dialect::Sqlite);
                statement
                    .execute(rusqlite::params_from_iter(params.iter().map(sqlite_value)))
                    .unwrap();
            }
        }
        transaction.commit().unwrap();
    }

    pub(crate) fn select_ids(
        &self,
        model: &Model,
        entity: &str,
        filter: &Sql,
    ) -> Result<BTreeSet<ObjectId>, String> {
        let entity = model.entity(entity).unwrap();
        let query =
            format!("SELECT \"t0\".id FROM {} \"t0\" WHERE {}", table_name(entity), filter.text);
        let mut statement = self.connection.prepare(&query).map_err(|e| format!("{e}: {query}"))?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(filter.params.iter().map(sqlite_value)), |row| {
                let bytes: Vec<u8> = row.get(0)?;
                Ok(ObjectId::from_bytes(bytes.try_into().expect("ids are 16 bytes")))
            })
            .map_err(|e| format!("{e}: {query}"))?;
        rows.collect::<Result<_, _>>().map_err(|e| format!("{e}: {query}"))
    }
}

impl Sqlite {
    pub(crate) fn execute(&self, statement: &str) {
        self.connection.execute(statement, []).unwrap_or_else(|e| panic!("{e}: {statement}"));
    }

    /// Every object of the entity, read back through `select_columns` and `read_value`.
    pub(crate) fn read_all(&self, model: &Model, entity: &str) -> Vec<Object> {
        let entity = model.entity(entity).unwrap();
        let query = format!(
            "SELECT {} FROM {} \"t0\"",
            select_columns(entity, "\"t0\"", Dialect::Sqlite),
            table_name(entity)
        );
        let mut statement = self.connection.prepare(&query).unwrap();
        let rows = statement
            .query_map([], |row| {
                let stored: Vec<Param> = (0..=entity.member_count())
                    .map(|i| match row.get::<_, rusqlite::types::Value>(i).unwrap() {
                        rusqlite::types::Value::Null => Param::Null,
                        rusqlite::types::Value::Integer(i) => Param::Int(i),
                        rusqlite::types::Value::Text(t) => Param::Text(t),
                        rusqlite::types::Value::Blob(b) => Param::Blob(b),
                        rusqlite::types::Value::Real(r) => panic!("no column stores floats: {r}"),
                    })
                    .collect();
                Ok(decode(entity, stored, Dialect::Sqlite))
            })
            .unwrap();
        let mut objects: Vec<Object> = rows.map(Result::unwrap).collect();
        objects.sort_by_key(|o| o.id);
        objects
    }
}

/// A row read with `select_columns` (id first, then every slot) back into an object.
fn decode(entity: &Entity, stored: Vec<Param>, dialect: Dialect) -> Object {
    let mut stored = stored.into_iter();
    let id = match read_value(stored.next().unwrap(), None, dialect) {
        Some(Value::Reference(id)) => id,
        other => panic!("bad stored id {other:?}"),
    };
    let values = stored
        .enumerate()
        .map(|(slot, value)| {
            let attribute_type: Option<&AttributeType> =
                entity.attribute_type_of(entity.member_at(Slot(slot)));
            let shown = format!("{value:?}");
            read_value(value, attribute_type, dialect).unwrap_or_else(|| {
                panic!("{}: cannot read stored {shown}", entity.member_name(Slot(slot)))
            })
        })
        .collect();
    Object { id, values }
}

fn object_params(object: &Object, dialect: Dialect) -> Vec<Param> {
    std::iter::once(param(&Value::Reference(object.id), dialect))
        .chain(object.values.iter().map(|v| param(v, dialect)))
        .chain([Param::Int(1), Param::Int(0)])
        .collect()
}

fn sqlite_value(param: &Param) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match param {
        Param::Null => Value::Null,
        Param::Bool(flag) => Value::Integer(i64::from(*flag)),
        Param::Int(integer) => Value::Integer(*integer),
        Param::Text(text) => Value::Text(text.clone()),
        Param::Blob(bytes) => Value::Blob(bytes.clone()),
    }
}

/// A parameter bound to PostgreSQL: NULL fits any placeholder type.
#[derive(Debug)]
struct PgParam<'a>(&'a Param);

impl ToSql for PgParam<'_> {
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

pub(crate) struct Postgres {
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    admin: tokio_postgres::Client,
    database: String,
}

static DATABASE_COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Postgres {
    /// A fresh database on the server `FERRY_TEST_POSTGRES` names, or `None` when it is unset.
    pub(crate) fn new(model: &Model) -> Option<Postgres> {
        let Ok(url) = std::env::var("FERRY_TEST_POSTGRES") else {
            println!("skipped: FERRY_TEST_POSTGRES unset");
            return None;
        };
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let database = format!(
            "ferry_sql_{}_{}",
            std::process::id(),
            DATABASE_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let (admin, client) = runtime.block_on(async {
            let admin = connect(&url).await;
            admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
            let client = connect(&with_database(&url, &database)).await;
            for statement in create_schema(model, Dialect::Postgres, Side::Server) {
                client.batch_execute(&statement).await.unwrap();
            }
            (admin, client)
        });
        Some(Postgres { runtime, client, admin, database })
    }

    pub(crate) fn insert(&mut self, model: &Model, entity: &str, objects: &[Object]) {
        let entity = model.entity(entity).unwrap();
        self.runtime.block_on(async {
            let statement = self
                .client
                .prepare(&insert_statement(entity, Dialect::Postgres, Side::Server))
                .await
                .unwrap();
            for object in objects {
                let params = object_params(object, Dialect::Postgres);
                let bound: Vec<PgParam> = params.iter().map(PgParam).collect();
                let refs: Vec<&(dyn ToSql + Sync)> =
                    bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                self.client.execute(&statement, &refs).await.unwrap();
            }
        });
    }

    pub(crate) fn select_ids(
        &self,
        model: &Model,
        entity: &str,
        filter: &Sql,
    ) -> Result<BTreeSet<ObjectId>, String> {
        let entity = model.entity(entity).unwrap();
        let query = format!(
            "SELECT \"t0\".id::text FROM {} \"t0\" WHERE {}",
            table_name(entity),
            filter.text
        );
        let bound: Vec<PgParam> = filter.params.iter().map(PgParam).collect();
        let refs: Vec<&(dyn ToSql + Sync)> =
            bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let rows = self
            .runtime
            .block_on(self.client.query(&query, &refs))
            .map_err(|e| format!("{e:?}: {query}"))?;
        Ok(rows
            .iter()
            .map(|row| ObjectId::parse(row.get::<_, &str>(0)).expect("uuid text"))
            .collect())
    }
}

impl Postgres {
    pub(crate) fn execute(&self, statement: &str) {
        self.runtime
            .block_on(self.client.batch_execute(statement))
            .unwrap_or_else(|e| panic!("{e:?}: {statement}"));
    }

    /// Every object of the entity, read back through `select_columns` and `read_value`.
    pub(crate) fn read_all(&self, model: &Model, entity: &str) -> Vec<Object> {
        let entity = model.entity(entity).unwrap();
        let query = format!(
            "SELECT {} FROM {} \"t0\"",
            select_columns(entity, "\"t0\"", Dialect::Postgres),
            table_name(entity)
        );
        let rows = self.runtime.block_on(self.client.query(&query, &[])).unwrap();
        let mut objects: Vec<Object> = rows
            .iter()
            .map(|row| {
                let stored = (0..row.len())
                    .map(|i| {
                        let column_type = row.columns()[i].type_();
                        let param = if *column_type == Type::INT8 {
                            row.get::<_, Option<i64>>(i).map(Param::Int)
                        } else if *column_type == Type::BOOL {
                            row.get::<_, Option<bool>>(i).map(Param::Bool)
                        } else if *column_type == Type::BYTEA {
                            row.get::<_, Option<Vec<u8>>>(i).map(Param::Blob)
                        } else {
                            row.get::<_, Option<String>>(i).map(Param::Text)
                        };
                        param.unwrap_or(Param::Null)
                    })
                    .collect();
                decode(entity, stored, Dialect::Postgres)
            })
            .collect();
        objects.sort_by_key(|o| o.id);
        objects
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let database = self.database.clone();
        let admin = &self.admin;
        self.runtime.block_on(async {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .await;
        });
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The URL with its database replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}
