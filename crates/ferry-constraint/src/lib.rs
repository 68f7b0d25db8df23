//! The constraint language of Ferry: XPath-style predicates over one entity (DESIGN.md §2).
//!
//! A constraint is parsed once ([`check`] parses and checks it against a [`Model`]), giving a
//! [`Constraint`]: a typed [`Predicate`] whose literals already have the types of the members they
//! are compared with. [`Constraint::bind`] replaces the tokens (`[%CurrentUser%]`, time, roles)
//! with the values of one [`Context`], giving a [`Bound`] predicate that is evaluated in memory
//! ([`Bound::matches`]) or compiled to SQL by `ferry-sql`. Both must select the same objects.
//!
//! Semantics, the same in memory and in SQL:
//! - `=` and `!=` treat `empty` as a value: `[Amount != 5]` holds for an empty amount.
//! - `<`, `<=`, `>`, `>=` never hold when the member is empty.
//! - A path through an association holds when some object at its end satisfies the rest.
//! - `contains`, `starts-with` and `ends-with` ignore the case of ASCII letters only.
//! - Strings order by their UTF-8 bytes.
//!
//! ```
//! use ferry_constraint::{Context, check};
//! use ferry_model::{Timestamp, samples};
//!
//! let model = samples::field_service();
//! let constraint = check(&model, "Field.WorkOrder", "[Status = 'Open' and Priority >= 4]").unwrap();
//! let now = Timestamp::parse("2026-11-23T08:00:00Z").unwrap();
//! let bound = constraint.bind(&Context { user: None, roles: vec![], now, parameters: Default::default() });
//! let mut order = ferry_model::Object {
//!     id: ferry_model::ObjectId::from_u128(1),
//!     values: model.entity("Field.WorkOrder").unwrap().default_values(),
//! };
//! assert!(!bound.matches(&order, &ferry_constraint::NoGraph)); // Priority defaults to 3
//! let (priority, _) = model.entity("Field.WorkOrder").unwrap().attribute("Priority").unwrap();
//! order.values[priority] = ferry_model::Value::Integer(5);
//! assert!(bound.matches(&order, &ferry_constraint::NoGraph));
//! ```

mod check;
mod eval;
mod model;
mod predicate;
mod syntax;

pub mod arbitrary;

use std::collections::BTreeMap;

use ferry_model::{EntityName, Model, ValueType};

pub use eval::{Graph, MemoryGraph, NoGraph};
pub use model::{ModelConstraints, check_model};
pub use predicate::{
    Bound, Constraint, Context, Hop, Operand, Predicate, TextFunction, TimeDependence, TimeToken,
};
pub use syntax::{CompareOp, Span};

/// The longest constraint text accepted, in bytes.
pub const CONSTRAINT_BYTES_MAX: usize = 16 * 1024;
/// The deepest nesting of groups, parentheses, path filters and path steps accepted: each step
/// of a path nests what follows it one level deeper (one `exists` per hop), so a long path is
/// as deep as many parentheses and every walk over the checked predicate stays shallow.
pub const CONSTRAINT_DEPTH_MAX: usize = 32;
/// The most steps one path may have (`Association/Entity` is two steps, a member one more).
pub const CONSTRAINT_PATH_STEPS_MAX: usize = 16;

/// Parses `text` and checks it against `entity` of `model`; on failure, every problem found.
pub fn check(model: &Model, entity: &str, text: &str) -> Result<Constraint, Vec<ConstraintError>> {
    check_with_parameters(model, entity, text, &BTreeMap::new())
}

/// [`check`] for a constraint that may use parameters (`$Name`), of the declared types. A
/// string parameter also compares with an enumeration. Their values come with the
/// [`Context`] at [`Constraint::bind`].
pub fn check_with_parameters(
    model: &Model,
    entity: &str,
    text: &str,
    parameters: &BTreeMap<String, ValueType>,
) -> Result<Constraint, Vec<ConstraintError>> {
    let Some(entity) = model.entity(entity) else {
        let kind = ConstraintErrorKind::UnknownEntity { entity: entity.to_owned() };
        return Err(vec![ConstraintError { span: Span::default(), kind }]);
    };
    let expr = syntax::parse(text).map_err(|error| vec![error])?;
    check::check(model, entity, &expr, parameters)
}

/// Why a constraint was rejected; `span` points into the constraint text.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{kind} at {span}")]
pub struct ConstraintError {
    pub span: Span,
    pub kind: ConstraintErrorKind,
}

#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ConstraintErrorKind {
    #[error("constraint is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("constraint nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("path has more than {max} steps")]
    PathTooLong { max: usize },
    #[error("unexpected character `{found}`")]
    UnexpectedChar { found: char },
    #[error("unterminated {what}")]
    Unterminated { what: &'static str },
    #[error("`{text}` is not a number")]
    BadNumber { text: String },
    #[error("expected {expected}, found {found}")]
    Expected { expected: &'static str, found: String },
    #[error(
        "unknown function `{name}` (expected not, true, false, contains, starts-with or ends-with)"
    )]
    UnknownFunction { name: String },
    #[error("unknown entity `{entity}`")]
    UnknownEntity { entity: String },
    #[error("unknown attribute or association `{member}` on entity `{entity}`")]
    UnknownMember { entity: EntityName, member: String },
    #[error("association `{association}` leads to `{expected}`, not `{found}`")]
    WrongPathEntity { association: String, expected: EntityName, found: String },
    #[error(
        "association `{association}` must be followed by the entity it leads to, `/{expected}`"
    )]
    MissingPathEntity { association: String, expected: EntityName },
    #[error(
        "a path continues with an association after an entity, but `{found}` is not an association of `{entity}`"
    )]
    NotAnAssociation { entity: EntityName, found: String },
    #[error("`{member}` is not a condition by itself: compare it with a value")]
    NotACondition { member: String },
    #[error("cannot compare two members (`{left}` and `{right}`): compare a member with a value")]
    TwoMembers { left: String, right: String },
    #[error("cannot compare two values: one side must be a member")]
    TwoValues,
    #[error("cannot compare {member} ({expected}) with {found}")]
    TypeMismatch { member: String, expected: ValueType, found: String },
    #[error("{member} ({expected}): {problem}")]
    BadLiteral { member: String, expected: ValueType, problem: String },
    #[error("operator `{op}` does not apply to {member} ({value_type}); use = or !=")]
    NotOrdered { member: String, value_type: ValueType, op: CompareOp },
    #[error("only = and != compare with empty")]
    OrderedEmpty,
    #[error(
        "unknown token `[%{name}%]` (expected CurrentUser, CurrentDateTime, BeginOfCurrentDay, BeginOfTomorrow, BeginOfYesterday or UserRole_<role>)"
    )]
    UnknownToken { name: String },
    #[error("unknown role `{role}` in `[%UserRole_{role}%]`")]
    UnknownRole { role: String },
    #[error("`[%UserRole_{role}%]` is a condition by itself; it cannot be compared")]
    RoleCompared { role: String },
    #[error("{function} takes a string member and a string value")]
    BadFunctionArgument { function: &'static str },
    #[error("a `$` starts a parameter name, as in `$Status`")]
    ParameterName,
    #[error("unknown parameter `${name}`{}", if .declared.is_empty() { " (none is declared)".to_owned() } else { format!(" (declared: {})", .declared.join(", ")) })]
    UnknownParameter { name: String, declared: Vec<String> },
}

#[cfg(test)]
mod tests;
