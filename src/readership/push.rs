//! Push subscribers: the built-in hub's subscriptions counted as subscribers of their feed, one
//! client per callback host (as an aggregator is one client), with as many subscribers as that
//! host has active subscriptions to the feed (distinct callbacks: a self-hosted FreshRSS or
//! CommaFeed subscribes once per instance, so one host is usually one subscription, while a host
//! running several instances, or a service with a callback per user, has several). A push
//! subscription does not say how many people read through it, so this is a floor, like a
//! reader's sketch entry. A reader that subscribes by WebSub stops polling, so without this it
//! would vanish from the figures the moment push starts working. (An aggregator that both
//! polls with a subscriber count in its User-Agent and subscribes by push counts twice: a
//! User-Agent's name and a callback host cannot be matched reliably, and such services stop
//! polling once pushed to.)
//!
//! Bounded without a bound of its own: only subscriptions that were verified and whose lease has
//! not ended are in the store, and the hub keeps those under `[websub] max_subscriptions` and
//! `max_subscriptions_per_host`; a stranger's unverified requests never reach them. They are
//! read grouped by (topic, host), one row per pair, when figures are computed, never kept.
//!
//! Present state, not history: subscriptions are counted at the moment figures are computed, so
//! they appear in today's live figures and the gauge, and in yesterday's figures when that day is
//! closed (just after midnight). A day closed later than that (after downtime) is left without
//! them rather than given today's.

use std::collections::BTreeMap;

use super::figures::{ClientFigure, Live};

/// The `kind` of a push client in the figures.
pub const KIND: &str = "push";

/// Push clients per feed path, taken out feed by feed as the figures are computed.
#[derive(Debug, Default)]
pub struct PushFigures {
    by_feed: BTreeMap<String, Vec<ClientFigure>>,
}

impl PushFigures {
    /// From the store's (topic, callback host, subscriptions) rows; `feed_path` names a topic's
    /// feed as readership names feeds, or refuses a topic that is not one of ours now.
    pub fn from_rows(
        rows: Vec<(String, String, u64)>,
        feed_path: impl Fn(&str) -> Option<String>,
    ) -> PushFigures {
        let mut by_feed: BTreeMap<String, Vec<ClientFigure>> = BTreeMap::new();
        for (topic, host, n) in rows {
            let Some(feed) = feed_path(&topic) else {
                continue;
            };
            let clients = by_feed.entry(feed).or_default();
            // A host may subscribe to one feed in several formats: one client, summed.
            match clients.iter_mut().find(|c| c.client == host) {
                Some(c) => c.subscribers = c.subscribers.saturating_add(n),
                None => clients.push(ClientFigure {
                    client: host,
                    kind: KIND.into(),
                    subscribers: n,
                }),
            }
        }
        PushFigures { by_feed }
    }

    pub fn is_empty(&self) -> bool {
        self.by_feed.is_empty()
    }

    /// Adds `feed`'s push clients to its live figures, and forgets them (each feed once).
    pub fn add_to(&mut self, feed: &str, live: &mut Live) {
        if let Some(clients) = self.by_feed.remove(feed) {
            add(live, clients);
        }
    }

    /// The feeds not taken yet (push subscribers and no polls), as live figures of their own.
    pub fn take_rest(&mut self) -> Vec<(String, Live)> {
        std::mem::take(&mut self.by_feed)
            .into_iter()
            .map(|(feed, clients)| {
                let mut live = Live {
                    subscribers: 0,
                    readers: 0,
                    clients: Vec::new(),
                    claims: Vec::new(),
                };
                add(&mut live, clients);
                (feed, live)
            })
            .collect()
    }
}

fn add(live: &mut Live, clients: Vec<ClientFigure>) {
    for c in clients {
        live.subscribers = live.subscribers.saturating_add(c.subscribers);
        live.clients.push(c);
    }
    live.clients.sort_by(super::figures::by_size);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<(String, String, u64)> {
        let r = |t: &str, h: &str, n| (format!("https://feeds.example{t}"), h.to_string(), n);
        vec![
            r("/vi/atom.xml", "push.freshrss.example", 2),
            r("/vi/rss.xml", "newsblur.example", 1),
            r("/vi/rss.xml", "push.freshrss.example", 3),
            r("/vi/rss.xml", "newsblur.example", 1),
            r("/gone/rss.xml", "newsblur.example", 5),
        ]
    }

    fn path(topic: &str) -> Option<String> {
        topic
            .strip_prefix("https://feeds.example")
            .filter(|p| p.starts_with("/vi/"))
            .map(str::to_string)
    }

    #[test]
    fn each_callback_host_is_one_client_with_its_subscriptions() {
        let mut push = PushFigures::from_rows(rows(), path);
        let mut live = Live {
            subscribers: 10,
            readers: 10,
            clients: vec![ClientFigure {
                client: "NetNewsWire".into(),
                kind: "reader".into(),
                subscribers: 10,
            }],
            claims: Vec::new(),
        };
        push.add_to("/vi/rss.xml", &mut live);
        assert_eq!(live.subscribers, 10 + 3 + 2);
        let clients: Vec<(&str, &str, u64)> = live
            .clients
            .iter()
            .map(|c| (c.client.as_str(), c.kind.as_str(), c.subscribers))
            .collect();
        assert_eq!(
            clients,
            [
                ("NetNewsWire", "reader", 10),
                ("push.freshrss.example", "push", 3),
                ("newsblur.example", "push", 2),
            ]
        );
        // Taken once: a second page naming the feed again adds nothing.
        push.add_to("/vi/rss.xml", &mut live);
        assert_eq!(live.subscribers, 15);
        // The feed nobody polls still has its subscriber; a topic no longer ours has none.
        let rest = push.take_rest();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, "/vi/atom.xml");
        assert_eq!(rest[0].1.subscribers, 2);
        assert!(push.is_empty());
    }
}
