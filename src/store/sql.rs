//! The SQL both stores write alike: which rows make a feed, the keyset queries over them (a
//! page, a deep page's boundary, the next scheduled publication, the visible count), and the
//! readership upserts (counters added with saturation, sketches and claims replaced).
//!
//! The two backends differ only in how a parameter is spelled (`?1` in SQLite, `$1` in
//! PostgreSQL) and how values are bound, so the statements are built here once, from the feed
//! and a [`Dialect`], and each store binds the feed's text arguments followed by the time (and,
//! for a deep page, the boundary's id). Statements depend on the selector kind, the page's
//! offset and its limit only, so each backend's prepared-statement cache holds a handful of them.

use crate::model::{FeedKey, Selector};

/// How a backend spells the `n`th parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// `col + add`, saturating at `i64::MAX` (a counter never wraps or fails the flush).
    pub fn saturating_add(self, col: &str, add: &str) -> String {
        let min = match self {
            Dialect::Sqlite => "min",
            Dialect::Postgres => "LEAST",
        };
        format!("{min}({col}, 9223372036854775807 - {add}) + {add}")
    }
}

/// A column's SQL type, for PostgreSQL's array parameters.
#[derive(Debug, Clone, Copy)]
pub enum Column {
    Text(&'static str),
    BigInt(&'static str),
    Bytes(&'static str),
}

impl Column {
    fn name(self) -> &'static str {
        match self {
            Column::Text(n) | Column::BigInt(n) | Column::Bytes(n) => n,
        }
    }
    fn array(self) -> &'static str {
        match self {
            Column::Text(_) => "text[]",
            Column::BigInt(_) => "bigint[]",
            Column::Bytes(_) => "bytea[]",
        }
    }
}

/// What a conflicting row's other columns become.
#[derive(Debug, Clone, Copy)]
pub enum OnConflict {
    /// Counters: the stored value plus the new one, saturating.
    Add,
    /// The new value replaces the stored one.
    Replace,
}

/// An upsert into a readership table: its key columns, then its value columns. SQLite writes one
/// row per statement (`VALUES`); PostgreSQL the whole set at once from arrays (`unnest`), in key
/// order, so that concurrent flushes lock rows in one order and cannot deadlock.
#[derive(Debug, Clone, Copy)]
pub struct Upsert {
    pub table: &'static str,
    pub key: &'static [Column],
    pub values: &'static [Column],
    pub on_conflict: OnConflict,
}

/// Per feed and day: polls, 304s and bytes sent.
pub const READERSHIP_DAYS: Upsert = Upsert {
    table: "readership_days",
    key: &[Column::Text("day"), Column::Text("feed")],
    values: &[
        Column::BigInt("polls"),
        Column::BigInt("not_modified"),
        Column::BigInt("bytes"),
    ],
    on_conflict: OnConflict::Add,
};

/// Per feed, day and family: the distinct-reader sketch.
pub const READERSHIP_SKETCHES: Upsert = Upsert {
    table: "readership_sketches",
    key: &[
        Column::Text("feed"),
        Column::Text("day"),
        Column::Text("family"),
    ],
    values: &[Column::Bytes("sketch")],
    on_conflict: OnConflict::Replace,
};

/// Per feed, day, aggregator and network: the claimed subscriber count and its verdict.
pub const READERSHIP_CLAIMS: Upsert = Upsert {
    table: "readership_claims",
    key: &[
        Column::Text("feed"),
        Column::Text("day"),
        Column::Text("aggregator"),
        Column::Text("network"),
    ],
    values: &[
        Column::BigInt("subscribers"),
        Column::BigInt("first_seen"),
        Column::BigInt("last_seen"),
        Column::BigInt("verdict"),
    ],
    on_conflict: OnConflict::Replace,
};

/// Per feed, day and partner: full-text polls.
pub const READERSHIP_PARTNERS: Upsert = Upsert {
    table: "readership_partners",
    key: &[
        Column::Text("day"),
        Column::Text("feed"),
        Column::Text("partner"),
    ],
    values: &[Column::BigInt("polls")],
    on_conflict: OnConflict::Add,
};

/// Per feed, day and User-Agent: unconditional and too-frequent polls.
pub const READERSHIP_IMPOLITE: Upsert = Upsert {
    table: "readership_impolite",
    key: &[
        Column::Text("day"),
        Column::Text("feed"),
        Column::Text("user_agent"),
    ],
    values: &[Column::BigInt("unconditional"), Column::BigInt("too_soon")],
    on_conflict: OnConflict::Add,
};

impl Upsert {
    /// The statement; its parameters are the columns in order (key, then values): one value each
    /// in SQLite, one array each in PostgreSQL.
    pub fn sql(&self, d: Dialect) -> String {
        let all: Vec<Column> = self.key.iter().chain(self.values).copied().collect();
        let names = |cols: &[Column]| cols.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ");
        let (columns, key) = (names(&all), names(self.key));
        let source = match d {
            Dialect::Sqlite => format!(
                "VALUES ({})",
                (1..=all.len())
                    .map(|n| d.param(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Dialect::Postgres => format!(
                "SELECT * FROM unnest({}) AS u({columns}) ORDER BY {key}",
                all.iter()
                    .enumerate()
                    .map(|(i, c)| format!("{}::{}", d.param(i + 1), c.array()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let set = self
            .values
            .iter()
            .map(|c| {
                let (n, new) = (c.name(), format!("excluded.{}", c.name()));
                match self.on_conflict {
                    OnConflict::Add => {
                        format!("{n} = {}", d.saturating_add(&format!("r.{n}"), &new))
                    }
                    OnConflict::Replace => format!("{n} = {new}"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "INSERT INTO {} AS r ({columns}) {source} ON CONFLICT ({key}) DO UPDATE SET {set}",
            self.table
        )
    }
}

/// A feed's rows: the `FROM … WHERE …` clause over `articles a` (or `article_tags t` joined to
/// it, for a tag), its text arguments, and the columns the feed is ordered by (the tag table
/// carries its own copy of `published_at`, so a tag feed is read on its own index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedFilter {
    pub from: String,
    pub args: Vec<String>,
    pub published: &'static str,
    pub id: &'static str,
    dialect: Dialect,
}

impl FeedFilter {
    pub fn new(feed: &FeedKey, dialect: Dialect) -> FeedFilter {
        let lang = feed.lang.clone();
        let (p1, p2) = (dialect.param(1), dialect.param(2));
        let published = "FROM articles a WHERE a.status = 'published' AND a.lang = ";
        let (from, args, order) = match &feed.selector {
            Selector::All => (format!("{published}{p1}"), vec![lang], None),
            Selector::Category(c) => (
                format!("{published}{p1} AND a.category = {p2}"),
                vec![lang, c.clone()],
                None,
            ),
            Selector::Author(s) => (
                format!("{published}{p1} AND a.author_slug = {p2}"),
                vec![lang, s.clone()],
                None,
            ),
            Selector::Tag(s) => (
                format!(
                    "FROM article_tags t JOIN articles a ON a.id = t.article_id WHERE t.lang = {p1} AND t.tag_slug = {p2}"
                ),
                vec![lang, s.clone()],
                Some(("t.published_at", "t.article_id")),
            ),
        };
        let (published, id) = order.unwrap_or(("a.published_at", "a.id"));
        FeedFilter {
            from,
            args,
            published,
            id,
            dialect,
        }
    }

    /// The parameter number of the time (bound after the feed's arguments).
    pub fn time_param(&self) -> usize {
        self.args.len() + 1
    }

    fn at(&self, n: usize) -> String {
        self.dialect.param(n)
    }

    /// The first row of a deep page (`published_at`, id), found with an index-only skip of
    /// `offset` visible rows. Parameters: the feed's, then the time.
    pub fn boundary_sql(&self, offset: usize) -> String {
        let (p, id, from, t) = (
            self.published,
            self.id,
            &self.from,
            self.at(self.time_param()),
        );
        format!(
            "SELECT {p}, {id} {from} AND {p} <= {t} ORDER BY {p} DESC, {id} DESC LIMIT 1 OFFSET {offset}"
        )
    }

    /// One page of documents, newest first. Parameters: the feed's, then the time; with
    /// `from_boundary`, the boundary's time in its place and then its id (a row-value comparison
    /// is one range condition on the feed index; an OR of two comparisons would only filter).
    pub fn page_sql(&self, from_boundary: bool, limit: usize) -> String {
        let (p, id, from, n) = (self.published, self.id, &self.from, self.time_param());
        let cond = if from_boundary {
            format!(" AND ({p}, {id}) <= ({}, {})", self.at(n), self.at(n + 1))
        } else {
            format!(" AND {p} <= {}", self.at(n))
        };
        format!("SELECT a.doc {from}{cond} ORDER BY {p} DESC, {id} DESC LIMIT {limit}")
    }

    /// The next scheduled publication after the time (the earliest embargoed row).
    pub fn next_publication_sql(&self) -> String {
        let (p, id, from, t) = (
            self.published,
            self.id,
            &self.from,
            self.at(self.time_param()),
        );
        format!("SELECT {p} {from} AND {p} > {t} ORDER BY {p} ASC, {id} ASC LIMIT 1")
    }

    /// How many rows are visible at the time.
    pub fn count_sql(&self) -> String {
        let (p, from, t) = (self.published, &self.from, self.at(self.time_param()));
        format!("SELECT COUNT(*) {from} AND {p} <= {t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag() -> FeedKey {
        FeedKey::new("vi", Selector::Tag("gia-lua".into()))
    }

    #[test]
    fn both_dialects_write_the_same_statement_but_for_the_parameters() {
        for feed in [
            FeedKey::new("vi", Selector::All),
            FeedKey::new("vi", Selector::Category("kinh-te".into())),
            FeedKey::new("en", Selector::Author("minh-thu".into())),
            tag(),
        ] {
            let (s, p) = (
                FeedFilter::new(&feed, Dialect::Sqlite),
                FeedFilter::new(&feed, Dialect::Postgres),
            );
            assert_eq!(s.args, p.args);
            for (a, b) in [
                (s.page_sql(true, 50), p.page_sql(true, 50)),
                (s.page_sql(false, 50), p.page_sql(false, 50)),
                (s.boundary_sql(100), p.boundary_sql(100)),
                (s.count_sql(), p.count_sql()),
                (s.next_publication_sql(), p.next_publication_sql()),
            ] {
                assert_eq!(a.replace('?', "$"), b, "{feed:?}");
            }
        }
    }

    #[test]
    fn counters_add_with_saturation_and_postgres_writes_arrays_in_key_order() {
        assert_eq!(
            READERSHIP_PARTNERS.sql(Dialect::Sqlite),
            "INSERT INTO readership_partners AS r (day, feed, partner, polls) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (day, feed, partner) DO UPDATE SET \
             polls = min(r.polls, 9223372036854775807 - excluded.polls) + excluded.polls"
        );
        assert_eq!(
            READERSHIP_SKETCHES.sql(Dialect::Postgres),
            "INSERT INTO readership_sketches AS r (feed, day, family, sketch) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[]) \
             AS u(feed, day, family, sketch) ORDER BY feed, day, family \
             ON CONFLICT (feed, day, family) DO UPDATE SET sketch = excluded.sketch"
        );
        assert!(
            READERSHIP_DAYS
                .sql(Dialect::Postgres)
                .contains("bytes = LEAST(r.bytes, 9223372036854775807 - excluded.bytes)")
        );
    }

    #[test]
    fn the_time_and_the_boundary_follow_the_feeds_arguments() {
        let all = FeedFilter::new(&FeedKey::new("vi", Selector::All), Dialect::Postgres);
        assert_eq!(all.time_param(), 2);
        assert!(
            all.page_sql(false, 10)
                .contains("a.published_at <= $2 ORDER BY")
        );
        let t = FeedFilter::new(&tag(), Dialect::Postgres);
        assert_eq!(t.args, ["vi", "gia-lua"]);
        assert_eq!(
            t.page_sql(true, 20),
            "SELECT a.doc FROM article_tags t JOIN articles a ON a.id = t.article_id \
             WHERE t.lang = $1 AND t.tag_slug = $2 AND (t.published_at, t.article_id) <= ($3, $4) \
             ORDER BY t.published_at DESC, t.article_id DESC LIMIT 20"
        );
        assert!(t.boundary_sql(40).ends_with("LIMIT 1 OFFSET 40"));
    }
}
