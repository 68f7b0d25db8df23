//! Tests of model loading: the samples, every error with its position, and the version hash.

use expect_test::{Expect, expect};

use crate::{Model, ModelErrorKind, samples};

#[track_caller]
fn check_errors(source: &str, expect: Expect) {
    let errors = Model::parse(source).expect_err("the model should be refused");
    let text: String = errors.iter().map(|e| format!("{e}\n")).collect();
    expect.assert_eq(&text);
}

const ROLES: &str = "[roles.User]\n";

#[test]
fn samples_are_valid() {
    for (name, source) in samples::ALL {
        if let Err(errors) = Model::parse(source) {
            panic!("{name}: {errors:?}");
        }
    }
}

#[test]
fn sample_summary() {
    let model = samples::field_service();
    let text: String = model
        .entities()
        .map(|e| {
            format!(
                "{} attributes={} associations={} download={} rules={}\n",
                e.name,
                e.attributes.len(),
                e.associations.len(),
                e.download.keyword(),
                e.access.len()
            )
        })
        .collect();
    expect![[r#"
        Field.City attributes=1 associations=1 download=all rules=3
        Field.Country attributes=2 associations=0 download=all rules=3
        Field.Customer attributes=4 associations=1 download=all rules=3
        Field.Feedback attributes=3 associations=1 download=nothing-clear rules=2
        Field.Photo attributes=5 associations=1 download=nothing-preserve rules=3
        Field.Site attributes=2 associations=2 download=all rules=3
        Field.Visit attributes=3 associations=2 download=all rules=3
        Field.WorkOrder attributes=8 associations=2 download=constraint rules=3
        System.User attributes=1 associations=0 download=nothing-preserve rules=0
    "#]]
    .assert_eq(&text);
}

#[test]
fn syntax_error_has_position() {
    check_errors(
        "[roles.User]\n[entities.\"A.B\"\nattributes.X = 1\n",
        expect![[r#"
            2:16: unclosed table, expected `]`
        "#]],
    );
}

#[test]
fn unknown_key_is_an_error() {
    check_errors(
        "[roles.User]\n[entities.\"A.B\"]\ncolour = \"red\"\n",
        expect![[r#"
            3:1: unknown field `colour`, expected one of `file`, `download`, `download_constraint`, `conflict`, `attributes`, `associations`, `access`
        "#]],
    );
}

/// A model file nested without end (arrays in arrays, tables in tables) is a syntax error with
/// a position, never a crash: the TOML parser limits its nesting.
#[test]
fn a_model_file_nested_beyond_reason_is_refused() {
    let deep_array = format!("[roles.A]\nx = {}1{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let deep_table =
        format!("[roles.A]\nx = {}1{}\n", "{ a = ".repeat(100_000), " }".repeat(100_000));
    for source in [deep_array, deep_table] {
        let errors = Model::parse(&source).unwrap_err();
        assert!(matches!(errors[0].kind, ModelErrorKind::Syntax { .. }), "{:?}", errors[0]);
    }
}

#[test]
fn every_error_is_reported_at_once() {
    check_errors(
        &format!(
            "{ROLES}[entities.\"A.B\"]\n\
             attributes.X = {{ type = \"text\" }}\n\
             attributes.Y = {{ type = \"integer\", max_length = 3 }}\n\
             attributes.Z = {{ type = \"decimal\", scale = 2, default = \"1.234\" }}\n\
             attributes.W = {{ type = \"decimal\", default = 1.5 }}\n\
             associations.B_C = {{ target = \"A.C\" }}\n\
             access = [{{ role = \"Nobody\" }}, {{ role = \"User\", read = [\"Q\"] }}]\n\
             [entities.Bad]\n\
             access = [{{ role = \"User\", read = [\"*\"] }}]\n"
        ),
        expect![[r#"
            3:25: attribute `A.B.X` has unknown type `text` (expected string, integer, decimal, boolean, datetime, enumeration or binary)
            4:49: attribute `A.B.Y`: `max_length` does not apply to type integer
            5:57: attribute `A.B.Z`: default: `1.234` is not a decimal with at most 2 fractional digits and 18 digits in all
            6:46: attribute `A.B.W`: default: write decimals as strings ("12.50") so they stay exact
            7:31: association `A.B_C` targets unknown entity `A.C`
            8:20: entity `A.B`: access rule names unknown role `Nobody`
            8:57: entity `A.B`: access rule for role `User` names unknown member `Q`
            9:11: entity name `Bad` is not valid: entity names are qualified by their module, as in `Sales.Order`
        "#]],
    );
}

#[test]
fn model_that_cannot_work_offline_is_refused() {
    check_errors(
        &format!(
            "{ROLES}[entities.\"A.Job\"]\n\
             attributes.Title = {{ type = \"string\", required = true }}\n\
             attributes.Note = {{ type = \"string\" }}\n\
             associations.Job_Log = {{ target = \"A.Log\" }}\n\
             access = [{{ role = \"User\", create = true, read = [\"Note\"], write = [\"Note\", \"Job_Log\"] }}]\n\
             [entities.\"A.Log\"]\n\
             download = \"nothing-clear\"\n\
             [entities.\"A.Orphan\"]\n\
             download = \"constraint\"\n"
        ),
        expect![[r#"
            5:14: cannot work offline: association `A.Job_Log` points at `A.Log`, which is cleared on devices (download = "nothing-clear"), so the reference could never be followed there
            6:11: cannot work offline: role `User` may write member `A.Job_Log` of `A.Job` but not read it, so a device cannot hold the value it writes
            6:11: cannot work offline: role `User` may create `A.Job` but not write its required attribute `Title`, which has no default, so every object it creates offline would be rejected
            7:11: cannot work offline: entity `A.Log` has no access rule, so no device can read or create it
            9:11: cannot work offline: entity `A.Orphan` has no access rule, so no device can read or create it
            10:12: entity `A.Orphan`: download = "constraint" needs a download_constraint
        "#]],
    );
}

#[test]
fn version_ignores_comments_formatting_and_order() {
    let a = "[roles.User]\n[roles.Boss]\n[entities.\"A.B\"]\nattributes.X = { type = \"integer\" }\nattributes.Y = { type = \"string\" }\naccess = [{ role = \"User\", read = [\"*\"] }]\n";
    let b = "# comment\n[roles]\nBoss = {}\nUser = {}\n\n[entities.\"A.B\"]\naccess = [ { role = \"User\",  read = [\"*\"] } ]\nattributes.Y = { type = \"string\" }   # why\nattributes.X = { type = \"integer\" }\n";
    let c = a.replace("integer", "boolean");
    let version = |s: &str| Model::parse(s).unwrap().version();
    assert_eq!(version(a), version(b));
    assert_ne!(version(a), version(&c));
}

#[test]
fn sample_versions_are_stable() {
    expect!["94efa8d4ef81667d"].assert_eq(&samples::field_service().version().to_string());
}

#[test]
fn limits_are_clear_errors() {
    let huge = format!("{ROLES}# {}\n", "x".repeat(crate::MODEL_FILE_BYTES_MAX));
    check_errors(
        &huge,
        expect![[r#"
            1:1: model file is larger than 4194304 bytes
        "#]],
    );
    let long = format!("A.{}", "B".repeat(60));
    check_errors(
        &format!(
            "{ROLES}[entities.\"{long}\"]\naccess = [{{ role = \"User\", read = [\"*\"] }}]\n"
        ),
        expect![[r#"
            2:11: entity name `A.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB` is not valid: names are at most 59 bytes long, including the module
        "#]],
    );
}

/// Declared actions are checked like the rest: who may call them, an entity whose objects can go
/// to a device, plain parameters only, associations to follow that exist.
#[test]
fn a_declared_action_that_cannot_work_is_refused_with_its_name() {
    check_errors(
        &format!(
            "{ROLES}[entities.\"A.B\"]\n\
             file = true\n\
             access = [{{ role = \"User\", read = [\"*\"] }}]\n\
             [entities.\"A.C\"]\n\
             associations.C_B = {{ target = \"A.B\" }}\n\
             access = [{{ role = \"User\", read = [\"*\"] }}]\n\
             [actions.Push]\n\
             roles = [\"Nobody\"]\n\
             entity = \"A.B\"\n\
             [actions.Other]\n\
             roles = [\"User\"]\n\
             entity = \"A.C\"\n\
             parameters.Order = {{ type = \"A.C\" }}\n\
             parameters.Size = {{ type = \"float\" }}\n\
             follow = [\"A.C_B\", \"A.Nope\"]\n\
             [actions.None]\n\
             entity = \"A.C\"\n"
        ),
        expect![[r#"
            9:11: action `Push`: unknown role `Nobody`
            10:11: action `Push`: `A.B` is a file entity: file objects cannot be synchronized to the device by an action
            14:30: action `Other`: parameter `Order` is a persistable object (`A.C`): actions take plain values; declare type = "id" and pass its id
            15:29: action `Other`: parameter `Size` has unknown type `float` (expected string, integer, decimal, boolean, datetime or id)
            16:12: action `Other`: `A.C_B` leads to the file entity `A.B`: file objects cannot be synchronized to the device by an action
            16:21: action `Other`: `A.C` has no association `A.Nope` to follow
            17:10: action `None`: `roles` must name who may call it
        "#]],
    );
}

/// Each association says what deleting its target does; an unknown behaviour is named, and a
/// model that names none keeps its version (the default is `clear`).
#[test]
fn associations_declare_their_delete_behaviour() {
    let source = |behaviour: &str| {
        format!(
            "{ROLES}[entities.\"A.Job\"]\n\
             associations.Job_Site = {{ target = \"A.Site\"{behaviour} }}\n\
             access = [{{ role = \"User\", read = [\"*\"] }}]\n\
             [entities.\"A.Site\"]\n\
             access = [{{ role = \"User\", read = [\"*\"] }}]\n"
        )
    };
    let on_delete = |behaviour: &str| {
        let model = Model::parse(&source(behaviour)).unwrap();
        model.entity("A.Job").unwrap().associations[0].on_delete
    };
    assert_eq!(on_delete(""), crate::DeleteBehaviour::Clear);
    assert_eq!(on_delete(", on_delete = \"delete\""), crate::DeleteBehaviour::Delete);
    assert_eq!(on_delete(", on_delete = \"refuse\""), crate::DeleteBehaviour::Refuse);
    let version = |behaviour: &str| Model::parse(&source(behaviour)).unwrap().version().to_string();
    assert_eq!(version(""), version(", on_delete = \"clear\""));
    assert_ne!(version(""), version(", on_delete = \"refuse\""));
    check_errors(
        &source(", on_delete = \"cascade\""),
        expect![[r#"
            3:58: association `A.Job_Site`: unknown delete behaviour `cascade` (expected clear, delete or refuse)
        "#]],
    );
}
