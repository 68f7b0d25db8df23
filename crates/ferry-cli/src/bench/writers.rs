//! Concurrent writers: devices that each upload 100 new work orders at a time, as fast as they
//! are answered, against one server process and then against two sharing one PostgreSQL
//! database. It reports the objects applied per second and the upload latency (p50, p99), and
//! checks that every object of every upload was applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferry_protocol::{OutcomeResult, UploadResponse};
use serde_json::json;

use super::Size;
use super::device::ServerProcess;
use super::load::{DEVICES_PER_USER, add_users};
use super::server::{Client, Databases, ms, upload_path};

/// Devices uploading at once.
const WRITERS: usize = 32;
/// New objects in each upload.
const OBJECTS_PER_UPLOAD: usize = 100;

pub(super) async fn writers(size: Size, databases: &mut Databases) -> anyhow::Result<()> {
    if !databases.has_postgres() {
        println!(
            "(concurrent writers skipped: set FERRY_BENCH_POSTGRES, as `cargo xtask bench` does)"
        );
        return Ok(());
    }
    let seconds = if size == Size::Full { 10 } else { 2 };
    let database = databases.fresh(ferry_sql::Dialect::Postgres).await?;
    std::fs::create_dir_all(&databases.directory)?;
    // Planners create work orders: users 0, 2, 4, … are planners, each on a few devices.
    let planners = WRITERS.div_ceil(DEVICES_PER_USER);
    add_users(&database, &databases.directory, planners * 2).await?;
    let first = ServerProcess::spawn(&database, &databases.directory)?;
    let second = ServerProcess::spawn(&database, &databases.directory)?;
    let next = Arc::new(AtomicUsize::new(0));
    for (run, (label, servers)) in
        [("one server process", vec![&first]), ("two server processes", vec![&first, &second])]
            .into_iter()
            .enumerate()
    {
        let mut clients = Vec::with_capacity(WRITERS);
        for n in 0..WRITERS {
            let user = format!("user{}", (n / DEVICES_PER_USER) * 2);
            clients.push(Client::connect(&servers[n % servers.len()].address, &user).await?);
        }
        let end = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(n, client)| {
                let device = format!("{run}-{n}");
                tokio::spawn(write_until(client, device, Arc::clone(&next), end))
            })
            .collect();
        let mut latencies = Vec::new();
        for task in tasks {
            latencies.extend(task.await??);
        }
        let took = started.elapsed();
        latencies.sort();
        let at = |q: usize| latencies[(latencies.len() * q / 100).min(latencies.len() - 1)];
        let objects = latencies.len() * OBJECTS_PER_UPLOAD;
        println!(
            "concurrent writers, PostgreSQL, {label:<20} {WRITERS} devices uploading {OBJECTS_PER_UPLOAD} new objects at a time for {seconds} s: {:>7.0} objects/s, p50 {:>6.1} ms, p99 {:>6.1} ms ({} uploads)",
            objects as f64 / took.as_secs_f64(),
            ms(at(50)),
            ms(at(99)),
            latencies.len(),
        );
    }
    Ok(())
}

/// One device's uploads until `end`; each one's latency.
async fn write_until(
    mut client: Client,
    device: String,
    next: Arc<AtomicUsize>,
    end: Instant,
) -> anyhow::Result<Vec<Duration>> {
    let mut latencies = Vec::new();
    let mut round = 0;
    while Instant::now() < end {
        let first = next.fetch_add(OBJECTS_PER_UPLOAD, Ordering::Relaxed) + 1;
        let changes: Vec<serde_json::Value> = (first..first + OBJECTS_PER_UPLOAD)
            .map(|n| json!({ "entity": "Field.WorkOrder", "id": super::server::object_id(n), "kind": "create", "values": super::server::work_order(n) }))
            .collect();
        let upload_id = format!("writer-{device}-{round}");
        let body = json!({ "upload_id": upload_id, "device": format!("writer-{device}"), "changes": changes });
        let body = serde_json::to_vec(&body)?;
        let start = Instant::now();
        let answer = client.request("POST", &upload_path(), &body).await?;
        latencies.push(start.elapsed());
        let response: UploadResponse = serde_json::from_slice(&answer).map_err(|e| {
            anyhow::anyhow!("an upload's answer: {e}: {}", String::from_utf8_lossy(&answer))
        })?;
        let failed = response
            .outcomes
            .iter()
            .filter(|o| matches!(o.result, OutcomeResult::Failed { .. }))
            .count();
        anyhow::ensure!(
            response.outcomes.len() == OBJECTS_PER_UPLOAD && failed == 0,
            "an upload applied {} of {OBJECTS_PER_UPLOAD} objects",
            response.outcomes.len() - failed
        );
        round += 1;
    }
    Ok(latencies)
}
