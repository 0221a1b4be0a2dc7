//! Articles: the input shape the API and the importer take, and the validated, normalised
//! [`Article`] every other module works with.
//!
//! Normalisation happens once, at ingest, so that the store holds exactly what feeds show and a
//! render never has to repair text: Unicode NFC, characters XML 1.0 forbids removed, HTML
//! sanitised by ammonia (no script, style, event handlers or `javascript:` URLs), every relative
//! URL in the body made absolute against the article's own URL, naive times read as site-local.
//! Validation rejects a record whole with the field that is wrong; nothing is half-stored.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::Config;
use crate::text::{clean, clean_line, slug};

// Bounds on every text field, in characters of the normalised text (what is stored and
// rendered), whichever way the article came in (API, batch, import, upstream). Each matches
// what the upstream mapping already cuts an item to, or is the reason it cuts there; the
// OpenAPI schema states the same numbers (`maxLength`, `maxItems`), and a test holds the two
// together.

/// Longest title; a title is a line, not a body.
pub const MAX_TITLE_CHARS: usize = 1_000;
pub const MAX_SUMMARY_CHARS: usize = 10_000;
/// The sanitised body. The API's body limit (`[api] max_article_bytes`) bounds what a request
/// carries; this bounds what any input can make the store hold and every render repeat.
pub const MAX_CONTENT_CHARS: usize = 1_000_000;
/// A byline: the upstream mapping cuts authors to this.
pub const MAX_AUTHOR_CHARS: usize = 200;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 100;
/// The article's and the image's URL, once made absolute (the longest URL browsers and
/// sitemaps are expected to handle is about this).
pub const MAX_URL_CHARS: usize = 2_000;
/// A photo caption: the upstream mapping cuts captions to this.
pub const MAX_CAPTION_CHARS: usize = 500;
/// A media type: RFC 6838 allows 127 characters on each side of the slash.
pub const MAX_MIME_CHARS: usize = 255;
/// An RFC 3339 time is 20-35 characters; anything this long is not one.
pub const MAX_TIME_CHARS: usize = 64;

/// Longest error message and field name an error carries: messages quote the input (serde's
/// do too), and a rejected 1 MB value must not come back 1 MB long, once per batch line.
const MAX_MESSAGE_CHARS: usize = 1_000;
const MAX_FIELD_CHARS: usize = 200;

/// Why an article was rejected: the field (a JSON path such as `image.length`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            field: shorten(field.into(), MAX_FIELD_CHARS),
            message: shorten(message.into(), MAX_MESSAGE_CHARS),
        }
    }
}

/// `s` cut to at most `max` characters, an ellipsis marking the cut.
fn shorten(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s,
        Some(_) => {
            let cut: String = s.chars().take(max - 1).collect();
            cut + "…"
        }
    }
}

/// A value quoted in a message, cut short: `x…` for anything past 40 characters.
fn quote(s: &str) -> String {
    shorten(s.to_string(), 40)
}

/// Fails with `field` when `s` has more than `max` characters.
fn at_most(field: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    // A byte count at or under the limit settles it without counting characters.
    if s.len() > max && s.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("longer than {max} characters"),
        ));
    }
    Ok(())
}

/// An article as a CMS or a file sends it (DESIGN.md "Articles"). Unknown fields are rejected
/// so that a misspelt `updated_at` is an error, not a silently ignored correction.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ArticleInput {
    /// May be left out of a PUT body: the URL names the article.
    #[serde(default)]
    pub id: String,
    pub lang: String,
    pub category: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub content_html: String,
    pub url: String,
    #[serde(default)]
    pub author: String,
    pub published_at: String,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub image: Option<ImageInput>,
    #[serde(default)]
    pub translations: BTreeMap<String, String>,
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ImageInput {
    pub url: String,
    #[serde(default)]
    pub caption: String,
    #[serde(default)]
    pub mime: Option<String>,
    #[serde(default)]
    pub length: Option<u64>,
}

/// Publication state: only `Published` articles whose `published_at` has come are in feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Published,
    Draft,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Published => "published",
            Status::Draft => "draft",
        }
    }
}

/// A photo: an RSS enclosure when its length is known, `media:content` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub url: String,
    pub caption: String,
    pub mime: String,
    pub length: Option<u64>,
}

/// A validated, normalised article. Construct it with [`Article::from_input`].
///
/// Times are whole-second instants in UTC; zones are applied only when formatting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    pub id: String,
    pub lang: String,
    pub category: String,
    pub title: String,
    pub summary: String,
    pub content_html: String,
    pub url: String,
    pub author: String,
    pub published_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub tags: Vec<String>,
    pub image: Option<Image>,
    pub translations: BTreeMap<String, String>,
    pub status: Status,
    /// The upstream feed an aggregated article came from (`None` for the newsroom's own). Left
    /// out of the stored document when `None`, so articles stored before sources existed keep
    /// their exact bytes (and every feed its ETag).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Credit>,
}

/// Where an aggregated article came from, credited as each format asks: RSS `<source url>`,
/// Atom `<source>` (id, title, link, updated), JSON Feed's `_source` extension object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// The upstream feed's title (its URL when it has none).
    pub title: String,
    /// The URL the feed is polled at.
    pub feed_url: String,
    /// The upstream site's home page, when the feed names one.
    pub home_page_url: Option<String>,
    /// The upstream feed's own id (Atom `<id>`; the feed URL for formats without one).
    pub id: String,
}

/// Whether `id` is a valid article id: `[A-Za-z0-9._-]{1,128}`.
pub fn is_valid_id(id: &str) -> bool {
    // `.` and `..` would name the directory itself or its parent in a URL path or an export.
    !matches!(id, "." | "..")
        && (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Article {
    /// Validates and normalises `input` against the site configuration.
    pub fn from_input(input: ArticleInput, config: &Config) -> Result<Article, ValidationError> {
        let id = input.id.trim().to_string();
        if !is_valid_id(&id) {
            return Err(ValidationError::new(
                "id",
                "must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', and not `.` or `..`",
            ));
        }
        let lang = input.lang.trim().to_string();
        if config.language(&lang).is_none() {
            return Err(ValidationError::new(
                "lang",
                format!(
                    "`{}` is not a configured language ({})",
                    quote(&lang),
                    config.language_list()
                ),
            ));
        }
        let category = input.category.trim().to_string();
        if config.category(&category).is_none() {
            let ids: Vec<_> = config.categories.iter().map(|c| c.id.as_str()).collect();
            return Err(ValidationError::new(
                "category",
                format!(
                    "`{}` is not a configured category ({})",
                    quote(&category),
                    ids.join(", ")
                ),
            ));
        }

        let title = clean_line(&input.title);
        if title.is_empty() {
            return Err(ValidationError::new("title", "must not be empty"));
        }
        at_most("title", &title, MAX_TITLE_CHARS)?;
        let summary = clean_line(&input.summary);
        at_most("summary", &summary, MAX_SUMMARY_CHARS)?;
        let author = clean_line(&input.author);
        at_most("author", &author, MAX_AUTHOR_CHARS)?;

        let url = absolute_http_url(&input.url, &config.base_url)
            .map_err(|m| ValidationError::new("url", m))?;
        // An input of several times the limit is refused before the sanitiser parses it (its
        // work grows with the input, and no newsroom body is that size, scripts and all).
        if input.content_html.len() > 8 * MAX_CONTENT_CHARS {
            return Err(ValidationError::new(
                "content_html",
                format!("longer than {MAX_CONTENT_CHARS} characters"),
            ));
        }
        let content_html = sanitize_html(&input.content_html, &url);
        at_most("content_html", &content_html, MAX_CONTENT_CHARS)?;

        at_most("published_at", &input.published_at, MAX_TIME_CHARS)?;
        let published_at = config
            .zone
            .parse(&input.published_at)
            .map_err(|e| ValidationError::new("published_at", e.to_string()))?
            .trunc_subsecs(0);
        let updated_at = match input
            .updated_at
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(t) => {
                at_most("updated_at", t, MAX_TIME_CHARS)?;
                config
                    .zone
                    .parse(t)
                    .map_err(|e| ValidationError::new("updated_at", e.to_string()))?
                    .trunc_subsecs(0)
            }
            None => published_at,
        };
        if updated_at < published_at {
            return Err(ValidationError::new(
                "updated_at",
                format!(
                    "{} is before published_at {}",
                    config.zone.rfc3339(updated_at),
                    config.zone.rfc3339(published_at)
                ),
            ));
        }

        let tags = normalise_tags(&input.tags)?;
        let image = input
            .image
            .map(|img| normalise_image(img, &url))
            .transpose()?;

        let mut translations = BTreeMap::new();
        for (tlang, tid) in input.translations {
            let field = format!("translations.{tlang}");
            if config.language(&tlang).is_none() {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "`{}` is not a configured language ({})",
                        quote(&tlang),
                        config.language_list()
                    ),
                ));
            }
            if tlang == lang {
                return Err(ValidationError::new(
                    field,
                    "an article cannot be its own language's translation",
                ));
            }
            let tid = tid.trim().to_string();
            if !is_valid_id(&tid) || tid == id {
                return Err(ValidationError::new(
                    field,
                    format!("`{}` is not a valid id of another article", quote(&tid)),
                ));
            }
            translations.insert(tlang, tid);
        }

        let status = match input.status.as_deref().map(str::trim) {
            None | Some("") | Some("published") => Status::Published,
            Some("draft") => Status::Draft,
            Some(other) => {
                return Err(ValidationError::new(
                    "status",
                    format!("`{}` is neither `published` nor `draft`", quote(other)),
                ));
            }
        };

        Ok(Article {
            id,
            lang,
            category,
            title,
            summary,
            content_html,
            url: url.to_string(),
            author,
            published_at,
            updated_at,
            tags,
            image,
            translations,
            status,
            source: None,
        })
    }

    /// Parses one JSON article and validates it; serde errors name the JSON path of the field.
    pub fn from_json(text: &str, config: &Config) -> Result<Article, InputError> {
        let input = parse_input(text)?;
        Article::from_input(input, config).map_err(InputError::Invalid)
    }

    /// Whether the article is in feeds at `now`.
    pub fn is_visible(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Published && self.published_at <= now
    }

    pub fn author_slug(&self) -> String {
        slug(&self.author)
    }

    pub fn tag_slugs(&self) -> Vec<String> {
        self.tags.iter().map(|t| slug(t)).collect()
    }
}

/// Why a JSON article could not be read: not JSON at all (a client bug, 400), or JSON that is not
/// a valid article (422, naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error(transparent)]
    Invalid(ValidationError),
}

/// Deserialises JSON into an [`ArticleInput`], naming the field on a type error.
pub fn parse_input(text: &str) -> Result<ArticleInput, InputError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let input: ArticleInput = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return InputError::Malformed(inner.to_string());
        }
        let field = if path == "." {
            missing_field(&inner.to_string()).unwrap_or_else(|| "(body)".into())
        } else {
            path
        };
        InputError::Invalid(ValidationError::new(field, inner.to_string()))
    })?;
    Ok(input)
}

/// serde reports a missing field at the parent path; pull the field's name out of the message.
fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn absolute_http_url(s: &str, base: &Url) -> Result<Url, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > MAX_URL_CHARS && s.chars().count() > MAX_URL_CHARS {
        return Err(format!("longer than {MAX_URL_CHARS} characters"));
    }
    let u = base
        .join(s)
        .map_err(|e| format!("`{}` is not a URL ({e})", quote(s)))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("`{}` must be an http or https URL", quote(s)));
    }
    // Made absolute (and percent-encoded), a URL can outgrow what was sent.
    if u.as_str().len() > MAX_URL_CHARS {
        return Err(format!(
            "longer than {MAX_URL_CHARS} characters once made absolute"
        ));
    }
    Ok(u)
}

/// Sanitises an article body. ammonia keeps a conservative set of tags and attributes, drops
/// `script`/`style` with their content, event handlers and non-http(s)/mailto URLs, and rewrites
/// relative `href`/`src` against the article URL so partner sites show working links and images.
pub fn sanitize_html(html: &str, article_url: &Url) -> String {
    let cleaned = clean(html);
    let body = ammonia::Builder::default()
        .url_relative(ammonia::UrlRelative::RewriteWithBase(article_url.clone()))
        .url_schemes(HashSet::from(["http", "https", "mailto", "tel"]))
        .link_rel(None)
        .clean(&cleaned)
        .to_string();
    // The sanitiser decodes entities; filter once more in case one encoded a forbidden character.
    clean(&body)
}

fn normalise_tags(raw: &[String]) -> Result<Vec<String>, ValidationError> {
    if raw.len() > MAX_TAGS {
        return Err(ValidationError::new(
            "tags",
            format!("more than {MAX_TAGS} tags"),
        ));
    }
    let mut seen = HashSet::new();
    let mut tags = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let tag = clean_line(t);
        let field = format!("tags[{i}]");
        if tag.is_empty() {
            return Err(ValidationError::new(field, "must not be empty"));
        }
        at_most(&field, &tag, MAX_TAG_CHARS)?;
        let s = slug(&tag);
        if s.is_empty() {
            return Err(ValidationError::new(
                field,
                format!("`{tag}` has no letters or digits to make a URL slug from"),
            ));
        }
        // `Giá lúa` and `giá lúa` are one tag feed; keep the first spelling.
        if seen.insert(s) {
            tags.push(tag);
        }
    }
    Ok(tags)
}

/// An image checked against its article's URL (upstream items validate it on its own, so an
/// unusable image drops alone, not with its item).
pub(crate) fn normalise_image(
    img: ImageInput,
    article_url: &Url,
) -> Result<Image, ValidationError> {
    let url = absolute_http_url(&img.url, article_url)
        .map_err(|m| ValidationError::new("image.url", m))?;
    let mime = match img.mime.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) => {
            at_most("image.mime", m, MAX_MIME_CHARS)?;
            let ok = m.split_once('/').is_some_and(|(t, s)| {
                !t.is_empty()
                    && !s.is_empty()
                    && (t.to_string() + s)
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            });
            if !ok {
                return Err(ValidationError::new(
                    "image.mime",
                    format!("`{}` is not a media type such as image/jpeg", quote(m)),
                ));
            }
            m.to_ascii_lowercase()
        }
        None => mime_from_path(url.path()).to_string(),
    };
    if img.length == Some(0) {
        return Err(ValidationError::new(
            "image.length",
            "must be the size in bytes, greater than 0 (or absent when unknown)",
        ));
    }
    let caption = clean_line(&img.caption);
    at_most("image.caption", &caption, MAX_CAPTION_CHARS)?;
    Ok(Image {
        url: url.to_string(),
        caption,
        mime,
        length: img.length,
    })
}

fn mime_from_path(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "svg" => "image/svg+xml",
        _ => "image/jpeg",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::Path;

    pub(crate) fn config() -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds/site.toml");
        Config::load_with_env(&path, |_| None).unwrap()
    }

    pub(crate) fn input() -> ArticleInput {
        ArticleInput {
            id: "la-2026-0412".into(),
            lang: "vi".into(),
            category: "kinh-te".into(),
            title: "Long An: giá lúa tăng nhẹ".into(),
            summary: "Giá lúa tươi tăng 200 đồng/kg.".into(),
            content_html: "<p>Sáng nay</p><img src=\"/uploads/lua.jpg\">".into(),
            url: "https://baolongan.example/vi/kinh-te/gia-lua".into(),
            author: "Minh Thư".into(),
            published_at: "2026-04-12T08:30:00".into(),
            updated_at: Some("2026-04-12T09:05:00+07:00".into()),
            tags: vec!["nông nghiệp".into(), "Nông Nghiệp".into(), "giá lúa".into()],
            ..Default::default()
        }
    }

    #[test]
    fn normalises_a_good_article() {
        let a = Article::from_input(input(), &config()).unwrap();
        assert_eq!(a.published_at.to_rfc3339(), "2026-04-12T01:30:00+00:00");
        assert_eq!(a.updated_at.to_rfc3339(), "2026-04-12T02:05:00+00:00");
        assert_eq!(a.tags, vec!["nông nghiệp", "giá lúa"]);
        assert!(
            a.content_html
                .contains("src=\"https://baolongan.example/uploads/lua.jpg\""),
            "{}",
            a.content_html
        );
        assert_eq!(a.status, Status::Published);
        assert_eq!(a.author_slug(), "minh-thu");
    }

    #[test]
    fn hostile_html_is_neutralised() {
        let mut i = input();
        i.content_html = "<p onclick=\"steal()\">x\u{B}y ]]> <a href=\"javascript:alert(1)\">j</a>\
            <a href=\"../khac\">r</a><script>alert(1)</script><style>p{}</style><iframe src=\"/x\"></iframe>\
            <img src=\"anh.jpg\"></p>"
            .into();
        let a = Article::from_input(i, &config()).unwrap();
        let h = &a.content_html;
        for bad in [
            "onclick",
            "javascript:",
            "<script",
            "alert(1)",
            "<style",
            "<iframe",
            "\u{B}",
        ] {
            assert!(!h.contains(bad), "{bad} survived in {h}");
        }
        assert!(
            h.contains("href=\"https://baolongan.example/vi/khac\""),
            "{h}"
        );
        assert!(
            h.contains("src=\"https://baolongan.example/vi/kinh-te/anh.jpg\""),
            "{h}"
        );
        assert!(h.contains("]]&gt;"), "{h}");
    }

    #[test]
    fn decomposed_text_is_composed() {
        use unicode_normalization::UnicodeNormalization;
        let mut i = input();
        i.title = "Giá lúa tăng".nfd().collect();
        i.author = "Minh Thư".nfd().collect();
        let a = Article::from_input(i, &config()).unwrap();
        assert_eq!(a.title, "Giá lúa tăng");
        assert_eq!(a.author, "Minh Thư");
    }

    #[test]
    fn each_bad_field_is_named() {
        let c = config();
        type Mutation = Box<dyn Fn(&mut ArticleInput)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("id", Box::new(|i| i.id = "có dấu".into())),
            ("lang", Box::new(|i| i.lang = "fr".into())),
            ("category", Box::new(|i| i.category = "sport".into())),
            ("title", Box::new(|i| i.title = " \u{B} ".into())),
            ("url", Box::new(|i| i.url = "javascript:alert(1)".into())),
            (
                "published_at",
                Box::new(|i| i.published_at = "12/04/2026".into()),
            ),
            (
                "updated_at",
                Box::new(|i| i.updated_at = Some("2026-04-12T08:00:00".into())),
            ),
            (
                "tags[1]",
                Box::new(|i| i.tags = vec!["a".into(), "".into()]),
            ),
            (
                "translations.fr",
                Box::new(|i| {
                    i.translations.insert("fr".into(), "x".into());
                }),
            ),
            (
                "translations.vi",
                Box::new(|i| {
                    i.translations.insert("vi".into(), "x".into());
                }),
            ),
            ("status", Box::new(|i| i.status = Some("archived".into()))),
            (
                "image.mime",
                Box::new(|i| {
                    i.image = Some(ImageInput {
                        url: "/a.jpg".into(),
                        mime: Some("jpeg".into()),
                        ..Default::default()
                    })
                }),
            ),
            (
                "image.length",
                Box::new(|i| {
                    i.image = Some(ImageInput {
                        url: "/a.jpg".into(),
                        length: Some(0),
                        ..Default::default()
                    })
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut i = input();
            mutate(&mut i);
            let err = Article::from_input(i, &c).expect_err(field);
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn every_text_field_is_bounded() {
        let c = config();
        type Set = Box<dyn Fn(&mut ArticleInput, usize)>;
        fn image(i: &mut ArticleInput) -> &mut ImageInput {
            i.image.get_or_insert_with(|| ImageInput {
                url: "/a.jpg".into(),
                ..Default::default()
            })
        }
        // A URL of exactly `n` characters once made absolute.
        fn url(n: usize) -> String {
            let base = "https://baolongan.example/";
            format!("{base}{}", "u".repeat(n - base.len()))
        }
        let cases: Vec<(&str, usize, Set)> = vec![
            (
                "title",
                MAX_TITLE_CHARS,
                Box::new(|i, n| i.title = "ắ".repeat(n)),
            ),
            (
                "summary",
                MAX_SUMMARY_CHARS,
                Box::new(|i, n| i.summary = "ắ".repeat(n)),
            ),
            (
                "author",
                MAX_AUTHOR_CHARS,
                Box::new(|i, n| i.author = "Đ".repeat(n)),
            ),
            (
                "content_html",
                MAX_CONTENT_CHARS,
                Box::new(|i, n| i.content_html = "x".repeat(n)),
            ),
            ("url", MAX_URL_CHARS, Box::new(|i, n| i.url = url(n))),
            (
                "tags[0]",
                MAX_TAG_CHARS,
                Box::new(|i, n| i.tags = vec!["ắ".repeat(n)]),
            ),
            (
                "tags",
                MAX_TAGS,
                Box::new(|i, n| i.tags = (0..n).map(|k| format!("t{k}")).collect()),
            ),
            (
                "image.caption",
                MAX_CAPTION_CHARS,
                Box::new(|i, n| image(i).caption = "ả".repeat(n)),
            ),
            (
                "image.url",
                MAX_URL_CHARS,
                Box::new(|i, n| image(i).url = url(n)),
            ),
            (
                "image.mime",
                MAX_MIME_CHARS,
                Box::new(|i, n| image(i).mime = Some(format!("image/{}", "x".repeat(n - 6)))),
            ),
        ];
        for (field, max, set) in cases {
            let mut at = input();
            set(&mut at, max);
            assert!(
                Article::from_input(at, &c).is_ok(),
                "{field}: {max} is allowed"
            );
            let mut over = input();
            set(&mut over, max + 1);
            let e = Article::from_input(over, &c).expect_err(field);
            assert_eq!(e.field, field, "{e}");
        }
        let mut i = input();
        i.published_at = format!("2026-04-12T08:30:00{}", "0".repeat(MAX_TIME_CHARS));
        assert_eq!(
            Article::from_input(i, &c).unwrap_err().field,
            "published_at"
        );
    }

    #[test]
    fn errors_quote_the_input_briefly() {
        let c = config();
        let mut i = input();
        i.category = "x".repeat(100_000);
        let e = Article::from_input(i, &c).unwrap_err();
        assert_eq!(e.field, "category");
        assert!(e.message.len() < 200, "{}", e.message);
        let e = invalid(Article::from_json(
            &format!(
                r#"{{"id":"a","lang":"vi","category":"kinh-te","title":"t","url":"/x","published_at":"2026-01-01T00:00:00","image":{{"url":"/a.jpg","length":"{}"}}}}"#,
                "9".repeat(100_000)
            ),
            &c,
        ));
        assert_eq!(e.field, "image.length");
        assert!(
            e.message.chars().count() <= MAX_MESSAGE_CHARS,
            "serde's message is cut too"
        );
    }

    fn invalid(r: Result<Article, InputError>) -> ValidationError {
        match r {
            Err(InputError::Invalid(v)) => v,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_path() {
        let c = config();
        let e = invalid(Article::from_json(
            r#"{"id":"a","lang":"vi","category":"kinh-te","title":"t","url":"/x","published_at":"2026-01-01T00:00:00","image":{"url":"/a.jpg","length":"big"}}"#,
            &c,
        ));
        assert_eq!(e.field, "image.length");
        let e = invalid(Article::from_json(
            r#"{"id":"a","lang":"vi","category":"kinh-te","url":"/x","published_at":"2026-01-01T00:00:00"}"#,
            &c,
        ));
        assert_eq!(e.field, "title");
        let e = invalid(Article::from_json(
            r#"{"id":"a","lang":"vi","category":"kinh-te","title":"t","url":"/x","published_at":"2026-01-01T00:00:00","updatedAt":"x"}"#,
            &c,
        ));
        assert!(e.message.contains("updatedAt"), "{e}");
        assert!(matches!(
            Article::from_json(r#"{"id": "a", "#, &c),
            Err(InputError::Malformed(_))
        ));
        assert!(matches!(
            Article::from_json("not json", &c),
            Err(InputError::Malformed(_))
        ));
    }

    #[test]
    fn image_defaults() {
        let mut i = input();
        i.image = Some(ImageInput {
            url: "/uploads/a.png".into(),
            caption: " Ảnh\n".into(),
            mime: None,
            length: Some(10),
        });
        let a = Article::from_input(i, &config()).unwrap();
        let img = a.image.unwrap();
        assert_eq!(img.url, "https://baolongan.example/uploads/a.png");
        assert_eq!(img.mime, "image/png");
        assert_eq!(img.caption, "Ảnh");
    }
}
