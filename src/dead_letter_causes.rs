//! Why writes failed for good, in words people read, and grouped by cause: pure functions over
//! a dead letter's class, status and the system's answer.
//!
//! A system says why it refused a write somewhere in its answer (`message`, `detail`,
//! `error_description`, a list of `errors`, or wherever its config's `error_message_pointer`
//! says), often naming the fields at fault. Support staff need that sentence, not the JSON;
//! they need the hundred failures with one cause as one line, with a count; and they need to
//! know when replaying cannot help: a validation refusal (400, 422) fails again until the
//! record or the mapping changes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::model::RecordId;
use crate::ops::DeadLetterView;

/// Longest message kept, in characters.
const MESSAGE_CHARS: usize = 300;

/// Keys that hold a readable message, in the order they are tried.
const MESSAGE_KEYS: [&str; 6] = [
    "message",
    "detail",
    "error_description",
    "title",
    "error_message",
    "description",
];

/// The readable message of a system's answer: at `pointer` (a JSON pointer) when the system's
/// config names one, else the first of the usual keys (at the top, in `error`, or in the first
/// of `errors`), else a plain-text answer's first line. None for an empty answer.
pub fn readable_message(body: &str, pointer: Option<&str>) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    let Ok(json) = serde_json::from_str::<Value>(body) else {
        return body.lines().next().map(clip);
    };
    if let Some(text) = pointer.and_then(|p| json.pointer(p)).and_then(text_of) {
        return Some(clip(&text));
    }
    let places = [
        Some(&json),
        json.get("error").filter(|e| e.is_object()),
        json.get("errors").and_then(|e| e.get(0)),
    ];
    for place in places.into_iter().flatten() {
        for key in MESSAGE_KEYS {
            if let Some(text) = place.get(key).and_then(text_of) {
                return Some(clip(&text));
            }
        }
    }
    json.get("error").and_then(text_of).map(|t| clip(&t))
}

fn text_of(v: &Value) -> Option<String> {
    v.as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn clip(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MESSAGE_CHARS) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// The system fields a refusal names: `field`, `param`, or each entry of `fields`/`errors`
/// with a `field`, `path`, `param` or a `source.pointer`.
pub fn named_fields(body: &str) -> Vec<String> {
    let Ok(json) = serde_json::from_str::<Value>(body.trim()) else {
        return Vec::new();
    };
    let of = |v: &Value| -> Option<String> {
        ["field", "param", "path", "attribute"]
            .into_iter()
            .find_map(|k| v.get(k).and_then(Value::as_str))
            .or_else(|| v.pointer("/source/pointer").and_then(Value::as_str))
            .map(|s| s.trim_start_matches('/').to_owned())
            .filter(|s| !s.is_empty())
    };
    let mut out: Vec<String> = of(&json).into_iter().collect();
    for list in ["fields", "errors"] {
        for entry in json
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(f) = of(entry)
                && !out.contains(&f)
            {
                out.push(f);
            }
        }
    }
    out
}

/// Whether replaying as it is will fail the same way: the system refused the content (a
/// validation error, or another refusal of the request itself), not a passing condition.
pub fn fails_again(error_class: &str, status: Option<i64>) -> bool {
    matches!(error_class, "validation" | "mapping")
        || (error_class == "rejected"
            && status.is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429))
}

/// What failures of one cause share: the message with what differs per record (numbers,
/// quoted values) taken out, so a hundred salaries over a limit are one cause.
pub fn cause_key(system: &str, error_class: &str, status: Option<i64>, message: &str) -> String {
    let mut shape = String::with_capacity(message.len());
    let mut in_quote: Option<char> = None;
    let mut last_digit = false;
    for c in message.chars() {
        if let Some(q) = in_quote {
            if c == q {
                in_quote = None;
                shape.push('…');
                shape.push(c);
            }
            continue;
        }
        if c == '\'' || c == '"' {
            in_quote = Some(c);
            shape.push(c);
            last_digit = false;
            continue;
        }
        if c.is_ascii_digit() {
            if !last_digit {
                shape.push('#');
            }
            last_digit = true;
            continue;
        }
        if last_digit && (c == ',' || c == '.') {
            continue;
        }
        last_digit = false;
        shape.push(c);
    }
    format!(
        "{system}|{error_class}|{}|{}",
        status.map_or(String::new(), |s| s.to_string()),
        shape.to_lowercase()
    )
}

/// Failures that share a cause, with what support needs to act on them as one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Cause {
    /// What the failures share (system, class, status, message without its values).
    pub key: String,
    pub system: String,
    pub error_class: String,
    pub response_status: Option<i64>,
    /// The newest failure's message, in the system's words.
    pub message: String,
    pub count: u64,
    /// Every failure of the cause, oldest first (at most [`MAX_IDS`]).
    pub ids: Vec<i64>,
    pub first_at: String,
    pub last_at: String,
    /// Replaying as it is fails again: the record or the mapping must change first.
    pub fails_again: bool,
    /// System fields the refusals name.
    pub fields: Vec<String>,
    /// Some of the records it failed for.
    pub records: Vec<RecordId>,
    pub object: Option<String>,
    /// The record of the newest failure, whose values mask `message` for a caller.
    #[serde(skip)]
    pub newest_record: Option<RecordId>,
}

/// Ids kept per cause: as many as a selection's replay takes.
pub const MAX_IDS: usize = 1000;

/// Records kept per cause as samples.
const SAMPLE_RECORDS: usize = 5;

/// Groups dead letters by cause, the most frequent first.
pub fn group(letters: &[DeadLetterView]) -> Vec<Cause> {
    let mut causes: BTreeMap<String, Cause> = BTreeMap::new();
    for dl in letters {
        let message = dl.message.clone().unwrap_or_else(|| {
            format!(
                "{} ({})",
                dl.error_class,
                dl.response_status
                    .map_or("no answer".into(), |s| s.to_string())
            )
        });
        let key = cause_key(&dl.system, &dl.error_class, dl.response_status, &message);
        let cause = causes.entry(key.clone()).or_insert_with(|| Cause {
            key,
            system: dl.system.clone(),
            error_class: dl.error_class.clone(),
            response_status: dl.response_status,
            message: message.clone(),
            count: 0,
            ids: Vec::new(),
            first_at: dl.created_at.clone(),
            last_at: dl.created_at.clone(),
            fails_again: dl.fails_again,
            fields: Vec::new(),
            records: Vec::new(),
            object: dl.object.clone(),
            newest_record: dl.record_id,
        });
        cause.count += 1;
        if cause.ids.len() < MAX_IDS {
            cause.ids.push(dl.id);
        }
        if dl.updated_at >= cause.last_at {
            cause.last_at = dl.updated_at.clone();
            cause.message = message;
            cause.newest_record = dl.record_id;
        }
        if dl.created_at < cause.first_at {
            cause.first_at = dl.created_at.clone();
        }
        for f in &dl.fields {
            if !cause.fields.contains(f) {
                cause.fields.push(f.clone());
            }
        }
        if let Some(r) = dl.record_id
            && cause.records.len() < SAMPLE_RECORDS
            && !cause.records.contains(&r)
        {
            cause.records.push(r);
        }
    }
    let mut out: Vec<Cause> = causes.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_at.cmp(&a.last_at)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_found_where_systems_put_it() {
        let cases = [
            (
                r#"{"error":"validation_failed","message":"salary_cents exceeds the payroll limit"}"#,
                "salary_cents exceeds the payroll limit",
            ),
            (
                r#"{"detail":"phone is not E.164","status":"400"}"#,
                "phone is not E.164",
            ),
            (
                r#"{"error":"invalid_grant","error_description":"token expired"}"#,
                "token expired",
            ),
            (
                r#"{"errors":[{"message":"name is required"}]}"#,
                "name is required",
            ),
            (r#"{"error":{"code":7,"message":"quota"}}"#, "quota"),
            (r#"{"error":"something broke"}"#, "something broke"),
            ("Service Unavailable\nretry later", "Service Unavailable"),
        ];
        for (body, want) in cases {
            assert_eq!(
                readable_message(body, None).as_deref(),
                Some(want),
                "{body}"
            );
        }
        assert_eq!(
            readable_message(r#"{"result":{"why":"locked"}}"#, Some("/result/why")).as_deref(),
            Some("locked"),
            "a configured pointer wins"
        );
        assert_eq!(
            readable_message("  ", None),
            None,
            "an empty answer has none"
        );
        assert_eq!(
            readable_message("{}", None),
            None,
            "nor an answer without one"
        );
    }

    #[test]
    fn a_refusal_names_its_fields() {
        let body = r#"{"message":"x","fields":[{"field":"salary_cents","message":"too big"},{"field":"phone"}]}"#;
        assert_eq!(named_fields(body), ["salary_cents", "phone"]);
        assert_eq!(
            named_fields(r#"{"errors":[{"source":{"pointer":"/data/attributes/email"}}]}"#),
            ["data/attributes/email"]
        );
        assert!(named_fields("not json").is_empty());
    }

    #[test]
    fn validation_refusals_fail_again_and_passing_conditions_do_not() {
        assert!(fails_again("validation", Some(422)));
        assert!(fails_again("rejected", Some(403)));
        assert!(!fails_again("rejected", Some(429)), "a rate limit passes");
        assert!(
            !fails_again("retries_exhausted", Some(503)),
            "an outage passes"
        );
        assert!(!fails_again("version_conflict", Some(412)));
    }

    #[test]
    fn failures_that_differ_only_in_their_values_share_a_cause() {
        let a = cause_key(
            "payroll",
            "validation",
            Some(422),
            "salary 612,000.00 exceeds the $500,000 limit for 'E1001'",
        );
        let b = cause_key(
            "payroll",
            "validation",
            Some(422),
            "salary 750000 exceeds the $500,000 limit for 'E2002'",
        );
        assert_eq!(a, b, "numbers and quoted values are not the cause");
        let c = cause_key("payroll", "validation", Some(422), "phone is not E.164");
        assert_ne!(a, c, "another message is another cause");
        let d = cause_key("hris", "validation", Some(422), "phone is not E.164");
        assert_ne!(c, d, "another system is another cause");
    }

    fn letter(id: i64, message: &str, record: i64) -> DeadLetterView {
        serde_json::from_value(serde_json::json!({
            "id": id, "kind": "write", "system": "payroll", "record_id": record,
            "error_class": "validation", "response_status": 422, "response_body": null,
            "attempts": 1, "status": "dead", "created_at": format!("2026-12-01T10:00:0{id}Z"),
            "updated_at": format!("2026-12-01T10:00:0{id}Z"), "actor": null, "discard_reason": null,
            "op": "update", "idempotency_key": null, "object": "employee", "request": null,
            "message": message, "fields": ["salary_cents"], "fails_again": true
        }))
        .unwrap_or_else(|e| panic!("a dead letter: {e}"))
    }

    #[test]
    fn dead_letters_are_grouped_by_cause_most_frequent_first() {
        let letters = [
            letter(1, "salary 600000 exceeds the limit", 11),
            letter(2, "phone '+44 20' is not a US number", 12),
            letter(3, "salary 750000 exceeds the limit", 13),
            letter(4, "salary 810000 exceeds the limit", 11),
        ];
        let causes = group(&letters);
        assert_eq!(causes.len(), 2, "two causes");
        assert_eq!(
            (
                causes[0].count,
                causes[0].ids.clone(),
                causes[0].records.clone()
            ),
            (3, vec![1, 3, 4], vec![11, 13]),
            "three salaries over the limit are one cause, with their ids and records"
        );
        assert_eq!(
            causes[0].message, "salary 810000 exceeds the limit",
            "the newest message stands for the cause"
        );
        assert!(causes[0].fails_again && causes[0].fields == ["salary_cents"]);
    }
}
