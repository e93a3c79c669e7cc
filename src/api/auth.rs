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
    pub const ALL: [Role; 4] = [Self::Admin, Self::Steward, Self::Support, Self::Viewer];

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

/// Who may call a route. Every console route has one rule, in the API's route table, checked
/// before the request's body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (the OpenAPI document, unknown routes).
    Public,
    /// Any signed-in role: reads, with sensitive values masked where the role may not see them.
    Read,
    /// Admins and these roles; `what` finishes the refusal "a viewer may not …".
    Roles(&'static [Role], &'static str),
}

impl Access {
    /// The roles allowed, in the order of [`Role::ALL`].
    pub fn allowed(self) -> Vec<Role> {
        Role::ALL
            .into_iter()
            .filter(|r| match self {
                Self::Public | Self::Read => true,
                Self::Roles(roles, _) => *r == Role::Admin || roles.contains(r),
            })
            .collect()
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
        // The route table's check already identified the caller.
        if let Some(who) = parts.extensions.get::<Principal>() {
            return Ok(who.clone());
        }
        authenticate(&parts.headers, state.tokens())
    }
}

/// The caller a request's bearer token names, or a 401.
pub fn authenticate(
    headers: &axum::http::HeaderMap,
    tokens: &Tokens,
) -> Result<Principal, ApiError> {
    let unauthorized = || {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid token is required (Authorization: Bearer <token>)".into(),
        )
    };
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    tokens.lookup(token.trim()).ok_or_else(unauthorized)
}
