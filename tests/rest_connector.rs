//! The declarative `rest` connector against small HTTP servers inside the test (axum on
//! 127.0.0.1:0) that check credentials and record every request: each auth style with its
//! secret in the OS keychain, each pagination style, incremental query formats, signed webhooks
//! through the engine's `/hooks/{system}`, 412 handling, the per-system rate limit, and config
//! validation errors that name the bad key.
//!
//! The keychain needs a session keyring on a headless Linux machine: run these tests as
//! `keyctl session - cargo test --test rest_connector` (scripts/test.sh does).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use concord::connector::{Connector, ConnectorError};
use concord::connectors::rest::{RestConfig, RestConnector, sign_webhook};
use concord::loopback::LoopbackSystem;
use concord::model::{SystemConfig, WorkspaceConfig};
use concord::secrets::{Keychain, Secret, SecretStore, SharedSecrets};
use concord::{Engine, EngineOptions, Settings};
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// Harness: recording test servers, a per-test keychain, connectors and engines.

/// One request as a test server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query, as sent.
    uri: String,
    headers: HeaderMap,
    status: u16,
    at: Instant,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The query, percent-decoded, as `k=v&k=v`.
    fn query(&self) -> String {
        let q = self.uri.split_once('?').map_or("", |(_, q)| q);
        url::form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Every request a test server answered, in order.
#[derive(Clone, Default)]
struct RequestLog(Arc<Mutex<Vec<Seen>>>);

impl RequestLog {
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn uris(&self) -> Vec<String> {
        self.all().into_iter().map(|s| s.uri).collect()
    }
}

async fn record(State(log): State<RequestLog>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let uri = request.uri().to_string();
    let headers = request.headers().clone();
    let at = Instant::now();
    let response = next.run(request).await;
    log.0.lock().unwrap_or_else(|p| p.into_inner()).push(Seen {
        method,
        uri,
        headers,
        status: response.status().as_u16(),
        at,
    });
    response
}

/// Serves `router` on 127.0.0.1 (a free port), recording every request. Returns the base URL.
async fn serve(router: Router, log: &RequestLog) -> String {
    let router = router.layer(axum::middleware::from_fn_with_state(log.clone(), record));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port on 127.0.0.1");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// A keychain service of this test's own, holding the given secrets; emptied on drop.
struct TestKeychain {
    store: Arc<Keychain>,
    names: Vec<String>,
}

impl TestKeychain {
    fn new(test: &str, secrets: &[(&str, &str)]) -> Self {
        let store = Arc::new(Keychain::new(format!(
            "concord-test-{}-{test}",
            std::process::id()
        )));
        for (name, value) in secrets {
            store.set(name, &Secret::new(*value)).unwrap_or_else(|e| {
                panic!(
                    "storing secret '{name}' in the OS keychain failed; run the tests in a session \
                     keyring (`keyctl session - cargo test`, as scripts/test.sh does): {e}"
                )
            });
        }
        Self {
            store,
            names: secrets.iter().map(|(n, _)| (*n).to_owned()).collect(),
        }
    }

    fn shared(&self) -> SharedSecrets {
        self.store.clone()
    }

    /// Stores a loopback system's webhook token as `source-webhook` (the name the source's
    /// `webhook_secret` gives in [`workspace`]).
    fn trust_hooks(&mut self, system: &LoopbackSystem) {
        self.store
            .set("source-webhook", &system.hook_token())
            .expect("the keychain takes the webhook token");
        self.names.push("source-webhook".into());
    }
}

impl Drop for TestKeychain {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.store.delete(name);
        }
    }
}

fn system(id: &str, config: Value) -> SystemConfig {
    serde_json::from_value(json!({ "id": id, "name": id, "connector": "rest", "config": config }))
        .expect("a system config")
}

fn connector(config: Value, secrets: SharedSecrets) -> RestConnector {
    RestConnector::from_config(&system("vendor", config), secrets).expect("the config is valid")
}

/// Lists every page of `object`, following the connector's page tokens (at most 20 pages).
async fn list_all(c: &RestConnector, object: &str) -> (Vec<String>, Vec<Option<u64>>) {
    let mut ids = Vec::new();
    let mut totals = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..20 {
        let page = c
            .list_page(object, token.as_deref())
            .await
            .expect("a page is listed");
        ids.extend(page.records.into_iter().map(|r| r.external_id));
        totals.push(page.total);
        match page.next {
            Some(next) => token = Some(next),
            None => return (ids, totals),
        }
    }
    panic!("the listing did not end within 20 pages: {ids:?}");
}

/// Standard base64, for checking HTTP basic credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn fast_settings() -> Settings {
    Settings {
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(200),
        idle_poll: Duration::from_millis(10),
        ..Settings::default()
    }
}

/// An engine on a real SQLite file, with its webhook server on 127.0.0.1.
struct TestEngine {
    dir: TempDir,
    engine: Engine,
    hooks: String,
    cancel: CancellationToken,
}

impl TestEngine {
    async fn open(secrets: SharedSecrets) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = Engine::open(
            &dir.path().join("state.db"),
            EngineOptions {
                settings: fast_settings(),
                secrets,
                ..EngineOptions::default()
            },
        )
        .await
        .expect("engine opens");
        let cancel = CancellationToken::new();
        let (addr, _) = concord::server::spawn_loopback(engine.clone(), 0, cancel.clone())
            .await
            .expect("webhook server");
        Self {
            dir,
            engine,
            hooks: format!("http://{addr}/hooks"),
            cancel,
        }
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.engine.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Waits until the systems' webhooks are accepted and the inbox and outbox are empty.
    async fn settle(&self, systems: &[&LoopbackSystem]) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let hooks = || systems.iter().map(|s| s.hooks_pending()).sum::<usize>();
        loop {
            while hooks() > 0 {
                assert!(Instant::now() < deadline, "webhooks did not drain in 60 s");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            self.engine
                .run_until_idle(Duration::from_secs(30))
                .await
                .expect("engine goes idle");
            tokio::time::sleep(Duration::from_millis(20)).await;
            let pending = self
                .scalar("SELECT COUNT(*) FROM inbox WHERE status = 'pending'")
                .await;
            if hooks() == 0 && pending == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the systems did not go quiet");
        }
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A workspace of a system `vendor` (the rest config under test, fields `emp_no`, `first`,
/// `last`, `email`, `title`) and, when `source_url` is given, a Concord-side loopback system
/// `source` (fields `employee_id`, `full_name`, `email`, `title`). No ownership: every system
/// may write every field, the later change wins.
fn workspace(vendor: Value, rate_limit: Option<f64>, source_url: Option<&str>) -> WorkspaceConfig {
    let mut systems = vec![json!({
        "id": "vendor", "name": "Vendor HR", "connector": "rest", "config": vendor,
        "rate_limit_per_sec": rate_limit
    })];
    let mut mappings = vec![json!({ "system": "vendor", "object": "employee", "rules": [
        { "canonical": ["employee_number"], "system": ["emp_no"] },
        { "canonical": ["given_name"], "system": ["first"] },
        { "canonical": ["family_name"], "system": ["last"] },
        { "canonical": ["work_email"], "system": ["email"] },
        { "canonical": ["job_title"], "system": ["title"] }
    ]})];
    if let Some(url) = source_url {
        systems.push(json!({
            "id": "source", "name": "Source", "connector": "rest", "webhook_secret": "source-webhook",
            "config": { "base_url": url, "objects": { "employee": {
                "path": "/employees", "version_field": "version", "concurrency": { "style": "etag" } } } }
        }));
        mappings.push(json!({ "system": "source", "object": "employee", "rules": [
            { "canonical": ["employee_number"], "system": ["employee_id"] },
            { "canonical": ["given_name", "family_name"], "system": ["full_name"], "transform": { "kind": "full_name" } },
            { "canonical": ["work_email"], "system": ["email"] },
            { "canonical": ["job_title"], "system": ["title"] }
        ]}));
    }
    serde_json::from_value(json!({
        "systems": systems,
        "objects": [concord::schema::employee()],
        "mappings": mappings,
    }))
    .expect("a valid workspace")
}

// ---------------------------------------------------------------------------------------------
// Auth: each style sends the keychain's secret the way the config says.

#[derive(Clone)]
struct Expect {
    header: &'static str,
    value: String,
}

/// `GET /employees` answers one record when `header` holds exactly `value`, else 401.
async fn guarded_server(header: &'static str, value: String) -> (String, RequestLog) {
    async fn employees(State(e): State<Expect>, headers: HeaderMap) -> Response {
        if headers.get(e.header).and_then(|v| v.to_str().ok()) == Some(e.value.as_str()) {
            Json(json!([{ "id": "1", "first": "Ada" }])).into_response()
        } else {
            (StatusCode::UNAUTHORIZED, "invalid credentials").into_response()
        }
    }
    let log = RequestLog::default();
    let router = Router::new()
        .route("/employees", get(employees))
        .with_state(Expect { header, value });
    (serve(router, &log).await, log)
}

/// Lists through a connector whose keychain holds `secret`, against a server that wants
/// `header: expected`; then with a wrong secret, which the server must refuse.
async fn check_auth(
    test: &str,
    auth: Value,
    secret_name: &str,
    secret: &str,
    header: &'static str,
    expected: &str,
) {
    let (url, log) = guarded_server(header, expected.to_owned()).await;
    let config = json!({ "base_url": url, "auth": auth, "objects": { "employee": { "path": "/employees" } } });

    let keychain = TestKeychain::new(test, &[(secret_name, secret)]);
    let page = connector(config.clone(), keychain.shared())
        .list_page("employee", None)
        .await
        .unwrap_or_else(|e| panic!("{test}: the server accepts the keychain's secret: {e}"));
    assert_eq!(page.records.len(), 1, "{test}: the record is listed");
    let seen = log.all();
    assert_eq!(
        seen[0].header(header).as_deref(),
        Some(expected),
        "{test}: the request carries {header} built from the keychain's secret"
    );

    let wrong = TestKeychain::new(&format!("{test}-wrong"), &[(secret_name, "not-the-secret")]);
    let err = connector(config, wrong.shared())
        .list_page("employee", None)
        .await
        .expect_err("a wrong secret is refused");
    assert!(
        matches!(err, ConnectorError::Rejected { status: 401, .. }),
        "{test}: a refused credential is a 401 rejection, not retried: {err:?}"
    );
    assert!(
        !format!("{err} {err:?}").contains("not-the-secret"),
        "{test}: the secret value never appears in an error: {err:?}"
    );
}

#[tokio::test]
async fn api_key_auth_sends_the_keychain_secret_in_the_configured_header() {
    check_auth(
        "api-key",
        json!({ "type": "api_key", "header": "X-API-Key", "secret": "vendor-api-key" }),
        "vendor-api-key",
        "k3y-0f-the-vendor",
        "x-api-key",
        "k3y-0f-the-vendor",
    )
    .await;
}

#[tokio::test]
async fn api_key_auth_puts_the_configured_prefix_before_the_secret() {
    check_auth(
        "api-key-prefix",
        json!({ "type": "api_key", "header": "Authorization", "secret": "vendor-token", "prefix": "Token " }),
        "vendor-token",
        "t0ken-value",
        "authorization",
        "Token t0ken-value",
    )
    .await;
}

#[tokio::test]
async fn bearer_auth_sends_the_keychain_secret_as_a_bearer_token() {
    check_auth(
        "bearer",
        json!({ "type": "bearer", "secret": "vendor-bearer" }),
        "vendor-bearer",
        "b3arer-value",
        "authorization",
        "Bearer b3arer-value",
    )
    .await;
}

#[tokio::test]
async fn basic_auth_sends_the_username_and_the_keychain_password() {
    check_auth(
        "basic",
        json!({ "type": "basic", "username": "sync-bot", "secret": "vendor-password" }),
        "vendor-password",
        "pa55:word",
        "authorization",
        &format!("Basic {}", base64(b"sync-bot:pa55:word")),
    )
    .await;
}

#[test]
fn the_test_base64_encoder_is_standard_base64() {
    assert_eq!(
        base64(b"Aladdin:open sesame"),
        "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"abc"), "YWJj");
}

/// An OAuth2 token endpoint and an API that accepts only the tokens it lists as valid.
#[derive(Clone, Default)]
struct OAuth {
    /// Form bodies posted to the token endpoint.
    token_requests: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    /// `expires_in` of the next tokens; 3600 once the list is used up.
    lifetimes: Arc<Mutex<Vec<i64>>>,
    valid: Arc<Mutex<Vec<String>>>,
    /// The API refuses every token.
    refuse_all: Arc<std::sync::atomic::AtomicBool>,
}

impl OAuth {
    fn tokens_issued(&self) -> usize {
        self.token_requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    fn revoke_all(&self) {
        self.valid.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

async fn oauth_server() -> (String, RequestLog, OAuth) {
    async fn token(
        State(s): State<OAuth>,
        axum::Form(form): axum::Form<BTreeMap<String, String>>,
    ) -> Response {
        if form.get("client_secret").map(String::as_str) != Some("cl13nt-s3cret") {
            // A careless server that echoes what it got: the connector must not pass it on.
            return (
                StatusCode::UNAUTHORIZED,
                format!("invalid_client: {form:?}"),
            )
                .into_response();
        }
        let mut requests = s.token_requests.lock().unwrap_or_else(|p| p.into_inner());
        requests.push(form);
        let n = requests.len();
        let lifetime = {
            let mut l = s.lifetimes.lock().unwrap_or_else(|p| p.into_inner());
            if l.is_empty() { 3600 } else { l.remove(0) }
        };
        let token = format!("tok-{n}");
        s.valid
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(token.clone());
        Json(json!({ "access_token": token, "token_type": "Bearer", "expires_in": lifetime }))
            .into_response()
    }
    async fn employees(State(s): State<OAuth>, headers: HeaderMap) -> Response {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        let refuse = s.refuse_all.load(std::sync::atomic::Ordering::SeqCst);
        if !refuse
            && s.valid
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&token)
        {
            Json(json!([{ "id": "1" }])).into_response()
        } else {
            (StatusCode::UNAUTHORIZED, "token expired").into_response()
        }
    }
    let state = OAuth::default();
    let log = RequestLog::default();
    let router = Router::new()
        .route("/oauth/token", post(token))
        .route("/employees", get(employees))
        .with_state(state.clone());
    (serve(router, &log).await, log, state)
}

fn oauth_config(url: &str) -> Value {
    json!({
        "base_url": url,
        "auth": { "type": "oauth2_client_credentials", "token_url": "/oauth/token",
                  "client_id": "concord", "secret": "vendor-client-secret", "scope": "employees:rw" },
        "objects": { "employee": { "path": "/employees" } }
    })
}

fn bearer_of(seen: &Seen) -> String {
    seen.header("authorization")
        .unwrap_or_default()
        .trim_start_matches("Bearer ")
        .to_owned()
}

#[tokio::test]
async fn oauth2_tokens_are_fetched_once_reused_and_refreshed_on_401_and_before_expiry() {
    let (url, log, oauth) = oauth_server().await;
    let keychain = TestKeychain::new("oauth2", &[("vendor-client-secret", "cl13nt-s3cret")]);
    let c = connector(oauth_config(&url), keychain.shared());
    let api = |log: &RequestLog| -> Vec<(String, u16)> {
        log.all()
            .iter()
            .filter(|s| s.uri.starts_with("/employees"))
            .map(|s| (bearer_of(s), s.status))
            .collect()
    };

    // A long-lived token is fetched once and reused.
    oauth.lifetimes.lock().expect("lock").push(3600);
    for _ in 0..3 {
        c.list_page("employee", None).await.expect("listing works");
    }
    assert_eq!(
        oauth.tokens_issued(),
        1,
        "one token serves several requests"
    );
    assert_eq!(
        api(&log),
        vec![
            ("tok-1".to_owned(), 200),
            ("tok-1".to_owned(), 200),
            ("tok-1".to_owned(), 200)
        ],
        "every request carries the cached token"
    );
    let form = oauth.token_requests.lock().expect("lock")[0].clone();
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials"),
        "the client credentials grant is used"
    );
    assert_eq!(form.get("client_id").map(String::as_str), Some("concord"));
    assert_eq!(
        form.get("scope").map(String::as_str),
        Some("employees:rw"),
        "the configured scope is asked for"
    );

    // The system revokes it: the 401 makes the connector fetch a new token and try once more.
    // The next token lives 33 s, 3 s past the connector's 30 s safety margin.
    oauth.revoke_all();
    oauth.lifetimes.lock().expect("lock").push(33);
    c.list_page("employee", None)
        .await
        .expect("a 401 is answered by refreshing the token");
    assert_eq!(oauth.tokens_issued(), 2, "a 401 fetches a fresh token");
    assert_eq!(
        api(&log)[3..],
        [("tok-1".to_owned(), 401), ("tok-2".to_owned(), 200)],
        "the request is repeated once with the fresh token"
    );
    c.list_page("employee", None).await.expect("listing works");
    assert_eq!(
        oauth.tokens_issued(),
        2,
        "the fresh token is reused while valid"
    );

    // Once the token is within the safety margin of its expiry, a new one is fetched before
    // the request: the system never sees the old token again.
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    c.list_page("employee", None).await.expect("listing works");
    assert_eq!(
        oauth.tokens_issued(),
        3,
        "a token about to expire is refreshed"
    );
    assert_eq!(
        api(&log)[6..],
        [("tok-3".to_owned(), 200)],
        "the refreshed token is used at once, without a 401 first"
    );

    // A system that refuses every token: one refresh, then a clear rejection (no loop).
    oauth
        .refuse_all
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let before = api(&log).len();
    let err = c
        .list_page("employee", None)
        .await
        .expect_err("every token is refused");
    assert!(
        matches!(err, ConnectorError::Rejected { status: 401, .. }),
        "credentials refused twice are a 401 rejection, not a retryable failure: {err:?}"
    );
    assert_eq!(
        api(&log).len() - before,
        2,
        "a 401 is retried once with a fresh token, not in a loop"
    );
    assert_eq!(oauth.tokens_issued(), 4, "one refresh per refused request");
}

#[tokio::test]
async fn a_token_endpoint_refusal_is_a_rejection_that_never_shows_the_client_secret() {
    let (url, _log, _oauth) = oauth_server().await;
    let keychain = TestKeychain::new(
        "oauth2-refused",
        &[("vendor-client-secret", "wr0ng-cl13nt-s3cret")],
    );
    let err = connector(oauth_config(&url), keychain.shared())
        .list_page("employee", None)
        .await
        .expect_err("the token endpoint refuses a wrong client secret");
    assert!(
        matches!(err, ConnectorError::Rejected { status: 401, .. }),
        "a refused client credential is a rejection: {err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("wr0ng-cl13nt-s3cret"),
        "the client secret never appears in an error, even when the token endpoint echoes it: {shown}"
    );
    assert!(
        shown.contains("token endpoint"),
        "the error says the token endpoint refused: {shown}"
    );
}

#[tokio::test]
async fn a_missing_secret_is_a_config_error_naming_the_secret_and_nothing_is_sent() {
    let (url, log) = guarded_server("authorization", "Bearer x".into()).await;
    let keychain = TestKeychain::new("missing-secret", &[]);
    let c = connector(
        json!({ "base_url": url, "auth": { "type": "bearer", "secret": "vendor-absent-token" },
                "objects": { "employee": { "path": "/employees" } } }),
        keychain.shared(),
    );
    let err = c
        .list_page("employee", None)
        .await
        .expect_err("no secret, no request");
    let message = err.to_string();
    assert!(
        matches!(err, ConnectorError::Config(_)),
        "a missing secret is a config error, not a retryable failure: {err:?}"
    );
    assert!(
        message.contains("'vendor-absent-token'") && message.contains("keychain"),
        "the message names the missing secret and where it is looked up: {message}"
    );
    assert!(
        message.contains("vendor"),
        "the message names the system: {message}"
    );
    assert!(log.all().is_empty(), "nothing is sent without the secret");
}

#[tokio::test]
async fn secret_values_stay_out_of_errors_debug_output_and_the_state_database() {
    const VALUE: &str = "sup3r-s3cret-b34rer-value";
    let keychain = TestKeychain::new("never-shown", &[("vendor-bearer", VALUE)]);

    // A system that refuses the token: the error describes the refusal, not the credential.
    let (url, _log) = guarded_server("authorization", "Bearer something-else".into()).await;
    let config = json!({ "base_url": url, "auth": { "type": "bearer", "secret": "vendor-bearer" },
                         "objects": { "employee": { "path": "/employees" } } });
    let err = connector(config.clone(), keychain.shared())
        .list_page("employee", None)
        .await
        .expect_err("refused");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(VALUE),
        "an error never shows the secret: {shown}"
    );

    // An unreachable system: the transport error does not show it either.
    let dead = json!({ "base_url": "http://127.0.0.1:9", "timeout_ms": 2000,
                       "auth": { "type": "bearer", "secret": "vendor-bearer" },
                       "objects": { "employee": { "path": "/employees" } } });
    let err = connector(dead, keychain.shared())
        .list_page("employee", None)
        .await
        .expect_err("nothing listens on port 9");
    assert!(
        err.is_retryable(),
        "a connection failure is retryable: {err:?}"
    );
    assert!(
        !format!("{err} {err:?}").contains(VALUE),
        "a transport error never shows the secret"
    );

    // Debug output of what holds it.
    let secret = keychain.store.get("vendor-bearer").expect("stored");
    assert_eq!(
        format!("{secret:?}"),
        "<redacted>",
        "a secret's Debug is redacted"
    );
    let parsed = RestConfig::parse("vendor", &config).expect("valid");
    assert!(
        !format!("{parsed:?} {:?}", keychain.store).contains(VALUE),
        "configs and the keychain handle name secrets, never hold their values"
    );

    // A real sync through the engine: the secret reaches the system but never SQLite.
    let (url, log) = guarded_server("authorization", format!("Bearer {VALUE}")).await;
    let t = TestEngine::open(keychain.shared()).await;
    let vendor = json!({ "base_url": url, "auth": { "type": "bearer", "secret": "vendor-bearer" },
                         "objects": { "employee": { "path": "/employees" } } });
    t.engine
        .apply_workspace(&workspace(vendor, None, None))
        .await
        .expect("workspace applies");
    let report = t.engine.poll("vendor", |_| {}).await.expect("poll works");
    assert_eq!(report.fetched, 1, "the authenticated listing is read");
    assert_eq!(log.all()[0].status, 200, "the system accepted the secret");
    t.engine
        .run_until_idle(Duration::from_secs(10))
        .await
        .expect("idle");
    t.engine.pool().close().await;
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        let path = t.dir.path().join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains(VALUE),
                "the secret value is never written to SQLite ({file})"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pagination: every style lists 7 records, served as 3 pages, exactly once.

const ITEMS: u32 = 7;

fn items(range: std::ops::Range<u32>) -> Vec<Value> {
    range
        .filter(|i| *i < ITEMS)
        .map(|i| json!({ "id": i + 1, "name": format!("item {}", i + 1) }))
        .collect()
}

fn param(q: &HashMap<String, String>, k: &str) -> u32 {
    q.get(k).and_then(|v| v.parse().ok()).unwrap_or(0)
}

async fn paging_server() -> (String, RequestLog) {
    async fn paged(Query(q): Query<HashMap<String, String>>) -> Response {
        let (page, size) = (param(&q, "page"), param(&q, "size"));
        let start = page.saturating_sub(1) * size;
        (
            [("X-Total-Count", ITEMS.to_string())],
            Json(items(start..start + size)),
        )
            .into_response()
    }
    async fn offset(Query(q): Query<HashMap<String, String>>) -> Json<Value> {
        let (offset, limit) = (param(&q, "offset"), param(&q, "limit"));
        Json(json!({ "results": items(offset..offset + limit) }))
    }
    async fn cursor(Query(q): Query<HashMap<String, String>>) -> Json<Value> {
        let start = q
            .get("after")
            .map_or(0, |c| c.trim_start_matches("c-").parse().unwrap_or(0));
        let limit = param(&q, "max");
        let end = start + limit;
        Json(json!({
            "data": items(start..end),
            "meta": { "next": if end < ITEMS { json!(format!("c-{end}")) } else { Value::Null },
                      "total": ITEMS }
        }))
    }
    async fn linked(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
        let host = headers
            .get("host")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let page = param(&q, "page").max(1);
        let size = param(&q, "per_page");
        let start = (page - 1) * size;
        let mut links = vec![format!(
            "<http://{host}/linked?page=1&per_page={size}>; rel=\"first\""
        )];
        if start + size < ITEMS {
            // An absolute next link from the first page, a relative one after that.
            let next = if page == 1 {
                format!("http://{host}/linked?page=2&per_page={size}")
            } else {
                format!("/linked?page={}&per_page={size}", page + 1)
            };
            links.push(format!("<{next}>; rel=\"next\""));
        }
        links.push(format!(
            "<http://{host}/linked?page=3&per_page={size}>; rel=\"last\""
        ));
        (
            [("Link", links.join(", "))],
            Json(items(start..start + size)),
        )
            .into_response()
    }
    async fn all() -> Json<Value> {
        Json(json!({ "items": items(0..ITEMS) }))
    }
    let log = RequestLog::default();
    let router = Router::new()
        .route("/paged", get(paged))
        .route("/offset", get(offset))
        .route("/cursor", get(cursor))
        .route("/linked", get(linked))
        .route("/all", get(all));
    (serve(router, &log).await, log)
}

async fn check_pagination(object: Value, expected_uris: &[&str]) -> Vec<Option<u64>> {
    let (url, log) = paging_server().await;
    let style = object["pagination"]["style"]
        .as_str()
        .unwrap_or("none")
        .to_owned();
    let c = connector(
        json!({ "base_url": url, "objects": { "item": object } }),
        Arc::new(Keychain::new("concord-test-unused")),
    );
    let (ids, totals) = list_all(&c, "item").await;
    let expected: Vec<String> = (1..=ITEMS).map(|i| i.to_string()).collect();
    assert_eq!(
        ids, expected,
        "{style}: every record is listed exactly once, in order"
    );
    assert_eq!(
        log.uris(),
        expected_uris
            .iter()
            .map(|u| (*u).to_owned())
            .collect::<Vec<_>>(),
        "{style}: the connector asks for each page once, in order, and stops after the last"
    );
    totals
}

#[tokio::test]
async fn page_pagination_asks_page_by_page_until_a_short_page() {
    let totals = check_pagination(
        json!({ "path": "/paged", "total_header": "X-Total-Count",
                "pagination": { "style": "page", "page_param": "page", "size_param": "size", "size": 3 } }),
        &["/paged?page=1&size=3", "/paged?page=2&size=3", "/paged?page=3&size=3"],
    )
    .await;
    assert_eq!(
        totals,
        vec![Some(7); 3],
        "the total comes from the configured header"
    );
}

#[tokio::test]
async fn offset_pagination_moves_the_offset_by_the_records_received() {
    check_pagination(
        json!({ "path": "/offset", "records_pointer": "/results",
                "pagination": { "style": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 3 } }),
        &["/offset?offset=0&limit=3", "/offset?offset=3&limit=3", "/offset?offset=6&limit=3"],
    )
    .await;
}

#[tokio::test]
async fn cursor_pagination_follows_the_next_token_until_it_is_null() {
    let totals = check_pagination(
        json!({ "path": "/cursor", "records_pointer": "/data", "total_pointer": "/meta/total",
                "pagination": { "style": "cursor", "cursor_param": "after", "next_pointer": "/meta/next",
                                "size_param": "max", "size": 3 } }),
        &["/cursor?max=3", "/cursor?after=c-3&max=3", "/cursor?after=c-6&max=3"],
    )
    .await;
    assert_eq!(
        totals,
        vec![Some(7); 3],
        "the total comes from the configured pointer"
    );
}

#[tokio::test]
async fn link_header_pagination_follows_absolute_and_relative_next_links() {
    check_pagination(
        json!({ "path": "/linked",
                "pagination": { "style": "link_header", "size_param": "per_page", "size": 3 } }),
        &[
            "/linked?per_page=3",
            "/linked?page=2&per_page=3",
            "/linked?page=3&per_page=3",
        ],
    )
    .await;
}

#[tokio::test]
async fn no_pagination_reads_one_response() {
    check_pagination(
        json!({ "path": "/all", "records_pointer": "/items" }),
        &["/all"],
    )
    .await;
}

#[tokio::test]
async fn incremental_queries_send_the_cursor_in_the_configured_format() {
    let (url, log) = paging_server().await;
    let object = |incremental: Value| {
        json!({ "path": "/all", "records_pointer": "/items", "modified_field": "updated",
                "incremental": incremental })
    };
    let cases = [
        (
            json!({ "style": "param", "param": "since", "format": "rfc3339" }),
            "since=2024-05-01T10:00:00.000Z",
        ),
        (
            json!({ "style": "param", "param": "since", "format": "unix" }),
            "since=1714557600",
        ),
        (
            json!({ "style": "param", "param": "since", "format": "unix_ms" }),
            "since=1714557600000",
        ),
        (
            json!({ "style": "param", "param": "since" }),
            "since=2024-05-01T12:00:00+02:00",
        ),
        (
            json!({ "style": "filter", "param": "$filter", "template": "updated ge '{since}'", "format": "rfc3339" }),
            "$filter=updated ge '2024-05-01T10:00:00.000Z'",
        ),
    ];
    for (incremental, expected) in cases {
        let c = connector(
            json!({ "base_url": url, "objects": { "item": object(incremental.clone()) } }),
            Arc::new(Keychain::new("concord-test-unused")),
        );
        c.changes_page("item", "2024-05-01T12:00:00+02:00", None)
            .await
            .expect("changes are listed");
        let last = log.all().pop().expect("a request");
        assert_eq!(
            last.query(),
            expected,
            "{incremental}: the since value is sent as configured"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Webhooks through the engine's /hooks/{system}.

const HOOK_KEY: &str = "wh-s1gning-key";

fn hook_vendor() -> Value {
    json!({
        "base_url": "http://127.0.0.1:9",
        "objects": { "employee": { "path": "/employees", "modified_field": "updated_at" } },
        "webhooks": {
            "secret": "vendor-webhook-key",
            "signature_header": "X-Signature",
            "signature_prefix": "sha256=",
            "timestamp_header": "X-Timestamp",
            "tolerance_secs": 300,
            "object": "employee",
            "events_pointer": "/events",
            "record_pointer": "/data",
            "event_key_pointer": "/id",
            "op_pointer": "/type",
            "delete_values": ["employee.deleted"]
        }
    })
}

struct HookTest {
    t: TestEngine,
    _keychain: TestKeychain,
    client: reqwest::Client,
}

impl HookTest {
    async fn start(test: &str) -> Self {
        let keychain = TestKeychain::new(test, &[("vendor-webhook-key", HOOK_KEY)]);
        let t = TestEngine::open(keychain.shared()).await;
        t.engine
            .apply_workspace(&workspace(hook_vendor(), None, None))
            .await
            .expect("workspace applies");
        Self {
            t,
            _keychain: keychain,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        }
    }

    /// Posts a delivery with these headers; returns the status and the `code` of the answer.
    async fn post(&self, body: &str, headers: &[(&str, String)]) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("{}/vendor", self.t.hooks))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            request = request.header(*k, v);
        }
        let response = request.send().await.expect("the engine answers");
        let status = response.status().as_u16();
        let json: Value = response.json().await.unwrap_or(Value::Null);
        (status, json["code"].as_str().unwrap_or_default().to_owned())
    }

    async fn inbox(&self) -> i64 {
        self.t
            .scalar("SELECT COUNT(*) FROM inbox WHERE system_id = 'vendor'")
            .await
    }
}

fn delivery() -> String {
    json!({ "events": [
        { "id": "evt-1", "type": "employee.updated",
          "data": { "id": "V1", "emp_no": "E1", "first": "Ada", "last": "Lovelace",
                    "updated_at": "2024-05-01T10:00:00Z" } },
        { "id": "evt-2", "type": "employee.deleted", "data": { "id": "V2" } }
    ]})
    .to_string()
}

fn signed(key: &str, ts: i64, body: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "X-Signature",
            format!("sha256={}", sign_webhook(key, ts, body.as_bytes())),
        ),
        ("X-Timestamp", ts.to_string()),
    ]
}

#[tokio::test]
async fn a_correctly_signed_webhook_is_accepted_and_stored_in_the_inbox() {
    let h = HookTest::start("hook-ok").await;
    let body = delivery();
    let now = chrono::Utc::now().timestamp();
    let (status, _) = h.post(&body, &signed(HOOK_KEY, now, &body)).await;
    assert_eq!(status, 202, "a correctly signed delivery is accepted");
    assert_eq!(h.inbox().await, 2, "both events are stored before the 202");

    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT event_key, external_id, op FROM inbox WHERE system_id = 'vendor' ORDER BY id",
    )
    .fetch_all(h.t.engine.pool())
    .await
    .expect("inbox rows");
    assert_eq!(
        rows,
        vec![
            ("evt-1".to_owned(), "V1".to_owned(), "upsert".to_owned()),
            ("evt-2".to_owned(), "V2".to_owned(), "delete".to_owned())
        ],
        "events are read as the webhook config describes: keys, ids, and delete markers"
    );

    // Signed a minute ago: inside the 300 s tolerance. The same events again are duplicates.
    let (status, _) = h.post(&body, &signed(HOOK_KEY, now - 60, &body)).await;
    assert_eq!(status, 202, "a delivery inside the tolerance is accepted");
    assert_eq!(h.inbox().await, 2, "a repeated delivery stores nothing new");
}

#[tokio::test]
async fn a_webhook_with_a_wrong_signature_is_refused_and_nothing_is_stored() {
    let h = HookTest::start("hook-wrong").await;
    let body = delivery();
    let now = chrono::Utc::now().timestamp();

    let (status, code) = h.post(&body, &signed("another-key", now, &body)).await;
    assert_eq!(status, 401, "a signature made with another key is refused");
    assert_eq!(code, "bad_signature", "the refusal says why");

    let tampered = body.replace("Lovelace", "Byron");
    let (status, _) = h.post(&tampered, &signed(HOOK_KEY, now, &body)).await;
    assert_eq!(status, 401, "a body changed after signing is refused");

    let mut moved = signed(HOOK_KEY, now, &body);
    moved[1].1 = (now - 1).to_string();
    let (status, _) = h.post(&body, &moved).await;
    assert_eq!(status, 401, "the timestamp is part of what is signed");

    let (status, _) = h
        .post(
            &body,
            &[
                ("X-Signature", "sha256=not-hex".into()),
                ("X-Timestamp", now.to_string()),
            ],
        )
        .await;
    assert_eq!(status, 401, "a signature that is not hex is refused");

    assert_eq!(h.inbox().await, 0, "a refused webhook stores nothing");
}

#[tokio::test]
async fn a_webhook_signed_outside_the_tolerance_is_refused_and_nothing_is_stored() {
    let h = HookTest::start("hook-expired").await;
    let body = delivery();
    let now = chrono::Utc::now().timestamp();

    let (status, code) = h.post(&body, &signed(HOOK_KEY, now - 600, &body)).await;
    assert_eq!(
        status, 401,
        "a correct signature from 10 minutes ago (tolerance 5) is refused as a replay"
    );
    assert_eq!(code, "bad_signature");
    let (status, _) = h.post(&body, &signed(HOOK_KEY, now + 600, &body)).await;
    assert_eq!(
        status, 401,
        "a timestamp 10 minutes in the future is refused too"
    );
    assert_eq!(h.inbox().await, 0, "an expired webhook stores nothing");
}

#[tokio::test]
async fn a_webhook_without_a_signature_or_timestamp_is_refused_and_nothing_is_stored() {
    let h = HookTest::start("hook-missing").await;
    let body = delivery();
    let now = chrono::Utc::now().timestamp();

    let (status, code) = h.post(&body, &[("X-Timestamp", now.to_string())]).await;
    assert_eq!(status, 401, "an unsigned delivery is refused");
    assert_eq!(code, "bad_signature");
    let mut no_ts = signed(HOOK_KEY, now, &body);
    no_ts.truncate(1);
    let (status, _) = h.post(&body, &no_ts).await;
    assert_eq!(status, 401, "a delivery without its timestamp is refused");
    // Concord's own event format is no way around the signature either.
    let concord_event = json!({ "object": "employee", "external_id": "V9", "op": "upsert",
                                "record": { "id": "V9" }, "event_key": "k9" })
    .to_string();
    let (status, _) = h.post(&concord_event, &[]).await;
    assert_eq!(
        status, 401,
        "a system with a webhook config takes only signed deliveries"
    );
    assert_eq!(h.inbox().await, 0, "an unsigned webhook stores nothing");
}

// ---------------------------------------------------------------------------------------------
// 412: optimistic concurrency against a system that refuses stale writes.

#[derive(Clone, Copy, PartialEq, Debug)]
enum Versioning {
    /// `If-Match: "<version>"`, the version also in the ETag header.
    Etag,
    /// The version in the body's `version` field.
    Body,
}

/// Records by id, with their versions.
type Records = BTreeMap<String, (Map<String, Value>, i64)>;

/// (version a write was made against, status answered).
type Attempt = (Option<i64>, u16);

/// A system with integer record versions that answers 412 to a write against a stale one.
#[derive(Clone)]
struct Versioned {
    mode: Versioning,
    records: Arc<Mutex<Records>>,
    /// (version the write was made against, status answered) of every PATCH.
    patches: Arc<Mutex<Vec<Attempt>>>,
    next_id: Arc<Mutex<u32>>,
}

impl Versioned {
    fn new(mode: Versioning) -> Self {
        Self {
            mode,
            records: Arc::default(),
            patches: Arc::default(),
            next_id: Arc::default(),
        }
    }

    fn with_version(record: &Map<String, Value>, version: i64) -> Value {
        let mut r = record.clone();
        r.insert("version".into(), json!(version));
        Value::Object(r)
    }

    /// Someone changes a record directly in the system.
    fn edit(&self, id: &str, fields: Value) {
        let mut records = self.records.lock().expect("lock");
        let (record, version) = records.entry(id.to_owned()).or_default();
        for (k, v) in fields.as_object().cloned().unwrap_or_default() {
            record.insert(k, v);
        }
        record.insert("id".into(), json!(id));
        *version += 1;
    }

    fn record(&self, id: &str) -> Value {
        let records = self.records.lock().expect("lock");
        records
            .get(id)
            .map_or(Value::Null, |(r, v)| Self::with_version(r, *v))
    }
}

async fn versioned_server(mode: Versioning) -> (String, RequestLog, Versioned) {
    async fn list(State(s): State<Versioned>) -> Json<Value> {
        let records = s.records.lock().expect("lock");
        Json(Value::Array(
            records
                .values()
                .map(|(r, v)| Versioned::with_version(r, *v))
                .collect(),
        ))
    }
    async fn get_one(State(s): State<Versioned>, Path(id): Path<String>) -> Response {
        let records = s.records.lock().expect("lock");
        match records.get(&id) {
            Some((r, v)) => (
                [("ETag", format!("\"{v}\""))],
                Json(Versioned::with_version(r, *v)),
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    async fn create(State(s): State<Versioned>, Json(body): Json<Map<String, Value>>) -> Response {
        let id = {
            let mut n = s.next_id.lock().expect("lock");
            *n += 1;
            format!("N{n}")
        };
        s.edit(&id, Value::Object(body));
        (StatusCode::CREATED, Json(s.record(&id))).into_response()
    }
    async fn patch(
        State(s): State<Versioned>,
        Path(id): Path<String>,
        headers: HeaderMap,
        Json(mut body): Json<Map<String, Value>>,
    ) -> Response {
        let against = match s.mode {
            Versioning::Etag => headers
                .get("if-match")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim_matches('"').parse().ok()),
            Versioning::Body => body.remove("version").and_then(|v| v.as_i64()),
        };
        let current = s.records.lock().expect("lock").get(&id).map(|(_, v)| *v);
        let status = match (current, against) {
            (None, _) => StatusCode::NOT_FOUND,
            (Some(c), Some(a)) if a != c => StatusCode::PRECONDITION_FAILED,
            _ => StatusCode::OK,
        };
        s.patches
            .lock()
            .expect("lock")
            .push((against, status.as_u16()));
        if status != StatusCode::OK {
            return (
                status,
                Json(json!({ "error": "stale version", "current": current })),
            )
                .into_response();
        }
        s.edit(&id, Value::Object(body));
        let record = s.record(&id);
        let version = record["version"].as_i64().unwrap_or_default();
        ([("ETag", format!("\"{version}\""))], Json(record)).into_response()
    }
    let state = Versioned::new(mode);
    let log = RequestLog::default();
    let router = Router::new()
        .route("/employees", get(list).post(create))
        .route("/employees/{id}", get(get_one).patch(patch))
        .with_state(state.clone());
    (serve(router, &log).await, log, state)
}

async fn check_412(mode: Versioning, concurrency: Value) {
    let (url, log, vendor) = versioned_server(mode).await;
    vendor.edit(
        "V1",
        json!({ "emp_no": "E1", "first": "Ada", "last": "Lovelace",
                "email": "ada@vendor.example", "title": "Engineer" }),
    );
    let mut keychain = TestKeychain::new(&format!("412-{mode:?}"), &[]);
    let t = TestEngine::open(keychain.shared()).await;
    let source = LoopbackSystem::start(
        "source",
        "employee",
        "/employees",
        Some(format!("{}/source", t.hooks)),
    )
    .await
    .expect("source starts");
    keychain.trust_hooks(&source);
    let config = json!({ "base_url": url, "objects": { "employee": {
        "path": "/employees", "version_field": "version", "concurrency": concurrency } } });
    t.engine
        .apply_workspace(&workspace(config, None, Some(&source.base_url())))
        .await
        .expect("workspace applies");

    // The engine learns V1 at version 1 and creates it in the source system.
    t.engine.poll("vendor", |_| {}).await.expect("poll");
    t.settle(&[&source]).await;
    let (source_id, _) = source
        .records()
        .into_iter()
        .next()
        .expect("created in source");

    // Someone changes V1 in the vendor system (version 2); the engine has not seen it yet
    // when the source system changes the email.
    vendor.edit("V1", json!({ "title": "CTO" }));
    source.edit(&source_id, json!({ "email": "ada@new.example" }));
    t.settle(&[&source]).await;

    assert_eq!(
        *vendor.patches.lock().expect("lock"),
        vec![(Some(1), 412), (Some(2), 200)],
        "{mode:?}: the write against version 1 is refused, the repeat goes against version 2"
    );
    let methods: Vec<String> = log
        .all()
        .iter()
        .filter(|s| s.uri.starts_with("/employees/V1"))
        .map(|s| format!("{} {}", s.method, s.status))
        .collect();
    assert_eq!(
        methods,
        vec!["PATCH 412", "GET 200", "PATCH 200"],
        "{mode:?}: after a 412 the engine re-reads the record before writing again"
    );
    let v1 = vendor.record("V1");
    assert_eq!(
        v1["email"],
        json!("ada@new.example"),
        "{mode:?}: the change reaches the system"
    );
    assert_eq!(
        v1["title"],
        json!("CTO"),
        "{mode:?}: the concurrent change in the system is not overwritten"
    );
    assert_eq!(
        v1["version"],
        json!(3),
        "{mode:?}: exactly one write applied"
    );
    assert_eq!(
        source.record(&source_id).expect("source record")["title"],
        json!("CTO"),
        "{mode:?}: the re-read change is merged and reaches the other system"
    );
    assert_eq!(
        t.scalar("SELECT COUNT(*) FROM dead_letters").await,
        0,
        "{mode:?}: a 412 is a conflict signal, not a dead letter"
    );
    assert_eq!(
        t.scalar(
            "SELECT COUNT(*) FROM outbox WHERE system_id = 'vendor' AND status = 'superseded'"
        )
        .await,
        1,
        "{mode:?}: the refused write is superseded by the re-merged one"
    );
}

#[tokio::test]
async fn a_412_on_a_stale_if_match_is_re_read_merged_and_written_again() {
    check_412(Versioning::Etag, json!({ "style": "etag" })).await;
}

#[tokio::test]
async fn a_412_on_a_stale_version_field_is_re_read_merged_and_written_again() {
    check_412(
        Versioning::Body,
        json!({ "style": "version_field", "field": "version" }),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Rate limiting.

#[tokio::test]
async fn writes_to_a_system_never_exceed_its_rate_limit() {
    const WRITES: usize = 25;
    const RATE: usize = 10;
    let (url, log, _vendor) = versioned_server(Versioning::Etag).await;
    let mut keychain = TestKeychain::new("rate-limit", &[]);
    let t = TestEngine::open(keychain.shared()).await;
    let source = LoopbackSystem::start(
        "source",
        "employee",
        "/employees",
        Some(format!("{}/source", t.hooks)),
    )
    .await
    .expect("source starts");
    keychain.trust_hooks(&source);
    let config = json!({ "base_url": url, "objects": { "employee": { "path": "/employees" } } });
    t.engine
        .apply_workspace(&workspace(
            config,
            Some(RATE as f64),
            Some(&source.base_url()),
        ))
        .await
        .expect("workspace applies");

    for i in 0..WRITES {
        source.edit(
            &format!("S{i}"),
            json!({ "employee_id": format!("E{i}"), "full_name": format!("Given{i} Family{i}"),
                    "email": format!("p{i}@acme.example"), "title": "Analyst" }),
        );
    }
    t.settle(&[&source]).await;

    let times: Vec<Instant> = log
        .all()
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| s.at)
        .collect();
    assert_eq!(times.len(), WRITES, "every queued write is sent");
    let busiest = times
        .iter()
        .map(|start| {
            times
                .iter()
                .filter(|t| **t >= *start && t.duration_since(*start) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        busiest <= RATE + 1,
        "no 1-second window holds more than {RATE} requests (+1 burst); the busiest held {busiest}"
    );
    let span = times[WRITES - 1].duration_since(times[0]);
    assert!(
        span >= Duration::from_millis(2_000),
        "{WRITES} writes at {RATE}/s take over 2 s, not {span:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Config validation: errors name the bad key.

fn valid_config() -> Value {
    json!({
        "base_url": "https://vendor.example/api",
        "auth": { "type": "bearer", "secret": "vendor-token" },
        "objects": { "employee": {
            "path": "/employees",
            "pagination": { "style": "page", "page_param": "page", "size_param": "size", "size": 50 },
            "modified_field": "updated_at",
            "version_field": "version",
            "incremental": { "style": "param", "param": "since", "format": "rfc3339" },
            "concurrency": { "style": "etag" }
        } },
        "webhooks": { "secret": "vendor-hook", "signature_header": "X-Sig", "timestamp_header": "X-Ts",
                      "object": "employee", "record_pointer": "/data" },
        "poll": { "interval_secs": 30 }
    })
}

/// Sets (or with `None`, removes) the value at a `/`-separated path.
fn edit(mut config: Value, path: &str, value: Option<Value>) -> Value {
    let (parent, key) = path.rsplit_once('/').unwrap_or(("", path));
    let target = config
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {parent}"));
    match value {
        Some(v) => target.insert(key.to_owned(), v),
        None => target.remove(key),
    };
    config
}

/// (what is wrong, the config, words the message must contain)
fn bad_configs() -> Vec<(&'static str, Value, Vec<&'static str>)> {
    let base = valid_config;
    vec![
        (
            "page size 0",
            edit(base(), "/objects/employee/pagination/size", Some(json!(0))),
            vec!["objects.employee.pagination.size"],
        ),
        (
            "page size not a number",
            edit(
                base(),
                "/objects/employee/pagination/size",
                Some(json!("ten")),
            ),
            vec!["objects.employee.pagination"],
        ),
        (
            "offset limit 0",
            edit(
                base(),
                "/objects/employee/pagination",
                Some(
                    json!({ "style": "offset", "offset_param": "o", "limit_param": "l", "limit": 0 }),
                ),
            ),
            vec!["objects.employee.pagination.limit"],
        ),
        (
            "unknown top-level key",
            edit(base(), "/objcts", Some(json!({}))),
            vec!["objcts"],
        ),
        (
            "unknown object key",
            edit(base(), "/objects/employee/paginaton", Some(json!({}))),
            vec!["objects.employee", "paginaton"],
        ),
        (
            "unknown pagination style",
            edit(
                base(),
                "/objects/employee/pagination",
                Some(json!({ "style": "pages" })),
            ),
            vec!["objects.employee.pagination", "pages"],
        ),
        (
            "base_url not a URL",
            edit(base(), "/base_url", Some(json!("vendor.example/api"))),
            vec!["base_url", "vendor.example/api"],
        ),
        (
            "base_url not http",
            edit(base(), "/base_url", Some(json!("ftp://vendor.example"))),
            vec!["base_url"],
        ),
        (
            "base_url missing",
            edit(base(), "/base_url", None),
            vec!["base_url"],
        ),
        (
            "incremental without modified_field",
            edit(base(), "/objects/employee/modified_field", None),
            vec!["objects.employee.incremental", "modified_field"],
        ),
        (
            "a version sent in the body without version_field",
            edit(
                edit(base(), "/objects/employee/version_field", None),
                "/objects/employee/concurrency",
                Some(json!({ "style": "version_field", "field": "version" })),
            ),
            vec!["objects.employee.concurrency", "version_field"],
        ),
        (
            "path without a leading slash",
            edit(base(), "/objects/employee/path", Some(json!("employees"))),
            vec!["objects.employee.path"],
        ),
        (
            "records_pointer not a JSON pointer",
            edit(
                base(),
                "/objects/employee/records_pointer",
                Some(json!("data")),
            ),
            vec!["objects.employee.records_pointer"],
        ),
        (
            "update method not a method",
            edit(
                base(),
                "/objects/employee/update",
                Some(json!({ "method": "PATCH IT" })),
            ),
            vec!["objects.employee.update.method"],
        ),
        (
            "unknown auth type",
            edit(
                base(),
                "/auth",
                Some(json!({ "type": "digest", "secret": "s" })),
            ),
            vec!["auth", "digest"],
        ),
        (
            "auth without its secret",
            edit(base(), "/auth", Some(json!({ "type": "bearer" }))),
            vec!["auth", "secret"],
        ),
        (
            "no objects",
            edit(base(), "/objects", Some(json!({}))),
            vec!["objects"],
        ),
        (
            "timeout 0",
            edit(base(), "/timeout_ms", Some(json!(0))),
            vec!["timeout_ms"],
        ),
        (
            "webhook object not configured",
            edit(base(), "/webhooks/object", Some(json!("department"))),
            vec!["webhooks.object", "department"],
        ),
        (
            "webhook tolerance without a timestamp header",
            edit(base(), "/webhooks/timestamp_header", None),
            vec!["webhooks.timestamp_header"],
        ),
        (
            "poll interval 0",
            edit(base(), "/poll/interval_secs", Some(json!(0))),
            vec!["poll.interval_secs"],
        ),
    ]
}

#[test]
fn the_valid_config_parses() {
    RestConfig::parse("vendor", &valid_config()).expect("the baseline config is valid");
}

#[test]
fn rest_config_errors_name_the_bad_key() {
    for (what, config, words) in bad_configs() {
        let err = RestConfig::parse("vendor", &config)
            .expect_err(what)
            .to_string();
        for word in words {
            assert!(
                err.contains(word),
                "{what}: the message names '{word}': {err}"
            );
        }
        assert!(
            err.contains("system vendor"),
            "{what}: the message names the system: {err}"
        );
    }
}

#[tokio::test]
async fn apply_workspace_refuses_a_bad_rest_config_naming_the_key() {
    let keychain = TestKeychain::new("config", &[]);
    let t = TestEngine::open(keychain.shared()).await;
    t.engine
        .apply_workspace(&workspace(valid_config(), None, None))
        .await
        .expect("the baseline workspace applies");
    for (what, config, words) in bad_configs() {
        let err = t
            .engine
            .apply_workspace(&workspace(config, None, None))
            .await
            .expect_err(what)
            .to_string();
        for word in words {
            assert!(
                err.contains(word),
                "{what}: apply_workspace's message names '{word}': {err}"
            );
        }
    }
}
