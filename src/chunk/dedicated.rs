//! Dedicated blocks: one allocation each, given back as soon as it is freed or moves.
//!
//! An allocation of [`PoolBuilder::dedicated_threshold`] or more, one that would not fit
//! in the next successor, or a reallocation that must move to grow past the threshold,
//! gets a block of its own, like Postgres' blocks for chunks above `allocChunkLimit`.
//! Such a block is whole pages sized for the request alone ([`Pool::acquire_run`]),
//! carries no header, and is recorded in a [`LargeNode`] that lives in the chunk's own
//! bump memory; the nodes form a list, newest first, numbered in the order the blocks
//! were made (the numbers let a rewind tell which blocks are newer than a checkpoint).
//! The block grows in place over the free pages above it ([`Pool::extend`], in
//! `grow.rs`), and goes back to the pool as soon as its allocation is deallocated or
//! moves.
//!
//! Whether an allocation lives in a dedicated block is decided by its address (the chunk
//! knows every block's range, [`ProcessChunk::with_large`]), never by the layout the
//! caller passes: after a `shrink` it may have any size. Shrinking one to size zero gives
//! its block back at once (a zero-size allocation owns nothing).
//!
//! Invariants kept: every node in the list is initialised before it is linked, lies in a
//! regular block of this chunk and describes a live block lent to it, linked once, and
//! the list is read and written only under [`StateOps::slow`]
//! (3); a block is counted in `held` from its admission until it goes back (5). A failed
//! allocation leaves the chunk as it was: the block goes back if its node cannot be had.
//!
//! [`PoolBuilder::dedicated_threshold`]: crate::PoolBuilder::dedicated_threshold

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::AllocError;

#[cfg(doc)]
use super::state::StateOps;
use super::state::{self, Refusal};
use super::{BumpState, ProcessChunk};
#[cfg(doc)]
use crate::Chunk;
#[cfg(doc)]
use crate::Pool;
use crate::pool::{Block, NOT_CLOSING};
use crate::{asan, bump, os};

/// Where a large block is recorded; allocated in the chunk's regular blocks.
pub(crate) struct LargeNode {
    pub(super) next: Option<NonNull<LargeNode>>,
    /// Its number in the order large blocks were made: 1, 2, …; the list runs from the
    /// highest down, so the blocks newer than a checkpoint are a prefix of it.
    pub(super) seq: usize,
    pub(super) block: Block,
    /// Size of the allocation the block holds.
    pub(super) used: usize,
}

impl<'pool, K: BumpState> ProcessChunk<'pool, K> {
    /// Allocates `layout` in a block of its own, recorded in a node in the bump memory;
    /// `growable`: a block that can grow in place later ([`Pool::acquire_run`]).
    pub(super) fn alloc_large(
        &self,
        layout: Layout,
        page: usize,
        growable: bool,
    ) -> Result<NonNull<u8>, AllocError> {
        let (block, data) = self.take_large(layout, page, growable)?;
        let node = match self.try_alloc_layout(Layout::new::<LargeNode>()) {
            Ok(node) => node.cast::<LargeNode>(),
            Err(err) => {
                self.pool.release([block], NOT_CLOSING);
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
    pub(super) fn with_large<R>(
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

    /// Gives a large block back to the pool if `ptr` is the allocation of `size` bytes it
    /// holds; else counts the bytes freed where they stay.
    #[inline(always)]
    pub(super) fn dealloc_large(&self, ptr: NonNull<u8>, size: usize) {
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
            Some(block) => self.pool.release([block], NOT_CLOSING),
            None => self.state.count_freed(bump::footprint(size)),
        }
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
    pub(super) unsafe fn move_newest_to_large(
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
}
