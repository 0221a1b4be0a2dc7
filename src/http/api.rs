//! The publishing API (`/api/v1`): upsert, read and delete articles, and NDJSON batches.
//!
//! Bodies are read with explicit limits (rather than axum's plain-text 413) so every error is the
//! JSON shape of [`HttpError`]. Tokens are compared in constant time and never logged. Writes go
//! through [`App`], which invalidates exactly the touched feeds and queues WebSub pings and CDN purges without
//! waiting for hubs.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::error::HttpError;
use crate::app::App;
use crate::article::{Article, InputError, Status, is_valid_id, parse_input};
use crate::store::Upsert;

/// Every API route and the statuses it answers; the OpenAPI document is checked against this
/// table by a test, and the integration tests check the server against it.
pub const ROUTES: &[(&str, &str, &[u16])] = &[
    (
        "put",
        "/api/v1/articles/{id}",
        &[200, 201, 400, 401, 403, 409, 413, 415, 422, 503],
    ),
    ("get", "/api/v1/articles/{id}", &[200, 401, 403, 404, 503]),
    (
        "delete",
        "/api/v1/articles/{id}",
        &[204, 401, 403, 404, 503],
    ),
    ("post", "/api/v1/articles", &[200, 401, 403, 413, 415, 503]),
    ("get", "/api/v1/openapi.json", &[200]),
    ("get", "/api/v1/stats", &[200, 400, 401, 403, 503]),
    ("get", "/api/v1/sources", &[200, 401, 403, 503]),
];

pub const OPENAPI: &str = include_str!("openapi.json");

/// Articles per store transaction in a batch request.
const BATCH_TX: usize = 500;

pub fn routes(_state: &super::State) -> Router<super::State> {
    Router::new()
        .route(
            "/api/v1/articles/{id}",
            get(get_article).put(put_article).delete(delete_article),
        )
        .route("/api/v1/articles", post(post_batch))
        .route("/api/v1/openapi.json", get(openapi))
        // Limits are applied per route by `read_body`, with JSON errors.
        .layer(DefaultBodyLimit::disable())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Checks `Authorization: Bearer <token>` against every configured token without short-cutting,
/// so timing says nothing about which token or how much of it matched.
pub(super) fn authorize(app: &App, headers: &HeaderMap) -> Result<(), HttpError> {
    let tokens = &app.config.api.tokens;
    if tokens.is_empty() {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "api_disabled",
            "the write API is off: set BANTIN_API_TOKEN or BANTIN_API_TOKEN_FILE to enable it",
        ));
    }
    // The scheme is case-insensitive (RFC 9110 §11.1): `Bearer`, `bearer`, `BEARER`.
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(presented) = presented else {
        return Err(unauthorized("missing `Authorization: Bearer <token>`"));
    };
    let mut ok = subtle::Choice::from(0u8);
    for t in tokens {
        ok |= t.as_bytes().ct_eq(presented.as_bytes());
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(unauthorized("the token is not valid"))
    }
}

fn unauthorized(msg: &str) -> HttpError {
    HttpError::new(StatusCode::UNAUTHORIZED, "unauthorized", msg)
}

fn require_content_type(headers: &HeaderMap, wanted: &[&str]) -> Result<(), HttpError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if wanted.contains(&mime.as_str()) {
        Ok(())
    } else {
        Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {}, not `{ct}`", wanted.join(" or ")),
        ))
    }
}

fn too_large(limit: usize) -> HttpError {
    // The rest of the body is never read, so the connection cannot carry another request: say so,
    // or a client may reuse it and see its next request fail.
    HttpError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is larger than {limit} bytes"),
    )
    .closing()
}

/// Reads a whole body up to `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, HttpError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large(limit));
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large(limit))
}

/// An article as the API returns it: the stored, normalised article, times in the site zone.
#[derive(Serialize)]
struct ArticleView<'a> {
    id: &'a str,
    lang: &'a str,
    category: &'a str,
    title: &'a str,
    summary: &'a str,
    content_html: &'a str,
    url: &'a str,
    author: &'a str,
    published_at: String,
    updated_at: String,
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a crate::article::Image>,
    translations: &'a std::collections::BTreeMap<String, String>,
    status: Status,
}

fn view<'a>(app: &App, a: &'a Article) -> ArticleView<'a> {
    ArticleView {
        id: &a.id,
        lang: &a.lang,
        category: &a.category,
        title: &a.title,
        summary: &a.summary,
        content_html: &a.content_html,
        url: &a.url,
        author: &a.author,
        published_at: app.config.zone.rfc3339(a.published_at),
        updated_at: app.config.zone.rfc3339(a.updated_at),
        tags: &a.tags,
        image: a.image.as_ref(),
        translations: &a.translations,
        status: a.status,
    }
}

fn input_error(e: InputError) -> HttpError {
    match e {
        InputError::Malformed(m) => HttpError::new(StatusCode::BAD_REQUEST, "malformed_json", m),
        InputError::Invalid(v) => v.into(),
    }
}

/// Parses and validates one article; an `id` in the body must agree with the URL's, a missing
/// one is taken from the URL.
fn article_from(app: &App, text: &str, id: Option<&str>) -> Result<Article, HttpError> {
    let mut input = parse_input(text).map_err(input_error)?;
    if let Some(id) = id {
        if input.id.is_empty() {
            input.id = id.to_string();
        } else if input.id != id {
            return Err(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_article",
                format!("the body's id `{}` is not the URL's `{id}`", input.id),
            )
            .with_field("id"));
        }
    }
    Article::from_input(input, &app.config).map_err(HttpError::from)
}

fn stale(app: &App, a: &Article, stored: chrono::DateTime<chrono::Utc>) -> HttpError {
    HttpError::new(
        StatusCode::CONFLICT,
        "stale_update",
        format!(
            "the stored article has a newer updated_at ({}) than this one ({}); a late retry never overwrites a correction",
            app.config.zone.rfc3339(stored),
            app.config.zone.rfc3339(a.updated_at)
        ),
    )
    .with_field("updated_at")
}

async fn put_article(
    State(state): State<super::State>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let app = &state.app;
    authorize(app, &headers)?;
    if !is_valid_id(&id) {
        return Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_article",
            "the id in the URL must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', and not `.` or `..`",
        )
        .with_field("id"));
    }
    require_content_type(&headers, &["application/json"])?;
    let bytes = read_body(&headers, body, app.config.api.max_article_bytes).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        HttpError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not UTF-8",
        )
    })?;
    let article = article_from(app, text, Some(&id))?;
    let outcome = app.put(&article).await?;
    let label = |r| crate::metrics::ResultLabel { result: r };
    let status = match outcome {
        Upsert::Created => StatusCode::CREATED,
        Upsert::Updated { .. } | Upsert::Unchanged => StatusCode::OK,
        Upsert::Stale { stored_updated_at } => {
            app.metrics.api_writes.get_or_create(&label("stale")).inc();
            return Err(stale(app, &article, stored_updated_at));
        }
    };
    app.metrics
        .api_writes
        .get_or_create(&label(outcome_name(&outcome)))
        .inc();
    let mut resp = (status, Json(view(app, &article))).into_response();
    if status == StatusCode::CREATED
        && let Ok(loc) = HeaderValue::from_str(&format!("/api/v1/articles/{id}"))
    {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

fn outcome_name(o: &Upsert) -> &'static str {
    match o {
        Upsert::Created => "created",
        Upsert::Updated { .. } => "updated",
        Upsert::Unchanged => "unchanged",
        Upsert::Stale { .. } => "conflict",
    }
}

async fn get_article(
    State(state): State<super::State>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let app = &state.app;
    authorize(app, &headers)?;
    match app.store.get(&id).await? {
        Some(a) => Ok(Json(view(app, &a)).into_response()),
        None => Err(HttpError::not_found(format!("no article `{id}`"))),
    }
}

async fn delete_article(
    State(state): State<super::State>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let app = &state.app;
    authorize(app, &headers)?;
    match app.delete(&id).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(HttpError::not_found(format!("no article `{id}`"))),
    }
}

/// One line's result in a batch response.
#[derive(Serialize)]
struct LineResult {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// `POST /api/v1/articles` with NDJSON: each line is validated and stored on its own, in
/// transactions of [`BATCH_TX`]; the body is consumed as a stream, so memory stays bounded by one
/// transaction's articles plus the per-line results.
async fn post_batch(
    State(state): State<super::State>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let app = state.app.clone();
    authorize(&app, &headers)?;
    require_content_type(
        &headers,
        &[
            "application/x-ndjson",
            "application/jsonl",
            "application/json-seq",
        ],
    )?;
    let limit = app.config.api.max_batch_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large(limit));
    }
    let line_limit = app.config.api.max_article_bytes;
    let mut results: Vec<LineResult> = Vec::new();
    let mut raw: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut pipeline = Pipeline { inflight: None };
    let mut buf: Vec<u8> = Vec::new();
    let mut line_no = 0usize;
    let mut skipping_long_line = false;
    let mut total = 0usize;
    let mut stream = body.into_data_stream();
    let mut exceeded = false;

    loop {
        let chunk = match stream.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                return Err(HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "body_read_failed",
                    e.to_string(),
                ));
            }
            None => break,
        };
        total += chunk.len();
        if total > limit {
            exceeded = true;
            break;
        }
        let mut rest = &chunk[..];
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            line_no += 1;
            if skipping_long_line {
                skipping_long_line = false;
            } else {
                buf.extend_from_slice(&rest[..nl]);
                raw.push((line_no, std::mem::take(&mut buf)));
            }
            buf.clear();
            rest = &rest[nl + 1..];
            if raw.len() >= BATCH_TX {
                pipeline
                    .submit(&app, std::mem::take(&mut raw), &mut results)
                    .await?;
            }
        }
        if !skipping_long_line {
            buf.extend_from_slice(rest);
            if buf.len() > line_limit {
                results.push(LineResult {
                    line: line_no + 1,
                    id: None,
                    status: "invalid",
                    error: Some(too_large(line_limit).with_field("(line)").body()),
                });
                buf.clear();
                skipping_long_line = true;
            }
        }
    }
    if !exceeded && !skipping_long_line && !buf.iter().all(u8::is_ascii_whitespace) {
        line_no += 1;
        raw.push((line_no, buf));
    }
    pipeline.submit(&app, raw, &mut results).await?;
    pipeline.drain(&app, &mut results).await?;
    results.sort_by_key(|r| r.line);

    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    let summary = json!({
        "created": count("created"), "updated": count("updated"), "unchanged": count("unchanged"),
        "conflict": count("conflict"), "invalid": count("invalid"),
    });
    if exceeded {
        let err = too_large(limit);
        let body = json!({"error": err.body(), "summary": summary, "results": results});
        let mut resp = (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(resp);
    }
    Ok(Json(json!({"summary": summary, "results": results})).into_response())
}

/// Validation of one chunk of lines runs on the blocking pool while the previous chunk is being
/// written, so parsing and sanitising (the costly part of a batch) overlaps the store's work and
/// never holds up the worker thread's other connections.
struct Pipeline {
    inflight: Option<Validating>,
}

/// A chunk being validated: its rejected lines, and its articles with their line numbers.
type Validating = tokio::task::JoinHandle<(Vec<LineResult>, Vec<(usize, Article)>)>;

impl Pipeline {
    async fn submit(
        &mut self,
        app: &Arc<App>,
        raw: Vec<(usize, Vec<u8>)>,
        results: &mut Vec<LineResult>,
    ) -> Result<(), HttpError> {
        if raw.is_empty() {
            return Ok(());
        }
        let validating = app.clone();
        let next = tokio::task::spawn_blocking(move || {
            let (mut invalid, mut valid) = (Vec::new(), Vec::new());
            for (line, bytes) in raw {
                handle_line(&validating, line, &bytes, &mut invalid, &mut valid);
            }
            (invalid, valid)
        });
        match self.inflight.replace(next) {
            Some(previous) => Self::finish(app, previous, results).await,
            None => Ok(()),
        }
    }

    async fn drain(
        &mut self,
        app: &Arc<App>,
        results: &mut Vec<LineResult>,
    ) -> Result<(), HttpError> {
        match self.inflight.take() {
            Some(last) => Self::finish(app, last, results).await,
            None => Ok(()),
        }
    }

    async fn finish(
        app: &Arc<App>,
        chunk: Validating,
        results: &mut Vec<LineResult>,
    ) -> Result<(), HttpError> {
        let (invalid, mut valid) = chunk.await.map_err(|e| {
            HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
        })?;
        results.extend(invalid);
        write_pending(app, &mut valid, results).await
    }
}

fn handle_line(
    app: &Arc<App>,
    line: usize,
    bytes: &[u8],
    results: &mut Vec<LineResult>,
    pending: &mut Vec<(usize, Article)>,
) {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t.trim(),
        Err(_) => {
            let e = HttpError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the line is not UTF-8",
            );
            results.push(LineResult {
                line,
                id: None,
                status: "invalid",
                error: Some(e.body()),
            });
            return;
        }
    };
    if text.is_empty() {
        return;
    }
    match article_from(app, text, None) {
        Ok(a) => pending.push((line, a)),
        Err(e) => {
            let id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(String::from));
            results.push(LineResult {
                line,
                id,
                status: "invalid",
                error: Some(e.body()),
            });
        }
    }
}

async fn write_pending(
    app: &Arc<App>,
    pending: &mut Vec<(usize, Article)>,
    results: &mut Vec<LineResult>,
) -> Result<(), HttpError> {
    if pending.is_empty() {
        return Ok(());
    }
    let articles: Vec<Article> = pending.iter().map(|(_, a)| a.clone()).collect();
    let outcomes = app.put_batch(&articles).await?;
    for ((line, a), o) in pending.drain(..).zip(outcomes) {
        let error = match &o {
            Upsert::Stale { stored_updated_at } => Some(stale(app, &a, *stored_updated_at).body()),
            _ => None,
        };
        results.push(LineResult {
            line,
            id: Some(a.id),
            status: outcome_name(&o),
            error,
        });
    }
    Ok(())
}
