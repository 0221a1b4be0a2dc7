//! What a request says about its client, read the same way on both HTTP paths: the address a
//! render slot and readership charge it to (the connection's, or the rightmost untrusted
//! `X-Forwarded-For` entry behind a trusted proxy; a claim otherwise ignored), and the cache key
//! a feed request's path and query name.

use std::net::IpAddr;

use crate::app::App;
use crate::cache::CacheKey;
use crate::config::Config;
use crate::model::Content;
use crate::routes::{Target, parse_page, parse_path};
use crate::slots::ClientKey;

/// Whose deep pages a request's are ([`crate::slots`]): the client's address as the peer, or a
/// trusted proxy, gives it.
pub fn client_key(app: &App, peer: Option<IpAddr>, forwarded_for: Option<&[u8]>) -> ClientKey {
    ClientKey::of(peer.map(|p| {
        crate::access::client_address(p, forwarded_for, &app.config().access.trusted_proxies)
    }))
}

/// One page of one feed in one format, as a request's path and query name it: the cache key but
/// for the content variant, which depends on who asks.
pub struct FeedTarget {
    feed: crate::model::FeedKey,
    format: crate::model::Format,
    page: u32,
}

impl FeedTarget {
    /// The target of a request for a feed page: its path names a feed and its query a valid
    /// page; `None` for anything else (pages, the OPML, redirects, 404s), which the router
    /// answers. Parsed before the access is resolved, so nothing else pays for that.
    pub fn parse(config: &Config, path: &str, query: Option<&str>) -> Option<FeedTarget> {
        let Ok(Target::Feed(feed, format)) = parse_path(config, path) else {
            return None;
        };
        let page = parse_page(query).ok()?;
        Some(FeedTarget { feed, format, page })
    }

    /// The cache key for the variant `content`.
    pub fn key(self, content: Content) -> CacheKey {
        CacheKey {
            feed: self.feed,
            format: self.format,
            page: self.page,
            content,
        }
    }
}
