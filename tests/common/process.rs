//! The `concord` binary as a child process, for tests that SIGKILL it: starting it on a state
//! file and a workspace file, and the OS-keychain secrets such a process reads (unique per
//! test, removed on drop).

use std::path::Path;
use std::process::{Child, Command, Stdio};

use concord::loopback::LoopbackSystem;

/// Starts `concord run` on `dir/state.db` and `dir/workspace.json`, serving webhooks on
/// `port`; its log goes to `dir/engine.log`.
pub fn spawn_engine(dir: &Path, port: u16) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("engine.log"))
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(["run", "--db"])
        .arg(dir.join("state.db"))
        .arg("--workspace")
        .arg(dir.join("workspace.json"))
        .args(["--port", &port.to_string()])
        .env("RUST_LOG", "concord=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("engine starts")
}

/// A loopback system's webhook token in the OS keychain (the engine's own service), for an
/// engine in a child process; removed on drop.
pub struct HookSecret {
    pub name: String,
}

impl HookSecret {
    pub fn store(system: &LoopbackSystem, id: &str) -> Self {
        Self::with_value(id, &system.hook_token())
    }

    /// Any secret (an API token, say) under a unique name with `id` in it.
    pub fn with_value(id: &str, value: &concord::secrets::Secret) -> Self {
        use concord::secrets::SecretStore;
        // Unique per call: tests run at once, and one dropping its secret must not take
        // another's.
        let name = format!(
            "process-test-{}-{id}-{:016x}-secret",
            std::process::id(),
            rand::random::<u64>()
        );
        concord::secrets::Keychain::default()
            .set(&name, value)
            .unwrap_or_else(|e| {
                panic!(
                    "storing a secret in the OS keychain failed; run the tests in a session \
                     keyring (`keyctl session - cargo test`): {e}"
                )
            });
        Self { name }
    }
}

impl Drop for HookSecret {
    fn drop(&mut self) {
        use concord::secrets::SecretStore;
        let _ = concord::secrets::Keychain::default().delete(&self.name);
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
