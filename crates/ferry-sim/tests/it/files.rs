//! File contents end to end (DESIGN.md §4, Upload step 2 and Download), one test per rule, on
//! both server backends over real HTTP; network faults come from a `FaultProxy`.

use std::io::Read as _;

use ferry_client::{Object, SyncError, SyncMode};
use ferry_model::{Timestamp, Value, samples};
use ferry_sim::{Device, FaultProxy, TestWorld, backends};

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn content_of(device: &Device, object: &Object) -> String {
    let mut read = String::new();
    device.database.open_file(object).unwrap().read_to_string(&mut read).unwrap();
    read
}

/// A work order of the planner's assigned to `technician`, synced to the technician, and a
/// committed visit of the technician to it: what photos hang on.
async fn visit_of(planner: &Device, technician: &Device) -> Object {
    let db = &planner.database;
    let mut order = db.create("Field.WorkOrder").unwrap();
    db.set(&mut order, "Number", Value::Integer(1)).unwrap();
    db.set(&mut order, "Title", text("Pump")).unwrap();
    db.set(&mut order, "WorkOrder_AssignedTo", Value::Reference(technician.user)).unwrap();
    db.commit(&mut [&mut order]).unwrap();
    planner.engine.sync(SyncMode::All).await.unwrap();
    technician.engine.sync(SyncMode::All).await.unwrap();
    let db = &technician.database;
    let mut visit = db.create("Field.Visit").unwrap();
    let started = Timestamp::parse("2026-11-23T09:00:00Z").unwrap();
    db.set(&mut visit, "StartedAt", Value::DateTime(started)).unwrap();
    db.set(&mut visit, "Visit_WorkOrder", Value::Reference(order.id())).unwrap();
    db.set(&mut visit, "Visit_Technician", Value::Reference(technician.user)).unwrap();
    db.commit(&mut [&mut visit]).unwrap();
    visit
}

/// A planner, and a technician reaching the server through a fault proxy with a visit to
/// one of her work orders.
struct Scene {
    world: TestWorld,
    proxy: FaultProxy,
    planner: Device,
    alice: Device,
    visit: Object,
}

async fn scene(backend: ferry_sim::Backend) -> Scene {
    let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
    let proxy = FaultProxy::start(world.address).await;
    let planner = world.device("pat", &["Planner"]).await;
    let alice = world.device_through(&proxy, "alice", &["Technician"]).await;
    let visit = visit_of(&planner, &alice).await;
    Scene { world, proxy, planner, alice, visit }
}

fn photo(device: &Device, visit: &Object, content: &str) -> Object {
    let db = &device.database;
    let mut photo = db.create("Field.Photo").unwrap();
    db.set(&mut photo, "Photo_Visit", Value::Reference(visit.id())).unwrap();
    db.attach_file(&mut photo, "pump.jpg", content.as_bytes()).unwrap();
    db.commit(&mut [&mut photo]).unwrap();
    photo
}

fn hash_of(device: &Device, object: &Object) -> String {
    match device.database.get_value(object, "ContentHash").unwrap() {
        Value::String(hash) => hash.clone(),
        other => panic!("no content: {other}"),
    }
}

fn selected(object: &Object) -> SyncMode {
    SyncMode::Selected(vec![(object.entity().to_string(), object.id())])
}

#[tokio::test]
async fn contents_go_up_before_their_objects_and_down_only_when_missing_or_changed() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let alice = world.device("alice", &["Technician"]).await;
        let visit = visit_of(&planner, &alice).await;
        let mut taken = photo(&alice, &visit, "the pump, before");
        let report = alice.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!((report.uploaded, report.files_uploaded), (2, 1), "{report:?}");
        assert_eq!(content_of(&alice, &taken), "the pump, before");

        // Photos download nothing in full syncs; a selected sync brings the object and its content.
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.files_downloaded, 0);
        let report = planner.engine.sync(selected(&taken)).await.unwrap();
        assert_eq!(report.files_downloaded, 1, "{report:?}");
        let seen = planner.database.get("Field.Photo", taken.id()).unwrap().unwrap();
        assert_eq!(content_of(&planner, &seen), "the pump, before");
        let report = planner.engine.sync(selected(&taken)).await.unwrap();
        assert_eq!(report.files_downloaded, 0, "held already: not fetched again");

        alice.database.attach_file(&mut taken, "pump.jpg", &b"the pump, after"[..]).unwrap();
        alice.database.commit(&mut [&mut taken]).unwrap();
        assert_eq!(alice.engine.sync(SyncMode::All).await.unwrap().files_uploaded, 1);
        let report = planner.engine.sync(selected(&taken)).await.unwrap();
        assert_eq!(report.files_downloaded, 1, "changed: fetched");
        let seen = planner.database.get("Field.Photo", taken.id()).unwrap().unwrap();
        assert_eq!(content_of(&planner, &seen), "the pump, after");
    }
}

#[tokio::test]
async fn a_content_the_server_holds_already_costs_no_transfer() {
    for backend in backends() {
        let Scene { world: _world, proxy, planner: _, alice, visit } = scene(backend).await;
        photo(&alice, &visit, "the same bytes");
        assert_eq!(alice.engine.sync(SyncMode::All).await.unwrap().files_uploaded, 1);
        // A second photo with the same content: the server is asked, and nothing is sent.
        let again = photo(&alice, &visit, "the same bytes");
        let before = proxy.forwarded("/v1/files/");
        let report = alice.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!((report.uploaded, report.files_uploaded), (1, 0), "{report:?}");
        assert_eq!(proxy.forwarded("/v1/files/") - before, 1, "only the question");
        assert_eq!(content_of(&alice, &again), "the same bytes");
    }
}

#[tokio::test]
async fn a_failed_file_upload_is_retried_once() {
    for backend in backends() {
        let Scene { world: _world, proxy, planner, alice, visit } = scene(backend).await;
        // A dropped connection, then a gateway's 503: each fails one attempt, the retry sends.
        for (n, fail) in ["cut", "gateway"].into_iter().enumerate() {
            let taken = photo(&alice, &visit, &format!("sent on the second try ({fail})"));
            let put = format!("/v1/files/{}", hash_of(&alice, &taken));
            match fail {
                "cut" => proxy.cut_next(&put, 1),
                _ => proxy.gateway_fails(&put, 503, 1),
            }
            let report = alice.engine.sync(SyncMode::All).await.unwrap();
            let objects = if n == 0 { 2 } else { 1 };
            assert_eq!(
                (report.uploaded, report.files_uploaded),
                (objects, 1),
                "{fail}: {report:?}"
            );
            assert_eq!(proxy.received(&put), 2, "{fail}: two attempts in all");
            assert_eq!(proxy.forwarded(&put), 1, "{fail}: the retry went through");
            let report = planner.engine.sync(selected(&taken)).await.unwrap();
            assert_eq!(report.files_downloaded, 1);
        }
    }
}

#[tokio::test]
async fn a_second_file_upload_failure_aborts_the_sync_and_keeps_every_local_change() {
    for backend in backends() {
        let Scene { world: _world, proxy, planner: _, alice, visit } = scene(backend).await;
        let taken = photo(&alice, &visit, "never gets through");
        let pending = alice.database.pending_changes().unwrap();
        assert_eq!(pending, 2, "the visit and the photo");
        let put = format!("/v1/files/{}", hash_of(&alice, &taken));
        for (n, fail) in ["cut", "gateway"].into_iter().enumerate() {
            match fail {
                "cut" => proxy.cut_next(&put, 2),
                _ => proxy.gateway_fails(&put, 503, 2),
            }
            let error = alice.engine.sync(SyncMode::All).await.unwrap_err();
            assert!(matches!(error, SyncError::FileUpload { .. }), "{fail}: {error}");
            assert!(error.to_string().contains("every local change is kept"), "{error}");
            assert_eq!(proxy.received(&put), 2 * (n + 1), "{fail}: exactly two attempts");
            assert_eq!(alice.database.pending_changes().unwrap(), pending);
            assert_eq!(proxy.forwarded("/v1/upload"), 0, "the objects were not sent");
            assert_eq!(content_of(&alice, &taken), "never gets through");
        }

        let report = alice.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!((report.uploaded, report.files_uploaded), (2, 1), "{report:?}");
        assert_eq!(alice.database.pending_changes().unwrap(), 0);
    }
}

/// A proxy that re-frames every answer as chunked, with no `Content-Length` (as proxies that
/// rewrite bodies do): the sign-in, the model, uploads, download pages and file contents are all
/// read whole, never taken as empty.
#[tokio::test]
async fn answers_re_framed_in_chunks_by_a_proxy_are_read_whole() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let proxy = FaultProxy::start(world.address).await;
        proxy.rechunk_answers();
        let planner = world.device_through(&proxy, "pat", &["Planner"]).await;
        let alice = world.device("alice", &["Technician"]).await;
        let visit = visit_of(&planner, &alice).await;
        let taken = photo(&alice, &visit, &"a photo in small chunks ".repeat(1_000));
        alice.engine.sync(SyncMode::All).await.unwrap();
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.downloaded.get("Field.Visit"), Some(&1), "{report:?}");
        assert!(planner.database.get("Field.Visit", visit.id()).unwrap().is_some());
        let report = planner.engine.sync(selected(&taken)).await.unwrap();
        assert_eq!(report.files_downloaded, 1, "{report:?}");
        let seen = planner.database.get("Field.Photo", taken.id()).unwrap().unwrap();
        assert_eq!(content_of(&planner, &seen), "a photo in small chunks ".repeat(1_000));
        assert!(proxy.forwarded("/v1/download/") > 0, "pages went through the proxy");
    }
}

#[tokio::test]
async fn a_download_failing_while_contents_arrive_changes_nothing_and_no_half_file_is_seen() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let proxy = FaultProxy::start(world.address).await;
        let planner = world.device_through(&proxy, "pat", &["Planner"]).await;
        let alice = world.device("alice", &["Technician"]).await;
        let visit = visit_of(&planner, &alice).await;
        let taken = photo(&alice, &visit, &"a long photo ".repeat(10_000));
        alice.engine.sync(SyncMode::All).await.unwrap();

        // Every attempt breaks off half way through the content: the sync fails, the device
        // holds neither the object nor any part of the content.
        proxy.truncate_answers("/v1/files/Field.Photo/", ferry_client::SEND_ATTEMPTS_MAX as usize);
        let error = planner.engine.sync(selected(&taken)).await.unwrap_err();
        assert!(matches!(error, SyncError::Unreachable { .. }), "{error}");
        assert!(planner.database.get("Field.Photo", taken.id()).unwrap().is_none());
        let files = world.directory().join("pat.db.files");
        let visible: Vec<_> =
            walk(&files).into_iter().filter(|p| !p.contains("incoming")).collect();
        assert!(visible.is_empty(), "{visible:?}");
        assert!(walk(&files.join("incoming")).is_empty(), "the half content was removed");

        let report = planner.engine.sync(selected(&taken)).await.unwrap();
        assert_eq!(report.files_downloaded, 1);
        let seen = planner.database.get("Field.Photo", taken.id()).unwrap().unwrap();
        assert_eq!(content_of(&planner, &seen).len(), 13 * 10_000);
    }
}

/// Every file under `root`, as paths.
fn walk(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

/// A server handler that refuses photos named `refused.jpg`: a rule only the server knows.
fn refusing_photos() -> ferry_server::Handlers {
    ferry_server::Handlers::default().before_apply(
        "Field.Photo",
        Box::new(|photo| match photo.get("FileName") {
            Some(Value::String(name)) if name == "refused.jpg" => {
                Err("handler: photos named refused.jpg are not accepted".to_owned())
            }
            _ => Ok(()),
        }),
    )
}

#[tokio::test]
async fn the_content_of_a_rejected_file_object_stays_with_its_failure() {
    for backend in backends() {
        let world = TestWorld::start_with_handlers(
            backend,
            samples::FIELD_SERVICE,
            ferry_server::Limits::default(),
            refusing_photos,
        )
        .await;
        let planner = world.device("pat", &["Planner"]).await;
        let alice = world.device("alice", &["Technician"]).await;
        let visit = visit_of(&planner, &alice).await;
        let db = &alice.database;
        let mut refused = db.create("Field.Photo").unwrap();
        db.set(&mut refused, "Photo_Visit", Value::Reference(visit.id())).unwrap();
        db.attach_file(&mut refused, "refused.jpg", &b"kept for the administrator"[..]).unwrap();
        db.commit(&mut [&mut refused]).unwrap();
        let report = alice.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.rejected.len(), 1, "{report:?}");
        assert!(report.rejected[0].2.contains("photos named refused.jpg"), "{report:?}");
        assert!(
            db.get("Field.Photo", refused.id()).unwrap().is_none(),
            "back to the server's state"
        );

        let failures = world.server.failures().await.unwrap();
        let failure = failures.iter().find(|f| f.entity == "Field.Photo").unwrap();
        let mut kept = String::new();
        let mut file = world.server.failure_file(failure.id).await.unwrap().unwrap();
        file.read_to_string(&mut kept).unwrap();
        assert_eq!(kept, "kept for the administrator");
    }
}

#[tokio::test]
async fn file_contents_belong_to_file_entities_only() {
    let world = TestWorld::start(ferry_sim::Backend::Sqlite, samples::FIELD_SERVICE).await;
    let device = world.device("pat", &["Planner"]).await;
    let mut site = device.database.create("Field.Site").unwrap();
    let error = device.database.attach_file(&mut site, "a.txt", &b"no"[..]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "`Field.Site` is not a file entity: its objects carry no file contents"
    );
    let stored = walk(&world.directory().join("pat.db.files"));
    assert!(stored.is_empty(), "nothing was stored: {stored:?}");
    let photo = device.database.create("Field.Photo").unwrap();
    let error = device.database.open_file(&photo).unwrap_err();
    assert!(error.to_string().contains("is not on this device"), "{error}");
}
