//! The `sql` connector's config: where the database is, which table or view each object is,
//! and how changes are captured. Validated on load; errors name the key at fault. The
//! password is never here: `password_secret` names a keychain entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connector::ConnectorError;
use crate::connectors::rest::{PollConfig, ReconcileConfig};

/// A PostgreSQL or SQLite database, described as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlConfig {
    /// `postgres://user@host:port/db` or `sqlite:///path/to/file.db`; never a password.
    pub url: String,
    /// Keychain name of the database password (PostgreSQL only).
    #[serde(default)]
    pub password_secret: Option<String>,
    /// Seconds to wait for a connection before a request fails as retryable.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: f64,
    /// Object name -> the table or view holding its records.
    pub objects: BTreeMap<String, SqlObject>,
    /// How often the tables are polled for changes.
    #[serde(default)]
    pub poll: Option<PollConfig>,
    /// Full listings compared with what the engine knows: how deletes are found.
    #[serde(default)]
    pub reconcile: Option<ReconcileConfig>,
}

fn default_connect_timeout_secs() -> f64 {
    5.0
}

fn default_page_size() -> u32 {
    100
}

/// One object: a table, or a view with the statements that write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlObject {
    /// The table (optionally `schema.table`), written with generated statements.
    #[serde(default)]
    pub table: Option<String>,
    /// A view read like a table and written with `insert`/`update`/`delete`.
    #[serde(default)]
    pub view: Option<String>,
    /// Statement creating a record; `:column` placeholders take the record's values.
    #[serde(default)]
    pub insert: Option<String>,
    /// Statement updating a record; `:column` placeholders take the record's values as read
    /// with the changes applied, and `:<version_column>` the version the engine last saw.
    #[serde(default)]
    pub update: Option<String>,
    /// Statement deleting a record; `:<key_column>` takes its key.
    #[serde(default)]
    pub delete: Option<String>,
    /// The column identifying a record (its external id); listings go in its order.
    pub key_column: String,
    /// An integer column the connector increments on every update it makes, and checks
    /// (optimistic concurrency).
    #[serde(default)]
    pub version_column: Option<String>,
    /// A modification-time column: incremental reads ask for rows changed since the newest.
    #[serde(default)]
    pub updated_at_column: Option<String>,
    /// Rows read per query when listing (default 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(default)]
    pub change_capture: ChangeCapture,
}

/// How changes made directly in the database reach the engine besides polling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCapture {
    /// Polling by `updated_at_column` (or full listings); deletes by reconciliation.
    #[default]
    None,
    /// Triggers write every insert, update and delete to `concord_changes` (installed by an
    /// admin); deletes reach the engine at the next poll.
    Table,
    /// PostgreSQL: triggers send `NOTIFY concord_changes`; a notification polls at once.
    Notify,
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl SqlObject {
    /// The relation read: the table or the view.
    pub fn relation(&self) -> &str {
        self.table.as_deref().or(self.view.as_deref()).unwrap_or("")
    }
}

impl SqlConfig {
    /// Parses and validates a config; errors name the key at fault.
    pub fn parse(system: &str, config: &Value) -> Result<Self, ConnectorError> {
        let bad = |m: String| ConnectorError::Config(format!("system {system}: {m}"));
        let parsed: Self = serde_path_to_error::deserialize(config.clone())
            .map_err(|e| bad(format!("config key '{}': {}", e.path(), e.inner())))?;
        let url = url::Url::parse(&parsed.url)
            .map_err(|e| bad(format!("config key 'url': not a URL ({e})")))?;
        if url.password().is_some() {
            return Err(bad(
                "config key 'url': holds a password; store it in the keychain and name it in 'password_secret'"
                    .into(),
            ));
        }
        let dialect = parsed.dialect().ok_or_else(|| {
            bad(
                "config key 'url': use postgres://user@host:port/db or sqlite:///path/file.db"
                    .into(),
            )
        })?;
        if dialect == Dialect::Postgres && url.host_str().is_none_or(str::is_empty) {
            return Err(bad("config key 'url': name the database host".into()));
        }
        if dialect == Dialect::Sqlite && parsed.password_secret.is_some() {
            return Err(bad(
                "config key 'password_secret': SQLite files take no password".into(),
            ));
        }
        if !(parsed.connect_timeout_secs.is_finite() && parsed.connect_timeout_secs > 0.0) {
            return Err(bad(
                "config key 'connect_timeout_secs': must be positive".into()
            ));
        }
        if parsed.objects.is_empty() {
            return Err(bad("config key 'objects': name at least one object".into()));
        }
        for (name, o) in &parsed.objects {
            let at = |k: &str| format!("config key 'objects.{name}.{k}'");
            match (&o.table, &o.view) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(bad(format!(
                        "{}: name either a table or a view",
                        at("table")
                    )));
                }
                _ => {}
            }
            let mut names = vec![("key_column", Some(&o.key_column))];
            names.push(("version_column", o.version_column.as_ref()));
            names.push(("updated_at_column", o.updated_at_column.as_ref()));
            names.push(("table", o.table.as_ref()));
            names.push(("view", o.view.as_ref()));
            for (k, v) in names {
                if let Some(v) = v
                    && !valid_identifier(v, k == "table" || k == "view")
                {
                    return Err(bad(format!(
                        "{}: '{v}' is not a plain SQL name (letters, digits, _; schema.table for tables)",
                        at(k)
                    )));
                }
            }
            if o.page_size == 0 || o.page_size > 10_000 {
                return Err(bad(format!("{}: between 1 and 10000", at("page_size"))));
            }
            if o.view.is_some() {
                if o.insert.is_none() || o.update.is_none() {
                    return Err(bad(format!(
                        "{}: a view needs 'insert' and 'update' statements",
                        at("view")
                    )));
                }
                if o.change_capture != ChangeCapture::None {
                    return Err(bad(format!(
                        "{}: triggers capture changes on tables only; poll the view by 'updated_at_column'",
                        at("change_capture")
                    )));
                }
            } else if o.insert.is_some() || o.update.is_some() || o.delete.is_some() {
                return Err(bad(format!(
                    "{}: statements are for views; a table is written directly",
                    at("insert")
                )));
            }
            if o.change_capture == ChangeCapture::Notify && dialect != Dialect::Postgres {
                return Err(bad(format!(
                    "{}: 'notify' is PostgreSQL's LISTEN/NOTIFY; use 'table' with SQLite",
                    at("change_capture")
                )));
            }
        }
        if let Some(p) = &parsed.poll
            && !(p.interval_secs.is_finite() && p.interval_secs > 0.0)
        {
            return Err(bad(
                "config key 'poll.interval_secs': must be positive".into()
            ));
        }
        if let Some(r) = &parsed.reconcile
            && !(r.interval_secs.is_finite()
                && r.interval_secs >= 0.0
                && r.max_delete_share.is_finite()
                && (0.0..=1.0).contains(&r.max_delete_share))
        {
            return Err(bad(
                "config key 'reconcile': interval_secs 0 (off) or positive, max_delete_share between 0 and 1"
                    .into(),
            ));
        }
        Ok(parsed)
    }

    pub fn dialect(&self) -> Option<Dialect> {
        let scheme = self.url.split(':').next().unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Some(Dialect::Postgres),
            "sqlite" => Some(Dialect::Sqlite),
            _ => None,
        }
    }

    /// The database's origin, `postgres://host:port`, where the password is sent.
    pub fn origin(&self) -> Option<String> {
        let u = url::Url::parse(&self.url).ok()?;
        let host = u.host_str()?.to_ascii_lowercase();
        Some(format!("postgres://{host}:{}", u.port().unwrap_or(5432)))
    }

    /// The secrets this config sends: the password, to the database's origin.
    pub fn sent_secrets(&self) -> Vec<(String, String)> {
        match (&self.password_secret, self.origin()) {
            (Some(name), Some(origin)) if self.dialect() == Some(Dialect::Postgres) => {
                vec![(name.clone(), origin)]
            }
            _ => Vec::new(),
        }
    }
}

/// A plain SQL name (`[A-Za-z_][A-Za-z0-9_]*`), or `schema.name` when `qualified` is allowed.
pub fn valid_identifier(name: &str, qualified: bool) -> bool {
    let part = |p: &str| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && p.len() <= 63
    };
    match name.split_once('.') {
        Some((schema, rest)) if qualified => part(schema) && part(rest),
        Some(_) => false,
        None => part(name),
    }
}

/// A table or view name quoted for SQL (`"schema"."table"`); only ever given names
/// [`valid_identifier`] accepted.
pub fn quote_relation(name: &str) -> String {
    name.split('.').map(quote).collect::<Vec<_>>().join(".")
}

/// One name (a column) quoted for SQL, whatever it holds: only ever given names the database
/// itself reported.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A text literal for SQL (`'it''s'`), for names written into generated DDL.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
