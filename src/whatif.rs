//! What-if for a mapping: before a changed mapping is saved, what it would write to its system
//! for every record the system holds, next to what the current mapping writes. Per system path:
//! how many records would get a different value, with samples; and the paths it would stop
//! writing. Nothing is written: the comparison is pure ([`compare`]) and the engine only reads
//! golden records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{EngineError, Result};
use crate::mapping::Assignment;
use crate::model::{Mapping, RecordId};
use crate::runtime::Engine;

/// Samples kept per path.
const SAMPLES: usize = 5;
/// Records read per page.
const PAGE: i64 = 500;

/// One record's value at a path, now and under the candidate mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhatIfSample {
    pub record_id: RecordId,
    /// The record's id in the system.
    pub external_id: String,
    /// What the current mapping writes there (null: nothing).
    pub from: Value,
    /// What the candidate would write.
    pub to: Value,
}

/// A system path the candidate would write differently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhatIfPath {
    pub path: String,
    /// How many records would get a different value there.
    pub records: u64,
    pub samples: Vec<WhatIfSample>,
}

/// What saving a candidate mapping would change in its system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WhatIf {
    pub system: String,
    pub object: String,
    /// Records the system holds.
    pub records: u64,
    /// Records that would be written a different value at some path.
    pub changed_records: u64,
    pub changes: Vec<WhatIfPath>,
    /// Paths the current mapping writes and the candidate would no longer write (their values
    /// stay as they are in the system).
    pub unwritten_paths: Vec<String>,
    /// Records the candidate cannot render (a transform refuses one of their values).
    pub refused: u64,
}

/// The paths `candidate` writes with a value other than `current`'s, with both values (null
/// where `current` writes nothing), and the paths only `current` writes.
pub fn compare(
    current: &[Assignment],
    candidate: &[Assignment],
) -> (Vec<(String, Value, Value)>, Vec<String>) {
    let now: BTreeMap<&str, &Value> = current.iter().map(|(p, v)| (p.as_str(), v)).collect();
    let next: BTreeMap<&str, &Value> = candidate.iter().map(|(p, v)| (p.as_str(), v)).collect();
    let changed = next
        .iter()
        .filter(|(p, v)| now.get(*p) != Some(*v))
        .map(|(p, v)| {
            let from = now.get(p).map_or(Value::Null, |v| (*v).clone());
            ((*p).to_owned(), from, (*v).clone())
        })
        .collect();
    let unwritten = now
        .keys()
        .filter(|p| !next.contains_key(*p))
        .map(|p| (*p).to_owned())
        .collect();
    (changed, unwritten)
}

impl Engine {
    /// What saving `candidate` would change in its system, for every record it holds.
    pub async fn what_if_mapping(&self, candidate: &Mapping) -> Result<WhatIf> {
        let ws = self.workspace();
        if ws.object(&candidate.object).is_none() {
            return Err(EngineError::NotFound(format!(
                "object '{}'",
                candidate.object
            )));
        }
        let current = ws.mapping(&candidate.system, &candidate.object);
        let system = ws
            .system(&candidate.system)
            .ok_or_else(|| EngineError::NotFound(format!("system '{}'", candidate.system)))?;
        let (now_fields, next_fields) = (
            current.map(Mapping::writes).unwrap_or_default(),
            candidate.writes(),
        );
        let mut out = WhatIf {
            system: candidate.system.clone(),
            object: candidate.object.clone(),
            records: 0,
            changed_records: 0,
            changes: Vec::new(),
            unwritten_paths: Vec::new(),
            refused: 0,
        };
        let mut by_path: BTreeMap<String, WhatIfPath> = BTreeMap::new();
        let mut unwritten = std::collections::BTreeSet::new();
        let mut after: RecordId = 0;
        loop {
            let rows: Vec<(RecordId, String, String)> = sqlx::query_as(
                "SELECT r.id, l.external_id, g.fields FROM records r
                 JOIN links l ON l.record_id = r.id AND l.system_id = ? AND l.deleted = 0
                 JOIN golden g ON g.record_id = r.id
                 WHERE r.object = ? AND r.deleted = 0 AND r.id > ? ORDER BY r.id LIMIT ?",
            )
            .bind(&candidate.system)
            .bind(&candidate.object)
            .bind(after)
            .bind(PAGE)
            .fetch_all(self.pool())
            .await?;
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            after = last;
            for (record_id, external_id, fields) in rows {
                let golden: crate::model::Fields = serde_json::from_str(&fields)?;
                if !system.admits(&golden) {
                    continue;
                }
                out.records += 1;
                let now = current
                    .map(|m| m.assignments(&now_fields, &golden, true))
                    .transpose()
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let Ok(next) = candidate.assignments(&next_fields, &golden, true) else {
                    out.refused += 1;
                    continue;
                };
                let (changed, gone) = compare(&now, &next);
                unwritten.extend(gone);
                if changed.is_empty() {
                    continue;
                }
                out.changed_records += 1;
                for (path, from, to) in changed {
                    let entry = by_path.entry(path.clone()).or_insert_with(|| WhatIfPath {
                        path,
                        records: 0,
                        samples: Vec::new(),
                    });
                    entry.records += 1;
                    if entry.samples.len() < SAMPLES {
                        entry.samples.push(WhatIfSample {
                            record_id,
                            external_id: external_id.clone(),
                            from,
                            to,
                        });
                    }
                }
            }
        }
        out.changes = by_path.into_values().collect();
        out.unwritten_paths = unwritten.into_iter().collect();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_path_written_anew_or_with_another_value_changes_and_one_no_longer_written_is_listed() {
        let now = vec![
            ("title".to_owned(), json!("Analyst")),
            ("email".to_owned(), json!("a@x")),
        ];
        let next = vec![
            ("title".to_owned(), json!("ANALYST")),
            ("contactEmail".to_owned(), json!("a@x")),
        ];
        let (changed, unwritten) = compare(&now, &next);
        assert_eq!(
            changed,
            vec![
                ("contactEmail".to_owned(), Value::Null, json!("a@x")),
                ("title".to_owned(), json!("Analyst"), json!("ANALYST")),
            ],
            "a new path and a new value are changes; an equal value is not"
        );
        assert_eq!(
            unwritten,
            vec!["email".to_owned()],
            "a path the candidate stops writing keeps its value"
        );
        assert_eq!(
            compare(&now, &now),
            (Vec::new(), Vec::new()),
            "the same mapping changes nothing"
        );
    }
}
