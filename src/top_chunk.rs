//! A top chunk: one region mapped from the OS, and the buddy bookkeeping of its blocks.
//!
//! The pool keeps its top chunks in a list, oldest first (the seed's `TOP_MEM_CHUNK_VEC`).
//! A top chunk's size is a power of two; its blocks are power-of-two pieces at offsets that
//! are multiples of their size, so a block is aligned to `min(block size, page size)`.

use core::ptr::NonNull;

use allocator_api2::alloc::AllocError;

use crate::buddy::Buddy;
use crate::os;

/// One mapped region and its free blocks.
#[derive(Debug)]
pub(crate) struct TopChunk {
    /// Start of the mapping. Invariant: `base..base + buddy.size()` is one live region
    /// returned by [`os::map`], owned by this value and unmapped only by its `Drop`.
    base: NonNull<u8>,
    buddy: Buddy,
}

// SAFETY: a `TopChunk` exclusively owns its mapping; the raw pointer is an address, not a
// shared reference, and every access to the bookkeeping goes through `&mut self`.
unsafe impl Send for TopChunk {}

impl TopChunk {
    /// Maps a new top chunk of `size` bytes whose blocks are at least `min_block` bytes.
    /// Both are powers of two, `size` at least a page and at least `min_block`.
    pub(crate) fn map(size: usize, min_block: usize) -> Result<Self, AllocError> {
        let base = os::map(size)?;
        Ok(TopChunk {
            base,
            buddy: Buddy::new(size, min_block),
        })
    }

    /// Size of the mapping in bytes.
    pub(crate) fn size(&self) -> usize {
        self.buddy.size()
    }

    /// Bytes in free blocks.
    pub(crate) fn free_bytes(&self) -> usize {
        self.buddy.free_bytes()
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

    /// Takes a free block of `size` bytes (a power of two), lowest address first.
    pub(crate) fn alloc(&mut self, size: usize) -> Option<NonNull<u8>> {
        let offset = self.buddy.alloc(size)?;
        // SAFETY: the buddy system hands out offsets of blocks inside the region
        // (`offset + size <= self.size()`), so the result stays in bounds of the mapping.
        Some(unsafe { self.base.add(offset) })
    }

    /// Gives back a block taken with [`TopChunk::alloc`].
    pub(crate) fn free(&mut self, ptr: NonNull<u8>, size: usize) {
        let offset = self
            .offset_of(ptr)
            .expect("block belongs to this top chunk");
        self.buddy.free(offset, size);
    }

    /// Verifies the buddy bookkeeping of this top chunk.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.buddy
            .check()
            .map_err(|e| format!("top chunk at {:#x}: {e}", self.addr()))
    }
}

impl Drop for TopChunk {
    fn drop(&mut self) {
        // SAFETY: `base`/`size` are the live region this value owns (field invariant);
        // blocks borrowed from it are tied to the pool's lifetime, so none outlive it.
        unsafe { os::unmap(self.base, self.size()) }
    }
}
