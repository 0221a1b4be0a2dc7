//! Property tests of the poll fast path on the wire (run in CI, like every test): arbitrary bytes
//! never panic a worker or hang a connection past its head deadline, and every well-formed feed
//! request gets the same status, headers and body from the fast path as from hyper.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bantin::config::ServerConfig;
use proptest::prelude::*;

use crate::helpers::*;

/// Panics on the server's HTTP worker threads, counted by a hook that keeps the default output.
fn count_worker_panics() -> Arc<AtomicUsize> {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with("bantin-http-"))
        {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        default(info)
    }));
    count
}

fn server() -> (tokio::runtime::Runtime, TestApp) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let app = rt.block_on(spawn(Options {
        server: Some(ServerConfig {
            head_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            ..ServerConfig::default()
        }),
        ..Options::default()
    }));
    (rt, app)
}

/// Sends `bytes`, half-closes, and reads until the server closes; `None` if it did not within
/// `limit`.
fn exchange(addr: SocketAddr, bytes: &[u8], limit: Duration) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(out),
        }
    }
    None
}

/// Status, headers (lower-case names, without Date) and body of one response.
type Parsed = (u16, BTreeMap<String, String>, Vec<u8>);

fn read_one(s: &mut TcpStream, buf: &mut Vec<u8>, head_only: bool) -> Parsed {
    let mut tmp = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let status = lines.next().unwrap()[9..12].parse().unwrap();
            let mut headers: BTreeMap<String, String> = lines
                .map(|l| {
                    let (k, v) = l.split_once(": ").unwrap();
                    (k.to_ascii_lowercase(), v.to_string())
                })
                .collect();
            headers.remove("date");
            let len = match (head_only, status) {
                (true, _) | (_, 304) => 0,
                _ => headers
                    .get("content-length")
                    .map_or(0, |v| v.parse().unwrap()),
            };
            while buf.len() < end + 4 + len {
                let n = s.read(&mut tmp).unwrap();
                assert!(n > 0, "closed mid-body");
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return (status, headers, body);
        }
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "closed before a response");
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// A well-formed GET or HEAD of something feed-shaped, with the headers pollers send.
fn request() -> impl Strategy<Value = (bool, String)> {
    let path = prop::sample::select(vec![
        "/vi/rss.xml",
        "/en/atom.xml",
        "/vi/feed.json",
        "/vi/kinh-te/rss.xml",
        "/en/defence/atom.xml",
        "/vi/rss.xml?page=2",
        "/vi/rss.xml?page=999",
        "/vi/rss.xml?utm_source=x&page=1",
        "/vi/tag/khong-co/rss.xml",
        "/fr/rss.xml",
        "/vi/rss2.xml",
        "/vi/rss.xml?page=0",
    ]);
    let ae = prop::option::of(prop::sample::select(vec![
        "gzip",
        "br",
        "gzip, deflate, br",
        "br;q=0.5, gzip;q=0.8",
        "identity",
        "*",
        "gzip;q=0",
    ]));
    let inm = prop::option::of(prop::sample::select(vec![
        "\"nope\"",
        "*",
        "W/\"x\", \"y\"",
    ]));
    let ims = prop::option::of(prop::sample::select(vec![
        "Thu, 01 Jan 2026 00:00:00 GMT",
        "Fri, 01 Jan 2100 00:00:00 GMT",
        "not a date",
    ]));
    let conn = prop::option::of(prop::sample::select(vec!["keep-alive", "close"]));
    (any::<bool>(), path, ae, inm, ims, conn, any::<bool>()).prop_map(
        |(head, path, ae, inm, ims, conn, http10)| {
            let mut r = format!(
                "{} {path} HTTP/1.{}\r\nHost: t\r\n",
                if head { "HEAD" } else { "GET" },
                if http10 { 0 } else { 1 }
            );
            for (k, v) in [
                ("Accept-Encoding", ae),
                ("If-None-Match", inm),
                ("If-Modified-Since", ims),
                ("Connection", conn),
            ] {
                if let Some(v) = v {
                    r.push_str(&format!("{k}: {v}\r\n"));
                }
            }
            r.push_str("\r\n");
            (head, r)
        },
    )
}

#[test]
fn arbitrary_bytes_never_panic_or_hang_the_fast_path() {
    let panics = count_worker_panics();
    let (_rt, app) = server();
    let addr = app.server.addr;
    let bytes = prop::collection::vec(any::<u8>(), 0..2048);
    // Bytes that look like the start of a request reach deeper into the parser.
    let prefixed = (
        prop::sample::select(vec![
            "GET /vi/rss.xml HTTP/1.1\r\n",
            "HEAD / HTTP/1.0\r\n",
            "",
        ]),
        prop::collection::vec(any::<u8>(), 0..1024),
    )
        .prop_map(|(p, rest)| [p.as_bytes(), &rest].concat());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(128));
    runner
        .run(&prop_oneof![bytes, prefixed], |input| {
            let out = exchange(addr, &input, Duration::from_secs(4));
            prop_assert!(out.is_some(), "the connection hung on {:?}", input);
            Ok(())
        })
        .unwrap();
    // The server still serves, and no worker panicked.
    let ok = exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        Duration::from_secs(4),
    )
    .expect("still answering");
    assert!(ok.starts_with(b"HTTP/1.1 200"));
    assert_eq!(panics.load(Ordering::SeqCst), 0, "a worker panicked");
}

#[test]
fn well_formed_requests_get_the_same_answer_from_both_paths() {
    let (rt, app) = server();
    let addr = app.server.addr;
    // Warm the cache so the fast path answers from its references, not only misses.
    rt.block_on(async {
        for p in ["/vi/rss.xml", "/en/atom.xml", "/vi/feed.json"] {
            let _ = app.get(p).await;
        }
    });
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(128));
    runner
        .run(&request(), |(head_only, req)| {
            // Fast: the first request on a fresh connection.
            let mut fast = TcpStream::connect(addr).unwrap();
            fast.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            fast.write_all(req.as_bytes()).unwrap();
            let a = read_one(&mut fast, &mut Vec::new(), head_only);
            // Hyper: a connection handed over by an operations request first.
            let mut slow = TcpStream::connect(addr).unwrap();
            slow.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut buf = Vec::new();
            slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            prop_assert_eq!(read_one(&mut slow, &mut buf, false).0, 200);
            slow.write_all(req.as_bytes()).unwrap();
            let mut b = read_one(&mut slow, &mut buf, head_only);
            // hyper echoes keep-alive for an HTTP/1.0 client only when asked; both paths do the
            // same, but hyper writes `Connection` for 1.0 in its own case.
            if let Some(v) = b.1.get_mut("connection") {
                *v = v.to_ascii_lowercase();
            }
            prop_assert_eq!(a.0, b.0, "status of {:?}", req);
            prop_assert_eq!(&a.1, &b.1, "headers of {:?}", req);
            prop_assert_eq!(a.2, b.2, "body of {:?}", req);
            Ok(())
        })
        .unwrap();
}
