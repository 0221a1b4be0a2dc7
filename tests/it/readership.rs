//! Readership: every feed answer is counted (200 and 304), subscribers follow the FeedPress rules
//! over a rolling week (scripted with a manual clock), counts survive a restart, replicas sharing
//! PostgreSQL add up, and `/stats` shows it to the newsroom.

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
    let r = app
        .client
        .get(app.url(&format!("/api/v1/stats?days={days}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Readership figures are the newsroom's: no shared or browser cache keeps them.
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    r.json().await.unwrap()
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

#[tokio::test]
async fn a_scripted_week_of_polls() {
    // Noon in Vietnam on Monday 23 November 2026.
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), None).await;
    let r = app.server.app.readership.clone();

    // Day 1: five aggregators, a partner, two readers (one polling twice, the second time
    // conditionally), a browser and a search engine.
    for ua in [FEEDLY, INOREADER, NEWSBLUR, FEEDBIN, OLD_READER] {
        poll(&app, FEED, ua, "203.0.113.10", None, None).await;
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
    assert_eq!(day1["polls"], 11, "browsers and bots are polls");
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
    for _ in 0..3 {
        poll(&app, FEED, FEEDLY, "203.0.113.10", None, None).await;
    }
    poll(&app, "/en/atom.xml", MINIFLUX, "198.51.100.1", None, None).await;
    // No explicit flush: a graceful shutdown writes what the workers counted.
    app.server.shutdown().await.unwrap();

    let app = spawn_counting(Some(clock), Some(db)).await;
    let s = stats(&app, 1).await;
    let vi = feed_on(&s, "2026-11-23", FEED).unwrap();
    assert_eq!(vi["polls"], 3);
    assert_eq!(vi["subscribers"], 131);
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
    poll(&a, FEED, FEEDLY, "203.0.113.10", None, None).await;
    clock.advance(std::time::Duration::from_secs(5));
    poll(&b, FEED, FEEDLY, "203.0.113.10", None, None).await;
    a.server.app.readership.flush().await.unwrap();
    b.server.app.readership.flush().await.unwrap();
    // A second flush of each adds only what is new (nothing is counted twice).
    a.server.app.readership.flush().await.unwrap();
    b.server.app.readership.flush().await.unwrap();

    for app in [&a, &b] {
        let s = stats(app, 1).await;
        let f = feed_on(&s, "2026-11-23", FEED).unwrap();
        assert_eq!(f["polls"], 3 + 2 + 2 + 2, "polls of both replicas add up");
        assert_eq!(
            f["subscribers"],
            131 + 3,
            "Feedly once, the shared reader once, two other readers"
        );
        assert_eq!(client(f, "Miniflux"), Some(1));
        assert_eq!(client(f, "NetNewsWire"), Some(2));
    }
    drop((a, b));
    drop_database(&db).await;
}

#[tokio::test]
async fn the_stats_page_shows_the_chart_and_the_numbers() {
    let clock = Arc::new(ManualClock::new(t("2026-11-23T05:00:00Z")));
    let app = spawn_counting(Some(clock.clone()), None).await;
    let first = poll(&app, FEED, FEEDLY, "203.0.113.10", None, None).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    for _ in 0..3 {
        poll(&app, FEED, FEEDLY, "203.0.113.10", None, Some(&etag)).await;
    }
    // An impolite poller: unconditional fetches in quick succession.
    for _ in 0..3 {
        poll(&app, FEED, "Hammer/0.1", "198.51.100.9", None, None).await;
    }
    app.server.app.readership.flush().await.unwrap();

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
    app.server.app.readership.flush().await.unwrap();
    let s = stats(&app, 1).await;
    assert!(s["days"][0]["feeds"].as_array().unwrap().is_empty());
}
