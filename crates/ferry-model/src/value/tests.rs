//! Tests of the scalar types' text forms and arithmetic edges.

use expect_test::expect;

use crate::value::{Decimal, ObjectId, TIMESTAMP_MAX, TIMESTAMP_MIN, Timestamp};

#[test]
fn object_id_text_round_trips() {
    let id = ObjectId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    expect!["01234567-89ab-cdef-0011-223344556677"].assert_eq(&id.to_string());
    assert_eq!(ObjectId::parse(&id.to_string()), Some(id));
    assert_eq!(ObjectId::parse("01234567-89AB-CDEF-0011-223344556677"), Some(id));
    for bad in [
        "",
        "01234567-89ab-cdef-0011-22334455667",
        "0123456789ab-cdef-0011-2233-44556677",
        "g1234567-89ab-cdef-0011-223344556677",
    ] {
        assert_eq!(ObjectId::parse(bad), None, "{bad}");
    }
    assert_eq!(ObjectId::from_bytes(id.to_bytes()), id);
}

#[test]
fn time_ordered_ids_sort_by_time() {
    let early = ObjectId::from_parts(1_000, u128::MAX);
    let late = ObjectId::from_parts(1_001, 0);
    assert!(early < late);
}

#[test]
fn timestamps_parse_and_print() {
    let cases = [
        "1970-01-01",
        "1970-01-01T00:00:00Z",
        "1969-12-31T23:59:59.999999Z",
        "2024-02-29T12:00Z",
        "2026-11-23T08:51:14.5+00:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999Z",
        "2023-02-29",
        "2026-11-23T08:51:14",
        "2026-11-23T24:00:00Z",
        "2026-11-23T08:51:14.1234567Z",
        "0000-01-01",
        "26-11-23",
    ];
    let text: String = cases
        .iter()
        .map(|case| match Timestamp::parse(case) {
            Some(t) => format!("{case:30} {t} {}\n", t.unix_micros()),
            None => format!("{case:30} invalid\n"),
        })
        .collect();
    expect![[r#"
        1970-01-01                     1970-01-01T00:00:00Z 0
        1970-01-01T00:00:00Z           1970-01-01T00:00:00Z 0
        1969-12-31T23:59:59.999999Z    1969-12-31T23:59:59.999999Z -1
        2024-02-29T12:00Z              2024-02-29T12:00:00Z 1709208000000000
        2026-11-23T08:51:14.5+00:00    2026-11-23T08:51:14.500000Z 1795423874500000
        0001-01-01T00:00:00Z           0001-01-01T00:00:00Z -62135596800000000
        9999-12-31T23:59:59.999999Z    9999-12-31T23:59:59.999999Z 253402300799999999
        2023-02-29                     invalid
        2026-11-23T08:51:14            invalid
        2026-11-23T24:00:00Z           invalid
        2026-11-23T08:51:14.1234567Z   invalid
        0000-01-01                     invalid
        26-11-23                       invalid
    "#]]
    .assert_eq(&text);
    assert_eq!(Timestamp::parse("0001-01-01"), Some(TIMESTAMP_MIN));
    assert_eq!(Timestamp::parse("9999-12-31T23:59:59.999999Z"), Some(TIMESTAMP_MAX));
}

#[test]
fn every_day_round_trips() {
    let mut day = Timestamp::parse("1899-12-25").unwrap();
    for _ in 0..100_000 {
        assert_eq!(Timestamp::parse(&day.to_string()), Some(day));
        assert_eq!(day.begin_of_day(), day);
        day = day.add_days(1).unwrap();
    }
}

#[test]
fn decimals_parse_at_their_scale() {
    let cases = [
        ("12.5", 2),
        ("-0.01", 2),
        ("0", 0),
        ("+7", 3),
        ("1.230", 2),
        ("1.234", 2),
        ("999999999999999999", 0),
        ("1000000000000000000", 0),
        ("1e3", 2),
        (".5", 2),
        ("5.", 2),
        ("-", 2),
        ("", 2),
        ("99999999.99", 10),
        ("999999999.99", 10),
    ];
    let text: String = cases
        .iter()
        .map(|(case, scale)| match Decimal::parse(case, *scale) {
            Some(d) => format!("{case:22} scale {scale:2} -> {d} ({} units)\n", d.units()),
            None => format!("{case:22} scale {scale:2} -> invalid\n"),
        })
        .collect();
    expect![[r#"
        12.5                   scale  2 -> 12.50 (1250 units)
        -0.01                  scale  2 -> -0.01 (-1 units)
        0                      scale  0 -> 0 (0 units)
        +7                     scale  3 -> 7.000 (7000 units)
        1.230                  scale  2 -> 1.23 (123 units)
        1.234                  scale  2 -> invalid
        999999999999999999     scale  0 -> 999999999999999999 (999999999999999999 units)
        1000000000000000000    scale  0 -> invalid
        1e3                    scale  2 -> invalid
        .5                     scale  2 -> 0.50 (50 units)
        5.                     scale  2 -> invalid
        -                      scale  2 -> invalid
                               scale  2 -> invalid
        99999999.99            scale 10 -> 99999999.9900000000 (999999999900000000 units)
        999999999.99           scale 10 -> invalid
    "#]]
    .assert_eq(&text);
}

#[test]
fn decimals_compare_across_scales() {
    let a = Decimal::parse("1.5", 1).unwrap();
    let b = Decimal::parse("1.50", 4).unwrap();
    assert_eq!(a.cmp(&b), std::cmp::Ordering::Equal);
    assert_eq!(b.rescale(1), Some(a));
    assert_eq!(Decimal::parse("1.55", 2).unwrap().rescale(1), None);
    assert!(Decimal::parse("-0.01", 2).unwrap() < Decimal::parse("0", 0).unwrap());
}
