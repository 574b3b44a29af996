//! AddressSanitizer poisoning, in builds with `-Zsanitizer=address` (`cfg(perfloc_asan)`,
//! set by the build script); nothing at all otherwise.
//!
//! The pool's memory comes from `mmap`, which ASan cannot see into: without help, a read
//! through a dangling pointer into a dropped chunk would go unnoticed. So memory the pool
//! does not lend out is poisoned: whole top chunks when mapped, blocks when they come
//! back, and the unused tail of a chunk's current block; what is handed out (a block's
//! header, an allocation's footprint) is unpoisoned. Allocations start on a word and take
//! whole words, which matches ASan's 8-byte granules.

use core::ptr::NonNull;

#[cfg(perfloc_asan)]
unsafe extern "C" {
    fn __asan_poison_memory_region(addr: *const u8, size: usize);
    fn __asan_unpoison_memory_region(addr: *const u8, size: usize);
}

/// Marks `len` bytes at `ptr` as not to be touched.
#[inline(always)]
pub(crate) fn poison(ptr: NonNull<u8>, len: usize) {
    #[cfg(perfloc_asan)]
    // SAFETY: ASan's poisoning only updates its shadow memory, which covers every address;
    // it never reads or writes the region itself.
    unsafe {
        __asan_poison_memory_region(ptr.as_ptr(), len)
    };
    let _ = (ptr, len);
}

/// Marks `len` bytes at `ptr` as usable.
#[inline(always)]
pub(crate) fn unpoison(ptr: NonNull<u8>, len: usize) {
    #[cfg(perfloc_asan)]
    // SAFETY: as for `poison`.
    unsafe {
        __asan_unpoison_memory_region(ptr.as_ptr(), len)
    };
    let _ = (ptr, len);
}
