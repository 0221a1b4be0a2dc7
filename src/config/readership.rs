//! `[readership]`: poll counting, how often its counters are written, and how long daily totals
//! are kept.
//!
//! Counting can be switched off from the environment too (`BANTIN_READERSHIP=off`), so its cost
//! can be measured on a deployment without editing the shared `site.toml`; the variable wins over
//! `count` in the file. The defaults live in [`ReadershipConfig`]'s `Default` impl alone, and
//! parsing starts from it.

use super::common::ConfigError;
use super::env::{self, Env};
use super::raw::RawReadership;

/// `[readership]`: poll counting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadershipConfig {
    /// Whether feed answers are counted (`BANTIN_READERSHIP=off` turns it off, e.g. to measure
    /// what counting costs).
    pub enabled: bool,
    /// How often each worker hands its counters over and the totals are written to the store.
    pub flush_interval: std::time::Duration,
    /// Daily totals older than this many days are deleted.
    pub keep_days: u32,
}

impl Default for ReadershipConfig {
    fn default() -> Self {
        ReadershipConfig {
            enabled: true,
            flush_interval: std::time::Duration::from_secs(5),
            keep_days: 400,
        }
    }
}

pub(super) fn validate_readership(
    raw: &RawReadership,
    env: &Env,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<ReadershipConfig, ConfigError> {
    let d = ReadershipConfig::default();
    let enabled = match env.readership() {
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            _ => {
                return Err(err(env::READERSHIP, format!("`{v}` is neither on nor off")));
            }
        },
        None => raw.count.unwrap_or(d.enabled),
    };
    let flush_interval = match raw.flush_interval {
        Some(s) if (1..=300).contains(&s) => std::time::Duration::from_secs(s),
        Some(s) => {
            return Err(err(
                "readership.flush_interval",
                format!("{s} is outside 1..=300 seconds"),
            ));
        }
        None => d.flush_interval,
    };
    let keep_days = match raw.keep_days {
        Some(n) if (8..=3660).contains(&n) => n,
        Some(n) => {
            return Err(err(
                "readership.keep_days",
                format!("{n} is outside 8..=3660 (the subscriber window alone needs 8 days)"),
            ));
        }
        None => d.keep_days,
    };
    Ok(ReadershipConfig {
        enabled,
        flush_interval,
        keep_days,
    })
}
