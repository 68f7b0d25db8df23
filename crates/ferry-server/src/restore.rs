//! The server's epoch and the restores it came through.
//!
//! Restoring a backup takes the server's change sequence back to the backup's position, while
//! devices that synced after the backup hold checkpoints beyond it and believe uploads the
//! restore lost were applied. So a restore ([`mark_restored`]) gives the data a new random
//! epoch and records the old epoch with the last position the backup holds
//! ([`RestorePoint`]), in `ferry_meta`:
//! - the epoch is part of every checkpoint's fingerprint, so each device's next download is
//!   full;
//! - the model answer names the epoch and the restores, and each upload's answer its
//!   position, so a device finds the uploads it made after the backup and makes them dirty
//!   again (`ferry_sync`'s restore step).
//!
//! Positions are taken under the sequence row's lock and become visible in order, so a
//! backup's sequence value is exactly the last position it holds.

use ferry_protocol::RestorePoint;

use crate::effects::{hex, random_bytes};
use ferry_sql::Param;

use crate::store::{Store, StoreError, Tx, text};

/// The `ferry_meta` key of the server's epoch (absent until a restore).
const EPOCH_KEY: &str = "epoch";
/// The `ferry_meta` key of the restores, a JSON list of [`RestorePoint`]s, oldest first.
const RESTORED_KEY: &str = "restored";

/// The epoch the server's data is in, and the restores it came through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lineage {
    pub(crate) epoch: String,
    pub(crate) restored: Vec<RestorePoint>,
}

impl Lineage {
    pub(crate) async fn read(store: &Store) -> Result<Lineage, StoreError> {
        let mut tx = store.begin_snapshot().await?;
        let lineage = read(&mut tx).await?;
        tx.finish().await?;
        Ok(lineage)
    }
}

async fn read(tx: &mut Tx<'_>) -> Result<Lineage, StoreError> {
    let epoch = meta(tx, EPOCH_KEY).await?.unwrap_or_default();
    let restored = match meta(tx, RESTORED_KEY).await? {
        None => Vec::new(),
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("`{RESTORED_KEY}` in ferry_meta: {e}")))?,
    };
    Ok(Lineage { epoch, restored })
}

async fn meta(tx: &mut Tx<'_>, key: &str) -> Result<Option<String>, StoreError> {
    let rows = tx
        .query("SELECT value FROM ferry_meta WHERE key = $1", &[Param::Text(key.to_owned())])
        .await?;
    rows.first().map(|row| text(&row[0])).transpose()
}

async fn set_meta(tx: &mut Tx<'_>, key: &str, value: String) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO ferry_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[Param::Text(key.to_owned()), Param::Text(value)],
    )
    .await?;
    Ok(())
}

/// Marks the data in `store` as restored from a backup: a new epoch, and the restore of the
/// old one through the last position the data holds. Gives the new lineage.
pub(crate) async fn mark_restored(store: &Store) -> Result<Lineage, StoreError> {
    let mut tx = store.begin().await?;
    let mut lineage = read(&mut tx).await?;
    let through = tx.sequence_now().await?;
    lineage.restored.push(RestorePoint { epoch: lineage.epoch.clone(), through });
    lineage.epoch = hex(&random_bytes::<8>());
    let restored = serde_json::to_string(&lineage.restored).expect("restore points serialise");
    set_meta(&mut tx, RESTORED_KEY, restored).await?;
    set_meta(&mut tx, EPOCH_KEY, lineage.epoch.clone()).await?;
    tx.commit().await?;
    Ok(lineage)
}
