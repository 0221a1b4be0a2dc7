//! PostgreSQL store: for several stateless replicas sharing one database.
//!
//! tokio-postgres through a deadpool pool with short timeouts, so that when the database is down
//! a feed miss fails within about two seconds (and the HTTP layer answers 503 with
//! `Retry-After`) instead of queueing pollers. Migrations run at start inside a transaction
//! holding an advisory lock, so replicas starting together apply each migration once.
//!
//! Cross-replica invalidation rides on `LISTEN/NOTIFY` (see [`PgStore::announce`] and
//! [`PgStore::changes`]): a dedicated connection listens, and when it is lost and comes back the
//! replica is told to drop its whole cache, since notifications may have been missed meanwhile.
//!
//! The pool is bounded by [`PoolBounds`] (the readers plus two for writes: six with two HTTP
//! workers), a caller waits at most two seconds for a connection, and a task closes connections
//! idle for a minute, so a burst's sockets do not stay counted against the file limit.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls};

use super::pool::PoolBounds;
use super::readership::{
    self, Claim, ClosedDay, DayTotals, Existing, ImpoliteSum, Overflow, PartnerPolls, ReaderSketch,
    ReadershipBatch, StoredTotals, WindowRows, count, day_text, parse_day, stored,
};
use super::sql::{self, Dialect, FeedFilter};
use super::subscriptions::{self as subs, Finished, Outcome, Subscription};
use super::upstream::{SourceState, millis};
use super::{
    Change, Facet, FacetBound, MAX_FACET_NAME_CHARS, MAX_FACET_SLUG_BYTES, PageQuery, Store,
    StoreError, Upsert, decide, from_doc, to_doc,
};
use crate::article::{Article, Status};
use crate::model::FeedKey;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/postgres/0001_articles.sql")),
    (2, include_str!("migrations/postgres/0002_sources.sql")),
    (3, include_str!("migrations/postgres/0003_readership.sql")),
    (
        4,
        include_str!("migrations/postgres/0004_readership_bounded.sql"),
    ),
    (
        5,
        include_str!("migrations/postgres/0005_subscriptions.sql"),
    ),
];

/// Advisory lock key serialising migrations across replicas ("bant" in ASCII).
const MIGRATION_LOCK: i64 = 0x6261_6e74;

/// The NOTIFY channel replicas share.
pub const CHANNEL: &str = "bantin_feeds";

/// Longest a query waits for a pooled connection or a new one.
const TIMEOUT: Duration = Duration::from_secs(2);

pub struct PgStore {
    pool: Pool,
    bounds: PoolBounds,
    config: tokio_postgres::Config,
    /// Tells this replica's own notifications apart from the others'.
    instance: String,
}

fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let transient = e.is_closed()
        || e.code()
            .is_none_or(|c| super::sqlstate_is_unavailable(c.code()));
    // The driver's own text is just "db error"; the server's SQLSTATE and message are what an
    // operator reading the log needs (they never reach a client).
    let text = match e.as_db_error() {
        Some(db) => format!("{e} {}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    };
    if transient {
        StoreError::Unavailable(text)
    } else {
        StoreError::Backend(text)
    }
}

/// Every pool failure is the database being out of reach (it refused or timed out a connection,
/// e.g. "database does not allow connections" during maintenance), never a bad query.
fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn instant(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or_default()
}

/// Upserts a batch in the caller's transaction with a constant number of round trips: lock the
/// ids, read the stored versions, [`decide`] each article in order (a later line of the batch sees
/// an earlier one), then write the winners and their tag rows with `unnest` arrays.
async fn upsert_many(
    tx: &deadpool_postgres::Transaction<'_>,
    articles: &[Article],
) -> Result<Vec<Upsert>, StoreError> {
    let mut ids: Vec<&str> = articles.iter().map(|a| a.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    // Serialise writers of the same ids (a create racing a create included), always locking in
    // id order so two batches cannot deadlock.
    let lock = tx
        .prepare_cached(
            "SELECT pg_advisory_xact_lock(hashtextextended(x, 0))
             FROM (SELECT x FROM unnest($1::text[]) AS u(x) ORDER BY x) AS ordered",
        )
        .await
        .map_err(pg_error)?;
    tx.execute(&lock, &[&ids]).await.map_err(pg_error)?;
    let read = tx
        .prepare_cached("SELECT doc FROM articles WHERE id = ANY($1) FOR UPDATE")
        .await
        .map_err(pg_error)?;
    let mut current: std::collections::HashMap<String, Article> = std::collections::HashMap::new();
    for row in tx.query(&read, &[&ids]).await.map_err(pg_error)? {
        let a = from_doc(row.get::<_, &str>(0))?;
        current.insert(a.id.clone(), a);
    }
    let mut outcomes = Vec::with_capacity(articles.len());
    let mut winners: std::collections::BTreeMap<&str, &Article> = std::collections::BTreeMap::new();
    for a in articles {
        let outcome = decide(current.get(&a.id), a);
        if matches!(outcome, Upsert::Created | Upsert::Updated { .. }) {
            current.insert(a.id.clone(), a.clone());
            winners.insert(&a.id, a);
        }
        outcomes.push(outcome);
    }
    if winners.is_empty() {
        return Ok(outcomes);
    }

    let w: Vec<&Article> = winners.into_values().collect();
    let col = |f: fn(&Article) -> String| -> Vec<String> { w.iter().map(|a| f(a)).collect() };
    let (ids, langs, cats) = (
        col(|a| a.id.clone()),
        col(|a| a.lang.clone()),
        col(|a| a.category.clone()),
    );
    let (authors, statuses, docs) = (
        col(|a| a.author_slug()),
        col(|a| a.status.as_str().to_string()),
        col(to_doc),
    );
    let published: Vec<i64> = w.iter().map(|a| a.published_at.timestamp()).collect();
    let updated: Vec<i64> = w.iter().map(|a| a.updated_at.timestamp()).collect();
    let upsert = tx
        .prepare_cached(
            "INSERT INTO articles (id, lang, category, author_slug, status, published_at, updated_at, doc)
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[])
             ON CONFLICT (id) DO UPDATE SET lang = excluded.lang, category = excluded.category,
               author_slug = excluded.author_slug, status = excluded.status,
               published_at = excluded.published_at, updated_at = excluded.updated_at, doc = excluded.doc",
        )
        .await
        .map_err(pg_error)?;
    tx.execute(
        &upsert,
        &[
            &ids, &langs, &cats, &authors, &statuses, &published, &updated, &docs,
        ],
    )
    .await
    .map_err(pg_error)?;
    let del = tx
        .prepare_cached("DELETE FROM article_tags WHERE article_id = ANY($1)")
        .await
        .map_err(pg_error)?;
    tx.execute(&del, &[&ids]).await.map_err(pg_error)?;

    let (mut t_ids, mut t_langs, mut t_slugs, mut t_tags, mut t_pub) =
        (vec![], vec![], vec![], vec![], vec![]);
    for a in w.iter().filter(|a| a.status == Status::Published) {
        for (tag, slug) in a.tags.iter().zip(a.tag_slugs()) {
            t_ids.push(a.id.clone());
            t_langs.push(a.lang.clone());
            t_slugs.push(slug);
            t_tags.push(tag.clone());
            t_pub.push(a.published_at.timestamp());
        }
    }
    if !t_ids.is_empty() {
        let ins = tx
            .prepare_cached(
                "INSERT INTO article_tags (article_id, lang, tag_slug, tag, published_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(&ins, &[&t_ids, &t_langs, &t_slugs, &t_tags, &t_pub])
            .await
            .map_err(pg_error)?;
    }
    Ok(outcomes)
}

/// `col + add` saturating at `i64::MAX` (both are non-negative: no write stores a negative count).
fn sat(col: &str, add: &str) -> String {
    Dialect::Postgres.saturating_add(col, add)
}

/// Adds one readership flush in the caller's transaction. Each row set is passed as arrays
/// (`unnest`), so a flush costs the same few round trips however many feeds it carries. The day
/// totals go first, in (day, feed) order: their row locks serialise every writer of a feed-day, so
/// the sketches and claims read next cannot change before this transaction writes their merge, and
/// two replicas lock in the same order (no deadlock).
async fn add_readership(
    tx: &deadpool_postgres::Transaction<'_>,
    b: &ReadershipBatch,
) -> Result<(), StoreError> {
    let days = b.feed_days();
    {
        let d: Vec<String> = days.iter().map(|t| day_text(t.day)).collect();
        let feeds: Vec<&str> = days.iter().map(|t| t.feed.as_str()).collect();
        let polls: Vec<i64> = days.iter().map(|t| stored(t.polls)).collect();
        let nm: Vec<i64> = days.iter().map(|t| stored(t.not_modified)).collect();
        let bytes: Vec<i64> = days.iter().map(|t| stored(t.bytes)).collect();
        let stmt = tx
            .prepare_cached(&sql::READERSHIP_DAYS.sql(Dialect::Postgres))
            .await
            .map_err(pg_error)?;
        tx.execute(&stmt, &[&d, &feeds, &polls, &nm, &bytes])
            .await
            .map_err(pg_error)?;
    }

    // What is stored for the feed-days that need it, then the plan.
    let keys = |it: &mut dyn Iterator<Item = (chrono::NaiveDate, &str)>| {
        let set: BTreeSet<(chrono::NaiveDate, String)> =
            it.map(|(d, f)| (d, f.to_string())).collect();
        let days: Vec<String> = set.iter().map(|(d, _)| day_text(*d)).collect();
        let feeds: Vec<String> = set.into_iter().map(|(_, f)| f).collect();
        (days, feeds)
    };
    let mut existing = Existing::default();
    let (d, f) = keys(&mut b.sketches.iter().map(|s| (s.day, s.feed.as_str())));
    if !d.is_empty() {
        for r in tx
            .query(
                "SELECT s.day, s.feed, s.family, s.sketch FROM readership_sketches s
                 JOIN unnest($1::text[], $2::text[]) AS k(day, feed) ON s.day = k.day AND s.feed = k.feed",
                &[&d, &f],
            )
            .await
            .map_err(pg_error)?
        {
            existing.sketches.push(ReaderSketch {
                day: day_of(r.get(0))?,
                feed: r.get(1),
                family: r.get(2),
                sketch: r.get(3),
            });
        }
    }
    let (d, f) = keys(&mut b.claims.iter().map(|c| (c.day, c.feed.as_str())));
    if !d.is_empty() {
        for r in tx
            .query(
                "SELECT c.day, c.feed, c.aggregator, c.network, c.subscribers, c.first_seen, c.last_seen, c.verdict
                 FROM readership_claims c
                 JOIN unnest($1::text[], $2::text[]) AS k(day, feed) ON c.day = k.day AND c.feed = k.feed",
                &[&d, &f],
            )
            .await
            .map_err(pg_error)?
        {
            existing.claims.push(Claim {
                day: day_of(r.get(0))?,
                feed: r.get(1),
                aggregator: r.get(2),
                network: r.get(3),
                subscribers: count(r.get(4)),
                first_seen: r.get(5),
                last_seen: r.get(6),
                verdict: r.get(7),
            });
        }
    }
    let (d, f) = keys(&mut b.impolite.iter().map(|i| (i.day, i.feed.as_str())));
    if !d.is_empty() {
        for r in tx
            .query(
                "SELECT i.day, i.feed, i.user_agent FROM readership_impolite i
                 JOIN unnest($1::text[], $2::text[]) AS k(day, feed) ON i.day = k.day AND i.feed = k.feed",
                &[&d, &f],
            )
            .await
            .map_err(pg_error)?
        {
            existing
                .impolite
                .push((day_of(r.get(0))?, r.get(1), r.get(2)));
        }
    }
    let plan = readership::plan(b, existing);

    if !plan.sketches.is_empty() {
        let s = &plan.sketches;
        let feeds: Vec<&str> = s.iter().map(|x| x.feed.as_str()).collect();
        let days: Vec<String> = s.iter().map(|x| day_text(x.day)).collect();
        let families: Vec<&str> = s.iter().map(|x| x.family.as_str()).collect();
        let blobs: Vec<&[u8]> = s.iter().map(|x| x.sketch.as_slice()).collect();
        let stmt = tx
            .prepare_cached(&sql::READERSHIP_SKETCHES.sql(Dialect::Postgres))
            .await
            .map_err(pg_error)?;
        tx.execute(&stmt, &[&feeds, &days, &families, &blobs])
            .await
            .map_err(pg_error)?;
    }
    if !plan.claims.is_empty() {
        let c = &plan.claims;
        let feeds: Vec<&str> = c.iter().map(|x| x.feed.as_str()).collect();
        let days: Vec<String> = c.iter().map(|x| day_text(x.day)).collect();
        let aggs: Vec<&str> = c.iter().map(|x| x.aggregator.as_str()).collect();
        let nets: Vec<&str> = c.iter().map(|x| x.network.as_str()).collect();
        let subs: Vec<i64> = c.iter().map(|x| stored(x.subscribers)).collect();
        let first: Vec<i64> = c.iter().map(|x| x.first_seen).collect();
        let last: Vec<i64> = c.iter().map(|x| x.last_seen).collect();
        let verdicts: Vec<i64> = c.iter().map(|x| x.verdict).collect();
        let stmt = tx
            .prepare_cached(&sql::READERSHIP_CLAIMS.sql(Dialect::Postgres))
            .await
            .map_err(pg_error)?;
        tx.execute(
            &stmt,
            &[&feeds, &days, &aggs, &nets, &subs, &first, &last, &verdicts],
        )
        .await
        .map_err(pg_error)?;
    }
    if !b.partners.is_empty() {
        let p = &b.partners;
        let days: Vec<String> = p.iter().map(|x| day_text(x.day)).collect();
        let feeds: Vec<&str> = p.iter().map(|x| x.feed.as_str()).collect();
        let ids: Vec<&str> = p.iter().map(|x| x.partner.as_str()).collect();
        let polls: Vec<i64> = p.iter().map(|x| stored(x.polls)).collect();
        let stmt = tx
            .prepare_cached(&sql::READERSHIP_PARTNERS.sql(Dialect::Postgres))
            .await
            .map_err(pg_error)?;
        tx.execute(&stmt, &[&days, &feeds, &ids, &polls])
            .await
            .map_err(pg_error)?;
    }
    if !plan.impolite.is_empty() {
        // The plan may fold several User-Agents into one row: sum them first (one statement may
        // not update a row twice).
        let mut rows: BTreeMap<(chrono::NaiveDate, &str, &str), (u64, u64)> = BTreeMap::new();
        for i in &plan.impolite {
            let e = rows
                .entry((i.day, i.feed.as_str(), i.user_agent.as_str()))
                .or_default();
            e.0 = e.0.saturating_add(i.unconditional);
            e.1 = e.1.saturating_add(i.too_soon);
        }
        let days: Vec<String> = rows.keys().map(|k| day_text(k.0)).collect();
        let feeds: Vec<&str> = rows.keys().map(|k| k.1).collect();
        let uas: Vec<&str> = rows.keys().map(|k| k.2).collect();
        let unc: Vec<i64> = rows.values().map(|v| stored(v.0)).collect();
        let soon: Vec<i64> = rows.values().map(|v| stored(v.1)).collect();
        let stmt = tx
            .prepare_cached(&sql::READERSHIP_IMPOLITE.sql(Dialect::Postgres))
            .await
            .map_err(pg_error)?;
        tx.execute(&stmt, &[&days, &feeds, &uas, &unc, &soon])
            .await
            .map_err(pg_error)?;
    }
    if !plan.overflow.is_empty() {
        let o = &plan.overflow;
        let days: Vec<String> = o.iter().map(|x| day_text(x.0)).collect();
        let feeds: Vec<&str> = o.iter().map(|x| x.1.as_str()).collect();
        let folded: Vec<i64> = o.iter().map(|x| stored(x.2.readers_folded)).collect();
        let dropped: Vec<i64> = o.iter().map(|x| stored(x.2.claims_dropped)).collect();
        tx.execute(
            &format!(
                "UPDATE readership_days AS d SET readers_folded = {}, claims_dropped = {}
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(day, feed, r, c)
                 WHERE d.day = u.day AND d.feed = u.feed",
                sat("d.readers_folded", "u.r"),
                sat("d.claims_dropped", "u.c")
            ),
            &[&days, &feeds, &folded, &dropped],
        )
        .await
        .map_err(pg_error)?;
    }
    Ok(())
}

fn close_idle(pool: &Pool, idle: Duration) -> usize {
    pool.retain(|_, m| m.last_used() < idle).removed.len()
}

const TOTALS_COLUMNS: &str =
    "day, feed, polls, not_modified, bytes, subscribers, clients, readers_folded, claims_dropped";

fn totals_row(r: &tokio_postgres::Row) -> Result<StoredTotals, StoreError> {
    let subs: Option<i64> = r.get(5);
    let clients: Option<String> = r.get(6);
    Ok(StoredTotals {
        totals: DayTotals {
            day: day_of(r.get(0))?,
            feed: r.get(1),
            polls: count(r.get(2)),
            not_modified: count(r.get(3)),
            bytes: count(r.get(4)),
        },
        closed: subs.map(|s| (count(s), clients.unwrap_or_else(|| "[]".into()))),
        overflow: Overflow {
            readers_folded: count(r.get(7)),
            claims_dropped: count(r.get(8)),
        },
    })
}

fn day_of(s: &str) -> Result<chrono::NaiveDate, StoreError> {
    parse_day(s).ok_or_else(|| StoreError::Backend(format!("bad readership day `{s}`")))
}

impl PgStore {
    /// Connects, builds the pool and runs pending migrations, with the default pool bounds.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgStore::connect_with(url, PoolBounds::default()).await
    }

    /// [`PgStore::connect`] with a pool of `bounds.postgres_size()` connections at most.
    pub async fn connect_with(url: &str, bounds: PoolBounds) -> Result<PgStore, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))?;
        config.connect_timeout(TIMEOUT);
        // Statements are prepared once per connection; with a generic plan PostgreSQL may read
        // a whole category to skip to page N. Feed queries are cheap to plan: always plan them
        // for their parameters.
        let options = match config.get_options() {
            Some(o) => format!("{o} -c plan_cache_mode=force_custom_plan"),
            None => "-c plan_cache_mode=force_custom_plan".to_string(),
        };
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("bantin");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(bounds.postgres_size())
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(bounds.wait.min(TIMEOUT)))
            .create_timeout(Some(TIMEOUT))
            .recycle_timeout(Some(TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let store = PgStore {
            pool,
            bounds,
            config,
            instance: format!("{:016x}", rand_u64()),
        };
        store.migrate().await?;
        let weak = store.pool.weak();
        bounds.close_idle_every(
            move || weak.upgrade(),
            |pool, idle| async move {
                close_idle(&pool, idle);
            },
        );
        Ok(store)
    }

    /// Connections in the pool now (in use or idle).
    pub fn open_connections(&self) -> usize {
        self.pool.status().size
    }

    /// Closes the pooled connections idle for `idle` or longer; returns how many.
    pub fn close_idle(&self, idle: Duration) -> usize {
        close_idle(&self.pool, idle)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_error)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .await
            .map_err(pg_error)?;
        for (version, sql) in MIGRATIONS {
            let done = tx
                .query_opt(
                    "SELECT 1 FROM schema_migrations WHERE version = $1",
                    &[version],
                )
                .await
                .map_err(pg_error)?
                .is_some();
            if !done {
                tx.batch_execute(sql)
                    .await
                    .map_err(|e| StoreError::Backend(format!("migration {version}: {e}")))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await
                .map_err(pg_error)?;
            }
        }
        tx.commit().await.map_err(pg_error)
    }
}

/// A random instance id without pulling in a RNG crate: std's per-process random hasher keys.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

/// NOTIFY payloads are limited to 8000 bytes; beyond this a change is announced as "everything".
const MAX_PAYLOAD: usize = 7900;

/// `instance\nkey\nkey…` with each key encoded by [`super::encode_key`]; `*` means every feed.
fn payload(instance: &str, feeds: &BTreeSet<FeedKey>) -> String {
    let mut p = instance.to_string();
    for k in feeds {
        p.push('\n');
        p.push_str(&super::encode_key(k));
    }
    if p.len() > MAX_PAYLOAD {
        format!("{instance}\n*")
    } else {
        p
    }
}

fn parse_payload(p: &str) -> Option<(String, Change)> {
    let mut lines = p.split('\n');
    let instance = lines.next()?.to_string();
    let rest: Vec<&str> = lines.collect();
    if rest == ["*"] {
        return Some((instance, Change::All));
    }
    let keys = rest
        .iter()
        .map(|l| super::decode_key(l))
        .collect::<Option<Vec<_>>>()?;
    Some((instance, Change::Feeds(keys)))
}

/// The columns of a subscription row, in the order [`subscription_row`] reads them.
const SUBSCRIPTION_COLUMNS: &str = "topic, callback, host, secret, lease_seconds, expires_at, created_at, updates, delivered, attempts, next_attempt, claimed_until, last_attempt, last_success, last_error";

fn subscription_row(r: &tokio_postgres::Row) -> Subscription {
    let at = |v: Option<i64>| v.map(subs::instant);
    Subscription {
        topic: r.get(0),
        callback: r.get(1),
        host: r.get(2),
        secret: r.get(3),
        lease_seconds: r.get::<_, i64>(4).max(0) as u64,
        expires_at: subs::instant(r.get(5)),
        created_at: subs::instant(r.get(6)),
        updates: r.get(7),
        delivered: r.get(8),
        attempts: r.get::<_, i32>(9).max(0) as u32,
        next_attempt: subs::instant(r.get(10)),
        claimed_until: subs::instant(r.get(11)),
        last_attempt: at(r.get(12)),
        last_success: at(r.get(13)),
        last_error: r.get(14),
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn max_descriptors(&self) -> usize {
        self.bounds.postgres_descriptors()
    }

    async fn upsert(&self, article: &Article) -> Result<Upsert, StoreError> {
        let mut outcomes = self.upsert_batch(std::slice::from_ref(article)).await?;
        Ok(outcomes.pop().expect("one outcome per article"))
    }

    async fn upsert_batch(&self, articles: &[Article]) -> Result<Vec<Upsert>, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let outcomes = upsert_many(&tx, articles).await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(outcomes)
    }

    async fn get(&self, id: &str) -> Result<Option<Article>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached("SELECT doc FROM articles WHERE id = $1")
            .await
            .map_err(pg_error)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(pg_error)?;
        row.map(|r| from_doc(r.get::<_, &str>(0))).transpose()
    }

    async fn get_many(&self, ids: &[String]) -> Result<Vec<Article>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached("SELECT doc FROM articles WHERE id = ANY($1)")
            .await
            .map_err(pg_error)?;
        let rows = client.query(&stmt, &[&ids]).await.map_err(pg_error)?;
        rows.iter().map(|r| from_doc(r.get::<_, &str>(0))).collect()
    }

    async fn delete(&self, id: &str) -> Result<Option<Article>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached("DELETE FROM articles WHERE id = $1 RETURNING doc")
            .await
            .map_err(pg_error)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(pg_error)?;
        row.map(|r| from_doc(r.get::<_, &str>(0))).transpose()
    }

    async fn page(&self, q: &PageQuery<'_>) -> Result<Vec<Article>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let f = FeedFilter::new(q.feed, Dialect::Postgres);
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
            f.args.iter().map(|a| Box::new(a.clone()) as _).collect();
        params.push(Box::new(q.now.timestamp()));
        let t = params.len();
        let from_boundary = q.offset > 0;
        if from_boundary {
            // Find the first row of the page with an index-only skip, then read rows by keyset.
            let stmt = client
                .prepare_cached(&f.boundary_sql(q.offset))
                .await
                .map_err(pg_error)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| &**b as _).collect();
            let Some(row) = client.query_opt(&stmt, &refs).await.map_err(pg_error)? else {
                return Ok(Vec::new());
            };
            params[t - 1] = Box::new(row.get::<_, i64>(0));
            params.push(Box::new(row.get::<_, String>(1)));
        }
        let sql = f.page_sql(from_boundary, q.limit);
        let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| &**b as _).collect();
        let rows = client.query(&stmt, &refs).await.map_err(pg_error)?;
        rows.iter().map(|r| from_doc(r.get::<_, &str>(0))).collect()
    }

    async fn next_publication(
        &self,
        feed: &FeedKey,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let f = FeedFilter::new(feed, Dialect::Postgres);
        let stmt = client
            .prepare_cached(&f.next_publication_sql())
            .await
            .map_err(pg_error)?;
        let t = now.timestamp();
        let mut refs: Vec<&(dyn ToSql + Sync)> = f.args.iter().map(|a| a as _).collect();
        refs.push(&t);
        let row = client.query_opt(&stmt, &refs).await.map_err(pg_error)?;
        Ok(row.map(|r| instant(r.get(0))))
    }

    async fn count_visible(&self, feed: &FeedKey, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let f = FeedFilter::new(feed, Dialect::Postgres);
        let stmt = client
            .prepare_cached(&f.count_sql())
            .await
            .map_err(pg_error)?;
        let t = now.timestamp();
        let mut refs: Vec<&(dyn ToSql + Sync)> = f.args.iter().map(|a| a as _).collect();
        refs.push(&t);
        let row = client.query_one(&stmt, &refs).await.map_err(pg_error)?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    async fn facets(
        &self,
        now: DateTime<Utc>,
        bound: FacetBound,
    ) -> Result<(Vec<Facet>, Vec<Facet>), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let t = now.timestamp();
        let (min, limit) = (bound.sql_min(), bound.sql_limit());
        let (name_chars, slug_bytes) = (MAX_FACET_NAME_CHARS as i32, MAX_FACET_SLUG_BYTES as i32);
        let facet = |r: &tokio_postgres::Row| Facet {
            lang: r.get(0),
            slug: r.get(1),
            name: r.get(2),
            count: r.get::<_, i64>(3) as u64,
        };
        // The most used first to apply the limit (a top-N sort), then in the listing's order.
        let tags = client
            .query(
                "SELECT lang, slug, name, n FROM (
                   SELECT lang, tag_slug AS slug, left(MIN(tag), $4) AS name, COUNT(*) AS n
                   FROM article_tags WHERE published_at <= $1 AND octet_length(tag_slug) <= $5
                   GROUP BY lang, tag_slug HAVING COUNT(*) >= $2
                   ORDER BY n DESC, lang, tag_slug LIMIT $3) top
                 ORDER BY lang, slug",
                &[&t, &min, &limit, &name_chars, &slug_bytes],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(facet)
            .collect();
        let authors = client
            .query(
                "SELECT lang, slug, name, n FROM (
                   SELECT lang, author_slug AS slug, left(MIN(doc::jsonb ->> 'author'), $4) AS name,
                          COUNT(*) AS n
                   FROM articles
                   WHERE status = 'published' AND published_at <= $1 AND author_slug <> ''
                     AND octet_length(author_slug) <= $5
                   GROUP BY lang, author_slug HAVING COUNT(*) >= $2
                   ORDER BY n DESC, lang, author_slug LIMIT $3) top
                 ORDER BY lang, slug",
                &[&t, &min, &limit, &name_chars, &slug_bytes],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(facet)
            .collect();
        Ok((tags, authors))
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let row = client
            .query_one("SELECT COUNT(*) FROM articles", &[])
            .await
            .map_err(pg_error)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client.simple_query("SELECT 1").await.map_err(pg_error)?;
        Ok(())
    }

    async fn source_states(&self) -> Result<Vec<SourceState>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rows = client
            .query(
                "SELECT doc, next_poll FROM sources ORDER BY id COLLATE \"C\"",
                &[],
            )
            .await
            .map_err(pg_error)?;
        rows.iter()
            .map(|r| SourceState::from_row(r.get::<_, &str>(0), r.get::<_, i64>(1)))
            .collect()
    }

    async fn add_source(&self, state: &SourceState) -> Result<bool, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let n = client
            .execute(
                "INSERT INTO sources (id, next_poll, doc) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                &[&state.id, &millis(state.next_poll), &state.to_doc()],
            )
            .await
            .map_err(pg_error)?;
        Ok(n == 1)
    }

    async fn claim_source(
        &self,
        id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SourceState>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        // Under READ COMMITTED a second replica's UPDATE waits for the first one's row lock,
        // then re-checks `next_poll <= now` against the moved value and matches nothing.
        let row = client
            .query_opt(
                "UPDATE sources SET next_poll = $1 WHERE id = $2 AND next_poll <= $3 RETURNING doc",
                &[&millis(until), &id, &millis(now)],
            )
            .await
            .map_err(pg_error)?;
        row.map(|r| SourceState::from_doc(r.get::<_, &str>(0)))
            .transpose()
    }

    async fn save_source(&self, state: &SourceState) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .execute(
                "INSERT INTO sources (id, next_poll, doc) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET next_poll = EXCLUDED.next_poll, doc = EXCLUDED.doc",
                &[&state.id, &millis(state.next_poll), &state.to_doc()],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn finish_source(
        &self,
        state: &SourceState,
        lease: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let n = client
            .execute(
                "UPDATE sources SET next_poll = $1, doc = $2 WHERE id = $3 AND next_poll = $4",
                &[
                    &millis(state.next_poll),
                    &state.to_doc(),
                    &state.id,
                    &millis(lease),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(n == 1)
    }

    async fn save_subscription(&self, sub: &Subscription) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .execute(
                "INSERT INTO subscriptions AS s (topic, callback, host, secret, lease_seconds, expires_at, created_at, next_attempt)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                 ON CONFLICT (topic, callback) DO UPDATE SET host = excluded.host, secret = excluded.secret,
                   lease_seconds = excluded.lease_seconds, expires_at = excluded.expires_at,
                   created_at = CASE WHEN s.expires_at <= excluded.created_at THEN excluded.created_at ELSE s.created_at END,
                   delivered = CASE WHEN s.expires_at <= excluded.created_at THEN s.updates ELSE s.delivered END,
                   attempts = CASE WHEN s.expires_at <= excluded.created_at THEN 0 ELSE s.attempts END",
                &[
                    &sub.topic,
                    &sub.callback,
                    &sub.host,
                    &sub.secret,
                    &(sub.lease_seconds.min(i64::MAX as u64) as i64),
                    &millis(sub.expires_at),
                    &millis(sub.created_at),
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn remove_subscription(&self, topic: &str, callback: &str) -> Result<bool, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let n = client
            .execute(
                "DELETE FROM subscriptions WHERE topic = $1 AND callback = $2",
                &[&topic, &callback],
            )
            .await
            .map_err(pg_error)?;
        Ok(n == 1)
    }

    async fn subscription(
        &self,
        topic: &str,
        callback: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE topic = $1 AND callback = $2"
                ),
                &[&topic, &callback],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.as_ref().map(subscription_row))
    }

    async fn subscriptions(&self, now: DateTime<Utc>) -> Result<Vec<Subscription>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rows = client
            .query(
                &format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE expires_at > $1 ORDER BY topic, callback"
                ),
                &[&millis(now)],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows.iter().map(subscription_row).collect())
    }

    async fn count_subscriptions(
        &self,
        host: &str,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let row = client
            .query_one(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE host = $2) FROM subscriptions WHERE expires_at > $1",
                &[&millis(now), &host],
            )
            .await
            .map_err(pg_error)?;
        Ok((
            row.get::<_, i64>(0).max(0) as u64,
            row.get::<_, i64>(1).max(0) as u64,
        ))
    }

    async fn subscription_hosts(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String, u64)>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let rows = client
            .query(
                "SELECT topic, host, COUNT(*) FROM subscriptions WHERE expires_at > $1
                 GROUP BY topic, host ORDER BY topic, host",
                &[&millis(now)],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get::<_, i64>(2).max(0) as u64))
            .collect())
    }

    async fn mark_published(
        &self,
        topics: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        if topics.is_empty() {
            return Ok(0);
        }
        let client = self.pool.get().await.map_err(pool_error)?;
        let stmt = client
            .prepare_cached(
                "UPDATE subscriptions SET
                   attempts = CASE WHEN updates > delivered THEN attempts ELSE 0 END,
                   next_attempt = CASE WHEN updates > delivered THEN next_attempt ELSE $1 END,
                   updates = updates + 1
                 WHERE expires_at > $1 AND topic = ANY($2)",
            )
            .await
            .map_err(pg_error)?;
        client
            .execute(&stmt, &[&millis(now), &topics])
            .await
            .map_err(pg_error)
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
        let client = self.pool.get().await.map_err(pool_error)?;
        // SKIP LOCKED: replicas claiming at once take disjoint rows instead of queueing behind
        // each other; the locked rows are checked again before they are claimed.
        let stmt = client
            .prepare_cached(
                "UPDATE subscriptions s SET claimed_until = $1
                 FROM (SELECT topic, callback FROM subscriptions
                       WHERE updates > delivered AND next_attempt <= $2 AND claimed_until <= $2
                         AND expires_at > $2 AND NOT (host = ANY($4))
                       ORDER BY next_attempt LIMIT $3 FOR UPDATE SKIP LOCKED) due
                 WHERE s.topic = due.topic AND s.callback = due.callback
                 RETURNING s.topic, s.callback, s.host, s.secret, s.updates, s.attempts",
            )
            .await
            .map_err(pg_error)?;
        let rows = client
            .query(
                &stmt,
                &[
                    &millis(until),
                    &millis(now),
                    &(limit.min(i64::MAX as usize) as i64),
                    &busy,
                ],
            )
            .await
            .map_err(pg_error)?;
        Ok(rows
            .iter()
            .map(|r| subs::Claim {
                topic: r.get(0),
                callback: r.get(1),
                host: r.get(2),
                secret: r.get(3),
                updates: r.get(4),
                attempts: r.get::<_, i32>(5).max(0) as u32,
                claimed_until: until,
            })
            .collect())
    }

    async fn finish_deliveries(&self, done: &[Finished]) -> Result<usize, StoreError> {
        if done.is_empty() {
            return Ok(0);
        }
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let delivered = tx
            .prepare_cached(
                "UPDATE subscriptions SET delivered = GREATEST(delivered, $4), attempts = 0, claimed_until = 0,
                   next_attempt = $5, last_attempt = $5, last_success = $5, last_error = NULL
                 WHERE topic = $1 AND callback = $2 AND claimed_until = $3",
            )
            .await
            .map_err(pg_error)?;
        let failed = tx
            .prepare_cached(
                "UPDATE subscriptions SET attempts = attempts + 1, claimed_until = 0, next_attempt = $4,
                   last_attempt = $5, last_error = $6
                 WHERE topic = $1 AND callback = $2 AND claimed_until = $3",
            )
            .await
            .map_err(pg_error)?;
        let gone = tx
            .prepare_cached(
                "DELETE FROM subscriptions WHERE topic = $1 AND callback = $2 AND claimed_until = $3",
            )
            .await
            .map_err(pg_error)?;
        let released = tx
            .prepare_cached(
                "UPDATE subscriptions SET claimed_until = 0 WHERE topic = $1 AND callback = $2 AND claimed_until = $3",
            )
            .await
            .map_err(pg_error)?;
        let mut written = 0;
        for f in done {
            let c = &f.claim;
            let claim = millis(c.claimed_until);
            let at = millis(f.at);
            let n = match &f.outcome {
                Outcome::Delivered => {
                    tx.execute(
                        &delivered,
                        &[&c.topic, &c.callback, &claim, &c.updates, &at],
                    )
                    .await
                }
                Outcome::Failed { error, retry_at } => {
                    tx.execute(
                        &failed,
                        &[
                            &c.topic,
                            &c.callback,
                            &claim,
                            &millis(*retry_at),
                            &at,
                            &subs::clip_error(error),
                        ],
                    )
                    .await
                }
                Outcome::Gone => tx.execute(&gone, &[&c.topic, &c.callback, &claim]).await,
                Outcome::Released => {
                    tx.execute(&released, &[&c.topic, &c.callback, &claim])
                        .await
                }
            }
            .map_err(pg_error)?;
            written += n as usize;
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(written)
    }

    async fn next_delivery(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let row = client
            .query_one(
                "SELECT MIN(GREATEST(next_attempt, claimed_until)) FROM subscriptions
                 WHERE updates > delivered AND expires_at > $1",
                &[&millis(now)],
            )
            .await
            .map_err(pg_error)?;
        Ok(row.get::<_, Option<i64>>(0).map(subs::instant))
    }

    async fn purge_subscriptions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .execute(
                "DELETE FROM subscriptions WHERE expires_at <= $1",
                &[&millis(now)],
            )
            .await
            .map_err(pg_error)
    }

    async fn readership_secret(&self) -> Result<[u8; 16], StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let fresh = super::random_secret();
        client
            .execute(
                "INSERT INTO readership_secret (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                &[&&fresh[..]],
            )
            .await
            .map_err(pg_error)?;
        let row = client
            .query_one("SELECT secret FROM readership_secret WHERE id = 1", &[])
            .await
            .map_err(pg_error)?;
        row.get::<_, Vec<u8>>(0)
            .try_into()
            .map_err(|_| StoreError::Backend("the readership secret is not 16 bytes".into()))
    }

    async fn add_readership(&self, batch: &ReadershipBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        add_readership(&tx, batch).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn readership_days(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        after: Option<(chrono::NaiveDate, String)>,
        limit: usize,
    ) -> Result<Vec<StoredTotals>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let (after_day, after_feed) = after.map(|(d, f)| (day_text(d), f)).unwrap_or_default();
        client
            .query(
                &format!("SELECT {TOTALS_COLUMNS} FROM readership_days WHERE day BETWEEN $1 AND $2 AND (day, feed) > ($3, $4) ORDER BY day, feed LIMIT $5"),
                &[&day_text(from), &day_text(to), &after_day, &after_feed, &(limit as i64)],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(totals_row)
            .collect()
    }

    async fn readership_window(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        after: Option<String>,
        feeds: usize,
    ) -> Result<WindowRows, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        // One snapshot for the page's tables.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let (f, t) = (day_text(from), day_text(to));
        let mut rows = WindowRows {
            feeds: tx
                .query(
                    "SELECT DISTINCT feed FROM readership_days WHERE feed > $1 AND day BETWEEN $2 AND $3 ORDER BY feed LIMIT $4",
                    &[&after.unwrap_or_default(), &f, &t, &(feeds as i64)],
                )
                .await
                .map_err(pg_error)?
                .iter()
                .map(|r| r.get(0))
                .collect(),
            ..Default::default()
        };
        let (Some(first), Some(last)) = (rows.feeds.first().cloned(), rows.feeds.last().cloned())
        else {
            tx.commit().await.map_err(pg_error)?;
            return Ok(rows);
        };
        // The page's feeds are consecutive in feed order, so a range of feeds selects exactly them.
        let range: [&(dyn ToSql + Sync); 4] = [&first, &last, &f, &t];
        for r in tx
            .query(&format!("SELECT {TOTALS_COLUMNS} FROM readership_days WHERE feed BETWEEN $1 AND $2 AND day BETWEEN $3 AND $4"), &range)
            .await
            .map_err(pg_error)?
        {
            rows.totals.push(totals_row(&r)?);
        }
        for r in tx
            .query("SELECT feed, day, family, sketch FROM readership_sketches WHERE feed BETWEEN $1 AND $2 AND day BETWEEN $3 AND $4", &range)
            .await
            .map_err(pg_error)?
        {
            rows.sketches.push(ReaderSketch { feed: r.get(0), day: day_of(r.get(1))?, family: r.get(2), sketch: r.get(3) });
        }
        for r in tx
            .query("SELECT feed, day, aggregator, network, subscribers, first_seen, last_seen, verdict FROM readership_claims WHERE feed BETWEEN $1 AND $2 AND day BETWEEN $3 AND $4", &range)
            .await
            .map_err(pg_error)?
        {
            rows.claims.push(Claim {
                feed: r.get(0),
                day: day_of(r.get(1))?,
                aggregator: r.get(2),
                network: r.get(3),
                subscribers: count(r.get(4)),
                first_seen: r.get(5),
                last_seen: r.get(6),
                verdict: r.get(7),
            });
        }
        for r in tx
            .query("SELECT feed, day, partner, polls FROM readership_partners WHERE feed BETWEEN $1 AND $2 AND day BETWEEN $3 AND $4", &range)
            .await
            .map_err(pg_error)?
        {
            rows.partners.push(PartnerPolls { feed: r.get(0), day: day_of(r.get(1))?, partner: r.get(2), polls: count(r.get(3)) });
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(rows)
    }

    async fn readership_impolite(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        limit: usize,
    ) -> Result<Vec<ImpoliteSum>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        Ok(client
            .query(
                "SELECT feed, user_agent, LEAST(SUM(unconditional), 9223372036854775807)::bigint AS u,
                   LEAST(SUM(too_soon), 9223372036854775807)::bigint AS s
                 FROM readership_impolite WHERE day BETWEEN $1 AND $2
                 GROUP BY feed, user_agent ORDER BY s DESC, feed, user_agent LIMIT $3",
                &[&day_text(from), &day_text(to), &(limit as i64)],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| ImpoliteSum {
                feed: r.get(0),
                user_agent: r.get(1),
                unconditional: count(r.get(2)),
                too_soon: count(r.get(3)),
            })
            .collect())
    }

    async fn open_readership_days(
        &self,
        before: chrono::NaiveDate,
    ) -> Result<Vec<chrono::NaiveDate>, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .query(
                "SELECT DISTINCT day FROM readership_days WHERE subscribers IS NULL AND day < $1 ORDER BY day",
                &[&day_text(before)],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(|r| day_of(r.get(0)))
            .collect()
    }

    async fn close_readership_days(&self, days: &[ClosedDay]) -> Result<(), StoreError> {
        if days.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await.map_err(pool_error)?;
        let d: Vec<String> = days.iter().map(|x| day_text(x.day)).collect();
        let feeds: Vec<&str> = days.iter().map(|x| x.feed.as_str()).collect();
        let subs: Vec<i64> = days.iter().map(|x| stored(x.subscribers)).collect();
        let clients: Vec<&str> = days.iter().map(|x| x.clients.as_str()).collect();
        client
            .execute(
                "INSERT INTO readership_days AS d (day, feed, subscribers, clients)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
                 ON CONFLICT (day, feed) DO UPDATE SET subscribers = excluded.subscribers, clients = excluded.clients
                 WHERE d.subscribers IS NULL",
                &[&d, &feeds, &subs, &clients],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    async fn prune_readership(
        &self,
        window_before: chrono::NaiveDate,
        all_before: chrono::NaiveDate,
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let (w, a) = (
            day_text(window_before.max(all_before)),
            day_text(all_before),
        );
        for table in ["readership_sketches", "readership_claims"] {
            tx.execute(&format!("DELETE FROM {table} WHERE day < $1"), &[&w])
                .await
                .map_err(pg_error)?;
        }
        for table in [
            "readership_days",
            "readership_partners",
            "readership_impolite",
        ] {
            tx.execute(&format!("DELETE FROM {table} WHERE day < $1"), &[&a])
                .await
                .map_err(pg_error)?;
        }
        tx.commit().await.map_err(pg_error)
    }

    async fn announce(&self, feeds: &BTreeSet<FeedKey>) -> Result<(), StoreError> {
        if feeds.is_empty() {
            return Ok(());
        }
        let client = self.pool.get().await.map_err(pool_error)?;
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&CHANNEL, &payload(&self.instance, feeds)],
            )
            .await
            .map_err(pg_error)?;
        Ok(())
    }

    fn changes(&self) -> Option<mpsc::UnboundedReceiver<Change>> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(listen(self.config.clone(), self.instance.clone(), tx));
        Some(rx)
    }
}

/// Keeps a `LISTEN` connection open for the life of the receiver, forwarding other replicas'
/// announcements. After any loss of the connection it sends [`Change::All`] once reconnected:
/// notifications sent meanwhile are gone, so the only safe assumption is that everything changed.
async fn listen(
    config: tokio_postgres::Config,
    instance: String,
    tx: mpsc::UnboundedSender<Change>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut reconnecting = false;
    loop {
        if tx.is_closed() {
            return;
        }
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (ntx, mut nrx) = mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut stream =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    use futures::StreamExt;
                    while let Some(msg) = stream.next().await {
                        match msg {
                            Ok(AsyncMessage::Notification(n)) => {
                                if ntx.send(n.payload().to_string()).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute(&format!("LISTEN {CHANNEL}"))
                    .await
                    .is_ok()
                {
                    backoff = Duration::from_millis(100);
                    if reconnecting {
                        tracing::warn!(
                            "notification connection restored; dropping the whole cache"
                        );
                        let _ = tx.send(Change::All);
                    }
                    tracing::info!(channel = CHANNEL, "listening for other replicas' changes");
                    while let Some(p) = nrx.recv().await {
                        match parse_payload(&p) {
                            Some((from, _)) if from == instance => {}
                            Some((_, change)) => {
                                if tx.send(change).is_err() {
                                    return;
                                }
                            }
                            None => {
                                let _ = tx.send(Change::All);
                            }
                        }
                    }
                }
                driver.abort();
                tracing::warn!("lost the notification connection to PostgreSQL; reconnecting");
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the notification connection; retrying")
            }
        }
        reconnecting = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Fresh databases for tests, on the server `BANTIN_TEST_DATABASE_URL` points at (used by this
/// module's tests and by the integration tests).
#[doc(hidden)]
pub mod test_support {
    use std::str::FromStr;

    use tokio_postgres::NoTls;

    /// The test server's admin URL; panics with instructions when unset.
    pub fn admin_url() -> String {
        std::env::var("BANTIN_TEST_DATABASE_URL")
            .expect("set BANTIN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres to run PostgreSQL tests")
    }

    pub async fn admin() -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&admin_url(), NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(conn);
        client
    }

    /// Creates an empty database and returns its URL.
    pub async fn fresh_database() -> String {
        let name = format!("bantin_test_{:016x}", super::rand_u64());
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("CREATE DATABASE");
        url_of(&name)
    }

    /// The URL of database `name` on the test server.
    pub fn url_of(name: &str) -> String {
        let cfg = tokio_postgres::Config::from_str(&admin_url()).expect("a PostgreSQL URL");
        let host = match &cfg.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        };
        let port = cfg.get_ports().first().copied().unwrap_or(5432);
        let user = cfg.get_user().unwrap_or("postgres").to_string();
        format!("postgres://{user}@{host}:{port}/{name}")
    }

    /// The database name of a URL made by [`fresh_database`].
    pub fn name_of(url: &str) -> String {
        url.rsplit('/').next().unwrap_or_default().to_string()
    }

    /// Drops a test database, disconnecting whoever still uses it.
    pub async fn drop_database(url: &str) {
        let name = name_of(url);
        let _ = admin()
            .await
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Selector;

    #[test]
    fn payload_round_trips_and_overflows_to_everything() {
        let feeds: BTreeSet<FeedKey> = [
            FeedKey::new("vi", Selector::All),
            FeedKey::new("vi", Selector::Tag("gia-lua".into())),
        ]
        .into();
        let p = payload("abc", &feeds);
        let (inst, change) = parse_payload(&p).unwrap();
        assert_eq!(inst, "abc");
        assert_eq!(change, Change::Feeds(feeds.into_iter().collect()));
        let many: BTreeSet<FeedKey> = (0..2000)
            .map(|i| FeedKey::new("vi", Selector::Tag(format!("tag-{i}"))))
            .collect();
        assert_eq!(
            parse_payload(&payload("abc", &many)).unwrap().1,
            Change::All
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs BANTIN_TEST_DATABASE_URL"]
    async fn the_pool_stays_bounded_and_idle_connections_close() {
        let url = test_support::fresh_database().await;
        let bounds = PoolBounds {
            readers: 2,
            wait: Duration::from_secs(2),
            idle: Duration::from_secs(60),
        };
        let store = std::sync::Arc::new(PgStore::connect_with(&url, bounds).await.unwrap());
        let reads = (0..40).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.count().await })
        });
        for r in futures::future::join_all(reads).await {
            assert_eq!(r.unwrap().unwrap(), 0);
        }
        let open = store.open_connections();
        assert!((1..=4).contains(&open), "{open} connections, at most 2 + 2");
        assert_eq!(store.max_descriptors(), 5);
        assert_eq!(store.close_idle(Duration::from_secs(60)), 0);
        assert_eq!(store.close_idle(Duration::ZERO), open);
        assert_eq!(store.open_connections(), 0);
        assert_eq!(
            store.count().await.unwrap(),
            0,
            "a new one is opened on demand"
        );
        drop(store);
        test_support::drop_database(&url).await;
    }

    #[tokio::test]
    #[ignore = "needs BANTIN_TEST_DATABASE_URL"]
    async fn postgres_passes_the_store_contract() {
        let url = test_support::fresh_database().await;
        let store = PgStore::connect(&url).await.unwrap();
        crate::store::contract::run_all(&store).await;
        drop(store);
        test_support::drop_database(&url).await;
    }

    /// A database turned read-only (as an operator does while a disk is being dealt with, or a
    /// standby is) makes writes unavailable, not failed: a 503 with `Retry-After`, not a 500.
    #[tokio::test]
    #[ignore = "needs BANTIN_TEST_DATABASE_URL"]
    async fn a_read_only_database_is_unavailable_and_keeps_nothing() {
        let url = test_support::fresh_database().await;
        let name = test_support::name_of(&url);
        let store = PgStore::connect(&url).await.unwrap();
        let admin = test_support::admin().await;
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {name} SET default_transaction_read_only = on"
            ))
            .await
            .unwrap();
        // The pool's sessions took the old setting; end them so new ones take the new.
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&name],
            )
            .await
            .unwrap();
        // Reads still work once the pool has replaced its connections.
        let mut tries = 0;
        while store.count().await.is_err() {
            tries += 1;
            assert!(tries < 50, "the pool never reconnected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let c = crate::article::tests::config();
        let a = Article::from_input(crate::article::tests::input(), &c).unwrap();
        match store.upsert(&a).await {
            Err(StoreError::Unavailable(m)) => assert!(m.contains("25006"), "{m}"),
            other => panic!("a write to a read-only database: {other:?}"),
        }
        assert_eq!(store.get(&a.id).await.unwrap(), None, "nothing was written");
        drop(store);
        test_support::drop_database(&url).await;
    }

    #[tokio::test]
    #[ignore = "needs BANTIN_TEST_DATABASE_URL"]
    async fn replicas_migrating_at_once_apply_each_migration_once() {
        let url = test_support::fresh_database().await;
        let (a, b, c) = tokio::join!(
            PgStore::connect(&url),
            PgStore::connect(&url),
            PgStore::connect(&url)
        );
        let (a, _b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
        let client = a.pool.get().await.unwrap();
        let n: i64 = client
            .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, MIGRATIONS.len() as i64);
        test_support::drop_database(&url).await;
    }
}
