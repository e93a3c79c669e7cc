//! The engine library's error type. The console API maps each variant to a `{code, message}`
//! body with a fitting status; internal causes are logged, not shown to clients.

use crate::connector::ConnectorError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("storage error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("invalid workspace config: {0}")]
    Config(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error("corrupt state: {0}")]
    Corrupt(#[from] serde_json::Error),
}

impl EngineError {
    /// A short code the UI and scripts branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Store(_) | Self::Migrate(_) | Self::Corrupt(_) => "internal",
            Self::Config(_) => "invalid_config",
            Self::Invalid(_) => "invalid_input",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Connector(_) => "connector_error",
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
