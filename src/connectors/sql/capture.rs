//! Change capture: the SQL that installs the `concord_changes` table and the triggers that
//! fill it (or, with `notify`, only announce changes), for PostgreSQL and SQLite. Pure
//! functions: the console shows this SQL to an admin before anything is installed, and the
//! connector runs exactly what was shown.

use super::config::{ChangeCapture, Dialect, SqlConfig, literal, quote, quote_relation};

/// The table every trigger writes to: one row per inserted, updated or deleted record.
pub const CHANGE_TABLE: &str = "concord_changes";
/// The PostgreSQL channel the triggers notify.
pub const CHANNEL: &str = "concord_changes";

/// The name of the trigger (and, on PostgreSQL, its function) capturing `relation`.
pub fn trigger_name(relation: &str) -> String {
    format!("concord_capture_{}", relation.replace('.', "_"))
}

/// The statements installing change capture for every object of `config` that asks for it,
/// in order; empty when none does.
pub fn install_statements(config: &SqlConfig) -> Vec<String> {
    let Some(dialect) = config.dialect() else {
        return Vec::new();
    };
    let objects: Vec<_> = config
        .objects
        .values()
        .filter(|o| o.change_capture != ChangeCapture::None && o.table.is_some())
        .collect();
    let mut out = Vec::new();
    if objects
        .iter()
        .any(|o| o.change_capture == ChangeCapture::Table)
    {
        out.push(change_table(dialect));
    }
    for o in objects {
        let table = o.relation();
        match dialect {
            Dialect::Postgres => out.extend(postgres_trigger(
                table,
                &o.key_column,
                o.change_capture == ChangeCapture::Table,
            )),
            Dialect::Sqlite => out.extend(sqlite_triggers(table, &o.key_column)),
        }
    }
    out
}

/// The statements as one script, for people to read.
pub fn install_script(config: &SqlConfig) -> String {
    install_statements(config)
        .iter()
        .map(|s| format!("{s};\n"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn change_table(dialect: Dialect) -> String {
    match dialect {
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {CHANGE_TABLE} (\n  seq BIGSERIAL PRIMARY KEY,\n  table_name TEXT NOT NULL,\n  row_key TEXT NOT NULL,\n  op TEXT NOT NULL,\n  changed_at TIMESTAMPTZ NOT NULL DEFAULT now()\n)"
        ),
        Dialect::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS {CHANGE_TABLE} (\n  seq INTEGER PRIMARY KEY AUTOINCREMENT,\n  table_name TEXT NOT NULL,\n  row_key TEXT NOT NULL,\n  op TEXT NOT NULL,\n  changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))\n)"
        ),
    }
}

/// One PL/pgSQL function and its row trigger: a row in the change table per change (an
/// update that changes the key also records the old key as deleted), and a notification.
fn postgres_trigger(table: &str, key: &str, with_table: bool) -> Vec<String> {
    let name = trigger_name(table);
    let (t, k, q) = (literal(table), quote(key), quote(&name));
    let record = |row: &str, op: &str| {
        if with_table {
            format!(
                "INSERT INTO {CHANGE_TABLE} (table_name, row_key, op) VALUES ({t}, {row}.{k}::text, {op});\n    "
            )
        } else {
            String::new()
        }
    };
    let function = format!(
        "CREATE OR REPLACE FUNCTION {q}() RETURNS trigger LANGUAGE plpgsql AS $concord$\nBEGIN\n  IF TG_OP = 'DELETE' THEN\n    {del}PERFORM pg_notify({chan}, {t});\n    RETURN OLD;\n  END IF;\n  IF TG_OP = 'UPDATE' AND OLD.{k} IS DISTINCT FROM NEW.{k} THEN\n    {del}NULL;\n  END IF;\n  {new}PERFORM pg_notify({chan}, {t});\n  RETURN NEW;\nEND\n$concord$",
        del = record("OLD", "'delete'"),
        new = record("NEW", "lower(TG_OP)"),
        chan = literal(CHANNEL),
    );
    vec![
        function,
        format!("DROP TRIGGER IF EXISTS {q} ON {}", quote_relation(table)),
        format!(
            "CREATE TRIGGER {q} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION {q}()",
            quote_relation(table)
        ),
    ]
}

/// Three SQLite triggers (insert, update, delete) writing to the change table.
fn sqlite_triggers(table: &str, key: &str) -> Vec<String> {
    let name = trigger_name(table);
    let (t, k, rel) = (literal(table), quote(key), quote_relation(table));
    let insert = |row: &str, op: &str| {
        format!(
            "INSERT INTO {CHANGE_TABLE} (table_name, row_key, op) VALUES ({t}, CAST({row}.{k} AS TEXT), '{op}');"
        )
    };
    vec![
        format!(
            "CREATE TRIGGER IF NOT EXISTS {} AFTER INSERT ON {rel} BEGIN {} END",
            quote(&format!("{name}_insert")),
            insert("NEW", "insert")
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {} AFTER UPDATE ON {rel} BEGIN {} {} END",
            quote(&format!("{name}_update")),
            // An update that changes the key deletes the old one.
            format!(
                "INSERT INTO {CHANGE_TABLE} (table_name, row_key, op) SELECT {t}, CAST(OLD.{k} AS TEXT), 'delete' WHERE OLD.{k} IS NOT NEW.{k};"
            ),
            insert("NEW", "update")
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {} AFTER DELETE ON {rel} BEGIN {} END",
            quote(&format!("{name}_delete")),
            insert("OLD", "delete")
        ),
    ]
}

/// The trigger whose presence says capture is installed for `relation`.
pub fn installed_trigger(dialect: Dialect, relation: &str) -> String {
    match dialect {
        Dialect::Postgres => trigger_name(relation),
        Dialect::Sqlite => format!("{}_delete", trigger_name(relation)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(url: &str, capture: &str) -> SqlConfig {
        SqlConfig::parse(
            "db",
            &json!({ "url": url, "objects": { "employee": {
                "table": "employees", "key_column": "id", "change_capture": capture } } }),
        )
        .expect("valid")
    }

    #[test]
    fn the_install_sql_names_the_change_table_and_every_operation() {
        let pg = install_script(&config("postgres://u@127.0.0.1:5432/db", "table"));
        assert!(
            pg.contains("CREATE TABLE IF NOT EXISTS concord_changes"),
            "{pg}"
        );
        assert!(
            pg.contains("AFTER INSERT OR UPDATE OR DELETE ON \"employees\""),
            "{pg}"
        );
        assert!(
            pg.contains("pg_notify('concord_changes', 'employees')"),
            "{pg}"
        );
        let lite = install_script(&config("sqlite:///tmp/x.db", "table"));
        for op in ["INSERT", "UPDATE", "DELETE"] {
            assert!(
                lite.contains(&format!("AFTER {op} ON \"employees\"")),
                "{lite}"
            );
        }
    }

    #[test]
    fn notify_only_installs_no_change_table_and_none_installs_nothing() {
        let notify = install_statements(&config("postgres://u@h/db", "notify"));
        assert!(
            notify
                .iter()
                .all(|s| !s.contains("INSERT INTO concord_changes")),
            "notify only announces changes: {notify:?}"
        );
        assert!(install_statements(&config("postgres://u@h/db", "none")).is_empty());
    }
}
