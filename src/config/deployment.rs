//! Where this instance runs: `public_url`, `listen` and `database_url`.
//!
//! These three top-level keys differ per deployment rather than per site (every replica reads the
//! same `site.toml` but may bind and connect differently), so each has a `BANTIN_*` override that
//! wins over the file; they are kept together because they are checked the same way, override
//! first, and their error keys name both (`listen (or BANTIN_LISTEN)`).

use std::net::SocketAddr;

use url::Url;

use super::common::ConfigError;
use super::common::parse_http_url;
use super::env::{self, Env};
use super::raw::RawConfig;

/// The address served on when neither the file nor `BANTIN_LISTEN` says (also where
/// `bantin healthcheck` looks then).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Used when neither the file nor `BANTIN_DATABASE_URL` says, so `cargo run` works out of the box.
const DEFAULT_DATABASE_URL: &str = "sqlite://data/bantin.db";

/// The checked deployment keys, before they become fields of [`Config`](super::Config).
pub(super) struct Deployment {
    pub(super) public_url: Option<Url>,
    pub(super) listen: SocketAddr,
    pub(super) database_url: String,
}

pub(super) fn validate_deployment(
    raw: &RawConfig,
    env: &Env,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<Deployment, ConfigError> {
    let public_url = match env.public_url().or_else(|| raw.public_url.clone()) {
        Some(u) => Some(
            parse_http_url(&u)
                .map_err(|p| err(&format!("public_url (or {})", env::PUBLIC_URL), p))?,
        ),
        None => None,
    };
    let listen = env
        .listen()
        .or_else(|| raw.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen: SocketAddr = listen.parse().map_err(|_| {
        err(
            &format!("listen (or {})", env::LISTEN),
            format!("`{listen}` is not an address:port such as 127.0.0.1:8080"),
        )
    })?;
    let database_url = env
        .database_url()
        .or_else(|| raw.database_url.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        return Err(err(
            &format!("database_url (or {})", env::DATABASE_URL),
            format!("`{database_url}` is neither sqlite://PATH nor postgres://…"),
        ));
    }
    Ok(Deployment {
        public_url,
        listen,
        database_url,
    })
}
