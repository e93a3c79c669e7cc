//! Versions of the configuration. Every change to a system, a mapping or an object's ownership
//! is an audit entry holding the config before and after it, written in the transaction that
//! stores it and kept in the audit's hash chain, so history cannot be rewritten unseen. This
//! lists those changes per target with what each changed (a diff, path by path), and restores
//! one: the target is set back to that version as a new change, audited like any other.
//!
//! Diffing and restoring are pure ([`diff`], [`restored`]); reading versions is the engine's.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{QueryBuilder, Sqlite};
use utoipa::ToSchema;

use crate::error::{EngineError, Result};
use crate::model::{Mapping, ObjectPolicies, SystemConfig, WorkspaceConfig};
use crate::ops::{AuditRow, audit_row};
use crate::runtime::Engine;

/// What a version is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigKind {
    /// A system's settings (`target`: its id).
    System,
    /// A system's mapping of an object (`target`: `system/object`).
    Mapping,
    /// An object's field ownership (`target`: the object).
    Policies,
}

impl ConfigKind {
    /// The audit rules that record a version of this kind.
    fn rules(self) -> &'static [&'static str] {
        match self {
            Self::System => &[
                "config:system_saved",
                "config:system_removed",
                "config:writes_enabled",
                "config:writes_held",
            ],
            Self::Mapping => &["config:mapping_saved"],
            Self::Policies => &["config:policies_saved"],
        }
    }

    fn of_rule(rule: &str) -> Option<Self> {
        [Self::System, Self::Mapping, Self::Policies]
            .into_iter()
            .find(|k| k.rules().contains(&rule))
    }

    /// The rule a restore of this kind is audited as.
    pub fn saved_rule(self) -> &'static str {
        match self {
            Self::System => "system_saved",
            Self::Mapping => "mapping_saved",
            Self::Policies => "policies_saved",
        }
    }
}

/// One changed value between two versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigChange {
    /// Where, e.g. `rules[hire_date].transform.format` (empty: the whole config).
    pub path: String,
    /// Absent (null) when the value was added.
    pub before: Value,
    /// Absent (null) when the value was removed.
    pub after: Value,
}

/// One version of one target: the change that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ConfigVersion {
    /// The audit entry that recorded it.
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub actor_id: Option<String>,
    pub kind: ConfigKind,
    pub target: String,
    /// The audit rule (`config:mapping_saved`, ...).
    pub rule: String,
    /// The config before the change (null: the target was new).
    pub before: Value,
    /// The config after it (null: the target was removed).
    pub after: Value,
    /// What changed, path by path.
    pub changes: Vec<ConfigChange>,
    /// The version this change restored, when it was a restore.
    pub restored_from: Option<i64>,
}

/// Every value that differs between `before` and `after`, by path, in document order. Objects
/// are compared key by key. Lists of named things are matched by name, not position (systems
/// by `id`, mappings by system and object, fields by `name` or `field`, rules by the canonical
/// fields they yield), so `rules[hire_date].transform.format` names the rule, and reordering is
/// no change; other lists are compared item by item. Anything else is compared whole.
pub fn diff(before: &Value, after: &Value) -> Vec<ConfigChange> {
    let mut out = Vec::new();
    walk("", before, after, &mut out);
    out
}

/// The name an element of a list is known by, if it has one.
fn key_of(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    if let (Some(Value::String(s)), Some(Value::String(obj))) = (o.get("system"), o.get("object")) {
        return Some(format!("{s}/{obj}"));
    }
    for k in ["id", "name", "field", "object"] {
        if let Some(Value::String(s)) = o.get(k) {
            return Some(s.clone());
        }
    }
    let canonical: Vec<&str> = o
        .get("canonical")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    (!canonical.is_empty()).then(|| canonical.join("+"))
}

/// A list's items by name, when every item has a name of its own.
fn named(items: &[Value]) -> Option<Vec<(String, &Value)>> {
    let named: Vec<(String, &Value)> = items
        .iter()
        .map(|v| key_of(v).map(|k| (k, v)))
        .collect::<Option<_>>()?;
    let mut seen = std::collections::BTreeSet::new();
    named
        .iter()
        .all(|(k, _)| seen.insert(k.as_str()))
        .then_some(named)
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<ConfigChange>) {
    let child = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (key, bv) in b {
                walk(&child(key), bv, a.get(key).unwrap_or(&Value::Null), out);
            }
            for (key, av) in a.iter().filter(|(k, _)| !b.contains_key(*k)) {
                walk(&child(key), &Value::Null, av, out);
            }
        }
        (Value::Array(b), Value::Array(a)) => match (named(b), named(a)) {
            (Some(nb), Some(na)) => {
                let find = |list: &[(String, &Value)], k: &str| {
                    list.iter().find(|(n, _)| n == k).map(|(_, v)| (*v).clone())
                };
                for (k, bv) in &nb {
                    walk(
                        &format!("{path}[{k}]"),
                        bv,
                        &find(&na, k).unwrap_or(Value::Null),
                        out,
                    );
                }
                for (k, av) in na.iter().filter(|(k, _)| !nb.iter().any(|(n, _)| n == k)) {
                    walk(&format!("{path}[{k}]"), &Value::Null, av, out);
                }
            }
            _ => {
                for i in 0..b.len().max(a.len()) {
                    walk(
                        &format!("{path}[{i}]"),
                        b.get(i).unwrap_or(&Value::Null),
                        a.get(i).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
        },
        (b, a) if b != a => out.push(ConfigChange {
            path: path.to_owned(),
            before: b.clone(),
            after: a.clone(),
        }),
        _ => {}
    }
}

/// `config` with `version`'s target set back to what it was after that change (or, to undo
/// it, before), the config restored, and the target's current value (the restore's "before").
/// A state where the target did not exist cannot be restored: a removal is undone by saving
/// the target again, a creation by removing it.
pub fn restored(
    config: &WorkspaceConfig,
    version: &ConfigVersion,
    undo: bool,
) -> Result<(WorkspaceConfig, Value, Option<Value>)> {
    let wanted = if undo {
        &version.before
    } else {
        &version.after
    };
    if wanted.is_null() {
        let what = if undo { "before" } else { "after" };
        return Err(EngineError::Invalid(format!(
            "{} did not exist {what} change {}: there is no config to restore",
            version.target, version.id
        )));
    }
    let bad = |e: serde_json::Error| {
        EngineError::Invalid(format!(
            "version {} no longer reads as a {:?} config: {e}",
            version.id, version.kind
        ))
    };
    let mut config = config.clone();
    let current = match version.kind {
        ConfigKind::System => {
            let system: SystemConfig = serde_json::from_value(wanted.clone()).map_err(bad)?;
            replace(&mut config.systems, system, |a, b| a.id == b.id)
        }
        ConfigKind::Mapping => {
            let mapping: Mapping = serde_json::from_value(wanted.clone()).map_err(bad)?;
            replace(&mut config.mappings, mapping, |a, b| {
                a.system == b.system && a.object == b.object
            })
        }
        ConfigKind::Policies => {
            let fields = serde_json::from_value(wanted.clone()).map_err(bad)?;
            let policies = ObjectPolicies {
                object: version.target.clone(),
                fields,
            };
            replace(&mut config.policies, policies, |a, b| a.object == b.object)
                .map(|p| p.get("fields").cloned().unwrap_or(Value::Null))
        }
    };
    Ok((config, wanted.clone(), current))
}

/// Puts `item` in place of the one `same` finds (or at the end); the one replaced, as JSON.
fn replace<T: Serialize>(
    items: &mut Vec<T>,
    item: T,
    same: impl Fn(&T, &T) -> bool,
) -> Option<Value> {
    match items.iter_mut().find(|i| same(i, &item)) {
        Some(slot) => {
            let old = std::mem::replace(slot, item);
            serde_json::to_value(old).ok()
        }
        None => {
            items.push(item);
            None
        }
    }
}

fn version(row: AuditRow) -> Option<ConfigVersion> {
    let kind = ConfigKind::of_rule(&row.rule)?;
    let target = match kind {
        ConfigKind::System => row.system.clone()?,
        ConfigKind::Mapping => format!("{}/{}", row.system.as_deref()?, row.object.as_deref()?),
        ConfigKind::Policies => row.object.clone()?,
    };
    let before = row.before.unwrap_or(Value::Null);
    let after = row.after.unwrap_or(Value::Null);
    Some(ConfigVersion {
        id: row.id,
        changes: diff(&before, &after),
        restored_from: row
            .detail
            .as_ref()
            .and_then(|d| d.get("restored_from"))
            .and_then(Value::as_i64),
        at: row.at,
        actor: row.actor,
        actor_id: row.actor_id,
        kind,
        target,
        rule: row.rule,
        before,
        after,
    })
}

/// Which versions to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    pub kind: Option<ConfigKind>,
    /// A system id, `system/object` for a mapping, or an object for ownership.
    pub target: Option<String>,
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
    #[param(minimum = 0, maximum = 1000000000)]
    pub offset: Option<i64>,
}

const COLUMNS: &str = "SELECT id, at, actor, actor_role, actor_id, system_id, direction, record_id, \
     object, field, before, after, rule, detail FROM audit";

impl Engine {
    /// Versions of the configuration, newest first.
    pub async fn config_history(&self, q: &HistoryQuery) -> Result<Vec<ConfigVersion>> {
        let kinds = match q.kind {
            Some(k) => vec![k],
            None => vec![
                ConfigKind::System,
                ConfigKind::Mapping,
                ConfigKind::Policies,
            ],
        };
        let rules: Vec<&str> = kinds.iter().flat_map(|k| k.rules()).copied().collect();
        let mut sql: QueryBuilder<Sqlite> = QueryBuilder::new(COLUMNS);
        sql.push(" WHERE rule IN (SELECT value FROM json_each(")
            .push_bind(serde_json::to_string(&rules)?)
            .push("))");
        if let Some(target) = &q.target {
            match target.split_once('/') {
                Some((system, object)) => {
                    sql.push(" AND system_id = ")
                        .push_bind(system.to_owned())
                        .push(" AND object = ")
                        .push_bind(object.to_owned());
                }
                None => {
                    sql.push(" AND (system_id = ")
                        .push_bind(target.clone())
                        .push(" OR (system_id IS NULL AND object = ")
                        .push_bind(target.clone())
                        .push("))");
                }
            }
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(q.limit.unwrap_or(100).clamp(1, 10_000))
            .push(" OFFSET ")
            .push_bind(q.offset.unwrap_or(0).max(0));
        let rows = sql.build().fetch_all(self.pool()).await?;
        Ok(rows.iter().map(audit_row).filter_map(version).collect())
    }

    /// One version, by the id of the audit entry that recorded it.
    pub async fn config_version(&self, id: i64) -> Result<ConfigVersion> {
        let row = sqlx::query(&format!("{COLUMNS} WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .map(|r| audit_row(&r))
            .ok_or_else(|| EngineError::NotFound(format!("config version {id}")))?;
        version(row).ok_or_else(|| {
            EngineError::NotFound(format!("audit entry {id} is not a configuration change"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_diff_names_each_changed_leaf_by_its_path_and_a_removed_item_whole() {
        let before = json!({ "system": "hris", "rules": [
            { "canonical": ["hire_date"], "transform": { "kind": "date", "format": "%m/%d/%Y" } },
            { "canonical": ["title"] } ] });
        let after = json!({ "system": "hris", "rules": [
            { "canonical": ["hire_date"], "transform": { "kind": "date", "format": "%Y-%m-%d" } } ],
            "note": "x" });
        assert_eq!(
            diff(&before, &after),
            vec![
                ConfigChange {
                    path: "rules[hire_date].transform.format".into(),
                    before: json!("%m/%d/%Y"),
                    after: json!("%Y-%m-%d")
                },
                ConfigChange {
                    path: "rules[title]".into(),
                    before: json!({ "canonical": ["title"] }),
                    after: Value::Null
                },
                ConfigChange {
                    path: "note".into(),
                    before: Value::Null,
                    after: json!("x")
                },
            ]
        );
        assert!(
            diff(&before, &before).is_empty(),
            "a version equal to the last has no changes"
        );
    }

    #[test]
    fn a_new_target_is_one_change_from_nothing_and_a_removal_cannot_be_restored() {
        let v = json!({ "id": "crm" });
        assert_eq!(
            diff(&Value::Null, &v),
            vec![ConfigChange {
                path: String::new(),
                before: Value::Null,
                after: v.clone()
            }]
        );
        let removal = ConfigVersion {
            id: 9,
            at: String::new(),
            actor: "ana".into(),
            actor_id: None,
            kind: ConfigKind::System,
            target: "crm".into(),
            rule: "config:system_removed".into(),
            before: v,
            after: Value::Null,
            changes: Vec::new(),
            restored_from: None,
        };
        let empty: WorkspaceConfig =
            serde_json::from_value(json!({ "systems": [], "objects": [], "mappings": [] }))
                .expect("an empty workspace");
        assert!(
            restored(&empty, &removal, false).is_err(),
            "a removal has no config to restore"
        );
    }
}
