//! A batch's memory, measured as this process's resident set: its own test binary, so no other
//! test's allocations run beside it and blur the figure.

#[allow(dead_code)]
#[path = "it/helpers.rs"]
mod helpers;

use serde_json::Value;

use helpers::*;

/// The resident set of this process (the test server runs in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn half_a_million_bad_lines_stream_their_results() {
    const LINES: usize = 500_000;
    /// What the batch may add to the process at most (it once took 1.2 GB): the body and the
    /// listed results are a few MB, and the server holds a few 500-line chunks.
    const BOUND: u64 = 100 << 20;
    let app = spawn(Options {
        articles_dir: None,
        ..Default::default()
    })
    .await;
    let body = "x\n".repeat(LINES);
    let before = rss();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        })
    };
    let started = std::time::Instant::now();
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
    let v: Value = r.json().await.unwrap();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let grew = peak.load(std::sync::atomic::Ordering::Relaxed) - before;
    let s = &v["summary"];
    assert_eq!(s["invalid"], LINES, "{s}");
    assert_eq!(s["created"], 0);
    let listed = v["results"].as_array().unwrap();
    let max = bantin::http::api::MAX_LISTED_RESULTS;
    assert_eq!(listed.len(), max);
    assert_eq!(s["results_omitted"], LINES - max);
    assert!(
        listed
            .iter()
            .enumerate()
            .all(|(i, r)| r["line"] == i + 1 && r["error"]["code"] == "malformed_json"),
        "results are listed in line order"
    );
    assert!(
        grew < BOUND,
        "the batch grew the process by {} MB",
        grew >> 20
    );
    eprintln!(
        "{LINES} bad lines: {:.1} s, resident set grew by {} MB",
        started.elapsed().as_secs_f64(),
        grew >> 20
    );
}
