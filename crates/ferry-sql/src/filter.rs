//! A bound constraint compiled to a parameterised `WHERE` expression with the same meaning as
//! in-memory evaluation: NULL-safe `=`/`!=`, orderings false on empty, ASCII-only case folding.
//!
//! Paths become uncorrelated `IN` subqueries, so each is computed once:
//! forward `t0.ref IN (SELECT t1.id FROM target t1 WHERE …)`, reverse
//! `t0.id IN (SELECT t1.ref FROM owner t1 WHERE t1.ref IS NOT NULL AND …)`.
//! Every atom is true, false or NULL only where its member is empty, and NULL behaves as false
//! except under `NOT`, so each `NOT` wraps its operand in `COALESCE(…, FALSE)`.

use ferry_constraint::{Bound, CompareOp, Hop, Predicate, TextFunction};
use ferry_model::{Entity, Model, Value, ValueType};

use crate::param::{Param, param, placeholder};
use crate::schema::{column_name, slot_value_type, table_name};
use crate::{Dialect, quote};

/// SQL text and the parameters its placeholders refer to, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

/// Compiles `bound` for rows of its entity named `alias` in the enclosing query. Placeholders
/// are numbered from `first_param` (1 unless the caller binds others before).
pub fn compile_where(
    model: &Model,
    bound: &Bound,
    alias: &str,
    dialect: Dialect,
    first_param: usize,
) -> Sql {
    let entity =
        model.entity(bound.entity.as_str()).expect("the constraint was checked against this model");
    let mut compiler = Compiler { model, dialect, params: Vec::new(), first_param, depth: 0 };
    let text = compiler.predicate(entity, &quote(alias), &bound.predicate);
    Sql { text, params: compiler.params }
}

struct Compiler<'m> {
    model: &'m Model,
    dialect: Dialect,
    params: Vec<Param>,
    first_param: usize,
    depth: usize,
}

impl<'m> Compiler<'m> {
    fn bind(&mut self, value: &Value, value_type: ValueType) -> String {
        self.params.push(param(value, self.dialect));
        placeholder(self.first_param + self.params.len() - 1, value_type, self.dialect)
    }

    fn boolean(&self, value: bool) -> &'static str {
        match (self.dialect, value) {
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
            (Dialect::Postgres, true) => "TRUE",
            (Dialect::Postgres, false) => "FALSE",
        }
    }

    fn predicate(
        &mut self,
        entity: &'m Entity,
        alias: &str,
        predicate: &Predicate<Value>,
    ) -> String {
        match predicate {
            Predicate::Const(value) => self.boolean(*value).to_owned(),
            Predicate::Flag(value) => {
                self.boolean(matches!(value, Value::Boolean(true))).to_owned()
            }
            Predicate::And(items) => self.join(entity, alias, items, " AND ", true),
            Predicate::Or(items) => self.join(entity, alias, items, " OR ", false),
            Predicate::Not(inner) => {
                let inner = self.predicate(entity, alias, inner);
                format!("NOT COALESCE({inner}, {})", self.boolean(false))
            }
            Predicate::Compare { slot, op, value } => {
                let column = format!("{alias}.{}", column_name(entity, *slot));
                let value_type = slot_value_type(entity, *slot);
                self.compare(&column, value_type, *op, value)
            }
            Predicate::CompareId { op, value } => {
                self.compare(&format!("{alias}.id"), ValueType::Reference, *op, value)
            }
            Predicate::Text { function, slot, needle } => {
                let column = format!("lower({alias}.{})", column_name(entity, *slot));
                self.text(&column, *function, needle)
            }
            Predicate::Exists { hop, filter } => self.exists(entity, alias, hop, filter),
        }
    }

    fn join(
        &mut self,
        entity: &'m Entity,
        alias: &str,
        items: &[Predicate<Value>],
        separator: &str,
        empty: bool,
    ) -> String {
        if items.is_empty() {
            return self.boolean(empty).to_owned();
        }
        let parts: Vec<String> =
            items.iter().map(|item| self.predicate(entity, alias, item)).collect();
        format!("({})", parts.join(separator))
    }

    fn compare(
        &mut self,
        column: &str,
        value_type: ValueType,
        op: CompareOp,
        value: &Value,
    ) -> String {
        if value.is_empty() {
            return match op {
                CompareOp::Eq => format!("{column} IS NULL"),
                CompareOp::Ne => format!("{column} IS NOT NULL"),
                _ => self.boolean(false).to_owned(),
            };
        }
        let placeholder = self.bind(value, value_type);
        match op {
            CompareOp::Ne => format!("({column} <> {placeholder} OR {column} IS NULL)"),
            op => format!("{column} {} {placeholder}", sql_operator(op)),
        }
    }

    fn text(&mut self, column: &str, function: TextFunction, needle: &str) -> String {
        if needle.is_empty() {
            // Every string contains, starts and ends with the empty string; empty holds none.
            return format!("{column} IS NOT NULL");
        }
        let needle_value = Value::String(needle.to_owned());
        let p = self.bind(&needle_value, ValueType::String);
        match (self.dialect, function) {
            (Dialect::Sqlite, TextFunction::Contains) => format!("instr({column}, {p}) > 0"),
            (Dialect::Postgres, TextFunction::Contains) => format!("strpos({column}, {p}) > 0"),
            (Dialect::Sqlite, TextFunction::StartsWith) => {
                format!("substr({column}, 1, length({p})) = {p}")
            }
            (Dialect::Postgres, TextFunction::StartsWith) => {
                format!("left({column}, length({p})) = {p}")
            }
            (Dialect::Sqlite, TextFunction::EndsWith) => {
                format!(
                    "(length({column}) >= length({p}) AND substr({column}, -length({p})) = {p})"
                )
            }
            (Dialect::Postgres, TextFunction::EndsWith) => {
                format!("right({column}, length({p})) = {p}")
            }
        }
    }

    fn exists(
        &mut self,
        entity: &'m Entity,
        alias: &str,
        hop: &Hop,
        filter: &Predicate<Value>,
    ) -> String {
        self.depth += 1;
        let inner_alias = format!("t{}", self.depth);
        let model = self.model;
        match hop {
            Hop::Forward { slot, target } => {
                let target = model.entity(target.as_str()).expect("checked path");
                let condition = self.predicate(target, &inner_alias, filter);
                format!(
                    "{alias}.{} IN (SELECT {inner_alias}.id FROM {} {inner_alias} WHERE {condition})",
                    column_name(entity, *slot),
                    table_name(target),
                )
            }
            Hop::Reverse { owner, slot } => {
                let owner = model.entity(owner.as_str()).expect("checked path");
                let reference = format!("{inner_alias}.{}", column_name(owner, *slot));
                let condition = self.predicate(owner, &inner_alias, filter);
                format!(
                    "{alias}.id IN (SELECT {reference} FROM {} {inner_alias} WHERE {reference} IS NOT NULL AND {condition})",
                    table_name(owner),
                )
            }
        }
    }
}

fn sql_operator(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "=",
        CompareOp::Ne => "<>",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
    }
}
