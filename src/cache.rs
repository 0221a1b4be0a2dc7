//! The rendered-feed cache: moka, keyed by what was rendered ([`Key`]), weighed in bytes.
//!
//! Everything bantin renders for a request lives here, under one budget: feed pages (by feed,
//! format, page and variant), HTML previews of feed pages (by feed and page), and the lists of
//! feeds (the OPML, one per partner, since each embeds its key, and the HTML index). A preview is
//! invalidated with its feed; a list with any write, since any write may add, remove or reorder
//! the feeds it names.
//!
//! Four guarantees shape it:
//! - **One render per miss.** Concurrent misses for one key wait on a single render (moka's
//!   per-key `and_try_compute_with` lock); `renders()` counts renders so tests can prove it.
//! - **Read your writes.** A write bumps a generation counter and records it against each feed
//!   it touched; an entry rendered from a generation older than its feed's last invalidation is
//!   never served fresh, even if its render was in flight when the write landed (that render may
//!   have read the old rows).
//! - **Scheduled publishing.** Each entry is fresh until the earlier of the configured TTL and the
//!   next scheduled `published_at` of its feed, so an embargoed article appears on time without
//!   a write.
//! - **One memory budget.** `[cache] max_bytes` bounds every byte of every cached body. The moka
//!   map holds three quarters of it; each HTTP worker's own references ([`FeedCache::hot`]) may pin
//!   at most its share of the last quarter, counted as if none of them were shared with the map.
//!   There is no second map of "last good" copies: an entry stays in the one map, stale, after its
//!   TTL or an invalidation, for `stale_if_error` more seconds, and is what a failed render falls
//!   back to. Bodies live once (see `render`): no heap copy beside the memfd, no per-thread copy.
//!   Every entry's bytes are counted while it lives ([`FeedCache::live_bytes`]), whoever holds it.
//! - **Compressed twice.** A miss is answered with bodies compressed at fast levels (`render`);
//!   once a worker serves the entry a second time, the entry is recompressed at the best ratio in
//!   the background ([`crate::background`]: lowest priority, bounded) and swapped in if it is still
//!   the cached one. Entries with under [`MIN_PAYBACK`] left to live are not worth it and skipped.
//!   Both versions answer 304 to either's ETag (see `http::conditional`). Previews and lists are
//!   answered on the axum path, not from workers' references, and keep their fast bodies.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};

use crate::background::Background;
use crate::clock::Clock;
use crate::model::{FeedKey, Format};
use crate::render::{Level, Representation};

/// Least fresh life an entry must have left for a best-ratio recompression to be worth its CPU.
pub const MIN_PAYBACK: Duration = Duration::from_secs(30);

/// `t + d`, saturating (a TTL from the configuration cannot overflow the calendar).
fn later(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Recompressions waiting at most; beyond, offers are dropped.
const RECOMPRESS_QUEUE: usize = 256;

/// A feed's cache key: one page of one feed in one format, full or summary-only. Partners get the full
/// variant and the public the configured one, so there are at most two variants per page, and
/// one when the public variant is the full text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub feed: FeedKey,
    pub format: Format,
    pub page: u32,
    pub content: crate::model::Content,
}

/// Everything the cache holds, by what it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A page of a feed in one format.
    Feed(CacheKey),
    /// A page of a feed's HTML preview (one variant: previews never carry the body).
    Preview { feed: FeedKey, page: u32 },
    /// A list of every listed feed.
    List(List),
}

/// The lists of feeds: each depends on every feed, so any write makes them stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum List {
    /// `/feeds.opml`.
    Opml,
    /// `/feeds.opml?key=…` of the partner at this index of `Config::partners`: the key is in every
    /// URL of it, so there is one per partner (bounded by the configuration, never by requests).
    PartnerOpml(u16),
    /// The HTML index `/`.
    Index,
}

impl From<CacheKey> for Key {
    fn from(k: CacheKey) -> Key {
        Key::Feed(k)
    }
}

impl From<&CacheKey> for Key {
    fn from(k: &CacheKey) -> Key {
        Key::Feed(k.clone())
    }
}

impl From<&Key> for Key {
    fn from(k: &Key) -> Key {
        k.clone()
    }
}

impl Key {
    /// The feed whose invalidation makes this entry stale; `None` for lists (any write does).
    pub fn feed(&self) -> Option<&FeedKey> {
        match self {
            Key::Feed(k) => Some(&k.feed),
            Key::Preview { feed, .. } => Some(feed),
            Key::List(_) => None,
        }
    }
}

/// Bytes and entries alive, whoever holds them (the map, a worker, a response being sent).
#[derive(Debug, Default)]
pub struct Live {
    bytes: AtomicI64,
    entries: AtomicI64,
}

/// A cached representation with what decides its freshness.
#[derive(Debug)]
pub struct Entry {
    pub rep: Representation,
    /// The cache generation when its render began.
    generation: u64,
    /// When it was rendered and until when it is fresh (min(TTL, the feed's next publication)
    /// after that), both by the cache's [`Clock`].
    born: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// How long moka keeps it: fresh life + `stale_if_error`.
    keep: Duration,
    weight: usize,
    live: Arc<Live>,
    /// Offered for recompression already (at most once per entry).
    offered: AtomicBool,
}

impl Entry {
    /// Whether it is still within its TTL at `now` (an invalidation is checked separately). A
    /// clock stepped back to before its render also ends it, so a wall-clock step never extends
    /// an entry's life beyond its TTL.
    pub fn unexpired_at(&self, now: DateTime<Utc>) -> bool {
        self.born <= now && now < self.expires_at
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.live
            .bytes
            .fetch_sub(self.weight as i64, Ordering::Relaxed);
        self.live.entries.fetch_sub(1, Ordering::Relaxed);
    }
}

struct EntryExpiry;

impl Expiry<Key, Arc<Entry>> for EntryExpiry {
    fn expire_after_create(&self, _: &Key, v: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(v.keep)
    }
    fn expire_after_update(
        &self,
        _: &Key,
        v: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.keep)
    }
}

/// What a render produced, before the cache wraps it.
pub struct Rendered {
    pub rep: Representation,
    /// Until when it is true (the feed's next scheduled publication), if bounded.
    pub valid_for: Option<Duration>,
}

/// Whether a failed render may be answered with the last good copy: yes when the store is down,
/// no when the page no longer exists (serving its old copy would resurrect deleted pages).
pub trait RenderFailure {
    fn serve_stale(&self) -> bool;
}

impl RenderFailure for String {
    fn serve_stale(&self) -> bool {
        true
    }
}

/// How many visible items a feed has, for answering pages past the end without a deep query.
#[derive(Debug, Clone, Copy)]
struct Count {
    items: u64,
    generation: u64,
    born: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// Feeds whose item count is remembered; a count is a few dozen bytes.
const MAX_COUNTS: u64 = 10_000;

/// Invalidation records kept before they are folded into one "everything older is stale" mark.
const MAX_INVALIDATION_RECORDS: usize = 50_000;

pub struct FeedCache {
    /// Distinguishes this cache's thread-local references from another instance's (tests run many).
    id: u64,
    entries: Cache<Key, Arc<Entry>>,
    counts: Cache<FeedKey, Count>,
    ttl: Duration,
    stale_if_error: Duration,
    /// What freshness is judged by: the system clock, or a test's.
    clock: Arc<dyn Clock>,
    generation: Arc<AtomicU64>,
    /// Per feed, the generation of its last invalidation.
    invalidated: RwLock<HashMap<FeedKey, u64>>,
    /// Generation of the last "drop everything".
    flushed: AtomicU64,
    /// Generation of the last invalidation of any feed: the lists of feeds are stale from there.
    lists_invalidated: AtomicU64,
    renders: AtomicU64,
    live: Arc<Live>,
    /// Most bytes one worker thread may pin with its own references.
    hot_max_bytes: usize,
    background: Background,
    recompressions: Arc<AtomicU64>,
}

static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// A worker thread's reference to an entry: cloning it is a non-atomic increment in memory only
/// that thread writes, so a hit shares no cache line with other cores.
pub type Local = Rc<Arc<Entry>>;

/// A thread's reference to a current entry.
struct Hot {
    /// The cache generation when the entry was looked up: any invalidation since voids it.
    generation: u64,
    entry: Local,
    /// Hits this thread answered from it.
    hits: std::cell::Cell<u32>,
}

/// One thread's references, by (cache id, key), and the bytes they pin.
/// This thread's references by cache (its id) then key, so a lookup borrows the key rather
/// than cloning its strings; and their total weight.
type HotMap = (HashMap<u64, HashMap<CacheKey, Hot>>, usize);

thread_local! {
    static HOT: RefCell<HotMap> = RefCell::new((HashMap::new(), 0));
}

/// How a lookup was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Hit,
    Rendered,
    /// The render failed; this is the last good copy.
    Stale,
}

impl FeedCache {
    /// A cache of at most `max_bytes`, shared by `workers` HTTP worker threads.
    pub fn new(
        max_bytes: u64,
        ttl: Duration,
        stale_if_error: Duration,
        workers: usize,
    ) -> FeedCache {
        let weigher = |_: &Key, v: &Arc<Entry>| -> u32 { v.weight.try_into().unwrap_or(u32::MAX) };
        let map_bytes = max_bytes / 4 * 3;
        FeedCache {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            entries: Cache::builder()
                .max_capacity(map_bytes)
                .weigher(weigher)
                .expire_after(EntryExpiry)
                .build(),
            counts: Cache::builder()
                .max_capacity(MAX_COUNTS)
                .time_to_live(ttl)
                .build(),
            ttl,
            stale_if_error,
            clock: Arc::new(crate::clock::SystemClock),
            generation: Arc::new(AtomicU64::new(1)),
            invalidated: RwLock::new(HashMap::new()),
            flushed: AtomicU64::new(0),
            lists_invalidated: AtomicU64::new(0),
            renders: AtomicU64::new(0),
            live: Arc::new(Live::default()),
            hot_max_bytes: ((max_bytes - map_bytes) / workers.max(1) as u64) as usize,
            background: Background::start(
                "bantin-recompress",
                std::thread::available_parallelism().map_or(1, |n| n.get()),
                RECOMPRESS_QUEUE,
            ),
            recompressions: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The same cache judging freshness by `clock` (a test's manual clock: an embargo ends when
    /// the test says so, not after real seconds).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> FeedCache {
        self.clock = clock;
        self
    }

    /// The time freshness is judged at.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Best-ratio recompressions swapped in so far.
    pub fn recompressions(&self) -> u64 {
        self.recompressions.load(Ordering::Relaxed)
    }

    /// Offers `entry` (cached under `key`) for a best-ratio recompression, once.
    pub fn offer_best(&self, key: &Key, entry: &Arc<Entry>) {
        if entry.rep.level == Level::Best || entry.offered.swap(true, Ordering::Relaxed) {
            return;
        }
        let (key, weak) = (key.clone(), Arc::downgrade(entry));
        let (entries, generation) = (self.entries.clone(), self.generation.clone());
        let (live, done) = (self.live.clone(), self.recompressions.clone());
        let clock = self.clock.clone();
        let offered = self.background.offer(move || {
            // Work on a copy of the identity body, holding no reference to the entry meanwhile: a
            // write may make it stale, and then its memory must go at once, not after a
            // low-priority compression finishes.
            let (body, meta) = {
                let Some(old) = weak.upgrade() else { return };
                let left = (old.expires_at - clock.now()).to_std().unwrap_or_default();
                if left < MIN_PAYBACK {
                    return;
                }
                (old.rep.identity.bytes.to_vec(), old.rep.meta().clone())
            };
            let rep = Representation::best_from(body, meta);
            let Some(old) = weak.upgrade() else { return };
            let weight = rep.weight();
            live.bytes.fetch_add(weight as i64, Ordering::Relaxed);
            live.entries.fetch_add(1, Ordering::Relaxed);
            let new = Arc::new(Entry {
                rep,
                generation: old.generation,
                born: old.born,
                expires_at: old.expires_at,
                keep: old.keep,
                weight,
                live,
                offered: AtomicBool::new(true),
            });
            let swapped = futures::executor::block_on(entries.entry_by_ref(&key).and_compute_with(
                |existing| async move {
                    match existing {
                        // Only if the entry is still the cached one: a write may have replaced it.
                        Some(e) if Arc::ptr_eq(e.value(), &old) => Op::Put(new),
                        _ => Op::Nop,
                    }
                },
            ));
            if matches!(swapped, CompResult::ReplacedWith(_)) {
                done.fetch_add(1, Ordering::Relaxed);
                // Workers' own references to the fast version go stale and are looked up again.
                generation.fetch_add(1, Ordering::AcqRel);
            }
        });
        if !offered {
            // The queue is full: let a later hit offer it again.
            entry.offered.store(false, Ordering::Relaxed);
        }
    }

    /// Largest number of memfds the cache can hold at once: every entry that has one weighs at
    /// least [`crate::render::MEMFILE_MIN_BYTES`]. The connection cap leaves this many file
    /// descriptors free.
    pub fn max_files(max_bytes: u64) -> u64 {
        max_bytes / crate::render::MEMFILE_MIN_BYTES as u64
    }

    /// Number of renders so far (each miss that reached the store).
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Bytes the map holds (moka's weighted size).
    pub fn weighted_size(&self) -> u64 {
        self.entries.weighted_size()
    }

    /// Bytes of every entry still alive, in the map or not (a worker's reference, a response
    /// being sent): what the budget bounds.
    pub fn live_bytes(&self) -> u64 {
        self.live.bytes.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn live_entries(&self) -> u64 {
        self.live.entries.load(Ordering::Relaxed).max(0) as u64
    }

    /// Lets moka finish pending evictions now (tests and `/metrics` read settled sizes).
    pub async fn settle(&self) {
        self.entries.run_pending_tasks().await;
    }

    fn is_current(&self, key: &Key, generation: u64) -> bool {
        match key.feed() {
            Some(feed) => self.is_feed_current(feed, generation),
            None => {
                generation >= self.flushed.load(Ordering::Acquire)
                    && generation >= self.lists_invalidated.load(Ordering::Acquire)
            }
        }
    }

    fn is_feed_current(&self, feed: &FeedKey, generation: u64) -> bool {
        if generation < self.flushed.load(Ordering::Acquire) {
            return false;
        }
        let map = self.invalidated.read().unwrap_or_else(|p| p.into_inner());
        map.get(feed).is_none_or(|&g| generation >= g)
    }

    fn is_fresh(&self, key: &Key, e: &Entry) -> bool {
        e.unexpired_at(self.now()) && self.is_current(key, e.generation)
    }

    /// The current representation of `key`, rendering it with `render` on a miss. Concurrent
    /// misses share one render. When the render fails and a previous copy is still kept, that copy
    /// is returned with [`Source::Stale`] (stale-if-error); otherwise the error.
    pub async fn get_or_render<F, Fut, E>(
        &self,
        key: impl Into<Key>,
        render: F,
    ) -> Result<(Arc<Entry>, Source), Arc<E>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Rendered, E>>,
        E: RenderFailure + Send + Sync + 'static,
    {
        let key = &key.into();
        // Bounded: a render that loses a race with a write is retried, but a feed written faster
        // than it renders still gets an answer (the newest render, which began after the prior
        // write and so reflects it).
        for attempt in 0..4 {
            if let Some(e) = self.entries.get(key).await
                && self.is_fresh(key, &e)
            {
                return Ok((e, Source::Hit));
            }
            let result = self
                .entries
                .entry_by_ref(key)
                .and_try_compute_with(|existing| async {
                    // Another request may have rendered while this one waited for the key.
                    if let Some(e) = existing
                        && self.is_fresh(key, e.value())
                    {
                        return Ok::<_, E>(Op::Nop);
                    }
                    let generation = self.generation.load(Ordering::Acquire);
                    self.renders.fetch_add(1, Ordering::Relaxed);
                    let r = render().await?;
                    Ok(Op::Put(self.wrap(r, generation)))
                })
                .await;
            match result {
                Ok(CompResult::Inserted(e) | CompResult::ReplacedWith(e)) => {
                    // moka evicts lazily, on its own schedule; a burst of misses could otherwise
                    // run the map past its capacity until then. A miss costs milliseconds; this
                    // costs microseconds.
                    self.entries.run_pending_tasks().await;
                    let e = e.into_value();
                    if self.is_current(key, e.generation) || attempt == 3 {
                        return Ok((e, Source::Rendered));
                    }
                }
                Ok(CompResult::Unchanged(e)) => return Ok((e.into_value(), Source::Hit)),
                Ok(CompResult::StillNone(_) | CompResult::Removed(_)) => {}
                Err(err) => {
                    let stale = match err.serve_stale() {
                        true => self.entries.get(key).await,
                        false => None,
                    };
                    return match stale {
                        Some(e) => Ok((e, Source::Stale)),
                        None => Err(Arc::new(err)),
                    };
                }
            }
        }
        unreachable!("the last attempt always returns")
    }

    fn wrap(&self, r: Rendered, generation: u64) -> Arc<Entry> {
        let fresh = r.valid_for.map_or(self.ttl, |v| v.min(self.ttl));
        let weight = r.rep.weight();
        self.live.bytes.fetch_add(weight as i64, Ordering::Relaxed);
        self.live.entries.fetch_add(1, Ordering::Relaxed);
        let born = self.now();
        Arc::new(Entry {
            rep: r.rep,
            generation,
            born,
            expires_at: later(born, fresh),
            keep: fresh + self.stale_if_error,
            weight,
            live: self.live.clone(),
            offered: AtomicBool::new(false),
        })
    }

    /// The number of visible items of `feed`, from memory when known and current, else from
    /// `count` (which also says until when the number holds: the feed's next publication).
    pub async fn item_count<F, Fut, E>(&self, feed: &FeedKey, count: F) -> Result<u64, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(u64, Option<Duration>), E>>,
    {
        if let Some(c) = self.counts.get(feed).await
            && (c.born..c.expires_at).contains(&self.now())
            && self.is_feed_current(feed, c.generation)
        {
            return Ok(c.items);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let (items, valid_for) = count().await?;
        // A feed with no items (a tag nobody used) is not remembered: URLs an attacker makes up
        // must not fill memory.
        if items > 0 {
            let fresh = valid_for.map_or(self.ttl, |v| v.min(self.ttl));
            let born = self.now();
            self.counts
                .insert(
                    feed.clone(),
                    Count {
                        items,
                        generation,
                        born,
                        expires_at: later(born, fresh),
                    },
                )
                .await;
        }
        Ok(items)
    }

    /// The current generation: it moves on every invalidation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Answers from this thread's own reference to `key`'s entry, if it has one that is still
    /// current.
    ///
    /// The hot path of a poll. Each HTTP worker thread keeps its own references to the entries it
    /// serves, so a hit touches no memory another core writes: no shared reference counts, no
    /// cache-wide locks. A reference is current while the cache's generation is the one it was
    /// taken at (every invalidation moves it on) and its entry has not expired (TTL, next
    /// scheduled publication); a reference found stale is dropped at once, so it pins nothing.
    pub fn hot(&self, key: &CacheKey) -> Option<Local> {
        self.hot_at(key, self.now())
    }

    /// [`FeedCache::hot`] with expiry judged at `now` (the poll fast path's one clock read).
    pub fn hot_at(&self, key: &CacheKey, now: DateTime<Utc>) -> Option<Local> {
        let generation = self.generation();
        HOT.with(|h| {
            let mut h = h.borrow_mut();
            let hot = h.0.get(&self.id)?.get(key)?;
            if hot.generation == generation && hot.entry.unexpired_at(now) {
                // The second hit on this thread shows the feed is polled: worth its best ratio.
                let hits = hot.hits.get() + 1;
                hot.hits.set(hits);
                if hits == 2 {
                    self.offer_best(&Key::Feed(key.clone()), &hot.entry);
                }
                return Some(hot.entry.clone());
            }
            let weight = hot.entry.weight;
            if let Some(m) = h.0.get_mut(&self.id) {
                m.remove(key);
            }
            h.1 -= weight;
            None
        })
    }

    /// Keeps a thread-local reference to `entry`, looked up when the generation was `seen`.
    pub fn keep_hot(&self, key: &CacheKey, entry: &Arc<Entry>, seen: u64) {
        let weight = entry.weight;
        if weight > self.hot_max_bytes / 4 {
            return;
        }
        HOT.with(|h| {
            let mut h = h.borrow_mut();
            if h.1 + weight > self.hot_max_bytes {
                // Over this thread's share: forget this cache's references (their entries stay in
                // the map; only entries the map has already dropped are freed).
                let freed: usize =
                    h.0.remove(&self.id)
                        .map_or(0, |m| m.values().map(|hot| hot.entry.weight).sum());
                h.1 -= freed;
            }
            let hot = Hot {
                generation: seen,
                entry: Rc::new(entry.clone()),
                hits: std::cell::Cell::new(0),
            };
            if let Some(old) = h.0.entry(self.id).or_default().insert(key.clone(), hot) {
                h.1 -= old.entry.weight;
            }
            h.1 += weight;
        });
    }

    /// Drops this thread's references that are no longer current, so an invalidated or expired
    /// entry is freed within a tick even on a worker that is not asked for it again.
    pub fn purge_hot(&self) {
        let generation = self.generation();
        let (id, now) = (self.id, self.now());
        HOT.with(|h| {
            let mut h = h.borrow_mut();
            let mut freed = 0;
            if let Some(m) = h.0.get_mut(&id) {
                m.retain(|_, hot| {
                    let keep = hot.generation == generation && hot.entry.unexpired_at(now);
                    if !keep {
                        freed += hot.entry.weight;
                    }
                    keep
                });
            }
            h.1 -= freed;
        });
    }

    /// Marks every page and format of these feeds stale, and makes any render of them that began
    /// before this call unservable as fresh.
    pub fn invalidate<'a>(&self, feeds: impl IntoIterator<Item = &'a FeedKey>) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let mut map = self.invalidated.write().unwrap_or_else(|p| p.into_inner());
        for f in feeds {
            map.insert(f.clone(), generation);
        }
        // Writes that invent tags and bylines add records; past a bound, one flush mark stands for
        // them all (everything rendered before it is stale), so the map stays bounded.
        if map.len() > MAX_INVALIDATION_RECORDS {
            map.clear();
            self.flushed.store(generation, Ordering::Release);
        }
        self.lists_invalidated.store(generation, Ordering::Release);
        // The entries themselves stay in moka, stale, until their next request replaces them or
        // their keep time ends: they are the stale-if-error copies.
    }

    /// Marks everything stale (a replica that may have missed announcements).
    pub fn invalidate_all(&self) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.flushed.store(generation, Ordering::Release);
    }

    /// Whether a fresh, current entry exists (tests use this to prove invalidation scope).
    pub async fn contains_current(&self, key: impl Into<Key>) -> bool {
        let key = key.into();
        match self.entries.get(&key).await {
            Some(e) => self.is_fresh(&key, &e),
            None => false,
        }
    }

    /// Whether the map holds an entry for `key`, fresh or stale (tests use this to prove an
    /// entry over the budget is not kept).
    pub async fn holds(&self, key: impl Into<Key>) -> bool {
        self.entries.get(&key.into()).await.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Selector;

    fn key(lang: &str, page: u32) -> CacheKey {
        CacheKey {
            feed: FeedKey::new(lang, Selector::All),
            format: Format::Rss,
            page,
            content: crate::model::Content::Full,
        }
    }

    fn rendered(text: &str, valid_for: Option<Duration>) -> Result<Rendered, String> {
        Ok(Rendered {
            rep: Representation::new(text.as_bytes().to_vec(), "text/plain", None, String::new()),
            valid_for,
        })
    }

    fn manual() -> Arc<crate::clock::ManualClock> {
        Arc::new(crate::clock::ManualClock::new(
            "2026-11-23T05:00:00Z".parse().unwrap(),
        ))
    }

    fn cache() -> FeedCache {
        FeedCache::new(
            64 << 20,
            Duration::from_secs(600),
            Duration::from_secs(3600),
            2,
        )
    }

    #[tokio::test]
    async fn a_hit_does_not_render_again() {
        let c = cache();
        let (_, s) = c
            .get_or_render(&key("vi", 1), || async { rendered("a", None) })
            .await
            .unwrap();
        assert_eq!(s, Source::Rendered);
        let (e, s) = c
            .get_or_render(&key("vi", 1), || async { rendered("b", None) })
            .await
            .unwrap();
        assert_eq!(s, Source::Hit);
        assert_eq!(&e.rep.identity.bytes[..], b"a");
        assert_eq!(c.renders(), 1);
    }

    #[tokio::test]
    async fn concurrent_misses_render_once() {
        let c = Arc::new(cache());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                c.get_or_render(&key("vi", 1), || async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    rendered("once", None)
                })
                .await
                .map(|(e, _)| e.rep.identity.bytes.clone())
            }));
        }
        for t in tasks {
            assert_eq!(&t.await.unwrap().unwrap()[..], b"once");
        }
        assert_eq!(c.renders(), 1);
    }

    #[tokio::test]
    async fn invalidation_is_scoped_to_the_touched_feeds() {
        let c = cache();
        for k in [key("vi", 1), key("vi", 2), key("en", 1)] {
            c.get_or_render(&k, || async { rendered("x", None) })
                .await
                .unwrap();
        }
        c.invalidate([&FeedKey::new("vi", Selector::All)]);
        assert!(!c.contains_current(&key("vi", 1)).await);
        assert!(!c.contains_current(&key("vi", 2)).await);
        assert!(c.contains_current(&key("en", 1)).await);
    }

    #[tokio::test]
    async fn previews_go_with_their_feed_and_lists_with_any_write() {
        let c = cache();
        let vi = FeedKey::new("vi", Selector::All);
        let preview = |lang: &str| Key::Preview {
            feed: FeedKey::new(lang, Selector::All),
            page: 1,
        };
        let lists = [List::Opml, List::PartnerOpml(0), List::Index].map(Key::List);
        for k in lists.iter().cloned().chain([preview("vi"), preview("en")]) {
            c.get_or_render(k, || async { rendered("x", None) })
                .await
                .unwrap();
        }
        c.invalidate([&vi]);
        assert!(!c.contains_current(preview("vi")).await);
        assert!(c.contains_current(preview("en")).await);
        for k in &lists {
            assert!(!c.contains_current(k).await, "{k:?} lists every feed");
            assert!(c.holds(k).await, "kept stale for stale-if-error");
        }
        for k in &lists {
            let (_, s) = c
                .get_or_render(k, || async { rendered("y", None) })
                .await
                .unwrap();
            assert_eq!(s, Source::Rendered);
        }
        c.invalidate_all();
        assert!(!c.contains_current(preview("en")).await);
        assert!(!c.contains_current(&lists[0]).await);
    }

    #[tokio::test]
    async fn a_render_that_began_before_a_write_is_not_served_after_it() {
        let c = Arc::new(cache());
        let k = key("vi", 1);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let slow = {
            let c = c.clone();
            let k = k.clone();
            let started = std::sync::Mutex::new(Some(started_tx));
            let release = Arc::new(tokio::sync::Mutex::new(Some(release_rx)));
            tokio::spawn(async move {
                c.get_or_render(&k, || {
                    let started = started.lock().unwrap().take();
                    let release = release.clone();
                    async move {
                        if let Some(s) = started {
                            s.send(()).unwrap();
                            if let Some(r) = release.lock().await.take() {
                                r.await.unwrap();
                            }
                            return rendered("old", None);
                        }
                        rendered("new", None)
                    }
                })
                .await
                .map(|(e, _)| e.rep.identity.bytes.clone())
            })
        };
        started_rx.await.unwrap();
        c.invalidate([&k.feed]);
        release_tx.send(()).unwrap();
        let body = slow.await.unwrap().unwrap();
        assert_eq!(
            &body[..],
            b"new",
            "the render that raced the write is discarded"
        );
    }

    #[tokio::test]
    async fn entries_expire_at_the_next_publication() {
        let clock = manual();
        let c = cache().with_clock(clock.clone());
        let k = key("vi", 1);
        c.get_or_render(&k, || async {
            rendered("before", Some(Duration::from_millis(300)))
        })
        .await
        .unwrap();
        assert!(c.contains_current(&k).await);
        clock.advance(Duration::from_millis(299));
        assert!(c.contains_current(&k).await, "fresh until its time");
        clock.advance(Duration::from_millis(1));
        let (e, s) = c
            .get_or_render(&k, || async { rendered("after", None) })
            .await
            .unwrap();
        assert_eq!(s, Source::Rendered);
        assert_eq!(&e.rep.identity.bytes[..], b"after");
    }

    #[tokio::test]
    async fn a_failed_render_serves_the_last_good_copy() {
        let c = cache();
        let k = key("vi", 1);
        c.get_or_render(&k, || async { rendered("good", None) })
            .await
            .unwrap();
        c.invalidate([&k.feed]);
        let (e, s) = c
            .get_or_render(&k, || async { Err::<Rendered, _>("down".to_string()) })
            .await
            .unwrap();
        assert_eq!(s, Source::Stale);
        assert_eq!(&e.rep.identity.bytes[..], b"good");
        let err = c
            .get_or_render(&key("en", 1), || async {
                Err::<Rendered, _>("down".to_string())
            })
            .await
            .unwrap_err();
        assert_eq!(*err, "down");
    }

    #[tokio::test]
    async fn thread_references_serve_until_an_invalidation_or_expiry() {
        let clock = manual();
        let c = cache().with_clock(clock.clone());
        let k = key("vi", 1);
        let seen = c.generation();
        let (e, _) = c
            .get_or_render(&k, || async {
                rendered("a", Some(Duration::from_millis(300)))
            })
            .await
            .unwrap();
        let body = |r: Local| r.rep.identity.bytes.clone();
        assert!(c.hot(&k).map(body).is_none(), "nothing kept yet");
        c.keep_hot(&k, &e, seen);
        assert_eq!(&c.hot(&k).map(body).unwrap()[..], b"a");
        assert!(
            cache().hot(&k).map(body).is_none(),
            "another cache's references are not this one's"
        );
        assert!(c.hot(&key("en", 1)).map(body).is_none());
        c.invalidate([&FeedKey::new("en", Selector::All)]);
        assert!(
            c.hot(&k).map(body).is_none(),
            "any invalidation voids the references"
        );
        let seen = c.generation();
        let (e, _) = c
            .get_or_render(&k, || async {
                rendered("b", Some(Duration::from_millis(300)))
            })
            .await
            .unwrap();
        c.keep_hot(&k, &e, seen);
        assert!(c.hot(&k).map(body).is_some());
        clock.advance(Duration::from_millis(300));
        assert!(
            c.hot(&k).map(body).is_none(),
            "a reference expires with its entry"
        );
    }

    #[tokio::test]
    async fn every_byte_cached_stays_within_the_budget() {
        // 4 MiB budget, two workers; entries of ~100 KB (poorly compressible) rendered over and over.
        let budget: u64 = 4 << 20;
        let c = FeedCache::new(
            budget,
            Duration::from_secs(600),
            Duration::from_secs(3600),
            2,
        );
        let mut seed = 1u64;
        for page in 1..=200u32 {
            let k = key("vi", page);
            let seen = c.generation();
            let body: Vec<u8> = (0..50_000)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                    b'a' + (seed >> 59) as u8
                })
                .collect();
            let (e, _) = c
                .get_or_render(&k, || {
                    let body = body.clone();
                    async move {
                        Ok::<_, String>(Rendered {
                            rep: Representation::new(body, "text/plain", None, String::new()),
                            valid_for: None,
                        })
                    }
                })
                .await
                .unwrap();
            c.keep_hot(&k, &e, seen);
            drop(e);
            assert!(
                c.live_bytes() <= budget,
                "after page {page}: {} live bytes over a budget of {budget}",
                c.live_bytes()
            );
        }
        assert!(c.entry_count() > 5, "the cache still caches");
    }

    #[tokio::test]
    async fn item_counts_are_remembered_until_an_invalidation() {
        let c = cache();
        let feed = FeedKey::new("vi", Selector::All);
        let n = c
            .item_count(&feed, || async { Ok::<_, ()>((120, None)) })
            .await
            .unwrap();
        assert_eq!(n, 120);
        let n = c
            .item_count(&feed, || async { Ok::<_, ()>((999, None)) })
            .await
            .unwrap();
        assert_eq!(n, 120, "from memory");
        c.invalidate([&feed]);
        let n = c
            .item_count(&feed, || async { Ok::<_, ()>((121, None)) })
            .await
            .unwrap();
        assert_eq!(n, 121, "a write makes it count again");
        let ghost = FeedKey::new("vi", Selector::Tag("khong-co".into()));
        c.item_count(&ghost, || async { Ok::<_, ()>((0, None)) })
            .await
            .unwrap();
        assert!(
            c.counts.get(&ghost).await.is_none(),
            "an empty feed is not remembered"
        );
    }
}
