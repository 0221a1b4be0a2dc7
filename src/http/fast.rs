//! The poll fast path: a lean HTTP/1.1 connection loop for feed GETs and HEADs.
//!
//! Aggregators poll thousands of feeds; nearly every request is a `GET` of a cached feed,
//! answered `304` or with a precompressed body. For those this loop parses the request head with
//! `httparse` (hyper's own parser), answers from the worker's thread-local copy of the cache entry,
//! writes the head in one `send(MSG_MORE)` and the body with `sendfile(2)` from the entry's memfd,
//! so a 50 KB gzip body is never copied through user space or into every socket, as nginx does
//! with a static file. Keep-alive and pipelining are honoured.
//!
//! Anything else on the connection (a request with a body, the API, `/metrics`, an `Upgrade`, a
//! head too large or malformed) hands the connection, with the bytes already read, to hyper and
//! the axum router for the rest of its life, so the fast path never has to be a complete server.
//! The header logic is shared with the axum path ([`super::feeds::plan`],
//! [`super::feeds::each_header`]); tests run every feed behaviour through both.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use axum::http::StatusCode;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::feeds::{Target, each_header, parse_page, parse_path, plan};
use super::{Handler, HttpState};
use crate::app::FeedError;
use crate::cache::{CacheKey, Source};
use crate::render::Representation;
use crate::store::StoreError;

/// Request heads larger than this go to hyper (which answers 431 when they are too large).
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 48;

/// What the loop needs from a request head, borrowed from the read buffer.
struct Head<'a> {
    len: usize,
    head_only: bool,
    path: &'a str,
    query: Option<&'a str>,
    keep_alive: bool,
    http10: bool,
    accept_encoding: Option<&'a str>,
    if_none_match: Option<&'a str>,
    if_modified_since: Option<&'a str>,
}

enum Parsed<'a> {
    /// A complete head the fast path may answer.
    Feed(Head<'a>),
    /// More bytes are needed.
    Partial,
    /// Anything else: hyper takes the connection.
    Other,
}

fn header_has(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

fn parse<'a>(buf: &'a [u8], headers: &'a mut [httparse::Header<'a>]) -> Parsed<'a> {
    let mut req = httparse::Request::new(headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    let head_only = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Parsed::Other,
    };
    let http10 = req.version == Some(0);
    let Some(target) = req.path else {
        return Parsed::Other;
    };
    if !target.starts_with('/')
        || target.starts_with("/api/")
        || matches!(target, "/healthz" | "/readyz" | "/metrics")
    {
        return Parsed::Other;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let mut head = Head {
        len,
        head_only,
        path,
        query,
        keep_alive: !http10,
        http10,
        accept_encoding: None,
        if_none_match: None,
        if_modified_since: None,
    };
    for h in req.headers.iter() {
        let value = h.value;
        let name = h.name;
        if name.eq_ignore_ascii_case("accept-encoding") {
            head.accept_encoding = std::str::from_utf8(value).ok();
        } else if name.eq_ignore_ascii_case("if-none-match") {
            head.if_none_match = std::str::from_utf8(value).ok();
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            head.if_modified_since = std::str::from_utf8(value).ok();
        } else if name.eq_ignore_ascii_case("connection") {
            if header_has(value, "close") {
                head.keep_alive = false;
            } else if header_has(value, "keep-alive") {
                head.keep_alive = true;
            }
            if header_has(value, "upgrade") {
                return Parsed::Other;
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            if value.trim_ascii() != b"0" {
                return Parsed::Other;
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || name.eq_ignore_ascii_case("upgrade")
            || name.eq_ignore_ascii_case("expect")
        {
            return Parsed::Other;
        }
    }
    Parsed::Feed(head)
}

thread_local! {
    /// The `Date` header line, rebuilt when the second changes.
    static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

fn push_date(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != now.as_secs() {
            let t = chrono::DateTime::<chrono::Utc>::from_timestamp(now.as_secs() as i64, 0)
                .unwrap_or_default();
            d.1 = format!("date: {}\r\n", crate::clock::http_date(t)).into_bytes();
            d.0 = now.as_secs();
        }
        out.extend_from_slice(&d.1);
    });
}

fn push_connection(out: &mut Vec<u8>, head: &Head<'_>) {
    if !head.keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if head.http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
}

/// The body to send after a head.
enum Out {
    None,
    Mem(Bytes),
    File { fd: RawFd, offset: u64, len: usize },
}

/// Writes the head of a representation's answer into `out`; returns the body to send.
fn answer(state: &HttpState, rep: &Representation, head: &Head<'_>, out: &mut Vec<u8>) -> Out {
    let plan = plan(
        rep,
        head.accept_encoding,
        head.if_none_match,
        head.if_modified_since,
    );
    out.extend_from_slice(if plan.not_modified {
        b"HTTP/1.1 304 Not Modified\r\n"
    } else {
        b"HTTP/1.1 200 OK\r\n"
    });
    each_header(rep, &plan, &state.cache_control, |name, value| {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
    let len = plan.body.bytes.len();
    if !plan.not_modified {
        use std::io::Write;
        let _ = write!(out, "content-length: {len}\r\n");
    }
    push_connection(out, head);
    push_date(out);
    out.extend_from_slice(b"\r\n");
    if plan.not_modified {
        state.app.metrics.not_modified.inc();
        return Out::None;
    }
    if head.head_only {
        return Out::None;
    }
    match &rep.file {
        Some(file) => Out::File {
            fd: file.fd().as_raw_fd(),
            offset: plan.body.offset,
            len,
        },
        None => Out::Mem(plan.body.bytes.clone()),
    }
}

/// A small text answer (404, 503) with the same headers the axum path sends.
fn simple(status: StatusCode, text: &str, retry: bool, head: &Head<'_>, out: &mut Vec<u8>) -> Out {
    let body = format!("{text}\n");
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    out.extend_from_slice(
        b"content-type: text/plain; charset=utf-8\r\naccess-control-allow-origin: *\r\n",
    );
    if retry {
        out.extend_from_slice(b"retry-after: 5\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    push_connection(out, head);
    push_date(out);
    out.extend_from_slice(b"\r\n");
    if head.head_only {
        Out::None
    } else {
        Out::Mem(Bytes::from(body))
    }
}

/// Writes `head` then `body` completely.
async fn send(stream: &TcpStream, mut head: &[u8], body: Out) -> io::Result<()> {
    match body {
        Out::None => write_all2(stream, head, &[]).await,
        Out::Mem(b) => write_all2(stream, head, &b).await,
        Out::File { fd, offset, len } => {
            let sock = stream.as_raw_fd();
            while !head.is_empty() {
                stream.writable().await?;
                let sent = stream.try_io(Interest::WRITABLE, || {
                    // SAFETY: a valid socket and a valid slice; MSG_MORE holds the head back to
                    // go out with the first body segment.
                    let r = unsafe {
                        libc::send(
                            sock,
                            head.as_ptr().cast(),
                            head.len(),
                            libc::MSG_MORE | libc::MSG_NOSIGNAL,
                        )
                    };
                    if r < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(r as usize)
                    }
                });
                match sent {
                    Ok(n) => head = &head[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            let end = offset as i64 + len as i64;
            let mut off = offset as i64;
            while off < end {
                stream.writable().await?;
                let sent = stream.try_io(Interest::WRITABLE, || {
                    // SAFETY: valid descriptors; `off` is updated by the kernel.
                    let r = unsafe { libc::sendfile(sock, fd, &mut off, (end - off) as usize) };
                    if r < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(r as usize)
                    }
                });
                match sent {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }
}

async fn write_all2(stream: &TcpStream, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        stream.writable().await?;
        match stream.try_write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(mut n) => {
                let k = n.min(a.len());
                a = &a[k..];
                n -= k;
                b = &b[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Serves one connection until the client closes it, shutdown, or a request the fast path does
/// not take (then hyper serves the rest of the connection).
pub(super) async fn serve_connection(
    mut stream: TcpStream,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    let state = handler.state.clone();
    let mut buf = BytesMut::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    loop {
        // Answer every complete request already buffered (pipelining), in order.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let (len, keep_alive, body) = match parse(&buf, &mut headers) {
                Parsed::Partial => break,
                Parsed::Other => return hand_off(stream, buf.freeze(), handler, shutdown).await,
                Parsed::Feed(head) => {
                    let key = match (
                        parse_path(&state.app.config, head.path),
                        parse_page(head.query),
                    ) {
                        (Ok(Target::Feed(feed, format)), Ok(page)) => {
                            CacheKey { feed, format, page }
                        }
                        // Pages, OPML, 404 texts: the axum path has them.
                        _ => return hand_off(stream, buf.freeze(), handler, shutdown).await,
                    };
                    out.clear();
                    let body = match state.app.cache.hot(&key) {
                        Some(rep) => {
                            state.app.metrics.cache_hits.inc();
                            let body = answer(&state, &rep, &head, &mut out);
                            // The file descriptor stays valid while `rep` lives.
                            (body, Some(rep))
                        }
                        None => miss(&state, &key, &head, &mut out).await,
                    };
                    (head.len, head.keep_alive, body)
                }
            };
            let (body, _keep) = body;
            if send(&stream, &out, body).await.is_err() {
                return;
            }
            buf.advance(len);
            if !keep_alive {
                return;
            }
        }
        if buf.len() >= MAX_HEAD {
            return hand_off(stream, buf.freeze(), handler, shutdown).await;
        }
        tokio::select! {
            read = stream.read_buf(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            // An idle keep-alive connection is closed at shutdown; a request in progress is not
            // interrupted (this select is only reached between requests).
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// A miss on this thread: the shared cache or a render, then a thread-local copy for next time.
async fn miss(
    state: &HttpState,
    key: &CacheKey,
    head: &Head<'_>,
    out: &mut Vec<u8>,
) -> (Out, Option<Rc<Representation>>) {
    let app = &state.app;
    let seen = app.cache.generation();
    match app.feed(key).await {
        Ok((entry, source)) => {
            if source != Source::Stale {
                app.cache.keep_hot(key, &entry, seen);
            }
            // Keep the entry (and its memfd) alive until the body is sent.
            let rep = Rc::new(entry.rep.thread_copy());
            (answer(state, &rep, head, out), Some(rep))
        }
        Err(FeedError::NotFound(msg)) => {
            (simple(StatusCode::NOT_FOUND, &msg, false, head, out), None)
        }
        Err(FeedError::Store(e)) => {
            tracing::warn!(error = %e, "feed unavailable");
            let status = match e {
                StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                StoreError::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            (
                simple(
                    status,
                    "The feed cannot be rendered right now; try again shortly.",
                    true,
                    head,
                    out,
                ),
                None,
            )
        }
    }
}

/// Lets hyper serve the rest of the connection, starting with the bytes already read.
async fn hand_off(
    stream: TcpStream,
    read: Bytes,
    handler: Handler,
    mut shutdown: watch::Receiver<bool>,
) {
    let io = hyper_util::rt::TokioIo::new(Prefixed {
        prefix: read,
        io: stream,
    });
    let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, handler);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.wait_for(|s| *s) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// A stream that first yields bytes already read from it.
struct Prefixed {
    prefix: Bytes,
    io: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_head(raw: &str) -> Option<(usize, bool, bool, Option<String>)> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match parse(raw.as_bytes(), &mut headers) {
            Parsed::Feed(h) => Some((
                h.len,
                h.head_only,
                h.keep_alive,
                h.if_none_match.map(String::from),
            )),
            _ => None,
        }
    }

    #[test]
    fn plain_feed_requests_take_the_fast_path() {
        let (len, head_only, keep, inm) = feed_head(
            "GET /vi/rss.xml HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\"\r\n\r\nGET /next",
        )
        .unwrap();
        assert_eq!(
            len,
            "GET /vi/rss.xml HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"a\"\r\n\r\n".len()
        );
        assert!(!head_only && keep);
        assert_eq!(inm.as_deref(), Some("\"a\""));
        assert!(feed_head("HEAD /vi/rss.xml HTTP/1.1\r\n\r\n").unwrap().1);
        assert!(
            !feed_head("GET /vi/rss.xml HTTP/1.0\r\n\r\n").unwrap().2,
            "HTTP/1.0 closes by default"
        );
        assert!(
            feed_head("GET /vi/rss.xml HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                .unwrap()
                .2
        );
        assert!(
            !feed_head("GET /vi/rss.xml HTTP/1.1\r\nConnection: close\r\n\r\n")
                .unwrap()
                .2
        );
        assert!(feed_head("GET /vi/rss.xml HTTP/1.1\r\nContent-Length: 0\r\n\r\n").is_some());
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for raw in [
            "PUT /api/v1/articles/x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            "GET /api/v1/openapi.json HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1\r\n\r\n",
            "GET /healthz HTTP/1.1\r\n\r\n",
            "POST /vi/rss.xml HTTP/1.1\r\n\r\n",
            "GET /vi/rss.xml HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /vi/rss.xml HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            "GET /vi/rss.xml HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            "GET /vi/rss.xml HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET vi/rss.xml HTTP/1.1\r\n\r\n",
            "BROKEN\r\n\r\n",
        ] {
            assert!(feed_head(raw).is_none(), "{raw:?}");
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        assert!(matches!(
            parse(b"GET /vi/rss.xml HTTP/1.1\r\nHost: x", &mut headers),
            Parsed::Partial
        ));
    }
}
