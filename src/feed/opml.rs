//! OPML 2.0 list of every feed, for readers to import in one step.
//!
//! One outline per feed, in RSS (the format every reader supports; the Atom and JSON versions of a
//! feed are other representations of it, and importing all three would subscribe readers three
//! times). Grouped by language, then categories, tags and bylines. Which feeds are listed (a
//! bounded choice: the configured feeds, then the most used tags and bylines) is
//! [`super::listing`]'s decision; this only writes them out.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::Format;
use super::listing::Listing;
use crate::config::Config;

/// Bytes an outline takes, about, for sizing the buffer once.
const OUTLINE_BYTES: usize = 320;

/// Renders the OPML document of the listed feeds, with `?key=KEY` on every feed URL when a
/// partner's key is given.
pub fn render(config: &Config, listing: &Listing, partner_key: Option<&str>) -> Vec<u8> {
    let mut w = Writer::new(Vec::with_capacity(
        1024 + listing.feeds.len() * OUTLINE_BYTES,
    ));
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
    let key_query = partner_key.map(|k| {
        let mut q = String::from("?key=");
        q.extend(url::form_urlencoded::byte_serialize(k.as_bytes()));
        q
    });
    for lang in &config.languages {
        let code = lang.code.as_str();
        w.write_event(Event::Start(BytesStart::new("outline").with_attributes([
            ("text", lang.site_name.as_str()),
            ("language", code),
        ])))
        .expect(ok);
        for listed in listing.of(code) {
            let mut url = listed.key.url(config, Format::Rss, 1);
            if let Some(q) = &key_query {
                url.push_str(q);
            }
            let html = config
                .base_url
                .join(listed.key.dir(config).trim_start_matches('/'))
                .map(|u| u.to_string())
                .unwrap_or_default();
            let title = listed.title.as_str();
            w.write_event(Event::Empty(BytesStart::new("outline").with_attributes([
                ("type", "rss"),
                ("text", title),
                ("title", title),
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
