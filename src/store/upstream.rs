//! Upstream source state: what the store keeps about each polled `[[sources]]` feed.
//!
//! Plain data shared by both backends and by [`crate::sources`], so the poller and the storage
//! agree on one shape without depending on each other. The state is kept whole as a JSON
//! document beside one indexed column, `next_poll` (milliseconds since the epoch), because the
//! only query that needs a column is the lease: a replica claims a due source by moving its
//! `next_poll` forward in one conditional `UPDATE … WHERE next_poll <= now`, which the database
//! serialises, so of several replicas exactly one wins a given interval.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the last poll of a source concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceStatus {
    /// Never polled yet.
    Pending,
    /// The last poll succeeded (a new body stored, or a 304).
    Ok,
    /// A transient failure (network, timeout, 5xx, 429): retried after a growing delay.
    Backoff,
    /// A failure of the body or the request itself (malformed feed, too large, 4xx): retried
    /// after a growing delay too, since upstreams get fixed, but reported as an error.
    Error,
    /// 410 Gone: not polled again until its configured URL changes.
    Gone,
    /// The source's URL, or a redirect, points where bantin does not fetch (a non-public
    /// address, or bantin itself): nothing was requested there. Retried after growing delays
    /// like an error, since an upstream's redirect (or the configuration) may change.
    Refused,
}

impl SourceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceStatus::Pending => "pending",
            SourceStatus::Ok => "ok",
            SourceStatus::Backoff => "backoff",
            SourceStatus::Error => "error",
            SourceStatus::Gone => "gone",
            SourceStatus::Refused => "refused",
        }
    }
}

/// One source's persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceState {
    pub id: String,
    /// The URL site.toml names; when the operator changes it, the state starts afresh.
    pub configured_url: String,
    /// The URL polled now: a permanent redirect (301, 308) moves it.
    pub url: String,
    pub status: SourceStatus,
    /// Validators of the last body that was parsed and stored, each kept on its own.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    pub next_poll: DateTime<Utc>,
    pub last_error: Option<String>,
    /// Articles this source has created, over its life.
    pub items: u64,
    /// The upstream feed's title, home page and id as last read (for the credit and listings).
    pub title: Option<String>,
}

impl SourceState {
    /// A source never polled, due at `next_poll`.
    pub fn new(id: &str, url: &str, next_poll: DateTime<Utc>) -> SourceState {
        SourceState {
            id: id.to_string(),
            configured_url: url.to_string(),
            url: url.to_string(),
            status: SourceStatus::Pending,
            etag: None,
            last_modified: None,
            last_attempt: None,
            last_success: None,
            consecutive_failures: 0,
            next_poll,
            last_error: None,
            items: 0,
            title: None,
        }
    }

    pub(crate) fn to_doc(&self) -> String {
        serde_json::to_string(self).expect("a SourceState always serialises")
    }

    /// A row: the document, with `next_poll` from its column, which is what a lease moves (so a
    /// replica reading the states sees another's claim).
    pub(crate) fn from_row(
        doc: &str,
        next_poll_millis: i64,
    ) -> Result<SourceState, super::error::StoreError> {
        let mut st = SourceState::from_doc(doc)?;
        if let Some(t) = DateTime::<Utc>::from_timestamp_millis(next_poll_millis) {
            st.next_poll = t;
        }
        Ok(st)
    }

    pub(crate) fn from_doc(doc: &str) -> Result<SourceState, super::error::StoreError> {
        serde_json::from_str(doc)
            .map_err(|e| super::error::StoreError::Backend(format!("unreadable source state: {e}")))
    }
}

/// The `next_poll` of a source that is never polled again (410 Gone): far enough for any
/// schedule, near enough for every time arithmetic and zone conversion.
pub fn never() -> DateTime<Utc> {
    DateTime::from_timestamp(253_370_764_800, 0).expect("9999-01-01 is a valid instant")
}

/// Milliseconds since the epoch: the `next_poll` column in both backends.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}
