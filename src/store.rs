//! SQLite access: opening the database (WAL, foreign keys, busy timeout), embedded
//! migrations, the workspace config tables, and the row-level reads and writes the runtime
//! composes into transactions. No decisions are made here.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::audit::AuditEntry;
use crate::error::{EngineError, Result};
use crate::model::{Mapping, ObjectPolicies, ObjectSchema, SystemConfig, WorkspaceConfig};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens (creating if needed) the engine's SQLite file and applies pending migrations.
///
/// WAL with `synchronous = NORMAL`: a committed transaction survives a crash of the process
/// (what the crash tests exercise); only a power loss can drop the last commits.
///
/// The file holds salaries and bank accounts: it is created readable by its owner only (0600
/// on Unix), and so are its `-wal` and `-shm` files; an older file is tightened on open.
pub async fn open(path: &Path) -> Result<SqlitePool> {
    create_private(path)?;
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
        .map_err(EngineError::Store)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(30))
        // New files hand pages freed by history compaction back to the file system.
        .auto_vacuum(sqlx::sqlite::SqliteAutoVacuum::Incremental)
        // A page cache per connection, in KiB: the file's hot pages are also in the operating
        // system's cache, so a larger one only grows memory with the file (4 connections).
        .pragma("cache_size", "-16384")
        .pragma("temp_store", "memory");
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .min_connections(1)
        .connect_with(options)
        .await?;
    restrict_to_owner(path)?;
    MIGRATOR.run(&pool).await?;
    crate::audit_chain::seal_legacy(&pool).await?;
    Ok(pool)
}

/// Creates the database file, empty and owner-only, before SQLite opens it (SQLite gives its
/// `-wal` and `-shm` files the database file's permissions).
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(EngineError::Store(sqlx::Error::Io(e))),
    }
}

/// Makes the database file and its `-wal` and `-shm` files readable by their owner only.
fn restrict_to_owner(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut files = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            files.push(name.into());
        }
        for file in files {
            match std::fs::metadata(&file) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| EngineError::Store(sqlx::Error::Io(e)))?;
                }
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Timestamps are stored as fixed-width RFC3339 UTC text, so they sort as text.
pub fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Starts a transaction that writes: `BEGIN IMMEDIATE` takes SQLite's write lock up front,
/// waiting out the busy timeout. A deferred transaction that reads first fails at once with
/// `SQLITE_BUSY` when it tries to write after another connection has committed (its snapshot is
/// stale), and the engine's writers all read before they write.
pub async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// A pooled connection on which a write transaction is begun by hand, when its user first
/// writes ([`crate::runtime`]'s applier plans without one). sqlx does not know about such a
/// transaction, so this guard does: once armed, a connection dropped before [`Self::commit`]
/// (an error, a cancelled task) is closed instead of going back to the pool, and closing it
/// rolls the transaction back.
pub struct LazyWriteConnection {
    conn: Option<sqlx::pool::PoolConnection<sqlx::Sqlite>>,
    armed: bool,
}

impl LazyWriteConnection {
    pub async fn acquire(pool: &SqlitePool) -> Result<Self> {
        Ok(Self {
            conn: Some(pool.acquire().await?),
            armed: false,
        })
    }

    /// From here on a transaction may be open: dropped, the connection is closed.
    pub fn arm(&mut self) {
        self.armed = true;
    }

    pub fn connection(&mut self) -> &mut SqliteConnection {
        match self.conn.as_mut() {
            Some(conn) => conn,
            // Taken only by `Drop`.
            None => unreachable!("the connection is present until the guard is dropped"),
        }
    }

    /// Commits the transaction the user began; the connection then goes back to the pool.
    pub async fn commit(mut self) -> Result<()> {
        sqlx::query("COMMIT").execute(self.connection()).await?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for LazyWriteConnection {
    fn drop(&mut self) {
        if self.armed
            && let Some(conn) = self.conn.take()
        {
            drop(conn.detach());
        }
    }
}

/// Replaces the workspace config (systems, objects, mappings, policies) in one transaction.
pub async fn save_workspace(
    pool: &SqlitePool,
    ws: &WorkspaceConfig,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut tx = begin_write(pool).await?;
    save_workspace_in(&mut tx, ws, now).await?;
    tx.commit().await?;
    Ok(())
}

/// [`save_workspace`] inside a transaction the caller commits (with the audit of the change).
pub async fn save_workspace_in(
    tx: &mut SqliteConnection,
    ws: &WorkspaceConfig,
    now: DateTime<Utc>,
) -> Result<()> {
    let now = ts(now);
    for s in &ws.systems {
        sqlx::query(
            "INSERT INTO systems (id, name, connector, config, rate_limit_per_sec, max_attempts, max_rereads, webhook_secret, writes, breaker, pilot, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, connector = excluded.connector,
               config = excluded.config, rate_limit_per_sec = excluded.rate_limit_per_sec,
               max_attempts = excluded.max_attempts, max_rereads = excluded.max_rereads,
               webhook_secret = excluded.webhook_secret, writes = excluded.writes,
               breaker = excluded.breaker, pilot = excluded.pilot",
        )
        .bind(&s.id)
        .bind(&s.name)
        .bind(&s.connector)
        .bind(serde_json::to_string(&s.config)?)
        .bind(s.rate_limit_per_sec)
        .bind(i64::from(s.max_attempts))
        .bind(i64::from(s.max_rereads))
        .bind(&s.webhook_secret)
        .bind(s.writes.map(crate::model::WritesMode::as_str))
        .bind(s.breaker.map(|b| serde_json::to_string(&b)).transpose()?)
        .bind(s.pilot.as_ref().map(serde_json::to_string).transpose()?)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    for o in &ws.objects {
        sqlx::query(
            "INSERT INTO objects (name, schema, updated_at) VALUES (?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET schema = excluded.schema, updated_at = excluded.updated_at",
        )
        .bind(&o.name)
        .bind(serde_json::to_string(o)?)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM mappings")
        .execute(&mut *tx)
        .await?;
    for m in &ws.mappings {
        sqlx::query(
            "INSERT INTO mappings (system_id, object, spec, updated_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&m.system)
        .bind(&m.object)
        .bind(serde_json::to_string(m)?)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM field_policies")
        .execute(&mut *tx)
        .await?;
    for p in &ws.policies {
        for f in &p.fields {
            sqlx::query("INSERT INTO field_policies (object, field, policy, updated_at) VALUES (?, ?, ?, ?)")
                .bind(&p.object)
                .bind(&f.field)
                .bind(serde_json::to_string(f)?)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Reads the workspace config back.
pub async fn load_workspace(pool: &SqlitePool) -> Result<WorkspaceConfig> {
    let mut systems = Vec::new();
    for row in sqlx::query("SELECT id, name, connector, config, rate_limit_per_sec, max_attempts, max_rereads, webhook_secret, writes, breaker, pilot FROM systems WHERE removed_at IS NULL ORDER BY rowid")
        .fetch_all(pool)
        .await?
    {
        let config: String = row.get("config");
        let max_attempts: i64 = row.get("max_attempts");
        let max_rereads: i64 = row.get("max_rereads");
        systems.push(SystemConfig {
            id: row.get("id"),
            name: row.get("name"),
            connector: row.get("connector"),
            config: serde_json::from_str(&config)?,
            rate_limit_per_sec: row.get("rate_limit_per_sec"),
            max_attempts: u32::try_from(max_attempts).unwrap_or(8),
            max_rereads: u32::try_from(max_rereads).unwrap_or(5),
            webhook_secret: row.get("webhook_secret"),
            writes: match row.get::<Option<String>, _>("writes").as_deref() {
                Some("plan") => Some(crate::model::WritesMode::Plan),
                Some("live") => Some(crate::model::WritesMode::Live),
                _ => None,
            },
            breaker: row
                .get::<Option<String>, _>("breaker")
                .map(|b| serde_json::from_str(&b))
                .transpose()?,
            pilot: row
                .get::<Option<String>, _>("pilot")
                .map(|p| serde_json::from_str(&p))
                .transpose()?,
        });
    }
    let mut objects = Vec::new();
    for row in sqlx::query("SELECT schema FROM objects ORDER BY rowid")
        .fetch_all(pool)
        .await?
    {
        let schema: String = row.get(0);
        objects.push(serde_json::from_str::<ObjectSchema>(&schema)?);
    }
    let mut mappings = Vec::new();
    for row in sqlx::query("SELECT spec FROM mappings ORDER BY rowid")
        .fetch_all(pool)
        .await?
    {
        let spec: String = row.get(0);
        mappings.push(serde_json::from_str::<Mapping>(&spec)?);
    }
    let mut policies: Vec<ObjectPolicies> = Vec::new();
    for row in sqlx::query("SELECT object, policy FROM field_policies ORDER BY rowid")
        .fetch_all(pool)
        .await?
    {
        let object: String = row.get(0);
        let policy: String = row.get(1);
        let policy = serde_json::from_str(&policy)?;
        match policies.iter_mut().find(|p| p.object == object) {
            Some(p) => p.fields.push(policy),
            None => policies.push(ObjectPolicies {
                object,
                fields: vec![policy],
            }),
        }
    }
    Ok(WorkspaceConfig {
        systems,
        objects,
        mappings,
        policies,
    })
}

/// Appends audit entries, each chained to the one before it (see [`crate::audit_chain`]).
///
/// The caller holds a write transaction, so that no other writer appends between reading the
/// chain's tail and writing after it.
pub async fn insert_audit(
    conn: &mut SqliteConnection,
    entries: &[AuditEntry],
    at: DateTime<Utc>,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let at = ts(at);
    let (mut id, mut previous) = crate::audit_chain::tail(conn).await?;
    let mut chained = Vec::with_capacity(entries.len());
    for e in entries {
        id += 1;
        let stored = crate::audit_chain::StoredEntry {
            id,
            at: Some(at.clone()),
            actor: Some(e.actor.name.clone()),
            actor_role: e.actor.role.clone(),
            actor_id: e.actor.id.clone(),
            system_id: e.system.clone(),
            direction: Some(e.direction.as_str().to_owned()),
            record_id: e.record_id,
            object: e.object.clone(),
            field: e.field.clone(),
            before: e.before.as_ref().map(serde_json::Value::to_string),
            after: e.after.as_ref().map(serde_json::Value::to_string),
            rule: Some(e.rule.clone()),
            detail: e.detail.as_ref().map(serde_json::Value::to_string),
        };
        previous = stored.hash(&previous);
        chained.push((stored, previous));
    }
    // Many rows per statement: each statement is a round trip to SQLite's thread, and a
    // delivered create alone writes one entry per field.
    let mut chained = chained.into_iter().peekable();
    while chained.peek().is_some() {
        let chunk: Vec<_> = chained.by_ref().take(AUDIT_ROWS_PER_INSERT).collect();
        let rows = chunk.len();
        let mut q: sqlx::QueryBuilder<sqlx::Sqlite> = sqlx::QueryBuilder::new(
            "INSERT INTO audit (id, at, actor, actor_role, actor_id, system_id, direction, record_id, object, field, before, after, rule, detail, hash) ",
        );
        q.push_values(chunk, |mut row, (e, hash)| {
            row.push_bind(e.id)
                .push_bind(e.at)
                .push_bind(e.actor)
                .push_bind(e.actor_role)
                .push_bind(e.actor_id)
                .push_bind(e.system_id)
                .push_bind(e.direction)
                .push_bind(e.record_id)
                .push_bind(e.object)
                .push_bind(e.field)
                .push_bind(e.before)
                .push_bind(e.after)
                .push_bind(e.rule)
                .push_bind(e.detail)
                .push_bind(hash.to_vec());
        });
        // Each row count is its own statement text: only the common short ones stay prepared.
        q.build().persistent(rows <= 16).execute(&mut *conn).await?;
    }
    Ok(())
}

/// Appends `(SELECT value FROM json_each(?))`, these ids bound as one JSON array, for `… IN …`.
/// The statement's text is the same however many ids there are, so SQLite prepares it once
/// per connection rather than parsing and planning it again for every batch.
pub(crate) fn push_id_list(
    q: &mut sqlx::QueryBuilder<'_, sqlx::Sqlite>,
    ids: &[i64],
) -> Result<()> {
    q.push("(SELECT value FROM json_each(")
        .push_bind(serde_json::to_string(ids)?)
        .push("))");
    Ok(())
}

/// 15 values a row: well under SQLite's limit of 32,766 bound values per statement.
const AUDIT_ROWS_PER_INSERT: usize = 500;

/// Adds to a named counter (no-ops, duplicates, stale events...).
pub async fn bump(conn: &mut SqliteConnection, name: &str, by: i64) -> Result<()> {
    if by == 0 {
        return Ok(());
    }
    sqlx::query("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value")
        .bind(name)
        .bind(by)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Adds to a named counter and to its count for one system (`name@system`), which the
/// Prometheus endpoint exposes with a `system` label.
pub async fn bump_for(
    conn: &mut SqliteConnection,
    name: &str,
    system: &str,
    by: i64,
) -> Result<()> {
    bump(conn, name, by).await?;
    bump(conn, &format!("{name}@{system}"), by).await
}

pub async fn counter(pool: &SqlitePool, name: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT value FROM counters WHERE name = ?")
            .bind(name)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0),
    )
}

/// Sets a value on many links, each named by (system, object, external id), a thousand per
/// statement: `set` is the SET clause, with the link's new value as `v.column4`.
pub async fn update_links<T>(
    conn: &mut SqliteConnection,
    set: &str,
    rows: &[((String, String, String), T)],
) -> Result<()>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Clone + Send + 'static,
{
    // Four values a link, far below SQLite's limit per statement.
    for chunk in rows.chunks(1000) {
        let mut q: sqlx::QueryBuilder<sqlx::Sqlite> =
            sqlx::QueryBuilder::new(format!("UPDATE links SET {set} FROM (VALUES "));
        let mut values = q.separated(", ");
        for ((system, object, external_id), value) in chunk {
            values
                .push("(")
                .push_bind_unseparated(system.clone())
                .push_unseparated(", ")
                .push_bind_unseparated(object.clone())
                .push_unseparated(", ")
                .push_bind_unseparated(external_id.clone())
                .push_unseparated(", ")
                .push_bind_unseparated(value.clone())
                .push_unseparated(")");
        }
        values.push_unseparated(
            ") AS v WHERE links.system_id = v.column1 AND links.object = v.column2
               AND links.external_id = v.column3",
        );
        q.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The engine's writers read, then write. Another connection committing in between must
    /// make them wait, not fail: this is what the console answered with a 500 when a secret
    /// was saved while a re-push was being planned.
    #[tokio::test]
    async fn a_writer_that_reads_first_waits_for_another_connection_instead_of_failing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = super::open(&dir.path().join("state.db"))
            .await
            .expect("opens");
        let mut tx = super::begin_write(&pool).await.expect("begins");
        let before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM counters")
            .fetch_one(&mut *tx)
            .await
            .expect("reads");
        let other = pool.clone();
        let concurrent = tokio::spawn(async move {
            sqlx::query("INSERT INTO counters (name, value) VALUES ('other', 1)")
                .execute(&other)
                .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sqlx::query("INSERT INTO counters (name, value) VALUES ('mine', ?)")
            .bind(before)
            .execute(&mut *tx)
            .await
            .expect("a transaction begun by begin_write can write after reading, whatever other connections do");
        tx.commit().await.expect("commits");
        concurrent
            .await
            .expect("joins")
            .expect("the other connection's write waits for the lock and then succeeds");
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM counters ORDER BY name")
            .fetch_all(&pool)
            .await
            .expect("reads");
        assert_eq!(names, ["mine", "other"], "both writes are kept");
        pool.close().await;
    }

    /// A lazy write connection, armed, inside a transaction that has written counter `name`.
    async fn lazy_write_of(pool: &sqlx::SqlitePool, name: &str) -> super::LazyWriteConnection {
        let mut conn = super::LazyWriteConnection::acquire(pool)
            .await
            .expect("acquires");
        conn.arm();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(conn.connection())
            .await
            .expect("begins");
        sqlx::query("INSERT INTO counters (name, value) VALUES (?, 1)")
            .bind(name)
            .execute(conn.connection())
            .await
            .expect("writes");
        conn
    }

    /// The applier begins its transaction by hand. If it fails or is cancelled before
    /// committing, what it wrote must be gone and the pool must not hand out a connection that
    /// is still inside its transaction (the next writer would write into it, or fail to begin).
    #[tokio::test]
    async fn a_lazy_write_connection_dropped_before_commit_rolls_back_and_leaves_the_pool_clean() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = super::open(&dir.path().join("state.db"))
            .await
            .expect("opens");
        for _ in 0..3 {
            drop(lazy_write_of(&pool, "abandoned").await);
        }
        let mut tx = super::begin_write(&pool)
            .await
            .expect("every connection of the pool can begin a transaction after an abandoned one");
        sqlx::query("INSERT INTO counters (name, value) VALUES ('kept', 1)")
            .execute(&mut *tx)
            .await
            .expect("writes");
        tx.commit().await.expect("commits");
        lazy_write_of(&pool, "committed")
            .await
            .commit()
            .await
            .expect("commits");
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM counters ORDER BY name")
            .fetch_all(&pool)
            .await
            .expect("reads");
        assert_eq!(
            names,
            ["committed", "kept"],
            "a write transaction dropped before its commit leaves nothing; committed ones stay"
        );
        pool.close().await;
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_state_file_and_its_wal_and_shm_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        let pool = super::open(&path).await.expect("opens");
        sqlx::query("INSERT INTO counters (name, value) VALUES ('x', 1)")
            .execute(&pool)
            .await
            .expect("a write makes the WAL");
        for suffix in ["", "-wal", "-shm"] {
            let file = dir.path().join(format!("state.db{suffix}"));
            match std::fs::metadata(&file) {
                Ok(m) => assert_eq!(
                    m.permissions().mode() & 0o777,
                    0o600,
                    "state.db{suffix} holds salaries: readable by its owner only"
                ),
                Err(_) => assert!(!suffix.is_empty(), "the database file exists"),
            }
        }
        pool.close().await;
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_older_world_readable_state_file_is_tightened_on_open() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.db");
        std::fs::write(&path, b"").expect("an empty file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let pool = super::open(&path).await.expect("opens");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an existing state file is made owner-only");
        pool.close().await;
    }
}
