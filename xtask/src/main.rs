//! Project tasks: `cargo xtask ci | pg | bench | sim | wasm | field-app`.
//! `ci` runs every check CI runs, against a PostgreSQL server it starts itself.

#![allow(clippy::print_stdout, reason = "xtask reports to the developer")]

mod postgres;
#[cfg(test)]
mod tidy;

use std::process::{Command, ExitCode};

const USAGE: &str =
    "usage: cargo xtask <ci | pg | bench [--quick] | sim --seed HEX [--steps N] [--live]>
  ci      fmt check, clippy -D warnings, every test (PostgreSQL included), doc tests, the
          simulation with each planted bug, which it must catch, and the TypeScript SDK's and
          the field app's tests (Node, and headless Chromium)
  sim     replay one run of the deterministic simulation
  pg      start a throwaway PostgreSQL on 127.0.0.1 and print its URL; Ctrl-C stops it
  bench   build in release and run the benchmarks, printing ratios measured in the same run
  wasm    build the device core for WebAssembly into sdk/js/wasm (the TypeScript SDK's core)
  field-app
          build everything the offline field app needs and run it with demo users at
          http://127.0.0.1:8750/ (`ferry serve --app`); Ctrl-C stops it";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("pg") => pg(),
        Some("bench") => bench(&args[1..]),
        Some("sim") => sim(&args[1..]),
        Some("wasm") => wasm(),
        Some("field-app") => field_app(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn ci() -> Result<(), String> {
    let server = match std::env::var("FERRY_TEST_POSTGRES") {
        Ok(_) => None,
        Err(_) => Some(postgres::Server::start()?),
    };
    let url = match &server {
        Some(server) => Postgres {
            url: server.url(),
            authority: Some(server.authority().display().to_string()),
        },
        None => Postgres {
            url: std::env::var("FERRY_TEST_POSTGRES").expect("checked above"),
            authority: std::env::var("FERRY_TEST_POSTGRES_CA").ok(),
        },
    };
    eprintln!("xtask: PostgreSQL for tests at {}", url.url);
    run("cargo", &["fmt", "--all", "--check"], Some(&url))?;
    run("cargo", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], Some(&url))?;
    run("cargo", &["test", "--doc", "-p", "ferry-constraint", "-p", "ferry-client"], Some(&url))?;
    run("cargo", &["nextest", "run", "--workspace", "--profile", "ci"], Some(&url))?;
    let batch = ["nextest", "run", "--profile", "ci", "-p", "ferry-sim", "--ignore-default-filter"];
    run("cargo", &[&batch[..], &["-E", "test(simulation_random_batch)"]].concat(), Some(&url))?;
    let planted =
        ["nextest", "run", "--profile", "ci", "-p", "ferry-sim", "--features", "planted-bugs"];
    run(
        "cargo",
        &[&planted[..], &["-E", "test(every_planted_bug_is_caught)"]].concat(),
        Some(&url),
    )?;
    // The TypeScript SDK on the WebAssembly core, the field app and the web console in headless
    // Chromium, against the `ferry` binary of this build.
    wasm()?;
    run("cargo", &["build", "-p", "ferry-cli"], Some(&url))?;
    for package in ["sdk/js", "examples/field-app", "crates/ferry-server/console"] {
        run("npm", &["ci", "--no-audit", "--no-fund", "--prefix", package], Some(&url))?;
        run("npm", &["test", "--prefix", package], Some(&url))?;
    }
    drop(server);
    Ok(())
}

/// Replays one simulation run: `cargo xtask sim --seed 0x5eed --steps 150` (`--live`: with
/// devices going live).
fn sim(args: &[String]) -> Result<(), String> {
    let (mut seed, mut steps) = (None, None);
    let live = args.iter().any(|a| a == "--live");
    let args: Vec<String> = args.iter().filter(|a| *a != "--live").cloned().collect();
    let mut rest = args.as_slice();
    while let [flag, value, tail @ ..] = rest {
        match flag.as_str() {
            "--seed" => seed = Some(value.clone()),
            "--steps" => steps = Some(value.clone()),
            _ => return Err(format!("unknown sim option `{flag}`\n{USAGE}")),
        }
        rest = tail;
    }
    let seed = seed.ok_or_else(|| format!("sim needs --seed\n{USAGE}"))?;
    eprintln!("xtask: replaying seed {seed}");
    let mut command = Command::new("cargo");
    command.args([
        "nextest",
        "run",
        "-p",
        "ferry-sim",
        "--no-capture",
        "--ignore-default-filter",
        "-E",
        "test(simulation_replay)",
    ]);
    command.env("FERRY_SIM_SEED", &seed);
    if let Some(steps) = steps {
        command.env("FERRY_SIM_STEPS", steps);
    }
    if live {
        command.env("FERRY_SIM_LIVE", "1");
    }
    let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("the run of seed {seed} failed")) }
}

/// The version of `wasm-bindgen-cli` the bindings need: the `wasm-bindgen` crate's.
const WASM_BINDGEN_VERSION: &str = "0.2.130";

/// Builds `ferry-wasm` for the web in release and writes its JavaScript bindings, the module
/// and its types into `sdk/js/wasm/`, where the TypeScript SDK loads them (in browsers and in
/// Node alike).
fn wasm() -> Result<(), String> {
    let target = ["build", "--release", "-p", "ferry-wasm", "--target", "wasm32-unknown-unknown"];
    run("cargo", &target, None)?;
    let version = Command::new("wasm-bindgen").arg("--version").output().map_err(|e| {
        format!(
            "cannot run wasm-bindgen ({e}): `cargo install --locked wasm-bindgen-cli --version {WASM_BINDGEN_VERSION}`"
        )
    })?;
    let version = String::from_utf8_lossy(&version.stdout);
    if !version.contains(WASM_BINDGEN_VERSION) {
        return Err(format!(
            "wasm-bindgen is {}, the bindings need {WASM_BINDGEN_VERSION}",
            version.trim()
        ));
    }
    let module = "target/wasm32-unknown-unknown/release/ferry_wasm.wasm";
    run("wasm-bindgen", &["--target", "web", "--out-dir", "sdk/js/wasm", module], None)?;
    eprintln!("xtask: the device core is in {}", root().join("sdk/js/wasm").display());
    Ok(())
}

/// Builds the device core, the `ferry` binary, the SDK and the field app, then runs the app's
/// demo: `ferry serve --app` with three demo users.
fn field_app() -> Result<(), String> {
    wasm()?;
    run("cargo", &["build", "-p", "ferry-cli"], None)?;
    for package in ["sdk/js", "examples/field-app"] {
        run("npm", &["ci", "--no-audit", "--no-fund", "--prefix", package], None)?;
    }
    run("npm", &["run", "demo", "--prefix", "examples/field-app"], None)
}

fn pg() -> Result<(), String> {
    let server = postgres::Server::start()?;
    println!("FERRY_TEST_POSTGRES={}", server.url());
    println!("FERRY_TEST_POSTGRES_CA={}", server.authority().display());
    eprintln!("xtask: PostgreSQL is running; press Enter or Ctrl-C to stop it");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(server);
    Ok(())
}

/// The peer benchmark `--peers` runs first (npm packages only), and the rows it syncs.
const PEER: &str = "bench/peers/pouchdb";
const PEER_ROWS: &str = "100000";

fn bench(args: &[String]) -> Result<(), String> {
    let peers = args.iter().any(|a| a == "--peers");
    let peer = if peers { Some(peer_result()?) } else { None };
    let server = postgres::Server::start()?;
    let mut command = vec!["run", "--release", "--quiet", "-p", "ferry-cli", "--", "bench"];
    command.extend(args.iter().map(String::as_str).filter(|a| *a != "--peers"));
    if peers && !args.iter().any(|a| a == "--only") {
        command.extend(["--only", "device"]);
    }
    eprintln!("xtask: $ cargo {}", command.join(" "));
    let mut cargo = Command::new("cargo");
    cargo.args(&command).env("FERRY_BENCH_POSTGRES", server.url());
    if let Some(peer) = peer {
        cargo.env("FERRY_BENCH_PEER", peer);
    }
    let status = cargo.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    drop(server);
    if status.success() { Ok(()) } else { Err(format!("the benchmarks failed ({status})")) }
}

/// Runs the peer benchmark on [`PEER_ROWS`] rows; gives its result line's JSON.
fn peer_result() -> Result<String, String> {
    run("npm", &["ci", "--no-audit", "--no-fund", "--prefix", PEER], None)?;
    let runner = format!("{PEER}/run.mjs");
    eprintln!("xtask: $ node {runner} {PEER_ROWS}");
    let output = Command::new("node")
        .args([runner.as_str(), PEER_ROWS])
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !output.status.success() {
        return Err(format!("the peer benchmark failed ({})", output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("peer-result "));
    line.map(str::to_owned)
        .ok_or_else(|| format!("the peer benchmark printed no result:\n{stdout}"))
}

/// The PostgreSQL the tests use: its URL, and the authority of its TLS certificate.
struct Postgres {
    url: String,
    authority: Option<String>,
}

/// The workspace's root, where every command runs.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a command in the workspace's root, given the tests' PostgreSQL when there is one.
fn run(program: &str, args: &[&str], postgres: Option<&Postgres>) -> Result<(), String> {
    eprintln!("xtask: $ {program} {}", args.join(" "));
    let mut command = Command::new(program);
    command.args(args).current_dir(root());
    if let Some(postgres) = postgres {
        command.env("FERRY_TEST_POSTGRES", &postgres.url);
        if let Some(authority) = &postgres.authority {
            command.env("FERRY_TEST_POSTGRES_CA", authority);
        }
    }
    let status = command.status().map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}
