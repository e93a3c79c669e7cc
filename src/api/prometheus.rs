//! `/metrics`: the engine's figures in Prometheus's text exposition format, for a scraper with
//! a `scrape` token (or any signed-in role but none other). Names carry the `concord_` prefix
//! and a `system` label where the figure is a system's. Counters kept in SQLite (events, writes,
//! retries, dead letters) survive restarts, as Prometheus expects of a `_total`; read results
//! and the propagation lag histogram count from the process's start. No value here names a
//! record or a field's value, so nothing needs masking.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::core::Collector;
use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use sqlx::Row;

use super::Console;
use crate::server::ApiError;

/// A counter kept in SQLite per system (`name@system`): its Prometheus name and help.
const SYSTEM_COUNTERS: [(&str, &str, &str); 5] = [
    (
        "events_in",
        "concord_events_received_total",
        "Change events received from the system",
    ),
    (
        "duplicates",
        "concord_events_duplicate_total",
        "Events received again (same event key) and ignored",
    ),
    (
        "events_out",
        "concord_writes_sent_total",
        "Writes the system accepted",
    ),
    (
        "retries",
        "concord_write_retries_total",
        "Writes to the system that failed and wait to be tried again",
    ),
    (
        "dead_letters",
        "concord_writes_dead_lettered_total",
        "Writes to the system that failed for good",
    ),
];

/// Engine-wide counters kept in SQLite.
const ENGINE_COUNTERS: [(&str, &str, &str); 4] = [
    (
        "noops",
        "concord_merge_noops_total",
        "Events that changed nothing",
    ),
    (
        "stale",
        "concord_events_stale_total",
        "Events older than what the engine already held",
    ),
    (
        "webhooks_refused",
        "concord_webhooks_refused_total",
        "Webhook deliveries refused (signature, age, size)",
    ),
    (
        "history_compacted",
        "concord_history_compacted_total",
        "Rows removed by retention",
    ),
];

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(
        StatusCode::INTERNAL_SERVER_ERROR,
        "metrics_failed",
        format!("the metrics could not be gathered: {e}"),
    )
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> Result<IntCounterVec, ApiError> {
    IntCounterVec::new(Opts::new(name, help), labels).map_err(internal)
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> Result<IntGaugeVec, ApiError> {
    IntGaugeVec::new(Opts::new(name, help), labels).map_err(internal)
}

fn register(registry: &Registry, c: impl Collector + 'static) -> Result<(), ApiError> {
    registry.register(Box::new(c)).map_err(internal)
}

#[utoipa::path(get, path = "/metrics",
    responses((status = 200, content_type = "text/plain", body = String,
        description = "Prometheus text exposition format, version 0.0.4")),
    security(("token" = [])))]
pub(super) async fn prometheus_metrics(State(c): State<Console>) -> Result<Response, ApiError> {
    let registry = gather(&c).await?;
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    encoder
        .encode(&registry.gather(), &mut body)
        .map_err(internal)?;
    Ok((
        [(header::CONTENT_TYPE, encoder.format_type().to_owned())],
        body,
    )
        .into_response())
}

/// Every figure, in a registry made for this scrape.
async fn gather(c: &Console) -> Result<Registry, ApiError> {
    let engine = &c.engine;
    let registry = Registry::new();
    let counters: Vec<(String, i64)> = sqlx::query("SELECT name, value FROM counters")
        .fetch_all(engine.pool())
        .await
        .map_err(internal)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let systems: Vec<String> = engine
        .workspace()
        .config
        .systems
        .iter()
        .map(|s| s.id.clone())
        .collect();
    for (key, name, help) in SYSTEM_COUNTERS {
        let vec = counter_vec(name, help, &["system"])?;
        for system in &systems {
            let value = counters
                .iter()
                .find(|(n, _)| n.split_once('@') == Some((key, system.as_str())))
                .map_or(0, |(_, v)| *v);
            vec.with_label_values(&[system])
                .inc_by(value.max(0).unsigned_abs());
        }
        register(&registry, vec)?;
    }
    for (key, name, help) in ENGINE_COUNTERS {
        let counter = prometheus::IntCounter::new(name, help).map_err(internal)?;
        let value = counters
            .iter()
            .find(|(n, _)| n == key)
            .map_or(0, |(_, v)| *v);
        counter.inc_by(value.max(0).unsigned_abs());
        register(&registry, counter)?;
    }

    let m = engine.metrics().await.map_err(internal)?;
    let single = |name: &str, help: &str, value: i64| -> Result<(), ApiError> {
        let g = prometheus::IntGauge::new(name, help).map_err(internal)?;
        g.set(value);
        register(&registry, g)
    };
    single(
        "concord_inbox_pending",
        "Events stored and waiting to be applied",
        m.inbox_pending,
    )?;
    single(
        "concord_paused",
        "1 while applying and delivering are paused",
        i64::from(m.paused),
    )?;
    let oldest = prometheus::Gauge::new(
        "concord_inbox_oldest_pending_seconds",
        "Age of the oldest event waiting to be applied (0 when none waits)",
    )
    .map_err(internal)?;
    oldest.set(m.oldest_pending_secs.unwrap_or(0.0));
    register(&registry, oldest)?;

    let queued = gauge_vec(
        "concord_outbox_pending",
        "Writes queued for the system (held ones included)",
        &["system"],
    )?;
    let retrying = gauge_vec(
        "concord_outbox_retrying",
        "Queued writes that failed at least once and wait for a retry",
        &["system"],
    )?;
    let dead = gauge_vec(
        "concord_dead_letters",
        "Writes that failed for good and wait for support",
        &["system"],
    )?;
    let state = gauge_vec(
        "concord_system_state",
        "1 for the state the system is in: healthy, reading, writing, retrying, stuck, failing, paused, planning or held",
        &["system", "state"],
    )?;
    let reads = counter_vec(
        "concord_reads_total",
        "Reads (polls) of the system since the process started, by result",
        &["system", "result"],
    )?;
    for s in &m.per_system {
        queued.with_label_values(&[&s.system]).set(s.outbox_pending);
        retrying.with_label_values(&[&s.system]).set(s.retrying);
        dead.with_label_values(&[&s.system]).set(s.dead_letters);
        let now = serde_json::to_value(s.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        state.with_label_values(&[&s.system, &now]).set(1);
        let health = engine.read_health(&s.system);
        reads
            .with_label_values(&[&s.system, "ok"])
            .inc_by(health.succeeded_total);
        reads
            .with_label_values(&[&s.system, "failed"])
            .inc_by(health.failed_total);
    }
    let breaker = gauge_vec(
        "concord_breaker_open",
        "1 while the circuit breaker holds the system's writes",
        &["system"],
    )?;
    for system in &systems {
        let open = m.breakers.iter().any(|t| &t.system == system);
        breaker.with_label_values(&[system]).set(i64::from(open));
    }
    for g in [queued, retrying, dead, state, breaker] {
        register(&registry, g)?;
    }
    register(&registry, reads)?;

    let exceptions = gauge_vec(
        "concord_exceptions_open",
        "Exceptions waiting for a person, by system and kind",
        &["system", "kind"],
    )?;
    for r in sqlx::query(
        "SELECT COALESCE(system_id, ''), kind, COUNT(*) FROM exceptions WHERE status = 'open' GROUP BY 1, 2",
    )
    .fetch_all(engine.pool())
    .await
    .map_err(internal)?
    {
        let (system, kind, n): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
        exceptions.with_label_values(&[&system, &kind]).set(n);
    }
    register(&registry, exceptions)?;

    let reconciles = gauge_vec(
        "concord_reconcile_runs",
        "Reconciliation runs on record, by system and outcome",
        &["system", "status"],
    )?;
    for r in sqlx::query("SELECT system_id, status, COUNT(*) FROM reconcile_runs GROUP BY 1, 2")
        .fetch_all(engine.pool())
        .await
        .map_err(internal)?
    {
        let (system, status, n): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
        reconciles.with_label_values(&[&system, &status]).set(n);
    }
    register(&registry, reconciles)?;
    register(&registry, engine.telemetry().propagation_lag.clone())?;
    Ok(registry)
}
