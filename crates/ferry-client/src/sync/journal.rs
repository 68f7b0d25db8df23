//! The upload journal (`ferry_sql::journal`): written as each upload's answer is applied, read
//! and partly made dirty again when the server's data was restored from a backup
//! (`ferry_sync::restore`).

use std::collections::BTreeSet;

use ferry_model::ObjectId;
use ferry_protocol::{ChangeKind, OutcomeResult, UploadRequest, UploadResponse};
use ferry_sql::{Dialect, journal};
use ferry_sync::restore::{JournalRow, Lost};

use super::SyncError;
use crate::ClientError;
use crate::database::{Checkpoints, Database, Meta, id_from_blob, id_param, set_meta};

/// Journals the changes the server applied in this upload, when its answer gives the upload's
/// position, and forgets rows past the journal's retention.
pub(super) fn record(
    transaction: &rusqlite::Transaction<'_>,
    request: &UploadRequest,
    response: &UploadResponse,
    now_micros: i64,
) -> Result<(), SyncError> {
    let Some(position) = &response.position else { return Ok(()) };
    let mut insert = transaction.prepare_cached(journal::INSERT)?;
    for (change, outcome) in request.changes.iter().zip(&response.outcomes) {
        if matches!(outcome.result, OutcomeResult::Failed { .. }) {
            continue;
        }
        let id = ObjectId::parse(&change.id).ok_or_else(|| {
            ClientError::Corrupt(format!("the pending upload names `{}`", change.id))
        })?;
        let members = change.values.keys().map(String::as_str).collect::<Vec<_>>().join(",");
        insert.execute(rusqlite::params![
            change.entity,
            id_param(id),
            change.kind.as_str(),
            members,
            change.base_revision,
            position.epoch,
            position.seq,
            now_micros,
        ])?;
    }
    transaction.execute(journal::PRUNE, [journal::kept_since(now_micros)])?;
    Ok(())
}

/// The journal's rows of other epochs than `epoch`, in the order they were journaled.
pub(super) fn read(database: &Database, epoch: &str) -> Result<Vec<JournalRow>, SyncError> {
    let connection = database.lock();
    let mut statement = connection.prepare(journal::READ)?;
    let rows = statement.query_map([epoch], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, Vec<u8>>(2)?,
            row.get::<_, String>(3)?,
            row.get::<_, String>(4)?,
            row.get::<_, Option<i64>>(5)?,
            row.get::<_, String>(6)?,
            row.get::<_, i64>(7)?,
        ))
    })?;
    let mut journal = Vec::new();
    for row in rows {
        let (row, entity, id, kind, members, base_revision, epoch, seq) = row?;
        let id = id_from_blob(id)
            .ok_or_else(|| ClientError::Corrupt("an id in the upload journal".to_owned()))?;
        let kind = ChangeKind::parse(&kind).unwrap_or(ChangeKind::Delete);
        let members = members.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect();
        let id = id.to_string();
        journal.push(JournalRow { row, entity, id, kind, members, base_revision, epoch, seq });
    }
    Ok(journal)
}

/// In one transaction: the lost changes are dirty again, their rows forgotten, the epoch
/// kept, every checkpoint forgotten, and the next downloads made full without an index.
pub(super) fn restored(
    database: &Database,
    epoch: &str,
    lost: &[Lost],
    forget: &[i64],
) -> Result<(), SyncError> {
    let model = database.model();
    let mut connection = database.lock();
    let transaction = connection.transaction()?;
    let mut touched = Vec::new();
    for change in lost {
        let Some(entity) = model.entity(&change.entity) else { continue };
        if dirty_again(&transaction, entity, change)? {
            touched.push((entity.name.as_str(), change.id));
        }
    }
    for row in forget {
        transaction.execute(journal::FORGET, [row])?;
    }
    set_meta(&transaction, Meta::ServerEpoch, epoch)?;
    set_meta(&transaction, Meta::DownloadWithoutIndex, "1")?;
    Checkpoints::forget_all(&transaction)?;
    transaction.commit()?;
    drop(connection);
    database.changed_objects(touched, false);
    Ok(())
}

/// Joins a lost change with the object's dirty record: a creation or a deletion recorded
/// since stays one; otherwise the lost change's kind; its members join the record's, and its
/// base revision (the restored server's) replaces the record's. A change of an object the
/// device no longer holds is passed over, unless a deletion. Gives true when written.
fn dirty_again(
    transaction: &rusqlite::Transaction<'_>,
    entity: &ferry_model::Entity,
    change: &Lost,
) -> Result<bool, SyncError> {
    let held: i64 = transaction.query_row(
        &ferry_sql::count_by_id(entity, Dialect::Sqlite),
        [id_param(change.id)],
        |row| row.get(0),
    )?;
    let is_delete = change.kind == ChangeKind::Delete;
    if (held > 0) == is_delete {
        return Ok(false);
    }
    let existing = crate::object::dirty_record(transaction, entity, change.id)?;
    let (kind, mut members) = match existing {
        Some((kind, members)) if kind == "create" || kind == "delete" => (kind, members),
        Some((_, members)) => (change.kind.as_str().to_owned(), members),
        None => (change.kind.as_str().to_owned(), String::new()),
    };
    if kind != "delete" {
        let mut all: BTreeSet<&str> = members.split(',').filter(|m| !m.is_empty()).collect();
        all.extend(change.members.iter().map(String::as_str));
        members = all.into_iter().collect::<Vec<_>>().join(",");
    } else {
        members.clear();
    }
    transaction.execute(
        "INSERT INTO ferry_dirty (entity, object_id, kind, members, base_revision) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (entity, object_id) DO UPDATE SET kind = excluded.kind, members = excluded.members, base_revision = excluded.base_revision",
        rusqlite::params![entity.name.as_str(), id_param(change.id), kind, members, change.base_revision],
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on any error")]

    use super::super::store::{LocalStore, Session};
    use super::*;

    fn rows(database: &Database) -> i64 {
        database.lock().query_row("SELECT count(*) FROM ferry_uploaded", [], |r| r.get(0)).unwrap()
    }

    /// Another user signing in takes the journal with the previous user's data: a restore seen
    /// later sends nothing of theirs under the new user's name.
    #[test]
    fn another_user_signing_in_forgets_the_journal() {
        let dir = std::env::temp_dir().join(format!("ferry-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let database =
            Database::open(dir.join("device.db"), ferry_model::samples::FIELD_SERVICE).unwrap();
        let store = LocalStore { database: &database, server: "http://127.0.0.1:1".to_owned() };
        let session = Session { token: "t", refresh_token: None, roles: &[] };
        store.signed_in(&session, ObjectId::from_parts(1, 1), false).unwrap();
        database
            .lock()
            .execute(
                journal::INSERT,
                rusqlite::params![
                    "Field.Site",
                    id_param(ObjectId::from_parts(2, 2)),
                    "delete",
                    "",
                    1,
                    "",
                    7,
                    0
                ],
            )
            .unwrap();
        store.signed_in(&session, ObjectId::from_parts(1, 1), false).unwrap();
        assert_eq!(rows(&database), 1, "the same user keeps it");
        store.signed_in(&session, ObjectId::from_parts(1, 9), true).unwrap();
        assert_eq!(rows(&database), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
