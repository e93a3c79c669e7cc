//! Deciding SCIM writes, with no I/O: a change given as (system path, value) assignments
//! becomes a PatchOp (RFC 7644 §3.5.2) that touches only what the assignments name, or, for a
//! server without PATCH, the resource as last read with the changes applied; a group's members
//! become single-member adds and removes; and what real servers send as booleans (`"True"`)
//! is read as booleans.
//!
//! Paths translate from Concord's path language: `name/givenName` is `name.givenName`,
//! `emails[type=work].value` is `emails[type eq "work"].value`, and
//! `urn:…:enterprise:2.0:User/department` is `urn:…:enterprise:2.0:User:department`. A path
//! SCIM cannot express (an array index) replaces its whole top-level attribute as last read
//! with the change applied.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::path::{self, PathStep, SystemPath};

/// A filter literal: quoted text with `"` and `\` escaped, or a bare true/false.
pub fn filter_literal(value: &str) -> String {
    match value {
        "true" | "false" => value.to_owned(),
        _ => format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\"")),
    }
}

/// How an assignment's path reads in SCIM.
#[derive(Debug, Clone, PartialEq)]
struct Translated {
    /// The SCIM attribute path.
    scim: String,
    /// For a value-filtered path: the multi-valued attribute, the selector and what follows it.
    select: Option<Selected>,
}

#[derive(Debug, Clone, PartialEq)]
struct Selected {
    /// SCIM path of the multi-valued attribute (`emails`).
    attribute: String,
    /// Concord path of the selected element (`emails[type=work]`).
    element_path: String,
    key: String,
    value: String,
    /// Concord path inside the element (`value`), or None for the element itself.
    inner: Option<String>,
}

/// A Concord path in SCIM's attribute-path syntax, or None when SCIM cannot express it.
fn translate(path: &SystemPath) -> Option<Translated> {
    let steps: Vec<PathStep<'_>> = path.steps().collect();
    let mut i = 0;
    let mut scim = String::new();
    let mut attribute_path = String::new();
    // An extension's URN is the first key; its attribute joins it with ':'.
    if let Some(PathStep::Key(urn)) = steps.first()
        && urn.starts_with("urn:")
    {
        let Some(PathStep::Key(attr)) = steps.get(1) else {
            return None;
        };
        scim = format!("{urn}:{attr}");
        attribute_path = format!("{urn}/{attr}");
        i = 2;
    }
    let mut select = None;
    while let Some(step) = steps.get(i) {
        match step {
            PathStep::Key(k) => {
                if !scim.is_empty() {
                    scim.push('.');
                    attribute_path.push('/');
                }
                scim.push_str(k);
                attribute_path.push_str(k);
            }
            PathStep::Select { key, value } if select.is_none() && !scim.is_empty() => {
                let inner: Vec<String> = steps[i + 1..]
                    .iter()
                    .map(|s| match s {
                        PathStep::Key(k) => Some((*k).to_owned()),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                let attribute = scim.clone();
                scim = format!("{attribute}[{key} eq {}]", filter_literal(value));
                if !inner.is_empty() {
                    scim.push('.');
                    scim.push_str(&inner.join("."));
                }
                select = Some(Selected {
                    attribute,
                    element_path: format!("{attribute_path}[{key}={value}]"),
                    key: (*key).to_owned(),
                    value: (*value).to_owned(),
                    inner: (!inner.is_empty()).then(|| inner.join("/")),
                });
                return Some(Translated { scim, select });
            }
            _ => return None,
        }
        i += 1;
    }
    Some(Translated { scim, select })
}

/// A Concord system path as a SCIM attribute path (for filters), or None when SCIM cannot
/// express it.
pub fn scim_path(text: &str) -> Option<String> {
    translate(&SystemPath::parse(text).ok()?).map(|t| t.scim)
}

fn op(name: &str, path: &str, value: Option<Value>) -> Value {
    let mut o = Map::new();
    o.insert("op".into(), Value::from(name));
    o.insert("path".into(), Value::from(path));
    if let Some(v) = value {
        o.insert("value".into(), v);
    }
    Value::Object(o)
}

fn get_text(record: &Map<String, Value>, text: &str) -> Option<Value> {
    SystemPath::parse(text)
        .ok()
        .and_then(|p| path::get(record, &p).cloned())
}

/// The PatchOp operations that apply `assignments` to `current` (the resource as last read),
/// touching nothing they do not name. `current` decides between replacing a selected element's
/// value and adding the element (servers answer `noTarget` to a filtered replace that matches
/// nothing), and whether a removal has anything to remove.
pub fn operations(
    current: &Map<String, Value>,
    assignments: &[(String, Value)],
) -> Result<Vec<Value>, String> {
    let mut ops = Vec::new();
    // Top-level attributes rewritten whole (paths SCIM cannot express), composed in order.
    let mut composed: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (text, value) in assignments {
        let parsed = SystemPath::parse(text).map_err(|e| e.to_string())?;
        let Some(t) = translate(&parsed) else {
            let top = parsed.top_level().to_owned();
            let doc = composed.entry(top).or_insert_with(|| current.clone());
            path::set(doc, &parsed, value.clone()).map_err(|e| e.to_string())?;
            continue;
        };
        match (&t.select, value.is_null()) {
            (None, true) => {
                if path::get(current, &parsed).is_some_and(|v| !v.is_null()) {
                    ops.push(op("remove", &t.scim, None));
                }
            }
            (None, false) => ops.push(op("replace", &t.scim, Some(value.clone()))),
            (Some(s), is_null) => {
                let exists = get_text(current, &s.element_path).is_some();
                match (exists, is_null) {
                    (false, true) => {}
                    // Emptying an element's value removes the element: an e-mail without an
                    // address is no e-mail.
                    (true, true) if s.inner.as_deref().is_none_or(|i| i == "value") => {
                        let element = t
                            .scim
                            .rsplit_once("].")
                            .map_or(t.scim.clone(), |(a, _)| format!("{a}]"));
                        ops.push(op("remove", &element, None));
                    }
                    (true, true) => ops.push(op("remove", &t.scim, None)),
                    (true, false) => ops.push(op("replace", &t.scim, Some(value.clone()))),
                    (false, false) => {
                        let mut element = Map::new();
                        element.insert(s.key.clone(), selector_value(&s.value));
                        let mut holder = Map::new();
                        holder.insert("e".into(), Value::Object(element));
                        if let Some(inner) = &s.inner {
                            let inner_path = SystemPath::parse(&format!("e/{inner}"))
                                .map_err(|e| e.to_string())?;
                            path::set(&mut holder, &inner_path, value.clone())
                                .map_err(|e| e.to_string())?;
                        } else if let Value::Object(fields) = value
                            && let Some(Value::Object(e)) = holder.get_mut("e")
                        {
                            e.extend(fields.clone());
                        }
                        let element = holder.remove("e").unwrap_or(Value::Null);
                        ops.push(op("add", &s.attribute, Some(Value::Array(vec![element]))));
                    }
                }
            }
        }
    }
    for (top, doc) in composed {
        let whole = doc.get(&top).cloned().unwrap_or(Value::Null);
        ops.push(if whole.is_null() {
            op("remove", &top, None)
        } else {
            op("replace", &top, Some(whole))
        });
    }
    Ok(ops)
}

fn selector_value(text: &str) -> Value {
    match text {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(text.to_owned()),
    }
}

/// A PatchOp request body.
pub fn patch_body(operations: Vec<Value>) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("schemas".into(), json!([super::config::PATCH_SCHEMA]));
    body.insert("Operations".into(), Value::Array(operations));
    body
}

/// The resource as last read with the assignments applied, for a PUT: server-owned `meta` is
/// dropped; everything the assignments do not name is sent back as it was.
pub fn replaced(
    current: &Map<String, Value>,
    assignments: &[(String, Value)],
) -> Result<Map<String, Value>, String> {
    let mut doc = current.clone();
    doc.remove("meta");
    for (text, value) in assignments {
        let parsed = SystemPath::parse(text).map_err(|e| e.to_string())?;
        path::set(&mut doc, &parsed, value.clone()).map_err(|e| e.to_string())?;
    }
    Ok(doc)
}

/// The member changes that make a group's members those named by `wanted`: each member
/// present whose key is not wanted is removed, each wanted key not present is added (with
/// its resource id from `ids_of_keys`). Members without a known key (resources the engine does
/// not sync) are never touched.
pub fn member_operations(
    present: &BTreeMap<String, String>,
    wanted: &BTreeSet<String>,
    ids_of_keys: &BTreeMap<String, String>,
) -> Result<Vec<Value>, String> {
    let mut ops = Vec::new();
    let present_keys: BTreeSet<&String> = present.values().collect();
    let mut adds = Vec::new();
    for key in wanted {
        if present_keys.contains(key) {
            continue;
        }
        let id = ids_of_keys
            .get(key)
            .ok_or_else(|| format!("member '{key}' is not in the directory yet"))?;
        adds.push(json!({ "value": id }));
    }
    for (id, key) in present {
        if !wanted.contains(key) {
            ops.push(op(
                "remove",
                &format!("members[value eq {}]", filter_literal(id)),
                None,
            ));
        }
    }
    if !adds.is_empty() {
        ops.push(op("add", "members", Some(Value::Array(adds))));
    }
    Ok(ops)
}

/// The ids of a group's members (`members[].value`).
pub fn member_ids(group: &Map<String, Value>) -> Vec<String> {
    group
        .get("members")
        .and_then(Value::as_array)
        .map(|members| {
            members
                .iter()
                .filter_map(|m| m.get("value").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Reads what provisioning clients and servers send as booleans (`"True"`, `"false"`) as JSON
/// booleans: `active` and every multi-valued element's `primary`, plus `extra` attributes the
/// server's schema declares boolean.
pub fn normalize_booleans(record: &mut Map<String, Value>, extra: &BTreeSet<String>) {
    fn fix(value: &mut Value) {
        if let Value::String(s) = value {
            match s.trim().to_ascii_lowercase().as_str() {
                "true" => *value = Value::Bool(true),
                "false" => *value = Value::Bool(false),
                _ => {}
            }
        }
    }
    for (key, value) in record.iter_mut() {
        if key == "active" || extra.contains(key) {
            fix(value);
        }
        if let Value::Array(items) = value {
            for item in items {
                if let Some(primary) = item.as_object_mut().and_then(|m| m.get_mut("primary")) {
                    fix(primary);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn ada() -> Map<String, Value> {
        record(json!({
            "id": "u1", "userName": "ada", "name": {"givenName": "Ada", "familyName": "L"},
            "emails": [{"type": "work", "value": "ada@acme.test", "primary": true},
                       {"type": "home", "value": "ada@home.test"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Eng"}
        }))
    }

    fn assign(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(p, v)| ((*p).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn paths_become_scim_attribute_paths() {
        let ops = operations(
            &ada(),
            &assign(&[
                ("name/givenName", json!("Adah")),
                ("emails[type=work].value", json!("adah@acme.test")),
                (
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/department",
                    json!("Ops"),
                ),
                ("emails[primary=true].value", json!("p@acme.test")),
            ]),
        )
        .expect("every path translates");
        assert_eq!(
            ops,
            vec![
                json!({"op": "replace", "path": "name.givenName", "value": "Adah"}),
                json!({"op": "replace", "path": "emails[type eq \"work\"].value", "value": "adah@acme.test"}),
                json!({"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Ops"}),
                json!({"op": "replace", "path": "emails[primary eq true].value", "value": "p@acme.test"}),
            ],
            "each assignment is one operation at its own path, so sibling values are untouched"
        );
    }

    #[test]
    fn a_missing_element_is_added_and_an_emptied_one_removed() {
        let ops = operations(
            &ada(),
            &assign(&[
                ("phoneNumbers[type=work].value", json!("+14155550100")),
                ("emails[type=home].value", Value::Null),
                ("title", Value::Null),
            ]),
        )
        .expect("paths translate");
        assert_eq!(
            ops,
            vec![
                json!({"op": "add", "path": "phoneNumbers", "value": [{"type": "work", "value": "+14155550100"}]}),
                json!({"op": "remove", "path": "emails[type eq \"home\"]"}),
            ],
            "a filtered replace that matches nothing is sent as an add of the element (servers \
             answer noTarget otherwise); emptying an element removes it; removing an absent \
             attribute sends nothing"
        );
    }

    #[test]
    fn an_index_path_replaces_its_attribute_as_last_read() {
        let ops = operations(
            &ada(),
            &assign(&[("emails[1]/value", json!("new@home.test"))]),
        )
        .expect("an index composes");
        assert_eq!(
            ops,
            vec![json!({"op": "replace", "path": "emails", "value": [
                {"type": "work", "value": "ada@acme.test", "primary": true},
                {"type": "home", "value": "new@home.test"}]})],
            "the whole array as read, with only the change, so other elements survive"
        );
    }

    #[test]
    fn filter_literals_are_escaped() {
        assert_eq!(filter_literal("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(filter_literal("true"), "true");
    }

    #[test]
    fn members_change_one_by_one() {
        let present: BTreeMap<String, String> = [
            ("id1".to_owned(), "E1".to_owned()),
            ("id2".to_owned(), "E2".to_owned()),
        ]
        .into();
        let wanted: BTreeSet<String> = ["E2".to_owned(), "E3".to_owned()].into();
        let ids: BTreeMap<String, String> = [("E3".to_owned(), "id3".to_owned())].into();
        let ops = member_operations(&present, &wanted, &ids).expect("all keys resolve");
        assert_eq!(
            ops,
            vec![
                json!({"op": "remove", "path": "members[value eq \"id1\"]"}),
                json!({"op": "add", "path": "members", "value": [{"value": "id3"}]}),
            ],
            "membership is merged per member: never a replace of the whole list"
        );
        let missing = member_operations(&present, &["E9".to_owned()].into(), &ids);
        assert!(
            missing.is_err(),
            "a member not in the directory yet is an error, not a drop"
        );
    }

    #[test]
    fn a_put_keeps_what_the_change_does_not_name() {
        let doc = replaced(
            &record(json!({"id": "u1", "meta": {"version": "W/\"1\""}, "userName": "ada", "nickName": "A"})),
            &assign(&[("title", json!("CTO"))]),
        )
        .expect("composes");
        assert_eq!(
            Value::Object(doc),
            json!({"id": "u1", "userName": "ada", "nickName": "A", "title": "CTO"}),
            "unmapped attributes survive a PUT; meta is the server's"
        );
    }

    #[test]
    fn string_booleans_are_read_as_booleans() {
        let mut r = record(
            json!({"active": "True", "emails": [{"value": "x", "primary": "false"}], "title": "true"}),
        );
        normalize_booleans(&mut r, &BTreeSet::new());
        assert_eq!(
            Value::Object(r),
            json!({"active": true, "emails": [{"value": "x", "primary": false}], "title": "true"}),
            "active and primary are booleans whatever the sender wrote; text stays text"
        );
    }
}
