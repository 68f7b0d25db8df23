//! The `ferry` binary run as a user runs it: output and exit codes.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on any error")]

use std::path::PathBuf;
use std::process::{Command, Output};

use expect_test::expect;

mod faults;
mod people;
#[path = "../../../ferry-server/tests/it/provider.rs"]
mod provider;
use ferry_model::samples;

fn ferry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry")).args(args).output().expect("the ferry binary runs")
}

/// A scratch directory for this test's files, fresh each run.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn text(bytes: &[u8], dir: &std::path::Path) -> String {
    String::from_utf8_lossy(bytes).replace(&dir.display().to_string(), "DIR")
}

#[test]
fn check_prints_a_summary_and_the_version() {
    let dir = scratch("check");
    let path = write(&dir, "field_service.toml", samples::FIELD_SERVICE);
    let output = ferry(&["model", "check", &path]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr, &dir));
    let stdout = text(&output.stdout, &dir);
    assert!(stdout.starts_with("DIR/field_service.toml: valid\nversion "), "{stdout}");
    assert!(stdout.contains(&samples::field_service().version().to_string()));
    assert!(stdout.contains(
        "Field.WorkOrder          8 attributes, 2 associations, 3 access rules, download constraint"
    ));
}

#[test]
fn check_reports_every_error_with_line_and_column() {
    let dir = scratch("invalid");
    let broken = samples::FIELD_SERVICE
        .replace("type = \"datetime\", required = true", "type = \"timestamp\", required = true")
        .replace("[Field.WorkOrder_AssignedTo = '[%CurrentUser%]']", "[Field.WorkOrder_AssignedTo = '[%CurrentUsr%]']")
        .replace("{ role = \"Planner\", read = [\"*\"] },\n  { role = \"Admin\", create = true, delete = true, read = [\"*\"], write = [\"*\"] },\n]\n\n[entities.\"Field.Photo\"]", "{ role = \"Planer\", read = [\"*\"] },\n  { role = \"Admin\", create = true, delete = true, read = [\"*\"], write = [\"*\"] },\n]\n\n[entities.\"Field.Photo\"]");
    let path = write(&dir, "broken.toml", &broken);
    let output = ferry(&["model", "check", &path]);
    assert_eq!(output.status.code(), Some(2));
    expect![[r#"
        DIR/broken.toml:73:33: attribute `Field.Visit.StartedAt` has unknown type `timestamp` (expected string, integer, decimal, boolean, datetime, enumeration or binary)
        DIR/broken.toml:80:12: entity `Field.Visit`: access rule names unknown role `Planer`
        DIR/broken.toml: 2 errors; the model is refused
    "#]]
    .assert_eq(&text(&output.stderr, &dir));
    // Once the structure is valid, constraint errors are reported with their positions too.
    let path = write(
        &dir,
        "constraint.toml",
        &samples::FIELD_SERVICE.replace(
            "'[%CurrentUser%]']\" },\n  { role = \"Planner\", create = true",
            "'[%CurrentUsr%]']\" },\n  { role = \"Planner\", create = true",
        ),
    );
    let output = ferry(&["model", "check", &path]);
    assert_eq!(output.status.code(), Some(2));
    expect![[r#"
        DIR/constraint.toml:66:126: entity `Field.WorkOrder`: access rule for role `Technician` constraint: unknown token `[%CurrentUsr%]` (expected CurrentUser, CurrentDateTime, BeginOfCurrentDay, BeginOfTomorrow, BeginOfYesterday or UserRole_<role>)
        DIR/constraint.toml: 1 error; the model is refused
    "#]]
    .assert_eq(&text(&output.stderr, &dir));
}

#[test]
fn check_of_a_missing_file_is_an_io_error() {
    let output = ferry(&["model", "check", "/nonexistent/model.toml"]);
    assert_eq!(output.status.code(), Some(1));
    expect![[r#"
        error: read model file /nonexistent/model.toml: No such file or directory (os error 2)
    "#]]
    .assert_eq(&String::from_utf8_lossy(&output.stderr));
}

#[test]
fn diff_prints_the_plan_and_statements() {
    let dir = scratch("diff");
    let old = write(&dir, "old.toml", samples::FIELD_SERVICE);
    let new = write(
        &dir,
        "new.toml",
        &samples::FIELD_SERVICE.replace("attributes.Notes = { type = \"string\", max_length = 2000 }", "attributes.Notes = { type = \"string\", max_length = 2000 }\nattributes.Urgent = { type = \"boolean\", default = false }"),
    );
    let output = ferry(&["model", "diff", &old, &new, "--sql", "sqlite"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr, &dir));
    let stdout = text(&output.stdout, &dir);
    let plan: String = stdout.lines().skip(2).map(|l| format!("{l}\n")).collect();
    expect![[r#"
        + add attribute `Field.WorkOrder.Urgent` (boolean), existing objects get the default false
        statements (server database):
        ALTER TABLE "Field.WorkOrder" ADD COLUMN "Urgent" INTEGER DEFAULT 0;
    "#]]
    .assert_eq(&plan);
}

#[test]
fn diff_with_breaking_changes_exits_3() {
    let dir = scratch("breaking");
    let old = write(&dir, "old.toml", samples::SALES);
    let new = write(
        &dir,
        "new.toml",
        &samples::SALES.replace("attributes.Discount = { type = \"decimal\", scale = 4 }\n", ""),
    );
    let output = ferry(&["model", "diff", &old, &new]);
    assert_eq!(output.status.code(), Some(3));
    assert!(text(&output.stdout, &dir).contains(
        "! breaking: attribute `Sales.Order.Discount` was removed; its values would be lost"
    ));
}

#[test]
fn bad_usage_prints_usage_and_exits_2() {
    let output = ferry(&["model", "frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: unrecognized subcommand 'frobnicate'"), "{stderr}");
    assert!(stderr.contains("Usage: ferry model <COMMAND>"), "{stderr}");
    let output = ferry(&["serve", "--lisen", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unexpected argument '--lisen'") && stderr.contains("--listen"),
        "{stderr}"
    );
    // A device command given --json also says so as a JSON document.
    let output = ferry(&["device", "--db", "x.db", "--json", "sync", "--mode"]);
    assert_eq!(output.status.code(), Some(2));
    let document: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(document["error"]["code"], "invalid", "{document}");
}

#[test]
fn every_command_has_help_and_the_version() {
    let version = ferry(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("ferry {}\n", env!("CARGO_PKG_VERSION"))
    );
    for command in [
        &["--help"][..],
        &["serve", "--help"],
        &["user", "add", "--help"],
        &["model", "diff", "--help"],
        &["device", "--help"],
        &["device", "sync", "--help"],
        &["device", "login", "--help"],
        &["admin", "user", "roles", "--help"],
        &["admin", "failures", "--help"],
        &["bench", "--help"],
        &["completions", "--help"],
    ] {
        let output = ferry(command);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{command:?}");
        assert!(stdout.contains("Usage: ferry"), "{command:?}: {stdout}");
    }
    let help = String::from_utf8_lossy(&ferry(&["serve", "--help"]).stdout).into_owned();
    assert!(help.contains("[env: FERRY_DATABASE") && help.contains("--config <FILE>"), "{help}");
    let completions = ferry(&["completions", "bash"]);
    let script = String::from_utf8_lossy(&completions.stdout);
    assert!(completions.status.success() && script.contains("_ferry()"), "{script}");
}

/// Starts `ferry serve` with these arguments and environment; the address it serves on, or
/// what it said on standard error when it did not start.
fn serve_address(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<String, String> {
    use std::io::BufRead as _;
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command.arg("serve").args(args).current_dir(dir);
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    match line.split("http://").nth(1) {
        Some(address) => Ok(address.trim().to_owned()),
        None => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

#[test]
fn serve_takes_flags_then_the_environment_then_a_config_file() {
    let dir = scratch("config");
    let model = write(&dir, "model.toml", samples::FIELD_SERVICE);
    let config = write(
        &dir,
        "ferry.toml",
        &format!(
            "model = \"{model}\"\ndatabase = \"sqlite:from-file.db\"\nlisten = \"127.0.0.1:0\"\n"
        ),
    );
    // The file alone.
    let address = serve_address(&dir, &["--config", &config], &[]).unwrap();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert!(dir.join("from-file.db").exists());
    // The environment beats the file; a flag beats the environment.
    let env = [("FERRY_CONFIG", config.as_str()), ("FERRY_DATABASE", "sqlite:from-env.db")];
    serve_address(&dir, &[], &env).unwrap();
    assert!(dir.join("from-env.db").exists());
    serve_address(&dir, &["--database", "sqlite:from-flag.db"], &env).unwrap();
    assert!(dir.join("from-flag.db").exists());
    let wrong = [("FERRY_CONFIG", config.as_str()), ("FERRY_LISTEN", "nowhere")];
    let said = serve_address(&dir, &[], &wrong).unwrap_err();
    assert!(said.contains("listen on nowhere"), "{said}");
    serve_address(&dir, &["--listen", "127.0.0.1:0"], &wrong).unwrap();
    // A key the file should not have is named.
    let typo = write(&dir, "typo.toml", "modle = \"x\"\n");
    let said = serve_address(&dir, &["--config", &typo], &[]).unwrap_err();
    assert!(said.contains("unknown field `modle`"), "{said}");
}

#[test]
fn quick_benchmark_runs() {
    let output = ferry(&["bench", "--quick"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("evaluate 3 clauses") && stdout.contains("parse+check"), "{stdout}");
    assert!(stdout.contains("live fleet one change to 20 watching devices"), "{stdout}");
}

#[test]
fn user_add_then_serve_then_sign_in_over_http() {
    use std::io::{BufRead, Read, Write};
    let dir = scratch("serve");
    let model = write(&dir, "model.toml", samples::FIELD_SERVICE);
    let database = format!("sqlite:{}", dir.join("data/ferry.db").display());
    let add = |name: &str, role: &str, password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args([
                "user",
                "add",
                name,
                "--role",
                role,
                "--password-stdin",
                "--model",
                &model,
                "--database",
                &database,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let added = add("alice", "Technician", "a long password");
    assert_eq!(added.status.code(), Some(0), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(
        String::from_utf8_lossy(&added.stdout)
            .starts_with("user alice (Technician) added with id ")
    );
    let refused = add("bob", "Wizard", "a long password");
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&refused.stderr), "error: unknown role `Wizard`\n");

    let mut server = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--model", &model, "--database", &database, "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.trim().rsplit("http://").next().unwrap().to_owned();
    let body = r#"{"user":"alice","password":"a long password"}"#;
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    write!(stream, "POST /v1/sign-in HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200 OK") && response.contains("\"roles\":[\"Technician\"]"),
        "{response}"
    );
}

/// The README's first command: the whole story runs, every step checked, and it exits 0.
/// A run of 64 hexadecimal digits: what an access or refresh token looks like (and a file's
/// SHA-256, which a log has no business holding either).
fn has_token_like_run(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 64 {
            return true;
        }
    }
    false
}

#[test]
fn the_quickstarts_full_log_holds_no_password_token_or_value() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("quickstart")
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("answered") && log.contains("upload applied"), "{log}");
    assert!(log.contains("change rejected into SynchronizationError"), "{log}");
    assert!(!log.contains("quickstart password"), "a password in the log:\n{log}");
    assert!(!has_token_like_run(&log), "a token in the log:\n{log}");
    // Attribute values the story writes (titles, notes, a site's name) stay out of it.
    for value in ["Riverside pumping station", "pump is noisy", "seal replaced", "Clean filters"] {
        let story = String::from_utf8_lossy(&output.stdout);
        assert!(
            !log.contains(value),
            "`{value}` in the log (the story has it: {})",
            story.contains(value)
        );
    }
}

#[test]
fn quickstart_tells_the_whole_story_and_exits_0() {
    let output = ferry(&["quickstart"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for step in [
        "1.  First sync",
        "2.  Offline edits on both devices",
        "3.  A conflicting edit",
        "4.  A rejected change, replayed by an admin",
        "5.  A selected-objects sync",
        "6.  A sync-to-device action",
        "7.  A photo",
    ] {
        assert!(stdout.contains(step), "missing `{step}` in\n{stdout}");
    }
    assert!(stdout.contains("Every step did what it says."), "{stdout}");
}

/// `ferry serve` in a process of its own, killed when dropped.
struct Served {
    child: std::process::Child,
    url: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ferry serve` for the model file `model` on `database`, its file contents in `dir`.
fn spawn_server(dir: &std::path::Path, model: &str, database: &str) -> Served {
    spawn_server_at(dir, model, database, "127.0.0.1:0")
}

/// [`spawn_server`] listening on `listen`.
fn spawn_server_at(dir: &std::path::Path, model: &str, database: &str, listen: &str) -> Served {
    spawn_server_with(dir, model, database, listen, &[])
}

/// [`spawn_server_at`] with more options for `ferry serve`.
fn spawn_server_with(
    dir: &std::path::Path,
    model: &str,
    database: &str,
    listen: &str,
    options: &[&str],
) -> Served {
    use std::io::BufRead as _;
    let files = dir.join("files").display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--model", model, "--database", database, "--listen", listen])
        .args(["--files", &files])
        .args(options)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = format!("http://{}", line.trim().rsplit("http://").next().unwrap());
    Served { child, url }
}

/// Runs `ferry` in `dir` with `input` on standard input.
fn run_with_stdin(args: &[&str], input: &str, dir: &std::path::Path) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A command refusing its arguments may end before reading its input: the pipe is closed.
    let _ = child.stdin.take().unwrap().write_all(format!("{input}\n").as_bytes());
    child.wait_with_output().unwrap()
}

/// `ferry serve` on a port of its own with these options, its log to `log`; and its URL.
fn serve_logging(
    serving: &[&str],
    logging: &[&str],
    log: impl Into<std::process::Stdio>,
) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(serving)
        .args(logging)
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = format!("http://{}", line.trim().rsplit("http://").next().unwrap());
    (child, url)
}

/// The planner pat signs in on a device (`dir/pat.db`), creates a site and syncs it.
fn pat_syncs_a_site(dir: &std::path::Path, url: &str, password: &str) {
    let device = |args: &[&str]| {
        let db = dir.join("pat.db").display().to_string();
        let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(["device", "--db", &db, "--json"])
            .args(args)
            .env("FERRY_PASSWORD", password)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    };
    device(&["login", "--server", url, "--user", "pat"]);
    device(&["create", "Field.Site", "Name=Secret Valley Works"]);
    device(&["commit"]);
    device(&["sync"]);
}

#[test]
fn the_server_logs_each_request_as_json_and_no_secret() {
    let dir = scratch("json-log");
    let model = write(&dir, "model.toml", samples::FIELD_SERVICE);
    let database = format!("sqlite:{}", dir.join("server.db").display());
    let password = "a password nobody logs";
    for (name, role) in [("pat", "Planner"), ("ada", "Admin")] {
        let args = ["user", "add", name, "--role", role, "--password-stdin", "--model", &model];
        assert!(
            run_with_stdin(&[&args[..], &["--database", &database]].concat(), password, &dir)
                .status
                .success()
        );
    }
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let serving = ["--model", &model, "--database", &database];
    let (mut child, url) =
        serve_logging(&serving, &["--log", "debug", "--log-format", "json"], log);
    pat_syncs_a_site(&dir, &url, password);
    let session = dir.join("admin.json").display().to_string();
    let admin = ["admin", "--server", &url, "--session", &session];
    assert!(
        run_with_stdin(
            &[&admin[..], &["login", "--user", "ada", "--password-stdin"]].concat(),
            password,
            &dir
        )
        .status
        .success()
    );
    assert!(run_with_stdin(&[&admin[..], &["history"]].concat(), "", &dir).status.success());
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let upload = lines
        .iter()
        .find(|l| l["message"] == "answered" && l["span"]["route"] == "/v1/upload")
        .unwrap_or_else(|| panic!("no upload request in\n{log}"));
    assert_eq!(upload["status"], 200, "{upload}");
    assert_eq!(upload["span"]["user"], "pat", "{upload}");
    assert!(upload["span"]["device"].as_str().is_some_and(|d| !d.is_empty()), "{upload}");
    assert!(upload["span"]["id"].as_str().is_some_and(|id| id.len() == 16), "{upload}");
    assert!(upload["ms"].as_f64().is_some(), "{upload}");
    assert!(lines.iter().any(|l| l["message"] == "upload applied" && l["changes"] == 1), "{log}");
    assert!(
        lines.iter().any(|l| l["message"] == "answered"
            && l["span"]["route"] == "/v1/history"
            && l["span"]["user"] == "ada"),
        "{log}"
    );
    assert!(lines.iter().any(|l| l["message"] == "SIGTERM; stopping"), "{log}");
    let kept: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("admin.json")).unwrap()).unwrap();
    for secret in [
        password,
        kept["token"].as_str().unwrap(),
        kept["refresh_token"].as_str().unwrap(),
        "Secret Valley Works",
    ] {
        assert!(!log.contains(secret), "`{secret}` is in the log:\n{log}");
    }
    assert!(!has_token_like_run(&log), "{log}");
}

/// Each body posted to the collector, with its content type.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Vec<u8>)>>>;

/// A collector's traces endpoint on a port of its own.
struct Collector {
    url: String,
    received: Received,
}

fn collector() -> Collector {
    let received = Received::default();
    let kept = std::sync::Arc::clone(&received);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let keep = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                kept.lock().unwrap().push((kind, body.to_vec()));
                async { "" }
            };
            let app = axum::Router::new().route("/v1/traces", axum::routing::post(keep));
            axum::serve(listener, app).await.unwrap();
        });
    });
    Collector { url, received }
}

/// `--otlp-endpoint`: the request spans reach a collector as OTLP protobuf, named by route
/// with the user and device, the answer's status on the span's event, and no secret or value.
#[test]
fn the_server_exports_its_request_spans_to_an_otlp_collector() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use prost::Message as _;

    let dir = scratch("otlp");
    let collector = collector();
    let model = write(&dir, "model.toml", samples::FIELD_SERVICE);
    let database = format!("sqlite:{}", dir.join("server.db").display());
    let password = "a password nobody exports";
    let args = ["user", "add", "pat", "--role", "Planner", "--password-stdin", "--model", &model];
    let added = run_with_stdin(&[&args[..], &["--database", &database]].concat(), password, &dir);
    assert!(added.status.success());
    let refused = ferry(&["serve", "--model", &model, "--otlp-endpoint", "collector:4318"]);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--otlp-endpoint `collector:4318`: not an http(s) URL"), "{said}");
    let serving = ["--model", &model, "--database", &database];
    let exporting = ["--log", "warn,ferry_server=info", "--otlp-endpoint", &collector.url];
    let (mut child, url) = serve_logging(&serving, &exporting, std::process::Stdio::null());
    pat_syncs_a_site(&dir, &url, password);
    // Stopping sends the spans still batched.
    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let received = collector.received.lock().unwrap().clone();
    assert!(!received.is_empty(), "the collector got nothing");
    let mut spans = Vec::new();
    for (kind, body) in &received {
        assert_eq!(kind, "application/x-protobuf");
        for secret in [password, "Secret Valley Works"] {
            let found = body.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "`{secret}` was exported");
        }
        let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
        for resource in request.resource_spans {
            let attributes = resource.resource.unwrap().attributes;
            let service = attributes.iter().find(|a| a.key == "service.name").unwrap();
            assert_eq!(
                service.value.as_ref().unwrap().value,
                Some(Any::StringValue("ferry".into()))
            );
            spans.extend(resource.scope_spans.into_iter().flat_map(|s| s.spans));
        }
    }
    let text = |span: &opentelemetry_proto::tonic::trace::v1::Span, key: &str| {
        span.attributes.iter().find(|a| a.key == key).and_then(|a| match &a.value.as_ref()?.value {
            Some(Any::StringValue(text)) => Some(text.clone()),
            _ => None,
        })
    };
    let upload = spans
        .iter()
        .find(|s| s.name == "request" && text(s, "route").as_deref() == Some("/v1/upload"))
        .unwrap_or_else(|| panic!("no upload span among {} spans", spans.len()));
    assert_eq!(text(upload, "user").as_deref(), Some("pat"));
    assert!(text(upload, "device").is_some_and(|d| !d.is_empty()));
    assert!(upload.end_time_unix_nano > upload.start_time_unix_nano);
    let answered = upload.events.iter().find(|e| e.name == "answered").unwrap();
    let status = answered.attributes.iter().find(|a| a.key == "status").unwrap();
    let status = match &status.value.as_ref().unwrap().value {
        Some(Any::IntValue(n)) => n.to_string(),
        Some(Any::StringValue(text)) => text.clone(),
        other => panic!("status {other:?}"),
    };
    assert_eq!(status, "200");
    assert!(
        spans.iter().any(|s| text(s, "route").as_deref() == Some("/v1/auth/sign-in")
            || text(s, "route").as_deref() == Some("/v1/sign-in")),
        "no sign-in span"
    );
}
