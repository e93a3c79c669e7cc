//! Concord's sync engine: two-way, field-level sync between business systems, with its state
//! in SQLite. See DESIGN.md for the semantics; the modules follow its vocabulary.

pub mod api;
pub mod audit;
pub mod clock;
pub mod connector;
pub mod connectors;
pub mod delivery;
pub mod demo;
pub mod desktop;
pub mod error;
pub mod loopback;
pub mod mapping;
mod memo;
pub mod merge;
pub mod model;
pub mod ops;
pub mod path;
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
pub mod transform;
pub mod workspace;

pub use error::{EngineError, Result};
pub use runtime::{Engine, EngineOptions, IngestOutcome, Settings};
