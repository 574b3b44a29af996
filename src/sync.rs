//! The synchronisation primitives the crate uses: `std`'s, or loom's under `cfg(loom)`.
//!
//! The pool's concurrent parts (the pool-wide lock, the shards' locks, the `excess` flag,
//! the shard of each thread) take their primitives from here, so that
//! `RUSTFLAGS="--cfg loom" cargo test --test loom` can model-check them with
//! [loom](https://docs.rs/loom): loom runs a test under every interleaving of these
//! primitives' operations (up to a preemption bound).
//!
//! Normal builds re-export `std`'s types unchanged. Under loom:
//!
//! - [`Mutex`] and [`AtomicBool`] are thin wrappers that keep a `const fn new`, as
//!   `Pool::new`, `Shard::new` and `[const { Shard::new() }; SHARDS]` need, and create
//!   loom's primitive on first use: loom's own constructors are not `const`, and its
//!   objects belong to one model execution. The operations loom sees are the same (lock,
//!   unlock, load, store); creating an object is no synchronisation. So a value holding
//!   them must be made inside the model (as every loom test's pools are), never in a
//!   plain `static`: `Pool::global()` is a loom lazy static, one per execution.
//! - `thread_local!` is loom's (one value per loom thread and execution), and
//!   [`next_thread_number`] numbers threads by loom's thread ids, the same way in every
//!   execution, with no shared counter whose accesses loom would have to interleave.
//! - [`yield_now`] is loom's: a thread that waits for another must yield through loom, or
//!   loom keeps running it and reports a livelock ("exceeded maximum number of branches").

// Normal builds: `std`'s own.
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicBool, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard, PoisonError};
#[cfg(not(loom))]
pub(crate) use std::thread::yield_now;
#[cfg(not(loom))]
pub(crate) use std::thread_local;

// Under loom; `Mutex`, `AtomicBool` and `thread_local!` are below.
#[cfg(loom)]
pub(crate) use loom::sync::MutexGuard;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::Ordering;
#[cfg(loom)]
pub(crate) use loom::thread::yield_now;
#[cfg(loom)]
pub(crate) use std::sync::{LockResult, PoisonError};

/// `loom::thread_local!`, which also takes `std`'s `const { … }` initialisers (loom's
/// macro, of an older edition, cannot match them as an expression).
#[cfg(loom)]
macro_rules! loom_thread_local {
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = const { $init:expr };) => {
        loom::thread_local! { $(#[$attr])* $vis static $name: $t = $init; }
    };
}
#[cfg(loom)]
pub(crate) use loom_thread_local as thread_local;

/// Numbers threads 0, 1, 2, … in the order they ask; each thread should ask once.
#[cfg(not(loom))]
pub(crate) fn next_thread_number() -> usize {
    use core::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The calling thread's loom id: 0 for the model's main thread, then 1, 2, … in the order
/// threads are spawned, in every execution.
#[cfg(loom)]
pub(crate) fn next_thread_number() -> usize {
    // Loom shows the number only through `Debug`: "ThreadId(n)".
    let id = format!("{:?}", loom::thread::current().id());
    id.trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .expect("loom's ThreadId prints as ThreadId(n)")
}

/// `std::sync::Mutex` with a `const fn new`, over loom's mutex made on first use.
#[cfg(loom)]
pub(crate) struct Mutex<T> {
    /// The value until the first lock moves it into `loom`.
    init: std::sync::Mutex<Option<T>>,
    loom: std::sync::OnceLock<loom::sync::Mutex<T>>,
}

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Self {
        Mutex { init: std::sync::Mutex::new(Some(value)), loom: std::sync::OnceLock::new() }
    }

    #[track_caller]
    pub(crate) fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.loom
            .get_or_init(|| {
                let value = self.init.lock().unwrap_or_else(PoisonError::into_inner).take();
                loom::sync::Mutex::new(value.expect("taken only here, once"))
            })
            .lock()
    }
}

#[cfg(loom)]
impl<T> core::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Mutex").finish_non_exhaustive()
    }
}

/// `std::sync::atomic::AtomicBool` with a `const fn new`, over loom's made on first use.
#[cfg(loom)]
pub(crate) struct AtomicBool {
    init: bool,
    loom: std::sync::OnceLock<loom::sync::atomic::AtomicBool>,
}

#[cfg(loom)]
impl AtomicBool {
    pub(crate) const fn new(value: bool) -> Self {
        AtomicBool { init: value, loom: std::sync::OnceLock::new() }
    }

    fn get(&self) -> &loom::sync::atomic::AtomicBool {
        self.loom.get_or_init(|| loom::sync::atomic::AtomicBool::new(self.init))
    }

    #[track_caller]
    pub(crate) fn load(&self, order: Ordering) -> bool {
        self.get().load(order)
    }

    #[track_caller]
    pub(crate) fn store(&self, value: bool, order: Ordering) {
        self.get().store(value, order);
    }
}

#[cfg(loom)]
impl core::fmt::Debug for AtomicBool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AtomicBool").finish_non_exhaustive()
    }
}
