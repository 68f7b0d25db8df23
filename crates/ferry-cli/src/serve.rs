//! `ferry serve` and `ferry user add`: run the server on a model and a database, and manage
//! its users. SQLite in `./ferry-data/` is the default database.

use std::io::Read as _;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use ferry_server::{Config, Database, Handlers, IdentityProvider, Limits, Server, SystemClock};

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
    roles: Vec<String>,
    password_stdin: bool,
    limits: Limits,
    /// The PEM certificate chain and private key to serve HTTPS with.
    tls: Option<(String, String)>,
    /// The identity provider whose tokens sign users in.
    identity: Option<IdentityProvider>,
    /// A web app's directory, served beside the API.
    app: Option<std::path::PathBuf>,
}

fn options(args: &[&str]) -> Result<Options, String> {
    let mut model = None;
    let mut database = DEFAULT_DATABASE.to_owned();
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut files = None;
    let mut app = None;
    let mut roles = Vec::new();
    let mut password_stdin = false;
    let mut limits = Limits::default();
    let (mut tls_cert, mut tls_key) = (None, None);
    let mut idp = Idp::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().map(|v| (*v).to_owned()).ok_or_else(|| format!("{name} needs a value"))
        };
        match *arg {
            "--model" => model = Some(value("--model")?),
            "--database" => database = value("--database")?,
            "--listen" => listen = value("--listen")?,
            "--files" => files = Some(value("--files")?.into()),
            "--app" => app = Some(app_dir(value("--app")?)?),
            "--role" => roles.push(value("--role")?),
            "--password-stdin" => password_stdin = true,
            "--connections-max" => limits.connections_max = count("--connections-max", value)?,
            "--requests-in-flight-max" => {
                limits.requests_in_flight_max = count("--requests-in-flight-max", value)?;
            }
            "--upload-retention-days" => {
                limits.upload_retention_days = count("--upload-retention-days", value)? as i64;
            }
            "--access-token-seconds" => {
                let seconds = count("--access-token-seconds", value)?;
                limits.access_token_lifetime_seconds = seconds as i64;
            }
            "--refresh-token-days" => {
                let days = count("--refresh-token-days", value)? as i64;
                limits.refresh_token_lifetime_seconds = days.saturating_mul(86_400);
            }
            "--tls-cert" => tls_cert = Some(value("--tls-cert")?),
            "--tls-key" => tls_key = Some(value("--tls-key")?),
            "--idp-jwks-url" => idp.jwks_url = Some(value("--idp-jwks-url")?),
            "--idp-issuer" => idp.issuer = Some(value("--idp-issuer")?),
            "--idp-audience" => idp.audience = Some(value("--idp-audience")?),
            "--idp-user-claim" => idp.user_claim = Some(value("--idp-user-claim")?),
            "--idp-roles-claim" => idp.roles_claim = Some(value("--idp-roles-claim")?),
            "--idp-ca-cert" => idp.authorities = Some(value("--idp-ca-cert")?),
            "--handler-timeout-ms" => {
                limits.handler_timeout_ms = count("--handler-timeout-ms", value)? as u64;
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    let model = model.ok_or("--model FILE is required")?;
    let database = Database::parse(&database)?;
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".to_owned()),
    };
    let identity = idp.provider()?;
    Ok(Options {
        model,
        database,
        files,
        listen,
        roles,
        password_stdin,
        limits,
        tls,
        identity,
        app,
    })
}

/// The directory `--app` names: it must hold an `index.html`.
fn app_dir(path: String) -> Result<std::path::PathBuf, String> {
    let dir = std::path::PathBuf::from(&path);
    match dir.join("index.html").is_file() {
        true => Ok(dir),
        false => {
            Err(format!("--app {path}: no index.html in that directory (build the app first)"))
        }
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

/// A positive whole number given to `flag`.
fn count(flag: &str, value: impl FnOnce(&str) -> Result<String, String>) -> Result<usize, String> {
    let text = value(flag)?;
    text.parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag} takes a positive whole number, not `{text}`"))
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

pub(crate) fn serve(args: &[&str]) -> ExitCode {
    let options = match options(args) {
        Ok(options) => options,
        Err(message) => return usage_error(&message),
    };
    runtime().block_on(async {
        let server = match open(&options).await {
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
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match ferry_server::serve_with(listener, server, tls, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: serve: {error}");
                ExitCode::from(EXIT_IO)
            }
        }
    })
}

pub(crate) fn add_user(name: &str, args: &[&str]) -> ExitCode {
    let options = match options(args) {
        Ok(options) => options,
        Err(message) => return usage_error(&message),
    };
    if options.roles.is_empty() {
        return usage_error("give at least one --role ROLE");
    }
    if !options.password_stdin {
        return usage_error(
            "--password-stdin is required: the password is read from standard input",
        );
    }
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
        match server.add_user(name, &options.roles, password).await {
            Ok(id) => {
                println!("user {name} ({}) added with id {id}", options.roles.join(", "));
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
    eprintln!("error: {message}\n{}", crate::USAGE);
    ExitCode::from(EXIT_INVALID)
}
