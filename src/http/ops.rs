//! Operations endpoints: liveness, readiness (the store answers), Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The operations routes: liveness, readiness, metrics.
pub fn router() -> axum::Router<super::state::State> {
    use crate::routes::{HEALTHZ, METRICS, READYZ};
    use axum::routing::get;
    axum::Router::new()
        .route(HEALTHZ, get(healthz))
        .route(READYZ, get(readyz))
        .route(METRICS, get(metrics))
}

/// Liveness: the process answers. Never touches the store, so a database outage does not get
/// healthy replicas restarted.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the store answers a query now. 503 with the reason otherwise; cached feeds are
/// still served meanwhile (stale-if-error), but a load balancer should prefer ready replicas.
pub async fn readyz(State(state): State<super::state::State>) -> Response {
    let app = &state.app;
    let backend = app.store_backend();
    match app.readiness().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "store": backend})),
        )
            .into_response(),
        Err(e) => {
            let mut r = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "store": backend, "error": e})),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, super::error::retry_after());
            r
        }
    }
}

pub async fn metrics(State(state): State<super::state::State>) -> Response {
    let app = &state.app;
    app.cache().settle().await;
    app.metrics()
        .cache_live_bytes
        .set(app.cache().live_bytes() as i64);
    app.metrics().memfds.set(crate::render::memfiles() as i64);
    app.metrics()
        .cache_bytes
        .set(app.cache().weighted_size() as i64);
    app.metrics()
        .cache_entries
        .set(app.cache().entry_count() as i64);
    let slots = app.slots().stats();
    for (lane, busy, waiting) in [
        ("front", slots.front_running, slots.front_waiting),
        ("deep", slots.deep_running, slots.deep_waiting),
    ] {
        let label = crate::metrics::LaneLabel { lane };
        app.metrics()
            .render_slots_busy
            .get_or_create(&label)
            .set(busy as i64);
        app.metrics()
            .renders_waiting
            .get_or_create(&label)
            .set(waiting as i64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics().encode(),
    )
        .into_response()
}
