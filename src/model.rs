//! The shared vocabulary of feeds: which feed ([`FeedKey`]: a language and a [`Selector`]), in
//! which [`Format`], with how much of each article ([`Content`]); and the tags and bylines that
//! exist ([`Facet`]), as bounded lists ask for them ([`FacetBound`]).
//!
//! A leaf: it imports nothing of bantin's, so the store, the cache, the renderers and the HTTP
//! layer can all name a feed without importing each other (before it, `store` and `feed`
//! imported one another). What needs the configuration — a feed's path and URL, its `tag:` URI —
//! is in [`crate::routes`], the one module that builds and parses public URLs.

/// What a feed selects within its language. Tags and bylines are held as slugs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Selector {
    All,
    Category(String),
    Tag(String),
    Author(String),
}

/// One feed, independent of format and page.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FeedKey {
    pub lang: String,
    pub selector: Selector,
}

impl FeedKey {
    pub fn new(lang: &str, selector: Selector) -> FeedKey {
        FeedKey {
            lang: lang.to_string(),
            selector,
        }
    }

    /// The CDN purge key of this feed, all its pages and formats: `feed-vi`,
    /// `feed-vi-category-kinh-te`, `feed-vi-tag-gia-lua`, `feed-vi-author-minh-thu` (categories by
    /// their stable id, so renaming a slug does not orphan cached copies).
    pub fn surrogate_key(&self) -> String {
        match &self.selector {
            Selector::All => format!("feed-{}", self.lang),
            Selector::Category(id) => format!("feed-{}-category-{id}", self.lang),
            Selector::Tag(s) => format!("feed-{}-tag-{s}", self.lang),
            Selector::Author(s) => format!("feed-{}-author-{s}", self.lang),
        }
    }

    /// The keys a response of this feed carries (`Surrogate-Key`, space-separated): the feed's own
    /// and its language's (`lang-vi`), so a CDN can purge one feed or a whole language.
    pub fn surrogate_keys(&self) -> String {
        format!("{} lang-{}", self.surrogate_key(), self.lang)
    }
}

/// [`FeedKey::surrogate_keys`] in the form of `Cache-Tag` (comma-separated: Cloudflare, Bunny).
pub fn cache_tag(surrogate_keys: &str) -> String {
    surrogate_keys.replace(' ', ",")
}

/// The three serialisations of a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Rss,
    Atom,
    Json,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Rss, Format::Atom, Format::Json];

    pub fn file_name(self) -> &'static str {
        match self {
            Format::Rss => "rss.xml",
            Format::Atom => "atom.xml",
            Format::Json => "feed.json",
        }
    }

    pub fn from_file_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.file_name() == name)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Json => "application/feed+json",
        }
    }

    /// The MIME type without parameters, for `<link type>` and OPML.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml",
            Format::Atom => "application/atom+xml",
            Format::Json => "application/feed+json",
        }
    }
}

/// How much of each article a rendered feed carries: everything, or what a public teaser feed
/// may (title, summary, image and link; never the body), when `[access] public_content` is
/// `"summary"` and the request is not a partner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Content {
    Full,
    Summary,
}

/// A tag or byline that has published articles, for OPML and the HTML index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facet {
    pub lang: String,
    pub slug: String,
    pub name: String,
    pub count: u64,
}

/// Which facets a listing asks for: those with at least `min_articles` visible articles, the
/// `limit` most used of each kind (ties by language, then slug). Bounded so that a corpus with
/// half a million tags and bylines costs the caller at most `limit` rows of each, whatever the
/// store holds: the counting stays in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FacetBound {
    pub min_articles: u64,
    pub limit: usize,
}

impl FacetBound {
    /// Every facet (the `export` command, which writes every feed anyway).
    pub const ALL: FacetBound = FacetBound {
        min_articles: 1,
        limit: usize::MAX,
    };
}
