//! Applying a download: pages arrive one at a time from the network side and are written as
//! they come into one local transaction on a connection of their own, which commits only when
//! the whole download has arrived. Memory holds a few pages, never the whole download; a
//! download that stops part way (a network failure, a cancellation) is rolled back whole.
//!
//! The transaction takes the database's write lock when it begins, so the set of objects with
//! unsynchronised changes (which downloads leave alone) cannot change under it: an app commit
//! made meanwhile waits for the download to be applied. Reads go on, and see the state before
//! the download until it commits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferry_model::{DownloadBehaviour, Entity, Model, ObjectId, Slot, Value};
use ferry_protocol::{DownloadedObject, value};
use ferry_sql::{Dialect, Side, param};
use ferry_sync::Step;

use super::SyncError;
use crate::ClientError;
use crate::database::{
    Checkpoints, Database, Removed, holds_objects, id_from_blob, id_param, to_sql,
};

/// Pages received but not yet written, at most: the network side waits while this many are
/// queued, which bounds the memory a download takes.
pub const PAGES_IN_FLIGHT: usize = 2;

/// Objects written by one download beyond which the write-ahead log is folded into the database
/// file and truncated after the commit, so a large download does not leave the device holding
/// its pages twice.
pub const WAL_TRUNCATE_OBJECTS: usize = 10_000;

/// What the writer is handed: the download's steps, as the sync core gives them, then the
/// commit.
pub(crate) enum Feed {
    /// A step to write.
    Step(Step),
    /// Every entity arrived: commit.
    Commit,
}

/// What was written: objects downloaded and removed, per entity.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    pub(crate) downloaded: BTreeMap<String, usize>,
    pub(crate) removed: BTreeMap<String, usize>,
}

/// Writes the steps as they arrive; commits at [`Feed::Commit`]. When the sending side stops
/// without it, everything written is rolled back and `Ok(None)` says so.
pub(crate) fn apply_download(
    database: &Database,
    model: &Arc<Model>,
    mut steps: tokio::sync::mpsc::Receiver<Feed>,
) -> Result<Option<Applied>, SyncError> {
    let mut connection = database.open_writer()?;
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut applied = Applied::default();
    let mut current: Option<EntityApply<'_>> = None;
    while let Some(step) = steps.blocking_recv() {
        match step {
            Feed::Step(Step::Begin { entity, full }) => {
                let entity = model
                    .entity(&entity)
                    .ok_or_else(|| ClientError::UnknownEntity { entity: entity.clone() })?;
                current = Some(EntityApply::begin(&transaction, entity, full)?);
            }
            Feed::Step(Step::Page { objects, removed, unchanged }) => {
                let apply = current.as_mut().expect("a page comes after its entity's Begin");
                apply.page(&transaction, &objects, &removed, &unchanged)?;
            }
            Feed::Step(Step::End { checkpoint }) => {
                let apply = current.take().expect("End comes after its entity's Begin");
                let entity = apply.entity;
                let name = entity.name.to_string();
                let (downloaded, removed) = apply.finish(&transaction)?;
                if let Some(checkpoint) = checkpoint {
                    Checkpoints::write(&transaction, &entity.name, &checkpoint)?;
                }
                *applied.downloaded.entry(name.clone()).or_default() += downloaded;
                *applied.removed.entry(name).or_default() += removed;
            }
            Feed::Commit => {
                Removed::forget_oldest(&transaction)?;
                transaction.commit()?;
                if applied.downloaded.values().sum::<usize>() > WAL_TRUNCATE_OBJECTS {
                    connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                }
                return Ok(Some(applied));
            }
        }
    }
    Ok(None)
}

/// One entity's download being written.
struct EntityApply<'m> {
    entity: &'m Entity,
    /// Objects with unsynchronised changes on the device: downloads leave them as they are.
    dirty: BTreeSet<ObjectId>,
    /// In a full download of an entity the device held objects of, the ids the server sent
    /// (the others are removed at the end). `None` when nothing needs removing.
    received: Option<BTreeSet<ObjectId>>,
    insert: String,
    delete: String,
    /// True when the pages bring changes since a checkpoint (not everything).
    incremental: bool,
    downloaded: usize,
    removed: usize,
}

impl<'m> EntityApply<'m> {
    fn begin(
        transaction: &rusqlite::Transaction<'_>,
        entity: &'m Entity,
        full: bool,
    ) -> Result<EntityApply<'m>, SyncError> {
        let full = full && !matches!(entity.download, DownloadBehaviour::NothingPreserve);
        let held = holds_objects(transaction, entity)?;
        Ok(EntityApply {
            entity,
            dirty: dirty_ids(transaction, entity)?,
            received: (full && held).then(BTreeSet::new),
            insert: upsert_statement(entity),
            incremental: !full,
            delete: ferry_sql::delete_by_id(entity, Dialect::Sqlite),
            downloaded: 0,
            removed: 0,
        })
    }

    fn page(
        &mut self,
        transaction: &rusqlite::Transaction<'_>,
        objects: &[DownloadedObject],
        removed: &[String],
        unchanged: &[ObjectId],
    ) -> Result<(), SyncError> {
        let entity = self.entity;
        let mut insert = transaction.prepare_cached(&self.insert)?;
        let mut params = Vec::with_capacity(entity.member_count() + 2);
        for object in objects {
            let Some(id) = ObjectId::parse(&object.id) else { continue };
            if ferry_model::planted::active("checkpoint-without-data") && self.incremental {
                continue;
            }
            if let Some(received) = &mut self.received {
                received.insert(id);
            }
            if self.dirty.contains(&id) {
                continue;
            }
            row_params(entity, id, &object.values, object.revision, &mut params);
            insert.execute(rusqlite::params_from_iter(params.drain(..)))?;
            self.downloaded += 1;
        }
        if let Some(received) = &mut self.received {
            received.extend(unchanged);
        }
        let mut delete = transaction.prepare_cached(&self.delete)?;
        for id in removed.iter().filter_map(|id| ObjectId::parse(id)) {
            if !self.dirty.contains(&id) && !ferry_model::planted::active("skip-removals") {
                self.removed += delete.execute([id_param(id)])?;
                Removed::remember(transaction, &entity.name, id)?;
            }
        }
        Ok(())
    }

    /// Removes, after a full download, what the server no longer sends; returns how many
    /// objects were written and removed.
    fn finish(self, transaction: &rusqlite::Transaction<'_>) -> Result<(usize, usize), SyncError> {
        let mut removed = self.removed;
        if let Some(received) = &self.received {
            let gone: Vec<ObjectId> = {
                let mut statement = transaction.prepare(&ferry_sql::select_ids(self.entity))?;
                let rows = statement.query_map([], |row| row.get::<_, Vec<u8>>(0))?;
                let mut gone = Vec::new();
                for bytes in rows {
                    let Some(id) = id_from_blob(bytes?) else { continue };
                    if !received.contains(&id) && !self.dirty.contains(&id) {
                        gone.push(id);
                    }
                }
                gone
            };
            let mut delete = transaction.prepare_cached(&self.delete)?;
            for id in gone {
                removed += delete.execute([id_param(id)])?;
                Removed::remember(transaction, &self.entity.name, id)?;
            }
        }
        Ok((self.downloaded, removed))
    }
}

/// The statement that writes a whole object as the server sent it, replacing the device's copy.
pub(crate) fn upsert_statement(entity: &Entity) -> String {
    ferry_sql::replace_statement(entity, Dialect::Sqlite, Side::Device)
}

/// The parameters of [`upsert_statement`] for an object the server sent: members it did not
/// send (not readable) are empty.
pub(crate) fn row_params(
    entity: &Entity,
    id: ObjectId,
    values: &ferry_protocol::Members,
    revision: i64,
    params: &mut Vec<rusqlite::types::Value>,
) {
    params.clear();
    params.push(id_param(id));
    for slot in (0..entity.member_count()).map(Slot) {
        let attribute_type = entity.attribute_type_of(entity.member_at(slot));
        let decoded = values
            .get(entity.member_name(slot))
            .and_then(|json| value::decode(json, attribute_type).ok())
            .unwrap_or(Value::Empty);
        params.push(to_sql(&param(&decoded, Dialect::Sqlite)));
    }
    params.push(rusqlite::types::Value::Integer(revision));
}

/// The ids of the entity's objects with unsynchronised changes, which downloads leave alone.
fn dirty_ids(
    transaction: &rusqlite::Transaction<'_>,
    entity: &Entity,
) -> Result<BTreeSet<ObjectId>, SyncError> {
    let mut statement =
        transaction.prepare_cached("SELECT object_id FROM ferry_dirty WHERE entity = ?1")?;
    let rows = statement.query_map([entity.name.as_str()], |row| row.get::<_, Vec<u8>>(0))?;
    let mut ids = BTreeSet::new();
    for bytes in rows {
        if let Some(id) = id_from_blob(bytes?) {
            ids.insert(id);
        }
    }
    Ok(ids)
}
