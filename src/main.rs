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
    /// Serve the console (API under /api, the built UI, webhooks) on 127.0.0.1 and print its
    /// address with this launch's admin token.
    Serve {
        #[arg(long, env = "CONCORD_DB", default_value = "concord.db")]
        db: PathBuf,
        #[arg(long)]
        workspace: Option<PathBuf>,
        #[arg(long, default_value_t = 8470)]
        port: u16,
        /// The built UI to serve (ui/dist).
        #[arg(long, default_value = "ui/dist")]
        ui: PathBuf,
    },
    /// Print the console API's OpenAPI document (the UI's types are generated from it).
    Openapi,
    /// Store a secret in the OS keychain under a name that connector configs refer to. The
    /// value is read from standard input, so it never appears in the shell history.
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// Sync two built-in systems on loopback both ways and check that they agree.
    SelfCheck {
        /// Number of employees to sync.
        #[arg(long, default_value_t = 200)]
        size: usize,
    },
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
    tokio::signal::ctrl_c().await?;
    println!("concord: stopping");
    console.shutdown(Duration::from_secs(10)).await;
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
                engine.apply_workspace(&read_workspace(&path)?).await?;
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
        Command::Serve {
            db,
            workspace,
            port,
            ui,
        } => {
            let engine = Engine::open(&db, EngineOptions::default()).await?;
            if let Some(path) = workspace {
                engine.apply_workspace(&read_workspace(&path)?).await?;
            }
            serve(engine, port, &ui).await?;
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
