//! History retention on a real state file: applied events, acknowledged writes and metric
//! samples past their retention are dropped; the audit, and whatever a dead letter points at,
//! stay; ids are never reused; the engine syncs on afterwards.

mod common;

use common::{Harness, ada};
use concord::clock::ManualClock;
use concord::retention::Retention;
use serde_json::json;

async fn count(h: &Harness, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(h.engine.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn employee(n: usize) -> serde_json::Value {
    let mut e = ada();
    e["employee_id"] = json!(format!("E{n:04}"));
    e["email"] = json!(format!("person{n}@acme.example"));
    e
}

#[tokio::test]
async fn history_past_its_retention_goes_and_what_is_still_needed_stays() {
    let start = chrono::Utc::now() - chrono::Duration::days(30);
    let clock = ManualClock::new(start);
    let h = Harness::start_on(&clock).await;
    for n in 0..20 {
        h.hris.edit(&format!("H{n}"), employee(n));
    }
    h.settle().await;
    // A write the payroll refuses for good: a dead letter that support may still replay.
    h.payroll
        .fail_next_with(422, json!({ "error": "email domain is not allowed" }));
    h.hris
        .edit("H3", json!({ "email": "h3@elsewhere.example" }));
    h.settle().await;
    h.engine.sample_metrics().await.expect("a metrics sample");
    let dead_write: i64 = count(
        &h,
        "SELECT outbox_id FROM dead_letters WHERE kind = 'write' AND status = 'dead'",
    )
    .await;
    let old_events = count(&h, "SELECT COUNT(*) FROM inbox").await;
    let old_writes = count(&h, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'").await;
    let newest_event = count(&h, "SELECT MAX(id) FROM inbox").await;
    let newest_write = count(&h, "SELECT MAX(id) FROM outbox").await;
    assert!(
        old_events >= 40 && old_writes >= 20,
        "the creates and their echoes went through: {old_events} events, {old_writes} writes"
    );

    // Fifteen days later, a fresh change: it is inside the retention and must stay.
    clock.advance(chrono::Duration::days(15));
    h.hris.edit("H7", json!({ "email": "h7@acme.example" }));
    h.settle().await;
    let audit_before = count(&h, "SELECT COUNT(*) FROM audit").await;

    let done = h
        .engine
        .compact_history(&Retention::default())
        .await
        .expect("compaction runs");

    let remaining_old_events = count(
        &h,
        &format!("SELECT COUNT(*) FROM inbox WHERE id <= {newest_event}"),
    )
    .await;
    assert_eq!(
        remaining_old_events, 0,
        "events applied more than 14 days ago are dropped (the newest then is no longer the newest)"
    );
    assert_eq!(
        i64::try_from(done.events).expect("fits"),
        old_events,
        "the compaction reports each event it dropped"
    );
    assert!(
        count(&h, "SELECT COUNT(*) FROM inbox").await >= 2,
        "the fresh edit and its echo are kept"
    );
    assert_eq!(
        count(
            &h,
            &format!("SELECT COUNT(*) FROM outbox WHERE id = {dead_write}")
        )
        .await,
        1,
        "a write a dead letter points at stays, however old"
    );
    assert_eq!(
        count(
            &h,
            &format!(
                "SELECT COUNT(*) FROM outbox WHERE id <= {newest_write} AND id <> {dead_write}"
            )
        )
        .await,
        0,
        "writes acknowledged more than 14 days ago are dropped"
    );
    assert!(
        count(&h, "SELECT COUNT(*) FROM outbox WHERE status = 'sent'").await >= 1,
        "the fresh write is kept"
    );
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM metrics_samples").await,
        0,
        "metric samples older than 7 days are dropped"
    );
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM audit").await,
        audit_before,
        "the audit is never compacted"
    );
    assert_eq!(
        count(&h, "PRAGMA freelist_count").await,
        0,
        "a new state file hands the freed pages back (auto_vacuum = incremental)"
    );
    assert_eq!(
        h.engine
            .counter("history_compacted")
            .await
            .expect("counter"),
        i64::try_from(done.total()).expect("fits"),
        "what was dropped is counted"
    );

    // The engine syncs on, and never hands out an id it gave before.
    let kept_event = count(&h, "SELECT MAX(id) FROM inbox").await;
    clock.advance(chrono::Duration::days(15));
    let again = h
        .engine
        .compact_history(&Retention::default())
        .await
        .expect("compaction runs");
    assert_eq!(
        count(&h, "SELECT MAX(id) FROM inbox").await,
        kept_event,
        "the newest event stays even when it is past the retention ({again:?})"
    );
    h.hris.edit("H9", json!({ "email": "h9@acme.example" }));
    h.settle().await;
    let (payroll_id, _) = h
        .payroll
        .records()
        .into_iter()
        .find(|(_, r)| r.get("emp_no") == Some(&json!("E0009")))
        .expect("E0009 is in payroll");
    assert_eq!(
        h.payroll
            .record(&payroll_id)
            .and_then(|r| r.get("email").cloned()),
        Some(json!("h9@acme.example")),
        "a change after compaction still reaches the other system"
    );
    assert!(
        count(&h, "SELECT MIN(id) FROM inbox WHERE id > 0").await >= kept_event,
        "new events are numbered after every event there ever was"
    );
}

#[tokio::test]
async fn the_compact_command_shrinks_the_file_and_keeps_the_audit() {
    let start = chrono::Utc::now() - chrono::Duration::days(30);
    let clock = ManualClock::new(start);
    let h = Harness::start_on(&clock).await;
    for n in 0..200 {
        h.hris.edit(&format!("H{n}"), employee(n));
    }
    h.settle().await;
    let audit = count(&h, "SELECT COUNT(*) FROM audit").await;
    let db = h.dir.path().join("state.db");
    h.engine.pool().close().await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["compact", "--db"])
        .arg(&db)
        .args(["--keep-events-days", "0", "--keep-sent-writes-days", "0"])
        .output()
        .expect("concord runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "compact succeeds: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (before, after) = stdout
        .rsplit_once("; ")
        .and_then(|(_, sizes)| sizes.split_once(" MB -> "))
        .map(|(b, a)| {
            (
                b.parse::<f64>().unwrap_or(0.0),
                a.trim_end()
                    .trim_end_matches(" MB")
                    .parse::<f64>()
                    .unwrap_or(f64::MAX),
            )
        })
        .unwrap_or_else(|| panic!("compact prints the sizes: {stdout}"));
    assert!(
        after < before,
        "dropping the history of 200 creates shrinks the file: {stdout}"
    );
    let engine = common::open_engine(h.dir.path()).await;
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(engine.pool())
        .await
        .expect("count");
    assert_eq!(kept, audit, "compacting never touches the audit");
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
        .fetch_one(engine.pool())
        .await
        .expect("count");
    assert_eq!(
        events, 1,
        "only the newest event is kept, for its id: {stdout}"
    );
}
