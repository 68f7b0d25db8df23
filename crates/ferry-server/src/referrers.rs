//! What deleting an object does to the objects that refer to it, by each association's delete
//! behaviour: their reference is cleared (a change devices download), they are deleted too
//! (with tombstones, and what refers to them in turn), or the deletion is refused while they
//! exist. The model says what goes with an object, so this runs with the server's rights.

use std::collections::BTreeSet;

use ferry_model::{
    DELETE_CASCADE_OBJECTS_MAX, DeleteBehaviour, Entity, ObjectId, Value, ValueType,
};
use ferry_sql::{column_name, param, placeholder, table_name};

use crate::State;
use crate::store::{StoreError, Tx};

/// Follows the delete behaviour of every association pointing at `entity` for the deletion of
/// `id`, before the object itself is removed: `Ok(Err(reason))` when the deletion is refused
/// (and then nothing was changed that the caller's savepoint does not roll back). Objects in
/// `deleted_too` are being deleted by the same request and count as gone.
pub(crate) async fn before_delete(
    state: &State,
    tx: &mut Tx<'_>,
    entity: &Entity,
    id: ObjectId,
    deleted_too: &BTreeSet<ObjectId>,
) -> Result<Result<(), String>, StoreError> {
    let model = &state.model;
    let mut reached = BTreeSet::from([id]);
    // Referring objects cleared or deleted so far, within `DELETE_CASCADE_OBJECTS_MAX`.
    let mut reached_count = 0;
    let mut cascade: Vec<(&Entity, ObjectId)> = Vec::new();
    let mut work = vec![(entity, id)];
    while let Some((target_entity, target)) = work.pop() {
        for (owner, association) in model.associations_to(&target_entity.name) {
            let found = referring(state, tx, owner, &association.name, target).await?;
            let found: Vec<ObjectId> = found
                .into_iter()
                .filter(|r| !deleted_too.contains(r) && !reached.contains(r))
                .collect();
            if found.is_empty() {
                continue;
            }
            match association.on_delete {
                DeleteBehaviour::Refuse => {
                    return Ok(Err(format!(
                        "delete: {} `{}` objects refer to `{}` {target} through `{}`, which refuses its deletion while any does",
                        found.len(),
                        owner.name,
                        target_entity.name,
                        association.name
                    )));
                }
                DeleteBehaviour::Clear => {
                    reached_count += found.len();
                    if reached_count > DELETE_CASCADE_OBJECTS_MAX {
                        return Ok(Err(too_many(entity, id)));
                    }
                    let first = tx.take_sequence(found.len() as i64).await?;
                    tx.changed(owner.name.as_str());
                    for (seq, referrer) in (first..).zip(found) {
                        clear(tx, owner, &association.name, referrer, seq).await?;
                    }
                }
                DeleteBehaviour::Delete => {
                    reached_count += found.len();
                    if reached_count > DELETE_CASCADE_OBJECTS_MAX {
                        return Ok(Err(too_many(entity, id)));
                    }
                    for referrer in found {
                        reached.insert(referrer);
                        cascade.push((owner, referrer));
                        work.push((owner, referrer));
                    }
                }
            }
        }
    }
    if cascade.is_empty() {
        return Ok(Ok(()));
    }
    let first = tx.take_sequence(cascade.len() as i64).await?;
    for (seq, (owner, referrer)) in (first..).zip(cascade) {
        tx.changed(owner.name.as_str());
        crate::upload::remove_object(state, tx, owner, referrer, seq).await?;
    }
    Ok(Ok(()))
}

fn too_many(entity: &Entity, id: ObjectId) -> String {
    format!(
        "delete: `{}` {id} would change or take more than {DELETE_CASCADE_OBJECTS_MAX} referring objects with it",
        entity.name
    )
}

/// The objects of `owner` whose `association` points at `target`.
async fn referring(
    state: &State,
    tx: &mut Tx<'_>,
    owner: &Entity,
    association: &str,
    target: ObjectId,
) -> Result<Vec<ObjectId>, StoreError> {
    let dialect = tx.dialect();
    let slot = owner.slot(owner.member(association).expect("an association of the owner"));
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = {}",
        ferry_sql::select_id(&table_name(owner), dialect),
        table_name(owner),
        column_name(owner, slot),
        placeholder(1, ValueType::Reference, dialect)
    );
    let rows = tx.query(&sql, &[param(&Value::Reference(target), dialect)]).await?;
    rows.iter().map(|row| crate::auth::read_id(state, &row[0])).collect()
}

/// Empties `association` of the `owner` object `id`, as a change of its own: a new revision
/// and a position in the change sequence, so devices download it.
async fn clear(
    tx: &mut Tx<'_>,
    owner: &Entity,
    association: &str,
    id: ObjectId,
    seq: i64,
) -> Result<(), StoreError> {
    let dialect = tx.dialect();
    let slot = owner.slot(owner.member(association).expect("an association of the owner"));
    let sql = format!(
        "UPDATE {} SET {} = NULL, _rev = _rev + 1, _seq = {} WHERE id = {}",
        table_name(owner),
        column_name(owner, slot),
        placeholder(1, ValueType::Integer, dialect),
        placeholder(2, ValueType::Reference, dialect)
    );
    tx.execute(&sql, &[ferry_sql::Param::Int(seq), param(&Value::Reference(id), dialect)]).await?;
    Ok(())
}
