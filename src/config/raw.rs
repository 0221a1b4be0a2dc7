//! The TOML shape of `site.toml`, exactly as serde reads it, before anything is checked.
//!
//! These types mirror the file key for key and hold only what TOML can say (`Option`s, integers,
//! strings); none of their values has been validated. They are kept apart from the validated
//! section types and are `pub(super)`, so only the section modules beside this one, which turn
//! each `Raw*` into its checked type, ever see an unchecked value ("parse, don't validate").
//! `deny_unknown_fields` everywhere: a misspelt key is an error naming its line, not a setting
//! silently left at its default. Integers are read as `i64` where a negative or zero value must
//! be refused with a message, rather than as an unsigned type whose serde error would not name
//! the bounds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::common::ConfigError;

/// Reads the TOML text; a syntax error or an unknown key is reported at its line.
pub(super) fn from_toml(
    text: &str,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        // toml's message carries the line, column and the offending key or value.
        let key = e
            .span()
            .map(|s| {
                let line = text[..s.start].matches('\n').count() + 1;
                format!("line {line}")
            })
            .unwrap_or_else(|| "(syntax)".into());
        err(&key, e.message().to_string())
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) base_url: String,
    pub(super) tag_authority: Option<String>,
    pub(super) public_url: Option<String>,
    pub(super) listen: Option<String>,
    pub(super) database_url: Option<String>,
    pub(super) timezone: Option<String>,
    pub(super) languages: Vec<String>,
    pub(super) items_per_feed: Option<i64>,
    pub(super) articles_dir: Option<String>,
    pub(super) site: BTreeMap<String, RawSite>,
    #[serde(default)]
    pub(super) categories: Vec<RawCategory>,
    #[serde(default)]
    pub(super) cache: RawCache,
    #[serde(default)]
    pub(super) opml: RawOpml,
    #[serde(default)]
    pub(super) websub: RawWebSub,
    #[serde(default)]
    pub(super) cdn: RawCdn,
    #[serde(default)]
    pub(super) api: RawApi,
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) access: RawAccess,
    #[serde(default)]
    pub(super) partners: Vec<RawPartner>,
    #[serde(default)]
    pub(super) readership: RawReadership,
    #[serde(default)]
    pub(super) sources: Vec<RawSource>,
    #[serde(default)]
    pub(super) upstream: RawUpstream,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) id: String,
    pub(super) url: String,
    pub(super) lang: String,
    pub(super) category: String,
    pub(super) every: RawDuration,
    pub(super) content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) concurrency: Option<i64>,
    pub(super) per_host: Option<i64>,
    pub(super) connect_timeout: Option<RawDuration>,
    pub(super) timeout: Option<RawDuration>,
    pub(super) max_body_bytes: Option<i64>,
    pub(super) max_backoff: Option<RawDuration>,
    pub(super) allow_private: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) head_timeout: Option<RawDuration>,
    pub(super) idle_timeout: Option<RawDuration>,
    pub(super) send_timeout: Option<RawDuration>,
    pub(super) body_timeout: Option<RawDuration>,
    pub(super) max_connections: Option<i64>,
    pub(super) max_head_bytes: Option<i64>,
}

/// A duration in TOML: whole seconds (`10`) or a humantime string (`"10s"`, `"500ms"`, `"2m"`).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawDuration {
    Seconds(i64),
    Text(String),
}

impl RawDuration {
    pub(super) fn parse(&self) -> Result<Duration, String> {
        match self {
            RawDuration::Seconds(s) if *s > 0 => Ok(Duration::from_secs(*s as u64)),
            RawDuration::Seconds(s) => Err(format!("{s} is not a positive number of seconds")),
            RawDuration::Text(t) => match humantime::parse_duration(t) {
                Ok(d) if !d.is_zero() => Ok(d),
                Ok(_) => Err(format!("`{t}` must be longer than zero")),
                Err(e) => Err(format!(
                    "`{t}` is not a duration such as \"10s\" or \"500ms\" ({e})"
                )),
            },
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    pub(super) public_content: Option<String>,
    #[serde(default)]
    pub(super) trusted_proxies: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPartner {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) key_sha256: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReadership {
    pub(super) count: Option<bool>,
    /// Seconds.
    pub(super) flush_interval: Option<u64>,
    pub(super) keep_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub(super) name: String,
    #[serde(default)]
    pub(super) description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCategory {
    pub(super) id: String,
    pub(super) name: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) slug: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCache {
    pub(super) max_bytes: Option<u64>,
    pub(super) ttl: Option<u64>,
    pub(super) max_age: Option<u64>,
    pub(super) stale_while_revalidate: Option<u64>,
    pub(super) stale_if_error: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOpml {
    pub(super) max_outlines: Option<i64>,
    pub(super) min_articles: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebSub {
    #[serde(default)]
    pub(super) hubs: Vec<String>,
    pub(super) builtin: Option<bool>,
    pub(super) allow_private_callbacks: Option<bool>,
    pub(super) max_subscriptions: Option<i64>,
    pub(super) max_subscriptions_per_host: Option<i64>,
    pub(super) verifications_per_minute: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCdn {
    #[serde(default)]
    pub(super) purge_urls: Vec<String>,
    pub(super) purge_kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) max_article_bytes: Option<usize>,
    pub(super) max_batch_bytes: Option<usize>,
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{MINIMAL, parse_err};

    #[test]
    fn unknown_keys_and_syntax_errors_give_the_line() {
        let e = parse_err(&MINIMAL.replace("languages", "langs"));
        assert!(
            e.problem.contains("langs") || e.problem.contains("languages"),
            "{e}"
        );
        let e = parse_err("base_url = \"https://x.example\"\nlanguages = [\"vi\"\n");
        assert!(e.key.starts_with("line "), "{e}");
        let e = parse_err(&format!("{MINIMAL}\n[cache]\nttl_seconds = 5\n"));
        assert!(e.problem.contains("ttl_seconds"), "{e}");
        assert!(e.key.starts_with("line "), "{e}");
    }
}
