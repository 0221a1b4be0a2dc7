//! Atom 1.0 (RFC 4287), written with `atom_syndication`.
//!
//! The feed carries `xml:lang`, a stable `tag:` id, `updated` (newest `updated_at` shown), the
//! site as author, and `self`/`alternate`/`hub`/paging links. Each entry lists its own page
//! first (no `hreflang`), then each visible translation with its `hreflang`, then its own page
//! again with its own `hreflang`: feedparser and newsboat take the last `alternate`, feed-rs the
//! first, so all of them land on the entry's own page, and no two links share type and hreflang
//! (which the W3C validator would flag).

use atom_syndication::{Category, Content, Entry, Feed, Generator, Link, Person, Text};
use chrono::{DateTime, Utc};

use super::{FeedPage, Format};
use crate::article::Article;
use crate::config::Config;

pub fn render(page: &FeedPage, config: &Config) -> Vec<u8> {
    let zone = config.zone;
    let lang = config.language(&page.key.lang);
    let site = lang.map(|l| l.site_name.clone()).unwrap_or_default();
    let mut links = super::rss::paging_links(page, config, Format::Atom);
    links.insert(1, alternate(page.home_url(config), None));
    let feed = Feed {
        title: Text::plain(page.title(config)),
        id: page.key.tag_uri(config),
        // An empty feed has no newest article; the epoch keeps the document a pure function
        // of its data rather than of the clock.
        updated: zone.fixed(page.updated().unwrap_or(DateTime::<Utc>::UNIX_EPOCH)),
        authors: vec![Person {
            name: site,
            uri: Some(config.base_url.to_string()),
            ..Default::default()
        }],
        generator: Some(Generator {
            value: "bantin".into(),
            ..Default::default()
        }),
        links,
        subtitle: Some(Text::plain(page.description(config))),
        entries: page.items.iter().map(|a| entry(a, page, config)).collect(),
        lang: Some(page.key.lang.clone()),
        ..Default::default()
    };
    feed.write_to(Vec::with_capacity(16 * 1024))
        .expect("writing to a Vec cannot fail")
}

fn alternate(href: String, hreflang: Option<&str>) -> Link {
    Link {
        href,
        rel: "alternate".into(),
        hreflang: hreflang.map(String::from),
        mime_type: Some("text/html".into()),
        ..Default::default()
    }
}

fn entry(a: &Article, page: &FeedPage, config: &Config) -> Entry {
    let zone = config.zone;
    let mut links = vec![alternate(a.url.clone(), None)];
    let translations: Vec<_> = a
        .translations
        .values()
        .filter_map(|id| page.translations.get(id))
        .collect();
    if !translations.is_empty() {
        links.extend(
            translations
                .iter()
                .map(|t| alternate(t.url.clone(), Some(&t.lang))),
        );
        links.push(alternate(a.url.clone(), Some(&a.lang)));
    }
    if let Some(img) = &a.image {
        links.push(Link {
            href: img.url.clone(),
            rel: "enclosure".into(),
            mime_type: Some(img.mime.clone()),
            length: img.length.map(|l| l.to_string()),
            // An attribute cannot declare its type: a caption a validator would take for markup
            // (an `&` before a word, as in a URL's query) is left out rather than guessed at.
            title: (!img.caption.is_empty() && !looks_like_markup(&img.caption))
                .then(|| img.caption.clone()),
            ..Default::default()
        });
    }
    let mut categories = vec![Category {
        term: a.category.clone(),
        label: config
            .category(&a.category)
            .map(|c| c.name(&a.lang).to_string()),
        ..Default::default()
    }];
    categories.extend(a.tags.iter().map(|t| Category {
        term: t.clone(),
        ..Default::default()
    }));
    let full = page.content == super::Content::Full && !a.content_html.is_empty();
    Entry {
        title: text(&a.title),
        id: FeedPage::entry_id(config, a),
        updated: zone.fixed(a.updated_at),
        published: Some(zone.fixed(a.published_at)),
        authors: if a.author.is_empty() {
            vec![]
        } else {
            vec![Person {
                name: a.author.clone(),
                ..Default::default()
            }]
        },
        categories,
        links,
        summary: if !a.summary.is_empty() {
            Some(text(&a.summary))
        } else if !full {
            // Every entry has textual content: without a summary or content, its title.
            Some(text(&a.title))
        } else {
            None
        },
        content: full.then(|| Content {
            value: Some(a.content_html.clone()),
            content_type: Some("html".into()),
            ..Default::default()
        }),
        source: a.source.as_ref().map(|c| credit(c, a, config)),
        ..Default::default()
    }
}

/// A plain-text field as an Atom text construct: `type="text"`, unless the text holds what a
/// reader would take for markup (`<b>`, `&amp;` written out, as upstream titles do): then it is
/// declared `html` and escaped once more, so it still shows exactly as written and no validator
/// (or reader) guesses.
fn text(s: &str) -> Text {
    if looks_like_markup(s) {
        Text::html(crate::text::escape_xml(s))
    } else {
        Text::plain(s.to_string())
    }
}

/// A tag start (`<p`, `</`, `<!`) or what could be an entity reference (`&amp;`, `&#39;`, and,
/// as the W3C validator reads text, any `&` before a word character: `?a=1&b_c=2`) in plain
/// text.
fn looks_like_markup(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2).any(|w| {
        (w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'))
            || (w[0] == b'&' && (w[1].is_ascii_alphanumeric() || w[1] == b'_' || w[1] == b'#'))
    })
}

/// RFC 4287 §4.2.11: the entry's origin feed. Its `updated` is the entry's own, not the upstream
/// feed's: the feed's changes with every upstream edit of any item, and copying it would rewrite
/// every aggregated article (and every feed's ETag) on each poll for nothing a reader sees.
fn credit(c: &crate::article::Credit, a: &Article, config: &Config) -> atom_syndication::Source {
    let mut links = vec![Link {
        href: c.feed_url.clone(),
        rel: "self".into(),
        ..Default::default()
    }];
    if let Some(home) = &c.home_page_url {
        links.push(alternate(home.clone(), None));
    }
    atom_syndication::Source {
        title: Text::plain(c.title.clone()),
        id: c.id.clone(),
        updated: config.zone.fixed(a.updated_at),
        links,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_markup;

    #[test]
    fn text_a_validator_would_take_for_markup() {
        for s in [
            "<b>bold</b>",
            "a </p>",
            "AT&amp;T",
            "&#39;quoted&#39;",
            "watch?v=1&ab_channel=PBS",
            "x &_y",
        ] {
            assert!(looks_like_markup(s), "{s}");
        }
        for s in ["plain", "1 < 2", "R & D", "a&", "tom & jerry", ""] {
            assert!(!looks_like_markup(s), "{s}");
        }
    }
}
