//! A system's plan: what the engine would write to a system whose writes are held (see
//! [`crate::model::SystemConfig::writes`]). Held writes are ordinary queued writes that
//! delivery does not claim, so they keep merging as changes arrive, and what enabling sends
//! is exactly what the plan shows: per write, its operation and each field's value in the
//! system now (`from`) and the value it would get (`to`), in canonical form.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;
use utoipa::ToSchema;

use crate::error::Result;
use crate::model::RecordId;
use crate::runtime::Engine;

/// How many writes a plan holds, and what else waits on a person for this system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanCounts {
    pub creates: i64,
    pub updates: i64,
    pub deletes: i64,
    /// Open conflicts and other exceptions raised by this system's changes.
    #[serde(default)]
    pub conflicts: i64,
    /// Its values refused by validation, and its writes refused for good (dead letters).
    #[serde(default)]
    pub rejections: i64,
    /// The id of the newest queued write these counts include (0 when none). A breaker
    /// decision that names it covers exactly the writes up to it, so writes queued while the
    /// admin reviewed are judged afresh, never released unseen.
    #[serde(default)]
    pub newest_write: i64,
}

impl PlanCounts {
    /// Whether two plans hold the same writes (conflicts and rejections aside).
    pub fn same_writes(&self, other: &Self) -> bool {
        (self.creates, self.updates, self.deletes) == (other.creates, other.updates, other.deletes)
    }
}

/// One field of a planned write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlannedField {
    pub field: String,
    /// The system's value now, as last read (null for a create).
    pub from: Value,
    /// The value the write would give it.
    pub to: Value,
}

/// One planned write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlannedWrite {
    pub id: i64,
    pub record_id: RecordId,
    pub object: String,
    /// `create`, `update` or `delete`.
    pub op: String,
    /// The record's id in the system (none for a create).
    pub external_id: Option<String>,
    pub fields: Vec<PlannedField>,
}

/// A page of a system's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanView {
    pub system: String,
    /// Whether its writes are held (`plan`) or already sent (`live`).
    pub writes: crate::model::WritesMode,
    pub counts: PlanCounts,
    pub items: Vec<PlannedWrite>,
    /// The circuit breaker's trip holding these writes, when it does.
    #[serde(default)]
    pub breaker: Option<crate::breaker::BreakerTrip>,
}

impl Engine {
    /// How many writes to `system` are queued (held, when its writes are), by operation.
    pub async fn plan_counts(&self, system: &str) -> Result<PlanCounts> {
        let mut counts = PlanCounts::default();
        let rows = sqlx::query(
            "SELECT op, COUNT(*), MAX(id) FROM outbox
             WHERE system_id = ? AND status IN ('pending', 'in_flight') GROUP BY op",
        )
        .bind(system)
        .fetch_all(self.pool())
        .await?;
        for r in rows {
            let n: i64 = r.get(1);
            match r.get::<String, _>(0).as_str() {
                "create" => counts.creates = n,
                "update" => counts.updates = n,
                _ => counts.deletes += n,
            }
            counts.newest_write = counts.newest_write.max(r.get::<i64, _>(2));
        }
        counts.conflicts = sqlx::query_scalar(
            "SELECT COUNT(*) FROM exceptions WHERE status = 'open' AND system_id = ? AND kind != 'validation'",
        )
        .bind(system)
        .fetch_one(self.pool())
        .await?;
        counts.rejections = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM exceptions WHERE status = 'open' AND system_id = ?1 AND kind = 'validation')
                  + (SELECT COUNT(*) FROM dead_letters WHERE status = 'dead' AND system_id = ?1)",
        )
        .bind(system)
        .fetch_one(self.pool())
        .await?;
        Ok(counts)
    }

    /// A page of the writes queued to `system`, oldest first, optionally of one operation.
    pub async fn planned_writes(
        &self,
        system: &str,
        op: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<PlannedWrite>> {
        let rows = sqlx::query(
            "SELECT o.id, o.record_id, o.object, o.op, COALESCE(o.external_id, l.external_id),
                    o.canonical, o.base
             FROM outbox o
             LEFT JOIN links l ON l.record_id = o.record_id AND l.system_id = o.system_id AND l.deleted = 0
             WHERE o.system_id = ? AND o.status IN ('pending', 'in_flight') AND (? IS NULL OR o.op = ?)
             ORDER BY o.id LIMIT ? OFFSET ?",
        )
        .bind(system)
        .bind(op)
        .bind(op)
        .bind(limit)
        .bind(offset)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(planned_write).collect()
    }
}

fn planned_write(r: &sqlx::sqlite::SqliteRow) -> Result<PlannedWrite> {
    let op: String = r.get(3);
    let canonical: Map<String, Value> = serde_json::from_str(&r.get::<String, _>(5))?;
    let base: Map<String, Value> = serde_json::from_str(&r.get::<String, _>(6))?;
    let fields = canonical
        .into_iter()
        .map(|(field, to)| PlannedField {
            from: if op == "create" {
                Value::Null
            } else {
                base.get(&field).cloned().unwrap_or(Value::Null)
            },
            field,
            to,
        })
        .collect();
    Ok(PlannedWrite {
        id: r.get(0),
        record_id: r.get(1),
        object: r.get(2),
        op,
        external_id: r.get(4),
        fields,
    })
}

/// The plan as CSV, one row per field of each write (a delete has one row with no field):
/// `op,record_id,object,external_id,field,from,to`, values as JSON text.
pub fn to_csv(items: &[PlannedWrite]) -> String {
    let mut out = String::from("op,record_id,object,external_id,field,from,to\r\n");
    let mut row = |w: &PlannedWrite, field: &str, from: &str, to: &str| {
        let cells = [
            w.op.as_str(),
            &w.record_id.to_string(),
            &w.object,
            w.external_id.as_deref().unwrap_or(""),
            field,
            from,
            to,
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    };
    for w in items {
        if w.fields.is_empty() {
            row(w, "", "", "");
        }
        for f in &w.fields {
            let text = |v: &Value| match v {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            row(w, &f.field, &text(&f.from), &text(&f.to));
        }
    }
    out
}

/// One CSV cell (RFC 4180): quoted when it holds a comma, quote or line break, and a cell a
/// spreadsheet would run as a formula is prefixed with an apostrophe.
fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let items = vec![PlannedWrite {
            id: 1,
            record_id: 7,
            object: "employee".into(),
            op: "update".into(),
            external_id: Some("E-7".into()),
            fields: vec![
                PlannedField {
                    field: "job_title".into(),
                    from: json!("Engineer, Senior"),
                    to: json!("=HYPERLINK(\"x\")"),
                },
                PlannedField {
                    field: "salary".into(),
                    from: json!(80500),
                    to: Value::Null,
                },
            ],
        }];
        assert_eq!(
            to_csv(&items),
            "op,record_id,object,external_id,field,from,to\r\n\
             update,7,employee,E-7,job_title,\"Engineer, Senior\",\"'=HYPERLINK(\"\"x\"\")\"\r\n\
             update,7,employee,E-7,salary,80500,\r\n"
        );
    }
}
