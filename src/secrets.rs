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

/// Secrets held in memory: the self-check's own systems, tests, and the values an admin enters
/// again for one connection test. Nothing is written anywhere.
#[derive(Debug, Default)]
pub struct MemorySecrets {
    values: std::sync::RwLock<std::collections::HashMap<String, Secret>>,
}

impl MemorySecrets {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `name` is held here.
    pub fn holds(&self, name: &str) -> bool {
        self.values
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
    }
}

impl SecretStore for MemorySecrets {
    fn get(&self, name: &str) -> Result<Secret, SecretError> {
        self.values
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| SecretError::Missing(name.to_owned()))
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), SecretError> {
        self.values
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), value.clone());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.values
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        Ok(())
    }
}

/// Two stores as one: a name is looked up in `over` first, then in `under`. Writes and deletes
/// go to `over`, so `under` (the OS keychain, say) is never changed through this.
pub struct Layered {
    pub over: Arc<MemorySecrets>,
    pub under: SharedSecrets,
}

impl SecretStore for Layered {
    fn get(&self, name: &str) -> Result<Secret, SecretError> {
        match self.over.get(name) {
            Ok(v) => Ok(v),
            Err(SecretError::Missing(_)) => self.under.get(name),
            Err(e) => Err(e),
        }
    }

    fn set(&self, name: &str, value: &Secret) -> Result<(), SecretError> {
        self.over.set(name, value)
    }

    fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.over.delete(name)
    }
}

/// Where stored secrets may be sent: a secret goes only to the origin (scheme, host, port) it
/// was saved for.
pub trait OriginPolicy: Send + Sync {
    /// Whether the stored secret `name` may be sent to `origin` (`scheme://host:port`).
    fn allows(&self, name: &str, origin: &str) -> bool;
}

/// The origin a connector's own config declares for a secret is enough (a connector built
/// outside the engine, e.g. in tests). The request's URL must still be on that origin.
pub struct AsConfigured;

impl OriginPolicy for AsConfigured {
    fn allows(&self, _name: &str, _origin: &str) -> bool {
        true
    }
}

/// The origin each stored secret was saved for, kept in the state database
/// (`secret_origins`) and cached here. A secret is bound when a saved system first names it,
/// and bound again to its system's current origin when its value is entered again; a system
/// moved to another address cannot use its secrets until then.
#[derive(Default)]
pub struct OriginBindings {
    bound: std::sync::RwLock<std::collections::HashMap<String, String>>,
}

impl OriginBindings {
    pub async fn load(pool: &sqlx::SqlitePool) -> Result<Self, sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT name, origin FROM secret_origins")
            .fetch_all(pool)
            .await?;
        Ok(Self {
            bound: std::sync::RwLock::new(rows.into_iter().collect()),
        })
    }

    pub fn origin(&self, name: &str) -> Option<String> {
        self.bound
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Binds `name` to `origin` unless it is bound already (a saved system names it first).
    pub async fn bind_if_unbound(
        &self,
        pool: &sqlx::SqlitePool,
        name: &str,
        origin: &str,
        now: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO secret_origins (name, origin, bound_at) VALUES (?, ?, ?)
             ON CONFLICT(name) DO NOTHING",
        )
        .bind(name)
        .bind(origin)
        .bind(now)
        .execute(pool)
        .await?;
        self.bound
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_owned())
            .or_insert_with(|| origin.to_owned());
        Ok(())
    }

    /// A value entered again (or removed): bound to `origin`, or to nothing until a saved
    /// system names it.
    pub async fn rebind(
        &self,
        pool: &sqlx::SqlitePool,
        name: &str,
        origin: Option<&str>,
        now: &str,
    ) -> Result<(), sqlx::Error> {
        match origin {
            Some(o) => {
                sqlx::query(
                    "INSERT INTO secret_origins (name, origin, bound_at) VALUES (?, ?, ?)
                     ON CONFLICT(name) DO UPDATE SET origin = excluded.origin,
                       bound_at = excluded.bound_at",
                )
                .bind(name)
                .bind(o)
                .bind(now)
                .execute(pool)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM secret_origins WHERE name = ?")
                    .bind(name)
                    .execute(pool)
                    .await?;
            }
        }
        let mut bound = self.bound.write().unwrap_or_else(|p| p.into_inner());
        match origin {
            Some(o) => bound.insert(name.to_owned(), o.to_owned()),
            None => bound.remove(name),
        };
        Ok(())
    }
}

impl OriginPolicy for OriginBindings {
    fn allows(&self, name: &str, origin: &str) -> bool {
        self.origin(name).as_deref() == Some(origin)
    }
}

/// For one connection test: the secrets entered again with it may go anywhere the draft says;
/// every other secret only where `saved` allows.
pub struct Reentered {
    pub names: std::collections::BTreeSet<String>,
    pub saved: Arc<dyn OriginPolicy>,
}

impl OriginPolicy for Reentered {
    fn allows(&self, name: &str, origin: &str) -> bool {
        self.names.contains(name) || self.saved.allows(name, origin)
    }
}

/// Whether `offered` equals the secret, in time that does not depend on where they differ.
pub fn constant_time_eq(offered: &[u8], secret: &Secret) -> bool {
    use subtle::ConstantTimeEq;
    // Lengths are compared in the open: the length of a secret is not what an attacker needs.
    offered.len() == secret.0.len() && bool::from(offered.ct_eq(secret.0.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_is_exact() {
        let s = Secret::new("abc");
        assert!(constant_time_eq(b"abc", &s), "the same value matches");
        assert!(!constant_time_eq(b"abd", &s), "another value does not");
        assert!(!constant_time_eq(b"ab", &s), "a prefix does not");
        assert!(!constant_time_eq(b"", &s), "nothing does not");
    }

    #[test]
    fn a_layered_store_reads_over_then_under_and_writes_over() {
        let under = Arc::new(MemorySecrets::new());
        under.set("a", &Secret::new("under-a")).unwrap();
        under.set("b", &Secret::new("under-b")).unwrap();
        let over = Arc::new(MemorySecrets::new());
        over.set("a", &Secret::new("over-a")).unwrap();
        let l = Layered {
            over: over.clone(),
            under: under.clone(),
        };
        assert_eq!(l.get("a").unwrap().expose(), "over-a", "over wins");
        assert_eq!(
            l.get("b").unwrap().expose(),
            "under-b",
            "under is read through"
        );
        l.set("b", &Secret::new("new")).unwrap();
        assert_eq!(
            under.get("b").unwrap().expose(),
            "under-b",
            "under is never written"
        );
    }

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
