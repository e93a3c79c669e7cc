//! Secrets (API keys, passwords, client secrets, webhook signing keys) by name, from the OS
//! keychain. A config names a secret; its value never reaches SQLite, logs or the UI. The
//! [`Secret`] wrapper prints `<redacted>` and cannot be serialised.

use std::fmt;
use std::sync::Arc;

/// A secret value. Debug and Display print `<redacted>`; there is deliberately no Serialize.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SecretError {
    #[error("secret '{0}' is not in the keychain; add it with `concord secret set {0}`")]
    Missing(String),
    #[error("the keychain refused access to secret '{name}': {reason}")]
    Keychain { name: String, reason: String },
}

/// Where secrets are looked up by name.
pub trait SecretStore: Send + Sync {
    fn get(&self, name: &str) -> Result<Secret, SecretError>;
    fn set(&self, name: &str, value: &Secret) -> Result<(), SecretError>;
    fn delete(&self, name: &str) -> Result<(), SecretError>;
}

/// The OS keychain (macOS Keychain, Windows Credential Manager, the Linux kernel keyring),
/// through `keyring`, under one service name.
#[derive(Debug, Clone)]
pub struct Keychain {
    service: String,
}

impl Keychain {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(&self, name: &str) -> Result<keyring::Entry, SecretError> {
        keyring::Entry::new(&self.service, name).map_err(|e| SecretError::Keychain {
            name: name.to_owned(),
            reason: e.to_string(),
        })
    }
}

impl Default for Keychain {
    fn default() -> Self {
        Self::new("concord")
    }
}

impl SecretStore for Keychain {
    fn get(&self, name: &str) -> Result<Secret, SecretError> {
        match self.entry(name)?.get_password() {
            Ok(v) => Ok(Secret(v)),
            Err(keyring::Error::NoEntry) => Err(SecretError::Missing(name.to_owned())),
            Err(e) => Err(SecretError::Keychain {
                name: name.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), SecretError> {
        self.entry(name)?
            .set_password(value.expose())
            .map_err(|e| SecretError::Keychain {
                name: name.to_owned(),
                reason: match e {
                    // On Linux the kernel keyring answers NoEntry when the process has no session keyring.
                    keyring::Error::NoEntry => {
                        "no keychain session: log in to a desktop session, or run \
                                            under `keyctl session -`"
                            .to_owned()
                    }
                    other => other.to_string(),
                },
            })
    }

    fn delete(&self, name: &str) -> Result<(), SecretError> {
        match self.entry(name)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(SecretError::Keychain {
                name: name.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}

pub type SharedSecrets = Arc<dyn SecretStore>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(
            format!("{s:?} {s}"),
            "<redacted> <redacted>",
            "a secret is redacted in Debug and Display"
        );
    }
}
