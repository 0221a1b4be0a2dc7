//! The sample corpus served end to end: every feed in every format is well-formed, readable by an
//! independent parser, correctly dated, safe, and deterministic.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use unicode_normalization::{UnicodeNormalization, is_nfc};

use crate::helpers::*;

const ATOM: &str = "http://www.w3.org/2005/Atom";

/// The instant an article's raw `published_at` names, computed independently of bantin: a naive
/// time is +07:00.
fn expected_instant(raw: &str) -> DateTime<Utc> {
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return t.with_timezone(&Utc);
    }
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S")
        .expect("corpus naive times are full");
    FixedOffset::east_opt(7 * 3600)
        .unwrap()
        .from_local_datetime(&naive)
        .unwrap()
        .with_timezone(&Utc)
}

/// What one feed says, read through feed-rs plus strict parsing of the raw document.
struct Seen {
    ids: Vec<String>,
    article_ids: Vec<String>,
}

fn article_id(entry_id: &str) -> String {
    entry_id.rsplit(':').next().unwrap().to_string()
}

fn check_feed(path: &str, body: &[u8], corpus: &BTreeMap<String, serde_json::Value>) -> Seen {
    let text = std::str::from_utf8(body).unwrap_or_else(|_| panic!("{path}: not UTF-8"));
    assert!(is_nfc(text), "{path}: output is not NFC");
    if path.ends_with(".json") {
        assert_xml_chars(text, path);
        let v: serde_json::Value =
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{path}: invalid JSON: {e}"));
        assert_eq!(v["version"], "https://jsonfeed.org/version/1.1");
        assert!(
            v["language"].is_string() && v["feed_url"].as_str().unwrap().ends_with(path),
            "{path}"
        );
        for item in v["items"].as_array().unwrap() {
            for k in ["date_published", "date_modified"] {
                let d = item[k].as_str().unwrap();
                assert!(d.ends_with("+07:00"), "{path}: {k} {d} is not in +07:00");
            }
        }
    } else {
        let doc = strict_xml(text, path);
        let root = doc.root_element();
        if path.ends_with("rss.xml") {
            assert_eq!(root.tag_name().name(), "rss");
            let channel = root.children().find(|n| n.has_tag_name("channel")).unwrap();
            assert!(
                channel.children().any(|n| n.has_tag_name("language")),
                "{path}: no <language>"
            );
            let self_link = channel
                .children()
                .find(|n| n.has_tag_name((ATOM, "link")) && n.attribute("rel") == Some("self"))
                .unwrap_or_else(|| panic!("{path}: no atom:link rel=self"));
            assert!(
                self_link.attribute("href").unwrap().ends_with(path),
                "{path}: self link"
            );
            for n in doc
                .descendants()
                .filter(|n| n.has_tag_name("pubDate") || n.has_tag_name("lastBuildDate"))
            {
                let d = n.text().unwrap();
                assert!(d.ends_with(" +0700"), "{path}: {d} is not +0700");
                DateTime::parse_from_rfc2822(d).unwrap_or_else(|e| panic!("{path}: {d}: {e}"));
            }
            for item in channel.children().filter(|n| n.has_tag_name("item")) {
                let names: Vec<_> = item
                    .children()
                    .filter(|n| n.is_element())
                    .map(|n| n.tag_name().name())
                    .collect();
                if let (Some(d), Some(c)) = (
                    names.iter().position(|n| *n == "description"),
                    names.iter().position(|n| *n == "encoded"),
                ) {
                    assert!(
                        d < c,
                        "{path}: description must come before content:encoded"
                    );
                }
                let guid = item.children().find(|n| n.has_tag_name("guid")).unwrap();
                assert_eq!(guid.attribute("isPermaLink"), Some("false"));
            }
        } else {
            assert_eq!(root.tag_name(), (ATOM, "feed").into());
            assert!(
                root.attribute(("http://www.w3.org/XML/1998/namespace", "lang"))
                    .is_some(),
                "{path}: no xml:lang"
            );
            for n in doc.descendants().filter(|n| {
                n.has_tag_name((ATOM, "updated")) || n.has_tag_name((ATOM, "published"))
            }) {
                let d = n.text().unwrap();
                assert!(d.ends_with("+07:00"), "{path}: {d} is not +07:00");
            }
        }
    }

    let feed = feed_rs(body, path);
    let ids: Vec<String> = feed.entries.iter().map(|e| e.id.clone()).collect();
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{path}: duplicate ids");
    let mut article_ids = Vec::new();
    for e in &feed.entries {
        let id = article_id(&e.id);
        assert!(
            e.id.starts_with("tag:baolongan.example,2026:article:"),
            "{path}: id {} is not the stable tag URI",
            e.id
        );
        let raw = corpus
            .get(&id)
            .unwrap_or_else(|| panic!("{path}: entry {id} is not in the corpus"));
        let want = expected_instant(raw["published_at"].as_str().unwrap());
        assert_eq!(
            e.published.map(|p| p.with_timezone(&Utc)),
            Some(want),
            "{path}: {id} published instant"
        );
        // feed-rs takes the first alternate link: it must be the article's own page.
        assert_eq!(
            e.links.first().map(|l| l.href.as_str()),
            raw["url"].as_str(),
            "{path}: {id} link"
        );
        article_ids.push(id);
    }
    Seen { ids, article_ids }
}

fn corpus_by_id() -> BTreeMap<String, serde_json::Value> {
    read_corpus()
        .into_iter()
        .map(|a| (a["id"].as_str().unwrap().to_string(), a))
        .collect()
}

#[tokio::test]
async fn every_feed_of_the_sample_corpus_is_valid_dated_and_safe() {
    let app = spawn_default().await;
    let corpus = corpus_by_id();
    let paths = all_feed_paths(&app).await;
    assert!(
        paths.len() >= 3 * (2 + 2 * 7),
        "languages and categories at least: {}",
        paths.len()
    );
    let mut seen_anywhere = BTreeSet::new();
    let mut per_feed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &paths {
        let r = app.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        // The client follows redirects: the answer must come from the listed URL itself, which
        // is the feed's one canonical spelling.
        assert_eq!(r.url().as_str(), app.url(path), "{path} was redirected");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        let want_ct = match () {
            _ if path.ends_with("rss.xml") => "application/rss+xml; charset=utf-8",
            _ if path.ends_with("atom.xml") => "application/atom+xml; charset=utf-8",
            _ => "application/feed+json",
        };
        assert_eq!(ct, want_ct, "{path}");
        let body = r.bytes().await.unwrap();
        let seen = check_feed(path, &body, &corpus);
        assert!(
            !seen.ids.is_empty(),
            "{path}: every listed feed has articles"
        );
        per_feed.insert(path.clone(), seen.article_ids.iter().cloned().collect());
        seen_anywhere.extend(seen.article_ids);
    }
    // The three formats of a feed list the same entries.
    for path in paths.iter().filter(|p| p.ends_with("rss.xml")) {
        let rss = &per_feed[path];
        assert_eq!(
            rss,
            &per_feed[&path.replace("rss.xml", "atom.xml")],
            "{path} vs Atom"
        );
        assert_eq!(
            rss,
            &per_feed[&path.replace("rss.xml", "feed.json")],
            "{path} vs JSON"
        );
    }
    // Drafts and future articles are nowhere; everything else visible is somewhere.
    for hidden in ["la-2099-embargo", "la-2026-draft-01"] {
        assert!(
            !seen_anywhere.contains(hidden),
            "{hidden} leaked into a feed"
        );
    }
    let visible = corpus.len() - 2;
    assert_eq!(
        seen_anywhere.len(),
        visible,
        "every published article is in some feed"
    );
    // The language feed of `vi` holds every visible vi article (50 per page is more than enough).
    let vi: BTreeSet<String> = corpus
        .values()
        .filter(|a| a["lang"] == "vi" && a["status"] == "published" && a["id"] != "la-2099-embargo")
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(per_feed["/vi/rss.xml"], vi);
}

#[tokio::test]
async fn hostile_article_renders_without_illegal_characters_scripts_or_relative_urls() {
    let app = spawn_default().await;
    for path in [
        "/vi/xa-hoi/rss.xml",
        "/vi/xa-hoi/atom.xml",
        "/vi/xa-hoi/feed.json",
    ] {
        let body = app.get_text(path).await;
        assert_xml_chars(&body, path);
        let feed = feed_rs(body.as_bytes(), path);
        let e = feed
            .entries
            .iter()
            .find(|e| e.id.ends_with(":la-2026-hostile"))
            .expect("the hostile article is served");
        let t = e.title.as_ref().unwrap();
        // Atom declares a title that looks like markup as `html` (escaped once more, so a reader
        // shows it as written and no validator guesses): its text is the HTML's.
        let title = if t.content_type.to_string().contains("html") {
            assert!(path.ends_with("atom.xml"), "{path}");
            t.content
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        } else {
            t.content.clone()
        };
        assert_eq!(
            title, "Giá & <chi phí> nhà ở xã hội tăng ]]> người dân lo lắng",
            "{path}"
        );
        let html = e
            .content
            .as_ref()
            .and_then(|c| c.body.clone())
            .expect("content");
        for bad in [
            "<script",
            "alert(1)",
            "onclick",
            "javascript:",
            "<style",
            "<iframe",
            "\u{1}",
            "\u{B}",
        ] {
            assert!(
                !html.to_lowercase().contains(bad),
                "{path}: {bad} survived: {html}"
            );
        }
        // Every href and src is absolute.
        let mut urls = 0;
        for attr in ["href=\"", "src=\""] {
            for (i, _) in html.match_indices(attr) {
                let v = &html[i + attr.len()..];
                let v = &v[..v.find('"').unwrap()];
                assert!(
                    v.starts_with("https://baolongan.example/"),
                    "{path}: relative or foreign {attr}{v}"
                );
                urls += 1;
            }
        }
        assert!(
            urls >= 4,
            "{path}: the links and images survive, made absolute ({urls})"
        );
        for rel in [
            "\"/vi/xa-hoi/bai-lien-quan\"",
            "\"../tin-khac\"",
            "\"/uploads/anh.jpg\"",
            "\"anh-2.jpg\"",
        ] {
            assert!(!html.contains(rel), "{path}: {rel} left relative");
        }
        assert!(
            html.contains("https://baolongan.example/vi/xa-hoi/bai-lien-quan"),
            "{path}: {html}"
        );
        assert!(html.contains("https://baolongan.example/uploads/anh.jpg"));
        let author = &e.authors[0].name;
        assert_eq!(author.as_deref(), Some("Thanh Hà"));
        if path.ends_with("rss.xml") {
            // RSS Profile: `&` and `<` in plain text as numeric references, and the plain-text
            // summary escaped inside the HTML `description`, so "<chi phí>" is never a tag.
            assert!(
                body.contains("<title>Giá &#x26; &#x3C;chi phí&gt; nhà ở xã hội"),
                "{path}"
            );
            let summary = e.summary.as_ref().unwrap().content.clone();
            assert!(!summary.contains('\u{1}'));
            assert!(
                body.contains("giá &amp; &lt;phí&gt; dịch vụ"),
                "{path}: the summary is escaped as text"
            );
        }
    }
}

#[tokio::test]
async fn decomposed_vietnamese_comes_out_composed() {
    let app = spawn_default().await;
    let raw = corpus_by_id()["la-2026-nfd"].clone();
    let raw_title = raw["title"].as_str().unwrap();
    assert!(!is_nfc(raw_title), "the corpus article really is NFD");
    let want: String = raw_title.nfc().collect();
    for path in [
        "/vi/nong-nghiep/rss.xml",
        "/vi/nong-nghiep/atom.xml",
        "/vi/nong-nghiep/feed.json",
    ] {
        let body = app.get_text(path).await;
        let feed = feed_rs(body.as_bytes(), path);
        let e = feed
            .entries
            .iter()
            .find(|e| e.id.ends_with(":la-2026-nfd"))
            .unwrap();
        let title = &e.title.as_ref().unwrap().content;
        assert!(is_nfc(title), "{path}");
        assert_eq!(title, &want);
        assert!(is_nfc(&body), "{path}: the whole document is NFC");
    }
    // The decomposed tag and byline fold to the same slugs as composed ones.
    let author_feed = app.get_text("/vi/author/minh-thu/rss.xml").await;
    assert!(author_feed.contains("la-2026-"), "author feeds exist");
}

#[tokio::test]
async fn rss_dates_are_rfc822_in_local_time_and_atom_dates_rfc3339() {
    let app = spawn_default().await;
    // la-2026-1101 is naive local 2026-11-01T00:30:00: still 1 November locally, 31 October in UTC.
    let rss = app.get_text("/vi/rss.xml").await;
    assert!(
        rss.contains("<pubDate>Sun, 1 Nov 2026 00:30:00 +0700</pubDate>"),
        "naive local time stays local"
    );
    // la-2026-1009-en is 2026-10-09T22:30:00-05:00: Saturday 10 October, 10:30 in Vietnam.
    let en = app.get_text("/en/rss.xml").await;
    assert!(
        en.contains("<pubDate>Sat, 10 Oct 2026 10:30:00 +0700</pubDate>"),
        "other offsets are converted"
    );
    let atom = app.get_text("/en/atom.xml").await;
    assert!(atom.contains("<published>2026-10-10T10:30:00+07:00</published>"));
    for bad in ["GMT", "ICT", "+0000", "UTC"] {
        let dates: Vec<&str> = rss
            .split("<pubDate>")
            .skip(1)
            .map(|s| s.split('<').next().unwrap())
            .collect();
        assert!(dates.iter().all(|d| !d.contains(bad)), "{bad} in {dates:?}");
    }
}

#[tokio::test]
async fn translations_are_linked_both_ways_with_hreflang() {
    let app = spawn_default().await;
    let corpus = corpus_by_id();
    for (id, feed, other) in [
        ("la-2026-1104", "/vi/quoc-phong/atom.xml", "la-2026-1104-en"),
        ("la-2026-1104-en", "/en/defence/atom.xml", "la-2026-1104"),
    ] {
        let body = app.get_text(feed).await;
        let doc = strict_xml(&body, feed);
        let entry = doc
            .descendants()
            .filter(|n| n.has_tag_name((ATOM, "entry")))
            .find(|e| {
                e.children().any(|c| {
                    c.has_tag_name((ATOM, "id")) && c.text().unwrap().ends_with(&format!(":{id}"))
                })
            })
            .unwrap_or_else(|| panic!("{id} in {feed}"));
        let alternates: Vec<(String, Option<String>)> = entry
            .children()
            .filter(|c| {
                c.has_tag_name((ATOM, "link"))
                    && c.attribute("rel").unwrap_or("alternate") == "alternate"
            })
            .map(|c| {
                (
                    c.attribute("href").unwrap().to_string(),
                    c.attribute("hreflang").map(String::from),
                )
            })
            .collect();
        let own = corpus[id]["url"].as_str().unwrap().to_string();
        let other_url = corpus[other]["url"].as_str().unwrap().to_string();
        let own_lang = corpus[id]["lang"].as_str().unwrap().to_string();
        let other_lang = corpus[other]["lang"].as_str().unwrap().to_string();
        assert_eq!(
            alternates,
            vec![
                (own.clone(), None),
                (other_url, Some(other_lang)),
                (own, Some(own_lang))
            ],
            "{id}: own link first and last, the translation between"
        );
        // No two links share rel, type and hreflang (the W3C validator's rule).
        let keys: Vec<_> = entry
            .children()
            .filter(|c| c.has_tag_name((ATOM, "link")))
            .map(|c| {
                (
                    c.attribute("rel"),
                    c.attribute("type"),
                    c.attribute("hreflang"),
                )
            })
            .collect();
        assert_eq!(
            keys.iter().collect::<HashSet<_>>().len(),
            keys.len(),
            "{id}: {keys:?}"
        );
    }
}

#[tokio::test]
async fn photo_becomes_an_enclosure_with_length_or_media_content() {
    let app = spawn_default().await;
    let body = app.get_text("/vi/quoc-phong/rss.xml").await;
    let doc = strict_xml(&body, "rss");
    let item = doc
        .descendants()
        .filter(|n| n.has_tag_name("item"))
        .find(|i| {
            i.children()
                .any(|c| c.has_tag_name("guid") && c.text().unwrap().ends_with(":la-2026-1104"))
        })
        .unwrap();
    let enc = item
        .children()
        .find(|c| c.has_tag_name("enclosure"))
        .expect("enclosure with a known length");
    assert_eq!(enc.attribute("length"), Some("184320"));
    assert_eq!(enc.attribute("type"), Some("image/jpeg"));
    let media = item
        .children()
        .find(|c| c.has_tag_name(("http://search.yahoo.com/mrss/", "content")))
        .unwrap();
    assert_eq!(media.attribute("url"), enc.attribute("url"));
    assert!(
        media
            .children()
            .any(|c| c.has_tag_name(("http://search.yahoo.com/mrss/", "description"))),
        "caption"
    );
    // An image without a length never makes an enclosure (a made-up length fails validators).
    let corpus = corpus_by_id();
    let no_length: Vec<&String> = corpus
        .iter()
        .filter(|(_, a)| {
            a["image"].is_object()
                && a["image"].get("length").is_none()
                && a["status"] == "published"
        })
        .map(|(id, _)| id)
        .collect();
    assert!(!no_length.is_empty());
    for id in no_length {
        let a = &corpus[id];
        let lang = a["lang"].as_str().unwrap();
        let body = app.get_text(&format!("/{lang}/rss.xml")).await;
        let doc = strict_xml(&body, "rss");
        if let Some(item) = doc
            .descendants()
            .filter(|n| n.has_tag_name("item"))
            .find(|i| {
                i.children().any(|c| {
                    c.has_tag_name("guid") && c.text().unwrap().ends_with(&format!(":{id}"))
                })
            })
        {
            assert!(
                !item.children().any(|c| c.has_tag_name("enclosure")),
                "{id}: enclosure without a length"
            );
            assert!(
                item.children()
                    .any(|c| c.has_tag_name(("http://search.yahoo.com/mrss/", "content"))),
                "{id}"
            );
        }
    }
}

#[tokio::test]
async fn pages_link_first_previous_next_and_cover_the_feed_once() {
    let app = spawn(Options {
        items_per_feed: Some(7),
        ..Default::default()
    })
    .await;
    let mut ids = Vec::new();
    let mut next = Some(format!("{}/vi/atom.xml", app.base));
    let mut page = 0;
    while let Some(url) = next.take() {
        page += 1;
        let body = app
            .client
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let doc = strict_xml(&body, &url);
        let link = |rel: &str| {
            doc.root_element()
                .children()
                .find(|n| n.has_tag_name((ATOM, "link")) && n.attribute("rel") == Some(rel))
                .map(|n| n.attribute("href").unwrap().to_string())
        };
        assert_eq!(link("self").as_deref(), Some(url.as_str()));
        assert_eq!(link("first"), Some(format!("{}/vi/atom.xml", app.base)));
        if page > 1 {
            let prev = if page == 2 {
                format!("{}/vi/atom.xml", app.base)
            } else {
                format!("{}/vi/atom.xml?page={}", app.base, page - 1)
            };
            assert_eq!(link("previous"), Some(prev), "page {page} links back");
        } else {
            assert_eq!(link("previous"), None);
        }
        let feed = feed_rs(body.as_bytes(), &url);
        assert!(feed.entries.len() <= 7);
        ids.extend(
            feed.entries
                .iter()
                .map(|e| (e.published.unwrap(), e.id.clone())),
        );
        next = link("next");
    }
    let vi_visible = read_corpus()
        .iter()
        .filter(|a| a["lang"] == "vi" && a["status"] == "published" && a["id"] != "la-2099-embargo")
        .count();
    assert_eq!(
        ids.len(),
        vi_visible,
        "all pages together hold the feed once"
    );
    assert_eq!(page, vi_visible.div_ceil(7));
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first across pages");
    let past = app.get(&format!("/vi/atom.xml?page={}", page + 1)).await;
    assert_eq!(past.status(), 404);
    // JSON Feed pages by next_url.
    let json: serde_json::Value =
        serde_json::from_str(&app.get_text("/vi/feed.json").await).unwrap();
    assert_eq!(
        json["next_url"],
        format!("{}/vi/feed.json?page=2", app.base)
    );
}

#[tokio::test]
async fn unknown_languages_categories_and_pages_are_404_with_what_exists() {
    let app = spawn_default().await;
    for (path, must_mention) in [
        ("/fr/rss.xml", "vi, en"),
        ("/vi/khong-co/rss.xml", "quoc-phong"),
        ("/en/kinh-te/rss.xml", "economy"),
        ("/vi/rss.json", "rss.xml, atom.xml or feed.json"),
        ("/vi/rss.xml?page=0", "page"),
        ("/vi/rss.xml?page=99", "page 99"),
        ("/vi/tag/khong-ton-tai/rss.xml", "khong-ton-tai"),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 404, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = r.text().await.unwrap();
        assert!(text.contains(must_mention), "{path}: {text}");
    }
}

#[tokio::test]
async fn opml_lists_every_language_and_category_feed() {
    let app = spawn_default().await;
    let opml = app.get("/feeds.opml").await;
    assert_eq!(opml.headers()["content-type"], "text/x-opml; charset=utf-8");
    let text = opml.text().await.unwrap();
    let doc = strict_xml(&text, "opml");
    let outlines: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_attribute("xmlUrl"))
        .collect();
    let urls: HashSet<&str> = outlines
        .iter()
        .map(|n| n.attribute("xmlUrl").unwrap())
        .collect();
    for path in [
        "/vi/rss.xml",
        "/en/rss.xml",
        "/vi/quoc-phong/rss.xml",
        "/en/defence/rss.xml",
        "/en/education/rss.xml",
    ] {
        assert!(
            urls.contains(format!("{}{path}", app.base).as_str()),
            "{path} missing from OPML"
        );
    }
    for n in &outlines {
        assert!(n.attribute("title").is_some_and(|t| !t.is_empty()));
        assert!(matches!(n.attribute("language"), Some("vi" | "en")));
        assert_eq!(n.attribute("type"), Some("rss"));
    }
    assert!(
        urls.iter().any(|u| u.contains("/vi/tag/")),
        "tag feeds are listed"
    );
    assert!(
        urls.iter().any(|u| u.contains("/en/author/")),
        "byline feeds are listed"
    );
}

#[tokio::test]
async fn the_same_store_renders_identical_bytes_on_another_instance() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let public = "https://feeds.baolongan.example/".to_string();
    let a = spawn(Options {
        database_url: Some(db.clone()),
        public_url: Some(public.clone()),
        ..Default::default()
    })
    .await;
    let b = spawn(Options {
        database_url: Some(db),
        public_url: Some(public),
        articles_dir: None,
        ..Default::default()
    })
    .await;
    let paths: Vec<String> = all_feed_paths_on(&a, "https://feeds.baolongan.example").await;
    assert!(paths.len() > 40);
    for path in &paths {
        let ra = a.get(path).await;
        let rb = b.get(path).await;
        let (ea, eb) = (ra.headers()["etag"].clone(), rb.headers()["etag"].clone());
        let (ba, bb) = (ra.bytes().await.unwrap(), rb.bytes().await.unwrap());
        assert_eq!(ba, bb, "{path}: bytes differ between instances");
        assert_eq!(ea, eb, "{path}: ETags differ");
    }
}

async fn all_feed_paths_on(app: &TestApp, public: &str) -> Vec<String> {
    let opml = app.get_text("/feeds.opml").await;
    let doc = strict_xml(&opml, "opml");
    doc.descendants()
        .filter_map(|n| n.attribute("xmlUrl"))
        .flat_map(|u| {
            let p = u.strip_prefix(public).unwrap().to_string();
            ["rss.xml", "atom.xml", "feed.json"].map(|f| p.replace("rss.xml", f))
        })
        .collect()
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = spawn_default().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let v: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(v["store"], "sqlite");
    let home = app.get("/").await;
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(
        html.contains("rel=\"alternate\" type=\"application/rss+xml\""),
        "autodiscovery links"
    );
    let preview = app.get_text("/en/defence/").await;
    assert!(
        preview.contains("Kien Tuong") || preview.contains("Kiến Tường"),
        "the preview lists articles"
    );
    let metrics = app.get_text("/metrics").await;
    for m in [
        "bantin_cache_hits_total",
        "bantin_cache_misses_total",
        "bantin_render_seconds_bucket",
        "bantin_store_errors_total",
    ] {
        assert!(metrics.contains(m), "{m} in {metrics}");
    }
}
