//! Schemas real systems have: a directory that keeps e-mails in an array of typed elements and a
//! status as a boolean (json-server, pinned, seeded with `directory.json`) synced with an HR
//! system that has a nested contact and a three-value status (json-server with `people.json`);
//! and a listing whose offsets count from one and whose pages are smaller than asked.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use common::json_server::{JsonServer, fixture_dir};
use concord::Engine;
use concord::model::WorkspaceConfig;
use serde_json::{Map, Value, json};

fn js_config(base: &str) -> Value {
    json!({
        "base_url": base,
        "objects": { "employee": {
            "path": "/employees",
            "pagination": { "style": "page", "page_param": "_page", "size_param": "_limit", "size": 10 },
            "total_header": "X-Total-Count",
            "modified_field": "updatedAt",
            "incremental": { "style": "param", "param": "updatedAt_gte", "format": "rfc3339" }
        } },
        // Polled (the tests poll by hand): no creates before a system's listing linked its people.
        "poll": { "interval_secs": 60 }
    })
}

/// `hr` (people.json: nested contact, ACTIVE/LEAVE/TERMINATED) and `dir` (directory.json: an
/// `emails` array of typed elements, `active` as a boolean: active and on leave both write
/// `true`).
fn workspace(hr: &str, dir: &str) -> WorkspaceConfig {
    serde_json::from_value(json!({
        "systems": [
            { "id": "hr", "name": "HR", "connector": "rest", "config": js_config(hr) },
            { "id": "dir", "name": "Directory", "connector": "rest", "config": js_config(dir) }
        ],
        "objects": [concord::schema::employee()],
        "mappings": [
            { "system": "hr", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employeeNumber"] },
                { "canonical": ["given_name"], "system": ["firstName"] },
                { "canonical": ["family_name"], "system": ["lastName"] },
                { "canonical": ["work_email"], "system": ["contact/email"] },
                { "canonical": ["employment_status"], "system": ["status"], "transform": { "kind": "enum", "table": [
                    { "system": "ACTIVE", "canonical": "active" },
                    { "system": "LEAVE", "canonical": "on_leave" },
                    { "system": "TERMINATED", "canonical": "terminated" } ] } }
            ]},
            { "system": "dir", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employeeNumber"] },
                { "canonical": ["given_name", "family_name"], "system": ["displayName"], "transform": { "kind": "full_name" } },
                { "canonical": ["work_email"], "system": ["emails[type=work].value"] },
                { "canonical": ["employment_status"], "system": ["active"], "transform": { "kind": "enum", "table": [
                    { "system": true, "canonical": "active" },
                    { "system": true, "canonical": "on_leave" },
                    { "system": false, "canonical": "terminated" } ] } }
            ]}
        ]
    }))
    .expect("a valid workspace")
}

struct Pair {
    hr: JsonServer,
    dir: JsonServer,
    engine: Engine,
    _state: tempfile::TempDir,
}

impl Pair {
    async fn start() -> Self {
        let hr = JsonServer::start(&fixture_dir().join("people.json")).await;
        let dir = JsonServer::start(&fixture_dir().join("directory.json")).await;
        let state = tempfile::tempdir().expect("temp dir");
        let engine = common::open_engine(state.path()).await;
        engine
            .apply_workspace(&workspace(hr.base(), dir.base()))
            .await
            .expect("workspace applies");
        let pair = Self {
            hr,
            dir,
            engine,
            _state: state,
        };
        pair.round().await;
        pair
    }

    /// One poll of each system, applied and delivered.
    async fn round(&self) {
        for system in ["hr", "dir"] {
            self.engine.poll(system, |_| {}).await.expect("poll");
        }
        self.engine
            .run_until_idle(Duration::from_secs(30))
            .await
            .expect("idle");
    }

    async fn golden_status(&self, hr_id: &str) -> Value {
        let record = self
            .engine
            .record_for("hr", "employee", hr_id)
            .await
            .expect("lookup")
            .expect("linked");
        self.engine.golden(record).await.expect("golden")["employment_status"].clone()
    }
}

fn email_of<'a>(record: &'a Map<String, Value>, kind: &str) -> Option<&'a Value> {
    record["emails"]
        .as_array()?
        .iter()
        .find(|e| e["type"] == json!(kind))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_on_a_boolean_and_emails_in_an_array_sync_without_loss() {
    let s = Pair::start().await;
    assert!(
        s.hr.engine_writes().is_empty() && s.dir.engine_writes().is_empty(),
        "the initial listings link the 30 people by employee number and write nothing: {:?} {:?}",
        s.hr.engine_writes(),
        s.dir.engine_writes()
    );

    // On leave in HR: the directory's `active` stays true, and reading that true back is no
    // change, because on leave is one of the codes true stands for.
    s.hr.patch(3, json!({ "status": "LEAVE" })).await;
    s.round().await;
    s.round().await;
    s.round().await;
    assert_eq!(
        s.hr.get(3).await["status"],
        json!("LEAVE"),
        "reading the directory's true back does not turn a leave into active"
    );
    assert_eq!(s.dir.get(3).await["active"], json!(true));
    assert_eq!(
        s.golden_status("3").await,
        json!("on_leave"),
        "the golden status stays on leave"
    );

    // Terminated in HR: false in the directory; set active again there: active in HR.
    s.hr.patch(4, json!({ "status": "TERMINATED" })).await;
    s.round().await;
    assert_eq!(
        s.dir.get(4).await["active"],
        json!(false),
        "terminated writes false"
    );
    s.dir.patch(4, json!({ "active": true })).await;
    s.round().await;
    s.round().await;
    assert_eq!(
        s.hr.get(4).await["status"],
        json!("ACTIVE"),
        "true read after terminated means the first code listed: active"
    );

    // A new work e-mail in HR changes only the directory's work element.
    let before = s.dir.get(5).await;
    s.hr
        .patch(
            5,
            json!({ "contact": { "email": "given5.new@acme.example", "mobile": "+14155550105", "fax": "+14155550905" } }),
        )
        .await;
    s.round().await;
    let after = s.dir.get(5).await;
    assert_eq!(
        email_of(&after, "work").map(|e| &e["value"]),
        Some(&json!("given5.new@acme.example")),
        "emails[type=work].value is written in place"
    );
    assert_eq!(
        email_of(&after, "home"),
        email_of(&before, "home"),
        "the home e-mail element is untouched"
    );
    assert_eq!(
        email_of(&after, "work").map(|e| &e["primary"]),
        Some(&json!(true)),
        "the work element keeps its other members"
    );
    assert_eq!(
        after["phoneNumbers"], before["phoneNumbers"],
        "unmapped arrays are untouched"
    );

    // A new work e-mail in the directory reaches HR's nested contact, keeping its siblings.
    let mut emails = s.dir.get(6).await["emails"].clone();
    if let Some(list) = emails.as_array_mut() {
        for e in list.iter_mut().filter(|e| e["type"] == json!("work")) {
            e["value"] = json!("six@directory.example");
        }
    }
    s.dir.patch(6, json!({ "emails": emails })).await;
    s.round().await;
    let six = s.hr.get(6).await;
    assert_eq!(six["contact"]["email"], json!("six@directory.example"));
    assert_eq!(
        six["contact"]["fax"],
        json!("+14155550906"),
        "HR's unmapped contact.fax survives"
    );
    let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters")
        .fetch_one(s.engine.pool())
        .await
        .expect("count");
    assert_eq!(dead, 0, "nothing failed");
}

/// A SCIM-style listing: `startIndex` counts from 1, `count` is a wish the server may cut.
#[derive(Clone, Default)]
struct OneBased {
    asked: Arc<Mutex<Vec<(u64, u64)>>>,
}

async fn users(
    State(s): State<OneBased>,
    Query(q): Query<std::collections::HashMap<String, u64>>,
) -> Json<Value> {
    let start = q.get("startIndex").copied().unwrap_or(1);
    let count = q.get("count").copied().unwrap_or(10);
    s.asked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((start, count));
    // The server pages by at most 7, whatever is asked.
    let first = start.max(1);
    let resources: Vec<Value> = (first..first + count.min(7))
        .filter(|i| *i <= 30)
        .map(|i| json!({ "id": format!("u{i}"), "userName": format!("user{i}") }))
        .collect();
    Json(json!({ "totalResults": 30, "startIndex": start, "Resources": resources }))
}

#[tokio::test]
async fn one_based_offsets_and_short_pages_read_every_record_once() {
    let server = OneBased::default();
    let app = Router::new()
        .route("/Users", get(users))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let system: concord::model::SystemConfig = serde_json::from_value(json!({
        "id": "idp", "name": "IdP", "connector": "rest",
        "config": { "base_url": format!("http://{addr}"), "objects": { "user": {
            "path": "/Users", "records_pointer": "/Resources", "total_pointer": "/totalResults",
            "pagination": { "style": "offset", "offset_param": "startIndex", "limit_param": "count",
                            "limit": 10, "first_offset": 1 } } } }
    }))
    .expect("system");
    // No auth: the keychain is never asked.
    let secrets: concord::secrets::SharedSecrets =
        Arc::new(concord::secrets::Keychain::new("concord-test"));
    let connector = concord::connectors::build(&system, &secrets)
        .expect("builds")
        .expect("a rest connector");
    let mut seen = Vec::new();
    let mut token = None;
    for _ in 0..20 {
        let page = connector
            .list_page("user", token.as_deref())
            .await
            .expect("a page");
        seen.extend(page.records.into_iter().map(|r| r.external_id));
        match page.next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (1..=30).map(|i| format!("u{i}")).collect();
    assert_eq!(
        seen, expected,
        "with offsets counting from 1, every record is read once, none twice, even when the \
         server pages smaller than asked"
    );
    let asked = server
        .asked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert_eq!(
        asked.first(),
        Some(&(1, 10)),
        "the first page asks for startIndex 1"
    );
}
