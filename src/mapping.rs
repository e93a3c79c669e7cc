//! Reading and writing records through a mapping: a system's record -> canonical values
//! (inbound), and canonical values -> what to set in the system's record (outbound).
//!
//! Pure functions over [`Mapping`] rules, [`crate::transform::Transform`]s and
//! [`crate::path::SystemPath`]s. Per-field failures are returned, never thrown away: the runtime
//! turns them into exceptions while the other fields of the record keep syncing.
//!
//! A write is first a list of [`Assignment`]s (path, value) rather than a payload, because a
//! system that only takes whole records (PUT), or keeps values inside arrays, must receive the
//! record as last read with just those values changed; [`apply_assignments`] does that, and
//! [`plain_top_level`] tells when a body of only the changed keys is safe instead.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Fields, Mapping, MappingRule, NullPolicy, ObjectSchema};
use crate::path::{self, PathError, SystemPath};
use crate::transform::validate_canonical;

/// A field a mapping could not read or write, with the value and the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub fields: Vec<String>,
    pub paths: Vec<String>,
    pub value: Value,
    pub message: String,
}

/// The canonical values read from one system record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inbound {
    pub values: Fields,
    pub errors: Vec<FieldError>,
    /// Canonical field -> every code the value read could mean, in table order, for fields
    /// whose system value several codes share (a lossy enum table). `values` holds the first
    /// until [`Inbound::settle`] picks the one already known.
    pub alternatives: BTreeMap<String, Vec<Value>>,
}

impl Inbound {
    /// Resolves lossy reads against what is already known: a value this system's shadow holds
    /// means nothing changed in that system, and a value the golden record holds means the
    /// system already agrees. Only when neither is among the alternatives does the read keep
    /// the first listed code. Without this, writing `on_leave` as `true` would read back as
    /// `active` and flip the golden record.
    pub fn settle(&mut self, shadow: &Fields, golden: &Fields) {
        for (field, alternatives) in &self.alternatives {
            let Some(current) = self.values.get_mut(field) else {
                continue;
            };
            let known = [shadow.get(field), golden.get(field)]
                .into_iter()
                .flatten()
                .find(|known| alternatives.contains(known));
            if let Some(known) = known {
                *current = known.clone();
            }
        }
    }
}

/// One value a write sets: the system path as the mapping writes it, and the value in the
/// system's shape.
pub type Assignment = (String, Value);

/// A write's assignments and the payload they make from nothing.
pub type Rendered = (Vec<Assignment>, Map<String, Value>);

/// A mapping path that finds nothing in any sample record, and why.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PathProblem {
    /// Index of the rule in the mapping's `rules`.
    pub rule: usize,
    pub path: String,
    pub message: String,
}

/// Reads a system path (see [`crate::path`]) from a JSON object. `None` when absent, or when
/// the path does not parse (mapping paths are validated when the workspace loads).
pub fn get_path<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let path = SystemPath::parse(path).ok()?;
    path::get(record, &path)
}

/// Writes a system path into a JSON object in place, creating what is missing. A path that
/// does not parse, or a write the record's shape refuses, changes nothing; callers that must
/// know use [`apply_assignments`].
pub fn set_path(record: &mut Map<String, Value>, path: &str, value: Value) {
    if let Ok(path) = SystemPath::parse(path) {
        // Refusals are reported by `apply_assignments`; this entry point is for paths the
        // caller controls (connector settings), where the record's shape is the system's own.
        let _ = path::set(record, &path, value);
    }
}

/// Applies assignments in order onto `doc` (a record as last read, or an empty map), in
/// place, changing nothing they do not name. Every assignment that can be applied is; the
/// refused ones are returned, and then `doc` should not be sent.
pub fn apply_assignments(
    doc: &mut Map<String, Value>,
    assignments: &[Assignment],
) -> Result<(), Vec<PathError>> {
    let refused: Vec<PathError> = assignments
        .iter()
        .filter_map(|(text, value)| {
            SystemPath::parse(text)
                .and_then(|path| path::set(doc, &path, value.clone()))
                .err()
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused)
    }
}

/// Whether every assignment is a plain top-level key, so a partial body of just those keys
/// changes exactly what they name. False if any path does not parse.
pub fn plain_top_level(assignments: &[Assignment]) -> bool {
    assignments
        .iter()
        .all(|(text, _)| SystemPath::parse(text).is_ok_and(|path| path.is_plain_top_level()))
}

/// The top-level members of the record the assignments write into (paths that do not parse
/// touch nothing: [`apply_assignments`] refuses them).
pub fn touched_top_level(assignments: &[Assignment]) -> BTreeSet<String> {
    assignments
        .iter()
        .filter_map(|(text, _)| SystemPath::parse(text).ok())
        .map(|path| path.top_level().to_owned())
        .collect()
}

impl MappingRule {
    fn reads(&self) -> bool {
        !self.canonical.is_empty()
    }

    fn writable(&self) -> bool {
        self.transform.is_reversible()
    }
}

impl Mapping {
    /// Canonical fields this mapping reads from the system.
    pub fn reads(&self) -> BTreeSet<String> {
        self.rules
            .iter()
            .filter(|r| r.reads())
            .flat_map(|r| r.canonical.iter().cloned())
            .collect()
    }

    /// Canonical fields the engine can write to the system (read-only fields excluded).
    /// The canonical fields whose writes `self` makes differently from `before` (none when
    /// there was no mapping before, or only rules that do not write changed): a rule added or
    /// changed writes its fields anew.
    pub fn rewritten_since(&self, before: Option<&Mapping>) -> BTreeSet<String> {
        let Some(before) = before else {
            return BTreeSet::new();
        };
        self.rules
            .iter()
            .filter(|r| r.reads() && r.writable() && !before.rules.contains(r))
            .flat_map(|r| r.canonical.iter().cloned())
            .collect()
    }

    pub fn writes(&self) -> BTreeSet<String> {
        self.rules
            .iter()
            .filter(|r| r.reads() && r.writable())
            .flat_map(|r| r.canonical.iter().cloned())
            .collect()
    }

    /// System record -> canonical values. Rules whose paths are all absent are skipped (a
    /// partial event does not carry them); nulls follow the rule's null policy; values are
    /// validated against the canonical schema.
    pub fn read(&self, schema: &ObjectSchema, record: &Map<String, Value>) -> Inbound {
        let mut inbound = Inbound::default();
        for rule in self.rules.iter().filter(|r| r.reads()) {
            let raw: Vec<Option<&Value>> =
                rule.system.iter().map(|p| get_path(record, p)).collect();
            if raw.iter().all(Option::is_none) {
                continue;
            }
            let present: Vec<Option<&Value>> =
                raw.iter().map(|v| v.filter(|v| !v.is_null())).collect();
            let raw_value = || {
                if rule.system.len() == 1 {
                    raw[0].cloned().unwrap_or(Value::Null)
                } else {
                    Value::Array(
                        raw.iter()
                            .map(|v| v.cloned().unwrap_or(Value::Null))
                            .collect(),
                    )
                }
            };
            let error = |message: String| FieldError {
                fields: rule.canonical.clone(),
                paths: rule.system.clone(),
                value: raw_value(),
                message,
            };
            if present.iter().all(Option::is_none) {
                match &rule.null {
                    NullPolicy::LeaveUnchanged => {}
                    NullPolicy::Clear => {
                        for f in &rule.canonical {
                            inbound.values.insert(f.clone(), Value::Null);
                        }
                    }
                    NullPolicy::Default { value } => {
                        for f in &rule.canonical {
                            inbound.values.insert(f.clone(), value.clone());
                        }
                    }
                    NullPolicy::Reject => inbound.errors.push(error(format!(
                        "{} is empty, and {} may not be empty",
                        rule.system.join(", "),
                        rule.canonical.join(", ")
                    ))),
                }
                continue;
            }
            match rule.transform.to_canonical(&present) {
                Err(e) => inbound.errors.push(error(e.to_string())),
                Ok(values) => {
                    let mut ok = true;
                    let mut out = Vec::with_capacity(values.len());
                    for (field, value) in rule.canonical.iter().zip(values) {
                        let value = value.unwrap_or(Value::Null);
                        let value = match schema.field(field) {
                            Some(def) => crate::transform::arrange_canonical(def.field_type, value),
                            None => value,
                        };
                        if let (Some(def), Some(text)) = (schema.field(field), value.as_str())
                            && text.chars().count() > schema.max_length(def)
                        {
                            // The raw value is kept only in part: an exception must not
                            // store the megabytes it refuses.
                            inbound.errors.push(FieldError {
                                value: Value::String(format!("{}…", clip(text, 64))),
                                ..error(format!(
                                    "{field}: the value is {} characters long; at most {} are accepted",
                                    text.chars().count(),
                                    schema.max_length(def)
                                ))
                            });
                            ok = false;
                            break;
                        }
                        if let (Some(def), false) = (schema.field(field), value.is_null())
                            && let Err(e) = validate_canonical(def.field_type, &value)
                        {
                            inbound.errors.push(error(format!("{field}: {e}")));
                            ok = false;
                            break;
                        }
                        if let Some(def) = schema.field(field)
                            && def.field_type == crate::transform::FieldType::Enum
                            && !def.values.is_empty()
                            && let Some(code) = value.as_str()
                            && !def.values.iter().any(|v| v == code)
                        {
                            inbound.errors.push(error(format!(
                                "{field}: '{code}' is not one of {}",
                                def.values.join(", ")
                            )));
                            ok = false;
                            break;
                        }
                        out.push((field.clone(), value));
                    }
                    if ok {
                        if let (Some(alternatives), [field]) = (
                            rule.transform.alternatives(&present),
                            rule.canonical.as_slice(),
                        ) {
                            inbound.alternatives.insert(field.clone(), alternatives);
                        }
                        inbound.values.extend(out);
                    }
                }
            }
        }
        inbound
    }

    /// What writing `fields` sets in the system: one assignment per system path of each rule
    /// that touches `fields` (all writable rules and constants when `full`, as for a create).
    /// Multi-field rules take their other inputs from `golden`.
    pub fn assignments(
        &self,
        fields: &BTreeSet<String>,
        golden: &Fields,
        full: bool,
    ) -> Result<Vec<Assignment>, Vec<FieldError>> {
        let mut assignments = Vec::new();
        let mut errors = Vec::new();
        for rule in &self.rules {
            let touches = full || rule.canonical.iter().any(|f| fields.contains(f));
            if !touches || !rule.writable() || (rule.canonical.is_empty() && !full) {
                continue;
            }
            let inputs: Vec<Option<&Value>> = rule
                .canonical
                .iter()
                .map(|f| golden.get(f).filter(|v| !v.is_null()))
                .collect();
            if full && !rule.canonical.is_empty() && inputs.iter().all(Option::is_none) {
                continue;
            }
            match rule.transform.to_system(&inputs) {
                Ok(values) => {
                    for (path, value) in rule.system.iter().zip(values) {
                        assignments.push((path.clone(), value.unwrap_or(Value::Null)));
                    }
                }
                Err(e) => errors.push(FieldError {
                    fields: rule.canonical.clone(),
                    paths: rule.system.clone(),
                    value: Value::Array(
                        inputs
                            .iter()
                            .map(|v| v.cloned().unwrap_or(Value::Null))
                            .collect(),
                    ),
                    message: e.to_string(),
                }),
            }
        }
        if errors.is_empty() {
            Ok(assignments)
        } else {
            Err(errors)
        }
    }

    /// Canonical values -> a payload in the system's shapes: [`Mapping::assignments`] applied
    /// to an empty record. A path the payload's own shape refuses (an index past the end, two
    /// rules disagreeing about what a member is) is an error for the rule that writes it.
    pub fn write(
        &self,
        fields: &BTreeSet<String>,
        golden: &Fields,
        full: bool,
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        self.render(fields, golden, full)
            .map(|(_, payload)| payload)
    }

    /// A write both ways: its assignments (to apply onto a record as last read) and the
    /// payload they make from nothing (a create's body, a flat PATCH's body).
    pub fn render(
        &self,
        fields: &BTreeSet<String>,
        golden: &Fields,
        full: bool,
    ) -> Result<Rendered, Vec<FieldError>> {
        let assignments = self.assignments(fields, golden, full)?;
        let mut payload = Map::new();
        match apply_assignments(&mut payload, &assignments) {
            Ok(()) => Ok((assignments, payload)),
            Err(refused) => Err(refused
                .into_iter()
                .map(|e| self.refused_write(e, &assignments))
                .collect()),
        }
    }

    fn refused_write(&self, error: PathError, assignments: &[Assignment]) -> FieldError {
        let path = error.path().to_owned();
        let fields = self
            .rules
            .iter()
            .find(|r| r.system.contains(&path))
            .map(|r| r.canonical.clone())
            .unwrap_or_default();
        let value = assignments
            .iter()
            .find(|(p, _)| *p == path)
            .map_or(Value::Null, |(_, v)| v.clone());
        FieldError {
            fields,
            paths: vec![path],
            value,
            message: error.to_string(),
        }
    }

    /// The paths of reading rules that find nothing in any of `samples`, each with the reason
    /// (see [`crate::path::why_unmatched`]). With no samples there is nothing to judge by.
    pub fn unmatched_paths(&self, samples: &[Map<String, Value>]) -> Vec<PathProblem> {
        if samples.is_empty() {
            return Vec::new();
        }
        let mut problems = Vec::new();
        for (rule_index, rule) in self.rules.iter().enumerate().filter(|(_, r)| r.reads()) {
            for text in &rule.system {
                let message = match SystemPath::parse(text) {
                    Err(e) => Some(e.to_string()),
                    Ok(path) => path::why_unmatched(samples, &path),
                };
                if let Some(message) = message {
                    problems.push(PathProblem {
                        rule: rule_index,
                        path: text.clone(),
                        message,
                    });
                }
            }
        }
        problems
    }
}

/// The first `max` characters of `text`.
fn clip(text: &str, max: usize) -> &str {
    text.char_indices()
        .nth(max)
        .map_or(text, |(at, _)| &text[..at])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn doc(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(members) => members,
            other => panic!("a test document is an object, got {other}"),
        }
    }

    fn applied(start: Value, assignments: &[Assignment]) -> Value {
        let mut record = doc(start);
        apply_assignments(&mut record, assignments).expect("the test assignments apply");
        Value::Object(record)
    }

    fn set(path: &str, value: Value) -> Assignment {
        (path.to_owned(), value)
    }

    fn fields(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn golden(value: Value) -> Fields {
        serde_json::from_value(value).expect("test golden values deserialise")
    }

    fn schema() -> ObjectSchema {
        serde_json::from_value(json!({"name": "person", "fields": [
            {"name": "email", "type": "email"},
            {"name": "phone", "type": "string"},
            {"name": "number", "type": "string"},
            {"name": "title", "type": "string"},
            {"name": "status", "type": "enum", "values": ["active", "on_leave", "terminated"]},
        ]}))
        .expect("the test schema deserialises")
    }

    fn scim_mapping() -> Mapping {
        serde_json::from_value(json!({"system": "scim", "object": "person", "rules": [
            {"canonical": ["email"], "system": ["emails[type=work].value"]},
            {"canonical": ["phone"], "system": ["phoneNumbers[0].value"]},
            {"canonical": ["number"], "system": [format!("{ENTERPRISE}/employeeNumber")]},
            {"canonical": ["title"], "system": ["title"]},
            {"canonical": ["status"], "system": ["active"], "transform": {"kind": "enum", "table": [
                {"system": true, "canonical": "active"},
                {"system": true, "canonical": "on_leave"},
                {"system": false, "canonical": "terminated"},
            ]}},
            {"system": ["schemas"], "transform": {"kind": "constant", "value": ["core"]}},
        ]}))
        .expect("the test mapping deserialises")
    }

    #[test]
    fn nested_assignments_keep_sibling_members() {
        assert_eq!(
            applied(
                json!({"contact": {"email": "a", "mobile": "m"}}),
                &[set("contact/email", json!("b"))]
            ),
            json!({"contact": {"email": "b", "mobile": "m"}}),
            "applying a nested path keeps the other members of its object"
        );
    }

    #[test]
    fn selector_assignments_change_only_the_selected_element() {
        let last_read = json!({"emails": [
            {"type": "home", "value": "h"},
            {"type": "work", "value": "w", "primary": true},
        ], "userName": "jdoe"});
        assert_eq!(
            applied(last_read, &[set("emails[type=work].value", json!("new"))]),
            json!({"emails": [
                {"type": "home", "value": "h"},
                {"type": "work", "value": "new", "primary": true},
            ], "userName": "jdoe"}),
            "only the work element's value changes"
        );
        assert_eq!(
            applied(
                json!({"emails": [{"type": "home", "value": "h"}]}),
                &[set("emails[type=work].value", json!("w"))]
            ),
            json!({"emails": [{"type": "home", "value": "h"}, {"type": "work", "value": "w"}]}),
            "a missing work element is appended"
        );
    }

    #[test]
    fn index_and_extension_assignments_apply_in_place() {
        assert_eq!(
            applied(
                json!({"phoneNumbers": [{"value": "1", "type": "work"}, {"value": "2"}]}),
                &[set("phoneNumbers[0].value", json!("9"))]
            ),
            json!({"phoneNumbers": [{"value": "9", "type": "work"}, {"value": "2"}]}),
            "an indexed element changes alone"
        );
        let path = format!("{ENTERPRISE}/employeeNumber");
        assert_eq!(
            applied(
                json!({ENTERPRISE: {"employeeNumber": "1", "costCenter": "C"}}),
                &[set(&path, json!("2"))]
            ),
            json!({ENTERPRISE: {"employeeNumber": "2", "costCenter": "C"}}),
            "an extension key with dots and colons is one key"
        );
    }

    #[test]
    fn refused_assignments_are_reported_and_the_rest_applied() {
        let mut record = doc(json!({"tags": ["a"]}));
        let refused = apply_assignments(
            &mut record,
            &[
                set("tags[5]", json!("x")),
                set("emails[", json!("x")),
                set("title", json!("T")),
            ],
        )
        .expect_err("a gap and an unparseable path are refused");
        let paths: Vec<&str> = refused.iter().map(PathError::path).collect();
        assert_eq!(paths, ["tags[5]", "emails["], "every refusal is reported");
        assert_eq!(
            Value::Object(record),
            json!({"tags": ["a"], "title": "T"}),
            "the assignments that can be applied are"
        );
    }

    #[test]
    fn assignments_are_what_write_puts_in_an_empty_payload() {
        let m = scim_mapping();
        let g = golden(json!({
            "email": "j@example.com", "phone": "+1", "number": "701",
            "title": "Dev", "status": "on_leave",
        }));
        let only = m
            .assignments(&fields(&["email", "status"]), &g, false)
            .expect("the values are writable");
        assert_eq!(
            only,
            vec![
                set("emails[type=work].value", json!("j@example.com")),
                set("active", json!(true)),
            ],
            "a partial write assigns only the rules touching the changed fields, in rule order"
        );
        let full = m
            .assignments(&BTreeSet::new(), &g, true)
            .expect("the values are writable");
        assert_eq!(
            full.len(),
            6,
            "a full write assigns every writable rule and constant"
        );
        assert_eq!(
            Value::Object(m.write(&BTreeSet::new(), &g, true).expect("writable")),
            json!({
                "emails": [{"type": "work", "value": "j@example.com"}],
                "phoneNumbers": [{"value": "+1"}],
                ENTERPRISE: {"employeeNumber": "701"},
                "title": "Dev",
                "active": true,
                "schemas": ["core"],
            }),
            "write applies the assignments to an empty payload"
        );
        let missing = golden(json!({"title": "Dev"}));
        assert_eq!(
            m.assignments(&BTreeSet::new(), &missing, true)
                .expect("writable"),
            vec![set("title", json!("Dev")), set("schemas", json!(["core"]))],
            "a full write skips rules with no value, as write always has"
        );
    }

    #[test]
    fn assignment_errors_are_the_write_errors() {
        let m = scim_mapping();
        let g = golden(json!({"status": "retired", "title": "Dev"}));
        let errors = m
            .assignments(&fields(&["status", "title"]), &g, false)
            .expect_err("an unknown code cannot be written");
        assert_eq!(
            errors,
            m.write(&fields(&["status", "title"]), &g, false)
                .expect_err("write refuses it too"),
            "assignments and write fail alike"
        );
        assert_eq!(errors.len(), 1, "only the failing rule is reported");
        assert_eq!(errors[0].fields, ["status"]);
    }

    #[test]
    fn write_reports_a_path_its_payload_cannot_hold() {
        let m: Mapping =
            serde_json::from_value(json!({"system": "s", "object": "person", "rules": [
                {"canonical": ["phone"], "system": ["phoneNumbers[1].value"]},
            ]}))
            .expect("the test mapping deserialises");
        let errors = m
            .write(&fields(&["phone"]), &golden(json!({"phone": "+1"})), false)
            .expect_err("index 1 of an empty array leaves a gap");
        assert_eq!(errors.len(), 1, "one refused path, one error");
        assert_eq!(
            errors[0].fields,
            ["phone"],
            "the error names the rule's field"
        );
        assert_eq!(errors[0].paths, ["phoneNumbers[1].value"]);
        assert_eq!(
            errors[0].value,
            json!("+1"),
            "and the value it could not place"
        );
    }

    #[test]
    fn plain_top_level_means_every_assignment_is_one_key() {
        let plain = [set("title", json!("T")), set("active", json!(true))];
        assert!(
            plain_top_level(&plain),
            "top-level keys only: a partial body is safe"
        );
        let nested = [set("title", json!("T")), set("contact/email", json!("e"))];
        assert!(
            !plain_top_level(&nested),
            "a nested path needs the whole member"
        );
        assert!(
            !plain_top_level(&[set("emails[0]", json!("e"))]),
            "a selector needs the whole array"
        );
        assert!(
            !plain_top_level(&[set("a//b", json!(1))]),
            "an unparseable path is never plain"
        );
        assert!(plain_top_level(&[]), "nothing to write is trivially plain");
        assert_eq!(
            touched_top_level(&[
                set("title", json!("T")),
                set("emails[type=work].value", json!("e")),
                set("emails[type=home].value", json!("h")),
                set(&format!("{ENTERPRISE}/employeeNumber"), json!("1")),
            ]),
            fields(&["title", "emails", ENTERPRISE]),
            "the members written into, once each"
        );
    }

    #[test]
    fn get_and_set_path_keep_their_signatures_and_ignore_bad_paths() {
        let mut record = doc(json!({"address": {"city": "Paris"}}));
        assert_eq!(get_path(&record, "address/city"), Some(&json!("Paris")));
        assert_eq!(
            get_path(&record, "address["),
            None,
            "a bad path reads nothing"
        );
        set_path(&mut record, "address[", json!("x"));
        set_path(&mut record, "address/zip", json!("75001"));
        assert_eq!(
            Value::Object(record),
            json!({"address": {"city": "Paris", "zip": "75001"}}),
            "a bad path writes nothing; a good one writes in place"
        );
    }

    #[test]
    fn lossy_reads_carry_their_alternatives() {
        let read = scim_mapping().read(&schema(), &doc(json!({"active": true})));
        assert_eq!(
            read.values.get("status"),
            Some(&json!("active")),
            "the first code"
        );
        assert_eq!(
            read.alternatives.get("status"),
            Some(&vec![json!("active"), json!("on_leave")]),
            "read reports what else the value could mean"
        );
        let read = scim_mapping().read(&schema(), &doc(json!({"active": false})));
        assert!(
            read.alternatives.is_empty(),
            "an unshared value has no alternatives"
        );
    }

    #[test]
    fn settle_prefers_the_shadow_then_the_golden_value() {
        let read = scim_mapping().read(&schema(), &doc(json!({"active": true, "title": "T"})));
        let on_leave = golden(json!({"status": "on_leave"}));
        let active = golden(json!({"status": "active"}));
        let terminated = golden(json!({"status": "terminated"}));

        let mut settled = read.clone();
        settled.settle(&on_leave, &active);
        assert_eq!(
            settled.values.get("status"),
            Some(&json!("on_leave")),
            "the system's shadow value among the alternatives means nothing changed there"
        );
        let mut settled = read.clone();
        settled.settle(&terminated, &on_leave);
        assert_eq!(
            settled.values.get("status"),
            Some(&json!("on_leave")),
            "otherwise the golden value among the alternatives means the system agrees"
        );
        let mut settled = read.clone();
        settled.settle(&terminated, &terminated);
        assert_eq!(
            settled.values.get("status"),
            Some(&json!("active")),
            "otherwise the read keeps the first code"
        );
        assert_eq!(
            settled.values.get("title"),
            Some(&json!("T")),
            "fields without alternatives are untouched"
        );
    }

    #[test]
    fn unmatched_paths_name_the_rule_and_the_reason() {
        let m = scim_mapping();
        let samples = vec![
            doc(json!({
                "emails": [{"type": "home", "value": "h"}],
                "phoneNumbers": [{"value": "1"}],
                "title": "Dev",
                "active": true,
            })),
            doc(json!({"emails": [{"type": "other", "value": "o"}], "active": false})),
        ];
        assert_eq!(
            m.unmatched_paths(&samples),
            vec![
                PathProblem {
                    rule: 0,
                    path: "emails[type=work].value".to_owned(),
                    message: "no record has an element of `emails` with type = 'work' \
                              (seen: home, other)"
                        .to_owned(),
                },
                PathProblem {
                    rule: 2,
                    path: format!("{ENTERPRISE}/employeeNumber"),
                    message: format!("no sample record has `{ENTERPRISE}`"),
                },
            ],
            "reading rules whose paths match no sample are reported; constants are not read"
        );
        assert!(
            m.unmatched_paths(&[]).is_empty(),
            "with no samples nothing is reported"
        );
        let bad: Mapping = serde_json::from_value(json!({"system": "s", "object": "person",
            "rules": [{"canonical": ["title"], "system": ["title["]}]}))
        .expect("the test mapping deserialises");
        let problems = bad.unmatched_paths(&samples);
        assert!(
            problems.len() == 1 && problems[0].message.contains("not closed"),
            "an unparseable path is reported with its parse error: {problems:?}"
        );
    }

    #[test]
    fn a_value_longer_than_its_field_accepts_is_refused_and_only_a_clip_is_kept() {
        let huge = "x".repeat(1_900_000);
        let read = scim_mapping().read(&schema(), &doc(json!({"title": huge, "active": true})));
        assert!(
            !read.values.contains_key("title"),
            "a 1.9 MB title is never taken as a value"
        );
        let error = read
            .errors
            .iter()
            .find(|e| e.fields == ["title"])
            .expect("the oversize title is a validation error");
        assert!(
            error.message.contains("at most 4096"),
            "the message names the limit: {}",
            error.message
        );
        assert!(
            error
                .value
                .as_str()
                .is_some_and(|v| v.chars().count() <= 65),
            "the exception keeps a clip of the refused value, not megabytes"
        );
        assert_eq!(
            read.values.get("status"),
            Some(&json!("active")),
            "the record's other fields still read"
        );

        let mut narrow = schema();
        narrow
            .max_lengths
            .insert(crate::transform::FieldType::String, 3);
        let read = scim_mapping().read(&narrow, &doc(json!({"title": "Dev"})));
        assert_eq!(
            read.values.get("title"),
            Some(&json!("Dev")),
            "at the limit is accepted"
        );
        let read = scim_mapping().read(&narrow, &doc(json!({"title": "Devs"})));
        assert!(
            read.errors.iter().any(|e| e.fields == ["title"]),
            "the object's limit per type applies"
        );
    }
}
