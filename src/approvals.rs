//! Four eyes that see. A bulk resolution is shown before it is made: for each exception, the
//! field's current golden value, the value the rule chooses, and what deciding it would do
//! (apply it, record a first approval, give the second approval of a value someone else
//! approved, or nothing, and why). The set shown has a digest. A bulk resolution that touches
//! a field needing four eyes must name the digest of what its person was shown, and each
//! exception is checked again against what was shown when it is written. The same preview,
//! over the exceptions awaiting a second person, is the approvals queue.
//!
//! Deciding is pure ([`chosen_value`], [`approval_step`]); the engine functions read the
//! exceptions and golden values, and resolving goes through [`Engine::resolve_as_shown`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::audit::Actor;
use crate::error::{EngineError, Result};
use crate::model::{Fields, RecordId};
use crate::ops::{Choice, ExceptionFilter, ExceptionView, ResolveOutcome, check_resolution};
use crate::runtime::Engine;

/// Bulk resolutions take at most this many exceptions per call unless the filter says fewer.
pub const BULK_LIMIT: i64 = 1000;

/// What one person was shown about one exception before deciding it.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// The digest of the whole set shown (kept in the approval and the audit).
    pub digest: String,
    /// The field's golden value at the time.
    pub current: Value,
    /// The value the rule chose.
    pub chosen: Value,
}

/// What resolving one exception with one value does, for one person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalStep {
    /// No four eyes needed: the value is applied.
    Apply,
    /// Four eyes: this is the first approval (or a different value than the one approved).
    First,
    /// Four eyes: someone else approved this same value; this approval applies it.
    Second,
    /// Four eyes: this person gave the first approval and cannot give the second.
    SamePerson,
}

/// What resolving `exception` with `value` does when `actor` decides it.
pub fn approval_step(
    four_eyes: bool,
    exception: &ExceptionView,
    actor: &Actor,
    value: &Value,
) -> ApprovalStep {
    if !four_eyes {
        return ApprovalStep::Apply;
    }
    let Some(first) = exception.detail.get("approval").filter(|a| !a.is_null()) else {
        return ApprovalStep::First;
    };
    // The same person by principal id, or by name however it is spaced or cased.
    if actor.same_person(
        first.get("by_id").and_then(Value::as_str),
        first.get("by").and_then(Value::as_str),
    ) {
        ApprovalStep::SamePerson
    } else if first.get("value") == Some(value) {
        ApprovalStep::Second
    } else {
        ApprovalStep::First
    }
}

/// The value `choice` picks for `field` of `exception`, given the record's golden values.
pub fn chosen_value(
    exception: &ExceptionView,
    field: &str,
    choice: &Choice,
    golden: &Fields,
) -> Result<Value> {
    let id = exception.id;
    Ok(match choice {
        Choice::Base => exception.detail.get("base").cloned().unwrap_or(Value::Null),
        Choice::Golden => golden.get(field).cloned().unwrap_or(Value::Null),
        Choice::System(s) => exception
            .detail
            .get("values")
            .and_then(|v| v.get(s))
            .cloned()
            .ok_or_else(|| {
                EngineError::Invalid(format!("exception {id} has no value from system '{s}'"))
            })?,
        Choice::Custom(v) => v.clone(),
        Choice::Approved => exception
            .detail
            .get("approval")
            .and_then(|a| a.get("value"))
            .cloned()
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "exception {id} awaits no second approval: there is no approved value"
                ))
            })?,
    })
}

/// Who approved first, what and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FirstApproval {
    pub by: String,
    pub role: Option<String>,
    pub at: Option<String>,
    pub value: Value,
    pub note: Option<String>,
}

/// What deciding one exception of a bulk set would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BulkStep {
    /// The chosen value is applied.
    Apply,
    /// The field needs four eyes: this records the first approval; nothing is written yet.
    FirstApproval,
    /// Someone else approved this same value: this second approval applies it.
    SecondApproval,
    /// Nothing happens; `reason` says why.
    Refused,
}

/// One exception of a bulk set, with the values its person decides on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkItem {
    pub exception: i64,
    pub kind: String,
    pub object: String,
    pub record_id: Option<RecordId>,
    pub field: Option<String>,
    /// The system the exception came from.
    pub system: Option<String>,
    /// The field's golden value now.
    pub current: Value,
    /// The value the rule chooses (none when it cannot choose one).
    pub chosen: Option<Value>,
    /// The value all systems last agreed on.
    pub base: Value,
    /// Whether the field needs a second person's approval.
    pub four_eyes: bool,
    pub first_approval: Option<FirstApproval>,
    pub step: BulkStep,
    pub reason: Option<String>,
    /// For a money field: its currency (an ISO 4217 code), to show `$80,500.00`.
    pub currency: Option<String>,
}

/// A bulk set as its person is shown it, before deciding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BulkPreview {
    pub items: Vec<BulkItem>,
    /// How many items need four eyes.
    pub four_eyes: usize,
    /// The digest of exactly these items and values, computed before any masking. A bulk
    /// resolution touching a four-eyes field sends it back as `shown`.
    pub digest: String,
}

impl BulkPreview {
    /// How many items would be applied, approved first, approved second or refused.
    pub fn count(&self, step: BulkStep) -> usize {
        self.items.iter().filter(|i| i.step == step).count()
    }
}

/// What a bulk resolution did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BulkResolution {
    pub applied: usize,
    pub awaiting_second_approval: usize,
    pub failed: Vec<String>,
}

/// The digest of a bulk set: each item's exception, field, current, chosen and first-approved
/// values and step, in order. Any change to what a person would see changes it.
fn digest(items: &[BulkItem]) -> String {
    let mut hasher = Sha256::new();
    for item in items {
        let first = item.first_approval.as_ref();
        let line = serde_json::json!([
            item.exception,
            item.field,
            item.current,
            item.chosen,
            first.map(|a| &a.value),
            first.map(|a| &a.by),
            item.step,
        ]);
        hasher.update(line.to_string().as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

fn first_approval(exception: &ExceptionView) -> Option<FirstApproval> {
    let a = exception.detail.get("approval").filter(|a| !a.is_null())?;
    let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_owned);
    Some(FirstApproval {
        by: text("by").unwrap_or_default(),
        role: text("role"),
        at: text("at"),
        value: a.get("value").cloned().unwrap_or(Value::Null),
        note: text("note").filter(|n| !n.is_empty()),
    })
}

impl Engine {
    /// What resolving every open exception matching `filter` with `choice` would do, item by
    /// item, for `actor`. Nothing is written.
    pub async fn bulk_preview(
        &self,
        filter: &ExceptionFilter,
        choice: &Choice,
        actor: &Actor,
    ) -> Result<BulkPreview> {
        let filter = ExceptionFilter {
            status: Some("open".into()),
            limit: Some(filter.limit.unwrap_or(BULK_LIMIT).clamp(1, BULK_LIMIT)),
            ..filter.clone()
        };
        let ws = self.workspace();
        let mut items = Vec::new();
        for e in self.list_exceptions(&filter).await? {
            let golden = match e.record_id {
                Some(r) => self.golden(r).await?,
                None => Fields::new(),
            };
            let field = e.field.clone();
            let policy = field.as_deref().map(|f| ws.policy(&e.object, f));
            let four_eyes = policy.as_ref().is_some_and(|p| p.four_eyes);
            let schema = ws.object(&e.object);
            let chosen = match (field.as_deref(), &policy, schema) {
                (Some(f), Some(policy), Some(schema)) => {
                    Some(chosen_value(&e, f, choice, &golden).and_then(|value| {
                        check_resolution(schema, policy, e.id, f, choice, &value).map(|()| value)
                    }))
                }
                _ => None,
            };
            let (chosen, step, reason) = match (&field, chosen) {
                (None, _) | (_, None) => (
                    None,
                    BulkStep::Refused,
                    Some(format!(
                        "a {} is not about one field: it has its own resolution",
                        e.kind
                    )),
                ),
                (_, Some(Err(err))) => (None, BulkStep::Refused, Some(err.to_string())),
                (_, Some(Ok(value))) => {
                    let (step, reason) = match approval_step(four_eyes, &e, actor, &value) {
                        ApprovalStep::Apply => (BulkStep::Apply, None),
                        ApprovalStep::First => (BulkStep::FirstApproval, None),
                        ApprovalStep::Second => (BulkStep::SecondApproval, None),
                        ApprovalStep::SamePerson => (
                            BulkStep::Refused,
                            Some(format!(
                                "{} gave the first approval: a second person must approve",
                                actor.name
                            )),
                        ),
                    };
                    (Some(value), step, reason)
                }
            };
            let currency = match (&field, schema) {
                (Some(f), Some(schema)) => schema.currency_of(f, &golden),
                _ => None,
            };
            items.push(BulkItem {
                exception: e.id,
                kind: e.kind.clone(),
                object: e.object.clone(),
                record_id: e.record_id,
                current: field
                    .as_deref()
                    .and_then(|f| golden.get(f))
                    .cloned()
                    .unwrap_or(Value::Null),
                base: e.detail.get("base").cloned().unwrap_or(Value::Null),
                first_approval: first_approval(&e),
                system: e.system.clone(),
                field,
                chosen,
                four_eyes,
                step,
                reason,
                currency,
            });
        }
        Ok(BulkPreview {
            four_eyes: items.iter().filter(|i| i.four_eyes).count(),
            digest: digest(&items),
            items,
        })
    }

    /// Resolves every item of `preview` with `choice`. When its person was `shown` the
    /// preview, each exception is checked again against its shown values when written (see
    /// [`Engine::resolve_as_shown`]); otherwise each is resolved on the values it holds then.
    /// Items the preview refused are reported as failed.
    pub async fn resolve_set(
        &self,
        preview: &BulkPreview,
        choice: &Choice,
        note: &str,
        actor: &Actor,
        shown_set: bool,
    ) -> Result<BulkResolution> {
        let mut done = BulkResolution::default();
        for item in &preview.items {
            let Some(chosen) = item
                .chosen
                .clone()
                .filter(|_| item.step != BulkStep::Refused)
            else {
                let why = item.reason.as_deref().unwrap_or("refused");
                done.failed
                    .push(format!("exception {}: {why}", item.exception));
                continue;
            };
            let shown = Shown {
                digest: preview.digest.clone(),
                current: item.current.clone(),
                chosen,
            };
            match self
                .resolve_as_shown(
                    item.exception,
                    choice,
                    note,
                    actor,
                    Some(&shown).filter(|_| shown_set),
                )
                .await
            {
                Ok(ResolveOutcome::Applied) => done.applied += 1,
                Ok(ResolveOutcome::AwaitingSecondApproval) => done.awaiting_second_approval += 1,
                Err(err) => done
                    .failed
                    .push(format!("exception {}: {err}", item.exception)),
            }
        }
        Ok(done)
    }

    /// The currency of money field `field` of `record_id`, when the schema gives it one.
    pub async fn money_currency(
        &self,
        object: &str,
        field: &str,
        record_id: Option<RecordId>,
    ) -> Result<Option<String>> {
        let ws = self.workspace();
        let Some(schema) = ws.object(object) else {
            return Ok(None);
        };
        if schema
            .field(field)
            .and_then(|f| f.currency.as_ref())
            .is_none()
        {
            return Ok(None);
        }
        let golden = match record_id {
            Some(r) => self.golden(r).await?,
            None => Fields::new(),
        };
        Ok(schema.currency_of(field, &golden))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exception(approval: Option<Value>) -> ExceptionView {
        let mut detail =
            json!({ "base": "80000", "values": { "hris": "85000", "payroll": "82000" } });
        if let Some(a) = approval {
            detail["approval"] = a;
        }
        ExceptionView {
            id: 7,
            kind: "conflict".into(),
            object: "employee".into(),
            record_id: Some(1),
            system: Some("hris".into()),
            field: Some("pay_rate".into()),
            status: "open".into(),
            detail,
            created_at: String::new(),
            updated_at: String::new(),
            resolved_by: None,
            resolution: None,
            currency: None,
        }
    }

    fn person(name: &str, id: &str) -> Actor {
        Actor {
            name: name.into(),
            role: Some("steward".into()),
            id: Some(id.into()),
        }
    }

    #[test]
    fn a_four_eyes_value_needs_a_second_different_person_approving_the_same_value() {
        let ana = person("Ana", "tok_1");
        let bo = person("Bo", "tok_2");
        let v = json!("85000");
        let none = exception(None);
        assert_eq!(
            approval_step(false, &none, &ana, &v),
            ApprovalStep::Apply,
            "without four eyes one person applies"
        );
        assert_eq!(
            approval_step(true, &none, &ana, &v),
            ApprovalStep::First,
            "the first person only approves"
        );
        let approved = exception(Some(
            json!({ "value": "85000", "by": "Ana", "by_id": "tok_1" }),
        ));
        assert_eq!(
            approval_step(true, &approved, &bo, &v),
            ApprovalStep::Second,
            "another person approving the same value applies it"
        );
        assert_eq!(
            approval_step(true, &approved, &ana, &v),
            ApprovalStep::SamePerson,
            "the first approver cannot approve twice"
        );
        let renamed = person("  ana ", "tok_9");
        assert_eq!(
            approval_step(true, &approved, &renamed, &v),
            ApprovalStep::SamePerson,
            "the same name however spaced or cased is the same person"
        );
        assert_eq!(
            approval_step(true, &approved, &bo, &json!("90000")),
            ApprovalStep::First,
            "a different value starts a new first approval"
        );
    }

    #[test]
    fn the_approved_choice_is_the_first_approvers_value_and_nothing_without_one() {
        let golden = Fields::from([("pay_rate".to_owned(), json!("80500"))]);
        let approved = exception(Some(json!({ "value": "85000", "by": "Ana" })));
        assert_eq!(
            chosen_value(&approved, "pay_rate", &Choice::Approved, &golden).ok(),
            Some(json!("85000"))
        );
        assert!(
            chosen_value(&exception(None), "pay_rate", &Choice::Approved, &golden).is_err(),
            "no approval, no approved value"
        );
        assert_eq!(
            chosen_value(&approved, "pay_rate", &Choice::Golden, &golden).ok(),
            Some(json!("80500"))
        );
        assert_eq!(
            chosen_value(
                &approved,
                "pay_rate",
                &Choice::System("payroll".into()),
                &golden
            )
            .ok(),
            Some(json!("82000"))
        );
    }

    #[test]
    fn the_digest_changes_with_any_value_shown() {
        let item = |current: &str| BulkItem {
            exception: 7,
            kind: "conflict".into(),
            object: "employee".into(),
            record_id: Some(1),
            field: Some("pay_rate".into()),
            system: None,
            current: json!(current),
            chosen: Some(json!("85000")),
            base: Value::Null,
            four_eyes: true,
            first_approval: None,
            step: BulkStep::FirstApproval,
            reason: None,
            currency: None,
        };
        assert_eq!(digest(&[item("80500")]), digest(&[item("80500")]));
        assert_ne!(
            digest(&[item("80500")]),
            digest(&[item("80600")]),
            "a different current value is a different set"
        );
        let mut second = item("80500");
        second.step = BulkStep::SecondApproval;
        assert_ne!(
            digest(&[item("80500")]),
            digest(&[second]),
            "a different step is a different set"
        );
    }
}
