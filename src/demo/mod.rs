//! `concord demo`: the embedded default a newcomer runs. Inside this one process it starts two
//! realistic HR systems on 127.0.0.1 ("Acme HRIS" and "Acme Payroll", see [`hris`] and
//! [`payroll`]), seeds them with the same company of about a thousand people (with the small
//! disagreements real systems have), configures them through the declarative `rest` connector
//! with their secrets in the OS keychain, runs the initial sync, and then lets people edit both
//! sides over time (see [`simulator`]), printing what the engine does: events in and out,
//! conflicts, validation failures, dead letters.
//!
//! [`run`] is the command; [`start`] returns a [`RunningDemo`] for callers that want the engine
//! and the systems while it runs (the console, the tests).

pub mod directory;
pub mod hris;
mod http;
pub mod payroll;
mod people;
pub mod simulator;
mod status;
pub mod workspace;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sqlx::Row;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::model::{RecordId, WorkspaceConfig};
use crate::ops::{DeadLetterFilter, ExceptionFilter};
use crate::poll::ListingProgress;
use crate::runtime::{Engine, EngineOptions, RunningEngine, Settings};
use crate::secrets::{Keychain, Secret, SecretStore};

pub use self::directory::Directory;
pub use self::hris::Hris;
pub use self::http::RequestStats;
pub use self::payroll::{Flakiness, Payroll};
pub use self::simulator::{Edit, SimStats};

/// How `concord demo` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Fixes the people, the secrets, the edits and payroll's failures: same seed, same run.
    pub seed: u64,
    /// People at Acme (a few are in only one of the systems at first).
    pub employees: usize,
    /// Edits people make per second, over both systems.
    pub edits_per_sec: f64,
    /// How long people edit before the demo settles and reports; None: until Ctrl-C.
    pub duration: Option<Duration>,
    /// The engine's SQLite state file; an earlier demo's is replaced, anything else refused.
    pub db: PathBuf,
    /// Print nothing while running (the report is still returned).
    pub quiet: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            employees: 1_000,
            edits_per_sec: 2.0,
            duration: None,
            db: std::env::temp_dir().join("concord-demo.db"),
            quiet: false,
        }
    }
}

/// The fewest people the demo's company can have (a chief executive, ten departments with a
/// head and a manager each, and some staff).
pub const MIN_EMPLOYEES: usize = 30;
pub const MAX_EMPLOYEES: usize = 100_000;

/// How long the demo waits for the engine to settle after people stop editing.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(90);

/// What a demo run did, and whether the systems agree.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoReport {
    pub seed: u64,
    pub hris_employees: usize,
    pub payroll_employees: usize,
    pub directory_users: usize,
    /// Records held by more than one system.
    pub linked_in_both: usize,
    pub initial_sync: Duration,
    pub ran_for: Duration,
    pub edits: u64,
    pub events_in: i64,
    pub events_out: i64,
    pub retries: i64,
    pub duplicates: i64,
    /// Open exceptions by kind (`conflict`, `validation`, ...).
    pub exceptions: BTreeMap<String, usize>,
    /// Dead letters by class (`validation`, `retries_exhausted`, ...).
    pub dead_letters: BTreeMap<String, usize>,
    /// Fields where a system holds something else than the golden record, with no open
    /// exception or dead letter to explain it. Empty when the systems converged.
    pub divergences: Vec<String>,
    pub hris_requests: RequestStats,
    pub payroll_requests: RequestStats,
    pub directory_requests: RequestStats,
}

impl DemoReport {
    pub fn converged(&self) -> bool {
        self.divergences.is_empty()
    }
}

fn by_kind(map: &BTreeMap<String, usize>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "demo (seed {}): {}",
            self.seed,
            if self.converged() {
                "CONVERGED"
            } else {
                "DIVERGED"
            }
        )?;
        writeln!(
            f,
            "  employees: Acme HRIS {}, Acme Payroll {}, Acme Directory {}; in more than one {}",
            self.hris_employees, self.payroll_employees, self.directory_users, self.linked_in_both
        )?;
        writeln!(
            f,
            "  initial sync {:.1?}; then {} edits in {:.1?}",
            self.initial_sync, self.edits, self.ran_for
        )?;
        writeln!(
            f,
            "  events in {}, writes out {}, retries {}, duplicates {}",
            self.events_in, self.events_out, self.retries, self.duplicates
        )?;
        let p = &self.payroll_requests;
        writeln!(
            f,
            "  Acme Payroll answered {} requests: {} × 429, {} × 503, {} × 412, {} × 422, {} slow",
            p.total(),
            p.with_status(429),
            p.with_status(503),
            p.with_status(412),
            p.with_status(422),
            p.slow
        )?;
        let d = &self.directory_requests;
        writeln!(
            f,
            "  Acme Directory answered {} requests: {} × 412",
            d.total(),
            d.with_status(412)
        )?;
        writeln!(
            f,
            "  open exceptions: {}; dead letters: {}",
            by_kind(&self.exceptions),
            by_kind(&self.dead_letters)
        )?;
        if self.converged() {
            write!(
                f,
                "  every mapped field of every employee agrees with the golden record, except \
                 where an exception or a dead letter says why"
            )
        } else {
            writeln!(
                f,
                "  {} fields disagree with nothing to explain it, first ones:",
                self.divergences.len()
            )?;
            for d in self.divergences.iter().take(10) {
                writeln!(f, "    {d}")?;
            }
            Ok(())
        }
    }
}

/// Runs the demo: starts it, lets people edit for `duration` (or until Ctrl-C), lets the
/// engine settle, and reports.
pub async fn run(opts: DemoOptions) -> anyhow::Result<DemoReport> {
    let mut demo = start(&opts).await?;
    let interrupted = match opts.duration {
        Some(d) => tokio::select! {
            () = tokio::time::sleep(d) => false,
            _ = tokio::signal::ctrl_c() => true,
        },
        None => {
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            true
        }
    };
    if !opts.quiet {
        println!(
            "{}people stop editing; waiting for the engine to settle (Ctrl-C {}to skip)",
            if interrupted { "\n" } else { "" },
            if interrupted { "again " } else { "" }
        );
    }
    demo.stop_simulator().await;
    let settled = tokio::select! {
        r = demo.settle(SETTLE_TIMEOUT) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted while settling")),
    };
    let report = demo.report().await;
    demo.shutdown().await;
    let report = report?;
    if !opts.quiet {
        println!("{report}");
    }
    settled?;
    Ok(report)
}

/// A demo that is running: the engine, its two systems and the people editing them.
pub struct RunningDemo {
    engine: Engine,
    config: WorkspaceConfig,
    hris: Hris,
    payroll: Payroll,
    directory: Directory,
    engine_addr: SocketAddr,
    db: PathBuf,
    seed: u64,
    started: Instant,
    initial_sync: Duration,
    /// Stops the systems, the engine's server and the status line.
    cancel: CancellationToken,
    running: Option<RunningEngine>,
    sim_cancel: CancellationToken,
    sim_task: Option<JoinHandle<()>>,
    status_task: Option<JoinHandle<()>>,
    sim_stats: Arc<Mutex<SimStats>>,
}

impl RunningDemo {
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Where the engine listens (webhooks at `/hooks/{system}`).
    pub fn engine_addr(&self) -> SocketAddr {
        self.engine_addr
    }

    pub fn hris(&self) -> &Hris {
        &self.hris
    }

    pub fn payroll(&self) -> &Payroll {
        &self.payroll
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    pub fn workspace(&self) -> &WorkspaceConfig {
        &self.config
    }

    pub fn db(&self) -> &Path {
        &self.db
    }

    pub fn sim_stats(&self) -> SimStats {
        self.sim_stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// People stop editing.
    pub async fn stop_simulator(&mut self) {
        self.sim_cancel.cancel();
        if let Some(t) = self.sim_task.take() {
            let _ = t.await;
        }
    }

    /// Waits until nothing is left to do: every webhook accepted, the inbox applied, the
    /// outbox delivered (retries included), payroll polled after its last change, and all of
    /// it quiet for a few poll intervals.
    pub async fn settle(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        // The directory sends no events: its changes are seen at its polls.
        let quiet_for = Duration::from_secs_f64(
            workspace::PAYROLL_POLL_SECS.max(workspace::DIRECTORY_POLL_SECS) * 2.5,
        );
        let mut quiet_since: Option<Instant> = None;
        loop {
            let (inbox, outbox) = queue_depths(&self.engine).await?;
            let hooks = self.hris.hooks_pending();
            let (polled, _) = self.payroll.listed_since_last_change();
            let busy = inbox > 0 || outbox > 0 || hooks > 0 || !polled;
            if busy {
                quiet_since = None;
            } else if quiet_since.get_or_insert_with(Instant::now).elapsed() >= quiet_for {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the engine did not settle within {timeout:?}: {inbox} events to apply, \
                     {outbox} writes to deliver, {hooks} HRIS webhooks unaccepted, payroll \
                     polled since its last change: {polled}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fields where a system's record, read through its mapping, differs from the golden
    /// record without an open exception on that record and field, a dead letter of a write
    /// of that field to that system, or a change that system dated in the future; and records
    /// held by one system only with no open exception saying why.
    pub async fn divergences(&self) -> anyhow::Result<Vec<String>> {
        let engine = &self.engine;
        let ws = engine.workspace();
        let schema = ws
            .object("employee")
            .context("the demo workspace has no employee object")?
            .clone();
        let exceptions = engine
            .list_exceptions(&ExceptionFilter {
                limit: Some(10_000),
                ..Default::default()
            })
            .await?;
        let excused: BTreeSet<(RecordId, String)> = exceptions
            .iter()
            .filter_map(|e| Some((e.record_id?, e.field.clone()?)))
            .collect();
        let with_exception: BTreeSet<RecordId> =
            exceptions.iter().filter_map(|e| e.record_id).collect();
        let mut dead: BTreeSet<(RecordId, String, String)> = BTreeSet::new();
        for d in engine
            .list_dead_letters(&DeadLetterFilter {
                limit: Some(10_000),
                ..Default::default()
            })
            .await?
        {
            let Some(record) = d.record_id else { continue };
            for f in engine.replay_preview(d.id).await?.fields {
                dead.insert((record, d.system.clone(), f.field));
            }
        }
        // A value a system dated in the future differs from the golden record until its date.
        let mut dated: BTreeSet<(RecordId, String, String)> = BTreeSet::new();
        for c in engine
            .scheduled_changes(&crate::runtime::ScheduledFilter {
                limit: Some(1000),
                ..Default::default()
            })
            .await?
            .items
        {
            let Some(record) = c.record_id else { continue };
            for field in c.values.keys() {
                dated.insert((record, c.system.clone(), field.clone()));
            }
        }
        let mut out = Vec::new();
        let directory_users: Vec<hris::WorkerRecord> = self
            .directory
            .snapshot()
            .users
            .into_iter()
            .filter_map(|u| {
                let user = u.as_object()?.clone();
                Some((user.get("id")?.as_str()?.to_owned(), user))
            })
            .collect();
        let systems: [(&str, Vec<hris::WorkerRecord>); 3] = [
            ("hris", self.hris.records()),
            ("payroll", self.payroll.records()),
            ("directory", directory_users),
        ];
        for (system, records) in systems {
            let mapping = ws
                .mapping(system, "employee")
                .with_context(|| format!("the demo workspace does not map {system}"))?;
            for (id, record) in records {
                let Some(record_id) = engine.record_for(system, "employee", &id).await? else {
                    out.push(format!("{system} {id} is not linked to any record"));
                    continue;
                };
                let golden = engine.golden(record_id).await?;
                let who = golden
                    .get("employee_number")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                let inbound = mapping.read(&schema, &record);
                for (field, value) in inbound.values {
                    let expected = golden.get(&field).cloned().unwrap_or(Value::Null);
                    // A value several codes share (`active` for on leave too) agrees with any.
                    if inbound
                        .alternatives
                        .get(&field)
                        .is_some_and(|codes| codes.contains(&expected))
                    {
                        continue;
                    }
                    if excused.contains(&(record_id, field.clone()))
                        || dead.contains(&(record_id, system.to_owned(), field.clone()))
                        || dated.contains(&(record_id, system.to_owned(), field.clone()))
                    {
                        continue;
                    }
                    if value != expected {
                        out.push(format!(
                            "{system} {id} ({who}) {field} holds {value}, the golden record {expected}"
                        ));
                    }
                }
            }
        }
        let single: Vec<(RecordId, String)> = sqlx::query(
            "SELECT record_id, MIN(system_id) FROM links WHERE deleted = 0 GROUP BY record_id HAVING COUNT(*) = 1",
        )
        .fetch_all(engine.pool())
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
        for (record_id, system) in single {
            if !with_exception.contains(&record_id) {
                let golden = engine.golden(record_id).await?;
                out.push(format!(
                    "record {record_id} ({}) is only in {system}, and no exception says why",
                    golden
                        .get("employee_number")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                ));
            }
        }
        Ok(out)
    }

    pub async fn report(&self) -> anyhow::Result<DemoReport> {
        let engine = &self.engine;
        let mut exceptions: BTreeMap<String, usize> = BTreeMap::new();
        for e in engine
            .list_exceptions(&ExceptionFilter {
                limit: Some(10_000),
                ..Default::default()
            })
            .await?
        {
            *exceptions.entry(e.kind).or_default() += 1;
        }
        let mut dead_letters: BTreeMap<String, usize> = BTreeMap::new();
        for d in engine
            .list_dead_letters(&DeadLetterFilter {
                limit: Some(10_000),
                ..Default::default()
            })
            .await?
        {
            *dead_letters.entry(d.error_class).or_default() += 1;
        }
        let linked_in_both: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM (SELECT record_id FROM links WHERE deleted = 0 GROUP BY record_id HAVING COUNT(DISTINCT system_id) >= 2)",
        )
        .fetch_one(engine.pool())
        .await?;
        Ok(DemoReport {
            seed: self.seed,
            hris_employees: self.hris.len(),
            payroll_employees: self.payroll.len(),
            directory_users: self.directory.len(),
            linked_in_both: usize::try_from(linked_in_both).unwrap_or(0),
            initial_sync: self.initial_sync,
            ran_for: self.started.elapsed(),
            edits: self.sim_stats().edits,
            events_in: engine.counter("events_in").await?,
            events_out: engine.counter("events_out").await?,
            retries: engine.counter("retries").await?,
            duplicates: engine.counter("duplicates").await?,
            exceptions,
            dead_letters,
            divergences: self.divergences().await?,
            hris_requests: self.hris.stats(),
            payroll_requests: self.payroll.stats(),
            directory_requests: self.directory.stats(),
        })
    }

    /// Stops everything: people, the status line, the engine (bounded), the systems.
    pub async fn shutdown(mut self) {
        self.stop_simulator().await;
        if let Some(t) = self.status_task.take() {
            t.abort();
        }
        if let Some(r) = self.running.take() {
            r.shutdown(Duration::from_secs(5)).await;
        }
        self.cancel.cancel();
    }
}

impl Drop for RunningDemo {
    fn drop(&mut self) {
        self.sim_cancel.cancel();
        self.cancel.cancel();
    }
}

/// Pending inbox events, and outbox writes pending or in flight.
async fn queue_depths(engine: &Engine) -> anyhow::Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending'),
                (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight'))",
    )
    .fetch_one(engine.pool())
    .await?;
    Ok((row.get(0), row.get(1)))
}

/// The demo's secrets, derived from the seed, stored in the OS keychain under the names the
/// workspace config uses. Never written anywhere else.
struct Secrets {
    hris_api_key: String,
    hris_webhook_key: String,
    payroll_client_secret: String,
    directory_token: String,
}

impl Secrets {
    fn from_seed(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5EC2_E75E_C2E7);
        let mut hex = |prefix: &str| format!("{prefix}{:032x}", rng.r#gen::<u128>());
        Self {
            hris_api_key: hex("hk_"),
            hris_webhook_key: hex("whsec_"),
            payroll_client_secret: hex("cs_"),
            directory_token: hex("scim_"),
        }
    }

    fn store(&self, seed: u64) -> anyhow::Result<()> {
        let keychain = Keychain::default();
        for (kind, value) in [
            (workspace::HRIS_API_KEY, &self.hris_api_key),
            (workspace::HRIS_WEBHOOK_KEY, &self.hris_webhook_key),
            (
                workspace::PAYROLL_CLIENT_SECRET,
                &self.payroll_client_secret,
            ),
            (workspace::DIRECTORY_TOKEN, &self.directory_token),
        ] {
            let name = workspace::secret_name(kind, seed);
            keychain.set(&name, &Secret::new(value.clone())).with_context(|| {
                format!(
                    "the demo keeps its systems' secrets in the OS keychain and could not store \
                     '{name}' there (it never falls back to a file)"
                )
            })?;
        }
        Ok(())
    }
}

/// Makes `path` ready for a fresh demo: an earlier demo's state is removed; a state file of
/// any other workspace, or a file that is not a Concord state file, is refused.
async fn prepare_db(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if !path.exists() {
        return Ok(());
    }
    let pool = crate::store::open(path).await.with_context(|| {
        format!(
            "{} exists and is not a Concord state file; pass another --db",
            path.display()
        )
    })?;
    let existing = crate::store::load_workspace(&pool).await;
    pool.close().await;
    let names: Vec<String> = existing?.systems.into_iter().map(|s| s.name).collect();
    let demo = |n: &String| matches!(n.as_str(), "Acme HRIS" | "Acme Payroll" | "Acme Directory");
    if !names.iter().all(demo) {
        bail!(
            "{} holds another workspace (systems: {}); the demo starts from a fresh state file, \
             so pass another --db",
            path.display(),
            names.join(", ")
        );
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        if file.exists() {
            std::fs::remove_file(&file).with_context(|| format!("removing {}", file.display()))?;
        }
    }
    Ok(())
}

/// Starts the demo: secrets, engine, systems, workspace, the initial sync, then people editing
/// and (unless quiet) a status line.
pub async fn start(opts: &DemoOptions) -> anyhow::Result<RunningDemo> {
    if !(MIN_EMPLOYEES..=MAX_EMPLOYEES).contains(&opts.employees) {
        bail!(
            "the demo company has {MIN_EMPLOYEES} to {MAX_EMPLOYEES} employees, not {}",
            opts.employees
        );
    }
    if !(opts.edits_per_sec.is_finite() && opts.edits_per_sec >= 0.0) {
        bail!(
            "edits per second must be zero or more, not {}",
            opts.edits_per_sec
        );
    }
    let say = |line: String| {
        if !opts.quiet {
            println!("{line}");
        }
    };
    let secrets = Secrets::from_seed(opts.seed);
    secrets.store(opts.seed)?;
    prepare_db(&opts.db).await?;
    let engine = Engine::open(
        &opts.db,
        EngineOptions {
            settings: Settings {
                backoff_base: Duration::from_millis(200),
                backoff_cap: Duration::from_secs(5),
                idle_poll: Duration::from_millis(20),
                ..Settings::default()
            },
            ..EngineOptions::default()
        },
    )
    .await
    .with_context(|| format!("opening the demo state file {}", opts.db.display()))?;
    let cancel = CancellationToken::new();
    // Should anything below fail, the servers and tasks started so far stop.
    let stop_on_failure = cancel.clone().drop_guard();
    let (engine_addr, _server) =
        crate::server::spawn_loopback(engine.clone(), 0, cancel.clone()).await?;

    let seeded = people::seed_systems(opts.seed, opts.employees);
    let hris = Hris::start(
        secrets.hris_api_key.clone(),
        secrets.hris_webhook_key.clone(),
        format!("http://{engine_addr}/hooks/hris"),
        seeded.hris,
        cancel.clone(),
    )
    .await?;
    let payroll = Payroll::start(
        secrets.payroll_client_secret.clone(),
        opts.seed,
        Flakiness::default(),
        seeded.payroll,
        cancel.clone(),
    )
    .await?;
    let directory = Directory::start(
        secrets.directory_token.clone(),
        directory::seed(opts.seed, opts.employees),
        cancel.clone(),
    )
    .await?;
    let config = workspace::workspace(
        workspace::Urls {
            hris: &hris.base_url(),
            payroll: &payroll.base_url(),
            directory: &directory.base_url(),
        },
        opts.seed,
    )?;
    engine.apply_workspace(&config).await?;
    say(format!(
        "Concord demo, seed {}: {} people at Acme, two HR systems and a directory on this machine",
        opts.seed, opts.employees
    ));
    say(format!(
        "  Acme HRIS     {}{}  {} workers; API key, page/size pages, signed webhooks",
        hris.base_url(),
        hris::COLLECTION,
        hris.len()
    ));
    say(format!(
        "  Acme Payroll  {}{}  {} employees; OAuth2, cursor pages, polled every {} s, \
         {} requests/s, fails some on purpose",
        payroll.base_url(),
        payroll::COLLECTION,
        payroll.len(),
        workspace::PAYROLL_POLL_SECS,
        payroll::RATE_LIMIT
    ));
    say(format!(
        "  Acme Directory {}/Users  {} users; SCIM 2.0, bearer token, polled every {} s, \
         owns e-mail and phone",
        directory.base_url(),
        directory.len(),
        workspace::DIRECTORY_POLL_SECS
    ));
    say(format!(
        "  engine        webhooks at http://{engine_addr}/hooks/{{system}}; state in {}; \
         secrets in the OS keychain",
        opts.db.display()
    ));
    say(format!(
        "  at the start: recent hires only in the HRIS {}, people only in payroll {}; some \
         phones, salaries and names differ",
        seeded.hris_only, seeded.payroll_only
    ));

    let started = Instant::now();
    for (system, name) in [
        ("hris", "Acme HRIS"),
        ("payroll", "Acme Payroll"),
        ("directory", "Acme Directory"),
    ] {
        initial_listing(&engine, system, name, opts.quiet).await?;
    }
    // Everything listed is matched (or not) before the first write goes out, so no record is
    // created in a system that already holds it.
    while engine.process_inbox().await? > 0 {}
    let running = engine.start(cancel.clone());
    let first_writes = queue_depths(&engine).await?.1;
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut last_print = Instant::now();
    loop {
        let (inbox, outbox) = queue_depths(&engine).await?;
        if inbox == 0 && outbox == 0 {
            break;
        }
        if Instant::now() > deadline {
            say(format!(
                "initial sync: {outbox} writes still queued after 10 minutes; going on"
            ));
            break;
        }
        if !opts.quiet && last_print.elapsed() > Duration::from_secs(1) {
            last_print = Instant::now();
            status::progress(&format!(
                "initial sync: writing {first_writes} changes to the systems, {outbox} left"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let initial_sync = started.elapsed();
    if !opts.quiet {
        status::progress_done();
        println!("{}", status::initial_summary(&engine, initial_sync).await?);
    }

    let sim_stats = Arc::new(Mutex::new(SimStats::default()));
    let sim_cancel = CancellationToken::new();
    let simulator = simulator::Simulator::new(
        hris.clone(),
        payroll.clone(),
        directory.clone(),
        opts.seed,
        seeded.next_number,
        seeded.used_emails,
        sim_stats.clone(),
    );
    let sim_task = tokio::spawn(simulator.run(opts.edits_per_sec, sim_cancel.clone()));
    say(format!(
        "people now edit the systems, {} edits a second{}",
        opts.edits_per_sec,
        match opts.duration {
            Some(d) => format!(", for {d:?}"),
            None => ", until Ctrl-C".into(),
        }
    ));
    let status_task = (!opts.quiet).then(|| {
        tokio::spawn(status::status_loop(
            engine.clone(),
            sim_stats.clone(),
            Instant::now(),
            cancel.clone(),
        ))
    });
    stop_on_failure.disarm();
    Ok(RunningDemo {
        engine,
        config,
        hris,
        payroll,
        directory,
        engine_addr,
        db: opts.db.clone(),
        seed: opts.seed,
        started: Instant::now(),
        initial_sync,
        cancel,
        running: Some(running),
        sim_cancel,
        sim_task: Some(sim_task),
        status_task,
        sim_stats,
    })
}

/// One system's initial listing through its connector, page by page, resumed after a failed
/// page (payroll fails some on purpose).
async fn initial_listing(
    engine: &Engine,
    system: &str,
    name: &str,
    quiet: bool,
) -> anyhow::Result<()> {
    let mut failures = 0;
    loop {
        let result = engine
            .poll(system, |p: &ListingProgress| {
                if !quiet {
                    status::progress(&status::listing_line(name, p));
                }
            })
            .await;
        match result {
            Ok(_) => break,
            Err(e) => {
                failures += 1;
                let transient = matches!(&e, crate::EngineError::Connector(c) if c.is_retryable());
                if !transient || failures > 50 {
                    return Err(e).with_context(|| format!("listing {name}"));
                }
                if !quiet {
                    status::progress(&format!(
                        "initial sync: {name} answered: {e}; resuming the listing"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    if !quiet {
        status::progress_done();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde_json::{Map, json};

    use super::*;
    use crate::transform::Transform;

    #[test]
    fn one_person_reads_the_same_through_both_systems_mappings() {
        let config = workspace::workspace(
            workspace::Urls {
                hris: "http://127.0.0.1:1",
                payroll: "http://127.0.0.1:2",
                directory: "http://127.0.0.1:3/scim/v2",
            },
            1,
        )
        .expect("the demo workspace is valid");
        crate::workspace::Workspace::new(config.clone()).expect("and the engine accepts it");
        let schema = &config.objects[0];
        let mapping = |s: &str| {
            config
                .mappings
                .iter()
                .find(|m| m.system == s)
                .expect("mapped")
        };
        let mut rng = StdRng::seed_from_u64(3);
        let company = people::company(&mut rng, 400, &mut Vec::new());
        for p in &company {
            let typed = people::typed_phone(&mut rng, &p.phone);
            let hris = mapping("hris").read(schema, &people::hris_record(p, &typed));
            let payroll = mapping("payroll").read(schema, &people::payroll_record(p));
            assert!(
                hris.errors.is_empty() && payroll.errors.is_empty(),
                "seeded records are valid: {:?} {:?}",
                hris.errors,
                payroll.errors
            );
            for (field, value) in &payroll.values {
                if let Some(h) = hris.values.get(field)
                    && field != "employment_status"
                {
                    assert_eq!(h, value, "{} {field} agrees in both systems", p.number);
                }
            }
        }
    }

    #[test]
    fn the_demo_phones_are_valid_us_numbers() {
        let phone = Transform::Phone {
            region: "US".into(),
            system_format: Default::default(),
        };
        let mut rng = StdRng::seed_from_u64(1);
        for (_, _, _, area) in people::CITIES {
            for _ in 0..5 {
                let digits = people::phone_digits(&mut rng, area);
                let typed = Value::String(people::typed_phone(&mut rng, &digits));
                let read = phone.to_canonical(&[Some(&typed)]);
                assert_eq!(
                    read,
                    Ok(vec![Some(json!(people::e164(&digits)))]),
                    "{typed} is a valid US number"
                );
            }
        }
        let uk = json!("+44 20 7946 0123");
        assert!(
            phone.to_canonical(&[Some(&uk)]).is_ok(),
            "the UK number the simulator types is valid (payroll, not the engine, refuses it)"
        );
    }

    #[test]
    fn a_seed_gives_the_same_company_every_time() {
        let records = |seed| {
            let s = people::seed_systems(seed, 120);
            let strip = |v: Vec<(Map<String, Value>, DateTime<Utc>)>| {
                v.into_iter().map(|(r, _)| r).collect::<Vec<_>>()
            };
            (strip(s.hris), strip(s.payroll))
        };
        assert_eq!(records(9), records(9), "same seed, same people");
        assert_ne!(records(9), records(10), "another seed, other people");
        let s = people::seed_systems(9, 120);
        assert_eq!(
            (s.hris.len(), s.payroll.len()),
            (120 - s.payroll_only, 120 - s.hris_only),
            "a few people are in one system only"
        );
    }

    #[test]
    fn routing_numbers_carry_a_valid_check_digit() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..100 {
            let r = people::routing_number(&mut rng);
            let d: Vec<u32> = r.chars().filter_map(|c| c.to_digit(10)).collect();
            assert_eq!(d.len(), 9, "{r} has nine digits");
            let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
            assert_eq!(sum % 10, 0, "{r} passes the ABA checksum");
        }
    }

    #[test]
    fn secrets_follow_the_seed() {
        let (a, b) = (Secrets::from_seed(1), Secrets::from_seed(1));
        assert_eq!(a.hris_api_key, b.hris_api_key, "same seed, same secrets");
        assert_ne!(
            a.hris_api_key,
            Secrets::from_seed(2).hris_api_key,
            "another seed, other secrets"
        );
        assert_ne!(a.hris_api_key, a.hris_webhook_key, "each secret differs");
    }
}
