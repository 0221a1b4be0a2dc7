//! WebSub publisher: after a write, tell the hubs which topics (feed URLs) changed.
//!
//! Writes never wait for hubs: topics go into an unbounded queue and a background task POSTs
//! `hub.mode=publish&hub.url=<topic>` (the form most hubs accept) to every hub. A failed ping is
//! retried with exponential backoff (1 s doubling to 5 min, for up to a day), per hub and topic, so
//! a dead hub neither delays a write nor loses a ping once it comes back. A topic already waiting
//! for a hub is not queued twice: one ping announces any number of changes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use url::Url;

use crate::metrics::{Metrics, ResultLabel};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);
const GIVE_UP_AFTER: Duration = Duration::from_secs(86_400);

/// Handle to the publisher task; cheap to clone.
#[derive(Clone)]
pub struct WebSub {
    tx: Option<mpsc::UnboundedSender<Vec<String>>>,
}

impl WebSub {
    /// A publisher that does nothing (no hubs configured).
    pub fn disabled() -> WebSub {
        WebSub { tx: None }
    }

    /// Starts the background task for `hubs`.
    pub fn start(hubs: Vec<Url>, metrics: Arc<Metrics>) -> WebSub {
        if hubs.is_empty() {
            return WebSub::disabled();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!(
                "bantin/",
                env!("CARGO_PKG_VERSION"),
                " (WebSub publisher)"
            ))
            .build()
            .expect("an HTTP client with default settings builds");
        tokio::spawn(run(hubs, client, rx, metrics));
        WebSub { tx: Some(tx) }
    }

    /// Queues publish pings for these topic URLs. Never blocks.
    pub fn publish(&self, topics: Vec<String>) {
        if let Some(tx) = &self.tx
            && !topics.is_empty()
        {
            let _ = tx.send(topics);
        }
    }
}

/// Installs rustls's ring provider as the process default (once; later calls are no-ops). reqwest
/// is built without a bundled provider so the build avoids aws-lc-sys's C compilation.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

struct Pending {
    due: Instant,
    delay: Duration,
    first_try: Instant,
}

async fn run(
    hubs: Vec<Url>,
    client: reqwest::Client,
    mut rx: mpsc::UnboundedReceiver<Vec<String>>,
    metrics: Arc<Metrics>,
) {
    // (hub index, topic) → retry state. A BTreeMap keeps the order stable for logs and tests.
    let mut pending: BTreeMap<(usize, String), Pending> = BTreeMap::new();
    loop {
        let next_due = pending.values().map(|p| p.due).min();
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(topics) => {
                    let now = Instant::now();
                    for topic in topics.into_iter().collect::<BTreeSet<_>>() {
                        for h in 0..hubs.len() {
                            pending.entry((h, topic.clone())).or_insert(Pending { due: now, delay: FIRST_RETRY, first_try: now });
                        }
                    }
                }
                None => return,
            },
            _ = sleep_until(next_due) => {}
        }
        let now = Instant::now();
        let due: Vec<(usize, String)> = pending
            .iter()
            .filter(|(_, p)| p.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for (h, topic) in due {
            let hub = &hubs[h];
            match ping(&client, hub, &topic).await {
                Ok(()) => {
                    metrics
                        .websub_pings
                        .get_or_create(&ResultLabel { result: "ok" })
                        .inc();
                    tracing::debug!(hub = %hub, topic, "WebSub publish ping accepted");
                    pending.remove(&(h, topic));
                }
                Err(e) => {
                    metrics
                        .websub_pings
                        .get_or_create(&ResultLabel { result: "error" })
                        .inc();
                    let p = pending
                        .get_mut(&(h, topic.clone()))
                        .expect("due entries are pending");
                    if p.first_try.elapsed() > GIVE_UP_AFTER {
                        tracing::error!(hub = %hub, topic, error = %e, "giving up on WebSub ping after a day");
                        pending.remove(&(h, topic));
                    } else {
                        tracing::warn!(hub = %hub, topic, error = %e, retry_in = ?p.delay, "WebSub ping failed; will retry");
                        p.due = Instant::now() + p.delay;
                        p.delay = (p.delay * 2).min(MAX_RETRY);
                    }
                }
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn ping(client: &reqwest::Client, hub: &Url, topic: &str) -> Result<(), String> {
    let body = format!("hub.mode=publish&hub.url={}", form_encode(topic));
    let resp = client
        .post(hub.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("hub answered {}", resp.status()))
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
