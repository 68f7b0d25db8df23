//! The generated schema on real databases: values read back exactly, and additive migrations
//! apply to a database holding the old model's objects.

use ferry_model::arbitrary::Arbitrary;
use ferry_model::{Model, Object, ObjectId, Timestamp, Value, samples};
use ferry_sql::{Dialect, Side, plan_migration};

use crate::backends::{Postgres, Sqlite};

fn objects(model: &Model, entity: &str, count: usize, seed: u64) -> Vec<Object> {
    let entity = model.entity(entity).unwrap();
    let mut arbitrary = Arbitrary::new(seed, Timestamp::parse("2026-11-23T10:30:00.5Z").unwrap());
    let target = ObjectId::from_u128(42);
    let mut objects: Vec<Object> = (0..count)
        .map(|_| {
            let id = arbitrary.object_id();
            arbitrary.object(entity, id, &mut |_| vec![target])
        })
        .collect();
    objects.sort_by_key(|o| o.id);
    objects
}

#[test]
fn values_read_back_exactly() {
    for model in [samples::field_service(), samples::sales()] {
        let mut sqlite = Sqlite::new(&model);
        let mut postgres = Postgres::new(&model);
        for (index, entity) in model.entities().enumerate() {
            let written = objects(&model, entity.name.as_str(), 200, index as u64);
            sqlite.insert(&model, entity.name.as_str(), &written);
            assert_eq!(
                sqlite.read_all(&model, entity.name.as_str()),
                written,
                "SQLite {}",
                entity.name
            );
            if let Some(postgres) = &mut postgres {
                postgres.insert(&model, entity.name.as_str(), &written);
                assert_eq!(
                    postgres.read_all(&model, entity.name.as_str()),
                    written,
                    "PostgreSQL {}",
                    entity.name
                );
            }
        }
    }
}

#[test]
fn additive_migration_applies_to_existing_objects() {
    let old = samples::field_service();
    let new_source = format!(
        "{}\n[entities.\"Field.Tool\"]\nattributes.Name = {{ type = \"string\" }}\nassociations.Tool_Site = {{ target = \"Field.Site\" }}\naccess = [{{ role = \"Admin\", read = [\"*\"] }}]\n",
        samples::FIELD_SERVICE
            .replace("attributes.Notes = { type = \"string\", max_length = 2000 }", "attributes.Notes = { type = \"string\", max_length = 4000 }\nattributes.Urgent = { type = \"boolean\", default = true }\nattributes.Cost = { type = \"decimal\", scale = 3, default = \"1.5\" }")
            .replace("associations.WorkOrder_AssignedTo", "associations.WorkOrder_Customer = { target = \"Field.Customer\" }\nassociations.WorkOrder_AssignedTo")
    );
    let new = Model::parse(&new_source).unwrap();
    let plan = plan_migration(&old, &new);
    assert!(!plan.is_breaking(), "{plan}");
    let before = objects(&old, "Field.WorkOrder", 20, 1);

    let mut sqlite = Sqlite::new(&old);
    sqlite.insert(&old, "Field.WorkOrder", &before);
    for statement in plan.statements(&new, Dialect::Sqlite, Side::Server) {
        sqlite.execute(&statement);
    }
    let mut postgres = Postgres::new(&old);
    if let Some(postgres) = &mut postgres {
        postgres.insert(&old, "Field.WorkOrder", &before);
        for statement in plan.statements(&new, Dialect::Postgres, Side::Server) {
            postgres.execute(&statement);
        }
    }

    // Existing objects keep their values and get the new attributes' defaults.
    let entity = new.entity("Field.WorkOrder").unwrap();
    let old_entity = old.entity("Field.WorkOrder").unwrap();
    let expected: Vec<Object> = before
        .iter()
        .map(|object| {
            let values = (0..entity.member_count())
                .map(|slot| {
                    let name = entity.member_name(ferry_model::Slot(slot));
                    match old_entity.member(name) {
                        Some(member) => object.values[old_entity.slot(member).0].clone(),
                        None => entity.default_values()[slot].clone(),
                    }
                })
                .collect();
            Object { id: object.id, values }
        })
        .collect();
    assert!(expected[0].values.contains(&Value::Boolean(true)));
    assert_eq!(sqlite.read_all(&new, "Field.WorkOrder"), expected);
    if let Some(postgres) = &postgres {
        assert_eq!(postgres.read_all(&new, "Field.WorkOrder"), expected);
    }

    // New objects go into the migrated tables with the new model's statements.
    let after = objects(&new, "Field.WorkOrder", 20, 2);
    sqlite.insert(&new, "Field.WorkOrder", &after);
    let tools = objects(&new, "Field.Tool", 5, 3);
    sqlite.insert(&new, "Field.Tool", &tools);
    assert_eq!(sqlite.read_all(&new, "Field.Tool"), tools);
    if let Some(postgres) = &mut postgres {
        postgres.insert(&new, "Field.WorkOrder", &after);
        postgres.insert(&new, "Field.Tool", &tools);
        assert_eq!(postgres.read_all(&new, "Field.Tool"), tools);
    }
}
