//! Starting the service: open the store, bind, sync the article directory, wire the parts, and
//! run until shutdown. `main` and the integration tests both start bantin through [`start`], so
//! tests exercise exactly what production runs, on a real socket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::sources::import;
use crate::store::{self, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the store {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("BANTIN_BODY_DIR={dir}: cannot make an unlinked file there (O_TMPFILE): {source}")]
    BodyDir { dir: String, source: std::io::Error },
    #[error("cannot read the articles directory: {0}")]
    Import(#[from] import::ImportError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    /// The `[[sources]]` scheduler (`None` when none are configured).
    pub poller: Option<crate::sources::poller::Poller>,
    /// The built-in WebSub hub (disabled unless `[websub] builtin`).
    pub hub: crate::hub::Hub,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(poller) = self.poller.take() {
            poller.stop().await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let r = self
            .task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        // No write comes in any more: deliveries in flight finish, unsent claims go back.
        self.hub.stop().await;
        // The workers have handed over their last counts; write them before going.
        self.app.readership().shutdown().await;
        r
    }

    /// Waits until the server ends (after `signal` fires).
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        signal.await;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        if let Some(poller) = self.poller.take() {
            poller.stop().await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let r = self
            .task
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.hub.stop().await;
        self.app.readership().shutdown().await;
        r
    }
}

/// Opens the store, binds `config.listen`, syncs `config.articles_dir` and starts serving.
pub async fn start(config: Config) -> Result<Server, StartError> {
    start_with_clock(config, Arc::new(crate::clock::SystemClock)).await
}

/// [`start`], with readership days and the sources' schedule read from `clock` (tests script
/// days and polls with a manual clock).
pub async fn start_with_clock(
    mut config: Config,
    clock: Arc<dyn crate::clock::Clock>,
) -> Result<Server, StartError> {
    let started = Instant::now();
    if let Some(dir) = &config.server.body_dir {
        crate::render::set_body_dir(dir).map_err(|source| StartError::BodyDir {
            dir: dir.display().to_string(),
            source,
        })?;
        tracing::info!(dir = %dir.display(), "feed bodies in unlinked files of this directory");
    }
    // The store's pools follow the HTTP workers (readers ≤ 2 × workers), and the HTTP layer
    // reserves their descriptors below the file limit.
    let bounds = store::pool::PoolBounds::for_workers(config.server.workers);
    let store = store::backend::open_with(&config.database_url, bounds)
        .await
        .map_err(|source| StartError::Store {
            url: redact(&config.database_url),
            source,
        })?;
    let bind = |addr| {
        crate::http::ensure_address_free(addr)?;
        crate::http::bind(addr)
    };
    let listener = bind(config.listen).map_err(|source| StartError::Bind {
        addr: config.listen,
        source,
    })?;
    let addr = listener.local_addr()?;
    // The address as bound (port 0 becomes the real port): the upstream fetcher refuses it.
    config.listen = addr;
    if config.public_url.is_none() {
        let host = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        config.public_url =
            Some(url::Url::parse(&format!("http://{host}/")).expect("an address makes a URL"));
    }
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new());
    let outbox = Outbox::start(
        config.hubs.clone(),
        config.purge_urls.clone(),
        config.purge_kind,
        metrics.clone(),
    );
    let topics = Arc::new(if config.websub.builtin {
        crate::topics::ChangedTopics::new()
    } else {
        crate::topics::ChangedTopics::disabled()
    });
    let hub = crate::hub::Hub::new(
        config.clone(),
        store.clone(),
        metrics.clone(),
        clock.clone(),
        topics.clone(),
    );
    let app = Arc::new(
        App::new(config.clone(), store.clone(), outbox, metrics.clone())
            .with_clock(clock.clone())
            .with_topics(topics),
    );
    hub.start(&app);
    app.readership()
        .start(store.clone(), metrics)
        .await
        .map_err(|source| StartError::Store {
            url: redact(&config.database_url),
            source,
        })?;

    if let Some(dir) = &config.articles_dir {
        let files = import::collect_files(std::slice::from_ref(dir))?;
        let report = import::import(&app, &files, false).await?;
        for r in &report.rejected {
            tracing::warn!(%r, "article not loaded");
        }
        tracing::info!(dir = %dir.display(), files = files.len(), %report, "synced the articles directory");
    }

    let poller = crate::sources::poller::Poller::spawn(app.clone(), clock.clone());

    if let Some(mut changes) = store.changes() {
        let app = app.clone();
        tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                app.apply_change(change);
            }
        });
    }

    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(crate::http::serve(
        listener,
        app.clone(),
        hub.clone(),
        async {
            let _ = rx.await;
        },
    ));
    tracing::info!(
        %addr,
        public_url = %config.public_base(),
        store = store.backend(),
        startup_ms = started.elapsed().as_millis() as u64,
        "bantin listening"
    );
    Ok(Server {
        addr,
        app,
        poller,
        hub,
        shutdown: Some(tx),
        task,
    })
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}
