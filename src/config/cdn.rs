//! `[cdn]`: who is told to purge after each write, and in which form.
//!
//! Both keys have a `BANTIN_*` override, since the purge receivers (a CDN adapter, the Varnish
//! tier) may differ per environment while the rest of `site.toml` is shared. The receivers are
//! not WebSub hubs (those are told a feed changed, not which cache keys to drop), hence a section
//! of their own.

use url::Url;

use super::common::ConfigError;
use super::common::parse_http_url;
use super::env::{self, Env};
use super::raw::RawCdn;

/// The form of the purge request sent to each `[cdn] purge_urls` receiver after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PurgeKind {
    /// `POST` of `{"keys": [...], "urls": [...]}`: for an adapter in front of a CDN's purge API.
    #[default]
    Json,
    /// `PURGE` with an `xkey-purge: k1 k2` header: what Varnish with the xkey vmod reads directly
    /// (see `deploy/varnish/bantin.vcl`), so no adapter is needed.
    Xkey,
}

impl PurgeKind {
    /// Parses a `purge_kind` value; the error says what is accepted.
    pub fn parse(s: &str) -> Result<PurgeKind, String> {
        match s {
            "json" => Ok(PurgeKind::Json),
            "xkey" => Ok(PurgeKind::Xkey),
            other => Err(format!("`{other}` is neither \"json\" nor \"xkey\"")),
        }
    }
}

/// The purge receivers (`Config::purge_urls`) and the form of request they get.
pub(super) fn validate_cdn(
    raw: &RawCdn,
    env: &Env,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<(Vec<Url>, PurgeKind), ConfigError> {
    // An override is one comma-separated value, so its error cannot point at an index.
    let (purge_list, purge_key) = match env.cdn_purge_urls() {
        Some(v) => (v, env::CDN_PURGE_URLS.to_string()),
        None => (raw.purge_urls.clone(), String::new()),
    };
    let purge_urls = purge_list
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let key = if purge_key.is_empty() {
                format!("cdn.purge_urls[{i}]")
            } else {
                purge_key.clone()
            };
            parse_http_url(u).map_err(|p| err(&key, p))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let purge_kind = match env.cdn_purge_kind() {
        Some(v) => PurgeKind::parse(&v).map_err(|p| err(env::CDN_PURGE_KIND, p))?,
        None => match raw.purge_kind.as_deref() {
            None => PurgeKind::default(),
            Some(v) => PurgeKind::parse(v).map_err(|p| err("cdn.purge_kind", p))?,
        },
    };
    Ok((purge_urls, purge_kind))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::testing::{MINIMAL, parse, parse_err};
    use crate::config::{Config, PurgeKind};

    #[test]
    fn purge_kind_defaults_to_json_and_names_the_key_when_wrong() {
        assert_eq!(parse(MINIMAL).unwrap().purge_kind, PurgeKind::Json);
        let c = parse(&format!("{MINIMAL}[cdn]\npurge_kind = \"xkey\"\n")).unwrap();
        assert_eq!(c.purge_kind, PurgeKind::Xkey);
        let e = parse_err(&format!("{MINIMAL}[cdn]\npurge_kind = \"ban\"\n"));
        assert_eq!(e.key, "cdn.purge_kind");
        assert!(e.problem.contains("`ban`"), "{}", e.problem);
        let env = |k: &str| (k == "BANTIN_CDN_PURGE_KIND").then(|| "xkey".to_string());
        let c = Config::parse(MINIMAL, "site.toml", Path::new("."), env).unwrap();
        assert_eq!(c.purge_kind, PurgeKind::Xkey);
        let env = |k: &str| (k == "BANTIN_CDN_PURGE_KIND").then(|| "XKEY".to_string());
        let e = Config::parse(MINIMAL, "site.toml", Path::new("."), env).unwrap_err();
        assert_eq!(e.key, "BANTIN_CDN_PURGE_KIND");
    }
}
