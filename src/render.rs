//! A rendered representation of one feed page: the identity bytes, their gzip and brotli forms,
//! and the validators, all made once per render so that serving a poll costs a memory copy.
//!
//! Compression levels are chosen for the miss budget (a 50-item feed with ~8 KB of HTML per item
//! queried, rendered and compressed in about 5 ms: 5.1 ms RSS, 6.2 ms Atom, 5.0 ms JSON as last
//! measured, see the README): on such a feed (450 KB of prose), gzip level 2
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
/// brotli's best quality, for the background recompression.
pub const BROTLI_BEST: u32 = 11;
const BROTLI_WINDOW: u32 = 22;

/// The content codings bantin precomputes for every representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Br,
}

/// One body in one content coding, with its ETag ready to send.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Bytes,
    pub etag: HeaderValue,
    /// The ETag of the same content in this coding at the other compression level, which a
    /// poller may hold from before the recompression (or from another replica): it is answered
    /// 304 too.
    pub alt_etag: Option<HeaderValue>,
    /// Where the same bytes start in the representation's [`MemFile`], if it has one.
    pub offset: u64,
}

/// The three bodies of a large representation in an anonymous in-memory file (a memfd, or with
/// [`set_body_dir`] an unlinked file in that directory), so the
/// fast path can hand them to the kernel with sendfile(2) instead of copying them into every
/// socket: the pages are shared by all the responses in flight, as nginx does with a static file.
/// The same pages are mapped read-only for everything that needs the bytes in user space (the
/// hyper path, tests), so the bodies exist once: no heap copy beside the file. Written once at
/// render time and never modified; the mapping and the descriptor go together when the last
/// holder (the cache, a worker, a response being sent) lets go.
#[derive(Debug)]
pub struct MemFile {
    fd: std::os::fd::OwnedFd,
    map: *const u8,
    len: usize,
}

// SAFETY: the mapping is read-only and never changes after creation; the pointer is only read.
unsafe impl Send for MemFile {}
// SAFETY: as above: shared reads of immutable memory.
unsafe impl Sync for MemFile {}

/// Representations weighing at least this much get a [`MemFile`]; below it a copy costs less than
/// the extra system call. It also bounds how many descriptors the cache can hold
/// (`max_bytes / MEMFILE_MIN_BYTES`), which the connection cap leaves free.
pub const MEMFILE_MIN_BYTES: usize = 64 * 1024;

const PAGE: usize = 4096;

/// Memfds alive, and how many may be (set at start from the open-file budget; see
/// `http::fd_budget`). Beyond it, bodies stay on the heap and are written from there.
static MEMFILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static MEMFILE_LIMIT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(4096);

/// Where bodies live instead of memfds, when set (`BANTIN_BODY_DIR`): unlinked files
/// (`O_TMPFILE`) in this directory. Process-wide, like the memfd limit, and set once at start.
static BODY_DIR: std::sync::OnceLock<std::ffi::CString> = std::sync::OnceLock::new();

/// Puts the bodies of large representations in unlinked files of `dir` from now on, instead
/// of memfds. Why: `sendfile` from shmem (a memfd) walks the body page by page, 4 KiB folios
/// with a lookup and a reference each, while a filesystem with large folios in the page cache
/// (ext4 and XFS on recent kernels) hands the socket a few large ones: on Linux 6.18 that
/// is 0.8-1.3 µs less CPU per gzip hit of a 45 KB body (README "CPU per poll"). The price: the
/// filesystem writes the pages back (a few hundred KB per render) and may evict clean ones
/// under memory pressure, to be read again at the next send. Checked here by making one such
/// file, so a directory that cannot hold them (missing, read-only, no `O_TMPFILE`) stops the
/// start instead of leaving every body on the heap. A later call keeps the first directory.
pub fn set_body_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in the path"))?;
    let fd = open_body_file(Some(&c));
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
    let _ = BODY_DIR.set(c);
    Ok(())
}

/// A new, empty, unnamed file for bodies: in `dir` (`O_TMPFILE`, never linked into it, so
/// nothing is left there when the process dies) or, without one, a memfd. A descriptor or -1.
#[cfg(target_os = "linux")]
fn open_body_file(dir: Option<&std::ffi::CStr>) -> libc::c_int {
    match dir {
        // SAFETY: a valid NUL-terminated path; the caller owns the returned descriptor.
        Some(d) => unsafe {
            libc::open(
                d.as_ptr(),
                libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
                0o600 as libc::c_uint,
            )
        },
        // SAFETY: a valid NUL-terminated name; the caller owns the returned descriptor.
        None => unsafe { libc::memfd_create(c"bantin-feed".as_ptr(), libc::MFD_CLOEXEC) },
    }
}

#[cfg(not(target_os = "linux"))]
fn open_body_file(_: Option<&std::ffi::CStr>) -> i32 {
    -1
}

/// Sets the most memfds cached feeds may hold at once.
pub fn set_memfile_limit(n: usize) {
    MEMFILE_LIMIT.store(n, std::sync::atomic::Ordering::Relaxed);
}

/// Memfds alive now.
pub fn memfiles() -> usize {
    MEMFILES.load(std::sync::atomic::Ordering::Relaxed)
}

impl MemFile {
    #[cfg(target_os = "linux")]
    fn create(parts: &[&[u8]]) -> Option<MemFile> {
        Self::create_in(BODY_DIR.get().map(|c| c.as_c_str()), parts)
    }

    /// [`MemFile::create`] in `dir` (see [`open_body_file`]).
    #[cfg(target_os = "linux")]
    fn create_in(dir: Option<&std::ffi::CStr>, parts: &[&[u8]]) -> Option<MemFile> {
        use std::os::fd::{AsRawFd, FromRawFd};
        use std::sync::atomic::Ordering;
        let count = MEMFILES.fetch_add(1, Ordering::Relaxed);
        // Counted from here; `Slot` gives the count back unless a MemFile takes it over.
        struct Slot(bool);
        impl Drop for Slot {
            fn drop(&mut self) {
                if !self.0 {
                    MEMFILES.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
        let mut slot = Slot(false);
        if count >= MEMFILE_LIMIT.load(Ordering::Relaxed) {
            return None;
        }
        let fd = open_body_file(dir);
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let mut file = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        for p in parts {
            file.write_all(p).ok()?;
        }
        let len: usize = parts.iter().map(|p| p.len()).sum();
        // SAFETY: mapping `len` bytes of a file that holds exactly that many, read-only.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len.max(1),
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return None;
        }
        slot.0 = true;
        Some(MemFile {
            fd: file.into(),
            map: map as *const u8,
            len,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn create(_: &[&[u8]]) -> Option<MemFile> {
        None
    }

    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }
}

impl AsRef<[u8]> for MemFile {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `map` points to `len` readable bytes for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.map, self.len) }
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `create` mapped, once.
        unsafe {
            libc::munmap(self.map as *mut libc::c_void, self.len.max(1));
        }
        MEMFILES.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The bytes of a [`MemFile`], shared by every [`Bytes`] slice of it.
struct MappedBodies(std::sync::Arc<MemFile>);

impl AsRef<[u8]> for MappedBodies {
    fn as_ref(&self) -> &[u8] {
        self.0.as_ref().as_ref()
    }
}

/// How hard the compressed bodies were squeezed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// At render time, fast enough for a miss (gzip 2, brotli 1).
    Fast,
    /// In the background, at the best ratio (libdeflate 12, brotli 11).
    Best,
}

impl Level {
    /// The ETag suffixes of the gzip and brotli bodies. The best bodies, which live longest and
    /// are sent most, get the short ones.
    fn suffixes(self) -> (&'static str, &'static str) {
        match self {
            Level::Fast => ("-gz1", "-br1"),
            Level::Best => ("-gz", "-br"),
        }
    }

    fn other(self) -> Level {
        match self {
            Level::Fast => Level::Best,
            Level::Best => Level::Fast,
        }
    }
}

/// What a representation says about itself besides its bodies.
#[derive(Debug, Clone)]
pub struct Meta {
    pub content_type: &'static str,
    pub last_modified: Option<DateTime<Utc>>,
    /// `Link: <hub>; rel="hub", <self>; rel="self"` (WebSub discovery).
    pub link: String,
    /// Keys a CDN can purge this response by (its feed and its language), space-separated.
    pub surrogate_keys: String,
}

/// Everything needed to answer a GET, a HEAD or a conditional request for one feed page.
#[derive(Debug)]
pub struct Representation {
    pub content_type: HeaderValue,
    pub identity: Body,
    pub gzip: Body,
    pub br: Body,
    pub level: Level,
    /// The strong validator without quotes or encoding suffix.
    pub hash: String,
    pub last_modified: Option<DateTime<Utc>>,
    pub last_modified_header: Option<HeaderValue>,
    /// `Link: <hub>; rel="hub", <self>; rel="self"` (WebSub discovery).
    pub link_header: HeaderValue,
    /// `Surrogate-Key` (space-separated) and `Cache-Tag` (comma-separated): the same keys, in the
    /// two forms CDNs read.
    pub surrogate_key: Option<HeaderValue>,
    pub cache_tag: Option<HeaderValue>,
    /// The file the three bodies live in, for sendfile(2); only for large representations, and
    /// only where the platform has memfd. Small ones share one heap buffer.
    pub file: Option<std::sync::Arc<MemFile>>,
    meta: Meta,
}

impl Representation {
    /// Builds the representation of `body` (already rendered) for a feed page, compressed fast.
    pub fn new(
        body: Vec<u8>,
        content_type: &'static str,
        last_modified: Option<DateTime<Utc>>,
        link_header: String,
    ) -> Self {
        Self::rendered(
            body,
            Meta {
                content_type,
                last_modified,
                link: link_header,
                surrogate_keys: String::new(),
            },
        )
    }

    /// Builds the representation of a rendered body, compressed at the fast levels.
    pub fn rendered(body: Vec<u8>, meta: Meta) -> Self {
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
        Self::assemble(body, gzip, br, Level::Fast, meta)
    }

    /// The same representation with its gzip and brotli bodies recompressed at the best ratio:
    /// the identity body and so the content, the hash and the identity ETag are unchanged.
    /// Deterministic, so every replica that recompresses the same feed serves the same bytes.
    pub fn best(&self) -> Representation {
        Self::best_from(self.identity.bytes.to_vec(), self.meta.clone())
    }

    /// [`Representation::best`] from a copy of the identity body and the metadata, so the caller
    /// need not hold the original (and its memory) while compressing.
    pub fn best_from(body: Vec<u8>, meta: Meta) -> Representation {
        let gzip = gzip_best(&body);
        let br = brotli_at(&body, BROTLI_BEST);
        Self::assemble(body, gzip, br, Level::Best, meta)
    }

    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    fn assemble(body: Vec<u8>, gzip: Vec<u8>, br: Vec<u8>, level: Level, meta: Meta) -> Self {
        // A 64-bit hash: ample for telling two versions of one feed apart, and short, since it
        // goes into every 304.
        let hash = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&body));
        // The compressed bodies first: nearly every poll asks for one, and at the file's start
        // the gzip body begins on a folio boundary, so `sendfile` touches the fewest folios.
        let (br_at, identity_at) = (gzip.len(), gzip.len() + br.len());
        let total = identity_at + body.len();
        let file = if total >= MEMFILE_MIN_BYTES {
            MemFile::create(&[&gzip, &br, &body]).map(std::sync::Arc::new)
        } else {
            None
        };
        // One buffer for the three bodies: the memfd's mapping, or one heap allocation.
        let all = match &file {
            Some(f) => Bytes::from_owner(MappedBodies(f.clone())),
            None => {
                let mut v = Vec::with_capacity(total);
                v.extend_from_slice(&gzip);
                v.extend_from_slice(&br);
                v.extend_from_slice(&body);
                Bytes::from(v)
            }
        };
        let etag = |suffix: &str| {
            HeaderValue::from_str(&format!("\"{hash}{suffix}\"")).expect("hex is a valid header")
        };
        let (gz, brs) = level.suffixes();
        let (alt_gz, alt_br) = level.other().suffixes();
        let header = |v: &str| HeaderValue::from_str(v).ok().filter(|_| !v.is_empty());
        Representation {
            content_type: HeaderValue::from_static(meta.content_type),
            identity: Body {
                bytes: all.slice(identity_at..total),
                etag: etag(""),
                alt_etag: None,
                offset: identity_at as u64,
            },
            gzip: Body {
                bytes: all.slice(..br_at),
                etag: etag(gz),
                alt_etag: Some(etag(alt_gz)),
                offset: 0,
            },
            br: Body {
                bytes: all.slice(br_at..identity_at),
                etag: etag(brs),
                alt_etag: Some(etag(alt_br)),
                offset: br_at as u64,
            },
            level,
            last_modified: meta.last_modified,
            last_modified_header: meta
                .last_modified
                .map(|t| HeaderValue::from_str(&http_date(t)).expect("a date is a valid header")),
            link_header: HeaderValue::from_str(&meta.link)
                .unwrap_or_else(|_| HeaderValue::from_static("")),
            surrogate_key: header(&meta.surrogate_keys),
            cache_tag: header(&crate::model::cache_tag(&meta.surrogate_keys)),
            hash,
            file,
            meta,
        }
    }

    /// The body in a content coding.
    pub fn body(&self, coding: Coding) -> &Body {
        match coding {
            Coding::Identity => &self.identity,
            Coding::Gzip => &self.gzip,
            Coding::Br => &self.br,
        }
    }

    /// Bytes held, for the cache's budget: the three bodies (whole pages when they live in a
    /// memfd) and the headers and bookkeeping around them.
    pub fn weight(&self) -> usize {
        let bodies = self.identity.bytes.len() + self.gzip.bytes.len() + self.br.bytes.len();
        let bodies = if self.file.is_some() {
            bodies.div_ceil(PAGE) * PAGE
        } else {
            bodies
        };
        bodies + self.link_header.len() + 2 * self.meta.surrogate_keys.len() + 512
    }
}

/// Renders a feed page in `format` and compresses it.
pub fn render_page(page: &FeedPage, format: Format, config: &Config) -> Representation {
    let body = match format {
        Format::Rss => crate::feed::rss::render(page, config),
        Format::Atom => crate::feed::atom::render(page, config),
        Format::Json => crate::feed::json::render(page, config),
    };
    Representation::rendered(
        body,
        Meta {
            content_type: format.content_type(),
            last_modified: page.updated(),
            link: link_header(config, &page.key.url(config, format, page.page)),
            surrogate_keys: page.key.surrogate_keys(),
        },
    )
}

/// The WebSub discovery `Link` header value for a topic URL.
pub fn link_header(config: &Config, self_url: &str) -> String {
    let mut parts: Vec<String> = config
        .advertised_hubs()
        .iter()
        .map(|h| format!("<{h}>; rel=\"hub\""))
        .collect();
    parts.push(format!("<{self_url}>; rel=\"self\""));
    parts.join(", ")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_at(data, GZIP_LEVEL)
}

/// gzip at the best ratio worth its time: libdeflate level 12 (about 4% smaller than `gzip -9`,
/// in a fifth of zopfli's time for nearly zopfli's size).
pub fn gzip_best(data: &[u8]) -> Vec<u8> {
    let level = libdeflater::CompressionLvl::new(12).expect("12 is libdeflate's best level");
    let mut c = libdeflater::Compressor::new(level);
    let mut out = vec![0; c.gzip_compress_bound(data.len())];
    let n = c
        .gzip_compress(data, &mut out)
        .expect("the bound is large enough");
    out.truncate(n);
    out
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

    #[cfg(target_os = "linux")]
    #[test]
    fn bodies_in_a_directory_are_unlinked_files_holding_the_same_bytes() {
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let c = std::ffi::CString::new(dir.path().as_os_str().as_bytes()).unwrap();
        let big = vec![7u8; 70_000];
        let f = MemFile::create_in(Some(&c), &[b"<rss/>", &big]).expect("a body file");
        assert_eq!(f.as_ref().len(), 6 + big.len());
        assert_eq!(&f.as_ref()[..6], b"<rss/>");
        assert!(f.as_ref()[6..].iter().all(|b| *b == 7));
        // A regular file of the directory's filesystem, never linked: nothing to clean up.
        // SAFETY: an all-zero `stat` is a valid value to be overwritten by fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a valid descriptor and a valid out pointer.
        assert_eq!(unsafe { libc::fstat(f.fd().as_raw_fd(), &mut st) }, 0);
        assert_eq!(st.st_mode & libc::S_IFMT, libc::S_IFREG);
        assert_eq!(st.st_nlink, 0);
        assert_eq!(st.st_size as usize, 6 + big.len());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_directory_that_cannot_hold_bodies_is_refused() {
        let e = set_body_dir(std::path::Path::new("/nonexistent/bantin-bodies")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(BODY_DIR.get().is_none(), "a refused directory is not used");
    }

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
    fn best_bodies_decode_to_the_identity_body_and_are_smaller() {
        let body = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .unwrap()
            .repeat(8)
            .into_bytes();
        let fast = Representation::new(body.clone(), "text/plain", None, String::new());
        let best = fast.best();
        assert_eq!((fast.level, best.level), (Level::Fast, Level::Best));
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&best.gzip.bytes[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        let mut out = Vec::new();
        brotli::Decompressor::new(&best.br.bytes[..], 4096)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        assert!(best.gzip.bytes.len() < fast.gzip.bytes.len());
        assert!(best.br.bytes.len() < fast.br.bytes.len());
        // Same content: same identity ETag; each coding's ETags differ by level and name each other.
        assert_eq!(best.identity.etag, fast.identity.etag);
        assert_ne!(best.gzip.etag, fast.gzip.etag);
        assert_eq!(best.gzip.alt_etag.as_ref(), Some(&fast.gzip.etag));
        assert_eq!(fast.br.alt_etag.as_ref(), Some(&best.br.etag));
        // Deterministic: the same bytes every time (replicas agree).
        let again = fast.best();
        assert_eq!(again.gzip.bytes, best.gzip.bytes);
        assert_eq!(again.br.bytes, best.br.bytes);
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
