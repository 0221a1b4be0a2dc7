//! The descriptor budget under a low open-file limit: the real `bantin serve` binary started with
//! `RLIMIT_NOFILE` lowered to 1024 (as a default systemd unit or shell gives it), then flooded with
//! 500 keep-alive connections of 404 traffic (distinct missing tags, pages past the end), each
//! a store read. The store's readers must stay within their bound, `accept` must never run out
//! of descriptors, no miss may fail for want of one, and a real client is still served at once.
//! Also the files that hold cached bodies with `BANTIN_BODY_DIR`: unlinked files of that
//! directory, serving the same bytes; a directory that cannot hold them stops the start.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

const FILE_LIMIT: u64 = 1024;
const CONNECTIONS: usize = 500;
const REQUESTS_PER_CONNECTION: usize = 4;
/// `BANTIN_WORKERS`: the reader bound is twice this.
const WORKERS: usize = 2;

struct Serve {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_with_file_limit(db: &std::path::Path) -> Serve {
    serve_binary(db, &[])
}

fn serve_binary(db: &std::path::Path, env: &[(&str, &str)]) -> Serve {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bantin"));
    cmd.args(["--config", site_toml().to_str().unwrap(), "serve"])
        .envs(env.iter().copied())
        .env("BANTIN_LISTEN", "127.0.0.1:0")
        .env("BANTIN_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("BANTIN_WORKERS", WORKERS.to_string())
        .env("RUST_LOG", "bantin=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: only an async-signal-safe libc call between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: FILE_LIMIT,
                rlim_max: FILE_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("start bantin");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let lines = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "bantin listening"
            {
                let _ = tx.send(v["addr"].as_str().unwrap().to_string());
            }
            lines.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("bantin starts and logs its address");
    Serve { child, addr, log }
}

/// Descriptors the process holds: all of them, and those on the database file itself (one per
/// SQLite connection).
fn descriptors(pid: u32) -> (usize, usize) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return (0, 0);
    };
    let links: Vec<_> = dir
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    let db = links
        .iter()
        .filter(|p| p.to_string_lossy().ends_with("bantin.db"))
        .count();
    (links.len(), db)
}

/// One request on a keep-alive connection; its status, or `None` if the connection closed.
async fn request(s: &mut TcpStream, path: &str) -> Option<u16> {
    let head = format!("GET {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: flood\r\n\r\n");
    s.write_all(head.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let text = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status: u16 = text.get(9..12)?.parse().ok()?;
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - end;
    while have < length {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        have += n;
    }
    Some(status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_a_low_file_limit_a_miss_flood_keeps_the_readers_bounded_and_serves_a_real_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with_file_limit(&dir.path().join("bantin.db"));
    let pid = server.child.id();
    let base = format!("http://{}", server.addr);
    let warming = client();
    // The real client's feed is cached before the flood, as a poller's usually is.
    let warm = warming
        .get(format!("{base}/vi/rss.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);

    // Sample the process's descriptors throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let sampler = {
        let (stop, most) = (stop.clone(), most.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (all, db) = descriptors(pid);
                most.0.fetch_max(all, Ordering::Relaxed);
                most.1.fetch_max(db, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    let addr = server.addr.clone();
    let flood: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let Ok(mut s) = TcpStream::connect(&addr).await else {
                    return vec![None];
                };
                let mut statuses = Vec::new();
                for k in 0..REQUESTS_PER_CONNECTION {
                    // Distinct feeds that do not exist: page 1 is a render's query, a deeper
                    // page two item-count queries at once (before any render slot).
                    let path = match k % 2 {
                        0 => format!("/vi/tag/khong-co-{i}-{k}/rss.xml"),
                        _ => format!("/en/author/khong-ai-{i}-{k}/atom.xml?page=2"),
                    };
                    let status = request(&mut s, &path).await;
                    statuses.push(status);
                    if status.is_none() {
                        break;
                    }
                }
                statuses
            })
        })
        .collect();

    // Meanwhile, a real client, on a new connection as a poller's next poll usually is: at the
    // cap the server closes its oldest idle keep-alive connection to make room (the warm-up's
    // would be among the first), and a poller whose pooled connection was closed under it
    // reconnects, which this is.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(warming);
    let poller = client();
    let started = Instant::now();
    // At the cap, a connection that has not sent its request yet may be the one shed to make
    // room for a newer one (the flood's connections are still arriving): a poller then
    // reconnects, as reqwest's error tells it to; the whole wait is what is bounded.
    let mut attempts = 0;
    let r = loop {
        attempts += 1;
        match poller.get(format!("{base}/vi/rss.xml")).send().await {
            Ok(r) => break r,
            Err(e) if attempts < 3 && (e.is_connect() || e.is_request()) => continue,
            Err(e) => panic!("the real client got no answer in {attempts} attempts: {e}"),
        }
    };
    let waited = started.elapsed();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<rss"));

    let mut answered = std::collections::BTreeMap::<Option<u16>, usize>::new();
    for f in futures::future::join_all(flood).await {
        for s in f.unwrap() {
            *answered.entry(s).or_default() += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let (all, db) = (
        most.0.load(Ordering::Relaxed),
        most.1.load(Ordering::Relaxed),
    );
    eprintln!(
        "answers {answered:?}; real client {waited:?}; at most {all} descriptors, {db} on the database"
    );

    let log = server.log.lock().unwrap().join("\n");
    let cap_line = log
        .lines()
        .find(|l| l.contains("connection_cap"))
        .unwrap_or_default();
    eprintln!("{cap_line}");
    assert!(!log.contains("Too many open files"), "{log}");
    assert!(!log.contains("accept failed"), "{log}");
    assert!(
        waited < Duration::from_secs(1),
        "the real client waited {waited:?}"
    );
    // Every request the flood sent got its 404; none a 503 for want of a descriptor or reader.
    let not_found = answered.get(&Some(404)).copied().unwrap_or(0);
    assert!(
        answered.keys().all(|s| matches!(s, Some(404) | None)),
        "{answered:?}"
    );
    // Connections beyond the cap may be shed (closed unanswered) to make room, never refused
    // for want of a descriptor: nearly every request is answered.
    assert!(
        not_found >= CONNECTIONS * REQUESTS_PER_CONNECTION * 9 / 10,
        "{answered:?}"
    );
    // The writer and at most 2 × workers readers: one database descriptor each.
    assert!(
        db <= 1 + 2 * WORKERS,
        "{db} descriptors on the database file"
    );
    assert!(all < FILE_LIMIT as usize, "{all} descriptors open");

    // After the flood the real client is still served (and nothing leaked).
    let r = poller
        .get(format!("{base}/vi/kinh-te/feed.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_body_dir_cached_bodies_are_unlinked_files_there_serving_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let bodies = dir.path().join("bodies");
    std::fs::create_dir(&bodies).unwrap();
    let server = serve_binary(
        &dir.path().join("bantin.db"),
        &[("BANTIN_BODY_DIR", bodies.to_str().unwrap())],
    );
    let base = format!("http://{}", server.addr);
    // The sample front page is larger than a memfile's threshold, so its bodies go to a file.
    let plain = client()
        .get(format!("{base}/vi/rss.xml"))
        .header("accept-encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let plain = plain.bytes().await.unwrap();
    assert!(
        plain.len() >= bantin::render::MEMFILE_MIN_BYTES / 2,
        "{}",
        plain.len()
    );
    strict_xml(std::str::from_utf8(&plain).unwrap(), "/vi/rss.xml");
    // The gzip hit (sendfile from that file) decodes to the same document.
    let raw = reqwest::Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(format!("{base}/vi/rss.xml"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-encoding"], "gzip");
    let gz = raw.bytes().await.unwrap();
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut unzipped).unwrap();
    assert_eq!(unzipped, plain);

    // Held open by the cache, in the directory, but never in its listing.
    let links: Vec<String> = std::fs::read_dir(format!("/proc/{}/fd", server.child.id()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let prefix = format!("{}/", bodies.display());
    assert!(
        links
            .iter()
            .any(|l| l.starts_with(&prefix) && l.ends_with("(deleted)")),
        "no body file under {prefix}: {links:?}"
    );
    assert!(
        !links.iter().any(|l| l.contains("memfd:bantin-feed")),
        "{links:?}"
    );
    assert_eq!(std::fs::read_dir(&bodies).unwrap().count(), 0);
}

#[test]
fn a_body_dir_that_cannot_hold_files_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bantin"))
        .args(["--config", site_toml().to_str().unwrap(), "serve"])
        .env("BANTIN_LISTEN", "127.0.0.1:0")
        .env(
            "BANTIN_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("bantin.db").display()),
        )
        .env("BANTIN_BODY_DIR", "/nonexistent/bantin-bodies")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("BANTIN_BODY_DIR=/nonexistent/bantin-bodies"),
        "{err}"
    );
}
