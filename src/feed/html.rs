//! Small HTML pages for people: the index of the listed feeds (with autodiscovery links, so
//! pasting the service's address into a reader finds the feeds) and a preview of one page of one
//! feed.
//!
//! Pure functions of their data and the configuration, like the feed renderers, so the pages are
//! rendered once, cached and validated like any feed (see `app`), and every replica makes the
//! same bytes. The index names the same bounded list as the OPML ([`super::listing`]).

use super::listing::Listing;
use super::{FeedKey, FeedPage, Format, Selector};
use crate::config::Config;
use crate::text::escape_xml as esc;

pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

fn head(title: &str, lang: &str, alternates: &[(&FeedKey, &str)], config: &Config) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\n",
        esc(lang),
        esc(title)
    );
    for (key, name) in alternates {
        for f in Format::ALL {
            s.push_str(&format!(
                "<link rel=\"alternate\" type=\"{}\" title=\"{}\" href=\"{}\">\n",
                f.mime(),
                esc(name),
                esc(&key.url(config, f, 1))
            ));
        }
    }
    s.push_str("<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}li{margin:.3em 0}</style></head><body>\n");
    s
}

fn feed_links(key: &FeedKey, config: &Config) -> String {
    Format::ALL
        .iter()
        .map(|f| {
            format!(
                "<a href=\"{}\">{}</a>",
                esc(&key.path(config, *f)),
                f.file_name()
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `/`: the listed feeds per language: the configured ones with their three formats, then the
/// tags and bylines as links to their previews, with their article counts.
pub fn index(config: &Config, listing: &Listing) -> Vec<u8> {
    let first = &config.languages[0];
    let langs: Vec<(&FeedKey, &str)> = listing
        .feeds
        .iter()
        .filter(|l| l.key.selector == Selector::All)
        .map(|l| (&l.key, l.title.as_str()))
        .collect();
    let mut s = head(&first.site_name, &first.code, &langs, config);
    s.push_str(&format!("<h1>{}</h1>\n<p><a href=\"/feeds.opml\">feeds.opml</a>: every feed, for your reader.</p>\n", esc(&first.site_name)));
    for l in &config.languages {
        s.push_str(&format!(
            "<h2 lang=\"{}\">{}</h2>\n<ul>\n",
            esc(&l.code),
            esc(&l.site_name)
        ));
        for f in listing.of(&l.code).filter(|f| f.articles.is_none()) {
            s.push_str(&format!(
                "<li><a href=\"{}\">{}</a> — {}</li>\n",
                esc(&f.key.dir(config)),
                esc(&f.title),
                feed_links(&f.key, config)
            ));
        }
        s.push_str("</ul>\n");
        for (heading, tag) in [("Tags", true), ("Bylines", false)] {
            let mut of_kind = listing
                .of(&l.code)
                .filter(|f| matches!(f.key.selector, Selector::Tag(_)) == tag)
                .filter_map(|f| f.articles.map(|n| (f, n)))
                .peekable();
            if of_kind.peek().is_none() {
                continue;
            }
            s.push_str(&format!("<h3>{heading}</h3>\n<ul>\n"));
            for (f, n) in of_kind {
                s.push_str(&format!(
                    "<li><a href=\"{}\">{}</a> <small>({n})</small></li>\n",
                    esc(&f.key.dir(config)),
                    esc(&f.title),
                ));
            }
            s.push_str("</ul>\n");
        }
    }
    s.push_str("</body></html>\n");
    s.into_bytes()
}

/// `/vi/kinh-te/?page=N`: one page of a feed's newest articles (title, time, summary; never the
/// body, so one preview serves the public and partners alike), with autodiscovery of its formats.
pub fn preview(page: &FeedPage, config: &Config) -> Vec<u8> {
    let key = &page.key;
    let title = page.title(config);
    let mut s = head(&title, &key.lang, &[(key, title.as_str())], config);
    s.push_str(&format!(
        "<h1>{}</h1>\n<p>{}</p>\n<ol>\n",
        esc(&title),
        feed_links(key, config)
    ));
    for a in &page.items {
        let local = a
            .published_at
            .with_timezone(&config.zone.0)
            .format("%d/%m/%Y - %H:%M");
        s.push_str(&format!(
            "<li><a href=\"{}\">{}</a> <small>{}</small><br>{}</li>\n",
            esc(&a.url),
            esc(&a.title),
            local,
            esc(&a.summary)
        ));
    }
    s.push_str("</ol>\n");
    if page.has_next {
        s.push_str(&format!(
            "<p><a href=\"?page={}\">→</a></p>\n",
            page.page + 1
        ));
    }
    s.push_str("</body></html>\n");
    s.into_bytes()
}
