//! Ingest: the one way articles get into the store in bulk — the API's NDJSON batches, `bantin
//! import` (and the start-up sync of `feeds/articles/`), and the upstream-feed poller. The poller
//! validates while mapping entries (with the same [`Article::from_input`], since it must add the
//! credit and keep first-seen times) and writes through [`ingest_articles`]; everything after
//! validation is the same path.
//!
//! Every source hands over items, each tagged with where it came from (a line number, a file and
//! line, a feed entry): raw JSON text, an already deserialised [`ArticleInput`], an [`Article`]
//! that is already valid, or a rejection the source found itself (a line too long to read). An
//! [`Ingest`] validates and normalises them, writes the valid ones in transactions through
//! [`App::put_batch`] (upsert, exact cache invalidation, NOTIFY to other replicas, WebSub and CDN
//! outbox), and hands each item's [`Outcome`] to a [`Sink`] in submission order.
//!
//! Why it is shaped so:
//!
//! - **Chunks, pipelined.** Items are cut into chunks (a count and a byte budget). Validation of
//!   a chunk — JSON parsing and HTML sanitising, the costly part — runs on the blocking pool while
//!   the previous chunk is being written, so the CPU work overlaps the store's, and never holds
//!   up the async worker's other connections. At most three chunks exist at once (filling,
//!   validating, writing), so memory is bounded by the chunk size, whatever the item count.
//! - **Outcomes stream out.** A chunk's outcomes go to the sink as soon as its transaction
//!   commits, then [`Sink::flush`] is awaited: a sink that forwards to a client (the batch
//!   response) gives back-pressure, and nothing here accumulates outcomes.
//! - **Nothing half-stored.** An item is rejected whole with the field at fault; a store failure
//!   aborts the ingest with [`IngestError`], after reporting every chunk committed before it.
//! - **One error enum.** [`IngestError`] is what stops an ingest; a bad item is not an error of
//!   the layer but one of its outcomes ([`Rejection`]), so sources report it and go on.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::app::App;
use crate::article::{Article, ArticleInput, InputError, ValidationError, parse_input};
use crate::config::Config;
use crate::store::{StoreError, Upsert};

/// Items per chunk (one store transaction) unless a caller chooses otherwise.
pub const CHUNK_ITEMS: usize = 500;

/// Bytes of input a chunk holds at most before it is cut, whatever its item count: with 1 MiB
/// articles a count alone would let one chunk hold half a gigabyte.
pub const CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// One item to ingest.
#[derive(Debug)]
pub enum Item {
    /// One JSON article as text (an NDJSON line, an array item, a file), not yet parsed.
    Json(Vec<u8>),
    /// An article already deserialised (a poller that mapped a feed entry), not yet validated.
    Input(ArticleInput),
    /// A valid, normalised article: written as it is.
    Article(Article),
    /// Known bad before parsing; reported in its place in the order.
    Rejected(Rejection),
}

impl Item {
    /// Roughly the memory the item holds, for cutting chunks.
    fn weight(&self) -> usize {
        match self {
            Item::Json(b) => b.len(),
            Item::Input(i) => i.content_html.len() + i.summary.len() + i.title.len() + 256,
            Item::Article(a) => a.content_html.len() + a.summary.len() + a.title.len() + 256,
            Item::Rejected(_) => 64,
        }
    }
}

/// Why one item was not stored (the rest of the ingest goes on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("not UTF-8")]
    NotUtf8,
    /// Not JSON, or not an object: nothing could be read from it.
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// JSON that is not a valid article; names the field.
    #[error(transparent)]
    Invalid(ValidationError),
    /// Longer than the per-item limit; never parsed.
    #[error("longer than {limit} bytes")]
    TooLarge { limit: usize },
}

impl From<InputError> for Rejection {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Malformed(m) => Rejection::Malformed(m),
            InputError::Invalid(v) => Rejection::Invalid(v),
        }
    }
}

/// What became of one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// The same article was already stored; nothing was invalidated or pinged.
    Unchanged,
    /// The stored article has a newer `updated_at` than this one's: a late retry never
    /// overwrites a correction.
    Stale {
        updated_at: DateTime<Utc>,
        stored_updated_at: DateTime<Utc>,
    },
    Rejected(Rejection),
}

impl Outcome {
    fn of(a: &Article, u: &Upsert) -> Outcome {
        match u {
            Upsert::Created => Outcome::Created,
            Upsert::Updated { .. } => Outcome::Updated,
            Upsert::Unchanged => Outcome::Unchanged,
            Upsert::Stale { stored_updated_at } => Outcome::Stale {
                updated_at: a.updated_at,
                stored_updated_at: *stored_updated_at,
            },
        }
    }

    /// The name the API and metrics use: `created`, `updated`, `unchanged`, `conflict`, `invalid`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
            Outcome::Stale { .. } => "conflict",
            Outcome::Rejected(_) => "invalid",
        }
    }
}

/// One item's outcome, with its origin and, when one could be read, its article id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done<O> {
    pub origin: O,
    pub id: Option<String>,
    pub outcome: Outcome,
}

/// What stops an ingest. Chunks committed before the failure stay committed and were reported.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Validation on the blocking pool did not finish (it panicked, or the runtime is stopping).
    #[error("validating a chunk failed: {0}")]
    Validation(String),
    /// The sink can take no more (the client went away).
    #[error("the receiver of the outcomes went away")]
    Closed,
}

/// An item's origin. An origin that spans several lines of text (a pretty-printed file) can
/// point a rejection at the line of the field at fault: [`Locate::locate`] is called on the
/// validating thread, with the text, only for rejected JSON items.
pub trait Locate: Send + 'static {
    fn locate(&mut self, _text: &str, _rejection: &Rejection) {}
}

/// A line number (NDJSON): one line, nothing to refine.
impl Locate for usize {}

/// Where outcomes go, in submission order.
pub trait Sink<O> {
    fn outcome(&mut self, done: Done<O>);

    /// Called after each chunk's outcomes: forward them, waiting if the receiver is slow (that is
    /// the back-pressure); an error stops the ingest.
    fn flush(&mut self) -> impl Future<Output = Result<(), IngestError>> + Send {
        async { Ok(()) }
    }
}

/// A sink lent for one ingest, so the caller still has it (and what it counted) when the ingest
/// stops on an error.
impl<O, T: Sink<O> + Send> Sink<O> for &mut T {
    fn outcome(&mut self, done: Done<O>) {
        (**self).outcome(done);
    }

    fn flush(&mut self) -> impl Future<Output = Result<(), IngestError>> + Send {
        (**self).flush()
    }
}

/// An item after validation.
// Valid is the common case: boxing it would cost an allocation per article to save bytes on rejects.
#[allow(clippy::large_enum_variant)]
enum Checked {
    Valid(Article),
    Rejected {
        id: Option<String>,
        rejection: Rejection,
    },
}

type Validating<O> = tokio::task::JoinHandle<Vec<(O, Checked)>>;

/// A pipelined ingest: [`push`](Ingest::push) items, then [`finish`](Ingest::finish).
pub struct Ingest<'a, O: Locate, S: Sink<O>> {
    app: &'a App,
    sink: S,
    chunk_items: usize,
    chunk_bytes: usize,
    filling: Vec<(O, Item)>,
    filling_bytes: usize,
    validating: Option<Validating<O>>,
}

impl<'a, O: Locate, S: Sink<O> + Send> Ingest<'a, O, S> {
    /// An ingest writing through `app` in chunks of [`CHUNK_ITEMS`] items or [`CHUNK_BYTES`].
    pub fn new(app: &'a App, sink: S) -> Self {
        Ingest {
            app,
            sink,
            chunk_items: CHUNK_ITEMS,
            chunk_bytes: CHUNK_BYTES,
            filling: Vec::new(),
            filling_bytes: 0,
            validating: None,
        }
    }

    /// Items per transaction (at least 1).
    pub fn with_chunk_items(mut self, n: usize) -> Self {
        self.chunk_items = n.max(1);
        self
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Adds one item; when a chunk is full it goes to validation, and the chunk validated before
    /// it is written and reported.
    pub async fn push(&mut self, origin: O, item: Item) -> Result<(), IngestError> {
        self.filling_bytes += item.weight();
        self.filling.push((origin, item));
        if self.filling.len() >= self.chunk_items || self.filling_bytes >= self.chunk_bytes {
            self.cut().await?;
        }
        Ok(())
    }

    /// Writes and reports everything pushed, and gives the sink back.
    pub async fn finish(mut self) -> Result<S, IngestError> {
        self.cut().await?;
        if let Some(last) = self.validating.take() {
            self.write(last).await?;
        }
        Ok(self.sink)
    }

    async fn cut(&mut self) -> Result<(), IngestError> {
        if self.filling.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.filling);
        self.filling_bytes = 0;
        let config = self.app.config().clone();
        let next = tokio::task::spawn_blocking(move || {
            items
                .into_iter()
                .map(|(mut origin, item)| {
                    let checked = check(&mut origin, item, &config);
                    (origin, checked)
                })
                .collect()
        });
        match self.validating.replace(next) {
            Some(previous) => self.write(previous).await,
            None => Ok(()),
        }
    }

    async fn write(&mut self, chunk: Validating<O>) -> Result<(), IngestError> {
        let checked = chunk
            .await
            .map_err(|e| IngestError::Validation(e.to_string()))?;
        let mut articles = Vec::new();
        let mut slots = Vec::with_capacity(checked.len());
        for (origin, c) in checked {
            match c {
                Checked::Valid(a) => {
                    slots.push((origin, None));
                    articles.push(a);
                }
                Checked::Rejected { id, rejection } => slots.push((
                    origin,
                    Some(Done {
                        origin: (),
                        id,
                        outcome: Outcome::Rejected(rejection),
                    }),
                )),
            }
        }
        let upserts = if articles.is_empty() {
            Vec::new()
        } else {
            self.app.put_batch(&articles).await?
        };
        for done in merge(slots, articles, upserts) {
            self.sink.outcome(done);
        }
        self.sink.flush().await
    }
}

/// Puts a chunk back in submission order: each slot is either already decided (rejected) or
/// takes the next written article and its upsert.
fn merge<O>(
    slots: Vec<(O, Option<Done<()>>)>,
    articles: Vec<Article>,
    upserts: Vec<Upsert>,
) -> impl Iterator<Item = Done<O>> {
    let mut written = articles.into_iter().zip(upserts);
    slots
        .into_iter()
        .filter_map(move |(origin, decided)| match decided {
            Some(d) => Some(Done {
                origin,
                id: d.id,
                outcome: d.outcome,
            }),
            // The store answers one upsert per article; a missing one would be its bug, and the
            // item is then left unreported rather than misreported.
            None => written.next().map(|(a, u)| Done {
                origin,
                outcome: Outcome::of(&a, &u),
                id: Some(a.id),
            }),
        })
}

/// Validates one item (on the validating thread).
fn check<O: Locate>(origin: &mut O, item: Item, config: &Config) -> Checked {
    match item {
        Item::Article(a) => Checked::Valid(a),
        Item::Rejected(rejection) => Checked::Rejected {
            id: None,
            rejection,
        },
        Item::Input(input) => {
            let id = Some(input.id.trim().to_string()).filter(|i| !i.is_empty());
            match Article::from_input(input, config) {
                Ok(a) => Checked::Valid(a),
                Err(v) => Checked::Rejected {
                    id,
                    rejection: Rejection::Invalid(v),
                },
            }
        }
        Item::Json(bytes) => match validate_json(&bytes, config) {
            Ok(a) => Checked::Valid(a),
            Err(rejection) => {
                let text = std::str::from_utf8(&bytes).unwrap_or("");
                origin.locate(text, &rejection);
                Checked::Rejected {
                    id: id_of(text),
                    rejection,
                }
            }
        },
    }
}

/// Validates one item on the calling thread (for callers that only check, such as `bantin
/// check`); an [`Ingest`] does the same on the blocking pool.
pub fn validate<O: Locate>(
    origin: &mut O,
    item: Item,
    config: &Config,
) -> Result<Article, Rejection> {
    match check(origin, item, config) {
        Checked::Valid(a) => Ok(a),
        Checked::Rejected { rejection, .. } => Err(rejection),
    }
}

/// Parses and validates one JSON article; surrounding whitespace is ignored.
pub fn validate_json(bytes: &[u8], config: &Config) -> Result<Article, Rejection> {
    let text = std::str::from_utf8(bytes).map_err(|_| Rejection::NotUtf8)?;
    let input = parse_input(text.trim())?;
    Article::from_input(input, config).map_err(Rejection::Invalid)
}

/// The `id` of a rejected record, when it has a readable one, so the client can tell which
/// article failed without counting lines.
fn id_of(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(text)
        .ok()?
        .id
        .filter(|i| !i.trim().is_empty())
}

/// Writes ready articles (say, a poller's) in transactions of [`CHUNK_ITEMS`], returning one
/// [`Upsert`] per article in order. For callers that hold their articles anyway; a source of
/// unbounded size should use an [`Ingest`] instead, which never holds more than a few chunks.
pub async fn ingest_articles(app: &App, articles: &[Article]) -> Result<Vec<Upsert>, IngestError> {
    let mut out = Vec::with_capacity(articles.len());
    for chunk in articles.chunks(CHUNK_ITEMS) {
        out.extend(app.put_batch(chunk).await?);
    }
    Ok(out)
}

/// One line of NDJSON, as [`Lines`] cuts it.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line within the limit (without its newline).
    Text(Vec<u8>),
    /// A line over the limit; its bytes were dropped as they came.
    TooLong,
}

/// Cuts a byte stream arriving in arbitrary chunks into NDJSON lines, enforcing a per-line limit
/// on every line (whether it arrives whole in one chunk or across many), and holding at most one
/// partial line of at most `max_line` bytes. Lines are numbered from 1; blank lines count but
/// are not yielded.
#[derive(Debug)]
pub struct Lines {
    max_line: usize,
    partial: Vec<u8>,
    /// The number of the line being read.
    line: usize,
    /// The current line went over the limit (and was reported); skip to its end.
    skipping: bool,
}

impl Lines {
    pub fn new(max_line: usize) -> Self {
        Lines {
            max_line,
            partial: Vec::new(),
            line: 1,
            skipping: false,
        }
    }

    /// Feeds one chunk, calling `each(line_number, line)` for every line it completes (and for a
    /// line as soon as it is known to be too long).
    pub fn feed(&mut self, mut chunk: &[u8], mut each: impl FnMut(usize, Line)) {
        while !chunk.is_empty() {
            let (segment, ends) = match chunk.iter().position(|&b| b == b'\n') {
                Some(nl) => (&chunk[..nl], true),
                None => (chunk, false),
            };
            chunk = &chunk[(segment.len() + usize::from(ends)).min(chunk.len())..];
            if !self.skipping {
                if self.partial.len() + segment.len() > self.max_line {
                    self.partial = Vec::new();
                    self.skipping = true;
                    each(self.line, Line::TooLong);
                } else if ends {
                    let text = if self.partial.is_empty() {
                        segment.to_vec()
                    } else {
                        let mut t = std::mem::take(&mut self.partial);
                        t.extend_from_slice(segment);
                        t
                    };
                    if !text.iter().all(u8::is_ascii_whitespace) {
                        each(self.line, Line::Text(text));
                    }
                } else {
                    self.partial.extend_from_slice(segment);
                }
            }
            if ends {
                self.line += 1;
                self.skipping = false;
            }
        }
    }

    /// Ends the stream: a last line without a newline is still a line.
    pub fn finish(mut self, mut each: impl FnMut(usize, Line)) {
        let text = std::mem::take(&mut self.partial);
        if !self.skipping && !text.iter().all(u8::is_ascii_whitespace) {
            each(self.line, Line::Text(text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::article::tests::{config, input};
    use std::sync::Arc;

    fn cut(max: usize, chunks: &[&[u8]]) -> Vec<(usize, Line)> {
        let mut out = Vec::new();
        let mut lines = Lines::new(max);
        for c in chunks {
            lines.feed(c, |n, l| out.push((n, l)));
        }
        lines.finish(|n, l| out.push((n, l)));
        out
    }

    fn text(s: &str) -> Line {
        Line::Text(s.as_bytes().to_vec())
    }

    #[test]
    fn lines_are_numbered_across_chunks_and_blank_ones_skipped() {
        assert_eq!(
            cut(100, &[b"ab\n\n  \ncd", b"e\nf"]),
            vec![(1, text("ab")), (4, text("cde")), (5, text("f"))]
        );
        assert_eq!(cut(100, &[b"a\n", b"\n"]), vec![(1, text("a"))]);
        assert_eq!(cut(100, &[]), vec![]);
    }

    #[test]
    fn a_long_line_is_refused_whether_whole_in_a_chunk_or_split() {
        // Whole inside one chunk: this is what was once let through.
        assert_eq!(
            cut(4, &[b"ok\n0123456789\nfine\n"]),
            vec![(1, text("ok")), (2, Line::TooLong), (3, text("fine"))]
        );
        // Across chunks, reported once, and the line after it is read normally.
        assert_eq!(
            cut(4, &[b"012", b"345", b"678\nab", b"c"]),
            vec![(1, Line::TooLong), (2, text("abc"))]
        );
        // The last line, without a newline, too.
        assert_eq!(
            cut(4, &[b"a\n01234"]),
            vec![(1, text("a")), (2, Line::TooLong)]
        );
        // Exactly at the limit is allowed.
        assert_eq!(cut(4, &[b"0123\n"]), vec![(1, text("0123"))]);
    }

    #[test]
    fn a_partial_line_never_grows_past_the_limit() {
        let mut lines = Lines::new(10);
        for _ in 0..1000 {
            lines.feed(b"xxxxxxxx", |_, _| {});
            assert!(lines.partial.len() <= 10);
        }
    }

    #[test]
    fn json_items_are_validated_and_rejections_named() {
        let c = config();
        assert!(matches!(
            validate_json(b"\xff\xfe", &c),
            Err(Rejection::NotUtf8)
        ));
        assert!(matches!(
            validate_json(b"{not json", &c),
            Err(Rejection::Malformed(_))
        ));
        let bad = br#"{"id":"x-1","lang":"fr","category":"kinh-te","title":"t","url":"https://baolongan.example/a","published_at":"2026-01-01T00:00:00"}"#;
        let mut origin = 1usize;
        match check(&mut origin, Item::Json(bad.to_vec()), &c) {
            Checked::Rejected {
                id,
                rejection: Rejection::Invalid(v),
            } => {
                assert_eq!(id.as_deref(), Some("x-1"));
                assert_eq!(v.field, "lang");
            }
            _ => panic!("`fr` is not a configured language"),
        }
        let mut i = input();
        i.category = "sport".into();
        assert!(matches!(
            check(&mut origin, Item::Input(i), &c),
            Checked::Rejected { id: Some(_), rejection: Rejection::Invalid(v) } if v.field == "category"
        ));
        assert!(matches!(
            check(&mut origin, Item::Input(input()), &c),
            Checked::Valid(_)
        ));
    }

    #[test]
    fn an_origin_can_point_at_the_fields_line() {
        struct At(usize);
        impl Locate for At {
            fn locate(&mut self, text: &str, r: &Rejection) {
                if let Rejection::Invalid(v) = r
                    && let Some(p) = text.find(&format!("\"{}\"", v.field))
                {
                    self.0 += text[..p].matches('\n').count();
                }
            }
        }
        let pretty = serde_json::to_string_pretty(&serde_json::json!({
            "id": "x", "lang": "fr", "category": "kinh-te", "title": "t",
            "url": "https://baolongan.example/a", "published_at": "2026-01-01T00:00:00"
        }))
        .unwrap();
        let want = pretty.lines().position(|l| l.contains("\"lang\"")).unwrap() + 1;
        let mut at = At(1);
        assert!(matches!(
            check(&mut at, Item::Json(pretty.into()), &config()),
            Checked::Rejected { .. }
        ));
        assert!(want > 1);
        assert_eq!(at.0, want);
    }

    #[test]
    fn a_chunk_comes_back_in_submission_order() {
        let a = |id: &str| {
            let mut i = input();
            i.id = id.into();
            Article::from_input(i, &config()).unwrap()
        };
        let rejected = |n| {
            (
                n,
                Some(Done {
                    origin: (),
                    id: None,
                    outcome: Outcome::Rejected(Rejection::NotUtf8),
                }),
            )
        };
        let slots = vec![(1, None), rejected(2), (3, None), rejected(4)];
        let out: Vec<(usize, Option<String>, &str)> = merge(
            slots,
            vec![a("a"), a("b")],
            vec![Upsert::Created, Upsert::Unchanged],
        )
        .map(|d| (d.origin, d.id, d.outcome.name()))
        .collect();
        assert_eq!(
            out,
            vec![
                (1, Some("a".into()), "created"),
                (2, None, "invalid"),
                (3, Some("b".into()), "unchanged"),
                (4, None, "invalid"),
            ]
        );
    }

    /// Outcomes reach the sink chunk by chunk, in order, and a re-ingest changes nothing.
    #[tokio::test]
    async fn an_ingest_writes_in_chunks_and_reports_in_order() {
        struct Collect(Vec<(usize, &'static str)>, usize);
        impl Sink<usize> for Collect {
            fn outcome(&mut self, d: Done<usize>) {
                self.0.push((d.origin, d.outcome.name()));
            }
            async fn flush(&mut self) -> Result<(), IngestError> {
                self.1 += 1;
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store =
            crate::store::backend::open(&format!("sqlite://{}", dir.path().join("t.db").display()))
                .await
                .unwrap();
        let app = App::new(
            Arc::new(config()),
            store,
            crate::outbox::Outbox::disabled(),
            Arc::new(crate::metrics::Metrics::new()),
        );
        for round in ["created", "unchanged"] {
            let mut ingest = Ingest::new(&app, Collect(Vec::new(), 0)).with_chunk_items(3);
            for n in 1..=7 {
                let item = if n == 5 {
                    Item::Json(b"{broken".to_vec())
                } else {
                    let mut i = input();
                    i.id = format!("ingest-{n}");
                    Item::Input(i)
                };
                ingest.push(n, item).await.unwrap();
            }
            let Collect(got, flushes) = ingest.finish().await.unwrap();
            let want: Vec<(usize, &str)> = (1..=7)
                .map(|n| (n, if n == 5 { "invalid" } else { round }))
                .collect();
            assert_eq!(got, want);
            assert_eq!(flushes, 3, "one flush per chunk");
        }
        let ready = vec![app.store().get("ingest-1").await.unwrap().unwrap()];
        let out = ingest_articles(&app, &ready).await.unwrap();
        assert!(matches!(out[..], [Upsert::Unchanged]));
    }
}
