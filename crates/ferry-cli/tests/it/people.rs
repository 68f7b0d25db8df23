//! `ferry device` and `ferry admin` as a user runs them: spawned processes against a `ferry
//! serve` the test starts, output and exit codes, including every error a person must act on.

use std::path::Path;
use std::process::Command;

use ferry_model::samples;
use serde_json::Value as Json;

use crate::{Served, run_with_stdin, scratch, spawn_server, spawn_server_with};

const PASSWORD: &str = "a long password";

/// `ferry serve` on a fresh database in `dir`, with users.
fn serve(dir: &Path, name: &str, model_text: &str) -> Served {
    let (model, database) = with_users(dir, name, model_text);
    spawn_server(&dir.join(name), &model, &database)
}

/// A fresh database in `dir` with users; gives the model file and the database.
fn with_users(dir: &Path, name: &str, model_text: &str) -> (String, String) {
    let model = dir.join(format!("{name}.toml"));
    std::fs::write(&model, model_text).unwrap();
    let model = model.display().to_string();
    let database = format!("sqlite:{}", dir.join(name).join("ferry.db").display());
    for (user, role) in [("pat", "Planner"), ("alice", "Technician"), ("ada", "Admin")] {
        let args = [
            "user",
            "add",
            user,
            "--role",
            role,
            "--password-stdin",
            "--model",
            &model,
            "--database",
            &database,
        ];
        let added = run_with_stdin(&args, PASSWORD, dir);
        assert_eq!(added.status.code(), Some(0), "{}", String::from_utf8_lossy(&added.stderr));
    }
    (model, database)
}

/// Runs `ferry` in `dir`; gives the exit code, standard output and standard error.
fn ferry_in(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    // The user's configuration directory is the test's own.
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `ferry device --db DB --json ARGS` that must succeed; its JSON.
fn device_json(dir: &Path, db: &str, args: &[&str]) -> Json {
    let mut all = vec!["device", "--db", db, "--json"];
    all.extend_from_slice(args);
    let (code, out, err) = ferry_in(dir, &all);
    assert_eq!(code, Some(0), "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn login(dir: &Path, db: &str, url: &str, user: &str) {
    let out = run_with_stdin(
        &["device", "--db", db, "login", "--server", url, "--user", user, "--password-stdin"],
        PASSWORD,
        dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

fn db_path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[test]
fn device_commands_work_as_a_user_runs_them() {
    let dir = scratch("device");
    let server = serve(&dir, "server", samples::FIELD_SERVICE);
    let db = db_path(&dir, "pat.db");
    login(&dir, &db, &server.url, "pat");

    let site = device_json(&dir, &db, &["create", "Field.Site", "Name=Depot"]);
    assert_eq!(
        (site["entity"].as_str(), site["committed"].as_bool()),
        (Some("Field.Site"), Some(false))
    );
    let site = site["id"].as_str().unwrap().to_owned();
    let changed = device_json(&dir, &db, &["set", &site, "Address=Main 1"]);
    assert_eq!(changed["id"], site.as_str());
    let draft = device_json(&dir, &db, &["create", "Field.Site", "Name=Never"]);
    let rolled = device_json(&dir, &db, &["rollback", draft["id"].as_str().unwrap()]);
    assert_eq!(rolled["rolled_back"], 1);
    let status = device_json(&dir, &db, &["status"]);
    assert_eq!(
        (status["pending_changes"].as_u64(), status["uncommitted_objects"].as_u64()),
        (Some(0), Some(1))
    );
    let committed = device_json(&dir, &db, &["commit"]);
    assert_eq!(committed["pending_changes"], 1);
    let found =
        device_json(&dir, &db, &["query", "Field.Site", "[Name = 'Depot']", "--limit", "5"]);
    assert_eq!(found["objects"][0]["values"]["Address"], "Main 1");

    let order = device_json(
        &dir,
        &db,
        &["create", "Field.WorkOrder", "Number=7", "Title=Pump", &format!("WorkOrder_Site={site}")],
    );
    let order = order["id"].as_str().unwrap().to_owned();
    device_json(&dir, &db, &["commit", &order]);
    let synced = device_json(&dir, &db, &["sync"]);
    assert_eq!(
        (synced["uploaded"].as_u64(), synced["rejected"].as_array().map(Vec::len)),
        (Some(2), Some(0))
    );
    let status = device_json(&dir, &db, &["status"]);
    assert_eq!(status["last_sync"]["mode"], "all");
    assert_eq!(status["roles"], serde_json::json!(["Planner"]), "the roles the sign-in gave");
    assert_eq!(status["server"], server.url.as_str());

    device_json(&dir, &db, &["set", &order, "Priority=1"]);
    device_json(&dir, &db, &["commit"]);
    let selected = device_json(&dir, &db, &["sync", "--mode", "selected", "--object", &order]);
    assert_eq!(selected["uploaded"], 1);
    let unsynced = device_json(&dir, &db, &["sync", "--mode", "unsynchronized"]);
    assert_eq!(unsynced["uploaded"], 0);
    let deleted = device_json(&dir, &db, &["delete", &order]);
    assert_eq!(deleted["deletion"], "recorded");
    device_json(&dir, &db, &["sync"]);

    // A technician's photo, and the files listing; a server action with parameters.
    let alice = db_path(&dir, "alice.db");
    login(&dir, &alice, &server.url, "alice");
    device_json(&dir, &alice, &["sync"]);
    let called = device_json(&dir, &alice, &["call", "MyWorkOrdersIn", r#"{"Status": "Open"}"#]);
    assert_eq!(called["result"], serde_json::json!({ "objects": 0 }));
    let photo_file = dir.join("pump.jpg");
    std::fs::write(&photo_file, b"jpeg bytes").unwrap();
    let photo = device_json(&dir, &alice, &["create", "Field.Photo"]);
    let photo = photo["id"].as_str().unwrap().to_owned();
    let attached =
        device_json(&dir, &alice, &["attach", &photo, &photo_file.display().to_string()]);
    assert_eq!(attached["file"], "pump.jpg");
    device_json(&dir, &alice, &["commit"]);
    let files = device_json(&dir, &alice, &["files"]);
    assert_eq!(files["files"][0]["file_size"], 10);
    assert!(files["files"][0]["path"].as_str().is_some(), "{files}");

    // For people: plain lines.
    let (code, out, _) = ferry_in(&dir, &["device", "--db", &db, "status"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("pending changes: 0") && out.contains("last sync: "), "{out}");
    let (code, out, _) = ferry_in(&dir, &["device", "--db", &db, "query", "Field.Site"]);
    assert_eq!(code, Some(0));
    assert!(out.ends_with("1 Field.Site objects\n") && out.contains("Name=\"Depot\""), "{out}");
}

/// Every error of the kinds a person must act on: one line saying what happened and what to
/// do, and its own exit code.
#[test]
fn device_errors_say_what_to_do_and_exit_with_their_code() {
    let dir = scratch("device-errors");
    let server = serve(&dir, "server", samples::FIELD_SERVICE);
    let db = db_path(&dir, "pat.db");

    let (code, _, err) = ferry_in(&dir, &["device", "--db", &db, "sync"]);
    assert_eq!(
        (code, err.trim()),
        (Some(6), format!("error: no device database at `{db}`: log in first").as_str())
    );

    let wrong = run_with_stdin(
        &[
            "device",
            "--db",
            &db,
            "login",
            "--server",
            &server.url,
            "--user",
            "pat",
            "--password-stdin",
        ],
        "not the password",
        &dir,
    );
    assert_eq!(wrong.status.code(), Some(5));
    assert_eq!(
        String::from_utf8_lossy(&wrong.stderr),
        "error: wrong user name or password: check them and log in again\n"
    );

    let (code, _, err) = ferry_in(
        &dir,
        &["device", "--db", &db, "login", "--server", "http://127.0.0.1:9", "--user", "pat"],
    );
    assert_eq!(code, Some(2), "no password given: {err}");
    let unreachable = run_with_stdin(
        &[
            "device",
            "--db",
            &db,
            "login",
            "--server",
            "http://127.0.0.1:9",
            "--user",
            "pat",
            "--password-stdin",
        ],
        PASSWORD,
        &dir,
    );
    assert_eq!(unreachable.status.code(), Some(4));
    let err = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        err.starts_with("error: cannot reach the server at 127.0.0.1:9")
            && err.contains("check the connection"),
        "{err}"
    );

    login(&dir, &db, &server.url, "pat");
    // An access token the server no longer knows: the session's refresh token gets the next.
    let connection = rusqlite::Connection::open(&db).unwrap();
    let forget_token = "UPDATE ferry_meta SET value = 'expired' WHERE key = 'token'";
    connection.execute(forget_token, []).unwrap();
    let (code, _, err) = ferry_in(&dir, &["device", "--db", &db, "sync"]);
    assert_eq!(code, Some(0), "{err}");
    let token: String = connection
        .query_row("SELECT value FROM ferry_meta WHERE key = 'token'", [], |row| row.get(0))
        .unwrap();
    assert_ne!(token, "expired", "the refreshed token is kept");
    // A session the server no longer knows (ended, or the server's database was replaced).
    connection.execute(forget_token, []).unwrap();
    let forget_refresh = "UPDATE ferry_meta SET value = '00_00' WHERE key = 'refresh_token'";
    assert_eq!(connection.execute(forget_refresh, []).unwrap(), 1);
    let (code, _, err) = ferry_in(&dir, &["device", "--db", &db, "sync"]);
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("session expired") && err.contains("log in again"), "{err}");
    login(&dir, &db, &server.url, "pat");

    // A sync already running on this database (here: another process holds it).
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(format!("{db}.sync-lock"))
        .unwrap();
    lock.lock().unwrap();
    let (code, _, err) = ferry_in(&dir, &["device", "--db", &db, "sync"]);
    assert_eq!(
        (code, err.as_str()),
        (
            Some(8),
            "error: Performing simultaneous synchronizations is not supported. Please try again after the current synchronization is completed.\n"
        )
    );
    drop(lock);

    let (code, _, err) = ferry_in(&dir, &["device", "--db", &db, "call", "NoSuchAction"]);
    assert_eq!(code, Some(9), "{err}");
    assert!(err.contains("no action `NoSuchAction`"), "{err}");
    let (code, _, err) =
        ferry_in(&dir, &["device", "--db", &db, "create", "Field.Site", "Nam=Depot"]);
    assert_eq!((code, err.as_str()), (Some(2), "error: `Field.Site` has no member `Nam`\n"));
    let (code, _, _) = ferry_in(&dir, &["device", "--db", &db, "query", "Field.Site", "[Name = ]"]);
    assert_eq!(code, Some(2));

    // A server whose model this device cannot follow (an attribute it holds was removed).
    let breaking = samples::FIELD_SERVICE
        .replace("attributes.Phone = { type = \"string\", max_length = 40 }\n", "")
        .replace("\"Name\", \"Phone\", \"Active\"", "\"Name\", \"Active\"");
    assert_ne!(breaking, samples::FIELD_SERVICE);
    let other = serve(&dir, "other", &breaking);
    let moved = run_with_stdin(
        &[
            "device",
            "--db",
            &db,
            "login",
            "--server",
            &other.url,
            "--user",
            "pat",
            "--password-stdin",
        ],
        PASSWORD,
        &dir,
    );
    assert_eq!(moved.status.code(), Some(7));
    let err = String::from_utf8_lossy(&moved.stderr);
    assert!(
        err.starts_with("error: the server's model changed in a way this device cannot follow"),
        "{err}"
    );
}

#[test]
fn admin_commands_show_the_operators_view() {
    let dir = scratch("admin");
    let server = serve(&dir, "server", samples::FIELD_SERVICE);
    let admin = |args: &[&str]| ferry_in(&dir, &[&["admin", "--json"], args].concat());

    let (code, _, err) = admin(&["users"]);
    assert_eq!(code, Some(6), "no session yet: {err}");
    let wrong = run_with_stdin(
        &["admin", "--server", &server.url, "login", "--user", "ada", "--password-stdin"],
        "wrong",
        &dir,
    );
    assert_eq!(wrong.status.code(), Some(5));
    let logged = run_with_stdin(
        &["admin", "--server", &server.url, "login", "--user", "ada", "--password-stdin"],
        PASSWORD,
        &dir,
    );
    assert_eq!(logged.status.code(), Some(0), "{}", String::from_utf8_lossy(&logged.stderr));

    let (code, out, _) = admin(&["users"]);
    assert_eq!(code, Some(0));
    let users: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(users["users"].as_array().map(Vec::len), Some(3));
    let added = run_with_stdin(
        &["admin", "user", "add", "bob", "--role", "Technician", "--password-stdin"],
        PASSWORD,
        &dir,
    );
    assert_eq!(added.status.code(), Some(0), "{}", String::from_utf8_lossy(&added.stderr));
    let (code, out, _) =
        ferry_in(&dir, &["admin", "user", "roles", "bob", "Technician", "Planner"]);
    assert_eq!((code, out.as_str()), (Some(0), "bob now has roles: Technician, Planner\n"));
    let (code, _, err) = ferry_in(&dir, &["admin", "user", "roles", "bob", "Wizard"]);
    assert_eq!((code, err.as_str()), (Some(2), "error: unknown role `Wizard`\n"));

    // Two devices create work order 7: the second lands in SynchronizationError.
    for (n, name) in ["pat.db", "bob.db"].iter().enumerate() {
        let db = db_path(&dir, name);
        login(&dir, &db, &server.url, if n == 0 { "pat" } else { "bob" });
        device_json(&dir, &db, &["create", "Field.WorkOrder", "Number=7", "Title=Pump"]);
        device_json(&dir, &db, &["commit"]);
        device_json(&dir, &db, &["sync"]);
    }
    let (code, out, _) = ferry_in(&dir, &["admin", "failures", "--user", "bob"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("create")
            && out.contains("Field.WorkOrder")
            && out.contains("must")
            && out.contains(" bob ")
            && out.ends_with("1 failures\n"),
        "{out}"
    );
    assert!(out.lines().all(|line| line.chars().count() <= 80), "fits 80 columns:\n{out}");
    let (code, out, _) = admin(&["failures", "--entity", "Field.Site"]);
    assert_eq!(
        (code, serde_json::from_str::<Json>(&out).unwrap()["failures"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
    let (code, out, _) = ferry_in(&dir, &["admin", "failure", "1"]);
    assert!(code == Some(0) && out.contains("user: bob") && out.contains("\"Number\":7"), "{out}");
    assert!(out.contains("current: none (the object is not on the server)"), "{out}");
    let (code, out, err) = ferry_in(&dir, &["admin", "replay", "1"]);
    assert_eq!(code, Some(9), "still a duplicate: {out} {err}");
    let (code, out, _) = admin(&["history"]);
    assert_eq!(code, Some(0));
    assert!(
        serde_json::from_str::<Json>(&out).unwrap()["entries"]
            .as_array()
            .is_some_and(|e| e.len() >= 4),
        "{out}"
    );
    let (code, out, _) = ferry_in(&dir, &["admin", "devices"]);
    assert_eq!(code, Some(0));
    let users: Vec<&str> = out.lines().filter_map(|line| line.split_whitespace().nth(1)).collect();
    assert!(out.contains("used by") && users.contains(&"pat") && users.contains(&"bob"), "{out}");
    assert!(out.ends_with("2 devices\n") && out.lines().all(|l| l.chars().count() <= 80), "{out}");

    // A user who is not an administrator, and a server that is gone.
    let session = dir.join("planner.json").display().to_string();
    let planner = run_with_stdin(
        &[
            "admin",
            "--session",
            &session,
            "--server",
            &server.url,
            "login",
            "--user",
            "pat",
            "--password-stdin",
        ],
        PASSWORD,
        &dir,
    );
    assert_eq!(planner.status.code(), Some(0));
    let (code, _, err) = ferry_in(&dir, &["admin", "--session", &session, "users"]);
    assert_eq!(code, Some(9));
    assert!(err.contains("administrator"), "{err}");
    let (code, _, err) = ferry_in(&dir, &["admin", "--server", "http://127.0.0.1:9", "users"]);
    assert_eq!(code, Some(4), "{err}");
}

/// `ferry device login` through standard input; its exit code and standard error.
fn try_login(dir: &Path, db: &str, url: &str, user: &str) -> (Option<i32>, String) {
    let out = run_with_stdin(
        &["device", "--db", db, "login", "--server", url, "--user", user, "--password-stdin"],
        PASSWORD,
        dir,
    );
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Behaviour of the seed that people and scripts meet through the command line: selections
/// skip what is not committed, deleted objects are named as such, and a full sync runs when
/// one is due.
#[test]
fn the_command_line_syncs_as_the_seed_does() {
    let dir = scratch("seed");
    let server = serve(&dir, "server", samples::FIELD_SERVICE);
    let db = db_path(&dir, "pat.db");
    login(&dir, &db, &server.url, "pat");
    let status = device_json(&dir, &db, &["status"]);
    assert_eq!(status["full_sync_due"], "first-sync", "{status}");

    // An unsynchronized sync on a device that never synced runs the full sync that is due.
    let kept = device_json(&dir, &db, &["create", "Field.Site", "Name=Kept"]);
    let kept = kept["id"].as_str().unwrap().to_owned();
    device_json(&dir, &db, &["commit"]);
    let synced = device_json(&dir, &db, &["sync", "--mode", "unsynchronized"]);
    assert_eq!(
        (synced["full_sync_due"].as_str(), synced["uploaded"].as_u64()),
        (Some("first-sync"), Some(1))
    );
    assert_eq!(device_json(&dir, &db, &["status"])["full_sync_due"], Json::Null);

    // A selection naming an object not committed yet skips it and syncs the others.
    let chosen = device_json(&dir, &db, &["create", "Field.Site", "Name=Chosen"]);
    let chosen = chosen["id"].as_str().unwrap().to_owned();
    device_json(&dir, &db, &["commit"]);
    let new = device_json(&dir, &db, &["create", "Field.Site", "Name=Draft"]);
    let new = new["id"].as_str().unwrap().to_owned();
    let selected = device_json(
        &dir,
        &db,
        &["sync", "--mode", "selected", "--object", &chosen, "--object", &new],
    );
    assert_eq!(selected["uploaded"], 1, "{selected}");
    assert_eq!(selected["skipped"], serde_json::json!([new]), "{selected}");
    assert_eq!(device_json(&dir, &db, &["status"])["uncommitted_objects"], 1, "the draft stays");

    // A deleted object cannot be selected, and the message says so.
    device_json(&dir, &db, &["delete", &kept]);
    let (code, _, err) =
        ferry_in(&dir, &["device", "--db", &db, "sync", "--mode", "selected", "--object", &kept]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("was deleted on this device, and deleted objects cannot be selected"),
        "{err}"
    );

    // The server's model changes (an attribute added): the next contact runs a full sync,
    // whatever mode was asked, and `status` says when one is due.
    device_json(&dir, &db, &["sync"]);
    let database = format!("sqlite:{}", dir.join("server").join("ferry.db").display());
    let server_url = server.url.clone();
    drop(server);
    let grown = samples::FIELD_SERVICE.replace(
        "attributes.Address = { type = \"string\", max_length = 400 }",
        "attributes.Address = { type = \"string\", max_length = 400 }\nattributes.Gate = { type = \"string\", max_length = 20 }",
    );
    assert_ne!(grown, samples::FIELD_SERVICE);
    let model = dir.join("grown.toml");
    std::fs::write(&model, &grown).unwrap();
    // Redeployed at the same address.
    let address = server_url.trim_start_matches("http://");
    let model = model.display().to_string();
    let server = crate::spawn_server_at(&dir.join("server"), &model, &database, address);
    let synced = device_json(&dir, &db, &["sync", "--mode", "unsynchronized"]);
    assert_eq!(synced["full_sync_due"], "model-changed", "{synced}");
    let sites = device_json(&dir, &db, &["query", "Field.Site"]);
    assert!(sites["objects"][0]["values"].get("Gate").is_some(), "the new model: {sites}");
    assert_eq!(device_json(&dir, &db, &["status"])["full_sync_due"], Json::Null);
    drop(server);
}

/// What a person trips over: logins cost one sign-in each, drafts leave with their user, a
/// refusal of the device has its own exit code, errors come as JSON with --json, and the
/// administrator's session lives in the user's configuration directory.
#[test]
fn logins_drafts_refusals_and_sessions_behave_as_a_person_expects() {
    let dir = scratch("trips");
    let server = serve(&dir, "server", samples::FIELD_SERVICE);
    let db = db_path(&dir, "shared.db");
    // The server allows 10 sign-ins per user per minute: 10 logins, one sign-in each.
    for n in 0..10 {
        let (code, err) = try_login(&dir, &db, &server.url, "alice");
        assert_eq!(code, Some(0), "login {n}: {err}");
    }
    let (code, err) = try_login(&dir, &db, &server.url, "alice");
    assert_eq!(code, Some(9), "{err}");
    assert!(err.contains("wait a minute"), "the server's advice is kept: {err}");

    // Alice's uncommitted draft does not pass to pat, who logs in on the same database.
    login(&dir, &db, &server.url, "pat");
    let draft = device_json(&dir, &db, &["create", "Field.Site", "Name=Pat's draft"]);
    assert_eq!(draft["committed"], false);
    device_json(&dir, &db, &["commit"]);
    let (code, err) = try_login(&dir, &db, &server.url, "ada");
    assert_eq!(code, Some(10), "pat's change is not uploaded: {err}");
    assert!(err.contains("this device refuses to switch users"), "{err}");
    device_json(&dir, &db, &["sync"]);
    device_json(&dir, &db, &["create", "Field.Site", "Name=Unfinished"]);
    login(&dir, &db, &server.url, "ada");
    let status = device_json(&dir, &db, &["status"]);
    assert_eq!(status["uncommitted_objects"], 0, "pat's draft left with pat: {status}");
    let committed = device_json(&dir, &db, &["commit"]);
    assert_eq!(committed["committed"], serde_json::json!([]));

    // With --json, a failure is also a JSON document on standard output.
    drop(server);
    let (code, out, _) = ferry_in(&dir, &["device", "--db", &db, "--json", "sync"]);
    assert_eq!(code, Some(4));
    let error: Json = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (error["error"]["code"].as_str(), error["error"]["exit_code"].as_u64()),
        (Some("unreachable"), Some(4))
    );
    assert!(error["error"]["message"].as_str().unwrap().contains("cannot reach the server"));

    // The administrator's session goes to the configuration directory, for its user only.
    let server = serve(&dir, "admin-server", samples::FIELD_SERVICE);
    let logged = run_with_stdin(
        &["admin", "--server", &server.url, "login", "--user", "ada", "--password-stdin"],
        PASSWORD,
        &dir,
    );
    assert_eq!(logged.status.code(), Some(0), "{}", String::from_utf8_lossy(&logged.stderr));
    let session = dir.join("config").join("ferry").join("admin-session.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&session).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "readable by its user only");
    assert!(!dir.join(".ferry-admin.json").exists(), "nothing in the working directory");
    let (code, _, err) = ferry_in(&dir, &["admin", "users"]);
    assert_eq!(code, Some(0), "{err}");
}

/// A private authority and a certificate it signed for this machine, written to `dir`: the
/// authority's file, the server's certificate chain and key.
fn certificates(dir: &Path) -> (String, String, String) {
    let authority_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let authority = rcgen::CertifiedIssuer::self_signed(params, authority_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let names = vec!["localhost".to_owned()];
    let server = rcgen::CertificateParams::new(names).unwrap().signed_by(&key, &authority).unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    (
        write("authority.pem", authority.pem()),
        write("server.pem", server.pem()),
        write("server-key.pem", key.serialize_pem()),
    )
}

#[test]
fn a_device_logs_in_over_https_trusting_the_authority_it_is_given_and_no_other() {
    let dir = scratch("https");
    let (model, database) = with_users(&dir, "tls", samples::FIELD_SERVICE);
    let (authority, chain, key) = certificates(&dir);
    let files = dir.join("tls").join("files").display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--model", &model, "--database", &database, "--listen", "127.0.0.1:0"])
        .args(["--files", &files, "--tls-cert", &chain, "--tls-key", &key])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().to_owned();
    assert!(line.contains("https://"), "{line}");
    let url = format!("https://localhost:{port}");
    let db = db_path(&dir, "tls-device");
    // Not trusting the authority: refused, with its own exit code and what to do.
    let (code, err) = try_login(&dir, &db, &url, "pat");
    assert_eq!(code, Some(11), "{err}");
    assert!(err.contains("cannot be trusted") && err.contains("--ca-cert"), "{err}");
    assert!(!Path::new(&db).exists(), "nothing was made");
    // Trusting it: signed in, and the device keeps trusting it for its syncs.
    let out = run_with_stdin(
        &[
            "device",
            "--db",
            &db,
            "login",
            "--server",
            &url,
            "--user",
            "pat",
            "--password-stdin",
            "--ca-cert",
            &authority,
        ],
        PASSWORD,
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, _, err) = ferry_in(&dir, &["device", "--db", &db, "sync"]);
    assert_eq!(code, Some(0), "{err}");
    // A bad server address names what is accepted.
    let (code, err) = try_login(&dir, &db_path(&dir, "plain"), "http://sync.example.com", "pat");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("https://"), "{err}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_device_logs_in_with_a_token_of_the_identity_provider_the_server_trusts() {
    use crate::provider::{AUDIENCE, ISSUER, KeySet, Signer};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let set = KeySet::default();
    let signer = Signer::new("ed-1", jsonwebtoken::Algorithm::EdDSA);
    set.publish(&[&signer]);
    let jwks = runtime.block_on(set.serve());
    let dir = scratch("identity");
    let (model, database) = with_users(&dir, "idp", samples::FIELD_SERVICE);
    let provider = ["--idp-jwks-url", &jwks, "--idp-issuer", ISSUER, "--idp-audience", AUDIENCE];
    let served = spawn_server_with(&dir.join("idp"), &model, &database, "127.0.0.1:0", &provider);
    #[allow(clippy::disallowed_methods, reason = "the server checks tokens on the system clock")]
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let claims = |sub: &str, exp: i64| {
        let (iss, aud) = (ISSUER, AUDIENCE);
        serde_json::json!({ "iss": iss, "aud": aud, "sub": sub, "roles": ["Technician"], "exp": exp })
    };
    let now = now.as_secs() as i64;
    let login = |db: &str, token: &str| {
        let args =
            ["device", "--db", db, "--json", "login", "--server", &served.url, "--token-stdin"];
        run_with_stdin(&args, token, &dir)
    };
    let db = db_path(&dir, "tess-device");
    let out = login(&db, &signer.sign(&claims("tess", now + 600)));
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert!(answer["user_id"].as_str().is_some_and(|id| !id.is_empty()), "{answer}");
    let (code, _, err) = ferry_in(&dir, &["device", "--db", &db, "sync"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(set.fetches(), 1, "the server fetched the key set once");
    // Expired, or signed by a key the provider does not publish: refused, nothing made.
    let stranger = Signer::new("ed-2", jsonwebtoken::Algorithm::EdDSA);
    for (what, token) in [
        ("expired", signer.sign(&claims("tess", now - 3600))),
        ("unknown key", stranger.sign(&claims("tess", now + 600))),
    ] {
        let db = db_path(&dir, &format!("refused-{}", what.replace(' ', "-")));
        let out = login(&db, &token);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{what}: {err}");
        assert!(err.contains("identity token"), "{what}: {err}");
        assert!(!Path::new(&db).exists(), "{what}: nothing was made");
    }
    // A user name and a token at once is a usage error.
    let args = [
        "device",
        "--db",
        &db,
        "login",
        "--server",
        &served.url,
        "--user",
        "tess",
        "--token-stdin",
    ];
    assert_eq!(run_with_stdin(&args, "x", &dir).status.code(), Some(2));
}

#[test]
fn an_encrypted_device_works_with_its_key_and_refuses_any_other() {
    let dir = scratch("device-key");
    let served = serve(&dir, "keyed", samples::FIELD_SERVICE);
    let db = db_path(&dir, "keyed-device");
    let write_key = |name: &str, secret: &str| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        path.display().to_string()
    };
    let key =
        write_key("device.key", "7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a");
    let other =
        write_key("other.key", "0000000000000000000000000000000000000000000000000000000000000001");
    let keyed = |args: &[&str]| {
        let mut all = vec!["device", "--db", &db, "--key-file", &key];
        all.extend_from_slice(args);
        ferry_in(&dir, &all)
    };
    let keyed_login = ["device", "--db", &db, "--key-file", &key, "login", "--server", &served.url];
    let out = run_with_stdin(
        &[&keyed_login[..], &["--user", "pat", "--password-stdin"]].concat(),
        PASSWORD,
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let secret_name = "Pumping station 4411 north gate";
    for args in [
        &["create", "Field.Site", &format!("Name={secret_name}")][..],
        &["commit"][..],
        &["sync"][..],
    ] {
        let (code, _, err) = keyed(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
    }
    let mut raw = std::fs::read(&db).unwrap();
    raw.extend(std::fs::read(format!("{db}-wal")).unwrap_or_default());
    let plain = secret_name.as_bytes();
    assert!(!raw.windows(plain.len()).any(|w| w == plain), "the database holds no plaintext");
    // Without its key, or with another: exit code 12, and it says what to give.
    let wrong = ["device", "--db", &db, "--key-file", &other, "status"];
    for args in [&["device", "--db", &db, "status"][..], &wrong[..]] {
        let (code, _, err) = ferry_in(&dir, args);
        assert_eq!(code, Some(12), "{args:?}: {err}");
        assert!(err.contains("--key-file or FERRY_DEVICE_KEY"), "{err}");
    }
    let (code, out, err) = keyed(&["query", "Field.Site"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(secret_name), "{out}");
    // A photo attached on the encrypted device is sealed in its store, and reaches the server
    // whole (its hash checked there) when the device syncs.
    let photo_file = dir.join("valve.jpg");
    let photo_bytes = b"valve serial VX-99120, photographed at the north gate".repeat(20_000);
    std::fs::write(&photo_file, &photo_bytes).unwrap();
    let (code, out, err) = keyed(&["--json", "create", "Field.Photo"]);
    assert_eq!(code, Some(0), "{err}");
    let photo: Json = serde_json::from_str(&out).unwrap();
    let photo = photo["id"].as_str().unwrap().to_owned();
    for args in [&["attach", &photo, &photo_file.display().to_string()][..], &["commit"], &["sync"]]
    {
        let (code, _, err) = keyed(args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
    }
    let store: Vec<u8> = walk(Path::new(&format!("{db}.files")))
        .into_iter()
        .flat_map(|f| std::fs::read(f).unwrap())
        .collect();
    assert!(store.len() > photo_bytes.len(), "the content is in the store");
    assert!(!store.windows(8).any(|w| w == b"VX-99120"), "sealed in the device's store");
    let on_server = walk(&dir.join("keyed").join("files"));
    assert!(
        on_server.iter().any(|f| std::fs::read(f).unwrap() == photo_bytes),
        "the server holds the photo as it was attached: {on_server:?}"
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { found.extend(walk(&path)) } else { found.push(path) }
    }
    found
}

#[test]
fn an_https_address_never_falls_back_to_plain_http() {
    use std::io::{Read as _, Write as _};
    let dir = scratch("downgrade");
    // A server that speaks plain HTTP where the device was told HTTPS: it records every byte
    // it is sent and answers as an HTTP server would.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = std::sync::Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(500)));
            let mut buffer = [0u8; 4096];
            if let Ok(read) = stream.read(&mut buffer) {
                recorder.lock().unwrap().extend_from_slice(&buffer[..read]);
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        }
    });
    let db = db_path(&dir, "downgraded");
    let url = format!("https://localhost:{port}");
    let args =
        ["device", "--db", &db, "login", "--server", &url, "--user", "pat", "--password-stdin"];
    let out = run_with_stdin(&args, PASSWORD, &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(4 | 11)),
        "refused as unreachable or untrusted: {err}"
    );
    assert!(!Path::new(&db).exists(), "nothing was made");
    let received = received.lock().unwrap();
    assert!(!received.is_empty(), "the device did connect");
    let text = String::from_utf8_lossy(&received);
    assert!(!text.contains(PASSWORD) && !text.contains("sign-in"), "nothing went in the clear");
}

/// A session's refresh token as a device database keeps it.
fn refresh_token_of(db: &str) -> String {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection
        .query_row("SELECT value FROM ferry_meta WHERE key = 'refresh_token'", [], |row| row.get(0))
        .unwrap()
}

#[test]
fn expired_access_tokens_are_renewed_and_a_copied_device_ends_both_sessions() {
    let dir = scratch("sessions");
    let (model, database) = with_users(&dir, "server", samples::FIELD_SERVICE);
    let options = ["--access-token-seconds", "1"];
    let server = spawn_server_with(&dir.join("server"), &model, &database, "127.0.0.1:0", &options);
    #[allow(clippy::disallowed_methods, reason = "a served process checks the system clock")]
    let expire = || std::thread::sleep(std::time::Duration::from_millis(1_100));
    let db = db_path(&dir, "pat.db");
    login(&dir, &db, &server.url, "pat");
    let first = refresh_token_of(&db);

    // Each access token lasts a second: the device and the admin tool renew theirs unseen.
    expire();
    device_json(&dir, &db, &["sync"]);
    let second = refresh_token_of(&db);
    assert_ne!(first, second, "the refresh token rotates");
    let logged = run_with_stdin(
        &["admin", "--server", &server.url, "login", "--user", "ada", "--password-stdin"],
        PASSWORD,
        &dir,
    );
    assert_eq!(logged.status.code(), Some(0), "{}", String::from_utf8_lossy(&logged.stderr));
    expire();
    let (code, _, err) = ferry_in(&dir, &["admin", "users"]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = ferry_in(&dir, &["admin", "users"]);
    assert_eq!(code, Some(0), "{err}");

    // A copy of the device database (a backup taken, a phone cloned) renews the session
    // twice; the device then presents a refresh token that was spent: a replay. The session
    // ends for both, each told to log in again (exit code 6).
    let copy = db_path(&dir, "copy.db");
    std::fs::copy(&db, &copy).unwrap();
    for _ in 0..2 {
        expire();
        device_json(&dir, &copy, &["sync"]);
    }
    expire();
    let (code, _, err) = ferry_in(&dir, &["device", "--db", &db, "sync"]);
    assert_eq!(code, Some(6), "{err}");
    assert!(err.contains("already spent") && err.contains("log in again"), "{err}");
    expire();
    let (code, _, err) = ferry_in(&dir, &["device", "--db", &copy, "sync"]);
    assert_eq!(code, Some(6), "{err}");
    login(&dir, &db, &server.url, "pat");
    device_json(&dir, &db, &["sync"]);
}

/// Two terminals: one device watches its sites while the other commits and goes live; the
/// site appears on the watching device with no sync asked for there.
#[test]
fn a_watching_device_shows_what_another_device_commits_without_a_manual_sync() {
    use std::io::BufRead as _;
    let dir = scratch("live");
    let (model, database) = with_users(&dir, "server", samples::FIELD_SERVICE);
    let server = spawn_server(&dir.join("server"), &model, &database);
    let (writer, watcher) = (db_path(&dir, "writer.db"), db_path(&dir, "watcher.db"));
    login(&dir, &writer, &server.url, "pat");
    login(&dir, &watcher, &server.url, "pat");
    let mut watching = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["device", "--db", &watcher, "--json", "watch", "Field.Site", "--sets", "2"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(watching.stdout.take().unwrap()).lines();
    let first: Json = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["objects"], serde_json::json!([]));

    let site = device_json(&dir, &writer, &["create", "Field.Site", "Name=Depot"]);
    device_json(&dir, &writer, &["commit"]);
    // Live mode syncs as soon as its stream opens: the commit goes up, and it stops there.
    let (code, out, err) =
        ferry_in(&dir, &["device", "--db", &writer, "--json", "live", "--syncs", "1"]);
    assert_eq!(code, Some(0), "{err}");
    let events: Vec<Json> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events[0]["event"], "connected", "{out}");
    assert_eq!(
        (&events[1]["event"], &events[1]["report"]["uploaded"]),
        (&"synced".into(), &1.into())
    );

    let second: Json = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let objects = second["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1, "{second}");
    assert_eq!((&objects[0]["id"], &objects[0]["values"]["Name"]), (&site["id"], &"Depot".into()));
    assert!(watching.wait().unwrap().success(), "the watch ends after its two result sets");
}
