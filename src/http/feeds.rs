//! Feed routes: path → feed, conditional GET, encoding choice, headers.
//!
//! The axum path: what the fast connection loop (`http::fast`, the hot path) does not answer
//! itself — misses, pages, partners, previews, the OPML — comes here. A cached answer is still a
//! lookup, a header comparison and a clone of a reference-counted body; every header value it
//! sends was built when the feed was rendered.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;

use crate::access::Access;
use crate::cache::{CacheKey, Source};

use super::request::client_key;
use super::response::{feed_error, feed_not_found, represent_entry, text_response};
pub use crate::routes::{Target, parse_page, parse_path};

/// Answers a cached feed hit from this thread's copy, without a task or an await; `None` for
/// anything else (a miss, a page, an error, a refused key), which then takes the full path.
pub fn hot(
    state: &super::state::HttpState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let app = &state.app;
    let target = super::request::FeedTarget::parse(app.config(), uri.path(), uri.query())?;
    let access = access(app, uri, headers).ok()?;
    let key = target.key(app.content_for(access));
    let entry = app.cache().hot(&key)?;
    let resp = represent_entry(
        &entry,
        method,
        headers,
        cache_control(state, access),
        app.metrics(),
    );
    app.metrics().cache_hits.inc();
    count(app, uri.path(), headers, &resp, peer, access);
    Some(resp)
}

/// Public or partner, from `?key=` or a Bearer token.
fn access(
    app: &crate::app::App,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
) -> Result<Access, crate::access::Denied> {
    crate::access::resolve(
        &app.config().partners,
        uri.query(),
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    )
}

fn cache_control(state: &super::state::HttpState, access: Access) -> &HeaderValue {
    match access {
        Access::Public => &state.cache_control,
        Access::Partner(_) => &state.private_cache_control,
    }
}

/// Counts a feed answer (200 or 304) for readership.
fn count(
    app: &crate::app::App,
    path: &str,
    headers: &HeaderMap,
    resp: &Response,
    peer: Option<std::net::IpAddr>,
    access: Access,
) {
    use axum::body::HttpBody;
    // Only a canonical path reaches here (`paths`), so readership never sees two spellings.
    debug_assert!(parse_path(app.config(), path).is_ok(), "{path}");
    let Some(peer) = peer else { return };
    let get = |h: header::HeaderName| headers.get(h).map(HeaderValue::as_bytes);
    app.readership().count(&crate::readership::Poll {
        path,
        not_modified: resp.status() == StatusCode::NOT_MODIFIED,
        conditional: headers.contains_key(header::IF_NONE_MATCH)
            || headers.contains_key(header::IF_MODIFIED_SINCE),
        bytes: resp.body().size_hint().exact().unwrap_or(0),
        peer,
        forwarded_for: get(header::HeaderName::from_static("x-forwarded-for")),
        user_agent: get(header::USER_AGENT),
        partner: match access {
            Access::Partner(p) => Some(p),
            Access::Public => None,
        },
    });
}

/// The methods every feed, page and the OPML answer.
const METHODS: &str = "GET, HEAD, OPTIONS";

/// `OPTIONS` on a feed, the OPML or a page: a CORS preflight (Fetch standard §3.2.2) for a
/// browser-based reader that sends `If-None-Match` or `If-Modified-Since` (which are not
/// CORS-safelisted, so the browser asks first), and the `Allow` list for anyone else. Nothing is
/// read or rendered: the answer is the same for every path that names a target, and the
/// browser keeps it for `Access-Control-Max-Age` (a day; browsers cap it lower themselves).
pub fn cors_preflight() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    h.insert(header::ALLOW, HeaderValue::from_static(METHODS));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    // `Authorization` must be named (a `*` would not cover it): a partner's reader may send
    // its key as a Bearer token. `Cache-Control` is what readers send to ask for a fresh copy.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("If-None-Match, If-Modified-Since, Cache-Control, Authorization"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    r
}

/// A non-canonical spelling of a target: `301` to its one path (built from the parsed target by
/// [`crate::routes::canonical_location`]), the query kept so a partner's `key` and a `page` still
/// apply. Cacheable like any permanent redirect; never counted.
fn moved(path: String, query: Option<&str>) -> Response {
    let location = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let Ok(value) = HeaderValue::from_str(&location) else {
        return text_response(StatusCode::NOT_FOUND, "No feed at this path.".into());
    };
    let mut r = text_response(
        StatusCode::MOVED_PERMANENTLY,
        format!("This feed's one address is {location}"),
    );
    r.headers_mut().insert(header::LOCATION, value);
    r
}

/// The answer to a key that is no partner's: 403, one plain line, nothing of the feed. Counted
/// as a failed authentication (`endpoint="feeds"`); not logged, as a poller with an old key
/// would fill the log.
pub fn denied(app: &crate::app::App) -> Response {
    app.metrics()
        .auth_failures
        .get_or_create(&crate::metrics::EndpointLabel { endpoint: "feeds" })
        .inc();
    text_response(
        StatusCode::FORBIDDEN,
        crate::access::DENIED_TEXT.to_string(),
    )
}

/// The fallback handler: feeds, OPML and the HTML pages.
pub async fn serve(State(state): State<super::state::State>, req: Request) -> Response {
    // Taken apart rather than extracted: a `HeaderMap` extractor would clone the headers.
    let (parts, _) = req.into_parts();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let peer = parts.extensions.get::<super::state::Peer>().map(|p| p.0);
    let app = &state.app;
    let preflight = method == Method::OPTIONS;
    if method != Method::GET && method != Method::HEAD && !preflight {
        let mut r = text_response(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here; feeds answer GET, HEAD and OPTIONS."),
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(METHODS));
        return r;
    }
    let client = || {
        client_key(
            app,
            peer,
            headers
                .get(header::HeaderName::from_static("x-forwarded-for"))
                .map(HeaderValue::as_bytes),
        )
    };
    let target = match parse_path(app.config(), uri.path()) {
        Ok(t) => t,
        Err(msg) => {
            return match crate::routes::canonical_location(app.config(), uri.path()) {
                Some(path) => moved(path, uri.query()),
                None => text_response(StatusCode::NOT_FOUND, msg),
            };
        }
    };
    if preflight {
        return cors_preflight();
    }
    let page = match parse_page(uri.query()) {
        Ok(p) => p,
        Err(msg) => return text_response(StatusCode::NOT_FOUND, msg),
    };
    match target {
        Target::Feed(feed, format) => {
            let Ok(access) = access(app, uri, headers) else {
                return denied(app);
            };
            let key = CacheKey {
                feed,
                format,
                page,
                content: app.content_for(access),
            };
            let seen = app.cache().generation();
            match app.feed_from(&key, client()).await {
                Ok((entry, source)) => {
                    if source != Source::Stale {
                        app.cache().keep_hot(&key, &entry, seen);
                    }
                    let resp = represent_entry(
                        &entry,
                        method,
                        headers,
                        cache_control(&state, access),
                        app.metrics(),
                    );
                    count(app, uri.path(), headers, &resp, peer, access);
                    resp
                }
                Err(e) => feed_not_found(e, &key.feed),
            }
        }
        Target::Opml => match access(app, uri, headers) {
            Err(_) => denied(app),
            Ok(Access::Public) => match app.opml().await {
                Ok((entry, _)) => {
                    represent_entry(&entry, method, headers, &state.cache_control, app.metrics())
                }
                Err(e) => feed_error(e),
            },
            Ok(Access::Partner(partner)) => {
                let key = crate::access::presented_key(
                    uri.query(),
                    headers
                        .get(header::AUTHORIZATION)
                        .map(HeaderValue::as_bytes),
                )
                .map(|k| String::from_utf8_lossy(&k).into_owned())
                .unwrap_or_default();
                match app.partner_opml(partner, &key).await {
                    Ok((entry, _)) => represent_entry(
                        &entry,
                        method,
                        headers,
                        &state.private_cache_control,
                        app.metrics(),
                    ),
                    Err(e) => feed_error(e),
                }
            }
        },
        Target::Home => super::pages::home(&state, method, headers).await,
        Target::Preview(feed) => {
            super::pages::preview(&state, &feed, page, client(), method, headers).await
        }
    }
}
