//! The bytes in flight in one isolate: a budget every body read for
//! scanning is counted against.
//!
//! An isolate has 128 MB for everything, and a wasm module's linear memory
//! never shrinks: twelve concurrent 15.5 MiB images read at once would
//! take 188 MiB and kill the isolate with every request in it. So each
//! body read for scanning (a response, an upload, the whole object behind
//! a range, a decoded copy) first reserves what it will hold, and gives it
//! back when its check is over ([`Reservation`] is released on drop). A
//! body whose `Content-Length` is known reserves that at once; one of
//! unknown length reserves as it grows. When the budget is spent, the read
//! waits, polling every [`POLL_MS`], up to the policy's
//! `memory_budget.wait_ms`; then it is a failure ([`BudgetError`]) and the
//! route's fail mode applies, as for any image that could not be checked.
//!
//! The budget (`memory_budget.bytes`, default [`DEFAULT_BUDGET_BYTES`])
//! counts the bytes the worker holds in wasm memory. The runtime holds the
//! same bytes once more in the tee of the original body while it is read,
//! and decoding an image takes a few MiB more (one at a time: hashing is
//! synchronous), so the isolate's peak is about twice the budget plus that:
//! the default of 32 MiB keeps it well below 128 MB, and still holds one
//! body of the largest `max_bytes` (25 MiB).

use thiserror::Error;

/// Default `memory_budget.bytes`.
pub const DEFAULT_BUDGET_BYTES: usize = 32 << 20;
/// Smallest `memory_budget.bytes`.
pub const MIN_BUDGET_BYTES: usize = 1 << 20;
/// Largest `memory_budget.bytes`.
pub const MAX_BUDGET_BYTES: usize = 96 << 20;
/// Default `memory_budget.wait_ms`.
pub const DEFAULT_WAIT_MS: u32 = 5_000;
/// Largest `memory_budget.wait_ms`.
pub const MAX_WAIT_MS: u32 = 30_000;
/// How often a waiting read looks again.
pub const POLL_MS: u32 = 10;

// The default leaves room in a 128 MB isolate (twice the budget: wasm and
// the runtime's tee; plus a decode) and holds one body of the largest
// `max_bytes`.
const _: () = assert!(2 * DEFAULT_BUDGET_BYTES + (16 << 20) < 128_000_000);
const _: () = assert!(DEFAULT_BUDGET_BYTES >= crate::policy::MAX_MAX_BYTES);

/// Why a body could not get memory to be read into.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BudgetError {
    /// More than the whole budget.
    #[error("{wanted} bytes is more than the isolate's memory budget of {budget} bytes")]
    TooLarge { wanted: usize, budget: usize },
    /// The budget stayed spent for the whole wait.
    #[error("the isolate's memory budget of {budget} bytes stayed spent for {waited_ms} ms")]
    Busy { budget: usize, waited_ms: u32 },
}

/// The budget's settings, from the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSettings {
    pub bytes: usize,
    pub wait_ms: u32,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            bytes: DEFAULT_BUDGET_BYTES,
            wait_ms: DEFAULT_WAIT_MS,
        }
    }
}

/// The count of bytes in flight (one per isolate).
#[derive(Debug, Default)]
pub struct Ledger {
    in_flight: usize,
}

impl Ledger {
    /// Takes `bytes` if they fit within `budget`.
    pub fn try_take(&mut self, bytes: usize, budget: usize) -> bool {
        match self.in_flight.checked_add(bytes) {
            Some(total) if total <= budget => {
                self.in_flight = total;
                true
            }
            _ => false,
        }
    }

    /// Gives `bytes` back.
    pub fn give(&mut self, bytes: usize) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
    }

    /// Bytes in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(target_arch = "wasm32")]
pub use runtime::*;

#[cfg(target_arch = "wasm32")]
mod runtime {
    use std::cell::RefCell;
    use std::time::Duration;

    use super::{BudgetError, BudgetSettings, Ledger, POLL_MS};

    thread_local! {
        static LEDGER: RefCell<Ledger> = RefCell::new(Ledger::default());
    }

    /// Bytes in flight in this isolate now.
    pub fn in_flight() -> usize {
        LEDGER.with(|l| l.borrow().in_flight())
    }

    /// Memory held for one body; given back when dropped.
    #[derive(Debug)]
    pub struct Reservation {
        held: usize,
        settings: BudgetSettings,
    }

    impl Reservation {
        /// An empty reservation under `settings`.
        pub fn new(settings: BudgetSettings) -> Self {
            Reservation { held: 0, settings }
        }

        /// Bytes held.
        pub fn held(&self) -> usize {
            self.held
        }

        /// Holds `total` bytes (no-op if it already holds as many), waiting
        /// for the budget up to `wait_ms`.
        pub async fn grow_to(&mut self, total: usize) -> Result<(), BudgetError> {
            if total <= self.held {
                return Ok(());
            }
            let budget = self.settings.bytes;
            if total > budget {
                return Err(BudgetError::TooLarge {
                    wanted: total,
                    budget,
                });
            }
            let more = total - self.held;
            let mut waited = 0u32;
            loop {
                if LEDGER.with(|l| l.borrow_mut().try_take(more, budget)) {
                    self.held = total;
                    return Ok(());
                }
                if waited >= self.settings.wait_ms {
                    return Err(BudgetError::Busy {
                        budget,
                        waited_ms: waited,
                    });
                }
                worker::Delay::from(Duration::from_millis(u64::from(POLL_MS))).await;
                waited = waited.saturating_add(POLL_MS);
            }
        }
    }

    impl Drop for Reservation {
        fn drop(&mut self) {
            let held = self.held;
            LEDGER.with(|l| l.borrow_mut().give(held));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_within_the_budget_and_gives_back() {
        let mut ledger = Ledger::default();
        assert!(ledger.try_take(30, 100));
        assert!(ledger.try_take(70, 100));
        assert!(!ledger.try_take(1, 100));
        ledger.give(30);
        assert_eq!(ledger.in_flight(), 70);
        assert!(ledger.try_take(30, 100));
        assert!(!ledger.try_take(usize::MAX, usize::MAX));
        ledger.give(1000);
        assert_eq!(ledger.in_flight(), 0);
    }
}
