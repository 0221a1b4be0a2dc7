-- Readership: who polls which feed, per day (see the SQLite migration of the same number for the
-- commentary; the shapes are the same). Text keys use the "C" collation, as everywhere.

CREATE TABLE readership_days (
    day          TEXT COLLATE "C" NOT NULL,
    feed         TEXT COLLATE "C" NOT NULL,
    polls        BIGINT NOT NULL DEFAULT 0,
    not_modified BIGINT NOT NULL DEFAULT 0,
    bytes        BIGINT NOT NULL DEFAULT 0,
    subscribers  BIGINT,
    clients      TEXT,
    PRIMARY KEY (day, feed)
);
CREATE INDEX readership_days_open ON readership_days (day) WHERE subscribers IS NULL;

CREATE TABLE readership_aggregators (
    day         TEXT COLLATE "C" NOT NULL,
    feed        TEXT COLLATE "C" NOT NULL,
    client      TEXT COLLATE "C" NOT NULL,
    feed_id     TEXT COLLATE "C" NOT NULL,
    subscribers BIGINT NOT NULL,
    observed_at BIGINT NOT NULL,
    PRIMARY KEY (day, feed, client, feed_id)
);

CREATE TABLE readership_partners (
    day     TEXT COLLATE "C" NOT NULL,
    feed    TEXT COLLATE "C" NOT NULL,
    partner TEXT COLLATE "C" NOT NULL,
    polls   BIGINT NOT NULL,
    PRIMARY KEY (day, feed, partner)
);

CREATE TABLE readership_readers (
    day    TEXT COLLATE "C" NOT NULL,
    feed   TEXT COLLATE "C" NOT NULL,
    reader BIGINT NOT NULL,
    client TEXT NOT NULL,
    PRIMARY KEY (day, feed, reader)
);

CREATE TABLE readership_impolite (
    day           TEXT COLLATE "C" NOT NULL,
    feed          TEXT COLLATE "C" NOT NULL,
    user_agent    TEXT COLLATE "C" NOT NULL,
    unconditional BIGINT NOT NULL,
    too_soon      BIGINT NOT NULL,
    PRIMARY KEY (day, feed, user_agent)
);

CREATE TABLE readership_secret (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    secret BYTEA NOT NULL
);
