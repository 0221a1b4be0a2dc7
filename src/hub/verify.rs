//! Verification of intent (and denials): the GET the hub sends to a callback before a
//! subscription changes, and the bounds on how many of them a stranger can make it send.
//!
//! A subscription request costs its sender one small POST and makes the hub send one GET to
//! whatever callback it names, so a hub without bounds is a way to aim traffic at someone else.
//! [`Admission`] bounds it per callback host: a token bucket of `[websub]
//! verifications_per_minute` (its burst is the same number), at most [`MAX_PENDING_PER_HOST`]
//! waiting and [`IN_FLIGHT_PER_HOST`] in flight per host, [`MAX_PENDING`] waiting in all and
//! [`MAX_HOSTS`] hosts tracked. It is plain data driven by the caller's clock, so its limits are
//! unit-tested without waiting.
//!
//! The URL building and the acceptance rule are pure too: the callback's own query string is
//! kept and the hub's parameters appended; only a 2xx whose body is exactly the challenge
//! counts (redirects are not followed: the client follows none).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use url::Url;

/// Verifications waiting or running at most, in all and per callback host.
pub const MAX_PENDING: usize = 1_000;
pub const MAX_PENDING_PER_HOST: usize = 20;
/// Verifications in flight at once, in all and per callback host.
pub const IN_FLIGHT: usize = 32;
pub const IN_FLIGHT_PER_HOST: usize = 2;
/// Callback hosts whose rate is remembered at most; a host whose bucket is full and that has
/// nothing waiting is forgotten first (forgetting it changes nothing).
pub const MAX_HOSTS: usize = 10_000;
/// One verification's deadline, connection and answer included.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of a verification answer read at most (a challenge is 64).
pub const MAX_ANSWER: usize = 1024;

/// Why a request is not verified now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// This host has had its share: try again in this many seconds.
    RateLimited { retry_after: u64 },
    /// Too much is waiting (for this host, or in all).
    Busy,
}

struct HostState {
    tokens: f64,
    at: DateTime<Utc>,
    pending: usize,
    lane: Arc<tokio::sync::Semaphore>,
}

/// The per-host budget of verification requests.
pub struct Admission {
    per_minute: f64,
    hosts: HashMap<String, HostState>,
    pending: usize,
}

impl Admission {
    pub fn new(per_minute: u32) -> Admission {
        Admission {
            per_minute: f64::from(per_minute.max(1)),
            hosts: HashMap::new(),
            pending: 0,
        }
    }

    /// Takes one request's budget for `host` at `now`: the host's lane (its in-flight bound) to
    /// verify in, or why not. Each admission is given back with [`Admission::release`].
    pub fn admit(
        &mut self,
        host: &str,
        now: DateTime<Utc>,
    ) -> Result<Arc<tokio::sync::Semaphore>, Refusal> {
        if self.pending >= MAX_PENDING {
            return Err(Refusal::Busy);
        }
        if !self.hosts.contains_key(host) && self.hosts.len() >= MAX_HOSTS {
            self.forget_idle(now);
            if self.hosts.len() >= MAX_HOSTS {
                return Err(Refusal::Busy);
            }
        }
        let per_minute = self.per_minute;
        let h = self
            .hosts
            .entry(host.to_string())
            .or_insert_with(|| HostState {
                tokens: per_minute,
                at: now,
                pending: 0,
                lane: Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_HOST)),
            });
        refill(h, now, per_minute);
        if h.pending >= MAX_PENDING_PER_HOST {
            return Err(Refusal::Busy);
        }
        if h.tokens < 1.0 {
            let wait = (1.0 - h.tokens) * 60.0 / per_minute;
            return Err(Refusal::RateLimited {
                retry_after: wait.ceil().max(1.0) as u64,
            });
        }
        h.tokens -= 1.0;
        h.pending += 1;
        self.pending += 1;
        Ok(h.lane.clone())
    }

    /// One admitted request is done.
    pub fn release(&mut self, host: &str) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.pending = h.pending.saturating_sub(1);
            self.pending = self.pending.saturating_sub(1);
        }
    }

    /// Waiting or running, in all.
    pub fn pending(&self) -> usize {
        self.pending
    }

    fn forget_idle(&mut self, now: DateTime<Utc>) {
        let per_minute = self.per_minute;
        self.hosts.retain(|_, h| {
            refill(h, now, per_minute);
            h.pending > 0 || h.tokens < per_minute
        });
    }
}

fn refill(h: &mut HostState, now: DateTime<Utc>, per_minute: f64) {
    let secs = (now - h.at).num_milliseconds().max(0) as f64 / 1000.0;
    h.tokens = (h.tokens + secs * per_minute / 60.0).min(per_minute);
    h.at = h.at.max(now);
}

/// An unguessable challenge: 32 random bytes from the operating system, as hex.
pub fn challenge() -> String {
    let mut out = String::with_capacity(64);
    for _ in 0..2 {
        for b in crate::store::random_secret() {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out
}

/// The verification GET's URL: the callback with its own query kept and `hub.mode`,
/// `hub.topic`, `hub.challenge`, `hub.lease_seconds` (subscribe only) and `hub.verify_token`
/// (when the subscriber gave one) appended.
pub fn verification_url(
    callback: &Url,
    mode: &str,
    topic: &str,
    challenge: &str,
    lease_seconds: Option<u64>,
    verify_token: Option<&str>,
) -> Url {
    let mut url = callback.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("hub.mode", mode)
            .append_pair("hub.topic", topic)
            .append_pair("hub.challenge", challenge);
        if let Some(l) = lease_seconds {
            q.append_pair("hub.lease_seconds", &l.to_string());
        }
        if let Some(t) = verify_token {
            q.append_pair("hub.verify_token", t);
        }
    }
    url
}

/// The denial GET's URL: `hub.mode=denied`, `hub.topic` and `hub.reason` appended.
pub fn denial_url(callback: &Url, topic: &str, reason: &str) -> Url {
    let mut url = callback.clone();
    url.query_pairs_mut()
        .append_pair("hub.mode", "denied")
        .append_pair("hub.topic", topic)
        .append_pair("hub.reason", reason);
    url
}

/// Whether a verification answer confirms the subscriber's intent.
pub fn accepted(status: u16, body: &[u8], challenge: &str) -> bool {
    (200..300).contains(&status) && body == challenge.as_bytes()
}

/// Sends a GET and reads at most [`MAX_ANSWER`] bytes of the answer, within [`TIMEOUT`]:
/// the status and the body (cut short when longer, which then matches no challenge).
pub async fn get(client: &reqwest::Client, url: Url) -> Result<(u16, Vec<u8>), String> {
    let exchange = async {
        let mut resp = client.get(url).send().await.map_err(describe)?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(describe)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER {
                break;
            }
        }
        Ok((status, body))
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", TIMEOUT.as_secs())))
}

/// A request error as a short line (reqwest's display names the URL; its source says why).
pub fn describe(e: reqwest::Error) -> String {
    use std::error::Error;
    let mut text = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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
    fn the_callbacks_query_is_kept_and_parameters_appended() {
        let cb = Url::parse("https://reader.example/cb?feed=7&hub.mode=mine").unwrap();
        let url = verification_url(
            &cb,
            "subscribe",
            "https://feeds.example/vi/rss.xml",
            "abc",
            Some(3600),
            Some("tok en"),
        );
        assert_eq!(
            url.as_str(),
            "https://reader.example/cb?feed=7&hub.mode=mine&hub.mode=subscribe&hub.topic=https%3A%2F%2Ffeeds.example%2Fvi%2Frss.xml&hub.challenge=abc&hub.lease_seconds=3600&hub.verify_token=tok+en"
        );
        let url = verification_url(
            &Url::parse("https://r.example/cb").unwrap(),
            "unsubscribe",
            "t",
            "c",
            None,
            None,
        );
        assert_eq!(
            url.as_str(),
            "https://r.example/cb?hub.mode=unsubscribe&hub.topic=t&hub.challenge=c"
        );
        let url = denial_url(&cb, "t", "too many subscriptions");
        assert!(
            url.as_str()
                .ends_with("&hub.mode=denied&hub.topic=t&hub.reason=too+many+subscriptions")
        );
    }

    #[test]
    fn only_the_exact_challenge_in_a_2xx_verifies() {
        assert!(accepted(200, b"abc", "abc"));
        assert!(accepted(204, b"abc", "abc"));
        assert!(!accepted(200, b"abc\n", "abc"));
        assert!(!accepted(200, b"", "abc"));
        assert!(!accepted(200, b"ab", "abc"));
        assert!(!accepted(302, b"abc", "abc"));
        assert!(!accepted(404, b"abc", "abc"));
        let (a, b) = (challenge(), challenge());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn a_host_gets_its_rate_and_no_more_across_time() {
        let mut a = Admission::new(6);
        let now = t0();
        for _ in 0..6 {
            a.admit("victim.example", now).unwrap();
            a.release("victim.example");
        }
        assert_eq!(
            a.admit("victim.example", now).err(),
            Some(Refusal::RateLimited { retry_after: 10 })
        );
        // Another host has its own budget.
        assert!(a.admit("other.example", now).is_ok());
        // One more every 10 s (6 a minute), never a burst above 6.
        let later = now + chrono::Duration::seconds(10);
        assert!(a.admit("victim.example", later).is_ok());
        assert!(a.admit("victim.example", later).is_err());
        let much_later = now + chrono::Duration::hours(5);
        let mut n = 0;
        while a.admit("victim.example", much_later).is_ok() {
            n += 1;
        }
        assert_eq!(n, 6);
    }

    #[test]
    fn waiting_verifications_are_bounded_per_host_and_in_all() {
        let mut a = Admission::new(1_000_000);
        let now = t0();
        for _ in 0..MAX_PENDING_PER_HOST {
            a.admit("slow.example", now).unwrap();
        }
        assert_eq!(a.admit("slow.example", now).err(), Some(Refusal::Busy));
        a.release("slow.example");
        assert!(a.admit("slow.example", now).is_ok());
        let mut i = 0;
        while a.pending() < MAX_PENDING {
            a.admit(&format!("h{i}.example"), now).unwrap();
            i += 1;
        }
        assert_eq!(a.admit("fresh.example", now).err(), Some(Refusal::Busy));
    }

    #[test]
    fn hosts_remembered_are_bounded_and_idle_ones_forgotten() {
        let mut a = Admission::new(60);
        let now = t0();
        for i in 0..MAX_HOSTS {
            let h = format!("h{i}.example");
            a.admit(&h, now).unwrap();
            a.release(&h);
        }
        // Every host spent a token just now: none can be forgotten yet.
        assert_eq!(a.admit("new.example", now).err(), Some(Refusal::Busy));
        // A second later their buckets are full again: they are forgotten, the newcomer admitted.
        let later = now + chrono::Duration::seconds(1);
        assert!(a.admit("new.example", later).is_ok());
        assert_eq!(a.hosts.len(), 1);
    }
}
