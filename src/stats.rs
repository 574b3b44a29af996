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
/// // perfloc pool: 1.0 MiB mapped in 1 top chunk (peak 1.0 MiB)
/// //   in use 4.0 KiB by 1 live chunk; free 1020.0 KiB, of which 0 B purged
/// //   system calls: 1 mmap, 0 munmap, 0 madvise; 0 B given back to the OS
/// //   top chunk        size      in use        free      purged
/// //          #0     1.0 MiB     4.0 KiB  1020.0 KiB         0 B
/// let report = pool.stats().to_string();
/// assert!(report.contains("1 top chunk"));
/// assert!(report.contains("1 live chunk"));
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
    /// Bytes of free blocks, reusable without a system call (`mapped - in_use`).
    pub free_bytes: usize,
    /// Of `free_bytes`, those purged with `madvise`: still mapped, no longer resident.
    pub purged_bytes: usize,
    /// Of `free_bytes`, those cached in the threads' local slots and shards, ready for their
    /// next chunk.
    pub cached_bytes: usize,
    /// The most bytes ever mapped at once.
    pub peak_mapped_bytes: usize,
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
/// [`Chunk::stats`](crate::Chunk::stats).
///
/// ```
/// let chunk = perfloc::chunk();
/// chunk.alloc_slice_copy(&[0u8; 100]);
/// let stats = chunk.stats();
/// assert_eq!((stats.blocks, stats.used_bytes), (1, 104)); // rounded up to a word
/// assert!(stats.to_string().contains("1 block"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ChunkStats {
    /// Blocks the chunk holds (regular and large).
    pub blocks: usize,
    /// Of `blocks`, those holding one large allocation each.
    pub large_blocks: usize,
    /// Total size of those blocks, headers included.
    pub capacity_bytes: usize,
    /// Bytes handed out (with alignment padding, each allocation rounded up to a word,
    /// without block headers). Bytes of the newest allocation given back by `deallocate`
    /// or `shrink` are not counted.
    pub used_bytes: usize,
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
            "perfloc pool: {} mapped in {} (peak {})",
            Bytes(self.mapped_bytes),
            plural(self.top_chunks, "top chunk"),
            Bytes(self.peak_mapped_bytes)
        )?;
        writeln!(
            f,
            "  in use {} by {}; free {}, of which {} purged and {} cached for the threads",
            Bytes(self.in_use_bytes),
            plural(self.live_chunks, "live chunk"),
            Bytes(self.free_bytes),
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

impl fmt::Display for ChunkStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "perfloc chunk: {} used of {} in {} ({} large); peak {}",
            Bytes(self.used_bytes),
            Bytes(self.capacity_bytes),
            plural(self.blocks, "block"),
            self.large_blocks,
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
