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
//! path, so both decide identically. Nothing here logs, and nothing returns the key.

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
    let auth = authorization?;
    let scheme = auth.get(..7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| std::borrow::Cow::Borrowed(auth[7..].trim_ascii()))
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
pub fn token_matches(tokens: &[String], presented: &str) -> bool {
    let mut ok = subtle::Choice::from(0u8);
    for t in tokens {
        ok |= t.as_bytes().ct_eq(presented.as_bytes());
    }
    bool::from(ok)
}

/// The API token a request presents: `Authorization: Bearer TOKEN`, or the password of HTTP
/// Basic (any user name), so a browser's password prompt can open a token-protected page.
pub fn presented_token(authorization: Option<&[u8]>) -> Option<String> {
    use base64::Engine;
    let auth = std::str::from_utf8(authorization?).ok()?.trim();
    let (scheme, rest) = auth.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(rest.trim().to_string());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return Some(password.to_string());
    }
    None
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
        assert!(ok("Bearer token-0123456789abcdef"));
        assert!(ok(&basic("newsroom:token-0123456789abcdef")));
        assert!(ok(&basic(":token-0123456789abcdef")));
        assert!(!ok(&basic("token-0123456789abcdef:")));
        assert!(!ok("Bearer token-0123456789abcdeX"));
        assert!(!ok("Basic !!!"));
        assert!(!ok("Digest x"));
        assert!(!token_matches(&[], ""));
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
