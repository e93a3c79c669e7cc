//! The `sql` connector against real SQLite files: paging in key order, incremental reads,
//! versioned writes, unknown columns refused, views with statements, and the change table.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::secrets::MemorySecrets;

struct Lite {
    _dir: tempfile::TempDir,
    pool: sqlx::SqlitePool,
    connector: SqlConnector,
}

async fn lite(object: Value) -> Lite {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("hr.db");
    let pool = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .expect("sqlite opens");
    sqlx::raw_sql(
        "CREATE TABLE employees (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE,
           salary REAL, version INTEGER NOT NULL DEFAULT 1, updated_at TEXT NOT NULL DEFAULT '2024-01-01T00:00:00.000Z');
         CREATE VIEW staff AS SELECT id, name, email, version FROM employees;",
    )
    .execute(&pool)
    .await
    .expect("schema");
    for n in 1..=25 {
        sqlx::query("INSERT INTO employees (id, name, email, salary) VALUES (?, ?, ?, ?)")
            .bind(n)
            .bind(format!("Person {n}"))
            .bind(format!("p{n}@acme.example"))
            .bind(1000.5 * f64::from(n))
            .execute(&pool)
            .await
            .expect("seed");
    }
    let system: SystemConfig = serde_json::from_value(json!({
        "id": "db", "name": "HR database", "connector": "sql",
        "config": { "url": format!("sqlite://{}", path.display()), "objects": { "employee": object } }
    }))
    .expect("system");
    let connector = SqlConnector::from_config_with(
        &system,
        Arc::new(MemorySecrets::new()),
        Arc::new(crate::secrets::AsConfigured),
    )
    .expect("connector");
    Lite {
        _dir: dir,
        pool,
        connector,
    }
}

fn table() -> Value {
    json!({ "table": "employees", "key_column": "id", "version_column": "version",
            "updated_at_column": "updated_at", "page_size": 10 })
}

fn write(payload: Value, if_match: Option<&str>) -> WriteRequest {
    WriteRequest {
        object: "employee".into(),
        payload: payload.as_object().cloned().unwrap_or_default(),
        idempotency_key: "k".into(),
        if_match: if_match.map(str::to_owned),
        assignments: Vec::new(),
    }
}

#[tokio::test]
async fn a_table_is_listed_in_key_order_in_pages_with_typed_values() {
    let l = lite(table()).await;
    let mut token = None;
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = l
            .connector
            .list_page("employee", token.as_deref())
            .await
            .expect("a page");
        pages += 1;
        ids.extend(page.records.iter().map(|r| r.external_id.clone()));
        match page.next {
            Some(n) => token = Some(n),
            None => break,
        }
    }
    assert_eq!(pages, 3, "25 rows at 10 a page are 3 pages");
    let expected: Vec<String> = (1..=25).map(|n| n.to_string()).collect();
    assert_eq!(ids, expected, "rows come once each, in key order");
    let first = l
        .connector
        .get("employee", "2")
        .await
        .expect("get")
        .expect("row 2");
    assert_eq!(
        first.record["salary"],
        json!(2001.0),
        "a real is a JSON number"
    );
    assert_eq!(first.record["id"], json!(2), "an integer is a JSON number");
    assert_eq!(
        first.etag.as_deref(),
        Some("1"),
        "the version column is the concurrency token"
    );
    assert_eq!(first.modified.as_deref(), Some("2024-01-01T00:00:00.000Z"));
}

#[tokio::test]
async fn updates_check_the_version_and_tell_a_conflict_from_a_missing_row() {
    let l = lite(table()).await;
    let out = l
        .connector
        .update("3", &write(json!({ "name": "Renamed" }), Some("1")))
        .await
        .expect("the update with the current version applies");
    assert_eq!(
        out.etag.as_deref(),
        Some("2"),
        "the connector increments the version"
    );
    let row: (String, i64, String) =
        sqlx::query_as("SELECT name, version, updated_at FROM employees WHERE id = 3")
            .fetch_one(&l.pool)
            .await
            .expect("row");
    assert_eq!((row.0.as_str(), row.1), ("Renamed", 2));
    assert!(
        row.2.as_str() > "2024-01-01T00:00:00.000Z",
        "updated_at moves: {}",
        row.2
    );

    let stale = l
        .connector
        .update("3", &write(json!({ "name": "Stale" }), Some("1")))
        .await;
    assert!(
        matches!(stale, Err(ConnectorError::VersionConflict { .. })),
        "a write against an old version is a conflict: {stale:?}"
    );
    let gone = l
        .connector
        .update("99", &write(json!({ "name": "Nobody" }), Some("1")))
        .await;
    assert!(
        matches!(gone, Err(ConnectorError::NotFound { .. })),
        "a write to a missing row is not found: {gone:?}"
    );
    let name: String = sqlx::query_scalar("SELECT name FROM employees WHERE id = 3")
        .fetch_one(&l.pool)
        .await
        .expect("row");
    assert_eq!(name, "Renamed", "a refused write changes nothing");
}

#[tokio::test]
async fn unknown_columns_and_broken_constraints_are_rejected_and_nothing_is_written() {
    let l = lite(table()).await;
    let bad = l
        .connector
        .create(&write(
            json!({ "name": "X", "nickname\" = 1; --": "x" }),
            None,
        ))
        .await;
    match bad {
        Err(ConnectorError::Rejected { body, .. }) => {
            assert!(
                body.contains("has no column"),
                "the message names the problem: {body}"
            )
        }
        other => panic!("an unknown column is rejected: {other:?}"),
    }
    let dup = l
        .connector
        .create(&write(
            json!({ "name": "Dup", "email": "p1@acme.example" }),
            None,
        ))
        .await;
    assert!(
        matches!(dup, Err(ConnectorError::Rejected { status: 422, .. })),
        "a unique violation is rejected, not retried: {dup:?}"
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM employees")
        .fetch_one(&l.pool)
        .await
        .expect("count");
    assert_eq!(count, 25, "nothing was written");
    let created = l
        .connector
        .create(&write(
            json!({ "name": "New", "email": "new@acme.example" }),
            None,
        ))
        .await
        .expect("a create");
    assert_eq!(created.external_id, "26", "the new key comes back");
}

#[tokio::test]
async fn changes_since_a_cursor_come_back_in_pages() {
    let l = lite(table()).await;
    for id in [4, 9] {
        sqlx::query("UPDATE employees SET updated_at = '2024-02-01T00:00:00.000Z' WHERE id = ?")
            .bind(id)
            .execute(&l.pool)
            .await
            .expect("edit");
    }
    let page = l
        .connector
        .changes_page("employee", "2024-01-15T00:00:00.000Z", None)
        .await
        .expect("changes");
    let ids: Vec<&str> = page
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(ids, ["4", "9"], "only rows changed since the cursor");
}

#[tokio::test]
async fn the_change_table_captures_inserts_updates_and_deletes_once_installed() {
    let mut object = table();
    object["change_capture"] = json!("table");
    let l = lite(object).await;
    let before = l.connector.capture_status().await.expect("status");
    assert!(
        !before.installed,
        "nothing is installed until an admin asks"
    );
    assert!(before.sql.contains("CREATE TRIGGER"), "{}", before.sql);
    let first = l.connector.list_page("employee", None).await.expect("list");
    assert_eq!(
        first.cursor, None,
        "without the change table, no change cursor"
    );

    let after = l.connector.install_capture().await.expect("install");
    assert!(after.installed);
    let start = l.connector.list_page("employee", None).await.expect("list");
    let cursor = start.cursor.expect("a change cursor once installed");
    sqlx::raw_sql(
        "INSERT INTO employees (id, name) VALUES (30, 'Thirty');
         UPDATE employees SET name = 'Five' WHERE id = 5;
         DELETE FROM employees WHERE id = 6;",
    )
    .execute(&l.pool)
    .await
    .expect("edits");
    let page = l
        .connector
        .changes_page("employee", &cursor, None)
        .await
        .expect("changes");
    let ids: Vec<&str> = page
        .records
        .iter()
        .map(|r| r.external_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["30", "5"],
        "the insert and the update come back as rows"
    );
    assert_eq!(
        page.deleted,
        ["6"],
        "the delete comes back as a deleted key"
    );
    let again = l
        .connector
        .changes_page("employee", page.cursor.as_deref().expect("cursor"), None)
        .await
        .expect("changes");
    assert!(
        again.records.is_empty() && again.deleted.is_empty(),
        "the cursor moved past them"
    );
}

#[tokio::test]
async fn a_view_is_written_through_its_statements() {
    let l = lite(json!({
        "view": "staff", "key_column": "id", "version_column": "version",
        "insert": "INSERT INTO employees (name, email) VALUES (:name, :email) RETURNING id",
        "update": "UPDATE employees SET name = :name, email = :email, version = version + 1 WHERE id = :id AND version = :version",
        "delete": "DELETE FROM employees WHERE id = :id"
    }))
    .await;
    let created = l
        .connector
        .create(&write(
            json!({ "name": "Viewed", "email": "v@acme.example" }),
            None,
        ))
        .await
        .expect("insert statement");
    assert_eq!(created.external_id, "26");
    l.connector
        .update("26", &write(json!({ "name": "Viewed Again" }), Some("1")))
        .await
        .expect("update statement");
    let row = l
        .connector
        .get("employee", "26")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(row.record["name"], json!("Viewed Again"));
    assert_eq!(
        row.record["email"],
        json!("v@acme.example"),
        "fields not written are kept"
    );
    let stale = l
        .connector
        .update("26", &write(json!({ "name": "Stale" }), Some("1")))
        .await;
    assert!(
        matches!(stale, Err(ConnectorError::VersionConflict { .. })),
        "{stale:?}"
    );
    l.connector
        .delete("26", &write(json!({}), None))
        .await
        .expect("delete statement");
    assert!(
        l.connector
            .get("employee", "26")
            .await
            .expect("get")
            .is_none()
    );
}

#[test]
fn placeholders_skip_casts_and_quotes() {
    let (sql, names) = write::placeholders(
        "UPDATE t SET a = :a::int, b = ':not' WHERE id = :id AND a = :a",
        |n, _| format!("${n}"),
    );
    assert_eq!(
        sql,
        "UPDATE t SET a = $1::int, b = ':not' WHERE id = $2 AND a = $1"
    );
    assert_eq!(names, ["a", "id"]);
}

#[test]
fn configs_name_the_bad_key_and_refuse_passwords_in_urls() {
    let parse = |c: Value| {
        SqlConfig::parse("db", &c)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let obj = json!({ "employee": { "table": "employees", "key_column": "id" } });
    assert!(
        parse(json!({ "url": "postgres://u:hunter2@h/db", "objects": obj }))
            .contains("password_secret")
    );
    assert!(
        parse(json!({ "url": "postgres://u@h/db", "objects": obj, "extra": 1 })).contains("extra")
    );
    assert!(
        parse(json!({ "url": "postgres://u@h/db", "objects": { "employee": { "table": "x; DROP", "key_column": "id" } } }))
            .contains("objects.employee.table")
    );
    assert!(
        parse(json!({ "url": "sqlite:///tmp/a.db", "objects": { "employee": { "table": "t", "key_column": "id", "change_capture": "notify" } } }))
            .contains("change_capture")
    );
    let ok = SqlConfig::parse(
        "db",
        &json!({ "url": "postgres://u@db.example:6543/hr", "password_secret": "pg", "objects": obj }),
    )
    .expect("valid");
    assert_eq!(
        ok.sent_secrets(),
        [("pg".to_owned(), "postgres://db.example:6543".to_owned())]
    );
}
