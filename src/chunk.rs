//! The process chunk: one scope's arena, a chain of blocks lent by the pool.
//!
//! # Layout
//!
//! - **Regular blocks** start with a [`BlockHeader`]. The chunk bumps upward in the newest
//!   one (the *current* block). When it is full, the chunk takes a *successor* block and
//!   links it from the old block's header (`next`), so the chain runs `first → … →
//!   current` and has the chunk's lifetime. Successors start at half the first block (the
//!   pool's smallest block) and double up to [`PoolBuilder::max_block_size`], then stay
//!   there, like Postgres' `maxBlockSize`: the empty end of the newest block stays small.
//!   A successor sized for a larger request counts as a step of the doubling but does not
//!   set its pace (a single huge request must not inflate every later block).
//! - **Dedicated (large) blocks** hold one allocation: one of
//!   [`PoolBuilder::dedicated_threshold`] or more, one that would not fit in the next
//!   successor, or a reallocation that must move to grow past the threshold. They are
//!   whole pages sized for the request alone ([`Pool::acquire_run`]), carry no header
//!   (their [`LargeNode`] lives in the chunk's own bump memory), grow in place over the
//!   free pages above them ([`Pool::extend`]), and go back to the pool as soon as that
//!   allocation is deallocated or moves, like Postgres' blocks for chunks above
//!   `allocChunkLimit`. Whether an allocation lives in a dedicated block is decided by its
//!   address (the chunk knows every one's range), never by the layout the caller passes:
//!   after a `shrink` it may have any size. Shrinking one to size zero gives its block back
//!   at once (a zero-size allocation owns nothing).
//! - **A growing newest allocation** (a `Vec` pushed to megabytes) in a [`Chunk`], from half
//!   a first block's size on: when it outgrows the current block, the block itself grows
//!   in place over the free pages above it ([`Pool::extend`]), so the vector stays on the
//!   fast path and does not move. The first block while it is a first block's size is the
//!   exception: those are what the threads' local slots recycle. When the block cannot
//!   grow, the allocation moves: below the threshold to a successor sized for it and cut
//!   where the memory above it is free; from the threshold on to a dedicated block taken
//!   the same way, its bytes in the old block rewound, and the old block's grown end given
//!   back to the pool ([`ProcessChunk::trim_current`]). A [`SyncChunk`]'s blocks never
//!   grow (other threads read their size without a lock): its newest allocation moves
//!   through successors sized for it, then to a dedicated block from [`GROWABLE_NEWEST`]
//!   on (growth in a dedicated block takes the slow path and its mutex at every step).
//! - **Reset** keeps the largest block, large or regular, as the only regular block, and
//!   makes every earlier checkpoint stale.
//! - **Checkpoints: nested scopes in one chunk** (`checkpoint.rs`). A [`Checkpoint`]
//!   records the chunk's identity and position; [`ProcessChunk::rewind_to`] (which needs
//!   `&mut self`, so nothing allocated since can be alive) gives back every block taken
//!   since and puts the cursor back. [`ProcessChunk::scoped`] wraps the pair around a
//!   closure. Unlike [`ProcessChunk::child`], a scope takes no block from the pool.
//! - **Limits.** The slow-path state counts the bytes of every block the chunk holds, and
//!   their peak. A block that would take the count past the chunk's limit is refused
//!   before the pool is asked: the allocation fails with `AllocError` and nothing else
//!   changes. A successor that would pass the limit is first cut down to the largest
//!   power of two that still fits and still holds the request. Only blocks count, so the
//!   fast path (which takes none) costs nothing more. The refusal is recorded (chunk
//!   limit, or the pool's), for the panic messages of the non-`try_` methods.
//! - **Two kinds, one implementation.** [`ProcessChunk`] is generic over its bump state:
//!   [`LocalBump`] (`Cell`s) makes a [`Chunk`], `!Sync`, whose fast path is a handful of
//!   instructions and one branch; [`SharedBump`] (each block's cursor an atomic in its
//!   header, moved by compare-and-swap; the current block an `AtomicPtr`; the slow path
//!   under a mutex) makes a [`SyncChunk`], `Send + Sync`. Everything else in this module,
//!   in `direct` and in `alloc_impl` is written once for both.
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
//!   `None` on overflow or past [`MAX_SIZE`]), so a huge or over-aligned request is
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
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use allocator_api2::alloc::AllocError;

#[cfg(doc)]
use crate::PoolBuilder;
use crate::config::MAX_SIZE;
use crate::pool::{Block, Pool};
use crate::stats::ChunkStats;
use crate::{asan, bump, os};

mod checkpoint;
mod nounwind;
mod state;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use state::{BumpState, LocalBump, SharedBump};
use state::{Refusal, Resize, Slow};

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

/// From this size on, the newest allocation of a [`SyncChunk`]'s full block that grows
/// moves to a dedicated block that can grow in place ([`Pool::acquire_run`]) rather than
/// to a successor sized for it. Smaller ones keep growing on the fast path in successors:
/// growth in a dedicated block takes the slow path, under the chunk's mutex, which would
/// cost a vector grown by `reserve_exact(1)` more than the copies it saves.
const GROWABLE_NEWEST: usize = 128 * 1024;

/// Where a large block is recorded; allocated in the chunk's regular blocks.
pub(crate) struct LargeNode {
    next: Option<NonNull<LargeNode>>,
    /// Its number in the order large blocks were made: 1, 2, …; the list runs from the
    /// highest down, so the blocks newer than a checkpoint are a prefix of it.
    seq: usize,
    block: Block,
    /// Size of the allocation the block holds.
    used: usize,
}

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
        let size = pool.first_block_size();
        let block = pool.acquire(size, true)?;
        let header = new_header(block);
        // Clamped where it is used ([`ProcessChunk::next_successor`]).
        let slow = Slow::new(size / 2, size, pool.chunk_limit());
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

    /// Forgets everything allocated and keeps only the largest block for reuse, like
    /// `bumpalo::Bump::reset` and Postgres' keeper block. The other blocks go back to the
    /// pool. The largest block may be any of the chunk's, regular or one that held a large
    /// allocation: it becomes the chunk's only regular block, so the same work fits again
    /// without the pool. Checkpoints taken before a reset are stale after it.
    ///
    /// ```
    /// let mut chunk = perfloc::chunk(); // or perfloc::sync_chunk()
    /// for round in 0..10 {
    ///     for i in 0..1000u64 {
    ///         chunk.alloc(i * round);
    ///     }
    ///     chunk.reset();
    /// }
    /// assert_eq!(chunk.stats().blocks, 1);
    /// assert_eq!(chunk.stats().used_bytes, 0);
    ///
    /// chunk.alloc_slice_copy(&[0u8; 1 << 20]); // a block of its own
    /// chunk.reset();
    /// assert!(chunk.stats().capacity_bytes >= 1 << 20, "the largest block is kept");
    /// ```
    pub fn reset(&mut self) {
        let slow = self.state.slow(|slow| *slow);
        // Of blocks of one size, the last one `blocks` yields: the newest regular one.
        let keep = self.blocks().max_by_key(|block| block.size).expect("a chunk holds a block");
        self.pool.release(self.blocks().filter(|block| block.ptr != keep.ptr), false);
        // The kept block's header is rewritten too: it must end the chain again.
        let header = new_header(keep);
        self.first = header;
        let next_size = slow.next_size.max(keep.size.next_power_of_two().saturating_mul(2));
        let next_size = next_size.min(MAX_SIZE);
        let slow = Slow {
            peak: slow.peak,
            large_made: slow.large_made,
            ..Slow::new(next_size, keep.size, slow.limit)
        };
        self.state = K::new(header, slow);
        asan::poison(data_start(header), keep.size - HEADER);
    }

    /// Changes this chunk's limit on the bytes of blocks it holds (see
    /// [`PoolBuilder::chunk_limit`](crate::PoolBuilder::chunk_limit), which sets the limit
    /// new chunks start with); `None` lifts it. Blocks already held stay: a limit below
    /// what the chunk holds only refuses new blocks.
    ///
    /// ```
    /// use core::alloc::Layout;
    ///
    /// let chunk = perfloc::chunk();
    /// let big = Layout::array::<u8>(100 << 10).unwrap();
    /// chunk.set_limit(Some(64 << 10));
    /// assert!(chunk.try_alloc_layout(big).is_err());
    /// chunk.set_limit(None);
    /// assert!(chunk.try_alloc_layout(big).is_ok());
    /// assert_eq!(chunk.stats().limit, None);
    /// ```
    pub fn set_limit(&self, limit: Option<usize>) {
        self.state.slow(|slow| slow.limit = limit.unwrap_or(usize::MAX));
    }

    /// This chunk's limit on the bytes of blocks it holds, if it has one.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().chunk_limit(1 << 20).build()?;
    /// assert_eq!(pool.chunk().limit(), Some(1 << 20));
    /// assert_eq!(perfloc::chunk().limit(), None);
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub fn limit(&self) -> Option<usize> {
        let limit = self.state.slow(|slow| slow.limit);
        (limit != usize::MAX).then_some(limit)
    }

    /// True if the chunk refused an allocation since it was made or last reset: its limit,
    /// the pool's, the OS, or a request no block can hold. A typed way to tell "the cap was
    /// reached" (answer 413) from any other failure of work done in the chunk (400): no
    /// error text to match, and it holds whatever code (a parser, a formatter) swallowed or
    /// converted the error on the way.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().chunk_limit(64 << 10).build()?;
    /// let mut chunk = pool.chunk();
    /// let mut body: perfloc::Vec<u8> = perfloc::Vec::new_in(&chunk);
    /// assert!(body.try_reserve(16 << 10).is_ok());
    /// assert!(!chunk.refused());
    /// assert!(body.try_reserve(1 << 20).is_err()); // past the chunk's limit
    /// drop(body);
    /// assert!(chunk.refused());
    /// chunk.reset();
    /// assert!(!chunk.refused(), "a reset starts the chunk anew");
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub fn refused(&self) -> bool {
        self.state.slow(|slow| slow.refusal.ever())
    }

    /// Records a request that no block can hold (sizes past what the pool may hand out):
    /// refused, with no figures for the message.
    #[cold]
    fn no_block_holds_it(&self) -> AllocError {
        self.state.slow(|slow| slow.refusal = slow.refusal.no_block());
        AllocError
    }

    /// Why the last allocation failed, with the figures, for the panic messages of the
    /// non-`try_` methods: the chunk's limit, the pool's limit, or the OS.
    #[cold]
    /// `what`: what was being done, such as "allocating 100 bytes (align 8)".
    pub(crate) fn refusal_message(&self, what: &str) -> String {
        let slow = self.state.slow(|slow| *slow);
        match slow.refusal.get() {
            Some(Refusal::ChunkLimit(block)) => format!(
                "perfloc: chunk limit reached {what}: a block of {block} bytes would take the \
                 chunk past its limit of {} bytes (it holds {}); use the try_ methods to \
                 handle this",
                slow.limit, slow.held
            ),
            Some(Refusal::Pool(block)) => format!(
                "perfloc: out of memory {what}: {}; use the try_ methods to handle this",
                self.pool.refusal(block)
            ),
            None => format!(
                "perfloc: out of memory {what}: no block can hold it; use the try_ methods to \
                 handle this"
            ),
        }
    }

    /// Every block of the chunk, large ones first, then the chain from `first`. Links are
    /// read before the block holding them is yielded, and large nodes (which live in
    /// regular blocks) before any regular block, so the blocks may go back to the pool as
    /// they come. Only for `&mut self` or drop: no other thread may change the chunk.
    fn blocks(&self) -> impl Iterator<Item = Block> + use<'_, 'pool, K> {
        let large = self.state.slow(|slow| slow.large);
        // SAFETY: the whole large list (invariant 3) and the whole chain (invariant 1).
        unsafe { release_order(large, None, Some(self.first)) }
    }

    /// Figures of this chunk: blocks, their capacity and the bytes handed out. For a
    /// `SyncChunk` that other threads are allocating from, a snapshot that may be stale.
    ///
    /// ```
    /// let chunk = perfloc::sync_chunk();
    /// chunk.alloc([0u64; 4]);
    /// assert_eq!(chunk.stats().used_bytes, 32);
    /// ```
    pub fn stats(&self) -> ChunkStats {
        let mut stats = ChunkStats::default();
        let mut cur = Some(self.first);
        while let Some(header) = cur {
            // SAFETY: chain blocks have initialised headers (invariant 1), published before
            // the link to them (`Release`, acquired here).
            let h = unsafe { header.as_ref() };
            let cursor = self.state.cursor_of(header);
            stats.blocks += 1;
            stats.capacity_bytes += h.size;
            stats.used_bytes += cursor - data_start(header).addr().get();
            stats.tail_bytes += header.addr().get() + h.size - cursor;
            cur = NonNull::new(h.next.load(Ordering::Acquire));
        }
        // After a rewind past bytes freed, the count may exceed what is left.
        stats.freed_bytes = self.state.freed().min(stats.used_bytes);
        self.state.slow(|slow| {
            stats.limit = (slow.limit != usize::MAX).then_some(slow.limit);
            stats.peak_bytes = slow.peak;
            let mut node = slow.large;
            while let Some(n) = node {
                // SAFETY: large nodes are initialised (invariant 3).
                let n = unsafe { n.as_ref() };
                stats.blocks += 1;
                stats.dedicated_blocks += 1;
                stats.dedicated_bytes += n.block.size;
                stats.capacity_bytes += n.block.size;
                stats.used_bytes += n.used;
                node = n.next;
            }
            // Invariant 5; a `SyncChunk`'s figures are a snapshot that may race.
            debug_assert!(K::SHARED || stats.capacity_bytes == slow.held, "held {}", slow.held);
        });
        stats
    }

    /// Total capacity of the chunk's blocks in bytes (bumpalo's name for
    /// [`ChunkStats::capacity_bytes`]).
    ///
    /// ```
    /// assert!(perfloc::sync_chunk().allocated_bytes() >= perfloc::MIN_BLOCK_SIZE);
    /// ```
    pub fn allocated_bytes(&self) -> usize {
        self.stats().capacity_bytes
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

    /// [`ProcessChunk::alloc_slow`]'s work.
    #[inline(always)]
    fn alloc_slow_body(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.size() == 0 {
            // A well-aligned dangling pointer is a valid zero-size allocation.
            return Ok(dangling(layout.align()));
        }
        let page = os::page_size();
        if layout.size() >= self.pool.dedicated_threshold() {
            return self.alloc_large(layout, page, false);
        }
        let need = bump::regular_need(HEADER, layout, page);
        let regular = self.state.slow(|slow| {
            // Another thread may have installed a successor while this one waited.
            if K::SHARED {
                if let Some(ptr) = self.state.bump(layout) {
                    return Some(Ok(ptr));
                }
            }
            let next = self.next_successor(slow);
            let need = need.filter(|&need| need <= next)?;
            // The doubled size if the limit allows, else the largest block within it that
            // still holds the request.
            let size = if next <= slow.room() {
                next
            } else {
                let within = 1usize.checked_shl(slow.room().checked_ilog2()?).unwrap_or(0);
                within.max(self.pool.block_size_for(need).unwrap_or(usize::MAX))
            };
            Some(self.push_successor(slow, size, layout, false))
        });
        match regular {
            Some(result) => result,
            None => self.alloc_large(layout, page, false),
        }
    }

    /// Takes a successor block of `size` bytes within the chunk's limit (`growable`: cut by
    /// [`Pool::acquire_run`]), allocates `layout` at its start and makes it current;
    /// the successor after it doubles if this one had the doubled size. With nothing
    /// changed on failure but the refusal recorded. Called under [`StateOps::slow`], with
    /// its state as `slow`.
    fn push_successor(
        &self,
        slow: &mut state::Slow,
        size: usize,
        layout: Layout,
        growable: bool,
    ) -> Result<NonNull<u8>, AllocError> {
        slow.admit(size)?;
        match self.take_block(size, growable) {
            Ok(block) => {
                slow.taken();
                // A successor sized for a larger request counts as a step of the doubling
                // too, but does not set its pace; one cut down to the limit does not count.
                let next = self.next_successor(slow);
                if size >= next {
                    slow.next_size = next.saturating_mul(2).min(MAX_SIZE);
                }
                Ok(self.install_successor(block, layout))
            }
            Err(AllocError) => {
                slow.give_back(size);
                slow.refusal = Refusal::Pool(size).into();
                Err(AllocError)
            }
        }
    }

    /// The size of the next successor: `next_size`, which doubles from half the first
    /// block's, within the pool's smallest block and `max_block_size`.
    fn next_successor(&self, slow: &Slow) -> usize {
        slow.next_size.clamp(self.pool.smallest_block(), self.pool.max_block_size())
    }

    /// A block of `size` bytes from the pool for this chunk (not a first block); `growable`:
    /// cut where the memory above it is free, to grow in place later ([`Pool::acquire_run`]).
    fn take_block(&self, size: usize, growable: bool) -> Result<Block, AllocError> {
        self.pool.acquire_run(size, growable)
    }

    /// Makes `block` (fresh from the pool, large enough for `layout` after a header) the
    /// current block, linked from the old one, with `layout` allocated at its start. Called
    /// under [`StateOps::slow`].
    fn install_successor(&self, block: Block, layout: Layout) -> NonNull<u8> {
        let size = block.size;
        let header = new_header(block);
        let start = data_start(header);
        let (from, to) =
            bump::fit(start.addr().get(), block_end(block.ptr, size).addr().get(), layout)
                .expect("a successor block holds the request it was sized for");
        // SAFETY: `fit` checked `start <= from <= to <= end of the block`.
        let (ptr, cursor) =
            unsafe { (start.add(from - start.addr().get()), start.add(to - start.addr().get())) };
        asan::unpoison(ptr, to - from);
        let old = self.state.current();
        // SAFETY: `old` is the current block with an initialised header (invariant 1); the
        // new header is initialised before this `Release` publishes it.
        unsafe { old.as_ref().next.store(header.as_ptr(), Ordering::Release) };
        self.state.install(old, header, cursor);
        ptr
    }

    /// Allocates `layout` in a block of its own, recorded in a node in the bump memory;
    /// `growable`: a block that can grow in place later ([`Pool::acquire_run`]).
    fn alloc_large(
        &self,
        layout: Layout,
        page: usize,
        growable: bool,
    ) -> Result<NonNull<u8>, AllocError> {
        let (block, data) = self.take_large(layout, page, growable)?;
        let node = match self.try_alloc_layout(Layout::new::<LargeNode>()) {
            Ok(node) => node.cast::<LargeNode>(),
            Err(err) => {
                self.pool.release([block], false);
                self.state.slow(|slow| slow.give_back(block.size));
                return Err(err);
            }
        };
        // SAFETY: `node` is fresh bump memory sized and aligned for a `LargeNode`.
        unsafe { self.record_large(node, block, layout.size()) };
        Ok(data)
    }

    /// Takes a block of its own for `layout` (see [`ProcessChunk::alloc_large`]), counted
    /// against the limit, and returns it with the address of the data in it; if that
    /// fails, the chunk has not changed at all. The caller records it
    /// ([`ProcessChunk::record_large`]) or gives it back.
    fn take_large(
        &self,
        layout: Layout,
        page: usize,
        growable: bool,
    ) -> Result<(Block, NonNull<u8>), AllocError> {
        let need = bump::large_need(layout, page);
        let Some(size) = need.and_then(|need| self.pool.run_size_for(need)) else {
            return Err(self.no_block_holds_it());
        };
        self.state.slow(|slow| slow.admit(size))?;
        let block = match self.take_block(size, growable) {
            Ok(block) => block,
            Err(err) => {
                self.state.slow(|slow| {
                    slow.give_back(size);
                    slow.refusal = Refusal::Pool(size).into();
                });
                return Err(err);
            }
        };
        let pad = bump::padding(block.ptr.addr().get(), layout.align());
        // SAFETY: `large_need` reserved room for the padding and the size inside the block.
        let data = unsafe { block.ptr.add(pad) };
        asan::unpoison(data, layout.size());
        Ok((block, data))
    }

    /// Links `block`, taken by [`ProcessChunk::take_large`] and holding an allocation of
    /// `used` bytes, into the large list, recorded in `node`.
    ///
    /// # Safety
    ///
    /// `node` must be fresh bump memory of this chunk sized and aligned for a `LargeNode`.
    unsafe fn record_large(&self, node: NonNull<LargeNode>, block: Block, used: usize) {
        self.state.slow(|slow| {
            slow.taken();
            slow.large_made += 1;
            let seq = slow.large_made;
            // SAFETY: `node` is fresh bump memory sized and aligned for a `LargeNode`
            // (caller).
            unsafe { node.write(LargeNode { next: slow.large, seq, block, used }) };
            slow.large = Some(node);
        });
    }

    /// Runs `f` on the large node whose block holds the allocation of `size` bytes at
    /// `ptr` and the node before it in the list, under [`StateOps::slow`]; `None` if no
    /// large block holds it.
    ///
    /// Decided by address alone, never by the layout: a large allocation may have been
    /// shrunk to any size. Zero-size allocations own no memory (a dangling pointer may
    /// alias any address, even inside a large block), so they are never found; an
    /// allocation inside the current block is regular, which spares the walk.
    fn with_large<R>(
        &self,
        ptr: NonNull<u8>,
        size: usize,
        f: impl FnOnce(&mut state::Slow, Option<NonNull<LargeNode>>, NonNull<LargeNode>) -> R,
    ) -> Option<R> {
        let addr = ptr.addr().get();
        let current = self.state.current();
        // SAFETY: the current block has an initialised header (invariant 1).
        let current_size = unsafe { current.as_ref().size };
        if size == 0 || addr.wrapping_sub(current.addr().get()) < current_size {
            return None;
        }
        self.state.slow(|slow| {
            let mut prev = None;
            let mut cur = slow.large;
            while let Some(node) = cur {
                // SAFETY: large nodes are initialised (invariant 3).
                let n = unsafe { node.as_ref() };
                if n.block.contains(ptr) {
                    return Some(f(slow, prev, node));
                }
                prev = cur;
                cur = n.next;
            }
            None
        })
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

    /// Gives a large block back to the pool if `ptr` is the allocation of `size` bytes it
    /// holds; else counts the bytes freed where they stay.
    #[inline(always)]
    fn dealloc_large(&self, ptr: NonNull<u8>, size: usize) {
        let block = self.with_large(ptr, size, |slow, prev, node| {
            // SAFETY: `node` (and `prev`, if any) are live nodes (invariant 3) found under
            // this same exclusive access; unlinking keeps every other node linked once.
            unsafe {
                let n = node.as_ref();
                match prev {
                    Some(p) => (*p.as_ptr()).next = n.next,
                    None => slow.large = n.next,
                }
                slow.give_back(n.block.size);
                n.block
            }
        });
        match block {
            // The caller of `dealloc` gave up the allocation the block held.
            Some(block) => self.pool.release([block], false),
            None => self.state.count_freed(bump::footprint(size)),
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

    /// `grow` when the allocation is not the newest of the current block, or the block has
    /// no room. A dedicated allocation grows in its own block if it has room, else the
    /// block grows over the free pages above it. Otherwise the data moves: from the
    /// dedicated threshold on to a dedicated block cut so that it can grow in place next
    /// time ([`Pool::acquire_run`]), so a vector doubling to megabytes stops moving at
    /// every doubling and leaves no copy behind (but a [`SyncChunk`]'s newest allocation
    /// below [`GROWABLE_NEWEST`], which goes to a successor sized for it).
    ///
    /// # Safety
    ///
    /// As for [`ProcessChunk::grow`], the layouts given by their sizes and alignments.
    #[cold]
    #[inline(never)]
    unsafe extern "C" fn grow_slow(
        chunk: &Self,
        ptr: NonNull<u8>,
        old_size: usize,
        old_align: usize,
        new_size: usize,
        new_align: usize,
    ) -> *mut u8 {
        // SAFETY: the sizes and alignments come from `Layout`s.
        let (old, new) = unsafe {
            (
                Layout::from_size_align_unchecked(old_size, old_align),
                Layout::from_size_align_unchecked(new_size, new_align),
            )
        };
        // SAFETY: the caller's contract.
        nounwind::to_raw(unsafe { chunk.grow_moving(ptr, old, new) })
    }

    /// [`ProcessChunk::grow_slow`]'s work.
    ///
    /// # Safety
    ///
    /// As for [`ProcessChunk::grow`].
    #[inline(always)]
    unsafe fn grow_moving(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        // The fast path's test again (a `SyncChunk`'s other threads may have made room
        // since): `aligned`, `ptr` suits `new`'s alignment; `newest`, it is the newest
        // allocation of the current block, which has no room.
        let aligned = aligned_for(ptr, old.align(), new.align());
        let mut newest = false;
        if aligned {
            match self.state.resize(ptr, old.size(), new.size()) {
                Resize::Done(start) => return Ok(start),
                Resize::NoRoom => newest = true,
                Resize::NotNewest => {}
            }
        }
        // Smaller growth moves to an ordinary successor, which the thread's shard provides
        // without the pool's lock (growing a block in place, or cutting a growable one,
        // takes it).
        if newest && !K::SHARED && new.size() >= self.pool.first_block_size() / 2 {
            // SAFETY: the caller's contract; `newest` means `ptr` is the newest allocation
            // of the current block, aligned for `new`, and the block has no room.
            if let Some(new_ptr) = unsafe { self.grow_newest(ptr, old, new) } {
                return Ok(new_ptr);
            }
        }
        let addr = ptr.addr().get();
        let mut large = false;
        if aligned {
            let grown = self.with_large(ptr, old.size(), |slow, _, node| {
                // SAFETY: `node` is a live node (invariant 3), reached exclusively.
                let n = unsafe { &mut *node.as_ptr() };
                let mut fits =
                    bump::fit(addr, block_end(n.block.ptr, n.block.size).addr().get(), new)
                        .is_some();
                if !fits {
                    // Grow the block itself over its free buddies: no copy, and a vector
                    // that keeps doubling keeps its block.
                    let need = (addr - n.block.ptr.addr().get()).checked_add(new.size());
                    let size = need.and_then(|need| self.pool.run_size_for(need));
                    if let Some(size) = size.filter(|&size| size > n.block.size) {
                        let more = size - n.block.size;
                        if slow.admit(more).is_ok() {
                            fits = self.pool.extend(n.block, size);
                            if fits {
                                n.block.size = size;
                                slow.taken();
                            } else {
                                slow.give_back(more);
                            }
                        }
                    }
                }
                // The block's provenance, not the caller's (as `Resize::Done`).
                fits.then(|| {
                    n.used = new.size();
                    n.block.ptr.with_addr(ptr.addr())
                })
            });
            if let Some(Some(start)) = grown {
                asan::unpoison(start, new.size());
                return Ok(start);
            }
            large = grown.is_some();
        }
        let growing = new.size() >= self.pool.first_block_size() / 2;
        if K::SHARED && newest && !large && growing && new.size() < GROWABLE_NEWEST {
            // A `SyncChunk`'s newest allocation goes on growing on the fast path in a
            // successor sized for it: growth in a dedicated block takes the slow path (and
            // its mutex) at every step, which would cost a vector grown by `reserve_exact(1)`
            // more than the copies it saves.
            if let Ok(new_ptr) = self.push_growable_successor(new) {
                // SAFETY: the caller's contract; `new_ptr` is a fresh allocation of `new`.
                unsafe { self.move_to(ptr, old, new_ptr, new) };
                return Ok(new_ptr);
            }
        }
        if new.size() >= self.pool.dedicated_threshold() {
            if newest && !K::SHARED && old.size() >= size_of::<LargeNode>() {
                // SAFETY: the caller's contract, and `newest`: `ptr` is the newest
                // allocation of the current block.
                return unsafe { self.move_newest_to_large(ptr, old, new) };
            }
            if let Ok(new_ptr) = self.alloc_large(new, os::page_size(), true) {
                // SAFETY: the caller's contract is `move_to`'s.
                unsafe { self.move_to(ptr, old, new_ptr, new) };
                return Ok(new_ptr);
            }
        }
        // SAFETY: the caller's contract is `relocate`'s.
        unsafe { self.relocate(ptr, old, new) }
    }

    /// A [`Chunk`]'s newest allocation outgrew its block: grows the block in place
    /// ([`ProcessChunk::grow_current`]), else moves the allocation to a successor sized
    /// for it and cut where it can grow in place in turn. `None`, with nothing changed,
    /// when the allocation is [`GROWABLE_NEWEST`] or more (it moves to a growable large
    /// block), or neither worked (the chunk's limit, the pool's, or the OS): `grow_slow`
    /// goes on as for a `SyncChunk`.
    ///
    /// # Safety
    ///
    /// As for [`ProcessChunk::grow`]; moreover `ptr` is the newest allocation of the
    /// current block, is aligned for `new`, and the block has no room for `new`.
    unsafe fn grow_newest(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        let current = self.state.current();
        // SAFETY: the current block has an initialised header (invariant 1).
        let size = unsafe { current.as_ref().size };
        // `ptr` lies in the current block (it is its newest allocation).
        let need = (ptr.addr().get() - current.addr().get()).checked_add(new.size())?;
        let grown = self.pool.run_size_for(bump::footprint(need))?;
        if size != self.pool.first_block_size() && self.grow_current(current, size, grown) {
            match self.state.resize(ptr, old.size(), new.size()) {
                Resize::Done(start) => return Some(start),
                Resize::NoRoom | Resize::NotNewest => {
                    unreachable!("perfloc bug: a block grown for an allocation cannot hold it")
                }
            }
        }
        if new.size() >= self.pool.dedicated_threshold() {
            // Big enough for a block of its own, which goes back to the pool when the data
            // moves on, where a regular block would keep the copy: `grow_slow` does it.
            return None;
        }
        let new_ptr = self.push_growable_successor(new).ok()?;
        // SAFETY: the caller's contract; `new_ptr` is a fresh allocation of `new`.
        unsafe { self.move_to(ptr, old, new_ptr, new) };
        Some(new_ptr)
    }

    /// Moves the newest allocation of a [`Chunk`]'s current block to a growable large block
    /// and gives its bytes in the current block back, which the large block's node then
    /// takes: unlike [`ProcessChunk::alloc_large`] then a move (whose node, allocated after
    /// the data, would keep the old copy from being rewound), nothing is left behind.
    /// Falls back to [`ProcessChunk::relocate`] if no large block can be had.
    ///
    /// # Safety
    ///
    /// As for [`ProcessChunk::grow`]; moreover `ptr` is the newest allocation of the
    /// current block, of at least `size_of::<LargeNode>()` bytes.
    unsafe fn move_newest_to_large(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        debug_assert!(!K::SHARED && old.size() >= size_of::<LargeNode>());
        let Ok((block, data)) = self.take_large(new, os::page_size(), true) else {
            // SAFETY: the caller's contract is `relocate`'s.
            return unsafe { self.relocate(ptr, old, new) };
        };
        // SAFETY: the old allocation is live (caller) and the block is fresh, so they are
        // distinct; each holds at least `old.size()` bytes (`new` is larger).
        unsafe { ptr::copy_nonoverlapping(ptr.as_ptr(), data.as_ptr(), old.size()) };
        let rewound = self.state.rewind(ptr, old.size());
        debug_assert!(rewound, "the newest allocation is rewound");
        // The cursor is back at `ptr`, a multiple of `MIN_ALIGN` (so aligned for a node),
        // with at least `footprint(old.size())` bytes of room after it: a node fits there.
        let node = self
            .state
            .bump(Layout::new::<LargeNode>())
            .expect("perfloc bug: a rewound allocation's room holds a large node");
        // SAFETY: `node` is fresh bump memory sized and aligned for a `LargeNode`.
        unsafe { self.record_large(node.cast(), block, new.size()) };
        self.trim_current();
        Ok(data)
    }

    /// Gives back the empty end of a [`Chunk`]'s current block that grew in place past
    /// `max_block_size` for an allocation that has now moved out: the block keeps its used
    /// part (in whole pages), and at least `max_block_size` bytes, for what comes next.
    fn trim_current(&self) {
        debug_assert!(!K::SHARED);
        let current = self.state.current();
        // SAFETY: the current block has an initialised header (invariant 1).
        let size = unsafe { current.as_ref().size };
        let used = self.state.cursor_of(current) - current.addr().get();
        let Some(keep) = self.pool.run_size_for(used) else { return };
        let keep = keep.max(self.pool.max_block_size());
        if keep >= size {
            return;
        }
        self.state.slow(|slow| {
            // SAFETY: as in `grow_current`: a live block of this chunk, no reference to its
            // header alive, a `Chunk` is `!Sync`. The bytes from `keep` on are past the
            // cursor: nothing handed out lies there (invariant 2), and the state's end
            // follows at once.
            unsafe { (*current.as_ptr()).size = keep };
            self.state.grown(current);
            slow.give_back(size - keep);
        });
        self.pool
            .release([Block { ptr: block_end(current.cast(), keep), size: size - keep }], false);
    }

    /// Grows `current`, the current block of `size` bytes, in place to `grown` bytes (a
    /// larger power of two) over its free buddies, within the chunk's limit; false, with
    /// nothing changed, when it cannot. Only for a [`Chunk`] (see [`BlockHeader::size`]).
    fn grow_current(&self, current: NonNull<BlockHeader>, size: usize, grown: usize) -> bool {
        debug_assert!(!K::SHARED && grown > size);
        let more = grown - size;
        self.state.slow(|slow| {
            if slow.admit(more).is_err() {
                return false;
            }
            if !self.pool.extend(Block { ptr: current.cast(), size }, grown) {
                slow.give_back(more);
                return false;
            }
            slow.taken();
            // SAFETY: `current` is a live block of this chunk with an initialised header
            // (invariant 1), and the pool has just lent the chunk its bytes up to `grown`.
            // No reference to the header is alive (they are all temporaries), and a `Chunk`
            // is `!Sync`: nothing else reads `size` now. The state's end follows at once
            // (invariant 2).
            unsafe { (*current.as_ptr()).size = grown };
            self.state.grown(current);
            // The new bytes are not handed out yet (invariant 2).
            asan::poison(block_end(current.cast(), size), more);
            true
        })
    }

    /// Allocates `layout` at the start of a new successor block sized for it (at least the
    /// next successor's size) and cut by [`Pool::acquire_run`], so that its buddies
    /// stay free for [`ProcessChunk::grow_current`]. Within the chunk's limit; with
    /// nothing changed on failure.
    fn push_growable_successor(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let need = bump::regular_need(HEADER, layout, os::page_size());
        let Some(size) = need.and_then(|need| self.pool.block_size_for(need)) else {
            return Err(self.no_block_holds_it());
        };
        self.state.slow(|slow| {
            let size = size.max(self.next_successor(slow));
            // A `SyncChunk`'s blocks never grow: no need to cut it where they could.
            self.push_successor(slow, size, layout, !K::SHARED)
        })
    }

    /// Shrinks in place when the alignment allows, else moves; see the `Allocator` impl.
    ///
    /// Shrinking to size zero gives the memory back (as `dealloc` would) and returns a
    /// dangling pointer: a zero-size allocation owns nothing. A large allocation that now
    /// fits in the room left in the current block moves there, and its block goes back to
    /// the pool.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk, and
    /// `new.size() <= old.size()`.
    pub(crate) unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        if new.size() == 0 {
            // SAFETY: the caller gives up the allocation, which becomes a zero-size one.
            unsafe { self.dealloc(ptr, old) };
            return Ok(dangling(new.align()));
        }
        let aligned = bump::padding(ptr.addr().get(), new.align()) == 0;
        if aligned {
            if let Resize::Done(start) = self.state.resize(ptr, old.size(), new.size()) {
                return Ok(start);
            }
        }
        let large = self.with_large(ptr, old.size(), |_, _, node| {
            if aligned && !self.state.has_room(new) {
                // SAFETY: `node` is a live node (invariant 3), reached exclusively.
                unsafe { (*node.as_ptr()).used = new.size() };
                true
            } else {
                false
            }
        });
        match large {
            Some(true) => return Ok(ptr),
            None if aligned => {
                // Shrunk where it lies: its end stays in the block, freed.
                self.state.count_freed(bump::footprint(old.size()) - bump::footprint(new.size()));
                return Ok(ptr);
            }
            _ => {}
        }
        // SAFETY: the caller's contract is `relocate`'s.
        unsafe { self.relocate(ptr, old, new) }
    }

    /// Moves the allocation at `ptr` to a fresh one of `new`, copying the bytes both hold,
    /// and deallocates the old one.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk.
    unsafe fn relocate(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let new_ptr = self.try_alloc_layout(new)?;
        // SAFETY: the caller's contract; `new_ptr` is a fresh allocation of `new`.
        unsafe { self.move_to(ptr, old, new_ptr, new) };
        Ok(new_ptr)
    }

    /// Copies the bytes both allocations hold from `ptr` to `new_ptr`, then deallocates
    /// `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk, and `new_ptr` a
    /// fresh one of `new`.
    unsafe fn move_to(&self, ptr: NonNull<u8>, old: Layout, new_ptr: NonNull<u8>, new: Layout) {
        // SAFETY: the old allocation is live (caller) and the new one is fresh, so they are
        // distinct; each holds at least the bytes copied.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), new_ptr.as_ptr(), old.size().min(new.size()));
            self.dealloc(ptr, old);
        }
    }
}

impl<K: BumpState> Drop for ProcessChunk<'_, K> {
    fn drop(&mut self) {
        // SAFETY: the first block is a chain block with an initialised header (invariant
        // 1); the chunk is ours alone (`&mut self`).
        let first = unsafe { self.first.as_ref() };
        if self.state.slow_mut().large.is_none() && first.next.load(Ordering::Acquire).is_null() {
            // The usual scope's: its first block alone, without the walk of `blocks`.
            self.pool.release([Block { ptr: self.first.cast(), size: first.size }], true);
        } else {
            self.pool.release(self.blocks(), true);
        }
    }
}

impl<K: BumpState> fmt::Debug for ProcessChunk<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::NAME).field("stats", &self.stats()).finish_non_exhaustive()
    }
}

/// The blocks of the large nodes from `large` up to (not including) `stop`, then the
/// regular blocks of the chain from `regular` on. Links are read before the block holding
/// them is yielded, and large nodes (which live in regular blocks) before any regular
/// block, so the blocks may go back to the pool as they come.
///
/// # Safety
///
/// `large` up to `stop` must be live large nodes of one chunk's list, linked in that
/// order, and `regular` a block of its chain; nothing else may change the chunk while the
/// iterator runs.
#[inline(always)]
unsafe fn release_order(
    mut large: Option<NonNull<LargeNode>>,
    stop: Option<NonNull<LargeNode>>,
    mut regular: Option<NonNull<BlockHeader>>,
) -> impl Iterator<Item = Block> {
    core::iter::from_fn(move || {
        if let Some(node) = large.filter(|&node| Some(node) != stop) {
            // SAFETY: a live node before `stop` (caller), in a regular block not yet yielded.
            let n = unsafe { node.as_ref() };
            large = n.next;
            return Some(n.block);
        }
        let header = regular?;
        // SAFETY: a chain block with an initialised header (caller, invariant 1), read
        // before it is yielded (and so before it can go back to the pool).
        let (next, size) = unsafe {
            let h = header.as_ref();
            (h.next.load(Ordering::Acquire), h.size)
        };
        regular = NonNull::new(next);
        Some(Block { ptr: header.cast(), size })
    })
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
