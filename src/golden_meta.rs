//! How the golden record's provenance (who set each field, and when) is stored: grouped by
//! setter and time, since one event sets most of a record's fields at once.
//!
//! `{"1764527781123456789@hris": ["family_name", "given_name"], …}` takes about a third of the
//! bytes of one `{"ts": …, "by": …}` object per field, which is how rows were written before
//! and are still read. The time is nanoseconds since the epoch; a time outside what that
//! counts (before 1677 or after 2262) is written as RFC 3339 text instead.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::merge::FieldMeta;

/// The stored text of a record's provenance.
pub fn encode(meta: &BTreeMap<String, FieldMeta>) -> serde_json::Result<String> {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (field, m) in meta {
        let at = m.ts.timestamp_nanos_opt().map_or_else(
            || m.ts.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            |nanos| nanos.to_string(),
        );
        groups
            .entry(format!("{at}@{}", m.by))
            .or_default()
            .push(field);
    }
    serde_json::to_string(&groups)
}

/// Reads provenance in either form: grouped (what [`encode`] writes) or one object per field.
pub fn decode(text: &str) -> serde_json::Result<BTreeMap<String, FieldMeta>> {
    let stored: Map<String, Value> = serde_json::from_str(text)?;
    let mut meta = BTreeMap::new();
    for (key, value) in stored {
        match value {
            Value::Array(fields) => {
                let (at, by) = key.split_once('@').ok_or_else(|| malformed(&key))?;
                let ts = parse_time(at).ok_or_else(|| malformed(&key))?;
                for field in fields {
                    let Value::String(field) = field else {
                        return Err(malformed(&key));
                    };
                    meta.insert(
                        field,
                        FieldMeta {
                            ts,
                            by: by.to_owned(),
                        },
                    );
                }
            }
            per_field => {
                meta.insert(key, serde_json::from_value(per_field)?);
            }
        }
    }
    Ok(meta)
}

fn parse_time(at: &str) -> Option<DateTime<Utc>> {
    match at.parse::<i64>() {
        Ok(nanos) => Some(DateTime::from_timestamp_nanos(nanos)),
        Err(_) => DateTime::parse_from_rfc3339(at)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
    }
}

fn malformed(key: &str) -> serde_json::Error {
    serde::de::Error::custom(format!("golden provenance group '{key}' is malformed"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn meta(entries: &[(&str, DateTime<Utc>, &str)]) -> BTreeMap<String, FieldMeta> {
        entries
            .iter()
            .map(|(f, ts, by)| {
                (
                    (*f).to_owned(),
                    FieldMeta {
                        ts: *ts,
                        by: (*by).to_owned(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn provenance_round_trips_to_the_nanosecond_and_groups_what_one_event_set() {
        let at = Utc
            .timestamp_opt(1_764_527_781, 123_456_789)
            .single()
            .expect("a valid time");
        let later = at + chrono::Duration::nanoseconds(1);
        let ancient = Utc
            .with_ymd_and_hms(1500, 1, 1, 0, 0, 0)
            .single()
            .expect("a valid time");
        let original = meta(&[
            ("given_name", at, "hris"),
            ("family_name", at, "hris"),
            ("work_phone", later, "pay@roll"),
            ("hire_date", ancient, "hris"),
        ]);
        let text = encode(&original).expect("encodes");
        assert_eq!(
            decode(&text).expect("decodes"),
            original,
            "every field keeps its setter and time to the nanosecond: {text}"
        );
        let groups: Map<String, Value> = serde_json::from_str(&text).expect("json");
        assert_eq!(
            groups.len(),
            3,
            "fields one event set share one group: {text}"
        );
    }

    #[test]
    fn rows_written_one_object_per_field_are_still_read() {
        let old = r#"{"given_name":{"ts":"2026-11-30T18:36:21.123456789Z","by":"hris"},
                      "work_phone":{"ts":"2026-11-30T18:36:22Z","by":"payroll"}}"#;
        let read = decode(old).expect("the old form decodes");
        assert_eq!(read["given_name"].by, "hris");
        assert_eq!(
            read["given_name"].ts.timestamp_subsec_nanos(),
            123_456_789,
            "with its time"
        );
        assert_eq!(read["work_phone"].by, "payroll");
        let again = decode(&encode(&read).expect("encodes")).expect("decodes");
        assert_eq!(again, read, "and written again in the grouped form");
    }

    #[test]
    fn malformed_provenance_is_an_error_not_a_guess() {
        for bad in [
            r#"{"no-separator": ["a"]}"#,
            r#"{"yesterday@hris": ["a"]}"#,
            r#"{"1@hris": [1]}"#,
            r#"{"a": {"ts": 3}}"#,
            "[]",
        ] {
            assert!(decode(bad).is_err(), "{bad} is refused");
        }
    }
}
