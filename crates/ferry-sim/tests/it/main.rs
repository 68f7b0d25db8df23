//! End-to-end: devices and a server over real HTTP, on both server backends.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on any error")]

use ferry_client::{Query, SIMULTANEOUS_SYNC_MESSAGE, SyncError, SyncMode};
use ferry_model::{Value, samples};
use ferry_sim::{TestWorld, backends};

mod actions;
mod convergence;
mod files;
mod live;
mod rules;
mod simulation;
mod tls;

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

#[tokio::test]
async fn committed_changes_reach_other_devices_and_uncommitted_ones_do_not() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        let db = &planner.database;
        let mut site = db.create("Field.Site").unwrap();
        db.set(&mut site, "Name", text("Depot")).unwrap();
        db.commit(&mut [&mut site]).unwrap();
        let mut draft = db.create("Field.Site").unwrap();
        db.set(&mut draft, "Name", text("not committed")).unwrap();
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!((report.uploaded, report.rejected.len()), (1, 0), "{report:?}");
        assert_eq!(db.pending_changes().unwrap(), 0);
        // Uncommitted changes are still there in the app's object after the sync.
        assert_eq!(db.get_value(&draft, "Name").unwrap(), &text("not committed"));

        other.engine.sync(SyncMode::All).await.unwrap();
        let sites = other.database.query(&Query::new("Field.Site")).unwrap();
        assert_eq!(sites.len(), 1);
        assert_eq!(other.database.get_value(&sites[0], "Name").unwrap(), &text("Depot"));
        assert_eq!(sites[0].id(), site.id(), "ids are made on the device and never change");
    }
}

#[tokio::test]
async fn concurrent_edits_of_different_attributes_both_win() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let first = world.device("pat", &["Planner"]).await;
        let second = world.device("pam", &["Planner"]).await;
        let mut order = first.database.create("Field.WorkOrder").unwrap();
        first.database.set(&mut order, "Number", Value::Integer(1)).unwrap();
        first.database.set(&mut order, "Title", text("Pump")).unwrap();
        first.database.commit(&mut [&mut order]).unwrap();
        first.engine.sync(SyncMode::All).await.unwrap();
        second.engine.sync(SyncMode::All).await.unwrap();

        // Both edit offline: one the notes, the other the priority.
        first.database.set(&mut order, "Notes", text("bring a wrench")).unwrap();
        first.database.commit(&mut [&mut order]).unwrap();
        let mut theirs = second.database.get("Field.WorkOrder", order.id()).unwrap().unwrap();
        second.database.set(&mut theirs, "Priority", Value::Integer(5)).unwrap();
        second.database.commit(&mut [&mut theirs]).unwrap();
        first.engine.sync(SyncMode::All).await.unwrap();
        second.engine.sync(SyncMode::All).await.unwrap();
        first.engine.sync(SyncMode::All).await.unwrap();
        for device in [&first, &second] {
            let stored = device.database.get("Field.WorkOrder", order.id()).unwrap().unwrap();
            assert_eq!(
                device.database.get_value(&stored, "Notes").unwrap(),
                &text("bring a wrench")
            );
            assert_eq!(device.database.get_value(&stored, "Priority").unwrap(), &Value::Integer(5));
        }
    }
}

#[tokio::test]
async fn a_rejected_change_is_reported_and_the_device_returns_to_the_server_state() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let technician = world.device("tess", &["Technician"]).await;
        let mut order = planner.database.create("Field.WorkOrder").unwrap();
        planner.database.set(&mut order, "Number", Value::Integer(1)).unwrap();
        planner.database.set(&mut order, "Title", text("Pump")).unwrap();
        planner
            .database
            .set(&mut order, "Field.WorkOrder_AssignedTo", Value::Reference(technician.user))
            .unwrap();
        planner.database.commit(&mut [&mut order]).unwrap();
        planner.engine.sync(SyncMode::All).await.unwrap();
        technician.engine.sync(SyncMode::All).await.unwrap();

        let mut mine = technician.database.get("Field.WorkOrder", order.id()).unwrap().unwrap();
        technician.database.set(&mut mine, "Title", text("Renamed")).unwrap();
        technician.database.set(&mut mine, "Notes", text("done")).unwrap();
        technician.database.commit(&mut [&mut mine]).unwrap();
        let report = technician.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.rejected.len(), 1, "{report:?}");
        assert_eq!(
            report.rejected[0].2,
            "access: role(s) Technician may not write member `Title` of `Field.WorkOrder`"
        );
        let stored = technician.database.get("Field.WorkOrder", order.id()).unwrap().unwrap();
        assert_eq!(technician.database.get_value(&stored, "Title").unwrap(), &text("Pump"));
        assert_eq!(technician.database.pending_changes().unwrap(), 0);
    }
}

#[tokio::test]
async fn each_device_holds_what_its_user_may_read() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let alice = world.device("alice", &["Technician"]).await;
        let bob = world.device("bob", &["Technician"]).await;
        for (n, who) in [(1, alice.user), (2, bob.user), (3, bob.user)] {
            let mut order = planner.database.create("Field.WorkOrder").unwrap();
            planner.database.set(&mut order, "Number", Value::Integer(n)).unwrap();
            planner.database.set(&mut order, "Title", text("job")).unwrap();
            planner
                .database
                .set(&mut order, "Field.WorkOrder_AssignedTo", Value::Reference(who))
                .unwrap();
            planner.database.commit(&mut [&mut order]).unwrap();
        }
        planner.engine.sync(SyncMode::All).await.unwrap();
        alice.engine.sync(SyncMode::All).await.unwrap();
        bob.engine.sync(SyncMode::All).await.unwrap();
        let count = |device: &ferry_sim::Device| {
            device.database.query(&Query::new("Field.WorkOrder")).unwrap().len()
        };
        assert_eq!((count(&alice), count(&bob), count(&planner)), (1, 2, 3));
    }
}

#[tokio::test]
async fn a_second_sync_while_one_runs_is_refused_with_the_fixed_message() {
    let world = TestWorld::start(ferry_sim::Backend::Sqlite, samples::FIELD_SERVICE).await;
    let planner = world.device("pat", &["Planner"]).await;
    let (first, second) =
        tokio::join!(planner.engine.sync(SyncMode::All), planner.engine.sync(SyncMode::All));
    let refused = [first, second].into_iter().filter_map(Result::err).collect::<Vec<_>>();
    assert_eq!(refused.len(), 1);
    assert!(matches!(refused[0], SyncError::AlreadyRunning));
    assert_eq!(
        refused[0].to_string(),
        "Performing simultaneous synchronizations is not supported. Please try again after the current synchronization is completed."
    );
    assert_eq!(SIMULTANEOUS_SYNC_MESSAGE, refused[0].to_string());
}

#[tokio::test]
async fn a_reference_to_an_object_that_is_nowhere_stops_the_sync_before_sending() {
    let world = TestWorld::start(ferry_sim::Backend::Sqlite, samples::FIELD_SERVICE).await;
    let planner = world.device("pat", &["Planner"]).await;
    let db = &planner.database;
    // An id no object has, here or on the server (deleting a site would clear the reference,
    // by the association's delete behaviour).
    let nowhere = ferry_model::ObjectId::from_u128(42);
    let mut order = db.create("Field.WorkOrder").unwrap();
    db.set(&mut order, "Number", Value::Integer(1)).unwrap();
    db.set(&mut order, "Title", text("t")).unwrap();
    db.set(&mut order, "Field.WorkOrder_Site", Value::Reference(nowhere)).unwrap();
    db.commit(&mut [&mut order]).unwrap();
    let error = planner.engine.sync(SyncMode::All).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "`Field.WorkOrder` {} refers through `Field.WorkOrder_Site` to {}, which is neither committed on this device nor known to the server",
            order.id(),
            nowhere
        )
    );
    assert_eq!(db.pending_changes().unwrap(), 1, "nothing was sent or lost");
}

#[tokio::test]
async fn unsynchronized_sync_uploads_without_downloading() {
    let world = TestWorld::start(ferry_sim::Backend::Sqlite, samples::FIELD_SERVICE).await;
    let first = world.device("pat", &["Planner"]).await;
    let second = world.device("pam", &["Planner"]).await;
    let mut theirs = second.database.create("Field.Site").unwrap();
    second.database.set(&mut theirs, "Name", text("theirs")).unwrap();
    second.database.commit(&mut [&mut theirs]).unwrap();
    second.engine.sync(SyncMode::All).await.unwrap();
    let mut mine = first.database.create("Field.Site").unwrap();
    first.database.set(&mut mine, "Name", text("mine")).unwrap();
    first.database.commit(&mut [&mut mine]).unwrap();
    let report = first.engine.sync(SyncMode::Unsynchronized).await.unwrap();
    assert_eq!(
        (report.uploaded, report.rejected.len(), report.downloaded.len()),
        (1, 0, 0),
        "{report:?}"
    );
    assert!(
        first.database.get("Field.Site", theirs.id()).unwrap().is_none(),
        "nothing else was downloaded"
    );
    assert_eq!(first.database.pending_changes().unwrap(), 0);
}

#[tokio::test]
async fn selected_sync_sends_only_the_selected_objects_and_brings_their_fresh_state() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let db = &planner.database;
        let mut chosen = db.create("Field.Site").unwrap();
        db.set(&mut chosen, "Name", text("chosen")).unwrap();
        let mut other = db.create("Field.Site").unwrap();
        db.set(&mut other, "Name", text("other")).unwrap();
        db.commit(&mut [&mut chosen, &mut other]).unwrap();
        let never_committed = db.create("Field.Site").unwrap();
        let report =
            planner.engine.sync(SyncMode::selected(&[&chosen, &never_committed])).await.unwrap();
        assert_eq!(report.uploaded, 1, "{report:?}");
        assert_eq!(report.downloaded.get("Field.Site"), Some(&1));
        assert_eq!(db.pending_changes().unwrap(), 1, "the unselected object still waits");

        // A selected object that refers to a new object outside the selection is a modelling error.
        let mut order = db.create("Field.WorkOrder").unwrap();
        db.set(&mut order, "Number", Value::Integer(1)).unwrap();
        db.set(&mut order, "Title", text("t")).unwrap();
        db.set(&mut order, "Field.WorkOrder_Site", Value::Reference(other.id())).unwrap();
        db.commit(&mut [&mut order]).unwrap();
        // The message says what is true: the site is committed here, not yet on the server.
        let error = planner.engine.sync(SyncMode::selected(&[&order])).await.unwrap_err();
        assert!(matches!(error, SyncError::SelectionIntegrity { .. }), "{error}");
        assert_eq!(
            error.to_string(),
            format!(
                "`Field.WorkOrder` {} refers through `Field.WorkOrder_Site` to {}, which is committed on this device but not yet on the server: select it too, or run a full sync",
                order.id(),
                other.id()
            )
        );
        let report = planner.engine.sync(SyncMode::selected(&[&order, &other])).await.unwrap();
        assert_eq!((report.uploaded, db.pending_changes().unwrap()), (2, 0), "{report:?}");
    }
}

/// The network fails during the upload: the device keeps every change and its upload, and the
/// next sync (against the server back on line) sends the same upload id, applied once.
#[tokio::test]
async fn an_upload_that_could_not_be_sent_is_sent_again_under_the_same_id() {
    for backend in backends() {
        let mut world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let admin = world.device("ada", &["Admin"]).await;
        let db = &planner.database;
        let mut site = db.create("Field.Site").unwrap();
        db.set(&mut site, "Name", text("Depot")).unwrap();
        db.commit(&mut [&mut site]).unwrap();
        world.stop();
        let error = planner.engine.sync(SyncMode::All).await.unwrap_err();
        assert!(matches!(error, SyncError::Unreachable { .. }), "{error}");
        assert_eq!(db.pending_changes().unwrap(), 1, "nothing committed is lost");
        // More work meanwhile goes into the next upload, not into the pending one.
        let mut later = db.create("Field.Site").unwrap();
        db.set(&mut later, "Name", text("Yard")).unwrap();
        db.commit(&mut [&mut later]).unwrap();

        world.restart().await;
        let engine = ferry_client::SyncEngine::new(
            std::sync::Arc::clone(db),
            &format!("http://{}", world.address),
        )
        .unwrap();
        let first = engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(first.uploaded, 1, "the pending upload, as it was: {first:?}");
        let second = engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(second.uploaded, 1, "then the later work: {second:?}");
        assert_eq!(db.pending_changes().unwrap(), 0);
        let admin_engine = ferry_client::SyncEngine::new(
            std::sync::Arc::clone(&admin.database),
            &format!("http://{}", world.address),
        )
        .unwrap();
        admin_engine.sign_in("ada", "device password").await.unwrap();
        admin_engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(admin.database.query(&Query::new("Field.Site")).unwrap().len(), 2);
    }
}

#[tokio::test]
async fn a_cancelled_download_changes_nothing_on_the_device() {
    let world = TestWorld::start(ferry_sim::Backend::Sqlite, samples::FIELD_SERVICE).await;
    let writer = world.device("pat", &["Planner"]).await;
    let reader = world.device("pam", &["Planner"]).await;
    let mut site = writer.database.create("Field.Site").unwrap();
    writer.database.set(&mut site, "Name", text("Depot")).unwrap();
    writer.database.commit(&mut [&mut site]).unwrap();
    writer.engine.sync(SyncMode::All).await.unwrap();

    let mut mine = reader.database.create("Field.Site").unwrap();
    reader.database.set(&mut mine, "Name", text("Yard")).unwrap();
    reader.database.commit(&mut [&mut mine]).unwrap();
    // Cancel as soon as the first download page arrives: the upload is done, the download not applied.
    let cancel = ferry_client::CancelToken::new();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (seen, stop) = (std::sync::Arc::clone(&events), cancel.clone());
    let options = ferry_client::SyncOptions {
        progress: Some(std::sync::Arc::new(move |progress: &ferry_client::Progress| {
            seen.lock().unwrap().push(progress.clone());
            if progress.phase == ferry_client::Phase::Download {
                stop.cancel();
            }
        })),
        cancel: Some(cancel),
    };
    let error = reader.engine.sync_with(SyncMode::All, &options).await.unwrap_err();
    assert!(matches!(error, SyncError::Cancelled), "{error}");
    assert_eq!(reader.database.pending_changes().unwrap(), 0, "the upload finished");
    assert!(
        reader.database.get("Field.Site", site.id()).unwrap().is_none(),
        "the download was not applied"
    );
    let events = events.lock().unwrap().clone();
    assert_eq!(events[0].phase, ferry_client::Phase::Upload);
    assert_eq!((events[1].objects_done, events[1].objects_total), (1, Some(1)));
    assert_eq!(events[2].phase, ferry_client::Phase::Download);
    assert!(events[2].bytes_done > 0 && events[2].entity.is_some(), "{:?}", events[2]);

    // The next sync completes, and a token cancelled before the start stops it at once.
    reader.engine.sync(SyncMode::All).await.unwrap();
    assert!(reader.database.get("Field.Site", site.id()).unwrap().is_some());
    let cancelled = ferry_client::CancelToken::new();
    cancelled.cancel();
    let options = ferry_client::SyncOptions { progress: None, cancel: Some(cancelled) };
    assert!(matches!(
        reader.engine.sync_with(SyncMode::All, &options).await,
        Err(SyncError::Cancelled)
    ));
}

/// The progress of a download shows each entity's objects and bytes against the totals the
/// server counted on the first page; after the last page the totals are what arrived.
#[tokio::test]
async fn download_progress_counts_towards_the_servers_total() {
    for backend in backends() {
        let limits = ferry_server::Limits { page_rows_max: 10, ..Default::default() };
        let world = TestWorld::start_with(backend, samples::FIELD_SERVICE, limits).await;
        let writer = world.device("pat", &["Planner"]).await;
        let mut sites: Vec<_> =
            (0..25).map(|_| writer.database.create("Field.Site").unwrap()).collect();
        for (n, site) in sites.iter_mut().enumerate() {
            writer.database.set(site, "Name", text(&format!("Site {n}"))).unwrap();
        }
        writer.database.commit(&mut sites.iter_mut().collect::<Vec<_>>()).unwrap();
        writer.engine.sync(SyncMode::All).await.unwrap();

        let reader = world.device("pam", &["Planner"]).await;
        let site_events = async |device: &ferry_sim::Device| {
            let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let seen = std::sync::Arc::clone(&events);
            let options = ferry_client::SyncOptions {
                progress: Some(std::sync::Arc::new(move |progress: &ferry_client::Progress| {
                    if progress.entity.as_deref() == Some("Field.Site") {
                        seen.lock().unwrap().push(progress.clone());
                    }
                })),
                cancel: None,
            };
            device.engine.sync_with(SyncMode::All, &options).await.unwrap();
            events.lock().unwrap().clone()
        };
        let first = site_events(&reader).await;
        let counts: Vec<_> = first.iter().map(|p| (p.objects_done, p.objects_total)).collect();
        assert_eq!(counts, [(10, Some(25)), (20, Some(25)), (25, Some(25))]);
        let (start, end) = (&first[0], &first[2]);
        let estimate = start.bytes_total.unwrap();
        assert!(estimate > start.bytes_done && estimate < 4 * start.bytes_done, "{start:?}");
        assert_eq!(end.bytes_total, Some(end.bytes_done));
        assert!(first.windows(2).all(|w| w[0].bytes_done < w[1].bytes_done), "{first:?}");

        // An incremental download counts changes and removals.
        writer.database.set(&mut sites[0], "Name", text("Depot")).unwrap();
        writer.database.set(&mut sites[1], "Name", text("Yard")).unwrap();
        let [first, second, ..] = &mut sites[..] else { unreachable!() };
        writer.database.commit(&mut [first, second]).unwrap();
        writer.database.delete(&mut sites[2]).unwrap();
        writer.engine.sync(SyncMode::All).await.unwrap();
        let next = site_events(&reader).await;
        let counts: Vec<_> = next.iter().map(|p| (p.objects_done, p.objects_total)).collect();
        assert_eq!(counts, [(3, Some(3))]);
    }
}

#[tokio::test]
async fn a_new_user_on_the_device_waits_for_the_previous_users_changes() {
    let world = TestWorld::start(ferry_sim::Backend::Sqlite, samples::FIELD_SERVICE).await;
    let device = world.device("pat", &["Planner"]).await;
    world.server.add_user("tess", &["Technician".to_owned()], ferry_sim::PASSWORD).await.unwrap();
    let db = &device.database;
    let mut site = db.create("Field.Site").unwrap();
    db.set(&mut site, "Name", text("Depot")).unwrap();
    db.commit(&mut [&mut site]).unwrap();
    let error = device.engine.sign_in("tess", ferry_sim::PASSWORD).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "1 changes of the previous user are not uploaded yet: sign in as that user and sync before switching users"
    );
    assert_eq!(db.pending_changes().unwrap(), 1);
    device.engine.sync(SyncMode::All).await.unwrap();
    device.engine.sign_in("tess", ferry_sim::PASSWORD).await.unwrap();
    assert!(
        db.query(&Query::new("Field.Site")).unwrap().is_empty(),
        "the previous user's data left the device"
    );
    device.engine.sync(SyncMode::All).await.unwrap();
    assert_eq!(
        db.query(&Query::new("Field.Site")).unwrap().len(),
        1,
        "what the new user may read came back"
    );
}

/// A full sync runs by itself on a first start, and on the first contact after the server's
/// model changed: the device migrates its schema and keeps its unsynchronised changes.
#[tokio::test]
async fn full_syncs_start_by_themselves_when_due_and_follow_a_new_model() {
    for backend in backends() {
        let newer = samples::FIELD_SERVICE.replace(
            "attributes.Address = { type = \"string\", max_length = 400 }",
            "attributes.Address = { type = \"string\", max_length = 400 }\nattributes.Gate = { type = \"string\", default = \"north\" }",
        );
        let world = TestWorld::start(backend, &newer).await;
        world.server.add_user("pat", &["Planner".to_owned()], ferry_sim::PASSWORD).await.unwrap();
        let writer = world.device("pam", &["Planner"]).await;
        let mut site = writer.database.create("Field.Site").unwrap();
        writer.database.set(&mut site, "Name", text("Depot")).unwrap();
        writer.database.commit(&mut [&mut site]).unwrap();
        writer.engine.sync(SyncMode::All).await.unwrap();

        // A device still on the older model, with a change made offline.
        let dir =
            std::env::temp_dir().join(format!("ferry-sim-old-{}-{backend:?}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let database = std::sync::Arc::new(
            ferry_client::Database::open(dir.join("old.db"), samples::FIELD_SERVICE).unwrap(),
        );
        let engine = ferry_client::SyncEngine::new(
            std::sync::Arc::clone(&database),
            &format!("http://{}", world.address),
        )
        .unwrap();
        engine.sign_in("pat", ferry_sim::PASSWORD).await.unwrap();
        let mut offline = database.create("Field.Site").unwrap();
        database.set(&mut offline, "Name", text("Yard")).unwrap();
        database.commit(&mut [&mut offline]).unwrap();
        assert!(database.model().entity("Field.Site").unwrap().attribute("Gate").is_none());

        let report = engine.sync_if_needed().await.unwrap().expect("a first start syncs fully");
        assert_eq!((report.uploaded, report.rejected.len()), (1, 0), "{report:?}");
        assert!(
            database.model().entity("Field.Site").unwrap().attribute("Gate").is_some(),
            "the device follows the server's model"
        );
        let depot = database.get("Field.Site", site.id()).unwrap().unwrap();
        assert_eq!(database.get_value(&depot, "Gate").unwrap(), &text("north"));
        assert!(
            engine.sync_if_needed().await.unwrap().is_none(),
            "nothing is due after a full sync"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
