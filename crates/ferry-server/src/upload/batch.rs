//! New objects checked without a write per object: when every rule of the user on an entity is
//! unconstrained (so access does not depend on the stored object), the facts the checks need
//! (which ids exist, which were deleted, which unique values are taken) are read in a few
//! queries up front, each object is decided in memory, and the accepted ones are written with
//! multi-row inserts (`COPY` on PostgreSQL). The outcome is the same as applying them one by one.

use std::collections::{BTreeMap, BTreeSet};

use ferry_model::{EntityName, MemberRef, ObjectId, Slot, Value, ValueType};
use ferry_protocol::{AppliedRef, ChangeKind};
use ferry_sql::{
    Param, Side, insert_rows_statement, param, placeholder, read_value, select_column, table_name,
};

use super::{CheckedChange, Rejection};
use crate::State;
use crate::access::UserRules;
use crate::auth::User;
use crate::handlers::ObjectState;
use crate::store::{StoreError, Tx};

/// Ids and values in one `IN (…)` list (SQLite; PostgreSQL takes one array).
const IN_LIST_MAX: usize = 500;
/// Bind parameters in one multi-row insert: both backends accept far more, but PostgreSQL plans
/// statements of about this size fastest (measured with `ferry bench`).
const INSERT_PARAMS_MAX: usize = 4_000;

/// What the checks of new objects need to know about the database and about this upload.
#[derive(Default)]
pub(crate) struct Facts {
    /// Objects that exist: on the server before the upload, or created earlier in it.
    existing: BTreeSet<(EntityName, ObjectId)>,
    tombstoned: BTreeSet<(EntityName, ObjectId)>,
    /// Values of unique attributes already taken, in their canonical text form.
    taken: BTreeMap<(EntityName, Slot), BTreeSet<String>>,
}

impl Facts {
    pub(crate) fn created(&mut self, entity: &EntityName, id: ObjectId) {
        self.existing.insert((entity.clone(), id));
    }
}

/// True when a create of `change` can be decided in memory: some rule of the user may create
/// the entity, none of the user's rules on it has a constraint, and it is not a file entity
/// (whose contents are checked one by one).
pub(crate) fn batchable(change: &CheckedChange<'_>, rules: &UserRules<'_>) -> bool {
    change.kind == ChangeKind::Create
        && change.entity.kind != ferry_model::EntityKind::File
        && rules.rules.iter().any(|(rule, _)| rule.create)
        && rules.rules.iter().all(|(_, bound)| bound.is_none())
}

/// Reads the facts the batchable creates need, in a few queries per entity.
pub(crate) async fn prefetch(
    state: &State,
    tx: &mut Tx<'_>,
    creates: &[&CheckedChange<'_>],
) -> Result<Facts, StoreError> {
    let mut ids: BTreeMap<EntityName, BTreeSet<ObjectId>> = BTreeMap::new();
    let mut own: BTreeMap<EntityName, BTreeSet<ObjectId>> = BTreeMap::new();
    let mut unique: BTreeMap<(EntityName, Slot), Vec<Value>> = BTreeMap::new();
    for change in creates {
        let entity = change.entity;
        ids.entry(entity.name.clone()).or_default().insert(change.id);
        own.entry(entity.name.clone()).or_default().insert(change.id);
        for (slot, value) in &change.values {
            match entity.member_at(*slot) {
                MemberRef::Association(index) => {
                    if let Value::Reference(target) = value {
                        ids.entry(entity.associations[index].target.clone())
                            .or_default()
                            .insert(*target);
                    }
                }
                MemberRef::Attribute(index) => {
                    if entity.attributes[index].rules.unique && !value.is_empty() {
                        unique.entry((entity.name.clone(), *slot)).or_default().push(value.clone());
                    }
                }
            }
        }
    }
    let dialect = tx.dialect();
    let mut facts = Facts::default();
    for (entity_name, entity_ids) in &ids {
        let entity = state.model.entity(entity_name.as_str()).expect("checked entity");
        let values: Vec<Value> = entity_ids.iter().map(|id| Value::Reference(*id)).collect();
        let id_column = ferry_sql::select_id("\"t0\"", dialect);
        let select = |condition: &str| {
            format!("SELECT {id_column} FROM {} \"t0\" WHERE {condition}", table_name(entity))
        };
        for row in
            select_among(tx, "\"t0\".id", &[], &values, ValueType::Reference, &select).await?
        {
            facts.existing.insert((entity_name.clone(), crate::auth::read_id(state, &row[0])?));
        }
    }
    for (entity_name, entity_ids) in &own {
        // The fixed table keeps ids as text on PostgreSQL and as 16 bytes on SQLite.
        let (values, value_type): (Vec<Value>, ValueType) = match dialect {
            ferry_sql::Dialect::Postgres => (
                entity_ids.iter().map(|id| Value::String(id.to_string())).collect(),
                ValueType::String,
            ),
            ferry_sql::Dialect::Sqlite => {
                (entity_ids.iter().map(|id| Value::Reference(*id)).collect(), ValueType::Reference)
            }
        };
        let select = |condition: &str| {
            format!("SELECT object_id FROM ferry_tombstones WHERE entity = $1 AND {condition}")
        };
        let before = [Param::Text(entity_name.to_string())];
        for row in select_among(tx, "object_id", &before, &values, value_type, &select).await? {
            facts.tombstoned.insert((entity_name.clone(), crate::auth::read_id(state, &row[0])?));
        }
    }
    for ((entity_name, slot), values) in &unique {
        let entity = state.model.entity(entity_name.as_str()).expect("checked entity");
        let MemberRef::Attribute(index) = entity.member_at(*slot) else {
            unreachable!("unique applies to attributes")
        };
        let attribute_type = &entity.attributes[index].attribute_type;
        let column = format!("\"t0\".{}", ferry_sql::column_name(entity, *slot));
        let shown = select_column(entity, *slot, "\"t0\"", dialect);
        let select = |condition: &str| {
            format!("SELECT {shown} FROM {} \"t0\" WHERE {condition}", table_name(entity))
        };
        let taken = facts.taken.entry((entity_name.clone(), *slot)).or_default();
        for row in
            select_among(tx, &column, &[], values, attribute_type.value_type(), &select).await?
        {
            let stored = read_value(row[0].clone(), Some(attribute_type), dialect)
                .ok_or_else(|| StoreError::Corrupt(format!("a value of `{}`", entity.name)))?;
            taken.insert(stored.to_string());
        }
    }
    Ok(facts)
}

/// Rows of `select(condition)` where `condition` says that `column` is among `values`: one
/// array parameter on PostgreSQL, lists of [`IN_LIST_MAX`] on SQLite. `before` are parameters
/// the statement numbers first.
async fn select_among(
    tx: &mut Tx<'_>,
    column: &str,
    before: &[Param],
    values: &[Value],
    value_type: ValueType,
    select: &(dyn Fn(&str) -> String + Sync),
) -> Result<Vec<crate::store::Row>, StoreError> {
    let dialect = tx.dialect();
    let first = before.len() + 1;
    if dialect == ferry_sql::Dialect::Postgres {
        let mut params = before.to_vec();
        params.push(ferry_sql::array_param(values));
        return tx
            .query(
                &select(&format!("{column} = {}", ferry_sql::any_of(first, value_type))),
                &params,
            )
            .await;
    }
    let mut rows = Vec::new();
    for chunk in values.chunks(IN_LIST_MAX) {
        let list: Vec<String> =
            (first..first + chunk.len()).map(|i| placeholder(i, value_type, dialect)).collect();
        let mut params = before.to_vec();
        params.extend(chunk.iter().map(|v| param(v, dialect)));
        rows.extend(
            tx.query(&select(&format!("{column} IN ({})", list.join(", "))), &params).await?,
        );
    }
    Ok(rows)
}

/// A new object accepted in memory, waiting to be written.
pub(crate) struct Accepted<'m> {
    pub(crate) entity: &'m ferry_model::Entity,
    pub(crate) id: ObjectId,
    pub(crate) values: Vec<Value>,
    pub(crate) seq: i64,
}

/// Decides one batchable create: `Ok(values)` to write, or `Err(rejection)` to record.
/// The checks and their messages are those of the one-by-one path.
pub(crate) fn decide(
    state: &State,
    user: &User,
    rules: &UserRules<'_>,
    change: &CheckedChange<'_>,
    facts: &mut Facts,
) -> Result<Vec<Value>, Rejection> {
    let entity = change.entity;
    let key = (entity.name.clone(), change.id);
    if facts.existing.contains(&key) {
        let reason = format!("`{}` {} already exists on the server", entity.name, change.id);
        return Err(Rejection::conflict(reason));
    }
    if facts.tombstoned.contains(&key) {
        return Err(Rejection::conflict(format!(
            "`{}` {} was deleted on the server; ids are never reused",
            entity.name, change.id
        )));
    }
    let written: Vec<Slot> = change.values.iter().map(|(slot, _)| *slot).collect();
    let creating = rules.rules.iter().map(|(rule, _)| *rule).filter(|rule| rule.create);
    if let Some(member) = super::unwritable(entity, &written, creating) {
        return Err(Rejection::access(super::not_writable(user, &member, entity)));
    }
    let object = super::changed_object(state, user, change, entity.default_values())
        .map_err(Rejection::handler)?;
    for (index, association) in entity.associations.iter().enumerate() {
        let slot = entity.slot(MemberRef::Association(index));
        if let Value::Reference(target) = &object.values[slot.0]
            && !facts.existing.contains(&(association.target.clone(), *target))
        {
            let reason = super::dangling(entity, change.id, &association.name, *target);
            return Err(Rejection::dangling(reason));
        }
    }
    crate::validate::check_rules(entity, &object.values).map_err(Rejection::validation)?;
    for (index, attribute) in entity.attributes.iter().enumerate().filter(|(_, a)| a.rules.unique) {
        let value = &object.values[index];
        if value.is_empty() {
            continue;
        }
        let taken = facts.taken.entry((entity.name.clone(), Slot(index))).or_default();
        if !taken.insert(value.to_string()) {
            let reason = crate::validate::unique_taken(entity, &attribute.name, value);
            return Err(Rejection::validation(reason));
        }
    }
    facts.created(&entity.name, change.id);
    Ok(object.values)
}

/// The outcome of an accepted create: rules without constraints cover every object, so the
/// readable members are known without reading the object back.
pub(crate) fn outcome_json(rules: &UserRules<'_>, accepted: &Accepted<'_>) -> String {
    let readable: BTreeSet<Slot> =
        rules.rules.iter().flat_map(|(rule, _)| rule.read.iter().copied()).collect();
    let members = readable
        .into_iter()
        .map(|slot| (accepted.entity.member_name(slot), &accepted.values[slot.0]))
        .collect();
    let applied =
        AppliedRef { entity: accepted.entity.name.as_str(), id: accepted.id, revision: 1, members };
    serde_json::to_string(&applied).expect("outcomes serialise")
}

/// Writes the accepted objects with multi-row inserts, then runs their after-apply handlers.
pub(crate) async fn flush(
    state: &State,
    tx: &mut Tx<'_>,
    user: &User,
    pending: &mut Vec<Accepted<'_>>,
) -> Result<(), StoreError> {
    let dialect = tx.dialect();
    let mut by_entity: BTreeMap<&EntityName, Vec<&Accepted<'_>>> = BTreeMap::new();
    for accepted in pending.iter() {
        by_entity.entry(&accepted.entity.name).or_default().push(accepted);
    }
    for objects in by_entity.values() {
        let entity = objects[0].entity;
        if dialect == ferry_sql::Dialect::Postgres {
            let mut data = String::new();
            for accepted in objects {
                ferry_sql::copy_line(accepted.id, &accepted.values, &[1, accepted.seq], &mut data);
            }
            let copied = tx.copy_in(&ferry_sql::copy_statement(entity, Side::Server), data).await;
            copied.expect("PostgreSQL has COPY")?;
            continue;
        }
        let per_row = entity.member_count() + 3;
        for chunk in objects.chunks((INSERT_PARAMS_MAX / per_row).max(1)) {
            let mut params = Vec::with_capacity(chunk.len() * per_row);
            for accepted in chunk {
                params.push(param(&Value::Reference(accepted.id), dialect));
                params.extend(accepted.values.iter().map(|v| param(v, dialect)));
                params.extend([Param::Int(1), Param::Int(accepted.seq)]);
            }
            tx.execute(&insert_rows_statement(entity, dialect, Side::Server, chunk.len()), &params)
                .await?;
        }
    }
    for accepted in pending.iter() {
        let object = ObjectState {
            entity: accepted.entity,
            id: accepted.id,
            values: accepted.values.clone(),
            user: &user.name,
        };
        state.handlers.run_after(&object);
    }
    pending.clear();
    Ok(())
}
