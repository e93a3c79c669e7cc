//! Audit entries: the append-only record of every applied change and every decision, with
//! the rule that decided. Planned by the merge (pure), written by the store in the same
//! transaction as the change they describe. SQLite triggers refuse updates and deletes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::RecordId;

/// Which way a change moved relative to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A system's change taken into the golden record.
    In,
    /// A write to a system.
    Out,
    /// A decision inside the engine (exception opened, resolution, replay, discard).
    Internal,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
            Self::Internal => "internal",
        }
    }
}

/// Who made a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    pub role: Option<String>,
    /// The stable id of the principal (the console token's id, `tok_…`); none for the engine
    /// and for people acting outside the console.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl Actor {
    pub fn engine() -> Self {
        Self {
            name: "engine".into(),
            role: None,
            id: None,
        }
    }

    pub fn person(name: &str, role: &str) -> Self {
        Self {
            name: name.into(),
            role: Some(role.into()),
            id: None,
        }
    }

    /// The same person, known by a principal id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Whether this actor and an earlier one are the same person: the same principal id, or
    /// the same name once trimmed, whitespace collapsed and case folded (two tokens issued to
    /// one person are still one person).
    pub fn same_person(&self, id: Option<&str>, name: Option<&str>) -> bool {
        let same_id = matches!((self.id.as_deref(), id), (Some(a), Some(b)) if a == b);
        same_id || name.is_some_and(|n| person_key(n) == person_key(&self.name))
    }
}

/// A person's name as people write it: trimmed, runs of whitespace made one space.
pub fn normalize_name(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What tells people apart by name: the normalised name, case folded.
pub fn person_key(name: &str) -> String {
    normalize_name(name).to_lowercase()
}

/// One audit row, before it is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub actor: Actor,
    pub system: Option<String>,
    pub direction: Direction,
    pub record_id: Option<RecordId>,
    pub object: Option<String>,
    pub field: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub rule: String,
    pub detail: Option<Value>,
}

impl AuditEntry {
    pub fn engine(rule: impl Into<String>, direction: Direction) -> Self {
        Self {
            actor: Actor::engine(),
            system: None,
            direction,
            record_id: None,
            object: None,
            field: None,
            before: None,
            after: None,
            rule: rule.into(),
            detail: None,
        }
    }

    pub fn system(mut self, system: &str) -> Self {
        self.system = Some(system.to_owned());
        self
    }

    pub fn record(mut self, object: &str, record_id: RecordId) -> Self {
        self.object = Some(object.to_owned());
        self.record_id = Some(record_id);
        self
    }

    pub fn field(mut self, field: &str, before: Option<&Value>, after: Option<&Value>) -> Self {
        self.field = Some(field.to_owned());
        self.before = before.cloned();
        self.after = after.cloned();
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    pub fn by(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }
}
