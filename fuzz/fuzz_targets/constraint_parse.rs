//! Fuzz target: any text given to the constraint parser and checker, against every entity of the
//! sample models, must give a constraint or errors, never a panic; and a constraint that checks
//! must evaluate against an object of its entity without panicking.

#![no_main]

use std::sync::OnceLock;

use ferry_constraint::{Context, NoGraph};
use ferry_model::{Model, Object, ObjectId, Timestamp, samples};
use libfuzzer_sys::fuzz_target;

fn models() -> &'static [Model; 2] {
    static MODELS: OnceLock<[Model; 2]> = OnceLock::new();
    MODELS.get_or_init(|| [samples::field_service(), samples::sales()])
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let now = Timestamp::parse("2026-11-23T10:00:00Z").expect("valid time");
    for model in models() {
        for entity in model.entities() {
            if let Ok(constraint) = ferry_constraint::check(model, entity.name.as_str(), text) {
                let context = Context { user: Some(ObjectId::from_u128(1)), roles: vec![], now, parameters: Default::default() };
                let bound = constraint.bind(&context);
                let object = Object { id: ObjectId::from_u128(2), values: entity.default_values() };
                let _ = bound.matches(&object, &NoGraph);
            }
        }
    }
});
