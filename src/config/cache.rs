//! `[cache]`: the rendered-feed cache's size and entry lifetime, and the `Cache-Control` policy
//! given to pollers and CDNs.
//!
//! Every key may be left out; the defaults live in [`CacheConfig`]'s `Default` impl alone, and
//! the parse path starts from it, so a default is changed in one place.

use super::common::ConfigError;
use super::raw::RawCache;

/// Cache sizing and the `Cache-Control` policy given to pollers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    pub max_bytes: u64,
    pub ttl_secs: u64,
    pub max_age: u64,
    pub stale_while_revalidate: u64,
    pub stale_if_error: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 256 << 20,
            ttl_secs: 600,
            max_age: 60,
            stale_while_revalidate: 300,
            stale_if_error: 86_400,
        }
    }
}

pub(super) fn validate_cache(
    raw: &RawCache,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<CacheConfig, ConfigError> {
    let d = CacheConfig::default();
    let cache = CacheConfig {
        max_bytes: raw.max_bytes.unwrap_or(d.max_bytes),
        ttl_secs: raw.ttl.unwrap_or(d.ttl_secs),
        max_age: raw.max_age.unwrap_or(d.max_age),
        stale_while_revalidate: raw
            .stale_while_revalidate
            .unwrap_or(d.stale_while_revalidate),
        stale_if_error: raw.stale_if_error.unwrap_or(d.stale_if_error),
    };
    if cache.max_bytes < 1 << 20 {
        return Err(err(
            "cache.max_bytes",
            "must be at least 1048576 (1 MiB)".into(),
        ));
    }
    if cache.ttl_secs == 0 {
        return Err(err("cache.ttl", "must be at least 1 second".into()));
    }
    Ok(cache)
}
