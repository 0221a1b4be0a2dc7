//! `[server]`: deadlines and bounds of the HTTP edge, and the process knobs of its workers.
//!
//! The deadlines and bounds are file keys: they are policy, what a slow, silent or hostile client
//! may hold and for how long. The worker count, the yield quantum and the body directory are not
//! in the file: they depend on the machine (its cores, what else runs on it, its filesystems),
//! not the site, so they come only from `BANTIN_WORKERS`, `BANTIN_YIELD_US` and
//! `BANTIN_BODY_DIR`. They are still read here, at parse, and carried in
//! [`ServerConfig`] rather than read by the HTTP layer itself, so that `Config` is the one source
//! the server is built from and `load_with_env`'s closure decides them like everything else.
//!
//! A value of either variable that is not a number (or a worker count of 0) falls back to the
//! default rather than stopping the start, as it always has: both are tuning knobs whose default
//! is always safe, unlike `BANTIN_LISTEN` or `BANTIN_DATABASE_URL`, whose bad values are errors.
//! The defaults live in [`ServerConfig`]'s `Default` impl alone, and parsing starts from it.

use std::time::Duration;

use super::common::ConfigError;
use super::env::Env;
use super::raw::{RawDuration, RawServer};

/// The default busy quantum of an HTTP worker, in microseconds (about what nginx's event loop
/// goes between `epoll_wait`s under load); see `http::edge::share_core`.
pub const DEFAULT_YIELD_US: u64 = 1000;

/// Deadlines and bounds of the HTTP edge (`[server]`): what a slow, silent or hostile client may
/// hold, and for how long. The defaults are what a reviewer of an nginx configuration expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// A request head must be complete this long after the connection opened (first request) or
    /// after its first byte arrived (later requests on a keep-alive connection).
    pub head_timeout: Duration,
    /// A keep-alive connection with no byte of a next request is closed after this long.
    pub idle_timeout: Duration,
    /// A response that makes no progress (the client reads nothing) for this long is abandoned.
    pub send_timeout: Duration,
    /// A request body that makes no progress for this long is abandoned.
    pub body_timeout: Duration,
    /// Open connections at most (all workers together); the effective cap is also kept below the
    /// open-file limit at start.
    pub max_connections: usize,
    /// Largest request head (request line and headers); larger gets 431 and a close.
    pub max_head_bytes: usize,
    /// Threads serving HTTP, each with its own runtime and listening socket (`BANTIN_WORKERS`;
    /// one per available core by default). The store's pools and the feed cache follow it.
    pub workers: usize,
    /// How long (µs) a worker may stay busy before it offers its core to other threads
    /// (`BANTIN_YIELD_US`; 0: never yield).
    pub yield_us: u64,
    /// Where the bodies of large cached representations live (`BANTIN_BODY_DIR`): unlinked
    /// files in this directory instead of memfds; see `render::set_body_dir` for why and the
    /// price. Checked when serving starts.
    pub body_dir: Option<std::path::PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_head_bytes: 16 * 1024,
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            yield_us: DEFAULT_YIELD_US,
            body_dir: None,
        }
    }
}

pub(super) fn validate_server(
    raw: &RawServer,
    env: &Env,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<ServerConfig, ConfigError> {
    let d = ServerConfig::default();
    let duration = |key: &str, v: &Option<RawDuration>, default: Duration| match v {
        Some(v) => v.parse().map_err(|p| err(&format!("server.{key}"), p)),
        None => Ok(default),
    };
    let max_connections = match raw.max_connections {
        Some(n) if (1..=10_000_000).contains(&n) => n as usize,
        Some(n) => {
            return Err(err(
                "server.max_connections",
                format!("{n} is outside 1..=10000000"),
            ));
        }
        None => d.max_connections,
    };
    let max_head_bytes = match raw.max_head_bytes {
        Some(n) if (8192..=65536).contains(&n) => n as usize,
        Some(n) => {
            return Err(err(
                "server.max_head_bytes",
                format!("{n} is outside 8192..=65536"),
            ));
        }
        None => d.max_head_bytes,
    };
    let workers = env
        .workers()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(d.workers);
    let yield_us = env
        .yield_us()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(d.yield_us);
    Ok(ServerConfig {
        head_timeout: duration("head_timeout", &raw.head_timeout, d.head_timeout)?,
        idle_timeout: duration("idle_timeout", &raw.idle_timeout, d.idle_timeout)?,
        send_timeout: duration("send_timeout", &raw.send_timeout, d.send_timeout)?,
        body_timeout: duration("body_timeout", &raw.body_timeout, d.body_timeout)?,
        max_connections,
        max_head_bytes,
        workers,
        yield_us,
        body_dir: env.body_dir().map(std::path::PathBuf::from),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::testing::{MINIMAL, parse, parse_err};
    use crate::config::{Config, DEFAULT_YIELD_US, ServerConfig};

    #[test]
    fn server_deadlines_take_seconds_or_humantime() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.server, ServerConfig::default());
        assert_eq!(c.server.head_timeout, Duration::from_secs(10));
        let c = parse(&format!(
            "{MINIMAL}[server]\nhead_timeout = 3\nidle_timeout = \"2m\"\nsend_timeout = \"500ms\"\nmax_connections = 100\n"
        ))
        .unwrap();
        assert_eq!(c.server.head_timeout, Duration::from_secs(3));
        assert_eq!(c.server.idle_timeout, Duration::from_secs(120));
        assert_eq!(c.server.send_timeout, Duration::from_millis(500));
        assert_eq!(c.server.max_connections, 100);
        let e = parse_err(&format!("{MINIMAL}[server]\nidle_timeout = \"soon\"\n"));
        assert_eq!(e.key, "server.idle_timeout");
        assert!(e.problem.contains("soon"), "{e}");
        let e = parse_err(&format!("{MINIMAL}[server]\nhead_timeout = 0\n"));
        assert_eq!(e.key, "server.head_timeout");
        let e = parse_err(&format!("{MINIMAL}[server]\nmax_head_bytes = 1000000\n"));
        assert_eq!(e.key, "server.max_head_bytes");
    }

    fn with_env(workers: &str, yield_us: &str) -> ServerConfig {
        let (workers, yield_us) = (workers.to_string(), yield_us.to_string());
        Config::parse(MINIMAL, "site.toml", Path::new("."), |k| match k {
            "BANTIN_WORKERS" => Some(workers.clone()),
            "BANTIN_YIELD_US" => Some(yield_us.clone()),
            _ => None,
        })
        .unwrap()
        .server
    }

    #[test]
    fn workers_and_yield_quantum_come_from_the_given_environment_only() {
        let s = with_env("3", "250");
        assert_eq!((s.workers, s.yield_us), (3, 250));
        assert_eq!(with_env("3", "0").yield_us, 0, "0 turns yielding off");

        // Not the process environment: the closure decides, and here it says nothing.
        let d = ServerConfig::default();
        let c = parse(MINIMAL).unwrap();
        assert_eq!(
            (c.server.workers, c.server.yield_us),
            (d.workers, DEFAULT_YIELD_US)
        );
        assert!(d.workers >= 1);

        // A bad value falls back to the default instead of failing the start.
        for bad in ["0", "abc", "", " 4", "-1"] {
            assert_eq!(
                with_env(bad, "250").workers,
                d.workers,
                "BANTIN_WORKERS={bad:?}"
            );
        }
        for bad in ["abc", "", "-5", "1.5"] {
            assert_eq!(
                with_env("3", bad).yield_us,
                DEFAULT_YIELD_US,
                "BANTIN_YIELD_US={bad:?}"
            );
        }
    }

    #[test]
    fn the_body_dir_comes_from_the_environment_and_is_off_by_default() {
        let with = |v: &'static str| {
            Config::parse(MINIMAL, "site.toml", Path::new("."), move |k| {
                (k == "BANTIN_BODY_DIR").then(|| v.to_string())
            })
            .unwrap()
            .server
            .body_dir
        };
        assert_eq!(with("/var/tmp"), Some(std::path::PathBuf::from("/var/tmp")));
        assert_eq!(with(""), None, "empty is unset: bodies stay in memfds");
        assert_eq!(parse(MINIMAL).unwrap().server.body_dir, None);
    }
}
