//! `POST /websub`: the built-in WebSub hub's subscription endpoint. Thin: the body is read with
//! a limit and handed to [`crate::hub::Hub::handle`], whose answer (a status and a plain-text
//! reason, as WebSub asks hubs to give) is sent as it is.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use super::response::text_response;
use crate::hub::request::MAX_BODY;

/// The built-in hub's endpoint.
pub fn router() -> axum::Router<super::state::State> {
    axum::Router::new().route(crate::routes::WEBSUB, axum::routing::post(subscribe))
}

pub async fn subscribe(
    State(state): State<super::state::State>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let app = &state.app;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if state.hub.enabled() && !form {
        return text_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "A subscription request is a form: Content-Type: application/x-www-form-urlencoded."
                .into(),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        let mut r = text_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("A subscription request is at most {MAX_BODY} bytes."),
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        r
    };
    if declared.is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return too_large();
    };
    let answer = state.hub.handle(app, &bytes).await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = text_response(status, answer.text);
    if let Some(secs) = answer.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if status == StatusCode::NO_CONTENT {
        *r.body_mut() = Body::empty();
        r.headers_mut().remove(header::CONTENT_TYPE);
    }
    r
}
