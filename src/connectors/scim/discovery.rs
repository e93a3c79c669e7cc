//! What a SCIM server says about itself, read with no I/O: the features of its
//! ServiceProviderConfig, and the attributes of a resource type (its core schema and its
//! extensions, sub-attributes included) as the mapping paths an admin picks from. A
//! multi-valued attribute with typed elements (`emails`, `phoneNumbers`) is offered per type
//! (`emails[type=work].value`), since that is how identity providers address them.

use serde_json::Value;

/// What the server supports, as its ServiceProviderConfig says (or the config overrides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub patch: bool,
    pub filter: bool,
    pub etag: bool,
    pub sort: bool,
}

impl Features {
    /// Reads a ServiceProviderConfig document; a feature it does not mention is taken at the
    /// RFC's word (PATCH and filtering are near universal; ETags and sorting are not assumed).
    /// `"supported": "True"` counts, as some servers write it.
    pub fn from_document(doc: &Value) -> Self {
        let supported = |feature: &str| {
            doc.get(feature).and_then(|f| f.get("supported")).map(|s| {
                s.as_bool()
                    .unwrap_or_else(|| s.as_str().is_some_and(|t| t.eq_ignore_ascii_case("true")))
            })
        };
        Self {
            patch: supported("patch").unwrap_or(true),
            filter: supported("filter").unwrap_or(true),
            etag: supported("etag").unwrap_or(false),
            sort: supported("sort").unwrap_or(false),
        }
    }
}

/// Sub-attributes that qualify an element rather than hold its data.
const QUALIFIERS: [&str; 4] = ["type", "primary", "display", "$ref"];

/// The mapping paths of a resource type: `resource_type` is its ResourceTypes entry, `schemas`
/// the server's Schemas. Read-only and write-only attributes (`groups`, `password`) are left
/// out; `externalId` is added, as every resource has it (RFC 7643 §3.1).
pub fn declared_paths(resource_type: &Value, schemas: &[Value]) -> Vec<String> {
    let mut paths = vec!["externalId".to_owned()];
    let core = resource_type.get("schema").and_then(Value::as_str);
    let extensions: Vec<&str> = resource_type
        .get("schemaExtensions")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(|x| x.get("schema").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    for (urn, prefix) in core
        .map(|c| (c, String::new()))
        .into_iter()
        .chain(extensions.iter().map(|e| (*e, format!("{e}/"))))
    {
        let Some(schema) = schemas
            .iter()
            .find(|s| s.get("id").and_then(Value::as_str) == Some(urn))
        else {
            continue;
        };
        for attribute in schema
            .get("attributes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            attribute_paths(attribute, &prefix, &mut paths);
        }
    }
    paths
}

fn attribute_paths(attribute: &Value, prefix: &str, out: &mut Vec<String>) {
    let text = |k: &str| attribute.get(k).and_then(Value::as_str).unwrap_or_default();
    let name = text("name");
    if name.is_empty() || matches!(text("mutability"), "readOnly" | "writeOnly") {
        return;
    }
    let multi = attribute
        .get("multiValued")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let subs: Vec<&Value> = attribute
        .get("subAttributes")
        .and_then(Value::as_array)
        .map(|s| s.iter().collect())
        .unwrap_or_default();
    let sub_name = |s: &Value| {
        s.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let data: Vec<String> = subs
        .iter()
        .map(|s| sub_name(s))
        .filter(|n| !n.is_empty() && !QUALIFIERS.contains(&n.as_str()))
        .collect();
    match (multi, subs.is_empty()) {
        (false, true) => out.push(format!("{prefix}{name}")),
        (false, false) => out.extend(data.iter().map(|d| format!("{prefix}{name}/{d}"))),
        (true, true) => out.push(format!("{prefix}{name}")),
        (true, false) => {
            let types: Vec<String> = subs
                .iter()
                .find(|s| sub_name(s) == "type")
                .and_then(|t| t.get("canonicalValues"))
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let selectors: Vec<String> = if types.is_empty() {
                vec!["primary=true".to_owned()]
            } else {
                types.iter().map(|t| format!("type={t}")).collect()
            };
            for selector in selectors {
                for d in &data {
                    out.push(format!("{prefix}{name}[{selector}].{d}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_resource_types_attributes_become_mapping_paths() {
        let user = json!({"schema": "urn:core:User", "schemaExtensions": [{"schema": "urn:ext:Enterprise"}]});
        let schemas = vec![
            json!({"id": "urn:core:User", "attributes": [
                {"name": "userName", "type": "string"},
                {"name": "name", "type": "complex", "subAttributes": [{"name": "givenName"}, {"name": "familyName"}]},
                {"name": "emails", "type": "complex", "multiValued": true, "subAttributes": [
                    {"name": "value"}, {"name": "type", "canonicalValues": ["work", "home"]}, {"name": "primary"}]},
                {"name": "roles", "type": "complex", "multiValued": true, "subAttributes": [{"name": "value"}, {"name": "type"}]},
                {"name": "groups", "type": "complex", "multiValued": true, "mutability": "readOnly"},
                {"name": "password", "type": "string", "mutability": "writeOnly"}
            ]}),
            json!({"id": "urn:ext:Enterprise", "attributes": [
                {"name": "department", "type": "string"},
                {"name": "manager", "type": "complex", "subAttributes": [{"name": "value"}, {"name": "displayName"}, {"name": "$ref"}]}
            ]}),
        ];
        assert_eq!(
            declared_paths(&user, &schemas),
            vec![
                "externalId",
                "userName",
                "name/givenName",
                "name/familyName",
                "emails[type=work].value",
                "emails[type=home].value",
                "roles[primary=true].value",
                "urn:ext:Enterprise/department",
                "urn:ext:Enterprise/manager/value",
                "urn:ext:Enterprise/manager/displayName",
            ],
            "sub-attributes, typed elements and extensions are listed; read-only and \
             write-only attributes are not"
        );
    }

    #[test]
    fn features_are_read_leniently() {
        let f = Features::from_document(
            &json!({"patch": {"supported": "False"}, "etag": {"supported": true}}),
        );
        assert_eq!(
            f,
            Features {
                patch: false,
                filter: true,
                etag: true,
                sort: false
            },
            "a string boolean counts; an absent feature takes the RFC's default"
        );
    }
}
