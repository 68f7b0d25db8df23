//! Validation rules of the model, checked on an object's values after a change and before it is
//! applied: required, max length, range, pattern, and unique (which asks the database).

use ferry_model::{Entity, ObjectId, Slot, Value};
use ferry_sql::{column_name, param, table_name};

use crate::store::{StoreError, Tx};

/// `Ok(Err(reason))` when the object breaks a rule; `Err` when the database failed.
pub(crate) async fn validate(
    tx: &mut Tx<'_>,
    entity: &Entity,
    id: ObjectId,
    values: &[Value],
) -> Result<Result<(), String>, StoreError> {
    if let Err(reason) = check_rules(entity, values) {
        return Ok(Err(reason));
    }
    for (index, attribute) in entity.attributes.iter().enumerate().filter(|(_, a)| a.rules.unique) {
        let value = &values[index];
        if value.is_empty() {
            continue;
        }
        let dialect = tx.dialect();
        let sql = format!(
            "SELECT 1 FROM {} WHERE {} = {} AND id <> {} LIMIT 1",
            table_name(entity),
            column_name(entity, Slot(index)),
            ferry_sql::placeholder(1, attribute.attribute_type.value_type(), dialect),
            ferry_sql::placeholder(2, ferry_model::ValueType::Reference, dialect),
        );
        let rows =
            tx.query(&sql, &[param(value, dialect), param(&Value::Reference(id), dialect)]).await?;
        if !rows.is_empty() {
            return Ok(Err(unique_taken(entity, &attribute.name, value)));
        }
    }
    Ok(Ok(()))
}

pub(crate) fn unique_taken(entity: &Entity, attribute: &str, value: &Value) -> String {
    format!("validation: `{attribute}` must be unique, and another `{}` has {value}", entity.name)
}

/// The rules that need only the object itself: required, max length, range and pattern.
pub(crate) fn check_rules(entity: &Entity, values: &[Value]) -> Result<(), String> {
    entity.check_rules(values, None).map_err(|broken| broken.to_string())
}
