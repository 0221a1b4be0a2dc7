//! A forgiving XML reader: any text becomes a tree of elements, and what had to be repaired is
//! counted, so an ill-formed feed is read as feedparser's loose parser reads it instead of being
//! rejected whole.
//!
//! Real feeds break XML in a handful of ways, each repaired here the way a browser or feedparser
//! would: HTML named entities (`&aacute;`, `&nbsp;`: HTML5's table) and entities declared in the
//! document's internal DTD are resolved; a bare `&` is an ampersand; `&#X41;` and references to
//! windows-1252 code points (`&#146;`) are the characters their authors meant; an unclosed CDATA
//! section ends with its element; a `<` that starts no tag is text; end tags close what they
//! name (and what was left open inside it), stray ones are dropped; whatever is open at the end
//! is closed; an undeclared prefix gets its conventional namespace (`dc:`, `media:`, …).
//! Characters XML cannot carry are dropped, C1 controls become the windows-1252 characters they
//! stand for, and text that is UTF-8 read as Latin-1 and encoded again ("Ã©") is decoded once
//! more, as feedparser does.
//!
//! The tree is deliberately small (names with their namespaces, attributes, text) and bounded:
//! elements nest at most [`MAX_DEPTH`] deep (deeper tags are dropped, their text kept), so
//! nothing downstream recurses without bound. [`super::dialect`] then turns it into the one
//! shape of each format that feed-rs reads.

use std::collections::{BTreeMap, HashMap};

/// Elements nested deeper than this are dropped (their text stays in the enclosing element).
pub const MAX_DEPTH: usize = 128;
/// Entities declared in a document's internal DTD, at most; each value is at most
/// [`MAX_ENTITY_VALUE`] bytes and is not expanded further (no "billion laughs").
const MAX_ENTITIES: usize = 1_000;
const MAX_ENTITY_VALUE: usize = 4_096;
/// Replacement text of declared entities inserted per document, at most; past it a reference
/// stays as the text it is (a small document cannot expand into gigabytes).
const MAX_EXPANSION: usize = 4 << 20;
/// Attributes kept per element.
const MAX_ATTRIBUTES: usize = 64;

pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The namespaces feeds use without declaring them, by their conventional prefix (feedparser
/// knows the same ones).
const CONVENTIONAL: &[(&str, &str)] = &[
    ("admin", "http://webns.net/mvcb/"),
    ("atom", "http://www.w3.org/2005/Atom"),
    ("content", "http://purl.org/rss/1.0/modules/content/"),
    ("dc", "http://purl.org/dc/elements/1.1/"),
    ("dcterms", "http://purl.org/dc/terms/"),
    ("feedburner", "http://rssnamespace.org/feedburner/ext/1.0"),
    ("georss", "http://www.georss.org/georss"),
    ("itunes", "http://www.itunes.com/dtds/podcast-1.0.dtd"),
    ("media", "http://search.yahoo.com/mrss/"),
    ("podcast", "https://podcastindex.org/namespace/1.0"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("slash", "http://purl.org/rss/1.0/modules/slash/"),
    ("sy", "http://purl.org/rss/1.0/modules/syndication/"),
    ("thr", "http://purl.org/syndication/thread/1.0"),
    ("wfw", "http://wellformedweb.org/CommentAPI/"),
    ("xhtml", "http://www.w3.org/1999/xhtml"),
];

/// What was repaired, by kind, for the source's status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Repair {
    UndefinedEntity,
    BareAmpersand,
    CharacterReference,
    UnclosedCdata,
    UnclosedElement,
    StrayEndTag,
    StrayMarkup,
    BadAttribute,
    UndeclaredPrefix,
    IllegalCharacter,
    C1Character,
    DoubleEncodedUtf8,
    TooDeep,
    ContentOutsideRoot,
    // Found by `dialect`:
    RssVersion,
    ForeignRssNamespace,
    ItemsOutsideChannel,
    NoChannel,
    Atom03,
    TextType,
    Base64,
    EmptyElement,
    BadBase,
    NakedMarkup,
}

impl Repair {
    /// Singular and plural wording of one kind.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Repair::UndefinedEntity => ("HTML entity", "HTML entities"),
            Repair::BareAmpersand => ("bare &", "bare &s"),
            Repair::CharacterReference => (
                "malformed character reference",
                "malformed character references",
            ),
            Repair::UnclosedCdata => ("unclosed CDATA section", "unclosed CDATA sections"),
            Repair::UnclosedElement => ("unclosed element", "unclosed elements"),
            Repair::StrayEndTag => ("stray end tag", "stray end tags"),
            Repair::StrayMarkup => ("stray <", "stray <s"),
            Repair::BadAttribute => ("malformed attribute", "malformed attributes"),
            Repair::UndeclaredPrefix => (
                "undeclared namespace prefix",
                "undeclared namespace prefixes",
            ),
            Repair::IllegalCharacter => ("character XML forbids", "characters XML forbids"),
            Repair::C1Character => (
                "C1 control read as windows-1252",
                "C1 controls read as windows-1252",
            ),
            Repair::DoubleEncodedUtf8 => {
                ("double-encoded UTF-8 text", "double-encoded UTF-8 texts")
            }
            Repair::TooDeep => ("element nested too deep", "elements nested too deep"),
            Repair::ContentOutsideRoot => (
                "content outside the root element",
                "contents outside the root element",
            ),
            Repair::RssVersion => (
                "missing or unknown RSS version",
                "missing or unknown RSS versions",
            ),
            Repair::ForeignRssNamespace => (
                "RSS in a non-standard namespace",
                "RSS in non-standard namespaces",
            ),
            Repair::ItemsOutsideChannel => ("item outside <channel>", "items outside <channel>"),
            Repair::NoChannel => ("missing <channel>", "missing <channel>s"),
            Repair::Atom03 => ("Atom 0.3 read as Atom 1.0", "Atom 0.3 read as Atom 1.0"),
            Repair::TextType => ("unknown text type", "unknown text types"),
            Repair::Base64 => ("base64 text decoded", "base64 texts decoded"),
            Repair::EmptyElement => ("empty element dropped", "empty elements dropped"),
            Repair::BadBase => ("unusable xml:base", "unusable xml:bases"),
            Repair::NakedMarkup => ("unescaped markup", "unescaped markup"),
        }
    }

    /// The label of `bantin_source_repairs_total`.
    pub fn label(self) -> &'static str {
        match self {
            Repair::UndefinedEntity => "html_entity",
            Repair::BareAmpersand => "bare_ampersand",
            Repair::CharacterReference => "character_reference",
            Repair::UnclosedCdata => "unclosed_cdata",
            Repair::UnclosedElement => "unclosed_element",
            Repair::StrayEndTag => "stray_end_tag",
            Repair::StrayMarkup => "stray_markup",
            Repair::BadAttribute => "bad_attribute",
            Repair::UndeclaredPrefix => "undeclared_prefix",
            Repair::IllegalCharacter => "illegal_character",
            Repair::C1Character => "c1_character",
            Repair::DoubleEncodedUtf8 => "double_encoded_utf8",
            Repair::TooDeep => "too_deep",
            Repair::ContentOutsideRoot => "content_outside_root",
            Repair::RssVersion => "rss_version",
            Repair::ForeignRssNamespace => "rss_namespace",
            Repair::ItemsOutsideChannel => "items_outside_channel",
            Repair::NoChannel => "no_channel",
            Repair::Atom03 => "atom_0_3",
            Repair::TextType => "text_type",
            Repair::Base64 => "base64",
            Repair::EmptyElement => "empty_element",
            Repair::BadBase => "bad_xml_base",
            Repair::NakedMarkup => "naked_markup",
        }
    }
}

/// Counts of repairs, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Repairs(BTreeMap<Repair, u64>);

impl Repairs {
    pub fn add(&mut self, r: Repair) {
        *self.0.entry(r).or_default() += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn count(&self, r: Repair) -> u64 {
        self.0.get(&r).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Repair, u64)> + '_ {
        self.0.iter().map(|(r, n)| (*r, *n))
    }
}

impl std::fmt::Display for Repairs {
    /// `3 HTML entities, 1 unclosed CDATA section`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (r, n)) in self.iter().enumerate() {
            let (one, many) = r.words();
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n} {}", if n == 1 { one } else { many })?;
        }
        Ok(())
    }
}

/// An element: its name as written and as resolved, attributes, children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// The qualified name as written (`dc:date`).
    pub qname: String,
    /// The namespace URI it resolved to (empty for none).
    pub ns: String,
    pub local: String,
    /// Attributes other than namespace declarations, values unescaped.
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub qname: String,
    pub ns: String,
    pub local: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn new(ns: &str, local: &str) -> Element {
        Element {
            qname: local.to_string(),
            ns: ns.to_string(),
            local: local.to_string(),
            ..Default::default()
        }
    }

    /// An attribute without a namespace, by name.
    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_empty() && a.local.eq_ignore_ascii_case(local))
            .map(|a| a.value.as_str())
    }

    pub fn attr_ns(&self, ns: &str, local: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns == ns && a.local == local)
            .map(|a| a.value.as_str())
    }

    pub fn set_attr(&mut self, local: &str, value: &str) {
        match self
            .attrs
            .iter_mut()
            .find(|a| a.ns.is_empty() && a.local.eq_ignore_ascii_case(local))
        {
            Some(a) => a.value = value.to_string(),
            None => self.attrs.push(Attr {
                qname: local.into(),
                ns: String::new(),
                local: local.into(),
                value: value.into(),
            }),
        }
    }

    pub fn remove_attr(&mut self, local: &str) {
        self.attrs
            .retain(|a| !(a.ns.is_empty() && a.local.eq_ignore_ascii_case(local)));
    }

    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The concatenated text of this element and its descendants.
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.text_into(&mut out);
        out
    }

    fn text_into(&self, out: &mut String) {
        for c in &self.children {
            match c {
                Node::Text(t) => out.push_str(t),
                Node::Element(e) => e.text_into(out),
            }
        }
    }

    pub fn has_element_children(&self) -> bool {
        self.children.iter().any(|c| matches!(c, Node::Element(_)))
    }
}

/// Reads `text` into a document: a virtual root whose children are the top-level elements
/// (normally one). `utf8_source` says the bytes were UTF-8, where double-encoded text is
/// repaired (as feedparser does only then).
pub fn read(text: &str, utf8_source: bool, repairs: &mut Repairs) -> Element {
    let mut r = Reader {
        src: text,
        pos: 0,
        stack: vec![Open {
            el: Element::default(),
            ns_mark: 0,
            text: String::new(),
        }],
        scopes: Vec::new(),
        entities: HashMap::new(),
        expanded: 0,
        utf8_source,
        repairs,
        skipped_depth: 0,
        no_cdata_end_after: usize::MAX,
    };
    r.run();
    r.finish()
}

struct Open {
    el: Element,
    /// The length of `scopes` before this element's declarations.
    ns_mark: usize,
    /// Text not yet flushed into `el.children`.
    text: String,
}

struct Reader<'a> {
    src: &'a str,
    pos: usize,
    stack: Vec<Open>,
    /// In-scope namespace declarations: (prefix, uri); "" is the default namespace.
    scopes: Vec<(String, String)>,
    entities: HashMap<String, String>,
    /// Bytes of declared entities' text inserted so far.
    expanded: usize,
    utf8_source: bool,
    repairs: &'a mut Repairs,
    /// Start tags ignored for depth, still open (their end tags are ignored too).
    skipped_depth: usize,
    /// A position from which no `]]>` follows (`usize::MAX` until one search fails).
    no_cdata_end_after: usize,
}

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn run(&mut self) {
        while self.pos < self.src.len() {
            let rest = self.rest();
            let Some(i) = memchr::memchr2(b'<', b'&', rest.as_bytes()) else {
                self.push_text(rest);
                self.pos = self.src.len();
                break;
            };
            if i > 0 {
                self.push_text(&rest[..i]);
                self.pos += i;
            }
            if self.rest().starts_with('&') {
                let (s, used) = self.reference(self.rest());
                self.push_text(&s);
                self.pos += used;
            } else {
                self.markup();
            }
        }
    }

    fn top(&mut self) -> &mut Open {
        self.stack
            .last_mut()
            .expect("the document root is never popped")
    }

    fn push_text(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if self.stack.len() == 1 {
            if !s.trim().is_empty() {
                self.repairs.add(Repair::ContentOutsideRoot);
            }
            return;
        }
        self.top().text.push_str(s);
    }

    /// Resolves the reference at the start of `s` (which starts with `&`): its text and the
    /// bytes it used.
    fn reference(&mut self, s: &str) -> (String, usize) {
        let b = s.as_bytes();
        if b.get(1) == Some(&b'#') {
            let (hex, start) = match b.get(2) {
                Some(b'x') => (true, 3),
                Some(b'X') => {
                    self.repairs.add(Repair::CharacterReference);
                    (true, 3)
                }
                _ => (false, 2),
            };
            let digits = b[start..]
                .iter()
                .take_while(|c| {
                    if hex {
                        c.is_ascii_hexdigit()
                    } else {
                        c.is_ascii_digit()
                    }
                })
                .count();
            if digits == 0 {
                self.repairs.add(Repair::BareAmpersand);
                return ("&".into(), 1);
            }
            let end = start + digits;
            let semi = b.get(end) == Some(&b';');
            if !semi {
                self.repairs.add(Repair::CharacterReference);
            }
            let value = u32::from_str_radix(&s[start..end], if hex { 16 } else { 10 }).ok();
            let used = end + semi as usize;
            let c = match value {
                // HTML reads references to 0x80-0x9F as windows-1252, as authors meant them.
                Some(v @ 0x80..=0x9F) => {
                    self.repairs.add(Repair::C1Character);
                    markup5ever::data::C1_REPLACEMENTS[(v - 0x80) as usize]
                }
                Some(v) => char::from_u32(v).filter(|c| crate::text::is_xml_char(*c)),
                None => None,
            };
            return match c {
                Some(c) => (c.to_string(), used),
                None => {
                    self.repairs.add(Repair::IllegalCharacter);
                    (String::new(), used)
                }
            };
        }
        let name_len = b[1..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':'))
            .count();
        let name = &s[1..1 + name_len];
        let semi = b.get(1 + name_len) == Some(&b';');
        if name_len == 0 || !semi {
            self.repairs.add(Repair::BareAmpersand);
            return ("&".into(), 1);
        }
        let used = name_len + 2;
        let predefined = match name {
            "amp" => Some("&"),
            "lt" => Some("<"),
            "gt" => Some(">"),
            "quot" => Some("\""),
            "apos" => Some("'"),
            _ => None,
        };
        if let Some(p) = predefined {
            return (p.into(), used);
        }
        if let Some(v) = self.entities.get(name)
            && self.expanded + v.len() <= MAX_EXPANSION
        {
            self.expanded += v.len();
            return (v.clone(), used);
        }
        match markup5ever::data::NAMED_ENTITIES.get(&format!("{name};") as &str) {
            Some(&(a, b)) if a != 0 => {
                self.repairs.add(Repair::UndefinedEntity);
                let mut out = String::new();
                out.extend(char::from_u32(a));
                if b != 0 {
                    out.extend(char::from_u32(b));
                }
                (out, used)
            }
            _ => {
                // Unknown: kept as the text it is.
                self.repairs.add(Repair::BareAmpersand);
                ("&".into(), 1)
            }
        }
    }

    /// Resolves references in an attribute value.
    fn unescape(&mut self, v: &str) -> String {
        let mut out = String::with_capacity(v.len());
        let mut i = 0;
        while let Some(j) = v[i..].find('&') {
            out.push_str(&v[i..i + j]);
            let (s, used) = self.reference(&v[i + j..]);
            out.push_str(&s);
            i += j + used;
        }
        out.push_str(&v[i..]);
        out
    }

    fn markup(&mut self) {
        let rest = self.rest();
        if let Some(comment) = rest.strip_prefix("<!--") {
            let end = comment.find("-->").map_or(rest.len(), |e| e + 7);
            self.pos += end;
        } else if let Some(body) = rest.strip_prefix("<![CDATA[") {
            // Once no `]]>` follows some point, none follows any later one: not searched again
            // (many unclosed sections would otherwise cost quadratic time).
            let end = if self.pos >= self.no_cdata_end_after {
                None
            } else {
                let e = memchr::memmem::find(body.as_bytes(), b"]]>");
                if e.is_none() {
                    self.no_cdata_end_after = self.pos;
                }
                e
            };
            match end {
                Some(e) => {
                    let text = body[..e].to_string();
                    self.push_text(&text);
                    self.pos += 9 + e + 3;
                }
                None => {
                    // Unclosed: the section ends where its element does.
                    self.repairs.add(Repair::UnclosedCdata);
                    let close = format!("</{}", self.top().el.qname);
                    let e = if self.stack.len() > 1 {
                        body.find(&close).unwrap_or(body.len())
                    } else {
                        body.len()
                    };
                    let text = body[..e].to_string();
                    self.push_text(&text);
                    self.pos += 9 + e;
                }
            }
        } else if rest.len() >= 9 && rest.as_bytes()[..9].eq_ignore_ascii_case(b"<!DOCTYPE") {
            self.doctype();
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            let close = if rest.starts_with("<?") { "?>" } else { ">" };
            let end = rest.find(close).map_or(rest.len(), |e| e + close.len());
            self.pos += end;
        } else if rest.starts_with("</") {
            self.end_tag();
        } else if rest[1..].starts_with(|c: char| c.is_alphabetic() || c == '_' || c == ':') {
            self.start_tag();
        } else {
            self.repairs.add(Repair::StrayMarkup);
            self.push_text("<");
            self.pos += 1;
        }
    }

    /// Skips a DOCTYPE, keeping the general entities its internal subset declares.
    fn doctype(&mut self) {
        let rest = self.rest();
        let open = rest.find('[');
        let gt = rest.find('>').unwrap_or(rest.len());
        let end = match open {
            Some(o) if o < gt => {
                let close = rest[o..].find("]").map(|c| o + c).unwrap_or(rest.len());
                let subset = rest[o + 1..close].to_string();
                self.declare_entities(&subset);
                rest[close..]
                    .find('>')
                    .map_or(rest.len(), |g| close + g + 1)
            }
            _ => (gt + 1).min(rest.len()),
        };
        self.pos += end;
    }

    fn declare_entities(&mut self, subset: &str) {
        let mut rest = subset;
        while let Some(i) = rest.find("<!ENTITY") {
            rest = &rest[i + 8..];
            let decl = rest.trim_start();
            if decl.starts_with('%') {
                continue;
            }
            let name_len = decl.find(|c: char| c.is_whitespace()).unwrap_or(decl.len());
            let name = decl[..name_len].to_string();
            let after = decl[name_len..].trim_start();
            let Some(q) = after.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                continue;
            };
            let Some(end) = after[1..].find(q) else { break };
            let raw = &after[1..1 + end];
            if self.entities.len() < MAX_ENTITIES && raw.len() <= MAX_ENTITY_VALUE {
                // References in the value are resolved now (earlier entities included), and the
                // result is used as text: each value is bounded, and so is what uses insert.
                let value = self.unescape(raw);
                if value.len() <= MAX_ENTITY_VALUE {
                    self.entities.entry(name).or_insert(value);
                }
            }
            rest = &after[1 + end..];
        }
    }

    fn end_tag(&mut self) {
        let rest = self.rest();
        // `</title<link>`: an end tag cut short ends where the next tag starts.
        let body_end = rest[2..].find(['>', '<']).map_or(rest.len(), |e| e + 2);
        let name = rest[2..body_end].trim().to_string();
        let used = if rest[body_end..].starts_with('>') {
            body_end + 1
        } else {
            body_end
        };
        self.pos += used;
        if self.skipped_depth > 0 {
            self.skipped_depth -= 1;
            return;
        }
        let found = self
            .stack
            .iter()
            .rposition(|o| o.el.qname == name)
            .or_else(|| {
                self.stack
                    .iter()
                    .rposition(|o| o.el.qname.eq_ignore_ascii_case(&name))
            })
            .filter(|&i| i > 0);
        match found {
            Some(i) => {
                for _ in i + 1..self.stack.len() {
                    self.repairs.add(Repair::UnclosedElement);
                }
                while self.stack.len() > i {
                    self.close();
                }
            }
            None => self.repairs.add(Repair::StrayEndTag),
        }
    }

    fn start_tag(&mut self) {
        let rest = self.rest();
        let b = rest.as_bytes();
        let name_len = rest[1..]
            .find(|c: char| {
                c.is_ascii_whitespace() || matches!(c, '/' | '>' | '<' | '"' | '\'' | '=')
            })
            .unwrap_or(rest.len() - 1);
        let qname = rest[1..1 + name_len].to_string();
        let mut i = 1 + name_len;
        let mut raw_attrs: Vec<(String, String)> = Vec::new();
        let mut self_closing = false;
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= b.len() {
                // A tag cut off by the end of the document.
                self.repairs.add(Repair::UnclosedElement);
                break;
            }
            match b[i] {
                b'>' => {
                    i += 1;
                    break;
                }
                b'/' if b.get(i + 1) == Some(&b'>') => {
                    self_closing = true;
                    i += 2;
                    break;
                }
                b'<' => {
                    // `<a <b>`: the tag ends where the next one starts.
                    self.repairs.add(Repair::BadAttribute);
                    break;
                }
                b'/' | b'"' | b'\'' | b'=' => {
                    self.repairs.add(Repair::BadAttribute);
                    i += 1;
                }
                _ => {
                    let n = rest[i..]
                        .find(|c: char| {
                            c.is_ascii_whitespace() || matches!(c, '=' | '>' | '/' | '<')
                        })
                        .unwrap_or(rest.len() - i);
                    if n == 0 {
                        // Nothing a name can start with (a stray character): skip it, so the
                        // loop always advances.
                        self.repairs.add(Repair::BadAttribute);
                        i += rest[i..].chars().next().map_or(1, char::len_utf8);
                        continue;
                    }
                    let name = rest[i..i + n].to_string();
                    i += n;
                    let mut j = i;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    let mut value = None;
                    if b.get(j) == Some(&b'=') {
                        j += 1;
                        while j < b.len() && b[j].is_ascii_whitespace() {
                            j += 1;
                        }
                        match b.get(j) {
                            Some(&q @ (b'"' | b'\'')) => {
                                let body = &rest[j + 1..];
                                // A value cannot hold `<`: a quote not closed before the next
                                // tag ends at this tag's end.
                                // (Searched only up to that `<`, so many unclosed quotes
                                // cost linear time, not quadratic.)
                                let lt =
                                    memchr::memchr(b'<', body.as_bytes()).unwrap_or(body.len());
                                let end = memchr::memchr(q, &body.as_bytes()[..lt]);
                                match end {
                                    Some(e) => {
                                        value = Some(body[..e].to_string());
                                        j += 1 + e + 1;
                                    }
                                    None => {
                                        self.repairs.add(Repair::BadAttribute);
                                        let e = body.find('>').unwrap_or(body.len());
                                        value = Some(body[..e].to_string());
                                        j += 1 + e;
                                    }
                                }
                            }
                            _ => {
                                self.repairs.add(Repair::BadAttribute);
                                let e = rest[j..]
                                    .find(|c: char| c.is_ascii_whitespace() || c == '>')
                                    .unwrap_or(rest.len() - j);
                                value = Some(rest[j..j + e].to_string());
                                j += e;
                            }
                        }
                        i = j;
                    } else {
                        // HTML's `<input checked>`.
                        self.repairs.add(Repair::BadAttribute);
                    }
                    let value = value.unwrap_or_else(|| name.clone());
                    if raw_attrs.iter().any(|(n, _)| *n == name) {
                        self.repairs.add(Repair::BadAttribute);
                    } else if raw_attrs.len() < MAX_ATTRIBUTES {
                        raw_attrs.push((name, value));
                    }
                }
            }
        }
        self.pos += i.min(rest.len());

        if self.stack.len() > MAX_DEPTH {
            self.repairs.add(Repair::TooDeep);
            if !self_closing {
                self.skipped_depth += 1;
            }
            return;
        }
        // Namespace declarations first, so the element's own name resolves in its scope.
        let ns_mark = self.scopes.len();
        let mut attrs = Vec::new();
        for (name, raw) in raw_attrs {
            let unescaped = self.unescape(&raw);
            let value = self.clean(&unescaped);
            if name == "xmlns" {
                self.scopes.push((String::new(), value));
            } else if let Some(p) = name.strip_prefix("xmlns:") {
                self.scopes.push((p.to_string(), value));
            } else {
                attrs.push((name, value));
            }
        }
        let (ns, local) = self.resolve(&qname, true);
        let attrs = attrs
            .into_iter()
            .map(|(qname, value)| {
                let (ns, local) = if qname.contains(':') {
                    self.resolve(&qname, false)
                } else {
                    (String::new(), qname.clone())
                };
                Attr {
                    qname,
                    ns,
                    local,
                    value,
                }
            })
            .collect();
        self.flush();
        let el = Element {
            qname,
            ns,
            local,
            attrs,
            children: Vec::new(),
        };
        self.stack.push(Open {
            el,
            ns_mark,
            text: String::new(),
        });
        if self_closing {
            self.close();
        }
    }

    /// The namespace and local name of a qualified name in the current scope.
    fn resolve(&mut self, qname: &str, element: bool) -> (String, String) {
        let (prefix, local) = match qname.split_once(':') {
            Some((p, l)) if !p.is_empty() && !l.is_empty() => (p, l),
            _ => ("", qname),
        };
        if prefix == "xml" {
            return (XML_NS.into(), local.into());
        }
        if prefix.is_empty() && !element {
            return (String::new(), local.into());
        }
        if let Some((_, uri)) = self.scopes.iter().rev().find(|(p, _)| p == prefix) {
            return (uri.clone(), local.into());
        }
        if prefix.is_empty() {
            return (String::new(), local.into());
        }
        self.repairs.add(Repair::UndeclaredPrefix);
        let uri = CONVENTIONAL
            .iter()
            .find(|(p, _)| p.eq_ignore_ascii_case(prefix))
            .map(|(_, u)| u.to_string())
            .unwrap_or_else(|| format!("urn:bantin:undeclared:{prefix}"));
        // Declared from here on, as if the document had.
        self.scopes.push((prefix.to_string(), uri.clone()));
        (uri, local.into())
    }

    /// Moves pending text into the current element as a cleaned text node.
    fn flush(&mut self) {
        let pending = std::mem::take(&mut self.top().text);
        if pending.is_empty() {
            return;
        }
        let text = self.clean(&pending);
        if text.is_empty() {
            return;
        }
        let top = self.top();
        match top.el.children.last_mut() {
            Some(Node::Text(t)) => t.push_str(&text),
            _ => top.el.children.push(Node::Text(text)),
        }
    }

    /// Characters XML forbids dropped, C1 controls read as windows-1252, double-encoded UTF-8
    /// decoded once more.
    fn clean(&mut self, s: &str) -> String {
        let mut s = s.to_string();
        if self.utf8_source
            && let Some(fixed) = undo_double_encoding(&s)
        {
            self.repairs.add(Repair::DoubleEncodedUtf8);
            s = fixed;
        }
        if s.chars()
            .all(|c| crate::text::is_xml_char(c) && !is_c1(c) && c != '\u{FFFD}')
        {
            return s;
        }
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if is_c1(c) {
                self.repairs.add(Repair::C1Character);
                out.extend(markup5ever::data::C1_REPLACEMENTS[c as usize - 0x80]);
            } else if crate::text::is_xml_char(c) && c != '\u{FFFD}' {
                out.push(c);
            } else {
                self.repairs.add(Repair::IllegalCharacter);
            }
        }
        out
    }

    fn close(&mut self) {
        self.flush();
        let open = self
            .stack
            .pop()
            .expect("close is only called above the root");
        self.scopes.truncate(open.ns_mark);
        self.top().el.children.push(Node::Element(open.el));
    }

    fn finish(mut self) -> Element {
        self.skipped_depth = 0;
        while self.stack.len() > 1 {
            self.repairs.add(Repair::UnclosedElement);
            self.close();
        }
        self.stack.pop().expect("the document root").el
    }
}

fn is_c1(c: char) -> bool {
    ('\u{80}'..='\u{9F}').contains(&c)
}

/// Text that is UTF-8 bytes read as Latin-1 or windows-1252 and encoded again (`CafÃ©`), decoded
/// once more: only when every character maps back to one byte and those bytes are UTF-8 with at
/// least one multi-byte sequence (feedparser's rule, widened to windows-1252's punctuation).
pub fn undo_double_encoding(s: &str) -> Option<String> {
    if s.is_ascii() {
        return None;
    }
    let mut bytes = Vec::with_capacity(s.len());
    for c in s.chars() {
        let b = match c as u32 {
            v @ 0..=0xFF => v as u8,
            _ => {
                let i = markup5ever::data::C1_REPLACEMENTS
                    .iter()
                    .position(|r| *r == Some(c))?;
                0x80 + i as u8
            }
        };
        bytes.push(b);
    }
    let fixed = String::from_utf8(bytes).ok()?;
    (fixed != s).then_some(fixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> (Element, Repairs) {
        let mut r = Repairs::default();
        let d = read(s, true, &mut r);
        (d, r)
    }

    fn root(s: &str) -> (Element, Repairs) {
        let (d, r) = doc(s);
        (d.elements().next().cloned().expect("a root"), r)
    }

    #[test]
    fn well_formed_xml_reads_without_repairs() {
        let (rss, r) = root(
            r#"<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>a &amp; b</title><item><dc:date>2024</dc:date><description><![CDATA[<p>x</p>]]></description></item></channel></rss>"#,
        );
        assert!(r.is_empty(), "{r}");
        assert_eq!(rss.attr("version"), Some("2.0"));
        let channel = rss.elements().next().unwrap();
        assert_eq!(channel.elements().next().unwrap().text(), "a & b");
        let item = channel.elements().nth(1).unwrap();
        let date = item.elements().next().unwrap();
        assert_eq!(
            (date.ns.as_str(), date.local.as_str()),
            ("http://purl.org/dc/elements/1.1/", "date")
        );
        assert_eq!(item.elements().nth(1).unwrap().text(), "<p>x</p>");
    }

    #[test]
    fn entities_ampersands_and_character_references() {
        let (t, r) = root(
            "<t>testing &aacute; &nbsp;entity &copy R&D &bogus; &#X41;&#146;&#0;&#x1F600;</t>",
        );
        assert_eq!(
            t.text(),
            "testing á \u{a0}entity &copy R&D &bogus; A\u{2019}😀"
        );
        assert_eq!(r.count(Repair::UndefinedEntity), 2);
        assert_eq!(r.count(Repair::BareAmpersand), 3);
        assert_eq!(r.count(Repair::CharacterReference), 1);
        assert_eq!(r.count(Repair::C1Character), 1);
        assert_eq!(r.count(Repair::IllegalCharacter), 1);
        assert_eq!(
            r.to_string(),
            "2 HTML entities, 3 bare &s, 1 malformed character reference, 1 character XML forbids, 1 C1 control read as windows-1252"
        );
    }

    #[test]
    fn internal_dtd_entities_resolve_once() {
        let (t, _) =
            root(r#"<!DOCTYPE rss [<!ENTITY a "x&#38;y"><!ENTITY b "&a;&a;">]><t>&a; &b;</t>"#);
        assert_eq!(t.text(), "x&y x&yx&y");
        // Uses of a declared entity insert at most MAX_EXPANSION bytes in all.
        let value = "x".repeat(4000);
        let uses = "&big;".repeat(2000);
        let (t, _) = root(&format!(
            r#"<!DOCTYPE t [<!ENTITY big "{value}">]><t>{uses}</t>"#
        ));
        assert!(t.text().len() <= MAX_EXPANSION + 5 * 2000);
    }

    #[test]
    fn unclosed_cdata_ends_with_its_element() {
        let (rss, r) =
            root("<rss><item><title><![CDATA[a <b> c</title><link>l</link></item></rss>");
        let item = rss.elements().next().unwrap();
        assert_eq!(item.elements().next().unwrap().text(), "a <b> c");
        assert_eq!(item.elements().nth(1).unwrap().text(), "l");
        assert_eq!(r.count(Repair::UnclosedCdata), 1);
        // Cut off by the end of the document.
        let (rss, _) = root("<rss><channel><item><title><![CD");
        assert_eq!(rss.text(), "");
        let (rss, r) = root("<rss><item><title><![CDATA[x");
        assert_eq!(rss.text(), "x");
        assert!(r.count(Repair::UnclosedElement) >= 3);
    }

    #[test]
    fn end_tags_close_what_they_name() {
        let (rss, r) =
            root("<rss><channel><item><title>t<b>bold</title><p>x</item></channel></rss");
        let item = rss.elements().next().unwrap().elements().next().unwrap();
        assert_eq!(item.elements().count(), 2, "{item:?}");
        assert_eq!(item.elements().next().unwrap().text(), "tbold");
        assert_eq!(r.count(Repair::UnclosedElement), 2);
        let (_, r) = root("<a></b></a>");
        assert_eq!(r.count(Repair::StrayEndTag), 1);
    }

    #[test]
    fn stray_angle_brackets_and_odd_attributes() {
        let (t, r) = root(r#"<t a=1 b='2' c="3" c="4" d>1 < 2 <3</t>"#);
        assert_eq!(t.attr("a"), Some("1"));
        assert_eq!(t.attr("c"), Some("3"));
        assert_eq!(t.attr("d"), Some("d"));
        assert_eq!(t.text(), "1 < 2 <3");
        assert_eq!(r.count(Repair::StrayMarkup), 2);
        assert_eq!(r.count(Repair::BadAttribute), 3);
    }

    #[test]
    fn undeclared_prefixes_get_their_conventional_namespace() {
        let (rss, r) = root("<rss><dc:creator>x</dc:creator><foo:bar/></rss>");
        let els: Vec<_> = rss.elements().collect();
        assert_eq!(els[0].ns, "http://purl.org/dc/elements/1.1/");
        assert_eq!(els[1].ns, "urn:bantin:undeclared:foo");
        assert_eq!(r.count(Repair::UndeclaredPrefix), 2);
    }

    #[test]
    fn c1_controls_and_double_encoded_utf8() {
        let (t, r) = root("<t>don\u{92}t \u{1}</t>");
        assert_eq!(t.text(), "don\u{2019}t ");
        assert_eq!(r.count(Repair::C1Character), 1);
        assert_eq!(r.count(Repair::IllegalCharacter), 1);
        let (t, r) = root("<t>Viá»‡t Nam &#226;&#128;&#166;</t>");
        assert_eq!(t.text(), "Việt Nam …");
        assert_eq!(r.count(Repair::DoubleEncodedUtf8), 1);
        // Real Latin-1 or Vietnamese text is left alone.
        assert_eq!(undo_double_encoding("café"), None);
        assert_eq!(undo_double_encoding("Việt Nam"), None);
        assert_eq!(undo_double_encoding("â€™"), Some("’".into()));
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "<a>".repeat(10_000) + "x" + &"</a>".repeat(10_000);
        let (d, r) = doc(&deep);
        assert_eq!(r.count(Repair::TooDeep), (10_000 - MAX_DEPTH) as u64);
        let mut depth = 0;
        let mut e = &d;
        while let Some(c) = e.elements().next() {
            depth += 1;
            e = c;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert_eq!(d.text(), "x");
    }

    #[test]
    fn text_outside_the_root_is_dropped() {
        let (d, r) = doc("junk<rss/>more");
        assert_eq!(d.elements().count(), 1);
        assert_eq!(r.count(Repair::ContentOutsideRoot), 2);
    }

    #[test]
    fn odd_characters_inside_a_tag_always_advance() {
        // A no-break space (Unicode whitespace, not XML's) where an attribute would start.
        // (U+00A0 is a name character in XML: it joins the name, and the reading ends.)
        let (r, rep) = root("<content\u{a0}type=\"xhtml\" xml:lang");
        assert!(r.local.starts_with("content"));
        assert!(rep.count(Repair::BadAttribute) > 0);
        let (r, _) = root("<a \u{a0}\u{a0}b=\"1\">x</a>");
        assert_eq!(r.text(), "x");
    }

    #[test]
    fn pathological_input_reads_in_linear_time() {
        // Each shape repeated to a megabyte: quadratic work would take minutes here.
        for unit in [
            "<![CDATA[x",
            "<a b=\"",
            "< ",
            "&",
            "&#",
            "</x>",
            "<!--",
            "<a\u{a0}",
        ] {
            let s = unit.repeat((1 << 20) / unit.len());
            let t = std::time::Instant::now();
            let mut r = Repairs::default();
            read(&s, true, &mut r);
            assert!(
                t.elapsed() < std::time::Duration::from_secs(10),
                "{unit:?}: {:?}",
                t.elapsed()
            );
        }
    }
}
