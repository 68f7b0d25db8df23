//! Checking every constraint of a model (access rules, download constraints, declared actions), with errors
//! placed in the model file, so a model with a bad constraint is refused at load.

use std::collections::BTreeMap;

use ferry_model::{
    ConstraintSource, DownloadBehaviour, EntityName, Model, ModelError, ModelErrorKind, RoleName,
    ValueType,
};

use crate::predicate::Constraint;
use crate::{ConstraintError, check_with_parameters};

/// The checked constraints of a model.
#[derive(Clone, Debug, Default)]
pub struct ModelConstraints {
    /// The access rule constraint of each entity and role that has one.
    pub access: BTreeMap<(EntityName, RoleName), Constraint>,
    /// The download constraint of each entity with `download = "constraint"`.
    pub download: BTreeMap<EntityName, Constraint>,
    /// The constraint of each declared action that has one, over the action's parameters.
    pub actions: BTreeMap<String, Constraint>,
}

/// Checks every constraint in `model`; on failure, every problem found, placed in the model file.
pub fn check_model(model: &Model) -> Result<ModelConstraints, Vec<ModelError>> {
    let mut constraints = ModelConstraints::default();
    let mut errors = Vec::new();
    let no_parameters = BTreeMap::new();
    let mut check_one = |entity: &EntityName,
                         rule: String,
                         source: &ConstraintSource,
                         parameters: &BTreeMap<String, ValueType>| {
        match check_with_parameters(model, entity.as_str(), &source.text, parameters) {
            Ok(constraint) => Some(constraint),
            Err(problems) => {
                errors.extend(
                    problems.into_iter().map(|problem| placed(entity, &rule, source, problem)),
                );
                None
            }
        }
    };
    for entity in model.entities() {
        for rule in &entity.access {
            if let Some(source) = &rule.constraint {
                let label = format!("access rule for role `{}`", rule.role);
                if let Some(constraint) = check_one(&entity.name, label, source, &no_parameters) {
                    constraints.access.insert((entity.name.clone(), rule.role.clone()), constraint);
                }
            }
        }
        if let DownloadBehaviour::Constraint(source) = &entity.download
            && let Some(constraint) =
                check_one(&entity.name, "download".to_owned(), source, &no_parameters)
        {
            constraints.download.insert(entity.name.clone(), constraint);
        }
    }
    for action in model.actions() {
        let Some(source) = &action.constraint else { continue };
        if model.entity(action.entity.as_str()).is_none() {
            continue;
        }
        let parameters: BTreeMap<String, ValueType> =
            action.parameters.iter().map(|p| (p.name.clone(), p.value_type)).collect();
        let label = format!("action `{}`", action.name);
        if let Some(constraint) = check_one(&action.entity, label, source, &parameters) {
            constraints.actions.insert(action.name.clone(), constraint);
        }
    }
    if errors.is_empty() {
        Ok(constraints)
    } else {
        errors.sort_by_key(|error| error.at);
        Err(errors)
    }
}

fn placed(
    entity: &EntityName,
    rule: &str,
    source: &ConstraintSource,
    problem: ConstraintError,
) -> ModelError {
    let offset = source.text.get(..problem.span.start).map_or(0, |prefix| prefix.chars().count());
    ModelError {
        at: source.at.shifted(offset),
        kind: ModelErrorKind::BadConstraint {
            entity: entity.to_string(),
            rule: rule.to_owned(),
            problem: problem.kind.to_string(),
        },
    }
}
