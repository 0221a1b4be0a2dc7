//! Partner feeds: with `public_content = "summary"` the public gets title, summary, image and
//! link; a partner's key (`?key=` or Bearer) unlocks the full text of the same URLs; a wrong key
//! gets 403 and nothing of the full text. Both variants pass the strict XML and feed-rs checks.

use std::io::{Read, Write};

use bantin::config::{Config, Partner, PublicContent};

use crate::helpers::*;

pub const KEY: &str = "baomoi-key-0123456789abcdef";
const MARKER: &str = "TOAN-VAN-CHI-DANH-CHO-DOI-TAC";
const SUMMARY: &str = "Tóm tắt công khai của bài viết.";

pub fn partners(c: &mut Config) {
    c.partners = vec![Partner {
        id: "baomoi".into(),
        name: "Báo Mới".into(),
        key_sha256: bantin::config::parse_sha256_hex(&bantin::access::key_sha256_hex(KEY)).unwrap(),
    }];
}

fn summary_only(c: &mut Config) {
    partners(c);
    c.access.public_content = PublicContent::Summary;
}

async fn spawn_with(tweak: fn(&mut Config)) -> TestApp {
    let app = spawn(Options {
        tweak: Some(tweak),
        ..Default::default()
    })
    .await;
    let mut a = article("doi-tac-1", "vi", "kinh-te", "2026-01-05T08:00:00");
    a["content_html"] = format!("<p>{MARKER}: toàn văn bài viết.</p>").into();
    a["summary"] = SUMMARY.into();
    a["image"] =
        serde_json::json!({"url": "https://baolongan.example/uploads/doi-tac.jpg", "length": 1234});
    assert_eq!(app.put("doi-tac-1", &a).await.status(), 201);
    app
}

const FORMATS: [&str; 3] = ["rss.xml", "atom.xml", "feed.json"];

async fn fetch(app: &TestApp, path: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    if let Some(k) = bearer {
        req = req.bearer_auth(k);
    }
    req.send().await.unwrap()
}

/// Checks one document strictly and says whether it carries the full text.
fn check(format: &str, body: &str, what: &str) -> bool {
    let parsed = feed_rs(body.as_bytes(), what);
    let entry = parsed
        .entries
        .iter()
        .find(|e| e.id.ends_with("doi-tac-1"))
        .unwrap_or_else(|| panic!("{what}: the article is in the feed"));
    assert!(
        entry.title.as_ref().unwrap().content.contains("doi-tac-1"),
        "{what}: title"
    );
    assert_eq!(
        entry.links[0].href, "https://baolongan.example/vi/kinh-te/doi-tac-1",
        "{what}: link"
    );
    let full = body.contains(MARKER);
    match format {
        "rss.xml" => {
            let doc = strict_xml(body, what);
            let item = doc
                .descendants()
                .find(|n| {
                    n.has_tag_name("item")
                        && n.children().any(|c| {
                            c.has_tag_name("guid") && c.text().unwrap_or("").ends_with("doi-tac-1")
                        })
                })
                .unwrap();
            let has = |ns: Option<&str>, name: &str| {
                item.children().any(|c| {
                    c.tag_name().name() == name && (ns.is_none() || c.tag_name().namespace() == ns)
                })
            };
            assert!(has(None, "description"), "{what}: the summary");
            assert!(has(None, "enclosure"), "{what}: the image");
            assert_eq!(
                has(Some("http://purl.org/rss/1.0/modules/content/"), "encoded"),
                full,
                "{what}: content:encoded exactly in the full variant"
            );
        }
        "atom.xml" => {
            let doc = strict_xml(body, what);
            let entry = doc
                .descendants()
                .find(|n| {
                    n.has_tag_name("entry")
                        && n.children().any(|c| {
                            c.has_tag_name("id") && c.text().unwrap_or("").ends_with("doi-tac-1")
                        })
                })
                .unwrap();
            assert!(entry.children().any(|c| c.has_tag_name("summary")));
            assert!(
                entry
                    .children()
                    .any(|c| c.has_tag_name("link") && c.attribute("rel") == Some("enclosure"))
            );
            assert_eq!(
                entry.children().any(|c| c.has_tag_name("content")),
                full,
                "{what}"
            );
        }
        _ => {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            let item = v["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["id"].as_str().unwrap().ends_with("doi-tac-1"))
                .unwrap();
            assert_eq!(item["summary"], SUMMARY);
            assert_eq!(
                item["image"],
                "https://baolongan.example/uploads/doi-tac.jpg"
            );
            assert_eq!(item.get("content_html").is_some(), full, "{what}");
            if !full {
                assert_eq!(
                    item["content_text"], SUMMARY,
                    "{what}: JSON Feed needs a content"
                );
            }
        }
    }
    full
}

#[tokio::test]
async fn public_summary_and_partner_full_text_in_every_format() {
    let app = spawn_with(summary_only).await;
    for f in FORMATS {
        let path = format!("/vi/kinh-te/{f}");
        let public = fetch(&app, &path, None).await;
        assert_eq!(public.status(), 200);
        let cc = public.headers()["cache-control"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(cc.starts_with("public"), "{cc}");
        let public_etag = public.headers()["etag"].clone();
        let body = public.text().await.unwrap();
        assert!(
            !check(f, &body, &format!("public {path}")),
            "public {path} has no full text"
        );

        for (how, resp) in [
            (
                "?key=",
                fetch(&app, &format!("{path}?key={KEY}"), None).await,
            ),
            ("Bearer", fetch(&app, &path, Some(KEY)).await),
        ] {
            assert_eq!(resp.status(), 200, "{how} {path}");
            let cc = resp.headers()["cache-control"].to_str().unwrap();
            assert!(
                cc.starts_with("private"),
                "{how}: partner answers are private: {cc}"
            );
            assert_ne!(
                resp.headers()["etag"],
                public_etag,
                "two variants, two ETags"
            );
            let body = resp.text().await.unwrap();
            assert!(
                check(f, &body, &format!("partner ({how}) {path}")),
                "{how} {path}"
            );
            // The self link is the feed's public URL: no key is ever written into a document.
            assert!(!body.contains(KEY), "{how} {path}: the key is not echoed");
            assert!(body.contains(&app.url(&path)), "{how} {path}: self link");
        }
    }
    // Every public feed is summary-only; none carries a body.
    for path in all_feed_paths(&app).await {
        let body = app.get_text(&path).await;
        assert!(!body.contains(MARKER), "{path}");
        assert!(
            !body.contains("content:encoded") && !body.contains("\"content_html\""),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_wrong_key_gets_403_and_nothing_of_the_full_text() {
    let app = spawn_with(summary_only).await;
    for f in FORMATS {
        let path = format!("/vi/kinh-te/{f}");
        // Warm both variants, so a refusal cannot be a cache miss either way.
        assert_eq!(
            fetch(&app, &format!("{path}?key={KEY}"), None)
                .await
                .status(),
            200
        );
        for resp in [
            fetch(&app, &format!("{path}?key=not-the-key"), None).await,
            fetch(&app, &format!("{path}?key="), None).await,
            fetch(&app, &path, Some("not-the-key")).await,
            fetch(&app, &path, Some(&KEY.to_uppercase())).await,
        ] {
            assert_eq!(resp.status(), 403, "{path}");
            assert!(
                resp.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            let body = resp.text().await.unwrap();
            assert_eq!(body.lines().count(), 1, "one plain-text line: {body:?}");
            assert!(!body.contains(MARKER) && !body.contains(SUMMARY) && !body.contains("<"));
        }
    }
    assert_eq!(app.get("/feeds.opml?key=wrong").await.status(), 403);
}

/// Sends `GET /healthz` then `GET path` (with `extra` header lines) on one connection: the first
/// request moves the connection to hyper, so the second is served by the axum path.
fn via_axum(app: &TestApp, path: &str, extra: &str) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(app.server.addr).unwrap();
    write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    let second = text[1..].find("HTTP/1.1 ").unwrap() + 1;
    let resp = &text[second..];
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[tokio::test]
async fn the_axum_path_decides_the_same() {
    let app = spawn_with(summary_only).await;
    let path = "/vi/kinh-te/rss.xml";
    let (status, head, body) = via_axum(&app, &format!("{path}?key={KEY}"), "");
    assert_eq!(status, 200);
    assert!(head.contains("cache-control: private"), "{head}");
    assert!(check("rss.xml", &body, "axum partner"));
    let (status, _, body) = via_axum(&app, path, &format!("Authorization: Bearer {KEY}\r\n"));
    assert_eq!(status, 200);
    assert!(body.contains(MARKER));
    let (status, head, body) = via_axum(&app, path, "");
    assert_eq!(status, 200);
    assert!(head.contains("cache-control: public"));
    assert!(!check("rss.xml", &body, "axum public"));
    let (status, _, body) = via_axum(&app, &format!("{path}?key=wrong"), "");
    assert_eq!(status, 403);
    assert!(!body.contains(MARKER) && !body.contains(SUMMARY));
}

#[tokio::test]
async fn with_full_public_content_one_copy_is_cached() {
    let app = spawn_with(partners).await;
    let path = "/vi/kinh-te/atom.xml";
    let public = fetch(&app, path, None).await;
    let renders = app.server.app.cache().renders();
    let partner = fetch(&app, &format!("{path}?key={KEY}"), None).await;
    assert_eq!(
        app.server.app.cache().renders(),
        renders,
        "the partner is served the public copy"
    );
    assert_eq!(public.headers()["etag"], partner.headers()["etag"]);
    assert!(
        partner.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    let (a, b) = (public.text().await.unwrap(), partner.text().await.unwrap());
    assert_eq!(a, b);
    assert!(check("atom.xml", &a, "full public"));
}

#[tokio::test]
async fn the_partner_opml_lists_keyed_urls() {
    let app = spawn_with(summary_only).await;
    let r = app.get(&format!("/feeds.opml?key={KEY}")).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );
    let opml = r.text().await.unwrap();
    let doc = strict_xml(&opml, "partner opml");
    let urls: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("xmlUrl"))
        .collect();
    assert!(urls.len() > 10);
    assert!(
        urls.iter().all(|u| u.ends_with(&format!("?key={KEY}"))),
        "{urls:?}"
    );
    let kinh_te = urls
        .iter()
        .find(|u| u.contains("/vi/kinh-te/rss.xml"))
        .unwrap();
    let body = app
        .client
        .get(*kinh_te)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(MARKER),
        "a URL of the partner OPML gives the full text"
    );
    // The public list carries no key.
    assert!(!app.get_text("/feeds.opml").await.contains("key="));
}

#[tokio::test]
async fn the_partner_opml_is_cached_per_partner_and_rendered_once_at_a_time() {
    use crate::cache::renders;
    let app = spawn_with(summary_only).await;
    let keyed = format!("/feeds.opml?key={KEY}");
    // Concurrent misses, by query and by Bearer token: one render for them all.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = app.client.clone();
        let req = if i % 2 == 0 {
            c.get(app.url(&keyed))
        } else {
            c.get(app.url("/feeds.opml")).bearer_auth(KEY)
        };
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        bodies.push(t.await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert!(bodies[0].contains(&format!("?key={KEY}")));
    assert_eq!(renders(&app, "partner_opml").await, 1.0);
    assert_eq!(app.get_text(&keyed).await, bodies[0]);
    assert_eq!(
        renders(&app, "partner_opml").await,
        1.0,
        "a hit renders nothing"
    );
    // The public list is its own entry, without the key.
    assert!(!app.get_text("/feeds.opml").await.contains("key="));
    assert_eq!(renders(&app, "opml").await, 1.0);
    // A write makes both stale; each is rendered once more.
    let a = article("doi-tac-2", "vi", "kinh-te", "2026-01-06T08:00:00");
    assert_eq!(app.put("doi-tac-2", &a).await.status(), 201);
    for _ in 0..3 {
        app.get_text(&keyed).await;
        app.get_text("/feeds.opml").await;
    }
    assert_eq!(renders(&app, "partner_opml").await, 2.0);
    assert_eq!(renders(&app, "opml").await, 2.0);
}
