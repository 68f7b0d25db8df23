//! The browser benchmark: the TypeScript SDK in headless Chromium (its device database SQLite on
//! OPFS, in a worker) beside the Rust SDK, against the same `ferry serve` process in the same
//! run: the initial sync of a fresh device, and the push of 1,000 new work orders until every one
//! is confirmed.
//!
//! The page is the field app's `bench.html`, served by the server (`--app`); a Node script of the
//! field app (`bench/run.mjs`, on `playwright-core`) drives Chromium and prints the page's times
//! as one JSON line: `node bench/run.mjs --url URL --rows N --push N --rounds N --user NAME`, the
//! password in `FERRY_PASSWORD`; it prints `{"initial_ms", "push_ms", "bytes"}`, each the best
//! of the rounds (a fresh OPFS database each), after checking the device received `rows` work
//! orders and that every pushed one was confirmed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::{SyncEngine, SyncMode};
use ferry_model::Value;
use ferry_sql::Dialect;

use super::device::{ServerProcess, initial_sync};
use super::server::{Databases, PASSWORD, Running, backend_name, ms, seed};

/// New work orders in the push measurement.
const PUSHED: usize = 1_000;
/// Rounds of each browser measurement (a fresh OPFS database each); the best is reported.
const BROWSER_ROUNDS: usize = 3;

/// Where the built field app is, and the script that drives Chromium on it.
fn app() -> (PathBuf, PathBuf) {
    let root = std::env::var_os("FERRY_BENCH_APP")
        .map_or_else(|| PathBuf::from("examples/field-app"), PathBuf::from);
    (root.join("dist"), root.join("bench/run.mjs"))
}

/// What the page measured, best of its rounds.
struct PageTimes {
    initial_ms: f64,
    push_ms: f64,
    /// The OPFS database's size after the initial sync.
    bytes: u64,
}

pub(super) async fn browser(
    dialect: Dialect,
    sizes: &[usize],
    databases: &mut Databases,
) -> anyhow::Result<()> {
    let (dist, script) = app();
    if !dist.join("bench.html").is_file() || !script.is_file() {
        println!(
            "(browser benchmark skipped: build the field app first: `npm ci && npm run build` in {})",
            dist.parent().unwrap_or(Path::new(".")).display()
        );
        return Ok(());
    }
    for rows in sizes {
        let database = databases.fresh(dialect).await?;
        drop(Running::start(&database).await?);
        seed(&database, "Field.WorkOrder", *rows).await?;
        std::fs::create_dir_all(&databases.directory)?;
        let dist = dist.canonicalize()?;
        let options = ["--app", dist.to_str().unwrap_or_default()];
        let server = ServerProcess::spawn_with(&database, &databases.directory, &options)?;
        let synced = initial_sync(&server, &databases.directory, *rows, None).await?;
        // The page first, while the server holds exactly the seeded rows; the Rust push after.
        let page = page_times(&script, &server.address, *rows)?;
        let rust_push = push(&synced.device, &synced.engine, *rows).await?;
        println!(
            "browser initial sync {rows:>7} work orders, {:<10} {:>8.1} ms  Rust SDK {:>8.1} ms  {:>5.2}x  <= 3 s (100k), <= 3x: {} bytes/object",
            backend_name(dialect),
            page.initial_ms,
            ms(synced.took),
            page.initial_ms / ms(synced.took),
            page.bytes / *rows as u64,
        );
        println!(
            "browser push of {PUSHED} new work orders until confirmed  {:>8.1} ms  Rust SDK {:>8.1} ms  {:>5.2}x",
            page.push_ms,
            ms(rust_push),
            page.push_ms / ms(rust_push),
        );
    }
    Ok(())
}

/// The Rust SDK's push of [`PUSHED`] new work orders until confirmed, best of three.
async fn push(
    device: &Arc<ferry_client::Database>,
    engine: &SyncEngine,
    rows: usize,
) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for round in 0..BROWSER_ROUNDS {
        let mut orders = Vec::with_capacity(PUSHED);
        for n in 0..PUSHED {
            let number = 10 * rows + round * PUSHED + n + 1;
            let mut order = device.create("Field.WorkOrder")?;
            device.set(&mut order, "Number", Value::Integer(number as i64))?;
            device.set(&mut order, "Title", Value::String(format!("Pushed {number}")))?;
            orders.push(order);
        }
        device.commit(&mut orders.iter_mut().collect::<Vec<_>>())?;
        let start = Instant::now();
        let report = engine.sync(SyncMode::Unsynchronized).await?;
        best = best.min(start.elapsed());
        anyhow::ensure!(report.uploaded == PUSHED, "the push confirmed {}", report.uploaded);
    }
    Ok(best)
}

/// Runs the page in headless Chromium; its times, best of [`BROWSER_ROUNDS`].
fn page_times(script: &Path, address: &str, rows: usize) -> anyhow::Result<PageTimes> {
    let output = std::process::Command::new("node")
        .arg(script)
        .args(["--url", &format!("http://{address}/bench.html")])
        .args(["--rows", &rows.to_string(), "--push", &PUSHED.to_string()])
        .args(["--rounds", &BROWSER_ROUNDS.to_string(), "--user", "planner"])
        .env("FERRY_PASSWORD", PASSWORD)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    anyhow::ensure!(output.status.success(), "the browser benchmark failed ({})", output.status);
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or_default();
    let said: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| anyhow::anyhow!("the browser said {text:?}: {e}"))?;
    let number = |key: &str| {
        said[key].as_f64().ok_or_else(|| anyhow::anyhow!("the browser said no {key}: {said}"))
    };
    Ok(PageTimes {
        initial_ms: number("initial_ms")?,
        push_ms: number("push_ms")?,
        bytes: number("bytes")? as u64,
    })
}
