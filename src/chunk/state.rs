//! The two bump states a process chunk can have: [`LocalBump`] (`Cell`s, for [`Chunk`])
//! and [`SharedBump`] (atomics and a mutex, for [`SyncChunk`]).
//!
//! Everything else (the block chain, successor doubling, large blocks, reset, drop, direct
//! allocation, the `Allocator` impl) is written once in [`super`], over the sealed
//! [`BumpState`] trait. A state owns exactly what differs between the kinds:
//!
//! - where the bump pointer of the current block lives and how it moves (a `Cell` in the
//!   chunk, or an atomic cursor in the current block's header moved by compare-and-swap);
//! - how the slow-path state ([`Slow`]: the list of large blocks and the next successor's
//!   size) is reached exclusively (a `Cell` copied in and out, or a mutex).
//!
//! [`Chunk`]: crate::Chunk
//! [`SyncChunk`]: crate::SyncChunk

use core::alloc::Layout;
use core::cell::{Cell, UnsafeCell};
use core::num::{NonZero, NonZeroU64};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use allocator_api2::alloc::AllocError;

use super::{BlockHeader, LargeNode, block_end, data_start};
use crate::{asan, bump};

/// The slow-path state of a chunk, reached through [`StateOps::slow`].
#[derive(Clone, Copy)]
pub(crate) struct Slow {
    /// Large blocks, newest first (chunk invariant 3).
    pub(crate) large: Option<NonNull<LargeNode>>,
    /// Size of the next successor block.
    pub(crate) next_size: usize,
    /// Large blocks made so far: the number of the newest one.
    pub(crate) large_made: usize,
    /// Bytes of the blocks the chunk holds, regular and large (chunk invariant 5).
    pub(crate) held: usize,
    /// The most `held` has been.
    pub(crate) peak: usize,
    /// Most bytes `held` may reach; `usize::MAX` for no limit.
    pub(crate) limit: usize,
    /// Why the last block the chunk wanted was refused, for the panic messages, and
    /// whether any was since the chunk was made or last reset.
    pub(crate) refusal: RefusalWord,
    /// The chunk's identity for its checkpoints (`checkpoint::new_identity`), taken at its
    /// first checkpoint since it was made or last reset: a reset drops it, so no checkpoint
    /// from before the reset matches.
    pub(crate) identity: Option<NonZeroU64>,
}

/// Why a chunk could not take a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A block of this size would take the chunk past its limit.
    ChunkLimit(usize),
    /// The pool refused a block of this size (its limit, or the OS).
    Pool(usize),
}

/// The last refusal (an `Option<Refusal>`) and whether there was any since the chunk was
/// made or reset, in one word: the slow-path state, which making a chunk writes and every
/// move of a chunk copies, stays a word smaller. The top bit says whose limit it was, the
/// next one is the sticky "refused", the rest the block's size (sizes stay below
/// `MAX_SIZE`; one at it reads one byte less, which only a message shows).
#[derive(Clone, Copy)]
pub(crate) struct RefusalWord(usize);

impl RefusalWord {
    /// Never refused.
    pub(crate) const NONE: RefusalWord = RefusalWord(0);
    /// Set for [`Refusal::ChunkLimit`].
    const CHUNK_LIMIT: usize = 1 << (usize::BITS - 1);
    /// Set once any block was refused; kept by [`RefusalWord::forget_last`].
    const REFUSED: usize = 1 << (usize::BITS - 2);
    /// The block's size.
    const SIZE: usize = Self::REFUSED - 1;

    /// The last refusal, if the chunk has not forgotten it.
    pub(crate) fn get(self) -> Option<Refusal> {
        let size = self.0 & Self::SIZE;
        match self.0 & Self::CHUNK_LIMIT {
            _ if size == 0 => None,
            0 => Some(Refusal::Pool(size)),
            _ => Some(Refusal::ChunkLimit(size)),
        }
    }

    /// Whether any block was refused since the chunk was made or reset.
    pub(crate) fn ever(self) -> bool {
        self.0 & Self::REFUSED != 0
    }

    /// A refusal with no block size: no block can hold the request.
    pub(crate) fn no_block(self) -> RefusalWord {
        RefusalWord(Self::REFUSED)
    }

    /// Forgets the last refusal (a rewind), remembering that there was one.
    pub(crate) fn forget_last(self) -> RefusalWord {
        RefusalWord(self.0 & Self::REFUSED)
    }
}

impl From<Refusal> for RefusalWord {
    fn from(refusal: Refusal) -> RefusalWord {
        let (size, kind) = match refusal {
            Refusal::ChunkLimit(size) => (size, Self::CHUNK_LIMIT),
            Refusal::Pool(size) => (size, 0),
        };
        RefusalWord(size.min(Self::SIZE) | kind | Self::REFUSED)
    }
}

impl Slow {
    /// A fresh chunk's state: it holds one block of `held` bytes.
    pub(crate) fn new(next_size: usize, held: usize, limit: usize) -> Self {
        Slow {
            large: None,
            next_size,
            large_made: 0,
            held,
            peak: held,
            limit,
            refusal: RefusalWord::NONE,
            identity: None,
        }
    }

    /// Bytes the chunk may still take before its limit.
    pub(crate) fn room(&self) -> usize {
        self.limit.saturating_sub(self.held)
    }

    /// Counts a block of `size` bytes against the limit before it is taken; refused (and
    /// recorded) when it would go past. Then [`Slow::taken`] if it comes, or
    /// [`Slow::give_back`] if not.
    pub(crate) fn admit(&mut self, size: usize) -> Result<(), AllocError> {
        if size > self.room() {
            self.refusal = Refusal::ChunkLimit(size).into();
            return Err(AllocError);
        }
        self.held += size;
        Ok(())
    }

    /// The blocks admitted came: the peak counts them.
    pub(crate) fn taken(&mut self) {
        self.peak = self.peak.max(self.held);
    }

    /// A block of `size` bytes went back to the pool (or an admitted one never came).
    pub(crate) fn give_back(&mut self, size: usize) {
        self.held -= size;
    }
}

/// What [`StateOps::resize`] did.
pub(crate) enum Resize {
    /// The allocation was the newest of the current block and now has the new size; the
    /// pointer to it, at the same address, carries the block's provenance rather than the
    /// caller's (which a reference may have narrowed to the old size).
    Done(NonNull<u8>),
    /// It is the newest, but the current block has no room for the new size.
    NoRoom,
    /// It is not the newest allocation of the current block: nothing changed.
    NotNewest,
}

mod sealed {
    pub trait Sealed {}
}

/// The bump state of a process chunk: [`LocalBump`] for [`Chunk`](crate::Chunk),
/// [`SharedBump`] for [`SyncChunk`](crate::SyncChunk). Sealed: the crate's two kinds are
/// the only ones.
///
/// ```
/// fn blocks<K: perfloc::BumpState>(chunk: &perfloc::ProcessChunk<'_, K>) -> usize {
///     chunk.stats().blocks
/// }
/// assert_eq!(blocks(&perfloc::chunk()), 1);
/// assert_eq!(blocks(&perfloc::sync_chunk()), 1);
/// ```
#[allow(private_bounds, private_interfaces)]
pub trait BumpState: sealed::Sealed + Sized + StateOps {}

/// The operations of a bump state (crate-private: the trait is sealed).
///
/// Invariants every implementation keeps (the chunk's invariants 1 and 2 in its terms):
/// the current block is a live regular block of the chunk with an initialised header; its
/// cursor `c` satisfies `data_start(current) <= c <= block_end(current)`, is a multiple of
/// `bump::MIN_ALIGN`, and bytes in `c..end` of the current block are not handed out.
pub(crate) trait StateOps {
    /// True for the kind shared between threads: its slow path must re-check the current
    /// block after taking its lock, as another thread may have installed a successor.
    const SHARED: bool;
    /// The type's public name, for `Debug`.
    const NAME: &'static str;
    /// True when `deallocate` should be one out-of-line call rather than the rewind
    /// inline with a call for large blocks behind it. On an unwind path, the caller drops
    /// a `Vec` by an out-of-line `drop_in_place`, which takes its address; LLVM inlines
    /// that drop at such a cold site only if its cost is below 45. With the rewind inline
    /// and the call behind it, a `Vec<u8, &Chunk>`'s drop costs 75 (`-Cremark=inline`);
    /// with only the call, 20. When the drop stays out of line, the `Vec` lives in memory
    /// in the whole function: a copy loop then stores its length at every element. With
    /// the call as the drop's only content, it is inlined and the `Vec` stays in
    /// registers.
    const DEALLOC_OUT_OF_LINE: bool;

    /// A state whose current block is `header` (fresh, nothing handed out), with `slow`
    /// as its slow-path state.
    fn new(header: NonNull<BlockHeader>, slow: Slow) -> Self;

    /// Makes `header`, a block of the chain whose `next` is now null, the current block
    /// again with its cursor at `cursor` (`data_start(header) <= cursor <= end`, a multiple
    /// of `bump::MIN_ALIGN`, derived from `header`): a rewind to a checkpoint, after the
    /// slow-path state was brought back through [`StateOps::slow_mut`].
    fn restore(&mut self, header: NonNull<BlockHeader>, cursor: NonNull<u8>);

    /// The slow-path state, for a chunk borrowed exclusively.
    fn slow_mut(&mut self) -> &mut Slow;

    /// The current block.
    fn current(&self) -> NonNull<BlockHeader>;

    /// The fast path: bump `layout` in the current block, or `None` when it has no room.
    fn bump(&self, layout: Layout) -> Option<NonNull<u8>>;

    /// True when `layout` would fit in the room left in the current block now.
    fn has_room(&self, layout: Layout) -> bool;

    /// The cursor (address of the next free byte) of `header`, a block of the chain.
    fn cursor_of(&self, header: NonNull<BlockHeader>) -> usize;

    /// The highest the current block's cursor has been since the block became current
    /// (a rewind takes it back; this remembers how far it went), for what the pool learns
    /// of a first block's size. Not remembered: a shrink of the newest allocation (rare;
    /// the gate's `reserve_exact(1)` loop paid 2 instructions a step for it) and, in a
    /// `SyncChunk` freed by several threads at once, a race of two rewinds.
    fn reach(&self) -> usize;

    /// If the allocation of `size` bytes at `ptr` is the newest of the current block, gives
    /// its bytes back and returns true.
    fn rewind(&self, ptr: NonNull<u8>, size: usize) -> bool;

    /// Resizes the newest allocation of the current block in place from `old` to `new`
    /// bytes, if the allocation at `ptr` is that one and the block has room. A zero-size
    /// allocation whose address is the bump pointer (where one of a small alignment is
    /// made) counts as the newest: growing it in place hands out the room there, with
    /// nothing to keep, as a move would.
    fn resize(&self, ptr: NonNull<u8>, old: usize, new: usize) -> Resize;

    /// False only when the chunk certainly has no large block.
    fn may_have_large(&self) -> bool;

    /// Counts `bytes` handed out, then freed where they stay (not the newest allocation, so
    /// not rewound): what [`ChunkStats::freed_bytes`](crate::ChunkStats::freed_bytes) says.
    fn count_freed(&self, bytes: usize);

    /// The bytes counted by [`StateOps::count_freed`] since the state was made.
    fn freed(&self) -> usize;

    /// Runs `f` with exclusive access to the slow-path state. `f` must not call `slow`
    /// again, directly or through a chunk method other than [`StateOps::bump`],
    /// [`StateOps::has_room`], [`StateOps::install`] and [`StateOps::grown`]; in particular
    /// it must not allocate in the chunk (it may bump with [`StateOps::bump`] and take
    /// blocks from the pool).
    fn slow<R>(&self, f: impl FnOnce(&mut Slow) -> R) -> R;

    /// Makes `new` (a fresh block whose header's `next` is null, already linked from `old`)
    /// the current block, with its cursor at `cursor` (past the allocation that needed it).
    /// Called only from within [`StateOps::slow`], with `old` the current block.
    fn install(&self, old: NonNull<BlockHeader>, new: NonNull<BlockHeader>, cursor: NonNull<u8>);

    /// The current block `header` has just grown in place (its header's `size` is larger
    /// now): the end of the room moves with it. Called only from within
    /// [`StateOps::slow`], and only for a kind whose blocks may grow (`!SHARED`: a
    /// `SyncChunk`'s threads read `size` without the lock, so its blocks never grow).
    fn grown(&self, header: NonNull<BlockHeader>);
}

/// The bump state of a [`Chunk`](crate::Chunk): plain `Cell`s, so the chunk is `!Sync`.
///
/// ```
/// let chunk: perfloc::ProcessChunk<'_, perfloc::LocalBump> = perfloc::chunk();
/// assert_eq!(*chunk.alloc(7u8), 7);
/// ```
pub struct LocalBump {
    /// The bump pointer: the next free byte of the current block (see [`StateOps`]); the
    /// current block's header `cursor` is stale until the block stops being current.
    ptr: Cell<NonNull<u8>>,
    /// End of the current block.
    end: Cell<NonNull<u8>>,
    /// The newest regular block; its header's `next` is null.
    current: Cell<NonNull<BlockHeader>>,
    /// Reached only through [`StateOps::slow`] (one `&mut` at a time: `slow` is never
    /// re-entered, see its contract, and a `Chunk` is `!Sync`), [`StateOps::slow_mut`]
    /// and `may_have_large` (a read outside either).
    slow: UnsafeCell<Slow>,
    /// Bytes freed where they stay ([`StateOps::count_freed`]).
    freed: Cell<usize>,
    /// The bump pointer's highest address before a rewind moved it back, in the current
    /// block; 0 for none ([`StateOps::reach`]).
    high: Cell<usize>,
}

impl sealed::Sealed for LocalBump {}
impl BumpState for LocalBump {}

impl StateOps for LocalBump {
    const SHARED: bool = false;
    const NAME: &'static str = "Chunk";
    // With unwinding, a small request 101,548 -> 98,275 instructions and a scope cycle's
    // copy no longer stores the `Vec`'s length at every byte (docs/benchmarks.md). With
    // `panic = "abort"` there is no unwind path to pin a `Vec`, and the calls would only
    // cost (a small request 85,544 -> 93,699).
    const DEALLOC_OUT_OF_LINE: bool = cfg!(panic = "unwind");

    fn new(header: NonNull<BlockHeader>, slow: Slow) -> Self {
        // SAFETY: a fresh header is initialised (caller).
        let size = unsafe { header.as_ref().size };
        LocalBump {
            ptr: Cell::new(data_start(header)),
            end: Cell::new(block_end(header.cast(), size)),
            current: Cell::new(header),
            slow: UnsafeCell::new(slow),
            freed: Cell::new(0),
            high: Cell::new(0),
        }
    }

    #[inline]
    fn restore(&mut self, header: NonNull<BlockHeader>, cursor: NonNull<u8>) {
        // SAFETY: a chain block has an initialised header (caller).
        let size = unsafe { header.as_ref().size };
        let high = if header == self.current.get() { self.reach() } else { 0 };
        self.high.set(high);
        self.ptr.set(cursor);
        self.end.set(block_end(header.cast(), size));
        self.current.set(header);
    }

    fn slow_mut(&mut self) -> &mut Slow {
        self.slow.get_mut()
    }

    #[inline(always)]
    fn current(&self) -> NonNull<BlockHeader> {
        self.current.get()
    }

    #[inline(always)]
    fn bump(&self, layout: Layout) -> Option<NonNull<u8>> {
        let ptr = self.ptr.get();
        let addr = ptr.addr().get();
        // SAFETY: the bump pointer is a multiple of `MIN_ALIGN` (see `StateOps`). Telling
        // the compiler lets it drop the rounding for alignments up to a word.
        unsafe { core::hint::assert_unchecked(addr % bump::MIN_ALIGN == 0) };
        let (start, new) = bump::fit(addr, self.end.get().addr().get(), layout)?;
        // SAFETY: `fit` checked `ptr <= start <= new <= end`, so both pointers stay within
        // the current block and keep its provenance.
        let (start, new) = unsafe { (ptr.add(start - addr), ptr.add(new - addr)) };
        self.ptr.set(new);
        asan::unpoison(start, new.addr().get() - start.addr().get());
        Some(start)
    }

    fn has_room(&self, layout: Layout) -> bool {
        bump::fit(self.ptr.get().addr().get(), self.end.get().addr().get(), layout).is_some()
    }

    fn cursor_of(&self, header: NonNull<BlockHeader>) -> usize {
        if header == self.current.get() {
            self.ptr.get().addr().get()
        } else {
            // SAFETY: a chain block has an initialised header (chunk invariant 1).
            unsafe { header.as_ref().cursor.load(Ordering::Relaxed) }
        }
    }

    #[inline(always)]
    fn reach(&self) -> usize {
        self.high.get().max(self.ptr.get().addr().get())
    }

    #[inline(always)]
    fn rewind(&self, ptr: NonNull<u8>, size: usize) -> bool {
        // No allocation from another block can end at the bump pointer: it is strictly past
        // the start of the current block (after its header), and blocks do not overlap.
        let cursor = self.ptr.get();
        let newest = size != 0 && ptr.addr().get() + bump::footprint(size) == cursor.addr().get();
        if newest {
            if cursor.addr().get() > self.high.get() {
                self.high.set(cursor.addr().get());
            }
            // The block's provenance, not the caller's: a pointer the caller narrowed (from
            // a `&mut [u8]` of the allocation, say) must not become the bump pointer.
            self.ptr.set(cursor.with_addr(ptr.addr()));
            asan::poison(ptr, bump::footprint(size));
        }
        newest
    }

    #[inline(always)]
    fn resize(&self, ptr: NonNull<u8>, old: usize, new: usize) -> Resize {
        let cursor = self.ptr.get();
        if ptr.addr().get() + bump::footprint(old) != cursor.addr().get() {
            return Resize::NotNewest;
        }
        // `ptr` with the block's provenance (the bump pointer's), not the caller's, as in
        // `rewind`; computed from the bump pointer, which is `footprint(old)` past it.
        // SAFETY: the allocation lies in the current block, before the bump pointer.
        let start = unsafe { cursor.sub(bump::footprint(old)) };
        // No overflow: `start < end < bump::MAX_ADDR = 2^(BITS-2)` (chunk invariant 2) and
        // `footprint(new) <= 2^(BITS-1)`.
        if start.addr().get() + bump::footprint(new) > self.end.get().addr().get() {
            return Resize::NoRoom;
        }
        // SAFETY: `start..new_ptr` lies in the current block (checked just above), and
        // `new_ptr` is a multiple of `MIN_ALIGN` as `start` is.
        let new_ptr = unsafe { start.add(bump::footprint(new)) };
        if new >= old {
            asan::unpoison(start, bump::footprint(new));
        } else {
            asan::poison(new_ptr, bump::footprint(old) - bump::footprint(new));
        }
        self.ptr.set(new_ptr);
        Resize::Done(start)
    }

    #[inline(always)]
    fn may_have_large(&self) -> bool {
        // SAFETY: no `&mut` to the slow state lives outside `slow`/`slow_mut`, and neither
        // runs now: this thread is here, and a `Chunk` is `!Sync`.
        unsafe { (*self.slow.get()).large.is_some() }
    }

    #[inline(always)]
    fn count_freed(&self, bytes: usize) {
        self.freed.set(self.freed.get() + bytes);
    }

    fn freed(&self) -> usize {
        self.freed.get()
    }

    fn slow<R>(&self, f: impl FnOnce(&mut Slow) -> R) -> R {
        // SAFETY: the only `&mut` to the slow state while `f` runs: `slow` is not re-entered
        // (its contract), `slow_mut` needs `&mut self`, and a `Chunk` is `!Sync`.
        f(unsafe { &mut *self.slow.get() })
    }

    fn install(&self, old: NonNull<BlockHeader>, new: NonNull<BlockHeader>, cursor: NonNull<u8>) {
        // SAFETY: `old` and `new` are chain blocks with initialised headers (chunk
        // invariant 1); the header's fields are only accessed through shared references.
        let (old, size) = unsafe { (old.as_ref(), new.as_ref().size) };
        old.cursor.store(self.ptr.get().addr().get(), Ordering::Relaxed);
        self.high.set(0);
        self.current.set(new);
        self.ptr.set(cursor);
        self.end.set(block_end(new.cast(), size));
    }

    fn grown(&self, header: NonNull<BlockHeader>) {
        debug_assert!(header == self.current.get(), "only the current block grows");
        // SAFETY: the current block has an initialised header (chunk invariant 1), whose
        // `size` the caller has just made the block's new size.
        let size = unsafe { header.as_ref().size };
        self.end.set(block_end(header.cast(), size));
    }
}

/// The bump state of a [`SyncChunk`](crate::SyncChunk): each block's cursor is an atomic
/// in its header, moved by compare-and-swap; the current block is an `AtomicPtr`; the slow
/// path (successors, large blocks) runs under a mutex.
///
/// Threads that loaded an older current block just before a successor was installed
/// allocate in that block, legitimately: its memory stays valid until the chunk drops.
///
/// ```
/// let chunk: perfloc::ProcessChunk<'_, perfloc::SharedBump> = perfloc::sync_chunk();
/// std::thread::scope(|s| {
///     s.spawn(|| assert_eq!(*chunk.alloc(7u8), 7));
///     s.spawn(|| assert_eq!(*chunk.alloc(8u8), 8));
/// });
/// ```
pub struct SharedBump {
    /// The newest regular block: a live chain block, never null; its header's `next` is
    /// null. Stored (`Release`) only under `slow`'s lock, after the header is initialised.
    current: AtomicPtr<BlockHeader>,
    /// `slow.large.is_some()`, written under the lock, read without it on `deallocate`.
    has_large: AtomicBool,
    /// The slow-path state; also serialises successor installation.
    slow: Mutex<Slow>,
    /// Bytes freed where they stay ([`StateOps::count_freed`]).
    freed: AtomicUsize,
    /// The current block's cursor's highest address before a rewind moved it back; 0 for
    /// none ([`StateOps::reach`]). Plain loads and stores: a figure to learn
    /// from, not worth a locked read-modify-write.
    high: AtomicUsize,
}

impl SharedBump {
    /// Remembers that the current block's cursor was at `cursor` before it moved back.
    #[inline(always)]
    fn note_high(&self, cursor: usize) {
        if cursor > self.high.load(Ordering::Relaxed) {
            self.high.store(cursor, Ordering::Relaxed);
        }
    }
}

impl sealed::Sealed for SharedBump {}
impl BumpState for SharedBump {}

impl SharedBump {
    /// The current block and its end.
    #[inline(always)]
    fn current_block(&self) -> (&BlockHeader, NonNull<BlockHeader>, usize) {
        let ptr = self.current.load(Ordering::Acquire);
        // SAFETY: `current` is never null (field invariant).
        let header = unsafe { NonNull::new_unchecked(ptr) };
        // SAFETY: a live chain block whose header was initialised before it was published
        // with `Release` (field invariant; acquired above). Its memory stays valid while the
        // chunk lives, which `&self` guarantees.
        let h = unsafe { header.as_ref() };
        (h, header, header.addr().get() + h.size)
    }
}

impl StateOps for SharedBump {
    const SHARED: bool = true;
    const NAME: &'static str = "SyncChunk";
    // Out of line, a small request takes more instructions (88,797 -> 100,372).
    const DEALLOC_OUT_OF_LINE: bool = false;

    fn new(header: NonNull<BlockHeader>, slow: Slow) -> Self {
        SharedBump {
            current: AtomicPtr::new(header.as_ptr()),
            has_large: AtomicBool::new(slow.large.is_some()),
            slow: Mutex::new(slow),
            freed: AtomicUsize::new(0),
            high: AtomicUsize::new(0),
        }
    }

    fn restore(&mut self, header: NonNull<BlockHeader>, cursor: NonNull<u8>) {
        // No read through the old current block: a rewind gives blocks back before it
        // restores, so it may be the pool's again. The same block is `header`, alive.
        let high = if *self.current.get_mut() == header.as_ptr() {
            // SAFETY: a chain block has an initialised header (caller).
            let reached = unsafe { header.as_ref().cursor.load(Ordering::Relaxed) };
            (*self.high.get_mut()).max(reached)
        } else {
            0
        };
        *self.high.get_mut() = high;
        // SAFETY: a chain block has an initialised header (caller); `&mut self` means no
        // other thread is allocating.
        unsafe { header.as_ref().cursor.store(cursor.addr().get(), Ordering::Relaxed) };
        *self.current.get_mut() = header.as_ptr();
        *self.has_large.get_mut() = self.slow_mut().large.is_some();
    }

    fn slow_mut(&mut self) -> &mut Slow {
        self.slow.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    #[inline(always)]
    fn current(&self) -> NonNull<BlockHeader> {
        self.current_block().1
    }

    #[inline(always)]
    fn bump(&self, layout: Layout) -> Option<NonNull<u8>> {
        let (h, header, end) = self.current_block();
        let mut cursor = h.cursor.load(Ordering::Relaxed);
        loop {
            let (start, new) = bump::fit(cursor, end, layout)?;
            // `Acquire` pairs with the `Release` of a thread that gave these bytes back
            // (`rewind`/`resize`), so its last writes to them happen before ours.
            match h.cursor.compare_exchange_weak(cursor, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    // `start >= data_start(header) > 0`, inside the block: the header's
                    // provenance covers it.
                    let start = header.cast::<u8>().with_addr(NonZero::new(start)?);
                    asan::unpoison(start, new - start.addr().get());
                    return Some(start);
                }
                Err(seen) => cursor = seen,
            }
        }
    }

    fn has_room(&self, layout: Layout) -> bool {
        let (h, _, end) = self.current_block();
        bump::fit(h.cursor.load(Ordering::Relaxed), end, layout).is_some()
    }

    fn cursor_of(&self, header: NonNull<BlockHeader>) -> usize {
        // SAFETY: a chain block has an initialised header (chunk invariant 1).
        unsafe { header.as_ref().cursor.load(Ordering::Relaxed) }
    }

    #[inline(always)]
    fn reach(&self) -> usize {
        let (h, _, _) = self.current_block();
        self.high.load(Ordering::Relaxed).max(h.cursor.load(Ordering::Relaxed))
    }

    #[inline(always)]
    fn rewind(&self, ptr: NonNull<u8>, size: usize) -> bool {
        if size == 0 {
            return false;
        }
        let (h, _, _) = self.current_block();
        let addr = ptr.addr().get();
        let end = addr + bump::footprint(size);
        // As for `LocalBump`: only the newest allocation of this block ends at its cursor.
        // A plain load first: most deallocations are not of the newest allocation, and a
        // failed compare-and-swap costs as much as one that lands. The bytes are not
        // poisoned: another thread may take them the moment the CAS lands.
        let newest = h.cursor.load(Ordering::Relaxed) == end
            && h.cursor.compare_exchange(end, addr, Ordering::Release, Ordering::Relaxed).is_ok();
        if newest {
            self.note_high(end);
        }
        newest
    }

    #[inline(always)]
    fn resize(&self, ptr: NonNull<u8>, old: usize, new: usize) -> Resize {
        let (h, header, end) = self.current_block();
        let addr = ptr.addr().get();
        let old_end = addr + bump::footprint(old);
        // A plain load first, as in `rewind`.
        if h.cursor.load(Ordering::Relaxed) != old_end {
            return Resize::NotNewest;
        }
        // No overflow: `addr <= cursor <= end < bump::MAX_ADDR = 2^(BITS-2)` (chunk
        // invariant 2) and `footprint(new) <= 2^(BITS-1)`.
        let new_end = addr + bump::footprint(new);
        if new_end > end {
            return Resize::NoRoom;
        }
        match h.cursor.compare_exchange(old_end, new_end, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => {
                if new > old {
                    asan::unpoison(ptr, new_end - addr);
                }
                // The block's provenance (its header's), not the caller's.
                Resize::Done(header.cast::<u8>().with_addr(ptr.addr()))
            }
            Err(_) => Resize::NotNewest,
        }
    }

    #[inline(always)]
    fn may_have_large(&self) -> bool {
        self.has_large.load(Ordering::Acquire)
    }

    #[inline(always)]
    fn count_freed(&self, bytes: usize) {
        // A figure for reports, not worth a locked read-modify-write on `deallocate`: a
        // plain load and store (no ordering with anything else). Two threads freeing at
        // once may lose one count; a `SyncChunk`'s stats are a snapshot anyway.
        let freed = self.freed.load(Ordering::Relaxed);
        self.freed.store(freed + bytes, Ordering::Relaxed);
    }

    fn freed(&self) -> usize {
        self.freed.load(Ordering::Relaxed)
    }

    fn slow<R>(&self, f: impl FnOnce(&mut Slow) -> R) -> R {
        // `Slow` is consistent between statements that could panic: a poisoned lock leaves
        // nothing half-done.
        let mut slow = self.slow.lock().unwrap_or_else(PoisonError::into_inner);
        let result = f(&mut slow);
        self.has_large.store(slow.large.is_some(), Ordering::Release);
        result
    }

    fn install(&self, _old: NonNull<BlockHeader>, new: NonNull<BlockHeader>, cursor: NonNull<u8>) {
        // SAFETY: `new` is a fresh chain block with an initialised header, not yet visible
        // to other threads.
        let h = unsafe { new.as_ref() };
        h.cursor.store(cursor.addr().get(), Ordering::Relaxed);
        self.high.store(0, Ordering::Relaxed);
        // Publishes the header (and the reservation in it) to threads that load `current`.
        self.current.store(new.as_ptr(), Ordering::Release);
    }

    fn grown(&self, _header: NonNull<BlockHeader>) {
        unreachable!("perfloc bug: a SyncChunk's blocks never grow in place");
    }
}
