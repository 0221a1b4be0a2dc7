//! Subscriber figures from stored daily rows, by the rules FeedPress publishes: a feed's
//! subscribers on a day are the aggregators' last reported counts, plus the partners polling it,
//! plus the distinct individual readers (address and User-Agent), all over the 7 days ending
//! that day. Browsers and bots never reach the rows these read, so they are never subscribers.
//!
//! Pure functions of [`ReadershipRows`]: the same rows give the same figures on every replica and
//! in every test, with no clock inside (the caller says which day is "today").

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::store::readership::{ClosedDay, ReadershipRows};

/// The rolling window, in days, ending on (and including) the day figured.
pub const WINDOW_DAYS: u64 = 7;

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
    pub clients: Vec<ClientFigure>,
}

/// Every feed on one day, most subscribers first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    pub date: NaiveDate,
    pub feeds: Vec<FeedFigures>,
}

/// A client fetching a feed unconditionally sooner than its max-age, summed over a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpoliteFigure {
    pub feed: String,
    pub user_agent: String,
    pub unconditional: u64,
    pub too_soon: u64,
}

fn window(day: NaiveDate) -> (NaiveDate, NaiveDate) {
    (day - Days::new(WINDOW_DAYS - 1), day)
}

/// Subscribers of every feed with any data in the window ending on `day`, with their breakdown.
/// `partner_name` turns a partner id into its display name.
pub fn subscribers_on(
    day: NaiveDate,
    rows: &ReadershipRows,
    partner_name: &dyn Fn(&str) -> String,
) -> BTreeMap<String, (u64, Vec<ClientFigure>)> {
    let (from, to) = window(day);
    let inside = |d: NaiveDate| from <= d && d <= to;

    // Aggregators: the latest observation per (feed, aggregator, its feed id), then summed over
    // the aggregator's feed ids.
    let mut latest: HashMap<(&str, &str, &str), (i64, u64)> = HashMap::new();
    for a in rows.aggregators.iter().filter(|a| inside(a.day)) {
        let k = (a.feed.as_str(), a.client.as_str(), a.feed_id.as_str());
        let e = latest.entry(k).or_insert((i64::MIN, 0));
        if a.observed_at >= e.0 {
            *e = (a.observed_at, a.subscribers);
        }
    }
    let mut clients: BTreeMap<&str, BTreeMap<(String, &'static str), u64>> = BTreeMap::new();
    for ((feed, client, _), (_, n)) in latest {
        *clients
            .entry(feed)
            .or_default()
            .entry((client.to_string(), "aggregator"))
            .or_default() += n;
    }
    // Partners: one each.
    let partners: BTreeSet<(&str, &str)> = rows
        .partners
        .iter()
        .filter(|p| inside(p.day))
        .map(|p| (p.feed.as_str(), p.partner.as_str()))
        .collect();
    for (feed, id) in partners {
        *clients
            .entry(feed)
            .or_default()
            .entry((partner_name(id), "partner"))
            .or_default() += 1;
    }
    // Readers: distinct hashes, grouped by application.
    let readers: BTreeMap<(&str, i64), &str> = rows
        .readers
        .iter()
        .filter(|r| inside(r.day))
        .map(|r| ((r.feed.as_str(), r.reader), r.client.as_str()))
        .collect();
    for ((feed, _), client) in readers {
        *clients
            .entry(feed)
            .or_default()
            .entry((client.to_string(), "reader"))
            .or_default() += 1;
    }
    clients
        .into_iter()
        .map(|(feed, by)| {
            let mut list: Vec<ClientFigure> = by
                .into_iter()
                .map(|((client, kind), subscribers)| ClientFigure {
                    client,
                    kind: kind.to_string(),
                    subscribers,
                })
                .collect();
            list.sort_by(|a, b| {
                b.subscribers
                    .cmp(&a.subscribers)
                    .then_with(|| a.client.cmp(&b.client))
            });
            let total = list.iter().map(|c| c.subscribers).sum();
            (feed.to_string(), (total, list))
        })
        .collect()
}

/// The figures of every day `from..=to`. A closed day is read as stored; an open one (today, or
/// a day not closed yet) is computed from the window's rows, which must be in `rows` (that is,
/// `rows` covers `from - 6 ..= to`).
pub fn days(
    from: NaiveDate,
    to: NaiveDate,
    rows: &ReadershipRows,
    partner_name: &dyn Fn(&str) -> String,
) -> Vec<DayFigures> {
    let mut out = Vec::new();
    let mut day = from;
    while day <= to {
        let stored: Vec<_> = rows.totals.iter().filter(|t| t.totals.day == day).collect();
        let all_closed = !stored.is_empty() && stored.iter().all(|t| t.closed.is_some());
        let live = if all_closed {
            BTreeMap::new()
        } else {
            subscribers_on(day, rows, partner_name)
        };
        let mut feeds: BTreeMap<String, FeedFigures> = BTreeMap::new();
        for t in &stored {
            let (subscribers, clients) = match &t.closed {
                Some((n, json)) => (*n, serde_json::from_str(json).unwrap_or_default()),
                None => live.get(&t.totals.feed).cloned().unwrap_or_default(),
            };
            feeds.insert(
                t.totals.feed.clone(),
                FeedFigures {
                    feed: t.totals.feed.clone(),
                    subscribers,
                    polls: t.totals.polls,
                    not_modified: t.totals.not_modified,
                    bytes: t.totals.bytes,
                    clients,
                },
            );
        }
        // Feeds nobody polled that day still have the subscribers of the window.
        for (feed, (subscribers, clients)) in live {
            feeds.entry(feed.clone()).or_insert(FeedFigures {
                feed,
                subscribers,
                polls: 0,
                not_modified: 0,
                bytes: 0,
                clients,
            });
        }
        let mut feeds: Vec<FeedFigures> = feeds.into_values().collect();
        feeds.sort_by(|a, b| {
            b.subscribers
                .cmp(&a.subscribers)
                .then(b.polls.cmp(&a.polls))
                .then_with(|| a.feed.cmp(&b.feed))
        });
        out.push(DayFigures { date: day, feeds });
        day = day + Days::new(1);
    }
    out
}

/// The final figures of `day` for every feed with data in its window (`rows` covers it).
pub fn closing(
    day: NaiveDate,
    rows: &ReadershipRows,
    partner_name: &dyn Fn(&str) -> String,
) -> Vec<ClosedDay> {
    let mut feeds = subscribers_on(day, rows, partner_name);
    for t in rows.totals.iter().filter(|t| t.totals.day == day) {
        feeds.entry(t.totals.feed.clone()).or_default();
    }
    feeds
        .into_iter()
        .map(|(feed, (subscribers, clients))| ClosedDay {
            day,
            feed,
            subscribers,
            clients: serde_json::to_string(&clients).expect("figures serialise"),
        })
        .collect()
}

/// Impolite pollers of `from..=to`, summed per feed and User-Agent, worst first, at most `limit`.
pub fn impolite(
    rows: &ReadershipRows,
    from: NaiveDate,
    to: NaiveDate,
    limit: usize,
) -> Vec<ImpoliteFigure> {
    let mut sum: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for i in rows
        .impolite
        .iter()
        .filter(|i| from <= i.day && i.day <= to)
    {
        let e = sum
            .entry((i.feed.as_str(), i.user_agent.as_str()))
            .or_default();
        e.0 += i.unconditional;
        e.1 += i.too_soon;
    }
    let mut list: Vec<ImpoliteFigure> = sum
        .into_iter()
        .map(|((feed, ua), (unconditional, too_soon))| ImpoliteFigure {
            feed: feed.to_string(),
            user_agent: ua.to_string(),
            unconditional,
            too_soon,
        })
        .collect();
    list.sort_by(|a, b| {
        b.too_soon
            .cmp(&a.too_soon)
            .then_with(|| a.feed.cmp(&b.feed))
    });
    list.truncate(limit);
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::readership::*;

    fn d(s: &str) -> NaiveDate {
        parse_day(s).unwrap()
    }

    fn name(id: &str) -> String {
        format!("Partner {id}")
    }

    fn rows() -> ReadershipRows {
        let feed = "/vi/rss.xml".to_string();
        let agg = |day: &str, client: &str, id: &str, n: u64, at: i64| AggregatorCount {
            day: d(day),
            feed: feed.clone(),
            client: client.into(),
            feed_id: id.into(),
            subscribers: n,
            observed_at: at,
        };
        let reader = |day: &str, r: i64, client: &str| ReaderSeen {
            day: d(day),
            feed: feed.clone(),
            reader: r,
            client: client.into(),
        };
        ReadershipRows {
            totals: vec![],
            aggregators: vec![
                agg("2026-11-01", "Feedly", "", 100, 1),
                agg("2026-11-03", "Feedly", "", 131, 3),
                agg("2026-11-02", "Feedbin", "1", 7, 2),
                agg("2026-11-02", "Feedbin", "2", 3, 2),
            ],
            partners: vec![PartnerPolls {
                day: d("2026-11-02"),
                feed: feed.clone(),
                partner: "baomoi".into(),
                polls: 40,
            }],
            readers: vec![
                reader("2026-11-01", 1, "Miniflux"),
                reader("2026-11-02", 1, "Miniflux"),
                reader("2026-11-02", 2, "other"),
                reader("2026-11-05", 3, "Miniflux"),
            ],
            impolite: vec![],
        }
    }

    #[test]
    fn the_feedpress_sum_over_a_rolling_week() {
        let r = rows();
        let on = |day: &str| subscribers_on(d(day), &r, &name);
        // Day 3: Feedly's latest count (131, not 100 + 131), Feedbin's two feed ids (7 + 3), the
        // partner once, two distinct readers (reader 1 seen twice).
        let (total, clients) = on("2026-11-03").remove("/vi/rss.xml").unwrap();
        assert_eq!(total, 131 + 10 + 1 + 2);
        let get = |c: &str| clients.iter().find(|f| f.client == c).unwrap().subscribers;
        assert_eq!(get("Feedly"), 131);
        assert_eq!(get("Feedbin"), 10);
        assert_eq!(get("Partner baomoi"), 1);
        assert_eq!(get("Miniflux"), 1);
        assert_eq!(get("other"), 1);
        assert_eq!(clients[0].client, "Feedly", "largest first");
        // Day 7 is the last whose window reaches back to day 1.
        assert_eq!(on("2026-11-07")["/vi/rss.xml"].0, 131 + 10 + 1 + 3);
        // Day 8: day 1 has left the window; reader 1 stays (seen on day 2), Feedly's day-3 count stays.
        assert_eq!(on("2026-11-08")["/vi/rss.xml"].0, 131 + 10 + 1 + 3);
        // Day 9: day 2 has left: Feedbin, the partner and readers 1 and 2 are gone.
        assert_eq!(on("2026-11-09")["/vi/rss.xml"].0, 131 + 1);
        // Day 12: only reader 3 (day 5) remains; day 12's window starts on day 6.
        assert!(on("2026-11-12").is_empty());
        assert_eq!(on("2026-11-11")["/vi/rss.xml"].0, 1);
        // Before anything happened.
        assert!(on("2026-10-31").is_empty());
    }

    #[test]
    fn closed_days_are_read_back_and_open_ones_computed() {
        let mut r = rows();
        let closed = closing(d("2026-11-03"), &r, &name);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].subscribers, 144);
        r.totals.push(StoredTotals {
            totals: DayTotals {
                day: d("2026-11-03"),
                feed: "/vi/rss.xml".into(),
                polls: 500,
                not_modified: 450,
                bytes: 9000,
            },
            // A stored close wins over what the rows would say now.
            closed: Some((150, closed[0].clients.clone())),
        });
        let out = days(d("2026-11-03"), d("2026-11-04"), &r, &name);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].feeds[0].subscribers, 150);
        assert_eq!(out[0].feeds[0].polls, 500);
        assert_eq!(out[0].feeds[0].clients[0].client, "Feedly");
        // Day 4 has no totals row: its subscribers come from the window, with no polls.
        assert_eq!(out[1].feeds[0].subscribers, 144);
        assert_eq!(out[1].feeds[0].polls, 0);
    }

    #[test]
    fn impolite_pollers_are_summed_and_ranked() {
        let mut r = rows();
        let imp = |day: &str, ua: &str, u: u64, s: u64| Impolite {
            day: d(day),
            feed: "/vi/rss.xml".into(),
            user_agent: ua.into(),
            unconditional: u,
            too_soon: s,
        };
        r.impolite = vec![
            imp("2026-11-01", "curl/8.0", 10, 9),
            imp("2026-11-02", "curl/8.0", 10, 9),
            imp("2026-11-02", "Hammer/1.0", 100, 99),
            imp("2026-10-01", "Old/1.0", 1000, 999),
        ];
        let list = impolite(&r, d("2026-11-01"), d("2026-11-02"), 10);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].user_agent, "Hammer/1.0");
        assert_eq!((list[1].unconditional, list[1].too_soon), (20, 18));
    }
}
