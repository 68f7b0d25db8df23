//! Server actions and synchronize to device (DESIGN.md §4), one test per rule, on both server
//! backends over real HTTP. The actions are registered in Rust, as an app embedding the server
//! does.

use ferry_client::{Query, SyncError, SyncMode};
use ferry_model::{ObjectId, Value, samples};
use ferry_server::{ActionCall, Handlers, Limits};
use ferry_sim::{Device, TestWorld, backends};
use serde_json::{Map, Value as Json, json};

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn id_parameter(call: &ActionCall) -> Result<ObjectId, String> {
    let id = call.parameter("id").and_then(Json::as_str).ok_or("an `id` parameter")?;
    ObjectId::parse(id).ok_or_else(|| format!("`{id}` is not an id"))
}

/// The actions of these tests.
fn handlers() -> Handlers {
    Handlers::default()
        .action("double", |call| async move {
            let n = call.parameter("n").and_then(Json::as_i64).ok_or("an integer `n`")?;
            Ok(json!({ "doubled": n * 2 }))
        })
        .action("leak", |call| async move {
            let site = call.query("Field.Site", "[Name != empty]").await?.remove(0);
            Ok(json!({ "entity": site.entity(), "id": site.id().to_string() }))
        })
        .action("push_named", |call| async move {
            let name = call.parameter("name").and_then(Json::as_str).ok_or("a `name`")?;
            let sites = call.query("Field.Site", &format!("[Name = '{name}']")).await?;
            for site in &sites {
                call.sync_to_device(site)?;
            }
            Ok(json!(sites.len()))
        })
        .action("rename_twice", |call| async move {
            let id = id_parameter(&call)?;
            let mut site = call.get("Field.Site", id).await?.ok_or("no such site")?;
            call.set(&mut site, "Name", text("first"))?;
            call.commit(&site);
            call.sync_to_device(&site)?;
            call.set(&mut site, "Name", text("second"))?;
            call.commit(&site);
            call.sync_to_device(&site)?;
            Ok(Json::Null)
        })
        .action("delete_and_push", |call| async move {
            let site = call.get("Field.Site", id_parameter(&call)?).await?.ok_or("no such site")?;
            call.delete(&site);
            call.sync_to_device(&site)?;
            Ok(Json::Null)
        })
        .action("push_unsaved", |call| async move {
            let mut kept = call.create("Field.Site")?;
            call.set(&mut kept, "Name", text("saved"))?;
            call.commit(&kept);
            call.sync_to_device(&kept)?;
            let mut draft = call.create("Field.Site")?;
            call.set(&mut draft, "Name", text("never saved"))?;
            call.sync_to_device(&draft)?;
            Ok(Json::Null)
        })
        .action("push_every_order", |call| async move {
            for order in call.query("Field.WorkOrder", "[Number > 0]").await? {
                call.sync_to_device(&order)?;
            }
            Ok(Json::Null)
        })
        .action("push_photo", |call| async move {
            let photo = call.create("Field.Photo")?;
            call.sync_to_device(&photo)?;
            Ok(Json::Null)
        })
        .action("write_then_fail", |call| async move {
            let mut site = call.create("Field.Site")?;
            call.set(&mut site, "Name", text("half done"))?;
            call.commit(&site);
            Err("stopped on purpose".to_owned())
        })
}

async fn world(backend: ferry_sim::Backend) -> TestWorld {
    TestWorld::start_with_handlers(backend, samples::FIELD_SERVICE, Limits::default(), handlers)
        .await
}

fn parameters(json: Json) -> Map<String, Json> {
    json.as_object().cloned().unwrap_or_default()
}

async fn site(device: &Device, name: &str) -> ObjectId {
    let db = &device.database;
    let mut site = db.create("Field.Site").unwrap();
    db.set(&mut site, "Name", text(name)).unwrap();
    db.commit(&mut [&mut site]).unwrap();
    device.engine.sync(SyncMode::All).await.unwrap();
    site.id()
}

fn name_on(device: &Device, id: ObjectId) -> Option<Value> {
    let object = device.database.get("Field.Site", id).unwrap()?;
    Some(device.database.get_value(&object, "Name").unwrap().clone())
}

#[tokio::test]
async fn an_action_takes_plain_parameters_and_answers_a_plain_result() {
    for backend in backends() {
        let world = world(backend).await;
        let device = world.device("pat", &["Planner"]).await;
        let outcome = device.engine.call_action("double", parameters(json!({ "n": 21 }))).await;
        assert_eq!(outcome.unwrap().result, json!({ "doubled": 42 }));
        let error = device.engine.call_action("nope", Map::new()).await.unwrap_err();
        assert!(error.to_string().contains("no action `nope`"), "{error}");
        let error = device.engine.call_action("double", Map::new()).await.unwrap_err();
        assert!(error.to_string().contains("an integer `n`"), "{error}");
    }
}

#[tokio::test]
async fn persistable_objects_are_refused_as_parameters_and_results() {
    for backend in backends() {
        let world = world(backend).await;
        let device = world.device("pat", &["Planner"]).await;
        let id = site(&device, "Depot").await;
        let object = json!({ "site": { "entity": "Field.Site", "id": id.to_string() } });
        let error = device.engine.call_action("double", parameters(object)).await.unwrap_err();
        assert!(
            error.to_string().contains("parameter `site` is a persistable object (`Field.Site`)"),
            "{error}"
        );
        let error = device.engine.call_action("leak", Map::new()).await.unwrap_err();
        assert!(error.to_string().contains("returned a persistable object"), "{error}");
    }
}

#[tokio::test]
async fn synced_objects_are_added_to_the_device_or_overwrite_its_copies() {
    for backend in backends() {
        let world = world(backend).await;
        let planner = world.device("pat", &["Planner"]).await;
        let other = world.device("pam", &["Planner"]).await;
        let held = site(&other, "Yard").await;
        let new = site(&planner, "Yard").await;
        // The other device holds one of the two, and the server changed it since.
        let mut copy = planner.database.get("Field.Site", held).unwrap().unwrap();
        planner.database.set(&mut copy, "Address", text("Dock 4")).unwrap();
        planner.database.commit(&mut [&mut copy]).unwrap();
        planner.engine.sync(SyncMode::All).await.unwrap();

        let outcome = other.engine.call_action("push_named", parameters(json!({ "name": "Yard" })));
        let outcome = outcome.await.unwrap();
        assert_eq!((outcome.result, outcome.synced), (json!(2), 2));
        assert_eq!(name_on(&other, new), Some(text("Yard")), "appended");
        let copy = other.database.get("Field.Site", held).unwrap().unwrap();
        assert_eq!(
            other.database.get_value(&copy, "Address").unwrap(),
            &text("Dock 4"),
            "overwritten"
        );
    }
}

#[tokio::test]
async fn committed_local_changes_to_synced_objects_are_overwritten_and_no_longer_dirty() {
    for backend in backends() {
        let world = world(backend).await;
        let device = world.device("pat", &["Planner"]).await;
        let id = site(&device, "Depot").await;
        let mut local = device.database.get("Field.Site", id).unwrap().unwrap();
        device.database.set(&mut local, "Name", text("changed here")).unwrap();
        device.database.commit(&mut [&mut local]).unwrap();
        assert_eq!(device.database.pending_changes().unwrap(), 1);
        device
            .engine
            .call_action("push_named", parameters(json!({ "name": "Depot" })))
            .await
            .unwrap();
        assert_eq!(name_on(&device, id), Some(text("Depot")));
        assert_eq!(device.database.pending_changes().unwrap(), 0, "no longer dirty");
        let report = device.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(report.uploaded, 0, "nothing left to send");
    }
}

#[tokio::test]
async fn objects_deleted_in_the_action_or_no_longer_readable_are_removed_from_the_device() {
    for backend in backends() {
        let world = world(backend).await;
        let planner = world.device("pat", &["Planner"]).await;
        let alice = world.device("alice", &["Technician"]).await;
        let bob = world.device("bob", &["Technician"]).await;
        let id = site(&planner, "Depot").await;
        let outcome = planner
            .engine
            .call_action("delete_and_push", parameters(json!({ "id": id.to_string() })))
            .await
            .unwrap();
        assert_eq!((outcome.synced, outcome.removed), (0, 1));
        assert_eq!(name_on(&planner, id), None, "deleted in the action");
        let other = world.device("pam", &["Planner"]).await;
        other.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(name_on(&other, id), None, "deleted on the server too");

        // Two work orders, one for each technician; alice holds hers, and a copy of bob's that
        // she may no longer read (it was reassigned).
        let db = &planner.database;
        let mut orders = Vec::new();
        for (n, technician) in [(1, alice.user), (2, bob.user)] {
            let mut order = db.create("Field.WorkOrder").unwrap();
            db.set(&mut order, "Number", Value::Integer(n)).unwrap();
            db.set(&mut order, "Title", text("Pump")).unwrap();
            db.set(&mut order, "WorkOrder_AssignedTo", Value::Reference(alice.user)).unwrap();
            db.commit(&mut [&mut order]).unwrap();
            planner.engine.sync(SyncMode::All).await.unwrap();
            alice.engine.sync(SyncMode::All).await.unwrap();
            db.set(&mut order, "WorkOrder_AssignedTo", Value::Reference(technician)).unwrap();
            db.commit(&mut [&mut order]).unwrap();
            planner.engine.sync(SyncMode::All).await.unwrap();
            orders.push(order.id());
        }
        let outcome = alice.engine.call_action("push_every_order", Map::new()).await.unwrap();
        assert_eq!((outcome.synced, outcome.removed), (1, 1), "{outcome:?}");
        let held = alice.database.query(&Query::new("Field.WorkOrder")).unwrap();
        assert_eq!(held.iter().map(|o| o.id()).collect::<Vec<_>>(), [orders[0]]);
    }
}

#[tokio::test]
async fn new_unsaved_objects_are_skipped() {
    for backend in backends() {
        let world = world(backend).await;
        let device = world.device("pat", &["Planner"]).await;
        let outcome = device.engine.call_action("push_unsaved", Map::new()).await.unwrap();
        assert_eq!((outcome.synced, outcome.removed, outcome.skipped), (1, 0, 1));
        let sites = device.database.query(&Query::new("Field.Site")).unwrap();
        assert_eq!(sites.len(), 1);
        assert_eq!(device.database.get_value(&sites[0], "Name").unwrap(), &text("saved"));
    }
}

#[tokio::test]
async fn each_object_is_sent_once_in_its_latest_committed_state() {
    for backend in backends() {
        let world = world(backend).await;
        let device = world.device("pat", &["Planner"]).await;
        let id = site(&device, "Depot").await;
        let outcome = device
            .engine
            .call_action("rename_twice", parameters(json!({ "id": id.to_string() })))
            .await
            .unwrap();
        assert_eq!(outcome.synced, 1, "asked twice, sent once");
        assert_eq!(name_on(&device, id), Some(text("second")));
        let other = world.device("pam", &["Planner"]).await;
        other.engine.sync(SyncMode::All).await.unwrap();
        assert_eq!(name_on(&other, id), Some(text("second")), "committed on the server");
    }
}

#[tokio::test]
async fn file_entities_cannot_be_synchronized_to_the_device() {
    for backend in backends() {
        let world = world(backend).await;
        let device = world.device("alice", &["Technician"]).await;
        let error = device.engine.call_action("push_photo", Map::new()).await.unwrap_err();
        assert!(
            matches!(&error, SyncError::Server { status: 422, .. })
                && error.to_string().contains("`Field.Photo` is a file entity"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_failing_action_applies_nothing() {
    for backend in backends() {
        let world = world(backend).await;
        let device = world.device("pat", &["Planner"]).await;
        let error = device.engine.call_action("write_then_fail", Map::new()).await.unwrap_err();
        assert!(error.to_string().contains("stopped on purpose"), "{error}");
        device.engine.sync(SyncMode::All).await.unwrap();
        assert!(device.database.query(&Query::new("Field.Site")).unwrap().is_empty());
    }
}

/// A declared action of the model file, run by the standalone server without app code: the
/// objects its constraint matches for the caller and parameters, with those they reference
/// through the followed associations.
#[tokio::test]
async fn a_declared_action_pushes_what_its_constraint_matches_and_what_it_follows() {
    for backend in backends() {
        let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
        let planner = world.device("pat", &["Planner"]).await;
        let alice = world.device("alice", &["Technician"]).await;
        let bob = world.device("bob", &["Technician"]).await;
        let depot = site(&planner, "Depot").await;
        let db = &planner.database;
        let mut orders = Vec::new();
        for (n, technician, status) in
            [(1, alice.user, "Closed"), (2, alice.user, "Open"), (3, bob.user, "Closed")]
        {
            let mut order = db.create("Field.WorkOrder").unwrap();
            db.set(&mut order, "Number", Value::Integer(n)).unwrap();
            db.set(&mut order, "Title", text("Pump")).unwrap();
            db.set(&mut order, "Status", Value::Enumeration(status.to_owned())).unwrap();
            db.set(&mut order, "WorkOrder_Site", Value::Reference(depot)).unwrap();
            db.set(&mut order, "WorkOrder_AssignedTo", Value::Reference(technician)).unwrap();
            db.commit(&mut [&mut order]).unwrap();
            orders.push(order.id());
        }
        planner.engine.sync(SyncMode::All).await.unwrap();
        alice.engine.sync(SyncMode::All).await.unwrap();
        let held = |device: &Device| -> Vec<ObjectId> {
            let orders = device.database.query(&Query::new("Field.WorkOrder")).unwrap();
            orders.iter().map(|o| o.id()).collect()
        };
        assert_eq!(held(&alice), [orders[1]], "a full sync leaves closed work orders out");

        let closed = parameters(json!({ "Status": "Closed" }));
        let outcome = alice.engine.call_action("MyWorkOrdersIn", closed.clone()).await.unwrap();
        assert_eq!(outcome.result, json!({ "objects": 1 }), "hers only, not bob's");
        assert_eq!(outcome.synced, 2, "the work order and its site");
        let mut expected = vec![orders[0], orders[1]];
        expected.sort();
        let mut got = held(&alice);
        got.sort();
        assert_eq!(got, expected);

        let error = planner.engine.call_action("MyWorkOrdersIn", closed).await.unwrap_err();
        assert!(matches!(error, SyncError::Server { status: 403, .. }), "{error}");
        let wrong = parameters(json!({ "Status": 3 }));
        let error = alice.engine.call_action("MyWorkOrdersIn", wrong).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("parameter `Status` of the action `MyWorkOrdersIn` takes a string"),
            "{error}"
        );
        let unknown = parameters(json!({ "Priority": 3 }));
        let error = alice.engine.call_action("MyWorkOrdersIn", unknown).await.unwrap_err();
        assert!(
            error.to_string().contains("has no parameter `Priority` (declared: Status)"),
            "{error}"
        );
    }
}
