//! `SynchronizationError` records: written when an uploaded object is skipped, read by
//! administrators, never deleted, and replayable once the cause is fixed.
//! Also `SynchronizationHistory`, one record per upload.

use ferry_model::Timestamp;
use ferry_protocol::{
    ChangeKind, Failure, FailureList, HistoryEntry, HistoryList, ObjectChange, ObjectOutcome,
    OutcomeResult, RejectionKind, ReplayResponse, SyncRecord, UploadRequest,
};
use ferry_sql::Param;

use crate::State;
use crate::auth::{User, read_id};
use crate::store::{StoreError, Tx, int, text};
use crate::upload::{
    CheckedChange, DEVICE_BYTES_MAX, Rejection, UPLOAD_ID_BYTES_MAX, UploadError, apply_change_in,
    check_label, check_request,
};

/// The most failures or history entries one listing returns.
pub const LISTING_ROWS_MAX: i64 = 1_000;

/// Records a rejected change in `SynchronizationError`; gives the outcome the device is told.
pub(crate) async fn record(
    tx: &mut Tx<'_>,
    state: &State,
    user: &User,
    upload_id: &str,
    change: &CheckedChange<'_>,
    rejection: Rejection,
) -> Result<OutcomeResult, StoreError> {
    let attempted = serde_json::to_string(&change.attempted).expect("JSON values serialise");
    let rows = tx
        .query(
            "INSERT INTO ferry_failures (entity, object_id, kind, attempted, reason, user_id, user_name, upload_id, at, rejection) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                Param::Text(change.entity.name.to_string()),
                state.store.id_param(change.id),
                Param::Text(change.kind.as_str().to_owned()),
                Param::Text(attempted),
                Param::Text(rejection.reason.clone()),
                state.store.id_param(user.id),
                Param::Text(user.name.clone()),
                Param::Text(upload_id.to_owned()),
                Param::Int(state.clock.now().unix_micros()),
                Param::Text(rejection.kind.as_str().to_owned()),
            ],
        )
        .await?;
    let failure = int(&rows[0][0])?;
    // The reason may quote the attempted values: only its kind is logged.
    tracing::info!(
        entity = %change.entity.name,
        id = %change.id,
        change = change.kind.as_str(),
        rejection = rejection.kind.as_str(),
        failure,
        "change rejected into SynchronizationError"
    );
    Ok(rejection.outcome(failure))
}

const FAILURE_COLUMNS: &str = "id, entity, object_id, kind, attempted, reason, user_name, upload_id, at, replayed_at, user_id, rejection, replayed_by, replayed_values";

fn failure_from_row(state: &State, row: &[Param]) -> Result<Failure, StoreError> {
    let kind = ChangeKind::parse(&text(&row[3])?).unwrap_or(ChangeKind::Delete);
    let time = |param: &Param| -> Result<Option<String>, StoreError> {
        Ok(match param {
            Param::Null => None,
            other => Timestamp::from_unix_micros(int(other)?).map(|t| t.to_string()),
        })
    };
    Ok(Failure {
        id: int(&row[0])?,
        entity: text(&row[1])?,
        object_id: read_id(state, &row[2])?.to_string(),
        kind,
        attempted: serde_json::from_str(&text(&row[4])?)
            .map_err(|e| StoreError::Corrupt(format!("failure values: {e}")))?,
        reason: text(&row[5])?,
        rejection: RejectionKind::parse(&text(&row[11])?).ok_or_else(|| {
            StoreError::Corrupt("a failure's rejection is of no known kind".to_owned())
        })?,
        user: text(&row[6])?,
        upload_id: text(&row[7])?,
        at: time(&row[8])?.unwrap_or_default(),
        replayed_at: time(&row[9])?,
        replayed_by: match &row[12] {
            Param::Null => None,
            other => Some(text(other)?),
        },
        replayed_values: match &row[13] {
            Param::Null => None,
            other => Some(
                serde_json::from_str(&text(other)?)
                    .map_err(|e| StoreError::Corrupt(format!("replayed values: {e}")))?,
            ),
        },
        current: None,
    })
}

/// One failure, with the object's members as the server holds them now beside what the change
/// attempted.
pub(crate) async fn get_with_current(state: &State, id: i64) -> Result<Failure, FailureError> {
    let mut failure = get(state, id).await?;
    let entity = state
        .model
        .entity(&failure.entity)
        .ok_or_else(|| StoreError::Corrupt(format!("failure {id} names no entity of the model")))?;
    let object = ferry_model::ObjectId::parse(&failure.object_id)
        .ok_or_else(|| StoreError::Corrupt(format!("failure {id} names no object id")))?;
    let dialect = state.store.dialect();
    let mut tx = state.store.begin_snapshot().await?;
    let sql = ferry_sql::select_by_id(entity, dialect);
    let rows = tx.query(&sql, &[state.store.id_param(object)]).await?;
    tx.finish().await?;
    if let Some(row) = rows.first() {
        let stored = ferry_sql::read_object(entity, row, dialect)
            .ok_or_else(|| StoreError::Corrupt(format!("a stored row of `{}`", entity.name)))?;
        let members = (0..entity.member_count()).map(|slot| {
            let name = entity.member_name(ferry_model::Slot(slot)).to_owned();
            (name, ferry_protocol::value::encode(&stored.values[slot]))
        });
        failure.current = Some(members.collect());
    }
    Ok(failure)
}

pub(crate) async fn list(
    state: &State,
    entity: Option<&str>,
    user: Option<&str>,
) -> Result<FailureList, StoreError> {
    let mut tx = state.store.begin_snapshot().await?;
    let rows = tx
        .query(
            &format!("SELECT {FAILURE_COLUMNS} FROM ferry_failures WHERE ($1 = '' OR entity = $1) AND ($2 = '' OR user_name = $2) ORDER BY id DESC LIMIT $3"),
            &[Param::Text(entity.unwrap_or_default().to_owned()), Param::Text(user.unwrap_or_default().to_owned()), Param::Int(LISTING_ROWS_MAX)],
        )
        .await?;
    tx.finish().await?;
    let failures = rows.iter().map(|row| failure_from_row(state, row)).collect::<Result<_, _>>()?;
    Ok(FailureList { failures })
}

/// How many rejected changes wait for a replay.
pub(crate) async fn waiting(state: &State) -> Result<i64, StoreError> {
    let mut tx = state.store.begin_snapshot().await?;
    let rows =
        tx.query("SELECT count(*) FROM ferry_failures WHERE replayed_at IS NULL", &[]).await?;
    tx.finish().await?;
    int(&rows[0][0])
}

/// Why a failure cannot be read, replayed or its content given, or a sync not recorded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FailureError {
    #[error("no failure {0}")]
    NotFound(i64),
    #[error("failure {0} was already replayed")]
    Replayed(i64),
    #[error("the user `{user}` of failure {id} no longer exists")]
    UserGone { id: i64, user: String },
    #[error("{0}")]
    NoContent(String),
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Upload(#[from] UploadError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

pub(crate) async fn get(state: &State, id: i64) -> Result<Failure, FailureError> {
    let mut tx = state.store.begin_snapshot().await?;
    let rows = tx
        .query(
            &format!("SELECT {FAILURE_COLUMNS} FROM ferry_failures WHERE id = $1"),
            &[Param::Int(id)],
        )
        .await?;
    tx.finish().await?;
    let row = rows.first().ok_or(FailureError::NotFound(id))?;
    Ok(failure_from_row(state, row)?)
}

/// The user who uploaded the failed change, with their roles now.
async fn uploader(state: &State, tx: &mut Tx<'_>, failure: &Failure) -> Result<User, FailureError> {
    let rows = tx
        .query(
            "SELECT c.user_id, c.roles FROM ferry_credentials c WHERE c.name = $1",
            &[Param::Text(failure.user.clone())],
        )
        .await?;
    let gone = || FailureError::UserGone { id: failure.id, user: failure.user.clone() };
    let row = rows.first().ok_or_else(gone)?;
    Ok(User {
        id: read_id(state, &row[0])?,
        name: failure.user.clone(),
        roles: text(&row[1])?.split(',').filter(|r| !r.is_empty()).map(str::to_owned).collect(),
    })
}

/// Applies a failed change again, as the user who uploaded it, with `corrected` values in place
/// of those it attempted (an administrator's edit; none to replay it as it was). On success the
/// failure is marked replayed (it stays, as a record); on failure nothing changes and the reason
/// is returned.
pub(crate) async fn replay(
    state: &State,
    id: i64,
    admin: &User,
    corrected: ferry_protocol::Members,
) -> Result<ReplayResponse, FailureError> {
    let mut failure = get(state, id).await?;
    if !corrected.is_empty() && failure.kind == ChangeKind::Delete {
        return Err(FailureError::Bad(format!(
            "failure {id} is a deletion: it has no values to correct"
        )));
    }
    let corrections = (!corrected.is_empty())
        .then(|| serde_json::to_string(&corrected).expect("JSON values serialise"));
    failure.attempted.extend(corrected);
    if failure.replayed_at.is_some() {
        return Err(FailureError::Replayed(id));
    }
    let mut tx = state.store.begin().await?;
    let seq = tx.take_sequence(1).await?;
    tx.changed(&failure.entity);
    let user = uploader(state, &mut tx, &failure).await?;
    let request = UploadRequest {
        upload_id: failure.upload_id.clone(),
        device: String::new(),
        changes: vec![ObjectChange {
            entity: failure.entity.clone(),
            id: failure.object_id.clone(),
            kind: failure.kind,
            base_revision: None,
            values: failure.attempted.clone(),
        }],
    };
    let checked = check_request(state, request)?;
    let change = &checked.changes[0];
    let result = match apply_change_in(state, &mut tx, &user, change, seq).await? {
        Ok(result) => {
            tx.execute(
                "UPDATE ferry_failures SET replayed_at = $1, replayed_by = $2, replayed_values = $3 WHERE id = $4",
                &[
                    Param::Int(state.clock.now().unix_micros()),
                    Param::Text(admin.name.clone()),
                    corrections.map_or(Param::Null, Param::Text),
                    Param::Int(id),
                ],
            )
            .await?;
            tx.commit().await?;
            result
        }
        Err(rejection) => {
            tx.finish().await?;
            rejection.outcome(id)
        }
    };
    Ok(ReplayResponse {
        outcome: ObjectOutcome { entity: failure.entity, id: failure.object_id, result },
    })
}

pub(crate) async fn history(state: &State) -> Result<HistoryList, StoreError> {
    let mut tx = state.store.begin_snapshot().await?;
    let uploads = tx
        .query(
            "SELECT user_name, device, 'upload', upload_id, duration_ms, objects_up, 0, errors, at FROM ferry_history ORDER BY id DESC LIMIT $1",
            &[Param::Int(LISTING_ROWS_MAX)],
        )
        .await?;
    let syncs = tx
        .query(
            "SELECT user_name, device, mode, upload_id, duration_ms, objects_up, objects_down, errors, at FROM ferry_sync_history ORDER BY id DESC LIMIT $1",
            &[Param::Int(LISTING_ROWS_MAX)],
        )
        .await?;
    tx.finish().await?;
    let mut entries = uploads
        .iter()
        .chain(&syncs)
        .map(|row| {
            Ok((
                int(&row[8])?,
                HistoryEntry {
                    user: text(&row[0])?,
                    device: text(&row[1])?,
                    mode: text(&row[2])?,
                    upload_id: text(&row[3])?,
                    duration_ms: int(&row[4])?,
                    objects_up: int(&row[5])?,
                    objects_down: int(&row[6])?,
                    errors: int(&row[7])?,
                    at: Timestamp::from_unix_micros(int(&row[8])?)
                        .map(|t| t.to_string())
                        .unwrap_or_default(),
                },
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // Newest first; a sync's record comes after (above) the upload it made.
    entries.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    entries.truncate(LISTING_ROWS_MAX as usize);
    Ok(HistoryList { entries: entries.into_iter().map(|(_, entry)| entry).collect() })
}

/// The modes a [`SyncRecord`] may name.
const SYNC_MODES: [&str; 3] = ["all", "unsynchronized", "selected"];

/// Records a sync a device completed.
pub(crate) async fn record_sync(
    state: &State,
    user: &User,
    record: SyncRecord,
) -> Result<(), FailureError> {
    let bad = FailureError::Bad;
    check_label("device", &record.device, 0, DEVICE_BYTES_MAX)
        .and_then(|()| check_label("upload_id", &record.upload_id, 0, UPLOAD_ID_BYTES_MAX))
        .map_err(bad)?;
    if !SYNC_MODES.contains(&record.mode.as_str()) {
        return Err(bad(format!("mode must be one of {}", SYNC_MODES.join(", "))));
    }
    let counts = [record.duration_ms, record.objects_up, record.objects_down, record.errors];
    if counts.iter().any(|n| *n < 0) {
        return Err(bad("durations and counts cannot be negative".to_owned()));
    }
    let mut tx = state.store.begin().await?;
    tx.execute(
        "INSERT INTO ferry_sync_history (user_name, device, mode, upload_id, duration_ms, objects_up, objects_down, errors, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            Param::Text(user.name.clone()),
            Param::Text(record.device),
            Param::Text(record.mode),
            Param::Text(record.upload_id),
            Param::Int(record.duration_ms),
            Param::Int(record.objects_up),
            Param::Int(record.objects_down),
            Param::Int(record.errors),
            Param::Int(state.clock.now().unix_micros()),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
