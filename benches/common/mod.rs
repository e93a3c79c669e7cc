//! What the benches share: their environment knobs, where their state files go, the build
//! they report, and the process's memory as the kernel counts it.

// Each bench uses a part of this module.
#![allow(dead_code)]

use anyhow::{Context as _, Result};

/// A number from the environment (underscores allowed, as in `100_000`), if it is set.
pub fn env_number<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match std::env::var(name) {
        Ok(v) => v
            .replace('_', "")
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v} is not a number")),
        Err(_) => Ok(None),
    }
}

/// A number from the environment, or `default` when it is not set.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    Ok(env_number(name)?.unwrap_or(default))
}

/// A temporary directory for the bench's SQLite files, in `CONCORD_BENCH_DIR` if set, else
/// the system's temp dir; removed when dropped.
pub fn state_dir(prefix: &str) -> Result<tempfile::TempDir> {
    let base = std::env::var_os("CONCORD_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&base)
        .with_context(|| format!("creating a temp dir in {}", base.display()))
}

/// The build the figures come from.
pub const BUILD: &str = if cfg!(debug_assertions) {
    "debug build"
} else {
    "release build"
};

/// A line of `/proc/self/status` (e.g. `VmHWM`, the peak resident set), as written there.
pub fn proc_status(key: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .strip_prefix(':')
                    .map(|v| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A `/proc/self/status` memory line (`VmRSS`, `VmHWM`) in MB; NaN where it cannot be read.
pub fn memory_mb(key: &str) -> f64 {
    proc_status(key)
        .trim_end_matches("kB")
        .trim()
        .parse::<f64>()
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The 1-minute load average (Linux), to tell a quiet machine from a busy one.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// The circuit breaker as production counts it, set never to trip: a benchmark rewrites most
/// of its records on purpose, and its figures must include what counting costs.
#[allow(dead_code)]
pub fn counting_breaker() -> concord::model::BreakerConfig {
    concord::model::BreakerConfig {
        max_share: 1.0,
        ..Default::default()
    }
}
