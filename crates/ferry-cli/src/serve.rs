//! `ferry serve` and `ferry user add`: run the server on a model and a database, and manage
//! its users. SQLite in `./ferry-data/` is the default database.

use std::io::Read as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use ferry_server::{Config, Database, Handlers, IdentityProvider, Limits, Server, SystemClock};

use crate::cli::{ServeArgs, ServerOptions, UserAdd};
use crate::{EXIT_INVALID, EXIT_IO};

/// The database used when none is named.
const DEFAULT_DATABASE: &str = "sqlite:ferry-data/ferry.db";
/// The address served when none is named.
const DEFAULT_LISTEN: &str = "127.0.0.1:8750";

/// Options shared by the commands that open the server's database.
struct Options {
    model: String,
    database: Database,
    /// The directory of file contents; beside the database when not named.
    files: Option<std::path::PathBuf>,
    listen: String,
    limits: Limits,
    /// The PEM certificate chain and private key to serve HTTPS with.
    tls: Option<(String, String)>,
    /// The identity provider whose tokens sign users in.
    identity: Option<IdentityProvider>,
    /// A web app's directory, served beside the API.
    app: Option<std::path::PathBuf>,
    /// What to log, and how.
    log: (String, crate::logging::LogFormat),
    /// The OpenTelemetry collector the spans also go to.
    otlp_endpoint: Option<String>,
}

/// The options given (flags, then environment variables, then the configuration file), with
/// the defaults for the rest.
/// The options given: flags and environment variables, then the configuration file.
pub(crate) fn given(args: ServeArgs) -> Result<ServerOptions, String> {
    Ok(match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--config {}: {e}", path.display()))?;
            let file: ServerOptions =
                toml::from_str(&text).map_err(|e| format!("--config {}: {e}", path.display()))?;
            args.options.or(file)
        }
        None => args.options,
    })
}

/// The server's database and file directory, as the options name them (or the defaults).
pub(crate) fn storage(given: &ServerOptions) -> Result<(Database, std::path::PathBuf), String> {
    let database = Database::parse(given.database.as_deref().unwrap_or(DEFAULT_DATABASE))?;
    let files = given.files.clone().unwrap_or_else(|| database.default_files());
    Ok((database, files))
}

fn options(args: ServeArgs) -> Result<Options, String> {
    let given = given(args)?;
    let model =
        given.model.ok_or("--model FILE is required (or FERRY_MODEL, or `model` in --config)")?;
    let database = Database::parse(given.database.as_deref().unwrap_or(DEFAULT_DATABASE))?;
    let mut limits = Limits::default();
    if let Some(n) = given.connections_max {
        limits.connections_max = positive("--connections-max", n)?;
    }
    if let Some(n) = given.requests_in_flight_max {
        limits.requests_in_flight_max = positive("--requests-in-flight-max", n)?;
    }
    if let Some(days) = given.upload_retention_days {
        limits.upload_retention_days = positive("--upload-retention-days", days as usize)? as i64;
    }
    if let Some(days) = given.deletion_horizon_days {
        limits.deletion_horizon_days = positive("--deletion-horizon-days", days as usize)? as i64;
    }
    if let Some(days) = given.history_retention_days {
        limits.history_retention_days = positive("--history-retention-days", days as usize)? as i64;
    }
    if let Some(days) = given.failure_retention_days {
        limits.failure_retention_days = positive("--failure-retention-days", days as usize)? as i64;
    }
    if let Some(hours) = given.file_grace_hours {
        limits.file_grace_hours = positive("--file-grace-hours", hours as usize)? as i64;
    }
    if let Some(seconds) = given.access_token_seconds {
        let seconds = positive("--access-token-seconds", seconds as usize)?;
        limits.access_token_lifetime_seconds = seconds as i64;
    }
    if let Some(days) = given.refresh_token_days {
        let days = positive("--refresh-token-days", days as usize)? as i64;
        limits.refresh_token_lifetime_seconds = days.saturating_mul(86_400);
    }
    if let Some(ms) = given.shutdown_grace_ms {
        limits.shutdown_grace_ms = ms;
    }
    if let Some(ms) = given.handler_timeout_ms {
        limits.handler_timeout_ms = positive("--handler-timeout-ms", ms as usize)? as u64;
    }
    let tls = match (given.tls_cert, given.tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".to_owned()),
    };
    let idp = Idp {
        jwks_url: given.idp_jwks_url,
        issuer: given.idp_issuer,
        audience: given.idp_audience,
        user_claim: given.idp_user_claim,
        roles_claim: given.idp_roles_claim,
        authorities: given.idp_ca_cert,
    };
    let identity = idp.provider()?;
    let app = given.app.map(app_dir).transpose()?;
    let listen = given.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let log = given.log.unwrap_or_else(|| crate::logging::DEFAULT_LOG.to_owned());
    let log = (log, given.log_format.unwrap_or_default());
    let otlp_endpoint = given.otlp_endpoint;
    let files = given.files;
    Ok(Options { model, database, files, listen, limits, tls, identity, app, log, otlp_endpoint })
}

/// The directory `--app` names: it must hold an `index.html`.
fn app_dir(dir: std::path::PathBuf) -> Result<std::path::PathBuf, String> {
    match dir.join("index.html").is_file() {
        true => Ok(dir),
        false => Err(format!(
            "--app {}: no index.html in that directory (build the app first)",
            dir.display()
        )),
    }
}

/// The `--idp-…` options as given.
#[derive(Default)]
struct Idp {
    jwks_url: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    user_claim: Option<String>,
    roles_claim: Option<String>,
    authorities: Option<String>,
}

impl Idp {
    /// The provider, when its key set, issuer and audience are all given (or none of them).
    fn provider(self) -> Result<Option<IdentityProvider>, String> {
        let (url, issuer, audience) = match (self.jwks_url, self.issuer, self.audience) {
            (Some(url), Some(issuer), Some(audience)) => (url, issuer, audience),
            (None, None, None) => {
                let rest = [&self.user_claim, &self.roles_claim, &self.authorities];
                return match rest.iter().any(|o| o.is_some()) {
                    true => Err("the --idp-… options need --idp-jwks-url".to_owned()),
                    false => Ok(None),
                };
            }
            _ => {
                return Err(
                    "--idp-jwks-url, --idp-issuer and --idp-audience go together".to_owned()
                );
            }
        };
        let mut provider = IdentityProvider::new(&url, &issuer, &audience);
        provider.user_claim = self.user_claim.unwrap_or(provider.user_claim);
        provider.roles_claim = self.roles_claim.unwrap_or(provider.roles_claim);
        if let Some(file) = self.authorities {
            let pem = std::fs::read(&file).map_err(|e| format!("--idp-ca-cert `{file}`: {e}"))?;
            provider.authorities = Some(pem);
        }
        Ok(Some(provider))
    }
}

/// The TLS identity of the PEM files given to `--tls-cert` and `--tls-key`.
fn tls_identity(cert: &str, key: &str) -> Result<ferry_server::Tls, String> {
    let read = |path: &str| std::fs::read(path).map_err(|e| format!("read `{path}`: {e}"));
    ferry_server::Tls::from_pem(&read(cert)?, &read(key)?)
        .map_err(|reason| format!("--tls-cert {cert} --tls-key {key}: {reason}"))
}

/// A number given to `flag`, which must be positive.
fn positive(flag: &str, n: usize) -> Result<usize, String> {
    match n {
        0 => Err(format!("{flag} takes a positive whole number, not 0")),
        n => Ok(n),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the runtime starts")
}

/// Opens the server the options describe; a failure is reported and becomes the exit code.
async fn open(options: &Options) -> Result<Server, ExitCode> {
    let opened = async {
        let model_text = std::fs::read_to_string(&options.model)
            .with_context(|| format!("read model file {}", options.model))?;
        let config = Config {
            model_text,
            database: options.database.clone(),
            files: options.files.clone().unwrap_or_else(|| options.database.default_files()),
            limits: options.limits.clone(),
            handlers: Handlers::default(),
            clock: Arc::new(SystemClock),
            identity: options.identity.clone(),
            app: options.app.clone(),
        };
        Server::open(config).await.context("open the server")
    };
    opened.await.map_err(|error: anyhow::Error| {
        eprintln!("error: {error:#}");
        ExitCode::from(EXIT_IO)
    })
}

/// Opens the server the options name and marks its data as restored from a backup (see
/// `Server::mark_restored`): gives the new epoch and the restores, oldest first.
pub(crate) fn mark_restored(
    args: ServeArgs,
) -> Result<(String, Vec<ferry_protocol::RestorePoint>), ExitCode> {
    let options = options(args).map_err(|message| usage_error(&message))?;
    runtime().block_on(async {
        let server = open(&options).await?;
        server.mark_restored().await.map_err(|error| {
            eprintln!("error: mark the data restored: {error}");
            ExitCode::from(EXIT_IO)
        })
    })
}

pub(crate) fn serve(args: ServeArgs) -> ExitCode {
    let options = match options(args) {
        Ok(options) => options,
        Err(message) => return usage_error(&message),
    };
    let runtime = runtime();
    let export = match &options.otlp_endpoint {
        Some(endpoint) => match ferry_server::OtlpExport::start(endpoint, runtime.handle().clone())
        {
            Ok(export) => Some(export),
            Err(message) => return usage_error(&message),
        },
        None => None,
    };
    let tracer = export.as_ref().map(ferry_server::OtlpExport::tracer);
    if let Err(message) = crate::logging::init(&options.log.0, options.log.1, tracer) {
        return usage_error(&message);
    }
    let code = runtime.block_on(serve_on(&options));
    // The spans not yet sent go before the process ends.
    if let Some(Err(message)) = export.map(|export| export.shutdown()) {
        eprintln!("warning: {message}");
    }
    code
}

async fn serve_on(options: &Options) -> ExitCode {
    let server = match open(options).await {
        Ok(server) => server,
        Err(code) => return code,
    };
    let listener = match tokio::net::TcpListener::bind(&options.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: listen on {}: {error}", options.listen);
            return ExitCode::from(EXIT_IO);
        }
    };
    let tls = match &options.tls {
        Some((cert, key)) => match tls_identity(cert, key) {
            Ok(tls) => Some(tls),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(EXIT_INVALID);
            }
        },
        None => None,
    };
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let version = server.model().version();
    println!("ferry: serving model version {version} on {scheme}://{address}");
    tracing::info!(%version, %scheme, %address, "serving");
    let shutdown = stop_signal();
    match ferry_server::serve_with(listener, server, tls, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: serve: {error}");
            ExitCode::from(EXIT_IO)
        }
    }
}

/// Completes at SIGTERM (what service managers send) or Ctrl-C; either stops the server
/// gracefully, and the process exits 0.
async fn stop_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match &mut terminate {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; stopping"),
        () = terminated => tracing::info!("SIGTERM; stopping"),
    }
}

pub(crate) fn add_user(args: UserAdd) -> ExitCode {
    let UserAdd { name, roles, serve, .. } = args;
    let options = match options(serve) {
        Ok(options) => options,
        Err(message) => return usage_error(&message),
    };
    let mut password = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut password) {
        eprintln!("error: read the password from standard input: {error}");
        return ExitCode::from(EXIT_IO);
    }
    let password = password.trim_end_matches(['\n', '\r']);
    runtime().block_on(async {
        let server = match open(&options).await {
            Ok(server) => server,
            Err(code) => return code,
        };
        match server.add_user(&name, &roles, password).await {
            Ok(id) => {
                println!("user {name} ({}) added with id {id}", roles.join(", "));
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::from(EXIT_INVALID)
            }
        }
    })
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("error: {message} (see `ferry serve --help`)");
    ExitCode::from(EXIT_INVALID)
}
