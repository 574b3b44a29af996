//! blink-alloc's `SyncBlinkAlloc` behind allocator-api2 0.2's `Allocator`, so the same
//! workload runs on it: blink-alloc 0.4 implements allocator-api2 0.4's trait, a different
//! trait for the compiler. Every method forwards to blink's own inherent method, inlined.

use std::alloc::Layout;
use std::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};
use blink_alloc::SyncBlinkAlloc;

/// A `&SyncBlinkAlloc` as an allocator-api2 0.2 allocator.
#[derive(Clone, Copy)]
pub struct Blink<'a>(pub &'a SyncBlinkAlloc);

// SAFETY: forwards to `SyncBlinkAlloc`'s inherent methods, which its own `Allocator`
// implementation (allocator-api2 0.4, the same contract) forwards to in the same way.
unsafe impl Allocator for Blink<'_> {
    #[inline(always)]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        self.0.allocate(layout).map_err(|_| AllocError)
    }

    #[inline(always)]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.deallocate(ptr, layout.size()) }
    }

    #[inline(always)]
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.resize(ptr, old, new) }.map_err(|_| AllocError)
    }

    #[inline(always)]
    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller's contract, forwarded.
        unsafe { self.0.resize(ptr, old, new) }.map_err(|_| AllocError)
    }
}
