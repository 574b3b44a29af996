//! The only code that talks to the operating system.
//!
//! One narrow interface, with its preconditions stated once:
//!
//! - [`map`] returns a fresh, zero-filled, readable and writable region of `size` bytes,
//!   aligned to at least [`page_size`], or `AllocError`. `size` must be a non-zero multiple
//!   of the page size.
//! - [`unmap`] gives back a whole region returned by [`map`], exactly once, with the same
//!   size.
//!
//! - [`purge`] gives the pages of a free range back while keeping them mapped; their
//!   contents are lost (zero pages with `mmap`, a pattern in the other backend).
//!
//! With the `fault-injection` feature, [`crate::fault_injection`] can make `map` and
//! `purge` fail on purpose, as the kernel might.
//!
//! On unix outside Miri the backend is anonymous private `mmap`/`munmap` through `libc`.
//! Under Miri (which models only whole-region frees) and on other targets the backend is
//! the global allocator, with page alignment, so the rest of the crate is identical.

use core::ptr::NonNull;

use allocator_api2::alloc::AllocError;

/// The page size used for alignment and rounding.
#[cfg(all(unix, not(miri)))]
pub(crate) fn page_size() -> usize {
    use core::sync::atomic::{AtomicUsize, Ordering};
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let raw = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(raw).ok().filter(|p| p.is_power_of_two()).unwrap_or(4096);
    PAGE.store(page, Ordering::Relaxed);
    page
}

/// The page size used for alignment and rounding.
#[cfg(not(all(unix, not(miri))))]
pub(crate) fn page_size() -> usize {
    4096
}

/// Maps a fresh zero-filled region of `size` bytes, aligned to at least a page.
///
/// `size` must be a non-zero multiple of [`page_size`]; any failure of the system call
/// (including sizes the kernel refuses, such as ones near `isize::MAX`) is `AllocError`.
#[cfg(all(unix, not(miri)))]
pub(crate) fn map(size: usize) -> Result<NonNull<u8>, AllocError> {
    #[cfg(feature = "fault-injection")]
    if crate::fault_injection::map_fails() {
        return Err(AllocError);
    }
    debug_assert!(size != 0 && size % page_size() == 0);
    // SAFETY: an anonymous private mapping with a null hint creates a new region and
    // touches no existing memory; every argument is a valid constant or a plain length.
    let raw = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(AllocError);
    }
    NonNull::new(raw.cast::<u8>()).ok_or(AllocError)
}

/// Unmaps a region returned by [`map`].
///
/// # Safety
///
/// `ptr` and `size` must be exactly a region returned by [`map`] that has not been
/// unmapped yet, and nothing may use the region afterwards.
#[cfg(all(unix, not(miri)))]
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, size: usize) {
    #[cfg(feature = "fault-injection")]
    crate::fault_injection::before(crate::fault_injection::SystemCall::Unmap);
    // SAFETY: the caller passes a whole live region from `map`, which nothing uses any more.
    let rc = unsafe { libc::munmap(ptr.as_ptr().cast(), size) };
    // munmap of a whole region we mapped cannot fail short of a kernel bug; there is
    // nothing useful to do about it in a destructor, so only debug builds say so.
    debug_assert_eq!(rc, 0, "munmap failed");
}

/// Whether a region of `size` bytes (a non-zero multiple of [`page_size`]) can be mapped
/// now: a trial, unmapped at once, for a setting whose every use needs such a region.
pub(crate) fn can_map(size: usize) -> bool {
    match map(size) {
        Ok(region) => {
            // SAFETY: the whole region just mapped, unmapped once, and never used.
            unsafe { unmap(region, size) };
            true
        }
        Err(AllocError) => false,
    }
}

/// Largest region the Miri backend maps: 4 GiB.
#[cfg(not(all(unix, not(miri))))]
const MIRI_MAX_REGION: usize = 1 << 32;

/// Gives the pages of `ptr..ptr + len` back to the OS while keeping them mapped: the
/// resident set falls at once, and the next touch of a page finds it zero-filled.
///
/// # Safety
///
/// `ptr..ptr + len` must be page-aligned and lie inside a live region from [`map`], and
/// nothing may rely on its contents.
#[cfg(all(unix, not(miri)))]
pub(crate) unsafe fn purge(ptr: NonNull<u8>, len: usize) -> Result<(), AllocError> {
    #[cfg(feature = "fault-injection")]
    crate::fault_injection::before(crate::fault_injection::SystemCall::Purge);
    #[cfg(feature = "fault-injection")]
    if crate::fault_injection::purge_fails() {
        return Err(AllocError);
    }
    // SAFETY: the caller passes a page-aligned range of our own mapping whose contents are
    // unused; MADV_DONTNEED on a private anonymous mapping only drops those pages.
    let rc = unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_DONTNEED) };
    if rc == 0 { Ok(()) } else { Err(AllocError) }
}

/// What purged memory holds in the global-allocator backend.
#[cfg(not(all(unix, not(miri))))]
pub(crate) const PURGED_BYTE: u8 = 0xDB;

/// Purging in the global-allocator backend: there is no resident set to lower, so the
/// range is overwritten with [`PURGED_BYTE`] instead, the way `MADV_DONTNEED` replaces
/// it with zero pages. Purging memory still in use thus shows up under Miri (and on
/// non-unix targets) as corrupted data in the tests that check their patterns.
///
/// # Safety
///
/// As for the `mmap` backend.
#[cfg(not(all(unix, not(miri))))]
pub(crate) unsafe fn purge(ptr: NonNull<u8>, len: usize) -> Result<(), AllocError> {
    #[cfg(feature = "fault-injection")]
    crate::fault_injection::before(crate::fault_injection::SystemCall::Purge);
    #[cfg(feature = "fault-injection")]
    if crate::fault_injection::purge_fails() {
        return Err(AllocError);
    }
    // SAFETY: the caller passes a range inside a live region from `map` whose contents
    // nothing relies on, so it may be overwritten.
    unsafe { ptr.as_ptr().write_bytes(PURGED_BYTE, len) };
    Ok(())
}

#[cfg(not(all(unix, not(miri))))]
fn region_layout(size: usize) -> Result<core::alloc::Layout, AllocError> {
    core::alloc::Layout::from_size_align(size, page_size()).map_err(|_| AllocError)
}

/// Maps a fresh zero-filled region of `size` bytes, aligned to at least a page
/// (global-allocator backend).
#[cfg(not(all(unix, not(miri))))]
pub(crate) fn map(size: usize) -> Result<NonNull<u8>, AllocError> {
    #[cfg(feature = "fault-injection")]
    if crate::fault_injection::map_fails() {
        return Err(AllocError);
    }
    // Miri aborts on an allocation it cannot hold instead of failing it; refuse absurd
    // sizes here, as the kernel would.
    if cfg!(miri) && size > MIRI_MAX_REGION {
        return Err(AllocError);
    }
    let layout = region_layout(size)?;
    // SAFETY: `layout` has a non-zero size (callers pass a non-zero multiple of a page).
    let raw = unsafe { std::alloc::alloc_zeroed(layout) };
    NonNull::new(raw).ok_or(AllocError)
}

/// Unmaps a region returned by [`map`] (global-allocator backend).
///
/// # Safety
///
/// `ptr` and `size` must be exactly a region returned by [`map`] that has not been
/// unmapped yet, and nothing may use the region afterwards.
#[cfg(not(all(unix, not(miri))))]
pub(crate) unsafe fn unmap(ptr: NonNull<u8>, size: usize) {
    #[cfg(feature = "fault-injection")]
    crate::fault_injection::before(crate::fault_injection::SystemCall::Unmap);
    let layout = region_layout(size).expect("size was accepted by map");
    // SAFETY: the caller passes a live region from `map`, allocated with this very layout.
    unsafe { std::alloc::dealloc(ptr.as_ptr(), layout) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_gives_zeroed_page_aligned_writable_memory() {
        let size = 4 * page_size();
        let ptr = map(size).unwrap();
        assert_eq!(ptr.as_ptr() as usize % page_size(), 0);
        // SAFETY: the region is `size` bytes, mapped above and unmapped only below.
        unsafe {
            let bytes = core::slice::from_raw_parts_mut(ptr.as_ptr(), size);
            assert!(bytes.iter().all(|&b| b == 0));
            bytes.fill(0xA5);
            assert!(bytes.iter().all(|&b| b == 0xA5));
            unmap(ptr, size);
        }
    }

    #[test]
    fn absurd_sizes_are_alloc_errors() {
        let page = page_size();
        assert!(map((isize::MAX as usize) & !(page - 1)).is_err());
    }
}
