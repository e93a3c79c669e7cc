//! Property tests for `concord::transform`: every reversible transform round-trips
//! canonical -> system -> canonical, and normalised system values round-trip
//! system -> canonical -> system. The case count follows proptest's default (PROPTEST_CASES).

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use concord::transform::{
    EnumEntry, FieldType, PhoneFormat, Transform, TransformError, validate_canonical,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{Value, json};

const ROUND_TRIP: &str = "a reversible transform must round-trip canonical -> system -> canonical";
const SYSTEM_ROUND_TRIP: &str =
    "a normalised system value must round-trip system -> canonical -> system";

const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%Y%m%d",
    "%d %B %Y",
    "%b %d, %Y",
    "%Y/%j",
    "%A, %B %d, %Y",
];

const TIMESTAMP_FORMATS: &[Option<&str>] = &[
    None,
    Some("%m/%d/%Y %I:%M:%S %p"),
    Some("%Y-%m-%dT%H:%M:%S%:z"),
    Some("%d.%m.%Y %H:%M:%S"),
];

/// Seconds of 1900-01-01T00:00:00Z and 2100-01-01T00:00:00Z.
const FROM_1900: i64 = -2_208_988_800;
/// Zones used local mean time, with offsets in odd seconds that `%:z` cannot show, until the
/// early 1900s; system-side values are generated from 1970 on.
const FROM_1970: i64 = 0;
const TO_2100: i64 = 4_102_444_800;

/// Area codes in service in the North American Numbering Plan.
const AREA_CODES: &[u16] = &[
    201, 202, 206, 212, 213, 214, 305, 312, 404, 415, 503, 512, 602, 617, 646, 702, 713, 808, 917,
    973,
];

fn round_trip(t: &Transform, canonical: &[Option<Value>]) -> Vec<Option<Value>> {
    let refs: Vec<Option<&Value>> = canonical.iter().map(Option::as_ref).collect();
    let system = t
        .to_system(&refs)
        .unwrap_or_else(|e| panic!("{t:?} must write canonical {canonical:?}: {e}"));
    let refs: Vec<Option<&Value>> = system.iter().map(Option::as_ref).collect();
    t.to_canonical(&refs)
        .unwrap_or_else(|e| panic!("{t:?} must read back its own output {system:?}: {e}"))
}

fn system_round_trip(t: &Transform, system: &Value) -> (Vec<Option<Value>>, Vec<Option<Value>>) {
    let canonical = t
        .to_canonical(&[Some(system)])
        .unwrap_or_else(|e| panic!("{t:?} must read {system}: {e}"));
    let refs: Vec<Option<&Value>> = canonical.iter().map(Option::as_ref).collect();
    let back = t
        .to_system(&refs)
        .unwrap_or_else(|e| panic!("{t:?} must write back {canonical:?}: {e}"));
    (canonical, back)
}

fn assert_canonical(ty: FieldType, values: &[Option<Value>]) {
    for value in values.iter().flatten() {
        assert_eq!(
            validate_canonical(ty, value),
            Ok(()),
            "to_canonical must produce values in canonical form"
        );
    }
}

fn date_transform(format: &str) -> Transform {
    Transform::Date {
        format: format.to_owned(),
    }
}

fn timestamp_transform(format: Option<&str>, tz: &str) -> Transform {
    Transform::Timestamp {
        format: format.map(str::to_owned),
        tz: tz.to_owned(),
    }
}

fn canonical_timestamp(instant: DateTime<Utc>) -> Value {
    Value::String(instant.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

fn dates() -> impl Strategy<Value = NaiveDate> {
    (1i32..=9999, 1u32..=12, 1u32..=31).prop_filter_map("a real calendar date", |(y, m, d)| {
        NaiveDate::from_ymd_opt(y, m, d)
    })
}

fn instants() -> impl Strategy<Value = DateTime<Utc>> {
    (FROM_1900..TO_2100).prop_filter_map("a representable instant", |s| {
        DateTime::from_timestamp(s, 0)
    })
}

/// Instants in the two hours around the end of US daylight-saving time (first Sunday of
/// November, 2007 on), where New York local times repeat.
fn fall_back_instants() -> impl Strategy<Value = DateTime<Utc>> {
    (2007i32..2100, 0i64..7200).prop_filter_map("a fall-back instant", |(year, offset)| {
        let sunday = (1..=7)
            .filter_map(|d| NaiveDate::from_ymd_opt(year, 11, d))
            .find(|d| d.format("%u").to_string() == "7")?;
        let start = sunday.and_hms_opt(5, 0, 0)?.and_utc();
        Some(start + chrono::Duration::seconds(offset))
    })
}

fn decimals(max_scale: u32) -> impl Strategy<Value = Decimal> {
    (
        -1_000_000_000_000_000i64..=1_000_000_000_000_000,
        0..=max_scale,
    )
        .prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale).normalize())
}

fn us_numbers() -> impl Strategy<Value = (u16, u16, u16)> {
    (prop::sample::select(AREA_CODES), 200u16..=999, 0u16..=9999).prop_filter(
        "the phone number must be valid for the phonenumber library",
        |(area, exchange, line)| {
            let e164 = format!("+1{area}{exchange}{line:04}");
            phonenumber::parse(None, &e164).is_ok_and(|n| n.is_valid())
        },
    )
}

fn name_word() -> impl Strategy<Value = String> {
    "[A-Z][a-z]{0,9}|[A-ZÀ-Ý][a-zß-ÿ'-]{1,9}"
}

fn json_scalars() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ]
}

fn json_values() -> impl Strategy<Value = Value> {
    json_scalars().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An enum table with distinct system values (text or numbers) and distinct codes, and the
/// index of one of its entries.
fn enum_tables() -> impl Strategy<Value = (Vec<EnumEntry>, usize)> {
    (1usize..8)
        .prop_flat_map(|n| {
            (
                prop::collection::btree_set("[A-Za-z][A-Za-z -]{0,12}", n),
                prop::collection::btree_set(any::<i32>(), n),
                prop::collection::btree_set("[a-z][a-z_]{0,12}", n),
                prop::collection::vec(any::<bool>(), n),
                0..n,
            )
        })
        .prop_map(|(texts, numbers, codes, use_number, pick)| {
            let table = texts
                .into_iter()
                .zip(numbers)
                .zip(codes)
                .zip(use_number)
                .map(|(((text, number), code), numeric)| EnumEntry {
                    system: if numeric { json!(number) } else { json!(text) },
                    canonical: code,
                })
                .collect();
            (table, pick)
        })
}

/// A lossy enum table: distinct codes, several of which may share one system value, and the
/// index of one of its entries.
fn lossy_enum_tables() -> impl Strategy<Value = (Vec<EnumEntry>, usize)> {
    (2usize..8)
        .prop_flat_map(|n| {
            (
                prop::collection::btree_set("[a-z][a-z_]{0,12}", n),
                prop::collection::vec(0usize..3, n),
                prop::sample::select(vec![
                    [json!(true), json!(false), json!("other")],
                    [json!("A"), json!("B"), json!("C")],
                    [json!(1), json!(0), json!(-1)],
                ]),
                0..n,
            )
        })
        .prop_map(|(codes, groups, values, pick)| {
            let table = codes
                .into_iter()
                .zip(groups)
                .map(|(code, group)| EnumEntry {
                    system: values[group].clone(),
                    canonical: code,
                })
                .collect();
            (table, pick)
        })
}

proptest! {
    #[test]
    fn copy_round_trips(value in json_values()) {
        let t = Transform::Copy;
        let canonical = vec![(!value.is_null()).then_some(value)];
        prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
    }

    #[test]
    fn date_round_trips(date in dates(), format in prop::sample::select(DATE_FORMATS)) {
        let t = date_transform(format);
        prop_assert!(t.is_reversible(), "a format with a full year, month and day is writable");
        let canonical = vec![Some(json!(date.format("%Y-%m-%d").to_string()))];
        prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
    }

    #[test]
    fn date_system_values_round_trip(
        date in dates(),
        format in prop::sample::select(DATE_FORMATS),
    ) {
        let t = date_transform(format);
        let system = json!(date.format(format).to_string());
        let (canonical, back) = system_round_trip(&t, &system);
        assert_canonical(FieldType::Date, &canonical);
        prop_assert_eq!(back, vec![Some(system)], "{}", SYSTEM_ROUND_TRIP);
    }

    #[test]
    fn timestamp_round_trips_in_utc(
        instant in instants(),
        format in prop::sample::select(TIMESTAMP_FORMATS),
    ) {
        let t = timestamp_transform(format, "UTC");
        let canonical = vec![Some(canonical_timestamp(instant))];
        prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
    }

    #[test]
    fn timestamp_round_trips_in_new_york(
        instant in instants(),
        format in prop::sample::select(TIMESTAMP_FORMATS),
    ) {
        let zone: Tz = chrono_tz::America::New_York;
        let local = instant.with_timezone(&zone).naive_local();
        let unambiguous = matches!(zone.from_local_datetime(&local), LocalResult::Single(_));
        prop_assume!(unambiguous, "local times repeated when DST ends are covered below");
        let t = timestamp_transform(format, "America/New_York");
        let canonical = vec![Some(canonical_timestamp(instant))];
        prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
    }

    #[test]
    fn timestamp_in_repeated_hour_round_trips_or_is_refused(instant in fall_back_instants()) {
        let zone: Tz = chrono_tz::America::New_York;
        let local = instant.with_timezone(&zone).naive_local();
        let earlier = match zone.from_local_datetime(&local) {
            LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::None => unreachable!("an instant always has a local time"),
        };
        let canonical = canonical_timestamp(instant);
        let t = timestamp_transform(None, "America/New_York");
        match t.to_system(&[Some(&canonical)]) {
            Ok(system) => {
                prop_assert_eq!(
                    earlier,
                    instant,
                    "only the earlier of two repeated local times is writable"
                );
                let refs: Vec<Option<&Value>> = system.iter().map(Option::as_ref).collect();
                let back = t.to_canonical(&refs).unwrap();
                prop_assert_eq!(back, vec![Some(canonical.clone())], "{}", ROUND_TRIP);
            }
            Err(err) => {
                prop_assert!(
                    earlier != instant,
                    "the earlier repeated local time must be writable: {}",
                    err
                );
                let is_not_representable = matches!(err, TransformError::NotRepresentable { .. });
                prop_assert!(
                    is_not_representable,
                    "a lossy write is refused as NotRepresentable: {}",
                    err
                );
            }
        }
        // With an offset in the format there is no ambiguity at all.
        let with_offset = timestamp_transform(Some("%Y-%m-%d %H:%M:%S %z"), "America/New_York");
        let canonical = vec![Some(canonical)];
        prop_assert_eq!(round_trip(&with_offset, &canonical), canonical, "{}", ROUND_TRIP);
    }

    #[test]
    fn timestamp_system_values_round_trip(
        seconds in FROM_1970..TO_2100,
        format in prop::sample::select(TIMESTAMP_FORMATS),
        tz in prop::sample::select(&["UTC", "America/New_York", "Asia/Kolkata"][..]),
    ) {
        let zone: Tz = tz.parse().unwrap();
        let naive = DateTime::from_timestamp(seconds, 0).unwrap().naive_utc();
        let LocalResult::Single(local) = zone.from_local_datetime(&naive) else {
            // DST gaps do not exist; repeated local times read as the earlier instant.
            return Ok(());
        };
        let system = json!(local.format(format.unwrap_or("%Y-%m-%d %H:%M:%S")).to_string());
        let (canonical, back) = system_round_trip(&timestamp_transform(format, tz), &system);
        assert_canonical(FieldType::Timestamp, &canonical);
        prop_assert_eq!(back, vec![Some(system)], "{}", SYSTEM_ROUND_TRIP);
    }

    #[test]
    fn money_minor_round_trips(
        exponent in prop::sample::select(&[0u32, 2, 3][..]),
        amount in decimals(3),
    ) {
        let t = Transform::MoneyMinor { exponent };
        let canonical = vec![Some(json!(amount.to_string()))];
        if amount.scale() <= exponent {
            prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
        } else {
            let refs: Vec<Option<&Value>> = canonical.iter().map(Option::as_ref).collect();
            let refused = t.to_system(&refs).is_err();
            prop_assert!(refused, "more decimals than the exponent must be refused, never rounded");
        }
    }

    #[test]
    fn money_minor_system_values_round_trip(
        exponent in prop::sample::select(&[0u32, 2, 3][..]),
        minor in any::<i64>(),
    ) {
        let t = Transform::MoneyMinor { exponent };
        let (canonical, back) = system_round_trip(&t, &json!(minor));
        assert_canonical(FieldType::Money, &canonical);
        prop_assert_eq!(back, vec![Some(json!(minor))], "{}", SYSTEM_ROUND_TRIP);
    }

    #[test]
    fn money_decimal_round_trips(
        scale in prop::sample::select(&[0u32, 2, 4][..]),
        amount in decimals(6),
    ) {
        let t = Transform::MoneyDecimal { scale };
        let canonical = vec![Some(json!(amount.to_string()))];
        let refs: Vec<Option<&Value>> = canonical.iter().map(Option::as_ref).collect();
        if amount.scale() <= scale {
            let system = t.to_system(&refs).unwrap();
            let text = system[0].as_ref().and_then(Value::as_str).unwrap().to_owned();
            let decimals = text.split_once('.').map_or(0, |(_, f)| f.len());
            prop_assert_eq!(
                decimals,
                scale as usize,
                "written amounts have exactly `scale` decimals"
            );
            prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
        } else {
            let refused = t.to_system(&refs).is_err();
            prop_assert!(refused, "more decimals than the scale must be refused, never rounded");
        }
    }

    #[test]
    fn money_decimal_system_values_round_trip(
        scale in prop::sample::select(&[0u32, 2, 4][..]),
        mantissa in any::<i64>(),
    ) {
        let t = Transform::MoneyDecimal { scale };
        let system = json!(Decimal::new(mantissa, scale).to_string());
        let (canonical, back) = system_round_trip(&t, &system);
        assert_canonical(FieldType::Money, &canonical);
        prop_assert_eq!(back, vec![Some(system)], "{}", SYSTEM_ROUND_TRIP);
    }

    #[test]
    fn enum_round_trips((table, pick) in enum_tables()) {
        let t = Transform::Enum { table: table.clone() };
        prop_assert_eq!(t.validate(), Ok(()), "a table with distinct values is valid");
        prop_assert!(t.is_reversible(), "a one-to-one table is writable");
        let canonical = vec![Some(json!(table[pick].canonical))];
        prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
        let system = table[pick].system.clone();
        prop_assert_eq!(
            t.alternatives(&[Some(&system)]),
            None,
            "a one-to-one table reads every value as exactly one code"
        );
        let (_, back) = system_round_trip(&t, &system);
        prop_assert_eq!(back, vec![Some(system)], "{}", SYSTEM_ROUND_TRIP);
    }

    /// In a lossy table the round trip holds up to the alternatives: a code reads back as the
    /// first code sharing its system value, and the alternatives name the code written.
    #[test]
    fn lossy_enum_round_trips_up_to_the_alternatives((table, pick) in lossy_enum_tables()) {
        let t = Transform::Enum { table: table.clone() };
        prop_assert_eq!(t.validate(), Ok(()), "codes may share a system value");
        prop_assert!(t.is_reversible(), "every code has one system value to write");
        let code = json!(table[pick].canonical);
        let written = t
            .to_system(&[Some(&code)])
            .unwrap_or_else(|e| panic!("{t:?} must write {code}: {e}"));
        prop_assert_eq!(
            &written,
            &vec![Some(table[pick].system.clone())],
            "a code writes its own entry's system value"
        );
        let refs: Vec<Option<&Value>> = written.iter().map(Option::as_ref).collect();
        let sharing: Vec<Value> = table
            .iter()
            .filter(|e| e.system == table[pick].system)
            .map(|e| json!(e.canonical))
            .collect();
        let back = t.to_canonical(&refs).unwrap();
        prop_assert_eq!(
            back,
            vec![sharing.first().cloned()],
            "a shared value reads as the first code listed for it"
        );
        let alternatives = t.alternatives(&refs);
        if sharing.len() > 1 {
            prop_assert_eq!(
                alternatives,
                Some(sharing),
                "the alternatives are every code sharing the value, in table order"
            );
        } else {
            prop_assert_eq!(alternatives, None, "an unshared value has no alternatives");
            let canonical = vec![Some(code)];
            prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
        }
    }

    #[test]
    fn phone_round_trips(
        (area, exchange, line) in us_numbers(),
        system_format in prop::sample::select(
            &[PhoneFormat::E164, PhoneFormat::National, PhoneFormat::International][..],
        ),
    ) {
        let t = Transform::Phone { region: "US".to_owned(), system_format };
        let canonical = vec![Some(json!(format!("+1{area}{exchange}{line:04}")))];
        prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
    }

    #[test]
    fn phone_system_values_round_trip((area, exchange, line) in us_numbers()) {
        let t = Transform::Phone {
            region: "US".to_owned(),
            system_format: PhoneFormat::National,
        };
        let system = json!(format!("({area}) {exchange}-{line:04}"));
        let (canonical, back) = system_round_trip(&t, &system);
        assert_canonical(FieldType::Phone, &canonical);
        prop_assert_eq!(back, vec![Some(system)], "{}", SYSTEM_ROUND_TRIP);
    }

    #[test]
    fn full_name_round_trips(
        given in prop::collection::vec(name_word(), 0..4),
        family in name_word(),
    ) {
        let t = Transform::FullName;
        let given = (!given.is_empty()).then(|| json!(given.join(" ")));
        let canonical = vec![given, Some(json!(family))];
        prop_assert_eq!(round_trip(&t, &canonical), canonical, "{}", ROUND_TRIP);
    }

    #[test]
    fn full_name_system_values_round_trip(words in prop::collection::vec(name_word(), 1..5)) {
        let system = json!(words.join(" "));
        let (canonical, back) = system_round_trip(&Transform::FullName, &system);
        assert_canonical(FieldType::String, &canonical);
        prop_assert_eq!(back, vec![Some(system)], "{}", SYSTEM_ROUND_TRIP);
    }

    #[test]
    fn constant_always_writes_its_value(value in json_values()) {
        let t = Transform::Constant { value: value.clone() };
        let written = t.to_system(&[]).unwrap();
        prop_assert_eq!(written, vec![Some(value)], "a constant is always written");
        prop_assert_eq!(t.to_canonical(&[None]).unwrap(), vec![], "a constant is never read");
    }

    /// Outside data never makes a transform panic: it gives a value or an error.
    #[test]
    fn arbitrary_input_never_panics(value in json_values(), text in "\\PC{0,40}") {
        let transforms = [
            Transform::Copy,
            Transform::FullName,
            Transform::Lowercase,
            date_transform("%m/%d/%Y"),
            timestamp_transform(None, "America/New_York"),
            Transform::MoneyMinor { exponent: 2 },
            Transform::MoneyDecimal { scale: 2 },
            Transform::Phone { region: "US".to_owned(), system_format: PhoneFormat::National },
            Transform::Phone { region: "GB".to_owned(), system_format: PhoneFormat::E164 },
        ];
        let text = json!(text);
        for t in &transforms {
            for input in [&value, &text] {
                let _ = t.to_canonical(&[Some(input)]);
                let canonical = vec![Some(input); t.arity().1];
                let _ = t.to_system(&canonical);
            }
        }
        let types = [
            FieldType::String, FieldType::Date, FieldType::Timestamp, FieldType::Money,
            FieldType::Phone, FieldType::Email, FieldType::Enum, FieldType::Reference,
            FieldType::Bool, FieldType::Number, FieldType::Currency,
        ];
        for ty in types {
            let _ = validate_canonical(ty, &value);
            let _ = validate_canonical(ty, &text);
        }
        let _ = concord::transform::normalize_match_key(&value);
    }

    /// Phone-looking text (digits and separators) is the input most likely to reach deep into
    /// the phone parser.
    #[test]
    fn phone_like_input_never_panics(text in "[+]?[0-9 ()./x-]{0,24}") {
        for region in ["US", "GB", "DE", "IN"] {
            let t = Transform::Phone {
                region: region.to_owned(),
                system_format: PhoneFormat::National,
            };
            if let Ok(canonical) = t.to_canonical(&[Some(&json!(text))]) {
                assert_canonical(FieldType::Phone, &canonical);
                let refs: Vec<Option<&Value>> = canonical.iter().map(Option::as_ref).collect();
                let written = t.to_system(&refs);
                prop_assert!(
                    written.is_ok(),
                    "a phone number that was read can be written back: {:?}",
                    written
                );
            }
        }
    }
}

#[test]
fn the_phone_generator_yields_valid_numbers() {
    // The generator filters on validity; make sure the filter is not rejecting everything.
    let valid = AREA_CODES
        .iter()
        .filter(|area| {
            phonenumber::parse(None, format!("+1{area}2345678")).is_ok_and(|n| n.is_valid())
        })
        .count();
    assert!(
        valid > AREA_CODES.len() / 2,
        "most listed area codes must be valid"
    );
}

#[test]
fn naive_helpers_agree_with_chrono() {
    // Guards the test's own canonical timestamp rendering.
    let naive = NaiveDateTime::parse_from_str("2026-03-01 14:05:00", "%Y-%m-%d %H:%M:%S").unwrap();
    assert_eq!(
        canonical_timestamp(naive.and_utc()),
        json!("2026-03-01T14:05:00Z")
    );
}
