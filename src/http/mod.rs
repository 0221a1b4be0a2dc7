//! The HTTP layer: an axum router over [`App`], and the server loop with graceful shutdown.
//!
//! Handlers are thin: they parse the request into domain terms, call the application, and map
//! the answer to a response. Feed paths are parsed by a pure function ([`crate::routes::parse_path`])
//! rather than a tree of axum routes, so a wrong path gets a 404 that says what exists (or a 301
//! to the one spelling of the feed it meant), and the parser is unit-tested without a server.
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
use tokio::net::TcpListener;

use crate::app::App;
use edge::{Admitted, Registry};
use handoff::Worker;
pub use response::private_no_store;
pub use state::{BAD_HOST, HttpState, Peer, State, state};

pub mod api;
pub mod auth;
pub mod conditional;
pub mod edge;
pub mod error;
pub mod fast;
pub mod feeds;
pub mod handoff;
pub mod ops;
pub mod pages;
pub mod request;
pub mod response;
pub mod sources;
pub mod state;
pub mod stats;
pub mod websub;

/// Routes other than feeds and pages: the API and operations. Everything else falls back to
/// [`feeds::serve`].
pub fn router(state: State) -> Router {
    Router::new()
        .merge(ops::router())
        .merge(stats::router())
        .merge(sources::router())
        .merge(websub::router())
        .merge(api::router())
        .fallback(feeds::serve)
        .with_state(state)
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

/// Fails when another socket already listens on `addr`.
///
/// `SO_REUSEPORT` lets any process of the same user join a listening port and take a share of its
/// connections, so a second `bantin serve` on the same address would start silently and serve
/// from its own store. A probe socket *without* `SO_REUSEPORT` cannot bind a port someone listens
/// on, whatever options they set: binding it first tells us, before our own sockets join.
pub fn ensure_address_free(addr: std::net::SocketAddr) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // SO_REUSEADDR only lets the probe past connections in TIME_WAIT, never past a listener.
    probe.set_reuseaddr(true)?;
    probe.bind(addr).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another process is already listening on {addr}"),
            )
        } else {
            e
        }
    })
}

/// The soft limit on open files, if the platform says.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a plain libc call on a valid struct.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
            return Some(lim.rlim_cur);
        }
    }
    None
}

/// How the open-file limit is shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// Open connections at most, all workers together.
    pub connections: usize,
    /// Cached feeds held in memfds at most (beyond it, bodies stay on the heap).
    pub memfds: usize,
}

/// Shares the open-file limit between connections, the cache's memfds (at most a quarter, and no
/// more than the cache can hold: `cache_files`), the store's connections (`store_files`: its
/// pools are bounded, so this is their most, see [`crate::store::pool`]) and a reserve for
/// everything else (listening sockets, logs, outbound HTTP, connections being shed), so
/// accepting never fails for want of a descriptor. The connection cap is the configured maximum
/// or what is left, whichever is smaller.
pub fn fd_budget(
    configured: usize,
    file_limit: Option<u64>,
    cache_files: u64,
    store_files: u64,
    workers: usize,
) -> FdBudget {
    let Some(limit) = file_limit else {
        return FdBudget {
            connections: configured.max(1),
            memfds: cache_files as usize,
        };
    };
    let memfds = cache_files.min(limit / 4);
    // Each worker may briefly hold `MAX_PENDING_SHEDS` shed connections beyond its share.
    let shedding = (workers * edge::MAX_PENDING_SHEDS) as u64;
    let reserve = (limit / 8).min(512) + shedding.min(limit / 8);
    let left = limit.saturating_sub(memfds + store_files + reserve);
    FdBudget {
        connections: (configured as u64).min(left).max(1) as usize,
        memfds: memfds as usize,
    }
}

/// One HTTP worker: a thread with its own single-threaded runtime, accepting from its listening
/// socket and serving its connections itself until `stop`, then waiting (up to 30 s) for requests
/// in flight.
async fn worker(
    listener: std::net::TcpListener,
    app: Arc<App>,
    hub: crate::hub::Hub,
    cap: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let state = state(app, hub);
    let metrics = state.app.metrics().clone();
    let worker = Worker {
        router: router(state.clone()),
        state,
    };
    let registry = Registry::new(cap);
    // This thread's readership counters are handed over by a task of its own.
    let counting = worker.state.app.readership().clone();
    let worker_id = counting.register_worker();
    tokio::task::spawn_local(counting.clone().worker(worker_id));
    let mut connections = tokio::task::JoinSet::new();
    let mut reported = edge::Stats::default();
    // References to entries that went stale are dropped every second even when nobody asks for
    // them, so a worker never keeps an invalidated body alive for long.
    let mut purge = tokio::time::interval(std::time::Duration::from_secs(1));
    purge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The fast path's read deadlines, enforced here rather than by a timer per request.
    let limits = worker.state.limits;
    let mut sweep = tokio::time::interval(edge::sweep_period(&limits));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let (stream, _) = tokio::select! {
            _ = purge.tick() => {
                worker.state.app.cache().purge_hot();
                continue;
            }
            now = sweep.tick() => {
                registry.borrow().sweep(now, &limits);
                continue;
            }
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
        let admitted = Registry::admit(&registry);
        {
            let r = registry.borrow();
            metrics
                .connections_shed
                .inc_by(r.stats.shed - reported.shed);
            metrics
                .connections_refused
                .inc_by(r.stats.refused - reported.refused);
            reported = r.stats;
        }
        let Some(conn) = admitted else {
            // Every connection is busy with a request: the newcomer is refused (closed at once).
            continue;
        };
        // Responses are written whole, so there is nothing for Nagle's algorithm to coalesce; it
        // would only delay the last segment.
        let _ = stream.set_nodelay(true);
        let open = metrics.connections_open.clone();
        open.inc();
        let serve = fast::serve_connection(stream, worker.clone(), Admitted(conn), stop.clone());
        connections.spawn_local(async move {
            serve.await;
            open.dec();
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    // Idle fast-path connections end now, busy ones after their answer; hyper's shut down
    // gracefully on `stop`.
    registry.borrow_mut().stop();
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(30), drained)
        .await
        .is_err()
    {
        tracing::warn!("connections still open 30 s after shutdown began; closing them");
    }
    counting.finish_worker(worker_id).await;
    Ok(())
}

/// Serves on [`ServerConfig::workers`] worker threads until `shutdown` resolves, then every
/// worker stops accepting and lets its in-flight requests finish.
///
/// [`ServerConfig::workers`]: crate::config::ServerConfig::workers
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    hub: crate::hub::Hub,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let addr = listener.local_addr()?;
    let workers = app.config().server.workers;
    let yield_us = app.config().server.yield_us;
    let store_files = app.store().max_descriptors() as u64;
    let budget = fd_budget(
        app.config().server.max_connections,
        open_file_limit(),
        crate::cache::FeedCache::max_files(app.config().cache.max_bytes),
        store_files,
        workers,
    );
    crate::render::set_memfile_limit(budget.memfds);
    let cap = budget.connections;
    tracing::info!(
        connection_cap = cap,
        memfd_cap = budget.memfds,
        store_files,
        file_limit = open_file_limit(),
        workers,
        "connection cap set below the open-file limit"
    );
    let mut first = Some(listener.into_std()?);
    let mut threads = Vec::new();
    for i in 0..workers {
        // Each worker gets its own socket on the same port (SO_REUSEPORT), so the kernel spreads
        // connections evenly; sharing one socket, whichever worker woke first took them all.
        let listener = match first.take() {
            Some(l) => l,
            None => bind(addr)?.into_std()?,
        };
        let app = app.clone();
        let hub = hub.clone();
        let stop = stop_rx.clone();
        let share = cap.div_ceil(workers);
        let thread = std::thread::Builder::new()
            .name(format!("bantin-http-{i}"))
            .spawn(move || {
                edge::init_quantum(yield_us);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .on_thread_park(edge::parked)
                    .on_thread_unpark(edge::unparked)
                    .build()?;
                tokio::task::LocalSet::new().block_on(&rt, worker(listener, app, hub, share, stop))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_file_limit() {
        let b = fd_budget(10_000, Some(1_048_576), 4096, 12, 2);
        assert_eq!(
            b,
            FdBudget {
                connections: 10_000,
                memfds: 4096
            }
        );
        let b = fd_budget(100_000, Some(20_000), 4096, 12, 2);
        assert_eq!(b.memfds, 4096);
        assert_eq!(b.connections, 20_000 - 4096 - 12 - 512 - 2 * 64);
        let b = fd_budget(10_000, Some(1024), 4096, 12, 2);
        assert_eq!(b.memfds, 256, "memfds take a quarter at most");
        assert_eq!(b.connections, 1024 - 256 - 12 - 128 - 128);
        assert!(b.connections + b.memfds + 12 + 2 * edge::MAX_PENDING_SHEDS < 1024);
        assert_eq!(fd_budget(500, None, 4096, 12, 2).connections, 500);
    }

    #[test]
    fn the_store_s_pools_are_reserved_in_full() {
        // Two workers: SQLite holds at most 4 readers and the writer (12 descriptors).
        let store = crate::store::pool::PoolBounds::for_workers(2).sqlite_descriptors() as u64;
        let without = fd_budget(10_000, Some(1024), 4096, 0, 2);
        let with = fd_budget(10_000, Some(1024), 4096, store, 2);
        assert_eq!(without.connections - with.connections, store as usize);
        // A tiny limit still leaves one connection rather than none.
        assert_eq!(fd_budget(10_000, Some(64), 0, 1000, 2).connections, 1);
    }
}
