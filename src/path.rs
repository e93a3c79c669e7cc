//! System paths: where a mapped value lives inside a system's record, including inside arrays.
//!
//! Connected systems nest their records (`address/city`) and keep lists of objects (SCIM
//! `emails`, `phoneNumbers`), so a mapping rule names its system field with a small path
//! language instead of a flat key. This module owns that language: parsing it once (so a bad
//! path is a config error when the workspace loads, not a silent miss at sync time), reading a
//! value through it, writing a value through it in place without disturbing the rest of the
//! record (a write is applied onto the record as last read), and explaining why a path finds
//! nothing in sample records. Pure functions over `serde_json` values.
//!
//! # Grammar
//!
//! * Segments are separated by `/`: `address/city`.
//! * A segment is a key, optionally followed by one selector:
//!   * `emails[type=work]`: the element of the array `emails` whose member `type`, rendered as
//!     text, equals `work` (so `[primary=true]` matches JSON `true` and `[n=1]` matches `1`);
//!   * `emails[0]`: the element at index 0.
//! * After a selector, `.` separates too: `emails[type=work].value` is
//!   `emails[type=work]/value`. Anywhere else a `.` is part of the key, so SCIM extension keys
//!   such as `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` are plain keys.
//! * A bare all-digit segment (`phones/0`) indexes an array when the container is an array, or
//!   when it is absent on write (an array is created); in an object it is an ordinary key.
//!
//! # Writing
//!
//! [`set`] changes only what the path names: sibling members, other array elements and other
//! members of a selected element stay as they were. Missing containers are created. A selector
//! that matches no element appends `{key: value}` and writes into it; the selector's value is
//! written as text, except `true`/`false`, which become JSON booleans (`[primary=true]` must
//! find the element again on the next read, and SCIM flags are booleans; numbers stay text
//! because codes such as zip codes look numeric but are not). An index equal to the array's
//! length appends; a larger one is refused, as is a selector or index over a value that is not
//! an array (other than an absent or null one). A key over a scalar replaces it with an
//! object, as writes always have. A refused write leaves the record untouched.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

/// Distinct values listed in "seen: ..." before the list is cut.
const MAX_SEEN: usize = 10;

/// Why a path cannot be parsed, or a value cannot be written through it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("system path '{path}' is not valid: {reason}")]
    Invalid { path: String, reason: String },
    #[error("cannot write system path '{path}': {reason}")]
    Unwritable { path: String, reason: String },
}

impl PathError {
    /// The path the error is about, as written.
    pub fn path(&self) -> &str {
        match self {
            PathError::Invalid { path, .. } | PathError::Unwritable { path, .. } => path,
        }
    }
}

/// A parsed system path. Displays as the text it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemPath {
    text: String,
    /// Never empty, and the first step is always a key: a record is an object.
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    step: Step,
    /// Byte offset in `text` where this step ends, so messages can quote the path so far.
    end: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    Select { key: String, value: String },
}

/// One step of a parsed path, for connectors that translate paths into their system's own
/// syntax (SCIM attribute paths, say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathStep<'a> {
    Key(&'a str),
    Index(usize),
    /// `[key=value]`: the array element whose member `key`, as text, is `value`.
    Select {
        key: &'a str,
        value: &'a str,
    },
}

impl SystemPath {
    /// The path's steps, in order; the first is always a key.
    pub fn steps(&self) -> impl Iterator<Item = PathStep<'_>> {
        self.parts.iter().map(|p| match &p.step {
            Step::Key(k) => PathStep::Key(k),
            Step::Index(i) => PathStep::Index(*i),
            Step::Select { key, value } => PathStep::Select { key, value },
        })
    }

    /// Parses a path; the error names the path and what is wrong with it.
    pub fn parse(text: &str) -> Result<SystemPath, PathError> {
        let invalid = |reason: &str| PathError::Invalid {
            path: text.to_owned(),
            reason: reason.to_owned(),
        };
        if text.is_empty() {
            return Err(invalid("it is empty"));
        }
        let mut parts = Vec::new();
        let mut at = 0;
        loop {
            let rest = &text[at..];
            let key_len = rest.find(['/', '[']).unwrap_or(rest.len());
            let key = &rest[..key_len];
            let after_key = &rest[key_len..];
            if key.is_empty() {
                return Err(invalid(if after_key.starts_with('[') {
                    "a selector must follow a key, as in emails[0] or emails[type=work]"
                } else {
                    "it has an empty segment (look for '//', or a '/' or '.' at either end)"
                }));
            }
            at += key_len;
            parts.push(Part {
                step: Step::Key(key.to_owned()),
                end: at,
            });
            if let Some(inside) = after_key.strip_prefix('[') {
                let close = inside
                    .find(']')
                    .ok_or_else(|| invalid("a '[' is not closed by ']'"))?;
                let step = parse_selector(&inside[..close]).map_err(|r| invalid(&r))?;
                at += close + 2;
                parts.push(Part { step, end: at });
                match text[at..].chars().next() {
                    None => break,
                    Some('/' | '.') => at += 1,
                    Some('[') => return Err(invalid("a segment takes one selector only")),
                    Some(other) => {
                        return Err(invalid(&format!(
                            "expected '/' or '.' after ']', found '{other}'"
                        )));
                    }
                }
            } else if after_key.starts_with('/') {
                at += 1;
            } else {
                break;
            }
        }
        Ok(SystemPath {
            text: text.to_owned(),
            parts,
        })
    }

    /// The path as written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The record member the path starts at.
    pub fn top_level(&self) -> &str {
        match self.parts.first().map(|p| &p.step) {
            Some(Step::Key(key)) => key,
            _ => "",
        }
    }

    /// Whether the path is a single plain key (no selector, no nesting): writing it replaces
    /// exactly one top-level member and nothing inside another.
    pub fn is_plain_top_level(&self) -> bool {
        self.parts.len() == 1
    }

    /// The path text up to and including part `i`.
    fn prefix(&self, i: usize) -> &str {
        let end = self.parts.get(i).map_or(self.text.len(), |p| p.end);
        self.text.get(..end).unwrap_or(&self.text)
    }

    fn unwritable(&self, reason: String) -> PathError {
        PathError::Unwritable {
            path: self.text.clone(),
            reason,
        }
    }
}

impl fmt::Display for SystemPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_selector(inside: &str) -> Result<Step, String> {
    if inside.is_empty() {
        return Err(
            "a selector '[]' is empty; use an index such as [0] or a match such as \
                    [type=work]"
                .to_owned(),
        );
    }
    if let Some((key, value)) = inside.split_once('=') {
        if key.is_empty() {
            return Err(format!("the selector '[{inside}]' has no key before '='"));
        }
        return Ok(Step::Select {
            key: key.to_owned(),
            value: value.to_owned(),
        });
    }
    match as_index(inside) {
        Some(index) => Ok(Step::Index(index)),
        None if inside.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("the index in '[{inside}]' is too large"))
        }
        None => Err(format!(
            "the selector '[{inside}]' is neither an index such as [0] nor a match such as \
             [type=work]"
        )),
    }
}

/// A bare all-digit key as an array index.
fn as_index(key: &str) -> Option<usize> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse().ok()
}

/// A scalar as the text a selector compares with; objects, arrays and null have none.
fn as_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(text) => Some(Cow::Borrowed(text)),
        Value::Number(number) => Some(Cow::Owned(number.to_string())),
        Value::Bool(flag) => Some(Cow::Borrowed(if *flag { "true" } else { "false" })),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn selects(element: &Value, key: &str, want: &str) -> bool {
    element
        .as_object()
        .and_then(|member| member.get(key))
        .and_then(as_text)
        .is_some_and(|text| text == want)
}

/// The value a selector writes into an element it creates (see the module docs).
fn selector_value(text: &str) -> Value {
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(text.to_owned()),
    }
}

/// What a value is, for messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "an object",
        Value::Array(_) => "an array",
        Value::String(_) => "a text value",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a true/false value",
        Value::Null => "empty (null)",
    }
}

fn step_get<'a>(container: &'a Value, step: &Step) -> Option<&'a Value> {
    match (step, container) {
        (Step::Key(key), Value::Object(members)) => members.get(key),
        (Step::Key(key), Value::Array(items)) => items.get(as_index(key)?),
        (Step::Index(index), Value::Array(items)) => items.get(*index),
        (Step::Select { key, value }, Value::Array(items)) => {
            items.iter().find(|item| selects(item, key, value))
        }
        _ => None,
    }
}

/// The value at `path`, if the record has one there (JSON null counts as present).
pub fn get<'a>(record: &'a Map<String, Value>, path: &SystemPath) -> Option<&'a Value> {
    let (first, rest) = path.parts.split_first()?;
    let Step::Key(key) = &first.step else {
        return None;
    };
    let mut current = record.get(key)?;
    for part in rest {
        current = step_get(current, &part.step)?;
    }
    Some(current)
}

/// Writes `value` at `path`, in place, changing nothing else (see the module docs for what is
/// created and what is refused). On error the record is unchanged.
pub fn set(
    record: &mut Map<String, Value>,
    path: &SystemPath,
    value: Value,
) -> Result<(), PathError> {
    let Some((first, rest)) = path.parts.split_first() else {
        return Err(path.unwritable("the path is empty".to_owned()));
    };
    let Step::Key(key) = &first.step else {
        return Err(path.unwritable("a record is an object; the path must start with a key".into()));
    };
    if rest.is_empty() {
        record.insert(key.clone(), value);
        return Ok(());
    }
    // Work on a copy of the one member the path goes through, so a write refused halfway
    // down leaves the record exactly as it was.
    let mut member = record.get(key).cloned().unwrap_or(Value::Null);
    set_in(&mut member, path, 1, value)?;
    record.insert(key.clone(), member);
    Ok(())
}

/// Writes `value` through parts `i..` of `path`, starting at `container` (the value part
/// `i - 1` named).
fn set_in(
    container: &mut Value,
    path: &SystemPath,
    i: usize,
    value: Value,
) -> Result<(), PathError> {
    let Some(part) = path.parts.get(i) else {
        *container = value;
        return Ok(());
    };
    let at = path.prefix(i - 1);
    let slot = child_mut(container, &part.step, path, at)?;
    if i + 1 == path.parts.len() {
        let mut value = value;
        // An element written whole must still be found by its selector on the next read.
        if let (Step::Select { key, value: want }, Value::Object(members)) =
            (&part.step, &mut value)
            && !members.contains_key(key)
        {
            members.insert(key.clone(), selector_value(want));
        }
        *slot = value;
        return Ok(());
    }
    set_in(slot, path, i + 1, value)
}

/// The slot `step` names inside `container`, created if missing.
fn child_mut<'a>(
    container: &'a mut Value,
    step: &Step,
    path: &SystemPath,
    at: &str,
) -> Result<&'a mut Value, PathError> {
    match step {
        Step::Key(key) => {
            if let Some(index) = as_index(key)
                && matches!(container, Value::Array(_) | Value::Null)
            {
                return index_mut(container, index, path, at);
            }
            if let Value::Array(_) = container {
                return Err(path.unwritable(format!(
                    "'{at}' is an array; use a selector such as {at}[0] or {at}[type=work]"
                )));
            }
            if !container.is_object() {
                *container = Value::Object(Map::new());
            }
            match container {
                Value::Object(members) => Ok(members.entry(key.clone()).or_insert(Value::Null)),
                other => Err(path.unwritable(format!("'{at}' is {}", describe(other)))),
            }
        }
        Step::Index(index) => index_mut(container, *index, path, at),
        Step::Select { key, value } => {
            let items = array_mut(container, path, at)?;
            let position = match items.iter().position(|item| selects(item, key, value)) {
                Some(position) => position,
                None => {
                    let mut element = Map::new();
                    element.insert(key.clone(), selector_value(value));
                    items.push(Value::Object(element));
                    items.len() - 1
                }
            };
            items
                .get_mut(position)
                .ok_or_else(|| path.unwritable(format!("'{at}' lost an element while writing")))
        }
    }
}

/// `container` as an array, an absent or null one becoming empty.
fn array_mut<'a>(
    container: &'a mut Value,
    path: &SystemPath,
    at: &str,
) -> Result<&'a mut Vec<Value>, PathError> {
    if container.is_null() {
        *container = Value::Array(Vec::new());
    }
    match container {
        Value::Array(items) => Ok(items),
        other => Err(path.unwritable(format!(
            "'{at}' is {}, not an array, so it has no elements to select",
            describe(other)
        ))),
    }
}

fn index_mut<'a>(
    container: &'a mut Value,
    index: usize,
    path: &SystemPath,
    at: &str,
) -> Result<&'a mut Value, PathError> {
    let items = array_mut(container, path, at)?;
    let len = items.len();
    if index == len {
        items.push(Value::Null);
    }
    items.get_mut(index).ok_or_else(|| {
        path.unwritable(format!(
            "'{at}' has {len} element(s), so index {index} would leave a gap (index {len} \
             appends)"
        ))
    })
}

/// Why `path` finds nothing in any of `samples`, or `None` when at least one sample has a
/// value there (or there are no samples to judge by). Of the samples, the one the path gets
/// furthest into explains the miss; values seen for a selector are gathered from all.
pub fn why_unmatched(samples: &[Map<String, Value>], path: &SystemPath) -> Option<String> {
    let mut misses = Vec::with_capacity(samples.len());
    for sample in samples {
        match walk(sample, path) {
            Ok(()) => return None,
            Err(miss) => misses.push(miss),
        }
    }
    let depth = misses.iter().map(|m| m.depth).max()?;
    let deepest: Vec<&Miss> = misses.iter().filter(|m| m.depth == depth).collect();
    let first = deepest.first()?;
    let at = path.prefix(depth.saturating_sub(1));
    let here = path.prefix(depth);
    let step = &path.parts.get(depth)?.step;
    Some(match (&first.kind, step) {
        (MissKind::Absent, _) => format!("no sample record has `{here}`"),
        (MissKind::NoElement { .. }, Step::Select { key, value }) => {
            let mut seen: Vec<&str> = Vec::new();
            for miss in &deepest {
                if let MissKind::NoElement { seen: values } = &miss.kind {
                    for v in values {
                        if !seen.contains(&v.as_str()) {
                            seen.push(v);
                        }
                    }
                }
            }
            let seen = if seen.is_empty() {
                format!("no element has a `{key}`")
            } else {
                let more = seen.len().saturating_sub(MAX_SEEN);
                let mut listed = seen
                    .iter()
                    .take(MAX_SEEN)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                if more > 0 {
                    listed.push_str(&format!(" and {more} more"));
                }
                format!("seen: {listed}")
            };
            format!("no record has an element of `{at}` with {key} = '{value}' ({seen})")
        }
        (MissKind::OutOfRange { .. }, _) => {
            let longest = deepest
                .iter()
                .filter_map(|m| match m.kind {
                    MissKind::OutOfRange { len } => Some(len),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            format!("no sample record has `{here}`: the longest `{at}` has {longest} element(s)")
        }
        (MissKind::Wrong { found, example }, Step::Key(_)) if *found == "an array" => {
            let example = example.as_deref().unwrap_or("type=work");
            format!("`{at}` is an array; use a selector such as {at}[{example}] or {at}[0]")
        }
        (MissKind::Wrong { found, .. }, Step::Key(_)) => {
            format!("`{at}` is {found}, not an object")
        }
        (MissKind::Wrong { found, .. }, _) => format!("`{at}` is {found}, not an array"),
        (MissKind::NoElement { .. }, _) => format!("no sample record has `{here}`"),
    })
}

/// How far a path got into one record before finding nothing: part `depth` failed.
struct Miss {
    depth: usize,
    kind: MissKind,
}

enum MissKind {
    Absent,
    /// The container has the wrong shape; `example` is a selector built from its first element
    /// when it is an array of objects.
    Wrong {
        found: &'static str,
        example: Option<String>,
    },
    NoElement {
        seen: Vec<String>,
    },
    OutOfRange {
        len: usize,
    },
}

fn walk(record: &Map<String, Value>, path: &SystemPath) -> Result<(), Miss> {
    let absent = |depth| Miss {
        depth,
        kind: MissKind::Absent,
    };
    let Some(Step::Key(key)) = path.parts.first().map(|p| &p.step) else {
        return Err(absent(0));
    };
    let mut current = record.get(key).ok_or_else(|| absent(0))?;
    for (depth, part) in path.parts.iter().enumerate().skip(1) {
        if let Some(next) = step_get(current, &part.step) {
            current = next;
            continue;
        }
        let kind = match (&part.step, current) {
            (Step::Key(_), Value::Object(_)) => MissKind::Absent,
            (Step::Key(key), Value::Array(items)) if as_index(key).is_some() => {
                MissKind::OutOfRange { len: items.len() }
            }
            (Step::Index(_), Value::Array(items)) => MissKind::OutOfRange { len: items.len() },
            (Step::Select { key, .. }, Value::Array(items)) => MissKind::NoElement {
                seen: items
                    .iter()
                    .filter_map(|item| item.as_object()?.get(key).and_then(as_text))
                    .map(Cow::into_owned)
                    .collect(),
            },
            (_, other) => MissKind::Wrong {
                found: describe(other),
                example: example_selector(other),
            },
        };
        return Err(Miss { depth, kind });
    }
    Ok(())
}

/// `key=value` from the first scalar member of an array's first object, for suggestions.
fn example_selector(value: &Value) -> Option<String> {
    let first = value.as_array()?.iter().find_map(Value::as_object)?;
    first
        .iter()
        .find_map(|(key, member)| Some(format!("{key}={}", as_text(member)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(text: &str) -> SystemPath {
        SystemPath::parse(text).expect("the test path is valid")
    }

    fn record(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(members) => members,
            other => panic!("a test record is an object, got {other}"),
        }
    }

    fn written(start: Value, path: &str, value: Value) -> Value {
        let mut doc = record(start);
        set(&mut doc, &p(path), value).expect("the test write is possible");
        Value::Object(doc)
    }

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn plain_and_nested_keys_parse_as_before() {
        let path = p("address/city");
        assert_eq!(
            path.top_level(),
            "address",
            "the first key is the top level"
        );
        assert!(!path.is_plain_top_level(), "a nested path is not plain");
        assert!(p("title").is_plain_top_level(), "a single key is plain");
        assert_eq!(
            p("a.b").top_level(),
            "a.b",
            "a dot outside a selector is part of the key"
        );
        assert_eq!(
            path.to_string(),
            "address/city",
            "a path displays as written"
        );
    }

    #[test]
    fn extension_keys_with_dots_and_colons_are_plain_keys() {
        let path = p(&format!("{ENTERPRISE}/employeeNumber"));
        assert_eq!(
            path.top_level(),
            ENTERPRISE,
            "dots and colons stay in the key"
        );
        let doc = record(json!({ ENTERPRISE: {"employeeNumber": "701984"} }));
        assert_eq!(
            get(&doc, &path),
            Some(&json!("701984")),
            "an extension key reads like any key"
        );
    }

    #[test]
    fn selectors_and_dots_after_them_parse() {
        assert_eq!(
            p("emails[type=work].value"),
            SystemPath {
                parts: p("emails[type=work]/value").parts,
                text: "emails[type=work].value".to_owned(),
            },
            "'.' after a selector separates like '/'"
        );
        assert!(
            !p("emails[0]").is_plain_top_level(),
            "a selector is not a plain key"
        );
        assert_eq!(
            p("a/b[k=v=w]/c").parts.get(2).map(|x| &x.step),
            Some(&Step::Select {
                key: "k".to_owned(),
                value: "v=w".to_owned()
            }),
            "a selector splits at its first '='"
        );
        assert_eq!(
            p("links[href=/a/b].rel").parts.len(),
            3,
            "'/' inside a selector does not separate"
        );
    }

    #[test]
    fn parse_errors_name_the_path_and_the_problem() {
        for (text, problem) in [
            ("", "it is empty"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("/a", "empty segment"),
            ("emails[type=work", "not closed"),
            ("emails[=work]", "no key"),
            ("emails[]", "is empty"),
            ("emails[abc]", "neither an index"),
            ("emails[0]x", "expected '/' or '.'"),
            ("emails[0][1]", "one selector"),
            ("emails[0].", "empty segment"),
            ("[0]", "must follow a key"),
        ] {
            let err = SystemPath::parse(text).expect_err("the path is invalid");
            let message = err.to_string();
            assert!(
                message.contains(&format!("'{text}'")) && message.contains(problem),
                "a parse error names the path and says '{problem}': {message}"
            );
        }
    }

    #[test]
    fn selectors_compare_members_as_text() {
        let doc = record(json!({"emails": [
            {"type": "home", "value": "h", "primary": false},
            {"type": "work", "value": "w", "primary": true, "n": 1},
        ]}));
        assert_eq!(get(&doc, &p("emails[type=work].value")), Some(&json!("w")));
        assert_eq!(
            get(&doc, &p("emails[primary=true]/value")),
            Some(&json!("w")),
            "[primary=true] matches JSON true"
        );
        assert_eq!(
            get(&doc, &p("emails[n=1].type")),
            Some(&json!("work")),
            "[n=1] matches the number 1"
        );
        assert_eq!(get(&doc, &p("emails[0].value")), Some(&json!("h")));
        assert_eq!(
            get(&doc, &p("emails/1/value")),
            Some(&json!("w")),
            "a bare number indexes an array"
        );
        assert_eq!(get(&doc, &p("emails[type=other].value")), None);
        assert_eq!(get(&doc, &p("emails[5]")), None);
        assert_eq!(
            get(&doc, &p("emails/value")),
            None,
            "a key does not reach into an array"
        );
    }

    #[test]
    fn a_bare_number_in_an_object_is_a_key() {
        let doc = record(json!({"codes": {"0": "zero"}}));
        assert_eq!(get(&doc, &p("codes/0")), Some(&json!("zero")));
        assert_eq!(
            written(json!({"codes": {"0": "zero"}}), "codes/1", json!("one")),
            json!({"codes": {"0": "zero", "1": "one"}}),
            "a number writes an object key into an existing object"
        );
    }

    #[test]
    fn nested_writes_keep_siblings() {
        assert_eq!(
            written(
                json!({"contact": {"email": "a", "mobile": "m"}, "id": 7}),
                "contact/email",
                json!("b")
            ),
            json!({"contact": {"email": "b", "mobile": "m"}, "id": 7}),
            "only the named member changes"
        );
        assert_eq!(
            written(json!({}), "address/city", json!("Paris")),
            json!({"address": {"city": "Paris"}}),
            "missing objects are created"
        );
        assert_eq!(
            written(
                json!({"address": "unknown"}),
                "address/city",
                json!("Paris")
            ),
            json!({"address": {"city": "Paris"}}),
            "a key over a scalar replaces it with an object, as writes always have"
        );
    }

    #[test]
    fn selector_writes_change_only_the_selected_element() {
        let start = json!({"emails": [
            {"type": "home", "value": "h"},
            {"type": "work", "value": "w", "primary": true},
        ]});
        assert_eq!(
            written(start.clone(), "emails[type=work].value", json!("new")),
            json!({"emails": [
                {"type": "home", "value": "h"},
                {"type": "work", "value": "new", "primary": true},
            ]}),
            "other elements and other members of the selected element are kept"
        );
        assert_eq!(
            written(
                json!({"emails": [{"type": "home", "value": "h"}]}),
                "emails[type=work].value",
                json!("w")
            ),
            json!({"emails": [{"type": "home", "value": "h"}, {"type": "work", "value": "w"}]}),
            "a selector with no match appends an element carrying the selector"
        );
        assert_eq!(
            written(json!({}), "emails[primary=true].value", json!("w")),
            json!({"emails": [{"primary": true, "value": "w"}]}),
            "a missing array is created; selector text true becomes a boolean"
        );
        assert_eq!(
            written(json!({}), "phones[kind=1].value", json!("x")),
            json!({"phones": [{"kind": "1", "value": "x"}]}),
            "a numeric-looking selector value is written as text"
        );
        assert_eq!(
            written(start, "emails[type=work]", json!({"value": "whole"})),
            json!({"emails": [
                {"type": "home", "value": "h"},
                {"value": "whole", "type": "work"},
            ]}),
            "an element written whole keeps the member its selector finds it by"
        );
    }

    #[test]
    fn index_writes_replace_or_append() {
        assert_eq!(
            written(
                json!({"phoneNumbers": [{"value": "1", "type": "work"}, {"value": "2"}]}),
                "phoneNumbers[0].value",
                json!("9")
            ),
            json!({"phoneNumbers": [{"value": "9", "type": "work"}, {"value": "2"}]}),
            "an index writes into that element only"
        );
        assert_eq!(
            written(json!({}), "phoneNumbers[0].value", json!("1")),
            json!({"phoneNumbers": [{"value": "1"}]}),
            "index 0 of a missing array creates it"
        );
        assert_eq!(
            written(json!({}), "phones/0", json!("1")),
            json!({"phones": ["1"]}),
            "a bare number over nothing creates an array"
        );
        assert_eq!(
            written(json!({"tags": ["a"]}), "tags[1]", json!("b")),
            json!({"tags": ["a", "b"]}),
            "the index one past the end appends"
        );
    }

    #[test]
    fn impossible_writes_are_refused_and_change_nothing() {
        let start = json!({"tags": ["a"], "contact": "text", "emails": [{"type": "work"}]});
        for (path, problem) in [
            ("tags[3]", "would leave a gap"),
            ("tags/3/x", "would leave a gap"),
            ("contact[type=work].value", "not an array"),
            ("contact[0]", "not an array"),
            ("emails/value", "is an array; use a selector"),
        ] {
            let mut doc = record(start.clone());
            let err = set(&mut doc, &p(path), json!("x")).expect_err("the write is impossible");
            assert!(
                err.to_string().contains(problem) && err.to_string().contains(path),
                "a refused write names the path and says '{problem}': {err}"
            );
            assert_eq!(
                Value::Object(doc),
                start,
                "a refused write leaves the record untouched"
            );
        }
    }

    #[test]
    fn unmatched_paths_are_explained() {
        let samples = vec![
            record(json!({"emails": [{"type": "home"}], "contact": "x", "tags": ["a"]})),
            record(json!({"emails": [{"type": "other"}, {"type": "home"}]})),
        ];
        let why = |path: &str| why_unmatched(&samples, &p(path));
        assert_eq!(
            why("emails[type=work].value").as_deref(),
            Some("no record has an element of `emails` with type = 'work' (seen: home, other)"),
            "a selector miss lists the values seen"
        );
        assert_eq!(
            why("emails/value").as_deref(),
            Some("`emails` is an array; use a selector such as emails[type=home] or emails[0]"),
            "a key into an array suggests a selector"
        );
        assert_eq!(
            why("contact/email").as_deref(),
            Some("`contact` is a text value, not an object")
        );
        assert_eq!(
            why("title").as_deref(),
            Some("no sample record has `title`")
        );
        assert_eq!(
            why("tags[4]").as_deref(),
            Some("no sample record has `tags[4]`: the longest `tags` has 1 element(s)")
        );
        assert_eq!(
            why("contact[0]").as_deref(),
            Some("`contact` is a text value, not an array")
        );
        assert_eq!(
            why("emails[type=home]"),
            None,
            "a path found in some sample is fine"
        );
        assert_eq!(
            why_unmatched(&[], &p("title")),
            None,
            "no samples: nothing to judge by"
        );
    }
}
