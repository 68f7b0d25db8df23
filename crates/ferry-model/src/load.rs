//! Validation of a parsed model file into a `Model`: names, types, values, references between
//! entities, access rules, and the rules without which a model cannot work offline.
//! Every problem is collected; a model is returned only when there is none.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use crate::access::{AccessRule, ConstraintSource, DownloadBehaviour, Role, RoleName};
use crate::action::{ACTION_PARAMETERS_MAX, ACTIONS_MAX, ActionParameter, DeclaredAction};
use crate::entity::{
    Association, AssociationKind, Attribute, AttributeType, ConflictPolicy, Entity, EntityKind,
    EntityName, FILE_ATTRIBUTES, Pattern, Slot, USER_ENTITY, ValidationRules,
};
use crate::error::{LineIndex, ModelError, ModelErrorKind, Position};
use crate::file::{AccessFile, AttributeFile, EntityFile, ModelFile, Scalar};
use crate::value::{DECIMAL_PRECISION_MAX, Decimal, Timestamp, Value};
use crate::{DeleteBehaviour, Model, version};

/// At most this many entities in one model.
pub const ENTITIES_MAX: usize = 1_000;
/// At most this many members (attributes and owned associations) per entity.
pub const MEMBERS_MAX: usize = 500;
/// At most this many roles in one model.
pub const ROLES_MAX: usize = 100;
/// A name's longest form in bytes, so that SQL identifiers made from it (`ix:` + name) stay within
/// PostgreSQL's 63 bytes.
pub const NAME_BYTES_MAX: usize = 59;
/// The largest declared maximum length of a string attribute, in characters.
pub const STRING_LENGTH_MAX: u32 = 10_000_000;
/// At most this many values per enumeration.
pub const ENUMERATION_VALUES_MAX: usize = 1_000;
/// A model file's largest size in bytes.
pub const MODEL_FILE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Column names every entity table has; attributes may not take them.
const RESERVED_MEMBER_NAMES: [&str; 3] = ["id", "_rev", "_seq"];

pub(crate) fn load(source: &str) -> Result<Model, Vec<ModelError>> {
    let lines = LineIndex::new(source);
    if source.len() > MODEL_FILE_BYTES_MAX {
        return Err(vec![ModelError {
            at: Position { line: 1, column: 1 },
            kind: ModelErrorKind::Syntax {
                message: format!("model file is larger than {MODEL_FILE_BYTES_MAX} bytes"),
            },
        }]);
    }
    let file: ModelFile = toml::from_str(source).map_err(|error| {
        let at = lines.position(error.span().map_or(0, |span| span.start));
        let message = error.message().trim_end_matches('\n').to_owned();
        vec![ModelError { at, kind: ModelErrorKind::Syntax { message } }]
    })?;
    let mut loader = Loader { lines, errors: Vec::new() };
    let model = loader.model(file);
    if loader.errors.is_empty() {
        Ok(model)
    } else {
        loader.errors.sort_by_key(|error| error.at);
        Err(loader.errors)
    }
}

struct Loader<'a> {
    lines: LineIndex<'a>,
    errors: Vec<ModelError>,
}

impl Loader<'_> {
    fn at<T>(&self, spanned: &Spanned<T>) -> Position {
        self.lines.position(spanned.span().start)
    }

    /// Where the text of a quoted string value starts (after its opening quote).
    fn string_start(&self, spanned: &Spanned<String>) -> Position {
        self.lines.position(spanned.span().start + 1)
    }

    fn error(&mut self, at: Position, kind: ModelErrorKind) {
        self.errors.push(ModelError { at, kind });
    }

    fn model(&mut self, file: ModelFile) -> Model {
        let roles = self.roles(&file);
        if file.entities.len() > ENTITIES_MAX {
            self.error(
                Position::default(),
                ModelErrorKind::TooMany { what: "entities", max: ENTITIES_MAX },
            );
        }
        let mut names = BTreeSet::new();
        let mut lowercase = BTreeSet::new();
        for name in file.entities.keys() {
            let at = self.at(name);
            if name.get_ref().starts_with("System.") {
                self.error(
                    at,
                    ModelErrorKind::Reserved { what: "entity", name: name.get_ref().clone() },
                );
            } else if let Err(rule) = check_qualified_name(name.get_ref()) {
                self.error(
                    at,
                    ModelErrorKind::BadName { what: "entity", name: name.get_ref().clone(), rule },
                );
            } else if !lowercase.insert(name.get_ref().to_lowercase()) {
                self.error(
                    at,
                    ModelErrorKind::Duplicate { what: "entity", name: name.get_ref().clone() },
                );
            }
            names.insert(name.get_ref().clone());
        }
        names.insert(USER_ENTITY.to_owned());

        let mut entities = BTreeMap::new();
        let user = user_entity();
        entities.insert(user.name.clone(), user);
        let mut association_names = BTreeSet::new();
        for (name, entity_file) in &file.entities {
            let entity = self.entity(name, entity_file, &names, &roles, &mut association_names);
            entities.insert(entity.name.clone(), entity);
        }
        self.check_offline(&entities);
        let actions = self.actions(&file, &entities, &roles);
        let mut model =
            Model { entities, roles, actions, version: version::ModelVersion::placeholder() };
        model.version = version::of(&model);
        model
    }

    /// The declared server actions; each problem names the action.
    fn actions(
        &mut self,
        file: &ModelFile,
        entities: &BTreeMap<EntityName, Entity>,
        roles: &BTreeMap<RoleName, Role>,
    ) -> BTreeMap<String, DeclaredAction> {
        if file.actions.len() > ACTIONS_MAX {
            let kind = ModelErrorKind::TooMany { what: "actions", max: ACTIONS_MAX };
            self.error(Position::default(), kind);
        }
        let mut actions = BTreeMap::new();
        for (name, action_file) in &file.actions {
            let action = name.get_ref().clone();
            let bad = |loader: &mut Self, at: Position, problem: String| {
                loader.error(at, ModelErrorKind::BadAction { action: action.clone(), problem });
            };
            if let Err(rule) = check_identifier(&action) {
                bad(self, self.at(name), format!("the name is not valid: {rule}"));
            }
            if action_file.roles.is_empty() {
                bad(self, self.at(name), "`roles` must name who may call it".to_owned());
            }
            let mut action_roles = Vec::new();
            for role in &action_file.roles {
                match roles.keys().find(|r| r.as_str() == role.get_ref()) {
                    Some(known) => action_roles.push(known.clone()),
                    None => bad(
                        self,
                        self.string_start(role),
                        format!("unknown role `{}`", role.get_ref()),
                    ),
                }
            }
            let entity_name = action_file.entity.get_ref();
            let entity = entities.values().find(|e| e.name.as_str() == entity_name);
            match entity {
                None => bad(
                    self,
                    self.string_start(&action_file.entity),
                    format!("unknown entity `{entity_name}`"),
                ),
                Some(entity) if entity.kind == EntityKind::System => bad(
                    self,
                    self.string_start(&action_file.entity),
                    format!("`{entity_name}` objects are not synchronized to devices"),
                ),
                Some(entity) if entity.kind == EntityKind::File => bad(
                    self,
                    self.string_start(&action_file.entity),
                    format!(
                        "`{entity_name}` is a file entity: file objects cannot be synchronized to the device by an action"
                    ),
                ),
                Some(_) => {}
            }
            if action_file.parameters.len() > ACTION_PARAMETERS_MAX {
                bad(self, self.at(name), format!("more than {ACTION_PARAMETERS_MAX} parameters"));
            }
            let mut parameters = Vec::new();
            for (parameter, parameter_file) in &action_file.parameters {
                if let Err(rule) = check_identifier(parameter.get_ref()) {
                    let problem =
                        format!("parameter name `{}` is not valid: {rule}", parameter.get_ref());
                    bad(self, self.at(parameter), problem);
                }
                let type_name = parameter_file.type_name.get_ref();
                match DeclaredAction::parameter_type(type_name) {
                    Some(value_type) => parameters
                        .push(ActionParameter { name: parameter.get_ref().clone(), value_type }),
                    None if entities.values().any(|e| e.name.as_str() == type_name) => bad(
                        self,
                        self.string_start(&parameter_file.type_name),
                        format!(
                            "parameter `{}` is a persistable object (`{type_name}`): actions take plain values; declare type = \"id\" and pass its id",
                            parameter.get_ref()
                        ),
                    ),
                    None => bad(
                        self,
                        self.string_start(&parameter_file.type_name),
                        format!(
                            "parameter `{}` has unknown type `{type_name}` (expected {})",
                            parameter.get_ref(),
                            DeclaredAction::PARAMETER_TYPES
                        ),
                    ),
                }
            }
            let mut follow = Vec::new();
            for association in &action_file.follow {
                let at = self.string_start(association);
                let Some(entity) = entity else { continue };
                let Some((_, found)) = entity.association(association.get_ref()) else {
                    bad(
                        self,
                        at,
                        format!(
                            "`{entity_name}` has no association `{}` to follow",
                            association.get_ref()
                        ),
                    );
                    continue;
                };
                let target = entities.get(&found.target);
                match target.map(|t| t.kind) {
                    Some(EntityKind::File) => bad(
                        self,
                        at,
                        format!(
                            "`{}` leads to the file entity `{}`: file objects cannot be synchronized to the device by an action",
                            found.name, found.target
                        ),
                    ),
                    Some(EntityKind::System) => bad(
                        self,
                        at,
                        format!(
                            "`{}` leads to `{}`, whose objects are not synchronized to devices",
                            found.name, found.target
                        ),
                    ),
                    _ => follow.push(found.name.clone()),
                }
            }
            let constraint = action_file.constraint.as_ref().map(|text| ConstraintSource {
                text: text.get_ref().clone(),
                at: self.string_start(text),
            });
            actions.insert(
                action.clone(),
                DeclaredAction {
                    name: action,
                    roles: action_roles,
                    entity: entity
                        .map_or_else(|| EntityName::new(entity_name.clone()), |e| e.name.clone()),
                    parameters,
                    constraint,
                    follow,
                    at: self.at(name),
                },
            );
        }
        actions
    }

    fn roles(&mut self, file: &ModelFile) -> BTreeMap<RoleName, Role> {
        if file.roles.len() > ROLES_MAX {
            self.error(
                Position::default(),
                ModelErrorKind::TooMany { what: "roles", max: ROLES_MAX },
            );
        }
        let mut roles = BTreeMap::new();
        for (name, role_file) in &file.roles {
            let at = self.at(name);
            if let Err(rule) = check_identifier(name.get_ref()) {
                self.error(
                    at,
                    ModelErrorKind::BadName { what: "role", name: name.get_ref().clone(), rule },
                );
                continue;
            }
            let role_name = RoleName::new(name.get_ref().clone());
            roles.insert(role_name.clone(), Role { name: role_name, admin: role_file.admin, at });
        }
        roles
    }

    fn entity(
        &mut self,
        name: &Spanned<String>,
        file: &EntityFile,
        names: &BTreeSet<String>,
        roles: &BTreeMap<RoleName, Role>,
        association_names: &mut BTreeSet<String>,
    ) -> Entity {
        let entity_name = EntityName::new(name.get_ref().clone());
        let at = self.at(name);
        let kind = if file.file { EntityKind::File } else { EntityKind::Plain };
        let mut member_names = BTreeSet::new();
        let attributes = self.attributes(&entity_name, kind, file, at, &mut member_names);
        let associations =
            self.associations(&entity_name, file, names, association_names, &mut member_names);

        if attributes.len() + associations.len() > MEMBERS_MAX {
            self.error(
                at,
                ModelErrorKind::TooMany { what: "members in one entity", max: MEMBERS_MAX },
            );
        }

        let download = self.download(&entity_name, file);
        let conflict = self.conflict(&entity_name, file);
        let mut entity = Entity {
            name: entity_name,
            attributes,
            associations,
            kind,
            download,
            conflict,
            access: Vec::new(),
            at,
        };
        let mut ruled_roles = BTreeSet::new();
        for access_file in &file.access {
            if let Some(rule) = self.access_rule(&entity, access_file, roles) {
                if !ruled_roles.insert(rule.role.clone()) {
                    self.error(
                        rule.at,
                        ModelErrorKind::DuplicateRule {
                            entity: entity.name.to_string(),
                            role: rule.role.to_string(),
                        },
                    );
                }
                entity.access.push(rule);
            }
        }
        entity
    }

    /// The entity's attributes, the built-in file attributes first; names go into `member_names`.
    fn attributes(
        &mut self,
        entity_name: &EntityName,
        kind: EntityKind,
        file: &EntityFile,
        at: Position,
        member_names: &mut BTreeSet<String>,
    ) -> Vec<Attribute> {
        let mut attributes = Vec::new();
        if kind == EntityKind::File {
            for (file_attribute, attribute_type) in FILE_ATTRIBUTES {
                member_names.insert(file_attribute.to_lowercase());
                attributes.push(Attribute {
                    name: file_attribute.to_owned(),
                    attribute_type,
                    default: None,
                    rules: ValidationRules::default(),
                    at,
                });
            }
        }
        for (attribute_name, attribute_file) in &file.attributes {
            let attribute_at = self.at(attribute_name);
            let text = attribute_name.get_ref();
            if let Err(rule) = check_identifier(text) {
                self.error(
                    attribute_at,
                    ModelErrorKind::BadName { what: "attribute", name: text.clone(), rule },
                );
                continue;
            }
            if RESERVED_MEMBER_NAMES.contains(&text.to_lowercase().as_str())
                || kind == EntityKind::File && FILE_ATTRIBUTES.iter().any(|(n, _)| n == text)
            {
                self.error(
                    attribute_at,
                    ModelErrorKind::Reserved { what: "attribute", name: text.clone() },
                );
                continue;
            }
            if !member_names.insert(text.to_lowercase()) {
                self.error(
                    attribute_at,
                    ModelErrorKind::Duplicate { what: "attribute", name: text.clone() },
                );
                continue;
            }
            if let Some(attribute) = self.attribute(entity_name, attribute_name, attribute_file) {
                attributes.push(attribute);
            }
        }
        attributes.sort_by(|a, b| a.name.cmp(&b.name));
        attributes
    }

    /// The associations the entity owns; names go into `member_names` and the model-wide set.
    fn associations(
        &mut self,
        entity_name: &EntityName,
        file: &EntityFile,
        names: &BTreeSet<String>,
        association_names: &mut BTreeSet<String>,
        member_names: &mut BTreeSet<String>,
    ) -> Vec<Association> {
        let mut associations = Vec::new();
        for (short, association_file) in &file.associations {
            let association_at = self.at(short);
            let qualified = format!("{}.{}", entity_name.module(), short.get_ref());
            if let Err(rule) =
                check_identifier(short.get_ref()).and_then(|()| check_length(&qualified))
            {
                self.error(
                    association_at,
                    ModelErrorKind::BadName { what: "association", name: qualified, rule },
                );
                continue;
            }
            if !association_names.insert(qualified.to_lowercase())
                || !member_names.insert(qualified.to_lowercase())
            {
                self.error(
                    association_at,
                    ModelErrorKind::Duplicate { what: "association", name: qualified },
                );
                continue;
            }
            let target = association_file.target.get_ref();
            if !names.contains(target) {
                self.error(
                    self.at(&association_file.target),
                    ModelErrorKind::UnknownTarget {
                        association: qualified,
                        target: target.clone(),
                    },
                );
                continue;
            }
            let kind = self.association_kind(&qualified, association_file);
            let on_delete = self.delete_behaviour(&qualified, association_file);
            let (Some(kind), Some(on_delete)) = (kind, on_delete) else { continue };
            associations.push(Association {
                name: qualified,
                owner: entity_name.clone(),
                target: EntityName::new(target.clone()),
                kind,
                on_delete,
                at: association_at,
            });
        }
        associations.sort_by(|a, b| a.name.cmp(&b.name));
        associations
    }

    /// An association's kind; `None` (with the error recorded) when unknown.
    fn association_kind(
        &mut self,
        association: &str,
        file: &crate::file::AssociationFile,
    ) -> Option<AssociationKind> {
        match file.kind.as_ref().map(|k| k.get_ref().as_str()) {
            None | Some("reference" | "one-to-many") => Some(AssociationKind::Reference),
            Some("one-to-one") => Some(AssociationKind::OneToOne),
            Some(other) => {
                let at = self.at(file.kind.as_ref().expect("matched Some"));
                let kind = ModelErrorKind::BadAssociationKind {
                    association: association.to_owned(),
                    kind: other.to_owned(),
                };
                self.error(at, kind);
                None
            }
        }
    }

    /// An association's delete behaviour; `None` (with the error recorded) when unknown.
    fn delete_behaviour(
        &mut self,
        association: &str,
        file: &crate::file::AssociationFile,
    ) -> Option<DeleteBehaviour> {
        match file.on_delete.as_ref().map(|k| k.get_ref().as_str()) {
            None | Some("clear") => Some(DeleteBehaviour::Clear),
            Some("delete") => Some(DeleteBehaviour::Delete),
            Some("refuse") => Some(DeleteBehaviour::Refuse),
            Some(other) => {
                let at = self.at(file.on_delete.as_ref().expect("matched Some"));
                let kind = ModelErrorKind::BadDeleteBehaviour {
                    association: association.to_owned(),
                    behaviour: other.to_owned(),
                };
                self.error(at, kind);
                None
            }
        }
    }

    fn conflict(&mut self, entity_name: &EntityName, file: &EntityFile) -> ConflictPolicy {
        match file.conflict.as_ref().map(|c| c.get_ref().as_str()) {
            None | Some("last-writer-wins") => ConflictPolicy::LastWriterWins,
            Some("revision-check") => ConflictPolicy::RevisionCheck,
            Some(other) => {
                let conflict_at = self.at(file.conflict.as_ref().expect("matched Some"));
                self.error(
                    conflict_at,
                    ModelErrorKind::BadConflict {
                        entity: entity_name.to_string(),
                        policy: other.to_owned(),
                    },
                );
                ConflictPolicy::LastWriterWins
            }
        }
    }

    /// The attribute's type from `type` and the options that shape it (max_length, scale, values).
    fn attribute_type(
        &mut self,
        file: &AttributeFile,
        at: Position,
        bad: &dyn Fn(String) -> ModelErrorKind,
        entity_text: &str,
        attribute_text: &str,
    ) -> Option<AttributeType> {
        Some(match file.type_name.get_ref().as_str() {
            "string" => {
                let max_length = match &file.max_length {
                    None => None,
                    Some(max) if (1..=i64::from(STRING_LENGTH_MAX)).contains(max.get_ref()) => {
                        Some(*max.get_ref() as u32)
                    }
                    Some(max) => {
                        let problem =
                            format!("max_length must be between 1 and {STRING_LENGTH_MAX}");
                        self.error(self.at(max), bad(problem));
                        return None;
                    }
                };
                AttributeType::String { max_length }
            }
            "integer" => AttributeType::Integer,
            "decimal" => match &file.scale {
                None => AttributeType::Decimal { scale: 2 },
                Some(scale) if (0..=i64::from(DECIMAL_PRECISION_MAX)).contains(scale.get_ref()) => {
                    AttributeType::Decimal { scale: *scale.get_ref() as u32 }
                }
                Some(scale) => {
                    let problem = format!("scale must be between 0 and {DECIMAL_PRECISION_MAX}");
                    self.error(self.at(scale), bad(problem));
                    return None;
                }
            },
            "boolean" => AttributeType::Boolean,
            "datetime" => AttributeType::DateTime,
            "enumeration" => {
                let Some(values) = &file.values else {
                    self.error(at, bad("an enumeration needs `values`".to_owned()));
                    return None;
                };
                let mut seen = BTreeSet::new();
                for value in values {
                    if check_identifier(value.get_ref()).is_err() || !seen.insert(value.get_ref()) {
                        let problem = format!(
                            "enumeration value `{}` is not a unique identifier",
                            value.get_ref()
                        );
                        self.error(self.at(value), bad(problem));
                    }
                }
                if values.is_empty() || values.len() > ENUMERATION_VALUES_MAX {
                    let problem =
                        format!("an enumeration needs 1 to {ENUMERATION_VALUES_MAX} values");
                    self.error(at, bad(problem));
                }
                AttributeType::Enumeration {
                    values: values.iter().map(|v| v.get_ref().clone()).collect(),
                }
            }
            "binary" => AttributeType::Binary,
            other => {
                self.error(
                    self.at(&file.type_name),
                    ModelErrorKind::UnknownType {
                        entity: entity_text.to_owned(),
                        attribute: attribute_text.to_owned(),
                        type_name: other.to_owned(),
                    },
                );
                return None;
            }
        })
    }

    fn attribute(
        &mut self,
        entity: &EntityName,
        name: &Spanned<String>,
        file: &AttributeFile,
    ) -> Option<Attribute> {
        let at = self.at(name);
        let entity_text = entity.to_string();
        let attribute_text = name.get_ref().clone();
        let bad = |problem: String| ModelErrorKind::BadAttribute {
            entity: entity_text.clone(),
            attribute: attribute_text.clone(),
            problem,
        };
        let attribute_type = self.attribute_type(file, at, &bad, &entity_text, &attribute_text)?;
        let value_type = attribute_type.value_type();
        let not_allowed = |option: &'static str| ModelErrorKind::OptionNotAllowed {
            entity: entity_text.clone(),
            attribute: attribute_text.clone(),
            option,
            attribute_type: value_type,
        };
        let is_string = matches!(attribute_type, AttributeType::String { .. });
        let ordered = matches!(
            attribute_type,
            AttributeType::Integer | AttributeType::Decimal { .. } | AttributeType::DateTime
        );
        let checks: [(&'static str, Option<Position>, bool); 7] = [
            ("max_length", file.max_length.as_ref().map(|s| self.at(s)), is_string),
            (
                "scale",
                file.scale.as_ref().map(|s| self.at(s)),
                value_type == crate::ValueType::Decimal,
            ),
            (
                "values",
                file.values.as_ref().map(|_| at),
                value_type == crate::ValueType::Enumeration,
            ),
            ("min", file.min.as_ref().map(|s| self.at(s)), ordered),
            ("max", file.max.as_ref().map(|s| self.at(s)), ordered),
            ("pattern", file.pattern.as_ref().map(|s| self.at(s)), is_string),
            ("unique", file.unique.then_some(at), value_type != crate::ValueType::Binary),
        ];
        for (option, option_at, allowed) in checks {
            if let (Some(option_at), false) = (option_at, allowed) {
                self.error(option_at, not_allowed(option));
            }
        }
        let value_of = |loader: &mut Self, what: &'static str, scalar: &Option<Spanned<Scalar>>| {
            let scalar = scalar.as_ref()?;
            match scalar_value(&attribute_type, scalar.get_ref()) {
                Ok(value) => Some(value),
                Err(problem) => {
                    let kind = ModelErrorKind::BadValue {
                        entity: entity_text.clone(),
                        attribute: attribute_text.clone(),
                        what,
                        problem,
                    };
                    loader.error(loader.at(scalar), kind);
                    None
                }
            }
        };
        let default = value_of(self, "default", &file.default);
        let min = if ordered { value_of(self, "min", &file.min) } else { None };
        let max = if ordered { value_of(self, "max", &file.max) } else { None };
        if let (Some(min), Some(max)) = (&min, &max)
            && min.compare(max) == Some(std::cmp::Ordering::Greater)
        {
            self.error(at, bad(format!("min {min} is greater than max {max}")));
        }
        let pattern = match (&file.pattern, is_string) {
            (Some(source), true) => match Pattern::new(source.get_ref()) {
                Ok(pattern) => Some(pattern),
                Err(error) => {
                    let first_line =
                        error.to_string().lines().last().unwrap_or_default().to_owned();
                    self.error(
                        self.at(source),
                        bad(format!("pattern is not a valid regular expression: {first_line}")),
                    );
                    None
                }
            },
            _ => None,
        };
        Some(Attribute {
            name: attribute_text.clone(),
            attribute_type,
            default,
            rules: ValidationRules {
                required: file.required,
                unique: file.unique,
                min,
                max,
                pattern,
            },
            at,
        })
    }

    fn download(&mut self, entity: &EntityName, file: &EntityFile) -> DownloadBehaviour {
        let keyword = file.download.as_ref().map_or("all", |d| d.get_ref().as_str());
        let constraint = file.download_constraint.as_ref().map(|text| ConstraintSource {
            text: text.get_ref().clone(),
            at: self.string_start(text),
        });
        let behaviour = match keyword {
            "all" => DownloadBehaviour::All,
            "nothing-clear" => DownloadBehaviour::NothingClear,
            "nothing-preserve" => DownloadBehaviour::NothingPreserve,
            "constraint" => match &constraint {
                Some(constraint) => return DownloadBehaviour::Constraint(constraint.clone()),
                None => {
                    let at = self.at(file.download.as_ref().expect("keyword came from it"));
                    self.error(
                        at,
                        ModelErrorKind::MissingDownloadConstraint { entity: entity.to_string() },
                    );
                    DownloadBehaviour::All
                }
            },
            other => {
                let at = self.at(file.download.as_ref().expect("keyword came from it"));
                self.error(
                    at,
                    ModelErrorKind::BadDownload {
                        entity: entity.to_string(),
                        behaviour: other.to_owned(),
                    },
                );
                DownloadBehaviour::All
            }
        };
        if let Some(constraint) = constraint {
            self.error(
                constraint.at,
                ModelErrorKind::UnusedDownloadConstraint {
                    entity: entity.to_string(),
                    behaviour: keyword.to_owned(),
                },
            );
        }
        behaviour
    }

    fn access_rule(
        &mut self,
        entity: &Entity,
        file: &Spanned<AccessFile>,
        roles: &BTreeMap<RoleName, Role>,
    ) -> Option<AccessRule> {
        let at = self.at(file);
        let file = file.get_ref();
        let role_name = file.role.get_ref();
        let Some(role) = roles.keys().find(|r| r.as_str() == role_name) else {
            self.error(
                self.at(&file.role),
                ModelErrorKind::UnknownRole {
                    entity: entity.name.to_string(),
                    role: role_name.clone(),
                },
            );
            return None;
        };
        let members = |loader: &mut Self, names: &[Spanned<String>]| {
            let mut slots = BTreeSet::new();
            for name in names {
                if name.get_ref() == "*" {
                    slots.extend((0..entity.member_count()).map(Slot));
                } else if let Some(member) = entity.member(name.get_ref()) {
                    slots.insert(entity.slot(member));
                } else {
                    let kind = ModelErrorKind::UnknownMember {
                        entity: entity.name.to_string(),
                        role: role_name.clone(),
                        member: name.get_ref().clone(),
                    };
                    loader.error(loader.at(name), kind);
                }
            }
            slots
        };
        let read = members(self, &file.read);
        let write = members(self, &file.write);
        let constraint = file.constraint.as_ref().map(|text| ConstraintSource {
            text: text.get_ref().clone(),
            at: self.string_start(text),
        });
        Some(AccessRule {
            role: role.clone(),
            create: file.create,
            delete: file.delete,
            read,
            write,
            constraint,
            at,
        })
    }

    /// The rules without which devices cannot work with the model offline.
    fn check_offline(&mut self, entities: &BTreeMap<EntityName, Entity>) {
        for entity in entities.values().filter(|e| e.kind != EntityKind::System) {
            let name = entity.name.to_string();
            if entity.access.is_empty() {
                self.error(entity.at, ModelErrorKind::NoAccess { entity: name.clone() });
            }
            for rule in &entity.access {
                for slot in rule.write.difference(&rule.read) {
                    let member = entity.member_name(*slot).to_owned();
                    self.error(
                        rule.at,
                        ModelErrorKind::WriteWithoutRead {
                            entity: name.clone(),
                            role: rule.role.to_string(),
                            member,
                        },
                    );
                }
                if !rule.create {
                    continue;
                }
                for (index, attribute) in entity.attributes.iter().enumerate() {
                    let writable = rule.write.contains(&Slot(index));
                    if attribute.rules.required && attribute.default.is_none() && !writable {
                        self.error(
                            rule.at,
                            ModelErrorKind::RequiredNotWritable {
                                entity: name.clone(),
                                role: rule.role.to_string(),
                                attribute: attribute.name.clone(),
                            },
                        );
                    }
                }
            }
            for association in &entity.associations {
                let cleared = entities
                    .get(&association.target)
                    .is_some_and(|t| matches!(t.download, DownloadBehaviour::NothingClear));
                let owner_cleared = matches!(entity.download, DownloadBehaviour::NothingClear);
                if cleared && !owner_cleared {
                    self.error(
                        association.at,
                        ModelErrorKind::ReferenceToClearedEntity {
                            association: association.name.clone(),
                            target: association.target.to_string(),
                        },
                    );
                }
            }
        }
    }
}

fn user_entity() -> Entity {
    Entity {
        name: EntityName::new(USER_ENTITY.to_owned()),
        attributes: vec![Attribute {
            name: "Name".to_owned(),
            attribute_type: AttributeType::String { max_length: Some(200) },
            default: None,
            rules: ValidationRules { required: true, unique: true, ..ValidationRules::default() },
            at: Position::default(),
        }],
        associations: Vec::new(),
        kind: EntityKind::System,
        download: DownloadBehaviour::NothingPreserve,
        conflict: ConflictPolicy::LastWriterWins,
        access: Vec::new(),
        at: Position::default(),
    }
}

/// A model-file literal as a value of the attribute's type.
fn scalar_value(attribute_type: &AttributeType, scalar: &Scalar) -> Result<Value, String> {
    let expected = attribute_type.value_type();
    match (attribute_type, scalar) {
        (AttributeType::String { max_length }, Scalar::String(text)) => {
            if text.contains('\0') {
                return Err("contains a NUL character".to_owned());
            }
            match max_length {
                Some(max) if text.chars().count() > *max as usize => {
                    Err(format!("is longer than max_length {max}"))
                }
                _ => Ok(Value::String(text.clone())),
            }
        }
        (AttributeType::Integer, Scalar::Integer(integer)) => Ok(Value::Integer(*integer)),
        (AttributeType::Decimal { scale }, Scalar::String(text)) => Decimal::parse(text, *scale)
            .map(Value::Decimal)
            .ok_or_else(|| format!("`{text}` is not a decimal with at most {scale} fractional digits and {DECIMAL_PRECISION_MAX} digits in all")),
        (AttributeType::Decimal { scale }, Scalar::Integer(integer)) => {
            Decimal::parse(&integer.to_string(), *scale)
                .map(Value::Decimal)
                .ok_or_else(|| format!("{integer} does not fit {DECIMAL_PRECISION_MAX} digits at scale {scale}"))
        }
        (AttributeType::Decimal { .. }, Scalar::Float(_)) => {
            Err("write decimals as strings (\"12.50\") so they stay exact".to_owned())
        }
        (AttributeType::Boolean, Scalar::Boolean(flag)) => Ok(Value::Boolean(*flag)),
        (AttributeType::DateTime, Scalar::String(text)) => Timestamp::parse(text)
            .map(Value::DateTime)
            .ok_or_else(|| format!("`{text}` is not a UTC date-time such as 2026-01-31T08:00:00Z")),
        (AttributeType::Enumeration { values }, Scalar::String(text)) => {
            if values.contains(text) {
                Ok(Value::Enumeration(text.clone()))
            } else {
                Err(format!("`{text}` is not one of the declared values"))
            }
        }
        (AttributeType::Binary, _) => Err("binary attributes take no literal values".to_owned()),
        _ => Err(format!("must be a {expected} value")),
    }
}

fn check_identifier(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("use a letter, then letters, digits or `_`");
    }
    check_length(name)
}

fn check_length(name: &str) -> Result<(), &'static str> {
    if name.len() > NAME_BYTES_MAX {
        return Err("names are at most 59 bytes long, including the module");
    }
    Ok(())
}

fn check_qualified_name(name: &str) -> Result<(), &'static str> {
    match name.split_once('.') {
        Some((module, short)) => {
            check_identifier(module)?;
            check_identifier(short)?;
            check_length(name)
        }
        None => Err("entity names are qualified by their module, as in `Sales.Order`"),
    }
}
