//! The edge: every connection's deadlines, the connection cap, and closing without losing a
//! response. Both the poll fast path ([`super::fast`]) and hyper (after a hand-off) go through
//! here, so a slow, silent or hostile client meets the same rules whichever path serves it.
//!
//! **Deadlines** (all in `[server]`, see [`Limits`]): the first request's head must be complete
//! `head_timeout` after accept; on a keep-alive connection the next request's first byte must come
//! within `idle_timeout` of the previous response and its head within `head_timeout` of that first
//! byte (as nginx's `keepalive_timeout` then `client_header_timeout`); a request body or a response
//! that makes no progress for `body_timeout` / `send_timeout` is abandoned. A connection past a
//! deadline is simply closed: there is nobody reading an answer.
//!
//! **The cap.** Each worker admits at most its share of `max_connections` (the kernel spreads
//! connections evenly over the workers' `SO_REUSEPORT` sockets). At the cap, a new connection is
//! still admitted: to make room, the worker closes the oldest connection that has not yet sent a
//! complete request, else the oldest idle keep-alive connection; only when every connection is
//! busy with a request is the newcomer refused. So a flood of silent connections can never lock
//! a real client out, where nginx refuses newcomers until its timeouts fire. The registry is per
//! worker and single-threaded (`Rc`/`RefCell`): admitting and shedding touch no shared memory.
//!
//! **Cheap per request.** A poll costs a few microseconds, so the fast path keeps its
//! bookkeeping off the request: no timer is registered per request (a worker sweeps its registry
//! a few times a second, [`sweep_period`], and closes the connections waiting for bytes past their
//! deadline, as nginx checks its timers against a time cached once per loop turn), no `Notify` or
//! `watch` is polled per request (being shed, expired or stopped is a flag on [`Conn`] plus the
//! one waker of the task waiting on it), and the clock is read once per wake-up of a connection
//! ([`tick`]), every later instant of that turn being the cached one ([`now`]).
//!
//! **Closing.** Closing a socket with unread input makes the kernel send a reset, which can destroy
//! the response still in flight to the client (a pipelining client, or one whose request we
//! refuse before reading it whole). [`linger_close`] half-closes, then reads and discards for a
//! bounded time and size before closing, as nginx's lingering close does.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;

/// The deadlines and bounds of one worker's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub head: Duration,
    pub idle: Duration,
    pub send: Duration,
    pub body: Duration,
    pub max_head_bytes: usize,
}

impl Limits {
    pub fn from_config(c: &ServerConfig) -> Limits {
        Limits {
            head: c.head_timeout,
            idle: c.idle_timeout,
            send: c.send_timeout,
            body: c.body_timeout,
            max_head_bytes: c.max_head_bytes,
        }
    }

    /// How long a closing connection may keep draining what the client still sends.
    pub fn linger(&self) -> Duration {
        self.head.min(Duration::from_secs(5))
    }
}

/// Where a connection is in its life, for deadlines and for choosing whom to shed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepted; no complete request yet. First to be shed.
    Fresh,
    /// A request is being read, handled or answered. Never shed.
    Busy,
    /// Between requests on a keep-alive connection. Shed after the fresh ones, oldest first.
    Idle,
    /// Answered and draining before close. Shed like a fresh connection.
    Closing,
}

/// The deadline by which the client must send its next bytes (a pure function of the phase and
/// the connection's history, so the rules can be read and unit-tested in one place).
pub fn read_deadline(phase: Phase, times: &Times, limits: &Limits) -> Instant {
    match phase {
        Phase::Fresh => times.accepted + limits.head,
        Phase::Idle => match times.head_started {
            Some(t) => t + limits.head,
            None => times.idle_since + limits.idle,
        },
        Phase::Busy => times.last_read + limits.body,
        Phase::Closing => times.idle_since + limits.linger(),
    }
}

/// The instants deadlines are counted from.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub accepted: Instant,
    /// When the connection last became idle (or began closing).
    pub idle_since: Instant,
    /// When the first byte of a not-yet-complete head arrived on an idle connection.
    pub head_started: Option<Instant>,
    /// Last progress reading a request body.
    pub last_read: Instant,
}

/// Why a connection's task is told to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kill {
    /// The registry chose it to make room for a newcomer.
    Shed,
    /// It waited for the client's bytes past its [`read_deadline`] (found by [`Registry::sweep`]).
    Expired,
    /// The server is shutting down (see [`Registry::stop`]).
    Stop,
}

/// One open connection, as its worker's registry and its own task see it.
pub struct Conn {
    phase: Cell<Phase>,
    /// Bumped on every phase change, so queued references to an old phase are recognised.
    stamp: Cell<u64>,
    times: Cell<Times>,
    /// Set when the registry chose this connection to make room.
    shed: Cell<bool>,
    /// Set once the task should end; the first reason wins.
    kill: Cell<Option<Kill>>,
    /// The task waiting for the kill (at most one waits at a time: the connection's own).
    waker: RefCell<Option<Waker>>,
    /// The task is waiting for the client's bytes under [`Registry::sweep`]'s watch rather than a
    /// timer of its own (the fast path between requests).
    swept: Cell<bool>,
    index: usize,
    registry: Rc<RefCell<Registry>>,
}

impl Conn {
    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    pub fn times(&self) -> Times {
        self.times.get()
    }

    /// Moves to `phase`, resetting the instants it counts from (read from the clock).
    pub fn set_phase(&self, phase: Phase) {
        self.set_phase_at(phase, Instant::now());
    }

    /// [`Conn::set_phase`] at `now`, an instant the caller has already read (the fast path's
    /// [`now`]).
    pub fn set_phase_at(&self, phase: Phase, now: Instant) {
        let mut t = self.times.get();
        match phase {
            Phase::Idle | Phase::Closing => {
                t.idle_since = now;
                t.head_started = None;
            }
            Phase::Busy => t.last_read = now,
            Phase::Fresh => {}
        }
        self.times.set(t);
        if self.phase.get() == phase {
            return;
        }
        self.phase.set(phase);
        // Stamps come from one counter for the whole registry: a slot's next occupant must never
        // match a queue entry its predecessor left.
        let stamp = {
            let mut r = self.registry.borrow_mut();
            r.next_stamp += 1;
            r.next_stamp
        };
        self.stamp.set(stamp);
        if matches!(phase, Phase::Idle | Phase::Closing) {
            self.registry.borrow_mut().queue(phase, self.index, stamp);
        }
    }

    /// Notes bytes received: the start of a head on an idle connection, or body progress.
    pub fn on_read(&self) {
        self.on_read_at(Instant::now());
    }

    /// [`Conn::on_read`] at `now`.
    pub fn on_read_at(&self, now: Instant) {
        let mut t = self.times.get();
        match self.phase.get() {
            Phase::Idle if t.head_started.is_none() => t.head_started = Some(now),
            Phase::Busy => t.last_read = now,
            _ => return,
        }
        self.times.set(t);
    }

    /// When the client must have sent more.
    pub fn read_deadline(&self, limits: &Limits) -> Instant {
        read_deadline(self.phase.get(), &self.times.get(), limits)
    }

    /// Resolves when the registry sheds this connection to make room for a new one. (Only the
    /// fast path's own wait, [`Conn::poll_kill`], ends on [`Kill::Expired`] or [`Kill::Stop`]:
    /// hyper keeps its own timers and shuts down gracefully.)
    pub async fn shed(&self) {
        std::future::poll_fn(|cx| {
            if self.shed.get() {
                return Poll::Ready(());
            }
            self.keep_waker(cx);
            Poll::Pending
        })
        .await
    }

    /// Ready with the reason once the task should end; otherwise keeps `cx`'s waker to be woken
    /// by [`Conn::kill`].
    pub fn poll_kill(&self, cx: &mut Context<'_>) -> Poll<Kill> {
        if let Some(k) = self.kill.get() {
            return Poll::Ready(k);
        }
        self.keep_waker(cx);
        Poll::Pending
    }

    /// Keeps `cx`'s waker, cloning it only when it is not already the one kept.
    fn keep_waker(&self, cx: &Context<'_>) {
        let mut w = self.waker.borrow_mut();
        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *w = Some(cx.waker().clone());
        }
    }

    /// Tells the task to end (the first reason stays) and wakes it if it waits.
    pub fn kill(&self, why: Kill) {
        if self.kill.get().is_none() {
            self.kill.set(Some(why));
        }
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Marks the task as waiting for bytes under the sweep (`true`) or not (`false`).
    pub fn set_swept(&self, swept: bool) {
        self.swept.set(swept);
    }

    pub fn was_shed(&self) -> bool {
        self.shed.get()
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Ok(mut r) = self.registry.try_borrow_mut() {
            r.remove(self.index);
        }
    }
}

/// A worker's open connections.
pub struct Registry {
    cap: usize,
    slots: Vec<Option<Weak<Conn>>>,
    free: Vec<usize>,
    open: usize,
    /// Connections that were fresh (or closing), in the order they became so: shed first.
    fresh: VecDeque<(usize, u64)>,
    /// Connections that became idle, oldest first.
    idle: VecDeque<(usize, u64)>,
    /// The last stamp given out.
    next_stamp: u64,
    /// Shed connections that have not closed yet: admitting stops once too many are pending.
    pending_sheds: usize,
    /// Set by [`Registry::stop`]: connections admitted afterwards are told to stop at once.
    stopping: bool,
    pub stats: Stats,
}

/// What a worker's registry has done, for `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub shed: u64,
    pub refused: u64,
}

/// Most shed connections waiting to close before a worker refuses newcomers instead: how far a
/// worker may briefly run over its share (the file budget keeps this many per worker in reserve).
pub const MAX_PENDING_SHEDS: usize = 64;

impl Registry {
    pub fn new(cap: usize) -> Rc<RefCell<Registry>> {
        Rc::new(RefCell::new(Registry {
            cap: cap.max(1),
            slots: Vec::new(),
            free: Vec::new(),
            open: 0,
            fresh: VecDeque::new(),
            idle: VecDeque::new(),
            pending_sheds: 0,
            stopping: false,
            next_stamp: 0,
            stats: Stats::default(),
        }))
    }

    pub fn open(&self) -> usize {
        self.open
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Registers a new connection, shedding a fresh or idle one if the worker is at its cap;
    /// `None` when every connection is busy (the newcomer is refused).
    pub fn admit(registry: &Rc<RefCell<Registry>>) -> Option<Rc<Conn>> {
        let mut r = registry.borrow_mut();
        if r.open >= r.cap && (r.pending_sheds >= MAX_PENDING_SHEDS || !r.shed_one()) {
            r.stats.refused += 1;
            return None;
        }
        let index = match r.free.pop() {
            Some(i) => i,
            None => {
                r.slots.push(None);
                r.slots.len() - 1
            }
        };
        let now = Instant::now();
        r.next_stamp += 1;
        let stamp = r.next_stamp;
        let conn = Rc::new(Conn {
            phase: Cell::new(Phase::Fresh),
            stamp: Cell::new(stamp),
            times: Cell::new(Times {
                accepted: now,
                idle_since: now,
                head_started: None,
                last_read: now,
            }),
            shed: Cell::new(false),
            kill: Cell::new(r.stopping.then_some(Kill::Stop)),
            waker: RefCell::new(None),
            swept: Cell::new(false),
            index,
            registry: registry.clone(),
        });
        r.slots[index] = Some(Rc::downgrade(&conn));
        r.open += 1;
        r.queue(Phase::Fresh, index, stamp);
        Some(conn)
    }

    fn queue(&mut self, phase: Phase, index: usize, stamp: u64) {
        let q = match phase {
            Phase::Fresh | Phase::Closing => &mut self.fresh,
            Phase::Idle => &mut self.idle,
            Phase::Busy => return,
        };
        q.push_back((index, stamp));
        // Entries go stale as connections change phase; keep the queues proportional to the
        // connections open, not to the requests served.
        if q.len() > 2 * self.open + 64 {
            let slots = &self.slots;
            let q = match phase {
                Phase::Fresh | Phase::Closing => &mut self.fresh,
                _ => &mut self.idle,
            };
            q.retain(|&(i, s)| live(slots, i, s).is_some());
        }
    }

    /// Sheds the oldest fresh (or closing) connection, else the oldest idle one.
    fn shed_one(&mut self) -> bool {
        for fresh in [true, false] {
            loop {
                let q = if fresh {
                    &mut self.fresh
                } else {
                    &mut self.idle
                };
                let Some((i, s)) = q.pop_front() else { break };
                if let Some(c) = live(&self.slots, i, s)
                    && !c.shed.get()
                    && matches!(c.phase.get(), Phase::Fresh | Phase::Idle | Phase::Closing)
                {
                    c.shed.set(true);
                    c.kill(Kill::Shed);
                    self.pending_sheds += 1;
                    self.stats.shed += 1;
                    return true;
                }
            }
        }
        false
    }

    /// Closes every connection that waits for the client's bytes under the sweep and is past its
    /// [`read_deadline`] at `now`; returns how many. Called every [`sweep_period`] from the
    /// worker's loop, so a deadline is enforced at most one period late and never early.
    pub fn sweep(&self, now: Instant, limits: &Limits) -> usize {
        let mut expired = 0;
        for c in self.slots.iter().flatten().filter_map(Weak::upgrade) {
            if c.swept.get() && c.kill.get().is_none() && now >= c.read_deadline(limits) {
                c.kill(Kill::Expired);
                expired += 1;
            }
        }
        expired
    }

    /// Shutdown: every open connection (and every later one) is told to stop. The fast path
    /// ends at its next wait, after the answer in flight; hyper's connections ignore it and shut
    /// down gracefully by their own signal.
    pub fn stop(&mut self) {
        self.stopping = true;
        for c in self.slots.iter().flatten().filter_map(Weak::upgrade) {
            c.kill(Kill::Stop);
        }
    }

    fn remove(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index)
            && slot.take().is_some()
        {
            self.open -= 1;
            self.free.push(index);
        }
    }
}

/// The connection in slot `i` if it is still in the phase it was queued with.
fn live(slots: &[Option<Weak<Conn>>], i: usize, stamp: u64) -> Option<Rc<Conn>> {
    let c = slots.get(i)?.as_ref()?.upgrade()?;
    (c.stamp.get() == stamp).then_some(c)
}

/// Owned by a connection's task: deregisters on drop and settles the shed count.
pub struct Admitted(pub Rc<Conn>);

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.0.shed.get()
            && let Ok(mut r) = self.0.registry.try_borrow_mut()
        {
            r.pending_sheds = r.pending_sheds.saturating_sub(1);
        }
    }
}

impl std::ops::Deref for Admitted {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.0
    }
}

thread_local! {
    /// Since when this worker thread has been running without once running out of work.
    static BUSY_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The instant cached by [`tick`].
    static NOW: Cell<Option<Instant>> = const { Cell::new(None) };
    /// How long a worker may stay busy before it offers the core to other threads.
    static QUANTUM: Cell<Duration> =
        const { Cell::new(Duration::from_micros(crate::config::DEFAULT_YIELD_US)) };
}

/// Sets this thread's busy quantum to `us` microseconds, 0 for never yielding (called once per
/// worker thread with `config.server.yield_us`).
pub fn init_quantum(us: u64) {
    QUANTUM.set(Duration::from_micros(us));
}

/// Runtime hook: the worker woke up with work to do.
pub fn unparked() {
    BUSY_SINCE.set(Some(tick()));
}

/// Runtime hook: the worker ran out of work and sleeps in the kernel.
pub fn parked() {
    BUSY_SINCE.set(None);
}

/// Called after each answer. A worker that always has another connection ready never sleeps, so
/// the kernel lets it keep its core for a whole scheduler slice (milliseconds) while the other
/// threads of that core (a load balancer, a client on the same machine, the store) wait: a
/// bimodal latency, most answers in microseconds and the unlucky ones a slice late. Yielding after
/// every answer fixes the tail but costs throughput (a system call per request). So a worker
/// yields only once it has been busy for a whole quantum without a break (1 ms by default, about
/// what nginx's event loop goes between `epoll_wait`s under load): at most a thousand yields a
/// second, none at all below saturation.
///
/// `now` is the instant of this wake-up ([`now`]): checking the quantum reads no clock.
pub fn share_core(now: Instant) {
    let Some(since) = BUSY_SINCE.get() else {
        return;
    };
    let quantum = QUANTUM.get();
    if quantum.is_zero() || now.saturating_duration_since(since) < quantum {
        return;
    }
    std::thread::yield_now();
    BUSY_SINCE.set(Some(tick()));
}

/// How often a worker sweeps its connections for expired deadlines: an eighth of the shortest
/// read deadline, between 10 ms and 250 ms, so a 1 s timeout fires between 1 and 1.125 s and a
/// sweep of thousands of connections still costs nothing next to serving them.
pub fn sweep_period(limits: &Limits) -> Duration {
    (limits.head.min(limits.idle).min(limits.body) / 8)
        .clamp(Duration::from_millis(10), Duration::from_millis(250))
}

/// Reads the clock and caches the instant for [`now`]: once per wake-up of a connection.
pub fn tick() -> Instant {
    let t = Instant::now();
    NOW.set(Some(t));
    t
}

/// The instant of this thread's last [`tick`] (reading the clock only if there was none):
/// for the rest of a wake-up's work, which lasts microseconds.
pub fn now() -> Instant {
    NOW.get().unwrap_or_else(tick)
}

/// Half-closes, drains what the client still sends (bounded in time and bytes), then closes, so
/// the kernel does not answer unread input with a reset that would destroy our last response. A
/// lingering connection is among the first shed at the cap, and being shed ends the lingering.
pub async fn linger_close(mut stream: TcpStream, conn: &Conn, limits: &Limits) {
    const MAX_DRAIN: usize = 256 * 1024;
    conn.set_phase(Phase::Closing);
    if stream.shutdown().await.is_err() {
        return;
    }
    let deadline = Instant::now() + limits.linger();
    let mut scratch = [0u8; 1024];
    let mut drained = 0;
    while drained < MAX_DRAIN {
        tokio::select! {
            _ = conn.shed() => return,
            read = tokio::time::timeout_at(deadline, stream.read(&mut scratch)) => match read {
                Ok(Ok(n)) if n > 0 => drained += n,
                _ => return,
            },
        }
    }
}

/// The hyper path's stream: reads and writes that fail once the connection's deadline passes.
///
/// Hyper has a header-read timeout but nothing for idle keep-alive, bodies or stalled writes;
/// this wrapper applies [`read_deadline`] (the phase comes from the service: busy from a request's
/// head to the end of its response body) and the send timeout to every pending read and write.
pub struct Guarded<T> {
    io: T,
    conn: Rc<Conn>,
    limits: Limits,
    read_timer: Pin<Box<Sleep>>,
    read_armed_at: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
    write_armed: bool,
}

impl<T> Guarded<T> {
    pub fn new(io: T, conn: Rc<Conn>, limits: Limits) -> Self {
        let far = Instant::now() + Duration::from_secs(86_400);
        Guarded {
            io,
            conn,
            limits,
            read_timer: Box::pin(tokio::time::sleep_until(far)),
            read_armed_at: None,
            write_timer: Box::pin(tokio::time::sleep_until(far)),
            write_armed: false,
        }
    }

    pub fn into_inner(self) -> T {
        self.io
    }

    fn write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.write_armed {
            self.write_timer
                .as_mut()
                .reset(Instant::now() + self.limits.send);
            self.write_armed = true;
        }
        ready!(self.write_timer.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading (send timeout)",
        )))
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.conn.on_read();
                }
                self.read_armed_at = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let deadline = self.conn.read_deadline(&self.limits);
                if self.read_armed_at != Some(deadline) {
                    self.read_timer.as_mut().reset(deadline);
                    self.read_armed_at = Some(deadline);
                }
                ready!(self.read_timer.as_mut().poll(cx));
                Poll::Ready(Err(timed_out("the client sent nothing in time")))
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Pending => self.write_pending(cx).map(|r| r.map(|()| 0)),
            ready => {
                self.write_armed = false;
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.write_pending(cx).map(|r| r.map(|()| 0)),
            ready => {
                self.write_armed = false;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.write_pending(cx),
            ready => {
                self.write_armed = false;
                ready
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A response body that marks its connection idle when hyper is done with it (written whole, or
/// dropped), so the idle deadline runs from the end of the response.
pub struct Tracked<B> {
    body: B,
    conn: Rc<Conn>,
}

impl<B> Tracked<B> {
    pub fn new(body: B, conn: Rc<Conn>) -> Self {
        Tracked { body, conn }
    }
}

impl<B> Drop for Tracked<B> {
    fn drop(&mut self) {
        if self.conn.phase() == Phase::Busy {
            self.conn.set_phase(Phase::Idle);
        }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            head: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            send: Duration::from_secs(30),
            body: Duration::from_secs(30),
            max_head_bytes: 16384,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_phase() {
        let l = limits();
        let t0 = Instant::now();
        let mut t = Times {
            accepted: t0,
            idle_since: t0,
            head_started: None,
            last_read: t0,
        };
        assert_eq!(
            read_deadline(Phase::Fresh, &t, &l),
            t0 + l.head,
            "first head from accept"
        );
        t.idle_since = t0 + Duration::from_secs(5);
        assert_eq!(
            read_deadline(Phase::Idle, &t, &l),
            t.idle_since + l.idle,
            "an idle connection waits idle_timeout for a first byte"
        );
        t.head_started = Some(t0 + Duration::from_secs(50));
        assert_eq!(
            read_deadline(Phase::Idle, &t, &l),
            t0 + Duration::from_secs(60),
            "then head_timeout from that byte"
        );
        t.last_read = t0 + Duration::from_secs(70);
        assert_eq!(read_deadline(Phase::Busy, &t, &l), t.last_read + l.body);
    }

    #[tokio::test(start_paused = true)]
    async fn at_the_cap_fresh_connections_go_first_then_the_oldest_idle() {
        let reg = Registry::new(3);
        let a = Admitted(Registry::admit(&reg).unwrap());
        let b = Admitted(Registry::admit(&reg).unwrap());
        let c = Admitted(Registry::admit(&reg).unwrap());
        a.set_phase(Phase::Busy);
        b.set_phase(Phase::Busy);
        b.set_phase(Phase::Idle);
        // c is fresh (silent): it goes before the idle b.
        let d = Admitted(Registry::admit(&reg).unwrap());
        assert!(c.was_shed() && !b.was_shed() && !a.was_shed());
        drop(c);
        d.set_phase(Phase::Busy);
        // Now the only candidate is the idle b.
        let e = Admitted(Registry::admit(&reg).unwrap());
        assert!(b.was_shed());
        drop(b);
        e.set_phase(Phase::Busy);
        // Everyone is busy: the newcomer is refused.
        assert!(Registry::admit(&reg).is_none());
        assert_eq!(reg.borrow().stats.refused, 1);
        assert_eq!(reg.borrow().open(), 3);
        drop((a, d, e));
        assert_eq!(reg.borrow().open(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_reused_slot_is_not_mistaken_for_its_older_occupant() {
        let reg = Registry::new(2);
        let a = Admitted(Registry::admit(&reg).unwrap());
        let b = Admitted(Registry::admit(&reg).unwrap());
        drop(a);
        // The newest connection takes a's slot; b, silent and older, must go first.
        let newest = Admitted(Registry::admit(&reg).unwrap());
        let _d = Admitted(Registry::admit(&reg).unwrap());
        assert!(b.was_shed(), "the oldest silent connection is shed");
        assert!(!newest.was_shed(), "not the newcomer in a reused slot");
    }

    #[tokio::test(start_paused = true)]
    async fn the_sweep_closes_waiting_connections_at_their_deadline_never_before() {
        let l = limits();
        let reg = Registry::new(10);
        let waiting = Admitted(Registry::admit(&reg).unwrap());
        let busy = Admitted(Registry::admit(&reg).unwrap());
        waiting.set_swept(true);
        // Fresh, past its head deadline, but not waiting under the sweep (a miss, a send): left
        // alone, its own timers govern it.
        busy.set_phase(Phase::Busy);
        let t0 = Instant::now();
        assert_eq!(
            reg.borrow()
                .sweep(t0 + l.head - Duration::from_millis(1), &l),
            0
        );
        assert_eq!(waiting.kill.get(), None, "not a moment early");
        assert_eq!(reg.borrow().sweep(t0 + l.head, &l), 1);
        assert_eq!(waiting.kill.get(), Some(Kill::Expired));
        assert_eq!(busy.kill.get(), None);
        // An idle waiting connection counts from the end of its last answer.
        busy.set_phase(Phase::Idle);
        busy.set_swept(true);
        let idle_since = busy.times().idle_since;
        assert_eq!(
            reg.borrow()
                .sweep(idle_since + l.idle - Duration::from_millis(1), &l),
            0
        );
        assert_eq!(reg.borrow().sweep(idle_since + l.idle, &l), 1);
        assert_eq!(busy.kill.get(), Some(Kill::Expired));
        let period = sweep_period(&l);
        assert!(
            period <= l.head / 8 && period >= Duration::from_millis(10),
            "{period:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stop_tells_every_connection_and_a_later_shed_still_ends_hyper_s_wait() {
        let reg = Registry::new(2);
        let a = Admitted(Registry::admit(&reg).unwrap());
        reg.borrow_mut().stop();
        assert_eq!(a.kill.get(), Some(Kill::Stop));
        let late = Admitted(Registry::admit(&reg).unwrap());
        assert_eq!(
            late.kill.get(),
            Some(Kill::Stop),
            "admitted after stop: told at once"
        );
        // hyper's wait for a shed ignores the stop (it shuts down gracefully on its own)...
        let waiting = tokio::time::timeout(Duration::from_millis(10), a.shed()).await;
        assert!(waiting.is_err());
        // ...but not a shed that comes after it.
        drop(late);
        let _b = Admitted(Registry::admit(&reg).unwrap());
        let _c = Registry::admit(&reg);
        assert!(a.was_shed());
        assert!(
            tokio::time::timeout(Duration::from_millis(10), a.shed())
                .await
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn queues_stay_proportional_to_open_connections() {
        let reg = Registry::new(10);
        let a = Admitted(Registry::admit(&reg).unwrap());
        for _ in 0..10_000 {
            a.set_phase(Phase::Busy);
            a.set_phase(Phase::Idle);
        }
        let r = reg.borrow();
        assert!(r.idle.len() <= 2 * r.open() + 64, "{}", r.idle.len());
    }
}
