//! OPML 2.0 list of every feed, for readers to import in one step.
//!
//! One outline per feed, in RSS (the format every reader supports; the Atom and JSON versions of a
//! feed are other representations of it, and importing all three would subscribe readers three
//! times). Grouped by language, then categories, tags and bylines.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::{FeedKey, Format, Selector};
use crate::config::Config;
use crate::store::Facet;

/// Renders the OPML document for the configured feeds plus the given tag and byline facets.
pub fn render(config: &Config, tags: &[Facet], authors: &[Facet]) -> Vec<u8> {
    render_with_key(config, tags, authors, None)
}

/// [`render`], with `?key=KEY` on every feed URL when a partner's key is given.
pub fn render_with_key(
    config: &Config,
    tags: &[Facet],
    authors: &[Facet],
    partner_key: Option<&str>,
) -> Vec<u8> {
    let mut w = Writer::new(Vec::with_capacity(8 * 1024));
    let ok = "writing to a Vec cannot fail";
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
        .expect(ok);
    w.write_event(Event::Start(
        BytesStart::new("opml").with_attributes([("version", "2.0")]),
    ))
    .expect(ok);
    w.write_event(Event::Start(BytesStart::new("head")))
        .expect(ok);
    let first = &config.languages[0];
    text_element(&mut w, "title", &first.site_name);
    text_element(&mut w, "docs", "http://opml.org/spec2.opml");
    w.write_event(Event::End(BytesEnd::new("head"))).expect(ok);
    w.write_event(Event::Start(BytesStart::new("body")))
        .expect(ok);
    for lang in &config.languages {
        let code = lang.code.as_str();
        w.write_event(Event::Start(BytesStart::new("outline").with_attributes([
            ("text", lang.site_name.as_str()),
            ("language", code),
        ])))
        .expect(ok);
        let mut keys = vec![(FeedKey::new(code, Selector::All), lang.site_name.clone())];
        keys.extend(config.categories.iter().map(|c| {
            (
                FeedKey::new(code, Selector::Category(c.id.clone())),
                format!("{} – {}", lang.site_name, c.name(code)),
            )
        }));
        let facet_keys =
            |facets: &[Facet], make: fn(String) -> Selector| -> Vec<(FeedKey, String)> {
                facets
                    .iter()
                    .filter(|f| f.lang == code)
                    .map(|f| {
                        (
                            FeedKey::new(code, make(f.slug.clone())),
                            format!("{} – {}", lang.site_name, f.name),
                        )
                    })
                    .collect()
            };
        keys.extend(facet_keys(tags, Selector::Tag));
        keys.extend(facet_keys(authors, Selector::Author));
        for (key, title) in keys {
            let mut url = key.url(config, Format::Rss, 1);
            if let Some(k) = partner_key {
                url.push_str("?key=");
                url.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
            }
            let html = config
                .base_url
                .join(key.dir(config).trim_start_matches('/'))
                .map(|u| u.to_string())
                .unwrap_or_default();
            w.write_event(Event::Empty(BytesStart::new("outline").with_attributes([
                ("type", "rss"),
                ("text", title.as_str()),
                ("title", title.as_str()),
                ("xmlUrl", url.as_str()),
                ("htmlUrl", html.as_str()),
                ("language", code),
            ])))
            .expect(ok);
        }
        w.write_event(Event::End(BytesEnd::new("outline")))
            .expect(ok);
    }
    w.write_event(Event::End(BytesEnd::new("body"))).expect(ok);
    w.write_event(Event::End(BytesEnd::new("opml"))).expect(ok);
    w.into_inner()
}

fn text_element(w: &mut Writer<Vec<u8>>, name: &str, text: &str) {
    let ok = "writing to a Vec cannot fail";
    w.write_event(Event::Start(BytesStart::new(name)))
        .expect(ok);
    w.write_event(Event::Text(BytesText::new(text))).expect(ok);
    w.write_event(Event::End(BytesEnd::new(name))).expect(ok);
}
