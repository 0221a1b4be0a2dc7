//! Prometheus metrics (`/metrics`), with the `prometheus-client` crate (the official Rust client;
//! no global registry, no default TLS baggage).
//!
//! Hot-path metrics are label-free counters (one atomic add per request); labelled families are
//! kept to rare events (store errors, WebSub pings and deliveries, CDN purges).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourcePollLabel {
    pub source: String,
    pub outcome: &'static str,
}

/// A repair the forgiving feed reader made, per source (`html_entity`, `atom_0_3`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceRepairLabel {
    pub source: String,
    pub repair: &'static str,
}

/// What was rendered: `feed`, `preview`, `opml`, `partner_opml`, `index`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// A render lane: `front` (page 1, the lists) or `deep` (older pages).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabel {
    pub lane: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// `api`, `stats` or `feeds` (a partner key on a feed or the OPML).
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabel {
    pub feed: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WhatLabel {
    pub what: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub not_modified: Counter,
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub stale_served: Counter,
    pub render_seconds: Histogram,
    pub store_errors: Counter,
    pub page_queries: Counter,
    /// Renders by what was rendered (a miss of any cached document).
    pub renders: Family<KindLabel, Counter>,
    /// Deep pages refused by the render slots (503).
    pub renders_refused: Counter,
    /// Render slots in use and renders waiting, per lane (set when `/metrics` is read).
    pub render_slots_busy: Family<LaneLabel, Gauge>,
    pub renders_waiting: Family<LaneLabel, Gauge>,
    pub api_writes: Family<ResultLabel, Counter>,
    pub websub_pings: Family<ResultLabel, Counter>,
    pub cdn_purges: Family<ResultLabel, Counter>,
    pub cache_bytes: Gauge,
    pub cache_entries: Gauge,
    pub cache_live_bytes: Gauge,
    pub memfds: Gauge,
    pub connections_open: Gauge,
    pub connections_shed: Counter,
    pub connections_refused: Counter,
    /// Today's subscribers per feed (readership figures, recomputed every minute): canonical,
    /// existing feeds only, the largest [`crate::readership::MAX_GAUGE_FEEDS`].
    pub feed_subscribers: Family<FeedLabel, Gauge>,
    /// What readership counting left out at its bounds (`polls`, `readers`, `claims`,
    /// `impolite`, `feeds`).
    pub readership_dropped: Family<WhatLabel, Counter>,
    /// Bytes the readership aggregator holds (its bounded maps and sketches).
    pub readership_bytes: Gauge,
    /// Polls of upstream sources by outcome (`updated`, `not_modified`, `gone`, `throttled`,
    /// `failed`, `error`).
    pub source_polls: Family<SourcePollLabel, Counter>,
    /// Repairs made to read ill-formed upstream documents, by source and kind.
    pub source_repairs: Family<SourceRepairLabel, Counter>,
    /// The built-in WebSub hub: active subscriptions (recounted every minute), subscription
    /// requests, verifications and deliveries by outcome, and how long a delivery request takes.
    pub hub_subscriptions: Gauge,
    pub hub_requests: Family<OutcomeLabel, Counter>,
    pub hub_verifications: Family<OutcomeLabel, Counter>,
    pub hub_deliveries: Family<OutcomeLabel, Counter>,
    pub hub_delivery_seconds: Histogram,
    /// Wrong API tokens and partner keys presented, by endpoint (a fixed set of labels).
    pub auth_failures: Family<EndpointLabel, Counter>,
    /// Requests refused 429 because their network had failed too often.
    pub auth_throttled: Family<EndpointLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("bantin");
        let m = Metrics {
            not_modified: Counter::default(),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            stale_served: Counter::default(),
            render_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            store_errors: Counter::default(),
            page_queries: Counter::default(),
            renders: Family::default(),
            renders_refused: Counter::default(),
            render_slots_busy: Family::default(),
            renders_waiting: Family::default(),
            api_writes: Family::default(),
            websub_pings: Family::default(),
            cdn_purges: Family::default(),
            cache_bytes: Gauge::default(),
            cache_entries: Gauge::default(),
            cache_live_bytes: Gauge::default(),
            memfds: Gauge::default(),
            connections_open: Gauge::default(),
            connections_shed: Counter::default(),
            connections_refused: Counter::default(),
            feed_subscribers: Family::default(),
            readership_dropped: Family::default(),
            readership_bytes: Gauge::default(),
            source_polls: Family::default(),
            source_repairs: Family::default(),
            hub_subscriptions: Gauge::default(),
            hub_requests: Family::default(),
            hub_verifications: Family::default(),
            hub_deliveries: Family::default(),
            hub_delivery_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            auth_failures: Family::default(),
            auth_throttled: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "feed_not_modified",
            "Feed requests answered 304",
            m.not_modified.clone(),
        );
        registry.register(
            "cache_hits",
            "Feed requests answered from the cache",
            m.cache_hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Feed requests that rendered",
            m.cache_misses.clone(),
        );
        registry.register(
            "stale_served",
            "Feeds served stale because the store failed",
            m.stale_served.clone(),
        );
        registry.register(
            "render_seconds",
            "Query, render and compression time of a miss",
            m.render_seconds.clone(),
        );
        registry.register(
            "store_errors",
            "Store calls that failed",
            m.store_errors.clone(),
        );
        registry.register(
            "feed_page_queries",
            "Feed pages read from the store (a miss that got past the item-count check)",
            m.page_queries.clone(),
        );
        registry.register(
            "renders",
            "Renders by kind (feed, preview, opml, partner_opml, index): misses that reached the store",
            m.renders.clone(),
        );
        registry.register(
            "renders_refused",
            "Older pages refused because their client had too many in flight or too many waited",
            m.renders_refused.clone(),
        );
        registry.register(
            "render_slots_busy",
            "Render slots in use, by lane (front: page 1 and the lists; deep: older pages)",
            m.render_slots_busy.clone(),
        );
        registry.register(
            "renders_waiting",
            "Renders waiting for a slot, by lane",
            m.renders_waiting.clone(),
        );
        registry.register(
            "api_writes",
            "Article writes through the API by result",
            m.api_writes.clone(),
        );
        registry.register(
            "websub_pings",
            "WebSub publish pings by result",
            m.websub_pings.clone(),
        );
        registry.register(
            "cdn_purges",
            "CDN purge requests by result",
            m.cdn_purges.clone(),
        );
        registry.register(
            "cache_bytes",
            "Bytes held by the rendered-feed cache",
            m.cache_bytes.clone(),
        );
        registry.register(
            "cache_entries",
            "Entries in the rendered-feed cache",
            m.cache_entries.clone(),
        );
        registry.register(
            "cache_live_bytes",
            "Bytes of every cached body still alive (in the cache, a worker's reference, or a response being sent): what [cache] max_bytes bounds",
            m.cache_live_bytes.clone(),
        );
        registry.register(
            "memfds",
            "Cached feeds held in memfds (file descriptors)",
            m.memfds.clone(),
        );
        registry.register(
            "connections_open",
            "Client connections open",
            m.connections_open.clone(),
        );
        registry.register(
            "connections_shed",
            "Silent or idle connections closed to make room at the connection cap",
            m.connections_shed.clone(),
        );
        registry.register(
            "connections_refused",
            "Connections refused at the cap because every connection was busy",
            m.connections_refused.clone(),
        );
        registry.register(
            "feed_subscribers",
            "Subscribers per feed today: believed aggregator claims, partners and distinct readers over 7 days (canonical existing feeds, the largest 200)",
            m.feed_subscribers.clone(),
        );
        registry.register(
            "readership_dropped",
            "Polls, readers, claims, impolite clients and feeds readership counting left out at its bounds",
            m.readership_dropped.clone(),
        );
        registry.register(
            "readership_bytes",
            "Bytes held by the readership aggregator (bounded maps and sketches)",
            m.readership_bytes.clone(),
        );
        registry.register(
            "source_polls",
            "Polls of upstream sources by outcome",
            m.source_polls.clone(),
        );
        registry.register(
            "source_repairs",
            "Repairs made to read ill-formed upstream documents, by source and kind",
            m.source_repairs.clone(),
        );
        registry.register(
            "hub_subscriptions",
            "Active subscriptions of the built-in WebSub hub",
            m.hub_subscriptions.clone(),
        );
        registry.register(
            "hub_requests",
            "Subscription requests to the built-in hub by outcome (accepted, verified, refused, rate_limited, busy, failed)",
            m.hub_requests.clone(),
        );
        registry.register(
            "hub_verifications",
            "Verifications of intent by outcome (subscribed, unsubscribed, failed, denied)",
            m.hub_verifications.clone(),
        );
        registry.register(
            "hub_deliveries",
            "Content deliveries to subscribers by outcome (ok, failed, gone, skipped)",
            m.hub_deliveries.clone(),
        );
        registry.register(
            "hub_delivery_seconds",
            "Time of one delivery request to a subscriber",
            m.hub_delivery_seconds.clone(),
        );
        registry.register(
            "auth_failures",
            "Wrong API tokens and partner keys presented, by endpoint",
            m.auth_failures.clone(),
        );
        registry.register(
            "auth_throttled",
            "Requests refused (429) after too many failed authentications from their network",
            m.auth_throttled.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
