//! Time and randomness as injected dependencies, so merges, backoff and tests are
//! deterministic where they need to be.

use std::sync::Arc;
use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Where the engine reads the time from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Source of jitter for retry backoff. Seedable so tests can reproduce a schedule.
#[derive(Debug)]
pub struct Jitter(Mutex<StdRng>);

impl Jitter {
    pub fn seeded(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }

    pub fn from_entropy() -> Self {
        Self(Mutex::new(StdRng::from_entropy()))
    }

    /// A factor in [0.5, 1.0): "equal jitter", so a backoff never collapses to zero.
    pub fn factor(&self) -> f64 {
        let mut rng = self.0.lock().unwrap_or_else(|e| e.into_inner());
        rng.gen_range(0.5..1.0)
    }
}

/// Exponential backoff with jitter: `base * 2^(attempt-1)`, capped, times a jitter factor.
pub fn backoff(
    attempt: u32,
    base: std::time::Duration,
    cap: std::time::Duration,
    jitter: &Jitter,
) -> std::time::Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    exp.min(cap).mul_f64(jitter.factor())
}
