//! Readership: every feed answer counted, daily totals per feed in the store, and subscriber
//! figures as the newsroom knew them from FeedBurner.
//!
//! Three stages, each shaped by where it runs:
//!
//! - **Counting** ([`Readership::count`], [`tally`]) runs on the poll path, so it is a few map
//!   operations on the worker thread's own counters: no lock, no shared atomic, no allocation for
//!   a client already seen. It can be switched off (`BANTIN_READERSHIP=off`) to measure its cost.
//! - **Flushing** ([`Readership::worker`]): every `flush_interval` each worker hands its counters
//!   over a bounded channel to one aggregating task, which classifies each distinct User-Agent
//!   ([`agents`]), replaces addresses by a keyed hash, and adds the totals to the store under the
//!   newsroom's current day. A failed write is kept and retried; nothing is half-written (one
//!   transaction per flush). Once a day is over, its subscriber figures are computed and stored
//!   ("closed"), and reader rows older than the 7-day window are deleted.
//! - **Figures** ([`figures`]): pure functions from stored rows to subscribers per feed and day.
//!
//! The day comes from an injected [`Clock`], so tests script a week of polls in milliseconds.
//! Addresses never reach the store: a reader is a SipHash of (address, User-Agent) under a key
//! kept in the database, so replicas sharing it count one reader once, and the rows cannot be
//! joined with anyone's logs without that key.

pub mod agents;
pub mod figures;
pub mod sketch;
pub mod tally;

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::clock::{Clock, SiteZone};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::store::readership::{
    AggregatorCount, DayTotals, Impolite, MAX_USER_AGENT, PartnerPolls, ReaderSeen, ReadershipBatch,
};
use crate::store::{Store, StoreError};
use agents::Agent;
use figures::{DayFigures, ImpoliteFigure};
use tally::Snapshot;

/// One feed answer, as the HTTP layer describes it.
#[derive(Debug, Clone, Copy)]
pub struct Poll<'a> {
    /// The feed's path (`/vi/rss.xml`), the name figures are kept under.
    pub path: &'a str,
    pub not_modified: bool,
    /// The request carried `If-None-Match` or `If-Modified-Since`.
    pub conditional: bool,
    /// Body bytes sent (0 for a 304 or a HEAD).
    pub bytes: u64,
    /// The connection's peer.
    pub peer: IpAddr,
    pub forwarded_for: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    /// The partner whose key the request presented.
    pub partner: Option<u16>,
}

/// Snapshots queued from the workers to the aggregating task, at most.
const QUEUE: usize = 64;
/// Longest a forced flush waits for the workers' counters.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// A day is closed this long after it ends, so flushes in flight at midnight land first.
const CLOSE_GRACE: chrono::Duration = chrono::Duration::seconds(60);
/// Reader hashes held between two writes, at most (a store outage must not exhaust memory).
const MAX_PENDING_READERS: usize = 1_000_000;
/// How often the subscriber gauges are recomputed.
const GAUGE_EVERY: Duration = Duration::from_secs(60);

enum Msg {
    Snapshot {
        worker: u64,
        generation: u64,
        snapshot: Snapshot,
    },
    Write(oneshot::Sender<Result<(), StoreError>>),
    Stop(oneshot::Sender<()>),
}

/// The readership service: cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Readership {
    inner: Arc<Inner>,
}

struct Inner {
    enabled: bool,
    max_age: Duration,
    partners: Vec<(String, String)>,
    trusted: Vec<ipnet::IpNet>,
    flush_interval: Duration,
    keep_days: u32,
    zone: SiteZone,
    clock: Arc<dyn Clock>,
    tx: mpsc::Sender<Msg>,
    rx: Mutex<Option<mpsc::Receiver<Msg>>>,
    generation: watch::Sender<u64>,
    /// Registered workers and the last flush generation each has answered.
    reported: Mutex<HashMap<u64, u64>>,
    reported_changed: Notify,
    next_worker: AtomicU64,
    running: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Readership {
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Readership {
        let (tx, rx) = mpsc::channel(QUEUE);
        Readership {
            inner: Arc::new(Inner {
                enabled: config.readership.enabled,
                max_age: Duration::from_secs(config.cache.max_age),
                partners: config
                    .partners
                    .iter()
                    .map(|p| (p.id.clone(), p.name.clone()))
                    .collect(),
                trusted: config.access.trusted_proxies.clone(),
                flush_interval: config.readership.flush_interval,
                keep_days: config.readership.keep_days,
                zone: config.zone,
                clock,
                tx,
                rx: Mutex::new(Some(rx)),
                generation: watch::channel(0).0,
                reported: Mutex::new(HashMap::new()),
                reported_changed: Notify::new(),
                next_worker: AtomicU64::new(0),
                running: Mutex::new(None),
            }),
        }
    }

    /// Whether feed answers are counted.
    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Counts one feed answer on this thread's counters. The poll path calls this for every 200
    /// and 304 of a feed.
    #[inline]
    pub fn count(&self, poll: &Poll<'_>) {
        if !self.inner.enabled {
            return;
        }
        let i = &self.inner;
        let client = crate::access::client_address(poll.peer, poll.forwarded_for, &i.trusted);
        tally::record(
            &tally::Counted {
                path: poll.path,
                not_modified: poll.not_modified,
                conditional: poll.conditional,
                bytes: poll.bytes,
                client,
                user_agent: poll.user_agent.unwrap_or_default(),
                partner: poll.partner,
            },
            i.partners.len(),
            i.max_age,
        );
    }

    /// The newsroom's current day.
    pub fn today(&self) -> NaiveDate {
        self.local_day(self.inner.clock.now())
    }

    fn local_day(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.inner.zone.0).date_naive()
    }

    fn partner_name(&self) -> impl Fn(&str) -> String + '_ {
        |id: &str| {
            self.inner
                .partners
                .iter()
                .find(|(pid, _)| pid == id)
                .map(|(_, name)| name.clone())
                .unwrap_or_else(|| id.to_string())
        }
    }

    /// Starts the aggregating task: loads the readers' hash key and begins writing flushes to
    /// `store`. Call once, on the runtime that should run it.
    pub async fn start(
        &self,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<(), StoreError> {
        let Some(rx) = self
            .inner
            .rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return Ok(());
        };
        let secret = store.readership_secret().await?;
        let task = Aggregator {
            readership: self.clone(),
            store,
            metrics,
            secret,
            pending: BTreeMap::new(),
            pending_readers: 0,
            agents: HashMap::new(),
            closed_through: None,
            last_fetch: HashMap::new(),
            gauges_at: None,
        };
        let handle = tokio::spawn(task.run(rx));
        *self.inner.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(())
    }

    /// Registers the calling worker thread; returns its id for [`Readership::worker`] and
    /// [`Readership::finish_worker`].
    pub fn register_worker(&self) -> u64 {
        let id = self.inner.next_worker.fetch_add(1, Ordering::Relaxed);
        let generation = *self.inner.generation.borrow();
        self.inner
            .reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, generation);
        id
    }

    /// The worker thread's flushing loop: hands this thread's counters to the aggregating task
    /// every `flush_interval`, and at once when a flush is forced. Spawn it on the worker's own
    /// thread (`spawn_local`): the counters are thread-local.
    pub async fn worker(self, id: u64) {
        if !self.inner.enabled {
            return;
        }
        let mut generations = self.inner.generation.subscribe();
        let mut tick = tokio::time::interval(self.inner.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                changed = generations.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    true
                }
            };
            let generation = *generations.borrow_and_update();
            let snapshot = tally::drain();
            if forced || !snapshot.is_empty() {
                let msg = Msg::Snapshot {
                    worker: id,
                    generation,
                    snapshot,
                };
                // Waiting here holds up only this loop, never the worker's connections.
                if self.inner.tx.send(msg).await.is_err() {
                    return;
                }
            }
        }
    }

    /// The worker's last hand-over, after its connections are done.
    pub async fn finish_worker(&self, id: u64) {
        if self.inner.enabled {
            let snapshot = tally::drain();
            if !snapshot.is_empty() {
                let generation = *self.inner.generation.borrow();
                let _ = self
                    .inner
                    .tx
                    .send(Msg::Snapshot {
                        worker: id,
                        generation,
                        snapshot,
                    })
                    .await;
            }
        }
        self.inner
            .reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.inner.reported_changed.notify_waiters();
    }

    /// Hands every worker's counters over and writes them to the store now (tests; shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        if !self.inner.enabled || !self.running() {
            return Ok(());
        }
        let mut target = 0;
        self.inner.generation.send_modify(|g| {
            *g += 1;
            target = *g;
        });
        let all_reported = async {
            loop {
                let waiting = self.inner.reported_changed.notified();
                let done = self
                    .inner
                    .reported
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                    .all(|g| *g >= target);
                if done {
                    return;
                }
                waiting.await;
            }
        };
        if tokio::time::timeout(FLUSH_WAIT, all_reported)
            .await
            .is_err()
        {
            tracing::warn!("a worker did not hand over its readership counters in time");
        }
        let (ack, done) = oneshot::channel();
        if self.inner.tx.send(Msg::Write(ack)).await.is_err() {
            return Ok(());
        }
        done.await.unwrap_or(Ok(()))
    }

    /// Whether the aggregating task was started (and so reads the queue).
    fn running(&self) -> bool {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Writes what is pending and stops the aggregating task (after the workers finished).
    pub async fn shutdown(&self) {
        if !self.running() {
            return;
        }
        let (ack, done) = oneshot::channel();
        if self.inner.tx.send(Msg::Stop(ack)).await.is_ok() {
            let _ = done.await;
        }
        let handle = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.await;
        }
    }

    /// Figures of the last `days` days (today included), oldest first, with the impolite
    /// pollers of the same days.
    pub async fn stats(
        &self,
        store: &dyn Store,
        days: u32,
    ) -> Result<(Vec<DayFigures>, Vec<ImpoliteFigure>), StoreError> {
        let today = self.today();
        let from = today - Days::new(u64::from(days.max(1)) - 1);
        let rows = store
            .readership(from - Days::new(figures::WINDOW_DAYS - 1), today)
            .await?;
        let names = self.partner_name();
        Ok((
            figures::days(from, today, &rows, &names),
            figures::impolite(&rows, from, today, 20),
        ))
    }
}

/// The keyed hash naming one reader: SipHash-2-4 of the address (as 16 bytes) and User-Agent.
fn reader_hash(secret: &[u8; 16], addr: IpAddr, user_agent: &str) -> i64 {
    let octets = match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    let mut h = siphasher::sip::SipHasher24::new_with_key(secret);
    h.write(&octets);
    h.write(user_agent.as_bytes());
    h.finish() as i64
}

/// What is waiting to be written, per day and feed.
#[derive(Default)]
struct Pending {
    polls: u64,
    not_modified: u64,
    bytes: u64,
    partners: BTreeMap<String, u64>,
    aggregators: BTreeMap<(String, String), (u64, i64)>,
    readers: HashMap<i64, String>,
    impolite: HashMap<String, (u64, u64)>,
}

struct Aggregator {
    readership: Readership,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    secret: [u8; 16],
    pending: BTreeMap<(NaiveDate, String), Pending>,
    pending_readers: usize,
    /// Classified User-Agents by hash (bounded: cleared when large).
    agents: HashMap<u64, Agent>,
    /// The last day whose closing ran.
    closed_through: Option<NaiveDate>,
    /// Each client's latest unconditional fetch per feed, across threads and intervals (only
    /// those within max-age matter; older ones are dropped at each write).
    last_fetch: HashMap<(String, IpAddr, u64), std::time::Instant>,
    gauges_at: Option<tokio::time::Instant>,
}

impl Aggregator {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut tick = tokio::time::interval(self.readership.inner.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    None => break,
                    Some(Msg::Snapshot { worker, generation, snapshot }) => {
                        self.merge(snapshot);
                        let i = &self.readership.inner;
                        if let Some(g) = i.reported.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&worker) {
                            *g = (*g).max(generation);
                        }
                        i.reported_changed.notify_waiters();
                    }
                    Some(Msg::Write(ack)) => {
                        let r = self.write().await;
                        self.housekeeping(true).await;
                        let _ = ack.send(r);
                    }
                    Some(Msg::Stop(ack)) => {
                        let _ = self.write().await;
                        let _ = ack.send(());
                        break;
                    }
                },
                _ = tick.tick() => {
                    let _ = self.write().await;
                    self.housekeeping(false).await;
                }
            }
        }
    }

    fn merge(&mut self, snap: Snapshot) {
        if snap.dropped > 0 {
            tracing::warn!(
                dropped = snap.dropped,
                "readership counters were full; some clients were not recorded"
            );
        }
        let now = self.readership.inner.clock.now();
        let day = self.readership.local_day(now);
        if self.agents.len() > 50_000 {
            self.agents.clear();
        }
        let partners = &self.readership.inner.partners;
        for f in snap.feeds {
            let p = self.pending.entry((day, f.path.clone())).or_default();
            p.polls += f.polls;
            p.not_modified += f.not_modified;
            p.bytes += f.bytes;
            for (i, n) in f.partners {
                if let Some((id, _)) = partners.get(usize::from(i)) {
                    *p.partners.entry(id.clone()).or_default() += n;
                }
            }
            for mut c in f.clients {
                if let (Some(first), Some(last)) = (c.first_unconditional, c.last_unconditional)
                    && self.last_fetch.len() < MAX_PENDING_READERS
                {
                    // The same client fetching on another thread (another connection) within
                    // max-age: too soon as well. Either order of arrival gives the same answer.
                    let key = (f.path.clone(), c.addr, c.user_agent);
                    let max_age = self.readership.inner.max_age;
                    if let Some(prev) = self.last_fetch.get(&key) {
                        let gap = if first > *prev {
                            first - *prev
                        } else {
                            *prev - first
                        };
                        if gap < max_age {
                            c.too_soon += 1;
                        }
                    }
                    let e = self.last_fetch.entry(key).or_insert(last);
                    *e = (*e).max(last);
                }
                if c.partner.is_some() {
                    // Counted by partner id, not as a reader.
                    continue;
                }
                let ua = snap
                    .agents
                    .get(&c.user_agent)
                    .map(String::as_str)
                    .unwrap_or("");
                let agent = self
                    .agents
                    .entry(c.user_agent)
                    .or_insert_with(|| agents::classify(ua));
                match agent {
                    Agent::Aggregator {
                        name,
                        feed_id,
                        subscribers,
                    } => {
                        p.aggregators.insert(
                            (name.clone(), feed_id.clone()),
                            (*subscribers, now.timestamp()),
                        );
                    }
                    Agent::Reader { name } => {
                        if self.pending_readers < MAX_PENDING_READERS {
                            let h = reader_hash(&self.secret, c.addr, ua);
                            if p.readers.insert(h, name.clone()).is_none() {
                                self.pending_readers += 1;
                            }
                        }
                    }
                    Agent::Browser | Agent::Bot => {}
                }
                if c.too_soon > 0 && !matches!(agent, Agent::Browser) && p.impolite.len() < 1000 {
                    let mut cut = ua.len().min(MAX_USER_AGENT);
                    while !ua.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    let e = p.impolite.entry(ua[..cut].to_string()).or_default();
                    e.0 += u64::from(c.unconditional);
                    e.1 += u64::from(c.too_soon);
                }
            }
        }
    }

    fn batch(&self) -> ReadershipBatch {
        let mut b = ReadershipBatch::default();
        for ((day, feed), p) in &self.pending {
            let (day, feed) = (*day, feed.clone());
            b.totals.push(DayTotals {
                day,
                feed: feed.clone(),
                polls: p.polls,
                not_modified: p.not_modified,
                bytes: p.bytes,
            });
            for (partner, polls) in &p.partners {
                b.partners.push(PartnerPolls {
                    day,
                    feed: feed.clone(),
                    partner: partner.clone(),
                    polls: *polls,
                });
            }
            for ((client, feed_id), (subscribers, at)) in &p.aggregators {
                b.aggregators.push(AggregatorCount {
                    day,
                    feed: feed.clone(),
                    client: client.clone(),
                    feed_id: feed_id.clone(),
                    subscribers: *subscribers,
                    observed_at: *at,
                });
            }
            for (reader, client) in &p.readers {
                b.readers.push(ReaderSeen {
                    day,
                    feed: feed.clone(),
                    reader: *reader,
                    client: client.clone(),
                });
            }
            for (ua, (unconditional, too_soon)) in &p.impolite {
                b.impolite.push(Impolite {
                    day,
                    feed: feed.clone(),
                    user_agent: ua.clone(),
                    unconditional: *unconditional,
                    too_soon: *too_soon,
                });
            }
        }
        b
    }

    /// Writes what is pending in one transaction; on failure it stays pending for the next try.
    async fn write(&mut self) -> Result<(), StoreError> {
        let max_age = self.readership.inner.max_age;
        self.last_fetch.retain(|_, t| t.elapsed() < max_age);
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self.batch();
        match self.store.add_readership(&batch).await {
            Ok(()) => {
                self.pending.clear();
                self.pending_readers = 0;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not write readership counts; keeping them for the next flush");
                Err(e)
            }
        }
    }

    /// Closes finished days, prunes old rows, refreshes the gauges.
    async fn housekeeping(&mut self, force_gauges: bool) {
        let now = self.readership.inner.clock.now();
        let today = self.readership.local_day(now);
        let ready = self.readership.local_day(now - CLOSE_GRACE) == today;
        if ready && self.closed_through != Some(today) {
            match self.close_days(today).await {
                Ok(()) => self.closed_through = Some(today),
                Err(e) => tracing::warn!(error = %e, "could not close readership days; retrying"),
            }
        }
        let due = self.gauges_at.is_none_or(|t| t.elapsed() >= GAUGE_EVERY);
        if force_gauges || due {
            self.gauges_at = Some(tokio::time::Instant::now());
            match self.readership.stats(&*self.store, 1).await {
                Ok((days, _)) => {
                    let family = &self.metrics.feed_subscribers;
                    family.clear();
                    for f in days.iter().flat_map(|d| &d.feeds) {
                        family
                            .get_or_create(&crate::metrics::FeedLabel {
                                feed: f.feed.clone(),
                            })
                            .set(f.subscribers.min(i64::MAX as u64) as i64);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not compute subscriber gauges"),
            }
        }
    }

    async fn close_days(&self, today: NaiveDate) -> Result<(), StoreError> {
        let yesterday = today - Days::new(1);
        let open = self.store.open_readership_days(today).await?;
        let from = open.first().copied().unwrap_or(yesterday).min(yesterday);
        let rows = self
            .store
            .readership(from - Days::new(figures::WINDOW_DAYS - 1), yesterday)
            .await?;
        let names = self.readership.partner_name();
        let mut closed = Vec::new();
        let mut day = from;
        while day <= yesterday {
            closed.extend(figures::closing(day, &rows, &names));
            day = day + Days::new(1);
        }
        self.store.close_readership_days(&closed).await?;
        let keep = u64::from(self.readership.inner.keep_days);
        self.store
            .prune_readership(
                today - Days::new(figures::WINDOW_DAYS),
                today - Days::new(keep),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unstarted_service_never_waits() {
        // `bantin import` and `export` build an App whose readership never runs.
        let r = Readership::new(
            &crate::article::tests::config(),
            Arc::new(crate::clock::SystemClock),
        );
        tokio::time::timeout(Duration::from_secs(2), async {
            r.flush().await.unwrap();
            r.shutdown().await;
        })
        .await
        .expect("returns at once");
    }

    #[test]
    fn reader_hashes_are_keyed_and_stable() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let k1 = [1u8; 16];
        let k2 = [2u8; 16];
        assert_eq!(
            reader_hash(&k1, a, "Miniflux"),
            reader_hash(&k1, a, "Miniflux")
        );
        assert_eq!(
            reader_hash(&k1, a, "Miniflux"),
            reader_hash(&k1, mapped.to_canonical(), "Miniflux")
        );
        assert_ne!(
            reader_hash(&k1, a, "Miniflux"),
            reader_hash(&k2, a, "Miniflux")
        );
        assert_ne!(
            reader_hash(&k1, a, "Miniflux"),
            reader_hash(&k1, a, "FreshRSS")
        );
    }
}
