//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>), serialised with serde.
//!
//! Field order is fixed by the struct declarations, so the bytes are deterministic. Pagination
//! uses `next_url`; WebSub hubs are listed in `hubs`. The photo becomes `image` and, when its
//! length is known, an attachment.

use serde::Serialize;

use super::{Content, FeedPage, Format};
use crate::article::Article;
use crate::config::Config;

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: String,
    home_page_url: String,
    feed_url: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<String>,
    language: &'a str,
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub>,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

#[derive(Serialize)]
struct Hub {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: String,
    url: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    summary: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<&'a str>,
    /// Only in the summary variant: JSON Feed wants `content_html` or `content_text` in every
    /// item, and the summary is the text it may carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    tags: Vec<&'a str>,
    language: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment<'a>>,
    /// The origin of an aggregated item: a JSON Feed extension (an `_`-prefixed key, which
    /// readers that do not know it ignore).
    #[serde(rename = "_source", skip_serializing_if = "Option::is_none")]
    source: Option<SourceCredit<'a>>,
}

#[derive(Serialize)]
struct SourceCredit<'a> {
    title: &'a str,
    feed_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    home_page_url: Option<&'a str>,
}

#[derive(Serialize)]
struct Attachment<'a> {
    url: &'a str,
    mime_type: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    title: &'a str,
    size_in_bytes: u64,
}

pub fn render(page: &FeedPage, config: &Config) -> Vec<u8> {
    let site = config
        .language(&page.key.lang)
        .map(|l| l.site_name.as_str())
        .unwrap_or("");
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: page.title(config),
        home_page_url: page.home_url(config),
        feed_url: page.key.url(config, Format::Json, page.page),
        description: page.description(config),
        next_url: page
            .has_next
            .then(|| page.key.url(config, Format::Json, page.page + 1)),
        language: &page.key.lang,
        authors: vec![Author {
            name: site,
            url: Some(config.base_url.as_str()),
        }],
        hubs: config
            .advertised_hubs()
            .iter()
            .map(|h| Hub {
                kind: "WebSub",
                url: h.to_string(),
            })
            .collect(),
        items: page
            .items
            .iter()
            .map(|a| item(a, page.content, config))
            .collect(),
    };
    serde_json::to_vec(&feed).expect("a feed always serialises")
}

fn item<'a>(a: &'a Article, content: Content, config: &'a Config) -> JsonItem<'a> {
    let zone = config.zone;
    let category = config
        .category(&a.category)
        .map(|c| c.name(&a.lang))
        .unwrap_or(&a.category);
    JsonItem {
        id: FeedPage::entry_id(config, a),
        url: &a.url,
        title: &a.title,
        summary: &a.summary,
        content_html: (content == Content::Full).then_some(a.content_html.as_str()),
        content_text: (content == Content::Summary).then_some(a.summary.as_str()),
        image: a.image.as_ref().map(|i| i.url.as_str()),
        date_published: zone.rfc3339(a.published_at),
        date_modified: zone.rfc3339(a.updated_at),
        authors: if a.author.is_empty() {
            vec![]
        } else {
            vec![Author {
                name: &a.author,
                url: None,
            }]
        },
        tags: std::iter::once(category)
            .chain(a.tags.iter().map(String::as_str))
            .collect(),
        language: &a.lang,
        attachments: a
            .image
            .iter()
            .filter_map(|i| {
                i.length.map(|size| Attachment {
                    url: &i.url,
                    mime_type: &i.mime,
                    title: &i.caption,
                    size_in_bytes: size,
                })
            })
            .collect(),
        source: a.source.as_ref().map(|c| SourceCredit {
            title: &c.title,
            feed_url: &c.feed_url,
            home_page_url: c.home_page_url.as_deref(),
        }),
    }
}
