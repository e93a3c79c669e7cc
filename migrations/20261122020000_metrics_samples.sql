-- Periodic snapshots of the engine's counters and queue depths, for the dashboard's charts.
CREATE TABLE metrics_samples (
    at              TEXT PRIMARY KEY,
    sample          TEXT NOT NULL           -- JSON: counters, queue depths, per-system health
);
