//! The rendered-feed cache: moka, keyed by (feed, format, page), weighed in bytes.
//!
//! Three guarantees shape it:
//! - **One render per miss.** Concurrent misses for one key wait on a single render
//!   (`try_get_with` coalesces them); `renders()` counts renders so tests can prove it.
//! - **Read your writes.** A write bumps a generation counter and records it against each feed
//!   it touched; an entry rendered from a generation older than its feed's last invalidation is
//!   never served, even if its render was in flight when the write landed (that render may have
//!   read the old rows). Such an entry is replaced at its feed's next request.
//! - **Scheduled publishing.** Each entry expires at the earlier of the configured TTL and the
//!   next scheduled `published_at` of its feed, so an embargoed article appears on time without
//!   a write.
//!
//! A second map keeps the last good representation of each key for `stale-if-error`: when a
//! render fails because the store is down, the previous bytes are served rather than an error.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::future::Cache;

use crate::feed::{FeedKey, Format};
use crate::render::Representation;

/// A cache key: one page of one feed in one format.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub feed: FeedKey,
    pub format: Format,
    pub page: u32,
}

/// A cached representation with what decides its freshness.
#[derive(Debug)]
pub struct Entry {
    pub rep: Representation,
    /// The cache generation when its render began.
    generation: u64,
    /// How long it may live from insertion: min(TTL, time to the feed's next publication).
    ttl: Duration,
    /// When it stops being true (insertion time + `ttl`).
    expires_at: Instant,
}

struct EntryExpiry;

impl Expiry<CacheKey, Arc<Entry>> for EntryExpiry {
    fn expire_after_create(&self, _: &CacheKey, v: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
    fn expire_after_update(
        &self,
        _: &CacheKey,
        v: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// What a render produced, before the cache wraps it.
pub struct Rendered {
    pub rep: Representation,
    /// Until when it is true (the feed's next scheduled publication), if bounded.
    pub valid_for: Option<Duration>,
}

pub struct FeedCache {
    /// Distinguishes this cache's thread-local copies from another instance's (tests run many).
    id: u64,
    fresh: Cache<CacheKey, Arc<Entry>>,
    last_good: Cache<CacheKey, Arc<Entry>>,
    ttl: Duration,
    generation: AtomicU64,
    /// Per feed, the generation of its last invalidation.
    invalidated: RwLock<HashMap<FeedKey, u64>>,
    /// Generation of the last "drop everything".
    flushed: AtomicU64,
    renders: AtomicU64,
}

static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// Most bytes of thread-local copies one thread keeps (see [`FeedCache::hot`]).
const HOT_MAX_BYTES: usize = 32 << 20;

/// A thread's own copy of a current entry.
struct Hot {
    /// The cache generation when the entry was looked up: any invalidation since voids the copy.
    generation: u64,
    expires_at: Instant,
    rep: Rc<Representation>,
}

/// One thread's copies, by (cache id, key), and the bytes they hold.
type HotMap = (HashMap<(u64, CacheKey), Hot>, usize);

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
    pub fn new(max_bytes: u64, ttl: Duration, stale_if_error: Duration) -> FeedCache {
        let weigher =
            |_: &CacheKey, v: &Arc<Entry>| -> u32 { v.rep.weight().try_into().unwrap_or(u32::MAX) };
        FeedCache {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            fresh: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(weigher)
                .expire_after(EntryExpiry)
                .build(),
            // The fallback shares the bytes (Arc) with `fresh` while both hold an entry; on its
            // own it is bounded by the same ceiling.
            last_good: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(weigher)
                .time_to_live(stale_if_error.max(ttl))
                .build(),
            ttl,
            generation: AtomicU64::new(1),
            invalidated: RwLock::new(HashMap::new()),
            flushed: AtomicU64::new(0),
            renders: AtomicU64::new(0),
        }
    }

    /// Number of renders so far (each miss that reached the store).
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    pub fn entry_count(&self) -> u64 {
        self.fresh.entry_count()
    }

    pub fn weighted_size(&self) -> u64 {
        self.fresh.weighted_size()
    }

    fn is_current(&self, key: &CacheKey, e: &Entry) -> bool {
        if e.generation < self.flushed.load(Ordering::Acquire) {
            return false;
        }
        let map = self.invalidated.read().unwrap_or_else(|p| p.into_inner());
        map.get(&key.feed).is_none_or(|&g| e.generation >= g)
    }

    /// The current representation of `key`, rendering it with `render` on a miss. Concurrent
    /// misses share one render. When the render fails and a previous copy exists, that copy is
    /// returned with [`Source::Stale`] (stale-if-error); otherwise the error.
    pub async fn get_or_render<F, Fut, E>(
        &self,
        key: &CacheKey,
        render: F,
    ) -> Result<(Arc<Entry>, Source), Arc<E>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Rendered, E>>,
        E: Send + Sync + 'static,
    {
        // Bounded: a render that loses a race with a write is retried, but a feed written faster
        // than it renders still gets an answer (the newest render, which began after the prior
        // write and so reflects it).
        for attempt in 0..4 {
            if let Some(e) = self.fresh.get(key).await {
                if self.is_current(key, &e) {
                    return Ok((e, Source::Hit));
                }
                self.fresh.invalidate(key).await;
            }
            let mut rendered_here = false;
            let result = self
                .fresh
                .try_get_with(key.clone(), async {
                    rendered_here = true;
                    let generation = self.generation.load(Ordering::Acquire);
                    self.renders.fetch_add(1, Ordering::Relaxed);
                    let r = render().await?;
                    let ttl = r.valid_for.map_or(self.ttl, |v| v.min(self.ttl));
                    Ok(Arc::new(Entry {
                        rep: r.rep,
                        generation,
                        ttl,
                        expires_at: Instant::now() + ttl,
                    }))
                })
                .await;
            match result {
                Ok(e) if self.is_current(key, &e) || attempt == 3 => {
                    if rendered_here {
                        self.last_good.insert(key.clone(), e.clone()).await;
                    }
                    return Ok((
                        e,
                        if rendered_here {
                            Source::Rendered
                        } else {
                            Source::Hit
                        },
                    ));
                }
                Ok(_) => continue,
                Err(err) => {
                    return match self.last_good.get(key).await {
                        Some(e) => Ok((e, Source::Stale)),
                        None => Err(err),
                    };
                }
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// The current generation: it moves on every invalidation.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Answers from this thread's own copy of `key`'s entry, if it has one that is still current.
    ///
    /// The hot path of a poll. Each HTTP worker thread keeps private copies of the entries it
    /// serves (bodies and header values), so a hit touches no memory another core writes: no
    /// shared reference counts, no cache-wide locks. A copy is current while the cache's
    /// generation is the one it was taken at (every invalidation moves it on) and its entry has not
    /// expired (TTL, next scheduled publication).
    pub fn hot(&self, key: &CacheKey) -> Option<Rc<Representation>> {
        let generation = self.generation();
        HOT.with(|h| {
            let h = h.borrow();
            let hot = h.0.get(&(self.id, key.clone()))?;
            (hot.generation == generation && Instant::now() < hot.expires_at)
                .then(|| hot.rep.clone())
        })
    }

    /// Keeps a thread-local copy of `entry`, looked up when the generation was `seen`.
    pub fn keep_hot(&self, key: &CacheKey, entry: &Entry, seen: u64) {
        let weight = entry.rep.weight();
        if weight > HOT_MAX_BYTES / 8 {
            return;
        }
        HOT.with(|h| {
            let mut h = h.borrow_mut();
            if h.1 + weight > HOT_MAX_BYTES {
                h.0.clear();
                h.1 = 0;
            }
            let hot = Hot {
                generation: seen,
                expires_at: entry.expires_at,
                rep: Rc::new(entry.rep.thread_copy()),
            };
            if let Some(old) = h.0.insert((self.id, key.clone()), hot) {
                h.1 -= old.rep.weight();
            }
            h.1 += weight;
        });
    }

    /// Drops every page and format of these feeds, and makes any render of them that began
    /// before this call unservable.
    pub fn invalidate<'a>(&self, feeds: impl IntoIterator<Item = &'a FeedKey>) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let feeds: Vec<FeedKey> = feeds.into_iter().cloned().collect();
        if feeds.is_empty() {
            return;
        }
        {
            let mut map = self.invalidated.write().unwrap_or_else(|p| p.into_inner());
            for f in &feeds {
                map.insert(f.clone(), generation);
            }
        }
        // The entries themselves stay in moka until their next request replaces them or their
        // TTL ends: the generation check makes them unservable at once, and the weigher bounds the
        // memory either way. (moka's `invalidate_entries_if` would register a predicate per write
        // that every later lookup has to check.)
    }

    /// Drops everything (a replica that may have missed announcements).
    pub fn invalidate_all(&self) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.flushed.store(generation, Ordering::Release);
        self.fresh.invalidate_all();
    }

    /// Whether a fresh, current entry exists (tests use this to prove invalidation scope).
    pub async fn contains_current(&self, key: &CacheKey) -> bool {
        match self.fresh.get(key).await {
            Some(e) => self.is_current(key, &e),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Selector;

    fn key(lang: &str, page: u32) -> CacheKey {
        CacheKey {
            feed: FeedKey::new(lang, Selector::All),
            format: Format::Rss,
            page,
        }
    }

    fn rendered(text: &str, valid_for: Option<Duration>) -> Result<Rendered, String> {
        Ok(Rendered {
            rep: Representation::new(text.as_bytes().to_vec(), "text/plain", None, String::new()),
            valid_for,
        })
    }

    fn cache() -> FeedCache {
        FeedCache::new(
            64 << 20,
            Duration::from_secs(600),
            Duration::from_secs(3600),
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
        let c = cache();
        let k = key("vi", 1);
        c.get_or_render(&k, || async {
            rendered("before", Some(Duration::from_millis(300)))
        })
        .await
        .unwrap();
        assert!(c.contains_current(&k).await);
        tokio::time::sleep(Duration::from_millis(450)).await;
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
    async fn thread_copies_serve_until_an_invalidation_or_expiry() {
        let c = cache();
        let k = key("vi", 1);
        let seen = c.generation();
        let (e, _) = c
            .get_or_render(&k, || async {
                rendered("a", Some(Duration::from_millis(300)))
            })
            .await
            .unwrap();
        let body = |r: Rc<Representation>| r.identity.bytes.clone();
        assert!(c.hot(&k).map(body).is_none(), "nothing kept yet");
        c.keep_hot(&k, &e, seen);
        assert_eq!(&c.hot(&k).map(body).unwrap()[..], b"a");
        assert!(
            cache().hot(&k).map(body).is_none(),
            "another cache's copies are not this one's"
        );
        assert!(c.hot(&key("en", 1)).map(body).is_none());
        c.invalidate([&FeedKey::new("en", Selector::All)]);
        assert!(
            c.hot(&k).map(body).is_none(),
            "any invalidation voids the copies"
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
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(
            c.hot(&k).map(body).is_none(),
            "a copy expires with its entry"
        );
    }
}
