//! Pool settings: [`PoolBuilder`] and the [`ConfigError`] it returns for bad settings.

use core::fmt;
use std::time::Duration;

use crate::Pool;

pub(crate) mod env;

/// Smallest allowed `first_block_size`: room for a block header and some data.
///
/// ```
/// let pool = perfloc::Pool::builder().first_block_size(perfloc::MIN_BLOCK_SIZE).build()?;
/// assert_eq!(pool.chunk().stats().capacity_bytes, perfloc::MIN_BLOCK_SIZE);
/// let too_small = perfloc::Pool::builder().first_block_size(perfloc::MIN_BLOCK_SIZE / 2).build();
/// assert_eq!(too_small.unwrap_err().setting(), "first_block_size");
/// # Ok::<(), perfloc::ConfigError>(())
/// ```
pub const MIN_BLOCK_SIZE: usize = 256;

/// Largest size any setting may take: `2^(usize::BITS - 2)`, so doubling never overflows.
pub(crate) const MAX_SIZE: usize = 1 << (usize::BITS - 2);

/// Largest allowed `first_block_size`: 256 GiB on 64-bit targets, half the smallest user
/// address space among them (39 bits on some aarch64 kernels), and 1 GiB on 32-bit ones.
/// Every chunk needs a first block mapped, so a larger one could never be served: the
/// builder and `PERFLOC_FIRST_BLOCK` refuse it. (A first top chunk the OS refuses is no
/// such problem: the pool then maps one just big enough for the block.)
///
/// ```
/// let err = perfloc::Pool::builder()
///     .first_top_chunk_size(1 << 40)
///     .first_block_size(2 * perfloc::MAX_FIRST_BLOCK_SIZE)
///     .build()
///     .unwrap_err();
/// assert_eq!(err.setting(), "first_block_size");
/// assert!(err.to_string().contains("could never be mapped"));
/// ```
pub const MAX_FIRST_BLOCK_SIZE: usize = if usize::BITS >= 64 { 1 << 38 } else { 1 << 30 };

/// The validated settings of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    /// Size of the first top chunk; each later one is twice the last. Power of two, at
    /// least a page and at least `first_block_size`.
    pub(crate) first_top_chunk_size: usize,
    /// Size of a process chunk's first block, and the smallest block the pool hands out.
    /// Power of two, at least [`MIN_BLOCK_SIZE`].
    pub(crate) first_block_size: usize,
    /// Most bytes the pool may have mapped at once; `usize::MAX` for no limit.
    pub(crate) limit: usize,
    /// Free bytes the pool keeps mapped and resident for reuse.
    pub(crate) retain: usize,
    /// How long free memory above `retain` may stay; `Duration::MAX` for ever.
    pub(crate) decay: Duration,
    /// Most bytes of blocks one process chunk may hold; `usize::MAX` for no limit.
    pub(crate) chunk_limit: usize,
    /// A process chunk's successors double up to this size. Power of two, at least
    /// `first_block_size` (the default is raised to it), at most [`MAX_SIZE`].
    pub(crate) max_block_size: usize,
    /// From this size on, an allocation (or a reallocation that moves) gets a block of its
    /// own, whole pages, given back when it is freed or moves. From
    /// [`MIN_DEDICATED_THRESHOLD`] on; `usize::MAX` for never (but when no successor holds
    /// it).
    pub(crate) dedicated_threshold: usize,
    /// Whether a thread's chunks take first blocks of the size its recent chunks needed
    /// ([`PoolBuilder::learn_first_block`]).
    pub(crate) learn_first_block: bool,
}

impl Config {
    /// The defaults, as documented on [`PoolBuilder`].
    pub(crate) const DEFAULT: Config = Config {
        first_top_chunk_size: 1 << 20,
        first_block_size: 16 << 10,
        limit: usize::MAX,
        retain: 4 << 20,
        decay: Duration::from_secs(1),
        chunk_limit: usize::MAX,
        max_block_size: 64 << 10,
        dedicated_threshold: 32 << 10,
        learn_first_block: false,
    };
}

/// Smallest allowed [`dedicated_threshold`](PoolBuilder::dedicated_threshold), 4 KiB: a
/// dedicated block is whole pages, so a smaller allocation would waste most of its block.
///
/// ```
/// let err = perfloc::Pool::builder().dedicated_threshold(1024).build().unwrap_err();
/// assert_eq!(err.setting(), "dedicated_threshold");
/// ```
pub const MIN_DEDICATED_THRESHOLD: usize = 4 << 10;

/// Builds a [`Pool`] with custom settings; [`PoolBuilder::build`] checks them.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`first_top_chunk_size`](Self::first_top_chunk_size) | 1 MiB | size of the first top chunk mapped from the OS; each later one is twice the last |
/// | [`first_block_size`](Self::first_block_size) | 16 KiB | size of a process chunk's first block (until the pool learns one); successors start at half of it and double |
/// | [`learn_first_block`](Self::learn_first_block) | off | a thread's chunks take first blocks of the size its recent chunks needed, in whole pages, up to `max_block_size` |
/// | [`max_block_size`](Self::max_block_size) | 64 KiB | successors double up to this size |
/// | [`dedicated_threshold`](Self::dedicated_threshold) | 32 KiB | from this size on, an allocation gets a block of its own, given back when freed or moved |
/// | [`limit`](Self::limit) | none | most bytes the pool maps at once; past it allocation fails with `AllocError` |
/// | [`retain`](Self::retain) | 4 MiB | free memory kept mapped and resident for reuse |
/// | [`decay`](Self::decay) | 1 s | how long free memory above `retain` may stay before it goes back to the OS |
/// | [`chunk_limit`](Self::chunk_limit) | none | most bytes of blocks one process chunk may hold; past it that chunk's allocations fail |
///
/// ```
/// let pool = perfloc::Pool::builder()
///     .first_top_chunk_size(4 << 20)
///     .first_block_size(16 << 10)
///     .limit(64 << 20)
///     .build()?;
/// let chunk = pool.chunk();
/// assert_eq!(*chunk.alloc(7u32), 7);
/// # Ok::<(), perfloc::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder {
    config: Config,
    /// Whether `retain` was set; the default is clamped to `limit` instead of refused.
    retain_set: bool,
    /// Whether `max_block_size` was set; the default is raised to `first_block_size`
    /// instead of refused.
    max_block_set: bool,
}

impl Default for PoolBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PoolBuilder {
    /// A builder with the default settings, the same as [`Pool::builder`].
    ///
    /// ```
    /// let pool = perfloc::PoolBuilder::new().build()?;
    /// assert_eq!(pool.chunk().stats().capacity_bytes, 16 << 10); // the default first block
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn new() -> Self {
        PoolBuilder { config: Config::DEFAULT, retain_set: false, max_block_set: false }
    }

    /// Size in bytes of the first top chunk the pool maps; each later top chunk is twice
    /// the size of the last (or large enough for the request that needed it). Must be a
    /// power of two, at least the OS page size and at least `first_block_size`.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().first_top_chunk_size(4 << 20).build()?;
    /// let chunk = pool.chunk();
    /// assert_eq!(pool.top_chunk_sizes(), [4 << 20]);
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn first_top_chunk_size(mut self, bytes: usize) -> Self {
        self.config.first_top_chunk_size = bytes;
        self
    }

    /// Size in bytes of a process chunk's first block. Its successors start at half this
    /// size (at least a page, or a whole first block if that is smaller) and double up to
    /// [`max_block_size`](Self::max_block_size).
    /// Must be a power of two, at least [`MIN_BLOCK_SIZE`] and at most
    /// `first_top_chunk_size`.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().first_block_size(64 << 10).build()?;
    /// let chunk = pool.chunk();
    /// assert_eq!(chunk.stats().capacity_bytes, 64 << 10);
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn first_block_size(mut self, bytes: usize) -> Self {
        self.config.first_block_size = bytes;
        self
    }

    /// Caps the bytes the pool may have mapped from the OS. Past it, taking a chunk or
    /// allocating fails with [`AllocError`](crate::AllocError); once chunks drop, their
    /// memory is reused. Must be at least `first_top_chunk_size`.
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().limit(2 << 20).build()?;
    /// let chunk = pool.chunk();
    /// let big = core::alloc::Layout::from_size_align(4 << 20, 8).unwrap();
    /// assert!(chunk.try_alloc_layout(big).is_err(), "past the limit");
    /// assert!(pool.stats().mapped_bytes <= 2 << 20);
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn limit(mut self, bytes: usize) -> Self {
        self.config.limit = bytes;
        self
    }

    /// Free memory, in bytes, that the pool keeps mapped and resident for reuse beyond what
    /// recent traffic needs; memory above it goes back to the OS after
    /// [`decay`](Self::decay), or at once with [`Pool::trim`]. Must not exceed `limit`
    /// (when left unset, the default of 4 MiB is lowered to `limit`).
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().retain(0).build()?;
    /// let chunk = pool.chunk();
    /// chunk.alloc_slice_copy(&vec![1u8; 4 << 20]);
    /// drop(chunk);
    /// pool.trim(); // keeps nothing beyond `retain`
    /// let stats = pool.stats();
    /// assert_eq!(stats.mapped_bytes - stats.purged_bytes, 0);
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn retain(mut self, bytes: usize) -> Self {
        self.config.retain = bytes;
        self.retain_set = true;
        self
    }

    /// How long free memory above [`retain`](Self::retain) may stay before the pool
    /// returns it to the OS: the pool remembers the peak of its in-use bytes over this long
    /// and keeps that plus `retain`. `Duration::ZERO` returns free memory at once;
    /// `Duration::MAX`, or any decay of 2^32 seconds (136 years) or more, never returns it
    /// by itself (only [`Pool::trim`] does). A decay longer than the process has lived
    /// returns nothing yet: memory cannot have been free that long.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let eager = perfloc::Pool::builder().decay(Duration::ZERO).retain(0).build()?;
    /// let chunk = eager.chunk();
    /// chunk.alloc_slice_copy(&vec![1u8; 8 << 20]);
    /// drop(chunk);
    /// assert!(eager.stats().released_bytes >= 8 << 20);
    ///
    /// let hoarder = perfloc::Pool::builder().decay(Duration::MAX).build()?;
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn decay(mut self, decay: Duration) -> Self {
        self.config.decay = decay;
        self
    }

    /// Caps the bytes of blocks each process chunk of this pool may hold (its first block,
    /// successors and large blocks): past it, allocation in that chunk fails with
    /// [`AllocError`](crate::AllocError) while the pool and every other chunk go on. A
    /// server sets it so that one hostile request cannot take the memory every other
    /// request shares. Each chunk (a child too) counts against its own limit, which
    /// [`ProcessChunk::set_limit`](crate::ProcessChunk::set_limit) changes. Must be at
    /// least `first_block_size`.
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let pool = perfloc::Pool::builder().chunk_limit(1 << 20).build()?;
    /// let greedy = pool.chunk();
    /// let mut v: Vec<u8, _> = Vec::new_in(&greedy);
    /// assert!(v.try_reserve(2 << 20).is_err(), "past this chunk's limit");
    /// let other = pool.chunk();
    /// assert_eq!(other.alloc_slice_copy(&[1u8; 512 << 10]).len(), 512 << 10);
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn chunk_limit(mut self, bytes: usize) -> Self {
        self.config.chunk_limit = bytes;
        self
    }

    /// Caps the size of a process chunk's successor blocks: they start at half of
    /// `first_block_size` and double up to this, then stay there, like Postgres'
    /// `maxBlockSize`. The
    /// trade: a larger cap means fewer blocks for a chunk that holds a lot (each new block
    /// is a trip to the pool), a smaller one less memory left empty at the end of the newest
    /// block. Allocations too large for a successor get a block of their own. Must be a
    /// power of two, at least `first_block_size` (when left unset, the default of 64 KiB is
    /// raised to it); `usize::MAX` is no cap at all (successors double without end).
    ///
    /// ```
    /// let pool = perfloc::Pool::builder().max_block_size(32 << 10).build()?;
    /// let chunk = pool.chunk();
    /// for _ in 0..100 {
    ///     chunk.alloc([0u8; 1000]);
    /// }
    /// let stats = chunk.stats();
    /// assert_eq!(stats.capacity_bytes, (16 + 8 + 16 + 32 + 32) << 10, "then 32s");
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn max_block_size(mut self, bytes: usize) -> Self {
        self.config.max_block_size = bytes;
        self.max_block_set = true;
        self
    }

    /// From this size on, an allocation gets a block of its own (a *dedicated* block), and
    /// so does a reallocation that must move (a `Vec` that outgrows its place). A dedicated
    /// block is whole pages, sized for the allocation, not a power of two; it goes back to
    /// the pool as soon as the allocation is freed or moves on, and grows in place while
    /// the memory above it is free. The trade: a lower threshold leaves less memory behind
    /// in the chunk's regular blocks (old copies of growing vectors, empty block ends); a
    /// higher one takes fewer trips to the pool (each dedicated block is one, under its
    /// lock). Must be at least [`MIN_DEDICATED_THRESHOLD`]; `usize::MAX` gives a block of
    /// its own only to what no successor can hold.
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let pool = perfloc::Pool::builder().dedicated_threshold(64 << 10).build()?;
    /// let chunk = pool.chunk();
    /// let mut big: Vec<u8, _> = Vec::with_capacity_in(100 << 10, &chunk);
    /// big.extend_from_slice(&[1; 100 << 10]);
    /// assert_eq!(chunk.stats().dedicated_blocks, 1);
    /// drop(big);
    /// assert_eq!(chunk.stats().dedicated_blocks, 0, "given back when freed");
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn dedicated_threshold(mut self, bytes: usize) -> Self {
        self.config.dedicated_threshold = bytes;
        self
    }

    /// Whether the pool learns the first block size from the chunks that drop (off by
    /// default). Each thread's chunks then take first blocks of the size its recent chunks
    /// needed: one chunk in 4 is measured (the highest its cursors reached, header
    /// included, and its dedicated allocations under the threshold), and every 16 of
    /// those the first block becomes the largest in whole pages, from a page to
    /// [`max_block_size`](Self::max_block_size). A chunk that needed more is a large one,
    /// which successors hold anyway; it is left out, and a thread whose chunks are all
    /// large takes [`first_block_size`](Self::first_block_size) blocks. A first block
    /// under a page is never learned.
    ///
    /// The trade: a request that fits in its first block takes no successor, and small
    /// requests do not each hold 16 KiB (the example server's calm request takes 20 KiB
    /// for 16 KiB of data, against 24; a 5 KB body 8 KiB, against 16). But first blocks of
    /// a learned size are runs of whole pages, not powers of two: a thread's local slot
    /// keeps two and its shard four more, and a thread that keeps more chunks alive at once
    /// takes the others' from the top chunks, under the pool's lock. They change where later
    /// blocks fit in the top chunks: in the instruction gate a vector pushed to 800 KB after
    /// small requests moved once more (20% more instructions) because of where its block
    /// landed. And the example server's calm RSS was 4.7 MiB with it, against 4.3 without.
    /// Hence off by default. A chunk's first block never grows in place, so that it comes
    /// back to the slot at the size the slot holds. Its variable is
    /// `PERFLOC_LEARN_FIRST_BLOCK` (`on` or `off`).
    ///
    /// ```
    /// use allocator_api2::vec::Vec;
    ///
    /// let pool = perfloc::Pool::builder().learn_first_block(true).build()?;
    /// for _ in 0..100 {
    ///     let chunk = pool.chunk();
    ///     let v: Vec<u8, _> = Vec::with_capacity_in(5000, &chunk);
    ///     drop(v);
    /// }
    /// assert_eq!(pool.chunk().stats().capacity_bytes, 8 << 10, "two pages hold 5,000 bytes");
    ///
    /// let fixed = perfloc::Pool::new(); // off by default
    /// for _ in 0..100 {
    ///     let chunk = fixed.chunk();
    ///     drop(Vec::<u8, _>::with_capacity_in(5000, &chunk));
    /// }
    /// assert_eq!(fixed.chunk().stats().capacity_bytes, 16 << 10);
    /// # Ok::<(), perfloc::ConfigError>(())
    /// ```
    pub const fn learn_first_block(mut self, on: bool) -> Self {
        self.config.learn_first_block = on;
        self
    }

    /// Checks the settings and makes the pool. No memory is mapped until the first chunk.
    ///
    /// ```
    /// let err = perfloc::Pool::builder().first_block_size(1000).build().unwrap_err();
    /// assert_eq!(err.setting(), "first_block_size");
    /// assert!(err.to_string().contains("power of two"));
    /// ```
    pub fn build(self) -> Result<Pool, ConfigError> {
        Ok(Pool::from_config(self.checked()?))
    }

    /// The validated settings, as [`build`](Self::build) uses them.
    pub(crate) fn checked(mut self) -> Result<Config, ConfigError> {
        if !self.retain_set {
            self.config.retain = self.config.retain.min(self.config.limit);
        }
        if self.config.max_block_size == usize::MAX {
            self.config.max_block_size = MAX_SIZE;
        }
        if !self.max_block_set {
            self.config.max_block_size =
                self.config.max_block_size.max(self.config.first_block_size);
        }
        self.validate()?;
        Ok(self.config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.config;
        let page = crate::os::page_size();
        check_size("first_block_size", c.first_block_size, MIN_BLOCK_SIZE, MAX_FIRST_BLOCK_SIZE)?;
        check_size("first_top_chunk_size", c.first_top_chunk_size, page, MAX_SIZE)?;
        if c.first_block_size > c.first_top_chunk_size {
            return Err(ConfigError::new(
                "first_block_size",
                format!(
                    "is {}, larger than first_top_chunk_size ({}); a block must fit in a top chunk",
                    c.first_block_size, c.first_top_chunk_size
                ),
            ));
        }
        if c.limit < c.first_top_chunk_size {
            return Err(ConfigError::new(
                "limit",
                format!(
                    "is {}, smaller than first_top_chunk_size ({}); the pool could never map a top chunk",
                    c.limit, c.first_top_chunk_size
                ),
            ));
        }
        if c.chunk_limit < c.first_block_size {
            return Err(ConfigError::new(
                "chunk_limit",
                format!(
                    "is {}, smaller than first_block_size ({}); no chunk could take its first block",
                    c.chunk_limit, c.first_block_size
                ),
            ));
        }
        check_size("max_block_size", c.max_block_size, MIN_BLOCK_SIZE, MAX_SIZE)?;
        if c.max_block_size < c.first_block_size {
            return Err(ConfigError::new(
                "max_block_size",
                format!(
                    "is {}, smaller than first_block_size ({}); successors start at the first block's size",
                    c.max_block_size, c.first_block_size
                ),
            ));
        }
        if c.dedicated_threshold < MIN_DEDICATED_THRESHOLD {
            return Err(ConfigError::new(
                "dedicated_threshold",
                format!(
                    "is {}, smaller than the minimum of {MIN_DEDICATED_THRESHOLD}; a dedicated block is whole pages",
                    c.dedicated_threshold
                ),
            ));
        }
        if c.retain > c.limit {
            return Err(ConfigError::new(
                "retain",
                format!(
                    "is {}, larger than limit ({}); the pool could never hold what it is told to retain",
                    c.retain, c.limit
                ),
            ));
        }
        Ok(())
    }
}

/// Checks a size setting: a power of two from `min` to `max`.
pub(crate) fn check_size(
    setting: &'static str,
    value: usize,
    min: usize,
    max: usize,
) -> Result<(), ConfigError> {
    let problem = if value == 0 {
        "must not be zero".to_owned()
    } else if !value.is_power_of_two() {
        format!("is {value}, which is not a power of two")
    } else if value < min {
        format!("is {value}, smaller than the minimum of {min}")
    } else if value > max {
        format!("is {value}, larger than the maximum of {max}: it could never be mapped")
    } else {
        return Ok(());
    };
    Err(ConfigError::new(setting, problem))
}

/// A pool setting that [`PoolBuilder::build`] refused; the message names the setting.
///
/// ```
/// let err = perfloc::Pool::builder().limit(4096).build().unwrap_err();
/// assert_eq!(err.setting(), "limit");
/// assert_eq!(
///     err.to_string(),
///     "invalid perfloc pool setting `limit`: is 4096, smaller than first_top_chunk_size \
///      (1048576); the pool could never map a top chunk"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    setting: &'static str,
    problem: String,
}

impl ConfigError {
    pub(crate) fn new(setting: &'static str, problem: String) -> Self {
        ConfigError { setting, problem }
    }

    /// The name of the offending builder setting, such as `"first_block_size"`.
    ///
    /// ```
    /// let err = perfloc::Pool::builder().retain(8 << 20).limit(4 << 20).build().unwrap_err();
    /// assert_eq!(err.setting(), "retain");
    /// ```
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid perfloc pool setting `{}`: {}", self.setting, self.problem)
    }
}

impl std::error::Error for ConfigError {}
