//! Growth and shrinking past the fast path: a block grown in place, or a move.
//!
//! The fast path ([`ProcessChunk::grow`]) grows the newest allocation of the current block
//! while the block has room. Everything else comes here ([`ProcessChunk::grow_slow`]):
//!
//! - **A dedicated allocation** grows in its own block if it has room, else the block
//!   grows over the free pages above it ([`Pool::extend`]): no copy, and a vector that
//!   keeps doubling keeps its block.
//! - **A [`Chunk`]'s newest allocation**, from half a first block's size on: when it
//!   outgrows the current block, the block itself grows in place over the free pages
//!   above it ([`ProcessChunk::grow_current`]), so the vector stays on the fast path and
//!   does not move. The chunk's first block is the exception: first blocks are what the
//!   threads' local slots recycle, at the size they hold. When the block cannot grow, the
//!   allocation moves: below the dedicated threshold to a successor sized for it and cut
//!   where the memory above it is free; from the threshold on to a dedicated block taken
//!   the same way, its bytes in the old block rewound, and the old block's grown end given
//!   back to the pool ([`ProcessChunk::trim_current`]).
//! - **A [`SyncChunk`]'s blocks never grow** (other threads read their size without a
//!   lock): its newest allocation moves through successors sized for it with room to
//!   double once more (whole pages, [`ProcessChunk::push_growable_successor`]), then to a
//!   dedicated block from [`GROWABLE_NEWEST`] on (growth in a dedicated block takes the
//!   slow path and its mutex at every step); one that doubles takes its dedicated block
//!   from the dedicated threshold on (a few steps).
//! - **Anything else moves**: to a dedicated block from the threshold on, else to a fresh
//!   allocation ([`ProcessChunk::relocate`]); the old copy is deallocated, which rewinds
//!   it or gives its dedicated block back.
//!
//! Shrinking ([`ProcessChunk::shrink`]) stays in place when the alignment allows; a
//! dedicated allocation that now fits in the room left in the current block moves there,
//! and its block goes back.
//!
//! Invariants kept: a block's `size` changes only for a [`Chunk`] (which is `!Sync`), on
//! this slow path, through the raw pointer while no reference to its header is alive, and
//! the state's end of the block follows at once (1, 2); bytes a grown block gains are not
//! handed out until allocated (2); every page taken or given back is counted in `held`
//! first (5).
//!
//! [`Chunk`]: crate::Chunk
//! [`SyncChunk`]: crate::SyncChunk

use core::alloc::Layout;
use core::ptr::{self, NonNull};

use allocator_api2::alloc::AllocError;

use super::state::Resize;
use super::{
    BlockHeader, BumpState, LargeNode, ProcessChunk, aligned_for, block_end, dangling, nounwind,
};
#[cfg(doc)]
use crate::Pool;
use crate::pool::{Block, NOT_CLOSING};
#[cfg(doc)]
use crate::{Chunk, SyncChunk};
use crate::{asan, bump, os};

/// From this size on, the newest allocation of a [`SyncChunk`]'s full block that grows
/// moves to a dedicated block that can grow in place ([`Pool::acquire_run`]) rather than
/// to a successor sized for it. Smaller ones keep growing on the fast path in successors:
/// growth in a dedicated block takes the slow path, under the chunk's mutex, which would
/// cost a vector grown by `reserve_exact(1)` more than the copies it saves. One that
/// doubles moves to its dedicated block from the dedicated threshold on: it grows in a few
/// steps.
pub(super) const GROWABLE_NEWEST: usize = 128 * 1024;

impl<'pool, K: BumpState> ProcessChunk<'pool, K> {
    /// `grow` when the allocation is not the newest of the current block, or the block has
    /// no room. A dedicated allocation grows in its own block if it has room, else the
    /// block grows over the free pages above it. Otherwise the data moves: from the
    /// dedicated threshold on to a dedicated block cut so that it can grow in place next
    /// time ([`Pool::acquire_run`]), so a vector doubling to megabytes stops moving at
    /// every doubling and leaves no copy behind (but a [`SyncChunk`]'s newest allocation
    /// below [`GROWABLE_NEWEST`], which goes to a successor sized for it).
    ///
    /// # Safety
    ///
    /// As for [`ProcessChunk::grow`], the layouts given by their sizes and alignments.
    #[cold]
    #[inline(never)]
    pub(super) unsafe extern "C" fn grow_slow(
        chunk: &Self,
        ptr: NonNull<u8>,
        old_size: usize,
        old_align: usize,
        new_size: usize,
        new_align: usize,
    ) -> *mut u8 {
        // SAFETY: the sizes and alignments come from `Layout`s.
        let (old, new) = unsafe {
            (
                Layout::from_size_align_unchecked(old_size, old_align),
                Layout::from_size_align_unchecked(new_size, new_align),
            )
        };
        // SAFETY: the caller's contract.
        nounwind::to_raw(unsafe { chunk.grow_moving(ptr, old, new) })
    }

    /// [`ProcessChunk::grow_slow`]'s work.
    ///
    /// # Safety
    ///
    /// As for [`ProcessChunk::grow`].
    #[inline(always)]
    unsafe fn grow_moving(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        // The fast path's test again (a `SyncChunk`'s other threads may have made room
        // since): `aligned`, `ptr` suits `new`'s alignment; `newest`, it is the newest
        // allocation of the current block, which has no room.
        let aligned = aligned_for(ptr, old.align(), new.align());
        let mut newest = false;
        if aligned {
            match self.state.resize(ptr, old.size(), new.size()) {
                Resize::Done(start) => return Ok(start),
                Resize::NoRoom => newest = true,
                Resize::NotNewest => {}
            }
        }
        // Smaller growth moves to an ordinary successor, which the thread's shard provides
        // without the pool's lock (growing a block in place, or cutting a growable one,
        // takes it).
        if newest && !K::SHARED && new.size() >= self.pool.first_block_size() / 2 {
            // SAFETY: the caller's contract; `newest` means `ptr` is the newest allocation
            // of the current block, aligned for `new`, and the block has no room.
            if let Some(new_ptr) = unsafe { self.grow_newest(ptr, old, new) } {
                return Ok(new_ptr);
            }
        }
        let addr = ptr.addr().get();
        let mut large = false;
        if aligned {
            let grown = self.with_large(ptr, old.size(), |slow, _, node| {
                // SAFETY: `node` is a live node (invariant 3), reached exclusively.
                let n = unsafe { &mut *node.as_ptr() };
                let mut fits =
                    bump::fit(addr, block_end(n.block.ptr, n.block.size).addr().get(), new)
                        .is_some();
                if !fits {
                    // Grow the block itself over its free buddies: no copy, and a vector
                    // that keeps doubling keeps its block.
                    let need = (addr - n.block.ptr.addr().get()).checked_add(new.size());
                    let size = need.and_then(|need| self.pool.run_size_for(need));
                    if let Some(size) = size.filter(|&size| size > n.block.size) {
                        let more = size - n.block.size;
                        if slow.admit(more).is_ok() {
                            fits = self.pool.extend(n.block, size);
                            if fits {
                                n.block.size = size;
                                slow.taken();
                            } else {
                                slow.give_back(more);
                            }
                        }
                    }
                }
                // The block's provenance, not the caller's (as `Resize::Done`).
                fits.then(|| {
                    n.used = new.size();
                    n.block.ptr.with_addr(ptr.addr())
                })
            });
            if let Some(Some(start)) = grown {
                asan::unpoison(start, new.size());
                return Ok(start);
            }
            large = grown.is_some();
        }
        let growing = new.size() >= self.pool.first_block_size() / 2;
        let doubling = self.doubles_past_threshold(old, new);
        if K::SHARED && newest && !large && growing && !doubling && new.size() < GROWABLE_NEWEST {
            // A `SyncChunk`'s newest allocation goes on growing on the fast path in a
            // successor sized for it: growth in a dedicated block takes the slow path (and
            // its mutex) at every step, which would cost a vector grown by `reserve_exact(1)`
            // more than the copies it saves.
            if let Ok(new_ptr) = self.push_growable_successor(new) {
                // SAFETY: the caller's contract; `new_ptr` is a fresh allocation of `new`.
                unsafe { self.move_to(ptr, old, new_ptr, new) };
                return Ok(new_ptr);
            }
        }
        if new.size() >= self.pool.dedicated_threshold() {
            if newest && !K::SHARED && old.size() >= size_of::<LargeNode>() {
                // SAFETY: the caller's contract, and `newest`: `ptr` is the newest
                // allocation of the current block.
                return unsafe { self.move_newest_to_large(ptr, old, new) };
            }
            if let Ok(new_ptr) = self.alloc_large(new, os::page_size(), true) {
                // SAFETY: the caller's contract is `move_to`'s.
                unsafe { self.move_to(ptr, old, new_ptr, new) };
                return Ok(new_ptr);
            }
        }
        // SAFETY: the caller's contract is `relocate`'s.
        unsafe { self.relocate(ptr, old, new) }
    }

    /// Whether an allocation of the dedicated threshold or more doubles: a vector growing
    /// geometrically, which a [`SyncChunk`] moves to its dedicated block at once (where it
    /// grows in place in a few steps) rather than to another successor it would soon
    /// outgrow.
    fn doubles_past_threshold(&self, old: Layout, new: Layout) -> bool {
        old.size() >= self.pool.dedicated_threshold() && new.size() / 2 >= old.size()
    }

    /// A [`Chunk`]'s newest allocation outgrew its block: grows the block in place
    /// ([`ProcessChunk::grow_current`]), else moves the allocation to a successor sized
    /// for it and cut where it can grow in place in turn. `None`, with nothing changed,
    /// when the allocation is [`GROWABLE_NEWEST`] or more (it moves to a growable large
    /// block), or neither worked (the chunk's limit, the pool's, or the OS): `grow_slow`
    /// goes on as for a `SyncChunk`.
    ///
    /// # Safety
    ///
    /// As for [`ProcessChunk::grow`]; moreover `ptr` is the newest allocation of the
    /// current block, is aligned for `new`, and the block has no room for `new`.
    unsafe fn grow_newest(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Option<NonNull<u8>> {
        let current = self.state.current();
        // SAFETY: the current block has an initialised header (invariant 1).
        let size = unsafe { current.as_ref().size };
        // `ptr` lies in the current block (it is its newest allocation).
        let need = (ptr.addr().get() - current.addr().get()).checked_add(new.size())?;
        let grown = self.pool.run_size_for(bump::footprint(need))?;
        if current != self.first && self.grow_current(current, size, grown) {
            match self.state.resize(ptr, old.size(), new.size()) {
                Resize::Done(start) => return Some(start),
                Resize::NoRoom | Resize::NotNewest => {
                    unreachable!("perfloc bug: a block grown for an allocation cannot hold it")
                }
            }
        }
        if new.size() >= self.pool.dedicated_threshold() {
            // Big enough for a block of its own, which goes back to the pool when the data
            // moves on, where a regular block would keep the copy: `grow_slow` does it.
            return None;
        }
        let new_ptr = self.push_growable_successor(new).ok()?;
        // SAFETY: the caller's contract; `new_ptr` is a fresh allocation of `new`.
        unsafe { self.move_to(ptr, old, new_ptr, new) };
        Some(new_ptr)
    }

    /// Gives back the empty end of a [`Chunk`]'s current block that grew in place past
    /// `max_block_size` for an allocation that has now moved out: the block keeps its used
    /// part (in whole pages), and at least `max_block_size` bytes, for what comes next.
    pub(super) fn trim_current(&self) {
        debug_assert!(!K::SHARED);
        let current = self.state.current();
        // SAFETY: the current block has an initialised header (invariant 1).
        let size = unsafe { current.as_ref().size };
        let used = self.state.cursor_of(current) - current.addr().get();
        let Some(keep) = self.pool.run_size_for(used) else { return };
        let keep = keep.max(self.pool.max_block_size());
        if keep >= size {
            return;
        }
        self.state.slow(|slow| {
            // SAFETY: as in `grow_current`: a live block of this chunk, no reference to its
            // header alive, a `Chunk` is `!Sync`. The bytes from `keep` on are past the
            // cursor: nothing handed out lies there (invariant 2), and the state's end
            // follows at once.
            unsafe { (*current.as_ptr()).size = keep };
            self.state.grown(current);
            slow.give_back(size - keep);
        });
        self.pool.release(
            [Block { ptr: block_end(current.cast(), keep), size: size - keep }],
            NOT_CLOSING,
        );
    }

    /// Grows `current`, the current block of `size` bytes, in place to `grown` bytes (a
    /// larger power of two) over its free buddies, within the chunk's limit; false, with
    /// nothing changed, when it cannot. Only for a [`Chunk`] (see [`BlockHeader::size`]).
    fn grow_current(&self, current: NonNull<BlockHeader>, size: usize, grown: usize) -> bool {
        debug_assert!(!K::SHARED && grown > size);
        let more = grown - size;
        self.state.slow(|slow| {
            if slow.admit(more).is_err() {
                return false;
            }
            if !self.pool.extend(Block { ptr: current.cast(), size }, grown) {
                slow.give_back(more);
                return false;
            }
            slow.taken();
            // SAFETY: `current` is a live block of this chunk with an initialised header
            // (invariant 1), and the pool has just lent the chunk its bytes up to `grown`.
            // No reference to the header is alive (they are all temporaries), and a `Chunk`
            // is `!Sync`: nothing else reads `size` now. The state's end follows at once
            // (invariant 2).
            unsafe { (*current.as_ptr()).size = grown };
            self.state.grown(current);
            // The new bytes are not handed out yet (invariant 2).
            asan::poison(block_end(current.cast(), size), more);
            true
        })
    }

    /// Shrinks in place when the alignment allows, else moves; see the `Allocator` impl.
    ///
    /// Shrinking to size zero gives the memory back (as `dealloc` would) and returns a
    /// dangling pointer: a zero-size allocation owns nothing. A large allocation that now
    /// fits in the room left in the current block moves there, and its block goes back to
    /// the pool.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk, and
    /// `new.size() <= old.size()`.
    pub(crate) unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        if new.size() == 0 {
            // SAFETY: the caller gives up the allocation, which becomes a zero-size one.
            unsafe { self.dealloc(ptr, old) };
            return Ok(dangling(new.align()));
        }
        let aligned = bump::padding(ptr.addr().get(), new.align()) == 0;
        if aligned {
            if let Resize::Done(start) = self.state.resize(ptr, old.size(), new.size()) {
                return Ok(start);
            }
        }
        let large = self.with_large(ptr, old.size(), |_, _, node| {
            if aligned && !self.state.has_room(new) {
                // SAFETY: `node` is a live node (invariant 3), reached exclusively.
                unsafe { (*node.as_ptr()).used = new.size() };
                true
            } else {
                false
            }
        });
        match large {
            Some(true) => return Ok(ptr),
            None if aligned => {
                // Shrunk where it lies: its end stays in the block, freed.
                self.state.count_freed(bump::footprint(old.size()) - bump::footprint(new.size()));
                return Ok(ptr);
            }
            _ => {}
        }
        // SAFETY: the caller's contract is `relocate`'s.
        unsafe { self.relocate(ptr, old, new) }
    }

    /// Moves the allocation at `ptr` to a fresh one of `new`, copying the bytes both hold,
    /// and deallocates the old one.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk.
    pub(super) unsafe fn relocate(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<u8>, AllocError> {
        let new_ptr = self.try_alloc_layout(new)?;
        // SAFETY: the caller's contract; `new_ptr` is a fresh allocation of `new`.
        unsafe { self.move_to(ptr, old, new_ptr, new) };
        Ok(new_ptr)
    }

    /// Copies the bytes both allocations hold from `ptr` to `new_ptr`, then deallocates
    /// `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must denote a live allocation of `old` made by this chunk, and `new_ptr` a
    /// fresh one of `new`.
    unsafe fn move_to(&self, ptr: NonNull<u8>, old: Layout, new_ptr: NonNull<u8>, new: Layout) {
        // SAFETY: the old allocation is live (caller) and the new one is fresh, so they are
        // distinct; each holds at least the bytes copied.
        unsafe {
            ptr::copy_nonoverlapping(ptr.as_ptr(), new_ptr.as_ptr(), old.size().min(new.size()));
            self.dealloc(ptr, old);
        }
    }
}
