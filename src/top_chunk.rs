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
    /// Free bytes given back with `madvise`. Invariant: every range lies in free blocks or
    /// in blocks being purged.
    purged: Purged,
    /// Free blocks taken out of `buddy` while a [`PurgeJob`] purges them without the pool's
    /// lock, as `(offset, size, freed at)`: counted as free, but lent to nobody.
    purging: Vec<(usize, usize, Instant)>,
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
            purging: Vec::new(),
        })
    }

    /// Size of the mapping in bytes.
    pub(crate) fn size(&self) -> usize {
        self.buddy.size()
    }

    /// Bytes in free blocks, those being purged included.
    pub(crate) fn free_bytes(&self) -> usize {
        self.buddy.free_bytes() + self.purging.iter().map(|&(_, size, _)| size).sum::<usize>()
    }

    /// True while a [`PurgeJob`] holds free blocks of this top chunk.
    pub(crate) fn is_purging(&self) -> bool {
        !self.purging.is_empty()
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

    /// True when a run of `size` bytes fits: a free block of `size` rounded up to a power
    /// of two is available.
    pub(crate) fn can_hold(&self, size: usize) -> bool {
        size.checked_next_power_of_two().is_some_and(|whole| self.buddy.can_hold(whole))
    }

    /// Size of the largest free block; 0 when none is free.
    pub(crate) fn largest_free(&self) -> usize {
        self.buddy.largest_free()
    }

    /// True when the block of `size` bytes at `ptr` lies inside a free block.
    pub(crate) fn is_free(&self, ptr: NonNull<u8>, size: usize) -> bool {
        self.offset_of(ptr).is_some_and(|offset| self.buddy.is_free(offset, size))
    }

    /// Takes a run of `size` bytes (a multiple of the smallest block size): lowest address
    /// first, or with `growable` from the bottom of the largest free block (see
    /// [`Buddy::alloc`]).
    pub(crate) fn alloc(&mut self, size: usize, growable: bool) -> Option<NonNull<u8>> {
        let offset = self.buddy.alloc(size, growable)?;
        self.purged.take(offset, offset + size);
        // SAFETY: the buddy system hands out offsets of runs inside the region
        // (`offset + size <= self.size()`), so the result stays in bounds of the mapping.
        Some(unsafe { self.base.add(offset) })
    }

    /// Grows the lent run of `size` bytes at `ptr` to `new_size` bytes in place, taking the
    /// free memory above it (see [`Buddy::extend`]); false, with nothing changed, if it
    /// cannot.
    pub(crate) fn extend(&mut self, ptr: NonNull<u8>, size: usize, new_size: usize) -> bool {
        let Some(offset) = self.offset_of(ptr) else { return false };
        if !self.buddy.extend(offset, size, new_size) {
            return false;
        }
        self.purged.take(offset + size, offset + new_size);
        true
    }

    /// Gives back, at time `now`, a run taken with [`TopChunk::alloc`] (or any lent part of
    /// one).
    pub(crate) fn free(&mut self, ptr: NonNull<u8>, size: usize, now: Instant) {
        let offset = self.offset_of(ptr).expect("block belongs to this top chunk");
        self.buddy.free(offset, size, now);
    }

    /// Plans to purge free blocks freed at or before `cutoff` (any when `None`), largest
    /// first, until `budget` more bytes would be purged (rounded up to pages) or none is
    /// left to purge. Only whole pages inside free blocks that are not purged yet, from
    /// the top of each block down (blocks are taken lowest address first, so the top stays
    /// free longest). The blocks concerned are taken out of the books until
    /// [`TopChunk::finish_purge`], so the system calls can run without the pool's lock; the
    /// ranges count as purged from now on.
    pub(crate) fn plan_purge(
        &mut self,
        budget: usize,
        cutoff: Option<Instant>,
    ) -> Option<PurgeJob> {
        let page = os::page_size();
        let mut blocks: Vec<(usize, usize)> = self
            .buddy
            .free_blocks()
            .filter(|&(_, _, at)| cutoff.is_none_or(|cutoff| at <= cutoff))
            .map(|(offset, size, _)| (offset, size))
            .collect();
        blocks.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut job = PurgeJob { base: self.base, blocks: Vec::new(), ranges: Vec::new(), done: 0 };
        let mut planned = 0;
        for (offset, size) in blocks {
            if planned >= budget {
                break;
            }
            let first = job.ranges.len();
            // Page-aligned gaps, highest first; each is taken from its top down.
            let (start, end) = (offset.next_multiple_of(page), (offset + size) / page * page);
            for (lo, hi) in self.purged.gaps(start, end) {
                let want = (budget - planned).saturating_add(page - 1) / page * page;
                let lo = lo.max(hi.saturating_sub(want));
                job.ranges.push((lo, hi));
                planned += hi - lo;
                if planned >= budget {
                    break;
                }
            }
            if job.ranges.len() > first {
                let at = self.buddy.take(offset, size).expect("a listed free block");
                self.purging.push((offset, size, at));
                job.blocks.push((offset, size));
                for &(lo, hi) in &job.ranges[first..] {
                    self.purged.insert(lo, hi);
                }
            }
        }
        (!job.ranges.is_empty()).then_some(job)
    }

    /// Gives back the blocks of a job planned by [`TopChunk::plan_purge`] and [run](PurgeJob::run)
    /// (PurgeJob::run): ranges a failed system call left unpurged stop counting as purged.
    /// Returns the bytes that were planned but not purged.
    pub(crate) fn finish_purge(&mut self, job: PurgeJob) -> usize {
        debug_assert_eq!(job.base, self.base, "a job of this top chunk");
        let mut failed = 0;
        for &(lo, hi) in &job.ranges[job.done..] {
            self.purged.take(lo, hi);
            failed += hi - lo;
        }
        for (offset, size) in job.blocks {
            let k =
                self.purging.iter().position(|&(o, ..)| o == offset).expect("taken by this job");
            let (_, _, at) = self.purging.swap_remove(k);
            self.buddy.free(offset, size, at);
        }
        failed
    }

    /// Verifies the buddy and purge bookkeeping of this top chunk.
    pub(crate) fn check(&self) -> Result<(), String> {
        let at = |e: String| format!("top chunk at {:#x}: {e}", self.addr());
        self.buddy.check().map_err(at)?;
        self.purged.check().map_err(at)?;
        for (start, end) in self.purged.ranges() {
            let purging = self.purging.iter().map(|&(offset, size, _)| (offset, size));
            if !self.buddy.is_free_range(start, end, purging) {
                return Err(at(format!("purged range {start:#x}..{end:#x} is not free")));
            }
        }
        Ok(())
    }

    /// Resident bytes of the mapping, as `(lent, free)`: those in blocks lent out, and
    /// those in free blocks (being purged included), by [`os::resident_bytes`] (so all of
    /// it where the OS cannot be asked). A resident page shared by lent and free blocks
    /// counts its bytes to each. A snapshot: the chunks holding lent pages may touch more.
    pub(crate) fn resident_bytes(&self) -> (usize, usize) {
        let blocks = self.buddy.free_blocks().map(|(offset, size, _)| (offset, size));
        let purging = self.purging.iter().map(|&(offset, size, _)| (offset, size));
        let mut free: Vec<(usize, usize)> =
            blocks.chain(purging).map(|(offset, size)| (offset, offset + size)).collect();
        free.sort_unstable();
        let (all, free) = os::resident_bytes(self.base, self.size(), &free);
        (all - free, free)
    }
}

/// Free blocks of one top chunk, taken out of its books by [`TopChunk::plan_purge`], and the
/// ranges in them to purge: the system calls run without the pool's lock, then
/// [`TopChunk::finish_purge`] gives the blocks back.
///
/// Invariant: every range is page-aligned and lies in one of `blocks`, which the top chunk
/// at `base` holds in its `purging` list: free, lent to nobody, and keeping the top chunk
/// from being idle, so that it stays mapped until the job is finished.
#[must_use = "a purge job holds free blocks until it is finished"]
#[derive(Debug)]
pub(crate) struct PurgeJob {
    base: NonNull<u8>,
    /// `(offset, size)` of the blocks taken out.
    blocks: Vec<(usize, usize)>,
    /// Offset ranges to purge, none purged before.
    ranges: Vec<(usize, usize)>,
    /// How many of `ranges` (from the first) are purged.
    done: usize,
}

impl PurgeJob {
    /// Address of the top chunk the job belongs to.
    pub(crate) fn top_chunk_addr(&self) -> usize {
        self.base.addr().get()
    }

    /// Purges the ranges with `madvise`, stopping at the first failed call. Returns the
    /// bytes purged and the calls made.
    pub(crate) fn run(&mut self) -> (usize, u64) {
        let (mut bytes, mut calls) = (0, 0);
        for &(lo, hi) in &self.ranges[self.done..] {
            calls += 1;
            // SAFETY: `lo..hi` is page-aligned and inside a block of this job (type
            // invariant): inside the top chunk's mapping, which stays mapped while the job
            // holds the block, and free memory that nothing is lent or relies on.
            if unsafe { os::purge(self.base.add(lo), hi - lo) }.is_err() {
                break;
            }
            self.done += 1;
            bytes += hi - lo;
        }
        (bytes, calls)
    }
}

impl Drop for TopChunk {
    fn drop(&mut self) {
        debug_assert!(self.purging.is_empty(), "a top chunk dropped during a purge");
        crate::asan::unpoison(self.base, self.size());
        // SAFETY: `base`/`size` are the live region this value owns (field invariant);
        // blocks borrowed from it are tied to the pool's lifetime, so none outlive it.
        unsafe { os::unmap(self.base, self.size()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purge_plans_only_pages_not_purged_yet_and_holds_its_blocks_meanwhile() {
        let page = os::page_size();
        let mut top = TopChunk::map(64 * page, page).unwrap();
        let mut job = top.plan_purge(usize::MAX, None).expect("all of it is free");
        assert_eq!(top.free_bytes(), 64 * page, "blocks being purged count as free");
        assert!(!top.can_hold(page), "but nobody can take them");
        assert_eq!(top.idle_since(), None, "so the top chunk cannot be unmapped");
        top.check().unwrap();
        assert_eq!(job.run(), (64 * page, 1));
        assert_eq!(top.finish_purge(job), 0);
        assert_eq!((top.purged_bytes(), top.idle_since().is_some()), (64 * page, true));

        // One page taken into use and given back: only it is purged again, and the purged
        // ranges merge into one.
        let p = top.alloc(page, false).unwrap();
        assert_eq!(top.purged_bytes(), 63 * page);
        top.free(p, page, Instant::now());
        let mut job = top.plan_purge(usize::MAX, None).expect("one page to purge");
        assert_eq!(job.ranges, [(0, page)]);
        assert_eq!(job.run(), (page, 1));
        assert_eq!(top.finish_purge(job), 0);
        assert_eq!(top.purged.ranges().collect::<Vec<_>>(), [(0, 64 * page)]);
        assert!(top.plan_purge(usize::MAX, None).is_none(), "nothing left to purge");
        top.check().unwrap();
    }

    #[test]
    fn a_purge_takes_the_top_of_a_block_first_and_stops_at_its_budget() {
        let page = os::page_size();
        let mut top = TopChunk::map(16 * page, page).unwrap();
        let mut job = top.plan_purge(3 * page - 1, None).unwrap();
        assert_eq!(job.ranges, [(13 * page, 16 * page)]);
        job.run();
        top.finish_purge(job);
        let mut job = top.plan_purge(2 * page, None).unwrap();
        assert_eq!(job.ranges, [(11 * page, 13 * page)], "below what is purged already");
        job.run();
        top.finish_purge(job);
        assert_eq!(top.purged.ranges().collect::<Vec<_>>(), [(11 * page, 16 * page)]);
        top.check().unwrap();
    }
}
