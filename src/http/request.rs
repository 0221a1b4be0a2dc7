//! What a request says about its client, read the same way on both HTTP paths: the address a
//! render slot and readership charge it to (the connection's, or the rightmost untrusted
//! `X-Forwarded-For` entry behind a trusted proxy; a claim otherwise ignored).

use std::net::IpAddr;

use crate::app::App;
use crate::slots::ClientKey;

/// Whose deep pages a request's are ([`crate::slots`]): the client's address as the peer, or a
/// trusted proxy, gives it.
pub fn client_key(app: &App, peer: Option<IpAddr>, forwarded_for: Option<&[u8]>) -> ClientKey {
    ClientKey::of(peer.map(|p| {
        crate::access::client_address(p, forwarded_for, &app.config().access.trusted_proxies)
    }))
}
