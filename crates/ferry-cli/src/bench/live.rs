//! Live fleet: many live devices connected to one server process. They connect and sync, then
//! stay idle while the run measures the server's resident memory and CPU time; then one change
//! on the server (a planner's new city, which every user downloads) must reach a watched query
//! on every device, and the run reports the time until the last one shows it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_client::{LiveEvent, LiveOptions, Query, SyncEngine, SyncError, SyncMode};
use ferry_model::{Value, samples};
use ferry_sql::Dialect;

use super::Size;
use super::device::{ServerProcess, peak_memory_of, reset_peak_memory_of, resident_memory_of};
use super::load::{DEVICES_PER_USER, add_users};
use super::server::{Databases, PASSWORD, backend_name, ms};

/// Connections the server process may hold: each live device keeps its stream and, between
/// syncs, one idle connection of its client.
const FLEET_CONNECTIONS_MAX: usize = 4 * 1024;
/// Devices signing in at once while the fleet is set up.
const SIGN_INS_AT_ONCE: usize = 16;
/// How long every device has to connect and finish its first sync, in seconds.
const SETTLE_SECONDS_MAX: u64 = 300;
/// How long the change has to reach every device, in seconds.
const REACH_SECONDS_MAX: u64 = 120;
/// Clock ticks per second of `/proc/PID/stat`'s CPU times (`USER_HZ`, 100 on Linux).
const USER_HZ: u64 = 100;

/// The name of the city whose creation the fleet watches for.
const FLEET_CITY: &str = "Fleet city";

pub(super) async fn live_fleet(size: Size, databases: &mut Databases) -> anyhow::Result<()> {
    let (devices, idle_seconds) = match size {
        Size::Full => (1_000, 30),
        Size::Quick => (20, 2),
    };
    let dialect = if databases.has_postgres() { Dialect::Postgres } else { Dialect::Sqlite };
    let database = databases.fresh(dialect).await?;
    std::fs::create_dir_all(&databases.directory)?;
    // One more user, a planner, makes the change.
    let users = devices / DEVICES_PER_USER;
    add_users(&database, &databases.directory, users + 1).await?;
    let connections = FLEET_CONNECTIONS_MAX.to_string();
    let server = ServerProcess::spawn_with(
        &database,
        &databases.directory,
        &["--connections-max", &connections],
    )?;
    let address = format!("http://{}", server.address);
    let directory = databases.directory.join("live-fleet");
    std::fs::create_dir_all(&directory)?;

    let fleet = sign_in(devices, &directory, &address).await?;
    let start = Instant::now();
    let live = Fleet::go_live(fleet).await?;
    let settle = start.elapsed();
    let failed_while_settling = live.failures.swap(0, Ordering::Relaxed);

    // Idle: nothing changes; the streams only keep alive.
    let pid = server.pid().to_string();
    reset_peak_memory_of(&pid);
    let cpu_before = cpu_time_of(&pid)?;
    tokio::time::sleep(Duration::from_secs(idle_seconds)).await;
    let idle_cpu = cpu_time_of(&pid)?.saturating_sub(cpu_before);
    let resident = resident_memory_of(&pid)
        .ok_or_else(|| anyhow::anyhow!("no resident memory of the server process"))?;
    let peak = peak_memory_of(&pid).unwrap_or(resident);
    let idle_failures = live.failures.swap(0, Ordering::Relaxed);

    let planner_user = if users.is_multiple_of(2) { users } else { 0 };
    let reached = live.one_change(&directory, &address, planner_user).await?;
    let median = reached[reached.len() / 2];
    let last = reached.last().copied().unwrap_or_default();

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    println!(
        "live fleet {devices} devices, {}: all connected and synced in {:.1} s ({failed_while_settling} syncs or streams tried again)",
        backend_name(dialect),
        settle.as_secs_f64()
    );
    println!(
        "live fleet {devices} devices idle {idle_seconds} s: server resident {:.1} MiB (peak {:.1} MiB), CPU {:.2} s ({:.2} % of a core), {idle_failures} streams lost  <= 100 MiB",
        mib(resident),
        mib(peak),
        idle_cpu.as_secs_f64(),
        idle_cpu.as_secs_f64() * 100.0 / idle_seconds as f64,
    );
    println!(
        "live fleet one change to {devices} watching devices: half shown in {:.1} ms, the last in {:.1} ms",
        ms(median),
        ms(last)
    );
    Ok(())
}

/// `devices` devices, signed in [`SIGN_INS_AT_ONCE`] at a time, [`DEVICES_PER_USER`] per user.
async fn sign_in(
    devices: usize,
    directory: &std::path::Path,
    address: &str,
) -> anyhow::Result<Vec<(Arc<ferry_client::Database>, SyncEngine)>> {
    let mut fleet = Vec::with_capacity(devices);
    for chunk in (0..devices).collect::<Vec<_>>().chunks(SIGN_INS_AT_ONCE) {
        let mut signing_in = tokio::task::JoinSet::new();
        for &n in chunk {
            let (path, address) = (directory.join(format!("device-{n}.db")), address.to_owned());
            signing_in.spawn(async move {
                let db = Arc::new(ferry_client::Database::open(path, samples::FIELD_SERVICE)?);
                let engine = SyncEngine::new(Arc::clone(&db), &address)?;
                engine.sign_in(&format!("user{}", n / DEVICES_PER_USER), PASSWORD).await?;
                anyhow::Ok((n, db, engine))
            });
        }
        while let Some(signed_in) = signing_in.join_next().await {
            fleet.push(signed_in??);
        }
    }
    fleet.sort_by_key(|(n, _, _)| *n);
    Ok(fleet.into_iter().map(|(_, db, engine)| (db, engine)).collect())
}

/// The devices in live mode, each with a watch of the city to come.
struct Fleet {
    running: Vec<(ferry_client::CancelToken, tokio::task::JoinHandle<Result<(), SyncError>>)>,
    watches: Vec<ferry_client::Watch>,
    /// Streams lost and live syncs failed (each is tried again).
    failures: Arc<AtomicUsize>,
}

impl Fleet {
    /// Starts live mode on every device; returns once each has connected and synced.
    async fn go_live(
        fleet: Vec<(Arc<ferry_client::Database>, SyncEngine)>,
    ) -> anyhow::Result<Fleet> {
        let devices = fleet.len();
        let (connected, synced) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let failures = Arc::new(AtomicUsize::new(0));
        let (mut running, mut watches) = (Vec::new(), Vec::new());
        for (db, engine) in fleet {
            let (first_connect, first_sync) = (AtomicBool::new(true), AtomicBool::new(true));
            let (connected, synced, failures) =
                (Arc::clone(&connected), Arc::clone(&synced), Arc::clone(&failures));
            let options = LiveOptions {
                events: Some(Arc::new(move |event: &LiveEvent| match event {
                    LiveEvent::Connected if first_connect.swap(false, Ordering::Relaxed) => {
                        connected.fetch_add(1, Ordering::Relaxed);
                    }
                    LiveEvent::Synced(_) if first_sync.swap(false, Ordering::Relaxed) => {
                        synced.fetch_add(1, Ordering::Relaxed);
                    }
                    LiveEvent::SyncFailed(_) | LiveEvent::Disconnected { .. } => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                })),
                ..LiveOptions::default()
            };
            let query = Query::new("Field.City").filter(&format!("[Name = '{FLEET_CITY}']"));
            let mut watch = db.watch(query)?;
            anyhow::ensure!(watch.next().await?.is_empty(), "a device began with the city");
            watches.push(watch);
            let stop = options.stop.clone();
            running.push((stop, tokio::spawn(async move { engine.run_live(&options).await })));
        }
        let settled = tokio::time::timeout(Duration::from_secs(SETTLE_SECONDS_MAX), async {
            while connected.load(Ordering::Relaxed) < devices
                || synced.load(Ordering::Relaxed) < devices
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        settled.await.map_err(|_| {
            anyhow::anyhow!(
                "after {SETTLE_SECONDS_MAX} s, {} of {devices} devices were connected and {} had synced",
                connected.load(Ordering::Relaxed),
                synced.load(Ordering::Relaxed)
            )
        })?;
        Ok(Fleet { running, watches, failures })
    }

    /// A planner, on a device of its own, creates the city and syncs; returns the time from
    /// that sync's start until each device's watch showed the city, shortest first. Stops
    /// live mode on every device.
    async fn one_change(
        self,
        directory: &std::path::Path,
        address: &str,
        planner_user: usize,
    ) -> anyhow::Result<Vec<Duration>> {
        let planner = Arc::new(ferry_client::Database::open(
            directory.join("planner.db"),
            samples::FIELD_SERVICE,
        )?);
        let engine = SyncEngine::new(Arc::clone(&planner), address)?;
        engine.sign_in(&format!("user{planner_user}"), PASSWORD).await?;
        let mut city = planner.create("Field.City")?;
        planner.set(&mut city, "Name", Value::String(FLEET_CITY.to_owned()))?;
        planner.commit(&mut [&mut city])?;
        let devices = self.watches.len();
        let change = Instant::now();
        let mut reaching = tokio::task::JoinSet::new();
        for mut watch in self.watches {
            reaching.spawn(async move {
                while watch.next().await?.is_empty() {}
                Ok::<_, ferry_client::ClientError>(change.elapsed())
            });
        }
        let sent = engine.sync(SyncMode::All).await?;
        anyhow::ensure!(
            sent.rejected.is_empty(),
            "the server rejected the city: {:?}",
            sent.rejected
        );
        let mut reached = Vec::with_capacity(devices);
        let gathered = tokio::time::timeout(Duration::from_secs(REACH_SECONDS_MAX), async {
            while let Some(took) = reaching.join_next().await {
                reached.push(took??);
            }
            anyhow::Ok(())
        });
        gathered.await.map_err(|_| {
            anyhow::anyhow!(
                "after {REACH_SECONDS_MAX} s, the city had reached {} devices",
                reached.len()
            )
        })??;
        for (stop, _) in &self.running {
            stop.cancel();
        }
        for (_, task) in self.running {
            task.await??;
        }
        reached.sort();
        Ok(reached)
    }
}

/// The CPU time process `pid` has used, user and system (Linux).
pub(super) fn cpu_time_of(pid: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; `after` starts at field 3.
    let ticks = |field: usize| -> anyhow::Result<u64> {
        Ok(fields.get(field - 3).ok_or_else(|| anyhow::anyhow!("short /proc stat"))?.parse()?)
    };
    let ticks = ticks(14)? + ticks(15)?;
    Ok(Duration::from_millis(ticks * 1000 / USER_HZ))
}
