//! Background work at the lowest priority, bounded: today, recompressing cached feeds at the best
//! ratio (see `cache`).
//!
//! A feed is compressed once and sent thousands of times, so squeezing its bodies harder is worth
//! a few hundred milliseconds of CPU, but never at the expense of answering polls. So the work runs
//! on its own threads, one per core (one job at a time each), at nice 19: the kernel gives them
//! what the HTTP workers leave. The queue is bounded; a job offered when it is full is dropped (the
//! entry stays at the fast level, correct and a little larger).

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// Handle to the background threads; cheap to clone.
#[derive(Clone)]
pub struct Background {
    tx: SyncSender<Job>,
}

impl Background {
    /// Starts `threads` threads sharing a queue of at most `queue` jobs.
    pub fn start(name: &str, threads: usize, queue: usize) -> Background {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let _ = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || run(rx));
        }
        Background { tx }
    }

    /// Queues `job`; false when the queue is full (the job is dropped).
    pub fn offer(&self, job: impl FnOnce() + Send + 'static) -> bool {
        match self.tx.try_send(Box::new(job)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

fn run(rx: Arc<Mutex<Receiver<Job>>>) {
    lowest_priority();
    loop {
        let job = {
            let rx = rx.lock().unwrap_or_else(|p| p.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        job();
    }
}

/// Nice 19 for the calling thread (on Linux the nice value is per thread).
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on this thread's own id with a valid nice value.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_and_a_full_queue_drops_the_rest() {
        let bg = Background::start("test-bg", 1, 1);
        let (block_tx, block_rx) = std::sync::mpsc::channel::<()>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<u32>();
        // The first job holds the only thread; the second fills the queue; the third is dropped.
        let d = done_tx.clone();
        assert!(bg.offer(move || {
            block_rx.recv().unwrap();
            d.send(1).unwrap();
        }));
        std::thread::sleep(std::time::Duration::from_millis(50));
        let d = done_tx.clone();
        assert!(bg.offer(move || d.send(2).unwrap()));
        let d = done_tx.clone();
        assert!(!bg.offer(move || d.send(3).unwrap()), "the queue holds one");
        block_tx.send(()).unwrap();
        let got: Vec<u32> = (0..2).map(|_| done_rx.recv().unwrap()).collect();
        assert_eq!(got, [1, 2]);
        assert!(
            done_rx
                .recv_timeout(std::time::Duration::from_millis(100))
                .is_err()
        );
    }
}
