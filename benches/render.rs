//! Criterion benches for the miss path: rendering and compressing a 50-item feed with ~8 KB of
//! HTML per item, and a miss end to end (SQLite query + render + gzip + brotli + cache insert).
//!
//! Run: `cargo bench --bench render`. The compression levels live in `src/render.rs`.
//!
//! With `BANTIN_BENCH_DATABASE_URL` set (sqlite://… or postgres://…), the miss bench instead
//! measures misses against that existing store, whatever it holds (bench/scale.sh uses this to
//! compare a feed page at 1,000 and at 1,000,000 articles): page 1 of `/vi/rss.xml` and of
//! `/vi/kinh-te/rss.xml`, and page 20 of the category.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};

use bantin::app::App;
use bantin::article::{Article, ArticleInput};
use bantin::cache::CacheKey;
use bantin::config::Config;
use bantin::feed::{FeedKey, FeedPage, Format, Selector};
use bantin::metrics::Metrics;
use bantin::outbox::Outbox;
use bantin::render::{brotli, gzip, render_page};

fn config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds/site.toml");
    let mut c = Config::load_with_env(&path, |_| None).expect("site.toml");
    c.articles_dir = None;
    c
}

/// ~8 KB of Vietnamese news HTML. The words are drawn pseudo-randomly from a vocabulary so the
/// text compresses like prose (about 4:1 with the markup), not like a repeated paragraph (which
/// would flatter the compressors a hundredfold).
fn body(i: usize) -> String {
    const WORDS: &[&str] = &[
        "Sáng",
        "nay",
        "tại",
        "hội",
        "trường",
        "Ủy",
        "ban",
        "nhân",
        "dân",
        "tỉnh",
        "Long",
        "An",
        "lãnh",
        "đạo",
        "các",
        "sở",
        "ngành",
        "đã",
        "họp",
        "bàn",
        "kế",
        "hoạch",
        "phát",
        "triển",
        "kinh",
        "tế",
        "xã",
        "năm",
        "tập",
        "trung",
        "vào",
        "nông",
        "nghiệp",
        "công",
        "nghệ",
        "cao",
        "chuyển",
        "đổi",
        "số",
        "hạ",
        "tầng",
        "giao",
        "thông",
        "kết",
        "nối",
        "vùng",
        "giá",
        "lúa",
        "tăng",
        "thương",
        "lái",
        "thu",
        "mua",
        "đồng",
        "ruộng",
        "huyện",
        "Tân",
        "Thạnh",
        "Đức",
        "Hòa",
        "Cần",
        "Giuộc",
        "Bến",
        "Lức",
        "Kiến",
        "Tường",
        "người",
        "doanh",
        "nghiệp",
        "đầu",
        "tư",
        "dự",
        "án",
        "khu",
        "cụm",
        "sản",
        "xuất",
        "xuất",
        "khẩu",
        "thanh",
        "long",
        "chanh",
        "không",
        "hạt",
        "hợp",
        "tác",
        "cho",
        "biết",
        "theo",
        "ông",
        "bà",
        "trong",
        "những",
        "tháng",
        "qua",
        "được",
        "với",
        "và",
        "của",
        "là",
        "có",
        "này",
        "đến",
        "từ",
        "một",
        "nhiều",
        "hơn",
        "so",
        "cùng",
        "kỳ",
        "2026",
        "15%",
        "200",
        "đồng/kg",
        "hecta",
        "tấn",
        "tỷ",
        "triệu",
    ];
    let mut seed = (i as u64 + 1).wrapping_mul(6364136223846793005);
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut s = format!("<p><strong>Bài {i}.</strong></p>\n");
    while s.len() < 8 * 1024 {
        s.push_str("<p>");
        for w in 0..(20 + next() % 40) {
            if w > 0 {
                s.push(' ');
            }
            s.push_str(WORDS[next() % WORDS.len()]);
        }
        s.push_str(".</p>\n");
        if next() % 5 == 0 {
            s.push_str(&format!(
                "<p><a href=\"https://baolongan.example/vi/kinh-te/tin-{}\">Xem thêm</a></p>\n",
                next() % 10_000
            ));
        }
    }
    s.push_str("<figure><img src=\"https://baolongan.example/uploads/anh.jpg\" alt=\"Ảnh\"><figcaption>Ảnh minh họa</figcaption></figure>");
    s
}

fn articles(c: &Config, n: usize) -> Vec<Article> {
    (0..n)
        .map(|i| {
            let input = ArticleInput {
                id: format!("bench-{i:04}"),
                lang: "vi".into(),
                category: "kinh-te".into(),
                title: format!("Long An: tin kinh tế số {i}"),
                summary: "Giá lúa tươi tại nhiều xã tăng 200 đồng/kg so với tuần trước.".into(),
                content_html: body(i),
                url: format!("https://baolongan.example/vi/kinh-te/tin-{i}"),
                author: "Minh Thư".into(),
                published_at: format!("2026-10-{:02}T{:02}:00:00", 1 + i % 28, i % 24),
                tags: vec!["kinh tế".into(), "giá lúa".into()],
                ..Default::default()
            };
            Article::from_input(input, c).expect("valid bench article")
        })
        .collect()
}

fn render_benches(crit: &mut Criterion) {
    let c = config();
    let items = articles(&c, 50);
    let page = FeedPage {
        key: FeedKey::new("vi", Selector::Category("kinh-te".into())),
        page: 1,
        items,
        has_next: true,
        translations: BTreeMap::new(),
        name: Some("Kinh tế".into()),
        next_publication: None,
        content: bantin::feed::Content::Full,
    };
    for format in Format::ALL {
        let rep = render_page(&page, format, &c);
        let n = rep.identity.bytes.len();
        eprintln!(
            "{:?}: identity {} B, gzip {} B ({:.1}%), brotli {} B ({:.1}%)",
            format,
            n,
            rep.gzip.bytes.len(),
            100.0 * rep.gzip.bytes.len() as f64 / n as f64,
            rep.br.bytes.len(),
            100.0 * rep.br.bytes.len() as f64 / n as f64
        );
    }
    let rss = bantin::feed::rss::render(&page, &c);
    let mut levels = crit.benchmark_group("compression levels (rss, 50 items x 8 KB)");
    for level in [1, 2, 4, 6] {
        let n = bantin::render::gzip_at(&rss, level).len();
        eprintln!(
            "gzip level {level}: {n} B ({:.1}%)",
            100.0 * n as f64 / rss.len() as f64
        );
        levels.bench_function(format!("gzip {level}"), |b| {
            b.iter(|| black_box(bantin::render::gzip_at(black_box(&rss), level)))
        });
    }
    for q in [1, 2, 3, 4, 5] {
        let n = bantin::render::brotli_at(&rss, q).len();
        eprintln!(
            "brotli quality {q}: {n} B ({:.1}%)",
            100.0 * n as f64 / rss.len() as f64
        );
        levels.bench_function(format!("brotli {q}"), |b| {
            b.iter(|| black_box(bantin::render::brotli_at(black_box(&rss), q)))
        });
    }
    levels.finish();
    let mut g = crit.benchmark_group("50 items x 8 KB");
    g.bench_function("rss render only", |b| {
        b.iter(|| black_box(bantin::feed::rss::render(black_box(&page), &c)))
    });
    g.bench_function("atom render only", |b| {
        b.iter(|| black_box(bantin::feed::atom::render(black_box(&page), &c)))
    });
    g.bench_function("json render only", |b| {
        b.iter(|| black_box(bantin::feed::json::render(black_box(&page), &c)))
    });
    g.bench_function("gzip only (rss)", |b| {
        b.iter(|| black_box(gzip(black_box(&rss))))
    });
    g.bench_function("brotli only (rss)", |b| {
        b.iter(|| black_box(brotli(black_box(&rss))))
    });
    for format in Format::ALL {
        g.bench_function(format!("{format:?} render+gzip+brotli"), |b| {
            b.iter(|| black_box(render_page(black_box(&page), format, &c)))
        });
    }
    g.finish();

    // The background recompression of a cached entry at the best ratio (libdeflate 12 and
    // brotli 11), per format: the CPU one feed costs once, at the lowest priority.
    let mut g = crit.benchmark_group("best-ratio recompression (50 items x 8 KB)");
    g.sample_size(10);
    for format in Format::ALL {
        let rep = render_page(&page, format, &c);
        let best = rep.best();
        eprintln!(
            "{format:?} best: gzip {} B ({:.1}% of the fast {} B), brotli {} B ({:.1}% of the fast {} B)",
            best.gzip.bytes.len(),
            100.0 * best.gzip.bytes.len() as f64 / rep.gzip.bytes.len() as f64,
            rep.gzip.bytes.len(),
            best.br.bytes.len(),
            100.0 * best.br.bytes.len() as f64 / rep.br.bytes.len() as f64,
            rep.br.bytes.len()
        );
        g.bench_function(format!("{format:?} recompress"), |b| {
            b.iter(|| black_box(black_box(&rep).best()))
        });
    }
    g.finish();
}

/// Renders `key` with the cache invalidated first, so every iteration is a miss.
fn bench_miss(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    app: &App,
    name: String,
    key: CacheKey,
) {
    g.bench_function(name, |b| {
        b.iter(|| {
            app.cache().invalidate([&key.feed]);
            let (entry, _) = rt.block_on(app.feed(&key)).unwrap();
            black_box(entry.rep.identity.bytes.len())
        })
    });
}

fn miss_benches(crit: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let c = config();
    let category = FeedKey::new("vi", Selector::Category("kinh-te".into()));
    if let Ok(url) = std::env::var("BANTIN_BENCH_DATABASE_URL") {
        let app = rt.block_on(async {
            let store = bantin::store::backend::open(&url)
                .await
                .expect("the bench store opens");
            let n = store.count().await.unwrap();
            eprintln!("store {} holds {n} articles", bantin::server::redact(&url));
            App::new(
                Arc::new(c.clone()),
                store,
                Outbox::disabled(),
                Arc::new(Metrics::new()),
            )
        });
        let mut g = crit.benchmark_group("miss on an existing store");
        let lang = CacheKey {
            feed: FeedKey::new("vi", Selector::All),
            format: Format::Rss,
            page: 1,
            content: bantin::feed::Content::Full,
        };
        bench_miss(&mut g, &rt, &app, "vi page 1 (rss)".into(), lang);
        let first = CacheKey {
            feed: category.clone(),
            format: Format::Rss,
            page: 1,
            content: bantin::feed::Content::Full,
        };
        bench_miss(&mut g, &rt, &app, "vi/kinh-te page 1 (rss)".into(), first);
        let deep = CacheKey {
            feed: category,
            format: Format::Rss,
            page: 20,
            content: bantin::feed::Content::Full,
        };
        bench_miss(&mut g, &rt, &app, "vi/kinh-te page 20 (rss)".into(), deep);
        g.finish();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = bantin::store::backend::open(&url).await.unwrap();
        let app = App::new(
            Arc::new(c.clone()),
            store,
            Outbox::disabled(),
            Arc::new(Metrics::new()),
        );
        app.put_batch(&articles(&c, 60)).await.unwrap();
        app
    });
    let mut g = crit.benchmark_group("miss end to end (SQLite, 50 of 60 items x 8 KB)");
    for format in Format::ALL {
        let key = CacheKey {
            feed: category.clone(),
            format,
            page: 1,
            content: bantin::feed::Content::Full,
        };
        bench_miss(&mut g, &rt, &app, format!("{format:?}"), key);
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(40);
    targets = render_benches, miss_benches
}
criterion_main!(benches);
