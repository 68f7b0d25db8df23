//! Integration tests of the SQL against real databases: bundled SQLite and, when
//! `FERRY_TEST_POSTGRES` is set, a PostgreSQL server (one fresh database per test).

mod backends;
mod differential;
mod schema;
