//! The server through its HTTP API, on both backends: SQLite always, PostgreSQL when
//! `FERRY_TEST_POSTGRES` is set (one fresh database per test).

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on any error")]
#![allow(clippy::print_stdout, reason = "tests report what they skipped")]

mod harness;
mod provider;

mod access;
mod auth;
mod console;
mod download;
mod files;
mod hostile;
mod identity;
mod limits;
mod live;
mod migration;
mod smoke;
mod upload;
