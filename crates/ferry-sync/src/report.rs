//! What a sync did, for the app and for the server's synchronization history.

use std::collections::BTreeMap;

use ferry_model::ObjectId;
use ferry_protocol::SyncRecord;

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Objects the server applied (created, changed or deleted).
    pub uploaded: usize,
    /// Objects the server rejected, with the reason (they are in `SynchronizationError`).
    pub rejected: Vec<(String, ObjectId, String)>,
    /// Objects downloaded, per entity.
    pub downloaded: BTreeMap<String, usize>,
    /// Objects removed from the device by the download, per entity.
    pub removed: BTreeMap<String, usize>,
    /// File contents sent to the server (those it held already cost nothing and are not counted).
    pub files_uploaded: usize,
    /// File contents brought to the device (only those it lacked).
    pub files_downloaded: usize,
}

impl SyncReport {
    /// The entity and id of each rejected object.
    pub fn rejected_objects(&self) -> Vec<(String, ObjectId)> {
        self.rejected.iter().map(|(entity, id, _)| (entity.clone(), *id)).collect()
    }

    /// The record of this sync the server keeps in its history.
    pub(crate) fn record(
        &self,
        device: String,
        mode: &str,
        upload_id: Option<String>,
        duration_ms: i64,
    ) -> SyncRecord {
        SyncRecord {
            device,
            mode: mode.to_owned(),
            upload_id: upload_id.unwrap_or_default(),
            duration_ms,
            objects_up: self.uploaded as i64,
            objects_down: self.downloaded.values().sum::<usize>() as i64,
            errors: self.rejected.len() as i64,
        }
    }
}
