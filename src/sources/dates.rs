//! Dates in upstream feeds, read as feedparser's date handlers read them, in the same order:
//! W3DTF / ISO 8601 with a space or a `T` (MSSQL style, with or without seconds, date only),
//! RFC 822 with every variation feeds use (no or a wrong or long weekday, long month names,
//! day and month swapped, two-digit years, no seconds, no time, `+07:00`, `GMT+07:00`,
//! `Etc/GMT`, named and military zones), the ISO 8601 templates (`20040105`, `-0312`,
//! ordinals), asctime (with or without a zone), Perforce's `2006/09/15`, and the Greek,
//! Hungarian and Korean forms feedparser knows.
//!
//! Where bantin reads more or differently, on purpose: a date without a zone is wall-clock time
//! in the site zone (DESIGN: naive times are site-local; feedparser assumes UTC), a date-only
//! value included; `GMT+7` and `+7` (one digit, as Vietnamese CMSs write) are read; zone names
//! feedparser does not know but Asian and European feeds use (`ICT`, `SGT`, `JST`, `CET`, …)
//! have their offsets (feedparser reads unknown names as UTC, which still holds for names in
//! neither table); an RFC 822 date with a weekday and no zone is read (feedparser gives up);
//! the ISO 8601 templates must match the whole text (feedparser accepts a matching prefix and
//! reads `16-12-2023` as 20 December 2016); nothing out of range is normalised into another
//! date (`25:14`, `10:61`). Years outside 1000-9999 are no date at all (the item keeps its
//! first-seen time), as everywhere in bantin.
//!
//! `regex` is not needed: each handler is a few splits, like feedparser's own.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::clock::SiteZone;

/// A reading before the zone is applied: the wall-clock time and its offset (seconds east of
/// UTC), `None` when the text named no zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    local: NaiveDateTime,
    offset: Option<i32>,
}

/// The instant `text` names, or `None` when no handler reads it. `now` supplies the century of
/// two-digit ISO years and the fields ISO 8601's truncated forms leave out, as in feedparser.
pub fn parse(text: &str, zone: SiteZone, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if t.is_empty() || t.len() > 200 {
        return None;
    }
    let r = w3dtf(t)
        .or_else(|| rfc822(t))
        .or_else(|| iso8601(t, now))
        .or_else(|| asctime(t))
        .or_else(|| perforce(t))
        .or_else(|| hungarian(t))
        .or_else(|| greek(t))
        .or_else(|| korean(t))?;
    let instant = match r.offset {
        Some(off) => {
            if off.abs() >= 24 * 3600 {
                return None;
            }
            (r.local - Duration::seconds(off as i64)).and_utc()
        }
        None => zone
            .parse(&r.local.format("%Y-%m-%dT%H:%M:%S").to_string())
            .ok()?,
    };
    // The site's own range rules (four-digit years, whole-minute offsets in the zone).
    zone.parse(&instant.to_rfc3339()).ok()
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn time(h: u32, m: u32, s: u32) -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(h, m, s)
}

fn int<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Seconds from `int(float(s))`: `55.1234` is 55.
fn seconds(s: &str) -> Option<u32> {
    let whole = s.split_once('.').map_or(s, |(w, f)| {
        if f.bytes().all(|b| b.is_ascii_digit()) {
            w
        } else {
            "x"
        }
    });
    int(whole)
}

/// `+07:00`, `+0700`, `+07`, `+7`, `-00:20` → seconds east of UTC.
fn numeric_offset(s: &str) -> Option<i32> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() > 2 => rest.split_at(rest.len() - 2),
        None => (rest, "0"),
    };
    if h.is_empty() || h.len() > 2 || m.len() > 2 {
        return None;
    }
    let (h, m): (i32, i32) = (int(h)?, int(m)?);
    if m >= 60 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

/// Zone names, in hours east of UTC: feedparser's RFC 822 table (military letters with RFC
/// 822's signs, as feedparser has them), then names it lacks that feeds use.
fn named_offset(name: &str) -> Option<i32> {
    let hours: f32 = match name {
        "ut" | "utc" | "gmt" | "z" | "wet" => 0.0,
        "adt" => -3.0,
        "ast" | "at" | "edt" => -4.0,
        "est" | "et" | "cdt" => -5.0,
        "cst" | "ct" | "mdt" => -6.0,
        "mst" | "mt" | "pdt" => -7.0,
        "pst" | "pt" | "akdt" => -8.0,
        "akst" => -9.0,
        "hst" => -10.0,
        "met" | "cet" | "west" | "bst" => 1.0,
        "mest" | "cest" | "eet" => 2.0,
        "eest" | "msk" => 3.0,
        "ict" | "wib" => 7.0,
        "sgt" | "hkt" | "pht" | "awst" | "myt" => 8.0,
        "jst" | "kst" | "wit" => 9.0,
        "aest" => 10.0,
        "aedt" => 11.0,
        "nzst" => 12.0,
        "nzdt" => 13.0,
        // Military zones: A-I, K-M are -1..-12 and N-Y +1..+12 in RFC 822's (inverted) signs,
        // feedparser's `a`, `n`, `m`, `y` among them.
        l if l.len() == 1 => {
            let c = l.as_bytes()[0];
            match c {
                b'a'..=b'i' => -((c - b'a' + 1) as f32),
                b'k'..=b'm' => -((c - b'k' + 10) as f32),
                b'n'..=b'y' => (c - b'n' + 1) as f32,
                _ => return None,
            }
        }
        _ => return None,
    };
    Some((hours * 3600.0) as i32)
}

/// What a zone token means: a number, `GMT`-prefixed number, a known name, else UTC (as
/// feedparser reads names it does not know). `None` only for a malformed number.
fn zone_token(tok: &str) -> Option<i32> {
    let tok = tok.strip_prefix("etc/").unwrap_or(tok);
    let tok = match tok.strip_prefix("gmt").or_else(|| tok.strip_prefix("utc")) {
        Some("") => "gmt",
        Some(rest) => rest,
        None => tok,
    };
    if tok.starts_with(['+', '-']) {
        return numeric_offset(tok);
    }
    Some(named_offset(tok).unwrap_or(0))
}

/// W3DTF, and MSSQL's space-separated form (feedparser's `_parse_date_w3dtf`).
fn w3dtf(s: &str) -> Option<Reading> {
    let lower = s.to_ascii_lowercase();
    let mut parts: Vec<String> = lower.split('t').map(String::from).collect();
    let mut date_only = false;
    if parts.len() == 1 {
        parts = parts[0].split_whitespace().map(String::from).collect();
        if parts.len() == 1 {
            date_only = true;
            parts.push("00:00:00".into());
        }
    } else if parts.len() > 2 {
        return None;
    }
    if parts.len() < 2 || parts.len() > 3 {
        return None;
    }
    let d: Vec<&str> = parts[0].splitn(3, '-').collect();
    if d[0].len() != 4 {
        return None;
    }
    let y: i32 = int(d[0])?;
    let m: u32 = d.get(1).map_or(Some(1), |v| int(v))?;
    let day: u32 = d.get(2).map_or(Some(1), |v| int(v))?;
    let mut clock = parts[1].clone();
    let mut zone: Option<String> = parts.get(2).cloned();
    if let Some(c) = clock.strip_suffix('z') {
        clock = c.to_string();
        zone = Some("z".into());
    }
    if zone.is_none()
        && let Some(i) = clock.find(['+', '-'])
    {
        zone = Some(clock[i..].to_string());
        clock.truncate(i);
    }
    let t: Vec<&str> = clock.splitn(3, ':').collect();
    let h: u32 = int(t[0])?;
    let mi: u32 = t.get(1).map_or(Some(0), |v| int(v))?;
    let sec: u32 = t.get(2).map_or(Some(0), |v| seconds(v))?;
    let local = date(y, m, day)?.and_time(time(h, mi, sec)?);
    let offset = match zone.as_deref() {
        // A date alone (feedparser: UTC midnight) is midnight in the site zone.
        _ if date_only => None,
        None => None,
        Some(z) if z.starts_with(['+', '-']) => Some(numeric_offset(z)?),
        Some(z) => Some(named_offset(z).unwrap_or(0)),
    };
    Some(Reading { local, offset })
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn month(s: &str) -> Option<u32> {
    let p = s.get(..3)?;
    MONTHS.iter().position(|m| *m == p).map(|i| i as u32 + 1)
}

/// RFC 822 and its variants (feedparser's `_parse_date_rfc822`, step by step).
fn rfc822(s: &str) -> Option<Reading> {
    let lower = s.to_lowercase();
    let mut parts: Vec<String> = lower.split_whitespace().map(String::from).collect();
    // A date alone is midnight (feedparser: UTC; here site-local, as every naive time).
    let mut naive = false;
    if parts.len() < 5 {
        parts.extend(["00:00:00".to_string(), "0000".to_string()]);
        naive = true;
    }
    if parts[0].get(..3).is_some_and(|d| DAYS.contains(&d)) {
        // "Fri,24 Nov 2023": a comma without a space.
        if let Some((_, after)) = parts[0].rsplit_once(',')
            && !after.is_empty()
        {
            let after = after.to_string();
            parts.insert(1, after);
        }
        parts.remove(0);
    }
    if parts.len() < 5 {
        // A weekday, a date and a time without a zone, as hand-made CMS templates write
        // (feedparser gives up here): site-local.
        if parts.len() == 4 && parts[3].contains(':') {
            parts.push("0000".into());
            naive = true;
        } else {
            return None;
        }
    }
    let (day, mon) = match (int::<u32>(parts[0].trim_end_matches(',')), month(&parts[1])) {
        (Some(d), Some(m)) => (d, m),
        // "Aug 30 2012": month and day swapped.
        (None, _) => (
            int::<u32>(parts[1].trim_end_matches(','))?,
            month(&parts[0])?,
        ),
        (Some(_), None) => return None,
    };
    let year_text = parts[2].trim_end_matches(',');
    let mut year: i32 = int(year_text)?;
    if year_text.len() <= 2 {
        year += if year < 90 { 2000 } else { 1900 };
    }
    let t: Vec<&str> = parts[3].split(':').collect();
    if t.len() > 3 {
        return None;
    }
    let h: u32 = int(t[0])?;
    let mi: u32 = t.get(1).map_or(Some(0), |v| int(v))?;
    let sec: u32 = t.get(2).map_or(Some(0), |v| int(v))?;
    let offset = if naive {
        None
    } else {
        Some(zone_token(&parts[4])?)
    };
    let local = date(year, mon, day)?.and_time(time(h, mi, sec)?);
    Some(Reading { local, offset })
}

/// The ISO 8601 templates of feedparser's `_parse_date_iso8601`, matched against the whole text.
fn iso8601(s: &str, now: DateTime<Utc>) -> Option<Reading> {
    // Date part: (year, month, day, ordinal) of each template, tried in feedparser's order.
    let (date_len, y, m, d, ord) = iso_date(s)?;
    let rest = &s[date_len..];
    let century = now.year() / 100 * 100;
    let year = match y {
        Some((v, 2)) => century + v,
        Some((v, _)) => v,
        None => now.year(),
    };
    let (month, day) = match (m, d, ord) {
        (_, _, Some(o)) => {
            let nd = NaiveDate::from_yo_opt(year, o)?;
            (nd.month(), nd.day())
        }
        (Some(m), Some(d), None) => (m, d),
        (Some(m), None, None) => (m, 1),
        (None, Some(d), None) => (now.month(), d),
        (None, None, None) if y.is_some() => (1, 1),
        (None, None, None) => (now.month(), now.day()),
    };
    let nd = date(year, month, day)?;
    if rest.is_empty() {
        return Some(Reading {
            local: nd.and_time(NaiveTime::MIN),
            offset: None,
        });
    }
    // T?hh:mm(:ss)?(.frac)?(zone)?
    let r = rest.strip_prefix('T').unwrap_or(rest);
    let b = r.as_bytes();
    if b.len() < 5 || b[2] != b':' {
        return None;
    }
    let h: u32 = int(&r[..2])?;
    let mi: u32 = int(&r[3..5])?;
    let mut i = 5;
    let mut sec = 0;
    if b.get(i) == Some(&b':') {
        sec = int(r.get(i + 1..i + 3)?)?;
        i += 3;
    }
    if b.get(i) == Some(&b'.') {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    let zone = &r[i..];
    let offset = match zone {
        "" => None,
        "Z" => Some(0),
        z => {
            let b = z.as_bytes();
            let valid = matches!(b[0], b'+' | b'-')
                && (b.len() == 3 || (b.len() == 6 && b[3] == b':'))
                && z[1..]
                    .bytes()
                    .filter(|c| *c != b':')
                    .all(|c| c.is_ascii_digit());
            if !valid {
                return None;
            }
            Some(numeric_offset(z)?)
        }
    };
    Some(Reading {
        local: nd.and_time(time(h, mi, sec)?),
        offset,
    })
}

type IsoDate = (
    usize,
    Option<(i32, usize)>,
    Option<u32>,
    Option<u32>,
    Option<u32>,
);

/// The longest of feedparser's date templates that starts `s`, in its order: the length used,
/// the year (value, digits), month, day, ordinal.
fn iso_date(s: &str) -> Option<IsoDate> {
    let b = s.as_bytes();
    let digits = |from: usize, n: usize| -> Option<u32> {
        let t = s.get(from..from + n)?;
        int(t)
    };
    let dash = |at: usize| b.get(at) == Some(&b'-');
    // Each template: a function of the text giving the parse, or None.
    let templates: [&dyn Fn() -> Option<IsoDate>; 14] = [
        // YYYY-?MM-?DD
        &|| {
            let y = digits(0, 4)?;
            let mut i = 4 + dash(4) as usize;
            let m = digits(i, 2).filter(|m| *m <= 19)?;
            i += 2;
            i += dash(i) as usize;
            let d = digits(i, 2).filter(|d| *d <= 39)?;
            Some((i + 2, Some((y as i32, 4)), Some(m), Some(d), None))
        },
        // YYYY-0MM?-?DD (Google's extra zero)
        &|| {
            let y = digits(0, 4)?;
            if !(dash(4) && b.get(5) == Some(&b'0')) {
                return None;
            }
            let m = digits(6, 2).filter(|m| *m <= 19)?;
            let mut i = 8;
            i += dash(i) as usize;
            let d = digits(i, 2).filter(|d| *d <= 39)?;
            Some((i + 2, Some((y as i32, 4)), Some(m), Some(d), None))
        },
        // YYYY-MM
        &|| {
            let y = digits(0, 4)?;
            if !dash(4) {
                return None;
            }
            let m = digits(5, 2).filter(|m| *m <= 19)?;
            Some((7, Some((y as i32, 4)), Some(m), None, None))
        },
        // YYYY-?OOO
        &|| {
            let y = digits(0, 4)?;
            let i = 4 + dash(4) as usize;
            let o = digits(i, 3).filter(|o| *o <= 399)?;
            Some((i + 3, Some((y as i32, 4)), None, None, Some(o)))
        },
        // YY-?MM-?DD
        &|| {
            let y = digits(0, 2)?;
            let mut i = 2 + dash(2) as usize;
            let m = digits(i, 2).filter(|m| *m <= 19)?;
            i += 2;
            i += dash(i) as usize;
            let d = digits(i, 2).filter(|d| *d <= 39)?;
            Some((i + 2, Some((y as i32, 2)), Some(m), Some(d), None))
        },
        // YY-?OOO
        &|| {
            let y = digits(0, 2)?;
            let i = 2 + dash(2) as usize;
            let o = digits(i, 3).filter(|o| *o <= 399)?;
            Some((i + 3, Some((y as i32, 2)), None, None, Some(o)))
        },
        // YYYY
        &|| Some((4, Some((digits(0, 4)? as i32, 4)), None, None, None)),
        // -YY-?MM
        &|| {
            if !dash(0) {
                return None;
            }
            let y = digits(1, 2)?;
            let i = 3 + dash(3) as usize;
            let m = digits(i, 2).filter(|m| *m <= 19)?;
            Some((i + 2, Some((y as i32, 2)), Some(m), None, None))
        },
        // -OOO
        &|| {
            if !dash(0) {
                return None;
            }
            let o = digits(1, 3).filter(|o| *o <= 399)?;
            Some((4, None, None, None, Some(o)))
        },
        // -YY
        &|| {
            if !dash(0) {
                return None;
            }
            Some((3, Some((digits(1, 2)? as i32, 2)), None, None, None))
        },
        // --MM-?DD
        &|| {
            if !(dash(0) && dash(1)) {
                return None;
            }
            let m = digits(2, 2).filter(|m| *m <= 19)?;
            let i = 4 + dash(4) as usize;
            let d = digits(i, 2).filter(|d| *d <= 39)?;
            Some((i + 2, None, Some(m), Some(d), None))
        },
        // --MM
        &|| {
            if !(dash(0) && dash(1)) {
                return None;
            }
            Some((
                4,
                None,
                Some(digits(2, 2).filter(|m| *m <= 19)?),
                None,
                None,
            ))
        },
        // ---DD
        &|| {
            if !(dash(0) && dash(1) && dash(2)) {
                return None;
            }
            Some((
                5,
                None,
                None,
                Some(digits(3, 2).filter(|d| *d <= 39)?),
                None,
            ))
        },
        // CC (a century, the whole text)
        &|| {
            if s.len() != 2 {
                return None;
            }
            let c = digits(0, 2)? as i32;
            Some((2, Some(((c - 1) * 100 + 1, 4)), None, None, None))
        },
    ];
    // feedparser takes the first template that matches at the start; here the rest of the text
    // must then be a time (or nothing), else the next template is tried.
    templates.iter().find_map(|t| {
        let r = t()?;
        let rest = &s[r.0..];
        (rest.is_empty() || rest.starts_with('T') || rest.as_bytes().get(2) == Some(&b':'))
            .then_some(r)
    })
}

/// asctime: `Sun Jan  4 16:29:06 2004`, `Sun Jul 15 01:16:00 +0000 2012`.
fn asctime(s: &str) -> Option<Reading> {
    let p: Vec<&str> = s.split_whitespace().collect();
    let (zone, year) = match p.len() {
        5 => (None, p[4]),
        6 => (Some(p[4]), p[5]),
        _ => return None,
    };
    if !p[0]
        .get(..3)
        .is_some_and(|d| DAYS.contains(&d.to_ascii_lowercase().as_str()))
    {
        return None;
    }
    let mut r = rfc822(&format!(
        "{}, {} {} {} {} {}",
        p[0],
        p[2],
        p[1],
        year,
        p[3],
        zone.unwrap_or("+0000")
    ))?;
    if zone.is_none() {
        r.offset = None;
    }
    Some(r)
}

/// Perforce: `Fri, 2006/09/15 08:19:53 EDT`.
fn perforce(s: &str) -> Option<Reading> {
    let (dow, rest) = s.split_once(", ")?;
    let p: Vec<&str> = rest.split_whitespace().collect();
    if p.len() != 3 {
        return None;
    }
    let d: Vec<&str> = p[0].split('/').collect();
    if d.len() != 3 {
        return None;
    }
    let m: usize = int(d[1])?;
    let mon = MONTHS.get(m.checked_sub(1)?)?;
    rfc822(&format!("{dow}, {} {mon} {} {} {}", d[2], d[0], p[1], p[2]))
}

/// Hungarian month names (feedparser's table): `2004-július-13T9:15-05:00`.
fn hungarian(s: &str) -> Option<Reading> {
    const NAMES: [(&str, u32); 12] = [
        ("január", 1),
        ("februári", 2),
        ("március", 3),
        ("április", 4),
        ("máujus", 5),
        ("június", 6),
        ("július", 7),
        ("augusztus", 8),
        ("szeptember", 9),
        ("október", 10),
        ("november", 11),
        ("december", 12),
    ];
    let (y, rest) = s.split_once('-')?;
    let (name, rest) = rest.split_once('-')?;
    let m = NAMES.iter().find(|(n, _)| *n == name)?.1;
    let (d, clock) = rest.split_once('T')?;
    let (h, rest) = clock.split_once(':')?;
    let (mi, zone) = rest.split_at(2.min(rest.len()));
    if y.len() != 4 || d.len() > 2 || h.len() > 2 || !zone.starts_with(['+', '-']) {
        return None;
    }
    w3dtf(&format!("{y}-{m:02}-{:0>2}T{:0>2}:{mi}{zone}", d, h))
}

/// Greek day and month names (feedparser's table), then RFC 822.
fn greek(s: &str) -> Option<Reading> {
    const MONTHS_EL: [(&str, &str); 19] = [
        ("Ιαν", "Jan"),
        ("Φεβ", "Feb"),
        ("Μάώ", "Mar"),
        ("Μαώ", "Mar"),
        ("Απρ", "Apr"),
        ("Μάι", "May"),
        ("Μαϊ", "May"),
        ("Μαι", "May"),
        ("Ιούν", "Jun"),
        ("Ιον", "Jun"),
        ("Ιούλ", "Jul"),
        ("Ιολ", "Jul"),
        ("Αύγ", "Aug"),
        ("Αυγ", "Aug"),
        ("Σεπ", "Sep"),
        ("Οκτ", "Oct"),
        ("Νοέ", "Nov"),
        ("Νοε", "Nov"),
        ("Δεκ", "Dec"),
    ];
    const DAYS_EL: [(&str, &str); 7] = [
        ("Κυρ", "Sun"),
        ("Δευ", "Mon"),
        ("Τρι", "Tue"),
        ("Τετ", "Wed"),
        ("Πεμ", "Thu"),
        ("Παρ", "Fri"),
        ("Σαβ", "Sat"),
    ];
    let (dow, rest) = s.split_once(',')?;
    let dow = DAYS_EL.iter().find(|(g, _)| *g == dow)?.1;
    let p: Vec<&str> = rest.split_whitespace().collect();
    if p.len() != 5 {
        return None;
    }
    let mon = MONTHS_EL.iter().find(|(g, _)| *g == p[1])?.1;
    rfc822(&format!("{dow}, {} {mon} {} {} {}", p[0], p[2], p[3], p[4]))
}

/// Korean forms (feedparser's OnBlog and Nate handlers), read as Korea time (+09:00).
fn korean(s: &str) -> Option<Reading> {
    let kst = Some(9 * 3600);
    // OnBlog: 2004년 05월 28일  01:31:15
    if let Some((y, rest)) = s.split_once('년') {
        let (m, rest) = rest.trim_start().split_once('월')?;
        let (d, clock) = rest.trim_start().split_once('일')?;
        let t: Vec<&str> = clock.trim().split(':').collect();
        if t.len() != 3 {
            return None;
        }
        let local = date(int(y.trim())?, int(m)?, int(d)?)?.and_time(time(
            int(t[0])?,
            int(t[1])?,
            int(t[2])?,
        )?);
        return Some(Reading { local, offset: kst });
    }
    // Nate: 2004-05-25 오후 11:23:17 (오전 a.m., 오후 p.m.)
    let p: Vec<&str> = s.split_whitespace().collect();
    if p.len() != 3 || !(p[1] == "오전" || p[1] == "오후") {
        return None;
    }
    let d: Vec<&str> = p[0].split('-').collect();
    let t: Vec<&str> = p[2].split(':').collect();
    if d.len() != 3 || t.len() != 3 {
        return None;
    }
    let mut h: u32 = int(t[0])?;
    if p[1] == "오후" {
        h += 12;
    }
    let local =
        date(int(d[0])?, int(d[1])?, int(d[2])?)?.and_time(time(h, int(t[1])?, int(t[2])?)?);
    Some(Reading { local, offset: kst })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z() -> SiteZone {
        crate::article::tests::config().zone
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T05:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn p(s: &str) -> Option<String> {
        parse(s, z(), now()).map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
    }

    #[test]
    fn the_forms_vietnamese_sites_write() {
        let cases = [
            ("Sat, 16 Dec 2023 10:05:00 +0700", "2023-12-16T03:05:00Z"),
            ("Sat, 16 Dec 2023 10:05:00 +07:00", "2023-12-16T03:05:00Z"),
            ("Sat, 16 Dec 2023 10:05:00 GMT+7", "2023-12-16T03:05:00Z"),
            (
                "Sat, 16 Dec 2023 10:05:00 GMT+07:00",
                "2023-12-16T03:05:00Z",
            ),
            ("Sat, 16 Dec 2023 10:05:00 ICT", "2023-12-16T03:05:00Z"),
            ("Wed, 16 Dec 2023 10:05:00 +0700", "2023-12-16T03:05:00Z"),
            ("Sat, 16 Dec 2023 10:05:00", "2023-12-16T03:05:00Z"),
            ("2023-12-16 10:05:00", "2023-12-16T03:05:00Z"),
            ("2023-12-16T10:05", "2023-12-16T03:05:00Z"),
            ("2023-12-16", "2023-12-15T17:00:00Z"),
            ("2023-12-16T10:05:00+07:00", "2023-12-16T03:05:00Z"),
        ];
        for (text, want) in cases {
            assert_eq!(p(text).as_deref(), Some(want), "{text}");
        }
    }

    #[test]
    fn nothing_is_normalised_into_another_date() {
        for text in [
            "2003-12-31T25:14:55Z",
            "2003-12-31T10:61:55Z",
            "Sun, 99 Jun 2009 12:00:00 GMT",
            "16-12-2023",
            "16/12/2023 10:05",
            "hôm qua",
            "",
            "Thu, 01 Jan 0100 00:00:01 +0100",
            "9999-12-31T23:59:59-99:99",
        ] {
            assert_eq!(p(text), None, "{text}");
        }
    }

    #[test]
    fn offsets() {
        assert_eq!(numeric_offset("+07:00"), Some(25200));
        assert_eq!(numeric_offset("+0700"), Some(25200));
        assert_eq!(numeric_offset("+7"), Some(25200));
        assert_eq!(numeric_offset("-00:20"), Some(-1200));
        assert_eq!(numeric_offset("+zz:00"), None);
        assert_eq!(zone_token("etc/gmt"), Some(0));
        assert_eq!(zone_token("unknownzone"), Some(0));
    }
}
