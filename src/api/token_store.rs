//! Tokens issued through the console API outlive a restart: each is kept in the state file as
//! the SHA-256 digest of its secret with whom it names, restored when a console starts, and
//! deleted when it is revoked. A headless deployment's Prometheus scraper and its people keep
//! their tokens across restarts and upgrades; the launch's own admin token is made anew each
//! launch and never stored. Issuing and revoking commit with their audit entries, so the
//! state file and the audit never disagree about which tokens live.

use chrono::Utc;
use sqlx::Row;

use crate::api::auth::{Issued, Principal, Role, TokenInfo, Tokens};
use crate::audit::AuditEntry;
use crate::error::Result;
use crate::runtime::Engine;
use crate::store::{self, parse_ts, ts};

fn role_named(name: &str) -> Option<Role> {
    Role::ALL.into_iter().find(|r| r.as_str() == name)
}

/// The tokens kept in the state file, oldest first, each with the digest of its secret. A row
/// naming a role this build does not know is skipped with a warning rather than granting
/// anything.
async fn load(engine: &Engine) -> Result<Vec<(String, Issued)>> {
    let rows = sqlx::query(
        "SELECT id, secret_sha256, name, role, issued_at, issued_by, last_used_at
         FROM api_tokens ORDER BY issued_at, id",
    )
    .fetch_all(engine.pool())
    .await?;
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.get(0);
        let role: String = row.get(3);
        let Some(role) = role_named(&role) else {
            tracing::warn!(token_id = %id, role = %role, "a kept token names an unknown role; it is not restored");
            continue;
        };
        let issued_at: String = row.get(4);
        let last_used_at: Option<String> = row.get(6);
        kept.push((
            row.get(1),
            Issued {
                principal: Principal {
                    id,
                    name: row.get(2),
                    role,
                },
                issued_at: parse_ts(&issued_at).unwrap_or_else(Utc::now),
                issued_by: row.get(5),
                last_used_at: last_used_at.as_deref().and_then(parse_ts),
                kept: true,
                used_unsaved: false,
            },
        ));
    }
    Ok(kept)
}

/// Loads the kept tokens into `tokens`; returns how many.
pub async fn restore(engine: &Engine, tokens: &Tokens) -> Result<usize> {
    let kept = load(engine).await?;
    let restored = kept.len();
    for (digest, issued) in kept {
        tokens.restore(digest, issued);
    }
    Ok(restored)
}

/// The tokens kept in the state file, as admins see them (`concord tokens list`).
pub async fn kept(engine: &Engine) -> Result<Vec<TokenInfo>> {
    Ok(load(engine).await?.iter().map(|(_, i)| i.info()).collect())
}

/// Keeps the token with this id (just issued) in the state file, with its audit entry, in one
/// transaction. Until this commits, the token is not handed out.
pub async fn keep(engine: &Engine, tokens: &Tokens, id: &str, audit: &AuditEntry) -> Result<()> {
    let Some((digest, issued)) = tokens.keep(id) else {
        return Ok(());
    };
    let _guard = engine.inner.write_lock.lock().await;
    let mut tx = store::begin_write(engine.pool()).await?;
    sqlx::query(
        "INSERT INTO api_tokens (id, secret_sha256, name, role, issued_at, issued_by)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&issued.principal.id)
    .bind(&digest)
    .bind(&issued.principal.name)
    .bind(issued.principal.role.as_str())
    .bind(ts(issued.issued_at))
    .bind(&issued.issued_by)
    .execute(&mut *tx)
    .await?;
    store::insert_audit(&mut tx, std::slice::from_ref(audit), engine.now()).await?;
    Ok(tx.commit().await?)
}

/// Deletes a revoked token from the state file, with its audit entry, in one transaction.
pub async fn forget(engine: &Engine, id: &str, audit: &AuditEntry) -> Result<()> {
    let _guard = engine.inner.write_lock.lock().await;
    let mut tx = store::begin_write(engine.pool()).await?;
    sqlx::query("DELETE FROM api_tokens WHERE id = ?")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    store::insert_audit(&mut tx, std::slice::from_ref(audit), engine.now()).await?;
    Ok(tx.commit().await?)
}

/// Writes when kept tokens were last used, for those used since the last time. Called now and
/// then by the console, not per request, so an authenticated read never waits on a write.
pub async fn save_uses(engine: &Engine, tokens: &Tokens) -> Result<usize> {
    let uses = tokens.take_unsaved_uses();
    if uses.is_empty() {
        return Ok(0);
    }
    let _guard = engine.inner.write_lock.lock().await;
    let mut tx = store::begin_write(engine.pool()).await?;
    for (id, at) in &uses {
        sqlx::query("UPDATE api_tokens SET last_used_at = ? WHERE id = ?")
            .bind(ts(*at))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(uses.len())
}
