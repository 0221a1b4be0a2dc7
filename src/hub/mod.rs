//! bantin as its own WebSub hub (W3C WebSub, and the PubSubHubbub 0.3 form older readers send),
//! at `/websub`, advertised by every feed: subscribers get each new document pushed after a
//! write instead of polling for it, with no third party in between.
//!
//! The parts, each in its own module:
//!
//! - [`request`]: the subscription request read into domain terms (pure): the topic must be one
//!   of this site's feeds (page 1, any format), the callback an http(s) URL; leases are bounded
//!   to [`request::MIN_LEASE`]..=[`request::MAX_LEASE`] (default [`request::DEFAULT_LEASE`]).
//! - [`verify`]: verification of intent and denials, and [`verify::Admission`], the per-host
//!   budget of requests a stranger can make the hub send.
//! - [`deliver`]: signed fat pings of the topic's page 1 after writes, coalesced, retried with
//!   backoff until the lease ends, from the store under a lease so replicas send each once.
//! - [`listing`]: what `bantin subscriptions` prints (readership counts the subscriptions
//!   itself, [`crate::readership::push`]).
//!
//! A request is answered before anything is sent to the callback (202; the 0.3 `sync` form
//! waits for the verification: 204, or 409 when it failed). Everything sent to a callback goes
//! through one client that follows no redirect, uses no proxy and resolves names through
//! [`crate::netguard::PublicOnly`] (the classifier upstream fetches use too), and callbacks that are address literals are classified at
//! request time: unless `[websub] allow_private_callbacks`, nothing is sent to a loopback,
//! private, link-local or multicast address. A write only records which topics changed
//! ([`crate::topics::ChangedTopics::published`], called by the application layer); marking their subscriptions pending happens on the hub's own task.

pub mod deliver;
mod inner;
pub mod listing;
pub mod request;
pub mod verify;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinHandle;
use url::Url;

use crate::app::{App, FeedError};
use crate::cache::CacheKey;
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::{Metrics, OutcomeLabel};
use crate::netguard::{self, Refused};
use crate::store::Store;
use crate::store::subscriptions::Subscription;
use crate::topics::ChangedTopics;
use inner::Inner;
use request::{Mode, Verify};

/// How often expired subscriptions are purged and the gauge recounted.
const UPKEEP_EVERY: Duration = Duration::from_secs(60);
/// How long a failed marking waits before it is tried again.
const MARK_RETRY: Duration = Duration::from_secs(1);
/// How long the hub lets a change settle before marking it: the write's answer leaves before
/// the hub takes the two cores' time for claims, renders and POSTs, and a burst of writes within
/// it is marked (and delivered) once. Small beside the second a subscriber is promised.
const MARK_SETTLE: Duration = Duration::from_millis(20);
/// How long a stopping hub waits for each of its tasks.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// The hub: cheap to clone; [`Hub::disabled`] when `[websub] builtin = false`.
#[derive(Clone, Default)]
pub struct Hub {
    inner: Option<Arc<Inner>>,
}

/// The answer to a subscription request: a status and a plain-text reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub text: String,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl Answer {
    fn new(status: u16, text: impl Into<String>) -> Answer {
        Answer {
            status,
            text: text.into(),
            retry_after: None,
        }
    }

    fn retry(mut self, secs: u64) -> Answer {
        self.retry_after = Some(secs);
        self
    }

    /// The request outcome counted in `hub_requests`.
    fn outcome(&self) -> &'static str {
        match self.status {
            202 => "accepted",
            204 => "verified",
            409 => "failed",
            429 => "rate_limited",
            503 => "busy",
            _ => "refused",
        }
    }
}

/// What a verification concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verified {
    Done,
    Denied(String),
    Failed(String),
}

/// One verification to run: a request that passed every check.
struct Job {
    mode: Mode,
    topic: String,
    callback: Url,
    host: String,
    lease: u64,
    secret: Option<String>,
    verify_token: Option<String>,
    /// Send a denial GET when validation refuses (async only: a sync request hears it in the
    /// answer).
    deny_by_callback: bool,
}

/// An admitted verification; gives its budget back when dropped.
struct Ticket {
    inner: Arc<Inner>,
    host: String,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.inner
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release(&self.host);
    }
}

impl Hub {
    /// A hub that answers nothing and delivers nothing.
    pub fn disabled() -> Hub {
        Hub::default()
    }

    /// The hub `[websub]` configures (disabled unless `builtin`); nothing runs until
    /// [`Hub::start`]. Call it on the runtime the hub is to run on.
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        topics: Arc<ChangedTopics>,
    ) -> Hub {
        if !config.websub.builtin {
            return Hub::disabled();
        }
        crate::outbox::install_tls_provider();
        let hub_url = config
            .builtin_hub()
            .map(|u| u.to_string())
            .unwrap_or_default();
        let mut client = reqwest::Client::builder();
        if !config.websub.allow_private_callbacks {
            client = client.dns_resolver(Arc::new(netguard::PublicOnly));
        }
        let client = client
            .user_agent(format!(
                "bantin/{} (WebSub hub; +{hub_url})",
                env!("CARGO_PKG_VERSION")
            ))
            // WebSub: a redirect from a callback is a failure, never followed (it could point
            // anywhere, including where the address checks would refuse to go).
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the address filter.
            .no_proxy()
            .no_gzip()
            .no_brotli()
            .connect_timeout(Duration::from_secs(5))
            .timeout(deliver::TIMEOUT)
            .pool_max_idle_per_host(deliver::PER_HOST)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .expect("a client with rustls and no custom roots builds");
        let (stop, _) = watch::channel(false);
        Hub {
            inner: Some(Arc::new(Inner {
                admission: Mutex::new(verify::Admission::new(
                    config.websub.verifications_per_minute,
                )),
                in_flight: Semaphore::new(verify::IN_FLIGHT),
                shared_store: store.backend() == "postgres",
                config,
                store,
                metrics,
                clock,
                client,
                topics,
                due: Notify::new(),
                stop,
                tasks: Mutex::new(Vec::new()),
                runtime: tokio::runtime::Handle::current(),
            })),
        }
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Starts delivering (resuming what was pending), marking and purging. The tasks hold the
    /// application weakly: they end with it, or at [`Hub::stop`].
    pub fn start(&self, app: &Arc<App>) {
        let Some(inner) = &self.inner else { return };
        let mut tasks = inner.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let stop = inner.stop.subscribe();
        tasks.push(tokio::spawn(deliver::run(
            inner.clone(),
            Arc::downgrade(app),
            stop.clone(),
        )));
        tasks.push(tokio::spawn(mark(inner.clone(), stop.clone())));
        tasks.push(tokio::spawn(upkeep(inner.clone(), stop)));
    }

    /// Stops the tasks: deliveries in flight get a few seconds, claimed rows not yet sent are
    /// given back to the store for another replica (or the next start).
    pub async fn stop(&self) {
        let Some(inner) = &self.inner else { return };
        let _ = inner.stop.send(true);
        let tasks: Vec<JoinHandle<()>> = inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for t in tasks {
            let abort = t.abort_handle();
            if tokio::time::timeout(STOP_WAIT, t).await.is_err() {
                abort.abort();
            }
        }
    }

    /// Answers one subscription request (the form body of `POST /websub`).
    pub async fn handle(&self, app: &App, body: &[u8]) -> Answer {
        let Some(inner) = &self.inner else {
            return Answer::new(
                404,
                "This site runs no WebSub hub ([websub] builtin = false).",
            );
        };
        let answer = match inner.request(app, body).await {
            Ok(a) | Err(a) => a,
        };
        inner
            .metrics
            .hub_requests
            .get_or_create(&OutcomeLabel {
                outcome: answer.outcome(),
            })
            .inc();
        answer
    }
}

impl Inner {
    async fn request(self: &Arc<Self>, app: &App, body: &[u8]) -> Result<Answer, Answer> {
        let bad = |e: request::RequestError| Answer::new(400, e.to_string());
        let req = request::parse(body).map_err(bad)?;
        let (key, format) = request::topic(&self.config, &req.topic).map_err(bad)?;
        let topic = key.url(&self.config, format, 1);
        let cb = request::callback(&req.callback).map_err(bad)?;
        if req.mode == Mode::Subscribe {
            let page = CacheKey {
                feed: key,
                format,
                page: 1,
                content: app.public_content(),
            };
            match app.feed(&page).await {
                Ok(_) => {}
                Err(FeedError::NotFound(why)) => {
                    return Err(Answer::new(400, format!("hub.topic: {why}")));
                }
                Err(FeedError::Store(_) | FeedError::Busy) => {
                    return Err(Answer::new(
                        503,
                        "The feed cannot be rendered now; try again shortly.",
                    )
                    .retry(5));
                }
            }
        }
        // The address check before anything is sent: a literal is judged as it is, a name by
        // every address it has now (the client's resolver judges again when connecting).
        match netguard::resolve(
            &cb.host,
            cb.port,
            self.config.websub.allow_private_callbacks,
        )
        .await
        {
            Ok(_) => {}
            Err(e @ Refused::NonPublic(_)) => {
                return Err(Answer::new(
                    403,
                    format!("hub.callback: {e}; only public addresses are allowed"),
                ));
            }
            Err(e @ Refused::Unresolved { .. }) => {
                return Err(Answer::new(400, format!("hub.callback: {e}")));
            }
        }
        let sync = req.verify == Verify::Sync;
        if req.mode == Mode::Unsubscribe {
            // Nothing to remove: no request goes out (it would be one more for a stranger to
            // aim at someone).
            let existing = self
                .store
                .subscription(&topic, cb.url.as_str())
                .await
                .map_err(|_| {
                    Answer::new(
                        503,
                        "The subscription store is unavailable; try again shortly.",
                    )
                    .retry(5)
                })?;
            if existing.is_none() {
                return Ok(Answer::new(
                    if sync { 204 } else { 202 },
                    "No such subscription: nothing to unsubscribe.",
                ));
            }
        }
        let lane = {
            let now = self.clock.now();
            let mut a = self.admission.lock().unwrap_or_else(|p| p.into_inner());
            match a.admit(&cb.host, now) {
                Ok(lane) => lane,
                Err(verify::Refusal::RateLimited { retry_after }) => {
                    return Err(Answer::new(
                        429,
                        format!(
                            "Too many subscription requests for callbacks on {}: at most {} a minute. Try again in {retry_after} s.",
                            cb.host, self.config.websub.verifications_per_minute
                        ),
                    )
                    .retry(retry_after));
                }
                Err(verify::Refusal::Busy) => {
                    return Err(Answer::new(
                        503,
                        "Too many verifications are waiting; try again shortly.",
                    )
                    .retry(30));
                }
            }
        };
        let ticket = Ticket {
            inner: self.clone(),
            host: cb.host.clone(),
        };
        let job = Job {
            mode: req.mode,
            topic,
            callback: cb.url,
            host: cb.host,
            lease: request::lease(req.lease_seconds),
            secret: req.secret,
            verify_token: req.verify_token,
            deny_by_callback: !sync,
        };
        if sync {
            let inner = self.clone();
            let verified = self
                .runtime
                .spawn(async move {
                    let _ticket = ticket;
                    inner.verify(&job, lane).await
                })
                .await
                .unwrap_or_else(|_| Verified::Failed("the verification was cut short".into()));
            return Ok(match verified {
                Verified::Done => Answer::new(204, ""),
                Verified::Denied(why) => Answer::new(403, why),
                Verified::Failed(why) => {
                    Answer::new(409, format!("Verification of intent failed: {why}."))
                }
            });
        }
        let (inner, mut stop) = (self.clone(), self.stop.subscribe());
        let callback = job.callback.clone();
        self.runtime.spawn(async move {
            let _ticket = ticket;
            tokio::select! {
                _ = inner.verify(&job, lane) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        });
        Ok(Answer::new(
            202,
            format!(
                "Accepted: a verification of intent will be sent to {}.",
                listing::display_callback(&callback)
            ),
        ))
    }

    /// Validates and verifies one admitted request, and applies it when verified.
    async fn verify(&self, job: &Job, lane: Arc<Semaphore>) -> Verified {
        let Ok(_lane) = lane.acquire_owned().await else {
            return Verified::Failed("the hub is stopping".into());
        };
        let Ok(_slot) = self.in_flight.acquire().await else {
            return Verified::Failed("the hub is stopping".into());
        };
        let outcome = self.verify_admitted(job).await;
        let label = match (&outcome, job.mode) {
            (Verified::Done, Mode::Subscribe) => "subscribed",
            (Verified::Done, Mode::Unsubscribe) => "unsubscribed",
            (Verified::Denied(_), _) => "denied",
            (Verified::Failed(_), _) => "failed",
        };
        self.metrics
            .hub_verifications
            .get_or_create(&OutcomeLabel { outcome: label })
            .inc();
        match &outcome {
            Verified::Done => {
                tracing::info!(mode = job.mode.as_str(), topic = %job.topic, callback = %listing::display_callback(&job.callback), "hub: verified")
            }
            Verified::Denied(why) | Verified::Failed(why) => {
                tracing::info!(mode = job.mode.as_str(), topic = %job.topic, callback = %listing::display_callback(&job.callback), %why, "hub: not verified")
            }
        }
        outcome
    }

    async fn verify_admitted(&self, job: &Job) -> Verified {
        if job.mode == Mode::Subscribe
            && let Some(reason) = self.validate(job).await
        {
            if job.deny_by_callback {
                let url = verify::denial_url(&job.callback, &job.topic, &reason);
                let _ = verify::get(&self.client, url).await;
            }
            return Verified::Denied(reason);
        }
        let challenge = verify::challenge();
        let lease = (job.mode == Mode::Subscribe).then_some(job.lease);
        let url = verify::verification_url(
            &job.callback,
            job.mode.as_str(),
            &job.topic,
            &challenge,
            lease,
            job.verify_token.as_deref(),
        );
        // WebSub: the lease runs from when the verification request was made.
        let sent_at = self.clock.now();
        let (status, body) = match verify::get(&self.client, url).await {
            Ok(answer) => answer,
            Err(e) => return Verified::Failed(format!("the callback could not be reached: {e}")),
        };
        if !verify::accepted(status, &body, &challenge) {
            return Verified::Failed(if (200..300).contains(&status) {
                format!("the callback answered {status} without echoing the challenge")
            } else {
                format!("the callback answered {status}")
            });
        }
        let stored = match job.mode {
            Mode::Subscribe => self
                .store
                .save_subscription(&Subscription::new(
                    &job.topic,
                    job.callback.as_str(),
                    &job.host,
                    job.secret.clone(),
                    job.lease,
                    sent_at,
                ))
                .await
                .map(|_| ()),
            Mode::Unsubscribe => self
                .store
                .remove_subscription(&job.topic, job.callback.as_str())
                .await
                .map(|_| ()),
        };
        match stored {
            Ok(()) => Verified::Done,
            Err(e) => {
                tracing::warn!(error = %e, "hub: a verified subscription could not be stored");
                Verified::Failed("the subscription store is unavailable".into())
            }
        }
    }

    /// Why a verified subscription would not be accepted now, if it would not: the bounds on
    /// subscriptions in all and per callback host (a renewal is always accepted).
    async fn validate(&self, job: &Job) -> Option<String> {
        let now = self.clock.now();
        let renewal = match self
            .store
            .subscription(&job.topic, job.callback.as_str())
            .await
        {
            Ok(s) => s.is_some_and(|s| s.expires_at > now),
            Err(_) => return Some("the subscription store is unavailable; try again later".into()),
        };
        if renewal {
            return None;
        }
        let (all, host) = match self.store.count_subscriptions(&job.host, now).await {
            Ok(c) => c,
            Err(_) => return Some("the subscription store is unavailable; try again later".into()),
        };
        let w = &self.config.websub;
        if all >= w.max_subscriptions {
            Some(format!(
                "this hub holds its maximum of {} subscriptions",
                w.max_subscriptions
            ))
        } else if host >= w.max_subscriptions_per_host {
            Some(format!(
                "callbacks on {} hold their maximum of {} subscriptions",
                job.host, w.max_subscriptions_per_host
            ))
        } else {
            None
        }
    }
}

/// Marks the subscriptions of changed topics pending and wakes the delivery task.
async fn mark(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = inner.topics.changed() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(MARK_SETTLE) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        loop {
            let topics = inner.topics.take();
            if topics.is_empty() {
                break;
            }
            match inner.store.mark_published(&topics, inner.clock.now()).await {
                Ok(0) => {}
                Ok(_) => inner.due.notify_one(),
                Err(e) => {
                    tracing::warn!(error = %e, topics = topics.len(), "hub: cannot mark subscriptions; retrying");
                    inner.topics.put_back(topics);
                    tokio::select! {
                        _ = tokio::time::sleep(MARK_RETRY) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }
}

/// Purges subscriptions whose lease ended and recounts the gauge, every minute of the clock.
async fn upkeep(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        let now = inner.clock.now();
        match inner.store.purge_subscriptions(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                purged = n,
                "hub: subscriptions whose lease ended were removed"
            ),
            Err(e) => tracing::warn!(error = %e, "hub: cannot purge expired subscriptions"),
        }
        if let Ok((all, _)) = inner.store.count_subscriptions("", now).await {
            inner
                .metrics
                .hub_subscriptions
                .set(all.min(i64::MAX as u64) as i64);
        }
        let next = now + chrono::Duration::from_std(UPKEEP_EVERY).expect("a minute");
        let clock = inner.clock.clone();
        tokio::select! {
            _ = clock.sleep_until(next) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
