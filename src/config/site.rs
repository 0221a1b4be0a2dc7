//! The site itself: its URL and `tag:` authority, time zone, languages (`[site.LANG]`),
//! categories and their slugs, page size, articles directory, and the lists of feeds (`[opml]`).
//!
//! These are the settings every feed, id and URL is built from, and they depend on one another
//! (a category needs a name and a slug in every configured language; a slug must not shadow a
//! feed URL), so they are checked together, in one pass, before the sections that refer to them
//! (a `[[sources]]` entry names a language and a category).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use url::Url;

use super::common::ConfigError;
use super::common::parse_http_url;
use super::raw::{RawCategory, RawConfig, RawOpml};
use crate::clock::SiteZone;
use crate::text::slug;

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

/// Path segments a category slug may not take, because feed URLs use them.
const RESERVED_SLUGS: &[&str] = &["tag", "author", "api", "rss.xml", "atom.xml", "feed.json"];

/// The checked site keys, before they become fields of [`Config`](super::Config).
pub(super) struct Site {
    pub(super) base_url: Url,
    pub(super) tag_authority: String,
    pub(super) zone: SiteZone,
    pub(super) languages: Vec<Language>,
    pub(super) categories: Vec<Category>,
    pub(super) items_per_feed: usize,
    pub(super) articles_dir: Option<PathBuf>,
}

/// `dir` anchors a relative `articles_dir`.
pub(super) fn validate_site(
    raw: &RawConfig,
    dir: &Path,
    err: &impl Fn(&str, String) -> ConfigError,
) -> Result<Site, ConfigError> {
    let base_url = parse_http_url(&raw.base_url).map_err(|p| err("base_url", p))?;
    let tag_authority = match &raw.tag_authority {
        Some(a) => {
            if !is_tag_authority(a) {
                return Err(err(
                    "tag_authority",
                    format!(
                        "`{a}` is not a tag URI authority: a domain or email, a comma, and a date such as baolongan.example,2026"
                    ),
                ));
            }
            a.clone()
        }
        None => format!("{},2026", base_url.host_str().unwrap_or("localhost")),
    };

    let tz_name = raw
        .timezone
        .clone()
        .unwrap_or_else(|| "Asia/Ho_Chi_Minh".into());
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

    let categories = validate_categories(&raw.categories, &raw.languages, err)?;

    Ok(Site {
        base_url,
        tag_authority,
        zone,
        languages,
        categories,
        items_per_feed: items_per_feed as usize,
        articles_dir: raw.articles_dir.as_ref().map(|d| dir.join(d)),
    })
}

pub(super) fn validate_opml(
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
    use crate::config::OpmlConfig;
    use crate::config::testing::{MINIMAL, parse, parse_err};

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
}
