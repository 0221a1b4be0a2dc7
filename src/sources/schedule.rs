//! When a source is polled next: after a success, after a failure, and when the upstream said
//! when (`Retry-After`). Pure functions of the clock's `now`, so tests check a two-minute
//! `Retry-After` or a six-hour cap in microseconds.
//!
//! The policy is the polite aggregator's: never give up (miniflux stops after three failures,
//! its users' most repeated complaint), never hammer (failures double the delay up to a cap),
//! and never synchronise: every delay is jittered by a hash of the source id and the attempt, so
//! a thousand sources configured with the same `every` (or failing together when a shared
//! upstream goes down) spread out instead of firing in the same second.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Jitter of the regular interval: ± this fraction of `every`…
const JITTER_FRACTION: f64 = 0.05;
/// …but never more than this either way (a daily source need not wander by more than minutes).
const MAX_JITTER: Duration = Duration::from_secs(300);
/// The longest `Retry-After` believed: a misconfigured upstream saying "in ten years" is polled
/// again in a week.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 86_400);

/// A number in [0, 1) from the source id, the attempt count and the instant: random enough to
/// spread sources apart, reproducible for a test that fixes all three.
pub fn jitter(id: &str, attempt: u32, now: DateTime<Utc>) -> f64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(id.as_bytes());
    h.update(&attempt.to_le_bytes());
    h.update(&now.timestamp_micros().to_le_bytes());
    (h.digest() >> 11) as f64 / (1u64 << 53) as f64
}

/// The next poll after a success: `every` later, give or take the jitter.
pub fn after_success(id: &str, every: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    let spread = every.mul_f64(JITTER_FRACTION).min(MAX_JITTER);
    let offset = spread.mul_f64(2.0 * jitter(id, 0, now));
    after(now, every.saturating_sub(spread) + offset)
}

/// The delay after the `failures`-th consecutive failure: `every` doubled per failure, capped,
/// then shortened by up to a fifth (so delays still grow — ×2 × 0.8 > 1 — but never align).
pub fn backoff_delay(
    id: &str,
    every: Duration,
    failures: u32,
    cap: Duration,
    now: DateTime<Utc>,
) -> Duration {
    let doublings = failures.saturating_sub(1).min(30);
    let base = every.saturating_mul(1 << doublings).min(cap);
    base.mul_f64(1.0 - 0.2 * jitter(id, failures, now))
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`;
/// `None` when it is neither.
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    let delay = if let Ok(secs) = v.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = crate::clock::parse_http_date(v)?;
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// A std duration as chrono's, saturating (chrono's range is narrower).
pub fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// `now + d`, saturating at [`never`](crate::store::upstream::never) instead of overflowing:
/// durations come from configuration and upstream headers.
pub fn after(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    let never = crate::store::upstream::never();
    now.checked_add_signed(to_chrono(d))
        .filter(|t| *t < never)
        .unwrap_or(never)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_thousand_sources_with_one_interval_spread_out() {
        let every = Duration::from_secs(900);
        let mut seconds = std::collections::BTreeMap::<i64, u32>::new();
        for i in 0..1000 {
            let next = after_success(&format!("src-{i}"), every, t0());
            let d = (next - t0()).to_std().unwrap();
            assert!(
                d >= Duration::from_secs(855) && d <= Duration::from_secs(945),
                "{d:?}"
            );
            *seconds.entry(next.timestamp()).or_default() += 1;
        }
        // 90 s of spread: about 11 a second, and nowhere near all in one.
        assert!(seconds.len() > 80, "{}", seconds.len());
        assert!(*seconds.values().max().unwrap() < 40);
    }

    #[test]
    fn failures_back_off_growing_jittered_and_capped() {
        let every = Duration::from_secs(60);
        let cap = Duration::from_secs(6 * 3600);
        let delays: Vec<Duration> = (1..=12)
            .map(|n| backoff_delay("bao-a", every, n, cap, t0()))
            .collect();
        for w in delays.windows(2).take(8) {
            assert!(w[1] > w[0], "{delays:?}");
        }
        assert!(delays.iter().all(|d| *d <= cap));
        assert!(delays[11] >= cap.mul_f64(0.8));
        // Jittered: not the bare powers of two.
        assert!(
            delays
                .iter()
                .enumerate()
                .any(|(i, d)| *d != (every * (1 << i)).min(cap))
        );
        // Two sources failing together do not retry together.
        assert_ne!(
            backoff_delay("bao-a", every, 3, cap, t0()),
            backoff_delay("bao-b", every, 3, cap, t0())
        );
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        assert_eq!(retry_after("120", t0()), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Mon, 30 Nov 2026 01:02:00 GMT", t0()),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after("Mon, 30 Nov 2026 00:00:00 GMT", t0()),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("99999999999", t0()), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon", t0()), None);
        // Far-off instants saturate rather than overflow.
        assert_eq!(
            after(t0(), Duration::from_secs(u64::MAX)),
            crate::store::upstream::never()
        );
    }
}
