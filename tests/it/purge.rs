//! CDN cooperation against a real local purge receiver: surrogate keys on every feed answer, one
//! purge POST per write naming exactly the touched feeds, none for a no-op, and writes that never
//! wait for the receiver; with `purge_kind = "xkey"`, a `PURGE` naming the keys in `xkey-purge`.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::helpers::*;

/// A purge receiver that records every POSTed JSON body.
pub(crate) async fn start_receiver(listener: TcpListener) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/purge",
        post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(serde_json::from_str(&body).unwrap_or(Value::Null));
                axum::http::StatusCode::OK
            }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    rx
}

pub(crate) async fn next(
    rx: &mut mpsc::UnboundedReceiver<Value>,
    within: Duration,
) -> Option<Value> {
    tokio::time::timeout(within, rx.recv()).await.ok().flatten()
}

pub(crate) fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn each_write_sends_one_purge_naming_exactly_the_touched_feeds() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let mut rx = start_receiver(listener).await;
    let app = spawn(Options {
        purge_urls: vec![format!("http://{addr}/purge")],
        articles_dir: None,
        items_per_feed: Some(2),
        public_url: Some("https://feeds.baolongan.example/".into()),
        ..Default::default()
    })
    .await;

    // Every feed answer names its feed and language for the CDN, in both headers.
    let mut a = article("cdn-1", "en", "the-thao", "2026-11-25T08:00:00");
    a["tags"] = serde_json::json!(["football"]);
    a["author"] = "Quốc Bảo".into();
    assert_eq!(app.put("cdn-1", &a).await.status(), 201);
    let r = app.get("/en/sports/rss.xml").await;
    assert_eq!(
        r.headers()["surrogate-key"],
        "feed-en-category-the-thao lang-en"
    );
    assert_eq!(
        r.headers()["cache-tag"],
        "feed-en-category-the-thao,lang-en"
    );

    // So does the 404 of a feed that has no article yet: a CDN that cached it drops it with the
    // purge of the write that creates the feed.
    let none = app.get("/en/tag/not-yet/rss.xml").await;
    assert_eq!(none.status(), 404);
    assert_eq!(
        none.headers()["surrogate-key"],
        "feed-en-tag-not-yet lang-en"
    );
    assert_eq!(none.headers()["cache-tag"], "feed-en-tag-not-yet,lang-en");

    let first = next(&mut rx, Duration::from_secs(10))
        .await
        .expect("a purge");
    let want_keys: BTreeSet<String> = [
        "feed-en",
        "feed-en-category-the-thao",
        "feed-en-tag-football",
        "feed-en-author-quoc-bao",
    ]
    .map(String::from)
    .into();
    assert_eq!(strings(&first["keys"]), want_keys);
    let urls = strings(&first["urls"]);
    for dir in [
        "/en/",
        "/en/sports/",
        "/en/tag/football/",
        "/en/author/quoc-bao/",
    ] {
        for f in ["rss.xml", "atom.xml", "feed.json"] {
            let u = format!("https://feeds.baolongan.example{dir}{f}");
            assert!(urls.contains(&u), "{u} missing from {urls:?}");
        }
    }
    assert!(
        urls.iter()
            .all(|u| u.starts_with("https://feeds.baolongan.example/en/")),
        "nothing outside the touched feeds: {urls:?}"
    );

    // Three more sports articles: the category now has two pages of two, and the purge lists
    // its pages, all formats.
    for i in 2..=4 {
        let id = format!("cdn-{i}");
        let a = article(&id, "en", "the-thao", &format!("2026-11-2{i}T08:00:00"));
        assert_eq!(app.put(&id, &a).await.status(), 201);
    }
    let mut last = Value::Null;
    for _ in 2..=4 {
        last = next(&mut rx, Duration::from_secs(10))
            .await
            .expect("one purge per write");
    }
    let urls = strings(&last["urls"]);
    for page in ["", "?page=2"] {
        for f in ["rss.xml", "atom.xml", "feed.json"] {
            let u = format!("https://feeds.baolongan.example/en/sports/{f}{page}");
            assert!(urls.contains(&u), "{u} missing");
        }
    }
    assert!(
        next(&mut rx, Duration::from_millis(500)).await.is_none(),
        "exactly one purge per write"
    );

    // A write that changes nothing purges nothing.
    let a = article("cdn-4", "en", "the-thao", "2026-11-24T08:00:00");
    assert_eq!(app.put("cdn-4", &a).await.status(), 200);
    assert!(next(&mut rx, Duration::from_millis(700)).await.is_none());

    // A delete purges what the article was in.
    let r = app
        .client
        .delete(app.url("/api/v1/articles/cdn-1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let gone = next(&mut rx, Duration::from_secs(10))
        .await
        .expect("a purge");
    assert!(strings(&gone["keys"]).contains("feed-en-tag-football"));
}

#[tokio::test]
async fn writes_do_not_wait_for_a_receiver_that_is_down_and_purges_arrive_when_it_is_back() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let app = spawn(Options {
        purge_urls: vec![format!("http://{addr}/purge")],
        articles_dir: None,
        ..Default::default()
    })
    .await;
    let started = Instant::now();
    for i in 0..5 {
        let id = format!("cdn-down-{i}");
        let a = article(&id, "vi", "giao-duc", "2026-11-25T08:00:00");
        assert_eq!(app.put(&id, &a).await.status(), 201);
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "writes waited for the purge receiver: {:?}",
        started.elapsed()
    );
    // The receiver stays down until a purge has failed (the event), then comes back.
    let metrics = app.server.app.metrics().clone();
    until("a purge failed", || failed(&metrics.cdn_purges) > 0).await;
    let mut rx = start_receiver(TcpListener::bind(addr).await.unwrap()).await;
    let mut got = 0;
    while got < 5 {
        next(&mut rx, Duration::from_secs(20))
            .await
            .expect("the purges are retried once the receiver is back");
        got += 1;
    }
}

#[tokio::test]
async fn purge_kind_xkey_sends_purge_with_the_keys_in_an_xkey_purge_header() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let receiver = Router::new().route(
        "/",
        axum::routing::any(
            move |method: axum::http::Method, headers: axum::http::HeaderMap, body: String| {
                let tx = tx.clone();
                async move {
                    let keys = headers
                        .get("xkey-purge")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send((method.to_string(), keys, body));
                    axum::http::StatusCode::OK
                }
            },
        ),
    );
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    let app = spawn(Options {
        purge_urls: vec![format!("http://{addr}/")],
        articles_dir: None,
        tweak: Some(|c| c.purge_kind = bantin::config::PurgeKind::Xkey),
        ..Default::default()
    })
    .await;
    let a = article("xkey-1", "vi", "kinh-te", "2026-11-25T08:00:00");
    assert_eq!(app.put("xkey-1", &a).await.status(), 201);
    let (method, keys, body) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a purge within 10 s")
        .unwrap();
    assert_eq!(method, "PURGE");
    assert_eq!(body, "", "the keys are in the header, not a body");
    let keys: BTreeSet<&str> = keys.split(' ').collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "feed-vi",
            "feed-vi-category-kinh-te",
            "feed-vi-tag-bai-thu",
            "feed-vi-author-phong-vien-thu",
        ])
    );
}
