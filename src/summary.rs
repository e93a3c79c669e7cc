//! Loud failures, summed up: once a minute the running engine logs one line at info with what
//! it did (events in, writes out, retries, new dead letters and exceptions) and what waits
//! (queues, open exceptions, dead letters), so that a failing sync is visible in any log even
//! when nobody opens the console. Each failure itself logs its own warning where it happens.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::runtime::Engine;

/// Counters whose change over the minute is reported.
const COUNTED: [&str; 5] = [
    "events_in",
    "events_out",
    "retries",
    "dead_letters",
    "stale",
];

/// What one summary line reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Per counter, its change since the last summary.
    pub deltas: Vec<(&'static str, i64)>,
    pub exceptions_opened: i64,
    pub open_exceptions: i64,
    pub dead_letters: i64,
    pub inbox_pending: i64,
    pub outbox_pending: i64,
}

impl Engine {
    async fn counters(&self) -> Result<Vec<i64>> {
        let mut out = Vec::with_capacity(COUNTED.len());
        for name in COUNTED {
            out.push(crate::store::counter(self.pool(), name).await?);
        }
        Ok(out)
    }

    /// The summary since `last` (counter values and the last exception id seen), and the new
    /// values to compare the next one with.
    pub async fn summary(&self, last: &(Vec<i64>, i64)) -> Result<(Summary, (Vec<i64>, i64))> {
        let now = self.counters().await?;
        let (open_exceptions, max_exception, dead_letters, inbox_pending, outbox_pending): (
            i64,
            i64,
            i64,
            i64,
            i64,
        ) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM exceptions WHERE status = 'open'),
                    (SELECT COALESCE(MAX(id), 0) FROM exceptions),
                    (SELECT COUNT(*) FROM dead_letters WHERE status = 'dead'),
                    (SELECT COUNT(*) FROM inbox WHERE status = 'pending'),
                    (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight'))",
        )
        .fetch_one(self.pool())
        .await?;
        let deltas = COUNTED
            .iter()
            .zip(&now)
            .zip(last.0.iter().chain(std::iter::repeat(&0)))
            .map(|((name, n), before)| (*name, n - before))
            .collect();
        let summary = Summary {
            deltas,
            exceptions_opened: max_exception - last.1,
            open_exceptions,
            dead_letters,
            inbox_pending,
            outbox_pending,
        };
        Ok((summary, (now, max_exception)))
    }

    /// Logs a summary line every `every` until cancelled.
    pub(crate) async fn summary_loop(&self, every: Duration, cancel: CancellationToken) {
        let mut last = match self.summary(&(Vec::new(), 0)).await {
            Ok((_, state)) => state,
            Err(_) => (Vec::new(), 0),
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        tick.tick().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.summary(&last).await {
                Ok((s, next)) => {
                    last = next;
                    let get = |name: &str| {
                        s.deltas
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map_or(0, |(_, d)| *d)
                    };
                    tracing::info!(
                        events_in = get("events_in"),
                        writes_out = get("events_out"),
                        retries = get("retries"),
                        new_dead_letters = get("dead_letters"),
                        new_exceptions = s.exceptions_opened,
                        stale = get("stale"),
                        open_exceptions = s.open_exceptions,
                        dead_letters = s.dead_letters,
                        inbox_pending = s.inbox_pending,
                        outbox_pending = s.outbox_pending,
                        "summary of the last minute"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "could not sum up the last minute"),
            }
        }
    }
}
