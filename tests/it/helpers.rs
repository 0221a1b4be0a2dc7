//! Test helpers: start bantin on port 0 with a temporary store, fetch and parse feeds strictly.

use std::path::PathBuf;
use std::time::Duration;

use bantin::config::Config;
use bantin::server::Server;

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn site_toml() -> PathBuf {
    manifest_dir().join("feeds/site.toml")
}

pub fn sample_articles() -> PathBuf {
    manifest_dir().join("feeds/articles")
}

/// When a test server's clock starts unless the test brings its own: after every fixture's date
/// (the sample articles and the tests' own), so what is published does not depend on today.
pub fn start() -> chrono::DateTime<chrono::Utc> {
    "2026-12-01T00:00:00Z".parse().unwrap()
}

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// How a test server is configured.
pub struct Options {
    pub articles_dir: Option<PathBuf>,
    pub items_per_feed: Option<usize>,
    pub tokens: Vec<String>,
    pub hubs: Vec<String>,
    pub purge_urls: Vec<String>,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    pub max_article_bytes: Option<usize>,
    pub max_batch_bytes: Option<usize>,
    /// `[server]` deadlines and bounds (tests shorten the timeouts to seconds).
    pub server: Option<bantin::config::ServerConfig>,
    /// Any further change to the configuration.
    pub tweak: Option<fn(&mut Config)>,
    /// The clock the server reads (visibility, cache freshness, readership days, the sources'
    /// schedule, hub leases): when `None`, real time's pace from [`start`].
    pub clock: Option<std::sync::Arc<dyn bantin::clock::Clock>>,
    /// Upstream feeds to poll (`[[sources]]`), and how (`[upstream]`).
    pub sources: Vec<bantin::config::SourceConfig>,
    pub upstream: Option<bantin::config::UpstreamConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            articles_dir: Some(sample_articles()),
            items_per_feed: None,
            tokens: vec![TOKEN.to_string()],
            hubs: vec![],
            purge_urls: vec![],
            database_url: None,
            public_url: None,
            max_article_bytes: None,
            max_batch_bytes: None,
            server: None,
            tweak: None,
            clock: None,
            sources: vec![],
            upstream: None,
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub server: Server,
    /// The server's clock (what is published yet, readership days, leases).
    pub clock: std::sync::Arc<dyn bantin::clock::Clock>,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub fn config(opts: &Options, db_url: &str) -> Config {
    let mut c = Config::load_with_env(&site_toml(), |k| match k {
        "BANTIN_LISTEN" => Some("127.0.0.1:0".into()),
        "BANTIN_DATABASE_URL" => Some(db_url.to_string()),
        "BANTIN_PUBLIC_URL" => opts.public_url.clone(),
        _ => None,
    })
    .expect("the shipped site.toml loads");
    c.articles_dir = opts.articles_dir.clone();
    if let Some(n) = opts.items_per_feed {
        c.items_per_feed = n;
    }
    c.api.tokens = opts.tokens.clone();
    c.hubs = opts
        .hubs
        .iter()
        .map(|h| url::Url::parse(h).unwrap())
        .collect();
    c.purge_urls = opts
        .purge_urls
        .iter()
        .map(|h| url::Url::parse(h).unwrap())
        .collect();
    if let Some(n) = opts.max_article_bytes {
        c.api.max_article_bytes = n;
    }
    if let Some(n) = opts.max_batch_bytes {
        c.api.max_batch_bytes = n;
    }
    if let Some(s) = &opts.server {
        c.server = s.clone();
    }

    c.sources = opts.sources.clone();
    if let Some(u) = &opts.upstream {
        c.upstream = u.clone();
    }
    if let Some(tweak) = opts.tweak {
        tweak(&mut c);
    }
    c
}

pub fn client() -> reqwest::Client {
    bantin::outbox::install_tls_provider();
    reqwest::Client::builder()
        // The tests look at the encodings bantin chose; reqwest would otherwise decode gzip and
        // br itself (bantin's upstream fetcher enables those features) and hide them.
        .no_gzip()
        .no_brotli()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn spawn(opts: Options) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("data/bantin.db");
    let db_url = opts
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", db_path.display()));
    let clock = opts
        .clock
        .clone()
        .unwrap_or_else(|| std::sync::Arc::new(bantin::clock::ShiftedClock::starting_at(start())));
    let server = bantin::server::start_with_clock(config(&opts, &db_url), clock.clone())
        .await
        .expect("bantin starts");
    let base = format!("http://{}", server.addr);
    TestApp {
        base,
        server,
        clock,
        client: client(),
        _dir: dir,
    }
}

pub async fn spawn_default() -> TestApp {
    spawn(Options::default()).await
}

impl TestApp {
    /// The server's time.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_text(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.unwrap()
    }

    /// GET with the test token.
    pub async fn get_with_token(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// `/api/v1/stats?days=N`, which must answer 200 and never be cached.
    pub async fn stats(&self, days: u32) -> serde_json::Value {
        let r = self
            .get_with_token(&format!("/api/v1/stats?days={days}"))
            .await;
        assert_eq!(r.status(), 200);
        // Readership figures are the newsroom's: no shared or browser cache keeps them.
        assert_eq!(r.headers()["cache-control"], "private, no-store");
        r.json().await.unwrap()
    }

    /// PUT an article JSON through the API with the test token.
    pub async fn put(&self, id: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .put(self.url(&format!("/api/v1/articles/{id}")))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// Every character is allowed by XML 1.0.
pub fn assert_xml_chars(body: &str, what: &str) {
    if let Some(c) = body.chars().find(|&c| !bantin::text::is_xml_char(c)) {
        panic!("{what}: XML-illegal character {c:?}");
    }
}

/// Parses XML strictly (roxmltree rejects any well-formedness error) after checking characters.
pub fn strict_xml<'a>(body: &'a str, what: &str) -> roxmltree::Document<'a> {
    assert_xml_chars(body, what);
    roxmltree::Document::parse(body).unwrap_or_else(|e| {
        panic!(
            "{what}: not well-formed XML: {e}\n{}",
            &body[..body.len().min(2000)]
        )
    })
}

pub fn feed_rs(body: &[u8], what: &str) -> feed_rs::model::Feed {
    feed_rs::parser::parse(body).unwrap_or_else(|e| panic!("{what}: feed-rs cannot read it: {e}"))
}

/// All feed paths of the OPML, in the three formats.
pub async fn all_feed_paths(app: &TestApp) -> Vec<String> {
    let opml = app.get_text("/feeds.opml").await;
    let doc = strict_xml(&opml, "feeds.opml");
    let mut out = Vec::new();
    for n in doc.descendants().filter(|n| n.has_tag_name("outline")) {
        if let Some(url) = n.attribute("xmlUrl") {
            let path = url
                .strip_prefix(app.base.as_str())
                .expect("OPML URLs are on the public base")
                .to_string();
            for f in ["rss.xml", "atom.xml", "feed.json"] {
                out.push(path.replace("rss.xml", f));
            }
        }
    }
    out
}

pub fn read_corpus() -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(sample_articles()).unwrap() {
        let p = entry.unwrap().path();
        match p.extension().and_then(|e| e.to_str()) {
            Some("json") => {
                out.push(serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap())
            }
            Some("ndjson") => {
                for line in std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                {
                    out.push(serde_json::from_str(line).unwrap());
                }
            }
            _ => {}
        }
    }
    out
}

/// An article JSON for API tests.
pub fn article(id: &str, lang: &str, category: &str, published_at: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "lang": lang, "category": category,
        "title": format!("Bài thử {id}"), "summary": "Tóm tắt bài thử.",
        "content_html": "<p>Nội dung <a href=\"/vi/lien-quan\">liên quan</a></p>",
        "url": format!("https://baolongan.example/{lang}/{category}/{id}"),
        "author": "Phóng viên Thử", "published_at": published_at,
        "tags": ["bài thử"], "status": "published"
    })
}

/// Waits (polling, at most 20 s) until `what` holds: for an event a test cannot subscribe to,
/// such as a failed delivery counted in the metrics.
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Failed deliveries of `family` (`cdn_purges` or `websub_pings`) counted so far.
pub fn failed(
    family: &prometheus_client::metrics::family::Family<
        bantin::metrics::ResultLabel,
        prometheus_client::metrics::counter::Counter,
    >,
) -> u64 {
    family
        .get_or_create(&bantin::metrics::ResultLabel { result: "error" })
        .get()
}
