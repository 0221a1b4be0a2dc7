//! `bantin import PATH…` and the start-up sync of `feeds/articles/`: load JSON, NDJSON and JSON
//! arrays into the store.
//!
//! A bad record is reported with its file and line (or array index) and the field at fault, and
//! the rest still loads: a newsroom's export with one broken article must not block the other ten
//! thousand. Records go to the store in transactions of [`BATCH`] through [`App::put_batch`], so an
//! import invalidates exactly the feeds it changed, and re-importing the same files changes
//! nothing (every record comes back `Unchanged`).

use std::fmt;
use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::app::App;
use crate::article::{Article, InputError, parse_input};
use crate::store::{StoreError, Upsert};

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

/// Reads records from files, validating each: yields `(origin, Ok(article) | Err(rejection))`.
/// NDJSON is read line by line, so a file of a million articles is never held in memory whole.
pub fn read_records(
    file: &Path,
    config: &crate::config::Config,
    mut each: impl FnMut(Origin, Result<Article, Rejected>),
) -> std::io::Result<()> {
    let reject = |origin: &Origin, e: InputError| -> Rejected {
        match e {
            InputError::Malformed(m) => Rejected {
                origin: origin.clone(),
                field: None,
                message: format!("malformed JSON: {m}"),
            },
            InputError::Invalid(v) => Rejected {
                origin: origin.clone(),
                field: Some(v.field),
                message: v.message,
            },
        }
    };
    let validate = |origin: Origin, text: &str| -> (Origin, Result<Article, Rejected>) {
        let r = parse_input(text)
            .and_then(|i| Article::from_input(i, config).map_err(InputError::Invalid))
            .map_err(|e| reject(&origin, e));
        (origin, r)
    };
    if is_ndjson(file) {
        let reader = BufReader::new(std::fs::File::open(file)?);
        for (i, line) in reader.lines().enumerate() {
            let origin = Origin {
                file: file.to_path_buf(),
                line: i + 1,
                is_item: false,
            };
            let line = match line {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    each(
                        origin.clone(),
                        Err(Rejected {
                            origin,
                            field: None,
                            message: "not UTF-8".into(),
                        }),
                    );
                    continue;
                }
                Err(e) => return Err(e),
            };
            if line.trim().is_empty() {
                continue;
            }
            let (o, r) = validate(origin, &line);
            each(o, r);
        }
        return Ok(());
    }
    let bytes = std::fs::read(file)?;
    let origin = Origin {
        file: file.to_path_buf(),
        line: 1,
        is_item: false,
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => {
            each(
                origin.clone(),
                Err(Rejected {
                    origin,
                    field: None,
                    message: "not UTF-8".into(),
                }),
            );
            return Ok(());
        }
    };
    if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<Box<serde_json::value::RawValue>>>(&text) {
            Ok(items) => {
                for (i, raw) in items.iter().enumerate() {
                    let (o, r) = validate(
                        Origin {
                            file: file.to_path_buf(),
                            line: i + 1,
                            is_item: true,
                        },
                        raw.get(),
                    );
                    each(o, r);
                }
            }
            Err(e) => {
                let o = Origin {
                    line: e.line(),
                    ..origin
                };
                each(
                    o.clone(),
                    Err(Rejected {
                        origin: o,
                        field: None,
                        message: format!("malformed JSON: {e}"),
                    }),
                );
            }
        }
    } else {
        let (o, r) = validate(origin, &text);
        // Point a validation error at the line where the field's value is, when it can be found.
        let r = r.map_err(|mut rej| {
            if let Some(field) = rej.field.as_deref() {
                let key = field.split(['.', '[']).next().unwrap_or(field);
                if let Some(pos) = text.find(&format!("\"{key}\"")) {
                    rej.origin.line = text[..pos].matches('\n').count() + 1;
                }
            }
            rej
        });
        each(o, r);
    }
    Ok(())
}

/// What the reading thread hands to the writer.
enum Read {
    Batch(Vec<(Origin, Article)>),
    Rejected(Rejected),
    FileDone(u64),
}

/// Imports `files` through `app`, reporting each rejected record. Files are read and validated
/// on a blocking thread while the previous batch is being written, and handed over in batches of
/// [`BATCH`] through a short queue, so memory stays bounded whatever the file size. Store failures
/// abort (nothing after the failed transaction is written; everything before it is).
pub async fn import(app: &App, files: &[PathBuf], progress: bool) -> Result<Report, ImportError> {
    let mut report = Report::default();
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
    let config = app.config.clone();
    let files = files.to_vec();
    let reader = tokio::task::spawn_blocking(move || -> Result<(), ImportError> {
        let mut batch = Vec::with_capacity(BATCH);
        for file in &files {
            // A send fails only when the writer gave up (a store error); stop reading then.
            let mut open = true;
            read_records(file, &config, |origin, r| match r {
                Ok(a) => {
                    batch.push((origin, a));
                    if batch.len() >= BATCH {
                        open &= tx
                            .blocking_send(Read::Batch(std::mem::take(&mut batch)))
                            .is_ok();
                    }
                }
                Err(rej) => open &= tx.blocking_send(Read::Rejected(rej)).is_ok(),
            })
            .map_err(|e| ImportError::Io(file.clone(), e))?;
            let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            if !open || tx.blocking_send(Read::FileDone(size)).is_err() {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Read::Batch(batch));
        }
        Ok(())
    });
    while let Some(msg) = rx.recv().await {
        match msg {
            Read::Batch(mut batch) => flush(app, &mut batch, &mut report).await?,
            Read::Rejected(r) => report.rejected.push(r),
            Read::FileDone(size) => {
                if let Some(bar) = &bar {
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
    reader
        .await
        .map_err(|e| ImportError::Io(PathBuf::new(), std::io::Error::other(e)))??;
    if let Some(bar) = bar {
        bar.finish_with_message(report.to_string());
    }
    Ok(report)
}

async fn flush(
    app: &App,
    pending: &mut Vec<(Origin, Article)>,
    report: &mut Report,
) -> Result<(), ImportError> {
    if pending.is_empty() {
        return Ok(());
    }
    let articles: Vec<Article> = pending.iter().map(|(_, a)| a.clone()).collect();
    let outcomes = app.put_batch(&articles).await.map_err(ImportError::Store)?;
    for ((origin, a), outcome) in pending.drain(..).zip(outcomes) {
        match outcome {
            Upsert::Created => report.created += 1,
            Upsert::Updated { .. } => report.updated += 1,
            Upsert::Unchanged => report.unchanged += 1,
            Upsert::Stale { stored_updated_at } => report.rejected.push(Rejected {
                origin,
                field: Some("updated_at".into()),
                message: format!(
                    "the stored version of `{}` is newer ({}); this older one was not loaded",
                    a.id,
                    app.config.zone.rfc3339(stored_updated_at)
                ),
            }),
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(transparent)]
    Store(StoreError),
}
