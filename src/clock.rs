//! The site's clock: its time zone, and the two date formats feeds use.
//!
//! Every timestamp bantin writes is in the newsroom's zone (Asia/Ho_Chi_Minh by default), never
//! UTC clock time labelled with the local offset and never a zone abbreviation such as `ICT`.
//! RSS wants RFC 822 with English names and a numeric offset (`Wed, 22 Mar 2023 10:17:00 +0700`);
//! Atom and JSON Feed want RFC 3339 (`2023-03-22T10:17:00+07:00`). Times arrive either with an
//! offset or naive; a naive time is the newsroom's wall-clock time, because that is what an editor
//! types and what the news site shows ("dd/mm/yyyy - hh:mm"), never UTC.
//!
//! Instants are stored as `DateTime<Utc>` and converted at the edges, so that the store, the cache
//! and the renderers agree on one representation and only formatting knows about zones.
//!
//! Schedules (when to poll an upstream feed, how long to back off, when a `Retry-After` ends) read
//! the time through the [`Clock`] trait rather than `Utc::now()`, so that tests drive them with a
//! [`ManualClock`] and check a two-minute `Retry-After` in milliseconds, never sleeping for real.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{
    DateTime, Datelike, LocalResult, NaiveDateTime, Offset, SecondsFormat, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use tokio::sync::watch;

/// Where schedules get the time from, and how they wait for it.
#[async_trait]
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Returns once [`Clock::now`] has reached `t` (at once if it already has).
    async fn sleep_until(&self, t: DateTime<Utc>);
}

/// The wall clock, and tokio's timers to wait on it.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        // Waits in steps of at most a minute, so a wall-clock step (NTP) is noticed.
        loop {
            let left = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(Duration::from_secs(60))).await;
        }
    }
}

/// Real time's pace from a chosen start: `start` when made, then as much later as really passes
/// (read from a monotonic clock, so it never steps). Tests whose fixtures carry dates run on it,
/// so that what is published and what is still embargoed does not depend on today's date.
pub struct ShiftedClock {
    start: DateTime<Utc>,
    at: std::time::Instant,
}

impl ShiftedClock {
    pub fn starting_at(start: DateTime<Utc>) -> ShiftedClock {
        ShiftedClock {
            start,
            at: std::time::Instant::now(),
        }
    }
}

#[async_trait]
impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        chrono::Duration::from_std(self.at.elapsed())
            .ok()
            .and_then(|d| self.start.checked_add_signed(d))
            .unwrap_or(self.start)
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let left = (t - self.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::sleep(left).await;
    }
}

/// A clock that moves only when told to ([`ManualClock::advance`]): for tests and simulations of
/// schedules. Sleepers wake as soon as the time they wait for is reached.
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
    changed: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
            changed: watch::Sender::new(start),
        }
    }

    /// Moves the time forward by `d`, waking every sleeper whose time has come.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += chrono::Duration::from_std(d).expect("a test-sized duration");
        self.changed.send_replace(*now);
    }

    /// Sets the time (forward only; an earlier time is ignored, as a monotonic clock would).
    pub fn set(&self, t: DateTime<Utc>) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        if t > *now {
            *now = t;
            self.changed.send_replace(t);
        }
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let mut rx = self.changed.subscribe();
        loop {
            if *rx.borrow_and_update() >= t {
                return;
            }
            if rx.changed().await.is_err() {
                // The clock is gone; nothing will ever wake this sleeper.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The newsroom's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteZone(pub Tz);

impl Default for SiteZone {
    fn default() -> Self {
        SiteZone(chrono_tz::Asia::Ho_Chi_Minh)
    }
}

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "`{0}` is not an RFC 3339 date-time (expected e.g. 2026-04-12T08:30:00+07:00 or 2026-04-12T08:30:00)"
    )]
    Malformed(String),
    #[error("`{0}` does not exist in the site time zone (skipped by a clock change)")]
    Nonexistent(String),
    #[error("`{0}` is a leap second (:60); leap seconds are not accepted, use :59")]
    LeapSecond(String),
    #[error(
        "`{0}` is out of range: dates must be in the years 1000-9999 and at a whole-minute offset of the site zone"
    )]
    OutOfRange(String),
}

impl SiteZone {
    /// Parses a zone name from the tz database (`Asia/Ho_Chi_Minh`).
    pub fn from_name(name: &str) -> Option<Self> {
        name.parse::<Tz>().ok().map(SiteZone)
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// Reads an RFC 3339 date-time; one without an offset is wall-clock time in this zone.
    ///
    /// Accepts `T` or a space between date and time, optional fractional seconds, and a missing
    /// seconds field (`2026-04-12T08:30`), because CMS exports differ on those and none of them is
    /// ambiguous. An ambiguous local time (a DST fold, which Vietnam does not have) takes the
    /// earlier instant.
    pub fn parse(&self, text: &str) -> Result<DateTime<Utc>, TimeError> {
        let t = self.parse_any(text)?;
        // chrono reads `:60` as a leap second (nanoseconds past 1e9) whether or not one happened
        // then; feeds cannot carry one and readers would disagree on it.
        if t.nanosecond() >= 1_000_000_000 {
            return Err(TimeError::LeapSecond(text.to_string()));
        }
        // Four-digit years only (RFC 3339 and RFC 822 write no other), and only instants the zone
        // can write as a whole-minute offset: before 1906 Ho Chi Minh City kept local mean time
        // (+07:06:30), which RFC 3339 cannot express, so such a date would be rendered as another
        // instant.
        let local = t.with_timezone(&self.0);
        let offset = local.offset().fix().local_minus_utc();
        if !(1000..=9999).contains(&local.year()) || offset % 60 != 0 {
            return Err(TimeError::OutOfRange(text.to_string()));
        }
        Ok(t)
    }

    fn parse_any(&self, text: &str) -> Result<DateTime<Utc>, TimeError> {
        let t = text.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
            return Ok(dt.with_timezone(&Utc));
        }
        let spaced = t.replacen(' ', "T", 1);
        if let Ok(dt) = DateTime::parse_from_rfc3339(&spaced) {
            return Ok(dt.with_timezone(&Utc));
        }
        const NAIVE: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"];
        let naive = NAIVE
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(&spaced, f).ok())
            .ok_or_else(|| TimeError::Malformed(text.to_string()))?;
        match self.0.from_local_datetime(&naive) {
            LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => Ok(dt.with_timezone(&Utc)),
            LocalResult::None => Err(TimeError::Nonexistent(text.to_string())),
        }
    }

    /// RFC 822 as RSS 2.0 wants it: `Wed, 22 Mar 2023 10:17:00 +0700`.
    pub fn rfc822(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0).to_rfc2822()
    }

    /// RFC 3339 to the second as Atom and JSON Feed want it: `2023-03-22T10:17:00+07:00`.
    pub fn rfc3339(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.0)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }

    /// The instant as a fixed-offset date-time in this zone (what `atom_syndication` takes).
    pub fn fixed(&self, t: DateTime<Utc>) -> DateTime<chrono::FixedOffset> {
        t.with_timezone(&self.0).fixed_offset()
    }
}

/// An HTTP date (RFC 9110 IMF-fixdate): `Wed, 22 Mar 2023 03:17:00 GMT`. HTTP dates are always
/// GMT, whatever the site zone.
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Reads an HTTP date in any of the three forms RFC 9110 §5.6.7 says a recipient must accept.
pub fn parse_http_date(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc2822(t) {
        return Some(dt.with_timezone(&Utc));
    }
    // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT; asctime: Sun Nov  6 08:49:37 1994
    if let Ok(n) = NaiveDateTime::parse_from_str(t, "%A, %d-%b-%y %H:%M:%S GMT") {
        return Some(Utc.from_utc_datetime(&n));
    }
    NaiveDateTime::parse_from_str(t, "%a %b %e %H:%M:%S %Y")
        .ok()
        .map(|n| Utc.from_utc_datetime(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> SiteZone {
        SiteZone::default()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn rfc822_uses_english_names_and_numeric_offset() {
        assert_eq!(
            zone().rfc822(utc("2023-03-22T03:17:00Z")),
            "Wed, 22 Mar 2023 10:17:00 +0700"
        );
    }

    #[test]
    fn weekday_and_year_follow_local_time_across_new_year() {
        // 31 Dec 2025 20:30 UTC is already Thursday 1 January 2026 in Vietnam.
        let t = utc("2025-12-31T20:30:00Z");
        assert_eq!(zone().rfc822(t), "Thu, 1 Jan 2026 03:30:00 +0700");
        assert_eq!(zone().rfc3339(t), "2026-01-01T03:30:00+07:00");
        // and 31 Dec 2026 16:59 UTC is Thursday 31 Dec 23:59 local, a Thursday again.
        assert_eq!(
            zone().rfc822(utc("2026-12-31T16:59:00Z")),
            "Thu, 31 Dec 2026 23:59:00 +0700"
        );
        // a leap day
        assert_eq!(
            zone().rfc822(utc("2028-02-29T00:00:00Z")),
            "Tue, 29 Feb 2028 07:00:00 +0700"
        );
    }

    #[test]
    fn rfc3339_is_second_precision_with_colon_offset() {
        assert_eq!(
            zone().rfc3339(utc("2023-03-22T03:17:00.999Z")),
            "2023-03-22T10:17:00+07:00"
        );
    }

    #[test]
    fn naive_time_is_site_local_not_utc() {
        let t = zone().parse("2026-04-12T08:30:00").unwrap();
        assert_eq!(t, utc("2026-04-12T01:30:00Z"));
        assert_eq!(zone().parse("2026-04-12 08:30").unwrap(), t);
    }

    #[test]
    fn explicit_offsets_are_kept_as_instants() {
        assert_eq!(
            zone().parse("2026-04-12T10:30:00+09:00").unwrap(),
            utc("2026-04-12T01:30:00Z")
        );
        assert_eq!(
            zone().parse("2026-04-11T20:30:00-05:00").unwrap(),
            utc("2026-04-12T01:30:00Z")
        );
        assert_eq!(
            zone().parse("2026-04-12T01:30:00Z").unwrap(),
            utc("2026-04-12T01:30:00Z")
        );
    }

    #[test]
    fn garbage_is_rejected_with_the_text() {
        let err = zone().parse("12/04/2026 - 08:30").unwrap_err();
        assert!(err.to_string().contains("12/04/2026 - 08:30"));
        assert!(zone().parse("").is_err());
        assert!(zone().parse("2026-02-30T00:00:00").is_err());
    }

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_only_when_advanced_far_enough() {
        let clock = std::sync::Arc::new(ManualClock::new(utc("2026-11-30T00:00:00Z")));
        let target = utc("2026-11-30T00:02:00Z");
        let sleeper = {
            let c = clock.clone();
            tokio::spawn(async move { c.sleep_until(target).await })
        };
        clock.advance(Duration::from_secs(119));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke a second early");
        clock.advance(Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woke at the target")
            .unwrap();
        assert_eq!(clock.now(), target);
        clock.set(utc("2020-01-01T00:00:00Z"));
        assert_eq!(clock.now(), target, "a manual clock never goes back");
        // Already past: returns at once.
        clock.sleep_until(utc("2026-11-30T00:01:00Z")).await;
    }

    #[test]
    fn leap_seconds_and_unwritable_years_are_rejected() {
        for leap in [
            "2026-06-30T23:59:60Z",
            "2016-12-31T23:59:60Z",
            "2026-06-30T23:59:60",
        ] {
            assert!(
                matches!(zone().parse(leap), Err(TimeError::LeapSecond(_))),
                "{leap}"
            );
        }
        for old in [
            "0001-01-01T00:00:00Z",
            "0999-12-31T23:59:59+07:00",
            "1800-01-01T00:00:00",
        ] {
            assert!(
                matches!(zone().parse(old), Err(TimeError::OutOfRange(_))),
                "{old}"
            );
        }
        // The first years the zone writes in whole minutes are fine, as is the far future.
        let t = zone().parse("1950-05-01T08:00:00").unwrap();
        assert_eq!(zone().parse(&zone().rfc3339(t)).unwrap(), t, "round trip");
        assert!(zone().parse("9999-12-31T00:00:00Z").is_ok());
    }

    #[test]
    fn http_dates_round_trip_in_gmt() {
        let t = utc("1994-11-06T08:49:37Z");
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
