//! Conditional requests and content negotiation as pure functions (RFC 9110 §12.5.3, §13).
//!
//! Kept free of any HTTP framework type so the rules can be read against the RFC and tested
//! table by table: `If-None-Match` takes precedence over `If-Modified-Since`, uses the weak
//! comparison, accepts lists and `*`; an unparseable date is ignored; `Accept-Encoding` q-values
//! pick brotli or gzip, and identity is the fallback when nothing else is acceptable.

use chrono::{DateTime, Utc};

use crate::clock::parse_http_date;

pub use crate::render::Coding;

/// Chooses a coding for an `Accept-Encoding` header value. Among brotli and gzip the higher q
/// wins, brotli on a tie (it is smaller); `*` stands for any coding not named; `q=0` excludes.
/// With no header, or when neither is acceptable, identity.
pub fn negotiate(accept_encoding: Option<&str>) -> Coding {
    let Some(header) = accept_encoding else {
        return Coding::Identity;
    };
    let (mut br, mut gzip, mut star): (Option<f32>, Option<f32>, Option<f32>) = (None, None, None);
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1.0f32;
        for p in parts {
            if let Some((k, v)) = p.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = v
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| (0.0..=1.0).contains(q))
                    .unwrap_or(0.0);
            }
        }
        match name.as_str() {
            "br" => br = Some(q),
            "gzip" | "x-gzip" => gzip = Some(q),
            "*" => star = Some(q),
            _ => {}
        }
    }
    let br = br.or(star).unwrap_or(0.0);
    let gzip = gzip.or(star).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Coding::Br
    } else if gzip > 0.0 {
        Coding::Gzip
    } else {
        Coding::Identity
    }
}

/// Splits an `If-None-Match` value into entity-tags, honouring quotes (an etagc may be a comma).
fn entity_tags(header: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let bytes = header.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i] == b',' || bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        let start = i;
        if header[i..].starts_with("W/") {
            i += 2;
        }
        if i < bytes.len() && bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += 1;
            }
            i = (i + 1).min(bytes.len());
        } else {
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
        }
        if i > start {
            tags.push(header[start..i].trim());
        }
    }
    tags
}

/// Weak comparison (RFC 9110 §8.8.3.2): equal opaque tags, ignoring `W/` on either side.
fn weak_eq(a: &str, b: &str) -> bool {
    a.trim_start_matches("W/") == b.trim_start_matches("W/")
}

/// Whether an `If-None-Match` value matches `etag` (the selected representation's, quoted).
pub fn none_match_hits(if_none_match: &str, etag: &str) -> bool {
    if if_none_match.trim() == "*" {
        return true;
    }
    entity_tags(if_none_match)
        .into_iter()
        .any(|t| weak_eq(t, etag))
}

/// Whether a GET or HEAD should be answered `304 Not Modified` (RFC 9110 §13.2.2): by
/// `If-None-Match` when present; otherwise by `If-Modified-Since` against `last_modified`.
///
/// `alt_etag` is the ETag of the same content in the same coding at the other compression level
/// (see `render::Level`): a poller that stored the fast body before the best one replaced it, or
/// the best one from a replica that recompressed sooner, holds a body that decodes to exactly the
/// current content, so it is told its copy is current rather than sent the same feed again.
pub fn not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: &str,
    alt_etag: Option<&str>,
    last_modified: Option<DateTime<Utc>>,
) -> bool {
    if let Some(inm) = if_none_match {
        return none_match_hits(inm, etag) || alt_etag.is_some_and(|a| none_match_hits(inm, a));
    }
    match (if_modified_since.and_then(parse_http_date), last_modified) {
        (Some(since), Some(lm)) => lm <= since,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_table() {
        use Coding::*;
        let cases: &[(Option<&str>, Coding)] = &[
            (None, Identity),
            (Some(""), Identity),
            (Some("gzip"), Gzip),
            (Some("GZIP"), Gzip),
            (Some("x-gzip"), Gzip),
            (Some("br"), Br),
            (Some("gzip, deflate, br"), Br),
            (Some("gzip, deflate, br, zstd"), Br),
            (Some("br;q=0.5, gzip;q=0.8"), Gzip),
            (Some("br;q=0.8, gzip;q=0.8"), Br),
            (Some("gzip;q=0, br;q=0"), Identity),
            (Some("br;q=0, gzip"), Gzip),
            (Some("*"), Br),
            (Some("*;q=0.5, br;q=0"), Gzip),
            (Some("identity"), Identity),
            (Some("deflate"), Identity),
            (Some("gzip;q=bogus"), Identity),
            (Some("gzip;q=2"), Identity),
            (Some(" gzip ; q=0.3 "), Gzip),
            (Some("identity;q=0, *;q=0"), Identity),
        ];
        for (header, want) in cases {
            assert_eq!(negotiate(*header), *want, "{header:?}");
        }
    }

    const E: &str = "\"abc\"";

    #[test]
    fn if_none_match_table() {
        let cases: &[(&str, bool)] = &[
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"xyz\"", false),
            ("\"xyz\", \"abc\"", true),
            ("\"xyz\",\"abc\"", true),
            ("\"x,y\", \"abc\"", true),
            ("\"x,y\"", false),
            ("*", true),
            (" * ", true),
            ("abc", false),
            ("\"abc", false),
            ("", false),
            ("\"ABC\"", false),
        ];
        for (header, want) in cases {
            assert_eq!(none_match_hits(header, E), *want, "{header:?}");
        }
        assert!(
            none_match_hits("\"abc\"", "W/\"abc\""),
            "weak comparison both ways"
        );
    }

    #[test]
    fn preconditions_table() {
        let lm = DateTime::parse_from_rfc3339("2026-11-20T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = "Fri, 20 Nov 2026 10:00:00 GMT";
        let later = "Fri, 20 Nov 2026 10:00:01 GMT";
        let earlier = "Fri, 20 Nov 2026 09:59:59 GMT";
        let cases: &[(Option<&str>, Option<&str>, bool, &str)] = &[
            (None, None, false, "unconditional"),
            (Some(E), None, true, "matching etag"),
            (Some("\"old\""), None, false, "changed etag"),
            (None, Some(at), true, "not modified since its own date"),
            (None, Some(later), true, "not modified since a later date"),
            (None, Some(earlier), false, "modified since"),
            (None, Some("not a date"), false, "bad date is ignored"),
            (
                Some("\"old\""),
                Some(later),
                false,
                "If-None-Match takes precedence over a passing date",
            ),
            (
                Some(E),
                Some(earlier),
                true,
                "If-None-Match takes precedence over a failing date",
            ),
        ];
        for (inm, ims, want, why) in cases {
            assert_eq!(not_modified(*inm, *ims, E, None, Some(lm)), *want, "{why}");
        }
        assert!(
            !not_modified(None, Some(at), E, None, None),
            "no Last-Modified, no date match"
        );
        // The other compression level's ETag of the same content matches too, and only it.
        let alt = Some("\"abc-fast\"");
        assert!(not_modified(Some("\"abc-fast\""), None, E, alt, Some(lm)));
        assert!(not_modified(Some("\"abc\""), None, E, alt, Some(lm)));
        assert!(!not_modified(Some("\"other\""), None, E, alt, Some(lm)));
    }
}
