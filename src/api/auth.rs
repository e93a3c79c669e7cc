//! Who is calling the console API: per-launch bearer tokens mapped to a person and a role, and
//! the rule of which role may do what. Tokens live only in memory: a restart invalidates them.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::audit::Actor;
use crate::server::ApiError;

/// What a person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Systems, mappings, ownership; everything else too.
    Admin,
    /// Exceptions: resolve, approve, dismiss.
    Steward,
    /// Dead letters: replay, discard.
    Support,
    /// Reads only, sensitive values masked.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Steward => "steward",
            Self::Support => "support",
            Self::Viewer => "viewer",
        }
    }

    /// Whether this role sees sensitive values (salary, bank account) unmasked.
    pub fn sees_sensitive(self) -> bool {
        matches!(self, Self::Admin | Self::Steward)
    }
}

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        Actor::person(&self.name, self.role.as_str())
    }

    /// Refuses with 403 unless the caller has one of `roles` (admins may do everything).
    pub fn require(&self, roles: &[Role], what: &str) -> Result<(), ApiError> {
        if self.role == Role::Admin || roles.contains(&self.role) {
            return Ok(());
        }
        Err(ApiError(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("a {} may not {what}", self.role.as_str()),
        ))
    }
}

/// Tokens issued since launch.
#[derive(Debug, Default)]
pub struct Tokens(RwLock<HashMap<String, Principal>>);

impl Tokens {
    /// Issues a new random token for `principal`.
    pub fn issue(&self, principal: Principal) -> String {
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        self.0
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), principal);
        token
    }

    pub fn lookup(&self, token: &str) -> Option<Principal> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

/// Anything that can hand the extractor the launch's tokens.
pub trait HasTokens {
    fn tokens(&self) -> &Tokens;
}

impl<S> FromRequestParts<S> for Principal
where
    S: HasTokens + Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid token is required (Authorization: Bearer <token>)".into(),
            )
        };
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(unauthorized)?;
        state.tokens().lookup(token.trim()).ok_or_else(unauthorized)
    }
}
