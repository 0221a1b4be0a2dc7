//! HTTP caching behaviour: conditional GET, HEAD, encodings, invalidation scope, single render,
//! scheduled publishing, stale-if-error.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use bantin::cache::CacheKey;
use bantin::feed::{FeedKey, Format, Selector};

use crate::helpers::*;

#[tokio::test]
async fn conditional_get_answers_304_with_the_same_validators() {
    let app = spawn_default().await;
    let first = app.get("/vi/rss.xml").await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let lm = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        etag.starts_with('"') && !etag.starts_with("W/"),
        "strong ETag: {etag}"
    );
    let cc = first.headers()["cache-control"].to_str().unwrap();
    assert_eq!(
        cc,
        "public, max-age=60, stale-while-revalidate=300, stale-if-error=86400"
    );
    assert_eq!(first.headers()["access-control-allow-origin"], "*");
    assert_eq!(first.headers()["vary"], "Accept-Encoding");

    type Case<'a> = (&'a [(&'a str, String)], u16, &'a str);
    let cases: &[Case] = &[
        (&[("if-none-match", etag.clone())], 304, "matching ETag"),
        (
            &[("if-none-match", format!("W/{etag}"))],
            304,
            "weak comparison",
        ),
        (
            &[("if-none-match", format!("\"nope\", {etag}"))],
            304,
            "a list",
        ),
        (&[("if-none-match", "*".into())], 304, "any"),
        (&[("if-none-match", "\"nope\"".into())], 200, "changed"),
        (
            &[("if-modified-since", lm.clone())],
            304,
            "not modified since",
        ),
        (
            &[("if-modified-since", "Thu, 01 Jan 2026 00:00:00 GMT".into())],
            200,
            "modified since",
        ),
        (
            &[
                ("if-none-match", "\"nope\"".into()),
                ("if-modified-since", lm.clone()),
            ],
            200,
            "If-None-Match wins",
        ),
    ];
    for (headers, want, why) in cases {
        let mut req = app.client.get(app.url("/vi/rss.xml"));
        for (k, v) in headers.iter() {
            req = req.header(*k, v);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), *want, "{why}");
        if *want == 304 {
            assert_eq!(
                r.headers()["etag"].to_str().unwrap(),
                etag,
                "{why}: same ETag"
            );
            // RFC 9110 §15.4.5: what a 200 would carry of Date, ETag, Cache-Control and Vary, and
            // nothing a cache does not need (it keeps the stored response's other headers).
            let names: BTreeSet<&str> = r.headers().keys().map(|k| k.as_str()).collect();
            for needed in ["etag", "cache-control", "vary", "date"] {
                assert!(names.contains(needed), "{why}: 304 without {needed}");
            }
            for extra in &names {
                assert!(
                    ["etag", "cache-control", "vary", "date", "connection"].contains(extra),
                    "{why}: a 304 carries {extra}"
                );
            }
            assert_eq!(r.headers()["cache-control"], cc, "{why}");
            assert!(r.bytes().await.unwrap().is_empty(), "{why}: no body");
        }
    }
}

#[tokio::test]
async fn head_has_the_headers_of_get_and_no_body() {
    let app = spawn_default().await;
    for path in [
        "/vi/rss.xml",
        "/en/defence/atom.xml",
        "/vi/feed.json",
        "/feeds.opml",
    ] {
        for enc in ["identity", "gzip", "br"] {
            let get = app
                .client
                .get(app.url(path))
                .header("accept-encoding", enc)
                .send()
                .await
                .unwrap();
            let head = app
                .client
                .head(app.url(path))
                .header("accept-encoding", enc)
                .send()
                .await
                .unwrap();
            assert_eq!(head.status(), 200);
            for h in [
                "etag",
                "last-modified",
                "content-type",
                "content-encoding",
                "content-length",
                "cache-control",
                "vary",
                "link",
            ] {
                assert_eq!(
                    get.headers().get(h),
                    head.headers().get(h),
                    "{path} {enc}: {h}"
                );
            }
            let len: usize = get.headers()["content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(get.bytes().await.unwrap().len(), len);
            assert!(head.bytes().await.unwrap().is_empty());
        }
    }
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn unbrotli(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(b, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[tokio::test]
async fn accept_encoding_picks_precompressed_bodies_with_their_own_etags() {
    let app = spawn_default().await;
    let get = |ae: Option<&'static str>| {
        let mut req = app.client.get(app.url("/vi/atom.xml"));
        if let Some(ae) = ae {
            req = req.header("accept-encoding", ae);
        }
        req.send()
    };
    let plain = get(None).await.unwrap();
    assert!(plain.headers().get("content-encoding").is_none());
    let identity_etag = plain.headers()["etag"].clone();
    let identity = plain.bytes().await.unwrap();

    let gz = get(Some("gzip")).await.unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    let gz_etag = gz.headers()["etag"].clone();
    let gz_body = gz.bytes().await.unwrap();
    assert_eq!(gunzip(&gz_body), identity);
    assert!(
        gz_body.len() * 3 < identity.len(),
        "gzip actually compresses"
    );

    let br = get(Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(br.headers()["content-encoding"], "br");
    let br_etag = br.headers()["etag"].clone();
    assert_eq!(unbrotli(&br.bytes().await.unwrap()), identity);

    let q = get(Some("br;q=0.2, gzip;q=0.9")).await.unwrap();
    assert_eq!(q.headers()["content-encoding"], "gzip");
    let none = get(Some("br;q=0, gzip;q=0")).await.unwrap();
    assert!(none.headers().get("content-encoding").is_none());

    assert_ne!(identity_etag, gz_etag);
    assert_ne!(gz_etag, br_etag);
    // Each representation revalidates against its own ETag.
    let r = app
        .client
        .get(app.url("/vi/atom.xml"))
        .header("accept-encoding", "gzip")
        .header("if-none-match", gz_etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = app
        .client
        .get(app.url("/vi/atom.xml"))
        .header("accept-encoding", "gzip")
        .header("if-none-match", identity_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the identity ETag does not validate the gzip body"
    );
}

fn key(lang: &str, sel: Selector, format: Format) -> CacheKey {
    CacheKey {
        feed: FeedKey::new(lang, sel),
        format,
        page: 1,
        content: bantin::feed::Content::Full,
    }
}

#[tokio::test]
async fn a_write_invalidates_exactly_the_feeds_it_touched() {
    let app = spawn_default().await;
    // Warm every feed in every format.
    let paths = all_feed_paths(&app).await;
    for p in &paths {
        assert_eq!(app.get(p).await.status(), 200, "{p}");
    }
    let cache = &app.server.app.cache();
    let cached: Vec<CacheKey> = {
        let mut keys = Vec::new();
        for p in &paths {
            if let Ok(bantin::http::feeds::Target::Feed(feed, format)) =
                bantin::http::feeds::parse_path(app.server.app.config(), p)
            {
                keys.push(CacheKey {
                    feed,
                    format,
                    page: 1,
                    content: bantin::feed::Content::Full,
                });
            }
        }
        keys
    };
    for k in &cached {
        assert!(cache.contains_current(k).await, "{k:?} warmed");
    }
    let before = app.get("/en/economy/rss.xml").await.headers()["etag"].clone();

    // A new English economy article tagged "rice" by Minh Thư.
    let mut a = article("it-en-1", "en", "kinh-te", "2026-11-25T08:00:00");
    a["tags"] = serde_json::json!(["rice"]);
    a["author"] = "Minh Thư".into();
    assert_eq!(app.put("it-en-1", &a).await.status(), 201);

    let touched = [
        key("en", Selector::All, Format::Rss),
        key("en", Selector::Category("kinh-te".into()), Format::Atom),
        key("en", Selector::Tag("rice".into()), Format::Json),
        key("en", Selector::Author("minh-thu".into()), Format::Rss),
    ];
    for k in &touched {
        assert!(
            !cache.contains_current(k).await,
            "{k:?} must be invalidated"
        );
    }
    let touched_feeds: Vec<FeedKey> = touched.iter().map(|k| k.feed.clone()).collect();
    for k in &cached {
        let is_touched = touched_feeds.contains(&k.feed);
        assert_eq!(
            cache.contains_current(k).await,
            !is_touched,
            "{k:?}: only the touched feeds are dropped"
        );
    }
    assert!(cached.iter().filter(|k| k.feed.lang == "vi").count() > 30);
    // Read your writes, with a new ETag.
    let after = app.get("/en/economy/rss.xml").await;
    assert_ne!(after.headers()["etag"], before);
    assert!(after.text().await.unwrap().contains(":it-en-1</guid>"));
}

#[tokio::test]
async fn two_hundred_concurrent_misses_render_once() {
    let app = spawn_default().await;
    let renders = || app.server.app.cache().renders();
    let before = renders();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let c = app.client.clone();
        let url = app.url("/vi/kinh-te/atom.xml");
        tasks.push(tokio::spawn(async move {
            c.get(url).send().await.unwrap().bytes().await.unwrap()
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        bodies.push(t.await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        renders() - before,
        1,
        "one render for 200 concurrent misses"
    );
}

#[tokio::test]
async fn an_embargoed_article_appears_on_time_without_a_write() {
    // The server's clock is the test's: the embargo ends when the test moves it, not after real
    // seconds.
    let clock = std::sync::Arc::new(bantin::clock::ManualClock::new(
        "2026-12-01T05:00:00Z".parse().unwrap(),
    ));
    let app = spawn(Options {
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let a = article("it-embargo", "vi", "the-thao", "2026-12-01T12:00:02+07:00");
    assert_eq!(app.put("it-embargo", &a).await.status(), 201);
    let before = app.get_text("/vi/the-thao/rss.xml").await;
    assert!(!before.contains(":it-embargo<"), "not before its time");
    // The feed is cached now; no write happens from here on.
    let renders = app.server.app.cache().renders();
    clock.advance(Duration::from_millis(1_999));
    assert!(
        !app.get_text("/vi/the-thao/rss.xml")
            .await
            .contains(":it-embargo<"),
        "a millisecond before its time"
    );
    assert_eq!(
        app.server.app.cache().renders(),
        renders,
        "served from the cache meanwhile"
    );
    clock.advance(Duration::from_millis(1));
    let after = app.get_text("/vi/the-thao/rss.xml").await;
    assert!(
        after.contains(":it-embargo<"),
        "appears once its time has come"
    );
    assert_eq!(
        app.server.app.cache().renders(),
        renders + 1,
        "rendered again exactly when the embargo ended"
    );
}

#[tokio::test]
async fn pages_past_the_end_are_404_without_reading_the_store() {
    let app = spawn(Options {
        items_per_feed: Some(5),
        ..Options::default()
    })
    .await;
    let queries = || app.server.app.metrics().page_queries.get();
    // The Vietnamese feed of the sample corpus has more than 5 items: page 2 exists.
    assert_eq!(app.get("/vi/rss.xml?page=2").await.status(), 200);
    let before = queries();
    let mut last_page: u32 = 2;
    while app
        .get(&format!("/vi/rss.xml?page={}", last_page + 1))
        .await
        .status()
        == 200
    {
        last_page += 1;
    }
    let walked = queries() - before;
    assert!(
        walked <= u64::from(last_page),
        "one query per page that exists"
    );
    // A thousand pages past the end, on both HTTP paths: answered from the item count.
    let before = queries();
    for page in (last_page + 1..last_page + 500).chain([99_999, 100_000]) {
        let r = app.get(&format!("/vi/atom.xml?page={page}")).await;
        assert_eq!(r.status(), 404, "page {page}");
    }
    assert!(
        queries() - before <= 1,
        "pages past the end read the store {} times",
        queries() - before
    );
    // Writes are seen at once: five more articles make exactly one more page.
    for i in 0..5 {
        let id = format!("past-end-{i}");
        let a = article(&id, "vi", "kinh-te", "2026-11-20T08:00:00");
        assert_eq!(app.put(&id, &a).await.status(), 201);
    }
    let next = format!("/vi/atom.xml?page={}", last_page + 1);
    assert_eq!(app.get(&next).await.status(), 200, "the new last page");
    let after = format!("/vi/atom.xml?page={}", last_page + 2);
    assert_eq!(app.get(&after).await.status(), 404);
}

/// GETs `path` with `ae` until its ETag names the best-ratio body (or 60 s pass); returns the
/// fast answer seen first and the best one.
async fn until_recompressed(
    app: &TestApp,
    path: &str,
    ae: &str,
) -> ((String, Vec<u8>), (String, Vec<u8>)) {
    let get = || async {
        let r = app
            .client
            .get(app.url(path))
            .header("accept-encoding", ae)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        (etag, r.bytes().await.unwrap().to_vec())
    };
    let first = get().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = get().await;
        if now.0 != first.0 {
            return (first, now);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} ({ae}) was never recompressed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn best_ratio_bodies_replace_the_fast_ones_and_both_etags_answer_304() {
    let app = spawn_default().await;
    let identity = app.get("/vi/rss.xml").await.bytes().await.unwrap();
    let ((fast_tag, fast), (best_tag, best)) =
        until_recompressed(&app, "/vi/rss.xml", "gzip").await;
    assert!(fast_tag.ends_with("-gz1\""), "{fast_tag}");
    assert!(best_tag.ends_with("-gz\""), "{best_tag}");
    assert_eq!(gunzip(&fast), identity, "the fast body decodes to the feed");
    assert_eq!(
        gunzip(&best),
        identity,
        "the best body decodes to the feed, byte for byte"
    );
    assert!(best.len() < fast.len(), "{} >= {}", best.len(), fast.len());
    let br = app
        .client
        .get(app.url("/vi/rss.xml"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    assert!(br.headers()["etag"].to_str().unwrap().ends_with("-br\""));
    assert_eq!(unbrotli(&br.bytes().await.unwrap()), identity);
    assert_eq!(
        app.server.app.cache().recompressions(),
        1,
        "the three bodies at once"
    );

    // A poller holding either version's ETag is told its copy is current, with the validator of
    // the copy it holds (so a cache freshens that copy rather than refetching).
    for held in [&fast_tag, &best_tag] {
        let r = app
            .client
            .get(app.url("/vi/rss.xml"))
            .header("accept-encoding", "gzip")
            .header("if-none-match", held)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 304, "holding {held}");
        assert_eq!(r.headers()["etag"].to_str().unwrap(), held.as_str());
    }
    // But not one of another coding, nor after the content changes.
    let r = app
        .client
        .get(app.url("/vi/rss.xml"))
        .header("accept-encoding", "br")
        .header("if-none-match", &best_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "a gzip ETag does not validate the brotli body"
    );

    // A write after the recompression invalidates the feed like any other.
    let a = article("after-best", "vi", "kinh-te", "2026-11-29T08:00:00");
    assert_eq!(app.put("after-best", &a).await.status(), 201);
    for held in [&fast_tag, &best_tag] {
        let r = app
            .client
            .get(app.url("/vi/rss.xml"))
            .header("accept-encoding", "gzip")
            .header("if-none-match", held)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "holding {held} after a write");
        let body = gunzip(&r.bytes().await.unwrap());
        assert!(String::from_utf8_lossy(&body).contains("after-best"));
    }
}

#[tokio::test]
async fn two_instances_on_one_store_end_with_identical_bytes_and_etags() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("shared.db").display());
    let one = spawn(Options {
        database_url: Some(db.clone()),
        public_url: Some("https://feeds.baolongan.example/".into()),
        ..Options::default()
    })
    .await;
    let two = spawn(Options {
        database_url: Some(db),
        public_url: Some("https://feeds.baolongan.example/".into()),
        articles_dir: None,
        ..Options::default()
    })
    .await;
    for (path, ae) in [("/vi/rss.xml", "gzip"), ("/en/atom.xml", "br")] {
        let (a_fast, a_best) = until_recompressed(&one, path, ae).await;
        let (b_fast, b_best) = until_recompressed(&two, path, ae).await;
        assert_eq!(
            a_fast, b_fast,
            "{path} {ae}: the fast bodies and ETags agree"
        );
        assert_eq!(
            a_best, b_best,
            "{path} {ae}: the best bodies and ETags agree"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The lists of feeds, the HTML previews and the render slots: everything a request without a
// token can make bantin render is cached within the budget and bounded.

/// A counter or gauge of `/metrics` (0 when the series does not exist yet).
pub async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.get_text("/metrics").await;
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Renders of one kind so far (`feed`, `preview`, `opml`, `partner_opml`, `index`).
pub async fn renders(app: &TestApp, kind: &str) -> f64 {
    metric(app, &format!("bantin_renders_total{{kind=\"{kind}\"}}")).await
}

/// Stores `articles` through the batch API.
pub async fn post_batch(app: &TestApp, articles: &[serde_json::Value]) {
    let body: String = articles.iter().map(|a| format!("{a}\n")).collect();
    let r = app
        .client
        .post(app.url("/api/v1/articles"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["summary"]["created"].as_u64(),
        Some(articles.len() as u64),
        "{v}"
    );
}

fn xml_urls(opml: &str) -> Vec<String> {
    strict_xml(opml, "opml")
        .descendants()
        .filter_map(|n| n.attribute("xmlUrl").map(str::to_string))
        .collect()
}

fn bounded_lists(c: &mut bantin::config::Config) {
    c.opml.max_outlines = 300;
    c.opml.min_articles = 2;
}

#[tokio::test]
async fn the_lists_of_feeds_are_bounded_however_many_tags_and_bylines_exist() {
    let app = spawn(Options {
        articles_dir: None,
        tweak: Some(bounded_lists),
        ..Default::default()
    })
    .await;
    // 200 articles with 50 tags each: 45 used once, 5 shared by two articles, and one used by
    // all; 50 bylines of four articles each. Nearly 10,000 tag feeds exist.
    let articles: Vec<serde_json::Value> = (0..200)
        .map(|i| {
            let mut a = article(&format!("many-{i}"), "vi", "xa-hoi", "2026-11-20T08:00:00");
            let mut tags: Vec<String> = (0..45).map(|j| format!("t{i}-{j}")).collect();
            tags.extend((0..4).map(|j| format!("s{}-{j}", i / 2)));
            tags.push("chung".into());
            a["tags"] = serde_json::json!(tags);
            a["author"] = format!("Phóng viên {}", i % 50).into();
            a
        })
        .collect();
    post_batch(&app, &articles).await;

    let opml = app.get_text("/feeds.opml").await;
    let urls = xml_urls(&opml);
    assert_eq!(urls.len(), 300, "exactly [opml] max_outlines outlines");
    assert!(
        opml.len() <= 300 * 512,
        "{} bytes for 300 outlines",
        opml.len()
    );
    let listed = |path: &str| urls.contains(&format!("{}{path}", app.base));
    for configured in [
        "/vi/rss.xml",
        "/en/rss.xml",
        "/vi/xa-hoi/rss.xml",
        "/en/defence/rss.xml",
    ] {
        assert!(listed(configured), "{configured} is always listed");
    }
    assert!(listed("/vi/tag/chung/rss.xml"), "the most used tag");
    for n in 0..50 {
        assert!(
            listed(&format!("/vi/author/phong-vien-{n}/rss.xml")),
            "byline {n} (four articles) outranks the tags of two"
        );
    }
    assert!(
        !urls.iter().any(|u| u.contains("/tag/t")),
        "tags of one article are below [opml] min_articles"
    );
    assert!(urls.iter().any(|u| u.contains("/vi/tag/s0-0/")));
    // The feeds left out still exist.
    assert_eq!(app.get("/vi/tag/t7-3/rss.xml").await.status(), 200);

    // The HTML index names the same bounded list.
    let index = app.get_text("/").await;
    assert_eq!(index.matches("<li>").count(), 300);
    assert!(index.contains("href=\"/vi/tag/chung/\""));
    assert!(!index.contains("href=\"/vi/tag/t7-3/\""));
}

#[tokio::test]
async fn the_opml_is_cached_in_the_budget_and_invalidated_by_writes() {
    let app = spawn_default().await;
    let cache = &app.server.app.cache();
    let opml_key = bantin::cache::Key::List(bantin::cache::List::Opml);
    cache.settle().await;
    let before = cache.weighted_size();
    let first = app.get("/feeds.opml").await;
    let etag = first.headers()["etag"].clone();
    let body = first.bytes().await.unwrap();
    cache.settle().await;
    assert!(cache.holds(&opml_key).await);
    assert!(
        cache.weighted_size() >= before + body.len() as u64,
        "the cache's weighed size counts the OPML: {} -> {} for {} bytes",
        before,
        cache.weighted_size(),
        body.len()
    );
    assert!(
        metric(&app, "bantin_cache_bytes").await >= body.len() as f64,
        "and /metrics says so"
    );
    assert_eq!(renders(&app, "opml").await, 1.0);
    let again = app
        .client
        .get(app.url("/feeds.opml"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304, "validated like a feed");
    assert_eq!(app.get_text("/feeds.opml").await.as_bytes(), &body[..]);
    assert_eq!(renders(&app, "opml").await, 1.0, "hits render nothing");

    // Two articles of a new tag: the next request renders the list again, with the tag.
    for i in 0..2 {
        let id = format!("opml-new-{i}");
        let mut a = article(&id, "vi", "kinh-te", "2026-11-21T08:00:00");
        a["tags"] = serde_json::json!(["Đê bao mới"]);
        assert_eq!(app.put(&id, &a).await.status(), 201);
    }
    assert!(
        !cache.contains_current(&opml_key).await,
        "a write invalidates it"
    );
    let after = app.get_text("/feeds.opml").await;
    assert!(after.contains("/vi/tag/de-bao-moi/rss.xml"));
    assert_eq!(renders(&app, "opml").await, 2.0);
}

fn tiny_budget(c: &mut bantin::config::Config) {
    c.cache.max_bytes = 1 << 20;
    c.opml.max_outlines = 5_000;
    c.opml.min_articles = 1;
}

#[tokio::test]
async fn an_opml_over_the_budget_is_not_held() {
    let app = spawn(Options {
        articles_dir: None,
        tweak: Some(tiny_budget),
        ..Default::default()
    })
    .await;
    // 3,000 tags with long names: an OPML of over a megabyte, more than the 768 KiB the map of
    // a 1 MiB budget holds.
    let articles: Vec<serde_json::Value> = (0..60)
        .map(|i| {
            let mut a = article(&format!("long-{i}"), "vi", "xa-hoi", "2026-11-20T08:00:00");
            let tags: Vec<String> = (0..50)
                .map(|j| format!("{i:02}-{j:02} {}", "nông nghiệp công nghệ cao ".repeat(3)))
                .collect();
            a["tags"] = serde_json::json!(tags);
            a
        })
        .collect();
    post_batch(&app, &articles).await;
    let cache = &app.server.app.cache();
    let opml = app.get_text("/feeds.opml").await;
    assert!(opml.len() > 1 << 20, "{} bytes", opml.len());
    assert!(xml_urls(&opml).len() > 3000);
    cache.settle().await;
    assert!(
        !cache
            .holds(bantin::cache::Key::List(bantin::cache::List::Opml))
            .await,
        "an entry over the budget is not kept"
    );
    assert!(cache.weighted_size() <= (1 << 20) / 4 * 3);
    assert!(
        cache.live_bytes() <= 1 << 20,
        "{} live bytes once answered",
        cache.live_bytes()
    );
    // So it is rendered again, one request at a time, never held beyond the budget.
    app.get_text("/feeds.opml").await;
    assert_eq!(renders(&app, "opml").await, 2.0);
    assert!(cache.live_bytes() <= 1 << 20);
}

#[tokio::test]
async fn previews_and_the_index_are_cached_and_invalidated_with_their_feed() {
    let app = spawn_default().await;
    let first = app.get("/vi/kinh-te/").await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "text/html; charset=utf-8");
    let etag = first.headers()["etag"].clone();
    let html = first.text().await.unwrap();
    assert!(html.contains("rel=\"alternate\" type=\"application/atom+xml\""));
    assert_eq!(renders(&app, "preview").await, 1.0);
    assert_eq!(app.get_text("/vi/kinh-te/").await, html);
    let r = app
        .client
        .get(app.url("/vi/kinh-te/"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let gz = app
        .client
        .get(app.url("/vi/kinh-te/"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gunzip(&gz.bytes().await.unwrap()), html.as_bytes());
    assert_eq!(
        renders(&app, "preview").await,
        1.0,
        "a second request is a hit"
    );
    app.get_text("/").await;
    app.get_text("/").await;
    assert_eq!(renders(&app, "index").await, 1.0);

    // A write elsewhere leaves the preview cached; one in its feed renders it again.
    let en = article("preview-en", "en", "quoc-phong", "2026-11-22T08:00:00");
    assert_eq!(app.put("preview-en", &en).await.status(), 201);
    app.get_text("/vi/kinh-te/").await;
    assert_eq!(renders(&app, "preview").await, 1.0);
    let mut vi = article("preview-vi", "vi", "kinh-te", "2026-11-29T08:00:00");
    vi["title"] = "Giá tiêu tăng mạnh".into();
    assert_eq!(app.put("preview-vi", &vi).await.status(), 201);
    assert!(
        app.get_text("/vi/kinh-te/")
            .await
            .contains("Giá tiêu tăng mạnh")
    );
    assert_eq!(renders(&app, "preview").await, 2.0);
    // Any write refreshes the index (it lists tags and bylines).
    app.get_text("/").await;
    assert_eq!(renders(&app, "index").await, 2.0);
}

#[tokio::test]
async fn preview_pages_past_the_end_are_404_without_reading_the_store() {
    let app = spawn(Options {
        items_per_feed: Some(5),
        ..Options::default()
    })
    .await;
    let queries = || app.server.app.metrics().page_queries.get();
    assert_eq!(app.get("/vi/?page=2").await.status(), 200);
    let mut last: u32 = 2;
    while app.get(&format!("/vi/?page={}", last + 1)).await.status() == 200 {
        last += 1;
    }
    let before = queries();
    for page in (last + 1..last + 300).chain([99_999, 100_000]) {
        let r = app.get(&format!("/vi/?page={page}")).await;
        assert_eq!(r.status(), 404, "page {page}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("the preview starts at /vi/")
        );
    }
    for page in [50, 1_000, 2_000] {
        let r = app.get(&format!("/vi/tag/gia-lua/?page={page}")).await;
        assert_eq!(r.status(), 404);
    }
    assert!(
        queries() - before <= 1,
        "pages past the end read the store {} times",
        queries() - before
    );
}

#[tokio::test]
async fn page_one_is_served_while_deep_pages_hold_their_slots() {
    let app = spawn(Options {
        items_per_feed: Some(2),
        ..Options::default()
    })
    .await;
    let slots = &app.server.app.slots();
    let policy = slots.policy();
    // Deep renders of other clients in flight: every slot the deep lane may take.
    let mut held = Vec::new();
    for n in 0..policy.deep_max {
        let client = bantin::slots::ClientKey::of(Some([10, 0, 0, n as u8 + 1].into()));
        held.push(
            slots
                .acquire(bantin::slots::Lane::Deep(client))
                .await
                .unwrap(),
        );
    }
    assert_eq!(slots.stats().deep_running, policy.deep_max);

    // This client's deep pages (feeds on the fast path, a preview on the axum path) wait...
    let deep = [
        "/vi/rss.xml?page=2",
        "/vi/atom.xml?page=3",
        "/vi/kinh-te/feed.json?page=2",
        "/vi/?page=2",
    ];
    let mut waiting = Vec::new();
    for path in deep {
        let (c, url) = (app.client.clone(), app.url(path));
        waiting.push(tokio::spawn(async move {
            c.get(url).send().await.unwrap().status()
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while slots.stats().deep_waiting < deep.len() {
        assert!(std::time::Instant::now() < deadline, "{:?}", slots.stats());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...and one more of this client's is refused at once: it has four in flight.
    let refused = app.get("/en/rss.xml?page=2").await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "5");
    assert_eq!(metric(&app, "bantin_renders_refused_total").await, 1.0);

    // Page-1 misses, a preview, the OPML: served at once, on the slot the deep lane never takes.
    let started = std::time::Instant::now();
    for path in [
        "/en/defence/atom.xml",
        "/vi/the-thao/rss.xml",
        "/en/",
        "/feeds.opml",
    ] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        slots.stats().deep_waiting,
        deep.len(),
        "the deep pages still wait"
    );
    assert!(waiting.iter().all(|t| !t.is_finished()));
    assert_eq!(
        metric(&app, "bantin_renders_waiting{lane=\"deep\"}").await,
        deep.len() as f64
    );

    // Once the other clients' renders end, this client's pages are rendered, one at a time.
    drop(held);
    for t in waiting {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(
        slots.stats(),
        bantin::slots::Stats {
            refused: 1,
            ..Default::default()
        }
    );
    assert_eq!(slots.clients(), 0, "no client is remembered once served");
}
