//! WebSub publisher: after a write, tell the hubs which topics (feed URLs) changed.
//!
//! Writes never wait for hubs: [`WebSub::publish`] only records the topics in each hub's own
//! queue and wakes that hub's task. Each hub has its own task, so a dead or slow hub delays only
//! itself; a task keeps a few pings in flight at once, each bounded by the client's timeout, and
//! POSTs `hub.mode=publish&hub.url=<topic>` (the form most hubs accept). A failed ping is retried
//! with exponential backoff (1 s doubling to 5 min, for up to a day). A topic already waiting for
//! a hub is not queued twice (one ping announces any number of changes), so a queue holds at most
//! one entry per feed URL, and a hard bound guards even that.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::Notify;
use tokio::time::Instant;
use url::Url;

use crate::metrics::{Metrics, ResultLabel};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);
const GIVE_UP_AFTER: Duration = Duration::from_secs(86_400);
/// Pings in flight to one hub at once.
const IN_FLIGHT: usize = 4;
/// Topics waiting for one hub at most; beyond it new topics are dropped (and logged).
const MAX_PENDING: usize = 100_000;
/// One ping's deadline: a hub that hangs is a failed ping, retried later.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Handle to the publisher tasks; cheap to clone.
#[derive(Clone, Default)]
pub struct WebSub {
    hubs: Vec<Arc<Hub>>,
}

/// One hub: its queue of topics and the task that drains it.
struct Hub {
    url: Url,
    queue: Mutex<BTreeMap<String, Job>>,
    wake: Notify,
}

/// A topic waiting for one hub.
struct Job {
    due: Instant,
    delay: Duration,
    first_try: Instant,
    in_flight: bool,
    /// Changed again while a ping was in flight: ping once more after it.
    again: bool,
}

impl WebSub {
    /// A publisher that does nothing (no hubs configured).
    pub fn disabled() -> WebSub {
        WebSub::default()
    }

    /// Starts one background task per hub.
    pub fn start(hubs: Vec<Url>, metrics: Arc<Metrics>) -> WebSub {
        if hubs.is_empty() {
            return WebSub::disabled();
        }
        install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(PING_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!(
                "bantin/",
                env!("CARGO_PKG_VERSION"),
                " (WebSub publisher)"
            ))
            .build()
            .expect("an HTTP client with default settings builds");
        let hubs: Vec<Arc<Hub>> = hubs
            .into_iter()
            .map(|url| {
                Arc::new(Hub {
                    url,
                    queue: Mutex::new(BTreeMap::new()),
                    wake: Notify::new(),
                })
            })
            .collect();
        for hub in &hubs {
            tokio::spawn(run(hub.clone(), client.clone(), metrics.clone()));
        }
        WebSub { hubs }
    }

    /// Queues publish pings for these topic URLs at every hub. Never blocks on the network.
    pub fn publish(&self, topics: Vec<String>) {
        if topics.is_empty() {
            return;
        }
        let now = Instant::now();
        for hub in &self.hubs {
            {
                let mut q = hub.queue.lock().unwrap_or_else(|p| p.into_inner());
                for topic in &topics {
                    if let Some(job) = q.get_mut(topic) {
                        job.again |= job.in_flight;
                        continue;
                    }
                    if q.len() >= MAX_PENDING {
                        tracing::error!(hub = %hub.url, topic, "WebSub queue full; this change is not announced to the hub");
                        continue;
                    }
                    q.insert(
                        topic.clone(),
                        Job {
                            due: now,
                            delay: FIRST_RETRY,
                            first_try: now,
                            in_flight: false,
                            again: false,
                        },
                    );
                }
            }
            hub.wake.notify_one();
        }
    }
}

/// Installs rustls's ring provider as the process default (once; later calls are no-ops). reqwest
/// is built without a bundled provider so the build avoids aws-lc-sys's C compilation.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Drains one hub's queue forever: due topics go out (a few at a time), results update the queue.
async fn run(hub: Arc<Hub>, client: reqwest::Client, metrics: Arc<Metrics>) {
    let mut flights = FuturesUnordered::new();
    loop {
        let next_due = {
            let mut q = hub.queue.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            for (topic, job) in q.iter_mut() {
                if flights.len() >= IN_FLIGHT {
                    break;
                }
                if !job.in_flight && job.due <= now {
                    job.in_flight = true;
                    let (client, url, topic) = (client.clone(), hub.url.clone(), topic.clone());
                    flights.push(async move {
                        let r = ping(&client, &url, &topic).await;
                        (topic, r)
                    });
                }
            }
            q.values().filter(|j| !j.in_flight).map(|j| j.due).min()
        };
        tokio::select! {
            Some((topic, result)) = flights.next() => {
                let label = if result.is_ok() { "ok" } else { "error" };
                metrics.websub_pings.get_or_create(&ResultLabel { result: label }).inc();
                let mut q = hub.queue.lock().unwrap_or_else(|p| p.into_inner());
                let Some(job) = q.get_mut(&topic) else { continue };
                job.in_flight = false;
                match result {
                    Ok(()) if job.again => {
                        job.again = false;
                        job.due = Instant::now();
                    }
                    Ok(()) => {
                        tracing::debug!(hub = %hub.url, topic, "WebSub publish ping accepted");
                        q.remove(&topic);
                    }
                    Err(e) if job.first_try.elapsed() > GIVE_UP_AFTER => {
                        tracing::error!(hub = %hub.url, topic, error = %e, "giving up on WebSub ping after a day");
                        q.remove(&topic);
                    }
                    Err(e) => {
                        tracing::warn!(hub = %hub.url, topic, error = %e, retry_in = ?job.delay, "WebSub ping failed; will retry");
                        job.due = Instant::now() + job.delay;
                        job.delay = (job.delay * 2).min(MAX_RETRY);
                    }
                }
            }
            _ = hub.wake.notified() => {}
            _ = sleep_until(next_due), if flights.len() < IN_FLIGHT => {}
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
