//! Seeded random constraints over a model, written as text so that the parser is exercised too.
//! They cover every operator, type, token, path direction, filter and function, with literals
//! from the same edge-case pools as `ferry_model::arbitrary`, so they often hit the data.

use ferry_model::arbitrary::Arbitrary;
use ferry_model::{AttributeType, Entity, Model, ObjectId, USER_ENTITY, Value};

/// Writes random valid constraints for the entities of one model.
pub struct ConstraintGenerator<'m> {
    model: &'m Model,
    pub arbitrary: Arbitrary,
    /// Ids that reference and `id` comparisons draw from (ids of the test data).
    pub ids: Vec<ObjectId>,
}

/// How deep `and`, `or`, `not` and paths nest in generated constraints.
const NESTING_MAX: usize = 3;

impl<'m> ConstraintGenerator<'m> {
    pub fn new(model: &'m Model, arbitrary: Arbitrary, ids: Vec<ObjectId>) -> Self {
        ConstraintGenerator { model, arbitrary, ids }
    }

    /// One constraint over `entity`, sometimes written as several bracketed groups.
    pub fn constraint(&mut self, entity: &'m Entity) -> String {
        let groups = if self.arbitrary.rng.chance(1, 8) { 2 } else { 1 };
        (0..groups).map(|_| format!("[{}]", self.expr(entity, 0))).collect()
    }

    fn expr(&mut self, entity: &'m Entity, depth: usize) -> String {
        let choice = if depth >= NESTING_MAX {
            10 + self.arbitrary.rng.below(6)
        } else {
            self.arbitrary.rng.below(16)
        };
        match choice {
            0 | 1 => {
                let parts: Vec<String> = (0..2 + self.arbitrary.rng.below(2))
                    .map(|_| self.expr(entity, depth + 1))
                    .collect();
                parts.join(if choice == 0 { " and " } else { " or " })
            }
            2 => format!("({})", self.expr(entity, depth + 1)),
            3 => format!("not({})", self.expr(entity, depth + 1)),
            4..=6 => self.path(entity, depth),
            7 => (*self.arbitrary.rng.pick(&["true()", "false()"])).to_owned(),
            8 => match self
                .model
                .roles()
                .nth(self.arbitrary.rng.below(self.model.roles().count().max(1)))
            {
                Some(role) => format!("'[%UserRole_{}%]'", role.name),
                None => "true()".to_owned(),
            },
            _ => self.member_condition(entity, ""),
        }
    }

    /// A path of one to three hops (either direction, each optionally filtered), ending in a
    /// condition on a member of the far entity or standing alone as an existence test.
    fn path(&mut self, entity: &'m Entity, depth: usize) -> String {
        let mut prefix = String::new();
        let mut current = entity;
        for hop in 0..1 + self.arbitrary.rng.below(3) {
            let mut hops: Vec<(String, String)> = current
                .associations
                .iter()
                .map(|a| (a.name.clone(), a.target.to_string()))
                .collect();
            hops.extend(
                self.model
                    .associations_to(&current.name)
                    .map(|(owner, a)| (a.name.clone(), owner.name.to_string())),
            );
            if hops.is_empty() {
                break;
            }
            let (association, next_name) = self.arbitrary.rng.pick(&hops).clone();
            let next = self.model.entity(&next_name).expect("association ends are entities");
            let filter = if depth + hop < NESTING_MAX && self.arbitrary.rng.chance(1, 4) {
                format!("[{}]", self.expr(next, depth + hop + 1))
            } else {
                String::new()
            };
            prefix.push_str(&format!("{association}/{next_name}{filter}/"));
            current = next;
        }
        if self.arbitrary.rng.chance(1, 4)
            && let Some(path) = prefix.strip_suffix('/')
        {
            return path.to_owned();
        }
        self.member_condition(current, &prefix)
    }

    /// A comparison or text function on one member of `entity`, reached through `prefix`.
    fn member_condition(&mut self, entity: &'m Entity, prefix: &str) -> String {
        let pick = self.arbitrary.rng.below(entity.member_count() + 1);
        if pick == entity.member_count() {
            let op = *self.arbitrary.rng.pick(&["=", "!="]);
            return format!("{prefix}id {op} {}", self.reference_literal(entity.name.as_str()));
        }
        if pick >= entity.attributes.len() {
            let association = &entity.associations[pick - entity.attributes.len()];
            let op = *self.arbitrary.rng.pick(&["=", "!="]);
            let value = self.reference_literal(association.target.as_str());
            return format!("{prefix}{} {op} {value}", association.name);
        }
        let attribute = &entity.attributes[pick];
        let member = format!("{prefix}{}", attribute.name);
        if matches!(attribute.attribute_type, AttributeType::String { .. })
            && self.arbitrary.rng.chance(1, 3)
        {
            let function = *self.arbitrary.rng.pick(&["contains", "starts-with", "ends-with"]);
            let Value::String(needle) =
                self.arbitrary.value(&AttributeType::String { max_length: None })
            else {
                unreachable!("a string type gives strings")
            };
            let needle: String = if self.arbitrary.rng.chance(1, 2) {
                needle.chars().take(2).collect()
            } else {
                needle
            };
            return format!("{function}({member}, {})", quoted(&needle));
        }
        let ordered = matches!(
            attribute.attribute_type,
            AttributeType::String { .. }
                | AttributeType::Integer
                | AttributeType::Decimal { .. }
                | AttributeType::DateTime
        );
        let ops: &[&str] = if ordered { &["=", "!=", "<", "<=", ">", ">="] } else { &["=", "!="] };
        let op = *self.arbitrary.rng.pick(ops);
        let equality = op == "=" || op == "!=";
        let literal = if attribute.attribute_type == AttributeType::Binary
            || equality && self.arbitrary.rng.chance(1, 6)
        {
            "empty".to_owned()
        } else if attribute.attribute_type == AttributeType::DateTime
            && self.arbitrary.rng.chance(1, 3)
        {
            let token = *self.arbitrary.rng.pick(&[
                "CurrentDateTime",
                "BeginOfCurrentDay",
                "BeginOfTomorrow",
                "BeginOfYesterday",
            ]);
            format!("'[%{token}%]'")
        } else {
            literal(&self.arbitrary.value(&attribute.attribute_type))
        };
        if self.arbitrary.rng.chance(1, 5) {
            let flipped = match op {
                "<" => ">",
                ">" => "<",
                "<=" => ">=",
                ">=" => "<=",
                other => other,
            };
            return format!("{literal} {flipped} {member}");
        }
        format!("{member} {op} {literal}")
    }

    fn reference_literal(&mut self, target: &str) -> String {
        match self.arbitrary.rng.below(4) {
            0 => "empty".to_owned(),
            1 if target == USER_ENTITY => "'[%CurrentUser%]'".to_owned(),
            _ if !self.ids.is_empty() => format!("'{}'", self.arbitrary.rng.pick(&self.ids)),
            _ => "empty".to_owned(),
        }
    }
}

/// A value written as a constraint literal.
pub fn literal(value: &Value) -> String {
    match value {
        Value::Empty => "empty".to_owned(),
        Value::String(text) | Value::Enumeration(text) => quoted(text),
        Value::Integer(integer) => integer.to_string(),
        Value::Decimal(decimal) => decimal.to_string(),
        Value::Boolean(flag) => format!("{flag}()"),
        Value::DateTime(time) => format!("'{time}'"),
        Value::Binary(_) => "empty".to_owned(),
        Value::Reference(id) => format!("'{id}'"),
    }
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
