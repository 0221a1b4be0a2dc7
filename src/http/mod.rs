//! The HTTP layer: an axum router over [`App`], and the server loop with graceful shutdown.
//!
//! Handlers are thin: they parse the request into domain terms, call the application, and map
//! the answer to a response. Feed paths are parsed by a pure function ([`feeds::parse_path`])
//! rather than a tree of axum routes, so a wrong path gets a 404 that says what exists, and the
//! parser is unit-tested without a server.
//!
//! Serving is thread-per-core, as nginx is: one single-threaded tokio runtime per worker thread,
//! each accepting from the same listening socket and keeping its connections to itself. A cached
//! hit is a few microseconds of work; with a work-stealing runtime, waking idle workers to share
//! it cost more than the work (the profile was dominated by futex wake-ups and context switches).
//! State shared across workers (the cache, the store) is already thread-safe; rendering runs on
//! the blocking pool, so a miss never stalls a worker's other connections.

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

/// How many threads serve HTTP: `BANTIN_WORKERS`, or one per available core.
pub fn worker_count() -> usize {
    std::env::var("BANTIN_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

async fn serve_one(
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

/// Serves on this task's runtime plus `worker_count() - 1` threads of their own until `shutdown`
/// resolves, then every worker stops accepting and lets its in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let std_listener = listener.into_std()?;
    let mut threads = Vec::new();
    for i in 1..worker_count() {
        let listener = std_listener.try_clone()?;
        let app = app.clone();
        let mut stop = stop_rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("bantin-http-{i}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    serve_one(listener, app, async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await
                })
            })?;
        threads.push(thread);
    }
    let listener = TcpListener::from_std(std_listener)?;
    let result = serve_one(listener, app, async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    for t in threads {
        let joined = tokio::task::spawn_blocking(move || t.join()).await;
        if let Ok(Ok(Err(e))) = joined {
            tracing::error!(error = %e, "an HTTP worker failed");
        }
    }
    result
}
