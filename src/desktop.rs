//! What the desktop shell runs: the engine with its state in the app data folder, or the demo
//! workspace, and the console API on loopback for the window. The Tauri crate only calls this.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::demo::{DemoOptions, RunningDemo};
use crate::runtime::{Engine, EngineOptions};
use crate::secrets::Keychain;
use crate::server::{LaunchedConsole, launch_console, serve_console};

/// The engine and console behind one desktop window.
pub struct Desktop {
    engine: Engine,
    console: LaunchedConsole,
    demo: Option<RunningDemo>,
}

impl Desktop {
    /// Opens `data_dir/concord.db` (or, with `demo`, runs the demo workspace with its state in
    /// `data_dir/demo.db`) and serves the console on a free loopback port.
    pub async fn start(data_dir: &Path, demo: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let secrets = Arc::new(Keychain::default());
        if demo {
            let running = crate::demo::start(&DemoOptions {
                seed: 1,
                employees: 1_000,
                edits_per_sec: 2.0,
                duration: None,
                db: data_dir.join("demo.db"),
                quiet: true,
            })
            .await?;
            let engine = running.engine().clone();
            let console = serve_console(engine.clone(), 0, None, secrets).await?;
            return Ok(Self {
                engine,
                console,
                demo: Some(running),
            });
        }
        let engine = Engine::open(&data_dir.join("concord.db"), EngineOptions::default()).await?;
        let console = launch_console(engine.clone(), 0, None, secrets).await?;
        Ok(Self {
            engine,
            console,
            demo: None,
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine.clone()
    }

    /// Where the window's UI reaches the console API.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.console.addr)
    }

    pub fn token(&self) -> &str {
        &self.console.admin_token
    }

    pub async fn shutdown(self, grace: Duration) {
        self.console.shutdown(grace).await;
        if let Some(demo) = self.demo {
            demo.shutdown().await;
        }
    }
}
