//! The `sql` connector: a PostgreSQL or SQLite table (or a view with its write statements) as
//! a system. It owns reading rows in key order in pages, incremental reads by a modification
//! column or a trigger-maintained change table (deletes included), waking the poll loop on
//! PostgreSQL's NOTIFY, and writes with optimistic concurrency on a version column.
//!
//! Values are always bound, never interpolated. Names come from the config (checked when it
//! is parsed) or from a record's keys, which are checked against the columns the database
//! reports before anything is written. The password is read from the keychain by the name
//! `password_secret` gives, and sent only to the database's origin.

pub mod capture;
pub mod config;
mod db;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio::sync::{Notify, OnceCell};

use crate::connector::{
    Capabilities, Connector, ConnectorError, FetchedRecord, Page, WriteOutcome, WriteRequest,
};
use crate::model::SystemConfig;
use crate::secrets::{OriginPolicy, SharedSecrets};
pub use config::{ChangeCapture, SqlConfig, SqlObject};
use config::{Dialect, quote};
use db::{Column, Db, classify};

/// Change-table cursors read `change:<seq>`.
const CHANGE_CURSOR: &str = "change:";

struct Inner {
    system: String,
    config: SqlConfig,
    secrets: SharedSecrets,
    origins: Arc<dyn OriginPolicy>,
    db: OnceCell<Db>,
    columns: std::sync::Mutex<HashMap<String, Arc<Vec<Column>>>>,
}

/// A PostgreSQL or SQLite database reached through its config.
pub struct SqlConnector {
    inner: Arc<Inner>,
    signal: Option<Arc<Notify>>,
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for SqlConnector {
    fn drop(&mut self) {
        if let Ok(mut l) = self.listener.lock()
            && let Some(task) = l.take()
        {
            task.abort();
        }
    }
}

/// Whether change capture is installed, and the SQL that installs it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CaptureStatus {
    /// The statements an install runs, in order, as one script.
    pub sql: String,
    /// Every object asking for change capture has its trigger.
    pub installed: bool,
    /// The objects (tables) whose changes the triggers capture.
    pub objects: Vec<String>,
}

/// Where a listing page starts: after this key, and the change table's sequence when the
/// listing began (its cursor once the listing ends).
#[derive(serde::Serialize, serde::Deserialize)]
struct Token {
    after: Value,
    #[serde(default)]
    after_modified: Option<Value>,
    #[serde(default)]
    seq: Option<i64>,
}

impl SqlConnector {
    pub fn from_config_with(
        system: &SystemConfig,
        secrets: SharedSecrets,
        origins: Arc<dyn OriginPolicy>,
    ) -> Result<Self, ConnectorError> {
        let config = SqlConfig::parse(&system.id, &system.config)?;
        let wants_signal = config.dialect() == Some(Dialect::Postgres)
            && config
                .objects
                .values()
                .any(|o| o.change_capture != ChangeCapture::None);
        Ok(Self {
            inner: Arc::new(Inner {
                system: system.id.clone(),
                config,
                secrets,
                origins,
                db: OnceCell::new(),
                columns: std::sync::Mutex::new(HashMap::new()),
            }),
            signal: wants_signal.then(|| Arc::new(Notify::new())),
            listener: std::sync::Mutex::new(None),
        })
    }

    /// The change-capture SQL and whether it is installed.
    pub async fn capture_status(&self) -> Result<CaptureStatus, ConnectorError> {
        let i = &self.inner;
        let objects: Vec<String> = i
            .config
            .objects
            .iter()
            .filter(|(_, o)| o.change_capture != ChangeCapture::None)
            .map(|(n, _)| n.clone())
            .collect();
        let mut installed = !objects.is_empty();
        for name in &objects {
            installed &= i.capture_installed(name).await?;
        }
        Ok(CaptureStatus {
            sql: capture::install_script(&i.config),
            installed,
            objects,
        })
    }

    /// Installs change capture: runs exactly the statements [`Self::capture_status`] shows,
    /// in one transaction.
    pub async fn install_capture(&self) -> Result<CaptureStatus, ConnectorError> {
        let i = &self.inner;
        let statements = capture::install_statements(&i.config);
        if statements.is_empty() {
            return Err(ConnectorError::Config(format!(
                "system {}: no object asks for change capture (set change_capture to 'table' or 'notify')",
                i.system
            )));
        }
        let db = i.db().await?;
        db.run_all(&statements)
            .await
            .map_err(|e| classify(&i.system, &e))?;
        self.capture_status().await
    }
}

impl Inner {
    async fn db(&self) -> Result<&Db, ConnectorError> {
        self.db
            .get_or_try_init(|| async {
                let password = match &self.config.password_secret {
                    None => None,
                    Some(name) => {
                        let origin = self.config.origin().unwrap_or_default();
                        if !self.origins.allows(name, &origin) {
                            return Err(ConnectorError::Config(format!(
                                "system {}: re-enter the secret '{name}' to use it with {origin} (a stored secret is only sent to the address it was saved for)",
                                self.system
                            )));
                        }
                        let secret = self.secrets.get(name).map_err(|e| {
                            ConnectorError::Config(format!("system {}: {e}", self.system))
                        })?;
                        Some(secret.expose().to_owned())
                    }
                };
                let timeout = Duration::from_secs_f64(self.config.connect_timeout_secs);
                Db::open(&self.config.url, password.as_deref(), timeout).map_err(|e| {
                    ConnectorError::Config(format!("system {}: config key 'url': {e}", self.system))
                })
            })
            .await
    }

    fn object(&self, object: &str) -> Result<&SqlObject, ConnectorError> {
        self.config.objects.get(object).ok_or_else(|| {
            ConnectorError::Config(format!(
                "system {}: no table or view for object '{object}'",
                self.system
            ))
        })
    }

    fn err(&self, e: &sqlx::Error) -> ConnectorError {
        classify(&self.system, e)
    }

    fn cached_columns(&self, object: &str) -> Option<Arc<Vec<Column>>> {
        self.columns.lock().ok()?.get(object).cloned()
    }

    fn cache_columns(&self, object: &str, columns: Arc<Vec<Column>>) {
        if let Ok(mut m) = self.columns.lock() {
            m.insert(object.to_owned(), columns);
        }
    }

    /// The relation's columns, as the database reports them (cached; `fresh` reads again).
    async fn columns(&self, object: &str, fresh: bool) -> Result<Arc<Vec<Column>>, ConnectorError> {
        if !fresh && let Some(c) = self.cached_columns(object) {
            return Ok(c);
        }
        let o = self.object(object)?;
        let db = self.db().await?;
        let columns = db.columns(o.relation()).await.map_err(|e| self.err(&e))?;
        if columns.is_empty() {
            return Err(ConnectorError::Config(format!(
                "system {}: '{}' does not exist or has no columns",
                self.system,
                o.relation()
            )));
        }
        for (k, name) in [
            ("key_column", Some(&o.key_column)),
            ("version_column", o.version_column.as_ref()),
            ("updated_at_column", o.updated_at_column.as_ref()),
        ] {
            if let Some(name) = name
                && !columns.iter().any(|c| &c.name == name)
            {
                return Err(ConnectorError::Config(format!(
                    "system {}: config key 'objects.{object}.{k}': '{}' has no column '{name}'",
                    self.system,
                    o.relation()
                )));
            }
        }
        let columns = Arc::new(columns);
        self.cache_columns(object, columns.clone());
        Ok(columns)
    }

    /// The columns a write names, each checked against the relation's real columns.
    async fn write_columns(
        &self,
        object: &str,
        payload: &Map<String, Value>,
    ) -> Result<Arc<Vec<Column>>, ConnectorError> {
        let mut columns = self.columns(object, false).await?;
        let unknown = |cols: &[Column]| {
            payload
                .keys()
                .filter(|k| !cols.iter().any(|c| &c.name == *k))
                .cloned()
                .collect::<Vec<_>>()
        };
        if !unknown(&columns).is_empty() {
            // The table may have grown a column since it was read.
            columns = self.columns(object, true).await?;
        }
        let unknown = unknown(&columns);
        if !unknown.is_empty() {
            return Err(ConnectorError::Rejected {
                system: self.system.clone(),
                status: 422,
                body: format!(
                    "'{}' has no column {}; nothing was written (its columns: {})",
                    self.object(object)?.relation(),
                    unknown
                        .iter()
                        .map(|u| format!("'{u}'"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(columns)
    }

    fn fetched(&self, o: &SqlObject, record: Map<String, Value>) -> FetchedRecord {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let key = record.get(&o.key_column).map(text).unwrap_or_default();
        let version_value = o
            .version_column
            .as_ref()
            .and_then(|c| record.get(c))
            .filter(|v| !v.is_null());
        let modified = o
            .updated_at_column
            .as_ref()
            .and_then(|c| record.get(c))
            .filter(|v| !v.is_null())
            .map(text);
        FetchedRecord {
            external_id: key,
            version: version_value.and_then(|v| v.as_i64().or_else(|| text(v).parse().ok())),
            etag: version_value.map(text),
            modified,
            record,
        }
    }

    /// Rows of `object` matching `filter` (conditions on `t."column"` with `$n` placeholders
    /// for `args`), in `order`, at most `limit`.
    async fn rows(
        &self,
        object: &str,
        filter: &str,
        args: &[(Value, Option<&Column>)],
        order: &str,
        limit: Option<u32>,
    ) -> Result<Vec<FetchedRecord>, ConnectorError> {
        let o = self.object(object)?;
        let columns = self.columns(object, false).await?;
        let db = self.db().await?;
        let keep: Vec<&str> = [
            Some(o.key_column.as_str()),
            o.version_column.as_deref(),
            o.updated_at_column.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut sql = db.json_select(o.relation(), &columns, &keep);
        if !filter.is_empty() {
            sql.push_str(&format!(" WHERE {filter}"));
        }
        if !order.is_empty() {
            sql.push_str(&format!(" ORDER BY {order}"));
        }
        if let Some(n) = limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let rows = db.json_rows(&sql, args).await.map_err(|e| self.err(&e))?;
        Ok(rows.into_iter().map(|r| self.fetched(o, r)).collect())
    }

    fn column<'c>(columns: &'c [Column], name: &str) -> Option<&'c Column> {
        columns.iter().find(|c| c.name == name)
    }

    /// One page in key order after the token's key.
    async fn key_page(
        &self,
        object: &str,
        token: Option<&Token>,
    ) -> Result<(Vec<FetchedRecord>, Option<Value>), ConnectorError> {
        let o = self.object(object)?;
        let columns = self.columns(object, false).await?;
        let db = self.db().await?;
        let key_col = Self::column(&columns, &o.key_column);
        let k = format!("t.{}", quote(&o.key_column));
        let (filter, args) = match token {
            Some(t) => (
                format!("{k} > {}", db.param(1, key_col)),
                vec![(t.after.clone(), key_col)],
            ),
            None => (String::new(), Vec::new()),
        };
        let records = self
            .rows(object, &filter, &args, &k, Some(o.page_size))
            .await?;
        let last = (records.len() == o.page_size as usize)
            .then(|| {
                records
                    .last()
                    .and_then(|r| r.record.get(&o.key_column).cloned())
            })
            .flatten();
        Ok((records, last))
    }

    async fn capture_installed(&self, object: &str) -> Result<bool, ConnectorError> {
        let o = self.object(object)?;
        let db = self.db().await?;
        let name = capture::installed_trigger(db.dialect(), o.relation());
        let sql = match db.dialect() {
            Dialect::Postgres => "SELECT COUNT(*) FROM pg_trigger WHERE tgname = $1",
            Dialect::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name = $1"
            }
        };
        let n = db.scalar(sql, &[&name]).await.map_err(|e| self.err(&e))?;
        Ok(n > 0)
    }

    /// The change table's newest sequence for `object`, when its capture is installed.
    async fn change_seq(&self, object: &str) -> Result<Option<i64>, ConnectorError> {
        let o = self.object(object)?;
        if o.change_capture != ChangeCapture::Table || !self.capture_installed(object).await? {
            return Ok(None);
        }
        let db = self.db().await?;
        let sql = format!(
            "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM {} WHERE table_name = $1",
            capture::CHANGE_TABLE
        );
        let seq = db
            .scalar(&sql, &[o.relation()])
            .await
            .map_err(|e| self.err(&e))?;
        Ok(Some(seq))
    }

    /// The changes recorded after `seq`: the rows changed (read as they are now) and the
    /// keys deleted, one page of the change table.
    async fn changes_from_table(&self, object: &str, seq: i64) -> Result<Page, ConnectorError> {
        let o = self.object(object)?;
        let db = self.db().await?;
        let object_list = match db.dialect() {
            Dialect::Postgres => {
                "json_build_object('seq', seq, 'row_key', row_key, 'op', op)::text"
            }
            Dialect::Sqlite => "json_object('seq', seq, 'row_key', row_key, 'op', op)",
        };
        let seq_param = match db.dialect() {
            Dialect::Postgres => "$2::bigint",
            Dialect::Sqlite => "$2",
        };
        let sql = format!(
            "SELECT {object_list} FROM {} WHERE table_name = $1 AND seq > {seq_param} ORDER BY seq LIMIT {}",
            capture::CHANGE_TABLE,
            o.page_size
        );
        let changes = db
            .json_rows(&sql, &[(json!(o.relation()), None), (json!(seq), None)])
            .await
            .map_err(|e| self.err(&e))?;
        // The last change of each key decides; rows are read as they are now.
        let mut last: BTreeMap<String, (i64, String)> = BTreeMap::new();
        let mut max_seq = seq;
        for c in &changes {
            let s = c.get("seq").and_then(Value::as_i64).unwrap_or(seq);
            max_seq = max_seq.max(s);
            if let Some(key) = c.get("row_key").and_then(Value::as_str) {
                let op = c.get("op").and_then(Value::as_str).unwrap_or_default();
                last.insert(key.to_owned(), (s, op.to_owned()));
            }
        }
        let mut page = Page {
            cursor: Some(format!("{CHANGE_CURSOR}{max_seq}")),
            next: (changes.len() == o.page_size as usize)
                .then(|| format!("{CHANGE_CURSOR}{max_seq}")),
            ..Page::default()
        };
        for (key, _) in last {
            match self.get_row(object, &key).await? {
                Some(r) => page.records.push(r),
                None => page.deleted.push(key),
            }
        }
        Ok(page)
    }

    async fn get_row(
        &self,
        object: &str,
        key: &str,
    ) -> Result<Option<FetchedRecord>, ConnectorError> {
        let o = self.object(object)?;
        let columns = self.columns(object, false).await?;
        let db = self.db().await?;
        let key_col = Self::column(&columns, &o.key_column);
        let filter = format!("t.{} = {}", quote(&o.key_column), db.param(1, key_col));
        let mut rows = self
            .rows(object, &filter, &[(json!(key), key_col)], "", Some(1))
            .await?;
        Ok(rows.pop())
    }

    async fn outcome(&self, object: &str, key: &str) -> Result<WriteOutcome, ConnectorError> {
        let row = self.get_row(object, key).await?;
        Ok(WriteOutcome {
            external_id: key.to_owned(),
            version: row.as_ref().and_then(|r| r.version),
            etag: row.and_then(|r| r.etag),
        })
    }

    /// A 0-row update: the row is gone, or (with a version to check) it changed.
    async fn missed(&self, object: &str, key: &str, checked: bool) -> ConnectorError {
        match self.get_row(object, key).await {
            Ok(Some(_)) if checked => ConnectorError::VersionConflict {
                system: self.system.clone(),
            },
            Err(e) => e,
            _ => ConnectorError::NotFound {
                system: self.system.clone(),
                external_id: key.to_owned(),
            },
        }
    }
}

mod write;

/// Seconds between polls when the config sets none.
pub const DEFAULT_POLL_SECS: f64 = 30.0;

#[async_trait]
impl Connector for SqlConnector {
    /// A statement the stopped engine sent is finished by the database on its own; the
    /// connector's one timeout bounds how long the engine waited for the database.
    fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.inner.config.connect_timeout_secs)
    }

    fn capabilities(&self) -> Capabilities {
        let any = self.inner.config.objects.values().next();
        Capabilities {
            partial_update: true,
            versioned_writes: any.is_some_and(|o| o.version_column.is_some()),
            delete: any.is_some_and(|o| o.table.is_some() || o.delete.is_some()),
            webhooks: false,
            incremental: any.is_some_and(|o| {
                o.updated_at_column.is_some() || o.change_capture == ChangeCapture::Table
            }),
            path_writes: false,
        }
    }

    /// A database sends no webhooks: it is always polled (LISTEN/NOTIFY only wakes the poll
    /// early), every [`DEFAULT_POLL_SECS`] unless the config says otherwise.
    fn poll_interval(&self) -> Option<Duration> {
        Some(Duration::from_secs_f64(
            self.inner
                .config
                .poll
                .as_ref()
                .map_or(DEFAULT_POLL_SECS, |p| p.interval_secs),
        ))
    }

    fn reconcile_schedule(&self) -> Option<crate::connector::ReconcileSchedule> {
        let c = &self.inner.config;
        let captures_deletes = c
            .objects
            .values()
            .all(|o| o.change_capture == ChangeCapture::Table);
        let secs = match &c.reconcile {
            Some(r) => r.interval_secs,
            None if !captures_deletes => crate::connectors::rest::DEFAULT_RECONCILE_SECS,
            None => 0.0,
        };
        Some(crate::connector::ReconcileSchedule {
            interval: (secs > 0.0).then(|| Duration::from_secs_f64(secs)),
            max_delete_share: c.reconcile.as_ref().map_or(0.1, |r| r.max_delete_share),
        })
    }

    fn change_signal(&self) -> Option<Arc<Notify>> {
        let signal = self.signal.clone()?;
        let mut listener = self.listener.lock().ok()?;
        if listener.is_none() {
            let inner = self.inner.clone();
            let wake = signal.clone();
            *listener = Some(tokio::spawn(async move { listen(inner, wake).await }));
        }
        Some(signal)
    }

    fn describe_write(
        &self,
        op: &str,
        external_id: Option<&str>,
        object: &str,
    ) -> Option<(String, String)> {
        let o = self.inner.config.objects.get(object)?;
        let verb = match op {
            "create" => "INSERT",
            "delete" => "DELETE",
            _ => "UPDATE",
        };
        let at = match external_id {
            Some(id) => format!("{} {} = {id}", o.relation(), o.key_column),
            None => o.relation().to_owned(),
        };
        Some((verb.into(), at))
    }

    async fn list_page(&self, object: &str, page: Option<&str>) -> Result<Page, ConnectorError> {
        let i = &self.inner;
        let token: Option<Token> = match page {
            Some(p) => Some(serde_json::from_str(p).map_err(|_| {
                ConnectorError::Config(format!("system {}: a page token it did not make", i.system))
            })?),
            None => None,
        };
        // The change table's place when the listing began: changes after it are read next.
        let seq = match &token {
            Some(t) => t.seq,
            None => i.change_seq(object).await?,
        };
        let (records, last) = i.key_page(object, token.as_ref()).await?;
        let next = last.map(|after| {
            json!(Token {
                after,
                after_modified: None,
                seq
            })
            .to_string()
        });
        Ok(page_with(records, next, seq))
    }

    async fn changes_page(
        &self,
        object: &str,
        since: &str,
        page: Option<&str>,
    ) -> Result<Page, ConnectorError> {
        let i = &self.inner;
        let o = i.object(object)?;
        if let Some(seq) = page.unwrap_or(since).strip_prefix(CHANGE_CURSOR) {
            let seq = seq.parse().map_err(|_| {
                ConnectorError::Config(format!("system {}: a cursor it did not make", i.system))
            })?;
            return i.changes_from_table(object, seq).await;
        }
        let Some(modified_col) = &o.updated_at_column else {
            return self.list_page(object, page).await;
        };
        // Change capture installed after the listing: from now on the change table leads,
        // from its first row (what it captured since the install, deletes included; rows this
        // pass also reads come back as duplicates, which the inbox counts and skips).
        let seq = if page.is_none() {
            i.change_seq(object).await?.map(|_| 0)
        } else {
            None
        };
        let columns = i.columns(object, false).await?;
        let db = i.db().await?;
        let m_col = Inner::column(&columns, modified_col);
        let k_col = Inner::column(&columns, &o.key_column);
        let (m, k) = (
            format!("t.{}", quote(modified_col)),
            format!("t.{}", quote(&o.key_column)),
        );
        let token: Option<Token> = page.and_then(|p| serde_json::from_str(p).ok());
        let mut filter = format!("{m} >= {}", db.param(1, m_col));
        let mut args = vec![(json!(since), m_col)];
        if let Some(t) = &token {
            filter.push_str(&format!(
                " AND ({m} > {p2} OR ({m} = {p2} AND {k} > {p3}))",
                p2 = db.param(2, m_col),
                p3 = db.param(3, k_col)
            ));
            args.push((t.after_modified.clone().unwrap_or(Value::Null), m_col));
            args.push((t.after.clone(), k_col));
        }
        let records = i
            .rows(
                object,
                &filter,
                &args,
                &format!("{m}, {k}"),
                Some(o.page_size),
            )
            .await?;
        let next = (records.len() == o.page_size as usize)
            .then(|| records.last())
            .flatten()
            .map(|r| {
                json!(Token {
                    after: r.record.get(&o.key_column).cloned().unwrap_or(Value::Null),
                    after_modified: r.record.get(modified_col).cloned(),
                    seq: None,
                })
                .to_string()
            });
        Ok(page_with(records, next, seq))
    }

    async fn get(
        &self,
        object: &str,
        external_id: &str,
    ) -> Result<Option<FetchedRecord>, ConnectorError> {
        self.inner.get_row(object, external_id).await
    }

    async fn create(&self, write: &WriteRequest) -> Result<WriteOutcome, ConnectorError> {
        self.inner.create(write).await
    }

    async fn update(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        self.inner.update(external_id, write).await
    }

    async fn delete(
        &self,
        external_id: &str,
        write: &WriteRequest,
    ) -> Result<WriteOutcome, ConnectorError> {
        self.inner.delete(external_id, write).await
    }
}

/// A page of rows, with the change table's cursor when there is one.
fn page_with(records: Vec<FetchedRecord>, next: Option<String>, seq: Option<i64>) -> Page {
    Page {
        records,
        next,
        cursor: seq.map(|s| format!("{CHANGE_CURSOR}{s}")),
        ..Page::default()
    }
}

/// LISTEN on PostgreSQL's `concord_changes` channel and wake the poll loop on every
/// notification, reconnecting after a second when the connection drops (and waking then too:
/// notifications sent meanwhile are lost, the poll reads what they announced).
async fn listen(inner: Arc<Inner>, wake: Arc<Notify>) {
    loop {
        if let Ok(Db::Pg(pool)) = inner.db().await.cloned()
            && let Ok(mut listener) = sqlx::postgres::PgListener::connect_with(&pool).await
            && listener.listen(capture::CHANNEL).await.is_ok()
        {
            wake.notify_one();
            while listener.recv().await.is_ok() {
                wake.notify_one();
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests;
