//! From an upstream feed document to articles: the bytes decoded as feedparser chooses the
//! encoding ([`super::decode`]), XML read by a forgiving reader that repairs what real feeds
//! break ([`super::recover`]) and mapped by each dialect's rules ([`super::dialect`]: every RSS,
//! Atom 1.0 and 0.3) into feed-rs's model, JSON Feed parsed by feed-rs; then each entry mapped to
//! an [`ArticleInput`] and validated by the same rules as every other way in
//! ([`Article::from_input`]: NFC, XML-illegal characters, ammonia, absolute URLs, naive times in
//! the site zone).
//!
//! Pure functions of the body, the source's configuration and the articles already stored, so
//! the whole mapping is unit-tested without a network (and the conformance test compares it with
//! feedparser over a corpus of real documents). The shape follows three promises:
//!
//! - **Never duplicate, never collide.** An article's id is `<source id>.<16 hex digits>`, a hash
//!   of the item's guid, else its link (when no other item of the document shares it), else its
//!   whole normalised content ([`article_ids`]): the same item polled ten times is one article,
//!   an upstream edit (same guid, new text) updates it, and two different items never share one.
//! - **Never move.** An item without a date keeps the time it was first seen; re-polls carry the
//!   stored time over instead of stamping "now" again (which would rewrite it every poll).
//! - **Credit.** Every article carries a [`Credit`] naming the upstream feed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use url::Url;

use crate::article::{Article, ArticleInput, Credit, ImageInput, ValidationError};
use crate::clock::SiteZone;
use crate::config::{Config, SourceConfig, SourceContent};

use super::recover::{self, Repairs};
use super::{dates, decode, dialect};

/// Longest summary kept from an upstream item, in characters (the field allows 10,000; a feed
/// summary is a lead, and a "summary" that is a whole article would defeat `content = "summary"`).
const SUMMARY_CHARS: usize = 1_000;
/// Summary cut from the content when an item has none.
const DERIVED_SUMMARY_CHARS: usize = 300;
/// A title cut from the summary when an item has none (RSS allows items with only a description).
const DERIVED_TITLE_CHARS: usize = 100;
const MAX_TAGS: usize = 50;
/// Longest upstream feed id or home page URL kept in a credit, in bytes.
const MAX_CREDIT_URL: usize = 2_000;
/// Entries taken from one upstream document at most (its first: feeds list the newest first).
pub const MAX_ENTRIES: usize = 10_000;
const MAX_TAG_CHARS: usize = 100;

/// A parsed upstream document: its credit and its entries.
pub struct Parsed {
    pub feed: feed_rs::model::Feed,
    /// JSON Feed `image` per item id (feed-rs 3 reads attachments but drops `image`).
    json_images: HashMap<String, String>,
    /// What had to be repaired to read the document (empty for a well-formed one).
    pub repairs: Repairs,
    /// The declared encoding could not be used (a note for the source's status).
    pub encoding_note: Option<String>,
}

impl Parsed {
    /// The line for the source's status: what was recovered, if anything.
    pub fn recovered(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(n) = &self.encoding_note {
            parts.push(n.clone());
        }
        if !self.repairs.is_empty() {
            parts.push(self.repairs.to_string());
        }
        (!parts.is_empty()).then(|| format!("recovered: {}", parts.join(", ")))
    }
}

/// Parses an upstream body as it came (`content_type` is the HTTP header): decoded to UTF-8 as
/// feedparser chooses the encoding ([`decode`]), then JSON Feed by feed-rs, XML by the
/// forgiving reader ([`recover`]) and the dialects' rules ([`dialect`]). Dates without an
/// offset are wall-clock time in the site zone, as for every other input (DESIGN.md). No input
/// panics: none of it reaches quick-xml's decoding, and the reader is plain string code.
pub fn parse(
    body: &[u8],
    content_type: Option<&str>,
    feed_url: &Url,
    zone: SiteZone,
    now: DateTime<Utc>,
) -> Result<Parsed, String> {
    let decoded = decode::decode(body, content_type);
    let encoding_note = decoded.overridden.clone();
    let text = decoded
        .text
        .trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    if text.starts_with('{') {
        let parser = feed_rs::parser::Builder::new()
            .base_uri(Some(feed_url.as_str()))
            // An empty id marks an item with no id, so the fallbacks of `article_ids` apply
            // (feed-rs would otherwise invent a random one, new on every poll).
            .id_generator(|_, _, _| String::new())
            .timestamp_parser(move |t| dates::parse(t, zone, now))
            // Sanitising happens once, in `Article::from_input`, by the same rules as every input.
            .sanitize_content(false)
            .build();
        let feed = parser
            .parse(text.as_bytes())
            .map_err(|e| format!("not a JSON Feed: {e}"))?;
        return Ok(Parsed {
            feed,
            json_images: json_feed_images(text.as_bytes()),
            repairs: Repairs::default(),
            encoding_note,
        });
    }
    let mut repairs = Repairs::default();
    let doc = recover::read(text, decoded.encoding == "UTF-8", &mut repairs);
    let reading = dialect::read(&doc, feed_url, zone, now, &mut repairs)?;
    Ok(Parsed {
        feed: reading.feed,
        json_images: HashMap::new(),
        repairs,
        encoding_note,
    })
}

fn json_feed_images(body: &[u8]) -> HashMap<String, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        items: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        id: serde_json::Value,
        image: Option<String>,
        banner_image: Option<String>,
    }
    let Ok(doc) = serde_json::from_slice::<Doc>(body) else {
        return HashMap::new();
    };
    doc.items
        .into_iter()
        .filter_map(|i| {
            let id = match i.id {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((id, i.image.or(i.banner_image)?))
        })
        .collect()
}

/// The credit every article of this document carries.
pub fn credit(parsed: &Parsed, feed_url: &Url) -> Credit {
    let feed = &parsed.feed;
    let title = feed
        .title
        .as_ref()
        .map(text_of)
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| feed_url.to_string());
    let home_page_url = feed
        .links
        .iter()
        .find(|l| is_page_link(l))
        .and_then(|l| feed_url.join(&l.href).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(String::from)
        .filter(|u| u.len() <= MAX_CREDIT_URL);
    // The credit is copied into every article of the feed, so each part is cleaned and bounded
    // like a validated field (an upstream could send a megabyte of `<id>`).
    // An Atom `<source><id>` must be an absolute IRI, and the W3C validator warns about one in
    // a scheme IANA has not registered: an upstream id that is not an `http(s)`, `tag:` or
    // `urn:` IRI (Reddit's `/r/homelab/new/.rss`, YouTube's `yt:channel:UC…`) is replaced by the
    // feed's URL, which names the same feed.
    let id = crate::text::clean_line(&feed.id);
    let id = match Url::parse(&id) {
        Ok(u) if matches!(u.scheme(), "http" | "https" | "tag" | "urn") => id,
        _ => String::new(),
    };
    Credit {
        title: truncate(&title, 200),
        feed_url: feed_url.to_string(),
        home_page_url,
        id: if id.is_empty() || id.len() > MAX_CREDIT_URL {
            feed_url.to_string()
        } else {
            id
        },
    }
}

/// One entry that could not become an article: its position and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub item: usize,
    pub error: ValidationError,
}

/// The article ids of a document's entries, in order: stable across polls, and derived from
/// the source and the item's guid, else its link, else a hash over its whole normalised content
/// (title, summary, content, dates, enclosures). A link that several items of the document
/// share (an upstream pointing every item at its home page) names none of them: those items
/// fall back to their content, so two different items never share an id. The same guid twice
/// is one item (the first, its newest, is kept).
pub fn article_ids(source: &str, entries: &[feed_rs::model::Entry]) -> Vec<String> {
    let mut links: HashMap<&str, usize> = HashMap::new();
    for e in entries {
        if e.id.trim().is_empty()
            && let Some(l) = e.links.iter().find(|l| is_page_link(l))
        {
            *links.entry(l.href.trim()).or_default() += 1;
        }
    }
    entries
        .iter()
        .map(|e| {
            let key = if !e.id.trim().is_empty() {
                format!("guid\n{}", e.id.trim())
            } else if let Some(l) = e
                .links
                .iter()
                .find(|l| is_page_link(l))
                .filter(|l| links.get(l.href.trim()) == Some(&1))
            {
                format!("link\n{}", l.href.trim())
            } else {
                content_key(e)
            };
            format!(
                "{source}.{:016x}",
                xxhash_rust::xxh3::xxh3_64(key.as_bytes())
            )
        })
        .collect()
}

/// An item's whole content, normalised (NFC, whitespace collapsed), as an identity.
fn content_key(e: &feed_rs::model::Entry) -> String {
    use unicode_normalization::UnicodeNormalization;
    let norm = |s: &str| -> String {
        s.nfc()
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut key = String::from("content");
    for part in [
        e.title.as_ref().map(|t| t.content.as_str()),
        e.summary.as_ref().map(|t| t.content.as_str()),
        e.content.as_ref().and_then(|c| c.body.as_deref()),
    ] {
        key.push('\n');
        key.push_str(&norm(part.unwrap_or_default()));
    }
    key.push_str(&format!("\n{:?}\n{:?}", e.published, e.updated));
    for l in &e.links {
        key.push('\n');
        key.push_str(l.href.trim());
    }
    for m in &e.media {
        for c in &m.content {
            if let Some(u) = &c.url {
                key.push('\n');
                key.push_str(u.as_str());
            }
        }
    }
    key
}

/// What a document's entries became.
#[derive(Debug, Default)]
pub struct Mapped {
    pub articles: Vec<Article>,
    /// Entries that could not become articles, with the field at fault.
    pub rejected: Vec<Rejected>,
    /// Entries stored without their image, because the image was unusable (a `data:` URL, a
    /// bad media type…): the item is worth keeping, the picture is not.
    pub images_dropped: Vec<Rejected>,
}

/// Maps every entry to an article credited to `credit` (see [`credit`]), or to a rejection
/// naming the item and field. `stored` holds the articles these ids already have, so undated
/// items keep their first-seen time; `now` is that time for items seen for the first time.
///
/// An entry carrying one of this site's own `tag:` guids is one of bantin's own articles come
/// back (a source that proxies or mirrors bantin): it is rejected, so bantin never aggregates
/// itself however it was reached.
pub fn articles(
    parsed: &Parsed,
    credit: &Credit,
    source: &SourceConfig,
    feed_url: &Url,
    config: &Config,
    stored: &HashMap<String, Article>,
    now: DateTime<Utc>,
) -> Mapped {
    let home = credit
        .home_page_url
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .filter(|u| u != feed_url)
        .unwrap_or_else(|| site_root(feed_url));
    let own = format!("tag:{}:", config.tag_authority);
    let mut out = Mapped {
        articles: Vec::with_capacity(parsed.feed.entries.len()),
        ..Mapped::default()
    };
    let mut seen = std::collections::HashSet::new();
    let ids = article_ids(&source.id, &parsed.feed.entries);
    for (i, (entry, id)) in parsed.feed.entries.iter().zip(ids).enumerate() {
        if entry.id.trim().starts_with(&own) {
            out.rejected.push(Rejected {
                item: i + 1,
                error: ValidationError::new(
                    "guid",
                    format!("{own}… is one of this site's own articles: bantin does not aggregate itself"),
                ),
            });
            continue;
        }
        // An upstream that lists one guid twice gets one article (the first, its newest).
        if !seen.insert(id.clone()) {
            continue;
        }
        let mut input = input_of(
            parsed,
            entry,
            id.clone(),
            source,
            feed_url,
            &home,
            stored.get(&id),
            // Undated items seen for the first time: a second apart in the upstream's order
            // (newest first), so they keep distinct times and their order.
            now - chrono::Duration::seconds(i as i64),
        );
        // The image is checked on its own, against the validated article URL, so that only it
        // is dropped when it is unusable.
        let image = input.image.take();
        match Article::from_input(input, config) {
            Ok(mut a) => {
                if let Some(img) = image {
                    let checked = Url::parse(&a.url)
                        .map_err(|e| ValidationError::new("url", e.to_string()))
                        .and_then(|u| crate::article::normalise_image(img, &u));
                    match checked {
                        Ok(img) => a.image = Some(img),
                        Err(error) => out.images_dropped.push(Rejected { item: i + 1, error }),
                    }
                }
                a.source = Some(credit.clone());
                out.articles.push(a);
            }
            Err(error) => out.rejected.push(Rejected { item: i + 1, error }),
        }
    }
    out
}

/// The root of the feed's site, for items of a feed that names no home page.
fn site_root(feed_url: &Url) -> Url {
    let mut u = feed_url.clone();
    u.set_path("/");
    u.set_query(None);
    u.set_fragment(None);
    u
}

#[allow(clippy::too_many_arguments)]
fn input_of(
    parsed: &Parsed,
    e: &feed_rs::model::Entry,
    id: String,
    source: &SourceConfig,
    feed_url: &Url,
    home: &Url,
    stored: Option<&Article>,
    now: DateTime<Utc>,
) -> ArticleInput {
    let base = e
        .base
        .as_deref()
        .and_then(|b| feed_url.join(b).ok())
        .unwrap_or_else(|| feed_url.clone());
    let url = e
        .links
        .iter()
        .find(|l| is_page_link(l))
        .and_then(|l| base.join(l.href.trim()).ok())
        // The feed's own URL is never an item's page (a `<link>` left empty or pointing at
        // the feed itself): the item then points at the upstream's home page.
        .filter(|u| u != feed_url)
        .unwrap_or_else(|| home.clone());

    let summary_html = e.summary.as_ref();
    let content_html = e.content.as_ref().and_then(|c| c.body.clone());
    let mut summary = summary_html.map(text_of).unwrap_or_default();
    if summary.is_empty()
        && let Some(c) = &content_html
    {
        summary = truncate(&html_to_text(c), DERIVED_SUMMARY_CHARS);
    }
    let summary = truncate(&summary, SUMMARY_CHARS);
    let mut title = e.title.as_ref().map(text_of).unwrap_or_default();
    if title.is_empty() {
        title = truncate(&summary, DERIVED_TITLE_CHARS);
    }
    // An item with neither title nor text (RSS allows it; a podcast episode may be only an
    // enclosure) is still an item: it is named by its page, as feed readers show it.
    if title.is_empty() {
        title = truncate(url.as_str(), DERIVED_TITLE_CHARS);
    }
    let content = match source.content {
        SourceContent::Summary => String::new(),
        SourceContent::Full => content_html
            .or_else(|| summary_html.map(|s| s.content.clone()))
            .unwrap_or_default(),
    };

    // Published: the item's, else the time first seen (kept from the stored copy), else its
    // update time, else now. Updated: the item's when it is not before published.
    let published = e
        .published
        .or(stored.map(|a| a.published_at))
        .or(e.updated)
        .unwrap_or(now);
    let updated = match e.updated {
        Some(u) if u >= published => u,
        _ => stored
            .map(|a| a.updated_at)
            .filter(|&u| u >= published)
            .unwrap_or(published),
    };

    let mut tags: Vec<String> = Vec::new();
    for c in &e.categories {
        let t = c.label.as_deref().unwrap_or(&c.term);
        let t = crate::text::clean_line(t);
        if !t.is_empty() && t.chars().count() <= MAX_TAG_CHARS && !tags.contains(&t) {
            tags.push(t);
        }
        if tags.len() == MAX_TAGS {
            break;
        }
    }

    ArticleInput {
        id,
        lang: source.lang.clone(),
        category: source.category.clone(),
        title,
        summary,
        content_html: content,
        url: url.to_string(),
        author: e
            .authors
            .iter()
            .chain(&parsed.feed.authors)
            .find_map(|p| p.name.clone().filter(|n| !n.trim().is_empty()))
            .map(|n| truncate(&n, 200))
            .unwrap_or_default(),
        published_at: published.to_rfc3339(),
        updated_at: Some(updated.to_rfc3339()),
        tags,
        image: image_of(parsed, e, &base),
        translations: Default::default(),
        status: None,
    }
}

/// The item's photo: media:content / enclosure of an image type, a media thumbnail, an Atom or
/// JSON attachment link of an image type, or JSON Feed's `image`.
fn image_of(parsed: &Parsed, e: &feed_rs::model::Entry, base: &Url) -> Option<ImageInput> {
    let is_image = |mime: Option<&str>, url: &str| match mime {
        Some(m) => m.to_ascii_lowercase().starts_with("image/"),
        None => {
            let path = url.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
            [".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif"]
                .iter()
                .any(|x| path.ends_with(x))
        }
    };
    let caption = |m: &feed_rs::model::MediaObject| {
        m.description
            .as_ref()
            .or(m.title.as_ref())
            .map(text_of)
            .map(|c| truncate(&c, 500))
            .unwrap_or_default()
    };
    for m in &e.media {
        for c in &m.content {
            let Some(url) = &c.url else { continue };
            let mime = c.content_type.as_ref().map(|t| t.to_string());
            if is_image(mime.as_deref(), url.as_str()) {
                return Some(ImageInput {
                    url: url.to_string(),
                    caption: caption(m),
                    mime: mime.filter(|m| m.starts_with("image/")),
                    length: c.size.filter(|&n| n > 0),
                });
            }
        }
        if let Some(t) = m.thumbnails.first() {
            return Some(ImageInput {
                url: base.join(&t.image.uri).ok()?.to_string(),
                caption: caption(m),
                mime: None,
                length: None,
            });
        }
    }
    if let Some(l) = e.links.iter().find(|l| {
        l.media_type
            .as_deref()
            .is_some_and(|m| m.starts_with("image/"))
    }) {
        return Some(ImageInput {
            url: base.join(&l.href).ok()?.to_string(),
            caption: l.title.clone().unwrap_or_default(),
            mime: l.media_type.clone(),
            length: l.length.filter(|&n| n > 0),
        });
    }
    let url = parsed.json_images.get(&e.id)?;
    Some(ImageInput {
        url: base.join(url).ok()?.to_string(),
        ..Default::default()
    })
}

/// A link to the item's (or feed's) web page: no `rel` or `alternate`, and not typed as
/// something other than a page (JSON attachments and Atom enclosures are typed links).
fn is_page_link(l: &feed_rs::model::Link) -> bool {
    matches!(l.rel.as_deref(), None | Some("alternate"))
        && l.media_type
            .as_deref()
            .is_none_or(|m| m.starts_with("text/html") || m.starts_with("application/xhtml"))
        && !l.href.trim().is_empty()
}

/// A feed-rs text as plain text: HTML types lose their markup.
fn text_of(t: &feed_rs::model::Text) -> String {
    let ty = t.content_type.to_string();
    if ty.contains("html") {
        html_to_text(&t.content)
    } else {
        crate::text::clean_line(&t.content)
    }
}

/// The text of an HTML fragment, on one line: tags removed (script and style with their
/// content), entities decoded, whitespace collapsed.
pub fn html_to_text(html: &str) -> String {
    // A space before each tag keeps words in adjacent blocks apart (`<p>a</p><p>b</p>`).
    let spaced = html.replace('<', " <");
    let escaped = ammonia::Builder::empty().clean(&spaced).to_string();
    let text = escaped
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    crate::text::clean_line(&text)
}

/// At most `n` characters, cut at a word boundary when there is one, with an ellipsis.
fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let cut: String = s.chars().take(n.saturating_sub(1)).collect();
    let word_ends_here = s
        .chars()
        .nth(n.saturating_sub(1))
        .is_some_and(char::is_whitespace);
    let cut = match cut.rfind(' ') {
        Some(i) if !word_ends_here && i > cut.len() / 2 => &cut[..i],
        _ => &cut[..],
    };
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::article::tests::config()
    }

    fn source(content: SourceContent) -> SourceConfig {
        SourceConfig {
            id: "bao-tay-ninh".into(),
            url: Url::parse("https://baotayninh.example/rss/xa-hoi.rss").unwrap(),
            lang: "vi".into(),
            category: "kinh-te".into(),
            every: std::time::Duration::from_secs(900),
            content,
        }
    }

    #[test]
    fn a_source_id_in_an_unregistered_scheme_becomes_the_feed_url() {
        let url = Url::parse("https://www.youtube.com/feeds/videos.xml?channel_id=UC7").unwrap();
        let credit_of = |id: &str| {
            let doc = format!(
                r#"<feed xmlns="http://www.w3.org/2005/Atom"><id>{id}</id><title>PBS</title><updated>2020-12-26T06:12:12Z</updated><entry><id>e1</id><title>t</title><updated>2020-12-26T06:12:12Z</updated><link href="https://www.youtube.com/watch?v=1"/></entry></feed>"#
            );
            let parsed = parse(doc.as_bytes(), None, &url, config().zone, Utc::now()).unwrap();
            credit(&parsed, &url).id
        };
        assert_eq!(
            credit_of("yt:channel:UC7_gcs09iThXybpVgjHZ_7g"),
            url.as_str()
        );
        assert_eq!(credit_of("/r/homelab/new/.rss"), url.as_str());
        assert_eq!(
            credit_of("tag:youtube.com,2008:channel:UC7"),
            "tag:youtube.com,2008:channel:UC7"
        );
        assert_eq!(
            credit_of("https://pbs.example/feed"),
            "https://pbs.example/feed"
        );
    }

    fn map(body: &str, content: SourceContent) -> (Vec<Article>, Vec<Rejected>) {
        let m = map_all(body, content);
        assert!(m.images_dropped.is_empty(), "{:?}", m.images_dropped);
        (m.articles, m.rejected)
    }

    fn map_all(body: &str, content: SourceContent) -> Mapped {
        let c = config();
        let url = Url::parse("https://baotayninh.example/rss/xa-hoi.rss").unwrap();
        let parsed = parse(body.as_bytes(), None, &url, c.zone, Utc::now()).unwrap();
        let now = DateTime::parse_from_rfc3339("2026-11-30T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        articles(
            &parsed,
            &credit(&parsed, &url),
            &source(content),
            &url,
            &c,
            &HashMap::new(),
            now,
        )
    }

    const RSS: &str = r#"<?xml version="1.0"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>Báo Tây Ninh - Xã hội</title><link>https://baotayninh.example/xa-hoi</link>
<item><title>Cầu mới &amp; đường mới</title><link>/xa-hoi/cau-moi.html</link><guid>tn-1</guid>
<description>&lt;p&gt;Tóm &lt;b&gt;tắt&lt;/b&gt;&lt;/p&gt;</description>
<content:encoded><![CDATA[<p onclick="x()">Nội dung <a href="/a">liên kết</a></p><script>alert(1)</script>]]></content:encoded>
<pubDate>Mon, 30 Nov 2026 08:00:00 +0700</pubDate><category>giao thông</category>
<enclosure url="https://baotayninh.example/anh.jpg" length="1234" type="image/jpeg"/></item>
<item><title>Không có guid</title><link>https://baotayninh.example/b.html</link><pubDate>Mon, 30 Nov 2026 09:00:00</pubDate></item>
</channel></rss>"#;

    #[test]
    fn rss_items_map_to_credited_sanitised_articles() {
        let (arts, rejected) = map(RSS, SourceContent::Full);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(arts.len(), 2);
        let a = &arts[0];
        assert!(a.id.starts_with("bao-tay-ninh.") && a.id.len() == "bao-tay-ninh.".len() + 16);
        assert_eq!(a.title, "Cầu mới & đường mới");
        assert_eq!(a.summary, "Tóm tắt");
        assert_eq!(a.url, "https://baotayninh.example/xa-hoi/cau-moi.html");
        assert!(!a.content_html.contains("script") && !a.content_html.contains("onclick"));
        assert!(
            a.content_html
                .contains("href=\"https://baotayninh.example/a\"")
        );
        assert_eq!(a.published_at.to_rfc3339(), "2026-11-30T01:00:00+00:00");
        assert_eq!(a.tags, vec!["giao thông"]);
        let img = a.image.as_ref().unwrap();
        assert_eq!((img.mime.as_str(), img.length), ("image/jpeg", Some(1234)));
        let credit = a.source.as_ref().unwrap();
        assert_eq!(credit.title, "Báo Tây Ninh - Xã hội");
        assert_eq!(credit.feed_url, "https://baotayninh.example/rss/xa-hoi.rss");
        assert_eq!(
            credit.home_page_url.as_deref(),
            Some("https://baotayninh.example/xa-hoi")
        );
        // A naive pubDate is site-local time: 09:00 at +07:00.
        assert_eq!(
            arts[1].published_at.to_rfc3339(),
            "2026-11-30T02:00:00+00:00"
        );
    }

    #[test]
    fn summary_sources_carry_no_content_and_ids_are_stable() {
        let (full, _) = map(RSS, SourceContent::Full);
        let (summary, _) = map(RSS, SourceContent::Summary);
        assert!(summary.iter().all(|a| a.content_html.is_empty()));
        let ids = |v: &[Article]| v.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&full), ids(&summary));
        // The guid names the article, not the title: an edited title keeps the id.
        let (edited, _) = map(&RSS.replace("Cầu mới", "Cầu mới xây"), SourceContent::Full);
        assert_eq!(ids(&edited), ids(&full));
    }

    #[test]
    fn undated_items_keep_their_first_seen_time() {
        let c = config();
        let url = Url::parse("https://baotayninh.example/feed.json").unwrap();
        let body = r#"{"version":"https://jsonfeed.org/version/1.1","title":"T","items":[
            {"id":"1","url":"https://baotayninh.example/1","title":"Một","content_text":"x","image":"/img/1.png"}]}"#;
        let parsed = parse(body.as_bytes(), None, &url, c.zone, Utc::now()).unwrap();
        let t1 = Utc::now();
        let Mapped {
            articles: first,
            rejected: rej,
            ..
        } = articles(
            &parsed,
            &credit(&parsed, &url),
            &source(SourceContent::Summary),
            &url,
            &c,
            &HashMap::new(),
            t1,
        );
        assert!(rej.is_empty(), "{rej:?}");
        assert_eq!(
            first[0].image.as_ref().unwrap().url,
            "https://baotayninh.example/img/1.png"
        );
        let stored = HashMap::from([(first[0].id.clone(), first[0].clone())]);
        let later = t1 + chrono::Duration::hours(2);
        let again = articles(
            &parsed,
            &credit(&parsed, &url),
            &source(SourceContent::Summary),
            &url,
            &c,
            &stored,
            later,
        );
        assert_eq!(again.articles, first);
    }

    #[test]
    fn an_unusable_image_is_dropped_and_its_item_kept() {
        let body = RSS
            .replace(
                "https://baotayninh.example/anh.jpg",
                "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
            )
            .replace(
                "<pubDate>Mon, 30 Nov 2026 09:00:00</pubDate>",
                r#"<pubDate>Mon, 30 Nov 2026 09:00:00</pubDate><enclosure url="javascript:alert(1)" length="10" type="image/png"/>"#,
            );
        let m = map_all(&body, SourceContent::Full);
        assert!(m.rejected.is_empty(), "{:?}", m.rejected);
        assert_eq!(m.articles.len(), 2, "both items kept");
        assert!(m.articles.iter().all(|a| a.image.is_none()));
        assert_eq!(m.articles[0].title, "Cầu mới & đường mới");
        let dropped: Vec<(usize, &str)> = m
            .images_dropped
            .iter()
            .map(|r| (r.item, r.error.field.as_str()))
            .collect();
        assert_eq!(dropped, vec![(1, "image.url"), (2, "image.url")]);
    }

    #[test]
    fn bantin_s_own_articles_are_never_imported() {
        let own = format!("tag:{}:article:la-2026-0412", config().tag_authority);
        let (arts, rejected) = map(&RSS.replace("tn-1", &own), SourceContent::Full);
        assert_eq!(arts.len(), 1, "the other item stays");
        assert_eq!(rejected.len(), 1);
        assert_eq!(
            (rejected[0].item, rejected[0].error.field.as_str()),
            (1, "guid")
        );
        assert!(
            rejected[0]
                .error
                .message
                .contains("does not aggregate itself")
        );
    }

    #[test]
    fn untitled_undated_items_never_collide_and_keep_their_ids() {
        // RSS 0.92 items with only a description, all pointing at the home page.
        let body = r#"<rss version="0.92"><channel><title>T</title><link>https://t.example/</link>
<item><description>Một &amp; hai</description><link>https://t.example/</link></item>
<item><description>Ba</description><link>https://t.example/</link></item>
<item><description>Bốn</description><link>https://t.example/</link></item></channel></rss>"#;
        let (a, rejected) = map(body, SourceContent::Summary);
        assert!(rejected.is_empty(), "{rejected:?}");
        let ids: std::collections::HashSet<_> = a.iter().map(|x| x.id.clone()).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(a[0].title, "Một & hai");
        // Distinct first-seen times, in the upstream's order.
        assert!(a[0].published_at > a[1].published_at && a[1].published_at > a[2].published_at);
        let (again, _) = map(body, SourceContent::Summary);
        assert_eq!(
            again.iter().map(|x| &x.id).collect::<Vec<_>>(),
            a.iter().map(|x| &x.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn repairs_are_named_for_the_status_line() {
        let c = config();
        let url = Url::parse("https://t.example/feed").unwrap();
        let body = "<rss><channel><title>A &aacute; &amp B</title><item><title>x</title><guid>1</guid></item></channel></rss>";
        let p = parse(body.as_bytes(), None, &url, c.zone, Utc::now()).unwrap();
        let line = p.recovered().unwrap();
        assert!(line.starts_with("recovered: "), "{line}");
        assert!(
            line.contains("1 HTML entity") && line.contains("1 bare &"),
            "{line}"
        );
        assert!(line.contains("missing or unknown RSS version"), "{line}");
    }

    #[test]
    fn html_becomes_one_line_of_text() {
        assert_eq!(
            html_to_text("<p>a &amp; b</p><p>c&nbsp;<script>x</script>d</p>"),
            "a & b c d"
        );
        assert_eq!(truncate("một hai ba bốn", 8), "một hai…");
    }
}
