//! The API token check, one for every guarded endpoint (the publishing API, `/api/v1/stats`,
//! `/api/v1/sources`, the `/stats` page).
//!
//! The token is read by the one `Authorization` parser ([`crate::access::presented_token`]:
//! `Bearer TOKEN`, or the password of HTTP Basic so a browser's prompt can open `/stats`) and
//! compared in constant time with every configured token. A wrong token is counted in
//! `bantin_auth_failures_total{endpoint}`, logged with the client's address and never the token,
//! and recorded against the client's network ([`crate::access::LoginThrottle`]); a network past
//! its failures is answered `429` with `Retry-After` (counted in
//! `bantin_auth_throttled_total{endpoint}`) before its token is looked at, so guessing gets
//! [`crate::access::MAX_FAILURES`] tries per [`crate::access::FAILURE_WINDOW`] and other
//! networks are not held back. A request without any credentials is not a failure (a browser
//! asks for the password only after a first 401).
//!
//! Every guarded handler takes the one extractor, [`ApiToken`], typed by its [`Guard`]: the check
//! runs before any body is read, and the refusal is shaped once per kind of endpoint (the
//! readership figures are never stored by a cache and ask a browser for the password).

use std::marker::PhantomData;
use std::net::IpAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::HttpError;
use crate::access::Failed;
use crate::app::App;
use crate::metrics::EndpointLabel;

/// Which guarded endpoint is asking, for messages and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The publishing API and `/api/v1/sources`.
    Api,
    /// Readership figures: `/api/v1/stats` and `/stats`.
    Stats,
}

impl Endpoint {
    fn label(self) -> EndpointLabel {
        EndpointLabel {
            endpoint: match self {
                Endpoint::Api => "api",
                Endpoint::Stats => "stats",
            },
        }
    }
}

/// The client's address as the token check counts it: the connection's peer, or behind a
/// trusted proxy the nearest `X-Forwarded-For` hop that is not one ([`crate::access::client_address`]).
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Option<IpAddr>);

impl FromRequestParts<super::state::State> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &super::state::State,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<super::state::Peer>().map(|p| p.0);
        Ok(Caller(peer.map(|p| {
            crate::access::client_address(
                p,
                parts
                    .headers
                    .get("x-forwarded-for")
                    .map(HeaderValue::as_bytes),
                &state.app.config().access.trusted_proxies,
            )
        })))
    }
}

/// What a token-guarded route is, and how its refusals are answered.
pub trait Guard: Send + Sync + 'static {
    const ENDPOINT: Endpoint;
    fn refused(e: HttpError) -> Response {
        e.into_response()
    }
}

/// The publishing API (`/api/v1/articles…`).
pub enum Api {}
impl Guard for Api {
    const ENDPOINT: Endpoint = Endpoint::Api;
}

/// `/api/v1/sources`: the API's token, answered never to be stored.
pub enum Sources {}
impl Guard for Sources {
    const ENDPOINT: Endpoint = Endpoint::Api;
    fn refused(e: HttpError) -> Response {
        super::response::private_no_store(e.into_response())
    }
}

/// The readership figures (`/api/v1/stats`, `/stats`): never stored, and a 401 asks a browser
/// for the token as a password.
pub enum Figures {}
impl Guard for Figures {
    const ENDPOINT: Endpoint = Endpoint::Stats;
    fn refused(e: HttpError) -> Response {
        super::response::private_no_store(challenge(e.into_response()))
    }
}

/// Adds the Basic challenge to a 401, so a browser opening `/stats` prompts for the token.
pub fn challenge(mut r: Response) -> Response {
    if r.status() == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"bantin stats\", charset=\"UTF-8\""),
        );
    }
    r
}

/// Proof that the request presented a configured API token: the one check of every guarded
/// route, as an extractor placed before the body.
pub struct ApiToken<G: Guard>(PhantomData<G>);

impl<G: Guard> FromRequestParts<super::state::State> for ApiToken<G> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &super::state::State,
    ) -> Result<Self, Self::Rejection> {
        let Ok(caller) = Caller::from_request_parts(parts, state).await;
        require_token(&state.app, &parts.headers, caller, G::ENDPOINT).map_err(G::refused)?;
        Ok(ApiToken(PhantomData))
    }
}

/// Checks the request's API token (see the module documentation).
fn require_token(
    app: &App,
    headers: &HeaderMap,
    caller: Caller,
    endpoint: Endpoint,
) -> Result<(), HttpError> {
    let tokens = &app.config().api.tokens;
    if tokens.is_empty() {
        let message = match endpoint {
            Endpoint::Api => {
                "the write API is off: set BANTIN_API_TOKEN or BANTIN_API_TOKEN_FILE to enable it"
            }
            Endpoint::Stats => {
                "readership figures need an API token: set BANTIN_API_TOKEN or BANTIN_API_TOKEN_FILE"
            }
        };
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "api_disabled",
            message,
        ));
    }
    let now = std::time::Instant::now();
    if let Some(addr) = caller.0
        && let Err(wait) = app.logins().check(addr, now)
    {
        app.metrics()
            .auth_throttled
            .get_or_create(&endpoint.label())
            .inc();
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut e = HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            format!("too many wrong tokens from this network; try again in {secs} s"),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    let presented = crate::access::presented_token(
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    );
    match presented {
        Some(t) if crate::access::token_matches(tokens, &t) => Ok(()),
        Some(_) => {
            app.metrics()
                .auth_failures
                .get_or_create(&endpoint.label())
                .inc();
            if let Some(addr) = caller.0 {
                // One line when a network starts failing and one when it is held back: a
                // flood of wrong tokens does not become a flood of log lines.
                match app.logins().failed(addr, now) {
                    Failed::First => tracing::warn!(
                        client = %addr,
                        endpoint = endpoint.label().endpoint,
                        "wrong API token"
                    ),
                    Failed::Limited => tracing::warn!(
                        client = %addr,
                        endpoint = endpoint.label().endpoint,
                        failures = crate::access::MAX_FAILURES,
                        "too many wrong API tokens; refusing this network for a while"
                    ),
                    Failed::Again => {}
                }
            }
            Err(HttpError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "the token is not valid",
            ))
        }
        None => Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            match endpoint {
                Endpoint::Api => "missing `Authorization: Bearer <token>`",
                Endpoint::Stats => {
                    "missing `Authorization: Bearer <token>` (or the token as the password of HTTP Basic)"
                }
            },
        )),
    }
}
