//! Who is calling the console API: bearer tokens mapped to a person and a role, and the rule of
//! which role may do what. Tokens are looked up by a SHA-256 digest of the secret, never by the
//! secret itself: the launch's token lives in memory for that launch, while tokens issued
//! through the API are also kept, as digests, in the state file (`token_store`), so a restart
//! keeps a scraper's or a colleague's token working.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
    /// The Prometheus endpoint (`/metrics`) and nothing else: for a scraper's token.
    Scrape,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Self::Admin,
        Self::Steward,
        Self::Support,
        Self::Viewer,
        Self::Scrape,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Steward => "steward",
            Self::Support => "support",
            Self::Viewer => "viewer",
            Self::Scrape => "scrape",
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
    /// The token's stable id (`tok_` and 8 hex digits), set when it is issued: what audit
    /// entries and approvals record. Never the secret token itself.
    #[serde(default)]
    pub id: String,
    /// The person's name, trimmed with runs of whitespace made one space.
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// A principal to issue a token to (its id is given when the token is issued).
    pub fn new(name: impl Into<String>, role: Role) -> Self {
        Self {
            id: String::new(),
            name: name.into(),
            role,
        }
    }

    pub fn actor(&self) -> Actor {
        let actor = Actor::person(&self.name, self.role.as_str());
        if self.id.is_empty() {
            actor
        } else {
            actor.with_id(&self.id)
        }
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
    /// Any signed-in role but `scrape`: reads, with sensitive values masked where the role may
    /// not see them.
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
                Self::Public => true,
                Self::Read => *r != Role::Scrape,
                Self::Roles(roles, _) => *r == Role::Admin || roles.contains(r),
            })
            .collect()
    }
}

/// A token as admins see it: who it names, by whom and when it was issued; never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// `tok_` and 8 hex digits.
    pub id: String,
    pub name: String,
    pub role: Role,
    /// RFC 3339.
    pub issued_at: String,
    /// The id of the token that issued it; none for the token made at launch.
    pub issued_by: Option<String>,
    /// RFC 3339; when a request last presented it.
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Issued {
    pub(crate) principal: Principal,
    pub(crate) issued_at: chrono::DateTime<chrono::Utc>,
    pub(crate) issued_by: Option<String>,
    pub(crate) last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Kept in the state file (issued through the API), not only for this launch.
    pub(crate) kept: bool,
    /// Used since its last use was written to the state file.
    pub(crate) used_unsaved: bool,
}

impl Issued {
    /// The token as admins see it.
    pub(crate) fn info(&self) -> TokenInfo {
        let ts = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        TokenInfo {
            id: self.principal.id.clone(),
            name: self.principal.name.clone(),
            role: self.principal.role,
            issued_at: ts(self.issued_at),
            issued_by: self.issued_by.clone(),
            last_used_at: self.last_used_at.map(ts),
        }
    }
}

/// The SHA-256 digest of a token's secret, in hex: what tokens are looked up and kept by.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Why a name cannot be a token's name.
pub fn check_name(name: &str) -> Result<String, String> {
    if name.chars().any(char::is_control) {
        return Err("a name may not hold control characters".into());
    }
    let name = crate::audit::normalize_name(name);
    if name.is_empty() {
        return Err("a token needs a person's name".into());
    }
    if name.chars().count() > 100 {
        return Err("a name is at most 100 characters".into());
    }
    Ok(name)
}

/// Live tokens, by the digest of their secret.
#[derive(Debug, Default)]
pub struct Tokens(RwLock<HashMap<String, Issued>>);

impl Tokens {
    /// Issues a new random token for `principal` (by the launch itself); see
    /// [`Tokens::issue_by`].
    pub fn issue(&self, principal: Principal) -> String {
        self.issue_by(principal, None).0
    }

    /// Issues a new random token for `principal`, giving it a fresh id: the secret and the
    /// principal as issued (name normalised, id set).
    pub fn issue_by(&self, mut principal: Principal, by: Option<&str>) -> (String, Principal) {
        let mut bytes = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        principal.name = crate::audit::normalize_name(&principal.name);
        principal.id = loop {
            let mut id = [0u8; 4];
            rand::thread_rng().fill_bytes(&mut id);
            let id = format!("tok_{}", hex::encode(id));
            if !map.values().any(|i| i.principal.id == id) {
                break id;
            }
        };
        map.insert(
            digest(&token),
            Issued {
                principal: principal.clone(),
                issued_at: chrono::Utc::now(),
                issued_by: by.map(str::to_owned),
                last_used_at: None,
                kept: false,
                used_unsaved: false,
            },
        );
        (token, principal)
    }

    /// The principal a token names (noting that it was used).
    pub fn lookup(&self, token: &str) -> Option<Principal> {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        let issued = map.get_mut(&digest(token))?;
        issued.last_used_at = Some(chrono::Utc::now());
        issued.used_unsaved = issued.kept;
        Some(issued.principal.clone())
    }

    /// Adds a token kept in the state file, by its digest (a restart's restore).
    pub(crate) fn restore(&self, digest: String, issued: Issued) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        map.insert(digest, issued);
    }

    /// Marks the token with this id as kept in the state file, and returns its digest and
    /// what it names.
    pub(crate) fn keep(&self, id: &str) -> Option<(String, Issued)> {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        let (digest, issued) = map.iter_mut().find(|(_, i)| i.principal.id == id)?;
        issued.kept = true;
        Some((digest.clone(), issued.clone()))
    }

    /// The last uses of kept tokens not yet written to the state file, by token id; taking them
    /// marks them written.
    pub(crate) fn take_unsaved_uses(&self) -> Vec<(String, chrono::DateTime<chrono::Utc>)> {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        map.values_mut()
            .filter_map(|i| {
                let used = std::mem::take(&mut i.used_unsaved);
                Some((i.principal.id.clone(), i.last_used_at.filter(|_| used)?))
            })
            .collect()
    }

    /// Every live token, oldest first.
    pub fn list(&self) -> Vec<TokenInfo> {
        let map = self.0.read().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<(chrono::DateTime<chrono::Utc>, TokenInfo)> =
            map.values().map(|i| (i.issued_at, i.info())).collect();
        list.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        list.into_iter().map(|(_, t)| t).collect()
    }

    /// The token with this id, if it is live.
    pub fn get(&self, id: &str) -> Option<TokenInfo> {
        self.list().into_iter().find(|t| t.id == id)
    }

    /// Revokes the token with this id: requests presenting it get a 401 from now on.
    pub fn revoke(&self, id: &str) -> Option<Principal> {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        let secret = map
            .iter()
            .find(|(_, i)| i.principal.id == id)
            .map(|(s, _)| s.clone())?;
        map.remove(&secret).map(|i| i.principal)
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
