//! The dashboard's figures: counters, queue depths, per-system health and propagation lag now
//! (`/api/metrics`), and snapshots of them over time for its charts (`/api/metrics/history`),
//! taken by the engine once a minute and kept for a week.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use super::mask::Redactor;
use super::{ApiQuery, ApiResult, Console, Principal, input};
use crate::runtime::Engine;
use crate::server::ApiError;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Metrics {
    /// Whether applying and delivering are paused.
    #[serde(default)]
    pub paused: bool,
    pub counters: BTreeMap<String, i64>,
    pub inbox_pending: i64,
    pub outbox_pending: i64,
    pub open_exceptions: i64,
    pub dead_letters: i64,
    /// Seconds since the oldest pending inbox event arrived.
    pub oldest_pending_secs: Option<f64>,
    /// Propagation lag of the writes sent in the last minute (from the change reaching the
    /// engine to the target accepting it): median and 95th percentile, in seconds.
    #[serde(default)]
    pub lag_p50_secs: Option<f64>,
    #[serde(default)]
    pub lag_p95_secs: Option<f64>,
    /// Writes those figures are taken from (the newest 1,000 per system at most).
    #[serde(default)]
    pub lag_sample: i64,
    pub per_system: Vec<SystemHealth>,
    /// Systems whose writes the circuit breaker holds, oldest trip first.
    #[serde(default)]
    pub breakers: Vec<crate::breaker::BreakerTrip>,
    /// The workspace at a glance: healthy, degraded or failing, and why.
    #[serde(default)]
    pub verdict: crate::health::Verdict,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SystemHealth {
    pub system: String,
    pub outbox_pending: i64,
    pub dead_letters: i64,
    pub sent: i64,
    /// Queued writes that have failed at least once and wait for a retry.
    #[serde(default)]
    pub retrying: i64,
    /// When the system last accepted a write.
    #[serde(default)]
    pub last_sent_at: Option<String>,
    /// 95th percentile propagation lag of its writes sent in the last minute, in seconds.
    #[serde(default)]
    pub lag_p95_secs: Option<f64>,
    /// Whether it is in sync, and if not, how: see `reason`.
    #[serde(default)]
    pub state: crate::health::SystemState,
    /// One sentence saying why it is in that state.
    #[serde(default)]
    pub reason: String,
    /// The latest error: of its reads when they fail, else of the newest write waiting to be
    /// tried again.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When a read (poll) of it last succeeded in this process; none for systems that only
    /// send webhooks, or before the first poll.
    #[serde(default)]
    pub last_read_at: Option<String>,
    /// The record the write that failed with `last_error` was for: the error is masked for
    /// the caller with that record's sensitive values.
    #[serde(skip)]
    pub last_error_record: Option<(String, crate::model::RecordId)>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// RFC 3339; samples at or after (default: the last hour).
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// At most this many samples (default 720, at least 10, at most 5000): a long range is
    /// thinned evenly, always keeping the newest.
    #[param(minimum = 10, maximum = 5000)]
    pub max_points: Option<i64>,
}

impl input::Checked for HistoryQuery {
    fn check(&self) -> Result<(), String> {
        input::rfc3339("since", self.since.as_deref())?;
        input::in_range("max_points", self.max_points, 10, 5000)
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetricsSample {
    pub at: String,
    pub metrics: Metrics,
}

#[utoipa::path(get, path = "/api/metrics/history", params(HistoryQuery),
    responses((status = 200, body = Vec<MetricsSample>)), security(("token" = [])))]
pub(super) async fn metrics_history(
    State(c): State<Console>,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> ApiResult<Vec<MetricsSample>> {
    let since = match q.since {
        Some(s) => crate::store::ts(crate::store::parse_ts(&s).ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!("since: '{s}' is not an RFC 3339 time"),
            )
        })?),
        None => crate::store::ts(c.engine.now() - chrono::Duration::hours(1)),
    };
    let max_points = q.max_points.unwrap_or(720).clamp(10, 5000);
    let available: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metrics_samples WHERE at >= ?")
        .bind(&since)
        .fetch_one(c.engine.pool())
        .await
        .map_err(crate::EngineError::from)?;
    // Every `stride`-th sample counting back from the newest: evenly spread, newest included.
    let stride = ((available + max_points - 1) / max_points).max(1);
    let rows = sqlx::query(
        "SELECT at, sample FROM (
             SELECT at, sample, ROW_NUMBER() OVER (ORDER BY at DESC) - 1 AS back
             FROM metrics_samples WHERE at >= ?)
         WHERE back % ? = 0 ORDER BY at",
    )
    .bind(&since)
    .bind(stride)
    .fetch_all(c.engine.pool())
    .await
    .map_err(crate::EngineError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let sample: String = r.get(1);
        if let Ok(metrics) = serde_json::from_str(&sample) {
            out.push(MetricsSample {
                at: r.get(0),
                metrics,
            });
        }
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/metrics", responses((status = 200, body = Metrics)), security(("token" = [])))]
pub(super) async fn metrics(State(c): State<Console>, who: Principal) -> ApiResult<Metrics> {
    let mut metrics = c.engine.metrics().await?;
    let mut redactor = Redactor::new(&c.engine, &who);
    for s in &mut metrics.per_system {
        if let (Some(error), Some((object, record))) = (&mut s.last_error, &s.last_error_record) {
            redactor.scrub_message(object, *record, error).await;
        }
    }
    Ok(Json(metrics))
}

/// How far back the propagation lag looks.
const LAG_WINDOW_SECS: i64 = 60;

/// The `q` quantile (0..=1) by the nearest-rank method; None for no values.
pub fn percentile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = (q * values.len() as f64).ceil() as usize;
    Some(values[rank.clamp(1, values.len()) - 1])
}

impl Engine {
    /// Stores a snapshot of [`Engine::metrics`] for the dashboard's charts. Old snapshots go
    /// with the rest of the history ([`Engine::compact_history`]).
    pub async fn sample_metrics(&self) -> crate::Result<()> {
        let mut metrics = self.metrics().await?;
        // Charts need no error text, and a system's answer may quote a record's values: the
        // stored history keeps none, so it never needs masking.
        for s in &mut metrics.per_system {
            s.last_error = None;
            s.last_error_record = None;
        }
        let now = self.now();
        // Every writer takes the engine's write lock: SQLite has one writer, and a write that
        // races another connection's commit fails with SQLITE_BUSY_SNAPSHOT.
        let _guard = self.inner.write_lock.lock().await;
        sqlx::query("INSERT OR REPLACE INTO metrics_samples (at, sample) VALUES (?, ?)")
            .bind(crate::store::ts(now))
            .bind(serde_json::to_string(&metrics)?)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// What the dashboard's verdict on one system is decided from (see [`crate::health`]).
    async fn observe_system(
        &self,
        system: &str,
        queued: i64,
        dead_letters: i64,
        retrying: i64,
        last_sent_at: Option<&str>,
    ) -> crate::Result<(
        crate::health::Observed,
        Option<(String, crate::model::RecordId)>,
    )> {
        let now = self.now();
        let secs_since = |at: Option<&str>| {
            at.and_then(crate::store::parse_ts)
                .map(|t| (now - t).num_milliseconds() as f64 / 1000.0)
        };
        let mut conn = self.pool().acquire().await?;
        let oldest_due: Option<String> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM outbox
             WHERE system_id = ? AND status = 'pending' AND next_attempt_at <= ?",
        )
        .bind(system)
        .bind(crate::store::ts(now))
        .fetch_one(&mut *conn)
        .await?;
        let last_write_error: Option<(String, String, crate::model::RecordId)> = if retrying > 0 {
            sqlx::query_as(
                "SELECT last_error, object, record_id FROM outbox INDEXED BY outbox_attempted
                 WHERE system_id = ? AND status IN ('pending', 'in_flight') AND attempts > 0
                   AND status = 'pending' AND last_error IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(system)
            .fetch_optional(&mut *conn)
            .await?
        } else {
            None
        };
        let (last_write_error, record) = match last_write_error {
            Some((error, object, record)) => (Some(error), Some((object, record))),
            None => (None, None),
        };
        let creates_held = match self.connector(system) {
            Some(connector) if queued > 0 => !self
                .creates_held(&mut conn, system, connector.as_ref())
                .await?
                .is_empty(),
            _ => false,
        };
        let breaker = sqlx::query(&format!(
            "{} WHERE system_id = ? AND status = 'open'",
            crate::breaker::TRIP_COLUMNS
        ))
        .bind(system)
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| crate::breaker::trip(&r).reason());
        let observed = crate::health::Observed {
            paused: self.is_paused(),
            breaker,
            queued,
            retrying,
            dead_letters,
            oldest_due_secs: secs_since(oldest_due.as_deref()),
            last_sent_secs: secs_since(last_sent_at),
            creates_held,
            writes_held: self.writes_held(system),
            reads: self.read_health(system),
            last_write_error: last_write_error.map(|e| crate::health::shorten(&e)),
        };
        Ok((observed, record))
    }

    /// Counters, queue depths, and per-system health, now.
    pub async fn metrics(&self) -> crate::Result<Metrics> {
        let mut counters = BTreeMap::new();
        for r in sqlx::query("SELECT name, value FROM counters")
            .fetch_all(self.pool())
            .await?
        {
            let name: String = r.get(0);
            // Per-system counts (`name@system`) are for the Prometheus endpoint's labels.
            if !name.contains('@') {
                counters.insert(name, r.get(1));
            }
        }
        let scalar = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(self.pool())
                .await
        };
        let inbox_pending = scalar("SELECT COUNT(*) FROM inbox WHERE status = 'pending'").await?;
        let outbox_pending =
            scalar("SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight')").await?;
        let open_exceptions =
            scalar("SELECT COUNT(*) FROM exceptions WHERE status = 'open'").await?;
        let dead_letters =
            scalar("SELECT COUNT(*) FROM dead_letters WHERE status = 'dead'").await?;
        let oldest: Option<String> =
            sqlx::query_scalar("SELECT MIN(received_at) FROM inbox WHERE status = 'pending'")
                .fetch_one(self.pool())
                .await?;
        let now = self.now();
        let oldest_pending_secs = oldest
            .as_deref()
            .and_then(crate::store::parse_ts)
            .map(|t| (now - t).num_milliseconds() as f64 / 1000.0);
        let lag_since = crate::store::ts(now - chrono::Duration::seconds(LAG_WINDOW_SECS));
        let mut all_lags = Vec::new();
        let mut per_system = Vec::new();
        let mut verdicts = Vec::new();
        for s in &self.workspace().config.systems {
            let rows = sqlx::query(
                "SELECT COALESCE(origin_at, created_at), sent_at FROM outbox
                 WHERE system_id = ? AND status = 'sent' AND sent_at >= ?
                 ORDER BY sent_at DESC LIMIT 1000",
            )
            .bind(&s.id)
            .bind(&lag_since)
            .fetch_all(self.pool())
            .await?;
            let mut lags: Vec<f64> = rows
                .iter()
                .filter_map(|r| {
                    let from = crate::store::parse_ts(&r.get::<String, _>(0))?;
                    let to = crate::store::parse_ts(&r.get::<String, _>(1))?;
                    Some(((to - from).num_milliseconds().max(0)) as f64 / 1000.0)
                })
                .collect();
            let last_sent_at: Option<String> = sqlx::query_scalar(
                "SELECT MAX(sent_at) FROM outbox WHERE system_id = ? AND status = 'sent'",
            )
            .bind(&s.id)
            .fetch_one(self.pool())
            .await?;
            let count = |sql: &'static str| {
                let id = s.id.clone();
                async move {
                    sqlx::query_scalar::<_, i64>(sql)
                        .bind(id)
                        .fetch_one(self.pool())
                        .await
                }
            };
            let outbox_pending = count("SELECT COUNT(*) FROM outbox WHERE system_id = ? AND status IN ('pending', 'in_flight')").await?;
            let dead_letters =
                count("SELECT COUNT(*) FROM dead_letters WHERE system_id = ? AND status = 'dead'")
                    .await?;
            // Through the index of attempted writes: by system and status, SQLite would read
            // every queued write for its attempt count, on every sample.
            let retrying = count(
                "SELECT COUNT(*) FROM outbox INDEXED BY outbox_attempted
                 WHERE system_id = ? AND status IN ('pending', 'in_flight') AND attempts > 0
                   AND status = 'pending'",
            )
            .await?;
            let (observed, write_error_record) = self
                .observe_system(
                    &s.id,
                    outbox_pending,
                    dead_letters,
                    retrying,
                    last_sent_at.as_deref(),
                )
                .await?;
            let (state, reason) = crate::health::verdict(&observed);
            verdicts.push(crate::health::SystemVerdict {
                name: s.name.clone(),
                state,
                reason: reason.clone(),
                flows: crate::health::flows(&observed, state),
                dead_letters,
            });
            let (last_error, last_error_record) = if observed.reads.failures_in_a_row > 0 {
                (observed.reads.last_error.clone(), None)
            } else {
                (observed.last_write_error.clone(), write_error_record)
            };
            per_system.push(SystemHealth {
                system: s.id.clone(),
                outbox_pending,
                dead_letters,
                sent: count("SELECT COUNT(*) FROM outbox WHERE system_id = ? AND status = 'sent'")
                    .await?,
                retrying,
                last_sent_at,
                lag_p95_secs: percentile(&mut lags, 0.95),
                state,
                reason,
                last_error,
                last_read_at: observed.reads.last_ok_at.map(crate::store::ts),
                last_error_record,
            });
            all_lags.append(&mut lags);
        }
        let lag_sample = all_lags.len() as i64;
        let breakers = self.open_breakers().await?;
        let paused = self.is_paused();
        Ok(Metrics {
            verdict: crate::health::overall(&verdicts, paused, oldest_pending_secs),
            breakers,
            paused,
            counters,
            inbox_pending,
            outbox_pending,
            open_exceptions,
            dead_letters,
            oldest_pending_secs,
            lag_p50_secs: percentile(&mut all_lags, 0.5),
            lag_p95_secs: percentile(&mut all_lags, 0.95),
            lag_sample,
            per_system,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut lags: Vec<f64> = (1..=100).map(f64::from).collect();
        lags.reverse();
        assert_eq!(
            percentile(&mut lags, 0.5),
            Some(50.0),
            "the median of 1..=100 by rank"
        );
        assert_eq!(percentile(&mut lags, 0.95), Some(95.0), "p95 of 1..=100");
        assert_eq!(
            percentile(&mut [7.0], 0.95),
            Some(7.0),
            "one value is every percentile"
        );
        assert_eq!(percentile(&mut [], 0.5), None, "no values, no percentile");
    }
}
