//! Real processes killed mid-sync: `ferry serve` killed with SIGKILL while a device uploads and
//! while one downloads (SQLite, and PostgreSQL when `FERRY_TEST_POSTGRES` is set), and a
//! `ferry device` process killed while it downloads. Each time the databases stay consistent and
//! the next sync, against a restarted server, completes with nothing lost.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ferry_client::{Query, SyncEngine, SyncMode};
use ferry_model::{Value, samples};

use crate::{Served, run_with_stdin, scratch, spawn_server};

const PASSWORD: &str = "a long password";
/// Work orders in flight when the kill comes.
const ORDERS: i64 = 20_000;

/// `ferry serve` on `database` (made on first start).
fn serve(dir: &std::path::Path, database: &str) -> Served {
    let model = dir.join("model.toml");
    std::fs::write(&model, samples::FIELD_SERVICE).unwrap();
    spawn_server(dir, &model.display().to_string(), database)
}

fn add_user(dir: &std::path::Path, database: &str, name: &str) {
    let model = dir.join("model.toml");
    std::fs::write(&model, samples::FIELD_SERVICE).unwrap();
    let model = model.display().to_string();
    let args = [
        "user",
        "add",
        name,
        "--role",
        "Planner",
        "--password-stdin",
        "--model",
        &model,
        "--database",
        database,
    ];
    assert!(run_with_stdin(&args, PASSWORD, dir).status.success());
}

/// `ORDERS` work orders, committed on the device.
fn commit_orders(db: &ferry_client::Database) {
    let mut orders = Vec::new();
    for n in 1..=ORDERS {
        let mut order = db.create("Field.WorkOrder").unwrap();
        db.set(&mut order, "Number", Value::Integer(n)).unwrap();
        db.set(&mut order, "Title", Value::String(format!("Order {n}"))).unwrap();
        orders.push(order);
    }
    db.commit(&mut orders.iter_mut().collect::<Vec<_>>()).unwrap();
}

/// A server on SQLite in `dir` holding `ORDERS` work orders, uploaded by a device.
async fn seeded_server(dir: &std::path::Path) -> Served {
    let database = format!("sqlite:{}", dir.join("server.db").display());
    add_user(dir, &database, "pat");
    let server = serve(dir, &database);
    let (writer_db, writer) = device(dir, "writer.db", &server.url).await;
    commit_orders(&writer_db);
    writer.sync(SyncMode::All).await.unwrap();
    server
}

async fn device(
    dir: &std::path::Path,
    name: &str,
    url: &str,
) -> (Arc<ferry_client::Database>, SyncEngine) {
    let db =
        Arc::new(ferry_client::Database::open(dir.join(name), samples::FIELD_SERVICE).unwrap());
    let engine = SyncEngine::new(Arc::clone(&db), url).unwrap();
    engine.sign_in("pat", PASSWORD).await.unwrap();
    (db, engine)
}

fn count(db: &ferry_client::Database) -> usize {
    db.query(&Query::new("Field.WorkOrder")).unwrap().len()
}

/// The databases to run on: SQLite, and PostgreSQL when given.
async fn databases(dir: &std::path::Path) -> Vec<String> {
    let mut found = vec![format!("sqlite:{}", dir.join("server.db").display())];
    if let Ok(url) = std::env::var("FERRY_TEST_POSTGRES") {
        let name = format!("ferry_faults_{}", std::process::id());
        let (client, connection) =
            tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        found.push(format!("{}/{name}", url.rsplit_once('/').unwrap().0));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_sync_loses_nothing_and_the_next_sync_completes() {
    let dir = scratch("kill-server");
    for database in databases(&dir).await {
        add_user(&dir, &database, "pat");
        let server = serve(&dir, &database);
        let label = database.split(':').next().unwrap().to_owned();
        let (writer_db, writer) = device(&dir, &format!("writer-{label}.db"), &server.url).await;
        commit_orders(&writer_db);

        // Killed while the upload is on its way or being applied.
        let mut server = server;
        let upload = tokio::spawn(async move { writer.sync(SyncMode::All).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(150)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let uploaded = upload.await.unwrap();
        let pending = writer_db.pending_changes().unwrap();
        eprintln!(
            "{label}: the upload {}, {pending} changes pending after the kill",
            if uploaded.is_ok() { "completed first" } else { "was cut off" }
        );
        assert!(
            pending == ORDERS as usize || pending == 0,
            "{label}: {pending} changes pending: an upload is confirmed whole or not at all"
        );
        let server = serve(&dir, &database);
        let writer = SyncEngine::new(Arc::clone(&writer_db), &server.url).unwrap();
        writer.sign_in("pat", PASSWORD).await.unwrap();
        writer.sync(SyncMode::All).await.unwrap();
        assert_eq!(writer_db.pending_changes().unwrap(), 0, "{label}");

        // Killed while a new device downloads: it holds nothing; after a restart, everything.
        let (reader_db, reader) = device(&dir, &format!("reader-{label}.db"), &server.url).await;
        let mut server = server;
        let download = tokio::spawn(async move { reader.sync(SyncMode::All).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(150)).await;
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        let outcome = download.await.unwrap();
        let held = count(&reader_db);
        eprintln!(
            "{label}: the download {}, {held} objects held after the kill",
            if outcome.is_ok() { "completed first" } else { "was cut off" }
        );
        assert!(
            held == 0 || (outcome.is_ok() && held == ORDERS as usize),
            "{label}: a download cut off part way left {held} objects"
        );
        let server = serve(&dir, &database);
        let reader = SyncEngine::new(Arc::clone(&reader_db), &server.url).unwrap();
        reader.sign_in("pat", PASSWORD).await.unwrap();
        reader.sync(SyncMode::All).await.unwrap();
        assert_eq!(count(&reader_db), ORDERS as usize, "{label}: nothing lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_process_killed_mid_download_keeps_its_database_and_syncs_again() {
    let dir = scratch("kill-device");
    let server = seeded_server(&dir).await;

    let db = dir.join("killed.db").display().to_string();
    let mut login = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["device", "--db", &db, "login", "--server", &server.url, "--user", "pat"])
        .env("FERRY_PASSWORD", PASSWORD)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(login.wait().unwrap().success());
    let mut sync = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["device", "--db", &db, "sync"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sync.kill().unwrap();
    let killed = sync.wait().unwrap();
    eprintln!("the device process: {killed}");
    let query = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["device", "--db", &db, "--json", "query", "Field.WorkOrder", "--limit", "1"])
        .output()
        .unwrap();
    assert!(
        query.status.success(),
        "the database opens after the kill: {}",
        String::from_utf8_lossy(&query.stderr)
    );
    let synced = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["device", "--db", &db, "--json", "sync"])
        .output()
        .unwrap();
    assert!(synced.status.success(), "{}", String::from_utf8_lossy(&synced.stderr));
    let reopened = ferry_client::Database::open_existing(&db).unwrap();
    assert_eq!(
        count(&reopened),
        ORDERS as usize,
        "killed with {killed}; the next sync brought everything"
    );
    assert_eq!(reopened.pending_changes().unwrap(), 0);
}

/// PostgreSQL drops every connection of the server mid-sync (as a restart does): the sync
/// completes, or fails with an error that says to try again; the retry succeeds; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dropping_the_servers_connections_mid_sync_gives_a_clear_error_and_the_retry_succeeds()
 {
    let Ok(url) = std::env::var("FERRY_TEST_POSTGRES") else {
        eprintln!("skipped: FERRY_TEST_POSTGRES unset");
        return;
    };
    let dir = scratch("pg-restart");
    let name = format!("ferry_pg_restart_{}", std::process::id());
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let database = format!("{}/{name}", url.rsplit_once('/').unwrap().0);
    add_user(&dir, &database, "pat");
    let server = serve(&dir, &database);
    let (db, engine) = device(&dir, "device.db", &server.url).await;
    commit_orders(&db);
    let engine = Arc::new(engine);
    let syncing = Arc::clone(&engine);
    let sync = tokio::spawn(async move { syncing.sync(SyncMode::All).await });
    // Wait until the server is inside a transaction on the database, then drop its connections.
    let busy =
        format!("SELECT pid FROM pg_stat_activity WHERE datname = '{name}' AND state <> 'idle'");
    for _ in 0..2_000 {
        if !admin.query(&busy, &[]).await.unwrap().is_empty() || sync.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let dropped = admin
        .query(
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ),
            &[],
        )
        .await
        .unwrap()
        .len();
    let first = sync.await.unwrap();
    eprintln!("{dropped} connections dropped; the sync: {:?}", first.as_ref().map(|r| r.uploaded));
    if let Err(error) = &first {
        let text = error.to_string();
        assert!(
            text.contains("try again") || text.contains("cannot reach"),
            "a clear error: {text}"
        );
    }
    let report = engine.sync(SyncMode::All).await.unwrap();
    assert_eq!(db.pending_changes().unwrap(), 0, "{report:?}");
    let (fresh, fresh_engine) = device(&dir, "fresh.db", &server.url).await;
    fresh_engine.sync(SyncMode::All).await.unwrap();
    assert_eq!(count(&fresh), ORDERS as usize, "nothing lost, nothing twice");
}

/// A device whose disk fills while it downloads (its process may not grow files past 1 MiB):
/// a clear error, and the changes it had committed are not lost; with room again, the sync
/// completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_on_the_device_gives_a_clear_error_and_loses_nothing_committed() {
    let dir = scratch("disk-full");
    let server = seeded_server(&dir).await;

    let db = dir.join("small.db").display().to_string();
    let ferry = env!("CARGO_BIN_EXE_ferry");
    let run = |args: &[&str]| {
        Command::new(ferry)
            .args(["device", "--db", &db])
            .args(args)
            .env("FERRY_PASSWORD", PASSWORD)
            .output()
            .unwrap()
    };
    assert!(run(&["login", "--server", &server.url, "--user", "pat"]).status.success());
    for name in ["North", "South", "East"] {
        assert!(run(&["create", "Field.Site", &format!("Name={name}")]).status.success());
    }
    assert!(run(&["commit"]).status.success());

    // The same command with a file size limit: writes past it fail as on a full disk.
    let limited = format!("trap '' XFSZ; ulimit -f 1024; exec {ferry} device --db {db} sync");
    let full = Command::new("sh").args(["-c", &limited]).output().unwrap();
    let err = String::from_utf8_lossy(&full.stderr);
    eprintln!("with the limit: {:?} {err}", full.status.code());
    assert_eq!(full.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: device database:"),
        "one line naming the device database: {err}"
    );

    // Nothing committed is lost: the sites are pending on the device, or on the server.
    let reopened = ferry_client::Database::open_existing(&db).unwrap();
    let pending = reopened.pending_changes().unwrap();
    drop(reopened);
    assert!(pending == 3 || pending == 0, "{pending} pending");
    let synced = run(&["sync"]);
    assert!(synced.status.success(), "{}", String::from_utf8_lossy(&synced.stderr));
    let reopened = ferry_client::Database::open_existing(&db).unwrap();
    assert_eq!(reopened.pending_changes().unwrap(), 0);
    assert_eq!(count(&reopened), ORDERS as usize);
    let (fresh, engine) = device(&dir, "fresh.db", &server.url).await;
    engine.sync(SyncMode::All).await.unwrap();
    assert_eq!(
        fresh.query(&Query::new("Field.Site")).unwrap().len(),
        3,
        "the sites reached the server"
    );
}

/// Sends SIGTERM, as a service manager stops a service.
fn terminate(server: &Served) {
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
}

/// `ferry serve` with more options, on a database that `add_user` made.
fn serve_with(dir: &std::path::Path, database: &str, options: &[&str]) -> Served {
    let model = dir.join("model.toml").display().to_string();
    crate::spawn_server_with(dir, &model, database, "127.0.0.1:0", options)
}

/// One HTTP/1.1 exchange on a connection of its own; the answer's status line and body.
fn exchange(address: &str, request: &str) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn token(address: &str) -> String {
    let body = format!(r#"{{"user":"pat","password":"{PASSWORD}"}}"#);
    let answer = exchange(
        address,
        &format!(
            "POST /v1/sign-in HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let json: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    json["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_requests_finish_then_exits_0() {
    use sha2::Digest as _;
    use std::io::{Read as _, Write as _};
    let dir = scratch("sigterm-grace");
    for database in databases(&dir).await {
        add_user(&dir, &database, "pat");
        let label = database.split(':').next().unwrap().to_owned();
        let mut server = serve_with(&dir, &database, &["--shutdown-grace-ms", "60000"]);
        let address = server.url.trim_start_matches("http://").to_owned();
        let token = token(&address);
        // A file content on its way when the signal comes: half sent, then the rest.
        let content = vec![7u8; 64 * 1024];
        let hash: String =
            sha2::Sha256::digest(&content).iter().map(|b| format!("{b:02x}")).collect();
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        let head = format!(
            "PUT /v1/files/{hash} HTTP/1.1\r\nHost: ferry\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            content.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&content[..content.len() / 2]).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        terminate(&server);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            std::net::TcpStream::connect(&address).is_err(),
            "{label}: no new connection is taken once stopping"
        );
        stream.write_all(&content[content.len() / 2..]).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "{label}: the request in flight finished: {answer}"
        );
        let status = server.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{label}: a stop asked for is a clean exit");

        // A device uploading when the signal comes: its upload is applied and answered, or
        // cut off as by a network failure; either way the next sync leaves nothing behind.
        let server = serve_with(&dir, &database, &["--shutdown-grace-ms", "60000"]);
        let (writer_db, writer) = device(&dir, &format!("writer-{label}.db"), &server.url).await;
        commit_orders(&writer_db);
        let mut server = server;
        let upload = tokio::spawn(async move { writer.sync(SyncMode::All).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        terminate(&server);
        assert_eq!(server.child.wait().unwrap().code(), Some(0), "{label}");
        match upload.await.unwrap() {
            Ok(()) => {}
            Err(ferry_client::SyncError::Unreachable { .. }) => {}
            Err(other) => panic!("{label}: a stopping server is a network failure, not {other}"),
        }
        let pending = writer_db.pending_changes().unwrap();
        assert!(pending == 0 || pending == ORDERS as usize, "{label}: {pending} pending");
        let server = serve_with(&dir, &database, &[]);
        let writer = SyncEngine::new(Arc::clone(&writer_db), &server.url).unwrap();
        writer.sync(SyncMode::All).await.unwrap();
        assert_eq!(writer_db.pending_changes().unwrap(), 0, "{label}");
        let (reader_db, reader) = device(&dir, &format!("reader-{label}.db"), &server.url).await;
        reader.sync(SyncMode::All).await.unwrap();
        assert_eq!(count(&reader_db), ORDERS as usize, "{label}: each applied once, none lost");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cut_off_by_the_grace_period_retries_and_loses_nothing() {
    let dir = scratch("sigterm-cut");
    for database in databases(&dir).await {
        add_user(&dir, &database, "pat");
        let label = database.split(':').next().unwrap().to_owned();
        let server = serve_with(&dir, &database, &[]);
        let (writer_db, writer) = device(&dir, &format!("writer-{label}.db"), &server.url).await;
        commit_orders(&writer_db);
        writer.sync(SyncMode::All).await.unwrap();
        drop(server);

        // A new device downloads while the server is told to stop with no grace at all.
        let mut server = serve_with(&dir, &database, &["--shutdown-grace-ms", "1"]);
        let (reader_db, reader) = device(&dir, &format!("reader-{label}.db"), &server.url).await;
        let download = tokio::spawn(async move { reader.sync(SyncMode::All).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(150)).await;
        terminate(&server);
        let status = server.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{label}: the stop is a clean exit, grace or not");
        let outcome = download.await.unwrap();
        let held = count(&reader_db);
        eprintln!(
            "{label}: the download {}, {held} objects held after the stop",
            if outcome.is_ok() { "completed first" } else { "was cut off" }
        );
        assert!(held == 0 || (outcome.is_ok() && held == ORDERS as usize), "{label}: {held}");
        let server = serve_with(&dir, &database, &[]);
        let reader = SyncEngine::new(Arc::clone(&reader_db), &server.url).unwrap();
        reader.sync(SyncMode::All).await.unwrap();
        assert_eq!(count(&reader_db), ORDERS as usize, "{label}: nothing lost");
    }
}

/// `ferry backup` while a device uploads: the copy holds the upload whole or not at all, a
/// server started on it serves exactly that, and a backup after the upload holds it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_writes_is_consistent_and_serves_as_it_was() {
    let dir = scratch("backup");
    let database = format!("sqlite:{}", dir.join("server.db").display());
    add_user(&dir, &database, "pat");
    let server = serve(&dir, &database);
    let (writer_db, writer) = device(&dir, "writer.db", &server.url).await;
    commit_orders(&writer_db);
    let upload = tokio::spawn(async move { writer.sync(SyncMode::All).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let files = dir.join("files").display().to_string();
    let during = dir.join("backup-during");
    let took = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["backup", "--database", &database, "--files", &files, "--to"])
        .arg(&during)
        .output()
        .unwrap();
    assert!(took.status.success(), "{}", String::from_utf8_lossy(&took.stderr));
    upload.await.unwrap().unwrap();
    let after = dir.join("backup-after");
    let took = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["backup", "--database", &database, "--files", &files, "--to"])
        .arg(&after)
        .output()
        .unwrap();
    assert!(took.status.success(), "{}", String::from_utf8_lossy(&took.stderr));
    drop(server);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(after.join("backup.json")).unwrap()).unwrap();
    assert!(manifest["made_at"].is_string(), "{manifest}");

    for (copy, whole) in [(&during, false), (&after, true)] {
        let restored = format!("sqlite:{}", copy.join("ferry.db").display());
        let model = dir.join("model.toml").display().to_string();
        // The server's files are `<dir>/files`: the backup's own.
        let server = crate::spawn_server_with(copy, &model, &restored, "127.0.0.1:0", &[]);
        let name = format!("reader-{}.db", copy.file_name().unwrap().to_string_lossy());
        let (reader_db, reader) = device(&dir, &name, &server.url).await;
        reader.sync(SyncMode::All).await.unwrap();
        let held = count(&reader_db);
        assert!(
            held == 0 || held == ORDERS as usize,
            "{}: {held}: an upload is whole or absent",
            copy.display()
        );
        if whole {
            assert_eq!(held, ORDERS as usize, "the backup after the upload holds it");
        }
    }
    // A directory holding something already is refused, and nothing is written into it.
    let refused = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["backup", "--database", &database, "--to"])
        .arg(&after)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("holds something already"));
}

/// Every work order a device holds: id, Number and Title.
fn orders(db: &ferry_client::Database) -> Orders {
    let held = db.query(&Query::new("Field.WorkOrder")).unwrap();
    held.iter()
        .map(|o| {
            let number = db.get_value(o, "Number").unwrap().clone();
            let title = db.get_value(o, "Title").unwrap().clone();
            (o.id().to_string(), (number, title))
        })
        .collect()
}

type Orders = std::collections::BTreeMap<String, (Value, Value)>;

/// Fails naming the orders a device holds otherwise than a fresh device does.
fn same(held: &Orders, fresh: &Orders, who: &str) {
    let differ: Vec<String> = held
        .iter()
        .filter(|(id, state)| fresh.get(*id) != Some(state))
        .map(|(id, state)| format!("{id} {state:?} (fresh: {:?})", fresh.get(id)))
        .chain(fresh.keys().filter(|id| !held.contains_key(*id)).map(|id| format!("{id} missing")))
        .collect();
    assert!(differ.is_empty(), "{who} holds otherwise than a fresh device: {differ:?}");
}

/// The work order numbered `number` on the device.
fn order(db: &ferry_client::Database, number: i64) -> Option<ferry_client::Object> {
    let held = db.query(&Query::new("Field.WorkOrder")).unwrap();
    held.into_iter().find(|o| db.get_value(o, "Number").unwrap() == &Value::Integer(number))
}

fn retitle(db: &ferry_client::Database, number: i64, title: &str) {
    let mut found = order(db, number).unwrap();
    db.set(&mut found, "Title", Value::String(title.to_owned())).unwrap();
    db.commit(&mut [&mut found]).unwrap();
}

fn title(db: &ferry_client::Database, number: i64) -> Option<Value> {
    order(db, number).map(|o| db.get_value(&o, "Title").unwrap().clone())
}

fn commit_numbered(db: &ferry_client::Database, numbers: std::ops::RangeInclusive<i64>) {
    let mut made = Vec::new();
    for n in numbers {
        let mut order = db.create("Field.WorkOrder").unwrap();
        db.set(&mut order, "Number", Value::Integer(n)).unwrap();
        db.set(&mut order, "Title", Value::String(format!("Order {n}"))).unwrap();
        made.push(order);
    }
    db.commit(&mut made.iter_mut().collect::<Vec<_>>()).unwrap();
}

fn ferry_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().unwrap();
    assert!(out.status.success(), "ferry {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Takes the backup (on PostgreSQL, `ferry backup` for the file contents and the `pg_dump` it
/// names), then, once the server stopped, wipes the data and puts the backup back with
/// `pg_restore` and `ferry restore`.
struct Backup {
    dir: std::path::PathBuf,
    database: String,
    files: String,
    model: String,
}

impl Backup {
    fn take(&self) {
        let to = self.dir.display().to_string();
        let args = ["backup", "--database", &self.database, "--files", &self.files, "--to", &to];
        ferry_ok(&args);
        if self.database.starts_with("postgres") {
            let dump = self.dir.join("ferry.pgdump").display().to_string();
            let out = Command::new("pg_dump")
                .args(["--format=custom", "--file", &dump, &self.database])
                .output()
                .unwrap();
            assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    async fn wipe_and_restore(&self) -> String {
        std::fs::remove_dir_all(&self.files).unwrap();
        if let Some(path) = self.database.strip_prefix("sqlite:") {
            for end in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{end}"));
            }
        } else {
            let (base, name) = self.database.rsplit_once('/').unwrap();
            let url = std::env::var("FERRY_TEST_POSTGRES").unwrap();
            let (client, connection) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute(&format!("DROP DATABASE {name}")).await.unwrap();
            client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
            let dump = self.dir.join("ferry.pgdump").display().to_string();
            let target = format!("{base}/{name}");
            let out = Command::new("pg_restore")
                .args(["--no-owner", "--dbname", &target, &dump])
                .output()
                .unwrap();
            assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));
        }
        let from = self.dir.display().to_string();
        let args = [
            "restore",
            "--from",
            &from,
            "--database",
            &self.database,
            "--files",
            &self.files,
            "--model",
            &self.model,
        ];
        ferry_ok(&args)
    }
}

/// Backup while a device writes, more changes by three devices after it, wipe, restore: a fresh
/// device sees exactly what the backup holds, and the devices that synced after the backup
/// converge with nothing of theirs lost, even where the restored server gives an object a
/// revision a device already holds for another state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_from_a_backup_loses_nothing_a_device_uploaded_after_it() {
    let dir = scratch("restore");
    for database in databases(&dir).await {
        let label = database.split(':').next().unwrap().to_owned();
        add_user(&dir, &database, "pat");
        let backup = Backup {
            dir: dir.join(format!("backup-{label}")),
            database: database.clone(),
            files: dir.join("files").display().to_string(),
            model: dir.join("model.toml").display().to_string(),
        };
        let server = serve(&dir, &database);
        let named = |name: &str| format!("{name}-{label}.db");
        let (a_db, a) = device(&dir, &named("a"), &server.url).await;
        commit_numbered(&a_db, 1..=50);
        a.sync(SyncMode::All).await.unwrap();
        let (b_db, b) = device(&dir, &named("b"), &server.url).await;
        let (l_db, l) = device(&dir, &named("l"), &server.url).await;
        let (r_db, r) = device(&dir, &named("r"), &server.url).await;
        for engine in [&b, &l, &r] {
            engine.sync(SyncMode::All).await.unwrap();
        }
        let before = orders(&r_db);

        // The backup is taken while 2,000 more orders are on their way up.
        commit_numbered(&a_db, 1001..=3000);
        let a = Arc::new(a);
        let writer = Arc::clone(&a);
        let upload = tokio::spawn(async move { writer.sync(SyncMode::All).await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(100)).await;
        backup.take();
        upload.await.unwrap().unwrap();
        r.sync(SyncMode::All).await.unwrap();
        let after = orders(&r_db);

        // After the backup: A changes, creates and deletes; B and L change one order each.
        retitle(&a_db, 1, "A after the backup");
        commit_numbered(&a_db, 9001..=9001);
        let mut second = order(&a_db, 2).unwrap();
        a_db.delete(&mut second).unwrap();
        a.sync(SyncMode::All).await.unwrap();
        retitle(&b_db, 4, "B after the backup");
        b.sync(SyncMode::All).await.unwrap();
        retitle(&l_db, 3, "L after the backup");
        l.sync(SyncMode::All).await.unwrap();
        a.sync(SyncMode::All).await.unwrap();
        assert_eq!(title(&a_db, 3), Some(Value::String("L after the backup".into())));
        drop(server);

        let said = backup.wipe_and_restore().await;
        assert!(said.contains("epoch"), "{label}: {said}");
        let server = serve(&dir, &database);
        let (c_db, c) = device(&dir, &named("c"), &server.url).await;
        c.sync(SyncMode::All).await.unwrap();
        let restored = orders(&c_db);
        assert!(
            restored == before || restored == after,
            "{label}: a fresh device sees the data as it was at the backup ({} orders, {} before the upload, {} after it)",
            restored.len(),
            before.len(),
            after.len()
        );
        eprintln!(
            "{label}: the backup holds {} orders ({} before the upload in flight, {} after it)",
            restored.len(),
            before.len(),
            after.len()
        );
        // L never syncs again. On the restored server order 3 changes once more, so it gets
        // the revision A holds for L's lost title.
        retitle(&c_db, 3, "C after the restore");
        c.sync(SyncMode::All).await.unwrap();

        for db in [&a_db, &b_db, &a_db] {
            let engine = SyncEngine::new(Arc::clone(db), &server.url).unwrap();
            engine.sync(SyncMode::All).await.unwrap();
        }
        assert_eq!(a_db.pending_changes().unwrap(), 0, "{label}");
        assert_eq!(b_db.pending_changes().unwrap(), 0, "{label}");
        let (f_db, f) = device(&dir, &named("f"), &server.url).await;
        f.sync(SyncMode::All).await.unwrap();
        let fresh = orders(&f_db);
        same(&orders(&a_db), &fresh, &format!("{label}: A"));
        let b2 = SyncEngine::new(Arc::clone(&b_db), &server.url).unwrap();
        b2.sync(SyncMode::All).await.unwrap();
        same(&orders(&b_db), &fresh, &format!("{label}: B"));
        assert_eq!(
            fresh.len(),
            50 + 2000 + 1 - 1,
            "{label}: every order A made is there, order 2 is not"
        );
        assert_eq!(title(&f_db, 1), Some(Value::String("A after the backup".into())));
        assert_eq!(title(&f_db, 4), Some(Value::String("B after the backup".into())));
        assert_eq!(title(&f_db, 3), Some(Value::String("C after the restore".into())));
        assert!(order(&f_db, 2).is_none() && order(&f_db, 9001).is_some(), "{label}");
        drop(server);
    }
}
