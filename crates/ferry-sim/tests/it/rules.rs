//! One end-to-end test per rule of DESIGN.md §3–4 not pinned elsewhere in this binary, each
//! named after its rule, on both server backends over real HTTP.

use ferry_client::{ClearMode, Deletion, Query, SyncError, SyncMode};
use ferry_model::{Value, samples};
use ferry_sim::{Device, FaultProxy, TestWorld, backends};

use crate::text;

fn site(device: &Device, name: &str) -> ferry_client::Object {
    let mut site = device.database.create("Field.Site").unwrap();
    device.database.set(&mut site, "Name", text(name)).unwrap();
    device.database.commit(&mut [&mut site]).unwrap();
    site
}

fn names(device: &Device, entity: &str) -> Vec<String> {
    let mut names: Vec<String> = device
        .database
        .query(&Query::new(entity))
        .unwrap()
        .iter()
        .map(|o| match device.database.get_value(o, "Name").unwrap() {
            Value::String(name) => name.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    names.sort();
    names
}

/// §3: `delete` removes an object locally and records the deletion only if the server knows it.
#[tokio::test]
async fn delete_records_the_deletion_only_when_the_server_knows_the_object() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        let mut known = site(&planner, "known");
        planner.engine.sync(SyncMode::All).await.unwrap();
        other.engine.sync(SyncMode::All).await.unwrap();
        let mut local = site(&planner, "local only");
        assert_eq!(planner.database.delete(&mut local).unwrap(), Deletion::Removed);
        assert_eq!(planner.database.delete(&mut known).unwrap(), Deletion::Recorded);
        assert_eq!(planner.database.pending_changes().unwrap(), 1, "only the known one is sent");
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!((report.uploaded, report.rejected.len()), (1, 0), "{report:?}");
        let report = other.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.removed.get("Field.Site"), Some(&1), "{report:?}");
        assert!(names(&other, "Field.Site").is_empty());
    }
}

/// §3: default attribute values from the model apply to objects created offline, and reach the
/// server as the device committed them.
#[tokio::test]
async fn defaults_from_the_model_apply_to_objects_created_offline() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        let db = &planner.database;
        let mut order = db.create("Field.WorkOrder").unwrap();
        assert_eq!(db.get_value(&order, "Status").unwrap(), &Value::Enumeration("Open".to_owned()));
        assert_eq!(db.get_value(&order, "Priority").unwrap(), &Value::Integer(3));
        db.set(&mut order, "Number", Value::Integer(7)).unwrap();
        db.set(&mut order, "Title", text("Offline")).unwrap();
        db.commit(&mut [&mut order]).unwrap();
        planner.engine.sync(SyncMode::All).await.unwrap();
        other.engine.sync(SyncMode::All).await.unwrap();
        let seen = other.database.get("Field.WorkOrder", order.id()).unwrap().unwrap();
        assert_eq!(other.database.get_value(&seen, "Priority").unwrap(), &Value::Integer(3));
        assert_eq!(other.database.get_value(&seen, "Completed").unwrap(), &Value::Boolean(false));
    }
}

/// §3: `clear(entity)` removes the entity's objects from the device only; unsynced changes in
/// it are refused unless forced.
#[tokio::test]
async fn clear_removes_objects_from_the_device_only() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        site(&planner, "Depot");
        planner.engine.sync(SyncMode::All).await.unwrap();
        site(&planner, "Unsent");
        let refused = planner.database.clear("Field.Site", ClearMode::KeepChanges).unwrap_err();
        assert!(refused.to_string().contains("unsynchronised changes"), "{refused}");
        assert_eq!(names(&planner, "Field.Site"), ["Depot", "Unsent"], "nothing was cleared");
        planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(planner.database.clear("Field.Site", ClearMode::KeepChanges).unwrap(), 2);
        assert!(names(&planner, "Field.Site").is_empty());
        // The server still has both: a new device of the same user receives them.
        let fresh = world.another_device("pat", "pat-second").await;
        fresh.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(names(&fresh, "Field.Site"), ["Depot", "Unsent"]);
        // The cleared device syncs them back: it equals a fresh device of its user again.
        planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(names(&planner, "Field.Site"), ["Depot", "Unsent"], "cleared objects return");
    }
}

/// §3: local queries, with the constraint language, read the local database (what sync brought
/// and what the app committed), with no network.
#[tokio::test]
async fn local_queries_read_the_local_database() {
    for backend in backends() {
        let mut world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        site(&other, "Depot");
        site(&other, "Yard");
        other.engine.sync(SyncMode::All).await.unwrap();
        planner.engine.sync(SyncMode::All).await.unwrap();
        world.stop();
        site(&planner, "Dock");
        let found =
            planner.database.query(&Query::new("Field.Site").filter("[Name != 'Yard']")).unwrap();
        let mut found: Vec<String> = found
            .iter()
            .map(|o| format!("{:?}", planner.database.get_value(o, "Name").unwrap()))
            .collect();
        found.sort();
        assert_eq!(found, [r#"String("Depot")"#, r#"String("Dock")"#]);
    }
}

/// §4: in selected sync, deletions cannot be selected: they wait for a full sync.
#[tokio::test]
async fn deletions_cannot_be_selected() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let mut gone = site(&planner, "Gone");
        planner.engine.sync(SyncMode::All).await.unwrap();
        planner.database.delete(&mut gone).unwrap();
        let report = planner.engine.sync(SyncMode::selected(&[&gone])).await.unwrap();
        assert_eq!(report.uploaded, 0, "{report:?}");
        assert_eq!(planner.database.pending_changes().unwrap(), 1);
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!((report.uploaded, planner.database.pending_changes().unwrap()), (1, 0));
    }
}

/// §4 Upload 3: new objects are applied in reference order (a new object before the new objects
/// that reference it), whatever order the device sends them in.
#[tokio::test]
async fn new_objects_are_applied_in_reference_order() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let admin = world.device("ada", &["Admin"]).await;
        let db = &admin.database;
        let mut country = db.create("Field.Country").unwrap();
        db.set(&mut country, "Code", text("NL")).unwrap();
        db.set(&mut country, "Name", text("Netherlands")).unwrap();
        // `Field.City` sorts before `Field.Country`: the device sends the city first.
        let mut city = db.create("Field.City").unwrap();
        db.set(&mut city, "Name", text("Utrecht")).unwrap();
        db.set(&mut city, "City_Country", Value::Reference(country.id())).unwrap();
        db.commit(&mut [&mut city, &mut country]).unwrap();
        let report = admin.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!((report.uploaded, report.rejected.len()), (2, 0), "{report:?}");
        let planner = world.device("pat", &["Planner"]).await;
        planner.engine.sync(SyncMode::All).await.unwrap();
        let seen = planner.database.get("Field.City", city.id()).unwrap().unwrap();
        assert_eq!(
            planner.database.get_value(&seen, "City_Country").unwrap(),
            &Value::Reference(country.id())
        );
    }
}

/// §4 Upload 3: a reference to an object that exists neither on the server nor in the upload
/// (here: deleted on the server meanwhile) skips that object into `SynchronizationError` with a
/// message naming entity, id and association; the others commit, and the rejected new object
/// leaves the device.
#[tokio::test]
async fn a_dangling_reference_skips_only_that_object() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        let doomed = site(&planner, "Doomed");
        planner.engine.sync(SyncMode::All).await.unwrap();
        other.engine.sync(SyncMode::All).await.unwrap();
        let mut theirs = other.database.get("Field.Site", doomed.id()).unwrap().unwrap();
        other.database.delete(&mut theirs).unwrap();
        other.engine.sync(SyncMode::All).await.unwrap();

        let db = &planner.database;
        let mut order = db.create("Field.WorkOrder").unwrap();
        db.set(&mut order, "Number", Value::Integer(1)).unwrap();
        db.set(&mut order, "Title", text("At the doomed site")).unwrap();
        db.set(&mut order, "Field.WorkOrder_Site", Value::Reference(doomed.id())).unwrap();
        db.commit(&mut [&mut order]).unwrap();
        let fine = site(&planner, "Fine");
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.uploaded, 1, "{report:?}");
        assert_eq!(
            report.rejected,
            [(
                "Field.WorkOrder".to_owned(),
                order.id(),
                format!(
                    "dangling reference: `Field.WorkOrder` {} refers through `Field.WorkOrder_Site` to {}, which exists neither on the server nor in the upload",
                    order.id(),
                    doomed.id()
                )
            )]
        );
        assert!(db.get("Field.Site", fine.id()).unwrap().is_some());
        assert!(db.get("Field.Site", doomed.id()).unwrap().is_none());
        assert!(db.get("Field.WorkOrder", order.id()).unwrap().is_none(), "failed in upload");
        assert_eq!(db.pending_changes().unwrap(), 0);
    }
}

/// §4 Upload 4: a device that retries after losing the answer gets the same result, and the
/// server applies nothing twice.
#[tokio::test]
async fn a_retry_after_a_lost_answer_gets_the_same_result_and_applies_nothing_twice() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let proxy = FaultProxy::start(world.address).await;
        let planner = world.device_through(&proxy, "pat", &["Planner"]).await;
        let mut depot = site(&planner, "Depot");
        planner.engine.sync(SyncMode::All).await.unwrap();
        planner.database.set(&mut depot, "Address", text("Main 1")).unwrap();
        planner.database.commit(&mut [&mut depot]).unwrap();
        site(&planner, "Yard");
        proxy.lose_answers("/v1/upload", 1);
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(proxy.forwarded("/v1/upload"), 3, "the first upload, then the lost one twice");
        assert_eq!((report.uploaded, report.rejected.len()), (2, 0), "{report:?}");
        // Applied once: the site changed once since its creation, the new one exists once.
        let other = world.device("pam", &["Planner"]).await;
        other.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(names(&other, "Field.Site"), ["Depot", "Yard"]);
        // A second application would have failed the creation of an existing id: the retry
        // got the first answer, with nothing rejected, and nothing is left to send.
        assert_eq!(planner.database.pending_changes().unwrap(), 0);
    }
}

/// §4 Download: a download that fails part way changes nothing on the device; the upload's
/// effects stay on the server, and the next sync brings everything.
#[tokio::test]
async fn a_download_that_fails_part_way_changes_nothing_on_the_device() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let proxy = FaultProxy::start(world.address).await;
        let planner = world.device_through(&proxy, "pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        planner.engine.sync(SyncMode::All).await.unwrap();
        site(&other, "Theirs");
        let mut order = other.database.create("Field.WorkOrder").unwrap();
        other.database.set(&mut order, "Number", Value::Integer(1)).unwrap();
        other.database.set(&mut order, "Title", text("Theirs")).unwrap();
        other.database.commit(&mut [&mut order]).unwrap();
        other.engine.sync(SyncMode::All).await.unwrap();

        let mine = site(&planner, "Mine");
        // Sites download before work orders; the network fails on the work orders.
        proxy.cut("/v1/download/Field.WorkOrder");
        let error = planner.engine.sync(SyncMode::All).await.unwrap_err();
        assert!(matches!(error, SyncError::Unreachable { .. }), "{error}");
        assert_eq!(planner.database.pending_changes().unwrap(), 0, "the upload is done");
        assert_eq!(names(&planner, "Field.Site"), ["Mine"], "no page of the download applied");
        let others = other.database.get("Field.Site", mine.id()).unwrap();
        assert!(others.is_none());
        proxy.heal();
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.downloaded.get("Field.WorkOrder"), Some(&1), "{report:?}");
        assert_eq!(names(&planner, "Field.Site"), ["Mine", "Theirs"]);
    }
}

/// §4 Download: objects deleted on the server, no longer readable, or no longer matching the
/// download constraint are removed from the device by a full sync.
#[tokio::test]
async fn objects_deleted_unreadable_or_no_longer_matching_leave_the_device() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let technician = world.device("tess", &["Technician"]).await;
        let db = &planner.database;
        let mut orders = Vec::new();
        for n in 1..=4 {
            let mut order = db.create("Field.WorkOrder").unwrap();
            db.set(&mut order, "Number", Value::Integer(n)).unwrap();
            db.set(&mut order, "Title", text(&format!("Order {n}"))).unwrap();
            db.set(&mut order, "Field.WorkOrder_AssignedTo", Value::Reference(technician.user))
                .unwrap();
            orders.push(order);
        }
        db.commit(&mut orders.iter_mut().collect::<Vec<_>>()).unwrap();
        planner.engine.sync(SyncMode::All).await.unwrap();
        technician.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(technician.database.query(&Query::new("Field.WorkOrder")).unwrap().len(), 4);

        db.delete(&mut orders[0]).unwrap();
        db.set(&mut orders[1], "Field.WorkOrder_AssignedTo", Value::Reference(planner.user))
            .unwrap();
        db.set(&mut orders[2], "Status", text("Closed")).unwrap();
        db.set(&mut orders[2], "DueDate", Value::DateTime("2020-01-01T00:00:00Z".parse_ts()))
            .unwrap();
        let (first, rest) = orders.split_at_mut(2);
        db.commit(&mut [&mut first[1], &mut rest[0]]).unwrap();
        planner.engine.sync(SyncMode::All).await.unwrap();
        let report = technician.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.removed.get("Field.WorkOrder"), Some(&3), "{report:?}");
        let left: Vec<_> = technician
            .database
            .query(&Query::new("Field.WorkOrder"))
            .unwrap()
            .iter()
            .map(|o| o.id())
            .collect();
        assert_eq!(left, [orders[3].id()]);
    }
}

/// §4 Download: download cost grows with what changed: a sync after one change brings that
/// change, not the data.
#[tokio::test]
async fn a_full_sync_brings_only_what_changed_since_the_last() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        for n in 0..20 {
            site(&other, &format!("Site {n:02}"));
        }
        other.engine.sync(SyncMode::All).await.unwrap();
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.downloaded.get("Field.Site"), Some(&20));
        site(&other, "One more");
        other.engine.sync(SyncMode::All).await.unwrap();
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.downloaded.get("Field.Site"), Some(&1), "{report:?}");
        assert_eq!(report.downloaded.values().sum::<usize>(), 1, "{report:?}");
        assert_eq!(names(&planner, "Field.Site").len(), 21);
    }
}

/// §4 Conflicts: an entity that checks revisions rejects a change based on an outdated revision
/// into `SynchronizationError`; the device returns to the server's state.
#[tokio::test]
async fn a_change_based_on_an_outdated_revision_is_rejected_where_revisions_are_checked() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let first = world.device("ada", &["Admin"]).await;
        let second = world.device("abe", &["Admin"]).await;
        let db = &first.database;
        let mut visit = db.create("Field.Visit").unwrap();
        db.set(&mut visit, "StartedAt", Value::DateTime("2026-11-23T08:00:00Z".parse_ts()))
            .unwrap();
        db.commit(&mut [&mut visit]).unwrap();
        first.engine.sync(SyncMode::All).await.unwrap();
        second.engine.sync(SyncMode::All).await.unwrap();

        db.set(&mut visit, "Summary", text("first")).unwrap();
        db.commit(&mut [&mut visit]).unwrap();
        first.engine.sync(SyncMode::All).await.unwrap();
        let mut stale = second.database.get("Field.Visit", visit.id()).unwrap().unwrap();
        second.database.set(&mut stale, "Summary", text("second")).unwrap();
        second.database.commit(&mut [&mut stale]).unwrap();
        let report = second.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.rejected.len(), 1, "{report:?}");
        assert!(report.rejected[0].2.contains("revision"), "{report:?}");
        let fresh = second.database.get("Field.Visit", visit.id()).unwrap().unwrap();
        assert_eq!(second.database.get_value(&fresh, "Summary").unwrap(), &text("first"));
    }
}

trait ParseTimestamp {
    fn parse_ts(&self) -> ferry_model::Timestamp;
}

impl ParseTimestamp for str {
    fn parse_ts(&self) -> ferry_model::Timestamp {
        ferry_model::Timestamp::parse(self).unwrap()
    }
}

/// §4: every sync leaves a `SynchronizationHistory` record on the server: user, device, mode,
/// duration, objects up and down, errors.
#[tokio::test]
async fn every_sync_leaves_a_history_record() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        site(&other, "Theirs");
        other.engine.sync(SyncMode::Unsynchronized).await.unwrap();
        let mine = site(&planner, "Mine");
        planner.engine.sync(SyncMode::selected(&[&mine])).await.unwrap();
        planner.engine.sync(SyncMode::All).await.unwrap();
        let history = world.server.history().await.unwrap();
        let syncs: Vec<(&str, &str, i64, i64, i64)> = history
            .iter()
            .filter(|entry| entry.mode != "upload")
            .map(|e| (e.user.as_str(), e.mode.as_str(), e.objects_up, e.objects_down, e.errors))
            .rev()
            .collect();
        assert_eq!(
            syncs,
            [
                ("pam", "unsynchronized", 1, 0, 0),
                ("pat", "selected", 1, 1, 0),
                // The device holds "Mine" in its server revision: only "Theirs" comes down.
                ("pat", "all", 0, 1, 0)
            ]
        );
        let selected = history.iter().find(|e| e.mode == "selected").unwrap();
        let upload = history.iter().find(|e| e.mode == "upload" && e.user == "pat").unwrap();
        assert_eq!(selected.upload_id, upload.upload_id, "the sync names its upload");
        assert_eq!(selected.device, upload.device);
        assert!(!selected.device.is_empty());
    }
}

/// A yard: orders at sites (a site cannot be deleted while orders refer to it), visits of
/// orders (deleted with their order), and notes on visits (their reference cleared).
const YARD: &str = r#"
[roles.Planner]

[entities."Yard.Site"]
attributes.Name = { type = "string", max_length = 100 }
access = [{ role = "Planner", create = true, delete = true, read = ["*"], write = ["*"] }]

[entities."Yard.Order"]
attributes.Name = { type = "string", max_length = 100 }
associations.Order_Site = { target = "Yard.Site", on_delete = "refuse" }
access = [{ role = "Planner", create = true, delete = true, read = ["*"], write = ["*"] }]

[entities."Yard.Visit"]
attributes.Name = { type = "string", max_length = 100 }
associations.Visit_Order = { target = "Yard.Order", on_delete = "delete" }
access = [{ role = "Planner", create = true, delete = true, read = ["*"], write = ["*"] }]

[entities."Yard.Note"]
attributes.Name = { type = "string", max_length = 100 }
associations.Note_Visit = { target = "Yard.Visit" }
access = [{ role = "Planner", create = true, delete = true, read = ["*"], write = ["*"] }]
"#;

/// A committed object named `name` of `entity`, referring through `association` to `target`.
fn yard_object(
    device: &Device,
    entity: &str,
    name: &str,
    reference: Option<(&str, &ferry_client::Object)>,
) -> ferry_client::Object {
    let db = &device.database;
    let mut object = db.create(entity).unwrap();
    db.set(&mut object, "Name", text(name)).unwrap();
    if let Some((association, target)) = reference {
        db.set(&mut object, association, Value::Reference(target.id())).unwrap();
    }
    db.commit(&mut [&mut object]).unwrap();
    object
}

/// §6: each association says what deleting its target does (clear the reference, delete the
/// referring objects too, or refuse while they exist); the device enforces it at delete and the
/// server at upload, so both end with the same objects.
#[tokio::test]
async fn deleting_an_object_follows_the_delete_behaviour_of_its_associations() {
    for backend in backends() {
        let world = TestWorld::start(backend, YARD).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        let db = &planner.database;
        let mut site = yard_object(&planner, "Yard.Site", "North", None);
        let mut order = yard_object(&planner, "Yard.Order", "O1", Some(("Order_Site", &site)));
        let visit = yard_object(&planner, "Yard.Visit", "V1", Some(("Visit_Order", &order)));
        let note = yard_object(&planner, "Yard.Note", "N1", Some(("Note_Visit", &visit)));
        planner.engine.sync(SyncMode::All).await.unwrap();
        other.engine.sync(SyncMode::All).await.unwrap();

        // Refused on the device while an order refers to the site: nothing changes.
        let refused = db.delete(&mut site).unwrap_err();
        assert_eq!(
            refused.to_string(),
            format!(
                "`Yard.Site` {} cannot be deleted: 1 `Yard.Order` objects refer to it through `Yard.Order_Site`, which refuses its deletion while any does",
                site.id()
            )
        );
        assert_eq!(names(&planner, "Yard.Site"), ["North"]);
        assert_eq!(db.pending_changes().unwrap(), 0);

        // Deleting the order takes its visit with it and clears the note's reference.
        assert_eq!(db.delete(&mut order).unwrap(), Deletion::Recorded);
        assert!(names(&planner, "Yard.Visit").is_empty());
        let kept = db.get("Yard.Note", note.id()).unwrap().unwrap();
        assert_eq!(db.get_value(&kept, "Note_Visit").unwrap(), &Value::Empty);
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert!(report.rejected.is_empty(), "{report:?}");
        // The server did the same: the other device sees the visit gone and the note cleared.
        other.engine.sync(SyncMode::All).await.unwrap();
        assert!(names(&other, "Yard.Order").is_empty() && names(&other, "Yard.Visit").is_empty());
        let seen = other.database.get("Yard.Note", note.id()).unwrap().unwrap();
        assert_eq!(other.database.get_value(&seen, "Note_Visit").unwrap(), &Value::Empty);

        // The server refuses what the device could not see: another device's new order at
        // the site. The deletion is rejected into SynchronizationError and the site comes back.
        yard_object(&other, "Yard.Order", "O2", Some(("Order_Site", &site)));
        other.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(db.delete(&mut site).unwrap(), Deletion::Recorded, "no order here refers to it");
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.rejected.len(), 1, "{report:?}");
        assert!(report.rejected[0].2.contains("refuses its deletion"), "{report:?}");
        assert_eq!(names(&planner, "Yard.Site"), ["North"], "back to the server's state");
        assert_eq!(names(&planner, "Yard.Order"), ["O2"]);
        let failures = world.server.failures().await.unwrap();
        assert_eq!(failures.len(), 1);
    }
}

/// A waiting change that refers to an object the device no longer holds (cleared here, or
/// deleted on the server and removed by a download) points at an object the server knew: the
/// sync goes on and the server decides, where it once stopped every sync before sending.
#[tokio::test]
async fn a_waiting_reference_to_a_cleared_or_server_deleted_object_does_not_stop_syncs() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        let order = |device: &Device, number: i64, site: &ferry_client::Object| {
            let db = &device.database;
            let mut order = db.create("Field.WorkOrder").unwrap();
            db.set(&mut order, "Number", Value::Integer(number)).unwrap();
            db.set(&mut order, "Title", text("at the site")).unwrap();
            db.set(&mut order, "WorkOrder_Site", Value::Reference(site.id())).unwrap();
            db.commit(&mut [&mut order]).unwrap();
            order
        };
        let depot = site(&planner, "Depot");
        planner.engine.sync(SyncMode::All).await.unwrap();
        // Cleared here while an order waits: the order goes up and the site comes back.
        order(&planner, 1, &depot);
        planner.database.clear("Field.Site", ClearMode::KeepChanges).unwrap();
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!((report.uploaded, report.rejected.len()), (1, 0), "{report:?}");
        assert_eq!(names(&planner, "Field.Site"), ["Depot"]);

        // Deleted on the server while the app holds an order at it, committed only after a
        // download removed the site: the order goes up, and the server skips it into
        // SynchronizationError as a dangling reference (nothing lost, nothing stuck).
        other.engine.sync(SyncMode::All).await.unwrap();
        let db = &planner.database;
        let mut pending = db.create("Field.WorkOrder").unwrap();
        db.set(&mut pending, "Number", Value::Integer(2)).unwrap();
        db.set(&mut pending, "Title", text("at a site that goes")).unwrap();
        db.set(&mut pending, "WorkOrder_Site", Value::Reference(depot.id())).unwrap();
        let mut theirs = other.database.get("Field.Site", depot.id()).unwrap().unwrap();
        other.database.delete(&mut theirs).unwrap();
        other.engine.sync(SyncMode::All).await.unwrap();
        planner.engine.sync(SyncMode::All).await.unwrap();
        assert!(names(&planner, "Field.Site").is_empty(), "the download removed the site");
        db.commit(&mut [&mut pending]).unwrap();
        let report = planner.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.rejected.len(), 1, "{report:?}");
        assert!(report.rejected[0].2.contains("Field.WorkOrder_Site"), "{report:?}");
        assert_eq!(db.pending_changes().unwrap(), 0);
        let failures = world.server.failures().await.unwrap();
        assert!(failures.iter().any(|f| f.object_id == pending.id().to_string()), "kept");
    }
}
