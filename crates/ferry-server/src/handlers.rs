//! Server-side logic that apps embedding the server register per entity: before-apply handlers
//! may change an object or reject it with a reason; after-apply handlers see what was applied.
//! Server actions are registered here too.

use std::collections::BTreeMap;

use ferry_model::{Entity, ObjectId, Value};

use crate::actions::{ActionCall, Actions};

/// An object as a handler sees it: its entity, id and every member's value after the change.
pub struct ObjectState<'a> {
    pub entity: &'a Entity,
    pub id: ObjectId,
    pub values: Vec<Value>,
    /// The name of the user whose upload this is.
    pub user: &'a str,
}

impl ObjectState<'_> {
    pub fn get(&self, member: &str) -> Option<&Value> {
        let slot = self.entity.slot(self.entity.member(member)?);
        self.values.get(slot.0)
    }

    /// Sets a member; the value must have the member's type (it is validated like uploaded ones).
    pub fn set(&mut self, member: &str, value: Value) -> Result<(), String> {
        let slot = self.entity.member(member).map(|m| self.entity.slot(m));
        let slot =
            slot.ok_or_else(|| format!("`{}` has no member `{member}`", self.entity.name))?;
        self.values[slot.0] = value;
        Ok(())
    }
}

/// Runs before the object is validated and applied; `Err(reason)` rejects it.
pub type BeforeApply = Box<dyn Fn(&mut ObjectState<'_>) -> Result<(), String> + Send + Sync>;
/// Runs after the object was applied, inside the upload's transaction.
pub type AfterApply = Box<dyn Fn(&ObjectState<'_>) + Send + Sync>;

/// The handlers of every entity, and the server actions devices may call.
#[derive(Default)]
pub struct Handlers {
    before: BTreeMap<String, Vec<BeforeApply>>,
    after: BTreeMap<String, Vec<AfterApply>>,
    pub(crate) actions: Actions,
}

impl Handlers {
    /// Registers the server action `name` (`POST /v1/actions/{name}`): it gets the call
    /// ([`ActionCall`]: the caller, the parameters, objects to read, write and synchronize to
    /// the device) and answers a JSON result, or the reason it failed (nothing it wrote is
    /// applied then).
    pub fn action<F, Fut>(mut self, name: &str, action: F) -> Self
    where
        F: Fn(ActionCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<serde_json::Value, String>> + Send + 'static,
    {
        self.actions.register(name, action);
        self
    }

    pub fn before_apply(mut self, entity: &str, handler: BeforeApply) -> Self {
        self.before.entry(entity.to_owned()).or_default().push(handler);
        self
    }

    pub fn after_apply(mut self, entity: &str, handler: AfterApply) -> Self {
        self.after.entry(entity.to_owned()).or_default().push(handler);
        self
    }

    pub(crate) fn run_before(&self, object: &mut ObjectState<'_>) -> Result<(), String> {
        for handler in self.before.get(object.entity.name.as_str()).into_iter().flatten() {
            handler(object)?;
        }
        Ok(())
    }

    pub(crate) fn run_after(&self, object: &ObjectState<'_>) {
        for handler in self.after.get(object.entity.name.as_str()).into_iter().flatten() {
            handler(object);
        }
    }
}
