//! Readership rows: what the store keeps about who polls which feed, per day.
//!
//! Plain data shared by both backends and by [`crate::readership`], so the counting side and the
//! storage side agree on one shape without depending on each other. A day is the newsroom's
//! calendar day (site zone); a feed is its public path (`/vi/rss.xml`).
//!
//! Every write is additive, so replicas flushing into one database add up rather than overwrite:
//! poll counts are summed, an aggregator's reported count is kept only if it was observed later
//! than the stored one, and readers are a set of keyed hashes (the same reader seen by two
//! replicas is one row). No row holds an address.

use chrono::NaiveDate;

/// Poll totals of one feed on one day, as one flush adds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotals {
    pub day: NaiveDate,
    pub feed: String,
    pub polls: u64,
    pub not_modified: u64,
    pub bytes: u64,
}

/// An aggregator's reported subscriber count for one of its feed ids, as last observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatorCount {
    pub day: NaiveDate,
    pub feed: String,
    /// The aggregator's name (`Feedly`).
    pub client: String,
    /// The aggregator's own id of the feed, or empty when its User-Agent names none.
    pub feed_id: String,
    pub subscribers: u64,
    /// Unix seconds of the observation; a later one replaces an earlier one.
    pub observed_at: i64,
}

/// A partner's polls of one feed on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerPolls {
    pub day: NaiveDate,
    pub feed: String,
    /// The partner's configured id.
    pub partner: String,
    pub polls: u64,
}

/// One individual reader (a keyed hash of its address and User-Agent) seen polling a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSeen {
    pub day: NaiveDate,
    pub feed: String,
    pub reader: i64,
    /// The reader application's family (`Miniflux`, `NetNewsWire`, `other`).
    pub client: String,
}

/// A client that fetched a feed unconditionally again before its `max-age` had passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impolite {
    pub day: NaiveDate,
    pub feed: String,
    /// The User-Agent, cut to [`MAX_USER_AGENT`] bytes.
    pub user_agent: String,
    /// Fetches without `If-None-Match` or `If-Modified-Since`.
    pub unconditional: u64,
    /// Of those, fetches sooner than `max-age` after the previous one.
    pub too_soon: u64,
}

/// Longest User-Agent kept in [`Impolite`] rows.
pub const MAX_USER_AGENT: usize = 200;

/// What one flush adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadershipBatch {
    pub totals: Vec<DayTotals>,
    pub aggregators: Vec<AggregatorCount>,
    pub partners: Vec<PartnerPolls>,
    pub readers: Vec<ReaderSeen>,
    pub impolite: Vec<Impolite>,
}

impl ReadershipBatch {
    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
            && self.aggregators.is_empty()
            && self.partners.is_empty()
            && self.readers.is_empty()
            && self.impolite.is_empty()
    }
}

/// A day's final subscriber figures for one feed, written once the day is over so that the
/// reader rows it was computed from can be pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedDay {
    pub day: NaiveDate,
    pub feed: String,
    pub subscribers: u64,
    /// The breakdown by client, as JSON (`[{"client":…,"kind":…,"subscribers":…}]`).
    pub clients: String,
}

/// Stored totals of one feed and day, with the final figures if the day is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTotals {
    pub totals: DayTotals,
    pub closed: Option<(u64, String)>,
}

/// Everything stored for a range of days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadershipRows {
    pub totals: Vec<StoredTotals>,
    pub aggregators: Vec<AggregatorCount>,
    pub partners: Vec<PartnerPolls>,
    pub readers: Vec<ReaderSeen>,
    pub impolite: Vec<Impolite>,
}

/// `YYYY-MM-DD`, the form days are stored in (it sorts as dates do).
pub fn day_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}
