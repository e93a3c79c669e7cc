//! Concord against a real SCIM 2.0 server: scim2-server (PyPI, pinned, installed by
//! scripts/setup.sh), started per test with a bearer token, configured only through the `scim`
//! connector config. The other side is an HR system over HTTP with nested records
//! (`name/first`, `contact/email`, `job/department`) that posts a webhook for every change.
//!
//! The tests prove, by what scim2-server holds and by its request log: provisioning with people
//! on leave active and terminated people deactivated; edits on both sides converging with the
//! unmapped elements of `emails` and `phoneNumbers` kept; a concurrent edit refused with 412
//! and merged; a group's membership edited on both sides merged per member; deactivation as a
//! delete, and a delete found by reconciliation; PUT of the resource as read where PATCH is
//! unsupported; and no duplicate user after SIGKILLs during provisioning.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::scim2_server::{Scim2Server, TOKEN};
use concord::Engine;
use concord::loopback::LoopbackSystem;
use concord::model::WorkspaceConfig;
use concord::secrets::SecretStore;
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The team object: a group of employees by number, its members merged per member.
fn team_object() -> Value {
    json!({ "name": "team", "match_keys": ["team_id"], "delete_policy": { "policy": "propagate" }, "fields": [
        { "name": "team_id", "type": "string", "required": true },
        { "name": "team_name", "type": "string" },
        { "name": "members", "type": "set" } ] })
}

fn dir_config(base: &str, secret: &str) -> Value {
    json!({
        "base_url": base,
        "auth": { "type": "bearer", "secret": secret },
        "objects": {
            "employee": { "resource": "User", "on_delete": "deactivate", "page_size": 7 },
            "team": { "resource": "Group", "member_key": "externalId" }
        },
        "poll": { "interval_secs": 3600 },
        "reconcile": { "interval_secs": 0, "max_delete_share": 0.5 }
    })
}

/// Employment status as the system holds it: people on leave share the active value where
/// the system has only a flag (a lossy table; the engine keeps the code it knows).
fn status_table(active: Value, leave: Value, gone: Value) -> Value {
    json!({ "kind": "enum", "table": [
        { "system": active, "canonical": "active" },
        { "system": leave, "canonical": "on_leave" },
        { "system": gone, "canonical": "terminated" } ] })
}

/// HR (nested records, webhooks), its teams, and the directory (SCIM).
fn workspace(hr: &str, teams: &str, dir: Value) -> WorkspaceConfig {
    let mut employee = serde_json::to_value(concord::schema::employee()).expect("schema");
    employee["delete_policy"] = json!({ "policy": "propagate" });
    serde_json::from_value(json!({
        "systems": [
            { "id": "hr", "name": "HR", "connector": "rest", "webhook_secret": "hr-webhook",
              "config": { "base_url": hr, "objects": { "employee": {
                  "path": "/employees", "version_field": "version", "concurrency": { "style": "etag" } } } } },
            { "id": "teams", "name": "HR teams", "connector": "rest", "webhook_secret": "teams-webhook",
              "config": { "base_url": teams, "objects": { "team": {
                  "path": "/teams", "version_field": "version", "concurrency": { "style": "etag" } } } } },
            { "id": "dir", "name": "Directory", "connector": "scim", "config": dir }
        ],
        "objects": [employee, team_object()],
        "mappings": [
            { "system": "hr", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employee_id"] },
                { "canonical": ["given_name"], "system": ["name/first"] },
                { "canonical": ["family_name"], "system": ["name/last"] },
                { "canonical": ["work_email"], "system": ["contact/email"] },
                { "canonical": ["work_phone"], "system": ["contact/phone"], "transform": { "kind": "phone", "region": "US" } },
                { "canonical": ["job_title"], "system": ["job/title"] },
                { "canonical": ["department"], "system": ["job/department"] },
                { "canonical": ["employment_status"], "system": ["status"],
                  "transform": status_table(json!("Active"), json!("On Leave"), json!("Terminated")) }
            ]},
            { "system": "dir", "object": "employee", "rules": [
                { "canonical": ["work_email"], "system": ["userName"] },
                { "canonical": ["employee_number"], "system": ["externalId"] },
                { "canonical": ["given_name"], "system": ["name/givenName"] },
                { "canonical": ["family_name"], "system": ["name/familyName"] },
                { "canonical": ["work_email"], "system": ["emails[type=work].value"] },
                { "canonical": ["work_phone"], "system": ["phoneNumbers[type=work].value"], "transform": { "kind": "phone", "region": "US" } },
                { "canonical": ["job_title"], "system": ["title"] },
                { "canonical": ["department"], "system": [format!("{ENTERPRISE}/department")] },
                { "canonical": ["employment_status"], "system": ["active"],
                  "transform": status_table(json!(true), json!(true), json!(false)) }
            ]},
            { "system": "teams", "object": "team", "rules": [
                { "canonical": ["team_id"], "system": ["team_id"] },
                { "canonical": ["team_name"], "system": ["name"] },
                { "canonical": ["members"], "system": ["members"] }
            ]},
            { "system": "dir", "object": "team", "rules": [
                { "canonical": ["team_id"], "system": ["externalId"] },
                { "canonical": ["team_name"], "system": ["displayName"] },
                { "canonical": ["members"], "system": ["memberKeys"] }
            ]}
        ]
    }))
    .expect("a valid workspace")
}

fn number(i: usize) -> String {
    format!("E{i:04}")
}

/// An HR employee with nested members; every 10th from the 3rd is on leave, from the 7th
/// terminated.
fn hr_employee(i: usize) -> Value {
    let status = match i % 10 {
        3 => "On Leave",
        7 => "Terminated",
        _ => "Active",
    };
    json!({
        "employee_id": number(i),
        "name": { "first": format!("Given{i}"), "last": format!("Family{i}") },
        "contact": { "email": format!("e{i}@acme.test"), "phone": format!("+1415555{i:04}") },
        "job": { "title": "Analyst", "department": if i.is_multiple_of(2) { "Finance" } else { "Ops" } },
        "status": status
    })
}

struct Setup {
    scim: Scim2Server,
    hr: LoopbackSystem,
    teams: LoopbackSystem,
    engine: Engine,
    _dir: TempDir,
    cancel: CancellationToken,
}

impl Setup {
    async fn start(scim: Scim2Server, employees: usize) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (engine, secrets) = common::open_engine_with_secrets(dir.path()).await;
        let cancel = CancellationToken::new();
        let (addr, _) = concord::server::spawn_loopback(engine.clone(), 0, cancel.clone())
            .await
            .expect("webhook server");
        let hr = LoopbackSystem::start(
            "hr",
            "employee",
            "/employees",
            Some(format!("http://{addr}/hooks/hr")),
        )
        .await
        .expect("hr starts");
        let teams = LoopbackSystem::start(
            "teams",
            "team",
            "/teams",
            Some(format!("http://{addr}/hooks/teams")),
        )
        .await
        .expect("teams start");
        common::trust_hooks(&secrets, "hr", &hr);
        common::trust_hooks(&secrets, "teams", &teams);
        secrets
            .set("dir-token", &concord::secrets::Secret::new(TOKEN))
            .expect("memory store");
        engine
            .apply_workspace(&workspace(
                &hr.base_url(),
                &teams.base_url(),
                dir_config(scim.base(), "dir-token"),
            ))
            .await
            .expect("workspace applies");
        let s = Self {
            scim,
            hr,
            teams,
            engine,
            _dir: dir,
            cancel,
        };
        s.engine
            .poll("dir", |_| {})
            .await
            .expect("the directory's first listing");
        for i in 1..=employees {
            s.hr.edit(&format!("h{i}"), hr_employee(i));
        }
        s.settle().await;
        s
    }

    /// Waits until webhooks are accepted and the inbox and outbox are empty.
    async fn settle(&self) {
        common::settle(
            &self.engine,
            &[&self.hr, &self.teams],
            Duration::from_secs(90),
        )
        .await;
    }

    /// Polls the directory (changes since the last poll), then settles.
    async fn poll_dir(&self) {
        self.engine
            .poll("dir", |_| {})
            .await
            .expect("directory poll");
        self.settle().await;
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.engine.pool())
            .await
            .expect("count")
    }

    fn hr_record(&self, i: usize) -> Map<String, Value> {
        self.hr
            .record(&format!("h{i}"))
            .unwrap_or_else(|| panic!("HR holds h{i}"))
    }

    /// The engine's writes to the directory: (method, path, status) of every write request.
    fn dir_writes(&self) -> Vec<(String, String, u16)> {
        self.scim
            .requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .map(|r| (r.method, r.target, r.status))
            .collect()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn pointer<'a>(r: &'a Map<String, Value>, p: &str) -> Option<&'a Value> {
    r.get(p.split('/').nth(1)?)
        .and_then(|v| p.split('/').skip(2).try_fold(v, |v, k| v.get(k)))
}

fn typed<'a>(r: &'a Map<String, Value>, attribute: &str, kind: &str) -> Option<&'a str> {
    r.get(attribute)?
        .as_array()?
        .iter()
        .find(|e| e.get("type") == Some(&json!(kind)))?
        .get("value")?
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_from_hr_creates_everyone_with_people_on_leave_active_and_leavers_inactive() {
    let s = Setup::start(Scim2Server::start().await, 30).await;
    let users = s.scim.all("/Users").await;
    assert_eq!(
        users.len(),
        30,
        "every HR employee is provisioned once, on leave and terminated included"
    );
    for i in 1..=30 {
        let u = s.scim.user(&number(i)).await;
        let expected_active = i % 10 != 7;
        assert_eq!(
            u.get("active"),
            Some(&json!(expected_active)),
            "{}: people on leave stay active, terminated people are inactive",
            number(i)
        );
        assert_eq!(
            pointer(&u, "/name/givenName"),
            Some(&json!(format!("Given{i}"))),
            "nested names map to name.givenName"
        );
        assert_eq!(
            typed(&u, "emails", "work"),
            Some(format!("e{i}@acme.test").as_str()),
            "the work e-mail is emails[type=work]"
        );
        assert_eq!(
            typed(&u, "phoneNumbers", "work"),
            Some(format!("+1415555{i:04}").as_str()),
            "the work phone is phoneNumbers[type=work]"
        );
        assert_eq!(
            u.get(ENTERPRISE).and_then(|e| e.get("department")),
            Some(&json!(if i.is_multiple_of(2) {
                "Finance"
            } else {
                "Ops"
            })),
            "the department is the enterprise extension's"
        );
    }
    let writes = s.dir_writes();
    let creates = writes
        .iter()
        .filter(|(m, _, st)| m == "POST" && *st == 201)
        .count();
    assert_eq!(creates, 30, "one create per person: {writes:?}");
    assert!(
        writes.iter().all(|(m, _, st)| m != "PUT" && *st < 400),
        "no PUT and no refused write: {writes:?}"
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM dead_letters").await,
        0,
        "no dead letters"
    );

    // The mapper lists what the server's Schemas declare, extensions and typed elements
    // included, beside what samples show.
    let connector = s
        .engine
        .connector("dir")
        .expect("the directory's connector");
    let declared = connector
        .declared_fields("employee")
        .await
        .expect("schemas are read");
    for path in [
        "userName",
        "name/givenName",
        "emails[type=work].value",
        "phoneNumbers[type=mobile].value",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/employeeNumber",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/manager/value",
    ] {
        assert!(
            declared.iter().any(|p| p == path),
            "the mapper is offered {path}: {declared:?}"
        );
    }
    assert!(
        !declared
            .iter()
            .any(|p| p.starts_with("groups") || p == "password"),
        "read-only and write-only attributes are not offered"
    );
    let team = connector
        .declared_fields("team")
        .await
        .expect("schemas are read");
    assert!(
        team.iter().any(|p| p == "memberKeys") && team.iter().any(|p| p == "displayName"),
        "a group offers its members by key: {team:?}"
    );

    // The next poll asks only for what changed, by meta.lastModified.
    s.poll_dir().await;
    let gets: Vec<String> = s
        .scim
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.target.starts_with("/v2/Users?"))
        .map(|r| r.target)
        .collect();
    assert!(
        gets.iter()
            .any(|t| t.contains("filter=meta.lastModified ge ")),
        "incremental reads filter by meta.lastModified: {gets:?}"
    );
    assert!(
        s.dir_writes().len() == writes.len(),
        "reading the engine's own writes back writes nothing (echo suppression)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_on_both_sides_converge_and_unmapped_array_elements_survive() {
    let s = Setup::start(Scim2Server::start().await, 5).await;
    let u = s.scim.user(&number(1)).await;
    let id = u["id"].as_str().expect("an id").to_owned();
    // Someone adds a home e-mail and a mobile phone in the directory (unmapped), and changes
    // the work e-mail there.
    s.scim
        .patch("/Users", &id, json!([
            { "op": "add", "path": "emails", "value": [{ "type": "home", "value": "ada@home.test" }] },
            { "op": "add", "path": "phoneNumbers", "value": [{ "type": "mobile", "value": "+14155550999" }] },
            { "op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada.new@acme.test" },
            { "op": "replace", "path": "userName", "value": "ada.new@acme.test" }
        ]))
        .await;
    s.poll_dir().await;
    assert_eq!(
        pointer(&s.hr_record(1), "/contact/email"),
        Some(&json!("ada.new@acme.test")),
        "the directory's e-mail change reaches HR's nested contact"
    );
    assert_eq!(
        pointer(&s.hr_record(1), "/contact/phone"),
        Some(&json!("+14155550001")),
        "HR's phone, a sibling in the same nested object, is untouched"
    );
    // HR moves the person to another department.
    let mut edit = hr_employee(1);
    edit["contact"]["email"] = json!("ada.new@acme.test");
    edit["job"]["department"] = json!("Legal");
    s.hr.edit("h1", edit);
    s.settle().await;
    let u = s.scim.user(&number(1)).await;
    assert_eq!(
        u.get(ENTERPRISE).and_then(|e| e.get("department")),
        Some(&json!("Legal")),
        "HR's change reaches the directory"
    );
    assert_eq!(
        typed(&u, "emails", "work"),
        Some("ada.new@acme.test"),
        "the work e-mail holds the directory's value"
    );
    assert_eq!(
        typed(&u, "emails", "home"),
        Some("ada@home.test"),
        "the unmapped home e-mail survives every write"
    );
    assert_eq!(
        typed(&u, "phoneNumbers", "mobile"),
        Some("+14155550999"),
        "the unmapped mobile phone survives every write"
    );
    assert_eq!(
        typed(&u, "phoneNumbers", "work"),
        Some("+14155550001"),
        "the mapped work phone is still there"
    );
    let writes = s.dir_writes();
    assert!(
        writes
            .iter()
            .any(|(m, t, st)| m == "PATCH" && t.ends_with(&id) && *st < 300),
        "the change went as a PatchOp: {writes:?}"
    );
    assert!(
        writes.iter().all(|(m, _, _)| m != "PUT"),
        "never a PUT where PATCH is supported: {writes:?}"
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM dead_letters").await,
        0,
        "no dead letters"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_edit_is_refused_with_412_and_merged_never_overwritten() {
    let s = Setup::start(Scim2Server::start().await, 5).await;
    let id = s.scim.user(&number(2)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // The directory changes the title; the engine has not read it (no poll) when HR changes
    // the department of the same person.
    s.scim
        .patch(
            "/Users",
            &id,
            json!([{ "op": "replace", "path": "title", "value": "Lead Analyst" }]),
        )
        .await;
    let mut edit = hr_employee(2);
    edit["job"]["department"] = json!("Audit");
    s.hr.edit("h2", edit);
    s.settle().await;
    let refused = s
        .dir_writes()
        .into_iter()
        .filter(|(m, t, st)| m == "PATCH" && t.ends_with(&id) && *st == 412)
        .count();
    assert!(
        refused >= 1,
        "the write carried If-Match with the ETag the engine knew, and was refused with 412: {:?}",
        s.dir_writes()
    );
    let u = s.scim.user(&number(2)).await;
    assert_eq!(
        u.get("title"),
        Some(&json!("Lead Analyst")),
        "the directory's concurrent change is not overwritten"
    );
    assert_eq!(
        u.get(ENTERPRISE).and_then(|e| e.get("department")),
        Some(&json!("Audit")),
        "HR's change lands after the merge"
    );
    assert_eq!(
        pointer(&s.hr_record(2), "/job/title"),
        Some(&json!("Lead Analyst")),
        "the directory's change reaches HR"
    );
    assert_eq!(
        pointer(&s.hr_record(2), "/job/department"),
        Some(&json!("Audit"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_membership_edited_on_both_sides_is_merged_per_member() {
    let s = Setup::start(Scim2Server::start().await, 6).await;
    s.teams.edit(
        "t1",
        json!({ "team_id": "T1", "name": "Finance", "members": [number(1), number(2), number(3)] }),
    );
    s.settle().await;
    let ids: BTreeMap<String, String> = s
        .scim
        .all("/Users")
        .await
        .iter()
        .map(|u| {
            (
                u["externalId"].as_str().unwrap_or_default().to_owned(),
                u["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let group = s
        .scim
        .all("/Groups")
        .await
        .into_iter()
        .next()
        .expect("the team is provisioned as a group");
    let members = |g: &Map<String, Value>| -> BTreeSet<String> {
        g["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["value"].as_str())
            .map(str::to_owned)
            .collect()
    };
    let expect = |numbers: &[usize]| -> BTreeSet<String> {
        numbers.iter().map(|n| ids[&number(*n)].clone()).collect()
    };
    assert_eq!(
        members(&group),
        expect(&[1, 2, 3]),
        "members are the users of the HR team's employee numbers"
    );
    assert_eq!(group.get("displayName"), Some(&json!("Finance")));

    // The directory adds E0004 while HR removes E0001: neither knows of the other's change.
    let gid = group["id"].as_str().expect("id").to_owned();
    s.scim
        .patch(
            "/Groups",
            &gid,
            json!([{ "op": "add", "path": "members", "value": [{ "value": ids[&number(4)] }] }]),
        )
        .await;
    s.teams
        .edit("t1", json!({ "members": [number(2), number(3)] }));
    s.settle().await;
    s.poll_dir().await;
    let group = s
        .scim
        .all("/Groups")
        .await
        .into_iter()
        .next()
        .expect("the group");
    assert_eq!(
        members(&group),
        expect(&[2, 3, 4]),
        "both sides' changes survive: E0001 removed, E0004 added"
    );
    let hr_members: BTreeSet<String> = s
        .teams
        .record("t1")
        .and_then(|t| t.get("members").cloned())
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default();
    assert_eq!(
        hr_members,
        [number(2), number(3), number(4)].into_iter().collect(),
        "HR's team gets the directory's addition"
    );
    let group_writes: Vec<_> = s
        .dir_writes()
        .into_iter()
        .filter(|(_, t, _)| t.contains("/Groups/"))
        .collect();
    assert!(
        group_writes.iter().all(|(m, _, _)| m == "PATCH"),
        "membership is only ever patched, never replaced: {group_writes:?}"
    );
    assert_eq!(
        s.count("SELECT COUNT(*) FROM dead_letters").await,
        0,
        "no dead letters"
    );
    assert!(
        s.count("SELECT COUNT(*) FROM audit WHERE rule = 'rule4:merged_per_member'")
            .await
            >= 1,
        "the audit records the per-member merge"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leavers_are_deactivated_and_deletes_are_found_by_reconciliation() {
    let s = Setup::start(Scim2Server::start().await, 5).await;
    // HR terminates E0002 and deletes E0003.
    let mut edit = hr_employee(2);
    edit["status"] = json!("Terminated");
    s.hr.edit("h2", edit);
    s.hr.remove("h3");
    s.settle().await;
    assert_eq!(
        s.scim.user(&number(2)).await.get("active"),
        Some(&json!(false)),
        "a terminated person is deactivated"
    );
    let deleted_in_hr = s.scim.user(&number(3)).await;
    assert_eq!(
        deleted_in_hr.get("active"),
        Some(&json!(false)),
        "a person deleted in HR is deactivated in the directory, not removed"
    );
    assert!(
        s.dir_writes().iter().all(|(m, _, _)| m != "DELETE"),
        "deactivation sends no DELETE"
    );

    // Someone deletes E0004 in the directory; the directory sends no events, so only a
    // reconciliation finds it.
    let id = s.scim.user(&number(4)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    s.scim.delete("/Users", &id).await;
    s.poll_dir().await;
    assert!(
        !s.hr.was_deleted("h4"),
        "a poll of changes cannot see a delete"
    );
    let runs = s
        .engine
        .reconcile("dir", "test", |_| {})
        .await
        .expect("reconcile");
    assert!(
        runs.iter()
            .any(|r| r.object == "employee" && r.vanished == 1),
        "the run finds one vanished user: {runs:?}"
    );
    s.settle().await;
    assert!(
        s.hr.was_deleted("h4"),
        "the delete found by reconciliation propagates to HR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_patch_gets_the_resource_as_read_with_the_change() {
    let spc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": { "supported": false }, "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": 1000 }, "changePassword": { "supported": false },
        "sort": { "supported": true }, "etag": { "supported": true },
        "authenticationSchemes": []
    });
    let s = Setup::start(Scim2Server::start_with(Some(spc)).await, 3).await;
    let id = s.scim.user(&number(1)).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    s.scim
        .put("/Users", &id, json!({ "nickName": "Gigi" }))
        .await;
    let mut edit = hr_employee(1);
    edit["job"]["department"] = json!("Legal");
    s.hr.edit("h1", edit);
    s.settle().await;
    let u = s.scim.user(&number(1)).await;
    assert_eq!(
        u.get(ENTERPRISE).and_then(|e| e.get("department")),
        Some(&json!("Legal")),
        "the change lands"
    );
    assert_eq!(
        u.get("nickName"),
        Some(&json!("Gigi")),
        "an attribute Concord does not map survives the PUT"
    );
    let writes: Vec<_> = s
        .dir_writes()
        .into_iter()
        .filter(|(_, t, _)| t.ends_with(&id))
        .collect();
    assert!(
        writes.iter().any(|(m, _, st)| m == "PUT" && *st == 200),
        "without PATCH support the update is a PUT: {writes:?}"
    );
    assert!(
        writes.iter().all(|(m, _, _)| m != "PATCH"),
        "no PATCH is sent to a server that does not support it: {writes:?}"
    );
}

/// The engine as a child process, SIGKILLed at random moments while HR hires people: every
/// person must end up in the directory exactly once. A create whose answer was lost to a kill
/// is looked up by externalId (`filter=externalId eq "…"`) before it is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_provisioning_leaves_no_duplicate_user() {
    use common::process::{HookSecret, free_port, spawn_engine};
    use rand::{Rng, SeedableRng, rngs::StdRng};
    // `CONCORD_SCIM_CRASH_PEOPLE=1000` hires (and kills) for longer.
    let people: usize = std::env::var("CONCORD_SCIM_CRASH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let scim = Scim2Server::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let hr = LoopbackSystem::start(
        "hr",
        "employee",
        "/employees",
        Some(format!("http://127.0.0.1:{port}/hooks/hr")),
    )
    .await
    .expect("hr starts");
    let hook = HookSecret::store(&hr, "hr");
    // Answers take 300 ms, so a create can be caught on its way.
    let (slow, posts_in_flight) = scim.slow_base(Duration::from_millis(300)).await;
    let token = HookSecret::with_value("dir", &concord::secrets::Secret::new(TOKEN));
    let mut config = serde_json::to_value(workspace(
        &hr.base_url(),
        "http://127.0.0.1:9",
        dir_config(&slow, &token.name),
    ))
    .expect("workspace");
    config["systems"][0]["webhook_secret"] = json!(hook.name);
    config["systems"][2]["config"]["poll"] = json!({ "interval_secs": 0.5 });
    // Only employees: the teams system of the other tests has no server here.
    config["systems"].as_array_mut().expect("systems").remove(1);
    config["mappings"]
        .as_array_mut()
        .expect("mappings")
        .retain(|m| m["object"] == json!("employee"));
    config["objects"]
        .as_array_mut()
        .expect("objects")
        .retain(|o| o["name"] == json!("employee"));
    std::fs::write(dir.path().join("workspace.json"), config.to_string()).expect("workspace file");

    let mut engine = spawn_engine(dir.path(), port);
    let mut rng = StdRng::seed_from_u64(7);
    let mut killed = 0;
    let mut next_kill = Instant::now() + Duration::from_millis(rng.gen_range(400..1200));
    for hired in 1..=people {
        hr.edit(&format!("h{hired}"), hr_employee(hired));
        tokio::time::sleep(Duration::from_millis(rng.gen_range(30..70))).await;
        if Instant::now() >= next_kill {
            // Most kills land while a create is on its way (waiting at most a second for one).
            let wait = Instant::now() + Duration::from_secs(1);
            while posts_in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0
                && Instant::now() < wait
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            engine.kill().expect("SIGKILL");
            engine.wait().expect("reaped");
            killed += 1;
            engine = spawn_engine(dir.path(), port);
            next_kill = Instant::now() + Duration::from_millis(rng.gen_range(400..1200));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let users = loop {
        let users = s_users(&scim).await;
        if users.len() >= people || Instant::now() > deadline {
            break users;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    engine.kill().expect("stop engine");
    engine.wait().expect("reaped");
    let duplicates: Vec<_> = users.iter().filter(|(_, ids)| ids.len() > 1).collect();
    let log = scim.requests();
    let creates = log
        .iter()
        .filter(|r| r.method == "POST" && r.status == 201)
        .count();
    let refused = log
        .iter()
        .filter(|r| r.method == "POST" && r.status >= 400)
        .count();
    let lookups = log
        .iter()
        .filter(|r| r.target.contains("filter=externalId eq"))
        .count();
    println!(
        "scim crash test: {killed} kills while hiring {people}; scim2-server holds {} users, \
         received {creates} creates ({refused} refused) and {lookups} lookups by externalId",
        users.len()
    );
    assert!(
        duplicates.is_empty(),
        "no person is provisioned twice, whatever the kills: {duplicates:?}"
    );
    assert_eq!(
        users.len(),
        people,
        "every person hired in HR reaches the directory"
    );
    assert_eq!(creates, people, "exactly one successful create per person");
    assert_eq!(
        refused, 0,
        "no create is refused as a duplicate userName: the lost ones were looked up first"
    );
    assert!(
        killed >= 5,
        "the engine was killed during provisioning ({killed} times)"
    );
    assert!(
        lookups > 0,
        "some creates were in flight at a kill, and were looked up before being sent again"
    );
}

/// The directory's users by externalId: the distinct ids holding each (a listing paged while
/// users are being created can show one user on two pages; it is still one user).
async fn s_users(scim: &Scim2Server) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_key: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for u in scim.all("/Users").await {
        by_key
            .entry(u["externalId"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .insert(u["id"].as_str().unwrap_or_default().to_owned());
    }
    by_key
}

/// An admin tests a SCIM system before saving it: the console lists its first page and offers
/// the attributes its Schemas declare, with the token entered for this test only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsaved_scim_system_is_tested_from_the_console_with_its_declared_attributes() {
    let s = Setup::start(Scim2Server::start().await, 12).await;
    let console = concord::server::serve_console(
        s.engine.clone(),
        0,
        None,
        std::sync::Arc::new(concord::secrets::MemorySecrets::new()),
    )
    .await
    .expect("console");
    let draft = json!({ "id": "idp", "name": "New IdP", "connector": "scim",
                        "config": dir_config(s.scim.base(), "idp-token") });
    let answer: Value = reqwest::Client::new()
        .post(format!("http://{}/api/systems/test", console.addr))
        .bearer_auth(&console.admin_token)
        .json(&json!({ "system": draft, "object": "employee", "secrets": { "idp-token": TOKEN } }))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the console answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["ok"], json!(true), "the draft connects: {answer}");
    assert_eq!(
        (
            answer["page_count"].clone(),
            answer["total"].clone(),
            answer["sample_count"].clone()
        ),
        (json!(7), json!(12), json!(5)),
        "the test counts the 7 users the first page held of 12, and shows 5 as samples: {answer}"
    );
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("held 7 records of 12; showing the first 5")),
        "the message says what the page held, not the sample size: {answer}"
    );
    let fields = answer["fields"].as_object().cloned().unwrap_or_default();
    for path in [
        "emails[type=work].value",
        "emails[type=home].value",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/manager/value",
    ] {
        assert!(
            fields.contains_key(path),
            "a declared attribute no sample holds is offered: {path} in {fields:?}"
        );
    }
    assert!(
        fields
            .get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User/department")
            .is_some_and(|v| !v.is_null()),
        "an attribute the samples hold comes with a sample value: {fields:?}"
    );
}
