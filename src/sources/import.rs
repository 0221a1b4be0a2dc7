//! `bantin import PATH…` and the start-up sync of `feeds/articles/`: load JSON, NDJSON and JSON
//! arrays into the store.
//!
//! A bad record is reported with its file and line (or array index) and the field at fault, and
//! the rest still loads: a newsroom's export with one broken article must not block the other ten
//! thousand. Records go through the [`ingest`] pipeline, the API's batches' own, in transactions
//! of [`BATCH`] through [`App::put_batch`], so an import invalidates exactly the feeds it changed,
//! and re-importing the same files changes nothing (every record comes back `Unchanged`).

use std::fmt;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use crate::app::App;
use crate::article::Article;
use crate::config::Config;
use crate::ingest::{self, Done, Ingest, IngestError, Item, Locate, Outcome, Rejection, Sink};

/// Articles per store transaction.
pub const BATCH: usize = 1000;

/// Where a record came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    /// 1-based line for NDJSON and single-object files; 1-based item for JSON arrays.
    pub line: usize,
    pub is_item: bool,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_item {
            write!(f, "{}: item {}", self.file.display(), self.line)
        } else {
            write!(f, "{}:{}", self.file.display(), self.line)
        }
    }
}

/// One rejected record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub origin: Origin,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{}: {}: {}", self.origin, field, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub rejected: Vec<Rejected>,
}

impl Report {
    pub fn loaded(&self) -> usize {
        self.created + self.updated + self.unchanged
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} created, {} updated, {} unchanged, {} rejected",
            self.created,
            self.updated,
            self.unchanged,
            self.rejected.len()
        )
    }
}

/// Every importable file under `paths` (directories recursively), sorted for a stable order.
pub fn collect_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir)? {
                    let path = entry?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if is_importable(&path) {
                        out.push(path);
                    }
                }
            }
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file or directory", p.display()),
            ));
        }
    }
    out.sort();
    Ok(out)
}

fn is_importable(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("json" | "ndjson" | "jsonl")
    )
}

fn is_ndjson(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("ndjson" | "jsonl")
    )
}

/// A pretty-printed single-article file spans many lines: a validation error points at the line
/// where the field's key is, when it can be found. (One NDJSON line has no newline to count, and
/// an array item is named by its index.)
impl Locate for Origin {
    fn locate(&mut self, text: &str, rejection: &Rejection) {
        let Rejection::Invalid(v) = rejection else {
            return;
        };
        if self.is_item {
            return;
        }
        let key = v.field.split(['.', '[']).next().unwrap_or(&v.field);
        if let Some(pos) = text.find(&format!("\"{key}\"")) {
            self.line += text[..pos].matches('\n').count();
        }
    }
}

impl Rejected {
    fn new(origin: Origin, rejection: Rejection) -> Rejected {
        match rejection {
            Rejection::Invalid(v) => Rejected {
                origin,
                field: Some(v.field),
                message: v.message,
            },
            other => Rejected {
                origin,
                field: None,
                message: other.to_string(),
            },
        }
    }
}

/// Reads the records of one file, unvalidated: an NDJSON line, an array item or a whole
/// single-article file each become one [`Item`]. NDJSON is read line by line, so a file of a
/// million articles is never held in memory whole.
pub fn read_items(file: &Path, mut each: impl FnMut(Origin, Item)) -> std::io::Result<()> {
    let at = |line, is_item| Origin {
        file: file.to_path_buf(),
        line,
        is_item,
    };
    if is_ndjson(file) {
        let mut reader = BufReader::new(std::fs::File::open(file)?);
        let mut line = 0;
        loop {
            let mut bytes = Vec::new();
            if reader.read_until(b'\n', &mut bytes)? == 0 {
                return Ok(());
            }
            line += 1;
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                each(at(line, false), Item::Json(bytes));
            }
        }
    }
    let bytes = std::fs::read(file)?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        each(at(1, false), Item::Json(bytes));
        return Ok(());
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        each(at(1, false), Item::Rejected(Rejection::NotUtf8));
        return Ok(());
    };
    match serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text) {
        Ok(items) => {
            for (i, raw) in items.iter().enumerate() {
                each(at(i + 1, true), Item::Json(raw.get().as_bytes().to_vec()));
            }
        }
        Err(e) => each(
            at(e.line(), false),
            Item::Rejected(Rejection::Malformed(e.to_string())),
        ),
    }
    Ok(())
}

/// Reads records from a file, validating each: yields `(origin, Ok(article) | Err(rejection))`.
pub fn read_records(
    file: &Path,
    config: &crate::config::Config,
    mut each: impl FnMut(Origin, Result<Article, Rejected>),
) -> std::io::Result<()> {
    read_items(file, |mut origin, item| {
        match ingest::validate(&mut origin, item, config) {
            Ok(a) => each(origin, Ok(a)),
            Err(r) => each(origin.clone(), Err(Rejected::new(origin, r))),
        }
    })
}

/// What the reading thread hands to the writer.
enum Read {
    Items(Vec<(Origin, Item)>),
    FileDone(u64),
}

/// Counts outcomes into the report.
struct ReportSink {
    report: Report,
    config: Arc<Config>,
}

impl Sink<Origin> for ReportSink {
    fn outcome(&mut self, done: Done<Origin>) {
        let r = &mut self.report;
        match done.outcome {
            Outcome::Created => r.created += 1,
            Outcome::Updated => r.updated += 1,
            Outcome::Unchanged => r.unchanged += 1,
            Outcome::Stale {
                stored_updated_at, ..
            } => r.rejected.push(Rejected {
                origin: done.origin,
                field: Some("updated_at".into()),
                message: format!(
                    "the stored version of `{}` is newer ({}); this older one was not loaded",
                    done.id.unwrap_or_default(),
                    self.config.zone.rfc3339(stored_updated_at)
                ),
            }),
            Outcome::Rejected(why) => r.rejected.push(Rejected::new(done.origin, why)),
        }
    }
}

/// Imports `files` through `app`, reporting each rejected record. Files are read on a blocking
/// thread and handed over in batches through a short queue to the [`ingest`] pipeline, which
/// validates a chunk on the blocking pool while the previous one is written, in transactions of
/// [`BATCH`]; so memory stays bounded whatever the file size. Store failures abort (nothing
/// after the failed transaction is written; everything before it is).
pub async fn import(app: &App, files: &[PathBuf], progress: bool) -> Result<Report, ImportError> {
    let bar = if progress && std::io::stderr().is_terminal() {
        let total: u64 = files
            .iter()
            .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
            .sum();
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}",
            )
            .expect("a valid template"),
        );
        Some(bar)
    } else {
        None
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Read>(2);
    let files = files.to_vec();
    let reader = tokio::task::spawn_blocking(move || -> Result<(), ImportError> {
        let (mut batch, mut bytes) = (Vec::with_capacity(BATCH), 0usize);
        for file in &files {
            // A send fails only when the writer gave up (a store error); stop reading then.
            let mut open = true;
            read_items(file, |origin, item| {
                bytes += match &item {
                    Item::Json(b) => b.len(),
                    _ => 0,
                };
                batch.push((origin, item));
                if open && (batch.len() >= BATCH || bytes >= ingest::CHUNK_BYTES) {
                    bytes = 0;
                    open = tx
                        .blocking_send(Read::Items(std::mem::take(&mut batch)))
                        .is_ok();
                }
                if !open {
                    batch.clear();
                }
            })
            .map_err(|e| ImportError::Io(file.clone(), e))?;
            if !batch.is_empty() {
                bytes = 0;
                open &= tx
                    .blocking_send(Read::Items(std::mem::take(&mut batch)))
                    .is_ok();
            }
            let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            if !open || tx.blocking_send(Read::FileDone(size)).is_err() {
                return Ok(());
            }
        }
        Ok(())
    });
    let mut sink = ReportSink {
        report: Report::default(),
        config: app.config().clone(),
    };
    let mut ingest = Ingest::new(app, &mut sink).with_chunk_items(BATCH);
    while let Some(msg) = rx.recv().await {
        match msg {
            Read::Items(items) => {
                for (origin, item) in items {
                    ingest.push(origin, item).await?;
                }
            }
            Read::FileDone(size) => {
                if let Some(bar) = &bar {
                    let report = &ingest.sink().report;
                    bar.inc(size);
                    bar.set_message(format!(
                        "{} loaded, {} rejected",
                        report.loaded(),
                        report.rejected.len()
                    ));
                }
            }
        }
    }
    ingest.finish().await?;
    reader
        .await
        .map_err(|e| ImportError::Io(PathBuf::new(), std::io::Error::other(e)))??;
    let report = sink.report;
    if let Some(bar) = bar {
        bar.finish_with_message(report.to_string());
    }
    Ok(report)
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Ingest(#[from] IngestError),
}
