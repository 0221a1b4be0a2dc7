-- Readership in fixed space per feed and day (see the SQLite migration of the same number for the
-- commentary; the shapes are the same). Text keys use the "C" collation, as everywhere.
DROP TABLE readership_readers;
DROP TABLE readership_aggregators;

ALTER TABLE readership_days ADD COLUMN readers_folded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE readership_days ADD COLUMN claims_dropped BIGINT NOT NULL DEFAULT 0;
CREATE INDEX readership_days_feed ON readership_days (feed, day);

CREATE TABLE readership_sketches (
    feed   TEXT COLLATE "C" NOT NULL,
    day    TEXT COLLATE "C" NOT NULL,
    family TEXT COLLATE "C" NOT NULL,
    sketch BYTEA NOT NULL,
    PRIMARY KEY (feed, day, family)
);
CREATE INDEX readership_sketches_day ON readership_sketches (day);

CREATE TABLE readership_claims (
    feed        TEXT COLLATE "C" NOT NULL,
    day         TEXT COLLATE "C" NOT NULL,
    aggregator  TEXT COLLATE "C" NOT NULL,
    network     TEXT COLLATE "C" NOT NULL,
    subscribers BIGINT NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    verdict     BIGINT NOT NULL,
    PRIMARY KEY (feed, day, aggregator, network)
);
CREATE INDEX readership_claims_day ON readership_claims (day);

CREATE INDEX readership_partners_feed ON readership_partners (feed, day);
