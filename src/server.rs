//! The engine's HTTP server: webhooks from connected systems arrive at `/hooks/{system}`.
//! An event is acknowledged (202) only after it is stored in the inbox; anything malformed
//! is refused with a `{code, message}` body and nothing is stored.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::connector::WebhookError;
use crate::error::EngineError;
use crate::model::{ChangeEvent, ChangeOp, SourceVersion};
use crate::runtime::{Engine, IngestOutcome};

/// Largest webhook body accepted.
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// A change event as a system posts it (the system comes from the URL).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookEvent {
    pub object: String,
    pub external_id: String,
    pub op: ChangeOp,
    #[serde(default)]
    pub record: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub version: Option<SourceVersion>,
    /// The record's concurrency token (ETag or version value), sent back as `If-Match`.
    #[serde(default)]
    pub etag: Option<String>,
    #[serde(default)]
    pub source_ts: Option<chrono::DateTime<chrono::Utc>>,
    pub event_key: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum HookBody {
    Many { events: Vec<HookEvent> },
    One(HookEvent),
}

/// `{code, message}` with a status.
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "code": self.1, "message": self.2 }))).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::NotFound(_) => StatusCode::NOT_FOUND,
            EngineError::Invalid(_) | EngineError::Config(_) => StatusCode::UNPROCESSABLE_ENTITY,
            EngineError::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "request failed");
            return Self(
                status,
                e.code(),
                "internal error; see the engine log".into(),
            );
        }
        Self(status, e.code(), e.to_string())
    }
}

async fn receive_hook(
    State(engine): State<Engine>,
    Path(system): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    if engine.workspace().system(&system).is_none() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("system '{system}' not found"),
        ));
    }
    let connector = engine.connector(&system);
    let events = match connector
        .as_ref()
        .map(|c| c.parse_webhook(&headers, &body, engine.now()))
    {
        // The system's own webhook format, verified by its signature.
        Some(Ok(events)) => events,
        Some(Err(WebhookError::Unauthorized(m))) => {
            tracing::warn!(system, reason = %m, "refused an unverified webhook");
            return Err(ApiError(StatusCode::UNAUTHORIZED, "bad_signature", m));
        }
        Some(Err(WebhookError::Malformed(m))) => {
            return Err(ApiError(StatusCode::BAD_REQUEST, "malformed_payload", m));
        }
        // Concord's own event format, for systems without a webhook config.
        Some(Err(WebhookError::NotSupported(_))) | None => parse_concord_events(&system, &body)?,
    };
    let outcomes = engine.ingest_many(&events).await?;
    let duplicates = outcomes
        .iter()
        .filter(|o| matches!(o, IngestOutcome::Duplicate(_)))
        .count();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": outcomes.len() - duplicates, "duplicates": duplicates })),
    ))
}

fn parse_concord_events(system: &str, body: &[u8]) -> Result<Vec<ChangeEvent>, ApiError> {
    let parsed: HookBody = serde_json::from_slice(body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "malformed_payload",
            format!("the webhook body is not a valid event: {e}"),
        )
    })?;
    let events = match parsed {
        HookBody::Many { events } => events,
        HookBody::One(e) => vec![e],
    };
    Ok(events
        .into_iter()
        .map(|e| ChangeEvent {
            system: system.to_owned(),
            object: e.object,
            external_id: e.external_id,
            op: e.op,
            record: e.record,
            version: e.version,
            etag: e.etag,
            source_ts: e.source_ts,
            event_key: e.event_key,
        })
        .collect())
}

/// The router for webhooks; the console API mounts beside it.
pub fn router(engine: Engine) -> Router {
    Router::new()
        .route("/hooks/{system}", post(receive_hook))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(engine)
}

/// Serves the engine's HTTP routes on 127.0.0.1:`port` (0 picks one) until `cancel` fires.
/// Returns the bound address and the server task.
pub async fn spawn_loopback(
    engine: Engine,
    port: u16,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<(
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        axum::serve(listener, router(engine))
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await
    });
    Ok((addr, task))
}

/// Webhooks, the console API, and (when `ui_dir` holds a built UI) the UI itself, on one router.
pub fn app(console: crate::api::Console, ui_dir: Option<&std::path::Path>) -> Router {
    let mut app = router(console.engine.clone()).merge(crate::api::router(console));
    if let Some(dir) = ui_dir.filter(|d| d.join("index.html").exists()) {
        let index = dir.join("index.html");
        app = app.fallback_service(
            tower_http::services::ServeDir::new(dir)
                .fallback(tower_http::services::ServeFile::new(index)),
        );
    }
    app
}

/// A running console: the engine's loops and the HTTP server (API, UI, webhooks) on loopback.
pub struct LaunchedConsole {
    pub addr: std::net::SocketAddr,
    /// This launch's admin token; the UI receives it in the URL fragment or from the shell.
    pub admin_token: String,
    cancel: tokio_util::sync::CancellationToken,
    engine: Option<crate::runtime::RunningEngine>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LaunchedConsole {
    /// The address to open in a browser, with the admin token in the fragment (never sent to
    /// the server in request lines or logs).
    pub fn url(&self) -> String {
        format!("http://{}/#token={}", self.addr, self.admin_token)
    }

    /// Stops the server and the engine, waiting at most `grace` for work in flight.
    pub async fn shutdown(mut self, grace: std::time::Duration) {
        self.cancel.cancel();
        if let Some(engine) = self.engine.take() {
            engine.shutdown(grace).await;
        }
        let _ = tokio::time::timeout(grace, &mut self.server).await;
    }
}

/// Starts `engine` and serves its console on 127.0.0.1:`port` (0 picks one).
pub async fn launch_console(
    engine: Engine,
    port: u16,
    ui_dir: Option<&std::path::Path>,
    secrets: crate::secrets::SharedSecrets,
) -> std::io::Result<LaunchedConsole> {
    let mut console = serve_console(engine.clone(), port, ui_dir, secrets).await?;
    console.engine = Some(engine.start(console.cancel.clone()));
    Ok(console)
}

/// Serves the console of an engine that is already running (its loops started elsewhere).
pub async fn serve_console(
    engine: Engine,
    port: u16,
    ui_dir: Option<&std::path::Path>,
    secrets: crate::secrets::SharedSecrets,
) -> std::io::Result<LaunchedConsole> {
    use crate::api::auth::{Principal, Role, Tokens};
    let tokens = std::sync::Arc::new(Tokens::default());
    let admin_token = tokens.issue(Principal::new("local-admin", Role::Admin));
    let console = crate::api::Console {
        engine,
        tokens,
        secrets,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let app = app(console, ui_dir);
    let token = cancel.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    });
    Ok(LaunchedConsole {
        addr,
        admin_token,
        cancel,
        engine: None,
        server,
    })
}
