//! The publishing API over real HTTP.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::*;

/// Records a status the server answered and checks the OpenAPI route table documents it, so the
/// document stays true to what the server does.
fn saw(method: &'static str, route: &'static str, status: u16) -> u16 {
    let documented = bantin::http::api::ROUTES
        .iter()
        .any(|(m, p, ss)| *m == method && *p == route && ss.contains(&status));
    assert!(
        documented,
        "{method} {route} answered {status}, which the OpenAPI document does not list"
    );
    status
}

const ONE: &str = "/api/v1/articles/{id}";
const MANY: &str = "/api/v1/articles";

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()["content-type"],
        "application/json",
        "errors are JSON"
    );
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["code"].is_string() && v["error"]["message"].is_string(),
        "{v}"
    );
    (status, v["error"].clone())
}

#[tokio::test]
async fn create_update_noop_stale_delete_and_read_your_writes() {
    let app = spawn_default().await;
    let mut a = article("api-1", "vi", "kinh-te", "2026-11-25T08:00:00");
    a["updated_at"] = "2026-11-25T08:00:00".into();
    let r = app.put("api-1", &a).await;
    assert_eq!(saw("put", ONE, r.status().as_u16()), 201);
    assert_eq!(r.headers()["location"], "/api/v1/articles/api-1");
    let stored: Value = r.json().await.unwrap();
    assert_eq!(
        stored["published_at"], "2026-11-25T08:00:00+07:00",
        "naive time read as site-local"
    );
    assert_eq!(
        stored["content_html"],
        "<p>Nội dung <a href=\"https://baolongan.example/vi/lien-quan\">liên quan</a></p>",
        "normalised: absolute URLs"
    );
    let feed = app.get_text("/vi/kinh-te/rss.xml").await;
    assert!(
        feed.contains(":api-1</guid>"),
        "visible in the very next GET"
    );
    let etag1 = app.get("/vi/rss.xml").await.headers()["etag"].clone();

    // No-op: same article again.
    let r = app.put("api-1", &a).await;
    assert_eq!(saw("put", ONE, r.status().as_u16()), 200);
    assert_eq!(
        app.get("/vi/rss.xml").await.headers()["etag"],
        etag1,
        "a no-op changes no ETag"
    );

    // Correction with a newer updated_at.
    let mut b = a.clone();
    b["title"] = "Đính chính: giá lúa".into();
    b["updated_at"] = "2026-11-25T09:00:00+07:00".into();
    let r = app.put("api-1", &b).await;
    assert_eq!(saw("put", ONE, r.status().as_u16()), 200);
    let feed = app.get("/vi/rss.xml").await;
    assert_ne!(
        feed.headers()["etag"],
        etag1,
        "the ETag changes with the body"
    );
    assert!(feed.text().await.unwrap().contains("Đính chính: giá lúa"));

    // A late retry of the first version is refused.
    let (status, err) = error_of(app.put("api-1", &a).await).await;
    assert_eq!(saw("put", ONE, status), 409);
    assert_eq!(err["code"], "stale_update");
    assert_eq!(err["field"], "updated_at");
    let got: Value = app
        .client
        .get(app.url("/api/v1/articles/api-1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["title"], "Đính chính: giá lúa", "the correction stands");
    saw("get", ONE, 200);

    // Moving it to another category drops it from the old one.
    let mut c = b.clone();
    c["category"] = "xa-hoi".into();
    c["updated_at"] = "2026-11-25T10:00:00+07:00".into();
    assert_eq!(app.put("api-1", &c).await.status(), 200);
    assert!(
        !app.get_text("/vi/kinh-te/rss.xml")
            .await
            .contains(":api-1</guid>")
    );
    assert!(
        app.get_text("/vi/xa-hoi/rss.xml")
            .await
            .contains(":api-1</guid>")
    );

    // Delete: gone from every feed at once; then 404.
    let r = app
        .client
        .delete(app.url("/api/v1/articles/api-1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(saw("delete", ONE, r.status().as_u16()), 204);
    for p in [
        "/vi/rss.xml",
        "/vi/xa-hoi/atom.xml",
        "/vi/tag/bai-thu/feed.json",
    ] {
        let r = app.get(p).await;
        if r.status() == 200 {
            assert!(!r.text().await.unwrap().contains("api-1"), "{p}");
        } else {
            assert_eq!(r.status(), 404, "{p}: the tag had only this article");
        }
    }
    let r = app
        .client
        .delete(app.url("/api/v1/articles/api-1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let (status, _) = error_of(r).await;
    assert_eq!(saw("delete", ONE, status), 404);
    let r = app
        .client
        .get(app.url("/api/v1/articles/api-1"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(saw("get", ONE, error_of(r).await.0), 404);

    // The URL names the article: a body without an id is that article.
    let mut no_id = article("ignored", "vi", "kinh-te", "2026-11-25T08:00:00");
    no_id.as_object_mut().unwrap().remove("id");
    let r = app.put("api-2", &no_id).await;
    assert_eq!(saw("put", ONE, r.status().as_u16()), 201);
    let stored: Value = r.json().await.unwrap();
    assert_eq!(stored["id"], "api-2");
}

#[tokio::test]
async fn authentication_401_403_and_open_feeds() {
    let app = spawn_default().await;
    let a = article("api-auth", "vi", "kinh-te", "2026-11-25T08:00:00");
    let url = app.url("/api/v1/articles/api-auth");
    let (s, e) = error_of(app.client.put(&url).json(&a).send().await.unwrap()).await;
    assert_eq!(saw("put", ONE, s), 401);
    assert_eq!(e["code"], "unauthorized");
    let (s, _) = error_of(
        app.client
            .put(&url)
            .bearer_auth("wrong-token-0123456789")
            .json(&a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(saw("put", ONE, s), 401);
    let (s, _) = error_of(app.client.get(&url).send().await.unwrap()).await;
    assert_eq!(saw("get", ONE, s), 401);
    let (s, _) = error_of(app.client.delete(&url).send().await.unwrap()).await;
    assert_eq!(saw("delete", ONE, s), 401);
    let (s, _) = error_of(
        app.client
            .post(app.url(MANY))
            .header("content-type", "application/x-ndjson")
            .body("")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(saw("post", MANY, s), 401);
    assert_eq!(
        app.server.app.store().get("api-auth").await.unwrap(),
        None,
        "nothing stored"
    );
    assert_eq!(
        app.get("/vi/rss.xml").await.status(),
        200,
        "feeds need no token"
    );

    // Without any configured token the write API is off, and says how to turn it on.
    let off = spawn(Options {
        tokens: vec![],
        ..Default::default()
    })
    .await;
    let url = off.url("/api/v1/articles/api-auth");
    let (s, e) = error_of(
        off.client
            .put(&url)
            .bearer_auth(TOKEN)
            .json(&a)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(saw("put", ONE, s), 403);
    assert!(e["message"].as_str().unwrap().contains("BANTIN_API_TOKEN"));
    let (s, _) = error_of(
        off.client
            .get(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(saw("get", ONE, s), 403);
    let (s, _) = error_of(
        off.client
            .delete(&url)
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(saw("delete", ONE, s), 403);
    let (s, _) = error_of(
        off.client
            .post(off.url(MANY))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(saw("post", MANY, s), 403);
}

#[tokio::test]
async fn a_token_file_holds_two_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    std::fs::write(
        &file,
        "# old one, retiring\nold-token-aaaaaaaaaaaaaaaa\nnew-token-bbbbbbbbbbbbbbbb\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let config = bantin::config::Config::load_with_env(&site_toml(), |k| match k {
        "BANTIN_LISTEN" => Some("127.0.0.1:0".into()),
        "BANTIN_DATABASE_URL" => Some(format!("sqlite://{}", dir.path().join("db").display())),
        "BANTIN_API_TOKEN_FILE" => Some(path.clone()),
        _ => None,
    })
    .unwrap();
    let mut config = config;
    config.articles_dir = None;
    let server = bantin::server::start(config).await.unwrap();
    let c = client();
    for (i, token) in ["old-token-aaaaaaaaaaaaaaaa", "new-token-bbbbbbbbbbbbbbbb"]
        .iter()
        .enumerate()
    {
        let id = format!("tok-{i}");
        let a = article(&id, "vi", "kinh-te", "2026-11-25T08:00:00");
        let r = c
            .put(format!("http://{}/api/v1/articles/{id}", server.addr))
            .bearer_auth(token)
            .json(&a)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "token {i} is accepted");
    }
    let r = c
        .put(format!("http://{}/api/v1/articles/tok-x", server.addr))
        .bearer_auth("# old one, retiring")
        .json(&article("tok-x", "vi", "kinh-te", "2026-11-25T08:00:00"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "comments are not tokens");
}

#[tokio::test]
async fn rejected_writes_are_json_errors_naming_the_field_and_store_nothing() {
    let app = spawn(Options {
        max_article_bytes: Some(64 * 1024),
        ..Default::default()
    })
    .await;
    let url = app.url("/api/v1/articles/bad-1");
    let put_raw = |body: String, ct: &'static str| {
        app.client
            .put(&url)
            .bearer_auth(TOKEN)
            .header("content-type", ct)
            .body(body)
            .send()
    };

    let (s, e) = error_of(
        put_raw("{\"id\": \"bad-1\", ".into(), "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(saw("put", ONE, s), 400);
    assert_eq!(e["code"], "malformed_json");

    let (s, e) = error_of(
        put_raw(
            article("bad-1", "vi", "kinh-te", "2026-11-25T08:00:00").to_string(),
            "text/plain",
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(saw("put", ONE, s), 415);
    assert_eq!(e["code"], "unsupported_media_type");

    let mut big = article("bad-1", "vi", "kinh-te", "2026-11-25T08:00:00");
    big["content_html"] = "<p>x</p>".repeat(20_000).into();
    let (s, e) = error_of(put_raw(big.to_string(), "application/json").await.unwrap()).await;
    assert_eq!(saw("put", ONE, s), 413);
    assert_eq!(e["code"], "body_too_large");

    let cases: Vec<(&str, Value)> = vec![
        ("lang", json!("fr")),
        ("category", json!("sport")),
        ("title", json!("   ")),
        ("url", json!("javascript:alert(1)")),
        ("published_at", json!("25/11/2026 08:00")),
        ("tags", json!("not a list")),
        ("status", json!("archived")),
    ];
    for (field, value) in cases {
        let mut a = article("bad-1", "vi", "kinh-te", "2026-11-25T08:00:00");
        a[field] = value;
        let (s, e) = error_of(app.put("bad-1", &a).await).await;
        assert_eq!(saw("put", ONE, s), 422, "{field}");
        assert_eq!(e["field"], field, "{e}");
    }
    let mut a = article("bad-1", "vi", "kinh-te", "2026-11-25T08:00:00");
    a["image"] = json!({"url": "/a.jpg", "length": -5});
    let (_, e) = error_of(app.put("bad-1", &a).await).await;
    assert_eq!(e["field"], "image.length");
    let a = article("other-id", "vi", "kinh-te", "2026-11-25T08:00:00");
    let (s, e) = error_of(app.put("bad-1", &a).await).await;
    assert_eq!(
        (s, e["field"].as_str()),
        (422, Some("id")),
        "the body's id must match the URL"
    );

    assert_eq!(
        app.server.app.store().get("bad-1").await.unwrap(),
        None,
        "nothing was stored"
    );
    assert!(!app.get_text("/vi/kinh-te/rss.xml").await.contains("bad-1"));
}

#[tokio::test]
async fn ndjson_batch_stores_good_lines_and_reports_bad_ones() {
    let app = spawn(Options {
        max_batch_bytes: Some(256 * 1024),
        ..Default::default()
    })
    .await;
    let good1 = article("batch-1", "vi", "kinh-te", "2026-11-25T08:00:00");
    let good2 = article("batch-2", "en", "kinh-te", "2026-11-25T09:00:00+07:00");
    let mut invalid = article("batch-3", "vi", "kinh-te", "2026-11-25T08:00:00");
    invalid["lang"] = "fr".into();
    let body = format!("{good1}\n{{not json\n\n{invalid}\n{good2}\n{good1}");
    let r = app
        .client
        .post(app.url(MANY))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(saw("post", MANY, r.status().as_u16()), 200);
    let v: Value = r.json().await.unwrap();
    let results = v["results"].as_array().unwrap();
    let by_line: Vec<(u64, &str)> = results
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        by_line,
        [
            (1, "created"),
            (2, "invalid"),
            (4, "invalid"),
            (5, "created"),
            (6, "unchanged")
        ]
    );
    assert_eq!(results[1]["error"]["code"], "malformed_json");
    assert_eq!(results[2]["error"]["field"], "lang");
    assert_eq!(results[2]["id"], "batch-3");
    assert_eq!(v["summary"]["created"], 2);
    assert!(
        app.get_text("/en/economy/rss.xml")
            .await
            .contains(":batch-2</guid>"),
        "batched writes invalidate too"
    );
    assert_eq!(app.server.app.store().get("batch-3").await.unwrap(), None);

    let r = app
        .client
        .post(app.url(MANY))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(saw("post", MANY, error_of(r).await.0), 415);
    let huge = format!("{good1}\n").repeat(1000);
    let r = app
        .client
        .post(app.url(MANY))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(saw("post", MANY, r.status().as_u16()), 413);
}

#[tokio::test]
async fn a_large_batch_streams_in_transactions() {
    let app = spawn(Options {
        articles_dir: None,
        ..Default::default()
    })
    .await;
    let n = 3000;
    let mut body = String::new();
    for i in 0..n {
        let mut a = article(
            &format!("bulk-{i:05}"),
            if i % 2 == 0 { "vi" } else { "en" },
            "xa-hoi",
            "2026-11-20T08:00:00",
        );
        a["content_html"] = format!("<p>{}</p>", "Tin tức ".repeat(200)).into();
        body.push_str(&a.to_string());
        body.push('\n');
    }
    let r = app
        .client
        .post(app.url(MANY))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["summary"]["created"], n);
    assert_eq!(app.server.app.store().count().await.unwrap(), n as u64);
}

#[tokio::test]
async fn openapi_documents_every_route_and_status() {
    let app = spawn_default().await;
    let r = app.get("/api/v1/openapi.json").await;
    assert_eq!(saw("get", "/api/v1/openapi.json", r.status().as_u16()), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<(String, String, u16)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .iter()
                .filter(|(m, _)| *m != "parameters")
                .flat_map(move |(method, op)| {
                    op["responses"]
                        .as_object()
                        .unwrap()
                        .keys()
                        .map(move |s| (method.clone(), path.clone(), s.parse::<u16>().unwrap()))
                })
        })
        .collect();
    let table: BTreeSet<(String, String, u16)> = bantin::http::api::ROUTES
        .iter()
        .flat_map(|(m, p, ss)| ss.iter().map(move |s| (m.to_string(), p.to_string(), *s)))
        .collect();
    assert_eq!(
        documented, table,
        "the OpenAPI document and the route table agree"
    );
}

#[tokio::test]
async fn conformance_of_times_ids_auth_schema_and_404s() {
    let app = spawn_default().await;
    // A leap second that did not happen, and years the feeds cannot write, are 422 naming the
    // field (year 0001 was once rendered as 0001-01-01T07:06:30+07:07, another instant).
    for (field, when) in [
        ("published_at", "2026-06-30T23:59:60Z"),
        ("published_at", "0001-01-01T00:00:00Z"),
        ("published_at", "0999-06-01T08:00:00"),
        ("updated_at", "2026-06-30T23:59:60+07:00"),
    ] {
        let mut a = article("conf-1", "vi", "kinh-te", "2026-06-30T08:00:00");
        a[field] = when.into();
        let (s, e) = error_of(app.put("conf-1", &a).await).await;
        assert_eq!((s, e["field"].as_str()), (422, Some(field)), "{when}: {e}");
    }
    assert_eq!(app.server.app.store().get("conf-1").await.unwrap(), None);

    // `.` and `..` are not ids (raw requests: clients would normalise the dot segments away).
    for id in [".", ".."] {
        let body = article(id, "vi", "kinh-te", "2026-06-30T08:00:00").to_string();
        let raw = format!(
            "PUT /api/v1/articles/{id} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let addr = app.server.addr;
        let text = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(raw.as_bytes()).unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
        .await
        .unwrap();
        assert!(text.starts_with("HTTP/1.1 422 "), "{id}: {text}");
        assert!(text.contains("\"field\":\"id\""), "{text}");
    }
    let line = article(".", "vi", "kinh-te", "2026-06-30T08:00:00").to_string();
    let r = app
        .client
        .post(app.url(MANY))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(line)
        .send()
        .await
        .unwrap();
    assert!(
        r.text().await.unwrap().contains("invalid"),
        "a batch line with id `.` is invalid"
    );

    // 401 says which scheme to use; the scheme itself is matched without regard to case.
    let r = app
        .client
        .get(app.url("/api/v1/articles/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let r = app
            .client
            .get(app.url("/api/v1/articles/la-2026-0905"))
            .header("authorization", format!("{scheme} {TOKEN}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{scheme}");
    }

    // The OpenAPI schema forbids the empty strings the server rejects.
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let props = &doc["components"]["schemas"]["ArticleInput"]["properties"];
    for field in ["lang", "category", "title", "url", "published_at"] {
        let mut a = article("conf-2", "vi", "kinh-te", "2026-06-30T08:00:00");
        a[field] = "".into();
        let (s, _) = error_of(app.put("conf-2", &a).await).await;
        assert!(s == 422 || s == 400, "{field}: {s}");
        assert!(
            props[field]["minLength"].as_u64().unwrap_or(0) >= 1,
            "the schema lets `{field}: \"\"` through: {}",
            props[field]
        );
    }

    // 404 texts echo the path: browsers must not sniff them into HTML, on either path.
    for path in [
        "/fr/<script>alert(1)</script>/rss.xml",
        "/vi/tag/khong-co/rss.xml",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
    }
}

/// POSTs a batch over a raw connection in chunked transfer encoding (no declared length), each
/// `parts` element one chunk, and reads the response until the server closes the connection.
/// With `ask_close`, the request asks for the connection to end after the answer. Returns the
/// status line, the head and the de-chunked body.
async fn chunked_batch(
    app: &TestApp,
    parts: Vec<String>,
    ask_close: bool,
) -> (String, String, Vec<u8>) {
    let addr = app.server.addr;
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(15)))
            .unwrap();
        let mut req = format!(
            "POST /api/v1/articles HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n{}\r\n",
            if ask_close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        for p in &parts {
            req.extend_from_slice(format!("{:x}\r\n{p}\r\n", p.len()).as_bytes());
        }
        req.extend_from_slice(b"0\r\n\r\n");
        s.write_all(&req).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .expect("the server ends the connection after the answer");
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut rest = &raw[split + 4..];
        let mut body = Vec::new();
        assert!(
            head.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{head}"
        );
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let len =
                usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16)
                    .unwrap();
            rest = &rest[eol + 2..];
            if len == 0 {
                break;
            }
            body.extend_from_slice(&rest[..len]);
            rest = &rest[len + 2..];
        }
        (head.lines().next().unwrap().to_string(), head, body)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_long_line_inside_one_chunk_is_refused() {
    let app = spawn(Options {
        articles_dir: None,
        max_article_bytes: Some(1024),
        ..Default::default()
    })
    .await;
    let good1 = article("line-1", "vi", "kinh-te", "2026-11-25T08:00:00");
    let mut long = article("line-2", "vi", "kinh-te", "2026-11-25T08:00:00");
    long["content_html"] = format!("<p>{}</p>", "dài ".repeat(500)).into();
    let good3 = article("line-3", "en", "kinh-te", "2026-11-25T08:00:00");
    let body = format!("{good1}\n{long}\n{good3}\n");
    assert!(long.to_string().len() > 1024 && good1.to_string().len() < 1024);
    // One chunk carries the whole body, the long line whole inside it: the case the limit once
    // skipped (it only looked at a line still open at the end of a chunk).
    let (status, _, out) = chunked_batch(&app, vec![body], true).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let v: Value = serde_json::from_slice(&out).unwrap();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{v}");
    assert_eq!(results[1]["line"], 2);
    assert_eq!(results[1]["status"], "invalid");
    assert_eq!(results[1]["error"]["code"], "body_too_large");
    assert_eq!(results[1]["error"]["field"], "(line)");
    assert_eq!(v["summary"]["created"], 2, "{v}");
    assert_eq!(v["summary"]["invalid"], 1, "{v}");
    assert_eq!(app.server.app.store().get("line-2").await.unwrap(), None);
    assert!(
        app.server
            .app
            .store()
            .get("line-3")
            .await
            .unwrap()
            .is_some()
    );

    // And through an ordinary client (a declared length), the same.
    let r = app
        .client
        .post(app.url(MANY))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(format!("{long}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(saw("post", MANY, r.status().as_u16()), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["error"]["field"], "(line)", "{v}");
}

#[tokio::test]
async fn a_chunked_batch_over_the_limit_ends_its_document_with_an_error() {
    let limit = 4096;
    let app = spawn(Options {
        articles_dir: None,
        max_batch_bytes: Some(limit),
        ..Default::default()
    })
    .await;
    let lines: Vec<String> = (0..20)
        .map(|i| {
            article(
                &format!("cap-{i:02}"),
                "vi",
                "kinh-te",
                "2026-11-25T08:00:00",
            )
            .to_string()
                + "\n"
        })
        .collect();
    // Lines that end within the limit are stored; the one it cuts and all after are not.
    let mut end = 0;
    let within = lines
        .iter()
        .take_while(|l| {
            end += l.len();
            end <= limit
        })
        .count();
    assert!(within > 0 && within < lines.len());
    let parts: Vec<String> = lines.chunks(3).map(|c| c.concat()).collect();
    let (status, head, out) = chunked_batch(&app, parts, false).await;
    // The status went out before the body was known to be too large.
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(
        !head.to_ascii_lowercase().contains("content-length"),
        "{head}"
    );
    let v: Value = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    assert_eq!(v["error"]["code"], "body_too_large", "{v}");
    assert_eq!(v["summary"]["created"], within, "{v}");
    assert_eq!(v["results"].as_array().unwrap().len(), within);
    assert_eq!(app.server.app.store().count().await.unwrap(), within as u64);
}

/// The limit the OpenAPI document states at `pointer` (a `maxLength` or `maxItems`).
fn documented(doc: &Value, pointer: &str) -> usize {
    doc.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("the OpenAPI document states no limit at {pointer}")) as usize
}

#[tokio::test]
async fn every_bounded_field_is_422_past_its_documented_limit() {
    let app = spawn_default().await;
    let doc: Value = app.get("/api/v1/openapi.json").await.json().await.unwrap();
    let input = "/components/schemas/ArticleInput/properties";
    let image = "/components/schemas/Image/properties";
    type Set = fn(&mut Value, usize);
    fn url(n: usize) -> String {
        let base = "https://baolongan.example/";
        format!("{base}{}", "u".repeat(n - base.len()))
    }
    fn img(a: &mut Value) -> &mut Value {
        if a.get("image").is_none() {
            a["image"] = json!({"url": "https://baolongan.example/a.jpg"});
        }
        &mut a["image"]
    }
    // Field, where the document states its limit, how to make a value of n, whether a value at
    // the limit is otherwise valid (times of 64 characters are not).
    let cases: &[(&str, String, Set, bool)] = &[
        (
            "title",
            format!("{input}/title/maxLength"),
            |a, n| a["title"] = "ắ".repeat(n).into(),
            true,
        ),
        (
            "summary",
            format!("{input}/summary/maxLength"),
            |a, n| a["summary"] = "ắ".repeat(n).into(),
            true,
        ),
        (
            "author",
            format!("{input}/author/maxLength"),
            |a, n| a["author"] = "Đ".repeat(n).into(),
            true,
        ),
        (
            "content_html",
            format!("{input}/content_html/maxLength"),
            |a, n| a["content_html"] = "x".repeat(n).into(),
            true,
        ),
        (
            "url",
            format!("{input}/url/maxLength"),
            |a, n| a["url"] = url(n).into(),
            true,
        ),
        (
            "tags",
            format!("{input}/tags/maxItems"),
            |a, n| a["tags"] = (0..n).map(|k| format!("thẻ {k}")).collect(),
            true,
        ),
        (
            "tags[0]",
            format!("{input}/tags/items/maxLength"),
            |a, n| a["tags"] = json!(["ắ".repeat(n)]),
            true,
        ),
        (
            "image.caption",
            format!("{image}/caption/maxLength"),
            |a, n| img(a)["caption"] = "ả".repeat(n).into(),
            true,
        ),
        (
            "image.url",
            format!("{image}/url/maxLength"),
            |a, n| img(a)["url"] = url(n).into(),
            true,
        ),
        (
            "image.mime",
            format!("{image}/mime/maxLength"),
            |a, n| img(a)["mime"] = format!("image/{}", "x".repeat(n - 6)).into(),
            true,
        ),
        (
            "published_at",
            format!("{input}/published_at/maxLength"),
            |a, n| a["published_at"] = format!("2026-11-25T08:00:00.{}", "0".repeat(n - 20)).into(),
            false,
        ),
        (
            "updated_at",
            format!("{input}/updated_at/maxLength"),
            |a, n| a["updated_at"] = format!("2026-11-25T08:00:00.{}", "0".repeat(n - 20)).into(),
            false,
        ),
    ];
    for (k, (field, pointer, set, at_ok)) in cases.iter().enumerate() {
        let max = documented(&doc, pointer);
        if *at_ok {
            let id = format!("bound-{k}-at");
            let mut a = article(&id, "vi", "kinh-te", "2026-11-25T08:00:00");
            set(&mut a, max);
            let r = app.put(&id, &a).await;
            assert_eq!(
                saw("put", ONE, r.status().as_u16()),
                201,
                "{field} of {max} is allowed"
            );
        }
        let id = format!("bound-{k}-over");
        let mut a = article(&id, "vi", "kinh-te", "2026-11-25T08:00:00");
        set(&mut a, max + 1);
        let (s, e) = error_of(app.put(&id, &a).await).await;
        assert_eq!(
            (saw("put", ONE, s), e["field"].as_str()),
            (422, Some(*field)),
            "{field}: {e}"
        );
        assert!(
            e["message"].as_str().unwrap().len() < 200,
            "{field}: the message does not echo the value"
        );
        assert_eq!(
            app.server.app.store().get(&id).await.unwrap(),
            None,
            "{field}: nothing stored"
        );
    }

    // A batch goes through the same validation, line by line.
    let good = article("bound-batch-1", "vi", "kinh-te", "2026-11-25T08:00:00");
    let mut long = article("bound-batch-2", "vi", "kinh-te", "2026-11-25T08:00:00");
    long["author"] = "Đ"
        .repeat(documented(&doc, &format!("{input}/author/maxLength")) + 1)
        .into();
    long["image"] = json!({"url": "/a.jpg", "caption": "ả".repeat(100_000)});
    let r = app
        .client
        .post(app.url(MANY))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(format!("{good}\n{long}\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(saw("post", MANY, r.status().as_u16()), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["results"][0]["status"], "created");
    assert_eq!(v["results"][1]["status"], "invalid");
    assert_eq!(v["results"][1]["error"]["field"], "author");
    assert_eq!(
        app.server.app.store().get("bound-batch-2").await.unwrap(),
        None
    );
}

/// A store that cannot grow (its disk is full: here a real SQLite database held to a size with
/// `?max_bytes=`, which fails exactly as a full disk does, with `SQLITE_FULL`) answers a write
/// 503 with `Retry-After`, keeps nothing of it, and goes on serving what it has.
#[tokio::test]
async fn a_full_disk_is_503_with_retry_after_and_nothing_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?max_bytes={}",
        dir.path().join("full.db").display(),
        3 << 20
    );
    let app = spawn(Options {
        database_url: Some(url),
        ..Default::default()
    })
    .await;
    let before = app.server.app.store().count().await.unwrap();
    // Bodies of 900 kB fill the 3 MB allowed within a few writes.
    let body = "lời tòa soạn ".repeat(900_000 / "lời tòa soạn ".len());
    let mut stored = 0;
    let full = loop {
        let id = format!("full-{stored}");
        let mut a = article(&id, "vi", "kinh-te", "2026-11-25T08:00:00");
        a["content_html"] = format!("<p>{body}</p>").into();
        let r = app.put(&id, &a).await;
        match saw("put", ONE, r.status().as_u16()) {
            201 => stored += 1,
            503 => break (id, r),
            s => panic!("a write to a full store answered {s}"),
        }
        assert!(stored < 10, "3 MB never filled up");
    };
    let (id, r) = full;
    assert!(stored >= 1, "the store had room for one at first");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    let (_, e) = error_of(r).await;
    assert_eq!(e["code"], "store_unavailable");
    assert!(
        !e["message"].as_str().unwrap().contains("full"),
        "no driver text: {e}"
    );
    // Nothing of the refused article is anywhere: not stored, not in a feed.
    assert_eq!(app.server.app.store().get(&id).await.unwrap(), None);
    assert_eq!(
        app.server.app.store().count().await.unwrap(),
        before + stored
    );
    let feed = app.get_text("/vi/kinh-te/rss.xml").await;
    assert!(feed.contains(":full-0</guid>"));
    assert!(!feed.contains(&format!(":{id}</guid>")));
    let r = app
        .client
        .get(app.url(&format!("/api/v1/articles/{id}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(saw("get", ONE, r.status().as_u16()), 404, "reads go on");
}

/// A client bound to a loopback address of its own, to play another network.
fn client_from(addr: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(addr.parse::<std::net::IpAddr>().unwrap())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap()
}

fn metric(text: &str, line_prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn wrong_tokens_are_counted_and_slowed_per_network_and_others_still_get_in() {
    let app = spawn_default().await;
    let url = app.url("/api/v1/articles/auth-1");
    let a = article("auth-1", "vi", "kinh-te", "2026-11-25T08:00:00");
    let attacker = client_from("127.0.0.1");
    let put = |c: &reqwest::Client, token: &str| {
        c.put(&url).bearer_auth(token.to_string()).json(&a).send()
    };
    for i in 0..bantin::access::MAX_FAILURES {
        let r = put(&attacker, &format!("guess-{i}-0123456789"))
            .await
            .unwrap();
        assert_eq!(saw("put", ONE, r.status().as_u16()), 401, "guess {i}");
    }
    // Past the limit the network is refused, its token not even looked at: the right one too.
    for token in ["guess-again-0123456789", TOKEN] {
        let r = put(&attacker, token).await.unwrap();
        assert_eq!(saw("put", ONE, r.status().as_u16()), 429);
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let (_, e) = error_of(r).await;
        assert_eq!(e["code"], "too_many_failures");
    }
    // A newsroom tool on another address is not held back.
    let r = put(&client_from("127.0.0.2"), TOKEN).await.unwrap();
    assert_eq!(saw("put", ONE, r.status().as_u16()), 201);

    // /stats with a wrong Basic password, from a third address: counted under its endpoint.
    let browser = client_from("127.0.0.3");
    for _ in 0..bantin::access::MAX_FAILURES {
        let r = browser
            .get(app.url("/stats"))
            .basic_auth("newsroom", Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = browser
        .get(app.url("/stats"))
        .basic_auth("newsroom", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let r = browser
        .get(app.url("/api/v1/stats"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        saw("get", "/api/v1/stats", r.status().as_u16()),
        429,
        "one record per network"
    );
    // No credentials at all is not a failure: a browser asks for the password after a 401.
    let fresh = client_from("127.0.0.4");
    for _ in 0..10 {
        assert_eq!(
            fresh.get(app.url("/stats")).send().await.unwrap().status(),
            401
        );
    }
    let r = fresh
        .get(app.url("/stats"))
        .basic_auth("newsroom", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let m = app.get_text("/metrics").await;
    assert_eq!(
        metric(&m, "bantin_auth_failures_total{endpoint=\"api\"}"),
        5
    );
    assert_eq!(
        metric(&m, "bantin_auth_failures_total{endpoint=\"stats\"}"),
        5
    );
    assert_eq!(
        metric(&m, "bantin_auth_throttled_total{endpoint=\"api\"}"),
        2
    );
    assert_eq!(
        metric(&m, "bantin_auth_throttled_total{endpoint=\"stats\"}"),
        2
    );
    assert!(!m.contains("guess-"), "no token in the metrics");
}

/// Wrong tokens from more networks than the table holds: it stays at its bound, and a good
/// token still gets in.
#[tokio::test]
async fn a_flood_of_networks_with_wrong_tokens_stays_bounded() {
    let app = spawn_default().await;
    let addr = app.server.addr;
    let n = bantin::access::MAX_NETWORKS + 300;
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        for i in 0..n {
            let local = std::net::Ipv4Addr::from(0x7f01_0000 + i as u32);
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            s.bind(&std::net::SocketAddr::from((local, 0)).into()).unwrap();
            s.connect(&addr.into()).unwrap();
            let mut s: std::net::TcpStream = s.into();
            s.write_all(
                b"GET /api/v1/articles/x HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrong-0123456789abcdef\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).unwrap();
            assert!(out.starts_with(b"HTTP/1.1 401"), "{}", String::from_utf8_lossy(&out));
        }
    })
    .await
    .unwrap();
    let logins = &app.server.app.logins();
    assert_eq!(
        logins.len(),
        bantin::access::MAX_NETWORKS,
        "the table holds its bound"
    );
    let m = app.get_text("/metrics").await;
    assert_eq!(
        metric(&m, "bantin_auth_failures_total{endpoint=\"api\"}"),
        n as u64
    );
    let r = app
        .client
        .get(app.url("/api/v1/articles/x"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
