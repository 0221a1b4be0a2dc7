//! The HTTP layer: an axum router over [`App`], and the server loop with graceful shutdown.
//!
//! Handlers are thin: they parse the request into domain terms, call the application, and map
//! the answer to a response. Feed paths are parsed by a pure function ([`feeds::parse_path`])
//! rather than a tree of axum routes, so a wrong path gets a 404 that says what exists, and the
//! parser is unit-tested without a server.
//!
//! Serving is thread-per-core, as nginx is: one single-threaded tokio runtime per worker thread,
//! each accepting from the same listening socket and keeping its connections to itself. Each
//! connection starts on the poll fast path ([`fast`]) and moves to hyper and the axum router at
//! its first request the fast path does not take. A cached
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
pub mod fast;
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

/// Builds the handler state. Each worker thread gets its own, so the reference count a request
/// bumps lives in memory only that thread writes.
pub fn state(app: Arc<App>) -> State {
    let c = &app.config.cache;
    // Leaked once per state (a few dozen bytes): a static header value is shared by every
    // response without a reference count.
    let text: &'static str = Box::leak(
        format!(
            "public, max-age={}, stale-while-revalidate={}, stale-if-error={}",
            c.max_age, c.stale_while_revalidate, c.stale_if_error
        )
        .into_boxed_str(),
    );
    Arc::new(HttpState {
        app,
        cache_control: HeaderValue::from_static(text),
    })
}

/// Routes other than feeds and pages: the API and operations. Everything else falls back to
/// [`feeds::serve`].
pub fn router(state: State) -> Router {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(api::routes(&state))
        .fallback(feeds::serve)
        .with_state(state)
}

/// One worker's request handler: cached feed hits are answered synchronously from the worker's
/// own copies (no task, no allocation beyond the response); everything else goes through the
/// axum router.
#[derive(Clone)]
struct Handler {
    state: State,
    router: Router,
}

type Answer = Result<axum::response::Response, std::convert::Infallible>;

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Handler {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::Either<
        std::future::Ready<Answer>,
        futures::future::BoxFuture<'static, Answer>,
    >;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        if let Some(resp) = feeds::hot(&self.state, req.method(), req.uri(), req.headers()) {
            return futures::future::Either::Left(std::future::ready(Ok(resp)));
        }
        let router = self.router.clone();
        futures::future::Either::Right(Box::pin(async move {
            use tower::ServiceExt;
            router.oneshot(req).await
        }))
    }
}

/// A listening socket with `SO_REUSEPORT` (where the platform has it), so each worker can bind
/// its own socket to the same address.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(all(
        unix,
        not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))
    ))]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
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

/// One HTTP worker: a thread with its own single-threaded runtime, accepting from the shared
/// listening socket and serving its connections itself until `stop`, then waiting (up to 30 s)
/// for requests in flight.
async fn worker(
    listener: std::net::TcpListener,
    app: Arc<App>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let state = state(app);
    let handler = Handler {
        router: router(state.clone()),
        state,
    };
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        // Responses are written whole, so there is nothing for Nagle's algorithm to coalesce; it
        // would only delay the last segment.
        let _ = stream.set_nodelay(true);
        connections.spawn_local(fast::serve_connection(
            stream,
            handler.clone(),
            stop.clone(),
        ));
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(30), drained)
        .await
        .is_err()
    {
        tracing::warn!("connections still open 30 s after shutdown began; closing them");
    }
    Ok(())
}

/// Serves on [`worker_count`] worker threads until `shutdown` resolves, then every worker stops
/// accepting and lets its in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let addr = listener.local_addr()?;
    let mut first = Some(listener.into_std()?);
    let mut threads = Vec::new();
    for i in 0..worker_count() {
        // Each worker gets its own socket on the same port (SO_REUSEPORT), so the kernel spreads
        // connections evenly; sharing one socket, whichever worker woke first took them all.
        let listener = match first.take() {
            Some(l) => l,
            None => bind(addr)?.into_std()?,
        };
        let app = app.clone();
        let stop = stop_rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("bantin-http-{i}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                tokio::task::LocalSet::new().block_on(&rt, worker(listener, app, stop))
            })?;
        threads.push(thread);
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    for t in threads {
        match tokio::task::spawn_blocking(move || t.join()).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => result = Err(e),
            _ => result = Err(std::io::Error::other("an HTTP worker panicked")),
        }
    }
    result
}
