-- The built-in WebSub hub's subscriptions (src/store/subscriptions.rs): one row per (topic,
-- callback), the key WebSub gives a subscription, with its lease and secret, and its own delivery
-- state so that pending deliveries survive a restart and replicas share them through a lease
-- (claimed_until). A row is pending while updates > delivered. Times are milliseconds since the
-- epoch. (Migration 0004 belongs to readership.)
CREATE TABLE IF NOT EXISTS subscriptions (
    topic TEXT NOT NULL,
    callback TEXT NOT NULL,
    host TEXT NOT NULL,
    secret TEXT,
    lease_seconds BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updates BIGINT NOT NULL DEFAULT 0,
    delivered BIGINT NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt BIGINT NOT NULL DEFAULT 0,
    claimed_until BIGINT NOT NULL DEFAULT 0,
    last_attempt BIGINT,
    last_success BIGINT,
    last_error TEXT,
    PRIMARY KEY (topic, callback)
);
-- The claim reads pending rows in due order; only pending rows are in this index.
CREATE INDEX IF NOT EXISTS subscriptions_due ON subscriptions (next_attempt) WHERE updates > delivered;
-- Per-host bounds count by host; the purge deletes by expiry.
CREATE INDEX IF NOT EXISTS subscriptions_host ON subscriptions (host);
CREATE INDEX IF NOT EXISTS subscriptions_expiry ON subscriptions (expires_at);
