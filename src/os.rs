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
//! - [`resident_bytes`] counts the resident bytes of a page-aligned range inside a live
//!   region from [`map`]. It only asks: it reads and writes no memory of the range.
//!
//! With the `fault-injection` feature, `crate::fault_injection` can make `map` and
//! `purge` fail on purpose, as the kernel might.
//!
//! On unix outside Miri the backend is anonymous private `mmap`/`munmap` through `libc`.
//! Under Miri (which models only whole-region frees) and on other targets the backend is
//! the global allocator, with page alignment, so the rest of the crate is identical.
//! Residency comes from `mincore` on Linux and Android (where its answer is exact);
//! elsewhere (and under Miri) every page counts as resident.

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

/// Resident bytes of `ptr..ptr + len`, as `(all, within)`: those of the whole range, and
/// of them those that lie in `parts`, offset ranges `(start, end)` from `ptr`, sorted and
/// disjoint. Residency is per page, the count per byte: a resident page split between
/// `parts` and the rest counts its bytes to each.
///
/// `ptr..ptr + len` must be page-aligned and lie inside a live region from [`map`]. The
/// answer is a snapshot: a page may be touched or purged right after. Where the OS cannot
/// be asked (see the module docs) every page counts as resident: an upper bound, the safe
/// side for a figure of memory use.
pub(crate) fn resident_bytes(
    ptr: NonNull<u8>,
    len: usize,
    parts: &[(usize, usize)],
) -> (usize, usize) {
    debug_assert!(parts.windows(2).all(|w| w[0].0 < w[0].1 && w[0].1 <= w[1].0));
    let (mut all, mut within) = (0, 0);
    // `first` is the first part that may still meet this run or a later one.
    let mut first = 0;
    resident_runs(ptr, len, |start, end| {
        all += end - start;
        while parts.get(first).is_some_and(|&(_, part_end)| part_end <= start) {
            first += 1;
        }
        for &(part_start, part_end) in parts[first..].iter().take_while(|p| p.0 < end) {
            within += part_end.min(end) - part_start.max(start);
        }
    });
    (all, within)
}

/// Calls `f(start, end)` for each run of resident pages in `ptr..ptr + len`, as offsets
/// from `ptr`, lowest first; adjacent resident pages make one run. Preconditions as for
/// [`resident_bytes`].
///
/// `mincore` answers for at most `BATCH` pages per call, so the answer takes a fixed 4 KiB
/// buffer on the stack whatever `len` is. Pages it cannot tell about (the call failed,
/// which it does not on a live mapping) count as resident, as in the other backend.
#[cfg(all(not(miri), any(target_os = "linux", target_os = "android")))]
fn resident_runs(ptr: NonNull<u8>, len: usize, mut f: impl FnMut(usize, usize)) {
    /// Pages per `mincore` call: 16 MiB with 4 KiB pages.
    const BATCH: usize = 4096;
    let page = page_size();
    debug_assert!(ptr.addr().get() % page == 0 && len % page == 0);
    let mut vec = [0u8; BATCH];
    let mut run: Option<(usize, usize)> = None;
    let mut offset = 0;
    while offset + page <= len {
        let pages = ((len - offset) / page).min(BATCH);
        // SAFETY: `mincore` writes one byte per page of the `pages * page` bytes asked
        // about, `pages <= vec.len()` bytes of `vec`, and reads no memory of the range (one
        // not mapped is refused with ENOMEM, not touched), so nothing needs to be live for
        // the call itself; the address is page-aligned, as `ptr` and `offset` are.
        let rc = unsafe {
            libc::mincore(
                ptr.as_ptr().wrapping_add(offset).cast::<libc::c_void>(),
                pages * page,
                vec.as_mut_ptr().cast(),
            )
        };
        for (i, &state) in vec[..pages].iter().enumerate() {
            let at = offset + i * page;
            if rc != 0 || state & 1 != 0 {
                match &mut run {
                    Some((_, end)) if *end == at => *end = at + page,
                    _ => {
                        if let Some((start, end)) = run.replace((at, at + page)) {
                            f(start, end);
                        }
                    }
                }
            }
        }
        offset += pages * page;
    }
    if let Some((start, end)) = run {
        f(start, end);
    }
}

/// Residency where `mincore` is not asked (the global-allocator backend, or a system
/// other than Linux and Android): the whole range is one resident run. That is an upper bound; the
/// global allocator's memory, zeroed by `alloc_zeroed`, may well be resident anyway.
#[cfg(not(all(not(miri), any(target_os = "linux", target_os = "android"))))]
fn resident_runs(_ptr: NonNull<u8>, len: usize, mut f: impl FnMut(usize, usize)) {
    if len != 0 {
        f(0, len);
    }
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

    /// Whether [`resident_runs`] asks `mincore` (the condition on its definition).
    const MINCORE: bool = cfg!(all(not(miri), any(target_os = "linux", target_os = "android")));

    /// A region of `pages` pages, mapped without transparent huge pages where they exist:
    /// with them, touching one page may make a whole 2 MiB around it resident.
    fn map_small_pages(pages: usize) -> NonNull<u8> {
        let ptr = map(pages * page_size()).unwrap();
        #[cfg(all(target_os = "linux", not(miri)))]
        // SAFETY: madvise with MADV_NOHUGEPAGE only sets a flag on our own live mapping; it
        // reads and writes none of its memory.
        unsafe {
            libc::madvise(ptr.as_ptr().cast(), pages * page_size(), libc::MADV_NOHUGEPAGE);
        }
        ptr
    }

    fn runs(ptr: NonNull<u8>, len: usize) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        resident_runs(ptr, len, |start, end| runs.push((start, end)));
        runs
    }

    #[test]
    fn resident_runs_are_the_touched_pages_less_the_purged_ones() {
        let page = page_size();
        let ptr = map_small_pages(8);
        // SAFETY: pages 2, 5 and 6 of the 8-page region mapped above, unmapped only below.
        unsafe {
            for k in [2, 5, 6] {
                ptr.add(k * page).write(1);
            }
        }
        if MINCORE {
            assert_eq!(runs(ptr, 8 * page), [(2 * page, 3 * page), (5 * page, 7 * page)]);
        } else {
            assert_eq!(runs(ptr, 8 * page), [(0, 8 * page)], "everything counts as resident");
        }
        // SAFETY: page 5 of the region, whose contents nothing relies on any more.
        unsafe { purge(ptr.add(5 * page), page).unwrap() };
        // Linux drops the pages at once; elsewhere `MADV_DONTNEED` may take its time.
        if MINCORE && cfg!(any(target_os = "linux", target_os = "android")) {
            assert_eq!(runs(ptr, 8 * page), [(2 * page, 3 * page), (6 * page, 7 * page)]);
            // SAFETY: a range of pages inside the region.
            assert_eq!(runs(unsafe { ptr.add(3 * page) }, 4 * page), [(3 * page, 4 * page)]);
        }
        assert_eq!(runs(ptr, 0), []);
        // SAFETY: the whole region mapped above, unmapped once.
        unsafe { unmap(ptr, 8 * page) };
    }

    #[test]
    fn resident_bytes_count_the_bytes_of_parts_in_resident_pages() {
        let page = page_size();
        let ptr = map_small_pages(4);
        // SAFETY: pages 0 and 2 of the 4-page region mapped above, unmapped only below.
        unsafe {
            ptr.write(1);
            ptr.add(2 * page).write(1);
        }
        let parts = [
            (100, 300),                     // in page 0
            (page - 50, page + 50),         // half in page 0, half in page 1
            (2 * page + 10, 3 * page + 10), // page 2 but its first 10 bytes, and 10 more
            (3 * page + 100, 4 * page),     // in page 3
        ];
        let in_parts = 200 + 100 + page + (page - 100);
        if MINCORE {
            assert_eq!(resident_bytes(ptr, 4 * page, &parts), (2 * page, 200 + 50 + page - 10));
        } else {
            assert_eq!(resident_bytes(ptr, 4 * page, &parts), (4 * page, in_parts));
        }
        assert_eq!(resident_bytes(ptr, 4 * page, &[]).1, 0);
        // SAFETY: the whole region mapped above, unmapped once.
        unsafe { unmap(ptr, 4 * page) };
    }

    #[test]
    fn resident_runs_join_across_mincore_batches() {
        if !MINCORE {
            return; // one run whatever the length; mapping 16 MiB under Miri is slow
        }
        let page = page_size();
        let pages = 4096 + 3;
        let ptr = map_small_pages(pages);
        // SAFETY: pages of the region mapped above, unmapped only below.
        unsafe {
            for k in [0, 4095, 4096, pages - 1] {
                ptr.add(k * page).write(1);
            }
        }
        let (last, end) = ((pages - 1) * page, pages * page);
        assert_eq!(runs(ptr, end), [(0, page), (4095 * page, 4097 * page), (last, end)]);
        // SAFETY: the whole region mapped above, unmapped once.
        unsafe { unmap(ptr, end) };
    }

    #[test]
    fn absurd_sizes_are_alloc_errors() {
        let page = page_size();
        assert!(map((isize::MAX as usize) & !(page - 1)).is_err());
    }
}
