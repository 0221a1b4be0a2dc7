//! Changed WebSub topics: what a write tells the built-in hub, in bounded memory.
//!
//! A write only records the page-1 URLs it changed here and returns; the hub's marking task
//! takes them and marks their subscriptions in the store. It is a leaf of its own so that the
//! application layer ([`crate::app`]), which records, does not depend on the hub
//! ([`crate::hub`]), which renders through the application layer to deliver.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::sync::Notify;

/// Changed topics waiting to be marked at most (a store outage must not exhaust memory);
/// beyond, a change is not delivered (logged), as the outbox does for external hubs.
pub const MAX_WAITING: usize = 10_000;

/// The set of changed topics waiting for the hub; [`ChangedTopics::disabled`] records nothing.
#[derive(Debug, Default)]
pub struct ChangedTopics {
    enabled: bool,
    waiting: Mutex<BTreeSet<String>>,
    changed: Notify,
}

impl ChangedTopics {
    /// Records changes for a running hub.
    pub fn new() -> ChangedTopics {
        ChangedTopics {
            enabled: true,
            ..ChangedTopics::default()
        }
    }

    /// Records nothing (no built-in hub).
    pub fn disabled() -> ChangedTopics {
        ChangedTopics::default()
    }

    /// A write changed these topics. Never waits.
    pub fn published(&self, topics: &[String]) {
        if !self.enabled || topics.is_empty() {
            return;
        }
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            for t in topics {
                if waiting.len() >= MAX_WAITING && !waiting.contains(t) {
                    tracing::error!(topic = %t, "hub: too many changed topics waiting; this change is not delivered");
                    continue;
                }
                waiting.insert(t.clone());
            }
        }
        self.changed.notify_one();
    }

    /// Takes every waiting topic.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()))
            .into_iter()
            .collect()
    }

    /// Puts back topics that could not be marked (as room allows), without waking anyone.
    pub fn put_back(&self, topics: Vec<String>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        for t in topics {
            if waiting.len() < MAX_WAITING {
                waiting.insert(t);
            }
        }
    }

    /// Resolves after the next [`ChangedTopics::published`] (or at once if one came since the
    /// last wait).
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_records_nothing_and_the_bound_holds() {
        let off = ChangedTopics::disabled();
        off.published(&["a".into()]);
        assert!(off.take().is_empty());

        let on = ChangedTopics::new();
        let many: Vec<String> = (0..MAX_WAITING + 5).map(|i| format!("t{i}")).collect();
        on.published(&many);
        on.published(&["t0".into()]);
        let taken = on.take();
        assert_eq!(taken.len(), MAX_WAITING, "at most MAX_WAITING wait");
        assert!(on.take().is_empty());
        on.put_back(taken);
        assert_eq!(on.take().len(), MAX_WAITING);
    }
}
