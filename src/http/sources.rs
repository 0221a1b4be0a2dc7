//! `GET /api/v1/sources`: the upstream sources' state for the newsroom's tools (API token).
//! The shape is built by [`crate::sources::status`], which `bantin sources` prints as a table.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::error::HttpError;

/// `/api/v1/sources`.
pub fn router() -> axum::Router<super::state::State> {
    axum::Router::new().route(crate::routes::API_SOURCES, axum::routing::get(list))
}

pub async fn list(
    State(state): State<super::state::State>,
    _token: super::auth::ApiToken<super::auth::Sources>,
) -> Response {
    let app = &state.app;
    let result = async {
        let states = app.source_states().await?;
        Ok::<_, HttpError>(Json(crate::sources::status(app.config(), &states)).into_response())
    }
    .await;
    super::response::private_no_store(result.unwrap_or_else(IntoResponse::into_response))
}
