//! A top chunk: one region mapped from the OS, the buddy bookkeeping of its blocks, and
//! which of its free bytes have been purged.
//!
//! The pool keeps its top chunks in a list, oldest first (the seed's `TOP_MEM_CHUNK_VEC`).
//! A top chunk's size is a power of two; its blocks are power-of-two pieces at offsets that
//! are multiples of their size, so a block is aligned to `min(block size, page size)`.

mod purged;

use core::ptr::NonNull;
use std::time::Instant;

use allocator_api2::alloc::AllocError;

use crate::buddy::Buddy;
use crate::{bump, os};
use purged::Purged;

/// One mapped region and its free blocks.
#[derive(Debug)]
pub(crate) struct TopChunk {
    /// Start of the mapping. Invariant: `base..base + buddy.size()` is one live region
    /// returned by [`os::map`], owned by this value and unmapped only by its `Drop`.
    /// Its end is at most [`bump::MAX_ADDR`].
    base: NonNull<u8>,
    buddy: Buddy,
    /// Free bytes given back with `madvise`. Invariant: every range lies in free blocks.
    purged: Purged,
}

// SAFETY: a `TopChunk` exclusively owns its mapping; the raw pointer is an address, not a
// shared reference, and every access to the bookkeeping goes through `&mut self`.
unsafe impl Send for TopChunk {}

impl TopChunk {
    /// Maps a new top chunk of `size` bytes whose blocks are at least `min_block` bytes.
    /// Both are powers of two, `size` at least a page and at least `min_block`.
    ///
    /// A mapping that reaches above [`bump::MAX_ADDR`] (no 64-bit OS in use hands one out to
    /// user space) is given back and refused: the bump arithmetic relies on it.
    pub(crate) fn map(size: usize, min_block: usize) -> Result<Self, AllocError> {
        let base = os::map(size)?;
        if base.addr().get().checked_add(size).is_none_or(|end| end > bump::MAX_ADDR) {
            // SAFETY: the region was just mapped with this size and nothing uses it.
            unsafe { os::unmap(base, size) };
            return Err(AllocError);
        }
        // Nothing in a fresh top chunk is lent out yet.
        crate::asan::poison(base, size);
        Ok(TopChunk {
            base,
            buddy: Buddy::new(size, min_block, Instant::now()),
            purged: Purged::default(),
        })
    }

    /// Size of the mapping in bytes.
    pub(crate) fn size(&self) -> usize {
        self.buddy.size()
    }

    /// Bytes in free blocks.
    pub(crate) fn free_bytes(&self) -> usize {
        self.buddy.free_bytes()
    }

    /// Free bytes given back to the OS with `madvise` (still mapped).
    pub(crate) fn purged_bytes(&self) -> usize {
        self.purged.bytes()
    }

    /// Mapped bytes not purged: what this top chunk holds ready (in use or resident free).
    pub(crate) fn ready_bytes(&self) -> usize {
        self.size() - self.purged_bytes()
    }

    /// When the top chunk last became unused, if it is unused.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        self.buddy.idle_since()
    }

    /// Address of the first byte, for ordering and reports.
    pub(crate) fn addr(&self) -> usize {
        self.base.addr().get()
    }

    /// The offset of `ptr` in this top chunk, if it points inside it.
    fn offset_of(&self, ptr: NonNull<u8>) -> Option<usize> {
        let offset = ptr.addr().get().checked_sub(self.addr())?;
        (offset < self.size()).then_some(offset)
    }

    /// True when `ptr` points into this top chunk.
    pub(crate) fn contains(&self, ptr: NonNull<u8>) -> bool {
        self.offset_of(ptr).is_some()
    }

    /// True when a free block of `size` bytes (a power of two) is available.
    pub(crate) fn can_hold(&self, size: usize) -> bool {
        self.buddy.can_hold(size)
    }

    /// True when the block of `size` bytes at `ptr` lies inside a free block.
    pub(crate) fn is_free(&self, ptr: NonNull<u8>, size: usize) -> bool {
        self.offset_of(ptr).is_some_and(|offset| self.buddy.is_free(offset, size))
    }

    /// Takes a free block of `size` bytes (a power of two), lowest address first.
    pub(crate) fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        let offset = self.buddy.alloc(size)?;
        self.purged.take(offset, offset + size);
        // SAFETY: the buddy system hands out offsets of blocks inside the region
        // (`offset + size <= self.size()`), so the result stays in bounds of the mapping.
        Some(unsafe { self.base.add(offset) })
    }

    /// Gives back, at time `now`, a block taken with [`TopChunk::alloc`].
    pub(crate) fn free(&mut self, ptr: NonNull<u8>, size: usize, now: Instant) {
        let offset = self.offset_of(ptr).expect("block belongs to this top chunk");
        self.buddy.free(offset, size, now);
    }

    /// Purges free blocks freed at or before `cutoff` (any when `None`), largest first,
    /// until `budget` more bytes are purged (rounded up to pages) or none is left to purge.
    /// Only whole pages inside free blocks are purged, from the top of each block down
    /// (blocks are taken lowest address first, so the top stays free longest). Returns the
    /// bytes newly purged and the `madvise` calls made; stops at the first failed call.
    pub(crate) fn purge(&mut self, budget: usize, cutoff: Option<Instant>) -> (usize, u64) {
        let page = os::page_size();
        let mut blocks: Vec<(usize, usize)> = self
            .buddy
            .free_blocks()
            .filter(|&(_, _, at)| cutoff.is_none_or(|cutoff| at <= cutoff))
            .map(|(offset, size, _)| (offset, size))
            .collect();
        blocks.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let (mut gained, mut calls) = (0, 0);
        for (offset, size) in blocks {
            let start = offset.next_multiple_of(page);
            let end = (offset + size) / page * page;
            // Lower the start of the range until it holds enough unpurged bytes.
            let unpurged = |lo: usize| (end - lo) - self.purged.within(lo, end);
            let mut lo = end;
            while lo > start && gained + unpurged(lo) < budget {
                let short = budget - gained - unpurged(lo);
                lo = lo.saturating_sub(short.next_multiple_of(page)).max(start);
            }
            let new = unpurged(lo);
            if new == 0 {
                continue;
            }
            calls += 1;
            // SAFETY: `lo..end` is page-aligned, inside this top chunk's live mapping (field
            // invariant on `base`), and inside a free block whose contents nobody relies on.
            if unsafe { os::purge(self.base.add(lo), end - lo) }.is_err() {
                break;
            }
            self.purged.insert(lo, end);
            gained += new;
            if gained >= budget {
                break;
            }
        }
        (gained, calls)
    }

    /// Verifies the buddy and purge bookkeeping of this top chunk.
    pub(crate) fn check(&self) -> Result<(), String> {
        let at = |e: String| format!("top chunk at {:#x}: {e}", self.addr());
        self.buddy.check().map_err(at)?;
        self.purged.check().map_err(at)?;
        for (start, end) in self.purged.ranges() {
            if !self.buddy.is_free_range(start, end) {
                return Err(at(format!("purged range {start:#x}..{end:#x} is not free")));
            }
        }
        Ok(())
    }
}

impl Drop for TopChunk {
    fn drop(&mut self) {
        crate::asan::unpoison(self.base, self.size());
        // SAFETY: `base`/`size` are the live region this value owns (field invariant);
        // blocks borrowed from it are tied to the pool's lifetime, so none outlive it.
        unsafe { os::unmap(self.base, self.size()) }
    }
}
