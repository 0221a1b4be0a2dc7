//! A subscription request as a subscriber POSTs it to `/websub`, read into domain terms: pure
//! functions from the form body and the site configuration, so every refusal is unit-tested and
//! names the parameter at fault.
//!
//! Both forms in use are read: W3C WebSub (`hub.mode`, `hub.topic`, `hub.callback`, and the
//! optional `hub.lease_seconds` and `hub.secret`) and PubSubHubbub 0.3, which adds `hub.verify`
//! (`sync` or `async`, possibly repeated, in the subscriber's order of preference) and
//! `hub.verify_token` (echoed in the verification). Parameters the hub does not know are ignored,
//! as WebSub requires.

use url::Url;

use crate::config::Config;
use crate::model::{FeedKey, Format};

/// Largest request body read (a form of a few URLs and tokens).
pub const MAX_BODY: usize = 16 * 1024;
/// Longest topic or callback URL accepted.
pub const MAX_URL: usize = 2048;
/// WebSub: `hub.secret` "MUST be less than 200 bytes".
pub const MAX_SECRET: usize = 199;
/// Longest `hub.verify_token` (0.3) accepted.
pub const MAX_VERIFY_TOKEN: usize = 255;

/// The lease given when none is asked for, and the bounds of any lease (WebSub forbids
/// perpetual ones; an hour keeps renewals from becoming a load of their own).
pub const DEFAULT_LEASE: u64 = 10 * 86_400;
pub const MIN_LEASE: u64 = 3_600;
pub const MAX_LEASE: u64 = 30 * 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Subscribe,
    Unsubscribe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Subscribe => "subscribe",
            Mode::Unsubscribe => "unsubscribe",
        }
    }
}

/// When intent is verified: after the answer (WebSub; 0.3 `async`) or before it (0.3 `sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    Async,
    Sync,
}

/// A well-formed request; the topic and the callback are still to be checked against the site
/// and the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub mode: Mode,
    pub topic: String,
    pub callback: String,
    /// As asked; [`lease`] bounds it.
    pub lease_seconds: Option<u64>,
    pub secret: Option<String>,
    pub verify: Verify,
    pub verify_token: Option<String>,
}

/// What is wrong with a request, naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RequestError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> RequestError {
    RequestError {
        field,
        message: message.into(),
    }
}

/// Reads a form-encoded request body.
pub fn parse(body: &[u8]) -> Result<Request, RequestError> {
    let mut mode = None;
    let mut topic = None;
    let mut callback = None;
    let mut lease = None;
    let mut secret = None;
    let mut verify: Vec<String> = Vec::new();
    let mut verify_token = None;
    // A parameter given twice counts once, as first given.
    for (k, v) in url::form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "hub.mode" => &mut mode,
            "hub.topic" => &mut topic,
            "hub.callback" => &mut callback,
            "hub.lease_seconds" => &mut lease,
            "hub.secret" => &mut secret,
            "hub.verify_token" => &mut verify_token,
            "hub.verify" => {
                if verify.len() < 8 {
                    verify.push(v.to_ascii_lowercase());
                }
                continue;
            }
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v.into_owned());
        }
    }
    let mode = match mode.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("subscribe") => Mode::Subscribe,
        Some("unsubscribe") => Mode::Unsubscribe,
        Some("publish") => {
            return Err(bad(
                "hub.mode",
                "publish is not needed here: this hub delivers this site's feeds after every write",
            ));
        }
        Some(other) => {
            return Err(bad(
                "hub.mode",
                format!("`{}` is neither subscribe nor unsubscribe", clip(other)),
            ));
        }
        None => return Err(bad("hub.mode", "missing: subscribe or unsubscribe")),
    };
    let url_param = |field: &'static str, v: Option<String>| match v {
        None => Err(bad(field, "missing")),
        Some(v) if v.is_empty() => Err(bad(field, "empty")),
        Some(v) if v.len() > MAX_URL => Err(bad(
            field,
            format!("longer than {MAX_URL} bytes ({})", v.len()),
        )),
        Some(v) => Ok(v),
    };
    let topic = url_param("hub.topic", topic)?;
    let callback = url_param("hub.callback", callback)?;
    let lease_seconds = match lease.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) if v.bytes().all(|b| b.is_ascii_digit()) && v.len() <= 20 => {
            // Digits only; a value past u64 asks for more than any lease anyway.
            match v.parse::<u64>().unwrap_or(u64::MAX) {
                0 => {
                    return Err(bad(
                        "hub.lease_seconds",
                        "must be a positive number of seconds",
                    ));
                }
                n => Some(n),
            }
        }
        Some(v) => {
            return Err(bad(
                "hub.lease_seconds",
                format!("`{}` is not a positive whole number of seconds", clip(v)),
            ));
        }
    };
    let secret = match secret {
        Some(s) if s.len() > MAX_SECRET => {
            return Err(bad(
                "hub.secret",
                format!("must be less than 200 bytes ({} given)", s.len()),
            ));
        }
        Some(s) if s.is_empty() => None,
        s => s,
    };
    let verify = if verify.is_empty() {
        Verify::Async
    } else {
        match verify
            .iter()
            .find(|v| v.as_str() == "sync" || v.as_str() == "async")
            .map(String::as_str)
        {
            Some("sync") => Verify::Sync,
            Some(_) => Verify::Async,
            None => {
                return Err(bad(
                    "hub.verify",
                    format!("`{}`: neither sync nor async", clip(&verify.join(", "))),
                ));
            }
        }
    };
    let verify_token = match verify_token {
        Some(t) if t.len() > MAX_VERIFY_TOKEN => {
            return Err(bad(
                "hub.verify_token",
                format!("longer than {MAX_VERIFY_TOKEN} bytes ({})", t.len()),
            ));
        }
        Some(t) if t.is_empty() => None,
        t => t,
    };
    Ok(Request {
        mode,
        topic,
        callback,
        lease_seconds,
        secret,
        verify,
        verify_token,
    })
}

/// The lease granted for one asked for (or none): within [`MIN_LEASE`]..=[`MAX_LEASE`].
pub fn lease(asked: Option<u64>) -> u64 {
    asked.unwrap_or(DEFAULT_LEASE).clamp(MIN_LEASE, MAX_LEASE)
}

/// The feed a topic URL names: one of this site's feeds, page 1, in one format, exactly as its
/// self link spells it (no query: a partner key or a page number is not a topic).
pub fn topic(config: &Config, topic: &str) -> Result<(FeedKey, Format), RequestError> {
    let base = config.public_base();
    let refuse = || {
        bad(
            "hub.topic",
            format!(
                "`{}` is not one of this site's feeds: a topic is a feed's self URL, such as {}, listed at {base}feeds.opml",
                clip(topic),
                FeedKey::new(
                    config.languages.first().map_or("vi", |l| l.code.as_str()),
                    crate::model::Selector::All
                )
                .url(config, Format::Rss, 1),
            ),
        )
    };
    let url = Url::parse(topic).map_err(|_| refuse())?;
    let rest = url
        .as_str()
        .strip_prefix(base.as_str())
        .filter(|_| url.query().is_none() && url.fragment().is_none())
        .ok_or_else(refuse)?;
    let path = format!("/{rest}");
    match crate::routes::parse_path(config, &path) {
        Ok(crate::routes::Target::Feed(key, format))
            if Url::parse(&key.url(config, format, 1)).ok().as_ref() == Some(&url) =>
        {
            Ok((key, format))
        }
        _ => Err(refuse()),
    }
}

/// A callback that may be verified: an absolute http(s) URL with a host and no credentials or
/// fragment. Whether its host is a public address is checked apart (it needs the network).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub url: Url,
    /// Lower case; `[…]` around an IPv6 literal.
    pub host: String,
    pub port: u16,
}

pub fn callback(raw: &str) -> Result<Callback, RequestError> {
    let url = Url::parse(raw).map_err(|e| {
        bad(
            "hub.callback",
            format!("`{}` is not an absolute URL ({e})", clip(raw)),
        )
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(bad(
            "hub.callback",
            format!("must be http or https, not {}", clip(url.scheme())),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("hub.callback", "must not carry credentials"));
    }
    if url.fragment().is_some() {
        return Err(bad("hub.callback", "must not have a fragment"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("hub.callback", "has no host"))?
        .to_ascii_lowercase();
    let port = url
        .port_or_known_default()
        .ok_or_else(|| bad("hub.callback", "has no port"))?;
    if url.as_str().len() > MAX_URL {
        return Err(bad("hub.callback", format!("longer than {MAX_URL} bytes")));
    }
    Ok(Callback { url, host, port })
}

/// At most 100 characters of what a client sent, for a message.
fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(100).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
            .into_bytes()
    }

    fn config() -> Config {
        let mut c = crate::article::tests::config();
        c.public_url = Some(Url::parse("https://feeds.example/").unwrap());
        c
    }

    #[test]
    fn websub_form_with_unknown_parameters() {
        let r = parse(&form(&[
            ("hub.mode", "subscribe"),
            ("hub.topic", "https://feeds.example/vi/rss.xml"),
            ("hub.callback", "https://reader.example/cb?id=7&x=%20y"),
            ("hub.lease_seconds", "86400"),
            ("hub.secret", "s3cret"),
            ("hub.foo", "bar"),
            ("other", "ignored"),
        ]))
        .unwrap();
        assert_eq!(
            r,
            Request {
                mode: Mode::Subscribe,
                topic: "https://feeds.example/vi/rss.xml".into(),
                callback: "https://reader.example/cb?id=7&x=%20y".into(),
                lease_seconds: Some(86_400),
                secret: Some("s3cret".into()),
                verify: Verify::Async,
                verify_token: None,
            }
        );
    }

    #[test]
    fn pubsubhubbub_0_3_form() {
        let r = parse(&form(&[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", "https://feeds.example/vi/rss.xml"),
            ("hub.callback", "https://newsblur.example/push/1"),
            ("hub.verify", "sync"),
            ("hub.verify", "async"),
            ("hub.verify_token", "tok-1"),
        ]))
        .unwrap();
        assert_eq!(
            (r.mode, r.verify, r.verify_token.as_deref()),
            (Mode::Unsubscribe, Verify::Sync, Some("tok-1"))
        );
        // The subscriber's first choice that the hub knows wins.
        let r = parse(&form(&[
            ("hub.mode", "subscribe"),
            ("hub.topic", "t"),
            ("hub.callback", "c"),
            ("hub.verify", "later"),
            ("hub.verify", "async"),
            ("hub.verify", "sync"),
        ]))
        .unwrap();
        assert_eq!(r.verify, Verify::Async);
        let e = parse(&form(&[
            ("hub.mode", "subscribe"),
            ("hub.topic", "t"),
            ("hub.callback", "c"),
            ("hub.verify", "never"),
        ]))
        .unwrap_err();
        assert_eq!(e.field, "hub.verify");
    }

    #[test]
    fn refusals_name_the_parameter() {
        let ok = [
            ("hub.mode", "subscribe"),
            ("hub.topic", "https://feeds.example/vi/rss.xml"),
            ("hub.callback", "https://reader.example/cb"),
        ];
        let with = |k: &'static str, v: &'static str| {
            let mut f: Vec<(&str, &str)> = ok.iter().filter(|(n, _)| *n != k).copied().collect();
            if !v.is_empty() {
                f.push((k, v));
            }
            parse(&form(&f)).unwrap_err()
        };
        let field = |e: RequestError| e.field;
        assert_eq!(field(with("hub.mode", "")), "hub.mode");
        assert_eq!(field(with("hub.mode", "follow")), "hub.mode");
        assert!(with("hub.mode", "publish").message.contains("not needed"));
        assert_eq!(field(with("hub.topic", "")), "hub.topic");
        assert_eq!(field(with("hub.callback", "")), "hub.callback");
        let long: &'static str =
            Box::leak(format!("https://x.example/{}", "a".repeat(3000)).into_boxed_str());
        assert_eq!(field(with("hub.callback", long)), "hub.callback");
        let secret: &'static str = Box::leak("s".repeat(200).into_boxed_str());
        let mut f = ok.to_vec();
        f.push(("hub.secret", secret));
        assert_eq!(parse(&form(&f)).unwrap_err().field, "hub.secret");
        f.pop();
        f.push(("hub.secret", &secret[..199]));
        assert_eq!(parse(&form(&f)).unwrap().secret.unwrap().len(), 199);
        for bad_lease in ["-5", "0", "1.5", "ten"] {
            let mut f = ok.to_vec();
            f.push(("hub.lease_seconds", bad_lease));
            assert_eq!(
                parse(&form(&f)).unwrap_err().field,
                "hub.lease_seconds",
                "{bad_lease}"
            );
        }
        let mut f = ok.to_vec();
        f.push(("hub.lease_seconds", "99999999999999999999"));
        assert_eq!(parse(&form(&f)).unwrap().lease_seconds, Some(u64::MAX));
    }

    #[test]
    fn leases_are_bounded_never_perpetual() {
        assert_eq!(lease(None), 864_000);
        assert_eq!(lease(Some(60)), 3_600);
        assert_eq!(lease(Some(86_400)), 86_400);
        assert_eq!(lease(Some(u64::MAX)), 2_592_000);
    }

    #[test]
    fn topics_are_the_feeds_self_urls() {
        let c = config();
        let (key, format) = topic(&c, "https://feeds.example/vi/rss.xml").unwrap();
        assert_eq!(
            (key.url(&c, format, 1).as_str(), format),
            ("https://feeds.example/vi/rss.xml", Format::Rss)
        );
        for ok in [
            "https://feeds.example/en/feed.json",
            "https://feeds.example/vi/kinh-te/atom.xml",
            "https://feeds.example/vi/tag/gia-lua/rss.xml",
            "https://feeds.example/vi/author/minh-thu/feed.json",
        ] {
            assert!(topic(&c, ok).is_ok(), "{ok}");
        }
        for no in [
            "https://feeds.example/vi/rss.xml?page=2",
            "https://feeds.example/vi/rss.xml?key=abc",
            "https://feeds.example/vi/rss.xml#x",
            "http://feeds.example/vi/rss.xml",
            "https://elsewhere.example/vi/rss.xml",
            "https://feeds.example/fr/rss.xml",
            "https://feeds.example/vi/",
            "https://feeds.example/feeds.opml",
            "https://feeds.example/vi/no-such-category/rss.xml",
            "not a url",
        ] {
            let e = topic(&c, no).unwrap_err();
            assert_eq!(e.field, "hub.topic", "{no}");
            assert!(
                e.message.contains("https://feeds.example/vi/rss.xml"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn callbacks_keep_their_query_and_refuse_what_cannot_be_verified() {
        let cb = callback("https://Reader.Example:8443/push?id=7&sig=a%2Fb").unwrap();
        assert_eq!(
            cb.url.as_str(),
            "https://reader.example:8443/push?id=7&sig=a%2Fb"
        );
        assert_eq!((cb.host.as_str(), cb.port), ("reader.example", 8443));
        assert_eq!(callback("http://[::1]/cb").unwrap().host, "[::1]");
        for no in [
            "/relative",
            "ftp://reader.example/cb",
            "https://user:pw@reader.example/cb",
            "https://reader.example/cb#frag",
            "mailto:x@example.com",
        ] {
            assert_eq!(callback(no).unwrap_err().field, "hub.callback", "{no}");
        }
    }
}
