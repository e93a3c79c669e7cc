//! Reading and writing records through a mapping: a system's record -> canonical values
//! (inbound), and canonical values -> a payload in the system's shapes (outbound).
//!
//! Pure functions over [`Mapping`] rules and [`crate::transform::Transform`]s. Per-field
//! failures are returned, never thrown away: the runtime turns them into exceptions while the
//! other fields of the record keep syncing.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Fields, Mapping, MappingRule, NullPolicy, ObjectSchema};
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
}

/// Reads a `/`-separated path from a JSON object. `None` when absent.
pub fn get_path<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('/');
    let first = parts.next()?;
    let mut current = record.get(first)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

/// Writes a `/`-separated path into a JSON object, creating nested objects as needed.
pub fn set_path(record: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('/') {
        None => {
            record.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let child = record
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            if let Value::Object(map) = child {
                set_path(map, rest, value);
            }
        }
    }
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
                        inbound.values.extend(out);
                    }
                }
            }
        }
        inbound
    }

    /// Canonical values -> a payload in the system's shapes, for the rules that touch `fields`
    /// (all writable rules and constants when `full`, as for a create). Multi-field rules take
    /// their other inputs from `golden`.
    pub fn write(
        &self,
        fields: &BTreeSet<String>,
        golden: &Fields,
        full: bool,
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut payload = Map::new();
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
                        set_path(&mut payload, path, value.unwrap_or(Value::Null));
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
            Ok(payload)
        } else {
            Err(errors)
        }
    }
}
