//! Subscriber figures, by the rules FeedPress publishes: a feed's subscribers on a day are the
//! aggregators' reported counts (as far as [`super::claims`] believes them), plus the partners
//! polling it, plus the distinct individual readers (address and User-Agent), all over the 7 days
//! ending that day; [`super::push`] adds the built-in hub's push subscribers to the live figures.
//! Browsers and bots never reach the rows these read, so they are never
//! subscribers.
//!
//! Pure functions of stored rows, with no clock inside (the caller says which day it is), so the
//! same rows give the same figures on every replica and in every test. Shaped for bounded memory
//! whatever the range: one feed's figures come from its own window rows ([`feed_on`]), and a day
//! is accumulated feed by feed ([`DayAccumulator`]) keeping sums and only the top
//! [`TOP_FEEDS`] feeds (with the count of those left out), so neither `/api/v1/stats?days=366`
//! nor the gauge ever holds more than a page of rows and the answer's lists.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use super::claims::{self, ClaimFigure};
use crate::sketch::Sketch;
use crate::store::readership::{ALL_READERS, Claim, PartnerPolls, ReaderSketch, StoredTotals};

/// The rolling window, in days, ending on (and including) the day figured.
pub const WINDOW_DAYS: u64 = 7;
/// Feeds listed per day in an answer (the day's sums cover every feed).
pub const TOP_FEEDS: usize = 20;
/// Clients listed per feed.
pub const TOP_CLIENTS: usize = 8;
/// Claims listed in an answer.
pub const TOP_CLAIMS: usize = 50;
/// Clients summed across feeds on the last day (the rest are summed as "others").
pub const MAX_DAY_CLIENTS: usize = 256;

/// One client's share of a feed's subscribers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientFigure {
    /// `Feedly`, a partner's name, or a reader application's family.
    pub client: String,
    /// `aggregator`, `partner` or `reader`.
    pub kind: String,
    pub subscribers: u64,
}

/// One feed on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedFigures {
    pub feed: String,
    pub subscribers: u64,
    pub polls: u64,
    pub not_modified: u64,
    pub bytes: u64,
    /// The largest [`TOP_CLIENTS`] clients, largest first.
    pub clients: Vec<ClientFigure>,
    pub clients_left_out: usize,
}

/// One day: sums over every feed, and the top feeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    pub date: NaiveDate,
    /// Every feed's subscribers summed (saturating).
    pub subscribers: u64,
    pub polls: u64,
    pub not_modified: u64,
    pub bytes: u64,
    /// Feeds with figures that day.
    pub feed_count: u64,
    /// The [`TOP_FEEDS`] feeds with most subscribers (then polls), largest first.
    pub feeds: Vec<FeedFigures>,
    pub feeds_left_out: u64,
    /// What the per-feed-day bounds folded (readers into `other`) or dropped (claims).
    pub readers_folded: u64,
    pub claims_dropped: u64,
}

/// One feed's rows in a window page (borrowed from the page).
#[derive(Debug, Default)]
pub struct FeedRows<'a> {
    pub sketches: Vec<&'a ReaderSketch>,
    pub claims: Vec<&'a Claim>,
    pub partners: Vec<&'a PartnerPolls>,
    pub totals: Vec<&'a StoredTotals>,
}

/// A feed's live figures for the window ending on a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub subscribers: u64,
    /// Distinct readers (estimated).
    pub readers: u64,
    /// Every client, largest first.
    pub clients: Vec<ClientFigure>,
    /// Every claim of the window, largest first.
    pub claims: Vec<ClaimFigure>,
}

/// The window ending on `day`.
pub fn window(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    (day - Days::new(WINDOW_DAYS - 1), day)
}

pub fn by_size(a: &ClientFigure, b: &ClientFigure) -> std::cmp::Ordering {
    b.subscribers
        .cmp(&a.subscribers)
        .then_with(|| a.client.cmp(&b.client))
        .then_with(|| a.kind.cmp(&b.kind))
}

/// `total` shared out in proportion to `parts` (largest remainder), so shares estimated at a
/// lower precision add up to the headline estimate exactly.
fn apportion(total: u64, parts: &[u64]) -> Vec<u64> {
    let sum: u128 = parts.iter().map(|p| u128::from(*p)).sum();
    if sum == 0 {
        return vec![0; parts.len()];
    }
    let exact: Vec<(u64, u128)> = parts
        .iter()
        .map(|p| {
            let x = u128::from(total) * u128::from(*p);
            ((x / sum) as u64, x % sum)
        })
        .collect();
    let mut shares: Vec<u64> = exact.iter().map(|e| e.0).collect();
    let mut left = total - shares.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1).then(a.cmp(b)));
    for i in order {
        if left == 0 {
            break;
        }
        shares[i] += 1;
        left -= 1;
    }
    shares
}

/// One feed's figures for the window ending on `day`, from its rows (which may hold other days;
/// only the window's are read). `partner_name` turns a partner id into its display name.
pub fn feed_on(
    day: NaiveDate,
    feed: &str,
    rows: &FeedRows<'_>,
    partner_name: &dyn Fn(&str) -> String,
) -> Live {
    let (from, to) = window(day);
    let inside = |d: NaiveDate| from <= d && d <= to;
    let mut clients = Vec::new();

    // Readers: the window's daily sketches merged, all readers and per family.
    let mut all: Option<Sketch> = None;
    let mut families: BTreeMap<&str, Sketch> = BTreeMap::new();
    for s in rows.sketches.iter().filter(|s| inside(s.day)) {
        let Ok(sketch) = Sketch::from_bytes(&s.sketch) else {
            continue;
        };
        let slot = if s.family == ALL_READERS {
            &mut all
        } else {
            match families.get_mut(s.family.as_str()) {
                Some(f) => {
                    let _ = f.merge(&sketch);
                    continue;
                }
                None => {
                    families.insert(&s.family, sketch);
                    continue;
                }
            }
        };
        match slot {
            Some(a) => {
                let _ = a.merge(&sketch);
            }
            None => *slot = Some(sketch),
        }
    }
    let readers = all.as_ref().map_or(0, Sketch::estimate);
    let names: Vec<&str> = families.keys().copied().collect();
    let parts: Vec<u64> = families.values().map(Sketch::estimate).collect();
    for (name, n) in names.iter().zip(apportion(readers, &parts)) {
        if n > 0 {
            clients.push(ClientFigure {
                client: name.to_string(),
                kind: "reader".into(),
                subscribers: n,
            });
        }
    }

    // Partners: one each.
    let partners: BTreeSet<&str> = rows
        .partners
        .iter()
        .filter(|p| inside(p.day))
        .map(|p| p.partner.as_str())
        .collect();
    for id in &partners {
        clients.push(ClientFigure {
            client: partner_name(id),
            kind: "partner".into(),
            subscribers: 1,
        });
    }

    // Aggregators: as believed.
    let window_claims: Vec<Claim> = rows
        .claims
        .iter()
        .filter(|c| inside(c.day))
        .map(|c| (*c).clone())
        .collect();
    let (aggregators, claims) = claims::combine(feed, &window_claims);
    let mut subscribers = readers.saturating_add(partners.len() as u64);
    for (name, n) in aggregators {
        subscribers = subscribers.saturating_add(n);
        clients.push(ClientFigure {
            client: name,
            kind: "aggregator".into(),
            subscribers: n,
        });
    }
    clients.sort_by(by_size);
    Live {
        subscribers,
        readers,
        clients,
        claims,
    }
}

/// `clients` as listed: the top [`TOP_CLIENTS`] and how many were left out.
pub fn listed(mut clients: Vec<ClientFigure>) -> (Vec<ClientFigure>, usize) {
    clients.sort_by(by_size);
    let left_out = clients.len().saturating_sub(TOP_CLIENTS);
    clients.truncate(TOP_CLIENTS);
    (clients, left_out)
}

/// The figures of a feed on a day read back from its closed row.
pub fn closed_feed(t: &StoredTotals) -> Option<FeedFigures> {
    let (subscribers, json) = t.closed.as_ref()?;
    let clients: Vec<ClientFigure> = serde_json::from_str(json).unwrap_or_default();
    let (clients, clients_left_out) = listed(clients);
    Some(FeedFigures {
        feed: t.totals.feed.clone(),
        subscribers: *subscribers,
        polls: t.totals.polls,
        not_modified: t.totals.not_modified,
        bytes: t.totals.bytes,
        clients,
        clients_left_out,
    })
}

fn rank(a: &FeedFigures, b: &FeedFigures) -> std::cmp::Ordering {
    b.subscribers
        .cmp(&a.subscribers)
        .then(b.polls.cmp(&a.polls))
        .then_with(|| a.feed.cmp(&b.feed))
}

/// One day's figures accumulated feed by feed, in bounded memory.
#[derive(Debug, Clone)]
pub struct DayAccumulator {
    day: DayFigures,
    /// Clients summed across feeds (kept only when asked for: the last day of a range).
    clients: Option<BTreeMap<(String, String), u64>>,
}

impl DayAccumulator {
    pub fn new(date: NaiveDate, with_clients: bool) -> DayAccumulator {
        DayAccumulator {
            day: DayFigures {
                date,
                subscribers: 0,
                polls: 0,
                not_modified: 0,
                bytes: 0,
                feed_count: 0,
                feeds: Vec::new(),
                feeds_left_out: 0,
                readers_folded: 0,
                claims_dropped: 0,
            },
            clients: with_clients.then(BTreeMap::new),
        }
    }

    pub fn date(&self) -> NaiveDate {
        self.day.date
    }

    /// What a feed-day's bounds folded or dropped.
    pub fn note_overflow(&mut self, readers_folded: u64, claims_dropped: u64) {
        let d = &mut self.day;
        d.readers_folded = d.readers_folded.saturating_add(readers_folded);
        d.claims_dropped = d.claims_dropped.saturating_add(claims_dropped);
    }

    /// Adds one feed, with all its clients (only the top ones are kept in the list).
    pub fn add(&mut self, feed: FeedFigures, all_clients: &[ClientFigure]) {
        let d = &mut self.day;
        d.subscribers = d.subscribers.saturating_add(feed.subscribers);
        d.polls = d.polls.saturating_add(feed.polls);
        d.not_modified = d.not_modified.saturating_add(feed.not_modified);
        d.bytes = d.bytes.saturating_add(feed.bytes);
        d.feed_count += 1;
        if let Some(by) = &mut self.clients {
            for c in all_clients {
                let key = (c.client.clone(), c.kind.clone());
                let key = if by.len() < MAX_DAY_CLIENTS || by.contains_key(&key) {
                    key
                } else {
                    ("others".to_string(), c.kind.clone())
                };
                let e = by.entry(key).or_default();
                *e = e.saturating_add(c.subscribers);
            }
        }
        let at = d
            .feeds
            .binary_search_by(|f| rank(f, &feed))
            .unwrap_or_else(|i| i);
        if at < TOP_FEEDS {
            d.feeds.insert(at, feed);
            if d.feeds.len() > TOP_FEEDS {
                d.feeds.pop();
                d.feeds_left_out += 1;
            }
        } else {
            d.feeds_left_out += 1;
        }
    }

    /// The day, and (if kept) its clients summed across feeds, largest first.
    pub fn finish(self) -> (DayFigures, Vec<ClientFigure>) {
        let mut clients: Vec<ClientFigure> = self
            .clients
            .unwrap_or_default()
            .into_iter()
            .map(|((client, kind), subscribers)| ClientFigure {
                client,
                kind,
                subscribers,
            })
            .collect();
        clients.sort_by(by_size);
        (self.day, clients)
    }
}

/// The largest `limit` claims, largest first, and how many were left out.
#[derive(Debug, Default)]
pub struct TopClaims {
    pub list: Vec<ClaimFigure>,
    pub left_out: u64,
}

impl TopClaims {
    pub fn add(&mut self, c: ClaimFigure) {
        let key = |c: &ClaimFigure| {
            (
                std::cmp::Reverse(c.subscribers),
                c.feed.clone(),
                c.aggregator.clone(),
                c.network.clone(),
            )
        };
        let k = key(&c);
        let at = self
            .list
            .binary_search_by(|x| key(x).cmp(&k))
            .unwrap_or_else(|i| i);
        if at < TOP_CLAIMS {
            self.list.insert(at, c);
            if self.list.len() > TOP_CLAIMS {
                self.list.pop();
                self.left_out += 1;
            }
        } else {
            self.left_out += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sketch;
    use crate::store::readership::*;

    fn d(s: &str) -> NaiveDate {
        parse_day(s).unwrap()
    }

    fn name(id: &str) -> String {
        format!("Partner {id}")
    }

    const FEED: &str = "/vi/rss.xml";

    fn readers(day: &str, family: &str, ids: &[u64]) -> [ReaderSketch; 2] {
        let mk = |p: u8| {
            let mut s = Sketch::new(p);
            for i in ids {
                s.insert(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()));
            }
            s.to_bytes()
        };
        [
            ReaderSketch {
                day: d(day),
                feed: FEED.into(),
                family: ALL_READERS.into(),
                sketch: mk(sketch::ALL),
            },
            ReaderSketch {
                day: d(day),
                feed: FEED.into(),
                family: family.into(),
                sketch: mk(sketch::FAMILY),
            },
        ]
    }

    fn claim(day: &str, aggregator: &str, n: u64, first: i64, last: i64) -> Claim {
        Claim {
            day: d(day),
            feed: FEED.into(),
            aggregator: aggregator.into(),
            network: format!("{aggregator}-net"),
            subscribers: n,
            first_seen: first,
            last_seen: last,
            verdict: 0,
        }
    }

    struct Fixture {
        sketches: Vec<ReaderSketch>,
        claims: Vec<Claim>,
        partners: Vec<PartnerPolls>,
    }

    fn fixture() -> Fixture {
        let h = claims::CONFIRM_AFTER;
        let mut sketches = Vec::new();
        sketches.extend(readers("2026-11-01", "Miniflux", &[1]));
        sketches.extend(readers("2026-11-02", "Miniflux", &[1]));
        sketches.extend(readers("2026-11-02", "other", &[2]));
        sketches.extend(readers("2026-11-05", "Miniflux", &[3]));
        Fixture {
            sketches,
            claims: vec![
                claim("2026-11-01", "Feedly", 100, 0, h),
                claim("2026-11-03", "Feedly", 131, 2 * h, 3 * h),
                claim("2026-11-02", "Feedbin", 7, 0, h),
                claim("2026-11-02", "Once", 5000, 0, 0),
            ],
            partners: vec![PartnerPolls {
                day: d("2026-11-02"),
                feed: FEED.into(),
                partner: "baomoi".into(),
                polls: 40,
            }],
        }
    }

    fn on(f: &Fixture, day: &str) -> Live {
        let rows = FeedRows {
            sketches: f.sketches.iter().collect(),
            claims: f.claims.iter().collect(),
            partners: f.partners.iter().collect(),
            totals: vec![],
        };
        feed_on(d(day), FEED, &rows, &name)
    }

    #[test]
    fn the_feedpress_sum_over_a_rolling_week() {
        let f = fixture();
        // Day 3: Feedly's latest count (131, not 100 + 131), Feedbin, the partner once, two
        // distinct readers (reader 1 seen twice); the one-shot claim is not believed.
        let live = on(&f, "2026-11-03");
        assert_eq!(live.subscribers, 131 + 7 + 1 + 2);
        let get = |c: &str| {
            live.clients
                .iter()
                .find(|f| f.client == c)
                .map(|f| f.subscribers)
        };
        assert_eq!(get("Feedly"), Some(131));
        assert_eq!(get("Feedbin"), Some(7));
        assert_eq!(get("Partner baomoi"), Some(1));
        assert_eq!(get("Miniflux"), Some(1));
        assert_eq!(get("other"), Some(1));
        assert_eq!(get("Once"), None);
        assert_eq!(live.clients[0].client, "Feedly", "largest first");
        assert!(
            live.claims
                .iter()
                .any(|c| c.aggregator == "Once" && !c.counted)
        );
        // Day 7 is the last whose window reaches back to day 1.
        assert_eq!(on(&f, "2026-11-07").subscribers, 131 + 7 + 1 + 3);
        // Day 8: day 1 has left; reader 1 stays (seen on day 2), Feedly's day-3 claim stays.
        assert_eq!(on(&f, "2026-11-08").subscribers, 131 + 7 + 1 + 3);
        // Day 9: day 2 has left: Feedbin, the partner and readers 1 and 2 are gone.
        assert_eq!(on(&f, "2026-11-09").subscribers, 131 + 1);
        assert_eq!(on(&f, "2026-11-11").subscribers, 1);
        assert_eq!(
            on(&f, "2026-11-12"),
            Live {
                subscribers: 0,
                readers: 0,
                clients: vec![],
                claims: vec![],
            }
        );
    }

    #[test]
    fn family_shares_add_up_to_the_headline() {
        assert_eq!(apportion(10, &[1, 1, 1]), [4, 3, 3]);
        assert_eq!(apportion(100, &[90, 12]), [88, 12]);
        assert_eq!(apportion(5, &[0, 0]), [0, 0]);
        assert_eq!(
            apportion(u64::MAX, &[u64::MAX, u64::MAX])
                .iter()
                .fold(0u64, |a, b| a.saturating_add(*b)),
            u64::MAX
        );
    }

    fn feed(name: &str, subscribers: u64, polls: u64) -> FeedFigures {
        FeedFigures {
            feed: name.into(),
            subscribers,
            polls,
            not_modified: 0,
            bytes: polls,
            clients: vec![],
            clients_left_out: 0,
        }
    }

    #[test]
    fn a_day_keeps_its_sums_and_only_the_top_feeds() {
        let mut acc = DayAccumulator::new(d("2026-11-30"), true);
        for i in 0..100u64 {
            let c = ClientFigure {
                client: format!("c{}", i % 3),
                kind: "reader".into(),
                subscribers: 1,
            };
            acc.add(feed(&format!("/vi/tag/t{i}/rss.xml"), i, 2), &[c]);
        }
        acc.add(feed("/vi/rss.xml", u64::MAX, 1), &[]);
        let (day, clients) = acc.finish();
        assert_eq!(day.feed_count, 101);
        assert_eq!(day.subscribers, u64::MAX, "sums saturate");
        assert_eq!(day.polls, 201);
        assert_eq!(day.feeds.len(), TOP_FEEDS);
        assert_eq!(day.feeds_left_out, 101 - TOP_FEEDS as u64);
        assert_eq!(day.feeds[0].feed, "/vi/rss.xml");
        assert_eq!(day.feeds[1].subscribers, 99);
        assert_eq!(clients.iter().map(|c| c.subscribers).sum::<u64>(), 100);
    }

    #[test]
    fn closed_rows_are_read_back_within_the_bounds() {
        let clients: Vec<ClientFigure> = (0..20)
            .map(|i| ClientFigure {
                client: format!("c{i}"),
                kind: "aggregator".into(),
                subscribers: i,
            })
            .collect();
        let t = StoredTotals {
            totals: DayTotals {
                day: d("2026-11-03"),
                feed: FEED.into(),
                polls: 500,
                not_modified: 450,
                bytes: 9000,
            },
            closed: Some((150, serde_json::to_string(&clients).unwrap())),
            overflow: Overflow::default(),
        };
        let f = closed_feed(&t).unwrap();
        assert_eq!((f.subscribers, f.polls), (150, 500));
        assert_eq!(f.clients.len(), TOP_CLIENTS);
        assert_eq!(f.clients[0].client, "c19");
        assert_eq!(f.clients_left_out, 20 - TOP_CLIENTS);
    }
}
