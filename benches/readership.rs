//! What counting one feed answer costs on the worker thread: `Readership::count` for a client
//! already seen this interval (the steady state of a poller), a 304 and an unconditional 200, and
//! for a new client each time (a crowd of one-off readers). The wrk comparison of a whole server
//! with counting on and off is `bench/readership.sh`; this isolates the call.
//!
//! Run: `cargo bench --bench readership`.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};

use bantin::clock::SystemClock;
use bantin::config::Config;
use bantin::readership::{Poll, Readership, tally};

const FEEDLY: &[u8] = b"Feedly/1.0 (+http://www.feedly.com/fetcher.html; 131 subscribers; )";

fn readership() -> Readership {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds/site.toml");
    let c = Config::load_with_env(&path, |_| None).expect("site.toml");
    Readership::new(&c, Arc::new(SystemClock))
}

fn poll(peer: IpAddr, not_modified: bool) -> Poll<'static> {
    Poll {
        path: "/vi/kinh-te/rss.xml",
        not_modified,
        conditional: not_modified,
        bytes: if not_modified { 0 } else { 52_000 },
        peer,
        forwarded_for: None,
        user_agent: Some(FEEDLY),
        partner: None,
    }
}

fn benches(c: &mut Criterion) {
    let r = readership();
    let peer: IpAddr = "203.0.113.10".parse().unwrap();
    let mut g = c.benchmark_group("count");
    g.bench_function("304, known client", |b| {
        let p = poll(peer, true);
        b.iter(|| r.count(black_box(&p)));
    });
    let _ = tally::drain();
    g.bench_function("200 unconditional, known client", |b| {
        let p = poll(peer, false);
        b.iter(|| r.count(black_box(&p)));
    });
    let _ = tally::drain();
    g.bench_function("304, a new client each time (drained every 10,000)", |b| {
        let mut i: u32 = 0;
        b.iter(|| {
            i = i.wrapping_add(1);
            if i % 10_000 == 0 {
                black_box(tally::drain());
            }
            let p = poll(IpAddr::from(i.to_be_bytes()), true);
            r.count(black_box(&p));
        });
    });
    g.finish();
}

criterion_group!(readership_benches, benches);
criterion_main!(readership_benches);
