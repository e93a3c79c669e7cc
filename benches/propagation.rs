//! Propagation latency on loopback, printed as figures (nothing is asserted).
//!
//! `cargo bench --bench propagation` runs the engine end to end on 127.0.0.1, as the self-check
//! does: an [`Engine`] on a SQLite file in a temporary directory, its webhook door
//! ([`concord::server::spawn_loopback`]), and two [`LoopbackSystem`]s, an HRIS and a payroll,
//! on the self-check's workspace ([`concord::selfcheck::workspace`]). It seeds employees in the
//! HRIS and waits for the initial sync to payroll to settle (not measured). Then it edits the
//! HRIS at a fixed rate: each change renames one employee (a new family name, which payroll
//! holds as `last_name`) to a value no other change uses, round robin over the employees so a
//! record is edited again only after `records / rate` seconds. The schedule is `start + i /
//! rate`: a slow engine does not slow the offered rate down (how late the driver ran is
//! printed as the schedule lag).
//!
//! Webhooks: by default the bench posts both systems' webhooks itself, in the loopback
//! system's event format, each on its own task with up to 64 in flight per system, as a system
//! with a pool of webhook workers does; payroll's webhooks are the echoes of the engine's
//! writes, one per write applied. The loopback system's own sender posts one webhook at a
//! time and waits for the answer before the next, which caps what reaches the engine at one
//! webhook per round trip (about 200/s here): `CONCORD_PROP_HOOK_CONCURRENCY=0` uses it
//! anyway, to see that. `CONCORD_PROP_ECHOES=0` has payroll post no webhooks, which shows
//! what the echoes cost.
//!
//! Per change, from what the two systems report ([`LoopbackSystem::observe`]):
//!
//! - **webhook -> ack**, the requirement's figure: from the HRIS starting to post the change's
//!   webhook to the engine, to payroll applying the write that carries the change's value (or a
//!   later value of the same record: a change merged into a later one counts as arrived with
//!   it), just before payroll answers the engine;
//! - **edit -> ack**: from the edit itself, which adds the time the webhook waited for a free
//!   worker in the HRIS;
//! - the split of webhook -> ack: **webhook answered** (the engine stored the event durably and
//!   answered 202) and **answered -> ack** (applying it and delivering the write).
//!
//! The same path as the engine's outbox timestamps record it (microseconds), for the writes
//! to payroll queued during the run: event stored (`origin_at`) -> write queued (`created_at`,
//! when its applier batch began) -> payroll applied it (from what payroll reports, placed on the
//! engine's wall clock through one reading of both clocks at the start) -> its outcome
//! committed (`sent_at`, taken as the commit begins); and from the same columns, how many
//! delivery commits and applier batches there were (the writes of one share its timestamp).
//!
//! Also printed: offered and achieved rates, changes that had not arrived when the drain
//! timeout ran out, the schedule lag, the deepest webhook queues, progress every 10 s, and the
//! process's CPU time and peak RSS (`VmHWM`; the engine, both systems and the driver share the
//! process).
//!
//! Environment: `CONCORD_PROP_RECORDS` (employees, default 2000), `CONCORD_PROP_RATE` (changes
//! per second, default 1000), `CONCORD_PROP_SECONDS` (how long changes are offered, default
//! 60), `CONCORD_PROP_DRAIN` (seconds to wait for the last changes, default 30),
//! `CONCORD_PROP_HOOK_CONCURRENCY` (webhooks in flight per system, default 64; 0: the loopback
//! systems' own sender), `CONCORD_PROP_ECHOES` (1: payroll posts a webhook per write it takes,
//! the default; 0: none), `CONCORD_PROP_PAYROLL_RATE_LIMIT` (writes per second the engine may
//! send payroll; default the self-check workspace's 2000; 0: no limit), `CONCORD_BENCH_DIR`
//! (where the SQLite file goes; default the system temp dir).
//!
//! The engine runs with [`Settings::default`], what `concord` runs with (the ones that matter here are printed); these
//! change one setting each: `CONCORD_PROP_IDLE_POLL_MS`, `CONCORD_PROP_BATCH` (applier batch
//! size), `CONCORD_PROP_SEND_BATCH` (writes claimed and not yet committed),
//! `CONCORD_PROP_SEND_CONCURRENCY` (writes in flight).

mod common;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use concord::loopback::{LoopbackSystem, Observed};
use concord::secrets::{MemorySecrets, SecretStore};
use concord::{Engine, EngineOptions, Settings};
use serde_json::{Map, Value, json};

/// The allocator the `concord` command runs with.
#[global_allocator]
static ALLOCATOR: concord::Allocator = concord::Allocator;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Knobs, from the environment.
#[derive(Debug, Clone, Copy)]
struct Config {
    records: usize,
    rate: f64,
    seconds: f64,
    drain: Duration,
    /// Webhooks in flight per system; 0: the loopback systems' own sender, one at a time.
    hook_concurrency: usize,
    /// Whether payroll posts a webhook for each write the engine makes there.
    echoes: bool,
    /// Payroll's rate limit instead of the self-check workspace's (0: none).
    payroll_rate_limit: Option<f64>,
}

impl Config {
    fn from_env() -> Result<Self> {
        let config = Self {
            records: common::env_number("CONCORD_PROP_RECORDS")?.unwrap_or(2_000),
            rate: common::env_number("CONCORD_PROP_RATE")?.unwrap_or(1_000.0),
            seconds: common::env_number("CONCORD_PROP_SECONDS")?.unwrap_or(60.0),
            drain: Duration::from_secs_f64(
                common::env_number("CONCORD_PROP_DRAIN")?.unwrap_or(30.0),
            ),
            hook_concurrency: common::env_number("CONCORD_PROP_HOOK_CONCURRENCY")?.unwrap_or(64),
            echoes: common::env_number::<u8>("CONCORD_PROP_ECHOES")?.unwrap_or(1) != 0,
            payroll_rate_limit: common::env_number("CONCORD_PROP_PAYROLL_RATE_LIMIT")?,
        };
        if !config.echoes && config.hook_concurrency == 0 {
            bail!(
                "CONCORD_PROP_ECHOES=0 needs the bench's webhook workers (CONCORD_PROP_HOOK_CONCURRENCY > 0)"
            );
        }
        if config.records == 0 || config.records > 99_999 {
            bail!("CONCORD_PROP_RECORDS must be between 1 and 99999");
        }
        if !(config.rate > 0.0 && config.seconds > 0.0) {
            bail!("CONCORD_PROP_RATE and CONCORD_PROP_SECONDS must be positive");
        }
        Ok(config)
    }

    fn changes(&self) -> usize {
        (self.rate * self.seconds).round() as usize
    }
}

/// The engine's settings: the defaults, with what the environment overrides.
fn settings_from_env() -> Result<Settings> {
    let mut s = Settings {
        breaker: common::counting_breaker(),
        ..Settings::default()
    };
    if let Some(ms) = common::env_number::<u64>("CONCORD_PROP_IDLE_POLL_MS")? {
        s.idle_poll = Duration::from_millis(ms);
    }
    if let Some(n) = common::env_number("CONCORD_PROP_BATCH")? {
        s.batch_size = n;
    }
    if let Some(n) = common::env_number("CONCORD_PROP_SEND_BATCH")? {
        s.send_batch = n;
    }
    if let Some(n) = common::env_number("CONCORD_PROP_SEND_CONCURRENCY")? {
        s.send_concurrency = n;
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// What happened to each change, put together from the driver and the two systems' reports.

enum Message {
    /// The driver is about to edit record `rec` with change `seq` (numbered from 1).
    Change {
        seq: usize,
        rec: usize,
        edited: Instant,
    },
    /// The HRIS version the change's edit produced (its webhook's event key ends with it):
    /// with the systems' own senders, which report webhooks by event key.
    Version {
        seq: usize,
        version: i64,
    },
    /// Change `seq`'s webhook was posted, and answered with `status` (`None`: given up).
    Hook {
        seq: usize,
        posted: Instant,
        answered: Instant,
        status: Option<u16>,
    },
    FromHris(Observed),
    FromPayroll(Observed),
}

#[derive(Debug, Clone, Copy)]
struct Change {
    edited: Instant,
    /// The HRIS started posting its webhook, and the engine answered it.
    posted: Option<Instant>,
    answered: Option<Instant>,
    /// Payroll applied a write holding this change's value or a later one.
    acked: Option<Instant>,
}

#[derive(Default)]
struct Tracker {
    /// Index: change number - 1.
    changes: Vec<Change>,
    /// Per record, the changes not arrived yet, oldest first.
    waiting: Vec<VecDeque<usize>>,
    by_version: HashMap<i64, usize>,
    /// Webhooks answered before the driver's note of their version was read.
    early_hooks: HashMap<i64, (Instant, Instant)>,
    arrived: usize,
    /// Payroll writes applied: all of them, and those holding no change of the run.
    payroll_writes: Vec<Instant>,
    other_payroll_writes: usize,
    /// HRIS webhooks answered (when), and those refused or given up.
    hooks_answered: Vec<Instant>,
    hooks_failed: usize,
    /// Writes applied to the HRIS during the run (the engine writing back: none expected).
    hris_writes: usize,
}

impl Tracker {
    fn new(records: usize, changes: usize) -> Self {
        Self {
            changes: Vec::with_capacity(changes),
            waiting: vec![VecDeque::new(); records],
            payroll_writes: Vec::with_capacity(changes),
            hooks_answered: Vec::with_capacity(changes),
            ..Self::default()
        }
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Change { seq, rec, edited } => {
                debug_assert_eq!(seq, self.changes.len() + 1);
                self.changes.push(Change {
                    edited,
                    posted: None,
                    answered: None,
                    acked: None,
                });
                self.waiting[rec].push_back(seq);
            }
            Message::Version { seq, version } => {
                if let Some((posted, answered)) = self.early_hooks.remove(&version) {
                    self.hooked(seq, posted, answered);
                } else {
                    self.by_version.insert(version, seq);
                }
            }
            Message::Hook {
                seq,
                posted,
                answered,
                status,
            } => {
                if !status.is_some_and(|s| (200..300).contains(&s)) {
                    self.hooks_failed += 1;
                }
                self.hooks_answered.push(answered);
                self.hooked(seq, posted, answered);
            }
            Message::FromHris(Observed::Hook {
                event_key,
                posted,
                answered,
                status,
            }) => {
                if !status.is_some_and(|s| (200..300).contains(&s)) {
                    self.hooks_failed += 1;
                }
                self.hooks_answered.push(answered);
                let Some(version) = event_key
                    .rsplit_once(":v")
                    .and_then(|(_, v)| v.parse::<i64>().ok())
                else {
                    return;
                };
                match self.by_version.remove(&version) {
                    Some(seq) => self.hooked(seq, posted, answered),
                    None => {
                        self.early_hooks.insert(version, (posted, answered));
                    }
                }
            }
            Message::FromHris(Observed::Write { .. }) => self.hris_writes += 1,
            Message::FromPayroll(Observed::Write { record, at, .. }) => {
                self.payroll_writes.push(at);
                // emp_no "E00012" is record 12; last_name "Change345" holds change 345.
                let rec = record
                    .get("emp_no")
                    .and_then(|v| v.as_str())
                    .and_then(|v| v.strip_prefix('E'))
                    .and_then(|v| v.parse::<usize>().ok());
                let seq = record
                    .get("last_name")
                    .and_then(|v| v.as_str())
                    .and_then(|v| v.strip_prefix("Change"))
                    .and_then(|v| v.parse::<usize>().ok());
                let (Some(rec), Some(seq)) = (rec, seq) else {
                    self.other_payroll_writes += 1;
                    return;
                };
                let Some(waiting) = self.waiting.get_mut(rec) else {
                    self.other_payroll_writes += 1;
                    return;
                };
                while waiting.front().is_some_and(|&s| s <= seq) {
                    if let Some(s) = waiting.pop_front() {
                        self.changes[s - 1].acked = Some(at);
                        self.arrived += 1;
                    }
                }
            }
            // Payroll's webhooks are the echoes of our writes: not part of the path measured.
            Message::FromPayroll(Observed::Hook { .. }) => {}
        }
    }

    fn hooked(&mut self, seq: usize, posted: Instant, answered: Instant) {
        if let Some(c) = self.changes.get_mut(seq - 1) {
            c.posted = Some(posted);
            c.answered = Some(answered);
        }
    }
}

fn lock(tracker: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    tracker.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Figures.

/// Latencies in milliseconds, sorted.
struct Spread(Vec<f64>);

impl Spread {
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        Self(ms)
    }

    fn at(&self, q: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let rank = (q * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    fn row(&self, label: &str) {
        println!(
            "  {label:<34}{:>7}{:>9.2}{:>9.2}{:>9.2}{:>9.2}{:>9.2}",
            self.0.len(),
            self.at(0.5),
            self.at(0.9),
            self.at(0.99),
            self.at(0.999),
            self.0.last().copied().unwrap_or(f64::NAN)
        );
    }
}

fn header(title: &str) {
    println!(
        "  {title:<34}{:>7}{:>9}{:>9}{:>9}{:>9}{:>9}",
        "n", "p50", "p90", "p99", "p99.9", "max"
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// User and system CPU seconds of this process, from `/proc/self/stat` (Linux; zero elsewhere).
fn cpu_seconds() -> (f64, f64) {
    // Fields 14 and 15 (utime, stime) in clock ticks of 1/100 s; the name in field 2 may hold
    // spaces, so counting starts after its closing parenthesis.
    let ticks = |stat: &str, field: usize| -> Option<f64> {
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(field - 3)?.parse().ok()
    };
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| Some((ticks(&stat, 14)? / 100.0, ticks(&stat, 15)? / 100.0)))
        .unwrap_or_default()
}

/// Events waiting in the inbox and writes queued or in flight in the outbox.
async fn backlog(engine: &Engine) -> Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending'),
                (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight'))",
    )
    .fetch_one(engine.pool())
    .await?)
}

/// Whether the initial sync is done: every employee in payroll, no webhook waiting, nothing
/// pending in the engine.
async fn settled(
    engine: &Engine,
    webhooks: &Webhooks,
    payroll: &LoopbackSystem,
    records: usize,
) -> Result<bool> {
    if payroll.len() != records || webhooks.pending() != (0, 0) {
        return Ok(false);
    }
    Ok(backlog(engine).await? == (0, 0) && webhooks.pending() == (0, 0))
}

/// What the outbox says about the writes to payroll queued during the run.
struct OutboxFigures {
    /// Per write, in ms: event stored -> write queued -> payroll applied it -> outcome
    /// committed.
    stored_to_queued: Spread,
    queued_to_applied: Spread,
    applied_to_committed: Spread,
    stored_to_committed: Spread,
    not_sent: i64,
    /// Writes per delivery commit (the writes of a commit share its `sent_at`).
    commit_sizes: Vec<usize>,
    /// Applier batches that queued writes (the writes of a batch share its `created_at`).
    batches: usize,
}

/// Reads the outbox rows of the writes to payroll queued since `since`, and places the
/// instants payroll applied them (`changes`, by change number) on the engine's clock through
/// `anchor`, an instant and the wall-clock time it was.
async fn outbox_figures(
    engine: &Engine,
    since: &str,
    changes: &[Change],
    anchor: (Instant, chrono::DateTime<chrono::Utc>),
) -> Result<OutboxFigures> {
    let rows: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT origin_at, created_at, sent_at, json_extract(canonical, '$.family_name') FROM outbox
         WHERE system_id = 'payroll' AND status = 'sent' AND created_at >= ? AND origin_at IS NOT NULL",
    )
    .bind(since)
    .fetch_all(engine.pool())
    .await?;
    let not_sent: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE system_id = 'payroll' AND status <> 'sent' AND created_at >= ?",
    )
    .bind(since)
    .fetch_one(engine.pool())
    .await?;
    let parse = |s: &str| concord::store::parse_ts(s);
    let span = |a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>| {
        (b - a).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3
    };
    let on_engine_clock = |at: Instant| {
        chrono::Duration::from_std(at.saturating_duration_since(anchor.0))
            .ok()
            .map(|d| anchor.1 + d)
    };
    let (mut queued, mut applied, mut committed, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut commits: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut batches = std::collections::BTreeSet::new();
    for (origin, created, sent_at, family_name) in &rows {
        *commits.entry(sent_at).or_default() += 1;
        batches.insert(created);
        let (Some(o), Some(c), Some(s)) = (parse(origin), parse(created), parse(sent_at)) else {
            continue;
        };
        queued.push(span(o, c));
        total.push(span(o, s));
        // A write carrying a later value of its record than the change that queued it (merged
        // into it) is found by that value.
        let acked = family_name
            .as_deref()
            .and_then(|n| n.strip_prefix("Change")?.parse::<usize>().ok())
            .and_then(|seq| changes.get(seq.checked_sub(1)?)?.acked)
            .and_then(on_engine_clock);
        if let Some(at) = acked {
            applied.push(span(c, at));
            committed.push(span(at, s));
        }
    }
    Ok(OutboxFigures {
        stored_to_queued: Spread::of(queued),
        queued_to_applied: Spread::of(applied),
        applied_to_committed: Spread::of(committed),
        stored_to_committed: Spread::of(total),
        not_sent,
        commit_sizes: commits.into_values().collect(),
        batches: batches.len(),
    })
}

// ---------------------------------------------------------------------------------------------
// Webhooks.

/// Posts one system's webhooks to the engine as a system with a pool of webhook workers does:
/// each on its own task, up to `limit` at a time (the rest wait their turn, first come first
/// served), each retried (bounded) until the engine answers 2xx or 4xx.
#[derive(Clone)]
struct Dispatcher {
    client: reqwest::Client,
    url: Arc<str>,
    token: Arc<str>,
    permits: Arc<tokio::sync::Semaphore>,
    /// Webhooks waiting for a worker or in flight.
    pending: Arc<AtomicUsize>,
}

impl Dispatcher {
    fn new(url: String, system: &LoopbackSystem, limit: usize) -> Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_max_idle_per_host(limit)
                .build()?,
            url: url.into(),
            token: system.hook_token().expose().into(),
            permits: Arc::new(tokio::sync::Semaphore::new(limit)),
            pending: Arc::default(),
        })
    }

    /// Posts `event`; with `report`, tells the collector when change `seq`'s webhook was posted
    /// and answered.
    fn post(&self, event: Value, report: Option<(usize, mpsc::UnboundedSender<Message>)>) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        let this = self.clone();
        tokio::spawn(async move {
            let _permit = this.permits.clone().acquire_owned().await;
            let posted = Instant::now();
            let mut status = None;
            for attempt in 0..100u64 {
                match this
                    .client
                    .post(&*this.url)
                    .bearer_auth(&*this.token)
                    .json(&event)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() || r.status().is_client_error() => {
                        status = Some(r.status().as_u16());
                        break;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(25 * (1 + attempt.min(8)))).await,
                }
            }
            if let Some((seq, tx)) = report {
                let _ = tx.send(Message::Hook {
                    seq,
                    posted,
                    answered: Instant::now(),
                    status,
                });
            }
            this.pending.fetch_sub(1, Ordering::SeqCst);
        });
    }

    fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }
}

/// A change event in Concord's own format, as the loopback system writes its webhooks.
fn event(system: &str, id: &str, record: &Map<String, Value>) -> Value {
    let version = record.get("version").and_then(Value::as_i64).unwrap_or(0);
    json!({
        "object": "employee",
        "external_id": id,
        "op": "upsert",
        "record": record,
        "version": version,
        "etag": format!("\"{version}\""),
        "source_ts": chrono::Utc::now(),
        "event_key": format!("{system}:{id}:v{version}"),
    })
}

/// How the two systems' webhooks reach the engine.
#[derive(Clone)]
enum Webhooks {
    /// The loopback systems' own sender: one webhook at a time, in order.
    InOrder {
        hris: LoopbackSystem,
        payroll: LoopbackSystem,
    },
    /// Posted by this bench, up to a limit at a time per system.
    Pooled {
        hris: Dispatcher,
        payroll: Dispatcher,
    },
}

impl Webhooks {
    /// Webhooks not yet answered, (HRIS, payroll).
    fn pending(&self) -> (usize, usize) {
        match self {
            Self::InOrder { hris, payroll } => (hris.hooks_pending(), payroll.hooks_pending()),
            Self::Pooled { hris, payroll } => (hris.pending(), payroll.pending()),
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<()> {
    let config = Config::from_env()?;
    let settings = settings_from_env()?;
    let dir = common::state_dir("concord-prop-")?;
    let build = common::BUILD;
    let total = config.changes();
    let senders = match config.hook_concurrency {
        0 => "each system's own sender, one at a time, in order".to_owned(),
        n => format!("up to {n} at a time per system"),
    };
    println!(
        "concord propagation: {} changes/s for {} s ({total} changes) over {} employees, {build}",
        config.rate, config.seconds, config.records
    );
    println!(
        "  {} CPUs, load average {}; SQLite file in {}",
        std::thread::available_parallelism().map_or(1, usize::from),
        common::load_average(),
        dir.path().display()
    );
    println!(
        "  engine settings: idle_poll {:?}, applier batch {}, send_batch {}, send_concurrency {}, \
         backoff_base {:?}",
        settings.idle_poll,
        settings.batch_size,
        settings.send_batch,
        settings.send_concurrency,
        settings.backoff_base
    );
    println!(
        "  webhooks posted {senders}; {}",
        if config.echoes {
            "payroll posts one for each write it takes"
        } else {
            "payroll posts none (CONCORD_PROP_ECHOES=0)"
        }
    );

    // The self-check's setup: engine, webhook door, HRIS and payroll, secrets in memory.
    let secrets = Arc::new(MemorySecrets::new());
    let engine = Engine::open(
        &dir.path().join("state.db"),
        EngineOptions {
            secrets: secrets.clone(),
            settings,
            ..EngineOptions::default()
        },
    )
    .await?;
    let cancel = CancellationToken::new();
    let (addr, _server) =
        concord::server::spawn_loopback(engine.clone(), 0, cancel.clone()).await?;
    let hook_url = |system: &str| format!("http://{addr}/hooks/{system}");
    let own_sender = |system: &str| (config.hook_concurrency == 0).then(|| hook_url(system));
    let hris = LoopbackSystem::start("hris", "employee", "/employees", own_sender("hris")).await?;
    let payroll =
        LoopbackSystem::start("payroll", "employee", "/employees", own_sender("payroll")).await?;
    for (id, system) in [("hris", &hris), ("payroll", &payroll)] {
        SecretStore::set(
            &*secrets,
            &concord::selfcheck::webhook_secret_name(id),
            &system.hook_token(),
        )?;
    }
    let webhooks = match config.hook_concurrency {
        0 => Webhooks::InOrder {
            hris: hris.clone(),
            payroll: payroll.clone(),
        },
        n => Webhooks::Pooled {
            hris: Dispatcher::new(hook_url("hris"), &hris, n)?,
            payroll: Dispatcher::new(hook_url("payroll"), &payroll, n)?,
        },
    };
    let mut workspace = concord::selfcheck::workspace(&hris.base_url(), &payroll.base_url());
    if let Some(limit) = config.payroll_rate_limit {
        for system in workspace.systems.iter_mut().filter(|s| s.id == "payroll") {
            system.rate_limit_per_sec = (limit > 0.0).then_some(limit);
        }
    }
    let payroll_limit = workspace
        .systems
        .iter()
        .find(|s| s.id == "payroll")
        .and_then(|s| s.rate_limit_per_sec)
        .map_or_else(|| "none".to_owned(), |l| format!("{l} writes/s"));
    println!("  payroll's rate limit: {payroll_limit}");
    engine.apply_workspace(&workspace).await?;
    let running = engine.start(cancel.clone());

    // What the systems report goes to one collector once the measured run starts. Payroll's
    // writes are echoed by a webhook each (as the loopback system's own sender does), seeding
    // included. Reports reach the collector in causal order: the driver notes a change before
    // it edits, so before any report of it.
    let measuring = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let (Some(mut from_hris), Some(mut from_payroll)) = (hris.observe(), payroll.observe()) else {
        bail!("the systems are observed already");
    };
    {
        let (tx, measuring) = (tx.clone(), measuring.clone());
        tokio::spawn(async move {
            while let Some(o) = from_hris.recv().await {
                if measuring.load(Ordering::SeqCst) {
                    let _ = tx.send(Message::FromHris(o));
                }
            }
        });
    }
    {
        let (tx, measuring) = (tx.clone(), measuring.clone());
        let echoes = match &webhooks {
            Webhooks::Pooled { payroll, .. } if config.echoes => Some(payroll.clone()),
            _ => None,
        };
        tokio::spawn(async move {
            while let Some(o) = from_payroll.recv().await {
                if let (Some(echoes), Observed::Write { id, record, .. }) = (&echoes, &o) {
                    echoes.post(event("payroll", id, record), None);
                }
                if measuring.load(Ordering::SeqCst) {
                    let _ = tx.send(Message::FromPayroll(o));
                }
            }
        });
    }

    // Seed, and wait for the initial sync (twice settled in a row: a write delivered between
    // two looks sends a webhook the second look sees).
    let seeding = Instant::now();
    for i in 0..config.records {
        let id = format!("H{i:05}");
        hris.edit(
            &id,
            json!({
                "employee_id": format!("E{i:05}"),
                "full_name": format!("Given{i} Family{i}"),
                "email": format!("person{i}@acme.example"),
                "phone": format!("(415) 555-{:04}", i % 10_000),
                "status": "Active",
                "hire_date": format!("{:02}/{:02}/20{:02}", 1 + i % 12, 1 + i % 28, 10 + i % 15),
                "title": "Analyst",
                "department": "Finance",
            }),
        );
        if let (Webhooks::Pooled { hris: hooks, .. }, Some(record)) = (&webhooks, hris.record(&id))
        {
            hooks.post(event("hris", &id, &record), None);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if settled(&engine, &webhooks, &payroll, config.records).await? && {
            tokio::time::sleep(Duration::from_millis(50)).await;
            settled(&engine, &webhooks, &payroll, config.records).await?
        } {
            break;
        }
        if Instant::now() > deadline {
            bail!("the initial sync did not settle in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "  initial sync: {} employees HRIS -> payroll settled in {:.2?} (not measured below)",
        config.records,
        seeding.elapsed()
    );

    let tracker = Arc::new(Mutex::new(Tracker::new(config.records, total)));
    let collector = {
        let tracker = tracker.clone();
        tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                lock(&tracker).handle(m);
            }
        })
    };
    // The deepest webhook queues, looked at every 10 ms.
    let peaks = Arc::new(Mutex::new((0usize, 0usize)));
    let sampler = {
        let (webhooks, peaks) = (webhooks.clone(), peaks.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                let (h, p) = webhooks.pending();
                let mut peaks = peaks.lock().unwrap_or_else(PoisonError::into_inner);
                peaks.0 = peaks.0.max(h);
                peaks.1 = peaks.1.max(p);
            }
        })
    };
    measuring.store(true, Ordering::SeqCst);

    let run_started_at = concord::store::ts(chrono::Utc::now());
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let anchor = (start, chrono::Utc::now());
    let mut driver = {
        let (hris, tx, webhooks) = (hris.clone(), tx.clone(), webhooks.clone());
        let (records, rate) = (config.records, config.rate);
        tokio::spawn(async move {
            let mut lags = Vec::with_capacity(total);
            for i in 0..total {
                let due = start + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
                let edited = Instant::now();
                lags.push(ms(edited.saturating_duration_since(due)));
                let (seq, rec) = (i + 1, i % records);
                let _ = tx.send(Message::Change { seq, rec, edited });
                let id = format!("H{rec:05}");
                let version = hris.edit(
                    &id,
                    json!({ "full_name": format!("Given{rec} Change{seq}") }),
                );
                match &webhooks {
                    Webhooks::InOrder { .. } => {
                        let _ = tx.send(Message::Version { seq, version });
                    }
                    Webhooks::Pooled { hris: hooks, .. } => {
                        if let Some(record) = hris.record(&id) {
                            hooks.post(event("hris", &id, &record), Some((seq, tx.clone())));
                        }
                    }
                }
            }
            (start.elapsed(), lags)
        })
    };
    drop(tx);

    // Progress every 10 s while offering, then until every change arrived or the drain ran out.
    println!();
    println!(
        "  {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7}",
        "t (s)",
        "edited",
        "arrived",
        "behind",
        "p50 ms",
        "p99 ms",
        "hris q",
        "pay q",
        "inbox",
        "outbox"
    );
    println!(
        "  (p50, p99: webhook -> ack of the changes arrived since the line before; hris q, pay q: \
         webhooks not yet answered; inbox, outbox: events and writes pending in the engine)"
    );
    let mut driven = None;
    let mut drain_deadline = None;
    let mut last_print = start;
    let mut printed_acked = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if driven.is_none() && driver.is_finished() {
            driven = Some((&mut driver).await?);
            drain_deadline = Some(Instant::now() + config.drain);
        }
        let (edited, arrived) = {
            let t = lock(&tracker);
            (t.changes.len(), t.arrived)
        };
        let done = driven.is_some() && arrived == total;
        let out_of_time = drain_deadline.is_some_and(|d| Instant::now() > d);
        if last_print.elapsed() >= Duration::from_secs(10) || done || out_of_time {
            let window_start = last_print;
            last_print = Instant::now();
            let recent = {
                let t = lock(&tracker);
                let recent: Vec<f64> = t
                    .changes
                    .iter()
                    .skip(printed_acked)
                    .filter_map(|c| match (c.posted, c.acked) {
                        (Some(p), Some(a)) if a > window_start => Some(ms(a - p)),
                        _ => None,
                    })
                    .collect();
                // Changes arrive nearly in order: later windows start near the first change
                // not yet arrived.
                printed_acked = t
                    .changes
                    .iter()
                    .position(|c| c.acked.is_none())
                    .unwrap_or(t.changes.len());
                Spread::of(recent)
            };
            let (inbox, outbox) = backlog(&engine).await?;
            let (hris_q, payroll_q) = webhooks.pending();
            println!(
                "  {:>6.0} {:>8} {:>8} {:>8} {:>9.2} {:>9.2} {:>8} {:>8} {:>7} {:>7}",
                start.elapsed().as_secs_f64(),
                edited,
                arrived,
                edited - arrived,
                recent.at(0.5),
                recent.at(0.99),
                hris_q,
                payroll_q,
                inbox,
                outbox
            );
        }
        if done || out_of_time {
            break;
        }
    }
    let wall = start.elapsed();
    let cpu_after = cpu_seconds();
    let Some((drive_time, lags)) = driven else {
        bail!("the driver did not finish");
    };
    sampler.abort();
    // The reports still in the channel are read before the figures.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let t = std::mem::take(&mut *lock(&tracker));
    let drive_end = start + drive_time;
    let in_window = |at: &Instant| *at <= drive_end;
    let lag = Spread::of(lags);
    let rate_in = |n: usize| n as f64 / drive_time.as_secs_f64();
    let hooks_in_window = t.hooks_answered.iter().filter(|a| in_window(a)).count();
    let writes_in_window = t.payroll_writes.iter().filter(|a| in_window(a)).count();
    let acked_in_window = t
        .changes
        .iter()
        .filter(|c| c.acked.as_ref().is_some_and(in_window))
        .count();
    let never = t.changes.iter().filter(|c| c.acked.is_none()).count();
    let unhooked = t.changes.iter().filter(|c| c.posted.is_none()).count();
    let last_ack = t.changes.iter().filter_map(|c| c.acked).max();

    println!();
    println!(
        "concord propagation ({} changes/s offered for {} s, {} employees, {build})",
        config.rate, config.seconds, config.records
    );
    println!(
        "  offered                         {:>9.1} changes/s ({total} changes)",
        config.rate
    );
    println!(
        "  edits made                      {:>9.1} changes/s ({} in {:.2?})",
        rate_in(t.changes.len()),
        t.changes.len(),
        drive_time
    );
    println!(
        "  webhooks answered by the engine {:>9.1} /s while offering ({} in all, {} refused or given up)",
        rate_in(hooks_in_window),
        t.hooks_answered.len(),
        t.hooks_failed
    );
    println!(
        "  writes acknowledged by payroll  {:>9.1} /s while offering ({} in all, {} not from a change of the run)",
        rate_in(writes_in_window),
        t.payroll_writes.len(),
        t.other_payroll_writes
    );
    println!(
        "  changes arrived                 {:>9.1} /s while offering ({} of {total}; last {:.2?} after the start)",
        rate_in(acked_in_window),
        t.arrived,
        last_ack.map_or(Duration::ZERO, |a| a - start)
    );
    println!(
        "  never arrived                   {:>9} (drain timeout {:?} after the last edit)",
        never, config.drain
    );
    if unhooked > 0 {
        println!("  changes whose webhook was not reported: {unhooked}");
    }
    if t.hris_writes > 0 {
        println!(
            "  writes the engine made to the HRIS meanwhile: {}",
            t.hris_writes
        );
    }
    println!(
        "  schedule lag (edit made after due): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lag.at(0.5),
        lag.at(0.99),
        lag.0.last().copied().unwrap_or(f64::NAN)
    );
    let peaks = *peaks.lock().unwrap_or_else(PoisonError::into_inner);
    println!(
        "  deepest webhook queues: HRIS {} waiting, payroll {} waiting",
        peaks.0, peaks.1
    );
    println!(
        "  CPU: user {:.1} s, system {:.1} s in {:.1} s of wall time ({:.0}% of one core); \
         peak RSS {} (VmHWM)",
        cpu_after.0 - cpu_before.0,
        cpu_after.1 - cpu_before.1,
        wall.as_secs_f64(),
        100.0 * (cpu_after.0 - cpu_before.0 + cpu_after.1 - cpu_before.1) / wall.as_secs_f64(),
        common::proc_status("VmHWM")
    );

    println!();
    header("latency (ms), per change");
    let spread = |f: &dyn Fn(&Change) -> Option<Duration>| {
        Spread::of(t.changes.iter().filter_map(f).map(ms).collect())
    };
    let rows = [
        (
            "webhook -> ack (the requirement)",
            spread(&|c| Some(c.acked?.saturating_duration_since(c.posted?))),
        ),
        (
            "edit -> ack (with the HRIS queue)",
            spread(&|c| Some(c.acked?.saturating_duration_since(c.edited))),
        ),
        (
            "  webhook answered (stored)",
            spread(&|c| Some(c.answered?.saturating_duration_since(c.posted?))),
        ),
        (
            "  answered -> ack",
            spread(&|c| Some(c.acked?.saturating_duration_since(c.answered?))),
        ),
        (
            "  edit -> webhook posted",
            spread(&|c| Some(c.posted?.saturating_duration_since(c.edited))),
        ),
    ];
    for (label, s) in &rows {
        s.row(label);
    }
    let outbox = outbox_figures(&engine, &run_started_at, &t.changes, anchor).await?;
    drop(t);
    println!();
    header("engine's outbox timestamps (ms), per write");
    outbox
        .stored_to_committed
        .row("event stored -> outcome committed");
    outbox.stored_to_queued.row("  stored -> write queued");
    outbox
        .queued_to_applied
        .row("  queued -> payroll applied it");
    outbox
        .applied_to_committed
        .row("  payroll applied -> committed");
    if outbox.not_sent > 0 {
        println!(
            "  writes to payroll queued during the run and not sent: {}",
            outbox.not_sent
        );
    }
    let sizes = Spread::of(outbox.commit_sizes.iter().map(|&n| n as f64).collect());
    let writes: usize = outbox.commit_sizes.iter().sum();
    println!(
        "  delivery commits to payroll: {} (writes per commit: mean {:.1}, p50 {:.0}, max {:.0})",
        outbox.commit_sizes.len(),
        writes as f64 / outbox.commit_sizes.len().max(1) as f64,
        sizes.at(0.5),
        sizes.0.last().copied().unwrap_or(f64::NAN),
    );
    println!(
        "  applier batches that queued writes to payroll: {} (mean {:.1} writes each)",
        outbox.batches,
        writes as f64 / outbox.batches.max(1) as f64
    );
    let mut counters = Vec::new();
    for name in [
        "events_in",
        "events_out",
        "noops",
        "duplicates",
        "stale",
        "retries",
        "dead_letters",
    ] {
        counters.push(format!("{name}={}", engine.counter(name).await?));
    }
    let exceptions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM exceptions")
        .fetch_one(engine.pool())
        .await?;
    println!();
    println!(
        "  engine counters (seeding included): {}; {exceptions} exceptions",
        counters.join(" ")
    );
    println!(
        "  load average now {} (other work on the machine skews every figure)",
        common::load_average()
    );

    collector.abort();
    cancel.cancel();
    running.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
