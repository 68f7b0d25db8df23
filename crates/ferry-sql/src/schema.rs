//! The tables of a model: one per entity, with typed columns, an index per association column,
//! and the system columns of the side (server or device) that owns the database.

use ferry_model::{AttributeType, Entity, MemberRef, Model, Slot, ValueType};

use crate::param::placeholder;
use crate::{Dialect, quote};

/// Whose database the schema is for: each keeps its own bookkeeping columns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// Adds `_rev` (the object's revision) and `_seq` (its position in the change sequence).
    Server,
    /// Adds `_rev` (the revision the device last saw).
    Device,
}

pub fn table_name(entity: &Entity) -> String {
    quote(entity.name.as_str())
}

pub fn column_name(entity: &Entity, slot: Slot) -> String {
    quote(entity.member_name(slot))
}

/// The column type of an attribute (associations are ids).
pub fn column_type(attribute_type: &AttributeType, dialect: Dialect) -> String {
    match dialect {
        Dialect::Sqlite => match attribute_type.value_type() {
            ValueType::String | ValueType::Enumeration => "TEXT",
            ValueType::Binary | ValueType::Reference => "BLOB",
            _ => "INTEGER",
        }
        .to_owned(),
        Dialect::Postgres => match attribute_type {
            AttributeType::String { max_length: Some(max) } => {
                format!("varchar({max}) COLLATE \"C\"")
            }
            AttributeType::String { max_length: None } => "text COLLATE \"C\"".to_owned(),
            AttributeType::Enumeration { .. } => "text COLLATE \"C\"".to_owned(),
            AttributeType::Integer => "bigint".to_owned(),
            AttributeType::Decimal { scale } => {
                format!("numeric({}, {scale})", ferry_model::DECIMAL_PRECISION_MAX)
            }
            AttributeType::Boolean => "boolean".to_owned(),
            AttributeType::DateTime => "timestamptz".to_owned(),
            AttributeType::Binary => "bytea".to_owned(),
        },
    }
}

fn id_type(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "BLOB",
        Dialect::Postgres => "uuid",
    }
}

/// The fixed tables of every device database, beside the entities' tables of
/// [`create_schema`] with [`Side::Device`]: the Rust SDK and the WebAssembly core make the same.
pub const DEVICE_TABLES: [&str; 6] = [
    // Checkpoints live in ferry_meta (see `Checkpoints`); databases made before kept an
    // unused table for them.
    "DROP TABLE IF EXISTS ferry_checkpoints",
    "CREATE TABLE IF NOT EXISTS ferry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    // One row per object with committed changes not yet uploaded: what kind of change, which
    // members changed (comma-separated names), and the server revision the change is based on.
    // Objects downloads removed (deleted on the server, or no longer the user's), kept while
    // changes wait for upload: a waiting change may still refer to one (see `Removed`).
    "CREATE TABLE IF NOT EXISTS ferry_removed (entity TEXT NOT NULL, object_id BLOB NOT NULL, PRIMARY KEY (entity, object_id))",
    "CREATE TABLE IF NOT EXISTS ferry_dirty (entity TEXT NOT NULL, object_id BLOB NOT NULL, kind TEXT NOT NULL, members TEXT NOT NULL, base_revision INTEGER, PRIMARY KEY (entity, object_id))",
    // The upload journal (see `journal`): one row per change the server applied, with the
    // server's epoch and the upload's position, kept `UPLOAD_JOURNAL_DAYS`.
    "CREATE TABLE IF NOT EXISTS ferry_uploaded (entity TEXT NOT NULL, object_id BLOB NOT NULL, kind TEXT NOT NULL, members TEXT NOT NULL, base_revision INTEGER, epoch TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ferry_uploaded_at ON ferry_uploaded (at)",
];

/// `CREATE TABLE` and `CREATE INDEX` statements for every entity, targets before owners.
pub fn create_schema(model: &Model, dialect: Dialect, side: Side) -> Vec<String> {
    model
        .entities_in_reference_order()
        .into_iter()
        .flat_map(|entity| create_entity(entity, dialect, side))
        .collect()
}

pub(crate) fn create_entity(entity: &Entity, dialect: Dialect, side: Side) -> Vec<String> {
    let table = table_name(entity);
    let integer = if dialect == Dialect::Sqlite { "INTEGER" } else { "bigint" };
    let mut columns = vec![format!("id {} PRIMARY KEY NOT NULL", id_type(dialect))];
    columns.push(format!("_rev {integer} NOT NULL DEFAULT 0"));
    if side == Side::Server {
        columns.push(format!("_seq {integer} NOT NULL DEFAULT 0"));
    }
    for slot in (0..entity.member_count()).map(Slot) {
        columns.push(format!(
            "{} {}",
            column_name(entity, slot),
            member_type(entity, slot, dialect)
        ));
    }
    let without_rowid = if dialect == Dialect::Sqlite { " WITHOUT ROWID" } else { "" };
    let mut statements =
        vec![format!("CREATE TABLE {table} (\n  {}\n){without_rowid}", columns.join(",\n  "))];
    for association in &entity.associations {
        let index = quote(&format!("ix:{}", association.name));
        statements.push(format!("CREATE INDEX {index} ON {table} ({})", quote(&association.name)));
    }
    for attribute in entity.attributes.iter().filter(|a| a.rules.unique) {
        statements.push(unique_index(entity, &attribute.name));
    }
    if side == Side::Server {
        let index = quote(&format!("seq:{}", entity.name));
        statements.push(format!("CREATE INDEX {index} ON {table} (_seq)"));
    }
    statements
}

/// The index that makes checking a unique attribute a lookup. Uniqueness itself is a validation
/// rule: writers are serialised, so the check before each write is enough.
pub(crate) fn unique_index(entity: &Entity, attribute: &str) -> String {
    let name = format!("ix:{}.{attribute}", entity.name);
    // PostgreSQL cuts identifiers at 63 bytes; a longer name becomes a stable hash of itself.
    let name = if name.len() <= 63 { name } else { format!("ix:{:016x}", fnv1a(name.as_bytes())) };
    format!("CREATE INDEX {} ON {} ({})", quote(&name), table_name(entity), quote(attribute))
}

/// FNV-1a, 64 bits: a short, stable name for an over-long identifier.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub(crate) fn member_type(entity: &Entity, slot: Slot, dialect: Dialect) -> String {
    match entity.member_at(slot) {
        MemberRef::Attribute(index) => {
            column_type(&entity.attributes[index].attribute_type, dialect)
        }
        MemberRef::Association(_) => id_type(dialect).to_owned(),
    }
}

pub(crate) fn slot_value_type(entity: &Entity, slot: Slot) -> ValueType {
    match entity.member_at(slot) {
        MemberRef::Attribute(index) => entity.attributes[index].attribute_type.value_type(),
        MemberRef::Association(_) => ValueType::Reference,
    }
}

/// `INSERT` of one object: parameter 1 is the id, then one per slot in slot order, then the
/// side's system columns: `_rev` (and `_seq` on the server).
pub fn insert_statement(entity: &Entity, dialect: Dialect, side: Side) -> String {
    let (table, columns, values) = insert_parts(entity, dialect, side);
    format!("INSERT INTO {table} ({}) VALUES ({})", columns.join(", "), values.join(", "))
}

/// The table, columns and placeholders of [`insert_statement`].
pub(crate) fn insert_parts(
    entity: &Entity,
    dialect: Dialect,
    side: Side,
) -> (String, Vec<String>, Vec<String>) {
    let slots = (0..entity.member_count()).map(Slot);
    let system: &[&str] = match side {
        Side::Server => &["_rev", "_seq"],
        Side::Device => &["_rev"],
    };
    let columns: Vec<String> = std::iter::once("id".to_owned())
        .chain(slots.clone().map(|s| column_name(entity, s)))
        .chain(system.iter().map(|c| (*c).to_owned()))
        .collect();
    let first_system = entity.member_count() + 2;
    let values: Vec<String> = std::iter::once(placeholder(1, ValueType::Reference, dialect))
        .chain(slots.map(|s| placeholder(s.0 + 2, slot_value_type(entity, s), dialect)))
        .chain(
            (0..system.len()).map(|i| placeholder(first_system + i, ValueType::Integer, dialect)),
        )
        .collect();
    (table_name(entity), columns, values)
}

/// `COPY … FROM STDIN` (PostgreSQL's text format) of objects, with the columns in the order of
/// `insert_statement`; each object is one line of `copy_line`.
pub fn copy_statement(entity: &Entity, side: Side) -> String {
    let mut columns: Vec<String> = std::iter::once("id".to_owned())
        .chain((0..entity.member_count()).map(|s| column_name(entity, Slot(s))))
        .collect();
    columns.push("_rev".to_owned());
    if side == Side::Server {
        columns.push("_seq".to_owned());
    }
    format!("COPY {} ({}) FROM STDIN", table_name(entity), columns.join(", "))
}

/// One object as a line of PostgreSQL's `COPY` text format: the id, every slot's value, then the
/// system columns (`_rev`, and `_seq` on the server).
pub fn copy_line(
    id: ferry_model::ObjectId,
    values: &[ferry_model::Value],
    system: &[i64],
    out: &mut String,
) {
    use ferry_model::Value;
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = write!(out, "{id}");
    for value in values {
        out.push('\t');
        match value {
            Value::Empty => out.push_str("\\N"),
            Value::String(text) | Value::Enumeration(text) => {
                for c in text.chars() {
                    match c {
                        '\\' => out.push_str("\\\\"),
                        '\t' => out.push_str("\\t"),
                        '\n' => out.push_str("\\n"),
                        '\r' => out.push_str("\\r"),
                        c => out.push(c),
                    }
                }
            }
            Value::Integer(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Decimal(d) => {
                let _ = write!(out, "{d}");
            }
            Value::Boolean(b) => out.push(if *b { 't' } else { 'f' }),
            Value::DateTime(t) => {
                let _ = write!(out, "{t}");
            }
            Value::Binary(bytes) => {
                out.push_str("\\\\x");
                for b in bytes {
                    let _ = write!(out, "{b:02x}");
                }
            }
            Value::Reference(target) => {
                let _ = write!(out, "{target}");
            }
        }
    }
    for number in system {
        let _ = write!(out, "\t{number}");
    }
    out.push('\n');
}

/// `UPDATE` of some members of one object: parameters 1..=n are the new values of `slots` in
/// order, then (on the server, which also bumps the revision) the change sequence position,
/// then the id. On the server it returns the new revision.
pub fn update_statement(entity: &Entity, slots: &[Slot], dialect: Dialect, side: Side) -> String {
    let mut assignments = assignments(entity, slots, dialect);
    let mut next = slots.len() + 1;
    if side == Side::Server {
        // The device keeps the revision it last saw from the server; only the server counts.
        assignments.push("_rev = _rev + 1".to_owned());
        assignments.push(format!("_seq = {}", placeholder(next, ValueType::Integer, dialect)));
        next += 1;
    }
    let returning = if side == Side::Server { " RETURNING _rev" } else { "" };
    format!(
        "UPDATE {} SET {} WHERE id = {}{returning}",
        table_name(entity),
        assignments.join(", "),
        placeholder(next, ValueType::Reference, dialect)
    )
}

/// `column = placeholder` for each of `slots`, parameters 1..=n in order.
pub(crate) fn assignments(entity: &Entity, slots: &[Slot], dialect: Dialect) -> Vec<String> {
    slots
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{} = {}",
                column_name(entity, *s),
                placeholder(i + 1, slot_value_type(entity, *s), dialect)
            )
        })
        .collect()
}

/// The select list reading an object back in the form `param` writes it: the id, then every slot.
/// PostgreSQL returns decimals, date-times and ids as text, to parse exactly.
pub fn select_columns(entity: &Entity, alias: &str, dialect: Dialect) -> String {
    std::iter::once(readable_column(alias, "id", ValueType::Reference, dialect))
        .chain(
            (0..entity.member_count()).map(Slot).map(|s| select_column(entity, s, alias, dialect)),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

/// The id column in the form `read_value` reads.
pub fn select_id(alias: &str, dialect: Dialect) -> String {
    readable_column(alias, "id", ValueType::Reference, dialect)
}

/// One member's column in the form `read_value` reads.
pub fn select_column(entity: &Entity, slot: Slot, alias: &str, dialect: Dialect) -> String {
    readable_column(alias, &column_name(entity, slot), slot_value_type(entity, slot), dialect)
}

fn readable_column(alias: &str, name: &str, value_type: ValueType, dialect: Dialect) -> String {
    match (dialect, value_type) {
        (Dialect::Postgres, ValueType::Decimal | ValueType::Reference) => {
            format!("{alias}.{name}::text")
        }
        (Dialect::Postgres, ValueType::DateTime) => {
            format!(
                "to_char({alias}.{name} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
            )
        }
        _ => format!("{alias}.{name}"),
    }
}

/// `INSERT` of `rows` objects at once, each with the parameters of `insert_statement` in turn.
pub fn insert_rows_statement(entity: &Entity, dialect: Dialect, side: Side, rows: usize) -> String {
    let (table, columns, _) = insert_parts(entity, dialect, side);
    let per_row = columns.len();
    let types: Vec<ValueType> = std::iter::once(ValueType::Reference)
        .chain((0..entity.member_count()).map(|s| slot_value_type(entity, Slot(s))))
        .chain(std::iter::repeat_n(ValueType::Integer, per_row - entity.member_count() - 1))
        .collect();
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let placeholders: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, t)| placeholder(row * per_row + i + 1, *t, dialect))
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect();
    format!("INSERT INTO {table} ({}) VALUES {}", columns.join(", "), values.join(", "))
}

#[cfg(test)]
mod tests;
