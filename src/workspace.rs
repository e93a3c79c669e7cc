//! The loaded, validated workspace: config indexed the way the runtime asks for it.
//! Validation happens here, once, with messages that name the bad key.

use std::collections::{BTreeMap, HashMap};

use crate::error::{EngineError, Result};
use crate::merge::{MergeContext, SystemView};
use crate::model::{FieldPolicy, Mapping, ObjectSchema, SystemConfig, WorkspaceConfig};
use crate::path::SystemPath;

#[derive(Debug, Clone)]
pub struct Workspace {
    pub config: WorkspaceConfig,
    systems: HashMap<String, SystemConfig>,
    objects: HashMap<String, ObjectSchema>,
    mappings: HashMap<(String, String), Mapping>,
    policies: HashMap<String, BTreeMap<String, FieldPolicy>>,
    views: HashMap<String, Vec<SystemView>>,
}

impl Workspace {
    /// Validates and indexes a workspace config.
    pub fn new(config: WorkspaceConfig) -> Result<Self> {
        let bad = |m: String| EngineError::Config(m);
        let mut systems = HashMap::new();
        for s in &config.systems {
            if s.id.is_empty()
                || !s
                    .id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(bad(format!(
                    "systems[{}].id: use letters, digits, '-' and '_' only",
                    s.id
                )));
            }
            for (key, value) in [("name", &s.name), ("connector", &s.connector)] {
                if value.trim().is_empty() || value.chars().any(char::is_control) {
                    return Err(bad(format!(
                        "systems[{}].{key}: must be set, without control characters ({:?})",
                        s.id, value
                    )));
                }
            }
            if s.name.chars().count() > 200 {
                return Err(bad(format!(
                    "systems[{}].name: longer than 200 characters",
                    s.id
                )));
            }
            if systems.insert(s.id.clone(), s.clone()).is_some() {
                return Err(bad(format!("systems.id: '{}' appears twice", s.id)));
            }
            if let Some(b) = &s.breaker
                && !(b.max_share.is_finite()
                    && (0.0..=1.0).contains(&b.max_share)
                    && b.window_secs > 0)
            {
                return Err(bad(format!(
                    "systems[{}].breaker: max_share must be between 0 and 1 and window_secs positive",
                    s.id
                )));
            }
            if let Some(pilot) = &s.pilot
                && let Some((field, _)) = pilot.iter().find(|(f, values)| {
                    values.is_empty() || !config.objects.iter().any(|o| o.field(f).is_some())
                })
            {
                return Err(bad(format!(
                    "systems[{}].pilot.{field}: name a canonical field and at least one value it admits",
                    s.id
                )));
            }
            if s.rate_limit_per_sec.is_some_and(|r| r.is_nan() || r <= 0.0) {
                return Err(bad(format!(
                    "systems[{}].rate_limit_per_sec: must be positive",
                    s.id
                )));
            }
        }
        let mut objects = HashMap::new();
        for o in &config.objects {
            for k in &o.match_keys {
                if o.field(k).is_none() {
                    return Err(bad(format!(
                        "objects[{}].match_keys: '{k}' is not a field",
                        o.name
                    )));
                }
            }
            if let crate::model::DeletePolicy::Deactivate { field, .. } = &o.delete_policy
                && o.field(field).is_none()
            {
                return Err(bad(format!(
                    "objects[{}].delete_policy.field: '{field}' is not a field",
                    o.name
                )));
            }
            for f in &o.fields {
                check_currency(o, f).map_err(|e| {
                    bad(format!(
                        "objects[{}].fields[{}].currency: {e}",
                        o.name, f.name
                    ))
                })?;
            }
            objects.insert(o.name.clone(), o.clone());
        }
        let mut mappings = HashMap::new();
        for m in &config.mappings {
            let at = format!("mappings[{}/{}]", m.system, m.object);
            if !systems.contains_key(&m.system) {
                return Err(bad(format!("{at}.system: unknown system '{}'", m.system)));
            }
            let schema = objects
                .get(&m.object)
                .ok_or_else(|| bad(format!("{at}.object: unknown object '{}'", m.object)))?;
            for (i, rule) in m.rules.iter().enumerate() {
                for f in &rule.canonical {
                    if schema.field(f).is_none() {
                        return Err(bad(format!(
                            "{at}.rules[{i}].canonical: '{f}' is not a field of {}",
                            m.object
                        )));
                    }
                }
                for (j, text) in rule.system.iter().enumerate() {
                    SystemPath::parse(text)
                        .map_err(|e| bad(format!("{at}.rules[{i}].system[{j}]: {e}")))?;
                }
                let (sys_arity, can_arity) = rule.transform.arity();
                if sys_arity != rule.system.len() || can_arity != rule.canonical.len() {
                    return Err(bad(format!(
                        "{at}.rules[{i}]: transform takes {sys_arity} system path(s) and {can_arity} canonical field(s), \
                         got {} and {}",
                        rule.system.len(),
                        rule.canonical.len()
                    )));
                }
                rule.transform
                    .validate()
                    .map_err(|e| bad(format!("{at}.rules[{i}].transform: {e}")))?;
            }
            if let Some(dated) = &m.effective_date {
                SystemPath::parse(&dated.path)
                    .map_err(|e| bad(format!("{at}.effective_date.path: {e}")))?;
                crate::effective::zone_of(dated)
                    .map_err(|e| bad(format!("{at}.effective_date.time_zone: {e}")))?;
                let reads = m.reads();
                if let Some(f) = dated.fields.iter().find(|f| !reads.contains(*f)) {
                    return Err(bad(format!(
                        "{at}.effective_date.fields: '{f}' is not a field this mapping reads"
                    )));
                }
            }
            if mappings
                .insert((m.system.clone(), m.object.clone()), m.clone())
                .is_some()
            {
                return Err(bad(format!("{at}: mapped twice")));
            }
        }
        let mut policies: HashMap<String, BTreeMap<String, FieldPolicy>> = HashMap::new();
        for p in &config.policies {
            let schema = objects
                .get(&p.object)
                .ok_or_else(|| bad(format!("policies[{}].object: unknown object", p.object)))?;
            for f in &p.fields {
                let at = format!("policies[{}].{}", p.object, f.field);
                if schema.field(&f.field).is_none() {
                    return Err(bad(format!("{at}: not a field of {}", p.object)));
                }
                for s in f.owner.iter().chain(&f.writers) {
                    if !systems.contains_key(s) {
                        return Err(bad(format!("{at}: unknown system '{s}'")));
                    }
                }
                if let crate::model::ConflictPolicy::Prefer(s) = &f.conflict
                    && !systems.contains_key(s)
                {
                    return Err(bad(format!(
                        "{at}.conflict: prefer names unknown system '{s}'"
                    )));
                }
                policies
                    .entry(p.object.clone())
                    .or_default()
                    .insert(f.field.clone(), f.clone());
            }
        }
        let mut views: HashMap<String, Vec<SystemView>> = HashMap::new();
        for m in &config.mappings {
            views.entry(m.object.clone()).or_default().push(SystemView {
                id: m.system.clone(),
                reads: m.reads(),
                writes: m.writes(),
            });
        }
        for v in views.values_mut() {
            v.sort_by(|a, b| a.id.cmp(&b.id));
        }
        Ok(Self {
            config,
            systems,
            objects,
            mappings,
            policies,
            views,
        })
    }

    pub fn system(&self, id: &str) -> Option<&SystemConfig> {
        self.systems.get(id)
    }

    pub fn object(&self, name: &str) -> Option<&ObjectSchema> {
        self.objects.get(name)
    }

    pub fn mapping(&self, system: &str, object: &str) -> Option<&Mapping> {
        self.mappings.get(&(system.to_owned(), object.to_owned()))
    }

    pub fn policy(&self, object: &str, field: &str) -> FieldPolicy {
        self.policies
            .get(object)
            .and_then(|p| p.get(field))
            .cloned()
            .unwrap_or_else(|| FieldPolicy::open(field))
    }

    /// Every field's policy in force for `object`, defaults included, in schema order.
    pub fn policies_of(&self, object: &str) -> Vec<FieldPolicy> {
        self.object(object)
            .map(|o| {
                o.fields
                    .iter()
                    .map(|f| self.policy(object, &f.name))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The merge context for one object, if the object exists.
    pub fn merge_context<'a>(
        &'a self,
        object: &str,
        empty: &'a BTreeMap<String, FieldPolicy>,
    ) -> Option<MergeContext<'a>> {
        let schema = self.objects.get(object)?;
        Some(MergeContext {
            object: schema,
            policies: self.policies.get(object).unwrap_or(empty),
            systems: self.views.get(object).map(Vec::as_slice).unwrap_or(&[]),
        })
    }
}

/// A money field's currency is an ISO 4217 code or a `currency` field of its object; any
/// other field type has none.
fn check_currency(
    object: &crate::model::ObjectSchema,
    field: &crate::model::FieldDef,
) -> std::result::Result<(), String> {
    use crate::transform::FieldType;
    let Some(currency) = &field.currency else {
        return Ok(());
    };
    if field.field_type != FieldType::Money {
        return Err("only a money field has a currency".into());
    }
    if let Some(named) = object.field(currency) {
        return if named.field_type == FieldType::Currency {
            Ok(())
        } else {
            Err(format!("'{currency}' is a field, but not of type currency"))
        };
    }
    if currency.len() == 3 && currency.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!(
            "'{currency}' is neither an ISO 4217 code (three capital letters, e.g. USD) nor a \
             currency field of {}",
            object.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(system_paths: serde_json::Value) -> WorkspaceConfig {
        serde_json::from_value(json!({
            "systems": [{"id": "scim", "name": "SCIM", "connector": "memory"}],
            "objects": [{"name": "person", "fields": [
                {"name": "email", "type": "email"},
                {"name": "number", "type": "string"},
            ]}],
            "mappings": [{"system": "scim", "object": "person", "rules": [
                {"canonical": ["number"], "system": ["id"]},
                {"canonical": ["email"], "system": system_paths},
            ]}],
        }))
        .expect("the test config deserialises")
    }

    #[test]
    fn array_selectors_and_extension_keys_are_accepted() {
        for path in [
            "emails[type=work].value",
            "emails[0]/value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/employeeNumber",
        ] {
            assert!(
                Workspace::new(config(json!([path]))).is_ok(),
                "a valid system path loads: {path}"
            );
        }
    }

    #[test]
    fn a_bad_system_path_is_a_config_error_naming_the_rule() {
        let err = Workspace::new(config(json!(["emails[type=work.value"])))
            .expect_err("an unclosed selector is refused");
        let message = err.to_string();
        assert!(
            message.contains("mappings[scim/person].rules[1].system[0]")
                && message.contains("'emails[type=work.value'")
                && message.contains("not closed"),
            "the error names the rule, the path and the problem: {message}"
        );
    }

    #[test]
    fn an_effective_date_in_an_unknown_time_zone_is_refused_naming_the_key() {
        let mut zoned = config(json!(["emails"]));
        zoned.mappings[0].effective_date = Some(crate::model::EffectiveDate {
            path: "meta/effective".into(),
            fields: vec![],
            time_zone: Some("America/New_York".into()),
        });
        assert!(
            Workspace::new(zoned.clone()).is_ok(),
            "an IANA zone is accepted"
        );
        if let Some(dated) = zoned.mappings[0].effective_date.as_mut() {
            dated.time_zone = Some("America/Springfield".into());
        }
        let message = Workspace::new(zoned)
            .expect_err("an unknown zone is refused")
            .to_string();
        assert!(
            message.contains("mappings[scim/person].effective_date.time_zone")
                && message.contains("'America/Springfield' is not a known time zone"),
            "the error names the key and the zone: {message}"
        );
    }
}
