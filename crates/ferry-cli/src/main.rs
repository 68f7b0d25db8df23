//! The `ferry` command: the quickstart, check a model file, plan a migration between two models,
//! run the server, manage users, run benchmarks.

#![allow(clippy::print_stdout, reason = "a command-line program prints its results")]

mod admin;
mod backup;
mod bench;
mod cli;
mod device;
mod logging;
mod model;
mod quickstart;
mod serve;

use std::process::ExitCode;

/// Exit codes; documented under `ferry --help`.
pub(crate) mod exit {
    pub(crate) const IO: u8 = 1;
    pub(crate) const INVALID: u8 = 2;
    pub(crate) const BREAKING: u8 = 3;
    pub(crate) const UNREACHABLE: u8 = 4;
    pub(crate) const SIGN_IN: u8 = 5;
    pub(crate) const SESSION: u8 = 6;
    pub(crate) const MODEL: u8 = 7;
    pub(crate) const BUSY: u8 = 8;
    pub(crate) const REFUSED: u8 = 9;
    pub(crate) const REFUSED_HERE: u8 = 10;
    pub(crate) const CERTIFICATE: u8 = 11;
    pub(crate) const KEY: u8 = 12;

    /// The name of an exit code in a JSON error document.
    pub(crate) fn name(code: u8) -> &'static str {
        match code {
            IO => "io",
            INVALID => "invalid",
            BREAKING => "breaking",
            UNREACHABLE => "unreachable",
            SIGN_IN => "sign-in",
            SESSION => "session",
            MODEL => "model",
            BUSY => "busy",
            REFUSED => "refused",
            REFUSED_HERE => "refused-here",
            CERTIFICATE => "certificate",
            KEY => "key",
            _ => "failed",
        }
    }
}
pub(crate) const EXIT_IO: u8 = exit::IO;
pub(crate) const EXIT_INVALID: u8 = exit::INVALID;
pub(crate) const EXIT_BREAKING: u8 = exit::BREAKING;

fn main() -> ExitCode {
    use clap::Parser as _;
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    match cli.command {
        cli::Command::Quickstart => quickstart::quickstart(),
        cli::Command::Device(args) => device::command(args),
        cli::Command::Admin(args) => admin::command(args),
        cli::Command::Model(cli::ModelCommand::Check { file }) => model::check(&file),
        cli::Command::Model(cli::ModelCommand::Diff { old, new, sql }) => {
            model::diff(&old, &new, sql.as_deref())
        }
        cli::Command::Serve(args) => serve::serve(args),
        cli::Command::User(cli::UserCommand::Add(args)) => serve::add_user(args),
        cli::Command::Bench(args) => bench::command(args),
        cli::Command::Backup(args) => backup::backup(args),
        cli::Command::Restore(args) => backup::restore(args),
        cli::Command::Completions { shell } => {
            let mut command = <cli::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "ferry", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
    }
}

/// Help and the version go to standard output with exit code 0; a usage error to standard
/// error with exit code 2 ([`exit::INVALID`]), and, for a command given `--json`, also as a
/// JSON document on standard output, as every failing command prints one.
fn usage_error(error: clap::Error) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let _ = error.print();
    if std::env::args().any(|arg| arg == "--json") {
        let message = error.kind().to_string();
        let code = exit::name(exit::INVALID);
        let document = serde_json::json!({ "error": {
            "code": code, "message": message, "exit_code": exit::INVALID,
        }});
        println!("{document}");
    }
    ExitCode::from(EXIT_INVALID)
}
