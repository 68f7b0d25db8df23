//! All model-dependent SQL text, for SQLite and PostgreSQL: the schema of a model
//! ([`create_schema`]), the plan from one model version to the next ([`plan_migration`]), and
//! constraints compiled to parameterised `WHERE` clauses ([`compile_where`]).
//!
//! Values never appear in SQL text: they travel as [`Param`]s in the form each backend stores.
//! Stores run this SQL; they own only fixed statements of their own.
//!
//! Storage forms (SQLite / PostgreSQL): ids as 16-byte BLOB / `uuid`; strings as TEXT / `text`
//! or `varchar(n)` with the `C` collation, so both order by bytes; decimals as a scaled INTEGER
//! / `numeric(18, scale)`; date-times as INTEGER microseconds / `timestamptz`; booleans as
//! INTEGER 0 or 1 / `boolean`; enumerations as TEXT / `text`; binary as BLOB / `bytea`.

mod filter;
pub mod journal;
mod migration;
mod param;
mod schema;
mod statement;

pub use filter::{Sql, compile_where};
pub use migration::{Breaking, Change, MigrationPlan, plan_migration};
pub use param::{Param, any_of, array_param, param, placeholder, read_object, read_value};
pub use schema::{
    DEVICE_TABLES, Side, column_name, column_type, copy_line, copy_statement, create_schema,
    insert_rows_statement, insert_statement, select_column, select_columns, select_id, table_name,
    update_statement,
};
pub use statement::{
    OBJECT_ALIAS, any_object, count_by_id, delete_all, delete_by_id, local_query,
    refresh_statement, replace_statement, revisions_statement, select_by_id, select_ids,
};

/// The SQL dialect to write.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A double-quoted identifier; model names never contain quotes, but they are doubled anyway.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
