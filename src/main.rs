//! The `concord` command: migrate a state file, run the engine on a workspace, self-check.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use concord::{Engine, EngineOptions};
use tokio_util::sync::CancellationToken;

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
    /// Run the sync engine on a workspace: webhooks in, writes out, until Ctrl-C.
    Run {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        /// A workspace config (JSON) to apply before starting; without it, the stored one runs.
        #[arg(long)]
        workspace: Option<PathBuf>,
        /// Port of the webhook server on 127.0.0.1 (0 picks one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Write the chosen port to this file once listening (for scripts and tests).
        #[arg(long)]
        port_file: Option<PathBuf>,
    },
    /// Sync two built-in systems on loopback both ways and check that they agree.
    SelfCheck {
        /// Number of employees to sync.
        #[arg(long, default_value_t = 200)]
        size: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "concord=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
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
        } => {
            let engine = Engine::open(&db, EngineOptions::default()).await?;
            if let Some(path) = workspace {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let config = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?;
                engine.apply_workspace(&config).await?;
            }
            let cancel = CancellationToken::new();
            let (addr, server) =
                concord::server::spawn_loopback(engine.clone(), port, cancel.clone()).await?;
            if let Some(f) = port_file {
                std::fs::write(&f, addr.port().to_string())?;
            }
            println!("concord: engine running; webhooks at http://{addr}/hooks/{{system}}");
            let running = engine.start(cancel.clone());
            tokio::signal::ctrl_c().await?;
            println!("concord: stopping");
            cancel.cancel();
            running.shutdown(Duration::from_secs(10)).await;
            let _ = server.await;
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
