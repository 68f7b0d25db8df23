//! Statements on the objects of one entity by id, for both dialects: read one, test for one,
//! replace one whole, write the server's fresh state of some members, remove one or all, list
//! ids and revisions. The device's sync and the server build their SQL from these and from
//! [`crate::insert_statement`] and [`crate::update_statement`], never by editing statement text.

use ferry_model::{Entity, Slot, ValueType};

use crate::Dialect;
use crate::param::placeholder;
use crate::schema::{Side, assignments, column_name, insert_parts, select_columns, table_name};

/// The alias of the entity's table in [`select_by_id`].
pub const OBJECT_ALIAS: &str = "\"t0\"";

/// The object of id parameter 1, in the select list of [`select_columns`] (aliased
/// [`OBJECT_ALIAS`]).
pub fn select_by_id(entity: &Entity, dialect: Dialect) -> String {
    format!(
        "SELECT {} FROM {} {OBJECT_ALIAS} WHERE {OBJECT_ALIAS}.id = {}",
        select_columns(entity, OBJECT_ALIAS, dialect),
        table_name(entity),
        placeholder(1, ValueType::Reference, dialect)
    )
}

/// How many objects have id parameter 1: 0 or 1.
pub fn count_by_id(entity: &Entity, dialect: Dialect) -> String {
    format!(
        "SELECT count(*) FROM {} WHERE id = {}",
        table_name(entity),
        placeholder(1, ValueType::Reference, dialect)
    )
}

/// True when the entity's table holds any object.
pub fn any_object(entity: &Entity) -> String {
    format!("SELECT EXISTS (SELECT 1 FROM {})", table_name(entity))
}

/// Writes a whole object, replacing one of the same id: the parameters of
/// [`crate::insert_statement`].
pub fn replace_statement(entity: &Entity, dialect: Dialect, side: Side) -> String {
    let (table, columns, values) = insert_parts(entity, dialect, side);
    match dialect {
        Dialect::Sqlite => {
            format!(
                "INSERT OR REPLACE INTO {table} ({}) VALUES ({})",
                columns.join(", "),
                values.join(", ")
            )
        }
        Dialect::Postgres => {
            let updates: Vec<String> =
                columns.iter().skip(1).map(|c| format!("{c} = excluded.{c}")).collect();
            format!(
                "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
                columns.join(", "),
                values.join(", "),
                updates.join(", ")
            )
        }
    }
}

/// The device's write of the server's fresh state of some members: parameters 1..=n are the
/// values of `slots` in order, then the revision, then the id.
pub fn refresh_statement(entity: &Entity, slots: &[Slot], dialect: Dialect) -> String {
    let mut assignments = assignments(entity, slots, dialect);
    let revision = slots.len() + 1;
    assignments.push(format!("_rev = {}", placeholder(revision, ValueType::Integer, dialect)));
    format!(
        "UPDATE {} SET {} WHERE id = {}",
        table_name(entity),
        assignments.join(", "),
        placeholder(revision + 1, ValueType::Reference, dialect)
    )
}

/// The device's local query: the objects of `entity` (aliased `"t0"`, in the select list of
/// [`select_columns`]) where `condition` holds, sorted by `sort` (attribute slots, each
/// descending when `true`) and then by id, at most `limit` of them after skipping `offset`.
/// Both SDKs query with it (the Rust SDK directly, the TypeScript one through WebAssembly).
pub fn local_query(
    entity: &Entity,
    condition: &str,
    sort: &[(Slot, bool)],
    limit: Option<u64>,
    offset: u64,
) -> String {
    let mut order: Vec<String> = sort
        .iter()
        .map(|(slot, descending)| {
            let direction = if *descending { "DESC" } else { "ASC" };
            format!("{OBJECT_ALIAS}.{} {direction}", column_name(entity, *slot))
        })
        .collect();
    order.push(format!("{OBJECT_ALIAS}.id"));
    let limit = limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    format!(
        "SELECT {} FROM {} {OBJECT_ALIAS} WHERE {condition} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        select_columns(entity, OBJECT_ALIAS, Dialect::Sqlite),
        table_name(entity),
        order.join(", "),
    )
}

/// Removes the object of id parameter 1.
pub fn delete_by_id(entity: &Entity, dialect: Dialect) -> String {
    format!(
        "DELETE FROM {} WHERE id = {}",
        table_name(entity),
        placeholder(1, ValueType::Reference, dialect)
    )
}

/// Removes every object of the entity.
pub fn delete_all(entity: &Entity) -> String {
    format!("DELETE FROM {}", table_name(entity))
}

/// The ids of every object of the entity.
pub fn select_ids(entity: &Entity) -> String {
    format!("SELECT id FROM {}", table_name(entity))
}

/// The id and revision of each object among the `count` ids of parameters 1..=count.
pub fn revisions_statement(entity: &Entity, count: usize, dialect: Dialect) -> String {
    let marks: Vec<String> =
        (1..=count).map(|i| placeholder(i, ValueType::Reference, dialect)).collect();
    format!("SELECT id, _rev FROM {} WHERE id IN ({})", table_name(entity), marks.join(", "))
}

#[cfg(test)]
mod tests {
    use expect_test::expect;
    use ferry_model::samples;

    use super::*;

    #[test]
    fn object_statements_of_a_site() {
        let model = samples::field_service();
        let site = model.entity("Field.Site").expect("a sample entity");
        let name = site.member("Name").map(|m| site.slot(m)).expect("a member");
        let statements = [
            select_by_id(site, Dialect::Sqlite),
            count_by_id(site, Dialect::Postgres),
            replace_statement(site, Dialect::Sqlite, Side::Device),
            replace_statement(site, Dialect::Postgres, Side::Server),
            refresh_statement(site, &[name], Dialect::Sqlite),
            delete_by_id(site, Dialect::Sqlite),
            revisions_statement(site, 2, Dialect::Sqlite),
        ];
        expect![[r#"
            SELECT "t0".id, "t0"."Address", "t0"."Name", "t0"."Field.Site_City", "t0"."Field.Site_Customer" FROM "Field.Site" "t0" WHERE "t0".id = ?1
            SELECT count(*) FROM "Field.Site" WHERE id = $1::text::uuid
            INSERT OR REPLACE INTO "Field.Site" (id, "Address", "Name", "Field.Site_City", "Field.Site_Customer", _rev) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            INSERT INTO "Field.Site" (id, "Address", "Name", "Field.Site_City", "Field.Site_Customer", _rev, _seq) VALUES ($1::text::uuid, $2::text, $3::text, $4::text::uuid, $5::text::uuid, $6::int8, $7::int8) ON CONFLICT (id) DO UPDATE SET "Address" = excluded."Address", "Name" = excluded."Name", "Field.Site_City" = excluded."Field.Site_City", "Field.Site_Customer" = excluded."Field.Site_Customer", _rev = excluded._rev, _seq = excluded._seq
            UPDATE "Field.Site" SET "Name" = ?1, _rev = ?2 WHERE id = ?3
            DELETE FROM "Field.Site" WHERE id = ?1
            SELECT id, _rev FROM "Field.Site" WHERE id IN (?1, ?2)"#]].assert_eq(&statements.join("\n"));
    }
}
