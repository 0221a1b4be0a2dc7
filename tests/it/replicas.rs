//! Several replicas on one PostgreSQL database: cross-replica invalidation, identical bytes, and
//! a database outage. Each test makes its own database on `BANTIN_TEST_DATABASE_URL`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bantin::store::postgres::test_support::{admin, drop_database, fresh_database, name_of};

use crate::helpers::*;

const PUBLIC: &str = "https://feeds.baolongan.example";

/// A real `bantin serve` process.
struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on port 0 and reads the address it bound from its JSON start-up log line.
fn start_replica(db_url: &str) -> Replica {
    start_replica_with(db_url, &[])
}

/// [`start_replica`] with more environment.
fn start_replica_with(db_url: &str, env: &[(&str, &str)]) -> Replica {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bantin"))
        .args(["--config", site_toml().to_str().unwrap(), "serve"])
        .env("BANTIN_LISTEN", "127.0.0.1:0")
        .env("BANTIN_DATABASE_URL", db_url)
        .env("BANTIN_PUBLIC_URL", PUBLIC)
        .env("BANTIN_API_TOKEN", TOKEN)
        .env("RUST_LOG", "bantin=info")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start bantin");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "bantin listening"
            {
                let _ = tx.send(v["addr"].as_str().unwrap().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the replica starts and logs its address");
    Replica {
        child,
        base: format!("http://{addr}"),
    }
}

#[tokio::test]
#[ignore = "needs BANTIN_TEST_DATABASE_URL"]
async fn a_write_on_one_replica_is_served_by_the_other_within_a_second() {
    let db = fresh_database().await;
    // Both replicas start together: concurrent migrations and concurrent syncs of the corpus.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| start_replica(&db));
        let b = s.spawn(|| start_replica(&db));
        (a.join().unwrap(), b.join().unwrap())
    });
    let c = client();
    let feed = "/vi/kinh-te/rss.xml";
    // B has the feed cached before the write.
    let before = c
        .get(format!("{}{feed}", b.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!before.contains(":replica-1</guid>"));

    let art = article("replica-1", "vi", "kinh-te", "2026-11-25T10:00:00");
    let r = c
        .put(format!("{}/api/v1/articles/replica-1", a.base))
        .bearer_auth(TOKEN)
        .json(&art)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let written = Instant::now();
    loop {
        let body = c
            .get(format!("{}{feed}", b.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body.contains(":replica-1</guid>") {
            break;
        }
        assert!(
            written.elapsed() < Duration::from_secs(1),
            "replica B still serves the old feed after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("write on A visible on B after {:?}", written.elapsed());

    // Both replicas serve byte-identical feeds with identical ETags.
    let opml = c
        .get(format!("{}/feeds.opml", a.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = strict_xml(&opml, "opml");
    let paths: Vec<String> = doc
        .descendants()
        .filter_map(|n| n.attribute("xmlUrl"))
        .flat_map(|u| {
            ["rss.xml", "atom.xml", "feed.json"]
                .map(|f| u.strip_prefix(PUBLIC).unwrap().replace("rss.xml", f))
        })
        .collect();
    assert!(paths.len() > 40);
    for p in &paths {
        for enc in ["identity", "gzip"] {
            let ra = c
                .get(format!("{}{p}", a.base))
                .header("accept-encoding", enc)
                .send()
                .await
                .unwrap();
            let rb = c
                .get(format!("{}{p}", b.base))
                .header("accept-encoding", enc)
                .send()
                .await
                .unwrap();
            assert_eq!(ra.status(), 200, "{p}");
            assert_eq!(
                ra.headers()["etag"],
                rb.headers()["etag"],
                "{p} {enc}: ETags differ between replicas"
            );
            assert_eq!(
                ra.headers().get("last-modified"),
                rb.headers().get("last-modified"),
                "{p}"
            );
            assert_eq!(
                ra.bytes().await.unwrap(),
                rb.bytes().await.unwrap(),
                "{p} {enc}: bytes differ between replicas"
            );
        }
    }
    drop((a, b));
    drop_database(&db).await;
}

/// Cuts the database off the way a restart does: no new connections, existing ones terminated.
async fn cut_off(db: &str, allow: bool) {
    let name = name_of(db);
    let admin = admin().await;
    admin
        .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}"))
        .await
        .unwrap();
    if !allow {
        admin
            .execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", &[&name])
            .await
            .unwrap();
    }
}

#[tokio::test]
#[ignore = "needs BANTIN_TEST_DATABASE_URL"]
async fn a_database_outage_keeps_cached_feeds_up_and_recovers_without_restart() {
    let db = fresh_database().await;
    let app = spawn(Options {
        database_url: Some(db.clone()),
        ..Default::default()
    })
    .await;
    let cached = app.get("/vi/rss.xml").await;
    let etag = cached.headers()["etag"].clone();
    assert_eq!(app.get("/en/rss.xml").await.status(), 200);
    let en = bantin::cache::CacheKey {
        feed: bantin::feed::FeedKey::new("en", bantin::feed::Selector::All),
        format: bantin::feed::Format::Rss,
        page: 1,
        content: bantin::feed::Content::Full,
    };
    assert!(app.server.app.cache().contains_current(&en).await);
    let body = cached.bytes().await.unwrap();
    assert_eq!(app.get("/readyz").await.status(), 200);

    cut_off(&db, false).await;

    // A replica under polling load: cached feeds keep answering throughout.
    for _ in 0..20 {
        let r = app.get("/vi/rss.xml").await;
        assert_eq!(r.status(), 200, "cached feed during the outage");
        assert_eq!(r.headers()["etag"], etag);
    }
    // Even a feed a write invalidated (here: by hand) is served from its last good copy.
    app.server
        .app
        .cache()
        .invalidate([&bantin::feed::FeedKey::new(
            "vi",
            bantin::feed::Selector::All,
        )]);
    let r = app.get("/vi/rss.xml").await;
    assert_eq!(r.status(), 200, "stale-if-error");
    assert_eq!(r.bytes().await.unwrap(), body);
    // A feed never rendered fails fast with 503 and Retry-After.
    let started = Instant::now();
    let r = app.get("/en/sports/atom.xml").await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails fast: {:?}",
        started.elapsed()
    );
    let ready = app.get("/readyz").await;
    assert_eq!(
        ready.status(),
        503,
        "readyz tells the truth during the outage"
    );
    let v: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(v["store"], "postgres");
    // Writes fail cleanly too.
    let r = app
        .put(
            "outage-1",
            &article("outage-1", "vi", "kinh-te", "2026-11-25T10:00:00"),
        )
        .await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    // So does a batch, before its answer begins.
    let r = app
        .client
        .post(app.url("/api/v1/articles"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(article("outage-2", "vi", "kinh-te", "2026-11-25T10:00:00").to_string() + "\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());

    cut_off(&db, true).await;
    let back = Instant::now();
    loop {
        if app.get("/readyz").await.status() == 200
            && app.get("/en/sports/atom.xml").await.status() == 200
        {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "recovers by itself"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The notification connection was cut too: once it is back, notifications sent meanwhile may
    // be lost, so the replica drops its whole cache once (the untouched en feed included).
    while app.server.app.cache().contains_current(&en).await {
        assert!(
            back.elapsed() < Duration::from_secs(20),
            "the cache is flushed after the listener reconnects"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        app.put(
            "outage-1",
            &article("outage-1", "vi", "kinh-te", "2026-11-25T10:00:00")
        )
        .await
        .status(),
        201
    );
    assert!(
        app.get_text("/vi/rss.xml")
            .await
            .contains(":outage-1</guid>"),
        "writes and invalidation work again"
    );
    app.server.shutdown().await.unwrap();
    drop_database(&db).await;
}

/// A CDN refill can reach a replica that has not applied the writer's announcement yet and keep
/// its old copy for the max-age; so every replica purges the touched feeds once its own cache
/// has dropped them, not only the writer.
#[tokio::test]
#[ignore = "needs BANTIN_TEST_DATABASE_URL"]
async fn every_replica_purges_the_cdn_once_its_cache_has_dropped_the_write() {
    let db = fresh_database().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}/purge", listener.local_addr().unwrap());
    let mut purges = crate::purge::start_receiver(listener).await;
    let env = [("BANTIN_CDN_PURGE_URLS", receiver.as_str())];
    let (a, _b) = std::thread::scope(|s| {
        let a = s.spawn(|| start_replica_with(&db, &env));
        let b = s.spawn(|| start_replica_with(&db, &env));
        (a.join().unwrap(), b.join().unwrap())
    });
    // Start-up may purge nothing; drain whatever came before the write.
    while crate::purge::next(&mut purges, Duration::from_millis(300))
        .await
        .is_some()
    {}

    let art = article("replica-purge", "vi", "kinh-te", "2026-11-25T10:00:00");
    let r = client()
        .put(format!("{}/api/v1/articles/replica-purge", a.base))
        .bearer_auth(TOKEN)
        .json(&art)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // One purge from the writer and one from the other replica, naming the same feeds.
    let mut keys = Vec::new();
    while let Some(p) = crate::purge::next(&mut purges, Duration::from_secs(5)).await {
        keys.push(crate::purge::strings(&p["keys"]));
        if keys.len() == 2 {
            break;
        }
    }
    assert_eq!(keys.len(), 2, "purges received: {keys:?}");
    assert_eq!(keys[0], keys[1]);
    assert!(keys[0].contains("feed-vi-category-kinh-te"), "{keys:?}");
    // And no more: the writer does not purge again on its own announcement.
    assert!(
        crate::purge::next(&mut purges, Duration::from_millis(500))
            .await
            .is_none()
    );
    drop_database(&db).await;
}
