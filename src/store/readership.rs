//! Readership rows: what the store keeps about who polls which feed, per day, and the bounds that
//! keep it in fixed space per feed and day whatever the traffic.
//!
//! Plain data shared by both backends and by [`crate::readership`], plus [`plan`], the pure
//! function both backends run inside their write transaction to combine a flush with what is
//! stored. A day is the newsroom's calendar day (site zone); a feed is its public path
//! (`/vi/rss.xml`).
//!
//! Every write is additive, so replicas flushing into one database add up rather than overwrite:
//! poll counts are summed (saturating), distinct readers are sketches merged with the stored one
//! ([`crate::sketch`]), a claim keeps its first and last sighting and its latest count.
//! A backend first upserts the day totals of every feed-day the flush touches, in (day, feed)
//! order: that row is the feed-day's lock (PostgreSQL's row lock; SQLite has one writer), so the
//! stored sketches and claims it then reads cannot change under it and no concurrent merge is
//! lost, and two replicas always lock in the same order.
//!
//! Bounds per feed-day (the rest is folded or dropped, and counted on the day totals row):
//! [`MAX_FAMILIES`] reader-family sketches besides the sketch of all readers, [`MAX_CLAIMS`]
//! subscriber claims ([`MAX_CLAIMS_PER_NETWORK`] from one network), [`MAX_IMPOLITE`] impolite
//! User-Agents. No row holds an address: readers are keyed hashes inside sketches, claims name a
//! /24 or /48 network.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;

use crate::sketch::{self, Sketch};

/// Poll totals of one feed on one day, as one flush adds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTotals {
    pub day: NaiveDate,
    pub feed: String,
    pub polls: u64,
    pub not_modified: u64,
    pub bytes: u64,
}

/// The family name of the sketch of all readers of a feed-day.
pub const ALL_READERS: &str = "";
/// The family readers are folded into past [`MAX_FAMILIES`].
pub const OTHER_FAMILY: &str = "other";
/// Reader-family sketches per feed-day, `other` included, besides the sketch of all readers.
pub const MAX_FAMILIES: usize = 8;

/// Distinct readers of one feed on one day, of one family (or all of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderSketch {
    pub day: NaiveDate,
    pub feed: String,
    /// The reader application's family (`Miniflux`, `other`), or [`ALL_READERS`].
    pub family: String,
    /// [`Sketch::to_bytes`].
    pub sketch: Vec<u8>,
}

/// Subscriber claims kept per feed-day.
pub const MAX_CLAIMS: usize = 32;
/// Of those, from one network.
pub const MAX_CLAIMS_PER_NETWORK: usize = 2;

/// An aggregator's subscriber claim for a feed, from one client network, as last seen that day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub day: NaiveDate,
    pub feed: String,
    /// The aggregator's name (`Feedly`).
    pub aggregator: String,
    /// The client's network, never its address (`203.0.113.0/24`, `2001:db8:1::/48`).
    pub network: String,
    /// The count reported at `last_seen`, capped ([`crate::readership::claims::MAX_CLAIM`]).
    pub subscribers: u64,
    /// Unix seconds of the first and last flush that carried the claim.
    pub first_seen: i64,
    pub last_seen: i64,
    /// [`crate::readership::verify::Verdict`] code: a better-informed verdict replaces a weaker.
    pub verdict: i64,
}

impl Claim {
    /// The same claim seen again (by another flush or replica): first and last sightings widen,
    /// the later count wins, the better verdict stays.
    pub fn absorb(&mut self, other: &Claim) {
        if (other.last_seen, other.subscribers) >= (self.last_seen, self.subscribers) {
            self.subscribers = other.subscribers;
        }
        self.first_seen = self.first_seen.min(other.first_seen);
        self.last_seen = self.last_seen.max(other.last_seen);
        self.verdict = self.verdict.max(other.verdict);
    }
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

/// Impolite User-Agents kept per feed-day, besides [`OTHER_AGENTS`].
pub const MAX_IMPOLITE: usize = 16;
/// The row the rest are folded into.
pub const OTHER_AGENTS: &str = "(other User-Agents)";

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

/// Impolite fetches of one feed and User-Agent summed over a range of days.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImpoliteSum {
    pub feed: String,
    pub user_agent: String,
    pub unconditional: u64,
    pub too_soon: u64,
}

/// What one flush adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadershipBatch {
    pub totals: Vec<DayTotals>,
    pub sketches: Vec<ReaderSketch>,
    pub claims: Vec<Claim>,
    pub partners: Vec<PartnerPolls>,
    pub impolite: Vec<Impolite>,
}

impl ReadershipBatch {
    pub fn is_empty(&self) -> bool {
        self.totals.is_empty()
            && self.sketches.is_empty()
            && self.claims.is_empty()
            && self.partners.is_empty()
            && self.impolite.is_empty()
    }

    /// Every feed-day the flush touches with its poll totals (zero where it carries none), in
    /// (day, feed) order: the order in which a backend locks them.
    pub fn feed_days(&self) -> Vec<DayTotals> {
        let zero = |day: NaiveDate, feed: &str| DayTotals {
            day,
            feed: feed.to_string(),
            polls: 0,
            not_modified: 0,
            bytes: 0,
        };
        let touched = self
            .sketches
            .iter()
            .map(|s| (s.day, s.feed.as_str()))
            .chain(self.claims.iter().map(|c| (c.day, c.feed.as_str())))
            .chain(self.partners.iter().map(|p| (p.day, p.feed.as_str())))
            .chain(self.impolite.iter().map(|i| (i.day, i.feed.as_str())));
        let mut all: BTreeMap<(NaiveDate, &str), DayTotals> = BTreeMap::new();
        for (day, feed) in touched {
            all.entry((day, feed)).or_insert_with(|| zero(day, feed));
        }
        for t in &self.totals {
            let e = all
                .entry((t.day, &t.feed))
                .or_insert_with(|| zero(t.day, &t.feed));
            e.polls = e.polls.saturating_add(t.polls);
            e.not_modified = e.not_modified.saturating_add(t.not_modified);
            e.bytes = e.bytes.saturating_add(t.bytes);
        }
        all.into_values().collect()
    }
}

/// What a write found stored for the feed-days of its batch.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    pub sketches: Vec<ReaderSketch>,
    pub claims: Vec<Claim>,
    /// (day, feed, User-Agent) of the stored impolite rows.
    pub impolite: Vec<(NaiveDate, String, String)>,
}

/// What a feed-day lost to its bounds in one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overflow {
    /// Readers (estimated) whose family was folded into `other`.
    pub readers_folded: u64,
    /// Claims not kept: the feed-day or the network had its share.
    pub claims_dropped: u64,
}

/// The rows a write stores: sketches and claims as whole new values, impolite counts as
/// increments, overflows as increments of the day totals row.
#[derive(Debug, Clone, Default)]
pub struct WritePlan {
    pub sketches: Vec<ReaderSketch>,
    pub claims: Vec<Claim>,
    pub impolite: Vec<Impolite>,
    pub overflow: Vec<(NaiveDate, String, Overflow)>,
}

/// Combines a flush with what is stored, within the bounds per feed-day.
pub fn plan(batch: &ReadershipBatch, existing: Existing) -> WritePlan {
    type Key = (NaiveDate, String);
    let mut overflow: BTreeMap<Key, Overflow> = BTreeMap::new();

    // Sketches: the stored blob per family, the family set per feed-day.
    let mut blobs: BTreeMap<(NaiveDate, String, String), Vec<u8>> = BTreeMap::new();
    let mut families: HashMap<Key, BTreeSet<String>> = HashMap::new();
    for s in existing.sketches {
        if s.family != ALL_READERS {
            families
                .entry((s.day, s.feed.clone()))
                .or_default()
                .insert(s.family.clone());
        }
        blobs.insert((s.day, s.feed, s.family), s.sketch);
    }
    let mut changed = BTreeSet::new();
    for s in &batch.sketches {
        let key = (s.day, s.feed.clone());
        let set = families.entry(key.clone()).or_default();
        // A family keeps its own sketch when it is one of the two always kept, already has one,
        // or there is still room for it; past that its readers fold into "other".
        let family = if s.family == ALL_READERS
            || s.family == OTHER_FAMILY
            || set.contains(&s.family)
            || set.iter().filter(|f| *f != OTHER_FAMILY).count() < MAX_FAMILIES - 1
        {
            s.family.clone()
        } else {
            let folded = Sketch::from_bytes(&s.sketch).map_or(0, |k| k.estimate());
            let o = overflow.entry(key.clone()).or_default();
            o.readers_folded = o.readers_folded.saturating_add(folded);
            OTHER_FAMILY.to_string()
        };
        if family != ALL_READERS {
            set.insert(family.clone());
        }
        let k = (s.day, s.feed.clone(), family);
        let Ok(merged) = sketch::merge_blobs(blobs.get(&k).map(Vec::as_slice), &s.sketch) else {
            // A flush's own sketch always parses; a bad one is skipped, not stored.
            continue;
        };
        blobs.insert(k.clone(), merged);
        changed.insert(k);
    }
    let sketches = changed
        .into_iter()
        .map(|k| {
            let sketch = blobs.remove(&k).expect("changed blobs are present");
            ReaderSketch {
                day: k.0,
                feed: k.1,
                family: k.2,
                sketch,
            }
        })
        .collect();

    // Claims: the same claim absorbs the new sighting; a new one needs room.
    let mut claims: BTreeMap<(NaiveDate, String, String, String), (Claim, bool)> = BTreeMap::new();
    let mut per_day: HashMap<Key, usize> = HashMap::new();
    let mut per_network: HashMap<(NaiveDate, String, String), usize> = HashMap::new();
    for c in existing.claims {
        *per_day.entry((c.day, c.feed.clone())).or_default() += 1;
        *per_network
            .entry((c.day, c.feed.clone(), c.network.clone()))
            .or_default() += 1;
        claims.insert(
            (
                c.day,
                c.feed.clone(),
                c.aggregator.clone(),
                c.network.clone(),
            ),
            (c, false),
        );
    }
    for c in &batch.claims {
        let key = (
            c.day,
            c.feed.clone(),
            c.aggregator.clone(),
            c.network.clone(),
        );
        if let Some((stored, changed)) = claims.get_mut(&key) {
            stored.absorb(c);
            *changed = true;
            continue;
        }
        let day_n = per_day.entry((c.day, c.feed.clone())).or_default();
        let net_n = per_network
            .entry((c.day, c.feed.clone(), c.network.clone()))
            .or_default();
        if *day_n >= MAX_CLAIMS || *net_n >= MAX_CLAIMS_PER_NETWORK {
            let o = overflow.entry((c.day, c.feed.clone())).or_default();
            o.claims_dropped = o.claims_dropped.saturating_add(1);
            continue;
        }
        *day_n += 1;
        *net_n += 1;
        claims.insert(key, (c.clone(), true));
    }
    let claims = claims
        .into_values()
        .filter(|(_, changed)| *changed)
        .map(|(c, _)| c)
        .collect();

    // Impolite: a known User-Agent adds up; a new one needs room, or joins the fold row.
    let mut agents: HashMap<Key, BTreeSet<String>> = HashMap::new();
    for (day, feed, ua) in existing.impolite {
        agents.entry((day, feed)).or_default().insert(ua);
    }
    let impolite = batch
        .impolite
        .iter()
        .map(|i| {
            let set = agents.entry((i.day, i.feed.clone())).or_default();
            let mut i = i.clone();
            if i.user_agent != OTHER_AGENTS && !set.contains(&i.user_agent) {
                if set.iter().filter(|u| *u != OTHER_AGENTS).count() < MAX_IMPOLITE {
                    set.insert(i.user_agent.clone());
                } else {
                    i.user_agent = OTHER_AGENTS.to_string();
                }
            }
            i
        })
        .collect();

    WritePlan {
        sketches,
        claims,
        impolite,
        overflow: overflow
            .into_iter()
            .filter(|(_, o)| *o != Overflow::default())
            .map(|((d, f), o)| (d, f, o))
            .collect(),
    }
}

/// A day's final subscriber figures for one feed, written once the day is over so that the
/// sketches and claims it was computed from can be pruned.
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
    /// What the feed-day's bounds folded or dropped.
    pub overflow: Overflow,
}

/// One page of the window a figure needs: every row of days `from..=to` for the feeds of the
/// page (consecutive in feed order, so a caller pages on with the last one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowRows {
    pub feeds: Vec<String>,
    pub totals: Vec<StoredTotals>,
    pub sketches: Vec<ReaderSketch>,
    pub claims: Vec<Claim>,
    pub partners: Vec<PartnerPolls>,
}

/// Saturating i64 for a count bound for the store (counts never wrap, never fail a write).
pub fn stored(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// A stored count back (a negative one, which no write makes, reads as 0).
pub fn count(v: i64) -> u64 {
    v.max(0) as u64
}

/// `YYYY-MM-DD`, the form days are stored in (it sorts as dates do).
pub fn day_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

pub fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> NaiveDate {
        parse_day("2026-11-30").unwrap()
    }

    fn sk(family: &str, hashes: std::ops::Range<u64>) -> ReaderSketch {
        let mut s = Sketch::new(if family.is_empty() {
            sketch::ALL
        } else {
            sketch::FAMILY
        });
        for h in hashes {
            s.insert(xxhash_rust::xxh3::xxh3_64(&h.to_le_bytes()));
        }
        ReaderSketch {
            day: d(),
            feed: "/vi/rss.xml".into(),
            family: family.into(),
            sketch: s.to_bytes(),
        }
    }

    fn claim(aggregator: &str, network: &str, n: u64, at: i64) -> Claim {
        Claim {
            day: d(),
            feed: "/vi/rss.xml".into(),
            aggregator: aggregator.into(),
            network: network.into(),
            subscribers: n,
            first_seen: at,
            last_seen: at,
            verdict: 0,
        }
    }

    #[test]
    fn sketches_merge_and_families_are_bounded() {
        let existing = Existing {
            sketches: vec![sk("", 0..10), sk("Miniflux", 0..10)],
            ..Default::default()
        };
        let mut batch = ReadershipBatch {
            sketches: vec![sk("", 5..20), sk("Miniflux", 5..20)],
            ..Default::default()
        };
        for i in 0..10u64 {
            batch
                .sketches
                .push(sk(&format!("Family{i}"), (100 * i)..(100 * i + 3)));
        }
        let p = plan(&batch, existing);
        let est = |f: &str| {
            p.sketches
                .iter()
                .find(|s| s.family == f)
                .map(|s| Sketch::from_bytes(&s.sketch).unwrap().estimate())
        };
        assert_eq!(est(""), Some(20), "stored and new readers, each once");
        assert_eq!(est("Miniflux"), Some(20));
        let families: Vec<&str> = p
            .sketches
            .iter()
            .map(|s| s.family.as_str())
            .filter(|f| !f.is_empty())
            .collect();
        assert_eq!(families.len(), MAX_FAMILIES, "{families:?}");
        assert!(families.contains(&OTHER_FAMILY));
        // Miniflux and six new families had room; the other four (3 readers each) were folded.
        assert_eq!(est(OTHER_FAMILY), Some(12));
        assert_eq!(p.overflow[0].2.readers_folded, 12);
    }

    #[test]
    fn claims_absorb_and_are_bounded_per_network_and_day() {
        let mut stored = claim("Feedly", "203.0.113.0/24", 131, 1_000);
        stored.first_seen = 500;
        let existing = Existing {
            claims: vec![stored],
            ..Default::default()
        };
        let mut batch = ReadershipBatch {
            claims: vec![
                claim("Feedly", "203.0.113.0/24", 140, 4_000),
                claim("Foo1", "198.51.100.0/24", 9, 4_000),
                claim("Foo2", "198.51.100.0/24", 9, 4_000),
                claim("Foo3", "198.51.100.0/24", 9, 4_000),
            ],
            ..Default::default()
        };
        for i in 0..40 {
            batch
                .claims
                .push(claim("Bar", &format!("10.{i}.0.0/24"), 5, 4_000));
        }
        let p = plan(&batch, existing);
        let feedly = p.claims.iter().find(|c| c.aggregator == "Feedly").unwrap();
        assert_eq!(
            (feedly.subscribers, feedly.first_seen, feedly.last_seen),
            (140, 500, 4_000)
        );
        let net = p
            .claims
            .iter()
            .filter(|c| c.network == "198.51.100.0/24")
            .count();
        assert_eq!(net, MAX_CLAIMS_PER_NETWORK);
        assert_eq!(p.claims.len(), MAX_CLAIMS, "Feedly, 2 Foo, 29 Bar");
        assert_eq!(p.overflow[0].2.claims_dropped, 1 + 11);
        // An older sighting never replaces a later count.
        let mut c = claim("Feedly", "n", 140, 4_000);
        c.absorb(&claim("Feedly", "n", 120, 900));
        assert_eq!(
            (c.subscribers, c.first_seen, c.last_seen),
            (140, 900, 4_000)
        );
    }

    #[test]
    fn impolite_agents_are_bounded() {
        let existing = Existing {
            impolite: (0..MAX_IMPOLITE)
                .map(|i| (d(), "/vi/rss.xml".to_string(), format!("ua{i}")))
                .collect(),
            ..Default::default()
        };
        let imp = |ua: &str| Impolite {
            day: d(),
            feed: "/vi/rss.xml".into(),
            user_agent: ua.into(),
            unconditional: 2,
            too_soon: 1,
        };
        let batch = ReadershipBatch {
            impolite: vec![imp("ua3"), imp("new1"), imp("new2")],
            ..Default::default()
        };
        let p = plan(&batch, existing);
        let uas: Vec<&str> = p.impolite.iter().map(|i| i.user_agent.as_str()).collect();
        assert_eq!(uas, ["ua3", OTHER_AGENTS, OTHER_AGENTS]);
    }

    #[test]
    fn every_touched_feed_day_has_totals_in_lock_order() {
        let batch = ReadershipBatch {
            totals: vec![DayTotals {
                day: d(),
                feed: "/vi/rss.xml".into(),
                polls: u64::MAX,
                not_modified: 1,
                bytes: 1,
            }],
            claims: vec![Claim {
                feed: "/en/atom.xml".into(),
                ..claim("Feedly", "n", 1, 1)
            }],
            ..Default::default()
        };
        let days = batch.feed_days();
        let feeds: Vec<&str> = days.iter().map(|t| t.feed.as_str()).collect();
        assert_eq!(feeds, ["/en/atom.xml", "/vi/rss.xml"]);
        assert_eq!(days[0].polls, 0);
        assert_eq!(stored(days[1].polls), i64::MAX, "saturates, never wraps");
    }
}
