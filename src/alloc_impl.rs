//! `&Chunk` and `&SyncChunk` as an allocator: thin forwarding to the chunk, one impl for
//! both kinds (`&ProcessChunk<'_, K>`), written once (the macro `forward_allocator`) and stamped out
//! for each `Allocator` trait perfloc supports:
//!
//! - allocator-api2 0.2's, always (with `allocator-api2/nightly` on anywhere in the graph,
//!   or perfloc's `nightly` feature, that trait *is* `core::alloc::Allocator`, so this one
//!   impl is std's as well, and no second impl can collide with it);
//! - allocator-api2 0.3's and 0.4's, with the features `allocator-api2-03` and
//!   `allocator-api2-04`.
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
//!
//! # What a wrong caller gets
//!
//! The `unsafe` methods trust their caller as the trait says, but the chunk decides what to
//! rewind or give back by address, never by the layout alone, so the usual mistakes do not
//! corrupt it:
//!
//! - A pointer from another allocator (another chunk, a child, a parent, the global heap)
//!   passed to `deallocate` is ignored: it is neither the newest allocation of this chunk's
//!   current block nor inside one of its large blocks. `shrink` leaves it in place (or
//!   copies it into this chunk when the alignment grows), `grow` copies it into this chunk;
//!   the foreign memory itself is not written.
//! - A zero-size layout owns nothing: `deallocate` does nothing, and `shrink` to size zero
//!   gives the memory back and returns a dangling pointer.
//!
//! A wrong layout for this chunk's own allocation (a size larger than the one allocated
//! may make an older allocation look like the newest), and a pointer used after
//! `deallocate` or after the chunk is reset or dropped, are undefined behaviour as with any
//! allocator; the borrow checker rules out the last for containers.

use core::alloc::Layout;
use core::ptr::NonNull;

use crate::{AllocError, BumpState, ProcessChunk};

/// `unsafe impl $krate::alloc::Allocator for &ProcessChunk<'_, K>`, forwarding to the
/// chunk's methods; `$krate` is an allocator-api2 crate (any version: their traits have
/// the same methods, each with its own `AllocError`).
macro_rules! forward_allocator {
    ($krate:ident) => {
        // SAFETY: memory handed out stays valid until it is deallocated or the chunk is reset
        // or dropped, which needs `&mut` to the chunk or the chunk by value, impossible while
        // any `&ProcessChunk` (and so any container using it) lives. Copies of the reference
        // are the same allocator. For a `SyncChunk` shared between threads, the bump hands
        // out disjoint bytes by compare-and-swap (see `SharedBump`).
        // `grow`/`shrink` keep data and only rewind or extend the newest allocation, which
        // the chunk proves by its end meeting the bump pointer.
        unsafe impl<K: BumpState> $krate::alloc::Allocator for &ProcessChunk<'_, K> {
            #[inline(always)]
            fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, $krate::alloc::AllocError> {
                match (**self).try_alloc_layout(layout) {
                    Ok(ptr) => Ok(NonNull::slice_from_raw_parts(ptr, layout.size())),
                    Err(AllocError) => Err($krate::alloc::AllocError),
                }
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
            ) -> Result<NonNull<[u8]>, $krate::alloc::AllocError> {
                // SAFETY: the caller guarantees a live allocation of `old` and
                // `new.size() >= old.size()`.
                match unsafe { (**self).grow(ptr, old, new) } {
                    Ok(ptr) => Ok(NonNull::slice_from_raw_parts(ptr, new.size())),
                    Err(AllocError) => Err($krate::alloc::AllocError),
                }
            }

            #[inline]
            unsafe fn grow_zeroed(
                &self,
                ptr: NonNull<u8>,
                old: Layout,
                new: Layout,
            ) -> Result<NonNull<[u8]>, $krate::alloc::AllocError> {
                // SAFETY: as for `grow`.
                let Ok(ptr) = (unsafe { (**self).grow(ptr, old, new) }) else {
                    return Err($krate::alloc::AllocError);
                };
                // SAFETY: the allocation now has `new.size()` bytes; zero the ones past the
                // old size.
                unsafe { ptr.add(old.size()).write_bytes(0, new.size() - old.size()) };
                Ok(NonNull::slice_from_raw_parts(ptr, new.size()))
            }

            #[inline]
            unsafe fn shrink(
                &self,
                ptr: NonNull<u8>,
                old: Layout,
                new: Layout,
            ) -> Result<NonNull<[u8]>, $krate::alloc::AllocError> {
                // SAFETY: the caller guarantees a live allocation of `old` and
                // `new.size() <= old.size()`.
                match unsafe { (**self).shrink(ptr, old, new) } {
                    Ok(ptr) => Ok(NonNull::slice_from_raw_parts(ptr, new.size())),
                    Err(AllocError) => Err($krate::alloc::AllocError),
                }
            }
        }
    };
}

forward_allocator!(allocator_api2);
#[cfg(feature = "allocator-api2-03")]
forward_allocator!(allocator_api2_03);
#[cfg(feature = "allocator-api2-04")]
forward_allocator!(allocator_api2_04);
