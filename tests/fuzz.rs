//! A bounded fuzz run over what arrives from outside: webhook bodies (Concord's own event
//! format, and the rest connector's format with a valid signature over random bytes),
//! connector and workspace configs (arbitrary JSON values, arbitrary TOML and JSON bytes), and
//! every transform's read side (arbitrary JSON values). Each must answer with a typed error or
//! a value, never panic, and a refused input must change nothing.
//!
//! 256 cases each by default (a few seconds); set CONCORD_FUZZ_CASES for a longer run.

use std::sync::Arc;

use concord::connector::{Connector, WebhookError};
use concord::connectors::rest::{RestConfig, RestConnector, sign_webhook};
use concord::model::{SystemConfig, WorkspaceConfig};
use concord::secrets::{MemorySecrets, Secret, SecretStore};
use concord::transform::Transform;
use proptest::prelude::*;
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("CONCORD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Arbitrary JSON values, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("2024-05-01"),
            Just("05/01/2024"),
            Just("+14155550101"),
            Just("(415) 555-0101"),
            Just("12.50"),
            Just("Ada Lovelace"),
            Just("/employees"),
            Just("http://127.0.0.1:1"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("object".to_owned()),
            Just("external_id".to_owned()),
            Just("op".to_owned()),
            Just("record".to_owned()),
            Just("event_key".to_owned()),
            Just("events".to_owned()),
            Just("base_url".to_owned()),
            Just("objects".to_owned()),
            Just("path".to_owned()),
            Just("data".to_owned()),
            Just("id".to_owned()),
            "[a-z_]{1,8}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Random bytes, or the text of a random JSON value (so the parsers get past the first byte).
fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        any_json().prop_map(|v| v.to_string().into_bytes()),
        any_json().prop_map(|v| json!({ "events": [v] }).to_string().into_bytes()),
    ]
}

fn signed_connector() -> RestConnector {
    let secrets = Arc::new(MemorySecrets::new());
    secrets
        .set("hook-key", &Secret::new("fuzz-key"))
        .expect("memory store");
    let system: SystemConfig = serde_json::from_value(json!({
        "id": "vendor", "name": "Vendor", "connector": "rest",
        "config": { "base_url": "http://127.0.0.1:1",
            "objects": { "employee": { "path": "/employees", "version_field": "version",
                                       "modified_field": "updated_at" } },
            "webhooks": { "secret": "hook-key", "signature_header": "X-Signature",
                "signature_prefix": "sha256=", "timestamp_header": "X-Timestamp",
                "object": "employee", "events_pointer": "/events", "record_pointer": "/data",
                "event_key_pointer": "/id", "op_pointer": "/type",
                "delete_values": ["deleted"], "occurred_at_pointer": "/at" } }
    }))
    .expect("a system");
    RestConnector::from_config(&system, secrets).expect("a valid config")
}

/// Transforms as a workspace would configure them.
fn transforms() -> Vec<Transform> {
    [
        json!({ "kind": "copy" }),
        json!({ "kind": "full_name" }),
        json!({ "kind": "lowercase" }),
        json!({ "kind": "date", "format": "%m/%d/%Y" }),
        json!({ "kind": "timestamp", "tz": "America/New_York" }),
        json!({ "kind": "timestamp", "format": "%d.%m.%Y %H:%M:%S", "tz": "Europe/Berlin" }),
        json!({ "kind": "money_minor", "exponent": 2 }),
        json!({ "kind": "money_decimal", "scale": 2 }),
        json!({ "kind": "enum", "table": [ { "system": "A", "canonical": "active" },
                                           { "system": 0, "canonical": "terminated" },
                                           { "system": true, "canonical": "on_leave" } ] }),
        json!({ "kind": "phone", "region": "US", "system_format": "national" }),
        json!({ "kind": "phone", "region": "DE" }),
        json!({ "kind": "constant", "value": "x" }),
    ]
    .into_iter()
    .map(|t| serde_json::from_value(t).expect("a transform"))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn concord_event_bodies_parse_or_are_refused_with_a_400(body in any_body()) {
        match concord::server::parse_concord_events("hris", &body) {
            Ok(events) => {
                prop_assert!(events.iter().all(|e| e.system == "hris"),
                    "every event is the URL's system's, whatever the body says");
            }
            Err(e) => {
                prop_assert_eq!(e.0, axum::http::StatusCode::BAD_REQUEST,
                    "a body that is not an event is a typed 400");
                prop_assert_eq!(e.1, "malformed_payload");
            }
        }
    }

    #[test]
    fn signed_rest_webhooks_with_random_bodies_parse_or_are_malformed(body in any_body()) {
        let c = signed_connector();
        let now = chrono::Utc::now();
        let ts = now.timestamp();
        let mut headers = http::HeaderMap::new();
        headers.insert("X-Signature",
            format!("sha256={}", sign_webhook("fuzz-key", ts, &body)).parse().expect("header"));
        headers.insert("X-Timestamp", ts.to_string().parse().expect("header"));
        match c.parse_webhook(&headers, &body, now) {
            Ok(events) => prop_assert!(events.iter().all(|e| e.system == "vendor")),
            Err(WebhookError::Malformed(m)) => prop_assert!(!m.is_empty(), "the reason is given"),
            Err(other) => prop_assert!(false, "a validly signed body is never {other:?}"),
        }
        // The same body unsigned is refused before it is read.
        let unsigned = c.parse_webhook(&http::HeaderMap::new(), &body, now);
        prop_assert!(matches!(unsigned, Err(WebhookError::Unauthorized(_))),
            "an unsigned body is refused, whatever it holds");
    }

    #[test]
    fn rest_configs_parse_or_name_what_is_wrong(config in any_json()) {
        match RestConfig::parse("vendor", &config) {
            Ok(parsed) => {
                prop_assert!(parsed.base_url.starts_with("http"), "a parsed config has an http(s) URL");
                prop_assert!(!parsed.objects.is_empty());
            }
            Err(concord::connector::ConnectorError::Config(m)) => {
                prop_assert!(m.starts_with("system vendor:"), "the error names the system: {}", m);
            }
            Err(other) => prop_assert!(false, "a config error is typed Config, not {other:?}"),
        }
    }

    #[test]
    fn rest_configs_with_real_keys_parse_or_name_what_is_wrong(
        base in prop_oneof![Just(json!("http://127.0.0.1:1")), any_json()],
        objects in any_json(),
        auth in any_json(),
        webhooks in any_json(),
    ) {
        let config = json!({ "base_url": base, "objects": { "employee": objects },
                             "auth": auth, "webhooks": webhooks });
        let parsed = RestConfig::parse("vendor", &config);
        prop_assert!(matches!(parsed, Ok(_) | Err(concord::connector::ConnectorError::Config(_))));
    }

    #[test]
    fn workspace_configs_from_arbitrary_json_or_toml_bytes_are_typed_errors(
        bytes in any_body(),
        text in ".{0,200}",
    ) {
        let from_json: Result<WorkspaceConfig, _> = serde_json::from_slice(&bytes);
        if let Ok(ws) = from_json {
            // Whatever parses is validated again before use: that never panics either.
            let _ = concord::workspace::Workspace::new(ws);
        }
        let from_toml: Result<WorkspaceConfig, _> = toml::from_str(&text);
        if let Ok(ws) = from_toml {
            let _ = concord::workspace::Workspace::new(ws);
        }
        let as_toml = String::from_utf8_lossy(&bytes).into_owned();
        let _: Result<WorkspaceConfig, _> = toml::from_str(&as_toml);
    }

    #[test]
    fn every_transform_reads_any_value_into_a_value_or_a_typed_error(
        a in any_json(),
        b in any_json(),
        missing in any::<bool>(),
    ) {
        for t in transforms() {
            let (inputs, _) = t.arity();
            let values = [Some(&a), if missing { None } else { Some(&b) }];
            let given: Vec<Option<&Value>> = values.iter().cycle().take(inputs.max(1)).copied().collect();
            // A typed error (TransformError) or values; the read side never panics.
            let _ = t.to_canonical(&given);
            let _ = t.alternatives(&given);
        }
    }
}

/// A refused config leaves the engine as it was: nothing stored, nothing made current.
#[tokio::test]
async fn a_refused_random_workspace_changes_nothing() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = concord::Engine::open(
        &dir.path().join("state.db"),
        concord::EngineOptions {
            secrets: Arc::new(MemorySecrets::new()),
            ..concord::EngineOptions::default()
        },
    )
    .await
    .expect("engine opens");
    let good = concord::selfcheck::workspace("http://127.0.0.1:1", "http://127.0.0.1:2");
    engine
        .apply_workspace(&good)
        .await
        .expect("a valid workspace");
    let mut runner = TestRunner::deterministic();
    let strategy = any_json();
    for _ in 0..cases().min(256) {
        let mut ws = good.clone();
        let value = strategy.new_tree(&mut runner).expect("a value").current();
        ws.systems[0].config = value;
        if engine.apply_workspace(&ws).await.is_err() {
            assert_eq!(
                engine.workspace().config,
                good,
                "a refused workspace is not made current"
            );
            assert_eq!(
                concord::store::load_workspace(engine.pool())
                    .await
                    .expect("load"),
                good,
                "a refused workspace is not stored"
            );
        } else {
            engine
                .apply_workspace(&good)
                .await
                .expect("back to the good one");
        }
    }
}
