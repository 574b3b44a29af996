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

    /// Takes a run of `size` bytes (a multiple of the minimum) and returns its offset, or
    /// `None` when no free block is large enough. The run is cut from the bottom of a free
    /// block of `size` rounded up to a power of two, the lowest one, or with `growable` the
    /// one in the largest free block, so that as much as possible above it stays free: room
    /// for [`Buddy::extend`], for an allocation that keeps growing. The rest of that block
    /// stays free, as the pieces of [`pieces`].
    pub(crate) fn alloc(&mut self, size: usize, growable: bool) -> Option<usize> {
        let whole = size.checked_next_power_of_two()?;
        let order = self.order_of(whole)?;
        let mut orders = order..self.free.len();
        let from = if growable {
            orders.rev().find(|&k| !self.free[k].is_empty())?
        } else {
            orders.find(|&k| !self.free[k].is_empty())?
        };
        let (offset, freed_at) = self.split(from, order);
        for (piece, len) in pieces(offset + size, offset + whole) {
            self.free_bytes += len;
            let k = self.order_of(len).expect("a piece of a block");
            self.free[k].insert(piece, freed_at);
        }
        Some(offset)
    }

    /// Takes the lowest free block of order `have` (there is one) and splits it down to
    /// order `order`: keeps the lower half and frees the upper half (as old as the whole)
    /// at each level. Returns the offset of the block taken and when it was freed.
    fn split(&mut self, mut have: usize, order: usize) -> (usize, Instant) {
        let (offset, freed_at) = self.free[have].pop_first().expect("a free block of this order");
        let size = self.order_size(order);
        while have > order {
            have -= 1;
            let upper = offset + self.order_size(have);
            self.free[have].insert(upper, freed_at);
        }
        self.free_bytes -= size;
        (offset, freed_at)
    }

    /// Gives back the run of `size` bytes at `offset` (a multiple of the minimum, as are
    /// both), free since `at`: each of its [`pieces`] merges with free buddies; a merged block
    /// carries the newest time of its parts.
    ///
    /// The run must be lent: taken with [`Buddy::alloc`], [`Buddy::take`] or
    /// [`Buddy::extend`], or a part of such a run, and not freed since.
    pub(crate) fn free(&mut self, offset: usize, size: usize, at: Instant) {
        for (piece, len) in pieces(offset, offset + size) {
            self.free_block(piece, len, at);
        }
    }

    /// [`Buddy::free`] of one block: a power of two aligned to its size.
    fn free_block(&mut self, mut offset: usize, size: usize, mut at: Instant) {
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

    /// Grows the lent run of `size` bytes at `offset` to `new_size` bytes in place (all
    /// multiples of the minimum), by taking the free memory right above it. Returns false,
    /// with nothing changed, unless every byte of `offset + size..offset + new_size` is free.
    pub(crate) fn extend(&mut self, offset: usize, size: usize, new_size: usize) -> bool {
        let (start, end) = (offset + size, offset + new_size);
        if new_size <= size || end > self.size {
            return false;
        }
        if !pieces(start, end).all(|(piece, len)| self.free_block_holding(piece, len).is_some()) {
            return false;
        }
        for (piece, len) in pieces(start, end) {
            self.take_piece(piece, len);
        }
        true
    }

    /// The order and offset of the free block that holds the block of `size` bytes at
    /// `offset` (aligned to its size), if one does.
    fn free_block_holding(&self, offset: usize, size: usize) -> Option<(usize, usize)> {
        (self.order_of(size)?..self.free.len()).find_map(|k| {
            let base = offset & !(self.order_size(k) - 1);
            self.free[k].contains_key(&base).then_some((k, base))
        })
    }

    /// Takes the block of `size` bytes at `offset` (aligned to its size) out of the free
    /// block holding it, which splits: the halves that do not hold it stay free, as old as
    /// the whole.
    fn take_piece(&mut self, offset: usize, size: usize) {
        let (mut k, mut base) =
            self.free_block_holding(offset, size).expect("checked free by the caller");
        let at = self.free[k].remove(&base).expect("a free block");
        while self.order_size(k) > size {
            k -= 1;
            let half = self.order_size(k);
            if offset < base + half {
                self.free[k].insert(base + half, at);
            } else {
                self.free[k].insert(base, at);
                base += half;
            }
        }
        self.free_bytes -= size;
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

/// The blocks a run `start..end` (multiples of the minimum size) is made of in a buddy
/// system: from `start` on, each the largest power of two aligned to its own size that
/// still fits. A run cut from the bottom of a block, or the rest of that block, splits into
/// at most one block per order.
pub(crate) fn pieces(start: usize, end: usize) -> impl Iterator<Item = (usize, usize)> {
    let mut pos = start;
    core::iter::from_fn(move || {
        if pos >= end {
            return None;
        }
        let room = 1usize << (end - pos).ilog2();
        let len = if pos == 0 { room } else { room.min(1 << pos.trailing_zeros()) };
        let piece = (pos, len);
        pos += len;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lowest_first_and_merges_back_in_any_order() {
        let mut b = Buddy::new(1 << 16, 1 << 12, Instant::now());
        let blocks: Vec<usize> = (0..16).map(|_| b.alloc(1 << 12, false).unwrap()).collect();
        assert_eq!(blocks, (0..16).map(|i| i << 12).collect::<Vec<_>>());
        assert_eq!(b.alloc(1 << 12, false), None);
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
            let off = b.alloc(1 << shift, false).unwrap();
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
        let (x, y) = (b.alloc(1 << 12, false).unwrap(), b.alloc(1 << 12, false).unwrap());
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
        let x = b.alloc(1 << 12, false).unwrap(); // splits: the upper half is free since t0
        b.free(x, 1 << 12, t1);
        let mut b2 = Buddy::new(1 << 13, 1 << 12, t0);
        let y = b2.alloc(1 << 12, false).unwrap();
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
        assert_eq!(b.alloc(1 << 12, false), Some(0)); // splits: free 4K@4K, 8K@8K, 16K@16K, 32K@32K
        assert!(b.is_free_range(0x1000, 0x10000, None.into_iter()), "spans four free blocks");
        assert!(!b.is_free_range(0x800, 0x2000, None.into_iter()), "starts in the taken block");
        assert!(b.is_free_range(0x0, 0x2000, Some((0, 0x1000)).into_iter()), "and the others");
        assert!(!b.is_free(0x1000, 0x2000), "is_free wants a single block");
    }

    #[test]
    fn a_lent_block_extends_over_its_free_buddies_only() {
        let now = Instant::now();
        let mut b = Buddy::new(1 << 20, 1 << 12, now);
        let low = b.alloc(1 << 12, false).unwrap();
        assert_eq!(low, 0);
        // Its buddies above (4K at 4K, 8K at 8K, 16K at 16K) are free: 4K grows to 32K.
        assert!(b.extend(low, 1 << 12, 1 << 15));
        assert_eq!(b.free_bytes(), (1 << 20) - (1 << 15));
        b.check().unwrap();
        // The next block is lent: no further doubling from 32K to 64K.
        let next = b.alloc(1 << 15, false).unwrap();
        assert_eq!(next, 1 << 15);
        assert!(!b.extend(low, 1 << 15, 1 << 16));
        assert_eq!(b.free_bytes(), (1 << 20) - (1 << 16), "a refused extension changes nothing");
        // A run extends over any free memory above it, aligned or not: 32K at 32K to 44K.
        assert!(b.extend(next, 1 << 15, 44 << 10));
        b.check().unwrap();
        b.free(low, 1 << 15, now);
        b.free(next, 44 << 10, now);
        assert_eq!(b.free_bytes(), 1 << 20);
        b.check().unwrap();
    }

    #[test]
    fn a_growable_block_is_cut_from_the_largest_free_block() {
        let now = Instant::now();
        let mut b = Buddy::new(1 << 20, 1 << 12, now);
        assert_eq!(b.alloc(1 << 12, false), Some(0));
        // Lowest first would give 4K at 4K, whose buddy is lent; growable takes the free
        // upper half (512K at 512K) and cuts 4K from its bottom.
        assert_eq!(b.largest_free(), 1 << 19);
        let grow = b.alloc(1 << 12, true).unwrap();
        assert_eq!(grow, 1 << 19);
        assert_eq!(b.largest_free(), 1 << 18, "the lower half stays whole");
        assert!(b.extend(grow, 1 << 12, 1 << 19), "every buddy up to 512K is free");
        assert!(!b.extend(grow, 1 << 19, 1 << 20), "but not beyond the region");
        b.check().unwrap();
    }

    #[test]
    fn refuses_sizes_it_cannot_hold() {
        let mut b = Buddy::new(1 << 12, 1 << 8, Instant::now());
        assert_eq!(b.alloc(1 << 13, false), None);
        assert_eq!(b.alloc(1 << 4, false), None);
        assert_eq!(b.alloc(1 << 12, false), Some(0));
        assert_eq!(b.alloc(1 << 8, false), None);
    }

    #[test]
    fn runs_of_any_page_count_split_and_merge_back() {
        let now = Instant::now();
        let mut b = Buddy::new(1 << 20, 1 << 12, now);
        // 288K: cut from a 512K block, whose upper 224K stays free as 32K, 64K and 128K.
        let run = b.alloc(288 << 10, false).unwrap();
        assert_eq!(run, 0);
        assert_eq!(b.free_bytes(), (1 << 20) - (288 << 10));
        b.check().unwrap();
        let next = b.alloc(32 << 10, false).unwrap();
        assert_eq!(next, 288 << 10, "the lowest free block: right above the run");
        // Extending over a lent block fails, over free ones works.
        assert!(!b.extend(run, 288 << 10, 300 << 10));
        assert!(b.extend(next, 32 << 10, 96 << 10));
        assert_eq!(b.free_bytes(), (1 << 20) - (384 << 10));
        b.check().unwrap();
        // A part of a run goes back on its own: the run's top 200K.
        b.free(88 << 10, 200 << 10, now);
        b.check().unwrap();
        b.free(0, 88 << 10, now);
        b.free(next, 96 << 10, now);
        b.check().unwrap();
        assert_eq!(b.free_blocks().map(|(o, l, _)| (o, l)).collect::<Vec<_>>(), [(0, 1 << 20)]);
    }

    #[test]
    fn pieces_are_aligned_powers_of_two_covering_the_run() {
        for (start, end) in [(0, 288), (288, 512), (4, 1000), (96, 97), (0, 1024), (12, 20)] {
            let mut pos = start;
            for (piece, len) in pieces(start, end) {
                assert_eq!(piece, pos);
                assert!(len.is_power_of_two() && piece % len == 0, "{piece}+{len}");
                pos += len;
            }
            assert_eq!(pos, end);
        }
        assert_eq!(pieces(288, 512).count(), 3);
    }
}
