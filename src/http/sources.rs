//! `GET /api/v1/sources`: the upstream sources' state for the newsroom's tools (API token).
//! The shape is built by [`crate::sources::status`], which `bantin sources` prints as a table.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::error::HttpError;

pub async fn list(
    State(state): State<super::State>,
    caller: super::auth::Caller,
    headers: HeaderMap,
) -> Response {
    let app = &state.app;
    let result = async {
        super::api::authorize(app, &headers, caller)?;
        let states = app.source_states().await?;
        Ok::<_, HttpError>(Json(crate::sources::status(&app.config, &states)).into_response())
    }
    .await;
    super::private_no_store(result.unwrap_or_else(IntoResponse::into_response))
}
