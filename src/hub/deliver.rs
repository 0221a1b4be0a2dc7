//! Content distribution: after a write, each subscriber of a touched feed gets a POST of the
//! feed's page 1 as a GET returns it (the same bytes, `Content-Type` and
//! `Link: <hub>; rel="hub", <topic>; rel="self"`), signed with `X-Hub-Signature: sha256=…`
//! when the subscription has a secret.
//!
//! Deliveries are rows of the store (see [`crate::store::subscriptions`]): a write marks the
//! topic's subscriptions pending, and one task per process claims due rows under a lease, sends
//! them and writes the outcomes. So a burst of writes is one delivery of the latest document
//! (the row is pending once), a restart loses nothing pending, and several replicas on one
//! PostgreSQL database send each delivery once.
//!
//! Claimed rows wait in one lane per callback host. A host gets at most [`PER_HOST`] requests
//! in flight (and [`HOST_QUEUE`] rows claimed before it is left out of the next claim), the
//! process [`MAX_IN_FLIGHT`], each with a [`TIMEOUT`]: a dead or slow subscriber holds its own
//! lane's slots and nobody else's, and never a write, which only marks rows. 2xx is success;
//! 410 ends the subscription; anything else, redirects included, is retried after
//! [`retry_delay`] (5 s doubling to an hour, ±10%) until the lease ends, whatever the number of
//! failures.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hmac::{KeyInit, Mac};

use super::inner::Inner;
use crate::app::{App, FeedError};
use crate::cache::CacheKey;
use crate::metrics::OutcomeLabel;
use crate::netguard;
use crate::store::subscriptions::{Claim, Finished, Outcome};

/// Requests in flight to one callback host, and in all.
pub const PER_HOST: usize = 8;
pub const MAX_IN_FLIGHT: usize = 256;
/// Rows claimed for one host before it is left out of claims; rows claimed in all.
pub const HOST_QUEUE: usize = 64;
pub const MAX_CLAIMED: usize = 1024;
/// How long a claim holds: longer than the longest a claimed row can wait in its lane
/// (2 × HOST_QUEUE rows, PER_HOST at a time, each within TIMEOUT: 160 s).
pub const CLAIM_LEASE: Duration = Duration::from_secs(300);
/// One delivery's deadline, connection, body and answer included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Outcomes written at once at most (more wait for the next write).
const FLUSH_AT: usize = 64;
/// How often the store is looked at without being woken (other replicas' writes).
const POLL: Duration = Duration::from_secs(1);
/// How long a stopping hub lets deliveries in flight finish.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Bytes of a subscriber's answer read at most (it is ignored; reading lets the connection be
/// reused).
const MAX_ANSWER: usize = 64 * 1024;

/// The first retry's delay, and the longest.
pub const FIRST_RETRY: Duration = Duration::from_secs(5);
pub const MAX_RETRY: Duration = Duration::from_secs(3600);

/// The delay before attempt `failures + 1` after `failures` failures in a row (1 or more):
/// doubling from [`FIRST_RETRY`] to [`MAX_RETRY`], spread by ±10% by `seed` so that a host
/// with many subscriptions that came back is not hit by all of them at the same instant.
pub fn retry_delay(failures: u32, seed: u64) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    let base = FIRST_RETRY.saturating_mul(1u32 << doublings).min(MAX_RETRY);
    let spread = 0.9 + 0.2 * ((seed % 10_000) as f64 / 10_000.0);
    base.mul_f64(spread)
}

/// `X-Hub-Signature`: `sha256=` and the hex HMAC-SHA256 of the body under the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What a subscriber's status means.
pub fn outcome_of(status: u16) -> Kind {
    match status {
        200..=299 => Kind::Accepted,
        410 => Kind::Gone,
        _ => Kind::Failed,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Accepted,
    Gone,
    Failed,
}

/// Claimed rows by callback host, and what is in flight.
#[derive(Default)]
pub struct Lanes {
    hosts: HashMap<String, Lane>,
    claimed: usize,
    in_flight: usize,
}

#[derive(Default)]
struct Lane {
    waiting: VecDeque<Claim>,
    in_flight: usize,
}

impl Lanes {
    pub fn add(&mut self, claims: Vec<Claim>) {
        for c in claims {
            self.claimed += 1;
            self.hosts
                .entry(c.host.clone())
                .or_default()
                .waiting
                .push_back(c);
        }
    }

    /// Hosts with enough claimed: left out of the next claim.
    pub fn busy(&self) -> Vec<String> {
        let mut busy: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, l)| l.waiting.len() + l.in_flight >= HOST_QUEUE)
            .map(|(h, _)| h.clone())
            .collect();
        busy.sort();
        busy
    }

    /// Rows that can start now, within the per-host and total bounds.
    pub fn starts(&mut self) -> Vec<Claim> {
        let mut out = Vec::new();
        for lane in self.hosts.values_mut() {
            while lane.in_flight < PER_HOST && self.in_flight < MAX_IN_FLIGHT {
                let Some(c) = lane.waiting.pop_front() else {
                    break;
                };
                lane.in_flight += 1;
                self.in_flight += 1;
                out.push(c);
            }
        }
        out
    }

    /// One started row is done. `true` when its host cannot fill its slots any more (more
    /// should be claimed).
    pub fn finished(&mut self, host: &str) -> bool {
        self.claimed = self.claimed.saturating_sub(1);
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(lane) = self.hosts.get_mut(host) else {
            return true;
        };
        lane.in_flight = lane.in_flight.saturating_sub(1);
        let low = lane.waiting.len() < PER_HOST;
        if lane.waiting.is_empty() && lane.in_flight == 0 {
            self.hosts.remove(host);
        }
        low
    }

    /// Rows claimed and not started (given back on stop).
    pub fn take_waiting(&mut self) -> Vec<Claim> {
        let mut out = Vec::new();
        for lane in self.hosts.values_mut() {
            self.claimed -= lane.waiting.len();
            out.extend(lane.waiting.drain(..));
        }
        out
    }

    pub fn claimed(&self) -> usize {
        self.claimed
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

/// The delivery task: claims due rows, sends them, writes what became of them; until `stop`.
pub(super) async fn run(
    inner: Arc<Inner>,
    app: Weak<App>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut lanes = Lanes::default();
    let mut flights = FuturesUnordered::new();
    let mut done: Vec<Finished> = Vec::new();
    let mut claim = true;
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if *stop.borrow() {
            break;
        }
        let Some(app) = app.upgrade() else { break };
        // Outcomes first: a row delivered while a write marked it again is then claimable.
        if !done.is_empty() && (claim || done.len() >= FLUSH_AT || flights.is_empty()) {
            flush(&inner, &mut done).await;
        }
        if claim {
            claim = false;
            let topics = claim_more(&inner, &mut lanes).await;
            if inner.shared_store {
                // Another replica's write is announced to this one's cache asynchronously; the
                // mark that made these rows due is not. Render what they deliver afresh.
                let feeds: Vec<_> = topics
                    .iter()
                    .filter_map(|t| super::request::topic(app.config(), t).ok())
                    .map(|(key, _)| key)
                    .collect();
                app.cache().invalidate(&feeds);
            }
        }
        for c in lanes.starts() {
            flights.push(deliver(inner.clone(), app.clone(), c));
        }
        drop(app);
        let next_due = if flights.is_empty() && lanes.claimed() == 0 {
            match inner.store.next_delivery(inner.clock.now()).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(error = %e, "hub: cannot read the next delivery time; looking again shortly");
                    None
                }
            }
        } else {
            None
        };
        let clock = inner.clock.clone();
        tokio::select! {
            Some(f) = flights.next(), if !flights.is_empty() => {
                claim |= lanes.finished(&f.claim.host);
                done.push(f);
                // Everything else that is ready, in the same pass.
                while let Some(Some(f)) = flights.next().now_or_never() {
                    claim |= lanes.finished(&f.claim.host);
                    done.push(f);
                }
            }
            _ = inner.due.notified() => claim = true,
            _ = async move { clock.sleep_until(next_due.unwrap_or_default()).await }, if next_due.is_some() => claim = true,
            _ = poll.tick() => claim = true,
            _ = stop.changed() => break,
        }
    }
    // Stopping: let what is in flight finish (briefly), give back what never started.
    let _ = tokio::time::timeout(STOP_GRACE, async {
        while let Some(f) = flights.next().await {
            done.push(f);
        }
    })
    .await;
    let now = inner.clock.now();
    done.extend(lanes.take_waiting().into_iter().map(|claim| Finished {
        claim,
        at: now,
        outcome: Outcome::Released,
    }));
    flush(&inner, &mut done).await;
}

/// Writes the outcomes gathered; on a store failure they are kept for the next pass (bounded:
/// one per claimed row, and a claim ends by itself).
async fn flush(inner: &Inner, done: &mut Vec<Finished>) {
    if done.is_empty() {
        return;
    }
    match inner.store.finish_deliveries(done).await {
        Ok(_) => done.clear(),
        Err(e) => {
            tracing::warn!(error = %e, outcomes = done.len(), "hub: cannot record delivery outcomes; retrying");
            if done.len() > MAX_CLAIMED {
                // Their claims will have ended; the rows are claimed and sent again.
                done.clear();
            }
        }
    }
}

/// Claims due rows until the bounds are reached or nothing more is due; returns the topics of
/// the rows claimed.
async fn claim_more(inner: &Inner, lanes: &mut Lanes) -> std::collections::BTreeSet<String> {
    let mut topics = std::collections::BTreeSet::new();
    for _ in 0..MAX_CLAIMED / HOST_QUEUE {
        let room = MAX_CLAIMED.saturating_sub(lanes.claimed()).min(HOST_QUEUE);
        if room == 0 {
            break;
        }
        let now = inner.clock.now();
        let until = now + chrono::Duration::from_std(CLAIM_LEASE).expect("a small duration");
        let busy = lanes.busy();
        match inner.store.claim_deliveries(now, until, room, &busy).await {
            Ok(claims) => {
                let got = claims.len();
                topics.extend(claims.iter().map(|c| c.topic.clone()));
                lanes.add(claims);
                if got < room {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "hub: cannot claim deliveries; retrying shortly");
                break;
            }
        }
    }
    topics
}

/// One delivery of the topic as it is now.
async fn deliver(inner: Arc<Inner>, app: Arc<App>, claim: Claim) -> Finished {
    let started = std::time::Instant::now();
    let (outcome, label) = match send(&inner, &app, &claim).await {
        Ok(Sent::Accepted) => (Outcome::Delivered, "ok"),
        Ok(Sent::Gone) => (Outcome::Gone, "gone"),
        Err(Skip::Nothing) => (Outcome::Delivered, "skipped"),
        Err(Skip::Refused(why)) => {
            tracing::warn!(callback = %claim.callback, %why, "hub: ending a subscription whose callback is no longer allowed");
            (Outcome::Gone, "refused")
        }
        Err(Skip::Failed(error)) => {
            let failures = claim.attempts.saturating_add(1);
            let seed = xxhash_rust::xxh3::xxh3_64(
                format!("{}\n{}\n{failures}", claim.topic, claim.callback).as_bytes(),
            );
            let delay = retry_delay(failures, seed);
            tracing::info!(callback = %claim.callback, topic = %claim.topic, %error, failures, retry_in = ?delay, "hub: delivery failed; will retry");
            let retry_at = inner.clock.now()
                + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
            (Outcome::Failed { error, retry_at }, "failed")
        }
    };
    inner
        .metrics
        .hub_delivery_seconds
        .observe(started.elapsed().as_secs_f64());
    inner
        .metrics
        .hub_deliveries
        .get_or_create(&OutcomeLabel { outcome: label })
        .inc();
    Finished {
        at: inner.clock.now(),
        claim,
        outcome,
    }
}

/// What a subscriber said to a delivery it received.
enum Sent {
    Accepted,
    Gone,
}

/// Why a claimed row was not delivered.
enum Skip {
    /// The topic has no document now (its last article went, or the feed is not configured):
    /// nothing to send.
    Nothing,
    /// The callback is not allowed (any more).
    Refused(String),
    /// Retry later, for this reason.
    Failed(String),
}

async fn send(inner: &Inner, app: &App, claim: &Claim) -> Result<Sent, Skip> {
    let config = &app.config();
    let url = url::Url::parse(&claim.callback).map_err(|e| Skip::Refused(e.to_string()))?;
    if !config.websub.allow_private_callbacks
        && let Some(why) = netguard::literal_ip(&url).and_then(netguard::non_public)
    {
        return Err(Skip::Refused(format!("a {why} address")));
    }
    let Ok((key, format)) = super::request::topic(config, &claim.topic) else {
        // The feed is not configured here (a category removed, or another public URL): nothing
        // to send; the subscription lapses with its lease.
        return Err(Skip::Nothing);
    };
    let cache_key = CacheKey {
        feed: key,
        format,
        page: 1,
        content: app.public_content(),
    };
    let entry = match app.feed(&cache_key).await {
        Ok((entry, _)) => entry,
        Err(FeedError::NotFound(_)) => return Err(Skip::Nothing),
        Err(e @ (FeedError::Store(_) | FeedError::Busy)) => {
            return Err(Skip::Failed(format!(
                "the feed cannot be rendered now: {e}"
            )));
        }
    };
    let rep = &entry.rep;
    let body: Bytes = rep.identity.bytes.clone();
    let mut request = inner
        .client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, rep.content_type.clone())
        .header(reqwest::header::LINK, rep.link_header.clone());
    if let Some(secret) = &claim.secret {
        request = request.header("X-Hub-Signature", signature(secret, &body));
    }
    let request = request.body(body);
    let exchange = async {
        let mut resp = request.send().await.map_err(super::verify::describe)?;
        let status = resp.status().as_u16();
        // Read (and ignore) a little of the answer, so the connection can serve the next one.
        let mut read = 0;
        while read <= MAX_ANSWER {
            match resp.chunk().await {
                Ok(Some(c)) => read += c.len(),
                _ => break,
            }
        }
        Ok::<u16, String>(status)
    };
    match tokio::time::timeout(TIMEOUT, exchange).await {
        Ok(Ok(status)) => match outcome_of(status) {
            Kind::Accepted => Ok(Sent::Accepted),
            Kind::Gone => Ok(Sent::Gone),
            Kind::Failed => Err(Skip::Failed(format!("answered {status}"))),
        },
        Ok(Err(e)) => Err(Skip::Failed(e)),
        Err(_) => Err(Skip::Failed(format!(
            "no answer within {} s",
            TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn claim(host: &str, n: usize) -> Claim {
        Claim {
            topic: "https://feeds.example/vi/rss.xml".into(),
            callback: format!("https://{host}/cb/{n}"),
            host: host.into(),
            secret: None,
            updates: 1,
            attempts: 0,
            claimed_until: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    #[test]
    fn signature_is_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retries_grow_to_an_hour_and_never_stop_growing_back() {
        let plain: Vec<u64> = (1..=12).map(|n| retry_delay(n, 5_000).as_secs()).collect();
        assert_eq!(
            plain,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
        assert_eq!(retry_delay(u32::MAX, 5_000), MAX_RETRY);
        assert_eq!(retry_delay(1, 0), Duration::from_millis(4500));
        assert!(retry_delay(1, 9_999) < Duration::from_millis(5500));
        for n in 1..10 {
            assert!(retry_delay(n + 1, 9_999) > retry_delay(n, 9_999));
            assert!(
                retry_delay(n + 1, 0) > retry_delay(n, 9_999),
                "growing whatever the spread"
            );
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(outcome_of(200), Kind::Accepted);
        assert_eq!(outcome_of(204), Kind::Accepted);
        assert_eq!(outcome_of(410), Kind::Gone);
        for s in [301, 302, 307, 308, 400, 404, 429, 500, 503] {
            assert_eq!(outcome_of(s), Kind::Failed, "{s}");
        }
    }

    #[test]
    fn lanes_bound_each_host_and_the_whole() {
        let mut lanes = Lanes::default();
        lanes.add((0..100).map(|i| claim("slow.example", i)).collect());
        lanes.add((0..3).map(|i| claim("fast.example", i)).collect());
        assert_eq!(lanes.busy(), ["slow.example"]);
        let started = lanes.starts();
        assert_eq!(started.len(), PER_HOST + 3);
        assert_eq!(
            started.iter().filter(|c| c.host == "slow.example").count(),
            PER_HOST
        );
        assert!(lanes.starts().is_empty(), "no slot is free");
        // The fast host finishing asks for more; the slow host's slots stay its own.
        assert!(lanes.finished("fast.example"));
        assert_eq!(lanes.in_flight(), PER_HOST + 2);
        assert!(!lanes.finished("slow.example"), "plenty left waiting");
        assert_eq!(lanes.starts().len(), 1);
        assert_eq!(lanes.claimed(), 101);
        let back = lanes.take_waiting();
        assert_eq!(back.len(), 100 - PER_HOST - 1);
        assert_eq!(lanes.claimed(), PER_HOST + 2);

        let mut many = Lanes::default();
        many.add(
            (0..400)
                .map(|i| claim(&format!("h{i}.example"), i))
                .collect(),
        );
        assert_eq!(many.starts().len(), MAX_IN_FLIGHT);
    }
}
