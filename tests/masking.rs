//! Sensitive values stay hidden from every role that may not see them, wherever they travel:
//! a salary and a bank account are planted in a golden record, a four-eyes conflict with a
//! steward's custom value and note, a mistyped inbound salary, a salary dated in the future (a
//! scheduled change), and a dead letter whose response echoes the record. Then every route a
//! viewer may read is called, with every id that exists, and each answer is searched for the
//! planted values.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, ada};
use concord::api::ROUTES;
use concord::api::auth::{Access, Principal, Role, Tokens};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

const BANK_ACCOUNT: &str = "DE89370400440532013000";
const CUSTOM_SALARY: &str = "87654.32";
const MISTYPED_SALARY: &str = "77,7O0.00";
const DATED_SALARY: &str = "123456";

struct Api {
    base: String,
    client: Client,
    tokens: Arc<Tokens>,
}

impl Api {
    async fn start(h: &Harness) -> Self {
        let tokens = Arc::new(Tokens::default());
        let (base, client) =
            common::serve_console(&h.engine, tokens.clone(), "concord-masking-test").await;
        Self {
            base,
            client,
            tokens,
        }
    }

    fn token(&self, name: &str, role: Role) -> String {
        self.tokens.issue(Principal::new(name, role))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        (status, resp.text().await.expect("body"))
    }

    async fn json(&self, path: &str, token: &str) -> Value {
        let (status, text) = self.call(Method::GET, path, token, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
        serde_json::from_str(&text).expect("json")
    }
}

/// Every concrete URL of the routes anyone signed in may read, for the ids that exist.
async fn readable_urls(api: &Api, admin: &str, record: i64) -> Vec<String> {
    let ids = |list: Value| -> Vec<i64> {
        list.as_array()
            .map(|a| a.iter().filter_map(|e| e["id"].as_i64()).collect())
            .unwrap_or_default()
    };
    let exceptions = ids(api.json("/api/exceptions?limit=1000", admin).await);
    let dead = ids(api.json("/api/dead-letters?limit=1000", admin).await);
    let reconciliations = ids(api.json("/api/reconciliations", admin).await);
    let versions = ids(api.json("/api/config/history?limit=1000", admin).await);
    let mut urls = Vec::new();
    for (method, pattern, access) in ROUTES {
        if *method != "GET" || *access != Access::Read {
            continue;
        }
        let ids: Vec<i64> = match *pattern {
            p if p.starts_with("/api/exceptions/") => exceptions.clone(),
            p if p.starts_with("/api/dead-letters/") => dead.clone(),
            p if p.starts_with("/api/reconciliations/") => reconciliations.clone(),
            p if p.starts_with("/api/records/") => vec![record],
            p if p.starts_with("/api/config/history/") => versions.clone(),
            _ => vec![0],
        };
        if pattern.starts_with("/api/systems/{id}") {
            for system in ["hris", "payroll"] {
                urls.push(pattern.replace("{id}", system));
            }
            continue;
        }
        for id in ids {
            let url = match *pattern {
                "/api/records" => "/api/records?system=hris&external_id=H1".to_owned(),
                "/api/audit" => "/api/audit?limit=10000".to_owned(),
                "/api/exceptions" | "/api/dead-letters" => format!("{pattern}?limit=1000"),
                p => p.replace("{id}", &id.to_string()),
            };
            urls.push(url);
        }
    }
    urls
}

#[tokio::test]
async fn a_viewer_never_sees_a_planted_sensitive_value_on_any_route() {
    let h = Harness::start(common::hris_dates_salary).await;
    let api = Api::start(&h).await;
    let admin = api.token("ana", Role::Admin);
    let viewer = api.token("vic", Role::Viewer);
    let support = api.token("pat", Role::Support);
    let steward = api.token("sam", Role::Steward);

    let mut emp = ada();
    emp["salary"] = json!("85000.00");
    h.hris.edit("H1", emp);
    h.settle().await;
    let (pid, _) = h.payroll_only();
    h.payroll
        .edit(&pid, json!({ "bank": { "account": BANK_ACCOUNT } }));
    h.settle().await;

    // The HRIS refuses the salary payroll sets, echoing the record in its error.
    h.hris.fail_next_with(
        422,
        json!({ "error": format!("salary 91000.00 is out of band for account {BANK_ACCOUNT}") }),
    );
    h.payroll.edit(&pid, json!({ "salary_cents": 9_100_000 }));
    h.settle().await;

    // Both sides change pay: a four-eyes conflict; one steward approves a custom value.
    h.hris.edit("H1", json!({ "salary": "90000.00" }));
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.payroll.edit(&pid, json!({ "salary_cents": 8_800_000 }));
    h.settle().await;
    let conflicts = api
        .json(
            "/api/exceptions?kind=conflict&field=pay_rate&status=open",
            &admin,
        )
        .await;
    let conflict = conflicts[0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("both sides changed pay: a conflict is open: {conflicts}"));
    let (status, text) = api
        .call(
            Method::POST,
            &format!("/api/exceptions/{conflict}/resolve"),
            &steward,
            Some(
                json!({ "choice": { "choose": "custom", "value": CUSTOM_SALARY },
                         "note": format!("agreed {CUSTOM_SALARY} with payroll") }),
            ),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the first approval is taken: {text}"
    );

    // A mistyped salary arrives from payroll: a validation exception holds the raw value.
    h.payroll
        .edit(&pid, json!({ "salary_cents": MISTYPED_SALARY }));
    h.settle().await;

    // A rise the HRIS dates far ahead: it waits as a scheduled change.
    h.hris.edit(
        "H1",
        json!({ "salary": format!("{DATED_SALARY}.00"), "salary_effective": "2099-01-01" }),
    );
    h.settle().await;

    let record = h.record_of("hris", "H1").await;
    let planted = [
        DATED_SALARY,
        BANK_ACCOUNT,
        CUSTOM_SALARY,
        MISTYPED_SALARY,
        "91000",
        "88000",
        "90000",
    ];
    // A saved mapping, so the configuration history has a version to read.
    let hris = h
        .engine
        .workspace()
        .mapping("hris", "employee")
        .cloned()
        .expect("hris mapping");
    let (status, text) = api
        .call(
            Method::PUT,
            "/api/mappings/hris/employee",
            &admin,
            Some(serde_json::to_value(&hris).expect("json")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the mapping is saved again: {text}");
    let urls = readable_urls(&api, &admin, record).await;
    assert!(
        urls.iter().any(|u| u.starts_with("/api/config/history/")),
        "the sweep reads a configuration version"
    );
    assert!(
        urls.iter().any(|u| u.contains("/preview"))
            && urls.iter().any(|u| u.starts_with("/api/exceptions/")),
        "the sweep covers dead letters' previews and single exceptions: {urls:?}"
    );

    // Those who may see it do: the sweep can find what it looks for.
    let mut seen_by_steward = String::new();
    for url in &urls {
        let (_, text) = api.call(Method::GET, url, &steward, None).await;
        seen_by_steward.push_str(&text);
    }
    for value in planted {
        assert!(
            seen_by_steward.contains(value),
            "a steward sees the planted value {value} somewhere (else this test proves nothing)"
        );
    }

    for (role, token) in [("viewer", &viewer), ("support", &support)] {
        for url in &urls {
            let (status, text) = api.call(Method::GET, url, token, None).await;
            assert_eq!(status, StatusCode::OK, "a {role} may read {url}: {text}");
            for value in planted {
                assert!(
                    !text.contains(value),
                    "a {role} never sees a sensitive value: {value} leaked in GET {url}: {text}"
                );
            }
        }
    }

    // What changed is decided before masking: support sees "changed", not "no change".
    let dead = api.json("/api/dead-letters?system=hris", &admin).await;
    let dead_id = dead[0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("the refused write is a dead letter: {dead}"));
    let preview = api
        .json(&format!("/api/dead-letters/{dead_id}/preview"), &support)
        .await;
    let pay = preview["fields"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["field"] == "pay_rate"))
        .unwrap_or_else(|| panic!("the preview shows the salary it writes: {preview}"));
    assert_eq!(
        pay["write"],
        json!("••••"),
        "support sees the salary masked"
    );
    assert_eq!(
        pay["changes"],
        json!(true),
        "a masked salary still shows as changed when it changes: {pay}"
    );
}
