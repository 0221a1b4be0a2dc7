//! Bytes of an upstream document to UTF-8 text, choosing the encoding as feedparser does:
//! the byte order mark (or the first bytes of `<?xml` in UTF-16/32), then the HTTP `charset`,
//! then the XML declaration, by the rules of RFC 3023 (for `text/xml` without a charset the
//! declaration is not believed), falling back to UTF-8 and then windows-1252 when the declared
//! encoding cannot decode the bytes.
//!
//! Everything downstream (the repairing reader, feed-rs, quick-xml) only ever sees UTF-8: a
//! document in UTF-16 or UTF-32 never reaches quick-xml's own decoding (which panics on some
//! UTF-16 input), and the declaration is rewritten so nothing decodes the text twice. The
//! labels are WHATWG's (`encoding_rs`), so `iso-8859-1` and `us-ascii` read as windows-1252:
//! the bytes 0x80-0x9F become the quotes and dashes their authors typed, not C1 controls.
//! UTF-32, which `encoding_rs` does not implement, is decoded here.

use encoding_rs::Encoding;

/// A document as UTF-8 text, with how it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    /// The encoding the bytes were read in (a WHATWG name, or `UTF-32LE`/`UTF-32BE`).
    pub encoding: &'static str,
    /// The declared encoding could not decode the bytes (or named no known encoding) and
    /// another was used: worth telling the source's operator.
    pub overridden: Option<String>,
}

/// The encoding that the first bytes imply, before any declaration is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sniffed {
    Utf8Bom,
    Utf16Le { bom: bool },
    Utf16Be { bom: bool },
    Utf32Le { bom: bool },
    Utf32Be { bom: bool },
    None,
}

fn sniff(b: &[u8]) -> Sniffed {
    match b {
        [0x00, 0x00, 0xFE, 0xFF, ..] => Sniffed::Utf32Be { bom: true },
        [0xFF, 0xFE, 0x00, 0x00, ..] => Sniffed::Utf32Le { bom: true },
        [0xFE, 0xFF, ..] => Sniffed::Utf16Be { bom: true },
        [0xFF, 0xFE, ..] => Sniffed::Utf16Le { bom: true },
        [0xEF, 0xBB, 0xBF, ..] => Sniffed::Utf8Bom,
        [0x00, 0x3C, 0x00, 0x3F, ..] => Sniffed::Utf16Be { bom: false },
        [0x3C, 0x00, 0x3F, 0x00, ..] => Sniffed::Utf16Le { bom: false },
        [0x00, 0x00, 0x00, 0x3C, ..] => Sniffed::Utf32Be { bom: false },
        [0x3C, 0x00, 0x00, 0x00, ..] => Sniffed::Utf32Le { bom: false },
        _ => Sniffed::None,
    }
}

/// A candidate encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidate {
    Whatwg(&'static Encoding),
    /// 7-bit only (`text/*` without a charset, RFC 3023): WHATWG folds the label into
    /// windows-1252, so it is checked here.
    Ascii,
    Utf32 {
        big_endian: bool,
    },
}

impl Candidate {
    fn from_label(label: &str) -> Option<Candidate> {
        let l = label.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
        let l = l.replace('_', "-");
        match l.as_str() {
            "us-ascii" | "ascii" | "ansi-x3.4-1968" => Some(Candidate::Ascii),
            "utf-32" | "utf32" | "ucs-4" | "iso-10646-ucs-4" | "csucs4" => {
                Some(Candidate::Utf32 { big_endian: true })
            }
            "utf-32be" => Some(Candidate::Utf32 { big_endian: true }),
            "utf-32le" => Some(Candidate::Utf32 { big_endian: false }),
            "u16" | "utf16" | "ucs-2" | "iso-10646-ucs-2" | "csunicode" => {
                Some(Candidate::Whatwg(encoding_rs::UTF_16BE))
            }
            // Python's names that WHATWG spells differently.
            "cp1258" => Some(Candidate::Whatwg(encoding_rs::WINDOWS_1258)),
            "cp874" | "tis-620" | "tis620" => Some(Candidate::Whatwg(encoding_rs::WINDOWS_874)),
            "euc-kr" | "euckr" | "cp949" => Some(Candidate::Whatwg(encoding_rs::EUC_KR)),
            "shiftjis" | "sjis" => Some(Candidate::Whatwg(encoding_rs::SHIFT_JIS)),
            "eucjp" => Some(Candidate::Whatwg(encoding_rs::EUC_JP)),
            "koi8r" => Some(Candidate::Whatwg(encoding_rs::KOI8_R)),
            // gb18030 is a superset of gb2312, as feedparser reads it.
            "gb2312" | "gbk" => Some(Candidate::Whatwg(encoding_rs::GB18030)),
            other => Encoding::for_label_no_replacement(other.as_bytes()).map(Candidate::Whatwg),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Candidate::Whatwg(e) => e.name(),
            Candidate::Ascii => "US-ASCII",
            Candidate::Utf32 { big_endian: true } => "UTF-32BE",
            Candidate::Utf32 { big_endian: false } => "UTF-32LE",
        }
    }

    /// The text, or `None` when the bytes are not valid in this encoding.
    fn decode(self, bytes: &[u8]) -> Option<String> {
        match self {
            Candidate::Ascii => bytes
                .is_ascii()
                .then(|| String::from_utf8(bytes.to_vec()).expect("ASCII is UTF-8")),
            Candidate::Utf32 { big_endian } => decode_utf32(bytes, big_endian),
            Candidate::Whatwg(e) => e
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|t| t.into_owned()),
        }
    }
}

fn decode_utf32(bytes: &[u8], big_endian: bool) -> Option<String> {
    if bytes.len() % 4 != 0 {
        return None;
    }
    bytes
        .chunks_exact(4)
        .map(|c| {
            let c = [c[0], c[1], c[2], c[3]];
            char::from_u32(if big_endian {
                u32::from_be_bytes(c)
            } else {
                u32::from_le_bytes(c)
            })
        })
        .collect()
}

/// The `charset` parameter and the media type of an HTTP `Content-Type`.
pub fn content_type(header: &str) -> (String, Option<String>) {
    let mut parts = header.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset"))
            .then(|| v.trim().trim_matches(['"', '\'']).to_string())
            .filter(|v| !v.is_empty())
    });
    (mime, charset)
}

/// The `encoding` of an XML declaration at the start of `text` (already ASCII-compatible).
fn declared(text: &[u8]) -> Option<String> {
    let head = &text[..text.len().min(1024)];
    let rest = head.strip_prefix(b"<?xml")?;
    let end = memchr::memmem::find(rest, b"?>")?;
    let decl = std::str::from_utf8(&rest[..end]).ok()?;
    let i = decl.find("encoding")?;
    let after = decl[i + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let after = after.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    let end = value.find(quote)?;
    Some(value[..end].trim().to_string()).filter(|v| !v.is_empty())
}

/// Decodes `body` as served with `content_type` (the HTTP header, if any).
pub fn decode(body: &[u8], content_type_header: Option<&str>) -> Decoded {
    let sniffed = sniff(body);
    let (bom_len, from_bytes) = match sniffed {
        Sniffed::Utf8Bom => (3, Some(Candidate::Whatwg(encoding_rs::UTF_8))),
        Sniffed::Utf16Le { bom } => (
            if bom { 2 } else { 0 },
            Some(Candidate::Whatwg(encoding_rs::UTF_16LE)),
        ),
        Sniffed::Utf16Be { bom } => (
            if bom { 2 } else { 0 },
            Some(Candidate::Whatwg(encoding_rs::UTF_16BE)),
        ),
        Sniffed::Utf32Le { bom } => (
            if bom { 4 } else { 0 },
            Some(Candidate::Utf32 { big_endian: false }),
        ),
        Sniffed::Utf32Be { bom } => (
            if bom { 4 } else { 0 },
            Some(Candidate::Utf32 { big_endian: true }),
        ),
        Sniffed::None => (0, None),
    };
    let data = &body[bom_len..];

    // The declaration, read in the encoding the first bytes imply (ASCII-compatible otherwise).
    let xml_label = match from_bytes {
        Some(c @ (Candidate::Utf32 { .. } | Candidate::Whatwg(_)))
            if c != Candidate::Whatwg(encoding_rs::UTF_8) =>
        {
            let prefix = &data[..data.len().min(1024) / 4 * 4];
            let head = match c {
                Candidate::Utf32 { big_endian } => decode_utf32(prefix, big_endian),
                Candidate::Whatwg(e) => Some(e.decode_without_bom_handling(prefix).0.into_owned()),
                Candidate::Ascii => None,
            };
            head.and_then(|h| declared(h.as_bytes()))
        }
        _ => declared(data),
    };
    let mut xml = xml_label.as_deref().and_then(Candidate::from_label);
    // A document in UTF-16/32 that declares "utf-16" (no byte order) means the one the bytes show.
    if let (Some(b), Some(x)) = (from_bytes, xml) {
        let wide = |c: Candidate| match c {
            Candidate::Utf32 { .. } => true,
            Candidate::Whatwg(e) => e == encoding_rs::UTF_16BE || e == encoding_rs::UTF_16LE,
            Candidate::Ascii => false,
        };
        if wide(b) && wide(x) {
            xml = Some(b);
        }
    }

    let (mime, http_label) = content_type_header.map(content_type).unwrap_or_default();
    let http = http_label.as_deref().and_then(Candidate::from_label);
    let is_xml_app = mime == "application/xml"
        || mime == "application/xml-dtd"
        || mime == "application/xml-external-parsed-entity"
        || (mime.starts_with("application/") && mime.ends_with("+xml"));
    let is_xml_text = mime == "text/xml"
        || mime == "text/xml-external-parsed-entity"
        || (mime.starts_with("text/") && mime.ends_with("+xml"));
    // RFC 3023 as feedparser applies it.
    let rfc3023 = if is_xml_app {
        http.or(xml)
            .unwrap_or(Candidate::Whatwg(encoding_rs::UTF_8))
    } else if is_xml_text || mime.starts_with("text/") {
        http.unwrap_or(Candidate::Ascii)
    } else {
        http.or(xml)
            .unwrap_or(Candidate::Whatwg(encoding_rs::UTF_8))
    };
    let candidates = [
        Some(rfc3023),
        xml,
        from_bytes,
        Some(Candidate::Whatwg(encoding_rs::UTF_8)),
        Some(Candidate::Whatwg(encoding_rs::WINDOWS_1252)),
    ];
    let mut tried: Vec<Candidate> = Vec::new();
    for c in candidates.into_iter().flatten() {
        if tried.contains(&c) {
            continue;
        }
        tried.push(c);
        if let Some(text) = c.decode(data) {
            // Worth a note when what the document or the server declared could not be used.
            let labels: Vec<&String> = http_label.iter().chain(&xml_label).collect();
            let overridden = (!labels.is_empty()
                && labels.iter().all(|l| Candidate::from_label(l) != Some(c)))
            .then(|| {
                let names: Vec<&str> = labels.iter().map(|l| l.as_str()).collect();
                format!("declared as {}, read as {}", names.join(" and "), c.name())
            });
            return Decoded {
                text,
                encoding: c.name(),
                overridden,
            };
        }
    }
    unreachable!("windows-1252 decodes every byte sequence")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(body: &[u8], ct: Option<&str>) -> Decoded {
        decode(body, ct)
    }

    #[test]
    fn bom_and_markers_choose_utf16_and_utf32() {
        let text = "<?xml version=\"1.0\" encoding=\"utf-16\"?><rss>Việt</rss>";
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain(text.encode_utf16().flat_map(|u| u.to_be_bytes()))
            .collect();
        assert_eq!(d(&be, None).text, text);
        let le: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let r = d(&le, Some("application/xml"));
        assert_eq!((r.text.as_str(), r.encoding), (text, "UTF-16LE"));
        let text32 = text.replace("utf-16", "utf-32");
        let be32: Vec<u8> = text32
            .chars()
            .flat_map(|c| (c as u32).to_be_bytes())
            .collect();
        let r = d(&be32, None);
        assert_eq!((r.text.as_str(), r.encoding), (text32.as_str(), "UTF-32BE"));
        let mut le32: Vec<u8> = vec![0xFF, 0xFE, 0, 0];
        le32.extend(text32.chars().flat_map(|c| (c as u32).to_le_bytes()));
        assert_eq!(d(&le32, None).text, text32);
        // A UTF-8 BOM is dropped.
        assert_eq!(d("\u{feff}<rss/>".as_bytes(), None).text, "<rss/>");
    }

    #[test]
    fn http_charset_wins_for_application_types_and_windows_1252_reads_c1_bytes() {
        let body = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><t>don\x92t</t>";
        let r = d(body, Some("application/rss+xml; charset=windows-1252"));
        assert!(r.text.contains("don\u{2019}t"), "{}", r.text);
        assert_eq!(r.overridden, None);
        // iso-8859-1 is read as windows-1252 (WHATWG): no C1 control characters.
        let r = d(
            b"<?xml version='1.0' encoding='iso-8859-1'?><t>\x93x\x94</t>",
            None,
        );
        assert!(r.text.contains("\u{201c}x\u{201d}"), "{}", r.text);
        let koi = encoding_rs::KOI8_R.encode("Привет").0;
        let mut body = b"<t>".to_vec();
        body.extend_from_slice(&koi);
        body.extend_from_slice(b"</t>");
        assert_eq!(
            d(&body, Some("application/xml; charset=koi8-r")).text,
            "<t>Привет</t>"
        );
    }

    #[test]
    fn text_xml_without_charset_is_ascii_then_the_fallbacks() {
        // RFC 3023 ignores the declaration for text/xml; non-ASCII bytes then fall back to the
        // declared encoding, UTF-8, windows-1252 in turn.
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><t>Việt</t>".as_bytes();
        let r = d(body, Some("text/xml"));
        assert_eq!((r.text.contains("Việt"), r.encoding), (true, "UTF-8"));
        let r = d(b"<t>caf\xe9</t>", Some("text/xml"));
        assert_eq!(
            (r.text.as_str(), r.encoding),
            ("<t>caf\u{e9}</t>", "windows-1252")
        );
    }

    #[test]
    fn a_wrong_declaration_falls_back_and_says_so() {
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><t>caf\u{e9}</t>";
        let bytes = encoding_rs::WINDOWS_1252.encode(body).0;
        let r = d(&bytes, None);
        assert_eq!(r.encoding, "windows-1252");
        assert_eq!(
            r.overridden.as_deref(),
            Some("declared as utf-8, read as windows-1252")
        );
        // An unknown label is no candidate: UTF-8 reads it.
        let r = d(
            b"<?xml version=\"1.0\" encoding=\"x-bogus\"?><t/>",
            Some("application/xml"),
        );
        assert_eq!(r.encoding, "UTF-8");
    }

    #[test]
    fn windows_1258_and_gb2312_labels() {
        let bytes = encoding_rs::WINDOWS_1258.encode("Vi\u{ea}\u{323}t").0;
        let mut body = b"<?xml version=\"1.0\" encoding=\"windows-1258\"?><t>".to_vec();
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"</t>");
        assert!(d(&body, None).text.contains("Vi\u{ea}\u{323}t"));
        assert_eq!(
            Candidate::from_label("GB2312"),
            Some(Candidate::Whatwg(encoding_rs::GB18030))
        );
        assert_eq!(
            content_type("text/xml; Charset=\"UTF-8\"; q=1"),
            ("text/xml".into(), Some("UTF-8".into()))
        );
    }
}
