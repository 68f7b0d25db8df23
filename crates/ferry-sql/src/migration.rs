//! The plan from one model version to the next: additive changes become SQL, and removals,
//! renames and type changes are reported as breaking, each with a message that names the thing.

use std::fmt;

use ferry_model::{Attribute, AttributeType, Entity, Model, Slot, Value};

use crate::schema::{Side, column_type, create_entity, member_type, table_name, unique_index};
use crate::{Dialect, quote};

/// What changes between two models.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct MigrationPlan {
    /// Changes applied by [`MigrationPlan::statements`].
    pub changes: Vec<Change>,
    /// Changes that would lose data or break devices; a plan with any is refused.
    pub breaking: Vec<Breaking>,
    /// True when anything but the schema changed (rules, validation, download behaviour):
    /// the version differs and devices resynchronise, but no table changes.
    pub rules_changed: bool,
}

#[derive(Clone, PartialEq, Debug)]
pub enum Change {
    AddEntity {
        entity: String,
    },
    AddAttribute {
        entity: String,
        attribute: String,
        attribute_type: AttributeType,
        default: Option<Value>,
    },
    AddAssociation {
        entity: String,
        association: String,
        target: String,
    },
    WidenString {
        entity: String,
        attribute: String,
        from: Option<u32>,
        to: Option<u32>,
    },
    /// An attribute became unique: its values get an index for the uniqueness check.
    IndexUnique {
        entity: String,
        attribute: String,
    },
    AddEnumerationValues {
        entity: String,
        attribute: String,
        values: Vec<String>,
    },
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Breaking {
    pub message: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::AddEntity { entity } => write!(f, "add entity `{entity}`"),
            Change::AddAttribute { entity, attribute, attribute_type, default } => {
                write!(f, "add attribute `{entity}.{attribute}` ({attribute_type})")?;
                match default {
                    Some(value) => write!(f, ", existing objects get the default {value}"),
                    None => write!(f, ", empty in existing objects"),
                }
            }
            Change::AddAssociation { entity, association, target } => {
                write!(f, "add association `{association}` from `{entity}` to `{target}`")
            }
            Change::WidenString { entity, attribute, from, to } => {
                let length = |l: &Option<u32>| l.map_or("unlimited".to_owned(), |l| l.to_string());
                write!(
                    f,
                    "widen `{entity}.{attribute}` from {} to {} characters",
                    length(from),
                    length(to)
                )
            }
            Change::AddEnumerationValues { entity, attribute, values } => {
                write!(f, "add values {} to enumeration `{entity}.{attribute}`", values.join(", "))
            }
            Change::IndexUnique { entity, attribute } => {
                write!(f, "index `{entity}.{attribute}`, which became unique")
            }
        }
    }
}

impl fmt::Display for Breaking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for MigrationPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() && self.breaking.is_empty() {
            writeln!(f, "no schema change")?;
        }
        for change in &self.changes {
            writeln!(f, "+ {change}")?;
        }
        for breaking in &self.breaking {
            writeln!(f, "! breaking: {breaking}")?;
        }
        if self.rules_changed {
            writeln!(
                f,
                "~ access rules, validation or download behaviour changed (no schema change)"
            )?;
        }
        Ok(())
    }
}

impl MigrationPlan {
    pub fn is_breaking(&self) -> bool {
        !self.breaking.is_empty()
    }

    /// The statements that apply the additive changes to a database of the old model.
    pub fn statements(&self, new: &Model, dialect: Dialect, side: Side) -> Vec<String> {
        let mut statements = Vec::new();
        for change in &self.changes {
            let entity_of =
                |name: &str| new.entity(name).expect("the plan was made from this model");
            match change {
                Change::AddEntity { entity } => {
                    statements.extend(create_entity(entity_of(entity), dialect, side));
                }
                Change::AddAttribute { entity, attribute, default, .. } => {
                    let entity = entity_of(entity);
                    let (index, _) = entity.attribute(attribute).expect("planned from this entity");
                    let column = quote(attribute);
                    let column_type = member_type(entity, Slot(index), dialect);
                    let default = default
                        .as_ref()
                        .map(|v| format!(" DEFAULT {}", literal(v, dialect)))
                        .unwrap_or_default();
                    statements.push(format!(
                        "ALTER TABLE {} ADD COLUMN {column} {column_type}{default}",
                        table_name(entity)
                    ));
                    if entity.attributes[index].rules.unique {
                        statements.push(unique_index(entity, attribute));
                    }
                }
                Change::AddAssociation { entity, association, .. } => {
                    let entity = entity_of(entity);
                    let column_type = if dialect == Dialect::Sqlite { "BLOB" } else { "uuid" };
                    let table = table_name(entity);
                    statements.push(format!(
                        "ALTER TABLE {table} ADD COLUMN {} {column_type}",
                        quote(association)
                    ));
                    let index = quote(&format!("ix:{association}"));
                    statements
                        .push(format!("CREATE INDEX {index} ON {table} ({})", quote(association)));
                }
                Change::WidenString { entity, attribute, to, .. } => {
                    if dialect == Dialect::Postgres {
                        let entity = entity_of(entity);
                        let new_type =
                            column_type(&AttributeType::String { max_length: *to }, dialect);
                        statements.push(format!(
                            "ALTER TABLE {} ALTER COLUMN {} TYPE {new_type}",
                            table_name(entity),
                            quote(attribute)
                        ));
                    }
                }
                Change::AddEnumerationValues { .. } => {}
                Change::IndexUnique { entity, attribute } => {
                    statements.push(unique_index(entity_of(entity), attribute));
                }
            }
        }
        statements
    }
}

/// A model-validated value as an SQL literal, for `DEFAULT` clauses only.
fn literal(value: &Value, dialect: Dialect) -> String {
    let text = |s: &str| format!("'{}'", s.replace('\'', "''"));
    match (value, dialect) {
        (Value::Empty, _) => "NULL".to_owned(),
        (Value::String(s) | Value::Enumeration(s), _) => text(s),
        (Value::Integer(i), _) => i.to_string(),
        (Value::Decimal(d), Dialect::Sqlite) => d.units().to_string(),
        (Value::Decimal(d), Dialect::Postgres) => d.to_string(),
        (Value::Boolean(b), Dialect::Sqlite) => i64::from(*b).to_string(),
        (Value::Boolean(b), Dialect::Postgres) => b.to_string(),
        (Value::DateTime(t), Dialect::Sqlite) => t.unix_micros().to_string(),
        (Value::DateTime(t), Dialect::Postgres) => format!("{}::timestamptz", text(&t.to_string())),
        (Value::Binary(bytes), Dialect::Sqlite) => {
            format!("X'{}'", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
        }
        (Value::Binary(bytes), Dialect::Postgres) => {
            format!("'\\x{}'::bytea", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
        }
        (Value::Reference(id), Dialect::Sqlite) => format!("X'{:032x}'", id.as_u128()),
        (Value::Reference(id), Dialect::Postgres) => format!("'{id}'::uuid"),
    }
}

/// Compares two models and plans the way from `old` to `new`.
pub fn plan_migration(old: &Model, new: &Model) -> MigrationPlan {
    let mut plan =
        MigrationPlan { rules_changed: old.version() != new.version(), ..MigrationPlan::default() };
    let breaking =
        |plan: &mut MigrationPlan, message: String| plan.breaking.push(Breaking { message });
    for old_entity in old.entities() {
        if new.entity(old_entity.name.as_str()).is_none() {
            breaking(
                &mut plan,
                format!("entity `{}` was removed; its objects would be lost", old_entity.name),
            );
        }
    }
    for new_entity in new.entities() {
        let Some(old_entity) = old.entity(new_entity.name.as_str()) else {
            plan.changes.push(Change::AddEntity { entity: new_entity.name.to_string() });
            continue;
        };
        plan_entity(&mut plan, old_entity, new_entity);
    }
    let schema_changed = !plan.changes.is_empty() || !plan.breaking.is_empty();
    plan.rules_changed &= !schema_changed || rules_differ(old, new);
    plan
}

fn plan_entity(plan: &mut MigrationPlan, old: &Entity, new: &Entity) {
    let entity = new.name.to_string();
    if old.kind != new.kind {
        plan.breaking.push(Breaking {
            message: format!("entity `{entity}` changed between file and plain entity"),
        });
    }
    for old_attribute in &old.attributes {
        match new.attribute(&old_attribute.name) {
            None => {
                let renamed = new
                    .attributes
                    .iter()
                    .filter(|a| old.attribute(&a.name).is_none() && a.attribute_type == old_attribute.attribute_type)
                    .map(|a| format!(" (renamed to `{}`? renames are breaking: add the new attribute and keep the old one)", a.name))
                    .next()
                    .unwrap_or_default();
                plan.breaking.push(Breaking {
                    message: format!(
                        "attribute `{entity}.{}` was removed; its values would be lost{renamed}",
                        old_attribute.name
                    ),
                });
            }
            Some((_, new_attribute)) => plan_attribute(plan, &entity, old_attribute, new_attribute),
        }
    }
    for new_attribute in &new.attributes {
        if old.attribute(&new_attribute.name).is_none() {
            plan.changes.push(Change::AddAttribute {
                entity: entity.clone(),
                attribute: new_attribute.name.clone(),
                attribute_type: new_attribute.attribute_type.clone(),
                default: new_attribute.default.clone(),
            });
        }
    }
    for old_association in &old.associations {
        match new.associations.iter().find(|a| a.name == old_association.name) {
            None => plan.breaking.push(Breaking {
                message: format!(
                    "association `{}` was removed; its references would be lost",
                    old_association.name
                ),
            }),
            Some(new_association) if new_association.target != old_association.target => {
                plan.breaking.push(Breaking {
                    message: format!(
                        "association `{}` changed its target from `{}` to `{}`",
                        old_association.name, old_association.target, new_association.target
                    ),
                })
            }
            Some(_) => {}
        }
    }
    for new_association in &new.associations {
        if !old.associations.iter().any(|a| a.name == new_association.name) {
            plan.changes.push(Change::AddAssociation {
                entity: entity.clone(),
                association: new_association.name.clone(),
                target: new_association.target.to_string(),
            });
        }
    }
}

fn plan_attribute(plan: &mut MigrationPlan, entity: &str, old: &Attribute, new: &Attribute) {
    let name = &new.name;
    if new.rules.unique && !old.rules.unique {
        plan.changes
            .push(Change::IndexUnique { entity: entity.to_owned(), attribute: name.clone() });
    }
    match (&old.attribute_type, &new.attribute_type) {
        (a, b) if a == b => {}
        (AttributeType::String { max_length: from }, AttributeType::String { max_length: to }) => {
            let widened = match (from, to) {
                (_, None) => true,
                (Some(from), Some(to)) => to > from,
                (None, Some(_)) => false,
            };
            if widened {
                plan.changes.push(Change::WidenString { entity: entity.to_owned(), attribute: name.clone(), from: *from, to: *to });
            } else {
                plan.breaking.push(Breaking {
                    message: format!("attribute `{entity}.{name}` was narrowed from {} to {}; longer values would not fit", old.attribute_type, new.attribute_type),
                });
            }
        }
        (AttributeType::Enumeration { values: from }, AttributeType::Enumeration { values: to }) => {
            let removed: Vec<&String> = from.iter().filter(|v| !to.contains(v)).collect();
            if removed.is_empty() {
                let added = to.iter().filter(|v| !from.contains(v)).cloned().collect();
                plan.changes.push(Change::AddEnumerationValues { entity: entity.to_owned(), attribute: name.clone(), values: added });
            } else {
                let removed: Vec<&str> = removed.iter().map(|v| v.as_str()).collect();
                plan.breaking.push(Breaking {
                    message: format!("enumeration `{entity}.{name}` lost values {}; objects holding them would be invalid", removed.join(", ")),
                });
            }
        }
        (from, to) => plan.breaking.push(Breaking {
            message: format!("attribute `{entity}.{name}` changed type from {from} to {to}; stored values cannot be converted safely"),
        }),
    }
}

/// Whether anything outside the schema differs: roles, access rules, download behaviour,
/// conflict policy or validation, compared on what both models have (a removed member is a
/// schema change, not also a rule change).
fn rules_differ(old: &Model, new: &Model) -> bool {
    let roles = |m: &Model| m.roles().map(|r| (r.name.to_string(), r.admin)).collect::<Vec<_>>();
    if roles(old) != roles(new) {
        return true;
    }
    new.entities().any(|new_entity| {
        let Some(old_entity) = old.entity(new_entity.name.as_str()) else { return false };
        let shared = |entity: &Entity, slots: &std::collections::BTreeSet<Slot>| -> Vec<String> {
            slots
                .iter()
                .map(|slot| entity.member_name(*slot).to_owned())
                .filter(|name| {
                    old_entity.member(name).is_some() && new_entity.member(name).is_some()
                })
                .collect()
        };
        let rule_facts = |entity: &Entity| -> Vec<String> {
            entity
                .access
                .iter()
                .map(|rule| {
                    let constraint = rule.constraint.as_ref().map(|c| c.text.as_str());
                    let (read, write) = (shared(entity, &rule.read), shared(entity, &rule.write));
                    format!(
                        "{} {} {} {read:?} {write:?} {constraint:?}",
                        rule.role, rule.create, rule.delete
                    )
                })
                .collect()
        };
        let download = |entity: &Entity| match &entity.download {
            ferry_model::DownloadBehaviour::Constraint(source) => source.text.clone(),
            other => other.keyword().to_owned(),
        };
        let validation = |entity: &Entity| -> Vec<String> {
            entity
                .attributes
                .iter()
                .filter(|a| {
                    old_entity.attribute(&a.name).is_some()
                        && new_entity.attribute(&a.name).is_some()
                })
                .map(|a| {
                    let rules = &a.rules;
                    let pattern = rules.pattern.as_ref().map(|p| p.source().to_owned());
                    format!(
                        "{} {} {} {:?} {:?} {pattern:?} {:?}",
                        a.name, rules.required, rules.unique, rules.min, rules.max, a.default
                    )
                })
                .collect()
        };
        rule_facts(old_entity) != rule_facts(new_entity)
            || download(old_entity) != download(new_entity)
            || old_entity.conflict != new_entity.conflict
            || validation(old_entity) != validation(new_entity)
    })
}
