//! Built-in connectors, and what the engine and the console ask of a system's config whatever
//! its connector: building the connector, validating the config, and the secrets it sends
//! where. Adding a connector means adding an arm to each function here.

pub mod rest;
pub mod scim;
pub mod sql;

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
    let secrets = secrets.clone();
    Ok(Some(match system.connector.as_str() {
        "rest" => Arc::new(rest::RestConnector::from_config_with(
            system, secrets, origins,
        )?),
        "scim" => Arc::new(scim::ScimConnector::from_config_with(
            system, secrets, origins,
        )?),
        "sql" => Arc::new(sql::SqlConnector::from_config_with(
            system, secrets, origins,
        )?),
        "external" => return Ok(None),
        other => {
            return Err(ConnectorError::Config(format!(
                "system {}: unknown connector '{other}' (known: rest, scim, sql, external)",
                system.id
            )));
        }
    }))
}

/// Checks a system's config for its connector without building anything; errors name the key
/// at fault. A connector without a config of its own (`external`) accepts any.
pub fn validate(system: &SystemConfig) -> Result<(), ConnectorError> {
    match system.connector.as_str() {
        "rest" => rest::RestConfig::parse(&system.id, &system.config).map(|_| ()),
        "scim" => scim::ScimConfig::parse(&system.id, &system.config).map(|_| ()),
        "sql" => sql::SqlConfig::parse(&system.id, &system.config).map(|_| ()),
        _ => Ok(()),
    }
}

/// The secrets a system's config sends, each with the origin (`scheme://host:port`) it is sent
/// to; empty when the config does not parse.
pub fn sent_secrets(system: &SystemConfig) -> Vec<(String, String)> {
    match system.connector.as_str() {
        "rest" => rest::RestConfig::parse(&system.id, &system.config)
            .map(|c| c.sent_secrets())
            .unwrap_or_default(),
        "scim" => scim::ScimConfig::parse(&system.id, &system.config)
            .map(|c| c.as_rest().sent_secrets())
            .unwrap_or_default(),
        "sql" => sql::SqlConfig::parse(&system.id, &system.config)
            .map(|c| c.sent_secrets())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Whether the console can test a system of this connector before it is saved.
pub fn testable(connector: &str) -> bool {
    matches!(connector, "rest" | "scim" | "sql")
}
