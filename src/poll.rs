//! Polling: the initial full listing of each system (page by page, resumable after a restart,
//! with progress), then incremental changes since a cursor on an interval. Each page is stored
//! in the inbox together with the cursor that follows it, in one transaction, so a crash never
//! skips a page nor loses the place. Pages are never all held in memory.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use chrono::{DateTime, Utc};

use crate::connectors::rest::{capped_cursor, event_from_fetched, later_cursor};
use crate::error::Result;
use crate::runtime::Engine;
use crate::store::ts;

/// Without the system's own time, the engine's clock less this margin stands for when a pass
/// began (the two clocks may differ a little).
const CLOCK_MARGIN_SECS: i64 = 5;

/// How far a system's initial listing has come.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ListingProgress {
    pub system: String,
    pub object: String,
    pub listed: u64,
    pub total: Option<u64>,
    pub done: bool,
    /// Seconds left at the current rate, when the total is known.
    pub eta_secs: Option<f64>,
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PollReport {
    pub fetched: u64,
    pub pages: u64,
    pub listing: Vec<ListingProgress>,
}

struct CursorRow {
    cursor: Option<String>,
    listing_done: bool,
    listing_page: Option<String>,
    listed: u64,
}

impl Engine {
    async fn cursor_row(&self, system: &str, object: &str) -> Result<CursorRow> {
        let row = sqlx::query(
            "SELECT cursor, listing_done, listing_page, listed FROM poll_cursors WHERE system_id = ? AND object = ?",
        )
        .bind(system)
        .bind(object)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(r) => CursorRow {
                cursor: r.get(0),
                listing_done: r.get::<i64, _>(1) != 0,
                listing_page: r.get(2),
                listed: u64::try_from(r.get::<i64, _>(3)).unwrap_or(0),
            },
            None => CursorRow {
                cursor: None,
                listing_done: false,
                listing_page: None,
                listed: 0,
            },
        })
    }

    /// Polls one system once: finishes (or starts) its initial listing, or fetches the changes
    /// since its cursor. `on_page` sees the listing progress after every page.
    pub async fn poll(
        &self,
        system: &str,
        on_page: impl FnMut(&ListingProgress),
    ) -> Result<PollReport> {
        let result = self.poll_objects(system, on_page).await;
        let now = self.now();
        let mut reads = self
            .inner
            .reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let health = reads.entry(system.to_owned()).or_default();
        match &result {
            Ok(_) => health.succeeded(now),
            Err(e) => health.failed(now, &e.to_string()),
        }
        result
    }

    /// How the reads of `system` went since the engine started.
    pub fn read_health(&self, system: &str) -> crate::health::ReadHealth {
        self.inner
            .reads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(system)
            .cloned()
            .unwrap_or_default()
    }

    async fn poll_objects(
        &self,
        system: &str,
        mut on_page: impl FnMut(&ListingProgress),
    ) -> Result<PollReport> {
        let Some(connector) = self.connector(system) else {
            return Ok(PollReport::default());
        };
        let ws = self.workspace();
        let objects: Vec<String> = ws
            .config
            .mappings
            .iter()
            .filter(|m| m.system == system)
            .map(|m| m.object.clone())
            .collect();
        let limiter = self.limiter(system);
        let mut report = PollReport::default();
        for object in objects {
            let mut row = self.cursor_row(system, &object).await?;
            let listing = !row.listing_done;
            let since = row.cursor.clone();
            let mut page_token = if listing {
                row.listing_page.clone()
            } else {
                None
            };
            let started = Instant::now();
            let listed_at_start = row.listed;
            // When the system answered the pass's first page: the cursor never moves past it.
            let mut pass_began: Option<DateTime<Utc>> = None;
            loop {
                if let Some(l) = &limiter {
                    l.acquire().await;
                }
                let page = match (listing, since.as_deref()) {
                    (false, Some(since)) => {
                        connector
                            .changes_page(&object, since, page_token.as_deref())
                            .await?
                    }
                    _ => connector.list_page(&object, page_token.as_deref()).await?,
                };
                let began = *pass_began.get_or_insert_with(|| {
                    page.server_time.unwrap_or_else(|| {
                        self.now() - chrono::Duration::seconds(CLOCK_MARGIN_SECS)
                    })
                });
                let mut cursor = row.cursor.clone();
                let mut events = Vec::with_capacity(page.records.len());
                for record in page.records {
                    if let Some(m) = &record.modified {
                        cursor = Some(later_cursor(cursor.as_deref(), m));
                    }
                    events.push(event_from_fetched(system, &object, record));
                }
                for external_id in &page.deleted {
                    events.push(deleted_event(
                        system,
                        &object,
                        external_id,
                        page.cursor.as_deref(),
                        self.now(),
                    ));
                }
                // A cursor the connector keeps itself (a change table's sequence) is exact.
                let cursor = page
                    .cursor
                    .clone()
                    .or_else(|| cursor.map(|c| capped_cursor(&c, began)));
                // A finished listing that found nothing to take a cursor from starts the
                // changes from when it began, so the next poll asks only for changes.
                let cursor = match cursor {
                    None if listing && page.next.is_none() => connector.cursor_at(&object, began),
                    other => other,
                };
                self.check_events(&events)?;
                let fetched = events.len() as u64;
                row.listed += if listing { fetched } else { 0 };
                let done = page.next.is_none();
                {
                    let _guard = self.inner.write_lock.lock().await;
                    let mut tx = crate::store::begin_write(self.pool()).await?;
                    self.insert_events(&mut tx, &events).await?;
                    sqlx::query(
                        "INSERT INTO poll_cursors (system_id, object, cursor, listing_done, listing_page, listed, updated_at, listing_done_at)
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT(system_id, object) DO UPDATE SET cursor = excluded.cursor,
                           listing_done = excluded.listing_done, listing_page = excluded.listing_page,
                           listed = excluded.listed, updated_at = excluded.updated_at,
                           listing_done_at = COALESCE(poll_cursors.listing_done_at, excluded.listing_done_at)",
                    )
                    .bind(system)
                    .bind(&object)
                    .bind(&cursor)
                    .bind(i64::from(row.listing_done || (listing && done)))
                    .bind(if listing && !done { page.next.clone() } else { None })
                    .bind(i64::try_from(row.listed).unwrap_or(i64::MAX))
                    .bind(ts(self.now()))
                    .bind((listing && done).then(|| ts(self.now())))
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                }
                self.inner.inbox_ready.notify_one();
                row.cursor = cursor;
                report.fetched += fetched;
                report.pages += 1;
                if listing {
                    let rate = (row.listed - listed_at_start) as f64
                        / started.elapsed().as_secs_f64().max(1e-3);
                    let progress = ListingProgress {
                        system: system.to_owned(),
                        object: object.clone(),
                        listed: row.listed,
                        total: page.total,
                        done,
                        eta_secs: page
                            .total
                            .filter(|_| rate > 0.0)
                            .map(|t| t.saturating_sub(row.listed) as f64 / rate),
                    };
                    on_page(&progress);
                    if done {
                        report.listing.push(progress);
                    }
                }
                if done {
                    break;
                }
                page_token = page.next;
            }
        }
        Ok(report)
    }

    /// Polls `system` every `interval` until cancelled; failures are logged and retried at the
    /// next tick.
    pub(crate) async fn poll_loop(
        &self,
        system: String,
        interval: Duration,
        cancel: CancellationToken,
    ) {
        let mut last_logged: BTreeMap<String, u64> = BTreeMap::new();
        let signal = self.connector(&system).and_then(|c| c.change_signal());
        while !cancel.is_cancelled() {
            let result = self
                .poll(&system, |p| {
                    let step = last_logged.entry(p.object.clone()).or_default();
                    if p.done || p.listed >= *step + 200 {
                        *step = p.listed;
                        tracing::info!(
                            system = %p.system, object = %p.object, listed = p.listed, total = ?p.total,
                            eta_secs = ?p.eta_secs.map(|s| s.round()), "initial sync"
                        );
                    }
                })
                .await;
            if let Err(e) = result {
                tracing::warn!(system, code = "poll_failed", error = %e, "polling failed; trying again at the next interval");
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
                () = async {
                    match &signal {
                        Some(s) => s.notified().await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }
}

/// A delete the system reported on a page (a change table's row), as a change event; its key
/// names the page's cursor, so the same delete read twice is a duplicate.
fn deleted_event(
    system: &str,
    object: &str,
    external_id: &str,
    cursor: Option<&str>,
    now: DateTime<Utc>,
) -> crate::model::ChangeEvent {
    crate::model::ChangeEvent {
        system: system.to_owned(),
        object: object.to_owned(),
        external_id: external_id.to_owned(),
        op: crate::model::ChangeOp::Delete,
        record: serde_json::Map::new(),
        version: None,
        etag: None,
        source_ts: Some(now),
        event_key: format!("poll-delete:{external_id}:{}", cursor.unwrap_or_default()),
    }
}
