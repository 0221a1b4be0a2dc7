//! SQLite store: the embedded default (a file under `data/`, WAL mode).
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool. One writer connection
//! behind a mutex serialises writes in this process (SQLite allows one writer anyway; the busy
//! timeout covers a concurrent `bantin import`), and a bounded pool of reader connections lets
//! feed misses run in parallel with each other and with writes, which WAL permits.
//!
//! The readers are bounded ([`PoolBounds`]: twice the HTTP workers): a read first waits, off the
//! blocking pool, for one of that many permits, up to [`PoolBounds::wait`], and only then takes
//! an idle reader or opens one, so the connections never outnumber the permits and a burst of
//! misses queues (then fails as *unavailable*) instead of opening a descriptor pair each. Idle
//! readers are taken newest first, so the oldest age out: a task closes those unused for
//! [`PoolBounds::idle`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::pool::PoolBounds;
use super::readership::{
    self, Claim, ClosedDay, DayTotals, Existing, ImpoliteSum, Overflow, PartnerPolls, ReaderSketch,
    ReadershipBatch, StoredTotals, WindowRows, count, day_text, parse_day, stored,
};
use super::sql::{self, Dialect, FeedFilter};
use super::subscriptions::{self as subs, Finished, Outcome, Subscription};
use super::upstream::{SourceState, millis};
use super::{
    Facet, FacetBound, MAX_FACET_NAME_CHARS, MAX_FACET_SLUG_BYTES, PageQuery, Store, StoreError,
    Upsert, decide, from_doc, from_doc_bytes, to_doc,
};
use crate::article::{Article, Status};
use crate::model::FeedKey;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_articles.sql")),
    (2, include_str!("migrations/sqlite/0002_sources.sql")),
    (3, include_str!("migrations/sqlite/0003_readership.sql")),
    (
        4,
        include_str!("migrations/sqlite/0004_readership_bounded.sql"),
    ),
    (5, include_str!("migrations/sqlite/0005_subscriptions.sql")),
];

/// How long a statement waits for a lock held by another connection or process before the store
/// reports itself unavailable. Short, so a stuck lock turns into a fast 503, not a hung poller.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Readers,
    bounds: PoolBounds,
}

/// The bounded reader pool.
struct Readers {
    /// One per reader that may exist; a read holds one from before it takes a connection
    /// until after it gives it back.
    permits: Arc<tokio::sync::Semaphore>,
    /// Readers not in use, with when each was last given back (the newest last).
    idle: Mutex<Vec<(Connection, Instant)>>,
    /// Readers open, in use or idle.
    open: AtomicUsize,
}

impl Readers {
    fn new(max: usize) -> Readers {
        Readers {
            permits: Arc::new(tokio::sync::Semaphore::new(max)),
            idle: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
        }
    }

    /// An idle reader, or a new one. The caller holds a permit, so this never exceeds the bound.
    fn take(&self, path: &Path) -> Result<Reader<'_>, StoreError> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some((c, _)) => c,
            None => {
                let c = open_connection(path)?;
                self.open.fetch_add(1, Ordering::Relaxed);
                c
            }
        };
        Ok(Reader {
            conn: Some(conn),
            pool: self,
        })
    }

    /// Closes the readers idle for `idle` or longer; returns how many.
    fn close_idle(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let expired: Vec<(Connection, Instant)> = {
            let mut list = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let keep = list
                .iter()
                .position(|(_, at)| now.duration_since(*at) < idle)
                .unwrap_or(list.len());
            list.drain(..keep).collect()
        };
        self.open.fetch_sub(expired.len(), Ordering::Relaxed);
        // Closed outside the lock: a close may touch the files.
        expired.len()
    }
}

/// A reader in use: back to the pool when the read succeeded, closed otherwise (it may be
/// broken), also when the read panicked.
struct Reader<'a> {
    conn: Option<Connection>,
    pool: &'a Readers,
}

impl Reader<'_> {
    fn give_back(mut self) {
        if let Some(c) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((c, Instant::now()));
        }
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if self.conn.take().is_some() {
            self.pool.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(code) if super::sqlite_code_is_unavailable(code) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(unavailable)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
    conn.execute_batch(
        // The page size only takes effect on a new database (before its first table). Rows carry
        // a whole article (kilobytes): with 4 KB pages most would hold one row and half a page of
        // nothing; 16 KB pages hold several.
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )
    .map_err(unavailable)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(unavailable)?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        .map_err(unavailable)?;
    for (version, sql) in MIGRATIONS {
        let done: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [version],
                |r| r.get(0),
            )
            .map_err(unavailable)?;
        if !done {
            tx.execute_batch(sql)
                .map_err(|e| StoreError::Backend(format!("migration {version}: {e}")))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                params![version, Utc::now().to_rfc3339()],
            )
            .map_err(unavailable)?;
        }
    }
    tx.commit().map_err(unavailable)
}

fn secs(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn instant(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or_default()
}

fn page_rows(conn: &Connection, q: &PageQuery<'_>) -> Result<Vec<Article>, StoreError> {
    let f = FeedFilter::new(q.feed, Dialect::Sqlite);
    let mut values: Vec<Value> = f.args.iter().cloned().map(Value::Text).collect();
    // Times are bound as integers so SQLite compares them numerically, on the index.
    values.push(Value::Integer(secs(q.now)));
    let t = values.len();
    let from_boundary = q.offset > 0;
    if from_boundary {
        // Find the first row of the page with an index-only skip, then read rows by keyset.
        let first: Option<(i64, String)> = conn
            .prepare_cached(&f.boundary_sql(q.offset))
            .map_err(unavailable)?
            .query_row(params_from_iter(values.iter()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(unavailable)?;
        let Some((bp, bid)) = first else {
            return Ok(Vec::new());
        };
        values[t - 1] = Value::Integer(bp);
        values.push(Value::Text(bid));
    }
    let sql = f.page_sql(from_boundary, q.limit);
    let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
    let mut rows = stmt
        .query(params_from_iter(values.iter()))
        .map_err(unavailable)?;
    let mut out = Vec::with_capacity(q.limit);
    // The raw bytes go straight to the JSON parser, which checks UTF-8 as it reads strings;
    // taking a `String` first would validate the whole document a second time.
    while let Some(row) = rows.next().map_err(unavailable)? {
        let doc = row
            .get_ref(0)
            .map_err(unavailable)?
            .as_bytes()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        out.push(from_doc_bytes(doc)?);
    }
    Ok(out)
}

fn write_article(conn: &Connection, a: &Article) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO articles (id, lang, category, author_slug, status, published_at, updated_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET lang = excluded.lang, category = excluded.category,
           author_slug = excluded.author_slug, status = excluded.status,
           published_at = excluded.published_at, updated_at = excluded.updated_at, doc = excluded.doc",
        params![a.id, a.lang, a.category, a.author_slug(), a.status.as_str(), secs(a.published_at), secs(a.updated_at), to_doc(a)],
    )
    .map_err(unavailable)?;
    conn.execute("DELETE FROM article_tags WHERE article_id = ?1", [&a.id])
        .map_err(unavailable)?;
    if a.status == Status::Published {
        let mut stmt = conn
            .prepare_cached("INSERT INTO article_tags (article_id, lang, tag_slug, tag, published_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(unavailable)?;
        for (tag, slug) in a.tags.iter().zip(a.tag_slugs()) {
            stmt.execute(params![a.id, a.lang, slug, tag, secs(a.published_at)])
                .map_err(unavailable)?;
        }
    }
    Ok(())
}

fn read_one(conn: &Connection, id: &str) -> Result<Option<Article>, StoreError> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM articles WHERE id = ?1")
        .map_err(unavailable)?
        .query_row([id], |r| r.get(0))
        .optional()
        .map_err(unavailable)?;
    doc.map(|d| from_doc(&d)).transpose()
}

fn upsert_one(conn: &Connection, a: &Article) -> Result<Upsert, StoreError> {
    let existing = read_one(conn, &a.id)?;
    let outcome = decide(existing.as_ref(), a);
    if matches!(outcome, Upsert::Created | Upsert::Updated { .. }) {
        write_article(conn, a)?;
    }
    Ok(outcome)
}

/// `col + add` saturating at `i64::MAX` (both are non-negative: no write stores a negative count).
fn sat(col: &str, add: &str) -> String {
    Dialect::Sqlite.saturating_add(col, add)
}

fn add_readership(conn: &Connection, b: &ReadershipBatch) -> Result<(), StoreError> {
    // The day totals first, in (day, feed) order: every feed-day the flush touches has one.
    let days = b.feed_days();
    let mut stmt = conn
        .prepare_cached(&sql::READERSHIP_DAYS.sql(Dialect::Sqlite))
        .map_err(unavailable)?;
    for t in &days {
        stmt.execute(params![
            day_text(t.day),
            t.feed,
            stored(t.polls),
            stored(t.not_modified),
            stored(t.bytes)
        ])
        .map_err(unavailable)?;
    }

    // What is stored for the feed-days that need it, then the plan.
    let mut existing = Existing::default();
    let keys = |it: &mut dyn Iterator<Item = (chrono::NaiveDate, &str)>| {
        it.map(|(d, f)| (d, f.to_string()))
            .collect::<std::collections::BTreeSet<_>>()
    };
    let mut stmt = conn
        .prepare_cached(
            "SELECT family, sketch FROM readership_sketches WHERE feed = ?1 AND day = ?2",
        )
        .map_err(unavailable)?;
    for (day, feed) in keys(&mut b.sketches.iter().map(|s| (s.day, s.feed.as_str()))) {
        let rows = stmt
            .query_map(params![feed, day_text(day)], |r| {
                Ok(ReaderSketch {
                    day,
                    feed: feed.clone(),
                    family: r.get(0)?,
                    sketch: r.get(1)?,
                })
            })
            .map_err(unavailable)?;
        for r in rows {
            existing.sketches.push(r.map_err(unavailable)?);
        }
    }
    let mut stmt = conn
        .prepare_cached("SELECT aggregator, network, subscribers, first_seen, last_seen, verdict FROM readership_claims WHERE feed = ?1 AND day = ?2")
        .map_err(unavailable)?;
    for (day, feed) in keys(&mut b.claims.iter().map(|c| (c.day, c.feed.as_str()))) {
        let rows = stmt
            .query_map(params![feed, day_text(day)], |r| {
                Ok(Claim {
                    day,
                    feed: feed.clone(),
                    aggregator: r.get(0)?,
                    network: r.get(1)?,
                    subscribers: count(r.get(2)?),
                    first_seen: r.get(3)?,
                    last_seen: r.get(4)?,
                    verdict: r.get(5)?,
                })
            })
            .map_err(unavailable)?;
        for r in rows {
            existing.claims.push(r.map_err(unavailable)?);
        }
    }
    let mut stmt = conn
        .prepare_cached("SELECT user_agent FROM readership_impolite WHERE day = ?1 AND feed = ?2")
        .map_err(unavailable)?;
    for (day, feed) in keys(&mut b.impolite.iter().map(|i| (i.day, i.feed.as_str()))) {
        let rows = stmt
            .query_map(params![day_text(day), feed], |r| r.get::<_, String>(0))
            .map_err(unavailable)?;
        for r in rows {
            existing
                .impolite
                .push((day, feed.clone(), r.map_err(unavailable)?));
        }
    }
    let plan = readership::plan(b, existing);

    let mut stmt = conn
        .prepare_cached(&sql::READERSHIP_SKETCHES.sql(Dialect::Sqlite))
        .map_err(unavailable)?;
    for s in &plan.sketches {
        stmt.execute(params![s.feed, day_text(s.day), s.family, s.sketch])
            .map_err(unavailable)?;
    }
    let mut stmt = conn
        .prepare_cached(&sql::READERSHIP_CLAIMS.sql(Dialect::Sqlite))
        .map_err(unavailable)?;
    for c in &plan.claims {
        stmt.execute(params![
            c.feed,
            day_text(c.day),
            c.aggregator,
            c.network,
            stored(c.subscribers),
            c.first_seen,
            c.last_seen,
            c.verdict
        ])
        .map_err(unavailable)?;
    }
    let mut stmt = conn
        .prepare_cached(&sql::READERSHIP_PARTNERS.sql(Dialect::Sqlite))
        .map_err(unavailable)?;
    for p in &b.partners {
        stmt.execute(params![day_text(p.day), p.feed, p.partner, stored(p.polls)])
            .map_err(unavailable)?;
    }
    let mut stmt = conn
        .prepare_cached(&sql::READERSHIP_IMPOLITE.sql(Dialect::Sqlite))
        .map_err(unavailable)?;
    for i in &plan.impolite {
        stmt.execute(params![
            day_text(i.day),
            i.feed,
            i.user_agent,
            stored(i.unconditional),
            stored(i.too_soon)
        ])
        .map_err(unavailable)?;
    }
    let mut stmt = conn
        .prepare_cached(&format!(
            "UPDATE readership_days SET readers_folded = {}, claims_dropped = {} WHERE day = ?1 AND feed = ?2",
            sat("readers_folded", "?3"),
            sat("claims_dropped", "?4")
        ))
        .map_err(unavailable)?;
    for (day, feed, o) in &plan.overflow {
        stmt.execute(params![
            day_text(*day),
            feed,
            stored(o.readers_folded),
            stored(o.claims_dropped)
        ])
        .map_err(unavailable)?;
    }
    Ok(())
}

fn day_of(s: String) -> rusqlite::Result<chrono::NaiveDate> {
    parse_day(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("bad day `{s}`").into(),
        )
    })
}

const TOTALS_COLUMNS: &str =
    "day, feed, polls, not_modified, bytes, subscribers, clients, readers_folded, claims_dropped";

fn totals_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredTotals> {
    let subs: Option<i64> = r.get(5)?;
    let clients: Option<String> = r.get(6)?;
    Ok(StoredTotals {
        totals: DayTotals {
            day: day_of(r.get(0)?)?,
            feed: r.get(1)?,
            polls: count(r.get(2)?),
            not_modified: count(r.get(3)?),
            bytes: count(r.get(4)?),
        },
        closed: subs.map(|s| (count(s), clients.unwrap_or_else(|| "[]".into()))),
        overflow: Overflow {
            readers_folded: count(r.get(7)?),
            claims_dropped: count(r.get(8)?),
        },
    })
}

fn read_window(
    conn: &Connection,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    after: Option<&str>,
    feeds: usize,
) -> Result<WindowRows, StoreError> {
    let (f, t) = (day_text(from), day_text(to));
    let mut rows = WindowRows::default();
    let mut stmt = conn
        .prepare_cached("SELECT DISTINCT feed FROM readership_days WHERE feed > ?1 AND day BETWEEN ?2 AND ?3 ORDER BY feed LIMIT ?4")
        .map_err(unavailable)?;
    rows.feeds = stmt
        .query_map(params![after.unwrap_or(""), f, t, feeds as i64], |r| {
            r.get(0)
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let (Some(first), Some(last)) = (rows.feeds.first().cloned(), rows.feeds.last().cloned())
    else {
        return Ok(rows);
    };
    // The page's feeds are consecutive in feed order, so a range of feeds selects exactly them.
    let range = params![first, last, f, t];
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {TOTALS_COLUMNS} FROM readership_days WHERE feed BETWEEN ?1 AND ?2 AND day BETWEEN ?3 AND ?4"))
        .map_err(unavailable)?;
    rows.totals = stmt
        .query_map(range, totals_row)
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let mut stmt = conn
        .prepare_cached("SELECT feed, day, family, sketch FROM readership_sketches WHERE feed BETWEEN ?1 AND ?2 AND day BETWEEN ?3 AND ?4")
        .map_err(unavailable)?;
    rows.sketches = stmt
        .query_map(range, |r| {
            Ok(ReaderSketch {
                feed: r.get(0)?,
                day: day_of(r.get(1)?)?,
                family: r.get(2)?,
                sketch: r.get(3)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let mut stmt = conn
        .prepare_cached("SELECT feed, day, aggregator, network, subscribers, first_seen, last_seen, verdict FROM readership_claims WHERE feed BETWEEN ?1 AND ?2 AND day BETWEEN ?3 AND ?4")
        .map_err(unavailable)?;
    rows.claims = stmt
        .query_map(range, |r| {
            Ok(Claim {
                feed: r.get(0)?,
                day: day_of(r.get(1)?)?,
                aggregator: r.get(2)?,
                network: r.get(3)?,
                subscribers: count(r.get(4)?),
                first_seen: r.get(5)?,
                last_seen: r.get(6)?,
                verdict: r.get(7)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let mut stmt = conn
        .prepare_cached("SELECT feed, day, partner, polls FROM readership_partners WHERE feed BETWEEN ?1 AND ?2 AND day BETWEEN ?3 AND ?4")
        .map_err(unavailable)?;
    rows.partners = stmt
        .query_map(range, |r| {
            Ok(PartnerPolls {
                feed: r.get(0)?,
                day: day_of(r.get(1)?)?,
                partner: r.get(2)?,
                polls: count(r.get(3)?),
            })
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    Ok(rows)
}

/// The columns of a subscription row, in the order [`subscription_row`] reads them.
const SUBSCRIPTION_COLUMNS: &str = "topic, callback, host, secret, lease_seconds, expires_at, created_at, updates, delivered, attempts, next_attempt, claimed_until, last_attempt, last_success, last_error";

fn subscription_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subscription> {
    let at = |v: Option<i64>| v.map(subs::instant);
    Ok(Subscription {
        topic: r.get(0)?,
        callback: r.get(1)?,
        host: r.get(2)?,
        secret: r.get(3)?,
        lease_seconds: r.get::<_, i64>(4)?.max(0) as u64,
        expires_at: subs::instant(r.get(5)?),
        created_at: subs::instant(r.get(6)?),
        updates: r.get(7)?,
        delivered: r.get(8)?,
        attempts: r.get::<_, i64>(9)?.clamp(0, u32::MAX as i64) as u32,
        next_attempt: subs::instant(r.get(10)?),
        claimed_until: subs::instant(r.get(11)?),
        last_attempt: at(r.get(12)?),
        last_success: at(r.get(13)?),
        last_error: r.get(14)?,
    })
}

/// `?n, ?n+1, …` for `count` parameters starting at `first`.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Topics marked per statement (SQLite binds at most 32,766 parameters).
const MARK_CHUNK: usize = 500;

fn finish_one(conn: &Connection, f: &Finished) -> Result<usize, StoreError> {
    let (c, at) = (&f.claim, millis(f.at));
    let n = match &f.outcome {
        Outcome::Delivered => conn
            .prepare_cached(
                "UPDATE subscriptions SET delivered = MAX(delivered, ?4), attempts = 0, claimed_until = 0,
                   next_attempt = ?5, last_attempt = ?5, last_success = ?5, last_error = NULL
                 WHERE topic = ?1 AND callback = ?2 AND claimed_until = ?3",
            )
            .and_then(|mut st| {
                st.execute(params![c.topic, c.callback, millis(c.claimed_until), c.updates, at])
            }),
        Outcome::Failed { error, retry_at } => conn
            .prepare_cached(
                "UPDATE subscriptions SET attempts = attempts + 1, claimed_until = 0, next_attempt = ?4,
                   last_attempt = ?5, last_error = ?6
                 WHERE topic = ?1 AND callback = ?2 AND claimed_until = ?3",
            )
            .and_then(|mut st| {
                st.execute(params![
                    c.topic,
                    c.callback,
                    millis(c.claimed_until),
                    millis(*retry_at),
                    at,
                    subs::clip_error(error)
                ])
            }),
        Outcome::Released => conn
            .prepare_cached(
                "UPDATE subscriptions SET claimed_until = 0 WHERE topic = ?1 AND callback = ?2 AND claimed_until = ?3",
            )
            .and_then(|mut st| st.execute(params![c.topic, c.callback, millis(c.claimed_until)])),
        Outcome::Gone => conn
            .prepare_cached(
                "DELETE FROM subscriptions WHERE topic = ?1 AND callback = ?2 AND claimed_until = ?3",
            )
            .and_then(|mut st| st.execute(params![c.topic, c.callback, millis(c.claimed_until)])),
    };
    n.map_err(unavailable)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs pending migrations, with the
    /// default pool bounds.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, PoolBounds::default()).await
    }

    /// [`SqliteStore::open`] with at most `bounds.readers` reader connections.
    pub async fn open_with(path: &Path, bounds: PoolBounds) -> Result<SqliteStore, StoreError> {
        Self::open_capped(path, None, bounds).await
    }

    /// [`SqliteStore::open_with`], with the database held to `max_bytes`
    /// (`sqlite://PATH?max_bytes=N`): past it a write fails as on a full disk (`SQLITE_FULL`,
    /// answered 503 with `Retry-After`) and rolls back whole, while reads go on. A cap below the
    /// present size holds it there.
    pub async fn open_capped(
        path: &Path,
        max_bytes: Option<u64>,
        bounds: PoolBounds,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let store = tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut writer = open_connection(&path)?;
            migrate(&mut writer)?;
            if let Some(max) = max_bytes {
                // Only the writer grows the file; the limit is per connection, not stored.
                let page: i64 = writer
                    .query_row("PRAGMA page_size", [], |r| r.get(0))
                    .map_err(unavailable)?;
                let page = page.max(1) as u64;
                writer
                    .query_row(
                        &format!("PRAGMA max_page_count = {}", (max / page).max(1)),
                        [],
                        |_| Ok(()),
                    )
                    .map_err(unavailable)?;
            }
            Ok::<_, StoreError>(SqliteStore {
                inner: Arc::new(Inner {
                    path,
                    writer: Mutex::new(writer),
                    readers: Readers::new(bounds.readers.max(1)),
                    bounds,
                }),
            })
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
        let weak = Arc::downgrade(&store.inner);
        bounds.close_idle_every(
            move || weak.upgrade(),
            |inner, idle| async move {
                let _ = tokio::task::spawn_blocking(move || inner.readers.close_idle(idle)).await;
            },
        );
        Ok(store)
    }

    /// Reader connections open now (in use or idle).
    pub fn open_readers(&self) -> usize {
        self.inner.readers.open.load(Ordering::Relaxed)
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let inner = self.inner.clone();
        let wait = inner.bounds.wait;
        // Waiting happens here, on the caller's task, not on a blocking thread.
        let permit = tokio::time::timeout(wait, inner.readers.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!(
                    "no database reader came free within {} (all {} busy)",
                    humantime::format_duration(wait),
                    inner.bounds.readers
                ))
            })?
            .map_err(|_| StoreError::Backend("the reader pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let reader = inner.readers.take(&inner.path)?;
            let conn = reader
                .conn
                .as_ref()
                .expect("a reader taken holds its connection");
            let result = f(conn);
            if result.is_ok() {
                reader.give_back();
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn max_descriptors(&self) -> usize {
        self.inner.bounds.sqlite_descriptors()
    }

    async fn upsert(&self, article: &Article) -> Result<Upsert, StoreError> {
        let a = article.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let outcome = upsert_one(&tx, &a)?;
            tx.commit().map_err(unavailable)?;
            Ok(outcome)
        })
        .await
    }

    async fn upsert_batch(&self, articles: &[Article]) -> Result<Vec<Upsert>, StoreError> {
        let all = articles.to_vec();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let outcomes = all
                .iter()
                .map(|a| upsert_one(&tx, a))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit().map_err(unavailable)?;
            Ok(outcomes)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<Article>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| read_one(conn, &id)).await
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Article>, StoreError> {
        let ids = ids.to_vec();
        self.read(move |conn| {
            let mut out = Vec::new();
            for id in &ids {
                out.extend(read_one(conn, id)?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete(&self, id: &str) -> Result<Option<Article>, StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let existing = read_one(&tx, &id)?;
            if existing.is_some() {
                tx.execute("DELETE FROM article_tags WHERE article_id = ?1", [&id])
                    .map_err(unavailable)?;
                tx.execute("DELETE FROM articles WHERE id = ?1", [&id])
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)?;
            Ok(existing)
        })
        .await
    }

    async fn page(&self, query: &PageQuery<'_>) -> Result<Vec<Article>, StoreError> {
        let feed = query.feed.clone();
        let (now, offset, limit) = (query.now, query.offset, query.limit);
        self.read(move |conn| {
            page_rows(
                conn,
                &PageQuery {
                    feed: &feed,
                    now,
                    offset,
                    limit,
                },
            )
        })
        .await
    }

    async fn next_publication(
        &self,
        feed: &FeedKey,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let feed = feed.clone();
        self.read(move |conn| {
            let f = FeedFilter::new(&feed, Dialect::Sqlite);
            let sql = f.next_publication_sql();
            let mut values: Vec<Value> = f.args.into_iter().map(Value::Text).collect();
            values.push(Value::Integer(secs(now)));
            let next: Option<i64> = conn
                .prepare_cached(&sql)
                .map_err(unavailable)?
                .query_row(params_from_iter(values), |r| r.get(0))
                .optional()
                .map_err(unavailable)?;
            Ok(next.map(instant))
        })
        .await
    }

    async fn count_visible(&self, feed: &FeedKey, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let feed = feed.clone();
        self.read(move |conn| {
            let f = FeedFilter::new(&feed, Dialect::Sqlite);
            let sql = f.count_sql();
            let mut values: Vec<Value> = f.args.into_iter().map(Value::Text).collect();
            values.push(Value::Integer(secs(now)));
            let count: i64 = conn
                .prepare_cached(&sql)
                .map_err(unavailable)?
                .query_row(params_from_iter(values), |r| r.get(0))
                .map_err(unavailable)?;
            Ok(count.max(0) as u64)
        })
        .await
    }

    async fn facets(
        &self,
        now: DateTime<Utc>,
        bound: FacetBound,
    ) -> Result<(Vec<Facet>, Vec<Facet>), StoreError> {
        self.read(move |conn| {
            let params = rusqlite::params![
                secs(now),
                bound.sql_min(),
                bound.sql_limit(),
                MAX_FACET_NAME_CHARS as i64,
                MAX_FACET_SLUG_BYTES as i64
            ];
            let facet = |r: &rusqlite::Row<'_>| {
                Ok(Facet {
                    lang: r.get(0)?,
                    slug: r.get(1)?,
                    name: r.get(2)?,
                    count: r.get::<_, i64>(3)? as u64,
                })
            };
            // The most used first to apply the limit (SQLite keeps only `limit` rows while
            // sorting), then in the listing's order.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT lang, slug, name, n FROM (
                       SELECT lang, tag_slug AS slug, substr(MIN(tag), 1, ?4) AS name, COUNT(*) AS n
                       FROM article_tags WHERE published_at <= ?1 AND length(tag_slug) <= ?5
                       GROUP BY lang, tag_slug HAVING COUNT(*) >= ?2
                       ORDER BY n DESC, lang, tag_slug LIMIT ?3)
                     ORDER BY lang, slug",
                )
                .map_err(unavailable)?;
            let tags = stmt
                .query_map(params, facet)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT lang, slug, name, n FROM (
                       SELECT lang, author_slug AS slug,
                              substr(MIN(json_extract(doc, '$.author')), 1, ?4) AS name, COUNT(*) AS n
                       FROM articles
                       WHERE status = 'published' AND published_at <= ?1 AND author_slug <> ''
                         AND length(author_slug) <= ?5
                       GROUP BY lang, author_slug HAVING COUNT(*) >= ?2
                       ORDER BY n DESC, lang, author_slug LIMIT ?3)
                     ORDER BY lang, slug",
                )
                .map_err(unavailable)?;
            let authors = stmt
                .query_map(params, facet)
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok((tags, authors))
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM articles", [], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(unavailable)
        })
        .await
    }

    async fn source_states(&self) -> Result<Vec<SourceState>, StoreError> {
        self.read(|conn| {
            let mut st = conn
                .prepare_cached("SELECT doc, next_poll FROM sources ORDER BY id")
                .map_err(unavailable)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            rows.iter()
                .map(|(d, next)| SourceState::from_row(d, *next))
                .collect()
        })
        .await
    }

    async fn add_source(&self, state: &SourceState) -> Result<bool, StoreError> {
        let (id, next, doc) = (state.id.clone(), millis(state.next_poll), state.to_doc());
        self.write(move |conn| {
            let n = conn
                .execute(
                    "INSERT INTO sources (id, next_poll, doc) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING",
                    params![id, next, doc],
                )
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    async fn claim_source(
        &self,
        id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SourceState>, StoreError> {
        let (id, now, until) = (id.to_string(), millis(now), millis(until));
        self.write(move |conn| {
            let doc: Option<String> = conn
                .query_row(
                    "UPDATE sources SET next_poll = ?1 WHERE id = ?2 AND next_poll <= ?3 RETURNING doc",
                    params![until, id, now],
                    |r| r.get(0),
                )
                .optional()
                .map_err(unavailable)?;
            doc.map(|d| SourceState::from_doc(&d)).transpose()
        })
        .await
    }

    async fn save_source(&self, state: &SourceState) -> Result<(), StoreError> {
        let (id, next, doc) = (state.id.clone(), millis(state.next_poll), state.to_doc());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO sources (id, next_poll, doc) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET next_poll = excluded.next_poll, doc = excluded.doc",
                params![id, next, doc],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn finish_source(
        &self,
        state: &SourceState,
        lease: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (id, next, doc) = (state.id.clone(), millis(state.next_poll), state.to_doc());
        let lease = millis(lease);
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE sources SET next_poll = ?1, doc = ?2 WHERE id = ?3 AND next_poll = ?4",
                    params![next, doc, id, lease],
                )
                .map_err(unavailable)?;
            Ok(n == 1)
        })
        .await
    }

    async fn save_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let s = sub.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO subscriptions (topic, callback, host, secret, lease_seconds, expires_at, created_at, next_attempt)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (topic, callback) DO UPDATE SET host = excluded.host, secret = excluded.secret,
                   lease_seconds = excluded.lease_seconds, expires_at = excluded.expires_at,
                   created_at = CASE WHEN subscriptions.expires_at <= excluded.created_at THEN excluded.created_at ELSE subscriptions.created_at END,
                   delivered = CASE WHEN subscriptions.expires_at <= excluded.created_at THEN subscriptions.updates ELSE subscriptions.delivered END,
                   attempts = CASE WHEN subscriptions.expires_at <= excluded.created_at THEN 0 ELSE subscriptions.attempts END",
                params![
                    s.topic,
                    s.callback,
                    s.host,
                    s.secret,
                    s.lease_seconds.min(i64::MAX as u64) as i64,
                    millis(s.expires_at),
                    millis(s.created_at)
                ],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn remove_subscription(&self, topic: &str, callback: &str) -> Result<bool, StoreError> {
        let (topic, callback) = (topic.to_string(), callback.to_string());
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM subscriptions WHERE topic = ?1 AND callback = ?2",
                params![topic, callback],
            )
            .map(|n| n == 1)
            .map_err(unavailable)
        })
        .await
    }

    async fn subscription(
        &self,
        topic: &str,
        callback: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        let (topic, callback) = (topic.to_string(), callback.to_string());
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE topic = ?1 AND callback = ?2"
            ))
            .map_err(unavailable)?
            .query_row(params![topic, callback], subscription_row)
            .optional()
            .map_err(unavailable)
        })
        .await
    }

    async fn subscriptions(&self, now: DateTime<Utc>) -> Result<Vec<Subscription>, StoreError> {
        let now = millis(now);
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE expires_at > ?1 ORDER BY topic, callback"
            ))
            .map_err(unavailable)?
            .query_map([now], subscription_row)
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)
        })
        .await
    }

    async fn count_subscriptions(
        &self,
        host: &str,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let (host, now) = (host.to_string(), millis(now));
        self.read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*), COALESCE(SUM(host = ?2), 0) FROM subscriptions WHERE expires_at > ?1",
                params![now, host],
                |r| Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, i64>(1)?.max(0) as u64)),
            )
            .map_err(unavailable)
        })
        .await
    }

    async fn subscription_hosts(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let now = millis(now);
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT topic, host, COUNT(*) FROM subscriptions WHERE expires_at > ?1
                 GROUP BY topic, host ORDER BY topic, host",
            )
            .map_err(unavailable)?
            .query_map([now], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64))
            })
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)
        })
        .await
    }

    async fn mark_published(
        &self,
        topics: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if topics.is_empty() {
            return Ok(0);
        }
        let (topics, now) = (topics.to_vec(), millis(now));
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let mut marked = 0u64;
            for chunk in topics.chunks(MARK_CHUNK) {
                let sql = format!(
                    "UPDATE subscriptions SET
                       attempts = CASE WHEN updates > delivered THEN attempts ELSE 0 END,
                       next_attempt = CASE WHEN updates > delivered THEN next_attempt ELSE ?1 END,
                       updates = updates + 1
                     WHERE expires_at > ?1 AND topic IN ({})",
                    placeholders(2, chunk.len())
                );
                let mut values: Vec<Value> = vec![Value::Integer(now)];
                values.extend(chunk.iter().map(|t| Value::Text(t.clone())));
                marked += tx
                    .prepare_cached(&sql)
                    .map_err(unavailable)?
                    .execute(params_from_iter(values))
                    .map_err(unavailable)? as u64;
            }
            tx.commit().map_err(unavailable)?;
            Ok(marked)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
        busy: &[String],
    ) -> Result<Vec<subs::Claim>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (now, until_ms, busy) = (millis(now), millis(until), busy.to_vec());
        self.write(move |conn| {
            let not_busy = if busy.is_empty() {
                String::new()
            } else {
                format!(" AND host NOT IN ({})", placeholders(4, busy.len()))
            };
            let sql = format!(
                "UPDATE subscriptions SET claimed_until = ?1 WHERE rowid IN (
                   SELECT rowid FROM subscriptions
                   WHERE updates > delivered AND next_attempt <= ?2 AND claimed_until <= ?2 AND expires_at > ?2{not_busy}
                   ORDER BY next_attempt LIMIT ?3)
                 RETURNING topic, callback, host, secret, updates, attempts"
            );
            let mut values: Vec<Value> = vec![
                Value::Integer(until_ms),
                Value::Integer(now),
                Value::Integer(limit.min(i64::MAX as usize) as i64),
            ];
            values.extend(busy.into_iter().map(Value::Text));
            let mut st = conn.prepare_cached(&sql).map_err(unavailable)?;
            let rows = st
                .query_map(params_from_iter(values), |r| {
                    Ok(subs::Claim {
                        topic: r.get(0)?,
                        callback: r.get(1)?,
                        host: r.get(2)?,
                        secret: r.get(3)?,
                        updates: r.get(4)?,
                        attempts: r.get::<_, i64>(5)?.clamp(0, u32::MAX as i64) as u32,
                        claimed_until: until,
                    })
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            Ok(rows)
        })
        .await
    }

    async fn finish_deliveries(&self, done: &[Finished]) -> Result<usize, StoreError> {
        if done.is_empty() {
            return Ok(0);
        }
        let done = done.to_vec();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let mut written = 0;
            for f in &done {
                written += finish_one(&tx, f)?;
            }
            tx.commit().map_err(unavailable)?;
            Ok(written)
        })
        .await
    }

    async fn next_delivery(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now = millis(now);
        self.read(move |conn| {
            let next: Option<i64> = conn
                .query_row(
                    "SELECT MIN(MAX(next_attempt, claimed_until)) FROM subscriptions
                     WHERE updates > delivered AND expires_at > ?1",
                    [now],
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            Ok(next.map(subs::instant))
        })
        .await
    }

    async fn purge_subscriptions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now = millis(now);
        self.write(move |conn| {
            conn.execute("DELETE FROM subscriptions WHERE expires_at <= ?1", [now])
                .map(|n| n as u64)
                .map_err(unavailable)
        })
        .await
    }

    async fn readership_secret(&self) -> Result<[u8; 16], StoreError> {
        self.write(|conn| {
            conn.execute(
                "INSERT INTO readership_secret (id, secret) VALUES (1, ?1) ON CONFLICT (id) DO NOTHING",
                [&super::random_secret()[..]],
            )
            .map_err(unavailable)?;
            let secret: Vec<u8> = conn
                .query_row("SELECT secret FROM readership_secret WHERE id = 1", [], |r| r.get(0))
                .map_err(unavailable)?;
            secret
                .try_into()
                .map_err(|_| StoreError::Backend("the readership secret is not 16 bytes".into()))
        })
        .await
    }

    async fn add_readership(&self, batch: &ReadershipBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let batch = batch.clone();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            add_readership(&tx, &batch)?;
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn readership_days(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        after: Option<(chrono::NaiveDate, String)>,
        limit: usize,
    ) -> Result<Vec<StoredTotals>, StoreError> {
        self.read(move |conn| {
            let (after_day, after_feed) = after
                .map(|(d, f)| (day_text(d), f))
                .unwrap_or_default();
            let mut stmt = conn
                .prepare_cached(&format!("SELECT {TOTALS_COLUMNS} FROM readership_days WHERE day BETWEEN ?1 AND ?2 AND (day, feed) > (?3, ?4) ORDER BY day, feed LIMIT ?5"))
                .map_err(unavailable)?;
            stmt.query_map(
                params![day_text(from), day_text(to), after_day, after_feed, limit as i64],
                totals_row,
            )
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)
        })
        .await
    }

    async fn readership_window(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        after: Option<String>,
        feeds: usize,
    ) -> Result<WindowRows, StoreError> {
        self.read(move |conn| {
            // One snapshot for the page's tables.
            conn.execute_batch("BEGIN").map_err(unavailable)?;
            let rows = read_window(conn, from, to, after.as_deref(), feeds);
            let _ = conn.execute_batch("COMMIT");
            rows
        })
        .await
    }

    async fn readership_impolite(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        limit: usize,
    ) -> Result<Vec<ImpoliteSum>, StoreError> {
        self.read(move |conn| {
            // total() is a float sum: it cannot fail on overflow, and the cast saturates it.
            let mut stmt = conn
                .prepare_cached(
                    "SELECT feed, user_agent, CAST(min(total(unconditional), 9.2e18) AS INTEGER) AS u,
                       CAST(min(total(too_soon), 9.2e18) AS INTEGER) AS s
                     FROM readership_impolite WHERE day BETWEEN ?1 AND ?2
                     GROUP BY feed, user_agent ORDER BY s DESC, feed, user_agent LIMIT ?3",
                )
                .map_err(unavailable)?;
            stmt.query_map(params![day_text(from), day_text(to), limit as i64], |r| {
                Ok(ImpoliteSum {
                    feed: r.get(0)?,
                    user_agent: r.get(1)?,
                    unconditional: count(r.get(2)?),
                    too_soon: count(r.get(3)?),
                })
            })
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)
        })
        .await
    }

    async fn open_readership_days(
        &self,
        before: chrono::NaiveDate,
    ) -> Result<Vec<chrono::NaiveDate>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT DISTINCT day FROM readership_days WHERE subscribers IS NULL AND day < ?1 ORDER BY day")
                .map_err(unavailable)?;
            stmt.query_map([day_text(before)], |r| day_of(r.get(0)?))
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)
        })
        .await
    }

    async fn close_readership_days(&self, days: &[ClosedDay]) -> Result<(), StoreError> {
        if days.is_empty() {
            return Ok(());
        }
        let days = days.to_vec();
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO readership_days (day, feed, subscribers, clients) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (day, feed) DO UPDATE SET subscribers = excluded.subscribers, clients = excluded.clients
                         WHERE readership_days.subscribers IS NULL",
                    )
                    .map_err(unavailable)?;
                for d in &days {
                    stmt.execute(params![day_text(d.day), d.feed, stored(d.subscribers), d.clients])
                        .map_err(unavailable)?;
                }
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn prune_readership(
        &self,
        window_before: chrono::NaiveDate,
        all_before: chrono::NaiveDate,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let (w, a) = (
                day_text(window_before.max(all_before)),
                day_text(all_before),
            );
            for table in ["readership_sketches", "readership_claims"] {
                tx.execute(&format!("DELETE FROM {table} WHERE day < ?1"), [&w])
                    .map_err(unavailable)?;
            }
            for table in [
                "readership_days",
                "readership_partners",
                "readership_impolite",
            ] {
                tx.execute(&format!("DELETE FROM {table} WHERE day < ?1"), [&a])
                    .map_err(unavailable)?;
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        // Reads a page of the schema table, so a lock held elsewhere or a vanished file shows.
        self.read(|conn| {
            conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |_| Ok(()))
                .map_err(unavailable)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_passes_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("data/bantin.db"))
            .await
            .unwrap();
        crate::store::contract::run_all(&store).await;
    }

    fn bounds(readers: usize, wait_ms: u64, idle_ms: u64) -> PoolBounds {
        PoolBounds {
            readers,
            wait: Duration::from_millis(wait_ms),
            idle: Duration::from_millis(idle_ms),
        }
    }

    async fn store_with(dir: &tempfile::TempDir, b: PoolBounds) -> Arc<SqliteStore> {
        Arc::new(
            SqliteStore::open_with(&dir.path().join("bantin.db"), b)
                .await
                .unwrap(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_stay_within_the_bound_however_many_read_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(&dir, bounds(3, 5_000, 60_000)).await;
        let now = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let reads = (0..40).map(|_| {
            let (store, now, most) = (store.clone(), now.clone(), most.clone());
            tokio::spawn(async move {
                store
                    .read(move |conn| {
                        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(n, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(5));
                        now.fetch_sub(1, Ordering::SeqCst);
                        conn.query_row("SELECT COUNT(*) FROM articles", [], |r| r.get::<_, i64>(0))
                            .map_err(unavailable)
                    })
                    .await
            })
        });
        for r in futures::future::join_all(reads).await {
            assert_eq!(r.unwrap().unwrap(), 0);
        }
        assert!(most.load(Ordering::SeqCst) <= 3, "{most:?} reads at once");
        assert!(
            store.open_readers() <= 3,
            "{} readers",
            store.open_readers()
        );
        assert!(store.open_readers() >= 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_waits_for_a_reader_then_the_store_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(&dir, bounds(1, 50, 60_000)).await;
        let (held, release) = (
            Arc::new(std::sync::Barrier::new(2)),
            std::sync::mpsc::channel(),
        );
        let (tx, rx) = release;
        let rx = Mutex::new(rx);
        let h = held.clone();
        let busy = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .read(move |_| {
                        h.wait();
                        let _ = rx.lock().unwrap().recv();
                        Ok(())
                    })
                    .await
            })
        };
        tokio::task::spawn_blocking(move || held.wait())
            .await
            .unwrap();
        let started = Instant::now();
        let e = store.count().await.unwrap_err();
        assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        assert!(
            e.to_string().contains("no database reader came free"),
            "{e}"
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(store.open_readers(), 1, "no second reader was opened");
        tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(
            store.count().await.unwrap(),
            0,
            "served again once one is free"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idle_readers_are_closed() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(&dir, bounds(4, 5_000, 60_000)).await;
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let reads = (0..4).map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                store
                    .read(move |_| {
                        barrier.wait();
                        Ok(())
                    })
                    .await
            })
        });
        for r in futures::future::join_all(reads).await {
            r.unwrap().unwrap();
        }
        assert_eq!(store.open_readers(), 4);
        assert_eq!(
            store.inner.readers.close_idle(Duration::from_secs(60)),
            0,
            "not idle long enough"
        );
        assert_eq!(store.inner.readers.close_idle(Duration::ZERO), 4);
        assert_eq!(store.open_readers(), 0);

        // And by the store's own task, after the idle time.
        let store = store_with(&dir, bounds(4, 5_000, 40)).await;
        store.count().await.unwrap();
        assert_eq!(store.open_readers(), 1);
        let closed = async {
            while store.open_readers() > 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("the idle reader is closed");
    }

    /// What the budget reserves covers what SQLite really holds open.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_descriptors_claimed_cover_every_reader_and_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let b = bounds(4, 5_000, 60_000);
        let store = store_with(&dir, b).await;
        let a = crate::article::Article::from_input(
            crate::article::tests::input(),
            &crate::article::tests::config(),
        )
        .unwrap();
        store.upsert(&a).await.unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let held = Arc::new(std::sync::Barrier::new(5));
        let reads: Vec<_> = (0..4)
            .map(|_| {
                let (store, barrier, held) = (store.clone(), barrier.clone(), held.clone());
                tokio::spawn(async move {
                    store
                        .read(move |conn| {
                            conn.query_row("SELECT COUNT(*) FROM articles", [], |r| {
                                r.get::<_, i64>(0)
                            })
                            .map_err(unavailable)?;
                            barrier.wait();
                            held.wait();
                            held.wait();
                            Ok(())
                        })
                        .await
                })
            })
            .collect();
        let held2 = held.clone();
        tokio::task::spawn_blocking(move || held2.wait())
            .await
            .unwrap();
        // Every reader is open and inside a read: count this directory's descriptors.
        let ours = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|p| p.starts_with(dir.path()))
            .count();
        eprintln!("{ours} descriptors for 4 readers and the writer");
        let held2 = held.clone();
        tokio::task::spawn_blocking(move || held2.wait())
            .await
            .unwrap();
        for r in reads {
            r.await.unwrap().unwrap();
        }
        assert_eq!(store.open_readers(), 4);
        assert!(
            ours <= store.max_descriptors(),
            "{ours} descriptors open, {} claimed",
            store.max_descriptors()
        );
        assert!(
            ours >= 2 * 5,
            "each connection holds the database and its WAL: {ours}"
        );
    }

    #[tokio::test]
    async fn reopening_runs_no_migration_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bantin.db");
        drop(SqliteStore::open(&path).await.unwrap());
        let again = SqliteStore::open(&path).await.unwrap();
        assert_eq!(again.count().await.unwrap(), 0);
    }
}
