//! Crash safety: the `concord` binary is SIGKILLed at random moments while people edit two
//! real HTTP systems on 127.0.0.1, and restarted each time. Afterwards every system must hold
//! the last edit of every field (zero lost changes), no record may exist twice (zero duplicate
//! creates), and no idempotency key may be applied twice.
//!
//! `CONCORD_CRASH_KILLS=500 cargo test --test crash -- --nocapture` kills more often.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::process::{HookSecret, free_port, spawn_engine};

use concord::loopback::LoopbackSystem;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

/// `a` and `b` post webhooks with bearer tokens the engine reads from the OS keychain under
/// `hooks[0]` and `hooks[1]`.
fn workspace(a: &str, b: &str, hooks: [&str; 2]) -> Value {
    let system = |id: &str, url: &str| {
        let secret = if id == "a" { hooks[0] } else { hooks[1] };
        // Edits here land every few milliseconds on 40 records, so a write is often refused as
        // out of date several times in a row; the loop guard (tested in concurrency.rs) would
        // park such a hot record for a steward, which is not what this test is about. Nor is
        // the circuit breaker: every record is edited again and again, on purpose.
        json!({ "id": id, "name": id, "connector": "rest", "webhook_secret": secret, "max_rereads": 1000,
                "breaker": { "enabled": false },
                "config": { "base_url": url, "objects": { "item": {
                    "path": "/items", "version_field": "version", "concurrency": { "style": "etag" } } } } })
    };
    let rules = json!([
        { "canonical": ["key"], "system": ["key"] },
        { "canonical": ["fa"], "system": ["fa"] },
        { "canonical": ["fb"], "system": ["fb"] }
    ]);
    json!({
        "systems": [ system("a", a), system("b", b) ],
        "objects": [ { "name": "item", "match_keys": ["key"], "fields": [
            { "name": "key", "type": "string", "required": true },
            { "name": "fa", "type": "string" },
            { "name": "fb", "type": "string" } ] } ],
        "mappings": [
            { "system": "a", "object": "item", "rules": rules },
            { "system": "b", "object": "item", "rules": rules }
        ],
        "policies": [ { "object": "item", "fields": [
            { "field": "key", "owner": "a", "conflict": "owner_wins" },
            { "field": "fa", "owner": "a", "conflict": "owner_wins" },
            { "field": "fb", "owner": "b", "conflict": "owner_wins" } ] } ]
    })
}

fn field(record: &serde_json::Map<String, Value>, name: &str) -> Option<String> {
    record.get(name).and_then(Value::as_str).map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_duplicates_nothing() {
    let kills: usize = std::env::var("CONCORD_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("CONCORD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let dir = tempfile::tempdir().expect("temp dir");
    if std::env::var_os("CONCORD_CRASH_KEEP").is_some() {
        println!("crash test state: {}", dir.path().display());
    }
    let port = free_port();
    let hooks = format!("http://127.0.0.1:{port}/hooks");
    let a = LoopbackSystem::start("a", "item", "/items", Some(format!("{hooks}/a")))
        .await
        .expect("a");
    let b = LoopbackSystem::start("b", "item", "/items", Some(format!("{hooks}/b")))
        .await
        .expect("b");
    let (hook_a, hook_b) = (HookSecret::store(&a, "a"), HookSecret::store(&b, "b"));
    std::fs::write(
        dir.path().join("workspace.json"),
        workspace(&a.base_url(), &b.base_url(), [&hook_a.name, &hook_b.name]).to_string(),
    )
    .expect("workspace file");

    let mut engine = spawn_engine(dir.path(), port);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut expected_fa: BTreeMap<String, String> = BTreeMap::new();
    let mut expected_fb: BTreeMap<String, String> = BTreeMap::new();
    let records = 40;
    let mut edits = 0usize;
    let mut next_kill = Instant::now() + Duration::from_millis(rng.gen_range(30..300));
    let mut killed = 0;
    while killed < kills {
        // People edit both systems all the time.
        let n = rng.gen_range(0..records);
        let key = format!("k{n:03}");
        let a_id = format!("A{n:03}");
        if rng.gen_bool(0.6) || !expected_fa.contains_key(&key) {
            let value = format!("a{edits}");
            a.edit(&a_id, json!({ "key": key, "fa": value }));
            expected_fa.insert(key, value);
            edits += 1;
        } else if let Some((b_id, _)) = b
            .records()
            .into_iter()
            .find(|(_, r)| field(r, "key").as_deref() == Some(&key))
        {
            let value = format!("b{edits}");
            b.edit(&b_id, json!({ "fb": value }));
            expected_fb.insert(key, value);
            edits += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(1..8))).await;
        if Instant::now() >= next_kill {
            engine.kill().expect("SIGKILL");
            engine.wait().expect("reaped");
            killed += 1;
            engine = spawn_engine(dir.path(), port);
            next_kill = Instant::now() + Duration::from_millis(rng.gen_range(30..300));
        }
    }

    // Changes stop; the engine, left alone, must converge.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mismatches = loop {
        let mut mismatches = Vec::new();
        let a_records = a.records();
        let b_records = b.records();
        for (key, fa) in &expected_fa {
            let in_a: Vec<_> = a_records
                .iter()
                .filter(|(_, r)| field(r, "key").as_deref() == Some(key))
                .collect();
            let in_b: Vec<_> = b_records
                .iter()
                .filter(|(_, r)| field(r, "key").as_deref() == Some(key))
                .collect();
            if in_b.len() != 1 {
                mismatches.push(format!("{key}: b holds {} copies", in_b.len()));
                continue;
            }
            let fb = expected_fb.get(key);
            for (system, (_, r)) in [("a", in_a[0]), ("b", in_b[0])] {
                if field(r, "fa").as_ref() != Some(fa) {
                    mismatches.push(format!(
                        "{system}:{key}.fa = {:?}, last edit {fa}",
                        field(r, "fa")
                    ));
                }
                if fb.is_some() && field(r, "fb").as_ref() != fb {
                    mismatches.push(format!(
                        "{system}:{key}.fb = {:?}, last edit {fb:?}",
                        field(r, "fb")
                    ));
                }
            }
        }
        if mismatches.is_empty() || Instant::now() > deadline {
            break mismatches;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    engine.kill().expect("stop engine");
    engine.wait().expect("reaped");
    let (sa, sb) = (a.stats(), b.stats());
    println!(
        "crash test: {killed} kills, {edits} edits on {} records; writes applied a={} b={}, \
         requests a={} b={}, requests repeating an applied idempotency key a={} b={}",
        expected_fa.len(),
        sa.writes_applied,
        sb.writes_applied,
        sa.write_requests,
        sb.write_requests,
        sa.repeated_keys,
        sb.repeated_keys
    );
    if std::env::var_os("CONCORD_CRASH_KEEP").is_some() {
        std::mem::forget(dir);
        return;
    }
    assert!(
        mismatches.is_empty(),
        "every system converges to the last edit of every field, zero lost changes: {mismatches:?}"
    );
    assert_eq!(
        b.records().len(),
        expected_fa.len(),
        "every record exists exactly once in b: no duplicate creates"
    );
    assert_eq!(
        a.records().len(),
        expected_fa.len(),
        "and exactly once in a"
    );
    assert_eq!(
        sa.max_requests_per_key.max(sb.max_requests_per_key) > 0,
        sa.writes_applied + sb.writes_applied > 0,
        "writes carry idempotency keys"
    );
    // A write re-sent after a crash repeats its key; the system applies it once. A re-send can only
    // follow a kill, and only for writes that were in flight at that moment.
    let in_flight_bound = (killed * 200) as u64;
    assert!(
        sa.repeated_keys + sb.repeated_keys <= in_flight_bound,
        "writes are re-sent only after a crash interrupted them"
    );
    assert!(killed >= kills, "the engine was killed {killed} times");
    let chain = concord::audit_chain::verify_file(&dir.path().join("state.db"))
        .await
        .expect("verify the audit chain");
    assert_eq!(
        (chain.state, chain.first_broken),
        (concord::audit_chain::ChainState::Intact, None),
        "the audit's hash chain survives {killed} kills mid-write: every entry written by \
         concurrent writers chains to the one before it ({} entries)",
        chain.entries
    );
}

use common::json_server::{JsonServer, fixture_dir};

/// `a` (a Concord-side system that sends webhooks) owns every field; json-server, which has no
/// idempotency keys and no concurrency control, receives the creates and updates.
/// `a`'s webhooks carry a bearer token; the engine (a child process) reads it from the OS
/// keychain under `hook_secret`.
fn json_server_workspace(a: &str, js: &str, hook_secret: &str) -> Value {
    let rules = json!([
        { "canonical": ["key"], "system": ["key"] },
        { "canonical": ["fa"], "system": ["fa"] }
    ]);
    json!({
        "systems": [
            { "id": "a", "name": "a", "connector": "rest", "webhook_secret": hook_secret,
              "config": { "base_url": a, "objects": { "item": {
                  "path": "/items", "version_field": "version", "concurrency": { "style": "etag" } } } } },
            { "id": "js", "name": "json-server", "connector": "rest",
              "breaker": { "enabled": false },
              "config": { "base_url": js, "objects": { "item": {
                  "path": "/employees", "lookup": { "style": "param" } } } } }
        ],
        "objects": [ { "name": "item", "match_keys": ["key"], "fields": [
            { "name": "key", "type": "string", "required": true },
            { "name": "fa", "type": "string" } ] } ],
        "mappings": [
            { "system": "a", "object": "item", "rules": rules },
            { "system": "js", "object": "item", "rules": rules }
        ],
        "policies": [ { "object": "item", "fields": [
            { "field": "key", "owner": "a", "conflict": "owner_wins" },
            { "field": "fa", "owner": "a", "conflict": "owner_wins" } ] } ]
    })
}

/// json-server takes no idempotency key: a create re-sent after a kill would be a second
/// record. The engine looks a create whose outcome it does not know up by its match key
/// first, so after every kill each record still exists there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_json_server_as_the_create_target_duplicates_nothing() {
    let kills: usize = std::env::var("CONCORD_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let seed: u64 = std::env::var("CONCORD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    let js = JsonServer::start(&fixture_dir().join("empty.json")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let a = LoopbackSystem::start(
        "a",
        "item",
        "/items",
        Some(format!("http://127.0.0.1:{port}/hooks/a")),
    )
    .await
    .expect("a");
    let hook_secret = HookSecret::store(&a, "a");
    std::fs::write(
        dir.path().join("workspace.json"),
        json_server_workspace(&a.base_url(), js.base(), &hook_secret.name).to_string(),
    )
    .expect("workspace file");

    let mut engine = spawn_engine(dir.path(), port);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let records = 300;
    let mut edits = 0usize;
    let mut killed = 0;
    let mut next_kill = Instant::now() + Duration::from_millis(rng.gen_range(30..300));
    while killed < kills {
        // Mostly new records (creates in json-server), some edits of existing ones.
        let n = if rng.gen_bool(0.7) || expected.is_empty() {
            expected.len().min(records - 1)
        } else {
            rng.gen_range(0..expected.len())
        };
        let key = format!("k{n:03}");
        let value = format!("v{edits}");
        a.edit(&format!("A{n:03}"), json!({ "key": key, "fa": value }));
        expected.insert(key, value);
        edits += 1;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(2..12))).await;
        if Instant::now() >= next_kill {
            engine.kill().expect("SIGKILL");
            engine.wait().expect("reaped");
            killed += 1;
            engine = spawn_engine(dir.path(), port);
            next_kill = Instant::now() + Duration::from_millis(rng.gen_range(30..300));
        }
    }

    let deadline = Instant::now() + Duration::from_secs(180);
    let (duplicates, mismatches) = loop {
        let held = js.all().await;
        let mut by_key: BTreeMap<String, Vec<&serde_json::Map<String, Value>>> = BTreeMap::new();
        for r in &held {
            if let Some(k) = field(r, "key") {
                by_key.entry(k).or_default().push(r);
            }
        }
        let duplicates: Vec<String> = by_key
            .iter()
            .filter(|(_, rs)| rs.len() > 1)
            .map(|(k, rs)| format!("{k} x{}", rs.len()))
            .collect();
        let mismatches: Vec<String> = expected
            .iter()
            .filter(|(k, v)| {
                by_key
                    .get(*k)
                    .is_none_or(|rs| rs.iter().any(|r| field(r, "fa").as_ref() != Some(*v)))
            })
            .map(|(k, v)| {
                format!(
                    "{k}: last edit {v}, json-server {:?}",
                    by_key
                        .get(k)
                        .map(|rs| rs.iter().map(|r| field(r, "fa")).collect::<Vec<_>>())
                )
            })
            .collect();
        if (duplicates.is_empty() && mismatches.is_empty()) || Instant::now() > deadline {
            break (duplicates, mismatches);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    engine.kill().expect("stop engine");
    engine.wait().expect("reaped");
    let writes = js.engine_writes();
    let posts = writes.iter().filter(|w| w.starts_with("POST")).count();
    let lookups = js
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /employees?key="))
        .count();
    println!(
        "crash test with json-server: {killed} kills, {edits} edits of {} records; json-server \
         received {posts} creates and {} other writes; {lookups} creates were looked up by key \
         after a kill before being sent again",
        expected.len(),
        writes.len() - posts
    );
    assert!(
        duplicates.is_empty(),
        "a target without idempotency keys never gets a record twice, whatever the kills: {duplicates:?}"
    );
    assert!(
        mismatches.is_empty(),
        "every record reaches json-server with its last edit, zero lost changes: {mismatches:?}"
    );
    assert_eq!(
        js.all().await.len(),
        expected.len(),
        "json-server holds exactly one record per key"
    );
    assert!(killed >= kills, "the engine was killed {killed} times");
}

/// After a crash, a create the stopped engine had sent may still be on its way to the system
/// (held by a proxy, queued behind other requests). json-server takes no idempotency key: a
/// lookup made before that create lands finds nothing, and the create sent again is a second
/// record of the same person. The restarted engine waits out the system's request timeout
/// (`timeout_ms`) before it looks the create up, so it finds the one that landed late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_still_on_its_way_at_a_crash_is_found_after_the_restart_not_sent_twice() {
    use concord::model::{ChangeEvent, ChangeOp, WorkspaceConfig};
    let js = JsonServer::start(&fixture_dir().join("empty.json")).await;
    let a = LoopbackSystem::start("a", "item", "/items", None)
        .await
        .expect("a");
    let dir = tempfile::tempdir().expect("temp dir");
    let timeout = Duration::from_millis(1500);
    let mut config = json_server_workspace(&a.base_url(), js.base(), "a-webhook");
    config["systems"][1]["config"]["timeout_ms"] = json!(timeout.as_millis());
    let config: WorkspaceConfig = serde_json::from_value(config).expect("a valid workspace");

    // The first engine queues the create and sends it; it stops before any answer is stored:
    // the write is left in flight, as a crash mid-send leaves it.
    let body: String = {
        let (engine, secrets) = common::open_engine_with_secrets(dir.path()).await;
        common::trust_hooks(&secrets, "a", &a);
        engine
            .apply_workspace(&config)
            .await
            .expect("workspace applies");
        let record = json!({ "key": "k001", "fa": "v1" });
        engine
            .ingest(&ChangeEvent {
                system: "a".into(),
                object: "item".into(),
                external_id: "A001".into(),
                op: ChangeOp::Upsert,
                record: record.as_object().cloned().unwrap_or_default(),
                version: None,
                etag: None,
                source_ts: None,
                event_key: "a-1".into(),
            })
            .await
            .expect("the event is stored");
        engine.process_inbox().await.expect("the event applies");
        let body = sqlx::query_scalar(
            "UPDATE outbox SET status = 'in_flight' WHERE system_id = 'js' AND op = 'create' RETURNING payload",
        )
        .fetch_one(engine.pool())
        .await
        .expect("one create queued for json-server");
        engine.pool().close().await;
        body
    };

    let (engine, secrets) = common::open_engine_with_secrets(dir.path()).await;
    common::trust_hooks(&secrets, "a", &a);
    // The stopped engine's create reaches json-server a third of a timeout after the restart.
    let late = {
        let url = format!("{}/employees", js.base());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status())
        })
    };
    engine
        .run_until_idle(Duration::from_secs(20))
        .await
        .expect("the write resumes and settles");
    let landed = late.await.expect("joined").expect("json-server answers");
    assert!(landed.is_success(), "the late create lands: {landed}");

    let copies = js
        .all()
        .await
        .into_iter()
        .filter(|e| e.get("key") == Some(&json!("k001")))
        .count();
    assert_eq!(
        copies, 1,
        "a create still on its way at a crash is looked up after it lands, not sent a second time"
    );
    let found: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit WHERE system_id = 'js' AND rule = 'delivered:create:found_existing'",
    )
    .fetch_one(engine.pool())
    .await
    .expect("audit");
    assert_eq!(
        found, 1,
        "the resumed create is settled by the lookup finding the late one, and audited as such"
    );
}
