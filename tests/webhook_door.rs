//! The webhook door: `/hooks/{system}` takes an event only from the system itself, through an
//! inbound channel configured for it (a bearer secret for Concord's own event format, or the
//! rest connector's signed webhooks). A real engine on a real SQLite file, its webhook server
//! and the self-check's two HR systems on 127.0.0.1.
//!
//! - No inbound channel (a polled system, or an unknown one): 404, the same answer, nothing
//!   stored.
//! - Not JSON (a cross-site "simple" request: text/plain, a form): 415, nothing stored.
//! - A missing or wrong bearer token or signature: 401, nothing stored.
//! - Every refusal is counted (`webhooks_refused` in the dashboard's counters).

mod common;

use std::time::{Duration, Instant};

use common::{Harness, ada};
use concord::secrets::{Secret, SecretStore};
use serde_json::{Value, json};

async fn hook_server(h: &Harness) -> String {
    let cancel = tokio_util::sync::CancellationToken::new();
    let (addr, _) = concord::server::spawn_loopback(h.engine.clone(), 0, cancel)
        .await
        .expect("server");
    format!("http://{addr}/hooks")
}

/// Everything a forged event could have changed: the inbox, the golden records, the links.
async fn state(h: &Harness) -> (i64, Vec<String>, i64) {
    let pool = h.engine.pool();
    let inbox: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbox")
        .fetch_one(pool)
        .await
        .expect("inbox");
    let golden: Vec<String> =
        sqlx::query_scalar("SELECT CAST(fields AS TEXT) FROM golden ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM links")
        .fetch_one(pool)
        .await
        .expect("links");
    (inbox, golden, links)
}

/// Waits (a few seconds at most: refusals are written at most once a second) until the
/// refusal counter reaches `n`.
async fn refused_reaches(h: &Harness, n: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got = h.counter("webhooks_refused").await;
        if got >= n || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The refusal count once it stopped moving (writes to the counters table are batched a
/// second apart): the baseline a test's own refusals add to.
async fn refusals_so_far(h: &Harness) -> i64 {
    let mut last = h.counter("webhooks_refused").await;
    loop {
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        let now = h.counter("webhooks_refused").await;
        if now == last {
            return now;
        }
        last = now;
    }
}

/// A change to payroll's only employee: a new salary and bank account, the forger's.
fn forged_payroll_event(external_id: &str) -> Value {
    json!({ "events": [
        { "object": "employee", "external_id": external_id, "op": "upsert",
          "record": { "salary_cents": 1, "bank": { "account": "FORGED-0001" } },
          "event_key": "forged-1" },
        { "object": "employee", "external_id": "P-NEW", "op": "upsert",
          "record": { "emp_no": "E6666", "first_name": "Mallory", "last_name": "Forger",
                      "email": "mallory@evil.example" },
          "event_key": "forged-2" }
    ]})
}

/// Payroll polled, without a webhook secret: the review's setup. (Payroll's own echoes of the
/// engine's writes are refused too: it has no channel.)
async fn polled_payroll() -> Harness {
    let h = Harness::start(|c| {
        c.systems
            .iter_mut()
            .find(|s| s.id == "payroll")
            .expect("payroll")
            .webhook_secret = None;
    })
    .await;
    h.hris.edit("H1", ada());
    h.settle().await;
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_event_to_a_system_without_an_inbound_channel_is_a_404_and_changes_nothing() {
    let h = polled_payroll().await;
    let hooks = hook_server(&h).await;
    let (payroll_id, _) = h.payroll_only();
    let before = state(&h).await;
    let base = refusals_so_far(&h).await;
    let client = reqwest::Client::new();

    let r = client
        .post(format!("{hooks}/payroll"))
        .json(&forged_payroll_event(&payroll_id))
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        404,
        "a system with no inbound channel takes no webhook"
    );
    let polled: Value = r.json().await.expect("a json body");
    let r = client
        .post(format!("{hooks}/payrolx"))
        .json(&forged_payroll_event(&payroll_id))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404, "an unknown system is a 404");
    let unknown: Value = r.json().await.expect("a json body");
    assert_eq!(
        polled["code"], unknown["code"],
        "a system without a channel answers exactly like an unknown one"
    );
    assert_eq!(
        polled["message"]
            .as_str()
            .map(|m| m.replace("payroll", "ID")),
        unknown["message"]
            .as_str()
            .map(|m| m.replace("payrolx", "ID")),
        "a system without a channel answers exactly like an unknown one"
    );

    // A token does not open a door that is not there.
    let r = client
        .post(format!("{hooks}/payroll"))
        .bearer_auth("guess")
        .json(&forged_payroll_event(&payroll_id))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404, "no channel, whatever the request carries");

    h.settle().await;
    assert_eq!(
        state(&h).await,
        before,
        "a refused webhook stores nothing: inbox, golden records and links unchanged"
    );
    let (_, record) = h.payroll_only();
    assert_ne!(
        record.get("salary_cents"),
        Some(&json!(1)),
        "the salary is not the forger's"
    );
    assert_eq!(
        refused_reaches(&h, base + 3).await - base,
        3,
        "each refusal is counted in webhooks_refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_text_plain_or_form_post_is_a_415_and_stores_nothing() {
    let h = polled_payroll().await;
    let hooks = hook_server(&h).await;
    let (payroll_id, _) = h.payroll_only();
    let before = state(&h).await;
    let base = refusals_so_far(&h).await;
    let client = reqwest::Client::new();
    let body = forged_payroll_event(&payroll_id).to_string();
    for (system, content_type) in [
        ("payroll", Some("text/plain")),
        ("payroll", Some("text/plain;charset=UTF-8")),
        ("payroll", Some("application/x-www-form-urlencoded")),
        ("payroll", Some("multipart/form-data; boundary=x")),
        ("payroll", None),
        // Even the right token does not make a non-JSON body acceptable.
        ("hris", Some("text/plain")),
    ] {
        let mut request = client.post(format!("{hooks}/{system}")).body(body.clone());
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if system == "hris" {
            request = request.bearer_auth(h.hris.hook_token().expose());
        }
        let r = request.send().await.expect("send");
        assert_eq!(
            r.status(),
            415,
            "a {content_type:?} body to {system} is refused before it is parsed"
        );
        let answer: Value = r.json().await.expect("a json body");
        assert_eq!(
            answer["code"],
            json!("unsupported_media_type"),
            "{{code, message}}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // JSON with parameters, or a +json type, passes the door (and then needs its channel).
    for ct in [
        "application/json; charset=utf-8",
        "application/vnd.acme+json",
    ] {
        let r = client
            .post(format!("{hooks}/payroll"))
            .header("content-type", ct)
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            404,
            "{ct} is JSON: refused only for want of a channel"
        );
    }
    h.settle().await;
    assert_eq!(
        state(&h).await,
        before,
        "nothing of a refused request is stored"
    );
    assert_eq!(
        refused_reaches(&h, base + 8).await - base,
        8,
        "each refusal is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_system_needs_its_token_and_with_it_the_event_is_applied() {
    let h = Harness::start(|_| {}).await;
    let hooks = hook_server(&h).await;
    let before = state(&h).await;
    let client = reqwest::Client::new();
    let mut emp = ada();
    emp["employee_id"] = json!("E4242");
    emp["email"] = json!("grace@acme.example");
    emp["full_name"] = json!("Grace Hopper");
    emp["id"] = json!("H42");
    let event = json!({ "object": "employee", "external_id": "H42", "op": "upsert",
                        "record": emp, "version": 1, "event_key": "door-1" });

    let r = client
        .post(format!("{hooks}/hris"))
        .json(&event)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401, "without the bearer token: 401");
    let answer: Value = r.json().await.expect("a json body");
    assert_eq!(answer["code"], json!("unauthorized"), "{{code, message}}");

    for wrong in [
        "Bearer wrong".to_owned(),
        format!("Bearer {}x", h.hris.hook_token().expose()),
        format!("Basic {}", h.hris.hook_token().expose()),
        format!("Bearer {}", h.payroll.hook_token().expose()),
    ] {
        let r = client
            .post(format!("{hooks}/hris"))
            .header("authorization", wrong)
            .json(&event)
            .send()
            .await
            .expect("send");
        assert_eq!(
            r.status(),
            401,
            "a wrong token (or another system's) is a 401"
        );
    }
    h.settle().await;
    assert_eq!(
        state(&h).await,
        before,
        "nothing of a refused request is stored"
    );
    assert_eq!(refused_reaches(&h, 5).await, 5, "each refusal is counted");

    let r = client
        .post(format!("{hooks}/hris"))
        .bearer_auth(h.hris.hook_token().expose())
        .json(&event)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        202,
        "with the system's own token the event is accepted"
    );
    h.settle().await;
    assert!(
        h.payroll
            .records()
            .iter()
            .any(|(_, r)| r.get("emp_no") == Some(&json!("E4242"))),
        "an accepted event is applied and reaches the other system"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_system_refuses_an_unsigned_or_bearer_webhook_and_takes_a_signed_one() {
    const KEY: &str = "hris-signing-key";
    let h = Harness::start(|c| {
        let hris = c.systems.iter_mut().find(|s| s.id == "hris").expect("hris");
        hris.webhook_secret = None;
        hris.config["webhooks"] = json!({
            "secret": "hris-signing", "signature_header": "X-Signature",
            "signature_prefix": "sha256=", "timestamp_header": "X-Timestamp",
            "object": "employee", "record_pointer": "/data", "event_key_pointer": "/id"
        });
    })
    .await;
    h.secrets
        .set("hris-signing", &Secret::new(KEY))
        .expect("memory store");
    let hooks = hook_server(&h).await;
    let before = state(&h).await;
    let client = reqwest::Client::new();
    let mut emp = ada();
    emp["id"] = json!("H7");
    emp["version"] = json!(1);
    let body = json!({ "id": "evt-7", "data": emp }).to_string();

    let r = client
        .post(format!("{hooks}/hris"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        401,
        "an unsigned webhook to a signed system is a 401"
    );
    let r = client
        .post(format!("{hooks}/hris"))
        .header("content-type", "application/json")
        .bearer_auth(h.hris.hook_token().expose())
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        401,
        "a bearer token is no channel for a system that signs its webhooks"
    );
    let stale = chrono::Utc::now().timestamp() - 3_600;
    let r = client
        .post(format!("{hooks}/hris"))
        .header("content-type", "application/json")
        .header(
            "X-Signature",
            format!(
                "sha256={}",
                concord::connectors::rest::sign_webhook(KEY, stale, body.as_bytes())
            ),
        )
        .header("X-Timestamp", stale.to_string())
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        401,
        "a signature outside the time window is a 401"
    );
    assert_eq!(
        state(&h).await,
        before,
        "nothing of a refused request is stored"
    );
    assert_eq!(refused_reaches(&h, 3).await, 3, "each refusal is counted");

    let now = chrono::Utc::now().timestamp();
    let r = client
        .post(format!("{hooks}/hris"))
        .header("content-type", "application/json")
        .header(
            "X-Signature",
            format!(
                "sha256={}",
                concord::connectors::rest::sign_webhook(KEY, now, body.as_bytes())
            ),
        )
        .header("X-Timestamp", now.to_string())
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 202, "a correctly signed webhook is accepted");
}

/// A secret this side cannot read is not the sender's fault: a 503 keeps the event with the
/// sender, to be sent again, where a 401 would have it dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_secret_the_engine_cannot_read_is_a_503_so_the_sender_retries() {
    let h = Harness::start(|c| {
        let hris = c.systems.iter_mut().find(|s| s.id == "hris").expect("hris");
        hris.webhook_secret = Some("door-test-never-stored".into());
    })
    .await;
    let hooks = hook_server(&h).await;
    let before = state(&h).await;
    let event = json!({ "object": "employee", "external_id": "H43", "op": "upsert",
                        "record": ada(), "version": 1, "event_key": "door-503" });
    let r = reqwest::Client::new()
        .post(format!("{hooks}/hris"))
        .bearer_auth(h.hris.hook_token().expose())
        .json(&event)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        503,
        "an unreadable webhook secret is a 503 (try again), never a 401 (give up)"
    );
    let answer: Value = r.json().await.expect("a json body");
    assert_eq!(answer["code"], json!("keychain_unavailable"), "{answer}");
    assert_eq!(state(&h).await, before, "and nothing is stored");
}
