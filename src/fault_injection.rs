//! A test hook: make the OS layer fail on purpose (cargo feature `fault-injection`).
//!
//! Faults are armed for the **calling thread only**, so tests running in parallel do not
//! disturb each other; the pool's work for a call happens on the calling thread. A failed
//! map or purge behaves exactly like one the kernel refused.
//!
//! ```
//! use perfloc::fault_injection;
//!
//! let pool = perfloc::Pool::new();
//! fault_injection::fail_next_maps(u32::MAX);
//! assert!(pool.try_chunk().is_err());
//! fault_injection::clear();
//! assert!(pool.try_chunk().is_ok());
//! ```

use core::cell::Cell;

thread_local! {
    static FAIL_MAPS: Cell<u32> = const { Cell::new(0) };
    static FAIL_PURGES: Cell<u32> = const { Cell::new(0) };
}

/// The next `n` maps of top chunks on this thread fail (`u32::MAX`: all, until [`clear`]).
pub fn fail_next_maps(n: u32) {
    FAIL_MAPS.with(|f| f.set(n));
}

/// The next `n` purges (`madvise`) on this thread fail (`u32::MAX`: all, until [`clear`]).
pub fn fail_next_purges(n: u32) {
    FAIL_PURGES.with(|f| f.set(n));
}

/// Disarms every fault on this thread.
pub fn clear() {
    fail_next_maps(0);
    fail_next_purges(0);
}

/// Consumes one armed fault of `kind`; true when the call must fail.
fn take(kind: &'static std::thread::LocalKey<Cell<u32>>) -> bool {
    kind.try_with(|f| match f.get() {
        0 => false,
        u32::MAX => true,
        n => {
            f.set(n - 1);
            true
        }
    })
    .unwrap_or(false)
}

/// True when this map must fail.
pub(crate) fn map_fails() -> bool {
    take(&FAIL_MAPS)
}

/// True when this purge must fail.
pub(crate) fn purge_fails() -> bool {
    take(&FAIL_PURGES)
}
