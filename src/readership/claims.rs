//! Subscriber claims: what aggregators say in their User-Agents, and how much of it is believed.
//!
//! `Feedly/1.0 (…; 131 subscribers; )` is a claim anyone can send. Believing every one let a
//! single request put 99,999,999 subscribers on the headline for a week, and `feed-id:1`,
//! `feed-id:2`… add up. So a claim enters the headline figure only by these rules:
//!
//! 1. **Bounded**: a count saturates while it is parsed (never wraps) and is capped at
//!    [`MAX_CLAIM`]; every sum of counts saturates.
//! 2. **One per network**: a claim is keyed by aggregator, feed and the client's network (/24 for
//!    IPv4, /48 for IPv6: [`network_of`]), whatever feed id it names, so `feed-id:N` variations
//!    from one network are one claim, with its latest count. And one network backs at most one
//!    aggregator per feed (the largest of its confirmed claims): a network claiming to be Feedly,
//!    Inoreader and a dozen invented names is still one claim.
//! 3. **Seen twice, an hour apart**: a claim counts once it has been seen on polls at least
//!    [`CONFIRM_AFTER`] apart (by the injected clock), within the 7-day window. A one-shot forgery
//!    never counts; a real aggregator polls again within the hour or two anyway.
//! 4. **Verified where documented**: an aggregator of [`super::verify::RULES`] counts only from
//!    fetchers that pass its documented check; one that fails (refuted) or is not checked yet
//!    (pending) is shown, never counted.
//! 5. **Across networks, the largest**: an aggregator polling from several networks reports the
//!    same audience from each, so its figure is the largest of its counted claims, not their sum.
//!    A feed's aggregator subscribers are then the (saturating) sum over aggregators.
//!
//! Forging a figure therefore costs a network of one's own per aggregator name and an hour, is
//! capped, and shows up: every claim is listed with its network, sightings, verdict and whether it
//! counts, on `/stats` and in the stats JSON, so the newsroom can judge a sudden "Feedly" from an
//! unknown network. Only the network is stored, never the address.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::Serialize;

use super::verify::{self, Verdict};
use crate::store::readership::Claim;

/// The largest count one claim may report; larger ones are taken as this.
pub const MAX_CLAIM: u64 = 1_000_000;
/// Seconds between the first and last sighting of a claim before it counts.
pub const CONFIRM_AFTER: i64 = 3600;

/// The client network a claim is kept under: the address's /24 (IPv4) or /48 (IPv6).
pub fn network_of(addr: IpAddr) -> ipnet::IpNet {
    let addr = addr.to_canonical();
    let prefix = if addr.is_ipv4() { 24 } else { 48 };
    ipnet::IpNet::new(addr, prefix)
        .expect("24 and 48 are valid prefixes")
        .trunc()
}

/// A claim over the window, as shown to the newsroom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimFigure {
    pub feed: String,
    pub aggregator: String,
    pub network: String,
    pub subscribers: u64,
    /// Unix seconds of the first and last sighting in the window.
    pub first_seen: i64,
    pub last_seen: i64,
    /// Seen at least [`CONFIRM_AFTER`] apart.
    pub confirmed: bool,
    /// `unverifiable` (the aggregator documents no check), `pending`, `verified` or `refuted`.
    pub verification: &'static str,
    /// Whether it is the claim the aggregator's figure comes from.
    pub counted: bool,
}

/// One feed's claims over a window, combined by the rules of this module: each aggregator's
/// figure (only those above zero) and every claim with how it was judged, largest first.
pub fn combine(feed: &str, rows: &[Claim]) -> (BTreeMap<String, u64>, Vec<ClaimFigure>) {
    // The same claim on several days (or replicas) is one.
    let mut merged: BTreeMap<(&str, &str), Claim> = BTreeMap::new();
    for c in rows {
        merged
            .entry((c.aggregator.as_str(), c.network.as_str()))
            .and_modify(|m| m.absorb(c))
            .or_insert_with(|| c.clone());
    }
    let mut figures: Vec<ClaimFigure> = merged
        .into_values()
        .map(|c| {
            let verdict = Verdict::from_code(c.verdict);
            ClaimFigure {
                feed: feed.to_string(),
                confirmed: c.last_seen.saturating_sub(c.first_seen) >= CONFIRM_AFTER,
                verification: verdict.as_str(),
                counted: false,
                subscribers: c.subscribers.min(MAX_CLAIM),
                aggregator: c.aggregator,
                network: c.network,
                first_seen: c.first_seen,
                last_seen: c.last_seen,
            }
        })
        .collect();
    let eligible = |f: &ClaimFigure| {
        f.confirmed
            && match verify::rule_for(&f.aggregator) {
                Some(_) => f.verification == Verdict::Verified.as_str(),
                None => f.verification != Verdict::Refuted.as_str(),
            }
    };
    // Largest first, then by name and network, so every replica picks the same claims.
    figures.sort_by(|a, b| {
        b.subscribers
            .cmp(&a.subscribers)
            .then_with(|| a.aggregator.cmp(&b.aggregator))
            .then_with(|| a.network.cmp(&b.network))
    });
    // One aggregator per network: its largest eligible claim; then per aggregator the largest
    // of those, which in this order is the first met.
    let mut network_taken: HashMap<String, ()> = HashMap::new();
    let mut per_aggregator: BTreeMap<String, u64> = BTreeMap::new();
    for f in figures.iter_mut() {
        if !eligible(f) || network_taken.contains_key(&f.network) {
            continue;
        }
        network_taken.insert(f.network.clone(), ());
        if per_aggregator.contains_key(&f.aggregator) {
            continue;
        }
        f.counted = true;
        if f.subscribers > 0 {
            per_aggregator.insert(f.aggregator.clone(), f.subscribers);
        }
    }
    (per_aggregator, figures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::readership::parse_day;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn claim(aggregator: &str, network: &str, n: u64, first: i64, last: i64) -> Claim {
        Claim {
            day: parse_day("2026-11-30").unwrap(),
            feed: "/vi/rss.xml".into(),
            aggregator: aggregator.into(),
            network: network.into(),
            subscribers: n,
            first_seen: first,
            last_seen: last,
            verdict: 0,
        }
    }

    #[test]
    fn networks_hide_the_address() {
        assert_eq!(network_of(ip("203.0.113.77")).to_string(), "203.0.113.0/24");
        assert_eq!(
            network_of(ip("::ffff:203.0.113.77")).to_string(),
            "203.0.113.0/24"
        );
        assert_eq!(
            network_of(ip("2001:db8:1:2:3::9")).to_string(),
            "2001:db8:1::/48"
        );
    }

    #[test]
    fn a_claim_counts_once_seen_an_hour_apart() {
        let (figures, list) = combine(
            "/vi/rss.xml",
            &[claim("Feedly", "203.0.113.0/24", 99_999_999, 0, 0)],
        );
        assert!(figures.is_empty(), "seen once: not counted");
        assert!(!list[0].confirmed && !list[0].counted);
        assert_eq!(list[0].subscribers, MAX_CLAIM, "and capped");

        let (figures, _) = combine(
            "/vi/rss.xml",
            &[claim("Feedly", "203.0.113.0/24", 131, 0, CONFIRM_AFTER - 1)],
        );
        assert!(figures.is_empty(), "59 minutes 59 seconds is not an hour");
        // Two days' rows of the same claim: sightings join across the window.
        let mut a = claim("Feedly", "203.0.113.0/24", 131, 100, 200);
        let b = claim("Feedly", "203.0.113.0/24", 140, 100 + CONFIRM_AFTER, 5000);
        a.day = a.day.pred_opt().unwrap();
        let (figures, list) = combine("/vi/rss.xml", &[a, b]);
        assert_eq!(figures["Feedly"], 140, "the latest count");
        assert!(list[0].counted);
    }

    #[test]
    fn networks_and_aggregators_do_not_add_up() {
        let h = CONFIRM_AFTER;
        let rows = [
            // Feedly from two networks: the same audience, the largest counts.
            claim("Feedly", "203.0.113.0/24", 131, 0, h),
            claim("Feedly", "198.51.100.0/24", 129, 0, h),
            // One network claiming several aggregators backs only its largest.
            claim("Foo", "192.0.2.0/24", 500, 0, h),
            claim("Bar", "192.0.2.0/24", 400, 0, h),
            claim("Baz", "192.0.2.0/24", 300, 0, h),
            // Saturated claims from several networks of one aggregator never wrap.
            claim("Max", "10.0.1.0/24", u64::MAX, 0, h),
            claim("Max", "10.0.2.0/24", u64::MAX, 0, h),
            claim("Max", "10.0.3.0/24", u64::MAX, 0, h),
        ];
        let (figures, list) = combine("/vi/rss.xml", &rows);
        assert_eq!(figures["Feedly"], 131);
        assert_eq!(figures["Foo"], 500);
        assert!(!figures.contains_key("Bar") && !figures.contains_key("Baz"));
        assert_eq!(figures["Max"], MAX_CLAIM);
        let total = figures.values().fold(0u64, |s, n| s.saturating_add(*n));
        assert_eq!(total, 131 + 500 + MAX_CLAIM);
        assert_eq!(list.iter().filter(|c| c.counted).count(), 3);
    }

    #[test]
    fn documented_aggregators_count_only_verified_fetchers() {
        let h = CONFIRM_AFTER;
        let mut real = claim("Google Feedfetcher", "66.249.90.0/24", 12, 0, h);
        real.verdict = Verdict::Verified.code();
        let mut fake = claim("Google Feedfetcher", "203.0.113.0/24", 900, 0, h);
        fake.verdict = Verdict::Refuted.code();
        let mut pending = claim("Google Feedfetcher", "198.51.100.0/24", 800, 0, h);
        pending.verdict = Verdict::Pending.code();
        let (figures, list) = combine("/vi/rss.xml", &[fake, pending, real]);
        assert_eq!(figures["Google Feedfetcher"], 12);
        let shown: Vec<(&str, bool)> = list.iter().map(|c| (c.verification, c.counted)).collect();
        assert_eq!(
            shown,
            [("refuted", false), ("pending", false), ("verified", true)]
        );
    }
}
