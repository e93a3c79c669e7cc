//! SCIM PATCH (RFC 7644 §3.5.2): a `PatchOp` message's operations applied, in order and all or
//! nothing, to a resource as the directory keeps it.
//!
//! - `op` is `add`, `replace` or `remove` in any case (Entra ID sends `Replace`, `Add`);
//! - `path` is an attribute (`title`), a sub-attribute (`name.givenName`), an extension
//!   attribute after its schema URN (`urn:…:enterprise:2.0:User:department`), an extension as a
//!   whole (`urn:…:enterprise:2.0:User`), or a value filter on a multi-valued attribute, with or
//!   without a sub-attribute (`emails[type eq "work"].value`, `members[value eq "…"]`);
//! - without a path, `value` is an object whose keys are such paths, each applied in turn;
//! - `add` appends to a multi-valued attribute (a value already there is updated, not
//!   repeated), merges into a complex one, and sets anything else;
//! - `replace` sets; through a filter that matches nothing, made only of `eq` comparisons
//!   (`emails[type eq "work"].value`), it adds an element carrying those values, as most
//!   servers do; any other filter matching nothing is `noTarget`;
//! - `remove` clears the target; through a filter, only the matching elements go (none
//!   matching is not an error: the value is already gone); `remove` of a multi-valued
//!   attribute with a `value` list removes those elements (Entra ID removes members so);
//! - setting `primary: true` on one element clears it on the others.

use serde_json::{Map, Value};

use super::ScimError;
use super::filter::{self, Filter, Scope};
use super::schema::{self, Attr, Mutability, PATCH_OP, Resource, Type};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

enum Target {
    /// An extension as a whole: its attributes are each the target of the operation.
    Extension(&'static str),
    Attr {
        extension: Option<&'static str>,
        attr: &'static Attr,
        filter: Option<Filter>,
        sub: Option<&'static Attr>,
    },
}

fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request("invalidSyntax", detail.into())
}

fn invalid_path(detail: impl Into<String>) -> ScimError {
    ScimError::bad_request("invalidPath", detail.into())
}

/// The value of `key` in `map`, whatever the key's case.
fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// Applies a PatchOp request to `body` (left untouched when any operation fails).
pub(crate) fn apply(
    resource: Resource,
    body: &mut Map<String, Value>,
    request: &Map<String, Value>,
) -> Result<(), ScimError> {
    let is_patch_op = get_ci(request, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP)))
        });
    if !is_patch_op {
        return Err(syntax(format!(
            "a PATCH body is a PatchOp message: {{\"schemas\": [\"{PATCH_OP}\"], \"Operations\": [...]}}"
        )));
    }
    let operations = get_ci(request, "Operations")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| syntax("Operations must be a non-empty list of operations"))?;
    let mut next = body.clone();
    for (i, operation) in operations.iter().enumerate() {
        let operation = operation
            .as_object()
            .ok_or_else(|| syntax(format!("operation {i} is not an object")))?;
        let op = match get_ci(operation, "op").and_then(Value::as_str) {
            Some(o) if o.eq_ignore_ascii_case("add") => Op::Add,
            Some(o) if o.eq_ignore_ascii_case("replace") => Op::Replace,
            Some(o) if o.eq_ignore_ascii_case("remove") => Op::Remove,
            other => {
                return Err(syntax(format!(
                    "operation {i}: op must be add, replace or remove, not {}",
                    other.unwrap_or("missing")
                )));
            }
        };
        let value = get_ci(operation, "value").cloned();
        match get_ci(operation, "path") {
            None | Some(Value::Null) => apply_without_path(resource, &mut next, op, value)?,
            Some(Value::String(path)) => {
                let target = parse_path(resource, path)?;
                apply_one(&mut next, op, &target, value, path)?;
            }
            Some(other) => return Err(invalid_path(format!("path must be a string, not {other}"))),
        }
    }
    prune(&mut next);
    *body = next;
    Ok(())
}

/// `add`/`replace` without a path: each key of the value object is a path.
fn apply_without_path(
    resource: Resource,
    body: &mut Map<String, Value>,
    op: Op,
    value: Option<Value>,
) -> Result<(), ScimError> {
    if op == Op::Remove {
        return Err(ScimError::bad_request(
            "noTarget",
            "remove needs a path".into(),
        ));
    }
    let Some(Value::Object(value)) = value else {
        return Err(syntax(
            "add and replace without a path take an object of attributes as their value",
        ));
    };
    for (key, v) in value {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        let target = parse_path(resource, &key)?;
        // Read-only attributes in a resource-shaped value are ignored, as in a POST or PUT.
        if let Target::Attr { attr, sub, .. } = &target
            && (attr.mutability == Mutability::ReadOnly
                || sub.is_some_and(|s| s.mutability == Mutability::ReadOnly))
        {
            continue;
        }
        apply_one(body, op, &target, Some(v), &key)?;
    }
    Ok(())
}

fn parse_path(resource: Resource, path: &str) -> Result<Target, ScimError> {
    if let Some(urn) = resource.extension(path) {
        return Ok(Target::Extension(urn));
    }
    let Some(open) = path.find('[') else {
        let p = schema::resolve(resource, path).map_err(invalid_path)?;
        return Ok(Target::Attr {
            extension: p.extension,
            attr: p.attr,
            filter: None,
            sub: p.sub,
        });
    };
    let close = path
        .rfind(']')
        .filter(|c| *c > open)
        .ok_or_else(|| invalid_path(format!("{path}: [ is not closed")))?;
    let (before, inner, after) = (&path[..open], &path[open + 1..close], &path[close + 1..]);
    let scope = Scope::Resource(resource, &Map::new());
    let attr = filter::element_attr(scope, before).map_err(invalid_path)?;
    let p = schema::resolve(resource, before).map_err(invalid_path)?;
    let f = filter::parse(inner).map_err(|e| invalid_path(format!("{path}: {e}")))?;
    filter::check(&f, Scope::Element(attr, &Map::new()))
        .map_err(|e| invalid_path(format!("{path}: {e}")))?;
    let sub = match after {
        "" => None,
        s => {
            let name = s
                .strip_prefix('.')
                .ok_or_else(|| invalid_path(format!("{path}: expected .subAttribute after ]")))?;
            Some(
                attr.sub_attr(name)
                    .ok_or_else(|| invalid_path(format!("{path}: {} has no {name}", attr.name)))?,
            )
        }
    };
    Ok(Target::Attr {
        extension: p.extension,
        attr,
        filter: Some(f),
        sub,
    })
}

/// The object an attribute lives in: the resource, or its extension's (made if missing).
fn container<'a>(
    body: &'a mut Map<String, Value>,
    extension: Option<&str>,
) -> Option<&'a mut Map<String, Value>> {
    let Some(urn) = extension else {
        return Some(body);
    };
    let slot = body
        .entry(urn.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

fn apply_one(
    body: &mut Map<String, Value>,
    op: Op,
    target: &Target,
    value: Option<Value>,
    path: &str,
) -> Result<(), ScimError> {
    let (extension, attr, filter, sub) = match target {
        Target::Extension(urn) => {
            if op == Op::Remove {
                body.remove(*urn);
                return Ok(());
            }
            let Some(Value::Object(m)) = value else {
                return Err(ScimError::bad_request(
                    "invalidValue",
                    format!("{urn} takes an object of its attributes"),
                ));
            };
            for (k, v) in m {
                let attr = Resource::extension_attr(urn, &k)
                    .ok_or_else(|| invalid_path(format!("{urn} has no attribute {k}")))?;
                let t = Target::Attr {
                    extension: Some(urn),
                    attr,
                    filter: None,
                    sub: None,
                };
                apply_one(body, op, &t, Some(v), &format!("{urn}:{k}"))?;
            }
            return Ok(());
        }
        Target::Attr {
            extension,
            attr,
            filter,
            sub,
        } => (*extension, *attr, filter.as_ref(), *sub),
    };
    // Read-only attributes, and a member's id, reference or kind once given, are not changed.
    if attr.mutability == Mutability::ReadOnly
        || sub.is_some_and(|s| s.mutability != Mutability::ReadWrite)
    {
        return Err(ScimError::bad_request(
            "mutability",
            format!("{path} cannot be changed"),
        ));
    }
    let Some(map) = container(body, extension) else {
        return Ok(());
    };
    match (op, filter) {
        (Op::Remove, None) => remove(map, attr, sub, value, path),
        (Op::Remove, Some(f)) => {
            if let Some(Value::Array(items)) = map.get_mut(attr.name) {
                let hit = |v: &Value| {
                    v.as_object()
                        .is_some_and(|e| filter::matches(f, Scope::Element(attr, e)))
                };
                match sub {
                    None => items.retain(|v| !hit(v)),
                    Some(s) => items
                        .iter_mut()
                        .filter(|v| hit(v))
                        .filter_map(Value::as_object_mut)
                        .for_each(|e| {
                            e.remove(s.name);
                        }),
                }
            }
            Ok(())
        }
        (_, None) => set(map, op, attr, sub, value, path),
        (_, Some(f)) => set_filtered(map, attr, f, sub, value, path),
    }
}

/// The values of a multi-valued attribute, as a list to change (made if missing).
fn list<'a>(map: &'a mut Map<String, Value>, attr: &Attr) -> Option<&'a mut Vec<Value>> {
    let slot = map
        .entry(attr.name.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
}

/// Two elements of a multi-valued attribute hold the same value.
fn same(attr: &Attr, a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(Value::String(x)), Some(Value::String(y))) => {
            let exact = attr.sub_attr("value").is_some_and(|v| v.case_exact);
            if exact {
                x == y
            } else {
                x.eq_ignore_ascii_case(y)
            }
        }
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// The element at `winner` keeps `primary: true`; the others lose it.
fn claim_primary(items: &mut [Value], winner: usize) {
    if items[winner].get("primary") != Some(&Value::Bool(true)) {
        return;
    }
    for (i, item) in items.iter_mut().enumerate() {
        if i != winner
            && let Some(e) = item.as_object_mut()
            && e.get("primary") == Some(&Value::Bool(true))
        {
            e.insert("primary".into(), Value::Bool(false));
        }
    }
}

fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        into.insert(k, v);
    }
}

fn set(
    map: &mut Map<String, Value>,
    op: Op,
    attr: &'static Attr,
    sub: Option<&'static Attr>,
    value: Option<Value>,
    path: &str,
) -> Result<(), ScimError> {
    let value = value.unwrap_or(Value::Null);
    if let Some(s) = sub {
        let v = schema::coerce(s, value, path)?;
        if attr.multi {
            let Some(Value::Array(items)) = map.get_mut(attr.name) else {
                return Err(ScimError::bad_request(
                    "noTarget",
                    format!("{path}: {} has no values", attr.name),
                ));
            };
            for e in items.iter_mut().filter_map(Value::as_object_mut) {
                set_sub(e, s, v.clone());
            }
            return Ok(());
        }
        let slot = map
            .entry(attr.name.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(e) = slot {
            set_sub(e, s, v);
        }
        return Ok(());
    }
    let Some(v) = schema::coerce(attr, value, path)? else {
        map.remove(attr.name);
        return Ok(());
    };
    match (attr.multi, attr.kind, v) {
        (true, _, Value::Array(new)) if op == Op::Add => {
            let Some(items) = list(map, attr) else {
                return Ok(());
            };
            for n in new {
                let at = match items.iter().position(|e| same(attr, e, &n)) {
                    Some(i) => {
                        // The value already there is updated; it keeps its spelling.
                        if let (Some(e), Value::Object(mut n)) = (items[i].as_object_mut(), n) {
                            n.remove("value");
                            merge(e, n);
                        }
                        i
                    }
                    None => {
                        items.push(n);
                        items.len() - 1
                    }
                };
                claim_primary(items, at);
            }
        }
        (false, Type::Complex, Value::Object(new)) => match map.get_mut(attr.name) {
            Some(Value::Object(e)) => merge(e, new),
            _ => {
                map.insert(attr.name.to_owned(), Value::Object(new));
            }
        },
        (_, _, v) => {
            map.insert(attr.name.to_owned(), v);
        }
    }
    Ok(())
}

fn set_sub(element: &mut Map<String, Value>, sub: &Attr, value: Option<Value>) {
    match value {
        Some(v) => element.insert(sub.name.to_owned(), v),
        None => element.remove(sub.name),
    };
}

/// `add`/`replace` through a value filter.
fn set_filtered(
    map: &mut Map<String, Value>,
    attr: &'static Attr,
    f: &Filter,
    sub: Option<&'static Attr>,
    value: Option<Value>,
    path: &str,
) -> Result<(), ScimError> {
    let value = value.unwrap_or(Value::Null);
    let update: Option<Value> = match sub {
        Some(s) => schema::coerce(s, value, path)?,
        None => schema::coerce_one(attr, value, path)?,
    };
    let Some(items) = list(map, attr) else {
        return Ok(());
    };
    let hits: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            v.as_object()
                .is_some_and(|e| filter::matches(f, Scope::Element(attr, e)))
        })
        .map(|(i, _)| i)
        .collect();
    let write = |e: &mut Map<String, Value>| match (sub, update.clone()) {
        (Some(s), v) => set_sub(e, s, v),
        (None, Some(Value::Object(m))) => merge(e, m),
        (None, _) => {}
    };
    if hits.is_empty() {
        let Some(equal) = filter::equalities(f) else {
            return Err(ScimError::bad_request(
                "noTarget",
                format!("{path}: no value matches the filter"),
            ));
        };
        let mut element = Map::new();
        for (name, v) in equal {
            if let Some(s) = attr.sub_attr(&name)
                && let Some(v) = schema::coerce(s, v, path)?
            {
                element.insert(s.name.to_owned(), v);
            }
        }
        write(&mut element);
        items.push(Value::Object(element));
        let last = items.len() - 1;
        claim_primary(items, last);
        return Ok(());
    }
    for i in hits {
        if let Some(e) = items[i].as_object_mut() {
            write(e);
        }
        claim_primary(items, i);
    }
    Ok(())
}

/// `remove` without a filter.
fn remove(
    map: &mut Map<String, Value>,
    attr: &'static Attr,
    sub: Option<&'static Attr>,
    value: Option<Value>,
    path: &str,
) -> Result<(), ScimError> {
    match (sub, map.get_mut(attr.name)) {
        (Some(s), Some(Value::Array(items))) => {
            for e in items.iter_mut().filter_map(Value::as_object_mut) {
                e.remove(s.name);
            }
        }
        (Some(s), Some(Value::Object(e))) => {
            e.remove(s.name);
        }
        (None, Some(Value::Array(items))) if value.as_ref().is_some_and(|v| !v.is_null()) => {
            let gone = schema::coerce(attr, value.unwrap_or(Value::Null), path)?;
            if let Some(Value::Array(gone)) = gone {
                items.retain(|e| !gone.iter().any(|g| same(attr, e, g)));
            }
        }
        (None, _) => {
            map.remove(attr.name);
        }
        (Some(_), _) => {}
    }
    Ok(())
}

/// Drops what a patch emptied: empty lists, empty complex values, empty extensions.
fn prune(body: &mut Map<String, Value>) {
    for v in body.values_mut() {
        if let Value::Object(inner) = v {
            inner.retain(|_, v| !is_empty(v));
        }
    }
    body.retain(|_, v| !is_empty(v));
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}
