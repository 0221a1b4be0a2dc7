//! The built-in WebSub hub (`/websub`) against real local subscriber servers on port 0: what
//! websub.rocks checks of a hub (subscribe, verification, delivery of the topic's bytes, signed
//! deliveries, unknown parameters, re-subscription, unsubscription, a JSON Feed topic), and the
//! rest a public hub needs (no echo no subscription, 410, retries with growing delays, leases
//! on a manual clock, private callbacks refused, the 0.3 form, bounds, restarts, two replicas).
//!
//! Callbacks here are on 127.0.0.1, so these servers run with
//! `[websub] allow_private_callbacks = true`, except the test that shows it refused by default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use bantin::clock::{Clock, ManualClock};
use bantin::config::Config;
use bantin::store::subscriptions::Subscription;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::helpers::*;

/// What a subscriber server saw.
#[derive(Debug, Clone)]
enum Seen {
    /// A GET: the hub verifying (or denying), with its query parameters in order.
    Get {
        path: String,
        query: Vec<(String, String)>,
    },
    /// A POST: a delivery.
    Post {
        path: String,
        headers: HeaderMap,
        body: Bytes,
    },
}

/// How a subscriber answers, per path (the default answers everything as a good subscriber).
#[derive(Debug, Clone)]
struct Behaviour {
    /// Echo the challenge on verification GETs.
    echo: bool,
    /// Statuses given to the next deliveries, in order; then `then`.
    statuses: Vec<u16>,
    then: u16,
    /// Wait this long before answering a delivery.
    delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            echo: true,
            statuses: vec![],
            then: 204,
            delay: Duration::ZERO,
        }
    }
}

struct Subscriber {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    behaviour: Arc<Mutex<HashMap<String, Behaviour>>>,
}

impl Subscriber {
    async fn start() -> Subscriber {
        Self::start_on("127.0.0.1:0").await
    }

    async fn start_on(addr: &str) -> Subscriber {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        let behaviour: Arc<Mutex<HashMap<String, Behaviour>>> = Arc::default();
        let b = behaviour.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let (tx, b) = (tx.clone(), b.clone());
                async move {
                    let path = uri.path().to_string();
                    let mut how = b.lock().unwrap().get(&path).cloned().unwrap_or_default();
                    if method == Method::GET {
                        let query: Vec<(String, String)> =
                            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                                .into_owned()
                                .collect();
                        let challenge = query
                            .iter()
                            .find(|(k, _)| k == "hub.challenge")
                            .map(|(_, v)| v.clone());
                        let _ = tx.send(Seen::Get { path, query });
                        return match (how.echo, challenge) {
                            (true, Some(c)) => (StatusCode::OK, c),
                            (false, Some(_)) => (StatusCode::OK, "yes, please".to_string()),
                            (_, None) => (StatusCode::OK, String::new()),
                        };
                    }
                    let status = if how.statuses.is_empty() {
                        how.then
                    } else {
                        let s = how.statuses.remove(0);
                        b.lock().unwrap().insert(path.clone(), how.clone());
                        s
                    };
                    if !how.delay.is_zero() {
                        tokio::time::sleep(how.delay).await;
                    }
                    let _ = tx.send(Seen::Post {
                        path,
                        headers,
                        body,
                    });
                    (StatusCode::from_u16(status).unwrap(), String::new())
                }
            },
        );
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Subscriber {
            addr,
            seen,
            behaviour,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, path: &str, b: Behaviour) {
        self.behaviour.lock().unwrap().insert(path.to_string(), b);
    }

    /// The next thing seen, within `within`.
    async fn next(&mut self, within: Duration) -> Option<Seen> {
        tokio::time::timeout(within, self.seen.recv())
            .await
            .ok()
            .flatten()
    }

    async fn next_get(&mut self) -> (String, Vec<(String, String)>) {
        match self.next(Duration::from_secs(10)).await {
            Some(Seen::Get { path, query }) => (path, query),
            other => panic!("expected a verification GET, got {other:?}"),
        }
    }

    async fn next_post(&mut self) -> (String, HeaderMap, Bytes) {
        match self.next(Duration::from_secs(10)).await {
            Some(Seen::Post {
                path,
                headers,
                body,
            }) => (path, headers, body),
            other => panic!("expected a delivery POST, got {other:?}"),
        }
    }

    /// Everything seen within `within`.
    async fn drain(&mut self, within: Duration) -> Vec<Seen> {
        let deadline = Instant::now() + within;
        let mut out = vec![];
        while let Ok(Some(s)) = tokio::time::timeout_at(deadline.into(), self.seen.recv()).await {
            out.push(s);
        }
        out
    }
}

fn param<'a>(query: &'a [(String, String)], k: &str) -> Option<&'a str> {
    query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn allow_private(c: &mut Config) {
    c.websub.allow_private_callbacks = true;
}

async fn hub_app() -> TestApp {
    spawn(Options {
        articles_dir: None,
        tweak: Some(allow_private),
        ..Default::default()
    })
    .await
}

/// POSTs a subscription form.
async fn post_form(app: &TestApp, pairs: &[(&str, &str)]) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    app.client
        .post(app.url("/websub"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn subscribe(app: &TestApp, topic: &str, callback: &str) -> reqwest::Response {
    post_form(
        app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", topic),
            ("hub.callback", callback),
        ],
    )
    .await
}

/// Waits until the store holds an active subscription (topic, callback) passing `want`.
async fn wait_for(
    app: &TestApp,
    now: impl Fn() -> DateTime<Utc>,
    topic: &str,
    callback: &str,
    want: impl Fn(Option<&Subscription>) -> bool,
) -> Option<Subscription> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = app
            .server
            .app
            .store()
            .subscription(topic, callback)
            .await
            .unwrap()
            .filter(|s| s.expires_at > now());
        if want(found.as_ref()) {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "the subscription did not reach the wanted state: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_active(app: &TestApp, topic: &str, callback: &str) -> Subscription {
    wait_for(app, || app.now(), topic, callback, |s| s.is_some())
        .await
        .unwrap()
}

/// Subscribes and answers the verification; returns the verification's parameters.
async fn subscribed(
    app: &TestApp,
    sub: &mut Subscriber,
    topic: &str,
    callback: &str,
) -> Vec<(String, String)> {
    assert_eq!(subscribe(app, topic, callback).await.status(), 202);
    let (_, q) = sub.next_get().await;
    wait_active(app, topic, callback).await;
    q
}

async fn write(app: &TestApp, id: &str, lang: &str, category: &str) {
    let a = article(id, lang, category, "2026-11-25T08:00:00");
    let s = app.put(id, &a).await.status();
    assert!(s == 201 || s == 200, "PUT {id}: {s}");
}

async fn metric(app: &TestApp, line_start: &str) -> f64 {
    let text = app.get_text("/metrics").await;
    text.lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn subscribe_verify_then_deliver_the_topics_bytes() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    let topic = app.url("/vi/rss.xml");
    let hub = app.url("/websub");

    // Every feed advertises the built-in hub, in the headers and in the document.
    let r = app.get("/vi/rss.xml").await;
    assert_eq!(
        r.headers()["link"].to_str().unwrap(),
        format!("<{hub}>; rel=\"hub\", <{topic}>; rel=\"self\"")
    );
    assert!(
        r.text()
            .await
            .unwrap()
            .contains(&format!("<atom:link href=\"{hub}\" rel=\"hub\"/>"))
    );

    // 202 at once, with unknown parameters ignored and the callback's query kept.
    let callback = sub.url("/cb/one?feed=7&hub.mode=mine");
    let r = post_form(
        &app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &callback),
            ("hub.lease_seconds", "86400"),
            ("hub.unknown", "ignored"),
            ("utm_source", "reader"),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    // Then the verification, with every parameter, after the callback's own.
    let (path, q) = sub.next_get().await;
    assert_eq!(path, "/cb/one");
    let names: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "feed",
            "hub.mode",
            "hub.mode",
            "hub.topic",
            "hub.challenge",
            "hub.lease_seconds"
        ]
    );
    assert_eq!((q[0].1.as_str(), q[1].1.as_str()), ("7", "mine"));
    assert_eq!(q[2].1, "subscribe");
    assert_eq!(param(&q, "hub.topic"), Some(topic.as_str()));
    assert_eq!(param(&q, "hub.lease_seconds"), Some("86400"));
    let challenge = param(&q, "hub.challenge").unwrap();
    assert!(challenge.len() >= 32 && challenge.bytes().all(|b| b.is_ascii_hexdigit()));
    let stored = wait_active(&app, &topic, &callback).await;
    assert_eq!(stored.lease_seconds, 86_400);
    assert!(stored.secret.is_none());

    // A write: one delivery of exactly what a GET of the topic returns.
    write(&app, "hub-1", "vi", "kinh-te").await;
    let (path, headers, body) = sub.next_post().await;
    assert_eq!(path, "/cb/one");
    let got = app.get("/vi/rss.xml").await;
    let content_type = got.headers()["content-type"].clone();
    let bytes = got.bytes().await.unwrap();
    assert_eq!(body, bytes, "the delivery is the topic's bytes");
    assert!(String::from_utf8_lossy(&body).contains("hub-1"));
    assert_eq!(headers["content-type"], content_type);
    assert_eq!(
        headers["link"].to_str().unwrap(),
        format!("<{hub}>; rel=\"hub\", <{topic}>; rel=\"self\"")
    );
    assert!(
        headers.get("x-hub-signature").is_none(),
        "no secret, no signature"
    );
    assert!(
        sub.drain(Duration::from_millis(700)).await.is_empty(),
        "one delivery per write"
    );
    // A write to another feed delivers nothing here.
    write(&app, "hub-2", "en", "kinh-te").await;
    assert!(sub.drain(Duration::from_millis(700)).await.is_empty());

    assert_eq!(
        metric(&app, "bantin_hub_deliveries_total{outcome=\"ok\"}").await,
        1.0
    );
    assert_eq!(
        metric(
            &app,
            "bantin_hub_verifications_total{outcome=\"subscribed\"}"
        )
        .await,
        1.0
    );
    assert_eq!(
        metric(&app, "bantin_hub_requests_total{outcome=\"accepted\"}").await,
        1.0
    );
}

#[tokio::test]
async fn a_secret_signs_each_delivery_with_hmac_sha256() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    let topic = app.url("/vi/kinh-te/atom.xml");
    let callback = sub.url("/signed");
    let secret = "a subscriber's secret, under 200 bytes";
    let r = post_form(
        &app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &callback),
            ("hub.secret", secret),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    sub.next_get().await;
    wait_active(&app, &topic, &callback).await;
    write(&app, "hub-sig", "vi", "kinh-te").await;
    let (_, headers, body) = sub.next_post().await;
    assert_eq!(
        headers["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    let sig = headers["x-hub-signature"].to_str().unwrap();
    let hex = sig.strip_prefix("sha256=").expect("sha256=<hex>");
    // An HMAC that is not the hub's own implementation.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let want: String = ring::hmac::sign(&key, &body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, want);
    // A secret of 200 bytes or more is refused, naming the parameter.
    let long = "s".repeat(200);
    let r = post_form(
        &app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &callback),
            ("hub.secret", &long),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().starts_with("hub.secret:"));
}

#[tokio::test]
async fn resubscribing_renews_the_lease_and_delivers_once() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    let topic = app.url("/en/rss.xml");
    let callback = sub.url("/again");
    let first_q = subscribed(&app, &mut sub, &topic, &callback).await;
    let first = wait_active(&app, &topic, &callback).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let r = post_form(
        &app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &callback),
            ("hub.lease_seconds", "1728000"),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let (_, q) = sub.next_get().await;
    assert_ne!(
        param(&q, "hub.challenge"),
        param(&first_q, "hub.challenge"),
        "a fresh challenge each time"
    );
    let renewed = wait_for(
        &app,
        || app.now(),
        &topic,
        &callback,
        |s| s.is_some_and(|s| s.lease_seconds == 1_728_000),
    )
    .await
    .unwrap();
    assert!(renewed.expires_at > first.expires_at);
    assert_eq!(renewed.created_at, first.created_at);
    assert_eq!(
        app.server
            .app
            .store()
            .subscriptions(app.now())
            .await
            .unwrap()
            .len(),
        1,
        "never duplicated"
    );
    write(&app, "hub-re", "en", "kinh-te").await;
    sub.next_post().await;
    assert!(
        sub.drain(Duration::from_millis(800)).await.is_empty(),
        "one delivery per update, not two"
    );
}

#[tokio::test]
async fn unsubscribing_is_verified_and_then_nothing_is_delivered() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    let topic = app.url("/vi/rss.xml");
    let callback = sub.url("/leaving");
    subscribed(&app, &mut sub, &topic, &callback).await;
    let r = post_form(
        &app,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &callback),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let (_, q) = sub.next_get().await;
    assert_eq!(param(&q, "hub.mode"), Some("unsubscribe"));
    assert_eq!(param(&q, "hub.topic"), Some(topic.as_str()));
    assert!(param(&q, "hub.challenge").is_some());
    wait_for(&app, || app.now(), &topic, &callback, |s| s.is_none()).await;
    write(&app, "hub-unsub", "vi", "xa-hoi").await;
    assert!(sub.drain(Duration::from_millis(800)).await.is_empty());
    // Unsubscribing what does not exist sends nothing anywhere.
    let r = post_form(
        &app,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &callback),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    assert!(sub.drain(Duration::from_millis(500)).await.is_empty());
}

async fn stats(app: &TestApp) -> serde_json::Value {
    app.stats(1).await
}

/// A feed's (subscribers, push clients as (host, subscribers)) today, from a stats answer.
fn push_figures(stats: &serde_json::Value, feed: &str) -> (u64, Vec<(String, u64)>) {
    let today = stats["days"].as_array().unwrap().last().unwrap();
    let Some(f) = today["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feed"] == feed)
    else {
        return (0, vec![]);
    };
    let push = f["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "push")
        .map(|c| {
            (
                c["client"].as_str().unwrap().to_string(),
                c["subscribers"].as_u64().unwrap(),
            )
        })
        .collect();
    (f["subscribers"].as_u64().unwrap(), push)
}

#[tokio::test]
async fn verified_push_subscriptions_are_subscribers_by_callback_host() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    let rss = app.url("/vi/rss.xml");
    let atom = app.url("/vi/atom.xml");
    assert_eq!(push_figures(&stats(&app).await, "/vi/rss.xml"), (0, vec![]));

    // Two callbacks on one host, one on another name of the same machine, one in another
    // format; and one that never echoes the challenge.
    let localhost = format!("http://localhost:{}/c", sub.addr.port());
    let (a, b, mute) = (sub.url("/a"), sub.url("/b"), sub.url("/mute"));
    subscribed(&app, &mut sub, &rss, &a).await;
    subscribed(&app, &mut sub, &rss, &b).await;
    subscribed(&app, &mut sub, &rss, &localhost).await;
    subscribed(&app, &mut sub, &atom, &a).await;
    sub.set(
        "/mute",
        Behaviour {
            echo: false,
            ..Default::default()
        },
    );
    assert_eq!(subscribe(&app, &rss, &mute).await.status(), 202);
    sub.next_get().await;

    // Nobody polled: the subscribers are the push ones, one client per callback host.
    let s = stats(&app).await;
    assert_eq!(
        push_figures(&s, "/vi/rss.xml"),
        (
            3,
            vec![("127.0.0.1".to_string(), 2), ("localhost".to_string(), 1)]
        )
    );
    assert_eq!(
        push_figures(&s, "/vi/atom.xml"),
        (1, vec![("127.0.0.1".to_string(), 1)])
    );
    let today = s["days"].as_array().unwrap().last().unwrap();
    assert_eq!(today["subscribers"], 4);
    let host = s["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client"] == "127.0.0.1" && c["kind"] == "push")
        .expect("the host among the day's clients");
    assert_eq!(host["subscribers"], 3, "summed over its feeds");

    // The page says the same.
    let page = app.get_with_token("/stats").await.text().await.unwrap();
    assert!(page.contains("<td>localhost</td><td>push</td>"), "{page}");

    // An unsubscription, once verified, is one subscriber fewer.
    let r = post_form(
        &app,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", &rss),
            ("hub.callback", &localhost),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    sub.next_get().await;
    wait_for(&app, || app.now(), &rss, &localhost, |s| s.is_none()).await;
    assert_eq!(
        push_figures(&stats(&app).await, "/vi/rss.xml"),
        (2, vec![("127.0.0.1".to_string(), 2)])
    );
}

/// A feed's subscribers on `date` in a stats answer (0 when the feed is not listed that day).
fn subscribers_on(stats: &serde_json::Value, date: &str, feed: &str) -> u64 {
    let day = stats["days"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["date"] == date)
        .unwrap_or_else(|| panic!("no {date} in {stats}"));
    day["feeds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["feed"] == feed)
        .map_or(0, |f| f["subscribers"].as_u64().unwrap())
}

#[tokio::test]
async fn push_subscribers_are_kept_in_the_closed_day_and_leave_with_their_lease() {
    // 12:00 in Ho Chi Minh City on 23 November.
    let clock = Arc::new(ManualClock::new("2026-11-23T05:00:00Z".parse().unwrap()));
    let app = spawn(Options {
        articles_dir: None,
        tweak: Some(allow_private),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let mut sub = Subscriber::start().await;
    let topic = app.url("/vi/rss.xml");
    let cb = sub.url("/daily");
    assert_eq!(subscribe(&app, &topic, &cb).await.status(), 202);
    sub.next_get().await;
    wait_for(&app, || clock.now(), &topic, &cb, |s| s.is_some()).await;
    assert_eq!(
        subscribers_on(&app.stats(1).await, "2026-11-23", "/vi/rss.xml"),
        1
    );

    // The next day, the 23rd is closed with its push subscriber, and the 24th has it live.
    clock.advance(Duration::from_secs(24 * 3600));
    app.server.app.readership().flush().await.unwrap();
    let s = app.stats(2).await;
    assert_eq!(subscribers_on(&s, "2026-11-23", "/vi/rss.xml"), 1);
    assert_eq!(subscribers_on(&s, "2026-11-24", "/vi/rss.xml"), 1);

    // Past its lease (10 days from the verification) it counts no more; the closed day keeps it.
    clock.advance(Duration::from_secs(10 * 24 * 3600));
    app.server.app.readership().flush().await.unwrap();
    let s = app.stats(12).await;
    assert_eq!(subscribers_on(&s, "2026-12-04", "/vi/rss.xml"), 0);
    assert_eq!(subscribers_on(&s, "2026-11-23", "/vi/rss.xml"), 1);
}

#[tokio::test]
async fn a_json_feed_topic_is_delivered_as_json_feed() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    let topic = app.url("/vi/feed.json");
    let callback = sub.url("/json");
    subscribed(&app, &mut sub, &topic, &callback).await;
    let json: serde_json::Value =
        serde_json::from_str(&app.get_text("/vi/feed.json").await).unwrap();
    assert_eq!(json["hubs"][0]["url"], app.url("/websub"));
    assert_eq!(json["hubs"][0]["type"], "WebSub");
    write(&app, "hub-json", "vi", "kinh-te").await;
    let (_, headers, body) = sub.next_post().await;
    assert_eq!(headers["content-type"], "application/feed+json");
    let feed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(feed["feed_url"], topic);
    assert_eq!(
        feed["items"][0]["id"]
            .as_str()
            .map(|s| s.contains("hub-json")),
        Some(true)
    );
    assert_eq!(body, app.get("/vi/feed.json").await.bytes().await.unwrap());
}

#[tokio::test]
async fn a_callback_that_does_not_echo_the_challenge_gets_nothing() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    sub.set(
        "/silent",
        Behaviour {
            echo: false,
            ..Default::default()
        },
    );
    let topic = app.url("/vi/rss.xml");
    let callback = sub.url("/silent");
    assert_eq!(subscribe(&app, &topic, &callback).await.status(), 202);
    sub.next_get().await;
    // The hub has judged the answer once its verification is counted as failed.
    let metrics = app.server.app.metrics().clone();
    until("the verification failed", || {
        metrics
            .hub_verifications
            .get_or_create(&bantin::metrics::OutcomeLabel { outcome: "failed" })
            .get()
            > 0
    })
    .await;
    assert_eq!(
        app.server
            .app
            .store()
            .subscription(&topic, &callback)
            .await
            .unwrap(),
        None
    );
    write(&app, "hub-silent", "vi", "kinh-te").await;
    assert!(sub.drain(Duration::from_millis(800)).await.is_empty());
    assert_eq!(
        metric(&app, "bantin_hub_verifications_total{outcome=\"failed\"}").await,
        1.0
    );
}

#[tokio::test]
async fn gone_ends_the_subscription() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    sub.set(
        "/done",
        Behaviour {
            then: 410,
            ..Default::default()
        },
    );
    let topic = app.url("/vi/rss.xml");
    let callback = sub.url("/done");
    subscribed(&app, &mut sub, &topic, &callback).await;
    write(&app, "hub-410", "vi", "kinh-te").await;
    sub.next_post().await;
    wait_for(&app, || app.now(), &topic, &callback, |s| s.is_none()).await;
    write(&app, "hub-410b", "vi", "kinh-te").await;
    assert!(sub.drain(Duration::from_millis(800)).await.is_empty());
}

#[tokio::test]
async fn a_failing_subscriber_is_retried_with_growing_delays_then_succeeds() {
    let t0: DateTime<Utc> = "2026-11-30T01:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = spawn(Options {
        articles_dir: None,
        tweak: Some(allow_private),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let mut sub = Subscriber::start().await;
    // Three failures of three kinds, then success.
    sub.set(
        "/flaky",
        Behaviour {
            statuses: vec![500, 302, 503],
            then: 204,
            ..Default::default()
        },
    );
    let topic = app.url("/vi/rss.xml");
    let callback = sub.url("/flaky");
    assert_eq!(subscribe(&app, &topic, &callback).await.status(), 202);
    sub.next_get().await;
    wait_for(&app, || clock.now(), &topic, &callback, |s| s.is_some()).await;
    write(&app, "hub-flaky", "vi", "kinh-te").await;
    let mut delays = vec![];
    for failures in 1..=3u32 {
        sub.next_post().await;
        let s = wait_for(
            &app,
            || clock.now(),
            &topic,
            &callback,
            |s| s.is_some_and(|s| s.attempts == failures),
        )
        .await
        .unwrap();
        let delay = s.next_attempt - s.last_attempt.unwrap();
        delays.push(delay.num_milliseconds());
        // Nothing happens before the delay is over.
        clock.set(s.next_attempt - chrono::Duration::milliseconds(100));
        assert!(sub.drain(Duration::from_millis(300)).await.is_empty());
        clock.set(s.next_attempt);
    }
    let (_, _, body) = sub.next_post().await;
    assert!(String::from_utf8_lossy(&body).contains("hub-flaky"));
    let s = wait_for(
        &app,
        || clock.now(),
        &topic,
        &callback,
        |s| s.is_some_and(|s| !s.pending()),
    )
    .await
    .unwrap();
    assert_eq!((s.attempts, s.last_success), (0, Some(clock.now())));
    // 5 s, 10 s, 20 s, each ±10%.
    for (d, base) in delays.iter().zip([5_000, 10_000, 20_000]) {
        assert!((base * 9 / 10..=base * 11 / 10).contains(d), "{delays:?}");
    }
    assert!(delays.windows(2).all(|w| w[1] > w[0]), "{delays:?}");
}

#[tokio::test]
async fn leases_end_on_the_clock_and_are_purged() {
    let t0: DateTime<Utc> = "2026-11-30T01:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(t0));
    let app = spawn(Options {
        articles_dir: None,
        tweak: Some(allow_private),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let mut old = Subscriber::start().await;
    let mut new = Subscriber::start().await;
    let topic = app.url("/vi/rss.xml");
    let old_cb = old.url("/short");
    // A lease shorter than an hour is raised to the hour.
    let r = post_form(
        &app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &old_cb),
            ("hub.lease_seconds", "60"),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let (_, q) = old.next_get().await;
    assert_eq!(param(&q, "hub.lease_seconds"), Some("3600"));
    let s = wait_for(&app, || clock.now(), &topic, &old_cb, |s| s.is_some())
        .await
        .unwrap();
    assert_eq!(s.expires_at, t0 + chrono::Duration::hours(1));

    clock.advance(Duration::from_secs(3601));
    let new_cb = new.url("/fresh");
    assert_eq!(subscribe(&app, &topic, &new_cb).await.status(), 202);
    let (_, q) = new.next_get().await;
    assert_eq!(
        param(&q, "hub.lease_seconds"),
        Some("864000"),
        "10 days by default"
    );
    wait_for(&app, || clock.now(), &topic, &new_cb, |s| s.is_some()).await;
    write(&app, "hub-lease", "vi", "kinh-te").await;
    new.next_post().await;
    assert!(
        old.drain(Duration::from_millis(800)).await.is_empty(),
        "an ended lease gets nothing"
    );
    // And is purged from the store.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app
        .server
        .app
        .store()
        .subscription(&topic, &old_cb)
        .await
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "the ended lease was not purged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn private_callbacks_are_refused_by_default() {
    let app = spawn(Options {
        articles_dir: None,
        ..Default::default()
    })
    .await;
    let mut sub = Subscriber::start().await;
    let topic = app.url("/vi/rss.xml");
    for callback in [
        sub.url("/cb"),
        format!("http://localhost:{}/cb", sub.addr.port()),
        format!("http://[::1]:{}/cb", sub.addr.port()),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.1/cb".to_string(),
    ] {
        let r = subscribe(&app, &topic, &callback).await;
        assert_eq!(r.status(), 403, "{callback}");
        let text = r.text().await.unwrap();
        assert!(
            text.starts_with("hub.callback:") && text.contains("only public addresses"),
            "{text}"
        );
    }
    assert!(
        sub.drain(Duration::from_millis(500)).await.is_empty(),
        "nothing is sent"
    );
}

#[tokio::test]
async fn the_pubsubhubbub_0_3_form() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    let topic = app.url("/vi/rss.xml");
    // Synchronous: verified before the answer, with the verify token echoed; 204.
    let callback = sub.url("/newsblur");
    let r = post_form(
        &app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &callback),
            ("hub.verify", "sync"),
            ("hub.verify", "async"),
            ("hub.verify_token", "nb-token-1"),
            ("hub.lease_seconds", "86400"),
        ],
    )
    .await;
    assert_eq!(r.status(), 204);
    let (_, q) = sub.next_get().await;
    assert_eq!(param(&q, "hub.verify_token"), Some("nb-token-1"));
    assert_eq!(param(&q, "hub.mode"), Some("subscribe"));
    assert!(
        app.server
            .app
            .store()
            .subscription(&topic, &callback)
            .await
            .unwrap()
            .is_some(),
        "active when the answer comes"
    );
    // Asynchronous (BazQux's preference order): 202, the token in the verification.
    let callback2 = sub.url("/bazqux");
    let r = post_form(
        &app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &callback2),
            ("hub.verify", "async"),
            ("hub.verify_token", "bq-2"),
        ],
    )
    .await;
    assert_eq!(r.status(), 202);
    let (_, q) = sub.next_get().await;
    assert_eq!(param(&q, "hub.verify_token"), Some("bq-2"));
    wait_active(&app, &topic, &callback2).await;
    // A synchronous verification that fails is a 409 with the reason.
    sub.set(
        "/refuses",
        Behaviour {
            echo: false,
            ..Default::default()
        },
    );
    let r = post_form(
        &app,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &sub.url("/refuses")),
            ("hub.verify", "sync"),
        ],
    )
    .await;
    assert_eq!(r.status(), 409);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("without echoing the challenge")
    );
    sub.next_get().await;
    // Both subscribers get the write.
    write(&app, "hub-03", "vi", "kinh-te").await;
    let mut paths: Vec<String> = vec![sub.next_post().await.0, sub.next_post().await.0];
    paths.sort();
    assert_eq!(paths, ["/bazqux", "/newsblur"]);
    // Synchronous unsubscribe.
    let r = post_form(
        &app,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", &topic),
            ("hub.callback", &callback),
            ("hub.verify", "sync"),
            ("hub.verify_token", "nb-token-2"),
        ],
    )
    .await;
    assert_eq!(r.status(), 204);
    let (_, q) = sub.next_get().await;
    assert_eq!(
        (param(&q, "hub.mode"), param(&q, "hub.verify_token")),
        (Some("unsubscribe"), Some("nb-token-2"))
    );
    assert_eq!(
        app.server
            .app
            .store()
            .subscription(&topic, &callback)
            .await
            .unwrap(),
        None
    );
}

/// A form's pairs, for tables of cases.
type Form<'a> = Vec<(&'a str, String)>;

#[tokio::test]
async fn bad_requests_get_a_plain_text_reason_naming_the_parameter() {
    let app = hub_app().await;
    let sub = Subscriber::start().await;
    let cb = sub.url("/cb");
    let topic = app.url("/vi/rss.xml");
    let cases: Vec<(Form, u16, &str)> = vec![
        (
            vec![("hub.topic", topic.clone()), ("hub.callback", cb.clone())],
            400,
            "hub.mode:",
        ),
        (
            vec![
                ("hub.mode", "subscribe".into()),
                ("hub.callback", cb.clone()),
            ],
            400,
            "hub.topic:",
        ),
        (
            vec![
                ("hub.mode", "subscribe".into()),
                ("hub.topic", topic.clone()),
            ],
            400,
            "hub.callback:",
        ),
        (
            vec![
                ("hub.mode", "subscribe".into()),
                ("hub.topic", "https://elsewhere.example/vi/rss.xml".into()),
                ("hub.callback", cb.clone()),
            ],
            400,
            "hub.topic:",
        ),
        (
            vec![
                ("hub.mode", "subscribe".into()),
                ("hub.topic", app.url("/vi/rss.xml?page=2")),
                ("hub.callback", cb.clone()),
            ],
            400,
            "hub.topic:",
        ),
        (
            // A tag with no article: not a feed (yet).
            vec![
                ("hub.mode", "subscribe".into()),
                ("hub.topic", app.url("/vi/tag/khong-co/rss.xml")),
                ("hub.callback", cb.clone()),
            ],
            400,
            "hub.topic:",
        ),
        (
            vec![
                ("hub.mode", "subscribe".into()),
                ("hub.topic", topic.clone()),
                ("hub.callback", "ftp://x.example/".into()),
            ],
            400,
            "hub.callback:",
        ),
        (
            vec![
                ("hub.mode", "subscribe".into()),
                ("hub.topic", topic.clone()),
                ("hub.callback", cb.clone()),
                ("hub.lease_seconds", "soon".into()),
            ],
            400,
            "hub.lease_seconds:",
        ),
        (
            vec![
                ("hub.mode", "subscribe".into()),
                ("hub.topic", topic.clone()),
                ("hub.callback", "http://no-such-host.invalid/cb".into()),
            ],
            400,
            "hub.callback:",
        ),
    ];
    for (pairs, status, starts) in cases {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post_form(&app, &pairs).await;
        assert_eq!(r.status(), status, "{pairs:?}");
        let text = r.text().await.unwrap();
        assert!(text.starts_with(starts), "{pairs:?}: {text}");
    }
    // Not a form: 415. Too large: 413 (and the connection closed).
    let r = app
        .client
        .post(app.url("/websub"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = app
        .client
        .post(app.url("/websub"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("hub.mode=subscribe&pad={}", "x".repeat(20_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // GET is not how one subscribes.
    assert_eq!(app.get("/websub").await.status(), 405);
}

#[tokio::test]
async fn a_dead_subscriber_delays_nobody_and_never_the_write() {
    let app = hub_app().await;
    // A subscriber on another host (127.0.0.2) that verifies and then never answers a delivery.
    let mut dead = Subscriber::start_on("127.0.0.2:0").await;
    dead.set(
        "/hang",
        Behaviour {
            delay: Duration::from_secs(3600),
            ..Default::default()
        },
    );
    let mut live = Subscriber::start().await;
    let topic = app.url("/vi/rss.xml");
    for i in 0..10 {
        let cb = dead.url(&format!("/hang?n={i}"));
        subscribed(&app, &mut dead, &topic, &cb).await;
    }
    let live_cb = live.url("/live");
    subscribed(&app, &mut live, &topic, &live_cb).await;
    for i in 0..3 {
        let started = Instant::now();
        write(&app, &format!("hub-dead-{i}"), "vi", "kinh-te").await;
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "the write waits for no subscriber: {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let (_, _, body) = live.next_post().await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the live subscriber is not held up: {:?}",
            started.elapsed()
        );
        assert!(String::from_utf8_lossy(&body).contains(&format!("hub-dead-{i}")));
    }
}

#[tokio::test]
async fn a_burst_of_writes_sends_the_latest_document_not_one_per_write() {
    let app = hub_app().await;
    let mut sub = Subscriber::start().await;
    // A subscriber slow enough that the burst lands while its first delivery is out.
    sub.set(
        "/slow",
        Behaviour {
            delay: Duration::from_millis(400),
            ..Default::default()
        },
    );
    let topic = app.url("/vi/rss.xml");
    let callback = sub.url("/slow");
    subscribed(&app, &mut sub, &topic, &callback).await;
    for i in 0..20 {
        write(&app, &format!("hub-burst-{i:02}"), "vi", "kinh-te").await;
    }
    let got = sub.drain(Duration::from_secs(3)).await;
    let bodies: Vec<String> = got
        .iter()
        .filter_map(|s| match s {
            Seen::Post { body, .. } => Some(String::from_utf8_lossy(body).into_owned()),
            _ => None,
        })
        .collect();
    assert!(
        (1..=3).contains(&bodies.len()),
        "{} deliveries for 20 writes",
        bodies.len()
    );
    let last = bodies.last().unwrap();
    for i in 0..20 {
        assert!(
            last.contains(&format!("hub-burst-{i:02}")),
            "the last delivery is the latest document"
        );
    }
}

#[tokio::test]
async fn verification_requests_are_rate_limited_per_callback_host() {
    fn tight(c: &mut Config) {
        c.websub.allow_private_callbacks = true;
        c.websub.verifications_per_minute = 5;
    }
    let app = spawn(Options {
        articles_dir: None,
        tweak: Some(tight),
        ..Default::default()
    })
    .await;
    let mut victim = Subscriber::start().await;
    let mut other = Subscriber::start_on("127.0.0.2:0").await;
    let topic = app.url("/vi/rss.xml");
    let mut statuses = vec![];
    for i in 0..50 {
        let r = subscribe(&app, &topic, &victim.url(&format!("/flood/{i}"))).await;
        if r.status() == 429 {
            let after: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&after));
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 202).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 45);
    let seen = victim.drain(Duration::from_millis(1500)).await;
    assert_eq!(
        seen.len(),
        5,
        "the hub sent the victim 5 requests for 50 asked"
    );
    // Another host has its own budget.
    assert_eq!(
        subscribe(&app, &topic, &other.url("/ok")).await.status(),
        202
    );
    other.next_get().await;
    assert_eq!(
        metric(&app, "bantin_hub_requests_total{outcome=\"rate_limited\"}").await,
        45.0
    );
}

#[tokio::test]
async fn subscriptions_are_bounded_per_host_with_a_denial() {
    fn capped(c: &mut Config) {
        c.websub.allow_private_callbacks = true;
        c.websub.max_subscriptions_per_host = 2;
        c.websub.max_subscriptions = 3;
    }
    let app = spawn(Options {
        articles_dir: None,
        tweak: Some(capped),
        ..Default::default()
    })
    .await;
    let mut sub = Subscriber::start().await;
    let mut other = Subscriber::start_on("127.0.0.2:0").await;
    let mut third = Subscriber::start_on("127.0.0.3:0").await;
    let topic = app.url("/vi/rss.xml");
    let cb = sub.url("/a");
    subscribed(&app, &mut sub, &topic, &cb).await;
    let cb = sub.url("/b");
    subscribed(&app, &mut sub, &topic, &cb).await;
    // The host's third: denied, by a GET to the callback.
    assert_eq!(subscribe(&app, &topic, &sub.url("/c")).await.status(), 202);
    let (path, q) = sub.next_get().await;
    assert_eq!(path, "/c");
    assert_eq!(param(&q, "hub.mode"), Some("denied"));
    assert_eq!(param(&q, "hub.topic"), Some(topic.as_str()));
    assert!(param(&q, "hub.reason").unwrap().contains("maximum of 2"));
    assert!(param(&q, "hub.challenge").is_none());
    // A renewal of one it holds is still accepted.
    assert_eq!(subscribe(&app, &topic, &sub.url("/a")).await.status(), 202);
    assert_eq!(
        param(&sub.next_get().await.1, "hub.mode"),
        Some("subscribe")
    );
    // Another host fills the hub; a third host is denied by the total bound.
    let cb = other.url("/x");
    subscribed(&app, &mut other, &topic, &cb).await;
    assert_eq!(
        subscribe(&app, &topic, &third.url("/y")).await.status(),
        202
    );
    let (_, q) = third.next_get().await;
    assert_eq!(param(&q, "hub.mode"), Some("denied"));
    assert!(param(&q, "hub.reason").unwrap().contains("maximum of 3"));
    assert_eq!(
        app.server
            .app
            .store()
            .subscriptions(app.now())
            .await
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn a_restart_keeps_subscriptions_and_bantin_subscriptions_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("hub.db").display());
    let public = "http://feeds.test/";
    let opts = || Options {
        articles_dir: None,
        tweak: Some(allow_private),
        database_url: Some(db.clone()),
        public_url: Some(public.into()),
        ..Default::default()
    };
    let mut sub = Subscriber::start().await;
    let topic = "http://feeds.test/vi/kinh-te/rss.xml";
    let callback = sub.url("/kept?token=SECRET-TOKEN");
    let app = spawn(opts()).await;
    subscribed(&app, &mut sub, topic, &callback).await;
    app.server.shutdown().await.unwrap();

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bantin"))
        .args(["--config", site_toml().to_str().unwrap(), "subscriptions"])
        .env("BANTIN_DATABASE_URL", &db)
        .env("BANTIN_PUBLIC_URL", public)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("/vi/kinh-te/rss.xml") && table.contains("/kept?…"),
        "{table}"
    );
    assert!(table.contains(" ok "), "{table}");
    assert!(!table.contains("SECRET-TOKEN"), "{table}");

    let app = spawn(opts()).await;
    write(&app, "hub-restart", "vi", "kinh-te").await;
    let (path, headers, body) = sub.next_post().await;
    assert_eq!(path, "/kept");
    assert!(String::from_utf8_lossy(&body).contains("hub-restart"));
    assert_eq!(
        headers["link"].to_str().unwrap(),
        format!("<http://feeds.test/websub>; rel=\"hub\", <{topic}>; rel=\"self\"")
    );
}

#[tokio::test]
async fn builtin_false_runs_no_hub_and_advertises_none() {
    fn off(c: &mut Config) {
        c.websub.builtin = false;
    }
    let app = spawn(Options {
        articles_dir: None,
        tweak: Some(off),
        ..Default::default()
    })
    .await;
    let r = app.get("/vi/rss.xml").await;
    assert_eq!(
        r.headers()["link"].to_str().unwrap(),
        format!("<{}>; rel=\"self\"", app.url("/vi/rss.xml"))
    );
    let sub = Subscriber::start().await;
    let r = subscribe(&app, &app.url("/vi/rss.xml"), &sub.url("/cb")).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
#[ignore = "needs BANTIN_TEST_DATABASE_URL"]
async fn two_replicas_on_postgres_deliver_each_update_once() {
    use bantin::store::postgres::test_support::{drop_database, fresh_database};
    let db = fresh_database().await;
    let public = "https://feeds.baolongan.example/";
    let opts = || Options {
        articles_dir: None,
        tweak: Some(allow_private),
        database_url: Some(db.clone()),
        public_url: Some(public.into()),
        ..Default::default()
    };
    let a = spawn(opts()).await;
    let b = spawn(opts()).await;
    let mut sub = Subscriber::start().await;
    let topic = "https://feeds.baolongan.example/vi/rss.xml";
    const N: usize = 40;
    // Subscriptions made on either replica.
    for i in 0..N {
        let on = if i % 2 == 0 { &a } else { &b };
        let cb = sub.url(&format!("/r/{i}"));
        assert_eq!(subscribe(on, topic, &cb).await.status(), 202);
        sub.next_get().await;
        wait_active(on, topic, &cb).await;
    }
    let count = |seen: &[Seen]| {
        let mut per: HashMap<String, usize> = HashMap::new();
        for s in seen {
            if let Seen::Post { path, .. } = s {
                *per.entry(path.clone()).or_default() += 1;
            }
        }
        per
    };
    // One write: every subscriber gets exactly one delivery, from one of the replicas.
    write(&a, "hub-pg-1", "vi", "kinh-te").await;
    let seen = sub.drain(Duration::from_secs(4)).await;
    let per = count(&seen);
    assert_eq!(per.len(), N, "every subscriber");
    assert!(per.values().all(|n| *n == 1), "{per:?}");
    // Writes on both at once: both replicas claim at once; still no more than one delivery per
    // update, and the last one carries both.
    let (two, three) = (
        article("hub-pg-2", "vi", "kinh-te", "2026-11-25T09:00:00"),
        article("hub-pg-3", "vi", "kinh-te", "2026-11-25T09:00:00"),
    );
    let (r1, r2) = tokio::join!(a.put("hub-pg-2", &two), b.put("hub-pg-3", &three));
    assert_eq!(
        (r1.status(), r2.status()),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    let seen2 = sub.drain(Duration::from_secs(4)).await;
    let per2 = count(&seen2);
    assert_eq!(per2.len(), N);
    assert!(per2.values().all(|n| (1..=2).contains(n)), "{per2:?}");
    for i in 0..N {
        let path = format!("/r/{i}");
        let last = seen2
            .iter()
            .rev()
            .find_map(|s| match s {
                Seen::Post { path: p, body, .. } if *p == path => {
                    Some(String::from_utf8_lossy(body).into_owned())
                }
                _ => None,
            })
            .unwrap();
        assert!(
            last.contains("hub-pg-2") && last.contains("hub-pg-3"),
            "{path}"
        );
    }
    // What the replicas say they sent is what arrived: nothing sent twice.
    let sent = metric(&a, "bantin_hub_deliveries_total{outcome=\"ok\"}").await
        + metric(&b, "bantin_hub_deliveries_total{outcome=\"ok\"}").await;
    assert_eq!(sent as usize, seen.len() + seen2.len());
    drop(a);
    drop(b);
    drop_database(&db).await;
}
