//! Feed routes: path → feed, conditional GET, encoding choice, headers.
//!
//! This is the hot path. A cached answer is a lookup, a header comparison and a clone of a
//! reference-counted body; every header value it sends was built when the feed was rendered.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::conditional::{Coding, negotiate, not_modified};
use crate::access::Access;
use crate::app::FeedError;
use crate::cache::{CacheKey, Entry, Source};
use crate::render::Representation;
use crate::slots::ClientKey;
use crate::store::StoreError;

pub use crate::routes::{Target, parse_page, parse_path};

/// A plain-text answer for a person reading it (404s that say what exists, 5xx). Such bodies may
/// echo the request path, so browsers are told not to sniff them into HTML.
pub fn text_response(status: StatusCode, text: String) -> Response {
    let mut r = (status, text + "\n").into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// Answers a cached feed hit from this thread's copy, without a task or an await; `None` for
/// anything else (a miss, a page, an error, a refused key), which then takes the full path.
pub fn hot(
    state: &super::HttpState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let Ok(Target::Feed(feed, format)) = parse_path(&state.app.config, uri.path()) else {
        return None;
    };
    let page = parse_page(uri.query()).ok()?;
    let app = &state.app;
    let access = access(app, uri, headers).ok()?;
    let content = app.content_for(access);
    let key = CacheKey {
        feed,
        format,
        page,
        content,
    };
    let entry = app.cache.hot(&key)?;
    let resp = represent_entry(
        &entry,
        method,
        headers,
        cache_control(state, access),
        &app.metrics,
    );
    app.metrics.cache_hits.inc();
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
        &app.config.partners,
        uri.query(),
        headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes),
    )
}

fn cache_control(state: &super::HttpState, access: Access) -> &HeaderValue {
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
    debug_assert!(parse_path(&app.config, path).is_ok(), "{path}");
    let Some(peer) = peer else { return };
    let get = |h: header::HeaderName| headers.get(h).map(HeaderValue::as_bytes);
    app.readership.count(&crate::readership::Poll {
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
    app.metrics
        .auth_failures
        .get_or_create(&crate::metrics::EndpointLabel { endpoint: "feeds" })
        .inc();
    text_response(
        StatusCode::FORBIDDEN,
        crate::access::DENIED_TEXT.to_string(),
    )
}

/// Whose deep pages a request's are ([`crate::slots`]): the client's address as the peer, or a
/// trusted proxy, gives it.
pub fn client_key(
    app: &crate::app::App,
    peer: Option<std::net::IpAddr>,
    forwarded_for: Option<&[u8]>,
) -> ClientKey {
    ClientKey::of(peer.map(|p| {
        crate::access::client_address(p, forwarded_for, &app.config.access.trusted_proxies)
    }))
}

/// The answer to a document that could not be served: 404 with what exists, 503 with
/// `Retry-After` for a deep page refused by the render slots, or the store's failure.
pub fn feed_error(e: FeedError) -> Response {
    match e {
        FeedError::NotFound(msg) => text_response(StatusCode::NOT_FOUND, msg),
        FeedError::Busy => {
            let mut r = text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                crate::app::BUSY_TEXT.to_string(),
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            r
        }
        FeedError::Store(e) => store_failure(e),
    }
}

/// The fallback handler: feeds, OPML and the HTML pages.
pub async fn serve(State(state): State<super::State>, req: Request) -> Response {
    // Taken apart rather than extracted: a `HeaderMap` extractor would clone the headers.
    let (parts, _) = req.into_parts();
    let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
    let peer = parts.extensions.get::<super::Peer>().map(|p| p.0);
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
    let target = match parse_path(&app.config, uri.path()) {
        Ok(t) => t,
        Err(msg) => {
            return match crate::routes::canonical_location(&app.config, uri.path()) {
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
            let seen = app.cache.generation();
            match app.feed_from(&key, client()).await {
                Ok((entry, source)) => {
                    if source != Source::Stale {
                        app.cache.keep_hot(&key, &entry, seen);
                    }
                    let resp = represent_entry(
                        &entry,
                        method,
                        headers,
                        cache_control(&state, access),
                        &app.metrics,
                    );
                    count(app, uri.path(), headers, &resp, peer, access);
                    resp
                }
                Err(e) => feed_error(e),
            }
        }
        Target::Opml => match access(app, uri, headers) {
            Err(_) => denied(app),
            Ok(Access::Public) => match app.opml().await {
                Ok((entry, _)) => {
                    represent_entry(&entry, method, headers, &state.cache_control, &app.metrics)
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
                        &app.metrics,
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

/// The feed could not be rendered and no earlier copy exists: 503 with `Retry-After` when the
/// store is down (pollers come back), 500 otherwise; the text names a request id, never the
/// store's own message (see [`super::error::feed_unavailable`]).
pub fn store_failure(e: StoreError) -> Response {
    let (status, text) = super::error::feed_unavailable(&e);
    let mut r = text_response(status, text);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// What to answer for a representation: decided once from the request's conditional and
/// negotiation headers, then written either as an axum response ([`represent`]) or directly by
/// the fast connection loop (`http::fast`).
pub struct Plan<'a> {
    pub not_modified: bool,
    pub coding: Coding,
    pub body: &'a crate::render::Body,
    /// The ETag to send: the body's own, or on a 304 the other level's tag the client holds (the
    /// validator of the copy it keeps, which is what a cache must see to freshen that copy,
    /// RFC 9111 §4.3.4).
    pub etag: &'a HeaderValue,
}

pub fn plan<'a>(
    rep: &'a Representation,
    coding: Coding,
    inm: Option<&str>,
    ims: Option<&str>,
) -> Plan<'a> {
    let body = rep.body(coding);
    let etag = body.etag.to_str().unwrap_or("");
    let alt = body.alt_etag.as_ref().and_then(|a| a.to_str().ok());
    let not_modified = not_modified(inm, ims, etag, alt, rep.last_modified);
    let held_alt = not_modified
        && inm.is_some_and(|v| !super::conditional::none_match_hits(v, etag))
        && body.alt_etag.is_some();
    Plan {
        not_modified,
        coding,
        body,
        etag: match (&body.alt_etag, held_alt) {
            (Some(alt), true) => alt,
            _ => &body.etag,
        },
    }
}

/// The headers of an answer, in the order they are sent (`Content-Length` aside).
///
/// A 304 carries what RFC 9110 §15.4.5 asks of it (the ETag, `Cache-Control` and `Vary` a 200
/// would have; `Date` is added by the writer) and nothing else: `Last-Modified` is redundant
/// beside an ETag, and a cache keeps the stored response's other headers (CORS, `Link`, the
/// surrogate keys). Aggregators poll thousands of feeds and most answers are 304s, so every byte
/// of this head is paid for over and over.
pub fn each_header<'a>(
    rep: &'a Representation,
    plan: &Plan<'a>,
    cache_control: &'a HeaderValue,
    mut f: impl FnMut(header::HeaderName, &'a HeaderValue),
) {
    static VARY: HeaderValue = HeaderValue::from_static("Accept-Encoding");
    static ANY: HeaderValue = HeaderValue::from_static("*");
    // `ETag` and `Link` are not CORS-safelisted response headers (`Last-Modified` is): without
    // this a browser-based reader could not read the validator it must send back, nor the hub.
    static EXPOSE: HeaderValue = HeaderValue::from_static("ETag, Link");
    static GZIP: HeaderValue = HeaderValue::from_static("gzip");
    static BR: HeaderValue = HeaderValue::from_static("br");
    static SURROGATE_KEY: header::HeaderName = header::HeaderName::from_static("surrogate-key");
    static CACHE_TAG: header::HeaderName = header::HeaderName::from_static("cache-tag");
    f(header::ETAG, plan.etag);
    f(header::CACHE_CONTROL, cache_control);
    f(header::VARY, &VARY);
    if plan.not_modified {
        return;
    }
    if let Some(lm) = &rep.last_modified_header {
        f(header::LAST_MODIFIED, lm);
    }
    f(header::ACCESS_CONTROL_ALLOW_ORIGIN, &ANY);
    f(header::ACCESS_CONTROL_EXPOSE_HEADERS, &EXPOSE);
    if !rep.link_header.is_empty() {
        f(header::LINK, &rep.link_header);
    }
    if let Some(k) = &rep.surrogate_key {
        f(SURROGATE_KEY.clone(), k);
    }
    if let Some(t) = &rep.cache_tag {
        f(CACHE_TAG.clone(), t);
    }
    f(header::CONTENT_TYPE, &rep.content_type);
    match plan.coding {
        Coding::Identity => {}
        Coding::Gzip => f(header::CONTENT_ENCODING, &GZIP),
        Coding::Br => f(header::CONTENT_ENCODING, &BR),
    }
}

/// Answers GET or HEAD for a representation: 304 when the client's copy is current, else 200
/// with the body in the negotiated coding.
pub fn represent(
    rep: &Representation,
    method: &Method,
    req: &HeaderMap,
    cache_control: &HeaderValue,
    metrics: &crate::metrics::Metrics,
) -> Response {
    represent_with(rep, None, method, req, cache_control, metrics)
}

/// [`represent`] for a cache entry: the body holds the entry until it has been sent, so its bytes
/// stay counted in the cache's budget ([`crate::cache::FeedCache::live_bytes`]) for as long as a
/// slow client keeps them alive.
pub fn represent_entry(
    entry: &Arc<Entry>,
    method: &Method,
    req: &HeaderMap,
    cache_control: &HeaderValue,
    metrics: &crate::metrics::Metrics,
) -> Response {
    represent_with(
        &entry.rep,
        Some(entry.clone()),
        method,
        req,
        cache_control,
        metrics,
    )
}

/// A body of bytes that keeps the cache entry they belong to alive until it is sent or dropped.
struct EntryBody {
    bytes: Option<bytes::Bytes>,
    _entry: Option<Arc<Entry>>,
}

impl http_body::Body for EntryBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.bytes.take().map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.bytes.as_ref().map_or(0, |b| b.len() as u64))
    }
}

fn represent_with(
    rep: &Representation,
    owner: Option<Arc<Entry>>,
    method: &Method,
    req: &HeaderMap,
    cache_control: &HeaderValue,
    metrics: &crate::metrics::Metrics,
) -> Response {
    let get = |h: header::HeaderName| req.get(h).and_then(|v| v.to_str().ok());
    let plan = plan(
        rep,
        negotiate(get(header::ACCEPT_ENCODING)),
        get(header::IF_NONE_MATCH),
        get(header::IF_MODIFIED_SINCE),
    );
    let mut resp = if plan.not_modified {
        metrics.not_modified.inc();
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else if *method == Method::HEAD {
        let mut r = Response::new(Body::empty());
        r.headers_mut().insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(plan.body.bytes.len()),
        );
        r
    } else {
        Response::new(Body::new(EntryBody {
            bytes: Some(plan.body.bytes.clone()),
            _entry: owner,
        }))
    };
    let h = resp.headers_mut();
    each_header(rep, &plan, cache_control, |name, value| {
        h.insert(name, value.clone());
    });
    resp
}
