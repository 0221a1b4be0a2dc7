//! `[[sources]]`: upstream feeds polled from a real local HTTP server started by each test, with
//! a manual clock driving the schedule (no test sleeps through a poll interval).

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, Uri};
use bantin::clock::{Clock, ManualClock};
use bantin::config::{SourceConfig, SourceContent, UpstreamConfig};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::helpers::{Options, TOKEN, TestApp, feed_rs, spawn, strict_xml};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const T0: &str = "2026-01-10T00:00:00Z";

/// What the upstream answers on a path.
#[derive(Clone)]
enum Reply {
    Feed {
        body: String,
        etag: Option<String>,
        last_modified: Option<String>,
    },
    /// A document's bytes as they are, with its own `Content-Type`.
    Doc {
        body: Vec<u8>,
        content_type: String,
    },
    Status(u16, Vec<(&'static str, String)>),
    Redirect(u16, String),
    /// 200 with `Content-Encoding: gzip` that inflates to 100 MB.
    GzipBomb,
    /// 200 with a 100 MB body.
    Huge,
    /// Accepts the request and never answers.
    Hang,
    /// A feed answered after a delay (to see how many requests overlap).
    Slow(Duration, String),
}

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    accept: String,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    user_agent: String,
}

#[derive(Clone, Default)]
struct Upstream {
    replies: Arc<Mutex<HashMap<String, Reply>>>,
    hits: Arc<Mutex<Vec<Hit>>>,
    /// Requests being answered now, and the most at once.
    active: Arc<std::sync::atomic::AtomicUsize>,
    max_active: Arc<std::sync::atomic::AtomicUsize>,
    base: String,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = Upstream {
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..Default::default()
        };
        let router = axum::Router::new().fallback(answer).with_state(up.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        up
    }

    fn set(&self, path: &str, reply: Reply) {
        self.replies.lock().unwrap().insert(path.into(), reply);
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|h| h.path == path)
            .cloned()
            .collect()
    }
}

async fn answer(State(up): State<Upstream>, uri: Uri, headers: HeaderMap) -> Response<Body> {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let path = uri.path().to_string();
    up.hits.lock().unwrap().push(Hit {
        path: path.clone(),
        accept: h("accept").unwrap_or_default(),
        if_none_match: h("if-none-match"),
        if_modified_since: h("if-modified-since"),
        user_agent: h("user-agent").unwrap_or_default(),
    });
    let reply = up.replies.lock().unwrap().get(&path).cloned();
    let mut r = Response::builder();
    match reply {
        None => r.status(404).body(Body::empty()).unwrap(),
        Some(Reply::Feed {
            body,
            etag,
            last_modified,
        }) => {
            let inm = h("if-none-match");
            let fresh = match (&inm, &etag) {
                (Some(i), Some(e)) => i == e,
                (None, _) => last_modified.is_some() && h("if-modified-since") == last_modified,
                _ => false,
            };
            if let Some(e) = &etag {
                r = r.header("etag", e);
            }
            if let Some(lm) = &last_modified {
                r = r.header("last-modified", lm);
            }
            if fresh {
                r.status(304).body(Body::empty()).unwrap()
            } else {
                r.header("content-type", "application/xml")
                    .body(Body::from(body))
                    .unwrap()
            }
        }
        Some(Reply::Doc { body, content_type }) => r
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap(),
        Some(Reply::Status(code, headers)) => {
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.status(code).body(Body::from("no")).unwrap()
        }
        Some(Reply::Redirect(code, to)) => r
            .status(code)
            .header("location", to)
            .body(Body::empty())
            .unwrap(),
        Some(Reply::GzipBomb) => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let zeros = vec![b' '; 1 << 20];
            for _ in 0..100 {
                gz.write_all(&zeros).unwrap();
            }
            r.header("content-encoding", "gzip")
                .header("content-type", "application/rss+xml")
                .body(Body::from(gz.finish().unwrap()))
                .unwrap()
        }
        Some(Reply::Huge) => {
            let chunk = bytes::Bytes::from(vec![b'<'; 1 << 20]);
            let stream = futures::stream::iter(
                (0..100).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            r.body(Body::from_stream(stream)).unwrap()
        }
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            r.body(Body::empty()).unwrap()
        }
        Some(Reply::Slow(delay, body)) => {
            use std::sync::atomic::Ordering::SeqCst;
            let now = up.active.fetch_add(1, SeqCst) + 1;
            up.max_active.fetch_max(now, SeqCst);
            tokio::time::sleep(delay).await;
            up.active.fetch_sub(1, SeqCst);
            r.body(Body::from(body)).unwrap()
        }
    }
}

fn rss(items: &[(&str, &str, &str)]) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Báo Tây Ninh</title><link>https://baotayninh.example/</link><description>Tin</description>"#,
    );
    for (guid, title, date) in items {
        s.push_str(&format!(
            "<item><guid>{guid}</guid><title>{title}</title><link>https://baotayninh.example/{guid}.html</link><description>Tóm tắt {title}</description><pubDate>{date}</pubDate></item>"
        ));
    }
    s.push_str("</channel></rss>");
    s
}

fn source(id: &str, url: &str, every: &str) -> SourceConfig {
    SourceConfig {
        id: id.into(),
        url: url::Url::parse(url).unwrap(),
        lang: "vi".into(),
        category: "xa-hoi".into(),
        every: humantime::parse_duration(every).unwrap(),
        content: SourceContent::Full,
    }
}

struct Setup {
    app: TestApp,
    clock: Arc<ManualClock>,
}

async fn start(
    sources: Vec<SourceConfig>,
    upstream: UpstreamConfig,
    clock: Arc<ManualClock>,
    database_url: Option<String>,
) -> Setup {
    let app = spawn(Options {
        articles_dir: None,
        clock: Some(clock.clone() as Arc<dyn Clock>),
        sources,
        upstream: Some(upstream),
        database_url,
        ..Default::default()
    })
    .await;
    Setup { app, clock }
}

impl Setup {
    /// Waits until every poll due now has finished.
    async fn settle(&self) {
        let poller = self.app.server.poller.as_ref().expect("sources configured");
        tokio::time::timeout(Duration::from_secs(60), poller.settled(self.clock.now()))
            .await
            .expect("the poller settles");
    }

    async fn advance(&self, d: Duration) {
        self.clock.advance(d);
        self.settle().await;
    }

    async fn sources(&self) -> HashMap<String, Value> {
        let r = self
            .app
            .client
            .get(self.app.url("/api/v1/sources"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "private, no-store");
        let v: Value = r.json().await.unwrap();
        v["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
            .collect()
    }

    async fn source(&self, id: &str) -> Value {
        self.sources().await.remove(id).unwrap()
    }

    /// The ids and titles of the entries of the society feed, from the JSON Feed.
    async fn entries(&self) -> Vec<(String, String)> {
        let v: Value =
            serde_json::from_str(&self.app.get_text("/vi/xa-hoi/feed.json").await).unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().to_string(),
                    i["title"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

fn time_of(v: &Value) -> DateTime<Utc> {
    let s = v.as_str().expect("a time");
    assert!(s.ends_with("+07:00"), "{s}");
    t(s)
}

fn fast_upstream() -> UpstreamConfig {
    UpstreamConfig {
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        max_backoff: Duration::from_secs(20),
        ..Default::default()
    }
}

#[tokio::test]
async fn polls_import_then_304_then_edits_update_and_nothing_duplicates() {
    let up = Upstream::start().await;
    let v1 = rss(&[
        ("tn-1", "Cầu mới", "Fri, 09 Jan 2026 08:00:00 +0700"),
        ("tn-2", "Đường mới", "Fri, 09 Jan 2026 09:00:00 +0700"),
        ("tn-3", "Chợ mới", "Fri, 09 Jan 2026 10:00:00 +0700"),
    ]);
    let lm = "Fri, 09 Jan 2026 03:00:00 GMT".to_string();
    up.set(
        "/rss.xml",
        Reply::Feed {
            body: v1,
            etag: Some("\"v1\"".into()),
            last_modified: Some(lm.clone()),
        },
    );
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = start(
        vec![source("bao-tay-ninh", &up.url("/rss.xml"), "2s")],
        fast_upstream(),
        clock,
        None,
    )
    .await;
    s.settle().await;

    // First poll: unconditional, every item imported, credited in all three formats.
    let hits = up.hits("/rss.xml");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].if_none_match, None);
    assert!(
        hits[0].accept.starts_with("application/rss+xml"),
        "{}",
        hits[0].accept
    );
    let ua = &hits[0].user_agent;
    assert!(
        ua.starts_with("bantin/") && ua.contains("https://baolongan.example/"),
        "{ua}"
    );
    let src = s.source("bao-tay-ninh").await;
    assert_eq!(src["state"], "ok");
    assert_eq!(src["items"], 3);
    assert_eq!(time_of(&src["last_success"]), t(T0));
    assert_eq!(s.entries().await.len(), 3);

    let rss_body = s.app.get_text("/vi/xa-hoi/rss.xml").await;
    let doc = strict_xml(&rss_body, "rss");
    let sources: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("source"))
        .collect();
    assert_eq!(sources.len(), 3);
    assert_eq!(
        sources[0].attribute("url"),
        Some(up.url("/rss.xml").as_str())
    );
    assert_eq!(sources[0].text(), Some("Báo Tây Ninh"));
    let pub_dates: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("pubDate"))
        .map(|n| n.text().unwrap().to_string())
        .collect();
    assert!(
        pub_dates.iter().all(|d| d.ends_with("+0700")),
        "{pub_dates:?}"
    );
    assert!(
        pub_dates.contains(&"Fri, 9 Jan 2026 10:00:00 +0700".to_string()),
        "{pub_dates:?}"
    );
    feed_rs(rss_body.as_bytes(), "rss");

    let atom = s.app.get_text("/vi/xa-hoi/atom.xml").await;
    let doc = strict_xml(&atom, "atom");
    let src_el = doc
        .descendants()
        .find(|n| n.has_tag_name(("http://www.w3.org/2005/Atom", "source")))
        .expect("atom:source");
    for child in ["id", "title", "updated", "link"] {
        assert!(
            src_el
                .children()
                .any(|c| c.has_tag_name(("http://www.w3.org/2005/Atom", child))),
            "atom:source has {child}"
        );
    }
    feed_rs(atom.as_bytes(), "atom");
    let json: Value = serde_json::from_str(&s.app.get_text("/vi/xa-hoi/feed.json").await).unwrap();
    assert_eq!(json["items"][0]["_source"]["title"], "Báo Tây Ninh");
    assert_eq!(json["items"][0]["_source"]["feed_url"], up.url("/rss.xml"));
    assert_eq!(
        json["items"][0]["_source"]["home_page_url"],
        "https://baotayninh.example/"
    );

    // Second poll: conditional with both validators, 304, nothing written.
    let etag_before = s.app.get("/vi/xa-hoi/rss.xml").await.headers()["etag"].clone();
    s.advance(Duration::from_millis(2200)).await;
    let hits = up.hits("/rss.xml");
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!(hits[1].if_modified_since.as_deref(), Some(lm.as_str()));
    assert_eq!(
        s.app.get("/vi/xa-hoi/rss.xml").await.headers()["etag"],
        etag_before
    );

    // An edit (same guid, new title) and a new item; the ETag changes, Last-Modified stays.
    up.set(
        "/rss.xml",
        Reply::Feed {
            body: rss(&[
                ("tn-1", "Cầu mới", "Fri, 09 Jan 2026 08:00:00 +0700"),
                (
                    "tn-2",
                    "Đường mới đã thông xe",
                    "Fri, 09 Jan 2026 09:00:00 +0700",
                ),
                ("tn-3", "Chợ mới", "Fri, 09 Jan 2026 10:00:00 +0700"),
                ("tn-4", "Trường mới", "Fri, 09 Jan 2026 11:00:00 +0700"),
            ]),
            etag: Some("\"v2\"".into()),
            last_modified: Some(lm.clone()),
        },
    );
    for _ in 0..8 {
        s.advance(Duration::from_millis(2200)).await;
    }
    let hits = up.hits("/rss.xml");
    assert_eq!(hits.len(), 10, "one request per interval");
    // The stored ETag followed the body even though Last-Modified did not change.
    assert!(
        hits[3..]
            .iter()
            .all(|h| h.if_none_match.as_deref() == Some("\"v2\""))
    );
    let entries = s.entries().await;
    let ids: BTreeSet<_> = entries.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(entries.len(), 4, "{entries:?}");
    assert_eq!(ids.len(), 4);
    assert!(entries.iter().any(|(_, t)| t == "Đường mới đã thông xe"));
    assert!(!entries.iter().any(|(_, t)| t == "Đường mới"));
    assert_eq!(s.source("bao-tay-ninh").await["items"], 4);

    let metrics = s.app.get_text("/metrics").await;
    assert!(
        metrics.contains(
            r#"bantin_source_polls_total{source="bao-tay-ninh",outcome="not_modified"} 8"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"bantin_source_polls_total{source="bao-tay-ninh",outcome="updated"} 2"#)
    );
}

#[tokio::test]
async fn retry_after_is_honoured_failures_back_off_and_a_restart_resumes() {
    let up = Upstream::start().await;
    up.set(
        "/busy.xml",
        Reply::Status(429, vec![("retry-after", "120".into())]),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("b.db").display());
    let clock = Arc::new(ManualClock::new(t(T0)));
    let sources = vec![source("busy", &up.url("/busy.xml"), "2s")];
    let s = start(
        sources.clone(),
        fast_upstream(),
        clock.clone(),
        Some(db.clone()),
    )
    .await;
    s.settle().await;
    assert_eq!(up.hits("/busy.xml").len(), 1);
    let src = s.source("busy").await;
    assert_eq!(src["state"], "backoff");
    assert_eq!(
        time_of(&src["next_poll"]),
        t(T0) + chrono::Duration::seconds(120)
    );

    // Two seconds at a time to 118 s: nothing. A restart on the way changes nothing.
    for _ in 0..30 {
        s.advance(Duration::from_secs(2)).await;
    }
    drop(s);
    let s = start(
        sources.clone(),
        fast_upstream(),
        clock.clone(),
        Some(db.clone()),
    )
    .await;
    for _ in 0..29 {
        s.advance(Duration::from_secs(2)).await;
    }
    assert_eq!(clock.now(), t(T0) + chrono::Duration::seconds(118));
    assert_eq!(up.hits("/busy.xml").len(), 1, "no request before 120 s");
    s.advance(Duration::from_secs(2)).await;
    assert_eq!(up.hits("/busy.xml").len(), 2);

    // Five (more) failures: growing, jittered delays up to the cap, then recovery.
    up.set("/busy.xml", Reply::Status(500, vec![]));
    let mut delays = Vec::new();
    for _ in 0..6 {
        // API times are whole seconds: step just past the due instant.
        let next = time_of(&s.source("busy").await["next_poll"]) + chrono::Duration::seconds(1);
        clock.set(next);
        s.settle().await;
        let after = s.source("busy").await;
        assert_eq!(after["state"], "backoff");
        let attempt = time_of(&after["last_attempt"]);
        delays.push((time_of(&after["next_poll"]) - attempt).num_seconds());
    }
    assert_eq!(s.source("busy").await["consecutive_failures"], 8);
    // Failures 3..=8 of a 2 s source: 8, 16, then the 20 s cap, each cut by up to a fifth.
    assert!(delays.iter().all(|d| *d <= 20), "{delays:?}");
    assert!(delays[0] < delays[1] && delays[1] < delays[2], "{delays:?}");
    assert!(delays[5] >= 15, "{delays:?}");
    let unjittered = [8, 16, 20, 20, 20, 20];
    assert!(
        delays.iter().zip(unjittered).any(|(d, u)| *d + 1 < u),
        "jittered: {delays:?}"
    );
    up.set(
        "/busy.xml",
        Reply::Feed {
            body: rss(&[("b-1", "Trở lại", "Fri, 09 Jan 2026 08:00:00 +0700")]),
            etag: Some("\"b1\"".into()),
            last_modified: None,
        },
    );
    let next = time_of(&s.source("busy").await["next_poll"]) + chrono::Duration::seconds(1);
    clock.set(next);
    s.settle().await;
    let src = s.source("busy").await;
    assert_eq!(src["state"], "ok");
    assert_eq!(src["consecutive_failures"], 0);
    assert_eq!(src["last_error"], Value::Null);

    // A restart after a success resumes with a conditional request, not a refetch.
    drop(s);
    let s = start(sources, fast_upstream(), clock.clone(), Some(db)).await;
    s.advance(Duration::from_secs(3)).await;
    let hits = up.hits("/busy.xml");
    assert_eq!(
        hits.last().unwrap().if_none_match.as_deref(),
        Some("\"b1\"")
    );
}

#[tokio::test]
async fn a_body_that_fails_to_parse_keeps_the_last_good_validators() {
    let up = Upstream::start().await;
    let good = rss(&[("p-1", "Tốt", "Fri, 09 Jan 2026 08:00:00 +0700")]);
    up.set(
        "/p.xml",
        Reply::Feed {
            body: good,
            etag: Some("\"good\"".into()),
            last_modified: None,
        },
    );
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = start(
        vec![source("p", &up.url("/p.xml"), "2s")],
        fast_upstream(),
        clock.clone(),
        None,
    )
    .await;
    s.settle().await;
    assert_eq!(s.source("p").await["state"], "ok");
    // The upstream breaks: a new ETag on a body that is not a feed. The upstream would answer
    // that ETag with a 304, so storing it would turn the source back to "ok" with nothing read.
    up.set(
        "/p.xml",
        Reply::Feed {
            // (Damaged feeds are recovered; an HTML page is no feed at all.)
            body: "<!DOCTYPE html><html><head><title>502</title></head><body>Bad gateway".into(),
            etag: Some("\"broken\"".into()),
            last_modified: None,
        },
    );
    for _ in 0..3 {
        let next = time_of(&s.source("p").await["next_poll"]) + chrono::Duration::seconds(1);
        clock.set(next);
        s.settle().await;
        assert_eq!(s.source("p").await["state"], "error");
    }
    let hits = up.hits("/p.xml");
    assert_eq!(hits.len(), 4);
    assert!(
        hits[1..]
            .iter()
            .all(|h| h.if_none_match.as_deref() == Some("\"good\"")),
        "{hits:?}"
    );
}

#[tokio::test]
async fn a_skipped_item_is_named_and_the_rest_stored_even_after_a_304() {
    let up = Upstream::start().await;
    let body = r#"<rss version="2.0"><channel><title>Nửa</title><link>https://nua.example/</link>
<item><guid>ok-1</guid><title>Được</title><link>https://nua.example/1</link></item>
<item><guid>bad-2</guid><title>Xấu</title><link>javascript:alert(1)</link></item></channel></rss>"#;
    up.set(
        "/half.xml",
        Reply::Feed {
            body: body.into(),
            etag: Some("\"h\"".into()),
            last_modified: None,
        },
    );
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = start(
        vec![source("half", &up.url("/half.xml"), "2s")],
        fast_upstream(),
        clock,
        None,
    )
    .await;
    s.settle().await;
    for poll in 0..2 {
        let src = s.source("half").await;
        assert_eq!(src["state"], "ok");
        assert_eq!(src["items"], 1);
        let note = src["last_error"].as_str().unwrap_or_default();
        assert!(
            note.starts_with("1 item(s) skipped; item 2: url: "),
            "poll {poll}: {note}"
        );
        s.advance(Duration::from_millis(2200)).await;
    }
    assert_eq!(
        up.hits("/half.xml")[1].if_none_match.as_deref(),
        Some("\"h\"")
    );
}

#[tokio::test]
async fn one_upstream_host_gets_at_most_per_host_requests_at_once() {
    let up = Upstream::start().await;
    let ids: Vec<String> = (0..8).map(|i| format!("h{i}")).collect();
    for id in &ids {
        up.set(
            &format!("/{id}.xml"),
            Reply::Slow(
                Duration::from_millis(200),
                rss(&[(id.as_str(), "Chậm", "Fri, 09 Jan 2026 08:00:00 +0700")]),
            ),
        );
    }
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = start(
        ids.iter()
            .map(|id| source(id, &up.url(&format!("/{id}.xml")), "1h"))
            .collect(),
        UpstreamConfig {
            per_host: 2,
            ..fast_upstream()
        },
        clock,
        None,
    )
    .await;
    s.settle().await;
    let all = s.sources().await;
    assert!(
        ids.iter().all(|id| all[id.as_str()]["state"] == "ok"),
        "{all:?}"
    );
    assert_eq!(
        up.max_active.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "never more than per_host requests at once to one host"
    );
}

#[tokio::test]
async fn a_permanent_redirect_moves_the_source_and_410_stops_it() {
    let up = Upstream::start().await;
    let feed = Reply::Feed {
        body: rss(&[("m-1", "Chuyển nhà", "Fri, 09 Jan 2026 08:00:00 +0700")]),
        etag: Some("\"m\"".into()),
        last_modified: None,
    };
    up.set("/old.xml", Reply::Redirect(301, "/new.xml".into()));
    up.set("/new.xml", feed.clone());
    up.set("/temp.xml", Reply::Redirect(302, "/new.xml".into()));
    up.set("/gone.xml", Reply::Status(410, vec![]));
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = start(
        vec![
            source("moved", &up.url("/old.xml"), "2s"),
            source("temp", &up.url("/temp.xml"), "2s"),
            source("gone", &up.url("/gone.xml"), "2s"),
        ],
        fast_upstream(),
        clock,
        None,
    )
    .await;
    s.settle().await;
    let all = s.sources().await;
    assert_eq!(all["moved"]["url"], up.url("/new.xml"));
    assert_eq!(all["moved"]["state"], "ok");
    assert_eq!(
        all["temp"]["url"],
        up.url("/temp.xml"),
        "a 302 does not move it"
    );
    assert_eq!(all["gone"]["state"], "gone");
    assert_eq!(all["gone"]["next_poll"], Value::Null);
    assert!(all["gone"]["last_error"].as_str().unwrap().contains("410"));
    for _ in 0..3 {
        s.advance(Duration::from_millis(2200)).await;
    }
    assert_eq!(
        up.hits("/old.xml").len(),
        1,
        "the new URL is polled directly"
    );
    assert_eq!(up.hits("/temp.xml").len(), 4);
    assert_eq!(
        up.hits("/gone.xml").len(),
        1,
        "a gone source is not polled again"
    );
}

#[tokio::test]
async fn hostile_upstreams_are_recorded_errors_or_clean_articles_and_never_stall_the_others() {
    let up = Upstream::start().await;
    up.set(
        "/malformed.xml",
        Reply::Feed {
            // Recoverable damage is read (see the corpus test); an HTML page is not a feed.
            body: "<!DOCTYPE html><html><body><p>Không tìm thấy trang".into(),
            etag: None,
            last_modified: None,
        },
    );
    up.set("/huge.xml", Reply::Huge);
    up.set("/bomb.xml", Reply::GzipBomb);
    up.set("/hang.xml", Reply::Hang);
    let many: Vec<(String, String, String)> = (0..10_000)
        .map(|i| {
            (
                format!("n-{i}"),
                format!("Tin số {i}"),
                "Fri, 09 Jan 2026 08:00:00 +0700".to_string(),
            )
        })
        .collect();
    let many_ref: Vec<(&str, &str, &str)> = many
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    up.set(
        "/many.xml",
        Reply::Feed {
            body: rss(&many_ref),
            etag: None,
            last_modified: None,
        },
    );
    let hostile = r#"<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Xấu</title><link>https://xau.example/</link>
<item><guid>h-1</guid><title>Kịch bản &lt;script&gt;</title><link>/bai/1.html</link>
<content:encoded><![CDATA[<p onclick="steal()">Xin chào <a href="/khac.html">khác</a><img src="anh.jpg"></p><script>alert(1)</script>]]></content:encoded>
<pubDate>2026-01-09T08:00:00</pubDate></item>
<item><guid>h-2</guid><title>Giờ New York</title><link>https://xau.example/2</link><pubDate>Fri, 09 Jan 2026 08:00:00 -0500</pubDate></item>
</channel></rss>"#;
    up.set(
        "/hostile.xml",
        Reply::Feed {
            body: hostile.into(),
            etag: None,
            last_modified: None,
        },
    );
    let noguid = r#"<rss version="2.0"><channel><title>Không guid</title><link>https://ng.example/</link>
<item><title>Một</title><link>https://ng.example/1</link></item><item><title>Hai</title><description>Chỉ có mô tả</description></item></channel></rss>"#;
    up.set(
        "/noguid.xml",
        Reply::Feed {
            body: noguid.into(),
            etag: None,
            last_modified: None,
        },
    );
    up.set(
        "/good.xml",
        Reply::Feed {
            body: rss(&[("g-1", "Tin tốt", "Fri, 09 Jan 2026 08:00:00 +0700")]),
            etag: None,
            last_modified: None,
        },
    );
    let clock = Arc::new(ManualClock::new(t(T0)));
    let ids = [
        "malformed",
        "huge",
        "bomb",
        "hang",
        "many",
        "hostile",
        "noguid",
        "good",
    ];
    // Two polls at once and an 8 s deadline: the hanging upstream holds one slot for all of it
    // while the other slot works through every other source.
    let upstream = UpstreamConfig {
        concurrency: 2,
        timeout: Duration::from_secs(8),
        ..fast_upstream()
    };
    let s = start(
        ids.iter()
            .map(|id| {
                let mut src = source(id, &up.url(&format!("/{id}.xml")), "1h");
                // Ten thousand items get a feed of their own, so the others are quick to page.
                if *id == "many" {
                    src.category = "kinh-te".into();
                }
                src
            })
            .collect(),
        upstream,
        clock,
        None,
    )
    .await;
    let others = [
        "malformed",
        "huge",
        "bomb",
        "many",
        "hostile",
        "noguid",
        "good",
    ];
    let waited = std::time::Instant::now();
    loop {
        let all = s.sources().await;
        if others.iter().all(|id| all[*id]["state"] != "pending") {
            assert_eq!(
                all["hang"]["state"], "pending",
                "every other source was polled while the hanging one was still in flight"
            );
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(8),
            "the others stalled behind the hanging upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.settle().await;
    let all = s.sources().await;
    let state = |id: &str| all[id]["state"].as_str().unwrap().to_string();
    let error = |id: &str| all[id]["last_error"].as_str().unwrap_or("").to_string();
    assert_eq!(state("malformed"), "error");
    assert!(
        error("malformed").contains("not a feed") && error("malformed").contains("<html>"),
        "{}",
        error("malformed")
    );
    assert_eq!(state("huge"), "error");
    assert!(
        error("huge").contains("larger than 10485760 bytes"),
        "{}",
        error("huge")
    );
    assert_eq!(state("bomb"), "error");
    assert!(error("bomb").contains("larger than"), "{}", error("bomb"));
    assert_eq!(state("hang"), "backoff");
    assert!(error("hang").contains("within 8s"), "{}", error("hang"));
    for ok in ["many", "hostile", "noguid", "good"] {
        assert_eq!(state(ok), "ok", "{ok}: {}", error(ok));
    }
    assert_eq!(all["many"]["items"], 10_000);

    // The hostile items are clean in every format; naive and foreign-offset times are right.
    let hostile_id = all_ids_with_prefix(&s, "hostile.").await;
    assert_eq!(hostile_id.len(), 2);
    for id in &hostile_id {
        let a = article(&s, id).await;
        let html = a["content_html"].as_str().unwrap();
        assert!(
            !html.contains("script") && !html.contains("onclick"),
            "{html}"
        );
        if a["title"] == "Kịch bản <script>" {
            // A relative link resolves against the feed's own URL, the body's against the item's.
            assert_eq!(a["url"], up.url("/bai/1.html"));
            assert!(
                html.contains(&format!("href=\"{}\"", up.url("/khac.html"))),
                "{html}"
            );
            assert!(
                html.contains(&format!("src=\"{}\"", up.url("/bai/anh.jpg"))),
                "{html}"
            );
            // Naive: site-local 08:00 is 01:00 UTC.
            assert_eq!(a["published_at"], "2026-01-09T08:00:00+07:00");
        } else {
            assert_eq!(a["published_at"], "2026-01-09T20:00:00+07:00");
        }
    }
    let noguid_ids = all_ids_with_prefix(&s, "noguid.").await;
    assert_eq!(noguid_ids.len(), 2);

    // Every document of the society feed is still well formed and readable.
    for path in ["/vi/xa-hoi/rss.xml", "/vi/xa-hoi/atom.xml"] {
        let body = s.app.get_text(path).await;
        strict_xml(&body, path);
        feed_rs(body.as_bytes(), path);
    }

    // A second poll of the undated feed adds nothing.
    s.advance(Duration::from_secs(3700)).await;
    assert_eq!(all_ids_with_prefix(&s, "noguid.").await, noguid_ids);
    assert_eq!(s.source("noguid").await["items"], 2);
}

/// Ids of stored articles starting with `prefix`, read through the society feed's pages.
async fn all_ids_with_prefix(s: &Setup, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut url = Some(s.app.url("/vi/xa-hoi/feed.json"));
    while let Some(u) = url {
        let v: Value = s
            .app
            .client
            .get(&u)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for i in v["items"].as_array().unwrap() {
            let id = i["id"].as_str().unwrap();
            // Entry ids are tag: URIs ending in the article id.
            let article = id.rsplit(':').next().unwrap();
            if article.starts_with(prefix) {
                out.push(article.to_string());
            }
        }
        url = v["next_url"].as_str().map(String::from);
    }
    out.sort();
    out
}

async fn article(s: &Setup, id: &str) -> Value {
    let r = s
        .app
        .client
        .get(s.app.url(&format!("/api/v1/articles/{id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{id}");
    r.json().await.unwrap()
}

#[tokio::test]
#[ignore = "needs BANTIN_TEST_DATABASE_URL"]
async fn two_replicas_on_postgres_poll_each_interval_once() {
    use bantin::store::postgres::test_support::{drop_database, fresh_database};
    let db = fresh_database().await;
    let up = Upstream::start().await;
    up.set(
        "/shared.xml",
        Reply::Feed {
            body: rss(&[("s-1", "Chung", "Fri, 09 Jan 2026 08:00:00 +0700")]),
            etag: Some("\"s\"".into()),
            last_modified: None,
        },
    );
    let clock = Arc::new(ManualClock::new(t(T0)));
    let sources = vec![source("shared", &up.url("/shared.xml"), "2s")];
    let a = start(
        sources.clone(),
        fast_upstream(),
        clock.clone(),
        Some(db.clone()),
    )
    .await;
    let b = start(sources, fast_upstream(), clock.clone(), Some(db.clone())).await;
    a.settle().await;
    b.settle().await;
    // 40 intervals (88 s): past the 60 s after which a replica that lost a claim reads the
    // schedule again and competes for every interval once more.
    for _ in 0..40 {
        clock.advance(Duration::from_millis(2200));
        a.settle().await;
        b.settle().await;
    }
    assert_eq!(
        up.hits("/shared.xml").len(),
        41,
        "one request per interval, not two"
    );
    // Both replicas serve the article.
    for s in [&a, &b] {
        assert_eq!(s.entries().await.len(), 1);
    }
    drop(a);
    drop(b);
    drop_database(&db).await;
}

/// An upstream that is not a feed at all: a local admin service on another loopback port.
async fn secret_service() -> Upstream {
    let secret = Upstream::start().await;
    secret.set(
        "/admin.xml",
        Reply::Feed {
            body: rss(&[(
                "s-1",
                "SECRET admin token = hunter2",
                "Fri, 09 Jan 2026 08:00:00 +0700",
            )]),
            etag: None,
            last_modified: None,
        },
    );
    secret
}

#[tokio::test]
async fn a_redirect_to_another_loopback_port_is_refused_and_its_body_never_published() {
    let up = Upstream::start().await;
    let secret = secret_service().await;
    up.set("/temp.xml", Reply::Redirect(302, secret.url("/admin.xml")));
    up.set("/moved.xml", Reply::Redirect(301, secret.url("/admin.xml")));
    up.set(
        "/mapped.xml",
        Reply::Redirect(
            302,
            secret
                .url("/admin.xml")
                .replace("127.0.0.1", "[::ffff:127.0.0.1]"),
        ),
    );
    // A name, judged by what it resolves to (in the resolver, so a rebinding gains nothing).
    up.set(
        "/named.xml",
        Reply::Redirect(
            302,
            secret.url("/admin.xml").replace("127.0.0.1", "localhost"),
        ),
    );
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = start(
        vec![
            source("temp", &up.url("/temp.xml"), "2s"),
            source("moved", &up.url("/moved.xml"), "2s"),
            source("mapped", &up.url("/mapped.xml"), "2s"),
            source("named", &up.url("/named.xml"), "2s"),
            // Configured at the service's own loopback origin: the operator's choice, allowed.
            source("own", &secret.url("/admin.xml"), "2s"),
        ],
        fast_upstream(),
        clock,
        None,
    )
    .await;
    s.settle().await;
    let all = s.sources().await;
    for id in ["temp", "moved", "mapped", "named"] {
        let src = &all[id];
        assert_eq!(src["state"], "refused", "{id}: {src}");
        let why = src["last_error"].as_str().unwrap();
        assert!(
            why.contains("refused a redirect to http://") && why.contains("loopback"),
            "{id}: {why}"
        );
        assert_eq!(src["items"], 0);
        assert!(
            // The backoff's first delay: `every` less at most a fifth of jitter (shown to the
            // second).
            time_of(&src["next_poll"]) >= t(T0) + chrono::Duration::seconds(1),
            "{id}: retried after a delay, not in a loop: {src}"
        );
    }
    assert_eq!(
        all["moved"]["url"],
        up.url("/moved.xml"),
        "the 301 is not remembered"
    );
    // Only the source configured there fetched the service; no redirect reached it.
    assert_eq!(secret.hits("/admin.xml").len(), 1);
    assert_eq!(all["own"]["state"], "ok", "{}", all["own"]);
    assert_eq!(all["own"]["items"], 1);

    // The refused sources published nothing: the one SECRET item is the configured source's.
    let ids = all_ids_with_prefix(&s, "").await;
    assert_eq!(
        ids.iter().filter(|i| i.starts_with("own.")).count(),
        1,
        "{ids:?}"
    );
    for id in ["temp.", "moved.", "mapped.", "named."] {
        assert!(!ids.iter().any(|i| i.starts_with(id)), "{id} {ids:?}");
    }

    // Still refused on the next attempt, which comes after the backoff.
    s.advance(Duration::from_secs(60)).await;
    let temp = s.source("temp").await;
    assert_eq!(temp["state"], "refused");
    assert_eq!(temp["consecutive_failures"], 2);
    assert_eq!(secret.hits("/admin.xml").len(), 2, "only `own` polls it");
}

#[tokio::test]
async fn allow_private_lets_a_redirect_reach_another_loopback_port() {
    let up = Upstream::start().await;
    let secret = secret_service().await;
    up.set("/temp.xml", Reply::Redirect(302, secret.url("/admin.xml")));
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = start(
        vec![source("temp", &up.url("/temp.xml"), "2s")],
        UpstreamConfig {
            allow_private: true,
            ..fast_upstream()
        },
        clock,
        None,
    )
    .await;
    s.settle().await;
    let src = s.source("temp").await;
    assert_eq!(src["state"], "ok", "{src}");
    assert_eq!(src["items"], 1);
    assert_eq!(secret.hits("/admin.xml").len(), 1);
}

#[tokio::test]
async fn a_source_pointing_at_bantin_itself_is_refused_and_a_301_there_not_remembered() {
    const PUBLIC: &str = "https://feeds.baolongan.example";
    let up = Upstream::start().await;
    up.set(
        "/to-public.xml",
        Reply::Redirect(301, format!("{PUBLIC}/vi/xa-hoi/rss.xml")),
    );
    let clock = Arc::new(ManualClock::new(t(T0)));
    let app = spawn(Options {
        articles_dir: Some(crate::helpers::sample_articles()),
        clock: Some(clock.clone() as Arc<dyn Clock>),
        public_url: Some(PUBLIC.into()),
        sources: vec![
            source("self", &format!("{PUBLIC}/vi/rss.xml"), "2s"),
            source("to-public", &up.url("/to-public.xml"), "2s"),
            // Answered later with a 301 to bantin's own listen address.
            source("to-listen", &up.url("/to-listen.xml"), "2s"),
        ],
        // Even with private targets allowed, bantin itself never is.
        upstream: Some(UpstreamConfig {
            allow_private: true,
            ..fast_upstream()
        }),
        ..Default::default()
    })
    .await;
    let s = Setup { app, clock };
    s.settle().await;
    up.set(
        "/to-listen.xml",
        Reply::Redirect(301, s.app.url("/vi/xa-hoi/feed.json")),
    );
    s.advance(Duration::from_secs(60)).await;
    let all = s.sources().await;
    assert_eq!(all["self"]["state"], "refused", "{}", all["self"]);
    assert!(
        all["self"]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("refused: points at bantin itself"),
        "{}",
        all["self"]
    );
    for id in ["to-public", "to-listen"] {
        let src = &all[id];
        assert_eq!(src["state"], "refused", "{id}: {src}");
        let why = src["last_error"].as_str().unwrap();
        assert!(why.contains("points at bantin itself"), "{id}: {why}");
        assert_eq!(
            src["url"],
            up.url(&format!("/{id}.xml")),
            "{id}: not remembered"
        );
        assert_eq!(src["items"], 0);
    }
    // Nothing of bantin's came back as a source's article.
    let ids = all_ids_with_prefix(&s, "").await;
    assert!(
        !ids.iter()
            .any(|i| i.starts_with("self.") || i.starts_with("to-")),
        "{ids:?}"
    );
}

#[tokio::test]
async fn an_item_with_a_data_image_is_stored_without_the_image() {
    let up = Upstream::start().await;
    let body = r#"<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Ảnh</title><link>https://anh.example/</link>
<item><guid>img-1</guid><title>Ảnh nhúng</title><link>https://anh.example/1</link><pubDate>Fri, 09 Jan 2026 08:00:00 +0700</pubDate>
<enclosure url="data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7" length="42" type="image/gif"/></item>
<item><guid>img-2</guid><title>Ảnh thật</title><link>https://anh.example/2</link><pubDate>Fri, 09 Jan 2026 09:00:00 +0700</pubDate>
<media:content url="https://anh.example/2.jpg" type="image/jpeg" fileSize="1234"/></item>
</channel></rss>"#;
    up.set(
        "/img.xml",
        Reply::Feed {
            body: body.into(),
            etag: None,
            last_modified: None,
        },
    );
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = start(
        vec![source("anh", &up.url("/img.xml"), "2s")],
        fast_upstream(),
        clock,
        None,
    )
    .await;
    s.settle().await;
    let src = s.source("anh").await;
    assert_eq!(src["state"], "ok", "{src}");
    assert_eq!(src["items"], 2, "the item with the data: image is kept");
    let note = src["last_error"].as_str().unwrap();
    assert!(
        note.starts_with("1 item(s) stored without their image; item 1: image.url:"),
        "{note}"
    );
    let v: Value = serde_json::from_str(&s.app.get_text("/vi/xa-hoi/feed.json").await).unwrap();
    let items = v["items"].as_array().unwrap();
    let by_title = |t: &str| items.iter().find(|i| i["title"] == t).unwrap().clone();
    assert_eq!(by_title("Ảnh nhúng")["image"], Value::Null);
    assert_eq!(by_title("Ảnh thật")["image"], "https://anh.example/2.jpg");
    let rss = s.app.get_text("/vi/xa-hoi/rss.xml").await;
    assert!(!rss.contains("data:image"), "no data: URL is published");
}

/// Real-world documents (the conformance corpus's Vietnamese CMS shapes and captured publisher
/// feeds, and feedparser's ill-formed cases), each served by a real upstream with its own
/// Content-Type and polled once: what bantin republishes from them passes the strict checks
/// (well-formed XML 1.0, readable by feed-rs) and the W3C validator's rules that aggregation
/// can break: an absolute IRI in every `<source><id>`, textual content in every Atom entry,
/// markup only where it is declared, distinct `updated` values for undated items, `description`
/// before `content:encoded`. Repairs are named in `last_error` and counted in the metrics.
#[tokio::test]
async fn aggregated_real_world_feeds_republish_valid_and_name_their_repairs() {
    let up = Upstream::start().await;
    let docs: Vec<_> = crate::conformance::expected()
        .into_iter()
        .filter(|d| !d.entries.is_empty())
        .filter(|d| {
            d.path.starts_with("vietnam/")
                || d.path.starts_with("feed-rs/fixture/rss2/")
                || d.path.starts_with("feed-rs/fixture/atom/")
                || d.path.starts_with("feedparser/illformed/")
                || d.path.starts_with("feedparser/encoding/")
                // Typed text, base64, xhtml, relative ids, entries with nothing but a date.
                || d.path.starts_with("feedparser/wellformed/atom10/")
                || d.path.starts_with("feedparser/wellformed/atom/")
                || d.path.starts_with("feedparser/wellformed/rss/")
        })
        .collect();
    assert!(docs.len() > 60, "{}", docs.len());
    let mut sources = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let path = format!("/doc/{i}.xml");
        up.set(
            &path,
            Reply::Doc {
                body: std::fs::read(crate::conformance::corpus_dir().join(&d.path)).unwrap(),
                content_type: d.content_type.clone(),
            },
        );
        sources.push(source(&format!("doc-{i}"), &up.url(&path), "1h"));
    }
    let clock = Arc::new(ManualClock::new(t(T0)));
    let s = start(sources, fast_upstream(), clock, None).await;
    s.settle().await;
    let all = s.sources().await;
    let mut stored = 0;
    for (i, d) in docs.iter().enumerate() {
        let st = &all[&format!("doc-{i}")];
        assert_eq!(st["state"], "ok", "{}: {}", d.path, st["last_error"]);
        stored += st["items"].as_u64().unwrap();
    }
    assert!(stored > 100, "{stored}");

    // The ill-formed ones say what was repaired, and the repairs are counted.
    let entities = docs
        .iter()
        .position(|d| d.path == "feedparser/illformed/undeclared_namespace.xml")
        .or_else(|| {
            docs.iter()
                .position(|d| d.path.starts_with("feedparser/illformed/"))
        })
        .unwrap();
    let note = all[&format!("doc-{entities}")]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(note.starts_with("recovered: "), "{note}");
    let metrics = s.app.get_text("/metrics").await;
    assert!(
        metrics.contains(&format!(
            "bantin_source_repairs_total{{source=\"doc-{entities}\""
        )),
        "{metrics}"
    );

    // Every page of the aggregated feed, in RSS and Atom.
    let mut pages = 0;
    for first in ["/vi/xa-hoi/atom.xml", "/vi/xa-hoi/rss.xml"] {
        let mut next = Some(s.app.url(first));
        while let Some(u) = next.take() {
            pages += 1;
            let body = s
                .app
                .client
                .get(&u)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let doc = strict_xml(&body, &u);
            feed_rs(body.as_bytes(), &u);
            check_republished(&doc, &u);
            next = doc
                .descendants()
                .find(|n| {
                    n.tag_name().name() == "link"
                        && n.attribute("rel") == Some("next")
                        && n.attribute("href").is_some()
                })
                .and_then(|n| n.attribute("href"))
                .map(String::from);
        }
    }
    assert!(pages >= 2);
}

/// The validator's rules aggregated items could break, on one page (Atom or RSS).
fn check_republished(doc: &roxmltree::Document, what: &str) {
    const ATOM: &str = "http://www.w3.org/2005/Atom";
    let text_of = |n: roxmltree::Node| n.text().unwrap_or_default().to_string();
    let markup = |s: &str| {
        let b = s.as_bytes();
        b.windows(2)
            .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/'))
    };
    for c in doc.descendants().filter(|n| n.is_text()) {
        let t = c.text().unwrap_or_default();
        assert!(
            !t.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
            "{what}: a C1 control character in {t:?}"
        );
    }
    let mut undated_updated = std::collections::HashMap::new();
    for e in doc
        .descendants()
        .filter(|n| n.has_tag_name((ATOM, "entry")))
    {
        let child = |l: &str| e.children().find(|c| c.has_tag_name((ATOM, l)));
        let title = child("title").expect("a title");
        let ty = title.attribute("type").unwrap_or("text");
        assert!(
            ty != "text" || !markup(&text_of(title)),
            "{what}: markup in a text title: {:?}",
            text_of(title)
        );
        assert!(
            child("summary").is_some_and(|s| !text_of(s).trim().is_empty())
                || child("content").is_some_and(|c| !text_of(c).trim().is_empty()),
            "{what}: an entry without textual content: {:?}",
            text_of(title)
        );
        if let Some(sm) = child("summary") {
            assert!(
                sm.attribute("type").unwrap_or("text") != "text" || !markup(&text_of(sm)),
                "{what}: markup in a text summary: {:?}",
                text_of(sm)
            );
        }
        if let Some(src) = child("source") {
            let id = src
                .children()
                .find(|c| c.has_tag_name((ATOM, "id")))
                .map(text_of)
                .expect("a source id");
            assert!(url::Url::parse(&id).is_ok(), "{what}: source id {id:?}");
            // Items bantin saw without a date keep distinct times (T0 minus their position).
            let updated = child("updated").map(text_of).unwrap();
            if t(&updated) <= t(T0) && t(&updated) > t(T0) - chrono::Duration::hours(1) {
                let key = (id, updated.clone());
                assert!(
                    undated_updated.insert(key.clone(), ()).is_none(),
                    "{what}: two undated entries of one source share updated {key:?}"
                );
            }
        }
    }
    for item in doc.descendants().filter(|n| n.has_tag_name("item")) {
        let names: Vec<&str> = item
            .children()
            .filter(|c| c.is_element())
            .map(|c| c.tag_name().name())
            .collect();
        if let Some(c) = names.iter().position(|n| *n == "encoded") {
            let d = names.iter().position(|n| *n == "description");
            assert!(
                d.is_some_and(|d| d < c),
                "{what}: content:encoded without a description before it: {names:?}"
            );
        }
    }
}
