//! Reconciliation against a real third-party REST system: two json-server instances (pinned)
//! synced both ways, polled only (json-server sends no webhooks and its deletes leave no
//! trace). A delete in one reaches the other within one reconciliation interval; a run that
//! finds too many records gone deletes nothing until an admin confirms; a change no poll reports
//! is repaired; a run interrupted mid-listing resumes from its page.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::json_server::{JsonServer, fixture_dir, seed_of};
use concord::Engine;
use concord::audit::Actor;
use concord::model::WorkspaceConfig;
use concord::ops::ExceptionFilter;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

fn people() -> PathBuf {
    fixture_dir().join("people.json")
}

/// json-server's `rest` config: `_page`/`_limit` paging, incremental polling by `updatedAt`
/// when `poll_secs` is set, and reconciliation every `reconcile_secs` (0: on demand only).
fn js_config(base: &str, poll_secs: Option<f64>, reconcile_secs: f64) -> Value {
    let mut config = json!({
        "base_url": base,
        "objects": { "employee": {
            "path": "/employees",
            "pagination": { "style": "page", "page_param": "_page", "size_param": "_limit", "size": 10 },
            "total_header": "X-Total-Count",
            "modified_field": "updatedAt",
            "incremental": { "style": "param", "param": "updatedAt_gte", "format": "rfc3339" },
            "lookup": { "style": "param" }
        } },
        "reconcile": { "interval_secs": reconcile_secs }
    });
    if let Some(secs) = poll_secs {
        config["poll"] = json!({ "interval_secs": secs });
    }
    config
}

/// Both sides map the same json-server shapes; deletes propagate.
fn workspace(a: Value, b: Value) -> WorkspaceConfig {
    let rules = json!([
        { "canonical": ["employee_number"], "system": ["employeeNumber"] },
        { "canonical": ["given_name"], "system": ["firstName"] },
        { "canonical": ["family_name"], "system": ["lastName"] },
        { "canonical": ["job_title"], "system": ["title"] },
        { "canonical": ["work_email"], "system": ["contact/email"] },
        { "canonical": ["employment_status"], "system": ["status"], "transform": { "kind": "enum", "table": [
            { "system": "ACTIVE", "canonical": "active" },
            { "system": "LEAVE", "canonical": "on_leave" },
            { "system": "TERMINATED", "canonical": "terminated" } ] } }
    ]);
    let mut employee = concord::schema::employee();
    employee.delete_policy = concord::model::DeletePolicy::Propagate;
    serde_json::from_value(json!({
        "systems": [
            { "id": "a", "name": "json-server A", "connector": "rest", "config": a },
            { "id": "b", "name": "json-server B", "connector": "rest", "config": b }
        ],
        "objects": [employee],
        "mappings": [
            { "system": "a", "object": "employee", "rules": rules },
            { "system": "b", "object": "employee", "rules": rules }
        ]
    }))
    .expect("a valid workspace")
}

struct Pair {
    a: Option<JsonServer>,
    b: JsonServer,
    engine: Engine,
    _dir: TempDir,
    cancel: CancellationToken,
}

impl Pair {
    async fn start(config: impl Fn(&str) -> Value) -> Self {
        Self::start_each(&config, &config).await
    }

    async fn start_each(
        config_a: impl Fn(&str) -> Value,
        config_b: impl Fn(&str) -> Value,
    ) -> Self {
        let a = JsonServer::start(&people()).await;
        let b = JsonServer::start(&people()).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = common::open_engine(dir.path()).await;
        engine
            .apply_workspace(&workspace(config_a(a.base()), config_b(b.base())))
            .await
            .expect("workspace applies");
        Self {
            a: Some(a),
            b,
            engine,
            _dir: dir,
            cancel: CancellationToken::new(),
        }
    }

    fn a(&self) -> &JsonServer {
        self.a.as_ref().expect("json-server A runs")
    }

    /// Both initial listings, applied and delivered: every person linked in both systems.
    async fn initial_sync(&self) {
        for system in ["a", "b"] {
            self.engine
                .poll(system, |_| {})
                .await
                .expect("the initial listing works");
        }
        self.settle().await;
        assert_eq!(self.links("a").await, 30, "all 30 people are linked in a");
        assert_eq!(self.links("b").await, 30, "all 30 people are linked in b");
    }

    async fn settle(&self) {
        self.engine
            .run_until_idle(Duration::from_secs(30))
            .await
            .expect("the engine goes idle");
    }

    async fn links(&self, system: &str) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM links WHERE system_id = ? AND deleted = 0")
            .bind(system)
            .fetch_one(self.engine.pool())
            .await
            .expect("count")
    }

    async fn has(server: &JsonServer, id: u64) -> bool {
        server.all().await.iter().any(|r| r["id"] == json!(id))
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_in_a_polled_system_reaches_the_other_within_one_reconciliation_interval() {
    let interval = 3.0;
    let s = Pair::start(|base| js_config(base, Some(0.5), interval)).await;
    s.initial_sync().await;
    let running = s.engine.start(s.cancel.clone());

    // Someone deletes employee 5 in a: json-server keeps no trace, so no poll reports it.
    s.a().delete(5).await;
    let deleted_at = Instant::now();
    let limit = Duration::from_secs_f64(interval) + Duration::from_secs(3);
    while Pair::has(&s.b, 5).await {
        assert!(
            deleted_at.elapsed() < limit,
            "a delete in a polled system reaches the other within one reconciliation interval \
             ({interval} s, plus 3 s to apply and deliver): b still holds employee 5 after {:?}",
            deleted_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = deleted_at.elapsed();
    running.shutdown(Duration::from_secs(5)).await;
    println!("the delete reached b {took:?} after it was made in a");

    assert_eq!(
        s.b.all().await.len(),
        29,
        "only employee 5 is deleted in b: the other 29 stay"
    );
    let deletes: Vec<String> =
        s.b.engine_writes()
            .into_iter()
            .filter(|w| w.starts_with("DELETE"))
            .collect();
    assert_eq!(
        deletes,
        vec!["DELETE /employees/5".to_owned()],
        "b receives exactly one delete, for employee 5"
    );
    let runs = s.engine.reconcile_runs(Some("a"), 10).await.expect("runs");
    let found = runs
        .iter()
        .find(|r| r.deleted == 1)
        .expect("a reconciliation of a found the delete");
    assert_eq!(found.status, "done", "that run finished: {found:?}");
    assert_eq!(found.vanished, 1, "one record vanished from a");
    let record = s
        .engine
        .record_linked("a", "5")
        .await
        .expect("lookup")
        .expect("employee 5 was linked");
    let audit = s.engine.audit_for(record, None).await.expect("audit");
    assert!(
        audit.iter().any(|e| e.rule == "delete:propagate"),
        "the delete is audited with the object's delete policy: {:?}",
        audit.iter().map(|e| &e.rule).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_system_reconciled_on_a_schedule_is_listed_at_once_when_first_connected() {
    // Hourly reconciliation, no polling: both systems already hold the same people, but b
    // lacks employee 7.
    let s = Pair::start(|base| js_config(base, None, 3600.0)).await;
    s.b.delete(7).await;
    let running = s.engine.start(s.cancel.clone());
    let started = Instant::now();
    while s.links("a").await < 30 || s.links("b").await < 30 || s.b.all().await.len() < 30 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "a newly connected system is listed when the engine starts, not an interval later: \
             after {:?}, {} people linked in a, {} in b",
            started.elapsed(),
            s.links("a").await,
            s.links("b").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.shutdown(Duration::from_secs(5)).await;
    let posts: Vec<String> =
        s.b.engine_writes()
            .into_iter()
            .filter(|w| w.starts_with("POST"))
            .collect();
    assert_eq!(
        posts.len(),
        1,
        "b gets one create, for employee 7; the 29 it holds are linked, not created again: {posts:?}"
    );
    assert_eq!(s.b.all().await.len(), 30, "b holds each person once");
    assert!(
        s.a().engine_writes().iter().all(|w| !w.starts_with("POST")),
        "a holds everyone already: nothing is created there"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_30_percent_trips_the_guard_and_nothing_is_deleted_until_an_admin_confirms() {
    let s = Pair::start(|base| js_config(base, Some(0.5), 0.0)).await;
    s.initial_sync().await;
    let gone: Vec<u64> = (1..=9).map(|i| i * 3).collect();
    for id in &gone {
        s.a().delete(*id).await;
    }

    let runs = s
        .engine
        .reconcile("a", "test", |_| {})
        .await
        .expect("the reconciliation runs");
    assert_eq!(runs.len(), 1, "one run for the one object a maps");
    let run = &runs[0];
    assert_eq!(
        run.status, "needs_confirmation",
        "9 of 30 records gone (30%) is more than the 10% one run may delete: {run:?}"
    );
    assert_eq!((run.vanished, run.deleted), (9, 0), "nothing was deleted");
    s.settle().await;
    assert_eq!(
        s.b.all().await.len(),
        30,
        "b still holds all 30 people while the admin has not confirmed"
    );
    assert_eq!(s.links("a").await, 30, "and every link to a is kept");
    let guard = s
        .engine
        .list_exceptions(&ExceptionFilter {
            kind: Some("reconcile_guard".into()),
            ..ExceptionFilter::default()
        })
        .await
        .expect("exceptions");
    assert_eq!(
        guard.len(),
        1,
        "an exception asks an admin to confirm: {guard:?}"
    );

    // The admin confirms: the records still gone are deleted, in a's links and in b.
    let admin = Actor::person("ada", "admin");
    let confirmed = s
        .engine
        .confirm_reconcile(run.id, &admin)
        .await
        .expect("confirm");
    assert_eq!(confirmed.status, "done");
    assert_eq!(confirmed.deleted, 9, "the 9 records gone are deleted");
    s.settle().await;
    let left: Vec<u64> =
        s.b.all()
            .await
            .iter()
            .filter_map(|r| r["id"].as_u64())
            .collect();
    assert_eq!(left.len(), 21, "b keeps the 21 others: {left:?}");
    assert!(
        gone.iter().all(|id| !left.contains(id)),
        "the 9 deleted in a are deleted in b"
    );
    let open = s
        .engine
        .list_exceptions(&ExceptionFilter {
            kind: Some("reconcile_guard".into()),
            ..ExceptionFilter::default()
        })
        .await
        .expect("exceptions");
    assert!(open.is_empty(), "the guard's exception is resolved");
    assert!(
        s.engine.confirm_reconcile(run.id, &admin).await.is_err(),
        "a run is confirmed once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dismissed_guard_keeps_every_record() {
    let s = Pair::start(|base| js_config(base, Some(0.5), 0.0)).await;
    s.initial_sync().await;
    for id in 1..=4 {
        s.a().delete(id).await;
    }
    let run = s
        .engine
        .reconcile("a", "test", |_| {})
        .await
        .expect("runs")
        .remove(0);
    assert_eq!(run.status, "needs_confirmation", "4 of 30 is over 10%");
    let kept = s
        .engine
        .dismiss_reconcile(
            run.id,
            "a migration in a; they come back",
            &Actor::person("ada", "admin"),
        )
        .await
        .expect("dismiss");
    assert_eq!(kept.status, "dismissed");
    s.settle().await;
    assert_eq!(s.b.all().await.len(), 30, "a dismissed run deletes nothing");
    assert!(
        s.b.engine_writes().iter().all(|w| !w.starts_with("DELETE")),
        "b received no delete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_repairs_a_change_no_poll_reports() {
    // a is not polled at all: only reconciliation can see its changes (its schedule is far
    // off; the runs here are on demand). Creates to it wait for its first full listing.
    let s = Pair::start_each(
        |base| js_config(base, None, 3600.0),
        |base| js_config(base, Some(0.5), 0.0),
    )
    .await;
    s.engine.poll("b", |_| {}).await.expect("b's listing");
    while s.engine.process_inbox().await.expect("apply") > 0 {}
    assert_eq!(
        s.engine.deliver("a").await.expect("a delivery round"),
        0,
        "creates to a wait for its first full listing"
    );
    assert!(
        s.a().engine_writes().is_empty(),
        "nothing is created in a before its first full listing linked what it holds"
    );
    let first = s
        .engine
        .reconcile("a", "test", |_| {})
        .await
        .expect("a's first reconciliation")
        .remove(0);
    assert_eq!(
        (first.listed, first.unknown),
        (30, 30),
        "a first run meets all 30 people of a: {first:?}"
    );
    s.settle().await;
    assert_eq!(
        s.links("a").await,
        30,
        "a's people are linked by employee number"
    );
    assert!(
        s.a().engine_writes().is_empty(),
        "and none was created twice: {:?}",
        s.a().engine_writes()
    );

    s.a().patch(7, json!({ "title": "Head of Payroll" })).await;
    let mut pages = Vec::new();
    let run = s
        .engine
        .reconcile("a", "test", |p| pages.push(p.listed))
        .await
        .expect("runs")
        .remove(0);
    assert_eq!(pages, vec![10, 20, 30], "progress after every page");
    assert_eq!(
        (run.status.as_str(), run.changed, run.unknown, run.deleted),
        ("done", 1, 0, 0),
        "one change the shadows do not explain, nothing new, nothing gone: {run:?}"
    );
    s.settle().await;
    assert_eq!(
        s.b.get(7).await["title"],
        json!("Head of Payroll"),
        "the change only reconciliation saw reaches b"
    );
    let again = s
        .engine
        .reconcile("a", "test", |_| {})
        .await
        .expect("runs")
        .remove(0);
    assert_eq!(
        again.changed, 0,
        "a second run finds nothing: what the first queued is applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_off_mid_listing_resumes_from_its_page() {
    let mut s = Pair::start(|base| js_config(base, Some(0.5), 0.0)).await;
    s.initial_sync().await;
    let ids = s.engine.begin_reconcile("a", "test").await.expect("begin");
    // a goes away after the first page: the run stops there, still running.
    let mut a = s.a.take();
    let cut = s
        .engine
        .run_reconcile(&ids, |p| {
            if p.listed == 10 {
                a.take();
            }
        })
        .await
        .expect("an unavailable system pauses the run")
        .remove(0);
    assert_eq!(
        (cut.status.as_str(), cut.listed),
        ("running", 10),
        "the run keeps its place: {cut:?}"
    );

    // a is back (at a new address, with the same people): the run goes on from page 2.
    let back = JsonServer::start(&people()).await;
    s.engine
        .apply_workspace(&workspace(
            js_config(back.base(), Some(0.5), 0.0),
            js_config(s.b.base(), Some(0.5), 0.0),
        ))
        .await
        .expect("workspace");
    let done = s
        .engine
        .run_reconcile(&ids, |_| {})
        .await
        .expect("the run resumes")
        .remove(0);
    let listings: Vec<String> = back
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /employees?") && r.contains("_page="))
        .collect();
    assert_eq!(
        listings,
        vec![
            "GET /employees?_page=2&_limit=10".to_owned(),
            "GET /employees?_page=3&_limit=10".to_owned()
        ],
        "the resumed run lists from the page it had reached, never the first again"
    );
    assert_eq!(
        (done.status.as_str(), done.listed, done.deleted),
        ("done", 30, 0),
        "it sees all 30 and deletes nothing: {done:?}"
    );
    assert_eq!(seed_of(&people()).len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_push_of_a_filtered_set_writes_each_record_once() {
    let s = Pair::start(|base| js_config(base, Some(0.5), 0.0)).await;
    s.initial_sync().await;
    let mut engineers: Vec<u64> = seed_of(&people())
        .iter()
        .filter(|r| r["title"] == json!("Engineer"))
        .filter_map(|r| r["id"].as_u64())
        .collect();
    engineers.sort_unstable();
    assert!(engineers.len() >= 2, "the seed has several engineers");
    let before = s.b.engine_writes().len();

    let selection = concord::replan::RepushSelection {
        filter: [("job_title".to_owned(), json!("Engineer"))]
            .into_iter()
            .collect(),
        ..concord::replan::RepushSelection::default()
    };
    let outcome = s
        .engine
        .repush("b", &selection, &Actor::person("sam", "support"))
        .await
        .expect("re-push");
    assert_eq!(
        (outcome.matched, outcome.queued),
        (engineers.len() as u64, engineers.len() as u64),
        "every engineer is matched and gets one write"
    );
    s.settle().await;
    // The echoes come back on the next poll: nothing more is written.
    s.engine.poll("b", |_| {}).await.expect("poll");
    s.settle().await;

    let writes: Vec<String> = s.b.engine_writes()[before..].to_vec();
    let mut written: Vec<u64> = writes
        .iter()
        .filter_map(|w| w.strip_prefix("PATCH /employees/"))
        .filter_map(|id| id.parse().ok())
        .collect();
    written.sort_unstable();
    assert_eq!(
        written, engineers,
        "re-push of a filtered set writes each matching record once, and nothing else: {writes:?}"
    );
    assert_eq!(writes.len(), engineers.len(), "no other write: {writes:?}");
    for id in &engineers {
        let record = s.b.get(*id).await;
        assert_eq!(
            record["contact"]["fax"],
            json!(format!("+141555509{id:02}")),
            "employee {id}: the unmapped contact.fax survives the re-push"
        );
    }
    assert!(
        s.engine
            .repush(
                "b",
                &concord::replan::RepushSelection::default(),
                &Actor::person("sam", "support")
            )
            .await
            .is_err(),
        "a re-push must say which records: ids, a filter, or all"
    );
}
