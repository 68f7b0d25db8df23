//! Server actions declared in the model file (`[actions.Name]`): the standalone server runs them
//! without app code. An action finds the objects of one entity that match its constraint (over
//! the action's parameters, `$Name`, and the caller, `[%CurrentUser%]`) and synchronizes them to
//! the calling device, with the objects they reference through the associations it follows.

use crate::access::{ConstraintSource, RoleName};
use crate::entity::EntityName;
use crate::error::Position;
use crate::value::ValueType;

/// At most this many actions in a model.
pub const ACTIONS_MAX: usize = 1_000;
/// At most this many parameters per action.
pub const ACTION_PARAMETERS_MAX: usize = 32;

/// A declared server action.
#[derive(Clone, Debug)]
pub struct DeclaredAction {
    pub name: String,
    /// Who may call it.
    pub roles: Vec<RoleName>,
    /// The entity whose objects it synchronizes to the device.
    pub entity: EntityName,
    pub parameters: Vec<ActionParameter>,
    /// Which objects; all of the entity when absent.
    pub constraint: Option<ConstraintSource>,
    /// Associations of `entity` (qualified names) whose targets are synchronized too.
    pub follow: Vec<String>,
    pub at: Position,
}

/// A parameter of a declared action: plain values only (`id` for an object's id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionParameter {
    pub name: String,
    pub value_type: ValueType,
}

impl DeclaredAction {
    /// The type names a parameter may have, as the model file writes them.
    pub const PARAMETER_TYPES: &'static str = "string, integer, decimal, boolean, datetime or id";

    /// A parameter type from its name in the model file.
    pub fn parameter_type(name: &str) -> Option<ValueType> {
        Some(match name {
            "string" => ValueType::String,
            "integer" => ValueType::Integer,
            "decimal" => ValueType::Decimal,
            "boolean" => ValueType::Boolean,
            "datetime" => ValueType::DateTime,
            "id" => ValueType::Reference,
            _ => return None,
        })
    }
}
