//! The HTTP layer's error: a status and a JSON body `{"error": {"code", "message", "field"}}`.
//!
//! Every failure the API reports goes through this one type, so clients can rely on the shape;
//! feed routes answer plain text instead (a person pasting a URL reads it), built in `feeds`.
//!
//! Store failures are mapped here and only here ([`store_status`]), for the API and for feeds on
//! both HTTP paths: the client gets the status, a plain message and a request id; the store's own
//! message (driver text, SQL) goes to the log under that id and never into a response.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::article::ValidationError;
use crate::store::StoreError;

#[derive(Debug, Clone)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Close the connection after this answer (the request body was left unread).
    pub close: bool,
    /// Names the log line with the details of an internal failure.
    pub request_id: Option<String>,
    /// Seconds for `Retry-After` (a 503 says 5 without one).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl HttpError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            status,
            code,
            message: message.into(),
            field: None,
            close: false,
            request_id: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// The JSON body alone, for per-line batch results.
    pub fn body(&self) -> serde_json::Value {
        let mut v =
            serde_json::json!({"code": self.code, "message": self.message, "field": self.field});
        if let Some(id) = &self.request_id {
            v["request_id"] = serde_json::Value::from(id.as_str());
        }
        v
    }
}

impl From<ValidationError> for HttpError {
    fn from(e: ValidationError) -> Self {
        HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_article",
            e.message,
        )
        .with_field(e.field)
    }
}

/// How long a client is told to wait after a 503 that says nothing more specific (a refused deep
/// page, a store outage, readiness): long enough for a pool or a slot to free, short enough that
/// a poller does not skip a cycle. Written by both HTTP paths, so it is spelled once.
pub const RETRY_AFTER_SECS: &str = "5";

/// [`RETRY_AFTER_SECS`] as a header value.
pub fn retry_after() -> HeaderValue {
    HeaderValue::from_static(RETRY_AFTER_SECS)
}

/// A short id for one failure, unique within the process and unlikely to repeat across restarts:
/// the client quotes it, the operator finds the log line.
pub fn request_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        xxhash_rust::xxh3::xxh3_64(
            &[
                t.as_nanos().to_le_bytes(),
                u128::from(std::process::id()).to_le_bytes(),
            ]
            .concat(),
        )
    });
    format!(
        "{:08x}{:08x}",
        *prefix as u32,
        NEXT.fetch_add(1, Ordering::Relaxed) as u32
    )
}

/// The one mapping from a store failure to a status: a database that cannot take the request now
/// (unreachable, locked, disk full, out of memory, read-only: see [`StoreError`]) is worth a
/// retry, 503 with `Retry-After`; anything else is our fault, 500.
pub fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Backend(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Logs a store failure under a new request id and returns the id.
fn log_store_failure(e: &StoreError, what: &str) -> String {
    let id = request_id();
    tracing::warn!(request_id = %id, error = %e, "{what}");
    id
}

/// The status and text of a feed the store could not render (no earlier copy to serve).
pub fn feed_unavailable(e: &StoreError) -> (StatusCode, String) {
    let id = log_store_failure(e, "feed unavailable");
    (
        store_status(e),
        format!("The feed cannot be rendered right now; try again shortly (request id {id})."),
    )
}

impl From<StoreError> for HttpError {
    fn from(e: StoreError) -> Self {
        let id = log_store_failure(&e, "store failure answered to an API client");
        let status = store_status(&e);
        let (code, message) = match e {
            StoreError::Unavailable(_) => (
                "store_unavailable",
                "the article store is unavailable; retry shortly",
            ),
            StoreError::Backend(_) => ("store_error", "the article store failed"),
        };
        let mut err = HttpError::new(status, code, format!("{message} (request id {id})"));
        err.request_id = Some(id);
        err
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
                request_id: self.request_id.as_deref(),
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if self.close {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: say which scheme would work.
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"bantin\""),
            );
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        } else if self.status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, retry_after());
        }
        resp
    }
}
