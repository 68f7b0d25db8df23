//! Snapshots of the SQL made from the sample models: tables, filters and migration plans.

use expect_test::{Expect, expect};
use ferry_constraint::Context;
use ferry_model::{Model, ObjectId, Timestamp, samples};

use crate::{Dialect, Side, compile_where, create_schema, insert_statement, plan_migration};

#[test]
fn work_order_tables() {
    let model = samples::field_service();
    let find = |dialect| {
        create_schema(&model, dialect, Side::Server)
            .into_iter()
            .filter(|s| s.contains("\"Field.WorkOrder\""))
            .collect::<Vec<_>>()
            .join(";\n")
    };
    expect![[r#"
        CREATE TABLE "Field.WorkOrder" (
          id BLOB PRIMARY KEY NOT NULL,
          _rev INTEGER NOT NULL DEFAULT 0,
          _seq INTEGER NOT NULL DEFAULT 0,
          "Amount" INTEGER,
          "Completed" INTEGER,
          "DueDate" INTEGER,
          "Notes" TEXT,
          "Number" INTEGER,
          "Priority" INTEGER,
          "Status" TEXT,
          "Title" TEXT,
          "Field.WorkOrder_AssignedTo" BLOB,
          "Field.WorkOrder_Site" BLOB
        ) WITHOUT ROWID;
        CREATE INDEX "ix:Field.WorkOrder_AssignedTo" ON "Field.WorkOrder" ("Field.WorkOrder_AssignedTo");
        CREATE INDEX "ix:Field.WorkOrder_Site" ON "Field.WorkOrder" ("Field.WorkOrder_Site");
        CREATE INDEX "ix:Field.WorkOrder.Number" ON "Field.WorkOrder" ("Number");
        CREATE INDEX "seq:Field.WorkOrder" ON "Field.WorkOrder" (_seq)"#]]
    .assert_eq(&find(Dialect::Sqlite));
    expect![[r#"
        CREATE TABLE "Field.WorkOrder" (
          id uuid PRIMARY KEY NOT NULL,
          _rev bigint NOT NULL DEFAULT 0,
          _seq bigint NOT NULL DEFAULT 0,
          "Amount" numeric(18, 2),
          "Completed" boolean,
          "DueDate" timestamptz,
          "Notes" varchar(2000) COLLATE "C",
          "Number" bigint,
          "Priority" bigint,
          "Status" text COLLATE "C",
          "Title" varchar(200) COLLATE "C",
          "Field.WorkOrder_AssignedTo" uuid,
          "Field.WorkOrder_Site" uuid
        );
        CREATE INDEX "ix:Field.WorkOrder_AssignedTo" ON "Field.WorkOrder" ("Field.WorkOrder_AssignedTo");
        CREATE INDEX "ix:Field.WorkOrder_Site" ON "Field.WorkOrder" ("Field.WorkOrder_Site");
        CREATE INDEX "ix:Field.WorkOrder.Number" ON "Field.WorkOrder" ("Number");
        CREATE INDEX "seq:Field.WorkOrder" ON "Field.WorkOrder" (_seq)"#]]
    .assert_eq(&find(Dialect::Postgres));
}

#[test]
fn tables_come_after_the_tables_they_reference() {
    let model = samples::field_service();
    let order: Vec<String> = create_schema(&model, Dialect::Sqlite, Side::Device)
        .iter()
        .filter_map(|s| {
            s.strip_prefix("CREATE TABLE ").map(|rest| rest.split(' ').next().unwrap().to_owned())
        })
        .collect();
    expect![[r#"["\"Field.Country\"", "\"Field.City\"", "\"Field.Customer\"", "\"System.User\"", "\"Field.Site\"", "\"Field.WorkOrder\"", "\"Field.Feedback\"", "\"Field.Visit\"", "\"Field.Photo\""]"#]]
        .assert_eq(&format!("{order:?}"));
}

#[test]
fn insert_placeholders() {
    let model = samples::field_service();
    let country = model.entity("Field.Country").unwrap();
    expect![[r#"INSERT INTO "Field.Country" (id, "Code", "Name", _rev, _seq) VALUES ($1::text::uuid, $2::text, $3::text, $4::int8, $5::int8)"#]]
        .assert_eq(&insert_statement(country, Dialect::Postgres, Side::Server));
}

#[track_caller]
fn check(entity: &str, constraint: &str, expect: Expect) {
    let model = samples::field_service();
    let checked = ferry_constraint::check(&model, entity, constraint).unwrap();
    let context = Context {
        user: Some(ObjectId::from_u128(7)),
        roles: vec!["Planner".to_owned()],
        now: Timestamp::parse("2026-11-23T10:30:00Z").unwrap(),
        parameters: Default::default(),
    };
    let bound = checked.bind(&context);
    let sqlite = compile_where(&model, &bound, "t0", Dialect::Sqlite, 1);
    let postgres = compile_where(&model, &bound, "t0", Dialect::Postgres, 1);
    expect.assert_eq(&format!(
        "sqlite:   {}\npostgres: {}\nparams:   {:?}\n",
        sqlite.text, postgres.text, postgres.params
    ));
}

#[test]
fn comparisons_are_null_safe() {
    check(
        "Field.WorkOrder",
        "[Amount >= 100 and Status != 'Closed' and Notes = empty]",
        expect![[r#"
            sqlite:   ("t0"."Amount" >= ?1 AND ("t0"."Status" <> ?2 OR "t0"."Status" IS NULL) AND "t0"."Notes" IS NULL)
            postgres: ("t0"."Amount" >= $1::text::numeric AND ("t0"."Status" <> $2::text OR "t0"."Status" IS NULL) AND "t0"."Notes" IS NULL)
            params:   [Text("100.00"), Text("Closed")]
        "#]],
    );
}

#[test]
fn negation_treats_null_as_false() {
    check(
        "Field.Customer",
        "[not(contains(Name, 'Test') or starts-with(Email, 'x'))]",
        expect![[r#"
            sqlite:   NOT COALESCE((instr(lower("t0"."Name"), ?1) > 0 OR substr(lower("t0"."Email"), 1, length(?2)) = ?2), 0)
            postgres: NOT COALESCE((strpos(lower("t0"."Name"), $1::text) > 0 OR left(lower("t0"."Email"), length($2::text)) = $2::text), FALSE)
            params:   [Text("test"), Text("x")]
        "#]],
    );
}

#[test]
fn paths_are_uncorrelated_subqueries() {
    check(
        "Field.City",
        "[Field.City_Country/Field.Country/Code = 'NL' and Field.Site_City/Field.Site/Field.WorkOrder_Site/Field.WorkOrder/Field.WorkOrder_AssignedTo = '[%CurrentUser%]']",
        expect![[r#"
            sqlite:   ("t0"."Field.City_Country" IN (SELECT t1.id FROM "Field.Country" t1 WHERE t1."Code" = ?1) AND "t0".id IN (SELECT t2."Field.Site_City" FROM "Field.Site" t2 WHERE t2."Field.Site_City" IS NOT NULL AND t2.id IN (SELECT t3."Field.WorkOrder_Site" FROM "Field.WorkOrder" t3 WHERE t3."Field.WorkOrder_Site" IS NOT NULL AND t3."Field.WorkOrder_AssignedTo" = ?2)))
            postgres: ("t0"."Field.City_Country" IN (SELECT t1.id FROM "Field.Country" t1 WHERE t1."Code" = $1::text) AND "t0".id IN (SELECT t2."Field.Site_City" FROM "Field.Site" t2 WHERE t2."Field.Site_City" IS NOT NULL AND t2.id IN (SELECT t3."Field.WorkOrder_Site" FROM "Field.WorkOrder" t3 WHERE t3."Field.WorkOrder_Site" IS NOT NULL AND t3."Field.WorkOrder_AssignedTo" = $2::text::uuid)))
            params:   [Text("NL"), Text("00000000-0000-0000-0000-000000000007")]
        "#]],
    );
}

#[test]
fn tokens_become_parameters() {
    check(
        "Field.WorkOrder",
        "[DueDate >= '[%BeginOfCurrentDay%]' or '[%UserRole_Technician%]']",
        expect![[r#"
            sqlite:   ("t0"."DueDate" >= ?1 OR 0)
            postgres: ("t0"."DueDate" >= $1::text::timestamptz OR FALSE)
            params:   [Text("2026-11-23T00:00:00Z")]
        "#]],
    );
}

#[test]
fn migration_plan() {
    let old = samples::field_service();
    let source = samples::FIELD_SERVICE
        .replace("attributes.Notes = { type = \"string\", max_length = 2000 }", "attributes.Notes = { type = \"string\", max_length = 4000 }\nattributes.Urgent = { type = \"boolean\", default = false }")
        .replace("attributes.Phone = { type = \"string\", max_length = 40 }\n", "")
        .replace("\"Phone\", ", "")
        .replace("attributes.Rating = { type = \"integer\"", "attributes.Rating = { type = \"decimal\"")
        .replace("\"Done\", \"Closed\"", "\"Done\", \"Closed\", \"Cancelled\"");
    let new = Model::parse(&source).unwrap();
    let plan = plan_migration(&old, &new);
    expect![[r#"
        + widen `Field.WorkOrder.Notes` from 2000 to 4000 characters
        + add values Cancelled to enumeration `Field.WorkOrder.Status`
        + add attribute `Field.WorkOrder.Urgent` (boolean), existing objects get the default false
        ! breaking: attribute `Field.Customer.Phone` was removed; its values would be lost
        ! breaking: attribute `Field.Feedback.Rating` changed type from integer to decimal(scale 2); stored values cannot be converted safely
        ~ access rules, validation or download behaviour changed (no schema change)
    "#]]
    .assert_eq(&plan.to_string());
}

#[test]
fn additive_migration_statements() {
    let old = samples::field_service();
    let source = format!(
        "{}\n[entities.\"Field.Tool\"]\nattributes.Name = {{ type = \"string\" }}\nassociations.Tool_Site = {{ target = \"Field.Site\" }}\naccess = [{{ role = \"Admin\", read = [\"*\"] }}]\n",
        samples::FIELD_SERVICE.replace("attributes.Notes = { type = \"string\", max_length = 2000 }", "attributes.Notes = { type = \"string\", max_length = 4000 }\nattributes.Urgent = { type = \"boolean\", default = false }")
    );
    let new = Model::parse(&source).unwrap();
    let plan = plan_migration(&old, &new);
    assert!(!plan.is_breaking());
    expect![[r#"
        CREATE TABLE "Field.Tool" (
          id uuid PRIMARY KEY NOT NULL,
          _rev bigint NOT NULL DEFAULT 0,
          _seq bigint NOT NULL DEFAULT 0,
          "Name" text COLLATE "C",
          "Field.Tool_Site" uuid
        )
        CREATE INDEX "ix:Field.Tool_Site" ON "Field.Tool" ("Field.Tool_Site")
        CREATE INDEX "seq:Field.Tool" ON "Field.Tool" (_seq)
        ALTER TABLE "Field.WorkOrder" ALTER COLUMN "Notes" TYPE varchar(4000) COLLATE "C"
        ALTER TABLE "Field.WorkOrder" ADD COLUMN "Urgent" boolean DEFAULT false
    "#]]
    .assert_eq(
        &plan
            .statements(&new, Dialect::Postgres, Side::Server)
            .iter()
            .map(|s| format!("{s}\n"))
            .collect::<String>(),
    );
}

#[test]
fn rule_only_change_is_not_a_schema_change() {
    let old = samples::field_service();
    let new = Model::parse(&samples::FIELD_SERVICE.replace(
        "write = [\"Status\", \"Notes\", \"Completed\"]",
        "write = [\"Status\", \"Notes\"]",
    ))
    .unwrap();
    expect![[r#"
        no schema change
        ~ access rules, validation or download behaviour changed (no schema change)
    "#]]
    .assert_eq(&plan_migration(&old, &new).to_string());
}

#[test]
fn update_only_the_changed_members() {
    let model = samples::field_service();
    let order = model.entity("Field.WorkOrder").unwrap();
    let slots =
        [order.slot(order.member("Status").unwrap()), order.slot(order.member("Notes").unwrap())];
    expect![[r#"UPDATE "Field.WorkOrder" SET "Status" = $1::text, "Notes" = $2::text, _rev = _rev + 1, _seq = $3::int8 WHERE id = $4::text::uuid RETURNING _rev"#]].assert_eq(&crate::update_statement(order, &slots, Dialect::Postgres, Side::Server));
}

#[test]
fn copy_lines_escape_text_and_write_nulls() {
    let model = samples::sales();
    let order = model.entity("Sales.Order").unwrap();
    let mut values = order.default_values();
    let set = |values: &mut Vec<ferry_model::Value>, name: &str, value: ferry_model::Value| {
        values[order.slot(order.member(name).unwrap()).0] = value;
    };
    set(&mut values, "Note", ferry_model::Value::String("tab\there\\ and\nnew line".to_owned()));
    set(&mut values, "Signature", ferry_model::Value::Binary(vec![0, 255]));
    set(
        &mut values,
        "Amount",
        ferry_model::Value::Decimal(ferry_model::Decimal::parse("-1.5", 2).unwrap()),
    );
    let mut line = String::new();
    crate::copy_line(ObjectId::from_u128(1), &values, &[1, 42], &mut line);
    expect![[r#"
        00000000-0000-0000-0000-000000000001	-1.50	\N	\N	tab\there\\ and\nnew line	\N	\N	f	\N	\\x00ff	Draft	\N	1	42
    "#]]
    .assert_eq(&line);
    expect![[r#"COPY "Sales.Order" (id, "Amount", "ChangedDate", "Discount", "Note", "Number", "OrderDate", "Paid", "Reference", "Signature", "Status", "Sales.Order_Customer", _rev, _seq) FROM STDIN"#]]
        .assert_eq(&crate::copy_statement(order, Side::Server));
}
