//! The arithmetic of bumping, on plain addresses: safe code, tested on its own.
//!
//! A process chunk bumps **upward**: the next allocation starts at the bump pointer rounded
//! up to its alignment, and the bump pointer moves to its end. The newest allocation thus
//! ends exactly at the bump pointer, which is what lets it grow and shrink in place.

use core::alloc::Layout;

/// Bytes to skip from `addr` to the next multiple of `align` (a power of two).
#[inline(always)]
pub(crate) fn padding(addr: usize, align: usize) -> usize {
    addr.wrapping_neg() & (align - 1)
}

/// Addresses of every block lie at or below this (checked when a top chunk is mapped).
pub(crate) const MAX_ADDR: usize = isize::MAX as usize;

/// If `layout` fits between `ptr` and `end`, its start and the new bump pointer (its end).
///
/// One comparison, and no overflow, given `ptr <= end <= MAX_ADDR` (`< 2^(BITS-1)`):
/// `ptr + align - 1` stays below `2^BITS` because `align <= 2^(BITS-1)`; `start`, a multiple
/// of `align` (a power of two dividing `2^(BITS-1)`) rounded up from below `2^(BITS-1)`, is at
/// most `2^(BITS-1)`; and `size <= isize::MAX < 2^(BITS-1)`, so `start + size < 2^BITS`.
#[inline(always)]
pub(crate) fn fit(ptr: usize, end: usize, layout: Layout) -> Option<(usize, usize)> {
    debug_assert!(ptr <= end && end <= MAX_ADDR);
    let start = (ptr + (layout.align() - 1)) & !(layout.align() - 1);
    let new = start + layout.size();
    if new <= end { Some((start, new)) } else { None }
}

/// Bytes a fresh regular block must have so that `layout` fits after a `header`-byte
/// header, given that a block of `B` bytes starts at an address aligned to `min(B, page)`.
///
/// - `align <= page`: the data starts at `round_up(header, align)`; the block, being at
///   least that large and a power of two, is itself aligned to `align`.
/// - `align > page`: the block is only known to be page-aligned; the data starts at most
///   `align` bytes in (the header, at most a page, fits in the padding).
pub(crate) fn regular_need(header: usize, layout: Layout, page: usize) -> Option<usize> {
    let (size, align) = (layout.size(), layout.align());
    if align <= page {
        header.checked_add(padding(header, align))?.checked_add(size)
    } else {
        size.checked_add(align)
    }
}

/// Bytes a large block (no header) must have so that `layout` fits at its start, under the
/// same alignment guarantee as [`regular_need`].
pub(crate) fn large_need(layout: Layout, page: usize) -> Option<usize> {
    let (size, align) = (layout.size(), layout.align());
    if align <= page { Some(size.max(align)) } else { size.checked_add(align - page) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn padding_rounds_up_to_alignment() {
        assert_eq!(padding(0x1000, 8), 0);
        assert_eq!(padding(0x1001, 8), 7);
        assert_eq!(padding(0x1008, 16), 8);
        assert_eq!(padding(0x1001, 1), 0);
    }

    #[test]
    fn fit_checks_the_room_left() {
        assert_eq!(fit(0x1000, 0x1010, layout(16, 8)), Some((0x1000, 0x1010)));
        assert_eq!(fit(0x1001, 0x1010, layout(8, 8)), Some((0x1008, 0x1010)));
        assert_eq!(fit(0x1001, 0x1010, layout(9, 8)), None);
        assert_eq!(fit(0x1010, 0x1010, layout(0, 1)), Some((0x1010, 0x1010)));
        // Sizes near isize::MAX and huge alignments do not overflow, even at MAX_ADDR.
        assert_eq!(fit(0x1001, 0x2000, layout(isize::MAX as usize, 1)), None);
        assert_eq!(fit(0x1001, 0x2000, layout(1, 1 << 62)), None);
        assert_eq!(fit(MAX_ADDR, MAX_ADDR, layout(1 << 62, 1 << 62)), None);
        assert_eq!(fit(MAX_ADDR, MAX_ADDR, layout(0, 1 << 63)), None);
        assert_eq!(fit(MAX_ADDR - 7, MAX_ADDR, layout(isize::MAX as usize, 1)), None);
    }

    #[test]
    fn needs_cover_header_padding_and_size() {
        assert_eq!(regular_need(24, layout(8, 8), 4096), Some(32));
        assert_eq!(regular_need(24, layout(8, 64), 4096), Some(72));
        assert_eq!(regular_need(24, layout(8, 1 << 16), 4096), Some(8 + (1 << 16)));
        let huge = layout(isize::MAX as usize - 7, 8);
        assert_eq!(regular_need(24, huge, 4096), Some(isize::MAX as usize + 17));
        assert_eq!(large_need(layout(100, 8), 4096), Some(100));
        assert_eq!(large_need(layout(100, 1 << 16), 4096), Some(100 + (1 << 16) - 4096));
    }
}
