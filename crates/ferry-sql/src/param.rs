//! Values as bind parameters, in the form each backend stores them, and the placeholders
//! that receive them (with the casts PostgreSQL needs to read a text-encoded value).

use ferry_model::{
    AttributeType, Decimal, Entity, Object, ObjectId, Slot, Timestamp, Value, ValueType,
};

use crate::Dialect;

/// A value ready to bind: every driver can bind these five shapes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Param {
    Null,
    Bool(bool),
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// The stored form of `value` in `dialect`.
pub fn param(value: &Value, dialect: Dialect) -> Param {
    match (value, dialect) {
        (Value::Empty, _) => Param::Null,
        (Value::String(text) | Value::Enumeration(text), _) => Param::Text(text.clone()),
        (Value::Integer(integer), _) => Param::Int(*integer),
        (Value::Decimal(decimal), Dialect::Sqlite) => Param::Int(decimal.units()),
        (Value::Decimal(decimal), Dialect::Postgres) => Param::Text(decimal.to_string()),
        (Value::Boolean(flag), Dialect::Sqlite) => Param::Int(i64::from(*flag)),
        (Value::Boolean(flag), Dialect::Postgres) => Param::Bool(*flag),
        (Value::DateTime(time), Dialect::Sqlite) => Param::Int(time.unix_micros()),
        (Value::DateTime(time), Dialect::Postgres) => Param::Text(time.to_string()),
        (Value::Binary(bytes), _) => Param::Blob(bytes.clone()),
        (Value::Reference(id), Dialect::Sqlite) => Param::Blob(id.to_bytes().to_vec()),
        (Value::Reference(id), Dialect::Postgres) => Param::Text(id.to_string()),
    }
}

/// The placeholder for parameter `index` (1-based) holding a value of `value_type`.
pub fn placeholder(index: usize, value_type: ValueType, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => format!("?{index}"),
        Dialect::Postgres => match value_type {
            ValueType::Decimal => format!("${index}::text::numeric"),
            ValueType::DateTime => format!("${index}::text::timestamptz"),
            ValueType::Reference => format!("${index}::text::uuid"),
            ValueType::String | ValueType::Enumeration => format!("${index}::text"),
            ValueType::Integer => format!("${index}::int8"),
            ValueType::Boolean => format!("${index}::bool"),
            ValueType::Binary => format!("${index}::bytea"),
        },
    }
}

/// PostgreSQL only: `ANY(…)` over parameter `index`, which holds [`array_param`] of values of
/// `value_type`: one parameter for a whole list, where an `IN (…)` list would need one each.
pub fn any_of(index: usize, value_type: ValueType) -> String {
    let element = match value_type {
        ValueType::Decimal => "numeric",
        ValueType::DateTime => "timestamptz",
        ValueType::Reference => "uuid",
        ValueType::String | ValueType::Enumeration => "text",
        ValueType::Integer => "int8",
        ValueType::Boolean => "bool",
        ValueType::Binary => "bytea",
    };
    // The text becomes an array once per execution (an InitPlan), never once per row: in a
    // plan that filters rows, a cast of a parameter alone is evaluated again for each row.
    format!("ANY((SELECT ${index}::text::{element}[])::{element}[])")
}

/// Non-empty values as one PostgreSQL array literal, for [`any_of`]; binary values are not
/// supported (nothing compares them in lists).
pub fn array_param(values: &[Value]) -> Param {
    let mut literal = String::from("{");
    for (index, value) in values.iter().enumerate() {
        assert!(
            !matches!(value, Value::Empty | Value::Binary(_)),
            "array_param takes non-empty, non-binary values"
        );
        if index > 0 {
            literal.push(',');
        }
        let text = match value {
            Value::String(text) | Value::Enumeration(text) => text.clone(),
            other => other_text(other),
        };
        literal.push('"');
        for c in text.chars() {
            if c == '"' || c == '\\' {
                literal.push('\\');
            }
            literal.push(c);
        }
        literal.push('"');
    }
    literal.push('}');
    Param::Text(literal)
}

fn other_text(value: &Value) -> String {
    match value {
        Value::Integer(i) => i.to_string(),
        Value::Decimal(d) => d.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::DateTime(t) => t.to_string(),
        Value::Reference(id) => id.to_string(),
        _ => unreachable!("strings and the unsupported kinds are handled by the caller"),
    }
}

/// Reads back a value that `param` stored (selected with `select_columns`): `attribute_type` is
/// the attribute's type, or `None` for a reference. `None` when the stored form is not one
/// `param` writes, which means the database was changed behind Ferry's back.
pub fn read_value(
    stored: Param,
    attribute_type: Option<&AttributeType>,
    dialect: Dialect,
) -> Option<Value> {
    let Some(attribute_type) = attribute_type else {
        return match (stored, dialect) {
            (Param::Null, _) => Some(Value::Empty),
            (Param::Blob(bytes), Dialect::Sqlite) => {
                Some(Value::Reference(ObjectId::from_bytes(bytes.try_into().ok()?)))
            }
            (Param::Text(text), Dialect::Postgres) => ObjectId::parse(&text).map(Value::Reference),
            _ => None,
        };
    };
    Some(match (attribute_type, stored, dialect) {
        (_, Param::Null, _) => Value::Empty,
        (AttributeType::String { .. }, Param::Text(text), _) => Value::String(text),
        (AttributeType::Enumeration { .. }, Param::Text(text), _) => Value::Enumeration(text),
        (AttributeType::Integer, Param::Int(integer), _) => Value::Integer(integer),
        (AttributeType::Decimal { scale }, Param::Int(units), Dialect::Sqlite) => {
            Value::Decimal(Decimal::new(units, *scale)?)
        }
        (AttributeType::Decimal { scale }, Param::Text(text), Dialect::Postgres) => {
            Value::Decimal(Decimal::parse(&text, *scale)?)
        }
        (AttributeType::Boolean, Param::Int(flag), Dialect::Sqlite) => Value::Boolean(flag != 0),
        (AttributeType::Boolean, Param::Bool(flag), Dialect::Postgres) => Value::Boolean(flag),
        (AttributeType::DateTime, Param::Int(micros), Dialect::Sqlite) => {
            Value::DateTime(Timestamp::from_unix_micros(micros)?)
        }
        (AttributeType::DateTime, Param::Text(text), Dialect::Postgres) => {
            Value::DateTime(Timestamp::parse(&text)?)
        }
        (AttributeType::Binary, Param::Blob(bytes), _) => Value::Binary(bytes),
        _ => return None,
    })
}

/// Reads back an object selected with `select_columns`: the id, then one stored value per slot.
/// `None` when a stored form is not one `param` writes.
pub fn read_object(entity: &Entity, stored: &[Param], dialect: Dialect) -> Option<Object> {
    let (id, members) = stored.split_first()?;
    let Some(Value::Reference(id)) = read_value(id.clone(), None, dialect) else { return None };
    if members.len() != entity.member_count() {
        return None;
    }
    let values = members
        .iter()
        .enumerate()
        .map(|(slot, stored)| {
            let attribute_type = entity.attribute_type_of(entity.member_at(Slot(slot)));
            read_value(stored.clone(), attribute_type, dialect)
        })
        .collect::<Option<Vec<Value>>>()?;
    Some(Object { id, values })
}
