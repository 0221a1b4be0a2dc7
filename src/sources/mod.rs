//! Where articles come from besides the API: files (`import`) and upstream feeds
//! (`[[sources]]`), polled politely, deduplicated and credited.
//!
//! The upstream side is five small parts: [`address`] (where a fetch may go: public addresses,
//! never bantin itself), [`fetch`] (one conditional, bounded HTTP fetch),
//! [`mapping`] (feed-rs parsing and entry → article, pure), [`schedule`] (when next: jitter,
//! backoff, `Retry-After`, pure) and [`poller`] (the task that claims due sources and turns what
//! a fetch found into persisted state). Their articles go through the same write path as the
//! API's, so they are served, invalidated and pinged exactly like the newsroom's own.

pub mod address;
pub mod dates;
pub mod decode;
pub mod dialect;
pub mod fetch;
pub mod import;
pub mod mapping;
pub mod poller;
pub mod recover;
pub mod schedule;

use serde_json::{Value, json};

use crate::config::Config;
use crate::store::upstream::{SourceState, SourceStatus};

/// `GET /api/v1/sources` and `bantin sources`: every configured source with its state, times
/// in the site zone (RFC 3339, +07:00). A source not yet recorded (the poller has not started)
/// shows as `pending`.
pub fn status(config: &Config, states: &[SourceState]) -> Value {
    let zone = config.zone;
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| zone.rfc3339(t));
    let sources: Vec<Value> = config
        .sources
        .iter()
        .map(|cfg| match states.iter().find(|s| s.id == cfg.id) {
            Some(st) => json!({
                "id": st.id,
                "url": st.url,
                "state": st.status.as_str(),
                "last_attempt": time(st.last_attempt),
                "last_success": time(st.last_success),
                "last_error": st.last_error,
                "next_poll": (st.status != SourceStatus::Gone).then(|| zone.rfc3339(st.next_poll)),
                "consecutive_failures": st.consecutive_failures,
                "items": st.items,
            }),
            None => json!({
                "id": cfg.id,
                "url": cfg.url.as_str(),
                "state": "pending",
                "last_attempt": null,
                "last_success": null,
                "last_error": null,
                "next_poll": null,
                "consecutive_failures": 0,
                "items": 0,
            }),
        })
        .collect();
    json!({ "sources": sources })
}

/// The same as [`status`], as a table for a terminal.
pub fn status_table(config: &Config, states: &[SourceState]) -> String {
    let v = status(config, states);
    let s = crate::table::cell;
    let mut rows = vec![[
        "id".to_string(),
        "state".into(),
        "last success".into(),
        "next poll".into(),
        "failures".into(),
        "items".into(),
        "last error".into(),
    ]];
    for src in v["sources"].as_array().into_iter().flatten() {
        rows.push([
            s(&src["id"]),
            s(&src["state"]),
            s(&src["last_success"]),
            s(&src["next_poll"]),
            s(&src["consecutive_failures"]),
            s(&src["items"]),
            s(&src["last_error"]),
        ]);
    }
    crate::table::render(&rows)
}
