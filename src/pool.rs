//! The pool: the layer between the program and the OS (the seed's "intermediate layer").
//!
//! It owns the top chunks, hands out blocks to process chunks and takes them back.
//!
//! - **Taking a block** ([`Pool::acquire`]) looks through the top chunks, oldest first, for
//!   a free block of the requested power-of-two size (splitting a larger one if need be).
//!   Only when none has room does the pool map a new top chunk: the next size of a regular
//!   sequence that doubles with every mapping, or, for a request larger than that, a top
//!   chunk just big enough for it. Such an oversized top chunk does not become the base of
//!   the doubling, so one huge request does not inflate every later top chunk.
//! - **Giving a block back** ([`Pool::release`]) returns it to its top chunk's buddy
//!   bookkeeping, where it merges with free neighbours. No system call is made: in steady
//!   state, chunks come and go without any `mmap` or `munmap`.
//! - **Downsizing** ([`downsizing`]): after a block comes back (and after a top chunk is
//!   mapped), free memory above `retain` that has stayed free for `decay` is returned to
//!   the OS: idle top chunks are unmapped, long-free blocks in the others purged.
//!   [`Pool::trim`] does it at once.
//!
//! - **Shards** ([`cache`]): in front of all this, each thread has a shard, a small cache
//!   of free blocks behind a lock of its own, so that chunks made and dropped in steady
//!   state take no pool-wide lock.
//! - **Local slots** ([`local`]): in front of the shards, each thread keeps a few first
//!   blocks of each pool it uses in a slot of its own, so that a scope made and dropped in
//!   steady state takes no lock at all.
//!
//! The top chunks sit behind one mutex, reached on the slow path of process chunks (a block
//! the shard does not have, or one it cannot keep); allocation inside a chunk never touches
//! any of it.

mod cache;
mod downsizing;
mod local;

use core::ptr::NonNull;
use std::time::Instant;

use allocator_api2::alloc::AllocError;

use crate::config::{Config, PoolBuilder};
use crate::stats::{PoolStats, TopChunkStats};
use crate::sync::{AtomicBool, Mutex, MutexGuard, Ordering, PoisonError};
use crate::top_chunk::TopChunk;
use crate::{Chunk, ConfigError, SyncChunk};
use cache::{CLASSES, SHARDS, Shard};
use downsizing::GiveBack;

/// [`Pool::release`]'s `closes` for blocks that do not close a chunk.
pub(crate) const NOT_CLOSING: Option<fn() -> usize> = None;

/// A block lent by the pool to a process chunk: `size` bytes at `ptr`, a multiple of the
/// pool's [granule](Pool::granule). Blocks taken with [`Pool::acquire`] are powers of two;
/// a dedicated block ([`Pool::acquire_run`]) and a block grown in place ([`Pool::extend`])
/// are whole pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) ptr: NonNull<u8>,
    pub(crate) size: usize,
}

impl Block {
    /// True when `ptr` points inside this block.
    pub(crate) fn contains(&self, ptr: NonNull<u8>) -> bool {
        ptr.addr().get().wrapping_sub(self.ptr.addr().get()) < self.size
    }
}

/// A pool of top chunks from which process chunks ([`Chunk`]) take their blocks.
///
/// `Pool` is `Send + Sync`: many threads may make and drop chunks from one pool at once,
/// and a chunk may be dropped on another thread than the one that made it.
///
/// ```
/// use allocator_api2::vec::Vec;
///
/// let pool = perfloc::Pool::new();
/// for request in 0..100u32 {
///     let chunk = pool.chunk();
///     let mut items: Vec<u32, _> = Vec::new_in(&chunk);
///     items.extend(0..request);
///     assert_eq!(items.len() as u32, request);
/// } // each chunk gives its blocks back here, without a system call
/// let stats = pool.stats();
/// assert_eq!(stats.mmap_calls, 1);
/// assert_eq!(stats.in_use_bytes, 0);
/// ```
#[derive(Debug)]
pub struct Pool {
    config: Config,
    state: Mutex<PoolState>,
    /// Per-thread caches of free blocks, and counts of chunks.
    shards: [Shard; SHARDS],
    /// Whether the pool holds free memory above its target, so the shards' periodic run
    /// of the downsizing policy has something to do. Written under the pool's lock, read
    /// without it: in steady state nobody writes it, so it costs the shards nothing.
    excess: AtomicBool,
    /// This pool's number for the threads' local slots; 0 until first needed.
    local_id: core::sync::atomic::AtomicU64,
    /// Every thread's local slot for this pool.
    locals: std::sync::Mutex<local::Locals>,
    /// Raised to ask the threads to hand their local slots' blocks back.
    flush_epoch: core::sync::atomic::AtomicU64,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.forget_locals();
    }
}

/// Everything behind the pool's lock.
#[derive(Debug)]
struct PoolState {
    /// The top chunks, oldest first (`TOP_MEM_CHUNK_VEC`).
    top_chunks: Vec<TopChunk>,
    /// Size of the next regular top chunk: doubles with each one mapped.
    next_top_size: usize,
    /// Sum of the sizes of `top_chunks`.
    mapped_bytes: usize,
    /// Bytes of blocks taken from the top chunks (by live chunks or shard caches):
    /// `mapped_bytes` minus the free bytes.
    lent_bytes: usize,
    /// The most `lent_bytes` ever.
    peak_lent_bytes: usize,
    /// Free bytes purged with `madvise`: the sum over `top_chunks`.
    purged_bytes: usize,
    peak_mapped_bytes: usize,
    /// Bytes given back to the OS so far, by `munmap` or `madvise`.
    released_bytes: u64,
    mmap_calls: u64,
    munmap_calls: u64,
    madvise_calls: u64,
    /// Times the pool's lock was taken to lend or take back blocks.
    lock_calls: u64,
    /// The downsizing policy's next attempt is not before this.
    next_shrink: Option<Instant>,
}

impl PoolState {
    /// Counts `bytes` more lent out, and their peak.
    fn lend(&mut self, bytes: usize) {
        self.lent_bytes += bytes;
        self.peak_lent_bytes = self.peak_lent_bytes.max(self.lent_bytes);
    }

    /// With the `check-invariants` feature, panics if the bookkeeping is broken.
    #[inline]
    fn check_if_enabled(&self) {
        #[cfg(feature = "check-invariants")]
        if let Err(broken) = self.check() {
            panic!("perfloc: pool invariant broken: {broken}");
        }
    }

    /// Verifies the bookkeeping; see [`Pool::check`].
    fn check(&self) -> Result<(), String> {
        let state = self;
        let mut mapped = 0;
        let mut free = 0;
        let mut purged = 0;
        let mut ranges = Vec::new();
        for top in &state.top_chunks {
            top.check()?;
            mapped += top.size();
            free += top.free_bytes();
            purged += top.purged_bytes();
            ranges.push((top.addr(), top.size()));
        }
        if purged != state.purged_bytes {
            return Err(format!(
                "purged_bytes {} but top chunks sum to {purged}",
                state.purged_bytes
            ));
        }
        ranges.sort_unstable();
        if ranges.windows(2).any(|w| w[0].0 + w[0].1 > w[1].0) {
            return Err("two top chunks overlap".to_owned());
        }
        if mapped != state.mapped_bytes {
            return Err(format!(
                "mapped_bytes {} but top chunks sum to {mapped}",
                state.mapped_bytes
            ));
        }
        if mapped - free != state.lent_bytes {
            return Err(format!(
                "lent bytes {} but mapped - free = {}",
                state.lent_bytes,
                mapped - free
            ));
        }
        if state.peak_lent_bytes < state.lent_bytes {
            return Err(format!(
                "peak lent bytes {} below lent bytes {}",
                state.peak_lent_bytes, state.lent_bytes
            ));
        }
        Ok(())
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl Pool {
    /// A pool with the default settings (see [`PoolBuilder`]). Maps nothing until the
    /// first chunk is taken. `const`, so a pool of your own can be a `static`.
    ///
    /// ```
    /// static REQUESTS: perfloc::Pool = perfloc::Pool::new();
    ///
    /// assert_eq!(REQUESTS.stats().mapped_bytes, 0, "nothing mapped yet");
    /// let chunk = REQUESTS.chunk();
    /// assert_eq!(REQUESTS.stats().mmap_calls, 1);
    /// ```
    pub const fn new() -> Self {
        Self::from_config(Config::DEFAULT)
    }

    /// A builder for a pool with custom settings.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().limit(64 << 20).build()?;
    /// assert_eq!(*pool.chunk().alloc(1u8), 1);
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    /// The process-wide pool, created on first use with the settings given to
    /// [`configure_global`](crate::configure_global) or else read from the environment
    /// (`PERFLOC_RETAIN`, `PERFLOC_DECAY`, `PERFLOC_LIMIT`, `PERFLOC_FIRST_BLOCK`) over the
    /// defaults. [`perfloc::chunk()`](crate::chunk()) takes its chunks from here.
    ///
    /// ```
    /// let chunk = perfloc::Pool::global().chunk(); // what perfloc::chunk() does
    /// assert!(core::ptr::eq(chunk.pool(), perfloc::Pool::global()));
    /// ```
    #[inline]
    pub fn global() -> &'static Pool {
        #[cfg(not(loom))]
        return crate::global::pool();
        // Loom's primitives belong to one model execution: one global pool per execution,
        // with the default settings.
        #[cfg(loom)]
        {
            loom::lazy_static! { static ref GLOBAL: Pool = Pool::new(); }
            &GLOBAL
        }
    }

    pub(crate) const fn from_config(config: Config) -> Self {
        Pool {
            state: Mutex::new(PoolState {
                top_chunks: Vec::new(),
                next_top_size: config.first_top_chunk_size,
                mapped_bytes: 0,
                lent_bytes: 0,
                peak_lent_bytes: 0,
                purged_bytes: 0,
                peak_mapped_bytes: 0,
                released_bytes: 0,
                mmap_calls: 0,
                munmap_calls: 0,
                madvise_calls: 0,
                lock_calls: 0,
                next_shrink: None,
            }),
            config,
            shards: [const { Shard::new() }; SHARDS],
            excess: AtomicBool::new(false),
            local_id: core::sync::atomic::AtomicU64::new(0),
            locals: std::sync::Mutex::new(local::Locals::new()),
            flush_epoch: core::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A new process chunk whose first block comes from this pool.
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the first block (its `limit` is reached or the
    /// OS refuses to map memory); [`Pool::try_chunk`] returns the error instead.
    ///
    /// ```
    /// let pool = perfloc::Pool::new();
    /// let chunk = pool.chunk();
    /// let mut v: perfloc::Vec<u32> = perfloc::Vec::new_in(&chunk);
    /// v.push(1);
    /// assert_eq!(pool.stats().live_chunks, 1);
    /// ```
    pub fn chunk(&self) -> Chunk<'_> {
        match self.try_chunk() {
            Ok(chunk) => chunk,
            Err(AllocError) => panic!(
                "perfloc: the pool could not provide a chunk's first block: {}; \
                 use Pool::try_chunk to handle this",
                self.refusal(self.config.first_block_size)
            ),
        }
    }

    /// A new process chunk, or `AllocError` if the pool cannot provide its first block.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().first_top_chunk_size(64 << 10).limit(64 << 10).build()?;
    /// let chunks: Vec<_> = std::iter::from_fn(|| pool.try_chunk().ok()).take(100).collect();
    /// assert_eq!(chunks.len(), 4, "four 16 KiB first blocks fit in 64 KiB");
    /// drop(chunks);
    /// assert!(pool.try_chunk().is_ok(), "their memory is reused");
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    #[inline]
    pub fn try_chunk(&self) -> Result<Chunk<'_>, AllocError> {
        Chunk::new(self)
    }

    /// A new [`SyncChunk`], a process chunk that threads can share (and that async tasks
    /// can hold across an `.await` on a multi-thread runtime).
    ///
    /// ```
    /// let pool = perfloc::Pool::new();
    /// let chunk = pool.sync_chunk();
    /// std::thread::scope(|s| {
    ///     for t in 0..4u64 {
    ///         let chunk = &chunk;
    ///         s.spawn(move || assert_eq!(*chunk.alloc(t), t));
    ///     }
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Panics if the pool cannot provide the first block; [`Pool::try_sync_chunk`] returns
    /// the error instead.
    pub fn sync_chunk(&self) -> SyncChunk<'_> {
        match self.try_sync_chunk() {
            Ok(chunk) => chunk,
            Err(AllocError) => panic!(
                "perfloc: the pool could not provide a chunk's first block: {}; \
                 use Pool::try_sync_chunk to handle this",
                self.refusal(self.config.first_block_size)
            ),
        }
    }

    /// A new [`SyncChunk`], or `AllocError` if the pool cannot provide its first block.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().first_top_chunk_size(64 << 10).limit(64 << 10).build()?;
    /// let chunk = pool.try_sync_chunk().expect("within the limit");
    /// assert!(chunk.try_alloc([0u8; 128 << 10]).is_err());
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub fn try_sync_chunk(&self) -> Result<SyncChunk<'_>, AllocError> {
        SyncChunk::new(self)
    }

    /// A snapshot of the pool's figures; `Display` prints it as a report.
    ///
    /// For [`PoolStats::resident_in_use_bytes`] and [`PoolStats::resident_free_bytes`] it
    /// asks the OS which pages of the top chunks are resident: one `mincore` call per
    /// 16 MiB mapped (with 4 KiB pages), made while it holds the pool's lock.
    ///
    /// ```
    /// let pool = perfloc::Pool::new();
    /// let chunk = pool.chunk();
    /// let stats = pool.stats();
    /// assert_eq!((stats.top_chunks, stats.live_chunks, stats.mmap_calls), (1, 1, 1));
    /// assert_eq!(stats.in_use_bytes, 16 << 10);
    /// println!("{stats}");
    /// ```
    pub fn stats(&self) -> PoolStats {
        // Shards first, then the pool: the lock order everywhere (never both at once).
        let (mut chunks, mut cached) = self.local_figures();
        let mut shard_locks = 0;
        for shard in &self.shards {
            let cache = shard.lock();
            cached += cache.bytes;
            chunks += cache.chunks;
            shard_locks += cache.locks;
        }
        let state = self.lock();
        let in_use = state.lent_bytes.saturating_sub(cached);
        let (lent_resident, free_resident) = state
            .top_chunks
            .iter()
            .map(TopChunk::resident_bytes)
            .fold((0, 0), |(lent, free), (l, f)| (lent + l, free + f));
        // Cached blocks are lent by the top chunks but free for the pool: the resident
        // pages of lent blocks beyond `in_use` are theirs.
        let resident_in_use = lent_resident.min(in_use);
        let free_bytes = state.mapped_bytes - in_use;
        PoolStats {
            top_chunks: state.top_chunks.len(),
            mapped_bytes: state.mapped_bytes,
            in_use_bytes: in_use,
            resident_in_use_bytes: resident_in_use,
            free_bytes,
            resident_free_bytes: (free_resident + lent_resident - resident_in_use).min(free_bytes),
            cached_bytes: cached,
            pool_lock_calls: state.lock_calls,
            shard_lock_calls: shard_locks,
            purged_bytes: state.purged_bytes,
            peak_mapped_bytes: state.peak_mapped_bytes,
            peak_lent_bytes: state.peak_lent_bytes,
            released_bytes: state.released_bytes,
            live_chunks: usize::try_from(chunks).unwrap_or(0),
            mmap_calls: state.mmap_calls,
            munmap_calls: state.munmap_calls,
            madvise_calls: state.madvise_calls,
            top_chunk_stats: state
                .top_chunks
                .iter()
                .map(|top| TopChunkStats {
                    size: top.size(),
                    in_use_bytes: top.size() - top.free_bytes(),
                    free_bytes: top.free_bytes(),
                    purged_bytes: top.purged_bytes(),
                })
                .collect(),
        }
    }

    /// Sizes of the top chunks in bytes, oldest first.
    ///
    /// ```
    /// let pool = perfloc::Pool::new();
    /// let chunk = pool.chunk();
    /// chunk.alloc_slice_copy(&vec![0u8; 1 << 20]); // does not fit in the first top chunk
    /// assert_eq!(pool.top_chunk_sizes(), [1 << 20, 2 << 20]); // the second is twice the first
    /// ```
    pub fn top_chunk_sizes(&self) -> Vec<usize> {
        self.lock().top_chunks.iter().map(TopChunk::size).collect()
    }

    /// Verifies the pool's bookkeeping: every top chunk's free blocks are aligned, disjoint
    /// and merged, top chunks do not overlap, the byte totals agree with the stats, and
    /// with no live chunk every block lent is in a thread's or a shard's cache (a block
    /// that a chunk lost track of, say because its record was overwritten, is found here).
    ///
    /// Meant for tests and for chasing a bug; it walks every free block. The chunk counts
    /// are read while other threads go on: run it while no other thread makes or drops
    /// chunks of this pool.
    ///
    /// With the cargo feature `check-invariants`, the pool runs this check itself after
    /// every change to its bookkeeping, and panics on the first violation.
    ///
    /// ```
    /// let pool = perfloc::Pool::new();
    /// let chunks: Vec<_> = (0..10).map(|_| pool.chunk()).collect();
    /// assert_eq!(pool.check(), Ok(()));
    /// drop(chunks);
    /// pool.trim();
    /// assert_eq!(pool.check(), Ok(()));
    /// ```
    pub fn check(&self) -> Result<(), String> {
        // Shards first (the lock order everywhere): blocks they cache must not be free.
        let (mut chunks, mut cached_bytes) = self.local_figures();
        let mut cached = Vec::new();
        self.local_blocks(&mut cached);
        for shard in &self.shards {
            let cache = shard.lock();
            cache.blocks(self.smallest_block(), &mut cached);
            chunks += cache.chunks;
            cached_bytes += cache.bytes;
        }
        let state = self.lock();
        state.check()?;
        if chunks == 0 && state.lent_bytes != cached_bytes {
            return Err(format!(
                "{} bytes are lent with no live chunk: a chunk lost track of a block",
                state.lent_bytes.abs_diff(cached_bytes)
            ));
        }
        for block in cached {
            let top = state
                .top_chunks
                .iter()
                .find(|top| top.contains(block.ptr))
                .ok_or_else(|| format!("cached block at {:p} is in no top chunk", block.ptr))?;
            if top.is_free(block.ptr, block.size) {
                return Err(format!("block at {:p} is both cached and free", block.ptr));
            }
        }
        Ok(())
    }

    pub(crate) fn first_block_size(&self) -> usize {
        self.config.first_block_size
    }

    /// The limit each new process chunk starts with; `usize::MAX` for none.
    pub(crate) fn chunk_limit(&self) -> usize {
        self.config.chunk_limit
    }

    /// Why the pool refused a block of `size` bytes just now, with the figures: its own
    /// `limit`, or the OS. For panic messages.
    pub(crate) fn refusal(&self, size: usize) -> String {
        let mapped = self.lock().mapped_bytes;
        let limit = self.config.limit;
        if limit != usize::MAX && mapped.saturating_add(size.max(crate::os::page_size())) > limit {
            format!(
                "the pool's limit of {limit} bytes is reached ({mapped} mapped; \
                 a block of {size} bytes found no room)"
            )
        } else {
            format!("the OS refused to map memory for a block of {size} bytes ({mapped} mapped)")
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is consistent between statements that could panic, so a poisoned lock
        // (a panic elsewhere while holding it) leaves nothing half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The regular block size the pool would hand out for a request of `bytes`: the next
    /// power of two, at least the smallest block; `None` when no such size exists.
    pub(crate) fn block_size_for(&self, bytes: usize) -> Option<usize> {
        bytes
            .max(self.smallest_block())
            .checked_next_power_of_two()
            .filter(|&size| size <= isize::MAX as usize)
    }

    /// The size of a run ([`Pool::acquire_run`], [`Pool::extend`]) for a request of
    /// `bytes`: whole pages; `None` when no block can hold it.
    pub(crate) fn run_size_for(&self, bytes: usize) -> Option<usize> {
        let page = crate::os::page_size();
        let size = bytes.max(1).checked_add(page - 1)? & !(page - 1);
        self.block_size_for(size).map(|_| size)
    }

    /// The smallest block the top chunks' buddy systems deal in: a page, or a first block
    /// if that is smaller. Every block size is a multiple of it.
    fn granule(&self) -> usize {
        self.config.first_block_size.min(crate::os::page_size())
    }

    /// The smallest block a chunk takes: its first successor, half a first block (a first
    /// block if half of one is less than a page). The shards' size classes start here.
    pub(crate) fn smallest_block(&self) -> usize {
        (self.config.first_block_size / 2).max(self.granule())
    }

    /// A process chunk's successors double up to this size ([`PoolBuilder::max_block_size`]).
    pub(crate) fn max_block_size(&self) -> usize {
        self.config.max_block_size
    }

    /// From this size on, an allocation gets a block of its own
    /// ([`PoolBuilder::dedicated_threshold`]).
    pub(crate) fn dedicated_threshold(&self) -> usize {
        self.config.dedicated_threshold
    }

    /// The shard cache class of a block of `size` bytes, if blocks that size are cached.
    #[inline]
    fn class_of(&self, size: usize) -> Option<usize> {
        if !size.is_power_of_two() {
            return None;
        }
        let class = size.trailing_zeros().checked_sub(self.smallest_block().trailing_zeros());
        class.map(|class| class as usize).filter(|&class| class < CLASSES)
    }

    /// The calling thread's shard.
    #[inline]
    fn shard(&self) -> &Shard {
        &self.shards[cache::shard_index()]
    }

    /// Bytes one shard may cache: together the shards hold at most half of `retain`.
    fn shard_budget(&self) -> usize {
        self.config.retain / (2 * SHARDS)
    }

    /// Lends a block of `size` bytes (a power of two, at least `smallest_block`), from
    /// the thread's shard or the top chunks; not a chunk's first block
    /// ([`Pool::acquire_first`]).
    #[inline]
    pub(crate) fn acquire(&self, size: usize) -> Result<Block, AllocError> {
        debug_assert!(size.is_power_of_two() && size >= self.smallest_block());
        self.acquire_shared(size, false)
    }

    /// Lends a new chunk's first block, and counts a new live chunk: from the thread's
    /// local slot, of the size it learned ([`LocalSlot::learn`](local::LocalSlot::learn)),
    /// else from its shard or the top chunks.
    ///
    /// Inline, only the local slot: a scope's first block comes from there in steady state,
    /// and the rest ([`Pool::acquire_shared`]) kept out of line does not make every scope
    /// pay its register saves.
    #[inline]
    pub(crate) fn acquire_first(&self) -> Result<Block, AllocError> {
        #[cfg(not(loom))]
        {
            let local = self.with_local(|slot| {
                let size = slot.first_size();
                let ptr = slot.pop();
                if ptr.is_some() {
                    slot.count(1);
                }
                (ptr, size)
            });
            match local {
                Some((Some(ptr), size)) => return Ok(Block { ptr, size }),
                Some((None, size)) => return self.acquire_shared(size, true),
                None => {}
            }
        }
        self.acquire_shared(self.config.first_block_size, true)
    }

    /// A block of `size` bytes (a power of two, or whole pages for a learned first block)
    /// from the thread's shard if it caches that size, else the top chunks. `opens_chunk`
    /// counts a new live chunk.
    #[inline(never)]
    fn acquire_shared(&self, size: usize, opens_chunk: bool) -> Result<Block, AllocError> {
        let class = self.class_of(size);
        if class.is_some() || opens_chunk {
            let mut cache = self.shard().lock_counted();
            // A first block of no class is a learned one, which the shard may keep too.
            let cached = match class {
                Some(class) => cache.pop(class, size),
                None => cache.pop_run(size),
            };
            if let Some(ptr) = cached {
                cache.chunks += isize::from(opens_chunk);
                return Ok(Block { ptr, size });
            }
        }
        let block = self.acquire_from_top_chunks(size, false)?;
        if opens_chunk {
            self.shard().lock_counted().chunks += 1;
        }
        Ok(block)
    }

    /// Lends a run of `size` bytes (whole pages, from [`Pool::run_size_for`]): a block whose
    /// size need not be a power of two, cut from the bottom of a power-of-two block whose
    /// rest stays free. A power of two of a shard's size class may come from the
    /// thread's shard, unless `growable`: an allocation that keeps growing gets a run cut
    /// from the bottom of the largest free block the top chunks have, so that the memory
    /// above it stays free for [`Pool::extend`] as long as possible.
    pub(crate) fn acquire_run(&self, size: usize, growable: bool) -> Result<Block, AllocError> {
        if !growable && self.class_of(size).is_some() {
            return self.acquire(size);
        }
        self.acquire_from_top_chunks(size, growable)
    }

    /// Takes a run of `size` bytes from the top chunks (see [`TopChunk::alloc`] for
    /// `growable`), mapping one if none has room; if that fails too, gives the blocks
    /// waiting in the shards back and tries once more.
    fn acquire_from_top_chunks(&self, size: usize, growable: bool) -> Result<Block, AllocError> {
        match self.acquire_from_top_chunks_once(size, growable) {
            // Free blocks may wait in other threads' shards: give them back, try again.
            Err(AllocError) if self.drain_shards() => {
                self.acquire_from_top_chunks_once(size, growable)
            }
            result => result,
        }
    }

    fn acquire_from_top_chunks_once(
        &self,
        size: usize,
        growable: bool,
    ) -> Result<Block, AllocError> {
        let (block, plan) = loop {
            let mut guard = self.lock();
            let state = &mut *guard;
            state.lock_calls += 1;
            // A growing allocation goes to the top chunk with the largest free block (the
            // oldest of equals), if it can double there; its bottom is cut for it, so that
            // it can grow in place as far as possible. (The oldest top chunk where it can
            // double touched fewer pages under the load test's spike, 97.8 and 99.1 MiB of
            // peak RSS against 100.7 to 103.4 in one-round runs, but a `SyncChunk`'s vector
            // pushed to 800 KB then moved more: 1,487,997 instructions against 1,224,819.)
            let whole = size.checked_next_power_of_two().ok_or(AllocError)?;
            let roomy = whole.checked_mul(2).filter(|_| growable).and_then(|twice| {
                let (index, top) = state
                    .top_chunks
                    .iter()
                    .enumerate()
                    .rev()
                    .max_by_key(|(_, top)| top.largest_free())?;
                (top.largest_free() >= twice).then_some(index)
            });
            let found =
                roomy.or_else(|| state.top_chunks.iter().position(|top| top.can_hold(size)));
            let mapped = found.is_none();
            // A new top chunk for a growing allocation has room for it to double twice (its
            // data moved here because it outgrew a block: it is likely to go on), if the
            // pool's limit allows. Only mapped, so the pages it never touches cost nothing.
            let wish = if growable { whole.saturating_mul(4) } else { whole };
            let index = match found {
                Some(index) => index,
                None => match self.map_top_chunk(state, whole, wish) {
                    Ok(index) => index,
                    // Free blocks that another thread is purging come back in a moment:
                    // wait for them rather than fail.
                    Err(AllocError) if state.top_chunks.iter().any(TopChunk::is_purging) => {
                        drop(guard);
                        crate::sync::yield_now();
                        continue;
                    }
                    Err(AllocError) => return Err(AllocError),
                },
            };
            let top = &mut state.top_chunks[index];
            let purged_before = top.purged_bytes();
            let ptr =
                top.alloc(size, growable).expect("the top chunk has a free block of this size");
            state.purged_bytes -= purged_before - top.purged_bytes();
            state.lend(size);
            let plan =
                if mapped { self.downsize(state, Instant::now()) } else { GiveBack::default() };
            state.check_if_enabled();
            break (Block { ptr, size }, plan);
        };
        self.give_back(plan);
        Ok(block)
    }

    /// Grows a lent block in place to `new_size` bytes (whole pages, from
    /// [`Pool::run_size_for`]) by taking the free memory right above it in its top chunk;
    /// false, with nothing changed, when some of it is not free (lent, cached in a shard,
    /// being purged) or past the top chunk's end. No system call: purged pages are simply
    /// used again.
    pub(crate) fn extend(&self, block: Block, new_size: usize) -> bool {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.lock_calls += 1;
        let Some(top) = state.top_chunks.iter_mut().find(|top| top.contains(block.ptr)) else {
            return false;
        };
        let purged_before = top.purged_bytes();
        if !top.extend(block.ptr, block.size, new_size) {
            return false;
        }
        state.purged_bytes -= purged_before - top.purged_bytes();
        state.lend(new_size - block.size);
        state.check_if_enabled();
        true
    }

    /// Takes back blocks lent by [`Pool::acquire`] and its kin: first blocks into the
    /// thread's local slot while it has room, the rest into the thread's shard while it has
    /// room, the rest into the top chunks. No system call is made (but for downsizing).
    /// `closes` is `Some(need)` when a chunk drops ([`NOT_CLOSING`] otherwise): it counts a
    /// dropped chunk, and the local slot may learn from what `need` returns
    /// ([`LocalSlot::learn`](local::LocalSlot::learn)). `blocks`
    /// must read every link it follows before yielding the block holding it.
    ///
    /// Inline, only the local slot (as for [`Pool::acquire_first`]); the rest is
    /// [`Pool::release_shared`], out of line.
    #[inline]
    pub(crate) fn release(
        &self,
        blocks: impl IntoIterator<Item = Block>,
        closes: Option<impl FnOnce() -> usize>,
    ) {
        let closes_chunk = closes.is_some();
        #[cfg(not(loom))]
        let (blocks, policy_turn, first) = {
            // First blocks go to the thread's local slot while it has room; the rest go on
            // to the shard. While the pool has memory to give back, every `POLICY_EVERY`th
            // release of the thread goes the shard's way and runs the downsizing policy,
            // which steady traffic through the slots would otherwise never reach.
            let (mut blocks, mut leftover, mut policy_turn) = (blocks.into_iter(), None, false);
            let (mut window_ended, mut first) = (false, 0);
            let excess = self.excess.load(Ordering::Relaxed);
            let all_local = self.with_local(|slot| {
                if let Some(need) = closes.filter(|_| slot.tick()) {
                    window_ended = slot.learn(need());
                }
                first = slot.first_size();
                if excess && slot.policy_turn() {
                    policy_turn = true;
                    return false;
                }
                for block in blocks.by_ref() {
                    crate::asan::poison(block.ptr, block.size);
                    if block.size != first || !slot.push(block) {
                        leftover = Some(block);
                        return false;
                    }
                }
                slot.count(-isize::from(closes_chunk));
                true
            }) == Some(true);
            if window_ended {
                self.end_window();
            }
            if all_local {
                return;
            }
            (leftover.into_iter().chain(blocks), policy_turn, first)
        };
        #[cfg(loom)]
        let (policy_turn, first) = (false, 0);
        self.release_shared(blocks.into_iter(), closes_chunk, policy_turn, first);
    }

    /// The thread's local slot ends a window of learning
    /// ([`LocalSlot::end_window`](local::LocalSlot::end_window)); the blocks it held, if
    /// their size is no longer the one it gives, go back to the pool.
    #[cfg(not(loom))]
    #[cold]
    #[inline(never)]
    fn end_window(&self) {
        let mut stale: local::Stale = [None; local::LOCAL_BLOCKS];
        self.with_local(|slot| slot.end_window(&mut stale));
        if stale[0].is_some() {
            self.release_shared(stale.into_iter().flatten(), false, false, 0);
        }
    }

    /// [`Pool::release`] past the local slot: the thread's shard, the top chunks, and the
    /// downsizing policy when it is due or it is `policy_turn`. Blocks of `first` bytes,
    /// the thread's first block size, may stay in the shard even if that is no class (a
    /// learned size); 0 for none.
    #[inline(never)]
    fn release_shared(
        &self,
        mut blocks: impl Iterator<Item = Block>,
        closes_chunk: bool,
        policy_turn: bool,
        first: usize,
    ) {
        let budget = self.shard_budget();
        // The blocks the shard does not keep, in batches on the stack: no global allocation
        // on the way back (a dedicated block, whose size has no class, always comes here).
        // Each batch goes to the top chunks after the shard's lock is dropped.
        loop {
            let mut rest = [None; 8];
            let mut len = 0;
            let policy_due = {
                let mut cache = self.shard().lock_counted();
                for block in blocks.by_ref() {
                    // The block is the pool's again: nothing may touch it until it is lent.
                    crate::asan::poison(block.ptr, block.size);
                    let cached = match self.class_of(block.size) {
                        Some(class) => cache.push(class, block, budget),
                        None => block.size == first && cache.push_run(block, budget),
                    };
                    if !cached {
                        rest[len] = Some(block);
                        len += 1;
                        if len == rest.len() {
                            break;
                        }
                    }
                }
                let done = len < rest.len();
                if done {
                    cache.chunks -= isize::from(closes_chunk);
                }
                done.then(|| cache.policy_due())
            };
            let Some(policy_due) = policy_due else {
                self.release_to_top_chunks(rest.into_iter().flatten());
                continue;
            };
            if len > 0 || ((policy_due || policy_turn) && self.excess.load(Ordering::Relaxed)) {
                self.release_to_top_chunks(rest.into_iter().flatten());
            }
            return;
        }
    }

    /// Returns blocks to their top chunks (possibly none), then runs the downsizing policy.
    fn release_to_top_chunks(&self, blocks: impl IntoIterator<Item = Block>) {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.lock_calls += 1;
        let now = Instant::now();
        for block in blocks {
            let top =
                state.top_chunks.iter_mut().find(|top| top.contains(block.ptr)).expect(
                    "perfloc bug: a released block belongs to none of the pool's top chunks",
                );
            top.free(block.ptr, block.size, now);
            state.lent_bytes -= block.size;
        }
        let plan = self.downsize(state, now);
        state.check_if_enabled();
        drop(guard);
        self.give_back(plan);
    }

    /// Gives every block cached in the shards back to the top chunks; true if there was any.
    fn drain_shards(&self) -> bool {
        let mut blocks = Vec::new();
        #[cfg(not(loom))]
        self.reclaim_locals(&mut blocks);
        for shard in &self.shards {
            shard.lock().drain(self.smallest_block(), &mut blocks);
        }
        let any = !blocks.is_empty();
        if any {
            self.release_to_top_chunks(blocks);
        }
        any
    }

    /// Maps a new top chunk that can hold a block of `block_size` bytes (`wish` bytes if the
    /// limit allows), appends it and returns its index.
    ///
    /// Regular size: the next in the doubling sequence, which advances with every mapping.
    /// A request larger than that gets a top chunk of its own size, which does not become
    /// the base of the sequence. Within `limit`, a smaller
    /// top chunk is mapped when the regular one would not fit; if the OS refuses the chosen
    /// size, the smallest that holds the block is tried once more.
    fn map_top_chunk(
        &self,
        state: &mut PoolState,
        block_size: usize,
        wish: usize,
    ) -> Result<usize, AllocError> {
        let page = crate::os::page_size();
        let smallest = block_size.max(page);
        let room = self.config.limit.saturating_sub(state.mapped_bytes);
        if smallest > room {
            return Err(AllocError);
        }
        let mut size = state.next_top_size.max(smallest).max(wish);
        if size > room {
            // Largest power of two within the limit; at least `smallest`, checked above.
            size = 1 << room.ilog2();
        }
        state.mmap_calls += 1;
        let top = match TopChunk::map(size, self.granule()) {
            Ok(top) => top,
            Err(AllocError) if size > smallest => {
                size = smallest;
                state.mmap_calls += 1;
                TopChunk::map(size, self.granule())?
            }
            Err(AllocError) => return Err(AllocError),
        };
        // Every mapping advances the regular sequence, so sustained large requests soon
        // find regular top chunks big enough for several of them; an oversized top chunk
        // does not become the base of the doubling.
        state.next_top_size = state.next_top_size.saturating_mul(2).min(crate::config::MAX_SIZE);
        state.mapped_bytes += size;
        state.peak_mapped_bytes = state.peak_mapped_bytes.max(state.mapped_bytes);
        state.top_chunks.push(top);
        Ok(state.top_chunks.len() - 1)
    }
}

/// Builds a pool from a builder; the same as [`PoolBuilder::build`].
impl TryFrom<PoolBuilder> for Pool {
    type Error = ConfigError;

    fn try_from(builder: PoolBuilder) -> Result<Self, ConfigError> {
        builder.build()
    }
}
