//! The checked form of a constraint: a typed predicate over member slots, and its bound form in
//! which every token has been replaced by a value of one context.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ferry_model::{EntityName, Model, ObjectId, RoleName, Slot, Timestamp, Value, ValueType};

use crate::syntax::CompareOp;

/// A predicate over objects of one entity. `V` is [`Operand`] when checked and [`Value`] when bound.
#[derive(Clone, PartialEq, Debug)]
pub enum Predicate<V> {
    Const(bool),
    And(Vec<Predicate<V>>),
    Or(Vec<Predicate<V>>),
    Not(Box<Predicate<V>>),
    /// An attribute or owned association compared with a value of its type (or empty).
    Compare {
        slot: Slot,
        op: CompareOp,
        value: V,
    },
    /// The object's own id compared with a reference (only `=` and `!=`).
    CompareId {
        op: CompareOp,
        value: V,
    },
    /// A string attribute against a needle whose ASCII letters are lowercase.
    Text {
        function: TextFunction,
        slot: Slot,
        needle: String,
    },
    /// Some object one association away satisfies `filter`.
    Exists {
        hop: Hop,
        filter: Box<Predicate<V>>,
    },
    /// A boolean operand standing alone (`[%UserRole_Planner%]`).
    Flag(V),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TextFunction {
    Contains,
    StartsWith,
    EndsWith,
}

impl TextFunction {
    pub fn name(self) -> &'static str {
        match self {
            TextFunction::Contains => "contains",
            TextFunction::StartsWith => "starts-with",
            TextFunction::EndsWith => "ends-with",
        }
    }
}

/// One step along an association.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Hop {
    /// From the owner to the object its reference at `slot` points at.
    Forward { slot: Slot, target: EntityName },
    /// From a target to the objects of `owner` whose reference at `slot` points at it.
    Reverse { owner: EntityName, slot: Slot },
}

/// A checked operand: a value, or a token resolved when the constraint is bound.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Operand {
    Value(Value),
    CurrentUser,
    Time(TimeToken),
    /// True when the user has the role.
    HasRole(RoleName),
    /// An action's parameter (`$Name`), compared with a member of this type (and scale, for a
    /// decimal).
    Parameter {
        name: String,
        value_type: ValueType,
        scale: Option<u32>,
    },
}

/// How a constraint's result depends on when it is evaluated.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum TimeDependence {
    /// Not at all.
    None,
    /// Only on the day (`BeginOfCurrentDay`, `BeginOfTomorrow`, `BeginOfYesterday`): within one
    /// day, the result changes only when the object does.
    Day,
    /// On the moment (`CurrentDateTime`).
    Moment,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TimeToken {
    CurrentDateTime,
    BeginOfCurrentDay,
    BeginOfTomorrow,
    BeginOfYesterday,
}

impl TimeToken {
    pub fn name(self) -> &'static str {
        match self {
            TimeToken::CurrentDateTime => "CurrentDateTime",
            TimeToken::BeginOfCurrentDay => "BeginOfCurrentDay",
            TimeToken::BeginOfTomorrow => "BeginOfTomorrow",
            TimeToken::BeginOfYesterday => "BeginOfYesterday",
        }
    }

    fn resolve(self, now: Timestamp) -> Value {
        let day = now.begin_of_day();
        let value = match self {
            TimeToken::CurrentDateTime => Some(now),
            TimeToken::BeginOfCurrentDay => Some(day),
            TimeToken::BeginOfTomorrow => day.add_days(1),
            TimeToken::BeginOfYesterday => day.add_days(-1),
        };
        value.map_or(Value::Empty, Value::DateTime)
    }
}

/// Who is asking and when: what the tokens of a constraint stand for.
#[derive(Clone, Debug)]
pub struct Context {
    /// The signed-in user (`[%CurrentUser%]`); `None` makes it empty.
    pub user: Option<ObjectId>,
    /// The user's role names.
    pub roles: Vec<String>,
    pub now: Timestamp,
    /// The values of an action's parameters (`$Name`); a missing one is empty.
    pub parameters: BTreeMap<String, Value>,
}

/// A constraint checked against one entity of a model.
#[derive(Clone, PartialEq, Debug)]
pub struct Constraint {
    pub entity: EntityName,
    pub predicate: Predicate<Operand>,
}

/// A constraint with every token replaced by a value: ready to evaluate or compile to SQL.
#[derive(Clone, PartialEq, Debug)]
pub struct Bound {
    pub entity: EntityName,
    pub predicate: Predicate<Value>,
}

impl Constraint {
    pub fn bind(&self, context: &Context) -> Bound {
        Bound { entity: self.entity.clone(), predicate: bind(&self.predicate, context) }
    }

    /// Entities other than its own whose objects decide whether an object matches.
    pub fn other_entities(&self) -> BTreeSet<EntityName> {
        let mut entities = BTreeSet::new();
        self.predicate.visit(&mut |predicate| {
            if let Predicate::Exists { hop, .. } = predicate {
                let entity = match hop {
                    Hop::Forward { target, .. } => target,
                    Hop::Reverse { owner, .. } => owner,
                };
                entities.insert(entity.clone());
            }
        });
        entities.remove(&self.entity);
        entities
    }

    /// How the result depends on the time of evaluation.
    pub fn time_dependence(&self) -> TimeDependence {
        if self.uses(|operand| matches!(operand, Operand::Time(TimeToken::CurrentDateTime))) {
            TimeDependence::Moment
        } else if self.uses(|operand| matches!(operand, Operand::Time(_))) {
            TimeDependence::Day
        } else {
            TimeDependence::None
        }
    }

    /// True when the result depends on the user's roles.
    pub fn uses_roles(&self) -> bool {
        self.uses(|operand| matches!(operand, Operand::HasRole(_)))
    }

    fn uses(&self, test: impl Fn(&Operand) -> bool) -> bool {
        let mut found = false;
        self.predicate.visit(&mut |predicate| {
            if let Predicate::Compare { value, .. }
            | Predicate::CompareId { value, .. }
            | Predicate::Flag(value) = predicate
            {
                found |= test(value);
            }
        });
        found
    }

    /// The predicate written out with full names, as the checker understood it.
    pub fn describe(&self, model: &Model) -> String {
        let mut out = String::new();
        describe(model, &self.entity, &self.predicate, &mut out);
        out
    }
}

impl<V> Predicate<V> {
    fn visit(&self, f: &mut dyn FnMut(&Predicate<V>)) {
        f(self);
        match self {
            Predicate::And(items) | Predicate::Or(items) => items.iter().for_each(|p| p.visit(f)),
            Predicate::Not(inner) | Predicate::Exists { filter: inner, .. } => inner.visit(f),
            _ => {}
        }
    }
}

/// A parameter's value as the member it is compared with holds it: a string as an enumeration
/// value, a decimal at the member's scale. A value that cannot be (a decimal with more
/// fractional digits) is empty, which no ordering matches.
fn parameter_value(value: Option<&Value>, value_type: ValueType, scale: Option<u32>) -> Value {
    match (value, value_type, scale) {
        (None, _, _) => Value::Empty,
        (Some(Value::String(text)), ValueType::Enumeration, _) => Value::Enumeration(text.clone()),
        (Some(Value::Decimal(decimal)), _, Some(scale)) => {
            decimal.rescale(scale).map_or(Value::Empty, Value::Decimal)
        }
        (Some(value), _, _) => value.clone(),
    }
}

fn bind(predicate: &Predicate<Operand>, context: &Context) -> Predicate<Value> {
    let value = |operand: &Operand| match operand {
        Operand::Value(value) => value.clone(),
        Operand::CurrentUser => context.user.map_or(Value::Empty, Value::Reference),
        Operand::Time(token) => token.resolve(context.now),
        Operand::HasRole(role) => Value::Boolean(context.roles.iter().any(|r| r == role.as_str())),
        Operand::Parameter { name, value_type, scale } => {
            parameter_value(context.parameters.get(name), *value_type, *scale)
        }
    };
    match predicate {
        Predicate::Const(b) => Predicate::Const(*b),
        Predicate::And(items) => Predicate::And(items.iter().map(|p| bind(p, context)).collect()),
        Predicate::Or(items) => Predicate::Or(items.iter().map(|p| bind(p, context)).collect()),
        Predicate::Not(inner) => Predicate::Not(Box::new(bind(inner, context))),
        Predicate::Compare { slot, op, value: operand } => {
            Predicate::Compare { slot: *slot, op: *op, value: value(operand) }
        }
        Predicate::CompareId { op, value: operand } => {
            Predicate::CompareId { op: *op, value: value(operand) }
        }
        Predicate::Text { function, slot, needle } => {
            Predicate::Text { function: *function, slot: *slot, needle: needle.clone() }
        }
        Predicate::Exists { hop, filter } => {
            Predicate::Exists { hop: hop.clone(), filter: Box::new(bind(filter, context)) }
        }
        Predicate::Flag(operand) => Predicate::Flag(value(operand)),
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Value(value) => write!(f, "{value}"),
            Operand::CurrentUser => f.write_str("[%CurrentUser%]"),
            Operand::Time(token) => write!(f, "[%{}%]", token.name()),
            Operand::HasRole(role) => write!(f, "[%UserRole_{role}%]"),
            Operand::Parameter { name, .. } => write!(f, "${name}"),
        }
    }
}

fn describe(model: &Model, entity: &EntityName, predicate: &Predicate<Operand>, out: &mut String) {
    let entity_of = model.entity(entity.as_str()).expect("checked against this model");
    let join = |items: &[Predicate<Operand>], separator: &str, out: &mut String| {
        out.push('(');
        for (index, item) in items.iter().enumerate() {
            if index > 0 {
                out.push_str(separator);
            }
            describe(model, entity, item, out);
        }
        out.push(')');
    };
    match predicate {
        Predicate::Const(b) => out.push_str(if *b { "true" } else { "false" }),
        Predicate::And(items) => join(items, " and ", out),
        Predicate::Or(items) => join(items, " or ", out),
        Predicate::Not(inner) => {
            out.push_str("not(");
            describe(model, entity, inner, out);
            out.push(')');
        }
        Predicate::Compare { slot, op, value } => {
            out.push_str(&format!("{} {op} {value}", entity_of.member_name(*slot)));
        }
        Predicate::CompareId { op, value } => out.push_str(&format!("id {op} {value}")),
        Predicate::Text { function, slot, needle } => {
            let member = entity_of.member_name(*slot);
            out.push_str(&format!("{}({member}, {needle:?})", function.name()));
        }
        Predicate::Exists { hop, filter } => {
            let (label, next) = match hop {
                Hop::Forward { slot, target } => (entity_of.member_name(*slot).to_owned(), target),
                Hop::Reverse { owner, slot } => {
                    let owner_entity = model.entity(owner.as_str()).expect("checked");
                    (format!("reverse {}", owner_entity.member_name(*slot)), owner)
                }
            };
            out.push_str(&format!("exists {label}/{next}["));
            describe(model, next, filter, out);
            out.push(']');
        }
        Predicate::Flag(value) => out.push_str(&value.to_string()),
    }
}
