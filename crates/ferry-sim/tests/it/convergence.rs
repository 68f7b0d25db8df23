//! The randomised convergence test: devices of planners and technicians work offline, sync in
//! random modes and orders; after every round each device settles with full syncs and must
//! equal a brand-new device of the same user, and nothing committed may be lost.

use ferry_client::{Database, Query, SyncMode};
use ferry_model::arbitrary::SplitMix64;
use ferry_model::{ObjectId, Value, samples};
use ferry_sim::{Backend, Device, TestWorld, backends};

/// Rounds of offline work and syncs per seed.
const ROUNDS: usize = 4;
/// Changes each device makes offline per round.
const CHANGES_PER_ROUND: usize = 4;
const ENTITIES: [&str; 3] = ["Field.Site", "Field.WorkOrder", "Field.Visit"];

fn snapshot(database: &Database) -> Vec<(String, ObjectId, Vec<String>)> {
    ENTITIES
        .iter()
        .flat_map(|entity| {
            database.query(&Query::new(entity)).unwrap().into_iter().map(move |object| {
                let model = database.model();
                let entity_model = model.entity(entity).unwrap();
                let values = (0..entity_model.member_count())
                    .map(|slot| {
                        database
                            .get_value(&object, entity_model.member_name(ferry_model::Slot(slot)))
                            .unwrap()
                            .to_string()
                    })
                    .collect();
                ((*entity).to_owned(), object.id(), values)
            })
        })
        .collect()
}

/// One offline change by a device, drawn at random from what its role may sensibly do.
fn offline_change(
    device: &Device,
    planner: bool,
    technicians: &[ObjectId],
    rng: &mut SplitMix64,
    counter: &mut i64,
) {
    let db = &device.database;
    *counter += 1;
    let sites = db.query(&Query::new("Field.Site")).unwrap();
    let orders = db.query(&Query::new("Field.WorkOrder")).unwrap();
    match (planner, rng.below(4)) {
        (true, 0) => {
            let mut site = db.create("Field.Site").unwrap();
            db.set(&mut site, "Name", Value::String(format!("Site {counter}"))).unwrap();
            db.commit(&mut [&mut site]).unwrap();
        }
        (true, 1) => {
            let mut order = db.create("Field.WorkOrder").unwrap();
            db.set(&mut order, "Number", Value::Integer(*counter)).unwrap();
            db.set(&mut order, "Title", Value::String(format!("Order {counter}"))).unwrap();
            db.set(
                &mut order,
                "Field.WorkOrder_AssignedTo",
                Value::Reference(*rng.pick(technicians)),
            )
            .unwrap();
            if let Some(site) = sites.first() {
                db.set(&mut order, "Field.WorkOrder_Site", Value::Reference(site.id())).unwrap();
            }
            db.commit(&mut [&mut order]).unwrap();
        }
        (true, 2) if !orders.is_empty() => {
            let mut order = rng.pick(&orders).clone();
            db.set(&mut order, "Priority", Value::Integer(1 + rng.below(5) as i64)).unwrap();
            db.set(
                &mut order,
                "Field.WorkOrder_AssignedTo",
                Value::Reference(*rng.pick(technicians)),
            )
            .unwrap();
            db.commit(&mut [&mut order]).unwrap();
        }
        (true, 3) if !sites.is_empty() => {
            let mut site = rng.pick(&sites).clone();
            db.delete(&mut site).unwrap();
        }
        (false, 0 | 1) if !orders.is_empty() => {
            let mut order = rng.pick(&orders).clone();
            db.set(&mut order, "Notes", Value::String(format!("note {counter}"))).unwrap();
            db.set(&mut order, "Status", Value::Enumeration("InProgress".to_owned())).unwrap();
            db.commit(&mut [&mut order]).unwrap();
        }
        (false, 2) if !orders.is_empty() => {
            // Sometimes a change the rules refuse: technicians may not retitle orders.
            let mut order = rng.pick(&orders).clone();
            db.set(&mut order, "Title", Value::String(format!("retitled {counter}"))).unwrap();
            db.commit(&mut [&mut order]).unwrap();
        }
        (false, 3) if !orders.is_empty() => {
            let mut visit = db.create("Field.Visit").unwrap();
            db.set(
                &mut visit,
                "StartedAt",
                Value::DateTime(ferry_model::Timestamp::parse("2026-11-23T09:00:00Z").unwrap()),
            )
            .unwrap();
            db.set(&mut visit, "Field.Visit_WorkOrder", Value::Reference(rng.pick(&orders).id()))
                .unwrap();
            db.set(&mut visit, "Field.Visit_Technician", Value::Reference(device.user)).unwrap();
            db.commit(&mut [&mut visit]).unwrap();
        }
        _ => {}
    }
}

async fn run(backend: Backend, seed: u64) {
    let world = TestWorld::start(backend, samples::FIELD_SERVICE).await;
    let planners =
        [world.device("pat", &["Planner"]).await, world.device("pam", &["Planner"]).await];
    let technicians =
        [world.device("tess", &["Technician"]).await, world.device("tom", &["Technician"]).await];
    let technician_ids: Vec<ObjectId> = technicians.iter().map(|d| d.user).collect();
    let mut rng = SplitMix64::new(seed);
    let mut counter = seed as i64 * 1_000;
    for round in 0..ROUNDS {
        for _ in 0..CHANGES_PER_ROUND {
            for (index, device) in planners.iter().chain(&technicians).enumerate() {
                offline_change(
                    device,
                    index < planners.len(),
                    &technician_ids,
                    &mut rng,
                    &mut counter,
                );
            }
        }
        // Syncs in random modes and order.
        let mut order: Vec<&Device> = planners.iter().chain(&technicians).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for device in &order {
            let mode = if rng.chance(1, 3) { SyncMode::Unsynchronized } else { SyncMode::All };
            device
                .engine
                .sync(mode)
                .await
                .unwrap_or_else(|e| panic!("seed {seed:#x} round {round}: {e}"));
        }
        // Quiet: everyone syncs fully twice, so all changes have reached everyone.
        for _ in 0..2 {
            for device in planners.iter().chain(&technicians) {
                device
                    .engine
                    .sync(SyncMode::All)
                    .await
                    .unwrap_or_else(|e| panic!("seed {seed:#x} round {round}: {e}"));
            }
        }
        for (index, device) in planners.iter().chain(&technicians).enumerate() {
            assert_eq!(
                device.database.pending_changes().unwrap(),
                0,
                "seed {seed:#x} round {round}: changes left behind"
            );
            let user = ["pat", "pam", "tess", "tom"][index];
            let fresh = world.another_device(user, &format!("{user}-fresh-{round}")).await;
            fresh.engine.sync(SyncMode::All).await.unwrap();
            assert_eq!(
                snapshot(&device.database),
                snapshot(&fresh.database),
                "seed {seed:#x} round {round}: {user}'s device differs from a new device of {user}"
            );
        }
    }
}

#[tokio::test]
async fn devices_converge_to_what_a_new_device_would_hold() {
    for backend in backends() {
        for seed in [1, 2, 3] {
            run(backend, seed).await;
        }
    }
}
