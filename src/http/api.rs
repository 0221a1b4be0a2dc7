//! The publishing API (`/api/v1`): upsert, read and delete articles, and NDJSON batches.
//!
//! Bodies are read with explicit limits (rather than axum's plain-text 413) so every error is the
//! JSON shape of [`HttpError`]. Tokens are checked by [`super::auth`] (constant time, never
//! logged, failures counted and slowed per network). Writes go
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
use tokio::sync::mpsc;

use super::auth::{Api, ApiToken};
use super::error::HttpError;
use crate::app::App;
use crate::article::{Article, InputError, Status, is_valid_id, parse_input};
use crate::ingest::{self, Done, Ingest, IngestError, Item, Line, Lines, Outcome, Rejection};
use crate::store::Upsert;

/// Every API route and the statuses it answers; the OpenAPI document is checked against this
/// table by a test, and the integration tests check the server against it.
pub const ROUTES: &[(&str, &str, &[u16])] = &[
    (
        "put",
        "/api/v1/articles/{id}",
        &[200, 201, 400, 401, 403, 409, 413, 415, 422, 429, 503],
    ),
    (
        "get",
        "/api/v1/articles/{id}",
        &[200, 401, 403, 404, 429, 503],
    ),
    (
        "delete",
        "/api/v1/articles/{id}",
        &[204, 401, 403, 404, 429, 503],
    ),
    (
        "post",
        "/api/v1/articles",
        &[200, 401, 403, 413, 415, 429, 503],
    ),
    ("get", "/api/v1/openapi.json", &[200]),
    ("get", "/api/v1/stats", &[200, 400, 401, 403, 429, 503]),
    ("get", "/api/v1/sources", &[200, 401, 403, 429, 503]),
];

pub const OPENAPI: &str = include_str!("openapi.json");

/// Articles per store transaction in a batch request.
const BATCH_TX: usize = 500;

/// Result objects a batch response lists at most. Past it, lines are still stored and counted in
/// the summary, and `summary.results_omitted` says how many results were not listed: a response
/// (and the server's memory while sending it) stays bounded whatever the line count, and a client
/// that sent more lines than this learns every failure's line only for the first ones.
pub const MAX_LISTED_RESULTS: usize = 10_000;

/// Serialised chunks of results queued for the client at most: a client that does not read its
/// response stops the reading of its own request body, not the server's memory.
const OUT_QUEUE: usize = 4;

/// The publishing API's routes.
pub fn router() -> Router<super::state::State> {
    use crate::routes::{API_ARTICLE, API_ARTICLES, API_OPENAPI};
    Router::new()
        .route(
            API_ARTICLE,
            get(get_article).put(put_article).delete(delete_article),
        )
        .route(API_ARTICLES, post(post_batch))
        .route(API_OPENAPI, get(openapi))
        // Limits are applied per route by `read_body`, with JSON errors.
        .layer(DefaultBodyLimit::disable())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
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
        published_at: app.config().zone.rfc3339(a.published_at),
        updated_at: app.config().zone.rfc3339(a.updated_at),
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
                format!(
                    "the body's id `{}` is not the URL's `{id}`",
                    input.id.chars().take(130).collect::<String>()
                ),
            )
            .with_field("id"));
        }
    }
    Article::from_input(input, app.config()).map_err(HttpError::from)
}

fn stale(
    app: &App,
    updated_at: chrono::DateTime<chrono::Utc>,
    stored: chrono::DateTime<chrono::Utc>,
) -> HttpError {
    HttpError::new(
        StatusCode::CONFLICT,
        "stale_update",
        format!(
            "the stored article has a newer updated_at ({}) than this one ({}); a late retry never overwrites a correction",
            app.config().zone.rfc3339(stored),
            app.config().zone.rfc3339(updated_at)
        ),
    )
    .with_field("updated_at")
}

async fn put_article(
    State(state): State<super::state::State>,
    Path(id): Path<String>,
    _token: ApiToken<Api>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let app = &state.app;
    if !is_valid_id(&id) {
        return Err(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_article",
            "the id in the URL must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' and '-', and not `.` or `..`",
        )
        .with_field("id"));
    }
    require_content_type(&headers, &["application/json"])?;
    let bytes = read_body(&headers, body, app.config().api.max_article_bytes).await?;
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
            app.metrics()
                .api_writes
                .get_or_create(&label("stale"))
                .inc();
            return Err(stale(app, article.updated_at, stored_updated_at));
        }
    };
    app.metrics()
        .api_writes
        .get_or_create(&label(outcome_name(&outcome)))
        .inc();
    let mut resp = (status, Json(view(app, &article))).into_response();
    if status == StatusCode::CREATED
        && let Ok(loc) = HeaderValue::from_str(&crate::routes::api_article(&id))
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
    State(state): State<super::state::State>,
    Path(id): Path<String>,
    _token: ApiToken<Api>,
) -> Result<Response, HttpError> {
    let app = &state.app;
    match app.article(&id).await? {
        Some(a) => Ok(Json(view(app, &a)).into_response()),
        None => Err(HttpError::not_found(format!("no article `{id}`"))),
    }
}

async fn delete_article(
    State(state): State<super::state::State>,
    Path(id): Path<String>,
    _token: ApiToken<Api>,
) -> Result<Response, HttpError> {
    let app = &state.app;
    match app.delete(&id).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(HttpError::not_found(format!("no article `{id}`"))),
    }
}

/// One line's result in a batch response.
#[derive(Serialize)]
struct LineResult<'a> {
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// `POST /api/v1/articles` with NDJSON: each line is validated and stored on its own, in
/// transactions of [`BATCH_TX`], through the [`ingest`] pipeline.
///
/// The response is one JSON document, `{"results":[…],"summary":{…}}`, streamed: the status and
/// the opening are sent at once, each transaction's results (in line order) as it commits, the
/// summary at the end. So a batch's memory is bounded by its chunk size, not its line count, and
/// results are listed up to [`MAX_LISTED_RESULTS`]. A failure discovered once the status is sent
/// — a chunked body that grows past `max_batch_bytes`, a store failure, a broken upload — ends
/// the document with an `"error"` object after the summary, and the connection is closed (the
/// rest of the request body is never read). A declared `Content-Length` over the limit is still
/// refused up front with 413.
async fn post_batch(
    State(state): State<super::state::State>,
    _token: ApiToken<Api>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, HttpError> {
    let app = state.app.clone();
    require_content_type(
        &headers,
        &[
            "application/x-ndjson",
            "application/jsonl",
            "application/json-seq",
        ],
    )?;
    let limit = app.config().api.max_batch_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large(limit));
    }
    // Once the answer has begun it is a 200 whatever happens; a store that is down already is
    // told now, as a 503 with Retry-After, so a client retries the batch rather than reading
    // an error at the end of a document.
    app.ping_store().await?;
    let (tx, rx) = mpsc::channel::<Bytes>(OUT_QUEUE);
    tokio::spawn(run_batch(app, body, tx));
    let out = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(out),
    )
        .into_response())
}

/// Reads the NDJSON body line by line into the ingest pipeline and writes the response document
/// to `tx`. Ends early, without a word, when the client stops reading its response.
async fn run_batch(app: Arc<App>, body: Body, tx: mpsc::Sender<Bytes>) {
    if tx
        .send(Bytes::from_static(b"{\"results\":[\n"))
        .await
        .is_err()
    {
        return;
    }
    let mut sink = BatchSink {
        app: app.clone(),
        tx,
        out: Vec::new(),
        counts: Counts::default(),
    };
    let failure = match read_batch(&app, body, &mut sink).await {
        Ok(()) => None,
        Err(BatchStop::Gone) => return,
        Err(BatchStop::Failed(e)) => Some(e),
    };
    let mut tail = std::mem::take(&mut sink.out);
    tail.extend_from_slice(b"\n],\"summary\":");
    tail.extend_from_slice(sink.counts.summary().to_string().as_bytes());
    if let Some(e) = failure {
        tail.extend_from_slice(b",\"error\":");
        tail.extend_from_slice(e.body().to_string().as_bytes());
    }
    tail.extend_from_slice(b"}\n");
    let _ = sink.tx.send(Bytes::from(tail)).await;
}

/// Why a batch stopped before its end.
enum BatchStop {
    /// The client went away: there is no one to tell.
    Gone,
    /// Told at the end of the document.
    Failed(HttpError),
}

impl From<IngestError> for BatchStop {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Closed => BatchStop::Gone,
            IngestError::Store(e) => BatchStop::Failed(e.into()),
            IngestError::Validation(m) => {
                let id = super::error::request_id();
                tracing::error!(request_id = %id, error = %m, "batch validation failed");
                let mut e = HttpError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("validating the batch failed (request id {id})"),
                );
                e.request_id = Some(id);
                BatchStop::Failed(e)
            }
        }
    }
}

async fn read_batch(app: &App, body: Body, sink: &mut BatchSink) -> Result<(), BatchStop> {
    let limit = app.config().api.max_batch_bytes;
    let line_limit = app.config().api.max_article_bytes;
    let mut lines = Lines::new(line_limit);
    let mut ingest = Ingest::new(app, sink).with_chunk_items(BATCH_TX);
    let mut stream = body.into_data_stream();
    let mut total = 0usize;
    let mut complete = Vec::new();
    let item = |l: Line| match l {
        Line::Text(t) => Item::Json(t),
        Line::TooLong => Item::Rejected(Rejection::TooLarge { limit: line_limit }),
    };
    let stopped = loop {
        let chunk = match stream.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                break Some(HttpError::new(
                    StatusCode::BAD_REQUEST,
                    "body_read_failed",
                    format!("the request body could not be read to its end: {e}"),
                ));
            }
            None => break None,
        };
        // Only lines that end within the limit are taken; the line the limit cuts is not.
        let allowed = limit.saturating_sub(total);
        total = total.saturating_add(chunk.len());
        lines.feed(&chunk[..chunk.len().min(allowed)], |n, l| {
            complete.push((n, item(l)))
        });
        for (n, it) in complete.drain(..) {
            ingest.push(n, it).await?;
        }
        if total > limit {
            break Some(too_large(limit));
        }
    };
    // Dropping the body before the response ends tells hyper to close the connection after it
    // rather than read on.
    drop(stream);
    if stopped.is_none() {
        lines.finish(|n, l| complete.push((n, item(l))));
        for (n, it) in complete.drain(..) {
            ingest.push(n, it).await?;
        }
    }
    // What was read before a failure is stored and reported: each line stands alone.
    ingest.finish().await?;
    match stopped {
        Some(e) => Err(BatchStop::Failed(e)),
        None => Ok(()),
    }
}

#[derive(Default)]
struct Counts {
    created: usize,
    updated: usize,
    unchanged: usize,
    conflict: usize,
    invalid: usize,
    listed: usize,
    omitted: usize,
}

impl Counts {
    fn summary(&self) -> serde_json::Value {
        json!({
            "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "conflict": self.conflict, "invalid": self.invalid,
            "results_omitted": self.omitted,
        })
    }
}

/// Turns outcomes into the response's result objects, a transaction's worth at a time.
struct BatchSink {
    app: Arc<App>,
    tx: mpsc::Sender<Bytes>,
    out: Vec<u8>,
    counts: Counts,
}

impl ingest::Sink<usize> for BatchSink {
    fn outcome(&mut self, done: Done<usize>) {
        let c = &mut self.counts;
        match &done.outcome {
            Outcome::Created => c.created += 1,
            Outcome::Updated => c.updated += 1,
            Outcome::Unchanged => c.unchanged += 1,
            Outcome::Stale { .. } => c.conflict += 1,
            Outcome::Rejected(_) => c.invalid += 1,
        }
        if c.listed >= MAX_LISTED_RESULTS {
            c.omitted += 1;
            return;
        }
        if c.listed > 0 {
            self.out.extend_from_slice(b",\n");
        }
        c.listed += 1;
        let error = match &done.outcome {
            Outcome::Stale {
                updated_at,
                stored_updated_at,
            } => Some(stale(&self.app, *updated_at, *stored_updated_at).body()),
            Outcome::Rejected(r) => Some(rejection_error(r).body()),
            _ => None,
        };
        let result = LineResult {
            line: done.origin,
            id: done.id.as_deref(),
            status: done.outcome.name(),
            error,
        };
        // Serialising plain data into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.out, &result);
    }

    async fn flush(&mut self) -> Result<(), IngestError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.out));
        self.tx.send(chunk).await.map_err(|_| IngestError::Closed)
    }
}

fn rejection_error(r: &Rejection) -> HttpError {
    match r {
        Rejection::NotUtf8 => HttpError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the line is not UTF-8",
        ),
        Rejection::Malformed(m) => HttpError::new(StatusCode::BAD_REQUEST, "malformed_json", m),
        Rejection::Invalid(v) => v.clone().into(),
        Rejection::TooLarge { limit } => HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the line is longer than {limit} bytes (the per-article limit)"),
        )
        .with_field("(line)"),
    }
}
