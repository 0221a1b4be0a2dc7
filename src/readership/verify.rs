//! Verifying an aggregator's fetchers, where the aggregator documents how.
//!
//! A User-Agent is a claim anyone can make. A few operators say how to tell their fetchers from
//! an impostor; only those documented rules are in [`RULES`] (each with the page it comes from).
//! Feedly, Inoreader, NewsBlur, Feedbin, The Old Reader, BazQux and Superfeedr document no way to
//! verify their fetchers (their fetcher pages name the User-Agent only), so they are not in the
//! table and their claims are judged by the other rules of [`super::claims`] alone. A claim naming
//! an aggregator of the table counts only once verified: a fetcher that fails the documented check
//! is not that aggregator's.
//!
//! Verification is a pure function of the address and a [`Resolver`] ([`verify`]), so tests pass a
//! scripted resolver and never touch real DNS. In the service, [`Verifier`] runs lookups on one
//! background task, one at a time, from a bounded queue, and keeps the verdicts in a bounded cache:
//! the poll path never waits for DNS, and no client can queue more than [`QUEUE`] lookups or make
//! it remember more than [`CACHE`] addresses. Addresses live only in that memory (for at most a
//! day); what is stored is the claim's network and its verdict.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::clock::Clock;

/// How an aggregator's fetchers are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Forward-confirmed reverse DNS: the address's PTR name is in one of these domains, and that
    /// name resolves back to the address.
    ForwardConfirmedReverseDns { domains: &'static [&'static str] },
}

/// One documented rule.
#[derive(Debug, Clone, Copy)]
pub struct Documented {
    /// The aggregator's name as [`super::agents::classify`] gives it.
    pub aggregator: &'static str,
    pub rule: Rule,
    /// Where the operator documents it.
    pub source: &'static str,
}

/// Every rule an operator documents.
pub const RULES: &[Documented] = &[
    // Google: "Fetchers controlled by Google originate from IPs in the
    // user-triggered-fetchers-google.json object and resolve to a google.com hostname", verified by
    // a reverse lookup then a forward lookup of that name giving the same address. Feedfetcher is
    // one of Google's user-triggered fetchers.
    Documented {
        aggregator: "Google Feedfetcher",
        rule: Rule::ForwardConfirmedReverseDns {
            domains: &["google.com"],
        },
        source: "https://developers.google.com/search/docs/crawling-indexing/verifying-googlebot",
    },
    // FeedBlitz: "The reverse DNS for the originating IP in production use will always have a PTR
    // of a host at feedblitz.com". A PTR alone is whatever the owner of the address says, so the
    // name is forward-confirmed as for Google.
    Documented {
        aggregator: "FeedBlitz",
        rule: Rule::ForwardConfirmedReverseDns {
            domains: &["feedblitz.com"],
        },
        source: "https://support.feedblitz.com/support/solutions/articles/43000743910-the-feedblitz-rss-feed-fetcher-bot",
    },
];

/// The index in [`RULES`] of `aggregator`'s rule, if it documents one.
pub fn rule_for(aggregator: &str) -> Option<usize> {
    RULES.iter().position(|d| d.aggregator == aggregator)
}

/// DNS as verification needs it.
pub trait Resolver: Send + Sync {
    /// The PTR name of `addr`, if it has one.
    fn reverse(&self, addr: IpAddr) -> Option<String>;
    /// The addresses `host` resolves to.
    fn forward(&self, host: &str) -> Vec<IpAddr>;
}

/// The system resolver (getnameinfo, getaddrinfo); blocking, so only ever called from the
/// verifier's blocking task.
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn reverse(&self, addr: IpAddr) -> Option<String> {
        dns_lookup::lookup_addr(&addr).ok()
    }

    fn forward(&self, host: &str) -> Vec<IpAddr> {
        dns_lookup::lookup_host(host)
            .map(|a| a.take(64).collect())
            .unwrap_or_default()
    }
}

/// Whether `host` is `domain` or a name under it (label-wise, any case, trailing dot allowed).
fn in_domain(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Whether `addr` passes `rule`.
pub fn verify(rule: &Rule, addr: IpAddr, resolver: &dyn Resolver) -> bool {
    match rule {
        Rule::ForwardConfirmedReverseDns { domains } => {
            let addr = addr.to_canonical();
            let Some(name) = resolver.reverse(addr) else {
                return false;
            };
            if !domains.iter().any(|d| in_domain(&name, d)) {
                return false;
            }
            resolver
                .forward(name.trim_end_matches('.'))
                .iter()
                .any(|a| a.to_canonical() == addr)
        }
    }
}

/// What is known of a claim's fetcher (stored with the claim; the order is the merge order: a
/// later, better-informed state replaces an earlier one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// The aggregator documents no way to verify its fetchers.
    Unverifiable = 0,
    /// It does; the lookup has not answered yet.
    Pending = 1,
    /// The fetcher failed the documented check.
    Refuted = 2,
    /// The fetcher passed it.
    Verified = 3,
}

impl Verdict {
    pub fn from_code(n: i64) -> Verdict {
        match n {
            1 => Verdict::Pending,
            2 => Verdict::Refuted,
            3 => Verdict::Verified,
            _ => Verdict::Unverifiable,
        }
    }

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Unverifiable => "unverifiable",
            Verdict::Pending => "pending",
            Verdict::Refuted => "refuted",
            Verdict::Verified => "verified",
        }
    }
}

/// Lookups waiting at most.
pub const QUEUE: usize = 256;
/// Addresses remembered at most (verdicts and lookups in flight).
pub const CACHE: usize = 4096;
/// How long a verdict is reused, in seconds.
const VERDICT_TTL: i64 = 24 * 3600;
/// How long a lookup may stay unanswered before it is asked again.
const PENDING_TTL: i64 = 600;

#[derive(Clone, Copy)]
enum Entry {
    Asked(i64),
    Known(bool, i64),
}

struct Shared {
    cache: Mutex<HashMap<(usize, IpAddr), Entry>>,
    resolver: Mutex<Arc<dyn Resolver>>,
    clock: Arc<dyn Clock>,
}

/// A lookup waiting for the resolver: the rule's index and the address to verify.
type Lookup = (usize, IpAddr);

/// The service side: a bounded cache of verdicts and a queue of lookups.
#[derive(Clone)]
pub struct Verifier {
    shared: Arc<Shared>,
    tx: Arc<Mutex<Option<mpsc::Sender<Lookup>>>>,
}

impl Verifier {
    pub fn new(clock: Arc<dyn Clock>) -> Verifier {
        Verifier {
            shared: Arc::new(Shared {
                cache: Mutex::new(HashMap::new()),
                resolver: Mutex::new(Arc::new(SystemResolver)),
                clock,
            }),
            tx: Arc::new(Mutex::new(None)),
        }
    }

    /// Replaces the resolver (tests script DNS with one).
    pub fn set_resolver(&self, resolver: Arc<dyn Resolver>) {
        *self
            .shared
            .resolver
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = resolver;
    }

    /// Starts the lookup task on the current runtime.
    pub fn start(&self) {
        let (tx, mut rx) = mpsc::channel::<Lookup>(QUEUE);
        *self.tx.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            while let Some((rule, addr)) = rx.recv().await {
                let resolver = shared
                    .resolver
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                // One lookup at a time: a slow resolver delays verdicts, never polls or flushes.
                let ok = tokio::task::spawn_blocking(move || {
                    verify(&RULES[rule].rule, addr, &*resolver)
                })
                .await
                .unwrap_or(false);
                let now = shared.clock.now().timestamp();
                shared
                    .cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((rule, addr), Entry::Known(ok, now));
            }
        });
    }

    /// The verdict for a claim of aggregator `rule` from `addr`: known, or pending (and then a
    /// lookup is queued if there is room).
    pub fn check(&self, rule: usize, addr: IpAddr) -> Verdict {
        let now = self.shared.clock.now().timestamp();
        let key = (rule, addr.to_canonical());
        let mut cache = self.shared.cache.lock().unwrap_or_else(|p| p.into_inner());
        match cache.get(&key) {
            Some(Entry::Known(ok, at)) if now - at < VERDICT_TTL => {
                return if *ok {
                    Verdict::Verified
                } else {
                    Verdict::Refuted
                };
            }
            Some(Entry::Asked(at)) if now - at < PENDING_TTL => return Verdict::Pending,
            _ => {}
        }
        if cache.len() >= CACHE && !cache.contains_key(&key) {
            cache.retain(|_, e| match e {
                Entry::Known(_, at) => now - *at < VERDICT_TTL,
                Entry::Asked(at) => now - *at < PENDING_TTL,
            });
            if cache.len() >= CACHE {
                return Verdict::Pending;
            }
        }
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(tx) = tx
            && tx.try_send(key).is_ok()
        {
            cache.insert(key, Entry::Asked(now));
        }
        Verdict::Pending
    }

    /// Addresses remembered (for the memory figure).
    pub fn remembered(&self) -> usize {
        self.shared
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .capacity()
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// DNS as a table: PTR names and forward answers.
    #[derive(Default)]
    pub struct Scripted {
        pub ptr: HashMap<IpAddr, String>,
        pub a: HashMap<String, Vec<IpAddr>>,
    }

    impl Resolver for Scripted {
        fn reverse(&self, addr: IpAddr) -> Option<String> {
            self.ptr.get(&addr).cloned()
        }
        fn forward(&self, host: &str) -> Vec<IpAddr> {
            self.a.get(host).cloned().unwrap_or_default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn google() -> Rule {
        RULES[rule_for("Google Feedfetcher").unwrap()].rule
    }

    #[test]
    fn forward_confirmed_reverse_dns() {
        let mut dns = Scripted::default();
        let real = ip("66.249.90.77");
        dns.ptr
            .insert(real, "google-proxy-66-249-90-77.google.com.".into());
        dns.a.insert(
            "google-proxy-66-249-90-77.google.com".into(),
            vec![ip("66.249.90.77")],
        );
        assert!(
            verify(&google(), real, &dns),
            "PTR in google.com, confirmed"
        );

        // An impostor's own reverse zone can say anything; the forward lookup does not agree.
        let fake = ip("203.0.113.5");
        dns.ptr
            .insert(fake, "google-proxy-66-249-90-77.google.com".into());
        assert!(!verify(&google(), fake, &dns));
        // A name merely ending in the text of the domain is not in it.
        let look_alike = ip("198.51.100.7");
        dns.ptr.insert(look_alike, "evilgoogle.com".into());
        dns.a.insert("evilgoogle.com".into(), vec![look_alike]);
        assert!(!verify(&google(), look_alike, &dns));
        // No PTR at all.
        assert!(!verify(&google(), ip("192.0.2.1"), &dns));
        // IPv6, and a mapped IPv4 address compares as IPv4.
        let v6 = ip("2001:4860:4801:10::1");
        dns.ptr.insert(v6, "google-proxy-x.google.com".into());
        dns.a.insert("google-proxy-x.google.com".into(), vec![v6]);
        assert!(verify(&google(), v6, &dns));
        assert!(verify(&google(), ip("::ffff:66.249.90.77"), &dns));
    }

    #[test]
    fn the_table_names_only_documented_rules() {
        for d in RULES {
            assert!(
                d.source.starts_with("https://"),
                "{} has a source",
                d.aggregator
            );
            assert!(rule_for(d.aggregator).is_some());
        }
        assert_eq!(rule_for("Feedly"), None, "Feedly documents no verification");
        assert!(in_domain("mail99.feedblitz.com", "feedblitz.com"));
        assert!(in_domain("FEEDBLITZ.COM.", "feedblitz.com"));
        assert!(!in_domain("feedblitz.com.evil.net", "feedblitz.com"));
    }

    #[tokio::test]
    async fn verdicts_are_looked_up_off_the_poll_path_and_cached() {
        let clock = Arc::new(crate::clock::ManualClock::new(chrono::Utc::now()));
        let v = Verifier::new(clock.clone());
        let mut dns = Scripted::default();
        let real = ip("66.249.90.77");
        dns.ptr.insert(real, "a.google.com".into());
        dns.a.insert("a.google.com".into(), vec![real]);
        v.set_resolver(Arc::new(dns));
        let rule = rule_for("Google Feedfetcher").unwrap();
        // Not started: nothing is queued and the claim stays pending.
        assert_eq!(v.check(rule, real), Verdict::Pending);
        v.start();
        assert_eq!(v.check(rule, real), Verdict::Pending, "never waits");
        let fake = ip("203.0.113.9");
        v.check(rule, fake);
        for _ in 0..200 {
            if v.check(rule, real) != Verdict::Pending && v.check(rule, fake) != Verdict::Pending {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(v.check(rule, real), Verdict::Verified);
        assert_eq!(v.check(rule, fake), Verdict::Refuted);

        // Bounded: a flood of addresses leaves at most CACHE remembered.
        for i in 0..(CACHE as u32 + 500) {
            v.check(rule, IpAddr::from((0x0a00_0000 + i).to_be_bytes()));
        }
        let n = v.shared.cache.lock().unwrap().len();
        assert!(n <= CACHE, "{n}");
    }
}
