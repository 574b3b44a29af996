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

use core::cell::{Cell, RefCell};

/// A hook run before a system call that gives memory back.
type Hook = Box<dyn Fn(SystemCall)>;

thread_local! {
    static FAIL_MAPS: Cell<u32> = const { Cell::new(0) };
    static FAIL_PURGES: Cell<u32> = const { Cell::new(0) };
    static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// A system call through which the pool gives memory back to the OS, as passed to an
/// [`on_system_call`] hook.
///
/// ```
/// use perfloc::fault_injection::SystemCall;
///
/// let call = SystemCall::Purge;
/// assert_ne!(call, SystemCall::Unmap);
/// assert_eq!(format!("{call:?}"), "Purge");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemCall {
    /// `munmap` of a whole top chunk.
    Unmap,
    /// `madvise(MADV_DONTNEED)` of free blocks.
    Purge,
}

/// Runs `hook` on this thread just before each `munmap` or `madvise` the pool makes on it,
/// until [`clear`]: a test can check what other threads can do meanwhile (for example,
/// that they can take the pool's lock, which downsizing does not hold across these calls).
///
/// ```
/// use perfloc::fault_injection::{self, SystemCall};
/// use std::{cell::Cell, rc::Rc};
///
/// let pool = perfloc::Pool::builder().retain(0).build()?;
/// let seen = Rc::new(Cell::new(0));
/// let counter = Rc::clone(&seen);
/// fault_injection::on_system_call(move |call| {
///     assert_eq!(call, SystemCall::Unmap);
///     counter.set(counter.get() + 1);
/// });
/// drop(pool.chunk());
/// pool.trim(); // the idle top chunk goes back
/// fault_injection::clear();
/// assert_eq!(seen.get(), 1);
/// # Ok::<(), perfloc::ConfigError>(())
/// ```
pub fn on_system_call(hook: impl Fn(SystemCall) + 'static) {
    HOOK.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
}

/// The next `n` maps of top chunks on this thread fail (`u32::MAX`: all, until [`clear`]).
///
/// ```
/// use perfloc::fault_injection;
///
/// let pool = perfloc::Pool::new();
/// // The 1 MiB top chunk's mapping fails; the pool falls back to one just big enough.
/// fault_injection::fail_next_maps(1);
/// let chunk = pool.try_chunk()?;
/// assert_eq!(pool.top_chunk_sizes(), [16 << 10]);
/// assert_eq!(pool.stats().mmap_calls, 2, "failed calls count too");
/// # Ok::<(), perfloc::AllocError>(())
/// ```
pub fn fail_next_maps(n: u32) {
    FAIL_MAPS.with(|f| f.set(n));
}

/// The next `n` purges (`madvise`) on this thread fail (`u32::MAX`: all, until [`clear`]).
///
/// ```
/// use perfloc::fault_injection;
///
/// let pool = perfloc::Pool::builder().retain(0).build()?;
/// let chunk = pool.chunk();
/// let kept = pool.chunk(); // keeps the top chunk mapped: its free blocks can only be purged
/// drop(chunk);
/// fault_injection::fail_next_purges(u32::MAX);
/// pool.trim();
/// assert_eq!(pool.stats().purged_bytes, 0, "the purge failed: nothing purged");
/// fault_injection::clear();
/// pool.trim();
/// assert!(pool.stats().purged_bytes > 0);
/// # drop(kept);
/// # Ok::<(), perfloc::ConfigError>(())
/// ```
pub fn fail_next_purges(n: u32) {
    FAIL_PURGES.with(|f| f.set(n));
}

/// Disarms every fault on this thread and removes its [`on_system_call`] hook.
///
/// ```
/// use perfloc::fault_injection;
///
/// fault_injection::fail_next_maps(u32::MAX);
/// fault_injection::clear();
/// assert!(perfloc::Pool::new().try_chunk().is_ok());
/// ```
pub fn clear() {
    fail_next_maps(0);
    fail_next_purges(0);
    // Taken out before it drops, so that a hook owning pool values may drop them.
    drop(HOOK.with(|h| h.borrow_mut().take()));
}

/// Runs this thread's hook, if any, before `call`.
pub(crate) fn before(call: SystemCall) {
    let _ = HOOK.try_with(|h| {
        if let Some(hook) = &*h.borrow() {
            hook(call);
        }
    });
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
