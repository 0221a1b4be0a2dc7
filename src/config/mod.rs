//! `site.toml` plus environment → a validated [`Config`].
//!
//! The file describes the site (names per language, categories and their slugs, page size,
//! cache policy, hubs); the environment overrides what differs per deployment (listen address,
//! database, public URL, API tokens, hubs). Everything is checked here, once, so the rest of the
//! program can trust a `Config`: bad configuration stops the start with a message naming the
//! file, the key and the problem, rather than surfacing later as a 500 or a malformed feed.
//!
//! The raw TOML shape (`Raw*`) is kept private and separate from the validated types, so that
//! "parse, don't validate" holds for the file and its `BANTIN_*` overrides: no code outside this
//! module sees an unchecked value of them. (Three process-level knobs are read where they act:
//! `BANTIN_WORKERS` by [`worker_count`], `BANTIN_YIELD_US` by each HTTP worker, `BANTIN_LISTEN`
//! by `healthcheck`, which must work without a valid file.)

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::clock::SiteZone;
use crate::text::slug;

/// A configuration problem: which file, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {problem}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub problem: String,
}

/// One configured language with the site's name and description in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Language {
    /// BCP 47 tag, lower case (`vi`, `en`).
    pub code: String,
    pub site_name: String,
    pub description: String,
}

/// A category: one stable id, a name and a URL slug per language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Category {
    pub id: String,
    names: BTreeMap<String, String>,
    slugs: BTreeMap<String, String>,
}

impl Category {
    /// The category's name in `lang` (every configured language has one; checked at load).
    pub fn name(&self, lang: &str) -> &str {
        self.names.get(lang).map(String::as_str).unwrap_or(&self.id)
    }

    /// The category's URL slug in `lang`.
    pub fn slug(&self, lang: &str) -> &str {
        self.slugs.get(lang).map(String::as_str).unwrap_or(&self.id)
    }
}

/// Cache sizing and the `Cache-Control` policy given to pollers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    pub max_bytes: u64,
    pub ttl_secs: u64,
    pub max_age: u64,
    pub stale_while_revalidate: u64,
    pub stale_if_error: u64,
}

/// What the lists of feeds (`/feeds.opml`, a partner's OPML, the HTML index `/`) name (`[opml]`).
/// The configured feeds (each language and category) are always listed; then tags and bylines
/// with at least `min_articles` visible articles, the most used first, until the list holds
/// `max_outlines` feeds. So a corpus of half a million tags and bylines still makes a list of a
/// few thousand outlines (about 300 bytes each), cached in `[cache] max_bytes` like any feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlConfig {
    pub max_outlines: usize,
    pub min_articles: u64,
}

impl Default for OpmlConfig {
    fn default() -> Self {
        OpmlConfig {
            max_outlines: 5_000,
            min_articles: 2,
        }
    }
}

/// Limits of the publishing API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Bearer tokens; empty means the write API is off.
    pub tokens: Vec<String>,
    pub max_article_bytes: usize,
    pub max_batch_bytes: usize,
}

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
        }
    }
}

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

/// What an aggregated item carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceContent {
    /// Title, summary and a link back (the default: republishing needs no rights).
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

/// What the public variant of a feed carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicContent {
    /// The full article HTML, as partners get it (the default: today's behaviour).
    Full,
    /// Title, summary, image and link only; `content:encoded` / `content_html` are left out.
    Summary,
}

/// `[access]`: the public variant, and which peers may speak for the client (`X-Forwarded-For`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    pub public_content: PublicContent,
    /// Proxies (load balancers, CDNs) whose `X-Forwarded-For` is believed; a client address is
    /// read from that header only when the connection comes from one of these networks.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            public_content: PublicContent::Full,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A partner site syndicating full articles. The configuration holds only the SHA-256 of its key,
/// so a leaked `site.toml` (or a repository holding it) gives nobody the full text.
#[derive(Clone, PartialEq, Eq)]
pub struct Partner {
    /// Stable id, shown in readership figures (`baomoi`).
    pub id: String,
    pub name: String,
    pub key_sha256: [u8; 32],
}

impl std::fmt::Debug for Partner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hash is not a secret, but it has no business in logs either.
        f.debug_struct("Partner")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

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

/// Path segments a category slug may not take, because feed URLs use them.
const RESERVED_SLUGS: &[&str] = &["tag", "author", "api", "rss.xml", "atom.xml", "feed.json"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    base_url: String,
    tag_authority: Option<String>,
    public_url: Option<String>,
    listen: Option<String>,
    database_url: Option<String>,
    timezone: Option<String>,
    languages: Vec<String>,
    items_per_feed: Option<i64>,
    articles_dir: Option<String>,
    site: BTreeMap<String, RawSite>,
    #[serde(default)]
    categories: Vec<RawCategory>,
    #[serde(default)]
    cache: RawCache,
    #[serde(default)]
    opml: RawOpml,
    #[serde(default)]
    websub: RawWebSub,
    #[serde(default)]
    cdn: RawCdn,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    access: RawAccess,
    #[serde(default)]
    partners: Vec<RawPartner>,
    #[serde(default)]
    readership: RawReadership,
    #[serde(default)]
    sources: Vec<RawSource>,
    #[serde(default)]
    upstream: RawUpstream,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    id: String,
    url: String,
    lang: String,
    category: String,
    every: RawDuration,
    content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    concurrency: Option<i64>,
    per_host: Option<i64>,
    connect_timeout: Option<RawDuration>,
    timeout: Option<RawDuration>,
    max_body_bytes: Option<i64>,
    max_backoff: Option<RawDuration>,
    allow_private: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServer {
    head_timeout: Option<RawDuration>,
    idle_timeout: Option<RawDuration>,
    send_timeout: Option<RawDuration>,
    body_timeout: Option<RawDuration>,
    max_connections: Option<i64>,
    max_head_bytes: Option<i64>,
}

/// A duration in TOML: whole seconds (`10`) or a humantime string (`"10s"`, `"500ms"`, `"2m"`).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDuration {
    Seconds(i64),
    Text(String),
}

impl RawDuration {
    fn parse(&self) -> Result<Duration, String> {
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
struct RawAccess {
    public_content: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartner {
    id: String,
    name: String,
    key_sha256: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReadership {
    count: Option<bool>,
    /// Seconds.
    flush_interval: Option<u64>,
    keep_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    id: String,
    name: BTreeMap<String, String>,
    #[serde(default)]
    slug: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCache {
    max_bytes: Option<u64>,
    ttl: Option<u64>,
    max_age: Option<u64>,
    stale_while_revalidate: Option<u64>,
    stale_if_error: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawOpml {
    max_outlines: Option<i64>,
    min_articles: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawWebSub {
    #[serde(default)]
    hubs: Vec<String>,
    builtin: Option<bool>,
    allow_private_callbacks: Option<bool>,
    max_subscriptions: Option<i64>,
    max_subscriptions_per_host: Option<i64>,
    verifications_per_minute: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCdn {
    #[serde(default)]
    purge_urls: Vec<String>,
    purge_kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawApi {
    max_article_bytes: Option<usize>,
    max_batch_bytes: Option<usize>,
}

impl Config {
    /// Reads `path` and applies overrides from the process environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, |k| std::env::var(k).ok())
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

    /// Parses TOML text; `dir` anchors relative paths in it.
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
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            // toml's message carries the line, column and the offending key or value.
            let key = e
                .span()
                .map(|s| {
                    let line = text[..s.start].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "(syntax)".into());
            err(&key, e.message().to_string())
        })?;

        let base_url = parse_http_url(&raw.base_url).map_err(|p| err("base_url", p))?;
        let tag_authority = match raw.tag_authority {
            Some(a) => {
                if !is_tag_authority(&a) {
                    return Err(err(
                        "tag_authority",
                        format!(
                            "`{a}` is not a tag URI authority: a domain or email, a comma, and a date such as baolongan.example,2026"
                        ),
                    ));
                }
                a
            }
            None => format!("{},2026", base_url.host_str().unwrap_or("localhost")),
        };
        let env_or = |name: &str, v: Option<String>| env(name).filter(|s| !s.is_empty()).or(v);

        let public_url = match env_or("BANTIN_PUBLIC_URL", raw.public_url) {
            Some(u) => {
                Some(parse_http_url(&u).map_err(|p| err("public_url (or BANTIN_PUBLIC_URL)", p))?)
            }
            None => None,
        };
        let listen = env_or("BANTIN_LISTEN", raw.listen).unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen.parse().map_err(|_| {
            err(
                "listen (or BANTIN_LISTEN)",
                format!("`{listen}` is not an address:port such as 127.0.0.1:8080"),
            )
        })?;
        let database_url = env_or("BANTIN_DATABASE_URL", raw.database_url)
            .unwrap_or_else(|| "sqlite://data/bantin.db".into());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(err(
                "database_url (or BANTIN_DATABASE_URL)",
                format!("`{database_url}` is neither sqlite://PATH nor postgres://…"),
            ));
        }

        let tz_name = raw.timezone.unwrap_or_else(|| "Asia/Ho_Chi_Minh".into());
        let zone = SiteZone::from_name(&tz_name).ok_or_else(|| {
            err(
                "timezone",
                format!("`{tz_name}` is not a tz database zone such as Asia/Ho_Chi_Minh"),
            )
        })?;

        if raw.languages.is_empty() {
            return Err(err("languages", "at least one language is needed".into()));
        }
        let mut languages = Vec::new();
        for (i, code) in raw.languages.iter().enumerate() {
            let key = format!("languages[{i}]");
            if !is_language_tag(code) {
                return Err(err(
                    &key,
                    format!("`{code}` is not a BCP 47 language tag such as vi or en"),
                ));
            }
            if languages.iter().any(|l: &Language| l.code == *code) {
                return Err(err(&key, format!("`{code}` is listed twice")));
            }
            let site = raw.site.get(code).ok_or_else(|| {
                err(
                    &format!("site.{code}"),
                    format!("missing: every language needs a [site.{code}] table with a name"),
                )
            })?;
            let name = crate::text::clean_line(&site.name);
            if name.is_empty() {
                return Err(err(
                    &format!("site.{code}.name"),
                    "must not be empty".into(),
                ));
            }
            languages.push(Language {
                code: code.clone(),
                site_name: name,
                description: crate::text::clean_line(&site.description),
            });
        }
        if let Some(extra) = raw.site.keys().find(|k| !raw.languages.contains(k)) {
            return Err(err(
                &format!("site.{extra}"),
                format!("`{extra}` is not in `languages`"),
            ));
        }

        let items_per_feed = raw.items_per_feed.unwrap_or(50);
        if !(1..=1000).contains(&items_per_feed) {
            return Err(err(
                "items_per_feed",
                format!("{items_per_feed} is outside 1..=1000"),
            ));
        }

        let categories = validate_categories(&raw.categories, &raw.languages, &err)?;
        let languages_and_categories = (
            raw.languages.clone(),
            categories.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        );

        let cache = CacheConfig {
            max_bytes: raw.cache.max_bytes.unwrap_or(256 << 20),
            ttl_secs: raw.cache.ttl.unwrap_or(600),
            max_age: raw.cache.max_age.unwrap_or(60),
            stale_while_revalidate: raw.cache.stale_while_revalidate.unwrap_or(300),
            stale_if_error: raw.cache.stale_if_error.unwrap_or(86_400),
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

        let (hub_list, hub_key) = match env("BANTIN_WEBSUB_HUBS") {
            Some(v) => (
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                "BANTIN_WEBSUB_HUBS",
            ),
            None => (raw.websub.hubs.clone(), "websub.hubs"),
        };
        let hubs = hub_list
            .iter()
            .map(|h| parse_http_url(h).map_err(|p| err(hub_key, p)))
            .collect::<Result<Vec<_>, _>>()?;

        let (purge_list, purge_key) = match env("BANTIN_CDN_PURGE_URLS") {
            Some(v) => (
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                "BANTIN_CDN_PURGE_URLS".to_string(),
            ),
            None => (raw.cdn.purge_urls, String::new()),
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
        let purge_kind = match env("BANTIN_CDN_PURGE_KIND") {
            Some(v) => PurgeKind::parse(v.trim()).map_err(|p| err("BANTIN_CDN_PURGE_KIND", p))?,
            None => match raw.cdn.purge_kind.as_deref() {
                None => PurgeKind::default(),
                Some(v) => PurgeKind::parse(v).map_err(|p| err("cdn.purge_kind", p))?,
            },
        };

        let tokens = api_tokens(&env).map_err(|(k, p)| err(&k, p))?;
        let api = ApiConfig {
            tokens,
            max_article_bytes: raw.api.max_article_bytes.unwrap_or(1 << 20),
            max_batch_bytes: raw.api.max_batch_bytes.unwrap_or(256 << 20),
        };

        let server = validate_server(&raw.server, &err)?;

        Ok(Config {
            file: PathBuf::from(file),
            base_url,
            tag_authority,
            public_url,
            listen,
            database_url,
            zone,
            languages,
            categories,
            items_per_feed: items_per_feed as usize,
            articles_dir: raw.articles_dir.map(|d| dir.join(d)),
            cache,
            opml: validate_opml(&raw.opml, &err)?,
            hubs,
            websub: validate_websub(&raw.websub, &err)?,
            purge_urls,
            purge_kind,
            api,
            server,
            access: validate_access(&raw.access, &err)?,
            partners: validate_partners(&raw.partners, &err)?,
            readership: validate_readership(&raw.readership, &env, &err)?,
            sources: validate_sources(&raw.sources, &languages_and_categories, &err)?,
            upstream: validate_upstream(&raw.upstream, &err)?,
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

fn validate_server(
    raw: &RawServer,
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
    Ok(ServerConfig {
        head_timeout: duration("head_timeout", &raw.head_timeout, d.head_timeout)?,
        idle_timeout: duration("idle_timeout", &raw.idle_timeout, d.idle_timeout)?,
        send_timeout: duration("send_timeout", &raw.send_timeout, d.send_timeout)?,
        body_timeout: duration("body_timeout", &raw.body_timeout, d.body_timeout)?,
        max_connections,
        max_head_bytes,
    })
}

fn validate_websub(
    raw: &RawWebSub,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<WebSubConfig, ConfigError> {
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
    Ok(WebSubConfig {
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
    })
}

fn validate_opml(
    raw: &RawOpml,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<OpmlConfig, ConfigError> {
    let d = OpmlConfig::default();
    let max_outlines = match raw.max_outlines {
        Some(n) if (1..=100_000).contains(&n) => n as usize,
        Some(n) => {
            return Err(err(
                "opml.max_outlines",
                format!("{n} is outside 1..=100000"),
            ));
        }
        None => d.max_outlines,
    };
    let min_articles = match raw.min_articles {
        Some(n) if n >= 1 => n as u64,
        Some(n) => {
            return Err(err(
                "opml.min_articles",
                format!("{n} is below 1 (a listed feed has an article)"),
            ));
        }
        None => d.min_articles,
    };
    Ok(OpmlConfig {
        max_outlines,
        min_articles,
    })
}

fn validate_access(
    raw: &RawAccess,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<AccessConfig, ConfigError> {
    let public_content = match raw.public_content.as_deref() {
        None | Some("full") => PublicContent::Full,
        Some("summary") => PublicContent::Summary,
        Some(other) => {
            return Err(err(
                "access.public_content",
                format!("`{other}` is neither \"full\" nor \"summary\""),
            ));
        }
    };
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let p = p.trim();
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    err(
                        &format!("access.trusted_proxies[{i}]"),
                        format!("`{p}` is neither an IP address nor a network such as 10.0.0.0/8"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AccessConfig {
        public_content,
        trusted_proxies,
    })
}

fn validate_sources(
    raw: &[RawSource],
    (langs, cats): &(Vec<String>, Vec<String>),
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<Vec<SourceConfig>, ConfigError> {
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
        if !langs.contains(&r.lang) {
            return Err(err(
                &at("lang"),
                format!(
                    "`{}` is not a configured language ({})",
                    r.lang,
                    langs.join(", ")
                ),
            ));
        }
        if !cats.contains(&r.category) {
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
            None | Some("summary") => SourceContent::Summary,
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

fn validate_upstream(
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

fn validate_partners(
    raw: &[RawPartner],
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<Vec<Partner>, ConfigError> {
    let mut out: Vec<Partner> = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let at = format!("partners[{i}]");
        if p.id.is_empty()
            || p.id.len() > 64
            || !p
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(err(
                &format!("{at}.id"),
                format!("`{}` must be 1-64 characters of a-z, 0-9, - and _", p.id),
            ));
        }
        if out.iter().any(|o| o.id == p.id) {
            return Err(err(
                &format!("{at}.id"),
                format!("`{}` is used by an earlier partner", p.id),
            ));
        }
        let name = crate::text::clean_line(&p.name);
        if name.is_empty() {
            return Err(err(&format!("{at}.name"), "must not be empty".into()));
        }
        let hex = p.key_sha256.trim();
        let Some(key_sha256) = parse_sha256_hex(hex) else {
            return Err(err(
                &format!("{at}.key_sha256"),
                "must be the SHA-256 of the partner's key as 64 hex digits (`bantin partner-key` makes a key and its hash)".into(),
            ));
        };
        if let Some(o) = out.iter().find(|o| o.key_sha256 == key_sha256) {
            return Err(err(
                &format!("{at}.key_sha256"),
                format!("partner `{}` has the same key", o.id),
            ));
        }
        out.push(Partner {
            id: p.id.clone(),
            name,
            key_sha256,
        });
    }
    Ok(out)
}

/// 64 hex digits (either case) → 32 bytes.
/// How many threads serve HTTP: `BANTIN_WORKERS`, or one per available core.
pub fn worker_count() -> usize {
    std::env::var("BANTIN_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

pub fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn validate_readership(
    raw: &RawReadership,
    env: &impl Fn(&str) -> Option<String>,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<ReadershipConfig, ConfigError> {
    let d = ReadershipConfig::default();
    let enabled = match env("BANTIN_READERSHIP").filter(|v| !v.is_empty()) {
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            _ => {
                return Err(err(
                    "BANTIN_READERSHIP",
                    format!("`{v}` is neither on nor off"),
                ));
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

fn validate_categories(
    raw: &[RawCategory],
    languages: &[String],
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<Vec<Category>, ConfigError> {
    let mut out: Vec<Category> = Vec::new();
    let mut ids = HashSet::new();
    for (i, c) in raw.iter().enumerate() {
        let at = format!("categories[{i}]");
        if c.id.is_empty()
            || c.id.len() > 64
            || !c
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(err(
                &format!("{at}.id"),
                format!("`{}` must be 1-64 characters of a-z, 0-9 and -", c.id),
            ));
        }
        if !ids.insert(c.id.clone()) {
            return Err(err(
                &format!("{at}.id"),
                format!("`{}` is used by an earlier category", c.id),
            ));
        }
        let mut names = BTreeMap::new();
        let mut slugs = BTreeMap::new();
        for lang in languages {
            let name = c
                .name
                .get(lang)
                .map(|n| crate::text::clean_line(n))
                .unwrap_or_default();
            if name.is_empty() {
                return Err(err(
                    &format!("{at}.name.{lang}"),
                    format!("category `{}` needs a name in `{lang}`", c.id),
                ));
            }
            let s = match c.slug.get(lang) {
                Some(s) => {
                    if s.is_empty() || slug(s) != *s {
                        return Err(err(
                            &format!("{at}.slug.{lang}"),
                            format!(
                                "`{s}` is not an ASCII slug (lower-case a-z, 0-9 and single dashes; try `{}`)",
                                slug(s)
                            ),
                        ));
                    }
                    s.clone()
                }
                None => slug(&name),
            };
            if s.is_empty() {
                return Err(err(
                    &format!("{at}.slug.{lang}"),
                    format!("the name `{name}` gives an empty slug; set one"),
                ));
            }
            if RESERVED_SLUGS.contains(&s.as_str()) {
                return Err(err(
                    &format!("{at}.slug.{lang}"),
                    format!("`{s}` is reserved for feed URLs"),
                ));
            }
            if let Some(other) = out.iter().find(|o| o.slug(lang) == s) {
                return Err(err(
                    &format!("{at}.slug.{lang}"),
                    format!("`{s}` is already the slug of category `{}`", other.id),
                ));
            }
            names.insert(lang.clone(), name);
            slugs.insert(lang.clone(), s);
        }
        for lang in c.name.keys().chain(c.slug.keys()) {
            if !languages.contains(lang) {
                return Err(err(
                    &format!("{at}.name.{lang}"),
                    format!("`{lang}` is not in `languages`"),
                ));
            }
        }
        out.push(Category {
            id: c.id.clone(),
            names,
            slugs,
        });
    }
    Ok(out)
}

/// Tokens from `BANTIN_API_TOKEN` (one) and `BANTIN_API_TOKEN_FILE` (one per line; blank lines
/// and `#` comments ignored), so a new token can be added beside the old one during a rotation.
fn api_tokens(env: &impl Fn(&str) -> Option<String>) -> Result<Vec<String>, (String, String)> {
    let mut tokens = Vec::new();
    if let Some(t) = env("BANTIN_API_TOKEN") {
        let t = t.trim().to_string();
        if !t.is_empty() {
            tokens.push(t);
        }
    }
    if let Some(path) = env("BANTIN_API_TOKEN_FILE").filter(|p| !p.is_empty()) {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            (
                "BANTIN_API_TOKEN_FILE".to_string(),
                format!("cannot read `{path}`: {e}"),
            )
        })?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    if let Some(short) = tokens.iter().position(|t| t.len() < 16) {
        // Never echo the token itself.
        return Err((
            "BANTIN_API_TOKEN".into(),
            format!(
                "token #{} is shorter than 16 characters; use a long random token",
                short + 1
            ),
        ));
    }
    Ok(tokens)
}

fn parse_http_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("`{s}` is not an absolute URL ({e})"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("`{s}` must be an http or https URL"));
    }
    Ok(u)
}

/// RFC 4151 `taggingEntity`: `authorityName "," date` with date `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
fn is_tag_authority(s: &str) -> bool {
    let Some((name, date)) = s.split_once(',') else {
        return false;
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.@".contains(&b));
    let parts: Vec<&str> = date.split('-').collect();
    let date_ok = !parts.is_empty()
        && parts.len() <= 3
        && parts[0].len() == 4
        && parts[1..].iter().all(|p| p.len() == 2)
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && date_ok
}

fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
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

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, "feeds/site.toml", Path::new("feeds"), |_| None)
    }

    fn parse_err(text: &str) -> ConfigError {
        parse(text).expect_err("config should be rejected")
    }

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

    #[test]
    fn opml_bounds_have_defaults_and_limits() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.opml, OpmlConfig::default());
        let c = parse(&format!(
            "{MINIMAL}[opml]\nmax_outlines = 300\nmin_articles = 3\n"
        ))
        .unwrap();
        assert_eq!((c.opml.max_outlines, c.opml.min_articles), (300, 3));
        let e = parse_err(&format!("{MINIMAL}[opml]\nmax_outlines = 0\n"));
        assert_eq!(e.key, "opml.max_outlines");
        let e = parse_err(&format!("{MINIMAL}[opml]\nmin_articles = 0\n"));
        assert_eq!(e.key, "opml.min_articles");
    }

    #[test]
    fn the_shipped_site_toml_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds/site.toml");
        let c = Config::load_with_env(&path, |_| None).unwrap();
        assert!(c.categories.len() >= 6);
        assert_eq!(c.languages.len(), 2);
    }

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

    #[test]
    fn errors_name_file_key_and_problem() {
        let e = parse_err(&MINIMAL.replace("https://baolongan.example", "not a url"));
        assert_eq!(e.file, "feeds/site.toml");
        assert_eq!(e.key, "base_url");
        assert!(
            e.to_string()
                .starts_with("feeds/site.toml: base_url: `not a url`")
        );

        let e = parse_err(&format!("timezone = \"Mars/Olympus\"\n{MINIMAL}"));
        assert_eq!(e.key, "timezone");
        assert!(e.problem.contains("Mars/Olympus"));

        let e = parse_err(&MINIMAL.replace(", en = \"Defence\"", ""));
        assert_eq!(e.key, "categories[0].name.en");

        let e = parse_err(&format!("{MINIMAL}slug = {{ vi = \"Quốc phòng\" }}\n"));
        assert_eq!(e.key, "categories[0].slug.vi");
        assert!(e.problem.contains("quoc-phong"), "{e}");

        let dup = format!(
            "{MINIMAL}[[categories]]\nid = \"quoc-phong\"\nname = {{ vi = \"A\", en = \"B\" }}\n"
        );
        assert_eq!(parse_err(&dup).key, "categories[1].id");

        let clash = format!(
            "{MINIMAL}[[categories]]\nid = \"qp\"\nname = {{ vi = \"Quốc Phòng\", en = \"B\" }}\n"
        );
        let e = parse_err(&clash);
        assert_eq!(e.key, "categories[1].slug.vi");
        assert!(e.problem.contains("quoc-phong"));

        let e = parse_err(&MINIMAL.replace("[site.en]\nname = \"Long An Newspaper\"\n", ""));
        assert_eq!(e.key, "site.en");

        let e = parse_err(&format!("tag_authority = \"baolongan.example\"\n{MINIMAL}"));
        assert_eq!(e.key, "tag_authority");

        let e = parse_err(&format!("items_per_feed = 0\n{MINIMAL}"));
        assert_eq!(e.key, "items_per_feed");

        let e = parse_err(&format!(
            "{MINIMAL}[[categories]]\nid = \"x\"\nname = {{ vi = \"Tag\", en = \"Tag\" }}\n"
        ));
        assert!(e.problem.contains("reserved"), "{e}");
    }

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

    #[test]
    fn access_partners_and_readership() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.access, AccessConfig::default());
        assert!(c.partners.is_empty());
        assert_eq!(c.readership, ReadershipConfig::default());
        let hash = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
        let text = format!(
            "{MINIMAL}[access]\npublic_content = \"summary\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n[[partners]]\nid = \"baomoi\"\nname = \"Báo Mới\"\nkey_sha256 = \"{hash}\"\n[readership]\nflush_interval = 2\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.access.public_content, PublicContent::Summary);
        assert_eq!(c.access.trusted_proxies.len(), 2);
        assert_eq!(c.partners[0].id, "baomoi");
        assert_eq!(c.partners[0].key_sha256[0], 0x9f);
        assert_eq!(c.readership.flush_interval.as_secs(), 2);
        assert!(
            !format!("{:?}", c.partners[0]).contains("9f86"),
            "the hash stays out of debug output"
        );
        let off = Config::parse(&text, "site.toml", Path::new("."), |k| {
            (k == "BANTIN_READERSHIP").then(|| "off".to_string())
        })
        .unwrap();
        assert!(!off.readership.enabled);

        let e = parse_err(&text.replace("\"summary\"", "\"teaser\""));
        assert_eq!(e.key, "access.public_content");
        let e = parse_err(&text.replace("10.0.0.0/8", "10.0.0.0/99"));
        assert_eq!(e.key, "access.trusted_proxies[0]");
        let e = parse_err(&text.replace(hash, "secret-key"));
        assert_eq!(e.key, "partners[0].key_sha256");
        assert!(e.problem.contains("64 hex"), "{e}");
        let twice = format!(
            "{text}[[partners]]\nid = \"baomoi\"\nname = \"X\"\nkey_sha256 = \"{}\"\n",
            "0".repeat(64)
        );
        assert_eq!(parse_err(&twice).key, "partners[1].id");
        let e = parse_err(&text.replace("flush_interval = 2", "keep_days = 3"));
        assert_eq!(e.key, "readership.keep_days");
    }

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

    #[test]
    fn token_file_holds_several_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        std::fs::write(
            &f,
            "# rotated 2026-11\nold-token-0123456789\n\nnew-token-0123456789\n",
        )
        .unwrap();
        let path = f.display().to_string();
        let c = Config::parse(MINIMAL, "site.toml", Path::new("."), |k| {
            (k == "BANTIN_API_TOKEN_FILE").then(|| path.clone())
        })
        .unwrap();
        assert_eq!(
            c.api.tokens,
            vec!["old-token-0123456789", "new-token-0123456789"]
        );
    }
}
