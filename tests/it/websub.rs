//! WebSub publishing against a real local HTTP server acting as the hub.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::helpers::*;

/// A hub that records every publish ping's form body.
async fn start_hub(
    listener: TcpListener,
) -> (
    mpsc::UnboundedReceiver<(String, String)>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/hub",
        post(move |body: String| {
            let tx = tx.clone();
            async move {
                let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect();
                let get = |k: &str| {
                    form.iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let _ = tx.send((get("hub.mode"), get("hub.url")));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (rx, task)
}

async fn collect(
    rx: &mut mpsc::UnboundedReceiver<(String, String)>,
    want: usize,
    within: Duration,
) -> Vec<(String, String)> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < want {
        match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
            Ok(Some(p)) => got.push(p),
            _ => break,
        }
    }
    got
}

#[tokio::test]
async fn a_write_pings_the_hub_once_per_touched_feed_and_format() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub: SocketAddr = listener.local_addr().unwrap();
    let (mut rx, _hub) = start_hub(listener).await;
    let app = spawn(Options {
        hubs: vec![format!("http://{hub}/hub")],
        articles_dir: None,
        ..Default::default()
    })
    .await;

    // Feeds advertise the external hub after the built-in one, in the documents and the headers.
    let r = app.get("/vi/rss.xml").await;
    let link = r.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(
        link,
        format!(
            "<{}/websub>; rel=\"hub\", <http://{hub}/hub>; rel=\"hub\", <{}/vi/rss.xml>; rel=\"self\"",
            app.base, app.base
        )
    );
    assert!(r.text().await.unwrap().contains(&format!(
        "<atom:link href=\"http://{hub}/hub\" rel=\"hub\"/>"
    )));
    assert!(
        app.get_text("/vi/atom.xml")
            .await
            .contains(&format!("href=\"http://{hub}/hub\" rel=\"hub\""))
    );
    let json: serde_json::Value =
        serde_json::from_str(&app.get_text("/vi/feed.json").await).unwrap();
    assert_eq!(json["hubs"][0]["type"], "WebSub");

    let mut a = article("ws-1", "en", "the-thao", "2026-11-25T08:00:00");
    a["tags"] = serde_json::json!(["football"]);
    a["author"] = "Quốc Bảo".into();
    assert_eq!(app.put("ws-1", &a).await.status(), 201);
    // Touched: en language, en sports, en tag football, en author quoc-bao; × 3 formats.
    let got = collect(&mut rx, 12, Duration::from_secs(10)).await;
    let mut topics: Vec<String> = got
        .iter()
        .map(|(mode, url)| {
            assert_eq!(mode, "publish");
            url.strip_prefix(&app.base).unwrap().to_string()
        })
        .collect();
    topics.sort();
    let mut want: Vec<String> = [
        "/en/",
        "/en/sports/",
        "/en/tag/football/",
        "/en/author/quoc-bao/",
    ]
    .iter()
    .flat_map(|d| ["rss.xml", "atom.xml", "feed.json"].map(|f| format!("{d}{f}")))
    .collect();
    want.sort();
    assert_eq!(topics, want);
    assert!(
        collect(&mut rx, 1, Duration::from_millis(500))
            .await
            .is_empty(),
        "one ping per topic"
    );

    // A no-op write pings nobody.
    assert_eq!(app.put("ws-1", &a).await.status(), 200);
    assert!(
        collect(&mut rx, 1, Duration::from_millis(700))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_dead_hub_never_delays_the_write_and_is_pinged_when_it_returns() {
    // Reserve a port, then close it: the hub is down.
    let hub = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let app = spawn(Options {
        hubs: vec![format!("http://{hub}/hub")],
        articles_dir: None,
        ..Default::default()
    })
    .await;
    let a = article("ws-2", "vi", "giao-duc", "2026-11-25T08:00:00");
    let started = Instant::now();
    assert_eq!(app.put("ws-2", &a).await.status(), 201);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "the write does not wait for the hub: {:?}",
        started.elapsed()
    );

    // The hub stays down until a ping has failed (the event), then comes back.
    let metrics = app.server.app.metrics().clone();
    until("a ping failed", || failed(&metrics.websub_pings) > 0).await;
    let (mut rx, _hub) = start_hub(TcpListener::bind(hub).await.unwrap()).await;
    let got = collect(&mut rx, 1, Duration::from_secs(15)).await;
    assert!(!got.is_empty(), "the ping is retried once the hub is back");
    // Waits for the category feed's ping (an event), not for a count that never comes.
    let wanted = format!("{}/vi/giao-duc/rss.xml", app.base);
    let mut all = got;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all.iter().any(|(_, u)| *u == wanted) && Instant::now() < deadline {
        all.extend(collect(&mut rx, 1, deadline - Instant::now()).await);
    }
    assert!(all.iter().any(|(_, u)| *u == wanted), "{all:?}");
}

#[tokio::test]
async fn a_hanging_hub_does_not_delay_the_others() {
    // A hub that accepts connections and never answers: its pings wait for their timeout.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_addr = hang.local_addr().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live: SocketAddr = listener.local_addr().unwrap();
    let (mut rx, _hub) = start_hub(listener).await;
    let app = spawn(Options {
        hubs: vec![
            format!("http://{hang_addr}/hub"),
            format!("http://{live}/hub"),
        ],
        articles_dir: None,
        ..Default::default()
    })
    .await;
    for i in 0..3 {
        let id = format!("ws-hang-{i}");
        let a = article(&id, "vi", "giao-duc", "2026-11-25T08:00:00");
        assert_eq!(app.put(&id, &a).await.status(), 201);
    }
    let started = Instant::now();
    let got = collect(&mut rx, 12, Duration::from_secs(5)).await;
    assert!(
        got.len() >= 12,
        "the live hub got {} pings while the other hung",
        got.len()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(hang);
}
