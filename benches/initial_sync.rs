//! Initial sync at scale, end to end, printed as figures (nothing is asserted but the outcome).
//!
//! `cargo bench --bench initial_sync` connects two systems that already hold records, as on
//! the day Concord is first switched on: an HRIS with `N` employees and a payroll that holds
//! half of them already (same employee numbers, its own ids and shapes). Both are real HTTP
//! servers on 127.0.0.1 ([`LoopbackSystem`], listing in pages of 1,000 with `offset`/`limit`),
//! synced by the running engine on a real SQLite file (WAL, `synchronous = NORMAL`), as the
//! self-check's HR workspace maps them. The engine:
//!
//! 1. lists both systems as soon as it starts (each is reconciled daily, and a system never
//!    listed in full is listed at once), which turns every record it has never seen into an
//!    event; no record is created in a system before its listing is done;
//! 2. applies them: first contact matches the payroll's half to the HRIS's records by
//!    employee number and e-mail, and creates golden records;
//! 3. creates the other half in the payroll, and takes in the echoes of its own writes.
//!
//! It ends when both systems hold `N` employees, every queue is empty and no webhook is in
//! flight. The run fails (non-zero exit) if a record was duplicated or lost.
//!
//! Printed: the time of each step and the total, the rate, and memory. The two systems run in
//! a child process of their own (this bench run again, with `CONCORD_INITIAL_SYSTEMS_FOR` set
//! to the engine's webhook address), so the bench process holds the engine alone and its peak
//! RSS (`VmHWM`) is the engine's, the figure the target is about. The systems' own peak is
//! printed beside it.
//!
//! Environment: `CONCORD_INITIAL_RECORDS` (default 1000000), `CONCORD_INITIAL_TIMEOUT_SECS`
//! (default 3600), `CONCORD_BENCH_DIR` places the SQLite file (default: the system temp dir),
//! `CONCORD_INITIAL_PROGRESS=1` prints the engine's queues every second.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use concord::loopback::LoopbackSystem;
use concord::secrets::{MemorySecrets, Secret, SecretStore};
use concord::selfcheck::webhook_secret_name;
use concord::{Engine, EngineOptions, Settings};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// Set in the child process that runs the two systems: the engine's webhook base URL.
const SYSTEMS_FOR: &str = "CONCORD_INITIAL_SYSTEMS_FOR";

#[global_allocator]
static ALLOCATOR: concord::Allocator = concord::Allocator;

fn hris_employee(i: usize) -> Map<String, Value> {
    let fields = json!({
        "employee_id": format!("E{i:07}"),
        "full_name": format!("Given{i} Family{i}"),
        "email": format!("person{i}@acme.example"),
        "phone": format!("(415) 555-{:04}", i % 10_000),
        "status": "Active",
        "hire_date": format!("{:02}/{:02}/20{:02}", 1 + i % 12, 1 + i % 28, 10 + i % 15),
        "title": "Analyst",
        "department": "Finance",
    });
    match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The same person as the payroll holds them: its own field names and formats.
fn payroll_employee(i: usize) -> Map<String, Value> {
    let fields = json!({
        "emp_no": format!("E{i:07}"),
        "first_name": format!("Given{i}"),
        "last_name": format!("Family{i}"),
        "email": format!("person{i}@acme.example"),
        "phone": format!("+1415555{:04}", i % 10_000),
        "state": 1,
        "hire_date": format!("20{:02}-{:02}-{:02}", 10 + i % 15, 1 + i % 12, 1 + i % 28),
        "salary_cents": 5_000_000 + i,
    });
    match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let n = usize::try_from(common::env_or("CONCORD_INITIAL_RECORDS", 1_000_000)?)?.max(2);
    if let Ok(hooks) = std::env::var(SYSTEMS_FOR) {
        return serve_systems(&hooks, n).await;
    }
    let timeout = Duration::from_secs(common::env_or("CONCORD_INITIAL_TIMEOUT_SECS", 3_600)?);
    let progress = common::env_or("CONCORD_INITIAL_PROGRESS", 0)? != 0;
    let dir = common::state_dir("concord-initial-")?;
    println!(
        "concord initial sync: {n} employees in the HRIS, {} of them already in the payroll, {}",
        n / 2,
        common::BUILD
    );

    // The systems' webhook tokens are the run's own: held in memory only.
    let secrets = std::sync::Arc::new(MemorySecrets::new());
    let engine = Engine::open(
        &dir.path().join("state.db"),
        EngineOptions {
            secrets: secrets.clone(),
            settings: Settings {
                idle_poll: Duration::from_millis(20),
                breaker: common::counting_breaker(),
                ..Settings::default()
            },
            ..EngineOptions::default()
        },
    )
    .await?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let (door, _server) =
        concord::server::spawn_loopback(engine.clone(), 0, cancel.clone()).await?;
    let rss_engine_before = common::memory_mb("VmRSS");

    let started = Instant::now();
    let mut systems = Systems::spawn(&format!("http://{door}/hooks"), n).await?;
    let ready = &systems.ready;
    println!(
        "  systems seeded in {:.1} s in a process of their own ({:.0} MB RSS); this process, the engine's, holds {rss_engine_before:.0} MB",
        started.elapsed().as_secs_f64(),
        ready.rss_mb
    );
    for (system, token) in [
        ("hris", &ready.hris_token),
        ("payroll", &ready.payroll_token),
    ] {
        secrets.set(&webhook_secret_name(system), &Secret::new(token.as_str()))?;
    }

    let mut config = concord::selfcheck::workspace(&ready.hris_url, &ready.payroll_url);
    for system in &mut config.systems {
        system.config["objects"]["employee"]["pagination"] = json!({
            "style": "offset", "offset_param": "offset", "limit_param": "limit", "limit": 1000
        });
        // Listed daily: a newly connected system is listed at once, and gets no creates
        // before that listing has linked the records it holds.
        system.config["reconcile"] = json!({ "interval_secs": 86_400 });
    }
    engine.apply_workspace(&config).await?;
    let running = engine.start(cancel.clone());

    let started = Instant::now();
    let deadline = started + timeout;
    let mut last_report = Instant::now();
    let mut last_progress = Instant::now();
    let mut listing: Option<Duration> = None;
    let mut status;
    loop {
        status = systems.status().await?;
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            print_progress(&engine, started, status.payroll).await?;
        }
        if listing.is_none() {
            let listed: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM reconcile_runs WHERE listing_done = 1")
                    .fetch_one(engine.pool())
                    .await?;
            if listed >= 2 {
                let took = started.elapsed();
                listing = Some(took);
                println!(
                    "  listing both systems:      {:>8.1} s  (the engine applies what it lists meanwhile)",
                    took.as_secs_f64()
                );
            }
        }
        if status.hris >= n
            && status.payroll >= n
            && status.hooks_pending == 0
            && concord::selfcheck::queues_empty(&engine).await?
            && systems.status().await?.hooks_pending == 0
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "not settled after {:.0} s: HRIS {} and payroll {} records",
                timeout.as_secs_f64(),
                status.hris,
                status.payroll
            );
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            println!(
                "    … {:>6.0} s: payroll holds {} of {n}",
                started.elapsed().as_secs_f64(),
                status.payroll
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = started.elapsed();
    cancel.cancel();
    running.shutdown(Duration::from_secs(10)).await;

    let links: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM links WHERE deleted = 0")
        .fetch_one(engine.pool())
        .await?;
    let records: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM records")
        .fetch_one(engine.pool())
        .await?;
    let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters")
        .fetch_one(engine.pool())
        .await?;
    let exceptions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM exceptions")
        .fetch_one(engine.pool())
        .await?;
    let peak = common::memory_mb("VmHWM");
    let systems_peak = systems.status().await?.peak_mb;
    systems.stop().await?;
    println!(
        "  initial sync, end to end:  {:>8.1} s  {:.0} records/s (target: 1,000,000 in under 60 s)",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    println!(
        "  peak RSS of the engine's process {peak:.0} MB (target: under 300 MB); the systems' process peaked at {systems_peak:.0} MB"
    );
    println!(
        "  outcome: HRIS {} and payroll {} employees, {records} golden records, {links} links, \
         {exceptions} exceptions, {dead} dead letters",
        status.hris, status.payroll
    );
    let n_i64 = i64::try_from(n)?;
    ensure!(
        status.hris == n && status.payroll == n,
        "every employee is in both systems once (HRIS {}, payroll {})",
        status.hris,
        status.payroll
    );
    ensure!(
        records == n_i64 && links == 2 * n_i64,
        "one golden record per person, linked in both systems ({records} records, {links} links)"
    );
    ensure!(dead == 0, "nothing dead-lettered ({dead})");
    Ok(())
}

/// What the systems' process says once both systems are seeded and serving.
#[derive(Serialize, Deserialize)]
struct Ready {
    hris_url: String,
    payroll_url: String,
    hris_token: String,
    payroll_token: String,
    rss_mb: f64,
}

/// What the systems' process answers to each line it reads.
#[derive(Serialize, Deserialize)]
struct Status {
    hris: usize,
    payroll: usize,
    hooks_pending: usize,
    peak_mb: f64,
}

/// The child process that runs the HRIS and the payroll, spoken to in lines of JSON.
struct Systems {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    ready: Ready,
}

impl Systems {
    async fn spawn(hooks: &str, n: usize) -> Result<Self> {
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .env(SYSTEMS_FOR, hooks)
            .env("CONCORD_INITIAL_RECORDS", n.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the systems' process")?;
        let stdin = child.stdin.take().context("the systems' stdin")?;
        let stdout = child.stdout.take().context("the systems' stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let first = lines
            .next_line()
            .await?
            .context("the systems' process ended before it was ready")?;
        let ready = serde_json::from_str(&first)?;
        Ok(Self {
            child,
            stdin,
            lines,
            ready,
        })
    }

    async fn status(&mut self) -> Result<Status> {
        self.stdin.write_all(b"status\n").await?;
        self.stdin.flush().await?;
        let line = self
            .lines
            .next_line()
            .await?
            .context("the systems' process ended")?;
        Ok(serde_json::from_str(&line)?)
    }

    async fn stop(mut self) -> Result<()> {
        drop(self.stdin);
        let exit = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await??;
        ensure!(exit.success(), "the systems' process failed: {exit}");
        Ok(())
    }
}

/// The child's side: seeds both systems, posting their webhooks to `hooks`, says it is ready,
/// then answers a status line for each line it reads until its input closes.
async fn serve_systems(hooks: &str, n: usize) -> Result<()> {
    let start = |id: &'static str| {
        LoopbackSystem::start(id, "employee", "/employees", Some(format!("{hooks}/{id}")))
    };
    let (hris, payroll) = (start("hris").await?, start("payroll").await?);
    hris.seed((0..n).map(|i| (format!("H{i:07}"), hris_employee(i))));
    payroll.seed(
        (0..n)
            .step_by(2)
            .map(|i| (format!("P{i:07}"), payroll_employee(i))),
    );
    let ready = Ready {
        hris_url: hris.base_url(),
        payroll_url: payroll.base_url(),
        hris_token: hris.hook_token().expose().to_owned(),
        payroll_token: payroll.hook_token().expose().to_owned(),
        rss_mb: common::memory_mb("VmRSS"),
    };
    let mut out = tokio::io::stdout();
    say(&mut out, &ready).await?;
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    while input.next_line().await?.is_some() {
        let status = Status {
            hris: hris.len(),
            payroll: payroll.len(),
            hooks_pending: hris.hooks_pending() + payroll.hooks_pending(),
            peak_mb: common::memory_mb("VmHWM"),
        };
        say(&mut out, &status).await?;
    }
    Ok(())
}

/// One line of JSON to the engine's process.
async fn say(out: &mut tokio::io::Stdout, value: &impl Serialize) -> Result<()> {
    let mut line = serde_json::to_vec(value)?;
    line.push(b'\n');
    out.write_all(&line).await?;
    out.flush().await?;
    Ok(())
}

/// One line of the engine's queues, to see which step a run waits on.
async fn print_progress(
    engine: &concord::Engine,
    started: Instant,
    payroll_holds: usize,
) -> Result<()> {
    let (pending_in, applied, pending_out, sent, golden): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending'),
                    (SELECT COUNT(*) FROM inbox WHERE status <> 'pending'),
                    (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight')),
                    (SELECT COUNT(*) FROM outbox WHERE status = 'sent'),
                    (SELECT COUNT(*) FROM golden)",
        )
        .fetch_one(engine.pool())
        .await?;
    println!(
        "    {:>5.1} s  inbox pending {pending_in:>7} applied {applied:>7}  outbox pending {pending_out:>6} \
         sent {sent:>6}  golden {golden:>7}  payroll holds {payroll_holds}  engine RSS {} (anonymous {}, files {})",
        started.elapsed().as_secs_f64(),
        common::proc_status("VmRSS"),
        common::proc_status("RssAnon"),
        common::proc_status("RssFile"),
    );
    Ok(())
}
