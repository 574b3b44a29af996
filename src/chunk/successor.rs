//! A full block: the successor after it, its size and the doubling.
//!
//! When the current block has no room, the chunk takes a **successor** from the pool
//! ([`Pool::acquire_run`]), writes its header and links it from the old block's `next`, so
//! the chain runs `first → … → current` (invariant 1). Successors start at half the first
//! block (the pool's smallest block) and double up to [`PoolBuilder::max_block_size`], then
//! stay there, like Postgres' `maxBlockSize`: the empty end of the newest block stays
//! small. A successor sized for a larger request counts as a step of the doubling but does
//! not set its pace (a single huge request must not inflate every later block). A request
//! of [`PoolBuilder::dedicated_threshold`] or more, or one the next successor cannot hold,
//! gets a dedicated block instead (`dedicated.rs`).
//!
//! A successor that would take the chunk past its limit is first cut down to the largest
//! power of two that still fits and still holds the request; a block is counted in `held`
//! before the pool is asked ([`Slow::admit`]), and given back to the count if the pool
//! refuses (invariant 5). A failed successor changes nothing but the recorded refusal.
//!
//! Invariants kept: a successor's header is initialised before the `Release` store that
//! links it (1); the request is placed with [`bump::fit`] inside the new block, and the
//! cursor after it (2).
//!
//! [`PoolBuilder::max_block_size`]: crate::PoolBuilder::max_block_size
//! [`PoolBuilder::dedicated_threshold`]: crate::PoolBuilder::dedicated_threshold

use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

use allocator_api2::alloc::AllocError;

use super::grow::GROWABLE_NEWEST;
#[cfg(doc)]
use super::state::StateOps;
use super::state::{self, Refusal, Slow};
use super::{BumpState, HEADER, ProcessChunk, block_end, dangling, data_start, new_header};
#[cfg(doc)]
use crate::Pool;
use crate::config::MAX_SIZE;
use crate::pool::Block;
use crate::{asan, bump, os};

impl<'pool, K: BumpState> ProcessChunk<'pool, K> {
    /// [`ProcessChunk::alloc_slow`]'s work.
    #[inline(always)]
    pub(super) fn alloc_slow_body(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
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
    pub(super) fn take_block(&self, size: usize, growable: bool) -> Result<Block, AllocError> {
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

    /// Allocates `layout`, a growing allocation, at the start of a new successor block (at
    /// least the next successor's size) and makes it current. A [`Chunk`]'s is a power of
    /// two cut by [`Pool::acquire_run`], so that its buddies stay free for
    /// [`ProcessChunk::grow_current`]; a [`SyncChunk`]'s, whose blocks never grow, is
    /// whole pages with room for `layout` to double once more, below
    /// [`GROWABLE_NEWEST`]. Within the chunk's limit; with nothing changed on failure.
    ///
    /// [`Chunk`]: crate::Chunk
    /// [`SyncChunk`]: crate::SyncChunk
    pub(super) fn push_growable_successor(
        &self,
        layout: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let page = os::page_size();
        let size = if K::SHARED {
            // Its blocks never grow: whole pages, with room for the allocation to double in
            // place once more (as a `Chunk`'s block would grow under it) unless it would
            // then move to a dedicated block anyway.
            let twice = layout.size().saturating_mul(2);
            let room = if twice < GROWABLE_NEWEST { twice } else { layout.size() };
            Layout::from_size_align(room, layout.align())
                .ok()
                .and_then(|room| bump::regular_need(HEADER, room, page))
                .and_then(|need| self.pool.run_size_for(need))
        } else {
            bump::regular_need(HEADER, layout, page).and_then(|need| self.pool.block_size_for(need))
        };
        let Some(size) = size else {
            return Err(self.no_block_holds_it());
        };
        self.state.slow(|slow| {
            let size = size.max(self.next_successor(slow));
            // A `SyncChunk`'s blocks never grow: no need to cut it where they could.
            self.push_successor(slow, size, layout, !K::SHARED)
        })
    }
}
