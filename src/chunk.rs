//! The process chunk: one scope's arena, a chain of blocks lent by the pool.
//!
//! This file holds the type, its fields and its fast paths: bumping in the current block
//! ([`ProcessChunk::try_alloc_layout`]), rewinding the newest allocation
//! ([`ProcessChunk::dealloc`]) and growing it in place ([`ProcessChunk::grow`]). Each slow
//! path is a file of its own, which opens with the invariants it keeps:
//!
//! | file | concern |
//! |---|---|
//! | `successor.rs` | a full block: the successor after it, its size and the doubling |
//! | `dedicated.rs` | blocks of their own for large allocations, and their list |
//! | `grow.rs` | growth and shrinking past the fast path: a block grown in place, or a move |
//! | `checkpoint.rs` | nested scopes: checkpoints, rewinding, and why a checkpoint is never trusted |
//! | `reset.rs` | reset and drop: the blocks going back to the pool |
//! | `limits.rs` | the chunk's limit and the refusals it records |
//! | `stats.rs` | [`ChunkStats`] and `Debug` |
//! | `state.rs` | the two bump states, [`LocalBump`] and [`SharedBump`] |
//! | `nounwind.rs` | why the slow paths are `extern "C"` |
//!
//! # Layout
//!
//! - **Regular blocks** start with a [`BlockHeader`]. The chunk bumps upward in the newest
//!   one (the *current* block). When it is full, the chunk takes a *successor* block and
//!   links it from the old block's header (`next`), so the chain runs `first → … →
//!   current` and has the chunk's lifetime.
//! - **Dedicated (large) blocks** hold one allocation each, carry no header, and are
//!   recorded in a list of [`LargeNode`]s that live in the chunk's own bump memory.
//! - **Two kinds, one implementation.** [`ProcessChunk`] is generic over its bump state:
//!   [`LocalBump`] (`Cell`s) makes a [`Chunk`], `!Sync`, whose fast path is a handful of
//!   instructions and one branch; [`SharedBump`] (each block's cursor an atomic in its
//!   header, moved by compare-and-swap; the current block an `AtomicPtr`; the slow path
//!   under a mutex) makes a [`SyncChunk`], `Send + Sync`. Everything else in this module,
//!   in `direct` and in `alloc_impl` is written once for both.
//!
//! [`ChunkStats`]: crate::ChunkStats
//!
//! # Invariants (relied on by every `unsafe` block in this module)
//!
//! 1. The state's current block and every block reachable from `first` through `next` are
//!    live regular blocks lent to this chunk by `pool`, each starting with an initialised
//!    header whose `size` is the block's size; the chain ends at the current block (its
//!    `next` is null). A header is initialised before it is linked or made current. A
//!    `Chunk`'s current block may grow in place: the pool lends it the buddies above it,
//!    then `size` and the state's end change together, and the chunk's `held` with them
//!    (invariant 5); a `SyncChunk`'s sizes never change.
//! 2. The current block's cursor `c` (in the state) satisfies
//!    `data_start(current) <= c <= end == current + current.size < bump::MAX_ADDR` (blocks
//!    lie in top chunks, which end below it); `c` is a multiple of `bump::MIN_ALIGN`; bytes
//!    in `c..end` are not handed out. The same holds for every older block's `cursor`.
//! 3. Every node reachable from the state's `large` list is initialised, lies in a regular
//!    block of this chunk, and describes a live large block lent to this chunk, linked
//!    exactly once. The list is only read and written under [`state::StateOps::slow`].
//! 4. Nothing hands out a `&mut` to chunk state across user code: a `Chunk`'s state is in
//!    `Cell`s, read and written by value, and `Chunk` is `!Sync`; a `SyncChunk`'s state is
//!    in atomics and behind a mutex.
//! 5. The slow-path state's `held` is the total size of the regular and large blocks the
//!    chunk holds, plus blocks admitted and being taken from the pool; it never exceeds
//!    `limit` through an admission (a lowered limit may leave it above).
//!
//! # What a chunk takes from its caller, and why each is sound
//!
//! Everything a caller hands a chunk, and what the chunk relies on, with the tests that
//! hold it (under Miri and ASan in CI).
//!
//! - **A [`Checkpoint`]** (`rewind_to`, `try_rewind_to`, the end of `scoped`): from safe
//!   code, so it may be another chunk's (alive or dropped, even one whose blocks this chunk
//!   now reuses), older than a reset, or made stale by a rewind. Never trusted: accepted
//!   only if it carries this chunk's identity (never reused in the process), was taken
//!   since the last reset, and its block is still in the chain with its cursor inside; the
//!   proof that a rewind to any checkpoint so accepted leaves every large node intact is in
//!   `checkpoint.rs`. Tests: `tests/it/trust.rs`, `checkpoints.rs`, and the model test's
//!   `ForeignRewind` and `ScopedReplace` operations.
//! - **A `Layout`** (`try_alloc_layout`, `allocate`, the direct methods): from safe code, any
//!   size and alignment a `Layout` allows. Every size computation is checked
//!   (`bump::fit`, `bump::regular_need`, `bump::large_need`, `Pool::block_size_for` return
//!   `None` on overflow or past [`MAX_SIZE`](crate::config::MAX_SIZE)), so a huge or over-aligned request is
//!   `AllocError` with the chunk unchanged; a zero-size one is a dangling pointer that owns
//!   nothing. Tests: `bad_input::layouts_near_isize_max_and_huge_alignments_are_errors`,
//!   `limits::requests_near_isize_max_are_errors`,
//!   `limits::a_failed_over_aligned_request_does_not_grow_the_chunk`,
//!   `allocator::zero_size_layouts_work_for_every_alignment_and_use_no_memory`.
//! - **A pointer and its layout** (`deallocate`, `grow`, `shrink` of the `Allocator` impl):
//!   `unsafe`, and the caller promises allocator-api2's contract: a live allocation of this
//!   chunk, made or last resized with that layout's size. Within that contract the chunk
//!   does not trust more than it must. The allocation is the newest of the current block
//!   only if it ends exactly at the bump pointer, which no allocation of another block can
//!   (the bump pointer lies past the current block's header); a zero-size allocation is
//!   never the newest when freed (it may alias any address) and is never found in a large
//!   block. Whether an allocation lives in a large block is decided by its address alone,
//!   not by the layout: a large allocation may have been shrunk to any size, even to fit
//!   the current block. Any other pointer is left alone: freeing it gives nothing back.
//!   Tests: `bad_input::foreign_pointers_never_corrupt_the_chunk_that_receives_them`,
//!   `allocator::foreign_grow_shrink_and_free_never_clobber_other_allocations`,
//!   `trust::a_zero_size_allocation_is_never_taken_for_the_newest`,
//!   `dedicated_blocks::a_large_block_shrunk_to_any_size_goes_back_when_deallocated`,
//!   `dedicated_blocks::a_shrunk_large_allocation_that_fits_the_current_block_moves_there`.
//! - **A limit** (`set_limit`): any value; a limit below what the chunk holds only refuses
//!   new blocks. Tests: `tests/it/chunk_limits.rs`.

use core::alloc::Layout;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize};
#[cfg(doc)]
use state::StateOps;

use allocator_api2::alloc::AllocError;

use crate::bump;
use crate::pool::{Block, Pool};

mod checkpoint;
mod dedicated;
mod grow;
mod limits;
mod nounwind;
mod reset;
mod state;
mod stats;
mod successor;

pub use checkpoint::{Checkpoint, CheckpointError};
use dedicated::LargeNode;
pub use state::{BumpState, LocalBump, SharedBump};
use state::{Resize, Slow};

/// Header at the start of every regular block.
///
/// Its fields are atomics so that a [`SyncChunk`]'s threads may share them; for a [`Chunk`]
/// the `Relaxed` loads and stores compile to plain moves, and only its slow path uses them.
#[repr(C)]
pub(crate) struct BlockHeader {
    /// The successor block; null for the current block. Written once (`Release`), when the
    /// successor is installed, after the successor's header is initialised.
    next: AtomicPtr<BlockHeader>,
    /// Size of the block in bytes, header included. Immutable for a [`SyncChunk`] (its
    /// threads read it without a lock). A [`Chunk`] may grow its current block in place
    /// over free buddies ([`ProcessChunk::grow_current`]): only then does `size` change, on
    /// the slow path, written through the raw pointer while no reference to the header is
    /// alive, together with the state's end of the block (invariant 2).
    size: usize,
    /// The block's cursor: the address of its next free byte. A [`SyncChunk`] bumps it
    /// directly; a [`Chunk`] keeps the current block's cursor in the chunk and writes it
    /// here when the block stops being current.
    cursor: AtomicUsize,
}

const HEADER: usize = size_of::<BlockHeader>();

/// A process chunk of either kind: [`Chunk`] (one thread at a time) or [`SyncChunk`]
/// (shared between threads). Everything but the bump state is one implementation: the
/// block chain, successors, large blocks, reset, drop, the direct-allocation methods and
/// the `Allocator` impl for `&ProcessChunk`.
///
/// Use the aliases; this type appears in signatures generic over the kind:
///
/// ```
/// use perfloc::{BumpState, ProcessChunk};
///
/// fn greet<'c, K: BumpState>(chunk: &'c ProcessChunk<'_, K>, name: &str) -> &'c str {
///     let s = chunk.alloc_str("hello, ");
///     let t = chunk.alloc_str(name);
///     let mut out = allocator_api2::vec::Vec::new_in(chunk);
///     out.extend_from_slice(s.as_bytes());
///     out.extend_from_slice(t.as_bytes());
///     chunk.alloc_str(core::str::from_utf8(&out).unwrap())
/// }
/// assert_eq!(greet(&perfloc::chunk(), "local"), "hello, local");
/// assert_eq!(greet(&perfloc::sync_chunk(), "shared"), "hello, shared");
/// ```
pub struct ProcessChunk<'pool, K: BumpState> {
    /// The bump state: the current block and its cursor, the large blocks, the next
    /// successor's size (invariants 1–3 in its terms).
    state: K,
    /// The oldest regular block, head of the successor chain (invariant 1). Changes only
    /// under `&mut self`.
    first: NonNull<BlockHeader>,
    pool: &'pool Pool,
}

/// A process chunk for one thread at a time: an arena for one scope, whose blocks come
/// from a [`Pool`].
///
/// Allocate with the methods of [`ProcessChunk`] or through `&Chunk` as an
/// [`allocator_api2::alloc::Allocator`] for `Vec`, `Box` and `hashbrown::HashMap`. When the
/// chunk drops, all its blocks go back to the pool at once, with no system call, in time
/// proportional to the number of blocks, not allocations.
///
/// A `Chunk` is `Send` (it may be dropped on another thread) but not `Sync`: its bump
/// pointer is a plain `Cell`. Use a [`SyncChunk`] to share one between threads, or to keep
/// collections in it across an `.await` in a task that may move between threads.
///
/// ```compile_fail,E0277
/// fn shared_between_threads<T: Sync>() {}
/// shared_between_threads::<perfloc::Chunk<'static>>();
/// ```
///
/// A collection in a chunk cannot outlive it:
///
/// ```compile_fail,E0597
/// use allocator_api2::vec::Vec;
///
/// let pool = perfloc::Pool::new();
/// let escaped = {
///     let chunk = pool.chunk();
///     let mut v: Vec<u8, &perfloc::Chunk> = Vec::new_in(&chunk);
///     v.push(1);
///     v
/// };
/// ```
///
/// and the chunk cannot be reset while one lives:
///
/// ```compile_fail,E0502
/// use allocator_api2::vec::Vec;
///
/// let mut chunk = perfloc::chunk();
/// let mut v: Vec<u8, &perfloc::Chunk> = Vec::new_in(&chunk);
/// v.push(1);
/// chunk.reset();
/// v.push(2);
/// ```
pub type Chunk<'pool> = ProcessChunk<'pool, LocalBump>;

/// A process chunk that threads share: `Send + Sync`, so `Vec`, `Box` and
/// `hashbrown::HashMap` in it are `Send + Sync` when their contents are, and a task holding
/// them across an `.await` can be `tokio::spawn`ed on a multi-thread runtime.
///
/// It takes its blocks from the same pool, links successors and large blocks the same way
/// and has the same methods as [`Chunk`]. Its bump is lock-free: each block's cursor is an
/// atomic moved by compare-and-swap; a successor block is installed by one thread under a
/// small mutex while the others retry. Allocating costs a compare-and-swap more than in a
/// `Chunk`: prefer `Chunk` where one thread owns the scope.
///
/// ```
/// use allocator_api2::vec::Vec;
///
/// let chunk = perfloc::sync_chunk();
/// let mut evens: Vec<u32, &perfloc::SyncChunk> = Vec::new_in(&chunk);
/// std::thread::scope(|s| {
///     let odd = s.spawn(|| chunk.alloc_slice_fill_with(100, |i| 2 * i as u32 + 1));
///     evens.extend((0..100).map(|i| 2 * i));
///     assert_eq!(odd.join().unwrap()[99], 199);
/// });
/// assert_eq!(evens[99], 198);
/// ```
///
/// A `SyncChunk` cannot be dropped or reset while another thread is inside an allocation,
/// nor while any allocation lives: both need the chunk by value or by `&mut`, while every
/// allocating thread and every collection holds a `&SyncChunk` borrow. A collection
/// cannot outlive its chunk:
///
/// ```compile_fail,E0597
/// use allocator_api2::vec::Vec;
///
/// let pool = perfloc::Pool::new();
/// let escaped = {
///     let chunk = pool.sync_chunk();
///     let mut v: Vec<u8, &perfloc::SyncChunk> = Vec::new_in(&chunk);
///     v.push(1);
///     v
/// };
/// ```
///
/// and the chunk cannot be reset while one lives:
///
/// ```compile_fail,E0502
/// use allocator_api2::vec::Vec;
///
/// let mut chunk = perfloc::sync_chunk();
/// let mut v: Vec<u8, &perfloc::SyncChunk> = Vec::new_in(&chunk);
/// v.push(1);
/// chunk.reset();
/// v.push(2);
/// ```
pub type SyncChunk<'pool> = ProcessChunk<'pool, SharedBump>;

// SAFETY: a chunk exclusively owns its blocks (nothing else points into them except borrows
// of the chunk), and the pool it returns them to is `Sync`. Moving the whole chunk to
// another thread moves that ownership. A `Chunk`'s borrows cannot cross threads, as it is
// not `Sync`; a `SyncChunk`'s may, see below.
unsafe impl<K: BumpState> Send for ProcessChunk<'_, K> {}

// SAFETY: every state a `&SyncChunk` reaches is synchronised: the current block and each
// block's cursor are atomics moved by compare-and-swap (so two threads never receive
// overlapping bytes), headers are published with `Release` after they are written, and the
// large blocks and successor installation sit behind `SharedBump`'s mutex. `first` and
// `pool` are immutable under `&self`.
unsafe impl Sync for SyncChunk<'_> {}

impl<'pool, K: BumpState> ProcessChunk<'pool, K> {
    #[inline]
    pub(crate) fn new(pool: &'pool Pool) -> Result<Self, AllocError> {
        let block = pool.acquire_first()?;
        let header = new_header(block);
        // Successors start at half the configured first block, whatever size the pool
        // learned for this one; clamped where it is used ([`ProcessChunk::next_successor`]).
        let slow = Slow::new(pool.first_block_size() / 2, block.size, pool.chunk_limit());
        Ok(ProcessChunk { state: K::new(header, slow), first: header, pool })
    }

    /// The pool this chunk takes its blocks from.
    ///
    /// ```
    /// let pool = perfloc::Pool::new();
    /// let chunk = pool.sync_chunk();
    /// assert!(core::ptr::eq(chunk.pool(), &pool));
    /// ```
    pub fn pool(&self) -> &'pool Pool {
        self.pool
    }

    /// A child chunk of the same kind from the same pool, like a Postgres child context:
    /// the parent's allocations stay usable while the child lives, and the child's blocks
    /// go back to the pool when it drops. The parent cannot be reset while a child lives.
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let parent = perfloc::chunk(); // or perfloc::sync_chunk()
    /// let mut kept: Vec<u32, _> = Vec::new_in(&parent);
    /// for i in 0..3 {
    ///     let child = parent.child();
    ///     let scratch = child.alloc_slice_fill_with(1000, |j| j as u32 * i);
    ///     kept.push(scratch.iter().sum());
    /// } // each child's blocks go back here
    /// assert_eq!(kept, [0, 499500, 999000]);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the child's first block; see
    /// [`ProcessChunk::try_child`].
    pub fn child(&self) -> ProcessChunk<'_, K> {
        match self.try_child() {
            Ok(child) => child,
            Err(AllocError) => panic!(
                "perfloc: the pool could not provide a child chunk's first block: {}; \
                 use try_child to handle this",
                self.pool.refusal(self.pool.first_block_size())
            ),
        }
    }

    /// A child chunk, or `AllocError` if the pool cannot provide its first block.
    ///
    /// ```
    /// let parent = perfloc::sync_chunk();
    /// let child = parent.try_child()?;
    /// assert_eq!(*child.alloc(1u8), 1);
    /// # Ok::<(), perfloc::AllocError>(())
    /// ```
    pub fn try_child(&self) -> Result<ProcessChunk<'_, K>, AllocError> {
        ProcessChunk::new(self.pool)
    }

    /// Allocates memory for `layout`, or returns `AllocError` if the pool has none to give.
    /// The memory is uninitialised and lives until the chunk is reset or dropped.
    ///
    /// Zero-size layouts succeed and use at most alignment padding; every alignment a
    /// `Layout` can hold works.
    ///
    /// ```
    /// use core::alloc::Layout;
    ///
    /// let chunk = perfloc::chunk();
    /// let p = chunk.try_alloc_layout(Layout::from_size_align(100, 64).unwrap())?;
    /// assert_eq!(p.as_ptr() as usize % 64, 0);
    /// # Ok::<(), perfloc::AllocError>(())
    /// ```
    #[inline(always)]
    pub fn try_alloc_layout(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        match self.state.bump(layout) {
            Some(ptr) => Ok(ptr),
            None => self.alloc_slow(layout),
        }
    }

    /// The slow path: zero-size layouts, a successor block, or a large block. Out of line
    /// and unable to unwind ([`nounwind`]).
    #[inline(always)]
    fn alloc_slow(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        #[cold]
        #[inline(never)]
        extern "C" fn nounwind_alloc_slow<K: BumpState>(
            chunk: &ProcessChunk<'_, K>,
            size: usize,
            align: usize,
        ) -> *mut u8 {
            // SAFETY: `size` and `align` come from a `Layout`.
            let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
            nounwind::to_raw(chunk.alloc_slow_body(layout))
        }
        nounwind::from_raw(nounwind_alloc_slow(self, layout.size(), layout.align()))
    }

    /// Deallocates; see the `Allocator` impl for `&ProcessChunk`. The newest allocation is
    /// rewound; only a chunk with large blocks looks further, out of line. Where panics
    /// unwind, a `Chunk` does all of it in one out-of-line call
    /// ([`StateOps::DEALLOC_OUT_OF_LINE`]).
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `layout` made by this chunk.
    #[inline]
    pub(crate) unsafe fn dealloc(&self, ptr: NonNull<u8>, layout: Layout) {
        if K::DEALLOC_OUT_OF_LINE {
            nounwind_dealloc(self, ptr, layout.size());
        } else {
            self.dealloc_here(ptr, layout.size());
        }

        /// Out of line and unable to unwind ([`nounwind`]).
        #[inline(never)]
        extern "C" fn nounwind_dealloc<K: BumpState>(
            chunk: &ProcessChunk<'_, K>,
            ptr: NonNull<u8>,
            size: usize,
        ) {
            chunk.dealloc_here(ptr, size);
        }
    }

    /// [`ProcessChunk::dealloc`]'s work: rewinds the newest allocation, else gives a large
    /// block back (out of line).
    #[inline(always)]
    fn dealloc_here(&self, ptr: NonNull<u8>, size: usize) {
        if !self.state.rewind(ptr, size) {
            if self.state.may_have_large() {
                nounwind_dealloc_large(self, ptr, size);
            } else {
                self.state.count_freed(bump::footprint(size));
            }
        }

        /// Out of line and unable to unwind ([`nounwind`]).
        #[cold]
        #[inline(never)]
        extern "C" fn nounwind_dealloc_large<K: BumpState>(
            chunk: &ProcessChunk<'_, K>,
            ptr: NonNull<u8>,
            size: usize,
        ) {
            chunk.dealloc_large(ptr, size);
        }
    }

    /// Grows in place when possible, else moves; see the `Allocator` impl.
    ///
    /// Only a call here: the work is out of line (inlined into every `Vec` type's growth
    /// path it bloated the callers' hot loops: +20% on `request_cycle_small`) and unable to
    /// unwind ([`nounwind`]). The common case, growing the newest allocation of the current
    /// block, is a compare and a store in [`ProcessChunk::grow_fast`]; everything else
    /// waits in [`ProcessChunk::grow_slow`], which takes the same arguments so that the
    /// fast path reaches it by a tail call.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk, and
    /// `new.size() >= old.size()`.
    #[inline(always)]
    pub(crate) unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        // SAFETY: the caller's contract.
        nounwind::from_raw(unsafe {
            Self::grow_fast(self, ptr, old.size(), old.align(), new.size(), new.align())
        })
    }

    /// [`ProcessChunk::grow`] in place, as a leaf; else a tail call of the slow path with
    /// the same arguments. The layouts travel as their sizes and alignments.
    ///
    /// # Safety
    ///
    /// As for [`ProcessChunk::grow`].
    #[inline(never)]
    unsafe extern "C" fn grow_fast(
        chunk: &Self,
        ptr: NonNull<u8>,
        old_size: usize,
        old_align: usize,
        new_size: usize,
        new_align: usize,
    ) -> *mut u8 {
        if aligned_for(ptr, old_align, new_align) {
            if let Resize::Done(start) = chunk.state.resize(ptr, old_size, new_size) {
                return start.as_ptr();
            }
        }
        // SAFETY: the caller's contract.
        unsafe { Self::grow_slow(chunk, ptr, old_size, old_align, new_size, new_align) }
    }
}

/// Writes a fresh header at the start of `block` and returns it.
fn new_header(block: Block) -> NonNull<BlockHeader> {
    let header = block.ptr.cast::<BlockHeader>();
    // The block comes poisoned from the pool: open its header, keep its data closed until
    // allocations take it.
    crate::asan::unpoison(block.ptr, HEADER);
    let cursor = block.ptr.addr().get() + HEADER;
    // SAFETY: the block is at least `MIN_BLOCK_SIZE` bytes, aligned to at least that, and
    // exclusively ours, so a header fits at its start.
    unsafe {
        header.write(BlockHeader {
            next: AtomicPtr::new(ptr::null_mut()),
            size: block.size,
            cursor: AtomicUsize::new(cursor),
        })
    };
    header
}

/// First byte after a regular block's header.
fn data_start(header: NonNull<BlockHeader>) -> NonNull<u8> {
    // SAFETY: every block is larger than its header (invariant 1, `MIN_BLOCK_SIZE`).
    unsafe { header.cast::<u8>().add(HEADER) }
}

/// One past the last byte of the block of `size` bytes at `ptr`.
fn block_end(ptr: NonNull<u8>, size: usize) -> NonNull<u8> {
    // SAFETY: one past the end of the block's own allocation is in bounds for `add`.
    unsafe { ptr.add(size) }
}

/// True if `ptr`, aligned for `old_align`, is aligned for `new_align` too: only a larger
/// alignment needs a look at it.
#[inline(always)]
fn aligned_for(ptr: NonNull<u8>, old_align: usize, new_align: usize) -> bool {
    new_align <= old_align || bump::padding(ptr.addr().get(), new_align) == 0
}

/// A non-null pointer aligned to `align`, without provenance: a zero-size allocation.
fn dangling(align: usize) -> NonNull<u8> {
    NonNull::new(ptr::without_provenance_mut(align)).expect("alignments are non-zero")
}
