//! Shards: small caches of free blocks in front of the pool's lock.
//!
//! Taking a block for a new chunk and giving blocks back when it drops is the pool's hot
//! path; under the one pool-wide lock, threads would queue behind each other. So the pool
//! has [`SHARDS`] shards, each a small cache of free blocks by size class behind a lock of
//! its own, and every thread uses one shard (taken round-robin when the thread first asks).
//! A shard also keeps a few first blocks of a learned size that is no class (whole pages,
//! [`PoolBuilder::learn_first_block`](crate::PoolBuilder::learn_first_block)), for threads
//! that keep more chunks alive than their local slot holds.
//! In steady state a thread takes and gives back blocks in its own shard: an uncontended
//! lock, no system call, no pool-wide lock, no shared counter. When a class is full or the
//! shard holds its byte budget, blocks go on to the pool; [`Pool::trim`](crate::Pool::trim)
//! drains every shard. Between them the shards cache at most half of
//! [`retain`](crate::PoolBuilder::retain); the pool keeps the other half. Since steady
//! traffic served by the shards never reaches the pool's slow path, every 64th release
//! into a shard runs the downsizing policy.
//!
//! The shards belong to the pool (not to threads), so a cached block can never outlive the
//! pool it came from, whatever the pool's lifetime; a thread that exits leaves its blocks to
//! the next thread on the same shard.
//!
//! Each shard also counts the chunks made minus those dropped through it, so the pool
//! knows its live chunks without a counter that every core writes.

use core::cell::Cell;
use core::ptr::NonNull;

use crate::pool::Block;
use crate::sync::{Mutex, MutexGuard, PoisonError, next_thread_number, thread_local};

/// Number of shards.
pub(crate) const SHARDS: usize = 8;
/// Size classes cached: blocks of `smallest_block << k` for `k < CLASSES` (see
/// `Pool::smallest_block`).
pub(crate) const CLASSES: usize = 8;
/// Blocks cached per class in one shard.
const PER_CLASS: usize = 4;
/// Learned first blocks (whole pages, of no class) cached in one shard.
const RUNS: usize = 4;

/// One shard, alone on its cache lines so that shards used by different cores do not
/// slow each other down.
#[repr(align(128))]
#[derive(Debug)]
pub(crate) struct Shard {
    cache: Mutex<ShardCache>,
}

impl Shard {
    pub(crate) const fn new() -> Self {
        Shard { cache: Mutex::new(ShardCache::new()) }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ShardCache> {
        // A panic cannot leave the cache half-updated: every method finishes its writes
        // before anything that could panic.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`Shard::lock`], counted in the pool's figures: for taking and giving back blocks.
    pub(crate) fn lock_counted(&self) -> MutexGuard<'_, ShardCache> {
        let mut cache = self.lock();
        cache.locks += 1;
        cache
    }
}

/// The free blocks of one shard, and its count of chunks.
#[derive(Debug)]
pub(crate) struct ShardCache {
    /// `blocks[k][..lens[k]]`: free blocks of class `k`, taken from the pool's top chunks.
    blocks: [[Option<NonNull<u8>>; PER_CLASS]; CLASSES],
    lens: [u8; CLASSES],
    /// Free first blocks of a learned size that is no class (whole pages), which the
    /// local slots of this shard's threads had no room for; each with its size.
    runs: [Option<Block>; RUNS],
    /// Sum of the sizes of the cached blocks.
    pub(crate) bytes: usize,
    /// Chunks made minus chunks dropped through this shard (may be negative: a chunk made
    /// on one thread can drop on another).
    pub(crate) chunks: isize,
    /// Releases into this shard; every [`POLICY_EVERY`]th runs the downsizing policy.
    releases: u32,
    /// Times this shard's lock was taken to take or give back blocks.
    pub(crate) locks: u64,
}

/// How many releases into a shard between two runs of the downsizing policy, which
/// steady traffic served by the shards would otherwise never reach.
pub(crate) const POLICY_EVERY: u32 = 64;

// SAFETY: the pointers are addresses of free blocks owned by the pool (not shared
// references); they are only handed out under the shard's lock.
unsafe impl Send for ShardCache {}

impl ShardCache {
    const fn new() -> Self {
        ShardCache {
            blocks: [[None; PER_CLASS]; CLASSES],
            lens: [0; CLASSES],
            runs: [None; RUNS],
            bytes: 0,
            chunks: 0,
            releases: 0,
            locks: 0,
        }
    }

    /// Takes a cached block of class `class`.
    #[inline]
    pub(crate) fn pop(&mut self, class: usize, size: usize) -> Option<NonNull<u8>> {
        let len = usize::from(self.lens[class]);
        if len == 0 {
            return None;
        }
        self.lens[class] -= 1;
        self.bytes -= size;
        self.blocks[class][len - 1].take()
    }

    /// Caches `block` of class `class` unless the class is full or the shard would hold
    /// more than `budget` bytes; returns whether it did.
    #[inline]
    pub(crate) fn push(&mut self, class: usize, block: Block, budget: usize) -> bool {
        let len = usize::from(self.lens[class]);
        if len == PER_CLASS || self.bytes + block.size > budget {
            return false;
        }
        self.blocks[class][len] = Some(block.ptr);
        self.lens[class] += 1;
        self.bytes += block.size;
        true
    }

    /// Takes a cached learned first block of exactly `size` bytes.
    #[inline]
    pub(crate) fn pop_run(&mut self, size: usize) -> Option<NonNull<u8>> {
        let run = self.runs.iter_mut().find(|run| run.is_some_and(|b| b.size == size))?.take()?;
        self.bytes -= size;
        Some(run.ptr)
    }

    /// Caches `block`, a learned first block, unless the runs are full or the shard would
    /// hold more than `budget` bytes; returns whether it did.
    #[inline]
    pub(crate) fn push_run(&mut self, block: Block, budget: usize) -> bool {
        if self.bytes + block.size > budget {
            return false;
        }
        let Some(free) = self.runs.iter_mut().find(|run| run.is_none()) else { return false };
        *free = Some(block);
        self.bytes += block.size;
        true
    }

    /// Counts a release into this shard; true when the downsizing policy is due.
    #[inline]
    pub(crate) fn policy_due(&mut self) -> bool {
        self.releases = self.releases.wrapping_add(1);
        self.releases % POLICY_EVERY == 0
    }

    /// Copies the cached blocks into `out` (for the invariant checker).
    pub(crate) fn blocks(&self, smallest_block: usize, out: &mut Vec<Block>) {
        for (class, blocks) in self.blocks.iter().enumerate() {
            let len = usize::from(self.lens[class]);
            out.extend(
                blocks[..len]
                    .iter()
                    .flatten()
                    .map(|&ptr| Block { ptr, size: smallest_block << class }),
            );
        }
        out.extend(self.runs.iter().flatten());
    }

    /// Empties the cache into `out`; class `k` blocks are `smallest_block << k` bytes.
    pub(crate) fn drain(&mut self, smallest_block: usize, out: &mut Vec<Block>) {
        for (class, blocks) in self.blocks.iter_mut().enumerate() {
            let len = usize::from(self.lens[class]);
            out.extend(
                blocks[..len]
                    .iter_mut()
                    .filter_map(Option::take)
                    .map(|ptr| Block { ptr, size: smallest_block << class }),
            );
            self.lens[class] = 0;
        }
        out.extend(self.runs.iter_mut().filter_map(Option::take));
        self.bytes = 0;
    }
}

/// The shard of the calling thread: threads take shards round-robin on first use.
#[inline]
pub(crate) fn shard_index() -> usize {
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    // A const-initialised `Cell` has no destructor, so it is usable even while the thread
    // exits; `unwrap_or` only guards the impossible.
    INDEX
        .try_with(|index| {
            if index.get() == usize::MAX {
                index.set(next_thread_number() % SHARDS);
            }
            index.get()
        })
        .unwrap_or(0)
}
