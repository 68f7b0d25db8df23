//! The JSON form of values: strings, enumerations, decimals (as strings, exact), date-times
//! (`2026-11-23T10:00:00Z`) and ids as JSON strings; integers as numbers; booleans; binary as
//! base64; empty as `null`. Decoding checks the value against the member's type.

use ferry_model::{AttributeType, Decimal, ObjectId, Timestamp, Value};
use serde_json::Value as Json;

/// Why a JSON value is not a value of a member.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found}")]
pub struct ValueError {
    pub expected: String,
    pub found: String,
}

pub fn encode(value: &Value) -> Json {
    match value {
        Value::Empty => Json::Null,
        Value::String(text) | Value::Enumeration(text) => Json::String(text.clone()),
        Value::Integer(integer) => Json::from(*integer),
        Value::Decimal(decimal) => Json::String(decimal.to_string()),
        Value::Boolean(flag) => Json::Bool(*flag),
        Value::DateTime(time) => Json::String(time.to_string()),
        Value::Binary(bytes) => Json::String(base64_encode(bytes)),
        Value::Reference(id) => Json::String(id.to_string()),
    }
}

/// Decodes a value of an attribute of `attribute_type`, or of a reference when it is `None`.
/// Strings are checked for NUL characters (no backend stores them) but not for length: that is
/// a validation rule, reported per object.
pub fn decode(json: &Json, attribute_type: Option<&AttributeType>) -> Result<Value, ValueError> {
    let error = |expected: String| ValueError { expected, found: describe(json) };
    let Some(attribute_type) = attribute_type else {
        return match json {
            Json::Null => Ok(Value::Empty),
            Json::String(text) => ObjectId::parse(text)
                .map(Value::Reference)
                .ok_or_else(|| error("an object id".to_owned())),
            _ => Err(error("an object id".to_owned())),
        };
    };
    if json.is_null() {
        return Ok(Value::Empty);
    }
    match (attribute_type, json) {
        (AttributeType::String { .. }, Json::String(text)) if !text.contains('\0') => {
            Ok(Value::String(text.clone()))
        }
        (AttributeType::String { .. }, _) => {
            Err(error("a string without NUL characters".to_owned()))
        }
        (AttributeType::Enumeration { values }, Json::String(text)) if values.contains(text) => {
            Ok(Value::Enumeration(text.clone()))
        }
        (AttributeType::Enumeration { values }, _) => {
            Err(error(format!("one of {}", values.join(", "))))
        }
        (AttributeType::Integer, Json::Number(number)) => {
            number.as_i64().map(Value::Integer).ok_or_else(|| error("a 64-bit integer".to_owned()))
        }
        (AttributeType::Integer, _) => Err(error("a 64-bit integer".to_owned())),
        (AttributeType::Decimal { scale }, Json::String(text)) => {
            Decimal::parse(text, *scale).map(Value::Decimal).ok_or_else(|| {
                error(format!("a decimal string with at most {scale} fractional digits"))
            })
        }
        (AttributeType::Decimal { scale }, _) => {
            Err(error(format!("a decimal string with at most {scale} fractional digits")))
        }
        (AttributeType::Boolean, Json::Bool(flag)) => Ok(Value::Boolean(*flag)),
        (AttributeType::Boolean, _) => Err(error("true or false".to_owned())),
        (AttributeType::DateTime, Json::String(text)) => Timestamp::parse(text)
            .map(Value::DateTime)
            .ok_or_else(|| error("a UTC date-time".to_owned())),
        (AttributeType::DateTime, _) => Err(error("a UTC date-time".to_owned())),
        (AttributeType::Binary, Json::String(text)) => {
            base64_decode(text).map(Value::Binary).ok_or_else(|| error("base64 bytes".to_owned()))
        }
        (AttributeType::Binary, _) => Err(error("base64 bytes".to_owned())),
    }
}

fn describe(json: &Json) -> String {
    let text = json.to_string();
    if text.len() > 40 { format!("{}…", text.chars().take(40).collect::<String>()) } else { text }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 with padding; `None` for anything else.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (index, chunk) in bytes.chunks(4).enumerate() {
        let last = index == bytes.len() / 4 - 1;
        let padding = chunk.iter().rev().take_while(|&&b| b == b'=').count();
        if padding > 2 || padding > 0 && !last {
            return None;
        }
        let mut n = 0u32;
        for (i, &byte) in chunk[..4 - padding].iter().enumerate() {
            let digit = BASE64.iter().position(|&c| c == byte)? as u32;
            n |= digit << (18 - 6 * i);
        }
        let produced = 3 - padding;
        out.extend((0..produced).map(|i| (n >> (16 - 8 * i)) as u8));
    }
    Some(out)
}

/// A value serialised in its JSON form (the same as [`encode`]) without building a
/// `serde_json::Value`: for large pages, where those allocations would dominate.
pub struct JsonValue<'a>(pub &'a Value);

impl serde::Serialize for JsonValue<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Empty => serializer.serialize_unit(),
            Value::String(text) | Value::Enumeration(text) => serializer.serialize_str(text),
            Value::Integer(integer) => serializer.serialize_i64(*integer),
            Value::Decimal(decimal) => serializer.collect_str(decimal),
            Value::Boolean(flag) => serializer.serialize_bool(*flag),
            Value::DateTime(time) => serializer.collect_str(time),
            Value::Binary(bytes) => serializer.serialize_str(&base64_encode(bytes)),
            Value::Reference(id) => serializer.collect_str(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use ferry_model::AttributeType;
    use serde_json::json;

    use super::*;

    #[test]
    fn base64_round_trips() {
        for length in 0..40 {
            let bytes: Vec<u8> = (0..length).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(base64_decode(&base64_encode(&bytes)), Some(bytes));
        }
        assert_eq!(base64_encode(b"Ferry"), "RmVycnk=");
        for bad in ["R", "RmVycnk", "Rm=ycnk=", "RmVy*nk=", "===="] {
            assert_eq!(base64_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn decoding_checks_the_type() {
        let decimal = AttributeType::Decimal { scale: 2 };
        let status =
            AttributeType::Enumeration { values: vec!["Open".to_owned(), "Done".to_owned()] };
        let cases = [
            (json!("12.5"), Some(&decimal)),
            (json!(12.5), Some(&decimal)),
            (json!("1.234"), Some(&decimal)),
            (json!("Open"), Some(&status)),
            (json!("Lost"), Some(&status)),
            (json!(9007199254740993_i64), Some(&AttributeType::Integer)),
            (json!(1.5), Some(&AttributeType::Integer)),
            (json!("2026-11-23T10:00:00Z"), Some(&AttributeType::DateTime)),
            (json!("yesterday"), Some(&AttributeType::DateTime)),
            (json!(null), Some(&AttributeType::Boolean)),
            (json!("a\u{0}b"), Some(&AttributeType::String { max_length: None })),
            (json!("00000000-0000-0000-0000-00000000002a"), None),
            (json!(42), None),
        ];
        let text: String = cases
            .iter()
            .map(|(json, attribute_type)| match decode(json, *attribute_type) {
                Ok(value) => format!("{json} -> {value} -> {}\n", encode(&value)),
                Err(error) => format!("{json} -> error: {error}\n"),
            })
            .collect();
        expect![[r#"
            "12.5" -> 12.50 -> "12.50"
            12.5 -> error: expected a decimal string with at most 2 fractional digits, found 12.5
            "1.234" -> error: expected a decimal string with at most 2 fractional digits, found "1.234"
            "Open" -> "Open" -> "Open"
            "Lost" -> error: expected one of Open, Done, found "Lost"
            9007199254740993 -> 9007199254740993 -> 9007199254740993
            1.5 -> error: expected a 64-bit integer, found 1.5
            "2026-11-23T10:00:00Z" -> 2026-11-23T10:00:00Z -> "2026-11-23T10:00:00Z"
            "yesterday" -> error: expected a UTC date-time, found "yesterday"
            null -> empty -> null
            "a\u0000b" -> error: expected a string without NUL characters, found "a\u0000b"
            "00000000-0000-0000-0000-00000000002a" -> 00000000-0000-0000-0000-00000000002a -> "00000000-0000-0000-0000-00000000002a"
            42 -> error: expected an object id, found 42
        "#]].assert_eq(&text);
    }
}
