//! What every handler of both HTTP paths shares: the per-worker state (the app, the hub, the
//! preformatted `Cache-Control` values, the connection limits) and the peer extension. A leaf
//! below the handlers and the server loop, so that they depend on it and never on each other.

use std::sync::Arc;

use axum::http::HeaderValue;

use super::edge::Limits;
use crate::app::App;

/// Shared state of every handler.
pub struct HttpState {
    pub app: Arc<App>,
    /// The built-in WebSub hub `/websub` answers for.
    pub hub: crate::hub::Hub,
    /// `Cache-Control` for feeds, formatted once from the configuration.
    pub cache_control: HeaderValue,
    /// The same for a partner's answer: `private`, so no shared cache keeps the full text.
    pub private_cache_control: HeaderValue,
    /// Deadlines and bounds of every connection.
    pub limits: Limits,
}

pub type State = Arc<HttpState>;

/// The text of the 400 for an HTTP/1.1 request without exactly one `Host`.
pub const BAD_HOST: &str = "An HTTP/1.1 request needs exactly one Host header.";

/// Builds the handler state. Each worker thread gets its own, so the reference count a request
/// bumps lives in memory only that thread writes.
pub fn state(app: Arc<App>, hub: crate::hub::Hub) -> State {
    let c = &app.config().cache;
    // Leaked once per state (a few dozen bytes): a static header value is shared by every
    // response without a reference count.
    let policy = |scope: &str| -> &'static str {
        Box::leak(
            format!(
                "{scope}, max-age={}, stale-while-revalidate={}, stale-if-error={}",
                c.max_age, c.stale_while_revalidate, c.stale_if_error
            )
            .into_boxed_str(),
        )
    };
    let limits = Limits::from_config(&app.config().server);
    Arc::new(HttpState {
        hub,
        cache_control: HeaderValue::from_static(policy("public")),
        private_cache_control: HeaderValue::from_static(policy("private")),
        app,
        limits,
    })
}

/// The connection's peer address, as a request extension on the axum path.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::IpAddr);
