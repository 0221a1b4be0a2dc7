//! The allocator's side of the memory budget.
//!
//! The cache bounds what it holds (`[cache] max_bytes`), but freed memory only lowers the
//! process's resident size if the allocator gives it back. glibc's malloc, by default, raises its
//! mmap threshold each time a large block is freed (up to 32 MiB), so rendered feeds and their
//! compression buffers (hundreds of KB each) end up inside the heap, where freeing them leaves holes
//! that are rarely returned; and it keeps one arena per thread that ever allocated (the blocking
//! pool has dozens), each holding its own free memory. So, on glibc:
//! - a fixed mmap threshold of 128 KiB: large buffers are mapped and unmapped, returned at once;
//! - at most two arenas per core: little contention (the hot path barely allocates), little
//!   memory held idle;
//! - `malloc_trim` every few seconds from a background thread, which returns free pages inside
//!   the heap to the kernel (glibc does this only at the top of the heap on its own).
//!
//! Elsewhere these are no-ops and the platform's allocator behaves as it does.

use std::time::Duration;

/// How often free heap pages are given back.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Configures the allocator for a long-running server and starts the trimming thread.
pub fn tune_for_serving() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // SAFETY: mallopt and malloc_trim only change the allocator's policies; they are called
        // with valid parameters, before and beside ordinary allocation, as glibc allows.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
            libc::mallopt(libc::M_ARENA_MAX, (2 * cores) as libc::c_int);
        }
        let _ = std::thread::Builder::new()
            .name("bantin-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TRIM_EVERY);
                    // SAFETY: see above.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
    }
}
