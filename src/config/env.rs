//! The `BANTIN_*` environment variables: every one the program reads is named here, and read
//! only through here.
//!
//! The environment carries what differs per deployment (addresses, database, secrets) and a few
//! process knobs (worker threads, the yield quantum, where bodies live). Keeping every name in
//! one file gives one place to see what a deployment can set, and keeps the variables from being
//! read behind `Config`'s back: [`Config::parse`](super::Config::parse) reads them all through
//! `Env`, which wraps whatever source it is given, the process environment for `load` or a test's
//! closure for `load_with_env`, so a test sees exactly the environment it wrote and nothing of
//! the machine's.
//!
//! `Env` only reads and does the trimming and "empty means unset" each variable has always had;
//! what a value means, whether it is valid and which file key it overrides stay with the section
//! it belongs to, so a variable and its TOML key are checked by the same code.
//!
//! Two names are used outside `Config::parse`: [`CONFIG`], read by the command line parser
//! (it says which file to parse, so it cannot come from the file), and `BANTIN_LISTEN` again in
//! [`listen_override`], for `bantin healthcheck`, which must work even when the file fails to load.

/// The configuration file's path (the `--config` option's variable).
pub const CONFIG: &str = "BANTIN_CONFIG";
/// `public_url`.
pub(super) const PUBLIC_URL: &str = "BANTIN_PUBLIC_URL";
/// `listen`.
pub(super) const LISTEN: &str = "BANTIN_LISTEN";
/// `database_url`.
pub(super) const DATABASE_URL: &str = "BANTIN_DATABASE_URL";
/// `[websub] hubs`, comma-separated.
pub(super) const WEBSUB_HUBS: &str = "BANTIN_WEBSUB_HUBS";
/// `[cdn] purge_urls`, comma-separated.
pub(super) const CDN_PURGE_URLS: &str = "BANTIN_CDN_PURGE_URLS";
/// `[cdn] purge_kind`.
pub(super) const CDN_PURGE_KIND: &str = "BANTIN_CDN_PURGE_KIND";
/// One API token (secrets have no key in the file).
pub(super) const API_TOKEN: &str = "BANTIN_API_TOKEN";
/// A file of API tokens, one per line.
pub(super) const API_TOKEN_FILE: &str = "BANTIN_API_TOKEN_FILE";
/// `[readership] count`, as on/off.
pub(super) const READERSHIP: &str = "BANTIN_READERSHIP";
/// HTTP worker threads (no key in the file: it is about the machine, not the site).
pub(super) const WORKERS: &str = "BANTIN_WORKERS";
/// Busy quantum of an HTTP worker, in microseconds (no key in the file either).
pub(super) const YIELD_US: &str = "BANTIN_YIELD_US";
/// Directory for the bodies of cached feeds instead of memfds (no key in the file either).
pub(super) const BODY_DIR: &str = "BANTIN_BODY_DIR";

/// The process environment, the source [`Config::load`](super::Config::load) gives `parse`.
pub(super) fn process(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `BANTIN_LISTEN` straight from the process environment, for `bantin healthcheck`: it must find
/// the server even when `site.toml` does not load, so it cannot go through
/// [`Config`](super::Config). An empty value is unset, as on the parse path, so the check
/// looks where `serve` listens.
pub fn listen_override() -> Option<String> {
    std::env::var(LISTEN).ok().filter(|v| !v.is_empty())
}

/// The environment as `Config::parse` sees it.
pub(super) struct Env<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub(super) fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Env<'a> {
        Env { get }
    }

    /// A variable set to the empty string counts as unset, so an `ENV X=` left in a unit file or
    /// compose file does not override the file with nothing.
    fn non_empty(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.is_empty())
    }

    /// Here a set but empty variable is an empty list: it overrides the file's list with none.
    fn list(&self, name: &str) -> Option<Vec<String>> {
        (self.get)(name).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
    }

    pub(super) fn public_url(&self) -> Option<String> {
        self.non_empty(PUBLIC_URL)
    }

    pub(super) fn listen(&self) -> Option<String> {
        self.non_empty(LISTEN)
    }

    pub(super) fn database_url(&self) -> Option<String> {
        self.non_empty(DATABASE_URL)
    }

    pub(super) fn websub_hubs(&self) -> Option<Vec<String>> {
        self.list(WEBSUB_HUBS)
    }

    pub(super) fn cdn_purge_urls(&self) -> Option<Vec<String>> {
        self.list(CDN_PURGE_URLS)
    }

    /// Trimmed; set but empty is still a value (and an invalid one).
    pub(super) fn cdn_purge_kind(&self) -> Option<String> {
        (self.get)(CDN_PURGE_KIND).map(|v| v.trim().to_string())
    }

    /// Trimmed; empty after trimming means no token.
    pub(super) fn api_token(&self) -> Option<String> {
        (self.get)(API_TOKEN)
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    }

    pub(super) fn api_token_file(&self) -> Option<String> {
        self.non_empty(API_TOKEN_FILE)
    }

    pub(super) fn readership(&self) -> Option<String> {
        self.non_empty(READERSHIP)
    }

    /// Untrimmed, as it has always been read.
    pub(super) fn workers(&self) -> Option<String> {
        (self.get)(WORKERS)
    }

    /// Untrimmed, as it has always been read.
    pub(super) fn yield_us(&self) -> Option<String> {
        (self.get)(YIELD_US)
    }

    pub(super) fn body_dir(&self) -> Option<String> {
        self.non_empty(BODY_DIR)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::config::testing::MINIMAL;

    #[test]
    fn environment_overrides_the_file() {
        let text = format!("{MINIMAL}\n[websub]\nhubs = [\"https://hub.example/\"]\n");
        let c = Config::parse(&text, "site.toml", Path::new("."), |k| match k {
            "BANTIN_LISTEN" => Some("0.0.0.0:9000".into()),
            "BANTIN_PUBLIC_URL" => Some("https://feeds.example/".into()),
            "BANTIN_DATABASE_URL" => Some("postgres://db/bantin".into()),
            "BANTIN_WEBSUB_HUBS" => Some("https://a.example/, https://b.example/".into()),
            "BANTIN_API_TOKEN" => Some("0123456789abcdef0123".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.public_url.unwrap().as_str(), "https://feeds.example/");
        assert_eq!(c.database_url, "postgres://db/bantin");
        assert_eq!(c.hubs.len(), 2);
        assert_eq!(c.api.tokens, vec!["0123456789abcdef0123".to_string()]);
    }

    #[test]
    fn bad_environment_is_named() {
        let e = Config::parse(MINIMAL, "site.toml", Path::new("."), |k| {
            (k == "BANTIN_LISTEN").then(|| "localhost".to_string())
        })
        .unwrap_err();
        assert_eq!(e.key, "listen (or BANTIN_LISTEN)");
        let e = Config::parse(MINIMAL, "site.toml", Path::new("."), |k| {
            (k == "BANTIN_DATABASE_URL").then(|| "mysql://x".to_string())
        })
        .unwrap_err();
        assert!(e.key.contains("BANTIN_DATABASE_URL"));
        let e = Config::parse(MINIMAL, "site.toml", Path::new("."), |k| {
            (k == "BANTIN_API_TOKEN").then(|| "s3cr3t-x".to_string())
        })
        .unwrap_err();
        assert!(e.problem.contains("shorter than 16"), "{e}");
        assert!(
            !e.to_string().contains("s3cr3t-x"),
            "the token must not be echoed"
        );
    }
}
