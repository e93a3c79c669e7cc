//! The merge: DESIGN.md's three-way, per-field sync rules as pure functions.
//!
//! Given a record's state (golden values, each system's shadow, held fields) and what one
//! system reports, [`merge`] decides field by field and returns a [`Plan`]: golden and shadow
//! updates, fields to write per target, exceptions to open, audit entries. It does no I/O and
//! reads time only from its arguments; the runtime applies the plan in one transaction.
//! Resolutions, first-contact creation and deletes are planned here too, so every decision
//! the engine makes about values lives in this one file.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{Actor, AuditEntry, Direction};
use crate::model::{
    ConflictPolicy, DeletePolicy, FieldPolicy, Fields, NonOwnerPolicy, ObjectSchema, RecordId,
};

/// Who set a golden field, and when (source time), for last-write-wins and lineage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldMeta {
    pub ts: DateTime<Utc>,
    pub by: String,
}

/// What the merge needs to know about one system that maps the object.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemView {
    pub id: String,
    /// Canonical fields this system's mapping reads.
    pub reads: BTreeSet<String>,
    /// Canonical fields the engine can write to this system (reversible transforms).
    pub writes: BTreeSet<String>,
}

/// The configuration a merge decides under.
#[derive(Debug, Clone)]
pub struct MergeContext<'a> {
    pub object: &'a ObjectSchema,
    pub policies: &'a BTreeMap<String, FieldPolicy>,
    pub systems: &'a [SystemView],
}

impl MergeContext<'_> {
    fn policy(&self, field: &str) -> FieldPolicy {
        self.policies
            .get(field)
            .cloned()
            .unwrap_or_else(|| FieldPolicy::open(field))
    }

    fn system(&self, id: &str) -> Option<&SystemView> {
        self.systems.iter().find(|s| s.id == id)
    }
}

/// A record's state as the merge sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordState {
    pub record_id: RecordId,
    pub golden: Fields,
    pub meta: BTreeMap<String, FieldMeta>,
    /// System id -> the canonical values that system was last known to hold.
    pub shadows: BTreeMap<String, Fields>,
    /// Fields held by an open exception: nothing overwrites them until a steward resolves.
    pub held: BTreeSet<String>,
    /// Systems that hold this record (have a link).
    pub linked: BTreeSet<String>,
    /// System id -> values queued or being written to it (outcome not committed yet).
    pub outgoing: BTreeMap<String, Fields>,
}

/// What one system reports about one record, already mapped to canonical values.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    pub system: String,
    pub values: Fields,
    pub source_ts: DateTime<Utc>,
    /// A re-read after a write was refused as out of date (412): fields the source still
    /// holds differently from the golden record are written again.
    pub repair: bool,
}

/// An exception the plan opens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedException {
    pub kind: String,
    pub system: Option<String>,
    pub field: Option<String>,
    /// Whether the exception holds its field until resolved.
    pub holds: bool,
    pub detail: Value,
}

/// A new value for a field that an open exception already holds.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldUpdate {
    pub field: String,
    pub system: String,
    pub value: Value,
}

/// What a merge decided. Applying it is the runtime's job.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub golden: Fields,
    pub meta: BTreeMap<String, FieldMeta>,
    pub shadows: BTreeMap<String, Fields>,
    /// Target system -> canonical fields to write (values come from the golden record after
    /// the plan is applied).
    pub writes: BTreeMap<String, BTreeSet<String>>,
    /// Target system -> per field, the value that target held when the write was planned.
    pub write_bases: BTreeMap<String, Fields>,
    pub exceptions: Vec<PlannedException>,
    pub held_updates: Vec<HeldUpdate>,
    pub audit: Vec<AuditEntry>,
    /// Fields that changed nothing (rule 2: unchanged in the source, or the echo of our write).
    pub noops: u64,
    /// Whether the record is to be marked deleted.
    pub delete_record: bool,
    /// Systems to which the record's deletion is to be written.
    pub deletes: BTreeSet<String>,
    /// Systems whose link is to be marked deleted (they deleted the record).
    pub unlink: BTreeSet<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.golden.is_empty()
            && self.shadows.is_empty()
            && self.writes.is_empty()
            && self.exceptions.is_empty()
            && self.held_updates.is_empty()
            && self.deletes.is_empty()
            && self.unlink.is_empty()
            && !self.delete_record
    }

    /// Applies the plan's state changes to an in-memory record state, so later events of the
    /// same record in one batch merge against the right state.
    pub fn apply_to(&self, state: &mut RecordState) {
        for (f, v) in &self.golden {
            state.golden.insert(f.clone(), v.clone());
        }
        for (f, m) in &self.meta {
            state.meta.insert(f.clone(), m.clone());
        }
        for (s, fields) in &self.shadows {
            let shadow = state.shadows.entry(s.clone()).or_default();
            for (f, v) in fields {
                shadow.insert(f.clone(), v.clone());
            }
        }
        for e in &self.exceptions {
            if let (true, Some(f)) = (e.holds, &e.field) {
                state.held.insert(f.clone());
            }
        }
        for s in &self.unlink {
            state.linked.remove(s);
        }
    }

    fn shadow(&mut self, system: &str, field: &str, value: &Value) {
        self.shadows
            .entry(system.to_owned())
            .or_default()
            .insert(field.to_owned(), value.clone());
    }

    fn write(&mut self, target: &str, field: &str, base: Option<&Value>) {
        self.writes
            .entry(target.to_owned())
            .or_default()
            .insert(field.to_owned());
        self.write_bases
            .entry(target.to_owned())
            .or_default()
            .insert(field.to_owned(), base.cloned().unwrap_or(Value::Null));
    }
}

fn get<'a>(fields: &'a Fields, field: &str) -> &'a Value {
    fields.get(field).unwrap_or(&Value::Null)
}

/// Plans writes of `value` for `field` to every system except `except` that maps the field,
/// can be written, holds the record, and does not already hold that value.
fn propagate(
    ctx: &MergeContext<'_>,
    state: &RecordState,
    plan: &mut Plan,
    field: &str,
    value: &Value,
    except: Option<&str>,
) {
    for target in ctx.systems {
        if Some(target.id.as_str()) == except || !target.writes.contains(field) {
            continue;
        }
        if !state.linked.contains(&target.id) {
            // Not in that system yet: a create is planned by whoever links the record.
            continue;
        }
        let held = state
            .shadows
            .get(&target.id)
            .map(|s| get(s, field))
            .unwrap_or(&Value::Null);
        if held != value {
            plan.write(&target.id, field, Some(held));
        }
    }
}

/// Decides who wins a conflict (rule 4) between the incoming value and the golden one.
/// Returns true when the incoming value wins, or None for `manual`.
fn incoming_wins(
    policy: &FieldPolicy,
    incoming: &Incoming,
    golden_meta: Option<&FieldMeta>,
) -> Option<bool> {
    let lww = || match golden_meta {
        None => true,
        Some(m) => (incoming.source_ts, incoming.system.as_str()) > (m.ts, m.by.as_str()),
    };
    match &policy.conflict {
        ConflictPolicy::Manual => None,
        ConflictPolicy::LastWriteWins => Some(lww()),
        ConflictPolicy::OwnerWins => match policy.owner.as_deref() {
            Some(owner) if owner == incoming.system => Some(true),
            Some(owner) if golden_meta.map(|m| m.by.as_str()) == Some(owner) => Some(false),
            // Neither side is the owner: fall back to the later write.
            _ => Some(lww()),
        },
        ConflictPolicy::Prefer(preferred) => Some(*preferred == incoming.system),
    }
}

/// The three-way merge of two sets changed from `base`: a member is in the result if both
/// sides hold it, or if one side added it; a member either side removed is gone. Values that
/// are not lists count as empty sets.
pub fn merge_sets(base: &Value, ours: &Value, theirs: &Value) -> Value {
    let set = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (base, ours, theirs) = (set(base), set(ours), set(theirs));
    let merged: BTreeSet<&String> = ours
        .union(&theirs)
        .filter(|m| (ours.contains(*m) && theirs.contains(*m)) || !base.contains(*m))
        .collect();
    Value::Array(
        merged
            .into_iter()
            .map(|m| Value::from(m.as_str()))
            .collect(),
    )
}

/// Rules 1–5 of DESIGN.md, per field, for a change one system reports on a known record.
pub fn merge(ctx: &MergeContext<'_>, state: &RecordState, incoming: &Incoming) -> Plan {
    let mut plan = Plan::default();
    let object = &ctx.object.name;
    let source = incoming.system.as_str();
    let empty = Fields::new();
    let shadow = state.shadows.get(source).unwrap_or(&empty);
    for (field, v) in &incoming.values {
        if ctx.object.field(field).is_none() {
            continue;
        }
        let base = get(shadow, field);
        let golden = get(&state.golden, field);
        let audit = || {
            AuditEntry::engine("", Direction::In)
                .system(source)
                .record(object, state.record_id)
        };
        if state.held.contains(field) {
            if v != base {
                plan.shadow(source, field, v);
                plan.held_updates.push(HeldUpdate {
                    field: field.clone(),
                    system: source.to_owned(),
                    value: v.clone(),
                });
            } else {
                plan.noops += 1;
            }
            continue;
        }
        // Rule 2: unchanged in the source, or the echo of our own write.
        if v == base {
            plan.noops += 1;
            continue;
        }
        // The echo of a write whose outcome is not committed yet: the shadow catches up.
        if state
            .outgoing
            .get(source)
            .is_some_and(|w| w.get(field) == Some(v))
        {
            plan.shadow(source, field, v);
            plan.noops += 1;
            continue;
        }
        // Rule 5: both sides arrived at the same value.
        if v == golden {
            plan.shadow(source, field, v);
            plan.audit.push(AuditEntry {
                rule: "rule5:already_agreed".into(),
                ..audit().field(field, Some(base), Some(v))
            });
            continue;
        }
        let policy = ctx.policy(field);
        let clean = golden == base;
        // A field's owner that does not hold this record has no value for it yet: until it
        // does, a system that holds the record may fill an empty field in (a revert would only
        // write the emptiness back).
        let owner_absent = golden.is_null()
            && policy
                .owner
                .as_ref()
                .is_some_and(|o| !state.linked.contains(o));
        if !policy.may_write(source) && !owner_absent {
            non_owner_change(
                ctx, state, &mut plan, &policy, incoming, field, base, golden, clean,
            );
            continue;
        }
        // A set changed on both sides merges per member: each side's additions and removals
        // are kept, so neither overwrites the other's list.
        if !clean
            && ctx
                .object
                .field(field)
                .is_some_and(|d| d.field_type == crate::transform::FieldType::Set)
        {
            let merged = merge_sets(base, golden, v);
            plan.golden.insert(field.clone(), merged.clone());
            plan.meta.insert(
                field.clone(),
                FieldMeta {
                    ts: incoming.source_ts,
                    by: source.to_owned(),
                },
            );
            plan.shadow(source, field, v);
            plan.audit.push(AuditEntry {
                rule: "rule4:merged_per_member".into(),
                ..audit()
                    .field(field, Some(golden), Some(&merged))
                    .detail(json!({ "base": base, "incoming": v }))
            });
            if merged != *v && ctx.system(source).is_some_and(|s| s.writes.contains(field)) {
                plan.write(source, field, Some(v));
            }
            propagate(ctx, state, &mut plan, field, &merged, Some(source));
            continue;
        }
        let wins = if clean {
            Some(true)
        } else {
            incoming_wins(&policy, incoming, state.meta.get(field))
        };
        match wins {
            Some(true) => {
                let rule = if clean {
                    "rule3:clean_change".to_owned()
                } else {
                    format!("rule4:conflict:{}:incoming_won", policy.conflict.as_rule())
                };
                plan.golden.insert(field.clone(), v.clone());
                plan.meta.insert(
                    field.clone(),
                    FieldMeta {
                        ts: incoming.source_ts,
                        by: source.to_owned(),
                    },
                );
                plan.shadow(source, field, v);
                plan.audit.push(AuditEntry {
                    rule,
                    ..audit().field(field, Some(golden), Some(v))
                });
                propagate(ctx, state, &mut plan, field, v, Some(source));
            }
            Some(false) => {
                plan.shadow(source, field, v);
                plan.audit.push(AuditEntry {
                    rule: format!("rule4:conflict:{}:golden_kept", policy.conflict.as_rule()),
                    ..audit()
                        .field(field, Some(golden), Some(golden))
                        .detail(json!({ "rejected": v }))
                });
                if ctx.system(source).is_some_and(|s| s.writes.contains(field)) {
                    plan.write(source, field, Some(v));
                }
            }
            None => {
                plan.shadow(source, field, v);
                let detail = json!({
                    "base": base,
                    "golden": golden,
                    "golden_by": state.meta.get(field).map(|m| m.by.clone()),
                    "values": { source: v },
                    "message": format!(
                        "{source} changed {field} while another system changed it too; \
                         the field is held until a steward resolves it"
                    ),
                });
                plan.exceptions.push(PlannedException {
                    kind: "conflict".into(),
                    system: Some(source.to_owned()),
                    field: Some(field.clone()),
                    holds: true,
                    detail: detail.clone(),
                });
                plan.audit.push(AuditEntry {
                    rule: "rule4:conflict:manual:held".into(),
                    direction: Direction::Internal,
                    ..audit().field(field, Some(golden), Some(v)).detail(detail)
                });
            }
        }
    }
    if incoming.repair {
        repair(ctx, state, &mut plan, incoming);
    }
    plan
}

/// After a refused write (412) and a re-read: every field the engine writes to the source that
/// it still holds differently from the golden record (including fields it does not hold at
/// all), and that nothing is on its way to fix, is written again (against the version just read).
fn repair(ctx: &MergeContext<'_>, state: &RecordState, plan: &mut Plan, incoming: &Incoming) {
    let source = incoming.system.as_str();
    let Some(view) = ctx.system(source) else {
        return;
    };
    let mut after = state.clone();
    plan.apply_to(&mut after);
    let empty = Fields::new();
    let shadow = after.shadows.get(source).unwrap_or(&empty);
    for field in &view.writes {
        if after.held.contains(field) {
            continue;
        }
        let golden = get(&after.golden, field);
        let held_there = get(shadow, field);
        let planned = plan.writes.get(source).is_some_and(|w| w.contains(field));
        if held_there != golden && !planned {
            plan.write(source, field, Some(held_there));
            plan.audit.push(
                AuditEntry::engine("repair:rewrite_after_version_conflict", Direction::Out)
                    .system(source)
                    .record(&ctx.object.name, state.record_id)
                    .field(field, Some(held_there), Some(golden)),
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn non_owner_change(
    ctx: &MergeContext<'_>,
    state: &RecordState,
    plan: &mut Plan,
    policy: &FieldPolicy,
    incoming: &Incoming,
    field: &str,
    base: &Value,
    golden: &Value,
    clean: bool,
) {
    let source = incoming.system.as_str();
    let object = &ctx.object.name;
    let can_revert = ctx.system(source).is_some_and(|s| s.writes.contains(field));
    plan.shadow(source, field, &incoming.values[field]);
    let v = &incoming.values[field];
    let entry = AuditEntry::engine("", Direction::In)
        .system(source)
        .record(object, state.record_id)
        .field(field, Some(golden), Some(v))
        .detail(json!({ "owner": policy.owner, "base": base, "conflict": !clean }));
    if policy.non_owner == NonOwnerPolicy::Revert && can_revert {
        plan.write(source, field, Some(v));
        plan.audit.push(AuditEntry {
            rule: "rule3:non_owner:revert".into(),
            ..entry
        });
    } else {
        let detail = json!({
            "base": base,
            "golden": golden,
            "golden_by": state.meta.get(field).map(|m| m.by.clone()),
            "owner": policy.owner,
            "values": { source: v },
            "message": format!(
                "{source} changed {field}, which it does not own{}",
                if can_revert { "" } else { " (and the engine cannot write it back)" }
            ),
        });
        plan.exceptions.push(PlannedException {
            kind: "non_owner_change".into(),
            system: Some(source.to_owned()),
            field: Some(field.to_owned()),
            holds: true,
            detail,
        });
        plan.audit.push(AuditEntry {
            rule: "rule3:non_owner:quarantine".into(),
            direction: Direction::Internal,
            ..entry
        });
    }
}

/// First contact with no match: the reporting system's values become the golden record and
/// every other system that maps the object gets a create.
pub fn create(ctx: &MergeContext<'_>, record_id: RecordId, incoming: &Incoming) -> Plan {
    let mut plan = Plan::default();
    let object = &ctx.object.name;
    for (field, v) in &incoming.values {
        if ctx.object.field(field).is_none() || v.is_null() {
            continue;
        }
        plan.golden.insert(field.clone(), v.clone());
        plan.meta.insert(
            field.clone(),
            FieldMeta {
                ts: incoming.source_ts,
                by: incoming.system.clone(),
            },
        );
        plan.shadow(&incoming.system, field, v);
    }
    plan.audit.push(
        AuditEntry::engine("first_contact:created", Direction::In)
            .system(&incoming.system)
            .record(object, record_id)
            .detail(json!({ "fields": plan.golden.keys().collect::<Vec<_>>() })),
    );
    for target in ctx.systems {
        if target.id == incoming.system {
            continue;
        }
        let fields: Vec<String> = plan
            .golden
            .keys()
            .filter(|f| target.writes.contains(*f))
            .cloned()
            .collect();
        for field in fields {
            plan.write(&target.id, &field, None);
        }
    }
    plan
}

/// A steward's (or a rule's) resolution of a held field: the chosen value becomes golden and is
/// written to every system that maps the field and holds something else.
pub fn resolve(
    ctx: &MergeContext<'_>,
    state: &RecordState,
    field: &str,
    value: &Value,
    actor: &Actor,
    rule: &str,
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let golden = get(&state.golden, field);
    plan.golden.insert(field.to_owned(), value.clone());
    plan.meta.insert(
        field.to_owned(),
        FieldMeta {
            ts: now,
            by: format!("person:{}", actor.name),
        },
    );
    plan.audit.push(
        AuditEntry::engine(rule, Direction::Internal)
            .by(actor.clone())
            .record(&ctx.object.name, state.record_id)
            .field(field, Some(golden), Some(value)),
    );
    let unheld = RecordState {
        held: BTreeSet::new(),
        ..state.clone()
    };
    propagate(ctx, &unheld, &mut plan, field, value, None);
    plan
}

/// A delete reported by `system`, under the object's delete policy.
pub fn delete(
    ctx: &MergeContext<'_>,
    state: &RecordState,
    system: &str,
    now: DateTime<Utc>,
) -> Plan {
    let mut plan = Plan::default();
    let object = &ctx.object.name;
    let audit = |rule: &str| {
        AuditEntry::engine(rule, Direction::In)
            .system(system)
            .record(object, state.record_id)
    };
    plan.unlink.insert(system.to_owned());
    match &ctx.object.delete_policy {
        DeletePolicy::Propagate => {
            plan.delete_record = true;
            for target in ctx.systems {
                if target.id != system && state.linked.contains(&target.id) {
                    plan.deletes.insert(target.id.clone());
                }
            }
            plan.audit.push(audit("delete:propagate"));
        }
        DeletePolicy::Deactivate { field, value } => {
            let before = get(&state.golden, field).clone();
            if &before != value {
                plan.golden.insert(field.clone(), value.clone());
                plan.meta.insert(
                    field.clone(),
                    FieldMeta {
                        ts: now,
                        by: system.to_owned(),
                    },
                );
                let others = RecordState {
                    linked: state
                        .linked
                        .iter()
                        .filter(|s| *s != system)
                        .cloned()
                        .collect(),
                    ..state.clone()
                };
                propagate(ctx, &others, &mut plan, field, value, Some(system));
            }
            plan.audit
                .push(audit("delete:deactivate").field(field, Some(&before), Some(value)));
        }
        DeletePolicy::Ignore => plan.audit.push(audit("delete:ignore")),
        DeletePolicy::Review => {
            plan.unlink.clear();
            plan.exceptions.push(PlannedException {
                kind: "delete_review".into(),
                system: Some(system.to_owned()),
                field: None,
                holds: false,
                detail: json!({
                    "message": format!("{system} deleted this record; a steward decides whether to \
                                        delete it everywhere, deactivate it, or keep it"),
                }),
            });
            plan.audit.push(AuditEntry {
                direction: Direction::Internal,
                ..audit("delete:review")
            });
        }
    }
    plan
}

/// First-contact identity decision from the candidates found by match keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Link(RecordId),
    Ambiguous(Vec<RecordId>),
    Create,
}

pub fn decide_identity(candidates: &BTreeSet<RecordId>) -> Identity {
    match candidates.len() {
        0 => Identity::Create,
        1 => candidates
            .iter()
            .next()
            .map_or(Identity::Create, |r| Identity::Link(*r)),
        _ => Identity::Ambiguous(candidates.iter().copied().collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeletePolicy, FieldDef};
    use crate::transform::FieldType;
    use chrono::TimeZone;

    fn schema() -> ObjectSchema {
        let f = |name: &str| FieldDef {
            name: name.into(),
            field_type: FieldType::String,
            required: false,
            sensitive: false,
            values: vec![],
            references: None,
            description: None,
            max_length: None,
            currency: None,
        };
        ObjectSchema {
            name: "employee".into(),
            fields: vec![f("name"), f("phone"), f("pay")],
            match_keys: vec![],
            delete_policy: DeletePolicy::Review,
            max_lengths: Default::default(),
        }
    }

    fn views() -> Vec<SystemView> {
        let all: BTreeSet<String> = ["name", "phone", "pay"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        ["a", "b", "c"]
            .iter()
            .map(|id| SystemView {
                id: (*id).into(),
                reads: all.clone(),
                writes: all.clone(),
            })
            .collect()
    }

    fn policies() -> BTreeMap<String, FieldPolicy> {
        let mut p = BTreeMap::new();
        p.insert(
            "name".into(),
            FieldPolicy {
                owner: Some("a".into()),
                conflict: ConflictPolicy::OwnerWins,
                ..FieldPolicy::open("name")
            },
        );
        p.insert(
            "pay".into(),
            FieldPolicy {
                conflict: ConflictPolicy::Manual,
                ..FieldPolicy::open("pay")
            },
        );
        p
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0)
            .single()
            .unwrap_or_default()
    }

    /// Every system agrees on name=Ada, phone=1, pay=10.
    fn agreed() -> RecordState {
        let fields: Fields = [("name", "Ada"), ("phone", "1"), ("pay", "10")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).into())))
            .collect();
        let mut state = RecordState {
            record_id: 1,
            golden: fields.clone(),
            ..RecordState::default()
        };
        for s in ["a", "b", "c"] {
            state.shadows.insert(s.into(), fields.clone());
            state.linked.insert(s.into());
        }
        for f in fields.keys() {
            state.meta.insert(
                f.clone(),
                FieldMeta {
                    ts: at(0),
                    by: "a".into(),
                },
            );
        }
        state
    }

    fn incoming(system: &str, field: &str, value: &str, secs: i64) -> Incoming {
        let mut values = Fields::new();
        values.insert(field.into(), Value::String(value.into()));
        Incoming {
            system: system.into(),
            values,
            source_ts: at(secs),
            repair: false,
        }
    }

    #[test]
    fn a_set_changed_on_both_sides_merges_per_member() {
        let mut schema = schema();
        schema.fields[1].field_type = FieldType::Set;
        let list = |m: &[&str]| json!(m);
        let mut state = agreed();
        for s in ["a", "b", "c"] {
            state
                .shadows
                .get_mut(s)
                .map(|f| f.insert("phone".into(), list(&["E1", "E2"])));
        }
        // b already removed E1 and added E3; the golden record holds that.
        state.golden.insert("phone".into(), list(&["E2", "E3"]));
        state
            .shadows
            .get_mut("b")
            .map(|f| f.insert("phone".into(), list(&["E2", "E3"])));
        // Meanwhile a added E4 to the list it last agreed on.
        let mut values = Fields::new();
        values.insert("phone".into(), list(&["E1", "E2", "E4"]));
        let inc = Incoming {
            system: "a".into(),
            values,
            source_ts: at(5),
            repair: false,
        };
        let (p, v) = (BTreeMap::new(), views());
        let plan = merge(
            &MergeContext {
                object: &schema,
                policies: &p,
                systems: &v,
            },
            &state,
            &inc,
        );
        assert_eq!(
            plan.golden.get("phone"),
            Some(&list(&["E2", "E3", "E4"])),
            "b's removal of E1 and addition of E3 and a's addition of E4 all survive"
        );
        assert!(
            plan.writes.get("a").is_some_and(|w| w.contains("phone"))
                && plan.writes.get("b").is_some_and(|w| w.contains("phone")),
            "both sides get the merged list: {:?}",
            plan.writes
        );
        assert!(
            plan.exceptions.is_empty(),
            "a per-member merge is no conflict"
        );
        assert_eq!(
            merge_sets(&list(&["x"]), &list(&["x"]), &list(&[])),
            list(&[]),
            "a member one side removed is gone"
        );
    }

    fn run(state: &RecordState, inc: &Incoming) -> Plan {
        let (s, p, v) = (schema(), policies(), views());
        merge(
            &MergeContext {
                object: &s,
                policies: &p,
                systems: &v,
            },
            state,
            inc,
        )
    }

    #[test]
    fn rule2_an_unchanged_value_is_a_no_op() {
        let plan = run(&agreed(), &incoming("b", "phone", "1", 5));
        assert!(plan.is_empty(), "v == base changes nothing");
        assert_eq!(plan.noops, 1, "and is counted");
    }

    #[test]
    fn rule3_a_clean_change_propagates_to_every_other_system() {
        let plan = run(&agreed(), &incoming("b", "phone", "2", 5));
        assert_eq!(
            plan.golden.get("phone"),
            Some(&json!("2")),
            "golden takes the clean change"
        );
        let targets: Vec<&String> = plan.writes.keys().collect();
        assert_eq!(
            targets,
            vec!["a", "c"],
            "every other system that maps the field gets a write"
        );
        assert_eq!(
            plan.shadows["b"]["phone"],
            json!("2"),
            "the source's shadow follows"
        );
    }

    #[test]
    fn rule3_a_non_owner_change_is_reverted() {
        let plan = run(&agreed(), &incoming("b", "name", "Bob", 5));
        assert!(plan.golden.is_empty(), "a non-owner cannot change golden");
        assert_eq!(
            plan.writes.keys().collect::<Vec<_>>(),
            vec!["b"],
            "the owner's value is written back to the source only"
        );
        assert_eq!(plan.audit[0].rule, "rule3:non_owner:revert");
    }

    #[test]
    fn rule4_last_write_wins_by_source_time() {
        let mut state = agreed();
        // c changed phone at t=10, not yet seen by b.
        state.golden.insert("phone".into(), json!("3"));
        state.meta.insert(
            "phone".into(),
            FieldMeta {
                ts: at(10),
                by: "c".into(),
            },
        );
        let older = run(&state, &incoming("b", "phone", "2", 5));
        assert!(older.golden.is_empty(), "an older conflicting write loses");
        assert!(
            older.writes.get("b").is_some_and(|w| w.contains("phone")),
            "and the loser gets the winner's value"
        );
        let newer = run(&state, &incoming("b", "phone", "2", 20));
        assert_eq!(
            newer.golden.get("phone"),
            Some(&json!("2")),
            "a newer conflicting write wins"
        );
    }

    #[test]
    fn rule4_manual_holds_the_field_and_lets_others_through() {
        let mut state = agreed();
        state.golden.insert("pay".into(), json!("11"));
        let mut inc = incoming("b", "pay", "12", 5);
        inc.values.insert("phone".into(), json!("7"));
        let plan = run(&state, &inc);
        assert_eq!(
            plan.exceptions.len(),
            1,
            "a manual conflict opens one exception"
        );
        assert!(plan.exceptions[0].holds, "that holds the field");
        assert!(!plan.golden.contains_key("pay"), "nothing is overwritten");
        assert_eq!(
            plan.golden.get("phone"),
            Some(&json!("7")),
            "other fields of the record still sync"
        );
    }

    #[test]
    fn rule5_both_sides_at_the_same_value_only_moves_the_shadow() {
        let mut state = agreed();
        state.golden.insert("phone".into(), json!("9"));
        let plan = run(&state, &incoming("b", "phone", "9", 5));
        assert!(
            plan.writes.is_empty(),
            "no write when the source already holds golden"
        );
        assert_eq!(plan.shadows["b"]["phone"], json!("9"));
    }

    #[test]
    fn a_held_field_is_never_overwritten() {
        let mut state = agreed();
        state.held.insert("phone".into());
        let plan = run(&state, &incoming("b", "phone", "8", 5));
        assert!(
            plan.golden.is_empty() && plan.writes.is_empty(),
            "a held field waits for the steward"
        );
        assert_eq!(
            plan.held_updates.len(),
            1,
            "the exception learns the new value"
        );
    }

    #[test]
    fn resolution_writes_to_every_system_that_differs() {
        let mut state = agreed();
        state
            .shadows
            .get_mut("b")
            .map(|s| s.insert("pay".into(), json!("12")));
        let (s, p, v) = (schema(), policies(), views());
        let ctx = MergeContext {
            object: &s,
            policies: &p,
            systems: &v,
        };
        let plan = resolve(
            &ctx,
            &state,
            "pay",
            &json!("12"),
            &Actor::person("sam", "steward"),
            "resolution:conflict",
            at(9),
        );
        assert_eq!(
            plan.writes.keys().collect::<Vec<_>>(),
            vec!["a", "c"],
            "b already holds the chosen value"
        );
        assert_eq!(
            plan.audit[0].actor.name, "sam",
            "the resolution is audited with its actor"
        );
    }
}
