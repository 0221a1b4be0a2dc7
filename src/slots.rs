//! Render slots: which miss may render now, so that the pages everyone polls are never kept
//! waiting by the pages only a crawler asks for.
//!
//! A render holds a page of articles and its bodies in memory and keeps a core busy for
//! milliseconds (a deep tag page, skipping tens of thousands of rows, for tens of them), so
//! renders run a few at a time: [`Policy::slots`], one per core, at least two. Anyone may ask for
//! `?page=1500` of every tag, and those renders once filled every slot, so that a genuine miss of
//! a front page waited 0.8-1.8 s behind them. The policy:
//!
//! - **Two lanes.** Page 1 of any feed or preview and the lists of feeds (OPML, the index) are
//!   the *front* lane; older pages (`?page=N`, N > 1) are the *deep* lane.
//! - **Deep pages never fill the slots.** They run on at most [`Policy::deep_max`] slots (half,
//!   at least one), so at least one slot is always left to the front lane.
//! - **The front lane goes first.** A front render takes any free slot; when a slot frees, a
//!   waiting front render gets it before any deep one. So a page-1 miss never queues behind deep
//!   pages, only behind other front renders (of which there are at most one per feed and format
//!   at a time: concurrent misses of one page share a render). The front queue needs no bound of
//!   its own: each waiter is a request on an open connection, bounded by the connection cap.
//! - **Deep pages are shared out per client.** One client (an address; an IPv6 /64, what one
//!   host is usually given) runs at most one deep render at a time and may have at most
//!   [`Policy::deep_per_client`] deep requests in flight; a free deep slot goes to the oldest
//!   waiter whose client runs none, so one crawler's backlog does not delay another client's
//!   older page. At most [`Policy::deep_queue`] deep requests wait in all. Beyond either bound a
//!   deep page is refused at once ([`Refused`]: a 503 with `Retry-After`, or the page's stale copy
//!   when one is kept), instead of holding a connection and a task in a queue no one drains.
//!
//! The client map holds only clients with a deep request running or waiting, so it is bounded by
//! `deep_max + deep_queue` entries whatever the number of addresses. The address is the TCP
//! peer's, or the one a trusted proxy reports (`[access] trusted_proxies`); a client's own claims
//! are not believed.
//!
//! [`Scheduler`] is the policy as a pure state machine (unit-tested below); [`RenderSlots`] wires
//! it to tasks: a waiter parks on a oneshot channel and a [`Slot`] gives its place back on drop,
//! also when the request is abandoned while waiting.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Whose deep pages these are: an IPv4 address, or the /64 of an IPv6 one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4(u32),
    V6(u64),
    /// No address (the CLI's export).
    Local,
}

impl ClientKey {
    pub fn of(addr: Option<IpAddr>) -> ClientKey {
        match addr.map(|a| a.to_canonical()) {
            Some(IpAddr::V4(a)) => ClientKey::V4(a.into()),
            Some(IpAddr::V6(a)) => ClientKey::V6((u128::from(a) >> 64) as u64),
            None => ClientKey::Local,
        }
    }
}

/// Which queue a render waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Page 1 of a feed or preview, and the lists of feeds.
    Front,
    /// An older page, for this client.
    Deep(ClientKey),
}

impl Lane {
    /// The lane of page `page` asked for by `client`.
    pub fn for_page(page: u32, client: ClientKey) -> Lane {
        if page <= 1 {
            Lane::Front
        } else {
            Lane::Deep(client)
        }
    }
}

/// The numbers of the policy (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Renders at once, both lanes together.
    pub slots: usize,
    /// Deep renders at once at most (always fewer than `slots`).
    pub deep_max: usize,
    /// Deep requests one client may have running or waiting; more are refused.
    pub deep_per_client: usize,
    /// Deep requests waiting at most, all clients together; more are refused.
    pub deep_queue: usize,
}

impl Policy {
    /// One slot per core, at least two; deep pages on half of them, at least one.
    pub fn for_cores(cores: usize) -> Policy {
        let slots = cores.max(2);
        Policy {
            slots,
            deep_max: (slots / 2).max(1),
            deep_per_client: 4,
            deep_queue: 256,
        }
    }
}

/// A render's place, running or waiting.
pub type Ticket = u64;

/// What [`Scheduler::request`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Run now.
    Now(Ticket),
    /// Wait until [`Scheduler::release`] or [`Scheduler::cancel`] returns this ticket.
    Wait(Ticket),
    /// A deep page over its client's or the queue's bound.
    Refused,
}

/// A deep page was not admitted: its client has too many in flight, or too many wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// What the slots are doing, for `/metrics` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub front_running: usize,
    pub deep_running: usize,
    pub front_waiting: usize,
    pub deep_waiting: usize,
    /// Deep pages refused so far.
    pub refused: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct PerClient {
    running: usize,
    waiting: usize,
}

/// The policy as a state machine: no clock, no tasks.
#[derive(Debug)]
pub struct Scheduler {
    policy: Policy,
    next: Ticket,
    running: HashMap<Ticket, Lane>,
    front_waiting: VecDeque<Ticket>,
    deep_waiting: VecDeque<(Ticket, ClientKey)>,
    clients: HashMap<ClientKey, PerClient>,
    deep_running: usize,
    refused: u64,
}

impl Scheduler {
    pub fn new(policy: Policy) -> Scheduler {
        assert!(
            policy.slots > policy.deep_max && policy.deep_max >= 1,
            "the front lane keeps a slot"
        );
        Scheduler {
            policy,
            next: 0,
            running: HashMap::new(),
            front_waiting: VecDeque::new(),
            deep_waiting: VecDeque::new(),
            clients: HashMap::new(),
            deep_running: 0,
            refused: 0,
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            front_running: self.running.len() - self.deep_running,
            deep_running: self.deep_running,
            front_waiting: self.front_waiting.len(),
            deep_waiting: self.deep_waiting.len(),
            refused: self.refused,
        }
    }

    /// Clients with a deep request running or waiting (the map's size).
    pub fn clients(&self) -> usize {
        self.clients.len()
    }

    fn ticket(&mut self) -> Ticket {
        self.next += 1;
        self.next
    }

    fn free(&self) -> bool {
        self.running.len() < self.policy.slots
    }

    fn deep_may_start(&self, client: &ClientKey) -> bool {
        self.free()
            && self.deep_running < self.policy.deep_max
            && self.clients.get(client).map_or(0, |c| c.running) == 0
    }

    fn start(&mut self, ticket: Ticket, lane: Lane) {
        if let Lane::Deep(c) = lane {
            self.deep_running += 1;
            self.clients.entry(c).or_default().running += 1;
        }
        self.running.insert(ticket, lane);
    }

    /// Asks for a slot in `lane`.
    pub fn request(&mut self, lane: Lane) -> Admit {
        match lane {
            Lane::Front => {
                let t = self.ticket();
                if self.free() && self.front_waiting.is_empty() {
                    self.start(t, lane);
                    Admit::Now(t)
                } else {
                    self.front_waiting.push_back(t);
                    Admit::Wait(t)
                }
            }
            Lane::Deep(c) => {
                let mine = self.clients.get(&c).copied().unwrap_or_default();
                if mine.running + mine.waiting >= self.policy.deep_per_client {
                    self.refused += 1;
                    return Admit::Refused;
                }
                if self.front_waiting.is_empty() && self.deep_may_start(&c) {
                    let t = self.ticket();
                    self.start(t, lane);
                    return Admit::Now(t);
                }
                if self.deep_waiting.len() >= self.policy.deep_queue {
                    self.refused += 1;
                    return Admit::Refused;
                }
                let t = self.ticket();
                self.deep_waiting.push_back((t, c));
                self.clients.entry(c).or_default().waiting += 1;
                Admit::Wait(t)
            }
        }
    }

    /// A running render finished: its slot goes to the next waiters. Returns the tickets that may
    /// run now.
    pub fn release(&mut self, ticket: Ticket) -> Vec<Ticket> {
        if let Some(Lane::Deep(c)) = self.running.remove(&ticket) {
            self.deep_running -= 1;
            self.forget(c, |p| p.running -= 1);
        }
        self.fill()
    }

    /// A render gave up (its request was abandoned), waiting or already granted. Returns the
    /// tickets that may run now.
    pub fn cancel(&mut self, ticket: Ticket) -> Vec<Ticket> {
        if self.running.contains_key(&ticket) {
            return self.release(ticket);
        }
        if let Some(i) = self.front_waiting.iter().position(|&t| t == ticket) {
            self.front_waiting.remove(i);
        } else if let Some(i) = self.deep_waiting.iter().position(|&(t, _)| t == ticket) {
            let (_, c) = self
                .deep_waiting
                .remove(i)
                .expect("the index was just found");
            self.forget(c, |p| p.waiting -= 1);
        }
        self.fill()
    }

    fn forget(&mut self, c: ClientKey, change: impl FnOnce(&mut PerClient)) {
        if let Some(p) = self.clients.get_mut(&c) {
            change(p);
            if p.running == 0 && p.waiting == 0 {
                self.clients.remove(&c);
            }
        }
    }

    /// Hands free slots out: waiting front renders first, then the oldest deep waiter whose
    /// client runs none, within the deep lane's share.
    fn fill(&mut self) -> Vec<Ticket> {
        let mut granted = Vec::new();
        while self.free() {
            if let Some(t) = self.front_waiting.pop_front() {
                self.start(t, Lane::Front);
                granted.push(t);
                continue;
            }
            let next = self
                .deep_waiting
                .iter()
                .position(|(_, c)| self.deep_may_start(c));
            let Some(i) = next else { break };
            let (t, c) = self
                .deep_waiting
                .remove(i)
                .expect("the index was just found");
            self.forget(c, |p| p.waiting -= 1);
            self.start(t, Lane::Deep(c));
            granted.push(t);
        }
        granted
    }
}

/// The scheduler shared by every worker, with the waiters' wake-ups.
pub struct RenderSlots {
    inner: Mutex<Inner>,
}

struct Inner {
    scheduler: Scheduler,
    waiting: HashMap<Ticket, tokio::sync::oneshot::Sender<()>>,
}

impl Inner {
    fn wake(&mut self, granted: Vec<Ticket>) {
        for t in granted {
            if let Some(tx) = self.waiting.remove(&t) {
                // A waiter gone meanwhile gives its slot back through its guard's cancel.
                let _ = tx.send(());
            }
        }
    }
}

/// A slot held: given back when dropped.
pub struct Slot<'a> {
    slots: &'a RenderSlots,
    ticket: Ticket,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut inner = self.slots.lock();
        let granted = inner.scheduler.release(self.ticket);
        inner.wake(granted);
    }
}

/// Gives a waiting ticket back if its waiter is dropped before it became a [`Slot`].
struct Waiting<'a> {
    slots: &'a RenderSlots,
    ticket: Option<Ticket>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket {
            let mut inner = self.slots.lock();
            inner.waiting.remove(&t);
            let granted = inner.scheduler.cancel(t);
            inner.wake(granted);
        }
    }
}

impl RenderSlots {
    pub fn new(policy: Policy) -> RenderSlots {
        RenderSlots {
            inner: Mutex::new(Inner {
                scheduler: Scheduler::new(policy),
                waiting: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot in `lane`, once the policy grants one; [`Refused`] for a deep page over its bounds.
    pub async fn acquire(&self, lane: Lane) -> Result<Slot<'_>, Refused> {
        let (ticket, rx) = {
            let mut inner = self.lock();
            match inner.scheduler.request(lane) {
                Admit::Now(ticket) => {
                    return Ok(Slot {
                        slots: self,
                        ticket,
                    });
                }
                Admit::Refused => return Err(Refused),
                Admit::Wait(ticket) => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    inner.waiting.insert(ticket, tx);
                    (ticket, rx)
                }
            }
        };
        let mut guard = Waiting {
            slots: self,
            ticket: Some(ticket),
        };
        // The sender lives until the ticket is granted (or cancelled by the guard), so this
        // only ends with a grant.
        let _ = rx.await;
        guard.ticket = None;
        Ok(Slot {
            slots: self,
            ticket,
        })
    }

    pub fn stats(&self) -> Stats {
        self.lock().scheduler.stats()
    }

    pub fn policy(&self) -> Policy {
        self.lock().scheduler.policy
    }

    /// Clients with a deep request running or waiting.
    pub fn clients(&self) -> usize {
        self.lock().scheduler.clients()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            slots: 2,
            deep_max: 1,
            deep_per_client: 3,
            deep_queue: 4,
        }
    }

    fn client(n: u8) -> Lane {
        Lane::Deep(ClientKey::of(Some(IpAddr::from([10, 0, 0, n]))))
    }

    fn now(a: Admit) -> Ticket {
        match a {
            Admit::Now(t) => t,
            other => panic!("expected to run now, got {other:?}"),
        }
    }

    fn waits(a: Admit) -> Ticket {
        match a {
            Admit::Wait(t) => t,
            other => panic!("expected to wait, got {other:?}"),
        }
    }

    #[test]
    fn deep_pages_leave_a_slot_to_page_one() {
        let mut s = Scheduler::new(policy());
        let d1 = now(s.request(client(1)));
        // The deep lane is full (one of two slots): another client's deep page waits...
        let d2 = waits(s.request(client(2)));
        // ...and page 1 runs at once on the slot kept for it.
        let f1 = now(s.request(Lane::Front));
        assert_eq!(s.stats().deep_running, 1);
        assert_eq!(s.stats().front_running, 1);
        // A second page-1 miss waits for a slot, but ahead of the deep page.
        let f2 = waits(s.request(Lane::Front));
        assert_eq!(
            s.release(d1),
            vec![f2],
            "the freed slot goes to page 1 first"
        );
        assert_eq!(s.release(f1), vec![d2], "then to the waiting deep page");
        assert!(s.release(f2).is_empty());
        assert!(s.release(d2).is_empty());
        assert_eq!(s.stats(), Stats::default());
        assert_eq!(
            s.clients(),
            0,
            "no client is remembered once it has nothing in flight"
        );
    }

    #[test]
    fn one_client_runs_one_deep_page_and_the_others_are_served_in_turn() {
        let mut s = Scheduler::new(Policy {
            slots: 4,
            deep_max: 2,
            ..policy()
        });
        let a1 = now(s.request(client(1)));
        // Client 1's next pages wait even though a deep slot is free.
        let a2 = waits(s.request(client(1)));
        let a3 = waits(s.request(client(1)));
        assert_eq!(s.stats().deep_running, 1);
        // Client 2 is not kept behind client 1's backlog.
        let b1 = now(s.request(client(2)));
        let c1 = waits(s.request(client(3)));
        // Client 1 has three in flight: a fourth is refused.
        assert_eq!(s.request(client(1)), Admit::Refused);
        // When client 1's page ends, its own next page goes (the oldest eligible waiter).
        assert_eq!(s.release(a1), vec![a2]);
        // When client 2's ends, client 3 goes before client 1's third page (client 1 runs one).
        assert_eq!(s.release(b1), vec![c1]);
        assert_eq!(s.release(a2), vec![a3]);
        assert_eq!(s.stats().refused, 1);
    }

    #[test]
    fn the_deep_queue_is_bounded() {
        let mut s = Scheduler::new(policy());
        now(s.request(client(0)));
        for n in 1..=4 {
            waits(s.request(client(n)));
        }
        assert_eq!(s.request(client(5)), Admit::Refused);
        // Page 1 is never refused, whatever waits.
        now(s.request(Lane::Front));
        waits(s.request(Lane::Front));
        assert_eq!(s.stats().deep_waiting, 4);
        assert!(s.clients() <= 1 + 4);
    }

    #[test]
    fn an_abandoned_waiter_gives_its_place_back() {
        let mut s = Scheduler::new(policy());
        let d1 = now(s.request(client(1)));
        let d2 = waits(s.request(client(2)));
        let d3 = waits(s.request(client(3)));
        assert!(s.cancel(d2).is_empty());
        assert_eq!(s.release(d1), vec![d3], "the abandoned one is skipped");
        // A ticket granted but abandoned before it ran frees its slot.
        let d4 = waits(s.request(client(4)));
        assert_eq!(s.cancel(d3), vec![d4]);
        assert!(s.cancel(d4).is_empty());
        assert_eq!(s.stats(), Stats::default());
        assert_eq!(s.clients(), 0);
    }

    #[test]
    fn ipv6_clients_are_their_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(Some(a)), ClientKey::of(Some(b)));
        assert_ne!(ClientKey::of(Some(a)), ClientKey::of(Some(c)));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            ClientKey::of(Some(mapped)),
            ClientKey::of(Some(IpAddr::from([10, 0, 0, 1])))
        );
    }

    #[test]
    fn the_lane_follows_the_page() {
        let c = ClientKey::Local;
        assert_eq!(Lane::for_page(1, c), Lane::Front);
        assert_eq!(Lane::for_page(2, c), Lane::Deep(c));
    }

    #[tokio::test]
    async fn a_slot_is_given_back_on_drop_and_a_dropped_waiter_frees_its_place() {
        let slots = std::sync::Arc::new(RenderSlots::new(policy()));
        let deep = slots.acquire(client(1)).await.unwrap();
        let front = slots.acquire(Lane::Front).await.unwrap();
        // A waiter abandoned while it waits (its request was cancelled) leaves no trace.
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            slots.acquire(client(2)),
        )
        .await;
        assert!(abandoned.is_err(), "it waited");
        assert_eq!(slots.stats().deep_waiting, 0);
        assert_eq!(slots.clients(), 1);
        let s = slots.clone();
        let waiter = tokio::spawn(async move {
            let _slot = s.acquire(Lane::Front).await.unwrap();
        });
        while slots.stats().front_waiting == 0 {
            tokio::task::yield_now().await;
        }
        drop(deep);
        waiter.await.unwrap();
        drop(front);
        assert_eq!(slots.stats(), Stats::default());
        assert_eq!(slots.clients(), 0);
    }
}
