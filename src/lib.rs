//! Concord's sync engine: two-way, field-level sync between business systems, with its state
//! in SQLite. The semantics are in `docs/sync-semantics.md`; the modules follow its vocabulary.

pub mod api;
pub mod approvals;
pub mod audit;
pub mod audit_chain;
pub mod breaker;
pub mod clock;
pub mod config_history;
pub mod connector;
pub mod connectors;
pub mod dead_letter_causes;
pub mod delivery;
pub mod demo;
pub mod desktop;
pub mod effective;
pub mod error;
pub mod golden_meta;
pub mod health;
pub mod loopback;
pub mod mapping;
mod memo;
pub mod merge;
pub mod model;
pub mod ops;
pub mod path;
pub mod plan;
pub mod policy_whatif;
pub mod poll;
pub mod reconcile;
pub mod replan;
pub mod retention;
pub mod runtime;
pub mod schema;
pub mod secrets;
pub mod selfcheck;
pub mod server;
pub mod store;
pub mod summary;
pub mod telemetry;
pub mod transform;
pub mod ui_assets;
pub mod whatif;
pub mod workspace;
pub mod workspace_diff;
pub mod workspace_schema;

pub use error::{EngineError, Result};
/// The memory allocator Concord's programs declare as their `#[global_allocator]`. Applying an
/// event allocates and frees many small strings and maps; the system allocator spent a third
/// of apply's time on them in the throughput bench.
pub use mimalloc::MiMalloc as Allocator;
pub use runtime::{Engine, EngineOptions, IngestOutcome, Settings};
