//! The demo's workspace, as an admin would configure it: the two HR systems through the
//! declarative `rest` connector (the HRIS with an API key, page/size pages and signed webhooks;
//! payroll with OAuth2 client credentials, cursor pages, polling and a rate limit), the
//! directory through the `scim` connector (a bearer token, polled, leavers deactivated), the
//! Employee object with payroll's deductions added as data, a mapping per system with real
//! transforms, and who owns which field.

use serde_json::{Value, json};

use crate::model::{FieldDef, WorkspaceConfig};
use crate::transform::FieldType;

/// The secrets the config refers to, by kind. Their keychain names carry the seed (see
/// [`secret_name`]), so demos with different seeds running at once do not trade keys.
pub const HRIS_API_KEY: &str = "demo-hris-api-key";
pub const HRIS_WEBHOOK_KEY: &str = "demo-hris-webhook-key";
pub const PAYROLL_CLIENT_SECRET: &str = "demo-payroll-client-secret";
pub const DIRECTORY_TOKEN: &str = "demo-directory-token";

/// The keychain name of one of the demo's secrets for a seed, e.g. `demo-hris-api-key-1`.
pub fn secret_name(kind: &str, seed: u64) -> String {
    format!("{kind}-{seed}")
}

/// How often payroll is polled, and how often the HRIS is (as a fallback to its webhooks).
pub const PAYROLL_POLL_SECS: f64 = 1.0;
pub const HRIS_POLL_SECS: f64 = 30.0;
/// How often the directory is polled (SCIM sends no events).
pub const DIRECTORY_POLL_SECS: f64 = 2.0;
/// What the engine allows itself against payroll's 25 requests a second.
pub const PAYROLL_RATE: f64 = 20.0;

/// Employee, plus payroll's two deductions (added as data, as any admin could).
fn employee_schema() -> Result<Value, serde_json::Error> {
    let mut schema = crate::schema::employee();
    let field = |name: &str, field_type, description: &str| FieldDef {
        name: name.into(),
        field_type,
        required: false,
        sensitive: false,
        values: Vec::new(),
        references: None,
        description: Some(description.into()),
        max_length: None,
        currency: None,
    };
    schema.fields.push(field(
        "retirement_contribution_pct",
        FieldType::Number,
        "401(k) deferral, percent of pay",
    ));
    schema.fields.push(field(
        "medical_plan",
        FieldType::String,
        "medical plan the employee is enrolled in",
    ));
    serde_json::to_value(schema)
}

fn date(format: &str) -> Value {
    json!({ "kind": "date", "format": format })
}

const CLEAR: &str = "clear";

fn rule(canonical: &[&str], system: &str, transform: Option<Value>) -> Value {
    let mut r = json!({ "canonical": canonical, "system": [system] });
    if let (Some(t), Value::Object(m)) = (transform, &mut r) {
        m.insert("transform".into(), t);
    }
    r
}

/// A rule under which a null in the system clears the field (people do clear these).
fn nullable(canonical: &str, system: &str, transform: Option<Value>) -> Value {
    let mut r = rule(&[canonical], system, transform);
    if let Value::Object(m) = &mut r {
        m.insert("null".into(), json!({ "policy": CLEAR }));
    }
    r
}

/// Where the demo's three systems listen.
#[derive(Debug, Clone, Copy)]
pub struct Urls<'a> {
    pub hris: &'a str,
    pub payroll: &'a str,
    /// The SCIM base URL (`…/scim/v2`).
    pub directory: &'a str,
}

/// The whole workspace for systems at these base URLs, with the secrets of `seed`.
pub fn workspace(urls: Urls<'_>, seed: u64) -> anyhow::Result<WorkspaceConfig> {
    let (hris_url, payroll_url) = (urls.hris, urls.payroll);
    let directory_token = secret_name(DIRECTORY_TOKEN, seed);
    let api_key = secret_name(HRIS_API_KEY, seed);
    let webhook_key = secret_name(HRIS_WEBHOOK_KEY, seed);
    let client_secret = secret_name(PAYROLL_CLIENT_SECRET, seed);
    let hris_status = json!({ "kind": "enum", "table": [
        { "system": "Active", "canonical": "active" },
        { "system": "On Leave", "canonical": "on_leave" },
        { "system": "Terminated", "canonical": "terminated" } ] });
    // Payroll only knows active and inactive.
    let payroll_state = json!({ "kind": "enum", "table": [
        { "system": 1, "canonical": "active" },
        { "system": 0, "canonical": "terminated" } ] });
    // The directory has only `active`: people on leave keep their accounts.
    let directory_active = json!({ "kind": "enum", "table": [
        { "system": true, "canonical": "active" },
        { "system": true, "canonical": "on_leave" },
        { "system": false, "canonical": "terminated" } ] });
    let enterprise = crate::connectors::scim::config::ENTERPRISE_SCHEMA;
    // People edit a few records a second in the demo: over ten seconds that is far below half
    // of the 300 employees, while a run that rewrites most of them (a re-push of everyone)
    // trips the breaker.
    let breaker = json!({ "max_share": 0.5, "window_secs": 10, "min_records": 25 });
    let config = json!({
        "systems": [
            { "id": "hris", "name": "Acme HRIS", "connector": "rest",
              "breaker": breaker,
              "config": {
                  "base_url": hris_url,
                  "timeout_ms": 5000,
                  "auth": { "type": "api_key", "header": "X-API-Key", "secret": api_key },
                  "objects": { "employee": {
                      "path": super::hris::COLLECTION,
                      "records_pointer": "/data",
                      "pagination": { "style": "page", "page_param": "page", "size_param": "per_page", "size": 100 },
                      "total_pointer": "/meta/total",
                      "version_field": "version",
                      "modified_field": "updated_at",
                      "incremental": { "style": "param", "param": "updated_since", "format": "rfc3339" },
                      "concurrency": { "style": "etag" }
                  } },
                  "webhooks": {
                      "secret": webhook_key,
                      "signature_header": "X-Acme-Signature",
                      "signature_prefix": "sha256=",
                      "timestamp_header": "X-Acme-Timestamp",
                      "tolerance_secs": 300,
                      "signed_payload": "timestamp_dot_body",
                      "object": "employee",
                      "record_pointer": "/data",
                      "event_key_pointer": "/id",
                      "op_pointer": "/type",
                      "delete_values": ["worker.deleted"],
                      "occurred_at_pointer": "/occurred_at"
                  },
                  "poll": { "interval_secs": HRIS_POLL_SECS }
              } },
            { "id": "payroll", "name": "Acme Payroll", "connector": "rest",
              "breaker": breaker,
              "rate_limit_per_sec": PAYROLL_RATE,
              "config": {
                  "base_url": payroll_url,
                  "timeout_ms": 5000,
                  "auth": { "type": "oauth2_client_credentials", "token_url": super::payroll::TOKEN_PATH,
                            "client_id": super::payroll::CLIENT_ID, "secret": client_secret },
                  "objects": { "employee": {
                      "path": super::payroll::COLLECTION,
                      "records_pointer": "/items",
                      "pagination": { "style": "cursor", "cursor_param": "cursor", "next_pointer": "/next_cursor",
                                      "size_param": "limit", "size": 100 },
                      "total_header": "X-Total-Count",
                      "version_field": "row_version",
                      "modified_field": "modified_at",
                      "incremental": { "style": "param", "param": "modified_after", "format": "raw" },
                      "concurrency": { "style": "version_field", "field": "row_version" },
                      "update": { "method": "PATCH" }
                  } },
                  "poll": { "interval_secs": PAYROLL_POLL_SECS }
              } },
            { "id": "directory", "name": "Acme Directory", "connector": "scim",
              "breaker": breaker,
              "config": {
                  "base_url": urls.directory,
                  "timeout_ms": 5000,
                  "auth": { "type": "bearer", "secret": directory_token },
                  "objects": { "employee": { "resource": "User", "on_delete": "deactivate" } },
                  "poll": { "interval_secs": DIRECTORY_POLL_SECS }
              } }
        ],
        "objects": [ employee_schema()? ],
        "mappings": [
            { "system": "hris", "object": "employee", "rules": [
                rule(&["employee_number"], "employee_id", None),
                rule(&["given_name", "family_name"], "full_name", Some(json!({ "kind": "full_name" }))),
                nullable("preferred_name", "preferred_name", None),
                rule(&["work_email"], "work_email", None),
                rule(&["personal_email"], "personal_email", None),
                rule(&["work_phone"], "phone",
                     Some(json!({ "kind": "phone", "region": "US", "system_format": "national" }))),
                rule(&["home_address_line1"], "home_address/line1", None),
                nullable("home_address_line2", "home_address/line2", None),
                rule(&["home_city"], "home_address/city", None),
                rule(&["home_region"], "home_address/state", None),
                rule(&["home_postal_code"], "home_address/postal_code", None),
                rule(&["home_country"], "home_address/country", None),
                rule(&["employment_status"], "status", Some(hris_status)),
                rule(&["hire_date"], "hire_date", Some(date("%m/%d/%Y"))),
                nullable("termination_date", "termination_date", Some(date("%m/%d/%Y"))),
                rule(&["job_title"], "job_title", None),
                rule(&["department"], "department", None),
                nullable("manager", "manager_id", None),
                rule(&["pay_rate"], "salary", Some(json!({ "kind": "money_decimal", "scale": 2 }))),
                rule(&["pay_currency"], "salary_currency", None)
            ], "effective_date": { "path": "salary_effective_date", "fields": ["pay_rate", "pay_currency"] } },
            { "system": "payroll", "object": "employee", "rules": [
                rule(&["employee_number"], "emp_no", None),
                rule(&["given_name"], "first_name", None),
                rule(&["family_name"], "last_name", None),
                rule(&["work_email"], "email", None),
                rule(&["work_phone"], "phone", Some(json!({ "kind": "phone", "region": "US" }))),
                rule(&["home_address_line1"], "home_address/street1", None),
                nullable("home_address_line2", "home_address/street2", None),
                rule(&["home_city"], "home_address/city", None),
                rule(&["home_region"], "home_address/state", None),
                rule(&["home_postal_code"], "home_address/zip", None),
                rule(&["home_country"], "home_address/country", None),
                rule(&["employment_status"], "state", Some(payroll_state)),
                rule(&["hire_date"], "hire_date", Some(date("%Y-%m-%d"))),
                nullable("termination_date", "termination_date", Some(date("%Y-%m-%d"))),
                rule(&["pay_rate"], "salary_cents", Some(json!({ "kind": "money_minor", "exponent": 2 }))),
                rule(&["pay_currency"], "currency", None),
                rule(&["pay_frequency"], "pay_frequency", None),
                rule(&["bank_routing_number"], "bank/routing_number", None),
                rule(&["bank_account_number"], "bank/account_number", None),
                rule(&["retirement_contribution_pct"], "deductions/retirement_pct", None),
                rule(&["medical_plan"], "deductions/medical_plan", None)
            ] },
            { "system": "directory", "object": "employee", "rules": [
                rule(&["employee_number"], "externalId", None),
                rule(&["employee_number"], &format!("{enterprise}/employeeNumber"), None),
                rule(&["work_email"], "userName", None),
                rule(&["work_email"], "emails[type=work].value", None),
                rule(&["given_name"], "name/givenName", None),
                rule(&["family_name"], "name/familyName", None),
                rule(&["work_phone"], "phoneNumbers[type=work].value", Some(json!({ "kind": "phone", "region": "US" }))),
                rule(&["job_title"], "title", None),
                rule(&["department"], &format!("{enterprise}/department"), None),
                rule(&["employment_status"], "active", Some(directory_active))
            ] }
        ],
        "policies": [ { "object": "employee", "fields": policies() } ]
    });
    Ok(serde_json::from_value(config)?)
}

/// The HRIS owns identity, job and status; payroll owns bank details and deductions; the
/// directory owns the work e-mail and phone (the HR systems may write the phone); both HR
/// systems write the home address (the later write wins); pay needs a person when both change
/// it, and a second person to approve.
fn policies() -> Vec<Value> {
    let owned = |field: &str, owner: &str, sensitive: bool| json!({ "field": field, "owner": owner, "conflict": "owner_wins", "sensitive": sensitive });
    let shared = |field: &str, sensitive: bool| json!({ "field": field, "writers": ["hris", "payroll"], "conflict": "last_write_wins", "sensitive": sensitive });
    let mut out = Vec::new();
    for f in [
        "employee_number",
        "given_name",
        "family_name",
        "preferred_name",
        "employment_status",
        "hire_date",
        "termination_date",
        "job_title",
        "department",
        "manager",
        "pay_currency",
    ] {
        out.push(owned(f, "hris", false));
    }
    out.push(owned("personal_email", "hris", true));
    for f in [
        "bank_routing_number",
        "bank_account_number",
        "retirement_contribution_pct",
        "medical_plan",
    ] {
        out.push(owned(f, "payroll", true));
    }
    out.push(owned("pay_frequency", "payroll", false));
    // The directory owns the work e-mail (its login): a change made elsewhere waits for a
    // steward. The HR systems may update the work phone too; the directory's wins a conflict.
    out.push(
        json!({ "field": "work_email", "owner": "directory", "conflict": "owner_wins",
                     "non_owner": "quarantine" }),
    );
    out.push(
        json!({ "field": "work_phone", "owner": "directory", "writers": ["hris", "payroll"],
                     "conflict": "owner_wins" }),
    );
    for f in [
        "home_address_line1",
        "home_address_line2",
        "home_city",
        "home_region",
        "home_postal_code",
        "home_country",
    ] {
        out.push(shared(f, true));
    }
    out.push(
        json!({ "field": "pay_rate", "writers": ["hris", "payroll"], "conflict": "manual",
                     "sensitive": true, "four_eyes": true }),
    );
    out
}
