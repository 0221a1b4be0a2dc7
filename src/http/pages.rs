//! The HTML pages for people: the index `/` of the listed feeds and the preview of a feed page
//! (`/vi/kinh-te/?page=N`). Thin: the pages are rendered by [`crate::feed::html`] and cached by
//! the application like feeds (ETag, compressed bodies, conditional GET, the same budget and
//! invalidation); this only answers with them.

use axum::http::{HeaderMap, Method};
use axum::response::Response;

use super::response::{feed_error, represent_entry};
use super::state::HttpState;
use crate::feed::FeedKey;
use crate::slots::ClientKey;

/// `/`: every listed feed, per language.
pub async fn home(state: &HttpState, method: &Method, headers: &HeaderMap) -> Response {
    let app = &state.app;
    match app.index().await {
        Ok((entry, _)) => {
            represent_entry(&entry, method, headers, &state.cache_control, app.metrics())
        }
        Err(e) => feed_error(e),
    }
}

/// `/vi/kinh-te/`: the newest articles of one feed, with autodiscovery of its three formats.
pub async fn preview(
    state: &HttpState,
    feed: &FeedKey,
    page: u32,
    client: ClientKey,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let app = &state.app;
    match app.preview(feed, page, client).await {
        Ok((entry, _)) => {
            represent_entry(&entry, method, headers, &state.cache_control, app.metrics())
        }
        Err(e) => feed_error(e),
    }
}
