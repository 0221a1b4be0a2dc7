//! The application layer between HTTP (or the CLI) and the parts: serve a feed, a preview or a
//! list of feeds from the cache or render it, and apply a write (store, then invalidate exactly
//! the touched feeds, tell other replicas, ping the external hubs, hand the changed topics to the built-in hub). Handlers call these methods and only
//! translate to and from HTTP.
//!
//! Every render goes through the same three gates, whatever it renders: the cache (one render per
//! key at a time, the result kept within `[cache] max_bytes`), the end-of-feed shortcut (a page
//! past the end is a 404 from the feed's remembered item count, never a deep query), and a render
//! slot ([`crate::slots`]: page 1 and the lists before deep pages, deep pages one at a time per
//! client). The lists of feeds also render one at a time, since each one counts every tag and
//! byline in the store.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::article::Article;
use crate::cache::{CacheKey, Entry, FeedCache, Key, List, Rendered, Source};
use crate::config::Config;
use crate::feed::{self, FeedKey, FeedPage, Format, Selector};
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Purge};
use crate::render::{Meta, Representation, render_page};
use crate::slots::{ClientKey, Lane, RenderSlots};
use crate::store::{Change, Store, StoreError, Upsert};

/// Why a feed could not be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedError {
    /// No such page (past the end).
    #[error("{0}")]
    NotFound(String),
    /// An older page refused by the render slots: its client has too many in flight, or too
    /// many wait (a 503 with `Retry-After`).
    #[error("{BUSY_TEXT}")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a refused deep page is told.
pub const BUSY_TEXT: &str =
    "Too many older pages are being rendered for you right now; try again in a moment.";

impl crate::cache::RenderFailure for FeedError {
    fn serve_stale(&self) -> bool {
        matches!(self, FeedError::Store(_) | FeedError::Busy)
    }
}

pub struct App {
    config: Arc<Config>,
    store: Arc<dyn Store>,
    cache: FeedCache,
    metrics: Arc<Metrics>,
    outbox: Outbox,
    /// Topics changed by writes, for the built-in WebSub hub (nothing is recorded unless
    /// [`App::with_topics`] gave a running hub's).
    topics: Arc<crate::topics::ChangedTopics>,
    /// Renders at once at most, shared between page 1 and deep pages ([`crate::slots`]): each
    /// holds a page of articles and its bodies in memory, so this bounds a miss storm's memory
    /// and keeps renders from crowding out the workers' cores.
    slots: RenderSlots,
    /// One list of feeds renders at a time (each counts every tag and byline in the store).
    list_renders: tokio::sync::Mutex<()>,
    /// Purge lists being computed at once (each counts the touched feeds' items).
    purge_permits: Arc<tokio::sync::Semaphore>,
    /// What visibility (embargoes), freshness and purges read the time from.
    clock: Arc<dyn crate::clock::Clock>,
    /// Poll counting and subscriber figures.
    readership: crate::readership::Readership,
    /// Failed API logins per client network (bounded; see [`crate::access::LoginThrottle`]).
    logins: crate::access::LoginThrottle,
}

/// Pages of one feed listed by URL in a purge at most.
pub const MAX_PURGE_PAGES: u64 = 100;

impl App {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        outbox: Outbox,
        metrics: Arc<Metrics>,
    ) -> App {
        let c = &config.cache;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        App {
            readership: crate::readership::Readership::new(
                &config,
                Arc::new(crate::clock::SystemClock),
            ),
            cache: FeedCache::new(
                c.max_bytes,
                Duration::from_secs(c.ttl_secs),
                Duration::from_secs(c.stale_if_error),
                config.server.workers,
            ),
            slots: RenderSlots::new(crate::slots::Policy::for_cores(cores)),
            list_renders: tokio::sync::Mutex::new(()),
            purge_permits: Arc::new(tokio::sync::Semaphore::new(4)),
            config,
            store,
            metrics,
            outbox,
            topics: Arc::new(crate::topics::ChangedTopics::disabled()),
            logins: Default::default(),
            clock: Arc::new(crate::clock::SystemClock),
        }
    }

    /// The same application reading the time from `clock`: what is published yet, how long a
    /// cached copy is fresh, readership days (a test's clock makes an embargo end when it says).
    pub fn with_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> App {
        self.readership = crate::readership::Readership::new(&self.config, clock.clone());
        self.cache = self.cache.with_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// The site's configuration.
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The store, for the CLI, the sources' poller and tests: handlers go through the methods
    /// below, so every store failure is counted.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The rendered-feed cache.
    pub fn cache(&self) -> &FeedCache {
        &self.cache
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn readership(&self) -> &crate::readership::Readership {
        &self.readership
    }

    /// Failed API logins per client network.
    pub fn logins(&self) -> &crate::access::LoginThrottle {
        &self.logins
    }

    /// The render slots (deep pages per client).
    pub fn slots(&self) -> &RenderSlots {
        &self.slots
    }

    /// The time the application reads.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The same application recording changed topics into `topics`, which the built-in hub
    /// drains.
    pub fn with_topics(mut self, topics: Arc<crate::topics::ChangedTopics>) -> App {
        self.topics = topics;
        self
    }

    /// Counts store failures for `/metrics`.
    fn note_store<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.is_err() {
            self.metrics.store_errors.inc();
        }
        r
    }

    /// One page of one feed in one format, from the cache or freshly rendered (for a caller with
    /// no address: the CLI).
    pub async fn feed(&self, key: &CacheKey) -> Result<(Arc<Entry>, Source), FeedError> {
        self.feed_from(key, ClientKey::Local).await
    }

    /// [`App::feed`] for a request from `client` (whose deep pages share its render slot).
    pub async fn feed_from(
        &self,
        key: &CacheKey,
        client: ClientKey,
    ) -> Result<(Arc<Entry>, Source), FeedError> {
        let result = self
            .cache
            .get_or_render(key, || async {
                let started = Instant::now();
                let now = self.now();
                let path = || key.feed.path(&self.config, key.format);
                self.within_feed(&key.feed, key.page, now, || {
                    past_the_end(self, key, &path())
                })
                .await?;
                let _slot = self.slot(Lane::for_page(key.page, client)).await?;
                let Some(mut page) = self.load(&key.feed, key.page, now).await? else {
                    let path = path();
                    return Err(FeedError::NotFound(match (&key.feed.selector, key.page) {
                        (Selector::Tag(s), 1) => format!("No published article is tagged `{s}`, so {path} does not exist. Every feed is listed at /feeds.opml."),
                        (Selector::Author(s), 1) => format!("No published article is by `{s}`, so {path} does not exist. Every feed is listed at /feeds.opml."),
                        _ => past_the_end(self, key, &path),
                    }));
                };
                page.content = key.content;
                let valid_for = until(page.next_publication, now);
                let config = self.config.clone();
                let format = key.format;
                // Rendering and compressing a large feed takes milliseconds of CPU: keep it off the
                // threads that answer cache hits.
                let rep = tokio::task::spawn_blocking(move || render_page(&page, format, &config))
                    .await
                    .map_err(|e| StoreError::Backend(format!("render task failed: {e}")))?;
                self.rendered("feed", started);
                Ok(Rendered { rep, valid_for })
            })
            .await;
        match result {
            Ok((e, source)) => {
                let counter = match source {
                    Source::Hit => &self.metrics.cache_hits,
                    Source::Rendered => &self.metrics.cache_misses,
                    Source::Stale => &self.metrics.stale_served,
                };
                counter.inc();
                Ok((e, source))
            }
            Err(e) => Err((*e).clone()),
        }
    }

    /// One page of a feed's HTML preview (`/vi/kinh-te/?page=N`), cached and bounded like the
    /// feed itself: invalidated with it, 404 past its end from its item count, rendered in the
    /// same slots.
    pub async fn preview(
        &self,
        feed: &FeedKey,
        page: u32,
        client: ClientKey,
    ) -> Result<(Arc<Entry>, Source), FeedError> {
        let key = Key::Preview {
            feed: feed.clone(),
            page,
        };
        let not_found = || {
            format!(
                "Page {page} of {} does not exist; the preview starts at {}.",
                feed.dir(&self.config),
                feed.dir(&self.config)
            )
        };
        let result = self
            .cache
            .get_or_render(&key, || async {
                let started = Instant::now();
                let now = self.now();
                self.within_feed(feed, page, now, not_found).await?;
                let _slot = self.slot(Lane::for_page(page, client)).await?;
                let Some(loaded) = self.load(feed, page, now).await? else {
                    return Err(FeedError::NotFound(not_found()));
                };
                let valid_for = until(loaded.next_publication, now);
                let config = self.config.clone();
                let rep = tokio::task::spawn_blocking(move || {
                    let body = feed::html::preview(&loaded, &config);
                    Representation::rendered(
                        body,
                        Meta {
                            content_type: feed::html::CONTENT_TYPE,
                            last_modified: loaded.updated(),
                            link: String::new(),
                            surrogate_keys: loaded.key.surrogate_keys(),
                        },
                    )
                })
                .await
                .map_err(|e| StoreError::Backend(format!("render task failed: {e}")))?;
                self.rendered("preview", started);
                Ok(Rendered { rep, valid_for })
            })
            .await;
        result.map_err(|e: Arc<FeedError>| (*e).clone())
    }

    /// The OPML list of the listed feeds ([`feed::listing`]).
    pub async fn opml(&self) -> Result<(Arc<Entry>, Source), FeedError> {
        self.list(List::Opml, None).await
    }

    /// The OPML list for the partner at `index`, presenting `key`: every feed URL with the key,
    /// so a reader importing it subscribes to the full-text variants. Cached per partner (the
    /// configured partners bound the copies); the key lives in that entry as it lives in the
    /// partner's own list, and goes with it.
    pub async fn partner_opml(
        &self,
        index: u16,
        key: &str,
    ) -> Result<(Arc<Entry>, Source), FeedError> {
        self.list(List::PartnerOpml(index), Some(key)).await
    }

    /// The HTML index `/` of the listed feeds.
    pub async fn index(&self) -> Result<(Arc<Entry>, Source), FeedError> {
        self.list(List::Index, None).await
    }

    async fn list(
        &self,
        list: List,
        partner_key: Option<&str>,
    ) -> Result<(Arc<Entry>, Source), FeedError> {
        let result = self
            .cache
            .get_or_render(Key::List(list), || async {
                let _one = self.list_renders.lock().await;
                let started = Instant::now();
                let _slot = self.slot(Lane::Front).await?;
                let now = self.now();
                let bound = feed::listing::bound(&self.config);
                let (tags, authors) = self.note_store(self.store.facets(now, bound).await)?;
                // A scheduled article may bring a new tag or byline: the list is true until the
                // next publication in any language.
                let mut next = None;
                for lang in &self.config.languages {
                    let all = FeedKey::new(&lang.code, Selector::All);
                    let at = self.note_store(self.store.next_publication(&all, now).await)?;
                    next = match (next, at) {
                        (Some(a), Some(b)) => Some(std::cmp::min(a, b)),
                        (a, b) => a.or(b),
                    };
                }
                let config = self.config.clone();
                let partner_key = partner_key.map(str::to_string);
                let rep = tokio::task::spawn_blocking(move || {
                    let listing = feed::listing::select(&config, tags, authors);
                    let (body, content_type, link) = match list {
                        List::Index => (
                            feed::html::index(&config, &listing),
                            feed::html::CONTENT_TYPE,
                            String::new(),
                        ),
                        List::Opml | List::PartnerOpml(_) => {
                            let self_url = format!("{}feeds.opml", config.public_base());
                            (
                                feed::opml::render(&config, &listing, partner_key.as_deref()),
                                OPML_CONTENT_TYPE,
                                crate::render::link_header(&config, &self_url),
                            )
                        }
                    };
                    drop(listing);
                    Representation::rendered(
                        body,
                        Meta {
                            content_type,
                            last_modified: None,
                            link,
                            surrogate_keys: String::new(),
                        },
                    )
                })
                .await
                .map_err(|e| StoreError::Backend(format!("render task failed: {e}")))?;
                self.rendered(
                    match list {
                        List::Opml => "opml",
                        List::PartnerOpml(_) => "partner_opml",
                        List::Index => "index",
                    },
                    started,
                );
                Ok(Rendered {
                    rep,
                    valid_for: until(next, now),
                })
            })
            .await;
        result.map_err(|e: Arc<FeedError>| (*e).clone())
    }

    /// Answers a page past the end of `feed` from its item count (remembered per feed), never by
    /// skipping a million rows to find nothing. Page 1 always passes: whether it exists is the
    /// page query's answer.
    async fn within_feed(
        &self,
        feed: &FeedKey,
        page: u32,
        now: DateTime<Utc>,
        not_found: impl FnOnce() -> String,
    ) -> Result<(), FeedError> {
        if page <= 1 {
            return Ok(());
        }
        let items = self
            .cache
            .item_count(feed, || async {
                let (n, next) = tokio::join!(
                    self.store.count_visible(feed, now),
                    self.store.next_publication(feed, now)
                );
                Ok::<_, StoreError>((n?, until(next?, now)))
            })
            .await;
        let per_page = self.config.items_per_feed as u64;
        if let Ok(items) = self.note_store(items)
            && u64::from(page) > items.div_ceil(per_page).max(1)
        {
            return Err(FeedError::NotFound(not_found()));
        }
        Ok(())
    }

    async fn slot(&self, lane: Lane) -> Result<crate::slots::Slot<'_>, FeedError> {
        self.slots.acquire(lane).await.map_err(|_| {
            self.metrics.renders_refused.inc();
            FeedError::Busy
        })
    }

    /// Reads one page of a feed (inside a render slot).
    async fn load(
        &self,
        feed: &FeedKey,
        page: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<FeedPage>, FeedError> {
        self.metrics.page_queries.inc();
        Ok(self.note_store(crate::pages::load(&*self.store, &self.config, feed, page, now).await)?)
    }

    fn rendered(&self, kind: &'static str, started: Instant) {
        self.metrics
            .renders
            .get_or_create(&crate::metrics::KindLabel { kind })
            .inc();
        self.metrics
            .render_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// The content of the public variant of feeds.
    pub fn public_content(&self) -> crate::feed::Content {
        match self.config.access.public_content {
            crate::config::PublicContent::Full => crate::feed::Content::Full,
            crate::config::PublicContent::Summary => crate::feed::Content::Summary,
        }
    }

    /// The content a request with this access gets: partners always the full text.
    pub fn content_for(&self, access: crate::access::Access) -> crate::feed::Content {
        match access {
            crate::access::Access::Partner(_) => crate::feed::Content::Full,
            crate::access::Access::Public => self.public_content(),
        }
    }

    /// Whether the store answers now (for `/readyz`).
    pub async fn readiness(&self) -> Result<(), String> {
        self.note_store(self.store.ping().await)
            .map_err(|e| e.to_string())
    }

    /// One article by id (any state), for the API.
    pub async fn article(&self, id: &str) -> Result<Option<Article>, StoreError> {
        self.note_store(self.store.get(id).await)
    }

    /// Whether the store answers now (a batch is refused before its answer begins otherwise).
    pub async fn ping_store(&self) -> Result<(), StoreError> {
        self.note_store(self.store.ping().await)
    }

    /// The upstream sources' polling state.
    pub async fn source_states(
        &self,
    ) -> Result<Vec<crate::store::upstream::SourceState>, StoreError> {
        self.note_store(self.store.source_states().await)
    }

    /// Readership figures of the last `days` days.
    pub async fn stats(&self, days: u32) -> Result<crate::readership::Stats, StoreError> {
        self.note_store(self.readership.stats(&*self.store, days).await)
    }

    /// The store's backend name (`sqlite`, `postgres`).
    pub fn store_backend(&self) -> &'static str {
        self.store.backend()
    }

    /// Upserts one article and propagates the change.
    pub async fn put(&self, article: &Article) -> Result<Upsert, StoreError> {
        let outcome = self.note_store(self.store.upsert(article).await)?;
        // An unchanged or stale write changed nothing: no feed is invalidated, no hub pinged.
        if matches!(outcome, Upsert::Created | Upsert::Updated { .. }) {
            let touched = self.touched(Some(article), previous(&outcome)).await;
            self.propagate(touched).await;
        }
        Ok(outcome)
    }

    /// Upserts several articles in one transaction and propagates the changes once.
    pub async fn put_batch(&self, articles: &[Article]) -> Result<Vec<Upsert>, StoreError> {
        let outcomes = self.note_store(self.store.upsert_batch(articles).await)?;
        let mut touched = BTreeSet::new();
        for (a, o) in articles.iter().zip(&outcomes) {
            if matches!(o, Upsert::Created | Upsert::Updated { .. }) {
                touched.extend(self.touched(Some(a), previous(o)).await);
            }
        }
        self.propagate(touched).await;
        Ok(outcomes)
    }

    /// Deletes an article; `None` when it did not exist.
    pub async fn delete(&self, id: &str) -> Result<Option<Article>, StoreError> {
        let removed = self.note_store(self.store.delete(id).await)?;
        if let Some(old) = &removed {
            let touched = self.touched(None, Some(old)).await;
            self.propagate(touched).await;
        }
        Ok(removed)
    }

    async fn touched(&self, new: Option<&Article>, old: Option<&Article>) -> BTreeSet<FeedKey> {
        let ids: Vec<String> = new
            .into_iter()
            .chain(old)
            .flat_map(|a| a.translations.values().cloned())
            .collect();
        // A translation's entries link to this article; if they cannot be read now, their feeds
        // still refresh at the TTL.
        let translations = if ids.is_empty() {
            Vec::new()
        } else {
            self.store.get_many(&ids).await.unwrap_or_default()
        };
        feed::touched_by(new, old, &translations)
    }

    async fn propagate(&self, touched: BTreeSet<FeedKey>) {
        if touched.is_empty() {
            return;
        }
        self.cache.invalidate(&touched);
        if let Err(e) = self.store.announce(&touched).await {
            tracing::warn!(error = %e, "could not announce the change to other replicas; their caches refresh at the TTL");
        }
        let topics: Vec<String> = touched
            .iter()
            .flat_map(|k| Format::ALL.map(|f| k.url(&self.config, f, 1)))
            .collect();
        self.outbox.publish(&topics, None);
        self.topics.published(&topics);
        self.purge_cdn(touched);
    }

    /// Tells the CDN to drop `touched` (when `[cdn] purge_urls` are set). Listing the touched
    /// feeds' pages takes a count per feed: done beside the write, a few at a time, never in it.
    /// A purge by key alone (`purge_kind = "xkey"`) lists nothing, so it is queued at once: the
    /// counts would only delay it by a few database round trips under load.
    fn purge_cdn(&self, touched: BTreeSet<FeedKey>) {
        if !self.outbox.purges() || touched.is_empty() {
            return;
        }
        if !self.outbox.purges_urls() {
            self.outbox.publish(&[], Some(keys_of(&touched)));
            return;
        }
        let (store, config) = (self.store.clone(), self.config.clone());
        let (outbox, permits) = (self.outbox.clone(), self.purge_permits.clone());
        let clock = self.clock.clone();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire().await else {
                return;
            };
            let purge = purge_of(&*store, &config, &touched, clock.now()).await;
            outbox.publish(&[], Some(purge));
        });
    }

    /// Applies another replica's announcement to this replica's cache, then purges the CDN of
    /// those feeds again: the writer's own purge can reach the CDN before this replica has
    /// dropped its copy, and a CDN refill landing here in between would otherwise keep the old
    /// document for its max-age. So every replica purges once its cache is fresh; purges are
    /// idempotent, and a write costs one purge per replica.
    pub fn apply_change(&self, change: Change) {
        match change {
            Change::Feeds(feeds) => {
                self.cache.invalidate(&feeds);
                self.purge_cdn(feeds.into_iter().collect());
            }
            Change::All => self.cache.invalidate_all(),
        }
    }
}

/// What a CDN must drop after a write touched `feeds`: their surrogate keys, and the URLs of every
/// format of every page they now have (one more item's worth, in case the write removed one and a
/// page with it), at most [`MAX_PURGE_PAGES`] pages a feed (the keys cover deeper pages).
async fn purge_of(
    store: &dyn Store,
    config: &Config,
    feeds: &BTreeSet<FeedKey>,
    now: DateTime<Utc>,
) -> Purge {
    let per_page = config.items_per_feed as u64;
    let mut purge = keys_of(feeds);
    for feed in feeds {
        // If the count cannot be read now, page 1 (what nearly every poller fetches) still is.
        let items = store.count_visible(feed, now).await.unwrap_or(0);
        let pages = (items + 1).div_ceil(per_page).clamp(1, MAX_PURGE_PAGES);
        for format in Format::ALL {
            for page in 1..=pages {
                purge.urls.push(feed.url(config, format, page as u32));
            }
        }
    }
    purge.urls.sort();
    purge
}

/// The purge of `feeds` by surrogate key only (sorted), without URLs.
fn keys_of(feeds: &BTreeSet<FeedKey>) -> Purge {
    let mut keys: Vec<String> = feeds.iter().map(FeedKey::surrogate_key).collect();
    keys.sort();
    Purge {
        keys,
        urls: Vec::new(),
    }
}

/// The content type of the OPML lists.
pub const OPML_CONTENT_TYPE: &str = "text/x-opml; charset=utf-8";

/// How long from `now` until `at` (the next scheduled publication), if any.
fn until(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<Duration> {
    at.map(|t| (t - now).to_std().unwrap_or(Duration::ZERO))
}

fn past_the_end(app: &App, key: &CacheKey, path: &str) -> String {
    format!(
        "page {} of {path} does not exist; the feed starts at {}",
        key.page,
        key.feed.url(app.config(), key.format, 1)
    )
}

fn previous(o: &Upsert) -> Option<&Article> {
    match o {
        Upsert::Updated { previous } => Some(previous),
        _ => None,
    }
}
