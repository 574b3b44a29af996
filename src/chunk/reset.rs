//! Reset and drop: the chunk's blocks going back to the pool.
//!
//! **Drop** gives every block back at once, in time proportional to the number of blocks,
//! not allocations; the usual scope, which never left its first block, skips the walk.
//! **Reset** keeps the largest block, dedicated or regular, as the only regular block
//! (like Postgres' keeper block), gives the others back, and makes every earlier
//! checkpoint stale (`checkpoint.rs`).
//!
//! Blocks go back in [`release_order`]: dedicated ones first (their nodes live in regular
//! blocks), then the chain from `first`, each link read before the block holding it is
//! yielded, so each block may go back to the pool as it comes.
//!
//! Invariants kept: both need the chunk by value or by `&mut`, so no allocation and no
//! other thread is inside it (4); after a reset the kept block has a fresh header that
//! ends the chain, the cursor is at its data start, the large list is empty, and `held`
//! is the kept block's size (1, 2, 3, 5).

use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use super::state::Slow;
use super::{BlockHeader, BumpState, HEADER, LargeNode, ProcessChunk, data_start, new_header};
use crate::asan;
use crate::config::MAX_SIZE;
use crate::pool::{Block, NOT_CLOSING};

impl<'pool, K: BumpState> ProcessChunk<'pool, K> {
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
        self.pool.release(self.blocks().filter(|block| block.ptr != keep.ptr), NOT_CLOSING);
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

    /// The bytes one block would have needed to hold what the chunk handed out, header
    /// included: each older regular block up to its cursor, the current one up to the
    /// highest its cursor went ([`StateOps::reach`]), and the dedicated allocations under
    /// the threshold. What the pool learns a first block size from.
    ///
    /// [`StateOps::reach`]: super::state::StateOps::reach
    fn need(&self) -> usize {
        let current = self.state.current();
        let mut need = self.state.reach() - current.addr().get();
        let mut cur = Some(self.first);
        while let Some(header) = cur.filter(|&header| header != current) {
            need += self.state.cursor_of(header) - header.addr().get();
            // SAFETY: a chain block has an initialised header (invariant 1).
            cur = NonNull::new(unsafe { header.as_ref() }.next.load(Ordering::Acquire));
        }
        // A dedicated allocation under the threshold had one only because no successor
        // could hold it: a first block that large would have.
        let threshold = self.pool.dedicated_threshold();
        let mut node = self.state.slow(|slow| slow.large);
        while let Some(n) = node {
            // SAFETY: large nodes are initialised (invariant 3).
            let n = unsafe { n.as_ref() };
            if n.used < threshold {
                need += n.used.next_multiple_of(crate::bump::MIN_ALIGN);
            }
            node = n.next;
        }
        need
    }

    /// Every block of the chunk, large ones first, then the chain from `first`. Links are
    /// read before the block holding them is yielded, and large nodes (which live in
    /// regular blocks) before any regular block, so the blocks may go back to the pool as
    /// they come. Only for `&mut self` or drop: no other thread may change the chunk.
    pub(super) fn blocks(&self) -> impl Iterator<Item = Block> + use<'_, 'pool, K> {
        let large = self.state.slow(|slow| slow.large);
        // SAFETY: the whole large list (invariant 3) and the whole chain (invariant 1).
        unsafe { release_order(large, None, Some(self.first)) }
    }
}

impl<K: BumpState> Drop for ProcessChunk<'_, K> {
    fn drop(&mut self) {
        // SAFETY: the first block is a chain block with an initialised header (invariant
        // 1); the chunk is ours alone (`&mut self`).
        let first = unsafe { self.first.as_ref() };
        if self.state.slow_mut().large.is_none() && first.next.load(Ordering::Acquire).is_null() {
            // The usual scope's: its first block alone, without the walk of `blocks`.
            let need = || self.state.reach() - self.first.addr().get();
            self.pool.release([Block { ptr: self.first.cast(), size: first.size }], Some(need));
        } else {
            // `need` runs before any block goes back (`Pool::release`).
            self.pool.release(self.blocks(), Some(|| self.need()));
        }
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
pub(super) unsafe fn release_order(
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
