#!/usr/bin/env python3
"""feedcheck: a W3C-style checker for every feed a running bantin serves.

The W3C Feed Validation Service cannot be reached from here (and is not on PyPI), so this
script re-implements its rules as explicit checks, named after the validator's messages
(MissingElement, InvalidRFC2822Date, IncorrectDOW, MissingAtomSelfLink,
SelfDoesntMatchLocation, DuplicateValue, NeedDescriptionBeforeContent, DuplicateAtomLink,
ContainsRelRef, SecurityRisk, SecurityRiskAttr, NotHtml, ContainsHTML, CharacterData,
BadCharacters, ImplausibleDate, ...), adds the rendering rules of shared/DESIGN.md
("Rendering rules"; rule names without a validator equivalent are descriptive, e.g.
WrongOffset, AlternateLinksDisagree), and has independent readers cross-check each other.

Given a base URL (default http://127.0.0.1:8181) it:
  1. fetches /feeds.opml and every feed it lists in all three formats (rss.xml, atom.xml,
     feed.json, derived from the listed RSS URL), follows `next` links through all pages,
     checks that the page after the last one does not exist (404 or no items), and fetches
     page 1 again with a tracking query (self link / feed_url must stay clean);
  2. well-formedness: `xmllint --noout --nonet` and expat/xml.etree on every XML body (RSS,
     Atom, OPML), json.loads on JSON Feed; no character outside the XML 1.0 Char production
     anywhere (raw text, numeric character references, escaped HTML, JSON strings); no C1
     controls / U+FFFD (BadCharacters); text in Unicode NFC (NotNFC);
  3. RSS 2.0: channel title/link/description/language, RFC 822 dates with English names, a
     numeric +0700 offset and the right weekday, unique guids, atom:link rel=self (absolute,
     the fetched URL, type application/rss+xml), description before content:encoded,
     enclosure url/length/type, plain-text elements (ContainsHTML, CharacterData), escaped
     HTML (no relative URLs, unsafe elements or attributes, javascript: URLs, non-HTML tags);
     Atom 1.0: id/title/updated/author/xml:lang/link rel=self, unique entry ids, RFC 3339
     dates with +07:00, no two alternate links with one type+hreflang (nor any two links with
     one rel+type+hreflang), an entry's first and last rel=alternate both its own page;
     JSON Feed 1.1: version, title, feed_url, language, unique item ids, RFC 3339 dates,
     content, attachments, next_url present iff there is a next page;
  4. independent readers agree, page by page and per item: feedparser (bozo must be 0 for
     RSS and Atom) vs this script's own parse vs the JSON Feed: same ids (RSS guid = Atom
     id = JSON id), titles, links (feedparser's entry.link must be the article's own page,
     not a translation), published/updated instants as UTC, summaries as text, content;
  5. when the sample corpus is there (feeds/articles next to this script), items from it are
     checked against their source: published_at instant (naive = site-local), url, language,
     drafts and embargoed articles never shown.

It counts documents (feeds x formats, plus later pages), items and problems, prints one line
per problem ("[Rule] URL :: element :: message") and a summary for an issue's closing note.
Exit status: 0 only with no problem, 1 with problems, 2 when the check itself cannot run.

Needs Python 3.11, feedparser (`pip install feedparser`) and xmllint (Debian package
libxml2-utils); html5lib (`pip install html5lib`) is optional and adds the validator's strict
HTML parse (NotHtml). Run, with bantin serving:
  python3 scripts/feedcheck.py                                  # http://127.0.0.1:8181
  python3 scripts/feedcheck.py --base http://127.0.0.1:8181 --summary-only
Other options: --tz ZONE (default: timezone in feeds/site.toml), --site PATH, --corpus DIR,
--no-corpus, --no-noise, --max-problems N, --timeout S.
"""

from __future__ import annotations

import argparse
import calendar
import collections
import datetime as dt
import html
import html.entities
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
import xml.parsers.expat

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    tomllib = None

try:
    from zoneinfo import ZoneInfo
except ImportError:  # pragma: no cover
    ZoneInfo = None

try:
    import feedparser
except ImportError:
    feedparser = None

try:  # optional: the feedvalidator parses escaped HTML with html5lib in strict mode (NotHtml)
    import html5lib
except ImportError:
    html5lib = None

ATOM = "http://www.w3.org/2005/Atom"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
DC = "http://purl.org/dc/elements/1.1/"
MEDIA = "http://search.yahoo.com/mrss/"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XML_LANG = "{%s}lang" % XML_NS
JSONFEED_11 = "https://jsonfeed.org/version/1.1"

FORMATS = (("rss", "rss.xml"), ("atom", "atom.xml"), ("json", "feed.json"))
CONTENT_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}
MAX_PAGES = 1000

# XML 1.0 (fifth edition) Char production, negated.
NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# C1 controls and U+FFFD: allowed by XML 1.0 but the feedvalidator warns (BadCharacters:
# usually windows-1252 or a broken decoder upstream).
C1_CHAR = re.compile("[\x80-\x9f\ufffd]")
CHAR_REF = re.compile(r"&#(?:[xX]([0-9A-Fa-f]+)|([0-9]+));")

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# RFC 822 as the feedvalidator accepts it without comment (4-digit year, English names,
# single spaces, numeric offset or one of the RFC 822 zone names).
RFC822_RE = re.compile(
    r"^(?:(%s), )?(\d{1,2}) (%s) (\d{4}) (\d{2}):(\d{2})(?::(\d{2}))? "
    r"(?:([+-])(\d{2})(\d{2})|(UT|GMT|Z|EST|EDT|CST|CDT|MST|MDT|PST|PDT))$"
    % ("|".join(DAYS), "|".join(MONTHS))
)
NAMED_ZONES = {"UT": 0, "GMT": 0, "Z": 0, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5,
               "MST": -7, "MDT": -6, "PST": -8, "PDT": -7}
# The feedvalidator's looser rfc822 pattern: a date it accepts but ours rejects is still
# reported (as InvalidRFC2822Date), e.g. a named zone such as GMT or ICT.
# RFC 822 as loosely as old readers take it (named zones, 2-digit years, any spacing, no
# seconds): a date that only this accepts is "problematical" rather than invalid.
RFC822_LOOSE_RE = re.compile(
    r"^((mon|tue|wed|thu|fri|sat|sun)\s*,\s*)?\d\d?\s+(%s)\s+\d\d(\d\d)?\s+\d\d:\d\d(:\d\d)?"
    r"\s+([+-]\d{4}|ut|gmt|[ecmp][sd]t|[a-ik-z])?$" % "|".join(m.lower() for m in MONTHS))
RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)
TAG_URI_RE = re.compile(
    r"^tag:([a-z0-9\-._]+?@)?[a-z0-9.\-]+?,\d{4}(-\d{2}(-\d{2})?)?:"
    r"[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]+$"
)
# A full (absolute) URI in RFC 2396 characters only: scheme, "//authority" for http(s)/ftp,
# then unreserved / reserved / escaped characters (no spaces, no raw non-ASCII).
FULL_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:(//)?[A-Za-z0-9;/?:@&=+$.\-_!~*'()%,#\[\]]+$")
SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
MIME_RE = re.compile(r'^[^\s()<>,;:\\"/\[\]?=]+/[^\s()<>,;:\\"/\[\]?=]+$')
LANG_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
HTML_END_TAG = re.compile(r"</\w+>")
# IANA-registered Atom link relations (plus the RFC 5005 paging ones and WebSub's hub).
ATOM_RELS = {
    "alternate", "related", "self", "enclosure", "via", "first", "last", "next",
    "previous", "prev", "current", "hub", "license", "replies", "edit", "edit-media",
    "payment", "search", "prev-archive", "next-archive", "current",
}
# HTML element names (HTML 4 and the living standard, plus a few obsolete ones): a start tag
# not in this set is "NotHtml" (non-html tag) for the feedvalidator.
HTML_ELEMENTS = set("""
a abbr acronym address applet area article aside audio b base basefont bdi bdo big
blockquote body br button canvas caption center cite code col colgroup data datalist dd del
details dfn dialog dir div dl dt em embed fieldset figcaption figure font footer form frame
frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins isindex kbd
label legend li link main map mark menu meta meter nav noframes noscript object ol optgroup
option output p param picture pre progress q rp rt ruby s samp script search section select
slot small source span strike strong style sub summary sup table tbody td template textarea
tfoot th thead time title tr track tt u ul var video wbr xmp plaintext listing
""".split())
# Known elements that are not safe in syndicated content: the feedvalidator's SecurityRisk.
UNSAFE_TAGS = set("""
applet base basefont body embed frame frameset head html iframe isindex link meta noframes
object param script slot style title xmp plaintext listing
""".split())
# Attributes accepted in syndicated HTML; anything else (event handlers first of all) is a
# SecurityRiskAttr, except data-*.  Conservative on purpose: no aria/role, no srcdoc.
SAFE_ATTRS = set("""
abbr accept align alt autoplay axis bgcolor border cellpadding cellspacing char charoff
charset checked cite class clear color cols colspan compact controls coords crossorigin
datetime decoding default dir disabled download face for frame headers height hidden high
href hreflang hspace id ismap kind label lang loading longdesc loop low max maxlength media
method min multiple muted name nohref noshade nowrap open optimum playsinline poster preload
readonly referrerpolicy rel rev reversed rows rowspan rules scope selected shape size sizes
span src srclang srcset start summary tabindex target title translate type usemap valign
value vspace width xml:lang xmlns
""".split())
# CSS in a style attribute that the feedvalidator calls a DangerousStyleAttr (a conservative
# approximation: anything that loads, scripts, or repositions content).
DANGEROUS_CSS = re.compile(
    r"url\s*\(|expression\s*\(|javascript:|vbscript:|behavior\s*:|-moz-binding|@import|"
    r"position\s*:\s*(fixed|absolute)|\\", re.I)
URL_ATTRS = {
    "href", "src", "poster", "cite", "action", "formaction", "data", "background",
    "longdesc", "usemap", "xlink:href", "manifest", "codebase", "archive", "lowsrc",
    "dynsrc", "profile",
}
UNSAFE_SCHEMES = ("javascript:", "vbscript:", "livescript:", "mocha:", "data:text/html")


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


class Report:
    def __init__(self):
        self.problems: list[tuple[str, str, str, str]] = []
        self._seen: set[tuple[str, str, str, str]] = set()
        self.docs = 0
        self.docs_by_format = collections.Counter()
        self.pages_beyond_first = 0
        self.items_by_format = collections.Counter()
        self.feeds = 0
        self.noise_fetches = 0
        self.corpus_items = 0
        self.probes = 0

    def add(self, url: str, rule: str, where: str, message: str) -> None:
        key = (url, rule, where, message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.problems.append(key)


def short(s, n=90):
    s = repr(s) if not isinstance(s, str) else s
    return s if len(s) <= n else s[: n - 1] + "…"


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


class Response:
    def __init__(self, url, status, headers, body, error=None):
        self.url = url
        self.status = status
        self.headers = headers
        self.body = body
        self.error = error


def fetch(url: str, timeout: float) -> Response:
    req = urllib.request.Request(
        url,
        headers={"User-Agent": "bantin-feedcheck/1", "Accept-Encoding": "identity"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            headers = {k.lower(): v for k, v in r.headers.items()}
            return Response(url, r.status, headers, r.read())
    except urllib.error.HTTPError as e:
        headers = {k.lower(): v for k, v in (e.headers or {}).items()}
        return Response(url, e.code, headers, e.read() if e.fp else b"")
    except (urllib.error.URLError, OSError) as e:
        return Response(url, None, {}, b"", error=str(e))


# --------------------------------------------------------------------------------------------
# Characters, HTML content
# --------------------------------------------------------------------------------------------


def check_chars(rep: Report, url: str, where: str, text: str, refs: bool = True) -> None:
    """XML 1.0 Char production (raw and as numeric character references), C1 controls."""
    m = NOT_XML_CHAR.search(text)
    if m:
        ctx = text[max(0, m.start() - 30): m.start() + 10]
        rep.add(url, "InvalidXmlChar", where,
                f"U+{ord(m.group()):04X} is outside the XML 1.0 Char production "
                f"(SAXError: not well-formed), near {ctx!r}")
    m = C1_CHAR.search(text)
    if m:
        ctx = text[max(0, m.start() - 30): m.start() + 10]
        rep.add(url, "BadCharacters", where,
                f"{where} contains bad characters: U+{ord(m.group()):04X} (C1 control or "
                f"replacement character), near {ctx!r}")
    if refs:
        for m in CHAR_REF.finditer(text):
            try:
                cp = int(m.group(1), 16) if m.group(1) else int(m.group(2))
                ch = chr(cp)
            except (ValueError, OverflowError):
                ch = None
            if ch is None or NOT_XML_CHAR.match(ch):
                rep.add(url, "InvalidXmlChar", where,
                        f"character reference {m.group()} names a character outside the "
                        f"XML 1.0 Char production")
                break
            if C1_CHAR.match(ch):
                rep.add(url, "BadCharacters", where,
                        f"{where} contains bad characters: character reference {m.group()}")
                break


def check_nfc(rep: Report, url: str, where: str, text: str) -> None:
    if unicodedata.is_normalized("NFC", text):
        return
    for i, ch in enumerate(text):
        if unicodedata.combining(ch) and not unicodedata.is_normalized(
                "NFC", text[max(0, i - 2): i + 2]):
            ctx = text[max(0, i - 25): i + 10]
            break
    else:
        ctx = ""
    rep.add(url, "NotNFC", where,
            f"text is not Unicode NFC (DESIGN: text is normalised to NFC), near {ctx!r}")


class HtmlScan(html.parser.HTMLParser):
    """Collects start tags and attributes of an HTML fragment."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag.lower(), attrs))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag.lower(), attrs))


def check_html(rep: Report, url: str, where: str, fragment: str) -> None:
    """Escaped HTML content, as the feedvalidator's HTMLValidator and the DESIGN see it:
    NotHtml (non-html tag, or a strict html5lib parse error), SecurityRisk (unsafe element,
    javascript: URL), SecurityRiskAttr (event handler or unknown attribute),
    DangerousStyleAttr, ContainsRelRef (relative URL in any URL attribute)."""
    check_chars(rep, url, where + " (HTML)", fragment)
    if html5lib is not None:
        try:
            html5lib.HTMLParser(strict=True).parseFragment(fragment)
        except Exception as e:  # html5lib.html5parser.ParseError
            rep.add(url, "NotHtml", where, f"Invalid HTML (html5lib strict): {short(str(e), 120)}")
    scan = HtmlScan()
    try:
        scan.feed(fragment)
        scan.close()
    except Exception as e:  # HTMLParser is very lenient; this is unexpected
        rep.add(url, "NotHtml", where, f"HTML could not be parsed: {e}")
        return
    for tag, attrs in scan.tags:
        if tag not in HTML_ELEMENTS:
            rep.add(url, "NotHtml", where, f"Non-html tag <{tag}> in {where}")
            continue
        if tag in UNSAFE_TAGS:
            rep.add(url, "SecurityRisk", where, f"{where} should not contain {tag} tag")
        for name, value in attrs:
            lname = name.lower()
            if lname == "style":
                if value and DANGEROUS_CSS.search(value):
                    rep.add(url, "DangerousStyleAttr", where,
                            f"dangerous style attribute on <{tag}>: {short(value, 60)}")
            elif lname not in SAFE_ATTRS and not lname.startswith("data-"):
                rep.add(url, "SecurityRiskAttr", where,
                        f"{where} should not contain {lname} attribute (on <{tag}>)")
            if value is None:
                continue
            values = []
            if lname in URL_ATTRS:
                values = [value]
            elif lname == "srcset":
                values = [c.strip().split()[0] for c in value.split(",") if c.strip()]
            for v in values:
                compact = re.sub(r"[\x00-\x20]", "", v).lower()
                if compact.startswith(UNSAFE_SCHEMES):
                    rep.add(url, "SecurityRisk", where,
                            f"{where} should not contain {compact.split(':')[0]}: URL "
                            f"(<{tag} {lname}={short(v, 50)!r}>)")
                elif not SCHEME_RE.match(v.strip()):
                    rep.add(url, "ContainsRelRef", where,
                            f"{where} should not contain relative URL references: "
                            f"<{tag} {lname}={short(v, 60)!r}>")


HTML_END_TAG_NAME = re.compile(r"</(\w+)>")
ENTITY_LIKE = re.compile(r"&(#?\w+)")


def check_plain_text(rep: Report, url: str, where: str, text: str, rule: str = "ContainsHTML") -> None:
    """The feedvalidator's nonhtml rule for plain-text elements (titles, categories, Atom
    type="text"): no end tag of an HTML element and no HTML entity reference in the decoded
    text (it would be shown literally by some readers and decoded by others)."""
    tags = [t for t in HTML_END_TAG_NAME.findall(text) if t.lower() in HTML_ELEMENTS]
    if tags:
        rep.add(url, rule, where, f"{where} should not contain HTML (</{tags[0]}>): {short(text)}")
        return
    for name in ENTITY_LIKE.findall(text):
        if name in html.entities.name2codepoint or name == "apos" or not name.isalpha():
            rep.add(url, rule, where,
                    f"{where} should not contain HTML (entity &{name};): {short(text)}")
            return


def rss_character_data(rep: Report, url: str, text: str) -> None:
    """The feedvalidator's RSS Profile check (CharacterData warning): in RSS 2.0 plain-text
    elements, "&" and "<" should be written as hexadecimal character references (&#x26;,
    &#x3C;).  Like the validator, a decoded value containing "&#x", "&#<digit>", "<letter" or
    "</" is flagged unless the source line where the element starts contains "&#x"."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    has_hex = ["&#x" in ln for ln in lines]
    plain = {("channel", "title"), ("channel", "description"), ("channel", "copyright"),
             ("channel", "category"), ("item", "title"), ("item", "category"),
             ("item", "source")}
    p = xml.parsers.expat.ParserCreate()
    stack: list[tuple[str, list | None]] = []
    found: list[tuple[str, int, str]] = []

    def start(name, attrs):
        parent = stack[-1][0] if stack else None
        rec = [f"{parent}/{name}", p.CurrentLineNumber, []] if (parent, name) in plain else None
        stack.append((name, rec))

    def end(name):
        _, rec = stack.pop()
        if rec is not None:
            found.append((rec[0], rec[1], "".join(rec[2])))

    def chars(data):
        if stack and stack[-1][1] is not None:
            stack[-1][1][2].append(data)

    p.StartElementHandler, p.EndElementHandler, p.CharacterDataHandler = start, end, chars
    try:
        p.Parse(text.encode("utf-8"), True)
    except xml.parsers.expat.ExpatError:
        return
    for path, line, value in found:
        if re.search(r"&#[x0-9]|<[/a-zA-Z]", value) and not has_hex[line - 1]:
            rep.add(url, "CharacterData", path,
                    f'{path} {short(value, 60)!r}: Encode "&" and "<" in plain text using '
                    f'hexadecimal character references (&#x26; &#x3C;) (RSS Profile)')


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------


class Zone:
    def __init__(self, name: str):
        self.name = name
        self.tz = None
        if ZoneInfo is not None:
            try:
                self.tz = ZoneInfo(name)
            except Exception:
                self.tz = None
        if self.tz is None:
            # Asia/Ho_Chi_Minh has been +07:00 since 1975; used when tzdata is missing.
            self.tz = dt.timezone(dt.timedelta(hours=7))

    def offset_at(self, epoch: float) -> dt.timedelta:
        d = dt.datetime.fromtimestamp(epoch, dt.timezone.utc).astimezone(self.tz)
        return d.utcoffset()


def fmt_offset(td: dt.timedelta, colon: bool) -> str:
    minutes = int(td.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}" if colon else f"{sign}{h:02d}{m:02d}"


def parse_rfc822(rep, url, where, value, zone: Zone, now: float):
    """Returns the epoch or None; reports InvalidRFC2822Date / IncorrectDOW / offset."""
    v = value.strip()
    m = RFC822_RE.match(v)
    if not m:
        if RFC822_LOOSE_RE.match(v.lower()):
            rep.add(url, "ProblematicalRFC822Date", where,
                    f"{where} {v!r} is an RFC-822 date readers may misparse; DESIGN wants "
                    f"'Wed, 22 Mar 2023 10:17:00 +0700' (English names, numeric offset)")
        else:
            rep.add(url, "InvalidRFC2822Date", where,
                    f"{where} must be an RFC-822 date (English day/month names, numeric "
                    f"offset, e.g. 'Wed, 22 Mar 2023 10:17:00 +0700'): {v!r}")
        return None
    dow, day, mon, year, hh, mi, ss, sign, oh, om, named = m.groups()
    if v != value:
        rep.add(url, "UnexpectedWhitespace", where, f"whitespace around date {value!r}")
    if dow is None:
        rep.add(url, "MissingDayOfWeek", where,
                f"{where} {v!r} has no day of week (DESIGN: 'Wed, 22 Mar 2023 10:17:00 +0700')")
    if ss is None:
        rep.add(url, "MissingSeconds", where,
                f"{where} {v!r} has no seconds (DESIGN: 'Wed, 22 Mar 2023 10:17:00 +0700')")
    if named:
        rep.add(url, "WrongOffset", where,
                f"{where} {v!r}: zone name {named} instead of the numeric offset "
                f"(DESIGN: numeric offset +0700, never GMT/ICT)")
    try:
        if named:
            off = dt.timedelta(hours=NAMED_ZONES[named])
        else:
            off = dt.timedelta(hours=int(oh), minutes=int(om)) * (1 if sign == "+" else -1)
        local = dt.datetime(int(year), MONTHS.index(mon) + 1, int(day), int(hh), int(mi),
                            int(ss or 0), tzinfo=dt.timezone(off))
    except ValueError as e:
        rep.add(url, "InvalidRFC2822Date", where, f"{where} is not a real date ({e}): {v!r}")
        return None
    if dow is not None and DAYS[local.weekday()] != dow:
        rep.add(url, "IncorrectDOW", where,
                f"incorrect day of week: {v!r} is a {DAYS[local.weekday()]}")
    epoch = local.timestamp()
    want = zone.offset_at(epoch)
    if off != want and not named:
        rep.add(url, "WrongOffset", where,
                f"{where} {v!r}: offset must be the newsroom's {fmt_offset(want, False)} "
                f"(DESIGN: RSS dates ... numeric offset +0700)")
    check_plausible(rep, url, where, v, epoch, now)
    return epoch


def parse_rfc3339(rep, url, where, value, zone: Zone, now: float):
    v = value.strip()
    m = RFC3339_RE.match(v)
    if not m or v != value:
        rep.add(url, "InvalidRFC3339Date", where,
                f"{where} must be an RFC-3339 date-time: {value!r}")
        if not m:
            return None
    try:
        d = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError as e:
        rep.add(url, "InvalidRFC3339Date", where, f"{where} is not a real date ({e}): {v!r}")
        return None
    epoch = d.timestamp()
    want = zone.offset_at(epoch)
    if d.utcoffset() != want:
        rep.add(url, "WrongOffset", where,
                f"{where} {v!r}: offset must be the newsroom's {fmt_offset(want, True)} "
                f"(DESIGN: Atom and JSON Feed: RFC 3339 ...+07:00)")
    check_plausible(rep, url, where, v, epoch, now)
    return epoch


def check_plausible(rep, url, where, v, epoch, now):
    if epoch > now + 600:
        rep.add(url, "ImplausibleDate", where,
                f"{where} {v!r} is in the future (embargoed item shown?)")
    elif epoch < 631152000:  # 1990-01-01
        rep.add(url, "ImplausibleDate", where, f"{where} {v!r} is implausibly old")


def iso_utc(epoch):
    if epoch is None:
        return "None"
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Parsed documents
# --------------------------------------------------------------------------------------------


class Item:
    __slots__ = ("id", "title", "link", "published", "updated", "links_alt", "summary", "content",
                 "images")

    def __init__(self, id=None, title=None, link=None, published=None, updated=None):
        self.id = id
        self.title = title
        self.link = link
        self.published = published
        self.updated = updated
        self.links_alt = []
        self.summary = None  # as plain text
        self.content = None  # the HTML string
        self.images: set[str] = set()  # photo URLs (enclosure, media:content, JSON image)


class Doc:
    def __init__(self, fmt, url, page):
        self.fmt = fmt
        self.url = url
        self.page = page
        self.items: list[Item] = []
        self.fp_items: dict[str, Item] = {}
        self.fp_order: list[str] = []
        self.fp_title = None
        self.title = None
        self.lang = None
        self.updated = None
        self.next = None
        self.prev = None
        self.first = None
        self.body = b""
        self.broken = False
        self.self_href = None


def text_of(el) -> str:
    return "".join(el.itertext()) if el is not None else ""


def is_full_url(v: str | None) -> bool:
    return bool(v) and bool(FULL_URL_RE.match(v))


# --------------------------------------------------------------------------------------------
# The checker
# --------------------------------------------------------------------------------------------


class Checker:
    def __init__(self, args):
        self.args = args
        self.base = args.base.rstrip("/")
        self.rep = Report()
        self.zone = Zone(args.tz)
        self.now = time.time()
        self.xmllint = shutil.which("xmllint")
        self.site = args.site_data
        self.corpus = args.corpus_data

    # ---- generic document checks -----------------------------------------------------------

    def get(self, url: str, fmt: str | None) -> Response | None:
        r = fetch(url, self.args.timeout)
        if r.status is None:
            self.rep.add(url, "IOError", "GET", f"could not fetch: {r.error}")
            return None
        if r.status != 200:
            self.rep.add(url, "HttpError", "GET", f"Server returned {r.status}")
            return None
        self.rep.docs += 1
        if fmt:
            self.rep.docs_by_format[fmt] += 1
            ctype = r.headers.get("content-type", "")
            mime = ctype.split(";")[0].strip().lower()
            if mime != CONTENT_TYPES[fmt]:
                self.rep.add(url, "UnexpectedContentType", "Content-Type",
                             f"served as {ctype!r}, expected {CONTENT_TYPES[fmt]} "
                             f"(DESIGN: HTTP behaviour)")
            cs = re.search(r"charset=([\w-]+)", ctype, re.I)
            if fmt != "json" and cs and cs.group(1).lower() not in ("utf-8", "utf8"):
                self.rep.add(url, "EncodingMismatch", "Content-Type",
                             f"server reports charset {cs.group(1)!r}, body is UTF-8")
        return r

    def decode(self, url: str, body: bytes, fmt: str | None = None) -> str | None:
        if body.startswith(b"\xef\xbb\xbf"):
            if fmt == "json":  # fine in XML, but RFC 8259: JSON text MUST NOT begin with a BOM
                self.rep.add(url, "JSONError", "BOM", "JSON body starts with a byte order mark")
            body = body[3:]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as e:
            self.rep.add(url, "UnicodeError", "body", f"body is not UTF-8: {e}")
            return None
        check_chars(self.rep, url, "document", text)
        check_nfc(self.rep, url, "document", text)
        return text

    def well_formed_xml(self, url: str, body: bytes, text: str):
        """xmllint, expat and ElementTree; returns the root element or None."""
        ok = True
        if self.xmllint:
            p = subprocess.run([self.xmllint, "--noout", "--nonet", "-"], input=body,
                               capture_output=True)
            if p.returncode != 0:
                ok = False
                msg = p.stderr.decode("utf-8", "replace").strip().splitlines()
                self.rep.add(url, "SAXError", "xmllint",
                             "xmllint --noout: " + " | ".join(msg[:3]))
        parser = xml.parsers.expat.ParserCreate()
        try:
            parser.Parse(body, True)
        except xml.parsers.expat.ExpatError as e:
            ok = False
            self.rep.add(url, "SAXError", "expat", f"XML Parsing error: {e}")
        decl = re.match(r"<\?xml\s+([^?]*)\?>", text)
        if decl:
            ver = re.search(r"version\s*=\s*[\"']([^\"']*)", decl.group(1))
            if ver and ver.group(1) != "1.0":
                self.rep.add(url, "BadXmlVersion", "xml declaration",
                             f"Incorrect XML Version: {ver.group(1)}")
            enc = re.search(r"encoding\s*=\s*[\"']([^\"']*)", decl.group(1))
            if enc and enc.group(1).lower() not in ("utf-8", "utf8"):
                self.rep.add(url, "EncodingMismatch", "xml declaration",
                             f"declared encoding {enc.group(1)!r}, body is UTF-8")
        if re.search(r"<!DOCTYPE", text[:2000]):
            self.rep.add(url, "ContainsSystemEntity", "DOCTYPE",
                         "feeds should not carry a DOCTYPE / entities")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as e:
            if ok:
                self.rep.add(url, "SAXError", "xml.etree", f"XML Parsing error: {e}")
            return None
        return root if ok else None

    def feedparse(self, url, body, headers, fmt, doc: Doc):
        if feedparser is None:
            return
        d = feedparser.parse(
            body,
            response_headers={
                "content-type": headers.get("content-type", ""),
                "content-location": url,
            },
        )
        if d.bozo:
            self.rep.add(url, "FeedparserBozo", "feedparser",
                         f"feedparser bozo=1: {type(d.bozo_exception).__name__}: "
                         f"{d.bozo_exception}")
        want = {"rss": ("rss20",), "atom": ("atom10",)}[fmt]
        if d.version not in want:
            self.rep.add(url, "FeedparserVersion", "feedparser",
                         f"feedparser sees version {d.version!r}, expected {want[0]}")
        doc.fp_title = d.feed.get("title")
        for e in d.entries:
            it = Item(
                id=e.get("id"),
                title=e.get("title"),
                link=e.get("link"),
                published=calendar.timegm(e.published_parsed) if e.get("published_parsed") else None,
                updated=calendar.timegm(e.updated_parsed) if e.get("updated_parsed") else None,
            )
            # entry.summary, not summary_detail: feedparser 6 lets a later media:description
            # (the photo caption) overwrite summary_detail but keeps summary.
            sd = e.get("summary_detail") or {}
            if e.get("summary") is not None:
                it.summary = plain(e.get("summary"), sd.get("type", "text/html"))
            if it.id is None:
                self.rep.add(url, "FeedparserMissingId", "entry",
                             f"feedparser finds no id for entry {short(it.title, 50)!r}")
                continue
            doc.fp_items[it.id] = it
            doc.fp_order.append(it.id)

    def check_self(self, url, where, href, expected, want_type, typ, missing_rule="MissingSelf"):
        if href is None:
            self.rep.add(url, missing_rule, where, 'Missing atom:link with rel="self"')
            return
        if not is_full_url(href):
            self.rep.add(url, "InvalidFullLink", where,
                         f"self link must be a full and valid URL: {href!r}")
        if href != expected:
            self.rep.add(url, "SelfDoesntMatchLocation", where,
                         f"Self reference doesn't match document location: self={href!r}, "
                         f"expected {expected!r}")
        if typ is not None and typ.split(";")[0] not in (
                "application/atom+xml", "application/rss+xml", "application/rdf+xml"):
            self.rep.add(url, "SelfNotAtom", where, f"self link type {typ!r} is not a feed type")
        elif typ != want_type:
            self.rep.add(url, "InvalidSelfType", where,
                         f"self link type is {typ!r}, expected {want_type!r}")

    def check_paging_link(self, url, where, rel, href, canonical, page, want):
        """rel=next/previous/first: absolute, the canonical URL with ?page=N."""
        if href is None:
            return
        expected = canonical if want == 1 else f"{canonical}?page={want}"
        if href != expected:
            self.rep.add(url, "BadPagingLink", where,
                         f"rel={rel} on page {page} is {href!r}, expected {expected!r} "
                         f"(RFC 5005 paged feed)")

    # ---- RSS ------------------------------------------------------------------------------

    def check_rss(self, url, canonical, page, lang, root, doc: Doc):
        rep = self.rep
        if root.tag != "rss":
            rep.add(url, "UndefinedElement", "root", f"root element is {root.tag!r}, not rss")
            return
        if root.get("version") != "2.0":
            rep.add(url, "InvalidValue", "rss@version", f"version is {root.get('version')!r}")
        channels = root.findall("channel")
        if len(channels) != 1:
            rep.add(url, "MissingElement" if not channels else "DuplicateElement", "rss",
                    f"rss must contain exactly one channel (found {len(channels)})")
            if not channels:
                return
        ch = channels[0]
        counts = collections.Counter(c.tag for c in ch)
        for name in ("title", "link", "description"):
            if counts[name] == 0:
                rep.add(url, "MissingElement", "channel", f"Missing channel element: {name}")
            elif not text_of(ch.find(name)).strip():
                rep.add(url, "NotBlank", f"channel/{name}", f"{name} can not be blank")
        for name in ("title", "link", "description", "language", "lastBuildDate", "pubDate",
                     "generator", "docs", "ttl", "image", "copyright"):
            if counts[name] > 1:
                rep.add(url, "DuplicateElement", "channel", f"channel contains more than one {name}")
        doc.title = text_of(ch.find("title"))
        check_plain_text(rep, url, "channel/title", doc.title)
        for name in ("description", "copyright", "category"):
            for el in ch.findall(name):
                check_plain_text(rep, url, f"channel/{name}", text_of(el))
        clink = text_of(ch.find("link")).strip()
        if clink and not is_full_url(clink):
            rep.add(url, "InvalidFullLink", "channel/link", f"link must be a full and valid URL: {clink!r}")
        language = ch.find("language")
        if language is None:
            rep.add(url, "MissingElement", "channel",
                    "Missing channel element: language (DESIGN: RSS channel has <language>)")
        else:
            doc.lang = text_of(language).strip()
            if not LANG_RE.match(doc.lang):
                rep.add(url, "InvalidLanguage", "channel/language",
                        f"language must be an ISO-639 language code: {doc.lang!r}")
            elif doc.lang.lower() != lang:
                rep.add(url, "LanguageMismatch", "channel/language",
                        f"language is {doc.lang!r} but the feed is /{lang}/")
        for name in ("lastBuildDate", "pubDate"):
            for el in ch.findall(name):
                e = parse_rfc822(rep, url, f"channel/{name}", text_of(el), self.zone, self.now)
                if name == "lastBuildDate":
                    doc.updated = e
        # atom:link rel=self / paging / hub
        selfs = []
        for al in ch.findall(f"{{{ATOM}}}link"):
            rel = al.get("rel", "alternate")
            href = al.get("href")
            if href is None:
                rep.add(url, "MissingHref", "channel/atom:link", "atom:link must have an href attribute")
                continue
            if rel == "self":
                selfs.append(al)
            elif rel == "next":
                doc.next = href
            elif rel in ("previous", "prev"):
                doc.prev = href
            elif rel == "first":
                doc.first = href
            if not is_full_url(href):
                rep.add(url, "InvalidFullLink", f"channel/atom:link[@rel={rel}]",
                        f"href must be a full and valid URL: {href!r}")
        if len(selfs) > 1:
            rep.add(url, "DuplicateAtomLink", "channel/atom:link", "more than one rel=self link")
        s = selfs[0] if selfs else None
        self.check_self(url, "channel/atom:link[@rel=self]", s.get("href") if s is not None else None,
                        url, "application/rss+xml", s.get("type") if s is not None else None,
                        missing_rule="MissingAtomSelfLink")
        doc.self_href = s.get("href") if s is not None else None

        guids = collections.Counter()
        for idx, item in enumerate(ch.findall("item"), 1):
            self.check_rss_item(url, idx, item, doc, guids)
        for g, n in guids.items():
            if n > 1:
                rep.add(url, "DuplicateValue", "item/guid",
                        f"guid values must not be duplicated within a feed: {g!r} x{n}")

    def check_rss_item(self, url, idx, item, doc: Doc, guids):
        rep = self.rep
        counts = collections.Counter(c.tag for c in item)
        where = f"item[{idx}]"
        title_el = item.find("title")
        title = text_of(title_el) if title_el is not None else None
        if title is not None:
            where = f"item[{idx}] {short(title, 40)!r}"
        if title_el is None and item.find("description") is None:
            rep.add(url, "ItemMustContainTitleOrDescription", where,
                    "item must contain either title or description")
        for name in ("title", "link", "description", "guid", "pubDate", f"{{{CONTENT}}}encoded",
                     "comments", "source", f"{{{DC}}}creator"):
            if counts[name] > 1:
                rep.add(url, "DuplicateElement", where, f"item contains more than one {local(name)}")
        if title is not None:
            check_plain_text(rep, url, f"{where}/title", title)
            if not title.strip():
                rep.add(url, "NotBlank", f"{where}/title", "title can not be blank")
        link = text_of(item.find("link")).strip() if item.find("link") is not None else None
        if link is None:
            rep.add(url, "MissingItemLink", where, "item should contain a link element")
        elif not is_full_url(link):
            rep.add(url, "InvalidFullLink", f"{where}/link", f"link must be a full and valid URL: {link!r}")
        guid_el = item.find("guid")
        gid = None
        if guid_el is None:
            rep.add(url, "MissingGuid", where, "item should contain a guid element")
        else:
            gid = text_of(guid_el).strip()
            guids[gid] += 1
            perm = guid_el.get("isPermaLink", "true")
            if perm not in ("true", "false"):
                rep.add(url, "InvalidBooleanAttribute", f"{where}/guid",
                        "isPermaLink attribute of guid must be 'true' or 'false'")
            if perm != "false" and not is_full_url(gid):
                rep.add(url, "InvalidHttpGUID", f"{where}/guid",
                        "guid must be a full URL, unless isPermaLink attribute is false")
            if gid.startswith("tag:") and not TAG_URI_RE.match(gid):
                rep.add(url, "InvalidTAG", f"{where}/guid", f"guid is not a valid TAG: {gid!r}")
        pub = None
        pd = item.find("pubDate")
        if pd is None:
            rep.add(url, "MissingElement", where, "Missing item element: pubDate")
        else:
            pub = parse_rfc822(rep, url, f"{where}/pubDate", text_of(pd), self.zone, self.now)
        # description before content:encoded
        tags = [c.tag for c in item]
        if f"{{{CONTENT}}}encoded" in tags:
            ci = tags.index(f"{{{CONTENT}}}encoded")
            if "description" not in tags:
                rep.add(url, "NeedDescriptionBeforeContent", where,
                        "item has content:encoded but no description (DESIGN: description "
                        "(summary) before content:encoded)")
            elif tags.index("description") > ci:
                rep.add(url, "NeedDescriptionBeforeContent", where,
                        "description must come before content:encoded (feedvalidator; DESIGN: "
                        "Rendering rules)")
        for name in ("description", f"{{{CONTENT}}}encoded"):
            for el in item.findall(name):
                check_html(rep, url, f"{where}/{local_prefixed(name)}", text_of(el))
        for el in item.findall("category") + item.findall("source"):
            check_plain_text(rep, url, f"{where}/{el.tag}", text_of(el))
            if el.tag == "category" and not text_of(el).strip():
                rep.add(url, "NotBlank", f"{where}/category", "category can not be blank")
        if item.find(f"{{{DC}}}creator") is None and item.find("author") is None:
            rep.add(url, "MissingElement", where,
                    "Missing item element: dc:creator (DESIGN: items have dc:creator)")
        encs = item.findall("enclosure")
        if len(encs) > 1:
            rep.add(url, "DuplicateEnclosure", where, "item contains more than one enclosure")
        for enc in encs:
            self.check_enclosure(url, f"{where}/enclosure", enc)
        for mc in item.iter(f"{{{MEDIA}}}content"):
            u = mc.get("url")
            if u is not None and not is_full_url(u):
                rep.add(url, "InvalidURLAttribute", f"{where}/media:content",
                        f"url attribute of media:content must be a full URL: {u!r}")
            fs = mc.get("fileSize")
            if fs is not None and not re.fullmatch(r"[1-9]\d*", fs):
                rep.add(url, "InvalidIntegerAttribute", f"{where}/media:content",
                        f"fileSize attribute of media:content must be a positive integer: {fs!r}")
        it = Item(id=gid, title=title, link=link, published=pub)
        if item.find("description") is not None:
            it.summary = plain(text_of(item.find("description")), "text/html")
        if item.find(f"{{{CONTENT}}}encoded") is not None:
            it.content = text_of(item.find(f"{{{CONTENT}}}encoded"))
        it.images = {e.get("url") for e in encs} | \
            {mc.get("url") for mc in item.iter(f"{{{MEDIA}}}content")}
        doc.items.append(it)

    def check_enclosure(self, url, where, enc):
        rep = self.rep
        for attr in ("url", "length", "type"):
            if enc.get(attr) is None:
                rep.add(url, "MissingAttribute", where, f"Missing enclosure attribute: {attr}")
        u, n, t = enc.get("url"), enc.get("length"), enc.get("type")
        if u is not None and not is_full_url(u):
            rep.add(url, "InvalidURLAttribute", where, f"url attribute of enclosure must be a full URL: {u!r}")
        if n is not None and not re.fullmatch(r"[1-9]\d*", n):
            rep.add(url, "InvalidIntegerAttribute", where,
                    f"length attribute of enclosure must be a positive integer: {n!r}")
        if t is not None and not MIME_RE.match(t):
            rep.add(url, "InvalidMIMEAttribute", where,
                    f"type attribute of enclosure must be a valid MIME type: {t!r}")

    # ---- Atom -----------------------------------------------------------------------------

    def check_atom(self, url, canonical, page, lang, root, doc: Doc):
        rep = self.rep
        A = f"{{{ATOM}}}"
        if root.tag != A + "feed":
            rep.add(url, "UndefinedElement", "root", f"root element is {root.tag!r}, not atom:feed")
            return
        xl = root.get(XML_LANG)
        if xl is None:
            rep.add(url, "MissingAttribute", "feed",
                    "Missing feed attribute: xml:lang (DESIGN: Atom has xml:lang)")
        else:
            doc.lang = xl
            if not LANG_RE.match(xl):
                rep.add(url, "InvalidLanguage", "feed/@xml:lang", f"invalid xml:lang {xl!r}")
            elif xl.lower() != lang:
                rep.add(url, "LanguageMismatch", "feed/@xml:lang",
                        f"xml:lang is {xl!r} but the feed is /{lang}/")
        counts = collections.Counter(c.tag for c in root)
        for name in ("id", "title", "updated"):
            if counts[A + name] == 0:
                rep.add(url, "MissingElement", "feed", f"Missing feed element: {name}")
        for name in ("id", "title", "updated", "subtitle", "rights", "generator", "icon", "logo"):
            if counts[A + name] > 1:
                rep.add(url, "DuplicateElement", "feed", f"feed contains more than one {name}")
        fid = text_of(root.find(A + "id")).strip()
        if fid:
            self.check_atom_id(url, "feed/id", fid)
        doc.title = self.atom_text(url, "feed/title", root.find(A + "title"))
        upd = root.find(A + "updated")
        if upd is not None:
            doc.updated = parse_rfc3339(rep, url, "feed/updated", text_of(upd), self.zone, self.now)
        feed_author = self.check_atom_authors(url, "feed", root)
        links = root.findall(A + "link")
        selfs = [l for l in links if l.get("rel") == "self"]
        self.check_atom_links(url, "feed", links)
        s = selfs[0] if selfs else None
        self.check_self(url, "feed/link[@rel=self]", s.get("href") if s is not None else None,
                        url, "application/atom+xml", s.get("type") if s is not None else None)
        doc.self_href = s.get("href") if s is not None else None
        for l in links:
            rel = l.get("rel", "alternate")
            if rel == "next":
                doc.next = l.get("href")
            elif rel in ("previous", "prev"):
                doc.prev = l.get("href")
            elif rel == "first":
                doc.first = l.get("href")
        ids = collections.Counter()
        for idx, entry in enumerate(root.findall(A + "entry"), 1):
            self.check_atom_entry(url, idx, entry, doc, ids, feed_author, lang)
        for i, n in ids.items():
            if n > 1:
                rep.add(url, "DuplicateEntries", "entry/id",
                        f"Two entries with the same id: {i!r} x{n}")
        if doc.updated is not None:
            newer = [it for it in doc.items if it.updated and it.updated > doc.updated]
            if newer:
                rep.add(url, "FeedUpdatedTooOld", "feed/updated",
                        f"feed updated {iso_utc(doc.updated)} is older than entry "
                        f"{newer[0].id}'s updated {iso_utc(newer[0].updated)} (DESIGN: updated = "
                        f"newest updated_at shown)")

    def check_atom_id(self, url, where, v):
        if v.startswith("tag:"):
            if not TAG_URI_RE.match(v):
                self.rep.add(url, "InvalidTAG", where, f"{where} is not a valid TAG: {v!r}")
        elif not SCHEME_RE.match(v) or re.search(r"\s", v):
            self.rep.add(url, "InvalidURI", where, f"{where} is not a valid URI: {v!r}")

    def atom_text(self, url, where, el):
        if el is None:
            return None
        typ = el.get("type", "text")
        if typ == "text":
            t = text_of(el)
            check_plain_text(self.rep, url, where, t, rule="ContainsUndeclaredHTML")
            return t
        if typ == "html":
            check_html(self.rep, url, where, text_of(el))
            return html.unescape(re.sub(r"<[^>]*>", "", text_of(el)))
        if typ == "xhtml":
            div = el.find("{http://www.w3.org/1999/xhtml}div")
            if div is None:
                self.rep.add(url, "MissingXhtmlDiv", where, "Missing xhtml:div")
            return text_of(el)
        self.rep.add(url, "InvalidTextType", where, f"type must be text, html or xhtml: {typ!r}")
        return text_of(el)

    def check_atom_authors(self, url, where, el) -> bool:
        A = f"{{{ATOM}}}"
        authors = el.findall(A + "author")
        for a in authors:
            if a.find(A + "name") is None or not text_of(a.find(A + "name")).strip():
                self.rep.add(url, "MissingElement", f"{where}/author", "Missing author element: name")
            u = a.find(A + "uri")
            if u is not None and not is_full_url(text_of(u).strip()):
                self.rep.add(url, "InvalidFullLink", f"{where}/author/uri",
                             f"uri must be a full and valid URL: {text_of(u)!r}")
        return bool(authors)

    def check_atom_links(self, url, where, links):
        seen = collections.Counter()
        for l in links:
            href = l.get("href")
            rel = l.get("rel", "alternate")
            if href is None:
                self.rep.add(url, "MissingHref", f"{where}/link", "link must have an href attribute")
                continue
            if not is_full_url(href):
                self.rep.add(url, "InvalidFullLink", f"{where}/link[@rel={rel}]",
                             f"href must be a full and valid URL: {href!r}")
            if rel not in ATOM_RELS and not SCHEME_RE.match(rel):
                self.rep.add(url, "UnregisteredAtomLinkRel", f"{where}/link",
                             f"{rel} is not a registered link relationship")
            t = l.get("type")
            if t is not None and not MIME_RE.match(t):
                self.rep.add(url, "InvalidMIMEAttribute", f"{where}/link",
                             f"type attribute of link must be a valid MIME type: {t!r}")
            if l.get("title") is not None:
                check_plain_text(self.rep, url, f"{where}/link/@title", l.get("title"))
            if where != "feed" and rel in ("current", "first", "last", "next", "next-archive",
                                            "prev-archive", "previous"):
                self.rep.add(url, "FeedHistoryRelInEntry", f"{where}/link",
                             f"rel={rel} (RFC 5005) belongs on the feed, not on an entry")
            ln = l.get("length")
            if ln is not None and not re.fullmatch(r"\d+", ln):
                self.rep.add(url, "InvalidIntegerAttribute", f"{where}/link",
                             f"length attribute of link must be an integer: {ln!r}")
            seen[(rel, t, l.get("hreflang"))] += 1
        for (rel, t, hl), n in seen.items():
            if n > 1:
                self.rep.add(url, "DuplicateAtomLink", f"{where}/link",
                             f"Duplicate link with the same rel, type and hreflang: "
                             f"rel={rel} type={t} hreflang={hl} x{n}")

    def check_atom_entry(self, url, idx, entry, doc: Doc, ids, feed_author, lang):
        rep = self.rep
        A = f"{{{ATOM}}}"
        counts = collections.Counter(c.tag for c in entry)
        title = self.atom_text(url, f"entry[{idx}]/title", entry.find(A + "title"))
        where = f"entry[{idx}] {short(title, 40)!r}" if title is not None else f"entry[{idx}]"
        for name in ("id", "title", "updated"):
            if counts[A + name] == 0:
                rep.add(url, "MissingElement", where, f"Missing entry element: {name}")
        for name in ("id", "title", "updated", "published", "summary", "content", "rights", "source"):
            if counts[A + name] > 1:
                rep.add(url, "DuplicateElement", where, f"entry contains more than one {name}")
        eid = text_of(entry.find(A + "id")).strip() if entry.find(A + "id") is not None else None
        if eid:
            ids[eid] += 1
            self.check_atom_id(url, f"{where}/id", eid)
        if not feed_author and not self.check_atom_authors(url, where, entry):
            rep.add(url, "MissingElement", where,
                    "Missing entry element: author (no feed-level author either)")
        elif feed_author:
            self.check_atom_authors(url, where, entry)
        upd = pub = None
        if entry.find(A + "updated") is not None:
            upd = parse_rfc3339(rep, url, f"{where}/updated", text_of(entry.find(A + "updated")),
                                self.zone, self.now)
        if entry.find(A + "published") is not None:
            pub = parse_rfc3339(rep, url, f"{where}/published",
                                text_of(entry.find(A + "published")), self.zone, self.now)
        if pub is not None and upd is not None and upd < pub:
            rep.add(url, "UpdatedBeforePublished", where,
                    f"updated {iso_utc(upd)} is before published {iso_utc(pub)}")
        links = entry.findall(A + "link")
        self.check_atom_links(url, where, links)
        alts = [l for l in links if l.get("rel", "alternate") == "alternate"]
        content = entry.find(A + "content")
        if not alts and content is None:
            rep.add(url, "MissingContentOrAlternate", where,
                    "entry must have a content element or a link with rel=alternate")
        if content is None and entry.find(A + "summary") is None:
            rep.add(url, "MissingTextualContent", where, "entry has neither content nor summary")
        first = alts[0].get("href") if alts else None
        last = alts[-1].get("href") if alts else None
        if alts:
            if alts[0].get("hreflang") not in (None, lang):
                rep.add(url, "FirstAlternateIsTranslation", where,
                        f"first rel=alternate link has hreflang={alts[0].get('hreflang')!r} "
                        f"({first}); readers that take the first (feed-rs) get a translation")
            if first != last:
                rep.add(url, "AlternateLinksDisagree", where,
                        f"first rel=alternate {first!r} != last rel=alternate {last!r}; "
                        f"readers disagree on the entry's own page (DESIGN: Rendering rules)")
            for l in alts:
                hl = l.get("hreflang")
                if hl is not None and hl.lower() == lang and l.get("href") != first:
                    rep.add(url, "AlternateLinksDisagree", where,
                            f"alternate with hreflang={hl} is {l.get('href')!r}, not the "
                            f"entry's own link {first!r}")
        if content is not None:
            if content.get("src") is None and entry.find(A + "summary") is None and \
                    content.get("type", "text") not in ("text", "html", "xhtml"):
                rep.add(url, "MissingSummary", where, "Missing summary")
            self.atom_text(url, f"{where}/content", content)
        summ = entry.find(A + "summary")
        if summ is not None:
            self.atom_text(url, f"{where}/summary", summ)
        it = Item(id=eid, title=title, link=first, published=pub, updated=upd)
        if summ is not None:
            it.summary = plain(text_of(summ), "text/html" if summ.get("type") == "html" else "text/plain")
        if content is not None and content.get("type") == "html":
            it.content = text_of(content)
        it.links_alt = [(l.get("href"), l.get("hreflang")) for l in alts]
        doc.items.append(it)

    # ---- JSON Feed ------------------------------------------------------------------------

    def check_json(self, url, canonical, page, lang, text, doc: Doc):
        rep = self.rep
        try:
            feed = json.loads(text)
        except json.JSONDecodeError as e:
            rep.add(url, "JSONError", "json.loads", f"JSON does not parse: {e}")
            return None
        self.json_strings(url, "", feed)
        if not isinstance(feed, dict):
            rep.add(url, "JSONFeedInvalid", "top level", "a JSON Feed is an object")
            return None
        if feed.get("version") != JSONFEED_11:
            rep.add(url, "JSONFeedVersion", "version",
                    f"version is {feed.get('version')!r}, expected {JSONFEED_11}")
        t = feed.get("title")
        if not isinstance(t, str) or not t.strip():
            rep.add(url, "MissingElement", "feed", "Missing feed member: title")
        doc.title = t
        fu = feed.get("feed_url")
        doc.self_href = fu
        if fu is None:
            rep.add(url, "MissingSelf", "feed_url", "Missing feed_url (JSON Feed's self link)")
        elif fu != url:
            rep.add(url, "SelfDoesntMatchLocation", "feed_url",
                    f"feed_url {fu!r} doesn't match document location {url!r}")
        hp = feed.get("home_page_url")
        if hp is not None and not is_full_url(hp):
            rep.add(url, "InvalidFullLink", "home_page_url", f"home_page_url must be a full URL: {hp!r}")
        lg = feed.get("language")
        if lg is None:
            rep.add(url, "MissingElement", "feed", "Missing feed member: language (DESIGN: JSON Feed has language)")
        else:
            doc.lang = lg
            if not isinstance(lg, str) or not LANG_RE.match(lg):
                rep.add(url, "InvalidLanguage", "language", f"invalid language {lg!r}")
            elif lg.lower() != lang:
                rep.add(url, "LanguageMismatch", "language", f"language is {lg!r} but the feed is /{lang}/")
        self.check_json_authors(url, "feed", feed)
        nu = feed.get("next_url")
        if nu is not None:
            if not isinstance(nu, str) or not is_full_url(nu):
                rep.add(url, "InvalidFullLink", "next_url", f"next_url must be a full URL: {nu!r}")
            else:
                doc.next = nu
        items = feed.get("items")
        if not isinstance(items, list):
            rep.add(url, "MissingElement", "feed", "Missing feed member: items (an array)")
            return feed
        ids = collections.Counter()
        for idx, item in enumerate(items, 1):
            self.check_json_item(url, idx, item, doc, ids)
        for i, n in ids.items():
            if n > 1:
                rep.add(url, "DuplicateValue", "items[].id",
                        f"id values must not be duplicated within a feed: {i!r} x{n}")
        return feed

    def json_strings(self, url, path, v):
        if isinstance(v, str):
            check_chars(self.rep, url, f"JSON {path or '/'}", v, refs=path.endswith("content_html"))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                self.json_strings(url, f"{path}[{i}]", x)
        elif isinstance(v, dict):
            for k, x in v.items():
                check_chars(self.rep, url, f"JSON key {path}", k, refs=False)
                self.json_strings(url, f"{path}.{k}", x)

    def check_json_authors(self, url, where, obj):
        au = obj.get("authors")
        if au is None:
            return False
        if not isinstance(au, list) or not all(isinstance(a, dict) for a in au):
            self.rep.add(url, "JSONFeedInvalid", f"{where}.authors", "authors must be an array of objects")
            return False
        for a in au:
            if not any(k in a for k in ("name", "url", "avatar")):
                self.rep.add(url, "JSONFeedInvalid", f"{where}.authors",
                             "an author must have at least one of name, url, avatar")
        return bool(au)

    def check_json_item(self, url, idx, item, doc: Doc, ids):
        rep = self.rep
        if not isinstance(item, dict):
            rep.add(url, "JSONFeedInvalid", f"items[{idx}]", "an item is an object")
            return
        title = item.get("title")
        where = f"items[{idx}] {short(title, 40)!r}" if isinstance(title, str) else f"items[{idx}]"
        iid = item.get("id")
        if iid is None:
            rep.add(url, "MissingElement", where, "Missing item member: id")
        elif not isinstance(iid, str) or not iid.strip():
            rep.add(url, "JSONFeedInvalid", f"{where}.id", f"id must be a non-empty string: {iid!r}")
        else:
            ids[iid] += 1
        if isinstance(title, str):
            check_plain_text(rep, url, f"{where}.title", title)
        if "content_html" not in item and "content_text" not in item:
            rep.add(url, "MissingElement", where, "item must have content_html or content_text")
        ch = item.get("content_html")
        if isinstance(ch, str):
            check_html(rep, url, f"{where}.content_html", ch)
        link = item.get("url")
        if link is not None and (not isinstance(link, str) or not is_full_url(link)):
            rep.add(url, "InvalidFullLink", f"{where}.url", f"url must be a full URL: {link!r}")
        for k in ("external_url", "image", "banner_image"):
            v = item.get(k)
            if v is not None and (not isinstance(v, str) or not is_full_url(v)):
                rep.add(url, "InvalidFullLink", f"{where}.{k}", f"{k} must be a full URL: {v!r}")
        pub = upd = None
        if "date_published" in item:
            pub = parse_rfc3339(rep, url, f"{where}.date_published", str(item["date_published"]),
                                self.zone, self.now)
        else:
            rep.add(url, "MissingElement", where, "Missing item member: date_published")
        if "date_modified" in item:
            upd = parse_rfc3339(rep, url, f"{where}.date_modified", str(item["date_modified"]),
                                self.zone, self.now)
        if pub is not None and upd is not None and upd < pub:
            rep.add(url, "UpdatedBeforePublished", where,
                    f"date_modified {iso_utc(upd)} is before date_published {iso_utc(pub)}")
        tags = item.get("tags")
        if tags is not None and (not isinstance(tags, list) or not all(isinstance(x, str) for x in tags)):
            rep.add(url, "JSONFeedInvalid", f"{where}.tags", "tags must be an array of strings")
        self.check_json_authors(url, where, item)
        for a_i, att in enumerate(item.get("attachments") or [], 1):
            aw = f"{where}.attachments[{a_i}]"
            if not isinstance(att, dict):
                rep.add(url, "JSONFeedInvalid", aw, "an attachment is an object")
                continue
            if not is_full_url(att.get("url")):
                rep.add(url, "InvalidURLAttribute", aw, f"attachment url must be a full URL: {att.get('url')!r}")
            mt = att.get("mime_type")
            if not isinstance(mt, str) or not MIME_RE.match(mt):
                rep.add(url, "InvalidMIMEAttribute", aw, f"attachment mime_type is required and valid: {mt!r}")
            sz = att.get("size_in_bytes")
            if sz is not None and (not isinstance(sz, int) or isinstance(sz, bool) or sz <= 0):
                rep.add(url, "InvalidIntegerAttribute", aw, f"size_in_bytes must be a positive integer: {sz!r}")
        it = Item(id=iid if isinstance(iid, str) else None,
                  title=title, link=link, published=pub, updated=upd)
        if isinstance(item.get("summary"), str):
            it.summary = plain(item["summary"], "text/plain")
        if isinstance(ch, str):
            it.content = ch
        if isinstance(item.get("image"), str):
            it.images = {item["image"]}
        doc.items.append(it)

    # ---- one document, one feed -----------------------------------------------------------

    def check_document(self, fmt, url, canonical, page, lang) -> Doc | None:
        r = self.get(url, fmt)
        if r is None:
            return None
        text = self.decode(url, r.body, fmt)
        if text is None:
            return None
        doc = Doc(fmt, url, page)
        doc.body = r.body
        if fmt == "json":
            if self.check_json(url, canonical, page, lang, text, doc) is None:
                doc.broken = True
        else:
            root = self.well_formed_xml(url, r.body, text)
            if root is None:
                doc.broken = True
            else:
                (self.check_rss if fmt == "rss" else self.check_atom)(url, canonical, page, lang, root, doc)
                if fmt == "rss":
                    rss_character_data(self.rep, url, text)
            self.feedparse(url, r.body, r.headers, fmt, doc)
        if page > 1:
            self.rep.pages_beyond_first += 1
            if not doc.items:
                self.rep.add(url, "EmptyPage", "page", f"page {page} has no items")
        self.rep.items_by_format[fmt] += len(doc.items)
        if fmt != "json":
            self.check_paging_link(url, "rel=first", "first", doc.first, canonical, page, 1)
            if page > 1:
                if doc.prev is None:
                    self.rep.add(url, "MissingPagingLink", "rel=previous",
                                 f"page {page} has no rel=previous link (RFC 5005)")
                self.check_paging_link(url, "rel=previous", "previous", doc.prev, canonical, page, page - 1)
            elif doc.prev is not None:
                self.rep.add(url, "BadPagingLink", "rel=previous", "page 1 has a rel=previous link")
        self.check_paging_link(url, "next", "next", doc.next, canonical, page, page + 1)
        if self.corpus is not None:
            self.check_against_corpus(url, doc, lang)
        return doc

    def walk(self, fmt, canonical, lang) -> list[Doc]:
        pages: list[Doc] = []
        url, page, seen = canonical, 1, set()
        while url and page <= MAX_PAGES:
            if url in seen:
                self.rep.add(url, "BadPagingLink", "next", "next links loop")
                break
            seen.add(url)
            doc = self.check_document(fmt, url, canonical, page, lang)
            if doc is None:
                break
            pages.append(doc)
            if doc.broken:
                break  # reported already; its links can't be trusted
            if not doc.next:
                # Is there really no further page?  (JSON: next_url present iff a next page.)
                probe = f"{canonical}?page={page + 1}"
                r = fetch(probe, self.args.timeout)
                self.rep.probes += 1
                if r.status == 200 and self.has_items(fmt, r.body):
                    what = "next_url" if fmt == "json" else "link rel=next"
                    self.rep.add(url, "MissingPagingLink", what,
                                 f"no {what} on page {page} but {probe} has items")
                elif r.status not in (404, 410, 200):
                    self.rep.add(probe, "HttpError", "GET",
                                 f"page after the last answered {r.status}, expected 404")
            url = doc.next
            page += 1
        # the first page again, with a tracking query: self link must stay clean
        if self.args.noise and pages and not pages[0].broken and pages[0].self_href == canonical:
            noisy = canonical + "?utm_source=feedcheck&utm_medium=feed"
            r = fetch(noisy, self.args.timeout)
            self.rep.noise_fetches += 1
            if r.status == 200:
                body = r.body.decode("utf-8", "replace")
                if fmt == "json":
                    try:
                        got = json.loads(body).get("feed_url")
                    except Exception:
                        got = None
                    if got != canonical:
                        self.rep.add(noisy, "SelfDoesntMatchLocation", "feed_url",
                                     f"feed_url with a tracking query is {got!r}, expected {canonical!r} "
                                     f"(DESIGN: no query noise)")
                else:
                    try:
                        root = ET.fromstring(r.body)
                        links = root.iter(f"{{{ATOM}}}link")
                        got = [l.get("href") for l in links if l.get("rel") == "self"]
                    except ET.ParseError:
                        got = None
                    if got != [canonical]:
                        self.rep.add(noisy, "SelfDoesntMatchLocation", "link[@rel=self]",
                                     f"self link with a tracking query is {got!r}, expected {canonical!r} "
                                     f"(DESIGN: no query noise)")
                if r.body != pages[0].body:
                    self.rep.add(noisy, "QueryNoiseChangesBody", "body",
                                 "a tracking query changes the body (cache/ETag split)")
        return pages

    @staticmethod
    def has_items(fmt, body: bytes) -> bool:
        try:
            if fmt == "json":
                return bool(json.loads(body).get("items"))
            root = ET.fromstring(body)
            return any(local(e.tag) in ("item", "entry") for e in root.iter())
        except Exception:
            return True

    # ---- cross-format agreement -----------------------------------------------------------

    def compare(self, stem, lang, res: dict[str, list[Doc]]):
        rep = self.rep
        where = stem + "{rss.xml,atom.xml,feed.json}"
        if not all(res.get(f) for f, _ in FORMATS):
            return
        if any(d.broken for f, _ in FORMATS for d in res[f]):
            return  # a document that does not parse is reported on its own
        npages = {f: len(res[f]) for f, _ in FORMATS}
        if len(set(npages.values())) > 1:
            rep.add(where, "PageCountMismatch", "paging",
                    f"formats have different numbers of pages: {npages}")
        for p in range(min(npages.values())):
            per = {f: [i.id for i in res[f][p].items] for f, _ in FORMATS}
            if not (per["rss"] == per["atom"] == per["json"]):
                if set(per["rss"]) == set(per["atom"]) == set(per["json"]):
                    rep.add(where, "OrderMismatch", f"page {p + 1}",
                            "the formats list the same ids in different orders")
                else:
                    every = set(per["rss"]) | set(per["atom"]) | set(per["json"])
                    rep.add(where, "PageMismatch", f"page {p + 1}",
                            f"page {p + 1} holds different ids per format: "
                            + "; ".join(f"{f} lacks {', '.join(sorted(short_id(i) for i in every - set(per[f])))}"
                                        for f, _ in FORMATS if every - set(per[f])))
        # feed titles
        titles = {"rss": res["rss"][0].title, "rss/feedparser": res["rss"][0].fp_title,
                  "atom": res["atom"][0].title, "atom/feedparser": res["atom"][0].fp_title,
                  "json": res["json"][0].title}
        if len(set(titles.values())) > 1:
            rep.add(where, "FeedTitleMismatch", "title", f"feed titles differ: {titles}")
        if res["rss"][0].updated is not None and res["atom"][0].updated is not None and \
                res["rss"][0].updated != res["atom"][0].updated:
            rep.add(where, "FeedUpdatedMismatch", "lastBuildDate/updated",
                    f"RSS lastBuildDate {iso_utc(res['rss'][0].updated)} != Atom updated "
                    f"{iso_utc(res['atom'][0].updated)}")

        own = {}
        fp = {}
        order = {}
        for f, _ in FORMATS:
            own[f] = {}
            order[f] = []
            fp[f] = {}
            for d in res[f]:
                for it in d.items:
                    if it.id is None:
                        continue
                    if it.id in own[f]:
                        rep.add(where, "DuplicateEntries", f"{f} pages",
                                f"id {it.id!r} appears on more than one page of the {f} feed")
                    own[f][it.id] = it
                    order[f].append(it)
                fp[f].update(d.fp_items)
            # newest first
            prev = None
            for it in order[f]:
                if prev is not None and it.published is not None and prev.published is not None \
                        and it.published > prev.published:
                    rep.add(where, "ItemsNotNewestFirst", f,
                            f"{it.id} ({iso_utc(it.published)}) comes after {prev.id} "
                            f"({iso_utc(prev.published)}) (DESIGN: items newest first)")
                    break
                prev = it
        ids = {f: set(own[f]) for f, _ in FORMATS}
        allids = ids["rss"] | ids["atom"] | ids["json"]
        for f, _ in FORMATS:
            lacking = sorted(allids - ids[f])
            if lacking:
                rep.add(where, "IdMismatch", f,
                        f"{len(lacking)} id(s) of the other formats missing from {f} "
                        f"(RSS guid = Atom id = JSON id): "
                        + ", ".join(short_id(i) for i in lacking[:8])
                        + (" …" if len(lacking) > 8 else ""))
        for i in sorted(allids):
            if any(i not in ids[f] for f, _ in FORMATS):
                continue
            r, a, j = own["rss"][i], own["atom"][i], own["json"][i]
            fr, fa = fp["rss"].get(i), fp["atom"].get(i)
            if fr is None or fa is None:
                rep.add(where, "FeedparserIdMismatch", i,
                        f"feedparser does not find id {i!r} in "
                        + ", ".join(f for f, x in (("rss", fr), ("atom", fa)) if x is None))
                continue
            self.agree(where, i, "TitleMismatch", "title", {
                "rss": r.title, "rss/feedparser": fr.title, "atom": a.title,
                "atom/feedparser": fa.title, "json": j.title})
            self.agree(where, i, "LinkMismatch", "link", {
                "rss": r.link, "rss/feedparser": fr.link, "atom first alternate": a.link,
                "atom/feedparser (last alternate)": fa.link, "json url": j.link})
            self.agree(where, i, "PublishedMismatch", "published (UTC)", {
                "rss pubDate": iso_utc(r.published), "rss/feedparser": iso_utc(fr.published),
                "atom": iso_utc(a.published), "atom/feedparser": iso_utc(fa.published),
                "json": iso_utc(j.published)})
            self.agree(where, i, "SummaryMismatch", "summary (as text)", {
                "rss description (as HTML)": r.summary, "rss/feedparser": fr.summary,
                "atom": a.summary, "atom/feedparser": fa.summary, "json": j.summary})
            self.agree(where, i, "ContentMismatch", "content HTML", {
                "rss content:encoded": r.content, "atom content": a.content,
                "json content_html": j.content})
            if j.images and not j.images <= r.images:
                rep.add(where, "ImageMissing", i,
                        f"JSON image {sorted(j.images)[0]!r} has no RSS enclosure or media:content "
                        f"(DESIGN: enclosure with a known length, otherwise media:content)")
            self.agree(where, i, "UpdatedMismatch", "updated (UTC)", {
                "atom": iso_utc(a.updated), "atom/feedparser": iso_utc(fa.updated),
                "json date_modified": iso_utc(j.updated)})
            # the reader's link must be the article's own page, not a translation
            for label, link in (("feedparser (atom)", fa.link), ("feedparser (rss)", fr.link),
                                ("json url", j.link)):
                if link and not urllib.parse.urlsplit(link).path.startswith(f"/{lang}/"):
                    rep.add(where, "EntryLinkIsTranslation", i,
                            f"{label} entry.link {link!r} is not a /{lang}/ page: readers open "
                            f"a translation instead of the article")

    def agree(self, where, i, rule, what, values: dict):
        if len(set(values.values())) > 1:
            groups = collections.defaultdict(list)
            for k, v in values.items():
                groups[v].append(k)
            desc = "; ".join(f"{'+'.join(ks)}={short(v, 70)!r}" for v, ks in groups.items())
            self.rep.add(where, rule, i, f"{what} differs between readers: {desc}")

    # ---- corpus ---------------------------------------------------------------------------

    def check_against_corpus(self, url, doc: Doc, lang):
        for it in doc.items:
            if not it.id:
                continue
            aid = it.id.rsplit(":", 1)[-1] if it.id.startswith("tag:") else None
            art = self.corpus.get(aid) if aid else None
            if art is None:
                continue
            self.rep.corpus_items += 1
            if art["status"] != "published":
                self.rep.add(url, "DraftShown", it.id, f"draft article {aid} is in the feed")
            if art["published"] is not None and art["published"] > self.now:
                self.rep.add(url, "EmbargoedItemShown", it.id,
                             f"article {aid} is scheduled for {iso_utc(art['published'])} but shown")
            if art["published"] is not None and it.published is not None and \
                    abs(art["published"] - it.published) > 0.5:
                self.rep.add(url, "PublishedNotSource", it.id,
                             f"{doc.fmt} published {iso_utc(it.published)} but the source's "
                             f"published_at {art['published_raw']!r} is {iso_utc(art['published'])}")
            if art["url"] and doc.fmt != "atom" and it.link and it.link != art["url"]:
                self.rep.add(url, "LinkNotSource", it.id,
                             f"{doc.fmt} link {it.link!r} but the source url is {art['url']!r}")
            if art["url"] and doc.fmt == "atom" and it.link and it.link != art["url"]:
                self.rep.add(url, "LinkNotSource", it.id,
                             f"atom first alternate {it.link!r} but the source url is {art['url']!r}")
            if art["lang"] and art["lang"] != lang:
                self.rep.add(url, "LanguageMismatch", it.id,
                             f"a {art['lang']} article in a /{lang}/ feed")

    # ---- the whole run --------------------------------------------------------------------

    def run(self) -> int:
        opml_url = self.base + "/feeds.opml"
        r = self.get(opml_url, None)
        if r is None:
            print(f"feedcheck: cannot fetch {opml_url}", file=sys.stderr)
            return 2
        text = self.decode(opml_url, r.body)
        if text is None:
            return 2
        ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("text/x-opml", "application/xml", "text/xml", "application/opml+xml",
                         "text/x-opml+xml"):
            self.rep.add(opml_url, "UnexpectedContentType", "Content-Type",
                         f"OPML served as {ctype!r}")
        root = self.well_formed_xml(opml_url, r.body, text)
        if root is None:
            return 2
        feeds = self.check_opml(opml_url, root)
        self.rep.feeds = len(feeds)
        for rss_url, lang in feeds:
            stem = rss_url[: -len("rss.xml")]
            res = {}
            for fmt, fname in FORMATS:
                res[fmt] = self.walk(fmt, stem + fname, lang)
            self.compare(stem, lang, res)
        return 0 if not self.rep.problems else 1

    def check_opml(self, url, root) -> list[tuple[str, str]]:
        rep = self.rep
        if root.tag != "opml":
            rep.add(url, "UndefinedElement", "root", f"root element is {root.tag!r}, not opml")
            return []
        if root.get("version") not in ("2.0", "1.0", "1.1"):
            rep.add(url, "InvalidOPMLVersion", "opml@version", f"version {root.get('version')!r}")
        head = root.find("head")
        if head is None or not text_of(head.find("title")).strip():
            rep.add(url, "MissingElement", "head", "Missing head element: title")
        body = root.find("body")
        if body is None:
            rep.add(url, "MissingElement", "opml", "Missing opml element: body")
            return []
        feeds, seen = [], collections.Counter()
        for o in body.iter("outline"):
            if o.get("text") is None:
                rep.add(url, "MissingAttribute", "outline", "Missing outline attribute: text")
            typ = o.get("type")
            x = o.get("xmlUrl")
            if typ is None and x is None:
                continue  # a folder
            if typ != "rss":
                rep.add(url, "InvalidOutlineType", "outline", f"outline type {typ!r} with xmlUrl {x!r}")
            if x is None:
                rep.add(url, "MissingXmlURL", "outline", f"outline {o.get('text')!r} has no xmlUrl")
                continue
            seen[x] += 1
            if seen[x] > 1:
                continue
            if not is_full_url(x):
                rep.add(url, "InvalidFullLink", "outline@xmlUrl", f"xmlUrl must be a full URL: {x!r}")
                continue
            if not x.startswith(self.base + "/"):
                rep.add(url, "OpmlUrlNotUnderBase", "outline@xmlUrl",
                        f"xmlUrl {x!r} is not under {self.base}/ (public_url vs --base?)")
            h = o.get("htmlUrl")
            if h is not None and not is_full_url(h):
                rep.add(url, "InvalidFullLink", "outline@htmlUrl", f"htmlUrl must be a full URL: {h!r}")
            path = urllib.parse.urlsplit(x).path
            m = re.match(r"^/([A-Za-z-]+)/(?:(?:tag|author)/[^/]+/|[^/]+/)?rss\.xml$", path)
            if not m:
                rep.add(url, "UnexpectedFeedUrl", "outline@xmlUrl",
                        f"xmlUrl {x!r} is not /{{lang}}/[.../]rss.xml")
                continue
            lang = m.group(1).lower()
            if o.get("language") not in (None, lang):
                rep.add(url, "LanguageMismatch", "outline@language",
                        f"outline language {o.get('language')!r} for {x!r}")
            feeds.append((x, lang))
        for x, n in seen.items():
            if n > 1:
                rep.add(url, "DuplicateValue", "outline@xmlUrl", f"xmlUrl listed {n} times: {x!r}")
        if self.site:
            listed = {urllib.parse.urlsplit(x).path for x, _ in feeds}
            for lang in self.site.get("languages", []):
                want = [f"/{lang}/rss.xml"]
                for c in self.site.get("categories", []):
                    slug = (c.get("slug") or {}).get(lang, c.get("id"))
                    want.append(f"/{lang}/{slug}/rss.xml")
                for p in want:
                    if p not in listed:
                        rep.add(url, "OpmlMissingFeed", "body",
                                f"{p} (a configured language/category feed) is not listed")
        return feeds


def plain(value: str, ctype: str) -> str:
    """The text a reader shows: HTML is parsed (tags dropped, references decoded)."""
    if "html" in ctype:
        value = html.unescape(re.sub(r"<[^>]*>", "", value))
    return " ".join(value.split())


def short_id(i: str) -> str:
    return i.rsplit(":", 1)[-1] if i.startswith("tag:") else i


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def local_prefixed(tag: str) -> str:
    if tag.startswith("{%s}" % CONTENT):
        return "content:" + local(tag)
    return local(tag)


# --------------------------------------------------------------------------------------------
# Site config and corpus
# --------------------------------------------------------------------------------------------


def load_site(path):
    if not path or tomllib is None or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return tomllib.load(f)


def load_corpus(directory, zone: Zone):
    if not directory or not os.path.isdir(directory):
        return None
    arts = {}
    for name in sorted(os.listdir(directory)):
        p = os.path.join(directory, name)
        objs = []
        try:
            if name.endswith(".json"):
                with open(p, encoding="utf-8") as f:
                    objs = [json.load(f)]
            elif name.endswith(".ndjson"):
                with open(p, encoding="utf-8") as f:
                    objs = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):
            continue
        for a in objs:
            if not isinstance(a, dict) or "id" not in a:
                continue
            raw = a.get("published_at")
            epoch = None
            if isinstance(raw, str):
                try:
                    d = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
                    if d.tzinfo is None:
                        d = d.replace(tzinfo=zone.tz)
                    epoch = d.timestamp()
                except ValueError:
                    pass
            arts[a["id"]] = {
                "published": epoch, "published_raw": raw, "url": a.get("url"),
                "lang": a.get("lang"), "status": a.get("status", "published"),
            }
    return arts


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def summary(ch: Checker, started: float, rc: int) -> str:
    rep = ch.rep
    by_rule = collections.Counter(p[1] for p in rep.problems)
    docs_feeds = sum(rep.docs_by_format.values())
    first_pages = docs_feeds - rep.pages_beyond_first
    lines = [
        f"feedcheck {ch.base}  ({dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M}Z, "
        f"{time.time() - started:.1f}s)",
        f"feeds in /feeds.opml: {rep.feeds}; documents checked: {docs_feeds} "
        f"({first_pages} first pages = {rep.feeds} feeds x 3 formats"
        f"{'' if first_pages == rep.feeds * 3 else ' (some missing)'}, "
        f"+ {rep.pages_beyond_first} later pages) + {rep.docs - docs_feeds} OPML",
        f"  by format: RSS {rep.docs_by_format['rss']}, Atom {rep.docs_by_format['atom']}, "
        f"JSON {rep.docs_by_format['json']}; extra probes: {rep.probes} page-after-last, "
        f"{rep.noise_fetches} tracking-query",
        f"items checked: {sum(rep.items_by_format.values())} (RSS {rep.items_by_format['rss']}, "
        f"Atom {rep.items_by_format['atom']}, JSON {rep.items_by_format['json']})"
        + (f"; {rep.corpus_items} matched against the source corpus" if ch.corpus is not None else ""),
        "checks: xmllint --noout + expat/ElementTree (RSS, Atom, OPML), json.loads, XML 1.0 Char, "
        "NFC, W3C feedvalidator rules (RSS 2.0, Atom 1.0), JSON Feed 1.1, "
        f"feedparser {getattr(feedparser, '__version__', '?')} cross-format agreement, "
        + (f"html5lib {html5lib.__version__} strict HTML parse" if html5lib else
           "no html5lib (strict HTML parse skipped)"),
        f"problems: {len(rep.problems)}"
        + (" (" + ", ".join(f"{r} {n}" for r, n in by_rule.most_common()) + ")" if by_rule else ""),
        f"result: {'PASS' if rc == 0 else 'FAIL'}",
    ]
    if not ch.xmllint:
        lines.insert(-1, "WARNING: xmllint not found; well-formedness checked by expat only")
    return "\n".join(lines)


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="http://127.0.0.1:8181", help="service base URL")
    ap.add_argument("--site", default=os.path.join(here, "..", "feeds", "site.toml"),
                    help="site.toml (for the time zone and the expected feed list)")
    ap.add_argument("--corpus", default=os.path.join(here, "..", "feeds", "articles"),
                    help="the sample articles directory, to check items against their source")
    ap.add_argument("--no-corpus", action="store_true", help="skip the source-corpus checks")
    ap.add_argument("--tz", default=None, help="newsroom time zone (default: from site.toml)")
    ap.add_argument("--no-noise", dest="noise", action="store_false",
                    help="don't re-fetch page 1 with a tracking query")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--summary-only", action="store_true", help="print only the summary")
    ap.add_argument("--max-problems", type=int, default=0,
                    help="print at most N problem lines (0: all)")
    args = ap.parse_args(argv)

    if feedparser is None:
        print("feedcheck: feedparser is missing (pip install feedparser)", file=sys.stderr)
        return 2
    args.site_data = load_site(args.site)
    if args.tz is None:
        args.tz = (args.site_data or {}).get("timezone", "Asia/Ho_Chi_Minh")
    zone = Zone(args.tz)
    args.corpus_data = None if args.no_corpus else load_corpus(args.corpus, zone)

    started = time.time()
    ch = Checker(args)
    rc = ch.run()
    if rc == 0 and ch.rep.problems:
        rc = 1
    if not args.summary_only:
        shown = ch.rep.problems if args.max_problems <= 0 else ch.rep.problems[: args.max_problems]
        for url, rule, where, msg in shown:
            print(f"[{rule}] {url} :: {where} :: {msg}")
        if len(shown) < len(ch.rep.problems):
            print(f"... {len(ch.rep.problems) - len(shown)} more problems not shown")
        if shown:
            print()
    print(summary(ch, started, rc))
    return rc


if __name__ == "__main__":
    sys.exit(main())
