//! Streaming delivery, as a running engine sends: per system, writes are claimed as soon as
//! they are queued and a sending slot is free, each is sent on its own task, and outcomes are
//! committed as they come in, together with the next claim, in one transaction. Nothing waits
//! for the slowest write of a round: a write queued while others are in flight is sent beside
//! them, not after them.
//!
//! The guarantees are a round's ([`Engine::deliver`]): one write in flight per record, writes of
//! a record in order, an outcome committed with all it implies or not at all. A claimed write
//! whose outcome could not be committed goes back to pending as possibly sent (re-sent with its
//! idempotency key, a create looked up first), as after a crash.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::send::{Claimed, Outcome, send_one};
use crate::runtime::Engine;

impl Engine {
    /// Delivers one system's writes until `cancel` fires; then lets the writes in flight finish
    /// and commits their outcomes.
    pub(crate) async fn delivery_loop(&self, system: String, cancel: CancellationToken) {
        let settings = &self.inner.settings;
        let concurrency = settings.send_concurrency.max(1);
        // Writes claimed and not yet committed, at most: those past the sending slots wait
        // for one in order, already claimed.
        let window = settings.send_batch.max(concurrency);
        let slots = Arc::new(Semaphore::new(concurrency));
        let mut sending: JoinSet<(Claimed, Outcome)> = JoinSet::new();
        let mut finished: Vec<(Claimed, Outcome)> = Vec::new();
        let mut look = true;
        let mut next_look = tokio::time::Instant::now();
        loop {
            // Listening starts before looking for work: `notify_waiters` keeps no permit.
            let queued = self.inner.outbox_ready.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            let stopping = cancel.is_cancelled();
            // A committed outcome may free its record's next write: look again after one.
            let limit = if stopping || self.is_paused() || (!look && finished.is_empty()) {
                0
            } else {
                window.saturating_sub(sending.len())
            };
            if !finished.is_empty() || limit > 0 {
                let results = std::mem::take(&mut finished);
                let ids: Vec<i64> = results.iter().map(|(row, _)| row.id).collect();
                match self.commit_and_claim(&system, results, limit).await {
                    Ok(claimed) => {
                        // Fewer than asked: nothing else is due until told or the next look.
                        look = limit > 0 && claimed.len() == limit;
                        next_look = tokio::time::Instant::now() + settings.idle_poll;
                        self.spawn_sends(&system, claimed, &slots, &mut sending);
                    }
                    Err(e) => {
                        tracing::error!(system, error = %e, "delivering writes failed; retrying");
                        self.requeue_in_flight(&ids).await;
                        next_look = tokio::time::Instant::now() + settings.idle_poll;
                        look = false;
                    }
                }
            }
            if stopping && sending.is_empty() && finished.is_empty() {
                break;
            }
            tokio::select! {
                Some(joined) = sending.join_next(), if !sending.is_empty() => {
                    collect(joined, &system, &mut finished);
                    while let Some(joined) = sending.try_join_next() {
                        collect(joined, &system, &mut finished);
                    }
                }
                () = &mut queued => look = true,
                () = tokio::time::sleep_until(next_look) => {
                    look = true;
                    next_look = tokio::time::Instant::now() + settings.idle_poll;
                }
                () = cancel.cancelled(), if !stopping => {}
            }
        }
    }

    /// Sends each claimed write on a task of its own, in claim order as slots free up, under
    /// the system's rate limit.
    fn spawn_sends(
        &self,
        system: &str,
        claimed: Vec<Claimed>,
        slots: &Arc<Semaphore>,
        sending: &mut JoinSet<(Claimed, Outcome)>,
    ) {
        if claimed.is_empty() {
            return;
        }
        let Some(connector) = self.connector(system) else {
            return;
        };
        let limiter = self.limiter(system);
        let ws = self.workspace();
        for row in claimed {
            let connector = connector.clone();
            let limiter = limiter.clone();
            let ws = ws.clone();
            let slots = slots.clone();
            let system = system.to_owned();
            // Slots free now are taken here, so that the writes claimed first are sent first
            // (tasks start in no set order).
            let slot = slots.clone().try_acquire_owned().ok();
            sending.spawn(async move {
                let _slot = match slot {
                    Some(slot) => slot,
                    None => match slots.acquire_owned().await {
                        Ok(slot) => slot,
                        Err(_) => return (row, Outcome::Waiting),
                    },
                };
                if let Some(l) = &limiter {
                    l.acquire().await;
                }
                let outcome = send_one(connector.as_ref(), &ws, &system, &row).await;
                (row, outcome)
            });
        }
    }

    /// Writes whose outcome could not be committed go back to pending as possibly sent, as
    /// after a crash: re-sent unchanged with the same idempotency key, a create looked up first.
    async fn requeue_in_flight(&self, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let _guard = self.inner.write_lock.lock().await;
        let _writer = self.inner.sqlite_writer.lock().await;
        if let Err(e) = super::requeue_possibly_sent(&self.inner.pool, Some(ids)).await {
            tracing::error!(error = %e, writes = ids.len(),
                "could not put writes back in the queue; they resume when the engine restarts");
        }
    }
}

fn collect(
    joined: std::result::Result<(Claimed, Outcome), tokio::task::JoinError>,
    system: &str,
    finished: &mut Vec<(Claimed, Outcome)>,
) {
    match joined {
        Ok(result) => finished.push(result),
        // Its write stays in flight and is re-sent, as possibly sent, when the engine restarts.
        Err(e) => tracing::error!(system, error = %e, "a write's sending task failed"),
    }
}
