//! The scheduler that polls `[[sources]]`: one task per process, reading the time from an
//! injected [`Clock`] so tests drive hours of schedule in milliseconds.
//!
//! Each pass reads every source's state from the store, starts a poll for each due one (at most
//! `[upstream] concurrency` at once, each with its own deadlines, so a hanging upstream holds one
//! slot and never the others), and sleeps until the next one is due or a poll ends. A poll first
//! takes the lease ([`crate::store::Store::claim_source`]): with several replicas on one
//! PostgreSQL database exactly one of them polls a source per interval, and all of them serve
//! the result (the write's NOTIFY invalidates every replica's cache).
//!
//! What a poll found becomes state ([`SourceState`]): validators only from a body that was parsed
//! and stored, so a 304 after a body that failed to parse cannot turn a source back to `ok`;
//! failures back off ([`super::schedule`]) and are retried forever; 410 stops the source; a
//! target [`super::address`] refuses is `refused`, retried after the same growing delays.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinSet;
use url::Url;

use super::fetch::{Fetcher, Outcome};
use super::mapping;
use super::schedule::{self, to_chrono};
use crate::app::App;
use crate::article::Article;
use crate::clock::Clock;
use crate::config::SourceConfig;
use crate::store::upstream::{SourceState, SourceStatus};
use crate::store::{StoreError, Upsert};

/// The longest a scheduler sleeps without looking again (a source added by another replica's
/// config, a clock step).
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Stored articles looked up per query (to keep first-seen times).
const LOOKUP_CHUNK: usize = 1000;
/// Fetched documents parsed, mapped and written at once (process-wide).
static PARSING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// How long a replica waits before retrying a store that failed under the scheduler.
const STORE_RETRY: Duration = Duration::from_secs(5);

/// What the scheduler has done, for tests and `/readyz`-style checks.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Passes over the sources so far.
    pub passes: u64,
    /// The clock's time at the last pass.
    pub at: Option<DateTime<Utc>>,
    /// When the scheduler will look again (unless a poll ends first).
    pub next_wake: Option<DateTime<Utc>>,
    /// Polls running after the last pass.
    pub inflight: usize,
    /// Polls finished so far (claimed by this replica or not).
    pub polls: u64,
}

/// How long [`Poller::stop`] lets polls in flight finish (their writes, invalidations and
/// NOTIFYs) before abandoning them.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The running scheduler. [`Poller::stop`] stops it gracefully; dropping it aborts it.
pub struct Poller {
    progress: watch::Receiver<Progress>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Poller {
    /// Starts polling `app.config().sources` (nothing to start when there are none).
    pub fn spawn(app: Arc<App>, clock: Arc<dyn Clock>) -> Option<Poller> {
        if app.config().sources.is_empty() {
            return None;
        }
        let (tx, rx) = watch::channel(Progress::default());
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(run(app, clock, tx, stopping));
        Some(Poller {
            progress: rx,
            stop,
            task: Some(task),
        })
    }

    /// Starts no more polls and waits (up to `STOP_GRACE`) for those in flight, so a shutdown
    /// does not cut a poll between its write and the invalidation that must follow it.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Returns once everything due at `t` has been polled: the scheduler has looked at the
    /// sources at `t` or later (or is asleep until after `t`) and no poll is running.
    pub async fn settled(&self, t: DateTime<Utc>) {
        let mut rx = self.progress.clone();
        let _ = rx
            .wait_for(|p| {
                p.inflight == 0
                    && (p.at.is_some_and(|a| a >= t) || p.next_wake.is_some_and(|w| w > t))
            })
            .await;
    }
}

async fn run(
    app: Arc<App>,
    clock: Arc<dyn Clock>,
    tx: watch::Sender<Progress>,
    mut stopping: watch::Receiver<bool>,
) {
    let fetcher = Arc::new(Fetcher::new(app.config()));
    let configured: HashMap<String, SourceConfig> = app
        .config()
        .sources
        .iter()
        .map(|s| (s.id.clone(), s.clone()))
        .collect();
    while let Err(e) = reconcile(&app, clock.now()).await {
        tracing::warn!(error = %e, "cannot read the sources' state; retrying");
        tokio::time::sleep(STORE_RETRY).await;
    }
    let concurrency = app.config().upstream.concurrency;
    let per_host_limit = app.config().upstream.per_host;
    let lease = lease_of(&app);
    // The schedule as this replica knows it. It is read from the store at start and then every
    // `MAX_SLEEP` of clock time (other replicas' polls); in between it is kept from this
    // replica's own polls, so a pass costs no query however many sources finish.
    let mut states: HashMap<String, SourceState> = HashMap::new();
    let mut loaded_at: Option<DateTime<Utc>> = None;
    let mut running: JoinSet<(String, Claimed)> = JoinSet::new();
    // Polls running: source id → upstream host.
    let mut inflight: HashMap<String, String> = HashMap::new();
    let mut tasks: HashMap<tokio::task::Id, String> = HashMap::new();
    let mut polls = 0u64;
    loop {
        let now = clock.now();
        if loaded_at.is_none_or(|at| now - at >= to_chrono(MAX_SLEEP)) {
            match app.store().source_states().await {
                Ok(all) => {
                    states = all
                        .into_iter()
                        .filter(|s| configured.contains_key(&s.id))
                        .map(|s| (s.id.clone(), s))
                        .collect();
                    loaded_at = Some(now);
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the sources' state; retrying"),
            }
        }
        let mut due: Vec<&SourceState> = states
            .values()
            .filter(|s| {
                s.status != SourceStatus::Gone
                    && s.next_poll <= now
                    && !inflight.contains_key(&s.id)
            })
            .collect();
        // Longest overdue first, so a backlog drains in schedule order.
        due.sort_by_key(|s| (s.next_poll, s.id.clone()));
        let room = concurrency.saturating_sub(inflight.len());
        // Politeness per upstream host: sister sites often serve many feeds from one server.
        let mut per_host: HashMap<String, usize> = HashMap::new();
        for host in inflight.values() {
            *per_host.entry(host.clone()).or_default() += 1;
        }
        let mut start: Vec<(String, String)> = Vec::new();
        for st in due {
            if start.len() >= room {
                break;
            }
            let host = host_of(&st.url);
            let n = per_host.entry(host.clone()).or_default();
            if *n < per_host_limit {
                *n += 1;
                start.push((st.id.clone(), host));
            }
        }
        for (id, host) in start {
            let cfg = configured[&id].clone();
            inflight.insert(id.clone(), host);
            let handle = running.spawn(poll(app.clone(), fetcher.clone(), cfg, now));
            tasks.insert(handle.id(), id);
        }
        let mut next_wake = match loaded_at {
            Some(at) => at + to_chrono(MAX_SLEEP),
            None => now + to_chrono(STORE_RETRY),
        };
        for s in states.values() {
            if s.status != SourceStatus::Gone && !inflight.contains_key(&s.id) && s.next_poll > now
            {
                next_wake = next_wake.min(s.next_poll);
            }
        }
        tx.send_modify(|p| {
            p.passes += 1;
            p.at = Some(now);
            p.next_wake = Some(next_wake);
            p.inflight = inflight.len();
            p.polls = polls;
        });
        tokio::select! {
            _ = stopping.changed() => {
                let drain = async { while running.join_next().await.is_some() {} };
                if tokio::time::timeout(STOP_GRACE, drain).await.is_err() {
                    tracing::warn!("source polls still running at shutdown were abandoned");
                    running.abort_all();
                }
                return;
            }
            _ = clock.sleep_until(next_wake) => {}
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                polls += 1;
                match done {
                    Ok((task, (id, claimed))) => {
                        tasks.remove(&task);
                        inflight.remove(&id);
                        match claimed {
                            Claimed::Polled(st) => {
                                states.insert(id, *st);
                            }
                            // Another replica has it: leave it to that one until the lease
                            // would run out, and learn its schedule at the next reload.
                            Claimed::Elsewhere => {
                                if let Some(s) = states.get_mut(&id) {
                                    s.next_poll = schedule::after(now, lease);
                                }
                            }
                        }
                    }
                    Err(e) => {
                        // A poll that panicked: its source is free again and the schedule is
                        // read afresh (the store holds the lease, so it is not retried at once).
                        tracing::error!(error = %e, "a source poll panicked");
                        if let Some(id) = tasks.remove(&e.id()) {
                            inflight.remove(&id);
                        }
                        loaded_at = None;
                    }
                }
            }
        }
    }
}

/// The host (and port) of a source's URL, for the per-host limit.
fn host_of(url: &str) -> String {
    Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_default()
}

/// What a poll task did.
enum Claimed {
    /// This replica polled the source; its state as saved.
    Polled(Box<SourceState>),
    /// The source was not due any more (another replica claimed it first) or the lease could
    /// not be taken.
    Elsewhere,
}

/// Long enough for a fetch and its write; if a replica dies mid-poll, another one polls the
/// source once the lease runs out.
fn lease_of(app: &App) -> Duration {
    app.config().upstream.timeout * 2 + Duration::from_secs(60)
}

/// Records sources seen for the first time (due at once) and starts afresh those whose
/// configured URL changed. A restart changes nothing else: validators, backoff and the schedule
/// resume where they were.
async fn reconcile(app: &App, now: DateTime<Utc>) -> Result<(), StoreError> {
    let states: HashMap<String, SourceState> = app
        .store()
        .source_states()
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    for cfg in &app.config().sources {
        let fresh = SourceState::new(&cfg.id, cfg.url.as_str(), now);
        match states.get(&cfg.id) {
            None => {
                app.store().add_source(&fresh).await?;
            }
            Some(st) if st.configured_url != cfg.url.as_str() => {
                tracing::info!(source = %cfg.id, url = %cfg.url, "the configured URL changed: polling it afresh");
                app.store()
                    .save_source(&SourceState {
                        items: st.items,
                        ..fresh
                    })
                    .await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// One poll of one source, if this replica wins the lease.
async fn poll(
    app: Arc<App>,
    fetcher: Arc<Fetcher>,
    cfg: SourceConfig,
    now: DateTime<Utc>,
) -> (String, Claimed) {
    let lease = schedule::after(now, lease_of(&app));
    let mut st = match app.store().claim_source(&cfg.id, now, lease).await {
        Ok(Some(st)) => st,
        Ok(None) => return (cfg.id, Claimed::Elsewhere),
        Err(e) => {
            tracing::warn!(source = %cfg.id, error = %e, "cannot take the lease");
            return (cfg.id, Claimed::Elsewhere);
        }
    };
    st.last_attempt = Some(now);
    let url = Url::parse(&st.url).unwrap_or_else(|_| cfg.url.clone());
    let outcome = fetcher
        .fetch(
            &url,
            &cfg.url,
            st.etag.as_deref(),
            st.last_modified.as_deref(),
            now,
        )
        .await;
    let label = apply(&app, &cfg, &mut st, outcome, now).await;
    app.metrics()
        .source_polls
        .get_or_create(&crate::metrics::SourcePollLabel {
            source: cfg.id.clone(),
            outcome: label,
        })
        .inc();
    // The schedule counts from the attempt (`now`), even if the fetch took a while.
    match app.store().finish_source(&st, lease).await {
        Ok(true) => (cfg.id, Claimed::Polled(Box::new(st))),
        Ok(false) => {
            tracing::warn!(source = %cfg.id, "the poll outlived its lease (another replica polled since); its state was not saved");
            (cfg.id, Claimed::Elsewhere)
        }
        Err(e) => {
            tracing::warn!(source = %cfg.id, error = %e, "cannot save the source's state; the lease will expire and it is polled again");
            // What the store still holds: the lease.
            st.next_poll = lease;
            (cfg.id, Claimed::Polled(Box::new(st)))
        }
    }
}

/// Turns what the fetch found into the source's new state; returns the metric's outcome label.
async fn apply(
    app: &App,
    cfg: &SourceConfig,
    st: &mut SourceState,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> &'static str {
    let moved = |st: &mut SourceState, to: Option<Url>| {
        if let Some(to) = to {
            tracing::info!(source = %st.id, from = %st.url, to = %to, "permanent redirect: the source moved");
            st.url = to.to_string();
        }
    };
    let cap = app.config().upstream.max_backoff;
    match outcome {
        Outcome::NotModified { moved_to } => {
            moved(st, moved_to);
            if st.etag.is_none() && st.last_modified.is_none() {
                fail(
                    st,
                    cfg,
                    cap,
                    now,
                    SourceStatus::Error,
                    "304 to an unconditional request".into(),
                );
                return "error";
            }
            // The stored body is still the upstream's: a note about its skipped items still
            // holds (a failure's message does not).
            let note = (st.status == SourceStatus::Ok)
                .then(|| st.last_error.take())
                .flatten();
            succeed(st, cfg, now);
            st.last_error = note;
            "not_modified"
        }
        Outcome::Body {
            body,
            etag,
            last_modified,
            moved_to,
            content_type,
        } => {
            let feed_url = moved_to
                .clone()
                .unwrap_or_else(|| Url::parse(&st.url).unwrap_or_else(|_| cfg.url.clone()));
            match ingest(app, cfg, &feed_url, body, content_type, now).await {
                Ok(report) => {
                    moved(st, moved_to);
                    // Both validators come from this response, each on its own: a
                    // Last-Modified that stayed does not keep an ETag that changed.
                    st.etag = etag;
                    st.last_modified = last_modified;
                    st.items += report.created;
                    st.title = Some(report.title);
                    succeed(st, cfg, now);
                    st.last_error = report.rejected;
                    "updated"
                }
                Err(PollError::Feed(message)) => {
                    fail(st, cfg, cap, now, SourceStatus::Error, message);
                    "error"
                }
                Err(PollError::Store(e)) => {
                    // The store's own text (SQL, driver) goes to the log, not to API clients.
                    tracing::warn!(source = %cfg.id, error = %e, "could not store a source's items");
                    fail(
                        st,
                        cfg,
                        cap,
                        now,
                        SourceStatus::Backoff,
                        "could not store the items (the store is unavailable; see the log)".into(),
                    );
                    "failed"
                }
            }
        }
        Outcome::Gone => {
            st.status = SourceStatus::Gone;
            st.consecutive_failures += 1;
            st.last_error = Some("410 Gone: the upstream removed this feed; not polled again until its url changes in site.toml".into());
            st.next_poll = crate::store::upstream::never();
            tracing::warn!(source = %st.id, url = %st.url, "upstream feed gone (410); polling stopped");
            "gone"
        }
        Outcome::Throttled {
            status,
            retry_after,
        } => {
            st.consecutive_failures += 1;
            st.status = SourceStatus::Backoff;
            // At least what the upstream asked, and never sooner than the regular interval: a
            // `Retry-After: 0` (or a date already past, from a slow clock) must not turn the next
            // poll into an immediate one, again and again.
            let delay = match retry_after {
                Some(d) => d.max(cfg.every),
                None => {
                    schedule::backoff_delay(&st.id, cfg.every, st.consecutive_failures, cap, now)
                }
            };
            st.last_error = Some(match retry_after {
                Some(_) => format!(
                    "upstream answered {status}; retrying after {} (its Retry-After, at least every)",
                    humantime::format_duration(delay)
                ),
                None => format!("upstream answered {status}"),
            });
            st.next_poll = schedule::after(now, delay);
            "throttled"
        }
        Outcome::Refused { message } => {
            // Not a failure of the upstream that a retry soon would fix: the same growing
            // delays as an error, so a refused source costs a log line every few hours at most.
            fail(st, cfg, cap, now, SourceStatus::Refused, message);
            "refused"
        }
        Outcome::Failed { transient, message } => {
            let status = if transient {
                SourceStatus::Backoff
            } else {
                SourceStatus::Error
            };
            fail(st, cfg, cap, now, status, message);
            if transient { "failed" } else { "error" }
        }
    }
}

fn succeed(st: &mut SourceState, cfg: &SourceConfig, now: DateTime<Utc>) {
    st.status = SourceStatus::Ok;
    st.consecutive_failures = 0;
    st.last_success = Some(now);
    st.last_error = None;
    st.next_poll = schedule::after_success(&st.id, cfg.every, now);
}

fn fail(
    st: &mut SourceState,
    cfg: &SourceConfig,
    cap: Duration,
    now: DateTime<Utc>,
    status: SourceStatus,
    message: String,
) {
    st.consecutive_failures += 1;
    st.status = status;
    let delay = schedule::backoff_delay(&st.id, cfg.every, st.consecutive_failures, cap, now);
    tracing::warn!(source = %st.id, failures = st.consecutive_failures, retry_in = %humantime::format_duration(delay), error = %message, "source poll failed");
    st.last_error = Some(message);
    st.next_poll = schedule::after(now, delay);
}

/// Longest note kept in `last_error`, in characters: a rejection quotes the value at fault, and
/// an upstream's value (a `data:` image, a URL) can be megabytes.
const MAX_NOTE_CHARS: usize = 1000;

fn clip(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_NOTE_CHARS) {
        s.truncate(i);
        s.push('…');
    }
    s
}

enum PollError {
    /// The body is not a feed: the source's fault.
    Feed(String),
    /// The store failed (reading the stored copies, or writing): ours, transient. The text is
    /// the store's, for the log only.
    Store(String),
}

struct IngestReport {
    created: u64,
    title: String,
    /// A line about items that could not become articles.
    rejected: Option<String>,
}

/// Parses the body and writes its items through the same path as every write (validation,
/// upsert, invalidation of the touched feeds, NOTIFY, WebSub and CDN purges).
async fn ingest(
    app: &App,
    cfg: &SourceConfig,
    feed_url: &Url,
    body: Vec<u8>,
    content_type: Option<String>,
    now: DateTime<Utc>,
) -> Result<IngestReport, PollError> {
    // Parsing and mapping hold a document's entries and articles in memory: a few at once,
    // however many fetches run, so memory is bounded by the body limit times this, not times
    // `[upstream] concurrency`.
    let _permit = PARSING.acquire().await.ok();
    let zone = app.config().zone;
    let url = feed_url.clone();
    let source_id = cfg.id.clone();
    let (parsed, ids, cut) = tokio::task::spawn_blocking(move || {
        let mut parsed = mapping::parse(&body, content_type.as_deref(), &url, zone, now)?;
        drop(body);
        let cut = parsed
            .feed
            .entries
            .len()
            .saturating_sub(mapping::MAX_ENTRIES);
        parsed.feed.entries.truncate(mapping::MAX_ENTRIES);
        let ids = mapping::article_ids(&source_id, &parsed.feed.entries);
        Ok::<_, String>((parsed, ids, cut))
    })
    .await
    .map_err(|e| PollError::Feed(format!("the parser failed: {e}")))?
    .map_err(|e| PollError::Feed(format!("not a feed: {e}")))?;

    let mut stored: HashMap<String, Article> = HashMap::new();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        for a in app
            .store()
            .get_many(chunk)
            .await
            .map_err(|e| PollError::Store(e.to_string()))?
        {
            stored.insert(a.id.clone(), a);
        }
    }
    let config = app.config().clone();
    let (cfg2, url) = (cfg.clone(), feed_url.clone());
    for (repair, n) in parsed.repairs.iter() {
        app.metrics()
            .source_repairs
            .get_or_create(&crate::metrics::SourceRepairLabel {
                source: cfg.id.clone(),
                repair: repair.label(),
            })
            .inc_by(n);
    }
    let recovered = parsed.recovered();
    let (mapped, title) = tokio::task::spawn_blocking(move || {
        let credit = mapping::credit(&parsed, &url);
        let mapped = mapping::articles(&parsed, &credit, &cfg2, &url, &config, &stored, now);
        (mapped, credit.title)
    })
    .await
    .map_err(|e| PollError::Feed(format!("mapping failed: {e}")))?;

    // The body limit bounds how many articles one poll holds, so they are written in one go
    // through the ingest layer (transactions, invalidation, NOTIFY, WebSub, CDN purges).
    let mapping::Mapped {
        articles,
        rejected,
        images_dropped,
    } = mapped;
    let created = crate::ingest::ingest_articles(app, &articles)
        .await
        .map_err(|e| PollError::Store(e.to_string()))?
        .iter()
        .filter(|o| matches!(o, Upsert::Created))
        .count() as u64;
    if articles.is_empty() && !rejected.is_empty() {
        let first = &rejected[0];
        return Err(PollError::Feed(clip(format!(
            "no item could be stored ({} rejected); item {}: {}",
            rejected.len(),
            first.item,
            first.error
        ))));
    }
    // What the reader repaired comes first: the operator learns the upstream is ill-formed
    // while its items still arrive.
    let mut notes: Vec<String> = recovered.into_iter().collect();
    if let Some(first) = rejected.first() {
        notes.push(format!(
            "{} item(s) skipped; item {}: {}",
            rejected.len(),
            first.item,
            first.error
        ));
    }
    if let Some(first) = images_dropped.first() {
        notes.push(format!(
            "{} item(s) stored without their image; item {}: {}",
            images_dropped.len(),
            first.item,
            first.error
        ));
    }
    if cut > 0 {
        notes.push(format!(
            "{cut} item(s) past the first {} not read",
            mapping::MAX_ENTRIES
        ));
    }
    let rejected = (!notes.is_empty()).then(|| clip(notes.join("; ")));
    if let Some(r) = &rejected {
        tracing::warn!(source = %cfg.id, "{r}");
    }
    Ok(IngestReport {
        created,
        title,
        rejected,
    })
}
