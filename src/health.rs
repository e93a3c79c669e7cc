//! Whether each system is in sync, and if not, why: the verdict the dashboard shows per
//! system. It is decided here, from what was observed (queues, dead letters, the last reads),
//! by a pure function, so that "healthy" is never shown for a system whose writes are queued
//! and not leaving or whose reads fail.
//!
//! Reads are observed as they happen (each poll's outcome is noted in memory by the engine);
//! writes are observed from the outbox and dead letters when the dashboard asks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long a due write may wait with nothing sent to its system before the system is stuck.
pub const STUCK_AFTER_SECS: f64 = 120.0;

/// Longest error text kept for the dashboard, in bytes.
const ERROR_CHARS: usize = 300;

/// A system's state, worst first: `failing`, `stuck`, `retrying`, `paused`, `held`, `planning`,
/// `reading`, `writing`, `healthy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SystemState {
    /// Nothing queued, nothing failing.
    #[default]
    Healthy,
    /// A first full listing is under way; creates to the system wait for it.
    Reading,
    /// Writes are queued and leaving.
    Writing,
    /// Some writes failed and wait to be tried again; others still succeed.
    Retrying,
    /// Writes are due and none has left for a while, with nothing failing to explain it.
    Stuck,
    /// Reads fail, writes fail every attempt, or writes failed for good (dead letters).
    Failing,
    /// Sync is paused by an admin.
    Paused,
    /// Its writes are held in a plan for an admin to review and enable.
    Planning,
    /// The circuit breaker tripped: its writes are held until an admin confirms or discards
    /// them.
    Held,
}

/// The outcome of the reads (polls) of one system since the engine started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadHealth {
    pub last_ok_at: Option<DateTime<Utc>>,
    pub last_failed_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// Reads failed since the last one that succeeded.
    pub failures_in_a_row: u32,
    /// Reads that succeeded and failed since the process started.
    pub succeeded_total: u64,
    pub failed_total: u64,
}

impl ReadHealth {
    pub fn succeeded(&mut self, at: DateTime<Utc>) {
        self.last_ok_at = Some(at);
        self.failures_in_a_row = 0;
        self.succeeded_total += 1;
    }

    pub fn failed(&mut self, at: DateTime<Utc>, error: &str) {
        self.last_failed_at = Some(at);
        self.last_error = Some(shorten(error));
        self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
        self.failed_total += 1;
    }
}

/// An error as the dashboard shows it: one line, at most [`ERROR_CHARS`] bytes.
pub fn shorten(error: &str) -> String {
    let one_line = error.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::connector::truncate(&one_line, ERROR_CHARS)
}

/// What was observed of one system, for [`verdict`].
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub paused: bool,
    /// Writes queued or in flight.
    pub queued: i64,
    /// Queued writes that failed at least once and wait for their next attempt.
    pub retrying: i64,
    pub dead_letters: i64,
    /// How long the write due the longest has been due (none when no write is due).
    pub oldest_due_secs: Option<f64>,
    /// How long ago the system last accepted a write (none if never).
    pub last_sent_secs: Option<f64>,
    /// Whether its creates wait for a first full listing of it.
    pub creates_held: bool,
    pub reads: ReadHealth,
    /// Whether its writes are held in a plan.
    pub writes_held: bool,
    /// Why the circuit breaker holds its writes, when it does.
    pub breaker: Option<String>,
    /// The error of the newest write that is waiting to be tried again (shown beside the
    /// verdict, never in it: it may quote a record's values, which are masked per caller).
    pub last_write_error: Option<String>,
}

/// The system's state and one sentence saying why.
pub fn verdict(o: &Observed) -> (SystemState, String) {
    let writes = |n: i64| {
        if n == 1 {
            "1 write".to_owned()
        } else {
            format!("{n} writes")
        }
    };
    let sent_recently = o.last_sent_secs.is_some_and(|s| s < STUCK_AFTER_SECS);
    if o.reads.failures_in_a_row > 0 {
        let times = match o.reads.failures_in_a_row {
            1 => String::new(),
            n => format!(" ({n} times in a row)"),
        };
        let held = if o.creates_held && o.queued > 0 {
            format!("; {} wait for its first full listing", writes(o.queued))
        } else {
            String::new()
        };
        return (
            SystemState::Failing,
            format!("reading it fails{times}{held}"),
        );
    }
    if o.dead_letters > 0 {
        return (
            SystemState::Failing,
            format!(
                "{} failed for good and wait in dead letters",
                writes(o.dead_letters)
            ),
        );
    }
    if o.paused {
        return (
            SystemState::Paused,
            "sync is paused: nothing is read or written".into(),
        );
    }
    if let Some(why) = &o.breaker {
        return (
            SystemState::Held,
            format!("writes held by the circuit breaker for an admin to confirm or discard: {why}"),
        );
    }
    if o.writes_held {
        return (
            SystemState::Planning,
            format!(
                "writes are held in a plan for review: {} planned",
                writes(o.queued)
            ),
        );
    }
    let due_long = o.oldest_due_secs.is_some_and(|s| s >= STUCK_AFTER_SECS);
    if o.creates_held && o.queued > 0 {
        if o.reads.last_ok_at.is_none() && due_long {
            return (
                SystemState::Stuck,
                format!(
                    "{} wait for a first full listing of the system, and no read of it has succeeded",
                    writes(o.queued)
                ),
            );
        }
        return (
            SystemState::Reading,
            format!(
                "first full listing under way; {} wait for it",
                writes(o.queued)
            ),
        );
    }
    if o.retrying > 0 {
        if !sent_recently && o.retrying >= o.queued {
            return (
                SystemState::Failing,
                format!(
                    "every queued write fails: {} waiting to retry, none accepted for {}",
                    writes(o.retrying),
                    o.last_sent_secs
                        .map_or("as long as it is known".into(), duration)
                ),
            );
        }
        return (
            SystemState::Retrying,
            format!(
                "{} waiting to retry; others are accepted",
                writes(o.retrying)
            ),
        );
    }
    if due_long && !sent_recently {
        let waited = o.oldest_due_secs.unwrap_or_default();
        return (
            SystemState::Stuck,
            format!(
                "{} queued and none has left for {}",
                writes(o.queued),
                duration(waited)
            ),
        );
    }
    if o.queued > 0 {
        return (
            SystemState::Writing,
            format!("{} queued, leaving", writes(o.queued)),
        );
    }
    (
        SystemState::Healthy,
        "nothing queued, nothing failing".into(),
    )
}

/// Whether a system's changes still flow: its reads succeed and its writes leave. A system
/// with dead letters, or some writes retrying, still syncs the rest.
pub fn flows(o: &Observed, state: SystemState) -> bool {
    let every_write_fails = o.retrying > 0
        && o.retrying >= o.queued
        && !o.last_sent_secs.is_some_and(|s| s < STUCK_AFTER_SECS);
    o.reads.failures_in_a_row == 0
        && !every_write_fails
        && !matches!(
            state,
            SystemState::Stuck | SystemState::Held | SystemState::Paused | SystemState::Planning
        )
}

/// The whole workspace at a glance, worst first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    /// Every system is in sync or catching up.
    #[default]
    Healthy,
    /// Something needs attention (a system failing, stuck, held, retrying or planning, writes
    /// failed for good, events waiting long), while at least one system still syncs.
    Degraded,
    /// Nothing syncs: every system's reads or writes fail, or are held.
    Failing,
}

/// The verdict at the top of the dashboard: the state, one sentence, and a line per system
/// that needs attention.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Verdict {
    pub state: Overall,
    pub summary: String,
    pub reasons: Vec<String>,
}

/// One system as the workspace verdict sees it.
#[derive(Debug, Clone)]
pub struct SystemVerdict {
    pub name: String,
    pub state: SystemState,
    pub reason: String,
    /// Whether its changes still flow ([`flows`]).
    pub flows: bool,
    pub dead_letters: i64,
}

/// Events applied later than this are a backlog worth saying.
pub const BACKLOG_AFTER_SECS: f64 = 120.0;

/// Decides the workspace verdict from each system's, whether sync is paused, and the age of
/// the oldest event waiting to be applied.
pub fn overall(
    systems: &[SystemVerdict],
    paused: bool,
    oldest_pending_secs: Option<f64>,
) -> Verdict {
    if paused {
        return Verdict {
            state: Overall::Degraded,
            summary: "Sync is paused by an admin: nothing is read or written".into(),
            reasons: Vec::new(),
        };
    }
    if systems.is_empty() {
        return Verdict {
            state: Overall::Healthy,
            summary: "No systems connected yet".into(),
            reasons: Vec::new(),
        };
    }
    let attention: Vec<&SystemVerdict> = systems
        .iter()
        .filter(|s| {
            !matches!(
                s.state,
                SystemState::Healthy | SystemState::Reading | SystemState::Writing
            )
        })
        .collect();
    let mut reasons: Vec<String> = attention
        .iter()
        .map(|s| format!("{} is {}: {}", s.name, state_word(s.state), s.reason))
        .collect();
    let backlog = oldest_pending_secs.filter(|s| *s >= BACKLOG_AFTER_SECS);
    if let Some(waited) = backlog {
        reasons.push(format!(
            "changes wait to be applied: the oldest arrived {} ago",
            duration(waited)
        ));
    }
    let down: Vec<&SystemVerdict> = systems.iter().filter(|s| !s.flows).collect();
    if down.len() == systems.len() {
        let names: Vec<&str> = down.iter().map(|s| s.name.as_str()).collect();
        return Verdict {
            state: Overall::Failing,
            summary: format!(
                "Nothing syncs: {} cannot be read or written",
                names.join(", ")
            ),
            reasons,
        };
    }
    if reasons.is_empty() {
        let n = systems.len();
        return Verdict {
            state: Overall::Healthy,
            summary: if n == 1 {
                "The system is in sync".into()
            } else {
                format!("All {n} systems are in sync")
            },
            reasons,
        };
    }
    let summary = match (down.first(), attention.first()) {
        (Some(s), _) => format!(
            "{} is {}; the others sync{}",
            s.name,
            state_word(s.state),
            more(down.len() + attention.len().saturating_sub(down.len()) - 1)
        ),
        (None, Some(s)) if s.dead_letters > 0 => format!(
            "{} has {} that failed for good; everything else syncs{}",
            s.name,
            if s.dead_letters == 1 {
                "1 write".to_owned()
            } else {
                format!("{} writes", s.dead_letters)
            },
            more(attention.len() - 1)
        ),
        (None, Some(s)) => format!(
            "{} is {}; everything else syncs{}",
            s.name,
            state_word(s.state),
            more(attention.len() - 1)
        ),
        (None, None) => "Changes wait to be applied".into(),
    };
    Verdict {
        state: Overall::Degraded,
        summary,
        reasons,
    }
}

fn more(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => " (1 more needs attention)".into(),
        n => format!(" ({n} more need attention)"),
    }
}

fn state_word(state: SystemState) -> &'static str {
    match state {
        SystemState::Healthy => "healthy",
        SystemState::Reading => "reading",
        SystemState::Writing => "writing",
        SystemState::Retrying => "retrying",
        SystemState::Stuck => "stuck",
        SystemState::Failing => "failing",
        SystemState::Paused => "paused",
        SystemState::Planning => "planning",
        SystemState::Held => "held",
    }
}

pub(crate) fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as i64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system(name: &str, state: SystemState, flows: bool, dead_letters: i64) -> SystemVerdict {
        SystemVerdict {
            name: name.into(),
            state,
            reason: format!("{name}'s reason"),
            flows,
            dead_letters,
        }
    }

    #[test]
    fn the_workspace_is_degraded_while_one_system_fails_and_failing_when_none_syncs() {
        let hris = system("Acme HRIS", SystemState::Healthy, true, 0);
        let payroll_down = system("Acme Payroll", SystemState::Failing, false, 0);
        let v = overall(
            &[
                hris.clone(),
                system("Acme Payroll", SystemState::Writing, true, 0),
            ],
            false,
            None,
        );
        assert_eq!(
            (v.state, v.summary.as_str()),
            (Overall::Healthy, "All 2 systems are in sync"),
            "systems catching up are healthy"
        );
        let v = overall(&[hris.clone(), payroll_down.clone()], false, None);
        assert_eq!(
            v.state,
            Overall::Degraded,
            "one system down, one syncing: degraded"
        );
        assert_eq!(v.summary, "Acme Payroll is failing; the others sync");
        assert_eq!(
            v.reasons,
            ["Acme Payroll is failing: Acme Payroll's reason"],
            "the reason names the system and why"
        );
        let hris_down = system("Acme HRIS", SystemState::Stuck, false, 0);
        let v = overall(&[hris_down, payroll_down], false, None);
        assert_eq!(v.state, Overall::Failing, "nothing syncs: failing");
        let dead = system("Acme Payroll", SystemState::Failing, true, 3);
        let v = overall(&[hris.clone(), dead], false, None);
        assert_eq!(
            (v.state, v.summary.as_str()),
            (
                Overall::Degraded,
                "Acme Payroll has 3 writes that failed for good; everything else syncs"
            ),
            "dead letters degrade, but the system still syncs"
        );
        let v = overall(&[hris], false, Some(600.0));
        assert_eq!(v.state, Overall::Degraded, "a backlog of events degrades");
        assert!(v.reasons[0].contains("10 min"), "{:?}", v.reasons);
        assert_eq!(
            overall(&[], true, None).state,
            Overall::Degraded,
            "paused degrades"
        );
    }

    fn state(o: Observed) -> SystemState {
        verdict(&o).0
    }

    #[test]
    fn writes_held_by_the_breaker_are_held_never_stuck_and_say_why() {
        let o = Observed {
            queued: 300,
            oldest_due_secs: Some(600.0),
            breaker: Some("300 of 300 records (100%) would be overwritten".into()),
            ..Observed::default()
        };
        let (s, why) = verdict(&o);
        assert_eq!(
            s,
            SystemState::Held,
            "held writes are the breaker's, not a stuck queue"
        );
        assert!(
            why.contains("300 of 300 records"),
            "the reason names the count: {why}"
        );
        let dead = Observed {
            dead_letters: 1,
            ..o
        };
        assert_eq!(
            state(dead),
            SystemState::Failing,
            "failures still come first"
        );
    }

    #[test]
    fn a_quiet_system_is_healthy_and_a_busy_one_writing() {
        assert_eq!(state(Observed::default()), SystemState::Healthy);
        assert_eq!(
            state(Observed {
                queued: 50,
                oldest_due_secs: Some(3.0),
                ..Observed::default()
            }),
            SystemState::Writing,
            "writes queued a moment ago are leaving"
        );
        assert_eq!(
            state(Observed {
                queued: 50_000,
                oldest_due_secs: Some(900.0),
                last_sent_secs: Some(0.5),
                ..Observed::default()
            }),
            SystemState::Writing,
            "a long backlog that keeps leaving is writing, not stuck"
        );
    }

    #[test]
    fn writes_due_that_do_not_leave_are_stuck_never_healthy() {
        let (s, why) = verdict(&Observed {
            queued: 50,
            oldest_due_secs: Some(STUCK_AFTER_SECS + 1.0),
            last_sent_secs: None,
            ..Observed::default()
        });
        assert_eq!(s, SystemState::Stuck, "{why}");
        assert!(
            why.contains("50 writes queued and none has left for 2 min"),
            "{why}"
        );
        assert_eq!(
            state(Observed {
                queued: 50,
                oldest_due_secs: Some(STUCK_AFTER_SECS - 1.0),
                ..Observed::default()
            }),
            SystemState::Writing,
            "below the threshold it is not stuck yet"
        );
    }

    #[test]
    fn failing_reads_make_a_system_failing_and_say_why() {
        let mut reads = ReadHealth::default();
        reads.failed(Utc::now(), "503 Service Unavailable");
        reads.failed(Utc::now(), "503 Service Unavailable");
        let (s, why) = verdict(&Observed {
            reads: reads.clone(),
            queued: 50,
            creates_held: true,
            ..Observed::default()
        });
        assert_eq!(s, SystemState::Failing);
        assert_eq!(
            why,
            "reading it fails (2 times in a row); 50 writes wait for its first full listing"
        );
        reads.succeeded(Utc::now());
        assert_eq!(
            state(Observed {
                reads,
                ..Observed::default()
            }),
            SystemState::Healthy,
            "a read that succeeds again clears it"
        );
    }

    #[test]
    fn creates_held_for_a_listing_read_as_reading_until_no_read_ever_succeeds() {
        let held = Observed {
            queued: 10,
            creates_held: true,
            oldest_due_secs: Some(STUCK_AFTER_SECS * 3.0),
            ..Observed::default()
        };
        assert_eq!(
            state(Observed {
                reads: ReadHealth {
                    last_ok_at: Some(Utc::now()),
                    ..ReadHealth::default()
                },
                ..held.clone()
            }),
            SystemState::Reading
        );
        assert_eq!(
            state(held),
            SystemState::Stuck,
            "creates held for a listing that never read anything are stuck"
        );
    }

    #[test]
    fn writes_that_all_fail_are_failing_and_some_failing_is_retrying() {
        let all = Observed {
            queued: 3,
            retrying: 3,
            last_write_error: Some("HTTP 500".into()),
            ..Observed::default()
        };
        assert_eq!(state(all.clone()), SystemState::Failing);
        assert_eq!(
            state(Observed {
                last_sent_secs: Some(2.0),
                ..all
            }),
            SystemState::Retrying,
            "failures beside writes that still succeed are retrying"
        );
        assert_eq!(
            state(Observed {
                dead_letters: 1,
                ..Observed::default()
            }),
            SystemState::Failing
        );
    }

    #[test]
    fn held_writes_are_a_plan_not_stuck() {
        let (s, why) = verdict(&Observed {
            writes_held: true,
            queued: 12,
            oldest_due_secs: Some(STUCK_AFTER_SECS * 10.0),
            ..Observed::default()
        });
        assert_eq!(s, SystemState::Planning, "{why}");
        assert_eq!(
            why,
            "writes are held in a plan for review: 12 writes planned"
        );
    }

    #[test]
    fn long_errors_are_one_shortened_line() {
        let long = format!("line one\n{}", "x".repeat(1000));
        let short = shorten(&long);
        assert!(!short.contains('\n'));
        assert_eq!(short.chars().count(), ERROR_CHARS + 1, "{short}");
    }
}
