//! Load: many devices syncing at once against one server process, then against two server
//! processes sharing one database (PostgreSQL when given, as in production). Each device works
//! and syncs in a loop with a short think time; afterwards every device syncs until quiet, and
//! the run checks that no sync failed, that each device equals a fresh device of its user
//! (convergence), and that every work order a device committed is on the server (nothing lost).
//! It reports the sync latency (p50, p99) and the peak memory of each server process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_client::{Query, SyncEngine, SyncMode};
use ferry_model::arbitrary::SplitMix64;
use ferry_model::{ObjectId, Value, samples};
use ferry_server::{Config, Database, Handlers, Limits, Server, SystemClock};
use ferry_sql::Dialect;

use super::Size;
use super::device::{ServerProcess, peak_memory_of, reset_peak_memory_of};
use super::server::{Databases, PASSWORD, backend_name};

/// Devices per user: each user signs in once per device (and once more for the check), within
/// the server's sign-in limit per minute.
pub(super) const DEVICES_PER_USER: usize = 5;

/// A device of the load run.
struct LoadDevice {
    user: usize,
    planner: bool,
    db: Arc<ferry_client::Database>,
    engine: SyncEngine,
}

/// What the devices measured and did.
#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    created: BTreeSet<ObjectId>,
}

pub(super) async fn load(size: Size, databases: &mut Databases) -> anyhow::Result<()> {
    let (devices, seconds) = match size {
        Size::Full => (200, 60),
        Size::Quick => (20, 5),
    };
    let dialect = if databases.has_postgres() { Dialect::Postgres } else { Dialect::Sqlite };
    let database = databases.fresh(dialect).await?;
    std::fs::create_dir_all(&databases.directory)?;
    let users = devices / DEVICES_PER_USER;
    let ids = add_users(&database, &databases.directory, users).await?;
    let technicians: Vec<ObjectId> =
        ids.iter().enumerate().filter(|(u, _)| !u.is_multiple_of(2)).map(|(_, id)| *id).collect();
    let first = ServerProcess::spawn(&database, &databases.directory)?;
    let second = ServerProcess::spawn(&database, &databases.directory)?;
    let numbers = Arc::new(AtomicI64::new(0));
    let directory = databases.directory.join("load");
    std::fs::create_dir_all(&directory)?;
    let mut fleet = Vec::with_capacity(devices);
    for n in 0..devices {
        let user = n / DEVICES_PER_USER;
        let db = Arc::new(ferry_client::Database::open(
            directory.join(format!("device-{n}.db")),
            samples::FIELD_SERVICE,
        )?);
        let engine = SyncEngine::new(Arc::clone(&db), &format!("http://{}", first.address))?;
        engine.sign_in(&format!("user{user}"), PASSWORD).await?;
        fleet.push(LoadDevice { user, planner: user.is_multiple_of(2), db, engine });
    }
    let fleet = Arc::new(fleet);
    for (label, servers) in
        [("one server process", vec![&first]), ("two server processes", vec![&first, &second])]
    {
        for server in &servers {
            reset_peak_memory_of(&server.pid().to_string());
        }
        let addresses: Vec<String> =
            servers.iter().map(|s| format!("http://{}", s.address)).collect();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let end = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for n in 0..devices {
            let (fleet, tally, numbers, technicians) =
                (Arc::clone(&fleet), Arc::clone(&tally), Arc::clone(&numbers), technicians.clone());
            let address = addresses[n % addresses.len()].clone();
            tasks.push(tokio::spawn(async move {
                let device = &fleet[n];
                let engine = match SyncEngine::new(Arc::clone(&device.db), &address) {
                    Ok(engine) => engine,
                    Err(error) => {
                        return tally.lock().expect("tally").errors.push(error.to_string());
                    }
                };
                let mut rng = SplitMix64::new(n as u64 + 1);
                while Instant::now() < end {
                    tokio::time::sleep(Duration::from_millis(200 + rng.below(800) as u64)).await;
                    if let Err(error) = work(device, &mut rng, &numbers, &technicians, &tally) {
                        tally.lock().expect("tally").errors.push(error);
                        continue;
                    }
                    let start = Instant::now();
                    let synced = engine.sync(SyncMode::All).await;
                    let mut tally = tally.lock().expect("tally");
                    match synced {
                        Ok(report) if report.rejected.is_empty() => {
                            tally.latencies.push(start.elapsed())
                        }
                        Ok(report) => tally.errors.push(format!("rejected: {:?}", report.rejected)),
                        Err(error) => tally.errors.push(error.to_string()),
                    }
                }
            }));
        }
        for task in tasks {
            task.await?;
        }
        let peaks: Vec<String> = servers
            .iter()
            .map(|s| {
                peak_memory_of(&s.pid().to_string())
                    .map_or("unknown".to_owned(), |b| format!("{} MiB", b / (1024 * 1024)))
            })
            .collect();
        // Quiet: every device syncs until nothing moves, then the checks.
        for _ in 0..2 {
            for device in fleet.iter() {
                device.engine.sync(SyncMode::All).await?;
            }
        }
        let tally = std::mem::take(&mut *tally.lock().expect("tally"));
        check(&fleet, &directory, &first, &tally).await?;
        let mut latencies = tally.latencies.clone();
        latencies.sort();
        let percentile = |p: usize| {
            latencies
                .get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        println!(
            "load {devices} devices, {seconds} s, {label}, {}: {} syncs, {} errors, p50 {:.1} ms, p99 {:.1} ms; server peak memory {}; converged, nothing lost",
            backend_name(dialect),
            latencies.len(),
            tally.errors.len(),
            percentile(50).as_secs_f64() * 1000.0,
            percentile(99).as_secs_f64() * 1000.0,
            peaks.join(", "),
        );
        anyhow::ensure!(
            tally.errors.is_empty(),
            "syncs failed under load: {:?}",
            &tally.errors[..tally.errors.len().min(5)]
        );
    }
    Ok(())
}

/// One piece of work: a planner creates a work order or reprioritises one; a technician moves
/// one of theirs along. Committed at once.
fn work(
    device: &LoadDevice,
    rng: &mut SplitMix64,
    numbers: &AtomicI64,
    technicians: &[ObjectId],
    tally: &Mutex<Tally>,
) -> Result<(), String> {
    let db = &device.db;
    let orders = db.query(&Query::new("Field.WorkOrder")).map_err(|e| e.to_string())?;
    if device.planner && (orders.is_empty() || rng.chance(1, 2)) {
        let number = numbers.fetch_add(1, Ordering::Relaxed) + 1;
        let mut order = db.create("Field.WorkOrder").map_err(|e| e.to_string())?;
        db.set(&mut order, "Number", Value::Integer(number)).map_err(|e| e.to_string())?;
        db.set(&mut order, "Title", Value::String(format!("Order {number}")))
            .map_err(|e| e.to_string())?;
        let assignee = technicians[rng.below(technicians.len())];
        db.set(&mut order, "WorkOrder_AssignedTo", Value::Reference(assignee))
            .map_err(|e| e.to_string())?;
        db.commit(&mut [&mut order]).map_err(|e| e.to_string())?;
        tally.lock().expect("tally").created.insert(order.id());
        return Ok(());
    }
    let Some(order) = orders.get(rng.below(orders.len().max(1))) else { return Ok(()) };
    let mut order = order.clone();
    if device.planner {
        db.set(&mut order, "Priority", Value::Integer(1 + rng.below(5) as i64))
            .map_err(|e| e.to_string())?;
    } else {
        let status = ["Open", "InProgress", "Done"][rng.below(3)];
        db.set(&mut order, "Status", Value::Enumeration(status.to_owned()))
            .map_err(|e| e.to_string())?;
    }
    db.commit(&mut [&mut order]).map_err(|e| e.to_string())
}

/// The work orders a device holds, member by member.
fn dump(db: &ferry_client::Database) -> anyhow::Result<BTreeMap<ObjectId, Vec<String>>> {
    let model = db.model();
    let entity = model.entity("Field.WorkOrder").expect("the sample model");
    let mut out = BTreeMap::new();
    for object in db.query(&Query::new("Field.WorkOrder"))? {
        let mut values = Vec::new();
        for slot in 0..entity.member_count() {
            let member = entity.member_name(ferry_model::Slot(slot));
            values.push(format!("{member}={}", db.get_value(&object, member)?));
        }
        out.insert(object.id(), values);
    }
    Ok(out)
}

/// Convergence (each device equals a fresh device of its user) and nothing lost.
async fn check(
    fleet: &[LoadDevice],
    directory: &std::path::Path,
    server: &ServerProcess,
    tally: &Tally,
) -> anyhow::Result<()> {
    let mut fresh: BTreeMap<usize, BTreeMap<ObjectId, Vec<String>>> = BTreeMap::new();
    for device in fleet {
        if let std::collections::btree_map::Entry::Vacant(slot) = fresh.entry(device.user) {
            let path =
                directory.join(format!("fresh-{}-{}.db", device.user, tally.latencies.len()));
            let db = Arc::new(ferry_client::Database::open(&path, samples::FIELD_SERVICE)?);
            let engine = SyncEngine::new(Arc::clone(&db), &format!("http://{}", server.address))?;
            engine.sign_in(&format!("user{}", device.user), PASSWORD).await?;
            engine.sync(SyncMode::All).await?;
            slot.insert(dump(&db)?);
        }
        anyhow::ensure!(
            device.db.pending_changes()? == 0,
            "a device kept changes after quiet syncs"
        );
        anyhow::ensure!(
            dump(&device.db)? == fresh[&device.user],
            "a device of user{} differs from a fresh device of its user",
            device.user
        );
    }
    let everything = &fresh[&0];
    let lost: Vec<&ObjectId> =
        tally.created.iter().filter(|id| !everything.contains_key(id)).collect();
    anyhow::ensure!(lost.is_empty(), "{} committed work orders are not on the server", lost.len());
    Ok(())
}

/// `count` users, planners and technicians in turn, added through an in-process server.
pub(super) async fn add_users(
    database: &Database,
    directory: &std::path::Path,
    count: usize,
) -> anyhow::Result<Vec<ObjectId>> {
    let server = Server::open(Config {
        model_text: samples::FIELD_SERVICE.to_owned(),
        database: database.clone(),
        files: directory.join("server-files"),
        limits: Limits::default(),
        handlers: Handlers::default(),
        clock: Arc::new(SystemClock),
        identity: None,
        app: None,
    })
    .await?;
    let mut ids = Vec::with_capacity(count);
    for user in 0..count {
        let role = if user.is_multiple_of(2) { "Planner" } else { "Technician" };
        ids.push(server.add_user(&format!("user{user}"), &[role.to_owned()], PASSWORD).await?);
    }
    Ok(ids)
}
