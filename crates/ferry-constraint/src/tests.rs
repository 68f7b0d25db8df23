//! Tests of parsing and checking: what each constraint means, and every error with its span.

use expect_test::{Expect, expect};
use ferry_model::samples;

use crate::{check, check_model};

#[track_caller]
fn check_field(entity: &str, text: &str, expect: Expect) {
    let model = samples::field_service();
    let actual = match check(&model, entity, text) {
        Ok(constraint) => constraint.describe(&model),
        Err(errors) => errors.iter().map(|e| format!("error: {e}")).collect::<Vec<_>>().join("\n"),
    };
    expect.assert_eq(&actual);
}

#[track_caller]
fn order(text: &str, expect: Expect) {
    check_field("Field.WorkOrder", text, expect);
}

#[test]
fn sample_model_constraints_check() {
    for (name, source) in samples::ALL {
        let model = ferry_model::Model::parse(source).unwrap();
        if let Err(errors) = check_model(&model) {
            panic!("{name}: {errors:?}");
        }
    }
}

#[test]
fn comparisons_take_the_member_type() {
    order(
        "[Status = 'Open' and Amount >= 100 and Priority < 3 and Completed = false()]",
        expect![[
            r#"(Status = "Open" and Amount >= 100.00 and Priority < 3 and Completed = false)"#
        ]],
    );
}

#[test]
fn value_on_the_left_flips_the_operator() {
    order("[100 < Amount]", expect!["Amount > 100.00"]);
}

#[test]
fn several_groups_are_and() {
    order("[Priority = 1][Notes != empty]", expect!["(Priority = 1 and Notes != empty)"]);
}

#[test]
fn tokens() {
    order(
        "[Field.WorkOrder_AssignedTo = '[%CurrentUser%]' or DueDate < [%BeginOfCurrentDay%] or '[%UserRole_Planner%]']",
        expect![
            "(Field.WorkOrder_AssignedTo = [%CurrentUser%] or DueDate < [%BeginOfCurrentDay%] or [%UserRole_Planner%])"
        ],
    );
}

#[test]
fn paths_of_several_hops_forward() {
    order(
        "[Field.WorkOrder_Site/Field.Site/Field.Site_City/Field.City/Field.City_Country/Field.Country/Code = 'NL']",
        expect![[
            r#"exists Field.WorkOrder_Site/Field.Site[exists Field.Site_City/Field.City[exists Field.City_Country/Field.Country[Code = "NL"]]]"#
        ]],
    );
}

#[test]
fn paths_backwards_and_filters() {
    check_field(
        "Field.Country",
        "[Field.City_Country/Field.City[Name = 'Delft']/Field.Site_City/Field.Site/Name != empty]",
        expect![[
            r#"exists reverse Field.City_Country/Field.City[(Name = "Delft" and exists reverse Field.Site_City/Field.Site[Name != empty])]"#
        ]],
    );
}

#[test]
fn existence_and_reverse_reference_comparison() {
    check_field(
        "Field.Site",
        "[Field.WorkOrder_Site/Field.WorkOrder and Field.WorkOrder_Site = empty]",
        expect![
            "(exists reverse Field.WorkOrder_Site/Field.WorkOrder[true] and not(exists reverse Field.WorkOrder_Site/Field.WorkOrder[true]))"
        ],
    );
}

#[test]
fn text_functions_fold_ascii_case() {
    check_field(
        "Field.Customer",
        "[not(contains(Name, 'TeSt')) and starts-with(Email, 'A') or ends-with(Field.Customer_City/Field.City/Name, 'dam')]",
        expect![[
            r#"((not(contains(Name, "test")) and starts-with(Email, "a")) or exists Field.Customer_City/Field.City[ends-with(Name, "dam")])"#
        ]],
    );
}

#[test]
fn dates_and_decimals_are_checked_literals() {
    order(
        "[DueDate >= '2026-01-31' and DueDate < '2026-02-01T12:30:00.5Z' and Amount = -0.5]",
        expect![
            "(DueDate >= 2026-01-31T00:00:00Z and DueDate < 2026-02-01T12:30:00.500000Z and Amount = -0.50)"
        ],
    );
}

#[test]
fn unknown_names_have_positions() {
    order(
        "[Stat = 'Open' or Field.WorkOrder_Site/Field.City/Name = 'x' or Field.Nope/Field.Site/Name = 'y']",
        expect![[r#"
            error: unknown attribute or association `Stat` on entity `Field.WorkOrder` at 1..5
            error: association `Field.WorkOrder_Site` leads to `Field.Site`, not `Field.City` at 39..49
            error: unknown attribute or association `Field.Nope` on entity `Field.WorkOrder` at 64..74"#]],
    );
}

#[test]
fn type_mismatches_are_errors() {
    order(
        "[Priority = 'high' or Amount = 1.234 or Status = 'Lost' or Status > 'Open' or DueDate = 'tomorrow' or Completed = 1]",
        expect![[r#"
            error: cannot compare `Priority` (integer) with a string at 12..18
            error: `Amount` (decimal): 1.234 does not fit: at most 2 fractional digits and 18 digits in all at 31..36
            error: `Status` (enumeration): 'Lost' is not one of Open, InProgress, Done, Closed at 49..55
            error: operator `>` does not apply to `Status` (enumeration); use = or != at 68..74
            error: `DueDate` (date-time): 'tomorrow' is not a UTC date-time such as 2026-01-31T08:00:00Z at 88..98
            error: cannot compare `Completed` (boolean) with a number at 114..115"#]],
    );
}

#[test]
fn tokens_are_typed() {
    order(
        "[Title = '[%CurrentUser%]' or DueDate = '[%Tomorrow%]' or Field.WorkOrder_Site = '[%CurrentUser%]' or '[%UserRole_Boss%]' or Priority > empty]",
        expect![[r#"
            error: cannot compare `Title` (string) with [%CurrentUser%] at 9..26
            error: unknown token `[%Tomorrow%]` (expected CurrentUser, CurrentDateTime, BeginOfCurrentDay, BeginOfTomorrow, BeginOfYesterday or UserRole_<role>) at 40..54
            error: cannot compare `Field.WorkOrder_Site` (to Field.Site) (reference) with [%CurrentUser%] (a System.User) at 81..98
            error: unknown role `Boss` in `[%UserRole_Boss%]` at 102..121
            error: only = and != compare with empty at 136..141"#]],
    );
}

#[test]
fn syntax_errors() {
    let cases = [
        "",
        "Status = 'Open'",
        "[Status = 'Open'",
        "[Status = 'Open]",
        "[Status == 'Open']",
        "[Status = 'Open' and]",
        "[(Priority = 1]",
        "[frobnicate(Title, 'x')]",
        "[Priority = 1.2.3]",
        "[Priority # 1]",
        "[Priority = 1] or [Priority = 2]",
        "[Title]",
        "[Priority = Amount]",
        "[1 = 1]",
        "[contains(Priority, 'x')]",
    ];
    let model = samples::field_service();
    let text: String = cases
        .iter()
        .map(|case| match check(&model, "Field.WorkOrder", case) {
            Ok(c) => format!("{case:32} ok {}\n", c.describe(&model)),
            Err(errors) => format!("{case:32} {}\n", errors[0]),
        })
        .collect();
    expect![[r#"
                                         expected `[`, found the end at 0..0
        Status = 'Open'                  expected `[`, found `Status` at 0..6
        [Status = 'Open'                 expected `]` or an operator, found the end at 16..16
        [Status = 'Open]                 unterminated string at 10..16
        [Status == 'Open']               expected a member, a path or a value, found `=` at 9..10
        [Status = 'Open' and]            expected a member, a path or a value, found `]` at 20..21
        [(Priority = 1]                  expected `)`, found `]` at 14..15
        [frobnicate(Title, 'x')]         unknown function `frobnicate` (expected not, true, false, contains, starts-with or ends-with) at 1..11
        [Priority = 1.2.3]               `1.2.3` is not a number at 12..17
        [Priority # 1]                   unexpected character `#` at 10..11
        [Priority = 1] or [Priority = 2] expected `[`, found `or` at 15..17
        [Title]                          `Title` is not a condition by itself: compare it with a value at 1..6
        [Priority = Amount]              cannot compare two members (`Priority` and `Amount`): compare a member with a value at 10..11
        [1 = 1]                          cannot compare two values: one side must be a member at 3..4
        [contains(Priority, 'x')]        contains takes a string member and a string value at 10..18
    "#]]
    .assert_eq(&text);
}

#[test]
fn model_constraint_errors_point_into_the_file() {
    let source = samples::FIELD_SERVICE.replace("[Status != 'Closed'", "[Staus != 'Closed'");
    let model = ferry_model::Model::parse(&source).unwrap();
    let errors = check_model(&model).unwrap_err();
    expect![[r#"
        [
            "53:25: entity `Field.WorkOrder`: download constraint: unknown attribute or association `Staus` on entity `Field.WorkOrder`",
        ]
    "#]]
    .assert_debug_eq(&errors.iter().map(|e| e.to_string()).collect::<Vec<_>>());
}

#[test]
fn nesting_is_limited() {
    let deep = format!("[{}Priority = 1{}]", "(".repeat(100), ")".repeat(100));
    let model = samples::field_service();
    let errors = check(&model, "Field.WorkOrder", &deep).unwrap_err();
    expect!["constraint nests deeper than 32 levels at 33..34"].assert_eq(&errors[0].to_string());
}

/// A path that goes back and forth along one association, as long as the text allows, would nest
/// one `exists` per hop: the steps of a path and the levels they nest are both limited.
#[test]
fn path_length_and_the_nesting_of_its_hops_are_limited() {
    let model = samples::field_service();
    let hop = "Field.WorkOrder_Site/Field.Site/Field.WorkOrder_Site/Field.WorkOrder/";
    let long = format!("[{}Priority = 1]", hop.repeat(200));
    let errors = check(&model, "Field.WorkOrder", &long).unwrap_err();
    expect!["path has more than 16 steps at 277..297"].assert_eq(&errors[0].to_string());
    // Paths in filters of paths: each short, together too deep.
    let nested = format!(
        "[{}Priority = 1{}]",
        "Field.WorkOrder_Site/Field.Site[Field.WorkOrder_Site/Field.WorkOrder[".repeat(12),
        "]]".repeat(12)
    );
    let errors = check(&model, "Field.WorkOrder", &nested).unwrap_err();
    expect!["constraint nests deeper than 32 levels at 553..573"].assert_eq(&errors[0].to_string());
    // The longest path accepted checks, binds, evaluates and compiles without trouble.
    let longest = format!("[{}Priority = 1]", hop.repeat(3));
    let constraint = check(&model, "Field.WorkOrder", &longest).unwrap();
    assert_eq!(constraint.describe(&model).matches("exists").count(), 6);
}

/// Inputs the fuzzer found crashing the parser; each must now be a clean error.
#[test]
fn fuzz_regressions() {
    let model = samples::field_service();
    let text: String = ["[%]'ade}%%", "[%]"]
        .iter()
        .map(|case| {
            format!("{case:12} {}\n", check(&model, "Field.WorkOrder", case).unwrap_err()[0])
        })
        .collect();
    expect![[r#"
        [%]'ade}%%   unterminated token at 0..10
        [%]          unterminated token at 0..3
    "#]]
    .assert_eq(&text);
}

#[test]
fn dependencies_decide_the_download_strategy() {
    let model = samples::field_service();
    let describe = |entity: &str, text: &str| {
        let constraint = check(&model, entity, text).unwrap();
        let others: Vec<String> =
            constraint.other_entities().iter().map(|e| e.to_string()).collect();
        format!(
            "others={others:?} time={:?} roles={}",
            constraint.time_dependence(),
            constraint.uses_roles()
        )
    };
    expect![[r#"others=[] time=None roles=false"#]].assert_eq(&describe(
        "Field.WorkOrder",
        "[Status = 'Open' and Field.WorkOrder_AssignedTo = '[%CurrentUser%]']",
    ));
    expect![[r#"others=["Field.Site", "Field.Visit"] time=Day roles=true"#]].assert_eq(&describe(
        "Field.WorkOrder",
        "[Field.WorkOrder_Site/Field.Site/Name = 'x' or Field.Visit_WorkOrder/Field.Visit/StartedAt > '[%BeginOfCurrentDay%]' or '[%UserRole_Admin%]']",
    ));
    expect![[r#"others=[] time=Moment roles=false"#]].assert_eq(&describe(
        "Field.WorkOrder",
        "[DueDate < '[%CurrentDateTime%]' or DueDate >= '[%BeginOfTomorrow%]']",
    ));
}

#[test]
fn length_is_limited() {
    let long = format!("[Title = '{}']", "x".repeat(crate::CONSTRAINT_BYTES_MAX));
    let model = samples::field_service();
    let errors = check(&model, "Field.WorkOrder", &long).unwrap_err();
    expect!["constraint is longer than 16384 bytes at 0..16396"].assert_eq(&errors[0].to_string());
}

/// `$Name` stands for a declared parameter of an action, typed by its declaration and given its
/// value when the constraint is bound.
#[test]
fn parameters_are_typed_by_their_declaration_and_bound_with_the_context() {
    use std::collections::BTreeMap;

    use ferry_model::{Decimal, Object, ObjectId, Timestamp, Value, ValueType};

    use crate::{Context, NoGraph, check_with_parameters};

    let model = samples::field_service();
    let declared = BTreeMap::from([
        ("Status".to_owned(), ValueType::String),
        ("Least".to_owned(), ValueType::Decimal),
        ("Site".to_owned(), ValueType::Reference),
    ]);
    let text = "[Status = $Status and Amount >= $Least and Field.WorkOrder_Site = $Site]";
    let checked = check_with_parameters(&model, "Field.WorkOrder", text, &declared).unwrap();
    expect![[r#"(Status = $Status and Amount >= $Least and Field.WorkOrder_Site = $Site)"#]]
        .assert_eq(&checked.describe(&model));

    let entity = model.entity("Field.WorkOrder").unwrap();
    let slot = |name: &str| entity.slot(entity.member(name).unwrap()).0;
    let site = ObjectId::from_u128(5);
    let mut order = Object { id: ObjectId::from_u128(1), values: entity.default_values() };
    order.values[slot("Amount")] = Value::Decimal(Decimal::parse("12.50", 2).unwrap());
    order.values[slot("Field.WorkOrder_Site")] = Value::Reference(site);
    let bound = |status: &str, least: &str| {
        let parameters = BTreeMap::from([
            ("Status".to_owned(), Value::String(status.to_owned())),
            ("Least".to_owned(), Value::Decimal(Decimal::parse(least, 1).unwrap())),
            ("Site".to_owned(), Value::Reference(site)),
        ]);
        let now = Timestamp::parse("2026-11-23T10:00:00Z").unwrap();
        checked.bind(&Context { user: None, roles: Vec::new(), now, parameters })
    };
    assert!(
        bound("Open", "12.5").matches(&order, &NoGraph),
        "a string parameter meets an enumeration"
    );
    assert!(!bound("Done", "12.5").matches(&order, &NoGraph));
    assert!(!bound("Open", "12.6").matches(&order, &NoGraph), "the decimal is compared at scale 2");

    let errors = |text: &str| -> String {
        let errors = check_with_parameters(&model, "Field.WorkOrder", text, &declared).unwrap_err();
        errors.iter().map(|e| format!("error: {e}")).collect::<Vec<_>>().join("\n")
    };
    expect![[r#"error: unknown parameter `$Nope` (declared: Least, Site, Status) at 10..15"#]]
        .assert_eq(&errors("[Status = $Nope]"));
    expect![[r#"error: cannot compare `Priority` (integer) with $Status (string) at 12..19"#]]
        .assert_eq(&errors("[Priority = $Status]"));
    expect![[r#"error: a `$` starts a parameter name, as in `$Status` at 10..11"#]]
        .assert_eq(&errors("[Status = $ ]"));
    let plain = check(&model, "Field.WorkOrder", "[Status = $Status]").unwrap_err();
    assert!(plain[0].to_string().contains("(none is declared)"), "{plain:?}");
}
