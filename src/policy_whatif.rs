//! What-if for ownership: what a draft of an object's field policies would decide now, before
//! it is saved, and the same decisions made when it is saved with `redecide`.
//!
//! A policy governs merges, so saving one changes what happens to the next change. What it
//! changes at once is what the old rules left waiting for a person: conflicts held for a
//! steward and non-owner changes in quarantine, on the fields whose rules change. Under the
//! draft, some of those decide themselves (the field now has an owner, or a preferred system,
//! or the quarantined system may now write it). This module finds them ([`redecide`] is pure),
//! says which value each takes and what each system would be written, and counts it per field
//! and system with samples. Fields that need four eyes are never decided by a rule: a person
//! approves them, whatever the draft says.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::approvals::chosen_value;
use crate::error::Result;
use crate::model::{ConflictPolicy, FieldPolicy, NonOwnerPolicy, RecordId};
use crate::ops::{Choice, ExceptionFilter, ExceptionView};
use crate::runtime::Engine;

/// Samples kept per field and system.
const SAMPLES: usize = 5;

/// Held items looked at, at most (the oldest first).
const HELD_LIMIT: i64 = 10_000;

/// How the draft would decide an item the current rules hold for a person, or None when it
/// still waits for one.
pub fn redecide(
    kind: &str,
    detail: &Value,
    before: &FieldPolicy,
    after: &FieldPolicy,
) -> Option<Choice> {
    if before == after || before.four_eyes || after.four_eyes {
        return None;
    }
    let holds = |s: &str| detail.get("values").and_then(|v| v.get(s)).is_some();
    let golden_by = detail.get("golden_by").and_then(Value::as_str);
    let winner = |system: &str| {
        if holds(system) {
            Some(Choice::System(system.to_owned()))
        } else if golden_by == Some(system) {
            Some(Choice::Golden)
        } else {
            None
        }
    };
    match kind {
        "conflict" => match &after.conflict {
            ConflictPolicy::OwnerWins => winner(after.owner.as_deref()?),
            ConflictPolicy::Prefer(system) => winner(system),
            // A held conflict keeps no source timestamps to compare; manual waits by definition.
            ConflictPolicy::LastWriteWins | ConflictPolicy::Manual => None,
        },
        "non_owner_change" => {
            let values = detail.get("values")?.as_object()?;
            let (system, _) = values.iter().next()?;
            if after.may_write(system) {
                Some(Choice::System(system.clone()))
            } else if after.non_owner == NonOwnerPolicy::Revert {
                Some(Choice::Golden)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// A policy of one field, before and after.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyChange {
    pub field: String,
    pub before: FieldPolicy,
    pub after: FieldPolicy,
}

/// A value one system would be written.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SystemWrite {
    pub system: String,
    /// What the system holds now (as last read).
    pub from: Value,
    pub to: Value,
}

/// A held item the draft decides.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Redecision {
    pub exception: i64,
    pub kind: String,
    pub record_id: Option<RecordId>,
    pub field: String,
    pub choice: Choice,
    /// The golden value now, and the value it takes.
    pub golden: Value,
    pub value: Value,
    /// The systems that would be written, from what they hold to the value.
    pub writes: Vec<SystemWrite>,
}

/// How many records a system would get another value of one field, with samples.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldWrites {
    pub system: String,
    pub field: String,
    pub count: u64,
    pub samples: Vec<Sample>,
}

/// One record's value before and after, in one system.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Sample {
    pub record_id: Option<RecordId>,
    pub from: Value,
    pub to: Value,
}

/// What saving a draft of an object's policies would do now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyWhatIf {
    pub object: String,
    /// The fields whose rules change.
    pub changes: Vec<PolicyChange>,
    /// Held items on those fields the draft decides, oldest first.
    pub decided: Vec<Redecision>,
    /// The same, per system and field: how many records would get another value.
    pub writes: Vec<FieldWrites>,
    /// Held items on those fields that still wait for a person (four eyes, manual,
    /// last write wins without timestamps, quarantine kept).
    pub still_held: u64,
}

impl Engine {
    /// What saving `draft` as the policies of `object` would decide now; writes nothing.
    pub async fn what_if_policies(
        &self,
        object: &str,
        draft: &[FieldPolicy],
    ) -> Result<PolicyWhatIf> {
        let before = self.workspace().policies_of(object);
        self.redecisions(object, &before, draft).await
    }

    /// Decides what the policies now in force decide of the items `before` held for a person
    /// (after a save), each as a resolution by `actor`, audited. Returns what it decided, and
    /// the items that failed with the reason.
    pub async fn redecide_held(
        &self,
        object: &str,
        before: &[FieldPolicy],
        actor: &crate::audit::Actor,
    ) -> Result<(PolicyWhatIf, Vec<String>)> {
        let after = self.workspace().policies_of(object);
        let planned = self.redecisions(object, before, &after).await?;
        let mut failed = Vec::new();
        for d in &planned.decided {
            let note = format!(
                "decided by the ownership rules of {} saved by {}",
                d.field, actor.name
            );
            if let Err(e) = self
                .resolve_exception(d.exception, &d.choice, &note, actor)
                .await
            {
                failed.push(format!("exception {}: {e}", d.exception));
            }
        }
        Ok((planned, failed))
    }

    async fn redecisions(
        &self,
        object: &str,
        before: &[FieldPolicy],
        after: &[FieldPolicy],
    ) -> Result<PolicyWhatIf> {
        let ws = self.workspace();
        let policy_in = |list: &[FieldPolicy], field: &str| {
            list.iter()
                .find(|p| p.field == field)
                .cloned()
                .unwrap_or_else(|| FieldPolicy::open(field))
        };
        let changes: Vec<PolicyChange> = ws
            .object(object)
            .map(|o| {
                o.fields
                    .iter()
                    .map(|f| PolicyChange {
                        field: f.name.clone(),
                        before: policy_in(before, &f.name),
                        after: policy_in(after, &f.name),
                    })
                    .filter(|c| c.before != c.after)
                    .collect()
            })
            .unwrap_or_default();
        let mut decided = Vec::new();
        let mut still_held = 0;
        let mut writes: BTreeMap<(String, String), FieldWrites> = BTreeMap::new();
        for change in &changes {
            for kind in ["conflict", "non_owner_change"] {
                let held = self
                    .list_exceptions(&ExceptionFilter {
                        kind: Some(kind.into()),
                        field: Some(change.field.clone()),
                        status: Some("open".into()),
                        limit: Some(HELD_LIMIT),
                        ..Default::default()
                    })
                    .await?;
                for e in held.into_iter().filter(|e| e.object == object) {
                    match redecide(kind, &e.detail, &change.before, &change.after) {
                        None => still_held += 1,
                        Some(choice) => {
                            let d = self.redecision(&e, &change.field, choice).await?;
                            for w in &d.writes {
                                let entry = writes
                                    .entry((w.system.clone(), d.field.clone()))
                                    .or_insert_with(|| FieldWrites {
                                        system: w.system.clone(),
                                        field: d.field.clone(),
                                        count: 0,
                                        samples: Vec::new(),
                                    });
                                entry.count += 1;
                                if entry.samples.len() < SAMPLES {
                                    entry.samples.push(Sample {
                                        record_id: d.record_id,
                                        from: w.from.clone(),
                                        to: w.to.clone(),
                                    });
                                }
                            }
                            decided.push(d);
                        }
                    }
                }
            }
        }
        decided.sort_by_key(|d| d.exception);
        Ok(PolicyWhatIf {
            object: object.to_owned(),
            changes,
            decided,
            writes: writes.into_values().collect(),
            still_held,
        })
    }

    /// The value `choice` gives an item, and the systems that would be written it: each
    /// system that writes the field and holds something else.
    async fn redecision(
        &self,
        e: &ExceptionView,
        field: &str,
        choice: Choice,
    ) -> Result<Redecision> {
        let ws = self.workspace();
        let (golden, shadows) = match e.record_id {
            Some(r) => {
                let view = self.record_view(r).await?;
                (view.golden, view.shadows)
            }
            None => Default::default(),
        };
        let value = chosen_value(e, field, &choice, &golden)?;
        let writes = shadows
            .iter()
            .filter(|(system, _)| {
                ws.mapping(system, &e.object)
                    .is_some_and(|m| m.writes().contains(field))
            })
            .filter_map(|(system, held)| {
                let from = held.get(field).cloned().unwrap_or(Value::Null);
                (from != value).then(|| SystemWrite {
                    system: system.clone(),
                    from,
                    to: value.clone(),
                })
            })
            .collect();
        Ok(Redecision {
            exception: e.id,
            kind: e.kind.clone(),
            record_id: e.record_id,
            field: field.to_owned(),
            choice,
            golden: golden.get(field).cloned().unwrap_or(Value::Null),
            value,
            writes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(v: Value) -> FieldPolicy {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("a policy: {e}"))
    }

    fn conflict() -> Value {
        json!({ "base": "a", "golden": "b", "golden_by": "payroll", "values": { "hris": "c" } })
    }

    #[test]
    fn a_held_conflict_is_decided_by_a_new_owner_or_preference_and_waits_under_manual() {
        let manual = policy(json!({ "field": "title", "conflict": "manual" }));
        let hris_owns =
            policy(json!({ "field": "title", "owner": "hris", "conflict": "owner_wins" }));
        let payroll_owns =
            policy(json!({ "field": "title", "owner": "payroll", "conflict": "owner_wins" }));
        let prefer = policy(json!({ "field": "title", "conflict": { "prefer": "hris" } }));
        let lww = policy(json!({ "field": "title", "conflict": "last_write_wins" }));
        assert_eq!(
            redecide("conflict", &conflict(), &manual, &hris_owns),
            Some(Choice::System("hris".into())),
            "the new owner's held value wins"
        );
        assert_eq!(
            redecide("conflict", &conflict(), &manual, &payroll_owns),
            Some(Choice::Golden),
            "an owner whose value is golden keeps it"
        );
        assert_eq!(
            redecide("conflict", &conflict(), &manual, &prefer),
            Some(Choice::System("hris".into())),
            "a preferred system's value wins"
        );
        assert_eq!(
            redecide("conflict", &conflict(), &manual, &lww),
            None,
            "last write wins needs timestamps a held conflict does not keep"
        );
        assert_eq!(
            redecide("conflict", &conflict(), &manual, &manual),
            None,
            "unchanged rules decide nothing"
        );
    }

    #[test]
    fn four_eyes_fields_are_never_decided_by_a_rule() {
        let manual =
            policy(json!({ "field": "pay_rate", "conflict": "manual", "four_eyes": true }));
        let owned = policy(
            json!({ "field": "pay_rate", "owner": "hris", "conflict": "owner_wins", "four_eyes": true }),
        );
        assert_eq!(
            redecide("conflict", &conflict(), &manual, &owned),
            None,
            "a four-eyes field waits for two people"
        );
        let plain =
            policy(json!({ "field": "pay_rate", "owner": "hris", "conflict": "owner_wins" }));
        assert_eq!(
            redecide("conflict", &conflict(), &manual, &plain),
            None,
            "nor is it decided by the save that takes four eyes away"
        );
    }

    #[test]
    fn a_quarantined_change_is_accepted_when_its_system_may_write_or_reverted_under_revert() {
        let detail =
            json!({ "base": "a", "golden": "a", "owner": "hris", "values": { "payroll": "z" } });
        let quarantine = policy(
            json!({ "field": "title", "owner": "hris", "conflict": "owner_wins", "non_owner": "quarantine" }),
        );
        let writers = policy(
            json!({ "field": "title", "owner": "hris", "writers": ["payroll"], "non_owner": "quarantine" }),
        );
        let revert = policy(json!({ "field": "title", "owner": "hris", "non_owner": "revert" }));
        assert_eq!(
            redecide("non_owner_change", &detail, &quarantine, &writers),
            Some(Choice::System("payroll".into())),
            "a system that may now write the field has its change accepted"
        );
        assert_eq!(
            redecide("non_owner_change", &detail, &quarantine, &revert),
            Some(Choice::Golden),
            "under revert the golden value is written back"
        );
    }
}
