//! The generated schema on real databases: it is accepted, and values read back exactly.

use ferry_model::samples;

use crate::backends::{Postgres, Sqlite};

#[test]
fn sample_schemas_are_accepted() {
    for model in [samples::field_service(), samples::sales()] {
        Sqlite::new(&model);
        Postgres::new(&model);
    }
}
