//! The `ferry` command: the quickstart, check a model file, plan a migration between two models,
//! run the server, manage users, run benchmarks.

#![allow(clippy::print_stdout, reason = "a command-line program prints its results")]

mod bench;
mod model;
mod quickstart;
mod serve;

use std::process::ExitCode;

pub(crate) const USAGE: &str = "usage:
  ferry quickstart                       a server and devices in a temporary directory, through a
                                         narrated story: sync, conflicts, a rejected change
                                         replayed, selected sync, an action, a photo
  ferry model check FILE                 validate a model file; print a summary and its version
  ferry model diff OLD NEW [--sql DIALECT]
                                         print the migration plan from OLD to NEW
                                         (DIALECT: sqlite or postgres, to print its statements)
  ferry serve --model FILE [--database sqlite:PATH | postgres://...] [--listen HOST:PORT]
              [--files DIR]              run the server (default sqlite:ferry-data/ferry.db,
                                         127.0.0.1:8750; file contents in DIR, by default
                                         `files` beside an SQLite file or ferry-data/files)
  ferry user add NAME --role ROLE... --password-stdin --model FILE [--database ...]
                                         add a user; the password is read from standard input
  ferry bench [--quick] [--only NAME]    run the benchmarks and print ratios to the raw cost
                                         (NAME: evaluate, parse, upload, download, incremental,
                                         device)

exit codes: 0 success, 1 a file, database or address could not be used, 2 bad usage or an
            invalid model or user, 3 the migration plan has breaking changes";

/// Exit codes; documented in `USAGE`.
pub(crate) const EXIT_IO: u8 = 1;
pub(crate) const EXIT_INVALID: u8 = 2;
pub(crate) const EXIT_BREAKING: u8 = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["quickstart"] => quickstart::quickstart(),
        ["model", "check", file] => model::check(file),
        ["model", "diff", old, new] => model::diff(old, new, None),
        ["model", "diff", old, new, "--sql", dialect] => model::diff(old, new, Some(dialect)),
        ["serve", rest @ ..] => serve::serve(rest),
        ["user", "add", name, rest @ ..] => serve::add_user(name, rest),
        ["bench", rest @ ..] => bench::command(rest),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}
