//! `ferry admin [--server URL] [--session FILE] [--json] COMMAND`: the operator's view of a
//! server: users and roles, `SynchronizationError` records (list, show, replay), the sync
//! history and the devices seen. `login` keeps the server and the session's tokens (an access
//! token, and the refresh token that renews it when it expires) in the session file
//! (`ferry/admin-session.json` in the user's configuration directory, `$XDG_CONFIG_HOME` or
//! `~/.config`, readable by the user only, unless told otherwise); the other commands use it.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use ferry_client::HttpTransport;
use ferry_protocol::endpoint::{self, Endpoint, Route};
use serde_json::{Value as Json, json};

use crate::cli::{AdminArgs, AdminCommand, AdminUser};
use crate::device::{Failure, exit_with, runtime, strs};
use crate::exit;

/// The session file's place in the user's configuration directory.
const SESSION_IN_CONFIG: &str = "ferry/admin-session.json";

/// Where the session is kept when `--session` does not say: the user's configuration directory
/// (`$XDG_CONFIG_HOME`, else `$HOME/.config`), never the directory the command runs in.
fn default_session() -> Result<PathBuf, Failure> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .ok_or_else(|| {
            usage(
                "no configuration directory (set HOME or XDG_CONFIG_HOME), or give --session FILE",
            )
        })?;
    Ok(config.join(SESSION_IN_CONFIG))
}

/// Writes the session readable and writable by its user only: it holds a token.
fn write_session(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
}

struct Admin {
    session: PathBuf,
    server: Option<String>,
    json: bool,
}

pub(crate) fn command(args: AdminArgs) -> ExitCode {
    let json = args.json;
    exit_with(run(args), json)
}

fn usage(message: impl Into<String>) -> Failure {
    Failure { message: message.into(), code: exit::INVALID }
}

fn run(args: AdminArgs) -> Result<(), Failure> {
    let session = match args.session {
        Some(session) => session,
        None => default_session()?,
    };
    let admin = Admin { session, server: args.server, json: args.json };
    runtime()?.block_on(async {
        match &args.command {
            AdminCommand::Login { user, password_stdin } => {
                admin.login(user, *password_stdin).await
            }
            AdminCommand::Users => admin.users().await,
            AdminCommand::User(AdminUser::Add { name, roles, password_stdin }) => {
                admin.add_user(name, &strs(roles), *password_stdin).await
            }
            AdminCommand::User(AdminUser::Roles { name, roles }) => {
                admin.set_roles(name, &strs(roles)).await
            }
            AdminCommand::User(AdminUser::Disable { name }) => admin.set_disabled(name, true).await,
            AdminCommand::User(AdminUser::Enable { name }) => admin.set_disabled(name, false).await,
            AdminCommand::User(AdminUser::Password { name, password_stdin }) => {
                admin.set_password(name, *password_stdin).await
            }
            AdminCommand::Failures { entity, user } => {
                admin.failures(entity.as_deref(), user.as_deref()).await
            }
            AdminCommand::Failure { id } => admin.show(id).await,
            AdminCommand::Replay { id } => admin.replay(id).await,
            AdminCommand::History => admin.history().await,
            AdminCommand::Devices => admin.devices().await,
        }
    })
}

fn read_password(from_stdin: bool) -> Result<String, Failure> {
    if from_stdin {
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .map_err(|e| Failure { message: format!("read the password: {e}"), code: exit::IO })?;
        return Ok(password.trim_end_matches(['\n', '\r']).to_owned());
    }
    std::env::var("FERRY_PASSWORD").map_err(|_| {
        usage("give the password on standard input with --password-stdin, or in FERRY_PASSWORD")
    })
}

/// An error answer as a line to act on and its exit code.
fn refusal(status: u16, body: &[u8]) -> Failure {
    let message = serde_json::from_slice::<Json>(body)
        .ok()
        .and_then(|b| b["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    match status {
        401 => Failure {
            message: format!("{message}: log in again with `ferry admin login`"),
            code: exit::SESSION,
        },
        403 => Failure {
            message: format!("{message}: log in as a user with an administrator role"),
            code: exit::REFUSED,
        },
        400 | 404 | 409 => Failure { message, code: exit::INVALID },
        _ => Failure {
            message: format!("the server answered {status}: {message}"),
            code: exit::REFUSED,
        },
    }
}

impl Admin {
    fn print(&self, people: &str, json: &Json) {
        if self.json {
            println!("{json}");
        } else {
            println!("{people}");
        }
    }

    /// The server and the session (its access token and refresh token).
    fn session(&self) -> Result<(String, Json), Failure> {
        let not_logged_in = || Failure {
            message: format!(
                "no session in {}: log in with `ferry admin --server URL login --user NAME`",
                self.session.display()
            ),
            code: exit::SESSION,
        };
        let text = std::fs::read_to_string(&self.session).map_err(|_| not_logged_in())?;
        let session: Json = serde_json::from_str(&text).map_err(|_| not_logged_in())?;
        let server = self
            .server
            .clone()
            .or_else(|| session["server"].as_str().map(str::to_owned))
            .ok_or_else(not_logged_in)?;
        session["token"].as_str().ok_or_else(not_logged_in)?;
        Ok((server, session))
    }

    /// Writes the session file.
    fn keep(&self, session: &Json) -> Result<(), Failure> {
        write_session(&self.session, &session.to_string()).map_err(|e| Failure {
            message: format!("{}: {e}", self.session.display()),
            code: exit::IO,
        })
    }

    /// Spends the session's refresh token for the next access token, kept in the session file
    /// with the next refresh token; `None` when the session has none or the server refused it.
    async fn refresh(
        &self,
        transport: &HttpTransport,
        session: &mut Json,
    ) -> Result<Option<String>, Failure> {
        let Some(refresh_token) = session["refresh_token"].as_str() else {
            return Ok(None);
        };
        let body = json!({ "refresh_token": refresh_token }).to_string();
        let path = endpoint::Refresh::ROUTE.path(&[]);
        let answer = transport.request("POST", &path, None, body.as_bytes()).await?;
        if answer.status != 200 {
            return Ok(None);
        }
        let signed: Json = serde_json::from_slice(&answer.body).unwrap_or_default();
        let Some(token) = signed["token"].as_str().map(str::to_owned) else {
            return Ok(None);
        };
        session["token"] = signed["token"].clone();
        session["refresh_token"] = signed["refresh_token"].clone();
        self.keep(session)?;
        Ok(Some(token))
    }

    async fn call(&self, route: Route, path: &str, body: Option<Json>) -> Result<Json, Failure> {
        let method = route.method.as_str();
        let (server, mut session) = self.session()?;
        let transport = HttpTransport::new(&server)?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let token = session["token"].as_str().unwrap_or_default().to_owned();
        let mut answer = transport.request(method, path, Some(&token), body.as_bytes()).await?;
        // An access token past its lifetime: the refresh token gets the next, once.
        if answer.status == 401
            && let Some(token) = self.refresh(&transport, &mut session).await?
        {
            answer = transport.request(method, path, Some(&token), body.as_bytes()).await?;
        }
        if answer.status != 200 {
            return Err(refusal(answer.status, &answer.body));
        }
        serde_json::from_slice(&answer.body).map_err(|e| Failure {
            message: format!("the server's answer is not JSON: {e}"),
            code: exit::REFUSED,
        })
    }

    async fn login(&self, user: &str, stdin: bool) -> Result<(), Failure> {
        let server = self.server.as_deref().ok_or_else(|| usage("login needs --server URL"))?;
        let password = read_password(stdin)?;
        let transport = HttpTransport::new(server)?;
        let body = json!({ "user": user, "password": password }).to_string();
        let answer = transport
            .request("POST", &endpoint::SignIn::ROUTE.path(&[]), None, body.as_bytes())
            .await?;
        if answer.status == 401 {
            return Err(Failure {
                message: "wrong user name or password: check them and log in again".to_owned(),
                code: exit::SIGN_IN,
            });
        }
        if answer.status != 200 {
            return Err(refusal(answer.status, &answer.body));
        }
        let signed: Json = serde_json::from_slice(&answer.body).unwrap_or_default();
        let session = json!({
            "server": server,
            "token": signed["token"],
            "refresh_token": signed["refresh_token"],
            "user": user,
        });
        self.keep(&session)?;
        let roles = signed["roles"].as_array().cloned().unwrap_or_default();
        let roles: Vec<&str> = roles.iter().filter_map(Json::as_str).collect();
        self.print(
            &format!(
                "logged in as {user} ({}) at {server}; session in {}",
                roles.join(", "),
                self.session.display()
            ),
            &json!({ "user": user, "roles": roles, "server": server }),
        );
        Ok(())
    }

    async fn users(&self) -> Result<(), Failure> {
        let list = self.call(endpoint::USERS, &endpoint::USERS.path(&[]), None).await?;
        let rows: Vec<Vec<String>> = list["users"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| vec![text(&u["name"]), roles(&u["roles"]), text(&u["id"])])
            .collect();
        self.print(&table(&["user", "roles", "id"], rows, "users"), &list);
        Ok(())
    }

    async fn add_user(&self, name: &str, roles: &[&str], stdin: bool) -> Result<(), Failure> {
        let password = read_password(stdin)?;
        let body = json!({ "name": name, "password": password, "roles": roles });
        let user = self.call(endpoint::USER_ADD, &endpoint::USER_ADD.path(&[]), Some(body)).await?;
        self.print(&format!("added {name} ({}) {}", roles.join(", "), text(&user["id"])), &user);
        Ok(())
    }

    async fn set_roles(&self, name: &str, new_roles: &[&str]) -> Result<(), Failure> {
        let path = endpoint::USER_ROLES.path(&[name]);
        let user =
            self.call(endpoint::USER_ROLES, &path, Some(json!({ "roles": new_roles }))).await?;
        self.print(&format!("{name} now has roles: {}", roles(&user["roles"])), &user);
        Ok(())
    }

    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<(), Failure> {
        let path = endpoint::USER_DISABLED.path(&[name]);
        let body = json!({ "disabled": disabled });
        let user = self.call(endpoint::USER_DISABLED, &path, Some(body)).await?;
        let done = match disabled {
            true => "disabled: their sessions ended, and they cannot sign in",
            false => "enabled: they can sign in again",
        };
        self.print(&format!("{name} is {done}"), &user);
        Ok(())
    }

    async fn set_password(&self, name: &str, from_stdin: bool) -> Result<(), Failure> {
        let password = read_password(from_stdin)?;
        let path = endpoint::USER_PASSWORD.path(&[name]);
        let body = json!({ "password": password });
        let user = self.call(endpoint::USER_PASSWORD, &path, Some(body)).await?;
        self.print(&format!("{name} has a new password: their sessions ended"), &user);
        Ok(())
    }

    async fn failures(&self, entity: Option<&str>, user: Option<&str>) -> Result<(), Failure> {
        let mut query = Vec::new();
        if let Some(entity) = entity {
            query.push(format!("entity={entity}"));
        }
        if let Some(user) = user {
            query.push(format!("user={user}"));
        }
        let path = match query.is_empty() {
            true => endpoint::FAILURES.path(&[]),
            false => format!("{}?{}", endpoint::FAILURES.path(&[]), query.join("&")),
        };
        let list = self.call(endpoint::FAILURES, &path, None).await?;
        let rows: Vec<Vec<String>> = list["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                let replayed = if f["replayed_at"].is_null() { "" } else { " (replayed)" };
                vec![
                    f["id"].to_string(),
                    format!("{} {}", text(&f["kind"]), text(&f["entity"])),
                    text(&f["user"]),
                    seconds(&text(&f["at"])),
                    format!("{}{replayed}", text(&f["reason"])),
                ]
            })
            .collect();
        let headers = ["id", "change", "by", "at", "reason"];
        self.print(&table(&headers, rows, "failures"), &list);
        Ok(())
    }

    async fn show(&self, id: &str) -> Result<(), Failure> {
        let id: i64 = id.parse().map_err(|_| usage(format!("`{id}` is not a failure id")))?;
        let failure =
            self.call(endpoint::FAILURE, &endpoint::FAILURE.path(&[&id.to_string()]), None).await?;
        let people = format!(
            "failure {id}: {} {} {}\nuser: {}\nupload: {}\nat: {}\nreason: {}\nattempted: {}\nreplayed: {}",
            text(&failure["kind"]),
            text(&failure["entity"]),
            text(&failure["object_id"]),
            text(&failure["user"]),
            text(&failure["upload_id"]),
            text(&failure["at"]),
            text(&failure["reason"]),
            failure["attempted"],
            match (failure["replayed_at"].as_str(), failure["replayed_by"].as_str()) {
                (Some(at), Some(by)) => format!("{at} by {by}"),
                (Some(at), None) => at.to_owned(),
                _ => "no".to_owned(),
            },
        );
        let people = match failure.get("replayed_values") {
            Some(values) => format!("{people}\ncorrected: {values}"),
            None => people,
        };
        let people = match failure.get("current") {
            Some(current) => format!("{people}\ncurrent: {current}"),
            None => format!("{people}\ncurrent: none (the object is not on the server)"),
        };
        self.print(&people, &failure);
        Ok(())
    }

    async fn replay(&self, id: &str) -> Result<(), Failure> {
        let id: i64 = id.parse().map_err(|_| usage(format!("`{id}` is not a failure id")))?;
        let replayed = self
            .call(
                endpoint::FAILURE_REPLAY,
                &endpoint::FAILURE_REPLAY.path(&[&id.to_string()]),
                None,
            )
            .await?;
        let outcome = &replayed["outcome"];
        let people = match text(&outcome["outcome"]).as_str() {
            "failed" => format!("failure {id} failed again: {}", text(&outcome["reason"])),
            other => format!("failure {id} replayed: {other}"),
        };
        self.print(&people, &replayed);
        if outcome["outcome"] == "failed" {
            return Err(Failure {
                message: format!("failure {id} is still refused"),
                code: exit::REFUSED,
            });
        }
        Ok(())
    }

    async fn history(&self) -> Result<(), Failure> {
        let list = self.call(endpoint::HISTORY, &endpoint::HISTORY.path(&[]), None).await?;
        let rows: Vec<Vec<String>> = list["entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                vec![
                    seconds(&text(&e["at"])),
                    format!("{} on {}", text(&e["user"]), text(&e["device"])),
                    text(&e["mode"]),
                    e["objects_up"].to_string(),
                    e["objects_down"].to_string(),
                    e["errors"].to_string(),
                    e["duration_ms"].to_string(),
                ]
            })
            .collect();
        let headers = ["at", "who", "mode", "up", "down", "errors", "ms"];
        self.print(&table(&headers, rows, "history entries"), &list);
        Ok(())
    }

    async fn devices(&self) -> Result<(), Failure> {
        let list = self.call(endpoint::DEVICES, &endpoint::DEVICES.path(&[]), None).await?;
        let rows: Vec<Vec<String>> = list["devices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                vec![
                    text(&d["device"]),
                    text(&d["user"]),
                    d["syncs"].to_string(),
                    format!("{} ({})", seconds(&text(&d["last_sync_at"])), text(&d["last_mode"])),
                ]
            })
            .collect();
        let headers = ["device", "used by", "syncs", "last sync"];
        self.print(&table(&headers, rows, "devices"), &list);
        Ok(())
    }
}

fn text(json: &Json) -> String {
    json.as_str().map_or_else(|| json.to_string(), str::to_owned)
}

fn roles(json: &Json) -> String {
    let names: Vec<String> = json.as_array().into_iter().flatten().map(text).collect();
    names.join(", ")
}

/// A time to the second, as a table shows it (`2026-12-04 19:13:34`); `admin failure ID` and
/// `--json` give it whole.
fn seconds(time: &str) -> String {
    time.get(..19).map_or_else(|| time.to_owned(), |head| head.replacen('T', " ", 1))
}

/// The width admin tables fit in, in columns: a terminal's least.
pub(crate) const TABLE_COLUMNS: u16 = 80;

/// Rows under their headers, wrapped to fit [`TABLE_COLUMNS`], then their count.
fn table(headers: &[&str], rows: Vec<Vec<String>>, what: &str) -> String {
    let count = rows.len();
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::presets::UTF8_HORIZONTAL_ONLY)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_width(TABLE_COLUMNS)
        .set_header(headers.iter().copied())
        .add_rows(rows);
    format!("{table}\n{count} {what}")
}
