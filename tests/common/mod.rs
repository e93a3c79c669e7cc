//! Test harness: an engine on a real SQLite file, its webhook server and two real HTTP HR
//! systems on 127.0.0.1 (Acme HRIS and Acme Payroll from the self-check workspace) that echo
//! every write back as a webhook. [`json_server`] runs json-server, a real third-party REST
//! system, on a copy of a seed file.
#![allow(dead_code)]

pub mod json_server;
pub mod process;
pub mod scim2_server;

use std::time::{Duration, Instant};

use std::sync::Arc;

use concord::loopback::LoopbackSystem;
use concord::model::{RecordId, WorkspaceConfig};
use concord::secrets::{Layered, MemorySecrets, SecretStore};
use concord::{Engine, EngineOptions, Settings};
use serde_json::{Map, Value};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

pub struct Harness {
    pub dir: TempDir,
    pub engine: Engine,
    /// Secrets held in memory over the engine's own store: the loopback systems' webhook
    /// bearer tokens.
    pub secrets: Arc<MemorySecrets>,
    pub hris: LoopbackSystem,
    pub payroll: LoopbackSystem,
    pub config: WorkspaceConfig,
    cancel: CancellationToken,
}

/// An engine on a real SQLite file (`state.db` in `dir`) with [`fast_settings`].
pub async fn open_engine(dir: &std::path::Path) -> Engine {
    open_engine_with_secrets(dir).await.0
}

/// Like [`open_engine`], with secrets held in memory over the OS keychain: where tests put
/// their systems' webhook bearer tokens (see [`trust_hooks`]).
pub async fn open_engine_with_secrets(dir: &std::path::Path) -> (Engine, Arc<MemorySecrets>) {
    open_engine_on(dir, Arc::new(concord::clock::SystemClock)).await
}

/// Like [`open_engine_with_secrets`], on `clock` (a manual one, say).
pub async fn open_engine_on(
    dir: &std::path::Path,
    clock: Arc<dyn concord::clock::Clock>,
) -> (Engine, Arc<MemorySecrets>) {
    let memory = Arc::new(MemorySecrets::new());
    let engine = Engine::open(
        &dir.join("state.db"),
        EngineOptions {
            settings: fast_settings(),
            secrets: Arc::new(Layered {
                over: memory.clone(),
                under: EngineOptions::default().secrets,
            }),
            clock,
            ..EngineOptions::default()
        },
    )
    .await
    .expect("engine opens");
    (engine, memory)
}

/// Stores a loopback system's webhook bearer token under the name its `webhook_secret` gives
/// (`{id}-webhook`, as in the self-check workspace), so the engine accepts its webhooks.
pub fn trust_hooks(secrets: &MemorySecrets, id: &str, system: &LoopbackSystem) {
    secrets
        .set(
            &concord::selfcheck::webhook_secret_name(id),
            &system.hook_token(),
        )
        .expect("a memory store takes it");
}

/// Settings for tests: short backoffs and polls. The circuit breaker is off unless a test's
/// workspace sets one: these tests edit most of a few dozen records at once on purpose, and
/// the breaker's own tests turn it on.
pub fn fast_settings() -> Settings {
    Settings {
        breaker: concord::model::BreakerConfig {
            enabled: false,
            ..Default::default()
        },
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(200),
        idle_poll: Duration::from_millis(10),
        ..Settings::default()
    }
}

impl Harness {
    /// Starts everything; `customize` may change the workspace before it is applied.
    pub async fn start(customize: impl FnOnce(&mut WorkspaceConfig)) -> Self {
        Self::start_with(
            EngineOptions {
                settings: fast_settings(),
                ..EngineOptions::default()
            },
            customize,
        )
        .await
    }

    /// Like [`Harness::start`] with [`fast_settings`], on a clock that moves only when told.
    pub async fn start_on(clock: &concord::clock::ManualClock) -> Self {
        Self::start_with(
            EngineOptions {
                clock: Arc::new(clock.clone()),
                settings: fast_settings(),
                ..EngineOptions::default()
            },
            |_| {},
        )
        .await
    }

    /// Like [`Harness::start`], with the engine's options (a manual clock, say).
    pub async fn start_with(
        mut options: EngineOptions,
        customize: impl FnOnce(&mut WorkspaceConfig),
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets = Arc::new(MemorySecrets::new());
        options.secrets = Arc::new(Layered {
            over: secrets.clone(),
            under: options.secrets,
        });
        let engine = Engine::open(&dir.path().join("state.db"), options)
            .await
            .expect("engine opens");
        let cancel = CancellationToken::new();
        let (addr, _) = concord::server::spawn_loopback(engine.clone(), 0, cancel.clone())
            .await
            .expect("webhook server");
        let hooks = format!("http://{addr}/hooks");
        let hris = LoopbackSystem::start(
            "hris",
            "employee",
            "/employees",
            Some(format!("{hooks}/hris")),
        )
        .await
        .expect("hris starts");
        let payroll = LoopbackSystem::start(
            "payroll",
            "employee",
            "/employees",
            Some(format!("{hooks}/payroll")),
        )
        .await
        .expect("payroll starts");
        trust_hooks(&secrets, "hris", &hris);
        trust_hooks(&secrets, "payroll", &payroll);
        let mut config = concord::selfcheck::workspace(&hris.base_url(), &payroll.base_url());
        customize(&mut config);
        engine
            .apply_workspace(&config)
            .await
            .expect("workspace applies");
        Self {
            dir,
            engine,
            secrets,
            hris,
            payroll,
            config,
            cancel,
        }
    }

    /// Waits until every webhook is accepted, the inbox is applied and the outbox delivered,
    /// and no new webhook (an echo) arrived meanwhile.
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            while self.hris.hooks_pending() + self.payroll.hooks_pending() > 0 {
                assert!(Instant::now() < deadline, "webhooks did not drain");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            self.engine
                .run_until_idle(Duration::from_secs(30))
                .await
                .expect("engine goes idle");
            tokio::time::sleep(Duration::from_millis(20)).await;
            let pending: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE status = 'pending'")
                    .fetch_one(self.engine.pool())
                    .await
                    .expect("count");
            if self.hris.hooks_pending() + self.payroll.hooks_pending() == 0 && pending == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the systems did not go quiet");
        }
    }

    pub async fn record_of(&self, system: &str, external_id: &str) -> RecordId {
        self.engine
            .record_for(system, "employee", external_id)
            .await
            .expect("lookup")
            .unwrap_or_else(|| panic!("{system}:{external_id} is linked to a record"))
    }

    /// The only payroll record (most tests sync one employee).
    pub fn payroll_only(&self) -> (String, Map<String, Value>) {
        let all = self.payroll.records();
        assert_eq!(all.len(), 1, "payroll holds exactly one employee: {all:?}");
        all.into_iter().next().expect("one record")
    }

    pub async fn counter(&self, name: &str) -> i64 {
        self.engine.counter(name).await.expect("counter")
    }

    pub async fn audit_rules(&self, record: RecordId, field: Option<&str>) -> Vec<String> {
        self.engine
            .audit_for(record, field)
            .await
            .expect("audit")
            .into_iter()
            .map(|a| a.rule)
            .collect()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The HRIS also carries the salary as a decimal string.
pub fn hris_maps_salary(config: &mut WorkspaceConfig) {
    let hris = config
        .mappings
        .iter_mut()
        .find(|m| m.system == "hris")
        .expect("hris mapping");
    hris.rules.push(concord::model::MappingRule {
        canonical: vec!["pay_rate".into()],
        system: vec!["salary".into()],
        transform: concord::transform::Transform::MoneyDecimal { scale: 2 },
        null: Default::default(),
    });
}

/// [`hris_maps_salary`], with the salary dated by `salary_effective` (the date governs pay only).
pub fn hris_dates_salary(config: &mut WorkspaceConfig) {
    hris_maps_salary(config);
    if let Some(hris) = config.mappings.iter_mut().find(|m| m.system == "hris") {
        hris.effective_date = Some(concord::model::EffectiveDate {
            path: "salary_effective".into(),
            fields: vec!["pay_rate".into()],
            time_zone: None,
        });
    }
}

/// Ada, as the HRIS holds her.
pub fn ada() -> Value {
    serde_json::json!({
        "employee_id": "E1001",
        "full_name": "Ada Lovelace",
        "email": "ada@acme.example",
        "phone": "(415) 555-0101",
        "status": "Active",
        "hire_date": "03/15/2021",
        "title": "Engineer",
        "department": "R&D",
    })
}

/// The console (API and webhooks) of `engine` on 127.0.0.1, with the tokens `tokens` issues
/// and the keychain service `keychain`; returns its base URL and a client with a timeout.
pub async fn serve_console(
    engine: &Engine,
    tokens: std::sync::Arc<concord::api::auth::Tokens>,
    keychain: &str,
) -> (String, reqwest::Client) {
    let console = concord::api::Console {
        engine: engine.clone(),
        tokens,
        secrets: std::sync::Arc::new(concord::secrets::Keychain::new(keychain)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, concord::server::app(console, None)).await;
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    (base, client)
}

/// Events waiting to be applied plus writes waiting to be delivered.
pub async fn pending(engine: &Engine) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending')
              + (SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'in_flight'))",
    )
    .fetch_one(engine.pool())
    .await
    .expect("count the queues")
}

/// Waits (at most `timeout`) until the webhooks of `systems` are accepted and the engine's
/// inbox and outbox are empty.
pub async fn settle(engine: &Engine, systems: &[&LoopbackSystem], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let hooks = || systems.iter().map(|s| s.hooks_pending()).sum::<usize>();
    loop {
        while hooks() > 0 {
            assert!(
                Instant::now() < deadline,
                "webhooks did not drain in {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        engine
            .run_until_idle(Duration::from_secs(30).min(timeout))
            .await
            .expect("engine goes idle");
        tokio::time::sleep(Duration::from_millis(20)).await;
        if hooks() == 0 && pending(engine).await == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the systems did not go quiet in {timeout:?}"
        );
    }
}
