//! Serving the built console UI: files from `ui/dist`, the compressed copy the build made
//! beside each (`.br`, `.gz`) when the browser takes it, and cache headers that fit each kind
//! of file. Asset names carry a hash of their content, so an asset never changes under its name
//! and is cached for a year; `index.html` names the current assets and is revalidated on every
//! load, so a new build is picked up at once. Any other path is the single-page app's route
//! and answers with `index.html`.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tower_http::services::{ServeDir, ServeFile};

/// For content-hashed assets: a year, never revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// For `index.html` and other unhashed files: always asked again (a 304 when unchanged).
const REVALIDATE: &str = "no-cache";

/// The UI in `dir` (holding `index.html` and `assets/`), as a router for every path the API
/// and webhooks do not take.
pub fn router(dir: &std::path::Path) -> Router {
    let assets = ServeDir::new(dir.join("assets"))
        .precompressed_br()
        .precompressed_gzip();
    let pages = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .fallback(
            ServeFile::new(dir.join("index.html"))
                .precompressed_br()
                .precompressed_gzip(),
        );
    // A layer wraps what the router holds when it is added: each part gets its own.
    let pages = Router::new()
        .fallback_service(pages)
        .layer(axum::middleware::map_response(|r| cache(r, REVALIDATE)));
    Router::new()
        .nest_service("/assets", assets)
        .layer(axum::middleware::map_response(|r| cache(r, IMMUTABLE)))
        .merge(pages)
}

/// Sets `Cache-Control` on a successful answer (a 404 must not be cached for a year).
async fn cache(mut response: Response, policy: &'static str) -> Response {
    if response.status() == StatusCode::OK || response.status() == StatusCode::NOT_MODIFIED {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}
