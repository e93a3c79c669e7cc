//! The circuit breaker. When the writes queued for one system within a window (updates and
//! deletes of records it already holds, from any run: a sync, a reconciliation, a re-push)
//! would change more than a set share of the records linked there, the breaker trips: nothing
//! more is sent to that system until an admin has reviewed the held writes (the system's plan
//! lists them) and confirmed them (sent) or discarded them (never sent). Tripping, confirming
//! and discarding are audited.
//!
//! The check runs where writes are queued, in the transaction that queues them, so a run that
//! would cross the line is held before delivery can claim any write it queued. Writes count
//! whether already sent or still queued, so a run cannot slip under the line by being sent as
//! it goes; writes a decided trip judged are not counted again. Deciding is pure ([`judge`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Row, SqliteConnection};
use utoipa::ToSchema;

use crate::audit::{Actor, AuditEntry, Direction};
use crate::error::{EngineError, Result};
use crate::model::BreakerConfig;
use crate::runtime::Engine;
use crate::store::{self, ts};
use crate::workspace::Workspace;

/// What the breaker counts for one system, within its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Tally {
    /// Records with an update queued (sent or not).
    pub overwrites: i64,
    /// Records with a delete queued (sent or not).
    pub deletes: i64,
    /// Records linked in the system.
    pub linked: i64,
}

impl Tally {
    pub fn touched(&self) -> i64 {
        self.overwrites + self.deletes
    }
}

/// Whether `tally` trips a breaker set to `config`: more than `max_share` of the linked
/// records, and at least `min_records` of them.
pub fn judge(config: &BreakerConfig, tally: &Tally) -> bool {
    let touched = tally.touched();
    config.enabled
        && touched >= i64::from(config.min_records)
        && touched as f64 > config.max_share * tally.linked as f64
}

/// One time a system's breaker tripped, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BreakerTrip {
    pub id: i64,
    pub system: String,
    /// `open` (writes held), `confirmed` (sent) or `discarded`.
    pub status: String,
    pub overwrites: i64,
    pub deletes: i64,
    pub linked: i64,
    pub max_share: f64,
    pub window_secs: i64,
    pub tripped_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
}

impl BreakerTrip {
    /// "15 of 100 records (15%) would be overwritten or deleted within 5 min; the limit is 10%".
    pub fn reason(&self) -> String {
        let touched = self.overwrites + self.deletes;
        let share = if self.linked > 0 {
            format!(" ({:.0}%)", 100.0 * touched as f64 / self.linked as f64)
        } else {
            String::new()
        };
        format!(
            "{touched} of {} records{share} would be overwritten or deleted within {}; the limit is {:.0}%",
            self.linked,
            crate::health::duration(self.window_secs as f64),
            100.0 * self.max_share
        )
    }
}

pub(crate) const TRIP_COLUMNS: &str = "SELECT id, system_id, status, overwrites, deletes, linked, max_share, \
     window_secs, tripped_at, decided_at, decided_by, note FROM breaker_trips";

pub(crate) fn trip(r: &sqlx::sqlite::SqliteRow) -> BreakerTrip {
    BreakerTrip {
        id: r.get("id"),
        system: r.get("system_id"),
        status: r.get("status"),
        overwrites: r.get("overwrites"),
        deletes: r.get("deletes"),
        linked: r.get("linked"),
        max_share: r.get("max_share"),
        window_secs: r.get("window_secs"),
        tripped_at: r.get("tripped_at"),
        decided_at: r.get("decided_at"),
        decided_by: r.get("decided_by"),
        note: r.get("note"),
    }
}

/// Whether `system`'s writes are held by an open trip.
pub(crate) async fn is_open(conn: &mut SqliteConnection, system: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 FROM breaker_trips WHERE system_id = ? AND status = 'open'")
            .bind(system)
            .fetch_optional(&mut *conn)
            .await?
            .is_some(),
    )
}

/// Up to which outbox id `system`'s writes may be sent: all of them (`i64::MAX`) unless a trip
/// is open; while one is, only the writes an earlier decided trip judged (and so released).
pub(crate) async fn sendable_through(conn: &mut SqliteConnection, system: &str) -> Result<i64> {
    if is_open(conn, system).await? {
        judged_through(conn, system).await
    } else {
        Ok(i64::MAX)
    }
}

/// The last outbox id a decided trip of `system` judged (0 when none was decided).
async fn judged_through(conn: &mut SqliteConnection, system: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT COALESCE(MAX(through_outbox), 0) FROM breaker_trips WHERE system_id = ? AND status != 'open'",
    )
    .bind(system)
    .fetch_one(&mut *conn)
    .await?)
}

/// Counts what `system`'s breaker judges at `now`.
async fn tally(
    conn: &mut SqliteConnection,
    system: &str,
    config: &BreakerConfig,
    now: DateTime<Utc>,
) -> Result<Tally> {
    let since = now - chrono::Duration::seconds(i64::from(config.window_secs));
    let after = judged_through(conn, system).await?;
    let row = sqlx::query(
        "SELECT COUNT(DISTINCT CASE WHEN op = 'update' THEN record_id END),
                COUNT(DISTINCT CASE WHEN op = 'delete' THEN record_id END)
         FROM outbox WHERE system_id = ? AND op != 'create' AND created_at >= ? AND id > ?",
    )
    .bind(system)
    .bind(ts(since))
    .bind(after)
    .fetch_one(&mut *conn)
    .await?;
    let mut tally = Tally {
        overwrites: row.get(0),
        deletes: row.get(1),
        linked: 0,
    };
    if tally.touched() >= i64::from(config.min_records) && config.enabled {
        tally.linked = linked(conn, system).await?;
    }
    Ok(tally)
}

/// How many records are linked in `system`.
async fn linked(conn: &mut SqliteConnection, system: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM links WHERE system_id = ? AND deleted = 0")
            .bind(system)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Checks the breakers of `systems` (those a batch just queued updates or deletes for),
/// inside the batch's write transaction, and trips those over their line. The trips made.
pub(crate) async fn check(
    conn: &mut SqliteConnection,
    ws: &Workspace,
    default: &BreakerConfig,
    systems: impl IntoIterator<Item = &str>,
    now: DateTime<Utc>,
) -> Result<Vec<BreakerTrip>> {
    let mut trips = Vec::new();
    for system in systems {
        let config = ws
            .system(system)
            .and_then(|s| s.breaker)
            .unwrap_or(*default);
        if !config.enabled || is_open(conn, system).await? {
            continue;
        }
        let tally = tally(conn, system, &config, now).await?;
        if !judge(&config, &tally) {
            continue;
        }
        let through: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM outbox WHERE system_id = ?")
                .bind(system)
                .fetch_one(&mut *conn)
                .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO breaker_trips (system_id, status, overwrites, deletes, linked, max_share,
               window_secs, through_outbox, tripped_at)
             VALUES (?, 'open', ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(system)
        .bind(tally.overwrites)
        .bind(tally.deletes)
        .bind(tally.linked)
        .bind(config.max_share)
        .bind(i64::from(config.window_secs))
        .bind(through)
        .bind(ts(now))
        .fetch_one(&mut *conn)
        .await?;
        let tripped = BreakerTrip {
            id,
            system: system.to_owned(),
            status: "open".into(),
            overwrites: tally.overwrites,
            deletes: tally.deletes,
            linked: tally.linked,
            max_share: config.max_share,
            window_secs: i64::from(config.window_secs),
            tripped_at: ts(now),
            decided_at: None,
            decided_by: None,
            note: None,
        };
        store::insert_audit(
            conn,
            &[AuditEntry::engine("breaker:tripped", Direction::Out)
                .system(system)
                .detail(
                    json!({ "trip": id, "tally": tally, "max_share": config.max_share,
                                "window_secs": config.window_secs, "reason": tripped.reason() }),
                )],
            now,
        )
        .await?;
        tracing::warn!(system, trip = id, code = "breaker_tripped", reason = %tripped.reason(),
            "writes held by the circuit breaker until an admin confirms or discards them");
        trips.push(tripped);
    }
    Ok(trips)
}

/// What an admin decides about an open trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerDecision {
    /// Send the held writes.
    Confirm,
    /// Never send the held updates and deletes (creates are kept and sent).
    Discard,
}

impl Engine {
    /// `system`'s breaker: its own config, else the engine's default.
    pub fn breaker_config(&self, system: &str) -> BreakerConfig {
        self.workspace()
            .system(system)
            .and_then(|s| s.breaker)
            .unwrap_or(self.inner.settings.breaker)
    }

    /// The open trips, oldest first.
    pub async fn open_breakers(&self) -> Result<Vec<BreakerTrip>> {
        let rows = sqlx::query(&format!("{TRIP_COLUMNS} WHERE status = 'open' ORDER BY id"))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(trip).collect())
    }

    /// `system`'s trips, newest first.
    pub async fn breaker_trips(&self, system: &str, limit: i64) -> Result<Vec<BreakerTrip>> {
        let rows = sqlx::query(&format!(
            "{TRIP_COLUMNS} WHERE system_id = ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(system)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(trip).collect())
    }

    /// What `system`'s breaker counts now.
    pub async fn breaker_tally(&self, system: &str) -> Result<Tally> {
        let config = self.breaker_config(system);
        let mut conn = self.pool().acquire().await?;
        let mut tally = tally(&mut conn, system, &config, self.now()).await?;
        if tally.linked == 0 {
            tally.linked = sqlx::query_scalar(
                "SELECT COUNT(*) FROM links WHERE system_id = ? AND deleted = 0",
            )
            .bind(system)
            .fetch_one(&mut *conn)
            .await?;
        }
        Ok(tally)
    }

    /// Confirms or discards `system`'s open trip, for the writes queued up to `reviewed` (the
    /// newest write the admin was shown; every write queued until now when `None`). Confirming
    /// sends those writes; discarding supersedes their updates and deletes (the system keeps
    /// what it holds; the golden record keeps the change, so a record's next change sends its
    /// differences again). Writes queued after `reviewed` are then judged afresh: they flow if
    /// on their own they stay within the breaker's share, else the breaker trips again on them.
    pub async fn decide_breaker(
        &self,
        system: &str,
        decision: BreakerDecision,
        note: &str,
        actor: &Actor,
        reviewed: Option<i64>,
    ) -> Result<BreakerOutcome> {
        let now = self.now();
        let guard = self.inner.write_lock.lock().await;
        let mut tx = store::begin_write(self.pool()).await?;
        let open = sqlx::query(&format!(
            "{TRIP_COLUMNS} WHERE system_id = ? AND status = 'open'"
        ))
        .bind(system)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| trip(&r))
        .ok_or_else(|| {
            EngineError::Conflict(format!("the breaker of '{system}' is not tripped"))
        })?;
        let newest: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM outbox WHERE system_id = ?")
                .bind(system)
                .fetch_one(&mut *tx)
                .await?;
        let through = reviewed.map_or(newest, |r| r.clamp(0, newest));
        let unreviewed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE system_id = ? AND status = 'pending' AND id > ?",
        )
        .bind(system)
        .bind(through)
        .fetch_one(&mut *tx)
        .await?;
        let discarded = match decision {
            BreakerDecision::Confirm => 0,
            BreakerDecision::Discard => sqlx::query(
                "UPDATE outbox SET status = 'superseded', last_error = 'discarded when the circuit breaker tripped'
                 WHERE system_id = ? AND status = 'pending' AND op != 'create' AND id <= ?",
            )
            .bind(system)
            .bind(through)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        let status = match decision {
            BreakerDecision::Confirm => "confirmed",
            BreakerDecision::Discard => "discarded",
        };
        sqlx::query(
            "UPDATE breaker_trips SET status = ?, decided_at = ?, decided_by = ?, note = ?, through_outbox = ?
             WHERE id = ?",
        )
        .bind(status)
        .bind(ts(now))
        .bind(&actor.name)
        .bind(note)
        .bind(through)
        .bind(open.id)
        .execute(&mut *tx)
        .await?;
        store::insert_audit(
            &mut tx,
            &[
                AuditEntry::engine(format!("breaker:{status}"), Direction::Out)
                    .by(actor.clone())
                    .system(system)
                    .detail(
                        json!({ "trip": open.id, "note": note, "discarded": discarded,
                                "through_outbox": through, "queued_since_review": unreviewed,
                                "reason": open.reason() }),
                    ),
            ],
            now,
        )
        .await?;
        let workspace = self.workspace();
        let tripped_again = check(
            &mut tx,
            &workspace,
            &self.inner.settings.breaker,
            [system],
            now,
        )
        .await?
        .pop();
        tx.commit().await?;
        drop(guard);
        self.inner.outbox_ready.notify_waiters();
        Ok(BreakerOutcome {
            discarded,
            queued_since_review: unreviewed,
            tripped_again,
        })
    }
}

/// What deciding a trip did.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerOutcome {
    /// Held updates and deletes discarded (never sent).
    pub discarded: u64,
    /// Writes queued after the ones the admin reviewed, judged afresh.
    pub queued_since_review: i64,
    /// The trip those writes opened, when on their own they cross the line.
    pub tripped_again: Option<BreakerTrip>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_share: f64, min_records: u32) -> BreakerConfig {
        BreakerConfig {
            max_share,
            min_records,
            ..BreakerConfig::default()
        }
    }

    fn tally(overwrites: i64, deletes: i64, linked: i64) -> Tally {
        Tally {
            overwrites,
            deletes,
            linked,
        }
    }

    #[test]
    fn trips_above_the_share_and_not_at_it() {
        let c = config(0.1, 1);
        assert!(
            !judge(&c, &tally(10, 0, 100)),
            "exactly 10% of 100 is not more than 10%"
        );
        assert!(judge(&c, &tally(11, 0, 100)), "11 of 100 is more than 10%");
        assert!(
            judge(&c, &tally(6, 5, 100)),
            "updates and deletes count together"
        );
    }

    #[test]
    fn a_small_count_never_trips_and_a_disabled_breaker_never_does() {
        assert!(
            !judge(&config(0.1, 10), &tally(9, 0, 20)),
            "fewer than min_records never trips"
        );
        assert!(judge(&config(0.1, 10), &tally(10, 0, 20)));
        let off = BreakerConfig {
            enabled: false,
            ..config(0.1, 1)
        };
        assert!(
            !judge(&off, &tally(100, 0, 100)),
            "a disabled breaker never trips"
        );
    }

    #[test]
    fn the_reason_says_how_many_of_how_many_and_the_limit() {
        let t = BreakerTrip {
            id: 1,
            system: "payroll".into(),
            status: "open".into(),
            overwrites: 12,
            deletes: 3,
            linked: 100,
            max_share: 0.1,
            window_secs: 300,
            tripped_at: String::new(),
            decided_at: None,
            decided_by: None,
            note: None,
        };
        assert_eq!(
            t.reason(),
            "15 of 100 records (15%) would be overwritten or deleted within 5 min; the limit is 10%"
        );
    }
}
