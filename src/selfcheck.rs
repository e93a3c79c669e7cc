//! `concord self-check`: a two-way sync, end to end, on this machine. Two HR systems run on
//! loopback (an HRIS with full names, US dates and typed phones; a payroll with split names,
//! ISO dates, cents and E.164), the engine syncs them through their HTTP APIs and webhooks,
//! people edit both sides, and the check reports whether every field converged.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::loopback::LoopbackSystem;
use crate::model::{Mapping, WorkspaceConfig};
use crate::runtime::{Engine, EngineOptions, Settings};

/// The self-check's workspace: HRIS and payroll, employee object, ownership.
/// The secret name a self-check system's `webhook_secret` gives (its webhooks' bearer token).
pub fn webhook_secret_name(system: &str) -> String {
    format!("{system}-webhook")
}

pub fn workspace(hris_url: &str, payroll_url: &str) -> WorkspaceConfig {
    let config = json!({
        "systems": [
            { "id": "hris", "name": "Acme HRIS", "connector": "rest", "webhook_secret": webhook_secret_name("hris"),
              "config": { "base_url": hris_url, "objects": { "employee": {
                  "path": "/employees", "version_field": "version", "concurrency": { "style": "etag" } } } } },
            { "id": "payroll", "name": "Acme Payroll", "connector": "rest", "rate_limit_per_sec": 2000.0,
              "webhook_secret": webhook_secret_name("payroll"),
              "config": { "base_url": payroll_url, "objects": { "employee": {
                  "path": "/employees", "version_field": "version", "concurrency": { "style": "etag" } } } } }
        ],
        "objects": [ crate::schema::employee() ],
        "mappings": [
            { "system": "hris", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["employee_id"] },
                { "canonical": ["given_name", "family_name"], "system": ["full_name"], "transform": { "kind": "full_name" } },
                { "canonical": ["work_email"], "system": ["email"] },
                { "canonical": ["work_phone"], "system": ["phone"],
                  "transform": { "kind": "phone", "region": "US", "system_format": "national" } },
                { "canonical": ["employment_status"], "system": ["status"],
                  "transform": { "kind": "enum", "table": [
                      { "system": "Active", "canonical": "active" },
                      { "system": "On Leave", "canonical": "on_leave" },
                      { "system": "Terminated", "canonical": "terminated" } ] } },
                { "canonical": ["hire_date"], "system": ["hire_date"], "transform": { "kind": "date", "format": "%m/%d/%Y" } },
                { "canonical": ["job_title"], "system": ["title"] },
                { "canonical": ["department"], "system": ["department"] }
            ]},
            { "system": "payroll", "object": "employee", "rules": [
                { "canonical": ["employee_number"], "system": ["emp_no"] },
                { "canonical": ["given_name"], "system": ["first_name"] },
                { "canonical": ["family_name"], "system": ["last_name"] },
                { "canonical": ["work_email"], "system": ["email"] },
                { "canonical": ["work_phone"], "system": ["phone"], "transform": { "kind": "phone", "region": "US" } },
                { "canonical": ["employment_status"], "system": ["state"],
                  "transform": { "kind": "enum", "table": [
                      { "system": 1, "canonical": "active" },
                      { "system": 2, "canonical": "on_leave" },
                      { "system": 0, "canonical": "terminated" } ] } },
                { "canonical": ["hire_date"], "system": ["hire_date"], "transform": { "kind": "date", "format": "%Y-%m-%d" } },
                { "canonical": ["pay_rate"], "system": ["salary_cents"], "transform": { "kind": "money_minor", "exponent": 2 } },
                { "canonical": ["bank_account_number"], "system": ["bank/account"] }
            ]}
        ],
        "policies": [ { "object": "employee", "fields": [
            { "field": "employee_number", "owner": "hris", "conflict": "owner_wins" },
            { "field": "given_name", "owner": "hris", "conflict": "owner_wins" },
            { "field": "family_name", "owner": "hris", "conflict": "owner_wins" },
            { "field": "employment_status", "owner": "hris", "conflict": "owner_wins" },
            { "field": "hire_date", "owner": "hris", "conflict": "owner_wins" },
            { "field": "job_title", "owner": "hris", "conflict": "owner_wins" },
            { "field": "department", "owner": "hris", "conflict": "owner_wins" },
            { "field": "work_phone", "writers": ["hris", "payroll"], "conflict": "last_write_wins" },
            { "field": "work_email", "writers": ["hris", "payroll"], "conflict": "last_write_wins" },
            { "field": "pay_rate", "owner": "payroll", "writers": ["hris"], "conflict": "manual", "sensitive": true, "four_eyes": true },
            { "field": "bank_account_number", "owner": "payroll", "conflict": "owner_wins", "sensitive": true }
        ]}]
    });
    // The literal above is well-formed by construction; a failure here is a programming error
    // caught by the self-check test.
    serde_json::from_value(config)
        .unwrap_or_else(|e| panic!("built-in self-check workspace is invalid: {e}"))
}

/// Fields where a system's record, read through its mapping, differs from the golden record.
pub async fn divergences(
    engine: &Engine,
    system: &LoopbackSystem,
    mapping: &Mapping,
) -> crate::Result<Vec<String>> {
    let ws = engine.workspace();
    let schema = ws
        .object(&mapping.object)
        .ok_or_else(|| crate::EngineError::NotFound(mapping.object.clone()))?
        .clone();
    let mut out = Vec::new();
    for (id, record) in system.records() {
        let Some(record_id) = engine
            .record_for(&mapping.system, &mapping.object, &id)
            .await?
        else {
            out.push(format!("{}:{id} is not linked", mapping.system));
            continue;
        };
        let golden = engine.golden(record_id).await?;
        let read = mapping.read(&schema, &record);
        for (field, value) in read.values {
            let expected = golden.get(&field).cloned().unwrap_or(Value::Null);
            if value != expected {
                out.push(format!(
                    "{}:{id}.{field} holds {value}, golden is {expected}",
                    mapping.system
                ));
            }
        }
    }
    Ok(out)
}

/// What the self-check saw.
#[derive(Debug, Clone)]
pub struct Report {
    pub ok: bool,
    pub employees: usize,
    pub initial_sync: Duration,
    pub edits: usize,
    pub propagation: Duration,
    pub hris_writes: u64,
    pub payroll_writes: u64,
    pub divergences: Vec<String>,
    pub counters: BTreeMap<String, i64>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "self-check: {}", if self.ok { "PASS" } else { "FAIL" })?;
        writeln!(
            f,
            "  initial sync: {} employees HRIS -> payroll in {:.2?}",
            self.employees, self.initial_sync
        )?;
        writeln!(
            f,
            "  edits on both sides: {} propagated in {:.2?}",
            self.edits, self.propagation
        )?;
        writeln!(
            f,
            "  writes received: HRIS {}, payroll {}",
            self.hris_writes, self.payroll_writes
        )?;
        let counters: Vec<String> = self
            .counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(f, "  engine counters: {}", counters.join(" "))?;
        if self.divergences.is_empty() {
            write!(
                f,
                "  every mapped field of every record agrees with the golden record"
            )
        } else {
            writeln!(
                f,
                "  {} fields disagree, first ones:",
                self.divergences.len()
            )?;
            for d in self.divergences.iter().take(10) {
                writeln!(f, "    {d}")?;
            }
            Ok(())
        }
    }
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut done: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    while !done().await? {
        if Instant::now() > deadline {
            anyhow::bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Whether everything sent has arrived: no webhook waiting to be accepted, nothing pending in
/// the engine's inbox or outbox (and, with `payroll_size`, that many payroll records). Counts
/// only: looking must not cost more than the sync it watches.
async fn settled(
    engine: &Engine,
    hris: &LoopbackSystem,
    payroll: &LoopbackSystem,
    payroll_size: Option<usize>,
) -> anyhow::Result<bool> {
    if payroll_size.is_some_and(|n| payroll.len() != n) {
        return Ok(false);
    }
    quiet(engine, &[hris, payroll]).await
}

/// Nothing in flight: no webhook of these systems waits to be accepted, and nothing is pending
/// in the engine's inbox or outbox. Counts only, so that looking costs little.
pub async fn quiet(engine: &Engine, systems: &[&LoopbackSystem]) -> anyhow::Result<bool> {
    if systems.iter().any(|s| s.hooks_pending() > 0) {
        return Ok(false);
    }
    Ok(queues_empty(engine).await? && systems.iter().all(|s| s.hooks_pending() == 0))
}

/// Nothing pending in the engine's inbox or outbox (nor in flight). Counts only.
pub async fn queues_empty(engine: &Engine) -> anyhow::Result<bool> {
    let pending: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight'))
              + (SELECT COUNT(*) FROM inbox WHERE status = 'pending')",
    )
    .fetch_one(engine.pool())
    .await?;
    Ok(pending == 0)
}

/// The self-check's two HR systems on 127.0.0.1 (HRIS and payroll, empty), an engine on a
/// SQLite file, and its webhook door, which the systems post every change to with tokens the
/// engine holds (in memory). The workspace is left to the caller: [`workspace`] fits it.
pub struct Rig {
    pub engine: Engine,
    pub hris: LoopbackSystem,
    pub payroll: LoopbackSystem,
    /// Stops the webhook door (and a started engine, when given to [`Engine::start`]).
    pub cancel: CancellationToken,
}

impl Rig {
    pub async fn start(db: &std::path::Path, settings: Settings) -> anyhow::Result<Self> {
        // The systems are the rig's own: their webhook secrets live in memory only.
        let secrets = std::sync::Arc::new(crate::secrets::MemorySecrets::new());
        let engine = Engine::open(
            db,
            EngineOptions {
                secrets: secrets.clone(),
                settings,
                ..EngineOptions::default()
            },
        )
        .await?;
        let cancel = CancellationToken::new();
        let (addr, _server) =
            crate::server::spawn_loopback(engine.clone(), 0, cancel.clone()).await?;
        let hooks = format!("http://{addr}/hooks");
        let mut systems = Vec::with_capacity(2);
        for id in ["hris", "payroll"] {
            let system =
                LoopbackSystem::start(id, "employee", "/employees", Some(format!("{hooks}/{id}")))
                    .await?;
            crate::secrets::SecretStore::set(
                &*secrets,
                &webhook_secret_name(id),
                &system.hook_token(),
            )?;
            systems.push(system);
        }
        let payroll = systems
            .pop()
            .ok_or_else(|| anyhow::anyhow!("payroll did not start"))?;
        let hris = systems
            .pop()
            .ok_or_else(|| anyhow::anyhow!("the HRIS did not start"))?;
        Ok(Self {
            engine,
            hris,
            payroll,
            cancel,
        })
    }

    /// The self-check's workspace for these two systems.
    pub fn workspace(&self) -> WorkspaceConfig {
        workspace(&self.hris.base_url(), &self.payroll.base_url())
    }
}

/// Runs the self-check with `size` employees.
pub async fn run(size: usize) -> anyhow::Result<Report> {
    let dir = tempfile_dir()?;
    let Rig {
        engine,
        hris,
        payroll,
        cancel,
    } = Rig::start(
        &dir.join("selfcheck.db"),
        Settings {
            backoff_base: Duration::from_millis(20),
            idle_poll: Duration::from_millis(20),
            ..Settings::default()
        },
    )
    .await?;
    let config = workspace(&hris.base_url(), &payroll.base_url());
    engine.apply_workspace(&config).await?;
    let running = engine.start(cancel.clone());

    let started = Instant::now();
    for i in 0..size {
        hris.edit(
            &format!("H{i:05}"),
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
    }
    wait_until("the initial sync", Duration::from_secs(120), || {
        settled(&engine, &hris, &payroll, Some(size))
    })
    .await?;
    let initial_sync = started.elapsed();

    let started = Instant::now();
    let mut edits = 0;
    let mut expected_phones = Vec::new();
    for (n, (id, _)) in payroll
        .records()
        .into_iter()
        .enumerate()
        .filter(|(n, _)| n % 10 == 0)
    {
        let phone = format!("+1415555{:04}", (n + 5000) % 10_000);
        payroll.edit(
            &id,
            json!({ "phone": phone, "salary_cents": 9_000_000 + n }),
        );
        expected_phones.push((id, phone));
        edits += 1;
    }
    for i in (5..size).step_by(10) {
        let id = format!("H{i:05}");
        hris.edit(&id, json!({ "title": "Senior Analyst" }));
        edits += 1;
    }
    // Settled twice in a row: a write delivered between the two looks sends a webhook the
    // second look sees.
    wait_until("edits to propagate", Duration::from_secs(120), || async {
        Ok(settled(&engine, &hris, &payroll, None).await? && {
            tokio::time::sleep(Duration::from_millis(20)).await;
            settled(&engine, &hris, &payroll, None).await?
        })
    })
    .await?;
    let propagation = started.elapsed();

    let mut divergent = Vec::new();
    for (system, mapping) in [(&hris, "hris"), (&payroll, "payroll")] {
        let m = config
            .mappings
            .iter()
            .find(|m| m.system == mapping)
            .cloned();
        if let Some(m) = m {
            divergent.extend(divergences(&engine, system, &m).await?);
        }
    }
    for (id, phone) in &expected_phones {
        if payroll.record(id).and_then(|r| r.get("phone").cloned()) != Some(json!(phone)) {
            divergent.push(format!("payroll:{id}.phone lost its edit {phone}"));
        }
    }
    let mut counters = BTreeMap::new();
    for name in [
        "events_in",
        "events_out",
        "noops",
        "duplicates",
        "stale",
        "retries",
        "dead_letters",
    ] {
        counters.insert(name.to_owned(), engine.counter(name).await?);
    }
    cancel.cancel();
    running.shutdown(Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Report {
        ok: divergent.is_empty(),
        employees: size,
        initial_sync,
        edits,
        propagation,
        hris_writes: hris.stats().writes_applied,
        payroll_writes: payroll.stats().writes_applied,
        divergences: divergent,
        counters,
    })
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("concord-selfcheck-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
