//! Per-thread poll counters: what a feed answer costs to count.
//!
//! Each HTTP worker thread counts into its own maps (a thread-local, no lock, no atomic shared
//! with another core), and hands them over every few seconds ([`drain`]) from a task on the same
//! thread. Entries are zeroed rather than removed while they are in use, so a poll of a feed and
//! client already seen this interval allocates nothing: a hash of the User-Agent and a few map
//! lookups. What a string means (aggregator, reader, bot) is worked out later, once per distinct
//! User-Agent, by the flusher.
//!
//! Bounded: a thread keeps at most [`MAX_FEEDS`] feeds, [`MAX_CLIENTS`] clients (all feeds
//! together) and [`MAX_AGENTS`] User-Agents of at most [`MAX_AGENT_BYTES`] bytes between two
//! drains; a poll past a bound is still counted in its feed's totals when the feed is known, and
//! otherwise only in `dropped`. At those bounds a thread's tally holds about 4.5 MB and a drained
//! snapshot about 3 MB (see the README's readership memory figure).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub const MAX_FEEDS: usize = 8192;
pub const MAX_CLIENTS: usize = 16_384;
pub const MAX_AGENTS: usize = 4096;
/// A User-Agent is kept (and told apart from others) by its first this many bytes: every
/// aggregator's count and feed id come well before, and a header of kilobytes costs no more.
pub const MAX_AGENT_BYTES: usize = 256;

/// One counted feed answer.
#[derive(Debug, Clone, Copy)]
pub struct Counted<'a> {
    /// The feed's path (`/vi/rss.xml`).
    pub path: &'a str,
    pub not_modified: bool,
    /// The request carried `If-None-Match` or `If-Modified-Since`.
    pub conditional: bool,
    /// Body bytes sent.
    pub bytes: u64,
    /// The client's address (after trusted proxies).
    pub client: IpAddr,
    pub user_agent: &'a [u8],
    pub partner: Option<u16>,
}

#[derive(Default)]
struct ClientTally {
    partner: Option<u16>,
    /// This interval's first unconditional fetch (the flusher compares it with other threads').
    first_unconditional: Option<Instant>,
    last_unconditional: Option<Instant>,
    unconditional: u32,
    too_soon: u32,
    seen: bool,
}

struct FeedTally {
    polls: u64,
    not_modified: u64,
    bytes: u64,
    partners: Vec<u64>,
    clients: HashMap<(IpAddr, u64), ClientTally>,
    seen: bool,
}

#[derive(Default)]
struct Tally {
    feeds: HashMap<Box<str>, FeedTally>,
    agents: HashMap<u64, Box<str>>,
    /// Clients of all feeds together.
    clients: usize,
    dropped: u64,
}

thread_local! {
    static TALLY: RefCell<Tally> = RefCell::new(Tally::default());
}

/// A client of one feed in one interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSnapshot {
    pub addr: IpAddr,
    /// The hash of its User-Agent, a key of [`Snapshot::agents`].
    pub user_agent: u64,
    pub partner: Option<u16>,
    pub unconditional: u32,
    /// Unconditional fetches sooner than max-age after this thread's previous one.
    pub too_soon: u32,
    /// This interval's first and last unconditional fetches, so the flusher can also catch a
    /// client whose connections landed on different threads.
    pub first_unconditional: Option<Instant>,
    pub last_unconditional: Option<Instant>,
}

/// One feed's counts over one interval on one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSnapshot {
    pub path: String,
    pub polls: u64,
    pub not_modified: u64,
    pub bytes: u64,
    /// Polls per partner index.
    pub partners: Vec<(u16, u64)>,
    pub clients: Vec<ClientSnapshot>,
}

/// What one thread counted since its last drain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub feeds: Vec<FeedSnapshot>,
    /// The User-Agents the clients refer to, by hash.
    pub agents: HashMap<u64, String>,
    pub dropped: u64,
}

impl Snapshot {
    pub fn is_empty(&self) -> bool {
        self.feeds.is_empty() && self.dropped == 0
    }
}

/// Counts one feed answer on this thread. `max_age` is the feed's `Cache-Control` max-age: an
/// unconditional fetch sooner than that after the same client's previous one is impolite.
pub fn record(c: &Counted<'_>, partners: usize, max_age: Duration) {
    TALLY.with(|t| {
        let mut t = t.borrow_mut();
        let Tally {
            feeds,
            agents,
            clients,
            dropped,
        } = &mut *t;
        // One lookup on the common path; the entry is made (and the path copied) only the first
        // time a feed is polled on this thread.
        if let Some(feed) = feeds.get_mut(c.path) {
            count(feed, agents, clients, dropped, c, max_age);
            return;
        }
        if feeds.len() >= MAX_FEEDS {
            *dropped += 1;
            return;
        }
        let feed = feeds.entry(c.path.into()).or_insert_with(|| FeedTally {
            polls: 0,
            not_modified: 0,
            bytes: 0,
            partners: vec![0; partners],
            clients: HashMap::new(),
            seen: false,
        });
        count(feed, agents, clients, dropped, c, max_age);
    });
}

fn count(
    feed: &mut FeedTally,
    agents: &mut HashMap<u64, Box<str>>,
    clients: &mut usize,
    dropped: &mut u64,
    c: &Counted<'_>,
    max_age: Duration,
) {
    feed.seen = true;
    feed.polls += 1;
    feed.not_modified += u64::from(c.not_modified);
    feed.bytes += c.bytes;
    if let Some(p) = c.partner
        && let Some(n) = feed.partners.get_mut(usize::from(p))
    {
        *n += 1;
    }
    let agent = &c.user_agent[..c.user_agent.len().min(MAX_AGENT_BYTES)];
    let ua = xxhash_rust::xxh3::xxh3_64(agent);
    if !agents.contains_key(&ua) {
        if agents.len() >= MAX_AGENTS {
            *dropped += 1;
            return;
        }
        agents.insert(ua, String::from_utf8_lossy(agent).into());
    }
    let key = (c.client, ua);
    let client = if let Some(x) = feed.clients.get_mut(&key) {
        x
    } else if *clients >= MAX_CLIENTS {
        *dropped += 1;
        return;
    } else {
        *clients += 1;
        feed.clients.entry(key).or_default()
    };
    client.seen = true;
    client.partner = c.partner;
    if !c.conditional {
        client.unconditional += 1;
        let now = Instant::now();
        // Within this interval only: the gap from the previous interval's last fetch (on any
        // thread) is the flusher's to judge, so no gap is counted twice.
        if client.first_unconditional.is_some()
            && client
                .last_unconditional
                .is_some_and(|prev| now.duration_since(prev) < max_age)
        {
            client.too_soon += 1;
        }
        client.last_unconditional = Some(now);
        client.first_unconditional.get_or_insert(now);
    }
}

/// Takes what this thread counted since the last drain, leaving the entries in use in place
/// (zeroed) and dropping the ones unused for a whole interval.
pub fn drain() -> Snapshot {
    TALLY.with(|t| {
        let mut t = t.borrow_mut();
        let t = &mut *t;
        let mut snap = Snapshot {
            dropped: std::mem::take(&mut t.dropped),
            ..Default::default()
        };
        t.feeds.retain(|_, f| f.seen);
        t.clients = 0;
        for (path, f) in t.feeds.iter_mut() {
            f.clients.retain(|_, c| c.seen);
            f.clients.shrink_to(f.clients.len() * 2);
            t.clients += f.clients.len();
            let clients = f
                .clients
                .iter_mut()
                .map(|(&(addr, user_agent), c)| {
                    let out = ClientSnapshot {
                        addr,
                        user_agent,
                        partner: c.partner,
                        unconditional: std::mem::take(&mut c.unconditional),
                        too_soon: std::mem::take(&mut c.too_soon),
                        first_unconditional: c.first_unconditional.take(),
                        last_unconditional: c.last_unconditional,
                    };
                    c.seen = false;
                    out
                })
                .collect::<Vec<_>>();
            for c in &clients {
                if let Some(ua) = t.agents.get(&c.user_agent) {
                    snap.agents
                        .entry(c.user_agent)
                        .or_insert_with(|| ua.to_string());
                }
            }
            snap.feeds.push(FeedSnapshot {
                path: path.to_string(),
                polls: std::mem::take(&mut f.polls),
                not_modified: std::mem::take(&mut f.not_modified),
                bytes: std::mem::take(&mut f.bytes),
                partners: f
                    .partners
                    .iter_mut()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| (i as u16, std::mem::take(n)))
                    .collect(),
                clients,
            });
            f.seen = false;
        }
        // User-Agents nobody used this interval are forgotten; the others stay interned. A flood's
        // tables are given back once it is over.
        t.agents.retain(|h, _| snap.agents.contains_key(h));
        t.agents.shrink_to(t.agents.len() * 2);
        t.feeds.shrink_to(t.feeds.len() * 2);
        snap
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll<'a>(path: &'a str, ua: &'a [u8], conditional: bool) -> Counted<'a> {
        Counted {
            path,
            not_modified: conditional,
            conditional,
            bytes: if conditional { 0 } else { 1000 },
            client: "192.0.2.1".parse().unwrap(),
            user_agent: ua,
            partner: None,
        }
    }

    #[test]
    fn counts_drain_and_reset() {
        // Tests run on their own threads, so this thread's tally is this test's.
        let hour = Duration::from_secs(3600);
        record(&poll("/vi/rss.xml", b"Miniflux/2.2", true), 1, hour);
        record(&poll("/vi/rss.xml", b"Miniflux/2.2", true), 1, hour);
        record(&poll("/vi/rss.xml", b"curl/8.0", false), 1, hour);
        record(&poll("/vi/rss.xml", b"curl/8.0", false), 1, hour);
        let mut partner = poll("/en/atom.xml", b"Baomoi-crawler", false);
        partner.partner = Some(0);
        record(&partner, 1, hour);
        let mut s = drain();
        s.feeds.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(s.feeds.len(), 2);
        let vi = &s.feeds[1];
        assert_eq!((vi.polls, vi.not_modified, vi.bytes), (4, 2, 2000));
        assert_eq!(vi.clients.len(), 2, "one client per (address, User-Agent)");
        let curl = vi
            .clients
            .iter()
            .find(|c| s.agents[&c.user_agent] == "curl/8.0")
            .unwrap();
        assert_eq!(
            (curl.unconditional, curl.too_soon),
            (2, 1),
            "the second unconditional fetch within max-age is too soon"
        );
        assert_eq!(s.feeds[0].partners, vec![(0, 1)]);
        assert_eq!(s.feeds[0].clients[0].partner, Some(0));

        // Drained: the next drain is empty, and entries unused for an interval go away.
        assert!(drain().is_empty());
        TALLY.with(|t| assert!(t.borrow().feeds.is_empty() && t.borrow().agents.is_empty()));
        // A fetch after the window is not too soon.
        record(&poll("/vi/rss.xml", b"curl/8.0", false), 1, Duration::ZERO);
        let s = drain();
        assert_eq!(s.feeds[0].clients[0].too_soon, 0);
    }

    #[test]
    fn bounded_per_thread() {
        let hour = Duration::from_secs(3600);
        // Distinct addresses over many feeds: the clients of all feeds together are bounded.
        let n = MAX_CLIENTS + 5;
        for i in 0..n {
            let mut p = poll("/vi/rss.xml", b"Miniflux/2.2", true);
            let path = format!("/vi/tag/t{}/rss.xml", i % 100);
            p.path = &path;
            p.client = IpAddr::from((0x0a00_0000u32 + i as u32).to_be_bytes());
            record(&p, 0, hour);
        }
        let s = drain();
        let polls: u64 = s.feeds.iter().map(|f| f.polls).sum();
        assert_eq!(polls, n as u64, "every poll is counted");
        let clients: usize = s.feeds.iter().map(|f| f.clients.len()).sum();
        assert_eq!(clients, MAX_CLIENTS);
        assert_eq!(s.dropped, 5);
        // Clients seen last interval are kept (zeroed) for one more; an idle interval frees them.
        assert!(drain().is_empty());

        // Distinct User-Agents: bounded in number and in length.
        let long = "x".repeat(10_000);
        for i in 0..(MAX_AGENTS + 5) {
            let ua = format!("agent-{i} {long}");
            record(&poll("/vi/rss.xml", ua.as_bytes(), true), 0, hour);
        }
        let s = drain();
        assert_eq!(s.agents.len(), MAX_AGENTS);
        assert!(s.agents.values().all(|a| a.len() <= MAX_AGENT_BYTES));
        assert_eq!(s.dropped, 5);
    }
}
