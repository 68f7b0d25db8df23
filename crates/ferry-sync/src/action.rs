//! Server actions called from the device, and what they synchronise to it (DESIGN.md §4, sync
//! to device): objects that overwrite the device's copies (their committed local changes
//! dropped), objects to remove; only objects of entities the device holds as plain objects.

use ferry_model::{EntityKind, ObjectId};
use ferry_protocol::endpoint::{self, Endpoint};
use ferry_protocol::{ActionRequest, ActionResponse};

use crate::error::Error;
use crate::event::{Action, Event};
use crate::run::{Cx, unexpected};

/// What an action answered and did on the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acted {
    /// The action's result.
    pub result: serde_json::Value,
    /// Objects synchronised to the device.
    pub synced: usize,
    /// Objects removed from the device.
    pub removed: usize,
    /// Objects the action asked to synchronise that were never saved.
    pub skipped: usize,
}

/// Calls the action and has what it synchronises applied in one local transaction.
pub(crate) async fn call(
    cx: &mut Cx,
    name: String,
    parameters: serde_json::Map<String, serde_json::Value>,
) -> Result<Acted, Error> {
    let path = endpoint::Action::ROUTE.path(&[&name]);
    let (response, _): (ActionResponse, _) =
        cx.json::<endpoint::Action>(path, Some(&ActionRequest { parameters })).await?;
    for object in &response.synced {
        let plain = cx.model.entity(&object.entity).is_some_and(|e| e.kind == EntityKind::Plain);
        if !plain || ObjectId::parse(&object.id).is_none() {
            return Err(Error::bad_response(
                200,
                format!(
                    "the server synchronised `{}` {}, which this device cannot hold",
                    object.entity, object.id
                ),
            ));
        }
    }
    let ActionResponse { result, synced, removed, skipped } = response;
    let count = synced.len();
    match cx.io.ask(Action::ApplySynced { synced, removed }).await {
        Event::Committed { removed, .. } => {
            Ok(Acted { result, synced: count, removed: removed.values().sum(), skipped })
        }
        other => Err(unexpected(&other)),
    }
}
