//! The Ferry device core for WebAssembly: what the TypeScript SDK (`sdk/js`) builds on, so the
//! browser's device is the Rust SDK's rules, formats and sync decisions compiled once more,
//! never written again.
//!
//! - [`Core`]: a model, and everything model-dependent a device shell needs from it: the
//!   device database's schema (the same tables as `ferry-client`'s), the SQL of each entity's
//!   statements, a local query compiled from the constraint language to SQL with its
//!   parameters, the type and validation checks of object values, and values between the app's
//!   JSON form and the stored form ([`values`]).
//! - [`Machine`]: the sync core (`ferry-sync`'s `SyncMachine`), events in and actions out, each
//!   as JSON ([`wire`]).
//! - [`Transcript`]: the golden transcripts' events in the JSON the shell sends, so the
//!   transcripts run against this build through the same bridge.
//!
//! Every call that takes input from the app or the shell checks it, and its error names what
//! was wrong; a call that fails changes nothing. Strings cross the boundary as JSON text.

#![allow(unsafe_code, reason = "the glue #[wasm_bindgen] generates; nothing here is unsafe")]

mod values;
mod wire;

use std::sync::Arc;

use ferry_constraint::Context;
use ferry_model::{Model, ObjectId, Slot, Timestamp};
use ferry_protocol::Members;
use ferry_sql::{Dialect, Side};
use ferry_sync::SyncMachine;
use serde_json::{Value as Json, json};
use wasm_bindgen::prelude::*;

use wire::{WireEvent, Writer};

/// Parses a model file; the error lists every problem with its line and column.
pub(crate) fn parse_model(text: &str) -> Result<Model, String> {
    let invalid = |errors: Vec<ferry_model::ModelError>| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("the model file is not valid:\n{}", lines.join("\n"))
    };
    let model = Model::parse(text).map_err(invalid)?;
    ferry_constraint::check_model(&model).map_err(invalid)?;
    Ok(model)
}

fn parse<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, JsError> {
    serde_json::from_str(text).map_err(|e| JsError::new(&format!("{what}: {e}")))
}

fn error(message: impl AsRef<str>) -> JsError {
    JsError::new(message.as_ref())
}

/// A model, and what a device shell needs of it.
#[wasm_bindgen]
pub struct Core {
    model: Arc<Model>,
    text: String,
}

#[wasm_bindgen]
impl Core {
    /// Loads a model file (TOML); refused with every problem listed.
    #[wasm_bindgen(constructor)]
    pub fn new(model_text: &str) -> Result<Core, JsError> {
        let model = parse_model(model_text).map_err(error)?;
        Ok(Core { model: Arc::new(model), text: model_text.to_owned() })
    }

    /// The model's version (a hash of its meaning).
    pub fn version(&self) -> String {
        self.model.version().to_string()
    }

    /// The model file this core was loaded from.
    #[wasm_bindgen(js_name = modelText)]
    pub fn model_text(&self) -> String {
        self.text.clone()
    }

    /// The device database's schema: JSON `{fixed: [sql], entities: [sql]}`, the fixed tables
    /// every device database has, then each entity's table and indexes.
    pub fn schema(&self) -> String {
        let entities = ferry_sql::create_schema(&self.model, Dialect::Sqlite, Side::Device);
        json!({ "fixed": ferry_sql::DEVICE_TABLES, "entities": entities }).to_string()
    }

    /// The upload journal's statements (`ferry_sql::journal`) as JSON: `{insert, prune, read,
    /// forget, forget_all, retention_days}`; `prune` takes the time before which rows go, in microseconds.
    #[wasm_bindgen(js_name = journalStatements)]
    pub fn journal_statements(&self) -> String {
        use ferry_sql::journal;
        json!({
            "insert": journal::INSERT,
            "prune": journal::PRUNE,
            "read": journal::READ,
            "forget": journal::FORGET,
            "forget_all": journal::FORGET_ALL,
            "retention_days": journal::UPLOAD_JOURNAL_DAYS,
        })
        .to_string()
    }

    /// The model's entities as JSON: `[{name, kind, download, table, file, members:
    /// [{name, column, type, target, on_delete, values, default}]}]` in reference order
    /// (targets first); `kind` is `plain`, `file` or `system`, `download` the model file's
    /// keyword (`all`, `constraint`, `nothing-clear`, `nothing-preserve`), `type` is `string`,
    /// `integer`, `decimal`, `boolean`, `date-time`, `enumeration`, `binary` or `reference`, and
    /// a reference's `on_delete` is `clear`, `delete` or `refuse` (what deleting its target does).
    pub fn entities(&self) -> String {
        let entities: Vec<Json> =
            self.model.entities_in_reference_order().into_iter().map(entity_json).collect();
        Json::Array(entities).to_string()
    }

    /// The SQL of an entity's statements as JSON: `insert`/`replace` (parameters: the id, one
    /// per member in the order of `entities()`, the revision), `select` (the id then each
    /// member's column; append a `WHERE`), `selectById`, `countById`, `deleteById`,
    /// `selectIds`.
    pub fn statements(&self, entity: &str) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let table = ferry_sql::table_name(entity);
        Ok(json!({
            "table": table,
            "insert": ferry_sql::insert_statement(entity, Dialect::Sqlite, Side::Device),
            "replace": ferry_sql::replace_statement(entity, Dialect::Sqlite, Side::Device),
            "select": format!(
                "SELECT {} FROM {table} \"t0\"",
                ferry_sql::select_columns(entity, "\"t0\"", Dialect::Sqlite)
            ),
            "selectById": ferry_sql::select_by_id(entity, Dialect::Sqlite),
            "countById": ferry_sql::count_by_id(entity, Dialect::Sqlite),
            "deleteById": ferry_sql::delete_by_id(entity, Dialect::Sqlite),
            "selectIds": ferry_sql::select_ids(entity),
        })
        .to_string())
    }

    /// The `UPDATE` of some members (a JSON array of names): parameters are their stored
    /// values in that order, then the id.
    #[wasm_bindgen(js_name = updateStatement)]
    pub fn update_statement(&self, entity: &str, members: &str) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let slots = self.slots(entity, members)?;
        Ok(ferry_sql::update_statement(entity, &slots, Dialect::Sqlite, Side::Device))
    }

    /// The write of the server's fresh state of some members (a JSON array of names):
    /// parameters are their stored values in that order, then the revision, then the id.
    #[wasm_bindgen(js_name = refreshStatement)]
    pub fn refresh_statement(&self, entity: &str, members: &str) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let slots = self.slots(entity, members)?;
        Ok(ferry_sql::refresh_statement(entity, &slots, Dialect::Sqlite))
    }

    /// The id and revision of `count` objects whose ids are parameters 1 to `count`.
    #[wasm_bindgen(js_name = revisionsStatement)]
    pub fn revisions_statement(&self, entity: &str, count: usize) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        Ok(ferry_sql::revisions_statement(entity, count, Dialect::Sqlite))
    }

    /// A local query as JSON `{sql, params}`. `options` is JSON `{constraint, sort: [[member,
    /// "asc" | "desc"]], limit, offset}` (each optional); `user` the signed-in user's id (for
    /// `[%CurrentUser%]`), `now` the time (for `[%CurrentDateTime%]` and the days).
    pub fn query(
        &self,
        entity: &str,
        options: &str,
        user: Option<String>,
        now: &str,
    ) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let options: QueryOptions = parse(options, "the query's options")?;
        let user = match user {
            Some(text) => Some(object_id(&text)?),
            None => None,
        };
        let now = Timestamp::parse(now).ok_or_else(|| error(format!("`{now}` is not a time")))?;
        let context = Context { user, roles: Vec::new(), now, parameters: Default::default() };
        let (condition, params) = match &options.constraint {
            Some(text) => {
                let constraint = ferry_constraint::check(&self.model, entity.name.as_str(), text)
                    .map_err(|errors| {
                    let found: Vec<String> = errors.iter().map(ToString::to_string).collect();
                    error(format!("the constraint `{text}`: {}", found.join("; ")))
                })?;
                let bound = constraint.bind(&context);
                let sql = ferry_sql::compile_where(&self.model, &bound, "t0", Dialect::Sqlite, 1);
                (sql.text, sql.params)
            }
            None => ("1".to_owned(), Vec::new()),
        };
        let mut sort = Vec::new();
        for (member, direction) in &options.sort {
            let Some((index, _)) = entity.attribute(member) else {
                return Err(error(format!(
                    "`{}` has no attribute `{member}` to sort by",
                    entity.name
                )));
            };
            let descending = match direction.as_str() {
                "asc" => false,
                "desc" => true,
                other => return Err(error(format!("sort `{other}`: use `asc` or `desc`"))),
            };
            sort.push((Slot(index), descending));
        }
        let offset = options.offset.unwrap_or(0);
        let sql = ferry_sql::local_query(entity, &condition, &sort, options.limit, offset);
        let params: Vec<Json> = params.iter().map(values::param_json).collect();
        Ok(json!({ "sql": sql, "params": params }).to_string())
    }

    /// A member's value (JSON) checked against its type: the value as stored and read back
    /// (a decimal at its scale), or an error naming the member and what it takes.
    pub fn typed(&self, entity: &str, member: &str, value: &str) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let slot = values::slot(entity, member).map_err(error)?;
        let json: Json = parse(value, &format!("the value of `{member}`"))?;
        let value = values::typed(entity, slot, &json).map_err(error)?;
        Ok(ferry_protocol::value::encode(&value).to_string())
    }

    /// A new object's members with their defaults, as JSON.
    pub fn defaults(&self, entity: &str) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let defaults = values::encode_values(entity, &entity.default_values());
        Ok(json!(defaults).to_string())
    }

    /// Checks an object's validation rules (`values`: JSON members, every one): all of them,
    /// or only those of `changed` (a JSON array of member names) when given. The error is the
    /// rule broken.
    pub fn check(
        &self,
        entity: &str,
        values: &str,
        changed: Option<String>,
    ) -> Result<(), JsError> {
        let entity = self.entity(entity)?;
        let members: Members = parse(values, "the object's values")?;
        let decoded = values::decode_values(entity, &members).map_err(error)?;
        let slots = match changed {
            Some(names) => Some(self.slots(entity, &names)?),
            None => None,
        };
        entity
            .check_rules(&decoded, slots.as_deref())
            .map_err(|rule| error(format!("`{}`: {rule}", entity.name)))
    }

    /// The row of `insert`/`replace` for an object: `values` its JSON members (a missing one
    /// is empty), checked against their types.
    pub fn row(
        &self,
        entity: &str,
        id: &str,
        values: &str,
        revision: i64,
    ) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let id = object_id(id)?;
        let members: Members = parse(values, "the object's values")?;
        values::decode_values(entity, &members).map_err(error)?;
        Ok(Json::Array(values::object_row(entity, id, &members, revision)).to_string())
    }

    /// The stored values of some members (JSON members): `[[member, column, stored]]`.
    pub fn params(&self, entity: &str, values: &str) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let members: Members = parse(values, "the values")?;
        values::decode_values(entity, &members).map_err(error)?;
        Ok(Json::Array(values::member_params(entity, &members)).to_string())
    }

    /// An object read back from a row of `select` (JSON stored values): `{id, values}`.
    pub fn read(&self, entity: &str, row: &str) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let row: Vec<Json> = parse(row, "the row")?;
        Ok(values::read_row(entity, &row).map_err(error)?.to_string())
    }

    /// Reads many rows at once (a JSON array of rows): `[{id, values}]`.
    #[wasm_bindgen(js_name = readAll)]
    pub fn read_all(&self, entity: &str, rows: &str) -> Result<String, JsError> {
        let entity = self.entity(entity)?;
        let rows: Vec<Vec<Json>> = parse(rows, "the rows")?;
        let objects = rows
            .iter()
            .map(|row| values::read_row(entity, row))
            .collect::<Result<Vec<Json>, String>>()
            .map_err(error)?;
        Ok(Json::Array(objects).to_string())
    }

    /// Whether a full sync is due, and why (`first-sync` or `model-changed`), on a device whose
    /// model changed since its last full sync and which has downloaded before (holds a
    /// checkpoint); `undefined` when none is due. The rule the Rust SDK's status tells by.
    #[wasm_bindgen(js_name = fullSyncDue)]
    pub fn full_sync_due(&self, model_changed: bool, downloaded_before: bool) -> Option<String> {
        ferry_sync::full_sync_due(model_changed, downloaded_before).map(|due| {
            match due {
                ferry_sync::FullSyncDue::FirstSync => "first-sync",
                ferry_sync::FullSyncDue::ModelChanged => "model-changed",
            }
            .to_owned()
        })
    }

    /// A new object id: time-ordered (48 bits of `unix_millis`), then 80 bits of `random` (16
    /// bytes from the platform's secure random source).
    #[wasm_bindgen(js_name = newId)]
    pub fn new_id(&self, unix_millis: f64, random: &[u8]) -> Result<String, JsError> {
        let random: [u8; 16] =
            random.try_into().map_err(|_| error("an id takes 16 random bytes"))?;
        let millis = unix_millis.max(0.0) as u64;
        Ok(ObjectId::from_parts(millis, u128::from_be_bytes(random)).to_string())
    }

    /// An object id's stored form (`{"blob": hex}`), for binding it.
    #[wasm_bindgen(js_name = storedId)]
    pub fn stored_id(&self, id: &str) -> Result<String, JsError> {
        Ok(values::id_json(object_id(id)?).to_string())
    }

    /// What moving the device to another model takes, as JSON `{version, statements}`: the
    /// SQL to run in one transaction with the new model text stored. A model whose change
    /// would lose data is refused, with the plan in the error.
    pub fn migration(&self, new_text: &str) -> Result<String, JsError> {
        let new = parse_model(new_text).map_err(error)?;
        let plan = ferry_sql::plan_migration(&self.model, &new);
        if plan.is_breaking() {
            return Err(error(format!("the server's model cannot be followed: {plan}")));
        }
        let statements = plan.statements(&new, Dialect::Sqlite, Side::Device);
        Ok(json!({ "version": new.version().to_string(), "statements": statements }).to_string())
    }

    fn entity(&self, name: &str) -> Result<&ferry_model::Entity, JsError> {
        self.model.entity(name).ok_or_else(|| error(format!("the model has no entity `{name}`")))
    }

    fn slots(&self, entity: &ferry_model::Entity, members: &str) -> Result<Vec<Slot>, JsError> {
        let names: Vec<String> = parse(members, "the member names")?;
        names.iter().map(|name| values::slot(entity, name).map_err(error)).collect()
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryOptions {
    #[serde(default)]
    constraint: Option<String>,
    #[serde(default)]
    sort: Vec<(String, String)>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    offset: Option<u64>,
}

fn object_id(text: &str) -> Result<ObjectId, JsError> {
    ObjectId::parse(text).ok_or_else(|| error(format!("`{text}` is not an object id")))
}

fn entity_json(entity: &ferry_model::Entity) -> Json {
    let defaults = entity.default_values();
    let members: Vec<Json> = (0..entity.member_count())
        .map(Slot)
        .map(|slot| {
            let member = entity.member_at(slot);
            let on_delete = match member {
                ferry_model::MemberRef::Association(index) => {
                    Some(entity.associations[index].on_delete.name())
                }
                ferry_model::MemberRef::Attribute(_) => None,
            };
            let (kind, target, choices) = match entity.attribute_type_of(member) {
                Some(ferry_model::AttributeType::Enumeration { values }) => {
                    ("enumeration".to_owned(), None, Some(values.clone()))
                }
                Some(attribute_type) => (attribute_type.value_type().to_string(), None, None),
                None => {
                    let ferry_model::MemberRef::Association(index) = member else { unreachable!() };
                    (
                        "reference".to_owned(),
                        Some(entity.associations[index].target.to_string()),
                        None,
                    )
                }
            };
            json!({
                "name": entity.member_name(slot),
                "column": ferry_sql::column_name(entity, slot),
                "type": kind,
                "target": target,
                "on_delete": on_delete,
                "values": choices,
                "default": ferry_protocol::value::encode(&defaults[slot.0]),
            })
        })
        .collect();
    json!({
        "name": entity.name.to_string(),
        "kind": format!("{:?}", entity.kind).to_lowercase(),
        "download": entity.download.keyword(),
        "file": entity.kind == ferry_model::EntityKind::File,
        "table": ferry_sql::table_name(entity),
        "members": members,
    })
}

/// The sync core: one job, from its start to its finish.
#[wasm_bindgen]
pub struct Machine {
    machine: SyncMachine,
    model: Arc<Model>,
    /// The download's current entity, whose model gives the rows of its pages.
    entity: Option<String>,
    /// The last actions, for `rendered`: they are rendered only when asked for.
    last: Vec<ferry_sync::Action>,
}

#[wasm_bindgen]
impl Machine {
    /// A machine for a job on a device of `core`'s model, waiting for its `start` event.
    #[wasm_bindgen(constructor)]
    pub fn new(core: &Core) -> Machine {
        Machine {
            machine: SyncMachine::new(),
            model: Arc::clone(&core.model),
            entity: None,
            last: Vec::new(),
        }
    }

    /// Takes one event (JSON, see [`wire`]); gives the actions to perform next, in order, as
    /// a JSON array. An event that is not valid JSON of an event is refused and changes
    /// nothing.
    pub fn handle(&mut self, event: &str) -> Result<String, JsError> {
        let wire: WireEvent = parse(event, "the event")?;
        let event = wire.into_event(&self.model).map_err(error)?;
        if let ferry_sync::Event::ModelUpgraded { model: Some(model) } = &event {
            self.model = Arc::clone(model);
        }
        Ok(self.perform(event))
    }

    /// The `answer` event with its body as bytes: what `handle` does with
    /// `{"kind": "answer", "status": …, "body": …}`, without the body going through JSON (a
    /// download's pages are most of what a sync moves).
    #[wasm_bindgen(js_name = handleAnswer)]
    pub fn handle_answer(&mut self, status: u16, body: Vec<u8>) -> String {
        self.perform(ferry_sync::Event::Answer(ferry_sync::Answer { status, body }))
    }

    fn perform(&mut self, event: ferry_sync::Event) -> String {
        let actions = self.machine.handle(event);
        let mut writer = Writer { model: &self.model, entity: self.entity.take() };
        let out: Vec<Json> = actions.iter().map(|action| writer.action(action)).collect();
        self.entity = writer.entity;
        self.last = actions;
        Json::Array(out).to_string()
    }

    /// True once the machine gave its `finish` action.
    #[wasm_bindgen(js_name = isFinished)]
    pub fn is_finished(&self) -> bool {
        self.machine.is_finished()
    }

    /// The actions of the last `handle`, one line each as the golden transcripts show them.
    pub fn rendered(&self) -> String {
        let lines: Vec<String> = self.last.iter().map(ferry_sync::transcript::render).collect();
        lines.join("\n")
    }
}

/// The golden transcripts' events for a model, in the JSON a shell sends.
#[wasm_bindgen]
pub struct Transcript {
    model: Arc<Model>,
    text: String,
}

#[wasm_bindgen]
impl Transcript {
    /// For transcripts written against this model file.
    #[wasm_bindgen(constructor)]
    pub fn new(model_text: &str) -> Result<Transcript, JsError> {
        let model = parse_model(model_text).map_err(error)?;
        Ok(Transcript { model: Arc::new(model), text: model_text.to_owned() })
    }

    /// The JSON event of a `> ` line (without the prefix); `upgrade` is the model text of the
    /// last `upgrade-model` action, which `model-upgraded changed` refers to.
    pub fn event(&self, line: &str, upgrade: Option<String>) -> Result<String, JsError> {
        let event =
            ferry_sync::transcript::event(line, &self.model, &self.text, upgrade.as_deref())
                .map_err(error)?;
        Ok(wire::event_json(&event, upgrade.as_deref()).to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on any error")]

    use super::*;

    #[test]
    fn entities_describe_each_member_with_its_column() {
        let core = Core::new(ferry_model::samples::FIELD_SERVICE).unwrap();
        let entities: Json = serde_json::from_str(&core.entities()).unwrap();
        let order = entities.as_array().unwrap().iter().find(|e| e["name"] == "Field.WorkOrder");
        let members = order.unwrap()["members"].as_array().unwrap();
        let status = members.iter().find(|m| m["name"] == "Status").unwrap();
        assert_eq!(status["type"], "enumeration");
        assert_eq!(status["default"], "Open");
        let site = members.iter().find(|m| m["name"] == "Field.WorkOrder_Site").unwrap();
        assert_eq!(site["type"], "reference");
        assert_eq!(site["target"], "Field.Site");
        assert_eq!(site["on_delete"], "clear");
        assert_eq!(order.unwrap()["download"], "constraint");
        let photo = entities.as_array().unwrap().iter().find(|e| e["name"] == "Field.Photo");
        assert_eq!(photo.unwrap()["file"], true);
    }

    #[test]
    fn a_query_compiles_its_constraint_sort_and_page() {
        let core = Core::new(ferry_model::samples::FIELD_SERVICE).unwrap();
        let options = r#"{"constraint":"[Status = 'Open']","sort":[["Number","desc"]],"limit":5}"#;
        let query = core.query("Field.WorkOrder", options, None, "2026-12-01T10:00:00Z");
        let query: Json = serde_json::from_str(&query.unwrap()).unwrap();
        let sql = query["sql"].as_str().unwrap();
        assert!(
            sql.contains("ORDER BY \"t0\".\"Number\" DESC, \"t0\".id LIMIT 5 OFFSET 0"),
            "{sql}"
        );
        assert_eq!(query["params"], json!(["Open"]));
    }
}
