//! SQLite store: the embedded default (a file under `data/`, WAL mode).
//!
//! rusqlite is synchronous, so every call runs on tokio's blocking pool. One writer connection
//! behind a mutex serialises writes in this process (SQLite allows one writer anyway; the busy
//! timeout covers a concurrent `bantin import`), and a small pool of reader connections lets feed
//! misses run in parallel with each other and with writes, which WAL permits.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::readership::{
    AggregatorCount, ClosedDay, DayTotals, Impolite, PartnerPolls, ReaderSeen, ReadershipBatch,
    ReadershipRows, StoredTotals, day_text, parse_day,
};
use super::subscriptions::{self as subs, Claim, Finished, Outcome, Subscription};
use super::upstream::{SourceState, millis};
use super::{
    Facet, PageQuery, Store, StoreError, Upsert, decide, from_doc, from_doc_bytes, to_doc,
};
use crate::article::{Article, Status};
use crate::feed::{FeedKey, Selector};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/sqlite/0001_articles.sql")),
    (2, include_str!("migrations/sqlite/0002_sources.sql")),
    (3, include_str!("migrations/sqlite/0003_readership.sql")),
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
    readers: Mutex<Vec<Connection>>,
}

fn unavailable(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::*;
    match e.sqlite_error_code() {
        Some(
            DatabaseBusy | DatabaseLocked | CannotOpen | SystemIoFailure | PermissionDenied
            | ReadOnly,
        ) => StoreError::Unavailable(e.to_string()),
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

/// The SQL filter for a feed over `articles a` (or `article_tags t` for tags), with its params.
fn feed_filter(feed: &FeedKey) -> (&'static str, Vec<String>) {
    match &feed.selector {
        Selector::All => (
            "FROM articles a WHERE a.status = 'published' AND a.lang = ?1",
            vec![feed.lang.clone()],
        ),
        Selector::Category(c) => (
            "FROM articles a WHERE a.status = 'published' AND a.lang = ?1 AND a.category = ?2",
            vec![feed.lang.clone(), c.clone()],
        ),
        Selector::Author(s) => (
            "FROM articles a WHERE a.status = 'published' AND a.lang = ?1 AND a.author_slug = ?2",
            vec![feed.lang.clone(), s.clone()],
        ),
        Selector::Tag(s) => (
            "FROM article_tags t JOIN articles a ON a.id = t.article_id WHERE t.lang = ?1 AND t.tag_slug = ?2",
            vec![feed.lang.clone(), s.clone()],
        ),
    }
}

/// Column names for the feed order: the tag table carries its own copy.
fn order_columns(feed: &FeedKey) -> (&'static str, &'static str) {
    match feed.selector {
        Selector::Tag(_) => ("t.published_at", "t.article_id"),
        _ => ("a.published_at", "a.id"),
    }
}

fn page_rows(conn: &Connection, q: &PageQuery<'_>) -> Result<Vec<Article>, StoreError> {
    let (from, args) = feed_filter(q.feed);
    let (p, id) = order_columns(q.feed);
    let mut values: Vec<Value> = args.into_iter().map(Value::Text).collect();
    // Times are bound as integers so SQLite compares them numerically, on the index.
    values.push(Value::Integer(secs(q.now)));
    let t = values.len();
    let cond = if q.offset > 0 {
        // Find the first row of the page with an index-only skip, then read rows by keyset.
        let sql = format!(
            "SELECT {p}, {id} {from} AND {p} <= ?{t} ORDER BY {p} DESC, {id} DESC LIMIT 1 OFFSET {}",
            q.offset
        );
        let first: Option<(i64, String)> = conn
            .prepare_cached(&sql)
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
        // A row-value comparison is one range condition on the feed index.
        format!(" AND ({p}, {id}) <= (?{t}, ?{})", t + 1)
    } else {
        format!(" AND {p} <= ?{t}")
    };
    let sql = format!(
        "SELECT a.doc {from}{cond} ORDER BY {p} DESC, {id} DESC LIMIT {}",
        q.limit
    );
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

fn add_readership(conn: &Connection, b: &ReadershipBatch) -> Result<(), StoreError> {
    let n = |v: u64| v.min(i64::MAX as u64) as i64;
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO readership_days (day, feed, polls, not_modified, bytes) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (day, feed) DO UPDATE SET polls = polls + excluded.polls,
               not_modified = not_modified + excluded.not_modified, bytes = bytes + excluded.bytes",
        )
        .map_err(unavailable)?;
    for t in &b.totals {
        stmt.execute(params![
            day_text(t.day),
            t.feed,
            n(t.polls),
            n(t.not_modified),
            n(t.bytes)
        ])
        .map_err(unavailable)?;
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO readership_aggregators (day, feed, client, feed_id, subscribers, observed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (day, feed, client, feed_id) DO UPDATE SET subscribers = excluded.subscribers,
               observed_at = excluded.observed_at WHERE excluded.observed_at >= readership_aggregators.observed_at",
        )
        .map_err(unavailable)?;
    for a in &b.aggregators {
        stmt.execute(params![
            day_text(a.day),
            a.feed,
            a.client,
            a.feed_id,
            n(a.subscribers),
            a.observed_at
        ])
        .map_err(unavailable)?;
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO readership_partners (day, feed, partner, polls) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (day, feed, partner) DO UPDATE SET polls = polls + excluded.polls",
        )
        .map_err(unavailable)?;
    for p in &b.partners {
        stmt.execute(params![day_text(p.day), p.feed, p.partner, n(p.polls)])
            .map_err(unavailable)?;
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO readership_readers (day, feed, reader, client) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (day, feed, reader) DO NOTHING",
        )
        .map_err(unavailable)?;
    for r in &b.readers {
        stmt.execute(params![day_text(r.day), r.feed, r.reader, r.client])
            .map_err(unavailable)?;
    }
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO readership_impolite (day, feed, user_agent, unconditional, too_soon) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (day, feed, user_agent) DO UPDATE SET unconditional = unconditional + excluded.unconditional,
               too_soon = too_soon + excluded.too_soon",
        )
        .map_err(unavailable)?;
    for i in &b.impolite {
        stmt.execute(params![
            day_text(i.day),
            i.feed,
            i.user_agent,
            n(i.unconditional),
            n(i.too_soon)
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

fn read_readership(
    conn: &Connection,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<ReadershipRows, StoreError> {
    let (f, t) = (day_text(from), day_text(to));
    let u = |v: i64| v.max(0) as u64;
    let mut rows = ReadershipRows::default();
    let mut stmt = conn
        .prepare_cached("SELECT day, feed, polls, not_modified, bytes, subscribers, clients FROM readership_days WHERE day BETWEEN ?1 AND ?2 ORDER BY day, feed")
        .map_err(unavailable)?;
    rows.totals = stmt
        .query_map([&f, &t], |r| {
            let subs: Option<i64> = r.get(5)?;
            let clients: Option<String> = r.get(6)?;
            Ok(StoredTotals {
                totals: DayTotals {
                    day: day_of(r.get(0)?)?,
                    feed: r.get(1)?,
                    polls: u(r.get(2)?),
                    not_modified: u(r.get(3)?),
                    bytes: u(r.get(4)?),
                },
                closed: subs.map(|s| (u(s), clients.unwrap_or_else(|| "[]".into()))),
            })
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let mut stmt = conn
        .prepare_cached("SELECT day, feed, client, feed_id, subscribers, observed_at FROM readership_aggregators WHERE day BETWEEN ?1 AND ?2 ORDER BY day, feed, client, feed_id")
        .map_err(unavailable)?;
    rows.aggregators = stmt
        .query_map([&f, &t], |r| {
            Ok(AggregatorCount {
                day: day_of(r.get(0)?)?,
                feed: r.get(1)?,
                client: r.get(2)?,
                feed_id: r.get(3)?,
                subscribers: u(r.get(4)?),
                observed_at: r.get(5)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let mut stmt = conn
        .prepare_cached("SELECT day, feed, partner, polls FROM readership_partners WHERE day BETWEEN ?1 AND ?2 ORDER BY day, feed, partner")
        .map_err(unavailable)?;
    rows.partners = stmt
        .query_map([&f, &t], |r| {
            Ok(PartnerPolls {
                day: day_of(r.get(0)?)?,
                feed: r.get(1)?,
                partner: r.get(2)?,
                polls: u(r.get(3)?),
            })
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let mut stmt = conn
        .prepare_cached("SELECT day, feed, reader, client FROM readership_readers WHERE day BETWEEN ?1 AND ?2 ORDER BY day, feed, reader")
        .map_err(unavailable)?;
    rows.readers = stmt
        .query_map([&f, &t], |r| {
            Ok(ReaderSeen {
                day: day_of(r.get(0)?)?,
                feed: r.get(1)?,
                reader: r.get(2)?,
                client: r.get(3)?,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let mut stmt = conn
        .prepare_cached("SELECT day, feed, user_agent, unconditional, too_soon FROM readership_impolite WHERE day BETWEEN ?1 AND ?2 ORDER BY day, feed, user_agent")
        .map_err(unavailable)?;
    rows.impolite = stmt
        .query_map([&f, &t], |r| {
            Ok(Impolite {
                day: day_of(r.get(0)?)?,
                feed: r.get(1)?,
                user_agent: r.get(2)?,
                unconditional: u(r.get(3)?),
                too_soon: u(r.get(4)?),
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
    /// Opens (creating if needed) the database file and runs pending migrations.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut writer = open_connection(&path)?;
            migrate(&mut writer)?;
            Ok(SqliteStore {
                inner: Arc::new(Inner {
                    path,
                    writer: Mutex::new(writer),
                    readers: Mutex::new(Vec::new()),
                }),
            })
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))?
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => open_connection(&inner.path)?,
            };
            let result = f(&conn);
            // A connection that failed may be broken; let it drop rather than return it.
            if result.is_ok() {
                inner
                    .readers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(conn);
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
            let (from, args) = feed_filter(&feed);
            let (p, id) = order_columns(&feed);
            let n = args.len() + 1;
            let sql =
                format!("SELECT {p} {from} AND {p} > ?{n} ORDER BY {p} ASC, {id} ASC LIMIT 1");
            let mut values: Vec<Value> = args.into_iter().map(Value::Text).collect();
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
            let (from, args) = feed_filter(&feed);
            let (p, _) = order_columns(&feed);
            let n = args.len() + 1;
            let sql = format!("SELECT COUNT(*) {from} AND {p} <= ?{n}");
            let mut values: Vec<Value> = args.into_iter().map(Value::Text).collect();
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

    async fn facets(&self, now: DateTime<Utc>) -> Result<(Vec<Facet>, Vec<Facet>), StoreError> {
        self.read(move |conn| {
            let t = secs(now);
            let mut stmt = conn
                .prepare_cached(
                    "SELECT lang, tag_slug, MIN(tag), COUNT(*) FROM article_tags WHERE published_at <= ?1
                     GROUP BY lang, tag_slug ORDER BY lang, tag_slug",
                )
                .map_err(unavailable)?;
            let tags = stmt
                .query_map([t], |r| Ok(Facet { lang: r.get(0)?, slug: r.get(1)?, name: r.get(2)?, count: r.get::<_, i64>(3)? as u64 }))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT lang, author_slug, MIN(json_extract(doc, '$.author')), COUNT(*) FROM articles
                     WHERE status = 'published' AND published_at <= ?1 AND author_slug <> ''
                     GROUP BY lang, author_slug ORDER BY lang, author_slug",
                )
                .map_err(unavailable)?;
            let authors = stmt
                .query_map([t], |r| Ok(Facet { lang: r.get(0)?, slug: r.get(1)?, name: r.get(2)?, count: r.get::<_, i64>(3)? as u64 }))
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
    ) -> Result<Vec<Claim>, StoreError> {
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
                    Ok(Claim {
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

    async fn readership(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<ReadershipRows, StoreError> {
        self.read(move |conn| {
            // One snapshot for all five tables.
            conn.execute_batch("BEGIN").map_err(unavailable)?;
            let rows = read_readership(conn, from, to);
            let _ = conn.execute_batch("COMMIT");
            rows
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
                    stmt.execute(params![day_text(d.day), d.feed, d.subscribers.min(i64::MAX as u64) as i64, d.clients])
                        .map_err(unavailable)?;
                }
            }
            tx.commit().map_err(unavailable)
        })
        .await
    }

    async fn prune_readership(
        &self,
        readers_before: chrono::NaiveDate,
        all_before: chrono::NaiveDate,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(unavailable)?;
            let (r, a) = (day_text(readers_before), day_text(all_before));
            tx.execute("DELETE FROM readership_readers WHERE day < ?1", [&r])
                .map_err(unavailable)?;
            for table in [
                "readership_days",
                "readership_aggregators",
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

    #[tokio::test]
    async fn reopening_runs_no_migration_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bantin.db");
        drop(SqliteStore::open(&path).await.unwrap());
        let again = SqliteStore::open(&path).await.unwrap();
        assert_eq!(again.count().await.unwrap(), 0);
    }
}
