//! WebSub subscriptions as the store keeps them: plain data shared by both backends and by
//! [`crate::hub`], so the hub and the storage agree on one shape without depending on each other.
//!
//! A subscription is one (topic, callback) pair, the key WebSub gives it, with its lease and its
//! secret. Beside them each row carries its own delivery state, which is what makes delivery
//! survive restarts and happen once across replicas:
//!
//! - `updates` counts the writes that touched the topic while the subscription was active, and
//!   `delivered` is the `updates` an accepted delivery covered. A row is *pending* while
//!   `updates > delivered`; any number of writes before the next delivery make it pending once,
//!   and that delivery sends the topic as it is then (coalescing).
//! - `next_attempt` is when it may be tried (a failure moves it by the backoff), and
//!   `claimed_until` is the lease: a replica claims due rows by moving it forward in one
//!   conditional update, which the database serialises, and writes the outcome only under the
//!   claim it holds (as the sources' lease does).
//!
//! Times are milliseconds since the epoch in both backends.

use chrono::{DateTime, Utc};

/// One subscription with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The feed URL subscribed to (page 1 of a feed in one format).
    pub topic: String,
    /// Where deliveries go, query string included.
    pub callback: String,
    /// The callback's host, lower case: what per-host bounds count by.
    pub host: String,
    /// The HMAC key deliveries are signed with.
    pub secret: Option<String>,
    /// The lease granted, in seconds.
    pub lease_seconds: u64,
    /// When the lease ends; the subscription is not served after it and is then purged.
    pub expires_at: DateTime<Utc>,
    /// When it was first verified (a renewal keeps it).
    pub created_at: DateTime<Utc>,
    /// Writes to the topic while the subscription was active; pending while above `delivered`.
    pub updates: i64,
    pub delivered: i64,
    /// Failed deliveries since the last success.
    pub attempts: u32,
    pub next_attempt: DateTime<Utc>,
    pub claimed_until: DateTime<Utc>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

impl Subscription {
    /// A subscription just verified, with nothing to deliver yet.
    pub fn new(
        topic: &str,
        callback: &str,
        host: &str,
        secret: Option<String>,
        lease_seconds: u64,
        verified_at: DateTime<Utc>,
    ) -> Subscription {
        Subscription {
            topic: topic.to_string(),
            callback: callback.to_string(),
            host: host.to_string(),
            secret,
            lease_seconds,
            expires_at: verified_at + chrono::Duration::seconds(lease_seconds as i64),
            created_at: verified_at,
            updates: 0,
            delivered: 0,
            attempts: 0,
            next_attempt: verified_at,
            claimed_until: epoch(),
            last_attempt: None,
            last_success: None,
            last_error: None,
        }
    }

    /// Whether a write has not been delivered yet.
    pub fn pending(&self) -> bool {
        self.updates > self.delivered
    }
}

/// A pending delivery a replica claimed: what it needs to send it and to report back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub topic: String,
    pub callback: String,
    pub host: String,
    pub secret: Option<String>,
    /// The `updates` this delivery covers once accepted.
    pub updates: i64,
    /// Failed attempts so far (for the next backoff).
    pub attempts: u32,
    /// The lease the outcome is written under.
    pub claimed_until: DateTime<Utc>,
}

/// What became of a claimed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The subscriber accepted it (2xx); or there was nothing to send (the topic has no document
    /// now): either way the updates it covered are done.
    Delivered,
    /// Anything else: tried again at `retry_at`.
    Failed {
        error: String,
        retry_at: DateTime<Utc>,
    },
    /// 410 Gone: the subscriber ended the subscription (or its callback is no longer allowed).
    Gone,
    /// Claimed and never sent (the replica is stopping): claimable again at once.
    Released,
}

/// One claimed delivery's outcome, written only under the claim it was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub claim: Claim,
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
}

/// Milliseconds since the epoch: the time columns in both backends.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The instant of a time column.
pub fn instant(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

/// The zero of `claimed_until`: not claimed.
pub fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// Longest error text kept per subscription.
pub const MAX_ERROR_CHARS: usize = 300;

/// `text` cut to [`MAX_ERROR_CHARS`] characters.
pub fn clip_error(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}
