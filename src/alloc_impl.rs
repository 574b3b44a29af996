//! `&Chunk` as an [`Allocator`]: thin forwarding to the chunk.
//!
//! Implemented for `&Chunk`, not `Chunk`: a container owning the allocator could hand out
//! `&mut` to it and let safe code reset it under live data.
//!
//! - `allocate` bumps; zero-size layouts get a dangling, well-aligned pointer.
//! - `grow`/`shrink` of the newest allocation of the current block move the bump pointer:
//!   in place, no copy, until the block is full. A large block (one allocation on its own)
//!   also grows in place while its block has room. Otherwise the data moves.
//! - `deallocate` of the newest allocation gives its bytes back; a large block goes back to
//!   the pool at once; other memory waits for the end of the scope.

use core::alloc::Layout;
use core::ptr::NonNull;

use allocator_api2::alloc::{AllocError, Allocator};

use crate::Chunk;

// SAFETY: memory handed out stays valid until it is deallocated or the chunk is reset or
// dropped, which needs `&mut Chunk` or the chunk by value, impossible while any `&Chunk`
// (and so any container using it) lives. Copies of `&Chunk` are the same allocator.
// `grow`/`shrink` keep data and only rewind or extend the newest allocation, which the
// chunk proves by its end meeting the bump pointer.
unsafe impl Allocator for &Chunk<'_> {
    #[inline(always)]
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        let ptr = (**self).try_alloc_layout(layout)?;
        Ok(NonNull::slice_from_raw_parts(ptr, layout.size()))
    }

    #[inline]
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` is a live allocation of `layout` from us.
        unsafe { (**self).dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller guarantees a live allocation of `old` and `new.size() >= old.size()`.
        let ptr = unsafe { (**self).grow(ptr, old, new)? };
        Ok(NonNull::slice_from_raw_parts(ptr, new.size()))
    }

    #[inline]
    unsafe fn grow_zeroed(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: as for `grow`.
        let ptr = unsafe { (**self).grow(ptr, old, new)? };
        // SAFETY: the allocation now has `new.size()` bytes; zero the ones past the old size.
        unsafe { ptr.add(old.size()).write_bytes(0, new.size() - old.size()) };
        Ok(NonNull::slice_from_raw_parts(ptr, new.size()))
    }

    #[inline]
    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        // SAFETY: the caller guarantees a live allocation of `old` and `new.size() <= old.size()`.
        let ptr = unsafe { (**self).shrink(ptr, old, new)? };
        Ok(NonNull::slice_from_raw_parts(ptr, new.size()))
    }
}
