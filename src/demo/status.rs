//! What the demo prints while it runs: the initial sync's progress, a summary of it, and then
//! every two seconds a status line (edits, events in and out, queues, retries, open exceptions
//! by kind, dead letters by class) with a line for each new exception, dead letter, and
//! decision the engine took by rule (a later write winning, a non-owner's change put back, a
//! new person created). Sensitive values are never printed.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use super::{SimStats, by_kind, queue_depths};
use crate::model::RecordId;
use crate::ops::{DeadLetterFilter, ExceptionFilter};
use crate::poll::ListingProgress;
use crate::runtime::Engine;

pub(crate) fn listing_line(name: &str, p: &ListingProgress) -> String {
    let total = p.total.map_or_else(|| "?".into(), |t| t.to_string());
    let eta = match p.eta_secs {
        Some(s) if !p.done => format!(", ETA {} s", s.ceil()),
        _ => String::new(),
    };
    format!(
        "initial sync: {}/{total} employees from {name}{eta}",
        p.listed
    )
}

/// A progress line: rewritten in place on a terminal, one line each otherwise.
pub(crate) fn progress(line: &str) {
    let mut out = std::io::stdout();
    if out.is_terminal() {
        let _ = write!(out, "\r\x1b[2K{line}");
        let _ = out.flush();
    } else {
        let _ = writeln!(out, "{line}");
    }
}

pub(crate) fn progress_done() {
    let mut out = std::io::stdout();
    if out.is_terminal() {
        let _ = writeln!(out);
    }
}

pub(crate) async fn initial_summary(engine: &Engine, took: Duration) -> anyhow::Result<String> {
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(engine.pool())
            .await
    };
    let linked = count("SELECT COUNT(*) FROM audit WHERE rule = 'first_contact:linked'").await?;
    let to_payroll = count(
        "SELECT COUNT(*) FROM outbox WHERE system_id = 'payroll' AND op = 'create' AND status = 'sent'",
    )
    .await?;
    let to_hris = count(
        "SELECT COUNT(*) FROM outbox WHERE system_id = 'hris' AND op = 'create' AND status = 'sent'",
    )
    .await?;
    let to_directory = count(
        "SELECT COUNT(*) FROM outbox WHERE system_id = 'directory' AND op = 'create' AND status = 'sent'",
    )
    .await?;
    let updates =
        count("SELECT COUNT(*) FROM outbox WHERE op = 'update' AND status = 'sent'").await?;
    let exceptions = engine
        .list_exceptions(&ExceptionFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await?;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for e in exceptions {
        *kinds.entry(e.kind).or_default() += 1;
    }
    Ok(format!(
        "initial sync done in {took:.1?}: {linked} people matched by employee number, \
         {to_payroll} created in payroll, {to_hris} created in the HRIS, {to_directory} \
         provisioned in the directory, {updates} records corrected; open exceptions: {}",
        by_kind(&kinds)
    ))
}

/// Every two seconds: one status line, and a line for each new exception and dead letter.
pub(crate) async fn status_loop(
    engine: Engine,
    sim: Arc<Mutex<SimStats>>,
    since: Instant,
    cancel: CancellationToken,
) {
    // What the initial sync produced was summed up already; from here on, what is new.
    let max = |sql: &'static str| {
        let engine = engine.clone();
        async move {
            sqlx::query_scalar::<_, Option<i64>>(sql)
                .fetch_one(engine.pool())
                .await
                .ok()
                .flatten()
                .unwrap_or(0)
        }
    };
    let mut seen = Seen {
        exception: max("SELECT MAX(id) FROM exceptions").await,
        dead: max("SELECT MAX(id) FROM dead_letters").await,
        audit: max("SELECT MAX(id) FROM audit").await,
    };
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        match status(&engine, &sim, since, &mut seen).await {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
            }
            Err(e) => tracing::warn!(error = %e, "demo status line failed"),
        }
    }
}

async fn employee_number(engine: &Engine, record: Option<RecordId>) -> String {
    match record {
        Some(r) => engine
            .golden(r)
            .await
            .ok()
            .and_then(|g| {
                g.get("employee_number")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| format!("record {r}")),
        None => "a new record".into(),
    }
}

/// What a system said when it refused a write: its message, if its body is JSON with one.
fn refusal(body: Option<&str>) -> String {
    let body = body.unwrap_or_default();
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.get("message")
            .or_else(|| v.pointer("/error/message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let text = message.unwrap_or_else(|| body.to_owned());
    crate::connector::truncate(&text, 160)
}

/// The last exception, dead letter and audit entry already shown.
struct Seen {
    exception: i64,
    dead: i64,
    audit: i64,
}

/// Decisions the engine took by rule that are worth a line: the later write winning a
/// conflict, a change by a system that does not own the field put back, a new person.
async fn decisions(engine: &Engine, after: i64) -> anyhow::Result<(Vec<String>, i64)> {
    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM audit")
        .fetch_one(engine.pool())
        .await?;
    let last = last.unwrap_or(after).max(after);
    let rows = sqlx::query(
        "SELECT id, rule, system_id, record_id, field FROM audit WHERE id > ? AND id <= ?
           AND (rule LIKE 'rule4:conflict:last_write_wins:%' OR rule = 'rule3:non_owner:revert'
                OR rule = 'first_contact:created')
         ORDER BY id LIMIT 200",
    )
    .bind(after)
    .bind(last)
    .fetch_all(engine.pool())
    .await?;
    let mut lines = Vec::new();
    for r in &rows {
        let rule: String = r.get("rule");
        let system: Option<String> = r.get("system_id");
        let system = system.unwrap_or_default();
        let field: Option<String> = r.get("field");
        let field = field.unwrap_or_default();
        let who = employee_number(engine, r.get("record_id")).await;
        lines.push(match rule.as_str() {
            "rule4:conflict:last_write_wins:incoming_won" => format!(
                "         ~ {who} {field}: changed in both systems; {system}'s later change wins"
            ),
            "rule4:conflict:last_write_wins:golden_kept" => format!(
                "         ~ {who} {field}: changed in both systems; {system}'s change was earlier, \
                 the later one stays"
            ),
            "rule3:non_owner:revert" => format!(
                "         < {who} {field}: changed in {system}, which does not own it; put back"
            ),
            _ => format!("         + {who}: new in {system}; creating it in the other systems"),
        });
    }
    Ok((lines, last))
}

async fn status(
    engine: &Engine,
    sim: &Arc<Mutex<SimStats>>,
    since: Instant,
    seen: &mut Seen,
) -> anyhow::Result<Vec<String>> {
    const SHOW: usize = 4;
    let mut lines = Vec::new();
    let exceptions = engine
        .list_exceptions(&ExceptionFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await?;
    let dead = engine
        .list_dead_letters(&DeadLetterFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await?;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for e in &exceptions {
        *kinds.entry(e.kind.clone()).or_default() += 1;
    }
    let mut classes: BTreeMap<String, usize> = BTreeMap::new();
    for d in &dead {
        *classes.entry(d.error_class.clone()).or_default() += 1;
    }
    let edits = sim.lock().map(|s| s.edits).unwrap_or_default();
    let (inbox, outbox) = queue_depths(engine).await?;
    lines.push(format!(
        "[{:>4}s] edits {edits} | events in {} out {} | queued {} | retries {} | exceptions: {} | dead letters: {}",
        since.elapsed().as_secs(),
        engine.counter("events_in").await?,
        engine.counter("events_out").await?,
        inbox + outbox,
        engine.counter("retries").await?,
        by_kind(&kinds),
        by_kind(&classes)
    ));
    let new: Vec<_> = exceptions
        .iter()
        .filter(|e| e.id > seen.exception)
        .collect();
    for e in new.iter().take(SHOW) {
        let message = e
            .detail
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        lines.push(format!(
            "         ! {} on {} {}: {}",
            e.kind,
            employee_number(engine, e.record_id).await,
            e.field.as_deref().unwrap_or("-"),
            crate::connector::truncate(message, 160)
        ));
    }
    if new.len() > SHOW {
        lines.push(format!("         ! ... and {} more", new.len() - SHOW));
    }
    seen.exception = exceptions
        .iter()
        .map(|e| e.id)
        .max()
        .unwrap_or(seen.exception);
    let new: Vec<_> = dead.iter().filter(|d| d.id > seen.dead).collect();
    for d in new.iter().take(SHOW) {
        lines.push(format!(
            "         x dead letter ({}) on {}: {} answered {}: {}",
            d.error_class,
            employee_number(engine, d.record_id).await,
            d.system,
            d.response_status
                .map_or_else(|| "-".into(), |s| s.to_string()),
            refusal(d.response_body.as_deref())
        ));
    }
    if new.len() > SHOW {
        lines.push(format!("         x ... and {} more", new.len() - SHOW));
    }
    seen.dead = dead.iter().map(|d| d.id).max().unwrap_or(seen.dead);
    let (decided, last) = decisions(engine, seen.audit).await?;
    seen.audit = last;
    let more = decided.len().saturating_sub(SHOW);
    lines.extend(decided.into_iter().take(SHOW));
    if more > 0 {
        lines.push(format!("         ... and {more} more"));
    }
    Ok(lines)
}
