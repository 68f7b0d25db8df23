//! The `ferry` command: the quickstart, check a model file, plan a migration between two models,
//! run the server, manage users, run benchmarks.

#![allow(clippy::print_stdout, reason = "a command-line program prints its results")]

mod admin;
mod bench;
mod device;
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
              [--files DIR] [--connections-max N] [--requests-in-flight-max N]
              [--handler-timeout-ms MS] [--upload-retention-days N]
              [--access-token-seconds N] [--refresh-token-days N]
              [--tls-cert FILE --tls-key FILE] [--app DIR]
              [--idp-jwks-url URL --idp-issuer ISS --idp-audience AUD
               [--idp-user-claim CLAIM] [--idp-roles-claim CLAIM] [--idp-ca-cert FILE]]
                                         run the server (default sqlite:ferry-data/ferry.db,
                                         127.0.0.1:8750; file contents in DIR, by default
                                         `files` beside an SQLite file or ferry-data/files;
                                         at most 1024 connections and 256 requests at once,
                                         each answered within 90000 ms; uploads' answers kept
                                         90 days for retries; access tokens last 900 s,
                                         a session unrefreshed 90 days); HTTPS with the PEM
                                         certificate chain and key given, else plain HTTP;
                                         with --idp-…, users also sign in with JWTs of
                                         that identity provider (user from CLAIM `sub`,
                                         roles from CLAIM `roles`); with --app, the
                                         web app in DIR (its index.html and files) is
                                         served at / beside the API
  ferry user add NAME --role ROLE... --password-stdin --model FILE [--database ...]
                                         add a user; the password is read from standard input
  ferry bench [--quick] [--only NAME]    run the benchmarks and print ratios to the raw cost
                                         (NAME: evaluate, parse, upload, download, incremental,
                                         device, files, load, live, browser)

  ferry device --db PATH [--key-file FILE] [--json] COMMAND
                                         a device database from the command line, encrypted
                                         with the secret in FILE (or in FERRY_DEVICE_KEY) when
                                         one is given:
    login --server URL (--user NAME [--password-stdin] | --token-stdin) [--ca-cert FILE]
                                         sign in (password on standard input, or FERRY_PASSWORD;
                                         or the identity provider's token on standard input)
                                         and make the database for the server's model; URL is
                                         https://host[:port][/prefix] (plain http:// only to this
                                         machine); FILE, a PEM certificate authority trusted
                                         beside the system's, is kept for later syncs
    create ENTITY [MEMBER=VALUE]...      a new object, uncommitted (kept in PATH.draft.json)
    set ID MEMBER=VALUE...               change an object, uncommitted (an empty VALUE empties)
    attach ID FILE                       attach a file's content to a file object, uncommitted
    commit [ID]...                       commit uncommitted objects (all, or these) at once
    rollback [ID]...                     drop uncommitted changes (all, or these)
    delete ID                            delete an object
    query ENTITY [CONSTRAINT] [--sort MEMBER[:desc]] [--limit N] [--offset N]
    sync [--mode all|unsynchronized|selected] [--object ID]...
                                         synchronize; a progress bar when on a terminal
    live [--syncs N]                     stay connected: sync when the server says something
                                         changed and after local commits, printing each sync,
                                         until Ctrl-C (or N syncs)
    watch ENTITY [CONSTRAINT] [--sort MEMBER[:desc]] [--limit N] [--sets N] [--offline]
                                         print the query's objects, then again each time they
                                         change, in live mode (not with --offline), until
                                         Ctrl-C (or N result sets)
    call ACTION [JSON]                   call a server action with a JSON object of parameters
    status                               server, user, model version, pending changes, last sync
    files                                file objects and whether their content is on the device
  --json prints one JSON document: login {user, user_id, server}; create/set/attach {entity, id,
  committed}; commit {committed: [{entity, id}], pending_changes}; rollback {rolled_back};
  delete {entity, id, deletion}; query and each line of watch {objects: [{entity, id, values}]}; each line of live {event:
  connected|disconnected|synced|sync_failed, report|reason}; sync {uploaded,
  rejected: [{entity, id, reason}], downloaded, removed, files_uploaded, files_downloaded};
  call {result, synced, removed, skipped}; status {server, user_id, model_version,
  pending_changes, uncommitted_objects, last_sync: {at, mode}}; files {files: [{entity, id,
  file_name, file_size, path}]}

  ferry admin [--server URL] [--session FILE] [--json] COMMAND
                                         the operator's view (an administrator's session, kept
                                         in FILE, by default ferry/admin-session.json in
                                         $XDG_CONFIG_HOME or ~/.config, readable by you only):
    login --user NAME [--password-stdin] sign in (with --server URL)
    users                                users and their roles
    user add NAME --role ROLE... [--password-stdin]
    user roles NAME ROLE...              set a user's roles (none: their sessions end)
    user disable NAME | user enable NAME a disabled user cannot sign in; their sessions end
    user password NAME [--password-stdin]
                                         a new password (standard input, or FERRY_PASSWORD);
                                         the user's sessions end
    failures [--entity ENTITY] [--user NAME]
                                         SynchronizationError records, newest first
    failure ID                           one record, with its attempted values
    replay ID                            apply a record again, once its cause is fixed
    history                              uploads and syncs, newest first
    devices                              devices seen, their user and last sync
  --json prints the server's answer as it is (see crates/ferry-protocol)

exit codes: 0 success, 1 a file, database or address could not be used, 2 bad usage or invalid
            input (model, user, value, constraint), 3 the migration plan has breaking changes,
            4 the server cannot be reached, 5 wrong user name or password, 6 not signed in or
            the session expired, 7 the server's model changed in a way the device cannot
            follow, 8 a synchronization is already running on this database, 9 the server
            refused the request, 10 the device refused (another user's changes are still to
            be uploaded, or the server speaks another protocol version), 11 the server's
            certificate cannot be trusted (give its authority with --ca-cert), 12 the device
            database does not open with the key given (or needs one); with --json, a
            failing command also prints {error: {code, message, exit_code}} on standard output";

/// Exit codes; documented in `USAGE`.
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["quickstart"] => quickstart::quickstart(),
        ["device", rest @ ..] => device::command(rest),
        ["admin", rest @ ..] => admin::command(rest),
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
