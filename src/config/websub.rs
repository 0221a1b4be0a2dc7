//! `[websub]`: the external hubs pinged after each write, and the built-in hub at `/websub` with
//! the bounds on what strangers may make it do.
//!
//! The built-in hub accepts subscriptions from anyone and then sends requests to the callbacks
//! they name, so its bounds (subscriptions in all and per host, verifications per minute) sit
//! here with the switch that turns it on: together they say what a stranger can make this server
//! do. The external hub list has a `BANTIN_WEBSUB_HUBS` override, like the other per-deployment
//! URLs. The defaults live in [`WebSubConfig`]'s `Default` impl alone, and parsing starts from it.

use url::Url;

use super::common::ConfigError;
use super::common::parse_http_url;
use super::env::{self, Env};
use super::raw::RawWebSub;

/// `[websub]`: the built-in hub at `/websub` and its bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSubConfig {
    /// Run the hub and advertise it in every feed.
    pub builtin: bool,
    /// Callbacks on loopback, private, link-local or multicast addresses are refused unless true
    /// (for tests and closed networks).
    pub allow_private_callbacks: bool,
    /// Active subscriptions at most, in all and per callback host.
    pub max_subscriptions: u64,
    pub max_subscriptions_per_host: u64,
    /// Verification (and denial) requests per callback host per minute, at most: what a stranger
    /// can make the hub send to someone else.
    pub verifications_per_minute: u32,
}

impl Default for WebSubConfig {
    fn default() -> Self {
        WebSubConfig {
            builtin: true,
            allow_private_callbacks: false,
            max_subscriptions: 100_000,
            max_subscriptions_per_host: 10_000,
            verifications_per_minute: 60,
        }
    }
}

/// The external hubs (`Config::hubs`) and the built-in hub's settings.
pub(super) fn validate_websub(
    raw: &RawWebSub,
    env: &Env,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<(Vec<Url>, WebSubConfig), ConfigError> {
    let (hub_list, hub_key) = match env.websub_hubs() {
        Some(v) => (v, env::WEBSUB_HUBS),
        None => (raw.hubs.clone(), "websub.hubs"),
    };
    let hubs = hub_list
        .iter()
        .map(|h| parse_http_url(h).map_err(|p| err(hub_key, p)))
        .collect::<Result<Vec<_>, _>>()?;

    let d = WebSubConfig::default();
    let bounded = |key: &str, v: Option<i64>, max: i64, default: u64| match v {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n as u64),
        Some(n) => Err(err(
            &format!("websub.{key}"),
            format!("{n} is outside 1..={max}"),
        )),
    };
    let max_subscriptions = bounded(
        "max_subscriptions",
        raw.max_subscriptions,
        10_000_000,
        d.max_subscriptions,
    )?;
    let max_subscriptions_per_host = bounded(
        "max_subscriptions_per_host",
        raw.max_subscriptions_per_host,
        10_000_000,
        d.max_subscriptions_per_host,
    )?;
    if max_subscriptions_per_host > max_subscriptions {
        return Err(err(
            "websub.max_subscriptions_per_host",
            format!(
                "{max_subscriptions_per_host} is more than websub.max_subscriptions ({max_subscriptions})"
            ),
        ));
    }
    let websub = WebSubConfig {
        builtin: raw.builtin.unwrap_or(d.builtin),
        allow_private_callbacks: raw
            .allow_private_callbacks
            .unwrap_or(d.allow_private_callbacks),
        max_subscriptions,
        max_subscriptions_per_host,
        verifications_per_minute: bounded(
            "verifications_per_minute",
            raw.verifications_per_minute,
            1_000_000,
            d.verifications_per_minute as u64,
        )? as u32,
    };
    Ok((hubs, websub))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::testing::{MINIMAL, parse, parse_err};
    use crate::config::{Config, WebSubConfig};

    #[test]
    fn websub_defaults_bounds_and_advertised_hubs() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.websub, WebSubConfig::default());
        assert!(c.websub.builtin && !c.websub.allow_private_callbacks);
        assert_eq!(
            c.advertised_hubs()
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>(),
            ["http://127.0.0.1:8080/websub"]
        );
        let text = format!(
            "{MINIMAL}\n[websub]\nhubs = [\"https://hub.example/\"]\nbuiltin = true\nallow_private_callbacks = true\nmax_subscriptions = 50\nmax_subscriptions_per_host = 5\nverifications_per_minute = 600\n"
        );
        let c = Config::parse(&text, "site.toml", Path::new("."), |k| {
            (k == "BANTIN_PUBLIC_URL").then(|| "https://feeds.example/news/".into())
        })
        .unwrap();
        assert_eq!(
            c.advertised_hubs()
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>(),
            ["https://feeds.example/news/websub", "https://hub.example/"]
        );
        assert_eq!(
            (
                c.websub.max_subscriptions,
                c.websub.max_subscriptions_per_host
            ),
            (50, 5)
        );
        assert!(c.websub.allow_private_callbacks);
        assert_eq!(c.websub.verifications_per_minute, 600);
        let off = parse(&format!("{MINIMAL}\n[websub]\nbuiltin = false\n")).unwrap();
        assert!(off.advertised_hubs().is_empty());
        let e = parse_err(&format!("{MINIMAL}\n[websub]\nmax_subscriptions = 0\n"));
        assert_eq!(e.key, "websub.max_subscriptions");
        let e = parse_err(&format!(
            "{MINIMAL}\n[websub]\nmax_subscriptions = 10\nmax_subscriptions_per_host = 11\n"
        ));
        assert_eq!(e.key, "websub.max_subscriptions_per_host");
        let e = parse_err(&format!("{MINIMAL}\n[websub]\nbuiltn = true\n"));
        assert!(e.problem.contains("builtn"), "{e}");
    }
}
