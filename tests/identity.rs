//! Who did what, over the console API on a real engine, SQLite file and HTTP systems: tokens
//! have stable ids and can be listed (never their secrets) and revoked; four-eyes approval
//! counts people, not token names; every configuration change is an audit entry with its
//! actor's id and the old and new config; changes that remove what others depend on need a
//! confirmation; and a required or sensitive field is never resolved to an empty value.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Harness, ada, hris_maps_salary};
use concord::api::auth::{Principal, Role, Tokens};
use concord::model::WorkspaceConfig;
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
        let (base, client) =
            common::serve_console(&h.engine, tokens, "concord-identity-test").await;
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
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, text) = self.call_text(method, path, token, body).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn call_text(
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

    /// Issues a token as the admin: the secret and the principal's id.
    async fn token(&self, name: &str, role: &str) -> (String, String) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/tokens",
                &self.admin,
                Some(json!({ "name": name, "role": role })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "an admin issues tokens: {body}");
        (
            body["token"].as_str().expect("token").to_owned(),
            body["principal"]["id"].as_str().expect("id").to_owned(),
        )
    }

    async fn me(&self, token: &str) -> Value {
        let (status, me) = self.call(Method::GET, "/api/me", token, None).await;
        assert_eq!(status, StatusCode::OK, "the token is accepted: {me}");
        me
    }

    /// Audit rows whose rule is `rule`, newest first.
    async fn audit(&self, query: &str, rule: &str) -> Vec<Value> {
        let (status, rows) = self
            .call(
                Method::GET,
                &format!("/api/audit?limit=1000&{query}"),
                &self.admin,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "the audit is searchable: {rows}");
        rows.as_array()
            .expect("rows")
            .iter()
            .filter(|r| r["rule"] == rule)
            .cloned()
            .collect()
    }
}

/// Ada synced without pay, then both systems change her pay at once: one open conflict on the
/// four-eyes field `pay_rate`, whose base (the last agreed value) is empty. Its id and the
/// payroll id.
async fn pay_conflict(h: &Harness) -> (i64, String) {
    h.hris.edit("H1", ada());
    h.settle().await;
    let (pid, _) = h.payroll_only();
    h.hris.edit("H1", json!({ "salary": "90000.00" }));
    tokio::time::sleep(Duration::from_millis(5)).await;
    h.payroll.edit(&pid, json!({ "salary_cents": 8_800_000 }));
    h.settle().await;
    let open = h
        .engine
        .list_exceptions(&concord::ops::ExceptionFilter {
            kind: Some("conflict".into()),
            status: Some("open".into()),
            ..Default::default()
        })
        .await
        .expect("exceptions");
    assert_eq!(open.len(), 1, "both sides changed pay: one conflict");
    assert_eq!(open[0].field.as_deref(), Some("pay_rate"));
    (open[0].id, pid)
}

fn writes(h: &Harness) -> u64 {
    h.hris.stats().write_requests + h.payroll.stats().write_requests
}

#[tokio::test]
async fn four_eyes_counts_people_not_token_names() {
    let h = Harness::start(hris_maps_salary).await;
    let api = Api::start(&h).await;
    let (exception, pid) = pay_conflict(&h).await;
    let (stella, stella_id) = api.token("Stella Steward", "steward").await;
    let (stella_again, stella_again_id) = api.token("Stella Steward ", "steward").await;
    let (shouting, _) = api.token("  STELLA   steward", "steward").await;
    let (kim, kim_id) = api.token("Kim Keeper", "steward").await;
    assert_ne!(
        stella_id, stella_again_id,
        "each token has its own principal id"
    );
    assert!(
        stella_id.starts_with("tok_") && stella_id.len() == 12,
        "a principal id is tok_ and 8 hex digits: {stella_id}"
    );
    assert_eq!(
        api.me(&stella_again).await["name"],
        json!("Stella Steward"),
        "names are stored trimmed"
    );

    let resolve = |token: String| {
        let api = &api;
        async move {
            api.call(
                Method::POST,
                &format!("/api/exceptions/{exception}/resolve"),
                &token,
                Some(
                    json!({ "choice": { "choose": "custom", "value": "89000" }, "note": "agreed" }),
                ),
            )
            .await
        }
    };
    let (status, body) = resolve(stella.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the first approval is taken: {body}"
    );
    assert_eq!(body["outcome"], json!("awaiting_second_approval"));
    let (_, seen) = api
        .call(
            Method::GET,
            &format!("/api/exceptions/{exception}"),
            &kim,
            None,
        )
        .await;
    assert_eq!(
        seen["detail"]["approval"]["by_id"],
        json!(stella_id),
        "the approval records the approver's principal id"
    );
    h.settle().await;
    let before = writes(&h);

    for (token, how) in [
        (
            &stella_again,
            "a second token whose name differs by a trailing space",
        ),
        (
            &shouting,
            "a second token whose name differs in case and spacing",
        ),
        (&stella, "the same token"),
    ] {
        let (status, body) = resolve(token.clone()).await;
        assert_eq!(
            status,
            StatusCode::CONFLICT,
            "four eyes: {how} is the same person, not a second approver: {body}"
        );
    }
    h.settle().await;
    assert_eq!(
        writes(&h),
        before,
        "a refused second approval writes nothing to any system"
    );
    assert_eq!(
        h.hris.record("H1").expect("H1")["salary"],
        json!("90000.00"),
        "the HRIS keeps its value until a second person approves"
    );

    let (status, body) = resolve(kim.clone()).await;
    assert_eq!(status, StatusCode::OK, "another person approves: {body}");
    assert_eq!(
        body["outcome"],
        json!("applied"),
        "a genuinely different person's approval applies the resolution"
    );
    h.settle().await;
    assert_eq!(
        h.payroll.record(&pid).expect("payroll")["salary_cents"],
        json!(8_900_000),
        "the approved value reaches payroll"
    );
    let resolved = api
        .audit(&format!("actor={kim_id}"), "resolution:conflict")
        .await;
    assert_eq!(
        resolved.len(),
        1,
        "the resolution is found by the approver's principal id"
    );
    assert_eq!(resolved[0]["actor_id"], json!(kim_id));
    let first = api
        .audit(&format!("actor={stella_id}"), "resolution:first_approval")
        .await;
    assert_eq!(
        first.len(),
        1,
        "the first approval is audited with its principal id"
    );
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_revoked_at_once() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let admin = api.me(&api.admin).await;
    let (sam, sam_id) = api.token("Sam Support", "support").await;
    let (vic, _) = api.token("Vic Viewer", "viewer").await;

    let (status, text) = api
        .call_text(Method::GET, "/api/tokens", &api.admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "admins list tokens: {text}");
    for secret in [&api.admin, &sam, &vic] {
        assert!(
            !text.contains(secret.as_str()),
            "a token list never shows a secret: {text}"
        );
    }
    let list: Vec<Value> = serde_json::from_str(&text).expect("json");
    let listed_sam = list
        .iter()
        .find(|t| t["id"] == json!(sam_id))
        .expect("the issued token is listed");
    assert_eq!(listed_sam["name"], json!("Sam Support"));
    assert_eq!(listed_sam["role"], json!("support"));
    assert_eq!(
        listed_sam["issued_by"], admin["id"],
        "a token names the token that issued it"
    );
    assert!(listed_sam["issued_at"].is_string());

    let (status, _) = api.call(Method::GET, "/api/tokens", &sam, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins list tokens");
    let (status, _) = api
        .call(Method::DELETE, &format!("/api/tokens/{sam_id}"), &vic, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only admins revoke tokens");

    for (name, why) in [
        ("   ", "a blank name"),
        ("Eve\u{7}", "a name with a control character"),
        ("Eve\nAdmin", "a name with a newline"),
    ] {
        let (status, body) = api
            .call(
                Method::POST,
                "/api/tokens",
                &api.admin,
                Some(json!({ "name": name, "role": "admin" })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{why} is refused: {body}"
        );
    }

    let admin_id = admin["id"].as_str().expect("id");
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/api/tokens/{admin_id}"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "an admin cannot revoke the token they are signed in with: {body}"
    );

    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/api/tokens/{sam_id}"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "revoked: {body}");
    let (status, _) = api.call(Method::GET, "/api/me", &sam, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token gets 401 at once"
    );
    let (status, _) = api
        .call(
            Method::DELETE,
            &format!("/api/tokens/{sam_id}"),
            &api.admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a token is revoked once");
    assert_eq!(api.me(&vic).await["name"], json!("Vic Viewer"));

    let issued = api
        .audit(&format!("actor={admin_id}"), "config:token_issued")
        .await;
    assert_eq!(
        issued.len(),
        2,
        "each issued token is audited with the issuer's id"
    );
    let revoked = api.audit("actor=ana", "config:token_revoked").await;
    assert_eq!(revoked.len(), 1, "the revocation is audited");
    assert_eq!(revoked[0]["actor_id"], json!(admin_id));
    assert_eq!(revoked[0]["before"]["id"], json!(sam_id));
    let (_, all) = api
        .call_text(Method::GET, "/api/audit?limit=1000", &api.admin, None)
        .await;
    assert!(
        !all.contains(&sam) && !all.contains(&vic),
        "no token secret reaches the audit"
    );
}

#[tokio::test]
async fn config_changes_are_audited_with_actor_and_diff() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let admin_id = api.me(&api.admin).await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let mut payroll = serde_json::to_value(
        h.config
            .systems
            .iter()
            .find(|s| s.id == "payroll")
            .expect("payroll"),
    )
    .expect("json");
    payroll["name"] = json!("Acme Payroll EU");
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/systems/payroll",
            &api.admin,
            Some(payroll),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut mapping = serde_json::to_value(
        h.config
            .mappings
            .iter()
            .find(|m| m.system == "hris")
            .expect("hris"),
    )
    .expect("json");
    mapping["rules"]
        .as_array_mut()
        .expect("rules")
        .retain(|r| r["canonical"] != json!(["department"]));
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/mappings/hris/employee",
            &api.admin,
            Some(mapping),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut policies = serde_json::to_value(&h.config.policies[0].fields).expect("policies json");
    policies[0]["conflict"] = json!("last_write_wins");
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/policies/employee",
            &api.admin,
            Some(policies),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    for paused in [true, false] {
        let (status, body) = api
            .call(
                Method::PUT,
                "/api/engine",
                &api.admin,
                Some(json!({ "paused": paused })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    let system = api
        .audit(&format!("actor={admin_id}"), "config:system_saved")
        .await;
    assert_eq!(system.len(), 1, "saving a system is audited");
    assert_eq!(system[0]["system"], json!("payroll"));
    assert_eq!(system[0]["before"]["name"], json!("Acme Payroll"));
    assert_eq!(
        system[0]["after"]["name"],
        json!("Acme Payroll EU"),
        "the entry holds the old and new config"
    );
    let mapping = api.audit("actor=ana", "config:mapping_saved").await;
    assert_eq!(mapping.len(), 1, "saving a mapping is audited");
    assert_eq!(mapping[0]["actor_id"], json!(admin_id));
    assert_eq!(mapping[0]["object"], json!("employee"));
    assert_eq!(
        mapping[0]["before"]["rules"].as_array().map(Vec::len),
        Some(8),
        "before: the mapping as it was"
    );
    assert_eq!(
        mapping[0]["after"]["rules"].as_array().map(Vec::len),
        Some(7),
        "after: the mapping as saved"
    );
    let policies = api.audit("actor=ana", "config:policies_saved").await;
    assert_eq!(policies.len(), 1, "saving ownership rules is audited");
    assert_eq!(policies[0]["before"][0]["conflict"], json!("owner_wins"));
    assert_eq!(
        policies[0]["after"][0]["conflict"],
        json!("last_write_wins")
    );
    assert_eq!(
        api.audit("actor=ana", "config:paused").await.len(),
        1,
        "pausing is audited"
    );
    let resumed = api.audit("actor=ana", "config:resumed").await;
    assert_eq!(resumed.len(), 1, "resuming is audited");
    assert_eq!(resumed[0]["before"], json!({ "paused": true }));
    assert_eq!(resumed[0]["after"], json!({ "paused": false }));
}

/// Needs a keychain: run under `keyctl session -`.
#[tokio::test]
async fn secrets_are_audited_by_name_never_by_value() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let value = "s3cr3t-value-that-must-not-leak";
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/secrets/identity-test-key",
            &api.admin,
            Some(json!({ "value": value })),
        )
        .await;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        eprintln!("no keychain here ({body}); run under `keyctl session -`");
        return;
    }
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = api
        .call(
            Method::DELETE,
            "/api/secrets/identity-test-key",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let stored = api.audit("actor=ana", "config:secret_stored").await;
    assert_eq!(stored.len(), 1, "storing a secret is audited");
    assert_eq!(stored[0]["detail"]["name"], json!("identity-test-key"));
    assert_eq!(
        api.audit("actor=ana", "config:secret_removed").await.len(),
        1,
        "removing a secret is audited"
    );
    let (_, all) = api
        .call_text(Method::GET, "/api/audit?limit=1000", &api.admin, None)
        .await;
    assert!(
        !all.contains(value),
        "a secret's value never reaches the audit"
    );
}

#[tokio::test]
async fn emptying_a_mapping_or_policies_needs_confirmation() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    let workspace = || h.engine.workspace().config.clone();
    let before = workspace();

    let empty = json!({ "system": "hris", "object": "employee", "rules": [] });
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/mappings/hris/employee",
            &api.admin,
            Some(empty.clone()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "emptying a mapping needs confirmation: {body}"
    );
    assert_eq!(body["code"], json!("confirmation_required"));
    assert!(body["message"].is_string());
    assert_eq!(body["removes"]["kind"], json!("mapping_rules"));
    assert_eq!(
        body["removes"]["count"],
        json!(8),
        "the refusal says how many rules would go"
    );
    assert!(
        body["removes"]["fields"]
            .as_array()
            .expect("fields")
            .contains(&json!("work_email")),
        "and which fields: {body}"
    );

    let (status, body) = api
        .call(
            Method::PUT,
            "/api/policies/employee",
            &api.admin,
            Some(json!([])),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "emptying an object's ownership rules needs confirmation: {body}"
    );
    assert_eq!(body["removes"]["kind"], json!("policies"));
    assert_eq!(body["removes"]["count"], json!(11));
    assert_eq!(
        workspace(),
        before,
        "an unconfirmed destructive change leaves the workspace unchanged"
    );
    assert!(
        api.audit("", "config:mapping_saved").await.is_empty()
            && api.audit("", "config:policies_saved").await.is_empty(),
        "nothing refused is audited as saved"
    );

    let (status, body) = api
        .call(
            Method::PUT,
            "/api/mappings/hris/employee?confirm=true",
            &api.admin,
            Some(empty),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a confirmed change is applied: {body}"
    );
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/policies/employee?confirm=true",
            &api.admin,
            Some(json!([])),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a confirmed change is applied: {body}"
    );
    let now = workspace();
    assert!(
        now.mappings
            .iter()
            .find(|m| m.system == "hris")
            .expect("hris")
            .rules
            .is_empty(),
        "the mapping is emptied"
    );
    assert!(
        now.policies[0].fields.is_empty(),
        "the policies are emptied"
    );
    let mapping = api.audit("actor=ana", "config:mapping_saved").await;
    assert_eq!(mapping.len(), 1);
    assert_eq!(
        mapping[0]["detail"]["confirmed"],
        json!(true),
        "the audit records that the removal was confirmed"
    );
    assert_eq!(mapping[0]["detail"]["removes"]["count"], json!(8));
    let policies = api.audit("actor=ana", "config:policies_saved").await;
    assert_eq!(policies[0]["detail"]["confirmed"], json!(true));
}

#[tokio::test]
async fn removing_a_system_with_linked_records_is_guarded() {
    let h = Harness::start(|_| {}).await;
    let api = Api::start(&h).await;
    h.hris.edit("H1", ada());
    h.settle().await;
    let before = h.engine.workspace().config.clone();

    let (status, body) = api
        .call(Method::DELETE, "/api/systems/payroll", &api.admin, None)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "removing a system with linked records needs confirmation: {body}"
    );
    assert_eq!(body["code"], json!("confirmation_required"));
    assert_eq!(body["removes"]["linked_records"], json!(1));
    assert_eq!(body["removes"]["mappings"], json!(["payroll/employee"]));
    assert_eq!(h.engine.workspace().config, before, "nothing is removed");

    let (status, body) = api
        .call(
            Method::DELETE,
            "/api/systems/payroll?confirm=true",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a system the ownership rules still name cannot go: {body}"
    );
    assert_eq!(h.engine.workspace().config, before, "nothing is removed");

    // Ownership without payroll, then the system goes.
    let fields: Vec<Value> = serde_json::to_value(&before.policies[0].fields)
        .expect("json")
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| f["owner"] == json!("hris"))
        .cloned()
        .collect();
    let (status, body) = api
        .call(
            Method::PUT,
            "/api/policies/employee",
            &api.admin,
            Some(Value::Array(fields)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .call(
            Method::DELETE,
            "/api/systems/payroll?confirm=true",
            &api.admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "a confirmed removal goes: {body}");
    let now = h.engine.workspace().config.clone();
    assert!(
        now.systems.iter().all(|s| s.id != "payroll")
            && now.mappings.iter().all(|m| m.system != "payroll"),
        "the system and its mapping are removed"
    );
    let removed = api.audit("actor=ana", "config:system_removed").await;
    assert_eq!(removed.len(), 1, "the removal is audited");
    assert_eq!(removed[0]["detail"]["confirmed"], json!(true));
    assert_eq!(removed[0]["before"]["id"], json!("payroll"));
    let reopened = concord::store::load_workspace(h.engine.pool())
        .await
        .expect("load");
    assert!(
        reopened.systems.iter().all(|s| s.id != "payroll"),
        "a removed system stays removed when the engine starts again"
    );
}

#[tokio::test]
async fn an_empty_resolution_of_a_sensitive_field_is_refused() {
    let h = Harness::start(hris_maps_salary).await;
    let api = Api::start(&h).await;
    let (exception, _) = pay_conflict(&h).await;
    let (steward, _) = api.token("Stella Steward", "steward").await;
    let (_, seen) = api
        .call(
            Method::GET,
            &format!("/api/exceptions/{exception}"),
            &steward,
            None,
        )
        .await;
    assert!(
        seen["detail"]["base"].is_null(),
        "the scenario's base is empty: {seen}"
    );
    h.settle().await;
    let before = writes(&h);

    for (choice, how) in [
        (json!({ "choose": "base" }), "the empty base"),
        (
            json!({ "choose": "custom", "value": null }),
            "a custom null",
        ),
        (
            json!({ "choose": "custom", "value": "" }),
            "a custom empty string",
        ),
        (
            json!({ "choose": "custom", "value": "   " }),
            "a custom blank string",
        ),
    ] {
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/api/exceptions/{exception}/resolve"),
                &steward,
                Some(json!({ "choice": choice, "note": "" })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "a sensitive field is never resolved to {how}: {body}"
        );
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("pay_rate")),
            "the refusal names the field: {body}"
        );
    }
    let (status, body) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve",
            &steward,
            Some(json!({ "filter": { "field": "pay_rate" }, "choice": { "choose": "base" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["applied"].as_u64().unwrap_or(0)
            + body["awaiting_second_approval"].as_u64().unwrap_or(0),
        0,
        "bulk resolution to an empty base applies nothing: {body}"
    );
    assert!(
        body["failed"][0]
            .as_str()
            .is_some_and(|m| m.contains("pay_rate")),
        "and says why: {body}"
    );

    h.settle().await;
    let (_, after) = api
        .call(
            Method::GET,
            &format!("/api/exceptions/{exception}"),
            &steward,
            None,
        )
        .await;
    assert_eq!(after["status"], json!("open"), "the exception stays open");
    assert!(
        after["detail"]["approval"].is_null(),
        "a refused resolution is not even a first approval: {after}"
    );
    assert_eq!(
        writes(&h),
        before,
        "a refused resolution writes nothing to any system"
    );
}

/// The HRIS maps pay, and pay is shown in US dollars.
fn hris_maps_salary_in_dollars(config: &mut WorkspaceConfig) {
    hris_maps_salary(config);
    for object in &mut config.objects {
        for field in &mut object.fields {
            if field.name == "pay_rate" {
                field.currency = Some("USD".into());
            }
        }
    }
}

#[tokio::test]
async fn bulk_four_eyes_needs_two_people_who_were_both_shown_the_values() {
    let h = Harness::start(hris_maps_salary_in_dollars).await;
    let api = Api::start(&h).await;
    let people = [("H1", "E1"), ("H2", "E2"), ("H3", "E3")];
    for (id, number) in people {
        let mut person = ada();
        person["employee_id"] = json!(number);
        person["email"] = json!(format!("{}@acme.example", number.to_lowercase()));
        h.hris.edit(id, person);
    }
    h.settle().await;
    let payroll_ids: Vec<String> = h.payroll.records().into_iter().map(|(id, _)| id).collect();
    assert_eq!(payroll_ids.len(), 3, "three employees reach payroll");
    // Both sides change each person's pay at once: three conflicts on a four-eyes field.
    for (i, (id, _)) in people.iter().enumerate() {
        h.hris
            .edit(id, json!({ "salary": format!("{}.00", 90_000 + i * 1000) }));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    for pid in &payroll_ids {
        h.payroll.edit(pid, json!({ "salary_cents": 8_800_000 }));
    }
    h.settle().await;
    let (stella, _) = api.token("Stella Steward", "steward").await;
    let (kim, kim_id) = api.token("Kim Keeper", "steward").await;
    let (vic, _) = api.token("Vic Viewer", "viewer").await;
    let hris_pay = |h: &Harness| -> Vec<Value> {
        people
            .iter()
            .map(|(id, _)| h.hris.record(id).expect("kept")["salary"].clone())
            .collect()
    };
    let before = hris_pay(&h);
    let written = writes(&h);
    let take_payroll = json!({ "filter": { "field": "pay_rate" }, "choice": { "choose": "system", "value": "payroll" } });

    // Stella is shown each record's pay, current -> chosen, before approving.
    let (status, shown) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve/preview",
            &stella,
            Some(take_payroll.clone()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a steward previews a bulk set: {shown}"
    );
    let items = shown["items"].as_array().expect("items");
    assert_eq!(
        items.len(),
        3,
        "the preview lists every exception in the set: {shown}"
    );
    let mut current: Vec<&str> = items.iter().filter_map(|i| i["current"].as_str()).collect();
    current.sort_unstable();
    assert_eq!(
        current,
        ["90000", "91000", "92000"],
        "the preview shows each record's current value: {shown}"
    );
    for item in items {
        assert_eq!(
            item["chosen"],
            json!("88000"),
            "and the value chosen to replace it: {item}"
        );
        assert_eq!(
            item["step"],
            json!("first_approval"),
            "a four-eyes field is only approved first: {item}"
        );
        assert_eq!(
            item["currency"],
            json!("USD"),
            "money comes with its currency: {item}"
        );
    }
    let stella_digest = shown["digest"].as_str().expect("digest").to_owned();

    // Approving without having been shown the values is refused, and nothing is recorded.
    let (status, body) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve",
            &stella,
            Some(take_payroll.clone()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::PRECONDITION_REQUIRED,
        "a four-eyes bulk set needs the preview it was shown: {body}"
    );
    assert_eq!(body["code"], json!("preview_required"));
    let (_, queue) = api.call(Method::GET, "/api/approvals", &kim, None).await;
    assert_eq!(
        queue["awaiting_you"],
        json!(0),
        "a refused bulk call records no approval: {queue}"
    );

    let mut approve = take_payroll.clone();
    approve["shown"] = json!(stella_digest);
    approve["note"] = json!("pay rises agreed by HR");
    let (status, body) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve",
            &stella,
            Some(approve),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["awaiting_second_approval"],
        json!(3),
        "each is approved once, by Stella: {body}"
    );
    assert_eq!(
        body["applied"],
        json!(0),
        "one person applies nothing on a four-eyes field: {body}"
    );
    let firsts = api.audit("", "resolution:first_approval").await;
    assert_eq!(firsts.len(), 3, "each first approval is audited");
    assert!(
        firsts
            .iter()
            .all(|a| a["detail"]["shown"] == json!(stella_digest)),
        "each first approval names the preview its approver was shown: {firsts:?}"
    );

    // The second person's queue lists the approvals awaiting them, with the approved values.
    let (_, queue) = api.call(Method::GET, "/api/approvals", &kim, None).await;
    assert_eq!(
        queue["awaiting_you"],
        json!(3),
        "three approvals await Kim: {queue}"
    );
    for item in queue["items"].as_array().expect("items") {
        assert_eq!(
            item["first_approval"]["by"],
            json!("Stella Steward"),
            "{item}"
        );
        assert_eq!(
            item["chosen"], item["first_approval"]["value"],
            "the queue shows the value approved: {item}"
        );
        assert_eq!(
            item["chosen"],
            json!("88000"),
            "the value approved is payroll's: {item}"
        );
    }
    let (_, own) = api.call(Method::GET, "/api/approvals", &stella, None).await;
    assert_eq!(
        own["awaiting_you"],
        json!(0),
        "nothing awaits the first approver: {own}"
    );
    assert_eq!(
        own["awaiting_others"],
        json!(3),
        "her approvals await someone else: {own}"
    );
    let (_, masked) = api.call(Method::GET, "/api/approvals", &vic, None).await;
    let masked_text = masked.to_string();
    assert!(
        !masked_text.contains("90000")
            && !masked_text.contains("88000")
            && masked_text.contains("••••"),
        "a viewer sees the queue with pay masked: {masked}"
    );

    // Stella cannot give the second approval, in bulk either.
    let second =
        json!({ "filter": { "awaiting_approval": true }, "choice": { "choose": "approved" } });
    let (_, own_preview) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve/preview",
            &stella,
            Some(second.clone()),
        )
        .await;
    let mut again = second.clone();
    again["shown"] = own_preview["digest"].clone();
    let (status, body) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve",
            &stella,
            Some(again),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["applied"],
        json!(0),
        "the first approver is not a second person: {body}"
    );
    assert_eq!(body["failed"].as_array().map(Vec::len), Some(3), "{body}");

    // Kim approving on what Stella was shown (not what Kim was shown) is refused.
    let mut stale = second.clone();
    stale["shown"] = json!(stella_digest);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve",
            &kim,
            Some(stale),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a digest of another view is not what Kim was shown: {body}"
    );
    assert_eq!(body["code"], json!("preview_changed"));
    h.settle().await;
    assert_eq!(
        hris_pay(&h),
        before,
        "nothing reaches the HRIS before a second person approves"
    );
    assert_eq!(
        writes(&h),
        written,
        "no system is written before the second approval"
    );

    // Kim is shown the values, then approves them: they are applied everywhere.
    let (_, kim_preview) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve/preview",
            &kim,
            Some(second.clone()),
        )
        .await;
    for item in kim_preview["items"].as_array().expect("items") {
        assert_eq!(
            item["step"],
            json!("second_approval"),
            "Kim's approval applies: {item}"
        );
        assert_eq!(item["first_approval"]["by"], json!("Stella Steward"));
    }
    let kim_digest = kim_preview["digest"].as_str().expect("digest").to_owned();
    let mut approve = second.clone();
    approve["shown"] = json!(kim_digest);
    let (status, body) = api
        .call(
            Method::POST,
            "/api/exceptions/bulk-resolve",
            &kim,
            Some(approve),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["applied"],
        json!(3),
        "a second person's approval applies each: {body}"
    );
    h.settle().await;
    assert_eq!(
        hris_pay(&h),
        [json!("88000.00"), json!("88000.00"), json!("88000.00")],
        "the value both people were shown reaches the HRIS for each person"
    );
    let resolutions = api
        .audit(&format!("actor={kim_id}"), "resolution:conflict")
        .await;
    assert_eq!(
        resolutions.len(),
        3,
        "each resolution is audited with the second approver"
    );
    for r in &resolutions {
        assert_eq!(
            r["detail"]["shown"],
            json!(kim_digest),
            "it names what Kim was shown: {r}"
        );
        assert_eq!(
            r["detail"]["first_approval"]["shown"],
            json!(stella_digest),
            "and what Stella was shown: {r}"
        );
    }
    let (_, queue) = api.call(Method::GET, "/api/approvals", &kim, None).await;
    assert_eq!(
        queue["items"],
        json!([]),
        "the queue is empty once approved: {queue}"
    );
}
