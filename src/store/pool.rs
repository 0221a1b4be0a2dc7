//! How many connections a store may hold, and what they cost in file descriptors.
//!
//! A store connection is a file descriptor or two, and the HTTP layer derives its connection cap
//! from the open-file limit ([`crate::http::fd_budget`]); so the store's pools are bounded, and
//! the bound is reserved in that budget. Without it a burst of feed misses (each a read) opened
//! a SQLite reader per blocking thread — hundreds, kept for ever — until `accept` failed with
//! `Too many open files`.
//!
//! The bounds follow the work that can use them: reads run for feed misses, which at most
//! `cores` render at once, plus the API, stats and the poller. So a store keeps at most
//! [`PoolBounds::readers`] readers (twice the HTTP workers, at least 2); a caller finding all of
//! them busy waits up to [`PoolBounds::wait`] (2 s) for one, then the store is *unavailable*
//! (a 503 with `Retry-After`, or a stale copy), rather than opening another. A connection idle
//! for [`PoolBounds::idle`] (60 s) is closed, so a burst's connections do not outlive it.

use std::time::Duration;

/// The bounds of a store's connection pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolBounds {
    /// Reading connections at most (SQLite: readers beside its one writer; PostgreSQL: the pool
    /// is this plus [`PG_WRITERS`]).
    pub readers: usize,
    /// Longest a caller waits for a free connection before the store reports itself unavailable.
    pub wait: Duration,
    /// A connection unused this long is closed.
    pub idle: Duration,
}

/// Connections a PostgreSQL pool has beyond the readers, for writes (the API, the poller's
/// leases, readership flushes), which SQLite serialises on its one writer instead.
pub const PG_WRITERS: usize = 2;

impl PoolBounds {
    /// The bounds for a process serving on `workers` HTTP threads.
    pub fn for_workers(workers: usize) -> PoolBounds {
        PoolBounds {
            readers: workers.saturating_mul(2).clamp(2, 256),
            wait: Duration::from_secs(2),
            idle: Duration::from_secs(60),
        }
    }

    /// The PostgreSQL pool's size.
    pub fn postgres_size(&self) -> usize {
        self.readers + PG_WRITERS
    }

    /// File descriptors a SQLite store holds at most: the writer and each reader keep the
    /// database and its WAL open (two each), and the process maps the shared-memory index
    /// once; one more for the directory SQLite opens briefly to sync a new file.
    pub fn sqlite_descriptors(&self) -> usize {
        (self.readers + 1) * 2 + 2
    }

    /// File descriptors a PostgreSQL store holds at most: one socket per pooled connection and
    /// the `LISTEN` connection's.
    pub fn postgres_descriptors(&self) -> usize {
        self.postgres_size() + 1
    }

    /// Runs `close` every half [`PoolBounds::idle`] for as long as `upgrade` gives the store
    /// back: both stores hold only a weak handle in the task, so dropping the store ends it.
    pub fn close_idle_every<T: Send + 'static, F>(
        &self,
        upgrade: impl Fn() -> Option<T> + Send + 'static,
        close: impl Fn(T, Duration) -> F + Send + 'static,
    ) where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let idle = self.idle;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval((idle / 2).max(Duration::from_millis(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(store) = upgrade() else { break };
                close(store, idle).await;
            }
        });
    }
}

impl Default for PoolBounds {
    /// For a process with one worker per core (the CLI's commands, tests).
    fn default() -> Self {
        PoolBounds::for_workers(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_the_workers() {
        assert_eq!(PoolBounds::for_workers(1).readers, 2);
        assert_eq!(PoolBounds::for_workers(2).readers, 4);
        assert_eq!(PoolBounds::for_workers(16).readers, 32);
        assert_eq!(PoolBounds::for_workers(10_000).readers, 256);
        let b = PoolBounds::for_workers(2);
        assert_eq!(b.sqlite_descriptors(), 12);
        assert_eq!(b.postgres_size(), 6);
        assert_eq!(b.postgres_descriptors(), 7);
    }
}
