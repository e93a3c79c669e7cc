//! Sending one claimed write with the strongest concurrency control its target has, so that a
//! write never overwrites a change the engine has not seen:
//!
//! - a target with ETags or a version field gets `If-Match` (or the version in the body) with
//!   the opaque token it last gave; a 412 means the record changed, and it is read again;
//! - a target with neither is read first: each field the write touches is compared with what
//!   the engine last agreed with that target (its shadow). A difference is a concurrent change:
//!   nothing is sent, the record as read goes back through the merge, and the write is planned
//!   again from there;
//! - a write that must keep what it does not map (nested objects and arrays under a one-level
//!   PATCH merge, or a full-replace PUT) is composed onto the record as just read;
//! - a create whose last attempt may have reached the target without an answer is first looked
//!   up there by the object's match keys, so a target without idempotency keys never gets it
//!   twice.
//!
//! The deciding parts ([`needs_read`], [`concurrent_changes`], [`compose`]) are pure.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::connector::{
    Capabilities, Connector, ConnectorError, FetchedRecord, WriteOutcome, WriteRequest,
};
use crate::mapping::{Assignment, apply_assignments, plain_top_level, touched_top_level};
use crate::model::{Fields, Mapping, ObjectSchema, RecordId, SourceVersion};
use crate::workspace::Workspace;

/// A claimed outbox row, with what the sender needs to know about its target.
#[derive(Debug, Clone)]
pub(crate) struct Claimed {
    pub id: i64,
    pub record_id: RecordId,
    pub object: String,
    pub op: String,
    pub external_id: Option<String>,
    pub canonical: Fields,
    pub payload: Map<String, Value>,
    /// The write as (system path, value) assignments.
    pub ops: Vec<Assignment>,
    pub base: Fields,
    /// The ordering version the write was planned against.
    pub if_match: Option<SourceVersion>,
    /// The target's current concurrency token for the record (from its link).
    pub etag: Option<String>,
    /// What the engine last agreed with the target about this record.
    pub shadow: Fields,
    pub idempotency_key: String,
    pub attempts: i64,
    pub outcome_unknown: bool,
}

/// The HTTP request a write was sent as: kept on its dead letter, shown in previews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SentRequest {
    pub method: String,
    pub path: String,
    pub body: Option<Map<String, Value>>,
}

/// Why a record was read again instead of being written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reread {
    /// The target refused the write as out of date (412).
    VersionConflict,
    /// Read before writing: these fields changed in the target since the engine last agreed.
    ChangedBeforeWrite(Vec<String>),
}

pub(crate) enum Outcome {
    Sent {
        outcome: WriteOutcome,
        /// A create found already done in the target (its earlier attempt had reached it).
        found_existing: bool,
    },
    Failed {
        error: ConnectorError,
        request: Option<SentRequest>,
    },
    /// The record as it is now in the target (None if it is gone), and why it was read.
    Refetched(Option<FetchedRecord>, Reread),
    /// The write waits for its record to be created in the target first.
    Waiting,
    /// 412 from a system that sends change events: wait for them instead of re-reading.
    AwaitEvents,
}

impl Outcome {
    fn failed(error: ConnectorError, request: Option<SentRequest>) -> Self {
        Self::Failed { error, request }
    }
}

/// Whether an update must read the record first: the target has no concurrency control, its
/// token is unknown, or the body must be composed onto the record as last read (a full
/// replace, or paths below the top level that a one-level merge would wipe).
pub(crate) fn needs_read(caps: &Capabilities, etag: Option<&str>, ops: &[Assignment]) -> bool {
    let composes = !caps.path_writes && (!caps.partial_update || !plain_top_level(ops));
    !caps.versioned_writes || etag.is_none() || composes
}

/// The fields a write touches whose value in the target, as just read, is neither what the
/// engine last agreed with it (the shadow) nor what the write would put there: changes made
/// there that the engine has not seen. Values the mapping cannot read are not counted (they
/// are reported as validation exceptions when the record is read by polling).
pub(crate) fn concurrent_changes(
    mapping: &Mapping,
    schema: &ObjectSchema,
    current: &Map<String, Value>,
    shadow: &Fields,
    writing: &Fields,
) -> Vec<String> {
    let mut inbound = mapping.read(schema, current);
    inbound.settle(shadow, writing);
    writing
        .iter()
        .filter(|(field, wanted)| {
            let Some(now) = inbound.values.get(*field) else {
                return false;
            };
            let base = shadow.get(*field).unwrap_or(&Value::Null);
            now != base && now != *wanted
        })
        .map(|(field, _)| field.clone())
        .collect()
}

/// The body of an update composed onto the record as last read: the whole record for a full
/// replace, else only the top-level members the write touches, each whole, so that a system
/// merging one level deep keeps their other members. An assignment the record cannot hold
/// (say, an array index past its end) is an error naming the path: nothing is sent.
pub(crate) fn compose(
    current: &Map<String, Value>,
    ops: &[Assignment],
    partial: bool,
) -> Result<Map<String, Value>, String> {
    let mut doc = current.clone();
    apply_assignments(&mut doc, ops).map_err(|refused| {
        refused
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if !partial {
        return Ok(doc);
    }
    let touched: BTreeSet<String> = touched_top_level(ops);
    Ok(doc
        .into_iter()
        .filter(|(k, _)| touched.contains(k))
        .collect())
}

/// A payload as (path, value) assignments, for writes queued before assignments were kept:
/// nested objects become one assignment per leaf, so applying them keeps their siblings.
pub(crate) fn assignments_from_payload(payload: &Map<String, Value>) -> Vec<Assignment> {
    fn walk(prefix: &str, map: &Map<String, Value>, out: &mut Vec<Assignment>) {
        for (k, v) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}/{k}")
            };
            match v {
                Value::Object(inner) if !inner.is_empty() => walk(&path, inner, out),
                other => out.push((path, other.clone())),
            }
        }
    }
    let mut out = Vec::new();
    walk("", payload, &mut out);
    out
}

/// The (system path, value) pairs that identify a record in the target by the first match key
/// the write carries.
fn lookup_criteria(ws: &Workspace, system: &str, row: &Claimed) -> Vec<(String, Value)> {
    let (Some(schema), Some(mapping)) = (ws.object(&row.object), ws.mapping(system, &row.object))
    else {
        return Vec::new();
    };
    for key in &schema.match_keys {
        if row.canonical.get(key).is_none_or(Value::is_null) {
            continue;
        }
        let fields: BTreeSet<String> = std::iter::once(key.clone()).collect();
        // A key written to several paths (an id kept in two attributes) must be found at all
        // of them.
        if let Ok(assignments) = mapping.assignments(&fields, &row.canonical, false)
            && !assignments.is_empty()
            && assignments.iter().all(|(_, v)| !v.is_null())
        {
            return assignments;
        }
    }
    Vec::new()
}

fn describe(
    connector: &dyn Connector,
    op: &str,
    external_id: Option<&str>,
    object: &str,
    body: Option<&Map<String, Value>>,
) -> Option<SentRequest> {
    connector
        .describe_write(op, external_id, object)
        .map(|(method, path)| SentRequest {
            method,
            path,
            body: body.cloned(),
        })
}

/// Sends one write and classifies what happened.
pub(crate) async fn send_one(
    connector: &dyn Connector,
    ws: &Workspace,
    system: &str,
    row: &Claimed,
) -> Outcome {
    let mut write = WriteRequest {
        object: row.object.clone(),
        payload: row.payload.clone(),
        idempotency_key: row.idempotency_key.clone(),
        if_match: row.etag.clone(),
        assignments: Vec::new(),
    };
    match (row.op.as_str(), row.external_id.as_deref()) {
        ("create", _) => send_create(connector, ws, system, row, &write).await,
        ("update", Some(id)) => {
            let caps = connector.capabilities();
            // Only a connector that writes by path reads them; the others get the payload.
            if caps.path_writes {
                write.assignments = row.ops.clone();
            }
            if needs_read(&caps, row.etag.as_deref(), &row.ops) {
                let current = match connector.get(&row.object, id).await {
                    Ok(Some(current)) => current,
                    Ok(None) => {
                        return Outcome::failed(
                            ConnectorError::NotFound {
                                system: system.to_owned(),
                                external_id: id.to_owned(),
                            },
                            None,
                        );
                    }
                    Err(e) => return Outcome::failed(e, None),
                };
                if let (Some(schema), Some(mapping)) =
                    (ws.object(&row.object), ws.mapping(system, &row.object))
                {
                    let changed = concurrent_changes(
                        mapping,
                        schema,
                        &current.record,
                        &row.shadow,
                        &row.canonical,
                    );
                    if !changed.is_empty() {
                        return Outcome::Refetched(
                            Some(current),
                            Reread::ChangedBeforeWrite(changed),
                        );
                    }
                }
                write.payload = match compose(&current.record, &row.ops, caps.partial_update) {
                    Ok(body) => body,
                    Err(message) => {
                        return Outcome::failed(
                            ConnectorError::Rejected {
                                system: system.to_owned(),
                                status: 422,
                                body: format!(
                                    "the write cannot be applied to the record as {system} holds it: {message}"
                                ),
                            },
                            None,
                        );
                    }
                };
                write.if_match = current.etag.clone();
            }
            finish(
                connector,
                row,
                id,
                connector.update(id, &write).await,
                &write,
            )
            .await
        }
        ("delete", Some(id)) => {
            let result = connector.delete(id, &write).await;
            finish(connector, row, id, result, &write).await
        }
        _ => Outcome::Waiting,
    }
}

async fn send_create(
    connector: &dyn Connector,
    ws: &Workspace,
    system: &str,
    row: &Claimed,
    write: &WriteRequest,
) -> Outcome {
    if row.outcome_unknown {
        let criteria = lookup_criteria(ws, system, row);
        if !criteria.is_empty() {
            match connector.find(&row.object, &criteria).await {
                // A connector that cannot list cannot look records up: the create goes again
                // with its idempotency key, the only guard such a system offers.
                Err(ConnectorError::Config(_)) => {}
                Err(e) => return Outcome::failed(e, None),
                Ok(found) if found.len() == 1 => {
                    let f = &found[0];
                    return Outcome::Sent {
                        outcome: WriteOutcome {
                            external_id: f.external_id.clone(),
                            version: f.version,
                            etag: f.etag.clone(),
                        },
                        found_existing: true,
                    };
                }
                Ok(found) if found.len() > 1 => {
                    let ids: Vec<&str> = found.iter().map(|f| f.external_id.as_str()).collect();
                    return Outcome::failed(
                        ConnectorError::Rejected {
                            system: system.to_owned(),
                            status: 409,
                            body: format!(
                                "an earlier attempt of this create may have reached {system}, and \
                                 {} records there match it ({}); a person decides which one it is",
                                found.len(),
                                ids.join(", ")
                            ),
                        },
                        None,
                    );
                }
                Ok(_) => {}
            }
        }
    }
    match connector.create(write).await {
        Ok(outcome) => Outcome::Sent {
            outcome,
            found_existing: false,
        },
        Err(e) => {
            let request = describe(connector, "create", None, &row.object, Some(&write.payload));
            Outcome::failed(e, request)
        }
    }
}

/// Classifies an update's or a delete's answer; a 412 reads the record again (or waits for
/// the events of a system that sends them).
async fn finish(
    connector: &dyn Connector,
    row: &Claimed,
    id: &str,
    result: Result<WriteOutcome, ConnectorError>,
    write: &WriteRequest,
) -> Outcome {
    match result {
        Ok(outcome) => Outcome::Sent {
            outcome,
            found_existing: false,
        },
        Err(ConnectorError::VersionConflict { .. }) if connector.capabilities().webhooks => {
            Outcome::AwaitEvents
        }
        Err(ConnectorError::VersionConflict { system }) => {
            match connector.get(&row.object, id).await {
                // The record did not change: the system refuses its own token (a weak ETag under
                // strong comparison, say). Reading again cannot help; a person must look.
                Ok(Some(record)) if record.etag.is_some() && record.etag == write.if_match => {
                    let body = (row.op != "delete").then_some(&write.payload);
                    Outcome::failed(
                        ConnectorError::Rejected {
                            body: format!(
                                "{system} refused the write with 412, yet the record still has the \
                                 token the write carried ({}): the system refuses its own concurrency \
                                 token (for example a weak ETag where it compares strongly)",
                                record.etag.as_deref().unwrap_or_default()
                            ),
                            system,
                            status: 412,
                        },
                        describe(connector, &row.op, Some(id), &row.object, body),
                    )
                }
                Ok(record) => Outcome::Refetched(record, Reread::VersionConflict),
                Err(e) => Outcome::failed(e, None),
            }
        }
        Err(e) => {
            let body = (row.op != "delete").then_some(&write.payload);
            let request = describe(connector, &row.op, Some(id), &row.object, body);
            Outcome::failed(e, request)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(pairs: &[(&str, Value)]) -> Vec<Assignment> {
        pairs
            .iter()
            .map(|(p, v)| ((*p).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn a_nested_change_keeps_its_siblings_under_a_one_level_merge() {
        let current =
            json!({ "id": 7, "name": "Ada", "contact": { "email": "old@x", "mobile": "+1555" } });
        let current = current.as_object().cloned().unwrap_or_default();
        let body = compose(&current, &ops(&[("contact/email", json!("new@x"))]), true)
            .expect("a nested path composes");
        assert_eq!(
            Value::Object(body),
            json!({ "contact": { "email": "new@x", "mobile": "+1555" } }),
            "the whole nested object as last read goes out, with only the change applied"
        );
    }

    #[test]
    fn a_full_replace_sends_the_record_as_last_read_with_the_changes() {
        let current = json!({ "id": 7, "name": "Ada", "unmapped": "keep me" });
        let current = current.as_object().cloned().unwrap_or_default();
        let body = compose(&current, &ops(&[("name", json!("Ada L"))]), false)
            .expect("a flat path composes");
        assert_eq!(
            Value::Object(body),
            json!({ "id": 7, "name": "Ada L", "unmapped": "keep me" }),
            "attributes the mapping does not touch survive a PUT"
        );
    }

    #[test]
    fn reads_happen_without_concurrency_control_or_for_nested_paths() {
        let versioned = Capabilities {
            versioned_writes: true,
            ..Capabilities::default()
        };
        let flat = ops(&[("name", json!("x"))]);
        let nested = ops(&[("contact/email", json!("x"))]);
        assert!(
            !needs_read(&versioned, Some("W/\"3\""), &flat),
            "a flat PATCH with a known token is sent with If-Match"
        );
        assert!(
            needs_read(&versioned, None, &flat),
            "an unknown token is read first"
        );
        assert!(
            needs_read(&versioned, Some("\"3\""), &nested),
            "a nested path is composed onto the record as read"
        );
        assert!(
            needs_read(&Capabilities::default(), Some("\"3\""), &flat),
            "a system without concurrency control is read before every write"
        );
        let by_path = Capabilities {
            path_writes: true,
            ..versioned
        };
        assert!(
            !needs_read(&by_path, Some("W/\"3\""), &nested),
            "a connector that writes by path sends a nested change with If-Match, unread"
        );
        assert!(
            needs_read(&by_path, None, &nested),
            "without a token even a path write reads first"
        );
    }

    #[test]
    fn legacy_payloads_become_one_assignment_per_leaf() {
        let payload = json!({ "name": "x", "contact": { "email": "e" } });
        let payload = payload.as_object().cloned().unwrap_or_default();
        assert_eq!(
            assignments_from_payload(&payload),
            ops(&[("name", json!("x")), ("contact/email", json!("e"))]),
            "nested members are separate assignments, so their siblings survive"
        );
    }
}
