//! Snapshots of pool and chunk figures, printable as readable reports (the grown-up form of
//! the seed's debug print and Postgres' `MemoryContextStats`).

use core::fmt;

/// A snapshot of a [`Pool`](crate::Pool)'s figures, from [`Pool::stats`](crate::Pool::stats).
///
/// `Display` prints a report with a line per top chunk, like Postgres'
/// `MemoryContextStats`:
///
/// ```
/// let pool = perfloc::Pool::new();
/// let chunk = pool.chunk();
/// println!("{}", pool.stats());
/// // perfloc pool: 1.0 MiB mapped in 1 top chunk (peak 1.0 MiB, of which 16.0 KiB lent at most)
/// //   in use 16.0 KiB (4.0 KiB resident, 25%) by 1 live chunk; free 1008.0 KiB (0 B resident), of which 0 B purged and 0 B cached for the threads
/// //   system calls: 1 mmap, 0 munmap, 0 madvise; 0 B given back to the OS; pool lock taken 1 times, shard locks 2
/// //   top chunk        size      in use        free      purged
/// //          #0     1.0 MiB    16.0 KiB  1008.0 KiB         0 B
/// let report = pool.stats().to_string();
/// assert!(report.contains("1 top chunk"));
/// assert!(report.contains("1 live chunk"));
/// let stats = pool.stats();
/// // The chunk has written its record in the first page of its block, not the rest.
/// assert!(0 < stats.resident_in_use_bytes && stats.resident_in_use_bytes <= stats.in_use_bytes);
/// # drop(chunk);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Number of top chunks currently mapped.
    pub top_chunks: usize,
    /// Bytes currently mapped from the OS (the sum of the top chunks' sizes).
    pub mapped_bytes: usize,
    /// Bytes of blocks held by live chunks.
    pub in_use_bytes: usize,
    /// Of `in_use_bytes`, those in pages resident in memory, as `mincore` tells page by
    /// page, counted by the byte. The rest were never touched or were swapped out (with
    /// transparent huge pages, untouched pages near touched ones may be resident too).
    ///
    /// Counted over the blocks lent out by the top chunks, which include those cached for
    /// the threads (`cached_bytes`), and capped at `in_use_bytes`: it may exceed the exact
    /// figure by the resident part of `cached_bytes`. Where the OS is not asked (under Miri,
    /// and on targets other than Linux, Android, Apple's, FreeBSD, DragonFly and NetBSD)
    /// all of `in_use_bytes` counts as resident.
    pub resident_in_use_bytes: usize,
    /// Bytes of free blocks, reusable without a system call (`mapped - in_use`).
    pub free_bytes: usize,
    /// Of `free_bytes`, those in pages resident in memory (`mincore`, as for
    /// `resident_in_use_bytes`): free memory the OS still backs, which the pool keeps for
    /// the next chunks until [`decay`](crate::PoolBuilder::decay) or
    /// [`Pool::trim`](crate::Pool::trim) gives it back (beyond
    /// [`retain`](crate::PoolBuilder::retain)). Untouched and purged pages are not counted.
    /// With `resident_in_use_bytes`, the pool's share of the process's resident set.
    pub resident_free_bytes: usize,
    /// Of `free_bytes`, those purged with `madvise`: still mapped, no longer resident.
    pub purged_bytes: usize,
    /// Of `free_bytes`, those cached in the threads' local slots and shards, ready for their
    /// next chunk.
    pub cached_bytes: usize,
    /// The most bytes ever mapped at once.
    pub peak_mapped_bytes: usize,
    /// The most bytes ever lent out at once by the top chunks: to live chunks, and to the
    /// threads' local slots and shards (so at least the peak of `in_use_bytes`). What the
    /// pool needed at its busiest; memory mapped beyond it was never all needed at once.
    pub peak_lent_bytes: usize,
    /// Bytes given back to the OS so far, by `munmap` or `madvise`.
    pub released_bytes: u64,
    /// Process chunks made from this pool and not yet dropped.
    pub live_chunks: usize,
    /// `mmap` calls made so far, failed ones included.
    pub mmap_calls: u64,
    /// `munmap` calls made so far.
    pub munmap_calls: u64,
    /// `madvise` calls made so far, failed ones included.
    pub madvise_calls: u64,
    /// Times the pool-wide lock was taken to lend or take back blocks; in steady state the
    /// threads' shards serve chunks without it, and this stays put.
    pub pool_lock_calls: u64,
    /// Times a shard's lock was taken; in steady state the threads' local slots serve
    /// scopes without it, and this stays put too.
    pub shard_lock_calls: u64,
    /// One entry per top chunk, oldest first.
    pub top_chunk_stats: Vec<TopChunkStats>,
}

/// The figures of one top chunk, in [`PoolStats::top_chunk_stats`].
///
/// ```
/// let pool = perfloc::Pool::new();
/// let chunk = pool.chunk();
/// let stats = pool.stats();
/// let top = stats.top_chunk_stats[0];
/// assert_eq!((top.size, top.in_use_bytes), (1 << 20, 16 << 10));
/// assert_eq!(top.free_bytes, top.size - top.in_use_bytes);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TopChunkStats {
    /// Size of the mapping.
    pub size: usize,
    /// Bytes of its blocks lent to live chunks.
    pub in_use_bytes: usize,
    /// Bytes of its free blocks.
    pub free_bytes: usize,
    /// Of `free_bytes`, those purged with `madvise`.
    pub purged_bytes: usize,
}

/// A snapshot of a [`Chunk`](crate::Chunk)'s figures, from
/// [`Chunk::stats`](crate::Chunk::stats): its blocks, and where their bytes went.
///
/// `capacity_bytes` is the dedicated blocks (`dedicated_bytes`) plus the regular ones,
/// which hold headers, the bytes handed out (`used_bytes` less the dedicated allocations)
/// and their empty ends (`tail_bytes`). Of the bytes handed out, `freed_bytes` were freed
/// but stay (an arena only takes back its newest allocation); the rest,
/// [`live_bytes`](Self::live_bytes), are what the program holds.
///
/// ```
/// use allocator_api2::vec::Vec;
///
/// let chunk = perfloc::chunk();
/// chunk.alloc_slice_copy(&[0u8; 100]);
/// let stats = chunk.stats();
/// assert_eq!((stats.blocks, stats.used_bytes), (1, 104)); // rounded up to a word
/// assert!(stats.to_string().contains("1 block"));
///
/// let mut grown: Vec<u64, _> = Vec::with_capacity_in(4, &chunk);
/// chunk.alloc(1u8); // now `grown` is not the newest: its old copy stays when it moves
/// grown.extend(0..100);
/// let stats = chunk.stats();
/// assert_eq!(stats.freed_bytes, 32, "the old copy of 4 u64s");
/// assert_eq!(stats.live_bytes(), 104 + 8 + 800);
/// assert_eq!(stats.tail_bytes + stats.used_bytes + 24, stats.capacity_bytes); // 24: a header
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ChunkStats {
    /// Blocks the chunk holds (regular and dedicated).
    pub blocks: usize,
    /// Of `blocks`, the dedicated ones, each holding one allocation (see
    /// [`PoolBuilder::dedicated_threshold`](crate::PoolBuilder::dedicated_threshold)).
    pub dedicated_blocks: usize,
    /// Total size of the dedicated blocks.
    pub dedicated_bytes: usize,
    /// Total size of all blocks, headers included.
    pub capacity_bytes: usize,
    /// Bytes handed out (with alignment padding, each allocation rounded up to a word,
    /// without block headers). Bytes of the newest allocation given back by `deallocate`
    /// or `shrink` are not counted.
    pub used_bytes: usize,
    /// Of `used_bytes`, those freed (by `deallocate`, a move, a shrink) that stay in their
    /// regular block until the chunk is reset or dropped: a block only takes back its
    /// newest allocation. After a rewind to a checkpoint, an upper bound; in a `SyncChunk`
    /// freed by several threads at once, it may miss a few.
    pub freed_bytes: usize,
    /// Bytes at the end of regular blocks never handed out (or given back): the room of
    /// the current block, and what older blocks had left when the next one was taken.
    pub tail_bytes: usize,
    /// The most `capacity_bytes` has been over the chunk's life.
    pub peak_bytes: usize,
    /// The chunk's limit on `capacity_bytes`, if it has one
    /// ([`PoolBuilder::chunk_limit`](crate::PoolBuilder::chunk_limit),
    /// [`ProcessChunk::set_limit`](crate::ProcessChunk::set_limit)).
    pub limit: Option<usize>,
}

/// Bytes as a human-readable figure: `512 B`, `4.0 KiB`, `1.5 MiB`, `2.0 GiB`.
pub(crate) struct Bytes(pub(crate) usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.1} {}", UNITS[unit])
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}

impl fmt::Display for PoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "perfloc pool: {} mapped in {} (peak {}, of which {} lent at most)",
            Bytes(self.mapped_bytes),
            plural(self.top_chunks, "top chunk"),
            Bytes(self.peak_mapped_bytes),
            Bytes(self.peak_lent_bytes)
        )?;
        let resident_share = if self.in_use_bytes == 0 {
            0.0
        } else {
            self.resident_in_use_bytes as f64 * 100.0 / self.in_use_bytes as f64
        };
        writeln!(
            f,
            "  in use {} ({} resident, {resident_share:.0}%) by {}; free {} ({} resident), of which {} purged and {} cached for the threads",
            Bytes(self.in_use_bytes),
            Bytes(self.resident_in_use_bytes),
            plural(self.live_chunks, "live chunk"),
            Bytes(self.free_bytes),
            Bytes(self.resident_free_bytes),
            Bytes(self.purged_bytes),
            Bytes(self.cached_bytes)
        )?;
        write!(
            f,
            "  system calls: {} mmap, {} munmap, {} madvise; {} given back to the OS; pool lock taken {} times, shard locks {}",
            self.mmap_calls,
            self.munmap_calls,
            self.madvise_calls,
            Bytes(usize::try_from(self.released_bytes).unwrap_or(usize::MAX)),
            self.pool_lock_calls,
            self.shard_lock_calls
        )?;
        if !self.top_chunk_stats.is_empty() {
            write!(
                f,
                "\n  {:>9} {:>11} {:>11} {:>11} {:>11}",
                "top chunk", "size", "in use", "free", "purged"
            )?;
        }
        for (i, top) in self.top_chunk_stats.iter().enumerate() {
            write!(
                f,
                "\n  {:>9} {:>11} {:>11} {:>11} {:>11}",
                format!("#{i}"),
                Bytes(top.size).to_string(),
                Bytes(top.in_use_bytes).to_string(),
                Bytes(top.free_bytes).to_string(),
                Bytes(top.purged_bytes).to_string()
            )?;
        }
        Ok(())
    }
}

impl ChunkStats {
    /// Bytes handed out and not freed: `used_bytes - freed_bytes`.
    ///
    /// ```
    /// let chunk = perfloc::chunk();
    /// chunk.alloc(0u64);
    /// assert_eq!(chunk.stats().live_bytes(), 8);
    /// ```
    pub fn live_bytes(&self) -> usize {
        self.used_bytes - self.freed_bytes
    }
}

impl fmt::Display for ChunkStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "perfloc chunk: {} in {} ({} dedicated, {}): {} live, {} freed but kept, {} \
             empty at block ends; peak {}",
            Bytes(self.capacity_bytes),
            plural(self.blocks, "block"),
            self.dedicated_blocks,
            Bytes(self.dedicated_bytes),
            Bytes(self.live_bytes()),
            Bytes(self.freed_bytes),
            Bytes(self.tail_bytes),
            Bytes(self.peak_bytes)
        )?;
        match self.limit {
            Some(limit) => write!(f, ", limit {}", Bytes(limit)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_readable() {
        assert_eq!(Bytes(512).to_string(), "512 B");
        assert_eq!(Bytes(4096).to_string(), "4.0 KiB");
        assert_eq!(Bytes(3 << 19).to_string(), "1.5 MiB");
        assert_eq!(Bytes(2 << 30).to_string(), "2.0 GiB");
    }
}
