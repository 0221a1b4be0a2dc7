//! The article store: one [`Store`] trait, two implementations (SQLite embedded, PostgreSQL for
//! many replicas), one contract.
//!
//! The trait is shaped around what the rest of bantin asks of storage, not around SQL: upsert an
//! article with the stale-write rule, read one, delete one, and read one page of one feed at an
//! instant. Feed pages are keyset queries on `(lang, <selector>, published_at DESC, id DESC)`
//! indexes restricted to published rows, so the first page costs the same at any corpus size; a
//! deeper page finds its boundary with an index-only skip and then reads rows by keyset.
//!
//! The decision of what an upsert means ([`decide`]) is a pure function shared by both backends,
//! so they cannot disagree on idempotence or on the 409 rule; each backend only applies it inside
//! its own transaction. `contract` holds the tests both backends must pass. Both hold their
//! connections in bounded pools ([`pool`]) whose descriptors the HTTP layer reserves.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::article::Article;
use crate::model::{FeedKey, Selector};
use readership::{ClosedDay, ImpoliteSum, ReadershipBatch, StoredTotals, WindowRows};
use subscriptions::{Claim, Finished, Subscription};
use upstream::SourceState;

pub mod backend;
mod error;
pub mod pool;
pub mod postgres;
pub mod readership;
mod sql;
pub mod sqlite;
pub mod subscriptions;
pub mod upstream;

pub use error::StoreError;

#[cfg(test)]
pub(crate) mod contract;

/// Whether a SQLite result code is a passing condition of the database rather than a fault of
/// the query: busy or locked, cannot open, I/O failure, permission, read-only, disk full
/// (`SQLITE_FULL`, also what `PRAGMA max_page_count` gives), out of memory.
pub fn sqlite_code_is_unavailable(code: rusqlite::ErrorCode) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        code,
        DatabaseBusy
            | DatabaseLocked
            | CannotOpen
            | SystemIoFailure
            | PermissionDenied
            | ReadOnly
            | DiskFull
            | OutOfMemory
    )
}

/// Whether a PostgreSQL SQLSTATE is a passing condition of the server rather than a fault of the
/// query: connection exceptions (class 08), operator intervention such as a shutdown or a
/// cancelled query (57P), insufficient resources (class 53: disk full 53100, out of memory
/// 53200, too many connections 53300), and a read-only transaction (25006: a standby, or
/// `default_transaction_read_only` set while the disk is being dealt with).
pub fn sqlstate_is_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57P") || code.starts_with("53") || code == "25006"
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upsert {
    Created,
    /// The stored article changed; `previous` is what it replaced (for invalidation).
    Updated {
        previous: Box<Article>,
    },
    /// The same article was already stored: nothing changed, nothing to invalidate.
    Unchanged,
    /// The stored article has a newer `updated_at`; the write was refused.
    Stale {
        stored_updated_at: DateTime<Utc>,
    },
}

pub use crate::model::{Facet, FacetBound};

/// SQL forms of a [`FacetBound`].
impl FacetBound {
    /// `limit` as SQL takes it.
    pub fn sql_limit(&self) -> i64 {
        i64::try_from(self.limit).unwrap_or(i64::MAX)
    }

    pub fn sql_min(&self) -> i64 {
        i64::try_from(self.min_articles).unwrap_or(i64::MAX)
    }
}

/// A facet's display name is cut to this many characters, and a facet whose slug is longer than
/// [`MAX_FACET_SLUG_BYTES`] is not listed (its feed still exists): a listing row then weighs at
/// most a few kilobytes, whatever a byline holds.
pub const MAX_FACET_NAME_CHARS: usize = 200;
pub const MAX_FACET_SLUG_BYTES: usize = 200;

/// One page of one feed at one instant: `limit` rows after skipping `offset`.
#[derive(Debug, Clone)]
pub struct PageQuery<'a> {
    pub feed: &'a FeedKey,
    pub now: DateTime<Utc>,
    pub offset: usize,
    pub limit: usize,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// File descriptors this store's connections may hold at most (its pools are bounded), so
    /// the HTTP layer can keep them out of the connection cap ([`crate::http::fd_budget`]).
    fn max_descriptors(&self) -> usize;

    /// Inserts or replaces one article, applying [`decide`] atomically.
    async fn upsert(&self, article: &Article) -> Result<Upsert, StoreError>;

    /// Upserts many articles in one transaction; one outcome per article, in order.
    async fn upsert_batch(&self, articles: &[Article]) -> Result<Vec<Upsert>, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<Article>, StoreError>;

    /// The articles with these ids that exist (any status), in no particular order.
    async fn get_many(&self, ids: &[String]) -> Result<Vec<Article>, StoreError>;

    /// Removes an article; returns what was removed.
    async fn delete(&self, id: &str) -> Result<Option<Article>, StoreError>;

    /// Visible articles of one feed, newest first (ties by id, descending).
    async fn page(&self, query: &PageQuery<'_>) -> Result<Vec<Article>, StoreError>;

    /// The earliest `published_at` after `now` of a published article in this feed: the moment
    /// the feed's cached pages stop being true.
    async fn next_publication(
        &self,
        feed: &FeedKey,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// How many articles of one feed are visible at `now` (what its pages hold in all).
    async fn count_visible(&self, feed: &FeedKey, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Tags and bylines with visible articles, within `bound` (each kind on its own), ordered by
    /// language then slug; names cut to [`MAX_FACET_NAME_CHARS`], slugs over
    /// [`MAX_FACET_SLUG_BYTES`] left out.
    async fn facets(
        &self,
        now: DateTime<Utc>,
        bound: FacetBound,
    ) -> Result<(Vec<Facet>, Vec<Facet>), StoreError>;

    /// Number of stored articles (any status).
    async fn count(&self) -> Result<u64, StoreError>;

    /// A cheap round trip that fails when the database does.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The key of the readers' hash, made on first use and the same for every process sharing
    /// this database (so one reader polling two replicas is one reader).
    async fn readership_secret(&self) -> Result<[u8; 16], StoreError>;

    /// Adds one flush of readership counts, in one transaction, within the bounds per
    /// feed-day (see [`readership`] for how each kind of row combines with what is stored and
    /// how concurrent writers are kept from losing each other's merges).
    async fn add_readership(&self, batch: &ReadershipBatch) -> Result<(), StoreError>;

    /// Day totals of `from..=to` in (day, feed) order after `after`, at most `limit` rows.
    async fn readership_days(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        after: Option<(chrono::NaiveDate, String)>,
        limit: usize,
    ) -> Result<Vec<StoredTotals>, StoreError>;

    /// One page of the window `from..=to`: the first `feeds` feeds after `after` (in feed
    /// order) with a day totals row in the range, and every row of theirs in the range.
    async fn readership_window(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        after: Option<String>,
        feeds: usize,
    ) -> Result<WindowRows, StoreError>;

    /// Impolite fetches of `from..=to` summed per feed and User-Agent, most too-soon first, at
    /// most `limit` (summed by the database, saturating).
    async fn readership_impolite(
        &self,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        limit: usize,
    ) -> Result<Vec<ImpoliteSum>, StoreError>;

    /// Days before `before` with a feed whose figures are not final yet, oldest first.
    async fn open_readership_days(
        &self,
        before: chrono::NaiveDate,
    ) -> Result<Vec<chrono::NaiveDate>, StoreError>;

    /// Writes final figures; a day and feed already closed keeps its first figures (replicas
    /// closing the same day at once agree anyway: they read the same rows).
    async fn close_readership_days(&self, days: &[ClosedDay]) -> Result<(), StoreError>;

    /// Deletes sketches and claims of days before `window_before` (the figures they made are
    /// closed by then) and every readership row of days before `all_before`.
    async fn prune_readership(
        &self,
        window_before: chrono::NaiveDate,
        all_before: chrono::NaiveDate,
    ) -> Result<(), StoreError>;

    /// Every upstream source's state, ordered by id.
    async fn source_states(&self) -> Result<Vec<SourceState>, StoreError>;

    /// Records a source not seen before; `false` (and nothing changed) when it exists.
    async fn add_source(&self, state: &SourceState) -> Result<bool, StoreError>;

    /// The lease: claims source `id` for one poll if it is due at `now`, by moving its next poll
    /// to `until` in one conditional update, and returns its state; `None` when it is not due
    /// (or another replica claimed it first).
    async fn claim_source(
        &self,
        id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Option<SourceState>, StoreError>;

    /// Writes a source's state (inserting it if needed).
    async fn save_source(&self, state: &SourceState) -> Result<(), StoreError>;

    /// Writes the state of a source polled under the lease `lease` (what
    /// [`Store::claim_source`] set), only if the lease is still held: a poll that outlived its
    /// lease (another replica has polled since) must not roll the state back. `false` when it
    /// was not written.
    async fn finish_source(
        &self,
        state: &SourceState,
        lease: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Records a verified subscription, or renews one: its host, secret and lease are replaced
    /// and its delivery state is kept (a renewal of a lease that had ended starts afresh, with
    /// nothing pending). (topic, callback) is the key: a subscription is never duplicated.
    async fn save_subscription(&self, sub: &Subscription) -> Result<(), StoreError>;

    /// Removes a subscription; `false` when there was none.
    async fn remove_subscription(&self, topic: &str, callback: &str) -> Result<bool, StoreError>;

    /// One subscription, whether its lease has ended or not.
    async fn subscription(
        &self,
        topic: &str,
        callback: &str,
    ) -> Result<Option<Subscription>, StoreError>;

    /// Every subscription whose lease has not ended at `now`, ordered by topic then callback.
    async fn subscriptions(&self, now: DateTime<Utc>) -> Result<Vec<Subscription>, StoreError>;

    /// Active subscriptions at `now`: in all, and of callback host `host`.
    async fn count_subscriptions(
        &self,
        host: &str,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64), StoreError>;

    /// Active subscriptions per (topic, callback host) at `now`, ordered by topic then host.
    async fn subscription_hosts(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String, u64)>, StoreError>;

    /// A write changed these topics: each active subscription to one becomes pending, due at
    /// `now` unless it already waits for a retry (its backoff is kept). Returns the rows marked.
    async fn mark_published(
        &self,
        topics: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// The delivery lease: claims at most `limit` pending deliveries due at `now` (active, not
    /// claimed by anyone, callback host not in `busy`), the longest due first, by moving their
    /// `claimed_until` to `until` in one conditional update: of several replicas claiming at
    /// once, each row goes to one.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
        busy: &[String],
    ) -> Result<Vec<Claim>, StoreError>;

    /// Writes the outcomes of claimed deliveries in one transaction, each only if its claim is
    /// still held (a delivery that outlived its lease changes nothing). Returns how many were
    /// written.
    async fn finish_deliveries(&self, done: &[Finished]) -> Result<usize, StoreError>;

    /// When the next pending delivery can be claimed (at once or later), if any is pending.
    async fn next_delivery(&self, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Deletes the subscriptions whose lease ended by `now`; returns how many.
    async fn purge_subscriptions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Tells other processes serving from this database which feeds a write changed. A no-op
    /// for a store only one process serves from.
    async fn announce(&self, _feeds: &BTreeSet<FeedKey>) -> Result<(), StoreError> {
        Ok(())
    }

    /// Other processes' announcements, for as long as the receiver lives; `None` when the
    /// backend has no way to hear them.
    fn changes(&self) -> Option<mpsc::UnboundedReceiver<Change>> {
        None
    }
}

/// A change another replica announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These feeds changed.
    Feeds(Vec<FeedKey>),
    /// Anything may have changed (announcements were missed, or too many to list).
    All,
}

/// A feed key as one line of text: `lang<TAB>kind<TAB>value`.
pub fn encode_key(k: &FeedKey) -> String {
    let (kind, v) = match &k.selector {
        Selector::All => ("all", ""),
        Selector::Category(c) => ("category", c.as_str()),
        Selector::Tag(t) => ("tag", t.as_str()),
        Selector::Author(a) => ("author", a.as_str()),
    };
    format!("{}\t{kind}\t{v}", k.lang)
}

pub fn decode_key(line: &str) -> Option<FeedKey> {
    let mut it = line.splitn(3, '\t');
    let (lang, kind, v) = (it.next()?, it.next()?, it.next()?.to_string());
    let selector = match kind {
        "all" => Selector::All,
        "category" => Selector::Category(v),
        "tag" => Selector::Tag(v),
        "author" => Selector::Author(v),
        _ => return None,
    };
    Some(FeedKey::new(lang, selector))
}

/// What an upsert of `new` over `existing` must do. `updated_at` orders versions: an older one is
/// stale (a late retry must never overwrite a correction); an identical one is a no-op, so an
/// import or a retried PUT invalidates nothing.
pub fn decide(existing: Option<&Article>, new: &Article) -> Upsert {
    match existing {
        None => Upsert::Created,
        Some(old) if new.updated_at < old.updated_at => Upsert::Stale {
            stored_updated_at: old.updated_at,
        },
        Some(old) if old == new => Upsert::Unchanged,
        Some(old) => Upsert::Updated {
            previous: Box::new(old.clone()),
        },
    }
}

/// Serialises an article for the `doc` column (both backends store the normalised article whole,
/// beside the few indexed columns queries need).
pub(crate) fn to_doc(a: &Article) -> String {
    serde_json::to_string(a).expect("an Article always serialises")
}

pub(crate) fn from_doc_bytes(doc: &[u8]) -> Result<Article, StoreError> {
    let text = simdutf8::basic::from_utf8(doc)
        .map_err(|_| StoreError::Backend("a stored article is not UTF-8".into()))?;
    from_doc(text)
}

pub(crate) fn from_doc(doc: &str) -> Result<Article, StoreError> {
    serde_json::from_str(doc)
        .map_err(|e| StoreError::Backend(format!("unreadable stored article: {e}")))
}

/// 16 random bytes from the operating system (a readership secret), without a RNG crate.
pub(crate) fn random_secret() -> [u8; 16] {
    use std::io::Read;
    let mut out = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .is_err()
    {
        // No /dev/urandom: std's per-process random hasher keys, mixed with the time.
        use std::hash::{BuildHasher, Hasher};
        for chunk in out.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::tests::{config, input};

    #[test]
    fn full_disks_and_read_only_stores_are_unavailable() {
        use rusqlite::ErrorCode::*;
        for c in [
            DiskFull,
            ReadOnly,
            OutOfMemory,
            DatabaseBusy,
            DatabaseLocked,
            CannotOpen,
        ] {
            assert!(sqlite_code_is_unavailable(c), "{c:?}");
        }
        for c in [
            ConstraintViolation,
            DatabaseCorrupt,
            TypeMismatch,
            ApiMisuse,
        ] {
            assert!(!sqlite_code_is_unavailable(c), "{c:?}");
        }
        for c in [
            "53100", "53200", "53300", "53000", "25006", "08006", "57P01", "57P03",
        ] {
            assert!(sqlstate_is_unavailable(c), "{c}");
        }
        for c in ["23505", "42P01", "22001", "25P02", "40001"] {
            assert!(!sqlstate_is_unavailable(c), "{c}");
        }
    }

    #[test]
    fn decide_orders_versions_by_updated_at() {
        let c = config();
        let v1 = Article::from_input(input(), &c).unwrap();
        let mut later = input();
        later.updated_at = Some("2026-04-12T10:00:00+07:00".into());
        later.title = "Sửa tiêu đề".into();
        let v2 = Article::from_input(later, &c).unwrap();

        assert_eq!(decide(None, &v1), Upsert::Created);
        assert_eq!(decide(Some(&v1), &v1), Upsert::Unchanged);
        assert_eq!(
            decide(Some(&v1), &v2),
            Upsert::Updated {
                previous: Box::new(v1.clone())
            }
        );
        assert_eq!(
            decide(Some(&v2), &v1),
            Upsert::Stale {
                stored_updated_at: v2.updated_at
            }
        );
        // Same updated_at, different text: a fix without a new timestamp still lands.
        let mut fix = v1.clone();
        fix.summary = "khác".into();
        assert!(matches!(decide(Some(&v1), &fix), Upsert::Updated { .. }));
    }
}
