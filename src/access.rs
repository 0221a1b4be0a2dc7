//! Who is asking for a feed: the public or a partner, and from which address.
//!
//! A partner presents its key as `?key=KEY` (what feed readers and crawlers can be told to send)
//! or `Authorization: Bearer KEY`. The configuration holds only each key's SHA-256, so the key is
//! hashed and the hash compared with every partner's in constant time, with no early exit: the
//! time taken says nothing about which partner matched or how much of a hash did. A key that is
//! no partner's is refused outright ([`Denied`]) rather than served the public variant, so a
//! partner whose key was rotated learns it at once instead of silently syndicating summaries.
//!
//! These are pure functions of the request's parts, shared by the poll fast path and the axum
//! path, so both decide identically. Nothing here logs, and nothing returns the key. One parser
//! reads `Authorization` ([`credentials`]) for partner keys and API tokens alike.
//!
//! Failed logins are remembered per client network ([`LoginThrottle`]): after
//! [`MAX_FAILURES`] wrong tokens within [`FAILURE_WINDOW`], a network is refused without its
//! token being looked at until the window ends. The table holds [`MAX_NETWORKS`] networks at
//! most (an IPv4 address, or an IPv6 /64: one host usually has a whole /64), whatever the
//! traffic; past that the oldest entry makes room. So a flood of addresses costs a fixed amount
//! of memory and cycles the table (each of its addresses still gets only its few guesses per
//! window); what protects the token from guessing is its length (16 characters at least).

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::Partner;

/// Which variant of a feed a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    Public,
    /// The partner at this index of `Config::partners`.
    Partner(u16),
}

/// The request presented a key that is no partner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied;

/// The one line a refused key gets (403, plain text).
pub const DENIED_TEXT: &str = "This key is not valid here. Public feeds need no key; a partner should ask the newsroom for its current key.";

/// The key a request presents, if any: `key` in the query (percent-decoded), else a Bearer token.
/// Any other `Authorization` scheme is not a partner key and is ignored.
pub fn presented_key<'a>(
    query: Option<&'a str>,
    authorization: Option<&'a [u8]>,
) -> Option<std::borrow::Cow<'a, [u8]>> {
    if let Some(q) = query
        && memchr::memmem::find(q.as_bytes(), b"key=").is_some()
        && let Some((_, v)) = url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "key")
    {
        return Some(match v {
            std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
        });
    }
    match credentials(authorization?)? {
        Credentials::Bearer(token) => Some(std::borrow::Cow::Borrowed(token)),
        Credentials::Basic(_) => None,
    }
}

/// What an `Authorization` header presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// `Bearer TOKEN`.
    Bearer(&'a [u8]),
    /// `Basic BASE64`, still encoded.
    Basic(&'a [u8]),
}

/// Reads `Authorization`: the scheme is matched without regard to case (RFC 9110 §11.1), the
/// credentials are what follows it, surrounding whitespace trimmed. The one parser of that
/// header, for partner keys and API tokens alike. `None` for another scheme or an empty value.
pub fn credentials(authorization: &[u8]) -> Option<Credentials<'_>> {
    let auth = authorization.trim_ascii();
    let space = auth.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = (&auth[..space], auth[space..].trim_ascii());
    if rest.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case(b"bearer") {
        Some(Credentials::Bearer(rest))
    } else if scheme.eq_ignore_ascii_case(b"basic") {
        Some(Credentials::Basic(rest))
    } else {
        None
    }
}

/// Decides the variant: public without a key, the partner's with a valid one, [`Denied`] with
/// any other key.
pub fn resolve(
    partners: &[Partner],
    query: Option<&str>,
    authorization: Option<&[u8]>,
) -> Result<Access, Denied> {
    match presented_key(query, authorization) {
        None => Ok(Access::Public),
        Some(key) => partner_for_key(partners, &key)
            .map(Access::Partner)
            .ok_or(Denied),
    }
}

/// The index of the partner whose `key_sha256` is the SHA-256 of `key`, compared in constant
/// time against every partner.
pub fn partner_for_key(partners: &[Partner], key: &[u8]) -> Option<u16> {
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&Sha256::digest(key));
    let mut found = subtle::Choice::from(0u8);
    let mut index = 0u16;
    for (i, p) in partners.iter().enumerate() {
        let same = p.key_sha256.ct_eq(&digest);
        index.conditional_assign(&(i as u16), same);
        found |= same;
    }
    bool::from(found).then_some(index)
}

/// Whether `presented` is one of the API `tokens`, compared in constant time against each of
/// them without stopping at a match.
pub fn token_matches(tokens: &[String], presented: &[u8]) -> bool {
    let mut ok = subtle::Choice::from(0u8);
    for t in tokens {
        ok |= t.as_bytes().ct_eq(presented);
    }
    bool::from(ok)
}

/// The API token a request presents: `Authorization: Bearer TOKEN`, or the password of HTTP
/// Basic (any user name), so a browser's password prompt can open a token-protected page.
pub fn presented_token(authorization: Option<&[u8]>) -> Option<std::borrow::Cow<'_, [u8]>> {
    use base64::Engine;
    match credentials(authorization?)? {
        Credentials::Bearer(token) => Some(std::borrow::Cow::Borrowed(token)),
        Credentials::Basic(encoded) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            let colon = decoded.iter().position(|&b| b == b':')?;
            Some(std::borrow::Cow::Owned(decoded[colon + 1..].to_vec()))
        }
    }
}

/// Wrong tokens a network may present within [`FAILURE_WINDOW`] before it is refused.
pub const MAX_FAILURES: u32 = 5;
/// How long failures are remembered, from a network's first one.
pub const FAILURE_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);
/// Networks remembered at most (about 100 bytes each).
pub const MAX_NETWORKS: usize = 4096;

/// Where failures are counted: an IPv4 address, or the /64 of an IPv6 one.
fn network(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    since: std::time::Instant,
}

/// What a failed login did to its network's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// The first failure of a window (worth a log line).
    First,
    /// A later failure, still under the limit.
    Again,
    /// The failure that reached the limit: the network is refused from now on.
    Limited,
}

/// Failed logins per client network, in bounded space (see the module documentation). Times are
/// passed in, so the window is tested without waiting.
#[derive(Debug)]
pub struct LoginThrottle {
    inner: std::sync::Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    entries: std::collections::HashMap<IpAddr, Failures>,
    /// Networks in the order their window began, to find the oldest; a record whose `since`
    /// no longer matches its entry is stale and skipped.
    order: std::collections::VecDeque<(IpAddr, std::time::Instant)>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            inner: std::sync::Mutex::new(Table::default()),
        }
    }
}

impl LoginThrottle {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)` when `addr`'s network has used up its failures: refuse it for `wait`.
    pub fn check(&self, addr: IpAddr, now: std::time::Instant) -> Result<(), std::time::Duration> {
        match self.table().entries.get(&network(addr)) {
            Some(f) if f.count >= MAX_FAILURES => {
                let end = f.since + FAILURE_WINDOW;
                match end.checked_duration_since(now) {
                    Some(wait) if !wait.is_zero() => Err(wait),
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// Records a wrong token from `addr`.
    pub fn failed(&self, addr: IpAddr, now: std::time::Instant) -> Failed {
        let net = network(addr);
        let mut t = self.table();
        if let Some(f) = t.entries.get_mut(&net)
            && now.saturating_duration_since(f.since) < FAILURE_WINDOW
        {
            f.count = f.count.saturating_add(1);
            return if f.count == MAX_FAILURES {
                Failed::Limited
            } else {
                Failed::Again
            };
        }
        // A new window for this network: make room first.
        if !t.entries.contains_key(&net) {
            while t.entries.len() >= MAX_NETWORKS {
                let Some((old, since)) = t.order.pop_front() else {
                    break;
                };
                if t.entries.get(&old).is_some_and(|f| f.since == since) {
                    t.entries.remove(&old);
                }
            }
        }
        t.entries.insert(
            net,
            Failures {
                count: 1,
                since: now,
            },
        );
        t.order.push_back((net, now));
        // Windows that restarted leave stale records behind: drop them before they outnumber
        // the entries.
        if t.order.len() > 2 * MAX_NETWORKS {
            let Table { entries, order } = &mut *t;
            order.retain(|(n, since)| entries.get(n).is_some_and(|f| f.since == *since));
        }
        Failed::First
    }

    /// Networks remembered now (tests, metrics).
    pub fn len(&self) -> usize {
        self.table().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A new partner key: 32 random bytes from the operating system, URL-safe base64 (43 characters
/// that need no escaping in `?key=`).
pub fn new_partner_key() -> String {
    use base64::Engine;
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("the operating system's random source is readable");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The SHA-256 of a key as 64 lower-case hex digits, as `key_sha256` takes it.
pub fn key_sha256_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The client's address: the peer's, unless the peer is a trusted proxy, in which case the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left
/// were written by the client and prove nothing). IPv4-mapped IPv6 addresses count as IPv4.
pub fn client_address(
    peer: IpAddr,
    forwarded_for: Option<&[u8]>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |a: &IpAddr| trusted.iter().any(|n| n.contains(a));
    if trusted.is_empty() || !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for.and_then(|h| std::str::from_utf8(h).ok()) else {
        return peer;
    };
    let mut nearest = peer;
    for hop in header.rsplit(',') {
        let Some(addr) = parse_hop(hop.trim()) else {
            // A malformed entry: nothing further left can be trusted either.
            return nearest;
        };
        if !is_trusted(&addr) {
            return addr;
        }
        nearest = addr;
    }
    nearest
}

/// One `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(a) = hop.parse::<IpAddr>() {
        return Some(a.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| s.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partners() -> Vec<Partner> {
        ["baomoi-key-0123456789", "vnexpress-key-987654321"]
            .iter()
            .zip(["baomoi", "vnexpress"])
            .map(|(key, id)| Partner {
                id: id.into(),
                name: id.into(),
                key_sha256: crate::config::parse_sha256_hex(&key_sha256_hex(key)).unwrap(),
            })
            .collect()
    }

    #[test]
    fn keys_from_the_query_or_a_bearer_token() {
        let p = partners();
        assert_eq!(resolve(&p, None, None), Ok(Access::Public));
        assert_eq!(
            resolve(&p, Some("page=2&utm_source=x"), None),
            Ok(Access::Public)
        );
        assert_eq!(
            resolve(&p, Some("page=2&key=vnexpress-key-987654321"), None),
            Ok(Access::Partner(1))
        );
        assert_eq!(
            resolve(&p, None, Some(b"Bearer baomoi-key-0123456789")),
            Ok(Access::Partner(0))
        );
        assert_eq!(
            resolve(&p, None, Some(b"bearer  baomoi-key-0123456789 ")),
            Ok(Access::Partner(0))
        );
        // Percent-encoded keys are decoded, as any query value is.
        assert_eq!(
            resolve(&p, Some("key=baomoi%2Dkey-0123456789"), None),
            Ok(Access::Partner(0))
        );
        assert_eq!(
            resolve(&p, Some("key=wrong"), None),
            Err(Denied),
            "a wrong key is refused, not served the public variant"
        );
        assert_eq!(resolve(&p, Some("key="), None), Err(Denied));
        assert_eq!(resolve(&p, None, Some(b"Bearer nope")), Err(Denied));
        assert_eq!(
            resolve(&p, None, Some(b"Basic dXNlcjpwYXNz")),
            Ok(Access::Public),
            "other schemes are not partner keys"
        );
        assert_eq!(resolve(&[], Some("key=anything"), None), Err(Denied));
        assert_eq!(
            resolve(&p, Some("monkey=baomoi-key-0123456789"), None),
            Ok(Access::Public),
            "only the parameter named key"
        );
    }

    #[test]
    fn api_tokens_as_bearer_or_basic_password() {
        let tokens = vec!["token-0123456789abcdef".to_string()];
        let basic = |user_pass: &str| {
            use base64::Engine;
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(user_pass)
            )
        };
        let ok = |h: &str| {
            presented_token(Some(h.as_bytes())).is_some_and(|t| token_matches(&tokens, &t))
        };
        assert!(ok("bearer   token-0123456789abcdef  "));
        assert!(ok("BEARER token-0123456789abcdef"));
        assert!(!ok("Bearer"));
        assert!(!ok("Bearertoken-0123456789abcdef"));
        assert!(ok("Bearer token-0123456789abcdef"));
        assert!(ok(&basic("newsroom:token-0123456789abcdef")));
        assert!(ok(&basic(":token-0123456789abcdef")));
        assert!(!ok(&basic("token-0123456789abcdef:")));
        assert!(!ok("Bearer token-0123456789abcdeX"));
        assert!(!ok("Basic !!!"));
        assert!(!ok("Digest x"));
        assert!(!token_matches(&[], b""));
    }

    #[test]
    fn one_parser_for_every_authorization_header() {
        assert_eq!(
            credentials(b"Bearer abc"),
            Some(Credentials::Bearer(b"abc"))
        );
        assert_eq!(
            credentials(b" bEaReR  abc "),
            Some(Credentials::Bearer(b"abc"))
        );
        assert_eq!(
            credentials(b"Basic eDp5"),
            Some(Credentials::Basic(b"eDp5"))
        );
        for none in [&b"Bearer"[..], b"Bearer ", b"Digest x", b"", b"abc"] {
            assert_eq!(
                credentials(none),
                None,
                "{:?}",
                String::from_utf8_lossy(none)
            );
        }
        // Partner keys and API tokens read it the same way.
        assert_eq!(
            presented_key(None, Some(b"bearer  k ")).as_deref(),
            Some(&b"k"[..])
        );
        assert_eq!(
            presented_token(Some(b"bearer  k ")).as_deref(),
            Some(&b"k"[..])
        );
    }

    #[test]
    fn failures_are_limited_per_network_and_window() {
        let t = LoginThrottle::default();
        let t0 = std::time::Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(t.failed(a, t0), Failed::First);
        for _ in 2..MAX_FAILURES {
            assert_eq!(t.failed(a, t0), Failed::Again);
            assert!(t.check(a, t0).is_ok());
        }
        assert_eq!(t.failed(a, t0), Failed::Limited);
        let later = t0 + std::time::Duration::from_secs(10);
        assert_eq!(
            t.check(a, later),
            Err(FAILURE_WINDOW - std::time::Duration::from_secs(10))
        );
        assert!(
            t.check(b, later).is_ok(),
            "another address is not held back"
        );
        // The window ends: the network may try again, and its count starts over.
        let after = t0 + FAILURE_WINDOW;
        assert!(t.check(a, after).is_ok());
        assert_eq!(t.failed(a, after), Failed::First);
        assert!(t.check(a, after).is_ok());
        // One IPv6 host has a /64: all of it is one network.
        let v6 = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..MAX_FAILURES {
            t.failed(v6(&format!("2001:db8:1:2::{i:x}")), t0);
        }
        assert!(t.check(v6("2001:db8:1:2:ffff::1"), later).is_err());
        assert!(t.check(v6("2001:db8:1:3::1"), later).is_ok());
        // IPv4-mapped is IPv4.
        for _ in 0..MAX_FAILURES {
            t.failed(v6("::ffff:192.0.2.9"), t0);
        }
        assert!(t.check(v6("192.0.2.9"), later).is_err());
    }

    #[test]
    fn a_flood_of_networks_stays_within_the_bound() {
        let t = LoginThrottle::default();
        let t0 = std::time::Instant::now();
        // Ten times the bound, over several windows, each address failing twice.
        for i in 0..(10 * MAX_NETWORKS as u32) {
            let now = t0 + std::time::Duration::from_millis(u64::from(i) * 50);
            let addr = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            t.failed(addr, now);
            t.failed(addr, now);
            assert!(t.len() <= MAX_NETWORKS);
            let table = t.table();
            assert!(table.order.len() <= 2 * MAX_NETWORKS + 1);
        }
        assert_eq!(t.len(), MAX_NETWORKS);
        // The newest are remembered, and a limited one stays limited through the flood.
        let last = t0 + std::time::Duration::from_secs(3000);
        let hammer: IpAddr = "198.51.100.7".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            t.failed(hammer, last);
        }
        for i in 0..(MAX_NETWORKS as u32 / 2) {
            t.failed(IpAddr::V4(std::net::Ipv4Addr::from(0x0b00_0000 + i)), last);
        }
        assert!(t.check(hammer, last).is_err());
        assert_eq!(t.len(), MAX_NETWORKS);
    }

    #[test]
    fn sha256_hex_matches_the_published_vector() {
        assert_eq!(
            key_sha256_hex("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let nets: Vec<ipnet::IpNet> =
            vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let xff = Some(&b"203.0.113.9, 198.51.100.7, 10.1.2.3"[..]);
        // Not from a proxy: the header is the client's own word and is ignored.
        assert_eq!(client_address(ip("192.0.2.1"), xff, &nets), ip("192.0.2.1"));
        // From a proxy: the rightmost entry that is not a proxy.
        assert_eq!(
            client_address(ip("10.0.0.1"), xff, &nets),
            ip("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("::1"), Some(b"[2001:db8::1]:443"), &nets),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_address(ip("10.0.0.1"), Some(b"garbage"), &nets),
            ip("10.0.0.1")
        );
        assert_eq!(client_address(ip("10.0.0.1"), None, &nets), ip("10.0.0.1"));
        // No trusted proxies configured: always the peer.
        assert_eq!(client_address(ip("10.0.0.1"), xff, &[]), ip("10.0.0.1"));
        // An IPv4-mapped peer is the IPv4 address.
        assert_eq!(
            client_address(ip("::ffff:192.0.2.1"), None, &nets),
            ip("192.0.2.1")
        );
    }
}
