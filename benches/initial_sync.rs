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
//! Printed: the time of each step and the total, the rate, and memory. Memory is the
//! process's peak RSS (`VmHWM`); the two systems live in this process too, so the RSS they
//! hold once seeded is printed, and the difference is an upper bound of the engine's share
//! (it also holds the payroll's growth by `N/2` records).
//!
//! Environment: `CONCORD_INITIAL_RECORDS` (default 1000000), `CONCORD_INITIAL_TIMEOUT_SECS`
//! (default 3600), `CONCORD_BENCH_DIR` places the SQLite file (default: the system temp dir),
//! `CONCORD_INITIAL_PROGRESS=1` prints the engine's queues every second.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use concord::Settings;
use serde_json::{Map, Value, json};

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
    let timeout = Duration::from_secs(common::env_or("CONCORD_INITIAL_TIMEOUT_SECS", 3_600)?);
    let progress = common::env_or("CONCORD_INITIAL_PROGRESS", 0)? != 0;
    let dir = common::state_dir("concord-initial-")?;
    println!(
        "concord initial sync: {n} employees in the HRIS, {} of them already in the payroll, {}",
        n / 2,
        common::BUILD
    );

    let concord::selfcheck::Rig {
        engine,
        hris,
        payroll,
        cancel,
    } = concord::selfcheck::Rig::start(
        &dir.path().join("state.db"),
        Settings {
            idle_poll: Duration::from_millis(20),
            ..Settings::default()
        },
    )
    .await?;
    let started = Instant::now();
    hris.seed((0..n).map(|i| (format!("H{i:07}"), hris_employee(i))));
    payroll.seed(
        (0..n)
            .step_by(2)
            .map(|i| (format!("P{i:07}"), payroll_employee(i))),
    );
    let rss_systems = common::memory_mb("VmRSS");
    println!(
        "  systems seeded in {:.1} s; RSS with both systems' records and no sync yet: {rss_systems:.0} MB",
        started.elapsed().as_secs_f64()
    );

    let mut config = concord::selfcheck::workspace(&hris.base_url(), &payroll.base_url());
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
    loop {
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            print_progress(&engine, started, payroll.len()).await?;
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
        if hris.len() >= n
            && payroll.len() >= n
            && concord::selfcheck::quiet(&engine, &[&hris, &payroll]).await?
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "not settled after {:.0} s: HRIS {} and payroll {} records",
                timeout.as_secs_f64(),
                hris.len(),
                payroll.len()
            );
        }
        if last_report.elapsed() > Duration::from_secs(30) {
            last_report = Instant::now();
            println!(
                "    … {:>6.0} s: payroll holds {} of {n}",
                started.elapsed().as_secs_f64(),
                payroll.len()
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
    println!(
        "  initial sync, end to end:  {:>8.1} s  {:.0} records/s (target: 1,000,000 in under 60 s)",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64()
    );
    println!(
        "  peak RSS {peak:.0} MB; the systems held {rss_systems:.0} MB before the sync, so the engine's share is at most {:.0} MB (target: under 300 MB)",
        peak - rss_systems
    );
    println!(
        "  outcome: HRIS {} and payroll {} employees, {records} golden records, {links} links, \
         {exceptions} exceptions, {dead} dead letters",
        hris.len(),
        payroll.len()
    );
    let n_i64 = i64::try_from(n)?;
    ensure!(
        hris.len() == n && payroll.len() == n,
        "every employee is in both systems once (HRIS {}, payroll {})",
        hris.len(),
        payroll.len()
    );
    ensure!(
        records == n_i64 && links == 2 * n_i64,
        "one golden record per person, linked in both systems ({records} records, {links} links)"
    );
    ensure!(dead == 0, "nothing dead-lettered ({dead})");
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
         sent {sent:>6}  golden {golden:>7}  payroll holds {payroll_holds}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
