//! Answers, as both HTTP paths write them: the header plan of a representation (conditional
//! GET, negotiation, validators) and its axum response, plain-text answers for people, and the
//! answers for a document that cannot be served (404, 503 with `Retry-After`).
//!
//! A module of its own below the handlers: `feeds` (the fallback handler), `pages` (the HTML
//! index and previews) and the fast connection loop (`fast`) all answer through it, so none of
//! them imports another.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::conditional::{Coding, negotiate, not_modified};
use crate::app::FeedError;
use crate::cache::Entry;
use crate::render::Representation;
use crate::store::StoreError;

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
                .insert(header::RETRY_AFTER, super::error::retry_after());
            r
        }
        FeedError::Store(e) => store_failure(e),
    }
}

/// [`feed_error`] for a document of `feed`; a 404 carries the feed's surrogate keys, as its
/// 200 would. A feed that does not exist yet (a new tag's, before its first article) is then
/// purged from a CDN by the write that creates it, instead of staying a cached 404 until its
/// TTL: the fast path's 404 carries the same keys.
pub fn feed_not_found(e: FeedError, feed: &crate::model::FeedKey) -> Response {
    let not_found = matches!(e, FeedError::NotFound(_));
    let mut r = feed_error(e);
    if not_found {
        let keys = feed.surrogate_keys();
        let h = r.headers_mut();
        if let (Ok(k), Ok(t)) = (
            HeaderValue::from_str(&keys),
            HeaderValue::from_str(&crate::model::cache_tag(&keys)),
        ) {
            h.insert(header::HeaderName::from_static("surrogate-key"), k);
            h.insert(header::HeaderName::from_static("cache-tag"), t);
        }
    }
    r
}

/// The feed could not be rendered and no earlier copy exists: 503 with `Retry-After` when the
/// store is down (pollers come back), 500 otherwise; the text names a request id, never the
/// store's own message (see [`super::error::feed_unavailable`]).
pub fn store_failure(e: StoreError) -> Response {
    let (status, text) = super::error::feed_unavailable(&e);
    let mut r = text_response(status, text);
    r.headers_mut()
        .insert(header::RETRY_AFTER, super::error::retry_after());
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

/// Marks an answer for the newsroom's eyes only (readership figures, source state): no shared
/// cache may keep it, and no browser cache either.
pub fn private_no_store(mut r: axum::response::Response) -> axum::response::Response {
    r.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("private, no-store"),
    );
    r
}
