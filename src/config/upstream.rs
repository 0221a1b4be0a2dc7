//! `[[sources]]` and `[upstream]`: the upstream feeds aggregated into the site's feeds, and the
//! bounds every fetch of them shares.
//!
//! A source names a configured language and category, so its entries are checked after the site
//! (`site.rs`) and against it. Every duration here is bounded both ways, since a zero would poll in
//! a loop and a typo of years would overflow instants. The defaults of `[upstream]` live in
//! [`UpstreamConfig`]'s `Default` impl alone, and parsing starts from it.

use std::time::Duration;

use url::Url;

use super::common::ConfigError;
use super::common::parse_http_url;
use super::raw::{RawDuration, RawSource, RawUpstream};
use super::site::{Category, Language};

/// What an aggregated item carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceContent {
    /// Title, summary and a link back (the default: republishing needs no rights).
    #[default]
    Summary,
    /// The item's full HTML too (the rights are cleared with the sister paper).
    Full,
}

/// One upstream feed (`[[sources]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// `[a-z0-9-]`, stable: it is part of every article id the source produces.
    pub id: String,
    pub url: Url,
    pub lang: String,
    pub category: String,
    pub every: Duration,
    pub content: SourceContent,
}

/// `[upstream]`: bounds of fetching upstream feeds, shared by every source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Sources fetched at once.
    pub concurrency: usize,
    /// Sources of one upstream host fetched at once.
    pub per_host: usize,
    pub connect_timeout: Duration,
    /// Whole request, redirects and body included.
    pub timeout: Duration,
    /// Largest body accepted, counted after decompression (a gzip bomb is an error, not an OOM).
    pub max_body_bytes: u64,
    /// Longest delay between attempts after failures.
    pub max_backoff: Duration,
    /// Whether upstream fetches (and their redirects) may reach loopback, private, link-local
    /// and other non-public addresses. Off by default: only a source's own configured origin may
    /// be one (see `sources::address`).
    pub allow_private: bool,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            concurrency: 32,
            per_host: 4,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_body_bytes: 10 << 20,
            max_backoff: Duration::from_secs(6 * 3600),
            allow_private: false,
        }
    }
}

pub(super) fn validate_sources(
    raw: &[RawSource],
    languages: &[Language],
    categories: &[Category],
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<Vec<SourceConfig>, ConfigError> {
    let langs: Vec<&str> = languages.iter().map(|l| l.code.as_str()).collect();
    let cats: Vec<&str> = categories.iter().map(|c| c.id.as_str()).collect();
    let mut out: Vec<SourceConfig> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let at = |k: &str| format!("sources[{i}].{k}");
        if r.id.is_empty()
            || r.id.len() > 64
            || !r
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err(
                &at("id"),
                format!("`{}` must be 1-64 characters of a-z, 0-9 and -", r.id),
            ));
        }
        if out.iter().any(|o| o.id == r.id) {
            return Err(err(
                &at("id"),
                format!("`{}` is used by an earlier source", r.id),
            ));
        }
        let url = parse_http_url(&r.url).map_err(|p| err(&at("url"), p))?;
        if !langs.contains(&r.lang.as_str()) {
            return Err(err(
                &at("lang"),
                format!(
                    "`{}` is not a configured language ({})",
                    r.lang,
                    langs.join(", ")
                ),
            ));
        }
        if !cats.contains(&r.category.as_str()) {
            return Err(err(
                &at("category"),
                format!(
                    "`{}` is not a configured category ({})",
                    r.category,
                    cats.join(", ")
                ),
            ));
        }
        let every = r.every.parse().map_err(|p| err(&at("every"), p))?;
        if !(Duration::from_secs(1)..=Duration::from_secs(30 * 86_400)).contains(&every) {
            return Err(err(&at("every"), "must be from 1s to 30 days".into()));
        }
        let content = match r.content.as_deref() {
            None => SourceContent::default(),
            Some("summary") => SourceContent::Summary,
            Some("full") => SourceContent::Full,
            Some(other) => {
                return Err(err(
                    &at("content"),
                    format!("`{other}` is neither \"summary\" nor \"full\""),
                ));
            }
        };
        out.push(SourceConfig {
            id: r.id.clone(),
            url,
            lang: r.lang.clone(),
            category: r.category.clone(),
            every,
            content,
        });
    }
    Ok(out)
}

pub(super) fn validate_upstream(
    raw: &RawUpstream,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<UpstreamConfig, ConfigError> {
    let d = UpstreamConfig::default();
    let dur = |v: &Option<RawDuration>, key: &str, default: Duration| match v {
        Some(v) => v.parse().map_err(|p| err(&format!("upstream.{key}"), p)),
        None => Ok(default),
    };
    let positive = |v: Option<i64>, key: &str, max: i64| -> Result<Option<i64>, ConfigError> {
        match v {
            Some(n) if !(1..=max).contains(&n) => Err(err(
                &format!("upstream.{key}"),
                format!("{n} must be between 1 and {max}"),
            )),
            v => Ok(v),
        }
    };
    // Bounded both ways: a zero would poll in a loop, a typo of years would overflow instants.
    let within = |v: Duration, key: &str, lo: u64, hi: u64| {
        if (Duration::from_secs(lo)..=Duration::from_secs(hi)).contains(&v) {
            Ok(v)
        } else {
            Err(err(
                &format!("upstream.{key}"),
                format!(
                    "must be from {} to {}",
                    humantime::format_duration(Duration::from_secs(lo)),
                    humantime::format_duration(Duration::from_secs(hi))
                ),
            ))
        }
    };
    let timeout = within(dur(&raw.timeout, "timeout", d.timeout)?, "timeout", 1, 600)?;
    let connect_timeout = within(
        dur(&raw.connect_timeout, "connect_timeout", d.connect_timeout)?,
        "connect_timeout",
        1,
        600,
    )?
    .min(timeout);
    Ok(UpstreamConfig {
        concurrency: positive(raw.concurrency, "concurrency", 1024)?
            .map_or(d.concurrency, |n| n as usize),
        per_host: positive(raw.per_host, "per_host", 256)?.map_or(d.per_host, |n| n as usize),
        connect_timeout,
        timeout,
        max_body_bytes: positive(raw.max_body_bytes, "max_body_bytes", 1 << 30)?
            .map_or(d.max_body_bytes, |n| n as u64),
        max_backoff: within(
            dur(&raw.max_backoff, "max_backoff", d.max_backoff)?,
            "max_backoff",
            1,
            7 * 86_400,
        )?,
        allow_private: raw.allow_private.unwrap_or(d.allow_private),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::SourceContent;
    use crate::config::testing::{MINIMAL, parse, parse_err};

    #[test]
    fn sources_are_validated_with_their_index_and_key() {
        const CAT: &str = "quoc-phong";
        let c = parse(&format!(
            "{MINIMAL}[[sources]]\nid = \"bao-tay-ninh\"\nurl = \"https://baotayninh.example/rss/xa-hoi.rss\"\nlang = \"vi\"\ncategory = \"{CAT}\"\nevery = \"2s\"\n[upstream]\nmax_backoff = \"10m\"\n"
        ))
        .unwrap();
        assert_eq!(c.sources.len(), 1);
        assert_eq!(c.sources[0].every, Duration::from_secs(2));
        assert_eq!(c.sources[0].content, SourceContent::Summary);
        assert_eq!(c.upstream.max_backoff, Duration::from_secs(600));
        assert_eq!(c.upstream.timeout, Duration::from_secs(30));
        assert!(
            !c.upstream.allow_private,
            "private targets are refused by default"
        );
        let open = parse(&format!("{MINIMAL}[upstream]\nallow_private = true\n")).unwrap();
        assert!(open.upstream.allow_private);
        let e = parse_err(&format!("{MINIMAL}[upstream]\nallow_private = \"yes\"\n"));
        assert!(e.to_string().contains("expected a boolean"), "{e}");
        let e = parse_err(&format!("{MINIMAL}[upstream]\ntimeout = \"20y\"\n"));
        assert_eq!(e.key, "upstream.timeout", "{e}");

        let good = format!(
            "id = \"a\"\nurl = \"http://a.example/\"\nlang = \"vi\"\ncategory = \"{CAT}\"\nevery = \"15m\"\n"
        );
        let b = good.replace("\"a\"", "\"b\"");
        let cases = [
            (good.replace("\"a\"", "\"Bad_Id\""), "sources[1].id"),
            (
                b.replace("http://a.example/", "ftp://a.example/"),
                "sources[1].url",
            ),
            (b.replace("\"vi\"", "\"fr\""), "sources[1].lang"),
            (b.replace(CAT, "nope"), "sources[1].category"),
            (b.replace("15m", "soon"), "sources[1].every"),
            (b.replace("15m", "400days"), "sources[1].every"),
            (b.clone() + "content = \"all\"\n", "sources[1].content"),
            (good.clone(), "sources[1].id"),
        ];
        for (second, key) in cases {
            let text = format!("{MINIMAL}[[sources]]\n{good}[[sources]]\n{second}");
            let e = parse_err(&text);
            assert_eq!(e.key, key, "{e}");
        }
    }
}
