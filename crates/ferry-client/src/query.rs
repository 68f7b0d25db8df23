//! Local queries: the constraint language over the device database, sorted and paged.

use ferry_constraint::Context;
use ferry_model::{Entity, ObjectId, Slot, Value};
use ferry_sql::{Dialect, compile_where, param, read_object, select_columns, table_name};
use rusqlite::OptionalExtension as _;

use crate::ClientError;
use crate::database::{Database, from_sql, id_param, to_sql};
use crate::object::Object;

/// Ascending or descending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Smallest first (strings by their UTF-8 bytes).
    Ascending,
    /// Largest first.
    Descending,
}

/// A local query: objects of one entity matching an optional constraint.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ferry-doc-query-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir); std::fs::create_dir_all(&dir).unwrap();
/// use ferry_client::{Database, Order, Query};
/// use ferry_model::{Value, samples};
///
/// let db = Database::open(dir.join("device.db"), samples::FIELD_SERVICE)?;
/// for (n, priority) in [(1, 5), (2, 1), (3, 4)] {
///     let mut order = db.create("Field.WorkOrder")?;
///     db.set(&mut order, "Number", Value::Integer(n))?;
///     db.set(&mut order, "Title", Value::String(format!("Order {n}")))?;
///     db.set(&mut order, "Priority", Value::Integer(priority))?;
///     db.commit(&mut [&mut order])?;
/// }
/// let urgent = db.query(&Query::new("Field.WorkOrder").filter("[Priority >= 4]").sort("Number", Order::Descending))?;
/// let numbers: Vec<&Value> = urgent.iter().map(|o| db.get_value(o, "Number").unwrap()).collect();
/// assert_eq!(numbers, [&Value::Integer(3), &Value::Integer(1)]);
/// # Ok::<(), ferry_client::ClientError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Query {
    pub(crate) entity: String,
    pub(crate) constraint: Option<String>,
    sort: Vec<(String, Order)>,
    limit: Option<usize>,
    offset: usize,
}

impl Query {
    /// Every object of `entity`, in id order.
    pub fn new(entity: &str) -> Query {
        Query {
            entity: entity.to_owned(),
            constraint: None,
            sort: Vec::new(),
            limit: None,
            offset: 0,
        }
    }

    /// Only objects matching the constraint, e.g. `[Status = 'Open']`.
    pub fn filter(mut self, constraint: &str) -> Query {
        self.constraint = Some(constraint.to_owned());
        self
    }

    /// Sorts by an attribute; several calls sort by several, in order. Ties keep id order.
    pub fn sort(mut self, attribute: &str, order: Order) -> Query {
        self.sort.push((attribute.to_owned(), order));
        self
    }

    /// At most `limit` objects.
    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = Some(limit);
        self
    }

    /// True when the result set is every matching object in id order, each matching by its
    /// own values (no path to other objects, no clock): what a write changes in it follows
    /// from the objects the write touched alone.
    pub(crate) fn follows_its_objects(&self) -> bool {
        let constraint = self.constraint.as_deref().unwrap_or_default();
        let timeless = constraint.replace("[%CurrentUser%]", "");
        let own_values = !constraint.contains('/') && !timeless.contains("[%");
        own_values && self.sort.is_empty() && self.limit.is_none() && self.offset == 0
    }

    /// Skips the first `offset` objects.
    pub fn offset(mut self, offset: usize) -> Query {
        self.offset = offset;
        self
    }
}

impl Database {
    /// The committed objects matching the query, as stored on the device.
    pub fn query(&self, query: &Query) -> Result<Vec<Object>, ClientError> {
        self.select(query, None)
    }

    /// Those of these objects that match the query's constraint, in id order (the query's
    /// sort, limit and offset aside).
    pub(crate) fn query_among(
        &self,
        query: &Query,
        ids: &[ObjectId],
    ) -> Result<Vec<Object>, ClientError> {
        self.select(query, Some(ids))
    }

    /// The query, or with `among` only those objects of it.
    fn select(
        &self,
        query: &Query,
        among: Option<&[ObjectId]>,
    ) -> Result<Vec<Object>, ClientError> {
        let model = self.model();
        let entity = model
            .entity(&query.entity)
            .ok_or_else(|| ClientError::UnknownEntity { entity: query.entity.clone() })?;
        let connection = self.lock();
        let context = Context {
            user: self.current_user(&connection)?,
            roles: Vec::new(),
            now: self.clock.now(),
            parameters: Default::default(),
        };
        let (mut condition, mut params) = match &query.constraint {
            Some(text) => {
                let constraint =
                    ferry_constraint::check(&model, entity.name.as_str(), text).map_err(
                        |errors| ClientError::Constraint { constraint: text.clone(), errors },
                    )?;
                let sql =
                    compile_where(&model, &constraint.bind(&context), "t0", Dialect::Sqlite, 1);
                (sql.text, sql.params)
            }
            None => ("1".to_owned(), Vec::new()),
        };
        if let Some(ids) = among {
            let first = params.len() + 1;
            let marks: Vec<String> = (first..first + ids.len()).map(|n| format!("?{n}")).collect();
            condition = format!("({condition}) AND \"t0\".id IN ({})", marks.join(", "));
            params.extend(ids.iter().map(|id| param(&Value::Reference(*id), Dialect::Sqlite)));
        }
        let sort = sort_slots(entity, if among.is_some() { &[] } else { &query.sort })?;
        let (limit, offset) = match among {
            Some(_) => (None, 0),
            None => (query.limit.map(|l| l as u64), query.offset as u64),
        };
        let sql = ferry_sql::local_query(entity, &condition, &sort, limit, offset);
        let mut statement = connection.prepare(&sql)?;
        let width = entity.member_count() + 1;
        let rows =
            statement.query_map(rusqlite::params_from_iter(params.iter().map(to_sql)), |row| {
                (0..width)
                    .map(|i| row.get::<_, rusqlite::types::Value>(i).map(from_sql))
                    .collect::<Result<Vec<_>, _>>()
            })?;
        let mut objects = Vec::new();
        for row in rows {
            let stored = read_object(entity, &row?, Dialect::Sqlite)
                .ok_or_else(|| ClientError::Corrupt(format!("a row of `{}`", entity.name)))?;
            objects.push(Object::from_database(entity.name.clone(), stored.id, stored.values));
        }
        Ok(objects)
    }

    /// The committed object with this id, if the device holds it.
    pub fn get(&self, entity: &str, id: ObjectId) -> Result<Option<Object>, ClientError> {
        let model = self.model();
        let entity_model = model
            .entity(entity)
            .ok_or_else(|| ClientError::UnknownEntity { entity: entity.to_owned() })?;
        let connection = self.lock();
        let sql = format!(
            "SELECT {} FROM {} \"t0\" WHERE \"t0\".id = ?1",
            select_columns(entity_model, "\"t0\"", Dialect::Sqlite),
            table_name(entity_model)
        );
        let width = entity_model.member_count() + 1;
        let row = connection
            .query_row(&sql, [id_param(id)], |row| {
                (0..width)
                    .map(|i| row.get::<_, rusqlite::types::Value>(i).map(from_sql))
                    .collect::<Result<Vec<_>, _>>()
            })
            .optional()?;
        let Some(row) = row else { return Ok(None) };
        let stored = read_object(entity_model, &row, Dialect::Sqlite)
            .ok_or_else(|| ClientError::Corrupt(format!("a row of `{}`", entity_model.name)))?;
        Ok(Some(Object::from_database(entity_model.name.clone(), stored.id, stored.values)))
    }
}

/// The `ORDER BY` list of a query's sort, ending with the id so that the order is total.
/// The attribute slots of a sort, each descending or not; an unknown attribute is refused.
fn sort_slots(entity: &Entity, sort: &[(String, Order)]) -> Result<Vec<(Slot, bool)>, ClientError> {
    sort.iter()
        .map(|(attribute, direction)| {
            let (index, _) =
                entity.attribute(attribute).ok_or_else(|| ClientError::UnknownMember {
                    entity: entity.name.to_string(),
                    member: attribute.clone(),
                })?;
            Ok((Slot(index), *direction == Order::Descending))
        })
        .collect()
}
