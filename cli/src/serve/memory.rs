//! The service's memory: a budget for the request bodies it holds, and
//! giving memory back to the system when idle.
//!
//! Bodies are most of what the service holds: up to `--max-body` each, and
//! many clients may upload at once. Admission (`--max-inflight`) counts
//! requests, not bytes, so the bytes are counted here: a request takes its
//! body's size from the budget (`--max-buffered`) before a byte of it is
//! held: all of `Content-Length` at once, or a chunked body as it grows.
//! When the budget cannot give that, the request is refused with 503 at
//! once instead of queueing. The bytes return to the budget when the body
//! is freed, after hashing. A body is read into one buffer sized from
//! `Content-Length`, so it is held once, not as received pieces plus a
//! joined copy.
//!
//! Freed memory is only worth the bound if the process gives it back.
//! glibc's malloc raises its mmap threshold up to 32 MiB after large frees,
//! so later bodies and decode buffers come from heap arenas that stay
//! resident; [`tune_allocator`] fixes the threshold so they are mapped and
//! unmapped on their own, and [`release_when_idle`] trims the heaps once
//! the service has gone idle.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::Metrics;

/// Allocations from this size up are mapped on their own and unmapped
/// when freed.
const MMAP_THRESHOLD: usize = 256 << 10;

/// Bytes of request bodies held at once.
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
}

/// Bytes taken from the budget, given back when dropped.
pub struct Reserved {
    permits: Vec<OwnedSemaphorePermit>,
    bytes: usize,
}

impl Reserved {
    /// Bytes held.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl BodyBudget {
    pub fn new(bytes: usize) -> Self {
        BodyBudget {
            bytes: Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))),
        }
    }

    /// Nothing reserved yet.
    pub fn empty() -> Reserved {
        Reserved {
            permits: Vec::new(),
            bytes: 0,
        }
    }

    /// Grows `reserved` to at least `bytes`, without waiting; `false` when
    /// the budget cannot give that much now.
    pub fn grow(&self, reserved: &mut Reserved, bytes: usize) -> bool {
        if bytes <= reserved.bytes {
            return true;
        }
        let more = bytes - reserved.bytes;
        let Ok(more_u32) = u32::try_from(more) else {
            return false;
        };
        match Arc::clone(&self.bytes).try_acquire_many_owned(more_u32) {
            Ok(permit) => {
                reserved.permits.push(permit);
                reserved.bytes = bytes;
                true
            }
            Err(_) => false,
        }
    }
}

/// Sets malloc's mmap threshold (see the module doc). glibc only.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called once at
    // start, before the runtime's threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

/// Gives freed heap memory back to the system. glibc only.
fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Trims the heaps once after each busy spell: when a check finds no
/// request in flight and some were handled since the last trim.
pub async fn release_when_idle(metrics: Arc<Metrics>) {
    let mut handled_at_trim = 0;
    let mut ticks = tokio::time::interval(Duration::from_millis(500));
    loop {
        ticks.tick().await;
        let handled = metrics.requests_handled();
        if metrics.inflight_now() == 0 && handled != handled_at_trim {
            handled_at_trim = handled;
            // Trimming walks the heaps; keep it off the async threads.
            let _ = tokio::task::spawn_blocking(release).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_gives_what_it_has_and_takes_it_back() {
        let budget = BodyBudget::new(100);
        let mut a = BodyBudget::empty();
        assert!(budget.grow(&mut a, 60));
        assert!(budget.grow(&mut a, 80));
        assert_eq!(a.bytes(), 80);
        let mut b = BodyBudget::empty();
        assert!(!budget.grow(&mut b, 21));
        assert!(budget.grow(&mut b, 20));
        drop(a);
        assert!(budget.grow(&mut b, 100));
    }
}
