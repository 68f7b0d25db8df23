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
    Checkpoints, Database, Removed, Touched, holds_objects, id_from_blob, id_param, to_sql,
};

/// Pages received but not yet written, at most: the network side waits while this many are
/// queued, which bounds the memory a download takes.
pub const PAGES_IN_FLIGHT: usize = 2;

/// Objects written by one download beyond which the write-ahead log is folded into the database
/// file and truncated after the commit, so a large download does not leave the device holding
/// its pages twice.
pub const WAL_TRUNCATE_OBJECTS: usize = 10_000;

/// Objects of an entity's first download after which the secondary indexes dropped for it are
/// built, and kept up row by row for the rest: building them costs memory in proportion to
/// the rows (an index sort), keeping them up costs time per row.
pub(crate) const INDEXES_BUILT_AT_OBJECTS: usize = 100_000;

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
    /// The objects written or removed, per entity, for the watches.
    pub(crate) touched: BTreeMap<String, Touched>,
}

/// Writes the steps as they arrive; commits at [`Feed::Commit`]. When the sending side stops
/// without it, everything written is rolled back and `Ok(None)` says so.
pub(crate) fn apply_download(
    database: &Database,
    mut steps: tokio::sync::mpsc::Receiver<Feed>,
) -> Result<Option<Applied>, SyncError> {
    let mut writer = DownloadWriter::begin(database)?;
    while let Some(feed) = steps.blocking_recv() {
        match feed {
            Feed::Step(step) => writer.write(step)?,
            Feed::Commit => return writer.commit().map(Some),
        }
    }
    Ok(None)
}

/// A download being written: one local transaction on a connection of its own, begun with the
/// write lock, committed by [`DownloadWriter::commit`] and rolled back when dropped before.
pub(crate) struct DownloadWriter {
    connection: rusqlite::Connection,
    /// Held until the transaction ends (fields drop after `drop`'s rollback).
    _turn: crate::database::Turn,
    model: Arc<Model>,
    current: Option<EntityApply>,
    applied: Applied,
    open: bool,
}

impl DownloadWriter {
    /// Begins the download's transaction.
    pub(crate) fn begin(database: &Database) -> Result<DownloadWriter, SyncError> {
        let connection = database.open_writer()?;
        let turn = database.download_turn();
        connection.execute_batch("BEGIN IMMEDIATE")?;
        let (current, applied) = (None, Applied::default());
        let model = database.model();
        Ok(DownloadWriter { connection, _turn: turn, model, current, applied, open: true })
    }

    /// Writes one step.
    pub(crate) fn write(&mut self, step: Step) -> Result<(), SyncError> {
        let connection = &self.connection;
        match step {
            Step::Begin { entity, full } => {
                let entity = self
                    .model
                    .entity(&entity)
                    .ok_or_else(|| ClientError::UnknownEntity { entity: entity.clone() })?;
                self.current = Some(EntityApply::begin(connection, entity, full)?);
            }
            Step::Page { objects, removed, unchanged } => {
                let apply = self.current.as_mut().expect("a page comes after its entity's Begin");
                apply.page(connection, &objects, &removed, &unchanged)?;
            }
            Step::End { checkpoint } => {
                let apply = self.current.take().expect("End comes after its entity's Begin");
                let name = apply.entity.name.clone();
                let Finished { downloaded, removed, touched } = apply.finish(connection)?;
                match checkpoint {
                    Some(checkpoint) => Checkpoints::write(connection, &name, &checkpoint)?,
                    // Objects the server's fresh state took off the device (no longer readable
                    // now) may come back into view later without changing, as when a user's
                    // roles return to what the checkpoint was made for: the checkpoint no longer
                    // says what the device holds, so the next download starts over.
                    None if removed > 0 => Checkpoints::forget(connection, &name)?,
                    None => {}
                }
                *self.applied.downloaded.entry(name.to_string()).or_default() += downloaded;
                *self.applied.removed.entry(name.to_string()).or_default() += removed;
                if downloaded + removed > 0 {
                    self.applied.touched.entry(name.to_string()).or_default().merge(touched);
                }
            }
        }
        Ok(())
    }

    /// Commits the download; gives what it wrote.
    pub(crate) fn commit(mut self) -> Result<Applied, SyncError> {
        Removed::forget_oldest(&self.connection)?;
        self.connection.execute_batch("COMMIT")?;
        self.open = false;
        let applied = std::mem::take(&mut self.applied);
        if applied.downloaded.values().sum::<usize>() > WAL_TRUNCATE_OBJECTS {
            self.connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(applied)
    }
}

impl Drop for DownloadWriter {
    fn drop(&mut self) {
        if self.open {
            // Nothing of an unfinished download stays; a rollback that fails leaves the
            // transaction to end with the connection, which rolls it back too.
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

/// One entity's download being written.
struct EntityApply {
    entity: Entity,
    /// Objects with unsynchronised changes on the device: downloads leave them as they are.
    dirty: BTreeSet<ObjectId>,
    /// In a full download of an entity the device held objects of, the ids the server sent
    /// (the others are removed at the end). `None` when nothing needs removing.
    received: Option<BTreeSet<ObjectId>>,
    insert: String,
    delete: String,
    /// True when the pages bring changes since a checkpoint (not everything).
    incremental: bool,
    /// The statements of the secondary indexes dropped for this download of an empty table,
    /// made again once its last page is written (one index build beats keeping it up row by
    /// row).
    rebuild: Vec<String>,
    downloaded: usize,
    removed: usize,
    touched: Touched,
}

impl EntityApply {
    fn begin(
        transaction: &rusqlite::Connection,
        entity: &Entity,
        full: bool,
    ) -> Result<EntityApply, SyncError> {
        let full = full && !matches!(entity.download, DownloadBehaviour::NothingPreserve);
        let held = holds_objects(transaction, entity)?;
        let rebuild = match full && !held {
            true => drop_secondary_indexes(transaction, entity)?,
            false => Vec::new(),
        };
        Ok(EntityApply {
            entity: entity.clone(),
            dirty: dirty_ids(transaction, entity)?,
            received: (full && held).then(BTreeSet::new),
            insert: upsert_statement(entity),
            incremental: !full,
            rebuild,
            delete: ferry_sql::delete_by_id(entity, Dialect::Sqlite),
            downloaded: 0,
            removed: 0,
            touched: Touched::default(),
        })
    }

    fn page(
        &mut self,
        transaction: &rusqlite::Connection,
        objects: &[DownloadedObject],
        removed: &[String],
        unchanged: &[ObjectId],
    ) -> Result<(), SyncError> {
        let entity = &self.entity;
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
            self.touched.add(id);
        }
        if let Some(received) = &mut self.received {
            received.extend(unchanged);
        }
        let mut delete = transaction.prepare_cached(&self.delete)?;
        for id in removed.iter().filter_map(|id| ObjectId::parse(id)) {
            if !self.dirty.contains(&id) && !ferry_model::planted::active("skip-removals") {
                self.removed += delete.execute([id_param(id)])?;
                self.touched.add(id);
                Removed::remember(transaction, &entity.name, id)?;
            }
        }
        if self.downloaded >= INDEXES_BUILT_AT_OBJECTS && !self.rebuild.is_empty() {
            self.rebuild_indexes(transaction)?;
        }
        Ok(())
    }

    /// Makes the indexes dropped for this download again.
    fn rebuild_indexes(&mut self, transaction: &rusqlite::Connection) -> Result<(), SyncError> {
        for statement in std::mem::take(&mut self.rebuild) {
            transaction.execute_batch(&statement)?;
        }
        Ok(())
    }

    /// Removes, after a full download, what the server no longer sends; returns how many
    /// objects were written and removed.
    fn finish(mut self, transaction: &rusqlite::Connection) -> Result<Finished, SyncError> {
        self.rebuild_indexes(transaction)?;
        let mut removed = self.removed;
        if let Some(received) = &self.received {
            let gone: Vec<ObjectId> = {
                let mut statement = transaction.prepare(&ferry_sql::select_ids(&self.entity))?;
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
                self.touched.add(id);
                Removed::remember(transaction, &self.entity.name, id)?;
            }
        }
        Ok(Finished { downloaded: self.downloaded, removed, touched: self.touched })
    }
}

/// Drops the secondary indexes of the entity's table (those `CREATE INDEX` made: none decides
/// what a replace replaces); gives the statements that make them again, as the database keeps
/// them. In the download's transaction: a rollback brings them back.
fn drop_secondary_indexes(
    transaction: &rusqlite::Connection,
    entity: &Entity,
) -> Result<Vec<String>, SyncError> {
    let table = ferry_sql::table_name(entity);
    let bare = table.trim_matches('"').replace("\"\"", "\"");
    let mut statement = transaction.prepare(
        "SELECT m.name, m.sql FROM pragma_index_list(?1) AS l JOIN sqlite_master AS m ON m.type = 'index' AND m.name = l.name \
         WHERE l.origin = 'c' AND l.\"unique\" = 0 AND m.sql IS NOT NULL ORDER BY m.name",
    )?;
    let indexes = statement
        .query_map([bare], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    for (name, _) in &indexes {
        transaction.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
    }
    Ok(indexes.into_iter().map(|(_, sql)| sql).collect())
}

/// What one entity's download wrote.
struct Finished {
    downloaded: usize,
    removed: usize,
    touched: Touched,
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
    transaction: &rusqlite::Connection,
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on any error")]

    use super::*;

    fn indexes(connection: &rusqlite::Connection) -> Vec<String> {
        let mut statement = connection
            .prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'Field.WorkOrder' AND sql IS NOT NULL ORDER BY name")
            .unwrap();
        statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
    }

    fn orders(count: usize) -> Vec<DownloadedObject> {
        (1..=count)
            .map(|n| DownloadedObject {
                id: ObjectId::from_parts(1, n as u128).to_string(),
                revision: 1,
                values: [
                    ("Number".to_owned(), serde_json::json!(n)),
                    ("Title".to_owned(), serde_json::json!(format!("Order {n}"))),
                ]
                .into_iter()
                .collect(),
            })
            .collect()
    }

    #[test]
    fn a_first_download_builds_the_indexes_after_its_rows_and_a_rollback_keeps_them() {
        let dir = std::env::temp_dir().join(format!("ferry-apply-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let database =
            Database::open(dir.join("device.db"), ferry_model::samples::FIELD_SERVICE).unwrap();
        let made = indexes(&database.lock());
        assert!(made.len() >= 3, "{made:?}");
        let begin = || Step::Begin { entity: "Field.WorkOrder".to_owned(), full: true };
        let page =
            |count| Step::Page { objects: orders(count), removed: vec![], unchanged: vec![] };

        // A download that does not complete: its rows and the indexes' absence both go.
        let mut writer = DownloadWriter::begin(&database).unwrap();
        writer.write(begin()).unwrap();
        writer.write(page(10)).unwrap();
        assert!(indexes(&writer.connection).is_empty(), "dropped while the rows go in");
        drop(writer);
        assert_eq!(indexes(&database.lock()), made);

        let mut writer = DownloadWriter::begin(&database).unwrap();
        writer.write(begin()).unwrap();
        writer.write(page(10)).unwrap();
        writer.write(Step::End { checkpoint: Some("I.x.1".to_owned()) }).unwrap();
        writer.commit().unwrap();
        assert_eq!(indexes(&database.lock()), made, "the same indexes, built after the rows");
        let by_number: i64 = database
            .lock()
            .query_row(
                "SELECT count(*) FROM \"Field.WorkOrder\" INDEXED BY \"ix:Field.WorkOrder.Number\" WHERE \"Number\" > 5",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(by_number, 5, "the index holds the downloaded rows");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
