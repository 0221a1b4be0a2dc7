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
//! 2. **Public addresses only**, judged on the *resolved* addresses, not on names, by
//!    [`crate::netguard`] (the classifier and the filtering resolver the WebSub hub uses too):
//!    an IP-literal host is classified before the request; a name is resolved by
//!    [`netguard::PublicOnly`], the strict client's resolver, which hands the connector only
//!    public addresses, so a rebinding name gains nothing.
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

use std::net::{IpAddr, SocketAddr};

use url::{Host, Url};

use crate::netguard::{self, NonPublic, literal_ip, non_public};

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
            Refusal::NonPublic { host, ip, why } => write!(
                f,
                "{}; only the source's own configured origin may be one (or set [upstream] allow_private = true)",
                NonPublic {
                    host: host.clone(),
                    ip: *ip,
                    why,
                }
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// Which client a permitted request goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The strict client: names resolve to public addresses only ([`crate::netguard::PublicOnly`]).
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

impl From<NonPublic> for Refusal {
    fn from(NonPublic { host, ip, why }: NonPublic) -> Refusal {
        Refusal::NonPublic { host, ip, why }
    }
}

/// The refusal behind a reqwest error, when the filtering resolver is why it failed.
pub fn refusal_in(e: &reqwest::Error) -> Option<Refusal> {
    netguard::non_public_in(e).map(Refusal::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
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
