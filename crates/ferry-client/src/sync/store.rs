//! The local store of a sync: every statement the engine runs against the device database for
//! the sync core, apart from the download's writer (`apply.rs`). Model-dependent SQL comes from
//! `ferry-sql`; the device's state goes through the typed keys of [`Meta`].

use std::collections::{BTreeMap, BTreeSet};

use ferry_model::{Entity, EntityKind, ObjectId, Value};
use ferry_protocol::{ChangeKind, Members, ObjectChange, OutcomeResult, UploadRequest, value};
use ferry_sql::{Dialect, param};
use ferry_sync::{Store, TargetFacts};

use super::SyncError;
use crate::database::{
    Checkpoints, Database, Meta, Removed, forget_meta, holds_objects, id_from_blob, id_param, meta,
    set_meta, to_sql,
};
use crate::{ClientError, effects};

/// Ids looked up in one local query.
const IDS_PER_QUERY: usize = 500;

/// The device database as the sync core sees it.
pub(super) struct LocalStore<'a> {
    pub(super) database: &'a Database,
    /// The server signed in to, as the transport names it.
    pub(super) server: String,
}

impl LocalStore<'_> {
    /// The upload an earlier attempt stored and did not finish.
    pub(super) fn pending_upload(&self) -> Result<Option<UploadRequest>, SyncError> {
        let Some(body) = meta(&self.database.lock(), Meta::PendingUpload)? else {
            return Ok(None);
        };
        let request = serde_json::from_str(&body)
            .map_err(|e| ClientError::Corrupt(format!("the pending upload: {e}")))?;
        Ok(Some(request))
    }

    /// Every dirty object's change, in the order of entity and id, with the values of its
    /// changed members as they are committed now.
    pub(super) fn dirty_changes(&self) -> Result<Vec<ObjectChange>, SyncError> {
        let model = self.database.model();
        let connection = self.database.lock();
        let mut statement = connection.prepare("SELECT entity, object_id, kind, members, base_revision FROM ferry_dirty ORDER BY entity, object_id")?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        })?;
        let mut changes = Vec::new();
        for row in rows {
            let (entity_name, id, kind, members, base_revision) = row?;
            let entity = model.entity(&entity_name).ok_or_else(|| {
                ClientError::Corrupt(format!("dirty object of unknown entity `{entity_name}`"))
            })?;
            let id =
                id_from_blob(id).ok_or_else(|| ClientError::Corrupt("a dirty id".to_owned()))?;
            let kind = ChangeKind::parse(&kind).unwrap_or(ChangeKind::Delete);
            let mut values = Members::new();
            if kind != ChangeKind::Delete {
                let object = stored_values(&connection, entity, id)?;
                for member in members.split(',').filter(|m| !m.is_empty()) {
                    let Some(found) = entity.member(member) else { continue };
                    values.insert(member.to_owned(), value::encode(&object[entity.slot(found).0]));
                }
            }
            let entity = entity_name;
            changes.push(ObjectChange { entity, id: id.to_string(), kind, base_revision, values });
        }
        Ok(changes)
    }

    /// This device's name on the server, made the first time it is asked.
    pub(super) fn device_name(&self) -> Result<String, SyncError> {
        let connection = self.database.lock();
        if let Some(name) = meta(&connection, Meta::Device)? {
            return Ok(name);
        }
        let name = effects::random_token();
        set_meta(&connection, Meta::Device, &name)?;
        Ok(name)
    }

    /// What the device holds of each object: held, created here and not uploaded, removed by
    /// a download or a clear lately.
    pub(super) fn look_up(
        &self,
        targets: &[(String, ObjectId)],
    ) -> Result<Vec<TargetFacts>, SyncError> {
        let model = self.database.model();
        let connection = self.database.lock();
        let mut facts = Vec::with_capacity(targets.len());
        for (entity, id) in targets {
            let entity = model
                .entity(entity)
                .ok_or_else(|| ClientError::UnknownEntity { entity: entity.clone() })?;
            let held: i64 = connection.query_row(
                &ferry_sql::count_by_id(entity, Dialect::Sqlite),
                [id_param(*id)],
                |row| row.get(0),
            )?;
            let created_here: i64 = connection.query_row(
                "SELECT count(*) FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2 AND kind = 'create'",
                rusqlite::params![entity.name.as_str(), id_param(*id)],
                |row| row.get(0),
            )?;
            let removed = Removed::contains(&connection, &entity.name, *id)?;
            facts.push(TargetFacts { held: held > 0, created_here: created_here > 0, removed });
        }
        Ok(facts)
    }

    /// An entity's checkpoint, and whether the device holds objects of it.
    pub(super) fn entity_state(&self, entity: &str) -> Result<(Option<String>, bool), SyncError> {
        let model = self.database.model();
        let entity = model
            .entity(entity)
            .ok_or_else(|| ClientError::UnknownEntity { entity: entity.to_owned() })?;
        let connection = self.database.lock();
        let checkpoint = Checkpoints::read(&connection, &entity.name)?;
        // After a restore of the server's data, a full download asks no index.
        let without_index = meta(&connection, Meta::DownloadWithoutIndex)?.is_some();
        Ok((checkpoint, !without_index && holds_objects(&connection, entity)?))
    }

    /// The revisions the device holds of these objects.
    pub(super) fn revisions(
        &self,
        entity: &str,
        ids: &[String],
    ) -> Result<BTreeMap<ObjectId, i64>, SyncError> {
        let model = self.database.model();
        let entity = model
            .entity(entity)
            .ok_or_else(|| ClientError::UnknownEntity { entity: entity.to_owned() })?;
        let connection = self.database.lock();
        let mut held = BTreeMap::new();
        let ids: Vec<ObjectId> = ids.iter().filter_map(|id| ObjectId::parse(id)).collect();
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let sql = ferry_sql::revisions_statement(entity, chunk.len(), Dialect::Sqlite);
            let mut statement = connection.prepare_cached(&sql)?;
            let params = rusqlite::params_from_iter(chunk.iter().map(|id| id_param(*id)));
            let rows = statement
                .query_map(params, |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?)))?;
            for row in rows {
                let (bytes, revision) = row?;
                if let Some(id) = id_from_blob(bytes) {
                    held.insert(id, revision);
                }
            }
        }
        Ok(held)
    }

    /// Which of these contents the file store holds.
    pub(super) fn contents_held(&self, hashes: Vec<String>) -> Vec<String> {
        hashes.into_iter().filter(|hash| self.database.files.holds(hash)).collect()
    }

    /// Performs a write of the sync core.
    pub(super) fn write(&self, write: Store) -> Result<(), SyncError> {
        let connection = self.database.lock();
        match write {
            Store::PendingUpload(request) => {
                let body = serde_json::to_string(&request).expect("requests serialise");
                set_meta(&connection, Meta::PendingUpload, &body)?;
            }
            Store::UploadAnswered { request, response } => {
                drop(connection);
                self.upload_answered(&request, &response)?;
            }
            Store::Restored { epoch, lost, forget } => {
                drop(connection);
                super::journal::restored(self.database, &epoch, &lost, &forget)?;
            }
            Store::FullSyncDue => set_meta(&connection, Meta::FullSyncNeeded, "1")?,
            Store::SignedIn { token, refresh_token, user, roles, forget_previous } => {
                drop(connection);
                let session = Session {
                    token: &token,
                    refresh_token: refresh_token.as_deref(),
                    roles: &roles,
                };
                self.signed_in(&session, user, forget_previous)?;
            }
            Store::Refreshed { token, refresh_token, roles } => {
                let transaction = connection.unchecked_transaction()?;
                let session = Session {
                    token: &token,
                    refresh_token: refresh_token.as_deref(),
                    roles: &roles,
                };
                keep_session(&transaction, &session)?;
                transaction.commit()?;
            }
            Store::FullSyncDone => {
                forget_meta(&connection, Meta::FullSyncNeeded)?;
                forget_meta(&connection, Meta::DownloadWithoutIndex)?;
            }
            Store::LastSync { at, mode } => {
                set_meta(&connection, Meta::LastSync, &format!("{at} {mode}"))?
            }
        }
        Ok(())
    }

    /// In one transaction: the previous user's objects and checkpoints leave the device when
    /// `forget_previous`, and the new user's token, id and server are kept.
    pub(super) fn signed_in(
        &self,
        session: &Session<'_>,
        user: ObjectId,
        forget_previous: bool,
    ) -> Result<(), SyncError> {
        let mut connection = self.database.lock();
        let transaction = connection.transaction()?;
        if forget_previous {
            for entity in self.database.model().entities().filter(|e| e.kind != EntityKind::System)
            {
                transaction.execute(&ferry_sql::delete_all(entity), [])?;
            }
            Checkpoints::forget_all(&transaction)?;
            transaction.execute(ferry_sql::journal::FORGET_ALL, [])?;
        }
        keep_session(&transaction, session)?;
        set_meta(&transaction, Meta::User, &user.to_string())?;
        set_meta(&transaction, Meta::Server, &self.server)?;
        transaction.commit()?;
        drop(connection);
        if forget_previous {
            let model = self.database.model();
            self.database.changed(model.entities().map(|e| e.name.as_str()), false);
        }
        Ok(())
    }

    /// In one transaction: forgets what was sent from each object's dirty record, writes the
    /// fresh state of applied objects (keeping members changed again since), drops the
    /// pending upload.
    fn upload_answered(
        &self,
        request: &UploadRequest,
        response: &ferry_protocol::UploadResponse,
    ) -> Result<(), SyncError> {
        let outcomes = &response.outcomes;
        let model = self.database.model();
        let mut connection = self.database.lock();
        let transaction = connection.transaction()?;
        for (change, outcome) in request.changes.iter().zip(outcomes) {
            let entity = model.entity(&change.entity).ok_or_else(|| {
                ClientError::Corrupt(format!("the pending upload names `{}`", change.entity))
            })?;
            let id = ObjectId::parse(&change.id).ok_or_else(|| {
                ClientError::Corrupt(format!("the pending upload names `{}`", change.id))
            })?;
            let sent: BTreeSet<&str> = change.values.keys().map(String::as_str).collect();
            let still_dirty = forget_sent(&transaction, entity, id, &sent)?;
            if let OutcomeResult::Applied { revision, values } = &outcome.result {
                write_fresh(&transaction, entity, id, *revision, values, &still_dirty)?;
            }
        }
        let now = self.database.clock.now().unix_micros();
        super::journal::record(&transaction, request, response, now)?;
        forget_meta(&transaction, Meta::PendingUpload)?;
        transaction.commit()?;
        drop(connection);
        let sent = request.changes.iter().map(|c| (c.entity.as_str(), ObjectId::parse(&c.id)));
        self.database.changed_objects(sent.filter_map(|(entity, id)| Some((entity, id?))), false);
        Ok(())
    }
}

fn stored_values(
    connection: &rusqlite::Connection,
    entity: &Entity,
    id: ObjectId,
) -> Result<Vec<Value>, SyncError> {
    let sql = ferry_sql::select_by_id(entity, Dialect::Sqlite);
    let width = entity.member_count() + 1;
    let row: Vec<ferry_sql::Param> = connection.query_row(&sql, [id_param(id)], |row| {
        (0..width)
            .map(|i| row.get::<_, rusqlite::types::Value>(i).map(crate::database::from_sql))
            .collect()
    })?;
    let object = ferry_sql::read_object(entity, &row, Dialect::Sqlite)
        .ok_or_else(|| ClientError::Corrupt(format!("a row of `{}`", entity.name)))?;
    Ok(object.values)
}

/// Removes what was sent from the object's dirty record; returns the members still dirty
/// (changed and committed again while the upload was under way).
fn forget_sent(
    transaction: &rusqlite::Transaction<'_>,
    entity: &Entity,
    id: ObjectId,
    sent: &BTreeSet<&str>,
) -> Result<BTreeSet<String>, SyncError> {
    let row = crate::object::dirty_record(transaction, entity, id)?;
    let Some((kind, members)) = row else { return Ok(BTreeSet::new()) };
    let remaining: BTreeSet<String> = members
        .split(',')
        .filter(|m| !m.is_empty() && !sent.contains(m))
        .map(str::to_owned)
        .collect();
    if ferry_model::planted::active("keep-dirty-after-upload") {
        return Ok(BTreeSet::new());
    }
    if remaining.is_empty() || kind == "delete" {
        transaction.execute(
            "DELETE FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2",
            rusqlite::params![entity.name.as_str(), id_param(id)],
        )?;
        return Ok(BTreeSet::new());
    }
    let joined = remaining.iter().map(String::as_str).collect::<Vec<_>>().join(",");
    transaction.execute(
        "UPDATE ferry_dirty SET kind = 'update', members = ?3 WHERE entity = ?1 AND object_id = ?2",
        rusqlite::params![entity.name.as_str(), id_param(id), joined],
    )?;
    Ok(remaining)
}

/// Writes an object's fresh server state, keeping members that are dirty again on the device.
fn write_fresh(
    transaction: &rusqlite::Transaction<'_>,
    entity: &Entity,
    id: ObjectId,
    revision: i64,
    values: &Members,
    keep: &BTreeSet<String>,
) -> Result<(), SyncError> {
    let mut slots = Vec::new();
    let mut params = Vec::new();
    for (name, json) in values {
        if keep.contains(name) {
            continue;
        }
        let Some(member) = entity.member(name) else { continue };
        let attribute_type = entity.attribute_type_of(member);
        let Ok(decoded) = value::decode(json, attribute_type) else { continue };
        slots.push(entity.slot(member));
        params.push(to_sql(&param(&decoded, Dialect::Sqlite)));
    }
    params.push(rusqlite::types::Value::Integer(revision));
    params.push(id_param(id));
    let sql = ferry_sql::refresh_statement(entity, &slots, Dialect::Sqlite);
    transaction.execute(&sql, rusqlite::params_from_iter(params))?;
    Ok(())
}

/// Keeps a session's access token and refresh token (none: the server gave none).
/// A session the server gave: its tokens, and the user's roles.
pub(super) struct Session<'a> {
    pub(super) token: &'a str,
    pub(super) refresh_token: Option<&'a str>,
    pub(super) roles: &'a [String],
}

fn keep_session(
    connection: &rusqlite::Connection,
    session: &Session<'_>,
) -> Result<(), rusqlite::Error> {
    let Session { token, refresh_token, roles } = *session;
    set_meta(connection, Meta::Token, token)?;
    let roles = serde_json::to_string(roles).expect("strings serialise");
    set_meta(connection, Meta::Roles, &roles)?;
    match refresh_token {
        Some(refresh_token) => set_meta(connection, Meta::RefreshToken, refresh_token),
        None => forget_meta(connection, Meta::RefreshToken),
    }
}
