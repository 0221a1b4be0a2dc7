//! Which network addresses bantin may send a request to when someone else chose the URL: an
//! upstream's redirect ([`crate::sources::address`]) or a WebSub subscriber's callback
//! ([`crate::hub`]).
//!
//! Left unguarded, either makes bantin a tool for reaching what only the server can reach: its
//! own loopback services, the private network behind it, a cloud metadata endpoint on a
//! link-local address. So such requests go only to public unicast addresses, unless the
//! operator allows private ones (`[upstream] allow_private`, `[websub] allow_private_callbacks`).
//!
//! Judged on *addresses*, never on names, in two places: an IP-literal host is classified before
//! the request ([`non_public`]); a name is resolved by [`PublicOnly`], the strict clients'
//! reqwest resolver, which hands the connector only public addresses. Filtering inside the
//! resolver is what defeats DNS rebinding: the addresses checked are the addresses connected
//! to, with no second lookup in between. [`resolve`] is the same judgement ahead of time, for
//! refusing a subscription with a reason while the subscriber still waits for an answer.
//!
//! Non-public is loopback, RFC 1918, CGNAT `100.64/10`, link-local, ULA `fc00::/7`, multicast,
//! unspecified, broadcast, documentation and benchmarking ranges, other reserved space, and IPv6
//! forms that embed one of these IPv4 addresses (IPv4-mapped, NAT64, 6to4, IPv4-compatible).
//! The classifier is a pure function of the address (every range unit-tested); nothing here
//! knows about sources or WebSub, so both import it and it imports nothing of bantin's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why an address is not public, or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

/// IPv4 special-purpose ranges (IANA registry) that no public service lives on.
const V4: &[(u32, u8, &str)] = &[
    (0x0000_0000, 8, "unspecified (0.0.0.0/8)"),
    (0x0a00_0000, 8, "private (RFC 1918)"),
    (
        0x6440_0000,
        10,
        "shared address space (CGNAT 100.64.0.0/10)",
    ),
    (0x7f00_0000, 8, "loopback"),
    (0xa9fe_0000, 16, "link-local"),
    (0xac10_0000, 12, "private (RFC 1918)"),
    (0xc000_0000, 24, "IETF protocol assignments (192.0.0.0/24)"),
    (0xc000_0200, 24, "documentation (TEST-NET-1)"),
    (0xc0a8_0000, 16, "private (RFC 1918)"),
    (0xc612_0000, 15, "benchmarking (198.18.0.0/15)"),
    (0xc633_6400, 24, "documentation (TEST-NET-2)"),
    (0xcb00_7100, 24, "documentation (TEST-NET-3)"),
    (0xe000_0000, 4, "multicast"),
    (0xf000_0000, 4, "reserved (240.0.0.0/4, broadcast)"),
];

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    V4.iter()
        .find(|(net, len, _)| bits >> (32 - len) == net >> (32 - len))
        .map(|(_, _, why)| *why)
}

/// IPv6 special-purpose ranges; the ones that embed an IPv4 address are judged by it instead.
const V6: &[(u128, u8, &str)] = &[
    (0, 128, "unspecified (::)"),
    (1, 128, "loopback"),
    (0, 96, "IPv4-compatible (::/96)"),
    (
        0x0064_ff9b_0001 << 80,
        48,
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    (0x0100 << 112, 64, "discard-only (100::/64)"),
    (0x2001_0db8 << 96, 32, "documentation (2001:db8::/32)"),
    (0x2001 << 112, 23, "IETF protocol assignments (2001::/23)"),
    (0x3fff << 112, 20, "documentation (3fff::/20)"),
    (0xfc00 << 112, 7, "unique local (fc00::/7)"),
    (0xfe80 << 112, 10, "link-local"),
    (0xfec0 << 112, 10, "site-local (fec0::/10)"),
    (0xff00 << 112, 8, "multicast"),
];

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    // ::ffff:a.b.c.d (IPv4-mapped) and 64:ff9b::a.b.c.d (NAT64) reach that IPv4 address.
    if bits >> 32 == 0xffff || bits >> 32 == 0x0064_ff9b << 64 {
        return non_public_v4(Ipv4Addr::from(bits as u32));
    }
    // 6to4 (2002:aabb:ccdd::/48) tunnels to the IPv4 address in bits 16..48.
    if bits >> 112 == 0x2002 {
        return non_public_v4(Ipv4Addr::from((bits >> 80) as u32));
    }
    V6.iter()
        .find(|(net, len, _)| bits >> (128 - len) == net >> (128 - len))
        .map(|(_, _, why)| *why)
}

/// The address a URL's host is written as, if it is a literal.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

/// A host whose address (a literal, or the first a name resolved to) is not public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonPublic {
    pub host: String,
    pub ip: IpAddr,
    pub why: &'static str,
}

impl std::fmt::Display for NonPublic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let NonPublic { host, ip, why } = self;
        if host.trim_start_matches('[').trim_end_matches(']') == ip.to_string() {
            write!(f, "{host} is a {why} address")
        } else {
            write!(f, "{host} resolves to {ip}, a {why} address")
        }
    }
}

impl std::error::Error for NonPublic {}

/// Keeps the public addresses a name resolved to; refuses the name when none is left, naming
/// the first address dropped. Pure: the resolver's filter, unit-tested without DNS. No address
/// at all is not a refusal (the caller says the name does not resolve).
pub fn keep_public(host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, NonPublic> {
    let first = addrs.first().map(|a| a.ip());
    let public: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| non_public(a.ip()).is_none())
        .collect();
    match first {
        Some(ip) if public.is_empty() => Err(NonPublic {
            host: host.to_string(),
            ip,
            why: non_public(ip).unwrap_or("non-public"),
        }),
        _ => Ok(public),
    }
}

/// Longest a host name may take to resolve before it counts as not resolving.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The system's resolver (`getaddrinfo`, on the blocking pool, as reqwest's default does),
/// within [`RESOLVE_TIMEOUT`].
async fn lookup(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(found) => Ok(found?.collect()),
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs()),
        )),
    }
}

/// Why a host cannot be sent a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Every address the host has (or the literal itself) is not public.
    #[error("{0}")]
    NonPublic(NonPublic),
    /// The name did not resolve (in time).
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

/// The addresses `host` has now that a request may go to (every address when `allow_private`);
/// an error when none is left. An address literal (bracketed or not) is judged as it is.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Refused> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let found = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => lookup(bare, port).await.map_err(|e| Refused::Unresolved {
            host: host.to_string(),
            reason: e.to_string(),
        })?,
    };
    let allowed = if allow_private {
        found
    } else {
        keep_public(host, found).map_err(Refused::NonPublic)?
    };
    if allowed.is_empty() {
        return Err(Refused::Unresolved {
            host: host.to_string(),
            reason: "no address".into(),
        });
    }
    Ok(allowed)
}

/// The strict clients' resolver: the system's, with every non-public address removed before the
/// connector sees it (a [`NonPublic`] error when none is left). Address literals do not go
/// through a resolver: check them with [`non_public`] before sending.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let public = keep_public(&host, lookup(&host, 0).await?)?;
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The refusal behind a reqwest error, when the [`PublicOnly`] resolver is why it failed.
pub fn non_public_in(e: &reqwest::Error) -> Option<NonPublic> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<NonPublic>() {
            return Some(r.clone());
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_classifier_knows_every_non_public_range() {
        for (a, why) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "RFC 1918"),
            ("172.16.0.1", "RFC 1918"),
            ("172.31.255.255", "RFC 1918"),
            ("192.168.1.1", "RFC 1918"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.2.7", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "RFC 1918"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:c0a8:0101::1", "RFC 1918"),
            ("2002:7f00:1::1", "loopback"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
        ] {
            let got = non_public(ip(a));
            assert!(
                got.is_some_and(|g| g.contains(why)),
                "{a}: {got:?}, expected {why}"
            );
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "203.113.130.1",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(non_public(ip(a)), None, "{a} is public");
        }
    }

    #[test]
    fn the_resolver_filter_keeps_only_public_addresses() {
        let sa = |s: &str| SocketAddr::new(ip(s), 0);
        // Mixed answers: the private one is never handed to the connector.
        assert_eq!(
            keep_public("mixed.example", vec![sa("10.0.0.1"), sa("8.8.8.8")]).unwrap(),
            vec![sa("8.8.8.8")]
        );
        let e = keep_public("rebind.example", vec![sa("127.0.0.1"), sa("::1")]).unwrap_err();
        assert_eq!(
            e,
            NonPublic {
                host: "rebind.example".into(),
                ip: ip("127.0.0.1"),
                why: "loopback"
            }
        );
        assert_eq!(
            e.to_string(),
            "rebind.example resolves to 127.0.0.1, a loopback address"
        );
        let literal = keep_public("[::1]", vec![sa("::1")]).unwrap_err();
        assert_eq!(literal.to_string(), "[::1] is a loopback address");
        assert!(keep_public("none.example", vec![]).unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_of_loopback_addresses() {
        // `localhost` resolves without a network, to loopback only.
        let err = match PublicOnly.resolve("localhost".parse().unwrap()).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let refusal = err.downcast_ref::<NonPublic>().expect("a refusal");
        assert_eq!(refusal.why, "loopback", "{refusal:?}");
    }

    #[tokio::test]
    async fn literals_and_localhost_are_refused_ahead_of_time_unless_allowed() {
        for host in ["127.0.0.1", "[::1]", "localhost"] {
            assert!(
                matches!(
                    resolve(host, 80, false).await,
                    Err(Refused::NonPublic(NonPublic {
                        why: "loopback",
                        ..
                    }))
                ),
                "{host}"
            );
        }
        assert_eq!(
            resolve("127.0.0.1", 8080, true).await.unwrap(),
            vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]
        );
    }
}
