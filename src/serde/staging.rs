//! The staging stack: where a sequence's elements wait until its length is known, so that
//! the `Vec` deserialized into a chunk is allocated once, at its exact length.
//!
//! A chunk takes back only its newest allocation. While a sequence is parsed, each element
//! allocates its own fields (text, inner vectors) after the `Vec` that collects it, so that
//! `Vec` is never the newest when it doubles: every doubling moves it and strands the old
//! copy until the chunk is dropped. A body of 20 items left 4.8 KiB of such copies beside
//! 3.5 KiB of items (a `Vec` of capacity 32 for 20). With no length announced (JSON
//! announces none) the elements are parked here instead, and moved into the chunk once.
//!
//! - **One stack per thread**, of [`STAGING_BYTES`], taken from the global allocator on
//!   first use and kept for the thread's life. A sequence opens a [`Staged`] at the top,
//!   pushes its elements, and closes it by moving them into the chunk. Nested sequences
//!   (an element's own vectors) open and close above it while one of its elements is
//!   parsed, before that element is pushed: the stack discipline of the calls.
//! - **Bounded.** A sequence that does not fit in what is left spills: its elements move
//!   into a `Vec` in the chunk, which grows from there by doubling as before. So a hostile
//!   body meets the chunk's limit, never an unbounded buffer outside it.
//! - **Not for every type.** Zero-sized elements, elements aligned to more than
//!   [`ALIGN`], and a thread whose stack is gone (a thread-local destructor parsing) take
//!   the doubling path.
//! - **Errors and panics** drop the staged elements (their fields are the chunk's and go
//!   back as any drop does) and give the stack back to the level below.
//!
//! Invariants: while a `Staged` is open, the bytes `start..top` of the stack are its
//! initialised elements, and `top` is the thread's stack top; levels above it close (and
//! restore `top`) before it pushes again.

use core::alloc::Layout;
use core::cell::Cell;
use core::marker::PhantomData;
use core::ptr::NonNull;

use allocator_api2::alloc::Allocator;
use allocator_api2::vec::Vec;

/// Bytes of one thread's staging stack; a sequence that finds no room spills.
pub(crate) const STAGING_BYTES: usize = 1 << 20;

/// The stack's alignment: elements aligned to more take the doubling path.
pub(crate) const ALIGN: usize = 16;

/// One thread's stack: `base` is null until first used.
struct Stack {
    base: Cell<*mut u8>,
    top: Cell<usize>,
}

impl Stack {
    const LAYOUT: Layout = match Layout::from_size_align(STAGING_BYTES, ALIGN) {
        Ok(layout) => layout,
        Err(_) => panic!("a valid layout"),
    };

    /// The stack's memory, allocated on first use; `None` if the global allocator refuses.
    fn base(&self) -> Option<NonNull<u8>> {
        if self.base.get().is_null() {
            // SAFETY: `LAYOUT` has a non-zero size.
            self.base.set(unsafe { std::alloc::alloc(Self::LAYOUT) });
        }
        NonNull::new(self.base.get())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(base) = NonNull::new(self.base.get()) {
            // SAFETY: allocated in `base` with this layout, and no `Staged` is open: each
            // holds the stack only during a call that cannot outlive the thread.
            unsafe { std::alloc::dealloc(base.as_ptr(), Self::LAYOUT) };
        }
    }
}

std::thread_local! {
    static STACK: Stack = const { Stack { base: Cell::new(core::ptr::null_mut()), top: Cell::new(0) } };
}

/// A sequence's elements parked on the thread's staging stack (see the module docs).
pub(crate) struct Staged<T> {
    /// Where the stack's top was when this opened, restored when it closes.
    below: usize,
    /// Offset of the first element (`below` aligned for `T`).
    start: usize,
    /// Elements pushed; `start..start + len * size_of::<T>()` is the stack's top.
    len: usize,
    /// The stack's memory.
    base: NonNull<u8>,
    /// It owns `T`s; `*const` keeps it `!Send` and `!Sync`, as the stack is the thread's.
    _owns: PhantomData<*const T>,
}

impl<T> Staged<T> {
    /// Opens a level at the thread's stack top; `None` when `T` does not go on the stack
    /// (zero-sized, aligned to more than [`ALIGN`]) or the stack is unavailable.
    pub(crate) fn open() -> Option<Self> {
        if size_of::<T>() == 0 || align_of::<T>() > ALIGN {
            return None;
        }
        STACK
            .try_with(|stack| {
                let base = stack.base()?;
                let below = stack.top.get();
                let start = below.next_multiple_of(align_of::<T>());
                Some(Staged { below, start, len: 0, base, _owns: PhantomData })
            })
            .ok()
            .flatten()
    }

    /// Parks `item`; gives it back when the stack has no room for it.
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        let at = self.start + self.len * size_of::<T>();
        let end = at + size_of::<T>();
        if end > STAGING_BYTES {
            return Err(item);
        }
        // SAFETY: `at + size_of::<T>() <= STAGING_BYTES`, inside the stack's allocation;
        // `at` is aligned for `T` (`start` is, and so is every multiple of its size past
        // it; `base` is aligned to `ALIGN >= align_of::<T>()`). Levels opened above this
        // one while `item` was parsed have closed (module invariant), so nothing else
        // lives there.
        unsafe { self.base.as_ptr().add(at).cast::<T>().write(item) };
        self.len += 1;
        let _ = STACK.try_with(|stack| stack.top.set(end));
        Ok(())
    }

    /// Elements parked.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Moves the parked elements into a new `Vec` in `alloc`, with room for `extra` more;
    /// `None` (the elements dropped) if `alloc` refuses.
    pub(crate) fn into_vec<A: Allocator>(mut self, alloc: A, extra: usize) -> Option<Vec<T, A>> {
        let mut vec: Vec<T, A> = Vec::new_in(alloc);
        vec.try_reserve_exact(self.len.checked_add(extra)?).ok()?;
        // SAFETY: the stack holds `len` initialised `T`s from `start` (module invariant),
        // the vector has room for them, and the two do not overlap (the vector is in
        // `alloc`). Setting `len` to 0 after the copy hands them to the vector: `drop`
        // drops none of them.
        unsafe {
            let from = self.base.as_ptr().add(self.start).cast::<T>();
            vec.as_mut_ptr().copy_from_nonoverlapping(from, self.len);
            vec.set_len(self.len);
        }
        self.len = 0;
        Some(vec)
    }
}

impl<T> Drop for Staged<T> {
    fn drop(&mut self) {
        // The level below gets the stack back first, so that an element's drop that
        // panics cannot leave it short. The thread-local is alive: it was when this level
        // opened, and a level lives only within a call on this thread.
        let _ = STACK.try_with(|stack| stack.top.set(self.below));
        // SAFETY: the `len` elements from `start` are initialised and owned by this level
        // (`into_vec` sets `len` to 0 once they are moved out); nothing is pushed over
        // them while they drop.
        unsafe {
            let first = self.base.as_ptr().add(self.start).cast::<T>();
            core::ptr::slice_from_raw_parts_mut(first, self.len).drop_in_place();
        }
    }
}
