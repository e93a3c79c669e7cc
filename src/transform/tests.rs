//! The transforms' own tests: each one read and written, its settings checked, its messages.

use super::*;
use serde_json::json;

fn canon(t: &Transform, v: Value) -> Result<Values, TransformError> {
    t.to_canonical(&[Some(&v)])
}

fn sys(t: &Transform, v: Value) -> Result<Values, TransformError> {
    t.to_system(&[Some(&v)])
}

fn one(v: Values) -> Option<Value> {
    assert_eq!(v.len(), 1, "a 1:1 transform yields one value");
    v.into_iter().next().flatten()
}

fn date(format: &str) -> Transform {
    Transform::Date {
        format: format.to_owned(),
    }
}

fn ts(format: Option<&str>, tz: &str) -> Transform {
    Transform::Timestamp {
        format: format.map(str::to_owned),
        tz: tz.to_owned(),
    }
}

fn phone(format: PhoneFormat) -> Transform {
    Transform::Phone {
        region: "US".to_owned(),
        system_format: format,
    }
}

fn status_table() -> Transform {
    Transform::Enum {
        table: vec![
            EnumEntry {
                system: json!("Active"),
                canonical: "active".to_owned(),
            },
            EnumEntry {
                system: json!("On Leave"),
                canonical: "on_leave".to_owned(),
            },
            EnumEntry {
                system: json!(3),
                canonical: "terminated".to_owned(),
            },
        ],
    }
}

#[test]
fn arity_matches_the_shape_of_each_transform() {
    assert_eq!(Transform::Copy.arity(), (1, 1));
    assert_eq!(Transform::FullName.arity(), (1, 2));
    assert_eq!(Transform::Constant { value: json!(1) }.arity(), (1, 0));
    assert_eq!(date("%Y").arity(), (1, 1));
}

#[test]
fn slice_length_mismatch_is_an_arity_error() {
    let err = Transform::FullName.to_system(&[None]).unwrap_err();
    assert_eq!(
        err,
        TransformError::Arity {
            side: "canonical",
            expected: 2,
            actual: 1
        }
    );
    assert!(matches!(
        Transform::Copy.to_canonical(&[]),
        Err(TransformError::Arity { side: "system", .. })
    ));
}

#[test]
fn null_in_gives_null_out() {
    let transforms = [
        Transform::Copy,
        Transform::Lowercase,
        date("%m/%d/%Y"),
        ts(None, "UTC"),
        Transform::MoneyMinor { exponent: 2 },
        Transform::MoneyDecimal { scale: 2 },
        status_table(),
        phone(PhoneFormat::E164),
    ];
    for t in &transforms {
        assert_eq!(t.to_canonical(&[None]).unwrap(), vec![None], "{t:?}");
        assert_eq!(
            t.to_canonical(&[Some(&Value::Null)]).unwrap(),
            vec![None],
            "{t:?}"
        );
        if t.is_reversible() {
            assert_eq!(t.to_system(&[None]).unwrap(), vec![None], "{t:?}");
        }
    }
    assert_eq!(
        Transform::FullName.to_canonical(&[None]).unwrap(),
        vec![None, None]
    );
    assert_eq!(
        Transform::FullName.to_system(&[None, None]).unwrap(),
        vec![None]
    );
}

#[test]
fn copy_passes_values_through() {
    let v = json!({"a": [1, 2]});
    assert_eq!(
        canon(&Transform::Copy, v.clone()).unwrap(),
        vec![Some(v.clone())]
    );
    assert_eq!(sys(&Transform::Copy, v.clone()).unwrap(), vec![Some(v)]);
}

#[test]
fn full_name_splits_on_the_last_word() {
    let t = Transform::FullName;
    assert_eq!(
        canon(&t, json!("  Mary   Ann  Smith ")).unwrap(),
        vec![Some(json!("Mary Ann")), Some(json!("Smith"))]
    );
    assert_eq!(
        canon(&t, json!("Cher")).unwrap(),
        vec![None, Some(json!("Cher"))]
    );
    assert_eq!(canon(&t, json!("   ")).unwrap(), vec![None, None]);
    let (given, family) = (json!("Mary Ann"), json!("Smith"));
    assert_eq!(
        t.to_system(&[Some(&given), Some(&family)]).unwrap(),
        vec![Some(json!("Mary Ann Smith"))]
    );
    assert_eq!(
        t.to_system(&[None, Some(&family)]).unwrap(),
        vec![Some(json!("Smith"))]
    );
    assert!(matches!(
        canon(&t, json!(42)),
        Err(TransformError::WrongType { .. })
    ));
}

#[test]
fn full_name_refuses_names_that_would_read_back_differently() {
    let t = Transform::FullName;
    let (given, family) = (json!("Juan"), json!("García Márquez"));
    let err = t.to_system(&[Some(&given), Some(&family)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "given name 'Juan' and family name 'García Márquez' cannot be written to this system \
         without changing it: the system would hold 'Juan García Márquez', which reads back \
         as given name 'Juan García' and family name 'Márquez'"
    );
    let err = t.to_system(&[Some(&given), None]).unwrap_err();
    assert!(
        matches!(err, TransformError::NotRepresentable { .. }),
        "{err}"
    );
}

#[test]
fn lowercase_is_read_only() {
    let t = Transform::Lowercase;
    assert_eq!(
        one(canon(&t, json!("  Jane.Doe@Example.COM ")).unwrap()),
        Some(json!("jane.doe@example.com"))
    );
    assert!(!t.is_reversible());
    assert!(matches!(
        sys(&t, json!("x")),
        Err(TransformError::Irreversible { .. })
    ));
}

#[test]
fn date_reads_and_writes_the_system_format() {
    let t = date("%m/%d/%Y");
    assert_eq!(
        one(canon(&t, json!("03/15/2024")).unwrap()),
        Some(json!("2024-03-15"))
    );
    assert_eq!(
        one(sys(&t, json!("2024-03-15")).unwrap()),
        Some(json!("03/15/2024"))
    );
    assert!(t.is_reversible());
    assert_eq!(t.validate(), Ok(()));
}

#[test]
fn a_date_that_does_not_exist_is_named_in_the_error() {
    let err = canon(&date("%m/%d/%Y"), json!("13/45/2024")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'13/45/2024' is not a date in format %m/%d/%Y"
    );
    let err = canon(&date("%Y-%m-%d"), json!("2023-02-29")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'2023-02-29' is not a date in format %Y-%m-%d"
    );
}

#[test]
fn date_formats_without_a_full_date_are_read_only_and_invalid() {
    for format in ["%m/%d", "%Y-%m", "%d %Y"] {
        let t = date(format);
        assert!(!t.is_reversible(), "{format} lacks a year, month or day");
        let err = t.validate().unwrap_err();
        assert!(
            err.to_string().contains("needs a year, a month and a day"),
            "{err}"
        );
    }
    assert!(matches!(
        date("%Q").validate(),
        Err(TransformError::Config(_))
    ));
    assert!(matches!(
        sys(&date("%m/%d"), json!("2024-01-01")),
        Err(TransformError::Irreversible { .. })
    ));
}

#[test]
fn date_format_with_a_time_is_read_only() {
    let t = date("%Y-%m-%d %H:%M");
    assert_eq!(t.validate(), Ok(()));
    assert_eq!(
        one(canon(&t, json!("2024-03-15 10:30")).unwrap()),
        Some(json!("2024-03-15"))
    );
    assert!(!t.is_reversible());
}

#[test]
fn two_digit_years_refuse_dates_they_cannot_hold() {
    let t = date("%m/%d/%y");
    assert!(t.is_reversible());
    assert_eq!(
        one(sys(&t, json!("2024-03-15")).unwrap()),
        Some(json!("03/15/24"))
    );
    let err = sys(&t, json!("1965-03-15")).unwrap_err();
    assert!(
        matches!(err, TransformError::NotRepresentable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("'2065-03-15'"), "{err}");
}

#[test]
fn date_write_requires_canonical_form() {
    let err = sys(&date("%m/%d/%Y"), json!("2024-3-5")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'2024-3-5' is not a valid date: expected a real date in the form YYYY-MM-DD"
    );
}

#[test]
fn timestamp_converts_local_time_to_utc() {
    let t = ts(None, "America/New_York");
    assert_eq!(
        one(canon(&t, json!("2026-03-01 09:05:00")).unwrap()),
        Some(json!("2026-03-01T14:05:00Z"))
    );
    assert_eq!(
        one(sys(&t, json!("2026-07-01T14:05:00Z")).unwrap()),
        Some(json!("2026-07-01 10:05:00"))
    );
    let t = ts(Some("%Y-%m-%dT%H:%M:%S%.f%:z"), "Europe/Paris");
    assert_eq!(
        one(canon(&t, json!("2026-03-01T09:05:00.750-05:00")).unwrap()),
        Some(json!("2026-03-01T14:05:00Z"))
    );
    assert_eq!(
        one(sys(&t, json!("2026-03-01T14:05:00Z")).unwrap()),
        Some(json!("2026-03-01T15:05:00+01:00"))
    );
}

#[test]
fn timestamp_dst_gap_is_an_error_and_overlap_takes_the_earlier() {
    let t = ts(None, "America/New_York");
    let err = canon(&t, json!("2026-03-08 02:30:00")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'2026-03-08 02:30:00' does not exist in time zone America/New_York: the clocks skip \
         that time when daylight-saving time starts"
    );
    assert_eq!(
        one(canon(&t, json!("2026-11-01 01:30:00")).unwrap()),
        Some(json!("2026-11-01T05:30:00Z"))
    );
    let err = sys(&t, json!("2026-11-01T06:30:00Z")).unwrap_err();
    assert!(
        err.to_string().contains("occurs twice in America/New_York"),
        "{err}"
    );
}

#[test]
fn timestamp_settings_are_validated() {
    let err = ts(None, "Mars/Olympus").validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid transform settings: 'Mars/Olympus' is not a known time zone; use an IANA \
         name such as America/New_York or UTC"
    );
    assert!(ts(Some("%Y-%m-%d"), "UTC").validate().is_err());
    assert!(ts(Some("%Y-%m-%d %I:%M"), "UTC").validate().is_err());
    assert_eq!(
        ts(Some("%d/%m/%Y %I:%M %p"), "Asia/Tokyo").validate(),
        Ok(())
    );
    let err = canon(&ts(None, "UTC"), json!("yesterday")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'yesterday' is not a date and time in format %Y-%m-%d %H:%M:%S"
    );
}

#[test]
fn money_minor_units() {
    let t = Transform::MoneyMinor { exponent: 2 };
    assert_eq!(
        one(canon(&t, json!(8500000)).unwrap()),
        Some(json!("85000"))
    );
    assert_eq!(one(canon(&t, json!(-325)).unwrap()), Some(json!("-3.25")));
    assert_eq!(
        one(canon(&t, json!("8500050")).unwrap()),
        Some(json!("85000.5"))
    );
    assert_eq!(
        one(sys(&t, json!("85000.5")).unwrap()),
        Some(json!(8500050))
    );
    let jpy = Transform::MoneyMinor { exponent: 0 };
    assert_eq!(one(canon(&jpy, json!(1200)).unwrap()), Some(json!("1200")));
    let err = canon(&t, json!(12.5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'12.5' is not a valid amount: it is not a whole number of minor units (e.g. cents)"
    );
    let err = sys(&t, json!("1.005")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'1.005' is not a valid amount: this system stores at most 2 decimal place(s), and \
         amounts are never rounded"
    );
    let err = sys(&t, json!("100000000000000000000")).unwrap_err();
    assert!(err.to_string().contains("too large"), "{err}");
}

#[test]
fn money_decimal() {
    let t = Transform::MoneyDecimal { scale: 2 };
    assert_eq!(
        one(canon(&t, json!("85000.00")).unwrap()),
        Some(json!("85000"))
    );
    assert_eq!(
        one(canon(&t, json!(85000.5)).unwrap()),
        Some(json!("85000.5"))
    );
    assert_eq!(
        one(canon(&t, json!(" -3.250 ")).unwrap()),
        Some(json!("-3.25"))
    );
    assert_eq!(one(canon(&t, json!("-0.00")).unwrap()), Some(json!("0")));
    assert_eq!(
        one(sys(&t, json!("85000.5")).unwrap()),
        Some(json!("85000.50"))
    );
    assert_eq!(
        one(sys(&t, json!("85000")).unwrap()),
        Some(json!("85000.00"))
    );
    let whole = Transform::MoneyDecimal { scale: 0 };
    assert_eq!(one(sys(&whole, json!("-7")).unwrap()), Some(json!("-7")));
    assert!(sys(&whole, json!("7.5")).is_err());
    let err = canon(&t, json!("85,000")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'85,000' is not a valid amount: it is not a number, or it has too many digits"
    );
    let err = sys(&t, json!("85000.50")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'85000.50' is not a valid amount: expected the normalised form '85000.5' (no \
         trailing zeros)"
    );
    assert!(Transform::MoneyDecimal { scale: 29 }.validate().is_err());
}

#[test]
fn enum_table_round_trips_and_names_allowed_values() {
    let t = status_table();
    assert_eq!(t.validate(), Ok(()));
    assert!(t.is_reversible());
    assert_eq!(
        one(canon(&t, json!("Active")).unwrap()),
        Some(json!("active"))
    );
    assert_eq!(
        one(sys(&t, json!("active")).unwrap()),
        Some(json!("Active"))
    );
    assert_eq!(
        one(canon(&t, json!(3.0)).unwrap()),
        Some(json!("terminated"))
    );
    assert_eq!(
        one(canon(&t, json!(" on leave")).unwrap()),
        Some(json!("on_leave"))
    );
    let err = canon(&t, json!("Retired")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'Retired' is not one of the allowed values: 'Active', 'On Leave', '3'"
    );
    let err = sys(&t, json!("retired")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'retired' is not one of the allowed values: 'active', 'on_leave', 'terminated'"
    );
}

#[test]
fn enum_table_problems() {
    let many_to_one = Transform::Enum {
        table: vec![
            EnumEntry {
                system: json!("A"),
                canonical: "active".to_owned(),
            },
            EnumEntry {
                system: json!("Active"),
                canonical: "active".to_owned(),
            },
        ],
    };
    assert_eq!(many_to_one.validate(), Ok(()));
    assert!(!many_to_one.is_reversible());
    let err = sys(&many_to_one, json!("active")).unwrap_err();
    assert!(err.to_string().contains("'A', 'Active'"), "{err}");

    let duplicate = Transform::Enum {
        table: vec![
            EnumEntry {
                system: json!(1),
                canonical: "active".to_owned(),
            },
            EnumEntry {
                system: json!(1.0),
                canonical: "active".to_owned(),
            },
        ],
    };
    let err = duplicate.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid transform settings: enum system value '1.0' appears more than once for the \
         code 'active'",
        "the same value and code listed twice is a config error"
    );
    assert!(Transform::Enum { table: vec![] }.validate().is_err());
}

fn entry(system: Value, code: &str) -> EnumEntry {
    EnumEntry {
        system,
        canonical: code.to_owned(),
    }
}

/// A three-value status written onto a boolean.
fn lossy_status() -> Transform {
    Transform::Enum {
        table: vec![
            entry(json!(true), "active"),
            entry(json!(true), "on_leave"),
            entry(json!(false), "terminated"),
        ],
    }
}

#[test]
fn lossy_enum_tables_are_valid_and_writable() {
    let t = lossy_status();
    assert_eq!(
        t.validate(),
        Ok(()),
        "several codes may share a system value"
    );
    assert!(t.is_reversible(), "a lossy table still writes every code");
    assert_eq!(
        one(sys(&t, json!("on_leave")).expect("a lossy code is written")),
        Some(json!(true)),
        "each code writes its own entry's value, even when it reads back as another code"
    );
    assert_eq!(one(sys(&t, json!("active")).unwrap()), Some(json!(true)));
    assert_eq!(
        one(sys(&t, json!("terminated")).unwrap()),
        Some(json!(false))
    );
}

#[test]
fn lossy_enum_reads_the_first_code_and_reports_the_alternatives() {
    let t = lossy_status();
    assert_eq!(
        one(canon(&t, json!(true)).unwrap()),
        Some(json!("active")),
        "a shared value reads as the first listed code"
    );
    assert_eq!(
        t.alternatives(&[Some(&json!(true))]),
        Some(vec![json!("active"), json!("on_leave")]),
        "the codes a shared value could mean are listed in table order"
    );
    assert_eq!(
        t.alternatives(&[Some(&json!(false))]),
        None,
        "a value only one code reads as has no alternatives"
    );
    assert_eq!(
        t.alternatives(&[None]),
        None,
        "nothing read, no alternatives"
    );
    assert_eq!(
        t.alternatives(&[Some(&json!("maybe"))]),
        None,
        "an unknown value has no alternatives"
    );
    assert_eq!(
        status_table().alternatives(&[Some(&json!("Active"))]),
        None,
        "a one-to-one table never has alternatives"
    );
    assert_eq!(
        Transform::Copy.alternatives(&[Some(&json!(true))]),
        None,
        "only enum tables are lossy"
    );
}

#[test]
fn lossy_text_values_still_match_loosely() {
    let t = Transform::Enum {
        table: vec![
            entry(json!("Active"), "active"),
            entry(json!("Active"), "on_leave"),
            entry(json!("Gone"), "terminated"),
        ],
    };
    assert_eq!(
        one(canon(&t, json!(" active")).unwrap()),
        Some(json!("active")),
        "entries sharing one system value are one loose match"
    );
    assert_eq!(
        t.alternatives(&[Some(&json!("ACTIVE"))]),
        Some(vec![json!("active"), json!("on_leave")]),
        "a loose match reports the alternatives of the value it matched"
    );
    let ambiguous = Transform::Enum {
        table: vec![entry(json!("Active"), "a"), entry(json!("ACTIVE"), "b")],
    };
    assert!(
        canon(&ambiguous, json!("active")).is_err(),
        "two different system values that differ only in case stay ambiguous"
    );
}

#[test]
fn several_values_for_one_code_stay_read_only_in_a_lossy_table() {
    let t = Transform::Enum {
        table: vec![
            entry(json!(true), "active"),
            entry(json!(true), "on_leave"),
            entry(json!("Y"), "active"),
        ],
    };
    assert_eq!(t.validate(), Ok(()), "the table itself is valid");
    assert!(
        !t.is_reversible(),
        "a code with several system values cannot be written, lossy or not"
    );
}

#[test]
fn phone_numbers_become_e164() {
    let t = phone(PhoneFormat::E164);
    for typed in [
        "(415) 555-0123",
        "415.555.0123",
        "+1 415 555 0123",
        "4155550123",
    ] {
        assert_eq!(
            one(canon(&t, json!(typed)).unwrap()),
            Some(json!("+14155550123")),
            "{typed}"
        );
    }
    assert_eq!(
        one(canon(&t, json!("+44 20 7946 0958")).unwrap()),
        Some(json!("+442079460958"))
    );
    assert_eq!(
        one(sys(&t, json!("+14155550123")).unwrap()),
        Some(json!("+14155550123"))
    );
    let national = phone(PhoneFormat::National);
    assert_eq!(
        one(sys(&national, json!("+14155550123")).unwrap()),
        Some(json!("(415) 555-0123"))
    );
    assert_eq!(
        one(sys(&national, json!("+442079460958")).unwrap()),
        Some(json!("+44 20 7946 0958"))
    );
    let international = phone(PhoneFormat::International);
    assert_eq!(
        one(sys(&international, json!("+14155550123")).unwrap()),
        Some(json!("+1 415-555-0123"))
    );
}

#[test]
fn a_number_read_from_a_system_is_the_number_its_e164_text_parses_to() {
    for (typed, region) in [
        ("(415) 555-0123", "US"),
        ("020 7946 0958", "GB"),
        ("06 12 34 56 78", "FR"),
        ("030 1234567", "DE"),
        ("02 1234 5678", "IT"),
        ("+61 2 9876 5432", "US"),
    ] {
        let (e164, read) = parse_phone(typed, region).expect("a valid number");
        let parsed = parse_canonical_phone(&json!(e164), &e164).expect("canonical");
        for mode in [
            phonenumber::Mode::E164,
            phonenumber::Mode::International,
            phonenumber::Mode::National,
        ] {
            assert_eq!(
                read.format().mode(mode).to_string(),
                parsed.format().mode(mode).to_string(),
                "{typed} read in {region} is remembered as canonical {e164}: it must write \
                 as that text parses ({mode:?})"
            );
        }
    }
}

#[test]
fn invalid_phone_numbers_are_named() {
    let t = phone(PhoneFormat::E164);
    let err = canon(&t, json!("123")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("'123' is not a valid phone number"),
        "{err}"
    );
    let err = canon(&t, json!("call me")).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("'call me' is not a valid phone number"),
        "{err}"
    );
    let err = canon(&t, json!("415-555-0123 ext. 12")).unwrap_err();
    assert!(err.to_string().contains("extension"), "{err}");
    let err = sys(&t, json!("(415) 555-0123")).unwrap_err();
    assert!(matches!(
        err,
        TransformError::InvalidCanonical {
            field_type: FieldType::Phone,
            ..
        }
    ));
    let err = Transform::Phone {
        region: "XX".to_owned(),
        system_format: PhoneFormat::E164,
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid transform settings: 'XX' is not a known phone region; use a two-letter ISO \
         country code such as US or GB"
    );
}

#[test]
fn constant_always_writes_and_never_reads() {
    let t = Transform::Constant {
        value: json!("HR-SYNC"),
    };
    assert_eq!(
        t.to_canonical(&[Some(&json!("anything"))]).unwrap(),
        Vec::<Option<Value>>::new()
    );
    assert_eq!(t.to_system(&[]).unwrap(), vec![Some(json!("HR-SYNC"))]);
    assert!(t.is_reversible());
}

#[test]
fn transforms_deserialise_from_tagged_json() {
    let t: Transform = serde_json::from_value(json!({"kind": "phone", "region": "US"})).unwrap();
    assert_eq!(t, phone(PhoneFormat::E164));
    let t: Transform = serde_json::from_value(json!({"kind": "timestamp", "tz": "UTC"})).unwrap();
    assert_eq!(t, ts(None, "UTC"));
    let t: Transform = serde_json::from_value(json!({"kind": "full_name"})).unwrap();
    assert_eq!(t, Transform::FullName);
    let t = Transform::MoneyMinor { exponent: 2 };
    let back: Transform = serde_json::from_value(serde_json::to_value(&t).unwrap()).unwrap();
    assert_eq!(back, t);
    assert_eq!(
        serde_json::to_value(&t).unwrap(),
        json!({"kind": "money_minor", "exponent": 2})
    );
}

#[test]
fn canonical_values_are_checked_by_type() {
    let ok = [
        (FieldType::String, json!("x")),
        (FieldType::Date, json!("2024-02-29")),
        (FieldType::Timestamp, json!("2026-03-01T14:05:00Z")),
        (FieldType::Money, json!("-3.25")),
        (FieldType::Phone, json!("+14155550123")),
        (FieldType::Email, json!("jane.doe@example.com")),
        (FieldType::Enum, json!("on_leave")),
        (FieldType::Reference, json!("emp-1")),
        (FieldType::Bool, json!(true)),
        (FieldType::Number, json!(1.5)),
        (FieldType::Currency, json!("USD")),
        (FieldType::Date, Value::Null),
    ];
    for (ty, v) in ok {
        assert_eq!(validate_canonical(ty, &v), Ok(()), "{ty:?} {v}");
    }
    let bad = [
        (FieldType::String, json!(1)),
        (FieldType::Date, json!("2023-02-29")),
        (FieldType::Date, json!("03/15/2024")),
        (FieldType::Timestamp, json!("2026-03-01T14:05:00+00:00")),
        (FieldType::Timestamp, json!("2026-03-01T14:05:00.5Z")),
        (FieldType::Money, json!("85000.50")),
        (FieldType::Money, json!("1e3")),
        (FieldType::Money, json!(85000)),
        (FieldType::Phone, json!("4155550123")),
        (FieldType::Email, json!("jane.doe")),
        (FieldType::Email, json!("jane@localhost")),
        (FieldType::Email, json!("jane doe@example.com")),
        (FieldType::Enum, json!("")),
        (FieldType::Reference, json!(12)),
        (FieldType::Bool, json!("true")),
        (FieldType::Number, json!("1")),
        (FieldType::Currency, json!("usd")),
        (FieldType::Currency, json!("US")),
    ];
    for (ty, v) in bad {
        assert!(
            validate_canonical(ty, &v).is_err(),
            "{ty:?} {v} must be rejected"
        );
    }
    let err = validate_canonical(FieldType::Money, &json!("85000.50")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'85000.50' is not a valid amount: expected the normalised form '85000.5' (no \
         trailing zeros)"
    );
}

#[test]
fn match_keys_are_trimmed_lowercase_strings() {
    assert_eq!(
        normalize_match_key(&json!("  Jane@Example.com ")),
        Some("jane@example.com".to_owned())
    );
    assert_eq!(normalize_match_key(&json!(1001)), Some("1001".to_owned()));
    assert_eq!(normalize_match_key(&json!(1001.0)), Some("1001".to_owned()));
    assert_eq!(normalize_match_key(&json!(true)), Some("true".to_owned()));
    assert_eq!(normalize_match_key(&json!("   ")), None);
    assert_eq!(normalize_match_key(&Value::Null), None);
    assert_eq!(normalize_match_key(&json!([1])), None);
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "9".repeat(200);
    let err = canon(&date("%Y-%m-%d"), json!(long)).unwrap_err();
    assert!(err.to_string().len() < 150, "{err}");
    assert!(err.to_string().contains('…'));
}
