//! The command line, as `clap` parses it: every command and subcommand with its `--help`, and
//! `--version`. The commands' work lives in their modules; this is only their arguments.
//!
//! `ferry serve` (and `ferry user add`, which opens the same database) also take each option
//! from an environment variable (`FERRY_DATABASE`, `FERRY_LISTEN`, …) and from a TOML file
//! (`--config FILE` or `FERRY_CONFIG`, its keys the options' long names); a flag beats the
//! environment, which beats the file.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// The exit codes, shown under `ferry --help`.
const EXIT_CODES: &str = "Exit codes: 0 success, 1 a file, database or address could not be used, 2 bad usage or invalid input (model, user, value, constraint), 3 the migration plan has breaking changes, 4 the server cannot be reached, 5 wrong user name or password, 6 not signed in or the session expired, 7 the server's model changed in a way the device cannot follow, 8 a synchronization is already running on this database, 9 the server refused the request, 10 the device refused (another user's changes are still to be uploaded, or the server speaks another protocol version), 11 the server's certificate cannot be trusted (give its authority with --ca-cert), 12 the device database does not open with the key given (or needs one); with --json, a failing command also prints {error: {code, message, exit_code}} on standard output.";

/// Ferry: an offline-first data sync engine. A model file, a server, devices, and the tools
/// around them.
#[derive(Parser)]
#[command(name = "ferry", version, after_long_help = EXIT_CODES, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// A server and devices in a temporary directory, through a narrated story: sync,
    /// conflicts, a rejected change replayed, selected sync, an action, a photo, live sync.
    Quickstart,
    /// Validate a model file, or print the migration plan between two.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Run the server.
    Serve(ServeArgs),
    /// Manage the server's users in its database.
    #[command(subcommand)]
    User(UserCommand),
    /// A device database from the command line, as an app drives it.
    Device(DeviceArgs),
    /// The operator's view of a running server (an administrator's session).
    Admin(AdminArgs),
    /// A consistent copy of the server's data while it runs: the SQLite database and the file
    /// contents (with PostgreSQL, the contents, and the `pg_dump` to run beside them).
    Backup(BackupArgs),
    /// Restore a backup `ferry backup` made, with the server stopped: the SQLite database and
    /// the file contents (with PostgreSQL, run `pg_restore` first), then a new epoch, so every
    /// device's next sync is a full download and sends again what it uploaded after the backup.
    Restore(RestoreArgs),
    /// Run the benchmarks and print ratios to the raw cost of the same work.
    Bench(BenchArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
pub(crate) enum ModelCommand {
    /// Validate a model file; print a summary and its version.
    Check {
        /// The model file (TOML).
        file: String,
    },
    /// Print the migration plan from OLD to NEW.
    Diff {
        /// The model file before.
        old: String,
        /// The model file after.
        new: String,
        /// Also print the plan's statements in this dialect (sqlite or postgres).
        #[arg(long, value_name = "DIALECT")]
        sql: Option<String>,
    },
}

/// The options of `ferry serve`. Each is optional here: what no flag, environment variable or
/// configuration file gives takes its default in `serve`.
#[derive(Args, Deserialize, Default, Clone)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ServerOptions {
    /// The model file (TOML).
    #[arg(long, env = "FERRY_MODEL", value_name = "FILE")]
    pub(crate) model: Option<String>,
    /// The database: sqlite:PATH or a postgres:// URL [default: sqlite:ferry-data/ferry.db].
    #[arg(long, env = "FERRY_DATABASE", value_name = "URL")]
    pub(crate) database: Option<String>,
    /// The address to listen on [default: 127.0.0.1:8750].
    #[arg(long, env = "FERRY_LISTEN", value_name = "HOST:PORT")]
    pub(crate) listen: Option<String>,
    /// The directory of file contents [default: `files` beside an SQLite file, or
    /// ferry-data/files].
    #[arg(long, env = "FERRY_FILES", value_name = "DIR")]
    pub(crate) files: Option<PathBuf>,
    /// Connections open at most [default: 1024].
    #[arg(long, env = "FERRY_CONNECTIONS_MAX", value_name = "N")]
    pub(crate) connections_max: Option<usize>,
    /// Requests handled at once at most; more are answered 503 [default: 256].
    #[arg(long, env = "FERRY_REQUESTS_IN_FLIGHT_MAX", value_name = "N")]
    pub(crate) requests_in_flight_max: Option<usize>,
    /// Each request is answered within this many milliseconds [default: 90000].
    #[arg(long, env = "FERRY_HANDLER_TIMEOUT_MS", value_name = "MS")]
    pub(crate) handler_timeout_ms: Option<u64>,
    /// On SIGTERM or Ctrl-C, how long running requests may finish before their connections
    /// close, in milliseconds [default: 30000].
    #[arg(long, env = "FERRY_SHUTDOWN_GRACE_MS", value_name = "MS")]
    pub(crate) shutdown_grace_ms: Option<u64>,
    /// Days an upload's answer is kept for its retries [default: 90].
    #[arg(long, env = "FERRY_UPLOAD_RETENTION_DAYS", value_name = "N")]
    pub(crate) upload_retention_days: Option<u32>,
    /// Days deletion records are kept; a device whose last sync is older gets a full download
    /// [default: 90].
    #[arg(long, env = "FERRY_DELETION_HORIZON_DAYS", value_name = "N")]
    pub(crate) deletion_horizon_days: Option<u32>,
    /// Days upload and sync records are kept [default: 365].
    #[arg(long, env = "FERRY_HISTORY_RETENTION_DAYS", value_name = "N")]
    pub(crate) history_retention_days: Option<u32>,
    /// Days a replayed failure is kept; one not replayed stays [default: 365].
    #[arg(long, env = "FERRY_FAILURE_RETENTION_DAYS", value_name = "N")]
    pub(crate) failure_retention_days: Option<u32>,
    /// Hours a file content nothing refers to is kept after it was last sent [default: 24].
    #[arg(long, env = "FERRY_FILE_GRACE_HOURS", value_name = "N")]
    pub(crate) file_grace_hours: Option<u32>,
    /// Seconds an access token lasts [default: 900].
    #[arg(long, env = "FERRY_ACCESS_TOKEN_SECONDS", value_name = "N")]
    pub(crate) access_token_seconds: Option<u32>,
    /// Days a session lasts unrefreshed [default: 90].
    #[arg(long, env = "FERRY_REFRESH_TOKEN_DAYS", value_name = "N")]
    pub(crate) refresh_token_days: Option<u32>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "FERRY_TLS_CERT", value_name = "FILE")]
    pub(crate) tls_cert: Option<String>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "FERRY_TLS_KEY", value_name = "FILE")]
    pub(crate) tls_key: Option<String>,
    /// Also sign users in with JWTs of the identity provider whose key set is at URL.
    #[arg(long, env = "FERRY_IDP_JWKS_URL", value_name = "URL")]
    pub(crate) idp_jwks_url: Option<String>,
    /// The identity provider's issuer (`iss`).
    #[arg(long, env = "FERRY_IDP_ISSUER", value_name = "ISS")]
    pub(crate) idp_issuer: Option<String>,
    /// The audience (`aud`) the identity provider's tokens are for.
    #[arg(long, env = "FERRY_IDP_AUDIENCE", value_name = "AUD")]
    pub(crate) idp_audience: Option<String>,
    /// The claim naming the user [default: sub].
    #[arg(long, env = "FERRY_IDP_USER_CLAIM", value_name = "CLAIM")]
    pub(crate) idp_user_claim: Option<String>,
    /// The claim listing the user's roles [default: roles].
    #[arg(long, env = "FERRY_IDP_ROLES_CLAIM", value_name = "CLAIM")]
    pub(crate) idp_roles_claim: Option<String>,
    /// A PEM certificate authority trusted for the identity provider beside the system's.
    #[arg(long, env = "FERRY_IDP_CA_CERT", value_name = "FILE")]
    pub(crate) idp_ca_cert: Option<String>,
    /// A web app's directory (with its index.html), served at / beside the API.
    #[arg(long, env = "FERRY_APP", value_name = "DIR")]
    pub(crate) app: Option<PathBuf>,
    /// Which events to log: a level (error, warn, info, debug, trace) or targets with levels,
    /// e.g. `warn,ferry_server=debug` [default: info].
    #[arg(long, env = "RUST_LOG", value_name = "FILTER")]
    pub(crate) log: Option<String>,
    /// Log lines for people, or JSON lines [default: text].
    #[arg(long, env = "FERRY_LOG_FORMAT", value_name = "FORMAT")]
    pub(crate) log_format: Option<crate::logging::LogFormat>,
    /// Also export the request spans to an OpenTelemetry collector: its OTLP/HTTP traces URL,
    /// e.g. `http://collector:4318/v1/traces` [default: no export].
    #[arg(long, env = "FERRY_OTLP_ENDPOINT", value_name = "URL")]
    pub(crate) otlp_endpoint: Option<String>,
}

impl ServerOptions {
    /// These options, each one not given taken from `file`.
    pub(crate) fn or(self, file: ServerOptions) -> ServerOptions {
        ServerOptions {
            model: self.model.or(file.model),
            database: self.database.or(file.database),
            listen: self.listen.or(file.listen),
            files: self.files.or(file.files),
            connections_max: self.connections_max.or(file.connections_max),
            requests_in_flight_max: self.requests_in_flight_max.or(file.requests_in_flight_max),
            handler_timeout_ms: self.handler_timeout_ms.or(file.handler_timeout_ms),
            shutdown_grace_ms: self.shutdown_grace_ms.or(file.shutdown_grace_ms),
            upload_retention_days: self.upload_retention_days.or(file.upload_retention_days),
            history_retention_days: self.history_retention_days.or(file.history_retention_days),
            deletion_horizon_days: self.deletion_horizon_days.or(file.deletion_horizon_days),
            failure_retention_days: self.failure_retention_days.or(file.failure_retention_days),
            file_grace_hours: self.file_grace_hours.or(file.file_grace_hours),
            access_token_seconds: self.access_token_seconds.or(file.access_token_seconds),
            refresh_token_days: self.refresh_token_days.or(file.refresh_token_days),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            idp_jwks_url: self.idp_jwks_url.or(file.idp_jwks_url),
            idp_issuer: self.idp_issuer.or(file.idp_issuer),
            idp_audience: self.idp_audience.or(file.idp_audience),
            idp_user_claim: self.idp_user_claim.or(file.idp_user_claim),
            idp_roles_claim: self.idp_roles_claim.or(file.idp_roles_claim),
            idp_ca_cert: self.idp_ca_cert.or(file.idp_ca_cert),
            app: self.app.or(file.app),
            log: self.log.or(file.log),
            log_format: self.log_format.or(file.log_format),
            otlp_endpoint: self.otlp_endpoint.or(file.otlp_endpoint),
        }
    }
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// A TOML file of these options (keys are the long option names, e.g. `listen =
    /// "0.0.0.0:8750"`); flags and environment variables take precedence over it.
    #[arg(long, env = "FERRY_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) options: ServerOptions,
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user to the server's database; the password is read from standard input.
    Add(UserAdd),
}

#[derive(Args)]
pub(crate) struct UserAdd {
    /// The user's name.
    pub(crate) name: String,
    /// A role of the model; give it once per role.
    #[arg(long = "role", value_name = "ROLE", required = true)]
    pub(crate) roles: Vec<String>,
    /// Read the password from standard input (required: a password never goes in a flag).
    #[arg(long, required = true)]
    pub(crate) password_stdin: bool,
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

/// What `ferry device --json` prints, per command.
const DEVICE_JSON: &str = "With --json, each command prints one JSON document: login {user, user_id, server}; create/set/attach {entity, id, committed}; commit {committed: [{entity, id}], pending_changes}; rollback {rolled_back}; delete {entity, id, deletion}; query and each line of watch {objects: [{entity, id, values}]}; each line of live {event: connected|disconnected|synced|sync_failed, report|reason}; sync {uploaded, rejected: [{entity, id, reason}], downloaded, removed, files_uploaded, files_downloaded}; call {result, synced, removed, skipped}; status {server, user_id, roles, model_version, pending_changes, uncommitted_objects, last_sync: {at, mode}}; files {files: [{entity, id, file_name, file_size, path}]}.";

#[derive(Args)]
#[command(after_long_help = DEVICE_JSON)]
pub(crate) struct DeviceArgs {
    /// The device database.
    #[arg(long, env = "FERRY_DEVICE_DB", value_name = "PATH")]
    pub(crate) db: PathBuf,
    /// Encrypt the database with the secret in FILE (or in FERRY_DEVICE_KEY).
    #[arg(long, value_name = "FILE")]
    pub(crate) key_file: Option<String>,
    /// Print one JSON document per command.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: DeviceCommand,
}

#[derive(Subcommand)]
pub(crate) enum DeviceCommand {
    /// Sign in and make the database for the server's model.
    Login(Login),
    /// A new object, uncommitted (kept in PATH.draft.json).
    Create {
        /// The entity.
        entity: String,
        /// MEMBER=VALUE assignments.
        members: Vec<String>,
    },
    /// Change an object, uncommitted (an empty VALUE empties the member).
    Set {
        /// The object's id.
        id: String,
        /// MEMBER=VALUE assignments.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Attach a file's content to a file object, uncommitted.
    Attach {
        /// The file object's id.
        id: String,
        /// The file.
        file: String,
    },
    /// Commit uncommitted objects (all, or these) at once.
    Commit {
        /// Object ids; none commits every uncommitted object.
        ids: Vec<String>,
    },
    /// Drop uncommitted changes (all, or these).
    Rollback {
        /// Object ids; none rolls back every uncommitted object.
        ids: Vec<String>,
    },
    /// Delete an object.
    Delete {
        /// The object's id.
        id: String,
    },
    /// Print the objects of a local query.
    Query(QueryArgs),
    /// Print a query's objects, then again each time they change (in live mode).
    Watch {
        #[command(flatten)]
        query: QueryArgs,
        /// Stop after N result sets.
        #[arg(long, value_name = "N")]
        sets: Option<usize>,
        /// Only local changes: no live mode.
        #[arg(long)]
        offline: bool,
    },
    /// Stay connected: sync when the server says something changed and after local commits.
    Live {
        /// Stop after N syncs.
        #[arg(long, value_name = "N")]
        syncs: Option<usize>,
    },
    /// Synchronize (a progress bar on a terminal).
    Sync {
        /// all, unsynchronized or selected.
        #[arg(long, default_value = "all", value_name = "MODE")]
        mode: String,
        /// An object of a selected sync; give it once per object.
        #[arg(long = "object", value_name = "ID")]
        objects: Vec<String>,
    },
    /// Call a server action with a JSON object of parameters.
    Call {
        /// The action.
        action: String,
        /// Its parameters, a JSON object.
        #[arg(default_value = "{}")]
        parameters: String,
    },
    /// Server, user, model version, pending changes, last sync.
    Status,
    /// File objects and whether their content is on the device.
    Files,
}

#[derive(Args)]
pub(crate) struct Login {
    /// https://host[:port][/prefix] (plain http:// only to this machine).
    #[arg(long, value_name = "URL")]
    pub(crate) server: String,
    /// The user name (the password from standard input, or FERRY_PASSWORD).
    #[arg(long, value_name = "NAME", conflicts_with = "token_stdin")]
    pub(crate) user: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// Sign in with the identity provider's token, read from standard input.
    #[arg(long)]
    pub(crate) token_stdin: bool,
    /// A PEM certificate authority trusted beside the system's, kept for later syncs.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_cert: Option<String>,
}

#[derive(Args)]
pub(crate) struct QueryArgs {
    /// The entity.
    pub(crate) entity: String,
    /// A constraint, e.g. "[Status = 'Open']".
    pub(crate) constraint: Option<String>,
    /// Sort by MEMBER (MEMBER:desc descending); give it once per member.
    #[arg(long = "sort", value_name = "MEMBER[:desc]")]
    pub(crate) sort: Vec<String>,
    /// At most N objects.
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    /// Skip the first N objects.
    #[arg(long, value_name = "N")]
    pub(crate) offset: Option<usize>,
}

#[derive(Args)]
pub(crate) struct AdminArgs {
    /// The server (kept in the session by login).
    #[arg(long, env = "FERRY_SERVER", value_name = "URL")]
    pub(crate) server: Option<String>,
    /// The session file [default: ferry/admin-session.json in $XDG_CONFIG_HOME or ~/.config].
    #[arg(long, value_name = "FILE")]
    pub(crate) session: Option<PathBuf>,
    /// Print the server's answer as it is.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: AdminCommand,
}

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Sign in as an administrator (with --server URL).
    Login {
        /// The administrator's name.
        #[arg(long, value_name = "NAME")]
        user: String,
        /// Read the password from standard input (else FERRY_PASSWORD).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Users and their roles.
    Users,
    /// Add a user, set their roles, disable, enable, or set their password.
    #[command(subcommand)]
    User(AdminUser),
    /// SynchronizationError records, newest first.
    Failures {
        /// Only this entity's.
        #[arg(long, value_name = "ENTITY")]
        entity: Option<String>,
        /// Only this user's.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
    },
    /// One record, with its attempted values.
    Failure {
        /// The record's id.
        id: String,
    },
    /// Apply a record again, once its cause is fixed.
    Replay {
        /// The record's id.
        id: String,
    },
    /// Uploads and syncs, newest first.
    History,
    /// Devices seen, their user and last sync.
    Devices,
}

#[derive(Subcommand)]
pub(crate) enum AdminUser {
    /// Add a user (the password from standard input, or FERRY_PASSWORD).
    Add {
        /// The user's name.
        name: String,
        /// A role; give it once per role.
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's roles (none: their sessions end).
    Roles {
        /// The user's name.
        name: String,
        /// The roles.
        roles: Vec<String>,
    },
    /// A disabled user cannot sign in; their sessions end.
    Disable {
        /// The user's name.
        name: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        /// The user's name.
        name: String,
    },
    /// A new password (standard input, or FERRY_PASSWORD); the user's sessions end.
    Password {
        /// The user's name.
        name: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Args)]
pub(crate) struct BackupArgs {
    /// The directory to write the backup into (made; it must not hold anything yet).
    #[arg(long, value_name = "DIR")]
    pub(crate) to: PathBuf,
    /// The server's options, as `ferry serve` takes them (only the database and files are used).
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Args)]
pub(crate) struct RestoreArgs {
    /// The backup's directory, as `ferry backup --to` made it.
    #[arg(long, value_name = "DIR")]
    pub(crate) from: PathBuf,
    /// The server's options, as `ferry serve` takes them: the database and files to restore
    /// into (an SQLite database must not exist yet), and the model.
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
}

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// Small sizes, to check that the benchmarks run.
    #[arg(long)]
    pub(crate) quick: bool,
    /// Only this scenario (run in a process of its own).
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(crate::bench::SCENARIOS))]
    pub(crate) only: Option<String>,
}
