//! Which network addresses bantin may send a request to on a stranger's behalf.
//!
//! The WebSub hub makes requests to URLs anyone can hand it (subscribers' callbacks). Left
//! unguarded, that makes it a tool for reaching what only the server can reach: its own loopback
//! services, the private network behind it, a cloud metadata endpoint on a link-local address.
//! So every such request goes only to public unicast addresses, unless the operator allows
//! private ones (`[websub] allow_private_callbacks`, for tests and closed networks).
//!
//! Two checks, because a host name can change its answer between them (DNS rebinding):
//! [`classify`] refuses an address literal when a URL is accepted, and [`PublicOnly`], the
//! client's DNS resolver, drops every non-public answer at connection time, so the address
//! connected to is always one that was checked. The classifier is a pure function of the address;
//! nothing here knows about WebSub.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Why an address is not a public unicast address, or `None` when it is.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// Whether a request may go to `ip`.
pub fn is_public(ip: IpAddr) -> bool {
    classify(ip).is_none()
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified (\"this network\")")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if a == 100 && (64..128).contains(&b) {
        Some("private (carrier-grade NAT)")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if a >= 240 {
        Some("reserved")
    } else if (a, b, c) == (192, 0, 0) {
        Some("reserved (IETF protocol assignments)")
    } else if ip.is_documentation() {
        Some("documentation")
    } else if a == 198 && (b == 18 || b == 19) {
        Some("reserved (benchmarking)")
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Addresses that carry an IPv4 address are judged by it: a mapped ::ffff:127.0.0.1 reaches
    // the loopback as surely as 127.0.0.1 does, and a NAT64 or 6to4 gateway forwards to the
    // embedded address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return classify_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return classify_v4(embedded_v4(s[1], s[2]));
    }
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if s[0] & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if s[0] & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if s[0] & 0xffc0 == 0xfec0 {
        Some("private (site-local)")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        Some("documentation")
    } else if s[..6] == [0, 0, 0, 0, 0, 0] {
        // The deprecated IPv4-compatible form (::a.b.c.d) and the rest of ::/96.
        Some("reserved (IPv4-compatible)")
    } else {
        None
    }
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Why a host cannot be sent a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Every address the host has (or the literal itself) is not public.
    #[error("{host} is a {why} address; only public addresses are allowed")]
    NotPublic { host: String, why: &'static str },
    /// The name did not resolve (in time).
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
}

/// Longest a host name may take to resolve before it is refused.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// The addresses `host` resolves to that a request may go to (every address when
/// `allow_private`); an error when none is left. An address literal is judged as it is.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Refused> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((bare, port))).await
            {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(e)) => {
                    return Err(Refused::Unresolved {
                        host: host.to_string(),
                        reason: e.to_string(),
                    });
                }
                Err(_) => {
                    return Err(Refused::Unresolved {
                        host: host.to_string(),
                        reason: format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs()),
                    });
                }
            }
        }
    };
    filter(host, found, allow_private)
}

/// The allowed addresses of `found`, or why there are none.
pub fn filter(
    host: &str,
    found: Vec<SocketAddr>,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Refused> {
    if allow_private {
        return if found.is_empty() {
            Err(Refused::Unresolved {
                host: host.to_string(),
                reason: "no address".into(),
            })
        } else {
            Ok(found)
        };
    }
    let first_refusal = found.iter().find_map(|a| classify(a.ip()));
    let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
    match (public.is_empty(), first_refusal) {
        (false, _) => Ok(public),
        (true, Some(why)) => Err(Refused::NotPublic {
            host: host.to_string(),
            why,
        }),
        (true, None) => Err(Refused::Unresolved {
            host: host.to_string(),
            reason: "no address".into(),
        }),
    }
}

/// A reqwest DNS resolver that answers only public addresses (all of them when
/// `allow_private`), so a client built with it never connects to a private address by name.
/// Address literals do not go through a resolver: check them with [`classify`] before sending.
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let addrs = resolve(&host, 0, allow_private).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(s: &str) -> Option<&'static str> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "203.113.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
        ] {
            assert_eq!(why(a), None, "{a}");
        }
    }

    #[test]
    fn loopback_private_link_local_and_multicast_are_refused() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private (carrier-grade NAT)"),
            ("169.254.169.254", "link-local"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("0.0.0.0", "unspecified (\"this network\")"),
            ("0.1.2.3", "unspecified (\"this network\")"),
            ("240.0.0.1", "reserved"),
            ("192.0.2.1", "documentation"),
            ("198.18.0.1", "reserved (benchmarking)"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd00::1", "private (unique local)"),
            ("fc12::1", "private (unique local)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
        ];
        for (a, want) in cases {
            assert_eq!(why(a), Some(want), "{a}");
        }
    }

    #[test]
    fn addresses_embedding_ipv4_are_judged_by_it() {
        assert_eq!(why("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(why("::ffff:10.0.0.1"), Some("private"));
        assert_eq!(why("::ffff:8.8.8.8"), None);
        assert_eq!(why("64:ff9b::a9fe:a9fe"), Some("link-local"));
        assert_eq!(why("64:ff9b::808:808"), None);
        assert_eq!(why("2002:7f00:1::1"), Some("loopback"));
        assert_eq!(why("2002:0808:0808::1"), None);
        assert_eq!(why("::127.0.0.1"), Some("reserved (IPv4-compatible)"));
    }

    #[test]
    fn a_name_with_one_public_address_keeps_only_that_one() {
        let found = vec![
            "127.0.0.1:80".parse().unwrap(),
            "8.8.8.8:80".parse().unwrap(),
        ];
        assert_eq!(
            filter("mixed.example", found.clone(), false).unwrap(),
            vec!["8.8.8.8:80".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(filter("mixed.example", found.clone(), true).unwrap(), found);
        assert_eq!(
            filter("lo.example", vec!["127.0.0.1:80".parse().unwrap()], false),
            Err(Refused::NotPublic {
                host: "lo.example".into(),
                why: "loopback"
            })
        );
        assert!(matches!(
            filter("none.example", vec![], true),
            Err(Refused::Unresolved { .. })
        ));
    }

    #[tokio::test]
    async fn literals_and_localhost_are_refused_unless_allowed() {
        assert!(matches!(
            resolve("127.0.0.1", 80, false).await,
            Err(Refused::NotPublic {
                why: "loopback",
                ..
            })
        ));
        assert!(matches!(
            resolve("[::1]", 80, false).await,
            Err(Refused::NotPublic {
                why: "loopback",
                ..
            })
        ));
        assert!(resolve("localhost", 80, false).await.is_err());
        assert_eq!(
            resolve("127.0.0.1", 8080, true).await.unwrap(),
            vec!["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]
        );
    }
}
