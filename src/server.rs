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

/// Why a webhook was turned away at the door (before anything is parsed or stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Not JSON: 415. Cross-site "simple" requests (text/plain, forms) end here.
    NotJson,
    /// Unknown system, or one without an inbound channel: 404, the same answer for both.
    NoChannel,
    /// Missing or wrong bearer secret: 401.
    Unverified,
    /// Missing or wrong signature, or a timestamp outside the window: 401.
    BadSignature,
}

/// What the door remembers between requests: refusals not yet written to the counters table,
/// and when it last warned about each system (log lines are rate-limited).
#[derive(Default)]
struct Door {
    pending: std::sync::atomic::AtomicI64,
    flushing: std::sync::atomic::AtomicBool,
    warned: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

/// At most one warning per system (and one for all unknown systems) in this window.
const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Where refusals not yet counted are kept until written: one write a second at most, so a
/// flood of forged webhooks cannot keep the SQLite writer busy.
const COUNT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Clone)]
struct HookState {
    engine: Engine,
    door: std::sync::Arc<Door>,
}

impl HookState {
    /// Counts the refusal, logs it (rate-limited), and answers.
    fn refuse(&self, system: &str, known: bool, why: Refusal, reason: &str) -> ApiError {
        self.count();
        self.warn(system, known, why, reason);
        match why {
            Refusal::NotJson => ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "webhooks are JSON: send Content-Type: application/json".into(),
            ),
            Refusal::NoChannel => not_found(system),
            Refusal::Unverified => {
                ApiError(StatusCode::UNAUTHORIZED, "unauthorized", reason.into())
            }
            Refusal::BadSignature => {
                ApiError(StatusCode::UNAUTHORIZED, "bad_signature", reason.into())
            }
        }
    }

    fn count(&self) {
        use std::sync::atomic::Ordering;
        self.door.pending.fetch_add(1, Ordering::SeqCst);
        if self.door.flushing.swap(true, Ordering::SeqCst) {
            return;
        }
        let door = self.door.clone();
        let pool = self.engine.pool().clone();
        tokio::spawn(async move {
            loop {
                let n = door.pending.swap(0, Ordering::SeqCst);
                if n > 0 {
                    let written = match pool.acquire().await {
                        Ok(mut conn) => crate::store::bump(&mut conn, "webhooks_refused", n).await,
                        Err(e) => Err(e.into()),
                    };
                    if let Err(e) = written {
                        door.pending.fetch_add(n, Ordering::SeqCst);
                        tracing::warn!(error = %e, "could not count refused webhooks");
                    }
                    tokio::time::sleep(COUNT_EVERY).await;
                    continue;
                }
                door.flushing.store(false, Ordering::SeqCst);
                // A refusal that came in after the swap and saw the flag still set is ours.
                if door.pending.load(Ordering::SeqCst) == 0
                    || door.flushing.swap(true, Ordering::SeqCst)
                {
                    return;
                }
            }
        });
    }

    fn warn(&self, system: &str, known: bool, why: Refusal, reason: &str) {
        // Unknown ids are attacker's text: they share one slot and are logged escaped.
        let key = if known { system } else { "" };
        let suppressed = {
            let mut warned = self.door.warned.lock().unwrap_or_else(|p| p.into_inner());
            let now = std::time::Instant::now();
            match warned.get_mut(key) {
                Some((last, skipped)) if now.duration_since(*last) < WARN_EVERY => {
                    *skipped += 1;
                    return;
                }
                Some((last, skipped)) => {
                    *last = now;
                    std::mem::take(skipped)
                }
                None => {
                    warned.insert(key.to_owned(), (now, 0));
                    0
                }
            }
        };
        if known {
            tracing::warn!(system = %system, refusal = ?why, reason = %reason, suppressed,
                "refused a webhook");
        } else {
            tracing::warn!(system = ?system, refusal = ?why, reason = %reason, suppressed,
                "refused a webhook");
        }
    }
}

fn not_found(system: &str) -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("system '{system}' not found"),
    )
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`,
/// parameters such as `charset` allowed).
pub fn is_json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.len() > "+json".len() && sub.ends_with("+json"))
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&[u8]> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at(value.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| token.trim_ascii())
        .filter(|t| !t.is_empty())
}

async fn receive_hook(
    State(state): State<HookState>,
    Path(system): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let engine = &state.engine;
    let workspace = engine.workspace();
    let config = workspace.system(&system);
    let known = config.is_some();
    // Checked before anything else: no simple cross-site request can deliver an event.
    if !is_json_content_type(&headers) {
        return Err(state.refuse(
            &system,
            known,
            Refusal::NotJson,
            "the body is not declared as JSON",
        ));
    }
    let Some(config) = config else {
        return Err(state.refuse(&system, false, Refusal::NoChannel, "unknown system"));
    };
    let bearer_secret = config.webhook_secret.as_deref();
    let offered = bearer_token(&headers);
    let events = match (bearer_secret, offered) {
        // Concord's own event format, only with the system's bearer secret.
        (Some(name), Some(token)) => {
            let secret = match engine.inner.secrets.get(name) {
                Ok(s) => s,
                // Our side cannot verify (the keychain is locked, or the secret was never
                // stored): a 503, so the sender keeps the event and tries again, where a 401
                // would have it dropped.
                Err(e) => {
                    tracing::error!(system = %system, error = %e,
                        "the system's webhook secret is unavailable; its webhooks wait");
                    return Err(ApiError(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "keychain_unavailable",
                        "the webhook cannot be verified now; try again later".into(),
                    ));
                }
            };
            if !crate::secrets::constant_time_eq(token, &secret) {
                return Err(state.refuse(
                    &system,
                    true,
                    Refusal::Unverified,
                    "the webhook's bearer token is wrong",
                ));
            }
            parse_concord_events(&system, &body)?
        }
        _ => match engine
            .connector(&system)
            .map(|c| c.parse_webhook(&headers, &body, engine.now()))
        {
            // The system's own webhook format, verified by its signature.
            Some(Ok(events)) => events,
            Some(Err(WebhookError::Unauthorized(m))) => {
                return Err(state.refuse(&system, true, Refusal::BadSignature, &m));
            }
            Some(Err(WebhookError::Malformed(m))) => {
                return Err(ApiError(StatusCode::BAD_REQUEST, "malformed_payload", m));
            }
            Some(Err(WebhookError::NotSupported(_))) | None => {
                return Err(if bearer_secret.is_some() {
                    state.refuse(
                        &system,
                        true,
                        Refusal::Unverified,
                        "the webhook carries no bearer token",
                    )
                } else {
                    // No inbound channel: answered exactly like an unknown system.
                    state.refuse(
                        &system,
                        true,
                        Refusal::NoChannel,
                        "the system has no inbound channel (no webhook secret, no signed webhooks)",
                    )
                });
            }
        },
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

/// Parses a body in Concord's own event format (one event, or `{"events": [...]}`) into the
/// events of `system`. Refuses (400) anything else; never panics.
pub fn parse_concord_events(system: &str, body: &[u8]) -> Result<Vec<ChangeEvent>, ApiError> {
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
        .with_state(HookState {
            engine,
            door: std::sync::Arc::new(Door::default()),
        })
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
    let timeouts = engine.inner.settings.http;
    let task = tokio::spawn(serve(listener, router(engine), timeouts, cancel));
    Ok((addr, task))
}

/// How long the HTTP server waits for a client before it closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// To receive a request's line and headers; also how long a kept-alive connection may
    /// wait for its next request.
    pub header: std::time::Duration,
    /// To receive a whole request body (answered 408, and the connection closed).
    pub body: std::time::Duration,
    /// Without a byte read or written, in any phase.
    pub idle: std::time::Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            header: std::time::Duration::from_secs(10),
            body: std::time::Duration::from_secs(30),
            idle: std::time::Duration::from_secs(60),
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1) with `timeouts` until `cancel` fires, then lets
/// requests in flight finish (for at most the body timeout).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    timeouts: HttpTimeouts,
    cancel: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let app = app.layer(axum::middleware::from_fn_with_state(
        timeouts,
        read_body_in_time,
    ));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(timeouts.header)
        .keep_alive(true);
    loop {
        let (stream, _) = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let io = hyper_util::rt::TokioIo::new(IdleLimit::new(stream, timeouts.idle));
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            // A client that is too slow or goes away ends here; nothing to report.
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(timeouts.body, graceful.shutdown()).await;
    Ok(())
}

/// Reads the whole request body within the body timeout (and the size limit) before the
/// route sees it: a client that sends its body slowly is answered 408 and disconnected.
async fn read_body_in_time(
    State(timeouts): State<HttpTimeouts>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeouts.body, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(bytes)) => {
            next.run(axum::extract::Request::from_parts(
                parts,
                axum::body::Body::from(bytes),
            ))
            .await
        }
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.into_inner().is::<http_body_util::LengthLimitError>();
            let mut response = if too_large {
                ApiError(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {MAX_BODY} bytes"),
                )
                .into_response()
            } else {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "the body could not be read".into(),
                )
                .into_response()
            };
            close(&mut response);
            response
        }
        Err(_) => {
            let mut response = ApiError(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the body did not arrive within {} s",
                    timeouts.body.as_secs_f64()
                ),
            )
            .into_response();
            close(&mut response);
            response
        }
    }
}

fn close(response: &mut Response) {
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
}

/// A connection that fails once nothing was read or written on it for `idle`.
struct IdleLimit {
    stream: tokio::net::TcpStream,
    idle: std::time::Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl IdleLimit {
    fn new(stream: tokio::net::TcpStream, idle: std::time::Duration) -> Self {
        Self {
            stream,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
        }
    }

    /// After progress: the clock starts again. While waiting: an error once it ran out.
    fn check<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        use std::task::Poll;
        match polled {
            Poll::Ready(r) => {
                let next = tokio::time::Instant::now() + self.idle;
                self.deadline.as_mut().reset(next);
                Poll::Ready(r)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the connection was idle too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl tokio::io::AsyncRead for IdleLimit {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.stream).poll_read(cx, buf);
        this.check(cx, polled)
    }
}

impl tokio::io::AsyncWrite for IdleLimit {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.stream).poll_write(cx, buf);
        this.check(cx, polled)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.stream).poll_flush(cx);
        this.check(cx, polled)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Webhooks, the console API, and (when `ui_dir` holds a built UI) the UI itself, on one router.
pub fn app(console: crate::api::Console, ui_dir: Option<&std::path::Path>) -> Router {
    let mut app = router(console.engine.clone()).merge(crate::api::router(console));
    if let Some(dir) = ui_dir.filter(|d| d.join("index.html").exists()) {
        app = app.merge(crate::ui_assets::router(dir));
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
    token_uses: tokio::task::JoinHandle<()>,
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
        // Tokens' last uses are written before the engine lets go of the state file.
        let _ = tokio::time::timeout(grace, &mut self.token_uses).await;
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

/// Writes when kept tokens were last used, once a minute and when the console stops.
async fn save_token_uses(
    engine: crate::runtime::Engine,
    tokens: std::sync::Arc<crate::api::auth::Tokens>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            () = cancel.cancelled() => true,
            _ = tick.tick() => false,
        };
        if let Err(e) = crate::api::token_store::save_uses(&engine, &tokens).await {
            tracing::warn!(error = %e, "could not write when tokens were last used");
        }
        if stopping {
            break;
        }
    }
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
    let kept = crate::api::token_store::restore(&engine, &tokens)
        .await
        .map_err(std::io::Error::other)?;
    if kept > 0 {
        tracing::info!(
            tokens = kept,
            "restored the tokens issued through the console"
        );
    }
    let admin_token = tokens.issue(Principal::new("local-admin", Role::Admin));
    let console = crate::api::Console {
        engine,
        tokens,
        secrets,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let timeouts = console.engine.inner.settings.http;
    let token_uses = tokio::spawn(save_token_uses(
        console.engine.clone(),
        console.tokens.clone(),
        cancel.clone(),
    ));
    let app = app(console, ui_dir);
    let server = tokio::spawn(serve(listener, app, timeouts, cancel.clone()));
    Ok(LaunchedConsole {
        addr,
        admin_token,
        cancel,
        engine: None,
        server,
        token_uses,
    })
}
