//! Access rules as they apply to one user: which rules of an entity are theirs, and SQL that
//! says, per object, which of those rules cover it. Readable and writable members follow from
//! the covering rules. Evaluating in SQL keeps uploads and downloads on one definition.

use std::collections::BTreeSet;

use ferry_constraint::{Bound, Context};
use ferry_model::{AccessRule, Entity, Slot};
use ferry_sql::{Dialect, Param, compile_where};

use crate::State;
use crate::auth::User;

/// The rules of one entity for one user, with their constraints bound to the user.
pub(crate) struct UserRules<'m> {
    pub(crate) rules: Vec<(&'m AccessRule, Option<Bound>)>,
}

pub(crate) fn context(state: &State, user: &User) -> Context {
    Context {
        user: Some(user.id),
        roles: user.roles.clone(),
        now: state.clock.now(),
        parameters: Default::default(),
    }
}

pub(crate) fn user_rules<'m>(
    state: &'m State,
    entity: &'m Entity,
    user: &User,
    context: &Context,
) -> UserRules<'m> {
    let rules = entity
        .access
        .iter()
        .filter(|rule| user.roles.iter().any(|role| role == rule.role.as_str()))
        .map(|rule| {
            let key = (entity.name.clone(), rule.role.clone());
            let bound =
                state.constraints.access.get(&key).map(|constraint| constraint.bind(context));
            (rule, bound)
        })
        .collect();
    UserRules { rules }
}

pub(crate) fn truth(dialect: Dialect, value: bool) -> &'static str {
    match (dialect, value) {
        (Dialect::Sqlite, true) => "1",
        (Dialect::Sqlite, false) => "0",
        (Dialect::Postgres, true) => "TRUE",
        (Dialect::Postgres, false) => "FALSE",
    }
}

/// A bound predicate as a never-NULL boolean SQL expression over `alias`; params are appended.
pub(crate) fn predicate_sql(
    state: &State,
    bound: Option<&Bound>,
    alias: &str,
    params: &mut Vec<Param>,
) -> String {
    let dialect = state.store.dialect();
    match bound {
        None => truth(dialect, true).to_owned(),
        Some(bound) => {
            let sql = compile_where(&state.model, bound, alias, dialect, params.len() + 1);
            params.extend(sql.params);
            format!("COALESCE({}, {})", sql.text, truth(dialect, false))
        }
    }
}

pub(crate) fn is_true(param: &Param) -> bool {
    matches!(param, Param::Bool(true) | Param::Int(1))
}

impl UserRules<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// One boolean column per rule: whether it covers the row named `alias`.
    pub(crate) fn coverage_columns(
        &self,
        state: &State,
        alias: &str,
        params: &mut Vec<Param>,
    ) -> Vec<String> {
        self.rules
            .iter()
            .map(|(_, bound)| predicate_sql(state, bound.as_ref(), alias, params))
            .collect()
    }

    /// The members readable through the covering rules.
    pub(crate) fn readable(&self, covered: &[Param]) -> BTreeSet<Slot> {
        self.rules
            .iter()
            .zip(covered)
            .filter(|(_, c)| is_true(c))
            .flat_map(|((rule, _), _)| rule.read.iter().copied())
            .collect()
    }

    /// The covering rules themselves.
    pub(crate) fn covering<'a>(
        &'a self,
        covered: &'a [Param],
    ) -> impl Iterator<Item = &'a AccessRule> + 'a {
        self.rules.iter().zip(covered).filter(|(_, c)| is_true(c)).map(|((rule, _), _)| *rule)
    }
}
