//! Objects in the app: created, changed, committed, rolled back and deleted. Changes live in
//! the [`Object`] until [`Database::commit`] writes them; the database records which committed
//! members are dirty (not yet uploaded) so a sync sends only those.

use std::collections::BTreeSet;

use ferry_model::{
    AttributeType, DELETE_CASCADE_OBJECTS_MAX, DeleteBehaviour, Entity, EntityName, MemberRef,
    ObjectId, Slot, Value, ValueType,
};
use ferry_sql::{Dialect, Side, insert_statement, param, table_name, update_statement};
use rusqlite::OptionalExtension as _;

use crate::ClientError;
use crate::database::{Database, id_param, to_sql};

/// An object as the app holds it: its committed values and its current (possibly uncommitted) ones.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    entity: EntityName,
    id: ObjectId,
    /// The values in the database; `None` until the object is first committed.
    committed: Option<Vec<Value>>,
    values: Vec<Value>,
    deleted: bool,
}

impl Object {
    pub(crate) fn from_database(entity: EntityName, id: ObjectId, values: Vec<Value>) -> Object {
        Object { entity, id, committed: Some(values.clone()), values, deleted: false }
    }

    /// The object's entity.
    pub fn entity(&self) -> &EntityName {
        &self.entity
    }

    /// The object's id, made on the device when it was created; it never changes.
    pub fn id(&self) -> ObjectId {
        self.id
    }

    /// True when the object has changes not yet committed (or was never committed).
    pub fn is_changed(&self) -> bool {
        self.committed.as_ref() != Some(&self.values)
    }

    /// True once the object was committed at least once.
    pub fn is_committed(&self) -> bool {
        self.committed.is_some()
    }
}

/// Whether deleting an object left something for the server to learn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// It was never committed: nothing happened in the database.
    Discarded,
    /// It was committed but never uploaded: it is gone without a trace.
    Removed,
    /// The server knows it: the deletion is recorded and uploaded with the next sync.
    Recorded,
}

/// What `clear` does with unsynchronised changes of the entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearMode {
    /// Refuse if the entity has unsynchronised changes (nothing is cleared).
    KeepChanges,
    /// Clear anyway: the unsynchronised changes are lost.
    DiscardChanges,
}

/// An entity objects may be made of (not a system entity), by name.
fn entity_of<'m>(model: &'m ferry_model::Model, name: &str) -> Result<&'m Entity, ClientError> {
    model
        .entity(name)
        .filter(|e| e.kind != ferry_model::EntityKind::System)
        .ok_or_else(|| ClientError::UnknownEntity { entity: name.to_owned() })
}

impl Database {
    fn slot(&self, entity: &Entity, member: &str) -> Result<Slot, ClientError> {
        entity.member(member).map(|m| entity.slot(m)).ok_or_else(|| ClientError::UnknownMember {
            entity: entity.name.to_string(),
            member: member.to_owned(),
        })
    }

    /// A new object of `entity` with the model's default values; nothing is written until commit.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ferry-doc-create-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir); std::fs::create_dir_all(&dir).unwrap();
    /// use ferry_client::Database;
    /// use ferry_model::{Value, samples};
    ///
    /// let db = Database::open(dir.join("device.db"), samples::FIELD_SERVICE)?;
    /// let order = db.create("Field.WorkOrder")?;
    /// assert_eq!(db.get_value(&order, "Status")?, &Value::Enumeration("Open".to_owned()));
    /// assert!(!order.is_committed());
    /// # Ok::<(), ferry_client::ClientError>(())
    /// ```
    pub fn create(&self, entity: &str) -> Result<Object, ClientError> {
        let model = self.model();
        let entity = entity_of(&model, entity)?;
        let id = self.ids.new_id(self.clock.now());
        Ok(Object {
            entity: entity.name.clone(),
            id,
            committed: None,
            values: entity.default_values(),
            deleted: false,
        })
    }

    /// A new object with a given id: for an app that keeps its uncommitted objects elsewhere
    /// between runs (the command line keeps them in a file) and makes them again. The id must be
    /// one [`Database::create`] gave; an id the device already holds is refused.
    pub fn create_with_id(&self, entity: &str, id: ObjectId) -> Result<Object, ClientError> {
        let mut object = self.create(entity)?;
        if self.get(entity, id)?.is_some() {
            return Err(ClientError::Exists { entity: entity.to_owned(), id });
        }
        object.id = id;
        Ok(object)
    }

    /// The current value of a member (attribute, or reference as `Value::Reference`).
    pub fn get_value<'o>(
        &self,
        object: &'o Object,
        member: &str,
    ) -> Result<&'o Value, ClientError> {
        let model = self.model();
        let entity = entity_of(&model, object.entity.as_str())?;
        Ok(&object.values[self.slot(entity, member)?.0])
    }

    /// Sets a member in the object (not in the database: see [`Database::commit`]).
    /// The value must have the member's type: strings for strings, an enumeration's declared
    /// values, decimals at most at the attribute's scale, references to objects of the target.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ferry-doc-set-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir); std::fs::create_dir_all(&dir).unwrap();
    /// use ferry_client::{ClientError, Database};
    /// use ferry_model::{Value, samples};
    ///
    /// let db = Database::open(dir.join("device.db"), samples::FIELD_SERVICE)?;
    /// let mut order = db.create("Field.WorkOrder")?;
    /// db.set(&mut order, "Title", Value::String("Fix the pump".to_owned()))?;
    /// let wrong = db.set(&mut order, "Priority", Value::String("high".to_owned()));
    /// assert!(matches!(wrong, Err(ClientError::WrongType { .. })));
    /// # Ok::<(), ClientError>(())
    /// ```
    pub fn set(&self, object: &mut Object, member: &str, value: Value) -> Result<(), ClientError> {
        let model = self.model();
        let entity = entity_of(&model, object.entity.as_str())?;
        let slot = self.slot(entity, member)?;
        if object.deleted {
            return Err(ClientError::Deleted { entity: object.entity.to_string(), id: object.id });
        }
        let value = typed(entity, slot, value)?;
        object.values[slot.0] = value;
        Ok(())
    }

    /// Writes the objects' changes to the database in one transaction: all or none.
    /// Only committed changes are ever uploaded; the objects keep working as before.
    pub fn commit(&self, objects: &mut [&mut Object]) -> Result<(), ClientError> {
        let _turn = self.write_turn();
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        for object in objects.iter() {
            if object.deleted {
                return Err(ClientError::Deleted {
                    entity: object.entity.to_string(),
                    id: object.id,
                });
            }
            let model = self.model();
            let entity = entity_of(&model, object.entity.as_str())?;
            check_rules(entity, object)?;
            match &object.committed {
                None => {
                    let mut params = vec![id_param(object.id)];
                    params.extend(object.values.iter().map(|v| to_sql(&param(v, Dialect::Sqlite))));
                    params.push(rusqlite::types::Value::Integer(0));
                    transaction.execute(
                        &insert_statement(entity, Dialect::Sqlite, Side::Device),
                        rusqlite::params_from_iter(params),
                    )?;
                    let members: Vec<&str> =
                        (0..entity.member_count()).map(|s| entity.member_name(Slot(s))).collect();
                    mark_dirty(&transaction, entity, object.id, "create", &members, None)?;
                }
                Some(committed) => {
                    let changed: Vec<Slot> = (0..entity.member_count())
                        .map(Slot)
                        .filter(|s| committed[s.0] != object.values[s.0])
                        .collect();
                    if changed.is_empty() {
                        continue;
                    }
                    let mut params: Vec<rusqlite::types::Value> = changed
                        .iter()
                        .map(|s| to_sql(&param(&object.values[s.0], Dialect::Sqlite)))
                        .collect();
                    params.push(id_param(object.id));
                    transaction.execute(
                        &update_statement(entity, &changed, Dialect::Sqlite, Side::Device),
                        rusqlite::params_from_iter(params),
                    )?;
                    let members: Vec<&str> =
                        changed.iter().map(|s| entity.member_name(*s)).collect();
                    mark_dirty(&transaction, entity, object.id, "update", &members, None)?;
                }
            }
        }
        transaction.commit()?;
        drop(connection);
        for object in objects.iter_mut() {
            object.committed = Some(object.values.clone());
        }
        self.changed_objects(objects.iter().map(|o| (o.entity.as_str(), o.id)), true);
        Ok(())
    }

    /// Returns the object to its last committed state (a new object to its defaults).
    pub fn rollback(&self, object: &mut Object) -> Result<(), ClientError> {
        let model = self.model();
        let entity = entity_of(&model, object.entity.as_str())?;
        object.values = object.committed.clone().unwrap_or_else(|| entity.default_values());
        Ok(())
    }

    /// Deletes the object on the device, and records the deletion when the server knows it.
    /// The model's delete behaviour for the associations pointing at it holds on the device as
    /// on the server: referring objects here have their reference cleared, are deleted too, or
    /// make the deletion refused ([`ClientError::DeleteRefused`], and nothing changes).
    pub fn delete(&self, object: &mut Object) -> Result<Deletion, ClientError> {
        if object.committed.is_none() {
            object.deleted = true;
            return Ok(Deletion::Discarded);
        }
        let model = self.model();
        let entity = entity_of(&model, object.entity.as_str())?;
        let _turn = self.write_turn();
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let followed = follow_delete_behaviour(&transaction, &model, entity, object.id)?;
        for (owner, referrer) in &followed {
            delete_row(&transaction, owner, *referrer)?;
        }
        let deletion = delete_row(&transaction, entity, object.id)?;
        transaction.commit()?;
        drop(connection);
        object.deleted = true;
        let owners = followed.iter().map(|(owner, id)| (owner.name.as_str(), *id));
        self.changed_objects(owners.chain([(entity.name.as_str(), object.id)]), true);
        Ok(deletion)
    }

    /// Removes every object of `entity` from the device only (nothing is deleted on the server).
    pub fn clear(&self, entity: &str, mode: ClearMode) -> Result<usize, ClientError> {
        let model = self.model();
        let entity = entity_of(&model, entity)?;
        let _turn = self.write_turn();
        let mut connection = self.lock();
        let transaction = connection.transaction()?;
        let dirty: i64 = transaction.query_row(
            "SELECT count(*) FROM ferry_dirty WHERE entity = ?1",
            [entity.name.as_str()],
            |row| row.get(0),
        )?;
        if dirty > 0 && mode == ClearMode::KeepChanges {
            return Err(ClientError::UnsyncedChanges {
                entity: entity.name.to_string(),
                count: dirty as usize,
            });
        }
        crate::database::Removed::remember_cleared(&transaction, entity)?;
        let removed = transaction.execute(&format!("DELETE FROM {}", table_name(entity)), [])?;
        transaction.execute("DELETE FROM ferry_dirty WHERE entity = ?1", [entity.name.as_str()])?;
        crate::database::Checkpoints::forget(&transaction, &entity.name)?;
        transaction.commit()?;
        drop(connection);
        self.changed([entity.name.as_str()], false);
        Ok(removed)
    }

    /// How many objects have committed changes not yet uploaded.
    pub fn pending_changes(&self) -> Result<usize, ClientError> {
        let count: i64 =
            self.lock().query_row("SELECT count(*) FROM ferry_dirty", [], |row| row.get(0))?;
        Ok(count as usize)
    }
}

/// Follows the delete behaviour of the associations pointing at the object being deleted, over
/// the objects on the device: clears references, or refuses; gives the objects to delete with
/// it (and with them, by their own associations), at most [`DELETE_CASCADE_OBJECTS_MAX`].
fn follow_delete_behaviour<'m>(
    transaction: &rusqlite::Transaction<'_>,
    model: &'m ferry_model::Model,
    entity: &'m Entity,
    id: ObjectId,
) -> Result<Vec<(&'m Entity, ObjectId)>, ClientError> {
    let mut reached = BTreeSet::from([id]);
    let mut cascade = Vec::new();
    let mut work = vec![(entity, id)];
    while let Some((target_entity, target)) = work.pop() {
        for (owner, association) in model.associations_to(&target_entity.name) {
            if owner.kind == ferry_model::EntityKind::System {
                continue;
            }
            let slot =
                owner.slot(owner.member(&association.name).expect("the owner's association"));
            let column = ferry_sql::column_name(owner, slot);
            let table = table_name(owner);
            let mut statement =
                transaction.prepare(&format!("SELECT id FROM {table} WHERE {column} = ?1"))?;
            let found: Vec<ObjectId> = statement
                .query_map([id_param(target)], |row| row.get::<_, Vec<u8>>(0))?
                .filter_map(|row| row.ok().and_then(crate::database::id_from_blob))
                .filter(|referrer| !reached.contains(referrer))
                .collect();
            if found.is_empty() {
                continue;
            }
            match association.on_delete {
                DeleteBehaviour::Refuse => {
                    return Err(ClientError::DeleteRefused {
                        entity: target_entity.name.to_string(),
                        id: target,
                        referrers: found.len(),
                        referrer_entity: owner.name.to_string(),
                        association: association.name.clone(),
                    });
                }
                // Here as the server will: the server clears its copies when it applies the
                // deletion, and the next download brings them.
                DeleteBehaviour::Clear => {
                    transaction.execute(
                        &format!("UPDATE {table} SET {column} = NULL WHERE {column} = ?1"),
                        [id_param(target)],
                    )?;
                }
                DeleteBehaviour::Delete => {
                    if cascade.len() + found.len() > DELETE_CASCADE_OBJECTS_MAX {
                        return Err(ClientError::DeleteTooLarge {
                            entity: entity.name.to_string(),
                            id,
                            max: DELETE_CASCADE_OBJECTS_MAX,
                        });
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
    Ok(cascade)
}

/// Deletes one object's row, and records the deletion when the server knows the object.
fn delete_row(
    transaction: &rusqlite::Transaction<'_>,
    entity: &Entity,
    id: ObjectId,
) -> Result<Deletion, ClientError> {
    let dirty: Option<String> = transaction
        .query_row(
            "SELECT kind FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2",
            rusqlite::params![entity.name.as_str(), id_param(id)],
            |row| row.get(0),
        )
        .optional()?;
    let revision: i64 = transaction.query_row(
        &format!("SELECT _rev FROM {} WHERE id = ?1", table_name(entity)),
        [id_param(id)],
        |row| row.get(0),
    )?;
    transaction
        .execute(&format!("DELETE FROM {} WHERE id = ?1", table_name(entity)), [id_param(id)])?;
    if dirty.as_deref() == Some("create") {
        transaction.execute(
            "DELETE FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2",
            rusqlite::params![entity.name.as_str(), id_param(id)],
        )?;
        return Ok(Deletion::Removed);
    }
    transaction.execute(
        "INSERT INTO ferry_dirty (entity, object_id, kind, members, base_revision) VALUES (?1, ?2, 'delete', '', ?3) \
         ON CONFLICT (entity, object_id) DO UPDATE SET kind = 'delete', members = '', base_revision = excluded.base_revision",
        rusqlite::params![entity.name.as_str(), id_param(id), revision],
    )?;
    Ok(Deletion::Recorded)
}

/// The model's validation rules on what a commit writes: every attribute of a new object, the
/// changed attributes of a committed one (the others are as the server has them, and the
/// device may not even see them all). `unique` needs the server's data and is left to it.
fn check_rules(entity: &Entity, object: &Object) -> Result<(), ClientError> {
    let changed: Option<Vec<Slot>> = object.committed.as_ref().map(|committed| {
        (0..entity.member_count())
            .map(Slot)
            .filter(|s| committed[s.0] != object.values[s.0])
            .collect()
    });
    entity.check_rules(&object.values, changed.as_deref()).map_err(|rule| ClientError::Validation {
        entity: entity.name.to_string(),
        id: object.id,
        rule: Box::new(rule),
    })
}

/// An object's dirty record: the kind of change and the changed members (comma-separated).
pub(crate) fn dirty_record(
    connection: &rusqlite::Connection,
    entity: &Entity,
    id: ObjectId,
) -> Result<Option<(String, String)>, rusqlite::Error> {
    connection
        .query_row(
            "SELECT kind, members FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2",
            rusqlite::params![entity.name.as_str(), id_param(id)],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
}

/// Records committed changes: a new object stays a creation; an update adds its members.
fn mark_dirty(
    transaction: &rusqlite::Transaction<'_>,
    entity: &Entity,
    id: ObjectId,
    kind: &str,
    members: &[&str],
    base_revision: Option<i64>,
) -> Result<(), ClientError> {
    let existing = dirty_record(transaction, entity, id)?;
    let (kind, members) = match existing {
        Some((existing_kind, existing_members)) => {
            let mut all: BTreeSet<&str> =
                existing_members.split(',').filter(|m| !m.is_empty()).collect();
            all.extend(members.iter().copied());
            (existing_kind, all.into_iter().collect::<Vec<_>>().join(","))
        }
        None => (kind.to_owned(), members.join(",")),
    };
    let revision: Option<i64> = match base_revision {
        Some(revision) => Some(revision),
        None => transaction.query_row(
            &format!("SELECT _rev FROM {} WHERE id = ?1", table_name(entity)),
            [id_param(id)],
            |row| row.get(0),
        )?,
    };
    transaction.execute(
        "INSERT INTO ferry_dirty (entity, object_id, kind, members, base_revision) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (entity, object_id) DO UPDATE SET kind = excluded.kind, members = excluded.members",
        rusqlite::params![entity.name.as_str(), id_param(id), kind, members, revision],
    )?;
    Ok(())
}

/// `value` checked against the member's type (and an enumeration's values, a decimal's scale).
fn typed(entity: &Entity, slot: Slot, value: Value) -> Result<Value, ClientError> {
    let wrong = |expected: ValueType| ClientError::WrongType {
        entity: entity.name.to_string(),
        member: entity.member_name(slot).to_owned(),
        expected,
    };
    let attribute_type = match entity.member_at(slot) {
        MemberRef::Association(_) => {
            return match value {
                Value::Empty | Value::Reference(_) => Ok(value),
                _ => Err(wrong(ValueType::Reference)),
            };
        }
        MemberRef::Attribute(index) => &entity.attributes[index].attribute_type,
    };
    match (attribute_type, value) {
        (_, Value::Empty) => Ok(Value::Empty),
        (AttributeType::String { .. }, Value::String(text)) if !text.contains('\0') => {
            Ok(Value::String(text))
        }
        (AttributeType::Enumeration { values }, Value::Enumeration(text) | Value::String(text))
            if values.contains(&text) =>
        {
            Ok(Value::Enumeration(text))
        }
        (AttributeType::Integer, Value::Integer(i)) => Ok(Value::Integer(i)),
        (AttributeType::Decimal { scale }, Value::Decimal(d)) => {
            d.rescale(*scale).map(Value::Decimal).ok_or_else(|| wrong(ValueType::Decimal))
        }
        (AttributeType::Boolean, Value::Boolean(b)) => Ok(Value::Boolean(b)),
        (AttributeType::DateTime, Value::DateTime(t)) => Ok(Value::DateTime(t)),
        (AttributeType::Binary, Value::Binary(bytes)) => Ok(Value::Binary(bytes)),
        (other, _) => Err(wrong(other.value_type())),
    }
}
