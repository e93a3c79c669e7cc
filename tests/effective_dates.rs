//! Effective-dated changes between the two HR systems on a manual clock: a new hire the HRIS
//! dates in the future joins payroll on that date (whole, as the HRIS last described them); a
//! dated rise the HRIS takes back is dropped, with the pay payroll set meanwhile written to the
//! HRIS once nothing waits there; and an HRIS linking to a record payroll already holds links
//! at once while its dated rise waits, which is then a clean change, not a conflict; and a
//! date written in New York takes effect at midnight there. The third-party case (json-server)
//! is in `tests/json_server.rs`.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use common::{Harness, ada};
use concord::EngineOptions;
use concord::clock::ManualClock;
use concord::runtime::{ScheduledFilter, ScheduledPage, ScheduledStatus};
use serde_json::json;

fn start_of(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .expect("a time")
}

/// The engine on a manual clock. These tests run with every batch looking waiting changes up
/// per record, as it does when many wait; the json-server, masking and demo tests run with the
/// default, where a batch loads the few that wait at once.
fn settings() -> concord::Settings {
    concord::Settings {
        load_all_waiting_up_to: 0,
        ..common::fast_settings()
    }
}

async fn start(clock: &ManualClock) -> Harness {
    Harness::start_with(
        EngineOptions {
            clock: Arc::new(clock.clone()),
            settings: settings(),
            ..EngineOptions::default()
        },
        common::hris_dates_salary,
    )
    .await
}

async fn listed(h: &Harness, status: ScheduledStatus) -> ScheduledPage {
    h.engine
        .scheduled_changes(&ScheduledFilter {
            status: Some(status),
            ..Default::default()
        })
        .await
        .expect("scheduled changes")
}

#[tokio::test]
async fn a_new_hire_dated_in_the_future_joins_payroll_on_the_date_as_last_described() {
    let clock = ManualClock::new(start_of("2026-12-15T09:00:00Z"));
    let h = start(&clock).await;
    let mut hire = ada();
    hire["salary"] = json!("85000.00");
    hire["salary_effective"] = json!("2026-12-20");
    h.hris.edit("H1", hire);
    h.settle().await;
    assert!(
        h.payroll.records().is_empty(),
        "a hire dated the 20th is not created in payroll on the 15th"
    );
    let waiting = listed(&h, ScheduledStatus::Scheduled).await;
    assert_eq!(waiting.scheduled, 1, "the hire waits: {:?}", waiting.items);
    let first = &waiting.items[0];
    assert_eq!(
        (first.record_id, first.values.get("given_name")),
        (None, Some(&json!("Ada"))),
        "a record not linked yet waits whole, with every value it was read with"
    );

    // The HRIS corrects the hire's name before the date: the latest word waits instead.
    h.hris.edit("H1", json!({ "full_name": "Ada King" }));
    h.settle().await;
    let all = listed(&h, ScheduledStatus::All).await;
    assert_eq!(
        (all.scheduled, all.superseded),
        (1, 1),
        "the corrected hire replaces the first: {:?}",
        all.items
    );
    assert!(h.payroll.records().is_empty(), "still nothing in payroll");

    clock.advance(Duration::days(5));
    h.settle().await;
    let (_, p) = h.payroll_only();
    assert_eq!(
        (
            p["emp_no"].clone(),
            p["last_name"].clone(),
            p["salary_cents"].clone()
        ),
        (json!("E1001"), json!("King"), json!(8_500_000)),
        "on the 20th the hire is created in payroll as the HRIS last described them"
    );
    let released = listed(&h, ScheduledStatus::Released).await;
    assert_eq!(
        released
            .items
            .iter()
            .map(|c| c.outcome.clone())
            .collect::<Vec<_>>(),
        vec![Some("applied".to_owned())],
        "the released change's event was applied"
    );
    let record = h.record_of("hris", "H1").await;
    assert!(
        h.audit_rules(record, None)
            .await
            .iter()
            .any(|r| r == "first_contact:created"),
        "the record is created on its date"
    );
    let scheduling: Vec<String> =
        sqlx::query_scalar("SELECT rule FROM audit WHERE rule LIKE 'schedule:%' ORDER BY id")
            .fetch_all(h.engine.pool())
            .await
            .expect("audit");
    assert_eq!(
        scheduling,
        [
            "schedule:held",
            "schedule:superseded",
            "schedule:held",
            "schedule:released"
        ],
        "the audit holds the hire, replaces it with the correction, and releases that"
    );
    assert_eq!(
        h.payroll.stats().writes_applied,
        1,
        "payroll got exactly one write: the create"
    );
}

#[tokio::test]
async fn a_dated_rise_taken_back_is_dropped_and_the_pay_held_back_meanwhile_is_written() {
    let clock = ManualClock::new(start_of("2026-12-15T09:00:00Z"));
    let h = start(&clock).await;
    let mut emp = ada();
    emp["salary"] = json!("80000.00");
    h.hris.edit("H1", emp);
    h.settle().await;
    let (pid, p) = h.payroll_only();
    assert_eq!(
        p["salary_cents"],
        json!(8_000_000),
        "undated pay applies now"
    );

    h.hris.edit(
        "H1",
        json!({ "salary": "85000.00", "salary_effective": "2027-01-01" }),
    );
    h.settle().await;
    assert_eq!(
        h.payroll.record(&pid).expect("payroll record")["salary_cents"],
        json!(8_000_000),
        "the rise dated 2027-01-01 waits"
    );

    // Payroll sets pay meanwhile: payroll takes it, the HRIS keeps the value it dated.
    h.payroll.edit(&pid, json!({ "salary_cents": 8_200_000 }));
    h.settle().await;
    assert_eq!(
        h.hris.record("H1").expect("H1")["salary"],
        json!("85000.00"),
        "a write of the pay the HRIS dated waits: it would overwrite the rise"
    );

    // The HRIS takes the rise back: its salary is dated in the past again.
    h.hris.edit(
        "H1",
        json!({ "salary": "80000.00", "salary_effective": "2026-06-01" }),
    );
    h.settle().await;
    let all = listed(&h, ScheduledStatus::All).await;
    assert_eq!(
        (all.scheduled, all.superseded),
        (0, 1),
        "the taken-back rise is dropped"
    );
    assert!(
        all.items[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("2026-06-01")),
        "the reason names the date the HRIS gives now: {:?}",
        all.items[0].reason
    );
    assert_eq!(
        h.hris.record("H1").expect("H1")["salary"],
        json!("82000.00"),
        "with nothing waiting, the pay payroll set reaches the HRIS"
    );
    clock.advance(Duration::days(30));
    h.settle().await;
    assert_eq!(
        (
            h.hris.record("H1").expect("H1")["salary"].clone(),
            h.payroll.record(&pid).expect("payroll record")["salary_cents"].clone()
        ),
        (json!("82000.00"), json!(8_200_000)),
        "the dropped rise is never applied, on its date or after"
    );
}

#[tokio::test]
async fn a_system_linking_with_a_dated_rise_links_now_and_the_rise_is_a_clean_change_on_its_date() {
    let clock = ManualClock::new(start_of("2026-12-15T09:00:00Z"));
    let h = start(&clock).await;
    // Both systems held Ada before they were connected; the HRIS has a rise dated the 1st.
    let mut in_hris = ada();
    in_hris["salary"] = json!("85000.00");
    in_hris["salary_effective"] = json!("2027-01-01");
    in_hris["phone"] = json!("(415) 555-0177");
    h.hris.seed([(
        "H1".to_owned(),
        in_hris.as_object().cloned().expect("a record"),
    )]);
    let in_payroll = json!({
        "emp_no": "E1001", "first_name": "Ada", "last_name": "Lovelace",
        "email": "ada@acme.example", "phone": "+14155550101", "state": 1,
        "hire_date": "2021-03-15", "salary_cents": 8_000_000
    });
    h.payroll.seed([(
        "P1".to_owned(),
        in_payroll.as_object().cloned().expect("a record"),
    )]);
    h.payroll.resend("P1");
    h.hris.resend("H1");
    h.settle().await;

    assert_eq!(
        (h.hris.len(), h.payroll.len()),
        (1, 1),
        "the HRIS links to the record payroll's event made: nobody is created twice"
    );
    let record = h.record_of("hris", "H1").await;
    assert_eq!(
        h.payroll.record("P1").expect("P1")["phone"],
        json!("+14155550177"),
        "the HRIS's undated values flow at once"
    );
    assert_eq!(
        h.payroll.record("P1").expect("P1")["salary_cents"],
        json!(8_000_000),
        "its dated rise waits"
    );
    let waiting = listed(&h, ScheduledStatus::Scheduled).await;
    assert_eq!(
        waiting
            .items
            .iter()
            .map(|c| (c.record_id, c.base.get("pay_rate").cloned()))
            .collect::<Vec<_>>(),
        vec![(Some(record), Some(json!("80000")))],
        "the waiting rise is about the linked record, from the pay agreed now"
    );

    clock.advance(Duration::days(17));
    h.settle().await;
    assert_eq!(
        h.payroll.record("P1").expect("P1")["salary_cents"],
        json!(8_500_000),
        "on the 1st the rise reaches payroll"
    );
    let conflicts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM exceptions WHERE kind = 'conflict'")
            .fetch_one(h.engine.pool())
            .await
            .expect("count");
    assert_eq!(
        conflicts, 0,
        "a system that linked while its rise waited changes pay cleanly on the date, not as a \
         conflict with a value it never held"
    );
}

#[tokio::test]
async fn a_rise_dated_the_first_in_new_york_waits_for_midnight_there_not_midnight_utc() {
    let clock = ManualClock::new(start_of("2026-12-31T20:00:00Z"));
    let h = Harness::start_with(
        EngineOptions {
            clock: Arc::new(clock.clone()),
            settings: settings(),
            ..EngineOptions::default()
        },
        |config| {
            common::hris_dates_salary(config);
            for m in config.mappings.iter_mut().filter(|m| m.system == "hris") {
                if let Some(dated) = m.effective_date.as_mut() {
                    dated.time_zone = Some("America/New_York".into());
                }
            }
        },
    )
    .await;
    let mut emp = ada();
    emp["salary"] = json!("80000.00");
    h.hris.edit("H1", emp);
    h.settle().await;
    let (pid, _) = h.payroll_only();

    h.hris.edit(
        "H1",
        json!({ "salary": "85000.00", "salary_effective": "2027-01-01" }),
    );
    h.settle().await;
    let waiting = listed(&h, ScheduledStatus::Scheduled).await;
    assert_eq!(
        waiting
            .items
            .iter()
            .map(|c| c.effective_at.as_str())
            .collect::<Vec<_>>(),
        ["2027-01-01T05:00:00.000000Z"],
        "the 1st in New York is 05:00 UTC"
    );

    clock.set(start_of("2027-01-01T04:30:00Z"));
    h.settle().await;
    assert_eq!(
        h.payroll.record(&pid).expect("payroll record")["salary_cents"],
        json!(8_000_000),
        "at 23:30 on the 31st in New York the rise still waits, though it is the 1st in UTC"
    );

    clock.set(start_of("2027-01-01T05:00:01Z"));
    h.settle().await;
    assert_eq!(
        h.payroll.record(&pid).expect("payroll record")["salary_cents"],
        json!(8_500_000),
        "just after midnight in New York the rise reaches payroll"
    );
    assert_eq!(
        listed(&h, ScheduledStatus::Released).await.released,
        1,
        "the change is released once"
    );
}

#[tokio::test]
async fn released_and_dropped_dated_changes_go_with_old_events_and_a_waiting_one_stays() {
    let clock = ManualClock::new(start_of("2026-12-01T09:00:00Z"));
    let h = start(&clock).await;
    for n in 1..=3 {
        let mut emp = ada();
        emp["employee_id"] = json!(format!("E100{n}"));
        emp["email"] = json!(format!("person{n}@acme.example"));
        emp["salary"] = json!("80000.00");
        h.hris.edit(&format!("H{n}"), emp);
    }
    h.settle().await;
    // H1's rise is released on the 10th, H2's is taken back, H3's waits until June.
    for (id, date) in [
        ("H1", "2026-12-10"),
        ("H2", "2026-12-10"),
        ("H3", "2027-06-01"),
    ] {
        h.hris.edit(
            id,
            json!({ "salary": "85000.00", "salary_effective": date }),
        );
    }
    h.settle().await;
    h.hris.edit(
        "H2",
        json!({ "salary": "80000.00", "salary_effective": "2026-11-01" }),
    );
    h.settle().await;
    clock.set(start_of("2026-12-10T00:00:01Z"));
    h.settle().await;
    let before = listed(&h, ScheduledStatus::All).await;
    assert_eq!(
        (before.scheduled, before.released, before.superseded),
        (1, 1, 1),
        "one rise waits, one was released, one was dropped: {:?}",
        before.items
    );

    // Twenty days on, a fresh edit, then the compaction with the default 14 days.
    clock.advance(Duration::days(20));
    h.hris.edit("H1", json!({ "job_title": "Lead" }));
    h.settle().await;
    let done = h
        .engine
        .compact_history(&concord::retention::Retention::default())
        .await
        .expect("compaction runs");
    assert_eq!(
        done.scheduled_changes, 2,
        "the released and the dropped change, 20 days old, are compacted"
    );
    let after = listed(&h, ScheduledStatus::All).await;
    assert_eq!(
        (after.scheduled, after.released, after.superseded),
        (1, 0, 0),
        "the change waiting for June stays, however old: {:?}",
        after.items
    );

    clock.set(start_of("2027-06-01T00:00:01Z"));
    h.settle().await;
    let pid = h
        .payroll
        .records()
        .into_iter()
        .find(|(_, r)| r["emp_no"] == json!("E1003"))
        .map(|(id, _)| id)
        .expect("E1003 in payroll");
    assert_eq!(
        h.payroll.record(&pid).expect("payroll record")["salary_cents"],
        json!(8_500_000),
        "the waiting rise is still applied on its date after the compaction"
    );
}
