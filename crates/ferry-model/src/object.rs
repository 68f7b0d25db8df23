//! An object in memory: its id and one value per member slot of its entity.

use crate::entity::Slot;
use crate::value::{ObjectId, Value};

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Object {
    pub id: ObjectId,
    /// One value per slot: attributes, then owned associations (as `Value::Reference` or empty).
    pub values: Vec<Value>,
}

impl Object {
    pub fn value(&self, slot: Slot) -> &Value {
        &self.values[slot.0]
    }
}
