-- Readership: who polls which feed, per day. `day` is the newsroom's calendar day (site zone) as
-- YYYY-MM-DD, which sorts as dates do; `feed` is the feed's public path (/vi/rss.xml). Writes are
-- additive so that replicas sharing a database add up. No table holds a client address: readers
-- are keyed hashes of (address, User-Agent), and only for as long as the 7-day window needs them.

-- Poll totals per day and feed. `subscribers` and `clients` (JSON breakdown) are filled in once
-- the day is over ("closed"), so old days keep their figures after their reader rows are pruned.
CREATE TABLE readership_days (
    day          TEXT NOT NULL,
    feed         TEXT NOT NULL,
    polls        INTEGER NOT NULL DEFAULT 0,
    not_modified INTEGER NOT NULL DEFAULT 0,
    bytes        INTEGER NOT NULL DEFAULT 0,
    subscribers  INTEGER,
    clients      TEXT,
    PRIMARY KEY (day, feed)
) WITHOUT ROWID;
CREATE INDEX readership_days_open ON readership_days (day) WHERE subscribers IS NULL;

-- Aggregators' reported subscriber counts: the latest observation per day, feed, aggregator and
-- the aggregator's own feed id.
CREATE TABLE readership_aggregators (
    day         TEXT NOT NULL,
    feed        TEXT NOT NULL,
    client      TEXT NOT NULL,
    feed_id     TEXT NOT NULL,
    subscribers INTEGER NOT NULL,
    observed_at INTEGER NOT NULL,
    PRIMARY KEY (day, feed, client, feed_id)
) WITHOUT ROWID;

-- Partners' polls, by partner id.
CREATE TABLE readership_partners (
    day     TEXT NOT NULL,
    feed    TEXT NOT NULL,
    partner TEXT NOT NULL,
    polls   INTEGER NOT NULL,
    PRIMARY KEY (day, feed, partner)
) WITHOUT ROWID;

-- Individual readers: a keyed hash of (address, User-Agent) and the reader application's family.
CREATE TABLE readership_readers (
    day    TEXT NOT NULL,
    feed   TEXT NOT NULL,
    reader INTEGER NOT NULL,
    client TEXT NOT NULL,
    PRIMARY KEY (day, feed, reader)
) WITHOUT ROWID;

-- Clients fetching a feed unconditionally sooner than its max-age.
CREATE TABLE readership_impolite (
    day           TEXT NOT NULL,
    feed          TEXT NOT NULL,
    user_agent    TEXT NOT NULL,
    unconditional INTEGER NOT NULL,
    too_soon      INTEGER NOT NULL,
    PRIMARY KEY (day, feed, user_agent)
) WITHOUT ROWID;

-- The key of the readers' hash: made once, shared by every process using this database.
CREATE TABLE readership_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BLOB NOT NULL
);
