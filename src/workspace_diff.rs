//! What changes between two workspace configs, key by key, for `concord workspace diff` and
//! `apply` to show before anything is written, and the workspace as TOML. The diff is the
//! configuration history's ([`crate::config_history::diff`]: lists of named things matched by
//! name, so an edit reads `systems[payroll].config.poll.interval_secs: 30 → 60`). Pure.

use serde_json::Value;

use crate::config_history::ConfigChange;
use crate::model::WorkspaceConfig;

/// One difference, as `config_history::diff` finds it: added (nothing before), removed
/// (nothing after), or changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Change(pub ConfigChange);

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ConfigChange {
            path,
            before,
            after,
        } = &self.0;
        match (before, after) {
            (Value::Null, v) => write!(f, "+ {path}: {}", compact(v)),
            (v, Value::Null) => write!(f, "- {path}: {}", compact(v)),
            (b, a) => write!(f, "~ {path}: {} → {}", compact(b), compact(a)),
        }
    }
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The changes that turn `from` into `to`.
pub fn diff(from: &WorkspaceConfig, to: &WorkspaceConfig) -> Vec<Change> {
    let (a, b) = (
        serde_json::to_value(from).unwrap_or(Value::Null),
        serde_json::to_value(to).unwrap_or(Value::Null),
    );
    crate::config_history::diff(&a, &b)
        .into_iter()
        .map(Change)
        .collect()
}

/// The workspace as TOML, every key kept. TOML has no null: keys whose value is null are left
/// out, which reads back as the same config (a missing key is its default).
pub fn to_toml(config: &WorkspaceConfig) -> Result<String, String> {
    let mut value = serde_json::to_value(config).map_err(|e| e.to_string())?;
    drop_nulls(&mut value);
    toml::to_string_pretty(&value).map_err(|e| e.to_string())
}

fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(o) => {
            o.retain(|_, x| !x.is_null());
            o.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: Value) -> WorkspaceConfig {
        serde_json::from_value(v).expect("a workspace")
    }

    fn sample() -> Value {
        json!({
            "systems": [
                { "id": "hr", "name": "HR", "connector": "rest", "config": { "base_url": "http://127.0.0.1:1", "poll": { "interval_secs": 30 } } },
                { "id": "pay", "name": "Pay", "connector": "rest", "config": { "base_url": "http://127.0.0.1:2" } }
            ],
            "objects": [],
            "mappings": [],
            "policies": []
        })
    }

    #[test]
    fn the_same_workspace_in_another_order_is_no_change() {
        let a = config(sample());
        let mut swapped = sample();
        if let Some(systems) = swapped["systems"].as_array_mut() {
            systems.reverse();
        }
        assert!(
            diff(&a, &config(swapped)).is_empty(),
            "order of named things is no change"
        );
    }

    #[test]
    fn an_edit_is_named_by_the_things_it_is_in() {
        let a = config(sample());
        let mut b = sample();
        b["systems"][0]["config"]["poll"]["interval_secs"] = json!(60);
        b["systems"][1]["name"] = json!("Payroll");
        let lines: Vec<String> = diff(&a, &config(b))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "~ systems[hr].config.poll.interval_secs: 30 → 60",
                "~ systems[pay].name: \"Pay\" → \"Payroll\""
            ],
            "each change says where it is, by name"
        );
    }

    #[test]
    fn systems_added_and_removed_are_shown_whole() {
        let a = config(sample());
        let mut b = sample();
        if let Some(systems) = b["systems"].as_array_mut() {
            systems.remove(1);
            systems.push(json!({ "id": "dir", "name": "Dir", "connector": "scim", "config": {} }));
        }
        let lines: Vec<String> = diff(&a, &config(b))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(lines[0].starts_with("- systems[pay]: "), "{lines:?}");
        assert!(lines[1].starts_with("+ systems[dir]: "), "{lines:?}");
    }

    #[test]
    fn toml_reads_back_as_the_same_workspace() {
        let a = config(sample());
        let text = to_toml(&a).expect("toml");
        let back: WorkspaceConfig = toml::from_str(&text).expect("reads back");
        assert!(diff(&a, &back).is_empty(), "{text}");
    }
}
