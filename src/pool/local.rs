//! Local slots: each thread's own cache of first blocks, one slot per pool it uses, so
//! that a scope made and dropped in steady state takes no lock and makes no atomic
//! read-modify-write.
//!
//! A shard ([`super::cache`]) is shared by the threads mapped to it, so it needs a lock:
//! two atomic read-modify-writes to take a block and two more to give it back, about as
//! much as the rest of a small scope. The commonest blocks (a chunk's first block) get a
//! cache no other thread touches while its owner lives:
//!
//! - **The slot** ([`LocalSlot`]) holds up to [`LOCAL_BLOCKS`] free first blocks and the
//!   owner's count of chunks made minus dropped. The thread finds it in a thread-local list
//!   keyed by the pool's number ([`Pool::id`], unique for the process's life, so a slot
//!   never outlives its meaning: a dropped pool's number never comes back). The pool keeps
//!   the same slots in a registry (`Arc`s), for its stats and to take blocks back.
//! - **Owner-only fields.** While the owner thread lives, only it reads and writes the
//!   slot's blocks; it publishes the chunk count and the number of blocks held with plain
//!   atomic stores (`load` then `store`, no read-modify-write), which others only read.
//! - **Taking blocks back.** A trim or a shortage ([`Pool::reclaim_locals`]) empties the
//!   calling thread's own slot, takes the blocks of slots whose owner has exited, and
//!   raises the pool's flush epoch; every other owner hands its blocks back at its next
//!   scope, when it sees the epoch moved (a plain load on its path). An idle live thread
//!   keeps at most `LOCAL_BLOCKS` first blocks until then.
//! - **The first block size** is the slot's own. It is the pool's `first_block_size`
//!   unless the pool learns one ([`PoolBuilder::learn_first_block`]): then the slot
//!   measures one chunk in [`SAMPLE_EVERY`] as it drops, and every [`LEARN_WINDOW`]
//!   measures takes the largest, in whole pages ([`LocalSlot::end_window`]). The blocks it
//!   holds are always of its current size; when the size changes, those of the old size go
//!   back to the pool. A chunk that drops on another thread, or after the size changed,
//!   gives its first block to the shards or the top chunks.
//! - **Thread exit** marks the thread's slots `gone` under their mutex; the pool takes their
//!   blocks at its next reclaim, and their chunk counts stay in its figures meanwhile.
//! - **Pool drop** marks its slots `dead`: owners drop them from their lists when they next
//!   register a slot. Their blocks were in the pool's top chunks, now unmapped; nothing
//!   touches them again, as no pool has that number any more.
//!
//! Under loom the local slots are off (loom does not model `std`'s thread-locals and
//! atomics used here): every block goes through the shards, which loom checks.
//!
//! [`PoolBuilder::learn_first_block`]: crate::PoolBuilder::learn_first_block
#![cfg_attr(loom, allow(dead_code))]

use core::cell::{Cell, RefCell, UnsafeCell};
use core::mem::MaybeUninit;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Block, Pool};

/// First blocks a thread keeps in its slot of one pool.
pub(crate) const LOCAL_BLOCKS: usize = 2;

/// A slot learns from one chunk in this many ([`LocalSlot::tick`]).
pub(crate) const SAMPLE_EVERY: u32 = 4;

/// Chunks a slot learns from between two choices of its first block size
/// ([`LocalSlot::end_window`]): a window spans `LEARN_WINDOW * SAMPLE_EVERY` chunks.
pub(crate) const LEARN_WINDOW: u32 = 16;

/// What a slot learns from the chunks dropped through it: the first block size that would
/// have held them. Owner-only.
struct Learning {
    /// The largest need seen in this window up to `most` (`0` for none).
    window_most: usize,
    /// Chunks still to drop before the next one is learned from.
    until_sample: u32,
    /// Chunks still to learn from before the window ends.
    left: u32,
    /// Needs above this are large chunks' and are not learned from; 0 when the pool does
    /// not learn (every window then ends with `configured`).
    most: usize,
    /// The pool's configured first block size, for a window of large chunks only.
    configured: usize,
}

/// The blocks a slot held when it learned a new size ([`LocalSlot::end_window`]): on the
/// stack, as nothing on a chunk's way back allocates.
pub(crate) type Stale = [Option<Block>; LOCAL_BLOCKS];

/// One thread's slot in one pool; see the module docs.
pub(crate) struct LocalSlot {
    /// Free first blocks: `blocks[..len]` are initialised. Owner-only while `gone` is
    /// false; after, the pool's, under `gone`'s lock.
    blocks: UnsafeCell<[MaybeUninit<NonNull<u8>>; LOCAL_BLOCKS]>,
    /// How many blocks are held, at most `LOCAL_BLOCKS`. Written by the owner only (plain
    /// stores; or by the pool under `gone`'s lock), read by others for the stats.
    len: AtomicUsize,
    /// The first block size the owner's chunks take, learned from its chunks that dropped
    /// ([`LocalSlot::learn`]), and the size of every block held. Written as `len`.
    block_size: AtomicUsize,
    /// What the slot is learning. Owner-only.
    learning: UnsafeCell<Learning>,
    /// The pool's flush epoch when the owner last handed its blocks back. Owner-only.
    epoch: UnsafeCell<u64>,
    /// Releases while the pool had memory to give back, for [`LocalSlot::policy_turn`].
    /// Owner-only.
    releases: UnsafeCell<u32>,
    /// Chunks made minus chunks dropped through this slot (negative when chunks made
    /// elsewhere drop here). Written by the owner only, with plain stores.
    chunks: AtomicIsize,
    /// The owner thread has exited; set once, under this lock.
    gone: Mutex<bool>,
    /// The pool has dropped; the owner may forget the slot.
    dead: AtomicBool,
}

// SAFETY: the `UnsafeCell` fields are accessed by one thread at a time: the owner while it
// lives (the methods marked owner-only are called only through `Pool::with_local`, on the
// owner's thread), then, once the owner set `gone` under its mutex (the owner's last
// access happens before), only by a thread holding that mutex and seeing `gone`. The
// pointers are addresses of free blocks the pool owns, never dereferenced here. The other
// fields are atomics and a mutex.
unsafe impl Send for LocalSlot {}
// SAFETY: as for `Send`.
unsafe impl Sync for LocalSlot {}

impl LocalSlot {
    /// A slot for a pool whose first blocks are `configured` bytes, learning first block
    /// sizes up to `most` (0 for none).
    fn new(epoch: u64, configured: usize, most: usize) -> Self {
        LocalSlot {
            blocks: UnsafeCell::new([MaybeUninit::uninit(); LOCAL_BLOCKS]),
            len: AtomicUsize::new(0),
            block_size: AtomicUsize::new(configured),
            learning: UnsafeCell::new(Learning {
                window_most: 0,
                until_sample: SAMPLE_EVERY,
                left: LEARN_WINDOW,
                most,
                configured,
            }),
            epoch: UnsafeCell::new(epoch),
            releases: UnsafeCell::new(0),
            chunks: AtomicIsize::new(0),
            gone: Mutex::new(false),
            dead: AtomicBool::new(false),
        }
    }

    fn gone(&self) -> MutexGuard<'_, bool> {
        self.gone.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a cached block, of [`LocalSlot::first_size`] bytes. Owner-only.
    #[inline]
    pub(crate) fn pop(&self) -> Option<NonNull<u8>> {
        let len = self.len.load(Ordering::Relaxed).checked_sub(1)?;
        self.len.store(len, Ordering::Relaxed);
        // SAFETY: owner-only (see the `Sync` impl): no other reference to `blocks`; and
        // `len < LOCAL_BLOCKS`, the block below the old length, is initialised.
        Some(unsafe { (*self.blocks.get()).get_unchecked(len).assume_init() })
    }

    /// Caches `block`, of [`LocalSlot::first_size`] bytes, if there is room; returns
    /// whether it did. Owner-only.
    #[inline]
    pub(crate) fn push(&self, block: Block) -> bool {
        let len = self.len.load(Ordering::Relaxed);
        if len >= LOCAL_BLOCKS {
            return false;
        }
        // SAFETY: owner-only (see the `Sync` impl): no other reference to `blocks`; and
        // `len < LOCAL_BLOCKS` is in bounds.
        unsafe { (*self.blocks.get()).get_unchecked_mut(len).write(block.ptr) };
        self.len.store(len + 1, Ordering::Relaxed);
        true
    }

    /// The first block size for the owner's next chunk, and of the blocks held.
    /// Owner-only (others read it for the stats).
    #[inline]
    pub(crate) fn first_size(&self) -> usize {
        self.block_size.load(Ordering::Relaxed)
    }

    /// Counts a chunk that dropped; true for one in [`SAMPLE_EVERY`], the one to learn
    /// from ([`LocalSlot::learn`]). Owner-only.
    #[inline]
    pub(crate) fn tick(&self) -> bool {
        // SAFETY: owner-only (see the `Sync` impl): no other reference to this field.
        let learning = unsafe { &mut *self.learning.get() };
        learning.until_sample -= 1;
        learning.until_sample == 0
    }

    /// Learns from a chunk that dropped: `need` bytes would have held all it handed out in
    /// its first block, header included (the most its cursors reached). True when the
    /// window ends: the caller then calls [`LocalSlot::end_window`]. Owner-only.
    pub(crate) fn learn(&self, need: usize) -> bool {
        // SAFETY: owner-only (see the `Sync` impl): no other reference to this field.
        let learning = unsafe { &mut *self.learning.get() };
        learning.until_sample = SAMPLE_EVERY;
        if need <= learning.most {
            learning.window_most = learning.window_most.max(need);
        }
        learning.left -= 1;
        learning.left == 0
    }

    /// Ends a window of [`LEARN_WINDOW`] chunks learned from: the first block size becomes the largest
    /// need of the window in whole pages. A need above the slot's `most` is a large
    /// chunk's, which successors hold anyway (a larger first block would only add to
    /// them); a window of large chunks only gives the configured size. When the size
    /// changes, the blocks held (of the old size) go into `stale`, for the caller to give
    /// back. Owner-only.
    pub(crate) fn end_window(&self, stale: &mut Stale) {
        // SAFETY: owner-only (see the `Sync` impl): no other reference to this field.
        let learning = unsafe { &mut *self.learning.get() };
        let size = match learning.window_most {
            0 => learning.configured,
            most => most.next_multiple_of(crate::os::page_size()),
        };
        learning.window_most = 0;
        learning.left = LEARN_WINDOW;
        let old = self.first_size();
        if size != old {
            for entry in stale.iter_mut() {
                *entry = self.pop().map(|ptr| Block { ptr, size: old });
            }
            self.block_size.store(size, Ordering::Relaxed);
        }
    }

    /// Adds `delta` to the chunk count: a plain load and store, as only the owner writes.
    /// Owner-only.
    #[inline]
    pub(crate) fn count(&self, delta: isize) {
        self.chunks.store(self.chunks.load(Ordering::Relaxed) + delta, Ordering::Relaxed);
    }

    /// Counts a release while the pool has memory to give back; true every
    /// `POLICY_EVERY`th, when this release should run the downsizing policy. Owner-only.
    #[inline]
    pub(crate) fn policy_turn(&self) -> bool {
        // SAFETY: owner-only (see the `Sync` impl): no other reference to this field.
        let releases = unsafe { &mut *self.releases.get() };
        *releases = releases.wrapping_add(1);
        *releases % super::cache::POLICY_EVERY == 0
    }

    /// Moves the cached blocks into `out`. Owner-only, or with `gone` seen true under its
    /// lock.
    fn take_all(&self, out: &mut Vec<Block>) {
        self.copy_all(out);
        self.len.store(0, Ordering::Relaxed);
    }

    /// Copies the cached blocks into `out`, for the invariant checker. Same rule as
    /// [`LocalSlot::take_all`].
    fn copy_all(&self, out: &mut Vec<Block>) {
        let (len, size) =
            (self.len.load(Ordering::Relaxed), self.block_size.load(Ordering::Relaxed));
        // SAFETY: the caller has the fields to itself (see the `Sync` impl), read only;
        // `blocks[..len]` are initialised (`len <= LOCAL_BLOCKS`).
        let blocks = unsafe { (*self.blocks.get()).get_unchecked(..len) };
        // SAFETY: as just said, initialised.
        out.extend(blocks.iter().map(|ptr| Block { ptr: unsafe { ptr.assume_init() }, size }));
    }
}

/// The pool's side: every thread's slot, and the chunk counts of slots taken back.
pub(crate) struct Locals {
    slots: Vec<Arc<LocalSlot>>,
    /// Chunk counts of the slots removed after their owner exited.
    retired_chunks: isize,
}

impl Locals {
    pub(crate) const fn new() -> Self {
        Locals { slots: Vec::new(), retired_chunks: 0 }
    }
}

impl core::fmt::Debug for Locals {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Locals").field("slots", &self.slots.len()).finish_non_exhaustive()
    }
}

/// The calling thread's slots, one per pool it used, keyed by the pool's number.
struct ThreadSlots(RefCell<Vec<(u64, Arc<LocalSlot>)>>);

impl Drop for ThreadSlots {
    fn drop(&mut self) {
        LAST.set((0, core::ptr::null()));
        for (_, slot) in self.0.get_mut().drain(..) {
            *slot.gone() = true;
        }
    }
}

std::thread_local! {
    static SLOTS: ThreadSlots = const { ThreadSlots(RefCell::new(Vec::new())) };
    /// The slot `with_local` found last, and its pool's number: the usual case without the
    /// list. Valid while its `Arc` is in `SLOTS` (whose changes reset or update it); no
    /// destructor, so it stays readable while the thread exits.
    static LAST: Cell<(u64, *const LocalSlot)> = const { Cell::new((0, core::ptr::null())) };
}

/// The next pool number; 0 means "not numbered yet".
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Pool {
    /// This pool's number, given on first use.
    #[inline]
    fn id(&self) -> u64 {
        match self.local_id.load(Ordering::Relaxed) {
            0 => self.assign_id(),
            id => id,
        }
    }

    #[cold]
    fn assign_id(&self) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        match self.local_id.compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => id,
            Err(other) => other,
        }
    }

    fn locals(&self) -> MutexGuard<'_, Locals> {
        self.locals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the calling thread's slot for this pool, made on first use, after
    /// handing the slot's blocks back if the pool asked (its flush epoch moved). `None`
    /// while the thread's locals are being destroyed. `f` must not call `with_local`.
    #[inline]
    pub(super) fn with_local<R>(&self, f: impl FnOnce(&LocalSlot) -> R) -> Option<R> {
        let id = self.id();
        let (last_id, last) = LAST.get();
        let slot = if last_id == id {
            // SAFETY: `LAST` points at a slot whose `Arc` is in this thread's `SLOTS`
            // (see `LAST`), which only this thread changes, and not while `slot` is used.
            unsafe { &*last }
        } else {
            self.find_local(id)?
        };
        let epoch = self.flush_epoch.load(Ordering::Relaxed);
        // SAFETY: owner-only field, on the owner's thread.
        if unsafe { *slot.epoch.get() } != epoch {
            self.hand_back(slot, epoch);
        }
        Some(f(slot))
    }

    /// The calling thread's slot for pool `id`, made on first use, and now `LAST`; `None`
    /// while the thread's locals are being destroyed.
    #[cold]
    fn find_local(&self, id: u64) -> Option<&LocalSlot> {
        SLOTS
            .try_with(|slots| {
                let mut slots = slots.0.try_borrow_mut().ok()?;
                let index = match slots.iter().position(|(slot_id, _)| *slot_id == id) {
                    Some(index) => index,
                    None => self.register(&mut slots, id),
                };
                let slot: *const LocalSlot = Arc::as_ptr(&slots[index].1);
                LAST.set((id, slot));
                // SAFETY: the `Arc` stays in `SLOTS` until `register` prunes it as dead
                // (never this pool's, which is alive) or the thread exits (after which
                // no pool call runs on this thread with it: `LAST` is reset first).
                Some(unsafe { &*slot })
            })
            .ok()
            .flatten()
    }

    /// Makes the calling thread's slot for this pool; returns its index in `slots`. Forgets
    /// the slots of dropped pools on the way.
    #[cold]
    fn register(&self, slots: &mut Vec<(u64, Arc<LocalSlot>)>, id: u64) -> usize {
        // `LAST` may point at a dead slot about to go.
        LAST.set((0, core::ptr::null()));
        slots.retain(|(_, slot)| !slot.dead.load(Ordering::Acquire));
        let epoch = self.flush_epoch.load(Ordering::Relaxed);
        let c = &self.config;
        // First blocks under a page are not learned: they are not whole pages.
        let learns = c.learn_first_block && c.first_block_size >= crate::os::page_size();
        let most = if learns { c.max_block_size } else { 0 };
        let slot = Arc::new(LocalSlot::new(epoch, c.first_block_size, most));
        self.locals().slots.push(Arc::clone(&slot));
        slots.push((id, slot));
        slots.len() - 1
    }

    /// Gives the blocks of the owner's `slot` back to the top chunks, as the pool asked.
    #[cold]
    fn hand_back(&self, slot: &LocalSlot, epoch: u64) {
        let mut blocks = Vec::new();
        slot.take_all(&mut blocks);
        // SAFETY: owner-only field, on the owner's thread.
        unsafe { *slot.epoch.get() = epoch };
        if !blocks.is_empty() {
            self.release_to_top_chunks(blocks);
        }
    }

    /// Takes back into `out` the blocks of the calling thread's slot and of the slots whose
    /// thread exited (those leave the registry), and asks every other thread to hand its
    /// blocks back at its next scope.
    pub(super) fn reclaim_locals(&self, out: &mut Vec<Block>) {
        self.flush_epoch.fetch_add(1, Ordering::Relaxed);
        // Seeing the new epoch, `with_local` hands this thread's blocks back first.
        self.with_local(|_| {});
        let mut locals = self.locals();
        let Locals { slots, retired_chunks } = &mut *locals;
        slots.retain(|slot| {
            let gone = slot.gone();
            if *gone {
                // The owner has exited: its fields are ours under the lock.
                slot.take_all(out);
                *retired_chunks += slot.chunks.load(Ordering::Relaxed);
            }
            !*gone
        });
    }

    /// Live chunks counted by the slots, and the bytes they cache.
    pub(super) fn local_figures(&self) -> (isize, usize) {
        let locals = self.locals();
        let (chunks, blocks) =
            locals.slots.iter().fold((locals.retired_chunks, 0), |(chunks, blocks), slot| {
                let len = slot.len.load(Ordering::Relaxed);
                (
                    chunks + slot.chunks.load(Ordering::Relaxed),
                    blocks + len * slot.block_size.load(Ordering::Relaxed),
                )
            });
        (chunks, blocks)
    }

    /// The blocks of the slots the calling thread may read (its own, and those whose
    /// owner exited), for the invariant checker.
    pub(super) fn local_blocks(&self, out: &mut Vec<Block>) {
        self.with_local(|slot| slot.copy_all(out));
        for slot in &self.locals().slots {
            let gone = slot.gone();
            if *gone {
                slot.copy_all(out);
            }
        }
    }

    /// Marks every slot dead, for the pool's drop.
    pub(super) fn forget_locals(&mut self) {
        let locals = self.locals.get_mut().unwrap_or_else(PoisonError::into_inner);
        for slot in &locals.slots {
            slot.dead.store(true, Ordering::Release);
        }
    }
}
