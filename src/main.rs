//! The `concord` command: migrate a state file, run the engine on a workspace, self-check.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use concord::{Engine, EngineOptions};

#[global_allocator]
static ALLOCATOR: concord::Allocator = concord::Allocator;

#[derive(Parser)]
#[command(
    name = "concord",
    version,
    about = "Two-way, field-level sync for business systems"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create or upgrade the engine's SQLite state file.
    Migrate {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
    },
    /// Run the sync engine on a workspace until Ctrl-C: webhooks in, writes out, and the same
    /// console API as `serve` (tokens, roles, /metrics), so a headless deployment can be
    /// watched and operated; the UI too with --ui.
    Run {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        /// A workspace config (JSON, or TOML when it ends in .toml) to apply before starting;
        /// without it, the stored one runs.
        #[arg(long)]
        workspace: Option<PathBuf>,
        /// Port on 127.0.0.1 for webhooks and the console API (0 picks one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Write the chosen port to this file once listening (for scripts and tests).
        #[arg(long)]
        port_file: Option<PathBuf>,
        /// Also serve the built UI from this directory (e.g. ui/dist).
        #[arg(long)]
        ui: Option<PathBuf>,
        /// Write this launch's admin token to this file (created private, 0600) instead of
        /// printing it.
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
        #[command(flatten)]
        history: HistoryArgs,
    },
    /// Run the demo: two HR systems and a directory on loopback (Acme HRIS, Acme Payroll and
    /// Acme Directory), seeded with employees, synced both ways while a simulator edits them;
    /// prints what happens.
    Demo {
        /// Seed for people, edits, secrets and failures: the same seed, the same run.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of employees.
        #[arg(long, default_value_t = 1000)]
        employees: usize,
        /// Edits per second the simulator makes across the systems.
        #[arg(long, default_value_t = 2.0)]
        edit_rate: f64,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        seconds: Option<u64>,
        /// The demo's state file (replaced on every run).
        #[arg(long, default_value = "concord-demo.db")]
        db: PathBuf,
    },
    /// Serve the console (API under /api, the built UI, webhooks) on 127.0.0.1 and print its
    /// address with this launch's admin token.
    Serve {
        /// Serve the demo workspace (two HR systems and a directory on loopback, with a
        /// simulator).
        #[arg(long)]
        demo: bool,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 1000)]
        employees: usize,
        #[arg(long, default_value_t = 2.0)]
        edit_rate: f64,
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        #[arg(long)]
        workspace: Option<PathBuf>,
        #[arg(long, default_value_t = 8470)]
        port: u16,
        /// The built UI to serve (ui/dist).
        #[arg(long, default_value = "ui/dist")]
        ui: PathBuf,
        #[command(flatten)]
        history: HistoryArgs,
    },
    /// Drop history past its retention now (applied events, acknowledged writes, metric
    /// samples; never the audit) and rewrite the state file to its new size. Stop the engine
    /// first: rewriting needs the file to itself.
    Compact {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        #[command(flatten)]
        history: HistoryArgs,
    },
    /// The stored workspace as a reviewed text file: export it, see what a file would
    /// change, and apply one (shown first and asked, or --yes). Apply to a stopped engine: a
    /// running one reads its workspace when it starts.
    Workspace {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        #[command(subcommand)]
        action: WorkspaceAction,
    },
    /// Check the audit's hash chain.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// The tokens issued through the console and kept in a state file, for a stopped engine
    /// (a running one is told through the console API, which it reads its tokens from).
    Tokens {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        #[command(subcommand)]
        action: TokensAction,
    },
    /// Print the console API's OpenAPI document (the UI's types are generated from it).
    Openapi,
    /// Store a secret in the OS keychain under a name that connector configs refer to. The
    /// value is read from standard input, so it never appears in the shell history.
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// Compare a system's full listing with what the engine knows: changes it missed become
    /// change events, records gone become delete events (held for an admin past the
    /// system's share). Prints progress; `concord run` applies what it queues.
    Reconcile {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        #[arg(long)]
        system: String,
        /// Confirm the deletes a run held back (its id), instead of starting a run.
        #[arg(long)]
        confirm: Option<i64>,
        /// Keep the records a run found gone (its id), with a note, instead of starting a run.
        #[arg(long, requires = "note")]
        dismiss: Option<i64>,
        #[arg(long)]
        note: Option<String>,
        /// Who asks (recorded in the audit).
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
    /// Push records to a system again, from the golden record through the current mapping.
    Repush {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        #[arg(long)]
        system: String,
        /// These records (repeat the flag for several).
        #[arg(long = "record")]
        records: Vec<i64>,
        /// Records whose canonical field has this value, as field=value (repeatable).
        #[arg(long = "where", value_parser = parse_where)]
        filter: Vec<(String, serde_json::Value)>,
        /// Every record.
        #[arg(long)]
        all: bool,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
    /// Look at a dead letter and send it again: as it was (replay), or planned again from the
    /// current golden record and mapping (replan).
    DeadLetter {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        #[command(subcommand)]
        action: DeadLetterAction,
    },
    /// Sync two built-in systems on loopback both ways and check that they agree.
    SelfCheck {
        /// Number of employees to sync.
        #[arg(long, default_value_t = 200)]
        size: usize,
    },
}

/// How long history is kept (the audit is kept forever).
#[derive(clap::Args, Clone, Copy)]
struct HistoryArgs {
    /// Days to keep events the engine applied. A system re-sending an older event is not
    /// recognised as a duplicate.
    #[arg(long, env = "CONCORD_KEEP_EVENTS_DAYS", default_value_t = 14)]
    keep_events_days: u32,
    /// Days to keep writes a system acknowledged (or that a later write replaced).
    #[arg(long, env = "CONCORD_KEEP_SENT_WRITES_DAYS", default_value_t = 14)]
    keep_sent_writes_days: u32,
    /// Days to keep the dashboard's metric samples.
    #[arg(long, env = "CONCORD_KEEP_METRICS_DAYS", default_value_t = 7)]
    keep_metrics_days: u32,
}

impl HistoryArgs {
    fn retention(self) -> concord::retention::Retention {
        let days = |n: u32| Duration::from_secs(u64::from(n) * 24 * 60 * 60);
        concord::retention::Retention {
            events: days(self.keep_events_days),
            sent_writes: days(self.keep_sent_writes_days),
            metrics: days(self.keep_metrics_days),
            ..concord::retention::Retention::default()
        }
    }

    fn engine_options(self) -> EngineOptions {
        let mut options = EngineOptions::default();
        options.settings.retention = self.retention();
        options
    }
}

#[derive(Subcommand)]
enum AuditAction {
    /// Recompute every entry's hash from its fields and the entry before it. Exits non-zero,
    /// naming the first entry where the chain breaks, if any entry was changed, removed or
    /// inserted around the engine. Prints the head (last id and hash): keep it elsewhere to
    /// detect entries later removed from the end. Reads the file as it is (no migration).
    Verify {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokensAction {
    /// List the kept tokens: id, role, name, when issued and last used. Never a secret.
    List,
    /// Revoke a kept token by its id (`tok_…`), audited; the next launch refuses it.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum WorkspaceAction {
    /// Print the stored workspace as TOML (JSON with --json).
    Export {
        #[arg(long)]
        json: bool,
    },
    /// Show what applying FILE (TOML, or JSON) would change, key by key.
    Diff {
        file: PathBuf,
        /// Exit with status 1 when FILE would change something.
        #[arg(long)]
        exit_code: bool,
    },
    /// Print the JSON Schema of workspace files (docs/workspace.schema.json).
    Schema,
    /// Print the configuration reference generated from that schema (docs/configuration.md).
    Reference,
    /// Show what FILE would change, ask, then store it as the workspace (audited).
    Apply {
        file: PathBuf,
        /// Apply without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum DeadLetterAction {
    /// The dead letters still dead.
    List,
    /// One dead letter: why it failed, the request sent, and what a replay or a re-plan would send.
    Show { id: i64 },
    /// Send it again as it was, with its idempotency key.
    Replay {
        id: i64,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
    /// Plan it again from the current golden record through the current mapping.
    Replan {
        id: i64,
        #[arg(long, env = "USER", default_value = "cli")]
        actor: String,
    },
}

/// `field=value`: the value as JSON when it parses (numbers, true), else as text.
fn parse_where(text: &str) -> Result<(String, serde_json::Value), String> {
    let (field, value) = text
        .split_once('=')
        .ok_or_else(|| format!("'{text}' is not field=value"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::from(value));
    Ok((field.trim().to_owned(), value))
}

#[derive(Subcommand)]
enum SecretAction {
    /// Read a value from standard input and store it.
    Set { name: String },
    /// Remove a stored secret.
    Delete { name: String },
}

/// Serves the console for `engine` until Ctrl-C.
async fn serve(engine: Engine, port: u16, ui: &std::path::Path) -> anyhow::Result<()> {
    let secrets = std::sync::Arc::new(concord::secrets::Keychain::default());
    let console = concord::server::launch_console(engine, port, Some(ui), secrets)
        .await
        .with_context(|| format!("port {port} on 127.0.0.1 is taken; pick another with --port"))?;
    println!("concord: console at {}", console.url());
    println!(
        "concord: API at http://{}/api (OpenAPI: /api/openapi.json), webhooks at /hooks/{{system}}",
        console.addr
    );
    stop_signal().await?;
    println!("concord: stopping");
    console.shutdown(Duration::from_secs(10)).await;
    Ok(())
}

async fn dead_letter_command(engine: &Engine, action: DeadLetterAction) -> anyhow::Result<()> {
    match action {
        DeadLetterAction::List => {
            let filter = concord::ops::DeadLetterFilter::default();
            for dl in engine.list_dead_letters(&filter).await? {
                println!(
                    "{:>6}  {:<10} {:<8} record {:<8} {:<18} {}",
                    dl.id,
                    dl.system,
                    dl.op.as_deref().unwrap_or(&dl.kind),
                    dl.record_id.map(|r| r.to_string()).unwrap_or_default(),
                    dl.error_class,
                    dl.response_status
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                );
            }
        }
        DeadLetterAction::Show { id } => {
            let dl = engine.dead_letter(id).await?;
            let preview = engine.replay_preview(id).await?;
            let show = serde_json::json!({
                "dead_letter": dl,
                "replay": { "fields": preview.fields, "request": preview.sent },
                "replan": preview.replan,
            });
            println!("{}", serde_json::to_string_pretty(&show)?);
        }
        DeadLetterAction::Replay { id, actor } => {
            let outcome = engine
                .replay(id, &concord::audit::Actor::person(&actor, "support"))
                .await?;
            println!("dead letter {id}: {outcome:?}; `concord run` sends it");
        }
        DeadLetterAction::Replan { id, actor } => {
            let outcome = engine
                .replan_dead_letter(id, &concord::audit::Actor::person(&actor, "support"))
                .await?;
            println!(
                "dead letter {id}: {}{}",
                outcome.outcome,
                outcome
                    .outbox_id
                    .map(|o| format!(" as write {o}; `concord run` sends it"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// `concord workspace export|diff|apply`.
async fn workspace_command(engine: &Engine, action: WorkspaceAction) -> anyhow::Result<()> {
    use concord::workspace_diff::{diff, to_toml};
    let stored = engine.workspace().config.clone();
    match action {
        WorkspaceAction::Export { json } => {
            let text = if json {
                serde_json::to_string_pretty(&stored)?
            } else {
                to_toml(&stored)
                    .map_err(|e| anyhow::anyhow!("the workspace has no TOML form: {e}"))?
            };
            println!("{text}");
        }
        WorkspaceAction::Diff { file, exit_code } => {
            let changes = diff(&stored, &read_workspace(&file)?);
            for c in &changes {
                println!("{c}");
            }
            if changes.is_empty() {
                println!("no changes");
            } else if exit_code {
                std::process::exit(1);
            }
        }
        WorkspaceAction::Schema | WorkspaceAction::Reference => {
            unreachable!("printed without opening the state file")
        }
        WorkspaceAction::Apply { file, yes } => {
            let next = read_workspace(&file)?;
            let changes = diff(&stored, &next);
            if changes.is_empty() {
                println!("no changes");
                return Ok(());
            }
            for c in &changes {
                println!("{c}");
            }
            if !yes {
                use std::io::{BufRead, Write};
                print!("Apply these {} changes? [y/N] ", changes.len());
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    println!("nothing applied");
                    return Ok(());
                }
            }
            let who = std::env::var("USER").unwrap_or_else(|_| "cli".into());
            let entry = concord::audit::AuditEntry::engine(
                "config:workspace_applied",
                concord::audit::Direction::Internal,
            )
            .by(concord::audit::Actor::person(&who, "admin"))
            .detail(serde_json::json!({
                "file": file.display().to_string(),
                "changes": changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }));
            engine.apply_workspace_audited(&next, &[entry]).await?;
            println!("applied {} changes", changes.len());
        }
    }
    Ok(())
}

async fn tokens_command(engine: &Engine, action: TokensAction) -> anyhow::Result<()> {
    use concord::api::token_store;
    let kept = token_store::kept(engine).await?;
    match action {
        TokensAction::List => {
            if kept.is_empty() {
                println!("no tokens issued through the console are kept");
            }
            for t in &kept {
                println!(
                    "{}  {:<8} {}  issued {}  last used {}",
                    t.id,
                    t.role.as_str(),
                    t.name,
                    t.issued_at,
                    t.last_used_at.as_deref().unwrap_or("never")
                );
            }
        }
        TokensAction::Revoke { id } => {
            let Some(token) = kept.iter().find(|t| t.id == id) else {
                anyhow::bail!("no kept token has the id '{id}' (see `concord tokens list`)");
            };
            let who = std::env::var("USER").unwrap_or_else(|_| "cli".into());
            let mut entry = concord::audit::AuditEntry::engine(
                "config:token_revoked",
                concord::audit::Direction::Internal,
            )
            .by(concord::audit::Actor::person(&who, "admin"))
            .detail(serde_json::json!({
                "token_id": token.id, "name": token.name, "role": token.role, "via": "cli",
            }));
            entry.before = Some(serde_json::to_value(token)?);
            token_store::forget(engine, &id, &entry).await?;
            println!(
                "revoked {} ({}, {})",
                token.id,
                token.name,
                token.role.as_str()
            );
        }
    }
    Ok(())
}

/// Writes `text` to a new file only its owner may read (0600 where the platform has modes).
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // A file that was already there keeps its mode on open: make it private too.
    #[cfg(unix)]
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// Reads a workspace config: TOML when the file ends in `.toml`, JSON otherwise.
fn read_workspace(path: &std::path::Path) -> anyhow::Result<concord::model::WorkspaceConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "toml") {
        let de = toml::Deserializer::new(&text);
        serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow::anyhow!("{}: key '{}': {}", path.display(), e.path(), e.inner()))
    } else {
        let mut de = serde_json::Deserializer::from_str(&text);
        serde_path_to_error::deserialize(&mut de)
            .map_err(|e| anyhow::anyhow!("{}: key '{}': {}", path.display(), e.path(), e.inner()))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The demo prints its own story; the engine's log only speaks up for errors there.
    let default_filter = if matches!(cli.command, Command::Demo { .. }) {
        "concord=error"
    } else {
        "concord=info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Migrate { db } => {
            let pool = concord::store::open(&db)
                .await
                .with_context(|| format!("opening {}", db.display()))?;
            let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(&pool)
                .await?;
            println!(
                "{}: schema up to date ({applied} migrations applied)",
                db.display()
            );
        }
        Command::Run {
            db,
            workspace,
            port,
            port_file,
            ui,
            admin_token_file,
            history,
        } => {
            let engine = Engine::open(&db, history.engine_options()).await?;
            if let Some(path) = workspace {
                engine.apply_workspace(&read_workspace(&path)?).await?;
            }
            let secrets = std::sync::Arc::new(concord::secrets::Keychain::default());
            let console = concord::server::launch_console(engine, port, ui.as_deref(), secrets)
                .await
                .with_context(|| {
                    format!("port {port} on 127.0.0.1 is taken; pick another with --port")
                })?;
            let addr = console.addr;
            if let Some(f) = port_file {
                std::fs::write(&f, addr.port().to_string())?;
            }
            match admin_token_file {
                Some(f) => {
                    write_private(&f, &console.admin_token)?;
                    println!("concord: admin token written to {}", f.display());
                }
                None => println!("concord: console at {}", console.url()),
            }
            println!(
                "concord: engine running; API at http://{addr}/api, metrics at /metrics, webhooks at /hooks/{{system}}"
            );
            stop_signal().await?;
            println!("concord: stopping");
            console.shutdown(Duration::from_secs(10)).await;
        }
        Command::Demo {
            seed,
            employees,
            edit_rate,
            seconds,
            db,
        } => {
            let report = concord::demo::run(concord::demo::DemoOptions {
                seed,
                employees,
                edits_per_sec: edit_rate,
                duration: seconds.map(Duration::from_secs),
                db,
                quiet: false,
            })
            .await?;
            anyhow::ensure!(report.converged(), "the demo did not converge");
        }
        Command::Serve {
            demo,
            seed,
            employees,
            edit_rate,
            db,
            workspace,
            port,
            ui,
            history,
        } => {
            if demo {
                let db = if db == std::path::Path::new("concord.db") {
                    PathBuf::from("concord-demo.db")
                } else {
                    db
                };
                let mut running = concord::demo::start(&concord::demo::DemoOptions {
                    seed,
                    employees,
                    edits_per_sec: edit_rate,
                    duration: None,
                    db,
                    quiet: true,
                })
                .await?;
                let secrets = std::sync::Arc::new(concord::secrets::Keychain::default());
                let console = concord::server::serve_console(
                    running.engine().clone(),
                    port,
                    Some(&ui),
                    secrets,
                )
                .await
                .with_context(|| {
                    format!("port {port} on 127.0.0.1 is taken; pick another with --port")
                })?;
                println!(
                    "concord: demo running: Acme HRIS at {}, Acme Payroll at {}",
                    running.hris().base_url(),
                    running.payroll().base_url()
                );
                println!("concord: console at {}", console.url());
                stop_signal().await?;
                println!("concord: stopping");
                console.shutdown(Duration::from_secs(5)).await;
                running.stop_simulator().await;
                running.shutdown().await;
            } else {
                let engine = Engine::open(&db, history.engine_options()).await?;
                if let Some(path) = workspace {
                    engine.apply_workspace(&read_workspace(&path)?).await?;
                }
                serve(engine, port, &ui).await?;
            }
        }
        Command::Compact { db, history } => {
            anyhow::ensure!(db.exists(), "{} does not exist", db.display());
            let size = |p: &std::path::Path| {
                ["", "-wal"]
                    .iter()
                    .filter_map(|s| std::fs::metadata(format!("{}{s}", p.display())).ok())
                    .map(|m| m.len())
                    .sum::<u64>()
            };
            let before = size(&db);
            let engine = Engine::open(&db, history.engine_options()).await?;
            let done = engine.compact_history(&history.retention()).await?;
            engine.vacuum().await?;
            drop(engine);
            println!(
                "{}: removed {} applied events, {} acknowledged writes, {} metric samples, {} dated changes released or dropped; {:.1} MB -> {:.1} MB",
                db.display(),
                done.events,
                done.sent_writes,
                done.metric_samples,
                done.scheduled_changes,
                before as f64 / 1e6,
                size(&db) as f64 / 1e6
            );
        }
        Command::Audit {
            action: AuditAction::Verify { db },
        } => {
            let report = concord::audit_chain::verify_file(&db).await?;
            let triggers = if report.triggers_present {
                "in place"
            } else {
                "MISSING (someone removed them)"
            };
            println!("{}: {} audit entries checked", db.display(), report.entries);
            println!("  append-only triggers: {triggers}");
            if let Some(head) = &report.head {
                println!("  head: entry {} hash {}", head.id, head.hash);
            }
            if let Some(broken) = &report.first_broken {
                println!("  BROKEN at entry {}: {}", broken.id, broken.reason);
                std::process::exit(1);
            }
            println!("  chain intact");
        }
        Command::Workspace {
            action: action @ (WorkspaceAction::Schema | WorkspaceAction::Reference),
            ..
        } => {
            use utoipa::OpenApi;
            let openapi = serde_json::to_value(concord::api::ApiDoc::openapi())?;
            let schema = concord::workspace_schema::workspace_schema(&openapi);
            if matches!(action, WorkspaceAction::Schema) {
                println!("{}", serde_json::to_string_pretty(&schema)?);
            } else {
                print!("{}", concord::workspace_schema::reference_markdown(&schema));
            }
        }
        Command::Tokens { db, action } => {
            let engine = Engine::open(&db, Default::default()).await?;
            tokens_command(&engine, action).await?;
        }
        Command::Workspace { db, action } => {
            let engine = Engine::open(&db, Default::default()).await?;
            workspace_command(&engine, action).await?;
        }
        Command::Openapi => {
            use utoipa::OpenApi;
            println!("{}", concord::api::ApiDoc::openapi().to_pretty_json()?);
        }
        Command::Secret { action } => {
            use concord::secrets::{Keychain, Secret, SecretStore};
            let keychain = Keychain::default();
            match action {
                SecretAction::Set { name } => {
                    let mut value = String::new();
                    std::io::stdin().read_line(&mut value)?;
                    let value = value.trim_end_matches(['\n', '\r']);
                    anyhow::ensure!(!value.is_empty(), "no value on standard input");
                    keychain.set(&name, &Secret::new(value))?;
                    println!("stored secret '{name}' in the keychain");
                }
                SecretAction::Delete { name } => {
                    keychain.delete(&name)?;
                    println!("removed secret '{name}' from the keychain");
                }
            }
        }
        Command::Reconcile {
            db,
            system,
            confirm,
            dismiss,
            note,
            actor,
        } => {
            let engine = Engine::open(&db, EngineOptions::default()).await?;
            let actor = concord::audit::Actor::person(&actor, "admin");
            let runs = match (confirm, dismiss) {
                (Some(id), _) => vec![engine.confirm_reconcile(id, &actor).await?],
                (None, Some(id)) => vec![
                    engine
                        .dismiss_reconcile(id, note.as_deref().unwrap_or_default(), &actor)
                        .await?,
                ],
                (None, None) => {
                    engine
                        .reconcile(&system, &actor.name, |run| {
                            println!(
                                "reconcile {} {}: {}{}",
                                run.system,
                                run.object,
                                run.message,
                                run.eta_secs
                                    .map(|s| format!(" (about {s:.0} s left)"))
                                    .unwrap_or_default()
                            );
                        })
                        .await?
                }
            };
            for run in &runs {
                println!(
                    "run {} ({} {}): {}: {}",
                    run.id, run.system, run.object, run.status, run.message
                );
            }
            anyhow::ensure!(
                runs.iter().all(|r| r.status != "failed"),
                "the reconciliation failed"
            );
        }
        Command::Repush {
            db,
            system,
            records,
            filter,
            all,
            actor,
        } => {
            let engine = Engine::open(&db, EngineOptions::default()).await?;
            let selection = concord::replan::RepushSelection {
                object: None,
                record_ids: records,
                filter: filter.into_iter().collect(),
                all,
            };
            let outcome = engine
                .repush(
                    &system,
                    &selection,
                    &concord::audit::Actor::person(&actor, "support"),
                )
                .await?;
            println!(
                "{} records matched, {} writes queued for {system}; `concord run` sends them",
                outcome.matched, outcome.queued
            );
        }
        Command::DeadLetter { db, action } => {
            let engine = Engine::open(&db, EngineOptions::default()).await?;
            dead_letter_command(&engine, action).await?;
        }
        Command::SelfCheck { size } => {
            let report = concord::selfcheck::run(size).await?;
            println!("{report}");
            if !report.ok {
                anyhow::bail!("self-check failed");
            }
        }
    }
    Ok(())
}

/// Waits for Ctrl-C, or SIGTERM: what a service manager (systemd, a container runtime) sends to
/// stop a daemon, so a stopped `concord run` finishes its writes and saves before it exits.
async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::select! {
            stopped = tokio::signal::ctrl_c() => stopped?,
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
