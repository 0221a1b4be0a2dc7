//! One polite HTTP fetch of an upstream feed: conditional (`If-None-Match` and
//! `If-Modified-Since`), compressed (gzip, br), bounded (connect and total deadlines, a body
//! limit counted after decompression so a gzip bomb is an error and not an OOM), with redirects
//! followed by hand so that a permanent one (301, 308 all the way) can be remembered as the
//! source's new URL. Every request of a fetch, the first and each hop, is first judged by
//! [`super::address`] (public addresses only, never bantin itself, the source's own configured
//! origin excepted), so a redirect cannot take bantin into its own network.
//!
//! The answer is an [`Outcome`] the poller turns into state; nothing here touches the store.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{
    ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION, RETRY_AFTER,
};
use url::Url;

use super::address::{self, Policy, Refusal, Route};
use crate::config::{Config, UpstreamConfig};

/// Redirects followed at most in one fetch.
const MAX_REDIRECTS: usize = 5;
/// Longest validator kept (an upstream could send a megabyte of ETag).
const MAX_VALIDATOR_BYTES: usize = 1024;

/// What one fetch found.
#[derive(Debug)]
pub enum Outcome {
    /// A new body, with the validators that came with it and where it was found.
    Body {
        body: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
        moved_to: Option<Url>,
        /// The `Content-Type` header (its `charset` decides the encoding; bounded like a
        /// validator).
        content_type: Option<String>,
    },
    /// 304: what is stored is current.
    NotModified { moved_to: Option<Url> },
    /// 410: the upstream says the feed is gone for good.
    Gone,
    /// 429 or 503, with the upstream's `Retry-After` when it gave a usable one.
    Throttled {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// A request was not sent: its target is a non-public address or bantin itself. Nothing of
    /// the refused target was read, and no redirect of this fetch is remembered.
    Refused { message: String },
    /// Anything else: `transient` failures (network, timeouts, 5xx) are `backoff`, the others
    /// (4xx, a body too large or undecodable) `error`. Both are retried.
    Failed { transient: bool, message: String },
}

/// The fetching half of the poller: shared clients (connection reuse across sources on one
/// host), the rules of where a request may go, and the `[upstream]` bounds.
pub struct Fetcher {
    /// Resolves names to public addresses only; its pool holds nothing else.
    strict: reqwest::Client,
    /// No address filter: a source's own non-public origin, or every target with
    /// `allow_private`.
    trusted: reqwest::Client,
    policy: Policy,
    limits: UpstreamConfig,
}

impl Fetcher {
    pub fn new(config: &Config) -> Fetcher {
        crate::outbox::install_tls_provider();
        // ASCII only (a header value), naming bantin and the site by its URL, so an upstream's
        // operator knows whom to ask.
        let agent = format!(
            "bantin/{} (feed aggregator; +{})",
            env!("CARGO_PKG_VERSION"),
            config.base_url
        );
        let limits = config.upstream.clone();
        let builder = || {
            reqwest::Client::builder()
            .user_agent(agent.clone())
            // Some CMSs negotiate the feed format on Accept; all of these are read.
            .default_headers(reqwest::header::HeaderMap::from_iter([(
                reqwest::header::ACCEPT,
                reqwest::header::HeaderValue::from_static(
                    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9, application/json;q=0.8, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5",
                ),
            )]))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment would resolve the targets itself, out of reach of
            // the address rules; upstream fetches always connect directly.
            .no_proxy()
            // The whole fetch (redirects and body included) has one deadline, in `fetch`.
            .connect_timeout(limits.connect_timeout)
            .pool_max_idle_per_host(4)
            .pool_idle_timeout(Duration::from_secs(90))
        };
        let build = |b: reqwest::ClientBuilder| {
            b.build()
                .expect("a client with rustls and no custom roots builds")
        };
        Fetcher {
            strict: build(builder().dns_resolver(std::sync::Arc::new(crate::netguard::PublicOnly))),
            trusted: build(builder()),
            policy: Policy {
                allow_private: limits.allow_private,
                public_url: config.public_base(),
                listen: config.listen,
            },
            limits,
        }
    }

    /// Fetches `url` (where the source is polled now) of a source configured at `configured`,
    /// with the stored validators; `now` dates a `Retry-After` given as a date.
    pub async fn fetch(
        &self,
        url: &Url,
        configured: &Url,
        etag: Option<&str>,
        last_modified: Option<&str>,
        now: DateTime<Utc>,
    ) -> Outcome {
        match tokio::time::timeout(
            self.limits.timeout,
            self.fetch_inner(url, configured, etag, last_modified, now),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Failed {
                transient: true,
                message: format!(
                    "no complete answer within {}",
                    humantime::format_duration(self.limits.timeout)
                ),
            },
        }
    }

    async fn fetch_inner(
        &self,
        start: &Url,
        configured: &Url,
        etag: Option<&str>,
        last_modified: Option<&str>,
        now: DateTime<Utc>,
    ) -> Outcome {
        let mut url = start.clone();
        let mut permanent = true;
        for _ in 0..=MAX_REDIRECTS {
            let client = match self.policy.route(&url, configured) {
                Ok(Route::Public) => &self.strict,
                Ok(Route::Trusted) => &self.trusted,
                Err(r) => return refused(&url, start, &r),
            };
            let mut req = client.get(url.clone());
            if let Some(e) = etag {
                req = req.header(IF_NONE_MATCH, e);
            }
            if let Some(lm) = last_modified {
                req = req.header(IF_MODIFIED_SINCE, lm);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => match address::refusal_in(&e) {
                    // The strict resolver found only non-public addresses for the name.
                    Some(r) => return refused(&url, start, &r),
                    None => return failed(true, describe(&e)),
                },
            };
            let status = resp.status();
            let moved_to = (permanent && url != *start).then(|| url.clone());
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let Some(next) = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                else {
                    return failed(false, format!("{status} without a usable Location"));
                };
                // Only a permanent move that keeps (or upgrades to) https is remembered: one
                // forged plain-HTTP answer must not downgrade a source for good.
                permanent &= matches!(
                    status,
                    StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
                ) && !(url.scheme() == "https" && next.scheme() == "http");
                url = next;
                continue;
            }
            return match status {
                StatusCode::OK => self.body(resp, moved_to).await,
                StatusCode::NOT_MODIFIED => Outcome::NotModified { moved_to },
                // Gone for good only when every hop was permanent: a 410 behind a temporary
                // redirect says nothing about the source's own URL.
                StatusCode::GONE if permanent => Outcome::Gone,
                StatusCode::GONE => failed(
                    false,
                    format!("410 Gone at {url}, reached through a temporary redirect"),
                ),
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                    Outcome::Throttled {
                        status: status.as_u16(),
                        retry_after: resp
                            .headers()
                            .get(RETRY_AFTER)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| super::schedule::retry_after(v, now)),
                    }
                }
                s if s.is_server_error() || s == StatusCode::REQUEST_TIMEOUT => {
                    failed(true, format!("upstream answered {s}"))
                }
                s => failed(false, format!("upstream answered {s}")),
            };
        }
        failed(false, format!("more than {MAX_REDIRECTS} redirects"))
    }

    async fn body(&self, mut resp: reqwest::Response, moved_to: Option<Url>) -> Outcome {
        let validator = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .filter(|v| !v.is_empty() && v.len() <= MAX_VALIDATOR_BYTES)
                .map(String::from)
        };
        let etag = validator(ETAG);
        let last_modified = validator(LAST_MODIFIED);
        let content_type = validator(reqwest::header::CONTENT_TYPE);
        let limit = self.limits.max_body_bytes;
        if resp.content_length().is_some_and(|n| n > limit)
            && resp
                .headers()
                .get(reqwest::header::CONTENT_ENCODING)
                .is_none()
        {
            return failed(false, format!("the body is larger than {limit} bytes"));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    // Counted after decompression: reqwest hands over decoded bytes.
                    if (body.len() + chunk.len()) as u64 > limit {
                        return failed(
                            false,
                            format!("the body is larger than {limit} bytes (after decompression)"),
                        );
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return failed(e.is_timeout() || !e.is_decode(), describe(&e)),
            }
        }
        Outcome::Body {
            body,
            etag,
            last_modified,
            moved_to,
            content_type,
        }
    }
}

fn refused(url: &Url, start: &Url, why: &Refusal) -> Outcome {
    let message = if url == start {
        format!("refused: {why}")
    } else {
        format!("refused a redirect to {}: {why}", shown(url))
    };
    Outcome::Refused { message }
}

/// A URL for a message: without its query and fragment (which may hold a key).
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

fn failed(transient: bool, message: String) -> Outcome {
    Outcome::Failed { transient, message }
}

/// A reqwest error as one line without the URL's query (which may hold a key).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_decode() {
        "could not decode the body"
    } else if e.is_body() {
        "the body was cut short"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {cause}")
    }
}
