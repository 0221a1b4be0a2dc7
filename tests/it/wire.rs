//! HTTP/1.1 on the wire: the poll fast path and the hyper path give the same answers, and
//! keep-alive, pipelining, HTTP/1.0 and mid-connection hand-over behave.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::*;

/// One parsed response: status, headers (lower-case names), body.
#[derive(Debug, Clone, PartialEq)]
struct Resp {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// Reads one response from `buf` (refilling from `s`), honouring Content-Length and HEAD/304.
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Resp {
    let mut tmp = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let status: u16 = lines
                .next()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            let headers: BTreeMap<String, String> = lines
                .map(|l| {
                    let (k, v) = l.split_once(": ").unwrap();
                    (k.to_ascii_lowercase(), v.to_string())
                })
                .collect();
            let len = if head_only || status == 304 {
                0
            } else {
                headers
                    .get("content-length")
                    .map(|v| v.parse().unwrap())
                    .unwrap_or(0)
            };
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).unwrap();
                assert!(n > 0, "connection closed mid-body");
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Resp {
                status,
                headers,
                body,
            };
        }
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "connection closed before a response");
        buf.extend_from_slice(&tmp[..n]);
    }
}

fn connect(app: &TestApp) -> TcpStream {
    let s = TcpStream::connect(app.server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn request(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n")
}

fn without_date(mut r: Resp) -> Resp {
    assert!(
        r.headers.remove("date").is_some(),
        "every answer carries a Date"
    );
    r
}

#[tokio::test]
async fn fast_path_and_hyper_path_answer_alike() {
    let app = spawn_default().await;
    let _ = app.get("/vi/rss.xml").await;
    tokio::task::spawn_blocking(move || {
        for (path, extra) in [
            ("/vi/rss.xml", ""),
            ("/vi/rss.xml", "Accept-Encoding: gzip\r\n"),
            ("/en/defence/atom.xml", "Accept-Encoding: br, gzip\r\n"),
            ("/vi/feed.json", ""),
            ("/vi/tag/khong-co/rss.xml", ""),
            ("/vi/rss.xml?page=9", ""),
        ] {
            // Fast: the first request on a fresh connection.
            let mut fast = connect(&app);
            fast.write_all(request(path, extra).as_bytes()).unwrap();
            let a = read_response(&mut fast, &mut Vec::new(), false);
            // Hyper: a connection already handed over by an API request.
            let mut slow = connect(&app);
            let mut buf = Vec::new();
            slow.write_all(request("/healthz", "").as_bytes()).unwrap();
            assert_eq!(read_response(&mut slow, &mut buf, false).status, 200);
            slow.write_all(request(path, extra).as_bytes()).unwrap();
            let b = read_response(&mut slow, &mut buf, false);
            let (a, b) = (without_date(a), without_date(b));
            assert_eq!(a, b, "{path} {extra}: the two paths differ");
            // And its 304.
            if a.status == 200 {
                let etag = a.headers["etag"].clone();
                let cond = format!("{extra}If-None-Match: {etag}\r\n");
                fast.write_all(request(path, &cond).as_bytes()).unwrap();
                let a = without_date(read_response(&mut fast, &mut Vec::new(), false));
                slow.write_all(request(path, &cond).as_bytes()).unwrap();
                let b = without_date(read_response(&mut slow, &mut buf, false));
                assert_eq!(a.status, 304);
                assert_eq!(a, b, "{path}: 304s differ");
            }
        }
        drop(app);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn pipelining_keep_alive_head_and_http10() {
    let app = spawn_default().await;
    tokio::task::spawn_blocking(move || {
        let mut s = connect(&app);
        let mut buf = Vec::new();
        // Three pipelined requests in one write, answered in order.
        let batch = format!(
            "{}{}HEAD /vi/rss.xml HTTP/1.1\r\nHost: t\r\n\r\n",
            request("/vi/rss.xml", ""),
            request("/en/rss.xml", "Accept-Encoding: gzip\r\n")
        );
        s.write_all(batch.as_bytes()).unwrap();
        let a = read_response(&mut s, &mut buf, false);
        let b = read_response(&mut s, &mut buf, false);
        let h = read_response(&mut s, &mut buf, true);
        assert_eq!((a.status, b.status, h.status), (200, 200, 200));
        assert!(String::from_utf8_lossy(&a.body).contains("<language>vi</language>"));
        assert_eq!(b.headers["content-encoding"], "gzip");
        assert_eq!(h.headers["content-length"], a.body.len().to_string(), "HEAD has GET's length");
        assert_eq!(h.headers["etag"], a.headers["etag"]);
        // Then an API request on the same connection: handed over to hyper mid-connection.
        s.write_all(request("/api/v1/openapi.json", "").as_bytes()).unwrap();
        let api = read_response(&mut s, &mut buf, false);
        assert_eq!(api.status, 200);
        assert!(String::from_utf8_lossy(&api.body).contains("\"openapi\""));
        s.write_all(request("/vi/rss.xml", "").as_bytes()).unwrap();
        assert_eq!(read_response(&mut s, &mut buf, false).body, a.body, "still served after the hand-over");

        // HTTP/1.0 closes unless asked to keep alive.
        let mut s = connect(&app);
        s.write_all(b"GET /vi/rss.xml HTTP/1.0\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        let r = read_response(&mut s, &mut buf, false);
        assert_eq!(r.headers.get("connection"), None, "closing is HTTP/1.0's default");
        assert_eq!(s.read(&mut [0u8; 16]).unwrap(), 0, "closed after the answer");
        let mut s = connect(&app);
        s.write_all(b"GET /vi/rss.xml HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /en/rss.xml HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        let first = read_response(&mut s, &mut buf, false);
        assert_eq!(first.headers.get("connection").map(String::as_str), Some("keep-alive"));
        assert_eq!(read_response(&mut s, &mut buf, false).status, 200);

        // A request split across writes is assembled.
        let mut s = connect(&app);
        s.write_all(b"GET /vi/rss.xml HT").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"TP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
        let r = read_response(&mut s, &mut Vec::new(), false);
        assert_eq!(r.body, a.body);
        drop(app);
    })
    .await
    .unwrap();
}

/// Sends `raw` on a fresh connection (the fast path) and on one hyper already serves (after a
/// `/healthz`), and returns both answers, which must be the same.
fn both_paths(app: &TestApp, raw: &str) -> Resp {
    let mut fast = connect(app);
    fast.write_all(raw.as_bytes()).unwrap();
    let a = read_response(&mut fast, &mut Vec::new(), raw.starts_with("HEAD"));
    let mut slow = connect(app);
    let mut buf = Vec::new();
    slow.write_all(request("/healthz", "").as_bytes()).unwrap();
    assert_eq!(read_response(&mut slow, &mut buf, false).status, 200);
    slow.write_all(raw.as_bytes()).unwrap();
    let b = read_response(&mut slow, &mut buf, raw.starts_with("HEAD"));
    let (a, b) = (without_date(a), without_date(b));
    assert_eq!(a, b, "{raw:?}: the two paths differ");
    a
}

const READER: &str = "Miniflux/2.2.3 (https://miniflux.app; Linux)";

/// The `feed` labels of the subscriber gauges in `/metrics`.
async fn metric_feeds(app: &TestApp) -> Vec<String> {
    let text = app.get_text("/metrics").await;
    text.lines()
        .filter_map(|l| l.strip_prefix("bantin_feed_subscribers{feed=\""))
        .map(|l| l.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn non_canonical_paths_are_redirected_or_404_and_never_counted() {
    let app = std::sync::Arc::new(spawn_default().await);
    let a = app.clone();
    tokio::task::spawn_blocking(move || {
        let app = a;
        // Spellings that normalise to a feed: 301 to its one path, the query kept.
        for (path, to) in [
            ("//vi/rss.xml", "/vi/rss.xml"),
            ("///vi/rss.xml", "/vi/rss.xml"),
            ("//////////vi/rss.xml", "/vi/rss.xml"),
            ("/vi//rss.xml", "/vi/rss.xml"),
            ("/vi/./rss.xml", "/vi/rss.xml"),
            ("/./vi/rss.xml", "/vi/rss.xml"),
            ("/vi/../vi/rss.xml", "/vi/rss.xml"),
            ("/en/../vi/rss.xml", "/vi/rss.xml"),
            ("/%76i/rss.xml", "/vi/rss.xml"),
            ("/vi/rss%2Exml", "/vi/rss.xml"),
            ("/vi//kinh-te//atom.xml", "/vi/kinh-te/atom.xml"),
            ("//vi/rss.xml?page=2", "/vi/rss.xml?page=2"),
            ("//feeds.opml", "/feeds.opml"),
            ("/vi", "/vi/"),
        ] {
            for method in ["GET", "HEAD"] {
                let raw = format!(
                    "{method} {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: {READER} {path}\r\n\r\n"
                );
                let r = both_paths(&app, &raw);
                assert_eq!(r.status, 301, "{method} {path}");
                assert_eq!(r.headers["location"], to, "{path}");
                assert!(
                    !r.headers.contains_key("etag"),
                    "{path}: no feed in a redirect"
                );
            }
        }
        // Spellings that name nothing: 404, also on both paths.
        for path in [
            "/vi/rss.xml/",
            "/vi/rss.xml//",
            "/vi/rss.xml;jsessionid=1",
            "/vi/rss.xml%00",
            "/vi/rss.xmlx",
            "/vi/rss.xml/x",
            "/vi%2Frss.xml",
            "/vi/tag/GIA-LUA/rss.xml",
            "/vi/tag/gia--lua/rss.xml",
            "//evil.example/vi/rss.xml",
        ] {
            let raw =
                format!("GET {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: {READER} {path}\r\n\r\n");
            let r = both_paths(&app, &raw);
            assert_eq!(r.status, 404, "{path}");
            assert!(!r.headers.contains_key("location"), "{path}");
        }
        // The attack of the issue: one pipelined write of many spellings, each a distinct
        // reader. Every one is redirected, in order, on one connection.
        let mut s = connect(&app);
        let mut batch = String::new();
        let n = 300;
        for k in 1..=n {
            batch.push_str(&format!(
                "GET /{}vi/rss.xml HTTP/1.1\r\nHost: t\r\nUser-Agent: {READER} #{k}\r\n\r\n",
                "/".repeat(k)
            ));
        }
        s.write_all(batch.as_bytes()).unwrap();
        let mut buf = Vec::new();
        for k in 1..=n {
            let r = read_response(&mut s, &mut buf, false);
            assert_eq!(r.status, 301, "spelling {k}");
        }
        // And one real reader of the canonical feed, so there are figures to look at.
        let mut s = connect(&app);
        s.write_all(
            format!("GET /vi/rss.xml HTTP/1.1\r\nHost: t\r\nUser-Agent: {READER}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(read_response(&mut s, &mut Vec::new(), false).status, 200);
    })
    .await
    .unwrap();

    app.server.app.readership().flush().await.unwrap();
    let stats: serde_json::Value = app
        .client
        .get(app.url("/api/v1/stats?days=1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let feeds: Vec<&serde_json::Value> = stats["days"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["feeds"].as_array().unwrap())
        .collect();
    let names: Vec<&str> = feeds.iter().map(|f| f["feed"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["/vi/rss.xml"],
        "only the canonical feed has figures"
    );
    assert_eq!(feeds[0]["polls"], 1, "redirects and 404s are not polls");
    assert_eq!(feeds[0]["subscribers"], 1, "one reader, not 300");
    let series = metric_feeds(&app).await;
    assert_eq!(series, ["/vi/rss.xml"], "one metric series");
    let config = &app.server.app.config();
    assert!(
        series
            .iter()
            .all(|f| bantin::http::feeds::parse_path(config, f).is_ok())
    );
}

#[tokio::test]
async fn options_is_a_cors_preflight_on_both_paths() {
    let app = spawn_default().await;
    let _ = app.get("/vi/rss.xml").await;
    tokio::task::spawn_blocking(move || {
        for path in [
            "/vi/rss.xml",
            "/en/defence/atom.xml",
            "/vi/tag/gia-lua/feed.json",
            "/feeds.opml",
            "/vi/",
            "/",
        ] {
            let raw = format!(
                "OPTIONS {path} HTTP/1.1\r\nHost: t\r\nOrigin: https://reader.example\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: if-none-match, if-modified-since\r\n\r\n"
            );
            let r = both_paths(&app, &raw);
            assert_eq!(r.status, 204, "{path}");
            let h = &r.headers;
            assert_eq!(h["access-control-allow-origin"], "*");
            assert_eq!(h["access-control-allow-methods"], "GET, HEAD, OPTIONS");
            let allowed = h["access-control-allow-headers"].to_ascii_lowercase();
            for wanted in ["if-none-match", "if-modified-since"] {
                assert!(allowed.contains(wanted), "{path}: {allowed}");
            }
            assert_eq!(h["access-control-max-age"], "86400");
            assert_eq!(h["allow"], "GET, HEAD, OPTIONS");
            assert!(r.body.is_empty());
        }
        // A path that names nothing is no more found by OPTIONS than by GET.
        let r = both_paths(&app, "OPTIONS /fr/rss.xml HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(r.status, 404);
        // What the browser then lets the reader see of a feed: its validator and its hub link.
        let r = both_paths(&app, &request("/vi/rss.xml", ""));
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["access-control-allow-origin"], "*");
        let exposed = r.headers["access-control-expose-headers"].to_ascii_lowercase();
        assert!(exposed.contains("etag"), "{exposed}");
        // Last-Modified is CORS-safelisted; it is sent, and needs no exposing.
        assert!(r.headers.contains_key("last-modified"));
        drop(app);
    })
    .await
    .unwrap();
}
