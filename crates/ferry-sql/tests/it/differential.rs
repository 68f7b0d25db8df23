//! The differential test: seeded random objects and random constraints over the sample models;
//! memory, SQLite and PostgreSQL must select exactly the same objects for every constraint.
//! A mismatch prints the seed and the constraint, and `FERRY_DIFF_SEED=<seed>` replays it.

use std::collections::BTreeSet;

use ferry_constraint::arbitrary::ConstraintGenerator;
use ferry_constraint::{Context, Graph, MemoryGraph};
use ferry_model::arbitrary::{Arbitrary, SplitMix64};
use ferry_model::{Model, ObjectId, Timestamp, samples};
use ferry_sql::{Dialect, compile_where};

use crate::backends::{Postgres, Sqlite};

/// Objects per entity in each seeded data set.
const OBJECTS_PER_ENTITY: usize = 30;
/// Random constraints per entity and seed.
const CONSTRAINTS_PER_ENTITY: usize = 100;
/// Seeds per sample model in one run.
const SEEDS: u64 = 4;

/// The objects of one data set, reachable as a graph for in-memory evaluation.
type Dataset = MemoryGraph;

fn dataset(model: &Model, arbitrary: &mut Arbitrary) -> Dataset {
    let mut data = Dataset::default();
    for entity in model.entities_in_reference_order() {
        let mut objects = Vec::new();
        for _ in 0..OBJECTS_PER_ENTITY {
            let id = arbitrary.object_id();
            let object = arbitrary.object(entity, id, &mut |index| {
                let target = &entity.associations[index].target;
                // A dangling reference now and then: it must match nothing on every backend.
                let mut ids: Vec<ObjectId> = data
                    .objects
                    .get(target)
                    .map(|o| o.iter().map(|o| o.id).collect())
                    .unwrap_or_default();
                ids.push(ObjectId::from_u128(0xdead));
                ids
            });
            objects.push(object);
        }
        data.objects.insert(entity.name.clone(), objects);
    }
    data
}

/// How many constraints were compared, and how many of them selected some but not all objects.
#[derive(Default)]
struct Tally {
    compared: usize,
    discriminating: usize,
}

/// Runs one seed over one model.
fn run_seed(model: &Model, seed: u64, tally: &mut Tally) {
    let now = Timestamp::parse("2026-11-23T10:30:00.5Z").unwrap();
    let mut arbitrary = Arbitrary::new(seed, now);
    let data = dataset(model, &mut arbitrary);
    let mut sqlite = Sqlite::new(model);
    let mut postgres = Postgres::new(model);
    for (entity, objects) in &data.objects {
        sqlite.insert(model, entity.as_str(), objects);
        if let Some(postgres) = &mut postgres {
            postgres.insert(model, entity.as_str(), objects);
        }
    }
    let ids: Vec<ObjectId> = data.objects.values().flatten().map(|o| o.id).step_by(3).collect();
    let users: Vec<ObjectId> = data
        .objects
        .iter()
        .filter(|(e, _)| e.as_str() == "System.User")
        .flat_map(|(_, o)| o.iter().map(|o| o.id))
        .collect();
    let mut generator = ConstraintGenerator::new(model, Arbitrary::new(seed ^ 0xC0FFEE, now), ids);
    let mut rng = SplitMix64::new(seed);
    let roles: Vec<String> = model.roles().map(|r| r.name.to_string()).collect();
    for entity in model.entities() {
        for _ in 0..CONSTRAINTS_PER_ENTITY {
            let text = generator.constraint(entity);
            let constraint = ferry_constraint::check(model, entity.name.as_str(), &text)
                .unwrap_or_else(|errors| {
                    panic!("seed {seed:#x}: generated constraint {text} is invalid: {errors:?}")
                });
            let context = Context {
                user: (!users.is_empty() && rng.chance(3, 4)).then(|| *rng.pick(&users)),
                roles: roles.iter().filter(|_| rng.chance(1, 2)).cloned().collect(),
                now,
                parameters: Default::default(),
            };
            let bound = constraint.bind(&context);
            let memory: BTreeSet<ObjectId> = data.objects[&entity.name]
                .iter()
                .filter(|o| bound.matches(o, &data))
                .map(|o| o.id)
                .collect();
            let report = |backend: &str,
                          sql: &ferry_sql::Sql,
                          found: Result<BTreeSet<ObjectId>, String>| {
                let found = found.unwrap_or_else(|error| {
                    panic!("seed {seed:#x}: {backend} failed on {text}: {error}\nreplay: FERRY_DIFF_SEED={seed:#x} cargo nextest run -p ferry-sql differential")
                });
                if found != memory {
                    let show = |ids: BTreeSet<&ObjectId>| {
                        ids.iter()
                            .map(|id| {
                                format!(
                                    "  {id}: {:?}",
                                    data.object(&entity.name, **id).map(|o| &o.values)
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("\n")
                    };
                    panic!(
                        "seed {seed:#x}: memory and {backend} disagree on {} {text}\nmeaning: {}\nsql: {}\nparams: {:?}\nonly in memory:\n{}\nonly in {backend}:\n{}\nreplay: FERRY_DIFF_SEED={seed:#x} cargo nextest run -p ferry-sql differential",
                        entity.name,
                        constraint.describe(model),
                        sql.text,
                        sql.params,
                        show(memory.difference(&found).collect()),
                        show(found.difference(&memory).collect()),
                    );
                }
            };
            let sql = compile_where(model, &bound, "t0", Dialect::Sqlite, 1);
            report("SQLite", &sql, sqlite.select_ids(model, entity.name.as_str(), &sql));
            if let Some(postgres) = &postgres {
                let sql = compile_where(model, &bound, "t0", Dialect::Postgres, 1);
                report("PostgreSQL", &sql, postgres.select_ids(model, entity.name.as_str(), &sql));
            }
            tally.compared += 1;
            tally.discriminating +=
                usize::from(!memory.is_empty() && memory.len() < OBJECTS_PER_ENTITY);
        }
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("FERRY_DIFF_SEED") {
        Ok(seed) => {
            let seed = seed.trim_start_matches("0x");
            vec![u64::from_str_radix(seed, 16).expect("FERRY_DIFF_SEED is a hex seed")]
        }
        Err(_) => (1..=SEEDS).map(|n| n * 0x9E37_79B9).collect(),
    }
}

fn run_model(model: &Model, name: &str, compared_min: usize) {
    let mut tally = Tally::default();
    for seed in seeds() {
        run_seed(model, seed, &mut tally);
    }
    println!(
        "{name}: compared {} constraints, {} selecting some but not all objects",
        tally.compared, tally.discriminating
    );
    if std::env::var("FERRY_DIFF_SEED").is_err() {
        assert!(tally.compared >= compared_min, "too few constraints compared: {}", tally.compared);
        assert!(
            tally.discriminating * 3 >= tally.compared,
            "too few constraints tell objects apart: {}",
            tally.discriminating
        );
    }
}

#[test]
fn differential_field_service() {
    run_model(&samples::field_service(), "field-service", 3_000);
}

#[test]
fn differential_sales() {
    run_model(&samples::sales(), "sales", 2_000);
}
