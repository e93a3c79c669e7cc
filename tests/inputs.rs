//! Bad input is refused with a clear `{code, message}` and nothing is stored; rate limits hold;
//! the binary migrates a state file.

mod common;

use std::time::{Duration, Instant};

use common::{Harness, ada};
use serde_json::{Value, json};

async fn inbox_count(h: &Harness) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
        .fetch_one(h.engine.pool())
        .await
        .expect("count")
}

async fn hook_server(h: &Harness) -> String {
    let cancel = tokio_util::sync::CancellationToken::new();
    let (addr, _) = concord::server::spawn_loopback(h.engine.clone(), 0, cancel)
        .await
        .expect("server");
    format!("http://{addr}")
}

#[tokio::test]
async fn malformed_unknown_and_huge_webhooks_are_refused_and_store_nothing() {
    let h = Harness::start(|_| {}).await;
    let url = hook_server(&h).await;
    let client = reqwest::Client::new();
    let before = inbox_count(&h).await;

    let r = client
        .post(format!("{url}/hooks/hris"))
        .bearer_auth(h.hris.hook_token().expose())
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400, "a malformed payload is a 400");
    let body: Value = r.json().await.expect("json error body");
    assert_eq!(
        body["code"],
        json!("malformed_payload"),
        "the error has a code"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "and a message"
    );

    let event = json!({ "object": "employee", "external_id": "H1", "op": "upsert", "record": ada(), "event_key": "k1" });
    let r = client
        .post(format!("{url}/hooks/nope"))
        .json(&event)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404, "an unknown system is a 404");

    let mut unknown_field = event.clone();
    unknown_field["surprise"] = json!(true);
    let r = client
        .post(format!("{url}/hooks/hris"))
        .bearer_auth(h.hris.hook_token().expose())
        .json(&unknown_field)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400, "an event with unknown keys is refused");

    let huge = "x".repeat(concord::server::MAX_BODY + 10);
    let r = client
        .post(format!("{url}/hooks/hris"))
        .bearer_auth(h.hris.hook_token().expose())
        .body(huge)
        .header("content-type", "application/json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 413, "a huge body is refused");

    // A batch with one bad event stores none of them.
    let batch = json!({ "events": [ event, { "object": "employee", "external_id": "", "op": "upsert", "event_key": "k2" } ] });
    let r = client
        .post(format!("{url}/hooks/hris"))
        .bearer_auth(h.hris.hook_token().expose())
        .json(&batch)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        422,
        "an event without an external id is refused"
    );
    assert_eq!(
        inbox_count(&h).await,
        before,
        "nothing of a refused request is stored"
    );

    let r = client.post(format!("{url}/hooks/hris"))
        .bearer_auth(h.hris.hook_token().expose()).json(&json!({ "events": [ { "object": "employee", "external_id": "H1", "op": "upsert", "record": ada(), "event_key": "k1" } ] })).send().await.expect("send");
    assert_eq!(r.status(), 202, "a valid event is accepted once stored");
    assert_eq!(inbox_count(&h).await, before + 1);
}

#[tokio::test]
async fn delivery_respects_the_systems_rate_limit() {
    let h = Harness::start(|c| {
        c.systems
            .iter_mut()
            .find(|s| s.id == "payroll")
            .expect("payroll")
            .rate_limit_per_sec = Some(20.0);
    })
    .await;
    for i in 0..31 {
        let mut emp = ada();
        emp["employee_id"] = json!(format!("E{i:04}"));
        emp["email"] = json!(format!("p{i}@acme.example"));
        h.hris.edit(&format!("H{i}"), emp);
    }
    while h.hris.hooks_pending() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    h.settle().await;
    let elapsed = started.elapsed();
    assert_eq!(
        h.payroll.records().len(),
        31,
        "every employee reaches payroll"
    );
    // 31 requests at 20/s with a burst of one need at least 1.5 s.
    assert!(
        elapsed >= Duration::from_millis(1_450),
        "31 writes at 20 per second took only {elapsed:?}"
    );
}

#[test]
fn concord_migrate_creates_and_upgrades_a_state_file() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("state.db");
    for _ in 0..2 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .args(["migrate", "--db"])
            .arg(&db)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "concord migrate succeeds: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("schema up to date"),
            "it says the schema is up to date: {stdout}"
        );
    }
    assert!(db.exists(), "the state file exists");
}

#[tokio::test]
async fn a_refused_connector_config_is_neither_stored_nor_made_current() {
    let h = Harness::start(|_| {}).await;
    let mut broken = h.config.clone();
    broken.systems[0].config["objects"]["employee"]["path"] = json!("employees");
    let err = h
        .engine
        .apply_workspace(&broken)
        .await
        .expect_err("a path without '/' is refused");
    assert!(
        err.to_string().contains("objects.employee.path"),
        "the error names the key: {err}"
    );
    assert_eq!(
        h.engine.workspace().config,
        h.config,
        "the refused config is not current"
    );
    let stored = concord::store::load_workspace(h.engine.pool())
        .await
        .expect("load");
    assert_eq!(stored, h.config, "nor stored");
    let reopened = concord::Engine::open(&h.dir.path().join("state.db"), Default::default()).await;
    assert!(reopened.is_ok(), "the engine still opens on its state file");
}
