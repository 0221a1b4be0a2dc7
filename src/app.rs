//! The application layer between HTTP (or the CLI) and the parts: serve a feed from the cache or
//! render it, and apply a write (store, then invalidate exactly the touched feeds, tell other
//! replicas, ping the external hubs, hand the changed topics to the built-in hub). Handlers call these methods and only translate to and from HTTP.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::article::Article;
use crate::cache::{CacheKey, Entry, FeedCache, Rendered, Source};
use crate::config::Config;
use crate::feed::{self, FeedKey, Format, Selector};
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Purge};
use crate::render::{Representation, render_page};
use crate::store::{Change, Store, StoreError, Upsert};

/// Why a feed could not be served.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FeedError {
    /// No such page (past the end).
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl crate::cache::RenderFailure for FeedError {
    fn serve_stale(&self) -> bool {
        matches!(self, FeedError::Store(_))
    }
}

pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub cache: FeedCache,
    pub metrics: Arc<Metrics>,
    pub outbox: Outbox,
    /// The built-in WebSub hub (disabled until [`App::with_hub`]).
    pub hub: crate::hub::Hub,
    /// Renders at once at most: each holds a page of articles and its bodies in memory, so this
    /// bounds a miss storm's memory and keeps renders from crowding out the workers' cores.
    render_permits: tokio::sync::Semaphore,
    /// Purge lists being computed at once (each counts the touched feeds' items).
    purge_permits: Arc<tokio::sync::Semaphore>,
    /// Poll counting and subscriber figures.
    pub readership: crate::readership::Readership,
    /// The OPML list, with when it was made and the write count it reflects.
    opml: tokio::sync::Mutex<Option<(Instant, u64, Arc<Representation>)>>,
    writes: AtomicU64,
}

/// Pages of one feed listed by URL in a purge at most.
pub const MAX_PURGE_PAGES: u64 = 100;

/// How long the OPML list is reused before tags and bylines are listed again.
const OPML_TTL: Duration = Duration::from_secs(60);

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
                crate::http::worker_count(),
            ),
            render_permits: tokio::sync::Semaphore::new(cores),
            purge_permits: Arc::new(tokio::sync::Semaphore::new(4)),
            config,
            store,
            metrics,
            outbox,
            hub: crate::hub::Hub::disabled(),
            opml: tokio::sync::Mutex::new(None),
            writes: AtomicU64::new(0),
        }
    }

    /// The same application reading the time from `clock` for its readership days (tests).
    pub fn with_clock(mut self, clock: Arc<dyn crate::clock::Clock>) -> App {
        self.readership = crate::readership::Readership::new(&self.config, clock);
        self
    }

    /// The same application with its WebSub hub (the server starts it once the application is
    /// shared).
    pub fn with_hub(mut self, hub: crate::hub::Hub) -> App {
        self.hub = hub;
        self
    }

    /// Counts store failures for `/metrics`.
    fn note_store<T>(&self, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if r.is_err() {
            self.metrics.store_errors.inc();
        }
        r
    }

    /// One page of one feed in one format, from the cache or freshly rendered.
    pub async fn feed(&self, key: &CacheKey) -> Result<(Arc<Entry>, Source), FeedError> {
        let result = self
            .cache
            .get_or_render(key, || async {
                let started = Instant::now();
                let now = Utc::now();
                let path = || key.feed.path(&self.config, key.format);
                if key.page > 1 {
                    // A page past the end is answered from the feed's item count (remembered per
                    // feed), never by skipping a million rows to find nothing.
                    let items = self
                        .cache
                        .item_count(&key.feed, || async {
                            let (n, next) = tokio::join!(
                                self.store.count_visible(&key.feed, now),
                                self.store.next_publication(&key.feed, now)
                            );
                            let valid_for = next?
                                .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO));
                            Ok::<_, StoreError>((n?, valid_for))
                        })
                        .await;
                    let per_page = self.config.items_per_feed as u64;
                    if let Ok(items) = self.note_store(items)
                        && u64::from(key.page) > items.div_ceil(per_page).max(1)
                    {
                        return Err(FeedError::NotFound(past_the_end(self, key, &path())));
                    }
                }
                let _permit = self
                    .render_permits
                    .acquire()
                    .await
                    .map_err(|_| StoreError::Backend("the render queue closed".into()))?;
                self.metrics.page_queries.inc();
                let page = self.note_store(
                    feed::load(&*self.store, &self.config, &key.feed, key.page, now).await,
                )?;
                let Some(mut page) = page else {
                    let path = path();
                    return Err(FeedError::NotFound(match (&key.feed.selector, key.page) {
                        (Selector::Tag(s), 1) => format!("No published article is tagged `{s}`, so {path} does not exist. Every feed is listed at /feeds.opml."),
                        (Selector::Author(s), 1) => format!("No published article is by `{s}`, so {path} does not exist. Every feed is listed at /feeds.opml."),
                        _ => past_the_end(self, key, &path),
                    }));
                };
                page.content = key.content;
                let valid_for = page
                    .next_publication
                    .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO));
                let config = self.config.clone();
                let format = key.format;
                // Rendering and compressing a large feed takes milliseconds of CPU: keep it off the
                // threads that answer cache hits.
                let rep = tokio::task::spawn_blocking(move || render_page(&page, format, &config))
                    .await
                    .map_err(|e| StoreError::Backend(format!("render task failed: {e}")))?;
                self.metrics
                    .render_seconds
                    .observe(started.elapsed().as_secs_f64());
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

    /// The OPML list for a partner: every feed URL with the partner's key, so a reader importing
    /// it subscribes to the full-text variants. Made per request (partners fetch it rarely) and
    /// never cached, so no key outlives the answer.
    pub async fn partner_opml(&self, key: &str) -> Result<Representation, StoreError> {
        let (tags, authors) = self.note_store(self.store.facets(Utc::now()).await)?;
        let body = feed::opml::render_with_key(&self.config, &tags, &authors, Some(key));
        let self_url = format!("{}feeds.opml", self.config.public_base());
        Ok(Representation::new(
            body,
            "text/x-opml; charset=utf-8",
            None,
            crate::render::link_header(&self.config, &self_url),
        ))
    }

    /// The OPML list of every feed.
    pub async fn opml(&self) -> Result<Arc<Representation>, StoreError> {
        let mut slot = self.opml.lock().await;
        let writes = self.writes.load(Ordering::Acquire);
        if let Some((at, seen, rep)) = slot.as_ref()
            && at.elapsed() < OPML_TTL
            && *seen == writes
        {
            return Ok(rep.clone());
        }
        let (tags, authors) = self.note_store(self.store.facets(Utc::now()).await)?;
        let body = feed::opml::render(&self.config, &tags, &authors);
        let self_url = format!("{}feeds.opml", self.config.public_base());
        let rep = Arc::new(Representation::new(
            body,
            "text/x-opml; charset=utf-8",
            None,
            crate::render::link_header(&self.config, &self_url),
        ));
        *slot = Some((Instant::now(), writes, rep.clone()));
        Ok(rep)
    }

    /// Whether the store answers now (for `/readyz`).
    pub async fn readiness(&self) -> Result<(), String> {
        self.note_store(self.store.ping().await)
            .map_err(|e| e.to_string())
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
        self.writes.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.store.announce(&touched).await {
            tracing::warn!(error = %e, "could not announce the change to other replicas; their caches refresh at the TTL");
        }
        let topics: Vec<String> = touched
            .iter()
            .flat_map(|k| Format::ALL.map(|f| k.url(&self.config, f, 1)))
            .collect();
        self.outbox.publish(&topics, None);
        self.hub.published(&topics);
        if self.outbox.purges() {
            // Listing the touched feeds' pages takes a count per feed: done beside the write, a
            // few at a time, never in it.
            let (store, config) = (self.store.clone(), self.config.clone());
            let (outbox, permits) = (self.outbox.clone(), self.purge_permits.clone());
            tokio::spawn(async move {
                let Ok(_permit) = permits.acquire().await else {
                    return;
                };
                let purge = purge_of(&*store, &config, &touched).await;
                outbox.publish(&[], Some(purge));
            });
        }
    }

    /// Applies another replica's announcement to this replica's cache.
    pub fn apply_change(&self, change: Change) {
        match change {
            Change::Feeds(feeds) => self.cache.invalidate(&feeds),
            Change::All => self.cache.invalidate_all(),
        }
        self.writes.fetch_add(1, Ordering::AcqRel);
    }
}

/// What a CDN must drop after a write touched `feeds`: their surrogate keys, and the URLs of every
/// format of every page they now have (one more item's worth, in case the write removed one and a
/// page with it), at most [`MAX_PURGE_PAGES`] pages a feed (the keys cover deeper pages).
async fn purge_of(store: &dyn Store, config: &Config, feeds: &BTreeSet<FeedKey>) -> Purge {
    let now = Utc::now();
    let per_page = config.items_per_feed as u64;
    let mut purge = Purge::default();
    for feed in feeds {
        purge.keys.push(feed.surrogate_key());
        // If the count cannot be read now, page 1 (what nearly every poller fetches) still is.
        let items = store.count_visible(feed, now).await.unwrap_or(0);
        let pages = (items + 1).div_ceil(per_page).clamp(1, MAX_PURGE_PAGES);
        for format in Format::ALL {
            for page in 1..=pages {
                purge.urls.push(feed.url(config, format, page as u32));
            }
        }
    }
    purge.keys.sort();
    purge.urls.sort();
    purge
}

fn past_the_end(app: &App, key: &CacheKey, path: &str) -> String {
    format!(
        "page {} of {path} does not exist; the feed starts at {}",
        key.page,
        key.feed.url(&app.config, key.format, 1)
    )
}

fn previous(o: &Upsert) -> Option<&Article> {
    match o {
        Upsert::Updated { previous } => Some(previous),
        _ => None,
    }
}
