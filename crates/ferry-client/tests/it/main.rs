//! The device SDK's local half: object lifecycle, dirty tracking, queries, reopening and
//! migrating the device database.

#![allow(clippy::unwrap_used, reason = "test helpers fail the test on any error")]

mod encryption;
mod transport;

use ferry_client::{ClearMode, ClientError, Database, Deletion, Order, Query};
use ferry_model::{Decimal, Value, samples};

pub(crate) fn fresh(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-client-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("device.db")
}

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

#[test]
fn uncommitted_changes_live_in_the_object_only() {
    let path = fresh("uncommitted");
    let db = Database::open(&path, samples::FIELD_SERVICE).unwrap();
    let mut site = db.create("Field.Site").unwrap();
    db.set(&mut site, "Name", text("Depot")).unwrap();
    assert!(db.get("Field.Site", site.id()).unwrap().is_none());
    db.commit(&mut [&mut site]).unwrap();
    db.set(&mut site, "Name", text("Renamed")).unwrap();
    assert!(site.is_changed());
    let stored = db.get("Field.Site", site.id()).unwrap().unwrap();
    assert_eq!(db.get_value(&stored, "Name").unwrap(), &text("Depot"));
    drop(db);
    // Reopened: what was committed is there, what was not is not.
    let db = Database::open(&path, samples::FIELD_SERVICE).unwrap();
    let stored = db.get("Field.Site", site.id()).unwrap().unwrap();
    assert_eq!(db.get_value(&stored, "Name").unwrap(), &text("Depot"));
    assert_eq!(db.pending_changes().unwrap(), 1);
}

#[test]
fn defaults_apply_and_types_are_checked() {
    let db = Database::open(fresh("types"), samples::FIELD_SERVICE).unwrap();
    let mut order = db.create("Field.WorkOrder").unwrap();
    assert_eq!(db.get_value(&order, "Priority").unwrap(), &Value::Integer(3));
    assert_eq!(
        db.get_value(&order, "Amount").unwrap(),
        &Value::Decimal(Decimal::parse("0", 2).unwrap())
    );
    let errors = [
        db.set(&mut order, "Priority", text("high")).unwrap_err(),
        db.set(&mut order, "Status", text("Lost")).unwrap_err(),
        db.set(&mut order, "Amount", Value::Decimal(Decimal::parse("1.234", 3).unwrap()))
            .unwrap_err(),
        db.set(&mut order, "Field.WorkOrder_Site", text("x")).unwrap_err(),
        db.set(&mut order, "Colour", text("red")).unwrap_err(),
        db.create("Field.Nope").unwrap_err(),
    ];
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        messages,
        [
            "`Field.WorkOrder.Priority` takes values of type integer",
            "`Field.WorkOrder.Status` takes values of type enumeration",
            "`Field.WorkOrder.Amount` takes values of type decimal",
            "`Field.WorkOrder.Field.WorkOrder_Site` takes values of type reference",
            "`Field.WorkOrder` has no member `Colour`",
            "unknown entity `Field.Nope`",
        ]
    );
    // A decimal with fewer fractional digits takes the attribute's scale.
    db.set(&mut order, "Amount", Value::Decimal(Decimal::parse("12.5", 1).unwrap())).unwrap();
    assert_eq!(db.get_value(&order, "Amount").unwrap().to_string(), "12.50");
}

#[test]
fn commit_of_many_is_all_or_nothing() {
    let db = Database::open(fresh("atomic"), samples::FIELD_SERVICE).unwrap();
    let mut first = db.create("Field.Site").unwrap();
    db.set(&mut first, "Name", text("first")).unwrap();
    let mut second = db.create("Field.Site").unwrap();
    db.set(&mut second, "Name", text("x")).unwrap();
    assert_eq!(db.delete(&mut second).unwrap(), Deletion::Discarded);
    let error = db.commit(&mut [&mut first, &mut second]).unwrap_err();
    assert!(matches!(error, ClientError::Deleted { .. }), "{error}");
    assert!(
        db.get("Field.Site", first.id()).unwrap().is_none(),
        "nothing of a failed commit is written"
    );
    assert!(!first.is_committed());
}

#[test]
fn rollback_returns_to_the_committed_state() {
    let db = Database::open(fresh("rollback"), samples::FIELD_SERVICE).unwrap();
    let mut site = db.create("Field.Site").unwrap();
    db.set(&mut site, "Name", text("Depot")).unwrap();
    db.rollback(&mut site).unwrap();
    assert_eq!(
        db.get_value(&site, "Name").unwrap(),
        &Value::Empty,
        "a new object rolls back to its defaults"
    );
    db.set(&mut site, "Name", text("Depot")).unwrap();
    db.commit(&mut [&mut site]).unwrap();
    db.set(&mut site, "Name", text("Other")).unwrap();
    db.rollback(&mut site).unwrap();
    assert_eq!(db.get_value(&site, "Name").unwrap(), &text("Depot"));
    assert!(!site.is_changed());
}

#[test]
fn clear_refuses_unsynced_changes_unless_forced() {
    let db = Database::open(fresh("clear"), samples::FIELD_SERVICE).unwrap();
    let mut site = db.create("Field.Site").unwrap();
    db.set(&mut site, "Name", text("Depot")).unwrap();
    db.commit(&mut [&mut site]).unwrap();
    let error = db.clear("Field.Site", ClearMode::KeepChanges).unwrap_err();
    assert_eq!(
        error.to_string(),
        "`Field.Site` has 1 objects with unsynchronised changes; sync first, or clear with ClearMode::DiscardChanges"
    );
    assert!(db.get("Field.Site", site.id()).unwrap().is_some());
    assert_eq!(db.clear("Field.Site", ClearMode::DiscardChanges).unwrap(), 1);
    assert!(db.get("Field.Site", site.id()).unwrap().is_none());
    assert_eq!(db.pending_changes().unwrap(), 0);
}

#[test]
fn queries_filter_sort_and_page() {
    let db = Database::open(fresh("query"), samples::FIELD_SERVICE).unwrap();
    for (n, title) in [(1, "b"), (2, "a"), (3, "c"), (4, "a")] {
        let mut order = db.create("Field.WorkOrder").unwrap();
        db.set(&mut order, "Number", Value::Integer(n)).unwrap();
        db.set(&mut order, "Title", text(title)).unwrap();
        db.commit(&mut [&mut order]).unwrap();
    }
    let numbers = |query: Query| -> Vec<i64> {
        db.query(&query)
            .unwrap()
            .iter()
            .map(|o| match db.get_value(o, "Number").unwrap() {
                Value::Integer(n) => *n,
                other => panic!("{other}"),
            })
            .collect()
    };
    let by_title = || {
        Query::new("Field.WorkOrder")
            .sort("Title", Order::Ascending)
            .sort("Number", Order::Descending)
    };
    assert_eq!(numbers(by_title()), [4, 2, 1, 3]);
    assert_eq!(numbers(by_title().offset(1).limit(2)), [2, 1]);
    assert_eq!(
        numbers(
            Query::new("Field.WorkOrder")
                .filter("[Title = 'a' or Number > 2]")
                .sort("Number", Order::Ascending)
        ),
        [2, 3, 4]
    );
    let error = db.query(&Query::new("Field.WorkOrder").filter("[Titel = 'a']")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "constraint `[Titel = 'a']`: unknown attribute or association `Titel` on entity `Field.WorkOrder` at 1..6"
    );
}

#[test]
fn deleting_records_only_what_the_server_must_learn() {
    let path = fresh("delete");
    let db = Database::open(&path, samples::FIELD_SERVICE).unwrap();
    let mut local = db.create("Field.Site").unwrap();
    db.set(&mut local, "Name", text("local")).unwrap();
    db.commit(&mut [&mut local]).unwrap();
    assert_eq!(db.delete(&mut local).unwrap(), Deletion::Removed);
    assert_eq!(db.pending_changes().unwrap(), 0);
    // An object the server knows: downloaded objects have no dirty record. Until the sync
    // engine downloads, simulate one by committing and forgetting its creation record.
    let mut known = db.create("Field.Site").unwrap();
    db.set(&mut known, "Name", text("known")).unwrap();
    db.commit(&mut [&mut known]).unwrap();
    let raw = rusqlite_forget_dirty(&path);
    assert_eq!(raw, 1);
    assert_eq!(db.delete(&mut known).unwrap(), Deletion::Recorded);
    assert_eq!(db.pending_changes().unwrap(), 1);
}

fn rusqlite_forget_dirty(path: &std::path::Path) -> usize {
    let connection = rusqlite::Connection::open(path).unwrap();
    connection.execute("DELETE FROM ferry_dirty", []).unwrap()
}

#[test]
fn an_additive_model_change_keeps_unsynced_changes() {
    let path = fresh("migrate");
    let db = Database::open(&path, samples::FIELD_SERVICE).unwrap();
    let mut site = db.create("Field.Site").unwrap();
    db.set(&mut site, "Name", text("Depot")).unwrap();
    db.commit(&mut [&mut site]).unwrap();
    drop(db);
    let newer = samples::FIELD_SERVICE.replace(
        "attributes.Address = { type = \"string\", max_length = 400 }",
        "attributes.Address = { type = \"string\", max_length = 400 }\nattributes.Gate = { type = \"string\", default = \"north\" }",
    );
    let db = Database::open(&path, &newer).unwrap();
    let stored = db.get("Field.Site", site.id()).unwrap().unwrap();
    assert_eq!(
        (db.get_value(&stored, "Name").unwrap(), db.get_value(&stored, "Gate").unwrap()),
        (&text("Depot"), &text("north"))
    );
    assert_eq!(db.pending_changes().unwrap(), 1);
    drop(db);
    let breaking =
        newer.replace("attributes.Address = { type = \"string\", max_length = 400 }\n", "");
    let Err(error) = Database::open(&path, &breaking) else {
        panic!("a breaking model must be refused")
    };
    assert!(error.to_string().contains("attribute `Field.Site.Address` was removed"), "{error}");
}

/// The model's validation rules hold at commit, with the server's messages, and a broken rule
/// writes nothing of the commit; the server stays the authority (and checks `unique` itself).
#[test]
fn validation_rules_are_checked_at_commit_with_the_servers_messages() {
    let db = Database::open(fresh("validation"), samples::FIELD_SERVICE).unwrap();
    let mut site = db.create("Field.Site").unwrap();
    db.set(&mut site, "Name", text("Depot")).unwrap();
    let mut order = db.create("Field.WorkOrder").unwrap();
    db.set(&mut order, "Number", Value::Integer(1)).unwrap();
    db.set(&mut order, "Priority", Value::Integer(9)).unwrap();
    let error = db.commit(&mut [&mut site, &mut order]).unwrap_err();
    let expected = "cannot be committed: validation: `Priority` is 9, above its maximum 5";
    assert_eq!(error.to_string(), format!("`Field.WorkOrder` {} {expected}", order.id()));
    assert_eq!(db.pending_changes().unwrap(), 0, "nothing of the commit was written");
    db.set(&mut order, "Priority", Value::Integer(5)).unwrap();
    let error = db.commit(&mut [&mut order]).unwrap_err();
    assert!(matches!(error, ClientError::Validation { .. }), "{error}");
    assert!(error.to_string().ends_with("validation: `Title` is required"), "{error}");
    db.set(&mut order, "Title", text("Pump")).unwrap();
    db.commit(&mut [&mut site, &mut order]).unwrap();
    // A change to a committed object is checked on what it changes.
    db.set(&mut order, "Title", text(&"x".repeat(201))).unwrap();
    let error = db.commit(&mut [&mut order]).unwrap_err();
    let expected = "is longer than its max length of 200 characters";
    assert!(error.to_string().ends_with(expected), "{error}");
    db.rollback(&mut order).unwrap();
    db.set(&mut order, "Notes", text("fine")).unwrap();
    db.commit(&mut [&mut order]).unwrap();
    assert_eq!(db.pending_changes().unwrap(), 2);
}
