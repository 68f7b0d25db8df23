//! Device benchmarks: a device database (SQLite, WAL, `synchronous=FULL`) syncing over HTTP on
//! 127.0.0.1 with a server running as a separate process, so the device's memory is its own.
//!
//! For each size: the initial full sync to an empty device (beside the floor: a scan of the same
//! rows on the server's database plus inserting them into a fresh SQLite file), the device's
//! peak memory during it and its bytes per object; then a full sync after 100 server-side
//! changes, and the push of 1,000 new objects until the device has every confirmation.

use std::io::BufRead as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::{SyncEngine, SyncMode};
use ferry_model::{ObjectId, Value, samples};
use ferry_server::Database;
use ferry_sql::{Dialect, Side, create_schema, select_columns, table_name};
use serde_json::json;

use super::server::{
    Client, Databases, PASSWORD, Running, backend_name, ms, pg_connect, seed, upload_path,
};

/// Rounds of the incremental and push measurements; the best is reported.
const ROUNDS: usize = 3;
/// Server-side changes before the incremental full sync (half updates, half new objects).
const SERVER_CHANGES: usize = 100;
/// New objects in the push measurement.
const PUSHED: usize = 1_000;

/// `ferry serve` in a process of its own, stopped when dropped.
pub(super) struct ServerProcess {
    child: std::process::Child,
    pub(super) address: String,
}

impl ServerProcess {
    /// The server process's id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn spawn(
        database: &Database,
        directory: &std::path::Path,
    ) -> anyhow::Result<ServerProcess> {
        ServerProcess::spawn_with(database, directory, &[])
    }

    /// [`ServerProcess::spawn`] with more options of `ferry serve`.
    pub(super) fn spawn_with(
        database: &Database,
        directory: &std::path::Path,
        options: &[&str],
    ) -> anyhow::Result<ServerProcess> {
        let model = directory.join("field_service.toml");
        std::fs::write(&model, samples::FIELD_SERVICE)?;
        let database = match database {
            Database::Sqlite(path) => format!("sqlite:{}", path.display()),
            Database::Postgres(url) => url.clone(),
        };
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["serve", "--model", &model.display().to_string(), "--database", &database])
            .args(["--listen", "127.0.0.1:0"])
            .args(["--files", &directory.join("server-files").display().to_string()])
            // The server's request log would bury the measurements.
            .args(["--log", "warn"])
            .args(options)
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let address = line
            .split("http://")
            .nth(1)
            .map(|a| a.trim().to_owned())
            .ok_or_else(|| anyhow::anyhow!("`ferry serve` said {line:?}"))?;
        Ok(ServerProcess { child, address })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The process's peak resident memory since [`reset_peak_memory`], in bytes (Linux).
pub(super) fn peak_memory() -> Option<u64> {
    peak_memory_of("self")
}

/// The peak resident memory of process `pid` (`self` for this one) since it was last reset.
pub(super) fn peak_memory_of(pid: &str) -> Option<u64> {
    memory_of(pid, "VmHWM:")
}

/// The resident memory of process `pid` now, in bytes (Linux).
pub(super) fn resident_memory_of(pid: &str) -> Option<u64> {
    memory_of(pid, "VmRSS:")
}

/// A memory figure of `/proc/PID/status` (`field` with its colon), in bytes.
fn memory_of(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Starts measuring the peak from the memory held now.
pub(super) fn reset_peak_memory() {
    reset_peak_memory_of("self");
}

/// Starts measuring the peak of process `pid` from the memory it holds now.
pub(super) fn reset_peak_memory_of(pid: &str) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

/// Every device scenario at each size.
pub(super) async fn device(
    dialect: Dialect,
    sizes: &[usize],
    databases: &mut Databases,
) -> anyhow::Result<()> {
    // The floors load their rows in this process too; they run after every sync, so the
    // memory they leave behind is in none of the syncs' peaks.
    let mut measured = Vec::new();
    for rows in sizes {
        measured.push(device_at(dialect, *rows, databases).await?);
    }
    for initial in measured {
        initial.report(databases).await?;
    }
    Ok(())
}

/// Syncs of a device holding everything, with nothing new, whose server cost is measured.
const COSTED_SYNCS: usize = 1_000;
/// How often a device is taken to sync when the devices one core serves are counted, in
/// seconds.
const SYNC_INTERVAL_S: f64 = 60.0;

/// What the server process spent on a sync.
struct ServerCost {
    cpu: Duration,
    peak: Option<u64>,
}

impl ServerCost {
    fn report_initial(&self, rows: usize) {
        println!(
            "server cost of one initial sync of {rows:>7} work orders: CPU {:.2} s (least of the rounds), server peak memory {}",
            self.cpu.as_secs_f64(),
            self.peak.map_or("unknown".to_owned(), |b| format!("{} MiB", b / (1024 * 1024))),
        );
    }
}

/// The server's CPU time for [`COSTED_SYNCS`] full syncs of a device that holds everything,
/// and the devices one core serves at one such sync every [`SYNC_INTERVAL_S`].
async fn incremental_cost(
    server: &ServerProcess,
    engine: &SyncEngine,
    rows: usize,
) -> anyhow::Result<()> {
    let pid = server.pid().to_string();
    reset_peak_memory_of(&pid);
    let (cpu_before, start) = (super::live::cpu_time_of(&pid)?, Instant::now());
    for _ in 0..COSTED_SYNCS {
        engine.sync(SyncMode::All).await?;
    }
    let (cpu, took) = (super::live::cpu_time_of(&pid)?.saturating_sub(cpu_before), start.elapsed());
    let each = cpu.as_secs_f64() / COSTED_SYNCS as f64;
    println!(
        "server cost of {COSTED_SYNCS} syncs with nothing new, holding {rows:>7}: CPU {:.2} s ({:.2} ms each, {:.1} s wall), server peak memory {}; one core serves about {:.0} devices syncing every {SYNC_INTERVAL_S:.0} s",
        cpu.as_secs_f64(),
        each * 1e3,
        took.as_secs_f64(),
        peak_memory_of(&pid).map_or("unknown".to_owned(), |b| format!("{} MiB", b / (1024 * 1024))),
        SYNC_INTERVAL_S / each.max(f64::MIN_POSITIVE),
    );
    Ok(())
}

/// A peer's figures measured in the same run on the same rows (`cargo xtask bench --peers`
/// runs `bench/peers/pouchdb` first and passes its result in `FERRY_BENCH_PEER`).
#[derive(serde::Deserialize)]
struct Peer {
    peer: String,
    rows: usize,
    runs: usize,
    pull_full_ms: Figure,
    push_1k_ms: Figure,
    client_bytes_per_row: f64,
}

#[derive(serde::Deserialize)]
struct Figure {
    best: f64,
}

impl Peer {
    /// The peer's result for `rows` rows, when the run has one.
    fn given(rows: usize) -> anyhow::Result<Option<Peer>> {
        let Ok(json) = std::env::var("FERRY_BENCH_PEER") else { return Ok(None) };
        let peer: Peer = serde_json::from_str(&json)
            .map_err(|e| anyhow::anyhow!("FERRY_BENCH_PEER is not a peer's result: {e}"))?;
        Ok((peer.rows == rows).then_some(peer))
    }

    fn compare(&self, initial: Duration, push: Duration, bytes_per_object: f64) {
        let Peer { peer, rows, runs, .. } = self;
        println!(
            "peer {peer}, same run, same rows (best of {runs}): initial sync of {rows}: Ferry {:.1} ms, {peer} {:.1} ms, Ferry {:.1}x faster; push of {PUSHED}: Ferry {:.1} ms, {peer} {:.1} ms, {:.1}x; bytes per object: Ferry {bytes_per_object:.0}, {peer} {:.0} ({:.2}x)",
            ms(initial),
            self.pull_full_ms.best,
            self.pull_full_ms.best / ms(initial),
            ms(push),
            self.push_1k_ms.best,
            self.push_1k_ms.best / ms(push),
            self.client_bytes_per_row,
            bytes_per_object / self.client_bytes_per_row,
        );
    }
}

/// The initial syncs of one size, reported once the floors are measured.
struct Measured {
    dialect: Dialect,
    rows: usize,
    database: Database,
    plain: (Duration, u64, Option<u64>),
    encrypted: (Duration, u64, Option<u64>),
    /// The best push of [`PUSHED`] new objects until confirmed.
    push: Duration,
}

impl Measured {
    async fn report(self, databases: &Databases) -> anyhow::Result<()> {
        let Measured { dialect, rows, database, plain: (initial, bytes, peak), encrypted, push } =
            self;
        let honest = super::floor::honest_floor(&database, rows, databases).await?;
        let floor = floor(&database, rows, databases).await?;
        let mib = |peak: Option<u64>| {
            peak.map_or("unknown".to_owned(), |b| format!("{} MiB", b / (1024 * 1024)))
        };
        println!(
            "device initial sync {rows:>7} work orders, {:<10} {:>8.1} ms {:>9.1} ms  {:>6.2}x  <= 0.4 s (100k), 4 s (1M), <= 1.5x; <= 200 bytes/object: {} bytes, peak memory {} (< 100 MiB)",
            backend_name(dialect),
            ms(initial),
            ms(honest),
            initial.as_secs_f64() / honest.as_secs_f64(),
            bytes / rows as u64,
            mib(peak),
        );
        println!(
            "  the old floor (scan all, then insert row by row into the indexed table): {:.1} ms, {:.2}x",
            ms(floor),
            initial.as_secs_f64() / floor.as_secs_f64(),
        );
        println!(
            "device initial sync {rows:>7} work orders, encrypted {:>8.1} ms, plain {:>8.1} ms  {:>6.2}x  {} bytes/object, peak memory {}",
            ms(encrypted.0),
            ms(initial),
            encrypted.0.as_secs_f64() / initial.as_secs_f64(),
            encrypted.1 / rows as u64,
            mib(encrypted.2),
        );
        if let Some(peer) = Peer::given(rows)? {
            peer.compare(initial, push, bytes as f64 / rows as f64);
        }
        Ok(())
    }
}

/// The secret of the encrypted devices the benchmark syncs.
pub(super) const BENCH_DEVICE_SECRET: &[u8] = b"the benchmark's device secret, 32 bytes or more";

/// The best initial sync of a fresh device (of three at 100k, one above), and that device.
pub(super) struct InitialSync {
    pub(super) took: Duration,
    peak: Option<u64>,
    /// The device database's size, its write-ahead log included.
    bytes: u64,
    pub(super) device: Arc<ferry_client::Database>,
    pub(super) engine: SyncEngine,
    /// The server's cost of the sync: its least CPU time of the rounds, its peak memory.
    serving: ServerCost,
}

pub(super) async fn initial_sync(
    server: &ServerProcess,
    directory: &std::path::Path,
    rows: usize,
    key: Option<&ferry_client::DeviceKey>,
) -> anyhow::Result<InitialSync> {
    let rounds = if rows <= 100_000 { ROUNDS } else { 1 };
    let (mut took, mut peak, mut bytes) = (Duration::MAX, None, 0);
    let mut serving = ServerCost { cpu: Duration::MAX, peak: None };
    let mut synced = None;
    for round in 0..rounds {
        let name = format!("device-{rows}-{round}{}.db", if key.is_some() { "-keyed" } else { "" });
        let device_path = directory.join(name);
        let device = Arc::new(match key {
            Some(key) => {
                ferry_client::Database::open_encrypted(&device_path, samples::FIELD_SERVICE, key)?
            }
            None => ferry_client::Database::open(&device_path, samples::FIELD_SERVICE)?,
        });
        let engine = SyncEngine::new(Arc::clone(&device), &format!("http://{}", server.address))?;
        engine.sign_in("planner", PASSWORD).await?;
        reset_peak_memory();
        let pid = server.pid().to_string();
        reset_peak_memory_of(&pid);
        let cpu_before = super::live::cpu_time_of(&pid)?;
        let start = Instant::now();
        let report = engine.sync(SyncMode::All).await?;
        took = took.min(start.elapsed());
        peak = peak.max(peak_memory());
        let cpu = super::live::cpu_time_of(&pid)?.saturating_sub(cpu_before);
        serving.cpu = serving.cpu.min(cpu);
        serving.peak = serving.peak.max(peak_memory_of(&pid));
        let received = report.downloaded.get("Field.WorkOrder").copied().unwrap_or_default();
        anyhow::ensure!(received == rows, "the device received {received} of {rows} work orders");
        bytes = ["", "-wal"]
            .iter()
            .filter_map(|suffix| {
                std::fs::metadata(format!("{}{suffix}", device_path.display())).ok()
            })
            .map(|m| m.len())
            .sum();
        synced = Some((device, engine));
    }
    let (device, engine) = synced.expect("at least one round");
    Ok(InitialSync { took, peak, bytes, device, engine, serving })
}

async fn device_at(
    dialect: Dialect,
    rows: usize,
    databases: &mut Databases,
) -> anyhow::Result<Measured> {
    let database = databases.fresh(dialect).await?;
    // A first start creates the schema and the planner; the rows go in behind its back.
    drop(Running::start(&database).await?);
    seed(&database, "Field.WorkOrder", rows).await?;
    std::fs::create_dir_all(&databases.directory)?;
    let server = ServerProcess::spawn(&database, &databases.directory)?;
    let key = ferry_client::DeviceKey::from_secret(BENCH_DEVICE_SECRET)?;
    let encrypted = initial_sync(&server, &databases.directory, rows, Some(&key)).await?;
    let InitialSync { took: initial, peak, bytes, device, engine, serving } =
        initial_sync(&server, &databases.directory, rows, None).await?;
    serving.report_initial(rows);
    incremental_cost(&server, &engine, rows).await?;
    let mut measured = Measured {
        dialect,
        rows,
        database: database.clone(),
        plain: (initial, bytes, peak),
        encrypted: (encrypted.took, encrypted.bytes, encrypted.peak),
        push: Duration::MAX,
    };

    let mut changes = Client::connect(&server.address, "planner").await?;
    let (mut best, mut numbers) = (Duration::MAX, rows);
    for round in 0..ROUNDS {
        let updated: Vec<ObjectId> = {
            let query = ferry_client::Query::new("Field.WorkOrder").limit(SERVER_CHANGES / 2);
            device.query(&query.offset(round * SERVER_CHANGES))?.iter().map(|o| o.id()).collect()
        };
        let mut objects: Vec<serde_json::Value> = updated
            .iter()
            .map(|id| json!({ "entity": "Field.WorkOrder", "id": id.to_string(), "kind": "update", "values": { "Status": "InProgress", "Notes": format!("round {round}") } }))
            .collect();
        for n in 0..SERVER_CHANGES - updated.len() {
            numbers += 1;
            let id = ObjectId::from_parts(1_900_000_000_000 + round as u64, n as u128);
            objects.push(json!({ "entity": "Field.WorkOrder", "id": id.to_string(), "kind": "create", "values": { "Number": numbers, "Title": format!("New order {numbers}") } }));
        }
        let body = serde_json::to_vec(
            &json!({ "upload_id": format!("changes-{round}"), "device": "office", "changes": objects }),
        )?;
        changes.request("POST", &upload_path(), &body).await?;
        let start = Instant::now();
        let report = engine.sync(SyncMode::All).await?;
        best = best.min(start.elapsed());
        let received = report.downloaded.values().sum::<usize>();
        anyhow::ensure!(
            received == SERVER_CHANGES,
            "the full sync after {SERVER_CHANGES} changes brought {received} objects"
        );
    }
    println!(
        "device full sync after {SERVER_CHANGES} server changes, holding {rows:>7} work orders  {:>7.1} ms  <= 100 ms",
        ms(best)
    );

    let mut best = Duration::MAX;
    for round in 0..ROUNDS {
        let mut orders = Vec::with_capacity(PUSHED);
        for _ in 0..PUSHED {
            numbers += 1;
            let mut order = device.create("Field.WorkOrder")?;
            device.set(&mut order, "Number", Value::Integer(numbers as i64))?;
            device.set(&mut order, "Title", Value::String(format!("Pushed {round} {numbers}")))?;
            orders.push(order);
        }
        device.commit(&mut orders.iter_mut().collect::<Vec<_>>())?;
        let start = Instant::now();
        let report = engine.sync(SyncMode::Unsynchronized).await?;
        best = best.min(start.elapsed());
        anyhow::ensure!(
            report.uploaded == PUSHED && device.pending_changes()? == 0,
            "the push confirmed {} of {PUSHED} objects",
            report.uploaded
        );
    }
    println!(
        "device push of {PUSHED} new work orders until confirmed, holding {rows:>7}   {:>7.1} ms  <= 150 ms",
        ms(best)
    );
    measured.push = best;
    live_latency(device, engine, rows, &mut numbers, &mut changes).await?;
    Ok(measured)
}

/// Trials of the live latency measurement.
const LIVE_TRIALS: usize = 100;
/// New work orders each live trial commits on the server.
const LIVE_CHANGED: usize = 100;

/// From a server-side commit of [`LIVE_CHANGED`] new work orders (timed from the upload being
/// sent, so the commit lies within) to the moment a watched query on a live device holding
/// `rows` shows them all; p50 and p99 over [`LIVE_TRIALS`].
async fn live_latency(
    device: Arc<ferry_client::Database>,
    engine: SyncEngine,
    rows: usize,
    numbers: &mut usize,
    changes: &mut Client,
) -> anyhow::Result<()> {
    let engine = Arc::new(engine);
    // When the last live sync ended, to tell the sync's part of the latency from the watch's.
    let synced_at = Arc::new(std::sync::Mutex::new(Instant::now()));
    let options = ferry_client::LiveOptions {
        events: Some({
            let synced_at = Arc::clone(&synced_at);
            Arc::new(move |event: &ferry_client::LiveEvent| {
                if let ferry_client::LiveEvent::Synced(_) = event {
                    *synced_at.lock().expect("not poisoned") = Instant::now();
                }
            })
        }),
        ..ferry_client::LiveOptions::default()
    };
    let live = {
        let (engine, options) = (Arc::clone(&engine), options.clone());
        tokio::spawn(async move { engine.run_live(&options).await })
    };
    let (mut took, mut answered, mut synced) = (Vec::new(), Vec::new(), Vec::new());
    for trial in 0..LIVE_TRIALS {
        let title = format!("Live {trial}");
        let query =
            ferry_client::Query::new("Field.WorkOrder").filter(&format!("[Title = '{title}']"));
        let mut watch = device.watch(query)?;
        anyhow::ensure!(watch.next().await?.is_empty(), "trial {trial} began with its orders");
        let objects: Vec<serde_json::Value> = (0..LIVE_CHANGED)
            .map(|n| {
                *numbers += 1;
                let id = ObjectId::from_parts(1_950_000_000_000 + trial as u64, n as u128);
                json!({ "entity": "Field.WorkOrder", "id": id.to_string(), "kind": "create", "values": { "Number": *numbers, "Title": title } })
            })
            .collect();
        let body = serde_json::to_vec(
            &json!({ "upload_id": format!("live-{trial}"), "device": "office", "changes": objects }),
        )?;
        let start = Instant::now();
        changes.request("POST", &upload_path(), &body).await?;
        answered.push(start.elapsed());
        let shown = tokio::time::timeout(Duration::from_secs(30), async {
            while watch.next().await?.len() < LIVE_CHANGED {}
            Ok::<_, ferry_client::ClientError>(())
        });
        shown.await.map_err(|_| anyhow::anyhow!("trial {trial}: not shown within 30 s"))??;
        took.push(start.elapsed());
        synced.push(synced_at.lock().expect("not poisoned").saturating_duration_since(start));
    }
    options.stop.cancel();
    live.await??;
    let (p50, p99) = percentiles(&mut took);
    println!(
        "device live: server commit of {LIVE_CHANGED} orders to a watched query, holding {rows:>7}  p50 {:>6.1} ms, p99 {:>6.1} ms  p99 <= 50 ms ({LIVE_TRIALS} trials)",
        ms(p50),
        ms(p99)
    );
    let ((answered, _), (synced, _)) = (percentiles(&mut answered), percentiles(&mut synced));
    println!(
        "  of which, p50: upload answered {:>6.1} ms, live sync done {:>6.1} ms, shown {:>6.1} ms",
        ms(answered),
        ms(synced),
        ms(p50)
    );
    Ok(())
}

/// The median and the 99th percentile.
fn percentiles(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[(times.len() * 99 / 100).min(times.len() - 1)])
}

/// The floor of an initial sync before the honest one (`floor.rs`), printed beside it for one
/// release: read the same rows from the server's database, insert them into a fresh SQLite
/// file with the device schema, in one transaction.
async fn floor(
    database: &Database,
    rows: usize,
    databases: &Databases,
) -> anyhow::Result<Duration> {
    let model = samples::field_service();
    let entity = model.entity("Field.WorkOrder").expect("sample entity");
    let start = Instant::now();
    let scanned: Vec<Vec<ferry_sql::Param>> = match database {
        Database::Postgres(url) => {
            let client = pg_connect(url).await?;
            let scan = format!(
                "SELECT {} FROM {} \"t0\" LIMIT {rows}",
                select_columns(entity, "\"t0\"", Dialect::Postgres),
                table_name(entity)
            );
            client
                .query(&scan, &[])
                .await?
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| match row.columns()[i].type_() {
                            t if *t == tokio_postgres::types::Type::INT8 => row
                                .get::<_, Option<i64>>(i)
                                .map_or(ferry_sql::Param::Null, ferry_sql::Param::Int),
                            t if *t == tokio_postgres::types::Type::BOOL => row
                                .get::<_, Option<bool>>(i)
                                .map_or(ferry_sql::Param::Null, ferry_sql::Param::Bool),
                            _ => row
                                .get::<_, Option<String>>(i)
                                .map_or(ferry_sql::Param::Null, ferry_sql::Param::Text),
                        })
                        .collect()
                })
                .collect()
        }
        Database::Sqlite(path) => {
            let connection = rusqlite::Connection::open(path)?;
            let scan = format!(
                "SELECT {} FROM {} \"t0\" LIMIT {rows}",
                select_columns(entity, "\"t0\"", Dialect::Sqlite),
                table_name(entity)
            );
            let mut statement = connection.prepare(&scan)?;
            let width = entity.member_count() + 1;
            let rows = statement.query_map([], |row| {
                (0..width)
                    .map(|i| {
                        row.get::<_, rusqlite::types::Value>(i).map(|v| match v {
                            rusqlite::types::Value::Integer(i) => ferry_sql::Param::Int(i),
                            rusqlite::types::Value::Text(t) => ferry_sql::Param::Text(t),
                            rusqlite::types::Value::Blob(b) => ferry_sql::Param::Blob(b),
                            _ => ferry_sql::Param::Null,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })?;
            rows.collect::<Result<_, _>>()?
        }
    };
    let floor_path = databases.directory.join(format!("floor-{rows}.db"));
    let mut connection = rusqlite::Connection::open(&floor_path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    for statement in create_schema(&model, Dialect::Sqlite, Side::Device) {
        connection.execute(&statement, [])?;
    }
    let transaction = connection.transaction()?;
    {
        let columns = (0..entity.member_count())
            .map(|s| ferry_sql::column_name(entity, ferry_model::Slot(s)))
            .collect::<Vec<_>>()
            .join(", ");
        let marks =
            (1..=entity.member_count() + 1).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let mut insert = transaction.prepare(&format!(
            "INSERT INTO {} (id, {columns}) VALUES ({marks})",
            table_name(entity)
        ))?;
        for row in &scanned {
            let values = row.iter().map(|p| match p {
                ferry_sql::Param::Int(i) => rusqlite::types::Value::Integer(*i),
                ferry_sql::Param::Bool(b) => rusqlite::types::Value::Integer(i64::from(*b)),
                ferry_sql::Param::Text(t) => rusqlite::types::Value::Text(t.clone()),
                ferry_sql::Param::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
                ferry_sql::Param::Null => rusqlite::types::Value::Null,
            });
            insert.execute(rusqlite::params_from_iter(values))?;
        }
    }
    transaction.commit()?;
    Ok(start.elapsed())
}
