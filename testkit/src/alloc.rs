//! Peak heap use of a piece of code, for the tests that bound the memory a
//! hostile image may take: install [`Counting`] as the test binary's
//! `#[global_allocator]`, then measure with [`peak_bytes`] under [`serial`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Most bytes one `hash_image` under `Limits::edge()` may hold at once: the
/// 48 MiB decode cap, half of it again for a conversion to 8-bit RGB, and
/// 16 MiB of luma (4 bytes a sample, at most 4 MP at full resolution).
pub const PEAK_BOUND: usize = (48 << 20) + (24 << 20) + (16 << 20);

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting the process's live bytes and their peak,
/// so that the memory one `hash_image` call needs can be measured (and
/// bounded). Counted for the whole process, not per thread: natively the
/// JPEG decoder hands rows to a thread of its own, which frees them. A
/// measurement is only meaningful while nothing else runs, so callers
/// hold [`serial`].
pub struct Counting;

fn track(delta: isize) {
    let now = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            track(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            track(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            track(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// Runs `f` and returns its result with the most bytes allocated at once
/// while it ran (beyond what was live before). Meaningful only in a binary
/// whose `#[global_allocator]` is [`Counting`], under [`serial`].
pub fn peak_bytes<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = f();
    let peak = PEAK.load(Ordering::Relaxed);
    (out, (peak - before).max(0) as usize)
}

static SERIAL: Mutex<()> = Mutex::new(());

/// Held by every test that measures memory, so tests in one binary take
/// turns (libtest would otherwise run them on parallel threads).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
