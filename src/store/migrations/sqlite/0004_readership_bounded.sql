-- Readership in fixed space per feed and day. One row per reader (readership_readers) let a loop
-- of User-Agents grow the store without bound; distinct readers are now HyperLogLog++ sketches,
-- one per feed, day and reader family. Aggregator rows keyed by whatever feed id a User-Agent
-- named gave way to claims keyed by the client's network. Neither converts in SQL (a sketch is
-- built by bantin), so the days still open at the upgrade restart counting readers and claims;
-- closed days keep their figures (readership_days.subscribers and clients).
DROP TABLE readership_readers;
DROP TABLE readership_aggregators;

-- What the per-feed-day bounds folded (readers into the `other` family) or dropped (claims).
ALTER TABLE readership_days ADD COLUMN readers_folded INTEGER NOT NULL DEFAULT 0;
ALTER TABLE readership_days ADD COLUMN claims_dropped INTEGER NOT NULL DEFAULT 0;
-- The window is read a page of feeds at a time.
CREATE INDEX readership_days_feed ON readership_days (feed, day);

-- Distinct readers: `family` is the reader application's family, or '' for all readers of the
-- feed-day (the headline). At most 8 families per feed-day besides ''. Sketches are kilobytes,
-- so this is a rowid table (WITHOUT ROWID suits small rows).
CREATE TABLE readership_sketches (
    feed   TEXT NOT NULL,
    day    TEXT NOT NULL,
    family TEXT NOT NULL,
    sketch BLOB NOT NULL,
    UNIQUE (feed, day, family)
);
CREATE INDEX readership_sketches_day ON readership_sketches (day);

-- Subscriber claims: an aggregator's count for a feed from one client network (/24 or /48, never
-- an address), with its first and last sighting and the verification verdict (0 unverifiable,
-- 1 pending, 2 refuted, 3 verified). At most 32 per feed-day, 2 per network.
CREATE TABLE readership_claims (
    feed        TEXT NOT NULL,
    day         TEXT NOT NULL,
    aggregator  TEXT NOT NULL,
    network     TEXT NOT NULL,
    subscribers INTEGER NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    verdict     INTEGER NOT NULL,
    PRIMARY KEY (feed, day, aggregator, network)
) WITHOUT ROWID;
CREATE INDEX readership_claims_day ON readership_claims (day);

CREATE INDEX readership_partners_feed ON readership_partners (feed, day);
