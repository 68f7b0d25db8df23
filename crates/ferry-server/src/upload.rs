//! One upload, one transaction. The request is checked whole first (bad input changes nothing);
//! then each object, in reference order, is checked against the access rules, handed to the
//! before-apply handlers, validated and applied, each inside a savepoint: an object that fails
//! is rolled back alone and recorded as a failure, and the others commit.
//! The response is stored under the upload id, so a retried upload gets it again unapplied.

use std::collections::{BTreeMap, BTreeSet};

use ferry_constraint::Context;
use ferry_model::{Entity, EntityKind, MemberRef, Object, ObjectId, Slot, Value};
use ferry_protocol::{
    ChangeKind, Members, ObjectOutcome, OutcomeResult, RejectionKind, SequencePosition,
    UploadRequest, value,
};
use ferry_sql::{
    Param, Side, insert_statement, param, read_object, select_columns, table_name, update_statement,
};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::access::{UserRules, context, user_rules};
use crate::auth::User;
use crate::handlers::ObjectState;
use crate::store::{StoreError, Tx, int, text};
use crate::{State, failures, validate};

mod batch;
mod order;

use order::apply_order;

/// The longest upload id accepted, in bytes.
pub const UPLOAD_ID_BYTES_MAX: usize = 100;
/// The longest device name accepted, in bytes.
pub const DEVICE_BYTES_MAX: usize = 200;
/// How long an upload's answer is kept for retries, in days, unless `Limits` says otherwise. A
/// device retries within minutes; a field device may come back after weeks offline. Past it,
/// the upload's id, user and digest are kept (about 100 bytes), so a retry is still known: it is
/// answered from what the server holds now and applies nothing.
pub const UPLOAD_RETENTION_DAYS: i64 = 90;

/// An upload whose every change names a known entity, id and members with values of their types.
pub(crate) struct CheckedUpload<'m> {
    pub(crate) upload_id: String,
    pub(crate) device: String,
    pub(crate) changes: Vec<CheckedChange<'m>>,
}

pub(crate) struct CheckedChange<'m> {
    pub(crate) entity: &'m Entity,
    pub(crate) id: ObjectId,
    pub(crate) kind: ChangeKind,
    pub(crate) base_revision: Option<i64>,
    pub(crate) values: Vec<(Slot, Value)>,
    /// The change as the device sent it, for the failure record.
    pub(crate) attempted: Members,
}

pub(crate) fn check_request<'m>(
    state: &'m State,
    request: UploadRequest,
) -> Result<CheckedUpload<'m>, UploadError> {
    let bad = |message: String, details: serde_json::Value| UploadError::Bad { message, details };
    check_label("upload_id", &request.upload_id, 1, UPLOAD_ID_BYTES_MAX)
        .and_then(|()| check_label("device", &request.device, 0, DEVICE_BYTES_MAX))
        .map_err(|message| bad(message, json!({})))?;
    if request.changes.len() > state.limits.upload_objects_max {
        return Err(UploadError::TooLarge(format!(
            "an upload holds at most {} objects, this one {}",
            state.limits.upload_objects_max,
            request.changes.len()
        )));
    }
    let mut seen = BTreeSet::new();
    let mut changes = Vec::with_capacity(request.changes.len());
    for (index, change) in request.changes.into_iter().enumerate() {
        let at = |extra: serde_json::Value| {
            let mut details = json!({ "change": index, "entity": change.entity, "id": change.id });
            if let (Some(details), Some(extra)) = (details.as_object_mut(), extra.as_object()) {
                details.extend(extra.clone());
            }
            details
        };
        let entity = state
            .model
            .entity(&change.entity)
            .filter(|e| e.kind != EntityKind::System)
            .ok_or_else(|| {
                bad(format!("change {index}: unknown entity `{}`", change.entity), at(json!({})))
            })?;
        let id = ObjectId::parse(&change.id).ok_or_else(|| {
            bad(format!("change {index}: `{}` is not an object id", change.id), at(json!({})))
        })?;
        if !seen.insert((entity.name.clone(), id)) {
            return Err(bad(
                format!("change {index}: `{}` {id} appears twice in the upload", entity.name),
                at(json!({})),
            ));
        }
        if change.kind == ChangeKind::Delete && !change.values.is_empty() {
            return Err(bad(
                format!("change {index}: a deletion carries no values"),
                at(json!({})),
            ));
        }
        let mut values = Vec::with_capacity(change.values.len());
        for (member, json_value) in &change.values {
            let Some(member_ref) = entity.member(member) else {
                return Err(bad(
                    format!("change {index}: `{}` has no member `{member}`", entity.name),
                    at(json!({ "member": member })),
                ));
            };
            let attribute_type = entity.attribute_type_of(member_ref);
            let decoded = value::decode(json_value, attribute_type).map_err(|error| {
                bad(
                    format!("change {index}: `{}.{member}`: {error}", entity.name),
                    at(json!({ "member": member })),
                )
            })?;
            values.push((entity.slot(member_ref), decoded));
        }
        changes.push(CheckedChange {
            entity,
            id,
            kind: change.kind,
            base_revision: change.base_revision,
            values,
            attempted: change.values,
        });
    }
    Ok(CheckedUpload { upload_id: request.upload_id, device: request.device, changes })
}

/// Applies an upload and answers with the response's JSON, which is also stored under the
/// upload id: a retry gets exactly these bytes back.
pub(crate) async fn upload(
    state: &State,
    user: &User,
    request: UploadRequest,
) -> Result<String, UploadError> {
    let started = state.clock.now();
    let digest = request_digest(&request);
    let checked = check_request(state, request)?;
    let mut tx = state.store.begin().await?;
    // Taking the sequence first serialises writers, so the idempotency check below sees any
    // upload with this id that committed while this one waited.
    let taken = checked.changes.len().max(1) as i64;
    let first_seq = tx.take_sequence(taken).await?;
    let position =
        SequencePosition { epoch: state.lineage.epoch.clone(), seq: first_seq + taken - 1 };
    for change in &checked.changes {
        tx.changed(change.entity.name.as_str());
    }
    let answered = match ferry_model::planted::active("upload-twice") {
        true => None,
        false => stored_response(&mut tx, state, &checked.upload_id, &digest, user).await?,
    };
    match answered {
        Some(Stored::Answer(response)) => {
            tx.finish().await?;
            return Ok(response);
        }
        Some(Stored::Expired) => {
            let response = answer_again(state, &mut tx, user, &checked, &position).await?;
            tx.finish().await?;
            return Ok(response);
        }
        None => {}
    }
    let context = context(state, user);
    let mut rules_by_entity: BTreeMap<&ferry_model::EntityName, UserRules<'_>> = BTreeMap::new();
    for change in &checked.changes {
        rules_by_entity
            .entry(&change.entity.name)
            .or_insert_with(|| user_rules(state, change.entity, user, &context));
    }
    let batched: Vec<bool> = checked
        .changes
        .iter()
        .map(|c| batch::batchable(c, &rules_by_entity[&c.entity.name]))
        .collect();
    let creates: Vec<&CheckedChange<'_>> =
        checked.changes.iter().zip(&batched).filter(|(_, b)| **b).map(|(c, _)| c).collect();
    let mut facts = batch::prefetch(state, &mut tx, &creates).await?;
    let mut pending = Vec::new();
    // Each outcome's JSON, in request order; the response is written from them.
    let mut outcomes: Vec<Option<String>> = vec![None; checked.changes.len()];
    let mut seq = first_seq;
    let mut failed = 0;
    for index in apply_order(&state.model, &checked.changes) {
        let change = &checked.changes[index];
        let result = if batched[index] {
            let rules = &rules_by_entity[&change.entity.name];
            match batch::decide(state, user, rules, change, &mut facts) {
                Ok(values) => {
                    let accepted =
                        batch::Accepted { entity: change.entity, id: change.id, values, seq };
                    seq += 1;
                    let outcome = batch::outcome_json(rules, &accepted);
                    pending.push(accepted);
                    outcomes[index] = Some(outcome);
                    continue;
                }
                Err(rejection) => {
                    failed += 1;
                    let upload_id = &checked.upload_id;
                    failures::record(&mut tx, state, user, upload_id, change, rejection).await?
                }
            }
        } else {
            // Objects applied one by one see every new object accepted before them.
            batch::flush(state, &mut tx, user, &mut pending).await?;
            tx.savepoint().await?;
            match apply_change(state, &mut tx, user, &context, change, seq).await? {
                Ok(result) => {
                    tx.release_savepoint().await?;
                    seq += 1;
                    if change.kind == ChangeKind::Create {
                        facts.created(&change.entity.name, change.id);
                    }
                    result
                }
                Err(rejection) => {
                    tx.rollback_to_savepoint().await?;
                    failed += 1;
                    let upload_id = &checked.upload_id;
                    failures::record(&mut tx, state, user, upload_id, change, rejection).await?
                }
            }
        };
        let outcome = ObjectOutcome {
            entity: change.entity.name.to_string(),
            id: change.id.to_string(),
            result,
        };
        outcomes[index] = Some(serde_json::to_string(&outcome).expect("outcomes serialise"));
    }
    batch::flush(state, &mut tx, user, &mut pending).await?;
    let stored = response_json(&checked.upload_id, outcomes, &position);
    let retention = state.limits.upload_retention_days.saturating_mul(86_400_000_000);
    let expired = started.unix_micros().saturating_sub(retention);
    tx.execute(
        "UPDATE ferry_uploads SET response = '' WHERE at < $1 AND response <> ''",
        &[Param::Int(expired)],
    )
    .await?;
    let insert = match ferry_model::planted::active("upload-twice") {
        true => {
            "INSERT INTO ferry_uploads (upload_id, user_id, response, at, request_digest) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (upload_id) DO UPDATE SET response = excluded.response"
        }
        false => {
            "INSERT INTO ferry_uploads (upload_id, user_id, response, at, request_digest) VALUES ($1, $2, $3, $4, $5)"
        }
    };
    tx.execute(
        insert,
        &[
            Param::Text(checked.upload_id.clone()),
            state.store.id_param(user.id),
            Param::Text(stored.clone()),
            Param::Int(started.unix_micros()),
            Param::Text(digest),
        ],
    )
    .await?;
    let duration_ms = (state.clock.now().unix_micros() - started.unix_micros()) / 1000;
    tx.execute(
        "INSERT INTO ferry_history (user_name, device, upload_id, duration_ms, objects_up, errors, at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            Param::Text(user.name.clone()),
            Param::Text(checked.device.clone()),
            Param::Text(checked.upload_id.clone()),
            Param::Int(duration_ms),
            Param::Int(checked.changes.len() as i64),
            Param::Int(failed),
            Param::Int(started.unix_micros()),
        ],
    )
    .await?;
    tx.commit().await?;
    state.metrics.uploads.increment(1);
    state.metrics.objects_applied.increment(checked.changes.len() as u64 - failed as u64);
    state.metrics.objects_failed.increment(failed as u64);
    state.metrics.upload_objects.record(checked.changes.len() as f64);
    state.metrics.upload_seconds.record(duration_ms as f64 / 1000.0);
    tracing::info!(
        upload = %checked.upload_id,
        changes = checked.changes.len(),
        rejected = failed,
        ms = duration_ms,
        "upload applied"
    );
    Ok(stored)
}

/// The JSON of an `UploadResponse` made of each outcome's JSON.
fn response_json(
    upload_id: &str,
    outcomes: Vec<Option<String>>,
    position: &SequencePosition,
) -> String {
    let length = outcomes.iter().map(|o| o.as_ref().map_or(0, |o| o.len() + 1)).sum::<usize>();
    let mut json = String::with_capacity(length + upload_id.len() + 32);
    json.push_str("{\"upload_id\":");
    json.push_str(&serde_json::to_string(upload_id).expect("strings serialise"));
    json.push_str(",\"outcomes\":[");
    for (index, outcome) in outcomes.into_iter().enumerate() {
        if index > 0 {
            json.push(',');
        }
        json.push_str(&outcome.expect("every change has an outcome"));
    }
    json.push_str("],\"position\":");
    json.push_str(&serde_json::to_string(position).expect("positions serialise"));
    json.push('}');
    json
}

async fn stored_response(
    tx: &mut Tx<'_>,
    state: &State,
    upload_id: &str,
    digest: &str,
    user: &User,
) -> Result<Option<Stored>, UploadError> {
    let rows = tx
        .query(
            "SELECT user_id, response, request_digest FROM ferry_uploads WHERE upload_id = $1",
            &[Param::Text(upload_id.to_owned())],
        )
        .await?;
    let Some(row) = rows.into_iter().next() else { return Ok(None) };
    if crate::auth::read_id(state, &row[0])? != user.id {
        return Err(UploadError::Reused(format!(
            "upload id `{upload_id}` was already used by another user"
        )));
    }
    // Records kept from before digests were stored have none: they answer as they always did.
    if let Param::Text(stored) = &row[2]
        && stored != digest
    {
        return Err(UploadError::Reused(format!(
            "upload id `{upload_id}` was already used for other changes; a new upload needs a new id"
        )));
    }
    let response = text(&row[1])?;
    Ok(Some(if response.is_empty() { Stored::Expired } else { Stored::Answer(response) }))
}

/// What the server kept of an upload answered before.
enum Stored {
    /// Its answer, to give again.
    Answer(String),
    /// Only that it was applied: its answer was dropped after the retention.
    Expired,
}

/// The answer to a retry of an upload applied before whose answer was dropped: for each change,
/// its failure if it was rejected, the object as the server holds it now if the user may read
/// it, else that it is gone. Nothing is applied, so nothing changed since is overwritten and
/// nothing is made twice.
async fn answer_again(
    state: &State,
    tx: &mut Tx<'_>,
    user: &User,
    checked: &CheckedUpload<'_>,
    position: &SequencePosition,
) -> Result<String, UploadError> {
    let context = context(state, user);
    let mut outcomes = Vec::with_capacity(checked.changes.len());
    for change in &checked.changes {
        let entity = change.entity;
        let failure = tx
            .query(
                "SELECT id, reason, rejection FROM ferry_failures WHERE upload_id = $1 AND entity = $2 AND object_id = $3 ORDER BY id DESC LIMIT 1",
                &[
                    Param::Text(checked.upload_id.clone()),
                    Param::Text(entity.name.to_string()),
                    state.store.id_param(change.id),
                ],
            )
            .await?;
        let result = if let Some(row) = failure.first() {
            let kind = RejectionKind::parse(&text(&row[2])?).unwrap_or(RejectionKind::Conflict);
            OutcomeResult::Failed { reason: text(&row[1])?, kind, failure_id: int(&row[0])? }
        } else {
            let rules = user_rules(state, entity, user, &context);
            match read_covered(state, tx, entity, &rules, change.id).await? {
                Some(current) if rules.covering(&current.coverage).next().is_some() => {
                    applied(entity, &rules, &current)
                }
                _ => OutcomeResult::Deleted,
            }
        };
        let outcome =
            ObjectOutcome { entity: entity.name.to_string(), id: change.id.to_string(), result };
        outcomes.push(Some(serde_json::to_string(&outcome).expect("outcomes serialise")));
    }
    // The upload's own position is unknown by now; this one is after it, so a restore from a
    // backup between the two makes the device send its changes again (the server has them).
    Ok(response_json(&checked.upload_id, outcomes, position))
}

/// The SHA-256 of an upload's device and changes in their canonical JSON (members in name
/// order), so a retry matches whatever key order the device's JSON had.
fn request_digest(request: &UploadRequest) -> String {
    /// Feeds serialised bytes straight into the hash, so the request is never copied.
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut hashing = Hashing(Sha256::new());
    serde_json::to_writer(&mut hashing, &(&request.device, &request.changes))
        .expect("an upload serialises");
    crate::effects::hex(&hashing.0.finalize())
}

/// An object read with the coverage of the user's rules.
pub(crate) struct Covered {
    pub(crate) object: Object,
    pub(crate) revision: i64,
    pub(crate) coverage: Vec<Param>,
}

/// Reads one object with its revision and which of `rules` cover it.
pub(crate) async fn read_covered(
    state: &State,
    tx: &mut Tx<'_>,
    entity: &Entity,
    rules: &UserRules<'_>,
    id: ObjectId,
) -> Result<Option<Covered>, StoreError> {
    let dialect = state.store.dialect();
    let mut params = Vec::new();
    let coverage = rules.coverage_columns(state, "t0", &mut params);
    params.push(param(&Value::Reference(id), dialect));
    let mut columns = vec![select_columns(entity, "\"t0\"", dialect), "\"t0\"._rev".to_owned()];
    columns.extend(coverage);
    let sql = format!(
        "SELECT {} FROM {} \"t0\" WHERE \"t0\".id = {}",
        columns.join(", "),
        table_name(entity),
        ferry_sql::placeholder(params.len(), ferry_model::ValueType::Reference, dialect)
    );
    let rows = tx.query(&sql, &params).await?;
    let Some(row) = rows.into_iter().next() else { return Ok(None) };
    let width = entity.member_count() + 1;
    let object = read_object(entity, &row[..width], dialect)
        .ok_or_else(|| StoreError::Corrupt(format!("a row of `{}`", entity.name)))?;
    Ok(Some(Covered { object, revision: int(&row[width])?, coverage: row[width + 1..].to_vec() }))
}

pub(crate) async fn tombstoned(
    state: &State,
    tx: &mut Tx<'_>,
    entity: &Entity,
    id: ObjectId,
) -> Result<bool, StoreError> {
    let rows = tx
        .query(
            "SELECT 1 FROM ferry_tombstones WHERE entity = $1 AND object_id = $2",
            &[Param::Text(entity.name.to_string()), state.store.id_param(id)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Applies one change inside a savepoint-free transaction (a replay); `Ok(Err(reason))` when
/// the object is rejected.
pub(crate) async fn apply_change_in(
    state: &State,
    tx: &mut Tx<'_>,
    user: &User,
    change: &CheckedChange<'_>,
    seq: i64,
) -> Result<Result<OutcomeResult, Rejection>, StoreError> {
    apply_change(state, tx, user, &context(state, user), change, seq).await
}

/// Applies one change; `Ok(Err(reason))` when the object is rejected.
async fn apply_change(
    state: &State,
    tx: &mut Tx<'_>,
    user: &User,
    context: &Context,
    change: &CheckedChange<'_>,
    seq: i64,
) -> Result<Result<OutcomeResult, Rejection>, StoreError> {
    let entity = change.entity;
    let rules = user_rules(state, entity, user, context);
    let current = read_covered(state, tx, entity, &rules, change.id).await?;
    match (change.kind, current) {
        (ChangeKind::Create, Some(_)) => Ok(Err(Rejection::conflict(format!(
            "`{}` {} already exists on the server",
            entity.name, change.id
        )))),
        (ChangeKind::Create, None) => create(state, tx, user, &rules, change, seq).await,
        (ChangeKind::Update | ChangeKind::Delete, None) => {
            if tombstoned(state, tx, entity, change.id).await? {
                if change.kind == ChangeKind::Delete {
                    return Ok(Ok(OutcomeResult::Deleted));
                }
                return Ok(Err(Rejection::conflict(format!(
                    "`{}` {} was deleted on the server",
                    entity.name, change.id
                ))));
            }
            Ok(Err(Rejection::conflict(format!(
                "`{}` {} does not exist on the server",
                entity.name, change.id
            ))))
        }
        (ChangeKind::Update, Some(current)) => {
            update(state, tx, user, &rules, change, current, seq).await
        }
        (ChangeKind::Delete, Some(current)) => {
            delete(state, tx, &rules, change, current, seq).await
        }
    }
}

/// Why an upload was refused whole (nothing of it applied).
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    /// The request is malformed; `details` names what.
    #[error("{message}")]
    Bad { message: String, details: serde_json::Value },
    /// The request holds more than the server's limits.
    #[error("{0}")]
    TooLarge(String),
    /// The upload id was used before, by another user or for other changes.
    #[error("{0}")]
    Reused(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// Why an object was rejected: its kind, for programs, and its reason, for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) kind: RejectionKind,
    pub(crate) reason: String,
}

impl Rejection {
    pub(crate) fn access(reason: String) -> Rejection {
        Rejection { kind: RejectionKind::Access, reason }
    }

    pub(crate) fn conflict(reason: String) -> Rejection {
        Rejection { kind: RejectionKind::Conflict, reason }
    }

    pub(crate) fn dangling(reason: String) -> Rejection {
        Rejection { kind: RejectionKind::DanglingReference, reason }
    }

    pub(crate) fn validation(reason: String) -> Rejection {
        Rejection { kind: RejectionKind::Validation, reason }
    }

    pub(crate) fn handler(reason: String) -> Rejection {
        Rejection { kind: RejectionKind::Handler, reason }
    }

    /// The outcome of the rejected object, recorded as failure `failure_id`.
    pub(crate) fn outcome(self, failure_id: i64) -> OutcomeResult {
        OutcomeResult::Failed { reason: self.reason, kind: self.kind, failure_id }
    }
}

/// The first written member that no rule in `rules` may write, by name.
pub(crate) fn unwritable<'a>(
    entity: &Entity,
    written: &[Slot],
    rules: impl Iterator<Item = &'a ferry_model::AccessRule> + Clone,
) -> Option<String> {
    if rules.clone().any(|rule| written.iter().all(|slot| rule.write.contains(slot))) {
        return None;
    }
    let slot = written
        .iter()
        .find(|slot| !rules.clone().any(|rule| rule.write.contains(slot)))
        .or(written.first());
    Some(slot.map_or_else(|| "(none)".to_owned(), |slot| entity.member_name(*slot).to_owned()))
}

fn role_names(user: &User) -> String {
    user.roles.join(", ")
}

pub(crate) fn not_writable(user: &User, member: &str, entity: &Entity) -> String {
    format!(
        "access: role(s) {} may not write member `{member}` of `{}`",
        role_names(user),
        entity.name
    )
}

/// Checks a label a device gives (an upload id, a device name): `min` to `max` bytes, without
/// control characters; the error names the field.
pub(crate) fn check_label(name: &str, value: &str, min: usize, max: usize) -> Result<(), String> {
    if value.len() < min || value.len() > max || value.chars().any(char::is_control) {
        let size = if min == 0 { format!("at most {max}") } else { format!("{min} to {max}") };
        return Err(format!("{name} must be {size} bytes without control characters"));
    }
    Ok(())
}

pub(crate) fn dangling(
    entity: &Entity,
    id: ObjectId,
    association: &str,
    target: ObjectId,
) -> String {
    format!(
        "dangling reference: `{}` {id} refers through `{association}` to {target}, which exists neither on the server nor in the upload",
        entity.name
    )
}

/// The object after the change: `base` with the changed members set, then given to the
/// before-apply handlers, which may change it further or reject it.
pub(crate) fn changed_object<'a>(
    state: &State,
    user: &'a User,
    change: &CheckedChange<'a>,
    base: Vec<Value>,
) -> Result<ObjectState<'a>, String> {
    let mut object =
        ObjectState { entity: change.entity, id: change.id, values: base, user: &user.name };
    for (slot, value) in &change.values {
        object.values[slot.0] = value.clone();
    }
    state
        .handlers
        .run_before(&mut object)
        .map_err(|reason| format!("rejected by a before-apply handler: {reason}"))?;
    Ok(object)
}

async fn create(
    state: &State,
    tx: &mut Tx<'_>,
    user: &User,
    rules: &UserRules<'_>,
    change: &CheckedChange<'_>,
    seq: i64,
) -> Result<Result<OutcomeResult, Rejection>, StoreError> {
    let entity = change.entity;
    if tombstoned(state, tx, entity, change.id).await? {
        return Ok(Err(Rejection::conflict(format!(
            "`{}` {} was deleted on the server; ids are never reused",
            entity.name, change.id
        ))));
    }
    let creating: Vec<&ferry_model::AccessRule> =
        rules.rules.iter().map(|(rule, _)| *rule).filter(|rule| rule.create).collect();
    if creating.is_empty() {
        return Ok(Err(Rejection::access(format!(
            "access: no role of the user ({}) may create `{}`",
            role_names(user),
            entity.name
        ))));
    }
    let written: Vec<Slot> = change.values.iter().map(|(slot, _)| *slot).collect();
    if let Some(member) = unwritable(entity, &written, creating.iter().copied()) {
        return Ok(Err(Rejection::access(not_writable(user, &member, entity))));
    }
    let object = match changed_object(state, user, change, entity.default_values()) {
        Ok(object) => object,
        Err(reason) => return Ok(Err(Rejection::handler(reason))),
    };
    if let Err(reason) =
        check_references(state, tx, entity, change.id, &object.values, None).await?
    {
        return Ok(Err(Rejection::dangling(reason)));
    }
    if let Err(reason) = validate::validate(tx, entity, change.id, &object.values).await? {
        return Ok(Err(Rejection::validation(reason)));
    }
    if let Err(reason) =
        crate::files::check_content(state, tx, user, change, &object.values).await?
    {
        return Ok(Err(Rejection::validation(reason)));
    }
    let dialect = tx.dialect();
    let mut params = vec![param(&Value::Reference(change.id), dialect)];
    params.extend(object.values.iter().map(|v| param(v, dialect)));
    params.extend([Param::Int(1), Param::Int(seq)]);
    tx.execute(&insert_statement(entity, dialect, Side::Server), &params).await?;
    // The new object must lie inside what a creating rule covers, or the user could create
    // objects their own rules hide from them.
    let Some(created) = read_covered(state, tx, entity, rules, change.id).await? else {
        return Err(StoreError::Corrupt("an inserted object is missing".to_owned()));
    };
    let covered_by_creator = rules
        .rules
        .iter()
        .zip(&created.coverage)
        .any(|((rule, _), c)| rule.create && crate::access::is_true(c));
    if !covered_by_creator {
        return Ok(Err(Rejection::access(format!(
            "access: the new `{}` lies outside the constraint of every rule that lets role(s) {} create it",
            entity.name,
            role_names(user)
        ))));
    }
    state.handlers.run_after(&object);
    Ok(Ok(applied(entity, rules, &created)))
}

async fn update(
    state: &State,
    tx: &mut Tx<'_>,
    user: &User,
    rules: &UserRules<'_>,
    change: &CheckedChange<'_>,
    current: Covered,
    seq: i64,
) -> Result<Result<OutcomeResult, Rejection>, StoreError> {
    let entity = change.entity;
    let covering: Vec<&ferry_model::AccessRule> = rules.covering(&current.coverage).collect();
    if covering.is_empty() {
        return Ok(Err(Rejection::access(format!(
            "access: `{}` {} is not accessible to role(s) {}",
            entity.name,
            change.id,
            role_names(user)
        ))));
    }
    let written: Vec<Slot> = change.values.iter().map(|(slot, _)| *slot).collect();
    if let Some(member) = unwritable(entity, &written, covering.iter().copied()) {
        return Ok(Err(Rejection::access(not_writable(user, &member, entity))));
    }
    if entity.conflict == ferry_model::ConflictPolicy::RevisionCheck
        && let Some(base) = change.base_revision
        && base != current.revision
    {
        return Ok(Err(Rejection::conflict(format!(
            "conflict: the change is based on revision {base} of `{}` {}, but the server has revision {}",
            entity.name, change.id, current.revision
        ))));
    }
    let object = match changed_object(state, user, change, current.object.values.clone()) {
        Ok(object) => object,
        Err(reason) => return Ok(Err(Rejection::handler(reason))),
    };
    if let Err(reason) =
        check_references(state, tx, entity, change.id, &object.values, Some(&current.object.values))
            .await?
    {
        return Ok(Err(Rejection::dangling(reason)));
    }
    if let Err(reason) = validate::validate(tx, entity, change.id, &object.values).await? {
        return Ok(Err(Rejection::validation(reason)));
    }
    if let Err(reason) =
        crate::files::check_content(state, tx, user, change, &object.values).await?
    {
        return Ok(Err(Rejection::validation(reason)));
    }
    let changed: Vec<Slot> = (0..entity.member_count())
        .map(Slot)
        .filter(|slot| object.values[slot.0] != current.object.values[slot.0])
        .collect();
    if changed.is_empty() {
        return Ok(Ok(applied(entity, rules, &current)));
    }
    let dialect = tx.dialect();
    let mut params: Vec<Param> =
        changed.iter().map(|slot| param(&object.values[slot.0], dialect)).collect();
    params.push(Param::Int(seq));
    params.push(param(&Value::Reference(change.id), dialect));
    tx.execute(&update_statement(entity, &changed, dialect, Side::Server), &params).await?;
    state.handlers.run_after(&object);
    let Some(fresh) = read_covered(state, tx, entity, rules, change.id).await? else {
        return Err(StoreError::Corrupt("an updated object is missing".to_owned()));
    };
    Ok(Ok(applied(entity, rules, &fresh)))
}

async fn delete(
    state: &State,
    tx: &mut Tx<'_>,
    rules: &UserRules<'_>,
    change: &CheckedChange<'_>,
    current: Covered,
    seq: i64,
) -> Result<Result<OutcomeResult, Rejection>, StoreError> {
    let entity = change.entity;
    if !rules.covering(&current.coverage).any(|rule| rule.delete) {
        let reason = format!("access: no role of the user may delete this `{}`", entity.name);
        return Ok(Err(Rejection::access(reason)));
    }
    if entity.conflict == ferry_model::ConflictPolicy::RevisionCheck
        && let Some(base) = change.base_revision
        && base != current.revision
    {
        return Ok(Err(Rejection::conflict(format!(
            "conflict: the deletion is based on revision {base} of `{}` {}, but the server has revision {}",
            entity.name, change.id, current.revision
        ))));
    }
    // An upload applies its deletions referring objects first, each on its own (a rejected one
    // stays), so nothing counts as gone ahead of time.
    let gone = BTreeSet::new();
    if let Err(reason) =
        crate::referrers::before_delete(state, tx, entity, change.id, &gone).await?
    {
        return Ok(Err(Rejection::conflict(reason)));
    }
    remove_object(state, tx, entity, change.id, seq).await?;
    Ok(Ok(OutcomeResult::Deleted))
}

/// Deletes the object and records the deletion at sequence position `seq`, for devices to
/// remove it; false when there was no such object.
pub(crate) async fn remove_object(
    state: &State,
    tx: &mut Tx<'_>,
    entity: &Entity,
    id: ObjectId,
    seq: i64,
) -> Result<bool, StoreError> {
    let dialect = tx.dialect();
    let sql = format!(
        "DELETE FROM {} WHERE id = {}",
        table_name(entity),
        ferry_sql::placeholder(1, ferry_model::ValueType::Reference, dialect)
    );
    if tx.execute(&sql, &[param(&Value::Reference(id), dialect)]).await? == 0 {
        return Ok(false);
    }
    record_tombstone(state, tx, entity, id, seq).await?;
    Ok(true)
}

/// Records that the object was deleted at sequence position `seq`, for devices to remove it.
async fn record_tombstone(
    state: &State,
    tx: &mut Tx<'_>,
    entity: &Entity,
    id: ObjectId,
    seq: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO ferry_tombstones (entity, object_id, seq, at) VALUES ($1, $2, $3, $4) ON CONFLICT (entity, object_id) DO UPDATE SET seq = excluded.seq, at = excluded.at",
        &[
            Param::Text(entity.name.to_string()),
            state.store.id_param(id),
            Param::Int(seq),
            Param::Int(state.clock.now().unix_micros()),
        ],
    )
    .await?;
    Ok(())
}

/// Every reference the change sets must point at an object that exists (on the server, or
/// created earlier in this upload, which is already applied in this transaction).
pub(crate) async fn check_references(
    state: &State,
    tx: &mut Tx<'_>,
    entity: &Entity,
    id: ObjectId,
    values: &[Value],
    before: Option<&[Value]>,
) -> Result<Result<(), String>, StoreError> {
    let dialect = tx.dialect();
    for (index, association) in entity.associations.iter().enumerate() {
        let slot = entity.slot(MemberRef::Association(index));
        let Value::Reference(target_id) = &values[slot.0] else { continue };
        if before.is_some_and(|before| before[slot.0] == values[slot.0]) {
            continue;
        }
        let target = state.model.entity(association.target.as_str()).expect("validated model");
        let sql = format!(
            "SELECT 1 FROM {} WHERE id = {}",
            table_name(target),
            ferry_sql::placeholder(1, ferry_model::ValueType::Reference, dialect)
        );
        if tx.query(&sql, &[param(&Value::Reference(*target_id), dialect)]).await?.is_empty() {
            return Ok(Err(dangling(entity, id, &association.name, *target_id)));
        }
    }
    Ok(Ok(()))
}

/// The outcome of an applied object: its fresh state, readable members only.
fn applied(entity: &Entity, rules: &UserRules<'_>, covered: &Covered) -> OutcomeResult {
    OutcomeResult::Applied {
        revision: covered.revision,
        values: readable_members(entity, rules, covered),
    }
}

pub(crate) fn readable_members(
    entity: &Entity,
    rules: &UserRules<'_>,
    covered: &Covered,
) -> Members {
    rules
        .readable(&covered.coverage)
        .into_iter()
        .map(|slot| {
            (entity.member_name(slot).to_owned(), value::encode(&covered.object.values[slot.0]))
        })
        .collect()
}
