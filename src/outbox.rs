//! The outbox: what the outside world hears after a write. WebSub publish pings go to every hub
//! (so subscribers stop polling), and purge requests go to every `[cdn] purge_urls` receiver (so a
//! CDN in front drops exactly the feeds that changed).
//!
//! Writes never wait for the network: [`Outbox::publish`] only records the notice in each
//! endpoint's own queue and wakes that endpoint's task. Each endpoint has its own task, so a dead
//! or slow one delays only itself; a task keeps a few requests in flight at once, each with a
//! deadline, and retries failures with exponential backoff (1 s doubling to 5 min, for up to a
//! day).
//!
//! - **Hubs** get `hub.mode=publish&hub.url=<topic>` per changed feed URL (the form most hubs
//!   accept). A topic already waiting for a hub is not queued twice: one ping announces any number
//!   of changes, so a hub's queue holds at most one entry per feed URL.
//! - **Purge receivers** get one JSON `POST` per write, `{"keys": [...], "urls": [...]}`: the
//!   surrogate keys of the touched feeds (see `FeedKey::surrogate_key`; every response carries its
//!   feed's key in `Surrogate-Key` and `Cache-Tag`) and their absolute public URLs, all formats and
//!   pages. A write that changed nothing sends nothing. With `[cdn] purge_kind = "xkey"` the
//!   same purge is instead `PURGE <receiver URL>` with the keys in an `xkey-purge` header
//!   (space-separated, split over several requests past [`MAX_XKEY_HEADER`] bytes): what Varnish
//!   with the xkey vmod reads itself (`deploy/varnish/bantin.vcl`), since VCL cannot parse JSON.
//!
//! Both queues are bounded: past [`MAX_PENDING`] entries, a hub's new topics are dropped (logged);
//! past [`MAX_PENDING_PURGES`] purges or [`MAX_PURGE_BYTES`] of keys and URLs, a receiver's new
//! purges are folded into its newest waiting one (a purge is idempotent, so a union loses nothing
//! but the one-per-write count; a union is at most every URL of every feed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use url::Url;

use crate::config::PurgeKind;
use crate::metrics::{Metrics, ResultLabel};

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(300);
const GIVE_UP_AFTER: Duration = Duration::from_secs(86_400);
/// Requests in flight to one endpoint at once.
const IN_FLIGHT: usize = 4;
/// Entries waiting for one endpoint at most.
pub const MAX_PENDING: usize = 100_000;
/// Purges waiting for one receiver at most, and their bytes of keys and URLs, before new ones are
/// folded together.
pub const MAX_PENDING_PURGES: usize = 10_000;
pub const MAX_PURGE_BYTES: usize = 16 << 20;

/// Longest `xkey-purge` header value in one request. Varnish refuses a request head over its
/// `http_req_hdr_len` (8 KB by default) and a folded purge may name thousands of feeds, so the
/// keys are split over several requests below that.
pub const MAX_XKEY_HEADER: usize = 4096;

/// One request's deadline: an endpoint that hangs is a failed request, retried later.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one write changed, as the outside world needs to hear it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Purge {
    /// Surrogate keys of the touched feeds (sorted).
    pub keys: Vec<String>,
    /// Absolute public URLs of the touched feeds: every format, every page (sorted).
    pub urls: Vec<String>,
}

impl Purge {
    fn bytes(&self) -> usize {
        self.keys
            .iter()
            .chain(&self.urls)
            .map(|s| s.len() + 8)
            .sum()
    }

    fn merge(&mut self, other: &Purge) {
        let keys: BTreeSet<String> = self
            .keys
            .drain(..)
            .chain(other.keys.iter().cloned())
            .collect();
        let urls: BTreeSet<String> = self
            .urls
            .drain(..)
            .chain(other.urls.iter().cloned())
            .collect();
        self.keys = keys.into_iter().collect();
        self.urls = urls.into_iter().collect();
    }
}

/// Handle to the endpoint tasks; cheap to clone.
#[derive(Clone, Default)]
pub struct Outbox {
    hubs: Vec<Arc<Endpoint>>,
    purgers: Vec<Arc<Endpoint>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hub,
    Purge(PurgeKind),
}

/// One endpoint: its queue and the task that drains it.
struct Endpoint {
    url: Url,
    kind: Kind,
    queue: Mutex<Queue>,
    wake: Notify,
}

#[derive(Default)]
struct Queue {
    /// Hubs: keyed by topic (deduplicated). Purge receivers: keyed by a sequence number, in
    /// order.
    jobs: BTreeMap<String, Job>,
    next_seq: u64,
    /// Bytes of keys and URLs in waiting purges.
    purge_bytes: usize,
}

enum Payload {
    Topic,
    Purge(Purge),
}

struct Job {
    payload: Payload,
    due: Instant,
    delay: Duration,
    first_try: Instant,
    in_flight: bool,
    /// Hubs: changed again while a ping was in flight; ping once more after it.
    again: bool,
}

impl Job {
    fn new(payload: Payload, now: Instant) -> Job {
        Job {
            payload,
            due: now,
            delay: FIRST_RETRY,
            first_try: now,
            in_flight: false,
            again: false,
        }
    }
}

impl Outbox {
    /// An outbox that sends nothing (no hubs, no purge receivers).
    pub fn disabled() -> Outbox {
        Outbox::default()
    }

    /// Starts one background task per hub and per purge receiver.
    pub fn start(
        hubs: Vec<Url>,
        purge_urls: Vec<Url>,
        purge_kind: PurgeKind,
        metrics: Arc<Metrics>,
    ) -> Outbox {
        if hubs.is_empty() && purge_urls.is_empty() {
            return Outbox::disabled();
        }
        install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("bantin/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with default settings builds");
        let endpoint = |url: Url, kind| {
            let e = Arc::new(Endpoint {
                url,
                kind,
                queue: Mutex::new(Queue::default()),
                wake: Notify::new(),
            });
            tokio::spawn(run(e.clone(), client.clone(), metrics.clone()));
            e
        };
        Outbox {
            hubs: hubs.into_iter().map(|u| endpoint(u, Kind::Hub)).collect(),
            purgers: purge_urls
                .into_iter()
                .map(|u| endpoint(u, Kind::Purge(purge_kind)))
                .collect(),
        }
    }

    /// Whether any purge receiver is configured (the purge need not be computed otherwise).
    pub fn purges(&self) -> bool {
        !self.purgers.is_empty()
    }

    /// Whether any purge receiver reads URLs (the JSON kind). An `xkey` receiver reads only the
    /// keys, so a purge for it needs no listing of the touched feeds' pages.
    pub fn purges_urls(&self) -> bool {
        self.purgers
            .iter()
            .any(|e| e.kind != Kind::Purge(PurgeKind::Xkey))
    }

    /// Queues publish pings for these topic URLs at every hub, and `purge` at every purge
    /// receiver. Never blocks on the network.
    pub fn publish(&self, topics: &[String], purge: Option<Purge>) {
        let now = Instant::now();
        if !topics.is_empty() {
            for hub in &self.hubs {
                {
                    let mut q = hub.queue.lock().unwrap_or_else(|p| p.into_inner());
                    for topic in topics {
                        if let Some(job) = q.jobs.get_mut(topic) {
                            job.again |= job.in_flight;
                            continue;
                        }
                        if q.jobs.len() >= MAX_PENDING {
                            tracing::error!(hub = %hub.url, topic, "WebSub queue full; this change is not announced to the hub");
                            continue;
                        }
                        q.jobs.insert(topic.clone(), Job::new(Payload::Topic, now));
                    }
                }
                hub.wake.notify_one();
            }
        }
        let Some(purge) = purge.filter(|p| !p.keys.is_empty()) else {
            return;
        };
        for receiver in &self.purgers {
            {
                let mut q = receiver.queue.lock().unwrap_or_else(|p| p.into_inner());
                if q.jobs.len() >= MAX_PENDING_PURGES
                    || q.purge_bytes + purge.bytes() > MAX_PURGE_BYTES
                {
                    let newest = q.jobs.values_mut().rev().find(|j| !j.in_flight);
                    if let Some(Job {
                        payload: Payload::Purge(p),
                        ..
                    }) = newest
                    {
                        let before = p.bytes();
                        p.merge(&purge);
                        let grown = p.bytes() - before;
                        q.purge_bytes += grown;
                        continue;
                    }
                }
                q.purge_bytes += purge.bytes();
                let seq = q.next_seq;
                q.next_seq += 1;
                q.jobs.insert(
                    format!("{seq:020}"),
                    Job::new(Payload::Purge(purge.clone()), now),
                );
            }
            receiver.wake.notify_one();
        }
    }
}

/// Installs rustls's ring provider as the process default (once; later calls are no-ops). reqwest
/// is built without a bundled provider so the build avoids aws-lc-sys's C compilation.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Drains one endpoint's queue forever: due jobs go out (a few at a time), results update the
/// queue.
async fn run(endpoint: Arc<Endpoint>, client: reqwest::Client, metrics: Arc<Metrics>) {
    let mut flights = FuturesUnordered::new();
    loop {
        let next_due = {
            let mut q = endpoint.queue.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            for (key, job) in q.jobs.iter_mut() {
                if flights.len() >= IN_FLIGHT {
                    break;
                }
                if !job.in_flight && job.due <= now {
                    job.in_flight = true;
                    let url = endpoint.url.clone();
                    let requests = match (&job.payload, endpoint.kind) {
                        (Payload::Topic, _) => vec![
                            client
                                .post(url)
                                .header("content-type", "application/x-www-form-urlencoded")
                                .body(format!("hub.mode=publish&hub.url={}", form_encode(key))),
                        ],
                        (Payload::Purge(p), Kind::Purge(PurgeKind::Xkey)) => {
                            xkey_batches(&p.keys, MAX_XKEY_HEADER)
                                .into_iter()
                                .map(|keys| {
                                    client
                                        .request(purge_method(), url.clone())
                                        .header("xkey-purge", keys)
                                })
                                .collect()
                        }
                        (Payload::Purge(p), _) => vec![
                            client
                                .post(url)
                                .header("content-type", "application/json")
                                .body(serde_json::to_vec(p).expect("a purge serialises")),
                        ],
                    };
                    let key = key.clone();
                    flights.push(async move { (key, send_all(requests).await) });
                }
            }
            q.jobs
                .values()
                .filter(|j| !j.in_flight)
                .map(|j| j.due)
                .min()
        };
        tokio::select! {
            Some((key, result)) = flights.next() => settle(&endpoint, &metrics, key, result),
            _ = endpoint.wake.notified() => {}
            _ = sleep_until(next_due), if flights.len() < IN_FLIGHT => {}
        }
    }
}

/// Records one request's outcome: done, once more (a hub topic changed meanwhile), or retry later.
fn settle(endpoint: &Endpoint, metrics: &Metrics, key: String, result: Result<(), String>) {
    let label = ResultLabel {
        result: if result.is_ok() { "ok" } else { "error" },
    };
    match endpoint.kind {
        Kind::Hub => metrics.websub_pings.get_or_create(&label).inc(),
        Kind::Purge(_) => metrics.cdn_purges.get_or_create(&label).inc(),
    };
    let mut q = endpoint.queue.lock().unwrap_or_else(|p| p.into_inner());
    let Some(job) = q.jobs.get_mut(&key) else {
        return;
    };
    job.in_flight = false;
    let url = &endpoint.url;
    match result {
        Ok(()) if job.again => {
            job.again = false;
            job.due = Instant::now();
        }
        Ok(()) => {
            tracing::debug!(%url, key, "outbound notice accepted");
            remove(&mut q, &key);
        }
        Err(e) if job.first_try.elapsed() > GIVE_UP_AFTER => {
            tracing::error!(%url, key, error = %e, "giving up on an outbound notice after a day");
            remove(&mut q, &key);
        }
        Err(e) => {
            tracing::warn!(%url, key, error = %e, retry_in = ?job.delay, "outbound notice failed; will retry");
            job.due = Instant::now() + job.delay;
            job.delay = (job.delay * 2).min(MAX_RETRY);
        }
    }
}

fn remove(q: &mut Queue, key: &str) {
    if let Some(Job {
        payload: Payload::Purge(p),
        ..
    }) = q.jobs.remove(key)
    {
        q.purge_bytes = q.purge_bytes.saturating_sub(p.bytes());
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Sends the requests of one job in order; the job is done only when every one was accepted (a
/// retry resends them all: purging a key twice is harmless).
async fn send_all(requests: Vec<reqwest::RequestBuilder>) -> Result<(), String> {
    for request in requests {
        send(request).await?;
    }
    Ok(())
}

fn purge_method() -> reqwest::Method {
    reqwest::Method::from_bytes(b"PURGE").expect("PURGE is a valid method token")
}

/// Space-separated `xkey-purge` values of at most `max` bytes each, covering every key once, in
/// order (a key longer than `max` goes alone: better a long header than a key never purged).
fn xkey_batches(keys: &[String], max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in keys {
        match out.last_mut() {
            Some(last) if !last.is_empty() && last.len() + 1 + key.len() <= max => {
                last.push(' ');
                last.push_str(key);
            }
            _ => out.push(key.clone()),
        }
    }
    out
}

async fn send(request: reqwest::RequestBuilder) -> Result<(), String> {
    let resp = request.send().await.map_err(|e| e.to_string())?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", resp.status()))
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xkey_batches_stay_under_the_bound_and_cover_every_key_once() {
        let keys: Vec<String> = (0..1000).map(|i| format!("feed-vi-tag-t{i:04}")).collect();
        let batches = xkey_batches(&keys, MAX_XKEY_HEADER);
        assert!(
            batches.len() > 1,
            "{} bytes fit one header?",
            keys.len() * 17
        );
        assert!(batches.iter().all(|b| b.len() <= MAX_XKEY_HEADER));
        let back: Vec<&str> = batches.iter().flat_map(|b| b.split(' ')).collect();
        assert_eq!(back, keys.iter().map(String::as_str).collect::<Vec<_>>());
        // Exactly at the bound: two 5-byte keys and a space make 11 bytes.
        let two = ["aaaaa".to_string(), "bbbbb".to_string()];
        assert_eq!(xkey_batches(&two, 11), ["aaaaa bbbbb"]);
        assert_eq!(xkey_batches(&two, 10), ["aaaaa", "bbbbb"]);
        // A key over the bound is still sent, alone.
        assert_eq!(xkey_batches(&two, 3), ["aaaaa", "bbbbb"]);
        assert!(xkey_batches(&[], 10).is_empty());
    }

    #[test]
    fn merged_purges_are_the_union() {
        let mut a = Purge {
            keys: vec!["feed-vi".into()],
            urls: vec!["https://x/vi/rss.xml".into()],
        };
        a.merge(&Purge {
            keys: vec!["feed-en".into(), "feed-vi".into()],
            urls: vec!["https://x/en/rss.xml".into()],
        });
        assert_eq!(a.keys, ["feed-en", "feed-vi"]);
        assert_eq!(a.urls, ["https://x/en/rss.xml", "https://x/vi/rss.xml"]);
    }
}
