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

/// The cache key of a request for a feed page: its path names a feed and its query a valid page;
/// `None` for anything else (pages, the OPML, redirects, 404s), which the router answers.
pub fn feed_key(
    config: &Config,
    path: &str,
    query: Option<&str>,
    content: Content,
) -> Option<CacheKey> {
    let Ok(Target::Feed(feed, format)) = parse_path(config, path) else {
        return None;
    };
    let page = parse_page(query).ok()?;
    Some(CacheKey {
        feed,
        format,
        page,
        content,
    })
}
