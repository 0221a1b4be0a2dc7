//! A rendered representation of one feed page: the identity bytes, their gzip and brotli forms,
//! and the validators, all made once per render so that serving a poll costs a memory copy.
//!
//! Compression levels are chosen for the miss budget (a 50-item feed with ~8 KB of HTML per item
//! queried, rendered and compressed in under 5 ms): on such a feed (450 KB of prose), gzip level 2
//! (zlib-rs) takes 1.7 ms for 28.6% of the size, where level 4 takes 4.7 ms for 27.1% and level 6
//! 9.7 ms for 25.6%; brotli quality 1 takes 1.7 ms for 27.7%, as small as quality 4 (4.5 ms,
//! 27.8%). Large bodies are compressed on two threads at once. `cargo bench --bench render`
//! prints these figures.
//!
//! The ETag is a strong hash of the identity body; each encoding gets its own ETag (`"h"`,
//! `"h-gz"`, `"h-br"`), because RFC 9110 makes a differently-encoded body a different
//! representation.

use std::io::Write;

use axum::http::HeaderValue;
use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::clock::http_date;
use crate::config::Config;
use crate::feed::{FeedPage, Format};

pub const GZIP_LEVEL: u32 = 2;
/// Bodies at least this large are compressed on two threads at once.
const PARALLEL_MIN_BYTES: usize = 64 * 1024;
pub const BROTLI_QUALITY: u32 = 1;
const BROTLI_WINDOW: u32 = 22;

/// One body in one content coding, with its ETag ready to send.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Bytes,
    pub etag: HeaderValue,
    /// Where the same bytes start in the representation's [`MemFile`], if it has one.
    pub offset: u64,
}

/// The three bodies of a large representation in an anonymous in-memory file (memfd), so the
/// fast path can hand them to the kernel with sendfile(2) instead of copying them into every
/// socket: the page-cache pages are shared by all the responses in flight, as nginx does with a
/// static file. Written once at render time and never modified.
#[derive(Debug)]
pub struct MemFile(std::os::fd::OwnedFd);

/// Representations at least this large get a [`MemFile`]; below it a copy costs less than the
/// extra system call.
pub const MEMFILE_MIN_BYTES: usize = 16 * 1024;

impl MemFile {
    #[cfg(target_os = "linux")]
    fn create(parts: &[&[u8]]) -> Option<MemFile> {
        use std::os::fd::FromRawFd;
        // SAFETY: a valid NUL-terminated name; the returned descriptor is owned from here on.
        let fd = unsafe { libc::memfd_create(c"bantin-feed".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let mut file = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        for p in parts {
            file.write_all(p).ok()?;
        }
        Some(MemFile(file.into()))
    }

    #[cfg(not(target_os = "linux"))]
    fn create(_: &[&[u8]]) -> Option<MemFile> {
        None
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.0.as_fd()
    }
}

/// Everything needed to answer a GET, a HEAD or a conditional request for one feed page.
#[derive(Debug)]
pub struct Representation {
    pub content_type: HeaderValue,
    pub identity: Body,
    pub gzip: Body,
    pub br: Body,
    /// The strong validator without quotes or encoding suffix.
    pub hash: String,
    pub last_modified: Option<DateTime<Utc>>,
    pub last_modified_header: Option<HeaderValue>,
    /// `Link: <hub>; rel="hub", <self>; rel="self"` (WebSub discovery).
    pub link_header: HeaderValue,
    /// The bodies again, for sendfile(2); only for large representations, and only where the
    /// platform has memfd.
    pub file: Option<std::sync::Arc<MemFile>>,
}

impl Representation {
    /// Builds the representation of `body` (already rendered) for a feed page.
    pub fn new(
        body: Vec<u8>,
        content_type: &'static str,
        last_modified: Option<DateTime<Utc>>,
        link_header: String,
    ) -> Self {
        let hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&body));
        // A large feed's two compressions run side by side: a miss waits for the slower one, not
        // for both.
        let (gzip, br) = if body.len() >= PARALLEL_MIN_BYTES {
            std::thread::scope(|s| {
                let gz = s.spawn(|| gzip(&body));
                let br = brotli(&body);
                (gz.join().expect("the gzip thread does not panic"), br)
            })
        } else {
            (gzip(&body), brotli(&body))
        };
        let file = if body.len() >= MEMFILE_MIN_BYTES {
            MemFile::create(&[&body, &gzip, &br]).map(std::sync::Arc::new)
        } else {
            None
        };
        let (gzip_at, br_at) = (body.len() as u64, (body.len() + gzip.len()) as u64);
        let etag = |suffix: &str| {
            HeaderValue::from_str(&format!("\"{hash}{suffix}\"")).expect("hex is a valid header")
        };
        Representation {
            content_type: HeaderValue::from_static(content_type),
            identity: Body {
                bytes: Bytes::from(body),
                etag: etag(""),
                offset: 0,
            },
            gzip: Body {
                bytes: Bytes::from(gzip),
                etag: etag("-gz"),
                offset: gzip_at,
            },
            br: Body {
                bytes: Bytes::from(br),
                etag: etag("-br"),
                offset: br_at,
            },
            last_modified,
            last_modified_header: last_modified
                .map(|t| HeaderValue::from_str(&http_date(t)).expect("a date is a valid header")),
            link_header: HeaderValue::from_str(&link_header)
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            hash,
            file,
        }
    }

    /// A deep copy: new buffers for the bodies and header values, so the copy shares no reference
    /// count with the original (a thread can then serve it without touching other cores' memory).
    pub fn thread_copy(&self) -> Representation {
        let header = |v: &HeaderValue| {
            HeaderValue::from_bytes(v.as_bytes()).expect("copied from a valid header")
        };
        let body = |b: &Body| Body {
            bytes: Bytes::copy_from_slice(&b.bytes),
            etag: header(&b.etag),
            offset: b.offset,
        };
        Representation {
            content_type: self.content_type.clone(),
            identity: body(&self.identity),
            gzip: body(&self.gzip),
            br: body(&self.br),
            hash: self.hash.clone(),
            last_modified: self.last_modified,
            last_modified_header: self.last_modified_header.as_ref().map(header),
            link_header: header(&self.link_header),
            file: self.file.clone(),
        }
    }

    /// Bytes held, for the cache's weigher.
    pub fn weight(&self) -> usize {
        self.identity.bytes.len() + self.gzip.bytes.len() + self.br.bytes.len() + 512
    }
}

/// Renders a feed page in `format` and compresses it.
pub fn render_page(page: &FeedPage, format: Format, config: &Config) -> Representation {
    let body = match format {
        Format::Rss => crate::feed::rss::render(page, config),
        Format::Atom => crate::feed::atom::render(page, config),
        Format::Json => crate::feed::json::render(page, config),
    };
    Representation::new(
        body,
        format.content_type(),
        page.updated(),
        link_header(config, &page.key.url(config, format, page.page)),
    )
}

/// The WebSub discovery `Link` header value for a topic URL.
pub fn link_header(config: &Config, self_url: &str) -> String {
    let mut parts: Vec<String> = config
        .hubs
        .iter()
        .map(|h| format!("<{h}>; rel=\"hub\""))
        .collect();
    parts.push(format!("<{self_url}>; rel=\"self\""));
    parts.join(", ")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_at(data, GZIP_LEVEL)
}

pub fn brotli(data: &[u8]) -> Vec<u8> {
    brotli_at(data, BROTLI_QUALITY)
}

/// gzip at a given level (the bench compares levels with this).
pub fn gzip_at(data: &[u8], level: u32) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::new(level),
    );
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}

/// brotli at a given quality (the bench compares qualities with this).
pub fn brotli_at(data: &[u8], quality: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 5);
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 32 * 1024, quality, BROTLI_WINDOW);
        w.write_all(data).expect("writing to a Vec cannot fail");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn compressed_forms_decode_to_the_identity_body() {
        let body = "<rss>Giá lúa tăng nhẹ đầu vụ</rss>"
            .repeat(500)
            .into_bytes();
        let r = Representation::new(
            body.clone(),
            "application/rss+xml; charset=utf-8",
            None,
            "<x>; rel=\"self\"".into(),
        );
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&r.gzip.bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        let mut out = Vec::new();
        brotli::Decompressor::new(&r.br.bytes[..], 4096)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        assert!(r.gzip.bytes.len() < body.len() / 10);
    }

    #[test]
    fn etags_are_strong_per_encoding_and_follow_the_body() {
        let a = Representation::new(b"one".to_vec(), "text/plain", None, String::new());
        let b = Representation::new(b"one".to_vec(), "text/plain", None, String::new());
        let c = Representation::new(b"two".to_vec(), "text/plain", None, String::new());
        assert_eq!(a.identity.etag, b.identity.etag);
        assert_ne!(a.identity.etag, c.identity.etag);
        let tags = [&a.identity.etag, &a.gzip.etag, &a.br.etag];
        assert!(tags.iter().all(|t| t.to_str().unwrap().starts_with('"') && t.to_str().unwrap().ends_with('"')));
        assert_ne!(a.identity.etag, a.gzip.etag);
        assert_ne!(a.gzip.etag, a.br.etag);
    }
}
