//! Checkpoints: nested scopes in one chunk ([`ProcessChunk::scoped`],
//! [`ProcessChunk::checkpoint`], [`ProcessChunk::rewind_to`]).
//!
//! A [`Checkpoint`] records the chunk's identity, the current block, its cursor, how many
//! large blocks the chunk had made (each large block's node carries its number) and the
//! next successor's size. A rewind gives back every regular block linked after the
//! checkpoint's block and every large block newer than the checkpoint, then puts the
//! cursor back.
//!
//! # Why a checkpoint is never trusted
//!
//! A checkpoint is plain data that safe code may keep, copy, send to another thread and
//! hand to any chunk. A rewind moves the cursor back over whatever lies after the
//! checkpoint's position, so it is sound only if nothing alive lies there. With `&mut self`
//! no allocation handed out is alive; what may be alive is the chunk's own bookkeeping:
//! block headers, and the large nodes that live in the bump memory. A chunk accepts a
//! checkpoint only if all of these hold ([`ProcessChunk::try_rewind_to`]):
//!
//! 1. **It is this chunk's.** Its identity equals the chunk's. Identities come from a
//!    process-wide counter and are never reused ([`new_identity`]), unlike block
//!    addresses: a thread's local slot hands a chunk the very block another chunk gave
//!    back, so "its block is one of mine" proves nothing about whose checkpoint it is. A
//!    chunk takes its identity at its first checkpoint: a chunk that takes none pays
//!    nothing, and one that takes one pays a thread-local increment.
//! 2. **The chunk was not reset since.** A [`reset`] drops the identity (the next
//!    checkpoint takes a new one) but keeps the large-block count (below): no earlier
//!    checkpoint matches, so a scope whose closure resets the chunk leaves it as the
//!    closure left it.
//! 3. **Its block is in the chain now**, and its cursor lies after that block's header:
//!    the rewind never touches a header, nor a block the chunk no longer holds. A cursor
//!    past the block's end is clamped to it. That happens to a checkpoint taken at the end
//!    of a vector whose block grew in place for it, when the vector moved on to a
//!    dedicated block and the block gave its grown end back
//!    ([`ProcessChunk::trim_current`]): the vector was the block's newest allocation, so
//!    everything past the new end was its, and every allocation made before the
//!    checkpoint stays.
//! 4. **Every large node the rewind keeps lies before the checkpoint's position.** A node is
//!    kept when its number is at most the checkpoint's `large_made`. Numbers grow with every
//!    large block the chunk makes and are never reset, so a kept node was made before the
//!    checkpoint was taken; it is alive, so no rewind since gave back the memory that held
//!    it. That memory was then before the checkpoint's position in the chain, and the chain
//!    before the checkpoint's block is unchanged (no reset since, by 2, and a rewind only
//!    unlinks blocks from the end; the checkpoint's block is still linked, by 3). A
//!    checkpoint made stale by a rewind to an earlier one, whose block the chunk later took
//!    back from the pool at the same address, passes 1 to 3: by the same numbering, every large node
//!    made since is newer than it and goes back, and the cursor may only move forward over
//!    unused bytes, which wastes them until the next reset and harms nothing.
//!
//! [`reset`]: ProcessChunk::reset

use core::cell::Cell;
use core::fmt;
use core::num::NonZeroU64;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, Ordering};

use super::reset::release_order;
use super::{BlockHeader, BumpState, LargeNode, ProcessChunk, data_start};
use crate::asan;

impl<K: BumpState> ProcessChunk<'_, K> {
    /// Runs `f` in a nested scope of this chunk: whatever `f` allocates in it is given back
    /// when `f` returns (or unwinds), blocks taken meanwhile included, and the chunk goes
    /// on from where it was. Unlike [`ProcessChunk::child`] it takes no block from the
    /// pool, so a scope that stays in the current block costs a few loads and stores.
    /// Scopes nest: `f` gets the chunk by `&mut` and may open another.
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let mut chunk = perfloc::chunk(); // or perfloc::sync_chunk()
    /// let total: u64 = (0..100u64)
    ///     .map(|i| {
    ///         chunk.scoped(|c| {
    ///             let mut scratch: Vec<u64, _> = Vec::new_in(&*c);
    ///             scratch.extend(0..i);
    ///             scratch.iter().sum::<u64>()
    ///         })
    ///     })
    ///     .sum();
    /// assert_eq!(total, 161_700);
    /// assert_eq!(chunk.stats().used_bytes, 0, "every scope gave its bytes back");
    /// ```
    ///
    /// Nothing allocated inside can escape the scope:
    ///
    /// ```compile_fail
    /// let mut chunk = perfloc::chunk();
    /// let escaped: &str = chunk.scoped(|c| c.alloc_str("inside"));
    /// ```
    ///
    /// and nothing allocated before it can be used inside, as the scope needs the chunk by
    /// `&mut` (allocate what must outlive the scope after it, or pass copies in):
    ///
    /// ```compile_fail,E0502
    /// let mut chunk = perfloc::chunk();
    /// let before = chunk.alloc(1u32);
    /// chunk.scoped(|c| *c.alloc(2u32) + *before);
    /// ```
    ///
    /// If `f` resets the chunk or puts another chunk in its place, there is nothing of the
    /// scope's to rewind, and the chunk stays as `f` left it.
    #[inline]
    pub fn scoped<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        /// Rewinds on the way out, on return or unwind.
        struct Rewind<'a, 'pool, K: BumpState> {
            chunk: &'a mut ProcessChunk<'pool, K>,
            checkpoint: Checkpoint,
        }
        impl<K: BumpState> Drop for Rewind<'_, '_, K> {
            fn drop(&mut self) {
                // A chunk put in this one's place by `f` has another identity, and a reset
                // drops it: either refuses, and the chunk stays as it is.
                if self.chunk.accepts(&self.checkpoint) {
                    self.chunk.rewind_unchecked(&self.checkpoint);
                }
            }
        }
        let checkpoint = self.checkpoint();
        let scope = Rewind { chunk: self, checkpoint };
        f(scope.chunk)
    }

    /// The chunk's current position, to come back to with [`ProcessChunk::rewind_to`]:
    /// the explicit form of [`ProcessChunk::scoped`].
    ///
    /// ```
    /// let mut chunk = perfloc::chunk();
    /// chunk.alloc_str("kept");
    /// let mark = chunk.checkpoint();
    /// chunk.alloc_slice_copy(&[0u8; 100_000]); // a successor block
    /// chunk.rewind_to(mark);
    /// assert_eq!(chunk.stats().blocks, 1, "the successor went back to the pool");
    /// assert_eq!(chunk.stats().used_bytes, 8);
    /// ```
    ///
    /// Allocations made since cannot be alive when the chunk is rewound:
    ///
    /// ```compile_fail,E0502
    /// let mut chunk = perfloc::chunk();
    /// let mark = chunk.checkpoint();
    /// let s = chunk.alloc_str("after the mark");
    /// chunk.rewind_to(mark);
    /// assert_eq!(s, "after the mark");
    /// ```
    ///
    /// For a `SyncChunk` that other threads are allocating from, what they allocate around
    /// the moment of the checkpoint may fall on either side of it.
    #[inline]
    pub fn checkpoint(&self) -> Checkpoint {
        let block = self.state.current();
        let (chunk, large_made, next_size) = self.state.slow(|slow| {
            (*slow.identity.get_or_insert_with(new_identity), slow.large_made, slow.next_size)
        });
        Checkpoint { chunk, block, cursor: self.state.cursor_of(block), large_made, next_size }
    }

    /// Gives back everything allocated since `checkpoint` was taken, and every block taken
    /// since; allocations made before it stay. Taking `&mut self`, it cannot run while
    /// anything allocated since is alive.
    ///
    /// # Panics
    ///
    /// Panics if `checkpoint` is not this chunk's (even if this chunk reuses the blocks of
    /// the chunk that took it), if the chunk was reset since, or if its block has gone back
    /// to the pool since (by a rewind to an earlier checkpoint);
    /// [`ProcessChunk::try_rewind_to`] returns these as errors.
    ///
    /// ```should_panic
    /// let mut chunk = perfloc::chunk();
    /// let other = perfloc::chunk();
    /// chunk.rewind_to(other.checkpoint()); // another chunk's
    /// ```
    pub fn rewind_to(&mut self, checkpoint: Checkpoint) {
        if let Err(err) = self.try_rewind_to(checkpoint) {
            panic!("{err}; rewind_to needs a checkpoint of this chunk");
        }
    }

    /// [`ProcessChunk::rewind_to`], or an error that says why the checkpoint was refused,
    /// with the chunk unchanged.
    ///
    /// ```
    /// use perfloc::CheckpointError;
    ///
    /// let mut chunk = perfloc::chunk();
    /// let early = chunk.checkpoint();
    /// chunk.alloc_slice_copy(&[0u8; 12_000]);
    /// chunk.alloc_slice_copy(&[0u8; 8_000]); // does not fit the first block: a successor
    /// let late = chunk.checkpoint(); // in the successor
    /// assert_eq!(chunk.try_rewind_to(early), Ok(()));
    /// assert_eq!(chunk.try_rewind_to(late), Err(CheckpointError::Stale));
    /// let other = perfloc::chunk().checkpoint();
    /// assert_eq!(chunk.try_rewind_to(other), Err(CheckpointError::Foreign));
    /// ```
    pub fn try_rewind_to(&mut self, checkpoint: Checkpoint) -> Result<(), CheckpointError> {
        if !self.is_own(&checkpoint) {
            return Err(CheckpointError::Foreign);
        }
        if !self.holds(&checkpoint) {
            return Err(CheckpointError::Stale);
        }
        self.rewind_unchecked(&checkpoint);
        Ok(())
    }

    /// True if a rewind to `checkpoint` is sound: conditions 1 to 3 of the module docs.
    #[inline(always)]
    fn accepts(&mut self, checkpoint: &Checkpoint) -> bool {
        self.is_own(checkpoint) && self.holds(checkpoint)
    }

    /// True if `checkpoint` was taken in this chunk since its last reset (conditions 1 and
    /// 2 of the module docs).
    #[inline(always)]
    fn is_own(&mut self, checkpoint: &Checkpoint) -> bool {
        self.state.slow_mut().identity == Some(checkpoint.chunk)
    }

    /// True if `checkpoint`, one of this chunk's, denotes a position in it: its block is in
    /// the chain and its cursor after that block's header (condition 3 of the module docs,
    /// which makes 4 hold; the caller checked 1 and 2). A cursor past the block's end is
    /// clamped by the rewind.
    fn holds(&self, checkpoint: &Checkpoint) -> bool {
        // The usual case first: the checkpoint's block is still the current one.
        let current = self.state.current();
        let mut cur = Some(if checkpoint.block == current { current } else { self.first });
        while let Some(header) = cur {
            // SAFETY: chain blocks have initialised headers (invariant 1).
            let h = unsafe { header.as_ref() };
            if header == checkpoint.block {
                return checkpoint.cursor >= data_start(header).addr().get();
            }
            cur = NonNull::new(h.next.load(Ordering::Acquire));
        }
        false
    }

    /// Rewinds to `checkpoint`, this chunk's and accepted by [`ProcessChunk::holds`].
    /// Memory safe for any such checkpoint, stale or not (the module docs): with `&mut self`
    /// nothing handed out is alive, only blocks of this chunk's chain after the
    /// checkpoint's, and large blocks newer than it, go back to the pool, and every large
    /// node kept lies before the new cursor.
    fn rewind_unchecked(&mut self, checkpoint: &Checkpoint) {
        let (pool, block) = (self.pool, checkpoint.block);
        // SAFETY: `block` is in the chain (checked by the caller): an initialised header.
        let (after, size) = unsafe {
            let h = block.as_ref();
            (NonNull::new(h.next.load(Ordering::Acquire)), h.size)
        };
        let slow = self.state.slow_mut();
        // SAFETY: large nodes are initialised (invariant 3).
        let newer = |node: NonNull<LargeNode>| unsafe { node.as_ref() }.seq > checkpoint.large_made;
        if after.is_some() || slow.large.is_some_and(newer) {
            // Large blocks newer than the checkpoint are a prefix of the list: the first
            // node not newer stays, with every node after it.
            let mut kept = slow.large;
            while let Some(node) = kept.filter(|&node| newer(node)) {
                // SAFETY: a live node (invariant 3).
                kept = unsafe { node.as_ref() }.next;
            }
            let mut released = 0;
            // SAFETY: `slow.large..kept` are live nodes of this chunk, `after` and what
            // follows it blocks of its chain.
            let blocks = unsafe { release_order(slow.large, kept, after) };
            pool.release(blocks.inspect(|block| released += block.size), crate::pool::NOT_CLOSING);
            slow.large = kept;
            slow.give_back(released);
            // SAFETY: `block`'s header is initialised; it ends the chain again.
            unsafe { block.as_ref().next.store(ptr::null_mut(), Ordering::Release) };
        }
        slow.next_size = checkpoint.next_size;
        slow.refusal = slow.refusal.forget_last();
        let start = data_start(block);
        // Past the end only after the block gave its grown end back (condition 3).
        let at = checkpoint.cursor.min(block.addr().get() + size);
        // SAFETY: the caller checked `start <= checkpoint.cursor`, and `at` is at most the
        // end of the block.
        let cursor = unsafe { start.add(at - start.addr().get()) };
        self.state.restore(block, cursor);
        asan::poison(cursor, block.addr().get() + size - at);
    }
}

/// A position in a process chunk to rewind to: [`ProcessChunk::checkpoint`],
/// [`ProcessChunk::rewind_to`]. Plain data that any code may copy or send: a chunk
/// accepts only its own checkpoints, taken since its last reset, while their block is
/// still its own (see [`ProcessChunk::try_rewind_to`]).
///
/// ```
/// let mut chunk = perfloc::sync_chunk();
/// let mark = chunk.checkpoint();
/// chunk.alloc([0u64; 16]);
/// chunk.rewind_to(mark);
/// assert_eq!(chunk.stats().used_bytes, 0);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Checkpoint {
    /// The identity of the chunk that took it ([`new_identity`]).
    chunk: NonZeroU64,
    /// The current block when taken.
    block: NonNull<BlockHeader>,
    /// Its cursor.
    cursor: usize,
    /// How many large blocks the chunk had made.
    large_made: usize,
    /// The next successor's size.
    next_size: usize,
}

// SAFETY: a checkpoint's pointer is never dereferenced before the chunk has checked that the
// checkpoint is its own and found the same address among its own live blocks
// (`ProcessChunk::try_rewind_to`); sending or sharing the address itself is harmless.
unsafe impl Send for Checkpoint {}
// SAFETY: as for `Send`.
unsafe impl Sync for Checkpoint {}
/// Why [`ProcessChunk::try_rewind_to`] refused a checkpoint; the chunk did not change.
///
/// ```
/// let mut chunk = perfloc::chunk();
/// let other = perfloc::chunk();
/// let err = chunk.try_rewind_to(other.checkpoint()).unwrap_err();
/// assert_eq!(err, perfloc::CheckpointError::Foreign);
/// assert!(err.to_string().contains("another chunk"));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The checkpoint was taken in another chunk (one alive, or one dropped long ago), or
    /// in this one before its last reset, which starts it anew.
    Foreign,
    /// The checkpoint is this chunk's, but its block has gone back to the pool since (by a
    /// rewind to an earlier checkpoint).
    Stale,
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckpointError::Foreign => {
                "perfloc: the checkpoint belongs to another chunk, or to this one before its \
                 last reset"
            }
            CheckpointError::Stale => {
                "perfloc: the checkpoint is stale: a rewind to an earlier checkpoint gave its \
                 block back"
            }
        })
    }
}

impl std::error::Error for CheckpointError {}

/// A new chunk identity, unique in the process and never reused.
///
/// Taking one costs no atomic operation: each thread takes a batch of identities from a
/// process-wide counter at a time and hands them out from a thread-local one.
#[cold]
#[inline(never)]
pub(super) fn new_identity() -> NonZeroU64 {
    /// Identities per batch: batch `b` holds `b * BATCH + 1 ..= b * BATCH + BATCH - 1`.
    const BATCH: u64 = 1 << 16;
    static BATCHES: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        /// This thread's next identity; a multiple of `BATCH` when it needs a new batch.
        static NEXT: Cell<u64> = const { Cell::new(0) };
    }
    NEXT.with(|next| {
        let mut id = next.get();
        if id % BATCH == 0 {
            // `Relaxed`: only uniqueness matters, which the read-modify-write gives.
            let batch = BATCHES.fetch_add(1, Ordering::Relaxed);
            // 2^48 batches cannot run out in the life of a process; were they to, refusing is
            // what keeps identities unique.
            assert!(batch < u64::MAX / BATCH, "perfloc: chunk identities exhausted");
            id = batch * BATCH + 1;
        }
        next.set(id + 1);
        NonZeroU64::new(id).expect("identities start at 1 in every batch")
    })
}
