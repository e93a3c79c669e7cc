//! The audit's hash chain: what makes the audit tamper-evident and not only append-only.
//!
//! Triggers refuse updates and deletes, but anyone holding the SQLite file can drop them. So
//! each entry also carries a SHA-256 over its own stored fields and the hash of the entry
//! before it. Editing, removing or inserting an entry anywhere breaks the chain at that
//! entry or the next, and [`verify`] names the first entry where it breaks. Only removing
//! entries from the very end leaves no break: the head (its id and hash), which `verify`
//! reports, is what an operator records elsewhere to catch that.
//!
//! This module owns the hashing (pure), appending entries chained to the stored tail,
//! sealing the entries written before the chain existed, and verifying.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::error::{EngineError, Result};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// What the first entry chains to.
pub const GENESIS: Hash = [0; 32];

/// The stored fields of one audit entry, exactly as SQLite holds them: what is hashed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredEntry {
    pub id: i64,
    pub at: Option<String>,
    pub actor: Option<String>,
    pub actor_role: Option<String>,
    pub actor_id: Option<String>,
    pub system_id: Option<String>,
    pub direction: Option<String>,
    pub record_id: Option<i64>,
    pub object: Option<String>,
    pub field: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
    pub rule: Option<String>,
    pub detail: Option<String>,
}

/// The columns of [`StoredEntry`], in its order, for SELECTs.
pub const STORED_COLUMNS: &str = "id, at, actor, actor_role, actor_id, system_id, direction, record_id, object, field, before, after, rule, detail";

impl StoredEntry {
    /// This entry's hash, chained to `previous` (the hash of the entry before it).
    ///
    /// Every value is written with a tag (absent, text, integer) and text with its length,
    /// so no two different entries hash the same bytes.
    pub fn hash(&self, previous: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update(b"concord audit v1\0");
        h.update(previous);
        integer(&mut h, Some(self.id));
        for value in [&self.at, &self.actor, &self.actor_role, &self.actor_id]
            .into_iter()
            .chain([&self.system_id, &self.direction])
        {
            text(&mut h, value.as_deref());
        }
        integer(&mut h, self.record_id);
        for value in [
            &self.object,
            &self.field,
            &self.before,
            &self.after,
            &self.rule,
            &self.detail,
        ] {
            text(&mut h, value.as_deref());
        }
        h.finalize().into()
    }

    /// An entry as read with [`STORED_COLUMNS`], in their order.
    pub fn from_row(row: &sqlx::sqlite::SqliteRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get(0)?,
            at: row.try_get(1)?,
            actor: row.try_get(2)?,
            actor_role: row.try_get(3)?,
            actor_id: row.try_get(4)?,
            system_id: row.try_get(5)?,
            direction: row.try_get(6)?,
            record_id: row.try_get(7)?,
            object: row.try_get(8)?,
            field: row.try_get(9)?,
            before: row.try_get(10)?,
            after: row.try_get(11)?,
            rule: row.try_get(12)?,
            detail: row.try_get(13)?,
        })
    }
}

fn text(h: &mut Sha256, value: Option<&str>) {
    match value {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
    }
}

fn integer(h: &mut Sha256, value: Option<i64>) {
    match value {
        None => h.update([0u8]),
        Some(n) => {
            h.update([2u8]);
            h.update(n.to_be_bytes());
        }
    }
}

/// The last entry's id and hash, which the next entry chains to. An entry without a hash at
/// the tail (one written around the engine) is chained past as if the chain began there;
/// [`verify`] reports it.
///
/// The caller holds a write transaction: under WAL, a transaction whose snapshot is behind
/// another writer's commit cannot write, so two appenders never chain to the same tail.
pub(crate) async fn tail(conn: &mut SqliteConnection) -> Result<(i64, Hash)> {
    let row: Option<(i64, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        None => (0, GENESIS),
        Some((id, hash)) => (id, hash.and_then(|h| h.try_into().ok()).unwrap_or(GENESIS)),
    })
}

/// Entries sealed per transaction when sealing those written before the chain existed.
const SEAL_CHUNK: i64 = 5_000;

/// Seals, once and in order, the entries written before the chain existed (the migration
/// that added the chain recorded the last of them). Returns how many it sealed: 0 on every
/// open after the first.
pub async fn seal_legacy(pool: &SqlitePool) -> Result<u64> {
    // Sealing goes in order, so the last of them sealed means all are: on every later open
    // this is one lookup rather than a walk over every old entry.
    let done: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM audit
         WHERE id = (SELECT through_id FROM audit_chain_legacy) AND hash IS NULL)",
    )
    .fetch_one(pool)
    .await?;
    if done {
        return Ok(0);
    }
    let mut sealed = 0;
    loop {
        let mut tx = crate::store::begin_write(pool).await?;
        let rows = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS} FROM audit
             WHERE id <= (SELECT through_id FROM audit_chain_legacy) AND hash IS NULL
             ORDER BY id LIMIT {SEAL_CHUNK}"
        ))
        .fetch_all(&mut *tx)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(sealed);
        };
        let first_id: i64 = first.try_get(0)?;
        let previous: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT hash FROM audit WHERE id < ? ORDER BY id DESC LIMIT 1")
                .bind(first_id)
                .fetch_optional(&mut *tx)
                .await?;
        let mut previous: Hash = previous
            .flatten()
            .and_then(|h| h.try_into().ok())
            .unwrap_or(GENESIS);
        let mut hashes: Vec<(i64, String)> = Vec::with_capacity(rows.len());
        for row in &rows {
            let entry = StoredEntry::from_row(row)?;
            let hash = entry.hash(&previous);
            hashes.push((entry.id, hex::encode(hash)));
            previous = hash;
        }
        // One statement for the chunk, the hashes bound as one JSON array: a statement per
        // entry made sealing a million entries take over a minute.
        sqlx::query(
            "UPDATE audit SET hash = unhex(s.value ->> '$[1]')
             FROM json_each(?) AS s WHERE audit.id = s.value ->> '$[0]'",
        )
        .bind(serde_json::to_string(&hashes)?)
        .execute(&mut *tx)
        .await?;
        sealed += hashes.len() as u64;
        tx.commit().await?;
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ChainReport {
    /// `intact` when every entry's hash matches its fields and the entry before it;
    /// `broken` otherwise.
    pub state: ChainState,
    /// Entries checked.
    pub entries: i64,
    /// The last entry checked (its id and hash, hex): record it elsewhere to detect entries
    /// removed from the end, which leave no break in the chain.
    pub head: Option<ChainHead>,
    /// The first entry where the chain breaks.
    pub first_broken: Option<BrokenEntry>,
    /// Whether the triggers that refuse updates and deletes are in place. Without them the
    /// chain still shows any change; this says someone removed them.
    pub triggers_present: bool,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChainState {
    Intact,
    Broken,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ChainHead {
    pub id: i64,
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct BrokenEntry {
    pub id: i64,
    pub reason: String,
}

/// Entries read per statement while verifying.
const VERIFY_PAGE: i64 = 10_000;

/// Verifies the chain of a state file as it is: without migrating it, sealing anything or
/// starting an engine, so a copy handed to an auditor is checked exactly as received.
pub async fn verify_file(path: &std::path::Path) -> Result<ChainReport> {
    use sqlx::Connection as _;
    if !path.is_file() {
        return Err(EngineError::NotFound(format!(
            "state file {}",
            path.display()
        )));
    }
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false);
    let mut conn = SqliteConnection::connect_with(&options).await?;
    let chained: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('audit') WHERE name = 'hash')",
    )
    .fetch_one(&mut conn)
    .await?;
    if !chained {
        return Err(EngineError::Invalid(format!(
            "{} has no audit chain yet: `concord migrate --db {}` adds it and seals the entries \
             already there",
            path.display(),
            path.display()
        )));
    }
    let report = verify(&mut conn).await;
    conn.close().await?;
    report
}

/// One verification at a time in a process: each reads the whole audit while holding one of
/// the engine's few pooled connections, so a burst of requests must not take them all.
static VERIFYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

impl crate::runtime::Engine {
    /// Verifies the chain of the engine's own state file (for the console).
    pub async fn verify_audit_chain(&self) -> Result<ChainReport> {
        let _one_at_a_time = VERIFYING.lock().await;
        let mut conn = self.pool().acquire().await?;
        verify(&mut conn).await
    }
}

/// Checks the whole chain, from the first entry, in one read snapshot.
pub async fn verify(conn: &mut SqliteConnection) -> Result<ChainReport> {
    let mut snapshot = sqlx::Connection::begin(conn).await?;
    let report = verify_in_snapshot(&mut snapshot).await?;
    // It only read: ending it either way loses nothing.
    snapshot.rollback().await?;
    Ok(report)
}

async fn verify_in_snapshot(conn: &mut SqliteConnection) -> Result<ChainReport> {
    let triggers: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name IN ('audit_no_update', 'audit_no_delete')",
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut report = ChainReport {
        state: ChainState::Intact,
        entries: 0,
        head: None,
        first_broken: None,
        triggers_present: triggers == 2,
    };
    let mut previous = GENESIS;
    let mut after = i64::MIN;
    loop {
        let rows = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS}, hash FROM audit WHERE id > ? ORDER BY id LIMIT {VERIFY_PAGE}"
        ))
        .bind(after)
        .fetch_all(&mut *conn)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(report);
        };
        after = last.try_get(0)?;
        for row in &rows {
            report.entries += 1;
            let id: i64 = row.try_get(0)?;
            match check(row, &previous) {
                Ok(hash) => {
                    previous = hash;
                    report.head = Some(ChainHead {
                        id,
                        hash: hex::encode(hash),
                    });
                }
                Err(reason) => {
                    report.state = ChainState::Broken;
                    report.first_broken = Some(BrokenEntry { id, reason });
                    return Ok(report);
                }
            }
        }
    }
}

/// One entry's stored hash, when it is the hash of its fields chained to `previous`.
fn check(row: &sqlx::sqlite::SqliteRow, previous: &Hash) -> std::result::Result<Hash, String> {
    let entry = StoredEntry::from_row(row)
        .map_err(|e| format!("its fields cannot be read as the audit stores them ({e})"))?;
    let stored: Option<Vec<u8>> = row
        .try_get(14)
        .map_err(|e| format!("its hash cannot be read ({e})"))?;
    let Some(stored) = stored else {
        return Err("it has no hash: it was written around the engine".into());
    };
    let computed = entry.hash(previous);
    if computed.as_slice() != stored.as_slice() {
        return Err(
            "its hash does not match its fields and the hash of the entry before it: it was \
             changed, or an entry before it was changed, removed or inserted"
                .into(),
        );
    }
    Ok(computed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> StoredEntry {
        StoredEntry {
            id: 7,
            at: Some("2026-12-01T10:00:00.000Z".into()),
            actor: Some("engine".into()),
            direction: Some("in".into()),
            record_id: Some(3),
            field: Some("salary".into()),
            after: Some("80500".into()),
            rule: Some("rule3:newer_wins".into()),
            ..StoredEntry::default()
        }
    }

    #[test]
    fn every_field_and_the_previous_hash_change_the_hash() {
        let base = entry();
        let h = base.hash(&GENESIS);
        assert_ne!(
            h,
            base.hash(&[1; 32]),
            "an entry's hash must depend on the entry before it"
        );
        let changed = [
            StoredEntry { id: 8, ..entry() },
            StoredEntry {
                after: Some("80501".into()),
                ..entry()
            },
            StoredEntry {
                before: Some(String::new()),
                ..entry()
            },
            StoredEntry {
                record_id: None,
                ..entry()
            },
            StoredEntry {
                detail: Some("x".into()),
                ..entry()
            },
        ];
        for c in changed {
            assert_ne!(
                h,
                c.hash(&GENESIS),
                "a change to {c:?} must change its hash"
            );
        }
    }

    #[test]
    fn text_is_length_prefixed_so_moving_bytes_between_fields_changes_the_hash() {
        let a = StoredEntry {
            object: Some("ab".into()),
            field: Some("c".into()),
            ..entry()
        };
        let b = StoredEntry {
            object: Some("a".into()),
            field: Some("bc".into()),
            ..entry()
        };
        assert_ne!(
            a.hash(&GENESIS),
            b.hash(&GENESIS),
            "bytes moved from one field to the next must change the hash"
        );
    }
}
