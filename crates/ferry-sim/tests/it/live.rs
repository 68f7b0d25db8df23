//! Live mode over real HTTP: a change committed on one device reaches a watched query on
//! another without a manual sync, also after the live stream was cut.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_client::{LiveEvent, LiveOptions, Query, SyncError, SyncMode};
use ferry_model::{Value, samples};
use ferry_sim::{Device, FaultProxy, TestWorld, backends};

/// Live options whose events are kept, by name.
fn recorded() -> (LiveOptions, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    let events = Arc::new(move |event: &LiveEvent| {
        let name = match event {
            LiveEvent::Connected => "connected",
            LiveEvent::Disconnected { .. } => "disconnected",
            LiveEvent::Synced(_) => "synced",
            LiveEvent::SyncFailed(_) => "sync failed",
        };
        kept.lock().unwrap().push(name.to_owned());
    });
    (LiveOptions { events: Some(events), ..LiveOptions::default() }, seen)
}

/// Commits a new site named `name` on the device.
fn commit_site(device: &Device, name: &str) {
    let mut site = device.database.create("Field.Site").unwrap();
    device.database.set(&mut site, "Name", Value::String(name.to_owned())).unwrap();
    device.database.commit(&mut [&mut site]).unwrap();
}

/// Waits (10 s at most) until the watch shows `count` sites.
async fn shows(watch: &mut ferry_client::Watch, count: usize) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while watch.next().await.unwrap().len() != count {}
    });
    waited.await.unwrap_or_else(|_| panic!("the watched query never showed {count} sites"));
}

// Live mode runs on tasks of its own: an app's commit waits on the database lock a sync's
// download holds, and the download must go on meanwhile (an app commits from its own thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_on_one_device_reaches_a_watch_on_another_without_a_manual_sync() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let writer = Arc::new(world.device("pat", &["Planner"]).await);
        let reader = Arc::new(world.device("pam", &["Planner"]).await);
        let (writer_live, _) = recorded();
        let (reader_live, reader_events) = recorded();
        let mut watch = reader.database.watch(Query::new("Field.Site")).unwrap();
        assert!(watch.next().await.unwrap().is_empty());
        let scenario = async {
            for (n, name) in ["Depot", "Yard", "Quay"].into_iter().enumerate() {
                commit_site(&writer, name);
                shows(&mut watch, n + 1).await;
            }
            // A sync of the app's own while live mode runs keeps the one-at-a-time rule: it
            // either runs or is refused with the fixed message, never alongside.
            match reader.engine.sync(SyncMode::All).await {
                Ok(_) | Err(SyncError::AlreadyRunning) => {}
                Err(other) => panic!("{other}"),
            }
            writer_live.stop.cancel();
            reader_live.stop.cancel();
        };
        let live = |device: &Arc<Device>, options: &LiveOptions| {
            let (device, options) = (Arc::clone(device), options.clone());
            tokio::spawn(async move { device.engine.run_live(&options).await })
        };
        let (written, read) = (live(&writer, &writer_live), live(&reader, &reader_live));
        scenario.await;
        written.await.unwrap().unwrap();
        read.await.unwrap().unwrap();
        assert_eq!(writer.database.pending_changes().unwrap(), 0);
        let events = reader_events.lock().unwrap().clone();
        assert_eq!(events.first().map(String::as_str), Some("connected"), "{events:?}");
        assert!(events.iter().any(|e| e == "synced"), "{events:?}");
    }
}

/// The stream is cut twice before it opens: live mode waits and connects again, and the
/// changes made meanwhile arrive once it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_is_opened_again_and_nothing_is_missed() {
    for backend in backends() {
        a_cut_stream_on(backend).await;
    }
}

async fn a_cut_stream_on(backend: ferry_sim::Backend) {
    let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
    let writer = world.device("pat", &["Planner"]).await;
    let proxy = FaultProxy::start(world.address).await;
    proxy.cut_next("/v1/live", 2);
    let reader = world.device_through(&proxy, "pam", &["Planner"]).await;
    let (reader_live, reader_events) = recorded();
    let mut watch = reader.database.watch(Query::new("Field.Site")).unwrap();
    assert!(watch.next().await.unwrap().is_empty());
    commit_site(&writer, "Depot");
    writer.engine.sync(SyncMode::All).await.unwrap();
    let scenario = async {
        shows(&mut watch, 1).await;
        commit_site(&writer, "Yard");
        writer.engine.sync(SyncMode::All).await.unwrap();
        shows(&mut watch, 2).await;
        reader_live.stop.cancel();
    };
    let (read, ()) = tokio::join!(reader.engine.run_live(&reader_live), scenario);
    read.unwrap();
    let events = reader_events.lock().unwrap().clone();
    let lost = events.iter().take_while(|e| *e == "disconnected").count();
    assert_eq!(lost, 2, "{events:?}");
    assert_eq!(events.get(2).map(String::as_str), Some("connected"), "{events:?}");
    assert_eq!(proxy.received("/v1/live"), 3);
}

/// A reader's view of a live run: each result set its watch gave (the names of its sites),
/// and how many sites its live syncs downloaded in all.
#[derive(Default)]
struct Seen {
    sets: Vec<Vec<String>>,
    downloaded: usize,
}

/// Live options that add up the sites each live sync downloads.
fn counting(seen: &Arc<Mutex<Seen>>) -> LiveOptions {
    let seen = Arc::clone(seen);
    let events = Arc::new(move |event: &LiveEvent| {
        if let LiveEvent::Synced(report) = event {
            let sites = report.downloaded.get("Field.Site").copied().unwrap_or_default();
            seen.lock().unwrap().downloaded += sites;
        }
    });
    LiveOptions { events: Some(events), ..LiveOptions::default() }
}

/// Runs live mode on a task of its own.
fn live(device: &Arc<Device>, options: &LiveOptions) -> tokio::task::JoinHandle<()> {
    let (device, options) = (Arc::clone(device), options.clone());
    tokio::spawn(async move { device.engine.run_live(&options).await.unwrap() })
}

/// Waits (10 s at most) until the watch shows `count` sites; keeps each set it gave.
async fn follows(
    device: &Device,
    watch: &mut ferry_client::Watch,
    seen: &Mutex<Seen>,
    count: usize,
) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let set = watch.next().await.unwrap();
            let names = set.iter().map(|site| match device.database.get_value(site, "Name") {
                Ok(Value::String(name)) => name.clone(),
                other => panic!("a site named {other:?}"),
            });
            let mut names: Vec<String> = names.collect();
            names.sort();
            let shown = names.len();
            seen.lock().unwrap().sets.push(names);
            if shown >= count {
                return;
            }
        }
    });
    waited.await.unwrap_or_else(|_| panic!("the watched query never showed {count} sites"));
}

/// Through the fault proxy, on each backend: hints doubled, a hint lost, the server started
/// again (on another port, the proxy pointed at it), and the reader asleep (live mode stopped)
/// while the writer commits many sites. Every site reaches the reader's watch, each set it
/// shows is the sites committed first (in order of commit), and its live syncs download each
/// site exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hints_doubled_or_lost_a_server_restart_and_a_long_sleep_lose_and_repeat_nothing() {
    for backend in backends() {
        let mut world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let proxy = FaultProxy::start(world.address).await;
        let writer = world.device_through(&proxy, "pat", &["Planner"]).await;
        let reader = Arc::new(world.device_through(&proxy, "pam", &["Planner"]).await);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut watch = reader.database.watch(Query::new("Field.Site")).unwrap();
        assert!(watch.next().await.unwrap().is_empty());
        let mut committed = 0;
        let mut commit = |writer: &Device| {
            committed += 1;
            commit_site(writer, &format!("Site {committed:03}"));
            committed
        };
        let options = counting(&seen);
        let running = live(&reader, &options);
        let n = commit(&writer);
        writer.engine.sync(SyncMode::All).await.unwrap();
        follows(&reader, &mut watch, &seen, n).await;
        // Each hint arrives twice: one more sync, nothing more downloaded.
        proxy.duplicate_hints(3);
        let n = commit(&writer);
        writer.engine.sync(SyncMode::All).await.unwrap();
        follows(&reader, &mut watch, &seen, n).await;
        // A hint lost: its site comes with the next one's.
        proxy.lose_hints(1);
        commit(&writer);
        writer.engine.sync(SyncMode::All).await.unwrap();
        let n = commit(&writer);
        writer.engine.sync(SyncMode::All).await.unwrap();
        follows(&reader, &mut watch, &seen, n).await;
        // The server starts again: the stream ends, live mode connects to the new one.
        world.restart().await;
        proxy.point_at(world.address);
        let n = commit(&writer);
        writer.engine.sync(SyncMode::All).await.unwrap();
        follows(&reader, &mut watch, &seen, n).await;
        // Asleep through many changes.
        options.stop.cancel();
        running.await.unwrap();
        let mut n = 0;
        for _ in 0..10 {
            for _ in 0..3 {
                n = commit(&writer);
            }
            writer.engine.sync(SyncMode::All).await.unwrap();
        }
        let options = counting(&seen);
        let running = live(&reader, &options);
        follows(&reader, &mut watch, &seen, n).await;
        options.stop.cancel();
        running.await.unwrap();

        let seen = seen.lock().unwrap();
        let order: Vec<String> = (1..=n).map(|k| format!("Site {k:03}")).collect();
        for set in &seen.sets {
            assert_eq!(set[..], order[..set.len()], "{backend:?}: a set out of commit order");
        }
        assert_eq!(seen.sets.last().map(Vec::len), Some(n), "{backend:?}");
        assert_eq!(seen.downloaded, n, "{backend:?}: sites downloaded by live syncs");
    }
}
