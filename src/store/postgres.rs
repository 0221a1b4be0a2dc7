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

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, NoTls};

use super::readership::{
    AggregatorCount, ClosedDay, DayTotals, Impolite, PartnerPolls, ReaderSeen, ReadershipBatch,
    ReadershipRows, StoredTotals, day_text, parse_day,
};
use super::subscriptions::{self as subs, Claim, Finished, Outcome, Subscription};
use super::upstream::{SourceState, millis};
use super::{Change, Facet, PageQuery, Store, StoreError, Upsert, decide, from_doc, to_doc};
use crate::article::{Article, Status};
use crate::feed::{FeedKey, Selector};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/postgres/0001_articles.sql")),
    (2, include_str!("migrations/postgres/0002_sources.sql")),
    (3, include_str!("migrations/postgres/0003_readership.sql")),
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
    config: tokio_postgres::Config,
    /// Tells this replica's own notifications apart from the others'.
    instance: String,
}

fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let transient = e.is_closed()
        || e.code().is_none_or(|c| {
            let c = c.code();
            c.starts_with("08") || c.starts_with("57P") || c == "53300"
        });
    if transient {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
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

/// The SQL filter for a feed, with its text parameters ($1, $2).
fn feed_filter(feed: &FeedKey) -> (&'static str, Vec<String>, &'static str, &'static str) {
    let lang = feed.lang.clone();
    match &feed.selector {
        Selector::All => (
            "FROM articles a WHERE a.status = 'published' AND a.lang = $1",
            vec![lang],
            "a.published_at",
            "a.id",
        ),
        Selector::Category(c) => (
            "FROM articles a WHERE a.status = 'published' AND a.lang = $1 AND a.category = $2",
            vec![lang, c.clone()],
            "a.published_at",
            "a.id",
        ),
        Selector::Author(s) => (
            "FROM articles a WHERE a.status = 'published' AND a.lang = $1 AND a.author_slug = $2",
            vec![lang, s.clone()],
            "a.published_at",
            "a.id",
        ),
        Selector::Tag(s) => (
            "FROM article_tags t JOIN articles a ON a.id = t.article_id WHERE t.lang = $1 AND t.tag_slug = $2",
            vec![lang, s.clone()],
            "t.published_at",
            "t.article_id",
        ),
    }
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

/// Adds one readership flush in the caller's transaction: one statement per table, each row set
/// passed as arrays (`unnest`), so a flush costs the same few round trips however many feeds and
/// readers it carries.
async fn add_readership(
    tx: &deadpool_postgres::Transaction<'_>,
    b: &ReadershipBatch,
) -> Result<(), StoreError> {
    let n = |v: u64| v.min(i64::MAX as u64) as i64;
    if !b.totals.is_empty() {
        let days: Vec<String> = b.totals.iter().map(|t| day_text(t.day)).collect();
        let feeds: Vec<&str> = b.totals.iter().map(|t| t.feed.as_str()).collect();
        let polls: Vec<i64> = b.totals.iter().map(|t| n(t.polls)).collect();
        let nm: Vec<i64> = b.totals.iter().map(|t| n(t.not_modified)).collect();
        let bytes: Vec<i64> = b.totals.iter().map(|t| n(t.bytes)).collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO readership_days AS d (day, feed, polls, not_modified, bytes)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
                 ON CONFLICT (day, feed) DO UPDATE SET polls = d.polls + excluded.polls,
                   not_modified = d.not_modified + excluded.not_modified, bytes = d.bytes + excluded.bytes",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(&stmt, &[&days, &feeds, &polls, &nm, &bytes])
            .await
            .map_err(pg_error)?;
    }
    if !b.aggregators.is_empty() {
        let a = &b.aggregators;
        let days: Vec<String> = a.iter().map(|x| day_text(x.day)).collect();
        let feeds: Vec<&str> = a.iter().map(|x| x.feed.as_str()).collect();
        let clients: Vec<&str> = a.iter().map(|x| x.client.as_str()).collect();
        let ids: Vec<&str> = a.iter().map(|x| x.feed_id.as_str()).collect();
        let subs: Vec<i64> = a.iter().map(|x| n(x.subscribers)).collect();
        let at: Vec<i64> = a.iter().map(|x| x.observed_at).collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO readership_aggregators AS g (day, feed, client, feed_id, subscribers, observed_at)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
                 ON CONFLICT (day, feed, client, feed_id) DO UPDATE SET subscribers = excluded.subscribers,
                   observed_at = excluded.observed_at WHERE excluded.observed_at >= g.observed_at",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(&stmt, &[&days, &feeds, &clients, &ids, &subs, &at])
            .await
            .map_err(pg_error)?;
    }
    if !b.partners.is_empty() {
        let p = &b.partners;
        let days: Vec<String> = p.iter().map(|x| day_text(x.day)).collect();
        let feeds: Vec<&str> = p.iter().map(|x| x.feed.as_str()).collect();
        let ids: Vec<&str> = p.iter().map(|x| x.partner.as_str()).collect();
        let polls: Vec<i64> = p.iter().map(|x| n(x.polls)).collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO readership_partners AS p (day, feed, partner, polls)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
                 ON CONFLICT (day, feed, partner) DO UPDATE SET polls = p.polls + excluded.polls",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(&stmt, &[&days, &feeds, &ids, &polls])
            .await
            .map_err(pg_error)?;
    }
    if !b.readers.is_empty() {
        let r = &b.readers;
        let days: Vec<String> = r.iter().map(|x| day_text(x.day)).collect();
        let feeds: Vec<&str> = r.iter().map(|x| x.feed.as_str()).collect();
        let readers: Vec<i64> = r.iter().map(|x| x.reader).collect();
        let clients: Vec<&str> = r.iter().map(|x| x.client.as_str()).collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO readership_readers (day, feed, reader, client)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
                 ON CONFLICT (day, feed, reader) DO NOTHING",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(&stmt, &[&days, &feeds, &readers, &clients])
            .await
            .map_err(pg_error)?;
    }
    if !b.impolite.is_empty() {
        let i = &b.impolite;
        let days: Vec<String> = i.iter().map(|x| day_text(x.day)).collect();
        let feeds: Vec<&str> = i.iter().map(|x| x.feed.as_str()).collect();
        let uas: Vec<&str> = i.iter().map(|x| x.user_agent.as_str()).collect();
        let unc: Vec<i64> = i.iter().map(|x| n(x.unconditional)).collect();
        let soon: Vec<i64> = i.iter().map(|x| n(x.too_soon)).collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO readership_impolite AS i (day, feed, user_agent, unconditional, too_soon)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[])
                 ON CONFLICT (day, feed, user_agent) DO UPDATE SET unconditional = i.unconditional + excluded.unconditional,
                   too_soon = i.too_soon + excluded.too_soon",
            )
            .await
            .map_err(pg_error)?;
        tx.execute(&stmt, &[&days, &feeds, &uas, &unc, &soon])
            .await
            .map_err(pg_error)?;
    }
    Ok(())
}

fn day_of(s: &str) -> Result<chrono::NaiveDate, StoreError> {
    parse_day(s).ok_or_else(|| StoreError::Backend(format!("bad readership day `{s}`")))
}

impl PgStore {
    /// Connects, builds the pool and runs pending migrations.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
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
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(TIMEOUT))
            .create_timeout(Some(TIMEOUT))
            .recycle_timeout(Some(TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let store = PgStore {
            pool,
            config,
            instance: format!("{:016x}", rand_u64()),
        };
        store.migrate().await?;
        Ok(store)
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
        let (from, args, p, id) = feed_filter(q.feed);
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> =
            args.into_iter().map(|a| Box::new(a) as _).collect();
        params.push(Box::new(q.now.timestamp()));
        let t = params.len();
        let cond = if q.offset > 0 {
            // Find the first row of the page with an index-only skip, then read rows by keyset.
            let sql = format!(
                "SELECT {p}, {id} {from} AND {p} <= ${t} ORDER BY {p} DESC, {id} DESC LIMIT 1 OFFSET {}",
                q.offset
            );
            let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|b| &**b as _).collect();
            let Some(row) = client.query_opt(&stmt, &refs).await.map_err(pg_error)? else {
                return Ok(Vec::new());
            };
            params[t - 1] = Box::new(row.get::<_, i64>(0));
            params.push(Box::new(row.get::<_, String>(1)));
            // A row-value comparison is one index condition on the feed index (an OR of two
            // comparisons would only filter).
            format!(" AND ({p}, {id}) <= (${t}, ${})", t + 1)
        } else {
            format!(" AND {p} <= ${t}")
        };
        let sql = format!(
            "SELECT a.doc {from}{cond} ORDER BY {p} DESC, {id} DESC LIMIT {}",
            q.limit
        );
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
        let (from, args, p, id) = feed_filter(feed);
        let n = args.len() + 1;
        let sql = format!("SELECT {p} {from} AND {p} > ${n} ORDER BY {p} ASC, {id} ASC LIMIT 1");
        let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
        let t = now.timestamp();
        let mut refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        refs.push(&t);
        let row = client.query_opt(&stmt, &refs).await.map_err(pg_error)?;
        Ok(row.map(|r| instant(r.get(0))))
    }

    async fn count_visible(&self, feed: &FeedKey, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let (from, args, p, _) = feed_filter(feed);
        let n = args.len() + 1;
        let sql = format!("SELECT COUNT(*) {from} AND {p} <= ${n}");
        let stmt = client.prepare_cached(&sql).await.map_err(pg_error)?;
        let t = now.timestamp();
        let mut refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a as _).collect();
        refs.push(&t);
        let row = client.query_one(&stmt, &refs).await.map_err(pg_error)?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    async fn facets(&self, now: DateTime<Utc>) -> Result<(Vec<Facet>, Vec<Facet>), StoreError> {
        let client = self.pool.get().await.map_err(pool_error)?;
        let t = now.timestamp();
        let facet = |r: &tokio_postgres::Row| Facet {
            lang: r.get(0),
            slug: r.get(1),
            name: r.get(2),
            count: r.get::<_, i64>(3) as u64,
        };
        let tags = client
            .query(
                "SELECT lang, tag_slug, MIN(tag), COUNT(*) FROM article_tags WHERE published_at <= $1
                 GROUP BY lang, tag_slug ORDER BY lang, tag_slug",
                &[&t],
            )
            .await
            .map_err(pg_error)?
            .iter()
            .map(facet)
            .collect();
        let authors = client
            .query(
                "SELECT lang, author_slug, MIN(doc::jsonb ->> 'author'), COUNT(*) FROM articles
                 WHERE status = 'published' AND published_at <= $1 AND author_slug <> ''
                 GROUP BY lang, author_slug ORDER BY lang, author_slug",
                &[&t],
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
    ) -> Result<Vec<Claim>, StoreError> {
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
            .map(|r| Claim {
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

    async fn readership(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
    ) -> Result<ReadershipRows, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        // One snapshot for all five tables.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_error)?;
        let (f, t) = (day_text(from), day_text(to));
        let u = |v: i64| v.max(0) as u64;
        let mut rows = ReadershipRows::default();
        for r in tx
            .query("SELECT day, feed, polls, not_modified, bytes, subscribers, clients FROM readership_days WHERE day BETWEEN $1 AND $2 ORDER BY day, feed", &[&f, &t])
            .await
            .map_err(pg_error)?
        {
            let subs: Option<i64> = r.get(5);
            let clients: Option<String> = r.get(6);
            rows.totals.push(StoredTotals {
                totals: DayTotals { day: day_of(r.get(0))?, feed: r.get(1), polls: u(r.get(2)), not_modified: u(r.get(3)), bytes: u(r.get(4)) },
                closed: subs.map(|s| (u(s), clients.unwrap_or_else(|| "[]".into()))),
            });
        }
        for r in tx
            .query("SELECT day, feed, client, feed_id, subscribers, observed_at FROM readership_aggregators WHERE day BETWEEN $1 AND $2 ORDER BY day, feed, client, feed_id", &[&f, &t])
            .await
            .map_err(pg_error)?
        {
            rows.aggregators.push(AggregatorCount { day: day_of(r.get(0))?, feed: r.get(1), client: r.get(2), feed_id: r.get(3), subscribers: u(r.get(4)), observed_at: r.get(5) });
        }
        for r in tx
            .query("SELECT day, feed, partner, polls FROM readership_partners WHERE day BETWEEN $1 AND $2 ORDER BY day, feed, partner", &[&f, &t])
            .await
            .map_err(pg_error)?
        {
            rows.partners.push(PartnerPolls { day: day_of(r.get(0))?, feed: r.get(1), partner: r.get(2), polls: u(r.get(3)) });
        }
        for r in tx
            .query("SELECT day, feed, reader, client FROM readership_readers WHERE day BETWEEN $1 AND $2 ORDER BY day, feed, reader", &[&f, &t])
            .await
            .map_err(pg_error)?
        {
            rows.readers.push(ReaderSeen { day: day_of(r.get(0))?, feed: r.get(1), reader: r.get(2), client: r.get(3) });
        }
        for r in tx
            .query("SELECT day, feed, user_agent, unconditional, too_soon FROM readership_impolite WHERE day BETWEEN $1 AND $2 ORDER BY day, feed, user_agent", &[&f, &t])
            .await
            .map_err(pg_error)?
        {
            rows.impolite.push(Impolite { day: day_of(r.get(0))?, feed: r.get(1), user_agent: r.get(2), unconditional: u(r.get(3)), too_soon: u(r.get(4)) });
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(rows)
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
        let subs: Vec<i64> = days
            .iter()
            .map(|x| x.subscribers.min(i64::MAX as u64) as i64)
            .collect();
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
        readers_before: chrono::NaiveDate,
        all_before: chrono::NaiveDate,
    ) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_error)?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let (r, a) = (day_text(readers_before), day_text(all_before));
        tx.execute("DELETE FROM readership_readers WHERE day < $1", &[&r])
            .await
            .map_err(pg_error)?;
        for table in [
            "readership_days",
            "readership_aggregators",
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

    #[tokio::test]
    #[ignore = "needs BANTIN_TEST_DATABASE_URL"]
    async fn postgres_passes_the_store_contract() {
        let url = test_support::fresh_database().await;
        let store = PgStore::connect(&url).await.unwrap();
        crate::store::contract::run_all(&store).await;
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
