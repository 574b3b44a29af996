//! Free-block bookkeeping inside one top chunk: a binary buddy system over offsets.
//!
//! A top chunk of `size` bytes (a power of two) is split into power-of-two blocks no
//! smaller than `min_size`. A block of order `k` is `min_size << k` bytes at an offset that
//! is a multiple of its size; its buddy is the block at `offset ^ (min_size << k)`. Freeing a
//! block merges it with its buddy for as long as the buddy is free too, so blocks can come
//! back in any order and a top chunk whose blocks are all back is again one free block
//! (which is what lets the pool give it back to the OS).
//!
//! Each free block carries the time it was freed (a merged block the newest of its parts),
//! so the downsizing policy can give back only memory that has stayed free for a while.
//!
//! This module is safe code only: it never touches the memory, it only does arithmetic
//! on offsets. The free sets live on the global heap, sized by the number of free blocks
//! (not by the size of the top chunk), and are ordered so that the lowest free offset is
//! always taken first, which keeps live blocks packed at the bottom of a top chunk.

use std::collections::BTreeMap;
use std::time::Instant;

/// The free blocks of one top chunk.
#[derive(Debug)]
pub(crate) struct Buddy {
    /// log2 of the smallest block size.
    min_shift: u32,
    /// `free[k]` maps the offsets of the free blocks of order `k` (size `min << k`) to the
    /// time they were freed. Invariant: free blocks never overlap, and no two free buddies
    /// are both present (they would have been merged).
    free: Vec<BTreeMap<usize, Instant>>,
    /// Sum of the sizes of all free blocks.
    free_bytes: usize,
    /// Size of the whole region (`min << (free.len() - 1)`).
    size: usize,
}

impl Buddy {
    /// A wholly free region of `size` bytes with blocks of at least `min_size` bytes,
    /// free since `now`.
    ///
    /// Both must be powers of two with `min_size <= size`.
    pub(crate) fn new(size: usize, min_size: usize, now: Instant) -> Self {
        assert!(size.is_power_of_two() && min_size.is_power_of_two() && min_size <= size);
        let min_shift = min_size.trailing_zeros();
        let orders = (size.trailing_zeros() - min_shift + 1) as usize;
        let mut free = vec![BTreeMap::new(); orders];
        free[orders - 1].insert(0, now);
        Buddy { min_shift, free, free_bytes: size, size }
    }

    /// Size of the region in bytes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Bytes in free blocks.
    pub(crate) fn free_bytes(&self) -> usize {
        self.free_bytes
    }

    /// Size in bytes of a block of order `order`.
    fn order_size(&self, order: usize) -> usize {
        1 << (self.min_shift as usize + order)
    }

    fn order_of(&self, size: usize) -> Option<usize> {
        debug_assert!(size.is_power_of_two());
        let order = size.trailing_zeros().checked_sub(self.min_shift)? as usize;
        (order < self.free.len()).then_some(order)
    }

    /// True when a free block of at least `size` bytes (a power of two) exists.
    pub(crate) fn can_hold(&self, size: usize) -> bool {
        self.order_of(size)
            .is_some_and(|order| self.free[order..].iter().any(|set| !set.is_empty()))
    }

    /// Size of the largest free block; 0 when none is free.
    pub(crate) fn largest_free(&self) -> usize {
        self.free.iter().rposition(|set| !set.is_empty()).map_or(0, |k| self.order_size(k))
    }

    /// Takes a free block of `size` bytes (a power of two, at least the minimum) and
    /// returns its offset, or `None` when no free block is large enough.
    pub(crate) fn alloc(&mut self, size: usize) -> Option<usize> {
        let order = self.order_of(size)?;
        let from = (order..self.free.len()).find(|&k| !self.free[k].is_empty())?;
        Some(self.split(from, order))
    }

    /// Like [`Buddy::alloc`], but cut from the largest free block, so that as many of the
    /// block's buddies above it as possible are free: room for [`Buddy::extend`], for an
    /// allocation that keeps growing.
    pub(crate) fn alloc_growable(&mut self, size: usize) -> Option<usize> {
        let order = self.order_of(size)?;
        let from = (order..self.free.len()).rev().find(|&k| !self.free[k].is_empty())?;
        Some(self.split(from, order))
    }

    /// Takes the lowest free block of order `have` (there is one) and splits it down to
    /// order `order`: keeps the lower half and frees the upper half (as old as the whole)
    /// at each level. Returns the offset of the block taken.
    fn split(&mut self, mut have: usize, order: usize) -> usize {
        let (offset, freed_at) = self.free[have].pop_first().expect("a free block of this order");
        let size = self.order_size(order);
        while have > order {
            have -= 1;
            let upper = offset + self.order_size(have);
            self.free[have].insert(upper, freed_at);
        }
        self.free_bytes -= size;
        offset
    }

    /// Gives back the block of `size` bytes at `offset`, free since `at`, merging it with
    /// free buddies; a merged block carries the newest time of its parts.
    ///
    /// The block must have come from [`Buddy::alloc`] or [`Buddy::take`] with the same
    /// size and not have been freed since.
    pub(crate) fn free(&mut self, mut offset: usize, size: usize, mut at: Instant) {
        let mut order = self.order_of(size).expect("block size belongs to this region");
        debug_assert_eq!(offset % size, 0, "block offset is aligned to its size");
        debug_assert!(!self.is_free(offset, size), "double free of a block");
        self.free_bytes += size;
        while order + 1 < self.free.len() {
            let buddy = offset ^ self.order_size(order);
            let Some(buddy_at) = self.free[order].remove(&buddy) else { break };
            at = at.max(buddy_at);
            offset = offset.min(buddy);
            order += 1;
        }
        self.free[order].insert(offset, at);
    }

    /// Takes the free block of `size` bytes at exactly `offset` (one listed by
    /// [`Buddy::free_blocks`]) and returns when it was freed; `None` if it is not free.
    pub(crate) fn take(&mut self, offset: usize, size: usize) -> Option<Instant> {
        let order = self.order_of(size)?;
        let at = self.free[order].remove(&offset)?;
        self.free_bytes -= size;
        Some(at)
    }

    /// Grows the lent block of `size` bytes at `offset` to `new_size` bytes (both powers of
    /// two) in place, by taking the free buddies above it, one per doubling. Returns false,
    /// with nothing changed, unless the block is aligned for `new_size` and every one of
    /// those buddies is free.
    ///
    /// A free buddy is always listed at its own order: it cannot have merged into a larger
    /// free block, which would contain the lent block.
    pub(crate) fn extend(&mut self, offset: usize, size: usize, new_size: usize) -> bool {
        let (Some(from), Some(to)) = (self.order_of(size), self.order_of(new_size)) else {
            return false;
        };
        if offset % new_size != 0
            || !(from..to).all(|k| self.free[k].contains_key(&(offset + self.order_size(k))))
        {
            return false;
        }
        for k in from..to {
            let buddy_size = self.order_size(k);
            self.free[k].remove(&(offset + buddy_size));
            self.free_bytes -= buddy_size;
        }
        true
    }

    /// True when the block at `offset` of `size` bytes lies inside a free block.
    pub(crate) fn is_free(&self, offset: usize, size: usize) -> bool {
        self.free_blocks().any(|(off, len, _)| off <= offset && offset + size <= off + len)
    }

    /// True when every byte of `start..end` lies in some free block or in one of `also`
    /// (`(offset, size)` pairs): the range may span several adjacent ones.
    pub(crate) fn is_free_range(
        &self,
        start: usize,
        end: usize,
        also: impl Iterator<Item = (usize, usize)>,
    ) -> bool {
        let mut blocks: Vec<(usize, usize)> = self
            .free_blocks()
            .map(|(o, l, _)| (o, l))
            .chain(also)
            .map(|(o, l)| (o, o + l))
            .collect();
        blocks.sort_unstable();
        let mut pos = start;
        for (block_start, block_end) in blocks {
            if pos >= end {
                break;
            }
            if block_start <= pos && pos < block_end {
                pos = block_end;
            }
        }
        pos >= end
    }

    /// Every free block as `(offset, size, freed at)`, smallest order first.
    pub(crate) fn free_blocks(&self) -> impl Iterator<Item = (usize, usize, Instant)> + '_ {
        self.free.iter().enumerate().flat_map(move |(k, set)| {
            let len = self.order_size(k);
            set.iter().map(move |(&off, &at)| (off, len, at))
        })
    }

    /// When the whole region became free, if it is.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        self.free.last()?.get(&0).copied()
    }

    /// Verifies the invariants: free blocks aligned, in range, disjoint, no free buddy
    /// pairs left unmerged, and `free_bytes` equal to their sum.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut blocks: Vec<(usize, usize)> = self.free_blocks().map(|(o, l, _)| (o, l)).collect();
        blocks.sort_unstable();
        let mut sum = 0usize;
        let mut prev_end = 0usize;
        for &(off, len) in &blocks {
            if off % len != 0 || off + len > self.size {
                return Err(format!("free block {off:#x}+{len:#x} misaligned or out of range"));
            }
            if off < prev_end {
                return Err(format!("free block {off:#x} overlaps the one before it"));
            }
            if len < self.size && blocks.binary_search(&(off ^ len, len)).is_ok() {
                return Err(format!("free buddies {off:#x} and {:#x} not merged", off ^ len));
            }
            prev_end = off + len;
            sum += len;
        }
        if sum != self.free_bytes {
            return Err(format!("free bytes {} but free blocks sum to {sum}", self.free_bytes));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lowest_first_and_merges_back_in_any_order() {
        let mut b = Buddy::new(1 << 16, 1 << 12, Instant::now());
        let blocks: Vec<usize> = (0..16).map(|_| b.alloc(1 << 12).unwrap()).collect();
        assert_eq!(blocks, (0..16).map(|i| i << 12).collect::<Vec<_>>());
        assert_eq!(b.alloc(1 << 12), None);
        assert_eq!(b.free_bytes(), 0);
        // Free in a scrambled order; every step keeps the invariants.
        for i in [5, 0, 15, 3, 9, 1, 14, 2, 8, 4, 13, 7, 6, 12, 10, 11] {
            b.free(blocks[i], 1 << 12, Instant::now());
            b.check().unwrap();
        }
        assert_eq!(b.free_bytes(), b.size());
        assert_eq!(b.free_blocks().map(|(o, l, _)| (o, l)).collect::<Vec<_>>(), vec![(0, 1 << 16)]);
    }

    #[test]
    fn mixed_sizes_do_not_overlap() {
        let mut b = Buddy::new(1 << 20, 1 << 8, Instant::now());
        let mut live = Vec::new();
        for (i, shift) in [8, 12, 9, 16, 8, 19, 10].into_iter().enumerate() {
            let off = b.alloc(1 << shift).unwrap();
            assert_eq!(off % (1 << shift), 0);
            live.push((off, 1usize << shift));
            if i % 3 == 2 {
                let (o, s) = live.remove(0);
                b.free(o, s, Instant::now());
            }
            b.check().unwrap();
        }
        live.sort_unstable();
        assert!(live.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
        for &(o, s) in &live {
            assert!(!b.is_free(o, s));
        }
    }

    #[test]
    fn merged_blocks_carry_the_newest_free_time() {
        let t0 = Instant::now();
        let t1 = t0 + std::time::Duration::from_secs(1);
        let mut b = Buddy::new(1 << 13, 1 << 12, t0);
        assert_eq!(b.idle_since(), Some(t0));
        let (x, y) = (b.alloc(1 << 12).unwrap(), b.alloc(1 << 12).unwrap());
        assert_eq!(b.idle_since(), None);
        b.free(y, 1 << 12, t0);
        b.free(x, 1 << 12, t1);
        assert_eq!(b.idle_since(), Some(t1));
        let (_, _, at) = b.free_blocks().next().unwrap();
        assert_eq!(at, t1);
    }

    #[test]
    fn a_taken_block_comes_back_with_its_own_free_time() {
        let t0 = Instant::now();
        let t1 = t0 + std::time::Duration::from_secs(1);
        let mut b = Buddy::new(1 << 13, 1 << 12, t0);
        let x = b.alloc(1 << 12).unwrap(); // splits: the upper half is free since t0
        b.free(x, 1 << 12, t1);
        let mut b2 = Buddy::new(1 << 13, 1 << 12, t0);
        let y = b2.alloc(1 << 12).unwrap();
        assert_eq!(b2.take(y ^ (1 << 12), 1 << 12), Some(t0), "the free upper half");
        assert_eq!(b2.take(y ^ (1 << 12), 1 << 12), None, "taken already");
        assert_eq!(b2.free_bytes(), 0);
        b2.free(y, 1 << 12, t1);
        b2.free(y ^ (1 << 12), 1 << 12, t0); // an older time merges as the newer one
        assert_eq!(b2.idle_since(), Some(t1));
        assert_eq!(b.idle_since(), Some(t1));
        b2.check().unwrap();
    }

    #[test]
    fn a_free_range_may_span_adjacent_free_blocks() {
        let mut b = Buddy::new(1 << 16, 1 << 12, Instant::now());
        assert_eq!(b.alloc(1 << 12), Some(0)); // splits: free 4K@4K, 8K@8K, 16K@16K, 32K@32K
        assert!(b.is_free_range(0x1000, 0x10000, None.into_iter()), "spans four free blocks");
        assert!(!b.is_free_range(0x800, 0x2000, None.into_iter()), "starts in the taken block");
        assert!(b.is_free_range(0x0, 0x2000, Some((0, 0x1000)).into_iter()), "and the others");
        assert!(!b.is_free(0x1000, 0x2000), "is_free wants a single block");
    }

    #[test]
    fn a_lent_block_extends_over_its_free_buddies_only() {
        let now = Instant::now();
        let mut b = Buddy::new(1 << 20, 1 << 12, now);
        let low = b.alloc(1 << 12).unwrap();
        assert_eq!(low, 0);
        // Its buddies above (4K at 4K, 8K at 8K, 16K at 16K) are free: 4K grows to 32K.
        assert!(b.extend(low, 1 << 12, 1 << 15));
        assert_eq!(b.free_bytes(), (1 << 20) - (1 << 15));
        b.check().unwrap();
        // The next block is lent: no further doubling from 32K to 64K.
        let next = b.alloc(1 << 15).unwrap();
        assert_eq!(next, 1 << 15);
        assert!(!b.extend(low, 1 << 15, 1 << 16));
        // A block whose offset is not aligned for the new size never extends.
        assert!(!b.extend(next, 1 << 15, 1 << 16));
        assert_eq!(b.free_bytes(), (1 << 20) - (1 << 16), "a refused extension changes nothing");
        b.free(low, 1 << 15, now);
        b.free(next, 1 << 15, now);
        assert_eq!(b.free_bytes(), 1 << 20);
        b.check().unwrap();
    }

    #[test]
    fn a_growable_block_is_cut_from_the_largest_free_block() {
        let now = Instant::now();
        let mut b = Buddy::new(1 << 20, 1 << 12, now);
        assert_eq!(b.alloc(1 << 12), Some(0));
        // Lowest first would give 4K at 4K, whose buddy is lent; growable takes the free
        // upper half (512K at 512K) and cuts 4K from its bottom.
        assert_eq!(b.largest_free(), 1 << 19);
        let grow = b.alloc_growable(1 << 12).unwrap();
        assert_eq!(grow, 1 << 19);
        assert_eq!(b.largest_free(), 1 << 18, "the lower half stays whole");
        assert!(b.extend(grow, 1 << 12, 1 << 19), "every buddy up to 512K is free");
        assert!(!b.extend(grow, 1 << 19, 1 << 20), "but not beyond the region");
        b.check().unwrap();
    }

    #[test]
    fn refuses_sizes_it_cannot_hold() {
        let mut b = Buddy::new(1 << 12, 1 << 8, Instant::now());
        assert_eq!(b.alloc(1 << 13), None);
        assert_eq!(b.alloc(1 << 4), None);
        assert_eq!(b.alloc(1 << 12), Some(0));
        assert_eq!(b.alloc(1 << 8), None);
    }
}
