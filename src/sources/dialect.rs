//! The repaired tree of an upstream XML document ([`super::recover`]) read as a feed: every RSS
//! (0.90, 0.91-0.94, 1.0, 2.0, 2.01, without or with an unknown `version`, in the userland or
//! any other namespace, items inside or outside `<channel>`) and Atom (0.3 mapped to 1.0)
//! dialect into feed-rs's model, so the mapping to articles is one for every format (JSON Feed
//! still comes from feed-rs itself).
//!
//! Mapped straight from the tree rather than re-serialised for feed-rs to parse again: feed-rs
//! reads RSS text as plain text, does not know Atom 0.3, `mode="base64"`, media:group captions
//! or `xhtml:body`, and would need a second full parse. Here each text is typed as its format
//! defines it (RSS titles plain text unless they carry entity-encoded markup, descriptions
//! HTML, Atom text constructs by `type`), links are resolved against `xml:base`, and dates go
//! through [`super::dates`] (feedparser's handler chain, naive times site-local).
//!
//! Deviations found here are counted into the same [`Repairs`] as the reader's, so the
//! source's status line names them. Work is linear in the tree (each element visited a bounded
//! number of times); the tree's depth is bounded by the reader.

use base64::Engine;
use chrono::{DateTime, Utc};
use feed_rs::model::{
    Category, Content, Entry, Feed, FeedType, Image, Link, MediaContent, MediaObject,
    MediaThumbnail, Person, Text,
};
use url::Url;

use super::recover::{Element, Node, Repair, Repairs, XML_NS};
use crate::clock::SiteZone;

const ATOM10: &str = "http://www.w3.org/2005/Atom";
const ATOM03: &str = "http://purl.org/atom/ns#";
const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const DC: &str = "http://purl.org/dc/elements/1.1/";
const DCTERMS: &str = "http://purl.org/dc/terms/";
const CONTENT: &str = "http://purl.org/rss/1.0/modules/content/";
const MEDIA: &str = "http://search.yahoo.com/mrss/";
const XHTML: &str = "http://www.w3.org/1999/xhtml";
const ITUNES: &str = "http://www.itunes.com/dtds/podcast-1.0.dtd";

/// Namespaces whose elements are never RSS's own, whatever namespace the document puts RSS in.
const EXTENSIONS: &[&str] = &[
    ATOM10,
    ATOM03,
    RDF,
    DC,
    DCTERMS,
    CONTENT,
    MEDIA,
    XHTML,
    ITUNES,
    "http://webns.net/mvcb/",
    "http://rssnamespace.org/feedburner/ext/1.0",
    "http://www.georss.org/georss",
    "https://podcastindex.org/namespace/1.0",
    "http://purl.org/rss/1.0/modules/slash/",
    "http://purl.org/rss/1.0/modules/syndication/",
    "http://purl.org/syndication/thread/1.0",
    "http://wellformedweb.org/CommentAPI/",
];

/// The RSS namespaces that are RSS's own (no repair to note).
const RSS_NAMESPACES: &[&str] = &[
    "",
    "http://purl.org/rss/1.0/",
    "http://my.netscape.com/rdf/simple/0.9/",
];

/// How a document read: the feed, and how many item elements it had (so zero items read from a
/// document that has some is an error, never an empty success).
pub struct Reading {
    pub feed: Feed,
    pub item_elements: usize,
}

/// Context every mapping function needs.
struct Ctx<'a> {
    zone: SiteZone,
    now: DateTime<Utc>,
    repairs: &'a mut Repairs,
}

/// Reads the document tree (the virtual root [`super::recover::read`] returns) as a feed.
pub fn read(
    doc: &Element,
    feed_url: &Url,
    zone: SiteZone,
    now: DateTime<Utc>,
    repairs: &mut Repairs,
) -> Result<Reading, String> {
    let Some(root) = doc.elements().next() else {
        return Err("no root element: the document holds no XML element".into());
    };
    let mut cx = Ctx { zone, now, repairs };
    let base = base_of(root, feed_url, cx.repairs);
    let feed = match root.local.to_ascii_lowercase().as_str() {
        "rss" | "channel" | "rdf" => rss(root, &base, &mut cx),
        "feed" => atom(root, &base, &mut cx),
        // A lone Atom entry document (RFC 4287 §4.1.2): a feed of one.
        "entry" => {
            let mut feed = atom(&Element::default(), &base, &mut cx);
            let v03 = root.ns == ATOM03;
            feed.entries.push(atom_entry(root, &base, v03, &mut cx));
            feed
        }
        _ => {
            return Err(format!(
                "the root element is <{}>, not <rss>, <rdf:RDF> or <feed>",
                crate::text::clean_line(&root.qname)
                    .chars()
                    .take(60)
                    .collect::<String>()
            ));
        }
    };
    let item_elements = count_items(root);
    if feed.entries.is_empty() && item_elements > 0 {
        return Err(format!(
            "{item_elements} item element(s) found, but none where its format puts items"
        ));
    }
    Ok(Reading {
        feed,
        item_elements,
    })
}

/// Elements named `item` or `entry` anywhere in the document (iteratively: no recursion).
fn count_items(root: &Element) -> usize {
    let mut n = 0;
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        if e.local.eq_ignore_ascii_case("item") || e.local == "entry" {
            n += 1;
        }
        stack.extend(e.elements());
    }
    n
}

fn empty_feed(feed_type: FeedType) -> Feed {
    Feed {
        feed_type,
        id: String::new(),
        title: None,
        updated: None,
        authors: Vec::new(),
        description: None,
        links: Vec::new(),
        categories: Vec::new(),
        contributors: Vec::new(),
        generator: None,
        icon: None,
        language: None,
        logo: None,
        published: None,
        rating: None,
        rights: None,
        ttl: None,
        people: Vec::new(),
        entries: Vec::new(),
    }
}

/// `xml:base` of `e` resolved against `parent`; an unusable one is noted and ignored.
fn base_of(e: &Element, parent: &Url, repairs: &mut Repairs) -> Url {
    match e.attr_ns(XML_NS, "base") {
        Some(b) => match parent.join(b.trim()) {
            Ok(u) => u,
            Err(_) => {
                repairs.add(Repair::BadBase);
                parent.clone()
            }
        },
        None => parent.clone(),
    }
}

fn is_rss_core(e: &Element) -> bool {
    !EXTENSIONS.contains(&e.ns.as_str())
}

fn child<'a>(e: &'a Element, ns: &str, local: &str) -> Option<&'a Element> {
    e.elements().find(|c| c.ns == ns && c.local == local)
}

/// A child in RSS's own vocabulary (any namespace but the extensions'), by name, ignoring case
/// (`pubdate`, `pubDate` and `PubDate` are all seen).
fn rss_child<'a>(e: &'a Element, local: &str) -> Option<&'a Element> {
    e.elements()
        .find(|c| is_rss_core(c) && c.local.eq_ignore_ascii_case(local))
}

fn nonempty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn text_plain(s: String) -> Text {
    Text {
        content_type: "text/plain".parse().expect("a media type"),
        src: None,
        content: s.trim().to_string(),
    }
}

fn text_html(s: String) -> Text {
    Text {
        content_type: "text/html".parse().expect("a media type"),
        src: None,
        content: s.trim().to_string(),
    }
}

/// What feedparser calls "looks like HTML": an end tag or an entity reference in the text.
fn looks_like_html(s: &str) -> bool {
    let b = s.as_bytes();
    // (A lone start tag is not enough: "Kịch bản <script>" is a title about a tag.)
    b.windows(3)
        .any(|w| w[0] == b'<' && w[1] == b'/' && w[2].is_ascii_alphabetic())
        || s.match_indices('&').any(|(i, _)| {
            let rest = &s[i + 1..];
            let n = rest
                .bytes()
                .take(32)
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'#')
                .count();
            n > 0 && rest.as_bytes().get(n) == Some(&b';')
        })
}

/// The element's content as HTML: its markup when it holds elements (unescaped markup, noted),
/// else its text (which is HTML already, entity-decoded once by the reader).
fn html_of(e: &Element, cx: &mut Ctx) -> String {
    if e.has_element_children() {
        cx.repairs.add(Repair::NakedMarkup);
        inner_html(e)
    } else {
        e.text()
    }
}

/// An RSS title (or other plain text field): plain text, unless it carries markup or entities
/// (entity-encoded in the XML), which are then HTML for [`super::mapping`] to strip and decode.
fn rss_text(e: &Element, cx: &mut Ctx) -> Text {
    if e.has_element_children() {
        cx.repairs.add(Repair::NakedMarkup);
        return text_html(inner_html(e));
    }
    let t = e.text();
    if looks_like_html(&t) {
        text_html(t)
    } else {
        text_plain(t)
    }
}

/// The children of `e` written back as HTML (names without prefixes, text escaped).
pub fn inner_html(e: &Element) -> String {
    let mut out = String::new();
    for c in &e.children {
        write_node(c, &mut out);
    }
    out
}

fn write_node(n: &Node, out: &mut String) {
    match n {
        Node::Text(t) => escape_into(t, out, false),
        Node::Element(e) => {
            let name = e.local.as_str();
            out.push('<');
            out.push_str(name);
            for a in &e.attrs {
                if !a.ns.is_empty() && a.ns != XML_NS {
                    continue;
                }
                out.push(' ');
                out.push_str(&a.local);
                out.push_str("=\"");
                escape_into(&a.value, out, true);
                out.push('"');
            }
            const VOID: &[&str] = &[
                "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                "param", "source", "track", "wbr",
            ];
            if VOID.contains(&name.to_ascii_lowercase().as_str()) && e.children.is_empty() {
                out.push_str(" />");
                return;
            }
            out.push('>');
            for c in &e.children {
                write_node(c, out);
            }
            out.push_str("</");
            out.push_str(name);
            out.push('>');
        }
    }
}

fn escape_into(s: &str, out: &mut String, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

fn date_of(e: Option<&Element>, cx: &Ctx) -> Option<DateTime<Utc>> {
    super::dates::parse(&e?.text(), cx.zone, cx.now)
}

/// The first readable date among `candidates` (in feedparser's order of precedence).
fn first_date(candidates: &[Option<&Element>], cx: &Ctx) -> Option<DateTime<Utc>> {
    candidates.iter().find_map(|e| date_of(*e, cx))
}

fn link(href: String) -> Link {
    Link {
        href,
        target: None,
        rel: None,
        media_type: None,
        href_lang: None,
        title: None,
        length: None,
    }
}

fn resolve(base: &Url, href: &str) -> Option<String> {
    let h = href.trim();
    if h.is_empty() {
        return None;
    }
    base.join(h).ok().map(String::from)
}

// ---------------------------------------------------------------------------------------------
// RSS

fn rss(root: &Element, base: &Url, cx: &mut Ctx) -> Feed {
    let lower = root.local.to_ascii_lowercase();
    let rdf = lower == "rdf";
    if !rdf {
        if !RSS_NAMESPACES.contains(&root.ns.as_str()) {
            cx.repairs.add(Repair::ForeignRssNamespace);
        }
        let known = ["0.91", "0.92", "0.93", "0.94", "2.0", "2.0.1", "2.01"];
        if lower == "rss"
            && !root
                .attr("version")
                .is_some_and(|v| known.contains(&v.trim()))
        {
            cx.repairs.add(Repair::RssVersion);
        }
    }
    let channel = if lower == "channel" {
        Some(root)
    } else {
        rss_child(root, "channel")
    };
    if channel.is_none() && !rdf {
        cx.repairs.add(Repair::NoChannel);
    }
    let ch = channel.unwrap_or(root);
    let ch_base = if std::ptr::eq(ch, root) {
        base.clone()
    } else {
        base_of(ch, base, cx.repairs)
    };

    let mut feed = empty_feed(if rdf {
        FeedType::RSS1
    } else if root.attr("version").is_some_and(|v| v.starts_with("0.9")) {
        FeedType::RSS0
    } else {
        FeedType::RSS2
    });
    feed.title = rss_child(ch, "title")
        .or_else(|| child(ch, DC, "title"))
        .map(|t| rss_text(t, cx));
    feed.description = rss_child(ch, "description").map(|d| text_html(html_of(d, cx)));
    if let Some(l) = rss_child(ch, "link").and_then(|l| resolve(&ch_base, &l.text())) {
        feed.links.push(link(l));
    }
    if let Some(l) = child(ch, ATOM10, "link")
        .filter(|l| l.attr("rel").is_none_or(|r| r == "alternate"))
        .and_then(|l| resolve(&ch_base, l.attr("href")?))
    {
        feed.links.push(link(l));
    }
    feed.updated = first_date(
        &[
            rss_child(ch, "lastBuildDate"),
            child(ch, DC, "date"),
            rss_child(ch, "pubDate"),
        ],
        cx,
    );
    if let Some(a) = rss_child(ch, "managingEditor")
        .or_else(|| child(ch, DC, "creator"))
        .or_else(|| child(ch, ITUNES, "author"))
    {
        feed.authors.push(person(&a.text()));
    }

    // Items: the channel's, and those placed beside it (under <rss> or <rdf:RDF>).
    let mut items: Vec<&Element> = ch
        .elements()
        .filter(|e| is_rss_core(e) && e.local.eq_ignore_ascii_case("item"))
        .collect();
    if !std::ptr::eq(ch, root) {
        let outside: Vec<&Element> = root
            .elements()
            .filter(|e| is_rss_core(e) && e.local.eq_ignore_ascii_case("item"))
            .collect();
        if !rdf {
            for _ in &outside {
                cx.repairs.add(Repair::ItemsOutsideChannel);
            }
        }
        items.extend(outside);
    }
    for it in items {
        let b = base_of(it, &ch_base, cx.repairs);
        feed.entries.push(rss_item(it, &b, cx));
    }
    feed
}

/// `Name <mail>` or `mail (Name)` or a name.
fn person(raw: &str) -> Person {
    let raw = raw.trim();
    let (name, email) = if let (Some(o), true) = (raw.find('('), raw.ends_with(')')) {
        (raw[o + 1..raw.len() - 1].trim(), Some(raw[..o].trim()))
    } else if let (Some(o), true) = (raw.find('<'), raw.ends_with('>')) {
        (raw[..o].trim(), Some(raw[o + 1..raw.len() - 1].trim()))
    } else {
        (raw, None)
    };
    let name = if name.is_empty() {
        email.unwrap_or_default()
    } else {
        name
    };
    Person {
        name: nonempty(name.to_string()),
        uri: None,
        email: email.and_then(|e| nonempty(e.to_string())),
        role: None,
    }
}

fn rss_item(it: &Element, base: &Url, cx: &mut Ctx) -> Entry {
    let mut e = Entry {
        base: Some(base.to_string()),
        ..Default::default()
    };
    e.title = rss_child(it, "title")
        .or_else(|| child(it, DC, "title"))
        .or_else(|| child(it, MEDIA, "title"))
        .map(|t| rss_text(t, cx))
        .filter(|t| !t.content.is_empty());

    let guid = rss_child(it, "guid");
    let guid_text = guid
        .map(|g| g.text().trim().to_string())
        .unwrap_or_default();
    e.id = guid_text.clone();

    // Links: <link>, atom:link alternate, then a permalink guid.
    if let Some(l) = rss_child(it, "link").and_then(|l| {
        let t = l.text();
        // Some feeds put the URL in an href attribute of <link/> (Atom habits).
        let t = if t.trim().is_empty() {
            l.attr("href").unwrap_or_default().to_string()
        } else {
            t
        };
        resolve(base, &t)
    }) {
        e.links.push(link(l));
    }
    for l in it
        .elements()
        .filter(|c| c.ns == ATOM10 && c.local == "link")
    {
        let rel = l.attr("rel").map(str::trim);
        if let Some(h) = l.attr("href").and_then(|h| resolve(base, h)) {
            let mut lk = link(h);
            lk.rel = rel.filter(|r| *r != "alternate").map(String::from);
            lk.media_type = l.attr("type").map(String::from);
            e.links.push(lk);
        }
    }
    let permalink = guid.is_some_and(|g| {
        !g.attr("isPermaLink")
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("false"))
    });
    if !e.links.iter().any(|l| l.rel.is_none())
        && permalink
        && (guid_text.starts_with("http://") || guid_text.starts_with("https://"))
    {
        e.links.push(link(guid_text.clone()));
    }
    // RSS 1.0 items without <link>: rdf:about names the item's page.
    if e.links.is_empty()
        && let Some(about) = it.attr_ns(RDF, "about").and_then(|a| resolve(base, a))
        && about.starts_with("http")
    {
        e.links.push(link(about));
    }

    // Summary: description, else dc:description, itunes:summary, media:description.
    let media_description = child(it, MEDIA, "description")
        .or_else(|| child(it, MEDIA, "group").and_then(|g| child(g, MEDIA, "description")));
    e.summary = rss_child(it, "description")
        .or_else(|| child(it, DC, "description"))
        .map(|d| text_html(html_of(d, cx)))
        .or_else(|| child(it, ITUNES, "summary").map(|d| text_plain(d.text())))
        .or_else(|| media_description.map(|d| media_text(d, cx)))
        .filter(|t| !t.content.is_empty());

    // Content: content:encoded, xhtml:body, atom:content.
    let body = child(it, CONTENT, "encoded")
        .map(|c| html_of(c, cx))
        .or_else(|| child(it, XHTML, "body").map(inner_html))
        .or_else(|| child(it, ATOM10, "content").map(|c| atom_text(c, false, cx).content))
        .and_then(nonempty);
    e.content = body.map(|b| Content {
        body: Some(b),
        content_type: "text/html".parse().expect("a media type"),
        length: None,
        src: None,
    });

    e.published = first_date(
        &[
            rss_child(it, "pubDate"),
            child(it, DCTERMS, "issued"),
            child(it, ATOM10, "published"),
            child(it, DCTERMS, "created"),
        ],
        cx,
    );
    e.updated = first_date(
        &[
            child(it, ATOM10, "updated"),
            child(it, DC, "date"),
            child(it, DCTERMS, "modified"),
            child(it, DCTERMS, "date"),
        ],
        cx,
    );

    for a in it.elements().filter(|c| {
        (is_rss_core(c) && c.local.eq_ignore_ascii_case("author"))
            || (c.ns == DC && c.local == "creator")
            || (c.ns == ITUNES && c.local == "author")
    }) {
        let p = person(&a.text());
        if p.name.is_some() {
            e.authors.push(p);
        }
    }
    for c in it.elements().filter(|c| {
        (is_rss_core(c) && c.local.eq_ignore_ascii_case("category"))
            || (c.ns == DC && c.local == "subject")
    }) {
        let t = c.text().trim().to_string();
        if !t.is_empty() {
            e.categories.push(Category {
                term: t,
                scheme: c.attr("domain").map(String::from),
                label: None,
                subcategories: Vec::new(),
            });
        }
    }
    media_of(it, base, &mut e, cx);
    for enc in it
        .elements()
        .filter(|c| is_rss_core(c) && c.local.eq_ignore_ascii_case("enclosure"))
    {
        if let Some(url) = enc
            .attr("url")
            .and_then(|u| resolve(base, u))
            .and_then(|u| Url::parse(&u).ok())
        {
            let mut m = MediaObject::default();
            m.content.push(MediaContent {
                url: Some(url),
                content_type: enc.attr("type").and_then(|t| t.trim().parse().ok()),
                height: None,
                width: None,
                duration: None,
                size: enc.attr("length").and_then(|l| l.trim().parse().ok()),
                rating: None,
            });
            e.media.push(m);
        }
    }
    e
}

/// A media:description or media:title: plain unless typed html.
fn media_text(d: &Element, cx: &mut Ctx) -> Text {
    if d.attr("type").is_some_and(|t| t.contains("html")) {
        text_html(html_of(d, cx))
    } else {
        text_plain(d.text())
    }
}

/// Media RSS: media:content, media:thumbnail, media:title/description, directly in the item or
/// in media:group (YouTube), into feed-rs media objects.
fn media_of(it: &Element, base: &Url, e: &mut Entry, cx: &mut Ctx) {
    let mut holders: Vec<&Element> = vec![it];
    holders.extend(
        it.elements()
            .filter(|c| c.ns == MEDIA && c.local == "group"),
    );
    for h in holders {
        let mut m = MediaObject::default();
        m.title = child(h, MEDIA, "title").map(|t| media_text(t, cx));
        m.description = child(h, MEDIA, "description").map(|t| media_text(t, cx));
        for c in h
            .elements()
            .filter(|c| c.ns == MEDIA && c.local == "content")
        {
            let Some(url) = c
                .attr("url")
                .and_then(|u| resolve(base, u))
                .and_then(|u| Url::parse(&u).ok())
            else {
                continue;
            };
            let ty = c
                .attr("type")
                .map(str::trim)
                .map(String::from)
                .or_else(|| (c.attr("medium") == Some("image")).then(|| "image/*".to_string()));
            m.content.push(MediaContent {
                url: Some(url),
                content_type: ty.and_then(|t| t.parse().ok()),
                height: c.attr("height").and_then(|v| v.trim().parse().ok()),
                width: c.attr("width").and_then(|v| v.trim().parse().ok()),
                duration: None,
                size: c.attr("fileSize").and_then(|v| v.trim().parse().ok()),
                rating: None,
            });
        }
        for t in h
            .elements()
            .filter(|c| c.ns == MEDIA && c.local == "thumbnail")
        {
            if let Some(u) = t.attr("url").and_then(|u| resolve(base, u)) {
                m.thumbnails.push(MediaThumbnail {
                    image: Image {
                        uri: u,
                        title: None,
                        link: None,
                        width: None,
                        height: None,
                        description: None,
                    },
                    time: None,
                });
            }
        }
        if !m.content.is_empty() || !m.thumbnails.is_empty() || m.description.is_some() {
            e.media.push(m);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Atom

fn atom(root: &Element, base: &Url, cx: &mut Ctx) -> Feed {
    let v03 = root.ns == ATOM03 || root.attr("version").is_some_and(|v| v.trim() == "0.3");
    if v03 {
        cx.repairs.add(Repair::Atom03);
    }
    let mut feed = empty_feed(FeedType::Atom);
    let a = is_atom_core;
    let get = atom_child;
    feed.title = get(root, "title").map(|t| atom_text(t, v03, cx));
    feed.description = get(root, "subtitle")
        .or_else(|| get(root, "tagline"))
        .map(|t| atom_text(t, v03, cx));
    feed.id = get(root, "id")
        .map(|i| i.text().trim().to_string())
        .unwrap_or_default();
    feed.links = atom_links(root, base, cx);
    feed.updated = first_date(&[get(root, "updated"), get(root, "modified")], cx);
    feed.authors = root
        .elements()
        .filter(|e| a(e) && e.local == "author")
        .map(atom_person)
        .collect();
    // (`<item>` in an Atom feed is read as an entry, as feedparser does.)
    for en in root
        .elements()
        .filter(|e| a(e) && (e.local == "entry" || e.local == "item"))
    {
        let b = base_of(en, base, cx.repairs);
        feed.entries.push(atom_entry(en, &b, v03, cx));
    }
    feed
}

/// An element of Atom's own vocabulary: in either Atom namespace, none, or the namespace a
/// document put its whole feed in (feedparser reads those as Atom too).
fn is_atom_core(e: &Element) -> bool {
    e.ns == ATOM10 || e.ns == ATOM03 || !EXTENSIONS.contains(&e.ns.as_str())
}

fn atom_child<'a>(e: &'a Element, local: &str) -> Option<&'a Element> {
    e.elements().find(|c| is_atom_core(c) && c.local == local)
}

/// The last child of that name: where a date is given twice, the last one counts (as in
/// feedparser, which overwrites).
fn last_child<'a>(e: &'a Element, ns: Option<&str>, local: &str) -> Option<&'a Element> {
    e.elements()
        .filter(|c| c.local == local && ns.map_or(is_atom_core(c), |n| c.ns == n))
        .last()
}

fn atom_person(p: &Element) -> Person {
    let f = |l| atom_child(p, l).and_then(|e| nonempty(e.text()));
    Person {
        name: f("name"),
        uri: f("uri").or_else(|| f("url")),
        email: f("email"),
        role: None,
    }
}

fn atom_links(e: &Element, base: &Url, cx: &mut Ctx) -> Vec<Link> {
    let mut out = Vec::new();
    for l in e
        .elements()
        .filter(|c| is_atom_core(c) && c.local == "link")
    {
        let b = base_of(l, base, cx.repairs);
        // No href: the URL written as the element's text (RSS habits in an Atom feed).
        let Some(href) = l
            .attr("href")
            .map(String::from)
            .or_else(|| nonempty(l.text()))
            .and_then(|h| resolve(&b, &h))
        else {
            continue;
        };
        let mut lk = link(href);
        lk.rel = l
            .attr("rel")
            .map(str::trim)
            .filter(|r| !r.is_empty() && *r != "alternate" && *r != ALTERNATE_IRI)
            .map(String::from);
        lk.media_type = l.attr("type").map(|t| t.trim().to_string());
        lk.title = l.attr("title").map(String::from);
        lk.length = l.attr("length").and_then(|v| v.trim().parse().ok());
        out.push(lk);
    }
    // The page link first: the one typed HTML when there are several alternates.
    out.sort_by_key(|l| {
        (
            l.rel.is_some(),
            !l.media_type.as_deref().is_none_or(|m| m.contains("html")),
        )
    });
    out
}

const ALTERNATE_IRI: &str = "http://www.iana.org/assignments/relation/alternate";

fn atom_entry(en: &Element, base: &Url, v03: bool, cx: &mut Ctx) -> Entry {
    let mut e = Entry {
        base: Some(base.to_string()),
        ..Default::default()
    };
    e.id = atom_child(en, "id")
        .map(|i| i.text().trim().to_string())
        .unwrap_or_default();
    e.title = atom_child(en, "title")
        .map(|t| atom_text(t, v03, cx))
        .filter(|t| !t.content.is_empty());
    e.links = atom_links(en, base, cx);
    e.summary = atom_child(en, "summary")
        .map(|t| atom_text(t, v03, cx))
        .or_else(|| {
            child(en, MEDIA, "group")
                .and_then(|g| child(g, MEDIA, "description"))
                .or_else(|| child(en, MEDIA, "description"))
                .map(|d| media_text(d, cx))
        })
        .filter(|t| !t.content.is_empty());
    if let Some(c) = atom_child(en, "content") {
        let cb = base_of(c, base, cx.repairs);
        match c.attr("src").and_then(|s| resolve(&cb, s)) {
            Some(src) => {
                if !e.links.iter().any(|l| l.rel.is_none()) {
                    e.links.push(link(src));
                }
            }
            None => {
                let t = atom_text(c, v03, cx);
                if !t.content.is_empty() {
                    e.content = Some(Content {
                        body: Some(if t.content_type.to_string().contains("html") {
                            t.content
                        } else {
                            let mut s = String::new();
                            escape_into(&t.content, &mut s, false);
                            s
                        }),
                        content_type: "text/html".parse().expect("a media type"),
                        length: None,
                        src: None,
                    });
                }
            }
        }
    }
    e.published = first_date(
        &[
            last_child(en, None, "published"),
            last_child(en, None, "issued"),
            last_child(en, Some(DCTERMS), "issued"),
            last_child(en, None, "created"),
            last_child(en, Some(DCTERMS), "created"),
        ],
        cx,
    );
    e.updated = first_date(
        &[
            last_child(en, None, "updated"),
            last_child(en, None, "modified"),
            last_child(en, Some(DC), "date"),
            last_child(en, Some(DCTERMS), "modified"),
        ],
        cx,
    );
    // No page link: an id that is a URL (relative ones resolved) is the page, as feedparser
    // reads it; `tag:` and `urn:` ids are not.
    if !e.links.iter().any(|l| l.rel.is_none()) && !e.id.is_empty() {
        let scheme = e.id.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        if scheme
            .as_deref()
            .is_none_or(|s| s == "http" || s == "https")
            && let Some(u) = resolve(base, &e.id)
        {
            e.links.push(link(u));
        }
    }
    e.authors = en
        .elements()
        .filter(|c| is_atom_core(c) && c.local == "author")
        .map(atom_person)
        .chain(
            en.elements()
                .filter(|c| c.ns == DC && c.local == "creator")
                .map(|c| person(&c.text())),
        )
        .filter(|p| p.name.is_some())
        .collect();
    for c in en
        .elements()
        .filter(|c| is_atom_core(c) && c.local == "category")
    {
        let term = c.attr("term").map(str::trim).unwrap_or_default();
        if !term.is_empty() {
            e.categories.push(Category {
                term: term.to_string(),
                scheme: c.attr("scheme").map(String::from),
                label: c.attr("label").map(String::from),
                subcategories: Vec::new(),
            });
        }
    }
    media_of(en, base, &mut e, cx);
    e
}

/// An Atom text construct by its `type` (1.0: text, html, xhtml, a media type; 0.3: a media
/// type and `mode` escaped, xml or base64). XHTML and unescaped markup become HTML; base64 is
/// decoded; an unknown type is read by what the element holds.
fn atom_text(t: &Element, v03: bool, cx: &mut Ctx) -> Text {
    let ty = t.attr("type").map(|s| s.trim().to_ascii_lowercase());
    let mode = t.attr("mode").map(|s| s.trim().to_ascii_lowercase());
    let ty = ty.as_deref();
    let html_type = matches!(ty, Some("html" | "text/html"));
    let xhtml_type = matches!(
        ty,
        Some("xhtml" | "application/xhtml+xml" | "application/xhtml")
    );
    let plain_type = matches!(ty, None | Some("text" | "text/plain"));
    if mode.as_deref() == Some("base64")
        || (!v03
            && !html_type
            && !xhtml_type
            && !plain_type
            && !ty.unwrap_or("").starts_with("text/")
            && !ty.unwrap_or("").ends_with("xml"))
    {
        let raw: String = t.text().chars().filter(|c| !c.is_whitespace()).collect();
        if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(raw.as_bytes())
            && let Ok(s) = String::from_utf8(bytes)
        {
            cx.repairs.add(Repair::Base64);
            return if html_type || xhtml_type {
                text_html(s)
            } else {
                text_plain(s)
            };
        }
        if mode.as_deref() != Some("base64") {
            cx.repairs.add(Repair::TextType);
        }
    }
    if xhtml_type || (t.has_element_children() && !html_type) {
        if ty.is_some_and(|t| t != "xhtml") && !v03 {
            cx.repairs.add(Repair::TextType);
        }
        // The content of the wrapping xhtml:div, or the element's own when there is none.
        let div = t
            .elements()
            .find(|c| c.local.eq_ignore_ascii_case("div"))
            .filter(|_| {
                t.elements().count() == 1
                    && t.children.iter().all(|n| match n {
                        Node::Text(s) => s.trim().is_empty(),
                        Node::Element(_) => true,
                    })
            });
        return text_html(inner_html(div.unwrap_or(t)));
    }
    if html_type {
        return text_html(html_of(t, cx));
    }
    let s = t.text();
    // Atom 0.3's escaped text/plain and untyped text are plain; entity-encoded markup in a plain
    // construct is shown as written (the format's rule), except in 0.3 where `escaped` text
    // often is HTML.
    if v03 && mode.as_deref() == Some("escaped") && looks_like_html(&s) {
        return text_html(s);
    }
    text_plain(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::recover;

    fn zone() -> SiteZone {
        crate::article::tests::config().zone
    }

    fn read_str(s: &str) -> (Feed, Repairs) {
        let mut r = Repairs::default();
        let doc = recover::read(s, true, &mut r);
        let url = Url::parse("https://up.example/feed.xml").unwrap();
        let now = DateTime::parse_from_rfc3339("2026-01-10T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let f = read(&doc, &url, zone(), now, &mut r).unwrap().feed;
        (f, r)
    }

    #[test]
    fn rss_without_version_and_items_outside_the_channel() {
        let (f, r) = read_str(
            "<rss><channel><title>T</title><item><title>a</title></item></channel>\
             <item><title>b &amp;amp; c</title><guid>https://up.example/b</guid></item></rss>",
        );
        assert_eq!(f.entries.len(), 2);
        assert_eq!(r.count(Repair::RssVersion), 1);
        assert_eq!(r.count(Repair::ItemsOutsideChannel), 1);
        // The permalink guid is the link; entity-encoded text is HTML (decoded by the mapping).
        assert_eq!(f.entries[1].links[0].href, "https://up.example/b");
        assert!(
            f.entries[1]
                .title
                .as_ref()
                .unwrap()
                .content_type
                .to_string()
                .contains("html")
        );
    }

    #[test]
    fn atom_03_base64_and_xhtml() {
        let (f, r) = read_str(
            r#"<feed version="0.3" xmlns="http://purl.org/atom/ns#"><title>T</title>
            <entry><title mode="base64">PGI+aGk8L2I+</title><issued>2003-12-31T10:14:55Z</issued>
            <link rel="alternate" type="text/html" href="/e1"/>
            <content type="application/xhtml+xml" mode="xml"><div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div></content></entry></feed>"#,
        );
        assert_eq!(r.count(Repair::Atom03), 1);
        let e = &f.entries[0];
        assert_eq!(e.title.as_ref().unwrap().content, "<b>hi</b>");
        assert_eq!(e.links[0].href, "https://up.example/e1");
        assert_eq!(
            e.content.as_ref().unwrap().body.as_deref(),
            Some("<p>x</p>")
        );
        assert_eq!(
            e.published.unwrap().to_rfc3339(),
            "2003-12-31T10:14:55+00:00"
        );
    }

    #[test]
    fn youtube_media_group_description_is_the_summary() {
        let (f, _) = read_str(
            r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
            <entry><id>yt:video:1</id><title>V</title><media:group><media:title>V</media:title>
            <media:thumbnail url="https://i.example/1.jpg"/><media:description>Lời mô tả</media:description></media:group></entry></feed>"#,
        );
        let e = &f.entries[0];
        assert_eq!(e.summary.as_ref().unwrap().content, "Lời mô tả");
        assert_eq!(
            e.media[0].thumbnails[0].image.uri,
            "https://i.example/1.jpg"
        );
    }

    #[test]
    fn other_roots_are_errors() {
        let mut r = Repairs::default();
        let doc = recover::read("<html><body>x</body></html>", true, &mut r);
        let url = Url::parse("https://up.example/").unwrap();
        let err = read(&doc, &url, zone(), Utc::now(), &mut r).err().unwrap();
        assert!(err.contains("<html>"), "{err}");
    }
}
