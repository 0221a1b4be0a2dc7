//! What the hub tells the newsroom: `bantin subscriptions` (a table, or JSON). Pure functions
//! of stored rows. (Push subscribers in the readership figures: [`crate::readership::push`].)
//!
//! A callback is a capability URL (whoever knows it can post to the subscriber), so listings
//! show it without its query string, and never a secret.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use url::Url;

use crate::config::Config;
use crate::store::subscriptions::Subscription;

/// A callback for people to read: scheme, host, port and path; a query is shown as `?…`.
pub fn display_callback(url: &Url) -> String {
    let mut u = url.clone();
    let had_query = u.query().is_some();
    u.set_query(None);
    u.set_fragment(None);
    let mut s = u.to_string();
    if had_query {
        s.push_str("?…");
    }
    s
}

fn display(callback: &str) -> String {
    Url::parse(callback)
        .map(|u| display_callback(&u))
        .unwrap_or_else(|_| "(unreadable)".into())
}

/// `bantin subscriptions --json`: every active subscription, times in the site zone.
pub fn status(config: &Config, subs: &[Subscription]) -> Value {
    let zone = config.zone;
    let time = |t: Option<DateTime<Utc>>| t.map(|t| zone.rfc3339(t));
    let list: Vec<Value> = subs
        .iter()
        .map(|s| {
            json!({
                "topic": s.topic,
                "callback": display(&s.callback),
                "host": s.host,
                "signed": s.secret.is_some(),
                "lease_seconds": s.lease_seconds,
                "expires_at": zone.rfc3339(s.expires_at),
                "created_at": zone.rfc3339(s.created_at),
                "state": state(s),
                "failures": s.attempts,
                "next_attempt": (s.pending()).then(|| zone.rfc3339(s.next_attempt)),
                "last_success": time(s.last_success),
                "last_error": s.last_error,
            })
        })
        .collect();
    json!({ "subscriptions": list })
}

/// `ok` (delivered everything), `pending` (a delivery is due) or `retrying` (the last one
/// failed).
fn state(s: &Subscription) -> &'static str {
    match (s.pending(), s.attempts) {
        (false, _) => "ok",
        (true, 0) => "pending",
        (true, _) => "retrying",
    }
}

/// The same as [`status`], as a table for a terminal.
pub fn table(config: &Config, subs: &[Subscription]) -> String {
    if subs.is_empty() {
        return "no active subscriptions\n".into();
    }
    let base = config.public_base();
    let v = status(config, subs);
    let s = crate::table::cell;
    let mut rows = vec![[
        "topic".to_string(),
        "callback".into(),
        "state".into(),
        "expires".into(),
        "last success".into(),
        "failures".into(),
        "last error".into(),
    ]];
    for sub in v["subscriptions"].as_array().into_iter().flatten() {
        let topic = s(&sub["topic"]);
        rows.push([
            topic
                .strip_prefix(base.as_str().trim_end_matches('/'))
                .unwrap_or(&topic)
                .to_string(),
            s(&sub["callback"]),
            s(&sub["state"]),
            s(&sub["expires_at"]),
            s(&sub["last_success"]),
            s(&sub["failures"]),
            s(&sub["last_error"]),
        ]);
    }
    crate::table::render(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = crate::article::tests::config();
        c.public_url = Some(Url::parse("https://feeds.example/").unwrap());
        c
    }

    #[test]
    fn callbacks_are_shown_without_their_query() {
        let u = Url::parse("https://reader.example:8443/push/7?token=SECRET#x").unwrap();
        assert_eq!(display_callback(&u), "https://reader.example:8443/push/7?…");
        assert_eq!(
            display_callback(&Url::parse("http://r.example/cb").unwrap()),
            "http://r.example/cb"
        );
    }

    #[test]
    fn listing_shows_state_and_never_the_secret() {
        let c = config();
        let t = DateTime::parse_from_rfc3339("2026-11-30T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut s = Subscription::new(
            "https://feeds.example/vi/rss.xml",
            "https://reader.example/cb?token=SECRET",
            "reader.example",
            Some("hush".into()),
            3600,
            t,
        );
        let v = status(&c, std::slice::from_ref(&s));
        let one = &v["subscriptions"][0];
        assert_eq!(one["callback"], "https://reader.example/cb?…");
        assert_eq!(one["state"], "ok");
        assert_eq!(one["signed"], true);
        assert_eq!(one["expires_at"], "2026-11-30T09:00:00+07:00");
        s.updates = 2;
        s.attempts = 3;
        s.last_error = Some("answered 503".into());
        let text = table(&c, &[s]);
        assert!(text.contains("/vi/rss.xml"), "{text}");
        assert!(
            text.contains("retrying") && text.contains("answered 503"),
            "{text}"
        );
        assert!(!text.contains("SECRET") && !text.contains("hush"), "{text}");
        assert_eq!(table(&c, &[]), "no active subscriptions\n");
    }
}
