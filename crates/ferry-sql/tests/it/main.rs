//! Integration tests of the SQL against real databases: bundled SQLite and, when
//! `FERRY_TEST_POSTGRES` is set, a PostgreSQL server (one fresh database per test).

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on any error")]
#![allow(clippy::print_stdout, reason = "tests report what they skipped and measured")]

mod backends;
mod differential;
mod schema;
