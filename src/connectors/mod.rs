//! Built-in connectors, and building one from a system's config.

pub mod rest;

use std::sync::Arc;

use crate::connector::{Connector, ConnectorError};
use crate::model::SystemConfig;
use crate::secrets::SharedSecrets;

/// Builds the connector a system's config names. Systems with the `external` connector are
/// registered by the embedding program (tests, the desktop shell) instead.
pub fn build(
    system: &SystemConfig,
    secrets: &SharedSecrets,
) -> Result<Option<Arc<dyn Connector>>, ConnectorError> {
    build_with(system, secrets, Arc::new(crate::secrets::AsConfigured))
}

/// Like [`build`], with the secrets sent only where `origins` allows.
pub fn build_with(
    system: &SystemConfig,
    secrets: &SharedSecrets,
    origins: Arc<dyn crate::secrets::OriginPolicy>,
) -> Result<Option<Arc<dyn Connector>>, ConnectorError> {
    match system.connector.as_str() {
        "rest" => Ok(Some(Arc::new(rest::RestConnector::from_config_with(
            system,
            secrets.clone(),
            origins,
        )?))),
        "external" => Ok(None),
        other => Err(ConnectorError::Config(format!(
            "system {}: unknown connector '{other}' (known: rest, external)",
            system.id
        ))),
    }
}
