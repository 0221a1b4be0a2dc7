//! Who a User-Agent is: an aggregator reporting its subscribers, an individual reader, a web
//! browser, or a crawler/bot.
//!
//! Hosted aggregators poll once for all their users and say how many there are in their
//! User-Agent (`Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; )`); FeedBurner
//! and FeedPress built their subscriber counts on that convention, and so does bantin. Any
//! User-Agent announcing "N subscribers" is an aggregator, named from the table below or, failing
//! that, from its product token, so a new aggregator is counted before anyone adds it here. Its
//! own feed id (`feed-id:123`, NewsBlur's `/site/42`) keeps two subscriptions of one aggregator
//! to the same URL apart.
//!
//! Browsers (someone opening the feed in a tab), search engines, link checkers, validators and
//! monitoring are polls but never subscribers. Everything else is an individual reader, counted
//! once per (address, User-Agent), and grouped under its application's name when it is known.
//!
//! A reported count is a claim: it is read saturating and capped here, and judged (networks,
//! sightings an hour apart, verification) in [`super::claims`].
//!
//! A pure function of the string, run once per distinct User-Agent per flush, off the poll path.

/// What a User-Agent says about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agent {
    /// A service polling for many users, with the count it reports.
    Aggregator {
        name: String,
        /// The aggregator's id of the feed, empty when it names none.
        feed_id: String,
        subscribers: u64,
    },
    /// One person's reader application (`name` is its family, or `other`).
    Reader { name: String },
    /// A web browser.
    Browser,
    /// A search engine, crawler, link checker, validator or monitor.
    Bot,
}

/// Known services and applications: a lower-case needle and the name to show. Earlier entries
/// win (Feedly's User-Agent also says "like FeedFetcher-Google").
const NAMES: &[(&str, &str)] = &[
    ("feedly", "Feedly"),
    ("inoreader", "Inoreader"),
    ("newsblur", "NewsBlur"),
    ("feedbin", "Feedbin"),
    ("theoldreader", "The Old Reader"),
    ("bazqux", "BazQux"),
    ("superfeedr", "Superfeedr"),
    ("feedspot", "Feedspot"),
    ("netvibes", "Netvibes"),
    ("newsgator", "NewsGator"),
    ("bloglines", "Bloglines"),
    ("feedhq", "FeedHQ"),
    ("feed wrangler", "Feed Wrangler"),
    ("feedfetcher-google", "Google Feedfetcher"),
    ("commafeed", "CommaFeed"),
    ("tiny tiny rss", "Tiny Tiny RSS"),
    ("tt-rss", "Tiny Tiny RSS"),
    ("miniflux", "Miniflux"),
    ("freshrss", "FreshRSS"),
    ("netnewswire", "NetNewsWire"),
    ("newsboat", "newsboat"),
    ("newsbeuter", "newsboat"),
    ("liferea", "Liferea"),
    ("thunderbird", "Thunderbird"),
    ("quiterss", "QuiteRSS"),
    ("rssowl", "RSSOwl"),
    ("reeder", "Reeder"),
    ("newsflash", "NewsFlash"),
    ("akregator", "Akregator"),
    ("fluent reader", "Fluent Reader"),
    ("nextcloud-news", "Nextcloud News"),
    ("selfoss", "selfoss"),
    ("rss2email", "rss2email"),
    ("readwise", "Readwise"),
    ("feedbro", "Feedbro"),
    ("feedblitz", "FeedBlitz"),
];

/// Every reader family [`classify`] can name: the table's names and `other`. A bounded set, so
/// the readers' sketches per feed-day are bounded too (aggregator names from a product token are
/// not: those are bounded by the claims per feed-day, see [`crate::store::readership`]).
pub fn reader_families() -> impl Iterator<Item = &'static str> {
    NAMES
        .iter()
        .map(|(_, name)| *name)
        .chain(std::iter::once("other"))
}

/// Lower-case needles of crawlers, bots, link checkers, validators and monitors.
const BOTS: &[&str] = &[
    "bot",
    "crawl",
    "spider",
    "slurp",
    "facebookexternalhit",
    "embedly",
    "preview",
    "monitor",
    "uptime",
    "pingdom",
    "statuscake",
    "site24x7",
    "check_http",
    "nagios",
    "zabbix",
    "linkcheck",
    "link-check",
    "checklink",
    "validator",
    "headless",
    "lighthouse",
    "pagespeed",
    "ia_archiver",
];

/// Browser engines' tokens, looked for in a `Mozilla/…` User-Agent.
const BROWSERS: &[&str] = &[
    "chrome/", "firefox/", "safari/", "edg/", "opr/", "gecko/", "trident/", "msie ",
];

/// Classifies a User-Agent (empty when the request had none).
pub fn classify(user_agent: &str) -> Agent {
    let lower = user_agent.to_ascii_lowercase();
    let known = NAMES
        .iter()
        .find(|(needle, _)| lower.contains(needle))
        .map(|(_, name)| *name);
    if let Some(subscribers) = reported_subscribers(&lower) {
        let name = known
            .map(String::from)
            .unwrap_or_else(|| product(user_agent));
        return Agent::Aggregator {
            name,
            feed_id: feed_id(user_agent),
            subscribers,
        };
    }
    if let Some(name) = known {
        return Agent::Reader { name: name.into() };
    }
    if BOTS.iter().any(|b| lower.contains(b)) {
        return Agent::Bot;
    }
    if (lower.starts_with("mozilla/") || lower.starts_with("opera"))
        && BROWSERS.iter().any(|b| lower.contains(b))
    {
        return Agent::Browser;
    }
    Agent::Reader {
        name: "other".into(),
    }
}

/// The number before "subscriber(s)", allowing thousands separators (`1,204 subscribers`),
/// saturating while it is read (a 30-digit count is the cap, not a parse failure or a wrap) and
/// capped at [`super::claims::MAX_CLAIM`].
fn reported_subscribers(lower: &str) -> Option<u64> {
    let at = lower.find("subscriber")?;
    let before = lower[..at].trim_end();
    let run: Vec<char> = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit() || *c == ',' || *c == '.')
        .collect();
    let mut digits = run.iter().rev().filter_map(|c| c.to_digit(10)).peekable();
    digits.peek()?;
    let n = digits.fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d))
    });
    Some(n.min(super::claims::MAX_CLAIM))
}

/// The aggregator's id of the feed: `feed-id:123`, `feed-id=abc`, `feedID: 9`, or NewsBlur's
/// `/site/42`.
fn feed_id(user_agent: &str) -> String {
    let lower = user_agent.to_ascii_lowercase();
    let markers = ["feed-id", "feedid", "feed_id", "newsblur.com/site/"];
    for m in markers {
        if let Some(at) = lower.find(m) {
            let rest = &user_agent[at + m.len()..];
            let rest = rest.trim_start_matches([':', '=', ' ']);
            let id: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .take(64)
                .collect();
            if !id.is_empty() {
                return id;
            }
        }
    }
    String::new()
}

/// The product token (`BazQux` of `BazQux/2.4 (…)`), for an aggregator not in the table.
fn product(user_agent: &str) -> String {
    let token: String = user_agent
        .trim()
        .chars()
        .take_while(|c| !matches!(c, '/' | ' ' | '(' | ';'))
        .take(40)
        .collect();
    if token.is_empty() || token.eq_ignore_ascii_case("mozilla") {
        "other aggregator".into()
    } else {
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(name: &str, feed_id: &str, subscribers: u64) -> Agent {
        Agent::Aggregator {
            name: name.into(),
            feed_id: feed_id.into(),
            subscribers,
        }
    }

    fn reader(name: &str) -> Agent {
        Agent::Reader { name: name.into() }
    }

    /// Real User-Agent strings, as the aggregators and readers send them.
    #[test]
    fn user_agent_table() {
        let cases: &[(&str, Agent)] = &[
            (
                "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; )",
                agg("Feedly", "", 131),
            ),
            (
                "Inoreader/1.0 (+http://www.inoreader.com/feed-fetcher; 12 subscribers; )",
                agg("Inoreader", "", 12),
            ),
            (
                "NewsBlur Feed Fetcher - 5 subscribers - https://www.newsblur.com/site/42 (Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2228.0 Safari/537.36)",
                agg("NewsBlur", "42", 5),
            ),
            (
                "Feedbin feed-id:123 - 7 subscribers",
                agg("Feedbin", "123", 7),
            ),
            (
                "Mozilla/5.0 (compatible; theoldreader.com; 4 subscribers; feed-id=3c1f2b0e8e4a5d6f7a8b9c0d)",
                agg("The Old Reader", "3c1f2b0e8e4a5d6f7a8b9c0d", 4),
            ),
            (
                "Superfeedr bot/2.0 http://superfeedr.com - Make your feeds realtime: get in touch - feed-id:46271263 - 1 subscribers",
                agg("Superfeedr", "46271263", 1),
            ),
            (
                "Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 2 subscribers; feed-id=1234567890)",
                agg("Google Feedfetcher", "1234567890", 2),
            ),
            (
                "Netvibes (http://www.netvibes.com/; 2 subscribers; feedID: 123456)",
                agg("Netvibes", "123456", 2),
            ),
            (
                "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 1,204 subscribers; like FeedFetcher-Google)",
                agg("Feedly", "", 1204),
            ),
            (
                "Bazooka/3.1 (+https://bazooka.example/fetcher; 9 subscribers)",
                agg("Bazooka", "", 9),
            ),
            (
                "Miniflux/2.2.3 (https://miniflux.app; Linux)",
                reader("Miniflux"),
            ),
            (
                "FreshRSS/1.24.1 (Linux; https://freshrss.org)",
                reader("FreshRSS"),
            ),
            (
                "NetNewsWire (RSS Reader; https://netnewswire.com/)",
                reader("NetNewsWire"),
            ),
            ("newsboat/2.36.0 (Linux x86_64)", reader("newsboat")),
            (
                "Tiny Tiny RSS/24.09 (Unsupported) (https://tt-rss.org/)",
                reader("Tiny Tiny RSS"),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.3.0",
                reader("Thunderbird"),
            ),
            (
                "Feedspot/1.0 (+https://www.feedspot.com/fs/fetcher; like FeedFetcher-Google)",
                reader("Feedspot"),
            ),
            ("Go-http-client/1.1", reader("other")),
            ("", reader("other")),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                Agent::Browser,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                Agent::Browser,
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                Agent::Browser,
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                Agent::Bot,
            ),
            (
                "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
                Agent::Bot,
            ),
            (
                "Mozilla/5.0 (compatible; coccocbot-web/1.0; +http://help.coccoc.com/searchengine)",
                Agent::Bot,
            ),
            (
                "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
                Agent::Bot,
            ),
            ("W3C-checklink/5.0.0 libwww-perl/6.77", Agent::Bot),
            ("FeedValidator/1.3", Agent::Bot),
            (
                "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                Agent::Bot,
            ),
            (
                "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
                Agent::Bot,
            ),
        ];
        for (ua, want) in cases {
            assert_eq!(classify(ua), *want, "{ua}");
        }
    }

    #[test]
    fn counts_saturate_and_are_capped() {
        use crate::readership::claims::MAX_CLAIM;
        for ua in [
            "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 99999999 subscribers; )",
            "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 9223372036854775807 subscribers; )",
            "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 999999999999999999999999999999 subscribers; )",
        ] {
            assert_eq!(classify(ua), agg("Feedly", "", MAX_CLAIM), "{ua}");
        }
        assert_eq!(
            classify("Feedly/1.0 (+http://www.feedly.com/fetcher.html; subscribers; )"),
            reader("Feedly"),
            "no number, no claim"
        );
    }

    #[test]
    fn reader_families_are_a_bounded_set() {
        let families: std::collections::BTreeSet<&str> = reader_families().collect();
        assert!(families.len() < 64);
        for ua in [
            "Miniflux/2.2.3",
            "random/1.0",
            "",
            "FeedBurner/1.0 compatible: FeedBlitz",
        ] {
            match classify(ua) {
                Agent::Reader { name } => assert!(families.contains(name.as_str()), "{name}"),
                other => panic!("{ua}: {other:?}"),
            }
        }
    }
}
