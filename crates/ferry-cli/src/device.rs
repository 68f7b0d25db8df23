//! `ferry device --db PATH [--json] COMMAND`: a device database driven from the command line,
//! as an app drives it. Uncommitted objects live in the app between calls; here the app's memory
//! is a file beside the database (`PATH.draft.json`), until `commit` writes them or `rollback`
//! drops them.
//!
//! Output is for people by default; `--json` prints one JSON document per command with stable
//! field names (see `ferry device --help`). Errors are one line on standard error, with an exit code per kind.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use ferry_client::{
    ClientError, Credential, Database, DeviceKey, FullSyncDue, LiveEvent, LiveOptions, Object,
    Phase, Progress, Query, SyncEngine, SyncError, SyncMode, SyncOptions, SyncReport,
};
use ferry_model::{EntityKind, ObjectId, Value};
use ferry_protocol::value;
use serde_json::{Value as Json, json};

use crate::cli::{DeviceArgs, DeviceCommand, Login, QueryArgs};
use crate::exit;

/// The options every device command shares.
struct Device {
    path: PathBuf,
    json: bool,
    /// The key of an encrypted device database.
    key: Option<DeviceKey>,
}

/// A failure of a device command: the line to print and the exit code.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), code: exit::INVALID }
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        let code = match &error {
            ClientError::BreakingModel { .. } => exit::MODEL,
            ClientError::Database(_) | ClientError::Files(_) | ClientError::Corrupt(_) => exit::IO,
            ClientError::NoDatabase { .. } => exit::SESSION,
            ClientError::WrongKey { .. } | ClientError::KeyTooShort { .. } => exit::KEY,
            _ => exit::INVALID,
        };
        let message = match &error {
            ClientError::BreakingModel { plan } => format!(
                "the server's model changed in a way this device cannot follow; sync what is pending on a device with the old model, then log in with a new --db\n{plan}"
            ),
            ClientError::Database(_) | ClientError::Files(_) => format!(
                "{error}; check that the device's disk has room and its files can be written (what was committed is kept)"
            ),
            other => other.to_string(),
        };
        Failure { message, code }
    }
}

impl From<SyncError> for Failure {
    fn from(error: SyncError) -> Failure {
        let code = match &error {
            SyncError::Unreachable { .. } => exit::UNREACHABLE,
            SyncError::Certificate { .. } => exit::CERTIFICATE,
            SyncError::NotSignedIn { .. } => exit::SESSION,
            SyncError::AlreadyRunning => exit::BUSY,
            SyncError::BadServer { .. }
            | SyncError::Integrity { .. }
            | SyncError::SelectionIntegrity { .. } => exit::INVALID,
            SyncError::AnotherUsersChanges { .. } | SyncError::Protocol { .. } => {
                exit::REFUSED_HERE
            }
            SyncError::Local(_) => exit::IO,
            _ => exit::REFUSED,
        };
        let message = match error {
            SyncError::Local(local) => return Failure::from(local),
            SyncError::NotSignedIn { message } => format!(
                "not signed in, or the session expired ({message}): log in again with `ferry device --db PATH login`"
            ),
            SyncError::AnotherUsersChanges { count } => format!(
                "this device refuses to switch users: {count} changes of the user signed in before are not uploaded yet; log in as that user and sync first, so nothing is lost"
            ),
            other => other.to_string(),
        };
        Failure { message, code }
    }
}

pub(crate) fn command(args: DeviceArgs) -> ExitCode {
    let json = args.json;
    exit_with(run(args), json)
}

/// The exit of a command: its failure printed as one line, with its code; with `--json`, also
/// as a JSON document on standard output, for scripts.
pub(crate) fn exit_with(result: Result<(), Failure>, json: bool) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            if json {
                let code = exit::name(failure.code);
                let error =
                    json!({ "code": code, "message": failure.message, "exit_code": failure.code });
                println!("{}", json!({ "error": error }));
            }
            ExitCode::from(failure.code)
        }
    }
}

/// The runtime a command's requests run on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure { message: format!("start the runtime: {e}"), code: exit::IO })
}

/// What `login` was given: the server, the user (none for a token), the password or token, and
/// the certificate authority's file.
struct LoginOptions<'a> {
    server: &'a str,
    user: Option<&'a str>,
    secret: String,
    authority: Option<&'a str>,
}

fn login_options(login: &Login) -> Result<LoginOptions<'_>, Failure> {
    let (user, stdin, token_stdin) =
        (login.user.as_deref(), login.password_stdin, login.token_stdin);
    let read_stdin = |what: &str| {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure { message: format!("read the {what}: {e}"), code: exit::IO })?;
        Ok::<_, Failure>(text.trim_end_matches(['\n', '\r']).to_owned())
    };
    let secret = match (token_stdin, user, stdin) {
        (true, None, false) => read_stdin("identity token")?,
        (true, _, _) => {
            return Err(Failure::usage(
                "--token-stdin signs in with the token alone: no --user or --password-stdin",
            ));
        }
        (false, None, _) => {
            return Err(Failure::usage("login needs --user NAME (or --token-stdin)"));
        }
        (false, Some(_), true) => read_stdin("password")?,
        (false, Some(_), false) => std::env::var("FERRY_PASSWORD").map_err(|_| {
            Failure::usage(
                "give the password on standard input with --password-stdin, or in FERRY_PASSWORD",
            )
        })?,
    };
    let (server, authority) = (login.server.as_str(), login.ca_cert.as_deref());
    Ok(LoginOptions { server, user, secret, authority })
}

/// The device key of `--key-file FILE` (its secret, trailing line end aside), else of
/// `FERRY_DEVICE_KEY`; none when neither is given.
fn device_key(file: Option<&str>) -> Result<Option<DeviceKey>, Failure> {
    let secret = match file {
        Some(file) => {
            let bytes = std::fs::read(file).map_err(|e| Failure {
                message: format!("read the device key `{file}`: {e}"),
                code: exit::IO,
            })?;
            let end = bytes.iter().rposition(|b| !matches!(b, b'\n' | b'\r')).map_or(0, |i| i + 1);
            bytes[..end].to_vec()
        }
        None => match std::env::var("FERRY_DEVICE_KEY") {
            Ok(secret) => secret.into_bytes(),
            Err(_) => return Ok(None),
        },
    };
    Ok(Some(DeviceKey::from_secret(&secret)?))
}

/// Arguments as the commands take them.
pub(crate) fn strs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

fn run(args: DeviceArgs) -> Result<(), Failure> {
    let key = device_key(args.key_file.as_deref())?;
    let device = Device { path: args.db, json: args.json, key };
    runtime()?.block_on(async {
        match &args.command {
            DeviceCommand::Login(login) => device.login(login).await,
            DeviceCommand::Create { entity, members } => device.create(entity, &strs(members)),
            DeviceCommand::Set { id, members } => device.set(id, &strs(members)),
            DeviceCommand::Attach { id, file } => device.attach(id, file),
            DeviceCommand::Commit { ids } => device.commit(&strs(ids)),
            DeviceCommand::Rollback { ids } => device.rollback(&strs(ids)),
            DeviceCommand::Delete { id } => device.delete(id),
            DeviceCommand::Query(query) => device.query(query),
            DeviceCommand::Watch { query, sets, offline } => {
                device.watch(query, *sets, *offline).await
            }
            DeviceCommand::Live { syncs } => device.live(*syncs).await,
            DeviceCommand::Sync { mode, objects } => device.sync(mode, objects).await,
            DeviceCommand::Call { action, parameters } => device.call(action, parameters).await,
            DeviceCommand::Status => device.status(),
            DeviceCommand::Files => device.files(),
        }
    })
}

/// The uncommitted objects of the command line's "app", kept beside the database. They belong
/// to the user who made them: another user signed in on the database never sees them.
#[derive(Default)]
struct Drafts {
    /// Who made them.
    user: Option<ObjectId>,
    /// Per object id: its entity, whether it is new, and the members changed, as JSON values.
    objects: BTreeMap<ObjectId, (String, bool, serde_json::Map<String, Json>)>,
}

impl Drafts {
    /// The drafts of `user`: none when the file belongs to someone else.
    fn of(path: &Path, user: Option<ObjectId>) -> Result<Drafts, Failure> {
        let drafts = Drafts::load(path)?;
        // Drafts kept before they named their user are the signed-in user's.
        if drafts.user == user || drafts.user.is_none() {
            return Ok(Drafts { user, ..drafts });
        }
        Ok(Drafts { user, objects: BTreeMap::new() })
    }

    fn load(path: &Path) -> Result<Drafts, Failure> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Drafts::default());
            }
            Err(error) => return Err(io_failure(path, &error)),
        };
        let parsed: Json = serde_json::from_str(&text)
            .map_err(|e| Failure { message: format!("{}: {e}", path.display()), code: exit::IO })?;
        let mut drafts = Drafts {
            user: parsed["user"].as_str().and_then(ObjectId::parse),
            objects: BTreeMap::new(),
        };
        for entry in parsed["objects"].as_array().into_iter().flatten() {
            let id = entry["id"].as_str().and_then(ObjectId::parse);
            let entity = entry["entity"].as_str();
            if let (Some(id), Some(entity)) = (id, entity) {
                let changes = entry["changes"].as_object().cloned().unwrap_or_default();
                let new = entry["new"].as_bool().unwrap_or(false);
                drafts.objects.insert(id, (entity.to_owned(), new, changes));
            }
        }
        Ok(drafts)
    }

    fn save(&self, path: &Path) -> Result<(), Failure> {
        let objects: Vec<Json> = self
            .objects
            .iter()
            .map(|(id, (entity, new, changes))| {
                json!({ "entity": entity, "id": id.to_string(), "new": new, "changes": changes })
            })
            .collect();
        let user = self.user.map(|user| user.to_string());
        let text = serde_json::to_string_pretty(&json!({ "user": user, "objects": objects }))
            .expect("drafts serialise");
        std::fs::write(path, text).map_err(|e| io_failure(path, &e))
    }
}

fn io_failure(path: &Path, error: &std::io::Error) -> Failure {
    Failure { message: format!("{}: {error}", path.display()), code: exit::IO }
}

/// `MEMBER=VALUE` as the member's value; an empty VALUE is empty.
fn member_value(db: &Database, entity: &str, text: &str) -> Result<(String, Value), Failure> {
    let (member, raw) = text
        .split_once('=')
        .ok_or_else(|| Failure::usage(format!("`{text}` is not MEMBER=VALUE")))?;
    let model = db.model();
    let described =
        model.entity(entity).ok_or_else(|| Failure::usage(format!("unknown entity `{entity}`")))?;
    let found = described
        .member(member)
        .ok_or_else(|| Failure::usage(format!("`{entity}` has no member `{member}`")))?;
    let attribute_type = described.attribute_type_of(found);
    let json = match (attribute_type.map(|t| t.value_type()), raw) {
        (_, "") => Json::Null,
        (Some(ferry_model::ValueType::Integer), _) => raw
            .parse::<i64>()
            .map(Json::from)
            .map_err(|_| Failure::usage(format!("`{member}` takes an integer, not `{raw}`")))?,
        (Some(ferry_model::ValueType::Boolean), "true" | "false") => Json::Bool(raw == "true"),
        _ => Json::String(raw.to_owned()),
    };
    let decoded = value::decode(&json, attribute_type)
        .map_err(|e| Failure::usage(format!("`{entity}.{member}`: {e}")))?;
    Ok((member.to_owned(), decoded))
}

impl Device {
    fn drafts_path(&self) -> PathBuf {
        let mut path = self.path.as_os_str().to_owned();
        path.push(".draft.json");
        PathBuf::from(path)
    }

    fn open(&self) -> Result<Arc<Database>, Failure> {
        Ok(Arc::new(Database::open_existing_keyed(&self.path, self.key.as_ref())?))
    }

    /// The uncommitted objects of the user signed in on `db`.
    fn drafts(&self, db: &Database) -> Result<Drafts, Failure> {
        Drafts::of(&self.drafts_path(), db.status()?.user)
    }

    fn print(&self, people: &str, json: Json) {
        if self.json {
            println!("{json}");
        } else {
            println!("{people}");
        }
    }

    /// The object with this id: uncommitted (rebuilt from the drafts) or committed.
    fn object(&self, db: &Database, drafts: &Drafts, id: ObjectId) -> Result<Object, Failure> {
        if let Some((entity, new, changes)) = drafts.objects.get(&id) {
            let mut object = match new {
                true => db.create_with_id(entity, id)?,
                false => db.get(entity, id)?.ok_or_else(|| {
                    Failure::usage(format!("`{entity}` {id} is no longer on this device"))
                })?,
            };
            for (member, json) in changes {
                let model = db.model();
                let described = model
                    .entity(entity)
                    .ok_or_else(|| Failure::usage(format!("unknown entity `{entity}`")))?;
                let attribute_type =
                    described.member(member).and_then(|m| described.attribute_type_of(m));
                let decoded = value::decode(json, attribute_type).map_err(|e| {
                    Failure::usage(format!("{}: {e}", self.drafts_path().display()))
                })?;
                db.set(&mut object, member, decoded)?;
            }
            return Ok(object);
        }
        for entity in db.model().entities().filter(|e| e.kind != EntityKind::System) {
            if let Some(object) = db.get(entity.name.as_str(), id)? {
                return Ok(object);
            }
        }
        Err(Failure::usage(format!("no object {id} on this device")))
    }

    fn parse_id(text: &str) -> Result<ObjectId, Failure> {
        ObjectId::parse(text).ok_or_else(|| Failure::usage(format!("`{text}` is not an object id")))
    }

    async fn login(&self, login: &Login) -> Result<(), Failure> {
        let LoginOptions { server, user, secret, authority } = login_options(login)?;
        let credential = match user {
            Some(user) => Credential::Password { user, password: &secret },
            None => Credential::IdentityToken(secret.trim()),
        };
        // Who was signed in before, for drafts kept before they named their user.
        let previous = Database::open_existing_keyed(&self.path, self.key.as_ref())
            .ok()
            .and_then(|db| db.status().ok()?.user);
        let authority = match authority {
            Some(file) => Some(std::fs::read(file).map_err(|e| Failure {
                message: format!("read the certificate authority `{file}`: {e}"),
                code: exit::IO,
            })?),
            None => None,
        };
        // One sign-in: the device's tables come from the server's model, read with its token.
        let key = self.key.as_ref();
        let login =
            SyncEngine::login_with(&self.path, key, server, authority.as_deref(), credential);
        let (engine, id) = login.await.map_err(|error| match (error, user) {
            (SyncError::NotSignedIn { .. }, Some(_)) => Failure {
                message: "wrong user name or password: check them and log in again".to_owned(),
                code: exit::SIGN_IN,
            },
            (SyncError::NotSignedIn { message }, None) => Failure {
                message: format!("{message}: log in again with a valid token"),
                code: exit::SIGN_IN,
            },
            (other, _) => Failure::from(other),
        })?;
        drop(engine);
        // Uncommitted objects belong to the user who made them; they leave with that user.
        let drafts = Drafts::load(&self.drafts_path())?;
        let owner = drafts.user.or(previous);
        if owner.is_some_and(|owner| owner != id) && !drafts.objects.is_empty() {
            std::fs::remove_file(self.drafts_path())
                .map_err(|e| io_failure(&self.drafts_path(), &e))?;
        }
        let who = user.map_or_else(|| format!("user {id}"), |user| format!("{user} ({id})"));
        self.print(
            &format!("logged in as {who} at {server}; run `sync` to bring the data"),
            json!({ "user": user, "user_id": id.to_string(), "server": server }),
        );
        Ok(())
    }

    fn create(&self, entity: &str, members: &[&str]) -> Result<(), Failure> {
        let db = self.open()?;
        let mut object = db.create(entity)?;
        let mut changes = serde_json::Map::new();
        for text in members {
            let (member, decoded) = member_value(&db, entity, text)?;
            db.set(&mut object, &member, decoded.clone())?;
            changes.insert(member, value::encode(&decoded));
        }
        let path = self.drafts_path();
        let mut drafts = self.drafts(&db)?;
        drafts.objects.insert(object.id(), (entity.to_owned(), true, changes));
        drafts.save(&path)?;
        self.print(
            &format!("created {entity} {} (uncommitted: `commit` writes it)", object.id()),
            json!({ "entity": entity, "id": object.id().to_string(), "committed": false }),
        );
        Ok(())
    }

    fn set(&self, id: &str, members: &[&str]) -> Result<(), Failure> {
        let db = self.open()?;
        let id = Self::parse_id(id)?;
        let path = self.drafts_path();
        let mut drafts = self.drafts(&db)?;
        let mut object = self.object(&db, &drafts, id)?;
        let entity = object.entity().to_string();
        let entry = drafts
            .objects
            .entry(id)
            .or_insert_with(|| (entity.clone(), false, serde_json::Map::new()));
        for text in members {
            let (member, decoded) = member_value(&db, &entity, text)?;
            db.set(&mut object, &member, decoded.clone())?;
            entry.2.insert(member, value::encode(&decoded));
        }
        drafts.save(&path)?;
        self.print(
            &format!("changed {entity} {id} (uncommitted: `commit` writes it)"),
            json!({ "entity": entity, "id": id.to_string(), "committed": false }),
        );
        Ok(())
    }

    fn attach(&self, id: &str, file: &str) -> Result<(), Failure> {
        let db = self.open()?;
        let id = Self::parse_id(id)?;
        let path = self.drafts_path();
        let mut drafts = self.drafts(&db)?;
        let mut object = self.object(&db, &drafts, id)?;
        let content = std::fs::File::open(file).map_err(|e| io_failure(Path::new(file), &e))?;
        let name = Path::new(file)
            .file_name()
            .map_or_else(|| file.to_owned(), |n| n.to_string_lossy().into_owned());
        db.attach_file(&mut object, &name, content)?;
        let entity = object.entity().to_string();
        let entry = drafts
            .objects
            .entry(id)
            .or_insert_with(|| (entity.clone(), false, serde_json::Map::new()));
        for member in ["FileName", "FileSize", "ContentHash", "ContentChanged"] {
            entry.2.insert(member.to_owned(), value::encode(db.get_value(&object, member)?));
        }
        drafts.save(&path)?;
        let size = db.get_value(&object, "FileSize")?.to_string();
        self.print(
            &format!(
                "attached {name} ({size} bytes) to {entity} {id} (uncommitted: `commit` writes it)"
            ),
            json!({ "entity": entity, "id": id.to_string(), "file": name, "committed": false }),
        );
        Ok(())
    }

    fn commit(&self, ids: &[&str]) -> Result<(), Failure> {
        let db = self.open()?;
        let path = self.drafts_path();
        let mut drafts = self.drafts(&db)?;
        let chosen: Vec<ObjectId> = match ids.is_empty() {
            true => drafts.objects.keys().copied().collect(),
            false => ids.iter().map(|id| Self::parse_id(id)).collect::<Result<_, _>>()?,
        };
        let mut objects = Vec::new();
        for id in &chosen {
            if !drafts.objects.contains_key(id) {
                return Err(Failure::usage(format!("{id} has no uncommitted changes")));
            }
            objects.push(self.object(&db, &drafts, *id)?);
        }
        db.commit(&mut objects.iter_mut().collect::<Vec<_>>())?;
        for id in &chosen {
            drafts.objects.remove(id);
        }
        drafts.save(&path)?;
        let committed: Vec<Json> = objects
            .iter()
            .map(|o| json!({ "entity": o.entity().to_string(), "id": o.id().to_string() }))
            .collect();
        self.print(
            &format!(
                "committed {} objects; {} changes wait for a sync",
                objects.len(),
                db.pending_changes()?
            ),
            json!({ "committed": committed, "pending_changes": db.pending_changes()? }),
        );
        Ok(())
    }

    fn rollback(&self, ids: &[&str]) -> Result<(), Failure> {
        let db = self.open()?;
        let path = self.drafts_path();
        let mut drafts = self.drafts(&db)?;
        let before = drafts.objects.len();
        if ids.is_empty() {
            drafts.objects.clear();
        }
        for id in ids {
            drafts.objects.remove(&Self::parse_id(id)?);
        }
        drafts.save(&path)?;
        let dropped = before - drafts.objects.len();
        self.print(
            &format!("dropped the uncommitted changes of {dropped} objects"),
            json!({ "rolled_back": dropped }),
        );
        Ok(())
    }

    fn delete(&self, id: &str) -> Result<(), Failure> {
        let db = self.open()?;
        let id = Self::parse_id(id)?;
        let path = self.drafts_path();
        let mut drafts = self.drafts(&db)?;
        let mut object = self.object(&db, &drafts, id)?;
        let deletion = db.delete(&mut object)?;
        drafts.objects.remove(&id);
        drafts.save(&path)?;
        let what = match deletion {
            ferry_client::Deletion::Discarded => "discarded (never committed)",
            ferry_client::Deletion::Removed => "removed (the server never had it)",
            ferry_client::Deletion::Recorded => "deleted; the next sync tells the server",
        };
        self.print(
            &format!("{} {id}: {what}", object.entity()),
            json!({ "entity": object.entity().to_string(), "id": id.to_string(), "deletion": format!("{deletion:?}").to_lowercase() }),
        );
        Ok(())
    }

    fn query(&self, args: &QueryArgs) -> Result<(), Failure> {
        let db = self.open()?;
        let (entity, query) = (args.entity.as_str(), parse_query(args)?);
        let objects = db.query(&query)?;
        let (rows, lines) = rows(&db, entity, &objects)?;
        self.print(&lines.join("\n"), json!({ "objects": rows }));
        Ok(())
    }

    /// `watch ENTITY [CONSTRAINT] [--sets N]`: the query's result set, then each change of it,
    /// with live mode running so the server's changes come in (unless `--offline`).
    async fn watch(
        &self,
        args: &QueryArgs,
        sets: Option<usize>,
        offline: bool,
    ) -> Result<(), Failure> {
        let db = self.open()?;
        let (entity, query) = (args.entity.as_str(), parse_query(args)?);
        let mut watch = db.watch(query)?;
        let showing = async {
            for _ in 0..sets.unwrap_or(usize::MAX) {
                let objects = watch.next().await?;
                let (rows, lines) = rows(&db, entity, &objects)?;
                self.print(&lines.join("\n"), json!({ "objects": rows }));
                let _ = std::io::stdout().flush();
            }
            Ok::<(), Failure>(())
        };
        let live = async {
            if offline {
                return std::future::pending().await;
            }
            let engine = SyncEngine::resume(Arc::clone(&db))?;
            engine.run_live(&LiveOptions::default()).await.map_err(Failure::from)
        };
        tokio::select! {
            shown = showing => shown,
            ended = live => ended,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    }

    /// `live [--syncs N]`: live mode, each connection and sync printed, until Ctrl-C (or N
    /// syncs).
    async fn live(&self, syncs: Option<usize>) -> Result<(), Failure> {
        let engine = SyncEngine::resume(self.open()?)?;
        let stop = ferry_client::CancelToken::new();
        let (done, json, halt) = (Arc::new(Mutex::new(0usize)), self.json, stop.clone());
        let events = Arc::new(move |event: &LiveEvent| {
            let (people, document) = match event {
                LiveEvent::Connected => ("connected".to_owned(), json!({ "event": "connected" })),
                LiveEvent::Disconnected { reason, retry_in } => (
                    format!("disconnected: {reason}; again in {} ms", retry_in.as_millis()),
                    json!({ "event": "disconnected", "reason": reason, "retry_in_ms": retry_in.as_millis() as u64 }),
                ),
                LiveEvent::Synced(report) => (
                    format!("synced: {}", people_report(report).replace('\n', "; ")),
                    json!({ "event": "synced", "report": report_json(report) }),
                ),
                LiveEvent::SyncFailed(error) => (
                    format!("sync failed: {error}"),
                    json!({ "event": "sync_failed", "reason": error.to_string() }),
                ),
            };
            if json {
                println!("{document}")
            } else {
                println!("{people}")
            }
            let _ = std::io::stdout().flush();
            if let LiveEvent::Synced(_) = event {
                let mut done = done.lock().unwrap_or_else(|p| p.into_inner());
                *done += 1;
                if Some(*done) == syncs {
                    halt.cancel();
                }
            }
        });
        let options = LiveOptions { events: Some(events), stop, ..LiveOptions::default() };
        tokio::select! {
            ended = engine.run_live(&options) => Ok(ended?),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    }
}

/// A query from the command line: `ENTITY [CONSTRAINT] [--sort MEMBER[:desc]] [--limit N]
/// [--offset N]`.
fn parse_query(args: &QueryArgs) -> Result<Query, Failure> {
    let mut query = Query::new(&args.entity);
    if let Some(constraint) = &args.constraint {
        query = query.filter(constraint);
    }
    for member in &args.sort {
        query = match member.strip_suffix(":desc") {
            Some(member) => query.sort(member, ferry_client::Order::Descending),
            None => query.sort(member, ferry_client::Order::Ascending),
        };
    }
    if let Some(limit) = args.limit {
        query = query.limit(limit);
    }
    if let Some(offset) = args.offset {
        query = query.offset(offset);
    }
    Ok(query)
}

/// The objects of a query as JSON rows and as lines for people (the last one counts them).
fn rows(
    db: &Database,
    entity: &str,
    objects: &[Object],
) -> Result<(Vec<Json>, Vec<String>), Failure> {
    let model = db.model();
    let described = model.entity(entity).expect("the query checked it");
    let names: Vec<&str> = (0..described.member_count())
        .map(|s| described.member_name(ferry_model::Slot(s)))
        .collect();
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for object in objects {
        let mut values = serde_json::Map::new();
        let mut line = object.id().to_string();
        for name in &names {
            let member = db.get_value(object, name)?;
            values.insert((*name).to_owned(), value::encode(member));
            if !member.is_empty() {
                line.push_str(&format!("  {name}={member}"));
            }
        }
        rows.push(json!({ "entity": entity, "id": object.id().to_string(), "values": values }));
        lines.push(line);
    }
    lines.push(format!("{} {entity} objects", objects.len()));
    Ok((rows, lines))
}

impl Device {
    async fn sync(&self, mode: &str, ids: &[String]) -> Result<(), Failure> {
        let db = self.open()?;
        let drafts = self.drafts(&db)?;
        let (mut objects, mut skipped) = (Vec::new(), Vec::new());
        for id in ids {
            let id = Self::parse_id(id)?;
            match self.selectable(&db, &drafts, id)? {
                Some(entity) => objects.push((entity, id)),
                None => skipped.push(id),
            }
        }
        let selected = !objects.is_empty() || !skipped.is_empty();
        let mode = match (mode, selected) {
            ("all", false) => SyncMode::All,
            ("unsynchronized", false) => SyncMode::Unsynchronized,
            ("selected", true) => SyncMode::Selected(objects),
            ("selected", false) => return Err(Failure::usage("--mode selected needs --object ID")),
            ("all" | "unsynchronized", true) => {
                return Err(Failure::usage("--object goes with --mode selected"));
            }
            (other, _) => {
                return Err(Failure::usage(format!(
                    "unknown mode `{other}` (all, unsynchronized or selected)"
                )));
            }
        };
        let engine = SyncEngine::resume(Arc::clone(&db))?;
        // What an app's first start after a redeploy does: a full sync when one is due (a new
        // model, a first sync, a new user), whatever was asked.
        let due = engine.sync_needed().await.map(|_| db.status())??.full_sync_due;
        let mode = match due {
            Some(_) => SyncMode::All,
            None => mode,
        };
        let bar = (!self.json && std::io::stderr().is_terminal()).then(progress_bar);
        let options = SyncOptions {
            progress: bar.clone().map(|bar| -> ferry_client::ProgressCallback {
                Arc::new(move |p: &Progress| show_progress(&bar, p))
            }),
            cancel: None,
        };
        let result = engine.sync_with(mode, &options).await;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let report = result?;
        let mut people = people_report(&report);
        if let Some(due) = due {
            people =
                format!("a full synchronization was due ({}): it ran\n{people}", due_text(due));
        }
        for id in &skipped {
            people.push_str(&format!("\nskipped {id}: not committed yet (commit it to sync it)"));
        }
        let mut json = report_json(&report);
        json["full_sync_due"] = json!(due.map(due_name));
        json["skipped"] = json!(skipped.iter().map(ToString::to_string).collect::<Vec<_>>());
        self.print(&people, json);
        Ok(())
    }

    /// The entity of an object a selected sync can take: a committed one. `None` for a new
    /// object not committed yet (skipped, as an app's selection skips it); an error for an
    /// object deleted here (deletions cannot be selected) or unknown.
    fn selectable(
        &self,
        db: &Database,
        drafts: &Drafts,
        id: ObjectId,
    ) -> Result<Option<String>, Failure> {
        if drafts.objects.get(&id).is_some_and(|(_, new, _)| *new) {
            return Ok(None);
        }
        if let Some(entity) = db.deletion_pending(id)? {
            return Err(Failure::usage(format!(
                "`{entity}` {id} was deleted on this device, and deleted objects cannot be selected: a sync with --mode all or unsynchronized sends the deletion"
            )));
        }
        let object = self.object(db, &Drafts::default(), id)?;
        Ok(Some(object.entity().to_string()))
    }

    async fn call(&self, action: &str, parameters: &str) -> Result<(), Failure> {
        let db = self.open()?;
        let parameters: Json = serde_json::from_str(parameters)
            .map_err(|e| Failure::usage(format!("the parameters are not JSON: {e}")))?;
        let Json::Object(parameters) = parameters else {
            return Err(Failure::usage(
                "the parameters are a JSON object, as {\"Status\": \"Open\"}",
            ));
        };
        let engine = SyncEngine::resume(db)?;
        let outcome = engine.call_action(action, parameters).await?;
        self.print(
            &format!(
                "{action}: {}\n{} objects synchronized to this device, {} removed, {} skipped",
                outcome.result, outcome.synced, outcome.removed, outcome.skipped
            ),
            json!({ "result": outcome.result, "synced": outcome.synced, "removed": outcome.removed, "skipped": outcome.skipped }),
        );
        Ok(())
    }

    fn status(&self) -> Result<(), Failure> {
        let db = self.open()?;
        let status = db.status()?;
        let drafts = self.drafts(&db)?.objects.len();
        let last = status.last_sync.as_ref().map(|(at, mode)| format!("{at} ({mode})"));
        let due =
            status.full_sync_due.map_or("no".to_owned(), |due| format!("yes: {}", due_text(due)));
        self.print(
            &format!(
                "server: {}\nuser: {}{}\nmodel version: {}\npending changes: {}\nuncommitted objects: {drafts}\nlast sync: {}\nfull sync due: {due}",
                status.server.as_deref().unwrap_or("none (log in)"),
                status.user.map_or("none".to_owned(), |u| u.to_string()),
                match status.roles.is_empty() {
                    true => String::new(),
                    false => format!(" ({})", status.roles.join(", ")),
                },
                status.model_version,
                status.pending_changes,
                last.as_deref().unwrap_or("never"),
            ),
            json!({
                "server": status.server,
                "user_id": status.user.map(|u| u.to_string()),
                "roles": status.roles,
                "model_version": status.model_version,
                "pending_changes": status.pending_changes,
                "uncommitted_objects": drafts,
                "last_sync": status.last_sync.as_ref().map(|(at, mode)| json!({ "at": at.to_string(), "mode": mode })),
                "full_sync_due": status.full_sync_due.map(due_name),
            }),
        );
        Ok(())
    }

    fn files(&self) -> Result<(), Failure> {
        let db = self.open()?;
        let mut rows = Vec::new();
        let mut lines = Vec::new();
        for entity in db.model().entities().filter(|e| e.kind == EntityKind::File) {
            for object in db.query(&Query::new(entity.name.as_str()))? {
                let name = db.get_value(&object, "FileName")?.clone();
                let size = db.get_value(&object, "FileSize")?.clone();
                let path = db.file_path(&object)?;
                lines.push(format!(
                    "{} {}  {}  {} bytes  {}",
                    entity.name,
                    object.id(),
                    name,
                    size,
                    path.as_ref()
                        .map_or("not on this device".to_owned(), |p| p.display().to_string())
                ));
                rows.push(json!({
                    "entity": entity.name.to_string(),
                    "id": object.id().to_string(),
                    "file_name": value::encode(&name),
                    "file_size": value::encode(&size),
                    "path": path.map(|p| p.display().to_string()),
                }));
            }
        }
        lines.push(format!("{} file objects", rows.len()));
        self.print(&lines.join("\n"), json!({ "files": rows }));
        Ok(())
    }
}

/// Why a full sync is due, for people.
fn due_text(due: FullSyncDue) -> &'static str {
    match due {
        FullSyncDue::FirstSync => {
            "a full synchronization was due (this device never completed one)"
        }
        FullSyncDue::ModelChanged => "a full synchronization was due (the server's model changed)",
    }
}

/// Why a full sync is due, in JSON.
fn due_name(due: FullSyncDue) -> &'static str {
    match due {
        FullSyncDue::FirstSync => "first-sync",
        FullSyncDue::ModelChanged => "model-changed",
    }
}

fn people_report(report: &SyncReport) -> String {
    let mut lines = vec![format!("uploaded {} objects", report.uploaded)];
    for (entity, id, reason) in &report.rejected {
        lines.push(format!("rejected {entity} {id}: {reason}"));
    }
    let downloaded: usize = report.downloaded.values().sum();
    let removed: usize = report.removed.values().sum();
    lines.push(format!("downloaded {downloaded} objects, removed {removed}"));
    if report.files_uploaded + report.files_downloaded > 0 {
        lines.push(format!(
            "files: {} sent, {} received",
            report.files_uploaded, report.files_downloaded
        ));
    }
    lines.join("\n")
}

fn report_json(report: &SyncReport) -> Json {
    let rejected: Vec<Json> = report
        .rejected
        .iter()
        .map(|(entity, id, reason)| json!({ "entity": entity, "id": id.to_string(), "reason": reason }))
        .collect();
    json!({
        "uploaded": report.uploaded,
        "rejected": rejected,
        "downloaded": report.downloaded,
        "removed": report.removed,
        "files_uploaded": report.files_uploaded,
        "files_downloaded": report.files_downloaded,
    })
}

/// A one-line progress bar on standard error: phase, entity and objects, then bytes, rate and
/// time left.
fn progress_bar() -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let template = "{msg} {wide_bar} {bytes}/{total_bytes} at {bytes_per_sec}, {eta} left";
    bar.set_style(
        indicatif::ProgressStyle::with_template(template).expect("the template is valid"),
    );
    bar
}

fn show_progress(bar: &indicatif::ProgressBar, progress: &Progress) {
    match progress.bytes_total {
        Some(total) => bar.set_length(total as u64),
        None => bar.unset_length(),
    }
    bar.set_position(progress.bytes_done as u64);
    bar.set_message(progress_message(progress));
}

/// What the progress bar says before its bar: phase, entity and objects.
fn progress_message(progress: &Progress) -> String {
    let phase = match progress.phase {
        Phase::Upload => "upload".to_owned(),
        Phase::Download => format!("download {}", progress.entity.as_deref().unwrap_or("")),
    };
    match progress.objects_total {
        Some(total) => format!("{phase}: {}/{total} objects", progress.objects_done),
        None => format!("{phase}: {} objects", progress.objects_done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_names_the_phase_entity_and_objects() {
        let progress = Progress {
            phase: Phase::Download,
            entity: Some("Field.WorkOrder".to_owned()),
            objects_done: 20_000,
            objects_total: Some(100_000),
            bytes_done: 6_000_000,
            bytes_total: Some(30_000_000),
        };
        assert_eq!(progress_message(&progress), "download Field.WorkOrder: 20000/100000 objects");
        let upload = Progress {
            phase: Phase::Upload,
            entity: None,
            objects_total: None,
            bytes_total: None,
            ..progress
        };
        assert_eq!(progress_message(&upload), "upload: 20000 objects");
        let bar = indicatif::ProgressBar::hidden();
        show_progress(&bar, &progress);
        assert_eq!((bar.position(), bar.length()), (6_000_000, Some(30_000_000)));
    }
}
