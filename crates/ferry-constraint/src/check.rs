//! The checker: a syntax tree against a model gives a typed predicate, or every error found.
//! Names resolve to slots, paths to hops, and literals to values of the member they meet.

use std::collections::BTreeMap;

use ferry_model::{
    AttributeType, Decimal, Entity, Model, ObjectId, Timestamp, USER_ENTITY, Value, ValueType,
};

use crate::predicate::{Constraint, Hop, Operand, Predicate, TextFunction, TimeToken};
use crate::syntax::{CompareOp, Expr, Literal, Operand as SyntaxOperand, Path, Span, Step};
use crate::{ConstraintError, ConstraintErrorKind};

pub(crate) fn check(
    model: &Model,
    entity: &Entity,
    expr: &Expr,
    parameters: &BTreeMap<String, ValueType>,
) -> Result<Constraint, Vec<ConstraintError>> {
    let mut checker = Checker { model, parameters, errors: Vec::new() };
    let predicate = checker.expr(entity, expr);
    if checker.errors.is_empty() {
        Ok(Constraint { entity: entity.name.clone(), predicate })
    } else {
        Err(checker.errors)
    }
}

struct Checker<'m> {
    model: &'m Model,
    /// The declared parameters (`$Name`) and their types.
    parameters: &'m BTreeMap<String, ValueType>,
    errors: Vec<ConstraintError>,
}

/// What a comparison's member turned out to be.
enum Target<'e> {
    Attribute { slot: ferry_model::Slot, name: &'e str, attribute_type: &'e AttributeType },
    Reference { slot: ferry_model::Slot, name: &'e str, target: &'e str },
    Id { entity: &'e str },
    Reverse { hop: Hop, name: &'e str, owner: &'e str },
}

type Leaf<'a, 'm> =
    dyn FnMut(&mut Checker<'m>, &'m Entity, Option<&Step>) -> Predicate<Operand> + 'a;

impl<'m> Checker<'m> {
    fn error(&mut self, span: Span, kind: ConstraintErrorKind) -> Predicate<Operand> {
        self.errors.push(ConstraintError { span, kind });
        Predicate::Const(false)
    }

    fn expr(&mut self, entity: &'m Entity, expr: &Expr) -> Predicate<Operand> {
        match expr {
            Expr::Or(items) => Predicate::Or(items.iter().map(|e| self.expr(entity, e)).collect()),
            Expr::And(items) => {
                Predicate::And(items.iter().map(|e| self.expr(entity, e)).collect())
            }
            Expr::Not(inner) => Predicate::Not(Box::new(self.expr(entity, inner))),
            Expr::Bool(value) => Predicate::Const(*value),
            Expr::Compare { left, op, op_span, right } => match (left, right) {
                (SyntaxOperand::Path(path), SyntaxOperand::Literal(literal, span)) => {
                    self.comparison(entity, path, *op, literal, *span)
                }
                (SyntaxOperand::Literal(literal, span), SyntaxOperand::Path(path)) => {
                    self.comparison(entity, path, op.flipped(), literal, *span)
                }
                (SyntaxOperand::Path(left), SyntaxOperand::Path(right)) => {
                    let kind = ConstraintErrorKind::TwoMembers {
                        left: path_text(left),
                        right: path_text(right),
                    };
                    self.error(*op_span, kind)
                }
                (SyntaxOperand::Literal(..), SyntaxOperand::Literal(..)) => {
                    self.error(*op_span, ConstraintErrorKind::TwoValues)
                }
            },
            Expr::Call { name, name_span, path, needle } => {
                self.text_function(entity, name, *name_span, path, needle)
            }
            Expr::Alone(SyntaxOperand::Literal(Literal::Token(name), span)) => {
                match name.strip_prefix("UserRole_") {
                    Some(role) => match self.model.role(role) {
                        Some(role) => Predicate::Flag(Operand::HasRole(role.name.clone())),
                        None => self.error(
                            *span,
                            ConstraintErrorKind::UnknownRole { role: role.to_owned() },
                        ),
                    },
                    None => self.error(
                        *span,
                        ConstraintErrorKind::NotACondition { member: format!("[%{name}%]") },
                    ),
                }
            }
            Expr::Alone(SyntaxOperand::Literal(_, span)) => {
                let kind = ConstraintErrorKind::Expected {
                    expected: "a condition",
                    found: "a value".to_owned(),
                };
                self.error(*span, kind)
            }
            Expr::Alone(SyntaxOperand::Path(path)) => {
                let text = path_text(path);
                self.walk(entity, &path.steps, &mut |checker, _, step| match step {
                    None => Predicate::Const(true),
                    Some(step) => checker.error(
                        step.span,
                        ConstraintErrorKind::NotACondition { member: text.clone() },
                    ),
                })
            }
        }
    }

    /// Follows the association steps of a path, nesting `Exists` for each hop, and calls `leaf`
    /// on the entity where the path ends with the final member step (`None` if it ends at an entity).
    fn walk(
        &mut self,
        entity: &'m Entity,
        steps: &[Step],
        leaf: &mut Leaf<'_, 'm>,
    ) -> Predicate<Operand> {
        match steps {
            [] => leaf(self, entity, None),
            [member] => {
                if member.filter.is_some() {
                    let kind = ConstraintErrorKind::Expected {
                        expected: "`/` or an operator",
                        found: "`[`".to_owned(),
                    };
                    return self.error(member.span, kind);
                }
                leaf(self, entity, Some(member))
            }
            [association, entity_step, rest @ ..] => {
                let Some((hop, next)) = self.hop(entity, association, Some(entity_step)) else {
                    return Predicate::Const(false);
                };
                let inner = self.walk(next, rest, leaf);
                let filter = match &entity_step.filter {
                    Some(filter) => Predicate::And(vec![self.expr(next, filter), inner]),
                    None => inner,
                };
                Predicate::Exists { hop, filter: Box::new(filter) }
            }
        }
    }

    /// Resolves an association step and checks that the entity step names where it leads.
    fn hop(
        &mut self,
        entity: &'m Entity,
        step: &Step,
        entity_step: Option<&Step>,
    ) -> Option<(Hop, &'m Entity)> {
        if step.filter.is_some() {
            let kind = ConstraintErrorKind::Expected { expected: "`/`", found: "`[`".to_owned() };
            self.error(step.span, kind);
            return None;
        }
        let (hop, next) = if let Some((index, association)) = entity.association(&step.name) {
            let slot = entity.slot(ferry_model::MemberRef::Association(index));
            let target = self.model.entity(association.target.as_str()).expect("validated model");
            (Hop::Forward { slot, target: target.name.clone() }, target)
        } else if let Some((owner, index)) = self.reverse_association(entity, &step.name) {
            let slot = owner.slot(ferry_model::MemberRef::Association(index));
            (Hop::Reverse { owner: owner.name.clone(), slot }, owner)
        } else {
            let kind = ConstraintErrorKind::UnknownMember {
                entity: entity.name.clone(),
                member: step.name.clone(),
            };
            self.error(step.span, kind);
            return None;
        };
        match entity_step {
            Some(found) if found.name == next.name.as_str() => Some((hop, next)),
            Some(found) => {
                let kind = if self.model.entity(&found.name).is_some() {
                    ConstraintErrorKind::WrongPathEntity {
                        association: step.name.clone(),
                        expected: next.name.clone(),
                        found: found.name.clone(),
                    }
                } else {
                    ConstraintErrorKind::MissingPathEntity {
                        association: step.name.clone(),
                        expected: next.name.clone(),
                    }
                };
                self.error(found.span, kind);
                None
            }
            None => {
                let kind = ConstraintErrorKind::MissingPathEntity {
                    association: step.name.clone(),
                    expected: next.name.clone(),
                };
                self.error(step.span, kind);
                None
            }
        }
    }

    /// An association owned by another entity that points at `entity`, by qualified name
    /// or by its name in `entity`'s module.
    fn reverse_association(&self, entity: &Entity, name: &str) -> Option<(&'m Entity, usize)> {
        let qualified = if name.contains('.') {
            name.to_owned()
        } else {
            format!("{}.{name}", entity.name.module())
        };
        let (owner, index) = self.model.association(&qualified)?;
        (owner.associations[index].target == entity.name).then_some((owner, index))
    }

    fn target<'e>(&mut self, entity: &'e Entity, step: &Step) -> Option<Target<'e>>
    where
        'm: 'e,
    {
        if step.name == "id" {
            return Some(Target::Id { entity: entity.name.as_str() });
        }
        if let Some((index, attribute)) = entity.attribute(&step.name) {
            let slot = entity.slot(ferry_model::MemberRef::Attribute(index));
            return Some(Target::Attribute {
                slot,
                name: &attribute.name,
                attribute_type: &attribute.attribute_type,
            });
        }
        if let Some((index, association)) = entity.association(&step.name) {
            let slot = entity.slot(ferry_model::MemberRef::Association(index));
            return Some(Target::Reference {
                slot,
                name: &association.name,
                target: association.target.as_str(),
            });
        }
        if let Some((owner, index)) = self.reverse_association(entity, &step.name) {
            let slot = owner.slot(ferry_model::MemberRef::Association(index));
            let name = owner.associations[index].name.as_str();
            let hop = Hop::Reverse { owner: owner.name.clone(), slot };
            return Some(Target::Reverse { hop, name, owner: owner.name.as_str() });
        }
        let kind = ConstraintErrorKind::UnknownMember {
            entity: entity.name.clone(),
            member: step.name.clone(),
        };
        self.error(step.span, kind);
        None
    }

    fn comparison(
        &mut self,
        entity: &'m Entity,
        path: &Path,
        op: CompareOp,
        literal: &Literal,
        literal_span: Span,
    ) -> Predicate<Operand> {
        let text = path_text(path);
        self.walk(entity, &path.steps, &mut |checker, entity, step| {
            let Some(step) = step else {
                return checker.error(
                    literal_span,
                    ConstraintErrorKind::NotACondition { member: text.clone() },
                );
            };
            let Some(target) = checker.target(entity, step) else {
                return Predicate::Const(false);
            };
            match target {
                Target::Attribute { slot, name, attribute_type } => {
                    match checker.operand(
                        name,
                        attribute_type.value_type(),
                        Some(attribute_type),
                        op,
                        literal,
                        literal_span,
                    ) {
                        Some(value) => Predicate::Compare { slot, op, value },
                        None => Predicate::Const(false),
                    }
                }
                Target::Reference { slot, name, target } => {
                    match checker.reference(name, target, op, literal, literal_span) {
                        Some(value) => Predicate::Compare { slot, op, value },
                        None => Predicate::Const(false),
                    }
                }
                Target::Id { entity } => {
                    match checker.reference("id", entity, op, literal, literal_span) {
                        Some(value) => Predicate::CompareId { op, value },
                        None => Predicate::Const(false),
                    }
                }
                Target::Reverse { hop, name, owner } => {
                    // `[Assoc = x]` from the target side: some owner with that id points here.
                    let Some(value) = checker.reference(name, owner, op, literal, literal_span)
                    else {
                        return Predicate::Const(false);
                    };
                    let filter = match value {
                        Operand::Value(Value::Empty) => Predicate::Const(true),
                        value => Predicate::CompareId { op: CompareOp::Eq, value },
                    };
                    let exists = Predicate::Exists { hop, filter: Box::new(filter) };
                    let empty = matches!(literal, Literal::Empty);
                    match (op, empty) {
                        (CompareOp::Eq, false) | (CompareOp::Ne, true) => exists,
                        _ => Predicate::Not(Box::new(exists)),
                    }
                }
            }
        })
    }

    fn reference(
        &mut self,
        member: &str,
        target: &str,
        op: CompareOp,
        literal: &Literal,
        span: Span,
    ) -> Option<Operand> {
        self.operand(member, ValueType::Reference, None, op, literal, span).and_then(|operand| {
            if operand == Operand::CurrentUser && target != USER_ENTITY {
                let found = "[%CurrentUser%] (a System.User)".to_owned();
                let kind = ConstraintErrorKind::TypeMismatch {
                    member: format!("`{member}` (to {target})"),
                    expected: ValueType::Reference,
                    found,
                };
                self.error(span, kind);
                return None;
            }
            Some(operand)
        })
    }

    /// A literal as a value of the member's type, or an error naming both.
    fn operand(
        &mut self,
        member: &str,
        value_type: ValueType,
        attribute_type: Option<&AttributeType>,
        op: CompareOp,
        literal: &Literal,
        span: Span,
    ) -> Option<Operand> {
        let member_text = format!("`{member}`");
        let ordered = matches!(
            value_type,
            ValueType::String | ValueType::Integer | ValueType::Decimal | ValueType::DateTime
        );
        let is_equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
        if !ordered && !is_equality {
            self.error(
                span,
                ConstraintErrorKind::NotOrdered { member: member_text, value_type, op },
            );
            return None;
        }
        let mismatch = |found: &str| ConstraintErrorKind::TypeMismatch {
            member: member_text.clone(),
            expected: value_type,
            found: found.to_owned(),
        };
        let bad = |problem: String| ConstraintErrorKind::BadLiteral {
            member: member_text.clone(),
            expected: value_type,
            problem,
        };
        let result = match literal {
            Literal::Empty if is_equality => Ok(Operand::Value(Value::Empty)),
            Literal::Empty => Err(ConstraintErrorKind::OrderedEmpty),
            Literal::Token(name) => match (name.as_str(), value_type) {
                ("CurrentUser", ValueType::Reference) => Ok(Operand::CurrentUser),
                (time, ValueType::DateTime) if time_token(time).is_some() => {
                    Ok(Operand::Time(time_token(time).expect("just matched")))
                }
                (role, _) if role.starts_with("UserRole_") => {
                    Err(ConstraintErrorKind::RoleCompared { role: role["UserRole_".len()..].to_owned() })
                }
                (other, _) if other == "CurrentUser" || time_token(other).is_some() => {
                    Err(mismatch(&format!("[%{other}%]")))
                }
                (other, _) => Err(ConstraintErrorKind::UnknownToken { name: other.to_owned() }),
            },
            Literal::Parameter(name) => match self.parameters.get(name) {
                None => Err(ConstraintErrorKind::UnknownParameter {
                    name: name.clone(),
                    declared: self.parameters.keys().cloned().collect(),
                }),
                Some(declared)
                    if *declared == value_type
                        || (*declared == ValueType::String && value_type == ValueType::Enumeration) =>
                {
                    let scale = match attribute_type {
                        Some(AttributeType::Decimal { scale }) => Some(*scale),
                        _ => None,
                    };
                    Ok(Operand::Parameter { name: name.clone(), value_type, scale })
                }
                Some(declared) => Err(mismatch(&format!("${name} ({declared})"))),
            },
            Literal::Bool(flag) if value_type == ValueType::Boolean => Ok(Operand::Value(Value::Boolean(*flag))),
            Literal::Bool(flag) => Err(mismatch(&format!("{flag}()"))),
            Literal::Text(text) => match (value_type, attribute_type) {
                _ if text.contains('\0') => Err(bad("the text contains a NUL character".to_owned())),
                (ValueType::String, _) => Ok(Operand::Value(Value::String(text.clone()))),
                (ValueType::Enumeration, Some(AttributeType::Enumeration { values })) => {
                    if values.contains(text) {
                        Ok(Operand::Value(Value::Enumeration(text.clone())))
                    } else {
                        Err(bad(format!("'{text}' is not one of {}", values.join(", "))))
                    }
                }
                (ValueType::DateTime, _) => Timestamp::parse(text)
                    .map(|t| Operand::Value(Value::DateTime(t)))
                    .ok_or_else(|| bad(format!("'{text}' is not a UTC date-time such as 2026-01-31T08:00:00Z"))),
                (ValueType::Reference, _) => ObjectId::parse(text)
                    .map(|id| Operand::Value(Value::Reference(id)))
                    .ok_or_else(|| bad(format!("'{text}' is not an object id"))),
                _ => Err(mismatch("a string")),
            },
            Literal::Number(number) => match (value_type, attribute_type) {
                (ValueType::Integer, _) => number
                    .parse::<i64>()
                    .map(|i| Operand::Value(Value::Integer(i)))
                    .map_err(|_| bad(format!("{number} is not a 64-bit integer"))),
                (ValueType::Decimal, Some(AttributeType::Decimal { scale })) => Decimal::parse(number, *scale)
                    .map(|d| Operand::Value(Value::Decimal(d)))
                    .ok_or_else(|| bad(format!("{number} does not fit: at most {scale} fractional digits and {} digits in all", ferry_model::DECIMAL_PRECISION_MAX))),
                _ => Err(mismatch("a number")),
            },
        };
        match result {
            Ok(operand) => Some(operand),
            Err(kind) => {
                self.error(span, kind);
                None
            }
        }
    }

    fn text_function(
        &mut self,
        entity: &'m Entity,
        name: &str,
        name_span: Span,
        path: &Path,
        needle: &SyntaxOperand,
    ) -> Predicate<Operand> {
        let function = match name {
            "contains" => TextFunction::Contains,
            "starts-with" => TextFunction::StartsWith,
            _ => TextFunction::EndsWith,
        };
        let needle = match needle {
            SyntaxOperand::Literal(Literal::Text(text), _) if !text.contains('\0') => {
                text.to_ascii_lowercase()
            }
            _ => {
                return self.error(
                    name_span,
                    ConstraintErrorKind::BadFunctionArgument { function: function.name() },
                );
            }
        };
        self.walk(entity, &path.steps, &mut |checker, entity, step| {
            let attribute = step.and_then(|step| Some((step, entity.attribute(&step.name)?)));
            match attribute {
                Some((_, (index, attribute)))
                    if matches!(attribute.attribute_type, AttributeType::String { .. }) =>
                {
                    let slot = entity.slot(ferry_model::MemberRef::Attribute(index));
                    Predicate::Text { function, slot, needle: needle.clone() }
                }
                Some((step, _)) => checker.error(
                    step.span,
                    ConstraintErrorKind::BadFunctionArgument { function: function.name() },
                ),
                None => match step {
                    Some(step) => {
                        let kind = ConstraintErrorKind::UnknownMember {
                            entity: entity.name.clone(),
                            member: step.name.clone(),
                        };
                        checker.error(step.span, kind)
                    }
                    None => checker.error(
                        name_span,
                        ConstraintErrorKind::BadFunctionArgument { function: function.name() },
                    ),
                },
            }
        })
    }
}

fn time_token(name: &str) -> Option<TimeToken> {
    Some(match name {
        "CurrentDateTime" => TimeToken::CurrentDateTime,
        "BeginOfCurrentDay" => TimeToken::BeginOfCurrentDay,
        "BeginOfTomorrow" => TimeToken::BeginOfTomorrow,
        "BeginOfYesterday" => TimeToken::BeginOfYesterday,
        _ => return None,
    })
}

fn path_text(path: &Path) -> String {
    path.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join("/")
}
