//! The edge over real sockets: deadlines close slow, silent and non-reading clients; the
//! connection cap sheds silent connections before anyone else; oversized heads and missing Hosts
//! are refused on both HTTP paths; closing never resets a pipelining client; a second instance
//! cannot take over the address; store failures never show their SQL.

use std::time::{Duration, Instant};

use bantin::config::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Deadlines short enough for tests: every timeout one second unless a test says otherwise.
fn quick() -> ServerConfig {
    ServerConfig {
        head_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        send_timeout: Duration::from_secs(1),
        body_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    }
}

async fn spawn_with(server: ServerConfig) -> TestApp {
    spawn(Options {
        server: Some(server),
        ..Options::default()
    })
    .await
}

/// Reads until the server closes the connection (or `limit` passes); returns what arrived and
/// when the close came, `None` if it never did.
async fn until_closed(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<Duration>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (got, Some(start.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, None),
        }
    }
}

/// Like [`until_closed`], but also says whether the close was clean (end of input) rather than a
/// reset, which could have destroyed the answer before the client read it.
async fn until_eof(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, Option<bool>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) => return (got, Some(true)),
            Ok(Err(_)) => return (got, Some(false)),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (got, None),
        }
    }
}

/// One complete response from `s` (status, head text, body), honouring Content-Length.
async fn response(s: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, String, Vec<u8>) {
    let mut tmp = [0u8; 65536];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            let status: u16 = head[9..12].parse().unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            let len = if status == 304 { 0 } else { len };
            while buf.len() < end + 4 + len {
                let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut tmp))
                    .await
                    .expect("a response in time")
                    .unwrap();
                assert!(n > 0, "closed mid-body");
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return (status, head, body);
        }
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut tmp))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before a response");
        buf.extend_from_slice(&tmp[..n]);
    }
}

const GET: &str = "GET /vi/rss.xml HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test]
async fn a_silent_connection_and_a_slowloris_are_closed_by_the_head_timeout() {
    let app = spawn_with(quick()).await;
    let mut silent = TcpStream::connect(app.server.addr).await.unwrap();
    let mut slow = TcpStream::connect(app.server.addr).await.unwrap();
    let trickle = tokio::spawn(async move {
        // A header line every 200 ms: each byte is progress, but the head is never complete.
        slow.write_all(b"GET /vi/rss.xml HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        for i in 0..50 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if slow
                .write_all(format!("X-Drip-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return Some(started.elapsed());
            }
            let mut probe = [0u8; 1];
            if let Ok(Ok(0)) =
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
            {
                return Some(started.elapsed());
            }
        }
        None
    });
    let (got, closed) = until_closed(&mut silent, Duration::from_secs(5)).await;
    let closed = closed.expect("the silent connection is closed");
    assert!(got.is_empty(), "nothing is sent to a silent client");
    assert!(
        closed >= Duration::from_millis(800) && closed < Duration::from_secs(3),
        "closed at the 1 s head timeout, not before: {closed:?}"
    );
    let slow_closed = trickle.await.unwrap().expect("the slowloris is closed");
    assert!(
        slow_closed < Duration::from_secs(3),
        "trickling headers does not extend the head deadline: {slow_closed:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_by_the_idle_timeout() {
    let app = spawn_with(ServerConfig {
        head_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(1),
        ..quick()
    })
    .await;
    let mut s = TcpStream::connect(app.server.addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(GET.as_bytes()).await.unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);
    // A request within the idle timeout is answered on the same connection.
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.write_all(GET.as_bytes()).await.unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);
    // Then silence: closed one idle timeout after the last response, well before the 5 s head
    // timeout.
    let (got, closed) = until_closed(&mut s, Duration::from_secs(5)).await;
    let closed = closed.expect("the idle connection is closed");
    assert!(got.is_empty());
    assert!(
        closed >= Duration::from_millis(800) && closed < Duration::from_secs(3),
        "{closed:?}"
    );

    // The same on a connection hyper serves (handed over by an API request).
    let mut s = TcpStream::connect(app.server.addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);
    let (_, closed) = until_closed(&mut s, Duration::from_secs(5)).await;
    let closed = closed.expect("hyper's idle connection is closed too");
    assert!(closed < Duration::from_secs(3), "{closed:?}");
}

#[tokio::test]
async fn a_client_that_reads_nothing_is_dropped_by_the_send_timeout_and_its_memory_freed() {
    let app = spawn_with(quick()).await;
    let _ = app.get("/vi/rss.xml").await;
    let s = TcpStream::connect(app.server.addr).await.unwrap();
    let sock = socket_with_small_buffer(s);
    let mut s = sock;
    // Two hundred pipelined GETs of the identity body (~100 KB each): far more than the socket
    // buffers hold, and this client never reads.
    let many = GET.repeat(200);
    s.write_all(many.as_bytes()).await.unwrap();
    // Long enough for the server to begin answering and fill the buffers.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Invalidate the feed: the stuck response now holds the only reference to the old body.
    let r = app
        .put(
            "edge-send-timeout",
            &article("edge-send-timeout", "vi", "kinh-te", "2026-11-20T08:00:00"),
        )
        .await;
    assert_eq!(r.status(), 201);
    let _ = app.get("/vi/rss.xml").await;
    let cache = &app.server.app.cache();
    let deadline = Instant::now() + Duration::from_secs(8);
    loop {
        cache.settle().await;
        if cache.live_bytes() == cache.weighted_size() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stuck response's body is still alive: {} live bytes, {} in the cache",
            cache.live_bytes(),
            cache.weighted_size()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The server gave up on the connection: reading now ends (after whatever the buffers held).
    let (_, closed) = until_closed(&mut s, Duration::from_secs(10)).await;
    assert!(closed.is_some(), "the non-reading client was dropped");
}

/// A client socket with a small receive buffer, so a server's writes block quickly.
fn socket_with_small_buffer(s: TcpStream) -> TcpStream {
    let std = s.into_std().unwrap();
    let sock = socket2::SockRef::from(&std);
    sock.set_recv_buffer_size(4096).unwrap();
    TcpStream::from_std(std).unwrap()
}

#[tokio::test]
async fn at_the_cap_silent_connections_are_shed_first_and_a_real_client_is_served() {
    let app = spawn_with(ServerConfig {
        max_connections: 20,
        head_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
        ..quick()
    })
    .await;
    // Six keep-alive connections that have each been answered once, now idle (fewer than one
    // worker's share of the cap even if the kernel gives them all to one worker).
    let mut idle = Vec::new();
    for _ in 0..6 {
        let mut s = TcpStream::connect(app.server.addr).await.unwrap();
        let mut buf = Vec::new();
        s.write_all(GET.as_bytes()).await.unwrap();
        assert_eq!(response(&mut s, &mut buf).await.0, 200);
        idle.push(s);
    }
    // A flood of silent connections, three times the cap.
    let mut silent = Vec::new();
    for _ in 0..60 {
        silent.push(TcpStream::connect(app.server.addr).await.unwrap());
    }
    // A new client is served at once.
    let started = Instant::now();
    let r = app.client.get(app.url("/vi/rss.xml")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    // Most silent connections were closed to make room; every idle one still answers.
    let mut closed = 0;
    for s in &mut silent {
        let mut b = [0u8; 1];
        // Closed or reset: either way the server let go of it.
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(20), s.read(&mut b)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 35,
        "only {closed} of 60 silent connections were shed"
    );
    for s in &mut idle {
        let mut buf = Vec::new();
        s.write_all(GET.as_bytes()).await.unwrap();
        assert_eq!(
            response(s, &mut buf).await.0,
            200,
            "an idle connection was shed before silent ones"
        );
    }
    let metrics = app.get_text("/metrics").await;
    assert!(
        metrics.contains("bantin_connections_shed_total"),
        "{metrics}"
    );
}

#[tokio::test]
async fn oversized_heads_get_431_and_a_close_on_both_paths() {
    let app = spawn_default().await;
    let big = format!(
        "GET /vi/rss.xml HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    // Fast path: the first request on a connection. The client has sent more than the server
    // read: the close must still be clean, not a reset that could destroy the 431.
    let mut s = TcpStream::connect(app.server.addr).await.unwrap();
    let _ = s.write_all(big.as_bytes()).await;
    let (got, clean) = until_eof(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    assert_eq!(clean, Some(true), "a clean close after the 431");
    // Hyper: a connection already handed over.
    let mut s = TcpStream::connect(app.server.addr).await.unwrap();
    let mut buf = Vec::new();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(response(&mut s, &mut buf).await.0, 200);
    let _ = s.write_all(big.as_bytes()).await;
    let (got, clean) = until_eof(&mut s, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
    assert_eq!(
        clean,
        Some(true),
        "hyper's 431 is followed by a clean close too"
    );
    // A head just under the limit is fine.
    let ok = format!(
        "GET /vi/rss.xml HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(12 * 1024)
    );
    let mut s = TcpStream::connect(app.server.addr).await.unwrap();
    s.write_all(ok.as_bytes()).await.unwrap();
    assert_eq!(response(&mut s, &mut Vec::new()).await.0, 200);
}

#[tokio::test]
async fn http11_without_exactly_one_host_is_400_on_both_paths() {
    let app = spawn_default().await;
    for bad in [
        "GET /vi/rss.xml HTTP/1.1\r\n\r\n",
        "GET /vi/rss.xml HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET /api/v1/openapi.json HTTP/1.1\r\n\r\n",
    ] {
        let mut s = TcpStream::connect(app.server.addr).await.unwrap();
        s.write_all(bad.as_bytes()).await.unwrap();
        let (status, head, body) = response(&mut s, &mut Vec::new()).await;
        assert_eq!(status, 400, "{bad:?}");
        assert!(head.to_ascii_lowercase().contains("connection: close"));
        assert!(String::from_utf8_lossy(&body).contains("Host"));
        // Hyper path.
        let mut s = TcpStream::connect(app.server.addr).await.unwrap();
        let mut buf = Vec::new();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(response(&mut s, &mut buf).await.0, 200);
        s.write_all(bad.as_bytes()).await.unwrap();
        assert_eq!(response(&mut s, &mut buf).await.0, 400, "hyper: {bad:?}");
    }
    // HTTP/1.0 needs no Host.
    let mut s = TcpStream::connect(app.server.addr).await.unwrap();
    s.write_all(b"GET /vi/rss.xml HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(response(&mut s, &mut Vec::new()).await.0, 200);
}

#[tokio::test]
async fn closing_after_a_pipelined_request_does_not_reset_the_answer() {
    let app = spawn_default().await;
    let _ = app.get("/vi/rss.xml").await;
    for _ in 0..5 {
        let mut s = TcpStream::connect(app.server.addr).await.unwrap();
        // The first request asks to close; more requests follow in the same write, which the
        // server will never answer. Closing with them unread must not reset the first answer.
        let mut batch =
            "GET /vi/rss.xml HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_string();
        batch.push_str(&GET.repeat(200));
        s.write_all(batch.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
            .await
            .expect("closed in time")
            .expect("a clean close, not a reset");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200 "));
        assert!(
            text.trim_end().ends_with("</rss>"),
            "the whole body arrived"
        );
        assert_eq!(text.matches("HTTP/1.1 200").count(), 1);
    }
}

#[tokio::test]
async fn a_stalled_request_body_is_abandoned_at_the_body_timeout() {
    let app = spawn_with(quick()).await;
    let mut s = TcpStream::connect(app.server.addr).await.unwrap();
    let head = format!(
        "PUT /api/v1/articles/edge-body HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"id\":"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (_, closed) = until_closed(&mut s, Duration::from_secs(6)).await;
    let closed = closed.expect("the connection is given up");
    assert!(closed < Duration::from_secs(4), "{closed:?}");
    let r = app
        .client
        .get(app.url("/api/v1/articles/edge-body"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "nothing half-written");
}

#[tokio::test]
async fn a_second_instance_on_the_same_address_exits_naming_it() {
    let app = spawn_default().await;
    let addr = app.server.addr.to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_bantin"))
            .args(["--config", site_toml().to_str().unwrap(), "serve"])
            .env("BANTIN_LISTEN", &addr)
            .env(
                "BANTIN_DATABASE_URL",
                format!("sqlite://{}/b.db", dir.path().display()),
            )
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success(), "the second instance must not start");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&app.server.addr.to_string()), "{err}");
    // The first still serves.
    assert_eq!(app.get("/vi/rss.xml").await.status(), 200);
}

#[tokio::test]
async fn store_failures_name_a_request_id_never_sql() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("broken.db");
    let app = spawn(Options {
        database_url: Some(format!("sqlite://{}", db.display())),
        ..Options::default()
    })
    .await;
    // Break the store under the running server.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DROP TABLE article_tags; DROP TABLE articles;")
        .unwrap();
    drop(conn);
    let r = app
        .client
        .get(app.url("/api/v1/articles/la-2026-0412"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
    let body: serde_json::Value = r.json().await.unwrap();
    let text = body.to_string();
    for leak in ["no such table", "SELECT", "sqlite", "articles"] {
        assert!(!text.contains(leak), "{leak} leaked: {text}");
    }
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{text}"
    );
    // A feed that was never cached: the text answer names an id too.
    for path in ["/en/sports/atom.xml", "/vi/tag/khong-co/rss.xml"] {
        let r = app.get(path).await;
        assert!(r.status().is_server_error(), "{path}: {}", r.status());
        let text = r.text().await.unwrap();
        assert!(!text.contains("no such table"), "{text}");
        assert!(text.contains("request id"), "{text}");
    }
}
