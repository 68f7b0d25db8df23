//! The `ferry` command: check a model file, plan a migration between two models, run benchmarks.

#![allow(clippy::print_stdout, reason = "a command-line program prints its results")]

mod bench;
mod model;

use std::process::ExitCode;

const USAGE: &str = "usage:
  ferry model check FILE                 validate a model file; print a summary and its version
  ferry model diff OLD NEW [--sql DIALECT]
                                         print the migration plan from OLD to NEW
                                         (DIALECT: sqlite or postgres, to print its statements)
  ferry bench [--quick]                  run the benchmarks and print ratios to the raw cost

exit codes: 0 success, 1 a file could not be read, 2 bad usage or an invalid model,
            3 the migration plan has breaking changes";

/// Exit codes; documented in `USAGE`.
pub(crate) const EXIT_IO: u8 = 1;
pub(crate) const EXIT_INVALID: u8 = 2;
pub(crate) const EXIT_BREAKING: u8 = 3;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["model", "check", file] => model::check(file),
        ["model", "diff", old, new] => model::diff(old, new, None),
        ["model", "diff", old, new, "--sql", dialect] => model::diff(old, new, Some(dialect)),
        ["bench"] => bench::run(bench::Size::Full),
        ["bench", "--quick"] => bench::run(bench::Size::Quick),
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
