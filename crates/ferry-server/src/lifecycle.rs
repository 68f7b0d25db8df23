//! The data lifecycle: what the server keeps, and for how long. A serving server runs these jobs
//! every [`LIFECYCLE_INTERVAL_SECONDS`] (and once when it starts); each reports what it removed
//! in the log and in `ferry_lifecycle_removed_total{job}`.
//!
//! - **Deletion records**: tombstones older than `Limits::deletion_horizon_days`. The position
//!   in the change sequence up to which they are gone is kept (`ferry_meta`
//!   `deletions_compacted_through`): a download from an older checkpoint is answered with a
//!   full download, which the device reconciles with what it holds, so it misses no deletion.
//! - **History**: upload and sync records older than `Limits::history_retention_days`.
//! - **Failures**: replayed `SynchronizationError` records older than
//!   `Limits::failure_retention_days`. A failure not yet replayed is the operator's to decide on
//!   and stays, whatever its age.
//! - **File contents**: a content no file object refers to (by its `ContentHash`) and no failure
//!   still kept names in its attempted values, whose last sender sent it, or asked about it,
//!   more than `Limits::file_grace_hours` ago. The grace period covers an upload on its way: a
//!   device sends (or is told the server holds) each content before the upload naming it.

use std::collections::BTreeSet;

use ferry_model::{EntityKind, Slot};
use ferry_sql::Param;

use crate::State;
use crate::store::{StoreError, text};

/// How often a serving server runs the lifecycle's jobs, in seconds.
pub const LIFECYCLE_INTERVAL_SECONDS: u64 = 3_600;

const DAY_MICROS: i64 = 86_400_000_000;
const HOUR_MICROS: i64 = 3_600_000_000;

/// What one run of the lifecycle's jobs removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Deletion records.
    pub deletions: u64,
    /// Upload and sync records.
    pub history: u64,
    /// Replayed failures.
    pub failures: u64,
    /// File contents, and their bytes.
    pub contents: u64,
    pub content_bytes: u64,
}

/// Runs every job once.
pub(crate) async fn collect(state: &State) -> Result<Collected, StoreError> {
    let now = state.clock.now().unix_micros();
    let mut collected = Collected::default();
    let history_before = now - state.limits.history_retention_days.saturating_mul(DAY_MICROS);
    collected.deletions = compact_deletions(state, now).await?;
    let mut tx = state.store.begin().await?;
    for table in ["ferry_history", "ferry_sync_history"] {
        let sql = format!("DELETE FROM {table} WHERE at < $1");
        collected.history += tx.execute(&sql, &[Param::Int(history_before)]).await?;
    }
    let failures_before = now - state.limits.failure_retention_days.saturating_mul(DAY_MICROS);
    collected.failures += tx
        .execute(
            "DELETE FROM ferry_failures WHERE replayed_at IS NOT NULL AND at < $1",
            &[Param::Int(failures_before)],
        )
        .await?;
    tx.commit().await?;
    let (contents, bytes) = collect_contents(state, now).await?;
    (collected.contents, collected.content_bytes) = (contents, bytes);
    report(state, &collected);
    Ok(collected)
}

fn report(state: &State, collected: &Collected) {
    for (job, removed) in [
        ("deletions", collected.deletions),
        ("history", collected.history),
        ("failures", collected.failures),
        ("contents", collected.contents),
    ] {
        state.metrics.lifecycle_removed(job, removed);
    }
    tracing::info!(
        deletions = collected.deletions,
        history = collected.history,
        failures = collected.failures,
        contents = collected.contents,
        content_bytes = collected.content_bytes,
        "lifecycle jobs ran"
    );
}

/// The `ferry_meta` key of the change-sequence position up to which deletion records are gone.
pub(crate) const COMPACTED_THROUGH_KEY: &str = "deletions_compacted_through";

/// Removes the deletion records older than the horizon, and moves the position up to which they
/// are gone; a checkpoint before it gets a full download. One transaction: a download sees the
/// records and the old position, or neither and the new one.
async fn compact_deletions(state: &State, now: i64) -> Result<u64, StoreError> {
    let before = now - state.limits.deletion_horizon_days.saturating_mul(DAY_MICROS);
    let mut tx = state.store.begin().await?;
    let rows = tx
        .query("SELECT max(seq) FROM ferry_tombstones WHERE at < $1", &[Param::Int(before)])
        .await?;
    let through = match rows.first().map(|row| &row[0]) {
        Some(Param::Null) | None => {
            tx.finish().await?;
            return Ok(0);
        }
        Some(seq) => crate::store::int(seq)?,
    };
    // Every record up to that position is as old or older: positions are taken in time order.
    let removed =
        tx.execute("DELETE FROM ferry_tombstones WHERE seq <= $1", &[Param::Int(through)]).await?;
    let kept = compacted_through(&mut tx).await?;
    tx.execute(
        "INSERT INTO ferry_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[Param::Text(COMPACTED_THROUGH_KEY.to_owned()), Param::Text(through.max(kept).to_string())],
    )
    .await?;
    tx.commit().await?;
    Ok(removed)
}

/// The position up to which deletion records are gone (0: none are).
pub(crate) async fn compacted_through(tx: &mut crate::store::Tx<'_>) -> Result<i64, StoreError> {
    let rows = tx
        .query(
            "SELECT value FROM ferry_meta WHERE key = $1",
            &[Param::Text(COMPACTED_THROUGH_KEY.to_owned())],
        )
        .await?;
    match rows.first() {
        Some(row) => text(&row[0])?.parse().map_err(|_| {
            StoreError::Corrupt(format!("`{COMPACTED_THROUGH_KEY}` is not a position"))
        }),
        None => Ok(0),
    }
}

/// Removes the contents nothing needs any longer (see the module's documentation).
async fn collect_contents(state: &State, now: i64) -> Result<(u64, u64), StoreError> {
    let needed = needed_contents(state).await?;
    let recent_after = now - state.limits.file_grace_hours.saturating_mul(HOUR_MICROS);
    let mut tx = state.store.begin_snapshot().await?;
    let recent = tx
        .query(
            "SELECT DISTINCT hash FROM ferry_content_senders WHERE at >= $1",
            &[Param::Int(recent_after)],
        )
        .await?;
    tx.finish().await?;
    let recent: BTreeSet<String> =
        recent.iter().map(|row| text(&row[0])).collect::<Result<_, _>>()?;
    let held = state.blobs.hashes().map_err(StoreError::Files)?;
    let (mut removed, mut bytes) = (0, 0);
    for hash in held.iter().filter(|h| !needed.contains(*h) && !recent.contains(*h)) {
        let mut tx = state.store.begin().await?;
        tx.execute(
            "DELETE FROM ferry_content_senders WHERE hash = $1",
            &[Param::Text(hash.clone())],
        )
        .await?;
        tx.commit().await?;
        if let Some(size) = state.blobs.remove(hash).map_err(StoreError::Files)? {
            (removed, bytes) = (removed + 1, bytes + size);
        }
    }
    Ok((removed, bytes))
}

/// The contents a file object refers to, or a kept failure names.
async fn needed_contents(state: &State) -> Result<BTreeSet<String>, StoreError> {
    let mut needed = BTreeSet::new();
    let mut tx = state.store.begin_snapshot().await?;
    for entity in state.model.entities().filter(|e| e.kind == EntityKind::File) {
        let (index, _) = entity.attribute("ContentHash").expect("file entities have it");
        let column = ferry_sql::column_name(entity, Slot(index));
        let sql = format!(
            "SELECT DISTINCT {column} FROM {} WHERE {column} IS NOT NULL",
            ferry_sql::table_name(entity)
        );
        for row in tx.query(&sql, &[]).await? {
            needed.insert(text(&row[0])?);
        }
        let failures = tx
            .query(
                "SELECT attempted FROM ferry_failures WHERE entity = $1",
                &[Param::Text(entity.name.to_string())],
            )
            .await?;
        for row in failures {
            let attempted: serde_json::Value = serde_json::from_str(&text(&row[0])?)
                .map_err(|e| StoreError::Corrupt(format!("failure values: {e}")))?;
            if let Some(hash) = attempted["ContentHash"].as_str() {
                needed.insert(hash.to_owned());
            }
        }
    }
    tx.finish().await?;
    Ok(needed)
}

/// Runs the jobs every [`LIFECYCLE_INTERVAL_SECONDS`] until the server stops; a failed run is
/// logged and the next one tries again.
pub(crate) async fn run(state: std::sync::Arc<State>) {
    let mut closing = state.closing.subscribe();
    let mut every =
        tokio::time::interval(std::time::Duration::from_secs(LIFECYCLE_INTERVAL_SECONDS));
    loop {
        if *closing.borrow() {
            return;
        }
        tokio::select! {
            biased;
            _ = closing.changed() => continue,
            _ = every.tick() => {
                if let Err(error) = collect(&state).await {
                    tracing::warn!(%error, "lifecycle jobs failed; they run again later");
                }
            }
        }
    }
}
