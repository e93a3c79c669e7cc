//! Concord's side of the side-by-side job against PouchDB: `benches/pouchdb/run.sh` runs this
//! and PouchDB's side (`benches/pouchdb/job.mjs`) with the same sizes and prints the ratio.
//! On its own: `cargo bench --bench pouch_job`.
//!
//! Two HR systems run on 127.0.0.1, as in the self-check: an HRIS (full names, US dates,
//! national phone numbers) and a payroll (split names, ISO dates, E.164), each a real HTTP
//! record store that posts a webhook for every change. The engine runs on a SQLite file in a
//! temporary directory, with the self-check's workspace (mappings, transforms, ownership).
//!
//! 1. **Initial sync, two ways**: half the employees are created in the HRIS and the other
//!    half in payroll; timed from the first create until both systems hold every employee
//!    and nothing is left in flight (no webhook unaccepted, nothing pending in the engine's
//!    inbox or outbox, twice in a row).
//! 2. **Edits on both sides**: the same records are edited in both systems before the engine
//!    sees either edit, in different fields: the HRIS changes the work email, payroll the work
//!    phone. Timed from the first edit until settled, as above.
//!
//! Then every edited record must hold both edits in both systems (field-merged), and every
//! mapped field of every record must agree with the golden record; otherwise the run fails.
//! Settled is judged on counts only, so that looking costs little beside the sync it watches.
//!
//! Environment: `CONCORD_POUCH_EMPLOYEES` (default 10000), `CONCORD_POUCH_EDITS` (records
//! edited on both sides, default 1000), `CONCORD_POUCH_TIMEOUT` (seconds each phase may take,
//! default 900), `CONCORD_BENCH_DIR` places the SQLite file (default: the system temp dir),
//! `CONCORD_POUCH_PROGRESS=1` prints to stderr, every second, what each system holds and what
//! is still in flight (where the time goes).

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use concord::loopback::LoopbackSystem;
use concord::selfcheck::{divergences, workspace};
use concord::{Engine, Settings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: concord::Allocator = concord::Allocator;

/// Knobs, from the environment.
#[derive(Debug, Clone, Copy)]
struct Config {
    employees: usize,
    edits: usize,
    timeout: Duration,
    progress: bool,
}

impl Config {
    fn from_env() -> Result<Self> {
        let employees = common::env_or("CONCORD_POUCH_EMPLOYEES", 10_000)?.max(2);
        Ok(Self {
            employees,
            edits: common::env_or("CONCORD_POUCH_EDITS", 1_000)?.min(employees),
            timeout: Duration::from_secs(common::env_or("CONCORD_POUCH_TIMEOUT", 900)? as u64),
            progress: common::env_or("CONCORD_POUCH_PROGRESS", 0)? != 0,
        })
    }
}

fn employee_number(i: usize) -> String {
    format!("E{i:05}")
}

fn email(i: usize) -> String {
    format!("person{i}@acme.example")
}

fn edited_email(i: usize) -> String {
    format!("person{i}.moved@acme.example")
}

/// The last four digits of an employee's phone (415-555-xxxx), before and after the edit.
fn phone_digits(i: usize) -> usize {
    i % 10_000
}

fn edited_phone_digits(i: usize) -> usize {
    (i + 5_000) % 10_000
}

/// The employees edited on both sides: evenly spread, so both halves have their share.
fn edited(config: Config) -> Vec<usize> {
    (0..config.edits)
        .map(|k| k * config.employees / config.edits)
        .collect()
}

/// Whether everything sent has arrived: each system holds `size` records (when given), no
/// webhook waits to be accepted, nothing is pending in the engine's inbox or outbox.
async fn settled(
    engine: &Engine,
    hris: &LoopbackSystem,
    payroll: &LoopbackSystem,
    size: Option<usize>,
) -> Result<bool> {
    if size.is_some_and(|n| hris.len() != n || payroll.len() != n) {
        return Ok(false);
    }
    concord::selfcheck::quiet(engine, &[hris, payroll]).await
}

/// Waits until settled twice in a row, 20 ms apart (a write delivered between two looks sends
/// a webhook the second look sees).
async fn wait_settled(
    what: &str,
    engine: &Engine,
    hris: &LoopbackSystem,
    payroll: &LoopbackSystem,
    size: Option<usize>,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if settled(engine, hris, payroll, size).await? {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if settled(engine, hris, payroll, size).await? {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "timed out after {timeout:?} waiting for {what} (HRIS holds {}, payroll {}, \
                 webhooks pending {} and {})",
                hris.len(),
                payroll.len(),
                hris.hooks_pending(),
                payroll.hooks_pending()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every second until cancelled: what each system holds, the webhooks each has not had
/// accepted yet, and what waits in the engine's inbox and outbox.
async fn report_progress(
    engine: Engine,
    hris: LoopbackSystem,
    payroll: LoopbackSystem,
    cancel: CancellationToken,
) -> Result<()> {
    let started = Instant::now();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let (inbox, outbox): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending'),
                    (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight'))",
        )
        .fetch_one(engine.pool())
        .await?;
        eprintln!(
            "  {:>6.1} s: HRIS holds {}, payroll {}; webhooks not accepted yet {} and {}; \
             inbox pending {inbox}, outbox pending {outbox}",
            started.elapsed().as_secs_f64(),
            hris.len(),
            payroll.len(),
            hris.hooks_pending(),
            payroll.hooks_pending()
        );
    }
}

/// Each system's record id by employee number.
fn ids_by_employee(system: &LoopbackSystem, field: &str) -> HashMap<String, String> {
    system
        .records()
        .into_iter()
        .filter_map(|(id, r)| Some((r.get(field)?.as_str()?.to_owned(), id)))
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let config = Config::from_env()?;
    let dir = common::state_dir("concord-pouch-job-")?;
    let build = common::BUILD;
    println!(
        "concord: {} employees, {} edited on both sides, engine state in {} ({build})",
        config.employees,
        config.edits,
        dir.path().join("state.db").display()
    );

    let concord::selfcheck::Rig {
        engine,
        hris,
        payroll,
        cancel,
    } = concord::selfcheck::Rig::start(
        &dir.path().join("state.db"),
        Settings {
            backoff_base: Duration::from_millis(20),
            idle_poll: Duration::from_millis(20),
            breaker: common::counting_breaker(),
            ..Settings::default()
        },
    )
    .await?;
    let ws = workspace(&hris.base_url(), &payroll.base_url());
    engine.apply_workspace(&ws).await?;
    let running = engine.start(cancel.clone());
    let progress = cancel.child_token();
    if config.progress {
        tokio::spawn(report_progress(
            engine.clone(),
            hris.clone(),
            payroll.clone(),
            progress.clone(),
        ));
    }

    // 1. Half the employees start in the HRIS, half in payroll.
    let n = config.employees;
    let started = Instant::now();
    for i in 0..n {
        if i < n / 2 {
            hris.edit(
                &format!("H{i:05}"),
                json!({
                    "employee_id": employee_number(i),
                    "full_name": format!("Given{i} Family{i}"),
                    "email": email(i),
                    "phone": format!("(415) 555-{:04}", phone_digits(i)),
                    "status": "Active",
                    "hire_date": format!("{:02}/{:02}/20{:02}", 1 + i % 12, 1 + i % 28, 10 + i % 15),
                    "title": "Analyst",
                    "department": "Finance",
                }),
            );
        } else {
            payroll.edit(
                &format!("P{i:05}"),
                json!({
                    "emp_no": employee_number(i),
                    "first_name": format!("Given{i}"),
                    "last_name": format!("Family{i}"),
                    "email": email(i),
                    "phone": format!("+1415555{:04}", phone_digits(i)),
                    "state": 1,
                    "hire_date": format!("20{:02}-{:02}-{:02}", 10 + i % 15, 1 + i % 12, 1 + i % 28),
                    "salary_cents": 6_000_000 + i,
                }),
            );
        }
    }
    wait_settled(
        "the initial sync",
        &engine,
        &hris,
        &payroll,
        Some(n),
        config.timeout,
    )
    .await?;
    let initial = started.elapsed();
    println!(
        "concord: initial sync {n} employees: {:.3} s",
        initial.as_secs_f64()
    );

    // 2. The same records edited in both systems, in different fields, before the engine has
    // seen either edit: the edits are plain memory writes, the engine's answers HTTP requests.
    let hris_ids = ids_by_employee(&hris, "employee_id");
    let payroll_ids = ids_by_employee(&payroll, "emp_no");
    let targets: Vec<(usize, String, String)> = edited(config)
        .into_iter()
        .map(|i| {
            let number = employee_number(i);
            match (hris_ids.get(&number), payroll_ids.get(&number)) {
                (Some(h), Some(p)) => Ok((i, h.clone(), p.clone())),
                _ => bail!("employee {number} is missing from a system after the initial sync"),
            }
        })
        .collect::<Result<_>>()?;
    drop((hris_ids, payroll_ids));
    let started = Instant::now();
    for (i, hris_id, payroll_id) in &targets {
        hris.edit(hris_id, json!({ "email": edited_email(*i) }));
        payroll.edit(
            payroll_id,
            json!({ "phone": format!("+1415555{:04}", edited_phone_digits(*i)) }),
        );
    }
    wait_settled(
        "the edits to settle",
        &engine,
        &hris,
        &payroll,
        None,
        config.timeout,
    )
    .await?;
    let edits = started.elapsed();
    progress.cancel();

    // Field-merged: both edits in both systems, for every edited record.
    let mut lost = Vec::new();
    for (i, hris_id, payroll_id) in &targets {
        let email = json!(edited_email(*i));
        let digits = edited_phone_digits(*i);
        let h = hris.record(hris_id).unwrap_or_default();
        let p = payroll.record(payroll_id).unwrap_or_default();
        for (system, id, record, field, expected) in [
            ("hris", hris_id, &h, "email", email.clone()),
            (
                "hris",
                hris_id,
                &h,
                "phone",
                json!(format!("(415) 555-{digits:04}")),
            ),
            ("payroll", payroll_id, &p, "email", email),
            (
                "payroll",
                payroll_id,
                &p,
                "phone",
                json!(format!("+1415555{digits:04}")),
            ),
        ] {
            let held = record.get(field).cloned().unwrap_or(Value::Null);
            if held != expected {
                lost.push(format!(
                    "{system}:{id}.{field} holds {held}, not {expected}"
                ));
            }
        }
    }
    let merged = lost.is_empty();
    println!(
        "concord: {} records edited on both sides: {:.3} s, field-merged: {}",
        targets.len(),
        edits.as_secs_f64(),
        if merged { "yes" } else { "NO" }
    );

    // And every mapped field of every record agrees with the golden record.
    let mut divergent = Vec::new();
    for (system, name) in [(&hris, "hris"), (&payroll, "payroll")] {
        if let Some(m) = ws.mappings.iter().find(|m| m.system == name) {
            divergent.extend(divergences(&engine, system, m).await?);
        }
    }
    let open_exceptions: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM exceptions WHERE status = 'open'")
            .fetch_one(engine.pool())
            .await?;
    let dead_letters: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM dead_letters WHERE status = 'dead'")
            .fetch_one(engine.pool())
            .await?;
    let mut counters = Vec::new();
    for name in ["events_in", "events_out", "noops", "stale", "retries"] {
        counters.push(format!("{name}={}", engine.counter(name).await?));
    }
    println!(
        "concord: writes received: HRIS {}, payroll {}; open exceptions {open_exceptions}, \
         dead letters {dead_letters}; {}",
        hris.stats().writes_applied,
        payroll.stats().writes_applied,
        counters.join(" ")
    );
    println!(
        "concord: fields disagreeing with the golden record: {}",
        divergent.len()
    );
    cancel.cancel();
    running.shutdown(Duration::from_secs(5)).await;

    if !merged || !divergent.is_empty() {
        for line in lost.iter().chain(&divergent).take(10) {
            eprintln!("  {line}");
        }
        bail!(
            "not field-merged: {} edits lost, {} fields disagree with the golden record",
            lost.len(),
            divergent.len()
        );
    }
    Ok(())
}
