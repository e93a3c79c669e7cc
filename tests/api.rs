//! The console API over real HTTP: a token is required, each route checks the caller's role,
//! errors are `{code, message}` JSON with fitting statuses, sensitive values are masked for
//! roles that may not see them, and the OpenAPI document describes the routes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, ada};
use concord::api::Console;
use concord::api::auth::{Principal, Role, Tokens};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

struct Api {
    base: String,
    admin: String,
    client: Client,
}

impl Api {
    async fn start(h: &Harness) -> Self {
        let tokens = Arc::new(Tokens::default());
        let admin = tokens.issue(Principal {
            name: "ana".into(),
            role: Role::Admin,
        });
        let console = Console {
            engine: h.engine.clone(),
            tokens,
            secrets: Arc::new(concord::secrets::Keychain::new("concord-api-test")),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, concord::server::app(console, None)).await;
        });
        let client = Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Self {
            base,
            admin,
            client,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn token(&self, name: &str, role: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/tokens",
                Some(&self.admin),
                Some(json!({ "name": name, "role": role })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "an admin issues tokens: {body}");
        body["token"].as_str().expect("token").to_owned()
    }
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, rule: &str) {
    assert_eq!(status, expected, "{rule}: {body}");
    assert!(
        body["code"].is_string() && body["message"].is_string(),
        "errors are {{code, message}} JSON ({rule}): {body}"
    );
}

#[tokio::test]
async fn every_route_needs_a_token() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    for path in [
        "/api/me",
        "/api/exceptions",
        "/api/dead-letters",
        "/api/workspace",
        "/api/metrics",
        "/api/audit",
    ] {
        let (status, body) = api.call(Method::GET, path, None, None).await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            &format!("{path} without a token is 401"),
        );
        let (status, body) = api.call(Method::GET, path, Some("forged"), None).await;
        assert_error(
            status,
            &body,
            StatusCode::UNAUTHORIZED,
            &format!("{path} with an unknown token is 401"),
        );
    }
    let (status, body) = api
        .call(Method::GET, "/api/me", Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["role"],
        json!("admin"),
        "the launch token is the admin's"
    );
}

#[tokio::test]
async fn roles_are_enforced_per_route() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let steward = api.token("sam", "steward").await;
    let support = api.token("pat", "support").await;
    let viewer = api.token("vic", "viewer").await;

    let mapping = h
        .config
        .mappings
        .iter()
        .find(|m| m.system == "hris")
        .expect("hris mapping")
        .clone();
    let body = serde_json::to_value(&mapping).expect("json");
    let (status, resp) = api
        .call(
            Method::PUT,
            "/api/mappings/hris/employee",
            Some(&steward),
            Some(body.clone()),
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::FORBIDDEN,
        "a steward cannot edit mappings",
    );
    let (status, resp) = api
        .call(
            Method::PUT,
            "/api/mappings/hris/employee",
            Some(&api.admin),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "an admin edits mappings: {resp}");

    // A dead letter to replay.
    h.payroll.fail_next(1, 422, None);
    h.hris.edit("H1", ada());
    h.settle().await;
    let (_, dead) = api
        .call(Method::GET, "/api/dead-letters", Some(&viewer), None)
        .await;
    let id = dead[0]["id"]
        .as_i64()
        .expect("a dead letter is listed to a viewer");
    let (status, resp) = api
        .call(
            Method::POST,
            &format!("/api/dead-letters/{id}/replay"),
            Some(&viewer),
            None,
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::FORBIDDEN,
        "a viewer cannot replay",
    );
    let (status, resp) = api
        .call(
            Method::POST,
            &format!("/api/dead-letters/{id}/replay"),
            Some(&steward),
            None,
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::FORBIDDEN,
        "a steward cannot replay",
    );
    let (status, resp) = api
        .call(
            Method::POST,
            &format!("/api/dead-letters/{id}/replay"),
            Some(&support),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "support replays: {resp}");
    assert_eq!(resp["outcome"], json!("queued"));
    h.settle().await;
    assert_eq!(
        h.payroll.records().len(),
        1,
        "the replay through the API reaches payroll"
    );

    let (status, resp) = api
        .call(
            Method::POST,
            "/api/tokens",
            Some(&support),
            Some(json!({ "name": "x", "role": "admin" })),
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::FORBIDDEN,
        "only an admin issues tokens",
    );
    let (status, resp) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve",
            Some(&support),
            Some(json!({ "filter": {}, "choice": { "choose": "golden" } })),
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::FORBIDDEN,
        "support cannot resolve exceptions",
    );
}

#[tokio::test]
async fn bad_input_gets_json_errors() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let steward = api.token("sam", "steward").await;

    let (status, body) = api
        .call(
            Method::POST,
            "/api/exceptions/1/resolve",
            Some(&steward),
            Some(json!({ "choice": 7 })),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "a malformed body is a 400",
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/api/exceptions/999/resolve",
            Some(&steward),
            Some(json!({ "choice": { "choose": "golden" } })),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "an unknown exception is a 404",
    );
    let (status, body) = api
        .call(Method::GET, "/api/exceptions/abc", Some(&steward), None)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "a non-numeric id is a 400",
    );
    let (status, body) = api
        .call(Method::GET, "/api/nope", Some(&steward), None)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "an unknown API route is a JSON 404",
    );

    let mut mapping = serde_json::to_value(
        h.config
            .mappings
            .iter()
            .find(|m| m.system == "hris")
            .expect("hris"),
    )
    .expect("json");
    mapping["rules"][5]["transform"] = json!({ "kind": "date", "format": "%Q" });
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/mappings/hris/employee",
            Some(&api.admin),
            Some(mapping),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an invalid transform is refused",
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("rules[5]"),
        "the message names the rule: {body}"
    );
    assert_eq!(
        h.engine
            .workspace()
            .config
            .mappings
            .iter()
            .find(|m| m.system == "hris"),
        h.config.mappings.iter().find(|m| m.system == "hris"),
        "a refused mapping changes nothing"
    );
}

#[tokio::test]
async fn sensitive_values_are_masked_for_viewers() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let viewer = api.token("vic", "viewer").await;
    let steward = api.token("sam", "steward").await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let (pid, _) = h.payroll_only();
    h.payroll.edit(&pid, json!({ "salary_cents": 9_100_000 }));
    h.settle().await;
    let record = h.record_of("hris", "H1").await;

    let (_, as_viewer) = api
        .call(
            Method::GET,
            &format!("/api/records/{record}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        as_viewer["golden"]["pay_rate"],
        json!("••••"),
        "a viewer never sees the salary"
    );
    let (_, as_steward) = api
        .call(
            Method::GET,
            &format!("/api/records/{record}"),
            Some(&steward),
            None,
        )
        .await;
    assert_eq!(
        as_steward["golden"]["pay_rate"],
        json!("91000"),
        "a steward sees it"
    );

    let (_, audit) = api
        .call(
            Method::GET,
            &format!("/api/audit?record_id={record}&field=pay_rate"),
            Some(&viewer),
            None,
        )
        .await;
    let entries = audit.as_array().expect("audit list");
    assert!(!entries.is_empty(), "the salary's lineage is listed");
    assert!(
        entries
            .iter()
            .all(|e| e["after"].is_null() || e["after"] == json!("••••")),
        "the audit masks the salary for a viewer: {audit}"
    );
}

#[tokio::test]
async fn the_openapi_document_describes_the_routes() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let (status, doc) = api.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "the OpenAPI document is public");
    for path in [
        "/api/exceptions/{id}/resolve",
        "/api/dead-letters/{id}/replay",
        "/api/mappings/preview",
        "/api/metrics",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "the document describes {path}"
        );
    }
    assert!(
        doc["components"]["securitySchemes"]["token"].is_object(),
        "and the bearer token"
    );
}
