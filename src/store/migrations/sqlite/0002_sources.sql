-- Upstream sources' state (src/store/upstream.rs): the whole state as JSON, and the one column
-- the lease needs. next_poll is milliseconds since the epoch in both backends.
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    next_poll BIGINT NOT NULL,
    doc TEXT NOT NULL
);
