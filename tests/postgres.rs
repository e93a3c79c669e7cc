//! Concord against a real PostgreSQL 15 cluster: each test runs `initdb` and `pg_ctl` from
//! /usr/lib/postgresql/15/bin on a private port and socket directory (as the `postgres` user
//! when the test runs as root), with password authentication over 127.0.0.1, and stops the
//! cluster when it ends, pass or fail. The other side is a Concord-side HTTP system
//! (`LoopbackSystem`) that posts a webhook for every change.
//!
//! Proven: two-way sync of a table; a version conflict followed by a merge in which the
//! database's edit and the other side's edit (different fields) both survive; deletes caught
//! by the change table and by reconciliation; the change table's SQL shown by the console,
//! installed only on an admin's request, audited, and capturing insert, update and delete;
//! LISTEN/NOTIFY waking the poll at once; writes during a database restart retried as
//! retryable and delivered once after it.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use concord::Engine;
use concord::api::auth::{Principal, Role, Tokens};
use concord::loopback::LoopbackSystem;
use concord::model::WorkspaceConfig;
use concord::secrets::SecretStore;
use serde_json::{Value, json};
use sqlx::PgPool;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const BIN: &str = "/usr/lib/postgresql/15/bin";
const PASSWORD: &str = "s3cret-pg-pass";

/// A private PostgreSQL cluster, stopped on drop.
struct Cluster {
    dir: TempDir,
    port: u16,
}

fn as_postgres(program: &str) -> Command {
    // initdb refuses to run as root.
    let root =
        std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0);
    if root.unwrap_or(false) {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &format!("{BIN}/{program}")]);
        c
    } else {
        Command::new(format!("{BIN}/{program}"))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Cluster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (data, sock, pwfile) = (
            dir.path().join("data"),
            dir.path().join("sock"),
            dir.path().join("pw"),
        );
        std::fs::create_dir_all(&sock).expect("socket dir");
        std::fs::write(&pwfile, PASSWORD).expect("password file");
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status();
        let ok = as_postgres("initdb")
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
            ])
            .arg(&pwfile)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(ok.success(), "initdb succeeds");
        let c = Self {
            dir,
            port: free_port(),
        };
        c.pg_ctl_start().await;
        c
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn pg_ctl_start(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().join("sock").display()
        );
        let ok = as_postgres("pg_ctl")
            .args(["-D"])
            .arg(self.data())
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "30", "start"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("pg_ctl runs");
        assert!(ok.success(), "the cluster starts within 30 s");
    }

    fn stop(&self) {
        let _ = as_postgres("pg_ctl")
            .args(["-D"])
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "30", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn pool(&self) -> PgPool {
        let url = format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        );
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(&url)
            .await
            .expect("the test connects")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The database (`pg`: first/last names, a version column, updated_at) and the hub (full
/// names); deletes propagate.
fn workspace(pg_url: &str, capture: &str, hub_url: &str) -> WorkspaceConfig {
    let mut employee = concord::schema::employee();
    employee.delete_policy = concord::model::DeletePolicy::Propagate;
    serde_json::from_value(json!({
        "systems": [
            { "id": "pg", "name": "HR database", "connector": "sql", "config": {
                "url": pg_url, "password_secret": "pg-password",
                "objects": { "employee": { "table": "employees", "key_column": "id",
                    "version_column": "version", "updated_at_column": "updated_at",
                    "page_size": 4, "change_capture": capture } },
                // With LISTEN/NOTIFY a poll is only the fallback: an hour, so a change that
                // arrives sooner was announced.
                "poll": { "interval_secs": if capture == "notify" { 3600.0 } else { 0.2 } } } },
            { "id": "hub", "name": "Hub", "connector": "rest", "webhook_secret": "hub-webhook",
              "config": { "base_url": hub_url, "objects": { "employee": {
                  "path": "/employees", "version_field": "version", "concurrency": { "style": "etag" } } } } }
        ],
        "objects": [employee],
        "mappings": [
            { "system": "pg", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employee_number"] },
                { "canonical": ["given_name"], "system": ["first_name"] },
                { "canonical": ["family_name"], "system": ["last_name"] },
                { "canonical": ["work_email"], "system": ["email"] },
                { "canonical": ["job_title"], "system": ["title"] }
            ]},
            { "system": "hub", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employee_id"] },
                { "canonical": ["given_name", "family_name"], "system": ["full_name"], "transform": { "kind": "full_name" } },
                { "canonical": ["work_email"], "system": ["email"] },
                { "canonical": ["job_title"], "system": ["title"] }
            ]}
        ]
    }))
    .expect("a valid workspace")
}

struct Setup {
    db: PgPool,
    hub: LoopbackSystem,
    engine: Engine,
    dir: TempDir,
    cancel: CancellationToken,
    cluster: Cluster,
}

impl Setup {
    async fn start(capture: &str) -> Self {
        let cluster = Cluster::start().await;
        let db = cluster.pool().await;
        sqlx::raw_sql(
            "CREATE TABLE employees (id SERIAL PRIMARY KEY, employee_number TEXT UNIQUE NOT NULL,
               first_name TEXT, last_name TEXT, email TEXT, title TEXT,
               version INTEGER NOT NULL DEFAULT 1, updated_at TIMESTAMPTZ NOT NULL DEFAULT now());
             INSERT INTO employees (employee_number, first_name, last_name, email, title)
             SELECT 'E' || lpad(n::text, 4, '0'), 'Given' || n, 'Family' || n, 'e' || n || '@acme.example', 'Analyst'
             FROM generate_series(1, 10) n;",
        )
        .execute(&db)
        .await
        .expect("schema and seed");
        let dir = tempfile::tempdir().expect("temp dir");
        let (engine, secrets) = common::open_engine_with_secrets(dir.path()).await;
        secrets
            .set(
                "pg-password",
                &concord::secrets::Secret::new(PASSWORD.to_owned()),
            )
            .expect("the password goes to the secret store");
        let cancel = CancellationToken::new();
        let (addr, _) = concord::server::spawn_loopback(engine.clone(), 0, cancel.clone())
            .await
            .expect("webhook server");
        let hub = LoopbackSystem::start(
            "hub",
            "employee",
            "/employees",
            Some(format!("http://{addr}/hooks/hub")),
        )
        .await
        .expect("hub starts");
        common::trust_hooks(&secrets, "hub", &hub);
        engine
            .apply_workspace(&workspace(&cluster.url(), capture, &hub.base_url()))
            .await
            .expect("workspace applies");
        Self {
            db,
            hub,
            engine,
            dir,
            cancel,
            cluster,
        }
    }

    async fn settle(&self) {
        common::settle(&self.engine, &[&self.hub], Duration::from_secs(60)).await;
    }

    async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.engine.pool())
            .await
            .expect("engine query")
    }

    async fn poll(&self) {
        self.engine
            .poll("pg", |_| {})
            .await
            .expect("the database is polled");
        self.settle().await;
    }

    fn hub_employee(&self, number: &str) -> Option<(String, serde_json::Map<String, Value>)> {
        self.hub
            .records()
            .into_iter()
            .find(|(_, r)| r.get("employee_id") == Some(&json!(number)))
    }

    async fn row(&self, number: &str) -> Option<(String, String, String, i32)> {
        sqlx::query_as(
            "SELECT last_name, email, title, version FROM employees WHERE employee_number = $1",
        )
        .bind(number)
        .fetch_optional(&self.db)
        .await
        .expect("db query")
    }

    async fn db_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM employees")
            .fetch_one(&self.db)
            .await
            .expect("count")
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[tokio::test]
async fn a_postgres_table_syncs_both_ways_and_a_version_conflict_is_merged() {
    let s = Setup::start("none").await;
    s.poll().await;
    assert_eq!(
        s.hub.records().len(),
        10,
        "every row of the table reaches the hub"
    );
    let (hub3, h3) = s.hub_employee("E0003").expect("E0003 in the hub");
    assert_eq!(
        h3["full_name"],
        json!("Given3 Family3"),
        "first and last name are joined"
    );

    // A change in the hub is one versioned UPDATE in the database.
    s.hub.edit(&hub3, json!({ "title": "Lead" }));
    s.settle().await;
    let row = s.row("E0003").await.expect("row");
    assert_eq!(
        (row.2.as_str(), row.3),
        ("Lead", 2),
        "the hub's title is written once and the version goes 1 -> 2"
    );

    // A change made directly in the database reaches the hub at the next poll.
    sqlx::query("UPDATE employees SET last_name = 'Direct', version = version + 1, updated_at = now() WHERE employee_number = 'E0004'")
        .execute(&s.db).await.expect("direct edit");
    s.poll().await;
    assert_eq!(
        s.hub_employee("E0004").expect("E0004").1["full_name"],
        json!("Given4 Direct"),
        "a direct edit is polled"
    );

    // Concurrent edits: the database changes the email, the hub the title, before any poll.
    sqlx::query("UPDATE employees SET email = 'db5@acme.example', version = version + 1, updated_at = now() WHERE employee_number = 'E0005'")
        .execute(&s.db).await.expect("db edit");
    let (hub5, _) = s.hub_employee("E0005").expect("E0005");
    s.hub.edit(&hub5, json!({ "title": "Director" }));
    s.settle().await;
    s.poll().await;
    let row = s.row("E0005").await.expect("row");
    assert_eq!(
        row.1, "db5@acme.example",
        "the database's edit survives the hub's write (no lost update)"
    );
    assert_eq!(
        row.2, "Director",
        "the hub's edit reaches the database after the conflict is merged"
    );
    assert_eq!(
        row.3, 3,
        "the version moved once for the direct edit and once for the merged write"
    );
    assert_eq!(
        s.hub_employee("E0005").expect("E0005").1["email"],
        json!("db5@acme.example"),
        "the database's edit reaches the hub"
    );
    let record = s
        .engine
        .record_for("pg", "employee", "5")
        .await
        .expect("lookup")
        .expect("linked");
    let rules: Vec<String> = s
        .engine
        .audit_for(record, None)
        .await
        .expect("audit")
        .into_iter()
        .map(|a| a.rule)
        .collect();
    assert!(
        rules
            .iter()
            .any(|r| r.contains("conflict") || r.contains("reread") || r.contains("version")),
        "the audit records the version conflict and its re-read: {rules:?}"
    );

    // A hub create is one INSERT; a write naming an unknown column is refused.
    s.hub.edit("new-1", json!({ "employee_id": "E0100", "full_name": "New Person", "email": "new@acme.example", "title": "Intern" }));
    s.settle().await;
    assert_eq!(
        s.db_count().await,
        11,
        "the hub's new employee is inserted once"
    );
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM dead_letters").await,
        0,
        "nothing failed"
    );
}

#[tokio::test]
async fn the_change_table_is_shown_installed_on_request_and_carries_deletes() {
    let s = Setup::start("table").await;
    let tokens = Arc::new(Tokens::default());
    let admin = tokens.issue(Principal::new("ana", Role::Admin));
    let viewer = tokens.issue(Principal::new("vic", Role::Viewer));
    let (base, client) = common::serve_console(&s.engine, tokens, "concord-pg-test").await;
    let url = format!("{base}/api/systems/pg/change-capture");

    let shown: Value = client
        .get(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(
        shown["installed"],
        json!(false),
        "nothing is installed before an admin asks"
    );
    assert!(
        shown["sql"]
            .as_str()
            .is_some_and(|q| q.contains("CREATE TABLE IF NOT EXISTS concord_changes")),
        "the SQL is shown first: {shown}"
    );
    let triggers: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM pg_trigger WHERE tgname LIKE 'concord%'")
            .fetch_one(&s.db)
            .await
            .expect("q");
    assert_eq!(triggers, 0, "showing the SQL installs nothing");
    let refused = client
        .post(&url)
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("POST");
    assert_eq!(
        refused.status().as_u16(),
        403,
        "only an admin installs change capture"
    );

    s.poll().await;
    assert_eq!(
        s.hub.records().len(),
        10,
        "the listing works before the install"
    );
    let installed: Value = client
        .post(&url)
        .bearer_auth(&admin)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(installed["installed"], json!(true), "installed on request");
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM audit WHERE rule = 'config:change_capture_installed'")
            .await,
        1,
        "the install is one audit entry"
    );

    sqlx::raw_sql(
        "INSERT INTO employees (employee_number, first_name, last_name, email, title) VALUES ('E0011', 'Given11', 'Family11', 'e11@acme.example', 'Analyst');
         UPDATE employees SET title = 'Captured', version = version + 1 WHERE employee_number = 'E0002';
         DELETE FROM employees WHERE employee_number = 'E0007';",
    )
    .execute(&s.db).await.expect("direct edits");
    let ops: Vec<String> = sqlx::query_scalar("SELECT op FROM concord_changes ORDER BY seq")
        .fetch_all(&s.db)
        .await
        .expect("changes");
    assert_eq!(
        ops,
        ["insert", "update", "delete"],
        "the triggers capture insert, update and delete"
    );
    // Without updated_at moving, only the change table can report the update.
    s.poll().await; // moves to the change table's cursor
    s.poll().await;
    assert!(
        s.hub_employee("E0011").is_some(),
        "the insert reaches the hub"
    );
    assert_eq!(
        s.hub_employee("E0002").expect("E0002").1["title"],
        json!("Captured"),
        "the update reaches the hub"
    );
    assert!(
        s.hub_employee("E0007").is_none(),
        "the delete found in the change table is propagated to the hub"
    );
    assert_eq!(s.hub.records().len(), 10, "ten employees remain in the hub");
}

#[tokio::test]
async fn a_row_deleted_without_change_capture_is_caught_by_reconciliation() {
    let s = Setup::start("none").await;
    s.poll().await;
    sqlx::query("DELETE FROM employees WHERE employee_number = 'E0009'")
        .execute(&s.db)
        .await
        .expect("delete");
    s.poll().await;
    assert!(
        s.hub_employee("E0009").is_some(),
        "a poll by updated_at cannot see a delete"
    );
    s.engine
        .reconcile("pg", "test", |_| {})
        .await
        .expect("reconcile");
    s.settle().await;
    assert!(
        s.hub_employee("E0009").is_none(),
        "reconciliation finds the row gone and the delete propagates"
    );
    assert_eq!(s.hub.records().len(), 9, "only that employee is deleted");
}

#[tokio::test]
async fn writes_during_a_database_restart_are_retried_and_land_once() {
    let s = Setup::start("none").await;
    s.poll().await;
    s.cluster.stop();
    let (hub1, _) = s.hub_employee("E0001").expect("E0001");
    s.hub.edit(&hub1, json!({ "title": "While Down" }));
    s.hub.edit(
        "new-2",
        json!({ "employee_id": "E0200", "full_name": "Down Time", "email": "down@acme.example" }),
    );
    // Let delivery try (and fail) against the stopped database, one round at a time: a
    // connection attempt may wait out the connect timeout, and run_until_idle would go on
    // retrying through every attempt before it looks at its deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s
        .scalar("SELECT COALESCE(MAX(attempts), 0) FROM outbox")
        .await
        < 2
    {
        assert!(Instant::now() < deadline, "delivery retried within 60 s");
        while s.engine.process_inbox().await.expect("apply") > 0 {}
        s.engine.deliver("pg").await.expect("a delivery round");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        s.scalar("SELECT COUNT(*) FROM dead_letters").await,
        0,
        "a stopped database is retryable: no dead letter"
    );
    s.cluster.pg_ctl_start().await;
    s.settle().await;
    let row = s.row("E0001").await.expect("row");
    assert_eq!(
        row.2, "While Down",
        "the update made while the database was down lands after it restarts"
    );
    let created: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM employees WHERE employee_number = 'E0200'")
            .fetch_one(&s.db)
            .await
            .expect("q");
    assert_eq!(
        created, 1,
        "the create made while it was down lands exactly once"
    );
    assert_eq!(s.db_count().await, 11, "no duplicates, no loss");
    let _ = &s.dir;
}

#[tokio::test]
async fn a_notification_wakes_the_poll_at_once() {
    let s = Setup::start("notify").await;
    let tokens = Arc::new(Tokens::default());
    let admin = tokens.issue(Principal::new("ana", Role::Admin));
    let (base, client) = common::serve_console(&s.engine, tokens, "concord-pg-notify-test").await;
    let installed: Value = client
        .post(format!("{base}/api/systems/pg/change-capture"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json");
    assert_eq!(
        installed["installed"],
        json!(true),
        "the notify triggers are installed on request: {installed}"
    );
    s.poll().await;
    assert_eq!(
        s.hub.records().len(),
        10,
        "the first listing reaches the hub"
    );
    let running = s.engine.start(s.cancel.clone());
    // Let the poll loop make its first pass and wait on the channel.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let changed_at = Instant::now();
    sqlx::raw_sql(
        "UPDATE employees SET title = 'Notified', version = version + 1, updated_at = now() WHERE employee_number = 'E0003'",
    )
    .execute(&s.db)
    .await
    .expect("a direct edit");
    let deadline = changed_at + Duration::from_secs(10);
    while s.hub_employee("E0003").map(|(_, r)| r["title"].clone()) != Some(json!("Notified")) {
        assert!(
            Instant::now() < deadline,
            "the change reaches the hub within seconds although the next poll is an hour away: \
             the notification woke the poll"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("notify to hub: {:?}", changed_at.elapsed());
    running.shutdown(Duration::from_secs(5)).await;
}
