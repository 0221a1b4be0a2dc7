//! Feeds: which feeds exist ([`FeedKey`]), what one page of one feed holds ([`FeedPage`]), and
//! which feeds a write touches ([`touched_by`]).
//!
//! A feed is a language plus a selector (everything, a category, a tag, a byline); each is served
//! in three formats and paged. This module is pure: loading a page from the store is
//! [`crate::pages::load`], a layer above both; the renderers (`rss`, `atom`, `json`, `opml`, `html`) are pure functions of a [`FeedPage`] (or of
//! the bounded [`listing`] of feeds) and the configuration, with no clock inside, so every replica renders identical bytes for the same
//! data and ETags agree across a fleet.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::article::Article;
use crate::config::Config;

pub mod atom;
pub mod html;
pub mod json;
pub mod listing;
pub mod opml;
pub mod rss;

pub use crate::model::{Content, FeedKey, Format, Selector};

/// An article's translation as an entry links to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslationLink {
    pub lang: String,
    pub url: String,
}

/// One page of one feed, as loaded from the store: everything a renderer needs.
#[derive(Debug, Clone)]
pub struct FeedPage {
    pub key: FeedKey,
    pub page: u32,
    pub items: Vec<Article>,
    pub has_next: bool,
    /// Visible translations of the items, by article id.
    pub translations: BTreeMap<String, TranslationLink>,
    /// The display name of the tag or byline (from the items), or the category name.
    pub name: Option<String>,
    /// When the next scheduled article of this feed appears: the page is stale from then on.
    pub next_publication: Option<DateTime<Utc>>,
    /// Whether the article bodies are rendered.
    pub content: Content,
}

impl FeedPage {
    /// Newest `updated_at` shown: the document's `lastBuildDate`/`updated` and `Last-Modified`.
    pub fn updated(&self) -> Option<DateTime<Utc>> {
        self.items.iter().map(|a| a.updated_at).max()
    }

    /// The feed's title: the site name, then what it selects.
    pub fn title(&self, config: &Config) -> String {
        let site = config
            .language(&self.key.lang)
            .map(|l| l.site_name.as_str())
            .unwrap_or("");
        match &self.name {
            Some(n) => format!("{site} – {n}"),
            None => site.to_string(),
        }
    }

    pub fn description(&self, config: &Config) -> String {
        let lang = config.language(&self.key.lang);
        let desc = lang
            .map(|l| l.description.as_str())
            .filter(|d| !d.is_empty());
        match (&self.name, desc) {
            (Some(n), Some(d)) => format!("{n} – {d}"),
            (Some(n), None) => n.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => self.title(config),
        }
    }

    /// The news site's page this feed mirrors (RSS `link`, Atom `rel=alternate`, JSON
    /// `home_page_url`): the language home, or the category's section page.
    pub fn home_url(&self, config: &Config) -> String {
        let rel = match &self.key.selector {
            Selector::Category(_) => self.key.dir(config),
            _ => format!("/{}/", self.key.lang),
        };
        config
            .base_url
            .join(rel.trim_start_matches('/'))
            .map(|u| u.to_string())
            .unwrap_or_else(|_| config.base_url.to_string())
    }

    /// A stable `tag:` URI for an entry, from the article id alone.
    pub fn entry_id(config: &Config, article: &Article) -> String {
        format!("tag:{}:article:{}", config.tag_authority, article.id)
    }
}

/// Every feed that shows `article` (in any state): its language feed, category, tags and byline.
pub fn feeds_of(article: &Article) -> Vec<FeedKey> {
    let lang = &article.lang;
    let mut keys = vec![
        FeedKey::new(lang, Selector::All),
        FeedKey::new(lang, Selector::Category(article.category.clone())),
    ];
    keys.extend(
        article
            .tag_slugs()
            .into_iter()
            .map(|s| FeedKey::new(lang, Selector::Tag(s))),
    );
    let author = article.author_slug();
    if !author.is_empty() {
        keys.push(FeedKey::new(lang, Selector::Author(author)));
    }
    keys
}

/// The feeds a write changes: those of the new version, those of the version it replaced (a
/// category or tag may have been removed), and those of its translations (whose entries link to
/// this article's URL, and stop linking when it is withdrawn).
pub fn touched_by(
    new: Option<&Article>,
    old: Option<&Article>,
    translations: &[Article],
) -> BTreeSet<FeedKey> {
    new.into_iter()
        .chain(old)
        .chain(translations)
        .flat_map(feeds_of)
        .collect()
}

/// Every static feed of the configuration (languages × categories), always in the lists.
pub fn configured_feeds(config: &Config) -> Vec<FeedKey> {
    let mut out = Vec::new();
    for l in &config.languages {
        out.push(FeedKey::new(&l.code, Selector::All));
        for c in &config.categories {
            out.push(FeedKey::new(&l.code, Selector::Category(c.id.clone())));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::tests::{config, input};

    #[test]
    fn paths_and_urls_use_localised_slugs() {
        let c = config();
        let k = FeedKey::new("en", Selector::Category("quoc-phong".into()));
        assert_eq!(k.path(&c, Format::Rss), "/en/defence/rss.xml");
        assert_eq!(
            k.url(&c, Format::Atom, 1),
            "http://127.0.0.1:8080/en/defence/atom.xml"
        );
        assert_eq!(
            k.url(&c, Format::Json, 3),
            "http://127.0.0.1:8080/en/defence/feed.json?page=3"
        );
        assert_eq!(
            FeedKey::new("vi", Selector::Tag("gia-lua".into())).path(&c, Format::Rss),
            "/vi/tag/gia-lua/rss.xml"
        );
        assert_eq!(
            FeedKey::new("vi", Selector::All).path(&c, Format::Json),
            "/vi/feed.json"
        );
        assert_eq!(
            k.tag_uri(&c),
            "tag:baolongan.example,2026:feed:en:category:quoc-phong"
        );
    }

    #[test]
    fn a_write_touches_old_and_new_feeds() {
        let c = config();
        let old = Article::from_input(input(), &c).unwrap();
        let mut moved = old.clone();
        moved.category = "xa-hoi".into();
        moved.tags = vec!["Tết".into()];
        let touched = touched_by(Some(&moved), Some(&old), &[]);
        let has = |s: Selector| touched.contains(&FeedKey::new("vi", s));
        assert!(has(Selector::All));
        assert!(has(Selector::Category("kinh-te".into())));
        assert!(has(Selector::Category("xa-hoi".into())));
        assert!(has(Selector::Tag("gia-lua".into())));
        assert!(has(Selector::Tag("tet".into())));
        assert!(has(Selector::Author("minh-thu".into())));
        assert!(
            touched.iter().all(|k| k.lang == "vi"),
            "a vi write touches no en feed"
        );
        assert_eq!(touched.len(), 7);
    }
}

#[cfg(test)]
mod property_tests {
    //! Whatever text arrives in any field, every format stays well-formed.
    use super::*;
    use crate::article::tests::config;
    use crate::article::{ArticleInput, ImageInput};
    use proptest::prelude::*;

    /// Strings biased towards what breaks feeds: control characters, XML syntax, CDATA ends,
    /// unpaired markup, non-BMP and decomposed text, noncharacters.
    fn nasty() -> impl Strategy<Value = String> {
        let pieces = prop_oneof![
            Just("]]>".to_string()),
            Just("<![CDATA[".to_string()),
            Just("<script>alert(1)</script>".to_string()),
            Just("<p onclick=\"x()\">".to_string()),
            Just("</div></p>".to_string()),
            Just("&amp;&lt;&#0;&#xFFFE;&bogus;".to_string()),
            Just("\u{0}\u{1}\u{B}\u{C}\u{1F}\u{7F}\u{FFFE}\u{FFFF}".to_string()),
            Just("Việt Nam".to_string()),
            Just("Vie\u{302}\u{323}t".to_string()),
            Just("😀\u{10FFFF}".to_string()),
            Just("\"'<>&".to_string()),
            any::<String>(),
            "\\PC{0,20}",
        ];
        prop::collection::vec(pieces, 0..6).prop_map(|v| v.concat())
    }

    fn check_xml(body: &[u8], what: &str) -> Result<(), TestCaseError> {
        let text =
            std::str::from_utf8(body).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
        prop_assert!(
            text.chars().all(crate::text::is_xml_char),
            "{what}: illegal XML character"
        );
        roxmltree::Document::parse(text)
            .map_err(|e| TestCaseError::fail(format!("{what}: {e}\n{text}")))?;
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn any_text_in_any_field_yields_well_formed_feeds(
            title in nasty(), summary in nasty(), html in nasty(), author in nasty(),
            tag in nasty(), caption in nasty(), image_url in nasty(),
        ) {
            let c = config();
            let input = ArticleInput {
                id: "p-1".into(),
                lang: "vi".into(),
                category: "kinh-te".into(),
                title: format!("T {title}"),
                summary,
                content_html: html,
                url: "https://baolongan.example/vi/kinh-te/p-1".into(),
                author,
                published_at: "2026-11-01T08:00:00".into(),
                tags: vec![format!("t {tag}")],
                image: Some(ImageInput { url: format!("/a/{image_url}.jpg"), caption, mime: None, length: Some(1234) }),
                ..Default::default()
            };
            let article = match Article::from_input(input, &c) {
                Ok(a) => a,
                // Rejected input is fine (it never reaches a feed); it must be rejected cleanly.
                Err(e) => { prop_assert!(!e.field.is_empty()); return Ok(()); }
            };
            for (key, content) in feeds_of(&article).into_iter().zip([Content::Full, Content::Summary].into_iter().cycle()) {
                let page = FeedPage {
                    key: key.clone(), page: 1, items: vec![article.clone()], has_next: true,
                    translations: BTreeMap::new(), name: Some(article.title.clone()), next_publication: None,
                    content,
                };
                check_xml(&rss::render(&page, &c), "rss")?;
                check_xml(&atom::render(&page, &c), "atom")?;
                let json = json::render(&page, &c);
                let v: serde_json::Value = serde_json::from_slice(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(v["items"][0]["title"].as_str(), Some(article.title.as_str()));
                // The title a strict parser reads back is exactly the stored one.
                let rss_body = String::from_utf8(rss::render(&page, &c)).unwrap();
                let doc = roxmltree::Document::parse(&rss_body).unwrap();
                let t = doc.descendants().find(|n| n.has_tag_name("item")).unwrap()
                    .children().find(|n| n.has_tag_name("title")).unwrap().text().unwrap_or("").to_string();
                prop_assert_eq!(t, article.title.clone());
            }
            let facet = crate::store::Facet { lang: "vi".into(), slug: "x".into(), name: article.title.clone(), count: 2 };
            let listing = listing::select(&c, vec![facet.clone()], vec![facet]);
            prop_assert!(listing.feeds.iter().any(|f| f.title.ends_with(&article.title)));
            check_xml(&opml::render(&c, &listing, Some("k&y")), "opml")?;
            let index = String::from_utf8(html::index(&c, &listing)).unwrap();
            prop_assert!(!index.contains("<script>"), "the index escapes names");
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let c = config();
        let a = Article::from_input(crate::article::tests::input(), &c).unwrap();
        let page = FeedPage {
            key: FeedKey::new("vi", Selector::All),
            page: 1,
            items: vec![a],
            has_next: false,
            translations: BTreeMap::new(),
            name: None,
            next_publication: None,
            content: Content::Full,
        };
        assert_eq!(rss::render(&page, &c), rss::render(&page, &c));
        assert_eq!(atom::render(&page, &c), atom::render(&page, &c));
        assert_eq!(json::render(&page, &c), json::render(&page, &c));
    }

    #[test]
    fn the_summary_variant_carries_no_body() {
        let c = config();
        let mut input = crate::article::tests::input();
        input.content_html = "<p>Toàn văn bài viết: BODY-MARKER</p>".into();
        input.image = Some(crate::article::ImageInput {
            url: "https://baolongan.example/uploads/lua.jpg".into(),
            caption: "Thu hoạch lúa".into(),
            mime: None,
            length: Some(48211),
        });
        let a = Article::from_input(input, &c).unwrap();
        let mut page = FeedPage {
            key: FeedKey::new("vi", Selector::All),
            page: 1,
            items: vec![a.clone()],
            has_next: false,
            translations: BTreeMap::new(),
            name: None,
            next_publication: None,
            content: Content::Full,
        };
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        let full = [
            rss::render(&page, &c),
            atom::render(&page, &c),
            json::render(&page, &c),
        ];
        assert!(full.iter().all(|b| text(b.clone()).contains("BODY-MARKER")));
        page.content = Content::Summary;
        let (r, at, j) = (
            text(rss::render(&page, &c)),
            text(atom::render(&page, &c)),
            text(json::render(&page, &c)),
        );
        for (what, body) in [("rss", &r), ("atom", &at), ("json", &j)] {
            assert!(!body.contains("BODY-MARKER"), "{what} leaks the body");
            assert!(body.contains(&a.title), "{what} keeps the title");
            assert!(
                body.contains("https://baolongan.example/uploads/lua.jpg"),
                "{what} keeps the image"
            );
        }
        assert!(!r.contains("content:encoded") && r.contains("<description>"));
        assert!(!at.contains("<content") && at.contains("<summary"));
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        let item = &v["items"][0];
        assert!(item.get("content_html").is_none());
        assert_eq!(item["content_text"].as_str(), Some(a.summary.as_str()));
        assert_eq!(item["summary"].as_str(), Some(a.summary.as_str()));
    }
}
