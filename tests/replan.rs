//! Replay after a fix: a write a strict system refused, because of a mapping mistake, is
//! planned again after the mapping is corrected, and the corrected request reaches the system.
//! The strict system is a real HTTP server on 127.0.0.1 that refuses unknown fields with 422,
//! as many vendor APIs do.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use concord::audit::Actor;
use concord::loopback::LoopbackSystem;
use concord::model::WorkspaceConfig;
use concord::ops::DeadLetterFilter;
use serde_json::{Map, Value, json};

const KNOWN: [&str; 4] = ["id", "employeeNumber", "name", "title"];

/// Employees at `/employees`; a body with any other field is refused with 422 naming it.
#[derive(Clone, Default)]
struct Strict {
    records: Arc<Mutex<BTreeMap<u64, Map<String, Value>>>>,
    bodies: Arc<Mutex<Vec<(String, Value)>>>,
}

impl Strict {
    async fn start() -> (String, Self) {
        let state = Self::default();
        let app = Router::new()
            .route("/employees", get(list).post(create))
            .route("/employees/{id}", get(one).patch(patch))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), state)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Map<String, Value>>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bodies of the writes it received, with their method.
    fn bodies(&self) -> Vec<(String, Value)> {
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn check(&self, method: &str, body: &Map<String, Value>) -> Option<Response> {
        self.bodies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((method.to_owned(), Value::Object(body.clone())));
        let unknown: Vec<&String> = body
            .keys()
            .filter(|k| !KNOWN.contains(&k.as_str()))
            .collect();
        (!unknown.is_empty()).then(|| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "message": format!("unknown field {}", unknown[0]) })),
            )
                .into_response()
        })
    }
}

async fn list(State(s): State<Strict>) -> Json<Vec<Map<String, Value>>> {
    Json(s.lock().values().cloned().collect())
}

async fn one(State(s): State<Strict>, Path(id): Path<u64>) -> Response {
    match s.lock().get(&id) {
        Some(r) => Json(r.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn create(State(s): State<Strict>, Json(body): Json<Map<String, Value>>) -> Response {
    if let Some(refused) = s.check("POST", &body) {
        return refused;
    }
    let mut records = s.lock();
    let id = records.keys().max().copied().unwrap_or(0) + 1;
    let mut record = body;
    record.insert("id".into(), json!(id));
    records.insert(id, record.clone());
    (StatusCode::CREATED, Json(record)).into_response()
}

async fn patch(
    State(s): State<Strict>,
    Path(id): Path<u64>,
    Json(body): Json<Map<String, Value>>,
) -> Response {
    if let Some(refused) = s.check("PATCH", &body) {
        return refused;
    }
    let mut records = s.lock();
    let Some(record) = records.get_mut(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    record.extend(body);
    Json(record.clone()).into_response()
}

/// The hub (full names, webhooks) and the strict vendor, whose title is mapped to `title_path`.
fn workspace(hub: &str, vendor: &str, title_path: &str) -> WorkspaceConfig {
    serde_json::from_value(json!({
        "systems": [
            { "id": "hub", "name": "Hub", "connector": "rest", "webhook_secret": "hub-webhook",
              "config": { "base_url": hub, "objects": { "employee": {
                  "path": "/employees", "version_field": "version", "concurrency": { "style": "etag" } } } } },
            { "id": "vendor", "name": "Vendor", "connector": "rest",
              "config": { "base_url": vendor, "objects": { "employee": { "path": "/employees" } } } }
        ],
        "objects": [concord::schema::employee()],
        "mappings": [
            { "system": "hub", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employee_id"] },
                { "canonical": ["given_name", "family_name"], "system": ["full_name"], "transform": { "kind": "full_name" } },
                { "canonical": ["employment_status"], "system": ["status"], "transform": { "kind": "enum", "table": [
                    { "system": "Active", "canonical": "active" } ] } },
                { "canonical": ["job_title"], "system": ["title"] }
            ]},
            { "system": "vendor", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employeeNumber"] },
                { "canonical": ["given_name", "family_name"], "system": ["name"], "transform": { "kind": "full_name" } },
                { "canonical": ["job_title"], "system": [title_path] }
            ]}
        ]
    }))
    .expect("a valid workspace")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_write_planned_again_after_a_mapping_fix_sends_the_corrected_body() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (engine, secrets) = common::open_engine_with_secrets(dir.path()).await;
    let cancel = tokio_util::sync::CancellationToken::new();
    let (addr, _) = concord::server::spawn_loopback(engine.clone(), 0, cancel.clone())
        .await
        .expect("webhook server");
    let hub = LoopbackSystem::start(
        "hub",
        "employee",
        "/employees",
        Some(format!("http://{addr}/hooks/hub")),
    )
    .await
    .expect("hub");
    common::trust_hooks(&secrets, "hub", &hub);
    let (vendor_url, vendor) = Strict::start().await;
    // The admin's mistake: the vendor's field is `title`, not `titel`.
    engine
        .apply_workspace(&workspace(&hub.base_url(), &vendor_url, "titel"))
        .await
        .expect("workspace");
    hub.edit(
        "H1",
        json!({ "employee_id": "E1", "full_name": "Ada Lovelace", "status": "Active", "title": "Analyst" }),
    );
    let settle = || async {
        while hub.hooks_pending() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        engine
            .run_until_idle(Duration::from_secs(20))
            .await
            .expect("idle");
    };
    settle().await;

    let dead = engine
        .list_dead_letters(&DeadLetterFilter::default())
        .await
        .expect("dead letters");
    assert_eq!(
        dead.len(),
        1,
        "the refused create is a dead letter: {dead:?}"
    );
    let dl = &dead[0];
    let (summary, _) = engine.summary(&(Vec::new(), 0)).await.expect("a summary");
    assert_eq!(
        (
            summary.dead_letters,
            summary
                .deltas
                .iter()
                .find(|(n, _)| *n == "dead_letters")
                .map(|d| d.1)
        ),
        (1, Some(1)),
        "the minute's summary line counts the new dead letter and the one waiting: {summary:?}"
    );
    assert_eq!(
        dl.error_class, "validation",
        "a 422 is a validation failure"
    );
    let sent = dl
        .request
        .as_ref()
        .expect("the dead letter keeps the request");
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/employees"),
        "the request is shown as it was sent"
    );
    assert_eq!(
        sent.body.as_ref().and_then(|b| b.get("titel")),
        Some(&json!("Analyst")),
        "its body is the one the vendor refused"
    );

    // The admin fixes the mapping; support looks at the preview, then plans the write again.
    engine
        .apply_workspace(&workspace(&hub.base_url(), &vendor_url, "title"))
        .await
        .expect("the fixed mapping applies");
    let preview = engine.replay_preview(dl.id).await.expect("preview");
    assert!(
        preview
            .sent
            .as_ref()
            .and_then(|s| s.body.as_ref())
            .is_some_and(|b| b.contains_key("titel")),
        "a plain replay would send the stored, wrong body again"
    );
    let replan = preview.replan.expect("a write can be planned again");
    let request = replan.request.expect("the re-plan shows its request");
    assert_eq!(
        (
            request.method.as_str(),
            request.path.as_str(),
            replan.op.as_str()
        ),
        ("POST", "/employees", "create"),
        "the re-plan shows the exact request: method and path"
    );
    assert_eq!(
        request.body,
        json!({ "employeeNumber": "E1", "name": "Ada Lovelace", "title": "Analyst" })
            .as_object()
            .cloned(),
        "and the body the corrected mapping makes"
    );
    let support = Actor::person("sam", "support");
    let outcome = engine
        .replan_dead_letter(dl.id, &support)
        .await
        .expect("replan");
    assert_eq!(
        outcome.outcome, "queued",
        "a new write is queued: {outcome:?}"
    );
    settle().await;

    let held: Vec<Map<String, Value>> = vendor.lock().values().cloned().collect();
    assert_eq!(held.len(), 1, "the vendor holds the employee once");
    assert_eq!(
        held[0].get("title"),
        Some(&json!("Analyst")),
        "the corrected body reached the vendor"
    );
    let posts: Vec<Value> = vendor
        .bodies()
        .into_iter()
        .filter(|(m, _)| m == "POST")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(
        posts,
        vec![
            json!({ "employeeNumber": "E1", "name": "Ada Lovelace", "titel": "Analyst" }),
            json!({ "employeeNumber": "E1", "name": "Ada Lovelace", "title": "Analyst" })
        ],
        "the vendor got the wrong body once and the corrected one once, nothing else"
    );
    let after = engine.dead_letter(dl.id).await.expect("dead letter");
    assert_eq!(
        (after.status.as_str(), after.actor.as_deref()),
        ("replayed", Some("sam")),
        "the dead letter is settled, naming who planned it again"
    );
    let again = engine
        .replan_dead_letter(dl.id, &support)
        .await
        .expect("second replan");
    assert_eq!(
        again.outcome, "already_replayed",
        "planning a settled dead letter again sends nothing"
    );
    let record = engine
        .record_for("hub", "employee", "H1")
        .await
        .expect("lookup")
        .expect("linked");
    let audit = engine.audit_for(record, None).await.expect("audit");
    assert!(
        audit
            .iter()
            .any(|e| e.rule == "dead_letter:replan" && e.actor == "sam"),
        "the re-plan is audited with the person who asked"
    );
    cancel.cancel();
}
