//! `concord demo --seed 1`, headless, for a bounded time: two realistic HR systems on
//! 127.0.0.1 synced through the `rest` connector and a directory through the `scim` connector,
//! while people edit all three. Afterwards every system must agree with the golden record on
//! every field that no open exception or dead letter explains, and what the run put in front of
//! people (exceptions, dead letters) must be the kinds its hard cases call for, each at least
//! once.
//!
//! Needs a keychain session: run under `keyctl session -` (scripts/test.sh does).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use concord::Engine;
use concord::demo::{DemoOptions, RunningDemo, start};
use concord::model::{RecordId, WorkspaceConfig};
use concord::ops::{DeadLetterFilter, DeadLetterView, ExceptionFilter, ExceptionView};
use serde_json::{Map, Value, json};

type Records = Vec<(String, Map<String, Value>)>;

/// What explains a field disagreeing: an open exception on (record, field), or a dead letter of
/// a write of that field to that system.
struct Excuses {
    exceptions: BTreeSet<(RecordId, String)>,
    dead: BTreeSet<(RecordId, String, String)>,
}

async fn excuses(engine: &Engine, dead_letters: &[DeadLetterView]) -> Excuses {
    let exceptions = open_exceptions(engine).await;
    let mut dead = BTreeSet::new();
    for d in dead_letters {
        let record = d.record_id.expect("a write's dead letter names its record");
        let preview = engine.replay_preview(d.id).await.expect("preview");
        for f in preview.fields {
            dead.insert((record, d.system.clone(), f.field));
        }
    }
    Excuses {
        exceptions: exceptions
            .iter()
            .filter_map(|e| Some((e.record_id?, e.field.clone()?)))
            .collect(),
        dead,
    }
}

async fn open_exceptions(engine: &Engine) -> Vec<ExceptionView> {
    engine
        .list_exceptions(&ExceptionFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .expect("list exceptions")
}

/// Reads every record of `system` through its mapping and compares each field with the golden
/// record. Returns the disagreements nothing explains, and how many fields were compared.
async fn compare(
    engine: &Engine,
    config: &WorkspaceConfig,
    system: &str,
    records: &Records,
    excuses: &Excuses,
) -> (Vec<String>, usize) {
    let schema = config
        .objects
        .iter()
        .find(|o| o.name == "employee")
        .expect("employee object");
    let mapping = config
        .mappings
        .iter()
        .find(|m| m.system == system)
        .expect("mapping");
    let mut wrong = Vec::new();
    let mut compared = 0;
    for (id, record) in records {
        let record_id = engine
            .record_for(system, "employee", id)
            .await
            .expect("lookup")
            .unwrap_or_else(|| panic!("every record of {system} is linked; {id} is not"));
        let golden = engine.golden(record_id).await.expect("golden");
        let inbound = mapping.read(schema, record);
        for (field, value) in inbound.values {
            let expected = golden.get(&field).cloned().unwrap_or(Value::Null);
            // `active` is true for people on leave too: either code agrees with it.
            if inbound
                .alternatives
                .get(&field)
                .is_some_and(|codes| codes.contains(&expected))
            {
                compared += 1;
                continue;
            }
            if excuses.exceptions.contains(&(record_id, field.clone()))
                || excuses
                    .dead
                    .contains(&(record_id, system.to_owned(), field.clone()))
            {
                continue;
            }
            compared += 1;
            if value != expected {
                wrong.push(format!(
                    "{system} {id} {field}: holds {value}, golden {expected}"
                ));
            }
        }
    }
    (wrong, compared)
}

async fn run_demo(opts: &DemoOptions) -> RunningDemo {
    let mut demo = start(opts).await.expect(
        "the demo starts (it needs a keychain session: run the tests under `keyctl session -`)",
    );
    tokio::time::sleep(opts.duration.expect("a bounded run")).await;
    demo.stop_simulator().await;
    demo.settle(Duration::from_secs(60))
        .await
        .expect("once people stop editing, the engine settles");
    demo
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_seed_1_converges_and_raises_only_the_expected_exceptions_and_dead_letters() {
    let began = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let opts = DemoOptions {
        seed: 1,
        employees: 300,
        edits_per_sec: 8.0,
        duration: Some(Duration::from_secs(15)),
        db: dir.path().join("demo.db"),
        quiet: true,
    };
    let demo = run_demo(&opts).await;
    let engine = demo.engine();
    let config = demo.workspace().clone();
    let sim = demo.sim_stats();
    assert!(
        sim.edits >= 60,
        "people made edits at the asked rate: {} edits",
        sim.edits
    );

    // Exceptions: only the kinds the run's hard cases call for, each at least once.
    let exceptions = open_exceptions(engine).await;
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &exceptions {
        *kinds.entry(e.kind.as_str()).or_default() += 1;
    }
    let unexpected: Vec<&ExceptionView> = exceptions
        .iter()
        .filter(|e| !matches!(e.kind.as_str(), "conflict" | "validation"))
        .filter(|e| {
            !(e.kind == "non_owner_change"
                && e.field.as_deref() == Some("work_email")
                && e.system.as_deref() == Some("hris"))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "the demo opens only conflicts (salary changed on both sides), validation failures \
         (bad data) and the HRIS changing a work e-mail the directory owns; also found: \
         {unexpected:?}"
    );
    assert!(
        kinds.get("non_owner_change").is_some_and(|n| *n >= 1),
        "the HRIS changing a work e-mail, which the directory owns, is held for a steward: \
         {kinds:?}"
    );
    assert!(
        kinds.get("conflict").is_some_and(|n| *n >= 1),
        "salary changed in both systems at once opens a conflict: {kinds:?}"
    );
    for c in exceptions.iter().filter(|e| e.kind == "conflict") {
        assert_eq!(
            c.field.as_deref(),
            Some("pay_rate"),
            "only pay_rate is decided by a person (policy manual); phone and address conflicts \
             are decided by the later write: {c:?}"
        );
    }
    let validations: Vec<&ExceptionView> = exceptions
        .iter()
        .filter(|e| e.kind == "validation")
        .collect();
    assert!(
        validations
            .iter()
            .any(|e| e.field.as_deref() == Some("hire_date")
                && e.system.as_deref() == Some("hris")
                && e.detail["direction"] == json!("in")
                && e.detail["value"] == json!("13/45/2024")),
        "a hire date typed as 13/45/2024 in the HRIS is refused on the way in: {validations:?}"
    );
    assert!(
        validations
            .iter()
            .any(|e| e.field.as_deref() == Some("family_name")
                && e.system.as_deref() == Some("hris")
                && e.detail["direction"] == json!("out")),
        "a payroll hire without a last name cannot be created in the HRIS: {validations:?}"
    );

    // Dead letters: only writes the target refused as invalid, at least one.
    let dead_letters = engine
        .list_dead_letters(&DeadLetterFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .await
        .expect("dead letters");
    assert!(
        !dead_letters.is_empty(),
        "payroll refuses a UK phone and a salary above its limit: dead letters"
    );
    for d in &dead_letters {
        assert_eq!(
            (d.error_class.as_str(), d.system.as_str(), d.response_status),
            ("validation", "payroll", Some(422)),
            "the only dead letters are writes payroll refused as invalid (422); transient \
             failures (503, 429, slow answers, 412) are retried or re-read, never dead: {d:?}"
        );
    }

    // Convergence: every field of every record of both systems equals the golden record,
    // unless an open exception or a dead letter explains why not.
    let excuses = excuses(engine, &dead_letters).await;
    let hris = demo.hris().records();
    let payroll = demo.payroll().records();
    assert!(
        hris.len() >= 290 && payroll.len() >= 290,
        "both systems hold the company: HRIS {}, payroll {}",
        hris.len(),
        payroll.len()
    );
    let (hris_wrong, hris_compared) = compare(engine, &config, "hris", &hris, &excuses).await;
    let (payroll_wrong, payroll_compared) =
        compare(engine, &config, "payroll", &payroll, &excuses).await;
    let directory: Records = demo
        .directory()
        .snapshot()
        .users
        .into_iter()
        .filter_map(|u| {
            let user = u.as_object()?.clone();
            Some((user.get("id")?.as_str()?.to_owned(), user))
        })
        .collect();
    assert!(
        directory.len() >= 290,
        "the directory holds the company: {}",
        directory.len()
    );
    let status: BTreeMap<String, String> = hris
        .iter()
        .filter_map(|(_, r)| {
            Some((
                r.get("employee_id")?.as_str()?.to_owned(),
                r.get("status")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut on_leave = 0;
    let mut left = 0;
    for (_, user) in &directory {
        let number = user["externalId"].as_str().unwrap_or_default();
        let expected = match status.get(number).map(String::as_str) {
            Some("On Leave") => {
                on_leave += 1;
                true
            }
            Some("Terminated") => {
                left += 1;
                false
            }
            Some(_) => true,
            None => continue,
        };
        assert_eq!(
            user["active"],
            json!(expected),
            "{number}: people on leave keep an active account, leavers are deactivated"
        );
    }
    // Few people are on leave at a time (none, some seeds); leavers there always are.
    assert!(
        left > 0,
        "the directory holds leavers ({left}) and people on leave ({on_leave}), each checked"
    );
    let (directory_wrong, directory_compared) =
        compare(engine, &config, "directory", &directory, &excuses).await;
    assert!(
        directory_compared > 300 * 8,
        "the check compared the directory's mapped fields: {directory_compared}"
    );
    assert!(
        directory_wrong.is_empty(),
        "the directory converges on the golden record (e-mail and phone it owns, the rest from \
         the HRIS): {directory_wrong:?}"
    );
    assert!(
        hris_compared > 300 * 15 && payroll_compared > 300 * 15,
        "the check compared the mapped fields of every record: {hris_compared} in the HRIS, \
         {payroll_compared} in payroll"
    );
    assert!(
        hris_wrong.is_empty() && payroll_wrong.is_empty(),
        "both systems converge on the golden record for every field no exception or dead \
         letter explains; disagreements: {hris_wrong:?} {payroll_wrong:?}"
    );

    // Every person is in both systems, unless an open exception says why not.
    let exception_records: BTreeSet<RecordId> =
        exceptions.iter().filter_map(|e| e.record_id).collect();
    let hris_ids: BTreeSet<RecordId> = linked(engine, "hris", &hris).await;
    let payroll_ids: BTreeSet<RecordId> = linked(engine, "payroll", &payroll).await;
    let one_sided: Vec<&RecordId> = hris_ids
        .symmetric_difference(&payroll_ids)
        .filter(|r| !exception_records.contains(r))
        .collect();
    assert!(
        one_sided.is_empty(),
        "a person in one system is created in the other, unless an exception says why not: \
         {one_sided:?}"
    );
    assert!(
        hris_ids.intersection(&payroll_ids).count() >= 290,
        "people in both systems are matched by employee number into one record each"
    );

    // The check can fail: one field changed behind the engine's back is reported.
    let mut tampered = payroll.clone();
    let victim = tampered
        .iter_mut()
        .find(|(_, r)| r.get("last_name").is_some_and(Value::is_string))
        .expect("someone with a last name");
    victim.1.insert("last_name".into(), json!("Tampered"));
    let (caught, _) = compare(engine, &config, "payroll", &tampered, &excuses).await;
    assert_eq!(
        caught.len(),
        1,
        "a field that disagrees with the golden record is caught: {caught:?}"
    );

    // The demo's own report agrees.
    let report = demo.report().await.expect("report");
    assert!(report.converged(), "the demo reports convergence: {report}");
    assert_eq!(
        report.exceptions.values().sum::<usize>(),
        exceptions.len(),
        "the report counts the open exceptions"
    );
    assert_eq!(
        report.dead_letters.keys().collect::<Vec<_>>(),
        vec!["validation"],
        "the report counts dead letters by class"
    );
    demo.shutdown().await;
    println!("{report}\n(test took {:.1?})", began.elapsed());
}

async fn linked(engine: &Engine, system: &str, records: &Records) -> BTreeSet<RecordId> {
    let mut out = BTreeSet::new();
    for (id, _) in records {
        if let Some(r) = engine
            .record_for(system, "employee", id)
            .await
            .expect("lookup")
        {
            out.insert(r);
        }
    }
    out
}
