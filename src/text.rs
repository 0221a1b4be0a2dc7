//! Text hygiene shared by ingest and rendering: Unicode NFC, the XML 1.0 character set, and
//! ASCII slugs.
//!
//! Vietnamese arrives both composed and decomposed (macOS and some IMEs produce NFD), and the
//! same title must compare, slug and render identically either way, so text is normalised to NFC
//! at ingest. Neither the feed crates nor quick-xml nor ammonia remove characters that XML 1.0
//! forbids (U+000B, U+FFFE, ...); one of them in a title makes libxml2 and expat reject the whole
//! feed, so they are removed here, before anything is stored.

use unicode_normalization::UnicodeNormalization;

/// Whether `c` is allowed by the XML 1.0 `Char` production.
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Removes every character XML 1.0 forbids.
pub fn xml_safe(s: &str) -> String {
    s.chars().filter(|&c| is_xml_char(c)).collect()
}

/// NFC and XML-safe: the form every stored text field takes.
pub fn clean(s: &str) -> String {
    s.nfc().filter(|&c| is_xml_char(c)).collect()
}

/// Plain single-line text (titles, names): `clean`, with runs of whitespace (including newlines
/// and tabs) collapsed to one space and trimmed.
pub fn clean_line(s: &str) -> String {
    clean(s).split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes text for XML or HTML element content and quoted attribute values.
pub fn escape_xml(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// An ASCII URL slug: Vietnamese diacritics folded (`Đường` → `duong`), anything else that is not
/// a letter or digit becomes a single `-`.
pub fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_dash = false;
    for c in s.nfd() {
        let c = match c {
            'đ' | 'Đ' => 'd',
            c if unicode_normalization::char::is_combining_mark(c) => continue,
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c.to_ascii_lowercase());
        } else {
            pending_dash = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_folds_vietnamese() {
        assert_eq!(slug("Đường"), "duong");
        assert_eq!(slug("Quốc phòng"), "quoc-phong");
        assert_eq!(slug("Quốc phòng - An ninh"), "quoc-phong-an-ninh");
        assert_eq!(slug("  Giá lúa  "), "gia-lua");
        assert_eq!(slug("Nguyễn Thị Ánh Tuyết"), "nguyen-thi-anh-tuyet");
        assert_eq!(slug("ĐẶNG"), "dang");
        assert_eq!(slug("Tết 2026!"), "tet-2026");
    }

    #[test]
    fn slug_is_the_same_for_nfc_and_nfd() {
        let nfc = "Thủ tướng";
        let nfd: String = nfc.nfd().collect();
        assert_ne!(nfc, nfd);
        assert_eq!(slug(nfc), slug(&nfd));
    }

    #[test]
    fn slug_drops_non_latin_letters() {
        assert_eq!(slug("日本 news"), "news");
        assert_eq!(slug("---"), "");
    }

    #[test]
    fn xml_filter_removes_exactly_the_forbidden_characters() {
        assert_eq!(
            xml_safe("a\u{0}b\u{1}c\u{B}d\u{C}e\u{1F}f\u{FFFE}g\u{FFFF}h"),
            "abcdefgh"
        );
        assert_eq!(xml_safe("tab\tnl\ncr\r"), "tab\tnl\ncr\r");
        assert_eq!(xml_safe("ok ắ 😀 \u{E000}"), "ok ắ 😀 \u{E000}");
        for c in [
            '\u{9}',
            '\u{A}',
            '\u{D}',
            '\u{20}',
            '\u{D7FF}',
            '\u{E000}',
            '\u{FFFD}',
            '\u{10000}',
            '\u{10FFFF}',
        ] {
            assert!(is_xml_char(c), "{c:?}");
        }
        for c in [
            '\u{0}', '\u{8}', '\u{B}', '\u{C}', '\u{E}', '\u{1F}', '\u{FFFE}', '\u{FFFF}',
        ] {
            assert!(!is_xml_char(c), "{c:?}");
        }
    }

    #[test]
    fn clean_composes_decomposed_vietnamese() {
        let nfd: String = "Việt Nam".nfd().collect();
        assert_eq!(clean(&nfd), "Việt Nam");
        assert_eq!(clean_line(" a \n\t b\u{B} "), "a b");
    }
}
