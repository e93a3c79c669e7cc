//! Secrets stay with their system: a stored secret is sent only to the origin (scheme, host,
//! port) it was saved for. A connection test of a draft that points elsewhere, or a saved
//! system moved to another address, must have the secret entered again; the stored value never
//! leaves for the new address. Real console API, real engine on a SQLite file, and two
//! recording HTTP listeners on 127.0.0.1 (the system's own, and an attacker's).

mod common;

use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use concord::secrets::{MemorySecrets, Secret, SecretStore};
use concord::{Engine, EngineOptions};
use serde_json::{Value, json};

const STORED: &str = "s3cret-stored-key";

/// A listener that records the `X-API-Key` of every request and answers an empty listing.
struct Recorder {
    base: String,
    keys: Arc<Mutex<Vec<Option<String>>>>,
}

impl Recorder {
    async fn start() -> Self {
        let keys = Arc::new(Mutex::new(Vec::new()));
        let seen = keys.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                seen.lock().expect("lock").push(
                    headers
                        .get("x-api-key")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                );
                axum::Json(json!([{ "id": "1", "name": "Ada" }]))
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, keys }
    }

    fn keys(&self) -> Vec<Option<String>> {
        self.keys.lock().expect("lock").clone()
    }
}

fn vendor(id: &str, base_url: &str) -> Value {
    json!({ "id": id, "name": id, "connector": "rest",
            "config": { "base_url": base_url,
                        "auth": { "type": "api_key", "header": "X-API-Key", "secret": "vendor-key" },
                        "objects": { "employee": { "path": "/employees" } } } })
}

struct Setup {
    _dir: tempfile::TempDir,
    console: concord::server::LaunchedConsole,
    client: reqwest::Client,
    own: Recorder,
    attacker: Recorder,
}

impl Setup {
    async fn start() -> Self {
        let own = Recorder::start().await;
        let attacker = Recorder::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets = Arc::new(MemorySecrets::new());
        secrets
            .set("vendor-key", &Secret::new(STORED))
            .expect("memory store");
        let engine = Engine::open(
            &dir.path().join("state.db"),
            EngineOptions {
                settings: common::fast_settings(),
                secrets: secrets.clone(),
                ..EngineOptions::default()
            },
        )
        .await
        .expect("engine opens");
        let config = serde_json::from_value(json!({
            "systems": [vendor("vendor", &own.base)],
            "objects": [concord::schema::employee()],
            "mappings": [ { "system": "vendor", "object": "employee", "rules": [
                { "canonical": ["given_name"], "system": ["name"] } ] } ]
        }))
        .expect("a workspace");
        engine.apply_workspace(&config).await.expect("applies");
        let console = concord::server::serve_console(engine, 0, None, secrets)
            .await
            .expect("console");
        Self {
            _dir: dir,
            console,
            client: reqwest::Client::new(),
            own,
            attacker,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .client
            .request(method, format!("http://{}{path}", self.console.addr))
            .bearer_auth(&self.console.admin_token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("the console answers");
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    fn attacker_never_got_the_stored_key(&self) {
        assert!(
            !self.attacker.keys().contains(&Some(STORED.to_owned())),
            "the stored secret never reaches an address it was not saved for: {:?}",
            self.attacker.keys()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_pointing_elsewhere_is_tested_only_with_the_secret_entered_again() {
    let s = Setup::start().await;
    let post = reqwest::Method::POST;

    // The saved system, as saved: its own address gets its stored key.
    let r = s
        .call(
            post.clone(),
            "/api/systems/test",
            Some(json!({ "system": vendor("vendor", &s.own.base) })),
        )
        .await;
    assert_eq!(r["ok"], json!(true), "the saved address works: {r}");
    assert_eq!(
        s.own.keys(),
        vec![Some(STORED.to_owned())],
        "the system's own address receives its stored key"
    );

    // The same id moved to the attacker's listener, and a new id naming the same secret.
    for draft in [
        vendor("vendor", &s.attacker.base),
        vendor("newcomer", &s.attacker.base),
    ] {
        let r = s
            .call(
                post.clone(),
                "/api/systems/test",
                Some(json!({ "system": draft })),
            )
            .await;
        assert_eq!(r["ok"], json!(false), "a draft at a new address fails: {r}");
        assert!(
            r["message"]
                .as_str()
                .is_some_and(|m| m.contains("re-enter the secret 'vendor-key'")),
            "and says to enter the secret again: {r}"
        );
    }
    assert!(
        s.attacker.keys().is_empty(),
        "no request goes to the new address without the secret entered again"
    );

    // Entered again: the test goes there, with the value entered, never the stored one.
    let r = s
        .call(
            post.clone(),
            "/api/systems/test",
            Some(json!({ "system": vendor("vendor", &s.attacker.base),
                         "secrets": { "vendor-key": "typed-again" } })),
        )
        .await;
    assert_eq!(
        r["ok"],
        json!(true),
        "with the secret entered again the test runs: {r}"
    );
    assert_eq!(
        s.attacker.keys(),
        vec![Some("typed-again".to_owned())],
        "the new address receives the value entered with the test"
    );
    s.attacker_never_got_the_stored_key();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_system_moved_to_another_address_needs_its_secret_entered_again() {
    let s = Setup::start().await;
    s.call(
        reqwest::Method::PUT,
        "/api/systems/vendor",
        Some(vendor("vendor", &s.attacker.base)),
    )
    .await;
    let r = s
        .call(reqwest::Method::POST, "/api/systems/vendor/test", None)
        .await;
    assert_eq!(
        r["ok"],
        json!(false),
        "a moved system cannot use its stored secret: {r}"
    );
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("re-enter the secret 'vendor-key'")),
        "and says to enter the secret again: {r}"
    );
    s.attacker_never_got_the_stored_key();

    s.call(
        reqwest::Method::PUT,
        "/api/secrets/vendor-key",
        Some(json!({ "value": "entered-for-the-new-address" })),
    )
    .await;
    let r = s
        .call(reqwest::Method::POST, "/api/systems/vendor/test", None)
        .await;
    assert_eq!(
        r["ok"],
        json!(true),
        "entered again, the secret works there: {r}"
    );
    assert_eq!(
        s.attacker.keys(),
        vec![Some("entered-for-the-new-address".to_owned())],
        "the new address receives only the value entered for it"
    );
    s.attacker_never_got_the_stored_key();
}

#[tokio::test]
async fn a_connector_never_sends_a_secret_to_another_origin_than_its_config_names() {
    // A listing whose next link points at another host must not carry the key there.
    let attacker = Recorder::start().await;
    let next = format!("{}/steal", attacker.base);
    let app = axum::Router::new().fallback(move || {
        let next = next.clone();
        async move {
            (
                [("link", format!("<{next}>; rel=\"next\""))],
                axum::Json(json!([{ "id": "1" }])),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let own = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let secrets = Arc::new(MemorySecrets::new());
    secrets
        .set("vendor-key", &Secret::new(STORED))
        .expect("memory store");
    let mut config = vendor("vendor", &own)["config"].clone();
    config["objects"]["employee"]["pagination"] = json!({ "style": "link_header" });
    let system: concord::model::SystemConfig = serde_json::from_value(
        json!({ "id": "vendor", "name": "v", "connector": "rest", "config": config }),
    )
    .expect("system");
    let c =
        concord::connectors::rest::RestConnector::from_config(&system, secrets).expect("connector");
    use concord::connector::Connector;
    let first = c.list_page("employee", None).await.expect("the first page");
    let second = c.list_page("employee", first.next.as_deref()).await;
    assert!(
        second.is_err(),
        "a next page on another origin is not requested with the secret"
    );
    attacker_never(&attacker);
}

fn attacker_never(r: &Recorder) {
    assert!(
        !r.keys().contains(&Some(STORED.to_owned())),
        "the stored secret never reaches another origin"
    );
}
