//! RSS 2.0, written with the `rss` crate.
//!
//! Items carry the summary in `description` and the full sanitised HTML in `content:encoded`
//! (CDATA; the crate splits `]]>`), the byline in `dc:creator`, the category and tags as
//! `category`, a permanent `tag:` guid with `isPermaLink="false"`, and dates in RFC 822 with a
//! numeric offset in the site zone. The photo is an `enclosure` only when its length is known
//! (RSS requires the length; a made-up one fails validators) and `media:content` always, which
//! also carries the caption. The channel links itself, its hubs and its neighbouring pages with
//! `atom:link` (RFC 5005 paging).

use std::collections::BTreeMap;

use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::extension::{Extension, ExtensionMap};
use rss::{Category, Channel, Enclosure, Guid, Item};

use super::{Content, FeedPage, Format};
use crate::article::Article;
use crate::config::Config;

const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

pub fn render(page: &FeedPage, config: &Config) -> Vec<u8> {
    let zone = config.zone;
    let mut channel = Channel {
        title: page.title(config),
        link: page.home_url(config),
        description: page.description(config),
        language: Some(page.key.lang.clone()),
        last_build_date: page.updated().map(|t| zone.rfc822(t)),
        generator: Some("bantin".into()),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        items: page.items.iter().map(|a| item(a, page, config)).collect(),
        ..Default::default()
    };
    channel.atom_ext = Some(AtomExtension {
        links: channel_links(page, config),
    });
    if page.items.iter().any(|a| a.image.is_some()) {
        channel.namespaces = BTreeMap::from([("media".to_string(), MEDIA_NS.to_string())]);
    }
    let xml = channel
        .write_to(Vec::with_capacity(16 * 1024))
        .expect("writing to a Vec cannot fail");
    rss_profile_references(&xml)
}

fn link(rel: &str, href: String, mime: Option<&str>) -> Link {
    Link {
        href,
        rel: rel.into(),
        mime_type: mime.map(String::from),
        ..Default::default()
    }
}

/// `self`, `hub`s, and RFC 5005 `first`/`previous`/`next` links, shared with Atom.
pub(super) fn paging_links(page: &FeedPage, config: &Config, format: Format) -> Vec<Link> {
    let mime = Some(format.mime());
    let mut links = vec![link("self", page.key.url(config, format, page.page), mime)];
    links.extend(
        config
            .advertised_hubs()
            .iter()
            .map(|h| link("hub", h.to_string(), None)),
    );
    links.push(link("first", page.key.url(config, format, 1), mime));
    if page.page > 1 {
        links.push(link(
            "previous",
            page.key.url(config, format, page.page - 1),
            mime,
        ));
    }
    if page.has_next {
        links.push(link(
            "next",
            page.key.url(config, format, page.page + 1),
            mime,
        ));
    }
    links
}

fn channel_links(page: &FeedPage, config: &Config) -> Vec<Link> {
    paging_links(page, config, Format::Rss)
}

fn item(a: &Article, page: &FeedPage, config: &Config) -> Item {
    let zone = config.zone;
    let mut categories = vec![Category {
        name: config
            .category(&a.category)
            .map(|c| c.name(&a.lang).to_string())
            .unwrap_or_else(|| a.category.clone()),
        domain: None,
    }];
    categories.extend(a.tags.iter().map(|t| Category {
        name: t.clone(),
        domain: None,
    }));
    let mut item = Item {
        title: Some(a.title.clone()),
        link: Some(a.url.clone()),
        // RSS `description` is HTML; the summary is plain text, so it is escaped once as text
        // ("giá & <phí>" must not become a tag in a reader).
        // An item with content but no summary still gets a `description` (the title): readers
        // and validators expect it before `content:encoded`.
        description: if !a.summary.is_empty() {
            Some(crate::text::escape_xml(&a.summary))
        } else if page.content == Content::Full && !a.content_html.is_empty() {
            Some(crate::text::escape_xml(&a.title))
        } else {
            None
        },
        categories,
        guid: Some(Guid {
            value: FeedPage::entry_id(config, a),
            permalink: false,
        }),
        pub_date: Some(zone.rfc822(a.published_at)),
        content: (page.content == Content::Full && !a.content_html.is_empty())
            .then(|| a.content_html.clone()),
        source: a.source.as_ref().map(|c| rss::Source {
            url: c.feed_url.clone(),
            title: Some(c.title.clone()),
        }),
        ..Default::default()
    };
    if !a.author.is_empty() {
        item.dublin_core_ext = Some(DublinCoreExtension {
            creators: vec![a.author.clone()],
            ..Default::default()
        });
    }
    if let Some(img) = &a.image {
        if let Some(length) = img.length {
            item.enclosure = Some(Enclosure {
                url: img.url.clone(),
                length: length.to_string(),
                mime_type: img.mime.clone(),
            });
        }
        let mut attrs = BTreeMap::from([
            ("url".to_string(), img.url.clone()),
            ("type".to_string(), img.mime.clone()),
            ("medium".to_string(), "image".to_string()),
        ]);
        if let Some(length) = img.length {
            attrs.insert("fileSize".into(), length.to_string());
        }
        let mut children = BTreeMap::new();
        if !img.caption.is_empty() {
            children.insert(
                "media:description".to_string(),
                vec![Extension {
                    name: "media:description".into(),
                    value: Some(img.caption.clone()),
                    ..Default::default()
                }],
            );
        }
        let content = Extension {
            name: "media:content".into(),
            value: None,
            attrs,
            children,
        };
        let mut ext: ExtensionMap = BTreeMap::new();
        ext.insert(
            "media".into(),
            BTreeMap::from([("media:content".to_string(), vec![content])]),
        );
        item.extensions = ext;
    }
    item
}

/// Rewrites `&amp;` and `&lt;` in element text as `&#x26;` and `&#x3C;`, as the RSS Advisory
/// Board's profile recommends: readers that treat RSS titles as HTML decode the text twice, and a
/// title such as "Giá & <chi phí>" would otherwise lose its angle-bracketed words (the W3C
/// validator warns). The two forms are the same characters to an XML parser. CDATA sections (the
/// HTML of `description` and `content:encoded`) are left exactly as they are, so the HTML is
/// byte-for-byte the one the Atom and JSON versions carry.
pub fn rss_profile_references(xml: &[u8]) -> Vec<u8> {
    const OPEN: &[u8] = b"<![CDATA[";
    const CLOSE: &[u8] = b"]]>";
    let mut out = Vec::with_capacity(xml.len() + xml.len() / 64);
    let mut rest = xml;
    while let Some(i) = memchr::memchr2(b'&', b'<', rest) {
        out.extend_from_slice(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with(OPEN) {
            let end = memchr::memmem::find(rest, CLOSE).map_or(rest.len(), |e| e + CLOSE.len());
            out.extend_from_slice(&rest[..end]);
            rest = &rest[end..];
        } else if rest.starts_with(b"&amp;") {
            out.extend_from_slice(b"&#x26;");
            rest = &rest[5..];
        } else if rest.starts_with(b"&lt;") {
            out.extend_from_slice(b"&#x3C;");
            rest = &rest[4..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_profile_references_rewrite_only_amp_and_lt() {
        let xml = b"<title>Gi\xc3\xa1 &amp; &lt;chi ph\xc3\xad&gt; &quot;x&quot; &#39;</title>";
        let out = rss_profile_references(xml);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<title>Giá &#x26; &#x3C;chi phí&gt; &quot;x&quot; &#39;</title>"
        );
        assert_eq!(rss_profile_references(b"no refs"), b"no refs");
        assert_eq!(rss_profile_references(b"&"), b"&");
        assert_eq!(rss_profile_references(b"&am"), b"&am");
        assert_eq!(
            rss_profile_references(b"<a>&amp;</a><![CDATA[&amp; &lt;p>]]><b>&lt;</b>"),
            b"<a>&#x26;</a><![CDATA[&amp; &lt;p>]]><b>&#x3C;</b>",
            "CDATA is untouched"
        );
    }
}
