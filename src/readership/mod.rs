//! Readership: every feed answer counted, daily totals per feed in the store, and subscriber
//! figures as the newsroom knew them from FeedBurner, in memory and store space that stay bounded
//! whatever anyone sends.
//!
//! Three stages, each shaped by where it runs:
//!
//! - **Counting** ([`Readership::count`], [`tally`]) runs on the poll path, so it is a few map
//!   operations on the worker thread's own counters: no lock, no shared atomic, no allocation for
//!   a client already seen. It can be switched off (`BANTIN_READERSHIP=off`) to measure its cost.
//! - **Flushing** ([`Readership::worker`]): every `flush_interval` each worker hands its counters
//!   over a bounded channel ([`QUEUE`] hand-overs; a worker takes its slot before draining, so a
//!   waiting worker holds no second copy) to one aggregating task, which classifies each distinct
//!   User-Agent ([`agents`]), puts each reader's keyed hash into the feed-day's sketches
//!   ([`sketch`]), judges subscriber claims by network ([`claims`], [`verify`]), and adds it all to
//!   the store under the newsroom's current day, in one transaction per flush. A failed write is
//!   kept (bounded) and retried. Once a day is over its figures are computed and stored
//!   ("closed"), and the sketches and claims older than the 7-day window are deleted.
//! - **Figures** ([`figures`]): pure functions from stored rows, computed a page of feeds at a
//!   time so `/api/v1/stats?days=366`, `/stats` and the once-a-minute gauge read closed days from
//!   their stored daily figures and only the open window from sketches. The built-in hub's
//!   active subscriptions join today's figures (and yesterday's, when it closes) as push
//!   clients, one per callback host ([`push`]), read from the store grouped by feed and host.
//!
//! **Bounded.** Everything the aggregating task holds has a bound that holds across time, not
//! only per interval: pending feed-days ([`MAX_PENDING_FEEDS`]), feed-days with reader sketches
//! ([`MAX_PENDING_SKETCHES`], each at most 3 KB + 8 × 0.5 KB; reaching it writes at once),
//! pending claims and impolite entries ([`MAX_PENDING_CLAIMS`], [`MAX_PENDING_IMPOLITE`]), the
//! classified User-Agents ([`MAX_AGENTS`]), the cross-thread fetch times ([`MAX_LAST_FETCH`], a
//! 64-bit hash and 4 bytes each) and the verifier's cache ([`verify::CACHE`]). What a bound
//! leaves out is counted (`bantin_readership_dropped_total{what}`), and what the task holds is
//! exported (`bantin_readership_bytes`, [`Readership::held_bytes`]). The store is bounded per
//! feed-day ([`crate::store::readership`]); feeds are only canonical feed paths.
//!
//! The day comes from an injected [`Clock`], so tests script a week of polls in milliseconds.
//! Addresses never reach the store: a reader is a SipHash of (address, User-Agent) under a key
//! kept in the database, so replicas sharing it count one reader once, and a claim names only
//! its /24 or /48 network.

pub mod agents;
pub mod claims;
pub mod figures;
pub mod push;
pub use crate::sketch;
pub mod tally;
pub mod verify;

use std::collections::{BTreeMap, HashMap};
use std::hash::Hasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::clock::{Clock, SiteZone};
use crate::config::Config;
use crate::metrics::{Metrics, WhatLabel};
use crate::store::readership::{
    ALL_READERS, Claim, ClosedDay, DayTotals, Impolite, ImpoliteSum, MAX_CLAIMS, MAX_FAMILIES,
    MAX_USER_AGENT, OTHER_FAMILY, PartnerPolls, ReaderSketch, ReadershipBatch, StoredTotals,
    WindowRows,
};
use crate::store::{Store, StoreError};
use agents::Agent;
use claims::ClaimFigure;
use figures::{ClientFigure, DayAccumulator, DayFigures, FeedFigures, FeedRows, TopClaims};
use push::PushFigures;
use sketch::Sketch;
use tally::Snapshot;
use verify::{Verdict, Verifier};

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
pub const QUEUE: usize = 2;
/// Longest a forced flush waits for the workers' counters.
const FLUSH_WAIT: Duration = Duration::from_secs(2);
/// A day is closed this long after it ends, so flushes in flight at midnight land first.
const CLOSE_GRACE: chrono::Duration = chrono::Duration::seconds(60);
/// How often the subscriber gauges are recomputed.
const GAUGE_EVERY: Duration = Duration::from_secs(60);
/// Feed-days waiting for a write, at most (their poll totals).
pub const MAX_PENDING_FEEDS: usize = 16_384;
/// Feed-days with reader sketches waiting for a write, at most; reaching it writes at once.
pub const MAX_PENDING_SKETCHES: usize = 1024;
/// Subscriber claims waiting for a write, at most.
pub const MAX_PENDING_CLAIMS: usize = 4096;
/// Impolite (feed, User-Agent) entries waiting for a write, at most.
pub const MAX_PENDING_IMPOLITE: usize = 4096;
/// Classified User-Agents remembered, at most (the table is emptied when full).
pub const MAX_AGENTS: usize = 8192;
/// Clients whose last unconditional fetch of a feed is remembered across threads, at most.
pub const MAX_LAST_FETCH: usize = 131_072;
/// Longest feed path counted (a longer one is no feed of ours).
const MAX_PATH: usize = 512;
/// Feeds the subscriber gauge labels at most.
pub const MAX_GAUGE_FEEDS: usize = 200;
/// Feeds of one window page read at a time.
const PAGE_FEEDS: usize = 64;
/// Closed day rows read at a time.
const PAGE_DAYS: usize = 500;

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
    /// For telling canonical feed paths, and existing feeds, apart.
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    verifier: Verifier,
    tx: mpsc::Sender<Msg>,
    rx: Mutex<Option<mpsc::Receiver<Msg>>>,
    generation: watch::Sender<u64>,
    /// Registered workers and the last flush generation each has answered.
    reported: Mutex<HashMap<u64, u64>>,
    reported_changed: Notify,
    next_worker: AtomicU64,
    running: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// What the aggregating task holds, in bytes (its own estimate, updated after each step),
    /// and the most it has held.
    held: AtomicUsize,
    held_peak: AtomicUsize,
}

/// What `/api/v1/stats` and `/stats` show.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Every day of the range, oldest first.
    pub days: Vec<DayFigures>,
    /// The last day's subscribers by client, summed over every feed.
    pub clients: Vec<ClientFigure>,
    /// The last day's window claims, largest first, and how many were left out.
    pub claims: Vec<ClaimFigure>,
    pub claims_left_out: u64,
    pub impolite: Vec<ImpoliteSum>,
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
                config: Arc::new(config.clone()),
                verifier: Verifier::new(clock.clone()),
                clock,
                tx,
                rx: Mutex::new(Some(rx)),
                generation: watch::channel(0).0,
                reported: Mutex::new(HashMap::new()),
                reported_changed: Notify::new(),
                next_worker: AtomicU64::new(0),
                running: Mutex::new(None),
                held: AtomicUsize::new(0),
                held_peak: AtomicUsize::new(0),
            }),
        }
    }

    /// Whether feed answers are counted.
    pub fn enabled(&self) -> bool {
        self.inner.enabled
    }

    /// Replaces the DNS resolver fetcher verification uses (tests script it).
    pub fn set_resolver(&self, resolver: Arc<dyn verify::Resolver>) {
        self.inner.verifier.set_resolver(resolver);
    }

    /// Bytes the aggregating task holds: pending totals, sketches, claims and impolite entries,
    /// the classified User-Agents, the cross-thread fetch times and the verifier's cache.
    pub fn held_bytes(&self) -> usize {
        self.inner.held.load(Ordering::Relaxed)
    }

    /// The most [`Readership::held_bytes`] has been since the start.
    pub fn held_peak_bytes(&self) -> usize {
        self.inner.held_peak.load(Ordering::Relaxed)
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
        self.inner.verifier.start();
        let task = Aggregator {
            readership: self.clone(),
            store,
            metrics,
            secret,
            pending: BTreeMap::new(),
            pending_sketches: 0,
            pending_claims: 0,
            pending_impolite: 0,
            agents: HashMap::new(),
            closed_through: None,
            last_fetch: HashMap::new(),
            epoch: std::time::Instant::now(),
            gauges_at: None,
            failed_at: None,
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
            // The slot first, then the drain: while the queue is full this thread keeps counting
            // into its (bounded) tally instead of holding a drained copy as well.
            let Ok(permit) = self.inner.tx.reserve().await else {
                return;
            };
            let generation = *generations.borrow_and_update();
            let snapshot = tally::drain();
            if forced || !snapshot.is_empty() {
                permit.send(Msg::Snapshot {
                    worker: id,
                    generation,
                    snapshot,
                });
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

    /// One page of feeds with data in the window ending on `day`, after `after`: each feed's
    /// live figures and its totals row of `day`, if any. `None` past the last feed.
    ///
    /// `push` ([`Readership::push`] when the day is today, or is being closed just after it
    /// ended; empty otherwise) adds the hub's subscribers to the feeds of each page, and once the
    /// polled feeds run out, the feeds only push subscribers read as a last page.
    async fn window_page(
        &self,
        store: &dyn Store,
        day: NaiveDate,
        after: Option<String>,
        push: &mut PushFigures,
    ) -> Result<Option<(Vec<(String, figures::Live, Option<StoredTotals>)>, String)>, StoreError>
    {
        let (from, to) = figures::window(day);
        let cursor = after.clone().unwrap_or_default();
        let rows = store.readership_window(from, to, after, PAGE_FEEDS).await?;
        let Some(last) = rows.feeds.last().cloned() else {
            if push.is_empty() {
                return Ok(None);
            }
            let rest = push
                .take_rest()
                .into_iter()
                .map(|(feed, live)| (feed, live, None))
                .collect();
            // The same cursor again: the store has nothing after it, and `push` is empty now.
            return Ok(Some((rest, cursor)));
        };
        let names = self.partner_name();
        let mut by_feed: BTreeMap<&str, FeedRows<'_>> = rows
            .feeds
            .iter()
            .map(|f| (f.as_str(), FeedRows::default()))
            .collect();
        let WindowRows {
            sketches,
            claims,
            partners,
            totals,
            ..
        } = &rows;
        for s in sketches {
            if let Some(r) = by_feed.get_mut(s.feed.as_str()) {
                r.sketches.push(s);
            }
        }
        for c in claims {
            if let Some(r) = by_feed.get_mut(c.feed.as_str()) {
                r.claims.push(c);
            }
        }
        for p in partners {
            if let Some(r) = by_feed.get_mut(p.feed.as_str()) {
                r.partners.push(p);
            }
        }
        for t in totals {
            if let Some(r) = by_feed.get_mut(t.totals.feed.as_str()) {
                r.totals.push(t);
            }
        }
        let out = by_feed
            .into_iter()
            .map(|(feed, r)| {
                let mut live = figures::feed_on(day, feed, &r, &names);
                push.add_to(feed, &mut live);
                let today = r
                    .totals
                    .iter()
                    .find(|t| t.totals.day == day)
                    .map(|t| (*t).clone());
                (feed.to_string(), live, today)
            })
            .collect();
        Ok(Some((out, last)))
    }

    /// Figures of the last `days` days (today included), oldest first, with the last day's
    /// claims and clients and the range's impolite pollers. Closed days are read from their
    /// stored figures a page at a time; only today and days not closed yet are computed from
    /// their window's sketches, a page of feeds at a time.
    pub async fn stats(&self, store: &dyn Store, days: u32) -> Result<Stats, StoreError> {
        let today = self.today();
        let from = today - Days::new(u64::from(days.max(1)) - 1);
        let mut live: Vec<NaiveDate> = store
            .open_readership_days(today)
            .await?
            .into_iter()
            .filter(|d| *d >= from)
            .collect();
        live.push(today);
        let mut acc: BTreeMap<NaiveDate, DayAccumulator> = BTreeMap::new();
        let mut day = from;
        while day <= today {
            acc.insert(day, DayAccumulator::new(day, day == today));
            day = day + Days::new(1);
        }

        // Closed days, from their stored figures.
        let mut after = None;
        loop {
            let page = store
                .readership_days(from, today, after.take(), PAGE_DAYS)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.totals.day, last.totals.feed.clone()));
            let full = page.len() == PAGE_DAYS;
            for t in &page {
                if live.contains(&t.totals.day) {
                    continue;
                }
                let Some(a) = acc.get_mut(&t.totals.day) else {
                    continue;
                };
                a.note_overflow(t.overflow.readers_folded, t.overflow.claims_dropped);
                if let Some(f) = figures::closed_feed(t) {
                    a.add(f, &[]);
                }
            }
            if !full {
                break;
            }
        }

        // Live days, from their windows.
        let mut top_claims = TopClaims::default();
        for day in live {
            let Some(a) = acc.get_mut(&day) else { continue };
            let mut push = if day == today {
                self.push(store).await?
            } else {
                PushFigures::default()
            };
            let mut after = None;
            while let Some((page, last)) = self
                .window_page(store, day, after.take(), &mut push)
                .await?
            {
                after = Some(last);
                for (feed, l, totals) in page {
                    if totals.is_none() && l.subscribers == 0 {
                        continue;
                    }
                    if day == today {
                        for c in &l.claims {
                            top_claims.add(c.clone());
                        }
                    }
                    let t = totals.unwrap_or(StoredTotals {
                        totals: DayTotals {
                            day,
                            feed: feed.clone(),
                            polls: 0,
                            not_modified: 0,
                            bytes: 0,
                        },
                        closed: None,
                        overflow: Default::default(),
                    });
                    a.note_overflow(t.overflow.readers_folded, t.overflow.claims_dropped);
                    let (clients, clients_left_out) = figures::listed(l.clients.clone());
                    a.add(
                        FeedFigures {
                            feed,
                            subscribers: l.subscribers,
                            polls: t.totals.polls,
                            not_modified: t.totals.not_modified,
                            bytes: t.totals.bytes,
                            clients,
                            clients_left_out,
                        },
                        &l.clients,
                    );
                }
            }
        }

        let mut clients = Vec::new();
        let mut out = Vec::with_capacity(acc.len());
        for (day, a) in acc {
            let (figures, c) = a.finish();
            if day == today {
                clients = c;
            }
            out.push(figures);
        }
        clients.truncate(figures::TOP_FEEDS * figures::TOP_CLIENTS);
        let impolite = store.readership_impolite(from, today, 20).await?;
        Ok(Stats {
            days: out,
            clients,
            claims: top_claims.list,
            claims_left_out: top_claims.left_out,
            impolite,
        })
    }

    /// Whether `path` is a feed path as bantin writes it (`//vi/rss.xml`, `/vi/./rss.xml` are
    /// not), so a spelling never becomes a readership feed of its own.
    /// The built-in hub's active subscriptions now, per feed and callback host ([`push`]).
    async fn push(&self, store: &dyn Store) -> Result<PushFigures, StoreError> {
        let config = &self.inner.config;
        if !config.websub.builtin {
            return Ok(PushFigures::default());
        }
        let rows = store.subscription_hosts(self.inner.clock.now()).await?;
        let base = config.public_base();
        let base = base.as_str().trim_end_matches('/');
        Ok(PushFigures::from_rows(rows, |topic| {
            let path = topic.strip_prefix(base)?;
            self.canonical(path).map(|_| path.to_string())
        }))
    }

    fn canonical(&self, path: &str) -> Option<crate::model::FeedKey> {
        if path.len() > MAX_PATH {
            return None;
        }
        let config = &self.inner.config;
        match crate::routes::parse_path(config, path) {
            Ok(crate::routes::Target::Feed(key, format)) if key.path(config, format) == path => {
                Some(key)
            }
            _ => None,
        }
    }
}

/// Counts what a bound left out.
fn dropped(metrics: &Metrics, what: &'static str, n: u64) {
    if n > 0 {
        metrics
            .readership_dropped
            .get_or_create(&WhatLabel { what })
            .inc_by(n);
    }
}

/// The keyed hash naming one reader: SipHash-2-4 of the address (as 16 bytes) and User-Agent.
fn reader_hash(secret: &[u8; 16], addr: IpAddr, user_agent: &str) -> u64 {
    let octets = match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    let mut h = siphasher::sip::SipHasher24::new_with_key(secret);
    h.write(&octets);
    h.write(user_agent.as_bytes());
    h.finish()
}

/// A feed-day's distinct readers waiting for a write: all of them, and by family (at most
/// [`MAX_FAMILIES`], the rest folded into `other` as the store does).
struct Readers {
    all: Sketch,
    families: Vec<(String, Sketch)>,
}

impl Readers {
    fn new() -> Readers {
        Readers {
            all: Sketch::new(sketch::ALL),
            families: Vec::new(),
        }
    }

    fn insert(&mut self, family: &str, hash: u64) {
        self.all.insert(hash);
        let named = self
            .families
            .iter()
            .filter(|(f, _)| f != OTHER_FAMILY)
            .count();
        let family = if self.families.iter().any(|(f, _)| f == family)
            || family == OTHER_FAMILY
            || named < MAX_FAMILIES - 1
        {
            family
        } else {
            OTHER_FAMILY
        };
        match self.families.iter_mut().find(|(f, _)| f == family) {
            Some((_, s)) => s.insert(hash),
            None => {
                let mut s = Sketch::new(sketch::FAMILY);
                s.insert(hash);
                self.families.push((family.to_string(), s));
            }
        }
    }

    fn size_of(&self) -> usize {
        self.all.size_of()
            + self
                .families
                .iter()
                .map(|(f, s)| f.capacity() + s.size_of() + 24)
                .sum::<usize>()
    }
}

/// A claim waiting for a write.
#[derive(Clone, Copy)]
struct PendingClaim {
    subscribers: u64,
    first_seen: i64,
    last_seen: i64,
    verdict: Verdict,
}

/// What is waiting to be written, per day and feed.
#[derive(Default)]
struct Pending {
    polls: u64,
    not_modified: u64,
    bytes: u64,
    partners: BTreeMap<String, u64>,
    /// By (aggregator, network): whatever feed id the User-Agent names.
    claims: BTreeMap<(String, String), PendingClaim>,
    readers: Option<Box<Readers>>,
    impolite: HashMap<String, (u64, u64)>,
}

struct Aggregator {
    readership: Readership,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    secret: [u8; 16],
    pending: BTreeMap<(NaiveDate, String), Pending>,
    pending_sketches: usize,
    pending_claims: usize,
    pending_impolite: usize,
    /// Classified User-Agents by hash (bounded: emptied when full).
    agents: HashMap<u64, Agent>,
    /// The last day whose closing ran.
    closed_through: Option<NaiveDate>,
    /// Each client's latest unconditional fetch per feed, across threads and intervals, by a
    /// hash of (feed, address, User-Agent), in whole seconds since `epoch` (only those within
    /// max-age matter; older ones are dropped at each write).
    last_fetch: HashMap<u64, u32>,
    epoch: std::time::Instant,
    gauges_at: Option<tokio::time::Instant>,
    /// When a write last failed (an early write waits a flush interval after one).
    failed_at: Option<tokio::time::Instant>,
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
                        self.note_held();
                        let i = &self.readership.inner;
                        if let Some(g) = i.reported.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&worker) {
                            *g = (*g).max(generation);
                        }
                        i.reported_changed.notify_waiters();
                        let recently_failed = self
                            .failed_at
                            .is_some_and(|t| t.elapsed() < self.readership.inner.flush_interval);
                        if self.full() && !recently_failed {
                            let _ = self.write().await;
                        }
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
            self.note_held();
        }
    }

    /// Whether a bound is reached, so the next snapshot would lose readers.
    fn full(&self) -> bool {
        self.pending_sketches >= MAX_PENDING_SKETCHES
            || self.pending.len() >= MAX_PENDING_FEEDS
            || self.pending_claims >= MAX_PENDING_CLAIMS
            || self.pending_impolite >= MAX_PENDING_IMPOLITE
    }

    /// Bytes held, by the sizes of what the maps hold (tables counted by capacity).
    fn note_held(&self) {
        let mut n = 0usize;
        for ((_, feed), p) in &self.pending {
            n += 160 + feed.capacity();
            n += p.partners.keys().map(|k| 48 + k.capacity()).sum::<usize>();
            n += p
                .claims
                .keys()
                .map(|(a, b)| 96 + a.capacity() + b.capacity())
                .sum::<usize>();
            n += p.readers.as_ref().map_or(0, |r| r.size_of());
            n +=
                p.impolite.capacity() * 56 + p.impolite.keys().map(|k| k.capacity()).sum::<usize>();
        }
        n += self.agents.capacity() * 72
            + self
                .agents
                .values()
                .map(|a| match a {
                    Agent::Aggregator { name, feed_id, .. } => name.capacity() + feed_id.capacity(),
                    Agent::Reader { name } => name.capacity(),
                    _ => 0,
                })
                .sum::<usize>();
        n += self.last_fetch.capacity() * 13;
        n += self.readership.inner.verifier.remembered() * 40;
        self.readership.inner.held.store(n, Ordering::Relaxed);
        self.readership
            .inner
            .held_peak
            .fetch_max(n, Ordering::Relaxed);
        self.metrics.readership_bytes.set(n as i64);
    }

    fn merge(&mut self, snap: Snapshot) {
        let metrics = self.metrics.clone();
        dropped(&metrics, "polls", snap.dropped);
        let now = self.readership.inner.clock.now();
        let at = now.timestamp();
        let day = self.readership.local_day(now);
        if self.agents.len() >= MAX_AGENTS {
            self.agents = HashMap::new();
        }
        let partners = &self.readership.inner.partners;
        let max_age = self.readership.inner.max_age;
        let secs = |t: std::time::Instant| {
            t.saturating_duration_since(self.epoch)
                .as_secs()
                .min(u64::from(u32::MAX)) as u32
        };
        for f in snap.feeds {
            if self.readership.canonical(&f.path).is_none() {
                dropped(&metrics, "feeds", f.polls);
                continue;
            }
            let key = (day, f.path);
            if !self.pending.contains_key(&key) && self.pending.len() >= MAX_PENDING_FEEDS {
                dropped(&metrics, "feeds", f.polls);
                continue;
            }
            let p = self.pending.entry(key.clone()).or_default();
            let path = &key.1;
            p.polls = p.polls.saturating_add(f.polls);
            p.not_modified = p.not_modified.saturating_add(f.not_modified);
            p.bytes = p.bytes.saturating_add(f.bytes);
            for (i, n) in f.partners {
                if let Some((id, _)) = partners.get(usize::from(i)) {
                    let e = p.partners.entry(id.clone()).or_default();
                    *e = e.saturating_add(n);
                }
            }
            for mut c in f.clients {
                if let (Some(first), Some(last)) = (c.first_unconditional, c.last_unconditional) {
                    // The same client fetching on another thread (another connection) within
                    // max-age: too soon as well. Either order of arrival gives the same answer.
                    let mut h = xxhash_rust::xxh3::Xxh3::new();
                    h.update(path.as_bytes());
                    h.update(&c.addr.to_canonical().to_string().into_bytes());
                    h.update(&c.user_agent.to_le_bytes());
                    let k = h.digest();
                    let (first, last) = (secs(first), secs(last));
                    if let Some(prev) = self.last_fetch.get(&k) {
                        if u64::from(first.abs_diff(*prev)) < max_age.as_secs() {
                            c.too_soon += 1;
                        }
                        let e = self.last_fetch.get_mut(&k).expect("present");
                        *e = (*e).max(last);
                    } else if self.last_fetch.len() < MAX_LAST_FETCH {
                        self.last_fetch.insert(k, last);
                    }
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
                        name, subscribers, ..
                    } => {
                        let network = claims::network_of(c.addr).to_string();
                        let verdict = match verify::rule_for(name) {
                            Some(rule) => self.readership.inner.verifier.check(rule, c.addr),
                            None => Verdict::Unverifiable,
                        };
                        let seen = PendingClaim {
                            subscribers: (*subscribers).min(claims::MAX_CLAIM),
                            first_seen: at,
                            last_seen: at,
                            verdict,
                        };
                        let ck = (name.clone(), network);
                        if let Some(e) = p.claims.get_mut(&ck) {
                            e.subscribers = seen.subscribers;
                            e.last_seen = at;
                            e.verdict = e.verdict.max(verdict);
                        } else if p.claims.len() < MAX_CLAIMS
                            && self.pending_claims < MAX_PENDING_CLAIMS
                        {
                            p.claims.insert(ck, seen);
                            self.pending_claims += 1;
                        } else {
                            dropped(&metrics, "claims", 1);
                        }
                    }
                    Agent::Reader { name } => {
                        let h = reader_hash(&self.secret, c.addr, ua);
                        match &mut p.readers {
                            Some(r) => r.insert(name, h),
                            None if self.pending_sketches < MAX_PENDING_SKETCHES => {
                                let mut r = Box::new(Readers::new());
                                r.insert(name, h);
                                p.readers = Some(r);
                                self.pending_sketches += 1;
                            }
                            None => dropped(&metrics, "readers", 1),
                        }
                    }
                    Agent::Browser | Agent::Bot => {}
                }
                if c.too_soon > 0 && !matches!(agent, Agent::Browser) {
                    let mut cut = ua.len().min(MAX_USER_AGENT);
                    while !ua.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    let ua = &ua[..cut];
                    let known = p.impolite.contains_key(ua);
                    if known || self.pending_impolite < MAX_PENDING_IMPOLITE {
                        if !known {
                            self.pending_impolite += 1;
                        }
                        let e = p.impolite.entry(ua.to_string()).or_default();
                        e.0 = e.0.saturating_add(u64::from(c.unconditional));
                        e.1 = e.1.saturating_add(u64::from(c.too_soon));
                    } else {
                        dropped(&metrics, "impolite", 1);
                    }
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
            for ((aggregator, network), c) in &p.claims {
                b.claims.push(Claim {
                    day,
                    feed: feed.clone(),
                    aggregator: aggregator.clone(),
                    network: network.clone(),
                    subscribers: c.subscribers,
                    first_seen: c.first_seen,
                    last_seen: c.last_seen,
                    verdict: c.verdict.code(),
                });
            }
            if let Some(r) = &p.readers {
                b.sketches.push(ReaderSketch {
                    day,
                    feed: feed.clone(),
                    family: ALL_READERS.into(),
                    sketch: r.all.to_bytes(),
                });
                for (family, s) in &r.families {
                    b.sketches.push(ReaderSketch {
                        day,
                        feed: feed.clone(),
                        family: family.clone(),
                        sketch: s.to_bytes(),
                    });
                }
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
        let max_age = self.readership.inner.max_age.as_secs();
        let now = std::time::Instant::now()
            .saturating_duration_since(self.epoch)
            .as_secs();
        self.last_fetch
            .retain(|_, t| now.saturating_sub(u64::from(*t)) < max_age);
        self.last_fetch
            .shrink_to(self.last_fetch.len().saturating_mul(2));
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = self.batch();
        match self.store.add_readership(&batch).await {
            Ok(()) => {
                self.pending = BTreeMap::new();
                self.pending_sketches = 0;
                self.pending_claims = 0;
                self.pending_impolite = 0;
                self.failed_at = None;
                Ok(())
            }
            Err(e) => {
                self.failed_at = Some(tokio::time::Instant::now());
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
            if let Err(e) = self.gauges(today).await {
                tracing::warn!(error = %e, "could not compute subscriber gauges");
            }
        }
    }

    /// Today's subscribers of the largest [`MAX_GAUGE_FEEDS`] canonical feeds that exist now,
    /// computed a page of feeds at a time.
    async fn gauges(&self, today: NaiveDate) -> Result<(), StoreError> {
        let r = &self.readership;
        let store = &*self.store;
        // Twice the bound, so feeds that no longer exist can be passed over.
        let keep = 2 * MAX_GAUGE_FEEDS;
        let mut top: Vec<(u64, String)> = Vec::new();
        let mut push = r.push(store).await?;
        let mut after = None;
        while let Some((page, last)) = r.window_page(store, today, after.take(), &mut push).await? {
            after = Some(last);
            for (feed, live, _) in page {
                if live.subscribers == 0 {
                    continue;
                }
                let item = (live.subscribers, feed);
                let at = top
                    .binary_search_by(|x| item.0.cmp(&x.0).then_with(|| x.1.cmp(&item.1)))
                    .unwrap_or_else(|i| i);
                if at < keep {
                    top.insert(at, item);
                    top.truncate(keep);
                }
            }
        }
        let now = r.inner.clock.now();
        let mut series = Vec::new();
        for (subscribers, feed) in top {
            if series.len() >= MAX_GAUGE_FEEDS {
                break;
            }
            let Some(key) = r.canonical(&feed) else {
                continue;
            };
            let exists = match key.selector {
                crate::model::Selector::All | crate::model::Selector::Category(_) => true,
                _ => store.count_visible(&key, now).await? > 0,
            };
            if exists {
                series.push((feed, subscribers));
            }
        }
        let family = &self.metrics.feed_subscribers;
        family.clear();
        for (feed, n) in series {
            family
                .get_or_create(&crate::metrics::FeedLabel { feed })
                .set(n.min(i64::MAX as u64) as i64);
        }
        Ok(())
    }

    async fn close_days(&self, today: NaiveDate) -> Result<(), StoreError> {
        let r = &self.readership;
        let store = &*self.store;
        let yesterday = today - Days::new(1);
        let open = store.open_readership_days(today).await?;
        let from = open.first().copied().unwrap_or(yesterday).min(yesterday);
        let mut day = from;
        while day <= yesterday {
            // Subscriptions are present state: they belong to the day just ended, not to one
            // closed late.
            let mut push = if day == yesterday {
                r.push(store).await?
            } else {
                PushFigures::default()
            };
            let mut after = None;
            while let Some((page, last)) =
                r.window_page(store, day, after.take(), &mut push).await?
            {
                after = Some(last);
                let closed: Vec<ClosedDay> = page
                    .into_iter()
                    .filter(|(_, live, totals)| totals.is_some() || live.subscribers > 0)
                    .map(|(feed, live, _)| ClosedDay {
                        day,
                        feed,
                        subscribers: live.subscribers,
                        clients: serde_json::to_string(&live.clients).expect("figures serialise"),
                    })
                    .collect();
                store.close_readership_days(&closed).await?;
            }
            day = day + Days::new(1);
        }
        let keep = u64::from(r.inner.keep_days);
        store
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
            reader_hash(&k1, a, "FreshRSS")
        );
        assert_ne!(
            reader_hash(&k1, a, "Miniflux"),
            reader_hash(&k2, a, "Miniflux")
        );
    }

    #[test]
    fn only_canonical_feed_paths_are_counted() {
        let r = Readership::new(
            &crate::article::tests::config(),
            Arc::new(crate::clock::SystemClock),
        );
        assert!(r.canonical("/vi/rss.xml").is_some());
        assert!(r.canonical("/en/defence/atom.xml").is_some());
        assert!(r.canonical("/vi/tag/gia-lua/feed.json").is_some());
        for bad in [
            "//vi/rss.xml",
            "///vi/rss.xml",
            "/vi//rss.xml",
            "/vi/",
            "/vi/nope/rss.xml",
            "/xx/rss.xml",
        ] {
            assert!(r.canonical(bad).is_none(), "{bad}");
        }
        assert!(
            r.canonical(&format!("/vi/tag/{}/rss.xml", "a".repeat(600)))
                .is_none()
        );
    }

    #[test]
    fn pending_families_are_bounded_like_the_stored_ones() {
        let mut r = Readers::new();
        for i in 0..100u64 {
            r.insert(
                &format!("f{}", i % 20),
                xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()),
            );
        }
        assert_eq!(r.families.len(), MAX_FAMILIES);
        assert!(r.families.iter().any(|(f, _)| f == OTHER_FAMILY));
        assert_eq!(r.all.estimate(), 100);
        let in_families: u64 = r.families.iter().map(|(_, s)| s.estimate()).sum();
        assert_eq!(in_families, 100, "every reader is in one family sketch");
    }
}
