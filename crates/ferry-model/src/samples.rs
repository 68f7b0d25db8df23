//! The sample models, as model-file text: every test, benchmark and the quickstart start from them.

use crate::Model;

/// A field-service app: Country, City, Customer, Site, WorkOrder, Visit, Photo (a file entity)
/// and Feedback (upload only), with Technician, Planner and Admin roles.
pub const FIELD_SERVICE: &str = include_str!("samples/field_service.toml");

/// A sales app: Country, City, Customer and Order, with SalesPerson and Manager roles.
pub const SALES: &str = include_str!("samples/sales.toml");

/// Every sample, by file name.
pub const ALL: [(&str, &str); 2] = [("field_service.toml", FIELD_SERVICE), ("sales.toml", SALES)];

pub fn field_service() -> Model {
    Model::parse(FIELD_SERVICE).expect("the field-service sample model is valid")
}

pub fn sales() -> Model {
    Model::parse(SALES).expect("the sales sample model is valid")
}
