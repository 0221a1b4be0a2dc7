//! Where an upstream fetch may go: never into the network bantin runs in, and never back to
//! bantin itself, whatever a source's URL or its redirects say.
//!
//! A feed URL is written by an operator, but its redirects are written by whoever runs (or has
//! taken over) the upstream: a `302` to `http://127.0.0.1:9000/admin` would otherwise have bantin
//! fetch a local service and publish its answer in a public feed, and a `301` to one of bantin's
//! own feeds would have it aggregate itself for ever. So every request of a fetch (the first and
//! each redirect hop, followed by hand in [`super::fetch`]) is judged here first, by three rules:
//!
//! 1. **Not bantin.** A target on bantin's own public URL (`public_url`: same host and port, under
//!    its path) or its listen address is refused ([`Refusal::Itself`]), even with
//!    `allow_private`. (Reaching bantin by another name is caught later: items carrying bantin's
//!    own `tag:` guids are never imported, see [`super::mapping`].)
//! 2. **Public addresses only**, judged on the *resolved* addresses, not on names: an IP-literal
//!    host is classified before the request ([`non_public`]); a name is resolved by
//!    [`PublicOnly`], reqwest's resolver for the strict client, which hands the connector only
//!    public addresses. Filtering inside the resolver is what defeats DNS rebinding: the
//!    addresses checked are the addresses connected to, with no second lookup in between.
//!    Non-public is loopback, RFC 1918, CGNAT `100.64/10`, link-local, ULA `fc00::/7`,
//!    multicast, unspecified, broadcast, documentation and benchmarking ranges, other reserved
//!    space, and IPv6 forms that embed one of these IPv4 addresses (IPv4-mapped, NAT64, 6to4).
//! 3. **Except what the operator named.** A source configured *at* a non-public address (an IP
//!    literal such as `http://10.0.0.7/rss`, or `localhost`) may be fetched at exactly that
//!    origin (scheme, host and port) and nowhere else: its `302` to `127.0.0.1` on another port
//!    is refused like anyone's. A configured *name* that resolves to a private address is not
//!    such an exception (a sister site's DNS must not be able to point bantin at its own
//!    network); `[upstream] allow_private = true` lifts rule 2 for every source, for newsrooms
//!    whose sister sites live on an intranet.
//!
//! Requests the exception (or `allow_private`) covers go through a second client whose resolver
//! does not filter; the strict client's connection pool therefore only ever holds connections
//! to public addresses, so a pooled connection cannot smuggle a request past rule 2 either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why an address is not public, or `None` when it is. Pure, so every range is unit-tested.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

/// IPv4 special-purpose ranges (IANA registry) that no upstream feed lives on.
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

/// Why a request of a fetch was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The target is bantin itself (its public URL or its listen address).
    Itself,
    /// The target's host is a non-public address (an IP literal, or what a name resolved to).
    NonPublic {
        host: String,
        ip: IpAddr,
        why: &'static str,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Itself => write!(
                f,
                "points at bantin itself (its public_url or listen address): bantin does not aggregate its own feeds"
            ),
            Refusal::NonPublic { host, ip, why } if host == &ip.to_string() => write!(
                f,
                "{host} is a {why} address; only the source's own configured origin may be one (or set [upstream] allow_private = true)"
            ),
            Refusal::NonPublic { host, ip, why } => write!(
                f,
                "{host} resolves to {ip}, a {why} address; only the source's own configured origin may be one (or set [upstream] allow_private = true)"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Which client a permitted request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The strict client: names resolve to public addresses only ([`PublicOnly`]).
    Public,
    /// The unfiltered client: the source's own non-public origin, or `allow_private`.
    Trusted,
}

/// The rules every request of a fetch passes, built once from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `[upstream] allow_private`.
    pub allow_private: bool,
    /// bantin's own public URL (`public_url`, or the listen address).
    pub public_url: Url,
    /// The address bantin listens on (as bound).
    pub listen: SocketAddr,
}

impl Policy {
    /// Judges one request to `target` of a source configured at `configured`.
    pub fn route(&self, target: &Url, configured: &Url) -> Result<Route, Refusal> {
        if self.is_itself(target) {
            return Err(Refusal::Itself);
        }
        if self.allow_private || (same_origin(target, configured) && names_non_public(configured)) {
            return Ok(Route::Trusted);
        }
        if let Some(ip) = literal_ip(target)
            && let Some(why) = non_public(ip)
        {
            return Err(Refusal::NonPublic {
                host: ip.to_string(),
                ip,
                why,
            });
        }
        Ok(Route::Public)
    }

    /// Whether `target` is bantin: on the public URL's host and port, under its path, or on
    /// the listen address (any loopback address when it listens on all of them).
    pub fn is_itself(&self, target: &Url) -> bool {
        let public = &self.public_url;
        let same_port = target.port_or_known_default() == public.port_or_known_default()
            || (target.port().is_none() && public.port().is_none());
        if host_key(target) == host_key(public)
            && same_port
            && target.path().starts_with(public.path())
        {
            return true;
        }
        if target.port_or_known_default() != Some(self.listen.port()) {
            return false;
        }
        let listen = canonical(self.listen.ip());
        let local = |ip: IpAddr| {
            let ip = canonical(ip);
            ip == listen || (listen.is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
        };
        match literal_ip(target) {
            Some(ip) => local(ip),
            None => is_localhost(target) && (listen.is_loopback() || listen.is_unspecified()),
        }
    }
}

/// Same scheme, host and port.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && host_key(a) == host_key(b)
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whether a configured URL itself names a non-public address: an IP literal of one, or
/// `localhost` (RFC 6761: always loopback).
fn names_non_public(url: &Url) -> bool {
    match literal_ip(url) {
        Some(ip) => non_public(ip).is_some(),
        None => is_localhost(url),
    }
}

fn is_localhost(url: &Url) -> bool {
    matches!(url.host(), Some(Host::Domain(d)) if {
        let d = d.trim_end_matches('.').to_ascii_lowercase();
        d == "localhost" || d.ends_with(".localhost")
    })
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain(_) => None,
    }
}

/// The host compared for origins: lowercase, without a trailing dot, IPv4-mapped IPv6 as IPv4.
fn host_key(url: &Url) -> Option<String> {
    Some(match literal_ip(url) {
        Some(ip) => canonical(ip).to_string(),
        None => url.host_str()?.trim_end_matches('.').to_ascii_lowercase(),
    })
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Keeps the public addresses a name resolved to; refuses the name when none is left, naming
/// the first address dropped. Pure: the resolver's filter, unit-tested without DNS.
pub fn keep_public(host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refusal> {
    let first = addrs.first().map(|a| a.ip());
    let public: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| non_public(a.ip()).is_none())
        .collect();
    match first {
        Some(ip) if public.is_empty() => Err(Refusal::NonPublic {
            host: host.to_string(),
            ip,
            why: non_public(ip).unwrap_or("non-public"),
        }),
        _ => Ok(public),
    }
}

/// The strict client's resolver: the system's (`getaddrinfo`, on the blocking pool, as reqwest's
/// default does), with every non-public address removed before the connector sees it.
#[derive(Debug, Default, Clone, Copy)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public = keep_public(&host, addrs)?;
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The refusal behind a reqwest error, when the resolver is why it failed.
pub fn refusal_in(e: &reqwest::Error) -> Option<Refusal> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(r) = s.downcast_ref::<Refusal>() {
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

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
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
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("192.0.2.7", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "RFC 1918"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:c0a8:0101::1", "RFC 1918"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
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
            Refusal::NonPublic {
                host: "rebind.example".into(),
                ip: ip("127.0.0.1"),
                why: "loopback"
            }
        );
        assert!(
            e.to_string()
                .contains("rebind.example resolves to 127.0.0.1")
        );
        assert!(keep_public("none.example", vec![]).unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_of_loopback_addresses() {
        // `localhost` resolves without a network, to loopback only.
        let err = match PublicOnly.resolve("localhost".parse().unwrap()).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let refusal = err.downcast_ref::<Refusal>().expect("a refusal");
        assert!(
            matches!(
                refusal,
                Refusal::NonPublic {
                    why: "loopback",
                    ..
                }
            ),
            "{refusal:?}"
        );
    }

    fn policy(allow_private: bool) -> Policy {
        Policy {
            allow_private,
            public_url: url("https://feeds.baolongan.example/"),
            listen: "0.0.0.0:8080".parse().unwrap(),
        }
    }

    #[test]
    fn a_non_public_source_may_reach_its_own_origin_only() {
        let p = policy(false);
        let configured = url("http://127.0.0.1:9001/rss.xml");
        assert_eq!(
            p.route(&url("http://127.0.0.1:9001/new.xml"), &configured),
            Ok(Route::Trusted)
        );
        for other in [
            "http://127.0.0.1:9002/admin",
            "https://127.0.0.1:9001/rss.xml",
            "http://[::ffff:127.0.0.1]:9002/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
        ] {
            assert!(
                matches!(
                    p.route(&url(other), &configured),
                    Err(Refusal::NonPublic { .. })
                ),
                "{other}"
            );
        }
        // A public source's hop to a private literal is refused; to a public one, strict.
        let public = url("https://baotayninh.example/rss.xml");
        assert!(p.route(&url("http://192.168.0.1/"), &public).is_err());
        assert_eq!(
            p.route(&url("https://cdn.example/rss.xml"), &public),
            Ok(Route::Public)
        );
        // A configured name is judged by what it resolves to, unless it is localhost.
        let named = url("http://intranet.example/rss.xml");
        assert_eq!(p.route(&named, &named), Ok(Route::Public));
        let local = url("http://localhost:9001/rss.xml");
        assert_eq!(p.route(&local, &local), Ok(Route::Trusted));
        assert_eq!(
            p.route(&url("http://localhost:9002/"), &local),
            Ok(Route::Public),
            "another localhost port goes through the filtering resolver"
        );
        // allow_private lifts the rule for every target.
        assert_eq!(
            policy(true).route(&url("http://127.0.0.1:9002/"), &configured),
            Ok(Route::Trusted)
        );
    }

    #[test]
    fn bantin_itself_is_refused_even_with_allow_private() {
        let p = policy(true);
        let any = url("https://baotayninh.example/rss.xml");
        for me in [
            "https://feeds.baolongan.example/vi/rss.xml",
            "https://FEEDS.baolongan.example./vi/xa-hoi/feed.json",
            "https://feeds.baolongan.example:443/",
            "http://127.0.0.1:8080/vi/rss.xml",
            "http://127.9.9.9:8080/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]:8080/",
            "http://localhost:8080/vi/rss.xml",
        ] {
            assert_eq!(p.route(&url(me), &any), Err(Refusal::Itself), "{me}");
            assert_eq!(p.route(&url(me), &url(me)), Err(Refusal::Itself), "{me}");
        }
        for not_me in [
            "http://127.0.0.1:8081/",
            "https://baolongan.example/vi/rss.xml",
            "https://feeds.baolongan.example:8443/",
        ] {
            assert!(p.route(&url(not_me), &any).is_ok(), "{not_me}");
        }
        // A public URL with a path is bantin only under that path (another service may share
        // the host).
        let p = Policy {
            public_url: url("https://baolongan.example/feeds/"),
            listen: "127.0.0.1:8080".parse().unwrap(),
            allow_private: false,
        };
        assert!(p.is_itself(&url("https://baolongan.example/feeds/vi/rss.xml")));
        assert!(!p.is_itself(&url("https://baolongan.example/rss/old-cms.xml")));
        assert!(
            !p.is_itself(&url("http://10.0.0.5:8080/")),
            "not its listen address"
        );
    }
}
