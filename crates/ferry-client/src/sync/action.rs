//! Server actions called from the device, and what they synchronise to it.

use std::collections::BTreeMap;

use ferry_model::{EntityKind, ObjectId};
use ferry_protocol::{ObjectKey, SyncedObject};
use ferry_sync::{Done, Job};

use super::apply::{row_params, upsert_statement};
use super::{SyncEngine, SyncError};
use crate::database::{Database, id_param};

/// What a server action answered, and what it did on this device.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionOutcome {
    /// The action's result.
    pub result: serde_json::Value,
    /// Objects the action synchronised to the device: added, or overwriting the device's copy
    /// (committed local changes to them are dropped and no longer dirty).
    pub synced: usize,
    /// Objects removed from the device: deleted on the server, or no longer readable.
    pub removed: usize,
    /// Objects the action asked to synchronise that were never saved: skipped.
    pub skipped: usize,
}

impl SyncEngine {
    /// Calls the server action `name` with plain parameters (a persistable object is refused:
    /// pass its id) and applies the objects it synchronises to the device, in one local
    /// transaction. Like a sync, it needs the network, and does not run beside a sync.
    pub async fn call_action(
        &self,
        name: &str,
        parameters: serde_json::Map<String, serde_json::Value>,
    ) -> Result<ActionOutcome, SyncError> {
        let _running = self.start_running()?;
        let job = Job::CallAction { name: name.to_owned(), parameters };
        match super::engine::drive(self, job, &super::SyncOptions::default()).await? {
            Done::Acted(acted) => Ok(ActionOutcome {
                result: acted.result,
                synced: acted.synced,
                removed: acted.removed,
                skipped: acted.skipped,
            }),
            other => unreachable!("an action call ends with what it did, not {other:?}"),
        }
    }
}

/// Writes what an action synchronised, in one local transaction: objects overwrite the
/// device's copies and lose their dirty records; removed ones are deleted (an entity the
/// device does not know is passed over). Gives the objects removed, per entity.
pub(super) fn apply_synced(
    database: &Database,
    synced: &[SyncedObject],
    removed: &[ObjectKey],
) -> Result<BTreeMap<String, usize>, SyncError> {
    let model = database.model();
    let mut connection = database.lock();
    let transaction = connection.transaction()?;
    let mut params = Vec::new();
    let forget = "DELETE FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2";
    let mut gone = BTreeMap::new();
    for object in synced {
        let entity = model.entity(&object.entity).filter(|e| e.kind == EntityKind::Plain);
        let (Some(entity), Some(id)) = (entity, ObjectId::parse(&object.id)) else {
            continue; // the sync core refuses an answer naming such an object
        };
        row_params(entity, id, &object.values, object.revision, &mut params);
        transaction
            .execute(&upsert_statement(entity), rusqlite::params_from_iter(params.drain(..)))?;
        transaction.execute(forget, rusqlite::params![entity.name.as_str(), id_param(id)])?;
    }
    for key in removed {
        let (Some(entity), Some(id)) = (model.entity(&key.entity), ObjectId::parse(&key.id)) else {
            continue;
        };
        let delete = ferry_sql::delete_by_id(entity, ferry_sql::Dialect::Sqlite);
        *gone.entry(key.entity.clone()).or_default() +=
            transaction.execute(&delete, [id_param(id)])?;
        crate::database::Removed::remember(&transaction, &entity.name, id)?;
        transaction.execute(forget, rusqlite::params![entity.name.as_str(), id_param(id)])?;
    }
    transaction.commit()?;
    drop(connection);
    let written = synced.iter().map(|o| (o.entity.as_str(), ObjectId::parse(&o.id)));
    let removed = removed.iter().map(|k| (k.entity.as_str(), ObjectId::parse(&k.id)));
    let touched = written.chain(removed).filter_map(|(entity, id)| Some((entity, id?)));
    database.changed_objects(touched, false);
    Ok(gone)
}
