//! The domain model of a Ferry app: one model file, validated into a [`Model`].
//!
//! A model declares entities with typed attributes and associations, file entities, roles with
//! access rules, download behaviour per entity and validation rules (DESIGN.md §1), and the
//! server actions the standalone server runs without app code.
//! [`Model::parse`] reports every problem at once, each with line and column, and refuses a model
//! that cannot work offline. The [`ModelVersion`] is a hash of the model's meaning.
//!
//! Also here, because every layer speaks them: [`Value`] and its scalar types ([`ObjectId`],
//! [`Timestamp`], [`Decimal`]), the sample models every test starts from ([`samples`]), and seeded
//! random data over a model for tests and benchmarks ([`arbitrary`]).

pub mod file;

mod access;
mod action;
pub mod arbitrary;
mod entity;
mod error;
mod load;
mod object;
#[doc(hidden)]
pub mod planted;
pub mod samples;
mod validation;
mod value;
mod version;

use std::collections::BTreeMap;

pub use access::{AccessRule, ConstraintSource, DownloadBehaviour, Role, RoleName};
pub use action::{ACTION_PARAMETERS_MAX, ACTIONS_MAX, ActionParameter, DeclaredAction};
pub use entity::{
    Association, AssociationKind, Attribute, AttributeType, ConflictPolicy,
    DELETE_CASCADE_OBJECTS_MAX, DeleteBehaviour, Entity, EntityKind, EntityName, FILE_ATTRIBUTES,
    MemberRef, Pattern, Slot, USER_ENTITY, ValidationRules,
};
pub use error::{ModelError, ModelErrorKind, Position};
pub use load::{
    ENTITIES_MAX, ENUMERATION_VALUES_MAX, MEMBERS_MAX, MODEL_FILE_BYTES_MAX, NAME_BYTES_MAX,
    ROLES_MAX, STRING_LENGTH_MAX,
};
pub use object::Object;
pub use validation::BrokenRule;
pub use value::{
    DECIMAL_PRECISION_MAX, Decimal, ObjectId, TIMESTAMP_MAX, TIMESTAMP_MIN, Timestamp, Value,
    ValueType,
};
pub use version::ModelVersion;

/// A validated model. Entities are kept by name; `System.User` is always present.
#[derive(Clone, Debug)]
pub struct Model {
    entities: BTreeMap<EntityName, Entity>,
    roles: BTreeMap<RoleName, Role>,
    actions: BTreeMap<String, DeclaredAction>,
    version: ModelVersion,
}

impl Model {
    /// Parses and validates model-file text; on failure, every problem found, in file order.
    pub fn parse(source: &str) -> Result<Model, Vec<ModelError>> {
        load::load(source)
    }

    pub fn version(&self) -> ModelVersion {
        self.version
    }

    /// The canonical text the version is a hash of: one line per fact, in a fixed order.
    pub fn canonical_text(&self) -> String {
        version::canonical_text(self)
    }

    pub fn entities(&self) -> impl Iterator<Item = &Entity> {
        self.entities.values()
    }

    /// The server actions the model declares.
    pub fn actions(&self) -> impl Iterator<Item = &DeclaredAction> {
        self.actions.values()
    }

    pub fn action(&self, name: &str) -> Option<&DeclaredAction> {
        self.actions.get(name)
    }

    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|(key, _)| key.as_str() == name).map(|(_, entity)| entity)
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.values()
    }

    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.values().find(|role| role.name.as_str() == name)
    }

    /// An association by its qualified name, with the index among its owner's associations.
    pub fn association(&self, name: &str) -> Option<(&Entity, usize)> {
        self.entities.values().find_map(|entity| {
            let index = entity.associations.iter().position(|a| a.name == name)?;
            Some((entity, index))
        })
    }

    /// Every association that points at `target`, with its owner.
    pub fn associations_to<'a>(
        &'a self,
        target: &'a EntityName,
    ) -> impl Iterator<Item = (&'a Entity, &'a Association)> + 'a {
        self.entities.values().flat_map(move |owner| {
            owner.associations.iter().filter(move |a| &a.target == target).map(move |a| (owner, a))
        })
    }

    /// Entities ordered so that every association's target comes before its owner where possible
    /// (cycles are broken by name order): the order to create tables and apply new objects.
    pub fn entities_in_reference_order(&self) -> Vec<&Entity> {
        let mut ordered: Vec<&Entity> = Vec::new();
        let mut placed = std::collections::BTreeSet::new();
        let mut visiting = std::collections::BTreeSet::new();
        fn visit<'m>(
            model: &'m Model,
            entity: &'m Entity,
            placed: &mut std::collections::BTreeSet<&'m EntityName>,
            visiting: &mut std::collections::BTreeSet<&'m EntityName>,
            ordered: &mut Vec<&'m Entity>,
        ) {
            if placed.contains(&entity.name) || !visiting.insert(&entity.name) {
                return;
            }
            for association in &entity.associations {
                if let Some(target) = model.entities.get(&association.target) {
                    visit(model, target, placed, visiting, ordered);
                }
            }
            placed.insert(&entity.name);
            ordered.push(entity);
        }
        for entity in self.entities.values() {
            visit(self, entity, &mut placed, &mut visiting, &mut ordered);
        }
        ordered
    }
}

#[cfg(test)]
mod tests;
