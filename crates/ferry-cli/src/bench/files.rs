//! File benchmarks: contents synced up and down between devices and a server running as its own
//! `ferry serve` process on 127.0.0.1, beside the raw cost of copying the same bytes on disk.
//!
//! - 100 files of 1 MiB: a technician's device sends them (one request each, before the upload
//!   of their objects); a new planner's device fetches them with a selected sync. Best of three
//!   rounds, each with new contents. The floor is
//!   copying the same 100 files into another directory, each synced to disk, as the server and
//!   the device each do once.
//! - One 1 GiB file up and down, with the peak resident memory of the device process (this one)
//!   and of the server process while it moves; then again between encrypted devices, whose file
//!   stores seal every chunk.

use std::io::{Read, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_client::{SyncEngine, SyncMode};
use ferry_model::{Timestamp, Value, samples};
use ferry_sql::Dialect;

use super::Size;
use super::device::{
    BENCH_DEVICE_SECRET, ServerProcess, peak_memory, peak_memory_of, reset_peak_memory,
    reset_peak_memory_of, resident_memory_of,
};
use super::server::{Databases, PASSWORD, Running, ms};

const MIB: u64 = 1024 * 1024;
/// Rounds of the 100-file measurement; the best is reported.
const ROUNDS: usize = 3;

/// Pseudo-random bytes (xorshift), generated as they are read: a large content never sits in
/// memory.
struct Noise {
    state: u64,
    left: u64,
}

impl Noise {
    fn new(seed: u64, length: u64) -> Noise {
        Noise { state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, left: length }
    }
}

impl Read for Noise {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        let length = buffer.len().min(usize::try_from(self.left).unwrap_or(usize::MAX)) & !7;
        let length = if length == 0 { buffer.len().min(self.left as usize) } else { length };
        for chunk in buffer[..length].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= length as u64;
        Ok(length)
    }
}

/// A device database and its engine.
type Device = (Arc<ferry_client::Database>, SyncEngine);

/// A signed-in device of the field-service model, encrypted when given a key.
async fn device(
    directory: &std::path::Path,
    name: &str,
    user: &str,
    server: &ServerProcess,
    key: Option<&ferry_client::DeviceKey>,
) -> anyhow::Result<(Arc<ferry_client::Database>, SyncEngine, ferry_model::ObjectId)> {
    let path = directory.join(format!("{name}.db"));
    let database = Arc::new(match key {
        Some(key) => ferry_client::Database::open_encrypted(&path, samples::FIELD_SERVICE, key)?,
        None => ferry_client::Database::open(&path, samples::FIELD_SERVICE)?,
    });
    let engine = SyncEngine::new(Arc::clone(&database), &format!("http://{}", server.address))?;
    let id = engine.sign_in(user, PASSWORD).await?;
    Ok((database, engine, id))
}

fn mb_per_second(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("unknown".to_owned(), |b| format!("{} MiB", b / MIB))
}

pub(super) async fn files(size: Size, databases: &mut Databases) -> anyhow::Result<()> {
    let (count, large) = match size {
        Size::Full => (100, 1024 * MIB),
        Size::Quick => (10, 64 * MIB),
    };
    let database = databases.fresh(Dialect::Sqlite).await?;
    drop(Running::start(&database).await?);
    std::fs::create_dir_all(&databases.directory)?;
    let directory = databases.directory.join("files");
    std::fs::create_dir_all(&directory)?;
    let server = ServerProcess::spawn(&database, &databases.directory)?;
    let (planner_db, planner, _) = device(&directory, "planner", "planner", &server, None).await?;
    let (tech_db, tech, tech_id) =
        device(&directory, "technician", "technician", &server, None).await?;

    // A work order for the technician, and their visit, which the photos hang on.
    let mut order = planner_db.create("Field.WorkOrder")?;
    planner_db.set(&mut order, "Number", Value::Integer(1))?;
    planner_db.set(&mut order, "Title", Value::String("Pump".to_owned()))?;
    planner_db.set(&mut order, "WorkOrder_AssignedTo", Value::Reference(tech_id))?;
    planner_db.commit(&mut [&mut order])?;
    planner.sync(SyncMode::All).await?;
    tech.sync(SyncMode::All).await?;
    let mut visit = tech_db.create("Field.Visit")?;
    let started = Timestamp::parse("2026-11-23T09:00:00Z").expect("a valid time");
    tech_db.set(&mut visit, "StartedAt", Value::DateTime(started))?;
    tech_db.set(&mut visit, "Visit_WorkOrder", Value::Reference(order.id()))?;
    tech_db.set(&mut visit, "Visit_Technician", Value::Reference(tech_id))?;
    tech_db.commit(&mut [&mut visit])?;
    tech.sync(SyncMode::All).await?;

    // Each round: new photos (their contents as files on disk, as a camera leaves them) go up
    // from the technician, and down to a new planner device. The best round is reported.
    let bytes = count as u64 * MIB;
    let (mut up, mut down, mut copy) = (Duration::MAX, Duration::MAX, Duration::MAX);
    for round in 0..ROUNDS {
        let sources = directory.join(format!("sources-{round}"));
        std::fs::create_dir_all(&sources)?;
        let mut photos = Vec::with_capacity(count);
        for n in 0..count {
            let path = sources.join(format!("photo-{n}.jpg"));
            let mut file = std::fs::File::create(&path)?;
            std::io::copy(&mut Noise::new((round * count + n) as u64 + 1, MIB), &mut file)?;
            file.sync_all()?;
            let mut photo = tech_db.create("Field.Photo")?;
            tech_db.set(&mut photo, "Photo_Visit", Value::Reference(visit.id()))?;
            let content = std::fs::File::open(&path)?;
            tech_db.attach_file(&mut photo, &format!("photo-{n}.jpg"), content)?;
            photos.push(photo);
        }
        tech_db.commit(&mut photos.iter_mut().collect::<Vec<_>>())?;

        let start = Instant::now();
        let report = tech.sync(SyncMode::Unsynchronized).await?;
        up = up.min(start.elapsed());
        let sent = report.files_uploaded;
        anyhow::ensure!(sent == count, "{sent} of {count} contents sent");
        let (_, reader, _) =
            device(&directory, &format!("reader-{round}"), "planner", &server, None).await?;
        let selected = photos.iter().map(|p| ("Field.Photo".to_owned(), p.id())).collect();
        let start = Instant::now();
        let report = reader.sync(SyncMode::Selected(selected)).await?;
        down = down.min(start.elapsed());
        let fetched = report.files_downloaded;
        anyhow::ensure!(fetched == count, "{fetched} of {count} contents fetched");
        copy = copy.min(copy_floor(&sources, &directory.join("copies"))?);
        std::fs::remove_dir_all(&sources)?;
    }
    for (direction, time) in [("up", up), ("down", down)] {
        println!(
            "files {count} x 1 MiB {direction:<4}  {:>8.1} ms {:>9.1} ms  {:>6.2}x  >= 200 MB/s: {:.0} MB/s (copying on disk: {:.0} MB/s)",
            ms(time),
            ms(copy),
            time.as_secs_f64() / copy.as_secs_f64(),
            mb_per_second(bytes, time),
            mb_per_second(bytes, copy),
        );
    }

    // One large file, up and down, watching both processes' memory: between plain devices,
    // then between encrypted ones.
    let plain = ((tech_db, tech), (planner_db, planner));
    large_file(&plain, visit.id(), &server, (large, 7), "").await?;
    let key = ferry_client::DeviceKey::from_secret(BENCH_DEVICE_SECRET)?;
    let (tech_db, tech, _) =
        device(&directory, "technician-keyed", "technician", &server, Some(&key)).await?;
    let (planner_db, planner, _) =
        device(&directory, "planner-keyed", "planner", &server, Some(&key)).await?;
    tech.sync(SyncMode::All).await?;
    planner.sync(SyncMode::All).await?;
    let encrypted = ((tech_db, tech), (planner_db, planner));
    large_file(&encrypted, visit.id(), &server, (large, 8), ", encrypted").await?;
    std::io::stdout().flush()?;
    Ok(())
}

/// Copies every file of `from` into `to`, each synced to disk; the time it took.
fn copy_floor(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(to)?;
    let start = Instant::now();
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        std::fs::copy(entry.path(), &target)?;
        std::fs::File::open(&target)?.sync_all()?;
    }
    let time = start.elapsed();
    std::fs::remove_dir_all(to)?;
    Ok(time)
}

/// One new content of `large` bytes (from `seed`) sent up by the technician's device and fetched
/// by the planner's, each direction with the peak memory of both processes.
async fn large_file(
    ((tech_db, tech), (_, planner)): &(Device, Device),
    visit: ferry_model::ObjectId,
    server: &ServerProcess,
    (large, seed): (u64, u64),
    label: &str,
) -> anyhow::Result<()> {
    let mut photo = tech_db.create("Field.Photo")?;
    tech_db.set(&mut photo, "Photo_Visit", Value::Reference(visit))?;
    tech_db.attach_file(&mut photo, "survey.mp4", Noise::new(seed, large))?;
    tech_db.commit(&mut [&mut photo])?;
    let server_pid = server.pid().to_string();
    let held =
        resident_memory_of(&server_pid).map_or(String::new(), |b| format!("{} kB", b / 1024));
    println!("files (the server process holds {held} before the large file)");
    for direction in ["up", "down"] {
        reset_peak_memory();
        reset_peak_memory_of(&server_pid);
        let start = Instant::now();
        let moved = match direction {
            "up" => tech.sync(SyncMode::Unsynchronized).await?.files_uploaded,
            _ => {
                let selected = vec![("Field.Photo".to_owned(), photo.id())];
                planner.sync(SyncMode::Selected(selected)).await?.files_downloaded
            }
        };
        let time = start.elapsed();
        anyhow::ensure!(moved == 1, "the large content did not move {direction}");
        let (device_peak, server_peak) = (peak_memory(), peak_memory_of(&server_pid));
        let what = format!("files {} MiB file {direction}{label}", large / MIB);
        println!(
            "{what:<36} {:>8.1} ms                      < 64 MiB each: device {}, server {} ({:.0} MB/s)",
            ms(time),
            mib(device_peak),
            mib(server_peak),
            mb_per_second(large, time),
        );
    }
    Ok(())
}
