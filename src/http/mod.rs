//! The HTTP layer: an axum router over [`App`], and the server loop with graceful shutdown.
//!
//! Handlers are thin: they parse the request into domain terms, call the application, and map
//! the answer to a response. Feed paths are parsed by a pure function ([`feeds::parse_path`])
//! rather than a tree of axum routes, so a wrong path gets a 404 that says what exists, and the
//! parser is unit-tested without a server.

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderValue;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::app::App;

pub mod api;
pub mod conditional;
pub mod error;
pub mod feeds;
pub mod ops;
pub mod pages;

/// Shared state of every handler.
pub struct HttpState {
    pub app: Arc<App>,
    /// `Cache-Control` for feeds, formatted once from the configuration.
    pub cache_control: HeaderValue,
}

pub type State = Arc<HttpState>;

pub fn router(app: Arc<App>) -> Router {
    let c = &app.config.cache;
    let cache_control = HeaderValue::from_str(&format!(
        "public, max-age={}, stale-while-revalidate={}, stale-if-error={}",
        c.max_age, c.stale_while_revalidate, c.stale_if_error
    ))
    .expect("numbers make a valid header");
    let state = Arc::new(HttpState { app, cache_control });
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(api::routes(&state))
        .fallback(feeds::serve)
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Responses are written whole (headers and a precompressed body in one writev), so there is
    // nothing for Nagle's algorithm to coalesce; it would only delay the last segment.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}
