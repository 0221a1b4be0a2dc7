//! bantin ("bản tin", a news bulletin): a syndication feed service for a bilingual newsroom.
//!
//! It keeps the articles a newsroom publishes and serves them as RSS 2.0, Atom 1.0 and JSON Feed
//! 1.1, one feed per language, category, tag and byline, every timestamp in the newsroom's zone,
//! from an in-memory cache of precompressed bodies.
//!
//! # Layout
//!
//! Data flows `sources → ingest → store → feed → render → cache → http`, one module per stage.
//! Modules form layers, and a module imports only from layers below its own. No file imports
//! another that imports it back, not even a parent module and its child (shared types go in a
//! leaf child such as `http::state`, `store::error` or `hub::inner`); `scripts/modgraph.py`
//! checks both (`--level 1` for these layers, the default for files) and prints any cycle:
//!
//! 1. leaves, importing nothing of bantin's: [`model`] (feed keys, selectors, formats, facets),
//!    [`clock`], [`text`], [`metrics`], [`netguard`], [`sketch`], [`slots`], [`topics`],
//!    [`background`], [`table`], [`memory`];
//! 2. [`config`]; then [`access`], [`article`], [`outbox`];
//! 3. [`store`], [`feed`] (pure: keys, pages, renderers), [`routes`] (every public URL, built
//!    and parsed);
//! 4. [`pages`] (a page loaded from the store), [`render`], [`readership`]; then [`cache`];
//! 5. [`app`], the application layer; above it [`ingest`], [`hub`], [`export`], then
//!    [`sources`];
//! 6. [`http`] (its handlers answer through `http::response` and read clients through
//!    `http::request`; the fast loop and the axum handlers import neither each other), and
//!    [`server`], the start-up wiring.
//!
//! - [`config`]: `site.toml` plus environment → a validated `Config`.
//! - [`access`]: public or partner (a key checked in constant time), and the client's address.
//! - [`clock`]: the site zone; RFC 822 / RFC 3339 / HTTP dates; naive times are site-local.
//! - [`text`]: NFC, the XML 1.0 character set, ASCII slugs.
//! - [`article`]: the article input, validation and normalisation (sanitised HTML, absolute URLs).
//! - [`ingest`]: the one bulk write pipeline (API batches, file import, upstream polling):
//!   validation on the blocking pool overlapping the previous chunk's transaction, outcomes
//!   streamed to a sink in order.
//! - [`store`]: the `Store` trait, its SQLite and PostgreSQL implementations and their contract.
//! - [`model`]: the shared vocabulary (which feed, format, content variant; tags and bylines).
//! - [`routes`]: every public URL, built and parsed in one place (property-tested inverse).
//! - [`feed`]: which feeds exist, which feeds the bounded lists name, and the pure renderers
//!   (RSS, Atom, JSON, OPML, the HTML index and previews).
//! - [`pages`]: loading one page of one feed from the store.
//! - [`render`]: a rendered representation: bytes, gzip, brotli, validators.
//! - [`cache`]: the moka cache of everything rendered (feeds, previews, the lists of feeds):
//!   single render per miss, exact invalidation, scheduled expiry, stale-if-error.
//! - [`app`]: the application layer the handlers and the CLI call.
//! - [`slots`]: render slots shared fairly: page 1 and the lists of feeds before deep pages, deep
//!   pages on at most half of them and one at a time per client.
//! - [`background`]: bounded, lowest-priority background threads (best-ratio recompression).
//! - [`http`]: thread-per-core workers; the edge (`http::edge`: deadlines, the connection cap,
//!   lingering close); the poll fast path (`http::fast`: cached feed hits
//!   answered from thread-local copies, bodies sent with sendfile); the axum router for feeds
//!   with conditional GET, the publishing API and operations.
//! - [`sources`]: file import, and upstream feeds (`[[sources]]`) polled politely: conditional
//!   fetches, backoff that never gives up, a lease so one replica polls each source, items
//!   mapped to credited articles.
//! - [`outbox`]: WebSub pings and CDN purges after writes, from per-endpoint background queues.
//! - [`hub`]: bantin's own WebSub hub at `/websub`: verified, leased subscriptions in the
//!   store, signed fat pings of page 1 after writes, retried until the lease ends.
//! - [`netguard`]: which addresses bantin may send to when a stranger chose the URL (an
//!   upstream's redirect, a subscriber's callback): public ones only, judged by one classifier
//!   and the DNS resolver that enforces it.
//! - [`readership`]: poll counting on every feed answer (per-thread counters, flushed), daily
//!   totals in the store, and subscriber figures by the FeedPress rules.
//! - [`export`]: every feed as static files, for a CDN or a plain web server.
//! - [`memory`]: the allocator's side of the memory budget (glibc tuning, trimming).
//! - [`table`]: the CLI's plain-text tables.
//! - [`sketch`]: distinct readers in fixed space (HyperLogLog++).
//! - [`topics`]: topics changed by writes, waiting for the built-in hub (bounded).
//! - [`server`]: start-up wiring shared by `main` and the tests.

pub mod access;
pub mod app;
pub mod article;
pub mod background;
pub mod cache;
pub mod clock;
pub mod config;
pub mod export;
pub mod feed;
pub mod http;
pub mod hub;
pub mod ingest;
pub mod memory;
pub mod metrics;
pub mod model;
pub mod netguard;
pub mod outbox;
pub mod pages;
pub mod readership;
pub mod render;
pub mod routes;
pub mod server;
pub mod sketch;
pub mod slots;
pub mod sources;
pub mod store;
pub mod table;
pub mod text;
pub mod topics;
