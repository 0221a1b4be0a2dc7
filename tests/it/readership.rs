//! Readership: every feed answer is counted (200 and 304), subscribers follow the FeedPress rules
//! over a rolling week (scripted with a manual clock), counts survive a restart, replicas sharing
//! PostgreSQL add up, `/stats` shows it to the newsroom, forged subscriber claims stay out of the
//! headline, and a flood of distinct readers leaves the store and the aggregator's memory within
//! their stated bounds.

use std::sync::Arc;

use bantin::clock::ManualClock;
use bantin::config::Config;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::helpers::*;
use crate::partners::{KEY, partners};

const FEEDLY: &str = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; )";
const INOREADER: &str = "Inoreader/1.0 (+http://www.inoreader.com/feed-fetcher; 12 subscribers; )";
const NEWSBLUR: &str = "NewsBlur Feed Fetcher - 5 subscribers - https://www.newsblur.com/site/42 (Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2228.0 Safari/537.36)";
const FEEDBIN: &str = "Feedbin feed-id:123 - 7 subscribers";
const OLD_READER: &str =
    "Mozilla/5.0 (compatible; theoldreader.com; 4 subscribers; feed-id=3c1f2b0e8e4a5d6f)";
const MINIFLUX: &str = "Miniflux/2.2.3 (https://miniflux.app; Linux)";
const NETNEWSWIRE: &str = "NetNewsWire (RSS Reader; https://netnewswire.com/)";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Partners, and the test client (127.0.0.1) as a trusted proxy, so `X-Forwarded-For` can play
/// readers at different addresses.
fn counting(c: &mut Config) {
    partners(c);
    c.access.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

async fn spawn_counting(clock: Option<Arc<ManualClock>>, database_url: Option<String>) -> TestApp {
    spawn(Options {
        tweak: Some(counting),
        clock: clock.map(|c| c as Arc<dyn bantin::clock::Clock>),
        database_url,
        ..Default::default()
    })
    .await
}

/// One poll: User-Agent, client address, optional partner key and ETag.
async fn poll(
    app: &TestApp,
    path: &str,
    ua: &str,
    addr: &str,
    key: Option<&str>,
    etag: Option<&str>,
) -> reqwest::Response {
    let url = match key {
        Some(k) => app.url(&format!("{path}?key={k}")),
        None => app.url(path),
    };
    let mut req = app
        .client
        .get(url)
        .header("user-agent", ua)
        .header("x-forwarded-for", addr);
    if let Some(e) = etag {
        req = req.header("if-none-match", e);
    }
    let r = req.send().await.unwrap();
    assert!(matches!(r.status().as_u16(), 200 | 304), "{path} {ua}");
    r
}

async fn stats(app: &TestApp, days: u32) -> Value {
    app.stats(days).await
}

/// The figures of `feed` on `date` in a stats answer.
fn feed_on<'a>(stats: &'a Value, date: &str, feed: &str) -> Option<&'a Value> {
    stats["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == date)?["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feed"] == feed)
}

fn subscribers(stats: &Value, date: &str, feed: &str) -> u64 {
    feed_on(stats, date, feed).map_or(0, |f| f["subscribers"].as_u64().unwrap())
}

fn client(f: &Value, name: &str) -> Option<u64> {
    f["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == name)
        .map(|c| c["subscribers"].as_u64().unwrap())
}

const FEED: &str = "/vi/rss.xml";

/// The aggregators of the scripted week, each polling from a network of its own.
const AGGREGATORS: [(&str, &str); 5] = [
    (FEEDLY, "203.0.113.10"),
    (INOREADER, "198.51.100.20"),
    (NEWSBLUR, "192.0.2.30"),
    (FEEDBIN, "100.64.1.40"),
    (OLD_READER, "100.64.2.50"),
];

const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

#[tokio::test]
async fn a_scripted_week_of_polls() {
    // Noon in Vietnam on Monday 23 November 2026.
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), None).await;
    let r = app.server.app.readership().clone();

    // Day 1: five aggregators (each from its own network, seen on two polls an hour apart, so
    // their claims are believed), a partner, two readers (one polling twice, the second time
    // conditionally), a browser and a search engine.
    for (ua, addr) in AGGREGATORS {
        poll(&app, FEED, ua, addr, None, None).await;
    }
    r.flush().await.unwrap();
    clock.advance(std::time::Duration::from_secs(3600));
    for (ua, addr) in AGGREGATORS {
        poll(&app, FEED, ua, addr, None, None).await;
    }
    poll(
        &app,
        FEED,
        "Baomoi-Crawler/1.0",
        "192.0.2.50",
        Some(KEY),
        None,
    )
    .await;
    let first = poll(&app, FEED, MINIFLUX, "198.51.100.1", None, None).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let again = poll(&app, FEED, MINIFLUX, "198.51.100.1", None, Some(&etag)).await;
    assert_eq!(again.status(), 304);
    poll(&app, FEED, NETNEWSWIRE, "198.51.100.2", None, None).await;
    poll(&app, FEED, CHROME, "198.51.100.3", None, None).await;
    poll(&app, FEED, GOOGLEBOT, "66.249.66.1", None, None).await;
    r.flush().await.unwrap();

    let s = stats(&app, 1).await;
    let day1 = feed_on(&s, "2026-11-23", FEED).expect("the feed has figures");
    assert_eq!(day1["polls"], 16, "browsers and bots are polls");
    assert_eq!(day1["not_modified"], 1);
    assert!(day1["bytes"].as_u64().unwrap() > 0);
    assert_eq!(
        day1["subscribers"], 162,
        "131 + 12 + 5 + 7 + 4 reported, 1 partner, 2 readers; no browser, no bot"
    );
    assert_eq!(client(day1, "Feedly"), Some(131));
    assert_eq!(client(day1, "Inoreader"), Some(12));
    assert_eq!(client(day1, "NewsBlur"), Some(5));
    assert_eq!(client(day1, "Feedbin"), Some(7));
    assert_eq!(client(day1, "The Old Reader"), Some(4));
    assert_eq!(client(day1, "Báo Mới"), Some(1));
    assert_eq!(
        client(day1, "Miniflux"),
        Some(1),
        "one reader polling twice is one"
    );
    assert_eq!(client(day1, "NetNewsWire"), Some(1));
    assert_eq!(day1["clients"].as_array().unwrap().len(), 8);

    // Day 3: Feedly now reports 140 (its latest count replaces 131, it does not add), and the
    // Miniflux reader polls again.
    clock.set(t("2026-11-25T05:00:00Z"));
    poll(
        &app,
        FEED,
        &FEEDLY.replace("131", "140"),
        "203.0.113.10",
        None,
        None,
    )
    .await;
    poll(&app, FEED, MINIFLUX, "198.51.100.1", None, None).await;
    r.flush().await.unwrap();
    assert_eq!(subscribers(&stats(&app, 1).await, "2026-11-25", FEED), 171);

    // Day 8: only Feedly polls (150). Day 1 has left the window: the other aggregators, the
    // partner and the NetNewsWire reader are gone; the Miniflux reader (day 3) is still in.
    clock.set(t("2026-11-30T05:00:00Z"));
    poll(
        &app,
        FEED,
        &FEEDLY.replace("131", "150"),
        "203.0.113.10",
        None,
        None,
    )
    .await;
    r.flush().await.unwrap();
    let week = stats(&app, 8).await;
    let days: Vec<&str> = week["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(days.first(), Some(&"2026-11-23"));
    assert_eq!(days.len(), 8, "every day, oldest first");
    let by_day: Vec<u64> = days.iter().map(|d| subscribers(&week, d, FEED)).collect();
    // Days 1-8: day 2 nobody polled but its window holds day 1; days 3-7 hold days 1 and 3.
    assert_eq!(by_day, [162, 162, 171, 171, 171, 171, 171, 151]);
    assert_eq!(feed_on(&week, "2026-11-24", FEED).unwrap()["polls"], 0);
    assert_eq!(feed_on(&week, "2026-11-30", FEED).unwrap()["polls"], 1);
    let today = feed_on(&week, "2026-11-30", FEED).unwrap();
    assert_eq!(client(today, "Feedly"), Some(150));
    assert_eq!(client(today, "Miniflux"), Some(1));
    assert_eq!(client(today, "Inoreader"), None);

    // Closed days keep their figures after their reader rows are pruned: two weeks on, the week
    // still reads the same.
    clock.set(t("2026-12-14T05:00:00Z"));
    r.flush().await.unwrap();
    let later = stats(&app, 22).await;
    let again: Vec<u64> = days.iter().map(|d| subscribers(&later, d, FEED)).collect();
    assert_eq!(again, by_day);
    assert_eq!(subscribers(&later, "2026-12-14", FEED), 0);
}

#[tokio::test]
async fn counts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("bantin.db").display());
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), Some(db.clone())).await;
    poll(&app, FEED, FEEDLY, "203.0.113.10", None, None).await;
    app.server.app.readership().flush().await.unwrap();
    clock.advance(HOUR);
    for _ in 0..2 {
        poll(&app, FEED, FEEDLY, "203.0.113.10", None, None).await;
    }
    poll(&app, "/en/atom.xml", MINIFLUX, "198.51.100.1", None, None).await;
    // No explicit flush: a graceful shutdown writes what the workers counted.
    app.server.shutdown().await.unwrap();

    let app = spawn_counting(Some(clock), Some(db)).await;
    let s = stats(&app, 1).await;
    let vi = feed_on(&s, "2026-11-23", FEED).unwrap();
    assert_eq!(vi["polls"], 3);
    assert_eq!(vi["subscribers"], 131, "the claim's two sightings survive");
    assert_eq!(subscribers(&s, "2026-11-23", "/en/atom.xml"), 1);
}

#[tokio::test]
#[ignore = "needs BANTIN_TEST_DATABASE_URL"]
async fn two_replicas_on_postgres_add_up() {
    use bantin::store::postgres::test_support::{drop_database, fresh_database};
    let db = fresh_database().await;
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let a = spawn_counting(Some(clock.clone()), Some(db.clone())).await;
    let b = spawn_counting(Some(clock.clone()), Some(db.clone())).await;
    // The same reader polls both replicas; each replica has its own second reader; Feedly's
    // count is seen on both.
    for _ in 0..3 {
        poll(&a, FEED, MINIFLUX, "198.51.100.1", None, None).await;
    }
    for _ in 0..2 {
        poll(&b, FEED, MINIFLUX, "198.51.100.1", None, None).await;
    }
    poll(&a, FEED, NETNEWSWIRE, "198.51.100.2", None, None).await;
    poll(&b, FEED, NETNEWSWIRE, "198.51.100.3", None, None).await;
    // Feedly seen by one replica, and an hour later by the other: one claim, confirmed.
    poll(&a, FEED, FEEDLY, "203.0.113.10", None, None).await;
    a.server.app.readership().flush().await.unwrap();
    clock.advance(HOUR);
    poll(&b, FEED, FEEDLY, "203.0.113.11", None, None).await;
    a.server.app.readership().flush().await.unwrap();
    b.server.app.readership().flush().await.unwrap();
    // A second flush of each adds only what is new (nothing is counted twice).
    a.server.app.readership().flush().await.unwrap();
    b.server.app.readership().flush().await.unwrap();

    for app in [&a, &b] {
        let s = stats(app, 1).await;
        let f = feed_on(&s, "2026-11-23", FEED).unwrap();
        assert_eq!(f["polls"], 3 + 2 + 2 + 2, "polls of both replicas add up");
        assert_eq!(
            s["claims"].as_array().unwrap().len(),
            1,
            "one claim per network"
        );
        assert_eq!(
            f["subscribers"],
            131 + 3,
            "Feedly once, the shared reader once, two other readers"
        );
        assert_eq!(client(f, "Miniflux"), Some(1));
        assert_eq!(client(f, "NetNewsWire"), Some(2));
    }

    // Flushes of both replicas at once merge their readers' sketches without losing either:
    // 60 readers on each, 20 of them on both, over five rounds of concurrent flushes.
    for round in 0..5u32 {
        for i in (round * 12)..(round * 12 + 12) {
            let addr = format!("10.9.{}.{}", i / 200, i % 200);
            poll(&a, "/en/rss.xml", MINIFLUX, &addr, None, None).await;
            let addr = format!("10.9.{}.{}", (i + 40) / 200, (i + 40) % 200);
            poll(&b, "/en/rss.xml", MINIFLUX, &addr, None, None).await;
        }
        let (x, y) = tokio::join!(
            a.server.app.readership().flush(),
            b.server.app.readership().flush()
        );
        x.unwrap();
        y.unwrap();
    }
    let s = stats(&a, 1).await;
    assert_eq!(
        subscribers(&s, "2026-11-23", "/en/rss.xml"),
        100,
        "60 + 60 readers, 20 on both replicas"
    );
    drop((a, b));
    drop_database(&db).await;
}

#[tokio::test]
async fn the_stats_page_shows_the_chart_and_the_numbers() {
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), None).await;
    let first = poll(&app, FEED, FEEDLY, "203.0.113.10", None, None).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    app.server.app.readership().flush().await.unwrap();
    clock.advance(HOUR);
    for _ in 0..3 {
        poll(&app, FEED, FEEDLY, "203.0.113.10", None, Some(&etag)).await;
    }
    // An impolite poller: unconditional fetches in quick succession.
    for _ in 0..3 {
        poll(&app, FEED, "Hammer/0.1", "198.51.100.9", None, None).await;
    }
    app.server.app.readership().flush().await.unwrap();

    // No credentials: the browser is asked for them.
    let r = app.get("/stats").await;
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let wrong = app
        .client
        .get(app.url("/stats"))
        .basic_auth("newsroom", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let r = app
        .client
        .get(app.url("/stats?days=7"))
        .basic_auth("newsroom", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    let svg_start = html.find("<svg").expect("an inline SVG chart");
    let svg_end = html.find("</svg>").unwrap() + "</svg>".len();
    let svg = &html[svg_start..svg_end];
    let doc = roxmltree::Document::parse(svg).expect("the chart is well-formed SVG");
    let points: Vec<(&str, &str)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("circle"))
        .map(|n| {
            (
                n.attribute("data-date").unwrap(),
                n.attribute("data-subscribers").unwrap(),
            )
        })
        .collect();
    assert_eq!(points.len(), 7, "one point per day");
    assert_eq!(
        points.last(),
        Some(&("2026-11-23", "132")),
        "Feedly 131 + Hammer 1"
    );
    assert!(doc.descendants().any(|n| n.has_tag_name("polyline")));
    assert!(html.contains("<strong id=\"subscribers-today\">132</strong>"));
    assert!(html.contains("<strong id=\"polls\">7</strong>"));
    assert!(
        html.contains("<strong id=\"not-modified-share\">43%</strong>"),
        "3 of 7 polls answered 304"
    );
    assert!(
        html.contains("<td><a href=\"/vi/rss.xml\">/vi/rss.xml</a></td><td class=\"n\">132</td>")
    );
    let impolite = &html[html.find("id=\"impolite\"").unwrap()..];
    assert!(
        impolite.contains("Hammer/0.1"),
        "the impolite poller is named"
    );
    assert!(
        !impolite.contains("Feedly"),
        "a conditional poller is polite"
    );
    // The claims, with their networks, for the newsroom to judge.
    let claims = &html[html.find("<table id=\"claims\"").unwrap()..];
    assert!(
        claims.contains(
            "<td>Feedly</td><td>/vi/rss.xml</td><td>203.0.113.0/24</td><td class=\"n\">131</td>"
        ),
        "{claims}"
    );
    assert!(claims.contains("<td>unverifiable</td><td>yes</td>"));

    // The JSON has the same numbers, and the gauge is exported.
    let s = stats(&app, 1).await;
    assert_eq!(subscribers(&s, "2026-11-23", FEED), 132);
    assert_eq!(s["impolite"][0]["user_agent"], "Hammer/0.1");
    assert_eq!(s["impolite"][0]["too_soon"], 2);
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("bantin_feed_subscribers{feed=\"/vi/rss.xml\"} 132"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_stats_api_needs_the_token_and_a_sane_range() {
    let app = spawn_counting(None, None).await;
    assert_eq!(app.get("/api/v1/stats").await.status(), 401);
    let r = app
        .client
        .get(app.url("/api/v1/stats?days=0"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["field"], "days");
    let s = stats(&app, 7).await;
    assert_eq!(s["days"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn counting_off_counts_nothing() {
    fn off(c: &mut Config) {
        counting(c);
        c.readership.enabled = false;
    }
    let app = spawn(Options {
        tweak: Some(off),
        ..Default::default()
    })
    .await;
    poll(&app, FEED, FEEDLY, "203.0.113.10", None, None).await;
    app.server.app.readership().flush().await.unwrap();
    let s = stats(&app, 1).await;
    assert!(s["days"][0]["feeds"].as_array().unwrap().is_empty());
}

/// The claims listed in a stats answer for `feed`.
fn claims_of<'a>(s: &'a Value, feed: &str) -> Vec<&'a Value> {
    s["claims"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["feed"] == feed)
        .collect()
}

async fn metrics_line(app: &TestApp, feed: &str) -> Option<String> {
    app.get_text("/metrics")
        .await
        .lines()
        .find(|l| l.starts_with(&format!("bantin_feed_subscribers{{feed=\"{feed}\"}}")))
        .map(str::to_string)
}

#[tokio::test]
async fn a_forged_claim_stays_out_of_the_headline_until_seen_an_hour_apart() {
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), None).await;
    let r = app.server.app.readership().clone();
    let forged = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 99999999 subscribers; )";
    poll(&app, FEED, forged, "203.0.113.66", None, None).await;
    r.flush().await.unwrap();

    let s = stats(&app, 7).await;
    assert_eq!(
        subscribers(&s, "2026-11-23", FEED),
        0,
        "one request is not believed"
    );
    assert_eq!(s["days"][6]["subscribers"], 0);
    let c = claims_of(&s, FEED);
    assert_eq!(c.len(), 1, "but it is shown");
    assert_eq!(c[0]["aggregator"], "Feedly");
    assert_eq!(
        c[0]["network"], "203.0.113.0/24",
        "the network, not the address"
    );
    assert_eq!(c[0]["subscribers"], 1_000_000, "capped");
    assert_eq!(
        (c[0]["confirmed"].as_bool(), c[0]["counted"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(c[0]["verification"], "unverifiable");
    assert_eq!(metrics_line(&app, FEED).await, None, "nor on /metrics");

    // Seen again 59 minutes later: still not an hour.
    clock.advance(std::time::Duration::from_secs(59 * 60));
    poll(&app, FEED, forged, "203.0.113.67", None, None).await;
    r.flush().await.unwrap();
    assert_eq!(subscribers(&stats(&app, 1).await, "2026-11-23", FEED), 0);

    // An hour after the first sighting the claim counts (at the cap), as a real aggregator's
    // does: the cap, the networks shown and the rules below are what limit a forger.
    clock.advance(std::time::Duration::from_secs(60));
    poll(&app, FEED, FEEDLY, "203.0.113.68", None, None).await;
    r.flush().await.unwrap();
    let s = stats(&app, 1).await;
    assert_eq!(subscribers(&s, "2026-11-23", FEED), 131, "the latest count");
    assert_eq!(claims_of(&s, FEED)[0]["counted"], true);
    assert_eq!(
        metrics_line(&app, FEED).await.as_deref(),
        Some("bantin_feed_subscribers{feed=\"/vi/rss.xml\"} 131")
    );
}

#[tokio::test]
async fn feed_ids_and_names_from_one_network_do_not_add_up() {
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), None).await;
    let r = app.server.app.readership().clone();
    for round in 0..2 {
        for i in 1..=50 {
            let addr = format!("203.0.113.{i}");
            let feedbin = format!("Feedbin feed-id:{i} - 7 subscribers");
            poll(&app, FEED, &feedbin, &addr, None, None).await;
            let invented = format!("Invented{i}/1.0 (+https://x.example/; 1000 subscribers)");
            poll(&app, FEED, &invented, &addr, None, None).await;
        }
        r.flush().await.unwrap();
        if round == 0 {
            clock.advance(HOUR);
        }
    }
    let s = stats(&app, 1).await;
    let f = feed_on(&s, "2026-11-23", FEED).unwrap();
    eprintln!("{:#}", s["claims"]);
    assert_eq!(
        f["subscribers"], 1000,
        "one network backs one claim: the largest of its names, not 50 × 7 + 50 × 1000"
    );
    let listed = claims_of(&s, FEED);
    assert!(listed.len() <= 32, "claims per feed-day are bounded");
    assert_eq!(listed.iter().filter(|c| c["counted"] == true).count(), 1);
    // The rest are counted as dropped (past the two a network backs, in the aggregator).
    let dropped = app
        .get_text("/metrics")
        .await
        .lines()
        .find(|l| l.starts_with("bantin_readership_dropped_total{what=\"claims\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(dropped >= 2 * 49, "and the rest counted: {dropped}");
}

#[tokio::test]
async fn saturated_claims_do_not_wrap() {
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), None).await;
    let r = app.server.app.readership().clone();
    let max = |name: &str| {
        format!("{name}/1.0 (+https://{name}.example/; 9223372036854775807 subscribers; )")
    };
    let claims = [
        (max("Feedly"), "203.0.113.1"),
        (max("Inoreader"), "198.51.100.1"),
        (max("NewsBlur"), "192.0.2.1"),
    ];
    for _ in 0..2 {
        for (ua, addr) in &claims {
            for feed in [FEED, "/en/rss.xml"] {
                poll(&app, feed, ua, addr, None, None).await;
            }
        }
        r.flush().await.unwrap();
        clock.advance(HOUR);
    }
    let s = stats(&app, 1).await;
    assert_eq!(
        subscribers(&s, "2026-11-23", FEED),
        3_000_000,
        "three capped claims"
    );
    assert_eq!(s["days"][0]["subscribers"], 6_000_000, "and the day's sum");
    assert!(
        metrics_line(&app, FEED)
            .await
            .unwrap()
            .ends_with(" 3000000"),
        "the gauge neither wraps nor goes negative"
    );
}

/// DNS as a table, for the verification test.
struct ScriptedDns;

impl bantin::readership::verify::Resolver for ScriptedDns {
    fn reverse(&self, addr: std::net::IpAddr) -> Option<String> {
        (addr.to_string() == "66.249.90.77").then(|| "google-proxy-66-249-90-77.google.com".into())
    }
    fn forward(&self, host: &str) -> Vec<std::net::IpAddr> {
        if host == "google-proxy-66-249-90-77.google.com" {
            vec!["66.249.90.77".parse().unwrap()]
        } else {
            vec![]
        }
    }
}

#[tokio::test]
async fn a_documented_aggregator_counts_only_from_verified_fetchers() {
    const FETCHER: &str =
        "Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 12 subscribers; feed-id=1)";
    const FORGED: &str =
        "Feedfetcher-Google; (+http://www.google.com/feedfetcher.html; 900 subscribers; feed-id=2)";
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), None).await;
    let r = app.server.app.readership().clone();
    r.set_resolver(Arc::new(ScriptedDns));
    let both = async || {
        poll(&app, FEED, FETCHER, "66.249.90.77", None, None).await;
        poll(&app, FEED, FORGED, "203.0.113.5", None, None).await;
        r.flush().await.unwrap();
    };
    both().await;
    // The lookups run beside the poll path; their verdicts join the claims on the next sightings.
    let mut verdicts = vec![];
    for _ in 0..200 {
        both().await;
        let s = stats(&app, 1).await;
        verdicts = claims_of(&s, FEED)
            .iter()
            .map(|c| c["verification"].as_str().unwrap().to_string())
            .collect();
        verdicts.sort();
        if !verdicts.iter().any(|v| v == "pending") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(verdicts, ["refuted", "verified"]);
    clock.advance(HOUR);
    both().await;
    let s = stats(&app, 1).await;
    let f = feed_on(&s, "2026-11-23", FEED).unwrap();
    assert_eq!(
        f["subscribers"], 12,
        "the verified fetcher's count; the forged 900 never"
    );
    assert_eq!(client(f, "Google Feedfetcher"), Some(12));
}

/// What the readership tables hold: rows of each, and the bytes of the sketches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StoreSize {
    days: u64,
    sketches: u64,
    sketch_bytes: u64,
    claims: u64,
    impolite: u64,
    /// The most sketch bytes, claims and impolite rows of one feed-day.
    max_feed_day: (u64, u64, u64),
}

fn store_size(path: &std::path::Path) -> StoreSize {
    let c = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let one = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64;
    StoreSize {
        days: one("SELECT count(*) FROM readership_days"),
        sketches: one("SELECT count(*) FROM readership_sketches"),
        sketch_bytes: one("SELECT coalesce(sum(length(sketch)), 0) FROM readership_sketches"),
        claims: one("SELECT count(*) FROM readership_claims"),
        impolite: one("SELECT count(*) FROM readership_impolite"),
        max_feed_day: (
            one(
                "SELECT coalesce(max(n), 0) FROM (SELECT sum(length(sketch)) AS n FROM readership_sketches GROUP BY feed, day)",
            ),
            one(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM readership_claims GROUP BY feed, day)",
            ),
            one(
                "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM readership_impolite GROUP BY feed, day)",
            ),
        ),
    }
}

/// Readers of many families, one new User-Agent and address each, a claim of an invented
/// aggregator every fifth, an impolite repeat every fourth.
async fn flood(app: &TestApp, paths: &[String], day: u32, round: u32, n: u32) {
    use futures::StreamExt;
    const FAMILIES: [&str; 11] = [
        "Miniflux/2.2",
        "NetNewsWire",
        "FreshRSS/1.24",
        "newsboat/2.36",
        "Liferea/1.15",
        "Thunderbird/128",
        "QuiteRSS/0.19",
        "Reeder/5",
        "Akregator/6",
        "selfoss/2.19",
        "Go-http-client/1.1",
    ];
    let requests = (0..n).flat_map(|k| {
        let ua = if k % 5 == 0 {
            format!("Flood{day}x{round}x{k}/1.0 (+https://flood.example/; {k} subscribers)")
        } else {
            format!(
                "{} (flood {day}.{round}.{k})",
                FAMILIES[k as usize % FAMILIES.len()]
            )
        };
        let addr = format!("10.{}.{}.{}", 16 * day + round, k / 250, k % 250);
        let path = paths[k as usize % paths.len()].clone();
        let repeat = if k % 4 == 0 { 2 } else { 1 };
        std::iter::repeat_n((path, ua, addr), repeat)
    });
    futures::stream::iter(requests)
        .for_each_concurrent(32, |(path, ua, addr)| async move {
            let r = app
                .client
                .get(app.url(&path))
                .header("user-agent", ua)
                .header("x-forwarded-for", addr)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
        })
        .await;
}

#[tokio::test]
async fn a_flood_of_distinct_readers_leaves_the_store_and_memory_flat() {
    use bantin::store::readership::{MAX_CLAIMS, MAX_FAMILIES, MAX_IMPOLITE};
    /// Sketch bytes of one feed-day at most: all readers dense (3,087) and 8 family arrays full.
    const FEED_DAY_SKETCHES: u64 = 3 + 4 * 771 + MAX_FAMILIES as u64 * (3 + 4 * 128);
    /// What the aggregating task may hold (see the README: pending sketches, maps, caches).
    const HELD: usize = 16 << 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bantin.db");
    let db = format!("sqlite://{}", path.display());
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), Some(db)).await;
    let r = app.server.app.readership().clone();
    let config = &app.server.app.config();
    let paths: Vec<String> = bantin::feed::configured_feeds(config)
        .iter()
        .flat_map(|k| bantin::feed::Format::ALL.map(|f| k.path(config, f)))
        .collect();
    let feeds = paths.len() as u64;

    const DAYS: u32 = 3;
    const ROUNDS: u32 = 3;
    const PER_ROUND: u32 = 2000;
    let mut sizes = Vec::new();
    let mut held = Vec::new();
    for day in 0..DAYS {
        for round in 0..ROUNDS {
            flood(&app, &paths, day, round, PER_ROUND).await;
            r.flush().await.unwrap();
            clock.advance(std::time::Duration::from_secs(600));
            held.push(r.held_bytes());
            let s = store_size(&path);
            // Fixed space per feed-day, whatever the traffic.
            assert!(s.max_feed_day.0 <= FEED_DAY_SKETCHES, "{s:?}");
            assert!(s.max_feed_day.1 <= MAX_CLAIMS as u64, "{s:?}");
            assert!(s.max_feed_day.2 <= MAX_IMPOLITE as u64 + 1, "{s:?}");
            let feed_days = feeds * u64::from(day + 1);
            assert!(s.days <= feed_days, "{s:?}");
            assert!(s.sketches <= feed_days * (1 + MAX_FAMILIES as u64), "{s:?}");
            assert!(s.sketch_bytes <= feed_days * FEED_DAY_SKETCHES, "{s:?}");
            sizes.push(s);
        }
        clock.advance(std::time::Duration::from_secs(24 * 3600 - 1800));
    }
    // Every day's flood costs the same: the store grows per day, not per reader. (It used to
    // grow by one row per reader: 18,000 rows here.)
    let per_day: Vec<u64> = sizes
        .chunks(ROUNDS as usize)
        .scan(0, |prev, day| {
            let last = day.last().unwrap().sketch_bytes;
            let grew = last - *prev;
            *prev = last;
            Some(grew)
        })
        .collect();
    assert!(
        per_day.iter().all(|g| *g <= feeds * FEED_DAY_SKETCHES),
        "{per_day:?}"
    );
    let last = *sizes.last().unwrap();
    assert!(
        last.sketches + last.claims + last.impolite + last.days < 3 * feeds * 60,
        "{last:?}"
    );

    // The aggregator's memory: bounded at every step, and back to its caches after each write.
    assert!(r.held_peak_bytes() <= HELD, "{}", r.held_peak_bytes());
    assert!(held.iter().all(|h| *h <= 4 << 20), "{held:?}");

    // A year of figures and the gauge, in bounded answers.
    let body = app
        .client
        .get(app.url("/api/v1/stats?days=366"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.len() < 1 << 20, "{}", body.len());
    let year: Value = serde_json::from_str(&body).unwrap();
    let days = year["days"].as_array().unwrap();
    assert_eq!(days.len(), 366);
    let today = days.last().unwrap();
    assert!(today["feeds"].as_array().unwrap().len() <= 20);
    assert_eq!(today["feed_count"], feeds);
    assert_eq!(
        today["feeds_left_out"].as_u64().unwrap(),
        feeds - today["feeds"].as_array().unwrap().len() as u64
    );
    assert!(year["claims"].as_array().unwrap().len() <= 50);
    let series = app
        .get_text("/metrics")
        .await
        .lines()
        .filter(|l| l.starts_with("bantin_feed_subscribers{"))
        .count();
    assert!(series as u64 <= feeds, "only existing feeds: {series}");

    // A week and a day later the flood's sketches and claims are gone; its days keep their
    // closed figures in a row each.
    clock.advance(std::time::Duration::from_secs(8 * 24 * 3600));
    r.flush().await.unwrap();
    let after = store_size(&path);
    assert_eq!((after.sketches, after.claims), (0, 0), "{after:?}");
    assert!(after.days <= feeds * u64::from(DAYS + 7), "{after:?}");
}

#[tokio::test]
async fn the_estimate_stays_within_the_sketch_error() {
    // 3,000 distinct readers of one feed (behind the trusted proxy), over three flushes: the
    // sketch of all readers (p = 12) misses by at most 3 standard errors (1.04/64 each).
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), None).await;
    let r = app.server.app.readership().clone();
    const N: u32 = 3000;
    use futures::StreamExt;
    for round in 0..3u32 {
        futures::stream::iter((round * N / 3)..((round + 1) * N / 3))
            .for_each_concurrent(32, |i| {
                let app = &app;
                async move {
                    let addr = format!("10.1.{}.{}", i / 250, i % 250);
                    poll(app, FEED, MINIFLUX, &addr, None, None).await;
                }
            })
            .await;
        r.flush().await.unwrap();
    }
    let s = stats(&app, 1).await;
    let got = subscribers(&s, "2026-11-23", FEED) as f64;
    let err = 3.0 * 1.04 / 64.0 * f64::from(N);
    assert!((got - f64::from(N)).abs() <= err, "{got} for {N}");
    let f = feed_on(&s, "2026-11-23", FEED).unwrap();
    assert_eq!(
        client(f, "Miniflux"),
        Some(got as u64),
        "the family's share adds up to the headline"
    );
}
