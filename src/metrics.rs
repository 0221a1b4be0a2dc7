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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabel {
    pub feed: String,
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
    /// Today's subscribers per feed (readership figures, recomputed every minute).
    pub feed_subscribers: Family<FeedLabel, Gauge>,
    /// Polls of upstream sources by outcome (`updated`, `not_modified`, `gone`, `throttled`,
    /// `failed`, `error`).
    pub source_polls: Family<SourcePollLabel, Counter>,
    /// The built-in WebSub hub: active subscriptions (recounted every minute), subscription
    /// requests, verifications and deliveries by outcome, and how long a delivery request takes.
    pub hub_subscriptions: Gauge,
    pub hub_requests: Family<OutcomeLabel, Counter>,
    pub hub_verifications: Family<OutcomeLabel, Counter>,
    pub hub_deliveries: Family<OutcomeLabel, Counter>,
    pub hub_delivery_seconds: Histogram,
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
            source_polls: Family::default(),
            hub_subscriptions: Gauge::default(),
            hub_requests: Family::default(),
            hub_verifications: Family::default(),
            hub_deliveries: Family::default(),
            hub_delivery_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
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
            "Subscribers per feed today: aggregators' reported counts, partners and distinct readers over 7 days",
            m.feed_subscribers.clone(),
        );
        registry.register(
            "source_polls",
            "Polls of upstream sources by outcome",
            m.source_polls.clone(),
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
