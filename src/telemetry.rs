//! What the engine measures in process for Prometheus, where a value must be observed as it
//! happens rather than read back from SQLite: the propagation lag of each write the moment it
//! is acknowledged, as a histogram per system. Counts kept in SQLite (events, writes, retries,
//! dead letters) and queue depths are read at scrape time instead (`/metrics`).

use prometheus::{HistogramOpts, HistogramVec};

/// Lag buckets, in seconds: from a webhook's round trip to a poll interval and beyond.
const LAG_BUCKETS: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
];

/// The engine's in-process instruments.
#[derive(Clone)]
pub struct Telemetry {
    /// From a change reaching the engine to the target system accepting the write it caused.
    pub propagation_lag: HistogramVec,
}

impl Default for Telemetry {
    fn default() -> Self {
        let opts = HistogramOpts::new(
            "concord_propagation_lag_seconds",
            "Time from a change reaching the engine to the target system accepting its write",
        )
        .buckets(LAG_BUCKETS.to_vec());
        Self {
            // The name, help and label are constants: creating it cannot fail.
            propagation_lag: HistogramVec::new(opts, &["system"])
                .unwrap_or_else(|e| unreachable!("a fixed histogram definition is valid: {e}")),
        }
    }
}
