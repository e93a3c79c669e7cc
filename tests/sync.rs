//! The sync semantics of DESIGN.md, end to end: real HTTP systems on 127.0.0.1 that echo every
//! write back as a webhook, the engine on a real SQLite file, assertions on the values the
//! systems hold, the number of writes they received, and the audit.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, ada, hris_maps_salary};
use concord::audit::Actor;
use concord::model::{
    ChangeEvent, ChangeOp, ConflictPolicy, DeletePolicy, NonOwnerPolicy, WorkspaceConfig,
};
use concord::ops::{
    Choice, DeadLetterFilter, DeleteDecision, ExceptionFilter, ReplayOutcome, ResolveOutcome,
};
use serde_json::{Value, json};

fn policy<'a>(config: &'a mut WorkspaceConfig, field: &str) -> &'a mut concord::model::FieldPolicy {
    config.policies[0]
        .fields
        .iter_mut()
        .find(|p| p.field == field)
        .expect("policy exists")
}

async fn open_exceptions(h: &Harness, kind: &str) -> Vec<concord::ops::ExceptionView> {
    h.engine
        .list_exceptions(&ExceptionFilter {
            kind: Some(kind.into()),
            ..Default::default()
        })
        .await
        .expect("list exceptions")
}

#[tokio::test]
async fn field_changes_propagate_both_ways_through_transforms_without_echo_loops() {
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    h.settle().await;

    let (pid, p) = h.payroll_only();
    assert_eq!(
        p["emp_no"],
        json!("E1001"),
        "the employee number reaches payroll"
    );
    assert_eq!(
        p["first_name"],
        json!("Ada"),
        "a full name is split into payroll's first name"
    );
    assert_eq!(p["last_name"], json!("Lovelace"), "and last name");
    assert_eq!(p["state"], json!(1), "'Active' maps to payroll's state 1");
    assert_eq!(
        p["hire_date"],
        json!("2021-03-15"),
        "US dates become ISO dates"
    );
    assert_eq!(
        p["phone"],
        json!("+14155550101"),
        "a typed phone becomes E.164"
    );

    h.payroll.edit(&pid, json!({ "phone": "+14155550199" }));
    h.settle().await;
    assert_eq!(
        h.hris.record("H1").expect("H1")["phone"],
        json!("(415) 555-0199"),
        "payroll's phone change reaches the HRIS in its national format"
    );

    h.hris.edit("H1", json!({ "full_name": "Ada King" }));
    h.settle().await;
    assert_eq!(
        h.payroll.record(&pid).expect("payroll record")["last_name"],
        json!("King"),
        "a renamed employee is renamed in payroll"
    );
    assert_eq!(
        h.payroll.record(&pid).expect("payroll record")["phone"],
        json!("+14155550199"),
        "other fields are left alone"
    );

    // Echo suppression: every write comes back as a webhook; none may cause another write.
    assert_eq!(
        h.payroll.stats().writes_applied,
        2,
        "payroll receives exactly the create and the rename"
    );
    assert_eq!(
        h.hris.stats().writes_applied,
        1,
        "the HRIS receives exactly the phone change"
    );
    h.settle().await;
    assert_eq!(
        h.payroll.stats().writes_applied + h.hris.stats().writes_applied,
        3,
        "no loop: quiet systems stay quiet"
    );
    assert!(h.counter("noops").await > 0, "echoes are counted as no-ops");

    let record = h.record_of("hris", "H1").await;
    let lineage = h
        .engine
        .audit_for(record, Some("work_phone"))
        .await
        .expect("audit");
    assert!(
        lineage.iter().any(|a| a.rule == "rule3:clean_change"
            && a.system.as_deref() == Some("payroll")
            && a.after == Some(json!("+14155550199"))),
        "the audit says payroll's clean change set the phone: {lineage:?}"
    );
    assert!(
        lineage.iter().any(|a| a.rule == "delivered:update"
            && a.system.as_deref() == Some("hris")
            && a.direction == "out"),
        "the audit records the write to the HRIS"
    );
}

/// Waits until every webhook `system` sent was accepted into the inbox.
async fn hooks_accepted(system: &concord::loopback::LoopbackSystem) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while system.hooks_pending() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "webhooks are accepted"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_person_entered_in_both_systems_before_the_create_is_sent_is_linked_not_created_twice() {
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    hooks_accepted(&h.hris).await;
    h.engine.process_inbox().await.expect("applies");
    let planned: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE system_id = 'payroll' AND op = 'create' AND status = 'pending'",
    )
    .fetch_one(h.engine.pool())
    .await
    .expect("count");
    assert_eq!(planned, 1, "a create of Ada is planned for payroll");

    // Payroll's clerk enters Ada too, before that create is sent, under her maiden name.
    h.payroll.edit(
        "P7",
        json!({ "emp_no": "E1001", "first_name": "Ada", "last_name": "Byron",
                "email": "ada@acme.example", "phone": "+14155550101", "state": 1,
                "hire_date": "2021-03-15" }),
    );
    hooks_accepted(&h.payroll).await;
    h.settle().await;

    let held: Vec<String> = h.payroll.records().into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        held,
        vec!["P7".to_owned()],
        "payroll holds Ada once: found there by her employee number, she is not created again"
    );
    assert_eq!(
        h.record_of("payroll", "P7").await,
        h.record_of("hris", "H1").await,
        "both systems' Ada are one golden record"
    );
    let links: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM links WHERE system_id = 'payroll' AND deleted = 0",
    )
    .fetch_one(h.engine.pool())
    .await
    .expect("count");
    assert_eq!(links, 1, "one payroll link for one person");
    assert_eq!(
        h.payroll
            .record("P7")
            .and_then(|r| r.get("last_name").cloned()),
        Some(json!("Lovelace")),
        "the HRIS owns the family name: payroll's Ada is updated to it"
    );
}

#[tokio::test]
async fn duplicate_and_stale_events_change_nothing() {
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let writes = h.payroll.stats().writes_applied;

    h.hris.resend("H1");
    h.hris.resend("H1");
    h.settle().await;
    assert!(
        h.counter("duplicates").await >= 2,
        "a webhook delivered again is recorded as a duplicate"
    );
    assert_eq!(
        h.payroll.stats().writes_applied,
        writes,
        "duplicates write nothing"
    );

    let mut old = ada();
    old["full_name"] = json!("Stale Name");
    let event = ChangeEvent {
        system: "hris".into(),
        object: "employee".into(),
        external_id: "H1".into(),
        op: ChangeOp::Upsert,
        record: old.as_object().cloned().expect("object"),
        version: Some(0),
        etag: None,
        source_ts: None,
        event_key: "late-delivery-of-v0".into(),
    };
    h.engine.ingest(&event).await.expect("ingest");
    h.settle().await;
    assert_eq!(
        h.counter("stale").await,
        1,
        "an event older than the last applied version is stale"
    );
    let (_, p) = h.payroll_only();
    assert_eq!(
        p["last_name"],
        json!("Lovelace"),
        "a stale event changes nothing"
    );
    assert_eq!(
        h.payroll.stats().writes_applied,
        writes,
        "a stale event writes nothing"
    );
    let status: String =
        sqlx::query_scalar("SELECT status FROM inbox WHERE event_key = 'late-delivery-of-v0'")
            .fetch_one(h.engine.pool())
            .await
            .expect("inbox row");
    assert_eq!(status, "stale", "the stale event is recorded as such");
}

/// Events are stored many per statement; each still gets its own outcome, in the caller's
/// order, and a key repeated within one call or sent again later is a duplicate of the first.
#[tokio::test]
async fn ingest_many_answers_each_event_in_order_and_spots_repeated_keys() {
    use concord::IngestOutcome;
    let h = Harness::start(|_| {}).await;
    h.engine.set_paused(true);
    let event = |n: usize, key: &str| ChangeEvent {
        system: "hris".into(),
        object: "employee".into(),
        external_id: format!("H{n}"),
        op: ChangeOp::Upsert,
        record: json!({ "id": format!("H{n}") })
            .as_object()
            .cloned()
            .expect("object"),
        version: None,
        etag: None,
        source_ts: None,
        event_key: key.into(),
    };
    // More than one statement's worth, with a key repeated inside the call.
    let mut events: Vec<ChangeEvent> = (0..1_200).map(|n| event(n, &format!("k{n}"))).collect();
    events.insert(700, event(7, "k7"));
    let outcomes = h.engine.ingest_many(&events).await.expect("ingest");
    assert_eq!(outcomes.len(), events.len(), "one outcome per event");
    let ids: Vec<i64> = outcomes
        .iter()
        .map(|o| match o {
            IngestOutcome::Accepted(id) | IngestOutcome::Duplicate(id) => *id,
        })
        .collect();
    assert!(
        matches!(outcomes[7], IngestOutcome::Accepted(_)),
        "the first event with a key is accepted"
    );
    assert!(
        matches!(outcomes[700], IngestOutcome::Duplicate(id) if id == ids[7]),
        "a key repeated in the same call is a duplicate of the first: {:?}",
        outcomes[700]
    );
    let accepted = outcomes
        .iter()
        .filter(|o| matches!(o, IngestOutcome::Accepted(_)))
        .count();
    assert_eq!(accepted, 1_200, "every other event is accepted");
    for (n, e) in events.iter().enumerate() {
        let key: String = sqlx::query_scalar("SELECT event_key FROM inbox WHERE id = ?")
            .bind(ids[n])
            .fetch_one(h.engine.pool())
            .await
            .expect("inbox row");
        assert_eq!(
            key, e.event_key,
            "outcome {n} names the row of its own event"
        );
    }
    let again = h
        .engine
        .ingest_many(&[event(3, "k3"), event(5000, "k5000")])
        .await
        .expect("ingest");
    assert!(
        matches!(again[0], IngestOutcome::Duplicate(id) if id == ids[3]),
        "a key sent again later is a duplicate of the stored event"
    );
    assert!(
        matches!(again[1], IngestOutcome::Accepted(_)),
        "a new key is accepted"
    );
    let dups: i64 = sqlx::query_scalar("SELECT duplicates FROM inbox WHERE id = ?")
        .bind(ids[7])
        .fetch_one(h.engine.pool())
        .await
        .expect("inbox row");
    assert_eq!(dups, 1, "the stored event counts the repeat");
}

/// Events of one batch see each other's versions, even after a link of the record was dropped
/// mid-batch and re-read from SQLite (where the batch has not written its versions yet).
#[tokio::test]
async fn versions_within_one_batch_make_later_old_events_stale() {
    let h = Harness::start(|c| c.objects[0].delete_policy = DeletePolicy::Ignore).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let (pid, _) = h.payroll_only();
    let hris_event = |name: &str, version: i64, key: &str| {
        let mut person = ada();
        person["full_name"] = json!(name);
        ChangeEvent {
            system: "hris".into(),
            object: "employee".into(),
            external_id: "H1".into(),
            op: ChangeOp::Upsert,
            record: person.as_object().cloned().expect("object"),
            version: Some(version),
            etag: None,
            source_ts: None,
            event_key: key.into(),
        }
    };
    let payroll_delete = ChangeEvent {
        system: "payroll".into(),
        object: "employee".into(),
        external_id: pid.clone(),
        op: ChangeOp::Delete,
        record: Default::default(),
        version: None,
        etag: None,
        source_ts: None,
        event_key: "payroll-deleted".into(),
    };
    h.engine
        .ingest_many(&[
            hris_event("Ada King", 50, "v50"),
            payroll_delete,
            hris_event("Ada Byron", 40, "v40"),
        ])
        .await
        .expect("ingest");
    let applied = h.engine.process_inbox().await.expect("one batch");
    assert_eq!(applied, 3, "the three events are applied in one batch");
    let status: String = sqlx::query_scalar("SELECT status FROM inbox WHERE event_key = 'v40'")
        .fetch_one(h.engine.pool())
        .await
        .expect("inbox row");
    assert_eq!(
        status, "stale",
        "v40 after v50 in the same batch is stale, though the record's links were re-read"
    );
    let record = h.record_of("hris", "H1").await;
    let golden = h.engine.golden(record).await.expect("golden");
    assert_eq!(
        golden.get("family_name"),
        Some(&json!("King")),
        "the newer event's value stands"
    );
    let stored: Option<i64> = sqlx::query_scalar(
        "SELECT last_version FROM links WHERE system_id = 'hris' AND external_id = 'H1'",
    )
    .fetch_one(h.engine.pool())
    .await
    .expect("link");
    assert_eq!(
        stored,
        Some(50),
        "the batch stores the highest version it saw"
    );
}

#[tokio::test]
async fn last_write_wins_keeps_the_later_edit_everywhere() {
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let (pid, _) = h.payroll_only();

    // Both change the email before the engine sees either: a conflict.
    h.hris
        .edit("H1", json!({ "email": "ada.hris@acme.example" }));
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.payroll
        .edit(&pid, json!({ "email": "ada.payroll@acme.example" }));
    h.settle().await;

    assert_eq!(
        h.hris.record("H1").expect("H1")["email"],
        json!("ada.payroll@acme.example"),
        "the later edit wins in the HRIS"
    );
    assert_eq!(
        h.payroll.record(&pid).expect("p")["email"],
        json!("ada.payroll@acme.example"),
        "and payroll keeps it"
    );
    let record = h.record_of("hris", "H1").await;
    let golden = h.engine.golden(record).await.expect("golden");
    assert_eq!(
        golden["work_email"],
        json!("ada.payroll@acme.example"),
        "the golden record holds the later edit"
    );
    let rules = h.audit_rules(record, Some("work_email")).await;
    assert!(
        rules
            .iter()
            .any(|r| r.starts_with("rule4:conflict:last_write_wins")),
        "the conflict is audited with its rule: {rules:?}"
    );
}

#[tokio::test]
async fn prefer_policy_keeps_the_preferred_system_even_when_it_wrote_first() {
    let h = Harness::start(|c| {
        policy(c, "work_phone").conflict = ConflictPolicy::Prefer("hris".into())
    })
    .await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let (pid, _) = h.payroll_only();

    h.hris.edit("H1", json!({ "phone": "(415) 555-0111" }));
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.payroll.edit(&pid, json!({ "phone": "+14155550122" }));
    h.settle().await;
    assert_eq!(
        h.payroll.record(&pid).expect("p")["phone"],
        json!("+14155550111"),
        "prefer:hris: the HRIS value wins in payroll"
    );
    assert_eq!(
        h.hris.record("H1").expect("H1")["phone"],
        json!("(415) 555-0111"),
        "and stays in the HRIS"
    );
}

#[tokio::test]
async fn owner_wins_even_against_a_later_edit() {
    let h = Harness::start(|c| {
        hris_maps_salary(c);
        let p = policy(c, "pay_rate");
        p.conflict = ConflictPolicy::OwnerWins;
        p.four_eyes = false;
    })
    .await;
    let mut emp = ada();
    emp["salary"] = json!("85000.00");
    h.hris.edit("H1", emp);
    h.settle().await;
    let (pid, p) = h.payroll_only();
    assert_eq!(
        p["salary_cents"],
        json!(8_500_000),
        "a decimal salary becomes cents"
    );

    h.payroll.edit(&pid, json!({ "salary_cents": 8_800_000 }));
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.hris.edit("H1", json!({ "salary": "90000.00" }));
    h.settle().await;
    assert_eq!(
        h.hris.record("H1").expect("H1")["salary"],
        json!("88000.00"),
        "owner_wins: payroll owns pay, its value wins"
    );
    assert_eq!(
        h.payroll.record(&pid).expect("p")["salary_cents"],
        json!(8_800_000),
        "payroll keeps its own value"
    );
}

#[tokio::test]
async fn a_non_owner_change_is_reverted() {
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let (pid, _) = h.payroll_only();
    let hris_writes = h.hris.stats().writes_applied;

    h.payroll.edit(
        &pid,
        json!({ "first_name": "Augusta", "phone": "+14155550177" }),
    );
    h.settle().await;
    assert_eq!(
        h.payroll.record(&pid).expect("p")["first_name"],
        json!("Ada"),
        "payroll may not rename: the owner's value is written back"
    );
    assert_eq!(
        h.hris.record("H1").expect("H1")["full_name"],
        json!("Ada Lovelace"),
        "the HRIS is untouched by a non-owner's rename"
    );
    assert_eq!(
        h.hris.record("H1").expect("H1")["phone"],
        json!("(415) 555-0177"),
        "the same event's phone change still syncs"
    );
    assert_eq!(
        h.hris.stats().writes_applied,
        hris_writes + 1,
        "the HRIS gets only the phone"
    );
    let record = h.record_of("hris", "H1").await;
    assert!(
        h.audit_rules(record, Some("given_name"))
            .await
            .contains(&"rule3:non_owner:revert".to_owned()),
        "the revert is audited"
    );
}

#[tokio::test]
async fn a_non_owner_change_is_quarantined_when_so_configured() {
    let h =
        Harness::start(|c| policy(c, "given_name").non_owner = NonOwnerPolicy::Quarantine).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let (pid, _) = h.payroll_only();
    let payroll_writes = h.payroll.stats().writes_applied;

    h.payroll.edit(&pid, json!({ "first_name": "Augusta" }));
    h.settle().await;
    let open = open_exceptions(&h, "non_owner_change").await;
    assert_eq!(
        open.len(),
        1,
        "a quarantined non-owner change opens one exception"
    );
    assert_eq!(open[0].field.as_deref(), Some("given_name"));
    assert_eq!(
        open[0].detail["values"]["payroll"],
        json!("Augusta"),
        "the exception shows payroll's value"
    );
    assert_eq!(
        h.hris.record("H1").expect("H1")["full_name"],
        json!("Ada Lovelace"),
        "nothing is overwritten while quarantined"
    );
    assert_eq!(
        h.payroll.stats().writes_applied,
        payroll_writes,
        "and nothing is written back yet"
    );

    // The steward accepts payroll's spelling.
    let steward = Actor::person("sam", "steward");
    let outcome = h
        .engine
        .resolve_exception(
            open[0].id,
            &Choice::System("payroll".into()),
            "confirmed with HR",
            &steward,
        )
        .await
        .expect("resolve");
    assert_eq!(outcome, ResolveOutcome::Applied);
    h.settle().await;
    assert_eq!(
        h.hris.record("H1").expect("H1")["full_name"],
        json!("Augusta Lovelace"),
        "the accepted value reaches the owner"
    );
}

#[tokio::test]
async fn manual_conflict_holds_only_that_field_until_two_stewards_resolve_it() {
    let h = Harness::start(hris_maps_salary).await;
    let mut emp = ada();
    emp["salary"] = json!("85000.00");
    h.hris.edit("H1", emp);
    h.settle().await;
    let (pid, _) = h.payroll_only();

    h.hris.edit("H1", json!({ "salary": "90000.00" }));
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.payroll.edit(
        &pid,
        json!({ "salary_cents": 8_800_000, "phone": "+14155550142" }),
    );
    h.settle().await;

    let open = open_exceptions(&h, "conflict").await;
    assert_eq!(
        open.len(),
        1,
        "both sides changed pay: one conflict is open"
    );
    assert_eq!(open[0].field.as_deref(), Some("pay_rate"));
    assert_eq!(
        h.hris.record("H1").expect("H1")["salary"],
        json!("90000.00"),
        "a held field is not overwritten in the HRIS"
    );
    assert_eq!(
        h.payroll.record(&pid).expect("p")["salary_cents"],
        json!(8_800_000),
        "nor in payroll"
    );
    assert_eq!(
        h.hris.record("H1").expect("H1")["phone"],
        json!("(415) 555-0142"),
        "other fields of the record keep syncing"
    );
    assert_eq!(
        open[0].detail["values"]["payroll"],
        json!("88000"),
        "the exception shows payroll's value"
    );

    // Pay needs four eyes.
    let first = Actor::person("sam", "steward");
    let second = Actor::person("kim", "steward");
    let custom = Choice::Custom(json!("89000"));
    let outcome = h
        .engine
        .resolve_exception(open[0].id, &custom, "split the difference", &first)
        .await
        .expect("first approval");
    assert_eq!(
        outcome,
        ResolveOutcome::AwaitingSecondApproval,
        "the first approval of a four-eyes field writes nothing"
    );
    let again = h
        .engine
        .resolve_exception(open[0].id, &custom, "me again", &first)
        .await;
    assert!(
        again.is_err(),
        "the same person cannot give the second approval"
    );
    h.settle().await;
    assert_eq!(
        h.hris.record("H1").expect("H1")["salary"],
        json!("90000.00"),
        "nothing is written before the second approval"
    );

    let outcome = h
        .engine
        .resolve_exception(open[0].id, &custom, "agreed", &second)
        .await
        .expect("second approval");
    assert_eq!(outcome, ResolveOutcome::Applied);
    h.settle().await;
    assert_eq!(
        h.hris.record("H1").expect("H1")["salary"],
        json!("89000.00"),
        "the resolution reaches the HRIS"
    );
    assert_eq!(
        h.payroll.record(&pid).expect("p")["salary_cents"],
        json!(8_900_000),
        "and payroll"
    );
    assert!(
        open_exceptions(&h, "conflict").await.is_empty(),
        "the conflict is closed"
    );
    let record = h.record_of("hris", "H1").await;
    let lineage = h
        .engine
        .audit_for(record, Some("pay_rate"))
        .await
        .expect("audit");
    let resolution = lineage
        .iter()
        .find(|a| a.rule == "resolution:conflict")
        .expect("the resolution is audited");
    assert_eq!(
        resolution.actor, "kim",
        "the audit names the approving steward"
    );
    assert_eq!(resolution.after, Some(json!("89000")));

    // The field is released: later changes sync again.
    h.payroll.edit(&pid, json!({ "salary_cents": 9_100_000 }));
    h.settle().await;
    assert_eq!(
        h.hris.record("H1").expect("H1")["salary"],
        json!("91000.00"),
        "after resolution the field syncs again"
    );
}

#[tokio::test]
async fn first_contact_links_a_match_instead_of_creating_a_duplicate() {
    let h = Harness::start(|_| {}).await;
    // Both systems already hold Ada before the engine sees either.
    h.payroll.edit("P1", json!({ "emp_no": "E1001", "first_name": "Ada", "last_name": "Lovelace", "state": 1,
                                 "email": "ada@acme.example", "phone": "+14155550101", "hire_date": "2021-03-15" }));
    h.hris.edit("H1", ada());
    h.settle().await;
    assert_eq!(
        h.hris.records().len(),
        1,
        "the HRIS keeps one Ada: matched by employee number, not created"
    );
    assert_eq!(h.payroll.records().len(), 1, "payroll keeps one Ada");
    assert_eq!(
        h.record_of("hris", "H1").await,
        h.record_of("payroll", "P1").await,
        "both are linked to one record"
    );
    let record = h.record_of("hris", "H1").await;
    assert!(
        h.audit_rules(record, None)
            .await
            .contains(&"first_contact:linked".to_owned()),
        "the link is audited"
    );
}

#[tokio::test]
async fn first_contact_with_several_matches_opens_an_ambiguous_match() {
    let h = Harness::start(|_| {}).await;
    h.payroll.edit("P1", json!({ "emp_no": "E2001", "first_name": "Bo", "last_name": "One", "state": 1, "email": "bo@acme.example" }));
    h.payroll.edit("P2", json!({ "emp_no": "E2002", "first_name": "Cy", "last_name": "Two", "state": 1, "email": "cy@acme.example" }));
    while h.payroll.hooks_pending() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Matches P1 by number and P2 by email.
    h.hris.edit("H9", json!({ "employee_id": "E2001", "full_name": "Bo One", "email": "cy@acme.example", "status": "Active" }));
    h.settle().await;
    let open = open_exceptions(&h, "ambiguous_match").await;
    assert_eq!(
        open.len(),
        1,
        "two candidate records: an ambiguous match exception"
    );
    assert_eq!(
        open[0].detail["candidates"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(
        h.engine
            .record_for("hris", "employee", "H9")
            .await
            .expect("lookup")
            .is_none(),
        "nothing is linked while ambiguous"
    );

    h.engine
        .resolve_match(open[0].id, None, &Actor::person("sam", "steward"))
        .await
        .expect("resolve as new");
    h.settle().await;
    assert!(
        h.engine
            .record_for("hris", "employee", "H9")
            .await
            .expect("lookup")
            .is_some(),
        "the steward's choice links the record"
    );
}

async fn deleted_in_hris(policy: DeletePolicy) -> (Harness, String) {
    let h = Harness::start(move |c| c.objects[0].delete_policy = policy).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let (pid, _) = h.payroll_only();
    h.hris.remove("H1");
    h.settle().await;
    (h, pid)
}

#[tokio::test]
async fn delete_policy_propagate_deletes_everywhere() {
    let (h, pid) = deleted_in_hris(DeletePolicy::Propagate).await;
    assert!(
        h.payroll.was_deleted(&pid),
        "propagate: payroll's record is deleted"
    );
    assert!(h.payroll.records().is_empty());
}

#[tokio::test]
async fn delete_policy_deactivate_sets_the_status() {
    let (h, pid) = deleted_in_hris(DeletePolicy::Deactivate {
        field: "employment_status".into(),
        value: json!("terminated"),
    })
    .await;
    assert_eq!(
        h.payroll.record(&pid).expect("kept")["state"],
        json!(0),
        "deactivate: payroll's state becomes 0 (terminated)"
    );
}

#[tokio::test]
async fn delete_policy_ignore_changes_nothing_else() {
    let (h, pid) = deleted_in_hris(DeletePolicy::Ignore).await;
    assert_eq!(
        h.payroll.record(&pid).expect("kept")["state"],
        json!(1),
        "ignore: payroll is untouched"
    );
    assert_eq!(h.payroll.stats().writes_applied, 1, "ignore writes nothing");
}

#[tokio::test]
async fn delete_policy_review_opens_an_exception() {
    let (h, pid) = deleted_in_hris(DeletePolicy::Review).await;
    assert_eq!(
        open_exceptions(&h, "delete_review").await.len(),
        1,
        "review: a steward must decide"
    );
    assert!(
        h.payroll.record(&pid).is_some(),
        "nothing is deleted before the review"
    );
}

/// A delete under review, decided by a steward; returns the payroll id and the record.
async fn decided(decision: DeleteDecision) -> (Harness, String, concord::model::RecordId) {
    let (h, pid) = deleted_in_hris(DeletePolicy::Review).await;
    let review = open_exceptions(&h, "delete_review").await;
    let record = review[0].record_id.expect("the review names the record");
    let steward = Actor::person("sam", "steward");
    h.engine
        .decide_delete(review[0].id, &decision, "left in October", &steward)
        .await
        .expect("the steward's decision is carried out");
    h.settle().await;
    assert!(
        open_exceptions(&h, "delete_review").await.is_empty(),
        "the review is closed by the decision"
    );
    let again = h
        .engine
        .decide_delete(review[0].id, &decision, "again", &steward)
        .await;
    assert!(
        matches!(again, Err(concord::EngineError::Conflict(_))),
        "a decided review cannot be decided twice: {again:?}"
    );
    let entries = h.engine.audit_for(record, None).await.expect("audit");
    assert!(
        entries
            .iter()
            .any(|a| a.rule.starts_with("delete:") && a.actor == "sam"),
        "the audit names the steward who decided: {entries:?}"
    );
    (h, pid, record)
}

#[tokio::test]
async fn a_reviewed_delete_can_be_carried_out_everywhere() {
    let (h, pid, _) = decided(DeleteDecision::DeleteEverywhere).await;
    assert!(
        h.payroll.was_deleted(&pid),
        "delete everywhere: payroll's record is deleted"
    );
}

#[tokio::test]
async fn a_reviewed_delete_can_deactivate_instead() {
    let (h, pid, _) = decided(DeleteDecision::Deactivate {
        field: "employment_status".into(),
        value: json!("terminated"),
    })
    .await;
    assert_eq!(
        h.payroll.record(&pid).expect("kept")["state"],
        json!(0),
        "deactivate: payroll keeps the record with state 0 (terminated)"
    );
}

#[tokio::test]
async fn a_reviewed_delete_can_be_kept() {
    let (h, pid, record) = decided(DeleteDecision::Keep).await;
    assert_eq!(
        h.payroll.record(&pid).expect("kept")["state"],
        json!(1),
        "keep: payroll is untouched"
    );
    assert_eq!(h.payroll.stats().writes_applied, 1, "keep writes nothing");
    let view = h.engine.record_view(record).await.expect("record");
    assert!(
        !view.links.contains_key("hris"),
        "keep: the deleting system is unlinked: {:?}",
        view.links
    );
}

#[tokio::test]
async fn a_delete_decision_refuses_a_bad_deactivation_value() {
    let (h, pid) = deleted_in_hris(DeletePolicy::Review).await;
    let review = open_exceptions(&h, "delete_review").await;
    let refused = h
        .engine
        .decide_delete(
            review[0].id,
            &DeleteDecision::Deactivate {
                field: "hire_date".into(),
                value: json!("not a date"),
            },
            "",
            &Actor::person("sam", "steward"),
        )
        .await;
    assert!(
        matches!(refused, Err(concord::EngineError::Invalid(_))),
        "an invalid value is refused: {refused:?}"
    );
    assert_eq!(
        open_exceptions(&h, "delete_review").await.len(),
        1,
        "and the review stays open"
    );
    assert!(h.payroll.record(&pid).is_some(), "nothing changed");
}

#[tokio::test]
async fn a_422_is_a_dead_letter_and_replaying_it_twice_writes_once() {
    let h = Harness::start(|_| {}).await;
    h.payroll.fail_next(1, 422, None);
    h.hris.edit("H1", ada());
    h.settle().await;
    assert!(
        h.payroll.records().is_empty(),
        "a rejected create writes nothing"
    );
    let dead = h
        .engine
        .list_dead_letters(&DeadLetterFilter::default())
        .await
        .expect("dead letters");
    assert_eq!(dead.len(), 1, "the 422 becomes one dead letter at once");
    assert_eq!(dead[0].error_class, "validation");
    assert_eq!(dead[0].response_status, Some(422));
    assert_eq!(dead[0].attempts, 1, "a non-retryable 4xx is not retried");
    assert!(
        dead[0]
            .response_body
            .as_deref()
            .unwrap_or_default()
            .contains("injected failure 422"),
        "the system's response is kept"
    );

    let preview = h.engine.replay_preview(dead[0].id).await.expect("preview");
    assert!(
        preview
            .fields
            .iter()
            .any(|f| f.field == "given_name" && f.write == json!("Ada")),
        "the preview shows what would be written"
    );

    let support = Actor::person("pat", "support");
    assert_eq!(
        h.engine.replay(dead[0].id, &support).await.expect("replay"),
        ReplayOutcome::Queued
    );
    assert_eq!(
        h.engine.replay(dead[0].id, &support).await.expect("replay"),
        ReplayOutcome::AlreadyReplayed,
        "a second replay sends nothing"
    );
    h.settle().await;
    assert_eq!(
        h.payroll.records().len(),
        1,
        "the replay creates the record"
    );
    assert_eq!(
        h.payroll.stats().writes_applied,
        1,
        "replaying twice writes once"
    );
    let dead = h
        .engine
        .list_dead_letters(&DeadLetterFilter {
            status: Some("replayed".into()),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(dead.len(), 1, "the dead letter is marked replayed");
}

#[tokio::test]
async fn a_503_is_retried_until_it_succeeds() {
    let h = Harness::start(|_| {}).await;
    h.payroll.fail_next(2, 503, None);
    h.hris.edit("H1", ada());
    h.settle().await;
    assert_eq!(
        h.payroll.records().len(),
        1,
        "the write succeeds after two 503s"
    );
    assert_eq!(
        h.payroll.stats().write_requests,
        3,
        "two failures, one success"
    );
    assert_eq!(h.payroll.stats().writes_applied, 1, "applied once");
    assert_eq!(h.counter("retries").await, 2, "both retries are counted");
    assert!(
        h.engine
            .list_dead_letters(&DeadLetterFilter::default())
            .await
            .expect("list")
            .is_empty(),
        "no dead letter"
    );
}

/// The dashboard's per-system health counts a write that failed and waits for its retry as
/// retrying, and stops counting it once it went through.
#[tokio::test]
async fn a_write_waiting_for_its_retry_counts_as_retrying_until_it_succeeds() {
    let h = Harness::start(|_| {}).await;
    h.payroll.fail_next(1, 503, None);
    h.hris.edit("H1", ada());
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.hris.hooks_pending() > 0 {
        assert!(
            Instant::now() < deadline,
            "the HRIS's webhook was not taken"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while h.engine.process_inbox().await.expect("applies") > 0 {}
    assert_eq!(
        h.engine.deliver("payroll").await.expect("delivers"),
        1,
        "the create is sent once, and answered 503"
    );
    let payroll_health = |m: concord::api::Metrics| {
        m.per_system
            .into_iter()
            .find(|s| s.system == "payroll")
            .expect("payroll's health")
    };
    let failed_once = payroll_health(h.engine.metrics().await.expect("metrics"));
    assert_eq!(
        (failed_once.retrying, failed_once.outbox_pending),
        (1, 1),
        "a write answered 503 is queued again and counted as retrying"
    );
    h.settle().await;
    let settled = payroll_health(h.engine.metrics().await.expect("metrics"));
    assert_eq!(
        (settled.retrying, settled.outbox_pending, settled.sent),
        (0, 0, 1),
        "once the retry went through, nothing is retrying and the write counts as sent"
    );
}

/// The running engine sends each write as soon as a slot is free: a system slow on one
/// record holds back that record's writes, in order, and no other record's.
#[tokio::test]
async fn a_slow_write_holds_back_only_its_own_record() {
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    let mut grace = ada();
    grace["employee_id"] = json!("E1002");
    grace["full_name"] = json!("Grace Hopper");
    grace["email"] = json!("grace@acme.example");
    grace["phone"] = json!("(415) 555-0102");
    h.hris.edit("H2", grace);
    h.settle().await;
    let payroll_id = |emp_no: &str| {
        h.payroll
            .records()
            .into_iter()
            .find(|(_, r)| r["emp_no"] == json!(emp_no))
            .map(|(id, _)| id)
            .unwrap_or_else(|| panic!("payroll holds {emp_no}"))
    };
    let (ada_id, grace_id) = (payroll_id("E1001"), payroll_id("E1002"));
    let writes_before = h.payroll.stats().writes_applied;
    let stall = Duration::from_secs(4);
    h.payroll.stall_writes_to(&ada_id, stall);
    let running = h.engine.start(tokio_util::sync::CancellationToken::new());

    h.hris.edit("H1", json!({ "full_name": "Ada King" }));
    let stalled_since = Instant::now();
    // Wait for Ada's write to be in flight (held by payroll), then edit her again and Grace.
    loop {
        let in_flight: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE system_id = 'payroll' AND status = 'in_flight'",
        )
        .fetch_one(h.engine.pool())
        .await
        .expect("count");
        if in_flight == 1 {
            break;
        }
        assert!(
            stalled_since.elapsed() < Duration::from_secs(3),
            "Ada's rename is sent to payroll"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.hris.edit("H1", json!({ "full_name": "Ada Byron" }));
    h.hris.edit("H2", json!({ "full_name": "Grace Murray" }));
    loop {
        let grace = h.payroll.record(&grace_id).expect("Grace in payroll");
        if grace["last_name"] == json!("Murray") {
            break;
        }
        assert!(
            stalled_since.elapsed() < stall - Duration::from_secs(1),
            "a write to another record is sent beside a slow one, not after it: Grace's rename \
             must reach payroll while Ada's write is still held ({grace:?})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        h.payroll.record(&ada_id).expect("Ada in payroll")["last_name"],
        json!("Lovelace"),
        "Ada's write is still held by payroll when Grace's arrives"
    );

    let deadline = Instant::now() + stall + Duration::from_secs(20);
    loop {
        let ada = h.payroll.record(&ada_id).expect("Ada in payroll");
        if ada["last_name"] == json!("Byron") && common::pending(&h.engine).await == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Ada's writes reach payroll once it answers: {ada:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Her second rename was sent only after the first was answered: sent sooner, it would
    // have been overwritten by the first when payroll let that one through.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.payroll.record(&ada_id).expect("Ada in payroll")["last_name"],
        json!("Byron"),
        "a record's writes reach the system in the order they were made: the later rename stays"
    );
    assert_eq!(
        h.payroll.stats().writes_applied - writes_before,
        3,
        "payroll receives Ada's two renames and Grace's one, each once"
    );
    running.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_429_waits_for_retry_after() {
    let h = Harness::start(|_| {}).await;
    h.payroll.fail_next(1, 429, Some(1));
    let started = Instant::now();
    h.hris.edit("H1", ada());
    h.settle().await;
    assert_eq!(
        h.payroll.records().len(),
        1,
        "the write succeeds after the 429"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the retry waited Retry-After (1 s), took {:?}",
        started.elapsed()
    );
    assert_eq!(h.payroll.stats().write_requests, 2, "one 429, one success");
}

#[tokio::test]
async fn retries_exhausted_become_a_dead_letter() {
    let h = Harness::start(|c| c.systems.iter_mut().for_each(|s| s.max_attempts = 3)).await;
    h.payroll.fail_next(3, 503, None);
    h.hris.edit("H1", ada());
    h.settle().await;
    let dead = h
        .engine
        .list_dead_letters(&DeadLetterFilter::default())
        .await
        .expect("list");
    assert_eq!(
        dead.len(),
        1,
        "after 3 failed attempts the write is a dead letter"
    );
    assert_eq!(dead[0].error_class, "retries_exhausted");
    assert_eq!(dead[0].attempts, 3);
    assert_eq!(
        h.payroll.stats().write_requests,
        3,
        "no more than max_attempts requests"
    );
}

#[tokio::test]
async fn an_invalid_inbound_value_is_an_exception_and_the_rest_still_syncs() {
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let (pid, _) = h.payroll_only();
    h.hris.edit(
        "H1",
        json!({ "hire_date": "13/45/2024", "phone": "(415) 555-0188" }),
    );
    h.settle().await;
    let open = open_exceptions(&h, "validation").await;
    assert_eq!(
        open.len(),
        1,
        "a malformed date opens a validation exception"
    );
    assert!(
        open[0].detail["message"]
            .as_str()
            .unwrap_or_default()
            .contains("13/45/2024"),
        "the message names the bad value: {:?}",
        open[0].detail
    );
    let p = h.payroll.record(&pid).expect("p");
    assert_eq!(
        p["hire_date"],
        json!("2021-03-15"),
        "the bad value is not propagated"
    );
    assert_eq!(
        p["phone"],
        json!("+14155550188"),
        "the valid field in the same event syncs"
    );
}

#[tokio::test]
async fn the_audit_is_append_only() {
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let update = sqlx::query("UPDATE audit SET rule = 'tampered'")
        .execute(h.engine.pool())
        .await;
    assert!(update.is_err(), "updating the audit is refused");
    let delete = sqlx::query("DELETE FROM audit")
        .execute(h.engine.pool())
        .await;
    assert!(delete.is_err(), "deleting from the audit is refused");
}

/// Copies the state file as it stands (WAL included) to `name` beside it.
async fn snapshot(h: &Harness, name: &str) -> std::path::PathBuf {
    let path = h.dir.path().join(name);
    sqlx::query("VACUUM INTO ?")
        .bind(path.display().to_string())
        .execute(h.engine.pool())
        .await
        .expect("copy the state file");
    path
}

async fn tamper(path: &std::path::Path, statements: &[&str]) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("open the copy");
    for s in statements {
        sqlx::query(s).execute(&mut conn).await.expect(s);
    }
}

fn verify_cli(path: &std::path::Path) -> (Option<i32>, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["audit", "verify", "--db"])
        .arg(path)
        .env("RUST_LOG", "error")
        .output()
        .expect("run concord audit verify");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn audit_verify_names_the_first_entry_changed_removed_or_added_around_the_engine() {
    use concord::audit_chain::{ChainState, StoredEntry, verify_file};
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let mut ada2 = ada();
    ada2["title"] = json!("Principal Engineer");
    h.hris.edit("H1", ada2);
    h.settle().await;
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM audit ORDER BY id")
        .fetch_all(h.engine.pool())
        .await
        .expect("audit ids");
    assert!(ids.len() >= 6, "the sync wrote an audit: {ids:?}");
    let live = h.dir.path().join("state.db");
    let report = verify_file(&live).await.expect("verify the live file");
    assert_eq!(
        report.state,
        ChainState::Intact,
        "every entry the engine wrote chains to the one before it: {report:?}"
    );
    assert_eq!(report.entries, ids.len() as i64, "every entry is checked");
    let head = report.head.clone().expect("a head");
    assert_eq!(Some(&head.id), ids.last(), "the head is the last entry");
    assert!(
        report.triggers_present,
        "the append-only triggers are in place"
    );
    let (code, out) = verify_cli(&live);
    assert_eq!(code, Some(0), "an intact chain verifies with exit 0: {out}");
    assert!(
        out.contains("chain intact") && out.contains(&head.hash),
        "the command says the chain is intact and prints the head: {out}"
    );

    let k = ids[ids.len() / 2];
    let next = ids[ids.len() / 2 + 1];

    // An entry edited after its trigger was dropped.
    let edited = snapshot(&h, "edited.db").await;
    tamper(
        &edited,
        &[
            "DROP TRIGGER audit_no_update",
            &format!("UPDATE audit SET after = '\"999999\"' WHERE id = {k}"),
        ],
    )
    .await;
    let report = verify_file(&edited).await.expect("verify");
    assert_eq!(
        report.first_broken.as_ref().map(|b| b.id),
        Some(k),
        "an edited entry is the first broken one: {report:?}"
    );
    assert!(!report.triggers_present, "the dropped trigger is reported");
    let (code, out) = verify_cli(&edited);
    assert_eq!(code, Some(1), "a broken chain exits non-zero: {out}");
    assert!(
        out.contains(&format!("BROKEN at entry {k}:")),
        "the command names the first broken entry: {out}"
    );

    // The same edit with the entry's hash recomputed to hide it: the next entry breaks.
    let rehashed = snapshot(&h, "rehashed.db").await;
    let row = sqlx::query(&format!(
        "SELECT {} FROM audit WHERE id = ?",
        concord::audit_chain::STORED_COLUMNS
    ))
    .bind(k)
    .fetch_one(h.engine.pool())
    .await
    .expect("entry k");
    let mut forged = StoredEntry::from_row(&row).expect("entry k's fields");
    forged.after = Some("\"999999\"".into());
    let previous: Vec<u8> =
        sqlx::query_scalar("SELECT hash FROM audit WHERE id < ? ORDER BY id DESC LIMIT 1")
            .bind(k)
            .fetch_one(h.engine.pool())
            .await
            .expect("the hash before k");
    let forged_hash = hex_of(&forged.hash(&previous.try_into().expect("32 bytes")));
    tamper(
        &rehashed,
        &[
            "DROP TRIGGER audit_no_update",
            &format!(
                "UPDATE audit SET after = '\"999999\"', hash = x'{forged_hash}' WHERE id = {k}"
            ),
        ],
    )
    .await;
    let report = verify_file(&rehashed).await.expect("verify");
    assert_eq!(
        report.first_broken.as_ref().map(|b| b.id),
        Some(next),
        "a forged entry with a recomputed hash breaks the chain at the entry after it: {report:?}"
    );

    // An entry removed from the middle.
    let removed = snapshot(&h, "removed.db").await;
    tamper(
        &removed,
        &[
            "DROP TRIGGER audit_no_delete",
            &format!("DELETE FROM audit WHERE id = {k}"),
        ],
    )
    .await;
    let report = verify_file(&removed).await.expect("verify");
    assert_eq!(
        report.first_broken.as_ref().map(|b| b.id),
        Some(next),
        "a removed entry breaks the chain at the entry after it: {report:?}"
    );

    // An entry appended around the engine (inserting is not refused by a trigger).
    let appended = snapshot(&h, "appended.db").await;
    tamper(
        &appended,
        &["INSERT INTO audit (at, actor, direction, rule) VALUES ('2026-01-01T00:00:00Z', 'mallory', 'internal', 'made_up')"],
    )
    .await;
    let report = verify_file(&appended).await.expect("verify");
    assert_eq!(
        report.first_broken.as_ref().map(|b| b.id),
        Some(head.id + 1),
        "an entry written around the engine has no hash and breaks the chain: {report:?}"
    );

    // Entries removed from the end leave no break: the head the operator kept shows it.
    let truncated = snapshot(&h, "truncated.db").await;
    tamper(
        &truncated,
        &[
            "DROP TRIGGER audit_no_delete",
            &format!("DELETE FROM audit WHERE id = {}", head.id),
        ],
    )
    .await;
    let report = verify_file(&truncated).await.expect("verify");
    assert_eq!(report.state, ChainState::Intact, "{report:?}");
    assert_ne!(
        report.head.as_ref(),
        Some(&head),
        "a truncated audit ends at a different head than the one recorded"
    );

    // The engine keeps chaining after all this: the live file is untouched and intact.
    let mut ada3 = ada();
    ada3["title"] = json!("Distinguished Engineer");
    h.hris.edit("H1", ada3);
    h.settle().await;
    let report = verify_file(&live).await.expect("verify the live file");
    assert_eq!(report.state, ChainState::Intact, "{report:?}");
    assert!(
        report.entries > ids.len() as i64,
        "later entries join the chain"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn entries_written_before_the_chain_are_sealed_once_and_stay_unchangeable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("state.db");
    // A state file as the version before the chain left it, with audit entries in it.
    {
        use sqlx::Connection as _;
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .create_if_missing(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .expect("create");
        let before_chain = sqlx::migrate::Migrator {
            migrations: concord::store::MIGRATOR
                .iter()
                .filter(|m| m.version < 20261204000000)
                .cloned()
                .collect::<Vec<_>>()
                .into(),
            ..sqlx::migrate::Migrator::DEFAULT
        };
        before_chain.run(&mut conn).await.expect("old migrations");
        for i in 0..3 {
            sqlx::query("INSERT INTO audit (at, actor, direction, rule, after) VALUES ('2026-11-01T00:00:00Z', 'engine', 'in', 'rule3:newer_wins', ?)")
                .bind(format!("{i}"))
                .execute(&mut conn)
                .await
                .expect("old entry");
        }
    }
    let engine = common::open_engine(dir.path()).await;
    let report = concord::audit_chain::verify_file(&db)
        .await
        .expect("verify");
    assert_eq!(
        report.state,
        concord::audit_chain::ChainState::Intact,
        "entries written before the chain are sealed on the first open: {report:?}"
    );
    assert_eq!(report.entries, 3, "every old entry is sealed, none added");
    let after: Vec<String> = sqlx::query_scalar("SELECT after FROM audit ORDER BY id")
        .fetch_all(engine.pool())
        .await
        .expect("entries");
    assert_eq!(after, ["0", "1", "2"], "sealing changes no entry's fields");
    let reseal = sqlx::query("UPDATE audit SET hash = zeroblob(32) WHERE id = 1")
        .execute(engine.pool())
        .await;
    assert!(reseal.is_err(), "a sealed entry's hash cannot be set again");
    let rewrite = sqlx::query("UPDATE audit SET after = '9' WHERE id = 2")
        .execute(engine.pool())
        .await;
    assert!(rewrite.is_err(), "an old entry's fields stay unchangeable");
    engine
        .record_audit(&[concord::audit::AuditEntry::engine(
            "test:after_sealing",
            concord::audit::Direction::Internal,
        )])
        .await
        .expect("append");
    let report = concord::audit_chain::verify_file(&db)
        .await
        .expect("verify");
    assert_eq!(
        (report.state, report.entries),
        (concord::audit_chain::ChainState::Intact, 4),
        "new entries chain onto the sealed ones: {report:?}"
    );
}

#[tokio::test]
async fn objects_are_added_by_schema_not_by_code() {
    let h = Harness::start(|_| {}).await;
    let mut config = h.config.clone();
    let dependent: concord::model::ObjectSchema = serde_json::from_value(json!({
        "name": "dependent",
        "fields": [
            { "name": "employee_number", "type": "reference", "references": "employee", "required": true },
            { "name": "given_name", "type": "string", "required": true },
            { "name": "birth_date", "type": "date", "sensitive": true },
            { "name": "relationship", "type": "enum", "values": ["spouse", "child", "partner"] }
        ],
        "match_keys": [],
        "delete_policy": { "policy": "propagate" }
    }))
    .expect("a dependent schema as data");
    config.objects.push(dependent);
    h.engine
        .apply_workspace(&config)
        .await
        .expect("a new object is accepted as data");
    assert!(
        h.engine.workspace().object("dependent").is_some(),
        "the dependent object is part of the workspace"
    );

    let mut broken = config.clone();
    broken.objects.last_mut().expect("dependent").match_keys = vec!["nickname".into()];
    let err = h
        .engine
        .apply_workspace(&broken)
        .await
        .expect_err("an unknown match key is refused");
    assert!(
        err.to_string().contains("objects[dependent].match_keys"),
        "the error names the bad key: {err}"
    );
    let _: Value = json!(null);
}
