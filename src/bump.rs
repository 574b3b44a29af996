//! The arithmetic of bumping, on plain addresses: safe code, tested on its own.
//!
//! A process chunk bumps **upward**: the next allocation starts at the bump pointer rounded
//! up to its alignment, and the bump pointer moves past its end. The newest allocation thus
//! ends at the bump pointer, which is what lets it grow and shrink in place.
//!
//! The bump pointer is always a multiple of [`MIN_ALIGN`] (a word): an allocation takes its
//! size rounded up to a word (its [`footprint`]). For alignments up to a word, the start is
//! then the bump pointer itself, and bumping is one addition: the loop-carried chain from
//! one allocation to the next is as short as it can be.

use core::alloc::Layout;

/// Bytes to skip from `addr` to the next multiple of `align` (a power of two).
#[inline(always)]
pub(crate) fn padding(addr: usize, align: usize) -> usize {
    addr.wrapping_neg() & (align - 1)
}

/// The bump pointer, and so every allocation's start, is a multiple of this.
pub(crate) const MIN_ALIGN: usize = 8;

/// Addresses of every block lie below this, `2^(BITS-2)` (checked when a top chunk is
/// mapped; user-space addresses of 64-bit systems are far lower).
pub(crate) const MAX_ADDR: usize = 1 << (usize::BITS - 2);

/// Bytes an allocation of `size` takes from a block: `size` rounded up to [`MIN_ALIGN`].
/// No overflow: `size <= isize::MAX`.
#[inline(always)]
pub(crate) fn footprint(size: usize) -> usize {
    (size + (MIN_ALIGN - 1)) & !(MIN_ALIGN - 1)
}

/// If `layout` fits between `ptr` and `end`, its start and the new bump pointer.
///
/// One comparison, and no overflow, given `ptr <= end < MAX_ADDR = 2^(BITS-2)`:
/// `ptr + align - 1 < 2^(BITS-2) + 2^(BITS-1)`. For `align <= 2^(BITS-2)`, `start` (a
/// multiple of `align` rounded up from below `2^(BITS-2)`) is at most `2^(BITS-2)`, and
/// `footprint(size) <= 2^(BITS-1)` (as `size <= isize::MAX`), so `new < 2^BITS`. For
/// `align = 2^(BITS-1)`, `Layout` forces `size = 0`, so `new = start = 2^(BITS-1)`.
#[inline(always)]
pub(crate) fn fit(ptr: usize, end: usize, layout: Layout) -> Option<(usize, usize)> {
    debug_assert!(ptr <= end && end < MAX_ADDR && ptr % MIN_ALIGN == 0);
    let start = (ptr + (layout.align() - 1)) & !(layout.align() - 1);
    let new = start + footprint(layout.size());
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
        header.checked_add(padding(header, align))?.checked_add(footprint(size))
    } else {
        footprint(size).checked_add(align)
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
        assert_eq!(fit(0x1008, 0x1020, layout(8, 16)), Some((0x1010, 0x1018)));
        assert_eq!(fit(0x1008, 0x1010, layout(8, 16)), None);
        assert_eq!(fit(0x1000, 0x1010, layout(9, 1)), Some((0x1000, 0x1010)), "rounded to a word");
        assert_eq!(fit(0x1000, 0x1008, layout(9, 1)), None);
        assert_eq!(fit(0x1010, 0x1010, layout(0, 1)), Some((0x1010, 0x1010)));
        // Sizes near isize::MAX and huge alignments do not overflow, even near MAX_ADDR.
        let top = MAX_ADDR - MIN_ALIGN;
        assert_eq!(fit(0x1000, 0x2000, layout(isize::MAX as usize, 1)), None);
        assert_eq!(fit(0x1000, 0x2000, layout(1, 1 << 62)), None);
        assert_eq!(fit(top, top, layout(1 << 62, 1 << 62)), None);
        assert_eq!(fit(top, top, layout(0, 1 << 63)), None);
        assert_eq!(fit(top, top, layout(isize::MAX as usize, 1)), None);
        assert_eq!(fit(top, top, layout(isize::MAX as usize - 7, 8)), None);
    }

    #[test]
    fn needs_cover_header_padding_and_size() {
        assert_eq!(regular_need(24, layout(8, 8), 4096), Some(32));
        assert_eq!(regular_need(24, layout(5, 1), 4096), Some(32), "a word at least");
        assert_eq!(regular_need(24, layout(8, 64), 4096), Some(72));
        assert_eq!(regular_need(24, layout(8, 1 << 16), 4096), Some(8 + (1 << 16)));
        let huge = layout(isize::MAX as usize - 7, 8);
        assert_eq!(regular_need(24, huge, 4096), Some(isize::MAX as usize + 17));
        assert_eq!(large_need(layout(100, 8), 4096), Some(100));
        assert_eq!(large_need(layout(100, 1 << 16), 4096), Some(100 + (1 << 16) - 4096));
    }
}
