//! Server actions called from the device, and what they synchronise to it.

use ferry_model::{EntityKind, ObjectId};
use ferry_protocol::endpoint::{self, Endpoint};
use ferry_protocol::{ActionRequest, ActionResponse};

use super::apply::{row_params, upsert_statement};
use super::{SyncEngine, SyncError};
use crate::ClientError;
use crate::database::id_param;

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
        let body = serde_json::to_vec(&ActionRequest { parameters }).expect("requests serialise");
        let route = endpoint::Action::ROUTE;
        let response: ActionResponse = self.call((route, &route.path(&[name])), &body).await?;
        let model = self.database.model();
        let mut connection = self.database.lock();
        let transaction = connection.transaction()?;
        let mut params = Vec::new();
        let forget = "DELETE FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2";
        let mut removed = 0;
        for object in &response.synced {
            let entity = model.entity(&object.entity).filter(|e| e.kind == EntityKind::Plain);
            let (Some(entity), Some(id)) = (entity, ObjectId::parse(&object.id)) else {
                return Err(ClientError::Corrupt(format!(
                    "the server synchronised `{}` {}, which this device cannot hold",
                    object.entity, object.id
                ))
                .into());
            };
            row_params(entity, id, &object.values, object.revision, &mut params);
            transaction
                .execute(&upsert_statement(entity), rusqlite::params_from_iter(params.drain(..)))?;
            transaction.execute(forget, rusqlite::params![entity.name.as_str(), id_param(id)])?;
        }
        for key in &response.removed {
            let (Some(entity), Some(id)) = (model.entity(&key.entity), ObjectId::parse(&key.id))
            else {
                continue;
            };
            let delete = ferry_sql::delete_by_id(entity, ferry_sql::Dialect::Sqlite);
            removed += transaction.execute(&delete, [id_param(id)])?;
            crate::database::Removed::remember(&transaction, &entity.name, id)?;
            transaction.execute(forget, rusqlite::params![entity.name.as_str(), id_param(id)])?;
        }
        transaction.commit()?;
        Ok(ActionOutcome {
            result: response.result,
            synced: response.synced.len(),
            removed,
            skipped: response.skipped,
        })
    }
}
