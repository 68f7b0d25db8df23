//! Values between the app's JSON form (ferry-protocol's: the same as on the wire) and the
//! device database's stored form (ferry-sql's `Param`s for SQLite), so the TypeScript SDK
//! stores exactly what the Rust SDK stores.
//!
//! A stored value in JSON is `null`, a number (an integer), a string (text), `{"blob": hex}`
//! (bytes: ids, references, binary attributes) or `{"int": "digits"}` (an integer beyond
//! JavaScript's 2^53, bound as a `BigInt`).

use ferry_model::{AttributeType, Entity, MemberRef, ObjectId, Slot, Value};
use ferry_protocol::{Members, value};
use ferry_sql::{Dialect, Param, param, read_object};
use serde_json::{Value as Json, json};

/// A row of stored values, in the order a statement binds them.
pub(crate) type Row = Vec<Json>;

/// Integers JavaScript's numbers hold exactly: up to 2^53 - 1 either way.
const SAFE_INTEGER_MAX: i64 = (1 << 53) - 1;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// A stored value in its JSON form.
pub(crate) fn param_json(param: &Param) -> Json {
    match param {
        Param::Null => Json::Null,
        Param::Bool(flag) => json!(i64::from(*flag)),
        Param::Int(integer) if integer.abs() <= SAFE_INTEGER_MAX => json!(integer),
        Param::Int(integer) => json!({ "int": integer.to_string() }),
        Param::Text(text) => json!(text),
        Param::Blob(bytes) => json!({ "blob": hex(bytes) }),
    }
}

/// A stored value from its JSON form.
pub(crate) fn json_param(json: &Json) -> Result<Param, String> {
    let wrong = || format!("`{json}` is not a stored value");
    Ok(match json {
        Json::Null => Param::Null,
        Json::Number(number) => Param::Int(number.as_i64().ok_or_else(wrong)?),
        Json::String(text) => Param::Text(text.clone()),
        Json::Object(map) => match (map.get("blob"), map.get("int")) {
            (Some(Json::String(text)), None) => Param::Blob(unhex(text).ok_or_else(wrong)?),
            (None, Some(Json::String(text))) => Param::Int(text.parse().map_err(|_| wrong())?),
            _ => return Err(wrong()),
        },
        Json::Bool(_) | Json::Array(_) => return Err(wrong()),
    })
}

fn stored(value: &Value) -> Json {
    param_json(&param(value, Dialect::Sqlite))
}

/// The id's stored form.
pub(crate) fn id_json(id: ObjectId) -> Json {
    stored(&Value::Reference(id))
}

/// The value a member's JSON decodes to; a member the JSON lacks, or cannot decode, is empty
/// (as the Rust SDK writes what the server sent).
fn member_value(entity: &Entity, slot: Slot, values: &Members) -> Value {
    let attribute_type = entity.attribute_type_of(entity.member_at(slot));
    values
        .get(entity.member_name(slot))
        .and_then(|json| value::decode(json, attribute_type).ok())
        .unwrap_or(Value::Empty)
}

/// The row of an entity's `replace` (and `insert`) statement: the id, each member's value in
/// slot order, the revision.
pub(crate) fn object_row(entity: &Entity, id: ObjectId, values: &Members, revision: i64) -> Row {
    let mut row = Vec::with_capacity(entity.member_count() + 2);
    row.push(id_json(id));
    for slot in (0..entity.member_count()).map(Slot) {
        row.push(stored(&member_value(entity, slot, values)));
    }
    row.push(json!(revision));
    row
}

/// The members present in `values` that decode as their member's type, each as `[member,
/// column, stored value]`: one that does not is left out, so the device keeps its own value (as
/// the Rust SDK writes the server's fresh state).
pub(crate) fn member_params(entity: &Entity, values: &Members) -> Vec<Json> {
    (0..entity.member_count())
        .map(Slot)
        .filter_map(|slot| {
            let json = values.get(entity.member_name(slot))?;
            let attribute_type = entity.attribute_type_of(entity.member_at(slot));
            let value = value::decode(json, attribute_type).ok()?;
            Some(json!([
                entity.member_name(slot),
                ferry_sql::column_name(entity, slot),
                stored(&value)
            ]))
        })
        .collect()
}

/// An object read back from a row selected with the entity's columns (the id, then one stored
/// value per slot): `{id, values}` with every member's JSON value.
pub(crate) fn read_row(entity: &Entity, row: &[Json]) -> Result<Json, String> {
    let params = row.iter().map(json_param).collect::<Result<Vec<Param>, String>>()?;
    let object = read_object(entity, &params, Dialect::Sqlite)
        .ok_or_else(|| format!("a row of `{}` that Ferry did not write", entity.name))?;
    Ok(json!({ "id": object.id.to_string(), "values": encode_values(entity, &object.values) }))
}

/// Every member's JSON value, by name.
pub(crate) fn encode_values(entity: &Entity, values: &[Value]) -> Members {
    (0..entity.member_count())
        .map(|slot| (entity.member_name(Slot(slot)).to_owned(), value::encode(&values[slot])))
        .collect()
}

/// The values of a whole object from its JSON members (a missing member is empty), each
/// checked against its member's type.
pub(crate) fn decode_values(entity: &Entity, values: &Members) -> Result<Vec<Value>, String> {
    for name in values.keys() {
        if entity.member(name).is_none() {
            return Err(format!("`{}` has no member `{name}`", entity.name));
        }
    }
    (0..entity.member_count())
        .map(Slot)
        .map(|slot| match values.get(entity.member_name(slot)) {
            Some(json) => typed(entity, slot, json),
            None => Ok(Value::Empty),
        })
        .collect()
}

/// A member's value from its JSON form, checked against the member's type as the Rust SDK's
/// `Database::set` checks it; the error names the member and what it takes.
pub(crate) fn typed(entity: &Entity, slot: Slot, json: &Json) -> Result<Value, String> {
    let attribute_type = entity.attribute_type_of(entity.member_at(slot));
    let decoded = value::decode(json, attribute_type)
        .map_err(|e| format!("`{}` of `{}`: {e}", entity.member_name(slot), entity.name))?;
    match (attribute_type, decoded) {
        (Some(AttributeType::Decimal { scale }), Value::Decimal(d)) => {
            d.rescale(*scale).map(Value::Decimal).ok_or_else(|| {
                format!(
                    "`{}` of `{}` takes a decimal of at most {scale} places",
                    entity.member_name(slot),
                    entity.name
                )
            })
        }
        (_, value) => Ok(value),
    }
}

/// The slot of a member by name, or an error naming both.
pub(crate) fn slot(entity: &Entity, member: &str) -> Result<Slot, String> {
    entity
        .member(member)
        .map(|found: MemberRef| entity.slot(found))
        .ok_or_else(|| format!("`{}` has no member `{member}`", entity.name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on any error")]

    use ferry_model::{Model, samples};

    use super::*;

    #[test]
    fn stored_values_round_trip_through_json() {
        for param in [
            Param::Null,
            Param::Int(-5),
            Param::Int(i64::MAX),
            Param::Text("x".to_owned()),
            Param::Blob(vec![0, 255, 16]),
        ] {
            assert_eq!(json_param(&param_json(&param)).unwrap(), param);
        }
        assert!(json_param(&json!({ "blob": "abc" })).is_err());
        assert!(json_param(&json!(true)).is_err());
    }

    #[test]
    fn an_object_row_reads_back_as_the_values_written() {
        let model = Model::parse(samples::FIELD_SERVICE).unwrap();
        let entity = model.entity("Field.WorkOrder").unwrap();
        let id = ObjectId::from_bytes([7; 16]);
        let members: Members =
            [("Title".to_owned(), json!("Fix the pump")), ("Status".to_owned(), json!("Open"))]
                .into_iter()
                .collect();
        let row = object_row(entity, id, &members, 3);
        assert_eq!(row.len(), entity.member_count() + 2);
        let read = read_row(entity, &row[..row.len() - 1]).unwrap();
        assert_eq!(read["id"], json!(id.to_string()));
        assert_eq!(read["values"]["Title"], json!("Fix the pump"));
        assert_eq!(read["values"]["Status"], json!("Open"));
    }

    #[test]
    fn fresh_members_that_do_not_decode_are_left_out() {
        let model = Model::parse(samples::FIELD_SERVICE).unwrap();
        let entity = model.entity("Field.WorkOrder").unwrap();
        let members: Members =
            [("Title".to_owned(), json!("Pump")), ("Priority".to_owned(), json!("high"))]
                .into_iter()
                .collect();
        let params = member_params(entity, &members);
        assert_eq!(params, vec![json!(["Title", "\"Title\"", "Pump"])]);
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_member() {
        let model = Model::parse(samples::FIELD_SERVICE).unwrap();
        let entity = model.entity("Field.WorkOrder").unwrap();
        let error = typed(entity, slot(entity, "Priority").unwrap(), &json!("high")).unwrap_err();
        assert!(error.contains("`Priority` of `Field.WorkOrder`"), "{error}");
        let error = slot(entity, "Colour").unwrap_err();
        assert_eq!(error, "`Field.WorkOrder` has no member `Colour`");
    }
}
