//! Effective-dated changes, decided without I/O: when a system says its change takes effect
//! (the date its mapping points at), which of the values it sent wait for that date, and what
//! becomes of a change already waiting.
//!
//! An HRIS records a pay rise the day it is agreed and dates it for the 1st. Applying it on
//! arrival pays the new rate early; dropping it loses it. So the fields the date governs are
//! split off the event and held as a scheduled change while the rest applies now. On the date
//! the held values are applied as a fresh change from that system, merged against the golden
//! record and shadows as they are then, so its conflicts are judged then. The effects (rows,
//! audit, the release) live in the runtime; this module only decides.
//!
//! A date without an offset is read in the mapping's time zone (UTC unless it names one): a
//! rise dated the 1st by an HRIS in New York takes effect at midnight in New York, not at 19:00
//! the day before.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::offset::LocalResult;
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value};

use crate::mapping::get_path;
use crate::model::{EffectiveDate, Fields};

/// When an event's dated values take effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Timing {
    /// The event carries no date (or an empty one): its values take effect now.
    Undated,
    /// The date has come: the values take effect now.
    Due { at: DateTime<Utc>, date: String },
    /// The values take effect at `at`; `date` is the system's text for it.
    Future { at: DateTime<Utc>, date: String },
    /// The date cannot be read: the dated values are set aside, with this message.
    Invalid { value: Value, message: String },
}

/// Reads the effective date of `record` and places it against `now`.
pub fn timing(dated: &EffectiveDate, record: &Map<String, Value>, now: DateTime<Utc>) -> Timing {
    let Some(value) = get_path(record, &dated.path) else {
        return Timing::Undated;
    };
    if value.is_null() || value.as_str().is_some_and(|s| s.trim().is_empty()) {
        return Timing::Undated;
    }
    let parsed = zone_of(dated).and_then(|zone| parse_effective(value, zone));
    match parsed {
        Err(message) => Timing::Invalid {
            value: value.clone(),
            message: format!("{}: {message}", dated.path),
        },
        Ok(at) => {
            let date = value.as_str().unwrap_or_default().trim().to_owned();
            if at > now {
                Timing::Future { at, date }
            } else {
                Timing::Due { at, date }
            }
        }
    }
}

/// The time zone a date without an offset is read in: the mapping's `time_zone`, else UTC.
pub fn zone_of(dated: &EffectiveDate) -> Result<Tz, String> {
    match dated.time_zone.as_deref().map(str::trim) {
        None | Some("") => Ok(Tz::UTC),
        Some(name) => Tz::from_str(name).map_err(|_| {
            format!("'{name}' is not a known time zone; use an IANA name such as America/New_York or UTC")
        }),
    }
}

/// An effective date as an instant: `YYYY-MM-DD` is the start of that day in `zone`; an
/// RFC 3339 time is taken as written; a date and time without an offset is read in `zone`.
pub fn parse_effective(value: &Value, zone: Tz) -> Result<DateTime<Utc>, String> {
    let Some(text) = value.as_str().map(str::trim) else {
        return Err(format!("an effective date must be text, not {value}"));
    };
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(start_of_day(day, zone));
    }
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return match zone.from_local_datetime(&at) {
                LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
                // The clocks go back: the first of the two instants is when it takes effect.
                LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
                LocalResult::None => Err(format!(
                    "'{text}' does not exist in time zone {}: the clocks skip that time",
                    zone.name()
                )),
            };
        }
    }
    Err(format!(
        "'{text}' is not a date (YYYY-MM-DD, or an RFC 3339 time such as 2027-01-01T00:00:00Z)"
    ))
}

/// The first instant of `day` in `zone`. Where the clocks skip midnight (a zone that starts
/// summer time at 00:00), the day starts when the clocks resume.
fn start_of_day(day: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    (0..=24)
        .map(|quarter| midnight + Duration::minutes(15 * quarter))
        .find_map(|local| zone.from_local_datetime(&local).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| midnight.and_utc())
}

/// The canonical fields the date governs: those it names, else every field the mapping reads.
pub fn governed(dated: &EffectiveDate, reads: BTreeSet<String>) -> BTreeSet<String> {
    if dated.fields.is_empty() {
        reads
    } else {
        dated.fields.iter().cloned().collect()
    }
}

/// Takes the governed fields out of what an event read, and returns the change to hold: those
/// whose value differs from what the system last held (`shadow`). Values equal to the shadow
/// are no change, so nothing waits for them. With no shadow (the record is not linked yet)
/// every value is held: the record joins on its date, whole.
pub fn split_held(
    values: &mut Fields,
    governed: &BTreeSet<String>,
    shadow: Option<&Fields>,
) -> Fields {
    let Some(shadow) = shadow else {
        return std::mem::take(values);
    };
    let mut held = Fields::new();
    for field in governed {
        let Some(value) = values.remove(field) else {
            continue;
        };
        if shadow.get(field).unwrap_or(&Value::Null) != &value {
            held.insert(field.clone(), value);
        }
    }
    held
}

/// A change that waits for its date, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub at: DateTime<Utc>,
    pub values: Fields,
}

/// What an event does to the change its system already has waiting for the record.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to hold and nothing waiting, or the same change again (a re-read).
    Keep,
    /// Hold `held` at this time, in place of what waits (if anything).
    Schedule,
    /// What waits is no longer what the system says: drop it, with the reason.
    Supersede(String),
}

/// Decides what an event with `timing` and `held` values does to `waiting`. The latest word
/// of the system about its record's future is the one kept: the record carries one date.
pub fn decide(timing: &Timing, held: &Fields, waiting: Option<&Waiting>) -> Step {
    match (timing, waiting) {
        (Timing::Undated | Timing::Invalid { .. }, _) => Step::Keep,
        (Timing::Due { date, .. }, Some(_)) => Step::Supersede(format!(
            "the system now dates its values {date}, which has come: they apply now"
        )),
        (Timing::Due { .. }, None) => Step::Keep,
        (Timing::Future { .. }, None) if held.is_empty() => Step::Keep,
        (Timing::Future { date, .. }, Some(_)) if held.is_empty() => Step::Supersede(format!(
            "the system's values dated {date} are what it already holds: nothing changes then"
        )),
        (Timing::Future { at, .. }, Some(w)) if w.at == *at && &w.values == held => Step::Keep,
        (Timing::Future { .. }, _) => Step::Schedule,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dated(fields: &[&str]) -> EffectiveDate {
        EffectiveDate {
            path: "pay/effective".into(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            time_zone: None,
        }
    }

    fn record(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_date_after_now_is_future_and_today_or_before_is_due() {
        let now = at("2026-12-15T09:00:00Z");
        let d = dated(&[]);
        assert_eq!(
            timing(
                &d,
                &record(json!({"pay": {"effective": "2027-01-01"}})),
                now
            ),
            Timing::Future {
                at: at("2027-01-01T00:00:00Z"),
                date: "2027-01-01".into()
            },
            "a date after today waits until midnight UTC that day"
        );
        assert!(
            matches!(
                timing(
                    &d,
                    &record(json!({"pay": {"effective": "2026-12-15"}})),
                    now
                ),
                Timing::Due { .. }
            ),
            "today's date has come at 09:00"
        );
        assert!(
            matches!(
                timing(
                    &d,
                    &record(json!({"pay": {"effective": "2026-12-15T10:00:00+01:00"}})),
                    now
                ),
                Timing::Due { .. }
            ),
            "10:00 at +01:00 is 09:00 UTC: due"
        );
        assert_eq!(
            timing(&d, &record(json!({"pay": {}})), now),
            Timing::Undated,
            "no date: the change is effective now"
        );
        assert_eq!(
            timing(&d, &record(json!({"pay": {"effective": ""}})), now),
            Timing::Undated,
            "an empty date is no date"
        );
    }

    #[test]
    fn an_unreadable_date_is_invalid_with_a_message_naming_the_path() {
        let now = at("2026-12-15T09:00:00Z");
        for bad in [json!("2027-13-01"), json!("next monday"), json!(20270101)] {
            let Timing::Invalid { value, message } = timing(
                &dated(&[]),
                &record(json!({"pay": {"effective": bad}})),
                now,
            ) else {
                panic!("{bad} is not a date");
            };
            assert_eq!(value, bad, "the value is kept for the exception");
            assert!(
                message.starts_with("pay/effective: "),
                "the message names the path: {message}"
            );
        }
    }

    #[test]
    fn a_date_without_an_offset_is_read_in_the_mappings_time_zone() {
        let zoned = |zone: &str| EffectiveDate {
            time_zone: Some(zone.to_owned()),
            ..dated(&[])
        };
        let new_york = zoned("America/New_York");
        let on = |d: &EffectiveDate, value: &str, now: &str| {
            timing(d, &record(json!({"pay": {"effective": value}})), at(now))
        };
        assert!(
            matches!(
                on(&new_york, "2027-01-01", "2027-01-01T04:59:59Z"),
                Timing::Future { at: t, .. } if t == at("2027-01-01T05:00:00Z")
            ),
            "the 1st in New York starts at 05:00 UTC: at 04:59 the rise still waits"
        );
        assert!(
            matches!(
                on(&new_york, "2027-01-01", "2027-01-01T05:00:00Z"),
                Timing::Due { .. }
            ),
            "at midnight in New York the rise is due"
        );
        assert!(
            matches!(
                on(&new_york, "2027-07-01 09:00:00", "2027-07-01T12:00:00Z"),
                Timing::Future { at: t, .. } if t == at("2027-07-01T13:00:00Z")
            ),
            "a local time in summer is read at UTC-4"
        );
        assert!(
            matches!(
                on(&new_york, "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
                Timing::Due { .. }
            ),
            "a date with an offset is taken as written, whatever the zone"
        );
        assert!(
            matches!(
                on(&zoned("America/Santiago"), "2026-09-06", "2026-09-06T03:00:00Z"),
                Timing::Future { at: t, .. } if t == at("2026-09-06T04:00:00Z")
            ),
            "where the clocks skip midnight, the day starts at 01:00 local time"
        );
        assert!(
            matches!(
                on(&new_york, "2027-03-14 02:30:00", "2027-01-01T00:00:00Z"),
                Timing::Invalid { message, .. } if message.contains("does not exist")
            ),
            "a local time the clocks skip is no date"
        );
        assert!(
            matches!(
                on(&zoned("Mars/Olympus"), "2027-01-01", "2027-01-01T00:00:00Z"),
                Timing::Invalid { message, .. } if message.contains("not a known time zone")
            ),
            "an unknown zone is named"
        );
    }

    #[test]
    fn only_governed_values_that_differ_from_the_shadow_are_held() {
        let governed: BTreeSet<String> = ["pay_rate", "pay_currency"].map(String::from).into();
        let mut values: Fields = [
            ("pay_rate".to_owned(), json!("85000")),
            ("pay_currency".to_owned(), json!("USD")),
            ("job_title".to_owned(), json!("Lead")),
        ]
        .into();
        let shadow: Fields = [
            ("pay_rate".to_owned(), json!("80000")),
            ("pay_currency".to_owned(), json!("USD")),
        ]
        .into();
        let held = split_held(&mut values, &governed, Some(&shadow));
        assert_eq!(
            held,
            Fields::from([("pay_rate".to_owned(), json!("85000"))]),
            "the rise is held; the unchanged currency is no change"
        );
        assert_eq!(
            values,
            Fields::from([("job_title".to_owned(), json!("Lead"))]),
            "an ungoverned field applies now, and no governed one does"
        );
        let mut first = Fields::from([("job_title".to_owned(), json!("Lead"))]);
        assert_eq!(
            split_held(&mut first, &governed, None).len(),
            1,
            "a record not linked yet is held whole"
        );
        assert!(first.is_empty(), "and nothing of it applies now");
    }

    #[test]
    fn the_latest_word_about_the_future_is_kept() {
        let jan = at("2027-01-01T00:00:00Z");
        let rise = Fields::from([("pay_rate".to_owned(), json!("85000"))]);
        let future = Timing::Future {
            at: jan,
            date: "2027-01-01".into(),
        };
        let waiting = Waiting {
            at: jan,
            values: rise.clone(),
        };
        assert_eq!(
            decide(&future, &rise, None),
            Step::Schedule,
            "a new rise waits"
        );
        assert_eq!(
            decide(&future, &rise, Some(&waiting)),
            Step::Keep,
            "the same rise read again changes nothing"
        );
        let bigger = Fields::from([("pay_rate".to_owned(), json!("90000"))]);
        assert_eq!(
            decide(&future, &bigger, Some(&waiting)),
            Step::Schedule,
            "a corrected rise replaces the waiting one"
        );
        assert!(
            matches!(
                decide(&future, &Fields::new(), Some(&waiting)),
                Step::Supersede(_)
            ),
            "a future date over unchanged values cancels what waits"
        );
        let due = Timing::Due {
            at: jan,
            date: "2026-06-01".into(),
        };
        assert!(
            matches!(
                decide(&due, &Fields::new(), Some(&waiting)),
                Step::Supersede(_)
            ),
            "a date that has come replaces what waits: those values apply now"
        );
        assert_eq!(
            decide(&Timing::Undated, &Fields::new(), Some(&waiting)),
            Step::Keep,
            "an event without the date leaves the waiting change alone"
        );
    }
}
