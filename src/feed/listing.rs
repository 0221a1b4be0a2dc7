//! Which feeds the lists of feeds name: `/feeds.opml`, a partner's OPML and the HTML index `/`.
//!
//! A list names every feed a reader might subscribe to, but tags and bylines are made by whoever
//! writes articles: 10,000 articles with 50 tags and a byline each are half a million feeds, and
//! a list of them all was a 130 MB document. So a list is bounded (`[opml]`): the configured
//! feeds (each language, each category) always, then tags and bylines with at least
//! `min_articles` visible articles, the most used first (ties by language, then tag before byline,
//! then slug), until it names `max_outlines` feeds. The store returns at most that many facets of
//! each kind ([`crate::model::FacetBound`]), so choosing costs memory in proportion to the bound,
//! never to the archive. A feed left out still exists at its URL; it is only not advertised.
//!
//! Choosing is a pure function of the facets and the configuration, so every replica lists the
//! same feeds in the same order and the documents are byte-identical.

use super::{FeedKey, Selector, configured_feeds};
use crate::config::Config;
use crate::model::{Facet, FacetBound};

/// One feed of a list, with the title readers see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub key: FeedKey,
    pub title: String,
    /// Visible articles, for tags and bylines (configured feeds are listed whatever they hold).
    pub articles: Option<u64>,
}

/// The feeds a list names, grouped by language in the configured order: the language feed, its
/// categories, then its tags and its bylines (each by slug).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub feeds: Vec<Listed>,
}

/// What to ask the store for: enough of each kind to fill the list on its own.
pub fn bound(config: &Config) -> FacetBound {
    FacetBound {
        min_articles: config.opml.min_articles,
        limit: config.opml.max_outlines,
    }
}

/// Chooses the listed feeds from the store's facets (see the module docs for the rule).
pub fn select(config: &Config, tags: Vec<Facet>, authors: Vec<Facet>) -> Listing {
    let configured = configured_feeds(config);
    let room = config.opml.max_outlines.saturating_sub(configured.len());
    let known = |f: &Facet| config.language(&f.lang).is_some();
    let mut chosen: Vec<(Facet, bool)> = tags
        .into_iter()
        .map(|f| (f, true))
        .chain(authors.into_iter().map(|f| (f, false)))
        .filter(|(f, _)| f.count >= config.opml.min_articles && known(f))
        .collect();
    // The most used first; `true` (a tag) sorts before `false` among equals.
    chosen.sort_by(|(a, a_tag), (b, b_tag)| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.lang.cmp(&b.lang))
            .then_with(|| b_tag.cmp(a_tag))
            .then_with(|| a.slug.cmp(&b.slug))
    });
    chosen.truncate(room);

    let mut feeds = Vec::with_capacity(configured.len() + chosen.len());
    for lang in &config.languages {
        let site = &lang.site_name;
        for key in configured.iter().filter(|k| k.lang == lang.code) {
            let title = match &key.selector {
                Selector::Category(id) => match config.category(id) {
                    Some(c) => format!("{site} – {}", c.name(&lang.code)),
                    None => site.clone(),
                },
                _ => site.clone(),
            };
            feeds.push(Listed {
                key: key.clone(),
                title,
                articles: None,
            });
        }
        for want_tag in [true, false] {
            let mut of_kind: Vec<&Facet> = chosen
                .iter()
                .filter(|(f, is_tag)| *is_tag == want_tag && f.lang == lang.code)
                .map(|(f, _)| f)
                .collect();
            of_kind.sort_by(|a, b| a.slug.cmp(&b.slug));
            feeds.extend(of_kind.into_iter().map(|f| Listed {
                key: FeedKey::new(
                    &f.lang,
                    if want_tag {
                        Selector::Tag(f.slug.clone())
                    } else {
                        Selector::Author(f.slug.clone())
                    },
                ),
                title: format!("{site} – {}", f.name),
                articles: Some(f.count),
            }));
        }
    }
    Listing { feeds }
}

impl Listing {
    /// The feeds of one language, in list order.
    pub fn of<'a>(&'a self, lang: &'a str) -> impl Iterator<Item = &'a Listed> + 'a {
        self.feeds.iter().filter(move |l| l.key.lang == lang)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::tests::config;

    fn facet(lang: &str, slug: &str, count: u64) -> Facet {
        Facet {
            lang: lang.into(),
            slug: slug.into(),
            name: slug.to_uppercase(),
            count,
        }
    }

    #[test]
    fn configured_feeds_always_then_the_most_used_tags_and_bylines() {
        let mut c = config();
        let configured = configured_feeds(&c).len();
        c.opml.max_outlines = configured + 3;
        c.opml.min_articles = 2;
        let tags = vec![
            facet("vi", "a", 9),
            facet("vi", "b", 2),
            facet("vi", "once", 1),
            facet("en", "c", 5),
            facet("fr", "unknown-language", 50),
        ];
        let authors = vec![facet("vi", "minh-thu", 5), facet("en", "z", 3)];
        let l = select(&c, tags, authors);
        assert_eq!(l.feeds.len(), configured + 3);
        assert!(
            configured_feeds(&c)
                .iter()
                .all(|k| l.feeds.iter().any(|f| &f.key == k))
        );
        let extra: Vec<(&str, &Selector)> = l
            .feeds
            .iter()
            .filter(|f| f.articles.is_some())
            .map(|f| (f.key.lang.as_str(), &f.key.selector))
            .collect();
        // 9, then the two 5s (en before vi): the 3s and 2s do not fit, the 1 is too few.
        assert_eq!(
            extra,
            [
                ("vi", &Selector::Tag("a".into())),
                ("vi", &Selector::Author("minh-thu".into())),
                ("en", &Selector::Tag("c".into())),
            ]
        );
        let vi_first = l.of("vi").next().unwrap();
        assert_eq!(vi_first.key, FeedKey::new("vi", Selector::All));
        assert!(l.of("vi").any(|f| f.title.ends_with("– MINH-THU")));
    }

    #[test]
    fn a_list_never_exceeds_its_bound_but_keeps_the_configured_feeds() {
        let mut c = config();
        c.opml.max_outlines = 1;
        let tags: Vec<Facet> = (0..10_000)
            .map(|i| facet("vi", &format!("t{i}"), 10))
            .collect();
        let l = select(&c, tags, Vec::new());
        assert_eq!(l.feeds.len(), configured_feeds(&c).len());
        c.opml.max_outlines = 100;
        let tags: Vec<Facet> = (0..10_000)
            .map(|i| facet("vi", &format!("t{i}"), 10))
            .collect();
        assert_eq!(select(&c, tags, Vec::new()).feeds.len(), 100);
    }

    #[test]
    fn the_choice_does_not_depend_on_the_order_facets_arrive_in() {
        let c = config();
        let tags = vec![
            facet("vi", "b", 3),
            facet("vi", "a", 3),
            facet("en", "c", 3),
        ];
        let mut reversed = tags.clone();
        reversed.reverse();
        assert_eq!(
            select(&c, tags, Vec::new()).feeds,
            select(&c, reversed, Vec::new()).feeds
        );
    }
}
