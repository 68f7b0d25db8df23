//! In-memory evaluation of a bound predicate against one object, following associations
//! through a [`Graph`]. Its results are the reference the SQL compilation is tested against.

use std::cmp::Ordering;

use ferry_model::{EntityName, Object, ObjectId, Slot, Value};

use crate::predicate::{Bound, Hop, Predicate, TextFunction};
use crate::syntax::CompareOp;

/// The other objects a predicate may reach through associations.
pub trait Graph {
    /// The object of `entity` with this id, if there is one.
    fn object(&self, entity: &EntityName, id: ObjectId) -> Option<&Object>;

    /// Calls `visit` on each object of `owner` whose reference at `slot` is `target`,
    /// until `visit` returns true; returns whether it did.
    fn any_referrer(
        &self,
        owner: &EntityName,
        slot: Slot,
        target: ObjectId,
        visit: &mut dyn FnMut(&Object) -> bool,
    ) -> bool;
}

/// A graph with no other objects: for predicates that follow no association.
pub struct NoGraph;

impl Graph for NoGraph {
    fn object(&self, _: &EntityName, _: ObjectId) -> Option<&Object> {
        None
    }

    fn any_referrer(
        &self,
        _: &EntityName,
        _: Slot,
        _: ObjectId,
        _: &mut dyn FnMut(&Object) -> bool,
    ) -> bool {
        false
    }
}

impl Bound {
    /// Whether `object` (of this constraint's entity) satisfies the predicate.
    pub fn matches(&self, object: &Object, graph: &dyn Graph) -> bool {
        evaluate(&self.predicate, object, graph)
    }
}

fn evaluate(predicate: &Predicate<Value>, object: &Object, graph: &dyn Graph) -> bool {
    match predicate {
        Predicate::Const(value) => *value,
        Predicate::And(items) => items.iter().all(|p| evaluate(p, object, graph)),
        Predicate::Or(items) => items.iter().any(|p| evaluate(p, object, graph)),
        Predicate::Not(inner) => !evaluate(inner, object, graph),
        Predicate::Compare { slot, op, value } => compare(object.value(*slot), *op, value),
        Predicate::CompareId { op, value } => compare(&Value::Reference(object.id), *op, value),
        Predicate::Text { function, slot, needle } => match object.value(*slot) {
            Value::String(text) => text_matches(*function, text.as_bytes(), needle.as_bytes()),
            _ => false,
        },
        Predicate::Exists { hop: Hop::Forward { slot, target }, filter } => {
            match object.value(*slot) {
                Value::Reference(id) => {
                    graph.object(target, *id).is_some_and(|next| evaluate(filter, next, graph))
                }
                _ => false,
            }
        }
        Predicate::Exists { hop: Hop::Reverse { owner, slot }, filter } => {
            graph.any_referrer(owner, *slot, object.id, &mut |next| evaluate(filter, next, graph))
        }
        Predicate::Flag(value) => matches!(value, Value::Boolean(true)),
    }
}

/// `=` and `!=` treat empty as a value; the orderings never hold for empty.
fn compare(member: &Value, op: CompareOp, value: &Value) -> bool {
    let ordering = member.compare(value);
    match op {
        CompareOp::Eq => equal(member, value, ordering),
        CompareOp::Ne => !equal(member, value, ordering),
        CompareOp::Lt => ordering == Some(Ordering::Less),
        CompareOp::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        CompareOp::Gt => ordering == Some(Ordering::Greater),
        CompareOp::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
    }
}

fn equal(member: &Value, value: &Value, ordering: Option<Ordering>) -> bool {
    match (member, value) {
        (Value::Empty, Value::Empty) => true,
        _ => ordering == Some(Ordering::Equal),
    }
}

/// ASCII-case-insensitive matching on UTF-8 bytes; `needle` is already lowercase.
/// Matching bytes of a valid UTF-8 needle can only start at character boundaries.
fn text_matches(function: TextFunction, text: &[u8], needle: &[u8]) -> bool {
    if needle.len() > text.len() {
        return false;
    }
    let same = |part: &[u8]| part.iter().zip(needle).all(|(a, b)| a.to_ascii_lowercase() == *b);
    match function {
        TextFunction::StartsWith => same(&text[..needle.len()]),
        TextFunction::EndsWith => same(&text[text.len() - needle.len()..]),
        TextFunction::Contains => needle.is_empty() || text.windows(needle.len()).any(same),
    }
}

/// Objects held in memory, by entity: a [`Graph`] for evaluating over data a program holds
/// itself (tests, simulations, a device's objects).
#[derive(Clone, Debug, Default)]
pub struct MemoryGraph {
    pub objects: std::collections::BTreeMap<EntityName, Vec<Object>>,
}

impl MemoryGraph {
    pub fn get_mut(&mut self, entity: &EntityName, id: ObjectId) -> Option<&mut Object> {
        self.objects.get_mut(entity)?.iter_mut().find(|o| o.id == id)
    }
}

impl Graph for MemoryGraph {
    fn object(&self, entity: &EntityName, id: ObjectId) -> Option<&Object> {
        self.objects.get(entity)?.iter().find(|o| o.id == id)
    }

    fn any_referrer(
        &self,
        owner: &EntityName,
        slot: Slot,
        target: ObjectId,
        visit: &mut dyn FnMut(&Object) -> bool,
    ) -> bool {
        self.objects.get(owner).is_some_and(|objects| {
            objects.iter().filter(|o| o.values[slot.0] == Value::Reference(target)).any(visit)
        })
    }
}
