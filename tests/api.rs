//! The console API over real HTTP: a token is required, each route checks the caller's role,
//! errors are `{code, message}` JSON with fitting statuses, sensitive values are masked for
//! roles that may not see them, and the OpenAPI document describes the routes.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, ada};
use concord::api::ROUTES;
use concord::api::auth::{Access, Principal, Role, Tokens};
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
        let admin = tokens.issue(Principal::new("ana", Role::Admin));
        let (base, client) = common::serve_console(&h.engine, tokens, "concord-api-test").await;
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

    /// Like [`Api::call`], with the response's `X-Total-Count`.
    async fn list(&self, path: &str, token: &str) -> (Value, i64) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status(), StatusCode::OK, "{path} lists");
        let total = resp
            .headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{path} answers with X-Total-Count"));
        (resp.json().await.expect("json"), total)
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
        StatusCode::UNPROCESSABLE_ENTITY,
        "a body that does not fit the schema is a 422",
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
    let huge = json!({ "reason": "x".repeat(3 * 1024 * 1024) });
    let (status, body) = api
        .call(
            Method::POST,
            "/api/dead-letters/1/discard",
            Some(&api.admin),
            Some(huge),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a body over the limit is a JSON 413",
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

/// A concrete URL for a route pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{id}", "999999")
        .replace("{name}", "concord-api-test-absent")
        .replace("{system}", "hris")
        .replace("{object}", "employee")
}

#[tokio::test]
async fn every_route_checks_every_role() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    check_every_route(&api).await;
}

/// A `concord run` child process, killed on drop.
struct Headless(std::process::Child);

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `concord run` on the state file in `dir` with `h`'s workspace, and waits until it
/// listens and has written its admin token.
async fn start_headless(h: &Harness, dir: &std::path::Path) -> (Headless, Api) {
    let workspace = dir.join("workspace.json");
    std::fs::write(
        &workspace,
        serde_json::to_string(&h.engine.workspace().config).expect("workspace json"),
    )
    .expect("workspace file");
    let (port_file, token_file) = (dir.join("port"), dir.join("admin-token"));
    for stale in [&port_file, &token_file] {
        let _ = std::fs::remove_file(stale);
    }
    let child = Headless(
        std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .arg("run")
            .arg("--db")
            .arg(dir.join("state.db"))
            .arg("--workspace")
            .arg(&workspace)
            .arg("--port-file")
            .arg(&port_file)
            .arg("--admin-token-file")
            .arg(&token_file)
            .env("RUST_LOG", "concord=warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("concord run starts"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let port = loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|p| p.trim().parse::<u16>().ok())
            && std::fs::read_to_string(&token_file).is_ok_and(|t| !t.trim().is_empty())
        {
            break port;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "concord run listens within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let api = Api {
        base: format!("http://127.0.0.1:{port}"),
        admin: std::fs::read_to_string(&token_file).expect("token"),
        client: Client::new(),
    };
    (child, api)
}

#[tokio::test]
async fn concord_run_serves_the_console_api_with_the_same_roles() {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::start(|_| {}).await;
    let dir = tempfile::tempdir().expect("dir");
    let (_child, api) = start_headless(&h, dir.path()).await;
    let mode = std::fs::metadata(dir.path().join("admin-token"))
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the admin token file is private");
    check_every_route(&api).await;
}

/// Sends SIGTERM, as a service manager stopping the daemon does, and waits (10 s at most) for
/// `concord run` to finish on its own.
fn stop_gracefully(mut child: Headless) {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success(), "SIGTERM is delivered");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            assert!(
                status.success(),
                "concord run exits cleanly on SIGTERM: {status}"
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "concord run stops within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn tokens_issued_through_the_api_outlive_a_killed_or_stopped_concord_run_and_revoked_ones_stay_revoked_by_api_or_cli()
 {
    let h = Harness::start(|_| {}).await;
    let dir = tempfile::tempdir().expect("dir");
    let (child, first) = start_headless(&h, dir.path()).await;
    let scrape = first.token("prometheus", "scrape").await;
    let steward = first.token("Stella Steward", "steward").await;
    let (status, _) = first
        .call(Method::GET, "/metrics", Some(&scrape), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the scrape token reads /metrics");
    drop(child); // SIGKILL: nothing is saved on the way out.

    let (child, second) = start_headless(&h, dir.path()).await;
    assert_ne!(
        first.admin, second.admin,
        "each launch makes its own admin token"
    );
    let (status, _) = second
        .call(Method::GET, "/api/me", Some(&first.admin), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the last launch's admin token is not kept"
    );
    let (status, _) = second
        .call(Method::GET, "/metrics", Some(&scrape), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a scrape token issued through the API still reads /metrics after a restart"
    );
    let (status, me) = second
        .call(Method::GET, "/api/me", Some(&steward), None)
        .await;
    assert_eq!(
        (status, me["name"].clone(), me["role"].clone()),
        (StatusCode::OK, json!("Stella Steward"), json!("steward")),
        "a steward's token names the same person and role after a restart"
    );
    let (_, listed) = second
        .call(Method::GET, "/api/tokens", Some(&second.admin), None)
        .await;
    let steward_id = listed
        .as_array()
        .and_then(|l| l.iter().find(|t| t["name"] == "Stella Steward"))
        .and_then(|t| t["id"].as_str())
        .expect("the steward's token is listed after the restart")
        .to_owned();
    let (status, _) = second
        .call(
            Method::DELETE,
            &format!("/api/tokens/{steward_id}"),
            Some(&second.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "an admin revokes it");
    stop_gracefully(child);

    let (third_child, third) = start_headless(&h, dir.path()).await;
    let (status, _) = third
        .call(Method::GET, "/api/me", Some(&steward), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token stays revoked after a restart"
    );
    let (_, listed) = third
        .call(Method::GET, "/api/tokens", Some(&third.admin), None)
        .await;
    let prometheus = listed
        .as_array()
        .and_then(|l| l.iter().find(|t| t["name"] == "prometheus"))
        .cloned()
        .unwrap_or_default();
    assert!(
        prometheus["last_used_at"].is_string() && prometheus["issued_by"].is_string(),
        "its last use, written when the last launch stopped on SIGTERM, and its issuer are kept: {prometheus}"
    );
    let (status, _) = third
        .call(Method::GET, "/metrics", Some(&scrape), None)
        .await;
    assert_eq!(status, StatusCode::OK, "the scrape token still works");

    let state = std::fs::read(dir.path().join("state.db")).expect("state file");
    let wal = std::fs::read(dir.path().join("state.db-wal")).unwrap_or_default();
    for secret in [&scrape, &steward] {
        let found = [&state, &wal]
            .iter()
            .any(|bytes| bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        assert!(!found, "a token's secret never reaches the state file");
    }
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}?mode=ro",
        dir.path().join("state.db").display()
    ))
    .await
    .expect("read the state file");
    let kept: Vec<(String, String)> =
        sqlx::query_as("SELECT name, secret_sha256 FROM api_tokens ORDER BY name")
            .fetch_all(&pool)
            .await
            .expect("kept tokens");
    assert_eq!(
        kept,
        [("prometheus".to_owned(), concord::api::auth::digest(&scrape))],
        "only the live token issued through the API is kept, as the SHA-256 digest of its \
         secret: not the launch tokens, not the revoked one"
    );
    pool.close().await;

    stop_gracefully(third_child);
    let tokens_cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_concord"))
            .arg("tokens")
            .arg("--db")
            .arg(dir.path().join("state.db"))
            .args(args)
            .env("RUST_LOG", "concord=warn")
            .output()
            .expect("concord tokens runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, listing) = tokens_cli(&["list"]);
    let prometheus_id = prometheus["id"].as_str().expect("id");
    assert!(
        ok && listing.contains(prometheus_id) && listing.contains("scrape"),
        "the stopped engine's kept tokens are listed: {listing}"
    );
    assert!(
        !listing.contains(&scrape),
        "the listing never shows a secret"
    );
    let (ok, _) = tokens_cli(&["revoke", "tok_00000000"]);
    assert!(!ok, "revoking an unknown id fails");
    let (ok, said) = tokens_cli(&["revoke", prometheus_id]);
    assert!(ok, "the CLI revokes a kept token: {said}");
    let (_child, fourth) = start_headless(&h, dir.path()).await;
    let (status, _) = fourth
        .call(Method::GET, "/metrics", Some(&scrape), None)
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a token revoked from the CLI is refused at the next launch"
    );
    let (_, audit) = fourth
        .call(
            Method::GET,
            "/api/audit?limit=1000",
            Some(&fourth.admin),
            None,
        )
        .await;
    let revocations = audit
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["rule"] == "config:token_revoked")
                .count()
        })
        .unwrap_or_default();
    assert_eq!(
        revocations, 2,
        "both revocations, through the API and the CLI, are audited"
    );
}

/// Every route of the table, called without a token and with a token of each role.
async fn check_every_route(api: &Api) {
    let tokens = [
        (Role::Viewer, api.token("vic", "viewer").await),
        (Role::Support, api.token("pat", "support").await),
        (Role::Steward, api.token("sam", "steward").await),
        (Role::Scrape, api.token("prometheus", "scrape").await),
        (Role::Admin, api.admin.clone()),
    ];
    let mut checked = 0;
    for (method, pattern, access) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let path = concrete(pattern);
        // Writes get a body that parses nowhere, so an allowed call changes nothing.
        let body = (method != Method::GET).then(|| json!({ "not": "a valid body" }));
        if *access == Access::Public {
            let (status, _) = api.call(method.clone(), &path, None, None).await;
            assert_eq!(status, StatusCode::OK, "{pattern} is public");
            continue;
        }
        let (status, resp) = api.call(method.clone(), &path, None, body.clone()).await;
        assert_error(
            status,
            &resp,
            StatusCode::UNAUTHORIZED,
            &format!("{method} {pattern} without a token is 401"),
        );
        for (role, token) in &tokens {
            let (status, resp) = api
                .call(method.clone(), &path, Some(token), body.clone())
                .await;
            let rule = format!("{method} {pattern} as {}", role.as_str());
            if access.allowed().contains(role) {
                assert!(
                    status != StatusCode::FORBIDDEN && status != StatusCode::UNAUTHORIZED,
                    "{rule} is allowed: {status} {resp}"
                );
                assert_ne!(
                    resp["message"],
                    json!("no such route"),
                    "{rule}: the table's route is served"
                );
            } else {
                // Refused before the (malformed) body is read: 403, not 400.
                assert_error(
                    status,
                    &resp,
                    StatusCode::FORBIDDEN,
                    &format!("{rule} is refused"),
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 120,
        "every route was tried with every role ({checked} calls)"
    );
    let (status, resp) = api
        .call(Method::DELETE, "/api/metrics", Some(&api.admin), None)
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::METHOD_NOT_ALLOWED,
        "a wrong method is a JSON 405",
    );

    // The document and the table describe the same routes, with the same roles.
    let (_, doc) = api.call(Method::GET, "/api/openapi.json", None, None).await;
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let method = method.to_uppercase();
            let access = ROUTES
                .iter()
                .find(|(m, p, _)| *m == method && p == path)
                .map(|(_, _, a)| *a)
                .unwrap_or_else(|| panic!("{method} {path} is documented but has no access rule"));
            let roles: Vec<&str> = access.allowed().iter().map(|r| r.as_str()).collect();
            assert_eq!(
                op["x-roles"],
                json!(roles),
                "{method} {path} documents its roles"
            );
            assert_eq!(
                op["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
                json!("#/components/schemas/ErrorBody"),
                "{method} {path} documents its 401 with the error body"
            );
            documented.push((method, path.clone()));
        }
    }
    for (method, path, access) in ROUTES {
        if *access != Access::Public {
            assert!(
                documented.contains(&(method.to_string(), path.to_string())),
                "{method} {path} is in the OpenAPI document"
            );
        }
    }
}

#[tokio::test]
async fn lists_report_their_totals() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    // Three dead letters: payroll refuses each new hire.
    h.payroll.fail_next(3, 422, None);
    for (id, number) in [("H1", "E1"), ("H2", "E2"), ("H3", "E3")] {
        let mut person = ada();
        person["employee_number"] = json!(number);
        h.hris.edit(id, person);
    }
    h.settle().await;
    let (page, total) = api.list("/api/dead-letters?limit=1", &api.admin).await;
    assert_eq!(page.as_array().map(Vec::len), Some(1), "limit 1 lists one");
    assert_eq!(total, 3, "X-Total-Count counts every match, not the page");
    let (_, total) = api.list("/api/dead-letters?system=hris", &api.admin).await;
    assert_eq!(total, 0, "the total follows the filter");

    let id = page[0]["id"].as_i64().expect("id");
    let (status, one) = api
        .call(
            Method::GET,
            &format!("/api/dead-letters/{id}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a dead letter by id: {one}");
    assert_eq!(
        one["error_class"], page[0]["error_class"],
        "the same dead letter"
    );
    assert_eq!(
        one["response_status"],
        json!(422),
        "with the system's answer"
    );

    let (rows, total) = api.list("/api/audit?limit=2", &api.admin).await;
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "limit 2 lists two");
    assert!(
        total > 2,
        "the audit total counts every entry, not the page: {total}"
    );
    let (everything, _) = api.list("/api/audit?limit=10000", &api.admin).await;
    assert_eq!(
        everything.as_array().map(|a| a.len() as i64),
        Some(total),
        "the total is the number of entries"
    );
    let (_, total) = api.list("/api/exceptions?limit=1", &api.admin).await;
    assert_eq!(total, 0, "no exceptions are open");

    // The desktop window calls from its own origin: the total must be readable there too.
    let resp = api
        .client
        .get(format!("{}/api/dead-letters", api.base))
        .bearer_auth(&api.admin)
        .header("origin", "tauri://localhost")
        .send()
        .await
        .expect("request");
    let exposed = resp
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("x-total-count"),
        "the desktop origin may read X-Total-Count: {exposed:?}"
    );
}

#[tokio::test]
async fn the_console_shows_whether_the_audit_chain_holds() {
    let h = Harness::start(|_| {}).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let api = Api::start(&h).await;
    let viewer = api.token("vic", "viewer").await;
    let entries: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit")
        .fetch_one(h.engine.pool())
        .await
        .expect("count");
    let (status, body) = api
        .call(Method::GET, "/api/audit/chain", Some(&viewer), None)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "any role reads the chain's state: {body}"
    );
    assert_eq!(body["state"], json!("intact"), "{body}");
    assert!(
        body["entries"].as_i64() >= Some(entries),
        "every entry is checked: {body}"
    );
    assert_eq!(body["triggers_present"], json!(true), "{body}");

    let k: i64 = sqlx::query_scalar("SELECT MIN(id) + 1 FROM audit")
        .fetch_one(h.engine.pool())
        .await
        .expect("an entry");
    for s in [
        "DROP TRIGGER audit_no_update".to_owned(),
        format!("UPDATE audit SET rule = 'tampered' WHERE id = {k}"),
    ] {
        sqlx::query(&s)
            .execute(h.engine.pool())
            .await
            .expect("tamper");
    }
    let (status, body) = api
        .call(Method::GET, "/api/audit/chain", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            &body["state"],
            &body["first_broken"]["id"],
            &body["triggers_present"]
        ),
        (&json!("broken"), &json!(k), &json!(false)),
        "the console names the edited entry and the missing trigger: {body}"
    );
}

#[tokio::test]
async fn writes_queued_and_not_leaving_are_stuck_on_the_dashboard_never_healthy() {
    let clock = concord::clock::ManualClock::new(chrono::Utc::now());
    let h = Harness::start_on(&clock).await;
    let api = Api::start(&h).await;
    let viewer = api.token("vic", "viewer").await;
    h.hris.edit("H1", ada());
    while h.hris.hooks_pending() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while h.engine.process_inbox().await.expect("apply") > 0 {}
    let payroll = |body: &Value| {
        body["per_system"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["system"] == json!("payroll")))
            .cloned()
            .unwrap_or_else(|| panic!("payroll's health in {body}"))
    };
    // Applied, not delivered: nothing sends in this test, as when a system's sender is gone.
    let (status, body) = api
        .call(Method::GET, "/api/metrics", Some(&viewer), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let p = payroll(&body);
    assert_eq!(
        p["state"],
        json!("writing"),
        "a write queued a moment ago is leaving: {p}"
    );
    clock.advance(chrono::Duration::minutes(3));
    let (_, body) = api
        .call(Method::GET, "/api/metrics", Some(&viewer), None)
        .await;
    let p = payroll(&body);
    assert_eq!(
        (&p["state"], &p["reason"]),
        (
            &json!("stuck"),
            &json!("1 write queued and none has left for 3 min")
        ),
        "a write due for 3 minutes with nothing sent is stuck, never healthy: {p}"
    );
    h.engine.deliver("payroll").await.expect("deliver");
    let (_, body) = api
        .call(Method::GET, "/api/metrics", Some(&viewer), None)
        .await;
    let p = payroll(&body);
    assert_eq!(p["state"], json!("healthy"), "once delivered: {p}");
}

#[tokio::test]
async fn a_system_saved_from_the_console_starts_in_plan_mode_and_keeps_its_mode() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let vendor = json!({ "id": "vendor", "name": "Vendor", "connector": "rest",
        "config": { "base_url": "http://127.0.0.1:9/api", "objects": { "employee": { "path": "/people" } } } });
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/systems/vendor",
            Some(&api.admin),
            Some(vendor.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mode = |ws: &Value| {
        ws["systems"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["id"] == json!("vendor")))
            .map(|s| s["writes"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        mode(&body),
        json!("plan"),
        "a new system's writes are held in a plan until an admin enables them"
    );
    let mut renamed = vendor.clone();
    renamed["name"] = json!("Vendor Inc");
    let (_, body) = api
        .call(
            Method::PUT,
            "/api/systems/vendor",
            Some(&api.admin),
            Some(renamed),
        )
        .await;
    assert_eq!(mode(&body), json!("plan"), "saving it again keeps its mode");
    let (_, body) = api
        .call(
            Method::GET,
            "/api/systems/payroll/plan",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(
        body["writes"],
        json!("live"),
        "systems from a workspace file stay live: {body}"
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/api/systems/payroll/enable",
            Some(&api.admin),
            Some(json!({})),
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::CONFLICT,
        "enabling a live system is a 409",
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/api/systems/vendor/enable",
            Some(&api.admin),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, ws) = api
        .call(Method::GET, "/api/workspace", Some(&api.admin), None)
        .await;
    assert_eq!(mode(&ws), json!("live"), "enabled: {ws}");
}

#[tokio::test]
async fn a_system_is_tested_before_it_is_saved() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let mut draft = serde_json::to_value(
        h.config
            .systems
            .iter()
            .find(|s| s.id == "hris")
            .expect("hris"),
    )
    .expect("json");
    draft["id"] = json!("hris-draft");
    let (status, test) = api
        .call(
            Method::POST,
            "/api/systems/test",
            Some(&api.admin),
            Some(json!({ "system": draft })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{test}");
    assert_eq!(
        test["ok"],
        json!(true),
        "the draft reaches the system: {test}"
    );
    assert_eq!(test["sample_count"], json!(1), "and lists its one record");
    assert!(
        test["fields"].as_object().is_some_and(|f| !f.is_empty()),
        "with its fields: {test}"
    );
    let (_, ws) = api
        .call(Method::GET, "/api/workspace", Some(&api.admin), None)
        .await;
    assert!(
        ws["systems"]
            .as_array()
            .expect("systems")
            .iter()
            .all(|s| s["id"] != json!("hris-draft")),
        "testing stores nothing"
    );

    draft["config"]["base_url"] = json!("http://127.0.0.1:9");
    let (status, test) = api
        .call(
            Method::POST,
            "/api/systems/test",
            Some(&api.admin),
            Some(json!({ "system": draft })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        test["ok"],
        json!(false),
        "an unreachable system fails the test: {test}"
    );
    assert!(
        !test["message"].as_str().unwrap_or("").is_empty(),
        "and says why"
    );

    draft["config"]["objects"] = json!("nope");
    let (status, resp) = api
        .call(
            Method::POST,
            "/api/systems/test",
            Some(&api.admin),
            Some(json!({ "system": draft })),
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a malformed config is a 422",
    );
    assert!(
        resp["message"].as_str().unwrap_or("").contains("objects"),
        "naming the key: {resp}"
    );

    // Secrets: their existence is visible, never their value.
    let name = "concord-api-test-status";
    let (status, resp) = api
        .call(
            Method::PUT,
            &format!("/api/secrets/{name}"),
            Some(&api.admin),
            Some(json!({ "value": "s3cr3t-v4lue" })),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "stored: {resp}");
    let (status, resp) = api
        .call(
            Method::GET,
            &format!("/api/secrets/{name}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        resp,
        json!({ "name": name, "stored": true }),
        "a stored secret shows as stored, without its value"
    );
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/api/secrets/{name}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, resp) = api
        .call(
            Method::GET,
            &format!("/api/secrets/{name}"),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(
        resp["stored"],
        json!(false),
        "a deleted secret is gone from the keychain"
    );

    // A record is found by the id a system gives it.
    let record = h.record_of("hris", "H1").await;
    let (status, found) = api
        .call(
            Method::GET,
            "/api/records?system=hris&external_id=H1",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["id"], json!(record), "the HRIS id finds the record");
    let (status, resp) = api
        .call(
            Method::GET,
            "/api/records?system=hris&external_id=nobody",
            Some(&api.admin),
            None,
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::NOT_FOUND,
        "an unknown external id is a 404",
    );
}

#[tokio::test]
async fn the_dashboard_reports_propagation_lag() {
    let start = chrono::Utc::now();
    let clock = concord::clock::ManualClock::new(start);
    let h = Harness::start_on(&clock).await;
    let api = Api::start(&h).await;
    let (_, before) = api
        .call(Method::GET, "/api/metrics", Some(&api.admin), None)
        .await;
    assert_eq!(
        before["lag_p95_secs"],
        Value::Null,
        "no writes, no lag: {before}"
    );

    // A hire reaches the engine; payroll accepts the create 30 s later.
    h.hris.edit("H1", ada());
    while h.hris.hooks_pending() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    clock.advance(chrono::Duration::seconds(30));
    h.settle().await;
    assert_eq!(h.payroll.records().len(), 1, "the hire reached payroll");
    let (_, m) = api
        .call(Method::GET, "/api/metrics", Some(&api.admin), None)
        .await;
    assert_eq!(m["lag_sample"], json!(1), "one write was sent: {m}");
    assert_eq!(
        m["lag_p50_secs"],
        json!(30.0),
        "lag runs from arrival to acceptance: {m}"
    );
    assert_eq!(m["lag_p95_secs"], json!(30.0), "{m}");
    let payroll = m["per_system"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["system"] == json!("payroll")))
        .expect("payroll's health");
    assert_eq!(
        payroll["lag_p95_secs"],
        json!(30.0),
        "per system too: {payroll}"
    );
    assert!(
        payroll["last_sent_at"].is_string(),
        "with its last success: {payroll}"
    );

    // A minute later the window holds no sends: the lag is unknown, not stale.
    clock.advance(chrono::Duration::seconds(61));
    let (_, m) = api
        .call(Method::GET, "/api/metrics", Some(&api.admin), None)
        .await;
    assert_eq!(
        m["lag_p95_secs"],
        Value::Null,
        "only the last minute counts: {m}"
    );
}

#[tokio::test]
async fn a_long_metrics_history_is_thinned_evenly() {
    let start = chrono::Utc::now() - chrono::Duration::minutes(30);
    let clock = concord::clock::ManualClock::new(start);
    let h = Harness::start_on(&clock).await;
    let api = Api::start(&h).await;
    // 25 minutes of samples, one every 5 s.
    for _ in 0..300 {
        h.engine.sample_metrics().await.expect("sample");
        clock.advance(chrono::Duration::seconds(5));
    }
    let newest = concord::store::ts(start + chrono::Duration::seconds(5 * 299));
    let since = concord::store::ts(start);
    let (status, all) = api
        .call(
            Method::GET,
            &format!("/api/metrics/history?since={}", since.replace('+', "%2B")),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{all}");
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(300),
        "under the default cap, every sample"
    );
    let (_, thin) = api
        .call(
            Method::GET,
            &format!("/api/metrics/history?since={since}&max_points=10"),
            Some(&api.admin),
            None,
        )
        .await;
    let thin = thin.as_array().expect("samples");
    assert_eq!(thin.len(), 10, "300 samples thinned to at most 10");
    assert_eq!(
        thin.last().map(|s| &s["at"]),
        Some(&json!(newest)),
        "the newest sample is kept"
    );
    let times: Vec<chrono::DateTime<chrono::Utc>> = thin
        .iter()
        .filter_map(|s| concord::store::parse_ts(s["at"].as_str()?))
        .collect();
    assert!(
        times.windows(2).all(|w| (w[1] - w[0]).num_seconds() == 150),
        "evenly spread, in time order: {times:?}"
    );
    let (status, resp) = api
        .call(
            Method::GET,
            "/api/metrics/history?since=yesterday",
            Some(&api.admin),
            None,
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::BAD_REQUEST,
        "a malformed time is a 400",
    );
}

#[tokio::test]
async fn bulk_resolve_takes_a_filtered_set_and_says_what_remains() {
    let h = Harness::start(|c| {
        let p = c.policies[0]
            .fields
            .iter_mut()
            .find(|p| p.field == "given_name")
            .expect("given_name policy");
        p.non_owner = concord::model::NonOwnerPolicy::Quarantine;
    })
    .await;
    let api = Api::start(&h).await;
    let steward = api.token("sam", "steward").await;
    for (id, number) in [("H1", "E1"), ("H2", "E2"), ("H3", "E3")] {
        let mut person = ada();
        person["employee_number"] = json!(number);
        h.hris.edit(id, person);
    }
    h.settle().await;
    for (pid, _) in h.payroll.records() {
        h.payroll.edit(&pid, json!({ "first_name": "Augusta" }));
    }
    h.settle().await;
    let (_, total) = api
        .list("/api/exceptions?kind=non_owner_change", &steward)
        .await;
    assert_eq!(total, 3, "three quarantined renames");

    let bulk = json!({
        "filter": { "kind": "non_owner_change", "field": "given_name", "limit": 2 },
        "choice": { "choose": "system", "value": "payroll" },
        "note": "HR confirmed the new spelling",
    });
    let (status, first) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve",
            Some(&steward),
            Some(bulk.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        first["applied"],
        json!(2),
        "a call takes at most its limit: {first}"
    );
    assert_eq!(
        first["remaining"],
        json!(1),
        "and says how many still match: {first}"
    );
    let (_, second) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve",
            Some(&steward),
            Some(bulk),
        )
        .await;
    assert_eq!(second["applied"], json!(1), "{second}");
    assert_eq!(second["remaining"], json!(0), "{second}");
    h.settle().await;
    for id in ["H1", "H2", "H3"] {
        assert_eq!(
            h.hris.record(id).expect("kept")["full_name"],
            json!("Augusta Lovelace"),
            "payroll's spelling reaches the owner for {id}"
        );
    }
}

#[tokio::test]
async fn support_replays_a_selection_in_one_request() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let support = api.token("pat", "support").await;
    h.payroll.fail_next(3, 422, None);
    for (id, number) in [("H1", "E1"), ("H2", "E2"), ("H3", "E3")] {
        let mut person = ada();
        person["employee_number"] = json!(number);
        h.hris.edit(id, person);
    }
    h.settle().await;
    let (dead, total) = api.list("/api/dead-letters", &support).await;
    assert_eq!(total, 3, "three refused hires");
    let ids: Vec<i64> = dead
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["id"].as_i64())
        .collect();

    let selection = json!({ "ids": [ids[0], ids[1], 999_999] });
    let (status, resp) = api
        .call(
            Method::POST,
            "/api/dead-letters/replay-selected",
            Some(&support),
            Some(selection),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let results = resp["results"].as_array().expect("results");
    assert_eq!(results[0]["outcome"], json!("queued"), "{resp}");
    assert_eq!(results[1]["outcome"], json!("queued"), "{resp}");
    assert_eq!(
        results[2]["error"]["code"],
        json!("not_found"),
        "an unknown id is reported, and does not stop the others: {resp}"
    );
    h.settle().await;
    assert_eq!(
        h.payroll.records().len(),
        2,
        "the two selected hires reach payroll, the third stays a dead letter"
    );
    let (_, total) = api.list("/api/dead-letters", &support).await;
    assert_eq!(total, 1, "one dead letter is left");

    let (_, again) = api
        .call(
            Method::POST,
            "/api/dead-letters/replay-selected",
            Some(&support),
            Some(json!({ "ids": [ids[0]] })),
        )
        .await;
    assert_eq!(
        again["results"][0]["outcome"],
        json!("already_replayed"),
        "replaying again sends nothing more: {again}"
    );
    h.settle().await;
    assert_eq!(h.payroll.records().len(), 2, "still two records in payroll");
    let (status, resp) = api
        .call(
            Method::POST,
            "/api/dead-letters/replay-selected",
            Some(&support),
            Some(json!({ "ids": [] })),
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an empty selection is refused",
    );
}

/// Probes from the security review: each gets a clear 4xx and the connection stays up.
#[tokio::test]
async fn out_of_range_and_forged_input_gets_a_4xx_never_a_dropped_connection() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let viewer = api.token("vic", "viewer").await;
    for (path, rule) in [
        (
            "/api/exceptions?older_than_secs=10000000000000",
            "an age of ten trillion seconds",
        ),
        ("/api/exceptions?older_than_secs=-1", "a negative age"),
        ("/api/exceptions?limit=0", "a page of nothing"),
        ("/api/dead-letters?offset=-5", "a negative offset"),
        ("/api/audit?since=yesterday", "a time that is not RFC 3339"),
        (
            "/api/records?system=&external_id=H1",
            "an empty required parameter",
        ),
        (
            "/api/metrics/history?max_points=9223372036854775807",
            "too many points",
        ),
    ] {
        let (status, body) = api.call(Method::GET, path, Some(&viewer), None).await;
        assert_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            &format!("{rule} is a 400"),
        );
    }
    let (status, body) = api
        .call(
            Method::GET,
            "/api/exceptions?limit=5.0",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "5.0 is the integer 5: {body}");

    let (status, body) = api
        .call(
            Method::GET,
            "/api/systems/hris/discover?object=",
            Some(&api.admin),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "an empty object is a 400, not a 502",
    );
    let (status, body) = api
        .call(
            Method::GET,
            "/api/systems/hris/discover?object=nope",
            Some(&api.admin),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "an object the system does not declare is a 404, and is never sent to the system",
    );

    let system = |connector: &str, name: &str| json!({ "id": "x", "name": name, "connector": connector, "config": {} });
    for (body, rule) in [
        (
            system("nope", "X"),
            "an unknown connector is a 422, not a 500",
        ),
        (
            system("rest\nERROR forged log line", "X"),
            "a newline in the connector is refused",
        ),
        (
            system("external", "X\u{7}"),
            "a control character in a name is refused",
        ),
        (
            system("external", &"n".repeat(1_900_000)),
            "a 1.9 MB name is refused",
        ),
    ] {
        let (status, resp) = api
            .call(Method::PUT, "/api/systems/x", Some(&api.admin), Some(body))
            .await;
        assert_error(status, &resp, StatusCode::UNPROCESSABLE_ENTITY, rule);
    }
    let (status, workspace) = api
        .call(Method::GET, "/api/workspace", Some(&api.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        workspace["systems"]
            .as_array()
            .is_some_and(|s| s.iter().all(|s| s["id"] != "x")),
        "nothing refused was stored"
    );
    let (status, body) = api
        .call(
            Method::GET,
            "/api/systems/h%0Ai/discover",
            Some(&api.admin),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "a control character in a path id is a 400",
    );
}

#[tokio::test]
async fn a_mapping_change_is_versioned_diffed_and_undone_and_the_sync_follows_the_restored_mapping()
{
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let viewer = api.token("vic", "viewer").await;
    let original = h
        .config
        .mappings
        .iter()
        .find(|m| m.system == "hris")
        .expect("hris mapping")
        .clone();
    // The change: the HRIS no longer maps the job title.
    let mut changed = serde_json::to_value(&original).expect("json");
    let rules = changed["rules"].as_array_mut().expect("rules");
    let title = rules
        .iter()
        .position(|r| r["canonical"] == json!(["job_title"]))
        .expect("a job title rule");
    rules.remove(title);
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/mappings/hris/employee",
            Some(&api.admin),
            Some(changed),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, history) = api
        .call(
            Method::GET,
            "/api/config/history?kind=mapping&target=hris/employee",
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "any role reads the history: {history}"
    );
    let versions = history.as_array().expect("versions");
    assert_eq!(versions.len(), 1, "one change, one version: {history}");
    let v = &versions[0];
    assert_eq!(
        (v["kind"].clone(), v["target"].clone(), v["actor"].clone()),
        (json!("mapping"), json!("hris/employee"), json!("ana"))
    );
    assert!(
        v["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("rules[job_title]"))),
        "the diff names the rule that changed by the field it yields: {v}"
    );
    let id = v["id"].as_i64().expect("an id");

    // Only an admin restores; undoing the change puts the original mapping back.
    let path = format!("/api/config/history/{id}/restore?undo=true");
    let (status, _) = api.call(Method::POST, &path, Some(&viewer), None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a viewer cannot restore configuration"
    );
    let (status, body) = api.call(Method::POST, &path, Some(&api.admin), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, ws) = api
        .call(Method::GET, "/api/workspace", Some(&api.admin), None)
        .await;
    let now = ws["mappings"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["system"] == json!("hris")).cloned())
        .expect("the hris mapping");
    assert_eq!(
        now,
        serde_json::to_value(&original).expect("json"),
        "undoing restores the mapping exactly"
    );
    let (_, history) = api
        .call(
            Method::GET,
            "/api/config/history?target=hris/employee",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(
        history.as_array().map(Vec::len),
        Some(2),
        "the restore is a version too: {history}"
    );
    assert_eq!(
        history[0]["restored_from"],
        json!(id),
        "and says which version it restored: {history}"
    );
    assert_eq!(
        history[0]["after"], now,
        "its after is the restored mapping"
    );

    // The engine syncs with the restored mapping: a new title in the HRIS reaches payroll.
    h.hris.edit("H1", ada());
    h.settle().await;
    h.hris.edit("H1", json!({ "title": "Principal Engineer" }));
    h.settle().await;
    let (pid, _) = h.payroll_only();
    let record = h
        .engine
        .record_for("payroll", "employee", &pid)
        .await
        .expect("lookup");
    let golden = h
        .engine
        .golden(record.expect("linked"))
        .await
        .expect("golden");
    assert_eq!(
        golden["job_title"],
        json!("Principal Engineer"),
        "the restored rule reads the title again"
    );

    // A version whose target did not exist cannot be restored to that state.
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/api/config/history/{}/restore?undo=true", history[0]["id"]),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "undoing the restore is itself a restore: {body}"
    );
    let (_, audit) = api
        .call(Method::GET, "/api/audit?limit=1000", Some(&api.admin), None)
        .await;
    let sync_entry = audit
        .as_array()
        .and_then(|a| {
            a.iter().find(|e| {
                !e["rule"]
                    .as_str()
                    .unwrap_or("config:")
                    .starts_with("config:")
            })
        })
        .expect("the sync wrote audit entries");
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/api/config/history/{}", sync_entry["id"]),
            Some(&api.admin),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "an audit entry that is not a config change is not a version",
    );
}

#[tokio::test]
async fn the_mapper_reads_the_newest_golden_values_of_an_object() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let (status, body) = api
        .call(
            Method::GET,
            "/api/objects/employee/golden-sample?limit=100",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let records = body["records"].as_array().expect("records");
    assert!(
        records.iter().any(|r| r["work_email"] == ada()["email"]),
        "the golden values the HRIS set are in the sample: {body}"
    );
    let (_, two) = api
        .call(
            Method::GET,
            "/api/objects/employee/golden-sample?limit=2",
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(
        two["records"].as_array().map(Vec::len),
        Some(2.min(records.len())),
        "the sample holds at most `limit` records: {two}"
    );
    for (path, expected, rule) in [
        (
            "/api/objects/employee/golden-sample?limit=0",
            StatusCode::BAD_REQUEST,
            "a limit below 1 is a 400",
        ),
        (
            "/api/objects/employee/golden-sample?limit=101",
            StatusCode::BAD_REQUEST,
            "a limit above 100 is a 400",
        ),
        (
            "/api/objects/nope/golden-sample",
            StatusCode::NOT_FOUND,
            "an unknown object is a 404",
        ),
    ] {
        let (status, body) = api.call(Method::GET, path, Some(&api.admin), None).await;
        assert_error(status, &body, expected, rule);
    }
}

/// The value of `name` with the given labels in a scrape, if present.
fn sample(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.iter().map(|b| b.count).fold(0.0, f64::max)
            }
            prometheus_parse::Value::Summary(_) => f64::NAN,
        })
}

async fn scrape(api: &Api, token: &str) -> prometheus_parse::Scrape {
    let (status, body) = api.call(Method::GET, "/metrics", Some(token), None).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a scrape token reads /metrics: {body}"
    );
    let text = body
        .as_str()
        .expect("the exposition is text, not JSON")
        .to_owned();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("/metrics parses as the Prometheus text format")
}

#[tokio::test]
async fn prometheus_metrics_parse_and_move_with_a_sync() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let scraper = api.token("prometheus", "scrape").await;
    let before = scrape(&api, &scraper).await;
    let received = |s: &prometheus_parse::Scrape| {
        sample(s, "concord_events_received_total", &[("system", "hris")]).unwrap_or(0.0)
    };
    let sent = |s: &prometheus_parse::Scrape| {
        sample(s, "concord_writes_sent_total", &[("system", "payroll")]).unwrap_or(0.0)
    };
    let lag_count = |s: &prometheus_parse::Scrape| {
        sample(
            s,
            "concord_propagation_lag_seconds_count",
            &[("system", "payroll")],
        )
        .unwrap_or(0.0)
    };
    h.hris.edit("H1", ada());
    h.settle().await;
    let after = scrape(&api, &scraper).await;
    assert!(
        received(&after) > received(&before),
        "the HRIS's events are counted under its label: {} then {}",
        received(&before),
        received(&after)
    );
    assert!(
        sent(&after) > sent(&before),
        "the writes payroll accepted are counted under its label: {} then {}",
        sent(&before),
        sent(&after)
    );
    assert!(
        lag_count(&after) > lag_count(&before),
        "each accepted write is observed in the lag histogram"
    );
    assert_eq!(
        sample(&after, "concord_outbox_pending", &[("system", "payroll")]),
        Some(0.0),
        "once settled nothing is queued for payroll"
    );
    assert_eq!(
        sample(
            &after,
            "concord_system_state",
            &[("system", "payroll"), ("state", "healthy")]
        ),
        Some(1.0),
        "payroll's state is a labelled gauge"
    );
    for name in [
        "concord_inbox_pending",
        "concord_dead_letters",
        "concord_write_retries_total",
        "concord_reads_total",
        "concord_breaker_open",
    ] {
        assert!(
            after.samples.iter().any(|s| s.metric == name),
            "{name} is exposed"
        );
    }
    assert!(
        after
            .samples
            .iter()
            .all(|s| s.metric.starts_with("concord_")),
        "every name has the concord_ prefix"
    );

    // The scrape token reads nothing else; no token reads nothing at all.
    let (status, body) = api
        .call(Method::GET, "/api/metrics", Some(&scraper), None)
        .await;
    assert_error(
        status,
        &body,
        StatusCode::FORBIDDEN,
        "a scrape token may not read the console API",
    );
    let (status, body) = api.call(Method::GET, "/metrics", None, None).await;
    assert_error(
        status,
        &body,
        StatusCode::UNAUTHORIZED,
        "/metrics needs a token",
    );
}

#[tokio::test]
async fn a_system_that_rate_limits_discovery_is_a_429_never_a_server_error() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A REST system that answers every read with 429, as a busy API does: a real server on
    // loopback that fails on purpose.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = reads.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                r#"{"error":"rate_limited","message":"slow down"}"#,
            )
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let h = Harness::start(move |ws| {
        ws.systems.push(
            serde_json::from_value(json!({
                "id": "busy", "name": "Busy", "connector": "rest",
                "config": { "base_url": format!("http://{addr}"), "objects": { "employee": { "path": "/employees" } } }
            }))
            .expect("a system"),
        );
    })
    .await;
    let api = Api::start(&h).await;
    let (status, body) = api
        .call(
            Method::GET,
            "/api/systems/busy/discover",
            Some(&api.admin),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "a system rate limiting its reads makes discovery a 429, never a 5xx",
    );
    assert_eq!(body["code"], json!("rate_limited"), "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("slow down")),
        "the system's own words are passed on: {body}"
    );
    assert_eq!(
        reads.load(Ordering::SeqCst),
        3,
        "the console asks the system three times, waiting as told, then gives up"
    );
}
