//! The poll fast path: a lean HTTP/1.1 connection loop for feed GETs and HEADs.
//!
//! Aggregators poll thousands of feeds; nearly every request is a `GET` of a cached feed,
//! answered `304` or with a precompressed body. For those this loop parses the request head with
//! `httparse` (hyper's own parser), answers from the worker's own reference to the cache entry,
//! writes the head in one `send(MSG_MORE)` and the body with `sendfile(2)` from the entry's memfd,
//! so a 50 KB gzip body is never copied through user space or into every socket, as nginx does
//! with a static file. Keep-alive and pipelining are honoured.
//!
//! It answers only what [`crate::routes::parse_path`] accepts, which is a feed's one canonical
//! spelling, so what it counts for readership (the request's path) is always that spelling.
//! Anything else on the connection (a request with a body, the API, `/metrics`, an `Upgrade`, a
//! malformed head, `OPTIONS`, a non-canonical path for its 301 or 404) hands the connection, with the bytes already read, to hyper and the axum router
//! for the rest of its life, so the fast path never has to be a complete server. The header logic
//! is shared with the axum path ([`super::response::plan`], [`super::response::each_header`]); tests run
//! every feed behaviour through both, and a property test compares them on generated requests.
//!
//! The edge rules ([`super::edge`]) hold here as on hyper: deadlines on every wait, a head larger
//! than `max_head_bytes` is 431 and a close, an HTTP/1.1 request without exactly one `Host` is 400,
//! a closing connection lingers so a pipelining client gets its last answer, and an idle
//! connection holds no buffer (the read buffer is allocated when bytes arrive and dropped when
//! they are consumed).
//!
//! A hit or a 304 allocates nothing and reads the clock once: the read buffer and the head
//! buffer are the worker's scratch buffers, lent to a connection for one wake-up (a connection
//! left with a partial head keeps its buffer; the next one to wake gets a new one); a request
//! target is mapped to its cache key by a bounded per-worker memo (parsing a path builds owned
//! strings); the `Date` line is formatted once a second; the read is one `poll_read` that also
//! notes a drained socket (no extra `recv` returning `EAGAIN`), and between requests the
//! connection waits on its socket and its [`Conn`] kill flag only, its deadline enforced by the
//! worker's sweep ([`super::edge`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::conditional::{Coding, negotiate};
use super::edge::{Admitted, Guarded, Kill, Limits, Phase, linger_close};
use super::handoff::{ConnService, Worker};
use super::response::{each_header, plan};
use super::state::HttpState;
use crate::app::FeedError;
use crate::cache::{CacheKey, Local, Source};
use crate::render::Representation;
use crate::routes::parse_path;

const MAX_HEADERS: usize = 48;

/// What the loop needs from a request head: positions in the read buffer, so nothing borrows
/// the buffer while a miss is awaited.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    len: usize,
    head_only: bool,
    path: Range<usize>,
    query: Option<Range<usize>>,
    keep_alive: bool,
    http10: bool,
    coding: Coding,
    if_none_match: Option<Range<usize>>,
    if_modified_since: Option<Range<usize>>,
    // For partner access and readership counting.
    authorization: Option<Range<usize>>,
    user_agent: Option<Range<usize>>,
    forwarded_for: Option<Range<usize>>,
    /// Set once the access is resolved.
    partner: Option<u16>,
    peer: Option<std::net::IpAddr>,
}

#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// A complete head the fast path may answer.
    Feed(Head),
    /// More bytes are needed.
    Partial,
    /// HTTP/1.1 without exactly one `Host` (RFC 9112 §3.2): 400.
    BadHost { len: usize },
    /// Anything else: hyper takes the connection.
    Other,
}

fn header_has(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The position of `part` (a subslice of `buf`) inside `buf`.
fn span(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    start..start + part.len()
}

fn parse(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
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
    if !target.starts_with('/') || crate::routes::is_operations(target) {
        return Parsed::Other;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (span(buf, p.as_bytes()), Some(span(buf, q.as_bytes()))),
        None => (span(buf, target.as_bytes()), None),
    };
    let mut head = Head {
        len,
        head_only,
        path,
        query,
        keep_alive: !http10,
        http10,
        coding: Coding::Identity,
        if_none_match: None,
        if_modified_since: None,
        authorization: None,
        user_agent: None,
        forwarded_for: None,
        partner: None,
        peer: None,
    };
    let mut hosts = 0;
    let mut accept_encoding = None;
    for h in req.headers.iter() {
        let (name, value) = (h.name, h.value);
        if name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            accept_encoding = std::str::from_utf8(value).ok();
        } else if name.eq_ignore_ascii_case("if-none-match") {
            head.if_none_match = Some(span(buf, value));
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            head.if_modified_since = Some(span(buf, value));
        } else if name.eq_ignore_ascii_case("user-agent") {
            head.user_agent = Some(span(buf, value));
        } else if name.eq_ignore_ascii_case("authorization") {
            head.authorization = Some(span(buf, value));
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            head.forwarded_for = Some(span(buf, value));
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
    if !http10 && hosts != 1 {
        return Parsed::BadHost { len };
    }
    head.coding = negotiate(accept_encoding);
    Parsed::Feed(head)
}

fn text<'a>(buf: &'a [u8], r: &Option<Range<usize>>) -> Option<&'a str> {
    r.as_ref()
        .and_then(|r| std::str::from_utf8(&buf[r.clone()]).ok())
}

/// The `Date` header line and the (monotonic) instant the next second begins, when it must be
/// rebuilt.
struct DateLine {
    next: Option<tokio::time::Instant>,
    line: Vec<u8>,
}

thread_local! {
    static DATE: RefCell<DateLine> = const { RefCell::new(DateLine { next: None, line: Vec::new() }) };
    /// Scratch buffers lent to one connection at a time (see [`take_buf`]).
    static READ_BUF: Cell<BytesMut> = Cell::new(BytesMut::new());
    static HEAD_BUF: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// This worker's [`Targets`] (a worker thread serves one server).
    static TARGETS: RefCell<Targets> = RefCell::new(Targets::default());
}

/// Appends the `Date` line for `now` (the wake-up's cached instant): the wall clock is read and
/// the line formatted only when a new second has begun.
fn push_date(out: &mut Vec<u8>, now: tokio::time::Instant) {
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.next.is_none_or(|next| now >= next) {
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let t = chrono::DateTime::<chrono::Utc>::from_timestamp(wall.as_secs() as i64, 0)
                .unwrap_or_default();
            d.line = format!("date: {}\r\n", crate::clock::http_date(t)).into_bytes();
            let left = Duration::from_secs(1)
                .saturating_sub(Duration::from_nanos(u64::from(wall.subsec_nanos())));
            d.next = Some(now + left);
        }
        out.extend_from_slice(&d.line);
    });
}

/// The worker's read buffer (with room for a head), unless another connection has it; then a
/// new one. Given back by [`give_buf`] once empty, so a poll allocates nothing.
fn take_buf() -> BytesMut {
    let mut b = READ_BUF.take();
    b.clear();
    b.reserve(4096);
    b
}

/// Gives an emptied read buffer back to the worker (a larger one, grown by a big head, is
/// dropped rather than kept).
fn give_buf(b: BytesMut) {
    if b.is_empty() && b.capacity() <= 64 * 1024 {
        READ_BUF.set(b);
    }
}

/// The worker's head buffer, emptied; [`give_head`] returns it.
fn take_head() -> Vec<u8> {
    let mut v = HEAD_BUF.take();
    v.clear();
    if v.capacity() == 0 {
        v.reserve(512);
    }
    v
}

fn give_head(v: Vec<u8>) {
    if v.capacity() <= 16 * 1024 {
        HEAD_BUF.set(v);
    }
}

/// Request targets (path and query) the worker has already mapped to a cache key, one map per
/// access content: parsing a path builds owned strings, and nearly every poll repeats a target.
/// Bounded by entries and by target length; a full map is cleared whole.
#[derive(Default)]
struct Targets {
    full: HashMap<Box<[u8]>, CacheKey>,
    summary: HashMap<Box<[u8]>, CacheKey>,
}

/// Most targets a worker remembers per content, and the longest it remembers.
const MAX_TARGETS: usize = 4096;
const MAX_TARGET_BYTES: usize = 512;

impl Targets {
    fn map(&mut self, content: crate::model::Content) -> &mut HashMap<Box<[u8]>, CacheKey> {
        match content {
            crate::model::Content::Full => &mut self.full,
            crate::model::Content::Summary => &mut self.summary,
        }
    }

    fn get(&self, content: crate::model::Content, target: &[u8]) -> Option<&CacheKey> {
        match content {
            crate::model::Content::Full => self.full.get(target),
            crate::model::Content::Summary => self.summary.get(target),
        }
    }

    fn insert(&mut self, key: &CacheKey, target: &[u8]) {
        if target.len() > MAX_TARGET_BYTES {
            return;
        }
        let map = self.map(key.content);
        if map.len() >= MAX_TARGETS {
            map.clear();
        }
        map.insert(target.into(), key.clone());
    }
}

/// The `Connection` header, written as hyper writes it: `close` when an HTTP/1.1 connection ends,
/// `keep-alive` when an HTTP/1.0 one does not (closing is 1.0's default, so it goes unsaid).
fn push_connection(out: &mut Vec<u8>, keep_alive: bool, http10: bool) {
    match (keep_alive, http10) {
        (false, false) => out.extend_from_slice(b"connection: close\r\n"),
        (true, true) => out.extend_from_slice(b"connection: keep-alive\r\n"),
        _ => {}
    }
}

/// The body to send after a head. A cached body is sent from the entry it belongs to, which the
/// answer holds (through the worker's reference) until the last byte has gone: the memfd cannot
/// be closed under a `sendfile` in progress.
enum Out {
    None,
    Mem(Bytes),
    Entry { entry: Local, coding: Coding },
}

/// Writes the head of a representation's answer into `out`; returns the body to send.
fn answer(state: &HttpState, entry: Local, head: &Head, buf: &[u8], out: &mut Vec<u8>) -> Out {
    let (not_modified, coding) = {
        let rep: &Representation = &entry.rep;
        let plan = plan(
            rep,
            head.coding,
            text(buf, &head.if_none_match),
            text(buf, &head.if_modified_since),
        );
        out.extend_from_slice(if plan.not_modified {
            b"HTTP/1.1 304 Not Modified\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\n"
        });
        let cache_control = match head.partner {
            None => &state.cache_control,
            Some(_) => &state.private_cache_control,
        };
        each_header(rep, &plan, cache_control, |name, value| {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        });
        if !plan.not_modified {
            use std::io::Write;
            let _ = write!(out, "content-length: {}\r\n", plan.body.bytes.len());
        }
        if let Some(peer) = head.peer {
            let bytes = |r: &Option<Range<usize>>| r.as_ref().map(|r| &buf[r.clone()]);
            // The path was accepted by `parse_path`: it is the feed's canonical spelling.
            debug_assert!(
                parse_path(
                    state.app.config(),
                    std::str::from_utf8(&buf[head.path.clone()]).unwrap_or("")
                )
                .is_ok()
            );
            state.app.readership().count(&crate::readership::Poll {
                path: std::str::from_utf8(&buf[head.path.clone()]).unwrap_or(""),
                not_modified: plan.not_modified,
                conditional: head.if_none_match.is_some() || head.if_modified_since.is_some(),
                bytes: if plan.not_modified || head.head_only {
                    0
                } else {
                    plan.body.bytes.len() as u64
                },
                peer,
                forwarded_for: bytes(&head.forwarded_for),
                user_agent: bytes(&head.user_agent),
                partner: head.partner,
            });
        }
        (plan.not_modified, plan.coding)
    };
    push_connection(out, head.keep_alive, head.http10);
    push_date(out, super::edge::now());
    out.extend_from_slice(b"\r\n");
    if not_modified {
        state.app.metrics().not_modified.inc();
        return Out::None;
    }
    if head.head_only {
        return Out::None;
    }
    Out::Entry { entry, coding }
}

/// A small text answer (400, 404, 431, 503) with the same headers the axum path sends
/// ([`super::response::text_response`]); `keys`, when not empty, as its `Surrogate-Key` and
/// `Cache-Tag` (a feed's 404, see [`super::response::feed_not_found`]).
#[allow(clippy::too_many_arguments)]
fn simple(
    status: StatusCode,
    text: &str,
    retry: bool,
    keys: &str,
    keep_alive: bool,
    http10: bool,
    head_only: bool,
    out: &mut Vec<u8>,
) -> Out {
    let body = if text.is_empty() {
        String::new()
    } else {
        format!("{text}\n")
    };
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    if !body.is_empty() {
        out.extend_from_slice(
            b"content-type: text/plain; charset=utf-8\r\naccess-control-allow-origin: *\r\nx-content-type-options: nosniff\r\n",
        );
    }
    if !keys.is_empty() {
        out.extend_from_slice(b"surrogate-key: ");
        out.extend_from_slice(keys.as_bytes());
        out.extend_from_slice(b"\r\ncache-tag: ");
        out.extend_from_slice(crate::model::cache_tag(keys).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if retry {
        out.extend_from_slice(b"retry-after: ");
        out.extend_from_slice(super::error::RETRY_AFTER_SECS.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    push_connection(out, keep_alive, http10);
    push_date(out, super::edge::now());
    out.extend_from_slice(b"\r\n");
    if head_only || body.is_empty() {
        Out::None
    } else {
        Out::Mem(Bytes::from(body))
    }
}

/// The slowest a client may read an answer, on average: below it the answer is abandoned even
/// if each write makes some progress (a client reading a byte every 29 s would otherwise hold its
/// connection, and the body it pins, for ever).
const MIN_SEND_RATE: u64 = 4 * 1024;

/// When an answer of `bytes` must have been sent, counted from its first stall: the send
/// timeout, plus its size at [`MIN_SEND_RATE`].
fn send_deadline(limits: &Limits, bytes: usize) -> tokio::time::Instant {
    tokio::time::Instant::now() + limits.send + Duration::from_secs(bytes as u64 / MIN_SEND_RATE)
}

/// Waits until the socket can take more: fails after the send timeout without progress, or at
/// the answer's overall deadline, set at its first stall (`deadline`, for an answer of `bytes`):
/// a socket with room, nearly always, costs neither a clock read nor a timer.
async fn writable(
    stream: &TcpStream,
    limits: &Limits,
    deadline: &mut Option<tokio::time::Instant>,
    bytes: usize,
) -> io::Result<()> {
    let overall = *deadline.get_or_insert_with(|| send_deadline(limits, bytes));
    let wait = (tokio::time::Instant::now() + limits.send).min(overall);
    let r = match tokio::time::timeout_at(wait, stream.writable()).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading (send timeout)",
        )),
    };
    // The wait took real time: later instants of this turn must not be the stale cached one.
    super::edge::tick();
    r
}

/// Writes `head` then `body` completely, each wait bounded by the send timeout. Every write is
/// tried first; only a full socket waits.
async fn send(stream: &TcpStream, head: &[u8], body: Out, limits: &Limits) -> io::Result<()> {
    let mut deadline = None;
    let entry = match body {
        Out::None => {
            return write_all2(stream, head, &[], limits, &mut deadline).await;
        }
        Out::Mem(b) => {
            return write_all2(stream, head, &b, limits, &mut deadline).await;
        }
        Out::Entry { entry, coding } => (entry, coding),
    };
    let (entry, coding) = entry;
    let rep = &entry.rep;
    let body = rep.body(coding);
    let total = head.len() + body.bytes.len();
    let Some(file) = &rep.file else {
        return write_all2(stream, head, &body.bytes, limits, &mut deadline).await;
    };
    let sock = stream.as_raw_fd();
    let fd = file.fd().as_raw_fd();
    let mut head = head;
    while !head.is_empty() {
        let sent = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: a valid socket and a valid slice; MSG_MORE holds the head back to go out
            // with the first body segment.
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
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                writable(stream, limits, &mut deadline, total).await?
            }
            Err(e) => return Err(e),
        }
    }
    let mut off = body.offset as i64;
    let end = off + body.bytes.len() as i64;
    while off < end {
        let sent = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: valid descriptors (the entry, and with it the memfd, is held by this
            // function until the loop ends); `off` is updated by the kernel.
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
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                writable(stream, limits, &mut deadline, total).await?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn write_all2(
    stream: &TcpStream,
    mut a: &[u8],
    mut b: &[u8],
    limits: &Limits,
    deadline: &mut Option<tokio::time::Instant>,
) -> io::Result<()> {
    let total = a.len() + b.len();
    while !a.is_empty() || !b.is_empty() {
        // Try first: a socket with room (nearly always) takes the answer without a wait.
        match stream.try_write_vectored(&[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(mut n) => {
                let k = n.min(a.len());
                a = &a[k..];
                n -= k;
                b = &b[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                writable(stream, limits, deadline, total).await?
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What to do after answering what the buffer holds.
enum Next {
    /// Wait for more bytes.
    Read,
    /// Close after draining (the last answer said `Connection: close`).
    Close,
    /// Drop the connection now (a write failed or timed out).
    Drop,
    /// Let hyper serve the rest of the connection.
    HandOff,
}

/// Serves one connection until the client closes it, a deadline passes, the worker sheds it,
/// shutdown, or a request the fast path does not take (then hyper serves the rest of the
/// connection).
pub(super) async fn serve_connection(
    mut stream: TcpStream,
    worker: Worker,
    conn: Admitted,
    shutdown: watch::Receiver<bool>,
) {
    let state = worker.state.clone();
    let limits = state.limits;
    // Once per connection: readership counts clients by address.
    let peer = stream.peer_addr().ok().map(|a| a.ip());
    // Lent by the worker when bytes arrive, given back when they are consumed: an idle
    // connection holds nothing but its task.
    let mut buf = BytesMut::new();
    loop {
        match answer_buffered(&state, &stream, &mut buf, &conn, peer).await {
            Next::Read => {}
            // The rare paths are boxed: their futures (hyper's connection above all) would
            // otherwise be part of every connection's state, idle or not.
            Next::Close => return Box::pin(linger_close(stream, &conn, &limits)).await,
            Next::Drop => return,
            Next::HandOff => {
                return Box::pin(hand_off(stream, buf.freeze(), worker, conn, shutdown, peer))
                    .await;
            }
        }
        if buf.is_empty() {
            give_buf(std::mem::take(&mut buf));
        } else if buf.len() >= limits.max_head_bytes {
            // The head is still incomplete at the limit: 431, as hyper answers, and close.
            let mut out = Vec::with_capacity(256);
            let body = simple(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "",
                false,
                "",
                false,
                false,
                true,
                &mut out,
            );
            if send(&stream, &out, body, &limits).await.is_ok() {
                Box::pin(linger_close(stream, &conn, &limits)).await;
            }
            return;
        }
        // Wait for the client's next bytes, or to be told to end. No timer: the worker's sweep
        // kills the connection once it is past its read deadline.
        conn.set_swept(true);
        let read = poll_fn(|cx| {
            if let Poll::Ready(why) = conn.poll_kill(cx) {
                return Poll::Ready(Err(why));
            }
            if buf.capacity() == 0 {
                buf = take_buf();
            } else if buf.capacity() - buf.len() < 1024 {
                buf.reserve(4096);
            }
            let r = poll_read_buf(&mut stream, cx, &mut buf);
            if r.is_pending() && buf.is_empty() {
                give_buf(std::mem::take(&mut buf));
            }
            r.map(Ok)
        })
        .await;
        conn.set_swept(false);
        // The one clock read of this wake-up.
        let now = super::edge::tick();
        match read {
            Err(Kill::Stop) => return,
            Err(Kill::Shed | Kill::Expired) => return abort(stream, &conn),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => conn.on_read_at(now),
        }
    }
}

/// Reads what the socket holds into `buf`'s spare room, waiting for it to be readable. A read
/// that does not fill the room tells tokio the socket is drained (edge-triggered epoll), so the
/// next wait does not begin with a `recv` that can only say `EAGAIN`.
fn poll_read_buf(
    stream: &mut TcpStream,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<io::Result<usize>> {
    let dst = buf.chunk_mut();
    // SAFETY: `UninitSlice` is a `[MaybeUninit<u8>]` of the buffer's spare capacity; `ReadBuf`
    // only writes initialised bytes into it and reports how many.
    let dst =
        unsafe { &mut *(dst as *mut bytes::buf::UninitSlice as *mut [std::mem::MaybeUninit<u8>]) };
    let mut rb = ReadBuf::uninit(dst);
    match Pin::new(stream).poll_read(cx, &mut rb) {
        Poll::Ready(Ok(())) => {
            let n = rb.filled().len();
            // SAFETY: `n` bytes of the spare capacity were just initialised by the read.
            unsafe { buf.advance_mut(n) };
            Poll::Ready(Ok(n))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

/// Drops a connection that is shed or past its deadline. One that never completed a request is
/// reset rather than closed: nobody is waiting for an answer, and a reset leaves no TIME_WAIT
/// socket behind, which a flood of silent connections would otherwise pile up by the thousand.
fn abort(stream: TcpStream, conn: &Admitted) {
    if conn.phase() == Phase::Fresh {
        let _ = stream.set_zero_linger();
    }
}

/// The cache key of a feed request's target, from the worker's memo or parsed (and then
/// remembered); `None` for anything the axum path answers (pages, OPML, 404s, 301s, bad pages).
fn cache_key(state: &HttpState, target: &[u8], content: crate::model::Content) -> Option<CacheKey> {
    if let Some(k) = TARGETS.with(|t| t.borrow().get(content, target).cloned()) {
        return Some(k);
    }
    let target_str = std::str::from_utf8(target).ok()?;
    let (path, query) = match target_str.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target_str, None),
    };
    let key = super::request::FeedTarget::parse(state.app.config(), path, query)?.key(content);
    TARGETS.with(|t| t.borrow_mut().insert(&key, target));
    Some(key)
}

/// A feed request's entry on this worker, or the key to look it up by.
enum Found {
    Hot(Local),
    Cold(CacheKey),
}

/// Answers every complete request in `buf` (pipelining), in order.
async fn answer_buffered(
    state: &HttpState,
    stream: &TcpStream,
    buf: &mut BytesMut,
    conn: &Admitted,
    peer: Option<std::net::IpAddr>,
) -> Next {
    let limits = state.limits;
    let mut answered = false;
    loop {
        let head = match parse(buf) {
            Parsed::Partial => break,
            Parsed::Other => return Next::HandOff,
            Parsed::BadHost { len: _ } => {
                conn.set_phase(Phase::Busy);
                let mut out = Vec::with_capacity(512);
                let body = simple(
                    StatusCode::BAD_REQUEST,
                    super::state::BAD_HOST,
                    false,
                    "",
                    false,
                    false,
                    false,
                    &mut out,
                );
                return match send(stream, &out, body, &limits).await {
                    Ok(()) => Next::Close,
                    Err(_) => Next::Drop,
                };
            }
            Parsed::Feed(head) => head,
        };
        let mut head = head;
        let query = head
            .query
            .as_ref()
            .and_then(|q| std::str::from_utf8(&buf[q.clone()]).ok());
        let access = match crate::access::resolve(
            &state.app.config().partners,
            query,
            head.authorization.as_ref().map(|r| &buf[r.clone()]),
        ) {
            Ok(access) => access,
            // A refused key: the axum path has its answer.
            Err(_) => return Next::HandOff,
        };
        let target = &buf[head.path.start..head.query.as_ref().map_or(head.path.end, |q| q.end)];
        let content = state.app.content_for(access);
        let now = super::edge::now();
        let fresh_at = state.app.cache().now();
        // The common case borrows the remembered key: a hit clones no strings.
        let remembered = TARGETS.with(|t| {
            t.borrow()
                .get(content, target)
                .and_then(|k| state.app.cache().hot_at(k, fresh_at))
        });
        let found = match remembered {
            Some(entry) => Found::Hot(entry),
            None => {
                let Some(key) = cache_key(state, target, content) else {
                    // Pages, OPML, 404 texts, redirects: the axum path has them.
                    return Next::HandOff;
                };
                match state.app.cache().hot_at(&key, fresh_at) {
                    Some(entry) => Found::Hot(entry),
                    None => Found::Cold(key),
                }
            }
        };
        head.partner = match access {
            crate::access::Access::Partner(p) => Some(p),
            crate::access::Access::Public => None,
        };
        head.peer = peer;
        conn.set_phase_at(Phase::Busy, now);
        answered = true;
        let mut out = take_head();
        let body = match found {
            Found::Hot(entry) => {
                state.app.metrics().cache_hits.inc();
                answer(state, entry, &head, buf, &mut out)
            }
            Found::Cold(key) => {
                let body = Box::pin(miss(state, &key, &head, buf, &mut out)).await;
                // A render takes real time: the rest of this turn must not use a stale instant.
                super::edge::tick();
                body
            }
        };
        let sent = send(stream, &out, body, &limits).await;
        give_head(out);
        if sent.is_err() {
            return Next::Drop;
        }
        super::edge::share_core(super::edge::now());
        buf.advance(head.len);
        if !head.keep_alive {
            return Next::Close;
        }
    }
    if answered {
        let now = super::edge::now();
        conn.set_phase_at(Phase::Idle, now);
        if !buf.is_empty() {
            // The next request has begun: its head deadline runs from now.
            conn.on_read_at(now);
        }
    }
    Next::Read
}

/// A miss on this thread: the shared cache or a render, then a thread-local reference for next
/// time.
async fn miss(
    state: &HttpState,
    key: &CacheKey,
    head: &Head,
    buf: &[u8],
    out: &mut Vec<u8>,
) -> Out {
    let app = &state.app;
    let seen = app.cache().generation();
    let forwarded_for = head.forwarded_for.as_ref().map(|r| &buf[r.clone()]);
    let client = super::request::client_key(app, head.peer, forwarded_for);
    match app.feed_from(key, client).await {
        Ok((entry, source)) => {
            if source != Source::Stale {
                app.cache().keep_hot(key, &entry, seen);
            }
            answer(state, Rc::new(entry), head, buf, out)
        }
        Err(FeedError::NotFound(msg)) => simple(
            StatusCode::NOT_FOUND,
            &msg,
            false,
            &key.feed.surrogate_keys(),
            head.keep_alive,
            head.http10,
            head.head_only,
            out,
        ),
        Err(FeedError::Busy) => simple(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::app::BUSY_TEXT,
            true,
            "",
            head.keep_alive,
            head.http10,
            head.head_only,
            out,
        ),
        Err(FeedError::Store(e)) => {
            let (status, text) = super::error::feed_unavailable(&e);
            simple(
                status,
                &text,
                true,
                "",
                head.keep_alive,
                head.http10,
                head.head_only,
                out,
            )
        }
    }
}

/// Lets hyper serve the rest of the connection, starting with the bytes already read, under the
/// same deadlines ([`Guarded`]) and the same cap.
async fn hand_off(
    stream: TcpStream,
    read: Bytes,
    worker: Worker,
    conn: Admitted,
    mut shutdown: watch::Receiver<bool>,
    peer: Option<std::net::IpAddr>,
) {
    let limits = worker.state.limits;
    let io = hyper_util::rt::TokioIo::new(Guarded::new(
        Prefixed {
            prefix: read,
            io: stream,
        },
        conn.0.clone(),
        limits,
    ));
    let service = ConnService {
        worker,
        conn: conn.0.clone(),
        peer,
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    // A head larger than the limit is answered 431 by hyper (its minimum buffer is 8 KiB).
    http.max_buf_size(limits.max_head_bytes.max(8192));
    // A client that half-closes after its request still gets the answer, as on the fast path
    // (which answers what it has read before it sees the end of input).
    http.half_close(true);
    let mut c = http.serve_connection(io, service);
    let mut stopping = false;
    let done = loop {
        tokio::select! {
            r = poll_fn(|cx| c.poll_without_shutdown(cx)) => break r,
            _ = conn.shed() => return,
            _ = shutdown.wait_for(|s| *s), if !stopping => {
                Pin::new(&mut c).graceful_shutdown();
                stopping = true;
            }
        }
    };
    // After a clean end, or after hyper refused a head (its 400 or 431 may still be in flight
    // while the rest of the client's input sits unread), linger; after a deadline or a shed the
    // connection is simply dropped.
    let linger = match &done {
        Ok(()) => true,
        Err(e) => e.is_parse() || e.is_parse_too_large(),
    };
    if linger {
        let stream = c.into_parts().io.into_inner().into_inner().io;
        linger_close(stream, &conn, &limits).await;
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
        match parse(raw.as_bytes()) {
            Parsed::Feed(h) => Some((
                h.len,
                h.head_only,
                h.keep_alive,
                text(raw.as_bytes(), &h.if_none_match).map(String::from),
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
        assert!(
            feed_head("HEAD /vi/rss.xml HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap()
                .1
        );
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
            !feed_head("GET /vi/rss.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap()
                .2
        );
        assert!(
            feed_head("GET /vi/rss.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").is_some()
        );
    }

    #[test]
    fn the_target_memo_is_bounded_by_entries_and_length() {
        use crate::model::{Content, FeedKey, Format, Selector};
        let key = CacheKey {
            feed: FeedKey::new("vi", Selector::All),
            format: Format::Rss,
            page: 1,
            content: Content::Full,
        };
        let mut t = Targets::default();
        for i in 0..MAX_TARGETS + 10 {
            t.insert(&key, format!("/vi/rss.xml?x={i}").as_bytes());
            assert!(t.full.len() <= MAX_TARGETS);
        }
        let last = format!("/vi/rss.xml?x={}", MAX_TARGETS + 9);
        assert_eq!(t.get(Content::Full, last.as_bytes()), Some(&key));
        assert_eq!(
            t.get(Content::Summary, last.as_bytes()),
            None,
            "one map per content: a public target never finds a partner's key"
        );
        let long = vec![b'a'; MAX_TARGET_BYTES + 1];
        t.insert(&key, &long);
        assert_eq!(
            t.get(Content::Full, &long),
            None,
            "long targets are not kept"
        );
    }

    #[test]
    fn http11_needs_exactly_one_host() {
        for raw in [
            "GET /vi/rss.xml HTTP/1.1\r\n\r\n",
            "GET /vi/rss.xml HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw.as_bytes()), Parsed::BadHost { .. }),
                "{raw:?}"
            );
        }
        assert!(matches!(
            parse(b"GET /vi/rss.xml HTTP/1.0\r\n\r\n"),
            Parsed::Feed(_)
        ));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        for raw in [
            "PUT /api/v1/articles/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
            "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /vi/rss.xml HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /vi/rss.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /vi/rss.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
            "GET /vi/rss.xml HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
            "GET /vi/rss.xml HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            "GET vi/rss.xml HTTP/1.1\r\nHost: x\r\n\r\n",
            "BROKEN\r\n\r\n",
        ] {
            assert!(feed_head(raw).is_none(), "{raw:?}");
        }
        assert_eq!(
            parse(b"GET /vi/rss.xml HTTP/1.1\r\nHost: x"),
            Parsed::Partial
        );
    }
}
