//! Each system's loops (polling, scheduled reconciliation, delivery), kept in step with the
//! workspace while the engine runs: a system saved from the console starts reading and
//! writing at once, one whose config changed is restarted with it, and one removed stops.
//! Without this, a system added while the engine ran had its writes queued until a restart.

use std::collections::HashMap;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Engine;

/// The systems whose loops run, as started by [`Engine::start`].
pub(crate) struct SystemLoops {
    /// The engine's: every system's token is a child of it.
    cancel: CancellationToken,
    running: HashMap<String, RunningSystem>,
    /// Tasks of systems removed or restarted, until they finish.
    stopping: Vec<JoinHandle<()>>,
}

struct RunningSystem {
    /// The config the loops were started with (serialized), to see when it changes.
    config: String,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl SystemLoops {
    pub(crate) fn new(cancel: CancellationToken) -> Self {
        Self {
            cancel,
            running: HashMap::new(),
            stopping: Vec::new(),
        }
    }

    /// Every task, for a shutdown to wait on.
    pub(crate) fn take_tasks(&mut self) -> Vec<JoinHandle<()>> {
        let mut tasks = std::mem::take(&mut self.stopping);
        tasks.extend(self.running.drain().map(|(_, r)| r.task));
        tasks
    }
}

impl Engine {
    /// Starts the loops of the workspace's systems that have none, restarts those whose
    /// config changed, and stops those no longer in it. Does nothing before [`Engine::start`]
    /// or after its shutdown.
    pub(crate) fn sync_system_loops(&self) {
        let mut guard = self
            .inner
            .system_loops
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(loops) = guard.as_mut() else {
            return;
        };
        if loops.cancel.is_cancelled() {
            return;
        }
        loops.stopping.retain(|t| !t.is_finished());
        let ws = self.workspace();
        let wanted: HashMap<&str, String> = ws
            .config
            .systems
            .iter()
            .map(|s| (s.id.as_str(), serde_json::to_string(s).unwrap_or_default()))
            .collect();
        let changed: Vec<String> = loops
            .running
            .iter()
            .filter(|(id, r)| wanted.get(id.as_str()) != Some(&r.config))
            .map(|(id, _)| id.clone())
            .collect();
        let mut previous: HashMap<String, JoinHandle<()>> = HashMap::new();
        for id in changed {
            if let Some(r) = loops.running.remove(&id) {
                r.cancel.cancel();
                previous.insert(id, r.task);
            }
        }
        for (id, config) in wanted {
            if loops.running.contains_key(id) {
                continue;
            }
            let cancel = loops.cancel.child_token();
            let engine = self.clone();
            let system = id.to_owned();
            let before = previous.remove(id);
            let token = cancel.clone();
            let task = tokio::spawn(async move {
                // A restarted system's old loops finish their round first, so that two
                // pollers or senders of one system never overlap.
                if let Some(before) = before {
                    let _ = before.await;
                }
                engine.run_system(system, token).await;
            });
            loops.running.insert(
                id.to_owned(),
                RunningSystem {
                    config,
                    cancel,
                    task,
                },
            );
        }
        // Systems removed: their loops were cancelled above and finish on their own.
        loops.stopping.extend(previous.into_values());
    }

    /// One system's loops, until `cancel` fires.
    async fn run_system(&self, system: String, cancel: CancellationToken) {
        let connector = self.connector(&system);
        let poll = async {
            if let Some(interval) = connector.as_ref().and_then(|c| c.poll_interval()) {
                self.poll_loop(system.clone(), interval, cancel.clone())
                    .await;
            }
        };
        let reconcile = async {
            if let Some(schedule) = connector.as_ref().and_then(|c| c.reconcile_schedule()) {
                self.reconcile_loop(system.clone(), schedule.interval, cancel.clone())
                    .await;
            }
        };
        let deliver = self.delivery_loop(system.clone(), cancel.clone());
        tokio::join!(poll, reconcile, deliver);
    }
}
