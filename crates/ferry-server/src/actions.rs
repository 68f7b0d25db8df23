//! Server actions: named logic a device calls with JSON parameters (`POST /v1/actions/{name}`),
//! answered with a JSON result and the objects the action synchronised to the calling device.
//!
//! Apps that embed the server register actions in Rust ([`crate::Handlers::action`]); the model file
//! declares others (`[actions.Name]`: an entity, a constraint over the action's parameters and
//! the caller, and what to push), run by [`declared`]. Parameters and results are plain JSON:
//! a persistable object is refused either way (pass an id).
//!
//! An action reads committed objects (with server rights, not the caller's), and its writes
//! ([`ActionCall::commit`], [`ActionCall::delete`]) are applied after it returns, in one
//! transaction with a change sequence position each, validated like uploads: devices see them in
//! their next download. Nothing is applied when the action fails.
//!
//! Synchronise to device ([`ActionCall::sync_to_device`]): after the writes commit, each object
//! asked for is read once, in its latest committed state. Objects the caller may read go to the
//! device with their readable members and overwrite its copies there (committed local changes to
//! them are dropped and no longer dirty); objects deleted, or no longer readable, are removed from
//! the device; objects never saved are skipped; file entities are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use ferry_model::{Entity, EntityKind, EntityName, ObjectId, Slot, Value};
use ferry_protocol::{ActionRequest, ActionResponse, ObjectKey, SyncedObject, value};
use ferry_sql::{Side, insert_statement, param, select_columns, table_name, update_statement};
use serde_json::Value as Json;

use crate::State;
use crate::access::{UserRules, context, predicate_sql, user_rules};
use crate::auth::User;
use crate::store::{StoreError, Tx};
use crate::upload::{check_references, read_covered, readable_members, tombstoned};

/// The most objects one [`ActionCall::query`] returns.
pub const ACTION_QUERY_ROWS_MAX: usize = 10_000;
/// The most objects one action may write or synchronise to the device.
pub const ACTION_OBJECTS_MAX: usize = 10_000;
/// The longest action name, in bytes.
pub const ACTION_NAME_BYTES_MAX: usize = 100;

type Running = Pin<Box<dyn Future<Output = Result<Json, String>> + Send>>;
type Registered = Box<dyn Fn(ActionCall) -> Running + Send + Sync>;

/// The actions an app registers, by name (through [`crate::Handlers::action`]).
#[derive(Default)]
pub(crate) struct Actions {
    registered: BTreeMap<String, Registered>,
}

impl Actions {
    pub(crate) fn register<F, Fut>(&mut self, name: &str, action: F)
    where
        F: Fn(ActionCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Json, String>> + Send + 'static,
    {
        self.registered.insert(name.to_owned(), Box::new(move |call| Box::pin(action(call))));
    }
}

/// An object as an action reads and writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerObject {
    entity: EntityName,
    id: ObjectId,
    values: Vec<Value>,
}

impl ServerObject {
    /// An object known by entity and id only, for [`ActionCall::sync_to_device`], which reads
    /// its committed state.
    pub(crate) fn named(entity: EntityName, id: ObjectId) -> ServerObject {
        ServerObject { entity, id, values: Vec::new() }
    }

    pub fn entity(&self) -> &str {
        self.entity.as_str()
    }

    pub fn id(&self) -> ObjectId {
        self.id
    }
}

#[derive(Default)]
struct Effects {
    writes: Vec<Write>,
    pushes: Vec<(EntityName, ObjectId)>,
}

enum Write {
    Save(ServerObject),
    Delete(EntityName, ObjectId),
}

/// One call of an action: who called, with which parameters, and what the action does.
#[derive(Clone)]
pub struct ActionCall {
    state: Arc<State>,
    user: User,
    parameters: serde_json::Map<String, Json>,
    effects: Arc<Mutex<Effects>>,
}

impl ActionCall {
    /// The calling user's id (`[%CurrentUser%]`).
    pub fn user_id(&self) -> ObjectId {
        self.user.id
    }

    /// The calling user's roles.
    pub fn user_roles(&self) -> &[String] {
        &self.user.roles
    }

    /// A parameter by name.
    pub fn parameter(&self, name: &str) -> Option<&Json> {
        self.parameters.get(name)
    }

    pub(crate) fn parameters(&self) -> &serde_json::Map<String, Json> {
        &self.parameters
    }

    pub(crate) fn value_at<'o>(&self, object: &'o ServerObject, slot: Slot) -> &'o Value {
        &object.values[slot.0]
    }

    fn entity(&self, name: &str) -> Result<&Entity, String> {
        self.state
            .model
            .entity(name)
            .filter(|e| e.kind != EntityKind::System)
            .ok_or_else(|| format!("unknown entity `{name}`"))
    }

    fn effects(&self) -> std::sync::MutexGuard<'_, Effects> {
        self.effects.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The committed objects of `entity` matching `constraint` (tokens stand for the caller),
    /// at most [`ACTION_QUERY_ROWS_MAX`].
    pub async fn query(&self, entity: &str, constraint: &str) -> Result<Vec<ServerObject>, String> {
        let entity = self.entity(entity)?;
        let checked = ferry_constraint::check(&self.state.model, entity.name.as_str(), constraint)
            .map_err(|errors| {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                format!("constraint `{constraint}`: {}", errors.join("; "))
            })?;
        let bound = checked.bind(&context(&self.state, &self.user));
        query_objects(&self.state, entity, Some(&bound)).await
    }

    /// The committed object with this id, if there is one.
    pub async fn get(&self, entity: &str, id: ObjectId) -> Result<Option<ServerObject>, String> {
        let entity = self.entity(entity)?;
        let mut tx = self.state.store.begin_snapshot().await.map_err(|e| e.to_string())?;
        let read = read_covered(&self.state, &mut tx, entity, &UserRules { rules: Vec::new() }, id)
            .await
            .map_err(|e| e.to_string())?;
        tx.finish().await.map_err(|e| e.to_string())?;
        Ok(read.map(|c| ServerObject { entity: entity.name.clone(), id, values: c.object.values }))
    }

    /// A new object with the model's defaults and a new id; nothing is saved until
    /// [`ActionCall::commit`].
    pub fn create(&self, entity: &str) -> Result<ServerObject, String> {
        let entity = self.entity(entity)?;
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| format!("no randomness: {e}"))?;
        let millis = u64::try_from(self.state.clock.now().unix_micros() / 1000).unwrap_or(0);
        let id = ObjectId::from_parts(millis, u128::from_le_bytes(random));
        Ok(ServerObject { entity: entity.name.clone(), id, values: entity.default_values() })
    }

    /// A member's value.
    pub fn value<'o>(&self, object: &'o ServerObject, member: &str) -> Result<&'o Value, String> {
        let entity = self.entity(object.entity.as_str())?;
        let slot = slot_of(entity, member)?;
        Ok(&object.values[slot.0])
    }

    /// Sets a member; the value must have the member's type.
    pub fn set(&self, object: &mut ServerObject, member: &str, new: Value) -> Result<(), String> {
        let entity = self.entity(object.entity.as_str())?;
        let slot = slot_of(entity, member)?;
        let attribute_type = entity.attribute_type_of(entity.member_at(slot));
        let checked = value::decode(&value::encode(&new), attribute_type)
            .map_err(|e| format!("`{}.{member}`: {e}", entity.name))?;
        object.values[slot.0] = checked;
        Ok(())
    }

    /// Saves the object when the action returns (validated like an upload).
    pub fn commit(&self, object: &ServerObject) {
        self.effects().writes.push(Write::Save(object.clone()));
    }

    /// Deletes the object when the action returns.
    pub fn delete(&self, object: &ServerObject) {
        self.effects().writes.push(Write::Delete(object.entity.clone(), object.id));
    }

    /// Synchronises the object to the calling device once the action's writes are applied.
    /// File entities are refused.
    pub fn sync_to_device(&self, object: &ServerObject) -> Result<(), String> {
        let entity = self.entity(object.entity.as_str())?;
        if entity.kind == EntityKind::File {
            return Err(format!(
                "`{}` is a file entity: file objects cannot be synchronized to the device by an action",
                entity.name
            ));
        }
        self.effects().pushes.push((entity.name.clone(), object.id));
        Ok(())
    }
}

fn slot_of(entity: &Entity, member: &str) -> Result<Slot, String> {
    entity
        .member(member)
        .map(|m| entity.slot(m))
        .ok_or_else(|| format!("`{}` has no member `{member}`", entity.name))
}

/// Objects of `entity` matching `filter`, with server rights.
pub(crate) async fn query_objects(
    state: &State,
    entity: &Entity,
    filter: Option<&ferry_constraint::Bound>,
) -> Result<Vec<ServerObject>, String> {
    let dialect = state.store.dialect();
    let mut params = Vec::new();
    let condition = predicate_sql(state, filter, "t0", &mut params);
    let sql = format!(
        "SELECT {} FROM {} \"t0\" WHERE {condition} ORDER BY \"t0\".id LIMIT {}",
        select_columns(entity, "\"t0\"", dialect),
        table_name(entity),
        ACTION_QUERY_ROWS_MAX + 1
    );
    let mut tx = state.store.begin_snapshot().await.map_err(|e| e.to_string())?;
    let rows = tx.query(&sql, &params).await.map_err(|e| e.to_string())?;
    tx.finish().await.map_err(|e| e.to_string())?;
    if rows.len() > ACTION_QUERY_ROWS_MAX {
        return Err(format!(
            "more than {ACTION_QUERY_ROWS_MAX} `{}` objects match: narrow the constraint",
            entity.name
        ));
    }
    rows.iter()
        .map(|row| {
            let object = ferry_sql::read_object(entity, row, dialect)
                .ok_or_else(|| format!("a stored row of `{}` is damaged", entity.name))?;
            Ok(ServerObject { entity: entity.name.clone(), id: object.id, values: object.values })
        })
        .collect()
}

/// Finds a persistable object in `json` (an object naming an entity of the model and an id).
fn persistable(state: &State, json: &Json) -> Option<String> {
    match json {
        Json::Object(map) => {
            let entity = map.get("entity").and_then(Json::as_str);
            if let Some(entity) = entity.filter(|e| state.model.entity(e).is_some())
                && map.contains_key("id")
            {
                return Some(entity.to_owned());
            }
            map.values().find_map(|v| persistable(state, v))
        }
        Json::Array(items) => items.iter().find_map(|v| persistable(state, v)),
        _ => None,
    }
}

/// Why an action call was refused or failed; nothing the action wrote was applied.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ActionError {
    /// A malformed call; `details` names what.
    #[error("{message}")]
    Bad { message: String, details: serde_json::Value },
    #[error("no action `{0}`")]
    NotFound(String),
    /// The user's roles may not call it.
    #[error("{0}")]
    Forbidden(String),
    /// The action itself failed.
    #[error("{0}")]
    Failed(String),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

/// Runs the action `name` for `user`: `POST /v1/actions/{name}`.
pub(crate) async fn call(
    state: &Arc<State>,
    user: &User,
    name: &str,
    request: ActionRequest,
) -> Result<ActionResponse, ActionError> {
    if name.len() > ACTION_NAME_BYTES_MAX {
        return Err(ActionError::Bad {
            message: format!("an action name has at most {ACTION_NAME_BYTES_MAX} bytes"),
            details: serde_json::Value::Null,
        });
    }
    for (parameter, json) in &request.parameters {
        if let Some(entity) = persistable(state, json) {
            return Err(ActionError::Bad {
                message: format!(
                    "parameter `{parameter}` is a persistable object (`{entity}`): actions take plain values; pass its id"
                ),
                details: serde_json::json!({ "parameter": parameter }),
            });
        }
    }
    let failed =
        |reason: String| ActionError::Failed(format!("the action `{name}` failed: {reason}"));
    let call = ActionCall {
        state: Arc::clone(state),
        user: user.clone(),
        parameters: request.parameters,
        effects: Arc::default(),
    };
    let result = if let Some(action) = state.handlers.actions.registered.get(name) {
        action(call.clone()).await.map_err(failed)?
    } else if let Some(declared) = state.model.action(name) {
        crate::declared::run(state, user, declared, &call).await?
    } else {
        return Err(ActionError::NotFound(name.to_owned()));
    };
    if let Some(entity) = persistable(state, &result) {
        return Err(failed(format!(
            "it returned a persistable object (`{entity}`): return plain values, and synchronize objects to the device"
        )));
    }
    let effects = std::mem::take(&mut *call.effects());
    if effects.writes.len() > ACTION_OBJECTS_MAX || effects.pushes.len() > ACTION_OBJECTS_MAX {
        return Err(failed(format!(
            "it wrote or synchronized more than {ACTION_OBJECTS_MAX} objects"
        )));
    }
    if !effects.writes.is_empty() {
        apply_writes(state, &effects.writes).await?.map_err(failed)?;
    }
    let (synced, removed, skipped) = resolve_pushes(state, user, &effects.pushes).await?;
    Ok(ActionResponse { result, synced, removed, skipped })
}

/// The objects an action's writes delete.
fn deleted_by(writes: &[Write]) -> BTreeSet<ObjectId> {
    writes
        .iter()
        .filter_map(|write| match write {
            Write::Delete(_, id) => Some(*id),
            Write::Save(_) => None,
        })
        .collect()
}

/// Applies an action's writes in one transaction; `Ok(Err(reason))` when one is invalid, and
/// then nothing is applied.
async fn apply_writes(state: &State, writes: &[Write]) -> Result<Result<(), String>, StoreError> {
    let mut tx = state.store.begin().await?;
    let mut seq = tx.take_sequence(writes.len() as i64).await?;
    for write in writes {
        tx.changed(match write {
            Write::Save(object) => object.entity.as_str(),
            Write::Delete(entity, _) => entity.as_str(),
        });
    }
    let deleted_too = deleted_by(writes);
    for write in writes {
        let applied = match write {
            Write::Save(object) => save(state, &mut tx, object, seq).await?,
            Write::Delete(entity, id) => {
                let entity = state.model.entity(entity.as_str()).expect("checked when made");
                let followed =
                    crate::referrers::before_delete(state, &mut tx, entity, *id, &deleted_too)
                        .await?;
                if followed.is_ok() {
                    crate::upload::remove_object(state, &mut tx, entity, *id, seq).await?;
                }
                followed
            }
        };
        if let Err(reason) = applied {
            tx.finish().await?;
            return Ok(Err(reason));
        }
        seq += 1;
    }
    tx.commit().await?;
    Ok(Ok(()))
}

async fn save(
    state: &State,
    tx: &mut Tx<'_>,
    object: &ServerObject,
    seq: i64,
) -> Result<Result<(), String>, StoreError> {
    let entity = state.model.entity(object.entity.as_str()).expect("checked when made");
    let dialect = tx.dialect();
    let current =
        read_covered(state, tx, entity, &UserRules { rules: Vec::new() }, object.id).await?;
    let before = current.as_ref().map(|c| c.object.values.as_slice());
    let described = format!("`{}` {}", entity.name, object.id);
    if let Err(reason) = crate::validate::validate(tx, entity, object.id, &object.values).await? {
        return Ok(Err(format!("{described}: {reason}")));
    }
    if let Err(reason) =
        check_references(state, tx, entity, object.id, &object.values, before).await?
    {
        return Ok(Err(reason));
    }
    let id = param(&Value::Reference(object.id), dialect);
    match current {
        None => {
            if tombstoned(state, tx, entity, object.id).await? {
                return Ok(Err(format!("{described} was deleted; ids are never reused")));
            }
            let mut params = vec![id];
            params.extend(object.values.iter().map(|v| param(v, dialect)));
            params.extend([ferry_sql::Param::Int(1), ferry_sql::Param::Int(seq)]);
            tx.execute(&insert_statement(entity, dialect, Side::Server), &params).await?;
        }
        Some(current) => {
            let changed: Vec<Slot> = (0..entity.member_count())
                .map(Slot)
                .filter(|slot| object.values[slot.0] != current.object.values[slot.0])
                .collect();
            if !changed.is_empty() {
                let mut params: Vec<_> =
                    changed.iter().map(|slot| param(&object.values[slot.0], dialect)).collect();
                params.extend([ferry_sql::Param::Int(seq), id]);
                tx.query(&update_statement(entity, &changed, dialect, Side::Server), &params)
                    .await?;
            }
        }
    }
    Ok(Ok(()))
}

/// Reads each pushed object once, after the writes: readable ones go to the device, deleted or
/// unreadable ones are removed from it, never-saved ones are skipped.
async fn resolve_pushes(
    state: &State,
    user: &User,
    pushes: &[(EntityName, ObjectId)],
) -> Result<(Vec<SyncedObject>, Vec<ObjectKey>, usize), StoreError> {
    let context = context(state, user);
    let mut seen = BTreeSet::new();
    let (mut synced, mut removed, mut skipped) = (Vec::new(), Vec::new(), 0);
    let mut tx = state.store.begin_snapshot().await?;
    for (entity_name, id) in pushes {
        if !seen.insert((entity_name.clone(), *id)) {
            continue;
        }
        let entity = state.model.entity(entity_name.as_str()).expect("checked when asked");
        let rules = user_rules(state, entity, user, &context);
        let key = ObjectKey { entity: entity_name.to_string(), id: id.to_string() };
        match read_covered(state, &mut tx, entity, &rules, *id).await? {
            Some(covered) if rules.covering(&covered.coverage).next().is_some() => {
                synced.push(SyncedObject {
                    entity: key.entity,
                    id: key.id,
                    revision: covered.revision,
                    values: readable_members(entity, &rules, &covered),
                });
            }
            Some(_) => removed.push(key),
            None if tombstoned(state, &mut tx, entity, *id).await? => removed.push(key),
            None => skipped += 1,
        }
    }
    tx.finish().await?;
    Ok((synced, removed, skipped))
}
