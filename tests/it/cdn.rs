//! Through a real Varnish running `deploy/varnish/bantin.vcl` (xkey vmod) in front of a real
//! bantin purging it with `[cdn] purge_kind = "xkey"`: a write purges exactly the feeds it
//! touched and the next request is a miss with the new bytes, untouched feeds stay cached (same
//! object), each encoding is its own cached variant, and a partner's variant is never stored.
//!
//! Ignored unless asked for (`--include-ignored`, as `.ci/run` does, which installs the Debian
//! packages `varnish` and `varnish-modules` when `varnishd` is missing); when asked for, a
//! missing `varnishd` is a failure, not a skip.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bantin::config::{Config, PurgeKind};
use reqwest::header::HeaderMap;

use crate::helpers::*;
use crate::partners::{KEY, partners};

/// A varnishd in the foreground on 127.0.0.1, with its own work directory; killed on drop.
struct Varnish {
    child: Child,
    dir: tempfile::TempDir,
    base: String,
}

impl Drop for Varnish {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name` on PATH or in /usr/sbin (where Debian puts varnishd, often not on a user's PATH).
fn program(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "{name} not found on PATH or in /usr/sbin: \
             apt-get install varnish varnish-modules (needs libvmod_xkey)"
        )
    })
}

/// A port free right now: varnishd cannot be told `-a :0` and report what it got.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Varnish {
    /// Starts varnishd on `port` with the shipped VCL and one backend, `origin` (host:port).
    async fn start(port: u16, origin: &str) -> Varnish {
        let dir = tempfile::tempdir().unwrap();
        let (host, oport) = origin.rsplit_once(':').unwrap();
        std::fs::write(
            dir.path().join("backends.vcl"),
            format!(
                "backend origin {{ .host = \"{host}\"; .port = \"{oport}\"; .probe = bantin_ready; }}\n\
                 sub vcl_init {{\n  new replicas = directors.round_robin();\n  replicas.add_backend(origin);\n}}\n"
            ),
        )
        .unwrap();
        let deploy = manifest_dir().join("deploy/varnish");
        let log = std::fs::File::create(dir.path().join("varnishd.log")).unwrap();
        let child = Command::new(program("varnishd"))
            .arg("-F")
            .args(["-j", "none"])
            .arg("-n")
            .arg(dir.path().join("n"))
            .args(["-a", &format!("127.0.0.1:{port}")])
            .args(["-T", "none"])
            .arg("-f")
            .arg(deploy.join("bantin.vcl"))
            .arg("-p")
            .arg(format!(
                "vcl_path={}:{}",
                dir.path().display(),
                deploy.display()
            ))
            .args(["-p", "http_gzip_support=off"])
            .args(["-s", "malloc,64m"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("varnishd starts");
        let mut v = Varnish {
            child,
            dir,
            base: format!("http://127.0.0.1:{port}"),
        };
        v.wait_ready().await;
        v
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("varnishd.log")).unwrap_or_default()
    }

    /// Until /healthz answers through Varnish (the VCL compiled, the backend is reached).
    async fn wait_ready(&mut self) {
        let c = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("varnishd exited ({status}):\n{}", self.log());
            }
            if let Ok(r) = c.get(format!("{}/healthz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "varnishd not answering within 30 s:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One counter of `varnishstat` (e.g. `MAIN.n_object`).
    fn stat(&self, field: &str) -> u64 {
        let out = Command::new(program("varnishstat"))
            .arg("-n")
            .arg(self.dir.path().join("n"))
            .args(["-1", "-f", field])
            .output()
            .expect("varnishstat runs");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("varnishstat -f {field}: {text:?}"))
    }
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
    /// HIT, MISS or PASS, as the VCL reports it.
    fn cache(&self) -> &str {
        self.header("x-cache")
    }
    /// The xid of the cached object answering (the second number of `X-Varnish` on a hit).
    fn object(&self) -> &str {
        self.header("x-varnish").split(' ').nth(1).unwrap_or("")
    }
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

async fn get(c: &reqwest::Client, url: &str, encoding: Option<&str>) -> Answer {
    let mut req = c.get(url);
    if let Some(e) = encoding {
        req = req.header("accept-encoding", e);
    }
    let r = req.send().await.unwrap();
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

/// bantin's count of purges Varnish accepted.
async fn purges_ok(app: &TestApp) -> u64 {
    let m = app.get_text("/metrics").await;
    m.lines()
        .find_map(|l| l.strip_prefix("bantin_cdn_purges_total{result=\"ok\"} "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

/// Until Varnish has accepted `n` purges in all (one per write that changed something).
async fn wait_for_purges(app: &TestApp, varnish: &Varnish, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done = purges_ok(app).await;
        assert!(done <= n, "{done} purges for {n} writes");
        if done == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {n} purges accepted by Varnish within 10 s:\n{}",
            varnish.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cdn_config(c: &mut Config) {
    c.purge_kind = PurgeKind::Xkey;
    partners(c);
    c.access.public_content = bantin::config::PublicContent::Summary;
}

const FULL_TEXT: &str = "TOAN-VAN-QUA-CDN";

fn story(id: &str, lang: &str, category: &str, day: u32) -> serde_json::Value {
    let mut a = article(id, lang, category, &format!("2026-01-{day:02}T08:00:00"));
    a["content_html"] = format!("<p>{FULL_TEXT} {id}</p>").into();
    a
}

fn item_ids(rss: &str, what: &str) -> Vec<String> {
    let doc = strict_xml(rss, what);
    doc.descendants()
        .filter(|n| n.has_tag_name("guid"))
        .map(|n| {
            n.text()
                .unwrap_or("")
                .rsplit(':')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs varnishd"]
async fn varnish_in_front_purges_exactly_the_written_feeds_and_never_stores_a_partner_variant() {
    let port = free_port();
    let app = spawn(Options {
        articles_dir: None,
        purge_urls: vec![format!("http://127.0.0.1:{port}/")],
        tweak: Some(cdn_config),
        ..Default::default()
    })
    .await;
    let origin = app.base.trim_start_matches("http://").to_string();
    let varnish = Varnish::start(port, &origin).await;
    // Written once Varnish is up, so that no purge of these is still waiting for a retry.
    for (id, lang, cat, day) in [
        ("kt-1", "vi", "kinh-te", 5),
        ("qp-1", "vi", "quoc-phong", 6),
        ("en-1", "en", "kinh-te", 7),
    ] {
        assert_eq!(app.put(id, &story(id, lang, cat, day)).await.status(), 201);
    }
    wait_for_purges(&app, &varnish, 3).await;
    let c = client();
    let at = |path: &str| format!("{}{path}", varnish.base);

    // Each feed and each coding is its own cached object: first a miss, then a hit.
    let touched = "/vi/kinh-te/rss.xml";
    let untouched = ["/vi/quoc-phong/rss.xml", "/en/rss.xml"];
    let codings = [None, Some("gzip"), Some("br, gzip")];
    let mut objects = Vec::new();
    for path in std::iter::once(touched).chain(untouched) {
        for coding in codings {
            let first = get(&c, &at(path), coding).await;
            assert_eq!(
                (first.status, first.cache()),
                (200, "MISS"),
                "{path} {coding:?}"
            );
            let second = get(&c, &at(path), coding).await;
            assert_eq!(second.cache(), "HIT", "{path} {coding:?}");
            assert_eq!(
                second.body, first.body,
                "{path} {coding:?}: the cached bytes"
            );
            let want = match coding {
                None => "",
                Some("gzip") => "gzip",
                _ => "br",
            };
            assert_eq!(second.header("content-encoding"), want, "{path} {coding:?}");
            objects.push((path, coding, second.object().to_string()));
        }
    }
    let before = get(&c, &at(touched), None).await;
    assert_eq!(item_ids(before.text(), touched), ["kt-1"]);
    // The public variant is the summary: the full text is the partners'.
    assert!(!before.text().contains(FULL_TEXT));

    // A tag no article has yet: its 404 is cached (a second at most), tagged with the feed's
    // surrogate key, so the write that creates the feed purges it like any other.
    let new_tag = "/vi/tag/moi/rss.xml";
    let missing = get(&c, &at(new_tag), None).await;
    assert_eq!((missing.status, missing.cache()), (404, "MISS"));
    assert_eq!(missing.header("surrogate-key"), "feed-vi-tag-moi lang-vi");
    assert_eq!(get(&c, &at(new_tag), None).await.cache(), "HIT");

    // A write through Varnish (the API is passed to the origin), then Varnish's purge.
    let mut kt2 = story("kt-2", "vi", "kinh-te", 8);
    kt2["tags"] = serde_json::json!(["bài thử", "mới"]);
    let put = c
        .put(at("/api/v1/articles/kt-2"))
        .bearer_auth(TOKEN)
        .json(&kt2)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    wait_for_purges(&app, &varnish, 4).await;
    // First (within the 404's second): the new tag's cached 404 went with the purge, so its
    // first article shows at once.
    let created = get(&c, &at(new_tag), None).await;
    assert_eq!(
        (created.status, created.cache()),
        (200, "MISS"),
        "{new_tag}"
    );
    assert_eq!(item_ids(created.text(), new_tag), ["kt-2"]);

    // The next request for the written feed, in every coding: a miss with the new document.
    for coding in codings {
        let after = get(&c, &at(touched), coding).await;
        assert_eq!((after.status, after.cache()), (200, "MISS"), "{coding:?}");
        if coding.is_none() {
            assert_eq!(item_ids(after.text(), touched), ["kt-2", "kt-1"]);
        }
        assert_ne!(after.header("etag"), "", "{coding:?}");
        let again = get(&c, &at(touched), coding).await;
        assert_eq!(again.cache(), "HIT", "{coding:?}: cached again");
        assert_eq!(again.body, after.body);
    }
    // The language feed and the tag and byline feeds were touched too.
    for path in [
        "/vi/rss.xml",
        "/vi/tag/bai-thu/rss.xml",
        "/vi/author/phong-vien-thu/rss.xml",
    ] {
        let a = get(&c, &at(path), None).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(item_ids(a.text(), path)[0], "kt-2", "{path}");
    }
    // Another category of the same language and the other language: still the same objects.
    for (path, coding, object) in &objects {
        if *path == touched {
            continue;
        }
        let a = get(&c, &at(path), *coding).await;
        assert_eq!(a.cache(), "HIT", "{path} {coding:?} was purged");
        assert_eq!(&a.object(), object, "{path} {coding:?} was refetched");
    }

    // A partner's full text through Varnish: passed to the origin every time, never stored.
    // (A passed answer lives in the Transient storage while it is sent; what is cached
    // is allocated in the main storage, s0.)
    let stored = varnish.stat("SMA.s0.c_req");
    let fetched = varnish.stat("MAIN.backend_req");
    for _ in 0..3 {
        for coding in codings {
            let p = get(&c, &at(&format!("{touched}?key={KEY}")), coding).await;
            assert_eq!((p.status, p.cache()), (200, "PASS"), "{coding:?}");
            assert!(p.header("cache-control").starts_with("private"));
            if coding.is_none() {
                assert!(
                    p.text().contains(FULL_TEXT),
                    "the partner gets the full text"
                );
                assert_eq!(item_ids(p.text(), "partner"), ["kt-2", "kt-1"]);
            }
        }
    }
    // With the key as a Bearer token too; and a wrong key is refused, not served from cache.
    let bearer = c.get(at(touched)).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(bearer.headers()["x-cache"], "PASS");
    assert!(bearer.text().await.unwrap().contains(FULL_TEXT));
    let wrong = get(&c, &at(&format!("{touched}?key=not-a-partner")), None).await;
    assert_eq!((wrong.status, wrong.cache()), (403, "PASS"));
    assert_eq!(
        varnish.stat("SMA.s0.c_req"),
        stored,
        "a partner answer was stored"
    );
    assert_eq!(varnish.stat("MAIN.backend_req"), fetched + 11);
    // And the public copy is still the summary one, from the cache.
    let public = get(&c, &at(touched), None).await;
    assert_eq!(public.cache(), "HIT");
    assert!(!public.text().contains(FULL_TEXT));
}
