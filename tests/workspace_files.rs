//! Config as code: `concord workspace export` prints the stored workspace as TOML, `diff`
//! shows what a file would change key by key, and `apply` stores it (asked first, or `--yes`),
//! audited. The demo's workspace (three connectors, every kind of transform, policies,
//! breakers, effective dates) round-trips with every key kept.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use concord::demo::workspace::{Urls, workspace};

fn concord(db: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_concord"))
        .arg("workspace")
        .arg("--db")
        .arg(db)
        .args(args)
        .env("RUST_LOG", "concord=warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("concord starts");
    if let Some(input) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        pipe.write_all(input.as_bytes()).expect("stdin");
    }
    child.wait_with_output().expect("concord finishes")
}

/// The demo's workspace (REST and SCIM systems, every kind of transform), pointing nowhere.
fn demo_workspace() -> concord::model::WorkspaceConfig {
    workspace(
        Urls {
            hris: "http://127.0.0.1:9",
            payroll: "http://127.0.0.1:9",
            directory: "http://127.0.0.1:9/scim/v2",
        },
        7,
    )
    .expect("the demo workspace")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_workspace_round_trips_through_toml_and_a_changed_key_shows_in_the_diff() {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("state.db");
    let demo = demo_workspace();
    {
        let engine = concord::runtime::Engine::open(&db, Default::default())
            .await
            .expect("engine");
        engine.apply_workspace(&demo).await.expect("stored");
    }

    let exported = concord(&db, &["export"], None);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let toml_file = dir.path().join("workspace.toml");
    std::fs::write(&toml_file, text(&exported)).expect("file");
    let back: concord::model::WorkspaceConfig =
        toml::from_str(&text(&exported)).expect("the export is TOML a workspace reads from");
    assert_eq!(
        serde_json::to_value(&back).expect("json"),
        serde_json::to_value(&demo).expect("json"),
        "every key survives the round trip"
    );
    let same = concord(
        &db,
        &["diff", toml_file.to_str().expect("path"), "--exit-code"],
        None,
    );
    assert!(same.status.success(), "an unchanged export diffs clean");
    assert_eq!(text(&same).trim(), "no changes");

    // One key changed in the file: the diff names it, and apply asks first.
    let changed = text(&exported).replacen("interval_secs = ", "interval_secs = 1", 1);
    assert_ne!(
        changed,
        text(&exported),
        "the export has a poll interval to change"
    );
    std::fs::write(&toml_file, &changed).expect("file");
    let shown = concord(
        &db,
        &["diff", toml_file.to_str().expect("path"), "--exit-code"],
        None,
    );
    assert_eq!(
        shown.status.code(),
        Some(1),
        "--exit-code says something would change"
    );
    let lines: Vec<String> = text(&shown).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "exactly one change: {lines:?}");
    assert!(
        lines[0].starts_with("~ systems[hris].config.poll.interval_secs: "),
        "the change names the system and key: {lines:?}"
    );
    let declined = concord(
        &db,
        &["apply", toml_file.to_str().expect("path")],
        Some("n\n"),
    );
    assert!(
        text(&declined).contains("nothing applied"),
        "{}",
        text(&declined)
    );
    assert!(
        !concord(
            &db,
            &["diff", toml_file.to_str().expect("path"), "--exit-code"],
            None
        )
        .status
        .success(),
        "declining stores nothing"
    );
    let applied = concord(
        &db,
        &["apply", toml_file.to_str().expect("path"), "--yes"],
        None,
    );
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    assert!(
        text(&applied).contains("applied 1 changes"),
        "{}",
        text(&applied)
    );
    let after = concord(
        &db,
        &["diff", toml_file.to_str().expect("path"), "--exit-code"],
        None,
    );
    assert!(
        after.status.success(),
        "once applied, the file and the store agree"
    );

    let engine = concord::runtime::Engine::open(&db, Default::default())
        .await
        .expect("engine");
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit WHERE rule = 'config:workspace_applied'")
            .fetch_one(engine.pool())
            .await
            .expect("audit");
    assert_eq!(applied, 1, "applying is audited once; declining is not");
}

/// The schema in docs/, as `concord workspace schema` prints it.
fn schema() -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["workspace", "schema"])
        .output()
        .expect("concord runs");
    serde_json::from_slice(&out.stdout).expect("the schema is JSON")
}

#[test]
fn the_schema_in_docs_is_current_and_validates_every_connectors_config() {
    let generated = schema();
    let kept: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/workspace.schema.json"
        ))
        .expect("docs/workspace.schema.json"),
    )
    .expect("JSON");
    assert_eq!(
        kept, generated,
        "docs/workspace.schema.json is what `concord workspace schema` prints (run scripts/gen-types.sh)"
    );
    let validator = jsonschema::validator_for(&generated).expect("a valid JSON Schema");
    let demo = demo_workspace();
    let demo = serde_json::to_value(&demo).expect("json");
    let errors: Vec<String> = validator
        .iter_errors(&demo)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "the demo workspace (REST, SCIM) validates: {errors:?}"
    );

    // Mistakes a person makes are caught where they are.
    let mut wrong = demo.clone();
    wrong["systems"][1]["config"]["objects"]["employee"]["pagination"]["style"] =
        serde_json::json!("pages");
    let errors: Vec<String> = validator
        .iter_errors(&wrong)
        .map(|e| e.instance_path.to_string())
        .collect();
    assert!(
        errors
            .iter()
            .any(|p| p.starts_with("/systems/1/config/objects/employee/pagination")),
        "a REST system's config is checked against the REST connector's schema: {errors:?}"
    );
    let mut wrong = demo.clone();
    wrong["mappings"][0]["rules"][0]["transform"] =
        serde_json::json!({ "kind": "money_minor", "exponent": "two" });
    assert!(
        !validator.is_valid(&wrong),
        "a transform's settings are checked"
    );
    let mut wrong = demo;
    wrong["policies"][0]["fields"][0]["conflict"] = serde_json::json!("prefer:hr");
    assert!(
        !validator.is_valid(&wrong),
        "`prefer:hr` is refused: a preferred system is written {{\"prefer\": \"hr\"}}"
    );
}
