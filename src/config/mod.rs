//! `site.toml` plus environment → a validated [`Config`].
//!
//! The file describes the site (names per language, categories and their slugs, page size,
//! cache policy, hubs); the environment overrides what differs per deployment (listen address,
//! database, public URL, API tokens, hubs). Everything is checked here, once, so the rest of the
//! program can trust a `Config`: bad configuration stops the start with a message naming the
//! file, the key and the problem, rather than surfacing later as a 500 or a malformed feed.
//!
//! The raw TOML shape (`raw::Raw*`) is kept private and separate from the validated types, so
//! that "parse, don't validate" holds for the file and its `BANTIN_*` overrides: no code outside
//! this module sees an unchecked value of them. Every `BANTIN_*` variable is read in
//! [`mod@env`], and during [`Config::parse`] only from the source it is given, so
//! [`Config::load_with_env`] with a closure decides the whole configuration, the HTTP workers'
//! process knobs included ([`ServerConfig::workers`], [`ServerConfig::yield_us`]).
//!
//! One module per section of the file, each holding its public type(s), their `Default` (the
//! only place a default is written: the parse path starts from it) and the function that checks
//! the section: `site` (the site, its languages, categories and `[opml]`), `deployment`
//! (`public_url`, `listen`, `database_url`), `cache`, `websub`, `cdn`, `api`, `server`,
//! `access` (with `[[partners]]`), `readership` and `upstream` (with `[[sources]]`). The section
//! modules are private and their types re-exported here, so every type keeps its
//! `crate::config::X` path. [`Config::parse`] only calls them in turn and assembles the result.

mod access;
mod api;
mod cache;
mod cdn;
mod common;
mod deployment;
pub mod env;
mod raw;
mod readership;
mod server;
mod site;
mod upstream;
mod websub;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use url::Url;

use crate::clock::SiteZone;

pub use access::{AccessConfig, Partner, PublicContent, parse_sha256_hex};
pub use api::ApiConfig;
pub use cache::CacheConfig;
pub use cdn::PurgeKind;
pub use common::ConfigError;
pub use deployment::DEFAULT_LISTEN;
pub use readership::ReadershipConfig;
pub use server::{DEFAULT_YIELD_US, ServerConfig};
pub use site::{Category, Language, OpmlConfig};
pub use upstream::{SourceConfig, SourceContent, UpstreamConfig};
pub use websub::WebSubConfig;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages).
    pub file: PathBuf,
    /// The news site's own base URL; relative article URLs resolve against it.
    pub base_url: Url,
    /// Public URL of this service for self links; `None` means `http://` + the bound address
    /// (`serve` fills it in once it knows the address).
    pub public_url: Option<Url>,
    /// The `tag:` URI authority (`baolongan.example,2026`) that makes entry and feed ids. It must
    /// never change once feeds are out, even when the domain does, so it is its own setting.
    pub tag_authority: String,
    pub listen: SocketAddr,
    pub database_url: String,
    pub zone: SiteZone,
    pub languages: Vec<Language>,
    pub categories: Vec<Category>,
    pub items_per_feed: usize,
    /// Directory of article files synced into the store at start, if any.
    pub articles_dir: Option<PathBuf>,
    pub cache: CacheConfig,
    /// What the lists of feeds name (`[opml]`).
    pub opml: OpmlConfig,
    /// External WebSub hubs pinged after each write (`[websub] hubs`).
    pub hubs: Vec<Url>,
    /// The built-in WebSub hub (`[websub]`).
    pub websub: WebSubConfig,
    /// Receivers of a purge request after each write (`[cdn] purge_urls`).
    pub purge_urls: Vec<Url>,
    /// What that request looks like (`[cdn] purge_kind`).
    pub purge_kind: PurgeKind,
    pub api: ApiConfig,
    pub server: ServerConfig,
    /// Who gets which variant of a feed (`[access]`).
    pub access: AccessConfig,
    /// Partner sites allowed the full-text variant (`[[partners]]`).
    pub partners: Vec<Partner>,
    /// Poll counting (`[readership]`).
    pub readership: ReadershipConfig,
    /// Upstream feeds aggregated into the site's feeds (`[[sources]]`).
    pub sources: Vec<SourceConfig>,
    /// How upstream feeds are fetched (`[upstream]`).
    pub upstream: UpstreamConfig,
}

impl Config {
    /// Reads `path` and applies overrides from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, env::process)
    }

    /// Reads `path`, taking environment overrides from `env` (tests pass a closure).
    pub fn load_with_env(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            key: "(file)".into(),
            problem: format!("cannot read: {e}"),
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &file, dir, env)
    }

    /// Parses TOML text; `dir` anchors relative paths in it. `env` is the only environment read:
    /// every `BANTIN_*` override, and the workers' process knobs, come from it.
    pub fn parse(
        text: &str,
        file: &str,
        dir: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let err = |key: &str, problem: String| ConfigError {
            file: file.to_string(),
            key: key.to_string(),
            problem,
        };
        let env = env::Env::new(&env);
        let raw = raw::from_toml(text, &err)?;

        let site = site::validate_site(&raw, dir, &err)?;
        let deployment = deployment::validate_deployment(&raw, &env, &err)?;
        let cache = cache::validate_cache(&raw.cache, &err)?;
        let (hubs, websub) = websub::validate_websub(&raw.websub, &env, &err)?;
        let (purge_urls, purge_kind) = cdn::validate_cdn(&raw.cdn, &env, &err)?;
        let api = api::validate_api(&raw.api, &env, &err)?;
        let server = server::validate_server(&raw.server, &env, &err)?;
        let opml = site::validate_opml(&raw.opml, &err)?;
        let access = access::validate_access(&raw.access, &err)?;
        let partners = access::validate_partners(&raw.partners, &err)?;
        let readership = readership::validate_readership(&raw.readership, &env, &err)?;
        let sources =
            upstream::validate_sources(&raw.sources, &site.languages, &site.categories, &err)?;
        let upstream = upstream::validate_upstream(&raw.upstream, &err)?;

        Ok(Config {
            file: PathBuf::from(file),
            base_url: site.base_url,
            tag_authority: site.tag_authority,
            public_url: deployment.public_url,
            listen: deployment.listen,
            database_url: deployment.database_url,
            zone: site.zone,
            languages: site.languages,
            categories: site.categories,
            items_per_feed: site.items_per_feed,
            articles_dir: site.articles_dir,
            cache,
            opml,
            hubs,
            websub,
            purge_urls,
            purge_kind,
            api,
            server,
            access,
            partners,
            readership,
            sources,
            upstream,
        })
    }

    /// The built-in hub's URL (`{public base}websub`), when it runs.
    pub fn builtin_hub(&self) -> Option<Url> {
        self.websub.builtin.then(|| {
            self.public_base()
                .join("websub")
                .expect("a relative path joins")
        })
    }

    /// The hubs every feed advertises: the built-in one first (the one this site answers for),
    /// then the external ones.
    pub fn advertised_hubs(&self) -> Vec<Url> {
        self.builtin_hub()
            .into_iter()
            .chain(self.hubs.iter().cloned())
            .collect()
    }

    /// The public base URL self links are built on, always ending in `/`.
    pub fn public_base(&self) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{}/", self.listen)).expect("a socket address makes a URL")
        })
    }

    pub fn language(&self, code: &str) -> Option<&Language> {
        self.languages.iter().find(|l| l.code == code)
    }

    pub fn category(&self, id: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.id == id)
    }

    pub fn category_by_slug(&self, lang: &str, slug: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.slug(lang) == slug)
    }

    /// A short human list of the configured languages, for 404 messages.
    pub fn language_list(&self) -> String {
        self.languages
            .iter()
            .map(|l| l.code.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the section modules' tests share: a minimal valid file and parsing without environment.
#[cfg(test)]
mod testing {
    use std::path::Path;

    use super::{Config, ConfigError};

    pub(super) const MINIMAL: &str = r#"
base_url = "https://baolongan.example"
languages = ["vi", "en"]
[site.vi]
name = "Báo Long An"
[site.en]
name = "Long An Newspaper"
[[categories]]
id = "quoc-phong"
name = { vi = "Quốc phòng", en = "Defence" }
"#;

    pub(super) fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "feeds/site.toml", Path::new("feeds"), |_| None)
    }

    pub(super) fn parse_err(text: &str) -> ConfigError {
        parse(text).expect_err("config should be rejected")
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Config;
    use super::testing::{MINIMAL, parse};

    #[test]
    fn minimal_config_gets_defaults_and_folded_slugs() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.items_per_feed, 50);
        assert_eq!(c.zone.name(), "Asia/Ho_Chi_Minh");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.database_url, "sqlite://data/bantin.db");
        let cat = c.category("quoc-phong").unwrap();
        assert_eq!(cat.slug("vi"), "quoc-phong");
        assert_eq!(cat.slug("en"), "defence");
        assert_eq!(cat.name("vi"), "Quốc phòng");
        assert!(c.api.tokens.is_empty());
        assert_eq!(c.tag_authority, "baolongan.example,2026");
        assert_eq!(c.public_base().as_str(), "http://127.0.0.1:8080/");
    }

    #[test]
    fn the_shipped_site_toml_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds/site.toml");
        let c = Config::load_with_env(&path, |_| None).unwrap();
        assert!(c.categories.len() >= 6);
        assert_eq!(c.languages.len(), 2);
    }
}
