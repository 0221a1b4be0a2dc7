//! Public URLs, built and parsed in one place: a feed's path, directory and absolute URL (the
//! `impl FeedKey` below), its `tag:` URI, and which request paths name a feed, the OPML or a
//! page, and nothing else. Both HTTP paths, the renderers (self and paging links), the lists of
//! feeds and readership use this module, so a URL is spelled once.
//!
//! Every feed has exactly one spelling, the one [`Target::path`] builds (from
//! [`FeedKey::path`] and [`FeedKey::dir`]), and [`parse_path`] accepts that spelling only: one
//! slash between segments, no empty, `.` or `..` segment, no percent-encoding, a configured
//! language and category slug, a tag or byline slug in the form slugs take (`[a-z0-9]` and
//! single inner dashes, no longer than the longest tag or byline an article may carry), a
//! format file name, and nothing after it. So parsing and building are inverse (tested both
//! ways: every built path parses back to its target, and every accepted string is the path its
//! target builds), and the request's own path is the canonical one whenever a feed is served:
//! readership and metrics, which count under the request's path on the hot path without
//! building a string, can never see two spellings of one feed.
//!
//! Other spellings are not served. A path that RFC 3986 normalisation (repeated slashes
//! collapsed, dot segments removed, percent-encoded unreserved characters decoded, a missing
//! directory slash added) turns into a canonical path is answered `301` to that path
//! ([`canonical_location`]): a subscription saved with a double slash (a base URL ending in `/`
//! joined to a path starting with one is the usual cause) keeps working and is moved to the one
//! URL that is counted. The `Location` is built from the parsed target, never copied from the
//! request, so it is always a path on this service. Anything else is a `404` that says what
//! exists. Neither answer touches the store, the cache or the readership counters.

use crate::article::{MAX_AUTHOR_CHARS, MAX_TAG_CHARS};
use crate::config::Config;
use crate::model::{FeedKey, Format, Selector};

impl FeedKey {
    /// The feed's path without the format file: `/vi/`, `/vi/kinh-te/`, `/vi/tag/gia-lua/`.
    pub fn dir(&self, config: &Config) -> String {
        match &self.selector {
            Selector::All => format!("/{}/", self.lang),
            Selector::Category(id) => {
                let slug = config
                    .category(id)
                    .map(|c| c.slug(&self.lang))
                    .unwrap_or(id);
                format!("/{}/{}/", self.lang, slug)
            }
            Selector::Tag(s) => format!("/{}/tag/{}/", self.lang, s),
            Selector::Author(s) => format!("/{}/author/{}/", self.lang, s),
        }
    }

    /// The feed's path in a format: `/vi/kinh-te/rss.xml`.
    pub fn path(&self, config: &Config, format: Format) -> String {
        format!("{}{}", self.dir(config), format.file_name())
    }

    /// The absolute public URL of a page of this feed; page 1 has no query, so the self link of
    /// the first page is the URL people subscribe to.
    pub fn url(&self, config: &Config, format: Format, page: u32) -> String {
        let base = config.public_base();
        let path = self.path(config, format);
        let mut url = format!("{}{}", base.as_str().trim_end_matches('/'), path);
        if page > 1 {
            url.push_str(&format!("?page={page}"));
        }
        url
    }

    /// A stable `tag:` URI naming this feed (Atom `id`), independent of domain and format.
    pub fn tag_uri(&self, config: &Config) -> String {
        let what = match &self.selector {
            Selector::All => String::new(),
            Selector::Category(id) => format!(":category:{id}"),
            Selector::Tag(s) => format!(":tag:{s}"),
            Selector::Author(s) => format!(":author:{s}"),
        };
        format!("tag:{}:feed:{}{}", config.tag_authority, self.lang, what)
    }
}

/// What a GET path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Feed(FeedKey, Format),
    Opml,
    /// The HTML index of every feed.
    Home,
    /// The HTML preview of a feed (`/vi/`, `/vi/kinh-te/`).
    Preview(FeedKey),
}

impl Target {
    /// The one path that names this target: what [`parse_path`] accepts for it.
    pub fn path(&self, config: &Config) -> String {
        match self {
            Target::Feed(key, format) => key.path(config, *format),
            Target::Opml => OPML.to_string(),
            Target::Home => "/".to_string(),
            Target::Preview(key) => key.dir(config),
        }
    }
}

const FORMATS: &str = "rss.xml, atom.xml or feed.json";
const OPML: &str = "/feeds.opml";

/// Operations and API paths: every route the router mounts besides feeds and pages.
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const STATS_PAGE: &str = "/stats";
pub const WEBSUB: &str = "/websub";
/// Everything below it is the API (token-guarded but for the OpenAPI document).
pub const API_PREFIX: &str = "/api/";
pub const API_ARTICLES: &str = "/api/v1/articles";
/// The route pattern of one article (axum's `{id}` capture).
pub const API_ARTICLE: &str = "/api/v1/articles/{id}";
pub const API_STATS: &str = "/api/v1/stats";
pub const API_SOURCES: &str = "/api/v1/sources";
pub const API_OPENAPI: &str = "/api/v1/openapi.json";

/// The path of the article `id` in the API.
pub fn api_article(id: &str) -> String {
    format!("{API_ARTICLES}/{id}")
}

/// Whether a request target (path and query) is an operations or API route, which the fast path
/// leaves to the router whatever else it looks like.
pub fn is_operations(target: &str) -> bool {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    path.starts_with(API_PREFIX) || matches!(path, HEALTHZ | READYZ | METRICS)
}

/// Whether `s` is a slug as [`crate::text::slug`] makes them, at most `max` bytes: lower-case
/// ASCII letters and digits in runs joined by single dashes.
fn is_slug(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !b.windows(2).any(|w| w == b"--")
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// Parses a request path into a [`Target`], or the text of a 404 saying what exists. Only the
/// canonical spelling is accepted (see the module documentation).
pub fn parse_path(config: &Config, path: &str) -> Result<Target, String> {
    if path == "/" {
        return Ok(Target::Home);
    }
    if path == OPML {
        return Ok(Target::Opml);
    }
    let no_feed = || {
        format!(
            "No feed at {path}. Feeds are /{{lang}}/{FORMATS}, /{{lang}}/{{category}}/…, /{{lang}}/tag/{{tag}}/…, /{{lang}}/author/{{author}}/…, each segment once with one slash between; the list is at /feeds.opml."
        )
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(no_feed());
    };
    // At most four segments; a fifth means the path is longer than any feed's.
    let mut segs = [""; 4];
    let mut n = 0;
    for s in rest.split('/') {
        if n == segs.len() {
            return Err(no_feed());
        }
        segs[n] = s;
        n += 1;
    }
    let segs = &segs[..n];
    // Only the last segment may be empty (a directory: the HTML preview).
    if segs[..n - 1].iter().any(|s| s.is_empty()) {
        return Err(no_feed());
    }
    let lang = segs[0];
    if config.language(lang).is_none() {
        return Err(format!(
            "No feeds at {path}. Languages: {}. Feeds are /{{lang}}/{FORMATS}, /{{lang}}/{{category}}/…, /{{lang}}/tag/{{tag}}/…, /{{lang}}/author/{{author}}/…; the list is at /feeds.opml.",
            config.language_list()
        ));
    }
    let file = |name: &str, key: FeedKey| -> Result<Target, String> {
        if name.is_empty() {
            return Ok(Target::Preview(key));
        }
        Format::from_file_name(name)
            .map(|f| Target::Feed(key, f))
            .ok_or_else(|| {
                format!("No feed named `{name}` at {path}. Each feed is served as {FORMATS}.")
            })
    };
    match segs[1..] {
        // `/vi` is not a spelling of `/vi/` (a redirect may say so).
        [] => Err(no_feed()),
        [name] => file(name, FeedKey::new(lang, Selector::All)),
        [kind @ ("tag" | "author"), slug, name] => {
            let (max, sel) = if kind == "tag" {
                (MAX_TAG_CHARS, Selector::Tag(slug.to_string()))
            } else {
                (MAX_AUTHOR_CHARS, Selector::Author(slug.to_string()))
            };
            if !is_slug(slug, max) {
                return Err(format!(
                    "No {kind} `{slug}` in `{lang}`: {kind} slugs are lower-case a-z and 0-9 joined by single dashes, at most {max} characters; the list is at /feeds.opml."
                ));
            }
            file(name, FeedKey::new(lang, sel))
        }
        [slug, name] => match config.category_by_slug(lang, slug) {
            Some(c) => file(name, FeedKey::new(lang, Selector::Category(c.id.clone()))),
            None => {
                let list: Vec<&str> = config.categories.iter().map(|c| c.slug(lang)).collect();
                Err(format!(
                    "No category `{slug}` in `{lang}`. Categories: {}.",
                    list.join(", ")
                ))
            }
        },
        _ => Err(no_feed()),
    }
}

/// The canonical path of a non-canonical spelling of a target, for a `301`: RFC 3986
/// normalisation of `path` (§6.2.2: percent-encoded unreserved characters decoded, dot segments
/// removed; and repeated slashes collapsed), then, if that is not a target either, the same
/// with a directory's missing trailing slash added. `None` when `path` is canonical already or
/// names nothing. The result is built from the target, so it is always one of this service's
/// paths.
pub fn canonical_location(config: &Config, path: &str) -> Option<String> {
    if parse_path(config, path).is_ok() {
        return None;
    }
    let normal = normalise(path)?;
    let target = parse_path(config, &normal)
        .or_else(|_| parse_path(config, &format!("{normal}/")))
        .ok()?;
    Some(target.path(config))
}

/// A path with percent-encoded unreserved characters decoded, empty and `.` segments dropped
/// and `..` segments applied (never above the root), keeping a trailing slash. `None` when a
/// percent sign is not followed by two hex digits, or a decoded byte is not an unreserved
/// character (`%2F` stays a byte of a segment, never a separator, so it names nothing).
fn normalise(path: &str) -> Option<String> {
    let decoded = decode_unreserved(path)?;
    let mut out: Vec<&str> = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut s = String::with_capacity(decoded.len());
    for seg in &out {
        s.push('/');
        s.push_str(seg);
    }
    let last = decoded.rsplit('/').next().unwrap_or("");
    if out.is_empty() || decoded.ends_with('/') || matches!(last, "." | "..") {
        s.push('/');
    }
    Some(s)
}

fn decode_unreserved(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_string());
    }
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            let v = u8::from_str_radix(hex, 16).ok()?;
            if !(v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~')) {
                return None;
            }
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Reads `?page=N`. Other query parameters (tracking tags) are ignored so they do not split the
/// cache; a malformed or zero page is a 404 like any page that does not exist.
pub fn parse_page(query: Option<&str>) -> Result<u32, String> {
    let Some(q) = query else { return Ok(1) };
    for pair in q.split('&') {
        if let Some(v) = pair.strip_prefix("page=") {
            return match v.parse::<u32>() {
                Ok(n) if (1..=100_000).contains(&n) => Ok(n),
                _ => Err(format!(
                    "`page={v}` is not a page number; pages are 1, 2, 3…"
                )),
            };
        }
    }
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::tests::config;
    use proptest::prelude::*;

    #[test]
    fn paths_name_feeds() {
        let c = config();
        let feed = |p: &str| parse_path(&c, p).unwrap();
        assert_eq!(
            feed("/vi/rss.xml"),
            Target::Feed(FeedKey::new("vi", Selector::All), Format::Rss)
        );
        assert_eq!(
            feed("/en/defence/atom.xml"),
            Target::Feed(
                FeedKey::new("en", Selector::Category("quoc-phong".into())),
                Format::Atom
            )
        );
        assert_eq!(
            feed("/vi/quoc-phong/feed.json"),
            Target::Feed(
                FeedKey::new("vi", Selector::Category("quoc-phong".into())),
                Format::Json
            )
        );
        assert_eq!(
            feed("/vi/tag/gia-lua/rss.xml"),
            Target::Feed(
                FeedKey::new("vi", Selector::Tag("gia-lua".into())),
                Format::Rss
            )
        );
        assert_eq!(
            feed("/vi/author/minh-thu/atom.xml"),
            Target::Feed(
                FeedKey::new("vi", Selector::Author("minh-thu".into())),
                Format::Atom
            )
        );
        assert_eq!(feed("/"), Target::Home);
        assert_eq!(feed("/feeds.opml"), Target::Opml);
        assert_eq!(
            feed("/vi/"),
            Target::Preview(FeedKey::new("vi", Selector::All))
        );
        assert_eq!(
            feed("/vi/kinh-te/"),
            Target::Preview(FeedKey::new("vi", Selector::Category("kinh-te".into())))
        );
        assert_eq!(
            feed("/vi/tag/gia-lua/"),
            Target::Preview(FeedKey::new("vi", Selector::Tag("gia-lua".into())))
        );
    }

    #[test]
    fn unknown_paths_say_what_exists() {
        let c = config();
        let e = parse_path(&c, "/fr/rss.xml").unwrap_err();
        assert!(e.contains("vi, en"), "{e}");
        let e = parse_path(&c, "/en/quoc-phong/rss.xml").unwrap_err();
        assert!(
            e.contains("defence") && e.contains("economy"),
            "the English slugs are listed: {e}"
        );
        let e = parse_path(&c, "/vi/rss2.xml").unwrap_err();
        assert!(e.contains("rss.xml, atom.xml or feed.json"), "{e}");
        assert!(parse_path(&c, "/vi/a/b/c/d").is_err());
        assert!(parse_path(&c, "/vi/tag//rss.xml").is_err());
        let e = parse_path(&c, "/vi/tag/Gia-Lua/rss.xml").unwrap_err();
        assert!(e.contains("lower-case"), "{e}");
    }

    /// Every spelling of a feed but its own, as an attacker (or a sloppy URL join) writes them.
    pub(crate) const NON_CANONICAL: &[&str] = &[
        "//vi/rss.xml",
        "///vi/rss.xml",
        "////////vi/rss.xml",
        "/vi//rss.xml",
        "/vi/./rss.xml",
        "/./vi/rss.xml",
        "/vi/../vi/rss.xml",
        "/en/../vi/rss.xml",
        "/vi/kinh-te/../rss.xml",
        "/%76i/rss.xml",
        "/vi/rss%2Exml",
        "/vi/rss%2exml",
        "/vi%2Frss.xml",
        "/vi/rss.xml/",
        "/vi/rss.xml//",
        "/vi/rss.xml/.",
        "/vi/rss.xml;jsessionid=1",
        "/vi/rss.xml%00",
        "/vi/rss.xml%20",
        "/vi/rss.xmlx",
        "/vi/rss.xml/x",
        "/vi/tag/gia--lua/rss.xml",
        "/vi/tag/-gia-lua/rss.xml",
        "/vi/tag/gia-lua-/rss.xml",
        "/vi/tag/GIA-LUA/rss.xml",
        "/vi/tag/gia%2Dlua/rss.xml",
        "/vi/tag/./gia-lua/rss.xml",
        "/vi//kinh-te/rss.xml",
        "/vi/kinh-te//rss.xml",
        "//feeds.opml",
        "/feeds.opml/",
        "//",
        "/vi",
        "/vi//",
        "vi/rss.xml",
        "",
    ];

    #[test]
    fn only_the_canonical_spelling_is_a_target() {
        let c = config();
        for p in NON_CANONICAL {
            assert!(parse_path(&c, p).is_err(), "{p:?} must not name a target");
        }
    }

    #[test]
    fn normalisable_spellings_redirect_to_the_canonical_path() {
        let c = config();
        let loc = |p: &str| canonical_location(&c, p);
        for (p, to) in [
            ("//vi/rss.xml", "/vi/rss.xml"),
            ("///vi/rss.xml", "/vi/rss.xml"),
            ("/vi//rss.xml", "/vi/rss.xml"),
            ("/vi/./rss.xml", "/vi/rss.xml"),
            ("/vi/../vi/rss.xml", "/vi/rss.xml"),
            ("/../../vi/rss.xml", "/vi/rss.xml"),
            ("/en/../vi/rss.xml", "/vi/rss.xml"),
            ("/vi/kinh-te/../rss.xml", "/vi/rss.xml"),
            ("/%76i/rss.xml", "/vi/rss.xml"),
            ("/vi/rss%2Exml", "/vi/rss.xml"),
            ("/vi/tag/gia%2Dlua/rss.xml", "/vi/tag/gia-lua/rss.xml"),
            ("/vi//kinh-te//atom.xml", "/vi/kinh-te/atom.xml"),
            ("//feeds.opml", "/feeds.opml"),
            ("//", "/"),
            ("/vi", "/vi/"),
            ("/vi/kinh-te", "/vi/kinh-te/"),
            ("/vi/kinh-te/.", "/vi/kinh-te/"),
            ("/vi/kinh-te/..", "/vi/"),
            ("//vi//", "/vi/"),
        ] {
            assert_eq!(loc(p).as_deref(), Some(to), "{p}");
        }
        // Canonical already, or nothing at all: no redirect.
        for p in [
            "/vi/rss.xml",
            "/",
            "/vi/",
            "/vi/rss.xml/",
            "/vi/rss.xml;x",
            "/vi%2Frss.xml",
            "/vi/rss.xml%00",
            "/vi/%zz",
            "/vi/tag/GIA-LUA/rss.xml",
            "//evil.example/vi/rss.xml",
            "/fr/rss.xml",
            "/vi/khong-co/rss.xml",
        ] {
            assert_eq!(loc(p), None, "{p}");
        }
    }

    /// Every target this configuration can build: the configured feeds and previews, tag and
    /// byline feeds of the given slugs, the OPML and the index.
    fn targets(c: &Config, slugs: &[String]) -> Vec<Target> {
        let mut keys = crate::feed::configured_feeds(c);
        for l in &c.languages {
            for s in slugs {
                keys.push(FeedKey::new(&l.code, Selector::Tag(s.clone())));
                keys.push(FeedKey::new(&l.code, Selector::Author(s.clone())));
            }
        }
        let mut out = vec![Target::Home, Target::Opml];
        for k in keys {
            out.push(Target::Preview(k.clone()));
            out.extend(Format::ALL.map(|f| Target::Feed(k.clone(), f)));
        }
        out
    }

    #[test]
    fn every_built_url_parses_back_to_its_key() {
        let c = config();
        let mut slugs: Vec<String> = ["gia-lua", "minh-thu", "tet-2026", "a"]
            .map(String::from)
            .to_vec();
        slugs.push("x".repeat(MAX_TAG_CHARS));
        let base = c.public_base().as_str().trim_end_matches('/').to_string();
        for t in targets(&c, &slugs) {
            assert_eq!(parse_path(&c, &t.path(&c)).as_ref(), Ok(&t));
            if let Target::Feed(k, f) = &t {
                for page in [1, 2, 50] {
                    let url = k.url(&c, *f, page);
                    let rest = url.strip_prefix(&base).expect("on the public base");
                    let (path, query) = match rest.split_once('?') {
                        Some((p, q)) => (p, Some(q)),
                        None => (rest, None),
                    };
                    assert_eq!(parse_path(&c, path).as_ref(), Ok(&t), "{url}");
                    assert_eq!(parse_page(query), Ok(page), "{url}");
                }
            }
        }
    }

    #[test]
    fn page_numbers() {
        assert_eq!(parse_page(None), Ok(1));
        assert_eq!(parse_page(Some("page=3")), Ok(3));
        assert_eq!(parse_page(Some("utm_source=x&page=2")), Ok(2));
        assert_eq!(parse_page(Some("utm_source=x")), Ok(1));
        for bad in ["page=0", "page=-1", "page=abc", "page=", "page=99999999999"] {
            assert!(parse_page(Some(bad)).is_err(), "{bad}");
        }
    }

    /// Paths made of the pieces feed paths are made of, and the pieces of their misspellings.
    fn path_strategy() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "/",
            "/",
            "/",
            "vi",
            "en",
            "fr",
            "tag",
            "author",
            "kinh-te",
            "economy",
            "defence",
            "gia-lua",
            "Gia",
            "-",
            "--",
            ".",
            "..",
            "%2E",
            "%2F",
            "%76",
            "%",
            "rss.xml",
            "atom.xml",
            "feed.json",
            "feeds.opml",
            "x",
            ";",
            "?",
        ]);
        prop::collection::vec(piece, 0..10).prop_map(|v| v.concat())
    }

    proptest! {
        /// An accepted path is byte for byte the path its target builds: what readership and
        /// metrics count under is always the canonical spelling.
        #[test]
        fn an_accepted_path_is_its_targets_own(path in path_strategy()) {
            let c = config();
            if let Ok(t) = parse_path(&c, &path) {
                prop_assert_eq!(t.path(&c), path);
            }
        }

        /// A redirect names a target, differs from the request, and needs no second redirect.
        #[test]
        fn redirects_lead_to_targets(path in path_strategy()) {
            let c = config();
            if let Some(to) = canonical_location(&c, &path) {
                prop_assert_ne!(&to, &path);
                prop_assert!(parse_path(&c, &to).is_ok());
                prop_assert_eq!(canonical_location(&c, &to), None);
            }
        }

        /// Tag and byline slugs as articles make them round-trip; the slug check agrees with
        /// `text::slug`.
        #[test]
        fn article_slugs_round_trip(name in "\\PC{1,100}") {
            let c = config();
            let s = crate::text::slug(&name);
            prop_assert_eq!(is_slug(&s, MAX_TAG_CHARS), !s.is_empty());
            if !s.is_empty() {
                for sel in [Selector::Tag(s.clone()), Selector::Author(s.clone())] {
                    let t = Target::Feed(FeedKey::new("vi", sel), Format::Rss);
                    prop_assert_eq!(parse_path(&c, &t.path(&c)), Ok(t));
                }
            }
        }

        #[test]
        fn slug_check_is_slug_identity(s in "[a-zA-Z0-9 -]{0,20}") {
            prop_assert_eq!(is_slug(&s, 200), !s.is_empty() && crate::text::slug(&s) == s);
        }
    }
}
